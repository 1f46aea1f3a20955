"""Runs a protocol: every method through every metric, resumable, then the report."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import numpy as np

from realanon.evaluation.coco import labelled
from realanon.evaluation.protocol import MethodSpec, Protocol, load_protocol, restrict_methods

log = logging.getLogger(__name__)


class UnitStore:
    """One JSON file per finished unit (task, method, seed): what makes a run resumable.

    A unit is reused only when its stored fingerprint (a hash of the method, data and task
    options and the seed) equals the current one.
    """

    def __init__(self, root: Path, resume: bool) -> None:
        self.root = root
        self.resume = resume
        self.computed = 0
        self.reused = 0

    def _path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str, fingerprint: str) -> dict[str, Any] | None:
        path = self._path(key)
        if not self.resume or not path.exists():
            return None
        data = json.loads(path.read_text())
        return data if data.get("fingerprint") == fingerprint else None

    def put(self, key: str, fingerprint: str, metrics: dict[str, float], seconds: float) -> dict[str, Any]:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"key": key, "fingerprint": fingerprint, "metrics": metrics, "seconds": round(seconds, 2)}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)
        return data


class Evaluation:
    """Evaluates every method of ``protocol`` into ``output_dir``."""

    def __init__(self, protocol: Protocol, output_dir: Path, resume: bool = True, progress: bool = True) -> None:
        self.p = protocol
        self.out = output_dir
        self.store = UnitStore(output_dir / "units", resume)
        self.progress = progress
        self.units: dict[str, dict[str, Any]] = {}
        self.errors: dict[str, str] = {}
        self._retention_cache: dict[str, list[Any]] = {}

    # ---- shared data, built on first use -------------------------------------------------
    @cached_property
    def splits(self) -> tuple[list[Any], list[Any]]:
        from realanon.evaluation.datasets import detection_splits

        log.info("building the detection splits (%s)", self.p.data.source)
        return detection_splits(self.p.data)

    @cached_property
    def faces(self) -> list[Any]:
        from realanon.evaluation.datasets import extract_faces

        log.info("extracting identity faces (%s)", self.p.privacy.identities)
        return extract_faces(self.p.privacy)

    @cached_property
    def leak_references(self) -> list[np.ndarray]:
        """The leak check's reference people, per checked validation frame (found once for every method)."""
        from realanon.evaluation.references import leak_references

        return leak_references(self.splits[1][: self.p.leak.frames], self.p.data, self.p.leak)

    @cached_property
    def original_descriptors(self) -> np.ndarray:
        from realanon.evaluation.privacy import face_descriptors

        return face_descriptors([f.image for f in self.faces], [f.detection for f in self.faces])

    def originals_predicted(self, name: str, detect: Callable[[np.ndarray], Any]) -> list[Any]:
        """A retention detector's predictions on the original validation images (computed once)."""
        if name not in self._retention_cache:
            self._retention_cache[name] = [detect(s.image) for s in self.splits[1]]
        return self._retention_cache[name]

    # ---- unit bookkeeping ------------------------------------------------------------------
    def _unit(self, key: str, parts: tuple[Any, ...], compute: Callable[[], dict[str, float]]) -> None:
        fingerprint = self.p.fingerprint(*parts)
        found = self.store.get(key, fingerprint)
        if found is not None:
            self.store.reused += 1
        else:
            start = time.perf_counter()
            try:
                metrics = compute()
            except Exception as err:  # noqa: BLE001 - one failing unit must not stop the others
                log.warning("%s failed: %s: %s", key, type(err).__name__, err)
                self.errors[key] = f"{type(err).__name__}: {err}"
                return
            found = self.store.put(key, fingerprint, metrics, time.perf_counter() - start)
            self.store.computed += 1
        self.units[key] = found

    def _pending(self, keys: list[tuple[str, tuple[Any, ...]]]) -> bool:
        return any(self.store.get(k, self.p.fingerprint(*parts)) is None for k, parts in keys)

    # ---- the run ----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        from tqdm.auto import tqdm

        start = time.perf_counter()
        for spec in tqdm(self.p.methods, desc="methods", disable=not self.progress):
            for part, fn in (("utility", self._utility), ("privacy", self._privacy)):
                try:
                    fn(spec)
                except Exception as err:  # noqa: BLE001 - one failing method must not stop the others
                    log.exception("%s of %s failed", part, spec.name)
                    self.errors[f"{part}/{spec.name}"] = f"{type(err).__name__}: {err}"
        return {"wall_seconds": round(time.perf_counter() - start, 1),
                "units_computed": self.store.computed, "units_reused": self.store.reused}

    def _method_parts(self, spec: MethodSpec) -> dict[str, Any]:
        return {"name": spec.name, "config": asdict(spec.config) if spec.config else None}

    def _utility(self, spec: MethodSpec) -> None:
        u, seeds, m = self.p.utility, self.p.seeds, self._method_parts(spec)
        base = (m, self.p.data, u.target, seeds[0])
        jobs: list[tuple[str, str, int, tuple[Any, ...]]] = []  # (key, task, seed, fingerprint parts)
        if u.detection.enabled:
            jobs += [(f"detection/{spec.name}/seed{s}", "detection", s, (*base, u.detection, s)) for s in seeds]
        if u.classification.enabled:
            jobs += [(f"classification/{spec.name}/seed{s}", "classification", s, (*base, u.classification, s)) for s in seeds]
        if u.retention.enabled:
            jobs.append((f"retention/{spec.name}", "retention", seeds[0], (*base, u.retention)))
        if self.p.leak.enabled:
            jobs.append((f"leak/{spec.name}", "leak", seeds[0], (*base, self.p.leak)))
        anon = _LazyAnonymized(self, spec)  # anonymizes only if some unit is not finished yet
        for key, task, seed, parts in jobs:
            self._unit(key, parts, partial(anon.compute, task, seed))

    def _privacy(self, spec: MethodSpec) -> None:
        pv, seeds, m = self.p.privacy, self.p.seeds, self._method_parts(spec)
        if not pv.enabled:
            return
        if excludes_donors(spec):
            m["exclude_own_identity"] = True
        base = (m, pv, seeds[0])
        keys: list[tuple[str, tuple[Any, ...]]] = [(f"reid/{spec.name}/seed{s}", (*base, s)) for s in seeds]
        keys.append((f"identity/{spec.name}", base))
        if not self._pending(keys):
            for key, parts in keys:
                self._unit(key, parts, dict)
            return
        faces = self.faces
        anonymized = self._anonymize_faces(spec, faces)
        dets = [f.detection for f in faces]
        ids = [f.identity for f in faces]
        from realanon.evaluation.privacy import reid_attacks

        for (key, parts), seed in zip(keys, seeds):
            self._unit(key, parts, partial(
                reid_attacks, anonymized, dets, ids, seed=seed, test_fraction=pv.test_fraction,
                pca_components=pv.pca_components, cnn_steps=pv.cnn_steps, device=self.p.device))
        self._unit(keys[-1][0], keys[-1][1], lambda: self._identity_metrics(faces, anonymized))

    def _anonymize_faces(self, spec: MethodSpec, faces: list[Any]) -> list[np.ndarray]:
        from tqdm.auto import tqdm

        from realanon.evaluation.methods import build_method
        from realanon.structures import Detections

        fns: dict[str, Any] = {}
        out = []
        for i, f in enumerate(tqdm(faces, desc=f"faces {spec.name}", disable=not self.progress, leave=False)):
            if f.identity not in fns:  # one anonymizer per identity when the generator can exclude donors
                own = excluding_identity(spec, f.identity) if excludes_donors(spec) else spec
                fns[f.identity] = build_method(own, "face", seed=self.p.seeds[0], device=self.p.device)
            out.append(fns[f.identity](f.image, Detections((f.detection,), f.image.shape[:2]), i).image)
        save_example(self.out / "examples" / f"faces_{spec.name}.jpg", out[:: max(1, len(out) // self.p.examples)][: self.p.examples])
        return out

    def _identity_metrics(self, faces: list[Any], anonymized: list[np.ndarray]) -> dict[str, float]:
        from realanon.evaluation.privacy import DLIB_MATCH_DISTANCE, identity_distances, redetection_rate

        out: dict[str, float] = {}
        dets = [f.detection for f in faces]
        if self.p.privacy.dlib:
            dist = identity_distances(self.original_descriptors, anonymized, dets)
            out["identity_distance"] = float(dist.mean())
            out["identity_changed"] = float((dist > DLIB_MATCH_DISTANCE).mean())
        if self.p.privacy.centerface:
            out["redetected"] = redetection_rate(anonymized, dets)
        out["faces"] = float(len(faces))
        return out


class _LazyAnonymized:
    """A method's anonymized train/val splits, computed once when a unit needs them."""

    def __init__(self, ev: Evaluation, spec: MethodSpec) -> None:
        self.ev = ev
        self.spec = spec

    @cached_property
    def images(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        from tqdm.auto import tqdm

        from realanon.evaluation.datasets import to_detections
        from realanon.evaluation.methods import build_method

        p = self.ev.p
        fn = build_method(self.spec, p.utility.target, seed=p.seeds[0], device=p.device)
        train, val = self.ev.splits
        done = []
        for name, split, first in (("train", train, 0), ("val", val, len(train))):
            bar = tqdm(split, desc=f"anonymize {name} {self.spec.name}", disable=not self.ev.progress, leave=False)
            done.append([fn(s.image, to_detections(s, p.utility.target), first + i).image for i, s in enumerate(bar)])
        save_example(self.ev.out / "examples" / f"frame_{self.spec.name}.jpg", done[1][:1])
        return done[0], done[1]

    def compute(self, task: str, seed: int) -> dict[str, float]:
        return {"detection": self._detection, "classification": self._classification,
                "retention": self._retention, "leak": self._leak}[task](seed)

    def _detection(self, seed: int) -> dict[str, float]:
        from realanon.evaluation.detection_train import evaluate_detector, train_detector

        train, val = self.ev.splits
        opts = self.ev.p.utility.detection
        labels = [labelled(s.instances) for s in train]
        model = train_detector(self.images[0], labels, opts, seed, self.ev.p.device, self.ev.progress)
        return evaluate_detector(model, val, opts.task)

    def _classification(self, seed: int) -> dict[str, float]:
        from realanon.evaluation.classify import train_cnn_accuracy
        from realanon.evaluation.utility import person_patches

        train, val = self.ev.splits
        opts = self.ev.p.utility.classification
        xt, yt = person_patches(self.images[0], [labelled(s.instances) for s in train], opts.negatives_per_image, seed)
        xv, yv = person_patches(
            [s.image for s in val], [labelled(s.instances) for s in val], opts.negatives_per_image, 10_000 + seed)
        acc = train_cnn_accuracy(xt, yt, xv, yv, steps=opts.steps, seed=seed, batch_size=opts.batch_size,
                                 lr=opts.lr, device=self.ev.p.device)
        return {"classification_accuracy": acc}

    def _retention(self, seed: int) -> dict[str, float]:
        from realanon.evaluation.datasets import box_detector
        from realanon.evaluation.utility import retention_scores

        _, val = self.ev.splits
        opts = self.ev.p.utility.retention
        out: dict[str, float] = {}
        for name in opts.detectors:
            detect = box_detector(name, opts.upscale, opts.detector_options.get(name))
            orig = self.ev.originals_predicted(name, detect)
            anon = [detect(im) for im in self.images[1]]
            scores = retention_scores(orig, anon, [s.image.shape[:2] for s in val], opts.score_threshold)
            out |= {f"{k}[{name}]" if len(opts.detectors) > 1 else k: v for k, v in scores.items()}
        return out

    def _leak(self, seed: int) -> dict[str, float]:
        from realanon.evaluation.methods import build_method, replaced_mask
        from realanon.evaluation.privacy import leak_fraction

        p = self.ev.p
        _, val = self.ev.splits
        frames = val[: p.leak.frames]
        fn = build_method(self.spec, p.utility.target, seed=p.seeds[0], device=p.device, own_detector=True)
        masks = [replaced_mask(fn(s.image, None, i)) for i, s in enumerate(frames)]
        frame_share, instance_share = leak_fraction(self.ev.leak_references, masks, p.leak.coverage)
        return {"leaked_frames": frame_share, "leaked_people": instance_share}


def excludes_donors(spec: MethodSpec) -> bool:
    """Whether the method's generator takes ``exclude_persons`` (donor-based generators do)."""
    import inspect

    from realanon.registry import GENERATORS

    if spec.config is None:
        return False
    try:
        return "exclude_persons" in inspect.signature(GENERATORS.get(spec.config.method)).parameters
    except (TypeError, ValueError):
        return False


def excluding_identity(spec: MethodSpec, identity: str) -> MethodSpec:
    """The method with ``identity`` excluded from its donors.

    The privacy identities may be people of a donor bank (openpeople is both); a face must
    never be "replaced" by another picture of the same person.
    """
    if spec.config is None:
        return spec
    options = dict(spec.config.method_options)
    options["exclude_persons"] = [*options.get("exclude_persons", ()), identity]
    return MethodSpec(spec.name, spec.config.replace(method_options=options))


def save_example(path: Path, images: list[np.ndarray]) -> None:
    """Writes images side by side (same height) as one JPEG."""
    import cv2

    if not images:
        return
    h = min(im.shape[0] for im in images)
    row = np.concatenate([cv2.resize(im, (int(im.shape[1] * h / im.shape[0]), h)) for im in images], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(row, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])


def run_evaluation(
    config_path: str | Path, output_dir: str | Path | None = None, resume: bool = True,
    methods: Sequence[str] | None = None,
) -> Path:
    """The body of :func:`realanon.evaluation.run_evaluation` (imported lazily from there)."""
    import torch

    from realanon.evaluation.report import collect_results, write_report

    protocol = load_protocol(config_path)
    if methods:
        protocol = restrict_methods(protocol, methods)
    out = Path(output_dir) if output_dir is not None else Path("eval_runs") / protocol.name
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, protocol.threads))
    evaluation = Evaluation(protocol, out, resume)
    run = evaluation.run()
    results = collect_results(protocol, evaluation.units, evaluation.errors, run)
    write_report(out, results)
    return out
