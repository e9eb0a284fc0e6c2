"""Boundary first: the exact decision boundary or a level set of a model on a slice, refining
only the cells the boundary can pass through.

Before every piecewise-linear op, each cell's output is bounded by
:class:`~splinecam.analysis.bounds.OutputBounds`.  A cell is *settled*, and refined no further, when
the bound proves that the boundary misses it: for a level set ``f_k = t`` when ``f_k - t``
keeps one sign on the whole cell (by a margin of ``1e-9`` of the bound's size, far above the
boundary's own tie tolerance); for the decision boundary of K > 1 outputs when one class
beats every other on the whole cell.  The other cells are split as in :func:`partition`, so
the exact regions of the result are the very regions of the full partition where the
boundary can run, and the boundary read off them is the full partition's.
"""

from __future__ import annotations

import math
import time

import torch

from .boundary import Boundary
from .bounds import RELAXATIONS, OutputBounds, form_bounds
from ..partition import Partition, checked_arguments, partition_graph, partition_mlp
from ..slices import Slice
from ..run.chain import cached_chain, chain_applies
from ..run.compose import compose
from ..run.trace import prepare

__all__ = ["decision_boundary", "level_set", "level_set_missed"]

_MARGIN = 1e-9


def decision_boundary(model, sl: Slice, dtype=torch.float64, device=None, progress=None, bounds: str = "zonotope",
                      **options) -> Boundary:
    """The decision boundary of ``model`` on ``sl`` (K = 1: where the output crosses 0; K > 1:
    where the top logit is attained by two classes), equal to ``partition(model, sl, ...)
    .decision_boundary()`` but computed on the cells it can cross only.  Options as
    :func:`partition`'s; ``bounds``: ``"zonotope"`` (default) or ``"interval"`` (looser,
    for comparison; see :mod:`splinecam.analysis.bounds`).  ``.partition`` of the result holds exact
    regions where the boundary can run and coarse cells elsewhere (``part.exact``)."""
    part = boundary_partition(model, sl, None, 0, dtype, device, progress, bounds, options, "decision_boundary")
    return part.decision_boundary()


def level_set(model, sl: Slice, value: float, output: int = 0, dtype=torch.float64, device=None, progress=None,
              bounds: str = "zonotope", **options) -> Boundary:
    """Where output ``output`` of ``model`` crosses ``value`` on ``sl``, equal to
    ``partition(model, sl, ...).level_set(value, output)`` (see :func:`decision_boundary`)."""
    part = boundary_partition(model, sl, float(value), output, dtype, device, progress, bounds, options, "level_set")
    return part.level_set(value, output)


def level_set_missed(cells: torch.Tensor, forms: torch.Tensor, value: float, output: int) -> torch.Tensor:
    """(R,) bool: the cells (corners (R, V, 1 + d)) where the output forms (R, 1 + d + E, K) prove
    that ``f_output - value`` keeps one sign (by the margin of the module doc)."""
    g = forms[:, :, output : output + 1].clone()
    g[:, 0] -= value
    lo, hi = form_bounds(cells, g)
    margin = _MARGIN * torch.maximum(lo.abs(), hi.abs())
    return ((lo > margin) | (hi < -margin))[:, 0]


def boundary_partition(model, sl: Slice, value: float | None, output: int, dtype, device, progress, bounds: str,
                       options: dict, caller: str) -> Partition:
    """The partition of ``sl`` refined down to linear regions only where the level set
    ``f_output = value`` (``value`` None: the decision boundary) can run, on the MLP fast path
    where :func:`partition` would take it, else on the engine."""
    started = time.perf_counter()
    opts, device = checked_arguments(model, sl, device, options, caller)
    if bounds not in RELAXATIONS:
        raise ValueError(f"bounds must be one of {RELAXATIONS}, got {bounds!r}.")
    chain = cached_chain(model, sl) if chain_applies(dtype, device) else None
    if chain is not None:
        graph, shapes = chain.graph(sl.input_shape[0])
    else:
        twin, graph = prepare(model, dtype, device, sl.input_shape)
        with torch.no_grad():
            x = torch.as_tensor(sl.origin, dtype=dtype, device=device)[None]
            shapes = [tuple(v.shape[1:]) for v in graph.forward(x, values=True)]
    if opts.compose:  # the graph the executor runs (composing it again there changes nothing): the bounds' nodes are its
        graph, shapes = compose(graph, shapes, dtype, device)
    k = math.prod(shapes[-1])
    if value is not None and not 0 <= output < k:
        raise ValueError(f"output must be in [0, {k}), got {output}.")
    if value is None and k == 1:
        value = 0.0
    bounder = OutputBounds(graph, shapes, bounds)

    def settled_cells(cells, forms):
        if value is not None:
            return level_set_missed(cells, forms, value, output)
        diff = (forms[:, :, :, None] - forms[:, :, None, :]).reshape(len(forms), forms.shape[1], k * k)
        lo, hi = form_bounds(cells, diff)
        margin = _MARGIN * torch.maximum(lo.abs(), hi.abs())
        beats = (lo > margin).reshape(-1, k, k) | torch.eye(k, dtype=torch.bool, device=lo.device)
        return beats.all(2).any(1)

    def prune(i, polys, values):
        return bounder.settle(i, polys, values, settled_cells)

    if chain is not None:
        return partition_mlp(chain, model, sl, progress, opts, started, prune=prune)
    return partition_graph(twin, graph, sl, dtype, device, progress, opts, started, prune=prune)
