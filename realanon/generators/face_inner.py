"""Inner-face replacement: a new face from brows to chin, cheek to cheek, on the person's own head.

Pure functions over numpy arrays, used by the ``donor`` generator in its default ``mode="face"``.
Landmarks are mediapipe FaceMesh's 478 points (see :mod:`realanon.generators.face_warp`).
The person keeps hair, ears, forehead above the brows and head outline; inside the face:

* the donors' faces are warped onto one geometry (:func:`mixed_shape`), their textures averaged
  with the identity's weights;
* the result takes the low spatial frequencies (skin tone, light, broad shading) of the target
  and the details of the donors (:func:`tone_details`), and the target's distribution of saturation
  and brightness over the replaced area (:func:`match_histograms`);
* it is eased into the target over a smooth ramp inside the inner face's edge, so the border of
  the changed pixels keeps the target's own edges (:func:`edge_alpha`, :func:`ease_in`).
  Poisson blending was tried and dropped: it spreads any difference at the edge (a donor's hair
  at the temples) over the whole face, which then reads brighter or darker than the head.
"""

from __future__ import annotations

import cv2
import numpy as np

from realanon.generators.face_warp import mesh_groups, similarity_from_points

# Mesh indices: forehead top, chin, eyelids (upper, lower) and eye corners of both eyes.
_FOREHEAD, _CHIN = 10, 152
_EYELIDS = ((159, 145, 33, 133), (386, 374, 362, 263))
# The inner face's top edge sits this many brow-to-eye distances above the highest brow point.
BROW_LIFT = 1.5
# The inner face is pulled in from the face oval by this fraction of the face height, so a
# profile's far cheek never reaches the background.
OVAL_INSET = 0.01
# Low frequencies: Gaussian sigma as a fraction of the face height (forehead top to chin).
TONE_SIGMA = 0.2
# Wide low-pass filters run at a scale where their sigma is this many pixels.
_LOW_PASS_SIGMA_PX = 4.0
# The grain's spread is measured on at most this many pixels (an even subsample).
_GRAIN_SAMPLES = 20000
# The donors' detail is scaled towards the target's by at most this factor either way.
MAX_DETAIL_GAIN = 1.6
# The colour details: a donor pixel has at most this many times the chroma of its skin around it,
# and skin is taken to have at least this chroma (CIELAB units; a grey photo's has none).
MAX_CHROMA_RATIO, MIN_SKIN_CHROMA = 2.0, 4.0
# Bare skin is within this many robust standard deviations of the skin's median colour in each
# CIELAB channel; at least this share of the mesh's skin must be left for it to count.
SKIN_SPREADS, MIN_BARE_SKIN = 3.0, 0.5


def face_height(landmarks: np.ndarray) -> float:
    """Forehead-top to chin distance in pixels (at least 1)."""
    return max(float(np.linalg.norm(landmarks[_CHIN, :2] - landmarks[_FOREHEAD, :2])), 1.0)


def eyes_open(landmarks: np.ndarray) -> float:
    """Mean eyelid gap over eye width of both eyes (about 0.3 open, under 0.1 closed)."""
    ratios = []
    for upper, lower, corner_a, corner_b in _EYELIDS:
        width = float(np.linalg.norm(landmarks[corner_a, :2] - landmarks[corner_b, :2]))
        ratios.append(float(np.linalg.norm(landmarks[upper, :2] - landmarks[lower, :2])) / max(width, 1e-6))
    return float(np.mean(ratios))


def inner_face_polygon(landmarks: np.ndarray) -> np.ndarray:
    """``(36, 2)`` float32 polygon of the inner face: the face oval cut just above the brows.

    Oval points higher (along the chin-to-forehead axis) than ``BROW_LIFT`` brow-to-eye
    distances above the brows are moved down onto that level, so the forehead and hairline
    stay the person's own.
    """
    groups = mesh_groups()
    pts = landmarks[:, :2].astype(np.float32)
    chin = pts[_CHIN]
    up = pts[_FOREHEAD] - chin
    up /= max(float(np.linalg.norm(up)), 1e-6)
    height = (pts - chin) @ up
    brow_top = float(height[groups["brows"]].max())
    eye_level = float(height[groups["eyes"]].mean())
    cap = brow_top + BROW_LIFT * max(brow_top - eye_level, 0.0)
    oval = pts[groups["oval"]].copy()
    over = (oval - chin) @ up - cap
    oval -= np.maximum(over, 0.0)[:, None] * up[None, :]
    return oval


