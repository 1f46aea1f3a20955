"""Networks and pure pre-processing of the ``gan`` generator (DeepPrivacy2-style inpainting).

The generator is a U-Net that sees the masked image, the mask and keypoint heatmaps, and
whose decoder is modulated (FiLM) by a style vector mapped from a latent ``z``. The
discriminator sees the image, the mask and the heatmaps. Both work on square images of
``GanConfig.resolution`` pixels with values in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

# Face-mesh indices closest to mediapipe's 6 face keypoints (right eye, left eye, nose tip,
# mouth centre, right ear, left ear), so mesh landmarks can drive a face6 model.
MESH478_TO_FACE6 = (468, 473, 1, 13, 234, 454)
# Horizontal flip swaps left and right keypoints.
FLIP_PERMUTATION: dict[str, tuple[int, ...]] = {
    "face6": (1, 0, 2, 3, 5, 4),
    "coco17": (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15),
}


@dataclass(frozen=True)
class GanConfig:
    """Architecture of a GAN model; stored as its ``config.json``.

    Attributes:
        kind: ``"face"`` or ``"body"``: what the model was trained to synthesise.
        resolution: Side of the square working images, a multiple of ``2 ** (len(channels) - 1)``.
        keypoint_layout: Layout of the keypoints it is conditioned on (``"face6"``, ``"coco17"``).
        num_keypoints: Number of heatmap channels.
        latent_dim: Size of the latent ``z``.
        style_dim: Size of the style vector modulating the decoder.
        channels: Feature channels at each U-Net level, from full resolution down.
    """

    kind: str = "face"
    resolution: int = 64
    keypoint_layout: str = "face6"
    num_keypoints: int = 6
    latent_dim: int = 64
    style_dim: int = 128
    channels: tuple[int, ...] = field(default=(32, 64, 128, 128))

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        factor = 2 ** (len(self.channels) - 1)
        if self.resolution % factor:
            raise ValueError(f"resolution {self.resolution} must be a multiple of {factor}")

    @staticmethod
    def from_dict(raw: Mapping[str, Any]) -> GanConfig:
        """Builds the config from ``config.json`` contents, ignoring bookkeeping keys."""
        known = set(GanConfig.__dataclass_fields__)
        return GanConfig(**{k: v for k, v in raw.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, tagged with the architecture name."""
        return {"architecture": "realanon-gan-unet", **asdict(self), "channels": list(self.channels)}


def _act() -> nn.Module:
    return nn.LeakyReLU(0.2)


