"""Video benchmarks: end-to-end speed and peak memory, and leaked frames with and without tracking.

Commands (each prints a Markdown table; numbers go to docs/benchmarks.md):

    python scripts/benchmark.py speed [--frames 60] [--source large-face,crowd,empty-street] [--methods blur]
        Runs each method end to end (decode -> detect -> generate -> encode, the defaults of
        `realanon anonymize CLIP --method M`) in a fresh subprocess, then the `deface` 1.5.0 CLI
        (installed on first use into a venv of its own, see bench_clips.py) on the same clip with
        the same thread budget, and reports fps of the whole process, CPU time, peak RSS and the
        ratios to deface; each clip again at 3x the length, to show memory is constant in video
        length. Sources: the clips of bench_clips.py (one large face, a crowd of 12-40 px faces, a
        face-free street; 1080p), or `film` / `astronaut` at --sizes (the older clips).
    python scripts/benchmark.py stages [--frames 60] [--source large-face]
        Milliseconds per 1080p frame of each stage (decode, YUV -> RGB, detect, track, regions, generate,
        paste, RGB -> YUV, encode), one after another: where the time goes, for a regression check.
    python scripts/benchmark.py batching [--size 1080p] [--batches 1,4,8] [--device cpu]
        Milliseconds per frame of CenterFace detection and of `gan` generation (with compositing)
        when 1, 4 or 8 frames go through one call: what batching across frames buys on a device.
    python scripts/benchmark.py body [--frames 60] [--sizes 720p] [--detectors coco_person,mediapipe_body,cli,...]
        `--target body --method mask` (preset body_mask) end to end with each body detector, in a
        fresh subprocess each, on vtest.avi and the street film upscaled: fps of the processing and
        of the whole process (start-up and model loading included), CPU and peak RSS. `cli`: the
        command itself, `realanon anonymize CLIP --target body --method mask` (its defaults).
    python scripts/benchmark.py leaks [--max-frames 300] [--threshold 0.5]
        On vtest.avi and the street film: anonymizes faces with and without tracking and counts the
        faces an independent, more expensive detector (CenterFace, deface's model, on the ORIGINAL
        frames) finds that are not covered by the replaced union mask.

Every run uses the threads given by --threads (default 2) for OpenMP/OpenCV and for deface.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}


def renumber(frame: Any, index: int, rate: Fraction) -> Any:
    """Gives a decoded frame the timestamp of frame ``index`` at constant ``rate``."""
    frame.pts, frame.time_base = index, 1 / Fraction(rate)
    return frame


def make_clip(src: Path, dst: Path, size: tuple[int, int], frames: int) -> Path:
    """Upscales the first ``frames`` frames of ``src`` to ``size`` (H.264, same frame rate)."""
    import av

    if dst.exists():
        return dst
    tmp = dst.with_name(f".{dst.name}.part.mp4")
    with av.open(str(src)) as inp, av.open(str(tmp), "w") as out:
        vin = inp.streams.video[0]
        stream = out.add_stream("libx264", rate=vin.average_rate)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "18"}
        for i, frame in enumerate(inp.decode(vin)):
            if i >= frames:
                break
            big = frame.reformat(width=size[0], height=size[1], format="yuv420p", interpolation="BICUBIC")
            out.mux(stream.encode(renumber(big, i, vin.average_rate)))
        out.mux(stream.encode(None))
    os.replace(tmp, dst)
    return dst


def run_one(clip: Path, method: str, device: str, out_dir: Path) -> dict[str, object]:
    """In this process: anonymizes ``clip`` with face ``method`` and reports fps and peak RSS."""
    from realanon.config import AnonymizerConfig
    from realanon.pipeline import Anonymizer, build_anonymizer
    from realanon.structures import Detections
    from realanon.video import anonymize_video

    if method == "io-only":  # decode -> RGB -> encode with nothing detected: the floor of the pipeline
        from realanon.generators.mask import MaskOut

        anonymizer = Anonymizer(lambda im: Detections.empty(im.shape[:2]), MaskOut())
    else:  # what `realanon anonymize CLIP --method METHOD --device DEVICE` builds
        config = AnonymizerConfig(method=method, device=device)
        if device.startswith("cuda"):
            config = config.replace(dtype="float16")
        anonymizer = build_anonymizer(config)
    before = resource.getrusage(resource.RUSAGE_SELF)
    result = anonymize_video(clip, out_dir / f"{clip.stem}_{method}.mp4", anonymizer, progress=False)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"frames": result.frames, "fps": result.fps, "peak_rss_mib": after.ru_maxrss / 1024,
            "cpu_ms_per_frame": 1000 * cpu / result.frames, "regions": result.regions}


def tree_rss_mib(root: int) -> float:
    """Resident memory of process ``root`` and all its descendants, in MiB (read from /proc)."""
    parents: dict[int, int] = {}
    rss: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    tree, frontier = {root}, [root]
    while frontier:
        frontier = [p for p, parent in parents.items() if parent in frontier and p not in tree]
        tree.update(frontier)
    return sum(rss.get(p, 0.0) for p in tree)


def measured_run(args: list[str], threads: int, timeout: float) -> tuple[str, float, float, float, float]:
    """Runs a command in a fresh process.

    Returns:
        stdout, wall seconds, peak RSS in MiB and CPU seconds (user + system) of the process and the
        children it waited for, and the peak summed RSS of the process and its descendants (sampled
        every 50 ms): deface writes video through an ffmpeg subprocess, whose memory ru_maxrss leaves out.
    """
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENCV_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads), "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    tree_peak = 0.0
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.DEVNULL, cwd=REPO)
        deadline = start + timeout
        while True:
            tree_peak = max(tree_peak, tree_rss_mib(proc.pid))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])}... exited {proc.returncode}: {text[-300:]}")
    wall = time.perf_counter() - start
    return text, wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, tree_peak


def deface_run(clip: Path, out_dir: Path, threads: int, timeout: float) -> dict[str, object]:
    """The deface 1.5.0 CLI (CenterFace + blur) from its own venv on the same clip; fps from its wall time."""
    import av
    from bench_clips import deface_executable

    with av.open(str(clip)) as c:
        frames = sum(1 for _ in c.decode(video=0))
    deface = deface_executable()
    _, wall, rss, cpu, tree = measured_run([str(deface), str(clip), "-o", str(out_dir / f"{clip.stem}_deface.mp4")],
                                           threads, timeout)
    return {"frames": frames, "fps": frames / wall, "fps_whole": frames / wall, "peak_rss_mib": rss,
            "tree_rss_mib": tree, "cpu_ms_per_frame": 1000 * cpu / frames}


def cmd_speed(args: argparse.Namespace) -> None:
    from bench_clips import CLIPS, deface_versions
    from bench_clips import make_clip as make_hard_clip

    from realanon.media import street_film_path

    clips_dir = Path(args.work) / "clips"
    clips_dir.mkdir(parents=True, exist_ok=True)
    out_dir = Path(args.work) / "out"
    out_dir.mkdir(exist_ok=True)

    def source_clip(source: str, name: str, frames: int) -> Path:
        if source in CLIPS:
            return make_hard_clip(source, frames, clips_dir)
        path = clips_dir / f"{source}_{name}_{frames}.mp4"
        if source == "film":
            return make_clip(street_film_path(), path, SIZES[name], frames)
        if not path.exists():  # one large face in every frame: what realistic generators cost
            from realanon.demo import make_clip as pan_clip
            from realanon.media import astronaut

            w, h = SIZES[name]
            pan_clip(path, astronaut(), frames, (h, w))
        return path

    def ours(clip: Path, method: str, device: str) -> dict[str, object]:
        cmd = [sys.executable, __file__, "one", str(clip), method, device, str(out_dir)]
        text, wall, rss, cpu, tree = measured_run(cmd, args.threads, args.timeout)
        record = json.loads(text.strip().splitlines()[-1])
        # Of the whole subprocess, as the OS measured it (start-up and model loading included), as for deface.
        record.update(peak_rss_mib=rss, tree_rss_mib=tree, fps_whole=record["frames"] / wall,
                      cpu_ms_per_frame=1000 * cpu / record["frames"])
        return record

    methods = args.methods.split(",")
    rows: list[tuple[str, int, str, dict[str, object], dict[str, object] | None]] = []
    print(SPEED_HEADER, flush=True)
    for source in args.source.split(","):
        for name in ["1080p"] if source in CLIPS else args.sizes.split(","):
            for frames in (args.frames, 3 * args.frames):
                clip = source_clip(source, name, frames)
                runs = [(f"{m} ({d})", ours(clip, m, d)) for d in args.device.split(",")
                        for m in (["io-only", *methods] if frames == args.frames else methods[:1])]
                reference = None if args.no_deface else deface_run(clip, out_dir, args.threads, args.timeout)
                for method, record in runs + ([("deface 1.5.0 (CLI)", reference)] if reference else []):
                    rows.append((f"{source} {name}", frames, method, record, reference))  # type: ignore[arg-type]
                    print(_speed_row(*rows[-1]), flush=True)
    print("\n" + _environment(args.threads))
    print(f"deface: {deface_versions() if not args.no_deface else 'not run'}\n")
    print(SPEED_HEADER)
    print("\n".join(_speed_row(*r) for r in rows))


SPEED_HEADER = ("| clip | frames | method | regions | fps (whole process) | fps (processing) | CPU ms/frame | "
                "peak RSS (MiB) | peak RSS, process tree (MiB) | fps / deface's | deface's CPU / ours | "
                "tree RSS / deface's |\n|---|---|---|---|---|---|---|---|---|---|---|---|")


def _speed_row(clip: str, frames: int, method: str, rec: dict[str, object], ref: dict[str, object] | None) -> str:
    known = ref is not None
    ref = ref or {}

    def ratio(a: object, b: object) -> str:
        return f"{float(a) / float(b):.2f}" if known else "-"  # type: ignore[arg-type]

    return (f"| {clip} | {frames} | {method} | {rec.get('regions', '-')} | {float(rec['fps_whole']):.2f} | "  # type: ignore[arg-type]
            f"{float(rec['fps']):.2f} | {float(rec['cpu_ms_per_frame']):.0f} | {float(rec['peak_rss_mib']):.0f} | "  # type: ignore[arg-type]
            f"{float(rec['tree_rss_mib']):.0f} | {ratio(rec['fps_whole'], ref.get('fps_whole'))} | "  # type: ignore[arg-type]
            f"{ratio(ref.get('cpu_ms_per_frame'), rec['cpu_ms_per_frame'])} | "
            f"{ratio(rec['tree_rss_mib'], ref.get('tree_rss_mib'))} |")


def _environment(threads: int) -> str:
    import av
    import cv2

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
            f"load average at the end {load}, "
            f"threads budget {threads}; python {platform.python_version()}, PyAV {av.__version__}, "
            f"OpenCV {cv2.__version__}")


def cmd_stages(args: argparse.Namespace) -> None:
    """Milliseconds per 1080p frame of each stage, run one after another in one thread."""
    import av
    import cv2
    from bench_clips import CLIPS
    from bench_clips import make_clip as make_hard_clip

    from realanon.composite import paste_regions
    from realanon.config import AnonymizerConfig
    from realanon.interfaces import TrackedSearch
    from realanon.media import street_film_path
    from realanon.pipeline import DEFAULT_DETECTORS, build_anonymizer
    from realanon.regions import build_regions
    from realanon.tracking import IoUTracker

    clips_dir = Path(args.work) / "clips"
    if args.source in CLIPS:
        clip = make_hard_clip(args.source, args.frames, clips_dir)
    else:
        clip = make_clip(street_film_path(), clips_dir / f"film_1080p_{args.frames}.mp4", SIZES["1080p"], args.frames)
    from realanon.native_logs import set_process_env

    set_process_env()  # as `realanon anonymize` does before loading any model
    cv2.setNumThreads(args.threads)  # with --threads 1, OpenCV's work is in the timed thread
    anonymizer = build_anonymizer(AnonymizerConfig())  # `realanon anonymize CLIP`: face blur
    if isinstance(anonymizer.detector, TrackedSearch):  # as in a tracked video run (the default)
        anonymizer.detector.set_tracked(True)
    tracker = IoUTracker()  # no look-ahead here: its few back-filled regions are left out
    times: dict[str, float] = {}
    cpu_times: dict[str, float] = {}
    regions_total = 0

    def timed(name: str, fn: Any, *a: Any) -> Any:
        start, cpu_start = time.perf_counter(), time.thread_time()
        value = fn(*a)
        times[name] = times.get(name, 0.0) + time.perf_counter() - start
        cpu_times[name] = cpu_times.get(name, 0.0) + time.thread_time() - cpu_start
        return value

    def generate(rgb: np.ndarray, regions: list[Any], index: int) -> list[np.ndarray]:
        return anonymizer.generate(anonymizer.make_batch(rgb, regions, index))

    with av.open(str(clip)) as inp, av.open(str(Path(args.work) / "stages.mp4"), "w") as out:
        stream = out.add_stream("libx264", rate=inp.streams.video[0].average_rate)
        stream.width, stream.height, stream.pix_fmt = *SIZES["1080p"], "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "20"}
        decoded = inp.decode(video=0)
        for i in range(args.frames):
            frame = timed("decode", next, decoded, None)
            if frame is None:
                break
            rgb = timed("yuv -> rgb", lambda f: f.to_ndarray(format="rgb24"), frame)
            dets = timed(f"detect ({DEFAULT_DETECTORS['face']})", lambda im, k: anonymizer.detect(im, frame_index=k), rgb, i)
            dets = timed("track", lambda d: tracker.update(d).detections, dets)
            regions = timed("regions (masks, feathering)", build_regions, dets, anonymizer.region_options)
            regions_total += len(regions)
            crops = timed("generate (crop + blur)", generate, rgb, regions, i)
            image = timed("paste", paste_regions, rgb, regions, crops)
            yuv = timed("rgb -> yuv (OpenCV, as in realanon.video)", lambda im: av.VideoFrame.from_ndarray(
                cv2.cvtColor(im, cv2.COLOR_RGB2YUV_I420), format="yuv420p"), image)
            yuv.pts = i
            timed("encode (libx264 veryfast)", lambda f: out.mux(stream.encode(f)), yuv)
        timed("encode (libx264 veryfast)", lambda: out.mux(stream.encode(None)))
    frames = i + (frame is not None)
    print(f"{args.source} 1080p, {frames} frames, {regions_total} regions; one stage at a time "
          f"(codecs may use their own threads); load average {os.getloadavg()[0]:.1f}\n")
    print("| stage | ms per frame (wall) | CPU ms per frame (this thread) |\n|---|---|---|")
    for name, seconds in times.items():
        print(f"| {name} | {1000 * seconds / frames:.1f} | {1000 * cpu_times[name] / frames:.1f} |")
    print(f"| total | {1000 * sum(times.values()) / frames:.1f} | {1000 * sum(cpu_times.values()) / frames:.1f} |")
    print("\nCPU ms count only the thread running the stage: codec threads (decode, libx264) and "
          "OpenCV's worker threads are left out, so on a loaded machine read the CPU column for the "
          "stages' own cost and the wall column for what a frame waited.")


def covered_fraction(box: np.ndarray, mask: np.ndarray) -> float:
    """Fraction of the pixels of ``box`` (xyxy, clipped to the frame) inside ``mask``."""
    h, w = mask.shape
    x1, y1 = max(0, int(box[0])), max(0, int(box[1]))
    x2, y2 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    if x2 <= x1 or y2 <= y1:
        return 1.0
    return float(mask[y1:y2, x1:x2].mean())


def union_masks(audit_frames: list[dict[str, object]], options: object) -> dict[int, np.ndarray]:
    """Frame index -> the replaced union mask, rebuilt from an audit's detections."""
    from realanon.audit import detection_from_json
    from realanon.regions import build_regions, union_mask
    from realanon.structures import Detections

    masks = {}
    for fr in audit_frames:
        size = tuple(fr["image_size"])  # type: ignore[arg-type]
        dets = Detections(tuple(detection_from_json(r, "audit") for r in fr["regions"]), size)  # type: ignore[union-attr, arg-type]
        masks[int(fr["frame"])] = union_mask(build_regions(dets, options), size)  # type: ignore[arg-type, call-overload]
    return masks


