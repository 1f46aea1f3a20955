"""Where ``coco_person``'s time goes: CPU and wall ms per stage on one 720p frame.

Run (offline, CPU)::

    OMP_NUM_THREADS=1 python scripts/profile_coco_person.py [--runs 3] [--threads 1]

Frames: vtest.avi frame 300 (CCTV walkers) and street film frame 200 (camera on a tram), each
resized to 1280x720. Stages, each timed on its own (median of ``--runs``): the CenterNet
whole-frame pass, each tile pass, MoveNet on the person crops (``refine``), the person masks,
then the whole detector call; "python overhead" is the whole call minus the stages. Also the
whole call in tracked-video mode (``set_tracked(True)``, one tile group per call), averaged over
one full cycle of tile groups. ``--tiles``: the whole box search with square or fitted tiles
(``fit_tiles``). ``--regions``: the body region boxes of the frame's people from their whole-frame
masks, as computed before (``np.nonzero``) and now. ``--spin``: one CenterNet pass at 1 and 2 onnxruntime threads
with idle threads spinning (onnxruntime's default) or sleeping (realanon's). ``--heads``: one
CenterNet pass computing all 80 class heatmaps or only the person's (realanon's). ``--fold``: one
CenterNet pass on each frame's whole-frame canvas with MobileNetV3's hard-swish and hard-sigmoid spelled
out as converted or folded into single operators (realanon's), and the largest difference of their
heatmaps and box sides. ``--tracked``: ``coco_person`` in tracked video over ``--frames`` frames from
frame 200 of each clip (1280x720), with CenterNet's activations as converted or folded, the two
detectors called in turn on each frame so that they share the machine's load: CPU ms per frame, and
CenterNet passes and network pixels per frame. ``--disjoint``: the
disjoint person masks of the frame's people (wall ms, median), next to what copying every mask costs. The machine may be
shared: compare rows of one run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import cv2
import numpy as np

from realanon.detectors.coco_boxes import letterbox, tile_size_for
from realanon.media import read_video_frames, street_film_path, vtest_path
from realanon.registry import DETECTORS
from realanon.structures import Detections


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, float, Any]:
    """Median CPU ms and wall ms of ``fn()`` over ``runs`` calls, and its last result."""
    cpu, wall, out = [], [], None
    for _ in range(runs):
        c0, w0 = time.process_time(), time.perf_counter()
        out = fn()
        cpu.append(1000 * (time.process_time() - c0))
        wall.append(1000 * (time.perf_counter() - w0))
    return statistics.median(cpu), statistics.median(wall), out


def profile(name: str, frame: np.ndarray, runs: int, threads: int) -> list[str]:
    det = DETECTORS.build("coco_person", threads=threads)
    boxes = det.boxes
    regions = [(0, 0, frame.shape[1], frame.shape[0]), *boxes.tile_regions(frame.shape[:2])]
    rows = []
    total_cpu = total_wall = 0.0
    for i, (x1, y1, x2, y2) in enumerate(regions):
        canvas = letterbox(np.ascontiguousarray(frame[y1:y2, x1:x2]), boxes.input_size)[0]
        c, w, _ = timed(lambda canvas=canvas: boxes.model(canvas), runs)
        rows.append((f"centernet {'whole frame' if i == 0 else f'tile {i}'}", c, w))
        total_cpu, total_wall = total_cpu + c, total_wall + w
    people = det.people(boxes(frame))
    dets = Detections(tuple(people), frame.shape[:2])
    refined = dets
    if det.keypoints is not None:
        c, w, refined = timed(lambda: det.keypoints.refine(frame, dets), runs)
        rows.append((f"movenet refine ({sum(p.height >= det.keypoints.min_height for p in people)} crops)", c, w))
        total_cpu, total_wall = total_cpu + c, total_wall + w
    c, w, _ = timed(lambda: det.masks(frame, refined), runs)
    rows.append((f"masks ({len(people)} people)", c, w))
    total_cpu, total_wall = total_cpu + c, total_wall + w
    c, w, _ = timed(lambda: det(frame), runs)
    rows.append(("python overhead (whole call - stages)", c - total_cpu, w - total_wall))
    rows.append(("whole call, photo / untracked (every tile)", c, w))
    det.set_tracked(True)
    cycle = max(1, boxes.spread_groups(frame.shape[:2]))
    det(frame)  # the first tracked call searches everything; the cycle after it is spread
    c, w, _ = timed(lambda: [det(frame) for _ in range(cycle)], runs)
    rows.append((f"whole call, tracked video (mean of {cycle} calls, one tile group each)", c / cycle, w / cycle))
    return [f"| {name} | {label} | {c:.0f} | {w:.0f} |" for label, c, w in rows]


def spin_table(runs: int) -> list[str]:
    """CPU and wall ms of one CenterNet pass at 1 and 2 intra-op threads, idle threads spinning or sleeping."""
    from realanon.detectors.onnx_models import open_session

    x = np.random.default_rng(0).integers(0, 255, (1, 512, 512, 3)).astype(np.float32)
    rows = ["| onnxruntime intra-op threads | idle threads spin | CPU ms | wall ms |", "|---|---|---|---|"]
    for threads, spinning in ((1, False), (2, True), (2, False)):
        session = open_session("centernet", threads=threads, spinning=spinning)
        name = session.get_inputs()[0].name
        session.run(None, {name: x})
        c, w, _ = timed(lambda: session.run(None, {name: x}), runs)  # noqa: B023 - called at once
        rows.append(f"| {threads} | {'yes' if spinning else 'no'} | {c:.0f} | {w:.0f} |")
    return rows


def heads_table(runs: int) -> list[str]:
    """CPU and wall ms of one cut CenterNet pass computing all 80 class heatmaps or only the person's."""
    from realanon.detectors.coco_models import CENTERNET_OUTPUTS, CENTERNET_PERSON_ONLY
    from realanon.detectors.onnx_models import open_session

    x = np.random.default_rng(0).integers(0, 255, (1, 512, 512, 3)).astype(np.float32)
    rows = ["| CenterNet heatmaps computed | CPU ms | wall ms |", "|---|---|---|"]
    for label, first_rows in (("80 classes", None), ("person only (the default)", CENTERNET_PERSON_ONLY)):
        session = open_session("centernet", threads=1, outputs=CENTERNET_OUTPUTS, free_dims=(1, 2),
                               first_rows=first_rows)
        name = session.get_inputs()[0].name
        session.run(None, {name: x})
        c, w, _ = timed(lambda: session.run(None, {name: x}), runs)  # noqa: B023 - called at once
        rows.append(f"| {label} | {c:.1f} | {w:.1f} |")
    return rows


