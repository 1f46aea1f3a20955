"""CenterFace's network is shipped under weights/centerface/ and verified before loading."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from realanon.detectors.centerface import CenterFaceDetector, default_model_path
from realanon.weights import WEIGHTS_DIR, WeightsError, read_manifest, sha256_file, shipped_file


def test_the_shipped_model_matches_its_manifest_entry() -> None:
    entry = read_manifest()["centerface"]
    path = default_model_path()
    assert path == WEIGHTS_DIR / "centerface" / "centerface.onnx"
    assert sha256_file(path) == entry.sha256 and entry.licence.startswith("MIT")
    assert (path.parent / "LICENSE").read_text().startswith("MIT License")
    assert json.loads((path.parent / "config.json").read_text())["input_name"] == "input.1"


def _copy_weights(tmp_path: Path) -> Path:
    root = tmp_path / "weights"
    (root / "centerface").mkdir(parents=True)
    shutil.copy(WEIGHTS_DIR / "manifest.json", root / "manifest.json")
    return root


def test_missing_or_altered_model_raises_one_error_naming_the_file(tmp_path: Path) -> None:
    root = _copy_weights(tmp_path)
    target = root / "centerface" / "centerface.onnx"
    with pytest.raises(WeightsError, match=f"{target}: model file not found"):
        shipped_file("centerface", root)
    data = bytearray((WEIGHTS_DIR / "centerface" / "centerface.onnx").read_bytes())
    data[1000] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=f"{target}: sha256 .* does not match"):
        shipped_file("centerface", root)


def test_detector_refuses_an_altered_shipped_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import realanon.weights as weights

    root = _copy_weights(tmp_path)
    (root / "centerface" / "centerface.onnx").write_bytes(b"not a network")
    monkeypatch.setattr(weights, "WEIGHTS_DIR", root)
    with pytest.raises(WeightsError, match="centerface.onnx: sha256"):
        CenterFaceDetector()
