"""The diffusion generator, with a tiny randomly initialised SD inpainting pipeline saved to disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from realanon.errors import RealanonError  # noqa: E402
from realanon.generators.diffusion import DiffusionInpainter, prompt_for  # noqa: E402
from realanon.registry import GENERATORS  # noqa: E402
from realanon.structures import GenerationBatch  # noqa: E402
from tests.helpers import assert_replaces_only_masked  # noqa: E402


def _byte_chars() -> list[str]:
    """The 256 printable characters byte-level BPE uses for the 256 byte values."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("\xa1"), ord("\xac") + 1), *range(ord("\xae"), 256)]
    extra = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


def _tiny_tokenizer(tmp: Path):  # type: ignore[no-untyped-def]
    """A character-level CLIP tokenizer from a vocabulary written here (no download)."""
    from transformers import CLIPTokenizer

    chars = _byte_chars()
    tokens = ["<|startoftext|>", "<|endoftext|>", *chars, *(c + "</w>" for c in chars)]
    vocab = {t: i for i, t in enumerate(tokens)}
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=32)
    assert tokenizer("a face").input_ids[0] == vocab["<|startoftext|>"]
    return tokenizer


def _tiny_pipeline_dir(tmp: Path) -> Path:
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    tokenizer = _tiny_tokenizer(tmp)
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32), layers_per_block=1, sample_size=16, in_channels=9, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16, norm_num_groups=8, attention_head_dim=4,
    )
    vae = AutoencoderKL(
        block_out_channels=(16, 32), in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=8,
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
    )
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_attention_heads=2,
        num_hidden_layers=2, max_position_embeddings=32, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id,
    ))
    pipe = StableDiffusionInpaintPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=DDIMScheduler(steps_offset=1),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    out = tmp / "tiny-sd-inpaint"
    pipe.save_pretrained(out, safe_serialization=True)
    return out


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny_pipeline_dir(tmp_path_factory.mktemp("diffusion"))


@pytest.fixture(scope="module")
def generator(tiny_dir: Path) -> DiffusionInpainter:
    return DiffusionInpainter(model=str(tiny_dir), steps=2, resolution=32, guidance=2.0)


def _batch(seeds: tuple[int, ...]) -> GenerationBatch:
    rng = np.random.default_rng(1)
    crops, masks = [], []
    for h, w in [(40, 30), (24, 36), (32, 32)][: len(seeds)]:
        crops.append(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        mask = np.zeros((h, w), bool)
        mask[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = True
        masks.append(mask)
    n = len(seeds)
    return GenerationBatch(tuple(crops), tuple(masks), (None,) * n, (None,) * n, ("face",) * n, seeds)


def test_saved_directory_has_no_pickles(tiny_dir: Path) -> None:
    assert list(tiny_dir.rglob("*.safetensors"))
    assert not list(tiny_dir.rglob("*.bin")) and not list(tiny_dir.rglob("*.pt"))


def test_round_trip_shapes_and_unmasked_pixels(generator: DiffusionInpainter) -> None:
    batch = _batch((1, 2, 3))
    out = generator(batch)
    assert_replaces_only_masked(batch, out)


def test_seeded(generator: DiffusionInpainter) -> None:
    a, b = generator(_batch((5, 6))), generator(_batch((5, 6)))
    c = generator(_batch((7, 6)))
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


def test_registered_and_built_by_name(tiny_dir: Path) -> None:
    assert "diffusion" in GENERATORS.names()
    gen = GENERATORS.build("diffusion", model=str(tiny_dir), steps=1, resolution=16)
    assert len(gen(_batch((1,)))) == 1


def test_hub_id_offline_gives_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # an empty cache: nothing to find
    with pytest.raises(RealanonError, match="hf download runwayml/stable-diffusion-inpainting --revision main"):
        DiffusionInpainter(model="runwayml/stable-diffusion-inpainting@main")


def test_prompt_templates() -> None:
    templates = {"face": "face of {person}", "body": "{person} walking"}
    assert prompt_for("face", 1, templates, ("a", "b")) == "face of b"
    assert prompt_for("body", 2, templates, ("a", "b")) == "a walking"


@pytest.mark.gpu
def test_float16_on_cuda(tiny_dir: Path) -> None:
    gen = DiffusionInpainter(model=str(tiny_dir), steps=2, resolution=32, device="cuda", dtype="float16")
    assert gen(_batch((1, 2)))[0].dtype == np.uint8
