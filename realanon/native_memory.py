"""glibc's allocator kept from handing frame-sized buffers back to the kernel between frames.

A 1080p RGB frame is 6 MB and the padded crop of a close-up face 13 MB; each frame allocates and
frees several such blocks. By default glibc tunes itself: blocks above a threshold come from
``mmap``, the threshold rises to the largest block freed, and the heap's free top goes back to the
kernel once it exceeds twice that threshold. After a frame with two or three large temporaries the
top is given back, and the next frame gets fresh pages, each faulted in and zeroed by the kernel
(under ``perf``, the kernel's page clearing was one of the largest costs of a close-up face run).
Fixing the thresholds (``mmap`` for blocks of 32 MB and more, the largest glibc allows; trim above
64 MB) keeps the freed blocks for the next frame. The whole-process figures are in
``docs/benchmarks.md``.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 64 << 20


def keep_freed_memory() -> bool:
    """Fixes glibc's ``mmap`` and trim thresholds for this process (see the module notes).

    Returns:
        True when set; False where the C library is not glibc (nothing is changed there).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl, for one, has no mallopt)
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
