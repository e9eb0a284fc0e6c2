"""Ops for the built-in ``torch.nn`` modules."""

from __future__ import annotations

import torch
from torch import nn

from .affine import ChannelAffineOp, ConvOp, LinearOp, ModuleLinearOp
from ..errors import TrainingMode, Unsupported
from .elementwise import clamp_op, leaky_relu_op, relu_op
from .maxtype import PoolMaxOp
from .registry import OpRegistry

__all__ = ["register_module_ops"]


def _detached(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.detach()


def _batchnorm(m: nn.modules.batchnorm._BatchNorm) -> ChannelAffineOp:
    if m.training:
        raise TrainingMode("BatchNorm is in training mode, where its output depends on the batch")
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
        raise TrainingMode("Dropout is in training mode, where its output is random")
    return None


def _pool_op(m) -> PoolMaxOp:
    if getattr(m, "return_indices", False):
        raise Unsupported("return_indices=True gives integer indices, not a piecewise-linear value")
    ndim = 2 if isinstance(m, nn.MaxPool2d) else 1
    return PoolMaxOp(m, ndim, m.kernel_size, m.stride, m.padding, m.dilation)


def _constant_pad(m) -> ModuleLinearOp:
    if m.value != 0:
        raise Unsupported(f"padding with the constant {m.value}; only zero padding is linear")
    return ModuleLinearOp(m, nonnegative=True)


def _nonnegative(m) -> ModuleLinearOp:
    """A reshape, a pad or an average pool: coefficients >= 0."""
    return ModuleLinearOp(m, nonnegative=True)


def register_module_ops(registry: OpRegistry) -> None:
    """Register the ops of the built-in modules in ``registry``."""
    registry.register(nn.Linear, lambda m: LinearOp(m.weight.detach(), _detached(m.bias)))
    registry.register(nn.Conv1d, ConvOp)
    registry.register(nn.Conv2d, ConvOp)
    registry.register(nn.modules.batchnorm._BatchNorm, _batchnorm)
    registry.register(nn.modules.dropout._DropoutNd, _dropout)
    registry.register(nn.Identity, lambda m: None)
    for linear in (nn.Flatten, nn.Unflatten, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d,
                   nn.AdaptiveAvgPool2d, nn.ZeroPad1d, nn.ZeroPad2d):
        registry.register(linear, _nonnegative)
    registry.register(nn.modules.padding._ConstantPadNd, _constant_pad)
    registry.register(nn.ReLU, lambda m: relu_op())
    registry.register(nn.LeakyReLU, lambda m: leaky_relu_op(m.negative_slope))
    registry.register(nn.PReLU, lambda m: leaky_relu_op(m.weight))
    registry.register(nn.Hardtanh, lambda m: clamp_op(float(m.min_val), float(m.max_val)))  # also ReLU6
    registry.register(nn.MaxPool1d, _pool_op)
    registry.register(nn.MaxPool2d, _pool_op)
