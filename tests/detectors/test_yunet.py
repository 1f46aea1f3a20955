"""The YuNet detector on real faces: astronaut, openpeople, 12-px faces at 1080p, and its frame memory."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from realanon.detectors import yunet as yunet_module
from realanon.detectors import yunet_onnx
from realanon.detectors.yunet import YuNetDetector, changed_cells, face6_from_yunet, search_boxes
from realanon.detectors.yunet_onnx import YuNetNetwork
from realanon.media import openpeople_images
from realanon.registry import DETECTORS
from realanon.weights import WEIGHTS_DIR, WeightsError, read_manifest, sha256_file
from tests.detectors.conftest import make_face_collage
from tests.detectors.test_face_detectors import ASTRONAUT_FACE, _matched


def test_yunet_finds_the_astronaut_with_face6_keypoints(astronaut: np.ndarray) -> None:
    dets = YuNetDetector()(astronaut)
    assert len(dets) == 1 and dets.image_size == (512, 512)
    assert _matched([ASTRONAUT_FACE], dets) == [True]
    det = dets.items[0]
    assert det.kind == "face" and det.keypoint_layout == "face6" and det.source == "yunet"
    kp = det.keypoints
    assert kp is not None and kp.shape == (6, 3) and kp.dtype == np.float32
    assert kp[0, 0] < kp[1, 0]  # image-left eye first, as mediapipe's face6 and face_roll expect
    assert list(kp[:, 2]) == [1, 1, 1, 1, 0, 0]  # YuNet sees no ears
    x1, y1, x2, y2 = ASTRONAUT_FACE
    assert ((kp[:4, 0] > x1) & (kp[:4, 0] < x2) & (kp[:4, 1] > y1) & (kp[:4, 1] < y2)).all()
    assert kp[0, 1] < kp[2, 1] < kp[3, 1]  # eyes above the nose above the mouth


def test_yunet_finds_an_openpeople_selfie() -> None:
    path = openpeople_images()["P003"][1]
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    dets = YuNetDetector()(image)
    assert len(dets) >= 1 and max(d.score for d in dets) > 0.5


def test_yunet_finds_12_px_faces_in_a_1080p_frame() -> None:
    image, truths = make_face_collage((12, 16, 24, 48, 96), size=(1080, 1920))
    assert all(_matched(truths, YuNetDetector()(image)))
    # The shrunk whole-frame pass alone misses the smallest: the full-resolution search finds it.
    assert not _matched(truths[:1], YuNetDetector(fine_scales=())(image))[0]


def test_yunet_gives_the_same_faces_when_called_from_two_threads_at_once() -> None:
    from concurrent.futures import ThreadPoolExecutor

    images = [make_face_collage(heights, size=(540, 960))[0] for heights in ((12, 24, 48), (16, 32), (20, 40, 60))]
    detector = YuNetDetector(threads=1)
    alone = [detector(image) for image in images]
    assert detector.concurrent_calls() and not YuNetDetector(reuse_unchanged=True).concurrent_calls()
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(detector, images + images))
    def rows(found: list) -> list:  # type: ignore[type-arg]
        return [[(d.box_xyxy, d.score, d.keypoints.tolist()) for d in dets] for dets in found]

    assert rows(together) == rows(alone + alone) and all(len(d) for d in alone)


def test_yunet_small_frames_need_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    searched: list[tuple[int, int]] = []
    monkeypatch.setattr(yunet_module, "yunet_raw", lambda bgr, *_: searched.append(bgr.shape[:2]) or np.zeros((0, 15)))
    YuNetDetector()(np.zeros((360, 480, 3), np.uint8))  # fits the whole-frame pass unshrunk
    assert searched == [(360, 480)]


def test_yunet_alternates_full_and_half_resolution_in_tracked_video_only(monkeypatch: pytest.MonkeyPatch) -> None:
    searched: list[tuple[int, int]] = []
    monkeypatch.setattr(yunet_module, "yunet_raw", lambda bgr, *_: searched.append(bgr.shape[:2]) or np.zeros((0, 15)))
    frame = np.zeros((1080, 1920, 3), np.uint8)
    full, half, coarse = (1080, 1920), (540, 960), (270, 480)

    def passes(detector: YuNetDetector) -> list[list[tuple[int, int]]]:
        found = []
        for index in range(4):
            searched.clear()
            detector.detect_frame(frame, index)
            found.append(sorted(searched))
        return found

    every_scale = [sorted([coarse, half, full])] * 4
    detector = YuNetDetector()
    assert passes(detector) == every_scale  # untracked (photos, --no-track): every scale, every frame
    detector.set_tracked(True)
    assert passes(detector) == [sorted([coarse, full]), sorted([coarse, half])] * 2
    detector.set_tracked(True)
    detector.finest_every = 1
    assert passes(detector) == every_scale


def test_yunet_session_plans_no_memory_pattern_for_its_many_input_sizes() -> None:
    # Each input size would get its own planned block, allocated anew on every run.
    options = YuNetDetector()._network._session.get_session_options()
    assert options.enable_mem_pattern is False


def test_yunet_finds_nothing_in_an_empty_frame() -> None:
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 255, (1080, 1920, 3), dtype=np.uint8), (0, 0), 2)
    assert len(YuNetDetector()(image)) == 0
    assert len(YuNetDetector()(np.zeros((64, 80, 3), np.uint8))) == 0


def test_yunet_searches_again_only_where_the_frame_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    background = np.full((1080, 1920, 3), 120, np.uint8)
    collage, truths = make_face_collage((14, 20), size=(1080, 1920))
    searched: list[tuple[int, int]] = []
    real = yunet_module.yunet_raw

    def spy(bgr: np.ndarray, *args: object) -> np.ndarray:
        searched.append(bgr.shape[:2])
        return real(bgr, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(yunet_module, "yunet_raw", spy)
    detector = YuNetDetector(refresh_every=0, reuse_unchanged=True)
    first = detector(collage)
    assert all(_matched(truths, first))
    searched.clear()
    again = detector(collage)  # nothing changed: only the shrunk whole-frame pass runs
    assert searched == [(270, 480)]
    assert [d.box_xyxy for d in again] == [d.box_xyxy for d in first]
    # Faces vanish where the frame changed back to the background; the rest is remembered.
    x1, y1, x2, y2 = (int(v) for v in truths[0])
    partly = collage.copy()
    partly[y1 - 20 : y2 + 20, x1 - 20 : x2 + 20] = background[y1 - 20 : y2 + 20, x1 - 20 : x2 + 20]
    searched.clear()
    dets = detector(partly)
    assert _matched(truths, dets) == [False, True]
    assert max(h * w for h, w in searched[1:]) < 400 * 400  # a small search, not the whole frame
    assert detector(collage) and all(_matched(truths, detector(collage)))  # the face back: found again


def test_yunet_refreshes_the_whole_frame_every_n_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    image = np.full((600, 960, 3), 90, np.uint8)
    searched: list[tuple[int, int]] = []
    monkeypatch.setattr(yunet_module, "yunet_raw", lambda bgr, *_: searched.append(bgr.shape[:2]) or np.zeros((0, 15)))
    detector = YuNetDetector(refresh_every=3, fine_scales=[1.0], reuse_unchanged=True)
    for _ in range(4):
        detector(image)
    full = [s for s in searched if s == (600, 960)]
    assert searched.count((300, 480)) == 4  # the shrunk whole-frame pass runs on every call
    assert len(full) == 2  # calls 1 and 4


def test_changed_cells_and_search_boxes() -> None:
    grey = np.zeros((100, 130), np.uint8)
    moved = grey.copy()
    moved[40:48, 72:80] = 9  # one 8x8 block, mean difference 9
    cells = changed_cells(moved, grey, 32, threshold=8.0)
    assert cells.shape == (4, 5) and cells.sum() == 1 and cells[1, 2]
    assert not changed_cells(moved, grey, 32, threshold=10.0).any()
    assert search_boxes(cells, 32, 16, (100, 130)) == [(48, 16, 112, 80)]
    assert search_boxes(np.zeros((4, 5), bool), 32, 16, (100, 130)) == []


def test_face6_from_yunet_points() -> None:
    points = np.array([[10, 20], [30, 20], [20, 30], [14, 40], [26, 40]], np.float32)
    kp = face6_from_yunet(points)
    np.testing.assert_allclose(kp[3, :2], [20, 40])
    np.testing.assert_allclose(kp[4, :2], [-5, 20])  # 0.75 eye distances beyond the right eye
    np.testing.assert_allclose(kp[5, :2], [45, 20])


@pytest.mark.parametrize("options", [{"coarse_size": 32}, {"fine_scales": [1.0, 3.0]}, {"cell_size": 20}, {"min_score": 2},
                                     {"search_margin": -1}, {"refresh_every": -1}, {"threads": 0},
                                     {"finest_every": 0}])
def test_yunet_rejects_bad_options(options: dict) -> None:
    with pytest.raises(ValueError):
        YuNetDetector(**options)


def test_yunet_is_registered() -> None:
    assert isinstance(DETECTORS.build("yunet", min_score=0.5), YuNetDetector)


def test_yunet_refuses_an_altered_shipped_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from realanon.detectors import onnx_models

    root = tmp_path / "weights"
    (root / "yunet").mkdir(parents=True)
    shutil.copy(WEIGHTS_DIR / "manifest.json", root / "manifest.json")
    target = root / "yunet" / "model.onnx"
    monkeypatch.setattr(onnx_models, "WEIGHTS_DIR", root)
    monkeypatch.setattr(yunet_onnx, "_DEFAULT", {})
    with pytest.raises(WeightsError, match=f"{target}: model file not found"):
        YuNetDetector()
    target.write_bytes(b"not a network")
    with pytest.raises(WeightsError, match=f"{target}: sha256 .* does not match"):
        YuNetDetector()


def test_shipped_network_matches_its_manifest_and_licence() -> None:
    entry = read_manifest()["yunet"]
    path = WEIGHTS_DIR / "yunet" / "model.onnx"
    assert sha256_file(path) == entry.sha256 and entry.licence.startswith("BSD-3-Clause")
    assert (path.parent / "LICENSE").read_text().startswith("BSD 3-Clause License")


@pytest.fixture(scope="module")
def reference_images() -> dict[str, np.ndarray]:
    return yunet_onnx.reference_images()


@pytest.mark.parametrize("key", ["vtest300x2", "astronaut", "openpeople_sheet"])
def test_network_reproduces_its_reference_and_yuface(key: str, reference_images: dict[str, np.ndarray]) -> None:
    """The shipped graph gives the rows stored at conversion, and those match yuface's own detections."""
    reference = np.load(WEIGHTS_DIR / "yunet" / "reference.npz")
    got = YuNetNetwork(threads=1)(reference_images[key], min_score=0.3)
    want = reference[f"{key}_onnx"]
    assert got.shape == want.shape and len(want) >= 1
    np.testing.assert_allclose(got, want, atol=2e-3)
    found, total, coord, score = yunet_onnx.match_rows(got, reference[f"{key}_yuface"])
    assert found == total >= 1 and coord <= 1.5 and score <= 0.015
