"""Fixtures shared by the generator tests."""

from __future__ import annotations

import numpy as np
import pytest

from realanon.config import AnonymizerConfig
from realanon.pipeline import build_anonymizer
from realanon.regions import build_regions


@pytest.fixture(scope="module")
def astronaut_region(astronaut: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The astronaut's face crop, replace-mask and seed, as the pipeline builds them for `donor`."""
    anonymizer = build_anonymizer(AnonymizerConfig(method="donor"))
    regions = build_regions(anonymizer.detect(astronaut), anonymizer.region_options)
    batch = anonymizer.make_batch(astronaut, regions)
    return batch.crops[0], batch.replace_masks[0], batch.seeds[0]
