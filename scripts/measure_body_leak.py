"""The small protocol's video leak check for each body detector, alone and fast; prints markdown.

Run (offline, CPU; a few minutes on 2 cores)::

    OMP_NUM_THREADS=1 python scripts/measure_body_leak.py > /tmp/body_leak.md
    OMP_NUM_THREADS=1 python scripts/measure_body_leak.py --references coco_person --detectors coco_person --misses

``--references`` and ``--detectors`` pick rows by label; ``--misses`` also lists every
uncovered reference box (frame, box, size, share of it replaced), to look at them one by one.

Uses exactly the data and leak options of ``eval/small.toml`` (vtest.avi at half size, the
validation frames, ``[leak] frames`` and ``coverage``) and the evaluator's own functions
(``detection_splits``, ``replaced_mask``, ``leak_fraction``). A reference person leaks when less
than ``coverage`` of their box is replaced by ``--target body --method mask`` run with the
given detector. The references come from each pseudo-ground-truth detector in turn: OpenCV's
HOG people detector (what ``eval/small.toml`` used, and what the 0.833 in ``docs/eval/small`` was
measured against), ``coco_person`` (what it uses now: every person scoring >= 0.25 on the full-size
frames), ``coco_person>=0.5``: the same people, but those scoring under 0.5 are ignore regions
(the rule of ``eval/bodies_ignore.toml``), counted neither as people nor as leaks, and
``coco_person+pose``: the same people, but only those in whose crop MoveNet (``coco_person``'s
keypoint stage, here for people of any size) finds at least 5 keypoints scoring >= 0.3 count. A detector judged
by itself is marked as such.

HOG's boxes are its 64x128 window, about twice as wide as the person inside, so a mask that
follows the person's outline covers under half of such a box even when it hides the whole
person. The "core" columns therefore also apply the same rule to the box's core: its middle
third in width and middle 60 % in height, which lies on the person for a HOG box.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from realanon.config import load_preset
from realanon.evaluation.coco import labelled
from realanon.evaluation.datasets import detection_splits
from realanon.evaluation.methods import replaced_mask
from realanon.evaluation.privacy import leak_fraction
from realanon.evaluation.protocol import load_protocol
from realanon.pipeline import build_anonymizer

REPO = Path(__file__).resolve().parent.parent
# label -> (pseudo-ground-truth detector, upscale, pseudo_gt_ignore_below, keypoints needed). With the
# third above 0, the reference's people scoring below it are ignore regions (COCO iscrowd, as in
# eval/bodies_ignore.toml): neither counted as people nor as leaks, whether replaced or not. With the
# fourth above 0, only people with at least that many MoveNet keypoints scoring >= KEYPOINT_SCORE in
# their crop (any size; coco_person's own keypoint stage) count; the others are ignored the same way.
REFERENCES = {"hog (upscale 1.3)": ("hog", 1.3, 0.0, 0), "coco_person": ("coco_person", 1.0, 0.0, 0),
              "coco_person>=0.5": ("coco_person", 1.0, 0.5, 0),
              "coco_person+pose": ("coco_person", 1.0, 0.0, 5)}
KEYPOINT_SCORE = 0.3
DETECTORS: dict[str, tuple[str, dict[str, Any]]] = {
    "coco_person": ("coco_person", {}),
    # Before 2026-12-02 (late): frames under 576 px tall were searched for 24-px people too, so a
    # 384x288 frame got no tiles at all.
    "coco_person min_height_fraction=0": ("coco_person", {"box_options": {"min_height_fraction": 0}}),
    "coco_person fit_tiles=false": ("coco_person", {"box_options": {"fit_tiles": False}}),
    "coco_person fit_tiles=true": ("coco_person", {"box_options": {"fit_tiles": True}}),
    "coco_person masks=box": ("coco_person", {"masks": "box"}),
    "mediapipe_body": ("mediapipe_body", {}),
}


def core(boxes: np.ndarray) -> np.ndarray:
    """The middle third (width) and middle 60 % (height) of each XYXY box."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return np.stack([boxes[:, 0] + w / 3, boxes[:, 1] + 0.2 * h, boxes[:, 2] - w / 3, boxes[:, 3] - 0.2 * h], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--protocol", default=str(REPO / "eval" / "small.toml"))
    parser.add_argument("--detectors", default=",".join(DETECTORS), help=f"labels of {', '.join(DETECTORS)}")
    parser.add_argument("--references", default=",".join(REFERENCES), help=f"labels of {', '.join(REFERENCES)}")
    parser.add_argument("--misses", action="store_true",
                        help="also list each uncovered reference person: frame, box size, share of the box replaced")
    args = parser.parse_args()
    protocol = load_protocol(args.protocol)
    detectors = args.detectors.split(",")
    config = load_preset("face_mask").replace(target="body", fail_closed=False)
    print(f"Protocol {protocol.name}: vtest.avi at scale {protocol.data.scale}, first {protocol.leak.frames} "
          f"validation frames, a person leaks when < {protocol.leak.coverage:.0%} of their box is replaced "
          "(`--target body --method mask`).\n")
    print("| reference people (pseudo-ground-truth) | people | detector | people uncovered | frames with a leak "
          "| people uncovered (core) | frames with a leak (core) |")
    print("|---|---|---|---|---|---|---|")
    misses: list[str] = []
    for label, (reference, upscale, ignore_below, min_keypoints) in REFERENCES.items():
        if label not in args.references.split(","):
            continue
        data = protocol.data
        fields = {f.name for f in dataclasses.fields(data)}
        changes = {"pseudo_gt": reference, "pseudo_gt_upscale": upscale, "pseudo_gt_ignore_below": ignore_below}
        if "pseudo_gt_options" in fields:
            changes["pseudo_gt_options"] = {"keypoint_options": {"min_height": 0}} if min_keypoints else {}
            changes["pseudo_gt_detail"] = bool(min_keypoints)
        _, val = detection_splits(dataclasses.replace(data, **changes))  # type: ignore[arg-type]
        frames = val[: protocol.leak.frames]
        boxes = [np.array([inst.box_xyxy for inst in labelled(s.instances) if posed(inst, min_keypoints)]).reshape(-1, 4)
                 for s in frames]
        for detector in detectors:
            name, options = DETECTORS[detector]
            anonymizer = build_anonymizer(config.replace(detector=name, detector_options=options))
            masks = [replaced_mask(anonymizer(s.image, frame_index=i)) for i, s in enumerate(frames)]
            frame_share, people_share = leak_fraction(boxes, masks, protocol.leak.coverage)
            core_frames, core_people = leak_fraction([core(b) for b in boxes], masks, protocol.leak.coverage)
            if args.misses:
                misses += uncovered(label, detector, boxes, masks, protocol.leak.coverage)
            own = " (judged by itself)" if name == reference else ""
            print(f"| {label} | {sum(len(b) for b in boxes)} | {detector}{own} | {people_share:.3f} | {frame_share:.3f} | "
                  f"{core_people:.3f} | {core_frames:.3f} |", flush=True)

    if misses:
        print("\n| reference | detector | frame | box (x1, y1, x2, y2) | box h x w | share replaced |\n|---|---|---|---|---|---|")
        print("\n".join(misses))


