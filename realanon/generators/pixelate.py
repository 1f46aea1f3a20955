"""Pixelation baseline: the region is shown as a coarse grid of blocks."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from realanon.generators._util import mask_bbox
from realanon.registry import register_generator
from realanon.structures import GenerationBatch


@register_generator("pixelate")
@dataclass(frozen=True)
class Pixelate:
    """Replaces each region by ``blocks`` blocks along its longer side, each the block's mean colour.

    Args:
        blocks: Number of blocks across the longer side of the region (>= 1).
    """

    blocks: int = 8

    def __post_init__(self) -> None:
        if self.blocks < 1:
            raise ValueError(f"pixelate blocks must be >= 1, got {self.blocks}")

    def __call__(self, batch: GenerationBatch) -> list[np.ndarray]:
        return [self._pixelate(crop, mask) for crop, mask in zip(batch.crops, batch.replace_masks)]

    def _pixelate(self, crop: np.ndarray, mask: np.ndarray) -> np.ndarray:
        x1, y1, x2, y2 = mask_bbox(mask)
        w, h = x2 - x1, y2 - y1
        block = max(w, h) / self.blocks
        nx, ny = max(1, round(w / block)), max(1, round(h / block))
        small = cv2.resize(crop[y1:y2, x1:x2], (nx, ny), interpolation=cv2.INTER_AREA)
        out = crop.copy()
        out[y1:y2, x1:x2] = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
        return out
