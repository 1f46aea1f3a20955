"""Small classifiers used by the evaluator: PCA + 1-NN and a small CNN (trained with accelerate)."""

from __future__ import annotations

from typing import Any

import numpy as np


def pca_knn_accuracy(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, components: int = 32) -> float:
    """Top-1 accuracy of PCA (fit on the train set) followed by 1-nearest-neighbour.

    Args:
        x_train: ``(N, D)`` float features (e.g. flattened grey faces).
        y_train: ``(N,)`` labels.
        x_test: ``(M, D)`` float features.
        y_test: ``(M,)`` labels.
        components: PCA dimensions kept (capped by the data's rank).

    Returns:
        Accuracy in [0, 1].
    """
    x_train = np.asarray(x_train, np.float64)
    x_test = np.asarray(x_test, np.float64)
    mean = x_train.mean(axis=0)
    _, _, vt = np.linalg.svd(x_train - mean, full_matrices=False)
    basis = vt[: min(components, vt.shape[0])].T
    a, b = (x_train - mean) @ basis, (x_test - mean) @ basis
    d2 = (b**2).sum(1)[:, None] + (a**2).sum(1)[None, :] - 2 * b @ a.T
    pred = np.asarray(y_train)[np.argmin(d2, axis=1)]
    return float((pred == np.asarray(y_test)).mean())


def small_cnn(num_classes: int, channels: int = 3) -> Any:
    """Four conv blocks and a linear layer: enough for 32-64 px patches on CPU."""
    from torch import nn

    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True), nn.MaxPool2d(2)]

    return nn.Sequential(
        *block(channels, 16), *block(16, 32), *block(32, 64), *block(64, 64),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes),
    )


def train_cnn_accuracy(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, *,
    steps: int, seed: int, batch_size: int = 32, lr: float = 2e-3, device: str = "cpu",
) -> float:
    """Trains :func:`small_cnn` on ``x_train`` and returns its top-1 accuracy on ``x_test``.

    Args:
        x_train: ``(N, H, W, 3)`` uint8 RGB images.
        y_train: ``(N,)`` integer labels in ``[0, C)``.
        x_test: ``(M, H, W, 3)`` uint8 RGB images.
        y_test: ``(M,)`` integer labels.
        steps: Adam steps; each draws a seeded random batch with random horizontal flips.
        seed: Seeds the initialisation and sampling.
        device: ``"cpu"`` or anything accelerate can place on a GPU.

    Returns:
        Accuracy in [0, 1].
    """
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    set_seed(seed)
    accelerator = Accelerator(cpu=device == "cpu")
    num_classes = int(max(np.max(y_train), np.max(y_test))) + 1
    model = small_cnn(num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model, optimizer = accelerator.prepare(model, optimizer)
    xt = torch.from_numpy(np.ascontiguousarray(x_train)).permute(0, 3, 1, 2).float() / 255.0
    yt = torch.from_numpy(np.asarray(y_train, np.int64))
    rng = np.random.default_rng(seed)
    model.train()
    for _ in range(steps):
        idx = rng.choice(len(xt), size=min(batch_size, len(xt)), replace=False)
        xb = xt[idx]
        flip = torch.from_numpy(rng.random(len(idx)) < 0.5)
        xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb).to(accelerator.device)
        loss = torch.nn.functional.cross_entropy(model(xb), yt[idx].to(accelerator.device))
        optimizer.zero_grad()
        accelerator.backward(loss)
        optimizer.step()
    model.eval()
    with torch.no_grad():
        xs = torch.from_numpy(np.ascontiguousarray(x_test)).permute(0, 3, 1, 2).float() / 255.0
        pred = torch.cat([model(xs[i:i + 256].to(accelerator.device)).argmax(1).cpu() for i in range(0, len(xs), 256)])
    return float((pred.numpy() == np.asarray(y_test)).mean())


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a seeded per-label split; every label keeps at least one train and one test item
    when it has two or more."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(round(len(idx) * test_fraction))
        n_test = min(max(n_test, 1), len(idx) - 1) if len(idx) > 1 else 0
        test += idx[:n_test].tolist()
        train += idx[n_test:].tolist()
    return np.array(sorted(train), dtype=int), np.array(sorted(test), dtype=int)
