"""Builds the donor bank of the ``donor`` generator from the openpeople package (MIT).

Every face in every openpeople asset (portraits, selfies, and each view of the character and
emotion sheets) is detected with mediapipe's full-range face detector, meshed with FaceMesh
(478 points), cropped square around the face (``--size`` pixels) and stored with its
landmarks, head pose, mean skin colour and source, in one pickle-free ``bank.npz``::

    python scripts/build_donor_bank.py --out weights/donors

Writes ``bank.npz``, ``manifest.json`` (sha256, counts, source versions) and ``LICENSE.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import cv2
import numpy as np

from realanon.generators.face_warp import (
    FaceMesher,
    extend_landmarks,
    head_pose,
    mean_skin_lab,
    mesh_groups,
    mouth_open,
    skin_mask,
    triangulate,
)
from realanon.media import openpeople_images
from realanon.regions import crop_with_padding

# Detection runs on a copy whose long side is this many pixels; meshing on the full image.
DETECT_SIDE = 1280
# Crop side as a multiple of the face oval's extent: keeps the warp's outer ring inside.
CROP_FACTOR = 2.0
# Faces whose oval is shorter than this (full-resolution pixels) are too small to be donors.
MIN_FACE_PX = 96


@dataclass(frozen=True)
class Donor:
    """One donor face: an aligned RGB crop and what the generator matches on."""

    crop: np.ndarray
    landmarks: np.ndarray
    person: str
    source: str


def detect_boxes(image: np.ndarray, detector) -> list[tuple[float, float, float, float]]:  # type: ignore[no-untyped-def]
    """Face boxes (full-resolution pixels) found on a downscaled copy of ``image``."""
    h, w = image.shape[:2]
    scale = min(1.0, DETECT_SIDE / max(h, w))
    small = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    result = detector.process(small)
    boxes = []
    for det in result.detections or ():
        b = det.location_data.relative_bounding_box
        boxes.append((b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h))
    return boxes


def donor_from_box(image: np.ndarray, box: tuple[float, float, float, float], mesher: FaceMesher,
                   size: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Meshes the face in ``box`` and returns ``(crop, landmarks in crop pixels)`` or None."""
    x1, y1, x2, y2 = box
    side = 2.2 * max(x2 - x1, y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    probe = (round(cx - side / 2), round(cy - side / 2), round(cx + side / 2), round(cy + side / 2))
    landmarks = mesher.nearest_face(crop_with_padding(image, probe), (side / 2, side / 2))
    if landmarks is None:
        return None
    landmarks[:, :2] += (probe[0], probe[1])
    oval = landmarks[mesh_groups()["oval"], :2]
    extent = float(max(np.ptp(oval[:, 0]), np.ptp(oval[:, 1])))
    if np.ptp(oval[:, 1]) < MIN_FACE_PX:
        return None
    centre = oval.mean(axis=0)
    half = CROP_FACTOR * extent / 2
    box_i = (round(centre[0] - half), round(centre[1] - half), round(centre[0] + half), round(centre[1] + half))
    scale = size / (box_i[2] - box_i[0])
    crop = cv2.resize(crop_with_padding(image, box_i), (size, size), interpolation=cv2.INTER_AREA)
    local = landmarks.copy()
    local[:, 0] = (local[:, 0] - box_i[0]) * scale
    local[:, 1] = (local[:, 1] - box_i[1]) * scale
    local[:, 2] *= scale
    return crop, local


def collect_donors(size: int) -> list[Donor]:
    """Every usable face of every openpeople asset."""
    import mediapipe as mp

    detector = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5)
    mesher = FaceMesher(max_faces=2, min_confidence=0.5)
    donors = []
    for person, files in openpeople_images().items():
        for path in files:
            image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
            boxes = sorted(detect_boxes(image, detector), key=lambda b: (round(b[1] / 200), b[0]))
            for i, box in enumerate(boxes):
                found = donor_from_box(image, box, mesher, size)
                if found is not None:
                    donors.append(Donor(found[0], found[1], person, f"{person}/assets/{path.name}#{i}"))
            print(f"{person} {path.name}: {len(boxes)} faces detected, {len(donors)} donors so far", flush=True)
    return donors


