"""Dataset jobs: inputs expansion, sharding, manifest resume, per-file failures, two processes."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from realanon.batch import MANIFEST_DIR, expand_inputs, main, read_manifest, run_batch, shard_jobs
from realanon.config import AnonymizerConfig
from realanon.jobs import Job
from realanon.media import openpeople_images
from realanon.pipeline import Anonymizer, build_anonymizer

MASK = AnonymizerConfig(method="mask")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def masker() -> Anonymizer:
    """Built once: building the mediapipe detector is the slow part of a small batch."""
    return build_anonymizer(MASK)


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    """Five real portraits (openpeople) in two sub-folders, plus one corrupt jpg."""
    root = tmp_path / "data"
    people = openpeople_images()
    images = [imgs[0] for imgs in list(people.values())[:5]]
    for i, src in enumerate(images):
        dst = root / ("a" if i % 2 else "b") / f"p{i}.jpg"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)
    (root / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    return root


def test_shards_are_disjoint_and_complete() -> None:
    jobs = [Job(Path(f"in/{i:02d}.jpg"), Path(f"out/{i:02d}.jpg"), "image") for i in range(11)]
    for count in (1, 2, 3, 4):
        parts = [shard_jobs(list(reversed(jobs)), k, count) for k in range(count)]
        flat = [j for part in parts for j in part]
        assert sorted(flat, key=lambda j: str(j.input)) == jobs
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
    with pytest.raises(ValueError):
        shard_jobs(jobs, 2, 2)


def test_expand_folder_coco_and_list(tmp_path: Path, dataset: Path) -> None:
    coco = dataset / "coco.json"
    coco.write_text(json.dumps({"images": [{"id": 1, "file_name": "a/p1.jpg"}], "annotations": []}))
    listing = tmp_path / "list.txt"
    listing.write_text("# videos and images\ndata/a/p3.jpg\n\nmissing.mp4\n")
    out = tmp_path / "out"
    jobs, problems = expand_inputs([str(dataset), str(coco), str(listing)], out)
    outputs = {str(j.output.relative_to(out)) for j in jobs}
    assert "data/a/p1.jpg" in outputs and "coco/a/p1.jpg" in outputs and "p3.jpg" in outputs
    assert len([j for j in jobs if j.input.parent == dataset / "b"]) == 4  # 3 portraits + broken
    assert [p for p, _ in problems] == [str(tmp_path / "missing.mp4")]


def test_failures_are_reported_per_file_and_resume_skips_finished(
    tmp_path: Path, dataset: Path, masker: Anonymizer
) -> None:
    out = tmp_path / "out"
    first = run_batch([str(dataset)], out, MASK, shard=(0, 1), anonymizer=masker)
    assert len(first.done) == 5
    assert [Path(p).name for p, _ in first.failed] == ["broken.jpg"]
    outputs = sorted(out.rglob("*.jpg"))
    assert len(outputs) == 5
    stamps = {p: p.stat().st_mtime_ns for p in outputs}

    outputs[0].unlink()  # a finished file whose output went missing is redone
    second = run_batch([str(dataset)], out, MASK, shard=(0, 1), anonymizer=masker)
    assert len(second.done) == 1 and len(second.skipped) == 4
    assert [Path(p).name for p, _ in second.failed] == ["broken.jpg"]  # failures are retried
    assert all(p.stat().st_mtime_ns == stamps[p] for p in outputs[1:])

    third = run_batch([str(dataset)], out, MASK, shard=(0, 1), retry_failed=False, anonymizer=masker)
    assert third.done == () and len(third.skipped) == 6

    changed = run_batch([str(dataset)], out, MASK.replace(seed=1), shard=(0, 1), anonymizer=masker)
    assert len(changed.done) == 5  # another config is another job


def test_a_torn_manifest_line_is_ignored(tmp_path: Path, dataset: Path, masker: Anonymizer) -> None:
    out = tmp_path / "out"
    report = run_batch([str(dataset / "a")], out, MASK, shard=(0, 1), anonymizer=masker)
    with report.manifest.open("a") as f:
        f.write('{"input": "half-writ')
    assert set(read_manifest(out)) == set(report.done)
    assert len(run_batch([str(dataset / "a")], out, MASK, shard=(0, 1), anonymizer=masker).skipped) == 2


def test_main_returns_1_on_file_errors_and_saves_detections(tmp_path: Path, dataset: Path) -> None:
    out = tmp_path / "out"
    assert main([str(dataset / "a"), "-o", str(out), "--set", "method=mask", "--save-detections"]) == 0
    audits = sorted(out.rglob("*.detections.json"))
    assert len(audits) == 2
    assert json.loads(audits[0].read_text())["format"] == "realanon.detections/1"
    assert main([str(dataset), "-o", str(out), "--set", "method=mask", "--shard", "0/1"]) == 1
    assert main([str(dataset), "-o", str(out), "--shard", "3/2"]) == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_accelerate_processes_split_the_work(tmp_path: Path, dataset: Path) -> None:
    """Two CPU processes with accelerate's environment (as `accelerate launch` sets it)."""
    out = tmp_path / "out"
    port = str(_free_port())
    procs = []
    for rank in (0, 1):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
               "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port,
               "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true"}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "realanon.batch", str(dataset), "-o", str(out), "--set", "method=mask"],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    logs = [p.communicate(timeout=120) for p in procs]
    assert sorted(p.returncode for p in procs) == [0, 1], logs  # broken.jpg fails in exactly one shard
    manifests = sorted((out / MANIFEST_DIR).glob("*.jsonl"))
    assert [m.name for m in manifests] == ["shard-0-of-2.jsonl", "shard-1-of-2.jsonl"], logs
    per_shard = [{json.loads(line)["input"] for line in m.read_text().splitlines()} for m in manifests]
    assert per_shard[0].isdisjoint(per_shard[1])
    assert per_shard[0] | per_shard[1] == {str(p) for p in dataset.rglob("*.jpg")}
    assert len(list(out.rglob("*.jpg"))) == 5
