"""The anonymization pipeline: detect -> regions -> generate -> post-process -> paste back."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from realanon.composite import mask_entire_frame, paste_regions
from realanon.config import AnonymizerConfig, RegionOptions
from realanon.errors import ConfigError
from realanon.interfaces import BatchDetector, Detector, Generator, PostProcessor, ScheduledSearch
from realanon.regions import build_regions, crop_with_padding
from realanon.registry import DETECTORS, GENERATORS, POSTPROCESSORS
from realanon.structures import AnonymizedFrame, Detections, GenerationBatch, Kind, Region, image_size

log = logging.getLogger(__name__)

# yunet finds faces from 12 px at 1080p (docs/regions.md, "Small faces at 1080p").
DEFAULT_DETECTORS: dict[str, str] = {"face": "yunet", "body": "coco_person"}
# Still images are searched more thoroughly than video frames, where speed matters: 384-px
# tiles found every face of the group-photo-like emotion sheets and faces from 14 px on the
# 720p collage (docs/regions.md), for about 70 ms per 1080p image on CPU. yunet searches every
# photo and every video frame whole at full resolution by default.
DEFAULT_PHOTO_DETECTOR_OPTIONS: dict[str, dict[str, Any]] = {"mediapipe_face": {"tile_size": 384}}


@functools.lru_cache(maxsize=4096)
def region_seed(base_seed: int, key: tuple[int, ...]) -> int:
    """A 63-bit seed derived from ``base_seed`` and a key (track id, or frame and index); cached,
    as a track asks for its seed on every frame and a crowd has dozens of tracks."""
    state = np.random.SeedSequence([base_seed & 0xFFFFFFFF, *(k & 0xFFFFFFFF for k in key)]).generate_state(2)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def validate_image(image: np.ndarray) -> None:
    """Raises ValueError unless ``image`` is an ``(H, W, 3)`` uint8 array."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        desc = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {desc}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image is empty: {image.shape}")


