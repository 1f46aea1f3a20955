"""Command line: parses arguments, builds options, calls the library. No logic of its own."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from realanon.arguments import add_config_arguments, config_from_args
from realanon.errors import RealanonError
from realanon.native_logs import filtered_native_stderr, set_process_env

PROG = "realanon"


def _add_anonymize(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "anonymize",
        help="anonymize images, directories and videos",
        description="Anonymize images (jpg, png, webp, bmp, tiff), directories (recursive) and videos "
        "(mp4, avi, mov, mkv). Outputs go to {stem}_anonymized{ext} beside each input unless -o is given.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image/video files or directories")
    p.add_argument("-o", "--output", help="output file (one input) or directory (mirrors input trees)")
    add_config_arguments(p)
    p.add_argument("--save-detections", metavar="FILE.json", help="write a JSON audit of every region replaced")
    p.add_argument("--detections", metavar="FILE", help="use these detections instead of a detector: "
                   "realanon JSON, COCO JSON or Cityscapes gtFine polygons")
    p.add_argument("--keep-audio", action=argparse.BooleanOptionalAction, default=True,
                   help="copy the audio stream of videos (default: yes)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Realistic anonymization of people in images and video.")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log details (and tracebacks) to stderr, third-party libraries' logs included")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_anonymize(sub)
    sub.add_parser("models", help="list registered detectors, generators, post-processors and presets")
    demo = sub.add_parser("demo", help="anonymize the bundled astronaut image and a short clip; needs no files")
    demo.add_argument("-o", "--output", default="realanon_demo", help="output directory (default ./realanon_demo)")
    ev = sub.add_parser("eval", help="measure privacy and utility of methods side by side")
    ev.add_argument("config", help="evaluation protocol TOML (see eval/)")
    ev.add_argument("-o", "--output", help="report directory")
    ev.add_argument("--no-resume", action="store_true", help="recompute finished methods/seeds")
    sub.add_parser("batch", help="dataset jobs sharded over processes/GPUs/machines (see `realanon batch -h`)",
                   add_help=False)
    return parser


def cmd_anonymize(args: argparse.Namespace) -> int:
    from realanon.audit import AuditLog
    from realanon.jobs import plan_jobs, run_jobs
    from realanon.pipeline import build_anonymizer

    config = config_from_args(args)
    jobs, plan_errors = plan_jobs(args.inputs, args.output)
    run_errors = []
    if jobs:
        detections = None
        if args.detections:
            from realanon.annotations import load_detections_file

            detections = load_detections_file(args.detections)
        anonymizer = build_anonymizer(config, detector=None if detections is not None else "auto")
        audit = AuditLog() if args.save_detections else None
        run_errors = run_jobs(jobs, anonymizer, keep_audio=args.keep_audio, track=config.track, audit=audit,
                              detections=detections, progress=not args.no_progress)
        if audit is not None:
            audit.save(args.save_detections)
    for err in plan_errors + run_errors:
        print(f"{PROG}: error: {err}", file=sys.stderr)
    failed = len({e.path for e in run_errors})
    print(f"{PROG}: {len(jobs) - failed} of {len(jobs) + len(plan_errors)} input(s) anonymized", file=sys.stderr)
    return 1 if plan_errors or run_errors else 0


def cmd_models(_: argparse.Namespace) -> int:
    from realanon.config import available_presets
    from realanon.registry import DETECTORS, GENERATORS, POSTPROCESSORS

    for title, registry in (("detectors", DETECTORS), ("generators", GENERATORS), ("post-processors", POSTPROCESSORS)):
        print(f"{title}: {', '.join(registry.names()) or '(none)'}")
    print(f"presets: {', '.join(available_presets()) or '(none)'}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from realanon.demo import run_demo

    for line in run_demo(Path(args.output)):
        print(line)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from realanon.evaluation import run_evaluation

    report = run_evaluation(args.config, args.output, resume=not args.no_resume)
    print(f"report: {report}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``realanon`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    set_process_env()
    if argv[:1] in (["-v"], ["--verbose"]) and argv[1:2] == ["batch"]:
        argv = ["batch", "-v", *argv[2:]]
    if argv[:1] == ["batch"]:
        from realanon.batch import main as batch_main

        return batch_main(argv[1:])
    args = build_parser().parse_args(argv)
    quiet = contextlib.nullcontext() if args.verbose else filtered_native_stderr()
    with quiet:
        return _run_command(args)


def _run_command(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format=f"{PROG}: %(message)s")
    handlers = {"anonymize": cmd_anonymize, "models": cmd_models, "demo": cmd_demo, "eval": cmd_eval}
    try:
        return handlers[args.command](args)
    except RealanonError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
