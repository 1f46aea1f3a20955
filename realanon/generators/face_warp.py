"""Face mesh, head pose, piecewise-affine warping and colour transfer for face swapping.

Pure functions over numpy arrays, used by the ``donor`` generator and by
``scripts/build_donor_bank.py``. Landmarks are mediapipe FaceMesh's 478 points (468 mesh
points + 10 iris points) as ``(478, 3)`` float32 ``(x, y, z)`` in pixels of the image they
were found on; ``z`` is depth in the same scale as ``x`` (smaller = nearer the camera).
"""

from __future__ import annotations

import math
import threading
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

N_MESH = 478
# Mesh indices: right/left face edge at the cheekbones, forehead top, chin, inner lips.
_RIGHT_EDGE, _LEFT_EDGE, _FOREHEAD, _CHIN = 234, 454, 10, 152
_UPPER_LIP, _LOWER_LIP = 13, 14
# Mesh points matching mediapipe's 6-point face layout (right eye, left eye, nose tip,
# mouth centre, right tragion, left tragion); the eyes are the iris centres.
FACE6_MESH_INDEX = (468, 473, 1, 13, 234, 454)
# Scale of the two synthetic rings around the face oval that carry the warp past the face.
RING_SCALES = (1.35, 1.9)


@lru_cache(maxsize=1)
def mesh_groups() -> dict[str, np.ndarray]:
    """Index arrays of mesh parts (``oval`` in contour order, ``eyes``, ``brows``, ``lips``)."""
    from mediapipe.python.solutions import face_mesh_connections as fmc

    def indices(edges: Any) -> np.ndarray:
        return np.array(sorted({i for edge in edges for i in edge}), dtype=np.int64)

    # The oval edges form one closed loop; walk it so the ring points keep contour order.
    nxt = dict(fmc.FACEMESH_FACE_OVAL)
    start = min(nxt)
    oval = [start]
    while nxt[oval[-1]] != start:
        oval.append(nxt[oval[-1]])
    return {
        "oval": np.array(oval, dtype=np.int64),
        "eyes": indices(fmc.FACEMESH_LEFT_EYE | fmc.FACEMESH_RIGHT_EYE | fmc.FACEMESH_IRISES),
        "brows": indices(fmc.FACEMESH_LEFT_EYEBROW | fmc.FACEMESH_RIGHT_EYEBROW),
        "lips": indices(fmc.FACEMESH_LIPS),
    }


class FaceMesher:
    """Mediapipe FaceMesh (static images, refined irises) on RGB uint8 images.

    Args:
        max_faces: Faces looked for per image; the one nearest the requested point is kept.
        min_confidence: Detection confidence of mediapipe's internal face detector.
        min_side: Images whose long side is shorter are upscaled first (the mesh needs pixels).
    """

    def __init__(self, max_faces: int = 3, min_confidence: float = 0.3, min_side: int = 256) -> None:
        import mediapipe as mp

        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=max_faces, refine_landmarks=True,
            min_detection_confidence=min_confidence,
        )
        self.min_side = min_side
        self._lock = threading.Lock()  # a mediapipe graph is not re-entrant

    def all_faces(self, image: np.ndarray) -> list[np.ndarray]:
        """Every face mesh found: a list of ``(478, 3)`` float32 landmarks in image pixels."""
        h, w = image.shape[:2]
        if min(h, w) < 16:
            return []
        scale = max(1.0, self.min_side / max(h, w))
        work = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC) \
            if scale > 1 else image
        with self._lock:
            result = self._mesh.process(np.ascontiguousarray(work))
        faces = []
        for face in result.multi_face_landmarks or ():
            pts = np.array([(p.x * w, p.y * h, p.z * w) for p in face.landmark], dtype=np.float32)
            if len(pts) == N_MESH:
                faces.append(pts)
        return faces

    def nearest_face(self, image: np.ndarray, point_xy: tuple[float, float]) -> np.ndarray | None:
        """The face mesh whose centre is nearest ``point_xy``, or None when no face is found."""
        faces = self.all_faces(image)
        if not faces:
            return None
        return min(faces, key=lambda f: float(np.hypot(*(f[:, :2].mean(axis=0) - point_xy))))

    def close(self) -> None:
        self._mesh.close()


def head_pose(landmarks: np.ndarray) -> np.ndarray:
    """``(yaw, pitch, roll)`` in degrees from a 3-D face mesh.

    Yaw is the turn of the ear-to-ear axis out of the image plane (positive: the subject's
    left cheek is further away), pitch the tilt of the forehead-to-chin axis, roll the
    in-plane angle of the ear-to-ear axis. Only differences between faces matter here.
    """
    across = landmarks[_LEFT_EDGE] - landmarks[_RIGHT_EDGE]
    down = landmarks[_CHIN] - landmarks[_FOREHEAD]
    yaw = math.degrees(math.atan2(float(across[2]), float(across[0])))
    pitch = math.degrees(math.atan2(float(-down[2]), float(down[1])))
    roll = math.degrees(math.atan2(float(across[1]), float(across[0])))
    return np.array([yaw, pitch, roll], dtype=np.float32)