def fold_table(frames: dict[str, np.ndarray], runs: int) -> list[str]:
    """CPU and wall ms of one cut CenterNet pass with the hard activations as converted or folded, and
    the largest absolute difference of the two passes' person heatmaps and box sides on each frame."""
    from realanon.detectors.coco_models import CENTERNET_OUTPUTS, CENTERNET_PERSON_ONLY
    from realanon.detectors.onnx_models import open_session

    sessions = {fold: open_session("centernet", threads=1, outputs=CENTERNET_OUTPUTS, free_dims=(1, 2),
                                   first_rows=CENTERNET_PERSON_ONLY, fold_activations=fold) for fold in (False, True)}
    rows = ["| frame | activations | CPU ms | wall ms | largest heatmap difference | largest box side difference (px) |",
            "|---|---|---|---|---|---|"]
    for name, frame in frames.items():
        x = letterbox(frame, 512)[0][None].astype(np.float32)
        outs = {}
        for fold, session in sessions.items():
            feed = {session.get_inputs()[0].name: x}
            outs[fold] = session.run(None, feed)
            c, w, _ = timed(partial(session.run, None, feed), runs)
            label = "folded (the default)" if fold else "as converted"
            heat, sides = (float(np.abs(a - b).max()) for a, b in zip(outs[fold], outs[False]))
            rows.append(f"| {name} | {label} | {c:.1f} | {w:.1f} | {heat:.1e} | {sides:.1e} |")
    return rows


