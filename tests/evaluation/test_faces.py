"""Identity distance and re-detection on a real face (scikit-image's astronaut)."""

from __future__ import annotations

import numpy as np
import pytest

from realanon.evaluation.privacy import face_descriptors, identity_distances, redetection_rate
from realanon.structures import Detection


@pytest.fixture(scope="module")
def face(astronaut: np.ndarray) -> Detection:
    from realanon.detectors.mediapipe_face import MediaPipeFaceDetector

    dets = MediaPipeFaceDetector().__call__(astronaut)
    assert len(dets) == 1
    return dets.items[0]


def _masked(image: np.ndarray, det: Detection) -> np.ndarray:
    out = image.copy()
    x1, y1, x2, y2 = (int(v) for v in det.box_xyxy)
    out[max(y1 - 10, 0):y2 + 10, max(x1 - 10, 0):x2 + 10] = 0
    return out


def test_identity_distance_of_identical_faces_is_zero(astronaut: np.ndarray, face: Detection) -> None:
    desc = face_descriptors([astronaut], [face])
    assert desc.shape == (1, 128)
    assert identity_distances(desc, [astronaut], [face])[0] == pytest.approx(0.0, abs=1e-6)


def test_identity_distance_of_a_removed_face_is_large(astronaut: np.ndarray, face: Detection) -> None:
    import cv2

    desc = face_descriptors([astronaut], [face])
    slightly = cv2.GaussianBlur(astronaut, (3, 3), 0.6)
    near = identity_distances(desc, [slightly], [face])[0]
    far = identity_distances(desc, [_masked(astronaut, face)], [face])[0]
    assert near < 0.3 < 0.6 < far


def test_centerface_redetects_original_not_masked(astronaut: np.ndarray, face: Detection) -> None:
    assert redetection_rate([astronaut], [face]) == 1.0
    assert redetection_rate([_masked(astronaut, face)], [face]) == 0.0
