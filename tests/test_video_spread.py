"""The tracked video pipeline with YuNet's schedules (the default ``finest_every=2``, and the spread search
``reuse_unchanged=True, spread=4``): a small face is blurred in every frame."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from realanon.config import load_preset
from realanon.detectors.yunet import YuNetDetector
from realanon.pipeline import build_anonymizer
from realanon.video import anonymize_video
from tests.detectors.conftest import make_face_collage
from tests.test_video import write_video


def _decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _assert_blurred_from(first: int, src: Path, out: Path, box: tuple[float, ...]) -> None:
    x1, y1, x2, y2 = (int(v) for v in box)
    for index, (before, after) in enumerate(zip(_decode(src)[first:], _decode(out)[first:]), start=first):
        face = np.abs(before[y1:y2, x1:x2].astype(int) - after[y1:y2, x1:x2]).mean()
        elsewhere = np.abs(before[y1:y2, x1 + 400 : x2 + 400].astype(int) - after[y1:y2, x1 + 400 : x2 + 400]).mean()
        # Re-encoding alone changes the unblurred face by about 7 levels, the blur by about 30.
        assert face > 10 * max(elsewhere, 1.0), f"frame {index}: face {face:.1f}, elsewhere {elsewhere:.1f}"


def test_a_14_px_face_appearing_between_full_resolution_searches_is_blurred_from_its_first_frame(tmp_path: Path) -> None:
    background, _ = make_face_collage((), size=(1080, 1920))
    collage, truths = make_face_collage((14,), size=(1080, 1920))
    # Frame 3 is searched without the full resolution (finest_every=2): found on frame 4, covered back to 3.
    src = write_video(tmp_path / "in.mp4", [background] * 3 + [collage] * 6)
    anonymizer = build_anonymizer(load_preset("face_blur"))
    assert isinstance(anonymizer.detector, YuNetDetector) and anonymizer.detector.finest_every == 2
    anonymize_video(src, tmp_path / "out.mp4", anonymizer, track=True, progress=False)
    _assert_blurred_from(3, src, tmp_path / "out.mp4", truths[0])


def test_a_small_face_in_a_still_1080p_video_is_blurred_in_every_frame(tmp_path: Path) -> None:
    background, _ = make_face_collage((), size=(1080, 1920))
    collage, truths = make_face_collage((20,), size=(1080, 1920))
    # The face appears on frame 2, in the first stripe, which is searched again only on frame 5.
    frames = [background] * 2 + [collage] * 10
    src = write_video(tmp_path / "in.mp4", frames)
    config = load_preset("face_blur")
    # spread acts only with reuse_unchanged=true (off by default since 2026-12-02).
    options = {**config.detector_options, "reuse_unchanged": True, "spread": 4}
    anonymizer = build_anonymizer(config.replace(detector_options=options))
    assert isinstance(anonymizer.detector, YuNetDetector) and anonymizer.detector.spread == 4
    assert anonymizer.detector.reuse_unchanged
    anonymize_video(src, tmp_path / "out.mp4", anonymizer, track=True, progress=False)
    assert not anonymizer.detector._tracked  # told only for the run
    _assert_blurred_from(2, src, tmp_path / "out.mp4", truths[0])