def count_leaks(video: Path, max_frames: int, threshold: float, work: Path,
                preset: str = "face_blur") -> dict[str, dict[str, int]]:
    """Leaked faces and frames of realanon face blur with and without tracking, judged by CenterFace."""
    import av

    from realanon.audit import AuditLog
    from realanon.config import load_preset
    from realanon.evaluation.privacy import independent_face_detector
    from realanon.pipeline import build_anonymizer
    from realanon.video import anonymize_video

    clip = work / f"{video.stem}_{max_frames}.mp4"
    if not clip.exists():  # the first max_frames frames, losslessly enough (crf 12) to judge the same pixels
        with av.open(str(video)) as inp, av.open(str(clip), "w") as out:
            vin = inp.streams.video[0]
            s = out.add_stream("libx264", rate=vin.average_rate)
            s.width, s.height, s.pix_fmt, s.options = vin.width, vin.height, "yuv420p", {"crf": "12"}
            for i, frame in enumerate(inp.decode(vin)):
                if i >= max_frames:
                    break
                out.mux(s.encode(renumber(frame.reformat(format="yuv420p"), i, vin.average_rate)))
            out.mux(s.encode(None))
    config = load_preset(preset)
    masks = {}
    for track in (False, True):
        audit = AuditLog()
        anonymize_video(clip, work / f"{clip.stem}_{preset}_track{track}.mp4", build_anonymizer(config), audit=audit,
                        track=track, progress=False)
        masks[track] = union_masks(audit.to_json()["files"][0]["frames"], config.regions)
    centerface = independent_face_detector()
    stats = {k: {"faces": 0, "leaked_faces": 0, "frames_with_faces": 0, "leaked_frames": 0}
             for k in ("no tracking", "tracking")}
    with av.open(str(clip)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            rgb = frame.to_ndarray(format="rgb24")
            dets = [d for d in centerface(rgb) if d.score >= threshold]
            for track, key in ((False, "no tracking"), (True, "tracking")):
                leaked = sum(covered_fraction(np.asarray(d.box_xyxy), masks[track][i]) < 0.5 for d in dets)
                stats[key]["faces"] += len(dets)
                stats[key]["leaked_faces"] += int(leaked)
                stats[key]["frames_with_faces"] += int(len(dets) > 0)
                stats[key]["leaked_frames"] += int(leaked > 0)
    return stats


def cmd_leaks(args: argparse.Namespace) -> None:
    from realanon.media import street_film_path, vtest_path

    work = Path(args.work) / "leaks"
    work.mkdir(parents=True, exist_ok=True)
    print(f"CenterFace threshold {args.threshold}; a face leaks when < 50% of its box is inside the replaced "
          f"mask; first {args.max_frames} frames; preset {args.preset}\n")
    print("| video | tracking | CenterFace faces | leaked faces | frames with faces | leaked frames |\n"
          "|---|---|---|---|---|---|")
    for name, path in (("vtest.avi", vtest_path()), ("1906 street film", street_film_path())):
        for key, s in count_leaks(path, args.max_frames, args.threshold, work, args.preset).items():
            print(f"| {name} | {key} | {s['faces']} | {s['leaked_faces']} | {s['frames_with_faces']} | "
                  f"{s['leaked_frames']} |", flush=True)


def cmd_batching(args: argparse.Namespace) -> None:
    """Per-frame cost of detection and generation with several frames per call."""
    import cv2
    import torch

    from realanon.config import AnonymizerConfig
    from realanon.detectors.centerface import CenterFaceDetector
    from realanon.media import astronaut
    from realanon.pipeline import build_anonymizer
    from realanon.video import anonymize_frames

    cv2.setNumThreads(args.threads)
    torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batches.split(",")]
    base = cv2.resize(astronaut(), SIZES[args.size])
    frames = [np.ascontiguousarray(np.roll(base, 40 * i, axis=1)) for i in range(max(batches))]

    def best_ms_per_frame(fn: Any, n: int) -> float:
        fn()  # warm-up: loads networks for this shape
        return min(_seconds(fn) for _ in range(args.repeats)) * 1000 / n

    dtype = "float16" if args.device.startswith("cuda") else "float32"
    anonymizer = build_anonymizer(AnonymizerConfig(method="gan", device=args.device, dtype=dtype), detector=None)
    detections = [CenterFaceDetector()(f) for f in frames]
    print(f"{args.size}, {sum(len(d) for d in detections)} faces in {len(frames)} frames, "
          f"{args.threads} threads, best of {args.repeats}\n")
    print("| stage | device | frames per call | ms per frame |\n|---|---|---|---|")
    for n in batches:
        detector = CenterFaceDetector(batch_size=n)
        ms = best_ms_per_frame(lambda: detector.detect_batch(frames[:n]), n)  # noqa: B023 - called at once
        print(f"| detect (centerface, cv2.dnn) | cpu | {n} | {ms:.1f} |", flush=True)
    for n in batches:
        ms = best_ms_per_frame(lambda: anonymize_frames(anonymizer, frames[:n], detections[:n], list(range(n))), n)  # noqa: B023
        print(f"| generate + paste (gan, {dtype}) | {args.device} | {n} | {ms:.1f} |", flush=True)
    print(f"\n{_environment(args.threads)}")


