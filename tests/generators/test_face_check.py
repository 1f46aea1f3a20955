"""Checking rendered faces (no dlib: renders and descriptors are stand-ins)."""

from __future__ import annotations

import numpy as np
import pytest

from realanon.generators.face_check import Settled, TrackFace, TrackMemory, face_look, same_look, settle_face

ORIGINAL = np.zeros(128)


def unit(value: float) -> np.ndarray:
    """A descriptor ``value`` away from ``ORIGINAL``."""
    out = np.zeros(128)
    out[0] = value
    return out


class Renders:
    """Stand-in renderer: each (identity, step) draws a crop whose descriptor is given by ``table``."""

    def __init__(self, table: dict[tuple[int, str], float], identities: int) -> None:
        self.table, self.identities, self.identity = table, identities, 0
        self.calls: list[tuple[int, str]] = []

    def render(self, step: str) -> np.ndarray:
        self.calls.append((self.identity, step))
        return np.full((4, 4, 3), len(self.calls), np.uint8)

    def describe(self, out: np.ndarray) -> np.ndarray:
        return unit(self.table.get(self.calls[-1], 0.1))

    def fill(self) -> np.ndarray:
        self.calls.append((self.identity, "fill"))
        return np.zeros((4, 4, 3), np.uint8)

    def redraw(self) -> bool:
        if self.identity + 1 >= self.identities:
            return False
        self.identity += 1
        return True


def settle(r: Renders, others: list[np.ndarray] | None = None, tries: int = 3) -> Settled:
    return settle_face(r.render, r.describe, r.redraw, r.fill, [ORIGINAL], others or [], 0.65, 0.65, tries)


def test_first_passing_render_is_kept() -> None:
    r = Renders({(0, "face"): 0.9}, identities=5)
    s = settle(r)
    assert s.step == "face" and r.calls == [(0, "face")] and s.margin >= 0


def test_a_face_too_close_to_the_person_gets_the_next_identity() -> None:
    r = Renders({(0, "face"): 0.3, (1, "face"): 0.5, (2, "face"): 0.8}, identities=5)
    s = settle(r)
    assert r.calls == [(0, "face"), (1, "face"), (2, "face")]
    assert s.step == "face" and np.linalg.norm(s.descriptor - ORIGINAL) == pytest.approx(0.8)


def test_escalates_to_head_then_cover_then_opaque_covers_then_fills() -> None:
    r = Renders({(2, "head"): 0.4, (2, "cover"): 0.7}, identities=8)
    assert settle(r).step == "cover"
    assert r.calls == [(0, "face"), (1, "face"), (2, "face"), (2, "head"), (2, "cover")]
    r = Renders({(3, "opaque"): 0.7}, identities=8)
    assert settle(r).step == "opaque"
    assert r.calls[-3:] == [(2, "cover"), (2, "opaque"), (3, "opaque")], "then the next identities' opaque covers"
    r = Renders({(4, "fill"): 0.7}, identities=8)  # no face is ever far enough from the person: fail closed
    s = settle(r)
    assert s.step == "fill" and s.descriptor is None and not s.output.any()
    assert r.calls[-4:] == [(2, "opaque"), (3, "opaque"), (4, "opaque"), (4, "fill")]


def test_a_fill_that_is_still_the_person_gives_way_to_the_least_close_rendering() -> None:
    # Kept hair around a flat oval can be the person for dlib: the fill is checked like any face.
    r = Renders({(1, "face"): 0.5, (3, "opaque"): 0.55, (4, "fill"): 0.2}, identities=8)
    s = settle(r)
    assert r.calls[-1] == (4, "fill") and s.step == "opaque"
    assert np.linalg.norm(s.descriptor - ORIGINAL) == pytest.approx(0.55)


