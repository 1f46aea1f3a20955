"""Train a torchvision R-CNN on (anonymized) images and score it on original images.

The loop uses :class:`accelerate.Accelerator`, so the same call runs on one CPU, one GPU or
several GPUs (launch with ``accelerate launch`` for the latter).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from realanon.evaluation.coco import Instance, Sample, coco_scores, to_coco_ground_truth
from realanon.evaluation.protocol import DetectionTaskOptions

IOU_TYPES = {"boxes": "bbox", "masks": "segm", "keypoints": "keypoints"}


def _tiny_backbone() -> Any:
    """Five stride-2 conv blocks (stride 16, 64 channels): a detector backbone that trains on CPU."""
    from torch import nn

    layers: list[nn.Module] = []
    channels = [3, 16, 32, 48, 64, 64]
    for i, (cin, cout) in enumerate(zip(channels[:-1], channels[1:])):
        stride = 2 if i < 4 else 1
        layers += [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    body = nn.Sequential(*layers)
    body.out_channels = 64  # type: ignore[assignment]
    return body


def _tiny_heads(task: str, num_classes: int) -> dict[str, Any]:
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.keypoint_rcnn import KeypointRCNNHeads, KeypointRCNNPredictor
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
    from torchvision.ops import MultiScaleRoIAlign

    heads: dict[str, Any] = {
        "rpn_anchor_generator": AnchorGenerator(((16, 32, 64, 128),), ((1.0, 2.0, 3.0),)),
        "box_roi_pool": MultiScaleRoIAlign(["0"], 7, 2),
        "box_head": TwoMLPHead(64 * 7 * 7, 128),
        "box_predictor": FastRCNNPredictor(128, num_classes),
        "rpn_pre_nms_top_n_train": 600, "rpn_post_nms_top_n_train": 300,
        "rpn_pre_nms_top_n_test": 300, "rpn_post_nms_top_n_test": 100,
        "box_batch_size_per_image": 128,
    }
    if task == "masks":
        heads |= {"mask_roi_pool": MultiScaleRoIAlign(["0"], 14, 2), "mask_head": MaskRCNNHeads(64, (64, 64), 1),
                  "mask_predictor": MaskRCNNPredictor(64, 64, num_classes)}
    if task == "keypoints":
        heads |= {"keypoint_roi_pool": MultiScaleRoIAlign(["0"], 14, 2),
                  "keypoint_head": KeypointRCNNHeads(64, (64, 64)), "keypoint_predictor": KeypointRCNNPredictor(64, 17)}
    return heads


def build_detection_model(options: DetectionTaskOptions, num_classes: int = 2) -> Any:
    """A randomly initialised torchvision Faster/Mask/Keypoint R-CNN.

    Args:
        options: ``task`` picks the model, ``backbone`` its size; nothing pretrained is loaded.
        num_classes: Including background.
    """
    from torchvision.models import detection as det

    size = {"min_size": options.min_size, "max_size": options.max_size}
    cls = {"boxes": det.FasterRCNN, "masks": det.MaskRCNN, "keypoints": det.KeypointRCNN}[options.task]
    if options.backbone == "tiny":
        return cls(_tiny_backbone(), num_classes=None, **size, **_tiny_heads(options.task, num_classes))
    if options.backbone == "mobilenet_v3":
        from torchvision.models.detection.backbone_utils import mobilenet_backbone

        backbone = mobilenet_backbone(backbone_name="mobilenet_v3_large", weights=None, fpn=True, trainable_layers=6)
        return cls(backbone, num_classes=num_classes, **size)
    if options.backbone == "resnet50":
        build = {"boxes": det.fasterrcnn_resnet50_fpn, "masks": det.maskrcnn_resnet50_fpn,
                 "keypoints": det.keypointrcnn_resnet50_fpn}[options.task]
        extra = {"num_keypoints": 17} if options.task == "keypoints" else {}
        return build(weights=None, weights_backbone=None, num_classes=num_classes, **size, **extra)
    raise ValueError(f"unknown backbone {options.backbone!r}; use tiny, mobilenet_v3 or resnet50")


def _target(sample_instances: Sequence[Instance], task: str, size: tuple[int, ...]) -> dict[str, Any]:
    import torch

    boxes = torch.tensor([i.box_xyxy for i in sample_instances], dtype=torch.float32).reshape(-1, 4)
    target: dict[str, Any] = {"boxes": boxes, "labels": torch.tensor([i.category_id for i in sample_instances], dtype=torch.int64)}
    if task == "masks":
        masks = [i.mask if i.mask is not None else _box_mask(i.box_xyxy, size) for i in sample_instances]
        target["masks"] = torch.from_numpy(np.stack(masks) if masks else np.zeros((0, *size), bool)).to(torch.uint8)
    if task == "keypoints":
        kps = [i.keypoints if i.keypoints is not None else np.zeros((17, 3), np.float32) for i in sample_instances]
        target["keypoints"] = torch.from_numpy(np.stack(kps) if kps else np.zeros((0, 17, 3), np.float32))
    return target


def _box_mask(box: tuple[float, float, float, float], size: tuple[int, ...]) -> np.ndarray:
    mask = np.zeros(size, dtype=bool)
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    mask[max(y1, 0):max(y2, 0), max(x1, 0):max(x2, 0)] = True
    return mask


def _to_tensor(image: np.ndarray) -> Any:
    import torch

    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0


def train_detector(
    images: Sequence[np.ndarray], instances: Sequence[Sequence[Instance]], options: DetectionTaskOptions,
    seed: int, device: str = "cpu", progress: bool = False,
) -> Any:
    """Trains a fresh model for ``options.steps`` SGD steps; returns it (unwrapped, eval mode).

    Args:
        images: ``(H, W, 3)`` uint8 RGB training images (anonymized ones, typically).
        instances: Their ground-truth instances (category 1 = person).
        options: Model and schedule.
        seed: Seeds the initialisation and the sampling order.
        device: ``"cpu"`` runs on CPU; anything else lets accelerate pick the GPU(s).
    """
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    set_seed(seed)
    accelerator = Accelerator(cpu=device == "cpu")
    model = build_detection_model(options)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=options.lr, momentum=0.9, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, options.lr, total_steps=max(options.steps, 1), pct_start=0.1)
    model, optimizer = accelerator.prepare(model, optimizer)
    tensors = [_to_tensor(im) for im in images]
    targets = [_target(inst, options.task, im.shape[:2]) for im, inst in zip(images, instances)]
    order = np.random.default_rng(seed)
    model.train()
    for _ in tqdm(range(options.steps), desc=f"train {options.task} seed {seed}", disable=not progress, leave=False):
        idx = order.choice(len(tensors), size=min(options.batch_size, len(tensors)), replace=False)
        batch = [tensors[i].to(accelerator.device) for i in idx]
        batch_t = [{k: v.to(accelerator.device) for k, v in targets[i].items()} for i in idx]
        losses = model(batch, batch_t)
        loss = sum(losses.values())
        optimizer.zero_grad()
        accelerator.backward(loss)
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        optimizer.step()
        scheduler.step()
    model = accelerator.unwrap_model(model)
    model.eval()
    return model


def predict(model: Any, images: Sequence[np.ndarray], task: str, batch_size: int = 4) -> list[tuple[Instance, ...]]:
    """Runs a trained torchvision detector; returns instances per image."""
    import torch

    device = next(model.parameters()).device
    out: list[tuple[Instance, ...]] = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            chunk = [_to_tensor(im).to(device) for im in images[start:start + batch_size]]
            for res in model(chunk):
                res = {k: v.cpu().numpy() for k, v in res.items()}
                out.append(tuple(
                    Instance(tuple(map(float, res["boxes"][j])), int(res["labels"][j]), float(res["scores"][j]),  # type: ignore[arg-type]
                             res["masks"][j, 0] > 0.5 if "masks" in res else None,
                             res["keypoints"][j] if "keypoints" in res else None)
                    for j in range(len(res["boxes"]))
                ))
    return out


def evaluate_detector(model: Any, val: Sequence[Sample], task: str) -> dict[str, float]:
    """pycocotools AP, AP50 and AP (person) of ``model`` on the original validation samples."""
    gt = to_coco_ground_truth([s.instances for s in val], [s.image.shape[:2] for s in val], {1: "person"})
    preds = predict(model, [s.image for s in val], task)
    scores = coco_scores(gt, preds, IOU_TYPES[task])
    person = coco_scores(gt, preds, IOU_TYPES[task], category_ids=[1])
    return {"AP": scores["AP"], "AP50": scores["AP50"], "AP_person": person["AP"]}
