"""The exact linear regions of a small CNN on the plane through three images.

Generates 1x12x12 images of three shapes (horizontal bar, vertical bar, square
outline) with numpy, trains a small CNN (conv, ReLU, max-pool, twice) for a
few seconds, and draws its partition on the slice through one image of each
class, coloured by predicted class, with the decision boundary.

    python examples/cnn_example.py [--out docs/cnn.png]
"""

from __future__ import annotations

import argparse
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import splinecam as sc  # noqa: E402

CLASSES = ("horizontal bar", "vertical bar", "square")


def shapes(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(n, 1, 12, 12) noisy images of the three shapes at random places, and their labels."""
    x = np.zeros((n, 12, 12), dtype=np.float32)
    y = rng.integers(0, 3, n)
    for img, label in zip(x, y):
        r, c, length = rng.integers(1, 5), rng.integers(1, 5), rng.integers(5, 8)
        if label == 0:
            img[r + length // 2, c : c + length] = 1
        elif label == 1:
            img[r : r + length, c + length // 2] = 1
        else:
            s = length - 1
            img[r, c : c + s + 1] = img[r + s, c : c + s + 1] = 1
            img[r : r + s + 1, c] = img[r : r + s + 1, c + s] = 1
    x += 0.15 * rng.standard_normal(x.shape).astype(np.float32)
    return x[:, None], y


def make_model() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4 * 3 * 3, 3),
    )


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(epochs):
        for i in range(0, len(x), 128):
            loss = nn.functional.cross_entropy(model(x[i : i + 128]), y[i : i + 128])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/cnn.png")
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    x, y = shapes(2000, rng)
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    model = make_model()
    start = time.perf_counter()
    acc = train(model, x, y, args.epochs)
    print(f"trained {args.epochs} epochs in {time.perf_counter() - start:.1f} s, training accuracy {acc:.3f}")

    anchors = [x[int(np.flatnonzero(y.numpy() == k)[0])] for k in range(3)]
    sl = sc.Slice.from_points(*anchors, margin=0.3)
    part = sc.partition(model, sl, progress=False)
    report = part.verify(n_points=5000)
    boundary = part.decision_boundary()
    print(part, report, f"decision boundary length {boundary.length:.3f}", sep="\n")

    fig = plt.figure(figsize=(8.2, 6.0), constrained_layout=True)
    grid = fig.add_gridspec(3, 2, width_ratios=[4.2, 1])
    ax = fig.add_subplot(grid[:, 0])
    part.plot(ax=ax, color_by="class", class_names=list(CLASSES), anchor_labels=["1", "2", "3"], legend=False)
    ax.set_aspect("equal")
    ax.set_title(f"Exact linear regions of a small CNN on the plane through three images\n"
                 f"{len(part):,} regions, decision boundary in black", fontsize=11)
    for k, img in enumerate(anchors):
        sub = fig.add_subplot(grid[k, 1])
        sub.imshow(img[0].numpy(), cmap="gray_r", vmin=-0.3, vmax=1.2)
        sub.set_title(f"{k + 1}: {CLASSES[k]}", fontsize=10, color=sc.viz.plot.class_color([k])[0])
        sub.set_xticks([])
        sub.set_yticks([])
    fig.savefig(args.out, dpi=200)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