def test_a_twin_alone_never_ends_in_a_fill_and_the_least_close_is_kept() -> None:
    other = unit(0.9)  # every render below is private (>= 0.65 from the original) but near this face
    r = Renders({(0, "face"): 0.95, (1, "face"): 1.1, (2, "face"): 0.9, (2, "head"): 0.92, (2, "cover"): 0.93},
                identities=5)
    s = settle(r, [other])
    assert s.step == "face" and r.calls[4:6] == [(3, "head"), (3, "cover")], "a twin head gets another identity's"
    assert [c[1] for c in r.calls[6:]] == ["opaque"] * 2, "still a twin for dlib: opaque covers (identities 3, 4)"
    assert np.linalg.norm(s.descriptor - ORIGINAL) == pytest.approx(1.1)
    r = Renders({(0, "face"): 0.95, (1, "face"): 1.52}, identities=5)  # 1.52: 0.62 from the other face
    assert settle(r, [other]).step == "face" and "opaque" not in {c[1] for c in r.calls}, \
        "apart for dlib (> 0.6), only within the check's margin: no opaque cover"


def test_a_twin_within_the_checks_margin_gets_more_identities_not_covers() -> None:
    other = unit(0.9)
    # Identity 1 is private and 0.62 from the other face: apart for dlib, not for the check (0.65).
    r = Renders({(0, "face"): 0.95, (1, "face"): 1.52, (3, "face"): 1.6}, identities=6)
    s = settle(r, [other])
    assert r.calls[-1] == (3, "face") and "opaque" not in {c[1] for c in r.calls}
    assert s.step == "face" and s.margin >= 0 and np.linalg.norm(s.descriptor - ORIGINAL) == pytest.approx(1.6)
    r = Renders({(0, "face"): 0.95, (1, "face"): 1.52}, identities=6)
    settle_face(r.render, r.describe, r.redraw, r.fill, [ORIGINAL], [other], 0.65, 0.65, 3, late_tries=2)
    assert r.calls[-2:] == [(3, "face"), (4, "face")], "at most late_tries identities more"


def test_a_private_head_that_is_a_twin_is_redrawn_as_another_identitys_head() -> None:
    other = unit(0.9)
    r = Renders({(0, "face"): 0.92, (1, "head"): 0.93, (2, "head"): 0.94, (3, "head"): 2.0}, identities=6)
    s = settle(r, [other], tries=2)
    assert r.calls == [(0, "face"), (1, "face"), (1, "head"), (2, "head"), (3, "head")]
    assert s.step == "head" and s.margin >= 0, "the third head is far from the face already drawn"
    r = Renders({(0, "face"): 0.92, (1, "head"): 0.93, (2, "head"): 0.94, (3, "head"): 0.95, (4, "head"): 2.0},
                identities=6)
    settle_face(r.render, r.describe, r.redraw, lambda: np.zeros((4, 4, 3), np.uint8), [ORIGINAL], [other],
                0.65, 0.65, 2, head_tries=2)
    assert r.calls[2:5] == [(1, "head"), (2, "head"), (2, "cover")], "at most head_tries heads, then the cover"


def test_no_identity_left_skips_to_the_escalation() -> None:
    r = Renders({(0, "head"): 0.7}, identities=1)
    assert settle(r).step == "head" and r.calls == [(0, "face"), (0, "head")]


