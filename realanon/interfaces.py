"""The small protocols the pipeline is built from.

A detector, a generator and a post-processor are each one call. Anything with the right
call works: a registered class, a plug-in from another package, or a plain function.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from realanon.structures import Detections, GenerationBatch


@runtime_checkable
class Detector(Protocol):
    """Finds faces or people in an RGB ``(H, W, 3)`` uint8 image."""

    def __call__(self, image: np.ndarray) -> Detections: ...


@runtime_checkable
class BatchDetector(Detector, Protocol):
    """A detector that can also run on several images in one call (e.g. one network forward).

    Optional: the pipeline uses ``detect_batch`` when a detector has it and calls the detector
    once per image otherwise.
    """

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Detects in every image; must equal ``[detector(im) for im in images]``.

        Args:
            images: RGB ``(H, W, 3)`` uint8 images; sizes may differ. The caller bounds memory
                by how many it passes at once.

        Returns:
            One :class:`Detections` per image, in order.
        """
        ...


@runtime_checkable
class TrackedSearch(Protocol):
    """A detector that may search less per frame when a tracker follows its output.

    Optional: :func:`realanon.video.anonymize_video` calls ``set_tracked(True)`` before a
    tracked video and ``set_tracked(False)`` after it; photos and untracked video never set it.
    A tracked detector may spread an expensive search over a few consecutive frames, relying on
    the tracker's coasting and look-ahead to cover the frames in between.
    """

    def set_tracked(self, tracked: bool) -> None:
        """Switches the tracked-video mode on or off; either way earlier frames are forgotten."""
        ...


@runtime_checkable
class ScheduledSearch(Protocol):
    """A tracked detector whose search depends on the frame's position in the video.

    Optional: :func:`realanon.video.anonymize_video` calls ``detect_frame(image, frame_index)``
    instead of ``detector(image)`` when a detector has it. Knowing the index (rather than
    counting calls) lets a detector search some scales on some frames only and still give the
    same result whichever thread runs which frame. Outside tracked video
    (:class:`TrackedSearch`) it must equal ``detector(image)``.
    """

    def detect_frame(self, image: np.ndarray, frame_index: int) -> Detections:
        """Detects in frame ``frame_index`` (0-based) of the video being anonymized."""
        ...


@runtime_checkable
class ConcurrentDetector(Protocol):
    """A detector that may be called from several threads at once.

    Optional: :func:`realanon.video.anonymize_video` then detects two groups of frames at the
    same time (frame-level parallelism: no synchronisation inside a frame), when
    ``concurrent_calls()`` says so at the start of the video. A detector that keeps state from
    frame to frame must answer False while it does.
    """

    def concurrent_calls(self) -> bool:
        """Whether calls from several threads at once are safe and give the same results."""
        ...


@runtime_checkable
class Generator(Protocol):
    """Synthesises the masked part of every crop in a batch.

    Returns one ``(h_i, w_i, 3)`` uint8 RGB array per crop, the same size as the crop.
    Pixels outside the replace-mask may hold anything; only masked pixels are pasted back.
    The result must depend only on the batch (including its seeds), so the same seeds give
    the same output.
    """

    def __call__(self, batch: GenerationBatch) -> list[np.ndarray]: ...


@runtime_checkable
class PostProcessor(Protocol):
    """Adjusts generated crops, e.g. to match the colour statistics of the scene."""

    def __call__(self, batch: GenerationBatch, generated: list[np.ndarray]) -> list[np.ndarray]: ...


@runtime_checkable
class LatentGenerator(Generator, Protocol):
    """A generator whose output is a differentiable function of a latent per region.

    The latent-optimisation harmonizer uses these three calls; ``__call__(batch)`` must equal
    ``finalize(batch, synthesize(batch, init_latents(batch))[0])``.
    """

    def init_latents(self, batch: GenerationBatch) -> Any:
        """``(N, ...)`` torch tensor of latents, drawn from each region's seed."""
        ...

    def synthesize(self, batch: GenerationBatch, latents: Any) -> tuple[Any, Any]:
        """Differentiable synthesis.

        Returns:
            ``(images, masks)``: ``(N, 3, S, S)`` float tensor in [0, 1] at the generator's
            working resolution, and ``(N, 1, S, S)`` float tensor, 1 where pixels are synthesised.
        """
        ...

    def finalize(self, batch: GenerationBatch, images: Any) -> list[np.ndarray]:
        """Maps working-resolution images back to ``(h_i, w_i, 3)`` uint8 crops."""
        ...
