"""``python -m eval CONFIG [-o DIR] [--no-resume]``: run an evaluation protocol and write its report."""

from __future__ import annotations

import argparse
import logging
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval", description=__doc__)
    parser.add_argument("config", help="protocol TOML, e.g. eval/small.toml")
    parser.add_argument("-o", "--output", default=None, help="report directory (default eval_runs/<name>)")
    parser.add_argument("--no-resume", action="store_true", help="recompute finished units")
    parser.add_argument("--methods", default="", help="comma-separated subset of the protocol's methods "
                        "(processes running disjoint subsets into one directory share its units)")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded from model hubs
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from realanon.errors import ConfigError
    from realanon.evaluation import run_evaluation

    try:
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        out = run_evaluation(args.config, args.output, resume=not args.no_resume, methods=methods or None)
    except (ConfigError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(out / "report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
