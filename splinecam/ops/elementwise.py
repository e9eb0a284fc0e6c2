"""Elementwise piecewise-linear ops (ReLU, LeakyReLU, PReLU, clamp, abs, ...) and their split
rule: a region splits along the line where a unit crosses one of its breakpoints."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..geometry import breakpoint_split, compiled, plane_tolerance, split_cells
from ..errors import Unsupported
from .base import Split, SplitContext, SplitOp, pack_bits
from .forms import SLACK, Relaxation

__all__ = ["ElementwiseOp", "above_at_centroids", "abs_op", "chord_relaxation", "clamp_op", "leaky_relu_op", "relu_op",
           "split_crossing", "value_at"]


class ElementwiseOp(SplitOp):
    """Continuous piecewise-linear function applied to every unit.

    breakpoints: (k,) increasing; slopes, intercepts: (k + 1,) shared by all
    units, or (k + 1, C) per channel (dim 1 of a batch, e.g. PReLU).  The
    piece ``slopes[i] * z + intercepts[i]`` holds between breakpoints i-1 and i.
    Activation code: one bit per (unit, breakpoint), "z above the breakpoint".
    """

    relaxable = True
    any_cells = True

    def __init__(self, breakpoints, slopes, intercepts):
        self.breakpoints = torch.as_tensor(breakpoints, dtype=torch.float64)
        self.slopes = torch.as_tensor(slopes, dtype=torch.float64)
        self.intercepts = torch.as_tensor(intercepts, dtype=torch.float64)
        k = self.breakpoints.numel()
        if self.slopes.shape != self.intercepts.shape or self.slopes.shape[0] != k + 1 or self.slopes.dim() > 2:
            raise ValueError(f"slopes and intercepts must both be (k+1,) or (k+1, C) for k={k} breakpoints.")
        self.is_relu = k == 1 and self.slopes.tolist() == [0.0, 1.0] and not self.intercepts.any()
        self.has_intercepts = bool(self.intercepts.any())

    def layer_size(self, in_shape):
        units = math.prod(in_shape)
        return units, units * self.breakpoints.numel()

    def above(self, z: torch.Tensor) -> torch.Tensor:
        """(..., k) bool: whether z is above each breakpoint (the activation code)."""
        return z[..., None] > self.breakpoints.to(z)

    def apply_code(self, z: torch.Tensor, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Slope and intercept (both shaped like z) of the piece selected by ``code`` (..., k).

        z: (B, ...) units of a batch; per-channel tables read the channel of
        each unit from the C-order flattening of the dims after the batch dim.
        """
        slopes, intercepts = self.slopes.to(z), self.intercepts.to(z)
        if slopes.dim() == 1 and code.shape[-1] == 1:
            up = code[..., 0]
            return torch.where(up, slopes[1], slopes[0]), torch.where(up, intercepts[1], intercepts[0])
        piece = code.sum(-1)
        if slopes.dim() == 1:
            return slopes[piece], intercepts[piece]
        c = slopes.shape[1]
        p = piece.reshape(piece.shape[0], c, -1)
        ch = torch.arange(c, device=z.device)[None, :, None]
        return slopes[p, ch].reshape(piece.shape), intercepts[p, ch].reshape(piece.shape)

    def push(self, state: torch.Tensor, code: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        """Apply the pieces ``code`` (R, U, k) to the affine states (R, 1 + d, U) (overwritten if ``inplace``)."""
        if self.is_relu:
            mask = code[:, None, :, 0].to(state.dtype)  # keep or zero (a float mask multiplies faster)
            return state.mul_(mask) if inplace else state * mask
        slope, intercept = self.apply_code(state[:, 0], code)
        out = state.mul_(slope[:, None]) if inplace else state * slope[:, None]
        if self.has_intercepts:
            out[:, 0] += intercept
        return out

    def push_pieces(self, state: torch.Tensor, parent: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """``push(state[parent], code)``: the states (n, 1 + d, U) of pieces with codes (n, U, k) from
        the states (R, 1 + d, U) of their regions ``parent`` (n,); compiled in one pass for float64
        CPU states and shared slopes when numba is installed."""
        if compiled.AVAILABLE and state.device.type == "cpu" and state.dtype == torch.float64 and self.slopes.dim() == 1:
            return torch.from_numpy(compiled.gather_pieces(state.contiguous().numpy(), parent.numpy(), code.numpy(),
                                                           self.slopes.numpy(), self.intercepts.numpy(),
                                                           self.has_intercepts))
        return self.push(state.index_select(0, parent), code, inplace=True)

    def forward(self, x):
        slope, intercept = self.apply_code(x, self.above(x))
        return slope * x + intercept

    def code(self, x):
        return self.above(x.reshape(len(x), -1)).reshape(len(x), -1)

    def ambiguous(self, x, atol):
        flat = x.reshape(len(x), -1)
        return ((flat[..., None] - self.breakpoints.to(flat)).abs() <= atol).reshape(len(x), -1)

    def split(self, cells, z: torch.Tensor, ctx: SplitContext) -> Split:
        """Cut each region (cells of any dimension d, see :mod:`splinecam.geometry.cells`) by
        the planes of the (unit, breakpoint) pairs that cross it; z: (R, 1 + d, *shape).

        A unit whose range over the region stays within tolerance of a side keeps that side;
        one flat on its breakpoint (a dead unit) reads its side at the centroid; the crossing
        ones cut the region (:func:`~splinecam.geometry.split_cells`), and each piece's code
        comes from the sides the cuts recorded.  For polygons in float64 on the CPU with numba
        installed, the split runs compiled, region by region, depth first
        (:func:`~splinecam.geometry.split_at_breakpoints`), and so does it for intervals
        (:func:`~splinecam.geometry.split_intervals_at_breakpoints`); otherwise with torch, making the
        codes chunk by chunk.  Either way it is bounded by the budget (and the compiled call by
        its work bound): the pieces it has not finished come back as ``Split.rest``.
        """
        shape = z.shape[2:]
        r, units, rows = len(cells), math.prod(shape), z.shape[1]
        z = z.reshape(r, rows, units)
        bps = self.breakpoints.to(z)

        fast = breakpoint_split(cells, z, bps, ctx.extent, ctx.rtol, ctx.layer, ctx.budget)
        if fast is not None:
            pieces, parent, code, rest, rest_parent = fast
            ctx.check(len(pieces) + len(rest))

            def apply(zc: torch.Tensor, sel: torch.Tensor, inplace: bool):
                m = len(sel)
                out = self.push(zc.reshape(m, rows, units), code[sel], inplace=inplace).reshape(m, rows, *shape)
                return out, pack_bits(code[sel].reshape(m, -1))

            def gather(zr: torch.Tensor, sel: torch.Tensor):
                m = len(sel)
                whole = m == len(code)  # the one chunk: sel is all the pieces, in order
                chunk_code = code if whole else code[sel]
                out = self.push_pieces(zr.reshape(len(zr), rows, units), parent if whole else parent[sel], chunk_code)
                return out.reshape(m, rows, *shape), torch.from_numpy(np.packbits(chunk_code.reshape(m, -1).numpy(), axis=1))

            return Split(pieces, parent, apply, rest, rest_parent, gather)

        hi, lo = cells.extremes(z)
        tol = self._tolerance(z, bps, ctx.extent, ctx.rtol)  # (R, U, k)
        above = (hi[..., None] - bps) > tol
        below = (lo[..., None] - bps) < -tol
        code = above.clone()  # (R, U, k); crossing units are fixed per piece below
        flat = torch.nonzero(~above & ~below, as_tuple=True)  # constant on the region (dead units)
        if flat[0].numel():
            reg, u = flat[0], flat[1]
            code[flat] = above_at_centroids(cells, reg, z[reg, :, u], bps[flat[2]])
        region, unit, bp = torch.nonzero(above & below, as_tuple=True)
        planes = torch.cat([z[region, 1:, unit], (z[region, 0, unit] - bps[bp])[:, None]], 1)  # (L, d + 1)
        res, sides = split_crossing(cells, region, unit, planes, tol[region, unit, bp], ctx)

        def codes_of(sel: torch.Tensor) -> torch.Tensor:
            """(m, U, k) codes of the pieces ``sel`` (see :func:`split_crossing`)."""
            piece, plane, value = sides(sel)
            out = code[res.parent[sel]]
            out[piece, unit[plane], bp[plane]] = value
            return out

        def apply(zc: torch.Tensor, sel: torch.Tensor, inplace: bool):
            m = len(sel)
            chunk_code = codes_of(sel)
            out = self.push(zc.reshape(m, rows, units), chunk_code, inplace=inplace).reshape(m, rows, *shape)
            return out, pack_bits(chunk_code.reshape(m, -1))

        return Split(res.pieces, res.parent, apply, res.rest, res.rest_parent)

    def _tolerance(self, z: torch.Tensor, bps: torch.Tensor, extent: torch.Tensor, rtol: float) -> torch.Tensor:
        """(R, U, k) on-plane tolerance of the planes ``z - breakpoint`` (z (R, 1 + d, U))."""
        return plane_tolerance(z[:, 1:, :, None].unbind(1), z[:, 0, :, None] - bps, extent, rtol)

    def straddles(self, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        """(R, U) bool: units whose bounds ``[lo, hi]`` (R, U) hold a breakpoint strictly inside."""
        bps = self.breakpoints.to(lo)
        return ((lo[..., None] < bps) & (bps < hi[..., None])).any(-1)

    def relax_cost(self, lo, hi):
        return self.straddles(lo, hi).sum(1)

    def linear_relaxation(self, lo, hi, shape):
        """A unit stays exact where its bounds ``[l, h]`` over the cell hold no breakpoint
        strictly inside; otherwise ``y = lam * z + mid + rad * eps_new`` with ``lam`` the chord
        slope ``(f(h) - f(l)) / (h - l)`` and ``[mid - rad, mid + rad]`` the range of
        ``f(z) - lam * z`` on ``[l, h]`` (attained at the ends or at breakpoints)."""
        r = len(lo)
        inside = self.straddles(lo, hi)  # a breakpoint inside: relax
        if self.is_relu:  # the chord from (l, 0) to (h, h): y = lam * z - lam * l / 2 +- lam * l / 2
            lam = torch.where(inside, hi / torch.where(inside, hi - lo, torch.ones_like(lo)), (lo >= 0).to(lo))
            rad = torch.where(inside, -lam * lo / 2 * (1 + SLACK), torch.zeros_like(lo))
            return Relaxation(lam, rad, rad, shape)

        def f(z):
            return self.forward(z.reshape(r, *shape)).reshape(r, -1)

        mid = (lo + hi) / 2
        slope, intercept = self.apply_code(mid.reshape(r, *shape), self.above(mid.reshape(r, *shape)))
        ends = [torch.minimum(torch.maximum(b, lo), hi) for b in self.breakpoints.to(lo)]
        lam, shift, rad = chord_relaxation(f, lo, hi, ends, inside, slope.reshape(r, -1), intercept.reshape(r, -1))
        return Relaxation(lam, shift, rad, shape)

    def crossing_lines(self, z, polys, extent, rtol):
        """The (unit, breakpoint) lines that cross the region."""
        z = z.reshape(1, 3, -1)
        bps = self.breakpoints.to(z)
        hi, lo = polys.extremes(z)
        tol = self._tolerance(z, bps, extent, rtol)
        cross = ((hi[..., None] - bps) > tol) & ((lo[..., None] - bps) < -tol)
        unit, bp = torch.nonzero(cross[0], as_tuple=True)
        return torch.stack([z[0, 1, unit], z[0, 2, unit], z[0, 0, unit] - bps[bp]], 1)


def value_at(planes: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(n,) the planes (n, d + 1) ``a . t + c`` at the points (n, d)."""
    value = planes[:, 0] * points[:, 0]
    for i in range(1, points.shape[1]):
        value = value + planes[:, i] * points[:, i]
    return value + planes[:, -1]


def above_at_centroids(cells, region: torch.Tensor, maps: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """(n,) bool: whether the affine functions ``maps`` (n, 1 + d) (value at the chart origin, then
    the gradient) lie above ``level`` (n,) at the centroids of the cells ``region`` (n,) (a unit
    flat on a level within tolerance over its whole cell reads its side there)."""
    return value_at(torch.cat([maps[:, 1:], maps[:, :1]], 1), cells.centroids()[region]) > level


def split_crossing(cells, region: torch.Tensor, unit: torch.Tensor, planes: torch.Tensor, tol: torch.Tensor,
                   ctx: SplitContext):
    """Cut the cells (any dimension d, see :mod:`splinecam.geometry.cells`) by the planes (L, d + 1)
    ``a . t + c`` (``c``: the unit's value less the level it crosses) of units ``unit`` (L,) that
    cross regions ``region`` (L,) (sorted), each with its on-plane tolerance ``tol`` (L,); the rule
    both elementwise split ops share.

    Returns the split (:func:`~splinecam.geometry.split_cells`) and ``sides(sel)``: for the finished
    pieces ``sel`` (m,), one entry (piece in [0, m), plane, above) per piece and plane of its region,
    ``above`` whether the piece lies above the plane's level; each piece lies on one side of every
    plane that crossed its region (recorded by the cuts); only a piece flat on a plane within
    tolerance reads the side at its centroid.
    """
    plane_units = torch.stack([torch.full_like(unit, ctx.layer), unit], 1)
    ctx.check(len(cells) + region.numel())  # each crossing plane adds a piece
    res = split_cells(cells, region, planes, tol, plane_units, ctx.check, ctx.budget)

    def sides(sel: torch.Tensor):
        piece, plane, side = res.sides_of(sel)
        on_plane = side == 0
        value = side > 0
        cen = res.pieces.select(sel)[0].centroids()[piece[on_plane]]
        value[on_plane] = value_at(planes[plane[on_plane]], cen) > 0
        return piece, plane, value

    return res, sides


def chord_relaxation(f, lo: torch.Tensor, hi: torch.Tensor, ends: list[torch.Tensor], inside: torch.Tensor,
                     slope: torch.Tensor, intercept: torch.Tensor):
    """``(lam, shift, rad)`` (each (R, U)) of a piecewise-linear ``f`` over the bounds ``[lo, hi]``:
    where ``inside`` (a breakpoint strictly inside), ``lam`` is the chord slope ``(f(hi) - f(lo)) /
    (hi - lo)`` and ``[shift - rad, shift + rad]`` the range of ``f(z) - lam * z`` on ``[lo, hi]``,
    attained at the ends or at the breakpoints ``ends`` (each (R, U), clamped to ``[lo, hi]``: every
    breakpoint in it must be among them); elsewhere exactly ``slope`` and ``intercept``, rad 0."""
    f_lo, f_hi = f(lo), f(hi)
    width = torch.where(inside, hi - lo, torch.ones_like(lo))
    chord = (f_hi - f_lo) / width
    dev = torch.stack([f_lo - chord * lo, f_hi - chord * hi] + [f(e) - chord * e for e in ends])
    d_lo, d_hi = dev.amin(0), dev.amax(0)
    rad = (d_hi - d_lo) / 2
    rad = rad + SLACK * (d_hi.abs() + d_lo.abs() + chord.abs() * (hi.abs() + lo.abs()))
    lam = torch.where(inside, chord, slope)
    shift = torch.where(inside, (d_hi + d_lo) / 2, intercept)
    return lam, shift, torch.where(inside, rad, torch.zeros_like(rad))


def clamp_op(lo: float | None, hi: float | None) -> ElementwiseOp:
    """``clamp(z, lo, hi)`` (either bound may be None)."""
    if lo is None and hi is None:
        raise Unsupported("clamp without bounds")
    if lo is not None and hi is not None:
        if lo > hi:
            raise Unsupported(f"clamp with min {lo} > max {hi}")
        return ElementwiseOp([lo, hi], [0.0, 1.0, 0.0], [lo, 0.0, hi])
    if lo is not None:
        return ElementwiseOp([lo], [0.0, 1.0], [lo, 0.0])
    return ElementwiseOp([hi], [1.0, 0.0], [0.0, hi])


def leaky_relu_op(slope) -> ElementwiseOp:
    """``max(z, 0) + slope * min(z, 0)``; ``slope`` a number or (C,) per channel (PReLU)."""
    slope = torch.as_tensor(slope, dtype=torch.float64).detach().reshape(-1)
    if slope.numel() == 1:
        return ElementwiseOp([0.0], [float(slope), 1.0], [0.0, 0.0])
    return ElementwiseOp([0.0], torch.stack([slope, torch.ones_like(slope)]), torch.zeros(2, slope.numel()))


def relu_op() -> ElementwiseOp:
    """``max(z, 0)``."""
    return ElementwiseOp([0.0], [0.0, 1.0], [0.0, 0.0])


def abs_op() -> ElementwiseOp:
    """``|z|``."""
    return ElementwiseOp([0.0], [-1.0, 1.0], [0.0, 0.0])
