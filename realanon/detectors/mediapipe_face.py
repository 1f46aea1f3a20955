"""Face detection with mediapipe's bundled BlazeFace models (offline), optionally tiled and
refined with the 478-point face mesh.

Mediapipe letterboxes every input to 192x192 (full-range model), so a face must be about
a tenth of the frame to be found in one pass: 64 px in a 720p frame, 96 px in a 1080p one.
Tiling runs the model again on overlapping square tiles, so smaller faces become large enough
(see ``docs/regions.md``). Each tile costs one more model call. The default, 640-px tiles, finds
faces from about 32 px and keeps 1080p detection near 20 ms per frame (8 tiles plus the whole
frame), within the 10 fps budget of video face blur. 256-px tiles find faces down to about
12 px at several times the cost.
"""

from __future__ import annotations

import threading
from typing import Any

import cv2
import numpy as np

from realanon.detectors._boxes import nms_detections, shift_detection_arrays, tile_boxes
from realanon.registry import register_detector
from realanon.structures import Detection, Detections

# Below this, mediapipe's own filter drops faces; we filter with ``min_score`` afterwards.
_MIN_MEDIAPIPE_SCORE = 0.05
# The face mesh sees a square crop this many face-box sides wide, at least this many pixels.
_MESH_CROP_SCALE = 2.0
_MESH_MIN_CROP_PX = 256
LANDMARKS = ("face6", "mesh")


@register_detector("mediapipe_face")
class MediaPipeFaceDetector:
    """Mediapipe face detection: every face, with 6 (or 478) landmarks each.

    Args:
        model: ``"full"`` (full-range model, finds small and distant faces) or ``"short"``
            (faces within about 2 m of the camera).
        min_score: Scores below this are dropped. Low by default (0.25): a missed face is a
            privacy leak, a false positive only costs a little utility.
        tile_size: Side in pixels of the square tiles the frame is also searched in, when the
            frame is larger than one tile; 0 turns tiling off (one pass over the whole frame).
            The default 640 finds faces from about 32 px; 256 finds faces of 12-16 px. Every
            tile costs one more model call.
        tile_overlap: Fraction of a tile shared with its neighbours, in [0, 0.9].
        landmarks: ``"face6"`` (mediapipe's 6 keypoints) or ``"mesh"`` (478 face-mesh
            landmarks, layout ``"face_mesh478"``, which lets regions use a landmark hull that
            covers forehead to chin and ear to ear; costs one mesh call per face).
        nms_iou: Boxes found in several tiles overlapping by this IoU are merged.
    """

    def __init__(
        self,
        model: str = "full",
        min_score: float = 0.25,
        tile_size: int = 640,
        tile_overlap: float = 0.25,
        landmarks: str = "face6",
        nms_iou: float = 0.3,
    ) -> None:
        if model not in ("full", "short"):
            raise ValueError(f"mediapipe_face model must be full or short, got {model!r}")
        if landmarks not in LANDMARKS:
            raise ValueError(f"mediapipe_face landmarks must be one of {LANDMARKS}, got {landmarks!r}")
        if tile_size < 0 or (0 < tile_size < 64):
            raise ValueError(f"mediapipe_face tile_size must be 0 (off) or >= 64, got {tile_size}")
        if not 0.0 <= tile_overlap <= 0.9:
            raise ValueError(f"mediapipe_face tile_overlap must be in [0, 0.9], got {tile_overlap}")
        import mediapipe as mp

        self.model = model
        self.min_score = float(min_score)
        self.tile_size = int(tile_size)
        self.tile_overlap = float(tile_overlap)
        self.landmarks = landmarks
        self.nms_iou = float(nms_iou)
        self._detector = mp.solutions.face_detection.FaceDetection(
            model_selection=1 if model == "full" else 0,
            min_detection_confidence=max(_MIN_MEDIAPIPE_SCORE, min(self.min_score, 0.99)),
        )
        self._mesh: Any = None
        if landmarks == "mesh":
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=True, min_detection_confidence=0.3
            )
        self._lock = threading.Lock()  # a mediapipe graph is not re-entrant

    def __call__(self, image: np.ndarray) -> Detections:
        """Detects faces in an RGB ``(H, W, 3)`` uint8 image."""
        h, w = image.shape[:2]
        rgb = np.ascontiguousarray(image)
        with self._lock:
            found = self._detect(rgb, (0, 0, w, h))
            if self.tile_size and max(h, w) > self.tile_size:
                for tile in tile_boxes((h, w), self.tile_size, self.tile_overlap):
                    found.extend(self._detect(rgb, tile))
            # Faces seen in two overlapping tiles, or cut by a tile's edge, are merged; a
            # box mostly inside a better one is the same face seen partly.
            found = nms_detections(found, self.nms_iou, nested_threshold=0.7)
            if self._mesh is not None:
                found = [self._refine_with_mesh(rgb, d) for d in found]
        return Detections(tuple(found), (h, w))

    def _detect(self, rgb: np.ndarray, tile: tuple[int, int, int, int]) -> list[Detection]:
        x0, y0, x1, y1 = tile
        crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        th, tw = crop.shape[:2]
        result = self._detector.process(crop)
        items = []
        for det in result.detections or ():
            score = float(det.score[0]) if det.score else 0.0
            if score < self.min_score:
                continue
            rel = det.location_data.relative_bounding_box
            box = (rel.xmin * tw, rel.ymin * th, (rel.xmin + rel.width) * tw, (rel.ymin + rel.height) * th)
            kps = np.array(
                [[kp.x * tw, kp.y * th, 1.0] for kp in det.location_data.relative_keypoints], dtype=np.float32
            )
            box, kps6 = shift_detection_arrays(box, kps if len(kps) == 6 else None, x0, y0, 1.0)
            items.append(Detection(box, score, "face", keypoints=kps6,
                                   keypoint_layout="face6" if kps6 is not None else None, source="mediapipe_face"))
        return items

    def _refine_with_mesh(self, rgb: np.ndarray, det: Detection) -> Detection:
        """Replaces the 6 keypoints by the 478 mesh landmarks when the mesh finds the face."""
        landmarks = mesh_landmarks(self._mesh, rgb, det.box_xyxy)
        if landmarks is None:
            return det
        return Detection(det.box_xyxy, det.score, "face", keypoints=landmarks,
                         keypoint_layout="face_mesh478", source="mediapipe_face")

    def close(self) -> None:
        """Releases the mediapipe graphs."""
        self._detector.close()
        if self._mesh is not None:
            self._mesh.close()


