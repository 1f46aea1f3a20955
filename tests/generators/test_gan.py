"""The gan generator: shapes, seeding, batching, latents, loading and the training script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from realanon.config import AnonymizerConfig
from realanon.errors import ConfigError
from realanon.generators.gan import GanInpainter
from realanon.generators.gan_modules import (
    GanConfig,
    GanGenerator,
    fit_square,
    keypoint_heatmaps,
    select_keypoints,
    unfit_square,
)
from realanon.interfaces import LatentGenerator
from realanon.pipeline import build_anonymizer
from realanon.registry import GENERATORS
from realanon.structures import Detection, Detections, GenerationBatch
from realanon.weights import WeightsError, save_model
from tests.helpers import assert_replaces_only_masked

REPO = Path(__file__).resolve().parents[2]
TINY = GanConfig(resolution=32, channels=(8, 16, 16), latent_dim=8, style_dim=16)


def _tiny_network(seed: int = 0) -> GanGenerator:
    """A random tiny generator whose style layers are not zero (as they are at initialisation)."""
    torch.manual_seed(seed)
    net = GanGenerator(TINY)
    with torch.no_grad():
        for name, param in net.named_parameters():
            if "affine" in name:
                param.normal_(0, 0.3)
        net.w_avg.normal_()
    return net


def _batch(seeds: tuple[int, ...], sizes: tuple[tuple[int, int], ...] = ((40, 30), (24, 36), (33, 33))) -> GenerationBatch:
    rng = np.random.default_rng(0)
    crops, masks, kps = [], [], []
    for h, w in sizes[: len(seeds)]:
        crops.append(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        mask = np.zeros((h, w), bool)
        mask[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = True
        masks.append(mask)
        kps.append(np.array([[w * 0.4, h * 0.4, 1], [w * 0.6, h * 0.4, 1], [w / 2, h / 2, 1],
                             [w / 2, h * 0.7, 1], [w * 0.2, h / 2, 0.5], [w * 0.8, h / 2, 0.5]], np.float32))
    n = len(seeds)
    return GenerationBatch(tuple(crops), tuple(masks), tuple(kps), ("face6",) * n, ("face",) * n, seeds)


@pytest.fixture(scope="module")
def gan() -> GanInpainter:
    return GanInpainter(model=_tiny_network())


def test_implements_latent_generator(gan: GanInpainter) -> None:
    assert isinstance(gan, LatentGenerator)


def test_shapes_and_unmasked_pixels(gan: GanInpainter) -> None:
    batch = _batch((1, 2, 3))
    images, masks = gan.synthesize(batch, gan.init_latents(batch))
    assert images.shape == (3, 3, 32, 32) and masks.shape == (3, 1, 32, 32)
    assert images.dtype == torch.float32 and 0 <= images.min() and images.max() <= 1
    out = gan(batch)
    assert_replaces_only_masked(batch, out)


def test_call_equals_latent_path(gan: GanInpainter) -> None:
    batch = _batch((4, 5))
    expected = gan.finalize(batch, gan.synthesize(batch, gan.init_latents(batch))[0])
    for a, b in zip(gan(batch), expected):
        np.testing.assert_array_equal(a, b)


def test_batched_equals_one_by_one(gan: GanInpainter) -> None:
    batch = _batch((7, 8, 9))
    together = gan(batch)
    for i, result in enumerate(together):
        single = GenerationBatch((batch.crops[i],), (batch.replace_masks[i],), (batch.keypoints[i],),
                                 (batch.keypoint_layouts[i],), (batch.kinds[i],), (batch.seeds[i],))
        diff = np.abs(gan(single)[0].astype(int) - result.astype(int))
        assert diff.max() <= 1  # float rounding of batched convolutions may move a value by one level


def test_seeds(gan: GanInpainter) -> None:
    a, b, c = gan(_batch((11, 12))), gan(_batch((11, 12))), gan(_batch((13, 12)))
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])
    np.testing.assert_array_equal(a[1], c[1])


def test_truncation_zero_ignores_the_seed() -> None:
    gan = GanInpainter(model=_tiny_network(), truncation=0.0)
    np.testing.assert_array_equal(gan(_batch((1,)))[0], gan(_batch((2,)))[0])
    with pytest.raises(ConfigError):
        GanInpainter(model=_tiny_network(), truncation=-1)


def test_latent_gradients_flow(gan: GanInpainter) -> None:
    batch = _batch((1, 2))
    latents = gan.init_latents(batch).requires_grad_(True)
    images, masks = gan.synthesize(batch, latents)
    (images * masks).mean().backward()
    assert latents.grad is not None and latents.grad.abs().sum(dim=1).min() > 0
    assert all(p.grad is None for p in gan.network.parameters())


@pytest.mark.parametrize(("space", "shape"), [("w+", (5, 16)), ("w", (16,)), ("z", (8,))])
def test_every_latent_space_gives_the_same_output(space: str, shape: tuple[int, ...]) -> None:
    """The latent space only changes what an optimiser sees, never the generator's own output."""
    batch = _batch((21, 22))
    reference = GanInpainter(model=_tiny_network(), latent_space="z", truncation=0.8)
    gan = GanInpainter(model=_tiny_network(), latent_space=space, truncation=0.8)  # type: ignore[arg-type]
    latents = gan.init_latents(batch)
    assert latents.shape == (2, *shape) and gan.latent_shape == shape
    images, _ = gan.synthesize(batch, latents)
    expected, _ = reference.synthesize(batch, reference.init_latents(batch))
    torch.testing.assert_close(images, expected, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="latents must be"):
        gan.synthesize(batch, torch.zeros(2, 3))


