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
        return F.linear(x.flatten(1) if self.flat else x, self.weight)

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
    output columns, in blocks of rows of ``PULL_ELEMENTS`` numbers), else dense."""
    k, j = m.nonzero(as_tuple=True)
    if 8 * len(k) > m.numel():
        return weight @ m.T
    scale = m[k, j]
    out = weight.new_zeros(len(weight), len(m))
    rows = max(1, PULL_ELEMENTS // max(len(k), 1))
    for s in range(0, len(weight), rows):
        out[s : s + rows].index_add_(1, k, weight[s : s + rows, j] * scale)
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
        return self.conv._conv_forward(x, self.weight, None)

    def magnitude(self, r):
        return self.conv._conv_forward(r, absolute_weight(self), None)

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
