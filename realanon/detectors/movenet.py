"""COCO-17 keypoints from the shipped MoveNet MultiPose Lightning ONNX model.

The model takes an int32 RGB image of any size whose sides are multiples of 32 and returns
up to 6 people, each with 17 COCO keypoints ``(y, x, score)`` and a box, normalised to the
input. :class:`MoveNetPose` runs it on the whole frame (a detector on its own) or, through
:meth:`MoveNetPose.refine`, on each person's crop to give boxes found by another detector
their keypoints.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import replace

import cv2
import numpy as np

from realanon.detectors._boxes import box_iou
from realanon.detectors.onnx_models import open_session
from realanon.registry import register_detector
from realanon.structures import Detection, Detections

MAX_PEOPLE = 6
_CONTEXT = 0.2  # context around a person box before cropping (fraction of its size)


def input_shape(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """Network ``(height, width)`` for an image: long side ``long_side``, both multiples of 32."""
    h, w = size
    s = long_side / max(h, w)
    return max(32, round(h * s / 32) * 32), max(32, round(w * s / 32) * 32)


def decode(output: np.ndarray, size: tuple[int, int], min_score: float) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """``(6, 56)`` MoveNet rows -> ``(box XYXY, (17, 3) keypoints (x, y, score), score)`` in pixels of ``size``."""
    h, w = size
    people = []
    for row in output:
        score = float(row[55])
        if score < min_score:
            continue
        kp = row[:51].reshape(17, 3)
        keypoints = np.stack([kp[:, 1] * w, kp[:, 0] * h, kp[:, 2]], axis=1).astype(np.float32)
        ymin, xmin, ymax, xmax = row[51:55]
        box = np.array([xmin * w, ymin * h, xmax * w, ymax * h], dtype=np.float64)
        people.append((box, keypoints, score))
    return people


@register_detector("movenet_pose")
class MoveNetPose:
    """People with COCO-17 keypoints from MoveNet MultiPose (at most 6 per pass).

    Args:
        min_score: People scoring below this are dropped.
        long_side: The whole frame is resized to this long side for a whole-frame pass.
        crop_long_side: Each person crop is resized to this long side in :meth:`refine`.
        min_height: :meth:`refine` skips people shorter than this (their keypoints are
            meaningless at that size); they keep their box.
        model: Shipped model name or an ONNX file with the same input and output.
        device: ``"cuda"`` uses onnxruntime's CUDA provider when available.
        threads: onnxruntime intra-op threads (default ``OMP_NUM_THREADS``, else its choice).
    """

    def __init__(self, min_score: float = 0.2, long_side: int = 640, crop_long_side: int = 256,
                 min_height: float = 40.0, model: str = "movenet-multipose", device: str = "cpu",
                 threads: int | None = None) -> None:
        if long_side < 32 or crop_long_side < 32:
            raise ValueError("movenet_pose long_side and crop_long_side must be at least 32")
        self.min_score = float(min_score)
        self.long_side = int(long_side)
        self.crop_long_side = int(crop_long_side)
        self.min_height = float(min_height)
        # Whole frames and person crops of every shape: no memory pattern (see open_session).
        self._session = open_session(model, device=device, threads=threads, varying_sizes=True)
        self._input = self._session.get_inputs()[0].name
        self._lock = threading.Lock()

    def __call__(self, image: np.ndarray) -> Detections:
        """People in an RGB ``(H, W, 3)`` uint8 image: box, keypoints (layout ``"coco17"``), score."""
        h, w = image.shape[:2]
        items = tuple(Detection(tuple(box), score, "body", keypoints=kp, keypoint_layout="coco17",  # type: ignore[arg-type]
                                source="movenet_pose")
                      for box, kp, score in self._people(image, self.long_side, 0.0))
        return Detections(items, (h, w))

    def refine(self, image: np.ndarray, detections: Detections) -> Detections:
        """Adds keypoints to each body detection, from MoveNet run on that person's crop.

        The person of the crop whose box best overlaps the detection's box (IoU >= 0.3) gives
        the keypoints; a detection with no match, or shorter than ``min_height``, is kept as it is.
        """
        out = []
        for det in detections:
            if det.kind != "body" or det.height < self.min_height or det.keypoints is not None:
                out.append(det)
                continue
            kp = self.keypoints_in_crop(image, det.box_xyxy)
            out.append(det if kp is None else replace(det, keypoints=kp, keypoint_layout="coco17"))
        return Detections(tuple(out), detections.image_size)

    def keypoints_in_crop(self, image: np.ndarray, box: Sequence[float]) -> np.ndarray | None:
        """``(17, 3)`` keypoints in frame pixels of the person in ``box``, or None."""
        h, w = image.shape[:2]
        x1, y1, x2, y2 = box
        bw, bh = x2 - x1, y2 - y1
        cx1, cy1 = max(0, math.floor(x1 - _CONTEXT * bw)), max(0, math.floor(y1 - _CONTEXT * bh))
        cx2, cy2 = min(w, math.ceil(x2 + _CONTEXT * bw)), min(h, math.ceil(y2 + _CONTEXT * bh))
        if cx2 - cx1 < 8 or cy2 - cy1 < 8:
            return None
        people = self._people(image[cy1:cy2, cx1:cx2], self.crop_long_side, self.min_score)
        if not people:
            return None
        target = np.array([x1 - cx1, y1 - cy1, x2 - cx1, y2 - cy1], dtype=np.float64)
        ious = box_iou(target, np.stack([p[0] for p in people]))
        best = int(ious.argmax())
        if ious[best] < 0.3:
            return None
        kp = people[best][1].copy()
        kp[:, 0] += cx1
        kp[:, 1] += cy1
        return kp

    def _people(self, image: np.ndarray, long_side: int, min_score: float) -> list[tuple[np.ndarray, np.ndarray, float]]:
        size = image.shape[:2]
        in_h, in_w = input_shape((int(size[0]), int(size[1])), long_side)
        interp = cv2.INTER_AREA if in_w < size[1] else cv2.INTER_LINEAR
        x = cv2.resize(np.ascontiguousarray(image), (in_w, in_h), interpolation=interp)[None].astype(np.int32)
        with self._lock:
            output = self._session.run(None, {self._input: x})[0][0]
        return decode(output, (int(size[0]), int(size[1])), max(min_score, self.min_score))