def inner_face_mask(landmarks: np.ndarray, size_hw: tuple[int, ...]) -> np.ndarray:
    """``(h, w)`` bool mask of the inner face (see :func:`inner_face_polygon`), inset from the oval."""
    mask = np.zeros(size_hw[:2], dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(inner_face_polygon(landmarks) * 16).astype(np.int32)], (1,), cv2.LINE_8, 4)
    inset = round(OVAL_INSET * face_height(landmarks))
    if inset > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * inset + 1, 2 * inset + 1))
        return np.asarray(cv2.erode(mask, kernel) > 0)
    return mask.astype(bool)


def mixed_shape(target: np.ndarray, donors: list[np.ndarray], weights: np.ndarray, keep: float,
                keep_features: float) -> np.ndarray:
    """Landmarks of the new face, placed on the target.

    Each donor's landmarks are fitted onto the target's by a similarity transform and averaged
    with ``weights``; the result lies between that average (the new identity's shape) and the
    target's own shape. Eyes and lips follow the target more closely (``keep_features``) so
    closed eyes and open mouths carry over.

    Args:
        target: ``(478, 3)`` target landmarks.
        donors: ``(478, 3)`` landmarks of each donor, in its own image.
        weights: ``(k,)`` weights summing to 1.
        keep: Share of the target's geometry kept for the face as a whole, in [0, 1].
        keep_features: Share kept for eye and lip points, in [0, 1].

    Returns:
        ``(478, 3)`` float32 landmarks (``z`` is the target's).
    """
    placed = np.zeros((len(target), 2), dtype=np.float64)
    for lm, w in zip(donors, weights):
        matrix = similarity_from_points(lm[:, :2], target[:, :2])
        placed += w * (lm[:, :2] @ matrix[:, :2].T + matrix[:, 2])
    groups = mesh_groups()
    share = np.full((len(target), 1), keep)
    share[np.concatenate([groups["eyes"], groups["lips"]])] = max(keep, keep_features)
    out = target.astype(np.float32).copy()
    out[:, :2] = share * target[:, :2] + (1.0 - share) * placed
    return out


