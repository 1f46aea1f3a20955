"""Gaussian blur baseline, strength relative to the region size."""

from __future__ import annotations

import functools
import math
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
        """The crop with the bounding box of ``mask`` blurred; only that box is computed."""
        box = mask_bbox(mask)
        x1, y1, x2, y2 = box
        sigma = max(1.0, self.strength * min(x2 - x1, y2 - y1))
        out = crop.copy()
        out[y1:y2, x1:x2] = blur_box(crop, box, sigma)
        return out


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """``image`` blurred by a Gaussian of ``sigma`` pixels, edges replicated.

    The same separable kernel as ``cv2.GaussianBlur`` on uint8 (radius 3 sigma), applied in
    floating point by ``cv2.sepFilter2D``: within 1 level of the exact blur (2 of
    ``cv2.GaussianBlur``'s fixed-point uint8 path; ``tests/test_composite.py``), and much faster than
    that path on small windows, which a crowd's dozens of faces per frame are (the stage table in
    ``docs/benchmarks.md``).
    """
    kernel = _gaussian_kernel(int(sigma * 6 + 1.5) | 1, float(sigma))
    return cv2.sepFilter2D(image, -1, kernel, kernel, borderType=cv2.BORDER_REPLICATE)


@functools.lru_cache(maxsize=256)
def _gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    return cv2.getGaussianKernel(size, sigma)


def blur_box(image: np.ndarray, box_xyxy: tuple[int, int, int, int], sigma: float) -> np.ndarray:
    """The pixels of ``box_xyxy`` of ``image`` blurred with a Gaussian of ``sigma``.

    Only a window around the box is computed: the box plus the kernel's reach. Up to
    ``_MAX_DIRECT_SIGMA`` it equals the same box cut from the blur of the whole image (edges
    replicated). Above it the image is shrunk by the integer factor ``k = ceil(sigma /
    _MAX_DIRECT_SIGMA)`` (area averaging of k x k blocks, counted from the image's top-left
    corner; the image's right and bottom edges replicated to whole blocks), blurred at ``sigma /
    k`` and scaled back up by ``k`` (bilinear): the same look as blurring at full size, at a cost
    that does not grow with sigma. Because the factor is an integer, the window's blocks are the
    whole image's blocks and the result equals that of shrinking the whole image.

    Args:
        image: ``(h, w, 3)`` uint8.
        box_xyxy: Integer box inside ``image``.
        sigma: Gaussian sigma in pixels of ``image``.

    Returns:
        ``(y2 - y1, x2 - x1, 3)`` uint8.
    """
    x1, y1, x2, y2 = box_xyxy
    h, w = image.shape[:2]
    if sigma <= _MAX_DIRECT_SIGMA:
        reach = int(math.ceil(4 * sigma)) + 1  # beyond OpenCV's kernel radius (3 sigma for uint8)
        wx1, wy1, wx2, wy2 = max(0, x1 - reach), max(0, y1 - reach), min(w, x2 + reach), min(h, y2 + reach)
        window = gaussian_blur(image[wy1:wy2, wx1:wx2], sigma)
        return window[y1 - wy1 : y2 - wy1, x1 - wx1 : x2 - wx1]
    k = int(math.ceil(sigma / _MAX_DIRECT_SIGMA))
    small_sigma = sigma / k
    # Window in whole blocks: the box, the small kernel's radius (3 sigma) and one block for the
    # bilinear upscale, clipped to the image's blocks.
    reach = int(math.ceil(3 * small_sigma)) + 2
    blocks_x, blocks_y = -(-w // k), -(-h // k)
    bx1, by1 = max(0, x1 // k - reach), max(0, y1 // k - reach)
    bx2, by2 = min(blocks_x, -(-x2 // k) + reach), min(blocks_y, -(-y2 // k) + reach)
    window = image[by1 * k : by2 * k, bx1 * k : bx2 * k]
    short_y, short_x = (by2 - by1) * k - window.shape[0], (bx2 - bx1) * k - window.shape[1]
    if short_y or short_x:  # the image's last blocks are partial: replicate its edge
        window = cv2.copyMakeBorder(window, 0, short_y, 0, short_x, cv2.BORDER_REPLICATE)
    small = cv2.resize(window, (bx2 - bx1, by2 - by1), interpolation=cv2.INTER_AREA)
    small = gaussian_blur(small, small_sigma)
    # Only the blocks under the box and one more on each side are scaled up (the bilinear
    # weights of a box pixel reach one block beyond it): upscaling by exactly k maps pixel
    # (x + 0.5) / k - 0.5 as the whole image would; where the kept blocks end at the image's
    # last blocks, the edge replicates as the whole image's does.
    ux1, uy1 = max(bx1, x1 // k - 1), max(by1, y1 // k - 1)
    ux2, uy2 = min(bx2, -(-x2 // k) + 1), min(by2, -(-y2 // k) + 1)
    part = small[uy1 - by1 : uy2 - by1, ux1 - bx1 : ux2 - bx1]
    big = cv2.resize(part, ((ux2 - ux1) * k, (uy2 - uy1) * k), interpolation=cv2.INTER_LINEAR)
    return big[y1 - uy1 * k : y2 - uy1 * k, x1 - ux1 * k : x2 - ux1 * k]
