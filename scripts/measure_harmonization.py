"""Measures the harmonizers on real media: histogram distance, steps, time, and an image grid.

For every registered generator (or those named with ``--methods``) and every harmonizer
(``none``, ``match``, ``latent``), on real scenes:

* openpeople: one ``amateur_selfie.jpg`` per synthetic person, faces (mediapipe_face);
* vtest: frames of ``vtest.avi``, bodies (mediapipe_body);
* street film: frames of the 1906 street film, bodies (mediapipe_body);

it prints, as markdown, the mean per-region distance between the harmonized region (pixels
inside the replace-mask) and its context ring (crop pixels outside it) -- mean per-channel 1-D
EMD in CIELAB and in HSV saturation/value, in [0, 1] -- how much of the generator's own
structure is kept (correlation of the high-pass luma of the harmonized and the un-harmonized
region, 1 = the same shapes and texture), how far it moved hue (``hue off``: mean length of the
opponent-colour chroma that is off the un-harmonized pixel's hue, 0 = hues kept; hue blotches
raise it), the mean number of latent steps, and the harmonizer's wall time per region. ``latent`` runs only for generators that expose latents.
Images are shrunk to ``--max-side`` pixels. Detections are computed once per scene and shared.

Usage::

    OMP_NUM_THREADS=1 python scripts/measure_harmonization.py --grid docs/harmonization_grid.jpg
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from realanon import media
from realanon.config import AnonymizerConfig, RegionOptions
from realanon.interfaces import Generator, LatentGenerator
from realanon.pipeline import Anonymizer, build_detector, build_generator
from realanon.postprocess.histogram import histogram_distance
from realanon.postprocess.latent import LatentOptions, hue_loss, optimize_latents
from realanon.postprocess.match import HistogramMatch
from realanon.regions import build_regions
from realanon.registry import GENERATORS
from realanon.structures import GenerationBatch, Kind, Region

HARMONIZERS = ("none", "match", "latent")


@dataclass
class Scene:
    """One image with its regions, cropped into a generation batch."""

    dataset: str
    name: str
    target: Kind
    image: np.ndarray
    regions: list[Region] = field(default_factory=list)
    batch: GenerationBatch | None = None


@dataclass
class Tally:
    """Per-region measurements of one (generator, harmonizer, dataset) cell."""

    lab: list[float] = field(default_factory=list)
    sv: list[float] = field(default_factory=list)
    structure: list[float] = field(default_factory=list)
    hue: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    seconds: float = 0.0


def shrink(image: np.ndarray, max_side: int) -> np.ndarray:
    """Downscales ``image`` so its long side is at most ``max_side`` pixels."""
    scale = max_side / max(image.shape[:2])
    if scale >= 1:
        return image
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def load_scenes(people: int, frames: int, max_side: int) -> list[Scene]:
    """The real scenes: openpeople selfies (faces), vtest and street-film frames (bodies)."""
    scenes = []
    for person, paths in sorted(media.openpeople_images().items())[:people]:
        path = next(p for p in paths if p.name == "amateur_selfie.jpg")
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        scenes.append(Scene("openpeople", f"{person}/{path.name}", "face", shrink(rgb, max_side)))
    for dataset, path, count in (("vtest", media.vtest_path(), 795), ("street_film", media.street_film_path(), 0)):
        total = count or _frame_count(path)
        indices = [round((i + 0.5) * total / frames) for i in range(frames)]
        for index, frame in zip(indices, media.read_video_frames(path, indices), strict=False):
            scenes.append(Scene(dataset, f"frame {index}", "body", shrink(frame, max_side)))
    return scenes


def _frame_count(path: object) -> int:
    import av

    with av.open(str(path)) as container:
        return int(container.streams.video[0].frames) or 300


def detect_all(scenes: list[Scene], seed: int) -> None:
    """Detects and crops every scene in place (one detector per target, default presets)."""
    detectors = {}
    for scene in scenes:
        if scene.target not in detectors:
            config = AnonymizerConfig(target=scene.target, threshold=0.4 if scene.target == "face" else 0.3)
            detectors[scene.target] = (build_detector(config), config)
        detector, config = detectors[scene.target]
        anonymizer = Anonymizer(detector, _NoGenerator(), target=scene.target, threshold=config.threshold, seed=seed)
        scene.regions = build_regions(anonymizer.detect(scene.image), RegionOptions())
        if scene.regions:
            scene.batch = anonymizer.make_batch(scene.image, scene.regions)


class _NoGenerator:
    def __call__(self, batch: GenerationBatch) -> list[np.ndarray]:
        raise RuntimeError("only used to build batches")


def harmonize(
    name: str, generator: Generator, batch: GenerationBatch, generated: list[np.ndarray], options: LatentOptions
) -> tuple[list[np.ndarray], list[int]]:
    """Applies harmonizer ``name``; returns the crops and the latent steps per region (0 if none)."""
    if name == "none":
        return generated, [0] * len(batch)
    if name == "match":
        return HistogramMatch()(batch, generated), [0] * len(batch)
    if not isinstance(generator, LatentGenerator):
        raise TypeError("no latents")
    with torch.no_grad():
        result = optimize_latents(generator, batch, options)
        return list(generator.finalize(batch, result.images)), [result.steps] * len(batch)


def measure_cell(
    generators: dict[str, Generator], harmonizer: str, scenes: list[Scene], options: LatentOptions
) -> dict[str, Tally]:
    """Measures one method x harmonizer on every scene; returns a tally per dataset."""
    tallies: dict[str, Tally] = {}
    for scene in scenes:
        if scene.batch is None or scene.target not in generators:
            continue
        batch, generator = scene.batch, generators[scene.target]
        generated = list(generator(batch))
        start = time.perf_counter()
        crops, steps = harmonize(harmonizer, generator, batch, generated, options)
        tally = tallies.setdefault(scene.dataset, Tally())
        tally.seconds += time.perf_counter() - start
        tally.steps += steps
        for crop, own, original, mask in zip(crops, generated, batch.crops, batch.replace_masks, strict=True):
            tally.lab.append(histogram_distance(crop[mask], original[~mask], "lab"))
            tally.sv.append(histogram_distance(crop[mask], original[~mask], "hsv"))
            tally.structure.append(structure_kept(crop, own, mask))
            tally.hue.append(hue_off(crop, own, mask))
    return tallies


def structure_kept(harmonized: np.ndarray, own: np.ndarray, mask: np.ndarray) -> float:
    """Correlation of the high-pass luma of two crops inside ``mask`` (NaN for a flat region).

    1 means the harmonizer kept the generator's shapes and texture (a brightness or contrast
    change alone keeps 1); lower means it redrew them.
    """

    def high_pass(image: np.ndarray) -> np.ndarray:
        luma = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return (luma - cv2.GaussianBlur(luma, (0, 0), 2.0))[mask]

    a, b = high_pass(harmonized), high_pass(own)
    if a.size < 2 or a.std() < 1e-6 or b.std() < 1e-6:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def hue_off(harmonized: np.ndarray, own: np.ndarray, mask: np.ndarray) -> float:
    """:func:`realanon.postprocess.latent.hue_loss` of two uint8 crops inside ``mask`` (0 = hues kept)."""

    def tensor(image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(image.astype(np.float32) / 255.0).permute(2, 0, 1)[None]

    weights = torch.from_numpy(mask.astype(np.float32))[None, None]
    return float(hue_loss(tensor(harmonized), tensor(own), weights)[0])


def format_row(method: str, harmonizer: str, dataset: str, tally: Tally) -> str:
    """One markdown row: regions, mean EMDs, structure kept, mean steps, milliseconds per region."""
    n = len(tally.lab)
    steps = f"{np.mean(tally.steps):.1f}" if harmonizer == "latent" else "-"
    return (
        f"| {method} | {harmonizer} | {dataset} | {n} | {np.nanmean(tally.lab):.4f} | {np.nanmean(tally.sv):.4f} "
        f"| {np.nanmean(tally.structure):.3f} | {np.mean(tally.hue):.4f} | {steps} "
        f"| {1000 * tally.seconds / max(n, 1):.1f} |"
    )


def build_for_targets(method: str, device: str, options: dict[str, object]) -> tuple[dict[str, Generator], list[str]]:
    """``method`` built once per target it accepts, and why the others were refused (first line)."""
    built, refused = {}, []
    for target in ("face", "body"):
        config = AnonymizerConfig(method=method, method_options=options, target=target, device=device)  # type: ignore[arg-type]
        try:
            built[target] = build_generator(config)
        except Exception as err:  # noqa: BLE001 - report it and measure the rest
            refused.append(f"{target}: {type(err).__name__}: {str(err).split('. ')[0][:160]}")
    return built, refused


def parse_method_options(items: list[str]) -> dict[str, dict[str, object]]:
    """``["gan.model=/x", "gan.truncation=0.7"]`` -> ``{"gan": {"model": "/x", "truncation": 0.7}}``."""
    from realanon.config import parse_overrides

    return {k: dict(v) for k, v in parse_overrides(items).items()}


def run_table(
    methods: list[str], scenes: list[Scene], options: LatentOptions, device: str, method_options: dict[str, dict]
) -> dict[str, dict[str, Generator]]:
    """Prints the markdown table; returns the generators that could be built."""
    print("| method | harmonize | set | regions | EMD Lab | EMD HSV-SV | structure | hue off | steps | ms/region |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    built: dict[str, dict[str, Generator]] = {}
    for method in methods:
        generators, refused = build_for_targets(method, device, method_options.get(method, {}))
        for reason in refused:
            print(f"| {method} | - | - | - | unavailable for {reason} | | | | | |")
        if not generators:
            continue
        built[method] = generators
        for harmonizer in HARMONIZERS:
            if harmonizer == "latent" and not isinstance(next(iter(generators.values())), LatentGenerator):
                print(f"| {method} | latent | - | - | n/a: no latents | | | | | |")
                continue
            everything = Tally()
            for dataset, tally in measure_cell(generators, harmonizer, scenes, options).items():
                print(format_row(method, harmonizer, dataset, tally), flush=True)
                everything.lab += tally.lab
                everything.sv += tally.sv
                everything.structure += tally.structure
                everything.hue += tally.hue
                everything.steps += tally.steps
                everything.seconds += tally.seconds
            print(format_row(method, harmonizer, "**all**", everything), flush=True)
    return built


def grid_cell(region: Region, original: np.ndarray, crop: np.ndarray, size: int) -> np.ndarray:
    """``crop`` pasted onto ``original`` through the region's blend mask, letterboxed to ``size``."""
    alpha = region.blend_mask[..., None] / 255.0
    pasted = original * (1 - alpha) + crop * alpha
    h, w = pasted.shape[:2]
    scale = size / max(h, w)
    small = cv2.resize(pasted.astype(np.uint8), (max(1, round(w * scale)), max(1, round(h * scale))))
    cell = np.full((size, size, 3), 255, np.uint8)
    y, x = (size - small.shape[0]) // 2, (size - small.shape[1]) // 2
    cell[y : y + small.shape[0], x : x + small.shape[1]] = small
    return cell