class _CountedPasses:
    """Wraps a box network, counting its passes and input pixels."""

    def __init__(self, model: Any) -> None:
        self.model, self.name, self.input_size, self.any_size = model, model.name, model.input_size, True
        self.passes = self.pixels = 0

    def __call__(self, canvas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.passes += 1
        self.pixels += canvas.shape[0] * canvas.shape[1]
        return self.model(canvas)  # type: ignore[no-any-return]


def tracked_table(clips: dict[str, list[np.ndarray]]) -> list[str]:
    """Tracked ``coco_person`` on each clip: CPU ms, CenterNet passes and network Mpx per frame, activations
    as converted or folded."""
    rows = ["| clip | CenterNet activations | CPU ms/frame | CenterNet passes/frame | network Mpx/frame | people/frame |",
            "|---|---|---|---|---|---|"]
    for name, frames in clips.items():
        detectors = {}
        for fold in (False, True):
            label = "folded (the default)" if fold else "as converted (until session 8)"
            det = DETECTORS.build("coco_person", threads=1, box_options={"fold_activations": fold})
            det.boxes.model = _CountedPasses(det.boxes.model)
            det.set_tracked(True)
            detectors[label] = det
        cpu = dict.fromkeys(detectors, 0.0)
        people = dict.fromkeys(detectors, 0)
        for frame in frames:
            for label, det in detectors.items():
                c, _, found = timed(partial(det, frame), 1)
                cpu[label] += c
                people[label] += len(found)
        for label, det in detectors.items():
            n, counted = len(frames), det.boxes.model
            rows.append(f"| {name} | {label} | {cpu[label] / n:.0f} | {counted.passes / n:.2f} | "
                        f"{counted.pixels / n / 1e6:.2f} | {people[label] / n:.1f} |")
    return rows


def tiles_table(frames: dict[str, np.ndarray], runs: int) -> list[str]:
    """CPU and wall ms of the box search of a 720p frame (whole pass + every tile), square or fitted tiles."""
    rows = ["| frame | tiles | passes | network input pixels | CPU ms | wall ms |", "|---|---|---|---|---|---|"]
    for name, frame in frames.items():
        for fit in (False, True):
            boxes = DETECTORS.build("centernet_person", threads=1, fit_tiles=fit)
            tiles = boxes.tile_regions(frame.shape[:2])
            scale = boxes.input_size / tile_size_for(boxes.input_size, boxes.min_height_at(frame.shape[:2]))
            pixels = boxes.input_size ** 2 + sum(
                (-(-round((y2 - y1) * scale) // 32) * 32) * (-(-round((x2 - x1) * scale) // 32) * 32) if fit
                else boxes.input_size ** 2 for x1, y1, x2, y2 in tiles)
            boxes(frame)
            c, w, _ = timed(lambda boxes=boxes, frame=frame: boxes(frame), runs)
            label = "fitted (fit_tiles=true)" if fit else "square (the default)"
            rows.append(f"| {name} | {label} | {1 + len(tiles)} | {pixels / 1e6:.2f} M | {c:.0f} | {w:.0f} |")
    return rows


def regions_table(frames: dict[str, np.ndarray], runs: int) -> list[str]:
    """CPU ms of the body region boxes of a frame's people: np.nonzero over each whole-frame mask (before) or not."""
    from realanon.config import RegionOptions
    from realanon.regions import body_region_box

    def nonzero_box(mask: np.ndarray) -> tuple[float, ...]:
        ys, xs = np.nonzero(mask)
        return (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))

    rows = ["| frame | people | np.nonzero boxes (before), CPU ms | body_region_box (now), CPU ms |", "|---|---|---|---|"]
    det, opts = DETECTORS.build("coco_person", threads=1), RegionOptions()
    for name, frame in frames.items():
        people = [d for d in det(frame) if d.mask is not None and d.mask.any()]
        before, _, _ = timed(lambda: [nonzero_box(d.mask) for d in people], runs)  # noqa: B023 - called at once
        now, _, _ = timed(lambda: [body_region_box(d, opts) for d in people], runs)  # noqa: B023 - called at once
        rows.append(f"| {name} | {len(people)} | {before:.1f} | {now:.1f} |")
    return rows


def disjoint_table(frames: dict[str, np.ndarray], runs: int) -> list[str]:
    """Wall ms of ``disjoint_masks`` over a frame's people (their own masks, as the pipeline makes them), and
    of copying every one of those masks, which it did before it copied only the masks that lose pixels."""
    from realanon.detectors.person_masks import disjoint_masks

    rows = ["| frame | people | disjoint_masks (now), ms | copying every mask (before, on top), ms |", "|---|---|---|---|"]
    det = DETECTORS.build("coco_person", threads=1)
    for name, frame in frames.items():
        people = det.people(det.boxes(frame))
        own = det.masks.add_masks(frame, det.keypoints.refine(frame, Detections(tuple(people), frame.shape[:2])))
        _, now, _ = timed(lambda: disjoint_masks(own), runs)  # noqa: B023 - called at once
        _, copies, _ = timed(lambda: [d.mask.copy() for d in own if d.mask is not None], runs)  # noqa: B023
        rows.append(f"| {name} | {len(own)} | {now:.1f} | {copies:.1f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument("--spin", action="store_true", help="only: one CenterNet pass, threads spinning or not")
    parser.add_argument("--heads", action="store_true", help="only: one CenterNet pass, 80 heatmaps or the person's")
    parser.add_argument("--tracked", action="store_true", help="only: tracked coco_person, activations folded or not")
    parser.add_argument("--frames", type=int, default=30, help="frames per clip of --tracked")
    parser.add_argument("--fold", action="store_true", help="only: one CenterNet pass, activations folded or not")
    parser.add_argument("--tiles", action="store_true", help="only: the box search, square or fitted tiles")
    parser.add_argument("--regions", action="store_true", help="only: body region boxes from the people's masks")
    parser.add_argument("--disjoint", action="store_true", help="only: disjoint person masks, and full mask copies")
    args = parser.parse_args()
    if args.heads:
        print("\n".join(heads_table(max(args.runs, 10))))
        return
    if args.spin:
        print("\n".join(spin_table(max(args.runs, 5))))
        return
    if args.tracked:
        clips = {name: [cv2.resize(f, (1280, 720), interpolation=cv2.INTER_CUBIC)
                        for f in read_video_frames(path, list(range(200, 200 + args.frames)))]
                 for name, path in (("vtest 720p", vtest_path()), ("street film 720p", street_film_path()))}
        print("\n".join(tracked_table(clips)))
        return
    frames = {"vtest 300": read_video_frames(vtest_path(), [300])[0],
              "street film 200": read_video_frames(street_film_path(), [200])[0]}
    frames = {k: cv2.resize(f, (1280, 720), interpolation=cv2.INTER_LINEAR) for k, f in frames.items()}
    if args.disjoint:
        print("\n".join(disjoint_table(frames, max(args.runs, 9))))
        return
    if args.fold:
        print("\n".join(fold_table(frames, max(args.runs, 10))))
        return
    if args.tiles or args.regions:
        print("\n".join(tiles_table(frames, args.runs) if args.tiles else regions_table(frames, args.runs)))
        return
    print(f"coco_person stages at 1280x720, onnxruntime threads={args.threads}, median of {args.runs}\n")
    print("| frame | stage | CPU ms | wall ms |\n|---|---|---|---|")
    for name, frame in frames.items():
        print("\n".join(profile(name, frame, args.runs, args.threads)), flush=True)


if __name__ == "__main__":
    main()
