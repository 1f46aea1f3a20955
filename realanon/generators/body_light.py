"""Lighting a body donor like the scene: sharpness, lightness, colourfulness and the light's cast.

Pure functions over the donor layer and the scene pixels around the person (outside the
replace-mask), used by :mod:`realanon.generators.donor_body` (step 4 there).
"""

from __future__ import annotations

import cv2
import numpy as np

from realanon.postprocess.histogram import from_color_space, to_color_space

# The scene's lightness is taken this far (0 = the donor's own, 1 = the scene's statistics): not
# at all by default, as people are darker than the road or grass around them (vtest: L 62 against
# 179) and a pull towards it made donors lighter than the people they replace. The light's colour
# cast (light_cast) is added by the second factor.
LIGHT_FIT, _CAST_FIT = 0.0, 0.5
# A scene whose 90th-percentile CIELAB chroma is below the first value is grey (a film): donors
# lose their colour there; above the second (colour footage, even a grey road) they keep it all.
_GREY_CHROMA = (3.0, 10.0)
# The same ramp for the 99th-percentile chroma of the whole crop, the person included: colour
# footage of a grey backdrop or road still shows skin and clothes in colour; a grey film (the
# 1906 street film) shows none anywhere.
_CROP_CHROMA = (9.0, 16.0)
# Blurs tried to give the donor the scene's sharpness (pixels at the target's scale).
_BLUR_SIGMAS = (0.0, 0.4, 0.7, 1.0)


def fit_light(layer: np.ndarray, alpha: np.ndarray, scene: np.ndarray, colourfulness: float,
              light_fit: float = LIGHT_FIT) -> np.ndarray:
    """The layer's brightness, contrast and colour cast moved towards the scene's.

    Works on CIELAB statistics (the harmonizer's colour conversions): the lightness mean and
    spread move ``light_fit`` of the way to the scene's, the chroma is scaled by
    ``colourfulness`` (muted in grey footage) and the light's colour cast (:func:`light_cast`) is added by
    ``_CAST_FIT``; the clothes keep their own colours.

    Args:
        layer: ``(h, w, 3)`` uint8 RGB donor layer.
        alpha: ``(h, w)`` float32 donor coverage (statistics are taken where > 0.5).
        scene: ``(m, 3)`` uint8 RGB scene pixels around the person.
        colourfulness: How much of the layer's chroma to keep, in [0, 1] (:func:`footage_colourfulness`).
        light_fit: See ``DonorBody.light_fit``.
    """
    sel = alpha > 0.5
    if sel.sum() < 4 or len(scene) < 4:
        return layer
    lab = to_color_space(layer, "lab").astype(np.float32)
    ref = to_color_space(scene.reshape(-1, 1, 3), "lab").reshape(-1, 3).astype(np.float32)
    mu, sd = lab[..., 0][sel].mean(), lab[..., 0][sel].std() + 1e-3
    target_mu = mu + light_fit * (ref[:, 0].mean() - mu)
    gain = float(np.clip(ref[:, 0].std() / sd, 0.6, 1.4)) ** light_fit
    lab[..., 0] = (lab[..., 0] - mu) * gain + target_mu
    lab[..., 1:] = (lab[..., 1:] - 128.0) * colourfulness + 128.0 + _CAST_FIT * light_cast(ref)
    return np.asarray(from_color_space(np.clip(np.rint(lab), 0, 255).astype(np.uint8), "lab"), np.uint8)


def scene_colourfulness(scene_lab: np.ndarray) -> float:
    """How much of a donor's colour the scene allows, in [0, 1]: 0 in a grey film, 1 in any colour footage.

    A grey road around a person in colour CCTV has little chroma spread, yet its people wear
    colours; only a scene with (almost) no chroma anywhere (90th percentile under
    ``_GREY_CHROMA``) mutes them.

    Args:
        scene_lab: ``(m, 3)`` float32 OpenCV CIELAB scene pixels (a, b centred on 128).
    """
    return _chroma_ramp(scene_lab, 90, _GREY_CHROMA)


