"""Contact sheets of the leak check's reference people that ``[leak] confirm_keypoints`` drops or barely keeps.

Run (offline, CPU; a few minutes on 2 cores)::

    OMP_NUM_THREADS=1 python scripts/leak_reference_sheet.py -o /tmp/leak_refs

Uses the protocol's own data and leak options (default ``eval/small.toml``) and the evaluator's own
functions (``detection_splits``, :mod:`realanon.evaluation.references`). Prints how many of the
pseudo-ground-truth people of the checked frames are kept and dropped, and a histogram of their
confident-keypoint counts; writes ``dropped.png`` (every dropped person) and ``kept_border.png``
(the kept people with at most ``--border`` keypoints more than needed), each crop cut from the
full-size frame with context, enlarged, and labelled ``frame:height px:keypoints``, so that they
can be checked by eye for real people dropped; and ``people.tsv``, every reference person's box
(full-size pixels) and keypoint count.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from realanon.evaluation.datasets import detection_splits, vtest_validation_originals
from realanon.evaluation.protocol import load_protocol
from realanon.evaluation.references import keypoint_counts, reference_boxes, skeleton_counter

REPO = Path(__file__).resolve().parent.parent
CELL = 112  # side of one contact-sheet cell, pixels


def cell(original: np.ndarray, box: np.ndarray, label: str) -> np.ndarray:
    """The person of ``box`` (full-size pixels) with as much context again around, in a labelled square cell."""
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1) * 2
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    h, w = original.shape[:2]
    a, b = int(max(cx - side / 2, 0)), int(max(cy - side / 2, 0))
    crop = original[b : int(min(cy + side / 2, h)), a : int(min(cx + side / 2, w))].copy()
    cv2.rectangle(crop, (int(x1) - a, int(y1) - b), (int(x2) - a, int(y2) - b), (255, 0, 0), 1)
    k = (CELL - 14) / max(crop.shape[:2])
    crop = cv2.resize(crop, None, fx=k, fy=k, interpolation=cv2.INTER_NEAREST)
    out = np.full((CELL, CELL, 3), 255, np.uint8)
    out[14 : 14 + crop.shape[0], : crop.shape[1]] = crop
    cv2.putText(out, label, (2, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def sheet(cells: list[np.ndarray], columns: int = 12) -> np.ndarray:
    """Cells in rows of ``columns`` (a white cell where there is none)."""
    cells = cells or [np.full((CELL, CELL, 3), 255, np.uint8)]
    cells += [np.full_like(cells[0], 255)] * (-len(cells) % columns)
    rows = [np.concatenate(cells[i : i + columns], axis=1) for i in range(0, len(cells), columns)]
    return np.concatenate(rows, axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--protocol", default=str(REPO / "eval" / "small.toml"))
    parser.add_argument("-o", "--output", default="/tmp/leak_refs")
    parser.add_argument("--border", type=int, default=2, help="kept people with at most this many keypoints spare")
    args = parser.parse_args()
    protocol = load_protocol(args.protocol)
    data, leak = protocol.data, protocol.leak
    needed = leak.confirm_keypoints or 5
    frames = detection_splits(data)[1][: leak.frames]
    originals = vtest_validation_originals(data, len(frames))
    boxes = reference_boxes(frames)
    counts = keypoint_counts(boxes, originals, data.scale, skeleton_counter(leak.confirm_keypoint_score))
    dropped, border, rows = [], [], ["frame\tx1\ty1\tx2\ty2\tkeypoints"]
    for i, (frame_boxes, frame_counts, original) in enumerate(zip(boxes, counts, originals)):
        for box, n in zip(frame_boxes / data.scale, frame_counts):
            rows.append("\t".join([str(i), *(f"{v:.1f}" for v in box), str(n)]))
            if n <= needed + args.border:
                (dropped if n < needed else border).append(cell(original, box, f"{i}:{box[3] - box[1]:.0f}px:{n}"))
    every = np.concatenate(counts)
    print(f"{protocol.name}: {len(every)} reference people in {len(frames)} frames; "
          f"{int((every >= needed).sum())} kept, {int((every < needed).sum())} dropped "
          f"(>= {needed} keypoints scoring >= {leak.confirm_keypoint_score}); {len(border)} kept with "
          f"<= {needed + args.border}")
    print("keypoints: people  " + ", ".join(f"{k}: {v}" for k, v in sorted(Counter(every.tolist()).items())))
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    for name, cells in (("dropped", dropped), ("kept_border", border)):
        cv2.imwrite(str(out / f"{name}.png"), cv2.cvtColor(sheet(cells), cv2.COLOR_RGB2BGR))
    (out / "people.tsv").write_text("\n".join(rows) + "\n")
    print(f"contact sheets in {out}")


if __name__ == "__main__":
    main()
