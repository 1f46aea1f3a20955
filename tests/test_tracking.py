"""The IoU tracker: stable ids, coasting through misses, per-kind matching, seeds per track."""

from __future__ import annotations

import numpy as np
import pytest

from realanon.generators.blur import GaussianBlur
from realanon.pipeline import Anonymizer
from realanon.regions import build_regions
from realanon.structures import Detection, Detections
from realanon.tracking import IoUTracker, TrackerOptions, iou_matrix, match_boxes

SIZE = (240, 320)


def face(x: float, y: float = 50.0, w: float = 40.0, kind: str = "face") -> Detection:
    return Detection((x, y, x + w, y + w), 0.9, kind)  # type: ignore[arg-type]


def frame(*dets: Detection) -> Detections:
    return Detections(tuple(dets), SIZE)


def test_iou_matrix_known_values() -> None:
    a = np.array([[0, 0, 10, 10]], dtype=float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], dtype=float)
    np.testing.assert_allclose(iou_matrix(a, b), [[1.0, 50 / 150, 0.0]])


def test_match_boxes_is_one_to_one_and_thresholded() -> None:
    pred = np.array([[0, 0, 10, 10], [100, 100, 110, 110]], dtype=float)
    det = np.array([[101, 100, 111, 110], [1, 0, 11, 10], [50, 50, 60, 60]], dtype=float)
    assert sorted(match_boxes(pred, det, 0.3)) == [(0, 1), (1, 0)]
    assert match_boxes(pred, det[2:], 0.3) == []


@pytest.mark.parametrize(("seed", "spread"), [(s, w) for s in range(4) for w in (200, 600)])
def test_match_boxes_by_groups_reaches_the_whole_hungarian_optimum(seed: int, spread: float) -> None:
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(seed)
    # 200: one crowd, large overlapping groups (scipy); 600: small groups, solved exhaustively.
    corners = rng.uniform(0, spread, (30, 2))
    pred = np.concatenate([corners, corners + rng.uniform(10, 40, (30, 2))], axis=1)
    det = pred[rng.permutation(30)[:25]] + rng.normal(0, 6, (25, 4))
    iou = iou_matrix(pred, det)
    rows, cols = linear_sum_assignment(-iou)
    ours = match_boxes(pred, det, 0.0)
    assert len({r for r, _ in ours}) == len(ours) == len({c for _, c in ours})
    assert sum(iou[r, c] for r, c in ours) == pytest.approx(iou[rows, cols].sum())


@pytest.mark.parametrize("shape", [(1, 3), (3, 1), (2, 3), (3, 2), (4, 4), (6, 5)])
def test_exhaustive_assignment_equals_scipy(shape: tuple[int, int]) -> None:
    from scipy.optimize import linear_sum_assignment

    from realanon.tracking import _best_assignment

    gain = np.random.default_rng(sum(shape)).uniform(0, 1, shape)
    rows, cols = _best_assignment(gain)
    ref_rows, ref_cols = linear_sum_assignment(-gain)
    assert len(set(rows.tolist())) == len(rows) == min(shape) == len(set(cols.tolist()))
    assert gain[rows, cols].sum() == pytest.approx(gain[ref_rows, ref_cols].sum())


def test_importing_the_video_path_leaves_scipy_optimize_unloaded() -> None:
    import subprocess
    import sys

    code = "import sys, realanon.video; print('scipy.optimize' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_ids_stay_stable_for_two_moving_faces() -> None:
    tracker = IoUTracker()
    ids = []
    for t in range(10):
        update = tracker.update(frame(face(10 + 4 * t), face(200 - 4 * t, y=150)))
        ids.append({d.box_xyxy[1]: d.track_id for d in update.detections})
    assert all(i == ids[0] for i in ids)
    assert len(set(ids[0].values())) == 2


def test_track_keeps_id_through_a_short_gap_and_coasts_at_predicted_position() -> None:
    tracker = IoUTracker(TrackerOptions(max_age=4, grow_per_missed=0.0))
    for t in range(5):
        first = tracker.update(frame(face(10 + 5 * t)))
    track_id = first.detections.items[0].track_id
    for t in range(5, 8):  # three missed frames
        gap = tracker.update(frame())
        (coasting,) = gap.detections.items
        assert coasting.track_id == track_id and coasting.source == "tracker"
        assert coasting.box_xyxy[0] == pytest.approx(10 + 5 * t, abs=0.5)
    back = tracker.update(frame(face(10 + 5 * 8)))
    assert [d.track_id for d in back.detections] == [track_id]
    assert back.born == ()


