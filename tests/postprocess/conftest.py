"""Fixtures for the harmonizer tests: a real astronaut batch and a tiny latent generator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from realanon.config import RegionOptions
from realanon.pipeline import Anonymizer
from realanon.regions import build_regions
from realanon.structures import Detection, Detections, GenerationBatch

# The astronaut's face, and a patch of her suit, in frame pixels (x1, y1, x2, y2).
ASTRONAUT_FACE = (180.0, 60.0, 280.0, 190.0)
ASTRONAUT_SUIT = (60.0, 300.0, 160.0, 420.0)


class ToyLatentGenerator:
    """A tiny deterministic :class:`LatentGenerator`: a random linear decoder from 16-d latents.

    Each latent decodes to an 8x8 RGB pattern (sigmoid), upsampled to ``size``; the mask is the
    region's replace-mask resized to ``size``. Decoder weights come from a fixed seed.
    """

    latent_dim = 16

    def __init__(self, size: int = 32) -> None:
        self.size = size
        gen = torch.Generator().manual_seed(1234)
        self.decoder = torch.nn.Linear(self.latent_dim, 3 * 8 * 8)
        with torch.no_grad():
            self.decoder.weight.copy_(torch.randn(self.decoder.weight.shape, generator=gen) * 0.5)
            self.decoder.bias.copy_(torch.randn(self.decoder.bias.shape, generator=gen) * 0.5)

    def init_latents(self, batch: GenerationBatch) -> torch.Tensor:
        draws = [torch.randn(self.latent_dim, generator=torch.Generator().manual_seed(s)) for s in batch.seeds]
        return torch.stack(draws)

    def synthesize(self, batch: GenerationBatch, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        small = torch.sigmoid(self.decoder(latents)).view(-1, 3, 8, 8)
        images = F.interpolate(small, size=(self.size, self.size), mode="bilinear", align_corners=False)
        masks = [torch.from_numpy(m.astype(np.float32))[None, None] for m in batch.replace_masks]
        masks_t = torch.cat([F.interpolate(m, size=(self.size, self.size), mode="area") for m in masks])
        return images, masks_t

    def finalize(self, batch: GenerationBatch, images: torch.Tensor) -> list[np.ndarray]:
        out = []
        for crop, image in zip(batch.crops, images, strict=True):
            h, w = crop.shape[:2]
            resized = F.interpolate(image[None], size=(h, w), mode="bilinear", align_corners=False)[0]
            out.append((resized.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy())
        return out

    @torch.no_grad()
    def __call__(self, batch: GenerationBatch) -> list[np.ndarray]:
        return self.finalize(batch, self.synthesize(batch, self.init_latents(batch))[0])


def astronaut_detections(image: np.ndarray) -> Detections:
    boxes = (ASTRONAUT_FACE, ASTRONAUT_SUIT)
    return Detections(tuple(Detection(b, 1.0, "face") for b in boxes), image.shape[:2])


@pytest.fixture(scope="session")
def astronaut_batch(astronaut: np.ndarray) -> GenerationBatch:
    """A real two-region batch: the astronaut's face and a patch of her suit, with context rings."""
    regions = build_regions(astronaut_detections(astronaut), RegionOptions())
    anonymizer = Anonymizer(None, ToyLatentGenerator())
    return anonymizer.make_batch(astronaut, regions)


@pytest.fixture()
def toy_generator() -> ToyLatentGenerator:
    return ToyLatentGenerator()
