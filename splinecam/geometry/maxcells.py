"""Where each of several affine functions attains the maximum over convex polygons.

Used by the max-type ops (max-pooling, maxout) and by decision boundaries:
the cell of candidate m in a polygon is the polygon clipped by the
half-planes ``g_m >= g_j`` for every other candidate j that can win there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .cut import cut
from .intervals import Intervals, cut_intervals
from .polygons import BORDER, Polygons, ragged_arange
from .polyhedra import Polyhedra, cut_polyhedra
from .tolerance import plane_tolerance

__all__ = ["MaxCells", "candidate_tolerance", "max_cells", "possible_winners"]

_WINNER_BLOCK = 1 << 22  # vertex x candidate x candidate evaluations held at once
_CREATED = -2  # marks, inside max_cells, the edges its clipping creates


def candidate_tolerance(funcs: torch.Tensor, extent, rtol: float, atol: float = 0.0) -> torch.Tensor:
    """(...) tolerance of the affine functions ``funcs`` (..., d + 1) (the d slopes, then the
    value at the chart point) over a domain of half-sizes ``extent`` (d,): :func:`plane_tolerance`
    of their rows."""
    return plane_tolerance(funcs[..., :-1].unbind(-1), funcs[..., -1], extent, rtol, atol)


def possible_winners(polys: Intervals | Polygons | Polyhedra, funcs: torch.Tensor, rtol: float, extent: torch.Tensor,
                     valid: torch.Tensor | None = None, atol: float = 0.0) -> torch.Tensor:
    """(P, C) bool: candidate m may attain the max of ``funcs`` (P, C, d + 1) somewhere in cell p
    (intervals of a straight leg, d = 1, polygons, d = 2, or polyhedra, d = 3).

    m is out when another candidate j beats it by more than the tolerance at
    every vertex, when j is the same function (within the tolerance) and
    j < m (ties go to the lowest index), or when ``valid[p, m]`` is False.
    """
    h = polys.homogeneous_padded()
    p, c = funcs.shape[:2]
    if valid is None:
        valid = torch.ones(p, c, dtype=torch.bool, device=funcs.device)
    lower = torch.ones(c, c, dtype=torch.bool, device=funcs.device).tril(-1)  # [m, j]: j < m
    out = []
    step = max(1, _WINNER_BLOCK // max(1, h.shape[1] * c * c))
    for s in range(0, p, step):
        g, ok = funcs[s : s + step], valid[s : s + step]
        vals = torch.bmm(h[s : s + step], g.transpose(1, 2))  # (r, V, C)
        # a candidate that leads at every vertex by more than any tolerance leads on the whole
        # (convex) polygon: only the other polygons need the pairwise test
        top = vals.masked_fill(~ok[:, None, :], -torch.inf).topk(min(2, c), dim=2)
        leader = top.indices[:, 0, 0]
        margin = (top.values[..., 0] - top.values[..., -1]).amin(1)
        span = candidate_tolerance(g, extent, rtol, atol).amax(1) * 2
        clear = (top.indices[..., 0] == leader[:, None]).all(1) & (margin > span)
        winners = torch.zeros_like(ok)
        winners[clear, leader[clear]] = True
        rest = torch.nonzero(~clear).flatten()
        if rest.numel():
            v, gr = vals[rest], g[rest]
            diff = (v[:, :, :, None] - v[:, :, None, :]).amax(1)  # [m, j]: max over vertices of g_m - g_j
            tol = candidate_tolerance(gr[:, :, None, :] - gr[:, None, :, :], extent, rtol, atol)
            same = (diff <= tol) & (diff.transpose(1, 2) <= tol)
            beaten = (diff < -tol) | (same & lower)
            okr = ok[rest]
            winners[rest] = okr & ~(beaten & okr[:, None, :]).any(2)
        out.append(winners)
    return torch.cat(out) if out else torch.zeros(0, c, dtype=torch.bool, device=funcs.device)


@dataclass
class MaxCells:
    """Result of :func:`max_cells`.

    cells: the non-empty cells; parent (n,) the polygon and winner (n,) the
    candidate of each; tie (N,) for each cell edge (each face of polyhedra), the
    candidate it ties with there (-1 for an edge of the original polygon); possible
    (P, C) from :func:`possible_winners`.
    """

    cells: Intervals | Polygons | Polyhedra
    parent: torch.Tensor
    winner: torch.Tensor
    tie: torch.Tensor
    possible: torch.Tensor


def max_cells(polys: Intervals | Polygons | Polyhedra, funcs: torch.Tensor, rtol: float, extent: torch.Tensor,
              valid: torch.Tensor | None = None, new_units: torch.Tensor | None = None,
              atol: float = 0.0) -> MaxCells:
    """Split every polygon (polyhedron, interval) into the cells where each of its candidates attains the max.

    polys: P convex polygons (polyhedra); funcs: (P, C, d + 1) rows (a, b, c) of the candidates
    ``a*u + b*v + c`` of each polygon (for polyhedra (a, b, c, d): ``a*u + b*v + c*w + d``);
    extent: (d,) domain half-sizes for the tolerances; valid: (P, C) bool, candidates that
    exist (default all); new_units: (P, 2) units of the edges (faces) the cells create (default BORDER).
    The cell of m is the polygon clipped by ``g_m >= g_j`` for every other
    possible winner j; empty clips vanish, and identical candidates keep only
    the lowest index, so the cells tile each polygon.
    """
    dev = funcs.device
    p, c = funcs.shape[:2]
    possible = possible_winners(polys, funcs, rtol, extent, valid, atol)
    parent, winner = torch.nonzero(possible, as_tuple=True)
    cells = polys.select(parent)[0]
    if new_units is None:
        new_units = torch.full((p, 2), BORDER, dtype=torch.int64, device=dev)
    for j in range(c):
        act = torch.nonzero((winner != j) & possible[parent, j]).flatten()
        if not act.numel():
            continue
        r = parent[act]
        lines = funcs[r, winner[act]] - funcs[r, j]
        mark = torch.stack([torch.full_like(r, j), torch.full_like(r, _CREATED)], 1)  # old units are >= -1 there
        res = _CUTS[type(cells)](cells.select(act)[0], lines, candidate_tolerance(lines, extent, rtol, atol), mark)
        rest = torch.ones(len(cells), dtype=torch.bool, device=dev)
        rest[act] = False
        rest = torch.nonzero(rest).flatten()
        cells = type(cells).cat([cells.select(rest)[0], res.pos])
        src = torch.cat([rest, act[res.pos_parent]])
        parent, winner = parent[src], winner[src]
    if isinstance(cells, Polyhedra):
        old, owner = cells.face_units, ragged_arange(cells.face_counts, len(cells.planes))[0]
    elif isinstance(cells, Intervals):
        old, owner = cells.ends.reshape(-1, 2), torch.arange(len(cells), device=dev).repeat_interleave(2)
    else:
        old, owner = cells.edge_units, cells.owner()
    created = old[:, 1] == _CREATED
    tie = torch.where(created, old[:, 0], -1)
    units = torch.where(created[:, None], new_units[parent][owner], old)
    if isinstance(cells, Polyhedra):
        cells = Polyhedra(cells.verts, cells.offsets, cells.incidence, cells.planes, cells.face_offsets, units)
    elif isinstance(cells, Intervals):
        cells = Intervals(cells.lo, cells.hi, units.reshape(-1, 2, 2))
    else:
        cells = Polygons(cells.verts, cells.offsets, units)
    return MaxCells(cells, parent, winner, tie, possible)


_CUTS = {Polygons: cut, Polyhedra: cut_polyhedra, Intervals: cut_intervals}  # the cut by one plane per cell of each type
