"""Property test: damaged video bytes end in a correct result or a clear error, never a crash or a hang."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import av
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realanon.errors import InputError
from realanon.pipeline import Anonymizer
from realanon.registry import GENERATORS
from realanon.video import anonymize_video
from tests.helpers import FixedDetector, face

FRAMES = 8


def _clip_bytes(tmp: Path, suffix: str) -> bytes:
    path = tmp / f"src{suffix}"
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4" if suffix == ".avi" else "libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for _ in range(FRAMES):
            image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    return path.read_bytes()


@functools.cache
def source(suffix: str) -> bytes:
    """A small valid clip of each container (kept out of hypothesis' reports)."""
    with tempfile.TemporaryDirectory() as tmp:
        return _clip_bytes(Path(tmp), suffix)


@st.composite
def damage(draw: st.DrawFn) -> tuple[str, int | None, list[tuple[float, int]]]:
    suffix = draw(st.sampled_from([".mp4", ".avi", ".mkv"]))
    cut = draw(st.one_of(st.none(), st.floats(0.0, 1.0)))
    flips = draw(st.lists(st.tuples(st.floats(0.0, 0.999), st.integers(0, 7)), max_size=6))
    return suffix, cut, flips  # type: ignore[return-value]


@settings(max_examples=150, deadline=20000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=damage())
def test_damaged_video_gives_result_or_clear_error(tmp_path: Path, case) -> None:  # type: ignore[no-untyped-def]
    suffix, cut, flips = case
    data = bytearray(source(suffix))
    if cut is not None:
        data = data[: int(len(data) * cut)]
    for position, bit in flips:
        if data:
            data[int(position * len(data))] ^= 1 << bit
    src = tmp_path / f"in{suffix}"
    src.write_bytes(bytes(data))
    out = tmp_path / f"out{suffix}"
    out.unlink(missing_ok=True)  # tmp_path is shared by every example of one test run
    anonymizer = Anonymizer(FixedDetector((face(10, 8, 40, 40),)), GENERATORS.build("mask"))
    try:
        result = anonymize_video(src, out, anonymizer, progress=False)
    except InputError as err:
        assert str(src) in str(err) and "\n" not in str(err) and len(str(err)) < 400
        assert not out.exists()
    else:
        assert out.exists() and result.frames >= 1
        with av.open(str(out)) as container:
            assert sum(1 for _ in container.decode(video=0)) == result.frames
    assert not list(tmp_path.glob(".*part*"))
