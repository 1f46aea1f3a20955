"""A small IoU tracker with constant-velocity prediction, for temporally consistent video.

Each track keeps one integer id for its whole life; the pipeline derives a region's seed from
``Detection.track_id``, so a tracked person keeps one synthetic identity instead of flickering.
A track that loses its detection keeps being reported at its predicted position for up to
``max_age`` frames (its box grows a little each missed frame to absorb prediction error), so
short detector misses do not leak the person.

We use our own tracker rather than a library: the maintained ones (ByteTrack/OC-SORT ports) pull
in heavy dependencies, and anonymization wants something different from benchmark tracking:
every detection must be reported at once (no ``min_hits`` warm-up) and lost tracks must coast.
Matching is SORT-style: a Hungarian assignment on IoU between predicted and detected boxes
(``scipy.optimize.linear_sum_assignment``), per kind, solved separately for each group of boxes
that overlap one another (the same optimum): a small group by trying every assignment, a large
one by scipy.optimize (half a second to import, so loaded only then).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

import numpy as np

from realanon.detectors._boxes import shift_detection_arrays
from realanon.structures import Detection, Detections


@dataclass(frozen=True)
class TrackerOptions:
    """How detections are linked into tracks.

    Attributes:
        iou_threshold: Minimum IoU between a track's predicted box and a detection to match them.
        max_age: Frames a track keeps being reported at its predicted position without a detection.
        velocity_smoothing: Weight of the previous velocity in the exponential average, in [0, 1).
        grow_per_missed: Fraction of its size a coasting box grows by on each side per missed frame.
        lookahead: Frames before a track's first detection that also get it (video only; the
            streaming reader keeps this many frames buffered, so memory stays constant).
    """

    iou_threshold: float = 0.1
    max_age: int = 8
    velocity_smoothing: float = 0.6
    grow_per_missed: float = 0.05
    lookahead: int = 8

    def __post_init__(self) -> None:
        if not 0.0 <= self.iou_threshold < 1.0:
            raise ValueError(f"iou_threshold must be in [0, 1), got {self.iou_threshold}")
        if self.max_age < 0 or self.lookahead < 0:
            raise ValueError("max_age and lookahead must be >= 0")
        if not 0.0 <= self.velocity_smoothing < 1.0:
            raise ValueError(f"velocity_smoothing must be in [0, 1), got {self.velocity_smoothing}")


@dataclass
class _Track:
    track_id: int
    box: np.ndarray  # (4,) float64 xyxy of the current position (observed, or predicted while coasting)
    velocity: np.ndarray  # (4,) per-frame change of the box
    last: Detection  # the last detection matched to the track (its box is the last observed one)
    missed: int = 0
    hits: int = 1

    def predicted_box(self) -> np.ndarray:
        return self.box + self.velocity


@dataclass(frozen=True)
class TrackUpdate:
    """The result of one :meth:`IoUTracker.update`.

    Attributes:
        detections: The frame's detections carrying track ids, plus one predicted detection
            (``source="tracker"``) for each track that is coasting through a miss.
        born: The detections that started a new track on this frame.
    """

    detections: Detections
    born: tuple[Detection, ...] = field(default_factory=tuple)


def iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of two sets of XYXY boxes.

    Args:
        boxes_a: ``(N, 4)`` float boxes.
        boxes_b: ``(M, 4)`` float boxes.

    Returns:
        ``(N, M)`` float64 IoU in [0, 1].
    """
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(1, -1, 4)
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def match_boxes(predicted: np.ndarray, detected: np.ndarray, iou_threshold: float) -> list[tuple[int, int]]:
    """Hungarian matching of predicted to detected boxes, keeping pairs with IoU >= threshold.

    Returns:
        ``(track_index, detection_index)`` pairs.
    """
    if len(predicted) == 0 or len(detected) == 0:
        return []
    iou = iou_matrix(predicted, detected)
    pairs = []
    for rows, cols in _overlap_groups(iou > 0):
        sub_rows, sub_cols = _best_assignment(iou[np.ix_(rows, cols)])
        pairs += [(rows[r], cols[c]) for r, c in zip(sub_rows, sub_cols)]
    return sorted((r, c) for r, c in pairs if iou[r, c] >= max(iou_threshold, 1e-9))


# Groups up to this many boxes a side are solved by trying every assignment (at most 720).
_EXHAUSTIVE_SIDE = 6


