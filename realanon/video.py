"""Streaming video anonymization with PyAV: decode thread -> detect threads -> anonymize -> encode thread.

The stages run concurrently and talk through bounded queues, so memory is constant in the
length of the video (PyAV and the detectors' networks release the GIL, so the threads overlap).
Detection runs ahead in groups of frames (:mod:`realanon.video_detect`); a detector that
allows concurrent calls (:class:`~realanon.interfaces.ConcurrentDetector`, as ``yunet`` does
by default) gets two groups at once on two or more cores.

Guarantees:

* same frame count, frame rate and size as the input (a variable-frame-rate input is written at
  its average rate); odd widths or heights are padded by one edge pixel, because H.264/MPEG-4 in
  yuv420p need even sizes;
* the audio stream is copied unchanged unless ``keep_audio=False``;
* the output is written to a hidden temporary name beside the final one and renamed when
  complete: an interrupted or failed run leaves nothing under the final name; an input is
  never overwritten;
* fail closed: a frame on which detection or generation raises is written fully masked;
* with tracking, each person keeps one track id (hence one seed and one synthetic identity),
  a track coasts through short detector misses at its predicted position, and a
  ``lookahead``-frame buffer lets a person be covered before the detector first fires.

Unreadable input, no video stream or zero frames raise :class:`~realanon.errors.InputError`.
Truncated or corrupt input (decoding fails part-way, or fewer frames decode than the container
declares) raises an InputError naming the file and the last good frame, and its partial output
is deleted: a silently shorter video would be easy to miss. ``allow_truncated=True`` keeps
every frame that decodes instead (each one anonymized; a warning is logged). Damage the decoder
conceals without reporting it cannot be told apart from real frames; such frames are
anonymized like any other.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from realanon.audit import AuditLog, DetectionsFile
from realanon.composite import mask_entire_frame
from realanon.errors import InputError, RealanonError
from realanon.frames import anonymize_frames, concat_batches
from realanon.interfaces import TrackedSearch
from realanon.pipeline import Anonymizer
from realanon.structures import AnonymizedFrame, Detections, image_size
from realanon.tracking import IoUTracker, TrackerOptions, grow_box, shift_detection
from realanon.video_detect import DetectAhead, detection_group_size, detection_workers
from realanon.video_io import FrameDecoder, FrameEncoder, VideoInfo, probe_video

log = logging.getLogger(__name__)

__all__ = ["VIDEO_EXTENSIONS", "VideoResult", "anonymize_frames", "anonymize_video", "concat_batches",
           "probe_video", "temporary_output_path"]

VIDEO_EXTENSIONS: frozenset[str] = frozenset({".mp4", ".avi", ".mov", ".mkv"})


@dataclass(frozen=True)
class VideoResult:
    """What :func:`anonymize_video` did.

    Attributes:
        frames: Frames written (equals the frames decoded from the input).
        failed_frames: Frames written fully masked because a stage raised (fail closed).
        fps: Processing speed, frames per second of wall-clock time, end to end.
        seconds: Wall-clock time of the whole run.
        size: ``(height, width)`` of the input frames.
        frame_rate: Frames per second of the input (and output) stream.
        audio_copied: Whether an audio stream was copied into the output.
        declared_frames: Frame count the container declares (0 when unknown).
        regions: Regions replaced over the whole video.
        filled_regions: Of those, regions that came from the tracker (coasting through a
            detector miss, or filled in before a track's first detection by the look-ahead).
        tracks: Number of tracks started (0 without tracking).
        output: The final output path.
    """

    frames: int
    failed_frames: int
    fps: float
    seconds: float
    size: tuple[int, int]
    frame_rate: float
    audio_copied: bool
    declared_frames: int
    regions: int
    filled_regions: int
    tracks: int
    output: Path


@dataclass
class _Pending:
    index: int
    image: np.ndarray
    detections: list[Any]  # list[Detection]; mutable so the look-ahead can add to it
    failed: str | None


class _FrameStage:
    """Detects frames in groups, tracks each frame, holds a look-ahead buffer and anonymizes in small batches.

    At most ``batch_frames`` decoded frames wait for detection and ``lookahead + batch_frames``
    detected frames wait in the buffer, so memory is bounded whatever the video's length.
    """

    def __init__(
        self, anonymizer: Anonymizer, input_path: Path, given: DetectionsFile | None,
        tracker_options: TrackerOptions | None, batch_frames: int,
    ) -> None:
        self.anonymizer = anonymizer
        self.input_path = input_path
        self.given = given
        self.options = tracker_options
        self.tracker = IoUTracker(tracker_options) if tracker_options is not None else None
        self.lookahead = tracker_options.lookahead if tracker_options is not None else 0
        self.batch_frames = max(1, batch_frames)
        self.waiting: list[tuple[int, np.ndarray]] = []  # decoded, not yet detected
        self.buffer: deque[_Pending] = deque()
        self.tracks = 0

    def push(self, index: int, image: np.ndarray) -> Iterator[tuple[int, AnonymizedFrame]]:
        """Adds a decoded frame, detected here; yields the frames that left the look-ahead buffer, anonymized.

        Lazy: each frame is yielded as soon as its batch is anonymized, so the caller writes it
        (and drops its regions' masks) before the next batch is made, keeping memory to one batch.
        """
        self.waiting.append((index, image))
        if len(self.waiting) >= self.batch_frames:
            yield from self._admit_waiting()

    def flush(self) -> Iterator[tuple[int, AnonymizedFrame]]:
        """Anonymizes everything still waiting or buffered (end of video)."""
        yield from self._admit_waiting()
        yield from self._release(len(self.buffer))

    def _admit_waiting(self) -> Iterator[tuple[int, AnonymizedFrame]]:
        """Detects the waiting frames together, then tracks and buffers them one by one, in order."""
        waiting, self.waiting = self.waiting, []
        for (index, image), (detections, failed) in zip(waiting, self.detect_group(waiting)):
            yield from self.admit(index, image, detections, failed)

    def admit(self, index: int, image: np.ndarray, detections: Detections,
              failed: str | None) -> Iterator[tuple[int, AnonymizedFrame]]:
        """Tracks one detected frame (frames in order) and buffers it; yields the frames that left the buffer."""
        if self.tracker is not None:
            update = self.tracker.update(detections)
            detections = update.detections
            self.tracks += len(update.born)
            self._backfill(update.born)
        self.buffer.append(_Pending(index, image, list(detections.items), failed))
        if len(self.buffer) >= self.lookahead + self.batch_frames:
            yield from self._release(self.batch_frames)

    def detect_group(self, frames: list[tuple[int, np.ndarray]]) -> list[tuple[Detections, str | None]]:
        """Detections (or the failure) of each frame: one batched call, or frame by frame if it raises."""
        if self.given is None and frames:
            try:
                return [(d, None) for d in self.anonymizer.detect_many([image for _, image in frames],
                                                                       [index for index, _ in frames])]
            except RealanonError:
                raise
            except Exception:  # noqa: BLE001 - retry frame by frame so only failing frames are masked
                log.debug("batched detection failed; retrying frame by frame", exc_info=True)
        return [self._detect(index, image) for index, image in frames]

    def _detect(self, index: int, image: np.ndarray) -> tuple[Detections, str | None]:
        size = image_size(image)
        try:
            if self.given is not None:
                return self.anonymizer.select(self.given.get(self.input_path, index, size)), None
            return self.anonymizer.detect(image, frame_index=index), None
        except RealanonError:
            raise
        except Exception as err:  # noqa: BLE001 - fail closed on anything the detector raises
            if not self.anonymizer.fail_closed:
                raise
            log.warning("frame %d: detection failed (%s: %s); writing it fully masked", index, type(err).__name__, err)
            return Detections.empty(size), f"{type(err).__name__}: {err}"

    def _backfill(self, born: tuple[Any, ...]) -> None:
        """Adds each newly born track to the buffered frames before it (the look-ahead)."""
        if not born or self.options is None:
            return
        earlier = list(self.buffer)[-self.lookahead:] if self.lookahead else []
        for steps_back, pending in enumerate(reversed(earlier), start=1):
            for det in born:
                box = grow_box(np.asarray(det.box_xyxy), self.options.grow_per_missed * steps_back)
                pending.detections.append(shift_detection(det, box, det.track_id))

    def _release(self, count: int) -> Iterator[tuple[int, AnonymizedFrame]]:
        while count > 0 and self.buffer:
            chunk = [self.buffer.popleft() for _ in range(min(count, self.batch_frames, len(self.buffer)))]
            count -= len(chunk)
            yield from self._anonymize(chunk)

    def _anonymize(self, chunk: list[_Pending]) -> list[tuple[int, AnonymizedFrame]]:
        ok = [p for p in chunk if p.failed is None]
        results = anonymize_frames(
            self.anonymizer, [p.image for p in ok],
            [Detections(tuple(p.detections), image_size(p.image)) for p in ok], [p.index for p in ok],
        )
        by_index = {p.index: r for p, r in zip(ok, results)}
        return [
            (p.index, by_index[p.index] if p.failed is None else AnonymizedFrame(
                mask_entire_frame(p.image), Detections.empty(image_size(p.image)), (), p.failed))
            for p in chunk
        ]


def _check_paths(input_path: Path, output_path: Path) -> None:
    if not input_path.exists():
        raise InputError(input_path, "no such file")
    if not input_path.is_file():
        raise InputError(input_path, "not a file")
    if output_path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise InputError(output_path, f"output must end in one of {', '.join(sorted(VIDEO_EXTENSIONS))}")
    if output_path.exists() and output_path.resolve() == input_path.resolve():
        raise InputError(output_path, "output is the input; refusing to overwrite it")


def temporary_output_path(output_path: Path) -> Path:
    """The hidden name a video is written to before being renamed to ``output_path``."""
    return output_path.with_name(f".{output_path.stem}.{os.getpid()}.part{output_path.suffix}")


def anonymize_video(
    input_path: Path,
    output_path: Path,
    anonymizer: Anonymizer,
    *,
    keep_audio: bool = True,
    audit: AuditLog | None = None,
    detections: DetectionsFile | None = None,
    track: bool = True,
    progress: bool = True,
    tracker_options: TrackerOptions | None = None,
    encoder_options: dict[str, str] | None = None,
    batch_frames: int = 4,
    queue_size: int = 4,
    allow_truncated: bool = False,
) -> VideoResult:
    """Anonymizes a video file frame by frame, streaming, and writes it atomically.

    Args:
        input_path: Any video PyAV can decode.
        output_path: ``.mp4``/``.mov``/``.mkv`` (H.264, yuv420p) or ``.avi`` (MPEG-4 part 2).
        anonymizer: The pipeline applied to every frame (RGB uint8).
        keep_audio: Copy the first audio stream unchanged.
        audit: When given, every frame's replaced detections are recorded in it.
        detections: Use these detections (looked up by input path and frame) instead of the detector.
        track: Link detections into tracks (stable identity, gap filling, look-ahead). A detector
            with ``set_tracked`` (:class:`~realanon.interfaces.TrackedSearch`) is told so for the
            run and may spread its search over frames; without tracking it searches fully.
        progress: Show a tqdm progress bar with the processing frame rate.
        tracker_options: Tracker settings; defaults to :class:`TrackerOptions()`.
        encoder_options: Encoder options passed to FFmpeg; default ``preset=veryfast, crf=20`` for H.264.
        batch_frames: Frames detected together (one call when the detector batches, see
            :class:`~realanon.interfaces.BatchDetector`) and whose regions go to the generator in one call.
        queue_size: Bound of the decode and encode queues, in frames.
        allow_truncated: Keep the output of a video that ends before the frame count its
            container declares, instead of raising.

    Returns:
        Counts and speed of the run.

    Raises:
        InputError: missing, unreadable or corrupt input, no video stream, no frames, or an
            output path that is the input or lacks a video extension.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    _check_paths(input_path, output_path)
    info = probe_video(input_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_output_path(output_path)
    options = (tracker_options or TrackerOptions()) if track else None
    stage = _FrameStage(anonymizer, input_path, detections, options, batch_frames)
    # Only a tracked run lets the detector spread its search over frames (TrackedSearch).
    searcher = anonymizer.detector if isinstance(anonymizer.detector, TrackedSearch) else None
    if searcher is not None:
        searcher.set_tracked(track)
    start = time.perf_counter()
    try:
        counts = _stream(input_path, tmp, info, stage, audit, keep_audio, encoder_options, queue_size, progress)
        frames, failed, regions, filled, audio = counts
        if info.declared_frames > frames:
            problem = f"truncated: only {frames} of the {info.declared_frames} declared frames decode"
            if not allow_truncated:
                raise InputError(input_path, f"{problem} (allow_truncated keeps them)")
            log.warning("%s: %s; kept them", input_path, problem)
        os.replace(tmp, output_path)
    finally:
        tmp.unlink(missing_ok=True)
        if searcher is not None:
            searcher.set_tracked(False)
    seconds = time.perf_counter() - start
    return VideoResult(
        frames=frames, failed_frames=failed, fps=frames / max(seconds, 1e-9), seconds=seconds,
        size=(info.height, info.width), frame_rate=float(info.frame_rate), audio_copied=audio,
        declared_frames=info.declared_frames, regions=regions, filled_regions=filled,
        tracks=stage.tracks, output=output_path,
    )


def _stream(
    input_path: Path, tmp: Path, info: VideoInfo, stage: _FrameStage, audit: AuditLog | None,
    keep_audio: bool, encoder_options: dict[str, str] | None, queue_size: int, progress: bool,
) -> tuple[int, int, int, int, bool]:
    """Runs decode -> anonymize -> encode; returns (frames, failed, regions, filled, audio copied)."""
    from tqdm import tqdm

    counts = [0, 0, 0, 0]
    emit_args = (audit, stage.anonymizer.method_name, str(input_path), counts)
    decoder = FrameDecoder(input_path, keep_audio, queue_size)
    encoder: FrameEncoder | None = None
    ahead: DetectAhead | None = None
    complete = False
    bar = tqdm(total=info.declared_frames or None, unit="frame", disable=not progress, desc=input_path.name)
    try:
        encoder = FrameEncoder(tmp, info, decoder, encoder_options, queue_size)
        # Frame t + 1 is detected in its own thread while frame t is anonymized and encoded.
        detector, given = stage.anonymizer.detector, stage.given is not None
        ahead = DetectAhead(decoder, stage.detect_group, detection_group_size(detector, given, stage.batch_frames),
                            detection_workers(detector, given))
        for index, image, detections, failed in ahead:
            for done in stage.admit(index, image, detections, failed):
                _emit(done, encoder, *emit_args)
            bar.update(1)
        for done in stage.flush():
            _emit(done, encoder, *emit_args)
        complete = True
    finally:
        bar.close()
        if ahead is not None:
            ahead.close()
        decoder.close()
        if encoder is not None and complete:
            encoder.close(complete=True)
        elif encoder is not None:
            with contextlib.suppress(Exception):  # the error already propagating is the one to report
                encoder.close(complete=False)
    if counts[0] == 0:
        raise InputError(input_path, "video has no frames")
    return counts[0], counts[1], counts[2], counts[3], encoder.audio_copied


def _emit(
    done: tuple[int, AnonymizedFrame], encoder: FrameEncoder, audit: AuditLog | None, method: str, file: str,
    counts: list[int],
) -> None:
    index, result = done
    encoder.put(index, result.image)
    counts[0] += 1
    counts[1] += result.failed is not None
    counts[2] += len(result.regions)
    counts[3] += sum(r.detection.source == "tracker" for r in result.regions)
    if audit is not None:
        audit.add_frame(file, index, result.detections, method, result.failed)
