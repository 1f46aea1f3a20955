"""Filling a person's replace-mask with the scene behind them, from the pixels outside the mask only.

Used by the body donor generator under the donor: wherever the donor does not cover the
target's silhouette, the scene shows, never the target.
"""

from __future__ import annotations

import cv2
import numpy as np

# The smooth fill is inpainted on a copy with this long side (speed; it is smooth anyway).
_FILL_SIDE = 160


def fill_background(crop: np.ndarray, mask: np.ndarray, scene: np.ndarray, seed: int) -> np.ndarray:
    """``(h, w, 3)`` float32 background for the masked area, from the pixels outside it only.

    The mirrored scene (:func:`mirror_fill`), its columns lightly smoothed so rows do not streak,
    over a smooth inpainting that fills whatever no row could reach; grain where the inpainting shows.
    """
    smooth = add_grain(inpaint_background(crop, mask), crop, scene, seed)
    mirrored, done = mirror_fill(crop, mask)
    mirrored = cv2.GaussianBlur(mirrored, (1, 5), 0)
    weight = cv2.GaussianBlur(done.astype(np.float32), (1, 5), 0)
    # Where a neighbouring row had no source the blur diluted the fill: renormalise, fall back to smooth.
    mirrored = mirrored / np.maximum(weight, 1e-3)[..., None]
    ok = (weight > 0.5)[..., None]
    return np.where(ok, mirrored, smooth).astype(np.float32)


def mirror_fill(crop: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The masked pixels of each row filled with the scene mirrored in from both sides of the hole.

    A person stands on ground and before a background that usually continue left and right of
    them, so the texture beside the hole, reflected across its edge, continues it without a seam;
    the two reflections are cross-faded across the hole. Only pixels outside ``mask`` are read.

    Args:
        crop: ``(h, w, 3)`` uint8 RGB.
        mask: ``(h, w)`` bool hole.

    Returns:
        ``(h, w, 3)`` float32 fill and ``(h, w)`` bool, True where it could be filled (a source
        pixel on at least one side).
    """
    h, w = mask.shape
    out = crop.astype(np.float32)
    out[mask] = 0.0
    done = ~mask
    for y in np.flatnonzero(mask.any(axis=1)):
        row = mask[y].astype(np.int8)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], row, [0]])))
        for a, b in zip(edges[::2], edges[1::2]):
            xs = np.arange(a, b)
            left, right = 2 * a - 1 - xs, 2 * b - 1 - xs
            ok_l = (left >= 0) & ~mask[y, np.clip(left, 0, w - 1)]
            ok_r = (right < w) & ~mask[y, np.clip(right, 0, w - 1)]
            w_l = np.where(ok_l, (b - 0.5 - xs) / (b - a), 0.0)
            w_r = np.where(ok_r, (xs + 0.5 - a) / (b - a), 0.0)
            total = w_l + w_r
            got = total > 0
            src_l = crop[y, np.clip(left, 0, w - 1)].astype(np.float32)
            src_r = crop[y, np.clip(right, 0, w - 1)].astype(np.float32)
            mixed = (w_l[:, None] * src_l + w_r[:, None] * src_r) / np.maximum(total, 1e-6)[:, None]
            out[y, xs[got]] = mixed[got]
            done[y, xs[got]] = True
    return out, done


def inpaint_background(crop: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(h, w, 3)`` float32: the masked area filled from the pixels outside it (none of its own)."""
    h, w = crop.shape[:2]
    scale = min(1.0, _FILL_SIDE / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    hole = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    hole = cv2.dilate(hole, np.ones((3, 3), np.uint8))
    small = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    small[hole > 0] = 0  # the target's own pixels never reach the fill
    filled = cv2.inpaint(small, hole, 3, cv2.INPAINT_TELEA) if hole.any() and not hole.all() else small
    if hole.all():
        filled = np.full_like(small, 128)
    filled = cv2.GaussianBlur(filled, (0, 0), 0.7)
    return cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)


def add_grain(filled: np.ndarray, crop: np.ndarray, scene_mask: np.ndarray, seed: int) -> np.ndarray:
    """``filled`` with luminance grain as strong as the scene's fine texture, so the fill is not a smooth smear.

    Args:
        filled: ``(h, w, 3)`` float32 inpainted background.
        crop: ``(h, w, 3)`` uint8 RGB crop.
        scene_mask: ``(h, w)`` bool, the scene pixels the texture is measured on.
        seed: Seeds the grain (same seed, same output).
    """
    if scene_mask.sum() < 16:
        return filled
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
    residual = (gray - cv2.GaussianBlur(gray, (0, 0), 1.5))[scene_mask]
    # Median absolute deviation: the texture of flat ground, not the edges of things around it.
    strength = 1.4826 * float(np.median(np.abs(residual - np.median(residual))))
    noise = cv2.GaussianBlur(np.random.default_rng(seed).standard_normal(gray.shape).astype(np.float32), (0, 0), 0.6)
    noise = noise * (strength / max(float(noise.std()), 1e-6))
    return filled + noise[..., None]
