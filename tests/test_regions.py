"""Region invariants: masks stay in the frame, blend is zero outside the mask, partial faces."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realanon.config import RegionOptions
from realanon.regions import (
    PARTIAL_FACE_FRACTION,
    body_region_box,
    build_regions,
    face_roll,
    union_mask,
    upper_part,
)
from realanon.structures import Detection, Detections

SIZE = (120, 160)


def _face6(cx: float, cy: float, s: float) -> np.ndarray:
    return np.array([[cx - 0.2 * s, cy - 0.1 * s, 1], [cx + 0.2 * s, cy - 0.1 * s, 1], [cx, cy + 0.05 * s, 1],
                     [cx, cy + 0.25 * s, 1], [cx - 0.45 * s, cy, 1], [cx + 0.45 * s, cy, 1]], np.float32)


boxes = st.tuples(st.floats(-60, 200), st.floats(-60, 160), st.floats(2, 120), st.floats(2, 120))
options = st.builds(RegionOptions, face_shape=st.sampled_from(["ellipse", "hull", "box"]),
                    face_margin=st.floats(0, 0.5), body_margin=st.floats(0, 0.2),
                    partial_face=st.booleans(), context=st.floats(0, 0.5), feather=st.floats(0, 0.5))


@settings(max_examples=60, deadline=None)
@given(boxes, options, st.sampled_from(["face", "body"]), st.booleans())
def test_masks_stay_inside_the_frame_and_blend_is_zero_outside(box, opts, kind, with_mask) -> None:  # type: ignore[no-untyped-def]
    x, y, w, h = box
    kp = _face6(x + w / 2, y + h / 2, w) if kind == "face" else None
    mask = None
    if kind == "body" and with_mask:
        mask = np.zeros(SIZE, dtype=bool)
        mask[max(int(y), 0) : max(int(y + h), 0), max(int(x), 0) : max(int(x + w), 0)] = True
    det = Detection((x, y, x + w, y + h), 0.9, kind, keypoints=kp, keypoint_layout="face6" if kp is not None else None,
                    mask=mask)
    for region in build_regions(Detections((det,), SIZE), opts):
        x1, y1, x2, y2 = region.crop_box_xyxy
        assert region.replace_mask.shape == region.blend_mask.shape == (y2 - y1, x2 - x1)
        ys, xs = np.nonzero(region.replace_mask)
        assert (xs + x1 >= 0).all() and (xs + x1 < SIZE[1]).all()
        assert (ys + y1 >= 0).all() and (ys + y1 < SIZE[0]).all()
        assert (region.blend_mask[~region.replace_mask] == 0).all()
        assert region.blend_mask.dtype == np.uint8 and region.blend_mask[region.replace_mask].min() >= 1


@pytest.mark.parametrize("shape", ["ellipse", "hull", "box"])
def test_partial_face_is_the_upper_60_percent(shape: str) -> None:
    det = Detection((60, 30, 100, 80), 0.9, "face", keypoints=_face6(80, 55, 40), keypoint_layout="face6")
    full = build_regions(Detections((det,), SIZE), RegionOptions(face_shape=shape))[0]
    part = build_regions(Detections((det,), SIZE), RegionOptions(face_shape=shape, partial_face=True))[0]
    assert full.crop_box_xyxy == part.crop_box_xyxy
    assert not (part.replace_mask & ~full.replace_mask).any()
    rows = np.nonzero(full.replace_mask.any(axis=1))[0]
    top, height = rows.min(), rows.max() + 1 - rows.min()
    part_rows = np.nonzero(part.replace_mask.any(axis=1))[0]
    assert part_rows.min() == top
    assert abs((part_rows.max() + 1 - top) - PARTIAL_FACE_FRACTION * height) <= 1.0
    # Everything above the cut is still replaced.
    cut = top + int(PARTIAL_FACE_FRACTION * height) - 1
    assert (part.replace_mask[:cut] == full.replace_mask[:cut]).all()


def test_partial_face_follows_a_tilted_face() -> None:
    mask = np.zeros((100, 100), dtype=bool)
    mask[20:80, 30:70] = True
    # Eyes one above the other (roll 90 degrees): the face's "down" is the image's -x,
    # so its top is at the mask's right edge.
    kept = upper_part(mask, math.radians(90))
    assert not (kept & ~mask).any()
    cols = np.nonzero(kept.any(axis=0))[0]
    assert cols.max() + 1 == 70 and abs(70 - cols.min() - 0.6 * 40) <= 1


@pytest.mark.parametrize(("layout", "n", "eyes"), [("face6", 6, (0, 1)), ("face5", 5, (0, 1)),
                                                   ("face_mesh478", 478, (33, 263))])
def test_face_roll_reads_the_eyes_of_each_layout(layout: str, n: int, eyes: tuple[int, int]) -> None:
    kp = np.zeros((n, 3), np.float32)
    kp[:, 2] = 1
    kp[eyes[0], :2] = (40, 50)
    kp[eyes[1], :2] = (60, 70)
    det = Detection((30, 30, 70, 90), 1.0, "face", keypoints=kp, keypoint_layout=layout)
    assert face_roll(det) == pytest.approx(math.radians(45))


def test_mesh_hull_covers_the_landmarks_with_margin() -> None:
    rng = np.random.default_rng(0)
    pts = np.concatenate([rng.uniform((60, 30), (100, 90), (478, 2)), np.ones((478, 1))], axis=1)
    det = Detection((62, 40, 98, 88), 1.0, "face", keypoints=pts.astype(np.float32), keypoint_layout="face_mesh478")
    region = build_regions(Detections((det,), SIZE), RegionOptions(face_shape="hull", face_margin=0.1))[0]
    union = union_mask([region], SIZE)
    xs, ys = np.round(pts[:, 0]).astype(int), np.round(pts[:, 1]).astype(int)
    assert union[np.clip(ys, 0, SIZE[0] - 1), np.clip(xs, 0, SIZE[1] - 1)].all()


def test_overlapping_people_union_is_replaced() -> None:
    a = np.zeros(SIZE, dtype=bool)
    a[20:100, 20:70] = True
    b = np.zeros(SIZE, dtype=bool)
    b[30:110, 60:120] = True
    dets = Detections((Detection((20, 20, 70, 100), 1, "body", mask=a), Detection((60, 30, 120, 110), 1, "body", mask=b)),
                      SIZE)
    regions = build_regions(dets, RegionOptions(body_margin=0.0))
    assert len(regions) == 2
    assert (union_mask(regions, SIZE) == (a | b)).all()


def test_body_region_box_is_the_mask_extent_grown_by_the_margin() -> None:
    mask = np.zeros((40, 60), dtype=bool)
    mask[5:30, 12:20] = True
    mask[28, 41] = True  # a stray pixel far right still counts
    opts = RegionOptions(body_margin=0.1)
    det = Detection((0.0, 0.0, 60.0, 40.0), 0.9, "body", mask=mask)
    m = 0.1 * 25  # margin from the mask's height
    assert body_region_box(det, opts) == pytest.approx((12 - m, 5 - m, 42 + m, 30 + m))
    empty = Detection((10.0, 4.0, 20.0, 24.0), 0.9, "body", mask=np.zeros((40, 60), dtype=bool))
    assert body_region_box(empty, opts) == pytest.approx((8.0, 2.0, 22.0, 26.0))
