"""Max-type ops (max-pooling, maxout, max of activations) and their split rule: a region
(a polygon, a polyhedron, or an interval of a polyline's leg) splits into the cells where one
candidate of each output unit wins."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch.nn import functional as F

from ..geometry import Polygons, bsp, max_cells, plane_tolerance, possible_winners
from .base import PIECE_BYTES, Split, SplitContext, SplitOp, pack_bits
from .forms import SLACK, Relaxation

__all__ = ["DimMaxOp", "MaxOp", "PoolMaxOp"]

_BLOCK_ELEMENTS = 1 << 24  # vertex x window x candidate evaluations held at once
_PAIR_BYTES = 256  # bytes held per pending (piece, window) pair during a split


class MaxOp(SplitOp):
    """Max over groups of units: output unit o is the max of the input units
    ``index[o, j]`` (C-order flat index within one sample; -1 = no candidate).

    Subclasses give the groups through :meth:`windows`.  Activation code: per
    output unit, the slot j of the winning candidate as ``bits_per_unit``
    binary digits, most significant first.
    """

    relaxable = True
    volumes = intervals = True  # max cells of polygons, polyhedra and intervals (geometry.max_cells)

    def windows(self, in_shape: tuple[int, ...]) -> tuple[torch.Tensor, tuple[int, ...]]:
        """(index (O, k) int64, out_shape) for inputs of one sample of shape ``in_shape``."""
        raise NotImplementedError

    @staticmethod
    def bits_per_unit(k: int) -> int:
        return (k - 1).bit_length()

    def layer_size(self, in_shape):
        index, _ = self.windows(tuple(in_shape))
        n_out, k = index.shape
        return n_out, n_out * self.bits_per_unit(k)

    def candidates(self, x: torch.Tensor) -> torch.Tensor:
        """(B, O, k) candidate values of a batch (-inf where there is none)."""
        index, _ = self.windows(tuple(x.shape[1:]))
        index = index.to(x.device)
        flat = x.reshape(len(x), -1)
        padded = torch.cat([flat, torch.full_like(flat[:, :1], -torch.inf)], 1)
        return padded[:, torch.where(index >= 0, index, flat.shape[1])]

    def forward(self, x):
        _, out_shape = self.windows(tuple(x.shape[1:]))
        return self.candidates(x).amax(-1).reshape(len(x), *out_shape)

    def winner_bits(self, winner: torch.Tensor, k: int) -> torch.Tensor:
        """(B, O) winning slots -> (B, O * bits_per_unit) bool code."""
        nb = self.bits_per_unit(k)
        shifts = torch.arange(nb - 1, -1, -1, device=winner.device)
        return ((winner.long()[..., None] >> shifts) & 1).bool().reshape(len(winner), -1)

    def code(self, x):
        cand = self.candidates(x)
        return self.winner_bits(cand.argmax(-1), cand.shape[-1])

    def ambiguous(self, x, atol):
        """All bits of an output unit whose two best candidates are within ``atol``."""
        cand = self.candidates(x)
        k = cand.shape[-1]
        if k < 2:
            return torch.zeros(len(x), 0, dtype=torch.bool, device=x.device)
        top = cand.topk(2, dim=-1).values
        tie = (top[..., 0] - top[..., 1]) <= atol
        return tie[..., None].expand(*tie.shape, self.bits_per_unit(k)).reshape(len(x), -1)

    def split(self, polys: Polygons, z: torch.Tensor, ctx: SplitContext) -> Split:
        """Windows whose winner is the same at every vertex of a region are settled at once;
        the others go to a BSP over windows: each round gives every piece the cells of its
        next unsettled window, then settles the windows with one possible winner left.
        Edges get the units (layer, output unit); the code is the winner's slot."""
        key = ("windows", id(self), tuple(z.shape[2:]))
        if key not in ctx.cache:
            index, out_shape = self.windows(tuple(z.shape[2:]))
            ctx.cache[key] = (index.to(z.device), out_shape)
        index, out_shape = ctx.cache[key]
        n_out, k = index.shape
        valid = index >= 0
        safe = index.clamp_min(0)
        rows = z.shape[1]  # 1 + d: a state's value and its d derivatives (polygons or polyhedra)
        lines = z.reshape(len(polys), rows, -1)[:, list(range(1, rows)) + [0]]  # rows (d/du, ..., value)
        winner, unsettled = _settled_winners(polys, lines, safe, valid, ctx)
        region, window = torch.nonzero(unsettled, as_tuple=True)

        def funcs_of(origin, window):
            """(n, k, 3) candidate functions of window ``window`` (n,) in region ``origin`` (n,)."""
            at = torch.arange(rows, device=lines.device)[None, :, None]
            return lines[origin[:, None, None], at, safe[window][:, None, :]].transpose(1, 2)

        def step(pieces, window, win, origin):
            units = torch.stack([torch.full_like(window, ctx.layer), window], 1)
            mc = max_cells(pieces, funcs_of(origin, window), ctx.rtol, ctx.extent, valid[window], units)
            win = win[mc.parent]
            win[torch.arange(len(mc.parent), device=win.device), window[mc.parent]] = mc.winner.to(win.dtype)
            return mc.cells, mc.parent, win

        def settle(children, piece, window, win, origin):
            possible = possible_winners(children.select(piece)[0], funcs_of(origin[piece], window), ctx.rtol,
                                        ctx.extent, valid[window])
            single = possible.sum(1) == 1
            win[piece[single], window[single]] = possible[single].to(torch.int8).argmax(1).to(win.dtype)
            return ~single, win

        per_piece = getattr(polys, "piece_bytes", PIECE_BYTES) + n_out * winner.element_size()  # its cell and winners

        def fits(n_pieces: int) -> bool:  # half the budget for the pieces, half for the pairs
            return n_pieces * per_piece <= ctx.budget // 2

        pieces, parent, winner, open_ = bsp(polys, region, window, winner, step, settle, ctx.check, fits,
                                            ctx.budget // 2 // _PAIR_BYTES)
        rest, parent_of_rest = pieces.mask(open_), parent[open_]
        done = torch.nonzero(~open_).flatten()
        pieces, parent, winner = pieces.select(done)[0], parent[done], winner[done]

        def apply(zc: torch.Tensor, sel: torch.Tensor, inplace: bool):
            m = len(sel)
            chosen = safe[torch.arange(n_out, device=sel.device), winner[sel].long()]  # (m, O) input unit
            out = zc.reshape(m, rows, -1).gather(2, chosen[:, None, :].expand(-1, rows, -1))
            return out.reshape(m, rows, *out_shape), pack_bits(self.winner_bits(winner[sel], k))

        return Split(pieces, parent, apply, rest, parent_of_rest)

    def linear_relaxation(self, lo, hi, shape):
        """Output o is the candidate ``j`` with the highest lower bound, exactly when it beats
        every other candidate's upper bound, else ``z_j + [0, H - l_j]`` (``H`` the highest
        upper bound)."""
        index, out_shape = self.windows(shape)
        index = index.to(lo.device)
        valid = index >= 0
        safe = index.clamp_min(0)
        c_lo = lo[:, safe].masked_fill(~valid, -torch.inf)  # (R, O, k)
        c_hi = hi[:, safe].masked_fill(~valid, -torch.inf)
        best = c_lo.argmax(-1, keepdim=True)  # (R, O, 1)
        best_lo = c_lo.gather(-1, best)[..., 0]
        others_hi = c_hi.scatter(-1, best, -torch.inf).amax(-1)
        top_hi = torch.maximum(others_hi, c_hi.gather(-1, best)[..., 0])
        gap = torch.where(best_lo >= others_hi, torch.zeros_like(best_lo), top_hi - best_lo)
        chosen = safe[torch.arange(index.shape[0], device=lo.device)[None], best[..., 0]]  # (R, O) input unit
        half = gap / 2 * (1 + SLACK)
        return Relaxation(torch.ones_like(half), half, half, out_shape, chosen)


def _settled_winners(polys: Polygons, lines: torch.Tensor, safe: torch.Tensor, valid: torch.Tensor,
                     ctx: SplitContext) -> tuple[torch.Tensor, torch.Tensor]:
    """Per region and window: the lowest candidate that is (within tolerance) the max at every
    vertex, and whether there is none.  lines (R, 1 + d, N); safe, valid (O, k).  Returns (R, O) x2.

    Most windows of a small region are settled by the candidates' bounds over the region's
    bounding box: a candidate whose lower bound is within half the tolerance of the highest
    upper bound is the max (within tolerance) at every vertex, and one whose upper bound is
    below another's lower bound by more than 1.5 times the tolerance is not (half the
    tolerance to spare for rounding); where the first candidate that is not surely out is
    surely in, it is the winner, and only the other windows are evaluated at the vertices."""
    h = polys.homogeneous_padded()
    r, vmax, rows = h.shape
    n_out, k = safe.shape
    dtype = torch.int8 if k < 128 else torch.int32
    low, high = h[..., :-1].amin(1), h[..., :-1].amax(1)  # (R, d): the bounding boxes
    mid, half = ((low + high) / 2)[..., None], ((high - low) / 2)[..., None]
    winners, unsettled = [], []
    step = max(1, _BLOCK_ELEMENTS // max(1, 4 * n_out * k))
    padded = not bool(valid.all())  # windows with fewer candidates than k (padding): mask the missing ones
    for s in range(0, r, step):
        unit = lines[s : s + step]  # (r, 1 + d, N): the slopes, then the value
        slopes = unit[:, :-1].unbind(1)
        centre, radius = unit[:, -1].clone(), torch.zeros_like(unit[:, -1])
        for i, a in enumerate(slopes):
            centre += a * mid[s : s + step, i]
            radius += a.abs() * half[s : s + step, i]
        size = plane_tolerance(slopes, unit[:, -1], ctx.extent, 1.0)[:, safe]  # (r, O, k) per candidate
        low, high = (centre - radius)[:, safe], (centre + radius)[:, safe]  # bounds over the box
        if padded:
            size, low, high = size.masked_fill(~valid, 0), low.masked_fill(~valid, -torch.inf), high.masked_fill(~valid, -torch.inf)
        tol = 2 * ctx.rtol * size.amax(-1, keepdim=True)  # (r, O, 1)
        surely_in = low >= _highest_of_others(high) - tol / 2  # within tolerance of the max everywhere
        surely_out = low.amax(-1, keepdim=True) > high + 1.5 * tol  # below another by more than it everywhere
        if padded:
            surely_in, surely_out = surely_in & valid, surely_out | ~valid
        first_in = surely_in.to(torch.int8).argmax(-1)
        known = surely_in.any(-1) & ((~surely_out).to(torch.int8).argmax(-1) == first_in)  # those before it: out
        tol = tol[..., 0]
        winner, open_ = first_in.to(dtype), torch.zeros_like(tol, dtype=torch.bool)
        region, window = torch.nonzero(~known, as_tuple=True)
        if len(region):
            at = torch.arange(rows, device=unit.device)[None, :, None]
            funcs = unit[region[:, None, None], at, safe[window][:, None, :]]  # (n, 1 + d, k)
            vals = torch.einsum("nvj,njk->nvk", h[s + region], funcs)
            if padded:
                vals = vals.masked_fill(~valid[window, None], -torch.inf)
            top = vals.amax(-1, keepdim=True)
            wins = (vals >= top - tol[region, window, None, None]).all(1)  # (n, k)
            if padded:
                wins &= valid[window]
            winner[region, window] = wins.to(torch.int8).argmax(-1).to(dtype)
            open_[region, window] = ~wins.any(-1)
        winners.append(winner)
        unsettled.append(open_)
    return torch.cat(winners), torch.cat(unsettled)


def _highest_of_others(x: torch.Tensor) -> torch.Tensor:
    """(..., k): for each j, the max of x (..., k) over the entries other than j (-inf if k = 1)."""
    if x.shape[-1] == 1:
        return torch.full_like(x, -torch.inf)
    top, index = x.topk(2, dim=-1)
    first = torch.arange(x.shape[-1], device=x.device) == index[..., :1]
    return torch.where(first, top[..., 1:], top[..., :1])


class DimMaxOp(MaxOp):
    """Max over the per-sample dims ``dims`` (all of them when None), as
    ``amax(dims, keepdim)`` / ``max(dim).values`` / maxout."""

    def __init__(self, dims=None, keepdim: bool = False):
        self.dims, self.keepdim = dims, keepdim

    def windows(self, in_shape):
        n = len(in_shape)
        dims = range(n) if self.dims is None else [d - 1 if d > 0 else d + n for d in self.dims]
        dims = sorted(set(int(d) for d in dims))
        if any(not 0 <= d < n for d in dims):
            raise ValueError("max over the batch dimension mixes samples")
        rest = [d for d in range(n) if d not in dims]
        idx = torch.arange(math.prod(in_shape)).reshape(in_shape).permute(*rest, *dims)
        k = math.prod(in_shape[d] for d in dims)
        out_shape = tuple(1 if (d in dims) else in_shape[d] for d in range(n)) if self.keepdim else tuple(in_shape[d] for d in rest)
        return idx.reshape(-1, k), out_shape


class PoolMaxOp(MaxOp):
    """Max-pooling (1-D or 2-D; any kernel, stride, padding, dilation, ceil_mode)."""

    def __init__(self, pool: Callable[[torch.Tensor], torch.Tensor], ndim: int, kernel, stride, padding, dilation):
        self.pool, self.ndim = pool, ndim
        tup = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v,) * ndim  # noqa: E731
        self.kernel, self.padding, self.dilation = tup(kernel), tup(padding), tup(dilation)
        self.stride = tup(stride if stride not in (None, ()) else kernel)

    def forward(self, x):
        return self.pool(x)

    def windows(self, in_shape):
        out_shape = tuple(self.pool(torch.zeros(1, *in_shape, dtype=torch.float64)).shape[1:])
        spatial_in, spatial_out = in_shape[-self.ndim:], out_shape[-self.ndim:]
        ids = torch.arange(1, math.prod(in_shape) + 1, dtype=torch.float64).reshape(1, -1, *spatial_in)
        pad = []
        for d in reversed(range(self.ndim)):  # F.pad lists the last dim first; extra right room for ceil_mode
            need = (spatial_out[d] - 1) * self.stride[d] + self.dilation[d] * (self.kernel[d] - 1) + 1
            pad += [self.padding[d], max(0, need - spatial_in[d] - self.padding[d])]
        ids = F.pad(ids, pad)
        if self.ndim == 1:
            ids = ids[:, :, None]
        kernel, dil, stride = ((1,) + t if self.ndim == 1 else t for t in (self.kernel, self.dilation, self.stride))
        cols = F.unfold(ids.reshape(-1, 1, *ids.shape[2:]), kernel, dilation=dil, stride=stride)
        k = cols.shape[1]
        n_out = [(ids.shape[2 + j] - dil[j] * (kernel[j] - 1) - 1) // stride[j] + 1 for j in range(2)]
        cols = cols.reshape(-1, k, *n_out)[:, :, : (spatial_out[0] if self.ndim == 2 else 1), : spatial_out[-1]]
        index = cols.permute(0, 2, 3, 1).reshape(-1, k).round().long() - 1
        return index, out_shape
