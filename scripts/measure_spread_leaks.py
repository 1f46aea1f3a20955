"""Leaks of the spread small-face search in tracked video, against an exhaustive search of every frame.

Run (offline, CPU; about 10 minutes on 2 shared cores)::

    OMP_NUM_THREADS=1 python scripts/measure_spread_leaks.py [--frames 60]

Clips: the first ``--frames`` frames from frame 200 of vtest.avi (walkers, still camera) and of
the 1906 street film (camera on a tram), both upscaled to 1920x1080 and encoded almost
losslessly (crf 12). Truth: YuNet searching every frame whole at full and half resolution,
with no memory (``reuse_unchanged=False``, as for photos), scores >= the preset's threshold.
Each variant runs the whole tracked pipeline (``realanon.video.anonymize_video``, preset
``face_blur``, tracking on, as the CLI runs it) with an audit; a truth face leaks in a frame
when less than half of its box lies in the replaced mask rebuilt from the audit (the rule of
``scripts/benchmark.py leaks``, whose helpers are reused). Also printed: the detector's CPU ms
per frame inside that run (``time.process_time`` around each detector call).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
from tracked_leaks import leak_row, load_benchmark, run_variant, write_clip

from realanon.config import load_preset
from realanon.media import read_video_frames, street_film_path, vtest_path
from realanon.registry import DETECTORS

VARIANTS = {
    # The default: every frame searched whole, the full and half resolution on alternate frames.
    "reuse_unchanged=false, finest_every=2 (the default)": {"reuse_unchanged": False, "finest_every": 2},
    # Every scale of every frame, as the truth is searched.
    "reuse_unchanged=false, finest_every=1": {"reuse_unchanged": False, "finest_every": 1},
    # The default before 2026-12-02: only the changed cells, on every frame.
    "reuse_unchanged=true, spread=1": {"reuse_unchanged": True, "spread": 1},
    # `spread` acts only with reuse_unchanged=true (without it every frame is searched whole).
    "reuse_unchanged=true, spread=2": {"reuse_unchanged": True, "spread": 2},
    "reuse_unchanged=true, spread=4": {"reuse_unchanged": True, "spread": 4},
    "reuse_unchanged=true, spread=8": {"reuse_unchanged": True, "spread": 8},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--only", default="", help="run only the variants whose label contains this")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    bench = load_benchmark()
    threshold = load_preset("face_blur").threshold
    print(f"First {args.frames} frames from frame 200, upscaled to 1920x1080; truth: exhaustive YuNet per frame "
          f"(score >= {threshold}); a face leaks when < 50% of its box is in the replaced mask; detector CPU ms "
          "per frame inside the tracked run (shared machine: compare within a clip).\n")
    print("| clip | variant | truth faces | leaked faces | frames with faces | leaked frames | detector ms/frame |\n"
          "|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, path in (("vtest.avi (still camera)", vtest_path()), ("1906 street film (moving)", street_film_path())):
            frames = read_video_frames(path, list(range(200, 200 + args.frames)))
            clip = work / f"{path.stem}.mp4"
            seen = write_clip([cv2.resize(f, (1920, 1080), interpolation=cv2.INTER_CUBIC) for f in frames], clip)
            exhaustive = DETECTORS.build("yunet", reuse_unchanged=False)
            truth = [[d for d in exhaustive(rgb) if d.score >= threshold] for rgb in seen]
            for label, options in ((k, v) for k, v in VARIANTS.items() if args.only in k):
                masks, ms = run_variant(clip, "face_blur", options, work, bench)
                print(leak_row(name, label, truth, masks, ms, bench), flush=True)


if __name__ == "__main__":
    main()
