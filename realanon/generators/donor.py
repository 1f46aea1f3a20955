"""The ``donor`` generator: each face replaced by a real-looking face of someone who does not exist.

CPU only, offline, no training. Donors come from a bank built by
``scripts/build_donor_bank.py`` from the openpeople package (MIT; 10 synthetic people).
For every face region the generator:

1. meshes the face in the crop with mediapipe FaceMesh (478 landmarks);
2. picks a donor person with the region's seed (so a video track, which keeps its seed, keeps
   one identity; never an excluded person), then that person's view closest in head pose,
   mouth opening and skin tone;
3. warps the donor onto the target's landmarks, piecewise-affine over a Delaunay
   triangulation (extended by two rings around the face so hair and neck follow);
4. matches the donor's skin colour to the target's (LAB mean and spread);
5. Poisson-blends it into the crop inside the replace-mask.

When no mesh is found (tiny, blurred or occluded faces) the donor is placed by a similarity
transform fitted to the region's 6 face keypoints, or to the replace-mask's extent; the
masked pixels are always replaced.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from realanon.generators._util import mask_bbox
from realanon.generators.face_warp import (
    FACE6_MESH_INDEX,
    FaceMesher,
    extend_landmarks,
    head_pose,
    mean_skin_lab,
    mesh_groups,
    mouth_open,
    piecewise_affine_maps,
    seamless_blend,
    similarity_from_points,
    skin_mask,
    soft_face_weight,
    transfer_colour,
    warp_image,
)
from realanon.paths import project_dir
from realanon.registry import register_generator
from realanon.structures import GenerationBatch

DEFAULT_BANK = project_dir("weights") / "donors" / "bank.npz"
# Matching cost units: this many degrees of yaw/pitch, LAB units of skin colour, or
# mouth-opening fraction each cost 1.
_POSE_DEG, _SKIN_LAB, _MOUTH = 12.0, 12.0, 0.05
# Below this mask size Poisson blending washes the donor out; a plain copy is used.
_MIN_SEAMLESS_PX = 32
# The target's surroundings are inpainted on a copy with this long side (speed; it is blurred).
_FILL_SIDE = 64


@dataclass(frozen=True)
class DonorBank:
    """Donor faces and what they are matched on (see ``scripts/build_donor_bank.py``).

    Attributes:
        jpeg: Concatenated JPEG bytes of the ``(S, S, 3)`` crops; crop ``i`` is
            ``jpeg[offsets[i]:offsets[i + 1]]``.
        offsets: ``(N + 1,)`` int64 offsets into ``jpeg``.
        landmarks: ``(N, 478, 3)`` float32 FaceMesh landmarks in crop pixels.
        alpha: ``(N, S, S)`` uint8 person matte of each crop (255 = head and hair).
        pose: ``(N, 3)`` float32 ``(yaw, pitch, roll)`` degrees.
        skin_lab: ``(N, 3)`` float32 mean skin colour in CIELAB.
        mouth: ``(N,)`` float32 mouth opening (see :func:`face_warp.mouth_open`).
        person: ``(N,)`` str person id of each donor (``"P001"`` ...).
        source: ``(N,)`` str file each donor was cut from.
        triangles: ``(T, 3)`` int32 triangulation of the extended landmarks.
    """

    jpeg: np.ndarray
    offsets: np.ndarray
    landmarks: np.ndarray
    alpha: np.ndarray
    pose: np.ndarray
    skin_lab: np.ndarray
    mouth: np.ndarray
    person: np.ndarray
    source: np.ndarray
    triangles: np.ndarray

    @staticmethod
    def load(path: str | Path) -> DonorBank:
        """Reads a bank written by ``scripts/build_donor_bank.py`` (never unpickles)."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(
                f"donor bank {path} not found; build it with `python scripts/build_donor_bank.py --out {path.parent}`"
            )
        with np.load(path, allow_pickle=False) as z:
            return DonorBank(
                z["jpeg"], z["jpeg_offsets"], z["landmarks"], z["alpha"], z["pose"], z["skin_lab"], z["mouth_open"],
                z["person"].astype(str), z["source"].astype(str), z["triangles"],
            )

    def __len__(self) -> int:
        return len(self.person)

    def image(self, index: int) -> np.ndarray:
        """Donor ``index`` as an ``(S, S, 3)`` uint8 RGB crop."""
        data = self.jpeg[self.offsets[index] : self.offsets[index + 1]]
        return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def rank_donors(bank: DonorBank, pose: np.ndarray | None, skin_lab: np.ndarray | None, mouth: float | None,
                exclude: tuple[str, ...]) -> np.ndarray:
    """Indices of the allowed donors, best match first.

    Args:
        bank: The donor bank.
        pose: Target ``(yaw, pitch, roll)`` degrees, or None to prefer frontal donors.
        skin_lab: Target mean skin LAB, or None to ignore colour.
        mouth: Target mouth opening, or None to ignore it.
        exclude: Person ids never to choose.

    Raises:
        ValueError: when every donor is excluded.
    """
    allowed = np.flatnonzero(~np.isin(bank.person, list(exclude)))
    if allowed.size == 0:
        raise ValueError(f"every donor is excluded ({', '.join(exclude)}); nothing to swap in")
    target_pose = np.zeros(2, np.float32) if pose is None else pose[:2]
    cost = np.linalg.norm((bank.pose[allowed, :2] - target_pose) / _POSE_DEG, axis=1)
    if skin_lab is not None:
        cost += np.linalg.norm(bank.skin_lab[allowed] - skin_lab, axis=1) / _SKIN_LAB
    if mouth is not None:
        cost += np.abs(bank.mouth[allowed] - mouth) / _MOUTH
    return allowed[np.argsort(cost, kind="stable")]