def test_forward_styles_matches_forward() -> None:
    net = _tiny_network()
    condition, z = torch.randn(2, 4 + TINY.num_keypoints, 32, 32), torch.randn(2, 8)
    repeated = net.style(z)[:, None].expand(-1, net.num_styles, -1)
    torch.testing.assert_close(net.forward_styles(condition, repeated), net(condition, z))
    with pytest.raises(ConfigError, match="latent_space"):
        GanInpainter(model=net, latent_space="x")  # type: ignore[arg-type]


def test_keypoints_condition_the_output(gan: GanInpainter) -> None:
    batch = _batch((3,))
    moved = GenerationBatch(batch.crops, batch.replace_masks, (batch.keypoints[0] + [5, 3, 0],),
                            batch.keypoint_layouts, batch.kinds, batch.seeds)
    assert not np.array_equal(gan(batch)[0], gan(moved)[0])


def test_heatmaps_and_keypoint_selection() -> None:
    maps = keypoint_heatmaps(np.array([[10.5, 20.5, 1.0], [3, 3, 0.0]], np.float32), 32)
    assert maps.shape == (2, 32, 32) and np.unravel_index(maps[0].argmax(), (32, 32)) == (20, 10)
    assert maps[1].max() == 0
    assert select_keypoints(None, None, "face6", 6).shape == (6, 3)
    mesh = np.random.default_rng(0).random((478, 3)).astype(np.float32)
    np.testing.assert_array_equal(select_keypoints(mesh, "face_mesh478", "face6", 6)[2], mesh[1])
    assert select_keypoints(mesh[:17], "coco17", "face6", 6)[:, 2].max() == 0


def test_square_fit_round_trip_and_no_leak() -> None:
    crop = np.random.default_rng(0).integers(0, 256, (50, 20, 3), dtype=np.uint8)
    mask = np.zeros((50, 20), bool)
    mask[10:11, 5:6] = True  # a single pixel must still be masked at the working size
    image, work_mask, fit = fit_square(crop, mask, 16)
    assert image.shape == (16, 16, 3) and work_mask.sum() >= 1
    assert unfit_square(image, fit).shape == (50, 20, 3)


def test_target_must_match_the_model() -> None:
    with pytest.raises(ConfigError, match="faces"):
        GanInpainter(model=_tiny_network(), target="body")


def test_float16_constructs() -> None:
    gan = GanInpainter(model=_tiny_network(), dtype="float16")
    assert next(gan.network.parameters()).dtype == torch.float16


