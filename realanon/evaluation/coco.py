"""COCO-format data and scores: pycocotools AP, plus box/keypoint/mask matching for retention."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# COCO keypoint sigmas (pycocotools' values for the 17 person keypoints).
COCO17_SIGMAS = np.array(
    [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89]
) / 10.0


@dataclass(frozen=True)
class Instance:
    """One annotated or predicted object.

    Attributes:
        box_xyxy: Box in image pixels.
        category_id: COCO category id.
        score: Confidence (1.0 for ground truth).
        mask: Optional ``(H, W)`` bool instance mask.
        keypoints: Optional ``(K, 3)`` float32 ``(x, y, visibility)``.
        crowd: Ground truth only: an ignore region (COCO ``iscrowd``): predictions on it are
            neither right nor wrong, and detectors are not trained on it.
    """

    box_xyxy: tuple[float, float, float, float]
    category_id: int = 1
    score: float = 1.0
    mask: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    crowd: bool = False


@dataclass(frozen=True)
class Sample:
    """One image with its instances (``image`` is ``(H, W, 3)`` uint8 RGB)."""

    image: np.ndarray
    instances: tuple[Instance, ...]
    name: str = ""


def _area(box: tuple[float, float, float, float]) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def instance_to_coco(inst: Instance, image_id: int, ann_id: int | None = None) -> dict[str, Any]:
    """A COCO annotation (``ann_id`` given) or result dict for one instance."""
    from pycocotools import mask as mask_utils

    x1, y1, x2, y2 = inst.box_xyxy
    out: dict[str, Any] = {
        "image_id": image_id, "category_id": inst.category_id,
        "bbox": [x1, y1, x2 - x1, y2 - y1], "score": inst.score,
    }
    if inst.mask is not None:
        rle = mask_utils.encode(np.asfortranarray(inst.mask.astype(np.uint8)))
        rle["counts"] = rle["counts"].decode("ascii")
        out["segmentation"] = rle
        out["area"] = float(inst.mask.sum())
    else:
        out["area"] = _area(inst.box_xyxy)
    if inst.keypoints is not None:
        kp = inst.keypoints.astype(np.float64).copy()
        kp[:, 2] = np.where(kp[:, 2] > 0.5, 2, 0)
        out["keypoints"] = kp.reshape(-1).tolist()
        out["num_keypoints"] = int((kp[:, 2] > 0).sum())
    if ann_id is not None:
        out.update(id=ann_id, iscrowd=int(inst.crowd))
        out.pop("score")
    return out


def labelled(instances: Sequence[Instance]) -> tuple[Instance, ...]:
    """The instances a model is trained on: all but the ignore regions (``crowd``)."""
    return tuple(i for i in instances if not i.crowd)


def to_coco_ground_truth(
    instances: Sequence[Sequence[Instance]], sizes: Sequence[tuple[int, ...]], categories: dict[int, str]
) -> dict[str, Any]:
    """A COCO ground-truth dict; image ids are the list positions (from 1)."""
    images = [{"id": i + 1, "height": h, "width": w} for i, (h, w) in enumerate(sizes)]
    anns, next_id = [], 1
    for i, insts in enumerate(instances):
        for inst in insts:
            anns.append(instance_to_coco(inst, i + 1, next_id))
            next_id += 1
    cats = [{"id": c, "name": n, "keypoints": [str(k) for k in range(17)], "skeleton": []} for c, n in categories.items()]
    return {"images": images, "annotations": anns, "categories": cats}


def coco_scores(
    ground_truth: dict[str, Any], predictions: Sequence[Sequence[Instance]], iou_type: str = "bbox",
    category_ids: list[int] | None = None,
) -> dict[str, float]:
    """pycocotools AP/AP50/AP75/AR100 of ``predictions`` (per image, same order as the GT images).

    Args:
        ground_truth: A COCO dict from :func:`to_coco_ground_truth` or a dataset file.
        predictions: Predicted instances per image.
        iou_type: ``"bbox"``, ``"segm"`` or ``"keypoints"``.
        category_ids: Restrict to these categories (None = all).

    Returns:
        Scores in [0, 1]; all zeros when there is nothing to score.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    zero = {"AP": 0.0, "AP50": 0.0, "AP75": 0.0, "AR100": 0.0}
    image_ids = [img["id"] for img in ground_truth["images"]]
    results = [instance_to_coco(inst, image_ids[i]) for i, insts in enumerate(predictions) for inst in insts]
    if not results or not ground_truth["annotations"]:
        return zero
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = json.loads(json.dumps(ground_truth))
        gt.createIndex()
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, iou_type)
        if category_ids is not None:
            ev.params.catIds = category_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    s = [max(0.0, float(v)) for v in ev.stats]
    ar = s[8] if iou_type != "keypoints" else s[5]
    return {"AP": s[0], "AP50": s[1], "AP75": s[2], "AR100": ar}


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``(N, M)`` of XYXY boxes ``a (N, 4)`` and ``b (M, 4)``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def greedy_match(gt_boxes: np.ndarray, pred_boxes: np.ndarray, scores: np.ndarray, iou: float = 0.5) -> list[tuple[int, int]]:
    """Matches predictions (highest score first) to unmatched GT boxes with IoU >= ``iou``."""
    if len(gt_boxes) == 0 or len(pred_boxes) == 0:
        return []
    ious = box_iou(pred_boxes, gt_boxes)
    taken: set[int] = set()
    pairs = []
    for p in np.argsort(-np.asarray(scores), kind="stable"):
        candidates = [(ious[p, g], g) for g in range(len(gt_boxes)) if g not in taken and ious[p, g] >= iou]
        if candidates:
            g = max(candidates)[1]
            taken.add(g)
            pairs.append((g, int(p)))
    return pairs


