"""Small helpers shared by the baseline generators."""

from __future__ import annotations

import cv2
import numpy as np


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """``(x1, y1, x2, y2)`` of the True pixels of a 2-D mask; the whole array when empty."""
    x, y, w, h = cv2.boundingRect(np.ascontiguousarray(mask, dtype=bool).view(np.uint8))
    if w == 0 or h == 0:
        return (0, 0, mask.shape[1], mask.shape[0])
    return (x, y, x + w, y + h)