def test_float16_matches_float32_on_the_shipped_model() -> None:
    # The CUDA float16 path, run on the CPU (slow there, but the same arithmetic in half precision).
    batch = _batch((1, 2, 3))
    full, half = GanInpainter()(batch), GanInpainter(dtype="float16")(batch)
    for a, b, mask in zip(full, half, batch.replace_masks):
        diff = np.abs(a.astype(int) - b.astype(int))
        assert diff.max() <= 2 and diff[mask].mean() < 0.5


@pytest.mark.gpu
def test_float16_cuda_runs() -> None:
    gan = GanInpainter(model=_tiny_network(), device="cuda", dtype="float16")
    out = gan(_batch((1, 2)))
    assert out[0].dtype == np.uint8 and out[0].shape == (40, 30, 3)


def test_loads_from_a_directory_and_refuses_bad_ones(tmp_path: Path) -> None:
    net = _tiny_network()
    save_model(net, TINY.to_dict(), tmp_path / "ok")
    loaded = GanInpainter(model=str(tmp_path / "ok"))
    np.testing.assert_array_equal(loaded(_batch((1,)))[0], GanInpainter(model=net)(_batch((1,)))[0])
    bad = dict(TINY.to_dict(), channels=[8, 16, 32])
    save_model(net, bad, tmp_path / "bad")
    with pytest.raises(WeightsError, match="wrong shape"):
        GanInpainter(model=str(tmp_path / "bad"))
    save_model(net, {**TINY.to_dict(), "architecture": "other"}, tmp_path / "arch")
    with pytest.raises(WeightsError, match="architecture"):
        GanInpainter(model=str(tmp_path / "arch"))


def test_shipped_default_model_anonymizes_a_face(astronaut: np.ndarray) -> None:
    assert "gan" in GENERATORS.names()
    anonymizer = build_anonymizer(AnonymizerConfig(method="gan", seed=3), detector=None)
    det = Detection((180, 60, 270, 170), 0.9, "face")
    result = anonymizer(astronaut, Detections((det,), astronaut.shape[:2]))
    assert result.failed is None and len(result.regions) == 1
    changed = np.any(result.image != astronaut, axis=2)
    assert changed.any()
    region = result.regions[0]
    x1, y1, x2, y2 = region.crop_box_xyxy
    assert not changed[: max(y1, 0)].any() and not changed[y2:].any()


def test_default_model_follows_the_target() -> None:
    face, body = GanInpainter(), GanInpainter(target="body")
    assert (face.config.kind, face.config.keypoint_layout) == ("face", "face6")
    assert (body.config.kind, body.config.keypoint_layout, body.config.num_keypoints) == ("body", "coco17", 17)


def test_shipped_body_model_anonymizes_a_person(astronaut: np.ndarray) -> None:
    anonymizer = build_anonymizer(AnonymizerConfig(method="gan", target="body", seed=3), detector=None)
    det = Detection((130, 20, 420, 511), 0.9, "body")
    result = anonymizer(astronaut, Detections((det,), astronaut.shape[:2]))
    assert result.failed is None and len(result.regions) == 1
    region = result.regions[0]
    x1, y1, x2, y2 = region.crop_box_xyxy
    changed = np.any(result.image != astronaut, axis=2)
    assert changed.any() and not changed[:, : max(x1, 0)].any() and not changed[:, x2:].any()
    # A synthesized person, not a flat fill: the replaced pixels keep texture.
    assert result.image[changed].std(axis=0).mean() > 10


@pytest.mark.parametrize("kind", ["face", "body"])
def test_train_script_smoke(tmp_path: Path, kind: str) -> None:
    out = tmp_path / "model"
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "train_gan.py"), "--smoke", "--kind", kind, "--out", str(out),
         "--threads", "1", "--keypoint-dropout", "0.5", "--low-res", "0.5"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '"sha256"' in proc.stdout
    assert (out / "samples.png").stat().st_size > 0
    gan = GanInpainter(model=str(out), target=kind)
    assert gan.config.kind == kind
    assert gan(_batch((1,)))[0].shape == (40, 30, 3)
