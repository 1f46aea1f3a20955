"""Whole-head donor paste (the ``donor`` generator's ``mode="head"``): hair included.

The donor's head is warped onto the target's landmarks (piecewise affine over the mesh plus two
rings around it), colour-matched to the target's skin, laid over the target's surroundings
(inpainted and blurred where the donor's matte says backdrop) and Poisson-blended into the
replace-mask.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from realanon.generators._util import mask_bbox
from realanon.generators.face_warp import (
    FACE6_MESH_INDEX,
    extend_landmarks,
    mesh_groups,
    piecewise_affine_maps,
    seamless_blend,
    similarity_from_points,
    skin_mask,
    soft_face_weight,
    transfer_colour,
    warp_image,
)

# Below this mask size Poisson blending washes the donor out; a plain copy is used.
_MIN_SEAMLESS_PX = 32
# The target's surroundings are inpainted on a copy with this long side (speed; it is blurred).
_FILL_SIDE = 64


def head_layer(crop: np.ndarray, mask: np.ndarray, target: np.ndarray | None, anchors: np.ndarray | None,
               donor_img: np.ndarray, donor_lm: np.ndarray, donor_alpha: np.ndarray, triangles: np.ndarray,
               keep_shape: float) -> np.ndarray:
    """A donor's head warped onto the crop, colour-matched, over the filled-in surroundings.

    Args:
        crop: ``(h, w, 3)`` uint8 RGB crop.
        mask: ``(h, w)`` bool replace-mask.
        target: ``(478, 3)`` target landmarks in crop pixels, or None (similarity fallback).
        anchors: Optional ``(K, 3)`` eye (and nose) keypoints for the fallback.
        donor_img: ``(S, S, 3)`` uint8 donor crop.
        donor_lm: ``(478, 3)`` donor landmarks.
        donor_alpha: ``(S, S)`` uint8 donor person matte.
        triangles: Triangulation of the extended landmarks.
        keep_shape: Share of the target's geometry kept (see :func:`blend_shapes`).

    Returns:
        ``(h, w, 3)`` uint8 RGB, meaningful inside ``mask``.
    """
    if target is not None:
        placed = blend_shapes(target, donor_lm, keep_shape)
        maps = piecewise_affine_maps(extend_landmarks(placed), extend_landmarks(donor_lm), triangles, crop.shape[:2])
        target_skin = skin_mask(target, crop.shape[:2]) & mask
    else:
        maps = _similarity_maps(donor_lm, anchors, mask_bbox(mask), crop.shape[:2])
        target_skin = mask
    warped = warp_image(donor_img, maps)
    head = cv2.remap(donor_alpha, maps[0], maps[1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE).astype(np.float32)[..., None] / 255.0
    warped_skin = cv2.remap(skin_mask(donor_lm, donor_img.shape[:2]).astype(np.uint8), maps[0], maps[1],
                            cv2.INTER_NEAREST).astype(bool)
    if target_skin.sum() < 16:
        target_skin = mask
    # Without a mesh the reference may be no face at all: shift the mean, keep the spread.
    warped = transfer_colour(warped, warped_skin & mask, crop, target_skin, max_gain=2.0 if target is not None else 1.0)
    # The donor's head over the target's own surroundings, with the target's face filled in.
    layer = head * warped + (1.0 - head) * fill_background(crop, mask)
    return np.asarray(np.clip(np.rint(layer), 0, 255), dtype=np.uint8)


def blend_head(layer: np.ndarray, crop: np.ndarray, mask: np.ndarray, target: np.ndarray | None,
               blend: str) -> np.ndarray:
    """Puts ``layer`` into ``crop`` inside ``mask``: Poisson towards the edge (``"seamless"``) or a copy."""
    x1, y1, x2, y2 = mask_bbox(mask)
    out = crop.copy()
    out[mask] = layer[mask]
    if blend == "alpha" or min(x2 - x1, y2 - y1) < _MIN_SEAMLESS_PX:
        return out
    blended = seamless_blend(layer, crop, mask)
    if target is None:
        return blended
    # Poisson blending pulls the face towards the colours at the mask's edge (often hair);
    # inside the face keep the colour-matched donor, Poisson only towards the edge.
    weight = (soft_face_weight(target, crop.shape[:2]) * mask)[..., None]
    mixed = weight * layer.astype(np.float32) + (1.0 - weight) * blended.astype(np.float32)
    return np.asarray(np.clip(np.rint(mixed), 0, 255), dtype=np.uint8)


def fill_background(crop: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(h, w, 3)`` float32: the crop with the masked area smoothly filled from its surroundings.

    Inpainted on a small copy and blurred, so nothing of the original face remains in the
    masked area; it shows wherever the donor's head does not cover the target's.
    """
    h, w = crop.shape[:2]
    scale = min(1.0, _FILL_SIDE / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    hole = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    hole = cv2.dilate(hole, np.ones((3, 3), np.uint8))
    filled = cv2.inpaint(small, hole, 3, cv2.INPAINT_TELEA) if hole.any() else small
    filled = cv2.GaussianBlur(filled, (0, 0), 1.5)
    return cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)


