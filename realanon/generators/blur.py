"""Gaussian blur baseline, strength relative to the region size."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from realanon.generators._util import mask_bbox
from realanon.registry import register_generator
from realanon.structures import GenerationBatch

# Above this sigma the crop is downscaled before blurring: same look, a fraction of the cost.
_MAX_DIRECT_SIGMA = 3.0


@register_generator("blur")
@dataclass(frozen=True)
class GaussianBlur:
    """Blurs each region with a Gaussian of ``sigma = strength * min(region height, width)``.

    Args:
        strength: Sigma as a fraction of the region's short side; 0.15 makes faces unreadable
            to people (not to every machine: see the evaluator's re-identification attack).
    """

    strength: float = 0.15

    def __post_init__(self) -> None:
        if self.strength <= 0:
            raise ValueError(f"blur strength must be > 0, got {self.strength}")

    def __call__(self, batch: GenerationBatch) -> list[np.ndarray]:
        return [self._blur(crop, mask) for crop, mask in zip(batch.crops, batch.replace_masks)]

    def _blur(self, crop: np.ndarray, mask: np.ndarray) -> np.ndarray:
        x1, y1, x2, y2 = mask_bbox(mask)
        sigma = max(1.0, self.strength * min(x2 - x1, y2 - y1))
        h, w = crop.shape[:2]
        if sigma <= _MAX_DIRECT_SIGMA:
            return cv2.GaussianBlur(crop, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
        scale = _MAX_DIRECT_SIGMA / sigma
        small = cv2.resize(crop, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), _MAX_DIRECT_SIGMA, borderType=cv2.BORDER_REPLICATE)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
