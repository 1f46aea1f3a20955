"""The shipped ONNX models (``weights/<name>/model.onnx``): verified loading and onnxruntime sessions.

Each model is listed in ``weights/manifest.json`` with its sha256; a session is only made
after the file's hash matches, so a missing, truncated or altered file raises one
:class:`~realanon.weights.WeightsError` naming the file and the problem. The models were
converted from TF.js by ``scripts/convert_models.py``; their input conventions are in each
model's ``config.json``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from realanon.detectors.onnx_rewrite import fold_hard_activations
from realanon.weights import WEIGHTS_DIR, WeightsError, read_manifest, sha256_file

_VERIFIED: dict[tuple[str, float, int], str] = {}  # (path, mtime, size) -> sha256 already checked
_LOCK = threading.Lock()


def model_path(name: str, weights_dir: Path | None = None) -> tuple[Path, str]:
    """Path of a shipped ONNX model and the sha256 the manifest gives it.

    Args:
        name: Manifest name (``"centernet"``).
        weights_dir: Folder of the manifest; default :data:`WEIGHTS_DIR` (read at call time).

    Raises:
        WeightsError: the manifest does not list ``name``.
    """
    weights_dir = WEIGHTS_DIR if weights_dir is None else Path(weights_dir)
    entry = read_manifest(weights_dir).get(name)
    if entry is None or not entry.file.endswith(".onnx"):
        raise WeightsError(f"{weights_dir / 'manifest.json'}: no ONNX model named {name!r}; "
                           "regenerate it with `python scripts/convert_models.py`")
    return weights_dir / entry.directory / entry.file, entry.sha256


def verify(path: Path, sha256: str | None) -> None:
    """Checks that ``path`` exists and hashes to ``sha256`` (when given); cached per file version.

    Raises:
        WeightsError: naming the file and what is wrong with it.
    """
    if not path.is_file():
        raise WeightsError(f"{path}: model file not found (reinstall realanon or run scripts/convert_models.py)")
    if sha256 is None:
        return
    stat = path.stat()
    key = (str(path), stat.st_mtime, stat.st_size)
    with _LOCK:
        known = _VERIFIED.get(key)
    actual = known or sha256_file(path)
    if actual != sha256:
        raise WeightsError(f"{path}: sha256 {actual[:12]}... does not match the manifest's {sha256[:12]}...; "
                           "the file is damaged or was altered (reinstall realanon or run scripts/convert_models.py)")
    with _LOCK:
        _VERIFIED[key] = actual


def default_threads() -> int:
    """Threads per onnxruntime session: ``OMP_NUM_THREADS`` when set, else 0 (onnxruntime's choice)."""
    try:
        return max(0, int(os.environ.get("OMP_NUM_THREADS", "0")))
    except ValueError:
        return 0


def providers_for(device: str) -> list[str]:
    """CUDA then CPU when ``device`` asks for cuda and onnxruntime has it; the CPU otherwise."""
    import onnxruntime as ort

    if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def open_session(name_or_path: str | Path, *, device: str = "cpu", threads: int | None = None,
                 weights_dir: Path | None = None, spinning: bool = False, varying_sizes: bool = False,
                 outputs: Sequence[str] | None = None, free_dims: Sequence[int] = (),
                 first_rows: Mapping[str, int] | None = None, fold_activations: bool = False) -> Any:
    """An ``onnxruntime.InferenceSession`` for a shipped model name or an ONNX file path.

    A shipped model is verified against the manifest's sha256 first; a path the user gives is
    only checked to exist. ``spinning`` lets idle intra-op threads busy-wait (onnxruntime's
    default; off here, as it burns CPU that decoding and encoding threads need).
    ``varying_sizes`` (a network run on inputs of many sizes) turns off onnxruntime's memory
    pattern, which plans one block per input size and allocates it for every run: for YuNet's
    three scales of a 1080p frame it only added memory per thread, and every new page it
    touches is a page fault the kernel must zero (peak memory: ``docs/benchmarks.md``).
    ``outputs`` cuts the graph so that these inner tensors are its outputs (the nodes after them
    are dropped), ``free_dims`` makes those axes of the first input any size, ``first_rows``
    cuts weights to their first rows and ``fold_activations`` writes MobileNetV3's spelled-out
    hard-swish and hard-sigmoid as single operators (:func:`truncated_model`).

    Raises:
        WeightsError: missing or altered file, or a file onnxruntime cannot load.
    """
    import onnxruntime as ort

    if isinstance(name_or_path, Path) or str(name_or_path).endswith(".onnx"):
        path, sha = Path(name_or_path), None
    else:
        path, sha = model_path(str(name_or_path), weights_dir)
    verify(path, sha)
    source: str | bytes = str(path)
    if outputs:
        source = truncated_model(path, outputs, free_dims, first_rows, fold_activations)
    options = ort.SessionOptions()
    options.intra_op_num_threads = default_threads() if threads is None else int(threads)
    options.inter_op_num_threads = 1
    # Idle intra-op threads sleep instead of spinning: on 2 shared cores spinning doubled the CPU
    # time of a CenterNet pass at 2 threads for no gain (scripts/profile_coco_person.py --spin).
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.enable_mem_pattern = not varying_sizes
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(source, options, providers=providers_for(device))
    except Exception as err:  # noqa: BLE001 - any load failure becomes one clear error
        raise WeightsError(f"{path}: onnxruntime cannot load it ({type(err).__name__}: {str(err)[:200]})") from None


def truncated_model(path: Path, outputs: Sequence[str], free_dims: Sequence[int] = (),
                    first_rows: Mapping[str, int] | None = None, fold_activations: bool = False) -> bytes:
    """The ONNX model at ``path`` cut after the tensors ``outputs``, serialized.

    Only the nodes those tensors depend on are kept (with their initializers); axes
    ``free_dims`` of the first input become symbolic, so that a fully convolutional part of a
    network can run on inputs of any size. ``first_rows`` keeps only the first rows (axis 0) of
    the named initializers: the first output channels of a convolution, when only those are used.
    ``fold_activations`` then rewrites hard-swish and hard-sigmoid patterns
    (:func:`~realanon.detectors.onnx_rewrite.fold_hard_activations`: same outputs up to float
    rounding, fewer operators).

    Raises:
        WeightsError: the file cannot be parsed or has no tensor of one of those names.
    """
    try:
        import onnx
        from onnx import helper
    except ImportError:
        raise WeightsError(f"{path}: cutting this model needs the onnx package "
                           "(pip install 'onnx>=1.16,<1.18', a dependency of realanon)") from None
    try:
        model = onnx.load(str(path))
    except Exception as err:  # noqa: BLE001 - any parse failure becomes one clear error
        raise WeightsError(f"{path}: not a readable ONNX model ({type(err).__name__}: {str(err)[:200]})") from None
    graph = model.graph
    needed, kept = set(outputs), []
    for node in reversed(graph.node):
        if needed.intersection(node.output):
            kept.append(node)
            needed.update(node.input)
    produced = {o for n in kept for o in n.output}
    missing = [o for o in outputs if o not in produced]
    if missing:
        raise WeightsError(f"{path}: no tensor named {missing[0]!r} (is this the shipped model?)")
    initializers = [i for i in graph.initializer if i.name in needed]
    _keep_first_rows(path, initializers, first_rows or {})
    del graph.node[:], graph.output[:], graph.value_info[:], graph.initializer[:]
    graph.node.extend(reversed(kept))
    graph.initializer.extend(initializers)
    graph.output.extend(helper.make_tensor_value_info(o, onnx.TensorProto.FLOAT, None) for o in outputs)
    dims = graph.input[0].type.tensor_type.shape.dim
    for axis in free_dims:
        dims[axis].dim_param = f"free_{axis}"
    if fold_activations:
        fold_hard_activations(model)
    return bytes(model.SerializeToString())


def _keep_first_rows(path: Path, initializers: list[Any], rows: Mapping[str, int]) -> None:
    """Cuts each initializer named in ``rows`` to its first ``rows[name]`` rows, in place."""
    from onnx import numpy_helper

    found = {i.name: i for i in initializers}
    for name, n in rows.items():
        if name not in found:
            raise WeightsError(f"{path}: no weight named {name!r} (is this the shipped model?)")
        array = numpy_helper.to_array(found[name])[:n]
        found[name].CopyFrom(numpy_helper.from_array(np.ascontiguousarray(array), name))


def run_raw(model_dir: Path, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Runs ``model_dir/model.onnx`` (unverified: for writing references) on ``feed``; output name -> array."""
    session = open_session(Path(model_dir) / "model.onnx", threads=1)
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feed)))


def reference_inputs(name: str, frame: np.ndarray) -> dict[str, np.ndarray]:
    """The input feed of model ``name`` for an RGB frame, following its ``config.json`` conventions."""
    if name == "centernet":
        return {"tower_0/images:0": cv2.resize(frame, (512, 512), interpolation=cv2.INTER_AREA)[None].astype(np.float32)}
    if name == "nanodet":
        x = cv2.resize(frame, (416, 416), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        return {"input_1:0": np.ascontiguousarray(x.transpose(2, 0, 1)[None])}
    if name == "movenet-multipose":
        h, w = frame.shape[:2]
        size = (max(32, round(w / 32) * 32), max(32, round(h / 32) * 32))
        return {"input:0": cv2.resize(frame, size, interpolation=cv2.INTER_AREA)[None].astype(np.int32)}
    raise KeyError(name)