def footage_colourfulness(crop: np.ndarray, scene: np.ndarray) -> float:
    """How much of a donor's colour the footage allows, in [0, 1], from the whole crop.

    :func:`scene_colourfulness` of the surroundings, or, where they are grey (a road, a studio's
    grey backdrop), the 99th-percentile chroma of the whole crop (``_CROP_CHROMA``), the person
    included: in colour footage their skin and clothes show colour, in a grey film nothing does.
    This one number is all the generator takes from the target's pixels: whether the camera
    records colour, not what the person looks like. Before, a grey backdrop in a colour photo
    greyed every donor.

    Args:
        crop: ``(h, w, 3)`` uint8 RGB crop, the person included.
        scene: ``(m, 3)`` uint8 RGB scene pixels around the person.
    """
    crop_lab = to_color_space(crop, "lab").reshape(-1, 3).astype(np.float32)
    scene_lab = to_color_space(scene.reshape(-1, 1, 3), "lab").reshape(-1, 3).astype(np.float32)
    return max(scene_colourfulness(scene_lab), _chroma_ramp(crop_lab, 99, _CROP_CHROMA))


def _chroma_ramp(lab: np.ndarray, percentile: float, ramp: tuple[float, float]) -> float:
    """0 below ``ramp[0]``, 1 above ``ramp[1]``: the ``percentile`` of the CIELAB chroma of ``(m, 3)`` pixels."""
    chroma = np.hypot(lab[:, 1] - 128.0, lab[:, 2] - 128.0)
    return float(np.clip((np.percentile(chroma, percentile) - ramp[0]) / (ramp[1] - ramp[0]), 0.0, 1.0))


def light_cast(scene_lab: np.ndarray) -> np.ndarray:
    """``(2,)`` the light's colour cast (a, b away from neutral): the mean of the scene's least colourful half.

    Grass or a red wall around a person is the colour of the surface, not of the light; the
    nearly neutral surfaces (road, walls, sky) show the light's cast.
    """
    ab = scene_lab[:, 1:] - 128.0
    chroma = np.hypot(ab[:, 0], ab[:, 1])
    return np.asarray(ab[chroma <= np.median(chroma)].mean(axis=0), np.float32)


def scene_blur_sigma(colour: np.ndarray, cover: np.ndarray, scene: np.ndarray, scene_mask: np.ndarray) -> float:
    """The Gaussian blur (pixels) that gives the donor the scene's sharpness (absolute Laplacian, 90th percentile).

    Args:
        colour: ``(h, w, 3)`` float32 RGB donor layer (not premultiplied).
        cover: ``(h, w)`` float32 donor coverage; detail is measured where > 0.5.
        scene: ``(h, w, 3)`` uint8 RGB crop.
        scene_mask: ``(h, w)`` bool, the scene pixels to measure (outside the replace-mask).
    """
    sel = cover > 0.5
    if sel.sum() < 16 or scene_mask.sum() < 16:
        return 0.0
    # The 90th percentile: how crisp the scene's edges are, whatever share of it is flat.
    detail_scene = _detail(cv2.cvtColor(scene, cv2.COLOR_RGB2GRAY), scene_mask)
    errors = []
    for sigma in _BLUR_SIGMAS:
        blurred = cv2.GaussianBlur(colour, (0, 0), sigma) if sigma > 0 else colour
        gray = cv2.cvtColor(np.clip(blurred, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
        errors.append(abs(_detail(gray, sel) - detail_scene))
    return float(_BLUR_SIGMAS[int(np.argmin(errors))])


def _detail(gray: np.ndarray, where: np.ndarray) -> float:
    return float(np.percentile(np.abs(cv2.Laplacian(gray, cv2.CV_32F))[where], 90))
