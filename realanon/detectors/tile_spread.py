"""Which tiles a tiled detector searches on each call: all of them, or one group in turn in tracked video.

In tracked video (:class:`~realanon.interfaces.TrackedSearch`) a tiled search can be spread
over frames: the tiles are dealt into ``spread`` interleaved groups (tile ``i`` in group
``i % spread``) and each call searches the next group, so every tile is searched once every
``spread`` calls. Between its turns a person found in a tile is carried by the tracker
(coasting, ``max_age`` frames), and a person first found on its tile's turn is carried back
over the frames before by the tracker's look-ahead. The first call, a new frame size and a
scene cut (the mean absolute grey difference from the previous frame, at 1/16 resolution,
reaching ``cut_threshold``) search every tile at once. Photos, untracked video and a detector
never told it is tracked search every tile on every call.

With ``follow``, the schedule also remembers the people found on each call (:meth:`TileSpread.remember`),
so that a call that searches only some tiles can look for them again in crops around their last
boxes (:meth:`TileSpread.followed`): a person is then found afresh on every frame rather than
carried by the tracker's prediction until their tile's turn. A person not found again is still
looked for on the next :data:`FOLLOW_CALLS` calls, at their last box.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import cv2
import numpy as np

from realanon.detectors._boxes import box_iou

T = TypeVar("T")
# A followed person not found again is looked for this many more calls (the tracker's default max_age).
FOLLOW_CALLS = 8


def spread_group(items: Sequence[T], groups: int, turn: int) -> list[T]:
    """Group ``turn % groups`` of ``items`` dealt into ``groups`` interleaved groups."""
    groups = max(1, min(groups, len(items)))
    return list(items[turn % groups :: groups])


class TileSpread:
    """Decides, call by call, which of a frame's tiles to search.

    Args:
        spread: In tracked video, the tiles are searched over this many calls (1: all every call).
        cut_threshold: Mean absolute grey difference (0-255) from the previous frame, at 1/16
            resolution, from which a frame counts as a scene cut and every tile is searched.
        follow: Remember the people found (:meth:`remember`) for the detector to look for them
            again on calls that search only some tiles (:meth:`followed`).
    """

    def __init__(self, spread: int = 4, cut_threshold: float = 20.0, follow: bool = False) -> None:
        if spread < 1 or cut_threshold < 0:
            raise ValueError(f"spread must be >= 1 and cut_threshold >= 0, got {spread}, {cut_threshold}")
        self.spread = int(spread)
        self.cut_threshold = float(cut_threshold)
        self.follow = bool(follow)
        self.tracked = False
        self._thumb: np.ndarray | None = None
        self._turn = 0
        self._followed = np.zeros((0, 4))  # XYXY boxes of people found on earlier calls
        self._missed = np.zeros(0, dtype=int)  # calls since each was last found

    def set_tracked(self, tracked: bool) -> None:
        """Tracked video on or off; either way the next call searches every tile."""
        self.tracked = bool(tracked)
        self.reset()

    def reset(self) -> None:
        """Forgets earlier frames: the next call searches every tile."""
        self._thumb = None
        self._turn = 0
        self._followed, self._missed = np.zeros((0, 4)), np.zeros(0, dtype=int)

    def groups(self, tiles: int) -> int:
        """How many calls one full search of ``tiles`` tiles takes in tracked video."""
        return max(1, min(self.spread, tiles))

    def tiles_now(self, image: np.ndarray, tiles: Sequence[T]) -> list[T]:
        """The tiles to search in ``image`` on this call (all of them unless tracked and spread)."""
        if not self.tracked or self.groups(len(tiles)) == 1:
            return list(tiles)
        if self._starts_afresh(image):
            self._turn = 0
            return list(tiles)
        group = spread_group(tiles, self.spread, self._turn)
        self._turn += 1
        return group

    def followed(self) -> np.ndarray:
        """``(N, 4)`` XYXY boxes of the people to look for again (none unless tracked and ``follow``)."""
        return self._followed if self.tracked and self.follow else np.zeros((0, 4))

    def remember(self, found: np.ndarray) -> None:
        """The people found on this call (``(N, 4)`` XYXY); those followed before and not found
        again (no found box overlapping theirs by IoU 0.2) are kept for :data:`FOLLOW_CALLS` calls."""
        if not (self.tracked and self.follow):
            return
        found = np.asarray(found, dtype=np.float64).reshape(-1, 4)
        lost = np.array([not len(found) or float(box_iou(b, found).max()) < 0.2 for b in self._followed], dtype=bool)
        lost &= self._missed + 1 < FOLLOW_CALLS
        self._followed = np.concatenate([found, self._followed[lost]])
        self._missed = np.concatenate([np.zeros(len(found), dtype=int), self._missed[lost] + 1])

    def _starts_afresh(self, image: np.ndarray) -> bool:
        """A first frame, a new frame size or a scene cut; remembers this frame's thumbnail."""
        h, w = image.shape[:2]
        small = cv2.resize(image, (max(1, w // 16), max(1, h // 16)), interpolation=cv2.INTER_AREA)
        thumb = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        previous, self._thumb = self._thumb, thumb
        if previous is None or previous.shape != thumb.shape:
            return True
        return float(cv2.absdiff(thumb, previous).mean()) >= self.cut_threshold
