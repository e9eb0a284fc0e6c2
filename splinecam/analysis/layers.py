"""Per-layer views: the partition formed by the first k piecewise-linear layers."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..partition import Options, Partition, default_device, partition_graph, usable_device
from ..viz.plot import plot_boundary, plot_partition
from ..slices import Slice
from ..run.trace import Graph, prepare


class GraphModule(nn.Module):
    """Evaluates a (truncated) traced graph: the network that a per-layer partition describes.

    Holds an empty parameter on ``device`` in ``dtype`` so that code that asks a
    module for its device and dtype finds them.
    """

    def __init__(self, graph: Graph, device, dtype):
        super().__init__()
        self.graph = graph
        self.anchor = nn.Parameter(torch.zeros(0, device=device, dtype=dtype), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.graph.forward(x)


def partition_by_layer(model, sl: Slice, dtype=torch.float64, device=None, progress=False, **options) -> list[Partition]:
    """The partitions after each piecewise-linear layer: entry k holds the regions
    formed by layers 1..k+1, and its ``affine`` maps ``uv`` to that layer's output.

    The traced graph is cut after each non-affine node and run through the
    same engine as :func:`splinecam.partition`; the last entry has the
    regions of the whole network (its ``affine`` is still the last piecewise-
    linear layer's output, not the model's).  ``options``: max_regions, max_memory,
    chunk_size, rtol as in :func:`splinecam.partition`.  ``part.verify()``
    works on every entry (it checks against the truncated network).
    """
    if not isinstance(sl, Slice):
        raise TypeError(f"sl must be a splinecam.Slice, got {type(sl).__name__}.")
    opts = Options.of(options, "partition_by_layer")
    device = default_device(model) if device is None else usable_device(device)
    _, graph = prepare(model, dtype, device, sl.input_shape)
    ends = [i for i, node in enumerate(graph.nodes) if node.op.splits]
    parts = []
    for end in ends:
        sub = Graph(graph.nodes[: end + 1])
        parts.append(partition_graph(GraphModule(sub, device, dtype), sub, sl, dtype, device, progress, opts))
    return parts


def plot_layers(parts: list[Partition], boundary=None, axes=None, ncols: int | None = None,
                panel_size: float = 3.2, titles=None, boundary_kw=None):
    """Draw the partitions of :func:`partition_by_layer` side by side, every edge coloured by
    the layer that created it (one colour scale for all panels).

    boundary: a :class:`splinecam.analysis.boundary.Boundary` drawn on every panel
    (e.g. the whole model's ``decision_boundary()``); axes: as many axes as
    partitions (default: a new figure, ``ncols`` per row).  Returns (fig, axes).
    """
    import matplotlib.pyplot as plt

    if not parts:
        raise ValueError("no partitions to draw (the model has no piecewise-linear layer).")
    n = len(parts)
    if axes is None:
        ncols = min(n, 5) if ncols is None else ncols
        nrows = -(-n // ncols)
        span = np.ptp(parts[0].slice.polygon, axis=0)
        height = panel_size * min(span[1] / span[0], 2.0)
        fig, grid = plt.subplots(nrows, ncols, figsize=(panel_size * ncols, (height + 0.4) * nrows + 0.4),
                                 squeeze=False, layout="constrained")
        for ax in grid.ravel()[n:]:
            ax.set_axis_off()
        axes = grid.ravel()[:n]
    axes = list(np.ravel(axes))
    if len(axes) != n:
        raise ValueError(f"got {len(axes)} axes for {n} partitions.")
    layer_count = max(len(p.layers) for p in parts)
    for k, (part, ax) in enumerate(zip(parts, axes)):
        plot_partition(part, ax=ax, color_by="layer", boundary=False, layer_count=layer_count)
        legend = ax.get_legend()
        handles = legend.legend_handles
        legend.remove()
        if boundary is not None:
            kw = {"colors": "black", "linewidths": 2.2, "zorder": 3}
            kw.update(boundary_kw or {})
            plot_boundary(boundary, ax=ax, **kw)
        layers = "layer 1" if k == 0 else f"layers 1-{k + 1}"
        ax.set_title(titles[k] if titles is not None else f"{layers}: {len(part):,} regions", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig = axes[0].figure
    constrained = fig.get_layout_engine() is not None
    fig.legend(handles=handles, loc="outside lower center" if constrained else "lower center", ncol=len(handles),
               fontsize=9, frameon=False)
    return fig, axes
