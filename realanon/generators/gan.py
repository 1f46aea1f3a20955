"""``gan``: DeepPrivacy2-style inpainting GAN conditioned on the masked crop, mask and keypoints.

Each crop is padded to a square, resized to the model's resolution, inpainted in one batched
forward pass with a latent drawn from the region's seed, and mapped back to the crop's size.
It implements :class:`realanon.interfaces.LatentGenerator`, so the latent-optimisation
harmonizer can optimise the latents. By default those latents are the per-layer styles
("W+"), which can reach the scene's colours; ``latent_space="z"`` exposes the 64-d input
latent instead, which the shipped models barely respond to (their mapping network sends every
draw to nearly the same style).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch

from realanon.errors import ConfigError
from realanon.generators.gan_modules import (
    GanConfig,
    GanGenerator,
    SquareFit,
    fit_keypoints,
    fit_square,
    keypoint_heatmaps,
    latent_from_seed,
    make_condition,
    select_keypoints,
    square_fit,
    unfit_square,
)
from realanon.registry import register_generator
from realanon.structures import GenerationBatch
from realanon.weights import WeightsError, load_state_dict, load_strict, read_config, resolve_model

# The shipped model used for each target when no model is given.
DEFAULT_MODELS = {"face": "gan-face-64", "body": "gan-body-64"}
ARCHITECTURE = "realanon-gan-unet"
_DTYPES = {"float32": torch.float32, "float16": torch.float16}
LatentSpace = Literal["w+", "w", "z"]
LATENT_SPACES: tuple[LatentSpace, ...] = ("w+", "w", "z")


def parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """``"float32"``/``"float16"`` (or a torch dtype) -> torch dtype."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in _DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
    return _DTYPES[dtype]


def load_gan(model: str | Path) -> GanGenerator:
    """Loads a GAN model directory (or manifest name / hub id) strictly, on the CPU in float32.

    Raises:
        WeightsError: unknown model, wrong sha256, wrong architecture or mismatched tensors.
    """
    resolved = resolve_model(model)
    config = read_config(resolved.directory)
    if config.get("architecture") != ARCHITECTURE:
        raise WeightsError(f"{resolved.directory}: architecture {config.get('architecture')!r}, expected {ARCHITECTURE!r}")
    try:
        network = GanGenerator(GanConfig.from_dict(config))
    except (TypeError, ValueError) as err:
        raise WeightsError(f"{resolved.directory}/config.json: {err}") from None
    load_strict(network, load_state_dict(resolved))
    return network


