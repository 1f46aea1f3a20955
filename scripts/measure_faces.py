"""Measures realistic faces (inner-face and whole-head donor, gan) against blur and mask.

Prints markdown tables (every figure of the "Realistic faces" section of docs/generators.md)
and writes the group-photo figure::

    OMP_NUM_THREADS=1 python scripts/measure_faces.py --figure docs/images/faces_groups.jpg

Parts (``--parts``, default all):

* ``single``: the 21 faces of ``scripts/measure_generators.py`` (astronaut, openpeople studio
  portraits and selfies at 768 px; the target's own person is never a donor). dlib identity
  distance (> 0.6 = another person); CenterFace re-detection (score >= 0.5) and whether its
  score is >= 0.8 x the original's; HSV S and V Wasserstein distances between the face box
  and the ring around it (box x2 minus box), anonymized minus original; the border edge ratio
  (mean Sobel magnitude on a 5-px band along the border of the changed pixels, anonymized over
  original; see ``realanon.evaluation.scene_fit``).
* ``groups``: group-photo stand-ins (the 10 openpeople emotion sheets, 16 faces each, at 768 px,
  each without its own person as donor; and the detector tests' collage of 10 people, which
  leaves no person out). Share of pairs of replaced faces closer than 0.6 (twins) and of
  replaced faces closer than 0.6 to any original face of the picture; faces >= 40 px high.
* ``speed``: frames per second at 1920x1080 (detection included, default detector) for one
  large face and for a 16-face group, every method in the same run, and the ratio to blur: as
  a video (the frame repeated, moved by 0, 1 and 2 px in turn, detections linked into tracks as
  ``realanon anonymize`` does for videos by default, so each person keeps one identity) and
  with every frame's faces untracked (new people on every frame, as a batch of photos).
* ``privacy``: the evaluator's faces (``eval/faces.toml``: openpeople, each face's own person
  never a donor, seeds as the evaluator gives them): share with dlib distance > 0.6 in the
  detector's box, how each face was drawn (inner face, whole head, cover, fill; the generator's
  own checks), and every face that stays closer than 0.6, with its head yaw.
* ``figure``: only the group-photo figure (also written by ``groups``).
* ``bank``: dlib distances between the donor bank's people (their most frontal views).
* ``pool``: how many of the inner-face donor's first 64 candidate identities dlib keeps apart,
  with and without the seeded face-shape variation, and of the whole default pool (512).
* ``sharpness``: mean |Laplacian| inside the changed pixels, anonymized over original, with the
  face at 64 px high and at its size in the 768-px pictures (how sharp ``gan`` is).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "detectors"))

from measure_generators import DlibIdentity, load_targets  # noqa: E402

from realanon.config import AnonymizerConfig  # noqa: E402
from realanon.evaluation.privacy import (  # noqa: E402
    face_descriptors,
    independent_face_detector,
    redetection_score,
)
from realanon.evaluation.scene_fit import (  # noqa: E402
    border_edge_ratio,
    changed_pixels,
    close_share,
    ring_colour_distance,
)
from realanon.media import openpeople_images  # noqa: E402
from realanon.pipeline import Anonymizer, build_anonymizer  # noqa: E402
from realanon.structures import Detections  # noqa: E402
from realanon.tracking import IoUTracker  # noqa: E402

METHODS: dict[str, tuple[str, dict[str, object]]] = {
    "blur": ("blur", {}),
    "mask": ("mask", {}),
    "donor head": ("donor", {"mode": "head"}),
    "donor face": ("donor", {}),
    "gan": ("gan", {}),
}
REALISTIC = ("donor head", "donor face", "gan")
# Timed too: the inner-face donor without its identity checks (dlib descriptors of the faces).
NO_CHECKS = "donor face, no checks"
METHODS[NO_CHECKS] = ("donor", {"min_distance": 0.0, "verify_distance": 0.0, "twin_distance": 0.0})
SHEET_SIDE, MIN_GROUP_FACE = 768, 40


_BUILT: dict[tuple[str, str | None, int, bool], Anonymizer] = {}


def build(method: str, person: str | None, seed: int = 0, detector: bool = False) -> Anonymizer:
    """The anonymizer of a method name of ``METHODS`` (built once); donors exclude ``person``."""
    key = (method, person if METHODS[method][0] == "donor" else None, seed, detector)
    if key not in _BUILT:
        _BUILT[key] = _build(method, key[1], seed, detector)
    return _BUILT[key]


def _build(method: str, person: str | None, seed: int, detector: bool) -> Anonymizer:
    name, options = METHODS[method]
    options = dict(options)
    if name == "donor" and person:
        options["exclude_persons"] = [person]
    config = AnonymizerConfig(method=name, method_options=options, seed=seed, fail_closed=False)
    return build_anonymizer(config, detector="auto" if detector else None)


def single_faces(methods: list[str]) -> None:
    """The per-face table over the 21 faces."""
    targets = load_targets(build_anonymizer(AnonymizerConfig(method="blur")))
    identity, centerface = DlibIdentity(), independent_face_detector()
    rows: dict[str, list[tuple[float, float, float, float, float, float]]] = {m: [] for m in methods}
    for t in targets:
        face = t.detections.items[0]
        box = identity.face_box(t.image, face.box_xyxy)
        reference = identity.descriptor(t.image, box)
        cf0 = redetection_score(centerface, t.image, face.box_xyxy)
        s0, v0 = ring_colour_distance(t.image, face.box_xyxy)
        for m in methods:
            out = build(m, t.person)(t.image, t.detections).image
            dist = float(np.linalg.norm(identity.descriptor(out, box) - reference))
            cf = redetection_score(centerface, out, face.box_xyxy)
            s, v = ring_colour_distance(out, face.box_xyxy)
            edge = border_edge_ratio(out, t.image, changed_pixels(out, t.image))
            rows[m].append((dist, cf, cf / max(cf0, 1e-6), s - s0, v - v0, edge))
        print(f"{t.name} done", file=sys.stderr, flush=True)
    n = len(targets)
    print(f"\n{n} faces. Goals: dlib > 0.6 for >= 95 %; CenterFace >= 0.95 and score >= 0.8 x original's; "
          "|dS|, |dV| <= 3 levels; edge ratio in [0.8, 1.25].\n")
    print("| method | dlib distance > 0.6 | dlib distance, mean (min) | CenterFace finds (>= 0.5) "
          "| CenterFace score >= 0.8 x original | HSV ring: abs(dS), abs(dV) <= 3 | abs(dS), abs(dV), median "
          "| edge ratio, median (min-max) | edge ratio in [0.8, 1.25] |")
    print("|---|---|---|---|---|---|---|---|---|")
    for m, r in rows.items():
        a = np.array(r)
        ok_ring = (np.abs(a[:, 3]) <= 3) & (np.abs(a[:, 4]) <= 3)
        edge = a[:, 5]
        in_band = (edge >= 0.8) & (edge <= 1.25)
        print(f"| {m} | {(a[:, 0] > 0.6).sum()}/{n} | {a[:, 0].mean():.3f} ({a[:, 0].min():.3f}) "
              f"| {(a[:, 1] >= 0.5).sum()}/{n} | {(a[:, 2] >= 0.8).sum()}/{n} | {ok_ring.sum()}/{n} "
              f"| {np.median(np.abs(a[:, 3])):.1f}, {np.median(np.abs(a[:, 4])):.1f} "
              f"| {np.nanmedian(edge):.2f} ({np.nanmin(edge):.2f}-{np.nanmax(edge):.2f}) | {in_band.sum()}/{n} |")


def group_pictures() -> list[tuple[str, str | None, np.ndarray]]:
    """``(name, person to exclude, image)``: the 10 emotion sheets and the collage."""
    from conftest import make_face_collage  # the detector tests' collage

    out: list[tuple[str, str | None, np.ndarray]] = []
    for person, paths in openpeople_images().items():
        path = next(p for p in paths if p.name == "emotions_sheet.jpg")
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        s = SHEET_SIDE / max(image.shape[:2])
        out.append((f"{person} emotions", person, cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)))
    collage, _ = make_face_collage((48, 64, 80, 96, 112, 96, 80, 64, 48, 112), size=(720, 2400))
    out.append(("collage", None, collage))
    return out


def groups(methods: list[str]) -> dict[str, list[np.ndarray]]:
    """Twin and scene-closeness shares on the group stand-ins; returns the anonymized pictures."""
    detect = build_anonymizer(AnonymizerConfig(method="blur"))
    pictures = group_pictures()
    outputs: dict[str, list[np.ndarray]] = {"original": [p[2] for p in pictures]}
    stats: dict[str, list[int]] = {m: [0, 0, 0, 0] for m in methods}  # twin pairs, pairs, close faces, faces
    for name, person, image in pictures:
        dets = detect.detect(image, photo=True)
        big = [d for d in dets if d.height >= MIN_GROUP_FACE]
        originals = face_descriptors([image] * len(big), big)
        for m in methods:
            out = build(m, person)(image, dets).image
            outputs.setdefault(m, []).append(out)
            if m not in REALISTIC or len(big) < 2:
                continue
            desc = face_descriptors([out] * len(big), big)
            dist = np.linalg.norm(desc[:, None] - desc[None], axis=2)[np.triu_indices(len(big), k=1)]
            stats[m][0] += int((dist < 0.6).sum())
            stats[m][1] += len(dist)
            stats[m][2] += round(close_share(desc, originals) * len(big))
            stats[m][3] += len(big)
            for kind, other in (("original", originals), ("replaced", desc)):
                for i, j in zip(*np.nonzero(np.linalg.norm(desc[:, None] - other[None], axis=2) < 0.6)):
                    if kind == "original" or i < j:
                        print(f"{m}: {name} face {i} < 0.6 from {kind} face {j}", file=sys.stderr)
        print(f"{name}: {len(dets)} faces, {len(big)} >= {MIN_GROUP_FACE} px", file=sys.stderr, flush=True)
    print("\n| method | twin pairs (dlib < 0.6) among replaced faces of one picture | replaced faces < 0.6 "
          "from an original face of the picture |\n|---|---|---|")
    for m in methods:
        if m in REALISTIC:
            t, p, c, f = stats[m]
            print(f"| {m} | {t}/{p} ({t / max(p, 1):.3f}) | {c}/{f} ({c / max(f, 1):.3f}) |")
    return outputs


def frame_1080(image: np.ndarray) -> np.ndarray:
    """``image`` scaled to 1080 px high, centred on a 1920x1080 frame (edges repeated)."""
    s = 1080 / image.shape[0]
    scaled = cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)[:, :1920]
    left = (1920 - scaled.shape[1]) // 2
    return cv2.copyMakeBorder(scaled, 0, 0, left, 1920 - scaled.shape[1] - left, cv2.BORDER_REPLICATE)


def evaluator_privacy() -> None:
    """The evaluator's dlib check on its faces for the inner-face donor, with every failure listed."""
    from realanon.evaluation.protocol import load_protocol
    from realanon.evaluation.runner import Evaluation
    from realanon.generators.face_warp import head_pose

    protocol = load_protocol(Path(__file__).resolve().parent.parent / "eval" / "faces.toml")
    evaluation = Evaluation(protocol, Path("/nonexistent"), resume=False, progress=False)
    faces, originals = evaluation.faces, evaluation.original_descriptors
    distances, steps = [], Counter[str]()
    for i, f in enumerate(faces):
        anonymizer = build("donor face", f.identity, seed=protocol.seeds[0])
        out = anonymizer(f.image, Detections((f.detection,), f.image.shape[:2]), frame_index=i).image
        distances.append(float(np.linalg.norm(face_descriptors([out], [f.detection])[0] - originals[i])))
    for a in _BUILT.values():
        steps.update(getattr(a.generator, "steps", Counter()))
    d = np.array(distances)
    print(f"\n{len(d)} faces: dlib distance > 0.6 for {(d > 0.6).sum()}/{len(d)} ({(d > 0.6).mean():.3f}), "
          f"mean {d.mean():.3f}; drawn as: " + ", ".join(f"{k} {v}" for k, v in sorted(steps.items())))
    print("\n| face | identity | picture | face height px | head yaw (deg) | dlib distance |\n|---|---|---|---|---|---|")
    mesher = build("donor face", None).generator.mesher
    for i in np.flatnonzero(d <= 0.6):
        f = faces[i]
        x1, y1, x2, y2 = f.detection.box_xyxy
        mesh = mesher.nearest_face(f.image, ((x1 + x2) / 2, (y1 + y2) / 2))
        yaw = "no mesh" if mesh is None else f"{head_pose(mesh)[0]:.0f}"
        print(f"| {i} | {f.identity} | {f.source} | {f.detection.height:.0f} | {yaw} | {d[i]:.3f} |")