def blend_shapes(target: np.ndarray, donor: np.ndarray, keep: float) -> np.ndarray:
    """Landmarks between the target's and the donor's own shape (placed on the target).

    Args:
        target: ``(478, 3)`` target landmarks in crop pixels.
        donor: ``(478, 3)`` donor landmarks in donor pixels.
        keep: 1 returns the target's landmarks, 0 the donor's mapped by the similarity
            transform that best fits them onto the target's.

    Returns:
        ``(478, 3)`` float32 landmarks in crop pixels (``z`` is the target's).
    """
    matrix = similarity_from_points(donor[:, :2], target[:, :2])
    placed = donor[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    out = target.copy()
    out[:, :2] = keep * target[:, :2] + (1.0 - keep) * placed
    return out.astype(np.float32)


def _similarity_maps(donor_lm: np.ndarray, face6: np.ndarray | None, mask_box: tuple[int, int, int, int],
                     size_hw: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Backward maps placing the donor by its keypoints (eyes, nose, ... in the face6 order; any
    prefix of it), or its face oval onto the mask's box."""
    face6 = None if face6 is None else face6[: len(FACE6_MESH_INDEX)]
    if face6 is not None and (face6[:, 2] > 0).sum() >= 2:
        visible = face6[:, 2] > 0
        src = face6[visible, :2]
        dst = donor_lm[np.array(FACE6_MESH_INDEX[: len(face6)])[visible], :2]
    else:
        oval = donor_lm[mesh_groups()["oval"], :2]
        ox1, oy1 = oval.min(axis=0)
        ox2, oy2 = oval.max(axis=0)
        x1, y1, x2, y2 = mask_box
        # The mask is the face grown by a margin: shrink the box to the face proper.
        inset_x, inset_y = 0.12 * (x2 - x1), 0.12 * (y2 - y1)
        src = np.array([[x1 + inset_x, y1 + inset_y], [x2 - inset_x, y2 - inset_y]], dtype=np.float32)
        dst = np.array([[ox1, oy1], [ox2, oy2]], dtype=np.float32)
    matrix = similarity_from_points(src, dst) if len(src) >= 2 else None
    if matrix is None or not np.isfinite(matrix).all():
        matrix = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    h, w = size_hw
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x = matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2]
    map_y = matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2]
    return map_x.astype(np.float32), map_y.astype(np.float32)


# A head drawn at a smaller scale than this is drawn at full size (nothing to gain).
_MIN_SAVING = 0.85


def draw_scaled(draw: Callable[[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None], np.ndarray],
                crop: np.ndarray, mask: np.ndarray, target: np.ndarray | None, anchors: np.ndarray | None,
                scale: float) -> np.ndarray:
    """``draw(crop, mask, target, anchors)`` run on a copy scaled by ``scale``, scaled back into ``mask``.

    A whole head costs several passes over the whole crop (warp, colour, fill, Poisson); the
    donors' faces are about 110 px high, so drawing them on a face much larger than that adds
    no detail, only time. Pixels outside ``mask`` stay ``crop``'s exactly.

    Args:
        draw: Draws into ``(crop, mask, target landmarks or None, keypoints or None)``, returns the crop.
        crop: ``(h, w, 3)`` uint8 RGB crop.
        mask: ``(h, w)`` bool replace-mask.
        target: ``(478, 3)`` landmarks in crop pixels, or None.
        anchors: ``(K, 3)`` ``(x, y, visibility)`` keypoints in crop pixels, or None.
        scale: Scale of the working copy; at or above ``_MIN_SAVING`` the crop is drawn as it is.

    Returns:
        ``(h, w, 3)`` uint8 RGB.
    """
    if scale >= _MIN_SAVING:
        return draw(crop, mask, target, anchors)
    h, w = crop.shape[:2]
    size = (max(2, round(w * scale)), max(2, round(h * scale)))
    sx, sy = size[0] / w, size[1] / h
    shrunk = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    small_mask = cv2.dilate(shrunk, np.ones((5, 5), np.uint8)) > 0  # covers the whole mask once scaled back
    small = draw(cv2.resize(crop, size, interpolation=cv2.INTER_AREA), small_mask,
                 None if target is None else (target * np.array([sx, sy, sx], np.float32)).astype(np.float32),
                 None if anchors is None else (anchors * np.array([sx, sy, 1], np.float32)).astype(np.float32))
    out = crop.copy()
    out[mask] = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)[mask]
    return out
