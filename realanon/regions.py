"""Turning detections into regions: crop boxes, replace-masks and feathered blend masks.

Pure functions over numpy arrays. Masks are boolean, True = replace; they never cover
pixels outside the frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from realanon.config import RegionOptions
from realanon.structures import BoxXYXY, Detection, Detections, IntBoxXYXY, Region, image_size

# Index of the (subject's right, subject's left) eye in each face keypoint layout: mediapipe's
# 6 points (right eye, left eye, nose tip, mouth centre, right ear, left ear), CenterFace's 5
# (eyes, nose, mouth corners; image-left eye first) and the outer eye corners of the 478-point
# face mesh. The subject's right eye is on the image's left in every layout.
FACE_EYES = {"face6": (0, 1), "face5": (0, 1), "face_mesh478": (33, 263)}
# Mediapipe's face box runs from the brows to the chin; the forehead lies above it.
_FOREHEAD_EXTRA = 0.25
# Fraction of the face, from the top, replaced by the partial-face option.
PARTIAL_FACE_FRACTION = 0.6


def expand_box(box_xyxy: BoxXYXY, margin_x: float, margin_y: float | None = None) -> BoxXYXY:
    """Grows a box by a fraction of its width and height on every side."""
    margin_y = margin_x if margin_y is None else margin_y
    x1, y1, x2, y2 = box_xyxy
    w, h = x2 - x1, y2 - y1
    return (x1 - margin_x * w, y1 - margin_y * h, x2 + margin_x * w, y2 + margin_y * h)


def round_box(box_xyxy: BoxXYXY) -> IntBoxXYXY:
    """Rounds a box outwards to integer pixels, keeping it at least 1x1."""
    x1, y1 = math.floor(box_xyxy[0]), math.floor(box_xyxy[1])
    x2, y2 = max(math.ceil(box_xyxy[2]), x1 + 1), max(math.ceil(box_xyxy[3]), y1 + 1)
    return (x1, y1, x2, y2)


def clip_box(box_xyxy: IntBoxXYXY, image_size: tuple[int, int]) -> IntBoxXYXY:
    """Clips an integer box to a frame of ``(height, width)``; may return an empty box."""
    h, w = image_size
    x1, y1, x2, y2 = box_xyxy
    return (min(max(x1, 0), w), min(max(y1, 0), h), min(max(x2, 0), w), min(max(y2, 0), h))


def crop_with_padding(image: np.ndarray, box_xyxy: IntBoxXYXY) -> np.ndarray:
    """Crops ``image`` to ``box_xyxy``, replicating edge pixels where the box leaves the frame.

    Args:
        image: ``(H, W, C)`` or ``(H, W)`` array.
        box_xyxy: Integer box, may extend past the frame.

    Returns:
        A new array of shape ``(y2 - y1, x2 - x1, ...)``.
    """
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box_xyxy
    cx1, cy1, cx2, cy2 = clip_box(box_xyxy, (h, w))
    if cx2 <= cx1 or cy2 <= cy1:
        return np.zeros((y2 - y1, x2 - x1, *image.shape[2:]), dtype=image.dtype)
    inner = image[cy1:cy2, cx1:cx2]
    pad = ((cy1 - y1, y2 - cy2), (cx1 - x1, x2 - cx2)) + ((0, 0),) * (image.ndim - 2)
    if not any(p for pair in pad for p in pair):
        return inner.copy()
    if image.dtype == np.uint8 and (image.ndim == 2 or (image.ndim == 3 and image.shape[2] <= 4)):
        # OpenCV's border replication: same pixels as np.pad(mode="edge"), several times faster.
        (top, bottom), (left, right) = pad[0], pad[1]
        padded = cv2.copyMakeBorder(inner, top, bottom, left, right, cv2.BORDER_REPLICATE)
        return padded.reshape(y2 - y1, x2 - x1, *image.shape[2:])
    return np.pad(inner, pad, mode="edge")


def clear_outside_frame(mask: np.ndarray, crop_box_xyxy: IntBoxXYXY, image_size: tuple[int, int]) -> np.ndarray:
    """Sets to False, in place, the pixels of a crop-sized mask that lie outside the frame; returns ``mask``."""
    x1, y1, x2, y2 = crop_box_xyxy
    cx1, cy1, cx2, cy2 = clip_box(crop_box_xyxy, image_size)
    if cx2 <= cx1 or cy2 <= cy1:
        mask[...] = False
        return mask
    # Written only where something is set: writing zeros would commit the untouched (lazily
    # zeroed) pages of a large crop's mask to memory.
    for outside in (mask[: cy1 - y1], mask[cy2 - y1 :], mask[:, : cx1 - x1], mask[:, cx2 - x1 :]):
        if outside.any():
            outside[...] = False
    return mask


def inside_frame_mask(crop_box_xyxy: IntBoxXYXY, image_size: tuple[int, int]) -> np.ndarray:
    """``(h, w)`` bool mask of the crop pixels that lie inside the frame."""
    x1, y1, x2, y2 = crop_box_xyxy
    cx1, cy1, cx2, cy2 = clip_box(crop_box_xyxy, image_size)
    inside = np.zeros((y2 - y1, x2 - x1), dtype=bool)
    inside[cy1 - y1 : cy2 - y1, cx1 - x1 : cx2 - x1] = True
    return inside


def face_roll(detection: Detection) -> float:
    """In-plane rotation of a face in radians, from its eyes when known, else 0."""
    kp = detection.keypoints
    eyes = FACE_EYES.get(detection.keypoint_layout or "")
    if kp is None or eyes is None or len(kp) <= max(eyes):
        return 0.0
    right, left = kp[eyes[0]], kp[eyes[1]]
    if min(right[2], left[2]) <= 0:
        return 0.0
    # The subject's right eye is on the image's left.
    return math.atan2(float(left[1] - right[1]), float(left[0] - right[0]))


def face_ellipse(detection: Detection, margin: float) -> tuple[tuple[float, float], tuple[float, float], float]:
    """Ellipse covering forehead to chin and ear to ear.

    Returns:
        ``((cx, cy), (semi_axis_x, semi_axis_y), angle_radians)`` in frame pixels.
    """
    x1, y1, x2, y2 = detection.box_xyxy
    w, h = x2 - x1, y2 - y1
    angle = face_roll(detection)
    top_extra = _FOREHEAD_EXTRA * h
    # Centre moves up by half of the added forehead, along the face's own vertical axis.
    cx = (x1 + x2) / 2 + math.sin(angle) * top_extra / 2
    cy = (y1 + y2) / 2 - math.cos(angle) * top_extra / 2
    semi_x = w * (0.5 + margin)
    semi_y = (h + top_extra) * (0.5 + margin)
    return (cx, cy), (semi_x, semi_y), angle


def face_region_box(detection: Detection, options: RegionOptions) -> BoxXYXY:
    """Axis-aligned box that contains the face mask, whatever its shape and rotation."""
    (cx, cy), (ax, ay), _ = face_ellipse(detection, options.face_margin)
    r = max(ax, ay)
    box = (cx - r, cy - r, cx + r, cy + r)
    if options.face_shape == "hull" and detection.keypoints is not None and len(detection.keypoints) >= 3:
        hull = _grown_hull(detection.keypoints[:, :2], options.face_margin)
        hx1, hy1 = hull.min(axis=0)
        hx2, hy2 = hull.max(axis=0)
        box = (min(box[0], hx1), min(box[1], hy1), max(box[2], hx2), max(box[3], hy2))
    return box


def _grown_hull(points_xy: np.ndarray, margin: float) -> np.ndarray:
    hull = cv2.convexHull(points_xy.astype(np.float32)).reshape(-1, 2)
    centre = hull.mean(axis=0)
    return np.asarray(centre + (hull - centre) * (1.0 + 2.0 * margin), dtype=np.float32)


def rasterize_face_mask(detection: Detection, crop_box_xyxy: IntBoxXYXY, options: RegionOptions) -> np.ndarray:
    """Face replace-mask in crop coordinates (not yet clipped to the frame)."""
    x0, y0, x1, y1 = crop_box_xyxy
    canvas = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    (cx, cy), (ax, ay), angle = face_ellipse(detection, options.face_margin)
    shape = options.face_shape
    if shape == "hull" and (detection.keypoints is None or len(detection.keypoints) < 3):
        shape = "ellipse"
    if shape == "ellipse":
        # cv2 draws with integer coordinates; a shift of 4 bits keeps sub-pixel precision.
        s = 16
        cv2.ellipse(
            canvas,
            (round((cx - x0) * s), round((cy - y0) * s)),
            (max(1, round(ax * s)), max(1, round(ay * s))),
            math.degrees(angle), 0, 360, (1,), thickness=-1, lineType=cv2.LINE_8, shift=4,
        )
    elif shape == "hull":
        hull = _grown_hull(detection.keypoints[:, :2], options.face_margin)  # type: ignore[index]
        cv2.fillConvexPoly(canvas, np.round(hull - (x0, y0)).astype(np.int32), (1,))
    else:
        bx1, by1, bx2, by2 = round_box(expand_box(detection.box_xyxy, options.face_margin))
        canvas[max(by1 - y0, 0) : max(by2 - y0, 0), max(bx1 - x0, 0) : max(bx2 - x0, 0)] = 1
    mask = canvas.view(bool)  # cv2 drew 0/1 values: the same bytes are a valid bool mask
    if options.partial_face:
        mask &= upper_part(mask, angle)
    return mask


def upper_part(mask: np.ndarray, angle: float, fraction: float = PARTIAL_FACE_FRACTION) -> np.ndarray:
    """The top ``fraction`` of a face mask, measured along the face's own vertical axis.

    Args:
        mask: ``(h, w)`` bool face mask (any shape: ellipse, landmark hull or box).
        angle: In-plane rotation of the face in radians (see :func:`face_roll`).
        fraction: Share of the mask's extent along that axis to keep, from the top.

    Returns:
        ``(h, w)`` bool, True on the kept pixels of ``mask`` (the eyes and brows at 0.6).
    """
    if not mask.any():
        return mask.copy()
    ys, xs = np.mgrid[0 : mask.shape[0], 0 : mask.shape[1]].astype(np.float32) + 0.5
    down = xs * -math.sin(angle) + ys * math.cos(angle)
    top, bottom = float(down[mask].min()) - 0.5, float(down[mask].max()) + 0.5
    return np.asarray(mask & (down <= top + fraction * (bottom - top)))


def body_region_box(detection: Detection, options: RegionOptions) -> BoxXYXY:
    """Box containing the body mask, grown by the body margin."""
    box = detection.box_xyxy
    if detection.mask is not None:
        # Rows and columns holding mask pixels: np.nonzero over a whole-frame mask cost about 9 ms
        # per person at 720p, the largest single cost of body masking outside the detector.
        rows = np.flatnonzero(detection.mask.any(axis=1))
        cols = np.flatnonzero(detection.mask.any(axis=0))
        if rows.size:
            box = (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))
    h = box[3] - box[1]
    m = options.body_margin * h
    return (box[0] - m, box[1] - m, box[2] + m, box[3] + m)


def rasterize_body_mask(detection: Detection, crop_box_xyxy: IntBoxXYXY, options: RegionOptions) -> np.ndarray:
    """Body replace-mask in crop coordinates: the instance mask dilated by the margin, else the box."""
    x0, y0, x1, y1 = crop_box_xyxy
    if detection.mask is None or not detection.mask.any():
        bx1, by1, bx2, by2 = round_box(body_region_box(detection, options))
        mask = np.zeros((y1 - y0, x1 - x0), dtype=bool)
        mask[max(by1 - y0, 0) : max(by2 - y0, 0), max(bx1 - x0, 0) : max(bx2 - x0, 0)] = True
        return mask
    mask = crop_with_padding(detection.mask.astype(np.uint8), crop_box_xyxy)
    clear_outside_frame(mask, crop_box_xyxy, image_size(detection.mask))
    radius = round(options.body_margin * (detection.box_xyxy[3] - detection.box_xyxy[1]))
    if radius > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        mask = cv2.dilate(mask, kernel)
    return mask.astype(bool)


def feather_mask(replace_mask: np.ndarray, feather_px: float) -> np.ndarray:
    """Alpha that ramps from 0 at the mask's edge to 1 ``feather_px`` pixels inside it.

    Works on the mask's bounding box only. Ramps wider than ``FEATHER_FULL_RES_PX`` are
    computed from a distance transform at reduced resolution (the ramp stays at least that many
    pixels wide there), so the cost stops growing with the region's size; the alpha then
    differs from the full-resolution one by about ``0.5 / FEATHER_FULL_RES_PX`` at most.

    Args:
        replace_mask: ``(h, w)`` bool.
        feather_px: Ramp width in pixels; below 1 gives a hard edge.

    Returns:
        ``(h, w)`` float32 in [0, 1], exactly 0 outside ``replace_mask``, exactly 1 wherever the
        mask's edge is farther than ``feather_px`` (plus the reduced resolution's step).
    """
    mask = np.asarray(replace_mask, dtype=bool)
    if feather_px < 1:
        return mask.astype(np.float32)

    def unit_ramp(distance: np.ndarray) -> np.ndarray:
        distance *= np.float32(1.0 / feather_px)
        return np.minimum(distance, np.float32(1.0), out=distance)

    return _ramp_in_mask(mask, feather_px, np.float32, unit_ramp)


def feather_alpha_u8(replace_mask: np.ndarray, feather_px: float) -> np.ndarray:
    """:func:`feather_mask` as uint8 alpha (``round(255 * alpha)``), what compositing blends with:
    a quarter of the float mask's memory, and no conversion at paste time.

    Returns:
        ``(h, w)`` uint8 in [0, 255], 0 outside ``replace_mask``.
    """
    mask = np.asarray(replace_mask, dtype=bool)
    if feather_px < 1:
        return mask.astype(np.uint8) * np.uint8(255)
    # Scaled, rounded and saturated at 255 (alpha 1) in one pass.
    return _ramp_in_mask(mask, feather_px, np.uint8, lambda d: cv2.convertScaleAbs(d, alpha=255.0 / feather_px))


def _ramp_in_mask(mask: np.ndarray, feather_px: float, dtype: type,
                  to_alpha: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Zeros of ``dtype`` with ``to_alpha(distance to the mask's edge)`` written inside ``mask``;
    only the mask's bounding box is computed."""
    alpha: np.ndarray = np.zeros(mask.shape, dtype=dtype)
    x, y, w, h = cv2.boundingRect(np.ascontiguousarray(mask).view(np.uint8))
    if w == 0 or h == 0:
        return alpha
    box = np.ascontiguousarray(mask[y : y + h, x : x + w]).view(np.uint8)
    ramp = to_alpha(edge_distance(box, feather_px))
    target = alpha[y : y + h, x : x + w]
    if cv2.copyTo(ramp, box, target) is not target:  # not written in place
        np.copyto(target, ramp, where=box.view(bool))
    return alpha


