from __future__ import annotations

import numpy as np
import pytest

from realanon.config import AnonymizerConfig, RegionOptions
from realanon.pipeline import Anonymizer, build_anonymizer, region_seed
from realanon.regions import union_mask
from realanon.registry import GENERATORS
from realanon.structures import Detection, Detections
from tests.helpers import FailingGenerator, FixedDetector, face

BASELINES = ("blur", "pixelate", "mask")


def _scene(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)


@pytest.mark.parametrize("method", BASELINES)
def test_pixels_outside_replace_mask_are_bit_identical(method: str, rng: np.random.Generator) -> None:
    image = _scene(rng)
    dets = (face(20, 20, 60, 70), face(100, -10, 170, 50), Detection((5, 60, 70, 125), 0.8, "body"))
    for target in ("face", "body"):
        anonymizer = Anonymizer(FixedDetector(dets), GENERATORS.build(method), target=target)
        result = anonymizer(image)
        assert result.failed is None
        assert len(result.regions) == sum(d.kind == target for d in dets)
        union = union_mask(result.regions, image.shape[:2])
        assert union.any()
        np.testing.assert_array_equal(result.image[~union], image[~union])
        assert (result.image[union] != image[union]).any()


@pytest.mark.parametrize("method", BASELINES)
def test_no_detections_returns_identical_image(method: str, rng: np.random.Generator) -> None:
    image = _scene(rng)
    result = Anonymizer(FixedDetector(()), GENERATORS.build(method))(image)
    assert result.image is not image
    np.testing.assert_array_equal(result.image, image)
    assert result.image.dtype == np.uint8 and result.image.shape == image.shape


def test_same_seed_same_output_and_shapes(rng: np.random.Generator) -> None:
    image = _scene(rng)
    dets = FixedDetector((face(30, 30, 80, 90),))
    outs = [Anonymizer(dets, GENERATORS.build("pixelate"), seed=7)(image).image for _ in range(2)]
    np.testing.assert_array_equal(outs[0], outs[1])
    assert outs[0].shape == image.shape and outs[0].dtype == np.uint8


def test_threshold_drops_low_scores(rng: np.random.Generator) -> None:
    image = _scene(rng)
    dets = FixedDetector((face(10, 10, 50, 50, score=0.2), face(90, 40, 140, 100, score=0.9)))
    result = Anonymizer(dets, GENERATORS.build("mask"), threshold=0.5)(image)
    assert [d.score for d in result.detections] == [pytest.approx(0.9)]
    np.testing.assert_array_equal(result.image[20:40, 20:40], image[20:40, 20:40])


def test_fail_closed_masks_whole_frame(rng: np.random.Generator) -> None:
    image = _scene(rng)
    anonymizer = Anonymizer(FixedDetector((face(30, 30, 80, 90),)), FailingGenerator())
    result = anonymizer(image)
    assert result.failed is not None and "injected fault" in result.failed
    assert not result.image.any()
    with pytest.raises(RuntimeError, match="injected fault"):
        Anonymizer(FixedDetector((face(30, 30, 80, 90),)), FailingGenerator(), fail_closed=False)(image)


def test_given_detections_skip_detector(rng: np.random.Generator) -> None:
    image = _scene(rng)
    anonymizer = Anonymizer(None, GENERATORS.build("mask"))
    given = Detections((face(30, 30, 80, 90),), image.shape[:2])
    assert len(anonymizer(image, given).regions) == 1
    with pytest.raises(ValueError, match="size"):
        Anonymizer(None, GENERATORS.build("mask"), fail_closed=False)(image, Detections.empty((10, 10)))


@pytest.mark.parametrize("bad", [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 3), np.float32),
                                 np.zeros((0, 10, 3), np.uint8)])
