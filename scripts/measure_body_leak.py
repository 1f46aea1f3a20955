"""The small protocol's video leak check for each body detector, alone and fast; prints markdown.

Run (offline, CPU; a few minutes on 2 cores)::

    OMP_NUM_THREADS=1 python scripts/measure_body_leak.py > /tmp/body_leak.md

Uses exactly the data and leak options of ``eval/small.toml`` (vtest.avi at half size, the
validation frames, ``[leak] frames`` and ``coverage``) and the evaluator's own functions
(``detection_splits``, ``replaced_mask``, ``leak_fraction``). A reference person leaks when less
than ``coverage`` of their box is replaced by ``--target body --method mask`` run with the
given detector. The references come from each pseudo-ground-truth detector in turn: OpenCV's
HOG people detector (what ``eval/small.toml`` uses, and what the 0.833 in ``docs/eval/small`` was
measured against) and ``coco_person``; a detector judged by itself is marked as such.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from realanon.config import load_preset
from realanon.evaluation.datasets import detection_splits
from realanon.evaluation.methods import replaced_mask
from realanon.evaluation.privacy import leak_fraction
from realanon.evaluation.protocol import load_protocol
from realanon.pipeline import build_anonymizer

REPO = Path(__file__).resolve().parent.parent
REFERENCES = {"hog (upscale 1.3, as eval/small.toml)": ("hog", 1.3), "coco_person": ("coco_person", 1.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--protocol", default=str(REPO / "eval" / "small.toml"))
    parser.add_argument("--detectors", default="coco_person,mediapipe_body")
    args = parser.parse_args()
    protocol = load_protocol(args.protocol)
    detectors = args.detectors.split(",")
    config = load_preset("face_mask").replace(target="body", fail_closed=False)
    print(f"Protocol {protocol.name}: vtest.avi at scale {protocol.data.scale}, first {protocol.leak.frames} "
          f"validation frames, a person leaks when < {protocol.leak.coverage:.0%} of their box is replaced "
          "(`--target body --method mask`).\n")
    print("| reference people (pseudo-ground-truth) | people | " + " | ".join(
        f"{d}: people uncovered | {d}: frames with a leak" for d in detectors) + " |")
    print("|---|---|" + "---|---|" * len(detectors))
    for label, (reference, upscale) in REFERENCES.items():
        data = protocol.data
        fields = {f.name for f in dataclasses.fields(data)}
        changes = {"pseudo_gt": reference, "pseudo_gt_upscale": upscale}
        if "pseudo_gt_options" in fields:
            changes["pseudo_gt_options"] = {}
        _, val = detection_splits(dataclasses.replace(data, **changes))  # type: ignore[arg-type]
        frames = val[: protocol.leak.frames]
        boxes = [np.array([inst.box_xyxy for inst in s.instances]).reshape(-1, 4) for s in frames]
        cells = []
        for name in detectors:
            anonymizer = build_anonymizer(config.replace(detector=name, detector_options={}))
            masks = [replaced_mask(anonymizer(s.image, frame_index=i)) for i, s in enumerate(frames)]
            frame_share, people_share = leak_fraction(boxes, masks, protocol.leak.coverage)
            own = " (judged by itself)" if name == reference else ""
            cells.append(f"{people_share:.3f}{own} | {frame_share:.3f}")
        print(f"| {label} | {sum(len(b) for b in boxes)} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
