"""Periodic continuous piecewise-linear functions (triangle and sawtooth waves, ...) applied to
every unit, and their exact split rule: a region splits at every breakpoint its units' ranges
over it contain (infinitely many breakpoints in all, finitely many per region).

A periodic function is given by one period: knots ``t`` (k,) increasing with ``t[-1] - t[0] <
period`` and its values ``v`` (k,) there; it interpolates linearly between consecutive knots and
wraps around (``f(t[0] + period) = v[0]``), so it is continuous by construction.  Its breakpoints
are numbered by integers: breakpoint ``p = m * k + j`` lies at ``t[0] + m * period + (t[j] - t[0])``,
and *piece* ``p`` is the interval between breakpoints ``p`` and ``p + 1``.  :func:`periodic_piece`
is the one rule that says which piece a value is on; everything here (values, codes, splits)
uses it.
"""

from __future__ import annotations

import math

import torch

from ..geometry import Polygons, line_tolerance, ragged_arange, vertex_extremes
from .base import Split, SplitContext, SplitOp, pack_bits
from .elementwise import above_at_centroids, chord_relaxation, split_crossing
from .forms import SLACK, Relaxation

__all__ = ["CODE_BITS", "PeriodicOp", "check_period", "periodic_breakpoint", "periodic_piece", "periodic_pwl",
           "periodic_slopes"]

CODE_BITS = 32  # bits of a unit's activation code: its piece index, offset by 2**31
_OFFSET = 1 << (CODE_BITS - 1)


