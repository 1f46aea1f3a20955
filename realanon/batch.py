"""Dataset jobs: anonymize a folder, a COCO file or a list of videos, sharded and resumable.

Entry points::

    main(argv: list[str] | None = None) -> int      # `realanon batch ...` (argparse lives here)
    run_batch(inputs: list[str], output_dir: Path, config: AnonymizerConfig, *,
              shard: tuple[int, int] | None = None, keep_audio: bool = True,
              save_detections: bool = False, retry_failed: bool = True,
              progress: bool = False, anonymizer: Anonymizer | None = None) -> BatchReport

Inputs may be directories (searched recursively, the tree mirrored under ``output_dir/<dir name>``),
COCO annotation files (``*.json``: every listed image, paths relative to the JSON's folder),
list files (``*.txt``: one path per line, relative to the list's folder) and image or video files.

Sharding: the sorted job list is split round-robin, job ``i`` going to shard ``i % count``. The
shard is ``(process_index, num_processes)`` of accelerate's ``PartialState`` unless given, so
``accelerate launch --num_processes N -m realanon.batch ...`` spreads the work over processes,
GPUs and machines (each process uses ``cuda:<local index>`` when the config asks for CUDA).

Manifest: each shard appends one JSON line per finished or failed file to
``output_dir/.realanon_manifest/shard-K-of-N.jsonl`` (flushed and fsynced per line). A rerun reads
every manifest file and skips files whose last record is ``done`` for the same config and whose
output exists, so an interrupted job resumes without redoing or losing finished files, even with a
different number of processes. Failures are recorded per file and never stop the job.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from realanon.arguments import add_config_arguments, config_from_args
from realanon.audit import AuditLog
from realanon.config import AnonymizerConfig
from realanon.errors import InputError, RealanonError
from realanon.jobs import Job, media_kind, plan_jobs
from realanon.native_logs import filtered_native_stderr, set_process_env
from realanon.pipeline import Anonymizer, build_anonymizer

log = logging.getLogger(__name__)

MANIFEST_DIR = ".realanon_manifest"
LIST_SUFFIXES = frozenset({".txt", ".lst"})


@dataclass(frozen=True)
class BatchReport:
    """What one shard of a batch did.

    Attributes:
        shard: ``(index, count)`` of this process.
        done: Inputs anonymized in this run.
        skipped: Inputs skipped because the manifest says they are finished.
        failed: ``(input, problem)`` per input that failed in this run.
        masked_frames: ``(input, frames)`` per input with frames written fully masked (fail closed).
        manifest: This shard's manifest file.
    """

    shard: tuple[int, int]
    done: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    failed: tuple[tuple[str, str], ...] = ()
    masked_frames: tuple[tuple[str, int], ...] = ()
    manifest: Path = field(default_factory=Path)


def config_fingerprint(config: AnonymizerConfig) -> str:
    """A short hash of everything that changes the output (the device does not)."""
    data = dataclasses.asdict(config)
    data.pop("device", None)
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def shard_jobs(jobs: Sequence[Job], index: int, count: int) -> list[Job]:
    """The jobs of shard ``index`` of ``count``: round-robin over the jobs sorted by input path."""
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard index must be in [0, {count}), got {index}")
    ordered = sorted(jobs, key=lambda j: (str(j.input), str(j.output)))
    return ordered[index::count]


def _read_lines(path: Path) -> list[str]:
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(path, f"cannot read list file ({err})") from None
    return [str(path.parent / s) if not Path(s).is_absolute() else s
            for s in (line.strip() for line in lines) if s and not s.startswith("#")]


def _coco_jobs(path: Path, output_dir: Path) -> list[Job]:
    try:
        data = json.loads(path.read_text())
        names = [img["file_name"] for img in data["images"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(path, f"not a COCO annotation file ({type(err).__name__}: {err})") from None
    jobs = []
    for name in names:
        source = path.parent / name
        kind = media_kind(source)
        if kind is not None:
            jobs.append(Job(source, output_dir / path.stem / name, kind))
    return jobs


def expand_inputs(inputs: Iterable[str], output_dir: Path) -> tuple[list[Job], list[tuple[str, str]]]:
    """Turns folders, COCO files, list files and media files into jobs, and problems per input."""
    jobs: list[Job] = []
    problems: list[tuple[str, str]] = []
    plain: list[str] = []
    for raw in inputs:
        path = Path(raw)
        try:
            if path.is_file() and path.suffix.lower() == ".json":
                jobs.extend(_coco_jobs(path, output_dir))
            elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
                plain.extend(_read_lines(path))
            else:
                plain.append(raw)
        except InputError as err:
            problems.append((err.path, err.problem))
    planned, errors = plan_jobs(plain, output_dir) if plain else ([], [])
    problems.extend((e.path, e.problem) for e in errors)
    return jobs + planned, problems


def read_manifest(output_dir: Path) -> dict[str, dict[str, Any]]:
    """The last record per input across every shard's manifest file (torn last lines are ignored)."""
    latest: dict[str, dict[str, Any]] = {}
    for path in sorted((output_dir / MANIFEST_DIR).glob("*.jsonl")):
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut by an interruption
            if record.get("time", 0) >= latest.get(record["input"], {}).get("time", -1):
                latest[record["input"]] = record
    return latest


