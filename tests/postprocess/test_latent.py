"""Histogram matching by latent optimisation, on a tiny latent generator."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from realanon.config import AnonymizerConfig
from realanon.errors import ConfigError
from realanon.interfaces import LatentGenerator
from realanon.pipeline import Anonymizer, build_anonymizer, build_postprocessors
from realanon.postprocess.histogram import histogram_distance
from realanon.postprocess.latent import (
    LatentHistogramMatch,
    LatentOptions,
    hue_loss,
    optimize_latents,
    structure_loss,
)
from realanon.regions import union_mask
from realanon.registry import POSTPROCESSORS
from realanon.structures import GenerationBatch

from .conftest import ToyLatentGenerator, astronaut_detections


def sv_distance(batch: GenerationBatch, crops: list[np.ndarray]) -> np.ndarray:
    """HSV saturation/value EMD between each crop's masked pixels and its context ring."""
    return np.array(
        [
            histogram_distance(g[m], c[~m], "hsv")
            for g, c, m in zip(crops, batch.crops, batch.replace_masks, strict=True)
        ]
    )


def test_toy_generator_is_a_latent_generator(toy_generator: ToyLatentGenerator) -> None:
    assert isinstance(toy_generator, LatentGenerator)


@pytest.mark.parametrize("loss", ["quantile", "histogram"])
def test_optimisation_reduces_distance(
    astronaut_batch: GenerationBatch, toy_generator: ToyLatentGenerator, loss: str
) -> None:
    # The toy decoder's colours are random, so its hues cannot stay while S and V move: no hue term here.
    options = LatentOptions(steps=30, lr=0.1, loss=loss, hue_penalty=0.0)  # type: ignore[arg-type]
    result = optimize_latents(toy_generator, astronaut_batch, options)
    assert 0 < result.steps <= 30
    assert torch.all(result.distance < 0.7 * result.initial_distance), (result.initial_distance, result.distance)
    # Measured independently, on the uint8 crops, with the numpy histograms.
    before = sv_distance(astronaut_batch, toy_generator(astronaut_batch))
    after = sv_distance(astronaut_batch, toy_generator.finalize(astronaut_batch, result.images))
    assert np.all(after < 0.7 * before), (before, after)


def test_zero_steps_reproduces_the_generator(
    astronaut_batch: GenerationBatch, toy_generator: ToyLatentGenerator
) -> None:
    post = LatentHistogramMatch(generator=toy_generator, steps=0)
    plain = toy_generator(astronaut_batch)
    for a, b in zip(post(astronaut_batch, plain), plain, strict=True):
        np.testing.assert_array_equal(a, b)


def test_step_budget_and_early_stop(astronaut_batch: GenerationBatch, toy_generator: ToyLatentGenerator) -> None:
    assert optimize_latents(toy_generator, astronaut_batch, LatentOptions(steps=3)).steps == 3
    # Demanding a 100% improvement per step makes every update a stall: stops after `patience`.
    impatient = LatentOptions(steps=30, patience=2, min_improvement=1.0)
    assert optimize_latents(toy_generator, astronaut_batch, impatient).steps == 2


def test_same_seed_same_output_and_no_grad_leaks(
    astronaut_batch: GenerationBatch, toy_generator: ToyLatentGenerator
) -> None:
    post = LatentHistogramMatch(generator=toy_generator, steps=5)
    generated = toy_generator(astronaut_batch)
    first, second = post(astronaut_batch, generated), post(astronaut_batch, generated)
    for a, b, crop in zip(first, second, astronaut_batch.crops, strict=True):
        assert a.dtype == np.uint8 and a.shape == crop.shape
        np.testing.assert_array_equal(a, b)
    assert torch.is_grad_enabled()
    assert all(p.grad is None for p in toy_generator.decoder.parameters())
    reseeded = dataclasses.replace(astronaut_batch, seeds=tuple(s + 1 for s in astronaut_batch.seeds))
    assert not np.array_equal(post(reseeded, generated)[0], first[0])


