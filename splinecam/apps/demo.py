"""``splinecam demo``: train a small MLP on two moons, draw its exact partition and boundary."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .datasets import two_moons
from ..run.executors import one_thread
from .dynamics import mlp
from ..partition import partition
from ..slices import Slice

__all__ = ["run_demo"]


def train_mlp(x: np.ndarray, y: np.ndarray, width: int = 32, depth: int = 3, steps: int = 600, seed: int = 0,
              lr: float = 1e-2) -> nn.Sequential:
    """A ReLU MLP with one logit, trained full-batch with Adam on (x, y), on one thread
    (with the default thread count, a busy machine made this 7x slower)."""
    torch.manual_seed(seed)
    model = mlp(width=width, depth=depth, inputs=x.shape[1], outputs=1)
    xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    with one_thread():
        for _ in range(steps):
            opt.zero_grad()
            loss = nn.functional.binary_cross_entropy_with_logits(model(xt)[:, 0], yt)
            loss.backward()
            opt.step()
    return model.eval()


def run_demo(out_dir: str | Path, seed: int = 0) -> dict:
    """Train, partition, verify, plot; write partition.png, partition.html and stats.json into ``out_dir``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    x, y = two_moons(400, noise=0.08, seed=seed)
    model = train_mlp(x, y, seed=seed)
    t_train = time.perf_counter() - t0
    with torch.no_grad():
        acc = float(((model(torch.as_tensor(x, dtype=torch.float32))[:, 0] > 0).numpy() == y).mean())

    lo, hi = x.min(0) - 0.4, x.max(0) + 0.4
    sl = Slice.box(lo, hi)
    part = partition(model, sl)
    db = part.decision_boundary()
    report = part.verify(n_points=4000, seed=seed)
    stats = part.stats()
    stats.update(train_seconds=t_train, train_accuracy=acc, verify_ok=report.ok,
                 verify_max_rel_error=report.max_rel_error)

    fig, ax = plt.subplots(figsize=(7.2, 5.4), dpi=200)
    part.plot(ax=ax, color_by="random", points=x, labels=y)
    ax.set_title(f"Exact linear regions of a 2-32-32-32-1 ReLU MLP on two moons\n"
                 f"{len(part):,} regions, decision boundary length {db.length:.2f} ({len(db):,} segments)",
                 fontsize=10)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    fig.savefig(out / "partition.png", bbox_inches="tight")
    plt.close(fig)
    (out / "stats.json").write_text(json.dumps(stats, indent=2))
    part.to_html(out / "partition.html", color_by="random", title="splinecam demo: 2-32-32-32-1 ReLU MLP on two moons")

    print(f"trained 2-32-32-32-1 ReLU MLP on two moons in {t_train:.1f} s (train accuracy {acc:.3f})")
    print(f"regions: {len(part):,}   boundary length: {db.length:.4f} in {len(db):,} segments, "
          f"{stats['boundary_pieces']} pieces   partition time: {part.seconds:.2f} s")
    print(report)
    print(f"wrote {out / 'partition.png'}, {out / 'partition.html'} and {out / 'stats.json'}")
    return stats
