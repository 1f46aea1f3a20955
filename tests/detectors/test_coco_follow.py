"""``coco_person`` between full searches in tracked video: crops around the people found before, and
keypoints and masks carried over where a person hardly moved."""

from __future__ import annotations

import numpy as np

from realanon.detectors.coco_boxes import FOLLOW_MIN_INPUT, TiledPersonDetector
from realanon.detectors.coco_person import CocoPersonDetector
from realanon.detectors.coco_reuse import DetailReuse, shift_mask
from realanon.detectors.coco_tiles import follow_regions
from realanon.detectors.tile_spread import FOLLOW_CALLS, TileSpread
from realanon.media import read_video_frames, vtest_path
from realanon.structures import Detection


class _PeopleOnce:
    """A model of any input size that finds ``boxes`` (frame pixels of a frame ``width`` px wide) on its
    first pass only, and records the shape of every canvas it is given."""

    name = "people_once"
    input_size = 512
    any_size = True

    def __init__(self, boxes: list[list[float]], width: int, score: float = 0.9) -> None:
        self.boxes = np.array(boxes, dtype=float) * 512 / width  # the whole pass letterboxes the frame into 512
        self.canvases: list[tuple[int, ...]] = []
        self.score = score

    def __call__(self, canvas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.canvases.append(canvas.shape)
        if len(self.canvases) > 1:
            return np.zeros((0, 4)), np.zeros(0)
        return self.boxes, np.full(len(self.boxes), self.score)


class _OnePersonOnce:
    """A model of any input size that finds one person (40 px tall at (600, 300) of a 1280x720
    frame) on its first pass only, and records the shape of every canvas it is given."""

    name = "one_person_once"
    input_size = 512
    any_size = True

    def __init__(self, score: float = 0.9) -> None:
        self.canvases: list[tuple[int, ...]] = []
        self.passes = 0
        self.score = score

    def __call__(self, canvas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.canvases.append(canvas.shape)
        self.passes += 1
        if self.passes > 1:
            return np.zeros((0, 4)), np.zeros(0)
        scale = 512 / 1280  # the whole-frame pass letterboxes 1280 px into 512
        return np.array([[600, 300, 620, 340]]) * scale, np.array([self.score])


def test_follow_regions_grow_each_person_and_merge_neighbours() -> None:
    boxes = np.array([[100, 100, 110, 140], [118, 100, 128, 140], [1000, 600, 1020, 640]], dtype=float)
    regions = follow_regions(boxes, (720, 1280), grow=0.5, min_side=64, max_side=614)
    assert len(regions) == 2  # the two neighbours share one region
    near, far = sorted(regions)
    assert near[0] <= 100 - 20 and near[2] >= 128 + 20 and near[1] <= 100 - 20 and near[3] >= 140 + 20
    assert far[2] - far[0] >= 64 and far[3] - far[1] >= 64
    edge = follow_regions(np.array([[0, 700, 10, 720]], dtype=float), (720, 1280), 0.5, 64, 614)
    assert edge[0][0] == 0 and edge[0][3] == 720  # clipped to the frame
    row = np.array([[x, 300, x + 20, 340] for x in range(0, 1280, 60)], dtype=float)
    merged = follow_regions(row, (720, 1280), 0.5, 64, max_side=300)
    assert len(merged) > 1 and all(x2 - x1 <= 300 and y2 - y1 <= 300 for x1, y1, x2, y2 in merged)


def test_followed_people_are_kept_until_found_again_or_lost_for_long() -> None:
    schedule = TileSpread(spread=6, follow=True)
    person = np.array([[10.0, 10.0, 20.0, 40.0]])
    schedule.remember(person)
    assert len(schedule.followed()) == 0  # not tracked: nothing is followed
    schedule.set_tracked(True)
    schedule.remember(person)
    schedule.remember(person + 2)  # found again a little further: one person, the new box
    assert np.array_equal(schedule.followed(), person + 2)
    for _ in range(FOLLOW_CALLS - 1):
        schedule.remember(np.zeros((0, 4)))
    assert np.array_equal(schedule.followed(), person + 2)  # missed FOLLOW_CALLS - 1 calls: still looked for
    schedule.remember(np.zeros((0, 4)))
    assert len(schedule.followed()) == 0
    schedule.remember(person)
    schedule.reset()
    assert len(schedule.followed()) == 0


def test_tracked_calls_between_full_searches_search_a_crop_around_each_small_person() -> None:
    frame = np.zeros((720, 1280, 3), np.uint8)
    model = _OnePersonOnce()
    detector = TiledPersonDetector(model, spread=6, follow=True)
    tiles = detector.tile_regions(frame.shape[:2])
    detector.set_tracked(True)
    first = detector(frame)
    assert len(first) == 1 and len(model.canvases) == 1 + len(tiles)  # the first tracked frame: everything
    model.canvases.clear()
    detector(frame)
    whole, *rest = model.canvases
    assert whole[:2] == (512, 512) and len(rest) == 2  # one tile group (1 of 6 tiles) and one crop
    assert min(rest)[:2] == (FOLLOW_MIN_INPUT, FOLLOW_MIN_INPUT)  # the crop: the least size, around the person
    model.canvases.clear()
    for _ in range(FOLLOW_CALLS + 1):
        detector(frame)
    # looked for on the FOLLOW_CALLS calls after it was last found (one of them above), then no more
    assert len(model.canvases) == 2 * (FOLLOW_CALLS + 1) + FOLLOW_CALLS - 1
    unfollowing = TiledPersonDetector(_OnePersonOnce(), spread=6, follow=False)
    unfollowing.set_tracked(True)
    unfollowing(frame)
    unfollowing.model.canvases.clear()  # type: ignore[attr-defined]
    unfollowing(frame)
    assert len(unfollowing.model.canvases) == 2  # type: ignore[attr-defined]


def test_a_crowd_to_follow_gets_the_whole_search_instead_of_crops() -> None:
    frame = np.zeros((576, 768, 3), np.uint8)  # 2 tiles: one searched per tracked frame, one left out
    crowd = [[x, y, x + 15, y + 30] for x, y in ((200, 150), (450, 150), (200, 400), (450, 400), (700, 300))]
    model = _PeopleOnce(crowd, width=768)
    detector = TiledPersonDetector(model, spread=6)
    tiles = detector.tile_regions(frame.shape[:2])
    assert len(tiles) == 2
    detector.set_tracked(True)
    assert len(detector(frame)) == len(crowd)
    model.canvases.clear()
    detector(frame)
    assert model.canvases == [(512, 512, 3)] * 3  # their crops would cost more than the tile left out
    lone = TiledPersonDetector(_PeopleOnce([[380, 270, 395, 300]], width=768), spread=6)  # one person: a crop
    lone.set_tracked(True)
    lone(frame)
    lone.model.canvases.clear()  # type: ignore[attr-defined]
    lone(frame)
    assert lone.model.canvases == [(512, 512, 3)] * 2 + [(FOLLOW_MIN_INPUT, FOLLOW_MIN_INPUT, 3)]  # type: ignore[attr-defined]


def test_a_candidate_under_the_threshold_is_followed_but_not_reported() -> None:
    frame = np.zeros((720, 1280, 3), np.uint8)
    for follow_min_score, crops in ((0.15, 1), (0.25, 0)):
        model = _OnePersonOnce(score=0.2)
        detector = TiledPersonDetector(model, spread=6, min_score=0.25, follow_min_score=follow_min_score)
        detector.set_tracked(True)
        assert len(detector(frame)) == 0
        model.canvases.clear()
        assert len(detector(frame)) == 0
        assert len(model.canvases) == 2 + crops


def test_shift_mask_moves_pixels_and_drops_those_leaving_the_frame() -> None:
    mask = np.zeros((6, 8), bool)
    mask[1:3, 6:8] = True
    moved = shift_mask(mask, 1, 2)
    assert moved[3:5, 7].all() and moved.sum() == 2
    assert shift_mask(mask, -6, -1)[0:2, 0:2].all()
    assert not shift_mask(mask, 8, 0).any()


def _person(box: tuple[float, float, float, float], size: tuple[int, int] = (200, 300)) -> Detection:
    mask = np.zeros(size, bool)
    x1, y1, x2, y2 = (int(v) for v in box)
    mask[y1:y2, x1:x2] = True
    kp = np.tile(np.array([[(x1 + x2) / 2, (y1 + y2) / 2, 0.9]], np.float32), (17, 1))
    return Detection(box, 0.9, "body", keypoints=kp, keypoint_layout="coco17", mask=mask)


def test_details_are_carried_over_only_for_a_person_who_hardly_moved() -> None:
    reuse = DetailReuse(min_iou=0.7, max_resize=0.05, max_age=2)
    old = _person((100, 50, 140, 150))
    reuse.remember([old], [0])
    still = Detection((103, 52, 143, 152), 0.8, "body")
    walked = Detection((125, 50, 165, 150), 0.8, "body")
    grew = Detection((100, 50, 150, 170), 0.8, "body")
    out, ages = reuse.apply([still, walked, grew])
    assert ages == [1, 0, 0]
    assert out[0].box_xyxy == still.box_xyxy and np.array_equal(out[0].mask, shift_mask(old.mask, 3, 2))
    assert np.allclose(out[0].keypoints[:, :2], old.keypoints[:, :2] + (3, 2))  # type: ignore[index]
    assert out[1].mask is None and out[2].mask is None
    reuse.remember(out, ages)
    out, ages = reuse.apply([still])
    assert ages == [2]
    reuse.remember(out, ages)
    out, ages = reuse.apply([still])
    assert ages == [0] and out[0].mask is None  # reused max_age times in a row: computed afresh
    reuse.reset()
    assert reuse.apply([still])[1] == [0]


def test_tracked_coco_person_carries_masks_of_people_who_did_not_move() -> None:
    frame = read_video_frames(vtest_path(), [300])[0]  # 768x576: walkers 30-90 px tall
    detector = CocoPersonDetector(threads=1, video_detail_height=60, box_options={"spread": 1})
    detector.set_tracked(True)
    first = detector(frame)
    computed: list[Detection] = []
    mask_for = detector.masks.mask_for
    detector.masks.mask_for = lambda image, det: computed.append(det) or mask_for(image, det)  # type: ignore[method-assign]
    second = detector(frame)  # the same frame again: every detailed person is carried over
    detector.set_tracked(False)
    detailed = [d for d in first if d.height >= 60]
    assert detailed and not computed
    assert [d.box_xyxy for d in second] == [d.box_xyxy for d in first]
    for a, b in zip(first, second):
        assert np.array_equal(a.mask, b.mask)
