"""Faces covered in every frame of a video, by face height: realanon's video default next to deface.

Run (offline, CPU; a few minutes)::

    python scripts/measure_video_faces.py [--frames 40] [--every 1,2] [--work /tmp/video_faces]

The clip is ``bench_clips.py``'s crowd (40 openpeople heads with faces 12-40 px high walking
across a 1080p street and crossing one another), whose generator also gives every face's box.
Each tool fills what it finds with solid black: realanon's video default (what
``realanon anonymize CLIP --method mask`` builds: yunet, tracked) once per value of yunet's
``finest_every`` (how often the full-resolution scale is searched), and deface 1.5.0 with
``--replacewith solid``. A face is judged in a frame when at least ``--visible`` of its box is
not hidden by another head; it is covered when at least ``--share`` of the pixels of its inner
box (the middle 60 % of its width and height) that are not dark in the original (any channel
above 60) are black in the output (every channel below 40). Prints covered/judged by face
height, and the uncovered faces.
"""

from __future__ import annotations

import argparse
import subprocess
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
from bench_clips import crowd_walk, deface_executable, make_clip

BINS = ((12, 16), (16, 24), (24, 32), (32, 48))
Face = tuple[tuple[float, float, float, float], float]


def decoded(path: Path) -> Iterator[np.ndarray]:
    """The RGB frames of a video."""
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def covered(original: np.ndarray, output: np.ndarray, box: tuple[float, float, float, float], share: float) -> bool:
    """Whether the face's inner box is blacked out in ``output`` (see the module notes)."""
    x1, y1, x2, y2 = box
    dx, dy = 0.2 * (x2 - x1), 0.2 * (y2 - y1)
    window = np.s_[int(y1 + dy) : int(np.ceil(y2 - dy)), int(x1 + dx) : int(np.ceil(x2 - dx))]
    lit = original[window].max(axis=2) > 60
    if not lit.any():
        return True
    black = output[window].max(axis=2) < 40
    return float(black[lit].mean()) >= share


def judge(frames: int, output: Path, visible: float, share: float) -> tuple[dict[tuple[int, int], list[int]], list[str]]:
    """Covered and judged faces per height bin, and the uncovered ones, of one tool's output."""
    counts = {b: [0, 0] for b in BINS}
    misses = []
    for index, ((original, faces), result) in enumerate(zip(crowd_walk(frames), decoded(output))):
        for k, (box, seen) in enumerate(faces):
            height = box[3] - box[1]
            size = next((b for b in BINS if b[0] <= height < b[1]), None)
            if seen < visible or size is None:
                continue
            counts[size][1] += 1
            if covered(original, result, box, share):
                counts[size][0] += 1
            else:
                misses.append(f"frame {index} face {k} ({height:.0f} px, {seen:.0%} visible)")
    return counts, misses


def ours(clip: Path, out: Path, every: int) -> Path:
    from realanon.config import AnonymizerConfig
    from realanon.pipeline import build_anonymizer
    from realanon.video import anonymize_video

    config = AnonymizerConfig(method="mask", detector_options={"finest_every": every})
    anonymize_video(clip, out, build_anonymizer(config), progress=False)
    return out


def deface(clip: Path, out: Path) -> Path:
    subprocess.run([str(deface_executable()), str(clip), "-o", str(out), "--replacewith", "solid"],
                   check=True, capture_output=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--every", default="1,2", help="yunet finest_every values to run, comma-separated")
    parser.add_argument("--work", default="/tmp/video_faces")
    parser.add_argument("--visible", type=float, default=0.7)
    parser.add_argument("--share", type=float, default=0.9)
    parser.add_argument("--no-deface", action="store_true")
    args = parser.parse_args()
    work = Path(args.work)
    clip = make_clip("crowd", args.frames, work / "clips")
    runs = [(f"realanon, finest_every={e}", ours(clip, work / f"ours_every{e}.mp4", int(e)))
            for e in args.every.split(",")]
    if not args.no_deface:
        runs.append(("deface 1.5.0", deface(clip, work / "deface.mp4")))
    print(f"crowd clip, 1080p, {args.frames} frames; faces at least {args.visible:.0%} visible; "
          f"covered = {args.share:.0%} of the lit inner face blacked out\n")
    print("| tool | " + " | ".join(f"{lo}-{hi} px" for lo, hi in BINS) + " | all |")
    print("|---|" + "---|" * (len(BINS) + 1))
    all_misses = {}
    for name, output in runs:
        counts, all_misses[name] = judge(args.frames, output, args.visible, args.share)
        hit, total = (sum(c[i] for c in counts.values()) for i in (0, 1))
        cells = [f"{c[0]}/{c[1]}" for c in counts.values()]
        print(f"| {name} | " + " | ".join(cells) + f" | {hit}/{total} ({hit / max(total, 1):.3f}) |")
    for name, misses in all_misses.items():
        print(f"\n{name}: {len(misses)} uncovered" + (": " + "; ".join(misses[:30]) if misses else ""))


if __name__ == "__main__":
    main()
