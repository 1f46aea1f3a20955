"""Measures whole-body replacement (``--target body``) side by side: blur, mask, pixelate, gan, donor.

Prints three tables (and writes the side-by-side figure) for docs/generators.md, "Bodies"::

    OMP_NUM_THREADS=1 python scripts/measure_bodies.py --figure docs/images/bodies_side_by_side.jpg

The replaced people come from ``--regions`` (default ``coco_person``, the body default; the
re-detection table in docs/generators.md was printed with ``--regions mediapipe_body``).

1. Re-detection: people found by the ``--regions`` detector in frames of vtest.avi (CCTV) and the
   1906 street film are replaced; a COCO person detector (``coco_person`` when registered, else its
   box stage ``centernet_person``) runs on the original and on each output. Among the replaced people it finds in the original (IoU >= 0.5
   with the replaced person's box), the share it still finds at the same place (IoU >= 0.5).
   ``--misses sheet.png`` writes the people ``donor`` loses (original | output, height, best IoU).
2. Re-identification: openpeople's 10 people x 6 full-body views (the body donor bank's crops
   with their masks). Per seeded split, 3 views per person are the attacker's gallery (originals),
   the other 3 are anonymized (``donor`` never uses the person's own views) and matched to the
   gallery by nearest neighbour on an HSV colour histogram of the person's region. Chance is 10 %.
3. Speed: ms per replaced person (generation and paste, detections given) for a person 50, 100 and
   200 px tall pasted into a vtest frame; median of ``--repeats`` runs, one thread.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

from realanon.config import AnonymizerConfig
from realanon.detectors._boxes import box_iou
from realanon.generators.donor_body import BodyBank
from realanon.media import read_video_frames, street_film_path, vtest_path
from realanon.pipeline import Anonymizer, build_anonymizer
from realanon.registry import DETECTORS
from realanon.structures import Detection, Detections

METHODS = ("blur", "mask", "pixelate", "gan", "donor")
VTEST_FRAMES = (60, 130, 200, 270, 340, 410, 480, 550, 620, 690)
STREET_FRAMES = (100, 170, 250, 320, 400, 470, 550, 620)


def anonymizer(method: str, seed: int = 0, exclude: tuple[str, ...] = ()) -> Anonymizer:
    """The pipeline for ``method`` on bodies, fed detections (no detector of its own)."""
    options = {"exclude_persons": list(exclude)} if method == "donor" and exclude else {}
    config = AnonymizerConfig(target="body", method=method, method_options=options, seed=seed, fail_closed=False)
    return build_anonymizer(config, detector=None)


def coco_detector() -> tuple[str, object]:
    """The independent COCO person detector: ``coco_person`` if this checkout has it."""
    for name in ("coco_person", "centernet_person"):
        if name in DETECTORS.names():
            try:
                return name, DETECTORS.build(name)
            except Exception as err:  # noqa: BLE001 - fall back to the box stage
                print(f"# {name} unavailable ({type(err).__name__}: {err})")
    raise SystemExit("no COCO person detector registered")


def person_boxes(detector: object, image: np.ndarray) -> np.ndarray:
    found = [d.box_xyxy for d in detector(image) if d.kind == "body"]  # type: ignore[operator]
    return np.asarray(found, np.float64).reshape(-1, 4)


def redetection(frames: list[np.ndarray], coco: object, regions: str, methods: tuple[str, ...] = METHODS,
                misses: list[np.ndarray] | None = None) -> tuple[dict[str, float], int]:
    """Share of replaced, originally COCO-detected people the COCO detector still finds, per method.

    With ``misses``, the people ``donor`` loses are appended to it (:func:`miss_cell`).
    """
    body = DETECTORS.build(regions)
    runners = {m: anonymizer(m) for m in methods}
    found = dict.fromkeys(methods, 0)
    total = 0
    for i, frame in enumerate(frames):
        targets = body(frame)
        before = person_boxes(coco, frame)
        kept = []
        for det in targets:
            ious = box_iou(np.asarray(det.box_xyxy, np.float64), before) if len(before) else np.zeros(0)
            if len(ious) and ious.max() >= 0.5:
                kept.append(before[int(ious.argmax())])
        total += len(kept)
        for method, run in runners.items():
            out = run(frame, targets, frame_index=i).image
            after = person_boxes(coco, out)
            for box in kept:
                iou = float(box_iou(box, after).max()) if len(after) else 0.0
                found[method] += iou >= 0.5
                if misses is not None and method == "donor" and iou < 0.5:
                    misses.append(miss_cell(frame, out, box, iou))
    return {m: found[m] / max(total, 1) for m in methods}, total


def miss_cell(frame: np.ndarray, out: np.ndarray, box: np.ndarray, iou: float) -> np.ndarray:
    """Original | output around a lost person's box (drawn), 120 px tall, labelled with its height and best IoU."""
    x1, y1, x2, y2 = (int(v) for v in box)
    pad = max(y2 - y1, x2 - x1) // 3
    X1, Y1, X2, Y2 = max(0, x1 - pad), max(0, y1 - pad), min(frame.shape[1], x2 + pad), min(frame.shape[0], y2 + pad)
    pair = [np.ascontiguousarray(im[Y1:Y2, X1:X2]) for im in (frame, out)]
    for im in pair:
        cv2.rectangle(im, (x1 - X1, y1 - Y1), (x2 - X1, y2 - Y1), (255, 255, 0), 1)
    cell = np.hstack(pair)
    cell = cv2.resize(cell, (max(1, round(cell.shape[1] * 120 / cell.shape[0])), 120), interpolation=cv2.INTER_CUBIC)
    cv2.putText(cell, f"{y2 - y1}px {iou:.2f}", (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1)
    return cell


def contact_sheet(cells: list[np.ndarray], path: str, width: int = 1400) -> None:
    """Writes ``cells`` (equal heights) row by row, each row at most ``width`` px wide."""
    rows: list[list[np.ndarray]] = [[]]
    for cell in cells:
        if rows[-1] and sum(c.shape[1] + 4 for c in rows[-1]) + cell.shape[1] > width:
            rows.append([])
        rows[-1].append(np.pad(cell, ((0, 4), (0, 4), (0, 0))))
    lines = [np.hstack(r) for r in rows if r]
    sheet = np.vstack([np.pad(line, ((0, 0), (0, width - line.shape[1]), (0, 0))) for line in lines])
    cv2.imwrite(path, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


def histogram(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """L1-normalised HSV histogram (16 hue x 4 saturation x 4 value bins) of the masked pixels."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    h = cv2.calcHist([hsv], [0, 1, 2], mask.astype(np.uint8), [16, 4, 4], [0, 180, 0, 256, 0, 256]).ravel()
    return h / max(float(h.sum()), 1.0)


def reid_accuracy(bank: BodyBank, method: str, seed: int) -> float:
    """Top-1 accuracy of the colour-histogram nearest-neighbour attack on one seeded split."""
    rng = np.random.default_rng(seed)
    gallery, labels, correct, queries = [], [], 0, 0
    split = {p: rng.permutation(np.flatnonzero(bank.person == p)) for p in np.unique(bank.person)}
    for person, views in split.items():
        for i in views[:3]:
            gallery.append(histogram(bank.image(int(i)), bank.alpha[i] > 127))
            labels.append(person)
    g = np.stack(gallery)
    for person, views in split.items():
        run = None if method == "original" else anonymizer(method, seed, exclude=(person,))
        for i in views[3:]:
            image, mask = bank.image(int(i)), bank.alpha[i] > 127
            if run is not None:
                ys, xs = np.nonzero(mask)
                box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
                det = Detection(box, 1.0, "body", keypoints=bank.keypoints[i], keypoint_layout="coco17", mask=mask)
                out = run(image, Detections((det,), mask.shape), frame_index=int(i))
                image = out.image
            q = histogram(image, mask)
            predicted = labels[int(np.argmin(np.abs(g - q).sum(axis=1)))]
            correct += predicted == person
            queries += 1
    return correct / queries


def speed(bank: BodyBank, frame: np.ndarray, heights: tuple[int, ...], repeats: int,
          methods: tuple[str, ...] = METHODS) -> dict[str, list[float]]:
    """Median ms per replaced person of each method, per person height."""
    index = int(np.flatnonzero((bank.person == "P010") & (bank.view == "front"))[0])
    out: dict[str, list[float]] = {m: [] for m in methods}
    for height in heights:
        s = height / bank.alpha.shape[1]
        person = cv2.resize(bank.image(index), None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(bank.alpha[index], (person.shape[1], person.shape[0])) > 127
        x0, y0 = 300, 520 - person.shape[0]
        scene = frame.copy()
        scene[y0:y0 + person.shape[0], x0:x0 + person.shape[1]][alpha] = person[alpha]
        mask = np.zeros(frame.shape[:2], bool)
        mask[y0:y0 + person.shape[0], x0:x0 + person.shape[1]] = alpha
        kp = bank.keypoints[index].copy()
        kp[:, :2] = kp[:, :2] * s + (x0, y0)
        ys, xs = np.nonzero(mask)
        det = Detection((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), 1.0, "body", keypoints=kp,
                        keypoint_layout="coco17", mask=mask)
        dets = Detections((det,), frame.shape[:2])
        for method in methods:
            run = anonymizer(method)
            run(scene, dets)  # warm-up: loads weights and banks
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                run(scene, dets)
                times.append(1000.0 * (time.perf_counter() - t0))
            out[method].append(float(np.median(times)))
    return out


def people_window(dets: Detections, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """A 4:3 window around every detected person (at least half the frame's height)."""
    h, w = size
    boxes = np.array([d.box_xyxy for d in dets]) if len(dets) else np.array([[0, 0, w, h]], float)
    x1, y1 = boxes[:, :2].min(0)
    x2, y2 = boxes[:, 2:].max(0)
    wh = max(0.5 * h, 1.15 * (y2 - y1), 1.15 * (x2 - x1) * 0.75)
    ww = min(w, wh / 0.75)
    wh = min(h, wh)
    cx, cy = 0.5 * (x1 + x2), 0.5 * (y1 + y2)
    left, top = int(np.clip(cx - ww / 2, 0, w - ww)), int(np.clip(cy - wh / 2, 0, h - wh))
    return left, top, left + int(ww), top + int(wh)


def figure(frames: list[np.ndarray], path: str, regions: str) -> None:
    """Rows: frames, cropped around their people; columns: original, blur, mask, gan, donor (360 px tall)."""
    body = DETECTORS.build(regions)
    rows = []
    for frame in frames:
        dets = body(frame)
        x1, y1, x2, y2 = people_window(dets, frame.shape[:2])
        cells = [frame] + [anonymizer(m)(frame, dets).image for m in ("blur", "mask", "gan", "donor")]
        cells = [np.ascontiguousarray(c[y1:y2, x1:x2]) for c in cells]
        cells = [cv2.resize(c, (round(c.shape[1] * 360 / c.shape[0]), 360), interpolation=cv2.INTER_CUBIC) for c in cells]
        for c, label in zip(cells, ("original", "blur", "mask", "gan", "donor")):
            cv2.putText(c, label, (8, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 0), 2)
        rows.append(np.hstack(cells))
    width = max(r.shape[1] for r in rows)
    grid = np.vstack([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows])
    cv2.imwrite(path, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"figure: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--figure", help="write the side-by-side figure here (.jpg)")
    parser.add_argument("--seeds", type=int, default=3, help="re-identification splits")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip", nargs="*", default=[], choices=("redetect", "reid", "speed"))
    parser.add_argument("--regions", default="coco_person", help="body detector whose people are replaced")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of " + ",".join(METHODS))
    parser.add_argument("--misses", help="write a contact sheet of the people donor loses here (.png)")
    args = parser.parse_args()
    methods = tuple(m for m in METHODS if m in args.methods.split(","))
    bank = BodyBank.load("weights/body-donors/bank.npz")
    vtest = read_video_frames(vtest_path(), list(VTEST_FRAMES))
    street = read_video_frames(street_film_path(), list(STREET_FRAMES))
    if args.figure:
        figure([vtest[1], street[2]], args.figure, args.regions)
    if "redetect" not in args.skip:
        name, coco = coco_detector()
        print(f"\n## re-detection by {name} (IoU >= 0.5) of people found by {args.regions} and replaced")
        print("| frames | people | " + " | ".join(methods) + " |\n|---|---|" + "---|" * len(methods))
        kept = dict.fromkeys(methods, 0.0)
        people = 0
        misses: list[np.ndarray] | None = [] if args.misses else None
        for label, frames in (("vtest", vtest), ("street film", street)):
            shares, n = redetection(frames, coco, args.regions, methods, misses)
            people += n
            for m in methods:
                kept[m] += shares[m] * n
            print(f"| {label} ({len(frames)}) | {n} | " + " | ".join(f"{shares[m]:.2f}" for m in methods) + " |")
        print(f"| all | {people} | " + " | ".join(f"{kept[m] / max(people, 1):.2f}" for m in methods) + " |")
        if misses:
            contact_sheet(misses, args.misses)
            print(f"{len(misses)} people lost by donor (of {people}): {args.misses}")
    if "reid" not in args.skip:
        print(f"\n## re-identification top-1 on openpeople's 10 people (chance 0.10), mean ± sd over {args.seeds} splits")
        print("| original | " + " | ".join(methods) + " |\n|---|" + "---|" * len(methods))
        cells = []
        for method in ("original", *methods):
            acc = [reid_accuracy(bank, method, seed) for seed in range(args.seeds)]
            cells.append(f"{np.mean(acc):.2f} ± {np.std(acc):.2f}")
        print("| " + " | ".join(cells) + " |")
    if "speed" not in args.skip:
        heights = (50, 100, 200)
        ms = speed(bank, vtest[0], heights, args.repeats, methods)
        print("\n## ms per replaced person (median, one thread), person height in px")
        print("| method | " + " | ".join(f"{h} px" for h in heights) + " |\n|---|" + "---|" * len(heights))
        for method in methods:
            print(f"| {method} | " + " | ".join(f"{v:.1f}" for v in ms[method]) + " |")


if __name__ == "__main__":
    main()
