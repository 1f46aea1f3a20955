"""Histogram matching by optimising a generator's latents.

Instead of recolouring pixels after the fact, the latent of every region is nudged (Adam) so
that what the generator synthesises has saturation/value distributions close to those of the
region's context ring. The output stays on the generator's manifold, so shading and texture
remain plausible. Works with any :class:`LatentGenerator`; how far it can move depends on
the latent the generator exposes (``gan`` exposes its per-layer styles by default).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from realanon.errors import ConfigError
from realanon.interfaces import LatentGenerator
from realanon.postprocess.histogram import (
    SOFT_CHANNELS,
    histogram_channels,
    quantile_distance,
    quantile_function,
    soft_histogram,
    wasserstein_1d,
)
from realanon.registry import register_postprocessor
from realanon.structures import GenerationBatch

LossName = Literal["quantile", "histogram"]
LOSSES: tuple[LossName, ...] = ("quantile", "histogram")
# Quantiles kept of every context ring (its target distribution).
QUANTILE_LEVELS = 256
# Further starting draws get seeds this far apart (a 64-bit odd constant, so they never collide).
_START_STRIDE = 0x9E3779B97F4A7C15


@dataclass(frozen=True)
class LatentOptions:
    """How the latents are optimised.

    Attributes:
        steps: Maximum number of Adam updates (the step budget); 0 disables optimisation.
        lr: Adam learning rate, in latent units.
        channels: Channels compared, letters of ``"rgbsvl"`` (default HSV saturation and value).
        loss: ``"quantile"`` (default): exact 1-D Wasserstein distance between the sorted
            synthesised values and the ring's quantiles. ``"histogram"``: the same distance
            between Gaussian soft histograms (``bins``, ``resolution``), the earlier loss.
        bins: Bins of the soft histograms (``loss="histogram"``).
        resolution: ``loss="histogram"``: images and masks are area-resized to this square size
            (memory is ``N * channels * resolution**2 * bins`` floats).
        patience: Stop after this many consecutive updates that improve the best total
            objective by less than ``min_improvement`` (relative).
        min_improvement: Relative improvement that counts as progress for early stopping.
        latent_penalty: Weight of ``mean((z - z_start)**2)`` per region, a prior keeping latents
            near their draw (for ``gan``'s standardised styles: in squared standard deviations).
        starts: Starting draws per region (its seed, then derived seeds); each region starts
            from the draw with the lowest distance. 1 keeps the region's own draw.
        structure_penalty: Weight of ``1 - corr`` between the high-pass luma of the synthesis
            and of the starting synthesis inside the mask: keeps the generator's shapes and
            texture while colour, brightness and contrast move (0 disables it).
        hue_penalty: Weight of :func:`hue_loss` against the starting synthesis: keeps each
            pixel's hue while saturation and value move, so that matching ``"sv"`` does not paint
            hue blotches (0 disables it).
    """

    steps: int = 60
    lr: float = 0.05
    channels: str = "sv"
    loss: LossName = "quantile"
    bins: int = 32
    resolution: int = 48
    patience: int = 5
    min_improvement: float = 1e-3
    latent_penalty: float = 0.0
    starts: int = 1
    structure_penalty: float = 0.1
    hue_penalty: float = 0.5

    def __post_init__(self) -> None:
        if self.steps < 0 or self.patience < 1 or self.bins < 2 or self.resolution < 4 or self.starts < 1:
            raise ConfigError("latent options need steps >= 0, patience >= 1, bins >= 2, resolution >= 4, starts >= 1")
        if self.lr <= 0 or min(self.min_improvement, self.latent_penalty, self.structure_penalty, self.hue_penalty) < 0:
            raise ConfigError(
                "latent options need lr > 0 and min_improvement, latent_penalty, structure_penalty, hue_penalty >= 0"
            )
        if not self.channels or set(self.channels) - set(SOFT_CHANNELS):
            raise ConfigError(f"latent channels must be letters of {SOFT_CHANNELS!r}, got {self.channels!r}")
        if self.loss not in LOSSES:
            raise ConfigError(f"latent loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")


@dataclass(frozen=True)
class LatentResult:
    """What :func:`optimize_latents` found.

    Attributes:
        images: ``(N, 3, S, S)`` float in [0, 1], each region's best synthesis (no grad).
        latents: ``(N, ...)`` the latents that produced ``images``.
        initial_distance: ``(N,)`` distance of the generator's own output (its seed's draw),
            in [0, 1] (mean over channels).
        distance: ``(N,)`` distance of ``images``.
        steps: Number of Adam updates run (at most ``LatentOptions.steps``).
    """

    images: torch.Tensor
    latents: torch.Tensor
    initial_distance: torch.Tensor
    distance: torch.Tensor
    steps: int


def context_histograms(batch: GenerationBatch, options: LatentOptions, device: torch.device) -> torch.Tensor:
    """Soft histograms of every region's context ring (crop pixels outside the replace-mask).

    Returns:
        ``(N, C, bins)`` float32 on ``device``; a region without context gets its whole crop's.
    """
    size = (options.resolution, options.resolution)
    images, weights = [], []
    for crop, mask in zip(batch.crops, batch.replace_masks, strict=True):
        images.append(cv2.resize(crop, size, interpolation=cv2.INTER_AREA))
        ring = cv2.resize((~mask).astype(np.float32), size, interpolation=cv2.INTER_AREA)
        weights.append(ring if ring.sum() > 0 else np.ones_like(ring))
    rgb = torch.from_numpy(np.stack(images)).to(device).permute(0, 3, 1, 2).float() / 255.0
    w = torch.from_numpy(np.stack(weights)).to(device).unsqueeze(1)
    return _histograms(rgb, w, options)


def context_quantiles(batch: GenerationBatch, channels: str, device: torch.device) -> list[torch.Tensor]:
    """Quantile function of every region's context ring, at the crop's own resolution.

    Returns:
        One ``(C, QUANTILE_LEVELS)`` float32 tensor per region on ``device``; a region without
        context gets its whole crop's.
    """
    out = []
    for crop, mask in zip(batch.crops, batch.replace_masks, strict=True):
        ring = crop[~mask] if (~mask).any() else crop.reshape(-1, 3)
        rgb = torch.from_numpy(ring.astype(np.float32) / 255.0).to(device).T[None, :, :, None]
        out.append(quantile_function(histogram_channels(rgb, channels)[0, :, :, 0], QUANTILE_LEVELS))
    return out


def region_histograms(images: torch.Tensor, masks: torch.Tensor, options: LatentOptions) -> torch.Tensor:
    """Differentiable soft histograms of the synthesised pixels.

    Args:
        images: ``(N, 3, S, S)`` float RGB in [0, 1].
        masks: ``(N, 1, S, S)`` float in [0, 1], 1 where pixels are synthesised.
        options: Channels, bins and histogram resolution.

    Returns:
        ``(N, C, bins)`` float32.
    """
    size = (options.resolution, options.resolution)
    rgb = F.interpolate(images.float(), size=size, mode="area")
    w = F.interpolate(masks.float(), size=size, mode="area")
    return _histograms(rgb, w, options)


def _histograms(rgb: torch.Tensor, weights: torch.Tensor, options: LatentOptions) -> torch.Tensor:
    values = histogram_channels(rgb, options.channels).flatten(2)
    return soft_histogram(values, weights.flatten(2), options.bins)


def region_distances(images: torch.Tensor, masks: torch.Tensor, target: Any, options: LatentOptions) -> torch.Tensor:
    """``(N,)`` distance of each synthesised region to its context (mean over channels), differentiable.

    Args:
        images: ``(N, 3, S, S)`` float RGB in [0, 1].
        masks: ``(N, 1, S, S)`` float in [0, 1], 1 where pixels are synthesised.
        target: :func:`context_quantiles` (``loss="quantile"``) or :func:`context_histograms`.
        options: The loss and its settings.
    """
    if options.loss == "histogram":
        return wasserstein_1d(region_histograms(images, masks, options), target).mean(dim=1)
    values = histogram_channels(images.float(), options.channels)
    out = []
    for i, quantiles in enumerate(target):
        inside = masks[i, 0] > 0.5
        inside = inside if bool(inside.any()) else masks[i, 0] > 0
        if not bool(inside.any()):  # nothing synthesised: nothing to match
            out.append(values.new_zeros(()))
            continue
        out.append(quantile_distance(values[i][:, inside], quantiles).mean())
    return torch.stack(out)


def high_pass_luma(images: torch.Tensor) -> torch.Tensor:
    """``(N, 1, S, S)`` Rec. 601 luma minus its 3x3 mean: the shapes and texture, not the tone."""
    luma = histogram_channels(images.float(), "l")
    return luma - F.avg_pool2d(luma, 3, stride=1, padding=1, count_include_pad=False)


def structure_loss(images: torch.Tensor, reference: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """``(N,)`` one minus the mask-weighted correlation of the high-pass luma of two syntheses.

    0 when ``images`` keeps ``reference``'s structure up to brightness and contrast, up to 2
    when it inverts it. Differentiable in ``images``.

    Args:
        images, reference: ``(N, 3, S, S)`` float RGB in [0, 1].
        masks: ``(N, 1, S, S)`` float in [0, 1], the synthesised pixels.
    """
    w = masks.float().flatten(1)
    a, b = high_pass_luma(images).flatten(1), high_pass_luma(reference).flatten(1)
    total = w.sum(dim=1).clamp_min(1e-6)
    a = a - (a * w).sum(dim=1, keepdim=True) / total[:, None]
    b = b - (b * w).sum(dim=1, keepdim=True) / total[:, None]
    cov = (w * a * b).sum(dim=1)
    norm = ((w * a * a).sum(dim=1) * (w * b * b).sum(dim=1)).clamp_min(1e-12).sqrt()
    return 1 - cov / norm


def hue_loss(images: torch.Tensor, reference: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """``(N,)`` mean length, inside the mask, of the chroma of ``images`` off ``reference``'s hue.

    Chroma is the opponent-colour vector ``(r - (g + b) / 2, (g - b) * sqrt(3) / 2)`` of each pixel.
    Chroma along the reference pixel's own hue costs nothing (saturating or desaturating is
    free); chroma at another hue (the opposite one included), or any colour where the reference
    is grey, costs its length. 0 when only saturation and value change. Differentiable in ``images``.
    """
    c, ref = _chroma(images), _chroma(reference)
    unit = ref / ref.norm(dim=1, keepdim=True).clamp_min(1e-4)
    along = (c * unit).sum(dim=1, keepdim=True).clamp_min(0) * unit
    off = (c - along).pow(2).sum(dim=1).add(1e-8).sqrt()
    w = masks[:, 0].float()
    return (w * off).flatten(1).sum(dim=1) / w.flatten(1).sum(dim=1).clamp_min(1e-6)


def _chroma(images: torch.Tensor) -> torch.Tensor:
    r, g, b = images.float().unbind(dim=1)
    return torch.stack((r - 0.5 * (g + b), 0.8660254 * (g - b)), dim=1)


def _targets(batch: GenerationBatch, options: LatentOptions, device: torch.device) -> Any:
    if options.loss == "histogram":
        return context_histograms(batch, options, device)
    return context_quantiles(batch, options.channels, device)


@torch.no_grad()
def starting_latents(
    generator: LatentGenerator, batch: GenerationBatch, own: torch.Tensor, target: Any, options: LatentOptions
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each region's start: the best of ``options.starts`` draws, its own draw ``own`` first.

    Returns:
        ``(latents, initial_distance)``: the chosen ``(N, ...)`` latents, and the ``(N,)``
        distance of the region's own draw (the generator's output without harmonization).
    """
    initial = region_distances(*generator.synthesize(batch, own), target, options)
    best, best_distance = own, initial
    for k in range(1, options.starts):
        seeds = tuple((s + k * _START_STRIDE) & ((1 << 63) - 1) for s in batch.seeds)
        latents = generator.init_latents(dataclasses.replace(batch, seeds=seeds))
        distance = region_distances(*generator.synthesize(batch, latents), target, options)
        better = distance < best_distance
        best = torch.where(_expand(better, latents), latents, best)
        best_distance = torch.where(better, distance, best_distance)
    return best, initial


