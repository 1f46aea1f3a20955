"""Registry-wide contracts: every registered generator and detector, built from the real classes.

A name added to a registry without an entry in the tables below fails here, so no component
escapes the contract.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from realanon.pipeline import Anonymizer
from realanon.regions import union_mask
from realanon.registry import DETECTORS, GENERATORS
from realanon.structures import Detections
from tests.generators.test_diffusion import _tiny_pipeline_dir
from tests.helpers import FixedDetector, face


def _generator_options(name: str, tmp: Path) -> dict[str, Any]:
    table: dict[str, dict[str, Any]] = {
        "blur": {}, "pixelate": {}, "mask": {}, "donor": {}, "gan": {},
        "diffusion": {"model": str(_tiny_pipeline_dir(tmp)), "steps": 2},
    }
    if name not in table:
        pytest.fail(f"generator {name!r} has no entry in the contract table")
    return table[name]


DETECTOR_OPTIONS: dict[str, dict[str, Any]] = {
    "mediapipe_face": {}, "mediapipe_body": {}, "centerface": {}, "yunet": {},
    "coco_person": {}, "centernet_person": {}, "nanodet_person": {}, "movenet_pose": {},
    "keypoint_rcnn": {"weights": "random", "min_size": 128, "max_size": 160},
    "mask_rcnn": {"weights": "random", "min_size": 128, "max_size": 160},
}


@pytest.fixture(scope="module")
def scene(astronaut: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(astronaut[40:232, 130:322])  # 192x192 around the face


@pytest.mark.parametrize("name", GENERATORS.names())
def test_generator_contract(name: str, scene: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> None:
    generator = GENERATORS.build(name, **_generator_options(name, tmp_path_factory.mktemp(name)))
    dets = FixedDetector((face(44, 28, 148, 132),))
    anonymizer = Anonymizer(dets, generator, seed=3, fail_closed=False)
    first, second = anonymizer(scene), anonymizer(scene)
    assert first.image.shape == scene.shape and first.image.dtype == np.uint8
    union = union_mask(first.regions, scene.shape[:2])
    np.testing.assert_array_equal(first.image[~union], scene[~union])
    np.testing.assert_array_equal(first.image, second.image)
    assert np.abs(first.image[union].astype(int) - scene[union]).mean() > 3
    np.testing.assert_array_equal(Anonymizer(FixedDetector(()), generator)(scene).image, scene)


def test_every_detector_has_a_contract_entry() -> None:
    assert set(DETECTORS.names()) == set(DETECTOR_OPTIONS)


@pytest.mark.parametrize("name", sorted(DETECTOR_OPTIONS))
def test_detector_contract(name: str, scene: np.ndarray) -> None:
    detector = DETECTORS.build(name, **DETECTOR_OPTIONS[name])
    for image in (scene, np.zeros((64, 80, 3), np.uint8)):
        dets = detector(image)
        assert isinstance(dets, Detections) and dets.image_size == image.shape[:2]
        for det in dets:
            assert det.kind in ("face", "body") and 0.0 <= det.score <= 1.0
            x1, y1, x2, y2 = det.box_xyxy
            assert x2 > x1 and y2 > y1
            if det.keypoints is not None:
                assert det.keypoints.shape[1] == 3 and det.keypoint_layout
            if det.mask is not None:
                assert det.mask.shape == image.shape[:2] and det.mask.dtype == bool
