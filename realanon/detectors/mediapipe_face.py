"""Face detection with mediapipe's bundled BlazeFace models (offline)."""

from __future__ import annotations

import threading

import numpy as np

from realanon.registry import register_detector
from realanon.structures import Detection, Detections

# Below this, mediapipe's own filter drops faces; we filter later with the pipeline threshold.
_MIN_MEDIAPIPE_SCORE = 0.05


@register_detector("mediapipe_face")
class MediaPipeFaceDetector:
    """Mediapipe face detection with 6 landmarks per face.

    Args:
        model: ``"full"`` (full-range model, finds small and distant faces) or ``"short"``
            (faces within about 2 m of the camera).
        min_score: Scores below this are dropped. Low by default: a missed face is a leak,
            a false positive only costs a little utility.
    """

    def __init__(self, model: str = "full", min_score: float = 0.3) -> None:
        if model not in ("full", "short"):
            raise ValueError(f"mediapipe_face model must be full or short, got {model!r}")
        import mediapipe as mp

        self.model = model
        self.min_score = float(min_score)
        self._detector = mp.solutions.face_detection.FaceDetection(
            model_selection=1 if model == "full" else 0,
            min_detection_confidence=max(_MIN_MEDIAPIPE_SCORE, min(self.min_score, 0.99)),
        )
        self._lock = threading.Lock()  # a mediapipe graph is not re-entrant

    def __call__(self, image: np.ndarray) -> Detections:
        h, w = image.shape[:2]
        with self._lock:
            result = self._detector.process(np.ascontiguousarray(image))
        items = []
        for det in result.detections or ():
            score = float(det.score[0]) if det.score else 0.0
            if score < self.min_score:
                continue
            box = det.location_data.relative_bounding_box
            x1, y1 = box.xmin * w, box.ymin * h
            x2, y2 = x1 + box.width * w, y1 + box.height * h
            kps = np.array(
                [[kp.x * w, kp.y * h, 1.0] for kp in det.location_data.relative_keypoints], dtype=np.float32
            )
            items.append(
                Detection(
                    (x1, y1, x2, y2), score, "face",
                    keypoints=kps if len(kps) == 6 else None,
                    keypoint_layout="face6" if len(kps) == 6 else None,
                    source="mediapipe_face",
                )
            )
        return Detections(tuple(items), (h, w))

    def close(self) -> None:
        self._detector.close()