def optimize_latents(generator: LatentGenerator, batch: GenerationBatch, options: LatentOptions) -> LatentResult:
    """Optimises every region's latent at once towards its context's distributions.

    The objective per region is its distance (:func:`region_distances`, mean over channels of
    the 1-D Wasserstein distance between the synthesised pixels and the context ring) plus
    ``latent_penalty * mean((z - z_start)**2)`` plus ``structure_penalty`` times the
    :func:`structure_loss` and ``hue_penalty`` times the :func:`hue_loss` against the starting synthesis. Each region keeps the synthesis with its
    lowest objective seen, so with one start the result is never worse than the generator's
    own output. Gradients are enabled only inside this function and only reach the latents
    (the generator's parameters never accumulate ``.grad``). Deterministic for a deterministic
    generator.
    """
    with torch.no_grad():
        own = generator.init_latents(batch)
    target = _targets(batch, options, own.device)
    start, initial = starting_latents(generator, batch, own, target, options)
    dtype, z0 = start.dtype, start.detach().float()
    with torch.no_grad():
        anchored = options.structure_penalty or options.hue_penalty
        reference = generator.synthesize(batch, start)[0].detach() if anchored else None
    latents = z0.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([latents], lr=options.lr)
    best: _Best | None = None
    steps, stalls = 0, 0
    with torch.enable_grad():
        while True:
            images, masks = generator.synthesize(batch, latents.to(dtype))
            distance = region_distances(images, masks, target, options)
            drift = (latents - z0).pow(2).flatten(1).mean(dim=1)
            objective = distance + options.latent_penalty * drift
            if reference is not None:
                objective = objective + options.structure_penalty * structure_loss(images, reference, masks)
                objective = objective + options.hue_penalty * hue_loss(images, reference, masks)
            found = (objective.detach(), distance.detach(), images.detach(), latents.detach())
            if best is None:
                best = _Best(*found)
            else:
                stalls = 0 if best.update(*found) > options.min_improvement else stalls + 1
            if steps == options.steps or stalls >= options.patience or float(best.objective.max()) == 0.0:
                break
            (grad,) = torch.autograd.grad(objective.sum(), latents)
            latents.grad = grad
            optimizer.step()
            steps += 1
    assert best is not None  # the loop body runs at least once
    return LatentResult(best.images, best.latents.to(dtype), initial, best.distance, steps)