def test_latent_penalty_keeps_latents_closer(
    astronaut_batch: GenerationBatch, toy_generator: ToyLatentGenerator
) -> None:
    z0 = toy_generator.init_latents(astronaut_batch)
    free = optimize_latents(toy_generator, astronaut_batch, LatentOptions(steps=20, lr=0.1))
    held = optimize_latents(toy_generator, astronaut_batch, LatentOptions(steps=20, lr=0.1, latent_penalty=1.0))
    assert (held.latents - z0).norm() < (free.latents - z0).norm()


def test_structure_penalty_keeps_the_starting_structure(
    astronaut_batch: GenerationBatch, toy_generator: ToyLatentGenerator
) -> None:
    start, masks = toy_generator.synthesize(astronaut_batch, toy_generator.init_latents(astronaut_batch))
    free = optimize_latents(toy_generator, astronaut_batch, LatentOptions(steps=20, lr=0.1))
    held = optimize_latents(toy_generator, astronaut_batch, LatentOptions(steps=20, lr=0.1, structure_penalty=1.0))
    free_loss, held_loss = structure_loss(free.images, start, masks), structure_loss(held.images, start, masks)
    assert float(held_loss.sum()) < float(free_loss.sum()), (held_loss, free_loss)


def test_structure_loss_ignores_tone_but_not_shapes(astronaut: np.ndarray) -> None:
    image = torch.from_numpy(astronaut[:64, :64].astype(np.float32) / 255).permute(2, 0, 1)[None]
    mask = torch.ones(1, 1, 64, 64)
    assert float(structure_loss(image, image, mask)) < 1e-5
    assert float(structure_loss(0.5 * image + 0.2, image, mask)) < 1e-3  # darker, lower contrast, same shapes
    noise = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert float(structure_loss(noise, image, mask)) > 0.8


def test_hue_loss_ignores_saturation_and_value_but_not_hue(astronaut: np.ndarray) -> None:
    image = torch.from_numpy(astronaut[:64, :64].astype(np.float32) / 255).permute(2, 0, 1)[None]
    mask = torch.ones(1, 1, 64, 64)
    grey = image.mean(dim=1, keepdim=True)
    assert float(hue_loss(image, image, mask)) < 1e-3
    assert float(hue_loss(0.6 * image, image, mask)) < 1e-3  # darker: same hues
    assert float(hue_loss(0.5 * image + 0.5 * grey, image, mask)) < 1e-3  # desaturated: same hues
    rotated = image[:, [1, 2, 0]]  # red -> blue, green -> red, blue -> green
    assert float(hue_loss(rotated, image, mask)) > 0.05
    tinted = (grey.expand(-1, 3, -1, -1) * torch.tensor([1.0, 0.6, 1.0]).view(1, 3, 1, 1))  # magenta on grey
    assert float(hue_loss(tinted, grey.expand(-1, 3, -1, -1), mask)) > 0.05


def test_hue_penalty_keeps_the_starting_hues(astronaut_batch: GenerationBatch, toy_generator: ToyLatentGenerator) -> None:
    start, masks = toy_generator.synthesize(astronaut_batch, toy_generator.init_latents(astronaut_batch))
    free = optimize_latents(toy_generator, astronaut_batch, LatentOptions(steps=20, lr=0.1))
    held = optimize_latents(toy_generator, astronaut_batch, LatentOptions(steps=20, lr=0.1, hue_penalty=4.0))
    free_loss, held_loss = hue_loss(free.images, start, masks), hue_loss(held.images, start, masks)
    assert float(held_loss.sum()) < 0.7 * float(free_loss.sum()), (held_loss, free_loss)


