"""The cell interface: what the run (:mod:`splinecam.run`) and the ops (:mod:`splinecam.ops`) ask of
a batch of convex cells of a d-dimensional chart, whatever their dimension.

A batch of R cells (:class:`~splinecam.geometry.Intervals` on a straight leg of a path,
:class:`~splinecam.geometry.Arcs` on an ellipse (arcs of the unit circle of a 2-D chart),
:class:`~splinecam.geometry.Polygons` on a 2-D slice, :class:`~splinecam.geometry.Polyhedra` in a 3-D volume) lives in chart
coordinates about a reference point (the chart's centre), and the states of its cells are
``(R, 1 + d, *shape)``: each activation's value at that point and its d partial derivatives.  A
*plane* of the chart is a row ``(a_1, ..., a_d, c)``: the points ``t`` with ``a . t + c = 0``,
positive where ``a . t + c > 0``.  Every cell type gives:

- ``dim`` (class attribute): d, the number of chart coordinates of its states;
- ``len(cells)``; ``cells.select(index) -> (cells, source)`` (any order; ``source`` is for the
  cell type's own use); ``cells.mask(keep (R,) bool)``; ``Type.cat(list)``;
  ``Type.single(...)`` (one cell, the domain's root, see the domain's ``frame``);
- ``measure() (R,)``: length, area or volume; ``centroids() (R, d)``: a point strictly inside
  each cell (for the side of a function flat on a cell);
- ``extremes(z) -> (hi, lo)``, each (R, U): the max and min over each cell of its affine
  functions z (R, 1 + d, U) (rows: value at the reference point, then the d derivatives);
- a split, :func:`split_cells`, which dispatches on the type (and, where a compiled kernel
  makes the whole split of an elementwise op at once, :func:`breakpoint_split`).

The on-plane tolerance is :func:`~splinecam.geometry.plane_tolerance` for every dimension.
"""

from __future__ import annotations

from typing import Callable

import torch

from .intervals import Arcs, Intervals, split_intervals, split_intervals_at_breakpoints
from .linesplit import LineSplit, split_at_breakpoints, split_by_lines
from .polygons import Polygons
from .polyhedra import Polyhedra, split_polyhedra, split_polyhedra_at_breakpoints

__all__ = ["CellSplit", "breakpoint_split", "split_cells"]

CellSplit = LineSplit  # the result of every cell type's split (its ``pieces`` are of the type split)

_SPLITS: dict[type, Callable[..., LineSplit]] = {Intervals: split_intervals, Arcs: split_intervals, Polygons: split_by_lines,
                                                 Polyhedra: split_polyhedra}


def split_cells(cells, region: torch.Tensor, planes: torch.Tensor, tol: torch.Tensor, units: torch.Tensor,
                check: Callable[[int], None] | None = None, budget: int | None = None) -> LineSplit:
    """Cut each cell of ``cells`` (R,) by the planes (L, d + 1) with ``region`` (L,) == its index
    (``region`` sorted), each with its on-plane tolerance ``tol`` (L,); the new faces carry
    ``units`` (L, 2).  A plane cuts a piece only where its vertices lie strictly on both sides.
    ``check(n)`` is called with piece counts as they grow; ``budget``: bytes the per-piece
    records may hold (the pieces not finished come back as ``rest``, to split again).  Returns
    a :class:`~splinecam.geometry.LineSplit`: pieces, parent, rest, rest_parent, sides_of."""
    try:
        split = _SPLITS[type(cells)]
    except KeyError:
        raise TypeError(f"no split for cells of type {type(cells).__name__}") from None
    return split(cells, region, planes, tol, units, check, budget)


def breakpoint_split(cells, z: torch.Tensor, breakpoints: torch.Tensor, extent: torch.Tensor, rtol: float, layer: int,
                     budget: int):
    """The compiled split of an elementwise op where the cell type has one (polygons:
    :func:`~splinecam.geometry.split_at_breakpoints`; intervals:
    :func:`~splinecam.geometry.split_intervals_at_breakpoints`), else None: (pieces, parent,
    code (n, U, k) bool, rest, rest_parent) for cells (R,) with unit maps z (R, 1 + d, U)."""
    fast = {Polygons: split_at_breakpoints, Intervals: split_intervals_at_breakpoints,
            Polyhedra: split_polyhedra_at_breakpoints}.get(type(cells))
    return None if fast is None else fast(cells, z, breakpoints, extent, rtol, layer, budget)
