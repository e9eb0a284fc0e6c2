"""Affine ops: each maps the value of a state with its bias and the tangents with its linear part."""

from __future__ import annotations

import copy
import math
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from .base import AffineOp

__all__ = ["ChannelAffineOp", "ConvOp", "FunctionOp", "LinearOp", "ModuleLinearOp"]


PULL_ELEMENTS = 1 << 24  # numbers of a chain's values at once while LinearOp.absorb composes it (128 MiB in float64)
SPARSE_ELEMENTS = 1 << 18  # numbers of a block of a weight's gathered columns in a sparse product (2 MiB in float64)
UNFOLD_ELEMENTS = 1 << 22  # numbers of the unfolded input of one matrix product of a ConvOp (32 MiB in float64)
GEMM_POSITIONS = 64  # a 2-d ConvOp with at most this many output positions (8x8) pushes by unfold + matrix products
GEMM_DEPTH = 576  # ... and so does one whose kernel reads at least this many inputs (3x3 x 64 channels) a position
MATRIX_ELEMENTS = 1 << 23  # largest dense matrix of a ConvOp on a small input (64 MiB in float64)
LIVE_SHARE = 0.75  # a product skips the inputs that are zero in every row when at most this share is left
LIVE_OUTPUTS = 64  # ... and the weight has at least this many rows (else checking costs as much as it saves)


