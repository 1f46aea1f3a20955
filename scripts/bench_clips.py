"""Benchmark clips that do not flatter, built from real media, and deface 1.5.0 in a venv of its own.

Clips (1920x1080 H.264 unless told, 25 fps, made once and cached under the work directory):

* ``large-face``: an openpeople studio portrait (a synthetic person) scaled so the face is
  ``LARGE_FACE_PX`` px high, in every frame, drifting and zooming a little (a close-up, a
  dash-cam passenger);
* ``crowd``: ``CROWD_FACES`` openpeople heads with faces 12-40 px high, composited on the
  face-free street (below), each walking across it at its own speed;
* ``empty-street``: the temporal median of vtest.avi (the CCTV street with its walkers
  removed), upscaled to 1080p, the camera panning slowly: nothing to find.

``deface_executable()`` installs ``deface==1.5.0`` on first use into its own venv
(``~/.cache/realanon/deface-venv``, or ``$REALANON_DEFACE_VENV``), apart from realanon's
environment, whose single OpenCV must not be replaced by deface's ``opencv-python``.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

FRAME_WH = (1920, 1080)
FPS = 25
LARGE_FACE_PX = 730
CROWD_FACES = 40
CROWD_FACE_PX = (12, 40)
DEFACE_REQUIREMENT = "deface==1.5.0"
Box = tuple[float, float, float, float]


def deface_venv() -> Path:
    """Where deface's own venv lives."""
    default = Path.home() / ".cache" / "realanon" / "deface-venv"
    return Path(os.environ.get("REALANON_DEFACE_VENV", default))


def deface_executable() -> Path:
    """The ``deface`` CLI of its own venv, made with ``pip install deface==1.5.0`` on first use."""
    venv = deface_venv()
    exe = venv / "bin" / "deface"
    if not exe.exists():
        print(f"installing {DEFACE_REQUIREMENT} into {venv} (first use)", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", DEFACE_REQUIREMENT], check=True)
    return exe


def deface_versions() -> str:
    """deface's and its OpenCV's versions, as installed in its venv."""
    code = ("import importlib.metadata as m, cv2; "
            "print(f\"deface {m.version('deface')}, its OpenCV {cv2.__version__}, onnxruntime: \" + "
            "('yes' if __import__('importlib').util.find_spec('onnxruntime') else 'no'))")
    out = subprocess.run([str(deface_venv() / "bin" / "python"), "-c", code], capture_output=True, text=True)
    return out.stdout.strip() or f"unknown ({out.stderr.strip()[-200:]})"


def write_clip(path: Path, frames: Iterator[np.ndarray]) -> Path:
    """Encodes RGB frames to H.264 (CRF 18) at ``FPS``; written to a temporary name, then renamed."""
    import av

    tmp = path.with_name(f".{path.name}.part.mp4")
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = FRAME_WH[0], FRAME_WH[1], "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "18"}
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format="yuv420p")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    os.replace(tmp, path)
    return path


