"""Synthetic identities: weighted blends of two or three donor people, drawn from a seed.

A region's seed alone fixes its preference over blends (a video track keeps its seed, so it
keeps its identity). Donor people who look like anyone in the frame (dlib, :class:`FaceDescriber`)
are left out. Within one batch (one frame) no two regions get the same blend and, while
there are donor people left, no two share their main donor; the region with the smaller seed
keeps its first choice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

# Dirichlet concentration of the main donor and of the others: the main donor usually weighs
# about three quarters (even blends look like an average face, which is closer to everyone).
_MAIN_CONCENTRATION, _OTHER_CONCENTRATION = 10.0, 1.5


@dataclass(frozen=True)
class Identity:
    """A synthetic person: donor people and their weights (main donor first, weights sum to 1).

    ``shape`` is an optional face-shape variation (see :mod:`~realanon.generators.face_variation`).
    """

    persons: tuple[str, ...]
    weights: tuple[float, ...]
    shape: tuple[float, ...] = ()

    @property
    def main(self) -> str:
        """The donor person with the largest weight."""
        return self.persons[0]


def _preferences(seed: int, persons: Sequence[str], max_mix: int) -> tuple[list[str], int, np.ndarray]:
    """A seed's order over donor people, how many it mixes and its weights (largest first)."""
    rng = np.random.default_rng(seed)
    order = [persons[i] for i in rng.permutation(len(persons))]
    count = int(rng.integers(2, max_mix + 1)) if max_mix >= 2 else 1
    count = min(count, len(order))
    alpha = [_MAIN_CONCENTRATION] + [_OTHER_CONCENTRATION] * (count - 1)
    weights = np.sort(rng.dirichlet(alpha))[::-1]
    return order, count, weights


def draw_identity(seed: int, persons: Sequence[str], max_mix: int = 3) -> Identity:
    """The identity a seed draws when nothing else in its frame competes for it.

    Args:
        seed: The region's seed.
        persons: Allowed donor person ids (at least one), in a fixed order.
        max_mix: Donors blended at most (2 or 3 are drawn uniformly; 1 disables blending).
    """
    return assign_identities([seed], persons, max_mix)[0]


def assign_identities(seeds: Sequence[int], persons: Sequence[str], max_mix: int = 3,
                      avoid: Sequence[str] = ()) -> list[Identity]:
    """One identity per region of a batch, no two alike.

    Regions are served in increasing seed order. Each takes, among the pairs (main donor,
    second donor) in its own seed's order, the first whose main donor is used least in the
    batch and whose pair is unused; further donors follow its order.

    Args:
        seeds: Per region seed.
        persons: Allowed donor person ids (at least one).
        max_mix: Donors blended at most per identity.
        avoid: Persons never used (e.g. those who look like someone in the frame), unless that
            would leave none.

    Returns:
        One :class:`Identity` per seed, in the order of ``seeds``.

    Raises:
        ValueError: when ``persons`` is empty.
    """
    if not persons:
        raise ValueError("no donor person is allowed; nothing to swap in")
    persons = sorted(p for p in persons if p not in avoid) or sorted(persons)
    used_main: Counter[str] = Counter()
    used_pairs: set[tuple[str, str]] = set()
    out: dict[int, Identity] = {}
    for index in sorted(range(len(seeds)), key=lambda i: (seeds[i], i)):
        order, count, weights = _preferences(seeds[index], persons, max_mix)
        if count == 1:
            main, second = order[0], ""
        else:
            pairs = [(a, b) for a in order for b in order if a != b]
            fresh = [p for p in pairs if p not in used_pairs] or pairs
            main, second = min(fresh, key=lambda p: used_main[p[0]])  # min keeps the first of ties
        chosen = [main] + ([second] if second else []) + [p for p in order if p not in (main, second)]
        used_main[main] += 1
        used_pairs.add((main, second))
        out[index] = Identity(tuple(chosen[:count]), tuple(float(w) for w in weights[:count]))
    return [out[i] for i in range(len(seeds))]


class FaceDescriber:
    """dlib's 128-d face descriptor (``face_recognition_models``' ResNet, 5-point alignment).

    Used to keep donors away from the people they replace: two faces closer than 0.6 are the
    same person by dlib's rule. Models load on first use.
    """

    def __init__(self) -> None:
        import importlib.util
        from pathlib import Path

        import dlib

        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("face_recognition_models is not installed (pip install face-recognition-models)")
        root = Path(next(iter(spec.submodule_search_locations))) / "models"
        self._shape = dlib.shape_predictor(str(root / "shape_predictor_5_face_landmarks.dat"))
        self._encoder = dlib.face_recognition_model_v1(str(root / "dlib_face_recognition_resnet_model_v1.dat"))
        self._rect = dlib.rectangle

    def describe(self, image_rgb: np.ndarray, box_xyxy: Sequence[float]) -> np.ndarray:
        """``(128,)`` float64 descriptor of the face in ``box_xyxy`` (pixels) of an RGB uint8 image."""
        image, box = _face_at_chip_size(image_rgb, box_xyxy)
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        shape = self._shape(image, self._rect(x1, y1, x2, y2))
        return np.array(self._encoder.compute_face_descriptor(image, shape), dtype=np.float64)


# dlib aligns the face onto a 150-px chip; larger faces are first cut out and scaled down to
# about this height (same descriptor, much less work for the chip extraction).
_DESCRIBE_FACE_PX = 200


def _face_at_chip_size(image_rgb: np.ndarray, box_xyxy: Sequence[float]) -> tuple[np.ndarray, tuple[float, ...]]:
    """The face's surroundings, scaled so the face is at most ``_DESCRIBE_FACE_PX`` high, and its box there."""
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    scale = min(1.0, _DESCRIBE_FACE_PX / max(y2 - y1, 1.0))
    if scale >= 1.0:
        return np.ascontiguousarray(image_rgb), (x1, y1, x2, y2)
    pad = 0.5 * max(x2 - x1, y2 - y1)
    h, w = image_rgb.shape[:2]
    cx1, cy1 = max(int(x1 - pad), 0), max(int(y1 - pad), 0)
    cx2, cy2 = min(int(x2 + pad) + 1, w), min(int(y2 + pad) + 1, h)
    part = cv2.resize(image_rgb[cy1:cy2, cx1:cx2], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    box = ((x1 - cx1) * scale, (y1 - cy1) * scale, (x2 - cx1) * scale, (y2 - cy1) * scale)
    return np.ascontiguousarray(part), box


def too_close(descriptors: Sequence[np.ndarray | None], persons: dict[str, np.ndarray],
              min_distance: float) -> set[str]:
    """Donor persons whose descriptor is within ``min_distance`` of any of ``descriptors``."""
    found = [d for d in descriptors if d is not None]
    return {p for p, ref in persons.items() if any(float(np.linalg.norm(ref - d)) < min_distance for d in found)}
