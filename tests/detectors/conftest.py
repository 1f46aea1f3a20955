"""Fixtures for detector tests: real faces from openpeople pasted at known sizes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from realanon.media import openpeople_images

# Face heights (brow-to-chin box, pixels) pasted into the collage.
COLLAGE_FACE_HEIGHTS = (16, 20, 24, 32, 48, 96, 160)


def face_crops(n: int) -> list[tuple[np.ndarray, tuple[float, float, float, float]]]:
    """``n`` studio portraits of different openpeople, each with its face box (mediapipe)."""
    from realanon.detectors.mediapipe_face import MediaPipeFaceDetector

    detector = MediaPipeFaceDetector(min_score=0.5)
    out = []
    for paths in openpeople_images().values():
        portrait = next(p for p in paths if p.name == "studio_portrait.jpg")
        image = cv2.cvtColor(cv2.imread(str(portrait)), cv2.COLOR_BGR2RGB)
        faces = sorted(detector(image), key=lambda d: -d.score)
        if faces:
            out.append((image, faces[0].box_xyxy))
        if len(out) == n:
            break
    detector.close()
    return out


def make_face_collage(
    heights: tuple[int, ...] = COLLAGE_FACE_HEIGHTS, size: tuple[int, int] = (720, 1280)
) -> tuple[np.ndarray, list[tuple[float, float, float, float]]]:
    """Pastes one openpeople head per height, left to right, on a grey noisy background.

    Returns:
        ``(H, W, 3)`` uint8 collage and the true face box (XYXY) of each pasted face.
    """
    rng = np.random.default_rng(0)
    canvas = np.clip(rng.normal(110, 20, (*size, 3)), 0, 255).astype(np.uint8)
    canvas = cv2.GaussianBlur(canvas, (0, 0), 3)
    truths = []
    x = 20
    for (image, box), face_h in zip(face_crops(len(heights)) * 2, heights):
        s = face_h / (box[3] - box[1])
        cx, cy, half = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, 1.2 * (box[3] - box[1])
        head = image[int(max(cy - half, 0)) : int(cy + half), int(max(cx - half, 0)) : int(cx + half)]
        head = cv2.resize(head, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        hh, hw = head.shape[:2]
        y = (size[0] - hh) // 2 + (60 if len(truths) % 2 else -60)
        canvas[y : y + hh, x : x + hw] = head
        ox, oy = x - int(max(cx - half, 0)) * s, y - int(max(cy - half, 0)) * s
        truths.append((box[0] * s + ox, box[1] * s + oy, box[2] * s + ox, box[3] * s + oy))
        x += hw + 40
    return canvas, truths


@pytest.fixture(scope="session")
def face_collage() -> tuple[np.ndarray, list[tuple[float, float, float, float]]]:
    return make_face_collage()
