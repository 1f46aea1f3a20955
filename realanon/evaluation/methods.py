"""Turning a method spec into something that anonymizes one image."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from realanon.evaluation.protocol import MethodSpec
from realanon.structures import AnonymizedFrame, Detections, Kind

AnonymizeFn = Callable[[np.ndarray, "Detections | None", int], AnonymizedFrame]


def build_method(spec: MethodSpec, target: Kind, *, seed: int, device: str = "cpu", own_detector: bool = False) -> AnonymizeFn:
    """Builds ``fn(image, detections, frame_index) -> AnonymizedFrame`` for one method.

    Args:
        spec: The method; ``original`` returns the image unchanged.
        target: ``"face"`` or ``"body"``; replaces the config's target (and, when it differs,
            its detector by the default one for ``target``).
        seed: Base seed of the anonymizer.
        device: Torch device for generators that use one.
        own_detector: Build the method's detector (for the leak check); otherwise the
            detections to replace are always passed in.

    Errors are raised, never masked: the evaluator records them per method.
    """
    if spec.config is None:
        def original(image: np.ndarray, detections: Detections | None, frame_index: int = 0) -> AnonymizedFrame:
            return AnonymizedFrame(image.copy(), detections or Detections.empty(image.shape[:2]), ())  # type: ignore[arg-type]

        return original

    from realanon.pipeline import build_anonymizer

    changes: dict[str, object] = {"target": target, "seed": seed, "device": device, "fail_closed": False}
    if spec.config.target != target:
        changes["detector"] = None
        changes["detector_options"] = {}
    config = spec.config.replace(**changes)
    anonymizer = build_anonymizer(config, detector="auto" if own_detector else None)

    def run(image: np.ndarray, detections: Detections | None, frame_index: int = 0) -> AnonymizedFrame:
        return anonymizer(image, detections, frame_index=frame_index)

    return run


def replaced_mask(frame: AnonymizedFrame) -> np.ndarray:
    """Full-frame ``(H, W)`` bool mask of every pixel a method replaced."""
    h, w = frame.image.shape[:2]
    out = np.zeros((h, w), dtype=bool)
    for region in frame.regions:
        x1, y1, x2, y2 = region.crop_box_xyxy
        cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
        if cx2 <= cx1 or cy2 <= cy1:
            continue
        out[cy1:cy2, cx1:cx2] |= region.replace_mask[cy1 - y1: cy2 - y1, cx1 - x1: cx2 - x1]
    return out
