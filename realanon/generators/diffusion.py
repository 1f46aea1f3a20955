"""``diffusion``: diffusers inpainting pipelines (SD 1.5/2 inpainting, SDXL inpainting, ...).

Any directory that ``diffusers.AutoPipelineForInpainting`` loads works, as does a hub id
pinned to a revision (``"org/name@commit"``) that is in the local Hugging Face cache or can be
downloaded. Each crop (the pipeline already adds context around the person) is padded to a
square, resized to the working resolution, its masked pixels greyed out so nothing of the
original person reaches the model, and all crops are denoised in one batched call, each with
its own seeded generator and a prompt describing a generic person.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from realanon.errors import ConfigError
from realanon.registry import register_generator
from realanon.structures import GenerationBatch, Kind
from realanon.weights import resolve_model

DEFAULT_MODEL = "runwayml/stable-diffusion-inpainting"
PROMPTS: dict[str, str] = {
    "face": "a photo of the face of {person}, natural skin texture, realistic, detailed, natural light",
    "body": "a photo of {person}, full body, realistic, natural pose, natural light",
}
PERSONS = (
    "a young woman", "a young man", "a middle-aged woman", "a middle-aged man", "an older woman",
    "an older man", "a woman", "a man",
)
NEGATIVE_PROMPT = "cartoon, painting, illustration, deformed, distorted, disfigured, blurry, text, watermark"


def prompt_for(kind: Kind, seed: int, templates: dict[str, str], persons: Sequence[str]) -> str:
    """The prompt of one region: its kind's template with a person chosen by the seed."""
    return templates[kind].format(person=persons[seed % len(persons)])


def load_pipeline(model: str | Path, dtype: Any) -> Any:
    """Loads an inpainting pipeline from a local directory, manifest name or hub id (safetensors only)."""
    from diffusers import AutoPipelineForInpainting

    directory = resolve_model(model).directory
    try:
        return AutoPipelineForInpainting.from_pretrained(
            str(directory), torch_dtype=dtype, use_safetensors=True, local_files_only=True,
            safety_checker=None, requires_safety_checker=False,
        )
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot load an inpainting pipeline from {directory}: {err}") from None


@register_generator("diffusion")
class DiffusionInpainter:
    """Inpaints every region of a batch with a diffusers inpainting pipeline.

    Args:
        model: Model directory, shipped name, hub id (``"org/name@revision"``), or a loaded
            diffusers inpainting pipeline.
        prompt: Template per kind (``{person}`` is filled from ``persons`` by the region's seed);
            a plain string is used for both kinds.
        negative_prompt: What to steer away from.
        persons: Generic person descriptions the prompt picks from.
        steps: Denoising steps.
        guidance: Classifier-free guidance scale.
        resolution: Working side in pixels (multiple of 8; 512 for SD 1.5/2, 1024 for SDXL).
        device: Torch device.
        dtype: ``"float32"`` or ``"float16"`` (CUDA).
    """

    def __init__(
        self,
        model: Any = DEFAULT_MODEL,
        prompt: str | dict[str, str] | None = None,
        negative_prompt: str = NEGATIVE_PROMPT,
        persons: Sequence[str] = PERSONS,
        steps: int = 25,
        guidance: float = 7.5,
        resolution: int = 512,
        device: str = "cpu",
        dtype: str = "float32",
    ) -> None:
        import torch

        from realanon.generators.gan import parse_dtype

        if steps < 1 or resolution < 8 or resolution % 8 or not persons:
            raise ConfigError("diffusion needs steps >= 1, a resolution that is a multiple of 8, and persons")
        self.templates = dict(PROMPTS) if prompt is None else (
            {k: prompt for k in PROMPTS} if isinstance(prompt, str) else {**PROMPTS, **prompt})
        self.negative_prompt = negative_prompt
        self.persons = tuple(persons)
        self.steps, self.guidance, self.resolution = int(steps), float(guidance), int(resolution)
        self.device, self.dtype = torch.device(device), parse_dtype(dtype)
        pipe = model if hasattr(model, "unet") or hasattr(model, "transformer") else load_pipeline(model, self.dtype)
        self.pipe = pipe.to(self.device, self.dtype)
        self.pipe.set_progress_bar_config(disable=True)

    def _inputs(self, batch: GenerationBatch) -> tuple[list[Any], list[Any]]:
        from PIL import Image

        from realanon.generators.gan_modules import fit_square

        images, masks = [], []
        for crop, mask in zip(batch.crops, batch.replace_masks):
            image, work_mask, _ = fit_square(crop, mask, self.resolution)
            image = np.where(work_mask[:, :, None] > 0, 0.5, image)  # the person never reaches the model
            images.append(Image.fromarray(np.round(image * 255).astype(np.uint8)))
            masks.append(Image.fromarray((work_mask * 255).astype(np.uint8)))
        return images, masks

    def __call__(self, batch: GenerationBatch) -> list[np.ndarray]:
        import torch

        from realanon.generators.gan_modules import square_fit, unfit_square

        if len(batch) == 0:
            return []
        images, masks = self._inputs(batch)
        generators = [torch.Generator().manual_seed(int(s) & ((1 << 63) - 1)) for s in batch.seeds]
        prompts = [prompt_for(k, s, self.templates, self.persons) for k, s in zip(batch.kinds, batch.seeds)]
        with torch.no_grad():
            result = self.pipe(
                prompt=prompts, negative_prompt=[self.negative_prompt] * len(batch), image=images,
                mask_image=masks, generator=generators, num_inference_steps=self.steps,
                guidance_scale=self.guidance, height=self.resolution, width=self.resolution,
                strength=1.0, output_type="np",
            ).images
        out = []
        for crop, mask, square in zip(batch.crops, batch.replace_masks, np.asarray(result, dtype=np.float32)):
            generated = unfit_square(square, square_fit(*mask.shape))
            out.append(np.where(mask[:, :, None], np.round(generated * 255).clip(0, 255).astype(np.uint8), crop))
        return out