def test_track_dies_after_max_age() -> None:
    tracker = IoUTracker(TrackerOptions(max_age=2))
    tracker.update(frame(face(10)))
    assert len(tracker.update(frame()).detections) == 1
    assert len(tracker.update(frame()).detections) == 1
    assert len(tracker.update(frame()).detections) == 0
    assert tracker.active_tracks == 0
    reborn = tracker.update(frame(face(10)))
    assert len(reborn.born) == 1 and reborn.born[0].track_id == 1


def test_coasting_box_grows_to_absorb_prediction_error() -> None:
    tracker = IoUTracker(TrackerOptions(grow_per_missed=0.1))
    tracker.update(frame(face(10)))
    (coasting,) = tracker.update(frame()).detections.items
    assert coasting.width == pytest.approx(40 * 1.2)


def test_a_coasting_box_never_shrinks_below_the_last_observed_size() -> None:
    tracker = IoUTracker(TrackerOptions(grow_per_missed=0.0))
    for t, w in enumerate((16.0, 14.0, 12.0)):  # a small face whose jittery boxes shrink as it moves
        tracker.update(frame(face(100 + 2 * t, w=w)))
    for _ in range(3, 7):
        (coasting,) = tracker.update(frame()).detections.items
        assert coasting.width == pytest.approx(12.0) and coasting.height == pytest.approx(12.0)
        x_centre = (coasting.box_xyxy[0] + coasting.box_xyxy[2]) / 2
        assert x_centre > 100 + 2 * 2 + 6  # it still moves on with the track


def test_kinds_never_match_each_other() -> None:
    tracker = IoUTracker()
    tracker.update(frame(face(10)))
    update = tracker.update(frame(face(10, kind="body")))
    assert len(update.born) == 1
    kinds = sorted((d.kind, d.source) for d in update.detections)
    assert kinds == [("body", ""), ("face", "tracker")]


def test_keypoints_follow_the_predicted_box() -> None:
    tracker = IoUTracker(TrackerOptions(grow_per_missed=0.0))
    kp = np.array([[30.0, 70.0, 1.0]], dtype=np.float32)
    for t in range(3):
        moved = kp.copy()
        moved[:, 0] += 6 * t
        tracker.update(frame(Detection((10 + 6 * t, 50, 50 + 6 * t, 90), 0.9, "face", keypoints=moved)))
    (coasting,) = tracker.update(frame()).detections.items
    assert coasting.keypoints[0, 0] == pytest.approx(30 + 18, abs=0.5)


def test_same_track_gets_the_same_seed_across_frames() -> None:
    anonymizer = Anonymizer(None, GaussianBlur(), seed=7)
    tracker = IoUTracker()
    image = np.zeros((*SIZE, 3), dtype=np.uint8)
    seeds = []
    for t in range(4):
        dets = tracker.update(frame(face(20 + 3 * t), face(200, y=120))).detections
        regions = build_regions(dets, anonymizer.region_options)
        batch = anonymizer.make_batch(image, regions, frame_index=t)
        seeds.append({r.detection.track_id: s for r, s in zip(regions, batch.seeds)})
    assert all(s == seeds[0] for s in seeds)
    assert len(set(seeds[0].values())) == 2


def test_options_are_validated() -> None:
    with pytest.raises(ValueError):
        TrackerOptions(iou_threshold=1.5)
    with pytest.raises(ValueError):
        TrackerOptions(max_age=-1)


def test_velocity_after_a_gap_is_per_frame_displacement() -> None:
    tracker = IoUTracker(TrackerOptions(max_age=5, grow_per_missed=0.0, velocity_smoothing=0.0))
    tracker.update(frame(face(10)))
    tracker.update(frame(face(14)))  # 4 px per frame
    tracker.update(frame())
    tracker.update(frame())
    tracker.update(frame(face(26)))  # seen again 3 frames later: still 4 px per frame
    (coasting,) = tracker.update(frame()).detections.items
    assert coasting.box_xyxy[0] == pytest.approx(30.0)
