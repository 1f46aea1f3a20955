"""COCO person boxes from the shipped CenterNet (default) or NanoDet ONNX models, searched in tiles.

Both networks take a fixed square input (512 px for CenterNet, 416 for NanoDet). A frame is
searched once whole (letterboxed into the input, for people larger than a tile) and in
overlapping square tiles sized so that a person ``min_height`` pixels tall still appears
about :data:`_MIN_INPUT_HEIGHT` pixels tall in the network input, the smallest CenterNet
found reliably on vtest.avi (``docs/regions.md``). Detections of all passes are merged by
non-maximum suppression; a box cut by an inner tile edge is dropped when a box of another
pass contains it.

In tracked video (``set_tracked(True)``, :class:`~realanon.interfaces.TrackedSearch`) the
whole-frame pass runs on every frame and the tiles can be spread over ``spread`` frames (default
1: every tile on every frame), one interleaved group per frame (:mod:`realanon.detectors.tile_spread`); the tracker carries the
people of the other tiles in between. Photos and untracked video search every tile.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol

import cv2
import numpy as np

from realanon.detectors._boxes import box_overlap_min, nms, tile_boxes
from realanon.detectors.onnx_models import open_session
from realanon.detectors.tile_spread import TileSpread
from realanon.registry import register_detector
from realanon.structures import Detection, Detections

# CenterNet found 6/6 vtest walkers scaled to ~20 px tall in its 512-px input (docs/regions.md).
_MIN_INPUT_HEIGHT = 20.0
_PAD_VALUE = 114
# Default tile groups in tracked video: 1, every tile on every frame. Spreading them over 4 frames
# cost a third of the CPU but left 7 people-frames of 839 uncovered on the moving street film
# where the whole search left 4 (scripts/measure_body_spread.py, docs/regions.md): a user's choice.
SPREAD = 1
PERSON = 0  # COCO class index of "person" in both models' outputs

RunFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
Region = tuple[int, int, int, int]


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """Resizes ``image`` to fit a ``size`` x ``size`` canvas (top-left aligned, grey padding); returns it and the scale."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    canvas = np.full((size, size, 3), _PAD_VALUE, dtype=np.uint8)
    canvas[:nh, :nw] = cv2.resize(image, (nw, nh), interpolation=interp)
    return canvas, scale


def tile_size_for(input_size: int, min_height: float) -> int:
    """Tile side (frame pixels) at which a person ``min_height`` px tall fills :data:`_MIN_INPUT_HEIGHT` input px."""
    return max(32, round(input_size * min_height / _MIN_INPUT_HEIGHT))


def frame_tiles(size: tuple[int, int], input_size: int, min_height: float, overlap: float) -> list[Region]:
    """The tiles a frame of ``size`` ``(H, W)`` is searched in (none when one pass suffices)."""
    if min_height <= 0:
        return []
    tile = tile_size_for(input_size, min_height)
    return tile_boxes(size, tile, overlap) if tile < max(size) * 0.95 else []


def search_tiles(image: np.ndarray, run: RunFn, input_size: int, min_height: float,
                 overlap: float, nms_iou: float) -> tuple[np.ndarray, np.ndarray]:
    """Person boxes of a whole frame: one letterboxed pass plus every tile, merged.

    Args:
        image: RGB ``(H, W, 3)`` uint8 frame.
        run: Network on one ``input_size`` square RGB uint8 image -> ``(N, 4)`` XYXY boxes in
            input pixels and ``(N,)`` person scores.
        input_size: Side of the network input.
        min_height: Smallest person height in frame pixels to find (sets the tile size);
            0 searches the whole frame only.
        overlap: Fraction of a tile shared with its neighbour.
        nms_iou: Boxes overlapping by this IoU are one person.

    Returns:
        ``(N, 4)`` float boxes in frame pixels and ``(N,)`` scores, best first.
    """
    tiles = frame_tiles((image.shape[0], image.shape[1]), input_size, min_height, overlap)
    return search_regions(image, run, input_size, tiles, tiles, nms_iou)


