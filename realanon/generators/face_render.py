"""Drawing a blended donor identity into one face crop: with the target's face mesh, or without.

Used by the ``donor`` generator in ``mode="face"``. Heavy steps run on a working copy where the
face is about ``work_face_px`` high (the donors are about 110 px high, so more resolution adds
nothing); the result is scaled back and eased into the crop at full resolution, with grain
matched to the original.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from realanon.generators.face_inner import (
    TONE_SIGMA,
    donor_details,
    ease_in,
    edge_alpha,
    face_height,
    inner_face_mask,
    match_grain,
    match_histograms,
    mixed_shape,
    tone_details,
)
from realanon.generators.face_variation import vary_shape
from realanon.generators.face_warp import (
    FACE6_MESH_INDEX,
    extend_landmarks,
    mesh_groups,
    piecewise_affine_maps,
    similarity_from_points,
    skin_mask,
    soft_face_weight,
    triangle_raster,
    warp_image,
)

# Width of the hand-over to the original at the inner face's edge, fraction of the face height.
EDGE_RAMP = 0.05
# Without a mesh: the replacement is fully opaque this far inside the replace-mask's edge
# (fraction of the mask's smaller half-size) and fades out towards the edge.
FALLBACK_RAMP = 0.3
# The opaque cover (the last face of the privacy ladder) hands over to the original only this
# close to the replace-mask's edge (the region's own feather softens the paste further).
OPAQUE_RAMP = 0.06
# The replace-mask is the face box grown by a margin; its face box is this much smaller on each side.
MASK_INSET = 0.15
# Faces are drawn at least this many pixels high on the working copy (tiny faces are upscaled).
MIN_WORK_FACE_PX = 48


@dataclass(frozen=True)
class DonorSet:
    """The donor faces of one identity.

    Attributes:
        images: ``(S, S, 3)`` uint8 RGB donor crops, main donor first.
        landmarks: ``(478, 3)`` float32 landmarks of each, in its crop's pixels.
        weights: ``(k,)`` blend weights summing to 1.
        triangles: ``(T, 3)`` triangulation of :func:`extend_landmarks` points.
        shape: The identity's face-shape variation (see :func:`vary_shape`); empty for none.
    """

    images: tuple[np.ndarray, ...]
    landmarks: tuple[np.ndarray, ...]
    weights: np.ndarray
    triangles: np.ndarray
    shape: tuple[float, ...] = ()


def canonical_face(donors: DonorSet) -> tuple[np.ndarray, np.ndarray]:
    """The identity's own face: the blend on its own (varied) shape, on the main donor's crop.

    Returns:
        ``(S, S, 3)`` uint8 RGB image and its ``(478, 3)`` landmarks (what the identity's
        descriptor is computed on).
    """
    geometry = vary_shape(mixed_shape(donors.landmarks[0], list(donors.landmarks), donors.weights, 0.0, 0.0),
                          donors.shape)
    return render_blend(donors, geometry, donors.images[0].shape), geometry


def render_blend(donors: DonorSet, geometry: np.ndarray, size_hw: tuple[int, ...]) -> np.ndarray:
    """Every donor warped onto ``geometry`` (piecewise affine), averaged with the weights.

    Returns:
        ``(h, w, 3)`` uint8 RGB of size ``size_hw``.
    """
    points = extend_landmarks(geometry)
    raster = triangle_raster(points, donors.triangles, size_hw[:2])  # the same target for every donor
    acc = np.zeros((*size_hw[:2], 3), dtype=np.float32)
    for image, lm, w in zip(donors.images, donors.landmarks, donors.weights):
        maps = piecewise_affine_maps(points, extend_landmarks(lm), donors.triangles, size_hw[:2], raster)
        acc += float(w) * warp_image(image, maps).astype(np.float32)
    return np.asarray(np.clip(np.rint(acc), 0, 255), dtype=np.uint8)


def _work_area(points_xy: np.ndarray, pad: float, size_hw: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Integer box around ``points_xy`` grown by ``pad`` pixels, clipped to the crop."""
    h, w = size_hw[:2]
    x1, y1 = np.floor(points_xy.min(axis=0) - pad).astype(int)
    x2, y2 = np.ceil(points_xy.max(axis=0) + pad).astype(int)
    return max(int(x1), 0), max(int(y1), 0), min(int(x2), w), min(int(y2), h)


