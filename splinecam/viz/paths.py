"""Pictures of a path partition (matplotlib, imported lazily): the outputs along the path, exact
(each piece drawn from its own map), with the breakpoints marked by the layer that made them
and the crossings of the decision boundary."""

from __future__ import annotations

import numpy as np

from .plot import class_color, layer_label, layer_palette

__all__ = ["plot_path"]

_SAMPLES_PER_PIECE = 8  # points per piece on an ellipse (a polyline's pieces are straight: their two ends)


def plot_path(part, ax=None, outputs=None, breakpoints: bool = True, boundary: bool = True, **kwargs) -> dict:
    """Draw outputs ``outputs`` (indices, default all) of a :class:`~splinecam.PathPartition`
    against the path parameter t on ``ax`` (a new figure if None); ``breakpoints``: a tick at
    each breakpoint in the colour of the layer whose unit made it (grey at the ends and joints
    of legs); ``boundary``: a dashed line at each crossing of the decision boundary.  kwargs go
    to the output lines (``ax.plot``).  Returns {"ax", "lines", "breakpoints", "crossings"}."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.5))
    k = part.n_outputs
    outputs = list(range(k)) if outputs is None else [int(o) for o in np.atleast_1d(outputs)]
    f = np.linspace(0, 1, _SAMPLES_PER_PIECE if part.path.kind == "ellipse" else 2)
    t = (part.lo[:, None] + part.lengths[:, None] * f).reshape(-1)
    piece = np.repeat(np.arange(len(part)), len(f))
    values = np.einsum("mkf,mf->mk", part.affine[piece], part.features(t))
    lines = []
    for o in outputs:
        # a NaN after each piece breaks the line where a partial partition has gaps
        y = np.insert(values[:, o], np.arange(len(f), len(t) + 1, len(f)), np.nan)
        x = np.insert(t, np.arange(len(f), len(t) + 1, len(f)), np.nan)
        (line,) = ax.plot(x, y, color=class_color([o])[0] if k > 1 else "k",
                          label=f"output {o}" if k > 1 else "output", **kwargs)
        lines.append(line)
    ticks = None
    if breakpoints and len(part):
        units = part.edge_units
        palette = layer_palette(max(1, len(part.layers)))
        colors = np.where((units[:, 0] >= 0)[:, None], palette[np.maximum(units[:, 0], 0)], (0.6, 0.6, 0.6, 1.0))
        ticks = ax.scatter(part.t, np.full(len(part.t), 0.0), c=colors, marker="|", s=120,
                           transform=ax.get_xaxis_transform(), clip_on=False, zorder=3)
        for i, layer in enumerate(part.layers):
            ax.scatter([], [], color=palette[i], marker="|", s=120, label=layer_label(i, layer))
    crossings = []
    if boundary and len(part):
        for j, tc in enumerate(part.decision_boundary().t):
            crossings.append(ax.axvline(tc, color="k", linestyle="--", linewidth=0.8,
                                        label="decision boundary" if j == 0 else None))
    lo, hi = part.path.t_range
    ax.set_xlim(lo, hi)
    ax.set_xlabel("s (angle)" if part.path.kind == "ellipse" else "t")
    ax.set_ylabel("output")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)  # beside the data
    return {"ax": ax, "lines": lines, "breakpoints": ticks, "crossings": crossings}