def pack_bank(donors: list[Donor], quality: int) -> dict[str, np.ndarray]:
    """Arrays of ``bank.npz``: JPEG bytes with offsets, landmarks, pose, skin, ids, triangles."""
    jpegs = [cv2.imencode(".jpg", cv2.cvtColor(d.crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
             for d in donors]
    landmarks = np.stack([d.landmarks for d in donors]).astype(np.float32)
    pose = np.stack([head_pose(lm) for lm in landmarks])
    skin = np.stack([mean_skin_lab(d.crop, skin_mask(d.landmarks, d.crop.shape[:2])) for d in donors])
    frontal = int(np.argmin(np.abs(pose[:, :2]).sum(axis=1)))
    return {
        "jpeg": np.concatenate([j.reshape(-1) for j in jpegs]).astype(np.uint8),
        "jpeg_offsets": np.cumsum([0] + [j.size for j in jpegs]).astype(np.int64),
        "landmarks": landmarks,
        "pose": pose.astype(np.float32),
        "skin_lab": skin.astype(np.float32),
        "mouth_open": np.array([mouth_open(lm) for lm in landmarks], dtype=np.float32),
        "person": np.array([d.person for d in donors]),
        "source": np.array([d.source for d in donors]),
        "triangles": triangulate(extend_landmarks(landmarks[frontal])),
    }


LICENSE_TEXT = """# Donor bank licence record

`bank.npz` holds face crops and derived data (mediapipe FaceMesh landmarks, head pose, mean
skin colour) made from the images of the PyPI package **openpeople {version}**
(`openpeople/data/curated/P001..P010/assets/*.jpg`). The people shown do not exist: the
package's metadata says they were generated with an image model. The package is released
under the MIT licence, reproduced below; this bank is a derivative work under the same terms.

Built by `scripts/build_donor_bank.py`; see `manifest.json` for the sha256 and the sources
of every crop (the `source` array in the bank).

```
{licence}
```
"""


def write_bank(out: Path, arrays: dict[str, np.ndarray], size: int) -> None:
    """Writes ``bank.npz``, ``manifest.json`` and ``LICENSE.md`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    bank = out / "bank.npz"
    np.savez_compressed(bank, **arrays)
    version = metadata.version("openpeople")
    dist = metadata.distribution("openpeople")
    licence = next((f for f in dist.files or () if "licenses" in str(f)), None)
    licence_text = dist.read_text(str(licence)) if licence else "MIT"
    persons, counts = np.unique(arrays["person"], return_counts=True)
    manifest = {
        "name": "donors",
        "format": "realanon donor bank v1 (npz, no pickle)",
        "file": bank.name,
        "sha256": hashlib.sha256(bank.read_bytes()).hexdigest(),
        "crop_size": size,
        "count": int(len(arrays["person"])),
        "per_person": {str(p): int(c) for p, c in zip(persons, counts)},
        "source": f"openpeople=={version} (PyPI)",
        "licence": "MIT",
        "built_with": "python scripts/build_donor_bank.py --out weights/donors",
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (out / "LICENSE.md").write_text(LICENSE_TEXT.format(version=version, licence=(licence_text or "MIT").strip()))
    print(f"wrote {bank} ({bank.stat().st_size / 2**20:.2f} MiB, {manifest['count']} donors)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("weights/donors"))
    parser.add_argument("--size", type=int, default=224, help="crop side in pixels")
    parser.add_argument("--quality", type=int, default=88, help="JPEG quality of the stored crops")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    donors = collect_donors(args.size)
    write_bank(args.out, pack_bank(donors, args.quality), args.size)


if __name__ == "__main__":
    main()