# Widest ramp, in pixels, computed at full resolution; wider ramps use a downscaled mask.
FEATHER_FULL_RES_PX = 24.0


def edge_distance(mask_u8: np.ndarray, feather_px: float) -> np.ndarray:
    """Distance in pixels from each pixel of a 0/1 mask to the nearest pixel outside it.

    The area beyond the array counts as outside. When ``feather_px`` exceeds
    ``FEATHER_FULL_RES_PX`` the transform runs on the mask shrunk by ``feather_px /
    FEATHER_FULL_RES_PX`` and is scaled back: only distances up to ``feather_px`` matter.

    Args:
        mask_u8: ``(h, w)`` uint8, 1 inside.
        feather_px: The ramp width the distances serve.

    Returns:
        ``(h, w)`` float32 distances (approximate L2, OpenCV's 3x3 mask); not zeroed outside the
        mask when computed at reduced resolution.
    """
    h, w = mask_u8.shape
    factor = feather_px / FEATHER_FULL_RES_PX
    if factor <= 1.0 or min(h, w) / factor < 8:
        padded = cv2.copyMakeBorder(mask_u8, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=(0,))
        return cv2.distanceTransform(padded, cv2.DIST_L2, 3)[1:-1, 1:-1]
    sw, sh = max(1, round(w / factor)), max(1, round(h / factor))
    # Area averaging of 0/1 values rounds to 0/1: a low-resolution pixel is inside when most of it is.
    small = cv2.resize(mask_u8, (sw, sh), interpolation=cv2.INTER_AREA)
    small = cv2.copyMakeBorder(small, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=(0,))
    dist = cv2.distanceTransform(small, cv2.DIST_L2, 3)[1:-1, 1:-1]
    full: np.ndarray = np.asarray(cv2.resize(dist, (w, h), interpolation=cv2.INTER_LINEAR), dtype=np.float32)
    # A low-resolution pixel centre sits (factor - 1) / 2 full pixels farther in than the full
    # pixels at its outer edge; every pixel inside the mask is at least 1 pixel from outside.
    scale = ((w / sw) + (h / sh)) / 2
    full *= np.float32(scale)
    full -= np.float32((scale - 1) / 2)
    return np.maximum(full, np.float32(1.0), out=full)


