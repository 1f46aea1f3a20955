"""Seeded face-shape variation: eyes, nose, mouth, jaw and chin moved a little, per identity.

Blends of the bank's ten people alone give few faces that dlib tells apart (the blend of a
main donor with a little of two others is still mostly that donor). Moving the face's parts
relative to each other changes what dlib sees much more than the texture does, so each
synthetic identity also carries a small symmetric shape change, drawn from its seed. The
change is defined in the face's own frame (unit = face height, x along the eye line), so it
follows the head's roll and size.
"""

from __future__ import annotations

import numpy as np

from realanon.generators.face_inner import face_height
from realanon.generators.face_warp import mesh_groups

# Parameters, in face heights: eye spread, eye height, nose length, mouth height, mouth
# width, jaw width, chin height.
SHAPE_PARAMS = 7
# Standard deviation of each parameter and the clip (in standard deviations).
SHAPE_SIGMA, SHAPE_CLIP = 0.035, 2.0
# Radius of each part's influence, in face heights.
_RADIUS = 0.16
# Sideways moves fade to nothing towards the midline over this width (face heights), so points
# on either side of the nose bridge or lips never pass each other (that folds the warp into a tear).
_MIDLINE = 0.1
_NOSE_TIP, _CHIN = 1, 152


def draw_shape(rng: np.random.Generator, strength: float = 1.0) -> tuple[float, ...]:
    """``SHAPE_PARAMS`` seeded shape parameters (face heights), scaled by ``strength``."""
    values = np.clip(rng.standard_normal(SHAPE_PARAMS), -SHAPE_CLIP, SHAPE_CLIP) * SHAPE_SIGMA * strength
    return tuple(float(v) for v in values)


def _frame(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Origin (nose tip), unit x (along the eyes), unit y (down the face) and face height."""
    pts = landmarks[:, :2].astype(np.float64)
    eyes = pts[mesh_groups()["eyes"]]
    centre = eyes.mean(axis=0)
    right, left = eyes[eyes[:, 0] < centre[0]].mean(axis=0), eyes[eyes[:, 0] >= centre[0]].mean(axis=0)
    x = left - right
    x /= max(float(np.linalg.norm(x)), 1e-6)
    y = np.array([-x[1], x[0]])
    if float((pts[_CHIN] - centre) @ y) < 0:
        y = -y
    return pts[_NOSE_TIP], x, y, face_height(landmarks)


def vary_shape(landmarks: np.ndarray, shape: tuple[float, ...]) -> np.ndarray:
    """``landmarks`` with the parts moved by ``shape`` (see :func:`draw_shape`); zeros change nothing.

    Returns:
        ``(478, 3)`` float32 landmarks.
    """
    out = landmarks.astype(np.float32).copy()
    if not any(shape):
        return out
    origin, ux, uy, height = _frame(landmarks)
    local = (landmarks[:, :2] - origin) @ np.stack([ux, uy], axis=1) / height  # (N, 2) in face heights
    groups = mesh_groups()
    eye_y = float(local[groups["eyes"], 1].mean())
    lips = local[groups["lips"]].mean(axis=0)
    chin = local[_CHIN]
    spread, eye_h, nose, mouth_h, mouth_w, jaw, chin_h = shape
    side = np.clip(local[:, 0] / _MIDLINE, -1.0, 1.0)

    def near(cx: float, cy: float) -> np.ndarray:
        d2 = (np.abs(local[:, 0]) - cx) ** 2 + (local[:, 1] - cy) ** 2
        return np.exp(-d2 / (2 * _RADIUS**2))

    eye_x = float(np.abs(local[groups["eyes"], 0]).mean())
    shift = np.zeros_like(local)
    w_eye = near(eye_x, eye_y)
    shift[:, 0] += spread * side * w_eye
    shift[:, 1] += eye_h * w_eye
    shift[:, 1] += nose * near(0.0, 0.0) * np.clip((local[:, 1] - eye_y) / _MIDLINE, 0.0, 1.0)
    w_mouth = near(0.0, float(lips[1])) + near(abs(float(lips[0])) + 0.08, float(lips[1]))
    shift[:, 1] += mouth_h * np.minimum(w_mouth, 1.0)
    shift[:, 0] += mouth_w * side * near(0.09, float(lips[1]))
    lower = np.clip((local[:, 1] - 0.0) / max(float(chin[1]), 1e-3), 0.0, 1.0)
    shift[:, 0] += jaw * side * lower * np.clip(np.abs(local[:, 0]) / 0.4, 0.0, 1.0)
    shift[:, 1] += chin_h * near(0.0, float(chin[1]))
    moved = (local + shift) * height
    out[:, :2] = origin + moved[:, :1] * ux + moved[:, 1:] * uy
    return out
