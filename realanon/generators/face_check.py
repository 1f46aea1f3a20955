"""Checking rendered faces by what dlib sees: another person, and no twin of the frame's other faces.

Choosing identities by their own canonical faces (:mod:`~realanon.generators.face_choice`) is
not enough: an inner-face replacement keeps the person's hair, head outline and (in profile)
the silhouette of nose, lips and chin, so the rendered face can still be the person for dlib,
and two identities rendered on two look-alike heads (a sheet of one person's faces, a family)
can become twins. So each new face is described once rendered (in its face box, as an
evaluator would) and compared with the original face and with the faces already settled in
its frame (and with the frame's other people: no replaced face may look like any of them).
One too close to any gets, in turn (:func:`settle_face`):

1. the next identities of its seed (at most ``tries`` in all);
2. a whole donor head, hair included (``"head"``); a head that is private but a twin of a face
   already drawn gets the seed's next identities as heads too (``head_tries`` in all): other
   hair changes what dlib sees more than any inner face can;
3. a replacement covering the whole face box (``"cover"``, as for faces without a mesh);
4. a donor face drawn opaque over the whole replace-mask (``"opaque"``, ``opaque_tries``
   identities): the person's own outline and hair inside the mask's margin go too; also for a
   private face whose best rendering so far is still a twin for dlib (closer than 0.6);
5. for a face with a private rendering that is still a twin for the check (closer than
   ``apart``, even if not for dlib's 0.6): the seed's next identities as inner faces again
   (``late_tries``). The check's margin over 0.6 is what absorbs the few pixels by which an
   evaluator's face box differs from the generator's; settling inside it left twins on
   one person's emotion sheet, where the first ``tries`` identities are often used up;
6. a flat fill of the face (``"fill"``), described like the others: kept hair around a flat
   oval can still be the person for dlib, and then the least close of everything drawn is kept
   (fail closed: never the original face). A twin alone never leads to the fill.

A video track's settled face is remembered (:class:`TrackMemory`): while the track keeps its
identity, its face looks like it did on the track's previous frame (:func:`face_look`; track ids
restart with every video, so a seed alone does not name one person), its head does not turn
much and ``recheck`` frames have not passed, later frames are rendered the same way without
describing anything.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from realanon.generators.face_choice import SAME_PERSON
from realanon.structures import GenerationBatch

# Steps after the identities of a seed are used up; "face" is the normal inner-face render.
ESCALATION = ("head", "cover")
# Identities tried as opaque covers of the whole replace-mask (after the cover) at most.
OPAQUE_TRIES = 3
# Whole heads tried per face at most when they are private but twins of faces already drawn.
HEAD_TRIES = 4
# Identities tried again as inner faces at most, after the covers, by a face whose private
# renderings are all twins for the check.
LATE_TRIES = 10
# A track's face is checked again when its head turned by more than this (degrees of yaw) since.
RECHECK_YAW = 20.0
# ... or when its face box's look (:func:`face_look`) correlates less than this with the track's
# previous frame, or its size changed by more than this factor.
SAME_LOOK, SAME_SIZE = 0.8, 1.25
_LOOK_PX = 16
# How the default face replace-mask is drawn around a detection box (``RegionOptions``): an
# ellipse with a quarter of the box's height added above (forehead), grown by ``face_margin`` =
# 0.25 on each side, turned with the eyes. Faces are described in that box, as evaluators do.
MASK_MARGIN, MASK_FOREHEAD = 0.25, 0.25
# A mask's extreme row or column wider than this share of its box was cut by the frame's edge.
CUT_EDGE = 0.3


def face_box(mask: np.ndarray, roll: float = 0.0) -> tuple[float, float, float, float]:
    """The detection box a default face replace-mask was drawn around (see ``MASK_MARGIN``).

    Args:
        mask: ``(h, w)`` bool replace-mask.
        roll: In-plane turn of the face in radians (see :func:`eye_roll`): the ellipse is measured
            along the face's own axes, so a tilted face's box is not the tilted ellipse's
            (wider) axis-aligned extent. A mask cut by the frame's edge is measured unturned
            (see :func:`mask_extent`).

    Returns:
        ``(x1, y1, x2, y2)`` in crop pixels.
    """
    x1, y1, x2, y2 = mask_extent(mask)
    unturned = _box_in_ellipse(((x1 + x2) / 2, (y1 + y2) / 2), ((x2 - x1) / 2, (y2 - y1) / 2), 0.0)
    if roll == 0.0:
        return unturned
    outline = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)[0]
    xs, ys = np.concatenate(outline).reshape(-1, 2).T if outline else (np.zeros(0), np.zeros(0))
    if xs.size == 0 or (x1, y1, x2, y2) != (xs.min(), ys.min(), xs.max() + 1.0, ys.max() + 1.0):
        return unturned  # cut by the frame's edge
    cos, sin = math.cos(roll), math.sin(roll)
    px, py = xs + 0.5, ys + 0.5
    across, down = px * cos + py * sin, py * cos - px * sin  # along the face's own axes
    mid_a, mid_d = (across.max() + across.min()) / 2, (down.max() + down.min()) / 2
    half = ((np.ptp(across) + 1) / 2, (np.ptp(down) + 1) / 2)
    return _box_in_ellipse((mid_a * cos - mid_d * sin, mid_a * sin + mid_d * cos), half, roll)


def _box_in_ellipse(centre: tuple[float, float], half: tuple[float, float],
                    roll: float) -> tuple[float, float, float, float]:
    """The box whose face ellipse has this centre and these semi-axes (the inverse of the region's)."""
    w = 2 * half[0] / (1 + 2 * MASK_MARGIN)
    h = 2 * half[1] / ((1 + MASK_FOREHEAD) * (1 + 2 * MASK_MARGIN))
    # The ellipse's centre sits half the forehead above the box's, along the face's vertical axis.
    cx = centre[0] - math.sin(roll) * MASK_FOREHEAD * h / 2
    cy = centre[1] + math.cos(roll) * MASK_FOREHEAD * h / 2
    return (float(cx - w / 2), float(cy - h / 2), float(cx + w / 2), float(cy + h / 2))


def eye_roll(anchors: np.ndarray | None) -> float:
    """In-plane turn of a face in radians from its ``(right eye, left eye, ...)`` keypoints; 0 unknown."""
    if anchors is None or len(anchors) < 2 or min(anchors[0, 2], anchors[1, 2]) <= 0:
        return 0.0
    right, left = anchors[0], anchors[1]  # the subject's right eye is on the image's left
    return math.atan2(float(left[1] - right[1]), float(left[0] - right[0]))


def mask_extent(mask: np.ndarray) -> tuple[float, float, float, float]:
    """The box of a replace-mask as it was before the frame's edge cut it.

    The pipeline clears the mask outside the frame, so a face at the frame's edge has a mask cut
    by a straight line: its extreme row (or column) there is wide, where an uncut ellipse's is a
    few pixels. Such a side is put back where it mirrors the opposite side about the crop's
    centre (the crop is the region grown evenly on every side). Faces are described in this box
    as evaluators describe them in the detection's box, wherever the frame ends.
    """
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return (0.0, 0.0, float(mask.shape[1]), float(mask.shape[0]))
    x1, y1, x2, y2 = float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)
    cx, cy = mask.shape[1] / 2, mask.shape[0] / 2
    top, bottom = (mask[rows[i]].sum() > CUT_EDGE * (x2 - x1) for i in (0, -1))
    left, right = (mask[:, cols[i]].sum() > CUT_EDGE * (y2 - y1) for i in (0, -1))
    if top != bottom:
        y1, y2 = (min(y1, 2 * cy - y2), y2) if top else (y1, max(y2, 2 * cy - y1))
    if left != right:
        x1, x2 = (min(x1, 2 * cx - x2), x2) if left else (x1, max(x2, 2 * cx - x1))
    return (x1, y1, x2, y2)


