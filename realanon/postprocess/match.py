"""Ad-hoc histogram matching of each generated region to its surrounding context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from realanon.errors import ConfigError
from realanon.postprocess.histogram import COLOR_SPACES, ColorSpace, match_pixels
from realanon.regions import feather_mask
from realanon.registry import register_postprocessor
from realanon.structures import GenerationBatch

Reference = Literal["ring", "rings", "frame"]
REFERENCES: tuple[Reference, ...] = ("ring", "rings", "frame")
# The whole-frame reference is subsampled to about this many pixels: histograms need no more.
_FRAME_SAMPLES = 200_000


def context_pixels(batch: GenerationBatch, index: int, reference: Reference) -> np.ndarray:
    """The RGB pixels a region's histogram is matched to.

    Args:
        batch: The generation batch; its crops hold the original frame pixels.
        index: Which region.
        reference: ``"ring"``: the pixels of this region's crop outside its replace-mask (the
            context ring around it). ``"rings"``: the rings of every region of the batch pooled.
            ``"frame"``: the whole frame the region was cropped from (``batch.frames``),
            subsampled to about 200k pixels.

    Returns:
        ``(m, 3)`` uint8 RGB pixels (possibly empty).

    Raises:
        ValueError: for ``"frame"`` when the batch carries no frames.
    """
    if reference == "frame":
        if not batch.frames:
            raise ValueError("reference='frame' needs GenerationBatch.frames; this batch has none")
        pixels = batch.frames[index].reshape(-1, 3)
        return pixels[:: max(1, len(pixels) // _FRAME_SAMPLES)]
    indices = range(len(batch)) if reference == "rings" else (index,)
    parts = [batch.crops[i][~batch.replace_masks[i]] for i in indices]
    return np.concatenate(parts, axis=0) if parts else np.zeros((0, 3), np.uint8)


@register_postprocessor("match")
@dataclass(frozen=True)
class HistogramMatch:
    """Matches the colour histogram of each generated region to its context.

    Per channel of the chosen colour space, the generated pixels inside the replace-mask are
    remapped by CDF matching to the context's distribution, then blended with the generated
    crop through ``strength`` times a feathered copy of the replace-mask. Pixels outside the
    mask are returned unchanged, and the result is a pure function of its inputs.

    Args:
        reference: ``"ring"`` (default), ``"rings"`` or ``"frame"``; see :func:`context_pixels`.
        color_space: ``"lab"`` (default), ``"rgb"`` or ``"hsv"`` (saturation and value only).
        strength: Blend weight of the matched colours in [0, 1]; 0 is a no-op.
        feather: Width of the blend's soft edge as a fraction of the region's short side.
        min_pixels: Regions with fewer context or region pixels than this are left unchanged.
    """

    reference: Reference = "ring"
    color_space: ColorSpace = "lab"
    strength: float = 1.0
    feather: float = 0.05
    min_pixels: int = 64

    def __post_init__(self) -> None:
        if self.reference not in REFERENCES:
            raise ConfigError(f"match reference must be one of {REFERENCES}, got {self.reference!r}")
        if self.color_space not in COLOR_SPACES:
            raise ConfigError(f"match color_space must be one of {COLOR_SPACES}, got {self.color_space!r}")
        if not 0.0 <= self.strength <= 1.0:
            raise ConfigError(f"match strength must be in [0, 1], got {self.strength}")
        if not 0.0 <= self.feather <= 0.5:
            raise ConfigError(f"match feather must be in [0, 0.5], got {self.feather}")

    def __call__(self, batch: GenerationBatch, generated: list[np.ndarray]) -> list[np.ndarray]:
        """Returns one ``(h_i, w_i, 3)`` uint8 crop per region, colour-matched inside its mask."""
        if len(generated) != len(batch):
            raise ValueError(f"got {len(generated)} generated crops for {len(batch)} regions")
        return [self.match_one(batch, i, crop) for i, crop in enumerate(generated)]

    def match_one(self, batch: GenerationBatch, index: int, crop: np.ndarray) -> np.ndarray:
        """Matches one generated crop; see the class docstring."""
        mask = batch.replace_masks[index]
        reference = context_pixels(batch, index, self.reference)
        if self.strength == 0 or mask.sum() < self.min_pixels or len(reference) < self.min_pixels:
            return crop
        matched = match_pixels(crop, mask, reference, self.color_space)
        ys, xs = np.nonzero(mask)
        short_side = min(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1)
        alpha = (self.strength * feather_mask(mask, self.feather * short_side))[..., None]
        blended = crop.astype(np.float32) * (1.0 - alpha) + matched * alpha
        out = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
        out[~mask] = crop[~mask]  # bit-identical outside the mask, whatever the rounding did
        return out
