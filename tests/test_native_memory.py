"""The allocator setting that keeps frame-sized buffers between frames (glibc only)."""

from __future__ import annotations

import platform
import resource

import numpy as np
import pytest

from realanon.native_memory import keep_freed_memory


def _faults_of_a_frame_of_large_temporaries() -> int:
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    crops = [np.ones(13 << 20, np.uint8) for _ in range(3)]  # a close-up face's padded crops
    del crops
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_freed_frame_buffers_are_reused_without_page_faults() -> None:
    assert keep_freed_memory()
    _faults_of_a_frame_of_large_temporaries()  # the first frame maps its pages
    # 39 MB freed and allocated again: over a thousand faults (some on huge pages) when the heap's
    # top goes back to the kernel, as it does by default.
    assert _faults_of_a_frame_of_large_temporaries() < 100