# Body detectors compared by `body`: label -> (registered name, detector options).
BODY_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "coco_person": ("coco_person", {}),  # defaults: spread=6 with follow (since 2026-12-02, late), video_detail_height=96
    # CenterNet's hard activations as converted, not folded: the default until session 8.
    "coco_person-unfolded": ("coco_person", {"box_options": {"fold_activations": False}}),
    # Every tile on every frame, no following, no carried masks: the default 2026-12-02 until follow.
    "coco_person-spread1": ("coco_person", {"box_options": {"spread": 1}, "reuse_details": False}),
    "coco_person-crops256": ("coco_person", {"box_options": {"follow_min_input": 256}}),  # cheaper, leaks more
    "coco_person-spread4": ("coco_person", {"box_options": {"spread": 4, "follow": False}}),  # the default before 2026-12-02
    "coco_person-fit": ("coco_person", {"box_options": {"fit_tiles": True}}),  # fitted tiles, same scale
    # Box stage only (box masks, no keypoints): the floor of the default search's cost.
    "coco_person-boxes": ("coco_person", {"keypoints": "none", "masks": "box"}),
    "coco_person-fit-boxes": ("coco_person", {"box_options": {"fit_tiles": True}, "keypoints": "none", "masks": "box"}),
    "coco_person-h48": ("coco_person", {"box_options": {"min_height": 48}}),
    "coco_person-h0": ("coco_person", {"box_options": {"min_height": 0}}),
    "coco_person-spread6": ("coco_person", {"box_options": {"spread": 6, "follow": False}}),
    "coco_person-exhaustive": ("coco_person", {"box_options": {"spread": 1}, "video_detail_height": 0}),
    "mediapipe_body": ("mediapipe_body", {}),
}


