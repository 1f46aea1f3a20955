"""CPU timing of detector calls, shared by the measuring scripts (``python scripts/measure_*.py``).

CPU time (``time.process_time``, all threads of the process) is what the scripts report by default: on a
machine shared with other jobs, waiting for a core inflates wall time but not CPU time.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def median_ms(detect: Callable[[np.ndarray], Any], image: np.ndarray, runs: int, *,
              clock: Callable[[], float] = time.process_time, warmup: bool = True) -> float:
    """Median milliseconds of ``detect(image)`` over ``runs`` calls.

    Args:
        detect: The detector (any callable taking an RGB image).
        image: The image each call gets.
        runs: How many timed calls.
        clock: ``time.process_time`` (CPU time, the default) or ``time.perf_counter`` (wall time).
        warmup: Make one untimed call first (a model's first call loads it).

    Returns:
        The median time of one call, in milliseconds.
    """
    if warmup:
        detect(image)
    times = []
    for _ in range(runs):
        t = clock()
        detect(image)
        times.append(clock() - t)
    return 1000 * statistics.median(times)


class TimedDetector:
    """Wraps a detector, adding up the CPU time of its calls; forwards ``set_tracked``.

    Attributes:
        detector: The wrapped detector.
        seconds: CPU seconds spent in its calls so far.
        calls: How many calls so far.
    """

    def __init__(self, detector: Any) -> None:
        self.detector, self.seconds, self.calls = detector, 0.0, 0

    def __call__(self, image: np.ndarray) -> Any:
        t = time.process_time()
        out = self.detector(image)
        self.seconds += time.process_time() - t
        self.calls += 1
        return out

    def set_tracked(self, tracked: bool) -> None:
        self.detector.set_tracked(tracked)

    def ms_per_call(self) -> float:
        """Mean CPU milliseconds per call (0 before any call)."""
        return 1000 * self.seconds / max(self.calls, 1)
