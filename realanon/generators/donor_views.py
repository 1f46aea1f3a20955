"""The donor bank's views as the ``donor`` generator uses them: decoded once, ranked per target.

For each donor person of an identity, the view closest to the target in head pose, skin tone,
mouth and eye opening and expression is used (:func:`~realanon.generators.donor_bank.rank_donors`;
expression: :mod:`~realanon.generators.face_expression`).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from realanon.generators import face_expression
from realanon.generators.donor_bank import DonorBank, rank_donors
from realanon.generators.face_identity import Identity
from realanon.generators.face_inner import eyes_open
from realanon.generators.face_render import DonorSet
from realanon.generators.face_warp import head_pose, mean_skin_lab, mouth_open, skin_mask


class DonorViews:
    """A loaded bank, its decoded crops (decoded on first use) and the choice of views.

    Args:
        bank: The donor bank.
    """

    def __init__(self, bank: DonorBank) -> None:
        self.bank = bank
        self.decoded: dict[int, np.ndarray] = {}  # read-only crops; the whole bank is about 28 MB decoded

    def image(self, index: int) -> np.ndarray:
        """Donor ``index``'s ``(S, S, 3)`` uint8 RGB crop, decoded once."""
        if index not in self.decoded:
            image = self.bank.image(index)
            image.flags.writeable = False
            self.decoded[index] = image
        return self.decoded[index]

    @cached_property
    def all_persons(self) -> tuple[str, ...]:
        """Every person id of the bank, sorted."""
        return tuple(str(p) for p in np.unique(self.bank.person))

    @cached_property
    def eye_opening(self) -> np.ndarray:
        """``(N,)`` eye opening of every donor view (see :func:`face_inner.eyes_open`)."""
        return np.array([eyes_open(lm) for lm in self.bank.landmarks], dtype=np.float32)

    @cached_property
    def resting(self) -> dict[str, np.ndarray]:
        """Each donor person's resting face (see :func:`face_expression.resting_faces`)."""
        return face_expression.resting_faces(self.bank.landmarks, self.bank.person)

    @cached_property
    def expression(self) -> np.ndarray:
        """``(N, P, 3)`` expression offset of every donor view from its person's resting face."""
        return np.stack([face_expression.offset(lm, self.resting[str(p)])
                         for lm, p in zip(self.bank.landmarks, self.bank.person)])

    @cached_property
    def target_resting(self) -> np.ndarray:
        """The reference a target's expression is measured from: the mean resting face."""
        return face_expression.mean_resting(self.resting)

    def person_of(self, index: int) -> str:
        """Person id of donor ``index``."""
        return str(self.bank.person[index])

    def features(self, crop: np.ndarray | None, landmarks: np.ndarray | None) -> dict[str, Any]:
        """What views are matched on: head pose, skin colour, mouth and eye opening, expression (empty: none)."""
        if landmarks is None or crop is None:
            return {}
        return {"pose": head_pose(landmarks), "skin_lab": mean_skin_lab(crop, skin_mask(landmarks, crop.shape[:2])),
                "mouth": mouth_open(landmarks), "eyes": eyes_open(landmarks),
                "expression": face_expression.offset(landmarks, self.target_resting)}

    def best_view(self, person: str, features: dict[str, Any]) -> int:
        """Index of ``person``'s view closest to ``features`` (see :meth:`features`; empty: most frontal)."""
        others = tuple(p for p in self.all_persons if p != person)
        if not features:
            return int(rank_donors(self.bank, None, None, None, others)[0])
        f = features
        ranked = rank_donors(self.bank, f["pose"], f["skin_lab"], f["mouth"], others,
                             eyes=f["eyes"], donor_eyes=self.eye_opening,
                             expression=f["expression"], donor_expression=self.expression)
        return int(ranked[0])

    def donor_set(self, identity: Identity, features: dict[str, Any]) -> DonorSet:
        """The views of ``identity``'s donor people that best fit ``features`` (empty: most frontal)."""
        indices = [self.best_view(p, features) for p in identity.persons]
        return DonorSet(
            tuple(self.image(i) for i in indices),
            tuple(self.bank.landmarks[i] for i in indices),
            np.asarray(identity.weights, dtype=np.float32),
            self.bank.triangles,
            identity.shape,
        )
