"""Describes the ``donor`` generator's identity pool once and ships the table next to the bank.

Each candidate identity of the pool (a blend of 2-3 of the bank's people with a seeded
face-shape variation, see ``realanon/generators/face_choice.py``) is rendered on its own canonical
face and described by dlib; the table lets the generator choose identities far apart among
hundreds of candidates without rendering them at run time (``realanon/generators/face_pool.py``)::

    OMP_NUM_THREADS=1 python scripts/build_face_pool.py --size 512

The table is only used with the bank it was built from (sha256) and the default ``max_mix`` and
``shape_strength``; rebuild it whenever the bank is rebuilt.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from realanon.generators.donor import DonorFaceSwap
from realanon.generators.donor_bank import DEFAULT_BANK
from realanon.generators.face_pool import POOL_FILE, PoolTable, save_pool_table
from realanon.weights import sha256_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bank", type=Path, default=DEFAULT_BANK)
    parser.add_argument("--size", type=int, default=512, help="candidates described (pool numbers 0 .. size-1)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    generator = DonorFaceSwap(bank=str(args.bank))
    start, rows = time.perf_counter(), []
    for number in range(args.size):
        rows.append(generator.identity_descriptor(generator.pool_identity(number)))
        if number % 64 == 63:
            print(f"{number + 1}/{args.size} described, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    table = PoolTable(np.asarray(rows, dtype=np.float32), sha256_file(args.bank), generator.views.all_persons,
                      generator.max_mix, generator.shape_strength)
    out = args.bank.parent / POOL_FILE
    save_pool_table(out, table)
    manifest_path = args.bank.parent / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest["pool"] = {"file": POOL_FILE, "sha256": sha256_file(out), "count": len(rows),
                        "built_with": f"python scripts/build_face_pool.py --size {args.size}"}
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {out}: {len(rows)} descriptors, sha256 {manifest['pool']['sha256']}; listed in {manifest_path}")


if __name__ == "__main__":
    main()
