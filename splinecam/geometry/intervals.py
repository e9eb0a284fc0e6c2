"""Batches of closed intervals of a curve's parameter (torch, any device), cut at the points where
the functions of the parameter that a chart's planes give change sign: the cells of a path.

- :class:`Intervals`: pieces ``[lo, hi]`` of a straight leg, a 1-D chart: a plane ``(a, c)``
  is ``a*t + c``;
- :class:`Arcs`: arcs ``[lo, hi]`` of the angle s of the unit circle ``(cos s, sin s)`` in a
  2-D chart (an ellipse in input space): a plane ``(a, b, c)`` is ``a*cos s + b*sin s + c``,
  whose zeros are solved in closed form.

A batch of P cells is two (P,) arrays of ends, ``lo < hi``, with the (layer, unit) that made
each end (:data:`~splinecam.geometry.BORDER` at the ends of the path).  No ragged arrays: a cell
cut at its k points is k + 1 cells, so one sort per batch cuts every cell at all its points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from . import compiled1d
from .cut import Cut
from .linesplit import WORK_PER_CALL, LineSplit
from .polygons import BORDER, first_of_runs, offsets_from_counts, ragged_arange

__all__ = ["Arcs", "Intervals", "cut_intervals", "split_intervals", "split_intervals_at_breakpoints"]

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
        """Cells ``index`` (any order), and ``index``."""
        return type(self)(self.lo[index], self.hi[index], self.ends[index]), index

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
        """Max and min over each cell of its functions ``maps`` (P, 1 + d, U) (rows: value at
        the chart's origin, then the d derivatives): two (P, U)."""
        planes = torch.cat([maps[:, 1:], maps[:, :1]], 1).transpose(1, 2)  # (P, U, d + 1)
        return self.range_of(planes, self.lo[:, None], self.hi[:, None])

    def homogeneous_padded(self) -> torch.Tensor:
        """(P, 2, 2) rows ``(t, 1)`` of each interval's ends: an affine function's max and min
        over an interval are at its ends (as over a polygon's vertices: the max cells'
        vertex rule, :func:`~splinecam.geometry.possible_winners`)."""
        t = torch.stack([self.lo, self.hi], 1)
        return torch.stack([t, torch.ones_like(t)], 2)

    @staticmethod
    def at(planes: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """(...) the planes (..., 2) ``a*t + c`` at the parameters t (...)."""
        return planes[..., 0] * t + planes[..., 1]

    @classmethod
    def range_of(cls, planes: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Max and min (each (...)) of the planes (..., d + 1) over the cells ``[lo, hi]`` (...)."""
        at_lo, at_hi = cls.at(planes, lo), cls.at(planes, hi)
        return torch.maximum(at_lo, at_hi), torch.minimum(at_lo, at_hi)

    @staticmethod
    def roots(planes: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For planes (L, d + 1) that change sign on their cells ``[lo, hi]`` (L,): (plane (m,),
        t (m,)): each zero in ``[lo, hi]`` (here one per plane)."""
        t = (-planes[:, 1] / planes[:, 0]).clamp(lo, hi)
        return torch.arange(len(t), device=t.device), t

    def parameters(self, center: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The ends (P,) x2 as parameters of the leg, for cells about the chart point ``center`` (1,)."""
        return self.lo + center[0], self.hi + center[0]

    @classmethod
    def cat(cls, parts: list["Intervals"]) -> "Intervals":
        return cls(torch.cat([p.lo for p in parts]), torch.cat([p.hi for p in parts]), torch.cat([p.ends for p in parts]))

    @classmethod
    def single(cls, vertices: torch.Tensor) -> "Intervals":
        """One cell from its two ends (2, 1) in increasing order, both on the border."""
        ends = torch.full((1, 2, 2), BORDER, dtype=torch.int64, device=vertices.device)
        return cls(vertices[:1, 0], vertices[1:, 0], ends)


def split_intervals(cells: Intervals, region: torch.Tensor, planes: torch.Tensor, tol: torch.Tensor,
                    units: torch.Tensor, check: Callable[[int], None] | None = None,
                    budget: int | None = None) -> LineSplit:
    """Cut each cell of ``cells`` (P,) (:class:`Intervals` or :class:`Arcs`) at the zeros of the
    planes (L, d + 1) with ``region`` (L,) == its index (sorted), each with its on-plane
    tolerance ``tol`` (L,): the split of :func:`splinecam.geometry.split_cells` for them.

    A plane cuts only where its values over the cell lie strictly on both sides.  Its zeros
    are sorted; a zero whose plane stays within its tolerance from the last kept cut (or the
    cell's low end) to the zero, or from the zero to the cell's high end, is not a cut of its
    own (its plane passes through that cut or end), so no plane strictly crosses a piece and
    no piece is a sliver.  Each piece's side of a plane is read from the plane's range over the
    piece with the same classification (0: the piece lies within tolerance of the plane).  Past
    ``budget`` the cells not yet cut come back whole as the rest.  The new ends carry ``units``
    (L, 2) of the plane that made them.
    """
    p, kind = len(cells), type(cells)
    n_planes = torch.bincount(region, minlength=p)
    plane_offsets = offsets_from_counts(n_planes)
    top, bottom = kind.range_of(planes, cells.lo[region], cells.hi[region])
    crosses = (top > tol) & (bottom < -tol)
    n_cross = torch.zeros(p, dtype=torch.int64, device=region.device).index_add_(0, region, crosses.long())

    done = p
    if budget is not None:  # the cells whose pieces fit in the budget, at least one
        held = torch.cumsum(1 + 2 * n_cross + n_planes, 0) * _PIECE_BYTES
        done = max(1, int(torch.searchsorted(held, torch.tensor(budget, device=held.device), right=True)))
        done = min(done, p)
    rest_parent = torch.arange(done, p, device=region.device)
    rest = cells.select(rest_parent)[0]

    live = torch.nonzero(crosses & (region < done)).flatten()
    which, root = kind.roots(planes[live], cells.lo[region[live]], cells.hi[region[live]])
    live = live[which]
    order = torch.argsort(root, stable=True)
    order = order[torch.argsort(region[live][order], stable=True)]
    live, root = live[order], root[order]
    keep = _kept_cuts(region[live], root, planes[live], tol[live], kind, cells.lo[region[live]], cells.hi[region[live]])
    live, root = live[keep], root[keep]
    owner = region[live]

    # pieces: cell r has its kept cuts k_1 < ... < k_m and becomes m + 1 pieces
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
    pieces = kind(lo, hi, ends)
    if check is not None:
        check(len(pieces) + len(rest))

    def sides_of(sel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        piece, k = ragged_arange(n_planes[parent[sel]])
        plane = plane_offsets[parent[sel]][piece] + k
        top, bottom = kind.range_of(planes[plane], lo[sel][piece], hi[sel][piece])
        t = tol[plane]
        return piece, plane, (top > t).to(torch.int8) - (bottom < -t).to(torch.int8)

    return LineSplit(pieces, parent, rest, rest_parent, sides_of)


def split_intervals_at_breakpoints(cells: Intervals, z: torch.Tensor, breakpoints: torch.Tensor, extent: torch.Tensor,
                                   rtol: float, layer: int, budget: int
                                   ) -> tuple[Intervals, torch.Tensor, torch.Tensor, Intervals, torch.Tensor] | None:
    """The compiled split of an elementwise op over intervals, in one bounded call (see
    :func:`splinecam.geometry.compiled1d.interval_breakpoint_split`): intervals ``cells`` (R,)
    with unit maps z (R, 2, U), breakpoints (k,), the chart's half-size ``extent`` (1,).
    Returns the pieces (n,), their intervals (n,) and codes (n, U, k) bool, and the rest (the
    intervals not started) and their indices; None where it does not apply (no numba, not
    float64 on the CPU, arcs)."""
    if not (type(cells) is Intervals and compiled1d.AVAILABLE and z.device.type == "cpu" and z.dtype == torch.float64):
        return None
    lo, hi, ends, parent, code, done = compiled1d.interval_breakpoint_split(
        cells.lo.numpy(), cells.hi.numpy(), cells.ends.contiguous().numpy(), z.contiguous().numpy(), breakpoints.numpy(),
        rtol, float(extent[0]), layer, budget, WORK_PER_CALL)
    rest_parent = torch.arange(done, len(cells))
    pieces = Intervals(torch.from_numpy(lo), torch.from_numpy(hi), torch.from_numpy(ends))
    return (pieces, torch.from_numpy(parent), torch.from_numpy(code).reshape(len(lo), z.shape[2], -1),
            cells.select(rest_parent)[0], rest_parent)


def cut_intervals(cells: Intervals, lines: torch.Tensor, tol: torch.Tensor, line_units: torch.Tensor) -> Cut:
    """Cut interval p at the zero of ``lines[p]`` ``(a, c)`` for every p at once (the 1-D
    :func:`~splinecam.geometry.cut`): tol (P,) the lines' tolerances; line_units (P, 2) the
    units of the new ends.  An interval whose ends lie strictly on both sides becomes two
    pieces; one that is not crossed goes whole to the side it touches (to ``pos`` when both
    ends are on the line)."""
    at = torch.stack([Intervals.at(lines, cells.lo), Intervals.at(lines, cells.hi)], 1)  # (P, 2)
    side = (at > tol[:, None]).to(torch.int8) - (at < -tol[:, None]).to(torch.int8)
    has_pos, has_neg = (side > 0).any(1), (side < 0).any(1)
    crossed = has_pos & has_neg
    to_pos, to_neg = ~crossed & ~has_neg, ~crossed & has_neg
    split = torch.nonzero(crossed).flatten()
    sub = cells.select(split)[0]
    root = (-lines[split, 1] / lines[split, 0]).clamp(sub.lo, sub.hi)
    rising = side[split, 1] > 0  # positive above the zero
    low = Intervals(sub.lo, root, sub.ends.clone())
    low.ends[:, 1] = line_units[split]
    high = Intervals(root, sub.hi, sub.ends.clone())
    high.ends[:, 0] = line_units[split]
    pos_half = Intervals(torch.where(rising, high.lo, low.lo), torch.where(rising, high.hi, low.hi),
                         torch.where(rising[:, None, None], high.ends, low.ends))
    neg_half = Intervals(torch.where(rising, low.lo, high.lo), torch.where(rising, low.hi, high.hi),
                         torch.where(rising[:, None, None], low.ends, high.ends))
    pos, neg = Intervals.cat([cells.mask(to_pos), pos_half]), Intervals.cat([cells.mask(to_neg), neg_half])
    whole_pos, whole_neg = torch.nonzero(to_pos).flatten(), torch.nonzero(to_neg).flatten()
    return Cut(pos, torch.cat([whole_pos, split]), neg, torch.cat([whole_neg, split]))


def _kept_cuts(owner: torch.Tensor, root: torch.Tensor, planes: torch.Tensor, tol: torch.Tensor, kind,
               lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """(n,) bool: which zeros ``root`` (n,) of the planes (n, d + 1) of a cell type ``kind``,
    sorted by cell ``owner`` then position, in cells ``[lo, hi]`` (n,), are cuts: a zero is no
    cut where its plane stays within its tolerance ``tol`` (n,) from the last cut before it
    (the cell's ``lo`` before the first) to the zero, or from the zero to ``hi`` (it passes
    through that cut or end).

    Vectorised: a zero whose plane leaves its tolerance between the zero before it (or ``lo``)
    and itself leaves it from any cut before it too, so it is a cut; the others (near the zero
    before them) are settled in passes, each adding, after each cut, the first of them whose
    plane leaves its tolerance from that cut (in a cluster of close zeros, more passes)."""
    def leaves(a, b):  # the plane leaves its tolerance on [a, b]
        top, bottom = kind.range_of(planes, a, b)
        return (top > tol) | (bottom < -tol)

    n = root.numel()
    if not n:
        return torch.zeros(0, dtype=torch.bool, device=root.device)
    idx = torch.arange(n, device=root.device)
    starts = first_of_runs(owner)
    before = torch.where(starts, lo, torch.cat([root[:1], root[:-1]]))  # the zero before each, or lo
    usable = leaves(root, hi)
    keep = usable & leaves(before, root)
    open_ = torch.nonzero(usable & ~keep).flatten()  # near the zero before them: settled below
    first = torch.cummax(torch.where(starts, idx, 0), 0).values  # the first zero of each zero's cell
    while open_.numel():
        last = torch.cummax(torch.where(keep, idx, -1), 0).values[open_]
        last = torch.where(last >= first[open_], last, -1)  # the last cut before each, or -1
        start = torch.where(last >= 0, root[last.clamp(min=0)], lo[open_])
        top, bottom = kind.range_of(planes[open_], start, root[open_])
        off = (top > tol[open_]) | (bottom < -tol[open_])
        new, o, h = open_[off], owner[open_][off], last[off]
        if not new.numel():
            break
        fresh = torch.ones_like(new, dtype=torch.bool)
        fresh[1:] = (o[1:] != o[:-1]) | (h[1:] != h[:-1])
        keep[new[fresh]] = True
        open_ = open_[~keep[open_]]
    return keep


class Arcs(Intervals):
    """A batch of arcs ``[lo, hi]`` of the angle s on the unit circle ``(cos s, sin s)`` of a 2-D
    chart (the cells of an ellipse ``x = origin + basis @ (cos s, sin s)``; see
    :mod:`splinecam.geometry.cells`); ``hi - lo <= 2 pi``.  A plane ``(a, b, c)`` is
    ``a cos s + b sin s + c = R cos(s - phi) + c`` with ``R = hypot(a, b)``, ``phi =
    atan2(b, a)``: its range and zeros are closed-form."""

    dim = 2

    def measure(self) -> torch.Tensor:
        """(P,) angles."""
        return self.hi - self.lo

    def centroids(self) -> torch.Tensor:
        """(P, 2) the chart point at each arc's middle angle (on the arc)."""
        mid = (self.lo + self.hi) / 2
        return torch.stack([torch.cos(mid), torch.sin(mid)], 1)

    @staticmethod
    def at(planes: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """(...) the planes (..., 3) at the angles s (...)."""
        return planes[..., 0] * torch.cos(s) + planes[..., 1] * torch.sin(s) + planes[..., 2]

    @classmethod
    def range_of(cls, planes, lo, hi):
        """Max and min of the planes (..., 3) over the arcs ``[lo, hi]`` (...): at the ends, or
        ``c +- R`` where the arc holds the angle ``phi`` (``phi + pi``)."""
        top, bottom = super().range_of(planes, lo, hi)
        r = torch.hypot(planes[..., 0], planes[..., 1])
        phi = torch.atan2(planes[..., 1], planes[..., 0])
        c = planes[..., 2]
        top = torch.where(torch.remainder(phi - lo, 2 * math.pi) <= hi - lo, c + r, top)
        bottom = torch.where(torch.remainder(phi + math.pi - lo, 2 * math.pi) <= hi - lo, c - r, bottom)
        return top, bottom

    @staticmethod
    def roots(planes, lo, hi):
        """The zeros ``phi +- acos(-c / R)`` of the planes (L, 3) in their arcs ``[lo, hi]`` (L,):
        (plane (m,), s (m,)), at most two per plane."""
        r = torch.hypot(planes[:, 0], planes[:, 1])
        phi = torch.atan2(planes[:, 1], planes[:, 0])
        half = torch.acos((-planes[:, 2] / r).clamp(-1, 1))
        s = torch.stack([phi - half, phi + half], 1)  # (L, 2)
        s = lo[:, None] + torch.remainder(s - lo[:, None], 2 * math.pi)
        inside = s <= hi[:, None]
        inside[:, 1] &= half > 0  # a double zero once
        plane = torch.nonzero(inside)
        return plane[:, 0], s[plane[:, 0], plane[:, 1]]

    def parameters(self, center):
        """The ends (P,) x2: angles, whatever the chart point ``center`` (the ellipse's is 0)."""
        return self.lo, self.hi

    def homogeneous_padded(self) -> torch.Tensor:
        """Not for arcs: a function ``a cos s + b sin s + c`` may peak inside an arc, so its
        ends do not bound it (max cells split straight intervals only)."""
        raise TypeError("max cells split straight intervals only: on an arc a candidate may peak between its ends.")
