"""Threaded video decoding and encoding with PyAV, for :mod:`realanon.video`.

:class:`FrameDecoder` decodes RGB frames in a thread into a bounded queue (and collects the
audio packets to copy); :class:`FrameEncoder` encodes RGB frames in another thread, muxing the
copied audio in time order. PyAV releases the GIL inside codec work, so both overlap with
anonymization.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from realanon.errors import InputError

log = logging.getLogger(__name__)

_END = object()


class Handoff:
    """A bounded queue from one producer thread to one consumer.

    The producer's :meth:`put` gives up once :attr:`stop` is set (the consumer has gone), and
    :meth:`finish` marks the end; iterating yields the items until that end and raises, in the
    consumer's thread, an exception the producer put.
    """

    def __init__(self, size: int) -> None:
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, size))
        self.stop = threading.Event()

    def put(self, item: Any) -> bool:
        """Waits for room; False (item dropped) once :attr:`stop` is set."""
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def finish(self) -> None:
        self.put(_END)

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self.queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
# H.264 rate control for the output: fast enough for real time at 1080p on two cores, visually lossless-ish.
DEFAULT_X264_OPTIONS: dict[str, str] = {"preset": "veryfast", "crf": "20"}


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` learnt about a video's first video stream."""

    width: int
    height: int
    frame_rate: Fraction
    declared_frames: int
    has_audio: bool


def probe_video(path: Path) -> VideoInfo:
    """Opens ``path`` and reads its first video stream's size, rate and declared frame count.

    Raises:
        InputError: the file cannot be opened as a container, or has no usable video stream.
    """
    import av

    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise InputError(path, f"not a readable video ({_short(err)})") from None
    with container:
        if not container.streams.video:
            raise InputError(path, "no video stream")
        stream = container.streams.video[0]
        if stream.codec_context is None:  # a damaged header can leave the stream without a decoder
            raise InputError(path, "video stream has no usable codec (corrupt header?)")
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:
            raise InputError(path, "video stream has no frame size (corrupt header?)")
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        return VideoInfo(int(width), int(height), Fraction(rate), int(stream.frames or 0),
                         bool(container.streams.audio))


def _short(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text if len(text) < 160 else text[:157] + "..."


class FrameDecoder:
    """Decodes RGB frames in a thread into a bounded queue; collects audio packets for the encoder."""

    def __init__(self, path: Path, keep_audio: bool, queue_size: int) -> None:
        import av

        self.path = path
        self.container = av.open(str(path))
        self.video_in = self.container.streams.video[0]
        self.video_in.thread_type = "AUTO"
        audio = self.container.streams.audio
        self.audio_in = audio[0] if keep_audio and audio else None
        self.audio: deque[Any] = deque()  # packets, appended here and consumed by the encoder thread
        self._frames = Handoff(queue_size)
        self._thread = threading.Thread(target=self._run, name="realanon-decode", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import av
        from av.video.reformatter import VideoReformatter

        # One converter for the whole video, on this thread: a frame's own ``to_ndarray`` makes a
        # new swscale context for every frame, and with it a new pool of conversion threads.
        to_rgb = VideoReformatter()
        index = 0
        streams = [self.video_in] + ([self.audio_in] if self.audio_in is not None else [])
        try:
            for packet in self.container.demux(*streams):
                if packet.stream.type == "audio":
                    if packet.dts is not None and packet.size:
                        self.audio.append(packet)
                    continue
                for frame in packet.decode():
                    if not isinstance(frame, av.VideoFrame):
                        continue
                    rgb = to_rgb.reformat(frame, format="rgb24", threads=1).to_ndarray()
                    if not self._frames.put((index, rgb)):
                        return
                    index += 1
        except av.FFmpegError as err:
            self._frames.put(InputError(self.path, f"corrupt video data after frame {index} ({_short(err)})"))
        except BaseException as err:  # noqa: BLE001 - handed to the consumer thread and raised there
            self._frames.put(err)
        else:
            self._frames.finish()

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        return iter(self._frames)

    def close(self) -> None:
        self._frames.stop.set()
        self._thread.join()
        self.container.close()


class FrameEncoder:
    """Encodes RGB frames in a thread (H.264, or MPEG-4 in .avi), muxing copied audio in time order."""

    def __init__(self, path: Path, info: VideoInfo, decoder: FrameDecoder, options: dict[str, str] | None,
                 queue_size: int) -> None:
        import av

        self.container = av.open(str(path), "w")
        self.rate = info.frame_rate
        avi = path.suffix.lower() == ".avi"
        self.stream = self.container.add_stream("mpeg4" if avi else "libx264", rate=info.frame_rate)
        self.stream.width, self.stream.height = info.width + info.width % 2, info.height + info.height % 2
        self.stream.pix_fmt = "yuv420p"
        if avi:  # MPEG-4 part 2 has no CRF; about 0.3 bit per pixel keeps it clean
            self.stream.bit_rate = int(self.stream.width * self.stream.height * float(info.frame_rate) * 0.3)
        self.stream.options = dict(options if options is not None else ({} if avi else DEFAULT_X264_OPTIONS))
        self.decoder = decoder
        self.audio_out = None
        if decoder.audio_in is not None:
            try:
                self.audio_out = self.container.add_stream_from_template(decoder.audio_in)
            except (av.FFmpegError, ValueError) as err:
                log.warning("%s: cannot copy the audio stream into this container (%s); dropping it", path, err)
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="realanon-encode", daemon=True)
        self._thread.start()

    @property
    def audio_copied(self) -> bool:
        return self.audio_out is not None

    def put(self, index: int, image: np.ndarray) -> None:
        """Queues one RGB frame; raises the encoder's error if it has failed."""
        while True:
            if self.error is not None:
                raise self.error
            try:
                self.queue.put((index, image), timeout=0.1)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        import av
        import cv2

        try:
            while (item := self.queue.get()) is not _END:
                index, image = item
                if image.shape[0] % 2 or image.shape[1] % 2:
                    image = np.pad(image, ((0, image.shape[0] % 2), (0, image.shape[1] % 2), (0, 0)), mode="edge")
                # OpenCV's BT.601 RGB -> I420 matches swscale's default to +-1 level and is faster.
                frame = av.VideoFrame.from_ndarray(cv2.cvtColor(image, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
                frame.pts = index
                self._mux_audio(Fraction(index) / self.rate)
                self.container.mux(self.stream.encode(frame))
        except BaseException as err:  # noqa: BLE001 - raised in the producer thread by put()/close()
            self.error = err
            while self.queue.get() is not _END:  # keep the producer unblocked until it closes
                pass

    def _mux_audio(self, until_seconds: Fraction | None) -> None:
        while self.decoder.audio:
            packet = self.decoder.audio[0]
            stamp = packet.pts if packet.pts is not None else packet.dts
            if until_seconds is not None and stamp * packet.time_base > until_seconds:
                return
            self.decoder.audio.popleft()
            if self.audio_out is not None:
                packet.stream = self.audio_out
                self.container.mux(packet)

    def close(self, complete: bool) -> None:
        """Stops the thread; when ``complete``, flushes the encoder and the remaining audio."""
        self.queue.put(_END)
        self._thread.join()
        try:
            if complete and self.error is None:
                self.container.mux(self.stream.encode(None))
                self._mux_audio(None)
        finally:
            self.container.close()
        if self.error is not None:
            raise self.error
