"""Pasting generated crops back into the frame."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from realanon.regions import clip_box
from realanon.structures import Region, image_size


def paste_regions(image: np.ndarray, regions: Sequence[Region], generated: Sequence[np.ndarray]) -> np.ndarray:
    """Blends each generated crop into a copy of ``image`` through its region's blend mask.

    Only pixels inside a replace-mask change; every other pixel is bit-identical to ``image``.
    Regions are pasted in order, so a later region wins where two overlap.

    Args:
        image: ``(H, W, 3)`` uint8 RGB frame.
        regions: Regions, with crop boxes in frame pixels.
        generated: ``(h_i, w_i, 3)`` uint8 crops, one per region.

    Returns:
        A new ``(H, W, 3)`` uint8 frame.
    """
    if len(regions) != len(generated):
        raise ValueError(f"{len(regions)} regions but {len(generated)} generated crops")
    out = image.copy()
    size = image_size(image)
    for region, crop in zip(regions, generated):
        if crop.shape[:2] != region.crop_size:
            raise ValueError(f"generated crop {crop.shape[:2]} does not match region {region.crop_size}")
        x1, y1, x2, y2 = region.crop_box_xyxy
        cx1, cy1, cx2, cy2 = clip_box(region.crop_box_xyxy, size)
        if cx2 <= cx1 or cy2 <= cy1:
            continue
        inner = (slice(cy1 - y1, cy2 - y1), slice(cx1 - x1, cx2 - x1))
        mask = region.replace_mask[inner]
        alpha = region.blend_mask[inner][mask][:, None]
        target = out[cy1:cy2, cx1:cx2]
        blended = alpha * crop[inner][mask].astype(np.float32) + (1.0 - alpha) * target[mask].astype(np.float32)
        target[mask] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return out


def mask_entire_frame(image: np.ndarray, color: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """The fail-closed frame: every pixel set to ``color``."""
    return np.broadcast_to(np.asarray(color, dtype=np.uint8), image.shape).copy()
