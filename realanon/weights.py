"""Model weights: typed manifest entries, verified safetensors loading and hub references.

A model is a directory in the diffusers ``save_pretrained`` layout: ``config.json`` (plain
JSON, the architecture's arguments) next to ``model.safetensors``. Loading checks the file's
sha256 when one is known and loads the tensors strictly (missing or unexpected keys and
wrong shapes raise). Nothing is ever unpickled: only JSON and safetensors are read.

``weights/manifest.json`` in the repository lists the models we ship or know of::

    {"models": [{"name": "gan-face-64", "kind": "gan", "directory": "gan-face-64",
                 "file": "model.safetensors", "sha256": "...", "licence": "...",
                 "training_data": "...", "training": "...", "metrics": {...}}]}

A model can also be named by a hub id with a pinned revision, ``"org/name@revision"``; it is
found in the local Hugging Face cache, or downloaded when the network is allowed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from realanon.errors import RealanonError
from realanon.paths import project_dir

log = logging.getLogger(__name__)

WEIGHTS_DIR = project_dir("weights")
MANIFEST_NAME = "manifest.json"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
# Only configs, tokenizer files and safetensors are fetched from the hub: never pickles.
HUB_FILE_PATTERNS = ["*.json", "*.txt", "*.safetensors", "*.model"]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+(@[\w.\-/]+)?$")


class WeightsError(RealanonError):
    """Weights that cannot be found, verified or loaded, and what to do about it."""


@dataclass(frozen=True)
class ModelEntry:
    """One model of the manifest.

    Attributes:
        name: Name users pass as ``model=``.
        kind: Which generator uses it (``"gan"``, ...).
        directory: Model directory, relative to the manifest's folder.
        file: The safetensors file inside ``directory``.
        sha256: Hex sha256 of ``file``.
        licence: Licence of the weights.
        training_data: What the model was trained on.
        training: How it was trained (command, hardware, time).
        metrics: Measured figures, with the command that printed them.
    """

    name: str
    kind: str
    directory: str
    file: str
    sha256: str
    licence: str = ""
    training_data: str = ""
    training: str = ""
    metrics: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model's files are and what its weights must hash to.

    Attributes:
        directory: Directory holding ``config.json`` and the safetensors file.
        file: Name of the safetensors file.
        sha256: Expected hex sha256, or None when the model came from a user directory.
    """

    directory: Path
    file: str = WEIGHTS_NAME
    sha256: str | None = None


