"""The ``donor`` generator: each face replaced by a real-looking face of someone who does not exist.

CPU only, offline, no training; donors come from a bank built by ``scripts/build_donor_bank.py``
from the openpeople package (MIT; 10 synthetic people). For every face region the generator:

1. meshes the face in the crop with mediapipe FaceMesh (478 landmarks);
2. chooses an identity (:mod:`~realanon.generators.face_choice`): blends of two or three donor
   people with a face-shape variation, from a numbered pool ordered by the region's seed,
   at least ``min_distance`` (dlib) from the frame's faces and from each other; for each donor
   person, its view closest in head pose, eye and mouth opening, expression and skin tone is used;
3. ``mode="face"`` (default) replaces the inner face only, brows to chin, keeping hair, ears
   and head outline (:mod:`~realanon.generators.face_render`); ``mode="head"`` pastes the main
   donor's whole head, hair included;
4. in ``mode="face"``, describes each rendered face and redraws it while dlib finds it close to
   the person or to another face of the frame, through whole heads and covers of the whole mask
   to a flat fill, itself checked (:mod:`~realanon.generators.face_check`); a video track's
   settled face is reused.

Without a mesh (tiny, blurred or occluded faces) the blend is placed by the eye keypoints or the
replace-mask's extent and faded in softly; the face box is always fully replaced.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from realanon.generators._util import mask_bbox
from realanon.generators.donor_bank import DEFAULT_BANK, DonorBank
from realanon.generators.donor_head import blend_head, draw_scaled, head_layer
from realanon.generators.donor_views import DonorViews
from realanon.generators.face_check import (
    Settled,
    TrackFace,
    TrackMemory,
    check_boxes,
    eye_roll,
    face_box,
    face_look,
    frame_groups,
    settle_face,
    sub_batch,
)
from realanon.generators.face_choice import IdentityChooser, pool_candidate
from realanon.generators.face_identity import FaceDescriber, Identity, assign_identities
from realanon.generators.face_keep import FaceKeeper
from realanon.generators.face_pool import shipped_pool_table
from realanon.generators.face_render import (
    OPAQUE_RAMP,
    DonorSet,
    FacePlan,
    canonical_face,
    draw_face,
    face_anchors,
    face_span,
    fill_face,
    oval_box,
    plan_inner_face,
    plan_without_mesh,
)
from realanon.generators.face_warp import FaceMesher, head_pose, mesh_groups
from realanon.structures import GenerationBatch

# Default share of the target's face geometry kept, per mode (see ``keep_shape``).
FACE_KEEP_SHAPE, HEAD_KEEP_SHAPE = 0.1, 0.5
# Identities tried per face when its rendered face is too close to the original or to another face.
VERIFY_TRIES = 10
# Face height of the working copy of a head drawn when an inner face was not private or apart
# enough (the donors' faces are about 110 px high: a larger copy adds time, not detail).
HEAD_WORK_FACE_PX = 112


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
        verify_distance: In ``mode="face"``, each rendered face is described (dlib, in its face
            box) and redrawn while it is closer than this to the original: the seed's next
            identities (``VERIFY_TRIES`` in all), then a whole head, then a cover of the face box,
            then opaque covers of the whole mask, then a flat fill, and when even that is close,
            the least close of them (see :mod:`~realanon.generators.face_check`); 0 turns this off.
        twin_distance: In ``mode="face"``, a rendered face closer than this to a face already
            drawn in the same frame is redrawn the same way (never as far as the fill); 0 turns
            this off.
        recheck_frames: A video track's settled face is described again after this many frames
            (or when its head turned by more than 20 degrees); in between it is redrawn without
            any descriptor.
        pool_size: Candidate identities in the pool, drawn over all the bank's people (those with
            an excluded person are skipped). Their descriptors come from the bank's shipped
            table (``pool.npz``, see :mod:`~realanon.generators.face_pool`) when it fits, else
            they are computed once each, when first needed.
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
    twin_distance: float = 0.65
    recheck_frames: int = 50
    pool_size: int = 512
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
        if self.recheck_frames < 1:
            raise ValueError(f"recheck_frames must be at least 1, got {self.recheck_frames}")
        if self.work_face_px < 32:
            raise ValueError(f"work_face_px must be at least 32, got {self.work_face_px}")
        object.__setattr__(self, "exclude_persons", tuple(self.exclude_persons))

    @cached_property
    def donors(self) -> DonorBank:
        """The loaded bank (read on first use)."""
        return DonorBank.load(self.bank or DEFAULT_BANK)

    @cached_property
    def views(self) -> DonorViews:
        """The bank's decoded crops and the choice of views (see :class:`DonorViews`)."""
        return DonorViews(self.donors)

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
    def describer(self) -> FaceDescriber:
        """dlib's face descriptor (loaded on first use)."""
        return FaceDescriber()

    @cached_property
    def person_descriptors(self) -> dict[str, np.ndarray]:
        """Descriptor of each allowed donor person's most frontal view."""
        out = {}
        for person in self.persons:
            index = self.views.best_view(person, {})
            out[person] = self.describer.describe(self.views.image(index), oval_box(self.donors.landmarks[index]))
        return out

    def identities(self, seeds: tuple[int, ...] | list[int], avoid: tuple[str, ...] = ()) -> list[Identity]:
        """One identity per region seed by seed alone, without looking (see :func:`assign_identities`)."""
        return assign_identities(list(seeds), self.persons, self.max_mix, avoid)

    @cached_property
    def chooser(self) -> IdentityChooser:
        """The identity pool, its descriptor cache and each seed's identity (see :class:`IdentityChooser`)."""
        excluded = set(self.exclude_persons)
        return IdentityChooser(self.pool_identity, self.identity_descriptor, self.pool_size, self.min_distance,
                               usable=lambda n: not excluded & set(self.pool_identity(n).persons),
                               known=self.pool_table)

    def pool_identity(self, number: int) -> Identity:
        """Candidate ``number`` of the identity pool (over all the bank's people)."""
        return pool_candidate(number, self.views.all_persons, self.max_mix, self.shape_strength)

    @cached_property
    def pool_table(self) -> np.ndarray | None:
        """Shipped descriptors of the pool's first candidates when they fit this bank and these options."""
        return shipped_pool_table(self.bank or DEFAULT_BANK, self.max_mix, self.shape_strength, self.views.all_persons)

    def identity_descriptor(self, identity: Identity) -> np.ndarray:
        """Descriptor of ``identity``'s own face (its donors' most frontal views, on its shape)."""
        image, landmarks = canonical_face(self.donor_set(identity, None, None))
        return self.describer.describe(image, oval_box(landmarks))

    @property
    def checks(self) -> bool:
        """Whether rendered faces are described and checked (``mode="face"`` with a check distance)."""
        return self.mode == "face" and (self.verify_distance > 0 or self.twin_distance > 0)

    @cached_property
    def steps(self) -> Counter[str]:
        """How many faces were drawn by each step so far (``"face"``, ``"head"``, ``"cover"``, ``"opaque"``,
        ``"fill"``)."""
        return Counter()

    @cached_property
    def tracks(self) -> TrackMemory:
        """Each video track's settled face (see :class:`TrackMemory`)."""
        return TrackMemory(self.recheck_frames)

    def describe_face(self, crop: np.ndarray, mask: np.ndarray, roll: float = 0.0) -> np.ndarray:
        """Descriptor of the face in ``crop``'s face box: ``(128,)``, or ``(2, 128)`` for a tilted face
        (``roll`` radians), described in each of :func:`check_boxes`."""
        described = [self.describer.describe(crop, box) for box in check_boxes(mask, roll)]
        return described[0] if len(described) == 1 else np.stack(described)

    def originals(self, crops: list[np.ndarray], masks: list[np.ndarray], rolls: list[float],
                  known: list[TrackFace | None]) -> list[np.ndarray | None]:
        """Descriptor of each original face (a track's remembered one while valid; None with no check)."""
        if self.min_distance <= 0 and not self.checks:
            return [None] * len(crops)
        return [k.original if k is not None else self.describe_face(c, m, r)
                for c, m, r, k in zip(crops, masks, rolls, known)]

    def choose_identities(self, seeds: tuple[int, ...] | list[int], crops: list[np.ndarray],
                          targets: list[np.ndarray | None]) -> list[Identity]:
        """One identity per region of a frame, none within ``min_distance`` of its faces or of each other."""
        found = [] if self.min_distance <= 0 else [
            self.describer.describe(c, oval_box(t)) for c, t in zip(crops, targets) if t is not None]
        return self.chooser.choose(list(seeds), found)

    def __call__(self, batch: GenerationBatch) -> list[np.ndarray]:
        for kind in batch.kinds:
            if kind != "face":
                raise ValueError(f"the donor generator replaces faces only, got a {kind!r} region")
        out: dict[int, np.ndarray] = {}
        for indices in frame_groups(batch):  # a video batch holds several frames: one after the other
            out.update(zip(indices, self.draw_frame(sub_batch(batch, indices))))
        return [out[i] for i in range(len(batch))]

    def draw_frame(self, batch: GenerationBatch) -> list[np.ndarray]:
        """The replaced faces of one frame's regions."""
        n = len(batch)
        tracked = batch.tracked or (False,) * n
        anchors = [face_anchors(k, lay) for k, lay in zip(batch.keypoints, batch.keypoint_layouts)]
        rolls = [eye_roll(a) for a in anchors]
        boxes = [face_box(m, r) for m, r in zip(batch.replace_masks, rolls)]
        self.keeper.new_frame()
        faces = [self.track_face(*a) for a in zip(batch.seeds, batch.crops, batch.replace_masks, boxes, tracked)]
        targets = [t for t, _ in faces]
        yaws = [None if t is None else float(head_pose(t)[0]) for t in targets]
        looks = [face_look(c, b) if m.any() else np.zeros(1, np.float32)
                 for c, m, b in zip(batch.crops, batch.replace_masks, boxes)]
        known = [self.tracks.valid(s, self.chooser.by_seed.get(s), y, k) if tr and self.checks else None
                 for s, y, k, tr in zip(batch.seeds, yaws, looks, tracked)]
        originals = self.originals(list(batch.crops), list(batch.replace_masks), rolls, known)
        found = [d for d in originals if d is not None]
        identities = self.chooser.choose_around(list(batch.seeds), rows(found),
                                                [None if k is None else k.number for k in known])
        args = [(c, m, a, s, i, t, o) for c, m, a, s, i, (t, o) in zip(batch.crops, batch.replace_masks, anchors,
                                                                       batch.seeds, identities, faces)]
        if not self.checks:
            return [self.render(*a) for a in args]
        outputs: list[np.ndarray | None] = [None] * n
        drawn: list[np.ndarray] = []  # descriptors of the frame's faces drawn so far
        for i, k in enumerate(known):  # tracks whose settled face still holds: drawn as before, nothing described
            if k is not None:
                outputs[i] = self.render(*args[i], step=k.step)
                self.tracks.age(batch.seeds[i], looks[i])
                drawn.extend([] if k.descriptor is None else [k.descriptor])
        for i in sorted((i for i in range(n) if outputs[i] is None), key=lambda i: (batch.seeds[i], i)):
            settled = self.settle(args[i], originals[i], drawn, found, batch.seeds)
            outputs[i] = settled.output
            self.steps[settled.step] += 1
            drawn.extend([] if settled.descriptor is None else [settled.descriptor])
            if tracked[i]:
                self.tracks.store(batch.seeds[i], TrackFace(self.chooser.number(batch.seeds[i]), settled.step,
                                                            originals[i], settled.descriptor, yaws[i], looks[i]))
        return [o for o in outputs if o is not None]

    def settle(self, args: tuple[Any, ...], original: np.ndarray | None, drawn: list[np.ndarray],
               found: list[np.ndarray], seeds: tuple[int, ...]) -> Settled:
        """Draws one face until it passes the checks (see :func:`settle_face`)."""
        crop, mask, face6, seed, identity, target, crowded = args
        current = [identity]
        scene = [] if original is None else [original, *found]  # no replaced face may be any of the frame's people
        roll = eye_roll(face6)

        def redraw() -> bool:
            self.chooser.reject(seed)
            taken = [self.chooser.number(s) for s in seeds if s != seed and s in self.chooser.by_seed]
            # Away from the faces of the frame and, as rendered, from the faces already drawn in it.
            current[0] = self.chooser.choose([seed], rows([*found, *drawn]), taken)[0]
            return True

        return settle_face(lambda step: self.render(crop, mask, face6, seed, current[0], target, crowded, step),
                           lambda out: self.describe_face(out, mask, roll), redraw, lambda: fill_face(crop, mask),
                           scene, drawn, self.verify_distance, self.twin_distance, VERIFY_TRIES)

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
               identity: Identity, target: np.ndarray | None, crowded: bool = False, step: str = "face") -> np.ndarray:
        """Draws ``identity`` into the masked face of ``crop`` (``target``: its mesh, or None).

        ``crowded``: without a mesh of its own, the mask holds another person's face (an
        overlapping detection, drawn from the same original pixels): the replacement is opaque
        over the whole mask, as fading it out would bring that face back over its own replacement.

        ``step`` (see :mod:`~realanon.generators.face_check`): ``"face"`` draws as ``mode`` says,
        ``"head"`` a whole head, ``"cover"`` the meshless replacement over the whole face box,
        ``"opaque"`` a face opaque over the whole mask, placed by the mask alone, ``"fill"`` no face at all.
        """
        if not mask.any():
            return crop.copy()
        if step == "fill":
            return fill_face(crop, mask)
        if self.mode == "head" or step == "head":
            index = self.views.best_view(identity.main, self.views.features(crop, target))

            def head(c: np.ndarray, m: np.ndarray, t: np.ndarray | None, a: np.ndarray | None) -> np.ndarray:
                layer = head_layer(c, m, t, a, self.views.image(index), self.donors.landmarks[index],
                                   self.donors.alpha[index], self.donors.triangles, float(self.keep_shape or 0.0))
                return blend_head(layer, c, m, t, self.blend)

            # An escalated head is drawn on a copy where the face is about as high as the donors' faces.
            face_px = face_span(target) if target is not None else float(np.ptp(np.flatnonzero(mask.any(axis=1))))
            scale = 1.0 if self.mode == "head" else min(1.0, HEAD_WORK_FACE_PX / max(face_px, 1.0))
            return draw_scaled(head, crop, mask, target, face6, scale)
        if target is None and crowded and step in ("face", "cover"):
            step = "opaque"
        plan = self.keeper.plan(seed, (identity, step), crop.shape,
                                lambda: self.plan_face(crop, mask, face6, identity, target, step))
        return crop.copy() if plan is None else draw_face(crop, mask, plan, seed)

    def plan_face(self, crop: np.ndarray, mask: np.ndarray, face6: np.ndarray | None, identity: Identity,
                  target: np.ndarray | None, step: str) -> FacePlan | None:
        """The pixel-independent part of drawing ``identity`` by ``step`` (see :meth:`render`)."""
        donors = self.donor_set(identity, crop, target)
        if step == "opaque":
            return plan_without_mesh(crop, mask, face6 if target is None else None, donors, self.work_face_px,
                                     OPAQUE_RAMP)
        if target is None or step == "cover":
            return plan_without_mesh(crop, mask, face6, donors, self.work_face_px)
        return plan_inner_face(crop, mask, target, donors, float(self.keep_shape or 0.0), self.keep_features,
                               self.work_face_px)

    @cached_property
    def keeper(self) -> FaceKeeper:
        """Each video track's face mesh and planned face, reused while its face stays put (see :class:`FaceKeeper`)."""
        return FaceKeeper()

    def track_face(self, seed: int, crop: np.ndarray, mask: np.ndarray, box_xyxy: tuple[float, float, float, float],
                   tracked: bool) -> tuple[np.ndarray | None, bool]:
        """:meth:`find_face` of a region; a video track's is reused while its face stays put."""
        if not mask.any():
            return None, False
        if not tracked:
            return self.find_face(crop, mask)
        return self.keeper.face(seed, crop, box_xyxy, lambda: self.find_face(crop, mask))

    def find_target(self, crop: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
        """The face mesh of the masked face, or None when none is found or it is not that face (see :meth:`find_face`)."""
        return self.find_face(crop, mask)[0]

    def find_face(self, crop: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray | None, bool]:
        """The face mesh of the masked face (or None), and whether the mask holds another face instead.

        A mesh counts only when its centre lies inside the mask and its height is at least a
        third of the mask's (the mask is the face box grown by a margin); otherwise the
        fallback replaces the whole masked face. Any other mesh centred inside the mask's box is
        another person's face (an overlapping detection).
        """
        x1, y1, x2, y2 = mask_bbox(mask)
        target = self.mesher.nearest_face(crop, ((x1 + x2) / 2, (y1 + y2) / 2))
        if target is None:
            return None, False
        cx, cy = np.round(target[mesh_groups()["oval"], :2].mean(axis=0)).astype(int)
        inside = 0 <= cy < mask.shape[0] and 0 <= cx < mask.shape[1] and bool(mask[cy, cx])
        if inside and face_span(target) >= (y2 - y1) / 3:
            return target, False
        return None, bool(x1 <= cx < x2 and y1 <= cy < y2)

    def donor_set(self, identity: Identity, crop: np.ndarray | None, target: np.ndarray | None) -> DonorSet:
        """The views of the identity's donor people that best fit the target (None: most frontal)."""
        return self.views.donor_set(identity, self.views.features(crop, target))

    def choose(self, crop: np.ndarray, landmarks: np.ndarray | None, seed: int) -> int:
        """Index of the main donor's view for one region drawn from ``seed`` alone.

        The seed alone picks the identity (its main donor person, uniformly among the allowed
        ones), so a video track keeps one synthetic identity while its pose and expression
        change; that person's view closest in pose, eyes, mouth, expression and skin tone is used.
        """
        return self.views.best_view(self.identities([seed])[0].main, self.views.features(crop, landmarks))

    def person_of(self, index: int) -> str:
        """Person id of donor ``index``."""
        return self.views.person_of(index)


def rows(descriptors: list[np.ndarray]) -> list[np.ndarray]:
    """Every ``(128,)`` descriptor of ``descriptors`` (a face described in several boxes gives several)."""
    return [row for d in descriptors for row in np.atleast_2d(d)]
