"""Fetches the real media used by tests, benchmarks and the evaluator into the cache.

Usage: python scripts/fetch_media.py [NAME ...]   (default: all of realanon.media.MEDIA)
"""

from __future__ import annotations

import sys

from realanon import media


def main(argv: list[str]) -> int:
    names = argv or list(media.MEDIA)
    for name in names:
        result = media.fetch(name)
        print(f"{name}: {result if not hasattr(result, 'shape') else 'array ' + str(result.shape)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