def oks(gt_kp: np.ndarray, pred_kp: np.ndarray, area: float, sigmas: np.ndarray = COCO17_SIGMAS) -> float:
    """Object keypoint similarity in [0, 1] over the GT keypoints that are visible (> 0.5)."""
    visible = gt_kp[:, 2] > 0.5
    if not visible.any() or len(sigmas) != len(gt_kp):
        return float("nan")
    d2 = ((gt_kp[:, :2] - pred_kp[:, :2]) ** 2).sum(axis=1)
    e = d2 / (2 * (2 * sigmas) ** 2 * max(area, 1.0))
    return float(np.exp(-e)[visible].mean())


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two bool masks of the same shape (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def load_coco_split(images_dir: str | Path, annotations: str | Path, category: str, limit: int = 0) -> tuple[list[Path], dict[str, Any]]:
    """Reads a COCO annotation file, keeping images (and the ``category`` annotations).

    Returns:
        The image paths (in the order of the returned dict's images) and a COCO dict whose
        image ids are renumbered from 1 and whose only category is ``category`` (id 1).
    """
    data = json.loads(Path(annotations).read_text())
    cat_ids = [c["id"] for c in data["categories"] if c["name"] == category]
    if not cat_ids:
        raise ValueError(f"{annotations}: no category named {category!r}")
    images = data["images"][: limit or None]
    remap = {img["id"]: i + 1 for i, img in enumerate(images)}
    anns = [
        {**a, "image_id": remap[a["image_id"]], "category_id": 1, "id": k + 1}
        for k, a in enumerate(a for a in data["annotations"] if a["image_id"] in remap and a["category_id"] in cat_ids)
    ]
    cats = [{**next(c for c in data["categories"] if c["id"] == cat_ids[0]), "id": 1}]
    new_images = [{**img, "id": remap[img["id"]]} for img in images]
    paths = [Path(images_dir) / img["file_name"] for img in images]
    return paths, {"images": new_images, "annotations": anns, "categories": cats}


def instances_from_coco(coco: dict[str, Any], image_id: int, size: tuple[int, ...]) -> tuple[Instance, ...]:
    """The annotations of one image as :class:`Instance` (polygons/RLE decoded to masks)."""
    from pycocotools import mask as mask_utils

    h, w = size[:2]
    out = []
    for a in coco["annotations"]:
        if a["image_id"] != image_id or a.get("iscrowd", 0):
            continue
        x, y, bw, bh = a["bbox"]
        mask = None
        seg = a.get("segmentation")
        if seg:
            rles = mask_utils.frPyObjects(seg, h, w) if isinstance(seg, list) else seg
            mask = mask_utils.decode(mask_utils.merge(rles) if isinstance(rles, list) else rles).astype(bool)
        kp = np.asarray(a["keypoints"], np.float32).reshape(-1, 3) if a.get("keypoints") else None
        out.append(Instance((x, y, x + bw, y + bh), 1, 1.0, mask, kp))
    return tuple(out)