def frames_per_second(anonymizer: Anonymizer, frame: np.ndarray, repeats: int, tracked: bool) -> tuple[float, int]:
    """fps of detect (+ track) + anonymize on ``frame`` repeated, after one warm-up frame; and the faces found.

    As a video (``tracked``) the frame moves by 0, 1 and 2 px in turn (a slightly moving camera),
    so nothing is timed on a frame identical to the one before.
    """
    tracker = IoUTracker() if tracked else None

    def one(index: int) -> int:
        image = np.roll(frame, index % 3, axis=1) if tracked else frame
        detections = anonymizer.detect(image)
        if tracker is not None:
            detections = tracker.update(detections).detections
        return len(anonymizer(image, detections, frame_index=index).regions)

    faces = one(0)
    start = time.perf_counter()
    for i in range(repeats):
        one(i + 1)
    return repeats / (time.perf_counter() - start), faces


def speed(methods: list[str], repeats: int) -> None:
    """fps at 1080p (detection included) for a large face and a group, every method in one run."""
    portrait = next(p for p in openpeople_images()["P001"] if p.name == "studio_portrait.jpg")
    sheet = next(p for p in openpeople_images()["P002"] if p.name == "emotions_sheet.jpg")
    images = {name: frame_1080(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB))
              for name, p in (("large face", portrait), ("group", sheet))}
    cases = [(f"{name}, {'video' if tracked else 'untracked'}", name, tracked)
             for tracked in (True, False) for name in images]
    print(f"\n| method | {' | '.join(f'{c}: fps (x blur)' for c, _, _ in cases)} |\n|---|" + "---|" * len(cases))
    fps: dict[str, dict[str, tuple[float, int]]] = {}
    for m in methods:
        fps[m] = {c: frames_per_second(build(m, None, detector=True), images[name], repeats, tracked)
                  for c, name, tracked in cases}
        print(f"{m} timed", file=sys.stderr, flush=True)
    for m in methods:
        cells = [f"{fps[m][c][0]:.2f} ({fps[m][c][0] / fps['blur'][c][0]:.2f}x, {fps[m][c][1]} faces)"
                 for c, _, _ in cases]
        print(f"| {m} | " + " | ".join(cells) + " |")


