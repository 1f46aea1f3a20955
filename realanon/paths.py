"""Where the project's data folders (``configs/``, ``weights/``) are at run time."""

from __future__ import annotations

import sysconfig
from pathlib import Path


def project_dir(name: str) -> Path:
    """The ``configs`` or ``weights`` folder.

    In a checkout (editable install) it is the folder beside the package; a wheel installs a
    copy under ``<prefix>/share/realanon/`` (``tool.setuptools.data-files`` in pyproject.toml).
    """
    checkout = Path(__file__).resolve().parent.parent / name
    if checkout.is_dir():
        return checkout
    return Path(sysconfig.get_path("data")) / "share" / "realanon" / name