@register_generator("donor")
@dataclass(frozen=True)
class DonorFaceSwap:
    """Swaps every face for a warped, colour-matched donor face from the bank.

    Args:
        bank: Path of ``bank.npz``; None uses ``weights/donors/bank.npz`` of this checkout.
        exclude_persons: Donor person ids never used (e.g. the person being anonymized,
            when it is one of the bank's people).
        keep_shape: How much of the target's own face geometry the swapped face keeps, in
            [0, 1]: 1 warps the donor exactly onto the target's landmarks (expression and face
            shape follow the target, which also carries identity); 0 keeps the donor's own
            shape, only placed by a similarity transform.
        blend: ``"seamless"`` (Poisson blending) or ``"alpha"`` (copy; the pipeline's
            feathered paste softens the edge).
        target: What the pipeline replaces; only ``"face"`` is supported.
    """

    bank: str | None = None
    exclude_persons: tuple[str, ...] = ()
    keep_shape: float = 0.5
    blend: str = "seamless"
    target: str = "face"

    def __post_init__(self) -> None:
        if self.target != "face":
            raise ValueError(f"the donor generator replaces faces only, got target={self.target!r}")
        if not 0.0 <= self.keep_shape <= 1.0:
            raise ValueError(f"keep_shape must be in [0, 1], got {self.keep_shape}")
        if self.blend not in ("seamless", "alpha"):
            raise ValueError(f"blend must be seamless or alpha, got {self.blend!r}")
        object.__setattr__(self, "exclude_persons", tuple(self.exclude_persons))

    @cached_property
    def donors(self) -> DonorBank:
        """The loaded bank (read on first use)."""
        return DonorBank.load(self.bank or DEFAULT_BANK)

    @cached_property
    def mesher(self) -> FaceMesher:
        """The FaceMesh graph (built on first use)."""
        return FaceMesher()

    def __call__(self, batch: GenerationBatch) -> list[np.ndarray]:
        out = []
        for crop, mask, kps, layout, kind, seed in zip(
            batch.crops, batch.replace_masks, batch.keypoints, batch.keypoint_layouts, batch.kinds, batch.seeds
        ):
            if kind != "face":
                raise ValueError(f"the donor generator replaces faces only, got a {kind!r} region")
            out.append(self.swap(crop, mask, kps if layout == "face6" else None, seed))
        return out

    def swap(self, crop: np.ndarray, mask: np.ndarray, face6: np.ndarray | None, seed: int) -> np.ndarray:
        """Replaces the masked face of one crop.

        Args:
            crop: ``(h, w, 3)`` uint8 RGB crop with context.
            mask: ``(h, w)`` bool replace-mask.
            face6: Optional ``(6, 3)`` mediapipe face keypoints in crop pixels (fallback placement).
            seed: The region's seed; the same seed picks the same donor.

        Returns:
            ``(h, w, 3)`` uint8 RGB; pixels outside ``mask`` equal ``crop``.
        """
        if not mask.any():
            return crop.copy()
        box = mask_bbox(mask)
        target = self.mesher.nearest_face(crop, ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2))
        index = self.choose(crop, target, seed)
        layer = self.donor_layer(crop, mask, target, face6, index)
        return self.blend_layer(layer, crop, mask, target)

    def donor_layer(self, crop: np.ndarray, mask: np.ndarray, target: np.ndarray | None,
                    face6: np.ndarray | None, index: int) -> np.ndarray:
        """Donor ``index`` warped onto the crop, colour-matched, over the filled-in surroundings.

        Args:
            crop: ``(h, w, 3)`` uint8 RGB crop.
            mask: ``(h, w)`` bool replace-mask.
            target: ``(478, 3)`` target landmarks in crop pixels, or None (similarity fallback).
            face6: Optional ``(6, 3)`` face keypoints for the fallback.
            index: The donor.

        Returns:
            ``(h, w, 3)`` uint8 RGB, meaningful inside ``mask``.
        """
        donor_img, donor_lm = self.donors.image(index), self.donors.landmarks[index]
        if target is not None:
            placed = blend_shapes(target, donor_lm, self.keep_shape)
            maps = piecewise_affine_maps(
                extend_landmarks(placed), extend_landmarks(donor_lm), self.donors.triangles, crop.shape[:2]
            )
            target_skin = skin_mask(target, crop.shape[:2]) & mask
        else:
            maps = _similarity_maps(donor_lm, face6, mask_bbox(mask), crop.shape[:2])
            target_skin = mask
        warped = warp_image(donor_img, maps)
        head = cv2.remap(self.donors.alpha[index], maps[0], maps[1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE).astype(np.float32)[..., None] / 255.0
        warped_skin = cv2.remap(skin_mask(donor_lm, donor_img.shape[:2]).astype(np.uint8), maps[0], maps[1],
                                cv2.INTER_NEAREST).astype(bool)
        if target_skin.sum() < 16:
            target_skin = mask
        # Without a mesh the reference may be no face at all: shift the mean, keep the spread.
        warped = transfer_colour(warped, warped_skin & mask, crop, target_skin,
                                 max_gain=2.0 if target is not None else 1.0)
        # The donor's head over the target's own surroundings, with the target's face filled in.
        layer = head * warped + (1.0 - head) * fill_background(crop, mask)
        return np.asarray(np.clip(np.rint(layer), 0, 255), dtype=np.uint8)

    def blend_layer(self, layer: np.ndarray, crop: np.ndarray, mask: np.ndarray,
                    target: np.ndarray | None) -> np.ndarray:
        """Puts ``layer`` into ``crop`` inside ``mask`` (Poisson towards the edge, by default)."""
        x1, y1, x2, y2 = mask_bbox(mask)
        out = crop.copy()
        out[mask] = layer[mask]
        if self.blend == "alpha" or min(x2 - x1, y2 - y1) < _MIN_SEAMLESS_PX:
            return out
        blended = seamless_blend(layer, crop, mask)
        if target is None:
            return blended
        # Poisson blending pulls the face towards the colours at the mask's edge (often hair);
        # inside the face keep the colour-matched donor, Poisson only towards the edge.
        weight = (soft_face_weight(target, crop.shape[:2]) * mask)[..., None]
        mixed = weight * layer.astype(np.float32) + (1.0 - weight) * blended.astype(np.float32)
        return np.asarray(np.clip(np.rint(mixed), 0, 255), dtype=np.uint8)

    def choose(self, crop: np.ndarray, landmarks: np.ndarray | None, seed: int) -> int:
        """Index of the donor for one region.

        The seed alone picks the donor person, uniformly among the allowed ones, so a video
        track (which keeps its seed) keeps one synthetic identity while its pose and expression
        change; that person's view closest in head pose, mouth opening and skin tone is used.
        """
        persons = np.unique(self.donors.person)
        allowed = persons[~np.isin(persons, list(self.exclude_persons))]
        if allowed.size == 0:
            raise ValueError(f"every donor is excluded ({', '.join(self.exclude_persons)}); nothing to swap in")
        person = allowed[np.random.default_rng(seed).integers(allowed.size)]
        others = tuple(str(p) for p in persons if p != person)
        if landmarks is None:
            ranked = rank_donors(self.donors, None, None, None, others)
        else:
            skin = mean_skin_lab(crop, skin_mask(landmarks, crop.shape[:2]))
            ranked = rank_donors(self.donors, head_pose(landmarks), skin, mouth_open(landmarks), others)
        return int(ranked[0])

    def person_of(self, index: int) -> str:
        """Person id of donor ``index``."""
        return str(self.donors.person[index])


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
    """Backward maps placing the donor by its 6 keypoints, or its face oval onto the mask's box."""
    if face6 is not None and (face6[:, 2] > 0).sum() >= 2:
        visible = face6[:, 2] > 0
        src = face6[visible, :2]
        dst = donor_lm[np.array(FACE6_MESH_INDEX)[visible], :2]
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
