"""What a video track's face keeps from frame to frame: its face mesh and its planned inner face.

FaceMesh and the donors' warp are most of the inner-face donor's time per face. The crop follows
the track's detection, so a still or slowly moving person's face stays at about the same place
in it. For each track the grey crop of the frame its mesh was found on is kept; a later frame's
face area is aligned to it by the best whole-pixel shift (phase correlation) and, while the two
agree (normalized correlation at least ``SAME_FACE``), the mesh is that frame's moved by the
shift and the planned face (:class:`~realanon.generators.face_render.FacePlan`) is moved
with it: only the tone, histograms and grain are fitted to the new frame's pixels. When the face
moved further, turned, or changed its expression, FaceMesh runs again and the plans are redone.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import cv2
import numpy as np

from realanon.generators.face_render import FacePlan

# Aligned grey face areas correlating at least this much are the same face, pose and expression.
SAME_FACE = 0.98
# A face shifted by more than this share of its box's width in its crop is looked at again.
MAX_SHIFT = 0.1
# Faces are compared on a grid about this many points wide.
_COMPARE_PX = 96
# Plans kept per track at most (one per identity drawn, while the check redraws).
PLANS_PER_TRACK = 4


def aligned_shift(reference: np.ndarray, current: np.ndarray,
                  box_xyxy: tuple[float, float, float, float]) -> tuple[int, int] | None:
    """The whole-pixel shift of the face from ``reference`` to ``current``, or None when it changed.

    Args:
        reference: ``(h, w)`` float32 grey crop the mesh was found on.
        current: ``(h', w')`` float32 grey crop of the same track on a later frame.
        box_xyxy: Face box in crop pixels (compared there).

    Returns:
        ``(dx, dy)``: the face is at ``reference``'s place plus ``(dx, dy)`` in ``current``.
    """
    h, w = current.shape  # a crop's size may change by a pixel as its detection moves
    x1, y1, x2, y2 = (int(round(v)) for v in box_xyxy)
    x1, y1 = max(x1, 0), max(y1, 0)
    x2, y2 = min(x2, w, reference.shape[1]), min(y2, h, reference.shape[0])
    if x2 - x1 < 8 or y2 - y1 < 8:
        return None
    window = cv2.createHanningWindow((x2 - x1, y2 - y1), cv2.CV_32F)
    # Copies: phaseCorrelate may apply the window to its inputs in place.
    (sx, sy), _ = cv2.phaseCorrelate(reference[y1:y2, x1:x2].copy(), current[y1:y2, x1:x2].copy(), window)
    step = max(1, (x2 - x1) // _COMPARE_PX)  # compared on a sparse grid: the same answer, cheaper
    a = reference[y1:y2:step, x1:x2:step]
    a = a - a.mean()
    best, best_shift = -1.0, (0, 0)
    # The estimate is rough on a small face: the best whole-pixel shift next to it is taken.
    for dy in range(int(round(sy)) - 1, int(round(sy)) + 2):
        for dx in range(int(round(sx)) - 1, int(round(sx)) + 2):
            if max(abs(dx), abs(dy)) > MAX_SHIFT * (x2 - x1) or min(x1 + dx, y1 + dy) < 0 \
                    or x2 + dx > w or y2 + dy > h:
                continue
            b = current[y1 + dy: y2 + dy: step, x1 + dx: x2 + dx: step]
            b = b - b.mean()
            same = float((a * b).sum()) / max(float(np.sqrt((a * a).sum() * (b * b).sum())), 1e-6)
            if same > best:
                best, best_shift = same, (dx, dy)
    return best_shift if best >= SAME_FACE else None


@dataclass
class KeptFace:
    """One track's face as found on the frame its mesh comes from.

    Attributes:
        grey: ``(h, w)`` float32 grey crop of that frame.
        target: ``(478, 3)`` mesh in that crop's pixels, or None when none was found.
        flag: What the finder said besides (see :meth:`FaceKeeper.face`).
        plans: Per key (identity), the planned inner face and the shift it was made at.
    """

    grey: np.ndarray
    target: np.ndarray | None
    flag: bool
    plans: OrderedDict[Hashable, tuple[FacePlan | None, tuple[int, int]]] = field(default_factory=OrderedDict)


class FaceKeeper:
    """Each video track's kept face (least recently used forgotten), and where it is on this frame.

    Args:
        remember: Tracks kept at most (a plan holds a few working-size arrays).
    """

    def __init__(self, remember: int = 256) -> None:
        self.remember = remember
        self.faces: OrderedDict[int, KeptFace] = OrderedDict()
        self.shifts: dict[int, tuple[int, int]] = {}  # per track seen on this frame: its face's shift

    def new_frame(self) -> None:
        """Forgets where faces were on the previous frame (a plan is reused only for a track of this frame)."""
        self.shifts.clear()

    def face(self, seed: int, crop: np.ndarray, box_xyxy: tuple[float, float, float, float],
             find: Callable[[], tuple[np.ndarray | None, bool]]) -> tuple[np.ndarray | None, bool]:
        """Track ``seed``'s face mesh on this frame: the kept one moved, or ``find()`` (then kept).

        Args:
            seed: The track's seed.
            crop: ``(h, w, 3)`` uint8 RGB crop of this frame.
            box_xyxy: The face box in crop pixels.
            find: Finds the mesh anew (FaceMesh): ``(mesh or None, flag)``; the flag is kept with it.
        """
        grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
        kept = self.faces.get(seed)
        shift = None if kept is None else aligned_shift(kept.grey, grey, box_xyxy)
        if kept is not None and shift is not None:
            self.faces.move_to_end(seed)
            self.shifts[seed] = shift
            moved = None if kept.target is None else kept.target + np.array([shift[0], shift[1], 0], np.float32)
            return moved, kept.flag
        target, flag = find()
        self.faces[seed] = KeptFace(grey, target, flag)
        self.faces.move_to_end(seed)
        self.shifts[seed] = (0, 0)
        while len(self.faces) > self.remember:
            self.faces.popitem(last=False)
        return target, flag

    def plan(self, seed: int, key: Hashable, size_hw: tuple[int, ...],
             make: Callable[[], FacePlan | None]) -> FacePlan | None:
        """Track ``seed``'s planned face for ``key`` on this frame: the kept one moved, or ``make()``.

        Untracked faces (no :meth:`face` on this frame) always get ``make()``.
        """
        shift = self.shifts.get(seed)
        if shift is None:
            return make()
        plans = self.faces[seed].plans
        if key in plans:
            plan, made_at = plans[key]
            moved = None if plan is None else plan.shifted(shift[0] - made_at[0], shift[1] - made_at[1], size_hw)
            if moved is not None or plan is None:
                return moved
        plan = make()
        plans[key] = (plan, shift)
        plans.move_to_end(key)
        while len(plans) > PLANS_PER_TRACK:
            plans.popitem(last=False)
        return plan
