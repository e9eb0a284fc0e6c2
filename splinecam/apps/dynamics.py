"""Training dynamics: record the partition during training, animate it, plot its statistics."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .datasets import two_circles, two_moons
from ..partition import partition_many
from ..run.executors import one_thread
from ..partition import Partition, partition
from ..viz.plot import plot_partition
from ..slices import Slice
from ..analysis.stats import slope_norms
from ..viz.tensorboard import log_partition, summary_writer

__all__ = ["Recorder", "animate", "history", "mlp", "plot_frames", "plot_history", "record",
           "train_recorded", "train_video"]


class Recorder:
    """Call ``rec(model)`` once per training step; on calls 0, every, 2*every, ... it
    computes the partition of ``model`` on the slice and appends it to
    ``snapshots`` (and the call index to ``steps``).

    The model must be traceable when called (e.g. BatchNorm in eval mode).
    Snapshots keep no copy of the model unless ``keep_models``; pass the
    model to ``verify(model=...)`` to check one.  With a ``writer`` (e.g.
    ``torch.utils.tensorboard.SummaryWriter``), each snapshot's picture and
    scalar statistics are logged at its step under ``tag``; see
    :func:`splinecam.viz.tensorboard.log_partition`.  With an ``executor`` (as in
    :func:`splinecam.partition_many`), a due call keeps a copy of the model and returns
    None; the copies are partitioned together, on the executor, when ``snapshots`` is read.
    """

    def __init__(self, sl: Slice, every: int = 10, keep_models: bool = False, writer=None, tag: str = "splinecam",
                 executor=None, **options):
        if not isinstance(sl, Slice):
            raise TypeError(f"sl must be a splinecam.Slice, got {type(sl).__name__}.")
        if int(every) != every or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}.")
        self.slice, self.every, self.keep_models = sl, int(every), keep_models
        self.writer, self.tag = writer, tag
        self.options = {"progress": False, **options}
        self.executor = executor
        self._snapshots: list[Partition] = []
        self._checkpoints: list[nn.Module] = []  # due models not partitioned yet (with an executor)
        self.steps: list[int] = []
        self.calls = 0

    @property
    def snapshots(self) -> list[Partition]:
        """The recorded partitions, in order."""
        if self._checkpoints:
            parts = partition_many(self._checkpoints, self.slice, executor=self.executor, **self.options)
            self._checkpoints = []
            for part in parts:
                self._keep(part)
        return self._snapshots

    def _keep(self, part: Partition) -> None:
        """Keep the next snapshot (and log it, with its step, to the writer)."""
        if self.writer is not None:
            log_partition(self.writer, part, self.steps[len(self._snapshots)], tag=self.tag)
        if not self.keep_models:
            part.drop_model()
        self._snapshots.append(part)

    def __call__(self, model) -> Partition | None:
        """Record ``model`` if this call is due; returns the new snapshot or None."""
        step = self.calls
        self.calls += 1
        if step % self.every:
            return None
        self.steps.append(step)
        if self.executor is not None:
            self._checkpoints.append(copy.deepcopy(model))
            return None
        part = partition(model, self.slice, **self.options)
        self._keep(part)
        return part


def record(sl: Slice, every: int = 10, writer=None, **options) -> Recorder:
    """A :class:`Recorder` for ``sl``; ``writer`` logs each snapshot to TensorBoard; options
    (keep_models, tag, executor, and partition options) go to it.

    >>> rec = sc.record(sl, every=10, writer=SummaryWriter("runs/exp1"))
    >>> for step in range(steps): train_step(); rec(model)
    """
    return Recorder(sl, every=every, writer=writer, **options)


# -- pictures --------------------------------------------------------------------------


def _panels(snapshots, data, steps):
    """Normalise the inputs to a list of (title, partitions, data, steps)."""
    if isinstance(snapshots, dict):
        items = list(snapshots.items())
    else:
        items = [("", list(snapshots))]
    if not items or any(not len(parts) for _, parts in items):
        raise ValueError("no snapshots to draw.")
    n = len(items[0][1])
    if any(len(parts) != n for _, parts in items):
        raise ValueError("every panel needs the same number of snapshots.")
    steps = list(range(n)) if steps is None else list(steps)
    if len(steps) != n:
        raise ValueError(f"got {len(steps)} steps for {n} snapshots.")
    data = data if isinstance(data, dict) else {name: data for name, _ in items}
    return [(name, list(parts), data.get(name)) for name, parts in items], steps


def _slope_norm(parts: list[Partition]):
    """One logarithmic colour scale for the slope norms of all the partitions."""
    from matplotlib.colors import LogNorm

    values = np.concatenate([slope_norms(p) for p in parts])
    values = values[values > 0]
    lo, hi = (np.percentile(values, [1, 99]) if values.size else (1e-3, 1.0))
    return LogNorm(vmin=lo, vmax=max(hi, lo * (1 + 1e-6)), clip=True)


def _draw(ax, part: Partition, norm, cmap: str, data, title: str):
    import matplotlib as mpl

    ax.clear()
    points, labels = (None, None) if data is None else data
    artists = plot_partition(part, ax=ax, color_by="slope", points=points, labels=labels, edgecolor="white",
                             linewidth=0.4, boundary_kw={"colors": "black", "linewidths": 2.0}, legend=False,
                             axis_labels=None)
    artists["regions"].set_facecolor(mpl.colormaps[cmap](norm(np.maximum(slope_norms(part), 1e-300))))
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


def _height(panels, panel_size: float) -> float:
    """Panel height that fits the tallest slice of ``panels`` at width ``panel_size``."""
    spans = [np.ptp(parts[0].slice.polygon, axis=0) for _, parts, _ in panels]
    return panel_size * max(float(np.clip(h / w, 0.3, 2.0)) for w, h in spans)


def _figure(panels, rows: int, panel_size: float, cmap: str):
    import matplotlib as mpl
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, len(panels), figsize=(panel_size * len(panels) + 0.8, (_height(panels, panel_size) + 0.4) * rows),
                             squeeze=False, layout="constrained")
    norms = []
    for j, (_, parts, _) in enumerate(panels):
        norm = _slope_norm(parts)
        norms.append(norm)
        fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes[:, j].tolist(), shrink=0.8,
                     label="slope norm ||(a, b)||")
    return fig, axes, norms


def animate(snapshots, path, fps: int = 6, steps=None, data=None, cmap: str = "viridis",
            panel_size: float = 4.0, dpi: int = 110, step_label: str = "step") -> Path:
    """Write an animation of partitions: regions coloured by slope norm (one log scale per
    panel over all frames), the decision boundary in black.

    snapshots: a list of partitions, or {title: list} for panels side by side
    (same lengths); steps: the step of each frame (default 0, 1, ...);
    data: (uv (N, 2), labels (N,)) drawn on top, or {title: (uv, labels)}.
    ``.gif`` is written with Pillow; ``.mp4`` needs ffmpeg.  Returns the path.
    """
    import matplotlib.pyplot as plt
    from matplotlib import animation

    path = Path(path)
    if path.suffix.lower() == ".gif":
        writer = animation.PillowWriter(fps=fps)
    elif path.suffix.lower() == ".mp4":
        if not animation.writers.is_available("ffmpeg"):
            raise RuntimeError("writing .mp4 needs ffmpeg on the PATH; write a .gif instead.")
        writer = animation.FFMpegWriter(fps=fps)
    else:
        raise ValueError(f"animation path must end in .gif or .mp4, got {path.name!r}.")
    panels, steps = _panels(snapshots, data, steps)
    fig, axes, norms = _figure(panels, 1, panel_size, cmap)
    with writer.saving(fig, str(path), dpi=dpi):
        for i, step in enumerate(steps):
            for ax, (title, parts, points), norm in zip(axes[0], panels, norms):
                head = f"{title}, " if title else ""
                _draw(ax, parts[i], norm, cmap, points, f"{head}{step_label} {step}: {len(parts[i]):,} regions")
            writer.grab_frame()
            fig.set_layout_engine("none")  # keep the first frame's layout: faster, and no jitter
    plt.close(fig)
    return path


def plot_frames(snapshots, indices=None, steps=None, data=None, cmap: str = "viridis",
                panel_size: float = 3.0, step_label: str = "step"):
    """A still figure of a few frames: one column per frame index, one row per panel
    (arguments as in :func:`animate`; indices default to 4 evenly spaced).  Returns (fig, axes)."""
    import matplotlib as mpl
    import matplotlib.pyplot as plt

    panels, steps = _panels(snapshots, data, steps)
    n = len(steps)
    indices = np.unique(np.linspace(0, n - 1, min(4, n)).round().astype(int)) if indices is None else list(indices)

    fig, axes = plt.subplots(len(panels), len(indices),
                             figsize=(panel_size * len(indices) + 0.8, (_height(panels, panel_size) + 0.4) * len(panels)),
                             squeeze=False, layout="constrained")
    for row, (title, parts, points) in enumerate(panels):
        norm = _slope_norm(parts)
        for col, i in enumerate(indices):
            head = f"{title}, " if title else ""
            _draw(axes[row, col], parts[i], norm, cmap, points, f"{head}{step_label} {steps[i]}: {len(parts[i]):,} regions")
        fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes[row].tolist(), shrink=0.8, label="slope norm")
    return fig, axes


def history(snapshots) -> dict:
    """Per snapshot: ``n_regions`` (T,) and ``boundary_length`` (T,)."""
    return {
        "n_regions": np.array([len(p) for p in snapshots]),
        "boundary_length": np.array([p.decision_boundary().length for p in snapshots]),
    }


def plot_history(snapshots, steps=None, step_label: str = "step"):
    """Region count and decision-boundary length against the step, one line per panel
    (snapshots: a list, or {title: list}).  Returns (fig, axes)."""
    import matplotlib.pyplot as plt

    panels, steps = _panels(snapshots, None, steps)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
    for title, parts, _ in panels:
        h = history(parts)
        axes[0].plot(steps, h["n_regions"], marker="o", ms=3, label=title or None)
        axes[1].plot(steps, h["boundary_length"], marker="o", ms=3, label=title or None)
    axes[0].set_ylabel("linear regions in the slice")
    axes[1].set_ylabel("decision boundary length")
    for ax in axes:
        ax.set_xlabel(step_label)
        ax.grid(alpha=0.3)
        if any(title for title, _, _ in panels):
            ax.legend()
    return fig, axes


# -- the train-video demo ------------------------------------------------------------------


def mlp(width: int = 10, depth: int = 5, inputs: int = 2, outputs: int = 2) -> nn.Sequential:
    """``depth`` hidden layers Linear + ReLU of ``width`` units, then a Linear head."""
    layers: list[nn.Module] = []
    for k in range(depth):
        layers += [nn.Linear(inputs if k == 0 else width, width), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(width, outputs))


def train_recorded(X: np.ndarray, y: np.ndarray, sl: Slice, epochs: int = 200, every: int = 10,
                   seed: int = 0, lr: float = 0.005, writer=None, executor=None) -> tuple[nn.Module, Recorder]:
    """Full-batch Adam on cross-entropy for a width-10, depth-5 MLP; the partition is recorded
    at epochs 0, every, 2 * every, ... up to ``epochs`` (after the last step), on ``executor``,
    and logged to ``writer`` (TensorBoard) if given, with the training loss (``train/loss``)
    every epoch."""
    torch.manual_seed(seed)
    model = mlp()
    rec = record(sl, every=every, writer=writer, executor=executor)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xt, yt = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y)
    for epoch in range(epochs + 1):
        rec(model)
        if epoch == epochs:
            return model, rec
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
        if writer is not None:
            writer.add_scalar("train/loss", loss.item(), epoch)


def train_video(out, epochs: int = 200, every: int = 5, seed: int = 0, fps: int = 8, tensorboard=None,
                executor=None) -> dict:
    """Train the MLP on two moons and on two circles, write ``train.gif`` (both side by side),
    ``history.png`` (regions and boundary length per epoch) and ``frames.png`` to ``out``.
    With ``tensorboard`` (a folder), also log each run there (``two-moons``, ``two-circles``);
    executor: where the partitions run (see :func:`splinecam.partition_many`).  Returns {name: path}."""
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = {"two moons": two_moons(200, 0.1, seed), "two circles": two_circles(200, 0.08, seed)}
    snapshots, points, steps = {}, {}, None
    with one_thread():
        for name, (X, y) in data.items():
            sl = Slice.box(X.min(0) - 0.4, X.max(0) + 0.4)
            writer = None if tensorboard is None else summary_writer(Path(tensorboard) / name.replace(" ", "-"))
            _, rec = train_recorded(X, y, sl, epochs=epochs, every=every, seed=seed, writer=writer,
                                     executor=executor)
            if writer is not None:
                writer.close()
            snapshots[name], points[name], steps = rec.snapshots, (X, y), rec.steps
        paths = {"animation": animate(snapshots, out / "train.gif", fps=fps, steps=steps, data=points, step_label="epoch")}
        for name, plot in (("history", plot_history), ("frames", plot_frames)):
            kwargs = {} if plot is plot_history else {"data": points}
            fig, _ = plot(snapshots, steps=steps, step_label="epoch", **kwargs)
            paths[name] = out / f"{name}.png"
            fig.savefig(paths[name], dpi=150)
            plt.close(fig)
    if tensorboard is not None:
        paths["tensorboard"] = Path(tensorboard)
    return paths
