"""Trains a face or body model of the ``gan`` generator with accelerate (CPU, one GPU or several).

Faces (``--kind face``, mediapipe face detector) or whole people (``--kind body``, the
``mediapipe_body`` detector: COCO-17 keypoints and an instance mask) are found in an image folder
(recursively) or in the person images of a COCO annotation file, cropped exactly as the
anonymization pipeline crops them (with random margins and context), and masked as the pipeline
masks them (face ellipse; body instance mask, or its box for half of the body examples, since
annotations and box detectors give boxes only). Losses: non-saturating
adversarial + lazy R1 on the discriminator, plus a low-resolution L1 term on the masked area
that gives the generator the coarse structure quickly. A sample grid is saved as PNG; the final
model (EMA generator) is saved as ``config.json`` + ``model.safetensors`` and its sha256 printed.

Examples::

    python scripts/train_gan.py --smoke --out /tmp/gan-smoke          # seconds, CPU
    OMP_NUM_THREADS=1 python scripts/train_gan.py --data openpeople --holdout P010 \\
        --out weights/gan-face-64 --cpu-minutes 25 --threads 1 \\
        --sample-every 300 --log-dir /tmp/gan-log
    OMP_NUM_THREADS=1 python scripts/train_gan.py --kind body --data openpeople --holdout P010 \
        --out weights/gan-body-64 --cpu-minutes 30 --threads 1 --keypoint-dropout 0.5 \
        --low-res 0.5 --variants 24
    accelerate launch scripts/train_gan.py --data /data/faces --out runs/face --steps 200000
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from realanon.config import RegionOptions
from realanon.generators.gan_modules import (
    FLIP_PERMUTATION,
    GanConfig,
    GanDiscriminator,
    GanGenerator,
    fit_keypoints,
    fit_square,
    keypoint_heatmaps,
    make_condition,
)
from realanon.regions import crop_with_padding, make_region
from realanon.structures import Detection
from realanon.weights import save_model

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
MAX_BODY_IMAGE_SIDE = 1024


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="openpeople", help="image folder, COCO annotations.json, or 'openpeople'")
    p.add_argument("--holdout", default="", help="skip images whose path contains this (held out for validation)")
    p.add_argument("--out", type=Path, required=True, help="output model directory")
    p.add_argument("--kind", choices=("face", "body"), default="face", help="what the model synthesises")
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--channels", default="32,64,128,128")
    p.add_argument("--batch-size", type=int, default=12)
    p.add_argument("--steps", type=int, default=100000)
    p.add_argument("--minutes", type=float, default=0.0, help="stop after this many wall minutes (0 = no limit)")
    p.add_argument("--cpu-minutes", type=float, default=0.0, help="stop after this many minutes of process CPU time")
    p.add_argument("--sample-every", type=int, default=0, help="save a sample grid every N steps (0 = only at the end)")
    p.add_argument("--log-dir", type=Path, default=None, help="where progress grids go (default: --out)")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--r1", type=float, default=2.0, help="R1 weight (applied lazily every 4 steps)")
    p.add_argument("--l1", type=float, default=4.0, help="weight of the low-resolution masked L1 term")
    p.add_argument("--variants", type=int, default=12, help="jittered crops per detected face or person")
    p.add_argument("--min-body-height", type=int, default=160,
                   help="smallest person (pixels, after shrinking to a 1024 px long side) used with --kind body")
    p.add_argument("--keypoint-dropout", type=float, default=0.0,
                   help="share of training examples whose keypoints are hidden (people without landmarks)")
    p.add_argument("--low-res", type=float, default=0.0,
                   help="share of training crops first shrunk to 12-48 px (small, distant people)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = leave as is)")
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--cpu", action="store_true", help="train on the CPU even when a GPU is present")
    p.add_argument("--smoke", action="store_true", help="a few tiny steps on a few images, for tests")
    p.add_argument("--eval-only", action="store_true",
                   help="do not train: measure how often the detector still finds a face after anonymizing "
                        "the --holdout images with the model in --out, next to blur and mask")
    return p.parse_args(argv)


def list_images(data: str, holdout: str) -> list[Path]:
    """Image files of a folder, of a COCO file's person images, or of openpeople."""
    if data == "openpeople":
        from realanon.media import openpeople_dir

        root = openpeople_dir()
        paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    elif data.endswith(".json"):
        coco = json.loads(Path(data).read_text())
        person_ids = {c["id"] for c in coco["categories"] if c.get("name") == "person"}
        with_people = {a["image_id"] for a in coco["annotations"] if a["category_id"] in person_ids}
        base = Path(data).parent
        paths = sorted(base / im["file_name"] for im in coco["images"] if im["id"] in with_people)
    else:
        paths = sorted(p for p in Path(data).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return [p for p in paths if not holdout or holdout not in str(p)]


def detect_people(paths: list[Path], kind: str, min_body_height: int = 160) -> list[tuple[np.ndarray, Detection]]:
    """Every usable face or person with its image.

    Faces: mediapipe score >= 0.5, at least 24 px. Bodies: ``mediapipe_body`` score >= 0.7 with
    pose landmarks and an instance mask, at least ``min_body_height`` px tall (its box-only HOG
    proposals are too often not people to train on).
    """
    if kind == "face":
        from realanon.detectors.mediapipe_face import MediaPipeFaceDetector

        detector: Any = MediaPipeFaceDetector(model="full", min_score=0.5, tile_size=0)

        def usable(d: Detection) -> bool:
            return min(d.width, d.height) >= 24
    else:
        from realanon.detectors.mediapipe_body import MediaPipeBodyDetector

        detector = MediaPipeBodyDetector(min_score=0.7)

        def usable(d: Detection) -> bool:
            return d.mask is not None and d.keypoints is not None and d.height >= min_body_height

    found = []
    for path in paths:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            continue
        if kind == "body" and max(bgr.shape[:2]) > MAX_BODY_IMAGE_SIDE:
            # Full-resolution posture shots are far larger than the 64 px working size; shrinking
            # them first keeps the crops' mask dilation cheap.
            scale = MAX_BODY_IMAGE_SIDE / max(bgr.shape[:2])
            bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        found += [(image, d) for d in detector(image) if usable(d)]
    if hasattr(detector, "close"):
        detector.close()
    return found


def jittered_crop(image: np.ndarray, det: Detection, cfg: GanConfig, rng: np.random.Generator,  # type: ignore[no-untyped-def]
                  low_res: float = 0.0):
    """One training example: random box jitter, margin and context, pipeline crop.

    Bodies lose their instance mask half of the time (box mask, as for annotations and box
    detectors). With probability ``low_res`` the crop is shrunk so the person is 12-48 px
    tall and scaled back, so the model also sees small, distant people.
    """
    x1, y1, x2, y2 = det.box_xyxy
    scale = rng.uniform(0.9, 1.1)
    dx, dy = rng.uniform(-0.05, 0.05, 2) * (x2 - x1)
    cx, cy, hw, hh = (x1 + x2) / 2 + dx, (y1 + y2) / 2 + dy, (x2 - x1) * scale / 2, (y2 - y1) * scale / 2
    det = replace(det, box_xyxy=(cx - hw, cy - hh, cx + hw, cy + hh))
    if det.kind == "body" and rng.random() < 0.5:
        det = replace(det, mask=None)
    options = RegionOptions(face_margin=rng.uniform(0.1, 0.35), body_margin=rng.uniform(0.02, 0.08),
                            context=rng.uniform(0.15, 0.35))
    region = make_region(det, image.shape[:2], options)
    if region is None:
        return None
    crop = crop_with_padding(image, region.crop_box_xyxy)
    if rng.random() < low_res:
        h, w = crop.shape[:2]
        shrink = rng.uniform(12, 48) / max(det.height, 1.0)
        small = cv2.resize(crop, (max(1, round(w * shrink)), max(1, round(h * shrink))), interpolation=cv2.INTER_AREA)
        crop = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    img, mask, fit = fit_square(crop, region.replace_mask, cfg.resolution)
    kp = det.keypoints.copy() if det.keypoints is not None else np.zeros((cfg.num_keypoints, 3), np.float32)
    kp[:, 0] -= region.crop_box_xyxy[0]
    kp[:, 1] -= region.crop_box_xyxy[1]
    return img, mask, fit_keypoints(kp, fit, cfg.resolution)


def build_dataset(paths: list[Path], cfg: GanConfig, variants: int, seed: int,
                  min_body_height: int = 160, low_res: float = 0.0) -> dict[str, torch.Tensor]:
    """Tensors ``image (N,3,S,S)`` in [0,1], ``mask (N,1,S,S)``, ``keypoints (N,K,3)``."""
    rng = np.random.default_rng(seed)
    images, masks, kps = [], [], []
    for image, det in detect_people(paths, cfg.kind, min_body_height):
        for _ in range(variants):
            example = jittered_crop(image, det, cfg, rng, low_res)
            if example is not None:
                images.append(example[0])
                masks.append(example[1])
                kps.append(example[2])
    if not images:
        raise SystemExit(f"no {cfg.kind} found in the training data")
    return {
        "image": torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(),
        "mask": torch.from_numpy(np.stack(masks))[:, None],
        "keypoints": torch.from_numpy(np.stack(kps)),
    }


def sample_batch(data: dict[str, torch.Tensor], cfg: GanConfig, size: int, gen: torch.Generator,  # type: ignore[no-untyped-def]
                 keypoint_dropout: float = 0.0):
    """Random batch with flips, small colour jitter and keypoint dropout; returns (image, mask, heatmaps)."""
    idx = torch.randint(len(data["image"]), (size,), generator=gen)
    image, mask, kp = data["image"][idx].clone(), data["mask"][idx].clone(), data["keypoints"][idx].clone()
    kp[torch.rand(size, generator=gen) < keypoint_dropout, :, 2] = 0.0
    flip = torch.rand(size, generator=gen) < 0.5
    perm = list(FLIP_PERMUTATION.get(cfg.keypoint_layout, range(cfg.num_keypoints)))
    image[flip], mask[flip] = image[flip].flip(-1), mask[flip].flip(-1)
    kp[flip] = kp[flip][:, perm]
    kp[flip, :, 0] = cfg.resolution - kp[flip, :, 0]
    gain = 1 + 0.15 * (torch.rand(size, 1, 1, 1, generator=gen) - 0.5)
    bias = 0.08 * (torch.rand(size, 3, 1, 1, generator=gen) - 0.5)
    image = (image * gain + bias).clamp(0, 1)
    heat = torch.from_numpy(np.stack([keypoint_heatmaps(k.numpy(), cfg.resolution) for k in kp]))
    return image, mask, heat


def d_loss_fn(D, G, real, mask, heat, z, do_r1: bool, r1: float):  # type: ignore[no-untyped-def]
    """Non-saturating discriminator loss (+ lazy R1 on real images)."""
    cond = make_condition(real, mask, heat)
    with torch.no_grad():
        fake = G(cond, z)
    comp = (real * 2 - 1) * (1 - mask) + fake * mask
    real_in = torch.cat([real * 2 - 1, mask, heat], 1).requires_grad_(do_r1)
    real_logits = D(real_in)
    loss = F.softplus(D(torch.cat([comp, mask, heat], 1))).mean() + F.softplus(-real_logits).mean()
    if do_r1:
        (grad,) = torch.autograd.grad(real_logits.sum(), real_in, create_graph=True)
        loss = loss + r1 * 4 * 0.5 * grad[:, :3].pow(2).sum((1, 2, 3)).mean()
    return loss


def g_loss_fn(D, G, real, mask, heat, z, l1: float):  # type: ignore[no-untyped-def]
    """Non-saturating generator loss + low-resolution masked L1; returns (total, adv, l1)."""
    fake = G(make_condition(real, mask, heat), z)
    comp = (real * 2 - 1) * (1 - mask) + fake * mask
    adv = F.softplus(-D(torch.cat([comp, mask, heat], 1))).mean()
    low = F.avg_pool2d(torch.abs(comp - (real * 2 - 1)), 4).mean() / mask.mean().clamp_min(1e-3)
    return adv + l1 * low, adv, low


@torch.no_grad()
def sample_grid(G, data: dict[str, torch.Tensor], cfg: GanConfig, path: Path, device, n: int = 8) -> None:  # type: ignore[no-untyped-def]
    """PNG grid: rows = masked input, real, then three seeds; one column per example."""
    image, mask, kp = data["image"][:n], data["mask"][:n], data["keypoints"][:n]
    heat = torch.from_numpy(np.stack([keypoint_heatmaps(k.numpy(), cfg.resolution) for k in kp]))
    cond = make_condition(image, mask, heat).to(device)
    rows = [image * (1 - mask) + 0.5 * mask, image]
    for seed in range(3):
        z = torch.randn(len(image), cfg.latent_dim, generator=torch.Generator().manual_seed(seed)).to(device)
        fake = G(cond, z).cpu()
        rows.append(image * (1 - mask) + (fake + 1) / 2 * mask)
    grid = torch.cat([torch.cat(list(r), dim=2) for r in rows], dim=1)
    rgb = (grid.permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


@torch.no_grad()
def evaluate(G, data: dict[str, torch.Tensor], cfg: GanConfig, device) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Mean absolute error inside the mask (0-1 scale) vs the original, for G and a mean-colour fill."""
    image, mask, kp = data["image"], data["mask"], data["keypoints"]
    heat = torch.from_numpy(np.stack([keypoint_heatmaps(k.numpy(), cfg.resolution) for k in kp]))
    z = torch.randn(len(image), cfg.latent_dim, generator=torch.Generator().manual_seed(123))
    fake = torch.cat([G(make_condition(image[i:i + 32], mask[i:i + 32], heat[i:i + 32]).to(device),
                        z[i:i + 32].to(device)).cpu() for i in range(0, len(image), 32)])
    known_mean = (image * (1 - mask)).sum((2, 3), keepdim=True) / (1 - mask).sum((2, 3), keepdim=True).clamp_min(1)
    area = mask.sum() * 3
    return {
        "masked_l1_gan": float((((fake + 1) / 2 - image).abs() * mask).sum() / area),
        "masked_l1_mean_fill": float(((known_mean - image).abs() * mask).sum() / area),
        "examples": float(len(image)),
    }


def out_of_time(args: argparse.Namespace, wall_start: float, cpu_start: float) -> bool:
    """True once the wall-clock or CPU-time budget is spent."""
    wall = args.minutes and time.time() - wall_start > args.minutes * 60
    cpu = args.cpu_minutes and time.process_time() - cpu_start > args.cpu_minutes * 60
    return bool(wall or cpu)


def update_ema(ema, model, beta: float) -> None:  # type: ignore[no-untyped-def]
    with torch.no_grad():
        for pe, pm in zip(ema.parameters(), model.parameters()):
            pe.lerp_(pm, 1 - beta)
        for be, bm in zip(ema.buffers(), model.buffers()):
            be.copy_(bm)


def train(args: argparse.Namespace) -> dict[str, float]:  # noqa: PLR0915 - a training loop reads best in one piece
    from accelerate import Accelerator

    if args.threads:
        torch.set_num_threads(args.threads)
    accel = Accelerator(cpu=args.cpu or args.smoke)
    torch.manual_seed(args.seed + accel.process_index)
    layout = {"face": ("face6", 6), "body": ("coco17", 17)}[args.kind]
    cfg = GanConfig(kind=args.kind, keypoint_layout=layout[0], num_keypoints=layout[1], resolution=args.resolution,
                    channels=tuple(int(c) for c in args.channels.split(",")))
    paths = list_images(args.data, args.holdout)
    if args.smoke:
        paths = paths[:4]
    data = build_dataset(paths, cfg, args.variants, args.seed, args.min_body_height, args.low_res)
    val = (build_dataset([p for p in list_images(args.data, "") if args.holdout in str(p)], cfg, 2, args.seed + 1,
                         args.min_body_height, args.low_res)
           if args.holdout else data)
    accel.print(f"{len(paths)} images -> {len(data['image'])} training crops, {len(val['image'])} validation crops")
    sys.stdout.flush()
    G, D = GanGenerator(cfg), GanDiscriminator(cfg)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_g = torch.optim.Adam(G.parameters(), lr=args.lr, betas=(0.5, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), lr=args.lr, betas=(0.5, 0.99))
    G, D, opt_g, opt_d = accel.prepare(G, D, opt_g, opt_d)
    G_ema.to(accel.device)
    gen = torch.Generator().manual_seed(args.seed * 1000 + accel.process_index)
    w_sum, w_count = torch.zeros(cfg.style_dim), 0
    start, step, logs = time.time(), 0, {}
    steps = 3 if args.smoke else args.steps
    cpu_start = time.process_time()
    while step < steps and not out_of_time(args, start, cpu_start):
        real, mask, heat = (t.to(accel.device) for t in sample_batch(data, cfg, args.batch_size, gen, args.keypoint_dropout))
        z = torch.randn(len(real), cfg.latent_dim, generator=gen).to(accel.device)
        d_loss = d_loss_fn(D, G, real, mask, heat, z, step % 4 == 0, args.r1)
        opt_d.zero_grad(set_to_none=True)
        accel.backward(d_loss)
        opt_d.step()
        g_loss, adv, low = g_loss_fn(D, G, real, mask, heat, z, args.l1)
        opt_g.zero_grad(set_to_none=True)
        accel.backward(g_loss)
        opt_g.step()
        unwrapped = accel.unwrap_model(G)
        with torch.no_grad():
            w_sum += unwrapped.mapping(z).mean(0).float().cpu()
            w_count += 1
        update_ema(G_ema, unwrapped, beta=min(0.995, (1 + step) / (10 + step)))
        step += 1
        logs = {"d": d_loss.item(), "g_adv": adv.item(), "g_l1": low.item()}
        if step % args.log_every == 0 or step == steps:
            accel.print(f"step {step} {time.time() - start:.0f}s " + " ".join(f"{k}={v:.4f}" for k, v in logs.items()))
            sys.stdout.flush()
        if args.sample_every and step % args.sample_every == 0 and accel.is_main_process:
            sample_grid(G_ema, val, cfg, (args.log_dir or args.out) / f"samples_{step:06d}.png", accel.device)
    accel.wait_for_everyone()
    if not accel.is_main_process:
        return logs
    G_ema.w_avg.copy_(w_sum / max(w_count, 1))
    metrics = evaluate(G_ema, val, cfg, accel.device)
    args.out.mkdir(parents=True, exist_ok=True)
    sample_grid(G_ema, val, cfg, args.out / "samples.png", accel.device)
    config = {**cfg.to_dict(), "trained_steps": step}
    sha = save_model(G_ema.cpu(), config, args.out)
    print(json.dumps({"steps": step, "seconds": round(time.time() - start, 1),
                      "cpu_seconds": round(time.process_time() - cpu_start, 1), "final": logs, "val": metrics,
                      "sha256": sha, "bytes": (args.out / "model.safetensors").stat().st_size}))
    return {**logs, **metrics}


def face_redetection(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Share of held-out faces the detector still finds (IoU >= 0.5) after anonymization, per method.

    A realistic generator should keep faces detectable (high), blur/mask typically do not.
    """
    from realanon.config import AnonymizerConfig
    from realanon.detectors.mediapipe_face import MediaPipeFaceDetector
    from realanon.pipeline import build_anonymizer

    detector = MediaPipeFaceDetector(model="full", min_score=0.5, tile_size=0)
    paths = [p for p in list_images(args.data, "") if args.holdout in str(p)]
    images = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths]
    methods = {"gan": {"model": str(args.out)}, "blur": {}, "mask": {}}
    results = {}
    for method, options in methods.items():
        anonymizer = build_anonymizer(AnonymizerConfig(method=method, method_options=options, seed=args.seed),
                                      detector=None)
        found = total = 0
        for image in images:
            faces = detector(image)
            redetected = detector(anonymizer(image, faces).image)
            total += len(faces)
            found += sum(any(_iou(f.box_xyxy, r.box_xyxy) >= 0.5 for r in redetected) for f in faces)
        results[method] = {"faces": float(total), "redetected": found / max(total, 1)}
    detector.close()
    return results


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.eval_only:
        if args.kind != "face":
            raise SystemExit("--eval-only measures face re-detection; it needs --kind face")
        if args.threads:
            torch.set_num_threads(args.threads)
        print(json.dumps({"face_redetection": face_redetection(args)}))
        return
    if args.smoke:
        args.resolution, args.channels, args.batch_size, args.variants = 32, "8,16", 2, 2
    train(args)


if __name__ == "__main__":
    main()