class _Film(nn.Module):
    """3x3 conv whose output is scaled and shifted per channel by the style vector."""

    def __init__(self, in_ch: int, out_ch: int, style_dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.affine = nn.Linear(style_dim, 2 * out_ch)
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.affine(style)[:, :, None, None].chunk(2, dim=1)
        return F.leaky_relu(self.conv(x) * (1 + gamma) + beta, 0.2)


class GanGenerator(nn.Module):
    """U-Net inpainting generator modulated by a latent.

    Input ``condition`` is ``(N, 4 + K, S, S)``: masked image in [-1, 1] (zeros where masked),
    the mask (1 = synthesise) and K keypoint heatmaps. ``z`` is ``(N, latent_dim)``.
    Output is ``(N, 3, S, S)`` in [-1, 1] (not yet composited with the known pixels).
    """

    def __init__(self, config: GanConfig) -> None:
        super().__init__()
        self.config = config
        ch, sd = config.channels, config.style_dim
        self.mapping = nn.Sequential(
            nn.Linear(config.latent_dim, sd), _act(), nn.Linear(sd, sd), _act(), nn.Linear(sd, sd)
        )
        self.register_buffer("w_avg", torch.zeros(sd))
        self.stem = nn.Sequential(nn.Conv2d(4 + config.num_keypoints, ch[0], 3, padding=1), _act())
        self.down = nn.ModuleList(
            nn.Sequential(nn.Conv2d(ch[i], ch[i + 1], 4, stride=2, padding=1), _act(),
                          nn.Conv2d(ch[i + 1], ch[i + 1], 3, padding=1), _act())
            for i in range(len(ch) - 1)
        )
        self.middle = _Film(ch[-1], ch[-1], sd)
        self.up = nn.ModuleList(_Film(ch[i + 1] + ch[i], ch[i], sd) for i in reversed(range(len(ch) - 1)))
        self.refine = nn.ModuleList(_Film(ch[i], ch[i], sd) for i in reversed(range(len(ch) - 1)))
        self.to_rgb = nn.Conv2d(ch[0], 3, 1)

    def style(self, z: torch.Tensor, truncation: float = 1.0) -> torch.Tensor:
        """Maps ``z`` to the style vector, pulled towards the average style by ``truncation`` < 1."""
        w = self.mapping(z)
        if truncation != 1.0:
            w = self.w_avg.to(w.dtype) + truncation * (w - self.w_avg.to(w.dtype))
        return w

    @property
    def num_styles(self) -> int:
        """Number of style-modulated layers (middle, then an up and a refine layer per level)."""
        return 1 + 2 * len(self.up)

    def forward(self, condition: torch.Tensor, z: torch.Tensor, truncation: float = 1.0) -> torch.Tensor:
        w = self.style(z, truncation)
        return self.forward_styles(condition, w[:, None].expand(-1, self.num_styles, -1))

    def forward_styles(self, condition: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
        """Synthesis from one style per modulated layer (the "W+" space of StyleGAN inversion).

        Args:
            condition: ``(N, 4 + K, S, S)`` as for :meth:`forward`.
            styles: ``(N, num_styles, style_dim)``; all rows equal to ``style(z)`` gives ``forward(z)``.

        Returns:
            ``(N, 3, S, S)`` in [-1, 1].
        """
        x = self.stem(condition)
        skips = []
        for block in self.down:
            skips.append(x)
            x = block(x)
        x = self.middle(x, styles[:, 0])
        for i, (up, refine, skip) in enumerate(zip(self.up, self.refine, reversed(skips))):
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = refine(up(torch.cat([x, skip], dim=1), styles[:, 1 + 2 * i]), styles[:, 2 + 2 * i])
        return torch.tanh(self.to_rgb(x))


class GanDiscriminator(nn.Module):
    """Conditional discriminator over ``(N, 4 + K, S, S)``: image, mask, heatmaps -> ``(N,)`` logits."""

    def __init__(self, config: GanConfig) -> None:
        super().__init__()
        ch = config.channels
        layers: list[nn.Module] = [nn.Conv2d(4 + config.num_keypoints, ch[0], 3, padding=1), _act()]
        for i in range(len(ch) - 1):
            layers += [nn.Conv2d(ch[i], ch[i + 1], 4, stride=2, padding=1), _act()]
        layers += [nn.Conv2d(ch[-1], ch[-1], 4, stride=2, padding=1), _act()]
        self.features = nn.Sequential(*layers)
        side = config.resolution // 2 ** len(ch)
        self.head = nn.Linear(ch[-1] * side * side, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1)).squeeze(1)


@dataclass(frozen=True)
class SquareFit:
    """How a crop was padded to a square and resized; undone by :func:`unfit_square`.

    Attributes:
        height: Crop height in pixels.
        width: Crop width in pixels.
        top: Rows of padding above the crop in the square.
        left: Columns of padding left of the crop in the square.
        side: Side of the padded square before resizing.
    """

    height: int
    width: int
    top: int
    left: int
    side: int


def square_fit(height: int, width: int) -> SquareFit:
    """The centred square padding of an ``height x width`` crop."""
    side = max(height, width)
    return SquareFit(height, width, (side - height) // 2, (side - width) // 2, side)


def fit_square(
    crop: np.ndarray, mask: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, SquareFit]:
    """Pads a crop to a square (replicating its border) and resizes it to ``size``.

    Args:
        crop: ``(h, w, 3)`` uint8 RGB.
        mask: ``(h, w)`` bool, True = synthesise.
        size: Output side.

    Returns:
        ``(image, mask, fit)``: ``(size, size, 3)`` float32 in [0, 1]; ``(size, size)`` float32
        in {0, 1}, 1 wherever any replaced pixel falls (so no masked pixel leaks through the
        resize); and the transform.
    """
    h, w = mask.shape
    fit = square_fit(h, w)
    side, top, left = fit.side, fit.top, fit.left
    pads = ((top, side - h - top), (left, side - w - left))
    square = np.pad(crop, (*pads, (0, 0)), mode="edge")
    square_mask = np.pad(mask.astype(np.float32), pads)
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    image = cv2.resize(square, (size, size), interpolation=interp).astype(np.float32) / 255.0
    coverage = cv2.resize(square_mask, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)
    return image, (coverage > 1e-3).astype(np.float32), fit


def unfit_square(image: np.ndarray, fit: SquareFit) -> np.ndarray:
    """Maps a ``(size, size, 3)`` image back to the crop's ``(h, w, 3)`` pixels."""
    interp = cv2.INTER_LINEAR if fit.side >= image.shape[0] else cv2.INTER_AREA
    square = cv2.resize(image, (fit.side, fit.side), interpolation=interp)
    return square[fit.top : fit.top + fit.height, fit.left : fit.left + fit.width]


def fit_keypoints(keypoints: np.ndarray, fit: SquareFit, size: int) -> np.ndarray:
    """Moves ``(K, 3)`` crop-pixel keypoints into the ``size`` square."""
    out = keypoints.astype(np.float32).copy()
    scale = size / fit.side
    out[:, 0] = (out[:, 0] + fit.left) * scale
    out[:, 1] = (out[:, 1] + fit.top) * scale
    return out


def select_keypoints(keypoints: np.ndarray | None, layout: str | None, target_layout: str, count: int) -> np.ndarray:
    """Returns ``(count, 3)`` keypoints in ``target_layout``; zero visibility when unavailable."""
    if keypoints is not None and layout == target_layout and len(keypoints) == count:
        return keypoints.astype(np.float32)
    if keypoints is not None and layout == "face_mesh478" and target_layout == "face6" and len(keypoints) >= 478:
        return keypoints[list(MESH478_TO_FACE6)].astype(np.float32)
    return np.zeros((count, 3), dtype=np.float32)


def keypoint_heatmaps(keypoints: np.ndarray, size: int, sigma: float | None = None) -> np.ndarray:
    """Rasterises ``(K, 3)`` keypoints (square pixels) into ``(K, size, size)`` float32 Gaussians.

    Each map peaks at the keypoint's visibility (so invisible or missing points give zeros).
    """
    sigma = sigma if sigma is not None else max(1.0, size / 32)
    coords = np.arange(size, dtype=np.float32) + 0.5
    gx = np.exp(-((coords[None, :] - keypoints[:, :1]) ** 2) / (2 * sigma**2))
    gy = np.exp(-((coords[None, :] - keypoints[:, 1:2]) ** 2) / (2 * sigma**2))
    vis = np.clip(keypoints[:, 2], 0.0, 1.0)[:, None, None]
    return (gy[:, :, None] * gx[:, None, :] * vis).astype(np.float32)


def make_condition(image: torch.Tensor, mask: torch.Tensor, heatmaps: torch.Tensor) -> torch.Tensor:
    """Generator/discriminator input from images in [0, 1].

    Args:
        image: ``(N, 3, S, S)`` in [0, 1].
        mask: ``(N, 1, S, S)``, 1 = synthesise.
        heatmaps: ``(N, K, S, S)``.

    Returns:
        ``(N, 4 + K, S, S)``: masked image in [-1, 1] (0 where masked), mask, heatmaps.
    """
    return torch.cat([(image * 2 - 1) * (1 - mask), mask, heatmaps], dim=1)


def latent_from_seed(seed: int, dim: int) -> torch.Tensor:
    """``(dim,)`` float32 standard-normal latent drawn from ``seed`` on the CPU (device-independent)."""
    gen = torch.Generator().manual_seed(int(seed) & ((1 << 63) - 1))
    return torch.randn(dim, generator=gen)
