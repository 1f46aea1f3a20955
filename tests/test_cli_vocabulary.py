"""One CLI vocabulary for `anonymize` and `batch`, and a quiet terminal by default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from realanon import batch, cli
from realanon.arguments import config_from_args
from realanon.io_images import read_image, write_image_atomic
from realanon.native_logs import keep_line

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ["--method", "pixelate", "--target", "body", "--harmonize", "match", "--seed", "7", "--device", "cpu",
         "--threshold", "0.4", "--set", "method_options.blocks=5"]
# What mediapipe's C++ code prints on every run unless filtered (issue 15).
NOISE = ("Created TensorFlow Lite XNNPACK delegate", "All log messages before absl::InitializeLog",
         "Feedback manager requires a model")


def test_batch_and_anonymize_build_the_same_config_from_the_same_flags() -> None:
    from_anonymize = config_from_args(cli.build_parser().parse_args(["anonymize", "x.jpg", *FLAGS]))
    from_batch = config_from_args(batch.build_parser().parse_args(["x.jpg", "-o", "out", *FLAGS]))
    assert from_batch == from_anonymize
    assert (from_batch.method, from_batch.target, from_batch.harmonize, from_batch.seed, from_batch.device) == (
        "pixelate", "body", "match", 7, "cpu")
    assert from_batch.threshold == 0.4 and dict(from_batch.method_options) == {"blocks": 5}


def test_batch_method_flag_changes_the_output(tmp_path: Path, astronaut: np.ndarray) -> None:
    image = tmp_path / "in" / "astronaut.png"
    write_image_atomic(image, astronaut)
    assert cli.main(["batch", str(image), "-o", str(tmp_path / "out"), "--shard", "0/1",
                     "--method", "mask", "--set", "method_options.color=[255,0,255]", "--seed", "3"]) == 0
    out = read_image(tmp_path / "out" / "astronaut.png")
    magenta = (out == [255, 0, 255]).all(axis=2)
    assert magenta.sum() > 1000 and not (astronaut == [255, 0, 255]).all(axis=2).any()


@pytest.mark.parametrize("line", [
    b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"W0000 00:00:1796186353.576917   14680 inference_feedback_manager.cc:114] Feedback manager requires a model",
    b"I0000 00:00:1796186353.1   7 gl_context.cc:357] GL version",
])
def test_third_party_info_and_warning_lines_are_dropped(line: bytes) -> None:
    assert not keep_line(line)


@pytest.mark.parametrize("line", [b"realanon: error: x.jpg: not an image", b"E0000 00:00:1.2 5 graph.cc:1] failed",
                                  b"Segmentation fault", b"  0%|          | 0/90"])
def test_our_messages_and_errors_pass(line: bytes) -> None:
    assert keep_line(line)


def _run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GLOG_minloglevel", "TF_CPP_MIN_LOG_LEVEL")}
    return subprocess.run([sys.executable, "-m", "realanon.cli", *args], cwd=cwd, env={**env, "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=300)


def test_cli_stderr_holds_only_our_messages_unless_verbose(tmp_path: Path, astronaut: np.ndarray) -> None:
    image = tmp_path / "astronaut.png"
    write_image_atomic(image, astronaut[::2, ::2])
    done = ["realanon: 1 of 1 input(s) anonymized"]
    default = _run_cli(["anonymize", str(image), "-o", str(tmp_path / "default.png")], ROOT)
    assert default.returncode == 0 and default.stderr.strip().splitlines() == done, default.stderr
    # mediapipe's graphs are what print the lines (one per graph); built here by name.
    mediapipe = ["--set", "detector=mediapipe_face"]
    quiet = _run_cli(["anonymize", str(image), "-o", str(tmp_path / "quiet.png"), *mediapipe], ROOT)
    assert quiet.returncode == 0 and quiet.stderr.strip().splitlines() == done, quiet.stderr
    # The same run with -v shows the lines the filter removes (so this test can fail).
    loud = _run_cli(["-v", "anonymize", str(image), "-o", str(tmp_path / "loud.png"), *mediapipe], ROOT)
    assert loud.returncode == 0 and any(noise in loud.stderr for noise in NOISE), loud.stderr[-2000:]


def test_openmp_threads_wait_passively_unless_the_user_says_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    from realanon.native_logs import set_process_env

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    set_process_env()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    set_process_env()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