def face_box(image: np.ndarray) -> Box:
    """The best-scoring face of an RGB image (CenterFace on a 640-px copy), in image pixels."""
    from realanon.detectors.centerface import CenterFaceDetector

    scale = 640 / max(image.shape[:2])
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    best = max(CenterFaceDetector(min_score=0.5)(small), key=lambda d: d.score)
    return tuple(v / scale for v in best.box_xyxy)  # type: ignore[return-value]


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def large_face_frames(count: int) -> Iterator[np.ndarray]:
    """An openpeople portrait, face ``LARGE_FACE_PX`` high, drifting +-24 px and zooming +-3 %."""
    from realanon.media import openpeople_images

    portrait = read_rgb(sorted(openpeople_images()["P003"])[-2])  # studio_portrait.jpg
    x1, y1, x2, y2 = face_box(portrait)
    base = LARGE_FACE_PX / (y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    for i in range(count):
        t = 2 * math.pi * i / 90
        s = base * (1 + 0.03 * math.sin(t))
        dx, dy = 24 * math.sin(0.7 * t), 12 * math.cos(t)
        to_frame = np.float32([[s, 0, FRAME_WH[0] / 2 + dx - s * cx], [0, s, FRAME_WH[1] / 2 + dy - s * cy]])
        yield cv2.warpAffine(portrait, to_frame, FRAME_WH, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def street_plate(scale: float = 1.0) -> np.ndarray:
    """vtest.avi's temporal median (its walkers removed), cropped to 16:9, ``scale`` x 1080p; RGB."""
    from realanon.media import read_video_frames, vtest_path

    frames = read_video_frames(vtest_path(), list(range(0, 795, 15)))
    median = np.median(np.stack(frames), axis=0).astype(np.uint8)
    h, w = median.shape[:2]
    crop_h = w * FRAME_WH[1] // FRAME_WH[0]
    top = (h - crop_h) // 2
    size = (round(FRAME_WH[0] * scale), round(FRAME_WH[1] * scale))
    return cv2.resize(median[top : top + crop_h], size, interpolation=cv2.INTER_CUBIC)


def empty_street_frames(count: int) -> Iterator[np.ndarray]:
    """The face-free street, the camera panning 1 px per frame across a 1.1x plate (and back)."""
    plate = street_plate(1.1)
    span = plate.shape[1] - FRAME_WH[0]
    for i in range(count):
        x = i % (2 * span) if (i // span) % 2 == 0 else span - i % span
        yield plate[: FRAME_WH[1], x : x + FRAME_WH[0]].copy()


def _heads() -> list[tuple[np.ndarray, np.ndarray, Box]]:
    """Head patches of every openpeople person (portrait and selfie): RGB, soft alpha, face box in the patch."""
    from realanon.media import openpeople_images

    heads = []
    for _, paths in sorted(openpeople_images().items()):
        for path in sorted(paths):
            if path.name not in ("studio_portrait.jpg", "amateur_selfie.jpg"):
                continue
            image = read_rgb(path)
            x1, y1, x2, y2 = face_box(image)
            side = 1.6 * (y2 - y1)
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            box = [int(max(0, v)) for v in (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)]
            patch = image[box[1] : box[3], box[0] : box[2]]
            ph, pw = patch.shape[:2]
            alpha = np.zeros((ph, pw), np.float32)
            cv2.ellipse(alpha, (int(cx - box[0]), int(cy - box[1])), (int(0.42 * pw), int(0.47 * ph)), 0, 0, 360, 1, -1)
            face = (x1 - box[0], y1 - box[1], x2 - box[0], y2 - box[1])
            heads.append((patch, cv2.GaussianBlur(alpha, (0, 0), 0.04 * ph), face))
    return heads


def crowd_walk(count: int, seed: int = 0) -> Iterator[tuple[np.ndarray, list[tuple[Box, float]]]]:
    """The crowd clip's frames, each with its faces: ``(box_xyxy, visible)``, where ``visible`` is
    the share of the face box not hidden by the heads drawn over it (walkers cross each other)."""
    rng = np.random.default_rng(seed)
    plate, heads = street_plate(), _heads()
    walkers = []
    for k in range(CROWD_FACES):
        patch, alpha, (fx1, fy1, fx2, fy2) = heads[k % len(heads)]
        s = rng.uniform(*CROWD_FACE_PX) / (fy2 - fy1)
        small = cv2.resize(patch, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        a = cv2.resize(alpha, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_AREA)[..., None]
        y = rng.uniform(0.25, 0.9) * (FRAME_WH[1] - small.shape[0])
        face = (fx1 * s, fy1 * s, fx2 * s, fy2 * s)
        walkers.append((small, a, face, rng.uniform(0, FRAME_WH[0]), y, rng.choice([-1, 1]) * rng.uniform(1, 4)))
    for i in range(count):
        frame = plate.copy()
        owner = np.full(frame.shape[:2], -1, dtype=np.int32)  # which walker's head is on top, per pixel
        boxes = []
        for k, (small, a, face, x0, y, vx) in enumerate(walkers):
            h, w = small.shape[:2]
            x = int((x0 + vx * i) % (FRAME_WH[0] - w))
            y0 = int(y + 2 * math.sin(i / 3 + x0))  # a walker's bob
            roi = frame[y0 : y0 + h, x : x + w].astype(np.float32)
            frame[y0 : y0 + h, x : x + w] = np.rint(a * small + (1 - a) * roi).astype(np.uint8)
            owner[y0 : y0 + h, x : x + w][a[..., 0] > 0.5] = k
            boxes.append((face[0] + x, face[1] + y0, face[2] + x, face[3] + y0))
        faces = []
        for k, (x1, y1, x2, y2) in enumerate(boxes):
            inside = owner[int(y1) : int(np.ceil(y2)), int(x1) : int(np.ceil(x2))]
            faces.append(((x1, y1, x2, y2), float((inside == k).mean()) if inside.size else 0.0))
        yield frame, faces


def crowd_frames(count: int, seed: int = 0) -> Iterator[np.ndarray]:
    """``CROWD_FACES`` heads with 12-40 px faces walking across the face-free street."""
    for frame, _ in crowd_walk(count, seed):
        yield frame


CLIPS: dict[str, Callable[[int], Iterator[np.ndarray]]] = {
    "large-face": large_face_frames,
    "crowd": crowd_frames,
    "empty-street": empty_street_frames,
}


def make_clip(name: str, frames: int, clips_dir: Path) -> Path:
    """The cached clip ``name`` with ``frames`` frames (see :data:`CLIPS`)."""
    path = clips_dir / f"{name}_1080p_{frames}.mp4"
    if not path.exists():
        clips_dir.mkdir(parents=True, exist_ok=True)
        write_clip(path, CLIPS[name](frames))
    return path


if __name__ == "__main__":  # python scripts/bench_clips.py DIR [FRAMES]: writes the three clips and JPEG stills
    out_dir = Path(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    for clip_name, make in CLIPS.items():
        print(make_clip(clip_name, n, out_dir))
        still = next(iter(make(1)))
        cv2.imwrite(str(out_dir / f"{clip_name}.jpg"), cv2.cvtColor(still, cv2.COLOR_RGB2BGR))
