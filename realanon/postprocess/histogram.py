"""Pure histogram functions: colour spaces, CDF matching, differentiable histograms, 1-D EMD.

Two families live here:

* NumPy functions on ``uint8`` pixels, used by the ad-hoc matcher and by the measurements:
  :func:`to_color_space` / :func:`from_color_space`, :func:`matching_lut`,
  :func:`histogram_1d` and :func:`histogram_distance`.
* Torch functions that keep gradients, used by the latent optimiser: :func:`soft_histogram`,
  :func:`wasserstein_1d` and :func:`histogram_channels`.

Every distance is the 1-D Wasserstein (earth mover's) distance between normalised histograms,
computed as the L1 difference of their CDFs and expressed as a fraction of the value range,
so it lies in [0, 1]: 0 for identical histograms, 1 for all mass moved from one end to the other.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
import torch

ColorSpace = Literal["rgb", "lab", "hsv"]
COLOR_SPACES: tuple[ColorSpace, ...] = ("rgb", "lab", "hsv")
# Channels each space matches. Hue is circular, so in HSV only saturation and value are matched.
MATCHED_CHANNELS: dict[str, tuple[int, ...]] = {"rgb": (0, 1, 2), "lab": (0, 1, 2), "hsv": (1, 2)}
# Differentiable channels the latent optimiser can compare, computed from RGB in [0, 1].
SOFT_CHANNELS = "rgbsvl"


def to_color_space(image: np.ndarray, space: ColorSpace) -> np.ndarray:
    """Converts an RGB ``(H, W, 3)`` uint8 image to ``space``, still ``uint8``.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        space: ``"rgb"`` (unchanged), ``"lab"`` (OpenCV's 8-bit CIELAB: L, a, b each in 0..255)
            or ``"hsv"`` (OpenCV's full-range HSV: H, S, V each in 0..255).

    Returns:
        ``(H, W, 3)`` uint8 array in the requested space.
    """
    if space == "rgb":
        return image
    if space == "lab":
        return cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    if space == "hsv":
        return cv2.cvtColor(image, cv2.COLOR_RGB2HSV_FULL)
    raise ValueError(f"colour space must be one of {COLOR_SPACES}, got {space!r}")


def from_color_space(image: np.ndarray, space: ColorSpace) -> np.ndarray:
    """Inverse of :func:`to_color_space`: ``(H, W, 3)`` uint8 in ``space`` -> uint8 RGB."""
    if space == "rgb":
        return image
    if space == "lab":
        return cv2.cvtColor(image, cv2.COLOR_LAB2RGB)
    if space == "hsv":
        return cv2.cvtColor(image, cv2.COLOR_HSV2RGB_FULL)
    raise ValueError(f"colour space must be one of {COLOR_SPACES}, got {space!r}")


def histogram_1d(values: np.ndarray, bins: int = 256) -> np.ndarray:
    """Normalised histogram of uint8 values.

    Args:
        values: Any-shaped uint8 array.
        bins: Number of equal bins over 0..255.

    Returns:
        ``(bins,)`` float64 summing to 1 (all zeros when ``values`` is empty).
    """
    counts = np.bincount(values.ravel().astype(np.int64) * bins // 256, minlength=bins).astype(np.float64)
    total = counts.sum()
    return counts / total if total > 0 else counts


def emd_1d(p: np.ndarray, q: np.ndarray) -> float:
    """1-D Wasserstein distance between two ``(B,)`` normalised histograms, in [0, 1]."""
    return float(np.abs(np.cumsum(p) - np.cumsum(q)).sum() / max(len(p) - 1, 1))


def histogram_distance(
    source: np.ndarray, reference: np.ndarray, space: ColorSpace = "lab", channels: tuple[int, ...] | None = None
) -> float:
    """Mean per-channel EMD between the colour distributions of two pixel sets.

    Args:
        source: ``(n, 3)`` uint8 RGB pixels (e.g. ``crop[mask]``).
        reference: ``(m, 3)`` uint8 RGB pixels.
        space: Colour space the histograms are taken in.
        channels: Channels of ``space`` to compare; defaults to :data:`MATCHED_CHANNELS`.

    Returns:
        Mean EMD in [0, 1]; NaN when either set is empty.
    """
    if len(source) == 0 or len(reference) == 0:
        return float("nan")
    src = to_color_space(source.reshape(-1, 1, 3), space).reshape(-1, 3)
    ref = to_color_space(reference.reshape(-1, 1, 3), space).reshape(-1, 3)
    channels = MATCHED_CHANNELS[space] if channels is None else channels
    return float(np.mean([emd_1d(histogram_1d(src[:, c]), histogram_1d(ref[:, c])) for c in channels]))


def matching_lut(source: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Look-up table mapping ``source`` values so their histogram matches ``reference``'s.

    Classic CDF matching: each source level goes to the reference level at the same quantile.

    Args:
        source: 1-D uint8 values to be remapped (non-empty).
        reference: 1-D uint8 values whose distribution is the target (non-empty).

    Returns:
        ``(256,)`` float64 table with values in [0, 255]; monotone non-decreasing.
    """
    src_hist, ref_hist = histogram_1d(source), histogram_1d(reference)
    # Mid-step quantile of each source level, then the reference level at that quantile,
    # interpolating between the reference levels that occur (their mid-quantiles increase strictly).
    src_quantile = np.cumsum(src_hist) - 0.5 * src_hist
    occupied = ref_hist > 0
    ref_quantile = (np.cumsum(ref_hist) - 0.5 * ref_hist)[occupied]
    return np.interp(src_quantile, ref_quantile, np.arange(256, dtype=np.float64)[occupied])


def match_pixels(
    image: np.ndarray,
    source_mask: np.ndarray,
    reference: np.ndarray,
    space: ColorSpace,
) -> np.ndarray:
    """Remaps every pixel of ``image`` so the pixels under ``source_mask`` match ``reference``.

    Args:
        image: ``(h, w, 3)`` uint8 RGB whose colours are remapped.
        source_mask: ``(h, w)`` bool, the pixels whose histogram is measured (non-empty).
        reference: ``(m, 3)`` uint8 RGB pixels whose histogram is the target (non-empty).
        space: Colour space the per-channel matching happens in.

    Returns:
        ``(h, w, 3)`` float32 RGB in [0, 255], before any blending or rounding.
    """
    converted = to_color_space(image, space)
    ref = to_color_space(reference.reshape(-1, 1, 3), space).reshape(-1, 3)
    matched = converted.copy()
    for c in MATCHED_CHANNELS[space]:
        lut = matching_lut(converted[..., c][source_mask], ref[:, c])
        matched[..., c] = np.clip(np.rint(lut), 0, 255).astype(np.uint8)[converted[..., c]]
    return from_color_space(matched, space).astype(np.float32)


def histogram_channels(images: torch.Tensor, channels: str = "sv") -> torch.Tensor:
    """Differentiable per-pixel channels of RGB images, each in [0, 1].

    Args:
        images: ``(N, 3, H, W)`` float RGB in [0, 1].
        channels: Letters from ``"rgbsvl"``: red, green, blue, HSV saturation, HSV value,
            and Rec. 601 luma.

    Returns:
        ``(N, len(channels), H, W)`` float tensor in [0, 1].
    """
    bad = sorted(set(channels) - set(SOFT_CHANNELS))
    if bad or not channels:
        raise ValueError(f"channels must be letters of {SOFT_CHANNELS!r}, got {channels!r}")
    value = images.amax(dim=1)
    features = {
        "r": images[:, 0],
        "g": images[:, 1],
        "b": images[:, 2],
        "v": value,
        "s": (value - images.amin(dim=1)) / value.clamp_min(1e-3),
        "l": 0.299 * images[:, 0] + 0.587 * images[:, 1] + 0.114 * images[:, 2],
    }
    return torch.stack([features[c] for c in channels], dim=1).clamp(0.0, 1.0)


def soft_histogram(
    values: torch.Tensor, weights: torch.Tensor, bins: int = 64, bandwidth: float | None = None
) -> torch.Tensor:
    """Weighted Gaussian kernel-density histogram, differentiable in ``values`` and ``weights``.

    Args:
        values: ``(N, C, P)`` float in [0, 1].
        weights: ``(N, 1, P)`` or ``(N, C, P)`` non-negative float (e.g. a soft mask).
        bins: Number of bins; bin centres at ``(k + 0.5) / bins``.
        bandwidth: Gaussian sigma in value units; defaults to half a bin width.

    Returns:
        ``(N, C, bins)`` float tensor; each histogram sums to 1 (uniform when all weights are 0).
    """
    sigma = bandwidth if bandwidth is not None else 0.5 / bins
    centres = (torch.arange(bins, device=values.device, dtype=values.dtype) + 0.5) / bins
    # (N, C, P, 1) - (bins,) -> (N, C, P, bins); memory is N*C*P*bins, so callers downsample first.
    kernel = torch.exp(-0.5 * ((values.unsqueeze(-1) - centres) / sigma) ** 2)
    density = (kernel * weights.unsqueeze(-1)).sum(dim=2) + 1e-8
    return density / density.sum(dim=-1, keepdim=True)


def wasserstein_1d(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """1-D Wasserstein distance between normalised histograms, in [0, 1].

    Args:
        p: ``(..., B)`` histograms summing to 1 over the last dimension.
        q: Same shape as ``p``.

    Returns:
        ``(...)`` tensor: L1 distance of the CDFs divided by ``B - 1`` (the value range in bins).
    """
    if p.shape != q.shape:
        raise ValueError(f"histogram shapes differ: {tuple(p.shape)} vs {tuple(q.shape)}")
    return (p.cumsum(-1) - q.cumsum(-1)).abs().sum(-1) / max(p.shape[-1] - 1, 1)


def quantile_function(values: torch.Tensor, levels: int = 256) -> torch.Tensor:
    """Each channel's values at the mid-quantiles ``(k + 0.5) / levels``.

    Args:
        values: ``(C, P)`` float, ``P >= 1``.
        levels: Number of quantiles kept.

    Returns:
        ``(C, levels)`` non-decreasing along the last dimension.
    """
    q = (torch.arange(levels, device=values.device, dtype=values.dtype) + 0.5) / levels
    return torch.quantile(values, q, dim=1).T.contiguous()


def quantile_distance(values: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Exact 1-D Wasserstein distance between each channel's values and a target quantile function.

    The values are sorted, and the ``i``-th of ``P`` is compared with the target at the same
    quantile ``(i + 0.5) / P`` (linear interpolation between the target's levels), which is
    the 1-D optimal transport. Differentiable in ``values`` (through the sort), unlike binned
    histograms it gives every pixel a gradient towards where its rank should sit.

    Args:
        values: ``(C, P)`` float in [0, 1], ``P >= 1``.
        target: ``(C, Q)`` from :func:`quantile_function` of the reference values.

    Returns:
        ``(C,)`` mean absolute difference, in the values' units (for [0, 1] values: in [0, 1]).
    """
    if values.shape[0] != target.shape[0] or values.shape[1] < 1:
        raise ValueError(f"values {tuple(values.shape)} and target {tuple(target.shape)} do not fit")
    ordered, _ = values.sort(dim=1)
    count, levels = ordered.shape[1], target.shape[1]
    at = (torch.arange(count, device=values.device, dtype=values.dtype) + 0.5) / count * levels - 0.5
    at = at.clamp(0, levels - 1)
    low = at.floor().long()
    high = (low + 1).clamp(max=levels - 1)
    frac = at - low
    expected = target[:, low] * (1 - frac) + target[:, high] * frac
    return (ordered - expected).abs().mean(dim=1)
