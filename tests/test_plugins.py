"""A separately installed package adds a generator through the ``realanon.generators`` entry point."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from realanon.config import AnonymizerConfig
from realanon.pipeline import build_anonymizer
from realanon.registry import GENERATORS, Registry
from realanon.structures import Detection, Detections

PLUGIN = Path(__file__).parent / "data" / "tiny_plugin"


def _install_by_hand(site: Path) -> None:
    """What an installer leaves on sys.path: the module and a dist-info with entry_points.txt."""
    shutil.copytree(PLUGIN / "src" / "realanon_tiny_plugin", site / "realanon_tiny_plugin")
    project = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    info = site / f"realanon_tiny_plugin-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    lines = [f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items())
             for group, eps in project["entry-points"].items()]
    (info / "entry_points.txt").write_text("\n".join(lines))


def _install_with_pip(site: Path, tmp: Path) -> None:
    """A real ``pip install --target`` of the plug-in project (offline, no build isolation)."""
    source = tmp / "source"
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--no-build-isolation",
         "--target", str(site), str(source)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.fixture(params=["by_hand", "pip"])
def plugin_on_path(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    if request.param == "pip":
        _install_with_pip(site, tmp_path)
    else:
        _install_by_hand(site)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    # Let the shared registry read entry points again; monkeypatch restores it afterwards.
    # Built-ins are loaded into the real dict first: their modules register only once per process.
    GENERATORS.names()
    monkeypatch.setattr(GENERATORS, "_factories", dict(GENERATORS._factories))
    monkeypatch.setattr(GENERATORS, "_loaded", False)
    yield site
    sys.modules.pop("realanon_tiny_plugin", None)


def test_fresh_registry_finds_the_plugin(plugin_on_path: Path) -> None:
    registry = Registry("generator", "realanon.generators", {})
    assert "tiny" in registry.names()
    assert registry.get("tiny").__module__ == "realanon_tiny_plugin"


def test_plugin_works_in_configs_without_editing_realanon(plugin_on_path: Path) -> None:
    assert "tiny" in GENERATORS.names() and "blur" in GENERATORS.names()
    config = AnonymizerConfig(method="tiny", method_options={"value": 9}, fail_closed=False)
    anonymizer = build_anonymizer(config, detector=None)
    image = np.full((64, 64, 3), 200, np.uint8)
    result = anonymizer(image, Detections((Detection((20, 20, 40, 40), 0.9, "face"),), (64, 64)))
    changed = np.any(result.image != image, axis=2)
    assert changed.any() and np.all(result.image[changed] <= 200)
    assert np.all(result.image[~changed] == 200)


def test_plugin_cannot_shadow_a_builtin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _install_by_hand(site)
    eps = next(site.glob("*.dist-info")) / "entry_points.txt"
    eps.write_text("[realanon.generators]\nblur = realanon_tiny_plugin:FillGenerator\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    registry = Registry("generator", "realanon.generators", {"blur": "realanon.generators.blur"})
    registry.add("blur", object)  # stands in for the built-in registered first
    assert registry.get("blur") is object
    with pytest.raises(ValueError, match="already registered"):
        registry.add("blur", dict)


def test_plugin_works_in_the_cli(plugin_on_path: Path, tmp_path: Path, astronaut: np.ndarray,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    import cv2

    from realanon.cli import main

    assert main(["models"]) == 0
    assert "tiny" in capsys.readouterr().out
    source, output = tmp_path / "astronaut.png", tmp_path / "out.png"
    cv2.imwrite(str(source), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    assert main(["anonymize", str(source), "-o", str(output), "--method", "tiny", "--no-progress"]) == 0
    result = cv2.cvtColor(cv2.imread(str(output)), cv2.COLOR_BGR2RGB)
    assert np.any(np.all(result == 7, axis=2))  # the plug-in's fill value, where the face was
