"""Every person's whole body, offline: person proposals, then mediapipe pose landmarks (as
COCO-17) and person segmentation inside each person's crop.

Proposals come from three cheap-to-costly stages: faces found by mediapipe's full-range face
detector grown into body boxes (finds seated and partly visible people), one mediapipe pose
pass over the whole frame (the most prominent person however large), and OpenCV's HOG people
detector (upright walkers down to ``hog_min_height`` pixels; the slow stage). Each proposal is cropped with some context, and mediapipe's
pose landmarker and selfie segmenter run on the crop, so every person gets their own
instance mask; where people overlap, their masks may overlap and the union is replaced.
"""

from __future__ import annotations

import math
import threading
from dataclasses import replace
from typing import Any

import cv2
import numpy as np

from realanon.detectors._boxes import box_iou, nms
from realanon.registry import register_detector
from realanon.structures import Detection, Detections

# Mediapipe pose landmark index for each COCO-17 keypoint (nose, eyes, ears, shoulders,
# elbows, wrists, hips, knees, ankles).
MEDIAPIPE_TO_COCO17 = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
PROPOSALS = ("faces", "pose", "hog")
# A face box (brow to chin) grown into the box of a standing person: widths and heights
# of the face box left/right of its centre, above its top and below its top.
_FACE_TO_BODY = (2.2, 0.8, 8.0)
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
            landmarker finds nobody in a HOG proposal: such people keep their box, no mask;
            face and pose proposals without landmarks are dropped).
        mask_threshold: Segmentation probability above which a pixel belongs to the person.
        proposals: Which proposal stages to run, a subset of ``("faces", "pose", "hog")``.
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
        self._faces = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5)
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())  # type: ignore[attr-defined]
        self._lock = threading.Lock()

    def __call__(self, image: np.ndarray) -> Detections:
        """Detects people in an RGB ``(H, W, 3)`` uint8 image."""
        h, w = image.shape[:2]
        rgb = np.ascontiguousarray(image)
        with self._lock:
            boxes, scores, keep_box = self.propose(rgb)
            items = [d for i in range(len(boxes)) for d in self._person(rgb, boxes[i], scores[i], keep_box[i])]
        kept = [d for d in items if d.score >= self.min_score]
        # Two proposals of one person can converge on the same landmarks: merge them.
        # People with landmarks rank above box-only proposals, so a stray HOG box inside a
        # real person never suppresses that person.
        if len(kept) > 1:
            rank = np.array([d.score + (d.keypoints is not None) for d in kept])
            order = nms(np.array([d.box_xyxy for d in kept]), rank, 0.6, 0.85)
            kept = [kept[i] for i in order]
        return Detections(tuple(separate_masks(kept)), (h, w))

    def propose(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Person proposals, best first.

        Returns:
            ``(N, 4)`` float XYXY boxes, ``(N,)`` scores in [0, 1], and ``(N,)`` bool: keep the
            bare box when no pose is found in it (HOG proposals, which are whole people).
        """
        boxes: list[np.ndarray] = []
        scores: list[float] = []
        if "faces" in self.proposals:
            fb, fs = face_body_boxes(self._faces, rgb)
            boxes.extend(fb)
            scores.extend(fs)
        if "pose" in self.proposals:
            lms = _pose_landmarks(self._pose, rgb)
            if lms is not None and (lms[:, 2] > _VISIBLE).sum() >= 3:
                boxes.append(np.array(_landmark_box(lms, (rgb.shape[0], rgb.shape[1])), dtype=np.float64))
                scores.append(float(np.mean(lms[:, 2])))
        n_other = len(boxes)
        if "hog" in self.proposals:
            hb, hs = hog_people(self._hog, rgb, self.hog_min_height)
            boxes.extend(hb)
            scores.extend(hs.tolist())
        if not boxes:
            return np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=bool)
        b, s = np.stack(boxes), np.asarray(scores)
        from_hog = np.arange(len(b)) >= n_other
        keep = nms(b, s, self.nms_iou)[: self.max_people]
        return b[keep], s[keep], from_hog[keep]

    def _person(self, rgb: np.ndarray, box: np.ndarray, score: float, keep_box: bool) -> list[Detection]:
        """Pose and segmentation inside one proposal's crop.

        The crop first includes some context; when the pose landmarker finds nobody there
        (it can fail with several people in view), the bare proposal box is tried. Returns
        the person found, plus (when ``keep_box``) the bare proposal box when no pose is
        found or the landmarks belong to someone else in the crop, so it is not lost.
        """
        h, w = rgb.shape[:2]
        x1, y1, x2, y2 = (float(v) for v in box)
        box_only = [Detection((x1, y1, x2, y2), score, "body", source="mediapipe_body")] if keep_box else []
        for cx, cy in ((_CROP_CONTEXT_X, _CROP_CONTEXT_Y), (0.0, 0.0)):
            bw, bh = x2 - x1, y2 - y1
            crop_box = _clip((x1 - cx * bw, y1 - cy * bh, x2 + cx * bw, y2 + cy * bh), (h, w))
            person = self._pose_in_crop(rgb, crop_box)
            if person is not None:
                return [person, *box_only] if _iou(person.box_xyxy, box) < 0.3 else [person]
        return box_only

    def _pose_in_crop(self, rgb: np.ndarray, crop_box: tuple[int, int, int, int]) -> Detection | None:
        h, w = rgb.shape[:2]
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
            return None
        lms[:, 0] = lms[:, 0] / scale + cx1
        lms[:, 1] = lms[:, 1] / scale + cy1
        seg = self._segmenter.process(crop).segmentation_mask
        mask = np.zeros((h, w), dtype=bool)
        if seg is not None:
            small = cv2.resize(seg, (cx2 - cx1, cy2 - cy1), interpolation=cv2.INTER_LINEAR) > self.mask_threshold
            mask[cy1:cy2, cx1:cx2] = _component_near(small, lms[:, :2] - (cx1, cy1))
        return _body_detection(lms, mask, (h, w))


def separate_masks(people: list[Detection]) -> list[Detection]:
    """Gives each pixel claimed by several people's masks to the one with the nearest landmark.

    Touching people segmented in one crop share a connected component; after this, every
    instance mask is disjoint from the others and their union is unchanged.
    """
    masked = [i for i, d in enumerate(people) if d.mask is not None and d.keypoints is not None]
    if len(masked) < 2:
        return people
    stack = np.stack([people[i].mask for i in masked])  # type: ignore[misc]
    ys, xs = np.nonzero(stack.sum(axis=0) > 1)
    if len(ys) == 0:
        return people
    pix = np.stack([xs, ys], axis=1).astype(np.float32)
    dist = np.full((len(masked), len(ys)), np.inf, dtype=np.float32)
    for row, i in enumerate(masked):
        kp = people[i].keypoints
        pts = kp[kp[:, 2] > _VISIBLE, :2] if (kp[:, 2] > _VISIBLE).any() else kp[:, :2]  # type: ignore[index]
        d = np.linalg.norm(pix[:, None, :] - pts[None, :, :], axis=2).min(axis=1)
        dist[row] = np.where(stack[row, ys, xs], d, np.inf)
    owner = dist.argmin(axis=0)
    out = list(people)
    for row, i in enumerate(masked):
        mask = stack[row].copy()
        mask[ys, xs] = owner == row
        out[i] = replace(people[i], mask=mask)
    return out


def _iou(a: tuple[float, float, float, float], b: np.ndarray) -> float:
    return float(box_iou(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64).reshape(1, 4))[0])


def _body_detection(lms: np.ndarray, mask: np.ndarray, size: tuple[int, int]) -> Detection:
    visible = lms[lms[:, 2] > _VISIBLE]
    box = _landmark_box(visible if len(visible) else lms, size)
    if mask.any():
        ys, xs = np.nonzero(mask)
        box = (float(min(xs.min(), box[0])), float(min(ys.min(), box[1])),
               float(max(xs.max() + 1, box[2])), float(max(ys.max() + 1, box[3])))
    return Detection(box, float(np.mean(lms[:, 2])), "body", keypoints=pose_landmarks_to_coco17(lms),
                     keypoint_layout="coco17", mask=mask if mask.any() else None, source="mediapipe_body")


def face_body_boxes(faces: Any, rgb: np.ndarray) -> tuple[list[np.ndarray], list[float]]:
    """Faces found by a mediapipe ``FaceDetection``, grown into standing-person boxes.

    Returns:
        XYXY boxes in frame pixels (not clipped) and the face scores.
    """
    h, w = rgb.shape[:2]
    result = faces.process(rgb)
    boxes, scores = [], []
    side, above, below = _FACE_TO_BODY
    for det in result.detections or ():
        rel = det.location_data.relative_bounding_box
        fx1, fy1, fw, fh = rel.xmin * w, rel.ymin * h, rel.width * w, rel.height * h
        cx = fx1 + fw / 2
        boxes.append(np.array([cx - side * fw, fy1 - above * fh, cx + side * fw, fy1 + below * fh]))
        scores.append(float(det.score[0]) if det.score else 0.0)
    return boxes, scores


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
