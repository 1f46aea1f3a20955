"""Real face detectors on real images: astronaut, openpeople, and a collage of small faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from realanon.detectors._boxes import box_iou
from realanon.detectors.centerface import CenterFaceDetector
from realanon.detectors.mediapipe_face import MediaPipeFaceDetector
from realanon.media import openpeople_images
from realanon.registry import DETECTORS
from tests.detectors.conftest import make_face_collage
from tests.helpers import assert_same_detections

# The astronaut's face (brow to chin, ear to ear), measured by hand on the image.
ASTRONAUT_FACE = np.array([175.0, 65.0, 275.0, 175.0])


def _matched(truths: list, detections) -> list[bool]:  # type: ignore[no-untyped-def]
    boxes = np.array([d.box_xyxy for d in detections], dtype=np.float64).reshape(-1, 4)
    return [bool(len(boxes)) and float(box_iou(np.asarray(t), boxes).max()) >= 0.3 for t in truths]


def _check_detection_fields(dets, size, layout, n_kp) -> None:  # type: ignore[no-untyped-def]
    assert dets.image_size == size
    for d in dets:
        assert d.kind == "face"
        assert 0.0 <= d.score <= 1.0
        assert d.keypoint_layout == layout
        assert d.keypoints is not None and d.keypoints.shape == (n_kp, 3)
        assert d.keypoints.dtype == np.float32


@pytest.mark.parametrize("options", [{}, {"landmarks": "mesh"}])
def test_mediapipe_face_finds_astronaut(astronaut: np.ndarray, options: dict) -> None:
    dets = MediaPipeFaceDetector(**options)(astronaut)
    layout, n = ("face_mesh478", 478) if options else ("face6", 6)
    _check_detection_fields(dets, (512, 512), layout, n)
    assert _matched([ASTRONAUT_FACE], dets) == [True]
    best = max(dets, key=lambda d: d.score)
    # Landmarks lie on the face.
    x1, y1, x2, y2 = ASTRONAUT_FACE
    kp = best.keypoints
    inside = (kp[:, 0] > x1 - 30) & (kp[:, 0] < x2 + 30) & (kp[:, 1] > y1 - 40) & (kp[:, 1] < y2 + 30)
    assert inside.mean() > 0.95


def test_centerface_finds_astronaut(astronaut: np.ndarray) -> None:
    dets = CenterFaceDetector()(astronaut)
    _check_detection_fields(dets, (512, 512), "face5", 5)
    assert len(dets) == 1
    assert _matched([ASTRONAUT_FACE], dets) == [True]
    left_eye, right_eye = dets.items[0].keypoints[:2, 0]
    assert left_eye < right_eye  # image-left eye first, as face_roll expects


@pytest.mark.parametrize("factory", [MediaPipeFaceDetector, CenterFaceDetector])
def test_face_detectors_find_an_openpeople_selfie(factory) -> None:  # type: ignore[no-untyped-def]
    path = openpeople_images()["P003"][1]
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    dets = factory()(image)
    assert len(dets) >= 1
    assert max(d.score for d in dets) > 0.5


def test_mediapipe_tiling_finds_small_faces(face_collage) -> None:  # type: ignore[no-untyped-def]
    image, truths = face_collage
    untiled = _matched(truths, MediaPipeFaceDetector(tile_size=0)(image))
    tiled_dets = MediaPipeFaceDetector(tile_size=256)(image)
    tiled = _matched(truths, tiled_dets)
    assert all(tiled), tiled  # every face, 16 px high included
    assert not all(untiled[:3])  # the tiles are what find the smallest ones
    default = _matched(truths, MediaPipeFaceDetector()(image))
    assert sum(default) > sum(untiled)  # the default tiles find more than one whole-frame pass
    assert len(tiled_dets) <= len(truths) + 1  # tile duplicates are merged


def test_centerface_finds_small_faces(face_collage) -> None:  # type: ignore[no-untyped-def]
    image, truths = face_collage
    assert all(_matched(truths, CenterFaceDetector()(image)))


def test_empty_image_has_no_faces() -> None:
    image = np.full((240, 320, 3), 128, np.uint8)
    for detector in (MediaPipeFaceDetector(tile_size=128), CenterFaceDetector()):
        dets = detector(image)
        assert len(dets) == 0 and dets.image_size == (240, 320)


@pytest.mark.parametrize("options", [{"model": "tiny"}, {"landmarks": "dlib"}, {"tile_size": 10},
                                     {"tile_overlap": 0.95}])
def test_mediapipe_face_rejects_bad_options(options: dict) -> None:
    with pytest.raises(ValueError):
        MediaPipeFaceDetector(**options)


def test_face_detectors_registered() -> None:
    assert {"mediapipe_face", "centerface"} <= set(DETECTORS.names())
    assert isinstance(DETECTORS.build("centerface", min_score=0.5), CenterFaceDetector)


def test_centerface_is_stable_across_input_sizes(astronaut: np.ndarray) -> None:
    # OpenCV's DNN gives spurious peaks when one network sees a new input size; each size
    # must get its own network so one face stays one face whatever came before.
    detector = CenterFaceDetector()
    for side in (512, 400, 320, 448, 512):
        image = cv2.resize(astronaut, (side, side))
        dets = detector(image)
        assert len(dets) == 1, (side, len(dets))


def test_centerface_batch_equals_one_image_at_a_time(astronaut: np.ndarray, face_collage: tuple) -> None:
    # A batch of a new size is a new input shape to OpenCV's DNN, like a new image size
    # (see above): batches of 4, then 2, then 1, then mixed sizes, then more than batch_size
    # must all stay exact.
    images = [astronaut, np.ascontiguousarray(astronaut[:, ::-1]), np.roll(astronaut, 37, axis=1),
              np.roll(astronaut, -23, axis=0), face_collage[0]]
    expected = [CenterFaceDetector()(image) for image in images]  # a fresh network for each
    detector = CenterFaceDetector(batch_size=4)
    for batch in ([0, 1, 2, 3], [0, 1], [2], [3, 4, 0, 4], [3, 2, 1, 0, 1, 2]):
        found = detector.detect_batch([images[i] for i in batch])
        assert len(found) == len(batch)
        for i, dets in zip(batch, found):
            assert_same_detections(dets, expected[i], box_atol=1e-3, score_atol=1e-4)
    for dets, want in zip(CenterFaceDetector().detect_batch(images), expected, strict=True):  # batch_size=1
        assert_same_detections(dets, want, box_atol=1e-3, score_atol=1e-4)
    assert detector.detect_batch([]) == []
    with pytest.raises(ValueError, match="batch_size"):
        CenterFaceDetector(batch_size=0)


def test_mesh_hull_region_covers_the_astronaut_face(astronaut: np.ndarray) -> None:
    from realanon.config import RegionOptions
    from realanon.regions import build_regions, union_mask

    dets = MediaPipeFaceDetector(landmarks="mesh")(astronaut)
    full = union_mask(build_regions(dets, RegionOptions(face_shape="hull", face_margin=0.1)), (512, 512))
    x1, y1, x2, y2 = ASTRONAUT_FACE.astype(int)
    # Forehead to chin and ear to ear (hand-measured box) are inside the replace-mask.
    assert full[y1 + 5 : y2 - 5, x1 + 10 : x2 - 10].mean() > 0.97
    part = union_mask(build_regions(dets, RegionOptions(face_shape="hull", face_margin=0.1, partial_face=True)),
                      (512, 512))
    rows = np.nonzero(full.any(axis=1))[0]
    cut = rows.min() + 0.6 * (rows.max() + 1 - rows.min())
    part_rows = np.nonzero(part.any(axis=1))[0]
    assert part_rows.min() == rows.min() and abs(part_rows.max() + 1 - cut) <= 3  # roll is small here


def test_default_mediapipe_finds_faces_from_32_px_in_1080p() -> None:
    # One whole-frame pass alone needs faces of about a tenth of the frame (96 px here).
    image, truths = make_face_collage((32, 40, 48, 64, 96), size=(1080, 1920))
    assert all(_matched(truths, MediaPipeFaceDetector()(image)))
    assert not all(_matched(truths, MediaPipeFaceDetector(tile_size=0)(image)))
