"""Typed data passed between the stages of the pipeline.

Frame -> :class:`Detections` -> :class:`Region` list -> :class:`GenerationBatch`
-> generated crops -> post-processed crops -> composited frame.

Conventions used everywhere in realanon:

* images are RGB ``uint8`` arrays of shape ``(H, W, 3)``;
* boxes are ``(x1, y1, x2, y2)`` in pixels of the full frame (XYXY, x2/y2 exclusive);
* keypoints are ``(K, 3)`` float32 arrays of ``(x, y, visibility)`` in pixels, visibility in [0, 1];
* masks are boolean arrays where ``True`` means "replace this pixel".

This module imports nothing else from realanon.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

Kind = Literal["face", "body"]
KINDS: tuple[Kind, ...] = ("face", "body")

BoxXYXY = tuple[float, float, float, float]
IntBoxXYXY = tuple[int, int, int, int]


def image_size(image: np.ndarray) -> tuple[int, int]:
    """``(height, width)`` of an ``(H, W, ...)`` array."""
    return (int(image.shape[0]), int(image.shape[1]))


@dataclass(frozen=True, eq=False)
class Detection:
    """One detected face or person.

    Attributes:
        box_xyxy: Bounding box in frame pixels.
        score: Detector confidence in [0, 1] (1.0 for annotations).
        kind: ``"face"`` or ``"body"``.
        keypoints: Optional ``(K, 3)`` float32 ``(x, y, visibility)`` in frame pixels.
        keypoint_layout: Name of the keypoint convention, e.g. ``"face6"``,
            ``"face_mesh478"`` or ``"coco17"``.
        mask: Optional full-frame ``(H, W)`` bool instance mask.
        track_id: Optional identity of the track this detection belongs to (video).
        source: Name of whatever produced the detection (detector or annotation file).
    """

    box_xyxy: BoxXYXY
    score: float
    kind: Kind
    keypoints: np.ndarray | None = None
    keypoint_layout: str | None = None
    mask: np.ndarray | None = None
    track_id: int | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        x1, y1, x2, y2 = (float(v) for v in self.box_xyxy)
        object.__setattr__(self, "box_xyxy", (x1, y1, x2, y2))
        object.__setattr__(self, "score", float(self.score))
        if self.keypoints is not None:
            kp = np.asarray(self.keypoints, dtype=np.float32)
            if kp.ndim != 2 or kp.shape[1] != 3:
                raise ValueError(f"keypoints must have shape (K, 3), got {kp.shape}")
            object.__setattr__(self, "keypoints", kp)
        if self.mask is not None and self.mask.dtype != np.bool_:
            object.__setattr__(self, "mask", np.asarray(self.mask, dtype=bool))

    @property
    def width(self) -> float:
        return self.box_xyxy[2] - self.box_xyxy[0]

    @property
    def height(self) -> float:
        return self.box_xyxy[3] - self.box_xyxy[1]

    def with_track(self, track_id: int | None) -> Detection:
        """Returns a copy carrying ``track_id``."""
        return replace(self, track_id=track_id)


@dataclass(frozen=True)
class Detections:
    """All detections of one frame.

    Attributes:
        items: The detections, in no particular order.
        image_size: ``(height, width)`` of the frame they refer to.
    """

    items: tuple[Detection, ...]
    image_size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.items)

    def of_kind(self, kind: Kind) -> Detections:
        """Returns only the detections of ``kind``."""
        return Detections(tuple(d for d in self.items if d.kind == kind), self.image_size)

    def above(self, threshold: float) -> Detections:
        """Returns only the detections scoring at least ``threshold``."""
        return Detections(tuple(d for d in self.items if d.score >= threshold), self.image_size)

    def __add__(self, other: Detections) -> Detections:
        if other.image_size != self.image_size:
            raise ValueError(f"image sizes differ: {self.image_size} vs {other.image_size}")
        return Detections(self.items + other.items, self.image_size)

    @staticmethod
    def empty(image_size: tuple[int, int]) -> Detections:
        return Detections((), image_size)


@dataclass(frozen=True, eq=False)
class Region:
    """A crop of the frame around one detection, with what to replace inside it.

    The crop box may extend past the frame; the parts outside are padded (see
    :func:`realanon.regions.crop_with_padding`) and never pasted back.

    Attributes:
        detection: The detection this region was made from.
        crop_box_xyxy: Integer crop box in frame pixels (may exceed the frame).
        replace_mask: ``(h, w)`` bool, True where pixels are replaced (never outside the frame).
        blend_mask: ``(h, w)`` uint8 alpha, 0 (keep the frame) to 255 (take the generated pixel),
            zero wherever ``replace_mask`` is False.
    """

    detection: Detection
    crop_box_xyxy: IntBoxXYXY
    replace_mask: np.ndarray
    blend_mask: np.ndarray

    @property
    def crop_size(self) -> tuple[int, int]:
        """``(height, width)`` of the crop."""
        x1, y1, x2, y2 = self.crop_box_xyxy
        return (y2 - y1, x2 - x1)


@dataclass(frozen=True)
class GenerationBatch:
    """What a generator receives: every region of one or more frames.

    Attributes:
        crops: ``(h_i, w_i, 3)`` uint8 RGB crops, one per region (sizes may differ).
        replace_masks: ``(h_i, w_i)`` bool masks, True = synthesise this pixel.
        keypoints: Per region ``(K, 3)`` keypoints in crop pixels, or None.
        keypoint_layouts: Per region keypoint layout name, or None.
        kinds: Per region ``"face"`` or ``"body"``.
        seeds: Per region integer seed; a video track keeps the same seed for its life.
        frames: Per region, the whole ``(H, W, 3)`` frame it was cropped from (shared, not
            copied), for post-processors that look at the whole scene; empty when unknown.
        tracked: Per region, whether it belongs to a video track (its seed then names one
            person across frames, so a generator may cache what it learnt about that person);
            empty when unknown (treat every region as a new person).
    """

    crops: tuple[np.ndarray, ...]
    replace_masks: tuple[np.ndarray, ...]
    keypoints: tuple[np.ndarray | None, ...]
    keypoint_layouts: tuple[str | None, ...]
    kinds: tuple[Kind, ...]
    seeds: tuple[int, ...]
    frames: tuple[np.ndarray, ...] = ()
    tracked: tuple[bool, ...] = ()

    def __len__(self) -> int:
        return len(self.crops)

    def __post_init__(self) -> None:
        n = len(self.crops)
        for name in ("replace_masks", "keypoints", "keypoint_layouts", "kinds", "seeds"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"GenerationBatch.{name} has {len(getattr(self, name))} items, expected {n}")
        if self.frames and len(self.frames) != n:
            raise ValueError(f"GenerationBatch.frames has {len(self.frames)} items, expected {n} or none")
        if self.tracked and len(self.tracked) != n:
            raise ValueError(f"GenerationBatch.tracked has {len(self.tracked)} items, expected {n} or none")
        for crop, mask in zip(self.crops, self.replace_masks):
            if crop.shape[:2] != mask.shape:
                raise ValueError(f"crop {crop.shape[:2]} and mask {mask.shape} differ in size")


@dataclass(frozen=True)
class AnonymizedFrame:
    """The result of anonymizing one frame.

    Attributes:
        image: The anonymized ``(H, W, 3)`` uint8 RGB image.
        detections: What was detected (or supplied) and replaced.
        regions: The regions that were replaced.
        failed: Error message when the frame failed and was masked entirely (fail-closed), else None.
    """

    image: np.ndarray
    detections: Detections
    regions: tuple[Region, ...] = field(default_factory=tuple)
    failed: str | None = None
