from __future__ import annotations

from pathlib import Path

import pytest

from realanon.config import AnonymizerConfig, available_presets, load_preset, parse_overrides
from realanon.errors import ConfigError


def test_presets_load_with_based_on() -> None:
    assert {"face_blur", "face_pixelate", "face_mask", "body_mask"} <= set(available_presets())
    config = load_preset("face_pixelate")
    assert config.method == "pixelate" and dict(config.method_options) == {"blocks": 8}
    assert config.threshold == 0.25 and config.target == "face"  # from face_blur


def test_overrides_are_typed_and_nested() -> None:
    config = load_preset("face_blur", ["regions.feather=0.1", "seed=3", "method_options.strength=0.3",
                                       "regions.face_shape=box"])
    assert config.regions.feather == 0.1 and config.seed == 3 and config.regions.face_shape == "box"
    assert config.method_options["strength"] == 0.3
    assert parse_overrides(["a.b=[1, 2]", "c=hello"]) == {"a": {"b": [1, 2]}, "c": "hello"}


def test_replace_plain_key_replaces_table() -> None:
    config = load_preset("face_blur").replace(method="mask", method_options={})
    assert config.method == "mask" and dict(config.method_options) == {}


@pytest.mark.parametrize("override, message", [
    ("nope=1", "unknown config key"), ("regions.nope=1", "unknown regions key"),
    ("target=legs", "target"), ("threshold=3", "threshold"), ("regions.feather=-1", "feather"),
    ("justakey", "key=value"),
])
def test_bad_values_give_clear_errors(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_preset("face_blur", [override])


def test_one_level_of_based_on_only(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('based_on = "face_pixelate"\n')
    with pytest.raises(ConfigError, match="one level"):
        load_preset(tmp_path / "a.toml")
    with pytest.raises(ConfigError, match="no such preset"):
        load_preset("does_not_exist")
    (tmp_path / "bad.toml").write_text("this is = = not toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_preset(tmp_path / "bad.toml")


def test_config_is_frozen() -> None:
    with pytest.raises(AttributeError):
        AnonymizerConfig().method = "x"  # type: ignore[misc]
