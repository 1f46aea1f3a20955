"""results.json, report.md and report.html with matplotlib figures."""

from __future__ import annotations

import dataclasses
import html
import json
import platform
from collections import defaultdict
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from realanon.evaluation.protocol import Protocol

UTILITY_METRICS = ("AP", "AP50", "AP_person", "classification_accuracy", "retention_AP", "retention_recall")
PRIVACY_METRICS = ("reid_pca_knn", "reid_cnn", "chance", "identity_distance", "identity_changed", "redetected",
                   "leaked_frames", "leaked_people")
HIGHER_IS_PRIVATE = {"identity_distance", "identity_changed"}
DESCRIPTIONS = {
    "AP": "COCO AP of a detector trained on anonymized train images, tested on original val images",
    "AP50": "same, AP at IoU 0.5",
    "AP_person": "same, AP of the person category",
    "classification_accuracy": "person-vs-background CNN trained on anonymized patches, accuracy on original patches",
    "retention_AP": "downstream detector on anonymized val images scored against its own predictions on the originals",
    "retention_recall": "share of those original predictions still found (IoU 0.5)",
    "reid_pca_knn": "top-1 re-identification accuracy of PCA + 1-NN on anonymized faces (lower is more private)",
    "reid_cnn": "top-1 re-identification accuracy of a small CNN on anonymized faces (lower is more private)",
    "chance": "chance level of the re-identification attacks",
    "identity_distance": "mean dlib descriptor distance between original and anonymized face",
    "identity_changed": "share of faces whose dlib distance exceeds 0.6 (no longer the same person for dlib)",
    "redetected": "share of replaced faces CenterFace still detects",
    "leaked_frames": "video frames where a person of the original is not covered by any replaced region",
    "leaked_people": "share of those people not covered",
}
PACKAGES = ("realanon", "torch", "torchvision", "accelerate", "numpy", "opencv-contrib-python", "mediapipe",
            "pycocotools", "dlib-bin", "openpeople")


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def summarize(units: dict[str, dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Method -> metric -> ``{mean, std, n, values}`` over the seeds of every unit."""
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for key, unit in sorted(units.items()):
        method = key.split("/")[1]
        for metric, value in unit["metrics"].items():
            values[method][metric].append(float(value))
    return {
        method: {k: {"mean": float(np.mean(v)), "std": float(np.std(v)), "n": len(v), "values": v} for k, v in metrics.items()}
        for method, metrics in values.items()
    }


def collect_results(protocol: Protocol, units: dict[str, dict[str, Any]], errors: dict[str, str], run: dict[str, Any]) -> dict[str, Any]:
    """Everything the report shows, plus the exact config, versions and seeds."""
    methods = {m.name: (dataclasses.asdict(m.config) if m.config else None) for m in protocol.methods}
    return {
        "protocol": protocol.name,
        "config": dict(protocol.source),
        "resolved": {k: dataclasses.asdict(getattr(protocol, k)) for k in ("data", "utility", "privacy", "leak")},
        "methods": json.loads(json.dumps(methods, default=str)),
        "seeds": list(protocol.seeds),
        "versions": _versions(),
        "summary": summarize(units),
        "units": {k: {"metrics": u["metrics"], "seconds": u.get("seconds")} for k, u in sorted(units.items())},
        "errors": errors,
        "run": run,
    }


def _fmt(stat: dict[str, Any] | None) -> str:
    if stat is None:
        return "–"
    if stat["n"] > 1:
        return f"{stat['mean']:.3f} ± {stat['std']:.3f}"
    return f"{stat['mean']:.3f}"


def _table(results: dict[str, Any], metrics: tuple[str, ...]) -> tuple[list[str], list[list[str]]]:
    summary = results["summary"]
    present = [m for m in metrics if any(m in s for s in summary.values())]
    rows = [[method] + [_fmt(summary.get(method, {}).get(m)) for m in present] for method in results["methods"]]
    return ["method", *present], rows


def _privacy_score(stats: dict[str, Any]) -> tuple[float, float] | None:
    attacks = [stats[k] for k in ("reid_pca_knn", "reid_cnn") if k in stats]
    if not attacks:
        return None
    best = max(attacks, key=lambda s: s["mean"])
    return 1.0 - best["mean"], best["std"]


def make_figures(results: dict[str, Any], fig_dir: Path) -> list[str]:
    """Writes the scatter and bar figures; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig_dir.mkdir(parents=True, exist_ok=True)
    summary, names = results["summary"], []
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for method, stats in summary.items():
        priv = _privacy_score(stats)
        util = stats.get("AP50") or stats.get("classification_accuracy")
        if priv is None or util is None:
            continue
        ax.errorbar(priv[0], util["mean"], xerr=priv[1], yerr=util["std"], fmt="o", capsize=3)
        ax.annotate(method, (priv[0], util["mean"]), textcoords="offset points", xytext=(5, 5))
    ax.set_xlabel("privacy: 1 - best re-identification accuracy")
    ax.set_ylabel("utility: AP50 (train anonymized, test original)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(fig_dir / "privacy_vs_utility.png", dpi=110)
    plt.close(fig)
    names.append("privacy_vs_utility.png")
    metrics = [m for m in UTILITY_METRICS + PRIVACY_METRICS if m != "chance" and any(m in s for s in summary.values())]
    if metrics:
        cols = 3
        rows = (len(metrics) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
        methods = [m for m in results["methods"] if summary.get(m)]  # methods that produced something
        for ax, metric in zip(axes.ravel(), metrics):
            means = [summary.get(m, {}).get(metric, {}).get("mean", np.nan) for m in methods]
            stds = [summary.get(m, {}).get(metric, {}).get("std", 0.0) for m in methods]
            ax.bar(range(len(methods)), means, yerr=stds, capsize=3, color="tab:blue" if metric in UTILITY_METRICS else "tab:red")
            for i, value in enumerate(means):
                if np.isnan(value):
                    ax.text(i, 0, "n/a", ha="center", va="bottom", fontsize=8)
            ax.set_xticks(range(len(methods)), methods, rotation=40, ha="right", fontsize=8)
            ax.set_title(metric, fontsize=10)
        for ax in axes.ravel()[len(metrics):]:
            ax.axis("off")
        fig.tight_layout()
        fig.savefig(fig_dir / "metrics.png", dpi=100)
        plt.close(fig)
        names.append("metrics.png")
    return names


def make_example_grid(out_dir: Path, results: dict[str, Any]) -> str | None:
    """One figure, a row per method: a validation frame and faces as that method leaves them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(m, [out_dir / "examples" / f"{k}_{m}.jpg" for k in ("frame", "faces")]) for m in results["methods"]]
    rows = [(m, paths) for m, paths in rows if any(p.exists() for p in paths)]
    if not rows:
        return None
    fig, axes = plt.subplots(len(rows), 2, figsize=(12, 2.6 * len(rows)), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 2.2]})
    for (method, paths), pair in zip(rows, axes):
        for path, ax in zip(paths, pair):
            ax.axis("off")
            if path.exists():
                ax.imshow(plt.imread(path))
        pair[0].set_title(method, loc="left", fontsize=10)
    fig.tight_layout()
    fig.savefig(out_dir / "figures" / "examples.png", dpi=80)
    plt.close(fig)
    return "examples.png"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _examples(out_dir: Path, results: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for method in results["methods"]:
        for kind in ("frame", "faces"):
            path = out_dir / "examples" / f"{kind}_{method}.jpg"
            if path.exists():
                found.append((f"{method} ({kind})", f"examples/{path.name}"))
    return found


def _grouped_errors(errors: dict[str, str]) -> list[tuple[str, str]]:
    """``(method: units, message)`` with the units that failed alike listed together."""
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for key, message in sorted(errors.items()):
        parts = key.split("/")
        method = parts[1] if len(parts) > 1 else parts[0]
        groups[(method, message)].append(parts[0] + ("/" + parts[2] if len(parts) > 2 else ""))
    return [(f"{method} ({', '.join(units)})", message) for (method, message), units in groups.items()]


def write_report(out_dir: Path, results: dict[str, Any]) -> None:
    """Writes ``results.json``, ``report.md``, ``report.html`` and ``figures/`` into ``out_dir``."""
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=str))
    figures = make_figures(results, out_dir / "figures")
    grid = make_example_grid(out_dir, results)
    figures += [grid] if grid else []
    tables = [("Utility", _table(results, UTILITY_METRICS)), ("Privacy", _table(results, PRIVACY_METRICS))]
    used = [m for _, (h, _) in tables for m in h[1:]]
    run = results["run"]
    intro = (f"Protocol `{results['protocol']}`, seeds {results['seeds']}, "
             f"{run['units_computed']} units computed and {run['units_reused']} reused in {run['wall_seconds']} s. "
             "Values are mean ± standard deviation over seeds where a metric has several.")
    md = [f"# Evaluation report: {results['protocol']}", "", intro, ""]
    page = [f"<h1>Evaluation report: {html.escape(results['protocol'])}</h1><p>{html.escape(intro)}</p>"]
    for title, (header, rows) in tables:
        md += [f"## {title}", "", _md_table(header, rows), ""]
        page.append(f"<h2>{title}</h2>{_html_table(header, rows)}")
    glossary = [f"- `{m}`: {DESCRIPTIONS[m]}" for m in used if m in DESCRIPTIONS]
    md += ["## Metrics", "", *glossary, "", "## Figures", ""] + [f"![{f}](figures/{f})" for f in figures]
    page.append("<h2>Metrics</h2><ul>" + "".join(f"<li><code>{m}</code>: {html.escape(DESCRIPTIONS[m])}</li>" for m in used if m in DESCRIPTIONS) + "</ul>")
    page.append("<h2>Figures</h2>" + "".join(f'<img src="figures/{f}" style="max-width:100%">' for f in figures))
    examples = _examples(out_dir, results)
    md += ["", "## Examples", ""] + [f"**{label}**\n\n![{label}]({path})\n" for label, path in examples]
    page.append("<h2>Examples</h2>" + "".join(f'<h4>{html.escape(lbl)}</h4><img src="{p}" style="max-width:100%">' for lbl, p in examples))
    errors = _grouped_errors(results["errors"])
    if errors:
        md += ["## Errors", ""] + [f"- {k}: {v}" for k, v in errors]
        page.append("<h2>Errors</h2><ul>" + "".join(f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in errors) + "</ul>")
    md += ["", "## Versions", "", ", ".join(f"{k} {v}" for k, v in results["versions"].items()), ""]
    (out_dir / "report.md").write_text("\n".join(md))
    style = "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}td,th{border:1px solid #ccc;padding:3px 6px}table{border-collapse:collapse}</style>"
    (out_dir / "report.html").write_text(f"<!doctype html><html><head><meta charset='utf-8'>{style}</head><body>{''.join(page)}</body></html>")