def frame_groups(batch: GenerationBatch) -> list[list[int]]:
    """Indices of the regions of each frame of ``batch``, frames in order of first appearance.

    Regions of one frame share the same ``frames`` array object (see ``Anonymizer.make_batch``);
    without ``frames`` the whole batch is one frame.
    """
    if not batch.frames:
        return [list(range(len(batch)))] if len(batch) else []
    groups: dict[int, list[int]] = {}
    for i, frame in enumerate(batch.frames):
        groups.setdefault(id(frame), []).append(i)
    return list(groups.values())


def sub_batch(batch: GenerationBatch, indices: Sequence[int]) -> GenerationBatch:
    """The regions ``indices`` of ``batch`` as a batch of their own."""
    def pick(values: tuple[object, ...]) -> tuple[object, ...]:
        return tuple(values[i] for i in indices) if values else ()

    return GenerationBatch(*(pick(getattr(batch, name)) for name in (  # type: ignore[arg-type]
        "crops", "replace_masks", "keypoints", "keypoint_layouts", "kinds", "seeds", "frames", "tracked")))


def face_look(crop: np.ndarray, box_xyxy: tuple[float, float, float, float]) -> np.ndarray:
    """``(_LOOK_PX**2 + 1,)`` float32: the box's grey thumbnail, zero-mean and unit-norm, then its height."""
    x1, y1, x2, y2 = (int(round(v)) for v in box_xyxy)
    part = crop[max(y1, 0): max(y2, y1 + 1), max(x1, 0): max(x2, x1 + 1)]
    grey = cv2.cvtColor(part, cv2.COLOR_RGB2GRAY) if part.size else np.zeros((1, 1), np.uint8)
    small = cv2.resize(grey, (_LOOK_PX, _LOOK_PX), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    small -= small.mean()
    small /= max(float(np.linalg.norm(small)), 1e-6)
    return np.append(small, np.float32(max(y2 - y1, 1)))


def same_look(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two :func:`face_look` values are one face on consecutive frames."""
    ratio = float(a[-1] / b[-1])
    return float(a[:-1] @ b[:-1]) >= SAME_LOOK and 1 / SAME_SIZE <= ratio <= SAME_SIZE


@dataclass(frozen=True)
class Settled:
    """How one face of a frame was drawn and what dlib sees in it.

    Attributes:
        output: ``(h, w, 3)`` uint8 crop.
        step: ``"face"``, ``"head"``, ``"cover"`` or ``"fill"``.
        descriptor: ``(128,)`` descriptor of the rendered face, or None for a fill (no face).
        margin: Smallest of (distance to the nearest original face - ``private``) and
            (distance to the nearest settled face - ``apart``); >= 0 when both checks pass.
    """

    output: np.ndarray
    step: str
    descriptor: np.ndarray | None
    margin: float


def nearest(descriptor: np.ndarray, others: Sequence[np.ndarray]) -> float:
    """Distance from ``descriptor`` to the nearest of ``others`` (inf when there are none).

    Each may be one ``(128,)`` descriptor or ``(k, 128)``: one face described in ``k`` boxes (see
    :func:`check_boxes`); two with as many boxes are compared box by box, others every pair.
    """
    mine, out = np.atleast_2d(descriptor), float("inf")
    for other in others:
        theirs = np.atleast_2d(other)
        pairs = theirs - mine if len(theirs) == len(mine) else theirs[:, None] - mine[None]
        out = min(out, float(np.min(np.linalg.norm(pairs, axis=-1))))
    return out


def check_boxes(mask: np.ndarray, roll: float) -> list[tuple[float, float, float, float]]:
    """The boxes a face is checked in: its face box, and for a tilted face also the unturned one.

    dlib's descriptor can move by 0.2 or more when the box moves by a pixel on a profile or a
    tilted face, and an evaluator's box is never known exactly: a check must hold in both.
    """
    boxes = [face_box(mask, roll)]
    return boxes if roll == 0.0 else [*boxes, face_box(mask)]


def settle_face(render: Callable[[str], np.ndarray], describe: Callable[[np.ndarray], np.ndarray],
                redraw: Callable[[], bool], fill: Callable[[], np.ndarray], people: Sequence[np.ndarray],
                others: Sequence[np.ndarray], private: float, apart: float, tries: int,
                head_tries: int = HEAD_TRIES, opaque_tries: int = OPAQUE_TRIES,
                late_tries: int = LATE_TRIES) -> Settled:
    """Renders one face until dlib calls it another person and nobody else of the frame.

    Args:
        render: ``step -> crop``: draws the face with the seed's current identity.
        describe: ``crop -> (128,)`` descriptor of the face in its face box.
        redraw: Gives the seed its next identity; False when none is left.
        fill: The flat cover (no face at all).
        people: Descriptors of the original face and of the frame's other original faces (empty
            skips the privacy check).
        others: Descriptors of the frame's faces settled before this one.
        private: Least distance to each of ``people`` (0 turns the check off).
        apart: Least distance to each of ``others`` (0 turns the check off).
        tries: Identities tried with the normal render at most (at least 1).
        head_tries: Identities tried as whole heads at most, while heads are private but twins.
        opaque_tries: Identities tried as opaque covers at most.
        late_tries: Identities tried again as inner faces at most when every private rendering
            is a twin.

    Returns:
        The first rendering that passes both checks; else the best one that is private (the
        twin check alone never ends in a fill); else the fill when it is private; else the
        rendering (fill included) farthest from the people.
    """
    steps = ["face"] * max(tries, 1) + list(ESCALATION) + ["opaque"] * opaque_tries + ["late"] * late_tries
    best: Settled | None = None
    tried: list[tuple[float, Settled]] = []  # (distance to the nearest person - private, rendering)
    drawn: dict[str, int] = {}  # renders so far per step: the first uses the current identity
    while steps:
        step = steps.pop(0)
        if step == "opaque" and best is not None and best.margin >= SAME_PERSON - apart:
            continue  # private, and no twin for dlib (only within the check's margin): no cover
        if step == "late":
            if best is None:
                break  # nothing private: on to the fill
            step = "face"  # private but a twin: more identities
        if drawn.get(step, 0) > 0 and not redraw():
            continue
        drawn[step] = drawn.get(step, 0) + 1
        out = render(step)
        desc = describe(out)
        to_original = nearest(desc, people) - private if private > 0 else np.inf
        to_others = nearest(desc, others) - apart if apart > 0 else np.inf
        settled = Settled(out, step, desc, float(min(to_original, to_others)))
        if settled.margin >= 0:
            return settled
        tried.append((float(to_original), settled))
        if to_original >= 0 and (best is None or settled.margin > best.margin):
            best = settled
        if step == "head" and to_original >= 0 and drawn["head"] < head_tries:
            steps.insert(0, "head")  # private but a twin: another identity's head
    if best is not None:
        return best
    covered = fill()
    to_original = nearest(describe(covered), people) - private if private > 0 else np.inf
    if to_original >= 0:
        return Settled(covered, "fill", None, 0.0)
    # Nothing drawn is another person for dlib: the least close of all (never the original).
    tried.append((float(to_original), Settled(covered, "fill", None, float(to_original))))
    return max(tried, key=lambda t: t[0])[1]


@dataclass
class TrackFace:
    """What a track's last check found.

    Attributes:
        number: Pool number of the identity settled on.
        step: The render step settled on.
        original: Descriptor of the original face at the check (None: none found).
        descriptor: Descriptor of the rendered face (None for a fill).
        yaw: Head yaw at the check (None without a mesh).
        look: :func:`face_look` of the original face on the track's latest frame.
        age: Frames since the check.
    """

    number: int
    step: str
    original: np.ndarray | None
    descriptor: np.ndarray | None
    yaw: float | None
    look: np.ndarray
    age: int = 0


class TrackMemory:
    """Each video track's settled face, reused while it stays valid (least recently used forgotten).

    Args:
        recheck: A track's face is described again after this many frames.
        remember: Tracks remembered at most.
    """

    def __init__(self, recheck: int = 50, remember: int = 4096) -> None:
        self.recheck, self.remember = recheck, remember
        self.faces: OrderedDict[int, TrackFace] = OrderedDict()

    def valid(self, seed: int, number: int | None, yaw: float | None, look: np.ndarray) -> TrackFace | None:
        """``seed``'s remembered face when it still holds for identity ``number``, head ``yaw`` and ``look``."""
        face = self.faces.get(seed)
        if face is None or face.number != number or face.age >= self.recheck or not same_look(face.look, look):
            return None
        if (face.yaw is None) != (yaw is None):
            return None
        if face.yaw is not None and yaw is not None and abs(face.yaw - yaw) > RECHECK_YAW:
            return None
        return face

    def age(self, seed: int, look: np.ndarray) -> None:
        """One more frame for ``seed``'s remembered face, which now looks like ``look``."""
        self.faces[seed].age += 1
        self.faces[seed].look = look
        self.faces.move_to_end(seed)

    def store(self, seed: int, face: TrackFace) -> None:
        """Remembers ``face`` for ``seed`` (replacing an older one)."""
        self.faces[seed] = face
        self.faces.move_to_end(seed)
        while len(self.faces) > self.remember:
            self.faces.popitem(last=False)
