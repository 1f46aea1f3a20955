"""The network passes of the COCO person box search: the shipped CenterNet (cut before its own
decoding, any input size) and NanoDet (416x416), each returning person boxes and scores in its input.

Used by :mod:`realanon.detectors.coco_boxes`, which decides where a frame is searched.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from realanon.detectors.coco_decode import PERSON, decode_centernet, decode_nanodet
from realanon.detectors.onnx_models import open_session

# CenterNet's inner tensors kept by the cut graph (NCHW): 80 class heatmaps and the 4 box sides in input
# pixels, both at stride 4 (the shipped graph's own decoding, which needs a 512x512 input, is dropped).
CENTERNET_OUTPUTS = ("tower_0/Sigmoid:0", "tower_0/mul:0")
# Weight and bias of the 1x1 convolution that makes the 80 class heatmaps: only the first (person,
# class 0) is kept, which leaves its heatmap bit-identical and saves about a tenth of a pass.
CENTERNET_PERSON_ONLY = {"Const_30:0": PERSON + 1, "Const_31:0": PERSON + 1}


class PersonBoxModel(Protocol):
    """One network pass: person boxes and scores in a square ``input_size`` RGB uint8 canvas."""

    name: str
    input_size: int

    def __call__(self, canvas: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class CenterNetBoxes:
    """The shipped MobileNetV3 CenterNet, run up to its heatmaps, so on RGB 0-255 float images of any
    size whose sides are multiples of 32 (it was converted for 512x512).

    The graph is cut (:func:`~realanon.detectors.onnx_models.truncated_model`) after the class
    heatmaps (sigmoid, stride 4; only the person's is computed) and the box sides; the person
    heatmap's local maxima scoring at least ``min_score`` are decoded here
    (:func:`decode_centernet`) as the model's own decoding does, without its cap of 100
    detections of all classes. With ``fold_activations`` (the default) its hard-swish and
    hard-sigmoid patterns run as single operators
    (:func:`~realanon.detectors.onnx_rewrite.fold_hard_activations`): the same heatmaps up to
    float rounding, 0.7-0.9x the CPU per pass (``scripts/profile_coco_person.py --fold``).
    """

    name = "centernet_person"
    input_size = 512
    any_size = True

    def __init__(self, model: str = "centernet", min_score: float = 0.25, device: str = "cpu",
                 threads: int | None = None, fold_activations: bool = True) -> None:
        self.min_score = float(min_score)
        self._session = open_session(model, device=device, threads=threads, outputs=CENTERNET_OUTPUTS,
                                     free_dims=(1, 2), first_rows=CENTERNET_PERSON_ONLY,
                                     fold_activations=fold_activations)
        self._input = self._session.get_inputs()[0].name

    def __call__(self, canvas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        heat, sides = self._session.run(None, {self._input: canvas[None].astype(np.float32)})
        return decode_centernet(heat[0, PERSON], sides[0], self.min_score)


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