def mouth_open(landmarks: np.ndarray) -> float:
    """Gap between the inner lips as a fraction of the forehead-to-chin length."""
    gap = float(np.linalg.norm(landmarks[_LOWER_LIP, :2] - landmarks[_UPPER_LIP, :2]))
    height = float(np.linalg.norm(landmarks[_CHIN, :2] - landmarks[_FOREHEAD, :2]))
    return gap / max(height, 1e-6)


def skin_mask(landmarks: np.ndarray, size_hw: tuple[int, ...]) -> np.ndarray:
    """``(h, w)`` bool mask of bare skin: the face oval minus eyes, brows and lips (grown)."""
    groups = mesh_groups()
    pts = landmarks[:, :2]
    mask = np.zeros(size_hw, dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(pts[groups["oval"]]).astype(np.int32)], (1,))
    face_px = float(np.ptp(pts[groups["oval"], 1])) if len(pts) else 0.0
    grow = max(1, round(0.04 * face_px))
    holes = np.zeros_like(mask)
    for name in ("eyes", "brows", "lips"):
        # Each part is two blobs (left/right) except the lips; a hull per side keeps them apart.
        part = pts[groups[name]]
        for side in (part[:, 0] < pts[:, 0].mean(), part[:, 0] >= pts[:, 0].mean()):
            if name != "lips" and side.sum() >= 3:
                cv2.fillConvexPoly(holes, cv2.convexHull(np.round(part[side]).astype(np.int32)), (1,))
        if name == "lips":
            cv2.fillConvexPoly(holes, cv2.convexHull(np.round(part).astype(np.int32)), (1,))
    kernel = np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)
    return np.asarray((cv2.erode(mask, kernel) > 0) & (cv2.dilate(holes, kernel) == 0))


