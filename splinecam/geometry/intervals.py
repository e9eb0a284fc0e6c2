"""Batches of closed intervals of a 1-D chart (torch, any device), cut at the points where affine
functions of the chart coordinate change sign: the cells of a path.

A batch of P intervals is two (P,) arrays of ends, ``lo < hi``, with the (layer, unit) that
made each end (:data:`~splinecam.geometry.BORDER` at the ends of the path).  No ragged arrays:
an interval cut at its k crossing points is k + 1 intervals, so one sort per batch cuts every
interval at all its points at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .linesplit import LineSplit
from .polygons import BORDER, first_of_runs, offsets_from_counts, ragged_arange

__all__ = ["Intervals", "split_intervals"]

_PIECE_BYTES = 96  # bytes held per piece and per crossing point during a split (ends, units, indices, sort)


@dataclass
class Intervals:
    """A batch of intervals ``[lo, hi]`` (the cells of a 1-D chart; see
    :mod:`splinecam.geometry.cells`).

    lo, hi: (P,) float; ends: (P, 2, 2) int64, the (layer, unit) whose point made the low and
    the high end (BORDER, BORDER at the path's ends).
    """

    lo: torch.Tensor
    hi: torch.Tensor
    ends: torch.Tensor

    dim = 1  # chart coordinates of the states of its cells

    def __len__(self) -> int:
        return self.lo.numel()

    def select(self, index: torch.Tensor) -> tuple["Intervals", torch.Tensor]:
        """Intervals ``index`` (any order), and ``index``."""
        return Intervals(self.lo[index], self.hi[index], self.ends[index]), index

    def mask(self, keep: torch.Tensor) -> "Intervals":
        """The intervals where ``keep`` (P,) bool holds, in order."""
        return self.select(keep)[0]

    def measure(self) -> torch.Tensor:
        """(P,) lengths."""
        return self.hi - self.lo

    def centroids(self) -> torch.Tensor:
        """(P, 1) midpoints."""
        return ((self.lo + self.hi) / 2)[:, None]

    def extremes(self, maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Max and min over each interval of its affine functions ``maps`` (P, 2, U) (rows: value
        at the origin, slope): two (P, U)."""
        at_lo = maps[:, 0] + maps[:, 1] * self.lo[:, None]
        at_hi = maps[:, 0] + maps[:, 1] * self.hi[:, None]
        return torch.maximum(at_lo, at_hi), torch.minimum(at_lo, at_hi)

    @staticmethod
    def cat(parts: list["Intervals"]) -> "Intervals":
        return Intervals(torch.cat([p.lo for p in parts]), torch.cat([p.hi for p in parts]),
                         torch.cat([p.ends for p in parts]))

    @staticmethod
    def single(vertices: torch.Tensor) -> "Intervals":
        """One interval from its two ends (2, 1) in increasing order, both on the border."""
        ends = torch.full((1, 2, 2), BORDER, dtype=torch.int64, device=vertices.device)
        return Intervals(vertices[:1, 0], vertices[1:, 0], ends)


def split_intervals(cells: Intervals, region: torch.Tensor, planes: torch.Tensor, tol: torch.Tensor,
                    units: torch.Tensor, check: Callable[[int], None] | None = None,
                    budget: int | None = None) -> LineSplit:
    """Cut each interval of ``cells`` (P,) at the points ``a*t + c = 0`` of the planes (L, 2)
    ``(a, c)`` with ``region`` (L,) == its index (sorted), each with its on-point tolerance
    ``tol`` (L,): the split of :func:`splinecam.geometry.split_cells` for intervals.

    A plane cuts only where the interval's ends lie strictly on both sides.  Its crossing
    points are sorted; a point within tolerance of the last kept cut (``|a*t_cut + c| <=
    tol``) is not a cut of its own (its plane passes through that cut), so no piece is
    shorter than the tolerance allows and no plane strictly crosses a piece.  Each piece's
    side of a plane is read at its two ends with the same classification (0: the piece lies
    within tolerance of the plane).  Past ``budget`` the intervals not yet cut come back whole
    as the rest.  The new ends carry ``units`` (L, 2) of the plane that made them.
    """
    p = len(cells)
    n_planes = torch.bincount(region, minlength=p)
    plane_offsets = offsets_from_counts(n_planes)
    a, c = planes[:, 0], planes[:, 1]
    lo_val = a * cells.lo[region] + c
    hi_val = a * cells.hi[region] + c
    crosses = ((lo_val > tol) & (hi_val < -tol)) | ((lo_val < -tol) & (hi_val > tol))
    n_cross = torch.zeros(p, dtype=torch.int64, device=region.device).index_add_(0, region, crosses.long())

    done = p
    if budget is not None:  # the intervals whose pieces fit in the budget, at least one
        held = torch.cumsum(1 + n_cross + n_planes, 0) * _PIECE_BYTES
        done = max(1, int(torch.searchsorted(held, torch.tensor(budget, device=held.device), right=True)))
        done = min(done, p)
    rest_parent = torch.arange(done, p, device=region.device)
    rest = cells.select(rest_parent)[0]

    live = torch.nonzero(crosses & (region < done)).flatten()
    root = (-c[live] / a[live]).clamp(cells.lo[region[live]], cells.hi[region[live]])
    order = torch.argsort(root, stable=True)
    order = order[torch.argsort(region[live][order], stable=True)]
    live, root = live[order], root[order]
    keep = _kept_cuts(region[live], root, a[live], c[live], tol[live])
    live, root = live[keep], root[keep]
    owner = region[live]

    # pieces: interval r has its kept cuts k_1 < ... < k_m and becomes m + 1 pieces
    n_cuts = torch.zeros(done, dtype=torch.int64, device=region.device).index_add_(0, owner, torch.ones_like(owner))
    counts = n_cuts + 1
    parent, pos = ragged_arange(counts)
    cut_offsets = offsets_from_counts(n_cuts)
    first, last = pos == 0, pos == counts[parent] - 1
    before = cut_offsets[parent] + pos - 1  # the cut at each piece's low end (where not first)
    lo, hi, ends = cells.lo[parent], cells.hi[parent], cells.ends[parent]
    inner_lo, inner_hi = torch.nonzero(~first).flatten(), torch.nonzero(~last).flatten()
    lo[inner_lo] = root[before[inner_lo]]
    hi[inner_hi] = root[before[inner_hi] + 1]
    ends[inner_lo, 0] = units[live][before[inner_lo]]
    ends[inner_hi, 1] = units[live][before[inner_hi] + 1]
    pieces = Intervals(lo, hi, ends)
    if check is not None:
        check(len(pieces) + len(rest))

    def sides_of(sel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        piece, k = ragged_arange(n_planes[parent[sel]])
        plane = plane_offsets[parent[sel]][piece] + k
        lo_side = _side(a[plane] * lo[sel][piece] + c[plane], tol[plane])
        hi_side = _side(a[plane] * hi[sel][piece] + c[plane], tol[plane])
        return piece, plane, torch.where(lo_side != 0, lo_side, hi_side)

    return LineSplit(pieces, parent, rest, rest_parent, sides_of)


def _side(value: torch.Tensor, tol: torch.Tensor) -> torch.Tensor:
    """(n,) int8 in {-1, 0, 1}: the side of the values (n,) with tolerances (n,)."""
    return (value > tol).to(torch.int8) - (value < -tol).to(torch.int8)


def _kept_cuts(owner: torch.Tensor, root: torch.Tensor, a: torch.Tensor, c: torch.Tensor,
               tol: torch.Tensor) -> torch.Tensor:
    """(n,) bool: which crossing points ``root`` (n,), sorted by interval ``owner`` then
    position, are cuts: the first of each interval and every one not within its tolerance of
    the last cut before it (a fixed point of vectorised passes; the planes a, c, tol (n,))."""
    n = root.numel()
    keep = first_of_runs(owner) if n else torch.zeros(0, dtype=torch.bool, device=root.device)
    idx = torch.arange(n, device=root.device)
    while n:
        head = torch.cummax(torch.where(keep, idx, 0), 0).values  # the last cut at or before each point
        new = torch.nonzero(~keep & ((a * root[head] + c).abs() > tol)).flatten()
        if not new.numel():
            return keep
        keep[new[first_of_runs(head[new])]] = True  # after each cut, the first point off it
    return keep
