"""COCO person boxes from the shipped CenterNet (default) or NanoDet ONNX models, searched in tiles.

NanoDet takes a fixed 416x416 input; CenterNet, cut before its own decoding (which needs
512x512), takes any size whose sides are multiples of 32 and is fed 512x512 squares here too. A
frame is searched once whole (letterboxed into the input, for people larger than a tile) and in
overlapping square tiles sized so that a person ``min_height`` pixels tall (or, in frames under
576 px tall, ``min_height_fraction`` of the frame height) still appears about
:data:`MIN_INPUT_HEIGHT` pixels tall in the network input, the smallest CenterNet found
reliably on vtest.avi (``docs/regions.md``). Detections of all passes are merged by
non-maximum suppression; a box cut by an inner tile edge is dropped when a box of another
pass contains it. ``pieces=True`` searches fewer, larger rectangles instead (faster, leaks more);
``fit_tiles=True`` the same number of smaller rectangles at the tiles' scale (faster, finds a
different set of the people near the score threshold).

In tracked video (``set_tracked(True)``, :class:`~realanon.interfaces.TrackedSearch`) the
whole-frame pass runs on every frame and the tiles can be spread over ``spread`` frames (default
1: every tile on every frame), one interleaved group per frame (:mod:`realanon.detectors.tile_spread`);
with ``follow`` the people found before are looked for again on every frame in crops around them,
and the tracker carries the people of the other tiles in between. Photos and untracked video
search every tile. Where the regions lie and how each is scaled: :mod:`realanon.detectors.coco_tiles`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

from realanon.detectors._boxes import box_iou, box_overlap_min, nms
from realanon.detectors.coco_models import CenterNetBoxes, NanoDetBoxes, PersonBoxModel
from realanon.detectors.coco_tiles import (
    MIN_INPUT_HEIGHT,
    Region,
    fit_scaled,
    follow_regions,
    frame_pieces,
    frame_tiles,
    letterbox,
    pad_scaled,
    scaled_pixels,
    tile_size_for,
)
from realanon.detectors.tile_spread import TileSpread
from realanon.registry import register_detector
from realanon.structures import Detection, Detections

# Default tile groups in tracked video: 6 (one 614-px tile per frame at 720p), with the people and
# candidates found before followed in crops on every frame (FOLLOW). Spreading the tiles without following
# left 7 people-frames of 839 uncovered on the moving street film at spread=4 where the whole search left 4;
# with following, spread=6 left no more than every tile on every frame (scripts/measure_body_spread.py,
# docs/benchmarks.md).
SPREAD = 6
# Frames under 24 / MIN_HEIGHT_FRACTION = 576 px tall are searched for people down to this fraction of
# their height rather than 24 px (vtest at half size: 12 px, as 24 px at full size; docs/regions.md).
MIN_HEIGHT_FRACTION = 24 / 576
# Fitted tiles (frame_tiles fit=True) for models of any input size: the same scale and least overlap as
# square tiles in 0.66x the network input at 720p (0.59-0.68x the CPU), but CenterNet then finds a
# different set of the people near its threshold: against the square search as truth the street film
# leaked 25 people-frames of 839 against 1 (scripts/measure_body_spread.py, docs/benchmarks.md). An option.
FIT_TILES = False

# Following people between full searches (TiledPersonDetector follow): crops around the people and the
# candidates scoring from FOLLOW_MIN_SCORE found before who appear under FOLLOW_BELOW x MIN_INPUT_HEIGHT tall
# in the whole-frame pass, grown by FOLLOW_GROW x their height on each side and at least FOLLOW_MIN_INPUT
# network pixels each way. With crops of at least 128 or 256 px, or following people (0.25) and not
# candidates, the street film kept 4-7 people-frames of 839 uncovered where every tile on every frame left 1:
# CenterNet scores a person near its threshold lower with less context around them (diagnostic runs, not repo
# commands; the chosen values' figures are in docs/benchmarks.md).
FOLLOW = True
FOLLOW_BELOW = 6.0
FOLLOW_GROW = 0.5
FOLLOW_MIN_INPUT = 384
FOLLOW_MIN_SCORE = 0.15

RunFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def run_passes(image: np.ndarray, run: RunFn, input_size: int, tiles: Sequence[Region],
               all_tiles: Sequence[Region], piece_scale: float | None = None, fit_scale: float | None = None,
               crops: Sequence[Region] = (), crop_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Person boxes (frame pixels), scores and cut flags of one whole-frame pass plus ``tiles`` and ``crops``.

    A box is cut when it touches an inner edge of its region (the region's edge that is not the
    frame's); :func:`merge` makes one box per person of them.

    ``all_tiles`` are the frame's tiles, searched now or on other calls: when only some are
    searched (a spread search), a box cut by a searched region's inner edge is dropped if it lies
    whole inside an unsearched tile, which finds it uncut on its own turn. Each tile is letterboxed
    into the square input, or, with ``piece_scale`` (a model of any input size and
    :func:`frame_pieces`), resized by that scale (:func:`fit_scaled`). With ``fit_scale`` (a
    model of any input size and fitted tiles) each tile is resized by ``fit_scale`` and padded
    only to multiples of 32 (:func:`pad_scaled`); the whole frame is still letterboxed into the
    square (without the padding, CenterNet scored people near its 0.25 threshold lower and
    found fewer of them on 720p frames). ``crops`` (regions around people found on earlier
    frames, :func:`follow_regions`; a model of any input size) are resized by ``crop_scale`` and
    padded the same way.
    """
    h, w = image.shape[:2]
    boxes, scores, cut = [], [], []
    passes = [((0, 0, w, h), "whole"), *((t, "tile") for t in tiles), *((c, "crop") for c in crops)]
    for (rx1, ry1, rx2, ry2), kind in passes:
        crop = image[ry1:ry2, rx1:rx2]
        if kind == "tile" and piece_scale is not None:
            canvas, sx, sy = fit_scaled(crop, piece_scale)
        elif kind == "crop" or (kind == "tile" and fit_scale is not None):
            canvas, sx = pad_scaled(crop, crop_scale if kind == "crop" else fit_scale)  # type: ignore[arg-type]
            sy = sx
        else:
            canvas, sx = letterbox(crop, input_size)
            sy = sx
        b, s = run(canvas)
        b = b / np.array([sx, sy, sx, sy]) + np.array([rx1, ry1, rx1, ry1], dtype=np.float64)
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
    return b, s, c


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
    """NMS across passes; then a cut box mostly inside a kept uncut box is dropped.

    A kept box becomes the union of the uncut boxes (of any pass) overlapping it by ``nms_iou``:
    the passes see a person at different scales and their boxes differ by a few pixels; the
    union covers what any of them saw (small frames' tiles cut 0.95 -> 0.94 of the annotated
    people's pixels before, ``docs/regions.md``).
    """
    if not len(boxes):
        return boxes.reshape(0, 4), scores
    keep = nms(boxes, scores - 0.5 * cut, nms_iou)  # an uncut box wins over a cut one
    whole = [i for i in keep if not cut[i]]
    final = [i for i in keep if not cut[i] or not whole
             or float(box_overlap_min(boxes[i], boxes[whole]).max()) < 0.7]
    final.sort(key=lambda i: -scores[i])
    out = boxes[final].copy()
    uncut = boxes[~cut]
    for row, i in enumerate(final):  # each box grows to hold every uncut box of the same person
        same = uncut[box_iou(boxes[i], uncut) >= nms_iou] if len(uncut) else uncut
        if len(same):
            out[row, :2] = np.minimum(out[row, :2], same[:, :2].min(axis=0))
            out[row, 2:] = np.maximum(out[row, 2:], same[:, 2:].max(axis=0))
    return out, scores[final]