def soft_face_weight(landmarks: np.ndarray, size_hw: tuple[int, ...]) -> np.ndarray:
    """``(h, w)`` float32 in [0, 1]: 1 well inside the face oval, ramping to 0 just past it."""
    oval = landmarks[mesh_groups()["oval"], :2]
    face_px = max(float(np.ptp(oval[:, 1])), 1.0)
    mask = np.zeros(size_hw, dtype=np.float32)
    cv2.fillPoly(mask, [np.round(oval).astype(np.int32)], (1.0,))
    grow = max(1, round(0.04 * face_px))
    inner = cv2.erode(mask, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    return np.asarray(cv2.GaussianBlur(inner, (0, 0), max(1.0, 0.04 * face_px)), dtype=np.float32)


def mean_skin_lab(image_rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean CIELAB ``(L, a, b)`` (L in [0, 100]) of the masked pixels of an RGB uint8 image."""
    pixels = image_rgb[mask] if mask.any() else image_rgb.reshape(-1, 3)
    # Only the masked pixels are converted (a whole large crop would cost tens of milliseconds).
    lab = cv2.cvtColor(pixels.reshape(-1, 1, 3).astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    return np.asarray(lab.reshape(-1, 3).mean(axis=0), dtype=np.float32)


def extend_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """``(478 + 2 * 36, 2)`` points: the mesh plus two rings scaled out from the face oval.

    The rings let the warp cover hair, ears and neck around the face consistently in the
    donor and the target.
    """
    pts = landmarks[:, :2].astype(np.float32)
    oval = pts[mesh_groups()["oval"]]
    centre = oval.mean(axis=0)
    rings = [centre + (oval - centre) * s for s in RING_SCALES]
    return np.concatenate([pts, *rings]).astype(np.float32)


def triangulate(points_xy: np.ndarray) -> np.ndarray:
    """``(T, 3)`` int32 Delaunay triangles over ``(N, 2)`` points."""
    from scipy.spatial import Delaunay

    return np.asarray(Delaunay(points_xy.astype(np.float64)).simplices, dtype=np.int32)


def similarity_from_points(src_xy: np.ndarray, dst_xy: np.ndarray) -> np.ndarray:
    """``(2, 3)`` similarity transform (rotation, uniform scale, shift) mapping src onto dst."""
    matrix, _ = cv2.estimateAffinePartial2D(src_xy.astype(np.float32), dst_xy.astype(np.float32),
                                            method=cv2.LMEDS)
    if matrix is None:  # degenerate points: align the centres only
        shift = dst_xy.mean(axis=0) - src_xy.mean(axis=0)
        matrix = np.array([[1.0, 0.0, shift[0]], [0.0, 1.0, shift[1]]])
    return np.asarray(matrix, dtype=np.float64)


def triangle_raster(target_xy: np.ndarray, triangles: np.ndarray, size_hw: tuple[int, ...]) -> np.ndarray:
    """``(h, w)`` int32: the index of the triangle (of ``target_xy``) covering each pixel, -1 for none.

    Shared by every source warped onto the same target points (see :func:`piecewise_affine_maps`).
    """
    tri_id = np.full(size_hw[:2], -1, dtype=np.int32)
    corners = np.round(target_xy[triangles] * 16).astype(np.int32)  # (T, 3, 2), 4 fractional bits
    for t in range(len(triangles)):
        cv2.fillConvexPoly(tri_id, corners[t], (t,), lineType=cv2.LINE_8, shift=4)
    return tri_id


def piecewise_affine_maps(
    target_xy: np.ndarray, source_xy: np.ndarray, triangles: np.ndarray, size_hw: tuple[int, ...],
    raster: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Backward maps for :func:`cv2.remap` that carry each source triangle onto its target one.

    Pixels outside every triangle follow the similarity transform fitted to all points.

    Args:
        target_xy: ``(N, 2)`` points in the output image.
        source_xy: ``(N, 2)`` corresponding points in the source image.
        triangles: ``(T, 3)`` indices into the points.
        size_hw: Output ``(height, width)``.
        raster: :func:`triangle_raster` of ``target_xy`` (computed when None).

    Returns:
        ``(map_x, map_y)``, each ``(h, w)`` float32 source coordinates.
    """
    h, w = size_hw[:2]
    tri_id = triangle_raster(target_xy, triangles, size_hw) if raster is None else raster
    # Per triangle, the affine A with A @ [x, y, 1] = source: solve T^T A^T = S^T in a batch.
    tgt = np.concatenate([target_xy[triangles], np.ones((len(triangles), 3, 1))], axis=2)  # (T, 3, 3)
    src = source_xy[triangles].astype(np.float64)  # (T, 3, 2)
    ok = np.abs(np.linalg.det(tgt)) > 1e-6
    fallback = similarity_from_points(target_xy, source_xy)  # (2, 3)
    # Coefficients per triangle, with one more row (index -1 via T) for pixels outside any triangle.
    coef = np.empty((len(triangles) + 1, 3, 2))
    coef[:-1] = fallback.T
    coef[:-1][ok] = np.linalg.solve(tgt[ok], src[ok])
    coef[-1] = fallback.T
    planes = coef.reshape(len(coef), 6).astype(np.float32)[np.where(tri_id >= 0, tri_id, len(triangles))]
    xs = np.arange(w, dtype=np.float32)[None, :]
    ys = np.arange(h, dtype=np.float32)[:, None]
    map_x = planes[..., 0] * xs + planes[..., 2] * ys + planes[..., 4]
    map_y = planes[..., 1] * xs + planes[..., 3] * ys + planes[..., 5]
    return map_x, map_y


def warp_image(image: np.ndarray, maps: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Samples ``image`` at ``maps`` (bilinear, reflecting at the border)."""
    return cv2.remap(image, maps[0], maps[1], interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def transfer_colour(image_rgb: np.ndarray, source_mask: np.ndarray, reference_rgb: np.ndarray,
                    reference_mask: np.ndarray, max_gain: float = 2.0) -> np.ndarray:
    """Matches the LAB mean and spread of ``image`` (over ``source_mask``) to the reference's.

    Args:
        image_rgb: ``(h, w, 3)`` uint8 image to correct, whole.
        source_mask: ``(h, w)`` bool pixels of ``image`` whose statistics are measured.
        reference_rgb: ``(h', w', 3)`` uint8 image whose colours are wanted.
        reference_mask: ``(h', w')`` bool pixels of the reference to measure.
        max_gain: Bound on the per-channel spread ratio, so flat references do not flatten faces.

    Returns:
        The corrected ``(h, w, 3)`` uint8 RGB image.
    """
    lab = cv2.cvtColor(image_rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    ref = cv2.cvtColor(reference_rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    src_px = lab[source_mask] if source_mask.any() else lab.reshape(-1, 3)
    ref_px = ref[reference_mask] if reference_mask.any() else ref.reshape(-1, 3)
    gain = np.clip(ref_px.std(axis=0) / np.maximum(src_px.std(axis=0), 1e-3), 1.0 / max_gain, max_gain)
    lab = (lab - src_px.mean(axis=0)) * gain + ref_px.mean(axis=0)
    lab[..., 0] = np.clip(lab[..., 0], 0.0, 100.0)
    rgb = cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_LAB2RGB)
    return np.asarray(np.clip(np.rint(rgb * 255.0), 0, 255), dtype=np.uint8)


def seamless_blend(source_rgb: np.ndarray, target_rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Poisson-blends ``source`` into ``target`` inside ``mask`` (same-size uint8 RGB images).

    Pixels outside ``mask`` are returned unchanged. Falls back to copying the source into
    the mask when the mask is too small for :func:`cv2.seamlessClone`.
    """
    out = target_rgb.copy()
    if mask.sum() < 16:
        out[mask] = source_rgb[mask]
        return out
    pad = 4  # seamlessClone misbehaves when the mask touches the image border
    src = cv2.copyMakeBorder(source_rgb, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    dst = cv2.copyMakeBorder(target_rgb, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    m = np.pad(mask.astype(np.uint8) * 255, pad)
    x, y, w, h = cv2.boundingRect(m)
    blended = cv2.seamlessClone(src, dst, m, (x + w // 2, y + h // 2), cv2.NORMAL_CLONE)
    blended = blended[pad:-pad, pad:-pad]
    out[mask] = blended[mask]
    return out