def check_period(knots, values, period) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The knots (k,) and values (k,) as float64 tensors and the period as a float, or a
    ValueError that says what is wrong."""
    knots = torch.as_tensor(knots, dtype=torch.float64).detach().reshape(-1)
    values = torch.as_tensor(values, dtype=torch.float64).detach().reshape(-1)
    period = float(period)
    if not (math.isfinite(period) and period > 0):
        raise ValueError(f"the period must be a positive number, got {period}.")
    if knots.numel() == 0 or knots.shape != values.shape:
        raise ValueError(f"give one value per knot (at least one knot): {knots.numel()} knots, {values.numel()} values.")
    if not (torch.isfinite(knots).all() and torch.isfinite(values).all()):
        raise ValueError("knots and values must be finite.")
    if (knots.diff() <= 0).any() or float(knots[-1] - knots[0]) >= period:
        raise ValueError(f"the knots must increase strictly within one period ({period}): got {knots.tolist()}.")
    return knots, values, period


def periodic_slopes(knots: torch.Tensor, values: torch.Tensor, period: float) -> torch.Tensor:
    """(k,) the slope on each piece ``j`` (from knot j to knot j + 1, the last one wrapping)."""
    t_next = torch.cat([knots[1:], knots[:1] + period])
    return (torch.roll(values, -1) - values) / (t_next - knots)


def periodic_breakpoint(p: torch.Tensor, knots: torch.Tensor, period: float) -> torch.Tensor:
    """The breakpoints (float, shaped like p) with the integer indices ``p``."""
    k = knots.numel()
    m = torch.div(p, k, rounding_mode="floor")
    j = p - m * k
    return knots[0] + m.to(knots.dtype) * period + (knots - knots[0])[j]


def periodic_piece(z: torch.Tensor, knots: torch.Tensor, period: float) -> torch.Tensor:
    """(int64, shaped like z) the piece of each value: ``p`` with breakpoint p < z <= breakpoint p + 1
    (the breakpoints as :func:`periodic_breakpoint` computes them, so the two always agree)."""
    knots = knots.to(device=z.device, dtype=z.dtype)
    k, z = knots.numel(), z.detach()
    q = torch.floor((z - knots[0]) / period)
    rest = z - knots[0] - q * period
    p = q.to(torch.int64) * k + torch.searchsorted(knots - knots[0], rest.contiguous(), right=False) - 1
    for _ in range(2):  # the rounding of q and rest is at most one piece off
        p = torch.where(periodic_breakpoint(p, knots, period) >= z, p - 1, p)
        p = torch.where(periodic_breakpoint(p + 1, knots, period) < z, p + 1, p)
    return p


def periodic_pwl(z: torch.Tensor, knots: torch.Tensor, values: torch.Tensor, period: float,
                 piece: torch.Tensor | None = None) -> torch.Tensor:
    """The periodic function at z (any shape; differentiable in z): on piece ``p`` (given, or
    :func:`periodic_piece`), ``v[j] + slope[j] * (z - breakpoint p)`` with ``j = p mod k``."""
    knots, values = knots.to(device=z.device, dtype=z.dtype), values.to(device=z.device, dtype=z.dtype)
    if piece is None:
        piece = periodic_piece(z, knots, period)
    j = torch.remainder(piece, knots.numel())
    return values[j] + periodic_slopes(knots, values, period)[j] * (z - periodic_breakpoint(piece, knots, period))


class PeriodicOp(SplitOp):
    """A periodic continuous piecewise-linear function applied to every unit (see the module doc).

    Activation code: the unit's piece index, offset by 2**31, as :data:`CODE_BITS` bits (most
    significant first), so every region's code names the piece of every unit.
    """

    relaxable = True

    def __init__(self, knots, values, period):
        self.knots, self.values, self.period = check_period(knots, values, period)
        self.slopes = periodic_slopes(self.knots, self.values, self.period)

    def layer_size(self, in_shape):
        units = math.prod(in_shape)
        return units, units * CODE_BITS

    def piece(self, z: torch.Tensor) -> torch.Tensor:
        return periodic_piece(z, self.knots.to(z), self.period)

    def breakpoint(self, p: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return periodic_breakpoint(p, self.knots.to(like), self.period)

    def forward(self, x):
        return periodic_pwl(x, self.knots, self.values, self.period)

    def bits(self, piece: torch.Tensor) -> torch.Tensor:
        """(..., CODE_BITS) bool: the code of the pieces (...) (int64)."""
        if piece.numel() and (piece.min() < -_OFFSET or piece.max() >= _OFFSET):
            raise ValueError(f"a unit's value is more than 2**31 periods ({self.period}) from 0; scale the "
                             "encoding's input down (its code holds 32 bits per unit).")
        shifts = torch.arange(CODE_BITS - 1, -1, -1, device=piece.device)
        return (((piece + _OFFSET)[..., None] >> shifts) & 1) == 1

    def code(self, x):
        return self.bits(self.piece(x.reshape(len(x), -1))).reshape(len(x), -1)

    def ambiguous(self, x, atol):
        """Every bit of a unit within ``atol`` of a breakpoint (its piece index may be one off)."""
        flat = x.reshape(len(x), -1)
        p = self.piece(flat)
        near = ((flat - self.breakpoint(p, flat)) <= atol) | ((self.breakpoint(p + 1, flat) - flat) <= atol)
        return near[..., None].expand(*near.shape, CODE_BITS).reshape(len(x), -1)

    def push(self, state: torch.Tensor, piece: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        """Apply the pieces ``piece`` (R, U) to the affine states (R, 3, U) (overwritten if ``inplace``)."""
        j = torch.remainder(piece, self.knots.numel())
        slope = self.slopes.to(state)[j]
        value = self.values.to(state)[j] + slope * (state[:, 0] - self.breakpoint(piece, state))
        out = state.mul_(slope[:, None]) if inplace else state * slope[:, None]
        out[:, 0] = value
        return out

    def candidates(self, lo: torch.Tensor, hi: torch.Tensor):
        """The breakpoints in ``[lo, hi]`` (R, U) (each unit's range over a region): the piece
        ``first`` (R, U) of ``lo``, and per breakpoint ``p`` in (first, piece of hi] its flat unit
        index ``r * U + u`` (n,), sorted, and its level (n,)."""
        first = self.piece(lo)
        count = (self.piece(hi) - first).reshape(-1)
        flat, step = ragged_arange(count)
        p = first.reshape(-1)[flat] + step + 1
        return first, flat, self.breakpoint(p, lo)

    def split(self, polys: Polygons, z: torch.Tensor, ctx: SplitContext) -> Split:
        """Cut each region by the lines where a unit meets one of the breakpoints its range over the
        region's vertices holds (:func:`~splinecam.ops.elementwise.split_crossing`, the rule of
        :class:`~splinecam.ops.ElementwiseOp`: a unit within tolerance of a side keeps it, one flat
        on a breakpoint reads its side at the centroid).  Each piece's code counts the breakpoints
        below it."""
        shape = z.shape[2:]
        r, units = len(polys), math.prod(shape)
        z = z.reshape(r, 3, units)
        hi, lo = vertex_extremes(polys, z)
        first, flat, level = self.candidates(lo, hi)
        region, unit = flat // units, flat % units
        maps = z[region, :, unit]  # (n, 3)
        tol = line_tolerance(maps[:, 1], maps[:, 2], maps[:, 0] - level, ctx.extent, ctx.rtol)
        above = hi.reshape(-1)[flat] - level > tol
        below = lo.reshape(-1)[flat] - level < -tol
        cross = above & below
        dead = ~above & ~below
        above[dead] = above_at_centroids(polys, region[dead], maps[dead], level[dead])
        base = first.reshape(-1).index_add(0, flat, (above & ~cross).to(first.dtype)).reshape(r, units)
        idx = torch.nonzero(cross).reshape(-1)
        lines = torch.stack([maps[idx, 1], maps[idx, 2], maps[idx, 0] - level[idx]], 1)
        res, sides = split_crossing(polys, region[idx], unit[idx], lines, tol[idx], ctx)
        line_unit = unit[idx]

        def apply(zc: torch.Tensor, sel: torch.Tensor, inplace: bool):
            m = len(sel)
            piece, line, up = sides(sel)
            pieces = base[res.parent[sel]]
            pieces.reshape(-1).index_add_(0, piece * units + line_unit[line], up.to(pieces.dtype))
            out = self.push(zc.reshape(m, 3, units), pieces, inplace=inplace).reshape(m, 3, *shape)
            return out, pack_bits(self.bits(pieces).reshape(m, -1))

        return Split(res.pieces, res.parent, apply, res.rest, res.rest_parent)

    def straddles(self, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        """(R, U) bool: units whose bounds ``[lo, hi]`` (R, U) may hold a breakpoint inside."""
        return self.piece(hi) > self.piece(lo)

    def relax_cost(self, lo, hi):
        return self.straddles(lo, hi).sum(1)

    def linear_relaxation(self, lo, hi, shape):
        """A unit stays exact where its bounds ``[l, h]`` over the cell hold no breakpoint; where
        they hold some but span less than a period, the chord relaxation of
        :func:`~splinecam.ops.elementwise.chord_relaxation` (the breakpoints in ``(l, l + period]``
        are all those inside); where they span a period or more, the range of the values."""
        p = self.piece(lo)
        j = torch.remainder(p, self.knots.numel())
        slope = self.slopes.to(lo)[j]
        intercept = self.values.to(lo)[j] - slope * self.breakpoint(p, lo)
        ends = [torch.minimum(self.breakpoint(p + i, lo), hi) for i in range(1, self.knots.numel() + 1)]
        lam, shift, rad = chord_relaxation(self.forward, lo, hi, ends, self.straddles(lo, hi), slope, intercept)
        wide = hi - lo >= self.period
        v_lo, v_hi = float(self.values.min()), float(self.values.max())
        lam = torch.where(wide, torch.zeros_like(lam), lam)
        shift = torch.where(wide, torch.full_like(shift, (v_lo + v_hi) / 2), shift)
        rad = torch.where(wide, torch.full_like(rad, (v_hi - v_lo) / 2 + SLACK * (abs(v_lo) + abs(v_hi))), rad)
        return Relaxation(lam, shift, rad, shape)

    def crossing_lines(self, z, polys, extent, rtol):
        """The (unit, breakpoint) lines that cross the region."""
        z = z.reshape(1, 3, -1)
        hi, lo = vertex_extremes(polys, z)
        _, unit, level = self.candidates(lo, hi)
        maps = z[0][:, unit].T
        lines = torch.stack([maps[:, 1], maps[:, 2], maps[:, 0] - level], 1)
        tol = line_tolerance(lines[:, 0], lines[:, 1], lines[:, 2], extent, rtol)
        keep = (hi[0, unit] - level > tol) & (lo[0, unit] - level < -tol)
        return lines[keep]
