"""Shared fixtures. Tests run offline on CPU."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GLOG_minloglevel", "2")


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from realanon.media import astronaut

    return astronaut()


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