class Anonymizer:
    """Anonymizes RGB frames with one detector, one generator and any post-processors.

    Args:
        detector: Finds what to replace; None means detections must be passed to each call.
        generator: Synthesises the replacement for every region of a frame, batched.
        postprocessors: Applied in order to the generated crops.
        target: Which detections to replace: ``"face"`` or ``"body"``.
        regions: How detections become regions.
        threshold: Minimum detection score; None keeps everything the detector returns.
        seed: Base seed from which every region's seed is derived.
        fail_closed: When a stage raises on a frame, return that frame entirely masked
            (and the error in ``AnonymizedFrame.failed``) instead of raising.
        method_name: Name recorded in audits.
        photo_detector: Used instead of ``detector`` for still images (``photo=True``); None
            uses ``detector`` for everything.
    """

    def __init__(
        self,
        detector: Detector | None,
        generator: Generator,
        postprocessors: Sequence[PostProcessor] = (),
        *,
        target: Kind = "face",
        regions: RegionOptions | None = None,
        threshold: float | None = None,
        seed: int = 0,
        fail_closed: bool = True,
        method_name: str = "",
        photo_detector: Detector | None = None,
    ) -> None:
        if target not in ("face", "body"):
            raise ConfigError(f"target must be face or body, got {target!r}")
        self.detector = detector
        self.generator = generator
        self.postprocessors = tuple(postprocessors)
        self.target: Kind = target
        self.region_options = regions or RegionOptions()
        self.threshold = threshold
        self.seed = seed
        self.fail_closed = fail_closed
        self.method_name = method_name or type(generator).__name__
        self.photo_detector = photo_detector

    def __call__(
        self,
        image: np.ndarray,
        detections: Detections | None = None,
        *,
        frame_index: int = 0,
        photo: bool = False,
    ) -> AnonymizedFrame:
        """Anonymizes one frame.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.
            detections: Use these instead of running the detector (annotations, tracks, ...).
            frame_index: Position in a video; varies the seeds of untracked regions.
            photo: A still image, not a video frame: detected with ``photo_detector`` if set.

        Returns:
            The anonymized frame and what was replaced. With ``fail_closed`` an error in any
            stage yields a fully masked frame with ``failed`` set.
        """
        validate_image(image)
        try:
            return self._anonymize(image, detections, frame_index, photo)
        except Exception as err:  # noqa: BLE001 - fail closed on anything
            if not self.fail_closed:
                raise
            log.warning("frame %d failed (%s: %s); writing it fully masked", frame_index, type(err).__name__, err)
            empty = Detections.empty(image_size(image))
            return AnonymizedFrame(mask_entire_frame(image), empty, (), f"{type(err).__name__}: {err}")

    def detect(self, image: np.ndarray, *, photo: bool = False, frame_index: int | None = None) -> Detections:
        """Runs the detector (the photo detector for a still image, if any) and keeps the
        target kind above the threshold.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.
            photo: A still image: detected with ``photo_detector`` if set.
            frame_index: The frame's position in a video, for a detector whose search depends
                on it (:class:`~realanon.interfaces.ScheduledSearch`).
        """
        detector = self.photo_detector if photo and self.photo_detector is not None else self.detector
        if detector is None:
            raise ConfigError("this anonymizer has no detector; pass detections to each call")
        if frame_index is not None and isinstance(detector, ScheduledSearch):
            return self.select(detector.detect_frame(image, frame_index))
        return self.select(detector(image))

    def detect_many(self, images: Sequence[np.ndarray], frame_indices: Sequence[int] | None = None) -> list[Detections]:
        """Equals ``[self.detect(im, frame_index=i) for im, i in zip(images, frame_indices)]``, in
        one call when the detector batches.

        Uses the detector's ``detect_batch`` (see :class:`~realanon.interfaces.BatchDetector`)
        when it has one and calls it once per image otherwise.

        Raises:
            ValueError: ``detect_batch`` returned a different number of results than images.
        """
        if self.detector is None:
            raise ConfigError("this anonymizer has no detector; pass detections to each call")
        if isinstance(self.detector, BatchDetector):
            found = list(self.detector.detect_batch(images))
            if len(found) != len(images):
                raise ValueError(f"detect_batch returned {len(found)} results for {len(images)} images")
            return [self.select(detections) for detections in found]
        indices: Sequence[int | None] = frame_indices if frame_indices is not None else [None] * len(images)
        return [self.detect(image, frame_index=index) for image, index in zip(images, indices)]

    def select(self, detections: Detections) -> Detections:
        """Keeps the detections of the target kind that pass the threshold."""
        selected = detections.of_kind(self.target)
        return selected.above(self.threshold) if self.threshold is not None else selected

    def _anonymize(
        self, image: np.ndarray, detections: Detections | None, frame_index: int, photo: bool = False
    ) -> AnonymizedFrame:
        detections = self.detect(image, photo=photo) if detections is None else self.select(detections)
        if detections.image_size != image_size(image):
            raise ValueError(f"detections are for size {detections.image_size}, image is {image.shape[:2]}")
        regions = build_regions(detections, self.region_options)
        if not regions:
            return AnonymizedFrame(image.copy(), detections, ())
        batch = self.make_batch(image, regions, frame_index)
        generated = self.generate(batch)
        return AnonymizedFrame(paste_regions(image, regions, generated), detections, tuple(regions))

    def make_batch(self, image: np.ndarray, regions: Sequence[Region], frame_index: int = 0) -> GenerationBatch:
        """Crops every region and gives each a seed (tracks keep theirs across frames)."""
        crops, keypoints, seeds = [], [], []
        for i, region in enumerate(regions):
            crops.append(crop_with_padding(image, region.crop_box_xyxy))
            kp = region.detection.keypoints
            if kp is not None:
                kp = kp.copy()
                kp[:, 0] -= region.crop_box_xyxy[0]
                kp[:, 1] -= region.crop_box_xyxy[1]
            keypoints.append(kp)
            track = region.detection.track_id
            seeds.append(region_seed(self.seed, (1, track) if track is not None else (0, frame_index, i)))
        return GenerationBatch(
            crops=tuple(crops),
            replace_masks=tuple(r.replace_mask for r in regions),
            keypoints=tuple(keypoints),
            keypoint_layouts=tuple(r.detection.keypoint_layout for r in regions),
            kinds=tuple(r.detection.kind for r in regions),
            seeds=tuple(seeds),
            frames=(image,) * len(regions),
            tracked=tuple(r.detection.track_id is not None for r in regions),
        )

    def generate(self, batch: GenerationBatch) -> list[np.ndarray]:
        """Runs the generator then every post-processor on a batch."""
        generated = list(self.generator(batch))
        for post in self.postprocessors:
            generated = list(post(batch, generated))
        return generated


