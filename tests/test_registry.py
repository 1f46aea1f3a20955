from __future__ import annotations

import pytest

from realanon.errors import ConfigError
from realanon.registry import DETECTORS, GENERATORS, Registry


def test_builtins_are_registered() -> None:
    assert {"blur", "pixelate", "mask"} <= set(GENERATORS.names())
    assert {"mediapipe_face", "mediapipe_body"} <= set(DETECTORS.names())


def test_duplicates_are_refused() -> None:
    registry = Registry("thing", "realanon.test_nothing", ())
    registry.register("a")(dict)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("a")(list)
    assert registry.build("a", x=1) == {"x": 1}


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown generator 'nope'; known: .*blur"):
        GENERATORS.get("nope")
