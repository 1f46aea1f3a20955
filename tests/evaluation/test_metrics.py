"""Correctness of the evaluation metrics on cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from realanon.evaluation.classify import pca_knn_accuracy, stratified_split
from realanon.evaluation.coco import Instance, coco_scores, greedy_match, labelled, oks, to_coco_ground_truth
from realanon.evaluation.privacy import leak_fraction, reid_attacks
from realanon.evaluation.utility import person_patches, retention_scores
from realanon.structures import Detection


def _instances(rng: np.random.Generator, n_images: int = 4) -> list[tuple[Instance, ...]]:
    out = []
    for _ in range(n_images):
        insts = []
        for _ in range(int(rng.integers(1, 4))):
            x, y = rng.uniform(0, 60, 2)
            w, h = rng.uniform(10, 30), rng.uniform(20, 40)
            mask = np.zeros((100, 100), bool)
            mask[int(y):int(y + h), int(x):int(x + w)] = True
            kp = np.stack([rng.uniform(x, x + w, 17), rng.uniform(y, y + h, 17), np.ones(17)], 1).astype(np.float32)
            insts.append(Instance((x, y, x + w, y + h), 1, 1.0, mask, kp))
        out.append(tuple(insts))
    return out


@pytest.mark.parametrize("iou_type", ["bbox", "segm", "keypoints"])
def test_perfect_predictions_score_ap_one(rng: np.random.Generator, iou_type: str) -> None:
    insts = _instances(rng)
    gt = to_coco_ground_truth(insts, [(100, 100)] * len(insts), {1: "person"})
    scores = coco_scores(gt, insts, iou_type)
    assert scores["AP"] == pytest.approx(1.0)
    assert scores["AP50"] == pytest.approx(1.0)


def test_shifted_predictions_score_lower(rng: np.random.Generator) -> None:
    insts = _instances(rng)
    gt = to_coco_ground_truth(insts, [(100, 100)] * len(insts), {1: "person"})
    shifted = [tuple(Instance(tuple(v + 12 for v in i.box_xyxy), 1, 0.9) for i in im) for im in insts]  # type: ignore[misc]
    assert coco_scores(gt, shifted)["AP"] < 0.5
    assert coco_scores(gt, [() for _ in insts])["AP"] == 0.0


def test_predictions_on_ignore_regions_are_neither_right_nor_wrong() -> None:
    person = Instance((10.0, 10.0, 30.0, 60.0))
    other = Instance((60.0, 10.0, 80.0, 60.0), score=0.8)
    sizes = [(100, 100)]
    ignored = to_coco_ground_truth([(person, Instance(other.box_xyxy, crowd=True))], sizes, {1: "person"})
    counted = to_coco_ground_truth([(person, Instance(other.box_xyxy))], sizes, {1: "person"})
    assert coco_scores(ignored, [(person, other)])["AP"] == pytest.approx(1.0)  # no false positive
    assert coco_scores(ignored, [(person,)])["AP"] == pytest.approx(1.0)  # no miss
    assert coco_scores(counted, [(person,)])["AP"] < 0.6
    assert labelled((person, Instance(other.box_xyxy, crowd=True))) == (person,)


def test_retention_of_identical_predictions_is_one(rng: np.random.Generator) -> None:
    insts = _instances(rng)
    scores = retention_scores(insts, insts, [(100, 100)] * len(insts))
    assert scores["retention_AP"] == pytest.approx(1.0)
    assert scores["retention_recall"] == 1.0
    assert scores["retention_oks"] == pytest.approx(1.0)
    assert scores["retention_mask_iou"] == 1.0
    missing = retention_scores(insts, [() for _ in insts], [(100, 100)] * len(insts))
    assert missing["retention_recall"] == 0.0


def test_oks_and_matching() -> None:
    kp = np.array([[10, 10, 1]] * 17, np.float32)
    assert oks(kp, kp, 100.0) == pytest.approx(1.0)
    far = kp.copy()
    far[:, :2] += 50
    assert oks(kp, far, 100.0) < 0.01
    pairs = greedy_match(np.array([[0, 0, 10, 10], [20, 20, 30, 30]]), np.array([[21, 21, 30, 30]]), np.array([0.9]))
    assert pairs == [(1, 0)]


def test_pca_knn_on_identical_data_is_perfect(rng: np.random.Generator) -> None:
    x = rng.normal(size=(30, 50))
    y = np.repeat(np.arange(10), 3)
    assert pca_knn_accuracy(x, y, x, y, components=8) == 1.0


def test_pca_knn_on_random_labels_is_near_chance(rng: np.random.Generator) -> None:
    x = rng.normal(size=(400, 20))
    y = rng.integers(0, 4, 400)
    assert pca_knn_accuracy(x[:200], y[:200], x[200:], y[200:]) < 0.45


def test_stratified_split_keeps_each_label_on_both_sides() -> None:
    labels = np.repeat(np.arange(5), 4)
    train, test = stratified_split(labels, 0.25, seed=0)
    assert set(labels[train]) == set(labels[test]) == set(range(5))
    assert not set(train) & set(test)


def _synthetic_identities(rng: np.random.Generator, n_ids: int = 4, per_id: int = 10) -> tuple[list, list, list]:
    """Each identity is a fixed random texture; samples add noise."""
    textures = rng.integers(0, 256, size=(n_ids, 8, 8, 3))
    images, dets, ids = [], [], []
    for k in range(n_ids):
        for _ in range(per_id):
            face = np.kron(textures[k], np.ones((8, 8, 1))) + rng.normal(0, 20, (64, 64, 3))
            image = np.zeros((96, 96, 3), np.uint8)
            image[16:80, 16:80] = np.clip(face, 0, 255).astype(np.uint8)
            images.append(image)
            dets.append(Detection((16, 16, 80, 80), 1.0, "face"))
            ids.append(f"id{k}")
    return images, dets, ids


def test_reid_attacks_identify_separable_identities(rng: np.random.Generator) -> None:
    images, dets, ids = _synthetic_identities(rng)
    scores = reid_attacks(images, dets, ids, seed=0, test_fraction=0.4, pca_components=8, cnn_steps=60)
    assert scores["chance"] == 0.25
    assert scores["reid_pca_knn"] >= 0.9
    assert scores["reid_cnn"] >= 0.9


def test_reid_attacks_fail_on_identical_masked_faces(rng: np.random.Generator) -> None:
    images, dets, ids = _synthetic_identities(rng)
    for im in images:
        im[16:80, 16:80] = 0
    scores = reid_attacks(images, dets, ids, seed=0, test_fraction=0.4, pca_components=8, cnn_steps=20)
    assert scores["reid_pca_knn"] <= 0.5


def test_leak_check_finds_an_uncovered_person() -> None:
    covered = np.zeros((100, 100), bool)
    covered[10:50, 10:50] = True
    boxes = np.array([[10, 10, 50, 50], [60, 60, 90, 90]])
    assert leak_fraction([boxes[:1]], [covered]) == (0.0, 0.0)
    assert leak_fraction([boxes], [covered]) == (1.0, 0.5)
    assert leak_fraction([boxes[:1], boxes[:1]], [covered, np.zeros_like(covered)]) == (0.5, 0.5)


def test_person_patches_label_people_and_background(rng: np.random.Generator) -> None:
    image = np.zeros((120, 160, 3), np.uint8)
    image[20:80, 30:60] = 255
    x, y = person_patches([image], [(Instance((30, 20, 60, 80)),)], negatives_per_image=3, seed=0)
    assert x.shape[1:] == (64, 32, 3) and x.dtype == np.uint8
    assert (y == 1).sum() == 1 and (y == 0).sum() == 3
    assert x[y == 1].mean() > 200 and x[y == 0].mean() < 100