class TiledPersonDetector:
    """People (COCO class 0) found by one box network, whole frame and finer passes, merged.

    Besides the letterboxed whole-frame pass, the frame is searched in square tiles
    (:func:`frame_tiles`) or, with ``pieces=True`` and a model of any input size (``any_size``:
    CenterNet), in fewer, larger rectangular pieces at the same scale (:func:`frame_pieces`).

    Args:
        model: The network pass (:class:`CenterNetBoxes`, :class:`NanoDetBoxes` or any
            :class:`PersonBoxModel`).
        min_height: Smallest person height in frame pixels to find (24 finds pedestrians 24 px
            tall in a 1080p frame; 0 = one whole-frame pass).
        overlap: Fraction of a tile shared with its neighbour, in [0, 0.9].
        nms_iou: Boxes overlapping by this IoU are one person.
        spread: In tracked video, the tiles are searched over this many frames, one interleaved
            group per frame (the whole-frame pass runs every frame; 1: every tile every frame).
            Above 1 the search uses tiles.
        cut_threshold: Mean grey difference (0-255, 1/16 resolution) from the previous frame
            from which a tracked frame is a scene cut and searched in every tile.
        pieces: Search :func:`frame_pieces` instead of tiles (``any_size`` models only): about half
            the CPU at 720p, but CenterNet scores small people lower in the larger pieces and the
            street film leaked 19 people-frames of 839 against 3 with tiles
            (``scripts/measure_body_spread.py``), so it is not the default.
        min_height_fraction: In frames smaller than ``min_height / min_height_fraction`` pixels
            tall, people down to this fraction of the frame height are searched for instead
            (0: ``min_height`` pixels at every frame size).
        fit_tiles: With a model of any input size (``any_size``), search fitted tiles
            (:func:`frame_tiles` ``fit``: same scale and least overlap as the square tiles, no
            redundant overlap; the whole-frame pass is unchanged).
        follow: With ``spread`` above 1 in tracked video and a model of any input size, a call
            that searches only some tiles also searches crops, at the tiles' scale, around the
            people found on the previous calls who are too small for the whole-frame pass
            (:func:`follow_regions`), so they are found afresh on every frame.
        min_score: People the model scores below this are dropped (before boxes are merged).
        follow_min_score: With ``follow``, candidates the model scores from this up are followed
            too (the model must keep them), so that a person near the threshold is looked for
            on every frame and reported as soon as they reach ``min_score``.
        follow_min_input: Least side of a follow crop in network pixels (more context costs more;
            256 left more people uncovered on the street film than 384, ``docs/benchmarks.md``).
    """

    def __init__(self, model: PersonBoxModel, min_height: float = 24.0, overlap: float = 0.2,
                 nms_iou: float = 0.5, spread: int = SPREAD, cut_threshold: float = 20.0,
                 pieces: bool = False, min_height_fraction: float = MIN_HEIGHT_FRACTION,
                 fit_tiles: bool = FIT_TILES, follow: bool = FOLLOW, min_score: float = 0.0,
                 follow_min_score: float = 0.0, follow_min_input: int = FOLLOW_MIN_INPUT) -> None:
        if not 0.0 <= overlap <= 0.9:
            raise ValueError(f"{model.name} overlap must be in [0, 0.9], got {overlap}")
        if not 0.0 <= min_height_fraction < 1.0:
            raise ValueError(f"{model.name} min_height_fraction must be in [0, 1), got {min_height_fraction}")
        self.model = model
        self.name = model.name
        self.input_size = model.input_size
        self.min_height = float(min_height)
        self.min_height_fraction = float(min_height_fraction)
        self.overlap = float(overlap)
        self.nms_iou = float(nms_iou)
        self.min_score = float(min_score)
        self.follow_min_score = float(follow_min_score)
        self.follow_min_input = int(follow_min_input)
        self.schedule = TileSpread(spread, cut_threshold, follow and bool(getattr(model, "any_size", False)))
        self.pieces = bool(pieces) and bool(getattr(model, "any_size", False))
        self.fit_tiles = bool(fit_tiles) and bool(getattr(model, "any_size", False)) and not self.pieces
        self._lock = threading.Lock()

    def __call__(self, image: np.ndarray) -> Detections:
        """Every person in an RGB ``(H, W, 3)`` uint8 image: boxes and scores, kind ``"body"``.

        With tiles in tracked video (after ``set_tracked(True)``) only one group of tiles is
        searched per call, besides the whole-frame pass (see :mod:`realanon.detectors.tile_spread`).
        """
        h, w = image.shape[:2]
        image = np.ascontiguousarray(image)
        with self._lock:
            tiles = self.tile_regions((h, w))
            now = self.schedule.tiles_now(image, tiles)
            scale = MIN_INPUT_HEIGHT / self.min_height_at((h, w)) if self.pieces else None
            tile_scale = self.input_size / tile_size_for(self.input_size, self.min_height_at((h, w)))
            fit = tile_scale if self.fit_tiles else None
            now, crops = self.follow_or_search_all(now, tiles, tile_scale, (h, w))
            b, s, c = run_passes(image, self.model, self.input_size, now, tiles, scale, fit, crops, tile_scale)
            boxes, scores = merge(b[s >= self.min_score], s[s >= self.min_score], c[s >= self.min_score], self.nms_iou)
            if self.schedule.follow:  # people and candidates scoring from follow_min_score are looked for again
                followed = s >= self.follow_min_score
                self.schedule.remember(merge(b[followed], s[followed], c[followed], self.nms_iou)[0])
        items = tuple(Detection(tuple(b), float(s), "body", source=self.name)  # type: ignore[arg-type]
                      for b, s in zip(boxes, scores))
        return Detections(items, (h, w))

    def follow_or_search_all(self, now: list[Region], tiles: list[Region], tile_scale: float,
                             size: tuple[int, int]) -> tuple[list[Region], list[Region]]:
        """The tiles and follow crops to search: ``now`` and crops around the followed people when only
        some tiles are due, or every tile and no crop when the crops would feed the network as many
        pixels as the tiles left out (a crowd: the whole search costs no more)."""
        if len(now) == len(tiles):
            return now, []
        crops = self.follow_crops(size, tile_scale)
        if not crops:
            return now, crops
        pixels = sum(scaled_pixels(c, tile_scale) for c in crops)
        if pixels >= sum(self._tile_pixels(t, tile_scale) for t in tiles if t not in now):
            return tiles, []
        return now, crops

    def _tile_pixels(self, tile: Region, tile_scale: float) -> int:
        """Network input pixels of one tile's pass (a square tile is letterboxed into the whole input)."""
        return scaled_pixels(tile, tile_scale) if self.pieces or self.fit_tiles else self.input_size ** 2

    def follow_crops(self, size: tuple[int, int], tile_scale: float) -> list[Region]:
        """Crops around the followed people who appear under :data:`FOLLOW_BELOW` times
        :data:`MIN_INPUT_HEIGHT` tall in the whole-frame pass (larger people it finds itself)."""
        boxes = self.schedule.followed()
        whole_scale = self.input_size / max(size)
        small = boxes[(boxes[:, 3] - boxes[:, 1]) * whole_scale < FOLLOW_BELOW * MIN_INPUT_HEIGHT]
        # 2 network px short of follow_min_input, so rounding the crop to whole pixels does not pad it by 32
        min_side = (self.follow_min_input - 2) / tile_scale
        return follow_regions(small, size, FOLLOW_GROW, min_side, self.input_size / tile_scale)

    def min_height_at(self, size: tuple[int, int]) -> float:
        """The smallest person height (pixels) searched for in a frame of ``size`` ``(H, W)``."""
        if self.min_height <= 0 or self.min_height_fraction <= 0:
            return self.min_height
        return min(self.min_height, self.min_height_fraction * size[0])

    def tile_regions(self, size: tuple[int, int]) -> list[Region]:
        """The tiles or pieces (XYXY, frame pixels) of a frame of ``size`` ``(H, W)``, besides the whole pass."""
        if self.pieces:
            return frame_pieces(size, self.input_size, self.min_height_at(size), self.overlap)
        return frame_tiles(size, self.input_size, self.min_height_at(size), self.overlap, self.fit_tiles)

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
                     cut_threshold: float = 20.0, pieces: bool = False,
                     min_height_fraction: float = MIN_HEIGHT_FRACTION,
                     fit_tiles: bool = FIT_TILES, follow: bool = FOLLOW,
                     follow_min_score: float = FOLLOW_MIN_SCORE,
                     follow_min_input: int = FOLLOW_MIN_INPUT, fold_activations: bool = True) -> TiledPersonDetector:
    """People found by the shipped CenterNet, tiled (the box stage of ``coco_person``).

    Args:
        min_score: Detections scoring below this are dropped.
        model: Shipped model name or an ONNX file with the same input and output.
        device: ``"cuda"`` uses onnxruntime's CUDA provider when available.
        threads: onnxruntime intra-op threads (default ``OMP_NUM_THREADS``, else its choice).
        fold_activations: Run the network's hard-swish and hard-sigmoid as single operators (same
            heatmaps up to float rounding, less CPU; :class:`CenterNetBoxes`).
        min_height, overlap, nms_iou, spread, cut_threshold, pieces, min_height_fraction, fit_tiles, follow,
        follow_min_score, follow_min_input: See :class:`TiledPersonDetector`.
    """
    decode_from = min(min_score, follow_min_score) if follow else min_score
    boxes = CenterNetBoxes(model, decode_from, device, threads, fold_activations)
    return TiledPersonDetector(boxes, min_height, overlap, nms_iou, spread, cut_threshold, pieces,
                               min_height_fraction, fit_tiles, follow, min_score, follow_min_score, follow_min_input)


@register_detector("nanodet_person")
def nanodet_person(min_score: float = 0.25, min_height: float = 24.0, overlap: float = 0.2,
                   nms_iou: float = 0.5, model: str = "nanodet", device: str = "cpu",
                   threads: int | None = None, spread: int = 1,
                   cut_threshold: float = 20.0,
                   min_height_fraction: float = MIN_HEIGHT_FRACTION) -> TiledPersonDetector:
    """People found by the shipped NanoDet (Apache-2.0), tiled; same arguments as :func:`centernet_person`.

    Its fixed 416x416 input cannot follow people in small crops, so by default every tile is searched on
    every tracked frame (``spread=1``)."""
    return TiledPersonDetector(NanoDetBoxes(model, min_score, device, threads), min_height, overlap, nms_iou,
                               spread, cut_threshold, min_height_fraction=min_height_fraction)
