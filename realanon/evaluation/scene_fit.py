"""Does a replaced face belong to its picture? Small pure metrics over images and masks.

* :func:`ring_colour_distance`: how far the face box's saturation and brightness are from the
  ring around it (compare an anonymized image's value with the original's);
* :func:`border_edge_ratio`: edge strength on the border of the changed pixels, anonymized over
  original (a smeared halo scores below 1, a pasted sticker above);
* :func:`twin_share` and :func:`close_share`: identity descriptors closer than a threshold.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

BAND_PX = 5  # width of the band along the border of the changed pixels


def _box_and_ring(size_hw: tuple[int, int], box_xyxy: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the box and of the ring (the box doubled about its centre, minus the box), in the image."""
    h, w = size_hw
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    cx, cy, bw, bh = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1

    def rect(ax1: float, ay1: float, ax2: float, ay2: float) -> np.ndarray:
        m = np.zeros((h, w), dtype=bool)
        m[max(round(ay1), 0): max(round(ay2), 0), max(round(ax1), 0): max(round(ax2), 0)] = True
        return m

    inner = rect(x1, y1, x2, y2)
    return inner, rect(cx - bw, cy - bh, cx + bw, cy + bh) & ~inner


def wasserstein_levels(a: np.ndarray, b: np.ndarray) -> float:
    """1-D Wasserstein distance between two samples of uint8 levels (in levels, 0..255)."""
    if a.size == 0 or b.size == 0:
        return float("nan")
    ca = np.cumsum(np.bincount(a.ravel(), minlength=256)) / a.size
    cb = np.cumsum(np.bincount(b.ravel(), minlength=256)) / b.size
    return float(np.abs(ca - cb).sum())


def ring_colour_distance(image_rgb: np.ndarray, box_xyxy: Sequence[float]) -> tuple[float, float]:
    """HSV saturation and value Wasserstein distances between a face box and the ring around it.

    Args:
        image_rgb: ``(H, W, 3)`` uint8 RGB.
        box_xyxy: Face box in pixels; the ring is the box grown to twice its size minus the box
            (clipped to the image).

    Returns:
        ``(distance_S, distance_V)`` in levels (0..255); NaN when the box or ring is empty.
    """
    inner, ring = _box_and_ring((image_rgb.shape[0], image_rgb.shape[1]), box_xyxy)
    hsv = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2HSV)
    return (wasserstein_levels(hsv[..., 1][inner], hsv[..., 1][ring]),
            wasserstein_levels(hsv[..., 2][inner], hsv[..., 2][ring]))


def border_band(changed: np.ndarray, band_px: int = BAND_PX) -> np.ndarray:
    """``(H, W)`` bool band ``band_px`` wide centred on the border of the ``changed`` pixels."""
    outer, inner = band_px // 2, band_px - band_px // 2
    m = changed.astype(np.uint8)
    grown = cv2.dilate(m, np.ones((2 * outer + 1, 2 * outer + 1), np.uint8))
    shrunk = cv2.erode(np.pad(m, 1, constant_values=0), np.ones((2 * inner + 1, 2 * inner + 1), np.uint8))[1:-1, 1:-1]
    return np.asarray((grown > 0) & (shrunk == 0))


def sobel_magnitude(image_rgb: np.ndarray) -> np.ndarray:
    """``(H, W)`` float32 gradient magnitude (3x3 Sobel) of the grey image."""
    grey = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    return np.asarray(np.hypot(gx, gy), dtype=np.float32)


def border_edge_ratio(anonymized_rgb: np.ndarray, original_rgb: np.ndarray, changed: np.ndarray,
                      band_px: int = BAND_PX) -> float:
    """Mean Sobel magnitude of the anonymized image over the original's on the changed region's border.

    Args:
        anonymized_rgb: ``(H, W, 3)`` uint8.
        original_rgb: ``(H, W, 3)`` uint8.
        changed: ``(H, W)`` bool pixels the method changed (e.g. ``any(anonymized != original)``).
        band_px: Band width in pixels, centred on the border.

    Returns:
        The ratio (1 = the border carries the original's edge strength); NaN when nothing changed
        or the original is flat there.
    """
    band = border_band(changed, band_px)
    if not band.any():
        return float("nan")
    reference = float(sobel_magnitude(original_rgb)[band].mean())
    if reference < 1e-6:
        return float("nan")
    return float(sobel_magnitude(anonymized_rgb)[band].mean()) / reference


def changed_pixels(anonymized_rgb: np.ndarray, original_rgb: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool: pixels where any channel differs."""
    return np.asarray((anonymized_rgb != original_rgb).any(axis=2))


def twin_share(descriptors: np.ndarray, threshold: float = 0.6) -> float:
    """Share of pairs among ``(N, D)`` descriptors closer than ``threshold`` (NaN for N < 2)."""
    d = np.asarray(descriptors, dtype=np.float64)
    if len(d) < 2:
        return float("nan")
    dist = np.linalg.norm(d[:, None] - d[None], axis=2)
    pairs = dist[np.triu_indices(len(d), k=1)]
    return float((pairs < threshold).mean())


def close_share(replaced: np.ndarray, scene: np.ndarray, threshold: float = 0.6) -> float:
    """Share of ``(N, D)`` replaced-face descriptors closer than ``threshold`` to any of ``(M, D)``
    descriptors of the scene's original faces (NaN when either is empty)."""
    r, s = np.asarray(replaced, dtype=np.float64), np.asarray(scene, dtype=np.float64)
    if len(r) == 0 or len(s) == 0:
        return float("nan")
    nearest = np.linalg.norm(r[:, None] - s[None], axis=2).min(axis=1)
    return float((nearest < threshold).mean())
