"""Make the characterisation figures of the README: ``python docs/characterisation_figures.py``."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

import splinecam as sc
from splinecam.apps.datasets import two_moons
from splinecam.apps.dynamics import plot_frames, train_recorded

DOCS = Path(__file__).parent
torch.set_num_threads(1)

X, y = two_moons(200, 0.1, seed=0)
sl = sc.Slice.box(X.min(0) - 0.4, X.max(0) + 0.4)
model, rec = train_recorded(X, y, sl, epochs=200, every=10)
part = sc.partition(model, sl, progress=False)

# per-layer partitions
parts = sc.partition_by_layer(model, sl)
fig, axes = sc.plot_layers(parts, boundary=part.decision_boundary(), panel_size=3.0)
fig.savefig(DOCS / "layers.png", dpi=150, bbox_inches="tight")
plt.close(fig)

# training frames
fig, _ = plot_frames(rec.snapshots, indices=[0, 2, 5, 20], steps=rec.steps, data=(X, y), step_label="epoch")
fig.savefig(DOCS / "train_frames.png", dpi=130)
plt.close(fig)

# density, boundary samples, local complexity
fig, axes = plt.subplots(1, 3, figsize=(15, 3.9), layout="constrained")
sc.density_map(part, resolution=300).plot(ax=axes[0])
axes[0].set_title(f"region density ({len(part)} regions)")
samples = part.sample_boundary(300, seed=0)
part.plot(ax=axes[1], boundary=False, linewidth=0.2)
axes[1].scatter(*samples.uv.T, s=6, c="crimson", zorder=4)
axes[1].set_title("300 exact samples on the decision boundary")
lc = sc.local_complexity(part, X, 0.2)
part.plot(ax=axes[2], color_by="class", linewidth=0.2)
pts = axes[2].scatter(*X.T, c=lc, s=18, cmap="viridis", edgecolors="black", linewidths=0.4, zorder=4)
fig.colorbar(pts, ax=axes[2], label="regions within 0.2")
axes[2].set_title("local complexity at the training points")
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
fig.savefig(DOCS / "density_samples.png", dpi=130)
plt.close(fig)
print(part, part.stats()["edges_per_layer"], "samples:", len(samples))
