"""Trained models for the tests, made at fixed seeds in a few seconds each: a digits CNN with
BatchNorm and max-pooling, signed-distance MLPs (2-D and 3-D) and a multi-class MLP.  Their parameters are far
from default initialisation (BatchNorm statistics, shifts and scales; biases), which is where
unsound shortcuts show.  Each builder returns ``(model in eval mode, X, y)`` (float32)."""

from __future__ import annotations

import torch
from torch import nn


def _train(model: nn.Module, X: torch.Tensor, target: torch.Tensor, loss, steps: int, lr: float, seed: int,
           batch: int | None = None) -> nn.Module:
    """Adam on ``loss(model(x), t)`` for ``steps`` steps (mini-batches of ``batch`` if given), then eval mode."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same result on every machine, and no thread contention on a busy one
    try:
        for _ in range(steps):
            idx = torch.randint(len(X), (batch,), generator=gen) if batch else slice(None)
            opt.zero_grad()
            loss(model(X[idx]), target[idx]).backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def digits_cnn(seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """Conv-BN-ReLU-MaxPool x2, then a linear layer, trained on sklearn's 8x8 digits (X: (N, 1, 8, 8))."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = torch.tensor(digits.images / 16.0, dtype=torch.float32)[:, None]
    y = torch.tensor(digits.target)
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32, 10),
    )
    return _train(model, X, y, nn.functional.cross_entropy, 60, 0.03, seed, batch=256), X, y


def sdf_mlp(seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """2-32-32-1 ReLU MLP fitted to the signed distance of a circle of radius 1 (X: (N, 2) in [-2, 2]^2)."""
    gen = torch.Generator().manual_seed(seed)
    X = torch.rand(2048, 2, generator=gen) * 4 - 2
    y = X.norm(dim=1, keepdim=True) - 1
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1))
    return _train(model, X, y, nn.functional.mse_loss, 300, 0.01, seed), X, y[:, 0]


def sdf3_mlp(seed: int = 0, width: int = 16) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """3-w-w-1 ReLU MLP fitted to the signed distance of a sphere of radius 0.6 (X: (N, 3) in [-1, 1]^3)."""
    gen = torch.Generator().manual_seed(seed)
    X = torch.rand(4096, 3, generator=gen) * 2 - 1
    y = X.norm(dim=1, keepdim=True) - 0.6
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 1))
    return _train(model, X, y, nn.functional.mse_loss, 300, 0.01, seed), X, y[:, 0]


def multiclass_mlp(seed: int = 0) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """2-24-24-4 MLP with one ReLU instance used twice, trained on four Gaussian blobs (X: (N, 2))."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])
    y = torch.arange(4).repeat_interleave(256)
    X = centres[y] + 0.6 * torch.randn(len(y), 2, generator=gen)
    torch.manual_seed(seed)
    act = nn.ReLU()
    model = nn.Sequential(nn.Linear(2, 24), act, nn.Linear(24, 24), act, nn.Linear(24, 4))
    return _train(model, X, y, nn.functional.cross_entropy, 300, 0.01, seed), X, y
