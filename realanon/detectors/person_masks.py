"""An instance mask for each detected person, and disjoint masks where people overlap.

``method="selfie"`` runs mediapipe's selfie segmentation in each person's crop (padded to a
square, as the network expects) and keeps, inside the person's slightly grown box, the
segmented parts that touch the person's keypoints or the centre of the box; the keypoint
skeleton, drawn thick, is added so that limbs the segmenter misses are still covered.
People shorter than ``min_height`` pixels, and people the segmenter does not find, get their
box as the mask. ``method="box"`` gives every person their box. Pixels claimed by several
people go to the one with the nearest keypoint (or box axis), so the masks are disjoint and
their union is unchanged.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import replace

import cv2
import numpy as np

from realanon.structures import Detection, Detections

METHODS = ("selfie", "box")
_VISIBLE = 0.3
# Skeleton drawn into the mask: COCO-17 index pairs (arms, legs, torso, head).
_LIMBS = ((5, 7), (7, 9), (6, 8), (8, 10), (11, 13), (13, 15), (12, 14), (14, 16), (5, 6), (11, 12),
          (5, 11), (6, 12), (0, 5), (0, 6), (0, 1), (0, 2), (1, 3), (2, 4))
_GROW = 0.08  # the mask may extend this fraction of the box beyond it
_SEG_SIZE = 256


class PersonMasks:
    """Adds a full-frame bool instance mask to every body detection.

    Args:
        method: ``"selfie"`` (segmentation in each crop) or ``"box"``.
        threshold: Segmentation probability above which a pixel is the person's.
        min_height: People shorter than this (pixels) get their box as the mask.
        limb_width: Width of the skeleton lines, as a fraction of the box height.
        context: The segmenter sees the box grown by this fraction of its size on each side;
            the mask is kept within the box grown by 8 %.
    """

    def __init__(self, method: str = "selfie", threshold: float = 0.3, min_height: float = 48.0,
                 limb_width: float = 0.06, context: float = 0.25) -> None:
        if method not in METHODS:
            raise ValueError(f"person mask method must be one of {METHODS}, got {method!r}")
        self.method = method
        self.threshold = float(threshold)
        self.min_height = float(min_height)
        self.limb_width = float(limb_width)
        self.context = max(float(context), _GROW)
        self._segmenter = None
        if method == "selfie":
            import mediapipe as mp

            self._segmenter = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
        self._lock = threading.Lock()

    def __call__(self, image: np.ndarray, detections: Detections) -> Detections:
        """The detections with disjoint masks; body detections that already have one keep it."""
        return Detections(tuple(disjoint_masks(self.add_masks(image, detections))), detections.image_size)

    def add_masks(self, image: np.ndarray, detections: Detections) -> list[Detection]:
        """The detections with each person's own mask (not yet disjoint); those that have one keep it."""
        return [det if det.kind != "body" or det.mask is not None else replace(det, mask=self.mask_for(image, det))
                for det in detections]

    def mask_for(self, image: np.ndarray, det: Detection) -> np.ndarray:
        """The full-frame mask of one person."""
        h, w = image.shape[:2]
        x1, y1, x2, y2 = _grown(det.box_xyxy, _GROW, (h, w))
        mask = np.zeros((h, w), dtype=bool)
        if self.method == "box" or det.height < self.min_height or self._segmenter is None:
            bx1, by1, bx2, by2 = _grown(det.box_xyxy, 0.0, (h, w))
            mask[by1:by2, bx1:bx2] = True
            return mask
        sx1, sy1, sx2, sy2 = _grown(det.box_xyxy, self.context, (h, w))
        crop = self._segment(image[sy1:sy2, sx1:sx2])[y1 - sy1:y2 - sy1, x1 - sx1:x2 - sx1]
        crop |= _skeleton(det, (x1, y1), crop.shape, self.limb_width * det.height)
        crop = _components_near(crop, _anchors(det) - (x1, y1))
        bx1, by1, bx2, by2 = _grown(det.box_xyxy, 0.0, (h, w))
        if crop.sum() < 0.15 * (bx2 - bx1) * (by2 - by1):  # the segmenter missed this person
            mask[by1:by2, bx1:bx2] = True
            return mask
        mask[y1:y2, x1:x2] = crop
        return mask

    def _segment(self, crop: np.ndarray) -> np.ndarray:
        """Person probability > threshold in ``crop``, via a square, padded copy at 256 px."""
        ch, cw = crop.shape[:2]
        side = max(ch, cw)
        square = np.zeros((side, side, 3), dtype=np.uint8)
        oy, ox = (side - ch) // 2, (side - cw) // 2
        square[oy:oy + ch, ox:ox + cw] = crop
        small = cv2.resize(square, (_SEG_SIZE, _SEG_SIZE), interpolation=cv2.INTER_AREA if side > _SEG_SIZE
                           else cv2.INTER_LINEAR)
        with self._lock:
            seg = self._segmenter.process(np.ascontiguousarray(small)).segmentation_mask  # type: ignore[union-attr]
        if seg is None:
            return np.zeros((ch, cw), dtype=bool)
        full = cv2.resize(seg, (side, side), interpolation=cv2.INTER_LINEAR)
        return np.asarray(full[oy:oy + ch, ox:ox + cw] > self.threshold)