def _call_with_supported(factory: Callable[..., Any], options: dict[str, Any], extras: dict[str, Any]) -> Any:
    """Calls ``factory(**options)``, adding each of ``extras`` the factory accepts."""
    try:
        params = dict(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        params = {}
    accepts_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in extras.items() if (accepts_all or k in params) and k not in options}
    try:
        return factory(**options, **kwargs)
    except (TypeError, ValueError) as err:
        # Bad options, or a component that cannot serve the target: one line for the user.
        raise ConfigError(f"{getattr(factory, '__name__', factory)}: {err}") from None


def build_detector(config: AnonymizerConfig) -> Detector:
    """Builds the configured (or default) detector for the config's target."""
    name = config.detector or DEFAULT_DETECTORS[config.target]
    extras: dict[str, Any] = {"device": config.device}
    return _call_with_supported(DETECTORS.get(name), dict(config.detector_options), extras)  # type: ignore[no-any-return]


def photo_detector_options(config: AnonymizerConfig) -> dict[str, Any]:
    """The detector options for still images: the built-in photo defaults for the detector
    (or ``config.photo_detector_options``), under the keys ``detector_options`` sets."""
    name = config.detector or DEFAULT_DETECTORS[config.target]
    if config.photo_detector_options is not None:
        return {**config.detector_options, **config.photo_detector_options}
    return {**DEFAULT_PHOTO_DETECTOR_OPTIONS.get(name, {}), **config.detector_options}


def build_photo_detector(config: AnonymizerConfig) -> Detector | None:
    """A detector for still images, or None when its options equal the video detector's."""
    options = photo_detector_options(config)
    if options == dict(config.detector_options):
        return None
    return build_detector(config.replace(detector_options=options, photo_detector_options={}))


def build_generator(config: AnonymizerConfig) -> Generator:
    """Builds the configured generator."""
    extras: dict[str, Any] = {"device": config.device, "dtype": config.dtype, "target": config.target}
    return _call_with_supported(GENERATORS.get(config.method), dict(config.method_options), extras)  # type: ignore[no-any-return]


def build_postprocessors(config: AnonymizerConfig, generator: Generator) -> list[PostProcessor]:
    """Builds the harmonizer named by ``config.harmonize`` (none, or a registered post-processor)."""
    if config.harmonize in ("none", "", None):
        return []
    extras: dict[str, Any] = {"generator": generator, "device": config.device, "seed": config.seed}
    return [_call_with_supported(POSTPROCESSORS.get(config.harmonize), dict(config.harmonize_options), extras)]


def build_anonymizer(config: AnonymizerConfig | None = None, *, detector: Detector | None | str = "auto") -> Anonymizer:
    """Builds an :class:`Anonymizer` from a config.

    Args:
        config: The configuration; defaults to face blur.
        detector: ``"auto"`` builds the configured detector; None builds none (detections are
            then supplied per call); an object is used as is.
    """
    config = config or AnonymizerConfig()
    det = build_detector(config) if detector == "auto" else detector
    photo = build_photo_detector(config) if detector == "auto" else None
    generator = build_generator(config)
    return Anonymizer(
        det,  # type: ignore[arg-type]
        generator,
        build_postprocessors(config, generator),
        target=config.target,
        regions=config.regions,
        threshold=config.threshold,
        seed=config.seed,
        fail_closed=config.fail_closed,
        method_name=config.method,
        photo_detector=photo,
    )