def search_regions(image: np.ndarray, run: RunFn, input_size: int, tiles: Sequence[Region],
                   all_tiles: Sequence[Region], nms_iou: float) -> tuple[np.ndarray, np.ndarray]:
    """Person boxes from one whole-frame pass plus the given ``tiles``, merged.

    ``all_tiles`` are the frame's tiles, searched now or on other calls: when only some are
    searched (a spread search), a box cut by a searched tile's inner edge is dropped if it lies
    whole inside another tile, which finds it uncut on its own turn.
    """
    h, w = image.shape[:2]
    boxes, scores, cut = [], [], []
    for rx1, ry1, rx2, ry2 in [(0, 0, w, h), *tiles]:
        canvas, scale = letterbox(image[ry1:ry2, rx1:rx2], input_size)
        b, s = run(canvas)
        b = b / scale + np.array([rx1, ry1, rx1, ry1], dtype=np.float64)
        b[:, 0::2] = b[:, 0::2].clip(0, w)
        b[:, 1::2] = b[:, 1::2].clip(0, h)
        boxes.append(b)
        scores.append(s)
        cut.append(_touches_inner_edge(b, (rx1, ry1, rx2, ry2), (h, w)))
    b, s, c = np.concatenate(boxes), np.concatenate(scores), np.concatenate(cut)
    if len(tiles) < len(all_tiles) and c.any():
        unsearched = [t for t in all_tiles if t not in tiles]
        later = np.array([c[i] and _inside_any(b[i], unsearched) for i in range(len(b))], dtype=bool)
        b, s, c = b[~later], s[~later], c[~later]
    return merge(b, s, c, nms_iou)


def _inside_any(box: np.ndarray, regions: Sequence[Region]) -> bool:
    return any(box[0] >= x1 and box[1] >= y1 and box[2] <= x2 and box[3] <= y2 for x1, y1, x2, y2 in regions)


