"""The evaluator's person detector: a registered detector by name for pseudo-ground-truth and retention."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from realanon.errors import ConfigError
from realanon.evaluation import run_evaluation
from realanon.evaluation.coco import Instance, Sample
from realanon.evaluation.datasets import box_detector, to_detections, vtest_splits
from realanon.evaluation.protocol import PERSON_DETECTOR, DataOptions, protocol_from_dict
from realanon.registry import DETECTORS
from realanon.structures import Detection, Detections

FAKE = "fake_person"
# The fake "person": the middle of the image, as a fraction of its width and height.
PERSON = (0.4, 0.3, 0.6, 0.7)


class FakePersonDetector:
    """Finds one person in the middle of the image unless that part is flat, plus a face to ignore.

    Content-dependent on purpose: a flat fill (the ``mask`` method) removes the person, the
    original keeps it. Records the size of every image it sees.
    """

    seen: list[tuple[int, int]] = []

    def __call__(self, image: np.ndarray) -> Detections:
        h, w = image.shape[:2]
        FakePersonDetector.seen.append((h, w))
        box = (PERSON[0] * w, PERSON[1] * h, PERSON[2] * w, PERSON[3] * h)
        x1, y1, x2, y2 = (round(v) for v in box)
        mask = np.zeros((h, w), bool)
        mask[y1:y2, x1:x2] = True
        face = Detection((0.0, 0.0, 4.0, 4.0), 0.9, "face")
        if image[y1:y2, x1:x2].std() < 1.0:
            return Detections((face,), (h, w))
        return Detections((Detection(box, 0.9, "body", mask=mask), face), (h, w))  # type: ignore[arg-type]


@pytest.fixture()
def fake_detector(monkeypatch: pytest.MonkeyPatch) -> type[FakePersonDetector]:
    DETECTORS.names()  # load the built-ins first, so the patched copy holds them
    monkeypatch.setattr(DETECTORS, "_factories", dict(DETECTORS._factories))
    DETECTORS.add(FAKE, FakePersonDetector)
    FakePersonDetector.seen = []
    return FakePersonDetector


def test_the_coco_person_detector_is_the_default() -> None:
    assert PERSON_DETECTOR == "coco_person"
    assert DataOptions().pseudo_gt == PERSON_DETECTOR
    from realanon.evaluation.protocol import RetentionOptions

    assert RetentionOptions().detectors == (PERSON_DETECTOR,)


def test_registered_detector_keeps_people_and_maps_upscaled_boxes_back(fake_detector: type) -> None:
    image = np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)
    (person,) = box_detector(FAKE, upscale=2.0)(image)
    assert fake_detector.seen == [(120, 160)]
    np.testing.assert_allclose(person.box_xyxy, (32.0, 18.0, 48.0, 42.0))
    assert person.mask is not None and person.mask.shape == (60, 80) and person.mask[30, 40]
    # A per-detector upscale in the options overrides the shared one.
    box_detector(FAKE, upscale=2.0, options={"upscale": 1.0})(image)
    assert fake_detector.seen[-1] == (60, 80)


@pytest.mark.parametrize("upscale", [0.0, -1.0])
def test_bad_upscale_is_a_config_error(fake_detector: type, upscale: float) -> None:
    with pytest.raises(ConfigError, match="upscale"):
        box_detector(FAKE, upscale=upscale)


def test_pseudo_ground_truth_comes_from_the_named_detector(fake_detector: type) -> None:
    options = DataOptions(frames=4, video_frames=40, train_fraction=0.5, scale=0.5, pseudo_gt=FAKE)
    train, val = vtest_splits(options)
    assert len(train) == 2 and len(val) == 2
    assert fake_detector.seen == [(576, 768)] * 4  # run on the full-size frames
    for sample in train + val:
        (person,) = sample.instances  # the face is not a person
        np.testing.assert_allclose(person.box_xyxy, (153.6, 86.4, 230.4, 201.6))
        assert sample.image.shape[:2] == (288, 384)


@pytest.mark.parametrize("detail", [False, True])
def test_pseudo_ground_truth_keeps_masks_only_when_asked(fake_detector: type, detail: bool) -> None:
    options = DataOptions(frames=2, video_frames=40, scale=0.5, pseudo_gt=FAKE, pseudo_gt_detail=detail)
    train, val = vtest_splits(options)
    (person,) = (train + val)[0].instances
    if not detail:
        assert person.mask is None
        return
    assert person.mask is not None and person.mask.shape == (288, 384)
    assert person.mask[144, 192] and not person.mask[10, 10]  # scaled with the frame


@pytest.mark.parametrize(("ignore_below", "crowd"), [(0.0, False), (0.5, False), (0.95, True)])
def test_people_scoring_below_the_ignore_score_are_ignore_regions(
    fake_detector: type, ignore_below: float, crowd: bool
) -> None:
    options = DataOptions(frames=2, video_frames=40, pseudo_gt=FAKE, pseudo_gt_ignore_below=ignore_below)
    train, val = vtest_splits(options)
    (person,) = (train + val)[0].instances  # the fake person scores 0.9
    assert person.crowd is crowd
    assert len(to_detections((train + val)[0])) == 1  # replaced either way


def test_body_detections_carry_coco17_keypoints_faces_do_not() -> None:
    kps = np.ones((17, 3), np.float32)
    sample = Sample(np.zeros((40, 40, 3), np.uint8), (Instance((1.0, 2.0, 20.0, 30.0), keypoints=kps),))
    (body,) = to_detections(sample, "body")
    assert body.keypoint_layout == "coco17" and body.keypoints is not None and body.keypoints.shape == (17, 3)
    (face,) = to_detections(sample, "face")
    assert face.keypoints is None and face.keypoint_layout is None


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"data": {"pseudo_gt": "nobody"}}, "data.pseudo_gt"),
        ({"utility": {"retention": {"detectors": ["hog", "nobody"]}}, "data": {"pseudo_gt": "hog"}},
         "utility.retention.detectors"),
    ],
)
def test_unknown_detector_names_are_refused_at_load(data: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=f"{key}: unknown detector 'nobody'"):
        protocol_from_dict(data)


def test_hog_stays_selectable() -> None:
    protocol = protocol_from_dict({"data": {"pseudo_gt": "hog", "pseudo_gt_upscale": 1.3},
                                   "utility": {"retention": {"detectors": ["hog"], "upscale": 2.6}}})
    assert protocol.data.pseudo_gt == "hog" and protocol.utility.retention.detectors == ("hog",)


PROTOCOL = """
name = "fake"
seeds = [0]
include_registered = false
methods = ["original", {name = "mask", method = "mask"}]
[data]
frames = 6
video_frames = 60
train_fraction = 0.5
pseudo_gt = "fake_person"
[utility.detection]
enabled = false
[utility.classification]
enabled = false
[utility.retention]
detectors = ["fake_person"]
[privacy]
enabled = false
[leak]
enabled = false
"""


def test_retention_uses_the_named_detector(tmp_path: Path, fake_detector: type) -> None:
    config = tmp_path / "fake.toml"
    config.write_text(PROTOCOL)
    summary = json.loads((run_evaluation(config, tmp_path / "run") / "results.json").read_text())["summary"]
    # Its own boxes on the originals are found again; the mask method's flat fill hides every one.
    assert summary["original"]["retention_recall"]["mean"] == 1.0
    assert summary["mask"]["retention_recall"]["mean"] == 0.0
