"""Reading evaluation protocols."""

from __future__ import annotations

from pathlib import Path

import pytest

from realanon.errors import ConfigError
from realanon.evaluation.protocol import load_protocol, parse_method, protocol_from_dict, restrict_methods

REPO = Path(__file__).resolve().parents[2]


def test_original_blur_and_mask_are_always_evaluated() -> None:
    protocol = protocol_from_dict({"methods": [{"name": "pix", "method": "pixelate"}], "include_registered": False})
    names = [m.name for m in protocol.methods]
    assert names[0] == "original" and protocol.methods[0].config is None
    assert {"pix", "blur", "mask"} <= set(names)


def test_registered_generators_are_added() -> None:
    from realanon.registry import GENERATORS

    protocol = protocol_from_dict({})
    evaluated = {m.config.method for m in protocol.methods if m.config is not None}
    assert set(GENERATORS.names()) <= evaluated


def test_presets_and_inline_methods() -> None:
    preset = parse_method("face_pixelate")
    assert preset.name == "face_pixelate" and preset.config is not None and preset.config.method == "pixelate"
    inline = parse_method({"name": "strong", "preset": "face_blur", "method_options": {"strength": 0.3}})
    assert inline.config is not None and inline.config.method_options["strength"] == 0.3


@pytest.mark.parametrize("data", [{"bogus": 1}, {"utility": {"detection": {"stepz": 3}}}, {"seeds": []},
                                  {"data": {"source": "imagenet"}}])
def test_bad_protocols_are_refused(data: dict) -> None:
    with pytest.raises(ConfigError):
        protocol_from_dict(data)


@pytest.mark.parametrize("name", ["small", "full_coco", "bodies", "bodies_ignore"])
def test_shipped_protocols_load(name: str) -> None:
    protocol = load_protocol(REPO / "eval" / f"{name}.toml")
    assert len(protocol.seeds) >= 2
    assert {"original", "blur", "mask"} <= {m.name for m in protocol.methods}


def test_a_subset_of_methods_keeps_the_protocol_order_and_refuses_unknown_names() -> None:
    protocol = load_protocol(REPO / "eval" / "bodies.toml")
    subset = restrict_methods(protocol, ["donor", "blur"])
    assert [m.name for m in subset.methods] == ["blur", "donor"]
    assert subset.data == protocol.data and subset.seeds == protocol.seeds
    with pytest.raises(ConfigError, match="unknown method.*nobody"):
        restrict_methods(protocol, ["nobody"])


def test_options_added_later_leave_fingerprints_unchanged_at_their_default() -> None:
    import dataclasses
    import hashlib
    import json

    from realanon.evaluation.protocol import DataOptions

    protocol = protocol_from_dict({"include_registered": False})
    data = DataOptions()
    earlier = {k: v for k, v in dataclasses.asdict(data).items() if k not in ("pseudo_gt_detail", "pseudo_gt_ignore_below")}
    blob = json.dumps([earlier, 3], sort_keys=True, default=str)
    assert protocol.fingerprint(data, 3) == hashlib.sha256(blob.encode()).hexdigest()[:16]
    assert protocol.fingerprint(dataclasses.replace(data, pseudo_gt_detail=True), 3) != protocol.fingerprint(data, 3)


def test_command_line_reports_a_missing_protocol() -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "eval", "eval/missing.toml"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 2
    assert "no such protocol file" in result.stderr


def test_donor_methods_never_use_the_anonymized_person_as_donor() -> None:
    from realanon.evaluation.runner import excludes_donors, excluding_identity

    donor = parse_method({"name": "donor", "method": "donor"})
    assert excludes_donors(donor) and not excludes_donors(parse_method("face_blur"))
    assert not excludes_donors(parse_method("original"))
    own = excluding_identity(donor, "P003")
    assert own.config is not None and list(own.config.method_options["exclude_persons"]) == ["P003"]
