"""Flat registries of detectors, generators and post-processors.

One dict per kind maps a name to a factory (usually a class). The decorator refuses
duplicate names. Built-in entries are known by name from the start but their module is
imported only when the entry is used, so a blur run never imports torch. Other packages add
entries through the entry-point groups ``realanon.detectors``, ``realanon.generators`` and
``realanon.postprocessors``: each entry point names a factory, registered under the entry
point's name the first time a registry lists its names or is asked for a name it does not hold
yet (so a run of built-ins never scans the installed packages), and imported when used.
Instances can always be passed to the pipeline directly instead of by name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from realanon.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])


class UnknownNameError(ConfigError, KeyError):
    """Raised when a name is not in a registry."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain.
        return str(self.args[0])


class Registry:
    """A name -> factory mapping for one kind of component.

    Args:
        kind: Human name of the kind, used in error messages (``"generator"``).
        entry_point_group: Entry-point group other packages can use to add entries.
        builtins: Name of each built-in entry -> the realanon module that registers it;
            the module is imported the first time its entry is used.
    """

    def __init__(self, kind: str, entry_point_group: str, builtins: Mapping[str, str]) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._factories: dict[str, Callable[..., Any]] = {name: _LazyBuiltin(module)  # type: ignore[misc]
                                                          for name, module in builtins.items()}
        # Everything ever registered, kept even when ``_factories`` is swapped (tests do).
        self._defined: dict[str, Callable[..., Any]] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[F], F]:
        """Decorator registering ``factory`` under ``name``; refuses duplicates."""

        def decorator(factory: F) -> F:
            self.add(name, factory)
            return factory

        return decorator

    def add(self, name: str, factory: Callable[..., Any]) -> None:
        """Registers ``factory`` under ``name``.

        Raises:
            ValueError: if ``name`` is already registered (a built-in not yet imported only
                holds its place).
        """
        existing = self._factories.get(name)
        if existing is not None and not isinstance(existing, _LazyBuiltin):
            raise ValueError(f"{self.kind} {name!r} is already registered by {existing!r}")
        self._factories[name] = factory
        self._defined.setdefault(name, factory)

    def _load(self) -> None:
        """Adds the plug-ins' entry points, once. Scanning every installed package's metadata
        costs start-up time, so only listing the names or asking for one not known yet does it."""
        if self._loaded:
            return
        self._loaded = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=self.entry_point_group):
            if ep.name not in self._factories:
                self._factories[ep.name] = _LazyEntryPoint(ep)  # type: ignore[assignment]

    def names(self) -> list[str]:
        """Sorted names of every registered entry, plug-ins included."""
        self._load()
        return sorted(self._factories)

    def get(self, name: str) -> Callable[..., Any]:
        """Returns the factory registered under ``name``."""
        if name not in self._factories:
            self._load()
        try:
            factory = self._factories[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._factories))}"
            ) from None
        if isinstance(factory, _LazyBuiltin):
            importlib.import_module(factory.module)  # its decorator registers the real factory
            if name not in self._defined:
                raise ConfigError(f"{factory.module} did not register the {self.kind} {name!r}")
            factory = self._defined[name]
            self._factories[name] = factory
        elif isinstance(factory, _LazyEntryPoint):
            factory = factory.load()
            self._factories[name] = factory
        return factory

    def build(self, name: str, **options: Any) -> Any:
        """Builds the entry ``name`` with keyword ``options``."""
        return self.get(name)(**options)

    def __contains__(self, name: object) -> bool:
        if name not in self._factories:
            self._load()
        return name in self._factories


class _LazyBuiltin:
    """Holds a built-in entry's place until its module is imported."""

    def __init__(self, module: str) -> None:
        self.module = module

    def __repr__(self) -> str:
        return f"<built-in from {self.module}>"


class _LazyEntryPoint:
    """Defers importing a plug-in until it is used."""

    def __init__(self, ep: Any) -> None:
        self.ep = ep

    def load(self) -> Callable[..., Any]:
        return self.ep.load()  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"<entry point {self.ep.value}>"


_DETECTORS = "realanon.detectors"
DETECTORS = Registry("detector", "realanon.detectors", {
    "mediapipe_face": f"{_DETECTORS}.mediapipe_face",
    "mediapipe_body": f"{_DETECTORS}.mediapipe_body",
    "centerface": f"{_DETECTORS}.centerface",
    "yunet": f"{_DETECTORS}.yunet",
    "keypoint_rcnn": f"{_DETECTORS}.torchvision_rcnn",
    "mask_rcnn": f"{_DETECTORS}.torchvision_rcnn",
    "coco_person": f"{_DETECTORS}.coco_person",
    "centernet_person": f"{_DETECTORS}.coco_boxes",
    "nanodet_person": f"{_DETECTORS}.coco_boxes",
    "movenet_pose": f"{_DETECTORS}.movenet",
})
GENERATORS = Registry("generator", "realanon.generators", {
    **{name: f"realanon.generators.{name}" for name in ("blur", "pixelate", "mask", "gan", "diffusion")},
    "donor": "realanon.generators.donor_dispatch",  # faces or bodies, by target
})
POSTPROCESSORS = Registry("post-processor", "realanon.postprocessors", {
    "match": "realanon.postprocess.match",
    "latent": "realanon.postprocess.latent",
})

register_detector = DETECTORS.register
register_generator = GENERATORS.register
register_postprocessor = POSTPROCESSORS.register
