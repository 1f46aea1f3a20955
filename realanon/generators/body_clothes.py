"""What a body donor wears: clothes drawn per identity, dressed onto the donor (``--target body --method donor``).

The bank's people wear light studio clothes (T-shirts, shorts, bare legs); street people mostly
wear dark, muted, long clothes. Each identity draws its own: two colours, sleeves, trousers and
bulk. Pure functions over the donor's ``(h, w)`` part labels (see ``donor_body.BodyBank``) and
body parts (:func:`realanon.generators.body_warp.part_labels`).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from realanon.generators.body_warp import PARTS, nearest_pixels

# The bank's part labels: 0 background, skin (skin, hair and face), clothes.
SKIN, CLOTH = 1, 2


@dataclass(frozen=True)
class Identity:
    """What the seed fixes for one region or track: the donor person and the clothes.

    Attributes:
        person: Donor person id.
        top_hsv: ``(hue 0-179, saturation 0-1, brightness 0-1)`` of the upper clothes; the
            brightness is the garment's mean HSV value, whatever the donor's studio clothes were.
        bottom_hsv: The same for the lower clothes.
        sleeves: Long sleeves: the arms' skin is dressed in the top's colour.
        trousers: Long trousers: the legs' skin is dressed in the bottom's colour.
        bulk: How far the clothes stand out from the donor's body (a coat over a T-shirt), as a
            fraction of the donor's height.
    """

    person: str
    top_hsv: tuple[float, float, float]
    bottom_hsv: tuple[float, float, float]
    sleeves: bool = True
    trousers: bool = True
    bulk: float = 0.0


# Street clothes, not the bank's studio ones. Most garments are dark (a uniform to the 4th power
# puts their median brightness near 0.1: black, grey and navy coats are the common case, light
# ones the tail) and muted to coloured (a uniform to the 1.5th power, median saturation near 0.3);
# a share are vivid (a red jacket, a yellow coat: saturation and brightness drawn from the ranges
# below). Mostly long sleeves and trousers, and a third of the trousers blue jeans. Before, the
# garments were lighter and greyer (cubed and squared uniforms up to 0.6 saturation, no vivid
# share, a quarter bare-armed): a detector trained on such donors missed vtest's people in
# bright colours (docs/generators.md, Bodies, "Utility (the evaluator)").
_BRIGHTNESS, _SATURATION = (0.06, 0.8), (0.04, 0.75)
_DARK, _MUTED = 4.0, 1.5
_P_VIVID = 0.2
_VIVID = ((0.5, 0.9), (0.3, 0.7))
_P_JEANS = 0.35
_JEANS = ((100.0, 118.0), (0.3, 0.6), (0.15, 0.35))
_P_SLEEVES, _P_TROUSERS = 0.85, 0.9
_BULK = 0.03
_ARMS = tuple(PARTS.index(n) for n in ("l_upper_arm", "r_upper_arm", "l_lower_arm", "r_lower_arm"))
_LEGS = tuple(PARTS.index(n) for n in ("l_thigh", "r_thigh", "l_shin", "r_shin"))


def draw_identity(seed: int, persons: np.ndarray) -> Identity:
    """The identity of a seed: a person drawn uniformly from ``persons``, two clothing colours, sleeves and legs."""
    rng = np.random.default_rng(seed)
    person = str(persons[rng.integers(len(persons))])

    def colour() -> tuple[float, float, float]:
        vivid, hue, sat, value = rng.uniform() < _P_VIVID, rng.uniform(0, 180), rng.uniform(), rng.uniform()
        if vivid:
            return (float(hue), float(np.interp(sat, (0, 1), _VIVID[0])), float(np.interp(value, (0, 1), _VIVID[1])))
        return (float(hue), float(np.interp(sat**_MUTED, (0, 1), _SATURATION)),
                float(np.interp(value**_DARK, (0, 1), _BRIGHTNESS)))

    top, bottom = colour(), colour()
    if rng.uniform() < _P_JEANS:
        bottom = (float(rng.uniform(*_JEANS[0])), float(rng.uniform(*_JEANS[1])), float(rng.uniform(*_JEANS[2])))
    sleeves, trousers = bool(rng.uniform() < _P_SLEEVES), bool(rng.uniform() < _P_TROUSERS)
    return Identity(person, top, bottom, sleeves, trousers, float(rng.uniform(0.0, _BULK)))


def dressed_pixels(labels: np.ndarray, parts: np.ndarray, identity: Identity) -> np.ndarray:
    """``(h, w)`` bool: the donor's clothes, with the arms' and legs' skin under long sleeves and trousers."""
    skin = labels == SKIN
    out = labels == CLOTH
    if identity.sleeves:
        out = out | (skin & np.isin(parts, _ARMS))
    if identity.trousers:
        out = out | (skin & np.isin(parts, _LEGS))
    return out


