"""One small class per kind of operation, and the registry that maps modules to them.

Every op acts on a batch of region *states*: each activation tensor is an
affine function of the slice coordinates inside a region, stored as
``(R, 3, *shape)``: the value at the reference point and the two tangents
(d/du, d/dv).  An affine op maps the value with its bias and the tangents
with its linear part only.  An elementwise piecewise-linear op has
breakpoints; the engine splits regions where a unit crosses one, and the op
then applies the fixed linear piece of each unit.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F


class Op:
    """Base class.  ``name`` is where the op sits in the user's model."""

    name: str = ""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Plain evaluation on a batch of inputs (B, *shape)."""
        raise NotImplementedError


class AffineOp(Op):
    """An affine map ``y = linear(*xs) + bias`` of one or more activations."""

    def linear(self, *xs: torch.Tensor) -> torch.Tensor:
        """The linear part on batches (B, *shape_i) -> (B, *shape_out)."""
        raise NotImplementedError

    def bias(self) -> torch.Tensor | None:
        """The bias, broadcastable to one output (*shape_out), or None."""
        return None

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        y = self.linear(*xs)
        b = self.bias()
        return y if b is None else y + b

    def push(self, *states: torch.Tensor) -> torch.Tensor:
        """States (R, 3, *shape_i) -> (R, 3, *shape_out): tangents through the linear part only."""
        r = states[0].shape[0]
        out = self.linear(*[s.reshape(r * 3, *s.shape[2:]) for s in states])
        out = out.reshape(r, 3, *out.shape[1:])
        b = self.bias()
        if b is not None:
            out[:, 0] += b
        return out


class LinearOp(AffineOp):
    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        self.weight, self._bias = weight, bias

    def linear(self, x):
        return F.linear(x, self.weight)

    def bias(self):
        return self._bias


class ChannelAffineOp(AffineOp):
    """``y = x * scale + shift`` per channel (dim 1 of a batch): eval-mode BatchNorm."""

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor):
        self.scale, self.shift = scale, shift

    def _per_channel(self, t: torch.Tensor, ndim: int) -> torch.Tensor:
        return t.reshape(t.shape + (1,) * (ndim - 2))

    def linear(self, x):
        return x * self._per_channel(self.scale, x.dim())

    def forward(self, x):
        return x * self._per_channel(self.scale, x.dim()) + self._per_channel(self.shift, x.dim())

    def push(self, state):
        out = self.linear(state.reshape(-1, *state.shape[2:])).reshape(state.shape)
        out[:, 0] += self._per_channel(self.shift, state.dim() - 1)
        return out


class ModuleLinearOp(AffineOp):
    """A linear module without bias, applied as it is (e.g. ``nn.Flatten``)."""

    def __init__(self, module: nn.Module):
        self.module = module

    def linear(self, x):
        return self.module(x)


class ElementwiseOp(Op):
    """Continuous piecewise-linear function applied to every unit.

    breakpoints: (k,) increasing; slopes, intercepts: (k + 1,) shared by all
    units, or (k + 1, C) per channel (dim 1 of a batch, e.g. PReLU).  The
    piece ``slopes[i] * z + intercepts[i]`` holds between breakpoints i-1 and i.
    Activation code: one bit per (unit, breakpoint), "z above the breakpoint".
    """

    def __init__(self, breakpoints, slopes, intercepts):
        self.breakpoints = torch.as_tensor(breakpoints, dtype=torch.float64)
        self.slopes = torch.as_tensor(slopes, dtype=torch.float64)
        self.intercepts = torch.as_tensor(intercepts, dtype=torch.float64)
        k = self.breakpoints.numel()
        if self.slopes.shape != self.intercepts.shape or self.slopes.shape[0] != k + 1 or self.slopes.dim() > 2:
            raise ValueError(f"slopes and intercepts must both be (k+1,) or (k+1, C) for k={k} breakpoints.")

    def to(self, device) -> "ElementwiseOp":
        self.breakpoints, self.slopes, self.intercepts = (
            t.to(device) for t in (self.breakpoints, self.slopes, self.intercepts)
        )
        return self

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
        """Apply the pieces ``code`` (R, U, k) to the affine states (R, 3, U) (overwritten if ``inplace``)."""
        if code.shape[-1] == 1 and self.slopes.tolist() == [0.0, 1.0] and not self.intercepts.any():
            mask = code[:, None, :, 0]  # ReLU: keep or zero
            return state.mul_(mask) if inplace else state * mask
        slope, intercept = self.apply_code(state[:, 0], code)
        out = state.mul_(slope[:, None]) if inplace else state * slope[:, None]
        if self.intercepts.any():
            out[:, 0] += intercept
        return out

    def forward(self, x):
        slope, intercept = self.apply_code(x, self.above(x))
        return slope * x + intercept

    def code(self, x: torch.Tensor) -> torch.Tensor:
        """(B, bits) bool activation code of a batch of inputs (B, *shape)."""
        return self.above(x.reshape(len(x), -1)).reshape(len(x), -1)

    def ambiguous(self, x: torch.Tensor, atol: float) -> torch.Tensor:
        """(B, bits) bool: code bits of units within ``atol`` of their breakpoint."""
        flat = x.reshape(len(x), -1)
        return ((flat[..., None] - self.breakpoints.to(flat)).abs() <= atol).reshape(len(x), -1)


class MaxOp(Op):
    """Max over groups of units: output unit o is the max of the input units
    ``index[o, j]`` (C-order flat index within one sample; -1 = no candidate).

    Subclasses give the groups through :meth:`windows`.  Activation code: per
    output unit, the slot j of the winning candidate as ``bits_per_unit``
    binary digits, most significant first.
    """

    def windows(self, in_shape: tuple[int, ...]) -> tuple[torch.Tensor, tuple[int, ...]]:
        """(index (O, k) int64, out_shape) for inputs of one sample of shape ``in_shape``."""
        raise NotImplementedError

    def index_for(self, in_shape, device) -> tuple[torch.Tensor, tuple[int, ...]]:
        key = (tuple(in_shape), str(device))
        cache = self.__dict__.setdefault("_cache", {})
        if key not in cache:
            index, out_shape = self.windows(tuple(in_shape))
            cache[key] = (index.to(device), tuple(out_shape))
        return cache[key]

    @staticmethod
    def bits_per_unit(k: int) -> int:
        return (k - 1).bit_length()

    def candidates(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        """(B, O, k) candidate values of a batch (-inf where there is none), and the output shape."""
        index, out_shape = self.index_for(x.shape[1:], x.device)
        flat = x.reshape(len(x), -1)
        padded = torch.cat([flat, torch.full_like(flat[:, :1], -torch.inf)], 1)
        return padded[:, torch.where(index >= 0, index, flat.shape[1])], out_shape

    def forward(self, x):
        cand, out_shape = self.candidates(x)
        return cand.amax(-1).reshape(len(x), *out_shape)

    def winner_bits(self, winner: torch.Tensor, k: int) -> torch.Tensor:
        """(B, O) winning slots -> (B, O * bits_per_unit) bool code."""
        nb = self.bits_per_unit(k)
        shifts = torch.arange(nb - 1, -1, -1, device=winner.device)
        return ((winner.long()[..., None] >> shifts) & 1).bool().reshape(len(winner), -1)

    def code(self, x: torch.Tensor) -> torch.Tensor:
        cand, _ = self.candidates(x)
        return self.winner_bits(cand.argmax(-1), cand.shape[-1])

    def ambiguous(self, x: torch.Tensor, atol: float) -> torch.Tensor:
        """(B, bits): all bits of an output unit whose two best candidates are within ``atol``."""
        cand, _ = self.candidates(x)
        k = cand.shape[-1]
        if k < 2:
            return torch.zeros(len(x), 0, dtype=torch.bool, device=x.device)
        top = cand.topk(2, dim=-1).values
        tie = (top[..., 0] - top[..., 1]) <= atol
        return tie[..., None].expand(*tie.shape, self.bits_per_unit(k)).reshape(len(x), -1)


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


class FunctionOp(AffineOp):
    """An affine function of one or more activations: ``fn(*xs) + bias``.

    fn: linear in its inputs, acting on batches (B, *shape_i) -> (B, *shape_out);
    bias: (*shape_out) or None.
    """

    def __init__(self, fn: Callable[..., torch.Tensor], bias: torch.Tensor | None = None):
        self.fn, self._bias = fn, bias

    def linear(self, *xs):
        return self.fn(*xs)

    def bias(self):
        return self._bias


class ConvOp(AffineOp):
    """``nn.Conv1d`` / ``nn.Conv2d`` with any stride, padding (mode), dilation, groups."""

    def __init__(self, conv: nn.modules.conv._ConvNd):
        self.conv = conv

    def linear(self, x):
        return self.conv._conv_forward(x, self.conv.weight, None)

    def bias(self):
        b = self.conv.bias
        return None if b is None else b.detach().reshape(-1, *[1] * (self.conv.weight.dim() - 2))


SPLIT_OPS = (ElementwiseOp, MaxOp)


# --- the registry ------------------------------------------------------------

OpFactory = Callable[..., "Op | None"]
_FACTORIES: dict[type, OpFactory] = {}
_FUNCTION_FACTORIES: dict[object, OpFactory] = {}


def register_op(target, factory: OpFactory) -> None:
    """Teach splinecam a module type, a function or a tensor method.

    - ``register_op(MyModule, factory)``: ``factory(module)`` returns an
      :class:`Op` (or None for an identity); the module is already a float64 copy.
    - ``register_op(my_function, factory)`` (an fx ``call_function`` target) or
      ``register_op("method_name", factory)`` (an fx ``call_method`` target, e.g.
      ``x.method_name(...)``): ``factory(*args, **kwargs)`` gets the call's
      arguments with every activation replaced by a :class:`Live` (its
      ``.example`` is a small batch of real values); it returns an Op whose
      ``forward`` takes the activations in the order they appear in the arguments.

    Functions and modules registered this way are not traced into.
    """
    if isinstance(target, type):
        _FACTORIES[target] = factory
    elif isinstance(target, str) or callable(target):
        _FUNCTION_FACTORIES[target] = factory
    else:
        raise TypeError(f"register_op needs a module type, a function or a method name, got {target!r}.")


def factory_for(module: nn.Module) -> OpFactory | None:
    for cls in type(module).__mro__:
        if cls in _FACTORIES:
            return _FACTORIES[cls]
    return None


def function_factory_for(target) -> OpFactory | None:
    try:
        return _FUNCTION_FACTORIES.get(target)
    except TypeError:  # unhashable target
        return None


class Live:
    """An activation among the arguments of a traced call: ``example`` is a
    (B, *shape) batch of its values, ``slot`` its position among the activations."""

    def __init__(self, example: torch.Tensor, slot: int):
        self.example, self.slot = example, slot

    def __repr__(self) -> str:
        return f"Live(shape={tuple(self.example.shape[1:])})"


class Unsupported(Exception):
    """Raised by a factory for a call it cannot represent exactly; the message says why."""


class _TrainingMode(Unsupported):
    """Raised by a factory for a module whose eval-mode semantics are required."""


def _detached(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.detach()


def _batchnorm(m: nn.modules.batchnorm._BatchNorm) -> ChannelAffineOp:
    if m.training:
        raise _TrainingMode("BatchNorm is in training mode, where its output depends on the batch")
    if m.running_var is None:
        raise Unsupported("BatchNorm without running statistics (track_running_stats=False) normalises "
                          "with the statistics of each batch, so it is not a function of one input")
    scale = torch.rsqrt(m.running_var.detach() + m.eps)
    shift = -m.running_mean.detach() * scale
    if m.affine:
        scale = scale * m.weight.detach()
        shift = shift * m.weight.detach() + m.bias.detach()
    return ChannelAffineOp(scale, shift)


def _dropout(m: nn.modules.dropout._DropoutNd) -> None:
    if m.training and m.p > 0:
        raise _TrainingMode("Dropout is in training mode, where its output is random")
    return None


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


def _pool_op(m) -> PoolMaxOp:
    if getattr(m, "return_indices", False):
        raise Unsupported("return_indices=True gives integer indices, not a piecewise-linear value")
    ndim = 2 if isinstance(m, nn.MaxPool2d) else 1
    return PoolMaxOp(m, ndim, m.kernel_size, m.stride, m.padding, m.dilation)


def _constant_pad(m) -> ModuleLinearOp:
    if m.value != 0:
        raise Unsupported(f"padding with the constant {m.value}; only zero padding is linear")
    return ModuleLinearOp(m)


register_op(nn.Linear, lambda m: LinearOp(m.weight.detach(), _detached(m.bias)))
register_op(nn.Conv1d, ConvOp)
register_op(nn.Conv2d, ConvOp)
register_op(nn.modules.batchnorm._BatchNorm, _batchnorm)
register_op(nn.modules.dropout._DropoutNd, _dropout)
register_op(nn.Identity, lambda m: None)
for _linear_module in (nn.Flatten, nn.Unflatten, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d,
                       nn.AdaptiveAvgPool2d, nn.ZeroPad1d, nn.ZeroPad2d):
    register_op(_linear_module, ModuleLinearOp)
register_op(nn.modules.padding._ConstantPadNd, _constant_pad)
register_op(nn.ReLU, lambda m: ElementwiseOp([0.0], [0.0, 1.0], [0.0, 0.0]))
register_op(nn.LeakyReLU, lambda m: leaky_relu_op(m.negative_slope))
register_op(nn.PReLU, lambda m: leaky_relu_op(m.weight))
register_op(nn.Hardtanh, lambda m: clamp_op(float(m.min_val), float(m.max_val)))  # also ReLU6
register_op(nn.MaxPool1d, _pool_op)
register_op(nn.MaxPool2d, _pool_op)