def is_finished(job: Job, record: dict[str, Any] | None, fingerprint: str, retry_failed: bool) -> bool:
    """Whether the manifest says ``job`` needs no work."""
    if record is None or record.get("config") != fingerprint:
        return False
    if record["status"] == "done":
        return Path(record["output"]).exists() and record["output"] == str(job.output)
    return record["status"] == "failed" and not retry_failed


def _append(manifest: Path, record: dict[str, Any]) -> None:
    with manifest.open("a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def process_job(job: Job, anonymizer: Anonymizer, keep_audio: bool, audit: AuditLog | None,
                progress: bool) -> int:
    """Anonymizes one file; returns the number of frames written fully masked."""
    if job.kind == "image":
        from realanon.jobs import anonymize_image_file

        return int(anonymize_image_file(job, anonymizer, audit=audit) is not None)
    from realanon.video import anonymize_video

    result = anonymize_video(job.input, job.output, anonymizer, keep_audio=keep_audio, audit=audit,
                             progress=progress)
    return result.failed_frames


def _process_state(shard: tuple[int, int] | None, config: AnonymizerConfig) -> tuple[int, int, AnonymizerConfig]:
    """This process's shard, from accelerate unless given, and the config on this process's device."""
    if shard is not None:
        return shard[0], shard[1], config
    from accelerate import PartialState

    state = PartialState(cpu=not config.device.startswith("cuda"))
    if config.device == "cuda" and state.num_processes > 1:
        config = config.replace(device=f"cuda:{state.local_process_index}")
    return state.process_index, state.num_processes, config


def run_batch(
    inputs: list[str],
    output_dir: Path,
    config: AnonymizerConfig,
    *,
    shard: tuple[int, int] | None = None,
    keep_audio: bool = True,
    save_detections: bool = False,
    retry_failed: bool = True,
    progress: bool = False,
    anonymizer: Anonymizer | None = None,
) -> BatchReport:
    """Anonymizes this process's share of ``inputs`` into ``output_dir``, resumably.

    Args:
        inputs: Directories, COCO JSON files, ``.txt`` list files, image and video files.
        output_dir: Where outputs (mirroring the inputs), the manifest and audits go.
        config: The anonymization to apply.
        shard: ``(index, count)``; None asks accelerate's ``PartialState``.
        keep_audio: Copy audio streams of videos.
        save_detections: Write ``<output>.detections.json`` (realanon audit format) per file.
        retry_failed: Redo files whose last record is a failure.
        progress: Show a progress bar per video.
        anonymizer: Use this instead of building one from ``config`` (tests, plug-ins).

    Returns:
        What this shard did. Problems with single files are in ``failed``; nothing is raised for them.
    """
    output_dir = Path(output_dir)
    index, count, config = _process_state(shard, config)
    jobs, problems = expand_inputs(inputs, output_dir)
    fingerprint = config_fingerprint(config)
    previous = read_manifest(output_dir)
    manifest = output_dir / MANIFEST_DIR / f"shard-{index}-of-{count}.jsonl"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    mine = shard_jobs(jobs, index, count)
    todo = [j for j in mine if not is_finished(j, previous.get(str(j.input)), fingerprint, retry_failed)]
    skipped = tuple(str(j.input) for j in mine if j not in todo)
    if todo and anonymizer is None:
        anonymizer = build_anonymizer(config)
    done, failed, masked = [], [p for i, p in enumerate(problems) if i % count == index], []
    for job in todo:
        record, masked_count = _run_one(job, anonymizer, keep_audio, save_detections, progress)  # type: ignore[arg-type]
        _append(manifest, {**record, "config": fingerprint, "shard": [index, count]})
        if record["status"] == "done":
            done.append(str(job.input))
            if masked_count:
                masked.append((str(job.input), masked_count))
        else:
            failed.append((str(job.input), record["error"]))
    return BatchReport((index, count), tuple(done), skipped, tuple(failed), tuple(masked), manifest)