def _grown(box: tuple[float, float, float, float], grow: float, size: tuple[int, int]) -> tuple[int, int, int, int]:
    h, w = size
    x1, y1, x2, y2 = box
    gx, gy = grow * (x2 - x1), grow * (y2 - y1)
    return (max(0, math.floor(x1 - gx)), max(0, math.floor(y1 - gy)),
            min(w, math.ceil(x2 + gx)), min(h, math.ceil(y2 + gy)))


def _visible(det: Detection) -> np.ndarray:
    kp = det.keypoints
    if kp is None or det.keypoint_layout != "coco17":
        return np.zeros((0, 2), dtype=np.float32)
    return np.asarray(kp[kp[:, 2] >= _VISIBLE, :2], dtype=np.float32)


def _anchors(det: Detection) -> np.ndarray:
    """Points that belong to the person: the box's vertical axis and the visible keypoints inside the box.

    The axis is always used: in a crowd, a crop's keypoints can belong to a neighbour.
    """
    x1, y1, x2, y2 = det.box_xyxy
    axis = np.array([[(x1 + x2) / 2, y1 + f * (y2 - y1)] for f in (0.2, 0.35, 0.5, 0.65, 0.8)], dtype=np.float32)
    pts = _visible(det)
    inside = (pts[:, 0] >= x1) & (pts[:, 0] <= x2) & (pts[:, 1] >= y1) & (pts[:, 1] <= y2)
    return np.concatenate([axis, pts[inside]])


def _skeleton(det: Detection, origin: tuple[int, int], shape: tuple[int, ...], width: float) -> np.ndarray:
    """The person's visible COCO-17 limbs drawn ``width`` px thick, in crop pixels."""
    out = np.zeros(shape[:2], dtype=np.uint8)
    kp = det.keypoints
    if kp is None or det.keypoint_layout != "coco17" or len(kp) != 17:
        return out.astype(bool)
    t = max(1, round(width))
    for a, b in _LIMBS:
        if kp[a, 2] >= _VISIBLE and kp[b, 2] >= _VISIBLE:
            pa = (round(float(kp[a, 0]) - origin[0]), round(float(kp[a, 1]) - origin[1]))
            pb = (round(float(kp[b, 0]) - origin[0]), round(float(kp[b, 1]) - origin[1]))
            cv2.line(out, pa, pb, (1,), thickness=t)
    return out.astype(bool)


def _components_near(mask: np.ndarray, points_xy: np.ndarray) -> np.ndarray:
    """The connected components of ``mask`` containing one of ``points_xy`` (empty when none does)."""
    n, labels = cv2.connectedComponents(mask.astype(np.uint8))
    if n <= 2:
        return mask
    h, w = mask.shape
    pts = np.round(points_xy).astype(int)
    inside = (pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)
    keep = set(labels[pts[inside, 1], pts[inside, 0]].tolist()) - {0}
    return np.isin(labels, list(keep)) if keep else np.zeros_like(mask)


