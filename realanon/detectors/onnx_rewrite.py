"""Rewrites of an ONNX graph that keep what it computes (up to float rounding) and run faster in onnxruntime.

TensorFlow's MobileNetV3, as the TF.js conversion writes it (``scripts/convert_models.py``), spells
out each hard-swish as ``(c·x)·clip(x + 3, 0, 6)`` and each squeeze-excite gate as
``c·clip(x + 3, 0, 6)``, with ``c`` about 1/6 (0.16662598 in the shipped CenterNet): four
element-wise operators each, which also push onnxruntime's blocked (NCHWc) convolutions in and
out of their layout. :func:`fold_hard_activations` writes them as one ``HardSigmoid`` (and one
``Mul`` for the swish) and moves the constant ``k = 6c`` into a neighbouring convolution's weights:

* hard-swish of a convolution's output ``x`` (used by nothing else):
  ``c·x·clip(x + 3, 0, 6) = (k·x)·HardSigmoid(k·x; alpha=1/(6k), beta=1/2)``, so the
  convolution's weights and bias are multiplied by ``k``;
* a gate ``g = c·clip(x + 3, 0, 6) = k·HardSigmoid(x; 1/6, 1/2)`` whose products ``g·h`` all
  feed only convolutions: ``k`` goes into those convolutions' weights.

A pattern whose neighbours do not qualify is left as it is.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def fold_hard_activations(model: Any) -> int:
    """Rewrites the hard-swish and hard-sigmoid patterns of ``model`` (an ``onnx.ModelProto``) in place.

    Returns:
        How many patterns were rewritten.
    """
    graph = _Graph(model)
    done = 0
    for clip in [n for n in model.graph.node if n.op_type == "Clip"]:
        done += graph.fold(clip)
    graph.commit()
    return done


class _Graph:
    """Look-ups over one graph and the node replacements made so far."""

    def __init__(self, model: Any) -> None:
        from onnx import numpy_helper

        self.model = model
        self.consts = {i.name: i for i in model.graph.initializer}
        self.values = {name: numpy_helper.to_array(i) for name, i in self.consts.items()}
        self.producer = {o: n for n in model.graph.node for o in n.output}
        self.consumers: dict[str, list[Any]] = {}
        for node in model.graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.uses = {name: len(nodes) for name, nodes in self.consumers.items()}
        self.dropped: set[int] = set()
        self.added: dict[int, list[Any]] = {}  # id of a dropped node -> the nodes that replace it

    def scalar(self, name: str) -> float | None:
        value = self.values.get(name)
        return float(value.ravel()[0]) if value is not None and value.size == 1 else None

    def only_consumer(self, name: str, op: str) -> Any | None:
        nodes = self.consumers.get(name, [])
        return nodes[0] if len(nodes) == 1 and nodes[0].op_type == op and name not in self._outputs() else None

    def _outputs(self) -> set[str]:
        return {o.name for o in self.model.graph.output}

    def fold(self, clip: Any) -> int:
        """Rewrites the pattern around ``clip`` when it is one of the two and its neighbours qualify (1), else 0."""
        add = self.producer.get(clip.input[0])
        if add is None or add.op_type != "Add" or len(clip.input) < 3 or self.only_consumer(add.output[0], "Clip") is None:
            return 0
        if (self.scalar(clip.input[1]), self.scalar(clip.input[2])) != (0.0, 6.0):
            return 0
        three = [i for i in add.input if self.scalar(i) == 3.0]
        rest = [i for i in add.input if i not in three]
        mul = self.only_consumer(clip.output[0], "Mul")
        if len(three) != 1 or len(rest) != 1 or mul is None:
            return 0
        x = rest[0]
        other = next(i for i in mul.input if i != clip.output[0])
        if self.scalar(other) is not None:
            return self._fold_gate(x, [add, clip, mul], 6 * self.scalar(other))  # type: ignore[operator]
        return self._fold_swish(x, [add, clip, mul], other)

    def _fold_gate(self, x: str, pattern: list[Any], k: float) -> int:
        gate = pattern[-1].output[0]
        convs = []
        for product in self.consumers.get(gate, []):
            if product.op_type != "Mul":
                return 0
            after = self.consumers.get(product.output[0], [])
            if not after or any(n.op_type != "Conv" or n.input[0] != product.output[0] for n in after):
                return 0
            convs += after
        if not all(self._scalable(c.input[1]) for c in convs):
            return 0
        for conv in convs:
            self._scale(conv.input[1], k)
        self._replace(pattern, [_hard_sigmoid(x, gate, 1 / 6)])
        return 1

    def _fold_swish(self, x: str, pattern: list[Any], scaled_x: str) -> int:
        pre = self.producer.get(scaled_x)
        if pre is None or pre.op_type != "Mul" or self.only_consumer(scaled_x, "Mul") is None:
            return 0
        c = [self.scalar(i) for i in pre.input if i != x]
        conv = self.producer.get(x)
        if len(c) != 1 or c[0] is None or x not in pre.input or conv is None or conv.op_type != "Conv":
            return 0
        if sorted(n.name for n in self.consumers.get(x, [])) != sorted([pre.name, pattern[0].name]) \
                or x in self._outputs() or not all(self._scalable(i) for i in conv.input[1:]):
            return 0
        k = 6 * c[0]
        for name in conv.input[1:]:
            self._scale(name, k)
        out = pattern[-1].output[0]
        from onnx import helper

        hs = _hard_sigmoid(x, f"{out}/hard_sigmoid", 1 / (6 * k))
        self._replace([pre, *pattern], [hs, helper.make_node("Mul", [x, hs.output[0]], [out], name=f"{out}/swish")])
        return 1

    def _scalable(self, name: str) -> bool:
        return name in self.consts and self.uses.get(name, 0) == 1

    def _scale(self, name: str, k: float) -> None:
        from onnx import numpy_helper

        value = (self.values[name] * np.float32(k)).astype(self.values[name].dtype)
        self.values[name] = value
        self.consts[name].CopyFrom(numpy_helper.from_array(value, name))

    def _replace(self, old: list[Any], new: list[Any]) -> None:
        self.dropped.update(id(n) for n in old)
        self.added[id(old[-1])] = new

    def commit(self) -> None:
        """Writes the graph's nodes with the replacements in place of the patterns, in order, and
        drops the constants no node uses any more."""
        nodes = []
        for node in self.model.graph.node:
            if id(node) in self.added:
                nodes.extend(self.added[id(node)])
            elif id(node) not in self.dropped:
                nodes.append(node)
        del self.model.graph.node[:]
        self.model.graph.node.extend(nodes)
        used = {name for node in nodes for name in node.input}
        kept = [i for i in self.model.graph.initializer if i.name in used]
        del self.model.graph.initializer[:]
        self.model.graph.initializer.extend(kept)


def _hard_sigmoid(x: str, out: str, alpha: float) -> Any:
    """A ``HardSigmoid`` node ``clip(alpha x + 1/2, 0, 1)``, named after its output."""
    from onnx import helper

    return helper.make_node("HardSigmoid", [x], [out], alpha=float(alpha), beta=0.5, name=f"{out}/node")
