"""The demo: anonymizes scikit-image's astronaut and a short clip made from it. Needs no files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from realanon.config import AnonymizerConfig
from realanon.io_images import write_image_atomic
from realanon.media import astronaut
from realanon.registry import GENERATORS

# The most realistic generator that ships usable weights, in order of preference.
REALISTIC_PREFERENCE = ("donor", "gan")
CLIP_FRAMES = 48
CLIP_SIZE = (360, 480)  # (height, width)


def realistic_methods() -> list[str]:
    """The realistic generators of :data:`REALISTIC_PREFERENCE` that are registered, best first."""
    names = set(GENERATORS.names())
    return [m for m in REALISTIC_PREFERENCE if m in names]


def make_clip(path: Path, image: np.ndarray, frames: int = CLIP_FRAMES, size: tuple[int, int] = CLIP_SIZE) -> None:
    """Writes an H.264 clip that slowly pans and zooms over ``image`` (25 fps)."""
    import av
    import cv2

    h, w = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(frames):
            t = i / max(frames - 1, 1)
            zoom = 1.0 + 0.3 * t
            cw, ch = int(image.shape[1] / zoom), int(image.shape[0] / zoom * h / w * image.shape[1] / image.shape[0])
            x0 = int((image.shape[1] - cw) * (0.5 + 0.4 * (t - 0.5)))
            y0 = max(0, min(image.shape[0] - ch, int(image.shape[0] * 0.05)))
            view = cv2.resize(image[y0 : y0 + ch, x0 : x0 + cw], (w, h), interpolation=cv2.INTER_AREA)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(view, dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _thumb(image: np.ndarray, height: int = 256) -> np.ndarray:
    import cv2

    scale = height / image.shape[0]
    return cv2.resize(image, (round(image.shape[1] * scale), height), interpolation=cv2.INTER_AREA)


def _label(image: np.ndarray, text: str) -> np.ndarray:
    import cv2

    out = image.copy()
    cv2.rectangle(out, (0, 0), (out.shape[1], 28), (0, 0, 0), -1)
    cv2.putText(out, text, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def run_demo(output_dir: Path) -> Iterator[str]:
    """Runs the demo, yielding one line per file written."""
    from realanon.jobs import Job, run_jobs
    from realanon.pipeline import build_anonymizer

    output_dir.mkdir(parents=True, exist_ok=True)
    image = astronaut()
    write_image_atomic(output_dir / "astronaut.png", image)
    realistic = realistic_methods()
    methods = ["blur", "pixelate", "mask", *realistic]
    panels = [_label(_thumb(image), "original")]
    for method in methods:
        anonymizer = build_anonymizer(AnonymizerConfig(method=method))
        result = anonymizer(image)
        write_image_atomic(output_dir / f"astronaut_{method}.png", result.image)
        panels.append(_label(_thumb(result.image), method))
        yield f"{output_dir / f'astronaut_{method}.png'}: {len(result.detections)} face(s) replaced with {method}"
    write_image_atomic(output_dir / "side_by_side.png", np.concatenate(panels, axis=1))
    yield f"{output_dir / 'side_by_side.png'}: original and each method side by side"

    clip = output_dir / "clip.mp4"
    make_clip(clip, image)
    method = realistic[0] if realistic else "blur"
    anonymizer = build_anonymizer(AnonymizerConfig(method=method))
    job = Job(clip, output_dir / "clip_anonymized.mp4", "video")
    errors = run_jobs([job], anonymizer, progress=False)
    if errors:
        raise RuntimeError(f"demo clip failed: {errors[0]}")
    yield f"{job.output}: {CLIP_FRAMES}-frame clip anonymized with {method}"
