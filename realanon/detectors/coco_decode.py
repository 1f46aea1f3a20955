"""Decoding the raw outputs of the shipped COCO box networks into person boxes and scores.

CenterNet (``tower_0/Sigmoid:0`` class heatmaps and ``tower_0/mul:0`` box sides, stride 4) and
NanoDet (per-stride class scores and side distributions); used by
:mod:`realanon.detectors.coco_models`.
"""

from __future__ import annotations

import cv2
import numpy as np

from realanon.detectors._boxes import nms

PERSON = 0  # COCO class index of "person" in both models' outputs
_STRIDE = 4  # CenterNet's output stride


def decode_centernet(heat: np.ndarray, sides: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (input pixels) and scores, best first, from one class's ``(h, w)`` heatmap and ``(4, h, w)`` box sides.

    A detection is a heatmap cell that is the maximum of its 3x3 neighbourhood and scores at least
    ``min_score``; its box extends ``left, top, right, bottom`` input pixels from the cell's
    position (stride 4), as in the model's own decoding.
    """
    peak = (heat >= min_score) & (heat == cv2.dilate(heat, np.ones((3, 3), np.uint8)))
    ys, xs = np.nonzero(peak)
    left, top, right, bottom = sides[:, ys, xs]
    cx, cy = _STRIDE * xs, _STRIDE * ys
    boxes = np.stack([cx - left, cy - top, cx + right, cy + bottom], axis=1).astype(np.float64)
    scores = heat[ys, xs].astype(np.float64)
    order = np.argsort(-scores, kind="stable")
    return boxes[order], scores[order]


def decode_nanodet(outputs: list[np.ndarray], input_size: int, min_score: float) -> tuple[np.ndarray, np.ndarray]:
    """Person boxes from NanoDet's per-stride ``(cells, 80)`` scores and ``(cells, 44)`` side distributions."""
    scores_by_cells = {o.shape[0]: o for o in outputs if o.shape[1] == 80}
    dists_by_cells = {o.shape[0]: o for o in outputs if o.shape[1] != 80}
    boxes, scores = [], []
    for cells, cls in scores_by_cells.items():
        side = int(round(cells ** 0.5))
        stride = input_size / side
        idx = np.nonzero(cls[:, PERSON] >= min_score)[0]
        if not len(idx):
            continue
        dist = dists_by_cells[cells][idx].reshape(len(idx), 4, -1)
        prob = np.exp(dist - dist.max(axis=2, keepdims=True))
        prob /= prob.sum(axis=2, keepdims=True)
        d = (prob * np.arange(prob.shape[2])).sum(axis=2) * stride  # left, top, right, bottom
        cx = (idx % side + 0.5) * stride
        cy = (idx // side + 0.5) * stride
        boxes.append(np.stack([cx - d[:, 0], cy - d[:, 1], cx + d[:, 2], cy + d[:, 3]], axis=1))
        scores.append(cls[idx, PERSON])
    if not boxes:
        return np.zeros((0, 4)), np.zeros(0)
    b, s = np.concatenate(boxes).astype(np.float64), np.concatenate(scores).astype(np.float64)
    keep = nms(b, s, 0.5)
    return b[keep], s[keep]

