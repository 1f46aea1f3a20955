"""The detections JSON: an audit of every region replaced, readable back as user detections.

Format (``"format": "realanon.detections/1"``)::

    {"format": "realanon.detections/1",
     "files": [{"file": "in/a.jpg", "frames": [
         {"frame": 0, "image_size": [H, W], "failed": null,
          "regions": [{"box_xyxy": [x1, y1, x2, y2], "kind": "face", "score": 0.93,
                       "method": "blur", "keypoints": [[x, y, v], ...] | null,
                       "keypoint_layout": "face6" | null, "track_id": 3 | null,
                       "mask_rle": {"size": [H, W], "counts": "..."} | null}]}]}]}

Boxes are XYXY frame pixels. ``mask_rle`` is COCO's compressed RLE (pycocotools).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from realanon.atomic import atomic_write
from realanon.errors import InputError
from realanon.structures import Detection, Detections

FORMAT = "realanon.detections/1"


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """COCO compressed RLE of a bool ``(H, W)`` mask, JSON-ready."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def decode_mask(rle: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`encode_mask`; accepts compressed or uncompressed COCO RLE."""
    from pycocotools import mask as mask_utils

    h, w = rle["size"]
    counts = rle["counts"]
    if isinstance(counts, list):
        rle = mask_utils.frPyObjects(rle, h, w)
    else:
        rle = {"size": [h, w], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return np.asarray(mask_utils.decode(rle), dtype=bool)


def detection_to_json(det: Detection, method: str = "", include_mask: bool = True) -> dict[str, Any]:
    """One region record."""
    return {
        # Full precision, so that feeding the file back reproduces the same masks exactly.
        "box_xyxy": list(det.box_xyxy),
        "kind": det.kind,
        "score": det.score,
        "method": method,
        "keypoints": None if det.keypoints is None else det.keypoints.tolist(),
        "keypoint_layout": det.keypoint_layout,
        "track_id": det.track_id,
        "mask_rle": encode_mask(det.mask) if include_mask and det.mask is not None else None,
    }


def detection_from_json(record: dict[str, Any], source: str) -> Detection:
    """Inverse of :func:`detection_to_json`."""
    kp = record.get("keypoints")
    rle = record.get("mask_rle")
    return Detection(
        tuple(record["box_xyxy"]),  # type: ignore[arg-type]
        float(record.get("score", 1.0)),
        record.get("kind", "face"),
        keypoints=None if kp is None else np.asarray(kp, dtype=np.float32),
        keypoint_layout=record.get("keypoint_layout"),
        mask=None if rle is None else decode_mask(rle),
        track_id=record.get("track_id"),
        source=source,
    )


@dataclass
class AuditLog:
    """Collects the regions replaced in every file and frame of a run."""

    files: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add_frame(
        self, file: str, frame: int, detections: Detections, method: str, failed: str | None = None
    ) -> None:
        self.files.setdefault(file, []).append(
            {
                "frame": frame,
                "image_size": list(detections.image_size),
                "failed": failed,
                "regions": [detection_to_json(d, method) for d in detections],
            }
        )

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "files": [{"file": f, "frames": fr} for f, fr in self.files.items()]}

    def save(self, path: str | Path) -> None:
        """Writes the JSON atomically."""
        write_text_atomic(Path(path), json.dumps(self.to_json(), indent=1))


def write_text_atomic(path: Path, text: str) -> None:
    """Writes ``text`` (UTF-8) to a temporary file beside ``path``, then renames it into place."""
    with atomic_write(path) as f:
        f.write(text.encode("utf-8"))


class DetectionsFile:
    """Detections read from a file, looked up by input file and frame number.

    Lookups match the exact path string first, then the file name alone, so a JSON written
    in one directory can be used from another.
    """

    def __init__(self, frames: dict[str, dict[int, Detections]], source: str) -> None:
        self.frames = frames
        self.source = source
        self._by_name: dict[str, dict[int, Detections]] = {}
        for key, value in frames.items():
            self._by_name.setdefault(Path(key).name, value)

    def for_file(self, file: str | Path) -> dict[int, Detections] | None:
        """Every frame's detections for ``file``, or None when the file is not listed."""
        return self.frames.get(str(file)) or self._by_name.get(Path(file).name)

    def get(self, file: str | Path, frame: int, image_size: tuple[int, int]) -> Detections:
        """Detections of one frame; empty when the file is listed but the frame is not.

        Raises:
            InputError: if the file is not listed at all (fail closed rather than replace nothing).
        """
        frames = self.for_file(file)
        if frames is None:
            raise InputError(file, f"not listed in detections file {self.source}")
        return frames.get(frame, Detections.empty(image_size))

    def files(self) -> Iterator[str]:
        return iter(self.frames)


def read_realanon_json(data: dict[str, Any], source: str) -> DetectionsFile:
    """Parses the format written by :class:`AuditLog`."""
    frames: dict[str, dict[int, Detections]] = {}
    for entry in data.get("files", []):
        per_frame: dict[int, Detections] = {}
        for fr in entry.get("frames", []):
            size = tuple(fr["image_size"])
            items = tuple(detection_from_json(r, source) for r in fr.get("regions", []))
            per_frame[int(fr["frame"])] = Detections(items, (int(size[0]), int(size[1])))
        frames[entry["file"]] = per_frame
    return DetectionsFile(frames, source)


def iter_records(log: AuditLog) -> Iterable[dict[str, Any]]:
    """Flat records (file, frame, region fields), for reports."""
    for file, frames in log.files.items():
        for fr in frames:
            for region in fr["regions"]:
                yield {"file": file, "frame": fr["frame"], **region}
