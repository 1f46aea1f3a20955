"""Hard-swish and hard-sigmoid folded into single operators: same outputs, fewer operators."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

from realanon.detectors.coco_models import CENTERNET_OUTPUTS, CENTERNET_PERSON_ONLY
from realanon.detectors.coco_tiles import letterbox
from realanon.detectors.onnx_models import model_path, open_session, truncated_model
from realanon.detectors.onnx_rewrite import fold_hard_activations
from realanon.media import read_video_frames, vtest_path

C = 0.16662598  # the shipped CenterNet's "1/6"


def _const(name: str, value: Any) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def _mobilenet_block(swish_output_too: bool = False) -> onnx.ModelProto:
    """Conv -> hard-swish as converted -> squeeze-excite gate as converted -> Conv, on random weights."""
    rng = np.random.default_rng(0)
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        n("Mul", ["k", "c1"], ["s1"]), n("Add", ["c1", "three"], ["a1"]), n("Clip", ["a1", "zero", "six"], ["r1"]),
        n("Mul", ["s1", "r1"], ["h1"]),  # hard-swish: (c x) clip(x + 3, 0, 6)
        n("GlobalAveragePool", ["h1"], ["m"]), n("Conv", ["m", "w2", "b2"], ["g0"]),
        n("Add", ["g0", "three"], ["a2"]), n("Clip", ["a2", "zero", "six"], ["r2"]),
        n("Mul", ["k", "r2"], ["gate"]), n("Mul", ["gate", "h1"], ["p"]),  # gate: c clip(x + 3, 0, 6)
        n("Conv", ["p", "w3", "b3"], ["y"]),
    ]
    inits = [_const("w1", rng.normal(0, 1, (4, 3, 3, 3))), _const("b1", rng.normal(0, 1, 4)),
             _const("w2", rng.normal(0, 1, (4, 4, 1, 1))), _const("b2", rng.normal(0, 1, 4)),
             _const("w3", rng.normal(0, 1, (2, 4, 1, 1))), _const("b3", rng.normal(0, 1, 2)),
             _const("k", C), _const("three", 3.0), _const("zero", 0.0), _const("six", 6.0)]
    outputs = [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)]
    if swish_output_too:
        outputs.append(helper.make_tensor_value_info("c1", onnx.TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, "block", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT,
                                                                             [1, 3, 8, 8])], outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _run(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})  # type: ignore[no-any-return]


def test_folding_keeps_the_outputs_and_drops_the_spelled_out_operators() -> None:
    model = _mobilenet_block()
    x = np.random.default_rng(1).normal(0, 2, (1, 3, 8, 8)).astype(np.float32)
    before = _run(model, x)[0]
    folded = onnx.ModelProto()
    folded.CopyFrom(model)
    assert fold_hard_activations(folded) == 2
    ops = [node.op_type for node in folded.graph.node]
    assert "Clip" not in ops and "Add" not in ops and ops.count("HardSigmoid") == 2
    assert {i.name for i in folded.graph.initializer} == {"w1", "b1", "w2", "b2", "w3", "b3"}  # constants gone
    assert np.allclose(_run(folded, x)[0], before, rtol=1e-5, atol=1e-5)


def test_a_pattern_whose_neighbours_do_not_qualify_is_left_as_it_is() -> None:
    model = _mobilenet_block(swish_output_too=True)  # the convolution's output is read outside the swish
    x = np.random.default_rng(2).normal(0, 2, (1, 3, 8, 8)).astype(np.float32)
    before = _run(model, x)
    assert fold_hard_activations(model) == 1  # the gate only
    assert [node.op_type for node in model.graph.node].count("Clip") == 1
    assert all(np.allclose(a, b, rtol=1e-5, atol=1e-5) for a, b in zip(_run(model, x), before))


def test_the_shipped_centernet_folds_every_pattern_and_keeps_its_heatmaps() -> None:
    path, _ = model_path("centernet")
    cut = onnx.load_from_string(truncated_model(path, CENTERNET_OUTPUTS, (1, 2), CENTERNET_PERSON_ONLY))
    assert fold_hard_activations(cut) == 28
    assert not [node for node in cut.graph.node if node.op_type == "Clip"]
    frame = read_video_frames(vtest_path(), [300])[0]
    x = letterbox(frame, 512)[0][None].astype(np.float32)
    heat, sides = ([s.run(None, {s.get_inputs()[0].name: x}) for s in (
        open_session("centernet", threads=1, outputs=CENTERNET_OUTPUTS, free_dims=(1, 2),
                     first_rows=CENTERNET_PERSON_ONLY, fold_activations=fold) for fold in (False, True))])
    assert heat[0].max() > 0.5  # people in the frame
    assert np.abs(heat[0] - sides[0]).max() < 1e-4 and np.abs(heat[1] - sides[1]).max() < 0.05
