"""Mask-out baseline: the region is filled with one solid colour."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from realanon.registry import register_generator
from realanon.structures import GenerationBatch


@register_generator("mask")
@dataclass(frozen=True)
class MaskOut:
    """Fills each region with ``color``.

    Args:
        color: RGB colour, each channel 0-255.
    """

    color: tuple[int, int, int] = (0, 0, 0)

    def __post_init__(self) -> None:
        color = tuple(int(c) for c in self.color)
        if len(color) != 3 or not all(0 <= c <= 255 for c in color):
            raise ValueError(f"mask color must be three values in 0..255, got {self.color!r}")
        object.__setattr__(self, "color", color)

    def __call__(self, batch: GenerationBatch) -> list[np.ndarray]:
        return [solid_fill((crop.shape[0], crop.shape[1]), self.color) for crop in batch.crops]


def solid_fill(size: tuple[int, int], color: tuple[int, int, int]) -> np.ndarray:
    """``(h, w, 3)`` uint8 filled with ``color``, copied row by row (numpy copies a broadcast
    pixel, 3 bytes at a time, an order of magnitude slower)."""
    h, w = size
    row = np.tile(np.asarray(color, dtype=np.uint8), w)
    return np.broadcast_to(row, (h, 3 * w)).copy().reshape(h, w, 3)
