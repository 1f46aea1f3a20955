"""Flat registries of detectors, generators and post-processors.

One dict per kind maps a name to a factory (usually a class). The decorator refuses
duplicate names. Other packages add entries through the entry-point groups
``realanon.detectors``, ``realanon.generators`` and ``realanon.postprocessors``: each entry
point names a factory, registered under the entry point's name the first time a registry is
read. Instances can always be passed to the pipeline directly instead of by name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
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
        builtin_modules: Modules of realanon that register the built-in entries; imported
            lazily the first time the registry is read so that importing realanon stays cheap.
    """

    def __init__(self, kind: str, entry_point_group: str, builtin_modules: tuple[str, ...]) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._builtin_modules = builtin_modules
        self._factories: dict[str, Callable[..., Any]] = {}
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
            ValueError: if ``name`` is already registered.
        """
        if name in self._factories:
            raise ValueError(f"{self.kind} {name!r} is already registered by {self._factories[name]!r}")
        self._factories[name] = factory

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in self._builtin_modules:
            importlib.import_module(module)
        for ep in entry_points(group=self.entry_point_group):
            if ep.name not in self._factories:
                self._factories[ep.name] = _LazyEntryPoint(ep)  # type: ignore[assignment]

    def names(self) -> list[str]:
        """Sorted names of every registered entry, plug-ins included."""
        self._load()
        return sorted(self._factories)

    def get(self, name: str) -> Callable[..., Any]:
        """Returns the factory registered under ``name``."""
        self._load()
        try:
            factory = self._factories[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._factories))}"
            ) from None
        if isinstance(factory, _LazyEntryPoint):
            factory = factory.load()
            self._factories[name] = factory
        return factory

    def build(self, name: str, **options: Any) -> Any:
        """Builds the entry ``name`` with keyword ``options``."""
        return self.get(name)(**options)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._factories


class _LazyEntryPoint:
    """Defers importing a plug-in until it is used."""

    def __init__(self, ep: Any) -> None:
        self.ep = ep

    def load(self) -> Callable[..., Any]:
        return self.ep.load()  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"<entry point {self.ep.value}>"


DETECTORS = Registry(
    "detector",
    "realanon.detectors",
    (
        "realanon.detectors.mediapipe_face",
        "realanon.detectors.mediapipe_body",
        "realanon.detectors.centerface",
        "realanon.detectors.torchvision_rcnn",
    ),
)
GENERATORS = Registry(
    "generator",
    "realanon.generators",
    (
        "realanon.generators.blur",
        "realanon.generators.pixelate",
        "realanon.generators.mask",
        "realanon.generators.donor",
        "realanon.generators.gan",
        "realanon.generators.diffusion",
    ),
)
POSTPROCESSORS = Registry(
    "post-processor",
    "realanon.postprocessors",
    (
        "realanon.postprocess.match",
        "realanon.postprocess.latent",
    ),
)

register_detector = DETECTORS.register
register_generator = GENERATORS.register
register_postprocessor = POSTPROCESSORS.register