def look(seed: int, shift: int = 0, size: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    crop = np.repeat(rng.integers(0, 255, (12, 12, 1), dtype=np.uint8), 3, axis=2)
    crop = np.kron(crop, np.ones((8, 8, 1), np.uint8))  # smooth-ish 96 x 96 picture
    return face_look(np.roll(crop, shift, axis=1), (20, 20, 20 + size, 20 + size))


def test_face_look_tells_a_moving_face_from_another() -> None:
    assert same_look(look(1), look(1, shift=1))
    assert not same_look(look(1), look(2))
    assert not same_look(look(1), look(1, size=70)), "a face of another size is not the track's face"


def test_track_memory_holds_while_identity_look_and_pose_hold() -> None:
    memory = TrackMemory(recheck=3)
    memory.store(7, TrackFace(5, "face", ORIGINAL, unit(0.9), 10.0, look(1)))
    assert memory.valid(7, 5, 12.0, look(1, shift=1)) is not None
    assert memory.valid(8, 5, 12.0, look(1)) is None, "another seed"
    assert memory.valid(7, 6, 12.0, look(1)) is None, "another identity"
    assert memory.valid(7, 5, 40.0, look(1)) is None, "the head turned"
    assert memory.valid(7, 5, None, look(1)) is None, "the mesh was lost"
    assert memory.valid(7, 5, 12.0, look(2)) is None, "another face under the same seed (a new video)"
    for _ in range(3):
        memory.age(7, look(1))
    assert memory.valid(7, 5, 12.0, look(1)) is None, "rechecked after `recheck` frames"


def test_a_face_like_another_person_of_the_frame_is_redrawn() -> None:
    r = Renders({(0, "face"): 0.9, (1, "face"): 2.0}, identities=5)
    s = settle_face(r.render, r.describe, r.redraw, lambda: np.zeros((4, 4, 3), np.uint8), [ORIGINAL, unit(0.95)],
                    [], 0.65, 0.65, 3)
    assert s.step == "face" and r.calls == [(0, "face"), (1, "face")], "0.9 is 0.05 from the frame's other person"


def test_face_box_of_a_default_replace_mask_is_the_detection_box() -> None:
    from realanon.config import RegionOptions
    from realanon.generators.face_check import face_box
    from realanon.regions import build_regions
    from realanon.structures import Detection, Detections

    # In the middle of the frame, and cut by each edge of the frame (the mask is cleared outside it).
    for box in ((200.0, 150.0, 280.0, 250.0), (200.0, 8.0, 280.0, 108.0), (4.0, 150.0, 84.0, 250.0),
                (200.0, 495.0, 280.0, 595.0), (517.0, 150.0, 597.0, 250.0)):
        region = build_regions(Detections((Detection(box, 0.9, "face"),), (600, 600)), RegionOptions())[0]
        x0, y0 = region.crop_box_xyxy[:2]
        found = np.array(face_box(region.replace_mask)) + [x0, y0, x0, y0]
        assert np.abs(found - box).max() <= 3, f"described in {np.round(found)}, the detection box is {box}"


def test_face_box_of_a_tilted_face_is_its_detection_box() -> None:
    import math

    from realanon.config import RegionOptions
    from realanon.generators.face_check import eye_roll, face_box
    from realanon.regions import build_regions
    from realanon.structures import Detection, Detections

    box = (200.0, 150.0, 270.0, 235.0)
    for degrees in (-30.0, 15.0, 40.0):
        a = math.radians(degrees)
        cx, cy, half = 235.0, 180.0, 18.0  # the eyes, turned by ``a`` about their middle
        eyes = np.array([[cx - half * math.cos(a), cy - half * math.sin(a), 1.0],
                         [cx + half * math.cos(a), cy + half * math.sin(a), 1.0]], np.float32)
        det = Detection(box, 0.9, "face", keypoints=eyes, keypoint_layout="face6")
        region = build_regions(Detections((det,), (600, 600)), RegionOptions())[0]
        x0, y0 = region.crop_box_xyxy[:2]
        found = np.array(face_box(region.replace_mask, eye_roll(eyes - [x0, y0, 0]))) + [x0, y0, x0, y0]
        assert np.abs(found - box).max() <= 3, f"{degrees} deg: described in {np.round(found)}, box {box}"


def test_a_face_described_in_two_boxes_must_pass_in_both() -> None:
    from realanon.generators.face_check import check_boxes, nearest

    mask = np.zeros((100, 100), bool)
    mask[20:80, 30:70] = True
    assert len(check_boxes(mask, 0.0)) == 1 and len(check_boxes(mask, 0.4)) == 2
    original = np.stack([unit(0.0), unit(0.0)])
    rendered = np.stack([unit(0.9), unit(0.5)])  # far in the face box, close in the other
    assert nearest(rendered, [original]) == pytest.approx(0.5), "box by box: the closer box counts"
    assert nearest(unit(0.9), [original]) == pytest.approx(0.9), "one box against two: every pair"
