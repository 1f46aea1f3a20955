"""Weights: manifest, sha256 verification, strict loading, hub ids offline, shipped checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from realanon.weights import (
    WEIGHTS_DIR,
    ResolvedModel,
    WeightsError,
    load_state_dict,
    load_strict,
    read_config,
    read_manifest,
    resolve_model,
    save_model,
    sha256_file,
    split_hub_id,
)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    net = _net()
    sha = save_model(net, {"width": 4}, tmp_path)
    assert sha == sha256_file(tmp_path / "model.safetensors")
    assert read_config(tmp_path) == {"width": 4}
    other = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    load_strict(other, load_state_dict(ResolvedModel(tmp_path, sha256=sha)))
    for a, b in zip(net.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)


def test_wrong_sha256_is_refused(tmp_path: Path) -> None:
    save_model(_net(), {}, tmp_path)
    with pytest.raises(WeightsError, match="does not match"):
        load_state_dict(ResolvedModel(tmp_path, sha256="0" * 64))


def test_strict_loading_names_missing_unexpected_and_misshaped(tmp_path: Path) -> None:
    save_model(_net(), {}, tmp_path)
    state = load_state_dict(ResolvedModel(tmp_path))
    with pytest.raises(WeightsError, match=r"missing: 2\.bias"):
        load_strict(_net(), {k: v for k, v in state.items() if k != "2.bias"})
    with pytest.raises(WeightsError, match="unexpected: extra"):
        load_strict(_net(), {**state, "extra": torch.zeros(1)})
    with pytest.raises(WeightsError, match=r"wrong shape: 0\.bias"):
        load_strict(_net(), {**state, "0.bias": torch.zeros(5)})


def test_pickles_are_never_loaded(tmp_path: Path) -> None:
    torch.save(_net().state_dict(), tmp_path / "model.bin")
    with pytest.raises(WeightsError, match="only .safetensors"):
        load_state_dict(ResolvedModel(tmp_path, file="model.bin"))


def test_manifest_names_resolve_and_verify(tmp_path: Path) -> None:
    sha = save_model(_net(), {}, tmp_path / "tiny")
    manifest = {"models": [{"name": "tiny", "kind": "test", "directory": "tiny", "file": "model.safetensors",
                            "sha256": sha, "licence": "CC0-1.0", "training_data": "none"}]}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    resolved = resolve_model("tiny", weights_dir=tmp_path)
    assert resolved.directory == tmp_path / "tiny" and resolved.sha256 == sha
    load_state_dict(resolved)
    with pytest.raises(WeightsError, match="neither"):
        resolve_model("no-such-model", weights_dir=tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(WeightsError, match="manifest"):
        read_manifest(tmp_path)


def test_hub_id_offline_says_how_to_provide_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert split_hub_id("org/model@abc123") == ("org/model", "abc123")
    with pytest.raises(WeightsError, match=r"hf download org/model --revision abc123"):
        resolve_model("org/model@abc123", weights_dir=tmp_path)


def test_shipped_weights_match_their_manifest() -> None:
    manifest = read_manifest(WEIGHTS_DIR)
    assert manifest, "weights/manifest.json lists no model"
    for entry in manifest.values():
        path = WEIGHTS_DIR / entry.directory / entry.file
        assert path.stat().st_size < 16 * 2**20  # the repository stays light: larger files are fetched by a script
        assert sha256_file(path) == entry.sha256, entry.name
        assert entry.licence and entry.training_data and entry.training and entry.metrics
        assert read_config(WEIGHTS_DIR / entry.directory)
