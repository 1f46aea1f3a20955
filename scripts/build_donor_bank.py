"""Builds the donor bank of the ``donor`` generator from the openpeople package (MIT).

Every face in every openpeople asset (portraits, selfies, and each framed tile of the
character and emotion sheets; tiles where hands or a tongue cover the face are skipped) is
detected with mediapipe's full-range face detector, meshed with FaceMesh (478 points),
cropped square around the face (``--size`` pixels; past a tile's frame the tile's edge is
repeated, so frames and captions never enter a crop) and stored with its landmarks, head
pose, mouth opening, mean skin colour, person matte and source, in one pickle-free
``bank.npz``. The build is deterministic (same sha256 on rebuild)::

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


# The emotion sheets share one 4 x 4 layout; these tiles show hands or a tongue over the face.
EMOTIONS = ("Neutral", "Happy", "Sad", "Angry", "Surprised", "Disgusted", "Scared", "Confused",
            "Smug", "Flirty", "Thoughtful", "Pensive", "Exhausted", "Shocked", "Playful", "Determined")
OCCLUDED = frozenset({"Thoughtful", "Exhausted", "Shocked", "Playful"})
# Sheet frame lines: near-white runs over half the sheet; groups closer than this merge.
_WHITE, _LINE_GAP, _LINE_INSET = 215, 30, 10


def _line_groups(fraction: np.ndarray) -> list[tuple[int, int]]:
    """``(first, last)`` index of each run where ``fraction`` > 0.5, merging runs < _LINE_GAP apart."""
    groups: list[list[int]] = []
    for i in np.flatnonzero(fraction > 0.5):
        if groups and i - groups[-1][1] < _LINE_GAP:
            groups[-1][1] = int(i)
        else:
            groups.append([int(i), int(i)])
    return [(a, b) for a, b in groups]


def sheet_tiles(image: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Interiors ``(x1, y1, x2, y2)`` of the framed tiles of a sheet, row by row; [] if none.

    Tiles are drawn with thin white frames; each frame contributes a top and a bottom line
    (a left and a right line), so the lines pair up.
    """
    white = image.min(axis=2) > _WHITE
    rows, cols = _line_groups(white.mean(axis=1)), _line_groups(white.mean(axis=0))
    if len(rows) < 2 or len(cols) < 2 or len(rows) % 2 or len(cols) % 2:
        return []
    return [
        (left[0] + _LINE_INSET, top[0] + _LINE_INSET, right[1] - _LINE_INSET, bottom[1] - _LINE_INSET)
        for top, bottom in zip(rows[::2], rows[1::2])
        for left, right in zip(cols[::2], cols[1::2])
    ]


def detect_boxes(image: np.ndarray, detector) -> list[tuple[float, float, float, float]]:  # type: ignore[no-untyped-def]
    """Face boxes (pixels of ``image``) found on a copy whose long side is at most DETECT_SIDE."""
    h, w = image.shape[:2]
    scale = min(1.0, DETECT_SIDE / max(h, w))
    small = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    result = detector.process(np.ascontiguousarray(small))
    boxes = []
    for det in sorted(result.detections or (), key=lambda d: -d.score[0]):
        b = det.location_data.relative_bounding_box
        boxes.append((b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h))
    return boxes


def image_parts(path: Path, image: np.ndarray) -> list[tuple[str, np.ndarray, int]]:
    """``(label, picture, max faces)``: each tile of a sheet, or the whole picture."""
    tiles = sheet_tiles(image) if "sheet" in path.stem else []
    if not tiles:
        return [("", image, 4)]
    names = EMOTIONS if path.stem == "emotions_sheet" and len(tiles) == len(EMOTIONS) else None
    parts = []
    for i, (x1, y1, x2, y2) in enumerate(tiles):
        label = names[i] if names else f"tile{i}"
        if label not in OCCLUDED:
            parts.append((label, image[y1:y2, x1:x2], 1))
    return parts


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
            for label, part, max_faces in image_parts(path, image):
                for i, box in enumerate(detect_boxes(part, detector)[:max_faces]):
                    found = donor_from_box(part, box, mesher, size)
                    if found is not None:
                        tag = label or f"face{i}"
                        donors.append(Donor(found[0], found[1], person, f"{person}/assets/{path.name}#{tag}"))
            print(f"{person} {path.name}: {len(donors)} donors so far", flush=True)
    return donors


def person_alphas(donors: list[Donor]) -> np.ndarray:
    """``(N, S, S)`` uint8 person matte of each crop (255 = head, hair, neck; 0 = backdrop).

    Made with mediapipe's selfie segmentation; the generator keeps the donor's head and
    replaces the donor's backdrop with the target's own (blurred) surroundings.
    """
    import mediapipe as mp

    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as segmenter:
        mattes = [segmenter.process(np.ascontiguousarray(d.crop)).segmentation_mask for d in donors]
    return np.stack([np.clip(np.rint(m * 255), 0, 255) for m in mattes]).astype(np.uint8)


def pack_bank(donors: list[Donor], quality: int) -> dict[str, np.ndarray]:
    """Arrays of ``bank.npz``: JPEG bytes with offsets, landmarks, pose, skin, ids, mattes, triangles."""
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
        "alpha": person_alphas(donors),
        "pose": pose.astype(np.float32),
        "skin_lab": skin.astype(np.float32),
        "mouth_open": np.array([mouth_open(lm) for lm in landmarks], dtype=np.float32),
        "person": np.array([d.person for d in donors]),
        "source": np.array([d.source for d in donors]),
        "triangles": triangulate(extend_landmarks(landmarks[frontal])),
    }


LICENSE_TEXT = """# Donor bank licence record

`bank.npz` holds face crops and derived data (mediapipe FaceMesh landmarks, head pose, mean
skin colour, person matte) made from the images of the PyPI package **openpeople {version}**
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
    licence_text = Path(str(licence.locate())).read_text() if licence else "MIT"
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