def live_product(op, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``F.linear(x, weight)`` (x (B, K), weight (N, K)) over only the columns of x that are not
    zero in every row: after a ReLU, the inactive units of all the regions of a batch (on a small
    slice about half of them, nearly the same in every region) are exact zeros, whose products
    add nothing.  The weight's live columns are kept on the op (for its weight, the union of the
    columns live so far, gathered again only when a batch brings a new one)."""
    if len(weight) < LIVE_OUTPUTS:
        return F.linear(x, weight)
    live = (x != 0).any(0)
    held = op.__dict__.get("_live")
    if held is not None and held[0] is weight and not (live & ~held[1]).any():
        return F.linear(x[:, held[2]], held[3])
    if held is not None and held[0] is weight:
        live = live | held[1]
    index = torch.nonzero(live).flatten()
    if len(index) > LIVE_SHARE * x.shape[1]:
        return F.linear(x, weight)
    held = op._live = (weight, live, index, weight[:, index].contiguous())
    return F.linear(x[:, index], held[3])


def absolute_weight(op) -> torch.Tensor:
    """``op.weight.abs()``, kept on the op for as long as its weight is the same tensor."""
    held = op.__dict__.get("_absolute")
    if held is None or held[0] is not op.weight:
        held = op._absolute = (op.weight, op.weight.abs())
    return held[1]


class LinearOp(AffineOp):
    """``y = x @ weight.T + bias`` on the last dim of the inputs (B, ..., in), or, if ``flat``,
    on the inputs (B, *shape) flattened to (B, in).  weight: (out, in); bias: (out,) or None."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, flat: bool = False):
        self.weight, self._bias, self.flat = weight, bias, flat

    def linear(self, x):
        x = x.flatten(1) if self.flat else x
        return live_product(self, x.reshape(-1, x.shape[-1]), self.weight).reshape(*x.shape[:-1], len(self.weight))

    def bias(self):
        return self._bias

    def cost(self, in_shapes, out_shape):
        return math.prod(out_shape) * self.weight.shape[1]

    def magnitude(self, r):
        return F.linear(r.flatten(1) if self.flat else r, absolute_weight(self))

    def then(self, nxt, shape):
        """Followed by a per-feature affine map (BatchNorm1d on (B, out)): rows scaled."""
        if not isinstance(nxt, ChannelAffineOp) or len(shape) != 1 or nxt.scale.numel() != shape[0]:
            return None
        bias = nxt.shift if self._bias is None else self._bias * nxt.scale + nxt.shift
        return LinearOp(self.weight * nxt.scale[:, None], bias, self.flat)

    def absorbs(self, shape):
        return self.flat or len(shape) == 1

    def absorb(self, ops, shape):
        """A flat LinearOp on inputs (B, *shape): its weight is this op's times the ops' linear
        parts, its bias the whole chain at zero.  Where the chain's values on a basis of the
        inputs are few (at most ``PULL_ELEMENTS`` numbers), its matrix is read off the basis
        and multiplied in (as a sparse one: each column a gather); else the weight's rows are
        pulled back through the transposed chain (``torch.func.vjp``), in blocks of rows that
        keep each value of the chain within ``PULL_ELEMENTS`` numbers."""
        values = [self.weight.new_zeros(1, *shape)]
        for op in ops:
            values.append(op.forward(values[-1]))
        bias = self.forward(values[-1])[0]

        def chain(x):
            for op in ops:
                x = op.linear(x)
            return x

        size = math.prod(shape)
        widest = max(v.numel() for v in values)
        if size * widest <= PULL_ELEMENTS:
            basis = torch.eye(size, dtype=self.weight.dtype, device=self.weight.device).reshape(size, *shape)
            weight = _times_transposed(self.weight, chain(basis).reshape(size, -1))
        else:
            rows = max(1, PULL_ELEMENTS // widest)
            cotangents = self.weight.reshape(len(self.weight), *values[-1].shape[1:])
            blocks = []
            for s in range(0, len(cotangents), rows):
                w = cotangents[s : s + rows]
                _, pull = torch.func.vjp(chain, values[0].expand(len(w), *shape))
                blocks.append(pull(w)[0].reshape(len(w), -1))
            weight = torch.cat(blocks)
        return LinearOp(weight, bias if bias.any() else None, flat=len(shape) != 1)


def _times_transposed(weight: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """weight (out, mid) @ m.T for m (n, mid): as a sparse product where m is mostly zeros (a
    pool's or a reshape's matrix: each of weight's columns added, scaled, into one or a few
    output columns, in blocks of rows of ``SPARSE_ELEMENTS`` numbers, which stay in cache), else
    dense."""
    k, j = m.nonzero(as_tuple=True)
    if 8 * len(k) > m.numel():
        return weight @ m.T
    scale = m[k, j]
    out = weight.new_zeros(len(weight), len(m))
    rows = max(1, SPARSE_ELEMENTS // max(len(k), 1))
    for s in range(0, len(weight), rows):
        out[s : s + rows].index_add_(1, k, weight[s : s + rows].index_select(1, j).mul_(scale))
    return out


class ChannelAffineOp(AffineOp):
    """``y = x * scale + shift`` per channel (dim 1 of a batch): eval-mode BatchNorm.

    scale, shift: (C,); the inputs (B, C, *spatial) may have any number of spatial dims."""

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor):
        self.scale, self.shift = scale, shift

    @staticmethod
    def _per_channel(t: torch.Tensor, ndim: int) -> torch.Tensor:
        return t.reshape(t.shape + (1,) * (ndim - 2))

    def linear(self, x):
        return x * self._per_channel(self.scale, x.dim())

    def offset(self, ndim):
        return self._per_channel(self.shift, ndim)

    def magnitude(self, r):
        return r * self._per_channel(self.scale.abs(), r.dim())

    def cost(self, in_shapes, out_shape):
        return math.prod(out_shape)

    def then(self, nxt, shape):
        """Followed by another per-channel affine map of the same channels."""
        if not isinstance(nxt, ChannelAffineOp) or nxt.scale.shape != self.scale.shape:
            return None
        return ChannelAffineOp(self.scale * nxt.scale, self.shift * nxt.scale + nxt.shift)


class ModuleLinearOp(AffineOp):
    """A linear module without bias, applied as it is (e.g. ``nn.Flatten``); ``nonnegative``:
    whether its coefficients are all >= 0 (a reshape, a pad, an average pool), so that it is
    its own :meth:`magnitude`."""

    def __init__(self, module: nn.Module, nonnegative: bool = False):
        self.module, self.nonnegative = module, nonnegative

    def linear(self, x):
        return self.module(x)

    def magnitude(self, r):
        return self.module(r) if self.nonnegative else None



class FunctionOp(AffineOp):
    """An affine function of one or more activations: ``fn(*xs) + bias``.

    fn: linear in its inputs, acting on batches (B, *shape_i) -> (B, *shape_out);
    bias: (*shape_out) or None.
    """

    def __init__(self, fn: Callable[..., torch.Tensor], bias: torch.Tensor | None = None, nonnegative: bool = False):
        self.fn, self._bias, self.nonnegative = fn, bias, nonnegative

    def linear(self, *xs):
        return self.fn(*xs)

    def magnitude(self, *r):
        """``fn`` itself where its coefficients are all >= 0 (``nonnegative``: sums, means,
        reshapes, concatenations), else unknown."""
        return self.fn(*r) if self.nonnegative else None

    def bias(self):
        return self._bias


class ConvOp(AffineOp):
    """``nn.Conv1d`` / ``nn.Conv2d`` with any stride, padding (mode), dilation, groups; its weight
    (C_out, C_in / groups, *kernel) and bias (C_out,) or None are the module's unless composed
    (:meth:`then`)."""

    def __init__(self, conv: nn.modules.conv._ConvNd):
        self.conv = conv
        self.weight = conv.weight.detach()
        self._bias = None if conv.bias is None else conv.bias.detach()

    def linear(self, x):
        return self.lowered(x, self.lowering(x.shape[2:]))

    def magnitude(self, r):
        return self.conv._conv_forward(r, absolute_weight(self), None)

    def lowering(self, size: tuple) -> str:
        """How :meth:`linear` computes the conv on inputs of spatial size ``size``: the way
        measured fastest in float64 on a CPU core (``python -m benchmarks.conv_push``).  Torch's
        conv ("torch") multiplies one sample's unfolded input at a time, slow on small maps;
        "gemm" multiplies the unfolded inputs of many samples at once (on small maps, or where
        the kernel reads many inputs a position; skipping the padding's zeros); "matrix", where the
        input has no more positions than the kernel has taps, multiplies the flattened inputs
        by the dense matrix of the whole conv (which skips the padding's zeros).  Off the CPU,
        and for 1-d, grouped (but for "matrix"), "same"-padded or non-zero-padded convs: torch."""
        conv, w = self.conv, self.weight
        if w.dim() != 4 or conv.padding_mode != "zeros" or isinstance(conv.padding, str) or w.device.type != "cpu":
            return "torch"
        out, taps = self.out_size(size), math.prod(w.shape[2:])
        if (math.prod(size) * conv.groups <= taps
                and len(w) * math.prod(out) * w.shape[1] * conv.groups * math.prod(size) <= MATRIX_ELEMENTS):
            return "matrix"
        return "gemm" if (math.prod(out) <= GEMM_POSITIONS or w[0].numel() >= GEMM_DEPTH) and conv.groups == 1 else "torch"

    def lowered(self, x: torch.Tensor, how: str) -> torch.Tensor:
        """The linear part on x (B, C_in, *size) computed the way ``how`` (see :meth:`lowering`;
        "gemm" and "matrix" only where :meth:`lowering` may choose them, or "matrix" for any
        groups)."""
        if how == "torch":
            return self.conv._conv_forward(x, self.weight, None)
        size, w = tuple(x.shape[2:]), self.weight
        held = self.__dict__.get("_lowered")
        if held is None or held[0] is not w:  # kept on the op for as long as its weight is the same tensor
            held = self._lowered = (w, {})
        data = held[1].get((size, how))
        if data is None:
            data = held[1][size, how] = self._matrix(size) if how == "matrix" else self._cells(size)
        if how == "matrix":
            return live_product(self, x.flatten(1), data).reshape(len(x), len(w), *self.out_size(size))
        return self._unfolded(x, data)

    def out_size(self, size: tuple) -> tuple:
        """The output's spatial size on inputs of spatial size ``size`` (zero padding)."""
        c, k = self.conv, self.weight.shape[2:]
        return tuple((n + 2 * p - d * (m - 1) - 1) // s + 1 for n, p, d, m, s in zip(size, c.padding, c.dilation, k, c.stride))

    def _matrix(self, size: tuple) -> torch.Tensor:
        """The conv's linear part as a matrix (C_out * H' * W', C_in * H * W) on inputs (C_in, H, W)."""
        c, w, out = self.conv, self.weight, self.out_size(size)
        co, ci = w.shape[0], w.shape[1] * c.groups
        m = w.new_zeros(co, *out, ci, *size)
        go, gi = co // c.groups, w.shape[1]
        for oy in range(out[0]):
            for ox in range(out[1]):
                for ky in range(w.shape[2]):
                    iy = oy * c.stride[0] - c.padding[0] + ky * c.dilation[0]
                    for kx in range(w.shape[3]):
                        ix = ox * c.stride[1] - c.padding[1] + kx * c.dilation[1]
                        if 0 <= iy < size[0] and 0 <= ix < size[1]:
                            for g in range(c.groups):
                                m[g * go : (g + 1) * go, oy, ox, g * gi : (g + 1) * gi, iy, ix] = w[g * go : (g + 1) * go, :, ky, kx]
        return m.reshape(co * math.prod(out), ci * math.prod(size))

    def _cells(self, size: tuple) -> tuple:
        """What "gemm" multiplies on inputs of spatial size ``size``: the output positions in
        cells that read the same kernel taps inside the input (a zero-padded conv's border rows
        and columns read fewer), so that the products skip the padding's zeros.  Each cell is
        ``(rows, cols, taps_y, taps_x, by_column)`` (ranges) with its weight (C_out, taps C_in),
        a view of the kernels with the taps in the order the cell's unfolded rows take:
        ``(k_y, k_x, C_in)`` for a band of output rows reading fewer ``k_y`` (every ``k_x``, the
        corners' few padding zeros kept), ``(k_x, k_y, C_in)`` for the cells of the rows that
        read every ``k_y``."""
        w = self.weight
        rows, cols = (_tap_bands(n, m, p, d, s, k) for n, m, p, d, s, k in
                      zip(self.out_size(size), size, self.conv.padding, self.conv.dilation, self.conv.stride, w.shape[2:]))
        by_row, by_col = w.permute(0, 2, 3, 1).contiguous(), w.permute(0, 3, 2, 1).contiguous()
        full = range(w.shape[3])
        cells = []
        for ys, ky in rows:
            if len(ky) < w.shape[2]:
                cells.append(((ys, range(cols[0][0].start, cols[-1][0].stop), ky, full, False),
                              by_row[:, ky.start : ky.stop].reshape(len(w), -1)))
                continue
            cells += [((ys, xs, ky, kx, True), by_col[:, kx.start : kx.stop].reshape(len(w), -1)) for xs, kx in cols]
        return [c for c in cells if len(c[0][2]) and len(c[0][3])]

    def _unfolded(self, x: torch.Tensor, cells: list) -> torch.Tensor:
        """The conv as matrix products of the unfolded inputs of many samples at once (one per
        cell of output positions, see :meth:`_cells`), in blocks of at most
        ``UNFOLD_ELEMENTS`` unfolded numbers.  x: (B, C_in, H, W).  Unfolded channels last
        (rows (B h w, taps C_in), one strided copy of the padded input), so that neither the
        rows nor the products need a transposed copy."""
        c, w, out = self.conv, self.weight, self.out_size(x.shape[2:])
        step = max(1, UNFOLD_ELEMENTS // (w[0].numel() * math.prod(out)))
        covered = sum(len(ys) * len(xs) for (ys, xs, *_), _ in cells)
        y = (x.new_empty if covered == math.prod(out) else x.new_zeros)(len(x), *out, len(w))
        for s in range(0, len(x), step):
            part = F.pad(x[s : s + step], (c.padding[1],) * 2 + (c.padding[0],) * 2).permute(0, 2, 3, 1).contiguous()
            b, (sb, sh, sw, sc) = len(part), part.stride()
            for (ys, xs, ky, kx, by_column), weight in cells:
                taps = ((len(kx), sw * c.dilation[1]), (len(ky), sh * c.dilation[0]))
                taps = taps if by_column else taps[::-1]
                rows = part.as_strided((b, len(ys), len(xs), taps[0][0], taps[1][0], part.shape[3]),
                                       (sb, sh * c.stride[0], sw * c.stride[1], taps[0][1], taps[1][1], sc),
                                       part.storage_offset() + (ys.start * c.stride[0] + ky.start * c.dilation[0]) * sh
                                       + (xs.start * c.stride[1] + kx.start * c.dilation[1]) * sw)
                y[s : s + b, ys.start : ys.stop, xs.start : xs.stop] = (
                    rows.reshape(-1, weight.shape[1]) @ weight.T).reshape(b, len(ys), len(xs), len(w))
        return y.permute(0, 3, 1, 2).contiguous()

    def bias(self):
        return None if self._bias is None else self._bias.reshape(-1, *[1] * (self.weight.dim() - 2))

    def cost(self, in_shapes, out_shape):
        return math.prod(out_shape) * self.weight[0].numel()

    def then(self, nxt, shape):
        """Followed by a per-channel affine map of its output channels (eval BatchNorm): the
        kernels and the bias scaled, the shift added."""
        if not isinstance(nxt, ChannelAffineOp) or nxt.scale.numel() != len(self.weight):
            return None
        fused = copy.copy(self)
        fused.weight = self.weight * nxt.scale.reshape(-1, *[1] * (self.weight.dim() - 1))
        fused._bias = nxt.shift if self._bias is None else self._bias * nxt.scale + nxt.shift
        return fused


def _tap_bands(n_out: int, n_in: int, pad: int, dilation: int, stride: int, k: int) -> list[tuple[range, range]]:
    """The output positions (0 .. n_out - 1) along one dim of a zero-padded conv in runs that
    read the same kernel taps inside the input: ``[(positions, taps), ...]`` (ranges)."""
    bands = []
    for o in range(n_out):
        first = o * stride - pad
        taps = range(next((t for t in range(k) if first + t * dilation >= 0), k),
                     next((t for t in range(k - 1, -1, -1) if first + t * dilation < n_in), -1) + 1)
        if bands and bands[-1][1] == taps:
            bands[-1] = (range(bands[-1][0].start, o + 1), taps)
        else:
            bands.append((range(o, o + 1), taps))
    return bands
