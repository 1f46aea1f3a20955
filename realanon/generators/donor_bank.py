"""The donor bank of the ``donor`` generator and how its views are ranked for a target.

The bank is built by ``scripts/build_donor_bank.py`` from the openpeople package.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from realanon.generators.face_expression import distance as expression_distance
from realanon.paths import project_dir

DEFAULT_BANK = project_dir("weights") / "donors" / "bank.npz"
# Matching cost units: this many degrees of yaw/pitch, LAB units of skin colour, or
# mouth- or eye-opening fraction each cost 1.
_POSE_DEG, _SKIN_LAB, _MOUTH, _EYES = 12.0, 12.0, 0.05, 0.1
# ... and this expression distance (see :mod:`~realanon.generators.face_expression`): about
# what separates two people's resting faces, a third of a smile.
_EXPRESSION = 0.03


@dataclass(frozen=True)
class DonorBank:
    """Donor faces and what they are matched on (see ``scripts/build_donor_bank.py``).

    Attributes:
        jpeg: Concatenated JPEG bytes of the ``(S, S, 3)`` crops; crop ``i`` is
            ``jpeg[offsets[i]:offsets[i + 1]]``.
        offsets: ``(N + 1,)`` int64 offsets into ``jpeg``.
        landmarks: ``(N, 478, 3)`` float32 FaceMesh landmarks in crop pixels.
        alpha: ``(N, S, S)`` uint8 person matte of each crop (255 = head and hair).
        pose: ``(N, 3)`` float32 ``(yaw, pitch, roll)`` degrees.
        skin_lab: ``(N, 3)`` float32 mean skin colour in CIELAB.
        mouth: ``(N,)`` float32 mouth opening (see :func:`face_warp.mouth_open`).
        person: ``(N,)`` str person id of each donor (``"P001"`` ...).
        source: ``(N,)`` str file each donor was cut from.
        triangles: ``(T, 3)`` int32 triangulation of the extended landmarks.
    """

    jpeg: np.ndarray
    offsets: np.ndarray
    landmarks: np.ndarray
    alpha: np.ndarray
    pose: np.ndarray
    skin_lab: np.ndarray
    mouth: np.ndarray
    person: np.ndarray
    source: np.ndarray
    triangles: np.ndarray

    @staticmethod
    def load(path: str | Path) -> DonorBank:
        """Reads a bank written by ``scripts/build_donor_bank.py`` (never unpickles)."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(
                f"donor bank {path} not found; build it with `python scripts/build_donor_bank.py --out {path.parent}`"
            )
        with np.load(path, allow_pickle=False) as z:
            return DonorBank(
                z["jpeg"], z["jpeg_offsets"], z["landmarks"], z["alpha"], z["pose"], z["skin_lab"], z["mouth_open"],
                z["person"].astype(str), z["source"].astype(str), z["triangles"],
            )

    def __len__(self) -> int:
        return len(self.person)

    def image(self, index: int) -> np.ndarray:
        """Donor ``index`` as an ``(S, S, 3)`` uint8 RGB crop."""
        data = self.jpeg[self.offsets[index] : self.offsets[index + 1]]
        return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def rank_donors(bank: DonorBank, pose: np.ndarray | None, skin_lab: np.ndarray | None, mouth: float | None,
                exclude: tuple[str, ...], eyes: float | None = None,
                donor_eyes: np.ndarray | None = None, expression: np.ndarray | None = None,
                donor_expression: np.ndarray | None = None) -> np.ndarray:
    """Indices of the allowed donors, best match first.

    Args:
        bank: The donor bank.
        pose: Target ``(yaw, pitch, roll)`` degrees, or None to prefer frontal donors.
        skin_lab: Target mean skin LAB, or None to ignore colour.
        mouth: Target mouth opening, or None to ignore it.
        exclude: Person ids never to choose.
        eyes: Target eye opening (see :func:`face_inner.eyes_open`), or None to ignore it.
        donor_eyes: ``(N,)`` eye opening of every donor; needed with ``eyes``.
        expression: Target ``(P, 3)`` expression offset (see :func:`face_expression.offset`),
            or None to ignore expression.
        donor_expression: ``(N, P, 3)`` expression offset of every donor; needed with ``expression``.

    Raises:
        ValueError: when every donor is excluded.
    """
    allowed = np.flatnonzero(~np.isin(bank.person, list(exclude)))
    if allowed.size == 0:
        raise ValueError(f"every donor is excluded ({', '.join(exclude)}); nothing to swap in")
    target_pose = np.zeros(2, np.float32) if pose is None else pose[:2]
    cost = np.linalg.norm((bank.pose[allowed, :2] - target_pose) / _POSE_DEG, axis=1)
    if skin_lab is not None:
        cost += np.linalg.norm(bank.skin_lab[allowed] - skin_lab, axis=1) / _SKIN_LAB
    if mouth is not None:
        cost += np.abs(bank.mouth[allowed] - mouth) / _MOUTH
    if eyes is not None and donor_eyes is not None:
        cost += np.abs(donor_eyes[allowed] - eyes) / _EYES
    if expression is not None and donor_expression is not None:
        cost += expression_distance(donor_expression[allowed], expression) / _EXPRESSION
    return allowed[np.argsort(cost, kind="stable")]