@register_generator("gan")
class GanInpainter:
    """Synthesises every region of a batch with an inpainting GAN.

    Args:
        model: Shipped model name, model directory, or hub id; or an already built
            :class:`GanGenerator`. Default: the shipped model for ``target``
            (``"gan-face-64"`` for faces, ``"gan-body-64"`` for bodies).
        truncation: Pulls styles towards the average (1 = none, 0 = always the average face).
        device: Torch device to run on.
        dtype: ``"float32"`` or ``"float16"`` (float16 is meant for CUDA).
        target: What the pipeline replaces (default ``"face"``); must match what the model
            was trained on.
        latent_space: What :meth:`init_latents` exposes to a latent optimiser: ``"w+"``
            (default; ``(N, layers, style_dim)``: the style of the region's draw, one copy per
            modulated layer), ``"w"`` (one style for every layer, ``(N, style_dim)``) or ``"z"``
            (``(N, latent_dim)``). The output of ``__call__`` is the same for all three.
    """

    def __init__(
        self,
        model: str | Path | GanGenerator | None = None,
        truncation: float = 1.0,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype = "float32",
        target: str | None = None,
        latent_space: LatentSpace = "w+",
    ) -> None:
        if not 0.0 <= float(truncation) <= 2.0:
            raise ConfigError(f"gan truncation must be in [0, 2], got {truncation}")
        if latent_space not in LATENT_SPACES:
            raise ConfigError(f"gan latent_space must be one of {', '.join(LATENT_SPACES)}, got {latent_space!r}")
        if model is None:
            if (target or "face") not in DEFAULT_MODELS:
                raise ConfigError(f"gan has no shipped model for target {target!r}; pass model=")
            model = DEFAULT_MODELS[target or "face"]
        network = model if isinstance(model, GanGenerator) else load_gan(model)
        if target is not None and target != network.config.kind:
            raise ConfigError(f"gan model {model!s} synthesises {network.config.kind}s, but the target is {target}")
        self.truncation = float(truncation)
        self.device = torch.device(device)
        self.dtype = parse_dtype(dtype)
        self.network = network.to(self.device, self.dtype).eval().requires_grad_(False)
        self.config: GanConfig = network.config
        self.latent_space: LatentSpace = latent_space

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """Shape of one region's latent: ``(latent_dim,)`` or ``(layers, style_dim)``."""
        if self.latent_space == "z":
            return (self.config.latent_dim,)
        if self.latent_space == "w":
            return (self.config.style_dim,)
        return (self.network.num_styles, self.config.style_dim)

    def init_latents(self, batch: GenerationBatch) -> torch.Tensor:
        """Float32 latents, one per region from its seed: ``(N, *latent_shape)``.

        ``"z"``: standard-normal draws. ``"w"``: the style of that draw (after truncation);
        ``"w+"``: that style repeated for every modulated layer.
        """
        if len(batch) == 0:
            return torch.zeros(0, *self.latent_shape, device=self.device)
        z = torch.stack([latent_from_seed(s, self.config.latent_dim) for s in batch.seeds]).to(self.device)
        if self.latent_space == "z":
            return z
        with torch.no_grad():
            styles = self.network.style(z.to(self.dtype), self.truncation).float()
        return styles if self.latent_space == "w" else styles[:, None].repeat(1, self.network.num_styles, 1)

    def prepare(self, batch: GenerationBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[SquareFit]]:
        """Square working images of a batch.

        Returns:
            ``(image, mask, heatmaps, fits)``: ``(N, 3, S, S)`` float32 in [0, 1],
            ``(N, 1, S, S)`` float32 in {0, 1}, ``(N, K, S, S)`` float32, and the crop transforms.
        """
        size, cfg = self.config.resolution, self.config
        images, masks, heats, fits = [], [], [], []
        for crop, mask, kp, layout in zip(batch.crops, batch.replace_masks, batch.keypoints, batch.keypoint_layouts):
            image, work_mask, fit = fit_square(crop, mask, size)
            points = fit_keypoints(select_keypoints(kp, layout, cfg.keypoint_layout, cfg.num_keypoints), fit, size)
            images.append(image)
            masks.append(work_mask)
            heats.append(keypoint_heatmaps(points, size))
            fits.append(fit)
        image_t = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
        return image_t, torch.from_numpy(np.stack(masks))[:, None], torch.from_numpy(np.stack(heats)), fits

    def synthesize(self, batch: GenerationBatch, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Differentiable in ``latents``.

        Args:
            batch: The regions.
            latents: ``(N, *latent_shape)`` from :meth:`init_latents` (or optimised).

        Returns:
            ``(images, masks)``: ``(N, 3, S, S)`` float32 in [0, 1] with known pixels kept, and
            ``(N, 1, S, S)`` float32, 1 where pixels are synthesised.
        """
        expected = (len(batch), *self.latent_shape)
        if tuple(latents.shape) != expected:
            raise ValueError(f"latents must be {expected} ({self.latent_space}), got {tuple(latents.shape)}")
        image, mask, heat, _ = self.prepare(batch)
        image, mask = image.to(self.device), mask.to(self.device)
        condition = make_condition(image, mask, heat.to(self.device)).to(self.dtype)
        latents = latents.to(self.device)
        if self.latent_space == "z":
            fake = self.network(condition, latents.to(self.dtype), self.truncation).float()
        else:
            styles = latents
            if self.latent_space == "w":
                styles = styles[:, None].expand(-1, self.network.num_styles, -1)
            fake = self.network.forward_styles(condition, styles.to(self.dtype)).float()
        return image * (1 - mask) + (fake + 1) / 2 * mask, mask

    def finalize(self, batch: GenerationBatch, images: torch.Tensor) -> list[np.ndarray]:
        """Maps ``(N, 3, S, S)`` images in [0, 1] back to uint8 crops; unmasked pixels stay the crop's."""
        fits = [square_fit(*m.shape) for m in batch.replace_masks]
        array = images.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
        out = []
        for crop, mask, square, fit in zip(batch.crops, batch.replace_masks, array, fits):
            generated = np.round(unfit_square(square, fit) * 255).clip(0, 255).astype(np.uint8)
            out.append(np.where(mask[:, :, None], generated, crop))
        return out

    @torch.no_grad()
    def __call__(self, batch: GenerationBatch) -> list[np.ndarray]:
        if len(batch) == 0:
            return []
        images, _ = self.synthesize(batch, self.init_latents(batch))
        return self.finalize(batch, images)
