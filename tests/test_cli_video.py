"""End to end: the CLI on a short piece of a real video with people (vtest.avi, CCTV pedestrians)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from realanon.cli import main
from realanon.media import vtest_path

FRAMES = 12


@pytest.fixture(scope="module")
def street_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first frames of vtest.avi re-encoded losslessly-ish as H.264 mp4."""
    out = tmp_path_factory.mktemp("clip") / "street.mp4"
    with av.open(str(vtest_path())) as src, av.open(str(out), "w") as dst:
        stream = dst.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 768, 576, "yuv420p"
        stream.options = {"crf": "12"}
        for i, frame in enumerate(src.decode(video=0)):
            if i == FRAMES:
                break
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    return out


def _frames(path: Path) -> tuple[list[np.ndarray], Fraction]:
    with av.open(str(path)) as container:
        rate = container.streams.video[0].average_rate
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)], rate


def test_body_mask_on_real_street_video(street_clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "street_anon.mp4"
    audit = tmp_path / "audit.json"
    code = main(["anonymize", str(street_clip), "-o", str(out), "--target", "body", "--method", "mask",
                 "--save-detections", str(audit), "--no-progress"])
    assert code == 0
    original, rate_in = _frames(street_clip)
    anonymized, rate_out = _frames(out)
    assert len(anonymized) == len(original) == FRAMES
    assert rate_out == rate_in and anonymized[0].shape == original[0].shape
    record = json.loads(audit.read_text())
    frames = record["files"][0]["frames"]
    assert [f["frame"] for f in frames] == list(range(FRAMES))
    # People are found in every frame, and their boxes are visibly darkened.
    assert all(f["regions"] for f in frames)
    for frame_rec, before, after in zip(frames, original, anonymized):
        for region in frame_rec["regions"]:
            x1, y1, x2, y2 = (int(round(v)) for v in region["box_xyxy"])
            x1, y1 = max(x1, 0), max(y1, 0)
            if (x2 - x1) * (y2 - y1) > 400:
                assert after[y1:y2, x1:x2].mean() < before[y1:y2, x1:x2].mean() - 10
    assert not list(tmp_path.glob(".*part*"))