def body_record(clip: Path, variant: str, out_dir: Path, frames: int, threads: int, timeout: float) -> dict[str, object]:
    """One measured body run in a fresh process: ``variant`` of :data:`BODY_VARIANTS` through
    :func:`run_one_body`, or ``cli``, the `realanon anonymize` command; fps and CPU of the whole process too."""
    if variant == "cli":
        cmd = [str(Path(sys.executable).with_name("realanon")), "anonymize", str(clip), "--target", "body",
               "--method", "mask", "--no-progress", "-o", str(out_dir / f"{clip.stem}_body_cli.mp4")]
        _, wall, rss, cpu, _ = measured_run(cmd, threads, timeout)
        record: dict[str, object] = {"frames": frames, "regions": "-", "fps": "-", "cpu_ms_per_frame": "-"}
    else:
        cmd = [sys.executable, __file__, "one-body", str(clip), variant, str(out_dir)]
        text, wall, rss, cpu, _ = measured_run(cmd, threads, timeout)
        record = json.loads(text.strip().splitlines()[-1])
    record.update(peak_rss_mib=rss, fps_whole=frames / wall, cpu_ms_whole=1000 * cpu / frames)
    return record


def run_one_body(clip: Path, variant: str, out_dir: Path) -> dict[str, object]:
    """In this process: ``--target body --method mask`` (preset body_mask) with a body detector; fps and peak RSS."""
    from realanon.config import load_preset
    from realanon.pipeline import build_anonymizer
    from realanon.video import anonymize_video

    name, options = BODY_VARIANTS[variant]
    anonymizer = build_anonymizer(load_preset("body_mask").replace(detector=name, detector_options=options))
    before = resource.getrusage(resource.RUSAGE_SELF)
    result = anonymize_video(clip, out_dir / f"{clip.stem}_body_{variant}.mp4", anonymizer, progress=False)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"frames": result.frames, "fps": result.fps, "peak_rss_mib": after.ru_maxrss / 1024,
            "cpu_ms_per_frame": 1000 * cpu / result.frames, "regions": result.regions}


