"""Where a frame is searched for people: tiles, pieces, crops around people already found, and how
each region is scaled into the box network's input (used by :mod:`realanon.detectors.coco_boxes`).

All regions are XYXY in frame pixels. A tile is sized so that a person ``min_height`` pixels tall
appears about :data:`MIN_INPUT_HEIGHT` pixels tall in the network input.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from realanon.detectors._boxes import tile_boxes

# CenterNet found 6/6 vtest walkers scaled to ~20 px tall in its 512-px input (docs/regions.md).
MIN_INPUT_HEIGHT = 20.0
_PAD_VALUE = 114
# A model of any input size searches pieces up to this many times a tile's side each way (frame_pieces).
_PIECE_STRETCH = (1.25, 1.25)  # (height, width)

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
    """Tile side (frame pixels) at which a person ``min_height`` px tall fills :data:`MIN_INPUT_HEIGHT` input px."""
    return max(32, round(input_size * min_height / MIN_INPUT_HEIGHT))


def frame_tiles(size: tuple[int, int], input_size: int, min_height: float, overlap: float,
                fit: bool = False) -> list[Region]:
    """The tiles a frame of ``size`` ``(H, W)`` is searched in (none when one pass suffices).

    Square tiles of the side :func:`tile_size_for` gives, or with ``fit`` the fewest rectangles
    no larger than such a tile in either direction that share the frame evenly, neighbours
    sharing at least ``overlap`` of a tile side, as the square tiles' neighbours do (a 1280x720
    frame: 6 tiles of about 509x422 instead of 6 of 614x614, whose rows overlap by 508 px).
    """
    if min_height <= 0:
        return []
    tile = tile_size_for(input_size, min_height)
    if tile >= max(size) * 0.95:
        return []
    if not fit:
        return tile_boxes(size, tile, overlap)
    ys, xs = (_spans(n, tile, overlap * tile) for n in size)
    return [(x1, y1, x2, y2) for y1, y2 in ys for x1, x2 in xs]


def frame_pieces(size: tuple[int, int], input_size: int, min_height: float, overlap: float) -> list[Region]:
    """Rectangular pieces a frame of ``size`` ``(H, W)`` is searched in by a model of any input size.

    Same scale and overlap (frame pixels) as :func:`frame_tiles`, but each piece may be up to
    :data:`_PIECE_STRETCH` times the tile's side in each direction and the pieces share the frame
    evenly, so fewer passes cover it (a 1280x720 frame: 2 pieces instead of 6 tiles). None when
    one letterboxed pass suffices.
    """
    if min_height <= 0:
        return []
    tile = tile_size_for(input_size, min_height)
    if tile >= max(size) * 0.95:
        return []
    ys, xs = (_spans(n, stretch * tile, overlap * tile) for n, stretch in zip(size, _PIECE_STRETCH))
    return [(x1, y1, x2, y2) for y1, y2 in ys for x1, x2 in xs]


def _spans(length: int, longest: float, overlap: float) -> list[tuple[int, int]]:
    """Fewest equal spans no longer than ``longest`` covering ``length``, neighbours sharing ``overlap``."""
    if length <= longest * 1.001:
        return [(0, length)]
    n = math.ceil((length - overlap) / (longest - overlap))
    side = min(length, math.ceil((length + (n - 1) * overlap) / n))
    starts = [round(i * (length - side) / (n - 1)) for i in range(n)]
    return [(x, x + side) for x in starts]


def fit_scaled(crop: np.ndarray, scale: float) -> tuple[np.ndarray, float, float]:
    """``crop`` resized by about ``scale`` to sides that are multiples of 32; the x and y scales used."""
    h, w = crop.shape[:2]
    th, tw = max(32, math.ceil(h * scale / 32) * 32), max(32, math.ceil(w * scale / 32) * 32)
    interp = cv2.INTER_AREA if tw < w else cv2.INTER_LINEAR
    return cv2.resize(crop, (tw, th), interpolation=interp), tw / w, th / h


def pad_scaled(crop: np.ndarray, scale: float) -> tuple[np.ndarray, float]:
    """``crop`` resized by ``scale``, padded (grey, right and bottom) to sides that are multiples of 32."""
    h, w = crop.shape[:2]
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    canvas = np.full((math.ceil(nh / 32) * 32, math.ceil(nw / 32) * 32, 3), _PAD_VALUE, dtype=np.uint8)
    canvas[:nh, :nw] = cv2.resize(crop, (nw, nh), interpolation=interp)
    return canvas, scale



def scaled_pixels(region: Region, scale: float) -> int:
    """Network input pixels of ``region`` resized by ``scale`` and padded to multiples of 32 (:func:`pad_scaled`)."""
    x1, y1, x2, y2 = region
    return math.ceil(round((y2 - y1) * scale) / 32) * 32 * math.ceil(round((x2 - x1) * scale) / 32) * 32


def follow_regions(boxes: np.ndarray, size: tuple[int, int], grow: float, min_side: float,
                   max_side: float) -> list[Region]:
    """Regions around people found on earlier frames, where to look for them again.

    Each box (``(N, 4)`` XYXY, frame pixels) is grown by ``grow`` times its height on every side
    (room for the person's and the camera's motion) to at least ``min_side`` pixels each way,
    clipped to the frame of ``size`` ``(H, W)``. Overlapping regions are merged into their
    bounding rectangle while it stays within ``max_side`` each way (a tile's side: CenterNet
    scores small people lower in larger inputs), so a group of people is searched in one pass.
    """
    h, w = size
    regions: list[list[int]] = []
    for x1, y1, x2, y2 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        margin = grow * (y2 - y1)
        half_w = max((x2 - x1) / 2 + margin, min_side / 2)
        half_h = max((y2 - y1) / 2 + margin, min_side / 2)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        region = [max(0, math.floor(cx - half_w)), max(0, math.floor(cy - half_h)),
                  min(w, math.ceil(cx + half_w)), min(h, math.ceil(cy + half_h))]
        if region[2] > region[0] and region[3] > region[1]:
            regions.append(region)
    while (pair := _mergeable_pair(regions, max_side)) is not None:
        i, j = pair
        a, b = regions[i], regions.pop(j)
        regions[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
    return [(x1, y1, x2, y2) for x1, y1, x2, y2 in regions]


def _mergeable_pair(regions: list[list[int]], max_side: float) -> tuple[int, int] | None:
    """The first two overlapping regions whose bounding rectangle is within ``max_side`` each way."""
    for i, a in enumerate(regions):
        for j in range(i + 1, len(regions)):
            b = regions[j]
            if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3] \
                    and max(a[2], b[2]) - min(a[0], b[0]) <= max_side and max(a[3], b[3]) - min(a[1], b[1]) <= max_side:
                return i, j
    return None