def test_rejects_non_rgb_uint8(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8|empty"):
        Anonymizer(None, GENERATORS.build("mask"))(bad)


def test_region_seed_depends_on_key_and_base() -> None:
    assert region_seed(0, (1, 5)) == region_seed(0, (1, 5))
    assert len({region_seed(0, (1, 5)), region_seed(0, (1, 6)), region_seed(1, (1, 5))}) == 3
    assert 0 <= region_seed(2**40, (2**40,)) < 2**63


def test_tracks_keep_their_seed_across_frames(rng: np.random.Generator) -> None:
    image = _scene(rng)
    anonymizer = Anonymizer(None, GENERATORS.build("mask"))
    det = face(30, 30, 80, 90).with_track(3)
    regions = anonymizer(image, Detections((det,), image.shape[:2])).regions
    seeds = [anonymizer.make_batch(image, regions, frame_index=i).seeds[0] for i in range(3)]
    assert len(set(seeds)) == 1
    untracked = anonymizer(image, Detections((face(30, 30, 80, 90),), image.shape[:2])).regions
    assert len({anonymizer.make_batch(image, untracked, frame_index=i).seeds[0] for i in range(3)}) == 3


class _BatchingDetector:
    """Returns a different set of detections per image; records the sizes of its batched calls."""

    def __init__(self, extra_results: int = 0) -> None:
        self.extra_results = extra_results
        self.batches: list[int] = []

    def __call__(self, image: np.ndarray) -> Detections:
        x = float(image[0, 0, 0])
        dets = (face(x, 10, x + 40, 50, score=0.9), face(x, 60, x + 40, 100, score=0.2),
                Detection((x, 0, x + 50, 110), 0.9, "body"))
        return Detections(dets, image.shape[:2])

    def detect_batch(self, images: list[np.ndarray]) -> list[Detections]:
        self.batches.append(len(images))
        return [self(image) for image in images] + [self(images[0])] * self.extra_results


def _summary(dets: Detections) -> tuple[tuple[int, int], list[tuple[tuple[float, ...], float, str]]]:
    return dets.image_size, [(d.box_xyxy, d.score, d.kind) for d in dets]


def test_detect_many_equals_detect_per_image() -> None:
    images = [np.full((120, 160, 3), value, np.uint8) for value in (5, 25, 45)]
    batching = _BatchingDetector()
    plain = Anonymizer(batching.__call__, GENERATORS.build("mask"), threshold=0.5)
    batched = Anonymizer(batching, GENERATORS.build("mask"), threshold=0.5)
    expected = [_summary(plain.detect(image)) for image in images]
    assert [_summary(d) for d in batched.detect_many(images)] == expected and batching.batches == [3]
    assert [_summary(d) for d in plain.detect_many(images)] == expected and batching.batches == [3]
    assert [[box[0] for box, _, _ in dets] for _, dets in expected] == [[5.0], [25.0], [45.0]]  # face, >= 0.5


def test_detect_many_rejects_a_wrong_number_of_results() -> None:
    images = [np.zeros((20, 30, 3), np.uint8)] * 2
    with pytest.raises(ValueError, match="3 results for 2 images"):
        Anonymizer(_BatchingDetector(extra_results=1), GENERATORS.build("mask")).detect_many(images)


def test_real_face_on_astronaut_is_blurred(astronaut: np.ndarray) -> None:
    anonymizer = build_anonymizer(AnonymizerConfig(method="blur", threshold=0.4))
    result = anonymizer(astronaut)
    assert len(result.detections) == 1
    x1, y1, x2, y2 = (int(v) for v in result.detections.items[0].box_xyxy)
    # The face (about 105x105 px around (225, 120)) is covered and changed.
    assert 150 < x1 < 200 and 50 < y1 < 100 and 250 < x2 < 300 and 150 < y2 < 200
    union = union_mask(result.regions, astronaut.shape[:2])
    assert union[y1:y2, x1:x2].mean() > 0.95
    changed = np.abs(result.image[y1:y2, x1:x2].astype(int) - astronaut[y1:y2, x1:x2]).mean()
    assert changed > 10
    np.testing.assert_array_equal(result.image[~union], astronaut[~union])


def test_partial_face_replaces_only_the_top(astronaut: np.ndarray) -> None:
    det = FixedDetector((face(174, 68, 278, 172),))
    full = Anonymizer(det, GENERATORS.build("mask"))(astronaut)
    part = Anonymizer(det, GENERATORS.build("mask"), regions=RegionOptions(partial_face=True))(astronaut)
    full_mask = union_mask(full.regions, astronaut.shape[:2])
    part_mask = union_mask(part.regions, astronaut.shape[:2])
    assert part_mask.sum() < 0.75 * full_mask.sum() and not (part_mask & ~full_mask).any()
    rows = np.flatnonzero(part_mask.any(axis=1))
    full_rows = np.flatnonzero(full_mask.any(axis=1))
    assert rows[0] == full_rows[0] and rows[-1] < full_rows[-1] - 0.3 * len(full_rows)


def test_photos_get_their_own_detector_options() -> None:
    # The default face detector searches video frames and photos alike, each one whole.
    default = build_anonymizer(AnonymizerConfig(method="mask"))
    assert not default.detector.reuse_unchanged and default.photo_detector is None  # type: ignore[attr-defined]
    mp = AnonymizerConfig(method="mask", detector="mediapipe_face")
    tiled = build_anonymizer(mp)
    assert tiled.detector.tile_size == 640 and tiled.photo_detector.tile_size == 384  # type: ignore[attr-defined,union-attr]
    # What the user sets for the detector holds for photos too; {} searches photos like video.
    fast = build_anonymizer(mp.replace(detector_options={"tile_size": 0}))
    assert fast.detector.tile_size == 0 and fast.photo_detector is None  # type: ignore[attr-defined]
    assert build_anonymizer(mp.replace(photo_detector_options={})).photo_detector is None
    own = build_anonymizer(mp.replace(photo_detector_options={"tile_size": 192}))
    assert own.photo_detector.tile_size == 192  # type: ignore[union-attr]
    # No built-in photo options for the body detector.
    assert build_anonymizer(AnonymizerConfig(method="mask", target="body")).photo_detector is None


def test_photo_detector_is_used_only_for_photos(rng: np.random.Generator) -> None:
    image = _scene(rng)
    video = FixedDetector((face(10, 10, 40, 40),))
    photo = FixedDetector((face(60, 60, 100, 100), face(10, 10, 40, 40)))
    anonymizer = Anonymizer(video, GENERATORS.build("mask"), photo_detector=photo)
    assert len(anonymizer(image).detections) == 1
    assert len(anonymizer(image, photo=True).detections) == 2
    assert len(Anonymizer(video, GENERATORS.build("mask"))(image, photo=True).detections) == 1