def test_best_of_several_starts(astronaut_batch: GenerationBatch, toy_generator: ToyLatentGenerator) -> None:
    one = optimize_latents(toy_generator, astronaut_batch, LatentOptions(steps=0))
    four = optimize_latents(toy_generator, astronaut_batch, LatentOptions(steps=0, starts=4))
    torch.testing.assert_close(one.initial_distance, four.initial_distance)  # the generator's own output
    assert torch.all(four.distance <= one.distance) and torch.any(four.distance < one.distance)


def test_shipped_gan_reaches_the_scene_colours_on_a_real_crop(astronaut_batch: GenerationBatch) -> None:
    """The shipped face GAN on the astronaut's face and suit: its per-layer styles reach the ring's
    saturation/value distribution that its ``z`` latent cannot, deterministically, with no gradient left."""
    from realanon.generators.gan import GanInpainter

    options = LatentOptions(steps=20, lr=0.05)
    by_space = {}
    for space in ("w+", "z"):
        gan = GanInpainter(target="face", latent_space=space)  # type: ignore[arg-type]
        own = gan(astronaut_batch)
        result = optimize_latents(gan, astronaut_batch, options)
        by_space[space] = sv_distance(astronaut_batch, gan.finalize(astronaut_batch, result.images))
        assert all(p.grad is None for p in gan.network.parameters())
    before = sv_distance(astronaut_batch, own)
    assert np.all(by_space["w+"] < 0.6 * before), (before, by_space)
    assert np.all(by_space["w+"] < by_space["z"]), by_space
    post = LatentHistogramMatch(generator=gan, steps=3)
    for a, b in zip(post(astronaut_batch, own), post(astronaut_batch, own), strict=True):
        np.testing.assert_array_equal(a, b)


def test_non_latent_generator_is_a_config_error() -> None:
    assert "latent" in POSTPROCESSORS.names()
    with pytest.raises(ConfigError, match="exposes latents"):
        build_anonymizer(AnonymizerConfig(method="blur", harmonize="latent"), detector=None)
    with pytest.raises(ConfigError):
        LatentHistogramMatch(generator=ToyLatentGenerator(), channels="sx")


def test_latent_through_the_pipeline(astronaut: np.ndarray, toy_generator: ToyLatentGenerator) -> None:
    config = AnonymizerConfig(harmonize="latent", harmonize_options={"steps": 8, "lr": 0.1})
    (post,) = build_postprocessors(config, toy_generator)
    assert isinstance(post, LatentHistogramMatch) and post.steps == 8 and post.generator is toy_generator
    detections = astronaut_detections(astronaut)
    plain = Anonymizer(None, toy_generator, fail_closed=False)(astronaut, detections)
    harmonized = Anonymizer(None, toy_generator, [post], fail_closed=False)(astronaut, detections)
    inside = union_mask(harmonized.regions, astronaut.shape[:2])
    np.testing.assert_array_equal(harmonized.image[~inside], astronaut[~inside])
    assert not np.array_equal(harmonized.image[inside], plain.image[inside])


def test_latent_runs_on_the_gan_generator(astronaut_batch: GenerationBatch) -> None:
    """Contract with the real ``gan`` generator (tiny, untrained): shapes, determinism, no grad leaks."""
    from realanon.generators.gan import GanInpainter
    from realanon.generators.gan_modules import GanConfig, GanGenerator

    torch.manual_seed(0)
    gan = GanInpainter(GanGenerator(GanConfig(resolution=16, channels=(8, 8), latent_dim=8, style_dim=8)))
    post = LatentHistogramMatch(generator=gan, steps=3)
    generated = gan(astronaut_batch)
    first, second = post(astronaut_batch, generated), post(astronaut_batch, generated)
    for a, b, crop, mask in zip(first, second, astronaut_batch.crops, astronaut_batch.replace_masks, strict=True):
        assert a.dtype == np.uint8 and a.shape == crop.shape
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a[~mask], crop[~mask])
    assert all(p.grad is None for p in gan.network.parameters())
