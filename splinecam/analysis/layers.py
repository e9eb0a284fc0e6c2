"""Per-layer views: the partition formed by the first k piecewise-linear layers."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from ..extras import late
from ..partition import Partition, checked_arguments, partition_graph
from ..slices import Slice
from ..run.trace import Graph, prepare

__all__ = ["partition_by_layer", "plot_layers"]


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
    opts, device = checked_arguments(model, sl, device, options, "partition_by_layer")
    _, graph = prepare(model, dtype, device, sl.input_shape)
    ends = [i for i, node in enumerate(graph.nodes) if node.op.splits]
    parts = []
    for end in ends:
        sub = Graph(graph.nodes[: end + 1])
        parts.append(partition_graph(GraphModule(sub, device, dtype), sub, sl, dtype, device, progress, opts))
    return parts


def plot_layers(*args, **kwargs):
    """Deprecated place of :func:`splinecam.viz.plot.plot_layers` (``sc.plot_layers`` is the same);
    it goes in the next release."""
    warnings.warn("splinecam.analysis.layers.plot_layers is now splinecam.viz.plot.plot_layers (sc.plot_layers).",
                  DeprecationWarning, stacklevel=2)
    return late("viz.plot.plot_layers")(*args, **kwargs)
