"""Write the small protocol's vtest split as a COCO-format dataset (images + annotations.json).

    python -m eval.build_vtest OUT_DIR [--frames 120] [--scale 0.5]

The result can be used by any protocol with ``data.source = "coco"``, or inspected.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.build_vtest", description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--scale", type=float, default=0.5)
    parser.add_argument("--train-fraction", type=float, default=0.7)
    args = parser.parse_args(argv)

    from PIL import Image

    from realanon.evaluation.coco import to_coco_ground_truth
    from realanon.evaluation.datasets import vtest_splits
    from realanon.evaluation.protocol import DataOptions

    options = DataOptions(frames=args.frames, scale=args.scale, train_fraction=args.train_fraction)
    for split, samples in zip(("train", "val"), vtest_splits(options)):
        folder = args.out / split
        folder.mkdir(parents=True, exist_ok=True)
        coco = to_coco_ground_truth([s.instances for s in samples], [s.image.shape[:2] for s in samples], {1: "person"})
        for sample, image in zip(samples, coco["images"]):
            image["file_name"] = f"{sample.name}.png"
            Image.fromarray(sample.image).save(folder / image["file_name"])
        (args.out / f"{split}.json").write_text(json.dumps(coco))
        print(f"{split}: {len(samples)} images, {len(coco['annotations'])} people -> {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
