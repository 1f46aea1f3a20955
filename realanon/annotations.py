"""Regions from annotation files, so the pipeline can run with no detector (``--detections FILE``).

:func:`load_detections_file` recognises three formats:

* realanon's own detections JSON (written by ``--save-detections``, see :mod:`realanon.audit`);
* COCO JSON: ``person`` annotations become bodies (box, polygon or RLE mask, 17 keypoints as
  layout ``"coco17"``), ``face`` annotations become faces; keyed by each image's
  ``file_name``, frame 0;
* Cityscapes ``gtFine`` polygons (``*_gtFine_polygons.json``, one file or a directory of
  them): ``person`` and ``rider`` (and their ``*group`` variants) become bodies with polygon
  masks; keyed by the matching ``*_leftImg8bit.png`` name, frame 0.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from realanon.audit import FORMAT, DetectionsFile, decode_mask, read_realanon_json
from realanon.errors import InputError
from realanon.structures import Detection, Detections

CITYSCAPES_BODY_LABELS = ("person", "rider", "persongroup", "ridergroup")
CITYSCAPES_SUFFIX = "_gtFine_polygons.json"
_COCO_KINDS = {"person": "body", "face": "face"}


def load_detections_file(path: str | Path) -> DetectionsFile:
    """Reads detections from a realanon, COCO or Cityscapes file (or Cityscapes directory).

    Raises:
        InputError: if the path is missing, not JSON, or in none of the known formats.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(path.rglob(f"*{CITYSCAPES_SUFFIX}"))
        if not files:
            raise InputError(path, f"directory holds no Cityscapes *{CITYSCAPES_SUFFIX} files")
        return DetectionsFile(dict(_cityscapes_entry(f, _read_json(f)) for f in files), str(path))
    data = _read_json(path)
    try:
        if isinstance(data, dict) and data.get("format") == FORMAT:
            return read_realanon_json(data, str(path))
        if isinstance(data, dict) and "images" in data and "annotations" in data:
            return DetectionsFile(read_coco(data, str(path)), str(path))
        if isinstance(data, dict) and "objects" in data and "imgHeight" in data:
            return DetectionsFile(dict([_cityscapes_entry(path, data)]), str(path))
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise InputError(path, f"malformed annotations ({type(err).__name__}: {err})") from None
    raise InputError(path, "unknown detections format (expected realanon detections JSON, COCO JSON or "
                           "Cityscapes gtFine polygons)")


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(path, f"not valid JSON ({err})") from None


def read_coco(data: dict[str, Any], source: str) -> dict[str, dict[int, Detections]]:
    """COCO JSON -> ``{file_name: {0: Detections}}`` with every person (and face) annotation.

    Every image is listed, even one without people, so that a lookup finds "nothing to
    replace" rather than "file not annotated".
    """
    names = {int(c["id"]): str(c["name"]).lower() for c in data.get("categories", [])}
    kinds = {cid: _COCO_KINDS[n] for cid, n in names.items() if n in _COCO_KINDS}
    if not names:  # categories omitted: COCO's own numbering, 1 = person
        kinds = {1: "body"}
    images = {int(im["id"]): im for im in data["images"]}
    per_image: dict[int, list[Detection]] = {i: [] for i in images}
    for ann in data["annotations"]:
        kind = kinds.get(int(ann.get("category_id", -1)))
        if kind is None:
            continue
        im = images[int(ann["image_id"])]
        per_image[int(ann["image_id"])].append(coco_annotation_to_detection(ann, kind, (im["height"], im["width"]), source))
    frames = {}
    for image_id, dets in per_image.items():
        im = images[image_id]
        frames[str(im["file_name"])] = {0: Detections(tuple(dets), (int(im["height"]), int(im["width"])))}
    return frames


def coco_annotation_to_detection(ann: dict[str, Any], kind: str, image_size: tuple[int, int], source: str) -> Detection:
    """One COCO annotation -> :class:`Detection` (box XYWH -> XYXY; mask; keypoints)."""
    h, w = int(image_size[0]), int(image_size[1])
    mask = coco_segmentation_to_mask(ann.get("segmentation"), (h, w))
    if "bbox" in ann and len(ann["bbox"]) == 4:
        x, y, bw, bh = (float(v) for v in ann["bbox"])
        box = (x, y, x + bw, y + bh)
    elif mask is not None and mask.any():
        ys, xs = np.nonzero(mask)
        box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
    else:
        raise ValueError(f"annotation {ann.get('id')} has neither bbox nor segmentation")
    keypoints = None
    flat = ann.get("keypoints")
    if flat and len(flat) == 51 and kind == "body":
        kp = np.asarray(flat, dtype=np.float32).reshape(17, 3)
        # COCO visibility: 0 not labelled, 1 labelled but hidden, 2 visible.
        kp[:, 2] = np.select([kp[:, 2] >= 2, kp[:, 2] >= 1], [1.0, 0.5], 0.0)
        keypoints = kp
    return Detection(box, float(ann.get("score", 1.0)), kind, keypoints=keypoints,  # type: ignore[arg-type]
                     keypoint_layout="coco17" if keypoints is not None else None,
                     mask=mask if mask is not None and mask.any() else None, source=source)


def coco_segmentation_to_mask(segmentation: Any, image_size: tuple[int, int]) -> np.ndarray | None:
    """COCO polygons (list of flat ``[x, y, ...]``) or RLE -> ``(H, W)`` bool mask, or None."""
    if not segmentation:
        return None
    h, w = image_size
    if isinstance(segmentation, dict):
        return decode_mask({"size": segmentation.get("size", [h, w]), "counts": segmentation["counts"]})
    polygons = [[float(v) for v in poly] for poly in segmentation if len(poly) >= 6]
    if not polygons:
        return None
    from pycocotools import mask as mask_utils

    rles = mask_utils.frPyObjects(polygons, h, w)
    return np.asarray(mask_utils.decode(mask_utils.merge(rles)), dtype=bool)


def _cityscapes_entry(path: Path, data: dict[str, Any]) -> tuple[str, dict[int, Detections]]:
    if not isinstance(data, dict) or "objects" not in data or "imgHeight" not in data:
        raise InputError(path, "not a Cityscapes gtFine polygons file")
    h, w = int(data["imgHeight"]), int(data["imgWidth"])
    items = []
    for obj in data["objects"]:
        if str(obj.get("label", "")) not in CITYSCAPES_BODY_LABELS or obj.get("deleted"):
            continue
        poly = np.asarray(obj["polygon"], dtype=np.float64).reshape(-1, 2)
        if len(poly) < 3:
            continue
        mask = polygon_mask(poly, (h, w))
        x1, y1 = poly.min(axis=0)
        x2, y2 = poly.max(axis=0)
        items.append(Detection((float(x1), float(y1), float(x2) + 1, float(y2) + 1), 1.0, "body",
                               mask=mask if mask.any() else None, source=str(path)))
    name = path.name.replace(CITYSCAPES_SUFFIX, "_leftImg8bit.png") if path.name.endswith(CITYSCAPES_SUFFIX) \
        else path.with_suffix(".png").name
    return name, {0: Detections(tuple(items), (h, w))}


def polygon_mask(polygon_xy: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Fills a ``(N, 2)`` pixel polygon into a ``(H, W)`` bool mask (clipped to the frame)."""
    import cv2

    canvas = np.zeros(image_size, dtype=np.uint8)
    cv2.fillPoly(canvas, [np.round(polygon_xy).astype(np.int32)], (1,))
    return canvas.astype(bool)
