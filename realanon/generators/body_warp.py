"""Pure functions for placing a donor body onto a target's COCO-17 pose, limb by limb.

Keypoints are ``(17, 3)`` float32 ``(x, y, visibility)`` in the COCO order: nose, eyes, ears,
shoulders, elbows, wrists, hips, knees, ankles (left before right). Affine matrices are
``(2, 3)`` float64 mapping donor pixels to target pixels.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from realanon.generators._util import mask_bbox

View = Literal["front", "back", "left", "right"]
VIEWS: tuple[View, ...] = ("front", "back", "left", "right")
# COCO-17 index of each keypoint's mirror (left <-> right).
COCO17_FLIP = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)
TORSO = (5, 6, 12, 11)
# Limb segments (from joint, to joint) and the part each hangs from.
LIMBS: dict[str, tuple[int, int, str]] = {
    "l_upper_arm": (5, 7, "torso"), "r_upper_arm": (6, 8, "torso"),
    "l_lower_arm": (7, 9, "l_upper_arm"), "r_lower_arm": (8, 10, "r_upper_arm"),
    "l_thigh": (11, 13, "torso"), "r_thigh": (12, 14, "torso"),
    "l_shin": (13, 15, "l_thigh"), "r_shin": (14, 16, "r_thigh"),
}
# Drawing order, back to front: legs, torso, arms, head.
PARTS = ("l_thigh", "r_thigh", "l_shin", "r_shin", "torso",
         "l_upper_arm", "r_upper_arm", "l_lower_arm", "r_lower_arm", "head")
VISIBLE = 0.3
# A limb seen end-on is never squashed below this fraction of the body scale.
_MIN_ALONG = 0.35
# A person known only by its box spans this share of the box's width, spreading its feet and
# hands at most this share of its height to each side (see box_pose).
_FILL_WIDTH, _MAX_SPREAD, _FOOT = 0.85, 0.2, 0.04
# A head is about this share of a person's height wide.
_HEAD_WIDTH = 0.1
# The donor's clothes reach out to the target's outline at most this share of its height, at
# least _MIN_REACH and at most _MAX_REACH pixels: further out is something else in the mask (a
# bag, a neighbour, a bicycle), and a longer reach smears the donor's edge into streaks. A mask
# filling more than _BOX_FILL of its box is a box (small people, box-only detectors), not an outline.
_OUTLINE_REACH, _MIN_REACH, _MAX_REACH = 0.06, 1.5, 4.0
_BOX_FILL = 0.75


def visible(kp: np.ndarray, *indices: int) -> bool:
    """True when every keypoint of ``indices`` is visible."""
    return bool(all(kp[i, 2] > VISIBLE for i in indices))


def mirror_coco17(kp: np.ndarray) -> np.ndarray:
    """Swaps the left and right labels (not the positions) of ``(17, 3)`` keypoints."""
    return np.asarray(kp[list(COCO17_FLIP)], dtype=np.float32)


def torso_length(kp: np.ndarray) -> float | None:
    """Distance from mid-shoulders to mid-hips, or None unless all four are visible."""
    if not visible(kp, *TORSO):
        return None
    return float(np.linalg.norm(kp[[5, 6], :2].mean(0) - kp[[11, 12], :2].mean(0)))


def upright(kp: np.ndarray) -> bool:
    """True when the torso runs down the image within 60 degrees of vertical (shoulders above hips).

    Pose models sometimes return a person upside down (nose at the feet); such keypoints are not
    used for the warp.
    """
    if not visible(kp, *TORSO):
        return False
    down = kp[[11, 12], :2].mean(0) - kp[[5, 6], :2].mean(0)
    return bool(down[1] > 0.5 * np.linalg.norm(down))


def view_of(kp: np.ndarray | None) -> View:
    """Which way a person faces, from COCO-17 keypoints.

    A narrow shoulder line (against the torso length) is a side view: ``"left"`` when the
    nose is right of the shoulders in the image (the person's left side faces the camera),
    ``"right"`` otherwise. A wide one is ``"front"`` when the eyes and nose are visible and the
    person's left shoulder is on the image's right, else ``"back"``.

    Args:
        kp: ``(17, 3)`` keypoints, or None.

    Returns:
        One of :data:`VIEWS`; ``"front"`` when too little is visible to tell.
    """
    if kp is None or not visible(kp, 5, 6):
        return "front"
    mid = kp[[5, 6], :2].mean(0)
    span = float(kp[5, 0] - kp[6, 0])
    length = torso_length(kp) or 2.0 * abs(float(kp[5, 1] - kp[6, 1])) + abs(span) * 1.5
    face = float(np.mean(kp[0:3, 2]))
    if abs(span) < 0.3 * length:
        anchor = kp[0] if kp[0, 2] > VISIBLE else kp[3:5][np.argmax(kp[3:5, 2])]
        if anchor[2] <= VISIBLE:
            return "left"
        return "left" if anchor[0] > mid[0] else "right"
    if face < 0.5:
        return "back"
    return "front" if span > 0 else "back"


def align_sides(donor: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The donor's keypoints relabelled so its left/right lie on the same image side as the target's."""
    if not (visible(donor, 5, 6) and visible(target, 5, 6)):
        return donor
    if (donor[5, 0] - donor[6, 0]) * (target[5, 0] - target[6, 0]) < 0:
        return mirror_coco17(donor)
    return donor


def affine_lstsq(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares ``(2, 3)`` affine mapping ``src`` ``(n, 2)`` onto ``dst`` (n >= 3)."""
    a = np.hstack([src.astype(np.float64), np.ones((len(src), 1))])
    sol, *_ = np.linalg.lstsq(a, dst.astype(np.float64), rcond=None)
    return np.asarray(sol.T)


def similarity_lstsq(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares ``(2, 3)`` similarity (rotation, uniform scale, shift) mapping ``src`` onto ``dst``."""
    src, dst = src.astype(np.float64), dst.astype(np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    denom = float((s**2).sum()) or 1e-9
    a = float((s * d).sum()) / denom
    b = float((s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()) / denom
    linear = np.array([[a, -b], [b, a]])
    return np.hstack([linear, (mu_d - linear @ mu_s)[:, None]])


def bone_affine(a: np.ndarray, b: np.ndarray, a2: np.ndarray, b2: np.ndarray, width_scale: float) -> np.ndarray:
    """Affine taking bone ``a -> b`` onto ``a2 -> b2``: along the bone by their length ratio,
    across it by ``width_scale`` (limbs keep the body's thickness when foreshortened)."""
    d, d2 = b - a, b2 - a2
    n, n2 = float(np.linalg.norm(d)), float(np.linalg.norm(d2))
    if n < 1e-6:
        return np.hstack([np.eye(2) * width_scale, (a2 - width_scale * a)[:, None]])
    u = d / n
    u2 = d2 / n2 if n2 > 1e-6 else u
    along = max(n2 / n, _MIN_ALONG * width_scale)
    perp, perp2 = np.array([-u[1], u[0]]), np.array([-u2[1], u2[0]])
    linear = np.outer(u2 * along, u) + np.outer(perp2 * width_scale, perp)
    return np.hstack([linear, (a2 - linear @ a)[:, None]])


def box_affine(src_box: tuple[float, float, float, float], dst_box: tuple[float, float, float, float]) -> np.ndarray:
    """Uniform-scale fit of ``src_box`` into ``dst_box``: heights match, centres align."""
    sx1, sy1, sx2, sy2 = src_box
    dx1, dy1, dx2, dy2 = dst_box
    s = (dy2 - dy1) / max(sy2 - sy1, 1e-6)
    s = min(s, 1.6 * (dx2 - dx1) / max(sx2 - sx1, 1e-6))
    tx = 0.5 * (dx1 + dx2) - s * 0.5 * (sx1 + sx2)
    ty = 0.5 * (dy1 + dy2) - s * 0.5 * (sy1 + sy2)
    return np.array([[s, 0.0, tx], [0.0, s, ty]])


def apply_affine(matrix: np.ndarray, points_xy: np.ndarray) -> np.ndarray:
    """``(n, 2)`` points mapped by a ``(2, 3)`` affine."""
    return np.asarray(points_xy, np.float64) @ matrix[:, :2].T + matrix[:, 2]


def part_transforms(donor: np.ndarray, target: np.ndarray) -> dict[str, np.ndarray] | None:
    """One donor -> target affine per part (see :data:`PARTS`), or None without a torso.

    The torso is fitted to the four torso keypoints; each limb maps its bone exactly when both
    ends are visible in donor and target, and otherwise moves with the part it hangs from. A
    limb the donor hides but the target shows maps its mirror limb's bone (:func:`borrowed_limbs`).
    The head is moved with the torso, translated so the donor's nose lands on the target's.

    Args:
        donor: ``(17, 3)`` donor keypoints (left/right aligned with the target's).
        target: ``(17, 3)`` target keypoints.
    """
    d_len, t_len = torso_length(donor), torso_length(target)
    if d_len is None or t_len is None or d_len < 1e-3 or t_len < 1e-3 or not upright(target):
        return None
    idx = list(TORSO)
    scale = t_len / d_len
    torso = affine_lstsq(donor[idx, :2], target[idx, :2])
    stretch = np.linalg.svd(torso[:, :2], compute_uv=False) / scale
    if np.linalg.det(torso[:, :2]) <= 0 or stretch.min() < 0.6 or stretch.max() > 1.6:
        # Side views put the four points nearly on a line: an affine squashes or shears; keep a similarity.
        torso = similarity_lstsq(donor[idx, :2], target[idx, :2])
    out = {"torso": torso}
    sources = borrowed_limbs(donor, target)
    for name in ("l_upper_arm", "r_upper_arm", "l_thigh", "r_thigh", "l_lower_arm", "r_lower_arm", "l_shin", "r_shin"):
        i, j, parent = LIMBS[name]
        si, sj, _ = LIMBS[sources.get(name, name)]
        if visible(donor, si, sj) and visible(target, i, j):
            out[name] = bone_affine(donor[si, :2], donor[sj, :2], target[i, :2], target[j, :2], scale)
        else:
            out[name] = out[parent]
    head = out["torso"].copy()
    head[:, :2] = np.eye(2) * scale
    neck_d, neck_t = donor[[5, 6], :2].mean(0), target[[5, 6], :2].mean(0)
    head[:, 2] = neck_t - scale * neck_d
    if visible(donor, 0) and visible(target, 0):
        shift = target[0, :2] - apply_affine(head, donor[None, 0, :2])[0]
        if np.linalg.norm(shift) < 0.5 * t_len:
            head[:, 2] += shift
    out["head"] = head
    return out


def mirror_limb(name: str) -> str:
    """The other side's limb: ``"l_shin"`` -> ``"r_shin"``."""
    return ("r" if name[0] == "l" else "l") + name[1:]


def borrowed_limbs(donor: np.ndarray, target: np.ndarray) -> dict[str, str]:
    """Limbs the donor hides but the target shows, each to be drawn from its mirror limb's pixels.

    The bank's side views show one arm and one leg; a person walking past the camera shows
    both legs apart. Without this the far leg is missing and the walker becomes a one-legged,
    leaning stick.

    Args:
        donor: ``(17, 3)`` donor keypoints (left/right aligned with the target's).
        target: ``(17, 3)`` target keypoints.

    Returns:
        Limb name -> the limb whose pixels stand in for it (see :data:`LIMBS`).
    """
    out = {}
    for name, (i, j, _) in LIMBS.items():
        mi, mj, _ = LIMBS[mirror_limb(name)]
        if not visible(donor, i, j) and visible(target, i, j) and visible(donor, mi, mj):
            out[name] = mirror_limb(name)
    return out


def part_labels(donor: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(h, w)`` int8 index into :data:`PARTS` of the part each donor pixel belongs to (-1 outside).

    Each pixel of ``mask`` goes to the nearest bone (the torso is its filled quadrilateral;
    the head the segment from mid-shoulders up through the nose).
    """
    h, w = mask.shape
    dist = np.full((len(PARTS), h, w), np.inf, np.float32)
    for k, name in enumerate(PARTS):
        canvas = np.full((h, w), 255, np.uint8)
        if name == "torso":
            if not visible(donor, *TORSO):
                continue
            cv2.fillConvexPoly(canvas, np.rint(donor[list(TORSO), :2]).astype(np.int32), (0,))
        elif name == "head":
            neck = donor[[5, 6], :2].mean(0)
            top = donor[0, :2] if visible(donor, 0) else neck - np.array([0.0, 0.15 * h])
            cv2.line(canvas, _pt(neck), _pt(top + (top - neck) * 0.6), (0,), 1)
        else:
            i, j, _ = LIMBS[name]
            if not visible(donor, i, j):
                continue
            cv2.line(canvas, _pt(donor[i, :2]), _pt(donor[j, :2]), (0,), 1)
        dist[k] = cv2.distanceTransform(canvas, cv2.DIST_L2, 3)
    labels = np.argmin(dist, axis=0).astype(np.int8)
    labels[~mask] = -1
    return labels


def target_box(mask: np.ndarray, target_kp: np.ndarray | None, margin: float) -> tuple[float, float, float, float]:
    """The person's box from its replace-mask: the mask's extent shrunk by ``margin`` of its height on
    each side (the mask is the person grown by a margin), its top lowered to the first row as wide
    as a head (``_HEAD_WIDTH`` of the height), widened to any visible keypoints."""
    x1, y1, x2, y2 = (float(v) for v in mask_bbox(mask))
    inset = margin * (y2 - y1) / (1.0 + 2.0 * margin)
    # The head goes where the mask is wide enough for one (a cone's or a post's mask narrows to a
    # point, and whatever of the donor lies outside the mask is never drawn: it would lose its head).
    wide_rows = np.flatnonzero(mask.sum(axis=1) >= _HEAD_WIDTH * (y2 - y1 - 2.0 * inset))
    top = max(y1 + inset, float(wide_rows[0]) if wide_rows.size else y1)
    box = (x1 + inset, min(top, y2 - inset - 1.0), x2 - inset, y2 - inset)
    if target_kp is not None and (target_kp[:, 2] > VISIBLE).sum() >= 2:
        pts = target_kp[target_kp[:, 2] > VISIBLE, :2]
        box = (min(box[0], pts[:, 0].min()), min(box[1], pts[:, 1].min()),
               max(box[2], pts[:, 0].max()), max(box[3], pts[:, 1].max()))
    return box


def nearest_pixels(solid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every pixel, its distance to the nearest ``solid`` pixel and that pixel's row and column.

    Args:
        solid: ``(h, w)`` bool, not empty.

    Returns:
        ``(dist, rows, cols)``: ``(h, w)`` float32 distances (0 on ``solid``) and int indices.
    """
    dist, nearest = cv2.distanceTransformWithLabels((~solid).astype(np.uint8), cv2.DIST_L2, 5,
                                                    labelType=cv2.DIST_LABEL_PIXEL)
    ys, xs = np.nonzero(solid)  # the labels number the solid pixels in this (row-major) order
    return dist, ys[nearest - 1], xs[nearest - 1]


def person_outline(mask: np.ndarray, margin: float) -> np.ndarray:
    """``(h, w)`` bool: the person inside a body replace-mask, the mask shrunk by the ``margin`` it
    was grown by (``regions.rasterize_body_mask``: a disc of ``margin`` of the person's height)."""
    _, y1, _, y2 = mask_bbox(mask)
    radius = round(margin * (y2 - y1) / (1.0 + 2.0 * margin))
    if radius < 1:
        return mask.copy()
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.erode(mask.astype(np.uint8), disc) > 0


def fit_outline(colour: np.ndarray, cover: np.ndarray, outline: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The warped donor dressed out to the target's outline: opaque inside it, its clothes grown into it.

    A donor warped onto a pose is slimmer than most people it replaces (studio T-shirts against
    coats) and its thin limbs are half-covered pixels at small sizes, so the scene showed through
    it: a pale, washed-out person smaller than the person's box. Inside the outline every pixel
    within ``_OUTLINE_REACH`` of the person's height of the donor (1.5 to 4 pixels) takes the
    colour of the nearest donor pixel and full coverage; only the outline's shape is the target's,
    no pixel of it. A box-shaped mask (``_BOX_FILL``) is no outline: the donor is left as it is.

    Args:
        colour: ``(h, w, 3)`` float32 donor colour (not premultiplied).
        cover: ``(h, w)`` float32 donor coverage in [0, 1].
        outline: ``(h, w)`` bool target person (:func:`person_outline`).

    Returns:
        ``(colour, cover)`` of the same shapes.
    """
    solid = cover > 0.5
    x1, y1, x2, y2 = mask_bbox(outline)
    if not solid.any() or not outline.any() or outline.sum() > _BOX_FILL * (x2 - x1) * (y2 - y1):
        return colour, cover
    reach = min(max(_MIN_REACH, _OUTLINE_REACH * (y2 - y1)), _MAX_REACH)
    dist, rows, cols = nearest_pixels(solid)
    grow = outline & (dist <= reach) & ~solid
    colour, cover = colour.copy(), cover.copy()
    colour[grow] = colour[rows[grow], cols[grow]]
    cover[outline & (dist <= reach)] = 1.0
    return colour, cover


def whole_transform(donor_kp: np.ndarray, donor_alpha: np.ndarray, mask: np.ndarray, target_kp: np.ndarray | None,
                    margin: float) -> np.ndarray:
    """Whole-person affine: the donor's matte box fitted into the target's box (:func:`target_box`)."""
    src = mask_bbox(donor_alpha > 127)
    return box_affine(tuple(float(v) for v in src), target_box(mask, target_kp, margin))  # type: ignore[arg-type]


def box_pose(donor_kp: np.ndarray, donor_mask: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """``(17, 3)`` keypoints for a person known only by its box: the donor standing in it, limbs spread to its width.

    The bank's donors stand upright with their arms down (a quarter as wide as tall), while a
    walking person's box is half as wide as tall or more (stride, swinging arms). A donor only
    fitted by height would fill part of the box; here its feet move out (the knees half as far,
    the hands and elbows a half and a quarter, as arms swing less than legs stride) until the
    feet span ``_FILL_WIDTH`` of the box, each at most ``_MAX_SPREAD`` of its height further out,
    so the limb-by-limb warp poses it in the box.

    Args:
        donor_kp: ``(17, 3)`` donor keypoints.
        donor_mask: ``(h, w)`` bool donor matte.
        box: Target ``(x1, y1, x2, y2)``.
    """
    src = tuple(float(v) for v in mask_bbox(donor_mask))
    out = donor_kp.astype(np.float32).copy()
    out[:, :2] = apply_affine(box_affine(src, box), donor_kp[:, :2])  # type: ignore[arg-type]
    if not visible(donor_kp, 11, 12, 15, 16):
        return out
    height, width = box[3] - box[1], box[2] - box[0]
    # The feet's outer edges (a foot is about _FOOT of the height wide) reach _FILL_WIDTH of the box.
    feet = 0.5 * abs(float(out[15, 0] - out[16, 0]))
    spread = float(np.clip(0.5 * _FILL_WIDTH * width - _FOOT * height - feet, 0.0, _MAX_SPREAD * height))
    # The person's left side (odd COCO indices from the shoulders down) lies on this side of the image.
    left_side = 1.0 if donor_kp[11, 0] >= donor_kp[12, 0] else -1.0
    for joints, share in (((15, 16), 1.0), ((13, 14), 0.5), ((9, 10), 0.5), ((7, 8), 0.25)):
        for joint, side in zip(joints, (left_side, -left_side)):
            out[joint, 0] += side * share * spread
    return out


def keypoints_after(transforms: dict[str, np.ndarray], donor_kp: np.ndarray) -> np.ndarray:
    """``(17, 2)``: where each donor keypoint lands (by the part it starts; for tests and figures)."""
    owner = {0: "head", 1: "head", 2: "head", 3: "head", 4: "head", 5: "torso", 6: "torso", 11: "torso", 12: "torso",
             7: "l_upper_arm", 8: "r_upper_arm", 9: "l_lower_arm", 10: "r_lower_arm",
             13: "l_thigh", 14: "r_thigh", 15: "l_shin", 16: "r_shin"}
    return np.stack([apply_affine(transforms[owner[i]], donor_kp[None, i, :2])[0] for i in range(17)])


def _pt(xy: np.ndarray) -> tuple[int, int]:
    return (int(round(float(xy[0]))), int(round(float(xy[1]))))
