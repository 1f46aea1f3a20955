"""The leak check's reference people, each confirmed as a person by a second network.

The vtest pseudo-ground-truth comes from one detector (``coco_person`` on the full-size frames),
which also takes some traffic cones and a rock for people (``docs/regions.md``); a leak check
against it blames the anonymizer for "people" that are not there. With ``[leak]
confirm_keypoints`` set, a pseudo-ground-truth person counts only when MoveNet MultiPose, a
separately trained network, finds a person in their crop of the full-size frame (its box
overlapping theirs, IoU >= 0.3) with enough confident keypoints: a body, not a blob.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from realanon.evaluation.coco import Sample, labelled
from realanon.evaluation.protocol import DataOptions, LeakOptions

# ``(image, box XYXY in its pixels) -> keypoints of that person scoring >= the threshold``.
KeypointCounter = Callable[[np.ndarray, Sequence[float]], int]


def skeleton_counter(keypoint_score: float, threads: int | None = 1) -> KeypointCounter:
    """MoveNet MultiPose in each person's crop, whatever their size: how many keypoints score >= ``keypoint_score``.

    A crop where MoveNet finds no person matching the box counts 0.
    """
    from realanon.detectors.movenet import MoveNetPose

    pose = MoveNetPose(min_height=0.0, threads=threads)

    def count(image: np.ndarray, box: Sequence[float]) -> int:
        keypoints = pose.keypoints_in_crop(image, box)
        return 0 if keypoints is None else int((keypoints[:, 2] >= keypoint_score).sum())

    return count


def reference_boxes(samples: Sequence[Sample]) -> list[np.ndarray]:
    """Per sample, the ``(N, 4)`` XYXY boxes of its labelled people (ignore regions left out)."""
    return [np.array([inst.box_xyxy for inst in labelled(s.instances)], dtype=np.float64).reshape(-1, 4)
            for s in samples]


def keypoint_counts(boxes: Sequence[np.ndarray], originals: Sequence[np.ndarray], scale: float,
                    count: KeypointCounter) -> list[np.ndarray]:
    """Per frame, ``count`` for each box (in pixels of the frame resized by ``scale``) on its ``original``."""
    return [np.array([count(original, box / scale) for box in frame_boxes], dtype=np.int64)
            for frame_boxes, original in zip(boxes, originals)]


def leak_references(samples: Sequence[Sample], data: DataOptions, leak: LeakOptions) -> list[np.ndarray]:
    """The leak check's reference people of ``samples`` (the first validation samples), per frame.

    Every labelled person, or with ``leak.confirm_keypoints`` only those with that many
    confident MoveNet keypoints on the full-size frame (:func:`skeleton_counter`).
    """
    boxes = reference_boxes(samples)
    if not leak.confirm_keypoints:
        return boxes
    from realanon.evaluation.datasets import vtest_validation_originals

    originals = vtest_validation_originals(data, len(samples))
    counts = keypoint_counts(boxes, originals, data.scale, skeleton_counter(leak.confirm_keypoint_score))
    return [b[c >= leak.confirm_keypoints] for b, c in zip(boxes, counts)]
