"""Streaming video anonymization on small synthetic videos made with PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from realanon.audit import AuditLog, DetectionsFile
from realanon.errors import InputError
from realanon.generators.blur import GaussianBlur
from realanon.generators.mask import MaskOut
from realanon.pipeline import Anonymizer
from realanon.structures import Detection, Detections
from realanon.tracking import TrackerOptions
from realanon.video import anonymize_frames, anonymize_video, probe_video
from tests.helpers import FailingGenerator, FixedDetector

FACE = 96  # side of the pasted face, pixels


def moving_face_frames(astronaut: np.ndarray, count: int, size: tuple[int, int] = (240, 320)) -> list[np.ndarray]:
    """A grey background with the astronaut's face moving right by 8 px per frame."""
    face = astronaut[30:30 + 150, 160:160 + 150]
    face = np.asarray(av.VideoFrame.from_ndarray(np.ascontiguousarray(face), format="rgb24")
                      .reformat(width=FACE, height=FACE).to_ndarray(format="rgb24"))
    frames = []
    for t in range(count):
        image = np.full((*size, 3), 120, dtype=np.uint8)
        x = 20 + 8 * t
        image[60:60 + FACE, x:x + FACE] = face
        frames.append(image)
    return frames


def face_box(t: int) -> tuple[float, float, float, float]:
    x = 20 + 8 * t
    return (x + 12.0, 72.0, x + FACE - 12.0, 60.0 + FACE - 6.0)


def write_video(path: Path, frames: list[np.ndarray], rate: Fraction = Fraction(25), audio: bool = False) -> Path:
    """Encodes RGB frames (and optionally one second of a 440 Hz tone) losslessly enough to compare."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264" if path.suffix != ".avi" else "mpeg4", rate=rate)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "10"} if path.suffix != ".avi" else {}
        astream = out.add_stream("aac", rate=16000, layout="mono") if audio else None
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        if astream is not None:
            tone = np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000).astype(np.float32)[None]
            for start in range(0, 16000, 1024):
                aframe = av.AudioFrame.from_ndarray(tone[:, start:start + 1024], format="fltp", layout="mono")
                aframe.sample_rate, aframe.pts = 16000, start
                out.mux(astream.encode(aframe))
            out.mux(astream.encode(None))
    return path


def read_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def stream_summary(path: Path) -> tuple[int, Fraction, int, int, int]:
    """(frames decoded, average rate, width, height, number of audio streams)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        n = sum(1 for _ in c.decode(video=0))
        return n, s.average_rate, s.width, s.height, len(c.streams.audio)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray) -> Path:
    return write_video(tmp_path_factory.mktemp("v") / "clip.mp4", moving_face_frames(astronaut, 12), audio=True)


def boxed(t: int) -> Detections:
    return Detections((Detection(face_box(t), 0.9, "face"),), (240, 320))


def mask_anonymizer(**kw) -> Anonymizer:  # type: ignore[no-untyped-def]
    return Anonymizer(FixedDetector(()), MaskOut((255, 0, 255)), **kw)


@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".mkv"])
def test_frame_count_rate_and_size_are_kept(tmp_path: Path, astronaut: np.ndarray, suffix: str) -> None:
    src = write_video(tmp_path / f"in{suffix}", moving_face_frames(astronaut, 9), rate=Fraction(30000, 1001))
    out = tmp_path / f"out{suffix}"
    result = anonymize_video(src, out, mask_anonymizer(), progress=False)
    assert result.frames == 9 and result.failed_frames == 0
    assert stream_summary(out)[:4] == stream_summary(src)[:4]
    assert result.frame_rate == pytest.approx(30000 / 1001)


def test_audio_is_copied_or_dropped(tmp_path: Path, clip: Path) -> None:
    kept = anonymize_video(clip, tmp_path / "a.mp4", mask_anonymizer(), progress=False)
    dropped = anonymize_video(clip, tmp_path / "b.mp4", mask_anonymizer(), keep_audio=False, progress=False)
    assert kept.audio_copied and stream_summary(tmp_path / "a.mp4")[4] == 1
    assert not dropped.audio_copied and stream_summary(tmp_path / "b.mp4")[4] == 0
    with av.open(str(clip)) as a, av.open(str(tmp_path / "a.mp4")) as b:
        src_packets = [bytes(p) for p in a.demux(audio=0) if p.size]
        out_packets = [bytes(p) for p in b.demux(audio=0) if p.size]
    assert out_packets == src_packets


def test_no_detections_leaves_frames_as_decoded(tmp_path: Path, clip: Path) -> None:
    out = tmp_path / "o.mp4"
    anonymize_video(clip, out, mask_anonymizer(), progress=False)
    diffs = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(read_frames(clip), read_frames(out))]
    assert max(diffs) < 3.0  # only re-encoding noise


