"""Configuration as data: frozen dataclasses, TOML presets and ``--set key=value`` overrides.

A preset is a TOML file in ``configs/`` (or any path). It may name one other preset with
``based_on = "name"``; that preset may not itself be based on another (one level only).
Keys map onto :class:`AnonymizerConfig`; nested tables map onto nested dataclasses, and
``*_options`` tables are passed as keyword arguments to the component.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from realanon.errors import ConfigError
from realanon.paths import project_dir

CONFIG_DIR = project_dir("configs")


@dataclass(frozen=True)
class RegionOptions:
    """How detections become regions to replace.

    Attributes:
        face_shape: ``"ellipse"`` (fitted to the face box/landmarks), ``"hull"`` (convex hull
            of the landmarks, grown by the margin) or ``"box"``.
        face_margin: Margin around the face as a fraction of the face size (0.25 = 25%).
        body_margin: Margin around a body mask or box, fraction of the body height.
        partial_face: Replace only the upper 60% of the face (eyes and brows).
        context: Extra context around the region kept in the crop given to the generator,
            as a fraction of the region size on each side.
        feather: Width of the soft edge inside the replace-mask, fraction of the region size.
        min_size: Regions smaller than this many pixels on their long side are skipped when 0 < value.
    """

    face_shape: Literal["ellipse", "hull", "box"] = "ellipse"
    face_margin: float = 0.25
    body_margin: float = 0.05
    partial_face: bool = False
    context: float = 0.25
    feather: float = 0.08
    min_size: int = 0

    def __post_init__(self) -> None:
        if self.face_shape not in ("ellipse", "hull", "box"):
            raise ConfigError(f"regions.face_shape must be ellipse, hull or box, got {self.face_shape!r}")
        for name in ("face_margin", "body_margin", "context", "feather"):
            if getattr(self, name) < 0:
                raise ConfigError(f"regions.{name} must be >= 0, got {getattr(self, name)}")
        if self.feather > 0.5:
            raise ConfigError(f"regions.feather must be <= 0.5, got {self.feather}")


@dataclass(frozen=True)
class AnonymizerConfig:
    """Everything needed to build an :class:`realanon.pipeline.Anonymizer`.

    Attributes:
        target: ``"face"`` or ``"body"``.
        detector: Registered detector name; None picks the default for the target.
        detector_options: Keyword arguments for the detector.
        photo_detector_options: Detector options for still images only, over
            ``detector_options``: a photo can afford a slower, more thorough search than a video
            frame. None uses the built-in ones for the detector
            (:data:`realanon.pipeline.DEFAULT_PHOTO_DETECTOR_OPTIONS`) for the keys that
            ``detector_options`` does not set; ``{}`` searches photos like video frames.
        method: Registered generator name (``blur``, ``pixelate``, ``mask``, ...).
        method_options: Keyword arguments for the generator.
        harmonize: ``"none"``, ``"match"`` or ``"latent"``.
        harmonize_options: Keyword arguments for the harmonizer.
        regions: Region options.
        threshold: Minimum detection score; None keeps the detector's own default.
        seed: Base seed; every region's seed is derived from it.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        dtype: ``"float32"`` or ``"float16"`` for generators that use torch.
        fail_closed: When processing a frame raises, mask the whole frame instead of stopping.
        track: Track people across video frames so each keeps one synthetic identity.
    """

    target: Literal["face", "body"] = "face"
    detector: str | None = None
    detector_options: Mapping[str, Any] = field(default_factory=dict)
    photo_detector_options: Mapping[str, Any] | None = None
    method: str = "blur"
    method_options: Mapping[str, Any] = field(default_factory=dict)
    harmonize: str = "none"
    harmonize_options: Mapping[str, Any] = field(default_factory=dict)
    regions: RegionOptions = field(default_factory=RegionOptions)
    threshold: float | None = None
    seed: int = 0
    device: str = "cpu"
    dtype: Literal["float32", "float16"] = "float32"
    fail_closed: bool = True
    track: bool = True

    def __post_init__(self) -> None:
        if self.target not in ("face", "body"):
            raise ConfigError(f"target must be face or body, got {self.target!r}")
        if self.dtype not in ("float32", "float16"):
            raise ConfigError(f"dtype must be float32 or float16, got {self.dtype!r}")
        if self.photo_detector_options is not None and not isinstance(self.photo_detector_options, Mapping):
            raise ConfigError(f"photo_detector_options must be a table, got {self.photo_detector_options!r}")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold must be in [0, 1], got {self.threshold}")

    def replace(self, **changes: Any) -> AnonymizerConfig:
        """Returns a copy with ``changes`` applied.

        A plain key replaces the value (``method_options={}`` clears it); a dotted key
        changes one entry of a table (``**{"regions.feather": 0.1}``).
        """
        data = dataclasses.asdict(self)
        data.update({k: v for k, v in changes.items() if "." not in k})
        dotted = {k: v for k, v in changes.items() if "." in k}
        return config_from_dict(_merge(data, _nest(dotted)))


def preset_path(name: str | Path) -> Path:
    """Resolves a preset name (``face_blur``) or a path to a TOML file."""
    path = Path(name)
    if path.suffix == ".toml" and path.exists():
        return path
    candidate = CONFIG_DIR / f"{name}.toml"
    if candidate.exists():
        return candidate
    raise ConfigError(f"{name}: no such preset (looked for a .toml file and in {CONFIG_DIR})")


def available_presets() -> list[str]:
    """Names of the presets shipped in ``configs/``."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.toml")) if CONFIG_DIR.exists() else []


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None


