"""Pasting generated crops back into the frame.

The cost of a paste follows the pixels that change: each region is blended only inside the
bounding box of its replace-mask (clipped to the frame), with OpenCV's vectorised integer
arithmetic, so a face filling the frame costs a few passes over its own pixels and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from realanon.regions import clip_box
from realanon.structures import Region, image_size


def blend_uint8(fg: np.ndarray, bg: np.ndarray, alpha_u8: np.ndarray) -> np.ndarray:
    """``round((fg * a + bg * (255 - a)) / 255)`` per pixel and channel, in integers.

    Args:
        fg: ``(h, w, 3)`` uint8 foreground (the generated pixels).
        bg: ``(h, w, 3)`` uint8 background (the frame).
        alpha_u8: ``(h, w)`` uint8 weight of ``fg``; 0 gives ``bg`` exactly, 255 gives ``fg`` exactly.

    Returns:
        A new ``(h, w, 3)`` uint8 array, within 1 level of the float blend with ``alpha_u8 / 255``.
    """
    a3 = cv2.merge((alpha_u8, alpha_u8, alpha_u8))
    # fg * a + bg * (255 - a) <= 255 * 255 fits in uint16.
    total = cv2.multiply(fg, a3, dtype=cv2.CV_16U)
    cv2.add(total, cv2.multiply(bg, cv2.bitwise_not(a3), dtype=cv2.CV_16U), dst=total)
    return cv2.convertScaleAbs(total, alpha=1.0 / 255.0)


def paste_regions(image: np.ndarray, regions: Sequence[Region], generated: Sequence[np.ndarray]) -> np.ndarray:
    """Blends each generated crop into a copy of ``image`` through its region's blend mask.

    Only pixels inside a replace-mask change; every other pixel is bit-identical to ``image``.
    Regions are pasted in order of increasing detection score (ties in the given order), so where
    two overlap the more confident detection wins: each crop is generated (and a face's privacy
    checked) on the original pixels around it, and a doubtful detection over the top of a real
    face must not paint over that face's replacement. Each pixel is within
    one level of ``rint(alpha * crop + (1 - alpha) * frame)`` (the blend mask holds alpha in 1/255 steps).

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
    for index in sorted(range(len(regions)), key=lambda i: regions[i].detection.score):
        region, crop = regions[index], generated[index]
        if crop.shape[:2] != region.crop_size:
            raise ValueError(f"generated crop {crop.shape[:2]} does not match region {region.crop_size}")
        paste_one(out, region, np.asarray(crop, dtype=np.uint8), size)
    return out


def paste_one(out: np.ndarray, region: Region, crop: np.ndarray, size: tuple[int, int]) -> None:
    """Blends one crop into ``out`` in place, inside the bounding box of the region's replace-mask."""
    x1, y1, _, _ = region.crop_box_xyxy
    cx1, cy1, cx2, cy2 = clip_box(region.crop_box_xyxy, size)
    if cx2 <= cx1 or cy2 <= cy1:
        return
    inner_mask = np.asarray(region.replace_mask, dtype=bool)[cy1 - y1 : cy2 - y1, cx1 - x1 : cx2 - x1]
    bx, by, bw, bh = cv2.boundingRect(inner_mask.view(np.uint8))
    if bw == 0 or bh == 0:
        return
    # Box of changed pixels, in crop coordinates (rows, cols) and in frame coordinates.
    ry, rx = cy1 - y1 + by, cx1 - x1 + bx
    in_crop = (slice(ry, ry + bh), slice(rx, rx + bw))
    target = out[cy1 + by : cy1 + by + bh, cx1 + bx : cx1 + bx + bw]
    blended = blend_uint8(crop[in_crop], target, region.blend_mask[in_crop])
    # The blend already leaves alpha-0 pixels unchanged; copying through the mask guarantees it.
    # cv2.copyTo writes into the view of ``out`` (far faster than numpy's masked copy).
    box_mask = inner_mask[by : by + bh, bx : bx + bw]
    if cv2.copyTo(blended, box_mask.view(np.uint8), target) is not target:  # not written in place
        np.copyto(target, blended, where=box_mask[..., None])


def mask_entire_frame(image: np.ndarray, color: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """The fail-closed frame: every pixel set to ``color``."""
    h, w = image.shape[:2]
    row = np.tile(np.asarray(color, dtype=np.uint8), w)  # row by row: far faster than pixel by pixel
    return np.broadcast_to(row, (h, 3 * w)).copy().reshape(image.shape)