def _best_assignment(gain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the one-to-one assignment of largest total ``gain`` (``(N, M)``)."""
    n, m = gain.shape
    if max(n, m) > _EXHAUSTIVE_SIDE:
        from scipy.optimize import linear_sum_assignment

        rows, cols = linear_sum_assignment(-gain)
        return np.asarray(rows), np.asarray(cols)
    if n > m:
        cols, rows = _best_assignment(gain.T)
        order = np.argsort(rows)
        return rows[order], cols[order]
    choices = np.array(list(itertools.permutations(range(m), n)), dtype=np.intp).reshape(-1, n)
    best = choices[int(np.argmax(gain[np.arange(n), choices].sum(axis=1)))]
    return np.arange(n), best


def _overlap_groups(overlaps: np.ndarray) -> list[tuple[list[int], list[int]]]:
    """The connected groups of a bipartite ``(N, M)`` bool graph, as (rows, columns) lists;
    rows and columns without an edge are left out (they can only be matched at IoU 0)."""
    groups = []
    seen_rows = np.zeros(overlaps.shape[0], dtype=bool)
    seen_cols = np.zeros(overlaps.shape[1], dtype=bool)
    for start in np.flatnonzero(overlaps.any(axis=1)):
        if seen_rows[start]:
            continue
        rows, cols, frontier = [int(start)], [], [int(start)]
        seen_rows[start] = True
        while frontier:
            new_cols = np.flatnonzero(overlaps[frontier].any(axis=0) & ~seen_cols)
            seen_cols[new_cols] = True
            cols += new_cols.tolist()
            new_rows = np.flatnonzero(overlaps[:, new_cols].any(axis=1) & ~seen_rows)
            seen_rows[new_rows] = True
            rows += new_rows.tolist()
            frontier = new_rows.tolist()
        groups.append((sorted(rows), sorted(cols)))
    return groups


def shift_detection(det: Detection, box: np.ndarray, track_id: int) -> Detection:
    """A copy of ``det`` moved to ``box`` (keypoints follow the box centre; masks are dropped)."""
    old = np.asarray(det.box_xyxy)
    dx, dy = (box[0] + box[2] - old[0] - old[2]) / 2, (box[1] + box[3] - old[1] - old[3]) / 2
    _, keypoints = shift_detection_arrays(det.box_xyxy, det.keypoints, float(dx), float(dy), 1.0)
    box_xyxy = (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
    return replace(det, box_xyxy=box_xyxy, keypoints=keypoints, mask=None,
                   track_id=track_id, source="tracker")


def at_least_as_large(box: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``box`` about its own centre, each side at least as long as ``reference``'s: a coasting
    track may move with its velocity but never shrinks below its last observed size (the size
    part of a velocity measured on jittery boxes of a 12-px face can collapse it in a few frames)."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half_w = max(box[2] - box[0], reference[2] - reference[0]) / 2
    half_h = max(box[3] - box[1], reference[3] - reference[1]) / 2
    return np.array([cx - half_w, cy - half_h, cx + half_w, cy + half_h])


def grow_box(box: np.ndarray, fraction: float) -> np.ndarray:
    """``box`` grown by ``fraction`` of its width/height on each side."""
    w, h = box[2] - box[0], box[3] - box[1]
    return box + np.array([-w, -h, w, h]) * fraction


class IoUTracker:
    """Links per-frame detections into tracks with stable ids.

    Args:
        options: Matching and coasting parameters.
        first_id: Id given to the first track.
    """

    def __init__(self, options: TrackerOptions | None = None, first_id: int = 0) -> None:
        self.options = options or TrackerOptions()
        self._tracks: list[_Track] = []
        self._next_id = first_id

    @property
    def active_tracks(self) -> int:
        """Number of tracks currently alive (matched or coasting)."""
        return len(self._tracks)

    def update(self, detections: Detections) -> TrackUpdate:
        """Matches one frame's detections to the tracks and advances every track by one frame.

        Args:
            detections: This frame's detections (any kinds; kinds never match each other).

        Returns:
            The detections with track ids, coasting predictions, and the newly born tracks.
        """
        items = list(detections.items)
        existing = len(self._tracks)
        matched_tracks: set[int] = set()
        out: list[Detection] = []
        born: list[Detection] = []
        assigned: dict[int, int] = {}
        for kind in {d.kind for d in items} | {t.last.kind for t in self._tracks}:
            t_idx = [i for i, t in enumerate(self._tracks) if t.last.kind == kind]
            d_idx = [j for j, d in enumerate(items) if d.kind == kind]
            predicted = np.array([self._tracks[i].predicted_box() for i in t_idx]).reshape(-1, 4)
            detected = np.array([items[j].box_xyxy for j in d_idx]).reshape(-1, 4)
            for ti, dj in match_boxes(predicted, detected, self.options.iou_threshold):
                assigned[d_idx[dj]] = t_idx[ti]
        for j, det in enumerate(items):
            if j in assigned:
                track = self._tracks[assigned[j]]
                self._observe(track, det)
                matched_tracks.add(assigned[j])
            else:
                track = self._start(det)
                born.append(det.with_track(track.track_id))
            out.append(det.with_track(track.track_id))
        out.extend(self._coast(matched_tracks, existing))
        return TrackUpdate(Detections(tuple(out), detections.image_size), tuple(born))

    def _observe(self, track: _Track, det: Detection) -> None:
        box = np.asarray(det.box_xyxy, dtype=np.float64)
        step = (box - np.asarray(track.last.box_xyxy)) / (track.missed + 1)  # per frame since last seen
        a = self.options.velocity_smoothing if track.hits > 1 else 0.0
        track.velocity = a * track.velocity + (1 - a) * step
        track.box, track.last, track.missed = box, det, 0
        track.hits += 1

    def _start(self, det: Detection) -> _Track:
        track = _Track(self._next_id, np.asarray(det.box_xyxy, dtype=np.float64), np.zeros(4), det)
        self._next_id += 1
        self._tracks.append(track)
        return track

    def _coast(self, matched: set[int], existing: int) -> list[Detection]:
        """Advances unmatched tracks to their prediction; drops those older than ``max_age``.

        Tracks at index ``existing`` and beyond were born on this frame and are kept as they are.
        """
        coasting: list[Detection] = []
        kept: list[_Track] = []
        for i, track in enumerate(self._tracks):
            if i in matched or i >= existing:
                kept.append(track)
                continue
            track.missed += 1
            if track.missed > self.options.max_age:
                continue
            track.box = track.predicted_box()
            grown = grow_box(at_least_as_large(track.box, np.asarray(track.last.box_xyxy)),
                             self.options.grow_per_missed * track.missed)
            coasting.append(shift_detection(track.last, grown, track.track_id))
            kept.append(track)
        self._tracks = kept
        return coasting