def posed(inst: Any, min_keypoints: int) -> bool:
    """Whether a reference person has at least ``min_keypoints`` keypoints scoring >= KEYPOINT_SCORE (always, for 0)."""
    if min_keypoints <= 0:
        return True
    return inst.keypoints is not None and int((inst.keypoints[:, 2] >= KEYPOINT_SCORE).sum()) >= min_keypoints


def uncovered(reference: str, detector: str, boxes: list[np.ndarray], masks: list[np.ndarray],
              coverage: float) -> list[str]:
    """Markdown rows, one per reference box of which less than ``coverage`` is replaced."""
    rows = []
    for i, (frame_boxes, mask) in enumerate(zip(boxes, masks)):
        for x1, y1, x2, y2 in frame_boxes:
            xa, ya = max(int(x1), 0), max(int(y1), 0)
            xb, yb = min(int(np.ceil(x2)), mask.shape[1]), min(int(np.ceil(y2)), mask.shape[0])
            if xb <= xa or yb <= ya:
                continue
            share = float(mask[ya:yb, xa:xb].mean())
            if share < coverage:
                rows.append(f"| {reference} | {detector} | {i} | ({x1:.0f}, {y1:.0f}, {x2:.0f}, {y2:.0f}) | "
                            f"{y2 - y1:.0f} x {x2 - x1:.0f} | {share:.2f} |")
    return rows


if __name__ == "__main__":
    main()