def load_preset(name: str | Path, overrides: Iterable[str] = ()) -> AnonymizerConfig:
    """Loads a preset, applies its ``based_on`` parent, then ``key=value`` overrides.

    Args:
        name: Preset name in ``configs/`` or a path to a TOML file.
        overrides: Strings like ``"regions.feather=0.1"``; the value is read as TOML when it
            parses (numbers, booleans, quoted strings, arrays) and as a plain string otherwise.
    """
    path = preset_path(name)
    data = _read_toml(path)
    parent = data.pop("based_on", None)
    if parent is not None:
        parent_data = _read_toml(preset_path(parent))
        if "based_on" in parent_data:
            raise ConfigError(f"{path}: based_on {parent!r} is itself based on another preset (one level only)")
        # Options belong to the component they were written for: a child that names another
        # detector/method/harmonizer does not inherit the parent's options for it.
        for name, options in (("detector", "detector_options"), ("detector", "photo_detector_options"),
                              ("method", "method_options"), ("harmonize", "harmonize_options")):
            if name in data and data[name] != parent_data.get(name):
                parent_data.pop(options, None)
        data = _merge(parent_data, data)
    data = _merge(data, parse_overrides(overrides))
    try:
        return config_from_dict(data)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def parse_overrides(overrides: Iterable[str]) -> dict[str, Any]:
    """Turns ``["a.b=1", "c=x"]`` into ``{"a": {"b": 1}, "c": "x"}``."""
    return _nest(parse_flat_overrides(overrides))


def parse_flat_overrides(overrides: Iterable[str]) -> dict[str, Any]:
    """Turns ``["a.b=1", "c=x"]`` into ``{"a.b": 1, "c": "x"}``."""
    flat: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        flat[key.strip()] = _parse_value(raw.strip())
    return flat


def _parse_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def _merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def config_from_dict(data: Mapping[str, Any]) -> AnonymizerConfig:
    """Builds an :class:`AnonymizerConfig`, refusing unknown keys."""
    known = {f.name for f in dataclasses.fields(AnonymizerConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown config key(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    values = dict(data)
    regions = values.get("regions", {})
    if isinstance(regions, Mapping):
        region_keys = {f.name for f in dataclasses.fields(RegionOptions)}
        bad = sorted(set(regions) - region_keys)
        if bad:
            raise ConfigError(f"unknown regions key(s): {', '.join(bad)}; known: {', '.join(sorted(region_keys))}")
        values["regions"] = RegionOptions(**regions)
    try:
        return AnonymizerConfig(**values)
    except TypeError as err:
        raise ConfigError(str(err)) from None
