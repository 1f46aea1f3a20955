"""Small box helpers shared by the detectors: non-maximum suppression and image tiling."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np

from realanon.structures import Detection, Detections


def _intersections_and_areas(box: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Intersection areas of ``box`` with each of ``boxes``, the area of ``box``, and theirs."""
    ix1 = np.maximum(box[0], boxes[:, 0])
    iy1 = np.maximum(box[1], boxes[:, 1])
    ix2 = np.minimum(box[2], boxes[:, 2])
    iy2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area = float((box[2] - box[0]) * (box[3] - box[1]))
    return inter, area, (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one ``(4,)`` XYXY box with ``(N, 4)`` boxes; returns ``(N,)`` float in [0, 1]."""
    inter, area, areas = _intersections_and_areas(box, boxes)
    return np.asarray(inter / np.maximum(area + areas - inter, 1e-9), dtype=np.float64)


def box_overlap_min(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over the smaller box's area, ``(N,)``; catches a box nested in another."""
    inter, area, areas = _intersections_and_areas(box, boxes)
    return np.asarray(inter / np.maximum(np.minimum(area, areas), 1e-9), dtype=np.float64)


def nms(boxes_xyxy: np.ndarray, scores: np.ndarray, iou_threshold: float, nested_threshold: float = 1.0) -> list[int]:
    """Greedy non-maximum suppression.

    Args:
        boxes_xyxy: ``(N, 4)`` float boxes.
        scores: ``(N,)`` scores; higher is kept first.
        iou_threshold: A box overlapping a kept box by at least this IoU is dropped.
        nested_threshold: A box whose intersection with a kept box covers at least this
            fraction of the smaller of the two is dropped too (1.0 disables the rule).

    Returns:
        Indices of the kept boxes, best first.
    """
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        if not rest.size:
            break
        drop = box_iou(boxes[i], boxes[rest]) >= iou_threshold
        if nested_threshold < 1.0:
            drop |= box_overlap_min(boxes[i], boxes[rest]) >= nested_threshold
        order = rest[~drop]
    return keep


def nms_detections(
    detections: list[Detection], iou_threshold: float, nested_threshold: float = 1.0
) -> list[Detection]:
    """Keeps the best-scoring of each group of overlapping detections (see :func:`nms`)."""
    if len(detections) < 2:
        return list(detections)
    boxes = np.array([d.box_xyxy for d in detections], dtype=np.float64)
    scores = np.array([d.score for d in detections], dtype=np.float64)
    return [detections[i] for i in nms(boxes, scores, iou_threshold, nested_threshold)]


def tile_boxes(image_size: tuple[int, int], tile_size: int, overlap: float) -> list[tuple[int, int, int, int]]:
    """Square tiles covering a frame, neighbours overlapping by ``overlap`` of a tile.

    Args:
        image_size: ``(height, width)`` of the frame.
        tile_size: Side of a tile in pixels (tiles are clipped to the frame).
        overlap: Fraction of a tile shared with its neighbour, in [0, 0.9].

    Returns:
        Integer XYXY tiles inside the frame; the whole frame when it fits in one tile.
    """
    h, w = image_size
    stride = max(1, round(tile_size * (1.0 - overlap)))
    return [(x, y, min(x + tile_size, w), min(y + tile_size, h))
            for y in _starts(h, tile_size, stride) for x in _starts(w, tile_size, stride)]


def _starts(length: int, tile: int, stride: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)  # the last tile ends exactly at the frame's edge
    return starts


def shift_detection_arrays(
    box_xyxy: tuple[float, float, float, float], keypoints: np.ndarray | None, dx: float, dy: float, scale: float
) -> tuple[tuple[float, float, float, float], np.ndarray | None]:
    """Maps a box and ``(K, 3)`` keypoints from a (scaled) tile back to frame pixels."""
    x1, y1, x2, y2 = box_xyxy
    box = (x1 / scale + dx, y1 / scale + dy, x2 / scale + dx, y2 / scale + dy)
    if keypoints is None:
        return box, None
    kp = np.array(keypoints, dtype=np.float32, copy=True)
    kp[:, 0] = kp[:, 0] / scale + dx
    kp[:, 1] = kp[:, 1] / scale + dy
    return box, kp


def detect_in_groups(
    images: Sequence[np.ndarray],
    key: Callable[[np.ndarray], Hashable],
    detect_group: Callable[[list[np.ndarray], Any], list[Detections]],
) -> list[Detections]:
    """Batched detection: images with the same ``key`` go to ``detect_group`` together.

    Args:
        images: The images, in any mix of sizes.
        key: What images must share to be batched (e.g. the network input size).
        detect_group: ``(images, key) -> detections``, one result per image, in order.

    Returns:
        One :class:`Detections` per image, in the order of ``images``.
    """
    groups: dict[Hashable, list[int]] = {}
    for i, image in enumerate(images):
        groups.setdefault(key(image), []).append(i)
    found: dict[int, Detections] = {}
    for group_key, indices in groups.items():
        for i, detections in zip(indices, detect_group([images[i] for i in indices], group_key)):
            found[i] = detections
    return [found[i] for i in range(len(images))]
