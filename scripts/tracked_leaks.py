"""Leaks of a tracked video run against a per-frame truth, shared by ``scripts/measure_body_spread.py`` and
``scripts/measure_spread_leaks.py`` (run as ``python scripts/NAME.py``, so this sibling module imports).

The leak rule is that of ``scripts/benchmark.py leaks``: a true detection leaks in a frame when less than half
of its box lies in the replaced mask rebuilt from the run's audit.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import av
import numpy as np
from detector_timing import TimedDetector

from realanon.config import load_preset
from realanon.pipeline import build_anonymizer
from realanon.structures import Detection


def load_benchmark() -> ModuleType:
    """scripts/benchmark.py as a module (for its leak rule: ``union_masks`` and ``covered_fraction``)."""
    spec = importlib.util.spec_from_file_location("benchmark", Path(__file__).with_name("benchmark.py"))
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def write_clip(frames: list[np.ndarray], path: Path) -> list[np.ndarray]:
    """Encodes RGB ``frames`` at their own size, 25 fps, libx264 crf 12 (almost lossless) to ``path``.

    Returns:
        The frames as decoded back from ``path`` (what the pipeline sees).
    """
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt, stream.options = w, h, "yuv420p", {"crf": "12"}
        for rgb in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode(None))
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def run_variant(clip: Path, preset: str, options: dict[str, Any], work: Path,
                bench: ModuleType) -> tuple[dict[int, np.ndarray], float]:
    """Runs the whole tracked pipeline (as the CLI does) on ``clip`` with an audit.

    Args:
        clip: The video.
        preset: The preset, e.g. ``"face_blur"``.
        options: Detector options laid over the preset's.
        work: A folder for the output video.
        bench: ``load_benchmark()``.

    Returns:
        The replaced mask per frame index, and the detector's mean CPU ms per frame in that run.
    """
    from realanon.audit import AuditLog
    from realanon.video import anonymize_video

    config = load_preset(preset)
    config = config.replace(detector_options={**config.detector_options, **options})
    anonymizer = build_anonymizer(config)
    timed = TimedDetector(anonymizer.detector)
    anonymizer.detector = timed  # type: ignore[assignment]
    audit = AuditLog()
    anonymize_video(clip, work / f"out_{clip.stem}.mp4", anonymizer, audit=audit, track=True, progress=False)
    masks = bench.union_masks(audit.to_json()["files"][0]["frames"], config.regions)
    return masks, timed.ms_per_call()


def leak_row(name: str, label: str, truth: list[list[Detection]], masks: dict[int, np.ndarray], ms: float,
             bench: ModuleType) -> str:
    """One markdown table row: clip, variant, truth count, leaked count, frames with truth, leaked frames, ms."""
    leaked = [sum(bench.covered_fraction(np.asarray(d.box_xyxy), masks[i]) < 0.5 for d in dets)
              for i, dets in enumerate(truth)]
    return (f"| {name} | {label} | {sum(map(len, truth))} | {sum(leaked)} | {sum(map(bool, truth))} | "
            f"{sum(n > 0 for n in leaked)} | {ms:.0f} |")
