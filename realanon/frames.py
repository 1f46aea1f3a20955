"""Anonymizing several frames at once: one generator call for the regions of a few frames.

Used by :mod:`realanon.video` for each batch that leaves the look-ahead buffer; the result equals
anonymizing the frames one by one (same seeds, same pixels).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

from realanon.composite import paste_regions
from realanon.pipeline import Anonymizer, validate_image
from realanon.regions import build_regions
from realanon.structures import AnonymizedFrame, Detections, GenerationBatch

log = logging.getLogger(__name__)


def concat_batches(batches: list[GenerationBatch]) -> GenerationBatch:
    """One batch holding every region of ``batches``, in order."""
    def joined(name: str) -> tuple[Any, ...]:
        return tuple(x for b in batches for x in getattr(b, name))

    has_frames = all(b.frames or not len(b) for b in batches)
    has_tracked = all(b.tracked or not len(b) for b in batches)
    return GenerationBatch(
        joined("crops"), joined("replace_masks"), joined("keypoints"), joined("keypoint_layouts"),
        joined("kinds"), joined("seeds"), frames=joined("frames") if has_frames else (),
        tracked=joined("tracked") if has_tracked else (),
    )


# Crop pixels one generator call may hold when it takes several frames: small faces of a few
# frames still go together (a batching generator's gain), while a close-up (one 1080p face's
# crop is about 4 Mpx with its padding) goes alone, so memory stays that of one frame.
MAX_CALL_PIXELS = 2_000_000


def anonymize_frames(
    anonymizer: Anonymizer, images: list[np.ndarray], detections: list[Detections], frame_indices: list[int],
) -> list[AnonymizedFrame]:
    """Anonymizes several frames with given detections, calling the generator once for groups of them.

    Equivalent to ``[anonymizer(im, det, frame_index=i) ...]`` (same seeds, same pixels) but batched
    across frames, up to :data:`MAX_CALL_PIXELS` of crops per call (always at least one frame).
    If a joint call raises, the frames are redone one by one so that fail-closed masking hits
    only the frames that really fail.
    """
    try:
        plans = []
        for image, dets, index in zip(images, detections, frame_indices):
            validate_image(image)
            dets = anonymizer.select(dets)
            plans.append((image, dets, build_regions(dets, anonymizer.region_options), index))
        results = []
        for group in _call_groups(plans):
            batches = [anonymizer.make_batch(image, regions, index) for image, _, regions, index in group]
            generated = iter(anonymizer.generate(concat_batches(batches)) if any(p[2] for p in group) else [])
            del batches  # the crops: only the generated ones are needed now
            for image, dets, regions, _ in group:
                crops = [next(generated) for _ in regions]
                pasted = paste_regions(image, regions, crops) if regions else image.copy()
                results.append(AnonymizedFrame(pasted, dets, tuple(regions)))
        return results
    except Exception:  # noqa: BLE001 - retry frame by frame; the Anonymizer fails closed per frame
        log.debug("batched generation failed; retrying frame by frame", exc_info=True)
        return [anonymizer(im, det, frame_index=i) for im, det, i in zip(images, detections, frame_indices)]


def _call_groups(plans: list[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    """Consecutive frames whose crops add up to at most :data:`MAX_CALL_PIXELS` (or one frame)."""
    group: list[tuple[Any, ...]] = []
    pixels = 0
    for plan in plans:
        size = sum(r.crop_size[0] * r.crop_size[1] for r in plan[2])
        if group and pixels + size > MAX_CALL_PIXELS:
            yield group
            group, pixels = [], 0
        group.append(plan)
        pixels += size
    if group:
        yield group
