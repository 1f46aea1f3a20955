"""Ad-hoc histogram matching of generated regions to their context ring."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realanon.config import AnonymizerConfig
from realanon.errors import ConfigError
from realanon.pipeline import build_anonymizer
from realanon.postprocess.histogram import histogram_distance
from realanon.postprocess.match import HistogramMatch, context_pixels
from realanon.regions import union_mask
from realanon.registry import POSTPROCESSORS
from realanon.structures import GenerationBatch

from .conftest import astronaut_detections


def colour_cast(batch: GenerationBatch) -> list[np.ndarray]:
    """The original crops with a strong red cast and crushed contrast inside each mask."""
    out = []
    for crop, mask in zip(batch.crops, batch.replace_masks, strict=True):
        cast = crop.astype(np.float32) * 0.5 + np.array([110.0, 20.0, 10.0])
        fake = crop.copy()
        fake[mask] = np.clip(cast, 0, 255).astype(np.uint8)[mask]
        out.append(fake)
    return out


def ring_distance(batch: GenerationBatch, generated: list[np.ndarray], space: str) -> list[float]:
    return [
        histogram_distance(g[m], c[~m], space)  # type: ignore[arg-type]
        for g, c, m in zip(generated, batch.crops, batch.replace_masks, strict=True)
    ]


@pytest.mark.parametrize("space", ["lab", "rgb", "hsv"])
def test_match_reduces_distance_to_the_ring(space: str, astronaut_batch: GenerationBatch) -> None:
    generated = colour_cast(astronaut_batch)
    matched = HistogramMatch(color_space=space, feather=0.0)(astronaut_batch, generated)  # type: ignore[arg-type]
    before = ring_distance(astronaut_batch, generated, space)
    after = ring_distance(astronaut_batch, matched, space)
    for b, a in zip(before, after, strict=True):
        assert a < 0.25 * b, (space, before, after)


def test_strength_interpolates(astronaut_batch: GenerationBatch) -> None:
    generated = colour_cast(astronaut_batch)
    distances = [
        ring_distance(astronaut_batch, HistogramMatch(strength=s)(astronaut_batch, generated), "lab")[0]
        for s in (0.0, 0.5, 1.0)
    ]
    assert distances[0] > distances[1] > distances[2]
    unchanged = HistogramMatch(strength=0.0)(astronaut_batch, generated)
    assert all(np.array_equal(u, g) for u, g in zip(unchanged, generated, strict=True))


def test_only_masked_pixels_change_and_output_is_deterministic(astronaut_batch: GenerationBatch) -> None:
    generated = colour_cast(astronaut_batch)
    post = HistogramMatch(reference="rings", color_space="lab")
    first, second = post(astronaut_batch, generated), post(astronaut_batch, generated)
    for out, again, gen, mask in zip(first, second, generated, astronaut_batch.replace_masks, strict=True):
        assert out.dtype == np.uint8 and out.shape == gen.shape
        assert np.array_equal(out[~mask], gen[~mask])
        assert not np.array_equal(out[mask], gen[mask])
        assert np.array_equal(out, again)


def test_rings_reference_pools_every_region(astronaut_batch: GenerationBatch) -> None:
    ring0 = context_pixels(astronaut_batch, 0, "ring")
    pooled = context_pixels(astronaut_batch, 0, "rings")
    assert len(ring0) == int((~astronaut_batch.replace_masks[0]).sum())
    assert len(pooled) == sum(int((~m).sum()) for m in astronaut_batch.replace_masks)


@pytest.mark.parametrize(
    "options",
    [{"reference": "scene"}, {"color_space": "xyz"}, {"strength": 1.5}, {"feather": -0.1}],
)
def test_bad_options_raise_config_error(options: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        HistogramMatch(**options)  # type: ignore[arg-type]


def test_match_through_build_anonymizer(astronaut: np.ndarray) -> None:
    assert "match" in POSTPROCESSORS.names()
    detections = astronaut_detections(astronaut)
    plain = build_anonymizer(AnonymizerConfig(method="blur"), detector=None)
    config = AnonymizerConfig(method="blur", harmonize="match", harmonize_options={"color_space": "hsv"})
    harmonized = build_anonymizer(config, detector=None)
    assert isinstance(harmonized.postprocessors[0], HistogramMatch)
    assert harmonized.postprocessors[0].color_space == "hsv"
    a, b = plain(astronaut, detections), harmonized(astronaut, detections)
    assert a.failed is None and b.failed is None
    changed = np.any(a.image != b.image, axis=-1)
    assert changed.any()
    assert not (changed & ~union_mask(b.regions, astronaut.shape[:2])).any()
    np.testing.assert_array_equal(b.image, harmonized(astronaut, detections).image)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    space=st.sampled_from(["rgb", "lab", "hsv"]),
    reference=st.sampled_from(["ring", "rings"]),
    strength=st.floats(0.0, 1.0),
)
def test_match_never_touches_unmasked_pixels(seed: int, space: str, reference: str, strength: float) -> None:
    rng = np.random.default_rng(seed)
    sizes = [tuple(rng.integers(12, 48, size=2)) for _ in range(2)]
    crops = tuple(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for h, w in sizes)
    masks = tuple(rng.random((h, w)) < rng.uniform(0.2, 0.8) for h, w in sizes)
    batch = GenerationBatch(crops, masks, (None, None), (None, None), ("face", "face"), (1, 2))
    generated = [rng.integers(0, 256, size=c.shape, dtype=np.uint8) for c in crops]
    post = HistogramMatch(reference=reference, color_space=space, strength=strength, min_pixels=1)  # type: ignore[arg-type]
    for out, gen, mask in zip(post(batch, generated), generated, masks, strict=True):
        assert out.dtype == np.uint8 and out.shape == gen.shape
        np.testing.assert_array_equal(out[~mask], gen[~mask])


def test_frame_reference_uses_the_whole_frame() -> None:
    from realanon.postprocess.match import context_pixels

    frame = np.zeros((40, 50, 3), np.uint8)
    frame[:, 25:] = 200
    crop = np.repeat(np.linspace(0, 255, 10, dtype=np.uint8)[None, :, None], 10, axis=0).repeat(3, axis=2)
    mask = np.zeros((10, 10), bool)
    mask[2:8, 2:8] = True
    batch = GenerationBatch((crop,), (mask,), (None,), (None,), ("face",), (0,), frames=(frame,))
    pixels = context_pixels(batch, 0, "frame")
    assert len(pixels) == 2000 and set(np.unique(pixels)) == {0, 200}
    with pytest.raises(ValueError, match="frames"):
        context_pixels(GenerationBatch((crop,), (mask,), (None,), (None,), ("face",), (0,)), 0, "frame")
    out = HistogramMatch(reference="frame", color_space="rgb", feather=0.0, min_pixels=1)(batch, [crop.copy()])[0]
    # The grey ramp (56..198) is remapped onto the frame's range: its two tones 0 and 200 appear.
    values = set(np.unique(out[mask]).tolist())
    assert {0, 200} <= values and max(values) == 200