def _work_scale(face_px: float, work_face_px: int) -> float:
    return max(min(1.0, work_face_px / face_px), MIN_WORK_FACE_PX / face_px)


def _to_work(landmarks: np.ndarray, box: tuple[int, int, int, int], scale: float) -> np.ndarray:
    out = landmarks.astype(np.float32).copy()
    out[:, 0] = (out[:, 0] - box[0]) * scale
    out[:, 1] = (out[:, 1] - box[1]) * scale
    out[:, 2] *= scale
    return out


def _resize(image: np.ndarray, size_wh: tuple[int, int], nearest: bool = False) -> np.ndarray:
    if image.shape[1] == size_wh[0] and image.shape[0] == size_wh[1]:
        return image
    grow = size_wh[0] > image.shape[1]
    mode = cv2.INTER_NEAREST if nearest else (cv2.INTER_CUBIC if grow else cv2.INTER_AREA)
    return np.asarray(cv2.resize(image, size_wh, interpolation=mode))


@dataclass(frozen=True)
class FacePlan:
    """Everything of a face replacement that does not depend on the crop's pixels.

    Made by :func:`plan_inner_face` or :func:`plan_without_mesh`, drawn into a crop by
    :func:`draw_face`; a video track
    keeps it while its face stays put in its crop (shifted by whole pixels, see :meth:`shifted`),
    so only the tone, histograms and grain are fitted to each new frame.

    Attributes:
        box: ``(x1, y1, x2, y2)`` crop pixels of the working area.
        work_wh: Size of the working copy.
        details: The donors' details (see :func:`donor_details`) on the working copy.
        target_skin: ``(h, w)`` bool where the target's tone is taken on the working copy (its
            bare skin; without a mesh, the replace-mask).
        soft: ``(h, w)`` float32 weight of the donors' face proper on the working copy.
        alpha: ``(y2 - y1, x2 - x1)`` float32 hand-over to the original at full size.
        sigma: Low-pass scale of the tone fit on the working copy, in pixels.
        clipped: Whether ``box`` was cut by the crop's edge (such a plan is never shifted).
        fitted: Whether grain and histograms are matched to the target's (an inner face; a cover
            lands on what may be no face at all, a flat area that would flatten it too).
    """

    box: tuple[int, int, int, int]
    work_wh: tuple[int, int]
    details: tuple[np.ndarray, float]
    target_skin: np.ndarray
    soft: np.ndarray
    alpha: np.ndarray
    sigma: float
    clipped: bool
    fitted: bool = True

    def shifted(self, dx: int, dy: int, size_hw: tuple[int, ...]) -> FacePlan | None:
        """The plan moved by ``(dx, dy)`` whole pixels, or None when it would leave the crop."""
        x1, y1, x2, y2 = self.box
        if (dx, dy) == (0, 0):
            return self
        if self.clipped or x1 + dx < 0 or y1 + dy < 0 or x2 + dx > size_hw[1] or y2 + dy > size_hw[0]:
            return None
        return replace(self, box=(x1 + dx, y1 + dy, x2 + dx, y2 + dy))


