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
    """An affine map ``y = linear(x) + bias``."""

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        """The linear part on a batch (B, *shape) -> (B, *shape_out)."""
        raise NotImplementedError

    def bias(self) -> torch.Tensor | None:
        """The bias, broadcastable to one output (*shape_out), or None."""
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x)
        b = self.bias()
        return y if b is None else y + b

    def push(self, state: torch.Tensor) -> torch.Tensor:
        """(R, 3, *shape) -> (R, 3, *shape_out)."""
        r = state.shape[0]
        out = self.linear(state.reshape(r * 3, *state.shape[2:]))
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

    breakpoints: (k,) increasing; slopes, intercepts: (k + 1,), the piece
    ``slopes[i] * z + intercepts[i]`` holds between breakpoints i-1 and i.
    """

    def __init__(self, breakpoints, slopes, intercepts):
        self.breakpoints = torch.as_tensor(breakpoints, dtype=torch.float64)
        self.slopes = torch.as_tensor(slopes, dtype=torch.float64)
        self.intercepts = torch.as_tensor(intercepts, dtype=torch.float64)

    def to(self, device) -> "ElementwiseOp":
        self.breakpoints, self.slopes, self.intercepts = (
            t.to(device) for t in (self.breakpoints, self.slopes, self.intercepts)
        )
        return self

    def above(self, z: torch.Tensor) -> torch.Tensor:
        """(..., k) bool: whether z is above each breakpoint (the activation code)."""
        return z[..., None] > self.breakpoints.to(z)

    def apply_code(self, z: torch.Tensor, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Slope and intercept of the piece selected by ``code`` (..., k) for units z (...)."""
        slopes, intercepts = self.slopes.to(z), self.intercepts.to(z)
        if code.shape[-1] == 1:
            up = code[..., 0]
            return torch.where(up, slopes[1], slopes[0]), torch.where(up, intercepts[1], intercepts[0])
        piece = code.sum(-1)
        return slopes[piece], intercepts[piece]

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


# --- the registry ------------------------------------------------------------

OpFactory = Callable[[nn.Module], "Op | None"]
_FACTORIES: dict[type, OpFactory] = {}


def register_op(module_type: type, factory: OpFactory) -> None:
    """Teach splinecam a module type: ``factory(module)`` returns an :class:`Op`
    (or None for an identity).  The module is already a float64 copy."""
    _FACTORIES[module_type] = factory


def factory_for(module: nn.Module) -> OpFactory | None:
    for cls in type(module).__mro__:
        if cls in _FACTORIES:
            return _FACTORIES[cls]
    return None


def _detached(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.detach()


def _batchnorm(m: nn.modules.batchnorm._BatchNorm) -> ChannelAffineOp:
    if m.training:
        raise _TrainingMode("BatchNorm is in training mode, where its output depends on the batch")
    if m.running_var is None:
        raise _TrainingMode("BatchNorm has no running statistics (track_running_stats=False)")
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


class _TrainingMode(Exception):
    """Raised by a factory for a module whose eval-mode semantics are required."""


register_op(nn.Linear, lambda m: LinearOp(m.weight.detach(), _detached(m.bias)))
register_op(nn.modules.batchnorm._BatchNorm, _batchnorm)
register_op(nn.modules.dropout._DropoutNd, _dropout)
register_op(nn.Identity, lambda m: None)
register_op(nn.Flatten, ModuleLinearOp)
register_op(nn.ReLU, lambda m: ElementwiseOp([0.0], [0.0, 1.0], [0.0, 0.0]))
register_op(nn.LeakyReLU, lambda m: ElementwiseOp([0.0], [m.negative_slope, 1.0], [0.0, 0.0]))