def cmd_body(args: argparse.Namespace) -> None:
    """Whole-body masking throughput of each body detector on the same clips, one fresh process each."""
    from realanon.media import street_film_path, vtest_path

    clips_dir = Path(args.work) / "clips"
    clips_dir.mkdir(parents=True, exist_ok=True)
    out_dir = Path(args.work) / "out"
    out_dir.mkdir(exist_ok=True)
    sources = {"vtest": vtest_path(), "film": street_film_path()}
    rows = []
    for source in args.sources.split(","):
        for name in args.sizes.split(","):
            clip = make_clip(sources[source], clips_dir / f"{source}_{name}_{args.frames}.mp4", SIZES[name], args.frames)
            for detector in args.detectors.split(","):
                record = body_record(clip, detector, out_dir, args.frames, args.threads, args.timeout)
                rows.append((f"{source} {name}", f"body mask, {detector}", args.frames, record))
                print(_body_row(*rows[-1]), flush=True)
    print("\n" + _environment(args.threads))
    print("| clip | method | frames | regions | fps (processing) | fps (whole process) | CPU ms/frame (processing) | "
          "CPU ms/frame (whole process) | peak RSS (MiB) |\n|---|---|---|---|---|---|---|---|---|")
    print("\n".join(_body_row(*r) for r in rows))


