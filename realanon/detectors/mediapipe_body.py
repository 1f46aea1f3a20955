"""One whole body with mediapipe pose landmarks and selfie segmentation (offline)."""

from __future__ import annotations

import threading

import numpy as np

from realanon.registry import register_detector
from realanon.structures import Detection, Detections

# Mediapipe pose landmark index for each COCO-17 keypoint (nose, eyes, ears, shoulders,
# elbows, wrists, hips, knees, ankles).
MEDIAPIPE_TO_COCO17 = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)


def pose_landmarks_to_coco17(landmarks_xyv: np.ndarray) -> np.ndarray:
    """Maps mediapipe's 33 pose landmarks ``(33, 3)`` to COCO-17 ``(17, 3)``."""
    return np.asarray(landmarks_xyv[list(MEDIAPIPE_TO_COCO17)], dtype=np.float32)


@register_detector("mediapipe_body")
class MediaPipeBodyDetector:
    """The most prominent person: pose landmarks (as COCO-17) and a person mask.

    The mask is the selfie-segmentation foreground near the pose landmarks; the box is the
    extent of that mask (or of the visible landmarks when the mask is empty).

    Args:
        min_score: Minimum pose-presence confidence.
        mask_threshold: Segmentation probability above which a pixel belongs to the person.
    """

    def __init__(self, min_score: float = 0.3, mask_threshold: float = 0.5) -> None:
        import mediapipe as mp

        self.min_score = float(min_score)
        self.mask_threshold = float(mask_threshold)
        self._pose = mp.solutions.pose.Pose(
            static_image_mode=True, model_complexity=1, min_detection_confidence=max(0.05, self.min_score)
        )
        self._segmenter = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
        self._lock = threading.Lock()

    def __call__(self, image: np.ndarray) -> Detections:
        h, w = image.shape[:2]
        rgb = np.ascontiguousarray(image)
        with self._lock:
            pose = self._pose.process(rgb)
            seg = self._segmenter.process(rgb)
        if pose.pose_landmarks is None:
            return Detections.empty((h, w))
        lms = np.array(
            [[lm.x * w, lm.y * h, lm.visibility] for lm in pose.pose_landmarks.landmark], dtype=np.float32
        )
        visible = lms[lms[:, 2] > 0.5]
        if len(visible) == 0:
            return Detections.empty((h, w))
        mask = seg.segmentation_mask > self.mask_threshold if seg.segmentation_mask is not None else None
        box = _box_of(visible[:, :2], (h, w))
        if mask is not None and mask.any():
            mask = _component_near(mask, visible[:, :2])
            if mask.any():
                ys, xs = np.nonzero(mask)
                box = (float(min(xs.min(), box[0])), float(min(ys.min(), box[1])),
                       float(max(xs.max() + 1, box[2])), float(max(ys.max() + 1, box[3])))
        score = float(np.mean(lms[:, 2]))
        det = Detection(
            box, max(score, self.min_score), "body",
            keypoints=pose_landmarks_to_coco17(lms), keypoint_layout="coco17",
            mask=mask if mask is not None and mask.any() else None, source="mediapipe_body",
        )
        return Detections((det,), (h, w))


def _box_of(points_xy: np.ndarray, size: tuple[int, int]) -> tuple[float, float, float, float]:
    h, w = size
    x1, y1 = points_xy.min(axis=0)
    x2, y2 = points_xy.max(axis=0)
    pad = 0.1 * max(x2 - x1, y2 - y1)
    return (max(0.0, x1 - pad), max(0.0, y1 - pad), min(float(w), x2 + pad), min(float(h), y2 + pad))


def _component_near(mask: np.ndarray, points_xy: np.ndarray) -> np.ndarray:
    """Keeps the connected components of ``mask`` that contain a landmark."""
    import cv2

    n, labels = cv2.connectedComponents(mask.astype(np.uint8))
    if n <= 2:
        return mask
    h, w = mask.shape
    xs = np.clip(points_xy[:, 0].astype(int), 0, w - 1)
    ys = np.clip(points_xy[:, 1].astype(int), 0, h - 1)
    keep = set(labels[ys, xs].tolist()) - {0}
    return np.isin(labels, list(keep)) if keep else mask