def mesh_landmarks(mesh: Any, rgb: np.ndarray, box_xyxy: tuple[float, float, float, float]) -> np.ndarray | None:
    """Runs a mediapipe ``FaceMesh`` on a square crop around a face box.

    Args:
        mesh: A ``mp.solutions.face_mesh.FaceMesh`` in static-image mode.
        rgb: ``(H, W, 3)`` uint8 frame.
        box_xyxy: The face box in frame pixels.

    Returns:
        ``(478, 3)`` float32 ``(x, y, 1)`` in frame pixels, or None when the mesh finds no face.
    """
    x1, y1, x2, y2 = box_xyxy
    side = _MESH_CROP_SCALE * max(x2 - x1, y2 - y1, 1.0)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    crop_box = (round(cx - side / 2), round(cy - side / 2), round(cx + side / 2), round(cy + side / 2))
    crop = _crop_padded(rgb, crop_box)
    scale = max(1.0, _MESH_MIN_CROP_PX / crop.shape[0])
    if scale > 1.0:
        crop = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    result = mesh.process(np.ascontiguousarray(crop))
    if not result.multi_face_landmarks:
        return None
    ch, cw = crop.shape[:2]
    pts = np.array([[lm.x * cw, lm.y * ch, 1.0] for lm in result.multi_face_landmarks[0].landmark], dtype=np.float32)
    _, frame_pts = shift_detection_arrays((0, 0, 0, 0), pts, crop_box[0], crop_box[1], scale)
    return frame_pts


def _crop_padded(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Crop that may leave the frame; the outside is black (the mesh ignores it)."""
    h, w = rgb.shape[:2]
    x1, y1, x2, y2 = box
    out = np.zeros((y2 - y1, x2 - x1, 3), dtype=np.uint8)
    cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    if cx2 > cx1 and cy2 > cy1:
        out[cy1 - y1 : cy2 - y1, cx1 - x1 : cx2 - x1] = rgb[cy1:cy2, cx1:cx2]
    return out