def thicken_clothes(rgb: np.ndarray, alpha: np.ndarray, parts: np.ndarray, dressed: np.ndarray,
                    radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The donor with clothes ``radius`` pixels bulkier: the matte grows outward from the clothes.

    Each new pixel takes the colour and body part of the nearest clothed pixel, so the grown
    cloth moves with its limb in the warp; the edge is anti-aliased (sub-pixel radii count).

    Args:
        rgb: ``(h, w, 3)`` uint8 donor.
        alpha: ``(h, w)`` uint8 matte.
        parts: ``(h, w)`` int8 body part per pixel (-1 outside the person).
        dressed: ``(h, w)`` bool clothed pixels (:func:`dressed_pixels`).
        radius: Growth in pixels; 0 returns the inputs.

    Returns:
        ``(rgb, alpha, parts)`` of the same shapes and dtypes.
    """
    if radius <= 0 or not dressed.any():
        return rgb, alpha, parts
    dist, rows, cols = nearest_pixels(dressed)
    grow = np.clip(radius + 0.5 - dist, 0.0, 1.0)
    new = (alpha < 128) & (grow > 0)
    rgb, parts = rgb.copy(), parts.copy()
    rgb[new] = rgb[rows[new], cols[new]]
    parts[new] = parts[rows[new], cols[new]]
    alpha = np.maximum(alpha, np.rint(255.0 * grow).astype(np.uint8))
    return rgb, alpha, parts


def recolour_clothes(rgb: np.ndarray, labels: np.ndarray, hip_y: float, identity: Identity,
                     parts: np.ndarray | None = None) -> np.ndarray:
    """The donor dressed in the identity's clothes; face, hair and (unless covered) skin untouched.

    Clothes above ``hip_y`` get ``identity.top_hsv``, below it ``bottom_hsv``: the hue is
    replaced, the saturation pulled to the new one and the brightness scaled so that the
    garment's mean is the identity's, so folds and shading stay. With ``parts``, long sleeves
    and trousers (``identity.sleeves``, ``identity.trousers``) also dress the skin of the arms
    and legs (the bank's studio people often wear T-shirts and shorts).

    Args:
        rgb: ``(h, w, 3)`` uint8 donor.
        labels: ``(h, w)`` uint8 part labels (``CLOTH`` pixels are recoloured).
        hip_y: Row separating top from bottom clothes.
        identity: The clothes.
        parts: ``(h, w)`` int8 body part per pixel (:func:`body_warp.part_labels`), or None.
    """
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(np.float32)
    rows = np.arange(rgb.shape[0], dtype=np.float32)[:, None]
    out = hsv.copy()
    dressed = labels == CLOTH if parts is None else dressed_pixels(labels, parts, identity)
    top, bottom = dressed & (rows < hip_y), dressed & (rows >= hip_y)
    if parts is not None:  # sleeves and trouser legs belong to their garment wherever they hang
        top = top | (dressed & np.isin(parts, _ARMS))
        bottom = (bottom & ~top) | (dressed & np.isin(parts, _LEGS))
    for sel, (hue, sat, value) in ((top, identity.top_hsv), (bottom, identity.bottom_hsv)):
        if not sel.any():
            continue
        out[..., 0][sel] = hue
        out[..., 1][sel] = 0.25 * hsv[..., 1][sel] + 0.75 * 255.0 * sat
        out[..., 2][sel] = hsv[..., 2][sel] * (255.0 * value / max(float(hsv[..., 2][sel].mean()), 1.0))
    out = np.clip(out, 0, [179, 255, 255])
    # Only the dressed pixels are written back: an HSV round trip would shift the others by one level.
    dressed = rgb.copy()
    changed = top | bottom
    dressed[changed] = cv2.cvtColor(out.astype(np.uint8), cv2.COLOR_HSV2RGB)[changed]
    return dressed