def _run_one(job: Job, anonymizer: Anonymizer, keep_audio: bool, save_detections: bool,
             progress: bool) -> tuple[dict[str, Any], int]:
    start = time.time()
    audit = AuditLog() if save_detections else None
    record: dict[str, Any] = {"input": str(job.input), "output": str(job.output), "kind": job.kind}
    try:
        masked = process_job(job, anonymizer, keep_audio, audit, progress)
        if audit is not None:
            audit.save(job.output.with_name(job.output.name + ".detections.json"))
    except RealanonError as err:
        return {**record, "status": "failed", "error": str(err), "time": time.time()}, 0
    except Exception as err:  # noqa: BLE001 - one bad file must not stop the job
        log.debug("unexpected error on %s", job.input, exc_info=True)
        return {**record, "status": "failed", "error": f"{type(err).__name__}: {err}", "time": time.time()}, 0
    return {**record, "status": "done", "masked_frames": masked, "seconds": round(time.time() - start, 3),
            "time": time.time()}, masked


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="realanon batch",
        description="Anonymize a dataset (folders, COCO files, lists of files) sharded over processes; "
        "run under `accelerate launch` to use several processes, GPUs or machines. Resumable.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="directories, COCO .json, .txt lists, files")
    parser.add_argument("-o", "--output", required=True, help="output directory (holds the manifest)")
    add_config_arguments(parser)  # the same --target/--method/--config/--set/... as `realanon anonymize`
    parser.add_argument("--shard", metavar="K/N", help="process shard K of N instead of asking accelerate")
    parser.add_argument("--keep-audio", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--save-detections", action="store_true", help="write <output>.detections.json per file")
    parser.add_argument("--no-retry-failed", action="store_true", help="skip files that failed in an earlier run")
    parser.add_argument("--progress", action="store_true", help="show a progress bar per video")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log details to stderr, third-party libraries' logs included")
    return parser


def _parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    index, sep, count = text.partition("/")
    try:
        shard = (int(index), int(count))
    except ValueError:
        shard = (-1, 0)
    if not sep or shard[1] < 1 or not 0 <= shard[0] < shard[1]:
        raise RealanonError(f"--shard expects K/N with 0 <= K < N, got {text!r}")
    return shard


def main(argv: list[str] | None = None) -> int:
    """``realanon batch``: returns 0 when every file of this shard succeeded, 1 otherwise, 2 on usage errors."""
    set_process_env()
    args = build_parser().parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="realanon batch: %(message)s")
        return _main(args)
    with filtered_native_stderr():
        return _main(args)


def _main(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
        report = run_batch(args.inputs, Path(args.output), config, shard=_parse_shard(args.shard),
                           keep_audio=args.keep_audio, save_detections=args.save_detections,
                           retry_failed=not args.no_retry_failed, progress=args.progress)
    except RealanonError as err:
        print(f"realanon batch: error: {err}", file=sys.stderr)
        return 2
    k, n = report.shard
    for path, problem in report.failed:
        print(f"realanon batch [{k}/{n}]: error: {path}: {problem}", file=sys.stderr)
    for path, frames in report.masked_frames:
        print(f"realanon batch [{k}/{n}]: warning: {path}: {frames} frame(s) written fully masked", file=sys.stderr)
    print(f"realanon batch [{k}/{n}]: {len(report.done)} done, {len(report.skipped)} already finished, "
          f"{len(report.failed)} failed; manifest {report.manifest}", file=sys.stderr)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
