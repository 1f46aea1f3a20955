"""NMS and tiling helpers."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from realanon.detectors._boxes import nms, tile_boxes


def test_nms_keeps_best_of_overlapping_and_separate_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [2, 2, 6, 6]], dtype=float)
    scores = np.array([0.5, 0.9, 0.7, 0.3])
    assert nms(boxes, scores, 0.5) == [1, 2, 3]
    assert nms(boxes, scores, 0.5, nested_threshold=0.7) == [1, 2]


@given(st.integers(1, 900), st.integers(1, 900), st.integers(64, 400), st.floats(0.0, 0.9))
def test_tiles_cover_the_frame_and_stay_inside(h: int, w: int, tile: int, overlap: float) -> None:
    covered = np.zeros((h, w), dtype=bool)
    for x1, y1, x2, y2 in tile_boxes((h, w), tile, overlap):
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        assert x2 - x1 <= tile and y2 - y1 <= tile
        covered[y1:y2, x1:x2] = True
    assert covered.all()
