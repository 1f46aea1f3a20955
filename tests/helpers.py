"""Small fakes shared by tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from realanon.structures import Detection, Detections, GenerationBatch


@dataclass
class FixedDetector:
    """Returns the same detections for every image of the right size."""

    detections: tuple[Detection, ...]

    def __call__(self, image: np.ndarray) -> Detections:
        return Detections(self.detections, image.shape[:2])


class FailingGenerator:
    """Raises on every call: stands in for a generator that breaks mid-video."""

    def __call__(self, batch: GenerationBatch) -> list[np.ndarray]:
        raise RuntimeError("injected fault")


def face(x1: float, y1: float, x2: float, y2: float, score: float = 0.9) -> Detection:
    return Detection((x1, y1, x2, y2), score, "face")


def assert_same_detections(got: Detections, expected: Detections, box_atol: float, score_atol: float) -> None:
    """Same image size and (non-zero) count; boxes, keypoints and scores equal within tolerance, in order."""
    assert got.image_size == expected.image_size and len(got) == len(expected) > 0
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g.box_xyxy, e.box_xyxy, rtol=0, atol=box_atol)
        assert abs(g.score - e.score) <= score_atol
        assert (g.keypoints is None) == (e.keypoints is None)
        if e.keypoints is not None:
            np.testing.assert_allclose(g.keypoints, e.keypoints, rtol=0, atol=box_atol)


def assert_replaces_only_masked(batch: GenerationBatch, out: list[np.ndarray]) -> None:
    """Each generated crop has the crop's shape and dtype, its pixels outside the replace-mask
    unchanged and its masked pixels changed."""
    for crop, mask, result in zip(batch.crops, batch.replace_masks, out):
        assert result.shape == crop.shape and result.dtype == np.uint8
        np.testing.assert_array_equal(result[~mask], crop[~mask])
        assert not np.array_equal(result[mask], crop[mask])