def test_real_detector_blurs_the_moving_face_every_frame(tmp_path: Path, clip: Path) -> None:
    from realanon.detectors.mediapipe_face import MediaPipeFaceDetector

    audit = AuditLog()
    anonymizer = Anonymizer(MediaPipeFaceDetector(), MaskOut((255, 0, 255)), threshold=0.4)
    result = anonymize_video(clip, tmp_path / "o.mp4", anonymizer, audit=audit, progress=False)
    frames = read_frames(tmp_path / "o.mp4")
    for t, image in enumerate(frames):
        x1, y1, x2, y2 = (int(v) for v in face_box(t))
        centre = image[(y1 + y2) // 2 - 5:(y1 + y2) // 2 + 5, (x1 + x2) // 2 - 5:(x1 + x2) // 2 + 5]
        assert np.abs(centre.astype(int) - [255, 0, 255]).mean() < 30, f"face visible in frame {t}"
    records = AuditLog.to_json(audit)["files"][0]["frames"]
    assert [r["frame"] for r in records] == list(range(12))
    assert len({reg["track_id"] for r in records for reg in r["regions"]}) == 1
    assert result.tracks == 1


def test_tracking_fills_detector_gaps_and_looks_ahead(tmp_path: Path, clip: Path) -> None:
    given = {t: boxed(t) for t in range(12) if t not in (0, 1, 2, 6, 7)}  # misses at the start and mid-way
    detections = DetectionsFile({str(clip): given}, "test")

    def covered(track: bool) -> list[int]:
        audit = AuditLog()
        anonymize_video(clip, tmp_path / f"{track}.mp4", mask_anonymizer(), detections=detections,
                        track=track, audit=audit, progress=False,
                        tracker_options=TrackerOptions(lookahead=4, max_age=3))
        return [r["frame"] for r in audit.to_json()["files"][0]["frames"] if r["regions"]]

    assert covered(track=False) == sorted(given)
    assert covered(track=True) == list(range(12))


def test_generator_fault_writes_fully_masked_frames(tmp_path: Path, clip: Path) -> None:
    det = FixedDetector((Detection(face_box(0), 0.9, "face"),))
    result = anonymize_video(clip, tmp_path / "o.mp4", Anonymizer(det, FailingGenerator()), progress=False)
    assert result.failed_frames == result.frames == 12
    assert all(f.max() <= 20 for f in read_frames(tmp_path / "o.mp4"))


def test_detector_fault_writes_fully_masked_frames(tmp_path: Path, clip: Path) -> None:
    def broken(image: np.ndarray) -> Detections:
        raise RuntimeError("detector crashed")

    result = anonymize_video(clip, tmp_path / "o.mp4", Anonymizer(broken, GaussianBlur()), progress=False)
    assert result.failed_frames == 12
    assert all(f.max() <= 20 for f in read_frames(tmp_path / "o.mp4"))


def test_failure_leaves_no_file_under_the_final_name(tmp_path: Path, clip: Path) -> None:
    det = FixedDetector((Detection(face_box(0), 0.9, "face"),))
    out = tmp_path / "out" / "o.mp4"
    with pytest.raises(RuntimeError, match="injected fault"):
        anonymize_video(clip, out, Anonymizer(det, FailingGenerator(), fail_closed=False), progress=False)
    assert list(out.parent.iterdir()) == []


@pytest.mark.parametrize("max_pixels", [None, 1])
def test_batched_frames_equal_frame_by_frame(clip: Path, max_pixels: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    import realanon.frames

    if max_pixels is not None:  # every frame's crops exceed it: one generator call per frame
        monkeypatch.setattr(realanon.frames, "MAX_CALL_PIXELS", max_pixels)
    frames = read_frames(clip)[:4]
    calls: list[int] = []
    blur = GaussianBlur()
    anonymizer = Anonymizer(None, lambda batch: calls.append(len(batch)) or blur(batch))
    dets = [boxed(t) for t in range(4)]
    joint = anonymize_frames(anonymizer, frames, dets, [0, 1, 2, 3])
    per_frame = [anonymizer(frames[t], dets[t], frame_index=t).image for t in range(4)]
    for t, result in enumerate(joint):
        np.testing.assert_array_equal(result.image, per_frame[t])
    assert calls[:-4] == ([sum(len(d) for d in dets)] if max_pixels is None else [len(d) for d in dets])


def test_zero_frame_video_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.avi"  # AVI keeps the stream header of a video with no frames
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        out.start_encoding()
    assert probe_video(path).width == 64
    with pytest.raises(InputError, match="no frames"):
        anonymize_video(path, tmp_path / "o.mp4", mask_anonymizer(), progress=False)
    assert not (tmp_path / "o.mp4").exists()


def test_corrupt_and_unusable_inputs_are_input_errors(tmp_path: Path, clip: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(clip.read_bytes()[: clip.stat().st_size // 3])
    audio_only = tmp_path / "tone.m4a"
    with av.open(str(audio_only), "w", format="mp4") as out:
        astream = out.add_stream("aac", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        out.mux(astream.encode(frame))
        out.mux(astream.encode(None))
    cases = {junk: "not a readable video", truncated: "not a readable video", audio_only: "no video stream",
             tmp_path / "missing.mp4": "no such file"}
    for path, problem in cases.items():
        with pytest.raises(InputError, match=problem):
            anonymize_video(path, tmp_path / "o.mp4", mask_anonymizer(), progress=False)
    assert not (tmp_path / "o.mp4").exists()


def test_never_overwrites_the_input(tmp_path: Path, clip: Path) -> None:
    before = clip.read_bytes()
    with pytest.raises(InputError, match="refusing to overwrite"):
        anonymize_video(clip, clip, mask_anonymizer(), progress=False)
    with pytest.raises(InputError, match="must end in"):
        anonymize_video(clip, tmp_path / "o.gif", mask_anonymizer(), progress=False)
    assert clip.read_bytes() == before


def test_probe_reads_size_rate_and_audio(clip: Path) -> None:
    info = probe_video(clip)
    assert (info.width, info.height, info.frame_rate, info.has_audio) == (320, 240, Fraction(25), True)
    assert info.declared_frames == 12


def test_truncated_video_is_an_error_unless_allowed(tmp_path: Path, astronaut: np.ndarray) -> None:
    src = write_video(tmp_path / "in.avi", moving_face_frames(astronaut, 20))
    cut = tmp_path / "cut.avi"
    cut.write_bytes(src.read_bytes()[: int(src.stat().st_size * 0.9)])
    out = tmp_path / "o.avi"
    with pytest.raises(InputError, match="truncated: only"):
        anonymize_video(cut, out, mask_anonymizer(), progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.avi", "in.avi"]  # no output, no temp file
    result = anonymize_video(cut, out, mask_anonymizer(), progress=False, allow_truncated=True)
    assert 0 < result.frames < result.declared_frames == 20
    assert stream_summary(out)[0] == result.frames


def test_corrupt_data_mid_stream_is_an_input_error(tmp_path: Path, astronaut: np.ndarray) -> None:
    """Bytes flipped all over the frame data: FFmpeg refuses a packet part-way (errors it conceals
    silently cannot be detected; those frames are anonymized like any other)."""
    src = write_video(tmp_path / "in.mp4", moving_face_frames(astronaut, 20))
    data = bytearray(src.read_bytes())
    rng = np.random.default_rng(0)
    for i in rng.integers(2000, len(data) - 2000, 300):
        data[i] = int(rng.integers(0, 256))
    garbled = tmp_path / "garbled.mp4"
    garbled.write_bytes(bytes(data))
    with pytest.raises(InputError, match="corrupt video data after frame"):
        anonymize_video(garbled, tmp_path / "o.mp4", mask_anonymizer(), progress=False)
    assert not (tmp_path / "o.mp4").exists()


def test_odd_sizes_are_padded_by_one_edge_pixel(tmp_path: Path, rng: np.random.Generator) -> None:
    src = tmp_path / "odd.mkv"
    frames = [rng.integers(0, 256, (45, 63, 3), dtype=np.uint8) for _ in range(5)]
    with av.open(str(src), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 63, 45, "yuv444p"
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    result = anonymize_video(src, tmp_path / "o.mkv", mask_anonymizer(), progress=False)
    assert result.frames == 5 and result.size == (45, 63)
    assert stream_summary(tmp_path / "o.mkv")[:4] == (5, Fraction(25), 64, 46)


class FaceFinder:
    """A deterministic batch detector for :func:`moving_face_frames`: boxes the pixels far from the grey.

    Records the size of every ``detect_batch`` call and counts single-image calls. ``fail_frame``
    makes single-image calls raise on that frame (told by the face's position) and every
    ``detect_batch`` call raise.
    """

    def __init__(self, fail_frame: int | None = None) -> None:
        self.fail_frame = fail_frame
        self.batches: list[int] = []
        self.single_calls = 0

    def __call__(self, image: np.ndarray) -> Detections:
        self.single_calls += 1
        dets = find_face(image)
        if self.fail_frame is not None and dets.items[0].box_xyxy[0] == 20 + 8 * self.fail_frame:
            raise RuntimeError("detector crashed on this frame")
        return dets

    def detect_batch(self, images: list[np.ndarray]) -> list[Detections]:
        self.batches.append(len(images))
        if self.fail_frame is not None:
            raise RuntimeError("batched detection crashed")
        return [find_face(image) for image in images]


def find_face(image: np.ndarray) -> Detections:
    """Box of the pixels that differ from the background by more than 40 levels."""
    ys, xs = np.nonzero(np.abs(image.astype(int) - 120).max(axis=2) > 40)
    box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
    return Detections((Detection(box, 0.9, "face"),), image.shape[:2])


@pytest.mark.parametrize(("batch_frames", "groups"), [(4, [4, 4, 4]), (5, [5, 5, 2])])
def test_batched_detection_output_is_identical(tmp_path: Path, clip: Path, batch_frames: int,
                                                    groups: list[int]) -> None:
    finder = FaceFinder()
    outputs = {}
    for name, detector in {"batched": finder, "single": find_face}.items():
        audit = AuditLog()
        anonymizer = Anonymizer(detector, MaskOut((255, 0, 255)))
        result = anonymize_video(clip, tmp_path / f"{name}.mp4", anonymizer, audit=audit, progress=False,
                                 batch_frames=batch_frames, tracker_options=TrackerOptions(lookahead=3))
        assert result.frames == 12 and result.failed_frames == 0 and result.regions == 12
        # Decoded frames, not file bytes: the container records its creation time.
        outputs[name] = (read_frames(tmp_path / f"{name}.mp4"), audit.to_json()["files"])
    assert finder.batches == groups and finder.single_calls == 0
    assert outputs["batched"][1] == outputs["single"][1]
    assert len(outputs["batched"][0]) == len(outputs["single"][0]) == 12
    for batched, single in zip(outputs["batched"][0], outputs["single"][0]):
        np.testing.assert_array_equal(batched, single)


def test_failed_batched_detection_masks_only_the_failing_frame(tmp_path: Path, clip: Path) -> None:
    finder = FaceFinder(fail_frame=5)
    anonymizer = Anonymizer(finder, MaskOut((255, 0, 255)))
    result = anonymize_video(clip, tmp_path / "o.mp4", anonymizer, progress=False, batch_frames=4)
    assert finder.batches == [4, 4, 4] and finder.single_calls == 12
    assert result.failed_frames == 1
    fully_masked = [t for t, image in enumerate(read_frames(tmp_path / "o.mp4")) if image.max() <= 20]
    assert fully_masked == [5]


def test_frame_stage_holds_a_bounded_number_of_frames(tmp_path: Path) -> None:
    from realanon.video import _FrameStage

    lookahead, batch_frames = 3, 4
    stage = _FrameStage(mask_anonymizer(), tmp_path / "in.mp4", None, TrackerOptions(lookahead=lookahead),
                        batch_frames)
    image = np.zeros((24, 32, 3), np.uint8)
    released = []
    for index in range(30):
        released += [i for i, _ in stage.push(index, image)]
        assert len(stage.waiting) + len(stage.buffer) <= lookahead + 2 * batch_frames
    released += [i for i, _ in stage.flush()]
    assert released == list(range(30))


class _FaceFinder:
    """Boxes the pixels that differ from the grey background, slowly; concurrent calls allowed
    or not, counting how many run at once."""

    def __init__(self, concurrent: bool) -> None:
        import threading

        self.concurrent, self.running, self.most = concurrent, 0, 0
        self._lock = threading.Lock()

    def concurrent_calls(self) -> bool:
        return self.concurrent

    def __call__(self, image: np.ndarray) -> Detections:
        import time

        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.02 if int(image[0:60].sum()) % 3 else 0.005)  # calls end out of order
        ys, xs = np.nonzero((np.abs(image.astype(int) - 120) > 30).any(axis=2))
        with self._lock:
            self.running -= 1
        box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
        return Detections((Detection(box, 0.9, "face"),), image.shape[:2])


def test_two_detection_workers_write_the_same_video_as_one(tmp_path: Path, clip: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    outputs = []
    for concurrent in (False, True):
        finder = _FaceFinder(concurrent)
        out = tmp_path / f"concurrent_{concurrent}.mp4"
        anonymize_video(clip, out, Anonymizer(finder, MaskOut()), progress=False)
        assert finder.most == (2 if concurrent else 1)
        outputs.append(read_frames(out))
    assert len(outputs[0]) == len(outputs[1]) == 12
    for single, double in zip(*outputs):
        np.testing.assert_array_equal(single, double)
