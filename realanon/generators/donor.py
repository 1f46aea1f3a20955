"""The ``donor`` generator: each face replaced by a real-looking face of someone who does not exist.

CPU only, offline, no training. Donors come from a bank built by
``scripts/build_donor_bank.py`` from the openpeople package (MIT; 10 synthetic people).
For every face region the generator:

1. meshes the face in the crop with mediapipe FaceMesh (478 landmarks);
2. chooses an identity by rejection in dlib's descriptor space
   (:mod:`~realanon.generators.face_choice`): candidates are blends of two or three donor
   people with a face-shape variation, from a numbered pool whose descriptors are computed
   once; the region's seed orders the pool and the first candidate at least ``min_distance``
   from every meshed face of the frame and every identity already given in it is taken (a
   video track keeps its seed and so its identity); for each donor person, its view closest
   in head pose, eye and mouth opening and skin tone is used;
3. ``mode="face"`` (default) replaces the inner face only, brows to chin and cheek to cheek,
   keeping the person's hair, ears and head outline: the donors are warped onto one geometry
   near theirs (eyes and lips nearer the target's, so closed eyes and open mouths carry over),
   blended, given the target's skin tone and light, and eased in
   (:mod:`~realanon.generators.face_render`);
   ``mode="head"`` pastes the main donor's whole head, hair included, warped onto the
   target's landmarks and colour-matched (the older behaviour).

When no mesh is found (tiny, blurred or occluded faces) the blend is placed by a similarity
transform fitted to the region's eye keypoints, or to the replace-mask's extent, and faded
in softly over the replace-mask; the face box is always fully replaced.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from realanon.generators._util import mask_bbox
from realanon.generators.donor_bank import DEFAULT_BANK, DonorBank, rank_donors
from realanon.generators.donor_head import blend_head, head_layer
from realanon.generators.face_choice import IdentityChooser, pool_candidate
from realanon.generators.face_identity import FaceDescriber, Identity, assign_identities
from realanon.generators.face_inner import eyes_open
from realanon.generators.face_render import DonorSet, canonical_face, replace_inner_face, replace_without_mesh
from realanon.generators.face_warp import (
    FACE6_MESH_INDEX,
    FaceMesher,
    head_pose,
    mean_skin_lab,
    mesh_groups,
    mouth_open,
    skin_mask,
)
from realanon.structures import GenerationBatch

# Default share of the target's face geometry kept, per mode (see ``keep_shape``).
FACE_KEEP_SHAPE, HEAD_KEEP_SHAPE = 0.1, 0.5
# Identities tried per face when its rendered face is too close to the original.
VERIFY_TRIES = 3


@dataclass(frozen=True)
class DonorFaceSwap:
    """Replaces every face with a blended identity of donor faces from the bank.

    Args:
        bank: Path of ``bank.npz``; None uses ``weights/donors/bank.npz`` of this checkout.
        exclude_persons: Donor person ids never used (e.g. the person being anonymized,
            when it is one of the bank's people).
        keep_shape: How much of the target's own face geometry the new face keeps, in
            [0, 1]: 1 warps the donors exactly onto the target's landmarks (face shape follows
            the target, which also carries identity); 0 keeps the donors' own shape. None:
            ``FACE_KEEP_SHAPE`` in ``mode="face"`` (inside the kept head outline, the target's
            geometry is what identifies it most), ``HEAD_KEEP_SHAPE`` in ``mode="head"``.
        blend: ``"seamless"`` (Poisson blending) or ``"alpha"`` (copy; ``mode="head"`` only).
        target: What the pipeline replaces; only ``"face"`` is supported.
        mode: ``"face"`` replaces the inner face and keeps hair, ears and head outline;
            ``"head"`` pastes a whole donor head, hair included.
        max_mix: Donor people blended per identity at most (2 or 3 drawn per seed; 1 = none).
        keep_features: Share of the target's eye and lip geometry kept (``mode="face"``), so
            closed eyes and open mouths carry over; at least ``keep_shape``.
        work_face_px: Face height of the working copy in ``mode="face"`` (speed; the donors are
            about 110 px high).
        min_distance: A new identity is taken only when its descriptor (dlib; 0.6 = same
            person) is at least this far from every meshed face of the frame and from every
            identity already given in the frame (else the farthest of the candidates tried); a
            seed keeps its identity while it stays 0.6 away. 0 turns the check (and its cost, one
            descriptor per face) off: the seed alone picks from the pool.
        verify_distance: In ``mode="face"``, each replaced face is described once more (per
            seed and identity) and its identity redrawn while it is closer than this to the
            original (at most ``VERIFY_TRIES`` times); 0 turns this off. Needs ``min_distance > 0``.
        pool_size: Candidate identities in the pool (their descriptors are computed once each,
            when first needed).
        shape_strength: Size of the seeded face-shape variation (0: none; see
            :mod:`~realanon.generators.face_variation`).
    """

    bank: str | None = None
    exclude_persons: tuple[str, ...] = ()
    keep_shape: float | None = None
    blend: str = "seamless"
    target: str = "face"
    mode: str = "face"
    max_mix: int = 3
    keep_features: float = 0.3
    work_face_px: int = 160
    min_distance: float = 0.75
    verify_distance: float = 0.65
    pool_size: int = 64
    shape_strength: float = 1.0

    def __post_init__(self) -> None:
        if self.target != "face":
            raise ValueError(f"the donor generator replaces faces only, got target={self.target!r}")
        if self.keep_shape is None:
            object.__setattr__(self, "keep_shape", FACE_KEEP_SHAPE if self.mode == "face" else HEAD_KEEP_SHAPE)
        for name in ("keep_shape", "keep_features"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.blend not in ("seamless", "alpha"):
            raise ValueError(f"blend must be seamless or alpha, got {self.blend!r}")
        if self.mode not in ("face", "head"):
            raise ValueError(f"mode must be face or head, got {self.mode!r}")
        if not 1 <= self.max_mix <= 3:
            raise ValueError(f"max_mix must be 1, 2 or 3, got {self.max_mix}")
        if self.pool_size < 1 or self.shape_strength < 0:
            raise ValueError(f"pool_size must be >= 1 and shape_strength >= 0, got {self.pool_size}, "
                             f"{self.shape_strength}")
        if self.work_face_px < 32:
            raise ValueError(f"work_face_px must be at least 32, got {self.work_face_px}")
        object.__setattr__(self, "exclude_persons", tuple(self.exclude_persons))

    @cached_property
    def donors(self) -> DonorBank:
        """The loaded bank (read on first use)."""
        return DonorBank.load(self.bank or DEFAULT_BANK)

    @cached_property
    def mesher(self) -> FaceMesher:
        """The FaceMesh graph (built on first use)."""
        return FaceMesher()

    @cached_property
    def persons(self) -> tuple[str, ...]:
        """Allowed donor person ids, sorted."""
        persons = np.unique(self.donors.person)
        allowed = tuple(str(p) for p in persons if p not in self.exclude_persons)
        if not allowed:
            raise ValueError(f"every donor is excluded ({', '.join(self.exclude_persons)}); nothing to swap in")
        return allowed

    @cached_property
    def eye_opening(self) -> np.ndarray:
        """``(N,)`` eye opening of every donor view (see :func:`face_inner.eyes_open`)."""
        return np.array([eyes_open(lm) for lm in self.donors.landmarks], dtype=np.float32)

    @cached_property
    def describer(self) -> FaceDescriber:
        """dlib's face descriptor (loaded on first use)."""
        return FaceDescriber()

    @cached_property
    def person_descriptors(self) -> dict[str, np.ndarray]:
        """Descriptor of each allowed donor person's most frontal view."""
        out = {}
        for person in self.persons:
            index = int(rank_donors(self.donors, None, None, None, tuple(p for p in self.persons if p != person)
                                    + self.exclude_persons)[0])
            out[person] = self.describer.describe(self.donors.image(index), _oval_box(self.donors.landmarks[index]))
        return out

    def identities(self, seeds: tuple[int, ...] | list[int], avoid: tuple[str, ...] = ()) -> list[Identity]:
        """One identity per region seed by seed alone, without looking (see :func:`assign_identities`)."""
        return assign_identities(list(seeds), self.persons, self.max_mix, avoid)

    @cached_property
    def chooser(self) -> IdentityChooser:
        """The identity pool, its descriptor cache and each seed's identity (see :class:`IdentityChooser`)."""
        return IdentityChooser(lambda n: pool_candidate(n, self.persons, self.max_mix, self.shape_strength),
                               self.identity_descriptor, self.pool_size, self.min_distance)

    def identity_descriptor(self, identity: Identity) -> np.ndarray:
        """Descriptor of ``identity``'s own face (its donors' most frontal views, on its shape)."""
        image, landmarks = canonical_face(self.donor_set(identity, None, None))
        return self.describer.describe(image, _oval_box(landmarks))

    def originals(self, crops: list[np.ndarray], targets: list[np.ndarray | None]) -> list[np.ndarray | None]:
        """Descriptor of each meshed face (None where unmeshed, or everywhere with ``min_distance = 0``)."""
        if self.min_distance <= 0:
            return [None] * len(crops)
        return [None if t is None else self.describer.describe(c, _oval_box(t)) for c, t in zip(crops, targets)]

    def choose_identities(self, seeds: tuple[int, ...] | list[int], crops: list[np.ndarray],
                          targets: list[np.ndarray | None]) -> list[Identity]:
        """One identity per region of a frame, none within ``min_distance`` of its faces or of each other."""
        found = [d for d in self.originals(crops, targets) if d is not None]
        return self.chooser.choose(list(seeds), found)

    def verified(self, out: np.ndarray, args: tuple[Any, ...], original: np.ndarray | None,
                 found: list[np.ndarray], seeds: tuple[int, ...]) -> np.ndarray:
        """``out`` (rendered from ``args`` of :meth:`render`) once its face is ``verify_distance`` from the original.

        Otherwise the seed's identity is rejected and the next one drawn, up to ``VERIFY_TRIES``
        times. A seed's (identity, face) pair that passed once is not described again.
        """
        crop, mask, face6, seed, _, target = args
        if original is None or target is None or self.verify_distance <= 0 or self.mode != "face":
            return out
        for _ in range(VERIFY_TRIES):
            number = self.chooser.number(seed)
            if (seed, number) in self.chooser.verified:
                return out
            if float(np.linalg.norm(self.describer.describe(out, _oval_box(target)) - original)) >= \
                    self.verify_distance:
                self.chooser.verified.add((seed, number))
                return out
            self.chooser.reject(seed)
            taken = [self.chooser.number(s) for s in seeds if s != seed and s in self.chooser.by_seed]
            identity = self.chooser.choose([seed], found, taken)[0]
            out = self.render(crop, mask, face6, seed, identity, target)
        return out

    def __call__(self, batch: GenerationBatch) -> list[np.ndarray]:
        for kind in batch.kinds:
            if kind != "face":
                raise ValueError(f"the donor generator replaces faces only, got a {kind!r} region")
        targets = [self.find_target(c, m) if m.any() else None for c, m in zip(batch.crops, batch.replace_masks)]
        originals = self.originals(list(batch.crops), targets)
        found = [d for d in originals if d is not None]
        identities = self.chooser.choose(list(batch.seeds), found)
        outputs = []
        for args, original in zip(zip(batch.crops, batch.replace_masks,
                                      [face_anchors(k, lay) for k, lay in zip(batch.keypoints, batch.keypoint_layouts)],
                                      batch.seeds, identities, targets), originals):
            outputs.append(self.verified(self.render(*args), args, original, found, batch.seeds))
        return outputs

    def swap(self, crop: np.ndarray, mask: np.ndarray, face6: np.ndarray | None, seed: int,
             identity: Identity | None = None) -> np.ndarray:
        """Replaces the masked face of one crop.

        Args:
            crop: ``(h, w, 3)`` uint8 RGB crop with context.
            mask: ``(h, w)`` bool replace-mask.
            face6: Optional ``(K, 3)`` face keypoints in crop pixels starting with the right
                eye, left eye and (optionally) nose tip (see :func:`face_anchors`); used when
                no mesh is found.
            seed: The region's seed; the same seed gives the same output.
            identity: The identity to draw; None draws it from ``seed`` alone.

        Returns:
            ``(h, w, 3)`` uint8 RGB; pixels outside ``mask`` equal ``crop``.
        """
        if not mask.any():
            return crop.copy()
        target = self.find_target(crop, mask)
        if identity is None:
            identity = self.choose_identities([seed], [crop], [target])[0]
        return self.render(crop, mask, face6, seed, identity, target)

    def render(self, crop: np.ndarray, mask: np.ndarray, face6: np.ndarray | None, seed: int,
               identity: Identity, target: np.ndarray | None) -> np.ndarray:
        """Draws ``identity`` into the masked face of ``crop`` (``target``: its mesh, or None)."""
        if not mask.any():
            return crop.copy()
        if self.mode == "head":
            index = self.best_view(identity.main, crop, target)
            layer = self.donor_layer(crop, mask, target, face6, index)
            return self.blend_layer(layer, crop, mask, target)
        donors = self.donor_set(identity, crop, target)
        if target is None:
            return replace_without_mesh(crop, mask, face6, donors, self.work_face_px, seed)
        return replace_inner_face(crop, mask, target, donors, float(self.keep_shape or 0.0), self.keep_features,
                                  self.work_face_px, seed)

    def find_target(self, crop: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
        """The face mesh of the masked face, or None when none is found or it is not that face.

        A mesh counts only when its centre lies inside the mask and its height is at least a
        third of the mask's (the mask is the face box grown by a margin); otherwise the
        fallback replaces the whole masked face.
        """
        x1, y1, x2, y2 = mask_bbox(mask)
        target = self.mesher.nearest_face(crop, ((x1 + x2) / 2, (y1 + y2) / 2))
        if target is None:
            return None
        cx, cy = np.round(target[mesh_groups()["oval"], :2].mean(axis=0)).astype(int)
        inside = 0 <= cy < mask.shape[0] and 0 <= cx < mask.shape[1] and bool(mask[cy, cx])
        return target if inside and face_span(target) >= (y2 - y1) / 3 else None

    def donor_set(self, identity: Identity, crop: np.ndarray | None, target: np.ndarray | None) -> DonorSet:
        """The views of the identity's donor people that best fit the target (None: most frontal)."""
        wanted = {} if crop is None else self.target_features(crop, target)
        indices = [self.best_view(p, crop, target, wanted) for p in identity.persons]
        return DonorSet(
            tuple(self.donors.image(i) for i in indices),
            tuple(self.donors.landmarks[i] for i in indices),
            np.asarray(identity.weights, dtype=np.float32),
            self.donors.triangles,
            identity.shape,
        )

    def target_features(self, crop: np.ndarray | None, landmarks: np.ndarray | None) -> dict[str, Any]:
        """What donor views are matched on: head pose, skin colour, mouth and eye opening."""
        if landmarks is None or crop is None:
            return {}
        return {"pose": head_pose(landmarks), "skin_lab": mean_skin_lab(crop, skin_mask(landmarks, crop.shape[:2])),
                "mouth": mouth_open(landmarks), "eyes": eyes_open(landmarks)}

    def best_view(self, person: str, crop: np.ndarray | None, landmarks: np.ndarray | None,
                  features: dict[str, Any] | None = None) -> int:
        """Index of ``person``'s view closest to the target in pose, mouth, eyes and skin tone.

        ``features`` (from :meth:`target_features`) saves measuring the target again.
        """
        others = tuple(str(p) for p in np.unique(self.donors.person) if p != person)
        f = self.target_features(crop, landmarks) if features is None else features
        if not f:
            return int(rank_donors(self.donors, None, None, None, others)[0])
        ranked = rank_donors(self.donors, f["pose"], f["skin_lab"], f["mouth"], others,
                             eyes=f["eyes"], donor_eyes=self.eye_opening)
        return int(ranked[0])

    def donor_layer(self, crop: np.ndarray, mask: np.ndarray, target: np.ndarray | None,
                    face6: np.ndarray | None, index: int) -> np.ndarray:
        """Donor ``index``'s whole head warped onto the crop (``mode="head"``; see :func:`head_layer`)."""
        bank = self.donors
        return head_layer(crop, mask, target, face6, bank.image(index), bank.landmarks[index], bank.alpha[index],
                          bank.triangles, float(self.keep_shape or 0.0))

    def blend_layer(self, layer: np.ndarray, crop: np.ndarray, mask: np.ndarray,
                    target: np.ndarray | None) -> np.ndarray:
        """Puts ``layer`` into ``crop`` inside ``mask`` (see :func:`blend_head`)."""
        return blend_head(layer, crop, mask, target, self.blend)

    def choose(self, crop: np.ndarray, landmarks: np.ndarray | None, seed: int) -> int:
        """Index of the main donor's view for one region drawn from ``seed`` alone.

        The seed alone picks the identity (its main donor person, uniformly among the allowed
        ones), so a video track keeps one synthetic identity while its pose and expression
        change; that person's view closest in pose, eyes, mouth and skin tone is used.
        """
        return self.best_view(self.identities([seed])[0].main, crop, landmarks)

    def person_of(self, index: int) -> str:
        """Person id of donor ``index``."""
        return str(self.donors.person[index])


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


def _oval_box(landmarks: np.ndarray) -> tuple[float, float, float, float]:
    """Box of the face oval, trimmed at the top to about dlib's brows-to-chin face box."""
    oval = landmarks[mesh_groups()["oval"], :2]
    (x1, y1), (x2, y2) = oval.min(axis=0), oval.max(axis=0)
    return (float(x1), float(y1 + 0.2 * (y2 - y1)), float(x2), float(y2))


def face_span(landmarks: np.ndarray) -> float:
    """Vertical extent of the face oval in pixels."""
    return float(np.ptp(landmarks[mesh_groups()["oval"], 1]))
