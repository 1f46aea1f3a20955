"""Anonymizing files: planning inputs and outputs, then processing each with per-file errors.

A batch never stops at a bad file: each problem becomes one :class:`FileError` and the
rest of the inputs are still processed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from realanon.audit import AuditLog, DetectionsFile
from realanon.errors import InputError
from realanon.io_images import IMAGE_EXTENSIONS, read_image, write_image_atomic
from realanon.pipeline import Anonymizer
from realanon.structures import image_size
from realanon.video import VIDEO_EXTENSIONS, anonymize_video

log = logging.getLogger(__name__)

OUTPUT_SUFFIX = "_anonymized"


@dataclass(frozen=True)
class Job:
    """One input file and where its anonymized copy goes."""

    input: Path
    output: Path
    kind: Literal["image", "video"]


@dataclass(frozen=True)
class FileError:
    """A problem with one file; ``str()`` is the line shown to the user."""

    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def media_kind(path: Path) -> Literal["image", "video"] | None:
    """``"image"``, ``"video"`` or None, from the file extension."""
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    return None


def default_output(path: Path) -> Path:
    """``{stem}_anonymized{ext}`` beside the input."""
    return path.with_name(f"{path.stem}{OUTPUT_SUFFIX}{path.suffix}")


def _scan_directory(root: Path) -> list[Path]:
    """Supported files below ``root``, skipping our own earlier outputs."""
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and media_kind(p) is not None and not p.stem.endswith(OUTPUT_SUFFIX)
        and not p.name.startswith(".")
    )


def plan_jobs(inputs: Sequence[str | Path], output: str | Path | None = None) -> tuple[list[Job], list[FileError]]:
    """Expands inputs (files and directories) into jobs.

    Args:
        inputs: Image files, video files and directories (searched recursively).
        output: None writes ``{stem}_anonymized{ext}`` beside each input. A path with a
            supported extension is an output file (only for a single input file); anything
            else is a directory, in which the tree of each input directory is mirrored.

    Returns:
        The jobs, and one error per input that cannot be processed.
    """
    jobs: list[Job] = []
    errors: list[FileError] = []
    out = Path(output) if output is not None else None
    out_is_file = out is not None and media_kind(out) is not None and not out.is_dir()
    if out_is_file and (len(inputs) != 1 or Path(inputs[0]).is_dir()):
        return [], [FileError(str(out), "an output file needs exactly one input file; give a directory for -o")]
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            files = _scan_directory(path)
            if not files:
                errors.append(FileError(str(path), "directory holds no supported image or video files"))
            for f in files:
                target = out / path.name / f.relative_to(path) if out is not None else default_output(f)
                jobs.append(Job(f, target, media_kind(f)))  # type: ignore[arg-type]
            continue
        if not path.exists():
            errors.append(FileError(str(path), "no such file or directory"))
            continue
        kind = media_kind(path)
        if kind is None:
            supported = ", ".join(sorted(IMAGE_EXTENSIONS | VIDEO_EXTENSIONS))
            errors.append(FileError(str(path), f"unsupported file type {path.suffix or '(none)'!r}; supported: {supported}"))
            continue
        if out is None:
            target = default_output(path)
        elif out_is_file:
            target = out
        else:
            target = out / path.name
        jobs.append(Job(path, target, kind))
    return _refuse_overwrites(jobs, errors)


def _refuse_overwrites(jobs: list[Job], errors: list[FileError]) -> tuple[list[Job], list[FileError]]:
    inputs = {j.input.resolve() for j in jobs}
    kept: list[Job] = []
    seen: set[Path] = set()
    for job in jobs:
        target = job.output.resolve()
        if target in inputs:
            errors.append(FileError(str(job.input), f"output {job.output} is an input; refusing to overwrite it"))
        elif target in seen:
            errors.append(FileError(str(job.input), f"output {job.output} is also the output of another input"))
        elif job.kind == "video" and job.output.suffix.lower() not in VIDEO_EXTENSIONS:
            errors.append(FileError(str(job.input), f"output {job.output} must have a video extension"))
        elif job.kind == "image" and job.output.suffix.lower() not in IMAGE_EXTENSIONS:
            errors.append(FileError(str(job.input), f"output {job.output} must have an image extension"))
        else:
            seen.add(target)
            kept.append(job)
    return kept, errors


def anonymize_image_file(
    job: Job, anonymizer: Anonymizer, *, audit: AuditLog | None = None, detections: DetectionsFile | None = None
) -> str | None:
    """Anonymizes one image file; returns the fail-closed error message if the frame failed."""
    image = read_image(job.input)
    given = detections.get(job.input, 0, image_size(image)) if detections is not None else None
    result = anonymizer(image, given, photo=True)
    write_image_atomic(job.output, result.image)
    if audit is not None:
        audit.add_frame(str(job.input), 0, result.detections, anonymizer.method_name, result.failed)
    return result.failed


def run_jobs(
    jobs: Sequence[Job],
    anonymizer: Anonymizer,
    *,
    keep_audio: bool = True,
    track: bool = True,
    audit: AuditLog | None = None,
    detections: DetectionsFile | None = None,
    progress: bool = True,
    on_done: Callable[[Job], None] | None = None,
) -> list[FileError]:
    """Processes every job, collecting one error per failed file instead of stopping.

    A frame that failed inside the pipeline is written fully masked and also reported.
    ``track`` follows people across video frames so each keeps one synthetic identity.
    """
    errors: list[FileError] = []
    for job in jobs:
        try:
            if job.kind == "image":
                failed = anonymize_image_file(job, anonymizer, audit=audit, detections=detections)
                if failed:
                    errors.append(FileError(str(job.input), f"processing failed, wrote a fully masked image ({failed})"))
            else:
                result = anonymize_video(
                    job.input, job.output, anonymizer, keep_audio=keep_audio, track=track, audit=audit,
                    detections=detections, progress=progress,
                )
                if result.failed_frames:
                    errors.append(FileError(
                        str(job.input), f"{result.failed_frames} frame(s) failed and were written fully masked"))
        except InputError as err:
            errors.append(FileError(err.path, err.problem))
            continue
        except Exception as err:  # noqa: BLE001 - one bad file must not stop the batch
            log.debug("unexpected error on %s", job.input, exc_info=True)
            errors.append(FileError(str(job.input), f"failed: {type(err).__name__}: {err}"))
            continue
        if on_done is not None:
            on_done(job)
    return errors
