"""Detection ahead of anonymization: order, concurrency, errors and stopping early."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from realanon.structures import Detections
from realanon.video_detect import DetectAhead

SIZE = (4, 6)


def frames(count: int) -> list[tuple[int, np.ndarray]]:
    return [(i, np.full((*SIZE, 3), i, dtype=np.uint8)) for i in range(count)]


def tagged(group: list[tuple[int, np.ndarray]]) -> list[tuple[Detections, str | None]]:
    """Detections that carry nothing but the frame's own index, as the failure text."""
    return [(Detections.empty(SIZE), f"frame {index}") for index, _ in group]


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_frames_come_back_in_order_with_their_own_detections(workers: int) -> None:
    rng = np.random.default_rng(workers)

    def slow(group: list[tuple[int, np.ndarray]]) -> list[tuple[Detections, str | None]]:
        time.sleep(float(rng.uniform(0, 0.01)))  # later groups may finish first
        return tagged(group)

    ahead = DetectAhead(frames(23), slow, group_size=4, workers=workers)
    got = list(ahead)
    ahead.close()
    assert [index for index, *_ in got] == list(range(23))
    assert all(failed == f"frame {index}" and image[0, 0, 0] == index for index, image, _, failed in got)


def test_two_workers_detect_two_groups_at_the_same_time() -> None:
    both = threading.Barrier(2, timeout=5)

    def meet(group: list[tuple[int, np.ndarray]]) -> list[tuple[Detections, str | None]]:
        if group[0][0] < 8:  # the first two groups wait for each other: only concurrent calls pass
            both.wait()
        return tagged(group)

    ahead = DetectAhead(frames(12), meet, group_size=4, workers=2)
    assert len(list(ahead)) == 12
    ahead.close()


def test_a_detection_error_is_raised_in_the_consumer() -> None:
    def broken(group: list[tuple[int, np.ndarray]]) -> list[tuple[Detections, str | None]]:
        if group[0][0] >= 4:
            raise RuntimeError("network gone")
        return tagged(group)

    ahead = DetectAhead(frames(12), broken, group_size=4, workers=2)
    seen = []
    with pytest.raises(RuntimeError, match="network gone"):
        for index, *_ in ahead:
            seen.append(index)
    ahead.close()
    assert seen == [0, 1, 2, 3]


def test_a_reading_error_is_raised_after_the_frames_read_before_it() -> None:
    def reader():  # type: ignore[no-untyped-def]
        yield from frames(5)
        raise OSError("disk gone")

    ahead = DetectAhead(reader(), tagged, group_size=4, workers=1)
    seen = []
    with pytest.raises(OSError, match="disk gone"):
        for index, *_ in ahead:
            seen.append(index)
    ahead.close()
    assert seen == [0, 1, 2, 3]


def test_close_stops_reading_when_the_consumer_stops_early() -> None:
    read = []

    def endless():  # type: ignore[no-untyped-def]
        i = 0
        while True:
            read.append(i)
            yield i, np.zeros((*SIZE, 3), dtype=np.uint8)
            i += 1

    ahead = DetectAhead(endless(), tagged, group_size=2, workers=2)
    next(iter(ahead))
    ahead.close()
    stopped_at = len(read)
    time.sleep(0.3)
    assert len(read) == stopped_at  # the reader has ended
    assert stopped_at <= 2 * (2 + 2)  # never more than workers + 1 groups (and the one in hand) ahead


def test_two_workers_only_for_a_detector_that_allows_concurrent_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    from realanon.detectors.yunet import YuNetDetector
    from realanon.video_detect import detection_workers

    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert detection_workers(YuNetDetector(), given=False) == 2
    assert detection_workers(YuNetDetector(reuse_unchanged=True), given=False) == 1  # keeps state between frames
    assert detection_workers(YuNetDetector(), given=True) == 1
    assert detection_workers(lambda image: None, given=False) == 1  # says nothing: one call at a time
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert detection_workers(YuNetDetector(), given=False) == 1
