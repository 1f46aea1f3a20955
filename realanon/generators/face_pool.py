"""Shipped descriptors of the identity pool's canonical faces (``weights/donors/pool.npz``).

Every candidate identity of the ``donor`` generator's pool (:func:`face_choice.pool_candidate`)
is a deterministic function of its number, the bank's people, ``max_mix`` and
``shape_strength``; so is the dlib descriptor of its canonical face. Describing one costs a
render and a dlib pass (about 0.25 s on one CPU thread), too much for a pool large enough to
hold many mutually distinct identities, so ``scripts/build_face_pool.py`` describes the pool
once and ships the table next to the bank, its sha256 in the bank's ``manifest.json`` (entry
``pool``). It is used only when that sha256 matches and it was built from the same bank file
(sha256) with the same pool parameters; otherwise descriptors are computed on demand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from realanon.weights import sha256_file

POOL_FILE = "pool.npz"


@dataclass(frozen=True)
class PoolTable:
    """Descriptors of pool candidates ``0 .. N-1`` and what they were computed for.

    Attributes:
        descriptors: ``(N, 128)`` float32 dlib descriptors of the canonical faces.
        bank_sha256: Hex sha256 of the bank file they were rendered from.
        persons: Every person id of the bank, sorted (the pool is drawn over all of them).
        max_mix: Donor people blended per identity at most.
        shape_strength: Size of the face-shape variation.
    """

    descriptors: np.ndarray
    bank_sha256: str
    persons: tuple[str, ...]
    max_mix: int
    shape_strength: float

    def fits(self, bank_sha256: str, persons: tuple[str, ...], max_mix: int, shape_strength: float) -> bool:
        """Whether the table describes the pool of this bank and these parameters."""
        return (self.bank_sha256 == bank_sha256 and self.persons == persons and self.max_mix == max_mix
                and abs(self.shape_strength - shape_strength) < 1e-9)


def load_pool_table(path: str | Path) -> PoolTable | None:
    """The table at ``path`` (never unpickles), or None when there is none."""
    path = Path(path)
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as z:
        return PoolTable(np.asarray(z["descriptors"], dtype=np.float32), str(z["bank_sha256"]),
                         tuple(str(p) for p in z["persons"]), int(z["max_mix"]), float(z["shape_strength"]))


def save_pool_table(path: str | Path, table: PoolTable) -> None:
    """Writes ``table`` as an npz of plain arrays."""
    np.savez(Path(path), descriptors=table.descriptors.astype(np.float32), bank_sha256=np.array(table.bank_sha256),
             persons=np.array(table.persons), max_mix=np.array(table.max_mix),
             shape_strength=np.array(table.shape_strength))


def shipped_pool_table(bank_path: str | Path, max_mix: int, shape_strength: float,
                       persons: tuple[str, ...]) -> np.ndarray | None:
    """``(N, 128)`` descriptors of the pool next to the bank at ``bank_path``, or None when none fits.

    The table must be listed with its sha256 in the bank's ``manifest.json`` (entry ``pool``) and
    built from this bank file with these parameters; anything else is ignored, never trusted.
    """
    bank_path = Path(bank_path)
    manifest, path = bank_path.parent / "manifest.json", bank_path.parent / POOL_FILE
    if not manifest.exists() or not path.exists():
        return None
    entry = json.loads(manifest.read_text()).get("pool", {})
    if entry.get("file") != POOL_FILE or entry.get("sha256") != sha256_file(path):
        return None
    table = load_pool_table(path)
    if table is None or not table.fits(sha256_file(bank_path), persons, max_mix, shape_strength):
        return None
    return table.descriptors
