"""The spread tile search of ``coco_person`` in tracked video; photos and untracked video search everything."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from realanon.detectors.coco_boxes import TiledPersonDetector, merge, run_passes
from realanon.detectors.coco_person import CocoPersonDetector
from realanon.detectors.tile_spread import TileSpread, spread_group
from realanon.interfaces import TrackedSearch
from realanon.media import read_video_frames, vtest_path


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    return cv2.resize(read_video_frames(vtest_path(), [300])[0], (1280, 720), interpolation=cv2.INTER_LINEAR)


class _Counting:
    """A :class:`~realanon.detectors.coco_boxes.PersonBoxModel` with CenterNet's input size that
    counts its passes and finds nobody."""

    name = "counting"
    input_size = 512

    def __init__(self) -> None:
        self.passes = 0

    def __call__(self, canvas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.passes += 1
        return np.zeros((0, 4)), np.zeros(0)


def test_interleaved_groups_cover_every_tile_within_spread_calls() -> None:
    tiles = list(range(7))
    for spread in (1, 2, 3, 4, 7, 9):
        groups = [spread_group(tiles, spread, turn) for turn in range(min(spread, len(tiles)))]
        assert sorted(t for g in groups for t in g) == tiles  # each tile exactly once per cycle


def test_tracked_schedule_searches_all_then_one_group_per_call(frame: np.ndarray) -> None:
    schedule = TileSpread(spread=4)
    tiles = list(range(6))
    assert schedule.tiles_now(frame, tiles) == tiles  # not tracked: everything, every call
    assert schedule.tiles_now(frame, tiles) == tiles
    schedule.set_tracked(True)
    assert schedule.tiles_now(frame, tiles) == tiles  # first tracked frame: everything
    cycle = [schedule.tiles_now(frame, tiles) for _ in range(schedule.groups(len(tiles)))]
    assert all(0 < len(group) < len(tiles) for group in cycle)
    assert sorted(t for group in cycle for t in group) == tiles
    assert schedule.tiles_now(255 - frame, tiles) == tiles  # a scene cut: everything again
    schedule.set_tracked(False)
    assert schedule.tiles_now(frame, tiles) == tiles


def test_detector_spreads_tiles_only_when_tracked(frame: np.ndarray) -> None:
    counter = _Counting()
    detector = TiledPersonDetector(counter, spread=4)
    tiles = detector.tile_regions(frame.shape[:2])
    assert len(tiles) == 6 and detector.spread_groups(frame.shape[:2]) == 4
    detector(frame)
    detector(frame)
    assert counter.passes == 2 * (1 + len(tiles))  # a photo / untracked frame: whole pass + every tile
    assert isinstance(detector, TrackedSearch)
    detector.set_tracked(True)
    counter.passes = 0
    detector(frame)
    assert counter.passes == 1 + len(tiles)
    for _ in range(4):
        detector(frame)
    assert counter.passes == (1 + len(tiles)) + 4 + len(tiles)  # 4 calls: whole pass each, every tile once
    detector.set_tracked(False)
    counter.passes = 0
    detector(frame)
    assert counter.passes == 1 + len(tiles)


def test_a_cut_box_waits_for_the_tile_that_sees_it_whole() -> None:
    image = np.zeros((100, 300, 3), np.uint8)
    tiles = [(0, 0, 150, 100), (100, 0, 250, 100), (150, 0, 300, 100)]

    passes: list[int] = []

    def run(canvas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # one person, cut by tile 0's right edge
        passes.append(1)
        if len(passes) % 2:  # the whole-frame pass (first of each search) finds nothing
            return np.zeros((0, 4)), np.zeros(0)
        scale = 512 / 150  # tile 0 (150 px) letterboxed to 512
        return np.array([[120 * scale, 10 * scale, 150 * scale, 60 * scale]]), np.array([0.9])

    spread_boxes, _ = merge(*run_passes(image, run, 512, tiles[:1], tiles), 0.5)
    all_boxes, _ = merge(*run_passes(image, run, 512, tiles[:1], tiles[:1]), 0.5)
    assert len(spread_boxes) == 0  # tile 1 holds it whole: it is found there on its turn
    assert len(all_boxes) == 1  # nothing else would see it: kept, cut


def test_small_people_in_tracked_video_get_their_whole_box_as_mask() -> None:
    frame = read_video_frames(vtest_path(), [300])[0]  # 768x576: walkers 30-90 px tall
    detector = CocoPersonDetector(threads=1, video_detail_height=96)
    photo = detector(frame)
    detector.set_tracked(True)
    video = detector(frame)  # the first tracked frame: the full search, as for a photo
    detector.set_tracked(False)
    assert sorted(d.box_xyxy for d in video) == sorted(d.box_xyxy for d in photo)
    small = [d for d in video if d.height < 96]
    assert small, "vtest frame 300 has people under 96 px"
    for det in small:
        x1, y1, x2, y2 = (int(np.floor(det.box_xyxy[0])), int(np.floor(det.box_xyxy[1])),
                          int(np.ceil(det.box_xyxy[2])), int(np.ceil(det.box_xyxy[3])))
        union = np.any([d.mask for d in video], axis=0)
        assert det.keypoints is None and det.mask is not None
        assert union[y1:y2, x1:x2].mean() >= 0.99  # the person's box is replaced whole
    for det in (d for d in photo if d.height < 96):
        assert det.keypoints is not None or det.height < 40  # photos keep the detail