def make_region(detection: Detection, image_size: tuple[int, int], options: RegionOptions) -> Region | None:
    """Builds the region for one detection, or None when it covers no pixel of the frame."""
    if detection.kind == "face":
        region_box = face_region_box(detection, options)
    else:
        region_box = body_region_box(detection, options)
    rw, rh = region_box[2] - region_box[0], region_box[3] - region_box[1]
    if options.min_size and max(rw, rh) < options.min_size:
        return None
    crop_box = round_box(expand_box(region_box, options.context))
    if detection.kind == "face":
        mask = rasterize_face_mask(detection, crop_box, options)
    else:
        mask = rasterize_body_mask(detection, crop_box, options)
    clear_outside_frame(mask, crop_box, image_size)
    if not mask.any():
        return None
    # The soft edge stays inside the margin, so the detection itself is fully replaced.
    if detection.kind == "face":
        margin_px = options.face_margin * min(detection.width, detection.height)
    else:
        margin_px = options.body_margin * detection.height
    feather_px = min(options.feather * min(rw, rh), margin_px)
    return Region(detection, crop_box, mask, feather_alpha_u8(mask, feather_px))


def build_regions(detections: Detections, options: RegionOptions) -> list[Region]:
    """Builds one region per detection that covers at least one pixel of the frame."""
    regions = (make_region(d, detections.image_size, options) for d in detections)
    return [r for r in regions if r is not None]


def union_mask(regions: list[Region] | tuple[Region, ...], image_size: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` bool union of every region's replace-mask in frame coordinates."""
    union = np.zeros(image_size, dtype=bool)
    for region in regions:
        x1, y1, x2, y2 = region.crop_box_xyxy
        cx1, cy1, cx2, cy2 = clip_box(region.crop_box_xyxy, image_size)
        union[cy1:cy2, cx1:cx2] |= region.replace_mask[cy1 - y1 : cy2 - y1, cx1 - x1 : cx2 - x1]
    return union
