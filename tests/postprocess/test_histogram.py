"""The pure histogram functions: colour spaces, CDF matching, soft histograms and EMD."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from realanon.postprocess.histogram import (
    emd_1d,
    from_color_space,
    histogram_1d,
    histogram_channels,
    histogram_distance,
    matching_lut,
    quantile_distance,
    quantile_function,
    soft_histogram,
    to_color_space,
    wasserstein_1d,
)


def test_soft_histogram_sums_to_one_and_has_gradients() -> None:
    gen = torch.Generator().manual_seed(0)
    values = torch.rand(2, 3, 500, generator=gen).requires_grad_(True)
    weights = torch.rand(2, 1, 500, generator=gen).requires_grad_(True)
    hist = soft_histogram(values, weights, bins=32)
    assert hist.shape == (2, 3, 32)
    torch.testing.assert_close(hist.sum(-1), torch.ones(2, 3))
    target = torch.zeros(32)
    target[0] = 1.0
    wasserstein_1d(hist, target.expand_as(hist)).sum().backward()
    for grad in (values.grad, weights.grad):
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_soft_histogram_peaks_at_the_values_bin() -> None:
    values = torch.full((1, 1, 100), 0.3)
    hist = soft_histogram(values, torch.ones(1, 1, 100), bins=10)
    assert int(hist.argmax()) == 3
    # With zero weight on every pixel the histogram is uniform, not NaN.
    flat = soft_histogram(values, torch.zeros(1, 1, 100), bins=10)
    torch.testing.assert_close(flat, torch.full((1, 1, 10), 0.1))


def test_wasserstein_is_zero_for_identical_and_grows_with_shift() -> None:
    bins = 64
    base = torch.zeros(bins)
    base[10:14] = 0.25
    distances = [float(wasserstein_1d(base, base.roll(s))) for s in (0, 4, 8, 16, 32)]
    assert distances[0] == 0.0
    assert all(a < b for a, b in zip(distances, distances[1:], strict=False))
    # A shift of s bins moves all the mass s bins: distance s / (bins - 1).
    assert distances[2] == pytest.approx(8 / (bins - 1))
    with pytest.raises(ValueError):
        wasserstein_1d(base, torch.zeros(bins + 1))


def test_numpy_distance_matches_shift(rng: np.random.Generator) -> None:
    pixels = rng.integers(40, 120, size=(2000, 3), dtype=np.uint8)
    assert histogram_distance(pixels, pixels, "rgb") == 0.0
    shifted = [histogram_distance(pixels + np.uint8(s), pixels, "rgb") for s in (10, 30, 60)]
    assert shifted == pytest.approx([10 / 255, 30 / 255, 60 / 255], abs=1e-6)
    assert np.isnan(histogram_distance(pixels[:0], pixels))
    assert emd_1d(histogram_1d(pixels[:, 0]), histogram_1d(pixels[:, 0])) == 0.0


def test_matching_lut_moves_source_onto_reference(rng: np.random.Generator) -> None:
    source = rng.normal(80, 10, 5000).clip(0, 255).astype(np.uint8)
    reference = rng.normal(170, 30, 5000).clip(0, 255).astype(np.uint8)
    lut = matching_lut(source, reference)
    assert lut.shape == (256,) and np.all(np.diff(lut) >= 0) and lut.min() >= 0 and lut.max() <= 255
    matched = np.rint(lut[source]).astype(np.uint8)
    before = emd_1d(histogram_1d(source), histogram_1d(reference))
    after = emd_1d(histogram_1d(matched), histogram_1d(reference))
    assert after < 0.05 * before
    assert abs(float(matched.mean()) - float(reference.mean())) < 2.0


@pytest.mark.parametrize("space", ["rgb", "lab", "hsv"])
def test_color_space_round_trip(space: str, astronaut: np.ndarray) -> None:
    back = from_color_space(to_color_space(astronaut, space), space)  # type: ignore[arg-type]
    assert back.dtype == np.uint8 and back.shape == astronaut.shape
    assert np.abs(back.astype(int) - astronaut).mean() < 2.0
    with pytest.raises(ValueError):
        to_color_space(astronaut, "xyz")  # type: ignore[arg-type]


def test_histogram_channels_saturation_and_value() -> None:
    colours = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.0, 0.0, 0.0], [0.2, 0.4, 0.8]])
    images = colours.T.reshape(1, 3, 1, 4)
    sv = histogram_channels(images, "sv")[0, :, 0]
    torch.testing.assert_close(sv[0], torch.tensor([1.0, 0.0, 0.0, 0.75]))
    torch.testing.assert_close(sv[1], torch.tensor([1.0, 0.5, 0.0, 0.8]))
    with pytest.raises(ValueError):
        histogram_channels(images, "sx")


def test_quantile_distance_is_the_exact_1d_wasserstein(rng: np.random.Generator) -> None:
    reference = torch.from_numpy(rng.uniform(0.2, 0.6, (2, 5000)).astype(np.float32))
    target = quantile_function(reference, 256)
    assert target.shape == (2, 256) and bool((target.diff(dim=1) >= 0).all())
    # Same distribution: about zero; shifted by 0.1: the shift (the 1-D transport cost).
    same = torch.from_numpy(rng.uniform(0.2, 0.6, (2, 3000)).astype(np.float32))
    assert float(quantile_distance(same, target).max()) < 0.01
    shifted = (same + 0.1).requires_grad_(True)
    distance = quantile_distance(shifted, target)
    torch.testing.assert_close(distance, torch.full((2,), 0.1), atol=0.01, rtol=0)
    (grad,) = torch.autograd.grad(distance.sum(), shifted)
    assert bool((grad > 0).all())  # every value is pulled down, towards the reference
    # Agrees with the binned NumPy distance the measurements use.
    values = (shifted.detach()[0].numpy() * 255).round().astype(np.uint8)
    binned = emd_1d(histogram_1d(values), histogram_1d((reference[0].numpy() * 255).round().astype(np.uint8)))
    assert abs(binned - float(distance[0])) < 0.01
    with pytest.raises(ValueError, match="do not fit"):
        quantile_distance(same[:1], target)