def plan_inner_face(crop: np.ndarray, mask: np.ndarray, target: np.ndarray, donors: DonorSet, keep: float,
                    keep_features: float, work_face_px: int) -> FacePlan | None:
    """Plans the inner face of ``crop`` (brows to chin, cheek to cheek) replaced by the donors' blend.

    Args:
        crop: ``(h, w, 3)`` uint8 RGB crop.
        mask: ``(h, w)`` bool replace-mask; nothing outside it changes.
        target: ``(478, 3)`` target landmarks in crop pixels.
        donors: The identity's donors.
        keep: Share of the target's face geometry kept (see :func:`mixed_shape`).
        keep_features: Share kept for eyes and lips.
        work_face_px: Face height of the working copy.

    Returns:
        The plan (see :func:`draw_face`; pixels outside the inner face stay the crop's), or
        None when nothing of the inner face lies in the mask.
    """
    face_px = face_height(target)
    box = _work_area(target[mesh_groups()["oval"], :2], 0.15 * face_px, crop.shape)
    x1, y1, x2, y2 = box
    changed = inner_face_mask(target, crop.shape)[y1:y2, x1:x2] & mask[y1:y2, x1:x2]
    if x2 - x1 < 2 or y2 - y1 < 2 or not changed.any():
        return None
    scale = _work_scale(face_px, work_face_px)
    work_wh = (max(2, round((x2 - x1) * scale)), max(2, round((y2 - y1) * scale)))
    work_hw = (work_wh[1], work_wh[0])
    target_w = _to_work(target, box, scale)
    geometry = vary_shape(mixed_shape(target_w, list(donors.landmarks), donors.weights, keep, keep_features),
                          donors.shape)
    texture = render_blend(donors, geometry, work_hw)
    sigma = TONE_SIGMA * face_height(target_w)
    unclipped = _work_area(target[mesh_groups()["oval"], :2], 0.15 * face_px, (10**9, 10**9))
    return FacePlan(box, work_wh, donor_details(texture, skin_mask(geometry, work_hw), sigma),
                         skin_mask(target_w, work_hw), soft_face_weight(geometry, work_hw),
                         edge_alpha(changed, EDGE_RAMP * face_px), sigma, unclipped != box)


def draw_face(crop: np.ndarray, mask: np.ndarray, plan: FacePlan, seed: int) -> np.ndarray:
    """Draws a planned face into ``crop``: tone, grain and histograms fitted to its pixels.

    Returns:
        ``(h, w, 3)`` uint8 RGB; pixels outside the inner face (and outside ``mask``) equal ``crop``.
    """
    x1, y1, x2, y2 = plan.box
    sub = crop[y1:y2, x1:x2]
    work = _resize(sub, plan.work_wh)
    toned = tone_details(plan.details, work, plan.target_skin, plan.sigma)
    # Only the donors' face itself, not their hair at the temples: Poisson blending would spread
    # the difference at the edge (dark hair against the target's skin) over the whole face.
    layer = _resize(ease_in(toned, work, plan.soft), (x2 - x1, y2 - y1))
    inside = mask[y1:y2, x1:x2]
    if plan.fitted:
        # At full size, after the grain (both change the spread of saturation and brightness) and
        # before the hand-over to the original, which stays smooth.
        changed = (plan.alpha > 0) & inside
        layer = match_histograms(match_grain(layer, sub, changed.astype(np.float32), seed), sub, changed)
    new = ease_in(layer, sub, plan.alpha)
    np.copyto(new, sub, where=~inside[..., None])
    out = crop.copy()
    out[y1:y2, x1:x2] = new
    return out


