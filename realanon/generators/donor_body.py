"""Whole people replaced by a donor body of someone who does not exist (``--target body --method donor``).

CPU only, offline, no training. Donors come from ``weights/body-donors/bank.npz``, built by
``scripts/build_body_bank.py`` from openpeople (MIT; 10 synthetic people, six full-body views
each). For every body region the generator:

1. picks a donor person with the region's seed (a video track keeps its seed, so it keeps one
   identity; never an excluded person), then that person's view facing the way the target faces
   (front, back, left or right, from the target's COCO-17 keypoints; without them, a side view
   for a narrow box, else the front);
2. dresses the donor in clothes drawn from the seed (hue, saturation and brightness of the top
   and of the bottom, mostly dark and muted as street clothes are, some trousers jeans; long
   sleeves and trousers over the studio T-shirts and shorts; face and hair untouched), so a
   crowd is not ten twins;
3. warps it limb by limb (torso, upper and lower arms and legs, head) onto the target's pose,
   drawing a limb a side view hides (the far leg of a walker) from its mirror limb; without a
   visible torso the donor is posed into the region's box, feet and hands spread to its width;
   then grown out to the target's outline (a few pixels of its nearest pixels' colour, never the
   target's; ``body_warp.fit_outline``), so the scene does not show through a slim donor;
4. fits its sharpness to the scene and adds the light's colour cast (LAB statistics of the
   pixels outside the replace-mask; ``body_light.py``); colour is muted only in grey footage
   (nothing in the crop, the person included, shows colour);
5. lays it over the region's background, inpainted from the pixels outside the replace-mask,
   so wherever the donor does not cover the target's silhouette the scene shows, never the
   target's own pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from realanon.errors import ConfigError
from realanon.generators.body_clothes import CLOTH as CLOTH  # re-exported: the bank's label values
from realanon.generators.body_clothes import SKIN as SKIN
from realanon.generators.body_clothes import (
    Identity,
    draw_identity,
    dressed_pixels,
    recolour_clothes,
    thicken_clothes,
)
from realanon.generators.body_fill import fill_background
from realanon.generators.body_light import LIGHT_FIT, fit_light, footage_colourfulness, scene_blur_sigma
from realanon.generators.body_warp import (
    PARTS,
    align_sides,
    borrowed_limbs,
    box_pose,
    fit_outline,
    nearest_pixels,
    part_labels,
    part_transforms,
    person_outline,
    target_box,
    view_of,
    visible,
    whole_transform,
)
from realanon.paths import project_dir
from realanon.structures import GenerationBatch

DEFAULT_BODY_BANK = project_dir("weights") / "body-donors" / "bank.npz"
# Which views stand in for a wanted view when a person lacks it, best first.
_FALLBACK_VIEWS = {"front": ("front", "left", "right", "back"), "back": ("back", "front", "left", "right"),
                   "left": ("left", "front", "right", "back"), "right": ("right", "front", "left", "back")}
# A person known only by a box narrower than this share of its height is seen from the side (the
# bank's front views are about 0.27 as wide as tall, its side views 0.16).
_SIDE_ASPECT = 0.22
# A limb borrowed from the other side (the far leg of a side view) is this much darker: it is in shade.
_FAR_SHADE = 0.8


@dataclass(frozen=True)
class BodyBank:
    """Donor bodies (see ``scripts/build_body_bank.py``); all crops share one ``(H, W)`` size.

    Attributes:
        jpeg: Concatenated JPEG bytes of the RGB crops; crop ``i`` is ``jpeg[offsets[i]:offsets[i+1]]``.
        offsets: ``(N + 1,)`` int64.
        alpha: ``(N, H, W)`` uint8 person matte (255 = person).
        labels: ``(N, H, W)`` uint8: 0 background, ``SKIN`` (skin, hair, face), ``CLOTH``.
        keypoints: ``(N, 17, 3)`` float32 COCO-17 keypoints in crop pixels.
        view: ``(N,)`` str, one of front/back/left/right.
        person: ``(N,)`` str person id (``"P001"`` ...).
        source: ``(N,)`` str the view was cut from.
    """

    jpeg: np.ndarray
    offsets: np.ndarray
    alpha: np.ndarray
    labels: np.ndarray
    keypoints: np.ndarray
    view: np.ndarray
    person: np.ndarray
    source: np.ndarray

    @staticmethod
    def load(path: str | Path) -> BodyBank:
        """Reads a bank written by ``scripts/build_body_bank.py`` (never unpickles)."""
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"body donor bank {path} not found; build it with "
                              f"`python scripts/build_body_bank.py --out {path.parent}`")
        with np.load(path, allow_pickle=False) as z:
            return BodyBank(z["jpeg"], z["jpeg_offsets"], z["alpha"], z["labels"], z["keypoints"],
                            z["view"].astype(str), z["person"].astype(str), z["source"].astype(str))

    def __len__(self) -> int:
        return len(self.person)

    def image(self, index: int) -> np.ndarray:
        """Donor ``index`` as ``(H, W, 3)`` uint8 RGB."""
        data = self.jpeg[self.offsets[index]: self.offsets[index + 1]]
        return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def render_parts(rgb: np.ndarray, alpha: np.ndarray, parts: np.ndarray, transforms: dict[str, np.ndarray],
                 size_hw: tuple[int, int], sources: dict[str, str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Warps each part by its affine and stacks them back to front.

    Args:
        rgb: ``(h, w, 3)`` uint8 donor.
        alpha: ``(h, w)`` float32 donor matte in [0, 1].
        parts: ``(h, w)`` int8 part index per pixel (see :func:`body_warp.part_labels`).
        transforms: Part name -> ``(2, 3)`` donor -> target affine.
        size_hw: Output ``(height, width)``.
        sources: Limbs drawn from another limb's pixels (:func:`body_warp.borrowed_limbs`): the
            far side's, drawn first (behind everything) and in shade (``_FAR_SHADE``).

    Returns:
        ``(H, W, 3)`` float32 colour premultiplied by coverage, and ``(H, W)`` float32 coverage in [0, 1].
    """
    h, w = size_hw
    sources = sources or {}
    colour = np.zeros((h, w, 3), np.float32)
    cover = np.zeros((h, w), np.float32)
    grow = np.ones((3, 3), np.uint8)
    for name in sorted(PARTS, key=lambda n: n not in sources):  # stable: borrowed limbs first
        own = parts == PARTS.index(sources.get(name, name))
        if not own.any():
            continue
        # Parts overlap a little at the joints so no seam opens when a joint bends.
        part_alpha = np.asarray(alpha * cv2.dilate(own.astype(np.uint8), grow, iterations=2), np.float32)
        m = transforms[name].astype(np.float32)
        a = cv2.warpAffine(part_alpha, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=(0.0,))
        c = cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if name in sources:
            c = c.astype(np.float32) * _FAR_SHADE
        colour = a[..., None] * c + (1.0 - a[..., None]) * colour
        cover = a + (1.0 - a) * cover
    return colour, cover