def _body_row(clip: str, method: str, frames: int, rec: dict[str, object]) -> str:
    def num(key: str, digits: int) -> str:
        return "-" if rec[key] == "-" else f"{float(rec[key]):.{digits}f}"  # type: ignore[arg-type]

    return (f"| {clip} | {method} | {frames} | {rec['regions']} | {num('fps', 2)} | {num('fps_whole', 2)} | "
            f"{num('cpu_ms_per_frame', 0)} | {num('cpu_ms_whole', 0)} | {num('peak_rss_mib', 0)} |")


def _seconds(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "realanon_bench"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600)
    sub = parser.add_subparsers(dest="command", required=True)
    speed = sub.add_parser("speed")
    speed.add_argument("--frames", type=int, default=60, help="frames of the short clips (the long ones: 3x)")
    speed.add_argument("--sizes", default="720p,1080p", help="sizes of the film and astronaut clips")
    speed.add_argument("--methods", default="blur,pixelate,mask")
    speed.add_argument("--device", default="cpu", help="comma-separated, e.g. cpu,cuda")
    speed.add_argument("--no-deface", action="store_true")
    speed.add_argument("--source", default="large-face,crowd,empty-street",
                       help="comma-separated: large-face, crowd, empty-street (1080p, bench_clips.py); film (the "
                            "1906 street film upscaled) or astronaut (a pan over scikit-image's astronaut)")
    stages = sub.add_parser("stages")
    stages.add_argument("--frames", type=int, default=60)
    stages.add_argument("--source", default="large-face", help="large-face, crowd, empty-street or film")
    batching = sub.add_parser("batching")
    batching.add_argument("--size", choices=tuple(SIZES), default="1080p")
    batching.add_argument("--batches", default="1,4,8")
    batching.add_argument("--repeats", type=int, default=3)
    batching.add_argument("--device", default="cpu")
    leaks = sub.add_parser("leaks")
    leaks.add_argument("--max-frames", type=int, default=300)
    leaks.add_argument("--threshold", type=float, default=0.5, help="CenterFace score threshold")
    leaks.add_argument("--preset", default="face_blur", help="realanon preset under test")
    body = sub.add_parser("body")
    body.add_argument("--frames", type=int, default=60)
    body.add_argument("--sizes", default="720p")
    body.add_argument("--sources", default="vtest,film", help="vtest (CCTV walkers) and/or film, upscaled")
    body.add_argument("--detectors", default="coco_person,coco_person-h48,mediapipe_body",
                      help=f"labels of BODY_VARIANTS: {', '.join(BODY_VARIANTS)} (-h48: box_options.min_height=48)")
    one_body = sub.add_parser("one-body")  # internal: one measured body run, in its own process
    one_body.add_argument("clip")
    one_body.add_argument("variant")
    one_body.add_argument("out_dir")
    one = sub.add_parser("one")  # internal: one measured run, in its own process
    one.add_argument("clip")
    one.add_argument("method")
    one.add_argument("device")
    one.add_argument("out_dir")
    args = parser.parse_args(argv)
    if args.command == "one":
        from realanon.native_logs import set_process_env

        set_process_env()  # as `realanon anonymize` does before loading any model
        print(json.dumps(run_one(Path(args.clip), args.method, args.device, Path(args.out_dir))))
    elif args.command == "speed":
        cmd_speed(args)
    elif args.command == "stages":
        cmd_stages(args)
    elif args.command == "batching":
        cmd_batching(args)
    elif args.command == "body":
        cmd_body(args)
    elif args.command == "one-body":
        print(json.dumps(run_one_body(Path(args.clip), args.variant, Path(args.out_dir))))
    else:
        cmd_leaks(args)


if __name__ == "__main__":
    main()
