"""How often ``centernet_person`` finds one small pasted person, by search layout; prints markdown.

Run (offline, CPU; about two minutes on 2 cores)::

    OMP_NUM_THREADS=1 python scripts/measure_small_people.py [--positions 20] [--seed 0]

A real full-body photo (openpeople P003 ``studio_posture.jpg``, the one
``tests/detectors/test_coco_person.py`` pastes) is shrunk so the person is ``HEIGHT`` px tall and
pasted at ``--positions`` random places (seeded) on vtest.avi frame 0 resized to the frame size.
A position counts as found when a detection scoring >= 0.25 (the default) contains the pasted
person's centre and is under 2.5x its height. Every layout sees the same images.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from realanon.detectors.coco_boxes import centernet_person
from realanon.media import openpeople_images, read_video_frames, vtest_path

LAYOUTS = {
    "one whole-frame pass (min_height=0)": {"min_height": 0},
    "square tiles (fit_tiles=false)": {"fit_tiles": False},
    "fitted tiles (fit_tiles=true)": {"fit_tiles": True},
}
CASES = (((1080, 1920), 24), ((720, 1280), 24), ((720, 1280), 32))


def pasted(frame_size: tuple[int, int], height: int, at: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """The street frame with the person pasted ``height`` px tall at ``at`` (x, y); the person's centre."""
    street = cv2.resize(read_video_frames(vtest_path(), [0])[0], frame_size[::-1], interpolation=cv2.INTER_LINEAR)
    path = next(p for p in openpeople_images()["P003"] if p.name == "studio_posture.jpg")
    body = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_4), cv2.COLOR_BGR2RGB)
    body = body[int(0.03 * body.shape[0]): int(0.98 * body.shape[0]), int(0.2 * body.shape[1]): int(0.8 * body.shape[1])]
    small = cv2.resize(body, None, fx=height / body.shape[0], fy=height / body.shape[0], interpolation=cv2.INTER_AREA)
    x, y = at
    street[y: y + small.shape[0], x: x + small.shape[1]] = small
    return street, (x + small.shape[1] // 2, y + small.shape[0] // 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--positions", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    detectors = {label: centernet_person(threads=1, **options) for label, options in LAYOUTS.items()}
    print(f"A pasted person found at {args.positions} random positions (seed {args.seed}), per search layout.\n")
    print("| frame | person height (px) | " + " | ".join(LAYOUTS) + " |")
    print("|---|---|" + "---|" * len(LAYOUTS))
    rng = np.random.default_rng(args.seed)
    for size, height in CASES:
        found = dict.fromkeys(LAYOUTS, 0)
        for _ in range(args.positions):
            at = (int(rng.integers(0, size[1] - height)), int(rng.integers(0, size[0] - height)))
            image, (cx, cy) = pasted(size, height, at)
            for label, detect in detectors.items():
                found[label] += any(d.box_xyxy[0] <= cx <= d.box_xyxy[2] and d.box_xyxy[1] <= cy <= d.box_xyxy[3]
                                    and d.height < 2.5 * height for d in detect(image))
        cells = " | ".join(f"{found[label]}/{args.positions}" for label in LAYOUTS)
        print(f"| {size[1]}x{size[0]} | {height} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
