"""Detection in a thread of its own, ahead of tracking and anonymization, for :mod:`realanon.video`.

Detection is most of a frame's cost, and the shipped networks (onnxruntime, OpenCV, torch)
release the GIL while they run. With the detector in its own thread, frame ``t + 1`` is
detected while frame ``t`` is tracked, generated, pasted and encoded on the other core, so the
wall time per frame approaches the slower of the two rather than their sum. A bounded queue
keeps memory constant in the video's length.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from realanon.detectors.onnx_models import default_threads
from realanon.interfaces import BatchDetector, ConcurrentDetector
from realanon.structures import Detections
from realanon.video_io import Handoff


def detection_group_size(detector: object, given: bool, batch_frames: int) -> int:
    """Frames per detection call: ``batch_frames`` for a detector that batches
    (:class:`~realanon.interfaces.BatchDetector`), else one (fewer frames held in flight)."""
    return batch_frames if isinstance(detector, BatchDetector) and not given else 1


def detection_workers(detector: object, given: bool) -> int:
    """Groups of frames to detect at once: two when the detector allows concurrent calls and two
    cores are there to run them, else one (given detections need no detector)."""
    if given or not isinstance(detector, ConcurrentDetector) or not detector.concurrent_calls():
        return 1
    return 2 if (default_threads() or os.cpu_count() or 1) >= 2 else 1

Frame = tuple[int, np.ndarray]
Detected = tuple[int, np.ndarray, Detections, "str | None"]


class DetectAhead:
    """Reads ``frames`` in a thread and detects them in groups, ``workers`` groups at a time; iterate
    to get them back in order.

    Args:
        frames: ``(index, RGB image)`` pairs, in order (read only by the reading thread).
        detect_group: Detects a group of frames: one ``(detections, failure or None)`` per frame.
            With ``workers`` > 1 it is called from several threads at once, so it must allow it
            (see :class:`~realanon.interfaces.ConcurrentDetector`).
        group_size: Frames per ``detect_group`` call (the last group may be smaller).
        workers: Groups detected at the same time.

    Iterating yields ``(index, image, detections, failure)`` and raises, in the consumer's
    thread, whatever reading or detecting raised. At most ``workers`` groups are read ahead of
    the one the consumer holds. :meth:`close` stops the threads (they also end once ``frames`` ends or
    fails); call it before closing what ``frames`` reads from.
    """

    def __init__(self, frames: Iterable[Frame], detect_group: Callable[[list[Frame]], list[tuple[Detections, str | None]]],
                 group_size: int, workers: int = 1) -> None:
        self._detect_group = detect_group
        self._group_size = max(1, group_size)
        self._pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="realanon-detect")
        # Groups in reading order, each with the future of its detections. With the group the
        # reader holds (already submitted) ``workers`` groups are detected at once, and with the
        # consumer's, ``workers + 1`` are alive: memory stays constant.
        self._groups = Handoff(workers - 1)
        self._thread = threading.Thread(target=self._read, args=(iter(frames),), name="realanon-read", daemon=True)
        self._thread.start()

    def _read(self, frames: Iterator[Frame]) -> None:
        try:
            group: list[Frame] = []
            for frame in frames:
                group.append(frame)
                if len(group) >= self._group_size:
                    if not self._groups.put((group, self._pool.submit(self._detect_group, group))):
                        return
                    group = []
            if group and not self._groups.put((group, self._pool.submit(self._detect_group, group))):
                return
        except BaseException as err:  # noqa: BLE001 - raised in the consumer's thread
            self._groups.put(err)
        else:
            self._groups.finish()

    def __iter__(self) -> Iterator[Detected]:
        for group, future in self._groups:
            for (index, image), (detections, failed) in zip(group, future.result()):
                yield index, image, detections, failed

    def close(self) -> None:
        """Stops reading and waits for the threads (detections under way are finished)."""
        self._groups.stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True, cancel_futures=True)