def bleed_colour(rgb: np.ndarray, solid: np.ndarray) -> np.ndarray:
    """``rgb`` with every pixel outside ``solid`` given the colour of the nearest ``solid`` pixel.

    The bank's crops show a grey studio behind each person; resizing and warping mix it into the
    person's edge pixels, and a person 40 pixels tall is mostly edge: the backdrop washed dark
    clothes out to grey. Bled first, every pixel a filter mixes in is the person's own colour.

    Args:
        rgb: ``(h, w, 3)`` uint8 donor.
        solid: ``(h, w)`` bool pixels whose colour is right (the person, inside its matte).
    """
    if not solid.any() or solid.all():
        return rgb
    _, rows, cols = nearest_pixels(solid)
    return np.asarray(rgb[rows, cols], np.uint8)


@dataclass(frozen=True)
class DonorBody:
    """Replaces every person with a warped, recoloured, scene-lit donor body from the bank.

    Args:
        bank: Path of the body ``bank.npz``; None uses ``weights/body-donors/bank.npz``.
        exclude_persons: Donor person ids never used (e.g. the person being anonymized, when
            it is one of the bank's people).
        recolour: Recolour the donor's clothes per identity.
        body_margin: The margin the replace-mask adds around the person (fraction of its
            height, as ``RegionOptions.body_margin``); used by the whole-box fallback.
        light_fit: How far the donor's lightness mean and spread move towards the
            surroundings' (0 keeps the donor's, 1 takes the scene's).
    """

    bank: str | None = None
    exclude_persons: tuple[str, ...] = ()
    recolour: bool = True
    body_margin: float = 0.05
    light_fit: float = LIGHT_FIT

    def __post_init__(self) -> None:
        object.__setattr__(self, "exclude_persons", tuple(self.exclude_persons))

    @cached_property
    def donors(self) -> BodyBank:
        """The loaded bank (read on first use)."""
        return BodyBank.load(self.bank or DEFAULT_BODY_BANK)

    @cached_property
    def _decoded(self) -> dict[int, np.ndarray]:
        return {}

    def donor_rgb(self, index: int) -> np.ndarray:
        """Donor ``index``'s ``(H, W, 3)`` uint8 RGB, its studio backdrop bled away (:func:`bleed_colour`);
        decoded once (read-only; the whole bank is about 11 MB decoded)."""
        if index not in self._decoded:
            rgb = bleed_colour(self.donors.image(index), self.donors.labels[index] > 0)  # labels: the matte > 127
            rgb.flags.writeable = False
            self._decoded[index] = rgb
        return self._decoded[index]

    def __call__(self, batch: GenerationBatch) -> list[np.ndarray]:
        out = []
        for crop, mask, kps, layout, kind, seed in zip(
            batch.crops, batch.replace_masks, batch.keypoints, batch.keypoint_layouts, batch.kinds, batch.seeds
        ):
            if kind != "body":
                raise ConfigError(f"the body donor generator replaces whole people, got a {kind!r} region")
            out.append(self.replace(crop, mask, kps if layout == "coco17" else None, seed))
        return out

    def identity(self, seed: int) -> Identity:
        """The donor person and clothes colours of ``seed`` (the same for a whole video track)."""
        persons = np.unique(self.donors.person)
        allowed = persons[~np.isin(persons, list(self.exclude_persons))]
        if allowed.size == 0:
            raise ConfigError(f"every body donor is excluded ({', '.join(self.exclude_persons)})")
        return draw_identity(seed, allowed)

    def choose_view(self, person: str, kp: np.ndarray | None, box_wh: tuple[float, float] | None = None,
                    seed: int = 0) -> int:
        """Index of ``person``'s view facing the way the target faces; the studio one among equals.

        Without shoulder keypoints a box narrower than ``_SIDE_ASPECT`` of its height ``box_wh``
        is a person seen from the side (facing left or right by ``seed``), anything else a front.
        """
        wanted = view_of(kp)
        if box_wh is not None and (kp is None or not visible(kp, 5, 6)) and box_wh[0] < _SIDE_ASPECT * box_wh[1]:
            wanted = "left" if seed % 2 else "right"
        for view in _FALLBACK_VIEWS[wanted]:
            found = np.flatnonzero((self.donors.person == person) & (self.donors.view == view))
            if found.size:
                return int(found[0])
        raise ConfigError(f"body donor bank has no view of {person}")

    def replace(self, crop: np.ndarray, mask: np.ndarray, kp: np.ndarray | None, seed: int) -> np.ndarray:
        """Replaces the masked person of one crop.

        Args:
            crop: ``(h, w, 3)`` uint8 RGB crop with context.
            mask: ``(h, w)`` bool replace-mask.
            kp: ``(17, 3)`` COCO-17 keypoints in crop pixels, or None.
            seed: The region's seed; the same seed gives the same person and clothes.

        Returns:
            ``(h, w, 3)`` uint8 RGB; pixels outside ``mask`` equal ``crop``.
        """
        out = crop.copy()
        if not mask.any():
            return out
        identity = self.identity(seed)
        x1, y1, x2, y2 = target_box(mask, kp, self.body_margin)
        index = self.choose_view(identity.person, kp, (x2 - x1, y2 - y1), seed)
        premultiplied, cover = self.donor_layer((crop.shape[0], crop.shape[1]), mask, kp, index, identity)
        colour, cover = fit_outline(premultiplied / np.maximum(cover, 1e-3)[..., None], cover,
                                    person_outline(mask, self.body_margin))
        premultiplied = colour * cover[..., None]
        # Texture and sharpness are measured clear of the mask, so no filter reaches the target's pixels.
        scene = cv2.erode((~mask).astype(np.uint8), np.ones((11, 11), np.uint8)) > 0
        sigma = scene_blur_sigma(premultiplied / np.maximum(cover, 1e-3)[..., None], cover, crop, scene)
        if sigma > 0:  # blurring coverage too softens the outline as the scene's optics would
            premultiplied = cv2.GaussianBlur(premultiplied, (0, 0), sigma)
            cover = cv2.GaussianBlur(cover, (0, 0), 0.5 * sigma)
        colour = np.clip(np.rint(premultiplied / np.maximum(cover, 1e-3)[..., None]), 0, 255).astype(np.uint8)
        around = crop[~mask]
        colour = fit_light(colour, cover, around, footage_colourfulness(crop, around), self.light_fit).astype(np.float32)
        background = fill_background(crop, mask, scene, seed)
        layer = cover[..., None] * colour + (1.0 - cover[..., None]) * background
        out[mask] = np.clip(np.rint(layer[mask]), 0, 255).astype(np.uint8)
        return out

    def donor_layer(self, size_hw: tuple[int, int], mask: np.ndarray, kp: np.ndarray | None, index: int,
                    identity: Identity) -> tuple[np.ndarray, np.ndarray]:
        """Donor ``index`` recoloured and warped onto the target: ``(h, w, 3)`` colour, ``(h, w)`` coverage."""
        rgb, alpha = self.donor_rgb(index), self.donors.alpha[index]
        labels, donor_kp = self.donors.labels[index], self.donors.keypoints[index].copy()
        transforms = part_transforms(align_sides(donor_kp, kp), kp) if kp is not None else None
        sources: dict[str, str] = {}
        if transforms is not None:
            donor_kp = align_sides(donor_kp, kp)  # type: ignore[arg-type]
            sources = borrowed_limbs(donor_kp, kp)  # type: ignore[arg-type]
        else:  # no usable pose: the donor posed to fill the person's box
            box = target_box(mask, kp, self.body_margin)
            transforms = part_transforms(donor_kp, box_pose(donor_kp, alpha > 127, box))
        if transforms is None:
            m = whole_transform(donor_kp, alpha, mask, kp, self.body_margin)
            transforms = {name: m for name in PARTS}
        # Shrink the donor close to its size on screen first, so the warp does not alias.
        scale = float(np.sqrt(abs(np.linalg.det(transforms["torso"][:, :2]))))
        f = min(1.0, 1.5 * scale)
        if f < 1.0:
            size = (max(4, round(rgb.shape[1] * f)), max(4, round(rgb.shape[0] * f)))
            f_xy = (size[0] / rgb.shape[1], size[1] / rgb.shape[0])
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
            labels = cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST)
            donor_kp[:, 0] *= f_xy[0]
            donor_kp[:, 1] *= f_xy[1]
            back = np.diag([1.0 / f_xy[0], 1.0 / f_xy[1]])
            transforms = {k: np.hstack([v[:, :2] @ back, v[:, 2:]]) for k, v in transforms.items()}
        parts = part_labels(donor_kp, alpha > 127)
        if self.recolour:
            hips = donor_kp[[11, 12], 1]
            rgb = bleed_colour(recolour_clothes(rgb, labels, float(hips.mean()), identity, parts), labels > 0)
            height = float(np.ptp(np.nonzero(alpha > 127)[0])) if (alpha > 127).any() else 0.0
            rgb, alpha, parts = thicken_clothes(rgb, alpha, parts, dressed_pixels(labels, parts, identity),
                                                identity.bulk * height)
        return render_parts(rgb, alpha.astype(np.float32) / 255.0, parts, transforms, size_hw, sources)
