"""Every person in a street scene: COCO person boxes, COCO-17 keypoints and an instance mask each.

The default body detector. Three swappable stages:

1. **boxes**: a registered detector returning people (default ``centernet_person``: the
   shipped CenterNet, searched in tiles so that people ``min_height`` px tall are found);
2. **keypoints**: a registered detector with a ``refine(image, detections)`` method (default
   ``movenet_pose``: MoveNet MultiPose in each person's crop), or ``"none"``;
3. **masks**: :class:`~realanon.detectors.person_masks.PersonMasks` with ``method``
   ``"selfie"`` (mediapipe segmentation in each crop, limited to that person) or ``"box"``.

Overlapping people get disjoint masks. In tracked video (``set_tracked(True)``, which
:func:`realanon.video.anonymize_video` calls) the box stage spreads its tile search over frames
and follows the people it found in crops around them, small people get box masks, and a
person who hardly moved keeps the previous frame's keypoints and mask
(:mod:`realanon.detectors.coco_reuse`); photos and untracked video get the full search. Everything runs offline on the CPU by default
(onnxruntime's CUDA provider is used for the ONNX stages with ``device="cuda"`` when present).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from realanon.detectors.coco_reuse import DetailReuse
from realanon.detectors.person_masks import PersonMasks, disjoint_masks
from realanon.interfaces import TrackedSearch
from realanon.registry import DETECTORS, register_detector
from realanon.structures import Detection, Detections

_BOX_MASKS = PersonMasks(method="box")  # stateless: one for every detector


def build_stage(name: str, options: Mapping[str, Any], device: str, threads: int | None) -> Any:
    """Builds a registered detector, passing ``device``/``threads`` where its factory accepts them."""
    factory = DETECTORS.get(name)
    try:
        accepted = list(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        accepted = []
    extras = {k: v for k, v in (("device", device), ("threads", threads)) if k in accepted and k not in options}
    return factory(**dict(options), **extras)


@register_detector("coco_person")
class CocoPersonDetector:
    """People with a box, COCO-17 keypoints (layout ``"coco17"``) and a disjoint instance mask each.

    Args:
        min_score: People scoring below this are dropped (applied to the box stage's scores).
        boxes: Registered detector that finds the people.
        box_options: Its options (e.g. ``{"min_height": 48}`` to search fewer tiles).
        keypoints: Registered detector whose ``refine`` adds keypoints, or ``"none"``.
        keypoint_options: Its options.
        masks: Mask method, ``"selfie"`` or ``"box"``.
        mask_options: Options of :class:`~realanon.detectors.person_masks.PersonMasks`.
        max_people: At most this many people (best first) get keypoints and masks; the rest
            keep box masks.
        video_detail_height: In tracked video only, people shorter than this (pixels) get no
            keypoints and their box as the mask (a box holds the whole person; a segmentation of
            a person that small adds little and costs a network run per person). Photos and
            untracked video give every person keypoints and a segmented mask.
        reuse_details: In tracked video only, a person whose box hardly changed since the
            previous frame keeps that frame's keypoints and mask, moved with the box
            (:class:`~realanon.detectors.coco_reuse.DetailReuse`; at most 4 frames in a row).
        device: ``"cuda"`` runs the ONNX stages with onnxruntime's CUDA provider when available.
        threads: onnxruntime intra-op threads (default ``OMP_NUM_THREADS``, else its choice).
    """

    def __init__(
        self,
        min_score: float = 0.25,
        boxes: str = "centernet_person",
        box_options: Mapping[str, Any] | None = None,
        keypoints: str = "movenet_pose",
        keypoint_options: Mapping[str, Any] | None = None,
        masks: str = "selfie",
        mask_options: Mapping[str, Any] | None = None,
        max_people: int = 40,
        video_detail_height: float = 96.0,
        reuse_details: bool = True,
        device: str = "cpu",
        threads: int | None = None,
    ) -> None:
        self.min_score = float(min_score)
        self.max_people = int(max_people)
        self.video_detail_height = float(video_detail_height)
        self._tracked = False
        self.boxes = build_stage(boxes, box_options or {}, device, threads)
        self.keypoints = None
        if keypoints != "none":
            self.keypoints = build_stage(keypoints, keypoint_options or {}, device, threads)
            if not callable(getattr(self.keypoints, "refine", None)):
                raise ValueError(f"coco_person keypoints stage {keypoints!r} has no refine(image, detections) method")
        self.masks = PersonMasks(method=masks, **dict(mask_options or {}))
        self.reuse = DetailReuse() if reuse_details else None

    def __call__(self, image: np.ndarray) -> Detections:
        """Every person in an RGB ``(H, W, 3)`` uint8 image."""
        found = self.boxes(image)
        people = self.people(found)
        head, tail = people[: self.max_people], people[self.max_people:]
        if self._tracked:  # small people in tracked video: box masks, no keypoints
            tail += [d for d in head if d.height < self.video_detail_height]
            head = [d for d in head if d.height >= self.video_detail_height]
        ages = [0] * len(head)  # frames in a row each person's details were carried over
        if self._tracked and self.reuse is not None:
            head, ages = self.reuse.apply(head)
        dets = Detections(tuple(head), found.image_size)
        if self.keypoints is not None:
            dets = self.keypoints.refine(image, dets)
        head = self.masks.add_masks(image, dets)
        if self._tracked and self.reuse is not None:
            self.reuse.remember(head, ages)
        tail = [replace(d, mask=_BOX_MASKS.mask_for(image, d)) for d in tail]  # beyond max_people or small in tracked video
        return Detections(tuple(disjoint_masks(head + tail)), found.image_size)

    def people(self, found: Detections) -> list[Detection]:
        """The box stage's people scoring at least ``min_score``, best first, as ``coco_person``'s."""
        people = sorted((d for d in found if d.kind == "body" and d.score >= self.min_score), key=lambda d: -d.score)
        return [_as_coco_person(d) for d in people]

    def set_tracked(self, tracked: bool) -> None:
        """Tracked video on or off (:class:`~realanon.interfaces.TrackedSearch`).

        When on, the box stage may spread its tile search over frames (when it has
        ``set_tracked``) and people shorter than ``video_detail_height`` get box masks.
        With ``reuse_details``, a person who hardly moved since the previous frame keeps that
        frame's keypoints and mask (:mod:`realanon.detectors.coco_reuse`). Either way earlier
        frames are forgotten.
        """
        self._tracked = bool(tracked)
        if self.reuse is not None:
            self.reuse.reset()
        if isinstance(self.boxes, TrackedSearch):
            self.boxes.set_tracked(tracked)


def _as_coco_person(det: Detection) -> Detection:
    """A box-stage detection as ``coco_person``'s own (source renamed, stage's mask kept)."""
    return replace(det, source=f"coco_person/{det.source}" if det.source else "coco_person")