def read_manifest(weights_dir: Path = WEIGHTS_DIR) -> dict[str, ModelEntry]:
    """Reads ``manifest.json`` of ``weights_dir``; name -> entry (empty when there is none)."""
    path = weights_dir / MANIFEST_NAME
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        entries = [ModelEntry(**item) for item in raw.get("models", [])]
    except (ValueError, TypeError) as err:
        raise WeightsError(f"{path}: not a valid weights manifest ({err})") from None
    return {e.name: e for e in entries}


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: Path, sha256: str) -> Path:
    """Returns ``path`` once it exists and hashes to ``sha256``.

    Raises:
        WeightsError: naming the file, when it is missing or its hash differs (damaged or altered).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: model file not found (reinstall realanon)")
    actual = sha256_file(path)
    if actual != sha256:
        raise WeightsError(f"{path}: sha256 {actual} does not match the manifest's {sha256}; "
                           "the file is damaged or was altered (reinstall realanon)")
    return path


def shipped_file(name: str, weights_dir: Path | None = None) -> Path:
    """The verified file of a shipped model that is not safetensors (an ONNX network, ...).

    Args:
        name: Manifest name, e.g. ``"centerface"``.
        weights_dir: Folder of the manifest; default :data:`WEIGHTS_DIR`.

    Raises:
        WeightsError: the manifest does not list ``name``, or its file is missing or altered.
    """
    weights_dir = WEIGHTS_DIR if weights_dir is None else Path(weights_dir)
    entry = read_manifest(weights_dir).get(name)
    if entry is None:
        raise WeightsError(f"{weights_dir / MANIFEST_NAME}: no model named {name!r} (reinstall realanon)")
    return verify_file(weights_dir / entry.directory / entry.file, entry.sha256)


def is_hub_id(spec: str) -> bool:
    """True for ``"org/name"`` or ``"org/name@revision"`` that is not an existing path."""
    return bool(_HUB_ID.match(spec)) and not Path(spec).exists()


def resolve_model(spec: str | Path, *, weights_dir: Path = WEIGHTS_DIR) -> ResolvedModel:
    """Finds the files of a model named by manifest name, directory or hub id.

    Args:
        spec: A manifest name (``"gan-face-64"``), a local model directory, or a hub id
            ``"org/name@revision"``.
        weights_dir: Folder of the manifest.

    Raises:
        WeightsError: when the model cannot be found, with how to provide it.
    """
    spec_str = str(spec)
    manifest = read_manifest(weights_dir)
    if spec_str in manifest:
        entry = manifest[spec_str]
        return ResolvedModel(weights_dir / entry.directory, entry.file, entry.sha256)
    path = Path(spec_str).expanduser()
    if path.is_dir():
        return ResolvedModel(path)
    if is_hub_id(spec_str):
        return ResolvedModel(download_hub_model(spec_str))
    known = ", ".join(sorted(manifest)) or "none"
    raise WeightsError(
        f"model {spec_str!r} is neither a shipped model ({known}), a directory, nor a hub id 'org/name@revision'"
    )


def split_hub_id(hub_id: str) -> tuple[str, str | None]:
    """``"org/name@rev"`` -> ``("org/name", "rev")``; the revision is None when not pinned."""
    repo, _, revision = hub_id.partition("@")
    return repo, revision or None


def download_hub_model(hub_id: str) -> Path:
    """Local directory of a hub model: from the Hugging Face cache, or downloaded when allowed.

    Raises:
        WeightsError: offline (``HF_HUB_OFFLINE=1`` or no network) and not in the cache,
            saying how to provide the files.
    """
    repo, revision = split_hub_id(hub_id)
    if revision is None:
        log.warning("hub model %s has no pinned revision; pin one with %s@<commit>", repo, repo)
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    last: Exception = ImportError("huggingface_hub is not installed")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - huggingface_hub comes with diffusers
        pass
    else:
        for local_only in (True,) if offline else (True, False):
            try:
                return Path(snapshot_download(repo, revision=revision, local_files_only=local_only,
                                              allow_patterns=HUB_FILE_PATTERNS))
            except Exception as err:  # noqa: BLE001 - any hub failure becomes one clear error
                last = err
    rev = f" --revision {revision}" if revision else ""
    raise WeightsError(
        f"model {hub_id!r} is not in the local cache and could not be downloaded ({type(last).__name__}). "
        f"On a machine with a network run `hf download {repo}{rev} --local-dir DIR` (older huggingface_hub: "
        f"`huggingface-cli download ...`), copy DIR here and pass model='DIR' "
        f"(a directory with model_index.json or config.json and *.safetensors files)"
    )


def read_config(directory: Path) -> dict[str, Any]:
    """The ``config.json`` of a model directory as a dict."""
    path = Path(directory) / CONFIG_NAME
    if not path.exists():
        raise WeightsError(f"{directory}: no {CONFIG_NAME}; a model directory holds {CONFIG_NAME} + *.safetensors")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise WeightsError(f"{path}: invalid JSON ({err})") from None
    if not isinstance(config, dict):
        raise WeightsError(f"{path}: expected a JSON object")
    return config


def load_state_dict(model: ResolvedModel) -> dict[str, Any]:
    """Loads the safetensors of ``model`` after checking its sha256 (when known).

    Returns:
        Tensor name -> CPU ``torch.Tensor``.
    """
    from safetensors.torch import load_file

    path = model.directory / model.file
    if path.suffix != ".safetensors":
        raise WeightsError(f"{path}: only .safetensors weights are loaded (never pickles)")
    if not path.exists():
        raise WeightsError(f"{path}: weights file not found")
    if model.sha256 is not None:
        actual = sha256_file(path)
        if actual != model.sha256:
            raise WeightsError(f"{path}: sha256 {actual} does not match the manifest's {model.sha256}")
    return load_file(str(path))


def load_strict(module: Any, state_dict: Mapping[str, Any]) -> None:
    """Copies ``state_dict`` into a ``torch.nn.Module``; any missing/unexpected key or shape raises.

    Raises:
        WeightsError: listing the missing, unexpected and mis-shaped tensors.
    """
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    shapes = sorted(
        f"{k} {tuple(state_dict[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    )
    problems = [f"{label}: {', '.join(items[:8])}{' ...' if len(items) > 8 else ''}"
                for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes))
                if items]
    if problems:
        raise WeightsError("weights do not match the model; " + "; ".join(problems))
    module.load_state_dict(dict(state_dict), strict=True)


def save_model(module: Any, config: Mapping[str, Any], directory: Path) -> str:
    """Writes ``config.json`` and ``model.safetensors`` of a ``torch.nn.Module``.

    Returns:
        The hex sha256 of the written safetensors file (for the manifest).
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG_NAME).write_text(json.dumps(dict(config), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    save_file(tensors, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})
    return sha256_file(directory / WEIGHTS_NAME)
