"""A person's keypoints and mask carried over from the previous frame of a tracked video, where they hardly moved.

In tracked video ``coco_person`` computes keypoints (MoveNet in the person's crop) and a segmented
mask for every person of ``video_detail_height`` pixels and more, on every frame: most of its cost
after the box search. A person whose box on this frame matches their box on the previous one
(IoU at least ``min_iou``, height and width within ``max_resize``) keeps the previous frame's
keypoints and mask, moved by the shift of the box's centre; the box itself is always this
frame's, and a mask reused for ``max_age`` frames in a row is computed afresh. Masks are kept
before overlapping people's masks are made disjoint, so a neighbour's cut is never carried.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from realanon.detectors._boxes import box_iou, shift_detection_arrays
from realanon.structures import Detection


def shift_mask(mask: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``mask`` moved ``dx`` pixels right and ``dy`` down; what moves out of the frame is lost."""
    h, w = mask.shape
    out = np.zeros_like(mask)
    if abs(dx) >= w or abs(dy) >= h:
        return out
    out[max(0, dy):h + min(0, dy), max(0, dx):w + min(0, dx)] = mask[max(0, -dy):h - max(0, dy),
                                                                      max(0, -dx):w - max(0, dx)]
    return out


class DetailReuse:
    """Remembers the detailed people of the previous call and hands their details to matching people.

    Args:
        min_iou: A person matches a remembered one when their boxes overlap by at least this IoU.
        max_resize: ...and their heights and widths differ by at most this fraction.
        max_age: A mask and keypoints are reused at most this many calls in a row.
    """

    def __init__(self, min_iou: float = 0.7, max_resize: float = 0.05, max_age: int = 4) -> None:
        self.min_iou = float(min_iou)
        self.max_resize = float(max_resize)
        self.max_age = int(max_age)
        self._people: list[Detection] = []
        self._ages: list[int] = []

    def reset(self) -> None:
        """Forgets the previous call's people."""
        self._people, self._ages = [], []

    def apply(self, people: list[Detection]) -> tuple[list[Detection], list[int]]:
        """``people`` with the details of their match on the previous call, where one qualifies.

        Returns:
            The people (a reused one carries keypoints and mask; the others are unchanged), and
            for each the number of calls in a row its details have been reused (0: none).
        """
        if not self._people:
            return list(people), [0] * len(people)
        previous = np.array([p.box_xyxy for p in self._people], dtype=np.float64)
        taken: set[int] = set()
        out, ages = [], []
        for det in people:
            ious = box_iou(np.asarray(det.box_xyxy), previous)
            best = int(ious.argmax())
            old = self._people[best]
            if best in taken or ious[best] < self.min_iou or self._ages[best] >= self.max_age \
                    or not self._similar_size(det, old):
                out.append(det)
                ages.append(0)
                continue
            taken.add(best)
            out.append(_moved_details(old, det))
            ages.append(self._ages[best] + 1)
        return out, ages

    def remember(self, people: list[Detection], ages: list[int]) -> None:
        """The people of this call that have a mask (before masks were made disjoint), with their reuse ages."""
        kept = [(p, a) for p, a in zip(people, ages) if p.mask is not None]
        self._people = [p for p, _ in kept]
        self._ages = [a for _, a in kept]

    def _similar_size(self, det: Detection, old: Detection) -> bool:
        return (abs(det.height / max(old.height, 1e-6) - 1) <= self.max_resize
                and abs(det.width / max(old.width, 1e-6) - 1) <= self.max_resize)


def _moved_details(old: Detection, det: Detection) -> Detection:
    """``det`` with ``old``'s keypoints and mask moved by the shift of the box's centre."""
    ox1, oy1, ox2, oy2 = old.box_xyxy
    x1, y1, x2, y2 = det.box_xyxy
    dx, dy = round((x1 + x2 - ox1 - ox2) / 2), round((y1 + y2 - oy1 - oy2) / 2)
    _, keypoints = shift_detection_arrays(old.box_xyxy, old.keypoints, dx, dy, 1.0)
    mask = shift_mask(old.mask, dx, dy) if old.mask is not None else None
    return replace(det, keypoints=keypoints, keypoint_layout=old.keypoint_layout if keypoints is not None else None,
                   mask=mask)
