from __future__ import annotations

import pytest

from realanon.errors import ConfigError
from realanon.registry import DETECTORS, GENERATORS, Registry


def test_builtins_are_registered() -> None:
    assert {"blur", "pixelate", "mask"} <= set(GENERATORS.names())
    assert {"mediapipe_face", "mediapipe_body"} <= set(DETECTORS.names())


def test_duplicates_are_refused() -> None:
    registry = Registry("thing", "realanon.test_nothing", {})
    registry.register("a")(dict)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("a")(list)
    assert registry.build("a", x=1) == {"x": 1}


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown generator 'nope'; known: .*blur"):
        GENERATORS.get("nope")


def test_builtins_are_imported_only_when_used() -> None:
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from realanon import AnonymizerConfig, build_anonymizer\n"
        "from realanon.registry import GENERATORS\n"
        "assert 'gan' in GENERATORS.names()\n"
        "build_anonymizer(AnonymizerConfig(method='blur'), detector=None)(np.zeros((32, 32, 3), np.uint8))\n"
        "print('torch' in sys.modules)\n"
        "GENERATORS.get('gan')\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]


def test_a_builtin_module_that_registers_nothing_is_a_clear_error() -> None:
    registry = Registry("thing", "realanon.test_nothing", {"x": "json"})
    assert registry.names() == ["x"]
    with pytest.raises(ConfigError, match="json did not register the thing 'x'"):
        registry.get("x")