class _Best:
    """Per-region best objective seen so far, with its distance, images and latents."""

    def __init__(self, objective: torch.Tensor, distance: torch.Tensor, images: torch.Tensor, latents: torch.Tensor):
        self.objective, self.distance = objective, distance
        self.images, self.latents = images, latents

    def update(
        self, objective: torch.Tensor, distance: torch.Tensor, images: torch.Tensor, latents: torch.Tensor
    ) -> float:
        """Keeps each region's better values; returns the relative drop of the summed best objective."""
        before = float(self.objective.sum())
        better = objective < self.objective
        self.objective = torch.where(better, objective, self.objective)
        self.distance = torch.where(better, distance, self.distance)
        self.images = torch.where(_expand(better, images), images, self.images)
        self.latents = torch.where(_expand(better, latents), latents, self.latents)
        return (before - float(self.objective.sum())) / max(before, 1e-12)


def _expand(flags: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return flags.view(-1, *([1] * (like.ndim - 1)))


@register_postprocessor("latent")
@dataclass(frozen=True)
class LatentHistogramMatch:
    """Post-processor re-synthesising each region from a latent optimised towards its context.

    It ignores the crops it is given and regenerates them with ``generator``, so it must come
    right after that generator (the pipeline builds it that way from ``harmonize = "latent"``).

    Args:
        generator: The pipeline's generator; must implement :class:`LatentGenerator`.
        steps, lr, channels, loss, bins, resolution, patience, min_improvement, latent_penalty,
        starts, structure_penalty, hue_penalty: See :class:`LatentOptions`.

    Raises:
        ConfigError: when ``generator`` does not expose latents.
    """

    generator: Any = None
    steps: int = LatentOptions.steps
    lr: float = LatentOptions.lr
    channels: str = LatentOptions.channels
    loss: LossName = LatentOptions.loss
    bins: int = LatentOptions.bins
    resolution: int = LatentOptions.resolution
    patience: int = LatentOptions.patience
    min_improvement: float = LatentOptions.min_improvement
    latent_penalty: float = LatentOptions.latent_penalty
    starts: int = LatentOptions.starts
    structure_penalty: float = LatentOptions.structure_penalty
    hue_penalty: float = LatentOptions.hue_penalty

    def __post_init__(self) -> None:
        if not isinstance(self.generator, LatentGenerator):
            name = type(self.generator).__name__
            raise ConfigError(
                f"harmonize='latent' needs a generator that exposes latents (init_latents, synthesize, "
                f"finalize); {name} does not. Use harmonize='match' for this method."
            )
        _ = self.options  # validates the options once, at construction

    @property
    def options(self) -> LatentOptions:
        """The optimisation options as one value."""
        return LatentOptions(
            self.steps, self.lr, self.channels, self.loss, self.bins, self.resolution,
            self.patience, self.min_improvement, self.latent_penalty, self.starts, self.structure_penalty,
            self.hue_penalty,
        )  # fmt: skip

    @torch.no_grad()
    def __call__(self, batch: GenerationBatch, generated: list[np.ndarray]) -> list[np.ndarray]:
        """Returns one ``(h_i, w_i, 3)`` uint8 crop per region, from the optimised latents."""
        if len(generated) != len(batch):
            raise ValueError(f"got {len(generated)} generated crops for {len(batch)} regions")
        if len(batch) == 0:
            return list(generated)
        result = optimize_latents(self.generator, batch, self.options)
        return list(self.generator.finalize(batch, result.images))
