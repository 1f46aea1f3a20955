"""Histogram matching by optimising a generator's latents.

Instead of recolouring pixels after the fact, the latent of every region is nudged (Adam,
a few dozen steps) so that what the generator synthesises has saturation/value histograms
close to those of the region's context ring. The output stays on the generator's manifold,
so shading and texture remain plausible. Works with any :class:`LatentGenerator`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from realanon.errors import ConfigError
from realanon.interfaces import LatentGenerator
from realanon.postprocess.histogram import SOFT_CHANNELS, histogram_channels, soft_histogram, wasserstein_1d
from realanon.registry import register_postprocessor
from realanon.structures import GenerationBatch


@dataclass(frozen=True)
class LatentOptions:
    """How the latents are optimised.

    Attributes:
        steps: Maximum number of Adam updates (the step budget); 0 disables optimisation.
        lr: Adam learning rate, in latent units.
        channels: Histogram channels, letters of ``"rgbsvl"`` (default HSV saturation and value).
        bins: Bins of the soft histograms.
        resolution: Images and masks are area-resized to this square size before the
            histograms (memory is ``N * channels * resolution**2 * bins`` floats).
        patience: Stop after this many consecutive updates that improve the best total
            distance by less than ``min_improvement`` (relative).
        min_improvement: Relative improvement that counts as progress for early stopping.
        latent_penalty: Weight of ``mean((z - z0)**2)`` per region, keeping latents near their draw.
    """

    steps: int = 30
    lr: float = 0.05
    channels: str = "sv"
    bins: int = 32
    resolution: int = 48
    patience: int = 5
    min_improvement: float = 1e-3
    latent_penalty: float = 0.0

    def __post_init__(self) -> None:
        if self.steps < 0 or self.patience < 1 or self.bins < 2 or self.resolution < 4:
            raise ConfigError("latent options need steps >= 0, patience >= 1, bins >= 2 and resolution >= 4")
        if self.lr <= 0 or self.min_improvement < 0 or self.latent_penalty < 0:
            raise ConfigError("latent options need lr > 0, min_improvement >= 0 and latent_penalty >= 0")
        if not self.channels or set(self.channels) - set(SOFT_CHANNELS):
            raise ConfigError(f"latent channels must be letters of {SOFT_CHANNELS!r}, got {self.channels!r}")


@dataclass(frozen=True)
class LatentResult:
    """What :func:`optimize_latents` found.

    Attributes:
        images: ``(N, 3, S, S)`` float in [0, 1], each region's best synthesis (no grad).
        latents: ``(N, ...)`` the latents that produced ``images``.
        initial_distance: ``(N,)`` histogram distance before any update (EMD in [0, 1]).
        distance: ``(N,)`` histogram distance of ``images``.
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


def optimize_latents(generator: LatentGenerator, batch: GenerationBatch, options: LatentOptions) -> LatentResult:
    """Optimises every region's latent at once towards its context's histograms.

    The objective per region is the mean over channels of the 1-D Wasserstein distance
    between the soft histogram of its synthesised pixels and that of its context ring, plus
    ``latent_penalty * mean((z - z0)**2)``. Each region keeps the synthesis with its lowest
    objective seen, so the result is never worse than the generator's own output. Gradients
    are enabled only inside this function and only reach the latents (the generator's
    parameters never accumulate ``.grad``). Deterministic for a deterministic generator.
    """
    with torch.no_grad():
        start = generator.init_latents(batch)
    z0 = start.detach().float()
    target = context_histograms(batch, options, z0.device)
    latents = z0.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([latents], lr=options.lr)
    best: _Best | None = None
    steps, stalls = 0, 0
    with torch.enable_grad():
        while True:
            images, masks = generator.synthesize(batch, latents.to(start.dtype))
            distance = wasserstein_1d(region_histograms(images, masks, options), target).mean(dim=1)
            drift = (latents - z0).pow(2).flatten(1).mean(dim=1)
            objective = distance + options.latent_penalty * drift
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
    return LatentResult(best.images, best.latents.to(start.dtype), best.initial, best.distance, steps)


class _Best:
    """Per-region best objective seen so far, with its distance, images and latents."""

    def __init__(self, objective: torch.Tensor, distance: torch.Tensor, images: torch.Tensor, latents: torch.Tensor):
        self.objective, self.distance, self.initial = objective, distance, distance
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
        steps, lr, channels, bins, resolution, patience, min_improvement, latent_penalty:
            See :class:`LatentOptions`.

    Raises:
        ConfigError: when ``generator`` does not expose latents.
    """

    generator: Any = None
    steps: int = 30
    lr: float = 0.05
    channels: str = "sv"
    bins: int = 32
    resolution: int = 48
    patience: int = 5
    min_improvement: float = 1e-3
    latent_penalty: float = 0.0

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
            self.steps, self.lr, self.channels, self.bins, self.resolution,
            self.patience, self.min_improvement, self.latent_penalty,
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