def laplacian_ratio(out: np.ndarray, original: np.ndarray) -> float:
    """Mean |Laplacian| of the grey image inside the changed pixels, anonymized over original."""
    changed = cv2.erode(changed_pixels(out, original).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    if changed.sum() < 16:
        return float("nan")

    def lap(x: np.ndarray) -> float:
        grey = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return float(np.abs(cv2.Laplacian(grey, cv2.CV_32F))[changed].mean())

    return lap(out) / max(lap(original), 1e-6)


def sharpness(methods: list[str]) -> None:
    """Detail kept inside the face at 64 px and at the pictures' own size."""
    targets = load_targets(build_anonymizer(AnonymizerConfig(method="blur")))
    print("\n| method | face 64 px: Laplacian ratio, median | face as in the 768-px pictures (median "
          "height {h} px): Laplacian ratio, median |\n|---|---|---|".replace(
              "{h}", f"{np.median([t.detections.items[0].height for t in targets]):.0f}"))
    for m in methods:
        ratios: dict[str, list[float]] = {"64": [], "native": []}
        for t in targets:
            for key, scale in (("64", 64 / t.detections.items[0].height), ("native", 1.0)):
                image, dets = t.image, t.detections
                if scale != 1.0:
                    image = cv2.resize(t.image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                    d = dets.items[0]
                    box = tuple(v * scale for v in d.box_xyxy)
                    kp = None if d.keypoints is None else d.keypoints * np.array([scale, scale, 1], np.float32)
                    from dataclasses import replace
                    dets = Detections((replace(d, box_xyxy=box, keypoints=kp),), image.shape[:2])
                out = build(m, t.person)(image, dets).image
                ratios[key].append(laplacian_ratio(out, image))
        print(f"| {m} | {np.nanmedian(ratios['64']):.2f} | {np.nanmedian(ratios['native']):.2f} |")


def bank_distances() -> None:
    """dlib distance between every two donor people of the bank (most frontal views)."""
    from realanon.generators.donor import DonorFaceSwap

    desc = DonorFaceSwap().person_descriptors
    names = sorted(desc)
    print("\n| | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
    for a in names:
        print(f"| {a} | " + " | ".join(f"{np.linalg.norm(desc[a] - desc[b]):.2f}" for b in names) + " |")


def pool_distinct(count: int = 64) -> None:
    """How many pool identities dlib keeps apart: the first ``count`` with and without the shape
    variation, and the whole default pool (its descriptors are the shipped table, ``weights/donors/pool.npz``)."""
    from realanon.generators.donor import DonorFaceSwap

    print("\n| shape_strength | identities greedily kept > 0.6 apart | > 0.7 apart | pairs < 0.6 |\n|---|---|---|---|")
    for strength, size in ((0.0, count), (1.0, count), (1.0, DonorFaceSwap().pool_size)):
        generator = DonorFaceSwap(shape_strength=strength, pool_size=size)
        desc = np.array([generator.chooser.descriptor(n) for n in range(size)])
        dist = np.linalg.norm(desc[:, None] - desc[None], axis=2)
        kept = []
        for limit in (0.6, 0.7):
            chosen: list[int] = []
            for i in range(size):
                if all(dist[i, j] > limit for j in chosen):
                    chosen.append(i)
            kept.append(len(chosen))
        pairs = dist[np.triu_indices(size, k=1)]
        print(f"| {strength} | {kept[0]}/{size} | {kept[1]}/{size} | {(pairs < 0.6).mean():.3f} |")


def figure_outputs(methods: list[str], picks: list[int]) -> dict[str, list[np.ndarray]]:
    """Only the chosen group pictures, anonymized by every method (no measurement)."""
    detect = build_anonymizer(AnonymizerConfig(method="blur"))
    pictures = [group_pictures()[i] for i in picks]
    outputs: dict[str, list[np.ndarray]] = {"original": [p[2] for p in pictures]}
    for _, person, image in pictures:
        dets = detect.detect(image, photo=True)
        for m in methods:
            outputs.setdefault(m, []).append(build(m, person)(image, dets).image)
    return outputs


def write_figure(path: Path, outputs: dict[str, list[np.ndarray]], picks: list[int]) -> None:
    """Group pictures (rows) by method (columns): 2 x 2 cells of a sheet, the larger faces of the collage."""
    rows = []
    for i in picks:
        tiles = []
        for images in outputs.values():
            im = images[i]
            h, w = im.shape[:2]
            part = im[int(0.28 * h): int(0.76 * h), : w // 2] if w < 1.2 * h else im[h // 5: 4 * h // 5, w // 2:]
            tiles.append(cv2.resize(part, (360, round(360 * part.shape[0] / part.shape[1])),
                                    interpolation=cv2.INTER_AREA))
        rows.append(np.hstack(tiles))
    header = np.full((30, rows[0].shape[1], 3), 255, np.uint8)
    for j, name in enumerate(outputs):
        cv2.putText(header, name, (j * 360 + 8, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.65, (0, 0, 0), 1, cv2.LINE_AA)
    gap = np.full((6, rows[0].shape[1], 3), 255, np.uint8)
    body = [r for row in rows for r in (row, gap)][:-1]
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.vstack([header, *body]), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    print(f"\nwrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="single,groups,sharpness,speed,bank")
    parser.add_argument("--methods", default=",".join(m for m in METHODS if m != NO_CHECKS))
    parser.add_argument("--figure", type=Path, default=Path("docs/images/faces_groups.jpg"))
    parser.add_argument("--figure-rows", default="0,5,10", help="indices of group pictures in the figure "
                        "(written by the groups part, or alone by --parts figure)")
    parser.add_argument("--repeats", type=int, default=3, help="timed frames per method and frame (speed)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    methods = [m for m in args.methods.split(",") if m]
    parts = set(args.parts.split(","))
    if "single" in parts:
        single_faces(methods)
    picks = [int(i) for i in args.figure_rows.split(",")]
    if "groups" in parts:
        write_figure(args.figure, groups(methods), picks)
    elif "figure" in parts:
        write_figure(args.figure, figure_outputs(methods, picks), list(range(len(picks))))
    if "sharpness" in parts:
        sharpness(methods)
    if "bank" in parts:
        bank_distances()
    if "pool" in parts:
        pool_distinct()
    if "privacy" in parts:
        evaluator_privacy()
    if "speed" in parts:
        speed(["blur", *[m for m in methods if m != "blur"], NO_CHECKS], args.repeats)


if __name__ == "__main__":
    main()
