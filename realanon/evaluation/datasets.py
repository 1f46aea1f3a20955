"""Evaluation data: person-detection splits (vtest pseudo-GT or COCO files) and identity faces."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from realanon.evaluation.coco import Instance, Sample, instances_from_coco, load_coco_split
from realanon.evaluation.protocol import DataOptions, PrivacyOptions
from realanon.structures import Detection, Detections

BoxDetector = Callable[[np.ndarray], list[Instance]]
# The name that selects OpenCV's HOG people detector instead of a registered detector.
HOG = "hog"


def hog_people(upscale: float = 1.0, min_weight: float = 0.3) -> BoxDetector:
    """OpenCV's HOG+SVM people detector as a box detector.

    Args:
        upscale: The image is enlarged by this factor first (HOG needs people >= 128 px).
        min_weight: SVM margins below this are dropped; scores are ``1 - exp(-weight)``.
    """
    import cv2

    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())  # type: ignore[attr-defined]

    def detect(image: np.ndarray) -> list[Instance]:
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        if upscale != 1.0:
            gray = cv2.resize(gray, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_LINEAR)
        boxes, weights = hog.detectMultiScale(gray, winStride=(8, 8), padding=(8, 8), scale=1.05)
        out = []
        for (x, y, w, h), wt in zip(np.asarray(boxes).reshape(-1, 4), np.ravel(weights)):
            if wt >= min_weight:
                box = tuple(float(v) / upscale for v in (x, y, x + w, y + h))
                out.append(Instance(box, 1, float(1 - np.exp(-wt))))  # type: ignore[arg-type]
        return out

    return detect


def registered_box_detector(name: str, kind: str = "body", **options: Any) -> BoxDetector:
    """A registered realanon detector (built with ``options``), keeping ``kind``, as a box detector."""
    from realanon.registry import DETECTORS

    detector = DETECTORS.build(name, **options)

    def detect(image: np.ndarray) -> list[Instance]:
        return [
            Instance(d.box_xyxy, 1, d.score, d.mask, d.keypoints if d.keypoint_layout == "coco17" else None)
            for d in detector(image).of_kind(kind)  # type: ignore[arg-type]
        ]

    return detect


def upscaled(detect: BoxDetector, factor: float) -> BoxDetector:
    """``detect`` run on images enlarged by ``factor``, its instances mapped back to the input's pixels.

    Boxes and keypoints are divided by ``factor``; masks are resized back to the input's size.
    """
    import cv2

    if factor == 1.0:
        return detect

    def run(image: np.ndarray) -> list[Instance]:
        h, w = image.shape[:2]
        big = cv2.resize(image, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_LINEAR)
        out = []
        for inst in detect(big):
            mask = None if inst.mask is None else cv2.resize(inst.mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
            kps = None
            if inst.keypoints is not None:
                kps = inst.keypoints.astype(np.float32).copy()
                kps[:, :2] /= factor
            box = tuple(float(v) / factor for v in inst.box_xyxy)
            out.append(Instance(box, inst.category_id, inst.score, mask, kps))  # type: ignore[arg-type]
        return out

    return run


def box_detector(name: str, upscale: float = 1.0, options: Mapping[str, Any] | None = None) -> BoxDetector:
    """``"hog"`` or a registered detector name, as a box detector of people.

    Args:
        name: ``"hog"`` (OpenCV's HOG people detector) or a registered detector (e.g. ``"coco_person"``).
        upscale: Images are enlarged by this factor before detection (boxes are mapped back).
        options: Keyword arguments for the detector; an ``upscale`` key overrides ``upscale``
            for this detector alone. For ``"hog"``: ``min_weight``.

    Raises:
        ConfigError: unknown detector name or a non-positive upscale.
    """
    from realanon.errors import ConfigError

    opts = dict(options or {})
    factor = float(opts.pop("upscale", upscale))
    if factor <= 0:
        raise ConfigError(f"detector {name!r}: upscale must be > 0, got {factor}")
    if name == HOG:
        return hog_people(factor, **opts)
    return upscaled(registered_box_detector(name, **opts), factor)


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    import cv2

    if scale == 1.0:
        return image
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def _scaled_instance(inst: Instance, scale: float, size: tuple[int, ...], options: DataOptions) -> Instance:
    """A pseudo-ground-truth person in the resized frame (score 1), an ignore region when it scored below
    ``pseudo_gt_ignore_below``, with its mask and keypoints when ``pseudo_gt_detail``."""
    import cv2

    box = tuple(v * scale for v in inst.box_xyxy)
    crowd = inst.score < options.pseudo_gt_ignore_below
    if not options.pseudo_gt_detail:
        return Instance(box, 1, 1.0, crowd=crowd)  # type: ignore[arg-type]
    mask = None
    if inst.mask is not None:
        mask = cv2.resize(inst.mask.astype(np.uint8), (size[1], size[0]), interpolation=cv2.INTER_NEAREST).astype(bool)
    kps = None
    if inst.keypoints is not None:
        kps = inst.keypoints.astype(np.float32).copy()
        kps[:, :2] *= scale
    return Instance(box, 1, 1.0, mask, kps, crowd)  # type: ignore[arg-type]


def vtest_splits(options: DataOptions) -> tuple[list[Sample], list[Sample]]:
    """Frames of ``vtest.avi`` split by time, with pseudo-ground-truth person boxes.

    The first ``train_fraction`` of the sampled frames are the train split, the rest the
    validation split, so no moment of the video is in both. Boxes come from
    ``options.pseudo_gt`` (the COCO person detector by default, or OpenCV's HOG) run on the
    full-resolution frame, then scaled.
    """
    from realanon.media import read_video_frames, vtest_path

    indices = _vtest_indices(options)
    frames = read_video_frames(vtest_path(), indices)
    detect = box_detector(options.pseudo_gt, options.pseudo_gt_upscale, options.pseudo_gt_options)
    samples = []
    for idx, frame in zip(indices, frames):
        image = _resize(frame, options.scale)
        insts = tuple(_scaled_instance(inst, options.scale, image.shape[:2], options) for inst in detect(frame))
        samples.append(Sample(image, insts, f"vtest_{idx:04d}"))
    cut = _train_count(options)
    return samples[:cut], samples[cut:]


def vtest_validation_originals(options: DataOptions, count: int) -> list[np.ndarray]:
    """The full-size frames of the first ``count`` validation samples of :func:`vtest_splits`,
    the frames its pseudo-ground-truth was found on (``(H, W, 3)`` uint8 RGB)."""
    from realanon.media import read_video_frames, vtest_path

    cut = _train_count(options)
    return read_video_frames(vtest_path(), _vtest_indices(options)[cut : cut + count])


def _vtest_indices(options: DataOptions) -> list[int]:
    """The sampled frame indices of vtest.avi, in time order."""
    total = min(options.video_frames, 795)
    return np.linspace(0, total - 1, options.frames).round().astype(int).tolist()


def _train_count(options: DataOptions) -> int:
    """How many of the sampled frames (the earliest) are the train split."""
    return int(round(options.frames * options.train_fraction))


def coco_samples(images_dir: str, annotations: str, category: str, limit: int) -> list[Sample]:
    """A COCO-format split as samples (only the ``category`` instances)."""
    from PIL import Image

    paths, coco = load_coco_split(images_dir, annotations, category, limit)
    samples = []
    for path, img in zip(paths, coco["images"]):
        image = np.asarray(Image.open(path).convert("RGB"))
        samples.append(Sample(image, instances_from_coco(coco, img["id"], image.shape[:2]), path.name))
    return samples


def detection_splits(options: DataOptions) -> tuple[list[Sample], list[Sample]]:
    """The train and validation samples of the configured dataset."""
    if options.source == "vtest":
        return vtest_splits(options)
    train = coco_samples(options.train_images, options.train_annotations, options.category, options.max_train_images)
    val = coco_samples(options.val_images, options.val_annotations, options.category, options.max_val_images)
    return train, val


def _body_pose(inst: Instance, kind: str) -> tuple[np.ndarray | None, str | None]:
    """A person's COCO-17 keypoints and their layout name for a body detection, else nothing."""
    if kind != "body" or inst.keypoints is None or inst.keypoints.shape != (17, 3):
        return None, None
    return inst.keypoints.astype(np.float32), "coco17"


def to_detections(sample: Sample, kind: str = "body") -> Detections:
    """The sample's instances as pipeline :class:`Detections` (to anonymize exactly those).

    Body detections carry the instance's COCO-17 keypoints when it has them (pose-aware generators use them).
    """
    items = tuple(
        Detection(inst.box_xyxy, 1.0, kind, *_body_pose(inst, kind), mask=inst.mask, source="annotation")  # type: ignore[arg-type]
        for inst in sample.instances
    )
    return Detections(items, sample.image.shape[:2])  # type: ignore[arg-type]


@dataclass(frozen=True)
class FaceSample:
    """One face with context, for the privacy attacks.

    Attributes:
        identity: Identity label (folder name).
        image: ``(S, S, 3)`` uint8 RGB context crop.
        detection: The face in crop pixels (box and landmarks).
        source: File the face was cut from.
    """

    identity: str
    image: np.ndarray
    detection: Detection
    source: str


def identity_folders(identities: str) -> dict[str, list[Path]]:
    """Identity -> image files: openpeople's 10 people or a folder-per-identity dataset."""
    if identities == "openpeople":
        from realanon.media import openpeople_images

        return openpeople_images()
    root = Path(identities)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: identities must be 'openpeople' or a folder of per-identity folders")
    exts = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
    return {
        d.name: sorted(p for p in d.rglob("*") if p.suffix.lower() in exts)
        for d in sorted(root.iterdir()) if d.is_dir()
    }


def _face_with_context(image: np.ndarray, det: Detection, size: int, context: float) -> tuple[np.ndarray, Detection]:
    """Square crop of side ``(1 + 2 * context) * face side`` resized to ``size``, and the face in it."""
    import cv2

    from realanon.regions import crop_with_padding

    x1, y1, x2, y2 = det.box_xyxy
    side = max(x2 - x1, y2 - y1) * (1 + 2 * context)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    box = (int(round(cx - side / 2)), int(round(cy - side / 2)))
    crop_box = (box[0], box[1], box[0] + int(round(side)), box[1] + int(round(side)))
    crop = crop_with_padding(image, crop_box)
    k = size / crop.shape[0]
    crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    shift = np.array([crop_box[0], crop_box[1]], dtype=np.float32)
    new_box = tuple(float((v - shift[i % 2]) * k) for i, v in enumerate(det.box_xyxy))
    kps = det.keypoints.copy() if det.keypoints is not None else None
    if kps is not None:
        kps[:, :2] = (kps[:, :2] - shift) * k
    moved = Detection(new_box, det.score, "face", kps, det.keypoint_layout, source=det.source)  # type: ignore[arg-type]
    return crop, moved


def extract_faces(options: PrivacyOptions, size: int = 192, context: float = 0.6) -> list[FaceSample]:
    """Every face mediapipe finds in each identity's images, cropped with context.

    Character and emotion sheets hold many faces, so each identity gets many samples.
    """
    from PIL import Image

    from realanon.detectors.mediapipe_face import MediaPipeFaceDetector

    detector = MediaPipeFaceDetector(model="full", min_score=0.5, tile_size=0)
    faces: list[FaceSample] = []
    for identity, paths in identity_folders(options.identities).items():
        mine: list[FaceSample] = []
        for path in paths:
            file = Image.open(path)
            file.draft("RGB", (options.max_side, options.max_side))  # fast JPEG decode at reduced size
            img = file.convert("RGB")
            img.thumbnail((options.max_side, options.max_side))
            image = np.asarray(img)
            for det in detector(image):
                if det.width >= options.min_face:
                    crop, moved = _face_with_context(image, det, size, context)
                    mine.append(FaceSample(identity, crop, moved, path.name))
        faces.extend(mine[: options.max_faces_per_identity or None])
    detector.close()
    return faces
