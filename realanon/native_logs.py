"""Native libraries' side of the command line: their log lines kept off the terminal, their threads polite.

mediapipe's C++ code writes straight to file descriptor 2 from its own threads, whatever
Python's logging says: ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.``, absl's
``WARNING: All log messages before absl::InitializeLog() is called ...`` and one ``W0000 ...
Feedback manager requires a model with a single signature inference`` per graph. The
environment variables below quiet what reads them; the rest is filtered: while
:func:`filtered_native_stderr` is active, descriptor 2 is a pipe read by a thread that drops
info and warning lines in those formats and passes every other byte through to the real
stderr. Python's own ``sys.stderr`` (our messages, progress bars, tracebacks) is pointed at the
real stderr directly, so it is never delayed or filtered.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import threading
from collections.abc import Iterator

# Read by glog/TensorFlow at import; absl (mediapipe >= 0.10) ignores them, hence the filter.
QUIET_ENV = {"GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "3"}

# TF Lite's "INFO: ..." lines, absl's pre-initialisation notice, and glog/absl-format info and
# warning lines ("W0000 00:00:1796186353.576917   14680 file.cc:114] ..."). Errors (E/F) pass.
DROPPED_LINE = re.compile(
    rb"^(?:INFO: |WARNING: All log messages before absl::InitializeLog\(\)"
    rb"|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w./-]+:\d+\] )"
)


# OpenMP threads that wait for work sleep instead of spinning. Libraries that bring their own
# libgomp (torch; earlier the yuface wheel) otherwise spin their idle threads, taking the cores the
# decode and encode threads need; on a busy machine a detector's CPU time per frame grew several-fold.
# libgomp reads this when it loads, so it is set before any model is built.
PROCESS_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


def set_process_env() -> None:
    """Sets :data:`PROCESS_ENV` where the user has not, and keeps frame-sized buffers from going
    back to the kernel between frames (:func:`realanon.native_memory.keep_freed_memory`); the CLI
    calls it before loading any model."""
    from realanon.native_memory import keep_freed_memory

    for key, value in PROCESS_ENV.items():
        os.environ.setdefault(key, value)
    keep_freed_memory()


def set_quiet_env() -> None:
    """Sets :data:`QUIET_ENV` where the user has not set it; call before importing mediapipe."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)


def keep_line(line: bytes) -> bool:
    """False for a third-party info/warning log line (see :data:`DROPPED_LINE`)."""
    return DROPPED_LINE.match(line) is None


def _pump(read_fd: int, out_fd: int) -> None:
    """Copies ``read_fd`` to ``out_fd`` line by line until end of file, dropping log lines."""
    pending = b""
    while chunk := os.read(read_fd, 1 << 16):
        *lines, pending = (pending + chunk).split(b"\n")
        kept = b"".join(line + b"\n" for line in lines if keep_line(line))
        if kept:
            os.write(out_fd, kept)
    if pending and keep_line(pending):
        os.write(out_fd, pending)
    os.close(read_fd)


@contextlib.contextmanager
def filtered_native_stderr() -> Iterator[None]:
    """Filters third-party log lines written to descriptor 2 for the duration of the block.

    Python's ``sys.stderr``, when it is the process's descriptor 2, is replaced by a stream on
    the real stderr for the block (a stream captured by a test harness is left alone). On exit
    descriptor 2 is restored and whatever the filter still held is written out.
    """
    set_quiet_env()
    try:
        sys.stderr.flush()
        real_fd = os.dup(2)
    except (OSError, ValueError):  # no usable descriptor 2: nothing to filter
        yield
        return
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    pump = threading.Thread(target=_pump, args=(read_fd, real_fd), name="realanon-stderr-filter", daemon=True)
    pump.start()
    saved_stderr = sys.stderr
    if _is_fd2(saved_stderr):
        sys.stderr = io.TextIOWrapper(io.FileIO(real_fd, "w", closefd=False), encoding=saved_stderr.encoding,
                                      errors="backslashreplace", line_buffering=True, write_through=True)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        sys.stderr = saved_stderr
        os.dup2(real_fd, 2)  # closes the pipe's last write end we hold: the pump drains and stops
        # real_fd stays open: a logging handler made during the block may still write to it.
        pump.join(timeout=2.0)


def _is_fd2(stream: object) -> bool:
    try:
        return stream.fileno() == 2  # type: ignore[attr-defined,no-any-return]
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False
