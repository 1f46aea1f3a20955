"""The evaluation protocol: what data, which methods, which metrics, how many seeds.

A protocol is a TOML file (see ``eval/small.toml``). Sections map onto the frozen dataclasses
below; unknown keys are refused. Methods are anonymizer configs: a preset name from
``configs/`` or an inline table. ``original`` (no anonymization), ``blur`` and ``mask`` are
always evaluated, and ``include_registered = true`` adds every registered generator.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from realanon.config import AnonymizerConfig, load_preset
from realanon.errors import ConfigError

ORIGINAL = "original"
ALWAYS = ("blur", "mask")
# The person detector used where data has no annotations (pseudo-ground-truth) and for retention.
PERSON_DETECTOR = "coco_person"
# Field metadata of an option added after units were stored, whose default keeps the earlier
# behaviour: at that default it is left out of unit fingerprints, so stored units stay valid.
NEUTRAL_DEFAULT = "neutral_default"


@dataclass(frozen=True)
class MethodSpec:
    """One method under evaluation.

    Attributes:
        name: Label used in the report.
        config: The anonymizer config (its ``target`` is replaced by each task's target);
            None for ``original``, which leaves images untouched.
    """

    name: str
    config: AnonymizerConfig | None


@dataclass(frozen=True)
class DataOptions:
    """The person-detection dataset used by the utility tasks and the video leak check.

    Attributes:
        source: ``"vtest"`` (frames of ``vtest.avi`` with pseudo-ground-truth boxes, split by
            time) or ``"coco"`` (COCO-format annotation files the user provides).
        frames: vtest: number of frames sampled (evenly over the first ``video_frames``).
        video_frames: vtest: how much of the video (795 frames long) is sampled from.
        train_fraction: vtest: the first part of the video is train, the rest validation.
        scale: vtest: frames are resized by this factor before everything else.
        pseudo_gt: vtest: the detector whose person boxes are the ground truth: a registered
            body detector (default ``"coco_person"``, the shipped COCO person detector) or
            ``"hog"`` (OpenCV's HOG people detector).
        pseudo_gt_upscale: vtest: the frame is enlarged by this factor before ``pseudo_gt``
            runs (HOG cannot see people under 128 px tall; 1.3 suits it on vtest).
        pseudo_gt_options: vtest: keyword arguments for the ``pseudo_gt`` detector (e.g.
            ``min_score = 0.5`` for ``coco_person``, whose default 0.25 keeps uncertain, tiny people).
        pseudo_gt_ignore_below: vtest: people of ``pseudo_gt`` scoring below this are replaced by
            every method like the others but are not labels: ignore regions (COCO ``iscrowd``) in
            the validation ground truth and absent from the training labels (0 = every person is a label).
        pseudo_gt_detail: vtest: keep the ``pseudo_gt`` detector's instance masks and COCO-17
            keypoints with its boxes, so that the methods replace people as they would behind that
            detector (a donor body warped onto the pose, a silhouette mask); False gives box-only people.
        train_images, train_annotations, val_images, val_annotations: coco: paths.
        max_train_images, max_val_images: coco: keep at most this many (0 = all).
        category: Name of the person category (``AP_person`` and the anonymized kind).
    """

    source: Literal["vtest", "coco"] = "vtest"
    frames: int = 120
    video_frames: int = 795
    train_fraction: float = 0.7
    scale: float = 0.5
    pseudo_gt: str = PERSON_DETECTOR
    pseudo_gt_upscale: float = 1.0
    pseudo_gt_options: Mapping[str, Any] = field(default_factory=dict)
    pseudo_gt_detail: bool = field(default=False, metadata={NEUTRAL_DEFAULT: True})
    pseudo_gt_ignore_below: float = field(default=0.0, metadata={NEUTRAL_DEFAULT: True})
    train_images: str = ""
    train_annotations: str = ""
    val_images: str = ""
    val_annotations: str = ""
    max_train_images: int = 0
    max_val_images: int = 0
    category: str = "person"


@dataclass(frozen=True)
class DetectionTaskOptions:
    """Train-on-anonymized, test-on-original with a torchvision R-CNN.

    Attributes:
        enabled: Run this task.
        task: ``"boxes"`` (Faster R-CNN), ``"masks"`` (Mask R-CNN) or ``"keypoints"`` (Keypoint R-CNN).
        backbone: ``"tiny"`` (a few conv layers, for CPU), ``"mobilenet_v3"`` or ``"resnet50"``.
        steps: Optimiser steps.
        batch_size: Images per step.
        lr: SGD learning rate.
        min_size, max_size: Resize limits of the torchvision transform.
    """

    enabled: bool = True
    task: Literal["boxes", "masks", "keypoints"] = "boxes"
    backbone: Literal["tiny", "mobilenet_v3", "resnet50"] = "tiny"
    steps: int = 200
    batch_size: int = 4
    lr: float = 0.03
    min_size: int = 288
    max_size: int = 384


@dataclass(frozen=True)
class ClassificationTaskOptions:
    """Person-vs-background patches: a small CNN trained on anonymized, validated on originals.

    Attributes:
        enabled: Run this task.
        steps: Optimiser steps.
        batch_size: Patches per step.
        lr: Adam learning rate.
        negatives_per_image: Background patches sampled per image.
    """

    enabled: bool = True
    steps: int = 150
    batch_size: int = 32
    lr: float = 2e-3
    negatives_per_image: int = 3


@dataclass(frozen=True)
class RetentionOptions:
    """Run a downstream detector on original and anonymized validation images.

    Attributes:
        enabled: Run this task.
        detectors: Registered detector names (default the COCO person detector) or ``"hog"``.
        score_threshold: Original predictions above this are the pseudo-ground-truth.
        upscale: Images are enlarged by this factor before detection (small people).
        detector_options: Per detector name, keyword arguments for it, e.g.
            ``{keypoint_rcnn = {weights = "keypointrcnn.safetensors"}}`` for user weights;
            an ``upscale`` key there overrides ``upscale`` for that detector.
    """

    enabled: bool = True
    detectors: tuple[str, ...] = (PERSON_DETECTOR,)
    score_threshold: float = 0.5
    upscale: float = 1.0
    detector_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class UtilityOptions:
    """Utility side: which target the methods replace and the three tasks."""

    target: Literal["face", "body"] = "body"
    detection: DetectionTaskOptions = field(default_factory=DetectionTaskOptions)
    classification: ClassificationTaskOptions = field(default_factory=ClassificationTaskOptions)
    retention: RetentionOptions = field(default_factory=RetentionOptions)


@dataclass(frozen=True)
class PrivacyOptions:
    """Privacy side on face crops of known identities.

    Attributes:
        enabled: Run the privacy attacks.
        identities: ``"openpeople"`` or a folder with one sub-folder of images per identity.
        max_side: Images are shrunk to this long side before face detection.
        min_face: Faces narrower than this (pixels, after shrinking) are skipped.
        max_faces_per_identity: Keep at most this many faces per identity (0 = all).
        test_fraction: Share of each identity's faces the attacks are tested on.
        pca_components: Components of the PCA+kNN attack.
        cnn_steps: Steps of the CNN attack.
        dlib: Compute the dlib identity distance.
        centerface: Compute the CenterFace re-detection rate.
    """

    enabled: bool = True
    identities: str = "openpeople"
    max_side: int = 1280
    min_face: int = 40
    max_faces_per_identity: int = 0
    test_fraction: float = 0.4
    pca_components: int = 32
    cnn_steps: int = 200
    dlib: bool = True
    centerface: bool = True


@dataclass(frozen=True)
class LeakOptions:
    """Video leak check: people in the original not covered by any replaced region.

    Attributes:
        enabled: Run the check.
        frames: Validation frames checked.
        coverage: A reference person counts as covered when this share of its box is replaced.
        confirm_keypoints: vtest only: a pseudo-ground-truth person is a reference person only when
            a second network, MoveNet MultiPose, finds a person in their crop of the full-size frame
            with at least this many keypoints scoring >= ``confirm_keypoint_score``
            (:mod:`realanon.evaluation.references`); the single detector behind the pseudo-ground-truth
            also takes cones and rocks for people. 0 counts every pseudo-ground-truth person.
        confirm_keypoint_score: The keypoint score that counts towards ``confirm_keypoints``.
    """

    enabled: bool = True
    frames: int = 30
    coverage: float = 0.5
    confirm_keypoints: int = field(default=0, metadata={NEUTRAL_DEFAULT: True})
    confirm_keypoint_score: float = field(default=0.3, metadata={NEUTRAL_DEFAULT: True})


@dataclass(frozen=True)
class Protocol:
    """A full evaluation protocol."""

    name: str
    methods: tuple[MethodSpec, ...]
    seeds: tuple[int, ...] = (0, 1)
    device: str = "cpu"
    threads: int = 1
    examples: int = 3
    data: DataOptions = field(default_factory=DataOptions)
    utility: UtilityOptions = field(default_factory=UtilityOptions)
    privacy: PrivacyOptions = field(default_factory=PrivacyOptions)
    leak: LeakOptions = field(default_factory=LeakOptions)
    source: Mapping[str, Any] = field(default_factory=dict)

    def fingerprint(self, *parts: Any) -> str:
        """A short hash of ``parts`` (dataclasses or plain data), for resuming."""
        blob = json.dumps([_plain(p) for p in parts], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _plain(value: Any) -> Any:
    """A dataclass as a dict, without its later-added options that hold their neutral default."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = dataclasses.asdict(value)
        for f in dataclasses.fields(value):
            if f.metadata.get(NEUTRAL_DEFAULT) and getattr(value, f.name) == f.default:
                out.pop(f.name)
        return out
    return value


def _build(cls: type, data: Mapping[str, Any], where: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"[{where}] unknown key(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    values: dict[str, Any] = {}
    for key, value in data.items():
        sub = _NESTED.get((cls, key))
        if sub is not None:
            value = _build(sub, value, f"{where}.{key}")
        elif isinstance(value, list):
            value = tuple(value)
        values[key] = value
    return cls(**values)


_NESTED: dict[tuple[type, str], type] = {
    (UtilityOptions, "detection"): DetectionTaskOptions,
    (UtilityOptions, "classification"): ClassificationTaskOptions,
    (UtilityOptions, "retention"): RetentionOptions,
}


def check_person_detector(name: str, where: str) -> None:
    """Refuses a detector name that is neither ``"hog"`` nor registered (without importing it).

    Raises:
        ConfigError: naming the protocol key, the bad name and the known ones.
    """
    from realanon.registry import DETECTORS

    if name != "hog" and name not in DETECTORS:
        raise ConfigError(f"{where}: unknown detector {name!r}; use 'hog' or one of: {', '.join(DETECTORS.names())}")


def parse_method(entry: str | Mapping[str, Any]) -> MethodSpec:
    """Turns a preset name or an inline table into a :class:`MethodSpec`.

    An inline table may hold ``name``, ``preset`` (a preset to start from) and any
    :class:`~realanon.config.AnonymizerConfig` key.
    """
    if isinstance(entry, str):
        if entry == ORIGINAL:
            return MethodSpec(ORIGINAL, None)
        return MethodSpec(Path(entry).stem, load_preset(entry))
    table = dict(entry)
    preset = table.pop("preset", None)
    name = table.pop("name", None) or preset or table.get("method")
    if not name:
        raise ConfigError(f"method entry needs a name, preset or method: {entry!r}")
    if name == ORIGINAL and preset is None and "method" not in table:
        return MethodSpec(ORIGINAL, None)
    base = load_preset(preset) if preset else AnonymizerConfig()
    config = base.replace(**table) if table else base
    return MethodSpec(str(name), config)


def complete_methods(methods: list[MethodSpec], include_registered: bool) -> tuple[MethodSpec, ...]:
    """Adds ``original``, ``blur``, ``mask`` (and every registered generator) when missing."""
    from realanon.registry import GENERATORS

    have_methods = {m.config.method for m in methods if m.config is not None}
    names = {m.name for m in methods}
    out = list(methods)
    if ORIGINAL not in names:
        out.insert(0, MethodSpec(ORIGINAL, None))
    extra = list(ALWAYS) + (GENERATORS.names() if include_registered else [])
    for method in extra:
        if method not in have_methods and method not in names:
            out.append(MethodSpec(method, AnonymizerConfig(method=method)))
            have_methods.add(method)
    return tuple(out)


def restrict_methods(protocol: Protocol, names: Sequence[str]) -> Protocol:
    """The protocol with only the methods named (in the protocol's order).

    Unit fingerprints do not depend on the method list, so processes running disjoint subsets
    into one output directory share the unit store, and a later run of the whole protocol reuses them.

    Raises:
        ConfigError: a name that is not one of the protocol's methods.
    """
    known = [m.name for m in protocol.methods]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"unknown method(s) {', '.join(unknown)}; the protocol has: {', '.join(known)}")
    return dataclasses.replace(protocol, methods=tuple(m for m in protocol.methods if m.name in set(names)))


def load_protocol(path: str | Path) -> Protocol:
    """Reads a protocol TOML file.

    Raises:
        ConfigError: on unreadable TOML, unknown keys or bad values.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such protocol file")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None
    return protocol_from_dict(data, default_name=path.stem)


def protocol_from_dict(data: Mapping[str, Any], default_name: str = "protocol") -> Protocol:
    """Builds a :class:`Protocol` from parsed TOML."""
    values = dict(data)
    source = json.loads(json.dumps(values, default=str))
    include = bool(values.pop("include_registered", True))
    methods = complete_methods([parse_method(m) for m in values.pop("methods", [])], include)
    sections = {"data": DataOptions, "utility": UtilityOptions, "privacy": PrivacyOptions, "leak": LeakOptions}
    built = {key: _build(cls, values.pop(key, {}), key) for key, cls in sections.items()}
    seeds = tuple(int(s) for s in values.pop("seeds", (0, 1)))
    if not seeds:
        raise ConfigError("seeds must list at least one seed")
    name = str(values.pop("name", default_name))
    scalars = {k: values.pop(k) for k in ("device", "threads", "examples") if k in values}
    if values:
        raise ConfigError(f"unknown protocol key(s): {', '.join(sorted(values))}")
    if built["data"].source not in ("vtest", "coco"):
        raise ConfigError(f"data.source must be vtest or coco, got {built['data'].source!r}")
    if built["data"].source == "vtest":
        check_person_detector(built["data"].pseudo_gt, "data.pseudo_gt")
    elif built["leak"].confirm_keypoints:
        raise ConfigError("leak.confirm_keypoints confirms vtest's pseudo-ground-truth; coco data is annotated")
    if built["utility"].retention.enabled:
        for detector in built["utility"].retention.detectors:
            check_person_detector(detector, "utility.retention.detectors")
    return Protocol(name=name, methods=methods, seeds=seeds, source=source, **scalars, **built)
