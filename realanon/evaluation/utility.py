"""Utility metrics besides detector training: patch classification and retention."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from realanon.evaluation.coco import Instance, box_iou, coco_scores, greedy_match, mask_iou, oks, to_coco_ground_truth

PATCH_HW = (64, 32)


def _patch(image: np.ndarray, box: Sequence[float]) -> np.ndarray:
    import cv2

    from realanon.regions import crop_with_padding, round_box

    crop = crop_with_padding(image, round_box(tuple(box)))  # type: ignore[arg-type]
    return cv2.resize(crop, (PATCH_HW[1], PATCH_HW[0]), interpolation=cv2.INTER_AREA)


def person_patches(
    images: Sequence[np.ndarray], instances: Sequence[Sequence[Instance]], negatives_per_image: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Person crops (label 1) and background crops of person-like size (label 0).

    Background boxes are drawn (seeded) where they overlap no person with IoU above 0.1.

    Returns:
        ``(N, 64, 32, 3)`` uint8 patches and ``(N,)`` int labels.
    """
    rng = np.random.default_rng(seed)
    patches, labels = [], []
    for image, insts in zip(images, instances):
        h, w = image.shape[:2]
        boxes = np.array([i.box_xyxy for i in insts], dtype=np.float64).reshape(-1, 4)
        for box in boxes:
            patches.append(_patch(image, box))
            labels.append(1)
        sizes = boxes[:, 2:] - boxes[:, :2] if len(boxes) else np.array([[w / 8, h / 4]])
        for _ in range(negatives_per_image):
            for _attempt in range(20):
                bw, bh = sizes[rng.integers(len(sizes))]
                x1, y1 = rng.uniform(0, max(w - bw, 1)), rng.uniform(0, max(h - bh, 1))
                cand = np.array([[x1, y1, x1 + bw, y1 + bh]])
                if not len(boxes) or box_iou(cand, boxes).max() <= 0.1:
                    patches.append(_patch(image, cand[0]))
                    labels.append(0)
                    break
    return np.stack(patches), np.array(labels, dtype=np.int64)


def retention_scores(
    original_preds: Sequence[Sequence[Instance]], anonymized_preds: Sequence[Sequence[Instance]],
    sizes: Sequence[tuple[int, ...]], score_threshold: float = 0.5,
) -> dict[str, float]:
    """Scores predictions on anonymized images against those on the originals.

    The original predictions above ``score_threshold`` are the pseudo-ground-truth.

    Returns:
        ``retention_AP``, ``retention_AP50`` (pycocotools), ``retention_recall`` (share of
        pseudo-GT matched at IoU 0.5), and when the detector gives them ``retention_oks``
        (mean keypoint similarity of matched pairs) and ``retention_mask_iou``.
    """
    gt_insts = [tuple(i for i in preds if i.score >= score_threshold) for preds in original_preds]
    gt = to_coco_ground_truth(gt_insts, sizes, {1: "person"})
    scores = coco_scores(gt, anonymized_preds, "bbox")
    matched, total, oks_values, ious = 0, 0, [], []
    for g, p in zip(gt_insts, anonymized_preds):
        total += len(g)
        pairs = greedy_match(np.array([i.box_xyxy for i in g]), np.array([i.box_xyxy for i in p]), np.array([i.score for i in p]))
        matched += len(pairs)
        for gi, pi in pairs:
            a, b = g[gi], p[pi]
            if a.keypoints is not None and b.keypoints is not None:
                area = (a.box_xyxy[2] - a.box_xyxy[0]) * (a.box_xyxy[3] - a.box_xyxy[1])
                oks_values.append(oks(a.keypoints, b.keypoints, area))
            if a.mask is not None and b.mask is not None:
                ious.append(mask_iou(a.mask, b.mask))
    out = {"retention_AP": scores["AP"], "retention_AP50": scores["AP50"], "retention_recall": matched / max(total, 1)}
    finite = [v for v in oks_values if np.isfinite(v)]
    if finite:
        out["retention_oks"] = float(np.mean(finite))
    if ious:
        out["retention_mask_iou"] = float(np.mean(ious))
    return out
