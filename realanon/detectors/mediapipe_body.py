"""Every person's whole body, offline: person proposals, then mediapipe pose landmarks (as
COCO-17) and person segmentation inside each person's crop.

Proposals come from OpenCV's HOG people detector (upscaled so people down to about 64 px
tall are found) and from one mediapipe pose pass over the whole frame (which finds the most
prominent person however large). Each proposal is cropped with some context, and mediapipe's
pose landmarker and selfie segmenter run on the crop, so every person gets their own
instance mask; where people overlap, their masks may overlap and the union is replaced.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import cv2
import numpy as np

from realanon.detectors._boxes import nms
from realanon.registry import register_detector
from realanon.structures import Detection, Detections

# Mediapipe pose landmark index for each COCO-17 keypoint (nose, eyes, ears, shoulders,
# elbows, wrists, hips, knees, ankles).
MEDIAPIPE_TO_COCO17 = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
PROPOSALS = ("hog", "pose")
# Context added around a proposal before pose and segmentation (fraction of its size).
_CROP_CONTEXT_X = 0.35
_CROP_CONTEXT_Y = 0.15
# Crops are upscaled to at least this height; mediapipe's pose works at 256 px.
_MIN_CROP_HEIGHT = 256
_VISIBLE = 0.5


def pose_landmarks_to_coco17(landmarks_xyv: np.ndarray) -> np.ndarray:
    """Maps mediapipe's 33 pose landmarks ``(33, 3)`` to COCO-17 ``(17, 3)``."""
    return np.asarray(landmarks_xyv[list(MEDIAPIPE_TO_COCO17)], dtype=np.float32)


