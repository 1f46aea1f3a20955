"""The torchvision R-CNNs train one step on every task and score with pycocotools."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from realanon.evaluation.coco import Instance, Sample
from realanon.evaluation.detection_train import build_detection_model, evaluate_detector, predict, train_detector
from realanon.evaluation.protocol import DetectionTaskOptions


def _data(rng: np.random.Generator) -> tuple[list[np.ndarray], list[tuple[Instance, ...]]]:
    images, insts = [], []
    for _ in range(2):
        image = rng.integers(0, 60, (96, 128, 3)).astype(np.uint8)
        image[20:80, 40:70] = 220
        mask = np.zeros((96, 128), bool)
        mask[20:80, 40:70] = True
        kp = np.stack([np.linspace(41, 69, 17), np.linspace(21, 79, 17), np.ones(17)], 1).astype(np.float32)
        images.append(image)
        insts.append((Instance((40, 20, 70, 80), 1, 1.0, mask, kp),))
    return images, insts


@pytest.mark.parametrize("task", ["boxes", "masks", "keypoints"])
def test_one_training_step_then_coco_scores(rng: np.random.Generator, task: str) -> None:
    torch.set_num_threads(1)
    images, insts = _data(rng)
    options = DetectionTaskOptions(task=task, steps=1, batch_size=2, min_size=96, max_size=128)
    model = train_detector(images, insts, options, seed=0)
    assert not model.training
    preds = predict(model, images, task)
    assert len(preds) == 2
    scores = evaluate_detector(model, [Sample(im, i) for im, i in zip(images, insts)], task)
    assert set(scores) == {"AP", "AP50", "AP_person"}
    assert all(0.0 <= v <= 1.0 for v in scores.values())


def test_same_seed_same_weights(rng: np.random.Generator) -> None:
    images, insts = _data(rng)
    options = DetectionTaskOptions(steps=1, batch_size=2, min_size=96, max_size=128)
    a = train_detector(images, insts, options, seed=3).state_dict()
    b = train_detector(images, insts, options, seed=3).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_unknown_backbone_is_refused() -> None:
    with pytest.raises(ValueError, match="backbone"):
        build_detection_model(DetectionTaskOptions(backbone="vgg"))  # type: ignore[arg-type]
