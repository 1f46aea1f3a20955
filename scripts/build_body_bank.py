"""Builds the body donor bank of the ``donor`` generator (``--target body``) from openpeople (MIT).

For each of openpeople's 10 synthetic people, six full-body views are segmented once: the four
"Full Body" tiles of the character sheet (front, left, back, right) and the two posture photos
(studio and outdoors). Each view is run through realanon's ``mediapipe_body`` detector (COCO-17
keypoints and an instance mask), the mask is refined with GrabCut, the skin and head are told
apart from the clothes (so clothes can be recoloured per identity, never skin), and the person
is cropped to a fixed ``--height`` x ``--height * 0.6`` box (edge pixels repeated past the
view). The view label comes from the keypoints (see :func:`realanon.generators.body_warp.view_of`),
except for the sheet's back tile, whose keypoints are set to the back convention.
Everything goes into one pickle-free ``bank.npz``; the build is deterministic::

    python scripts/build_body_bank.py --out weights/body-donors

Writes ``bank.npz`` and ``config.json`` (sha256, counts, source versions); the bank's entry in
``weights/manifest.json`` repeats the sha256.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from importlib import metadata
from pathlib import Path

import cv2
import numpy as np

from realanon.generators.body_warp import mirror_coco17, view_of
from realanon.generators.donor_body import CLOTH, SKIN
from realanon.media import openpeople_images
from realanon.structures import Detection

SHEET_VIEWS = ("front", "left", "back", "right")
ASPECT = 0.6


def sheet_tiles(sheet: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Boxes ``(x1, y1, x2, y2)`` inside the white frames of the sheet's bottom row, left to right."""
    h, w = sheet.shape[:2]
    white = (sheet.min(axis=2) > 225).astype(np.uint8)
    white[: h // 2] = 0
    contours, _ = cv2.findContours(white, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    boxes = []
    for c in contours:
        x, y, bw, bh = cv2.boundingRect(c)
        if 0.12 * w < bw < 0.3 * w and bh > 0.3 * h:
            inset = max(4, bw // 40)
            boxes.append((x + inset, y + inset, x + bw - inset, y + bh - inset))
    boxes = sorted(set(boxes))
    if len(boxes) != 4:
        raise RuntimeError(f"expected 4 full-body tiles in the character sheet, found {len(boxes)}")
    return boxes


def person_in(detector: object, image: np.ndarray) -> Detection:
    """The largest person with keypoints and a mask found in ``image``."""
    found = [d for d in detector(image) if d.keypoints is not None and d.mask is not None]  # type: ignore[operator]
    if not found:
        raise RuntimeError("no person with keypoints found in a full-body view")
    return max(found, key=lambda d: d.height * d.score)


def refine_mask(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """GrabCut from the segmenter's mask: eroded core is sure person, far outside sure background."""
    k = max(3, image.shape[0] // 60) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    m = mask.astype(np.uint8)
    gc = np.full(m.shape, cv2.GC_BGD, np.uint8)
    gc[cv2.dilate(m, kernel, iterations=3) > 0] = cv2.GC_PR_BGD
    gc[m > 0] = cv2.GC_PR_FGD
    gc[cv2.erode(m, kernel, iterations=2) > 0] = cv2.GC_FGD
    bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
    cv2.setRNGSeed(0)
    cv2.grabCut(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), gc, None, bgd, fgd, 4, cv2.GC_INIT_WITH_MASK)
    out = ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(out)
    if n > 1:
        out = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    return out > 0


def part_labels(image: np.ndarray, mask: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """``(h, w)`` uint8: 0 background, SKIN (skin, hair, face: never recoloured), CLOTH."""
    ycrcb = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)
    cr, cb = ycrcb[..., 1].astype(int), ycrcb[..., 2].astype(int)
    skin = (cr > 135) & (cr < 180) & (cb > 80) & (cb < 130)
    skin = cv2.morphologyEx(skin.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0
    shoulders = keypoints[5:7]
    neck_y = float(shoulders[:, 1].min()) if (shoulders[:, 2] > 0.3).any() else 0.18 * image.shape[0]
    nose_y = float(keypoints[0, 1]) if keypoints[0, 2] > 0.3 else neck_y - 0.08 * image.shape[0]
    # Above the chin everything is head (face, hair, ears); between chin and shoulders the collar
    # is clothing, while skin and dark hair (long hair on the shoulders) stay as they are.
    chin_y = nose_y + 0.45 * max(neck_y - nose_y, 0.0)
    rows = np.arange(mask.shape[0])[:, None]
    dark = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)[..., 2] < 70
    head = (rows < chin_y) | ((rows < neck_y) & dark)
    labels = np.zeros(mask.shape, np.uint8)
    labels[mask] = CLOTH
    labels[mask & (skin | head)] = SKIN
    return labels


def crop_person(image: np.ndarray, det: Detection, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crops the person to ``(height, ASPECT * height)``: RGB, full-size mask crop, keypoints."""
    mask = refine_mask(image, det.mask)  # type: ignore[arg-type]
    ys, xs = np.nonzero(mask)
    y1, y2 = ys.min(), ys.max() + 1
    cx = 0.5 * (xs.min() + xs.max() + 1)
    ph = (y2 - y1) * 1.04
    pw = ph * ASPECT
    box = (round(cx - pw / 2), round(y1 - 0.02 * ph), round(cx + pw / 2), round(y1 - 0.02 * ph + ph))
    scale = height / (box[3] - box[1])
    size = (round(height * ASPECT), height)
    background = tuple(int(v) for v in np.median(image[~mask], axis=0))
    rgb = cv2.resize(crop_constant(image, box, background), size, interpolation=cv2.INTER_AREA)
    m = cv2.resize(crop_constant(mask.astype(np.uint8) * 255, box, 0), size, interpolation=cv2.INTER_AREA)
    kp = det.keypoints.copy()  # type: ignore[union-attr]
    kp[:, 0] = (kp[:, 0] - box[0]) * scale
    kp[:, 1] = (kp[:, 1] - box[1]) * scale
    return rgb, m, kp


def crop_constant(image: np.ndarray, box: tuple[int, int, int, int], value: int | tuple[int, ...]) -> np.ndarray:
    """Crops ``box``; where it leaves the image, fills ``value`` (a tile's edge may cut the hair:
    repeating it would grow a column of hair, and matte, above the head)."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    inner = image[max(y1, 0):min(y2, h), max(x1, 0):min(x2, w)]
    fill = value if isinstance(value, tuple) else (value,)
    return cv2.copyMakeBorder(inner, max(-y1, 0), max(y2 - h, 0), max(-x1, 0), max(x2 - w, 0),
                              cv2.BORDER_CONSTANT, value=fill)


def views_of_person(detector: object, files: list[Path], height: int) -> list[dict]:
    """The six donor views of one person."""
    by_name = {f.stem: f for f in files}
    sheet = cv2.cvtColor(cv2.imread(str(by_name["character_sheet"])), cv2.COLOR_BGR2RGB)
    items: list[tuple[str, np.ndarray, str | None]] = []
    for (x1, y1, x2, y2), view in zip(sheet_tiles(sheet), SHEET_VIEWS):
        items.append((f"character_sheet:{view}", sheet[y1:y2, x1:x2], view))
    for stem in ("studio_posture", "amateur_posture"):
        photo = cv2.cvtColor(cv2.imread(str(by_name[stem])), cv2.COLOR_BGR2RGB)
        s = 1024 / max(photo.shape[:2])
        items.append((stem, cv2.resize(photo, None, fx=s, fy=s, interpolation=cv2.INTER_AREA), None))
    out = []
    for source, image, sheet_view in items:
        det = person_in(detector, np.ascontiguousarray(image))
        rgb, alpha, kp = crop_person(image, det, height)
        view = view_of(kp) if sheet_view is None else sheet_view
        if sheet_view == "back" and kp[5, 0] > kp[6, 0]:
            # The pose model can read a back as a front: seen from behind, the left shoulder is on the image's left.
            kp = mirror_coco17(kp)
        labels = part_labels(rgb, alpha > 127, kp)
        out.append({"rgb": rgb, "alpha": alpha, "labels": labels, "kp": kp, "view": view, "source": source})
    return out


def build(out_dir: Path, height: int) -> dict:
    """Builds ``bank.npz`` in ``out_dir`` and returns the manifest."""
    from realanon.detectors.mediapipe_body import MediaPipeBodyDetector

    detector = MediaPipeBodyDetector(proposals=("pose", "faces"))
    rows: list[dict] = []
    for person, files in openpeople_images().items():
        for v in views_of_person(detector, files, height):
            rows.append({**v, "person": person})
            print(person, v["source"], v["view"])
    jpegs = [cv2.imencode(".jpg", cv2.cvtColor(r["rgb"], cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
             for r in rows]
    offsets = np.cumsum([0] + [len(j) for j in jpegs]).astype(np.int64)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "bank.npz"
    np.savez_compressed(
        path, jpeg=np.concatenate(jpegs).astype(np.uint8), jpeg_offsets=offsets,
        alpha=np.stack([r["alpha"] for r in rows]), labels=np.stack([r["labels"] for r in rows]),
        keypoints=np.stack([r["kp"] for r in rows]).astype(np.float32),
        view=np.array([r["view"] for r in rows]), person=np.array([r["person"] for r in rows]),
        source=np.array([r["source"] for r in rows]),
    )
    manifest = {
        "file": "bank.npz", "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "donors": len(rows),
        "persons": sorted({r["person"] for r in rows}), "height_px": height,
        "views": {v: sum(r["view"] == v for r in rows) for v in ("front", "back", "left", "right")},
        "source": f"openpeople {metadata.version('openpeople')} (MIT), curated character sheets and posture photos",
        "built_with": f"python scripts/build_body_bank.py --out {out_dir} --height {height}",
        "mediapipe": metadata.version("mediapipe"), "opencv": cv2.__version__,
    }
    (out_dir / "config.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("weights/body-donors"))
    parser.add_argument("--height", type=int, default=320, help="donor crop height in pixels")
    args = parser.parse_args()
    print(json.dumps(build(args.out, args.height), indent=2))


if __name__ == "__main__":
    main()