@register_detector("mediapipe_body")
class MediaPipeBodyDetector:
    """Every person: a box, COCO-17 keypoints and an instance mask each.

    Args:
        min_score: Minimum confidence kept (pose presence, or the HOG score when the pose
            landmarker finds nobody in a proposal: such people keep their box, no mask).
        mask_threshold: Segmentation probability above which a pixel belongs to the person.
        proposals: Which proposal stages to run, a subset of ``("hog", "pose")``.
        hog_min_height: People shorter than this many pixels are searched for by upscaling
            the frame for the HOG detector (its window is 128 px tall); costs time.
        nms_iou: Proposals overlapping by this IoU are the same person.
        max_people: At most this many proposals (best first) get pose and segmentation.
    """

    def __init__(
        self,
        min_score: float = 0.3,
        mask_threshold: float = 0.5,
        proposals: tuple[str, ...] | list[str] = PROPOSALS,
        hog_min_height: int = 64,
        nms_iou: float = 0.4,
        max_people: int = 30,
    ) -> None:
        unknown = set(proposals) - set(PROPOSALS)
        if unknown or not proposals:
            raise ValueError(f"mediapipe_body proposals must be a non-empty subset of {PROPOSALS}, got {proposals!r}")
        import mediapipe as mp

        self.min_score = float(min_score)
        self.mask_threshold = float(mask_threshold)
        self.proposals = tuple(proposals)
        self.hog_min_height = int(hog_min_height)
        self.nms_iou = float(nms_iou)
        self.max_people = int(max_people)
        self._pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1, min_detection_confidence=0.3)
        self._segmenter = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self._lock = threading.Lock()

    def __call__(self, image: np.ndarray) -> Detections:
        """Detects people in an RGB ``(H, W, 3)`` uint8 image."""
        h, w = image.shape[:2]
        rgb = np.ascontiguousarray(image)
        with self._lock:
            boxes, scores = self.propose(rgb)
            items = [self._person(rgb, boxes[i], scores[i]) for i in range(len(boxes))]
        kept = [d for d in items if d is not None and d.score >= self.min_score]
        # Two proposals of one person can converge on the same landmarks: merge them.
        # People with landmarks rank above box-only proposals, so a stray HOG box inside a
        # real person never suppresses that person.
        if len(kept) > 1:
            rank = np.array([d.score + (d.keypoints is not None) for d in kept])
            order = nms(np.array([d.box_xyxy for d in kept]), rank, 0.6, 0.85)
            kept = [kept[i] for i in order]
        return Detections(tuple(kept), (h, w))

    def propose(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Person proposals: ``(N, 4)`` float XYXY boxes and ``(N,)`` scores in [0, 1], best first."""
        boxes: list[np.ndarray] = []
        scores: list[float] = []
        if "pose" in self.proposals:
            lms = _pose_landmarks(self._pose, rgb)
            if lms is not None and (lms[:, 2] > _VISIBLE).sum() >= 3:
                boxes.append(np.array(_landmark_box(lms, rgb.shape[:2]), dtype=np.float64))
                scores.append(float(np.mean(lms[:, 2])))
        if "hog" in self.proposals:
            hb, hs = hog_people(self._hog, rgb, self.hog_min_height)
            boxes.extend(hb)
            scores.extend(hs.tolist())
        if not boxes:
            return np.zeros((0, 4)), np.zeros(0)
        b, s = np.stack(boxes), np.asarray(scores)
        keep = nms(b, s, self.nms_iou)[: self.max_people]
        return b[keep], s[keep]

    def _person(self, rgb: np.ndarray, box: np.ndarray, score: float) -> Detection | None:
        """Pose and segmentation inside one proposal's crop."""
        h, w = rgb.shape[:2]
        x1, y1, x2, y2 = box
        bw, bh = x2 - x1, y2 - y1
        crop_box = _clip((x1 - _CROP_CONTEXT_X * bw, y1 - _CROP_CONTEXT_Y * bh,
                          x2 + _CROP_CONTEXT_X * bw, y2 + _CROP_CONTEXT_Y * bh), (h, w))
        cx1, cy1, cx2, cy2 = crop_box
        if cx2 - cx1 < 8 or cy2 - cy1 < 8:
            return None
        crop = rgb[cy1:cy2, cx1:cx2]
        scale = max(1.0, _MIN_CROP_HEIGHT / crop.shape[0])
        if scale > 1.0:
            crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        crop = np.ascontiguousarray(crop)
        lms = _pose_landmarks(self._pose, crop)
        if lms is None or (lms[:, 2] > _VISIBLE).sum() < 3:
            box_t = (float(x1), float(y1), float(x2), float(y2))
            return Detection(box_t, score, "body", source="mediapipe_body")
        lms[:, 0] = lms[:, 0] / scale + cx1
        lms[:, 1] = lms[:, 1] / scale + cy1
        seg = self._segmenter.process(crop).segmentation_mask
        mask = np.zeros((h, w), dtype=bool)
        if seg is not None:
            small = cv2.resize(seg, (cx2 - cx1, cy2 - cy1), interpolation=cv2.INTER_LINEAR) > self.mask_threshold
            mask[cy1:cy2, cx1:cx2] = _component_near(small, lms[:, :2] - (cx1, cy1))
        return _body_detection(lms, mask, (h, w))


def _body_detection(lms: np.ndarray, mask: np.ndarray, size: tuple[int, int]) -> Detection:
    visible = lms[lms[:, 2] > _VISIBLE]
    box = _landmark_box(visible if len(visible) else lms, size)
    if mask.any():
        ys, xs = np.nonzero(mask)
        box = (float(min(xs.min(), box[0])), float(min(ys.min(), box[1])),
               float(max(xs.max() + 1, box[2])), float(max(ys.max() + 1, box[3])))
    return Detection(box, float(np.mean(lms[:, 2])), "body", keypoints=pose_landmarks_to_coco17(lms),
                     keypoint_layout="coco17", mask=mask if mask.any() else None, source="mediapipe_body")


def hog_people(hog: Any, rgb: np.ndarray, min_height: int) -> tuple[list[np.ndarray], np.ndarray]:
    """OpenCV HOG people detections.

    Args:
        hog: A ``cv2.HOGDescriptor`` with the default people SVM.
        rgb: ``(H, W, 3)`` uint8 frame.
        min_height: Smallest person height in pixels to find; the frame is upscaled so that
            such a person fills the 128-px HOG window.

    Returns:
        XYXY boxes in frame pixels and ``(N,)`` scores in (0, 1) (logistic of the SVM margin).
    """
    scale = max(1.0, 128.0 / max(min_height, 1))
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if scale > 1.0:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    rects, weights = hog.detectMultiScale(gray, winStride=(8, 8), padding=(8, 8), scale=1.1)
    if len(rects) == 0:
        return [], np.zeros(0)
    boxes = [np.array([x, y, x + bw, y + bh], dtype=np.float64) / scale for x, y, bw, bh in rects]
    margins = np.asarray(weights, dtype=np.float64).reshape(-1)
    return boxes, 1.0 / (1.0 + np.exp(-2.0 * margins))


def _pose_landmarks(pose: Any, rgb: np.ndarray) -> np.ndarray | None:
    """``(33, 3)`` float32 ``(x, y, visibility)`` in pixels of ``rgb``, or None."""
    result = pose.process(rgb)
    if result.pose_landmarks is None:
        return None
    h, w = rgb.shape[:2]
    return np.array([[lm.x * w, lm.y * h, lm.visibility] for lm in result.pose_landmarks.landmark], dtype=np.float32)


def _clip(box: tuple[float, float, float, float], size: tuple[int, int]) -> tuple[int, int, int, int]:
    h, w = size
    return (max(0, math.floor(box[0])), max(0, math.floor(box[1])), min(w, math.ceil(box[2])), min(h, math.ceil(box[3])))


def _landmark_box(points: np.ndarray, size: tuple[int, int]) -> tuple[float, float, float, float]:
    h, w = size
    x1, y1 = points[:, :2].min(axis=0)
    x2, y2 = points[:, :2].max(axis=0)
    pad = 0.1 * max(x2 - x1, y2 - y1)
    return (max(0.0, x1 - pad), max(0.0, y1 - pad), min(float(w), x2 + pad), min(float(h), y2 + pad))


def _component_near(mask: np.ndarray, points_xy: np.ndarray) -> np.ndarray:
    """Keeps the connected components of ``mask`` that contain a landmark (empty if none does)."""
    n, labels = cv2.connectedComponents(mask.astype(np.uint8))
    if n <= 1:
        return mask
    h, w = mask.shape
    inside = (points_xy[:, 0] >= 0) & (points_xy[:, 0] < w) & (points_xy[:, 1] >= 0) & (points_xy[:, 1] < h)
    xs = points_xy[inside, 0].astype(int)
    ys = points_xy[inside, 1].astype(int)
    keep = set(labels[ys, xs].tolist()) - {0}
    return np.isin(labels, list(keep)) if keep else np.zeros_like(mask)