def match_histograms(image_rgb: np.ndarray, reference_rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Maps the HSV saturation and value of ``image`` inside ``mask`` so their histograms equal the reference's.

    Both are ``(h, w, 3)`` uint8 of the same size; pixels outside ``mask`` are returned as they
    are. Used so the new face keeps the original's distribution of brightness and saturation
    (its place in the picture) while every pixel's value comes from the donors' face; each
    pixel's hue is kept exactly (see :func:`with_saturation_value`).
    """
    out = image_rgb.copy()
    if mask.sum() < 16:
        return out
    hsv, ref = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2HSV), cv2.cvtColor(reference_rgb, cv2.COLOR_RGB2HSV)
    mapped = []
    for c in (1, 2):  # saturation and value; hue is left to the tone fit
        src, dst = hsv[..., c][mask], ref[..., c][mask]
        # Each level goes to the reference's level at the middle of its share: a smooth donor face
        # has few levels, each holding many pixels, and sent to the top of their shares (the usual
        # table) the whole face drifts up by levels.
        share = np.bincount(src, minlength=256) / src.size
        dst_cdf = np.cumsum(np.bincount(dst, minlength=256)) / dst.size
        mapped.append(np.clip(np.searchsorted(dst_cdf, np.cumsum(share) - share / 2, side="left"), 0, 255)[src])
    out[mask] = with_saturation_value(image_rgb[mask], mapped[0], mapped[1])
    return out


def with_saturation_value(rgb: np.ndarray, saturation: np.ndarray, value: np.ndarray) -> np.ndarray:
    """``(N, 3)`` uint8 colours with the hue of ``rgb`` and the given HSV saturation and value (0..255).

    Computed in RGB, not through OpenCV's 8-bit HSV: its hue steps of 2 degrees and rounding
    move saturation up by a level or more on skin tones, and the edit is to leave it where the
    histogram put it. Grey pixels (no hue) stay grey at the new value.
    """
    colour = rgb.astype(np.float32)
    high, low = colour.max(axis=1, keepdims=True), colour.min(axis=1, keepdims=True)
    share = (colour - low) / np.maximum(high - low, 1e-6)  # 1 on the largest channel, 0 on the smallest
    new_high = value.astype(np.float32)[:, None]
    new_low = new_high * (1.0 - saturation.astype(np.float32)[:, None] / 255.0)
    out = np.where(high > low, new_low + share * (new_high - new_low), new_high)
    return np.asarray(np.clip(np.rint(out), 0, 255), dtype=np.uint8)


def _bare_skin(lab: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """``skin`` without the pixels far from its median colour: hair over the forehead, a beard, a shadow.

    The mesh says where skin should be, not whether hair covers it; taking a fringe's colour for
    the skin's would tint the new face's forehead with it. Falls back to ``skin`` when too little is left.
    """
    if skin.sum() < 16:
        return skin
    values = lab[skin]
    median = np.median(values, axis=0)
    spread = np.maximum(1.4826 * np.median(np.abs(values - median), axis=0), (2.0, 1.0, 1.0))
    near = (np.abs(lab - median) <= SKIN_SPREADS * spread).all(axis=-1) & skin
    return near if near.sum() >= MIN_BARE_SKIN * skin.sum() else skin


def _low_pass(image: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """Normalized convolution: Gaussian mean of ``image`` over ``weight``, defined everywhere.

    Wide blurs run on a copy shrunk so ``sigma`` is ``_LOW_PASS_SIGMA_PX`` there (the result is
    smooth, so scaling it back loses nothing visible) and cost little at any face size.
    """
    factor = max(1.0, sigma / _LOW_PASS_SIGMA_PX)
    if factor > 1.5:
        h, w_ = weight.shape[:2]
        size = (max(2, round(w_ / factor)), max(2, round(h / factor)))
        small = _low_pass(cv2.resize(image, size, interpolation=cv2.INTER_AREA),
                          cv2.resize(weight.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.5,
                          sigma * size[0] / w_)
        return np.asarray(cv2.resize(small, (w_, h), interpolation=cv2.INTER_LINEAR), dtype=np.float32)
    w = cv2.GaussianBlur(weight.astype(np.float32), (0, 0), sigma)
    num = cv2.GaussianBlur(image * weight.astype(np.float32)[..., None], (0, 0), sigma)
    fallback = image[weight > 0].mean(axis=0) if (weight > 0).any() else image.reshape(-1, 3).mean(axis=0)
    out = num / np.maximum(w, 1e-4)[..., None]
    weak = w < 1e-3
    out[weak] = fallback
    return np.asarray(out, dtype=np.float32)


def donor_details(donor_rgb: np.ndarray, donor_skin: np.ndarray, sigma: float) -> tuple[np.ndarray, float]:
    """The donor's part of the tone fit (see :func:`tone_details`), kept by a video track while its face stays put.

    Args:
        donor_rgb: ``(h, w, 3)`` uint8 donor face, already warped onto the target.
        donor_skin: ``(h, w)`` bool bare skin of the warped donor.
        sigma: Low-pass scale in pixels.

    Returns:
        ``(h, w, 3)`` float32 details: the log of the donor's CIELAB lightness over its low
        frequencies over ``donor_skin``, then its colour (``a + ib``) over theirs as a complex
        ratio (real, imaginary); and the lightness details' spread on the skin (NaN without skin).
    """
    donor = cv2.cvtColor(donor_rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    low = _low_pass(donor, _bare_skin(donor, donor_skin), sigma)
    colour, low_colour = donor[..., 1] + 1j * donor[..., 2], low[..., 1] + 1j * low[..., 2]
    ratio = colour * np.conj(low_colour) / np.maximum(np.abs(low_colour), MIN_SKIN_CHROMA) ** 2
    ratio *= np.minimum(1.0, MAX_CHROMA_RATIO / np.maximum(np.abs(ratio), 1e-6))
    shade = np.log(np.maximum(donor[..., 0], 1.0) / np.maximum(low[..., 0], 1.0))
    detail = np.stack([shade, ratio.real, ratio.imag], axis=-1).astype(np.float32)
    spread = float(detail[donor_skin, 0].std()) if donor_skin.any() else float("nan")
    return detail, spread


def tone_details(details: tuple[np.ndarray, float], target_rgb: np.ndarray, target_skin: np.ndarray,
                 sigma: float) -> np.ndarray:
    """The donor's details on the target's low frequencies (skin tone, light, shading).

    In CIELAB: ``low(target) * (donor / low(donor))``, where ``low`` is a Gaussian (``sigma``
    pixels) mean over bare skin only, so eyes, brows and lips stay in the details. Each feature
    keeps its share of the skin's lightness and chroma and its turn of hue: an eyelid a third
    darker than a pale donor's skin is a third darker than a dark target's, not black, and a
    brow much less red than a ruddy donor's skin does not turn green on a paler one. The
    lightness ratio is raised to ``gain``, which matches the donor's detail contrast to the
    target's within ``1 / MAX_DETAIL_GAIN`` and ``MAX_DETAIL_GAIN``.

    Args:
        details: The donor's details and their spread (see :func:`donor_details`).
        target_rgb: ``(h, w, 3)`` uint8 target.
        target_skin: ``(h, w)`` bool bare skin of the target.
        sigma: Low-pass scale in pixels.

    Returns:
        ``(h, w, 3)`` uint8 RGB.
    """
    detail, spread = details
    target = cv2.cvtColor(target_rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    target_low = _low_pass(target, _bare_skin(target, target_skin), sigma)
    if np.isfinite(spread) and target_skin.any():
        fine = np.log(np.maximum(target[..., 0], 1.0) / np.maximum(target_low[..., 0], 1.0))
        gain = float(np.clip(fine[target_skin].std() / max(spread, 1e-3), 1.0 / MAX_DETAIL_GAIN, MAX_DETAIL_GAIN))
        detail = detail * np.array([gain, 1.0, 1.0], dtype=np.float32)
    colour = (target_low[..., 1] + 1j * target_low[..., 2]) * (detail[..., 1] + 1j * detail[..., 2])
    lightness = np.clip(target_low[..., 0] * np.exp(detail[..., 0]), 0.0, 100.0)
    lab = np.stack([lightness, colour.real, colour.imag], axis=-1)
    rgb = cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_LAB2RGB)
    return np.asarray(np.clip(np.rint(rgb * 255.0), 0, 255), dtype=np.uint8)


def edge_alpha(mask: np.ndarray, ramp_px: float) -> np.ndarray:
    """``(h, w)`` float32: 0 outside ``mask``, rising smoothly to 1 ``ramp_px`` inside its edge."""
    if ramp_px < 1:
        return mask.astype(np.float32)
    dist = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
    t = np.clip(dist / float(ramp_px), 0.0, 1.0)
    return np.asarray(t * t * (3.0 - 2.0 * t), dtype=np.float32)  # smoothstep: no visible kink


def ease_in(layer: np.ndarray, target: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``alpha * layer + (1 - alpha) * target``; pixels where ``alpha`` is 0 stay ``target``'s exactly.

    Args:
        layer: ``(h, w, 3)`` uint8.
        target: ``(h, w, 3)`` uint8.
        alpha: ``(h, w)`` float32 in [0, 1].
    """
    weight = np.ascontiguousarray(alpha, dtype=np.float32)
    return np.asarray(cv2.blendLinear(np.ascontiguousarray(layer), np.ascontiguousarray(target), weight,
                                      1.0 - weight))


def match_grain(image: np.ndarray, reference: np.ndarray, weight: np.ndarray, seed: int) -> np.ndarray:
    """Adds Gaussian grain, scaled by ``weight``, so the fine-scale noise matches the reference's.

    Upscaled donor faces are smoother than the picture they land in; the grain's spread is
    what the reference's finest scale (``image - blur(image, 1 px)``) has more than ``image``'s.

    Args:
        image: ``(h, w, 3)`` uint8 image to roughen.
        reference: ``(h, w, 3)`` uint8 image whose grain is wanted (the original).
        weight: ``(h, w)`` float32 in [0, 1]: where grain goes (measured where it exceeds 0.5).
        seed: Seeds the grain.

    Returns:
        ``(h, w, 3)`` uint8.
    """
    mask = weight > 0.5
    if mask.sum() < 64:
        return image

    def fine_std(x: np.ndarray) -> float:
        # Robust spread (median absolute deviation): the sparse edges of eyes and lips do not count.
        grey = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float32)
        fine = (grey - cv2.GaussianBlur(grey, (0, 0), 1.0))[mask]
        fine = fine[:: max(1, fine.size // _GRAIN_SAMPLES)]
        return 1.4826 * float(np.median(np.abs(fine - np.median(fine))))

    missing = fine_std(reference) ** 2 - fine_std(image) ** 2
    if missing <= 0.25:
        return image
    # Slightly blurred noise looks like sensor grain; its fine-scale spread is measured, not assumed.
    white = np.random.default_rng(seed).normal(0.0, 1.0, mask.shape).astype(np.float32)
    noise = np.asarray(cv2.GaussianBlur(white, (0, 0), 0.6), dtype=np.float32)
    noise_fine = (noise - cv2.GaussianBlur(noise, (0, 0), 1.0))[mask]
    noise_fine = noise_fine[:: max(1, noise_fine.size // _GRAIN_SAMPLES)]
    noise *= float(np.sqrt(missing)) / max(1.4826 * float(np.median(np.abs(noise_fine))), 1e-6)
    out = image.astype(np.float32) + (noise * weight)[..., None]
    return np.asarray(np.clip(np.rint(out), 0, 255), dtype=np.uint8)