def _touches_inner_edge(boxes: np.ndarray, region: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    """True for boxes within 2 px of a region edge that is not the frame's edge (cut by the tile)."""
    rx1, ry1, rx2, ry2 = region
    h, w = size
    near = np.zeros(len(boxes), dtype=bool)
    for axis, edge, frame_edge in ((0, rx1, 0), (1, ry1, 0), (2, rx2, w), (3, ry2, h)):
        if edge != frame_edge:
            near |= np.abs(boxes[:, axis] - edge) <= 2.0
    return near


def merge(boxes: np.ndarray, scores: np.ndarray, cut: np.ndarray, nms_iou: float) -> tuple[np.ndarray, np.ndarray]:
    """NMS across passes; then a cut box mostly inside a kept uncut box is dropped."""
    if not len(boxes):
        return boxes.reshape(0, 4), scores
    keep = nms(boxes, scores - 0.5 * cut, nms_iou)  # an uncut box wins over a cut one
    whole = [i for i in keep if not cut[i]]
    final = [i for i in keep if not cut[i] or not whole
             or float(box_overlap_min(boxes[i], boxes[whole]).max()) < 0.7]
    final.sort(key=lambda i: -scores[i])
    return boxes[final], scores[final]


class PersonBoxModel(Protocol):
    """One network pass: person boxes and scores in a square ``input_size`` RGB uint8 canvas."""

    name: str
    input_size: int

    def __call__(self, canvas: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class CenterNetBoxes:
    """The shipped MobileNetV3 CenterNet (512x512 float RGB 0-255 input, decoded output rows
    ``x1, y1, x2, y2, score, class``): the person rows scoring at least ``min_score``."""

    name = "centernet_person"
    input_size = 512

    def __init__(self, model: str = "centernet", min_score: float = 0.25, device: str = "cpu",
                 threads: int | None = None) -> None:
        self.min_score = float(min_score)
        self._session = open_session(model, device=device, threads=threads)
        self._input = self._session.get_inputs()[0].name

    def __call__(self, canvas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self._session.run(None, {self._input: canvas[None].astype(np.float32)})[0][0]
        keep = (out[:, 5] == PERSON) & (out[:, 4] >= self.min_score)
        return out[keep, :4].astype(np.float64), out[keep, 4].astype(np.float64)


class NanoDetBoxes:
    """The shipped NanoDet (416x416 float RGB 0-1 input). Box sides are decoded as the expected
    value of each side's 11-bin distribution, in units of the output stride (8, 16, 32)."""

    name = "nanodet_person"
    input_size = 416

    def __init__(self, model: str = "nanodet", min_score: float = 0.25, device: str = "cpu",
                 threads: int | None = None) -> None:
        self.min_score = float(min_score)
        self._session = open_session(model, device=device, threads=threads)
        self._input = self._session.get_inputs()[0].name
        self._outputs = [o.name for o in self._session.get_outputs()]

    def __call__(self, canvas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.ascontiguousarray((canvas.astype(np.float32) / 255.0).transpose(2, 0, 1)[None])
        outs = self._session.run(self._outputs, {self._input: x})
        return decode_nanodet([o[0] for o in outs], self.input_size, self.min_score)


class TiledPersonDetector:
    """People (COCO class 0) found by one box network, whole frame and tiles, merged.

    Args:
        model: The network pass (:class:`CenterNetBoxes`, :class:`NanoDetBoxes` or any
            :class:`PersonBoxModel`).
        min_height: Smallest person height in frame pixels to find: tiles are sized for it
            (24 finds pedestrians 24 px tall in a 1080p frame; 0 = one whole-frame pass).
        overlap: Fraction of a tile shared with its neighbour, in [0, 0.9].
        nms_iou: Boxes overlapping by this IoU are one person.
        spread: In tracked video, the tiles are searched over this many frames, one interleaved
            group per frame (the whole-frame pass runs every frame; 1: every tile every frame).
        cut_threshold: Mean grey difference (0-255, 1/16 resolution) from the previous frame
            from which a tracked frame is a scene cut and searched in every tile.
    """

    def __init__(self, model: PersonBoxModel, min_height: float = 24.0, overlap: float = 0.2,
                 nms_iou: float = 0.5, spread: int = SPREAD, cut_threshold: float = 20.0) -> None:
        if not 0.0 <= overlap <= 0.9:
            raise ValueError(f"{model.name} overlap must be in [0, 0.9], got {overlap}")
        self.model = model
        self.name = model.name
        self.input_size = model.input_size
        self.min_height = float(min_height)
        self.overlap = float(overlap)
        self.nms_iou = float(nms_iou)
        self.schedule = TileSpread(spread, cut_threshold)
        self._lock = threading.Lock()

    def __call__(self, image: np.ndarray) -> Detections:
        """Every person in an RGB ``(H, W, 3)`` uint8 image: boxes and scores, kind ``"body"``.

        In tracked video (after ``set_tracked(True)``) only one group of tiles is searched per
        call, besides the whole-frame pass (see :mod:`realanon.detectors.tile_spread`).
        """
        h, w = image.shape[:2]
        image = np.ascontiguousarray(image)
        with self._lock:
            tiles = self.tile_regions((h, w))
            now = self.schedule.tiles_now(image, tiles)
            boxes, scores = search_regions(image, self.model, self.input_size, now, tiles, self.nms_iou)
        items = tuple(Detection(tuple(b), float(s), "body", source=self.name)  # type: ignore[arg-type]
                      for b, s in zip(boxes, scores))
        return Detections(items, (h, w))

    def tile_regions(self, size: tuple[int, int]) -> list[Region]:
        """The tiles (XYXY, frame pixels) a frame of ``size`` ``(H, W)`` is searched in, besides the whole pass."""
        return frame_tiles(size, self.input_size, self.min_height, self.overlap)

    def spread_groups(self, size: tuple[int, int]) -> int:
        """Calls one full tile search of a frame of ``size`` takes in tracked video."""
        return self.schedule.groups(len(self.tile_regions(size)))

    def set_tracked(self, tracked: bool) -> None:
        """Tracked video on or off (:class:`~realanon.interfaces.TrackedSearch`): spread the tiles over calls."""
        with self._lock:
            self.schedule.set_tracked(tracked)

    def reset(self) -> None:
        """Forgets earlier frames: the next call searches every tile."""
        with self._lock:
            self.schedule.reset()


@register_detector("centernet_person")
def centernet_person(min_score: float = 0.25, min_height: float = 24.0, overlap: float = 0.2,
                     nms_iou: float = 0.5, model: str = "centernet", device: str = "cpu",
                     threads: int | None = None, spread: int = SPREAD,
                     cut_threshold: float = 20.0) -> TiledPersonDetector:
    """People found by the shipped CenterNet, tiled (the box stage of ``coco_person``).

    Args:
        min_score: Detections scoring below this are dropped.
        model: Shipped model name or an ONNX file with the same input and output.
        device: ``"cuda"`` uses onnxruntime's CUDA provider when available.
        threads: onnxruntime intra-op threads (default ``OMP_NUM_THREADS``, else its choice).
        min_height, overlap, nms_iou, spread, cut_threshold: See :class:`TiledPersonDetector`.
    """
    return TiledPersonDetector(CenterNetBoxes(model, min_score, device, threads),
                               min_height, overlap, nms_iou, spread, cut_threshold)


@register_detector("nanodet_person")
def nanodet_person(min_score: float = 0.25, min_height: float = 24.0, overlap: float = 0.2,
                   nms_iou: float = 0.5, model: str = "nanodet", device: str = "cpu",
                   threads: int | None = None, spread: int = SPREAD,
                   cut_threshold: float = 20.0) -> TiledPersonDetector:
    """People found by the shipped NanoDet (Apache-2.0), tiled; same arguments as :func:`centernet_person`."""
    return TiledPersonDetector(NanoDetBoxes(model, min_score, device, threads),
                               min_height, overlap, nms_iou, spread, cut_threshold)


def decode_nanodet(outputs: list[np.ndarray], input_size: int, min_score: float) -> tuple[np.ndarray, np.ndarray]:
    """Person boxes from NanoDet's per-stride ``(cells, 80)`` scores and ``(cells, 44)`` side distributions."""
    scores_by_cells = {o.shape[0]: o for o in outputs if o.shape[1] == 80}
    dists_by_cells = {o.shape[0]: o for o in outputs if o.shape[1] != 80}
    boxes, scores = [], []
    for cells, cls in scores_by_cells.items():
        side = int(round(cells ** 0.5))
        stride = input_size / side
        idx = np.nonzero(cls[:, PERSON] >= min_score)[0]
        if not len(idx):
            continue
        dist = dists_by_cells[cells][idx].reshape(len(idx), 4, -1)
        prob = np.exp(dist - dist.max(axis=2, keepdims=True))
        prob /= prob.sum(axis=2, keepdims=True)
        d = (prob * np.arange(prob.shape[2])).sum(axis=2) * stride  # left, top, right, bottom
        cx = (idx % side + 0.5) * stride
        cy = (idx // side + 0.5) * stride
        boxes.append(np.stack([cx - d[:, 0], cy - d[:, 1], cx + d[:, 2], cy + d[:, 3]], axis=1))
        scores.append(cls[idx, PERSON])
    if not boxes:
        return np.zeros((0, 4)), np.zeros(0)
    b, s = np.concatenate(boxes).astype(np.float64), np.concatenate(scores).astype(np.float64)
    keep = nms(b, s, 0.5)
    return b[keep], s[keep]

