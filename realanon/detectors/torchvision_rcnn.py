"""torchvision's Keypoint R-CNN and Mask R-CNN as person detectors, for users who have weights.

Nothing is downloaded: weights come from a local file (``.safetensors``, or a ``.pth``
state dict read with ``torch.load(weights_only=True)``, which refuses pickled code) or
from torchvision's own cache, where ``torchvision.models`` would have put them. Loading is
strict: missing or unexpected keys raise. ``weights="random"`` builds the network with
random weights, for tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from realanon.detectors._boxes import detect_in_groups
from realanon.errors import ConfigError, InputError
from realanon.registry import register_detector
from realanon.structures import Detection, Detections, image_size

_PERSON = 1  # COCO category id of "person" in torchvision's detection models
# Default weights of each model: (torchvision weights enum name, file name in the cache).
_DEFAULT_WEIGHTS = {
    "keypoint_rcnn": "KeypointRCNN_ResNet50_FPN_Weights",
    "mask_rcnn": "MaskRCNN_ResNet50_FPN_Weights",
}


def cached_weights_path(model: str) -> Path:
    """Where torchvision's cache keeps the default COCO weights of ``model`` (may not exist)."""
    import torch
    import torchvision.models.detection as tvd

    url = getattr(tvd, _DEFAULT_WEIGHTS[model]).DEFAULT.url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def load_state_dict(path: Path) -> dict[str, Any]:
    """Reads a state dict from ``.safetensors`` or a weights-only ``.pth``/``.pt`` file."""
    if not path.is_file():
        raise InputError(path, "weights file not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    import torch

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure means the file is unusable
        raise InputError(path, f"not a readable weights file ({err})") from None
    if not isinstance(state, dict):
        raise InputError(path, "expected a state dict")
    return state


class RCNNPersonDetector:
    """A torchvision R-CNN (``model`` = ``"keypoint_rcnn"`` or ``"mask_rcnn"``) kept to persons.

    Built by the registered factories :func:`keypoint_rcnn` and :func:`mask_rcnn`.
    """

    def __init__(self, model: str, weights: str | Path | None, min_score: float, min_size: int,
                 max_size: int, device: str, mask_threshold: float, max_people: int) -> None:
        import torch
        import torchvision.models.detection as tvd

        builder = {"keypoint_rcnn": tvd.keypointrcnn_resnet50_fpn, "mask_rcnn": tvd.maskrcnn_resnet50_fpn}[model]
        net = builder(weights=None, weights_backbone=None, min_size=min_size, max_size=max_size,
                      box_score_thresh=min_score, box_detections_per_img=max_people)
        if weights != "random":
            path = Path(weights) if weights is not None else cached_weights_path(model)
            if weights is None and not path.is_file():
                raise ConfigError(
                    f"{model}: no weights; pass weights=PATH (a local .pth or .safetensors state dict) "
                    f"or place torchvision's file at {path}"
                )
            net.load_state_dict(load_state_dict(path), strict=True)
        self.model = model
        self.min_score = float(min_score)
        self.mask_threshold = float(mask_threshold)
        self.device = torch.device(device)
        self.net = net.eval().to(self.device)

    def __call__(self, image: np.ndarray) -> Detections:
        """Detects people in an RGB ``(H, W, 3)`` uint8 image."""
        return self.detect_batch([image])[0]

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Detects people in several RGB images; equals ``[self(im) for im in images]``.

        Images of the same size go through the network in one forward. Sizes are not mixed in
        one forward because torchvision pads a batch to its largest image, which would change
        the features near the borders of the smaller ones.
        """
        return detect_in_groups(images, image_size, self._detect_same_size)

    def _detect_same_size(self, images: list[np.ndarray], size: tuple[int, int]) -> list[Detections]:
        """Images of one size, in one forward."""
        import torch

        with torch.no_grad():
            outputs = self.net([self._to_tensor(image) for image in images])
        return [self._to_detections(out, size) for out in outputs]

    def _to_tensor(self, image: np.ndarray) -> Any:
        """``(3, H, W)`` float32 tensor in [0, 1] on the detector's device."""
        import torch

        return torch.from_numpy(np.ascontiguousarray(image)).to(self.device).permute(2, 0, 1).float() / 255.0

    def _to_detections(self, out: dict[str, Any], size: tuple[int, int]) -> Detections:
        """Keeps the persons of one image's torchvision output, as :class:`Detections`."""
        items = []
        for i in range(len(out["boxes"])):
            score = float(out["scores"][i])
            if int(out["labels"][i]) != _PERSON or score < self.min_score:
                continue
            box = tuple(float(v) for v in out["boxes"][i].cpu())
            kp = out["keypoints"][i].cpu().numpy() if "keypoints" in out else None
            if kp is not None:
                kp = kp.astype(np.float32)
                kp[:, 2] = (kp[:, 2] > 0).astype(np.float32)  # torchvision: 1 visible, 0 not
            mask = out["masks"][i, 0].cpu().numpy() > self.mask_threshold if "masks" in out else None
            items.append(Detection(box, score, "body", keypoints=kp,  # type: ignore[arg-type]
                                   keypoint_layout="coco17" if kp is not None else None,
                                   mask=mask if mask is not None and mask.any() else None, source=self.model))
        return Detections(tuple(items), size)


@register_detector("keypoint_rcnn")
def keypoint_rcnn(weights: str | Path | None = None, min_score: float = 0.3, min_size: int = 800,
                  max_size: int = 1333, device: str = "cpu", max_people: int = 100) -> RCNNPersonDetector:
    """torchvision Keypoint R-CNN (ResNet-50 FPN): person boxes and COCO-17 keypoints, no mask.

    Args:
        weights: Local state-dict file, None for torchvision's cache, or ``"random"`` (tests).
        min_score: Minimum person score.
        min_size: Shorter image side the network resizes to.
        max_size: Longer side limit.
        device: Torch device, the caller's choice (default CPU).
        max_people: At most this many people per image.
    """
    return RCNNPersonDetector("keypoint_rcnn", weights, min_score, min_size, max_size, device, 0.5, max_people)


@register_detector("mask_rcnn")
def mask_rcnn(weights: str | Path | None = None, min_score: float = 0.3, min_size: int = 800,
              max_size: int = 1333, device: str = "cpu", mask_threshold: float = 0.5,
              max_people: int = 100) -> RCNNPersonDetector:
    """torchvision Mask R-CNN (ResNet-50 FPN): person boxes and instance masks.

    Args:
        weights: Local state-dict file, None for torchvision's cache, or ``"random"`` (tests).
        min_score: Minimum person score.
        min_size: Shorter image side the network resizes to.
        max_size: Longer side limit.
        device: Torch device, the caller's choice (default CPU).
        mask_threshold: Mask probability above which a pixel belongs to the person.
        max_people: At most this many people per image.
    """
    return RCNNPersonDetector("mask_rcnn", weights, min_score, min_size, max_size, device, mask_threshold,
                              max_people)
