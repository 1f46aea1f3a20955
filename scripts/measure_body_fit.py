"""How donor bodies sit in the evaluator's training frames: place, size and lightness against the originals.

Prints one table for docs/generators.md ("Bodies", "Fit to the people replaced")::

    OMP_NUM_THREADS=1 python scripts/measure_body_fit.py --frames 20

The frames and people are those of the ``bodies`` protocol's training split (``--protocol``,
default ``eval/bodies.toml``: vtest at half size, ``coco_person`` people with their masks and
keypoints). Each frame is anonymized with the ``donor`` method as the evaluator does, then twice
more with the background fill replaced by black and by white: the difference of those two is the
donor's coverage, so the donor body is measured apart from the inpainted scene around it.
Per person (median over people; the box is the pseudo-ground-truth box the detector is trained
to predict):

- ``top``, ``bottom``, ``left``, ``right``: the donor's extent (coverage > 0.5) minus the box's,
  in pixels (positive: below / right of the box edge);
- ``height``, ``width``: the donor's extent over the box's;
- ``area``: donor pixels over the person's mask pixels;
- ``L person``, ``L donor``, ``L scene``: mean CIELAB lightness (OpenCV's 0-255 scale) of the
  original person (mask), of the donor (coverage > 0.5) and of a ring of scene around the mask;
- ``sd L``: the spread of lightness inside the person and the donor;
- ``chroma``: mean CIELAB chroma of the person and of the donor;
- ``covered``: the share of the person's mask pixels the donor covers (coverage > 0.5); the rest
  shows the scene fill.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager

import cv2
import numpy as np

import realanon.generators.donor_body as donor_body
from realanon.evaluation.datasets import detection_splits, to_detections
from realanon.evaluation.methods import build_method
from realanon.evaluation.protocol import load_protocol

COLUMNS = ("top", "bottom", "left", "right", "height", "width", "area", "L person", "L donor", "L scene",
           "sd L person", "sd L donor", "chroma person", "chroma donor", "covered")


@contextmanager
def constant_background(value: float | None) -> Iterator[None]:
    """Within the block, the donor generator lays its body over a flat ``value`` instead of the scene fill."""
    original = donor_body.fill_background
    if value is not None:
        donor_body.fill_background = lambda crop, mask, scene, seed: np.full(crop.shape, value, np.float32)
    try:
        yield
    finally:
        donor_body.fill_background = original


def person_row(inst: object, cover: np.ndarray, lab_orig: np.ndarray, lab_out: np.ndarray) -> list[float] | None:
    """The table's columns for one pseudo-ground-truth person, or None when no donor covers it."""
    x0, y0, x1, y1 = inst.box_xyxy  # type: ignore[attr-defined]
    mask = inst.mask  # type: ignore[attr-defined]
    bw, bh = x1 - x0, y1 - y0
    near = np.zeros(cover.shape, bool)  # the donor of this person only: a window around its box
    near[int(max(0, y0 - 0.15 * bh)):int(y1 + 0.15 * bh) + 1, int(max(0, x0 - 0.3 * bw)):int(x1 + 0.3 * bw) + 1] = True
    body = (cover > 0.5) & near
    if body.sum() < 4 or mask is None or not mask.any():
        return None
    ys, xs = np.nonzero(body)
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    ring = grown & ~(cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)

    def chroma(lab: np.ndarray, where: np.ndarray) -> float:
        return float(np.hypot(lab[..., 1][where] - 128, lab[..., 2][where] - 128).mean())

    return [ys.min() - y0, ys.max() + 1 - y1, xs.min() - x0, xs.max() + 1 - x1,
            (ys.max() + 1 - ys.min()) / bh, (xs.max() + 1 - xs.min()) / bw, body.sum() / mask.sum(),
            lab_orig[..., 0][mask].mean(), lab_out[..., 0][body].mean(), lab_orig[..., 0][ring].mean(),
            lab_orig[..., 0][mask].std(), lab_out[..., 0][body].std(), chroma(lab_orig, mask), chroma(lab_out, body),
            float(body[mask].mean())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--protocol", default="eval/bodies.toml")
    parser.add_argument("--frames", type=int, default=20, help="first N training frames")
    args = parser.parse_args()
    p = load_protocol(args.protocol)
    spec = next(m for m in p.methods if m.name == "donor")
    run = build_method(spec, p.utility.target, seed=p.seeds[0])
    train, _ = detection_splits(p.data)
    rows = []
    for i, sample in enumerate(train[: args.frames]):
        dets = to_detections(sample, p.utility.target)
        out = run(sample.image, dets, i).image
        layers = []
        for value in (0.0, 255.0):
            with constant_background(value):
                layers.append(run(sample.image, dets, i).image.astype(np.float32))
        image = sample.image.astype(np.float32)
        cover = 1.0 - (layers[1] - layers[0]).mean(axis=2) / 255.0
        outside = (np.abs(layers[0] - image).max(axis=2) == 0) & (np.abs(layers[1] - image).max(axis=2) == 0)
        cover[outside] = 0.0  # never replaced: the difference says nothing there
        lab_orig = cv2.cvtColor(sample.image, cv2.COLOR_RGB2LAB).astype(np.float32)
        lab_out = cv2.cvtColor(out, cv2.COLOR_RGB2LAB).astype(np.float32)
        for inst in sample.instances:
            row = person_row(inst, cover, lab_orig, lab_out)
            if row is not None:
                rows.append(row)
    table = np.asarray(rows, np.float64)
    print(f"\n## donor bodies against the people they replace ({len(rows)} people, {args.frames} frames "
          f"of {p.name}'s training split), median over people")
    print("| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS))
    print("| " + " | ".join(f"{v:.2f}" for v in np.median(table, axis=0)) + " |")


if __name__ == "__main__":
    main()