def fallback_geometry(reference: np.ndarray, anchors: np.ndarray | None, mask: np.ndarray) -> np.ndarray:
    """``reference`` landmarks placed on a face whose mesh was not found.

    Placed by the similarity transform fitting its eyes (and nose) onto ``anchors`` when at
    least two are visible, else its face oval onto the replace-mask's box inset by
    ``MASK_INSET`` on each side.

    Args:
        reference: ``(478, 3)`` landmarks in donor pixels.
        anchors: Optional ``(K, 3)`` ``(x, y, visibility)`` in crop pixels: right eye, left eye,
            then optionally the nose tip (face6 and face5 layouts start this way).
        mask: ``(h, w)`` bool replace-mask.

    Returns:
        ``(478, 3)`` float32 landmarks in crop pixels.
    """
    src: np.ndarray | None = None
    if anchors is not None and len(anchors) >= 2:
        rows = np.arange(min(len(anchors), 3))
        visible = rows[anchors[rows, 2] > 0]
        if len(visible) >= 2:
            dst = anchors[visible, :2]
            src = reference[np.array(FACE6_MESH_INDEX)[visible], :2]
    if src is None:
        ys, xs = np.nonzero(mask)
        mx1, my1, mx2, my2 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        ix, iy = MASK_INSET * (mx2 - mx1), MASK_INSET * (my2 - my1)
        oval = reference[mesh_groups()["oval"], :2]
        src = np.array([oval.min(axis=0), oval.max(axis=0)], dtype=np.float32)
        dst = np.array([[mx1 + ix, my1 + iy], [mx2 - ix, my2 - iy]], dtype=np.float32)
    matrix = similarity_from_points(src, dst)
    out = reference.astype(np.float32).copy()
    out[:, :2] = reference[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    out[:, 2] *= float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    return out


def plan_without_mesh(crop: np.ndarray, mask: np.ndarray, anchors: np.ndarray | None, donors: DonorSet,
                      work_face_px: int, ramp: float = FALLBACK_RAMP) -> FacePlan:
    """Plans a face whose mesh was not found: smaller, softer, but covering the whole face.

    The blend of the donors is placed by :func:`fallback_geometry`, toned to the crop's low
    frequencies inside the mask, fully opaque on the mask's core (the face box) and fading out
    over ``ramp`` of the mask's half-size towards its edge (``OPAQUE_RAMP``: opaque over the
    whole mask, so none of the person's outline inside it shows through).
    """
    reference = vary_shape(mixed_shape(donors.landmarks[0], list(donors.landmarks), donors.weights, 0.0, 0.0),
                           donors.shape)
    placed = fallback_geometry(reference, anchors, mask)
    ys, xs = np.nonzero(mask)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    x1, y1, x2, y2 = box
    scale = _work_scale(face_height(placed), work_face_px)
    work_wh = (max(2, round((x2 - x1) * scale)), max(2, round((y2 - y1) * scale)))
    work_hw = (work_wh[1], work_wh[0])
    geometry = _to_work(placed, box, scale)
    texture = render_blend(donors, geometry, work_hw)
    region = _resize(mask[y1:y2, x1:x2].astype(np.uint8), work_wh, True).astype(bool)
    sigma = TONE_SIGMA * face_height(geometry)
    sub_mask = mask[y1:y2, x1:x2]
    alpha = edge_alpha(sub_mask, ramp * min(x2 - x1, y2 - y1) / 2) * sub_mask
    return FacePlan(box, work_wh, donor_details(texture, skin_mask(geometry, work_hw), sigma), region,
                    np.ones(work_hw, np.float32), alpha, sigma, False, fitted=False)


def face_anchors(keypoints: np.ndarray | None, layout: str | None) -> np.ndarray | None:
    """Eye (and nose) keypoints of a face detection, for placing a face without a mesh.

    Read defensively: ``face6`` (mediapipe), ``face5`` (CenterFace) and other face layouts that
    start with the right eye, left eye and nose tip give their first three points; the face
    mesh gives its eye centres and nose tip. Anything else gives None.

    Returns:
        ``(K, 3)`` float32 ``(x, y, visibility)`` with K in 2..3, or None.
    """
    if keypoints is None or layout is None or len(keypoints) < 2 or keypoints.ndim != 2:
        return None
    if layout == "face_mesh478" and len(keypoints) >= 478:
        return np.asarray(keypoints[list(FACE6_MESH_INDEX[:3])], dtype=np.float32)
    if layout.startswith("face") and len(keypoints) <= 10:
        return np.asarray(keypoints[:3], dtype=np.float32)
    return None


def fill_face(crop: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``crop`` with the masked pixels set to their mean colour (the fail-closed cover: no face left)."""
    out = crop.copy()
    out[mask] = np.round(crop[mask].reshape(-1, 3).mean(axis=0)).astype(np.uint8)
    return out


def oval_box(landmarks: np.ndarray) -> tuple[float, float, float, float]:
    """Box of the face oval, trimmed at the top to about dlib's brows-to-chin face box."""
    oval = landmarks[mesh_groups()["oval"], :2]
    (x1, y1), (x2, y2) = oval.min(axis=0), oval.max(axis=0)
    return (float(x1), float(y1 + 0.2 * (y2 - y1)), float(x2), float(y2))


def face_span(landmarks: np.ndarray) -> float:
    """Vertical extent of the face oval in pixels."""
    return float(np.ptp(landmarks[mesh_groups()["oval"], 1]))