def grid_row(method: str, generator: Generator, scene: Scene, options: LatentOptions, size: int) -> np.ndarray:
    """Original, none, match, latent (blank when unavailable) for the scene's largest region."""
    assert scene.batch is not None
    index = int(np.argmax([m.sum() for m in scene.batch.replace_masks]))
    generated = list(generator(scene.batch))
    region, original = scene.regions[index], scene.batch.crops[index]
    cells = [grid_cell(region, original, original, size)]
    for harmonizer in HARMONIZERS:
        try:
            crops, _ = harmonize(harmonizer, generator, scene.batch, generated, options)
            cells.append(grid_cell(region, original, crops[index], size))
        except TypeError:
            cells.append(np.full((size, size, 3), 255, np.uint8))
    label = f"{method} / {scene.dataset}"
    cv2.putText(cells[0], label, (4, size - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(cells[0], label, (4, size - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return np.hstack(cells)


def write_grid(
    path: str, built: dict[str, dict[str, Generator]], methods: list[str], scenes: list[Scene], options: LatentOptions
) -> None:
    """One row per (method, dataset) the method can do: the first scene's largest region."""
    rows, size = [], 192
    for method in (m for m in methods if m in built):
        for dataset in dict.fromkeys(s.dataset for s in scenes):
            scene = next((s for s in scenes if s.dataset == dataset and s.batch and s.target in built[method]), None)
            if scene is not None:
                rows.append(grid_row(method, built[method][scene.target], scene, options, size))
    header = np.full((24, size * (1 + len(HARMONIZERS)), 3), 255, np.uint8)
    for i, label in enumerate(("original", *HARMONIZERS)):
        cv2.putText(header, label, (i * size + 8, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(path, cv2.cvtColor(np.vstack([header, *rows]), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    print(f"wrote {path}")


def _mean_std(stat: dict[str, float]) -> str:
    return f"{stat['mean']:.4f} ± {stat['std']:.4f}" if stat["n"] > 1 else f"{stat['mean']:.4f}"


def changed_latent_options(options: LatentOptions) -> dict[str, object]:
    """The latent options that differ from the defaults (they go into the method's name and options)."""
    default = LatentOptions()
    return {k: v for k, v in dataclasses.asdict(options).items() if getattr(default, k) != v}


def eval_methods(
    methods: list[str], device: str, method_options: dict[str, dict], latent: dict[str, object]
) -> list[str]:
    """Inline TOML tables ``{name, method, harmonize}`` for each body-capable method x harmonizer.

    ``latent`` runs with its defaults except the options in ``latent``, which are in its name.
    """
    tables = []
    for method in methods:
        options = method_options.get(method, {})
        generators, refused = build_for_targets(method, device, options)
        if "body" not in generators:
            print(f"evaluator: skipping {method} ({'; '.join(refused)})")
            continue
        for harmonizer in HARMONIZERS:
            if harmonizer == "latent" and not isinstance(generators["body"], LatentGenerator):
                continue
            name = method if harmonizer == "none" else f"{method}+{harmonizer}"
            extra = "".join(f", method_options.{k} = {json.dumps(v)}" for k, v in options.items())
            if harmonizer == "latent" and latent:
                name += " (" + ", ".join(f"{k} {v}" for k, v in latent.items()) + ")"
                extra += "".join(f", harmonize_options.{k} = {json.dumps(v)}" for k, v in latent.items())
            tables.append(f'{{ name = "{name}", method = "{method}", harmonize = "{harmonizer}"{extra} }}')
    return tables


def run_evaluator(
    out_dir: str,
    methods: list[str],
    frames: int,
    steps: int,
    seeds: list[int],
    device: str,
    method_options: dict[str, dict],
    latent: dict[str, object],
    pseudo_gt: str,
) -> None:
    """Writes a body-target protocol (detection AP + retention only) and runs the evaluator on it.

    People come from ``pseudo_gt`` on the full-size frames (boxes only); retention uses the
    COCO person detector on the half-size validation frames.
    """
    from pathlib import Path

    from realanon.evaluation import run_evaluation

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    protocol = out / "protocol.toml"
    protocol.write_text(
        "\n".join(
            [
                'name = "harmonization"',
                "include_registered = false",
                f"seeds = {json.dumps(seeds)}",
                f'device = "{device}"',
                "methods = [",
                *(f"  {t}," for t in eval_methods(methods, device, method_options, latent)),
                "]",
                f'[data]\nsource = "vtest"\nframes = {frames}\npseudo_gt = "{pseudo_gt}"',
                'pseudo_gt_upscale = 1.3' if pseudo_gt == "hog" else 'pseudo_gt_options = { keypoints = "none", masks = "box" }',
                f'[utility]\ntarget = "body"\n[utility.detection]\nsteps = {steps}',
                '[utility.retention]\ndetectors = ["coco_person"]',
                "[utility.classification]\nenabled = false",
                "[privacy]\nenabled = false\n[leak]\nenabled = false\n",
            ]
        )
    )
    results = json.loads((run_evaluation(protocol, out) / "results.json").read_text())
    print(f"\nevaluator ({protocol}): vtest bodies, detector trained on anonymized, tested on originals")
    print("| method | AP | AP50 | AP_person | retention metrics |\n|---|---|---|---|---|")
    for name in results["methods"]:
        stats = results["summary"].get(name, {})
        ap = [_mean_std(stats[k]) if k in stats else "-" for k in ("AP", "AP50", "AP_person")]
        rest = ", ".join(f"{k}={v['mean']:.3f}" for k, v in stats.items() if k not in ("AP", "AP50", "AP_person"))
        print(f"| {name} | {' | '.join(ap)} | {rest} |")
    for key, err in results["errors"].items():
        print(f"evaluator error: {key}: {err}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="*", help="generators to measure (default: every registered one)")
    parser.add_argument("--people", type=int, default=10, help="openpeople persons (one selfie each)")
    parser.add_argument("--frames", type=int, default=4, help="frames per video")
    parser.add_argument("--max-side", type=int, default=768, help="images are shrunk to this long side")
    parser.add_argument("--steps", type=int, default=LatentOptions.steps, help="latent step budget")
    parser.add_argument("--lr", type=float, default=LatentOptions.lr, help="latent Adam learning rate")
    parser.add_argument("--latent-loss", default=LatentOptions.loss, help="latent loss: quantile or histogram")
    parser.add_argument("--latent-penalty", type=float, default=LatentOptions.latent_penalty, help="latent prior weight")
    parser.add_argument("--starts", type=int, default=LatentOptions.starts, help="starting draws per region")
    parser.add_argument(
        "--structure-penalty", type=float, default=LatentOptions.structure_penalty, help="structure term weight"
    )
    parser.add_argument("--hue-penalty", type=float, default=LatentOptions.hue_penalty, help="hue term weight")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--method-option", action="append", default=[], help="METHOD.KEY=VALUE for a generator, e.g. gan.model=DIR"
    )
    parser.add_argument("--grid", default="", help="write the before/after grid here (jpg)")
    parser.add_argument("--grid-methods", nargs="+", default=["gan", "blur"], help="generators shown in the grid")
    parser.add_argument("--eval", default="", help="also run the evaluator (body AP on vtest) into this folder")
    parser.add_argument("--eval-methods", nargs="*", default=["blur", "mask", "pixelate", "gan"])
    parser.add_argument("--eval-frames", type=int, default=120, help="vtest frames the evaluator samples")
    parser.add_argument("--eval-steps", type=int, default=200, help="detector training steps")
    parser.add_argument("--eval-seeds", type=int, nargs="+", default=[0], help="detector training seeds")
    parser.add_argument("--eval-pseudo-gt", default="coco_person", help="people of the evaluator: coco_person or hog")
    parser.add_argument("--skip-table", action="store_true", help="only run the evaluator")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    options = LatentOptions(
        steps=args.steps,
        lr=args.lr,
        loss=args.latent_loss,
        latent_penalty=args.latent_penalty,
        starts=args.starts,
        structure_penalty=args.structure_penalty,
        hue_penalty=args.hue_penalty,
    )
    method_options = parse_method_options(args.method_option)
    if args.eval:
        run_evaluator(
            args.eval,
            args.eval_methods,
            args.eval_frames,
            args.eval_steps,
            args.eval_seeds,
            args.device,
            method_options,
            changed_latent_options(options),
            args.eval_pseudo_gt,
        )
    if args.skip_table:
        return
    scenes = load_scenes(args.people, args.frames, args.max_side)
    detect_all(scenes, args.seed)
    counts = {
        d: sum(len(s.regions) for s in scenes if s.dataset == d) for d in dict.fromkeys(s.dataset for s in scenes)
    }
    print(f"scenes: {len(scenes)}, regions per set: {counts}, latent options: {options}\n")
    built = run_table(args.methods or GENERATORS.names(), scenes, options, args.device, method_options)
    if args.grid:
        write_grid(args.grid, built, args.grid_methods, scenes, options)


if __name__ == "__main__":
    main()
