"""A tiny protocol end to end: report files, and resume skipping finished units."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from realanon.evaluation import run_evaluation

TINY = """
name = "tiny"
seeds = [0, 1]
include_registered = false
threads = 1
examples = 2
methods = ["original", {{name = "blur", preset = "face_blur"}}, {{name = "mask", method = "mask"}},
           {{name = "broken", method = "pixelate", method_options = {{blocks = 0}}}}]
[data]
frames = 6
video_frames = 120
train_fraction = 0.5
pseudo_gt = "hog"
pseudo_gt_upscale = 1.3
[utility.detection]
steps = 1
batch_size = 2
min_size = 144
max_size = 192
[utility.classification]
steps = 1
[utility.retention]
detectors = ["hog"]
upscale = 2.6
[privacy]
identities = "{identities}"
max_faces_per_identity = 4
cnn_steps = 1
[leak]
frames = 1
"""


@pytest.fixture(scope="module")
def identities(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from realanon.media import openpeople_images

    root = tmp_path_factory.mktemp("ids")
    for person, paths in list(openpeople_images().items())[:3]:
        (root / person).mkdir()
        sheet = next(p for p in paths if p.name == "emotions_sheet.jpg")
        (root / person / sheet.name).symlink_to(sheet)
    return root


def test_tiny_protocol_writes_report_then_resumes(tmp_path: Path, identities: Path) -> None:
    config = tmp_path / "tiny.toml"
    config.write_text(TINY.format(identities=identities))
    out = run_evaluation(config, tmp_path / "run")
    for name in ("report.md", "report.html", "results.json", "figures/privacy_vs_utility.png", "figures/metrics.png"):
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    # The broken method fails in every unit; the others are unaffected.
    assert results["errors"] and {k.split("/")[1] for k in results["errors"]} == {"broken"}
    assert "broken" not in results["summary"]
    assert "pixelate blocks must be >= 1" in (out / "report.md").read_text()
    assert results["seeds"] == [0, 1]
    assert results["config"]["name"] == "tiny" and "torch" in results["versions"]
    first = results["run"]
    # 3 methods x (2 detection + 2 classification + retention + leak + 2 re-id + identity) units.
    assert first["units_computed"] == 3 * 9 and first["units_reused"] == 0
    summary = results["summary"]
    assert summary["original"]["identity_distance"]["mean"] == pytest.approx(0.0, abs=1e-6)
    assert summary["original"]["leaked_people"]["mean"] == 1.0
    assert summary["original"]["retention_recall"]["mean"] == 1.0
    assert summary["mask"]["identity_changed"]["mean"] == 1.0
    assert "| original |" in (out / "report.md").read_text()

    again = json.loads((run_evaluation(config, tmp_path / "run") / "results.json").read_text())
    assert again["run"]["units_computed"] == 0 and again["run"]["units_reused"] == 27
    assert again["summary"] == summary

    config.write_text(TINY.format(identities=identities).replace("steps = 1\nbatch_size = 2", "steps = 2\nbatch_size = 2"))
    changed = json.loads((run_evaluation(config, tmp_path / "run") / "results.json").read_text())
    assert changed["run"]["units_computed"] == 6  # only the detection units depend on that option
