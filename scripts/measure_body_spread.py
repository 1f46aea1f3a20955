"""People left uncovered by the spread tile search of ``coco_person`` in tracked video, against an exhaustive search.

Run (offline, CPU; about 10 minutes on 2 shared cores)::

    OMP_NUM_THREADS=1 python scripts/measure_body_spread.py [--frames 60] [--clips vtest,film] [--only LABEL]

Clips: ``--frames`` frames from frame 200 of vtest.avi at its own 768x576 (walkers, still
camera; ``vtest720``: upscaled to 1280x720, as ``scripts/benchmark.py body`` runs it) and of the
1906 street film upscaled to 1280x720 (camera on a tram), encoded almost
losslessly (crf 12). Truth: ``coco_person``'s box stage (CenterNet, whole frame plus every tile,
square tiles, or fitted ones with ``--truth fitted``, no memory) on every frame, people scoring >= the ``body_mask`` preset's threshold. Each variant
runs the whole tracked pipeline (:func:`realanon.video.anonymize_video`, preset ``body_mask``,
tracking on, as the CLI runs it) with an audit; a true person leaks in a frame when less than
half of their box lies in the replaced mask rebuilt from the audit (the rule of
``scripts/benchmark.py leaks``). Also printed: the detector's CPU ms per frame inside that run.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import cv2
from tracked_leaks import leak_row, load_benchmark, run_variant, write_clip

from realanon.config import load_preset
from realanon.media import read_video_frames, street_film_path, vtest_path
from realanon.registry import DETECTORS

# label -> coco_person options. "exhaustive": every tile and full detail on every tracked frame.
VARIANTS: dict[str, dict[str, Any]] = {
    "exhaustive (spread=1, video_detail_height=0)": {"box_options": {"spread": 1, "pieces": False, "fit_tiles": False},
                                                     "video_detail_height": 0},
    "tiles, spread=1, video_detail_height=96 (the default 2026-12-02 until follow)": {
        "box_options": {"spread": 1, "pieces": False, "fit_tiles": False}, "video_detail_height": 96},
    "fitted tiles, spread=1, video_detail_height=96": {
        "box_options": {"spread": 1, "pieces": False, "fit_tiles": True}, "video_detail_height": 96},
    "pieces, spread=1, video_detail_height=96": {"box_options": {"spread": 1, "pieces": True},
                                                "video_detail_height": 96},
    "spread=4, video_detail_height=96 (the default before 2026-12-02)": {
        "box_options": {"spread": 4, "pieces": False, "follow": False}, "video_detail_height": 96},
    "spread=2": {"box_options": {"spread": 2, "pieces": False, "follow": False}},
    "spread=6": {"box_options": {"spread": 6, "pieces": False, "follow": False}},
    # Tiles spread over frames, and crops around the people found before on every frame (follow).
    "follow, spread=6 (default since 2026-12-02, late)": {"box_options": {"spread": 6, "pieces": False, "follow": True}},
    "follow, spread=6, follow_min_input=256": {
        "box_options": {"spread": 6, "pieces": False, "follow": True, "follow_min_input": 256}},
    "follow, spread=3": {"box_options": {"spread": 3, "pieces": False, "follow": True}},
    "follow, spread=6, follow_min_score=0.25 (people only)": {
        "box_options": {"spread": 6, "pieces": False, "follow": True, "follow_min_score": 0.25}},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--clips", default="vtest,film", help="vtest, vtest720 (upscaled to 1280x720) and/or film")
    parser.add_argument("--only", default="", help="run only the variants whose label contains this "
                        "(several: separated by |)")
    parser.add_argument("--truth", default="square", choices=("square", "fitted"),
                        help="tiles of the exhaustive truth search: square (the default) or fitted (fit_tiles=true)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    bench = load_benchmark()
    threshold = load_preset("body_mask").threshold or 0.0
    print(f"{args.frames} frames from frame 200; truth: exhaustive centernet_person per frame, {args.truth} tiles "
          f"(score >= {threshold}); "
          "a person leaks when < 50% of their box is in the replaced mask; detector CPU ms per frame inside the "
          "tracked run (shared machine: compare within a clip).\n")
    print("| clip | variant | truth people | leaked people | frames with people | leaked frames | detector CPU ms/frame |\n"
          "|---|---|---|---|---|---|---|")
    clips = [(name, path, size) for key, name, path, size in (
        ("vtest", "vtest.avi 768x576 (still camera)", vtest_path(), None),
        ("vtest720", "vtest.avi 1280x720 (still camera, upscaled)", vtest_path(), (1280, 720)),
        ("film", "street film 1280x720 (moving)", street_film_path(), (1280, 720))) if key in args.clips.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, path, size in clips:
            frames = read_video_frames(path, list(range(200, 200 + args.frames)))
            if size is not None:
                frames = [cv2.resize(f, size, interpolation=cv2.INTER_CUBIC) for f in frames]
            clip = work / f"{path.stem}.mp4"
            exhaustive = DETECTORS.build("centernet_person", pieces=False, fit_tiles=args.truth == "fitted")
            truth = [[d for d in exhaustive(rgb) if d.score >= threshold] for rgb in write_clip(frames, clip)]
            for label, options in VARIANTS.items():
                if not any(part in label for part in args.only.split("|")):
                    continue
                masks, ms = run_variant(clip, "body_mask", options, work, bench)
                print(leak_row(name, label, truth, masks, ms, bench), flush=True)


if __name__ == "__main__":
    main()
