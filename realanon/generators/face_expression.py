"""Facial expression as a mesh offset from a resting face, so donor views can be matched on it.

Head pose, mouth and eye opening alone do not tell a smile from a scared grimace: both part
the lips a little. Here a face's expression is where its brows, eyes and lips sit relative to a
resting face of the same shape, after the head's position, size and turn are taken out (a
rigid 3-D Procrustes fit of the whole 478-point mesh). A donor view's resting face is its own
person's most typical view (the medoid of that person's views), so the offset is the
expression alone; a target's person has no other views, so its reference is the mean of the
bank's resting faces, which leaves the target's own shape in its offset (on the bank's views,
about 0.02-0.045 between two people's resting faces against 0.09-0.14 for a smile). A view
whose offset is close to the target's shows the target's expression; a neutral target gets
neutral views.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from realanon.generators.face_warp import mesh_groups


@lru_cache(maxsize=1)
def expression_points() -> np.ndarray:
    """Mesh indices that carry expression: brows, eyes and lips."""
    groups = mesh_groups()
    return np.concatenate([groups["brows"], groups["eyes"], groups["lips"]])


def normalised(landmarks: np.ndarray) -> np.ndarray:
    """``(478, 3)`` float64 mesh centred on its mean, scaled to unit RMS radius."""
    points = landmarks[:, :3].astype(np.float64)
    points -= points.mean(axis=0)
    return points / max(float(np.sqrt((points**2).sum(axis=1).mean())), 1e-9)


def aligned(shape: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``shape`` rotated onto ``reference`` (both :func:`normalised`; Kabsch, no reflection).

    ``shape`` may be a stack ``(K, 478, 3)``, each turned onto ``reference`` on its own.
    """
    u, _, vt = np.linalg.svd(np.swapaxes(shape, -1, -2) @ reference)
    flip = np.ones(u.shape[:-2] + (3,))
    flip[..., 2] = np.sign(np.linalg.det(u @ vt))
    return np.asarray(shape @ ((u * flip[..., None, :]) @ vt))


def offset(landmarks: np.ndarray, resting: np.ndarray) -> np.ndarray:
    """``(P, 3)`` expression offset of a mesh from a :func:`normalised` resting face (units: RMS radius)."""
    return _offsets(normalised(landmarks), resting)


def _offsets(shapes: np.ndarray, resting: np.ndarray) -> np.ndarray:
    points = expression_points()
    return np.asarray(aligned(shapes, resting)[..., points, :] - resting[points])


def distance(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    """RMS over points of the difference of two offsets (``(..., P, 3)`` each, broadcast)."""
    return np.asarray(np.sqrt(((a - b) ** 2).sum(axis=-1).mean(axis=-1)))


def resting_faces(landmarks: np.ndarray, persons: np.ndarray) -> dict[str, np.ndarray]:
    """Each person's resting face: the :func:`normalised` view nearest in expression to all of theirs (medoid)."""
    out = {}
    for person in np.unique(persons):
        views = np.stack([normalised(landmarks[i]) for i in np.flatnonzero(persons == person)])
        spread = [float(np.median(distance(_offsets(views, r), 0.0))) for r in views]
        out[str(person)] = views[int(np.argmin(spread))]
    return out


def mean_resting(resting: dict[str, np.ndarray]) -> np.ndarray:
    """The mean of resting faces (each turned onto the first), :func:`normalised`: a target's reference."""
    faces = list(resting.values())
    return normalised(np.mean([aligned(f, faces[0]) for f in faces], axis=0))