def disjoint_masks(people: list[Detection]) -> list[Detection]:
    """Gives each pixel claimed by several masks to the person with the nearest anchor point.

    Anchors are a person's visible keypoints, or points on the vertical axis of their box.
    Afterwards no two masks overlap and their union is unchanged. Only the rectangles where two
    masks' bounding boxes meet are examined (a pixel claimed twice lies in one). The input masks
    are never written to: a mask that loses pixels is copied first (its bounding rectangle only),
    the others are passed on as they are (copying every full-frame mask cost 5-8 ms for 22
    people at 720p, ``scripts/profile_coco_person.py --disjoint``).
    """
    masked = [i for i, d in enumerate(people) if d.mask is not None]
    if len(masked) < 2:
        return people
    masks: dict[int, np.ndarray] = {i: people[i].mask for i in masked}  # type: ignore[misc]
    rects = {i: cv2.boundingRect(masks[i].view(np.uint8)) for i in masked}  # x, y, w, h
    anchors = {i: _anchors(people[i]) for i in masked}
    copied: set[int] = set()
    for a, i in enumerate(masked):
        for j in masked[a + 1:]:
            meet = _intersection(rects[i], rects[j])
            if meet is not None:
                owners = [k for k in masked if _intersection(rects[k], meet) is not None]
                _settle(meet, owners, masks, rects, anchors, copied)
    return [replace(d, mask=masks[i]) if i in copied else d for i, d in enumerate(people)]


def _intersection(a: Sequence[int], b: Sequence[int]) -> tuple[int, int, int, int] | None:
    """Intersection of two ``(x, y, w, h)`` rectangles as XYXY, or None when empty."""
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


def _copy_in_rect(mask: np.ndarray, rect: Sequence[int]) -> np.ndarray:
    """A copy of ``mask``, all of whose pixels lie in ``rect`` ``(x, y, w, h)``: a zeroed array (its
    pages left unmapped) with only that rectangle copied in."""
    x, y, w, h = rect
    out = np.zeros(mask.shape, dtype=bool)  # calloc: unlike zeros_like, leaves untouched pages unmapped
    out[y:y + h, x:x + w] = mask[y:y + h, x:x + w]
    return out


def _settle(rect: tuple[int, int, int, int], owners: list[int], masks: dict[int, np.ndarray],
            rects: dict[int, Sequence[int]], anchors: dict[int, np.ndarray], copied: set[int]) -> None:
    """Within ``rect`` (XYXY), each pixel several of ``owners`` claim goes to the nearest anchor's owner.

    A mask that loses pixels is replaced in ``masks`` by a copy (its index added to ``copied``)
    the first time, so that the caller's masks are never written to; ``rects`` bound each mask.
    """
    x1, y1, x2, y2 = rect
    stack = np.stack([masks[k][y1:y2, x1:x2] for k in owners])
    ys, xs = np.nonzero(np.add.reduce(stack, axis=0, dtype=np.uint16) > 1)
    if not len(ys):
        return
    pix = np.stack([xs + x1, ys + y1], axis=1).astype(np.float32)
    dist = np.empty((len(owners), len(ys)), dtype=np.float32)
    for row, k in enumerate(owners):
        d = np.sqrt(((pix[:, None, :] - anchors[k][None, :, :]) ** 2).sum(axis=2)).min(axis=1)
        dist[row] = np.where(stack[row, ys, xs], d, np.inf)
    owner = dist.argmin(axis=0)
    for row, k in enumerate(owners):
        lost = stack[row, ys, xs] & (owner != row)
        if lost.any():
            if k not in copied:
                masks[k] = _copy_in_rect(masks[k], rects[k])
                copied.add(k)
            masks[k][ys[lost] + y1, xs[lost] + x1] = False
