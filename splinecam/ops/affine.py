"""Affine ops: each maps the value of a state with its bias and the tangents with its linear part."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from .base import AffineOp

__all__ = ["ChannelAffineOp", "ConvOp", "FunctionOp", "LinearOp", "ModuleLinearOp"]


class LinearOp(AffineOp):
    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        self.weight, self._bias = weight, bias

    def linear(self, x):
        return F.linear(x, self.weight)

    def bias(self):
        return self._bias


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


class ModuleLinearOp(AffineOp):
    """A linear module without bias, applied as it is (e.g. ``nn.Flatten``)."""

    def __init__(self, module: nn.Module):
        self.module = module

    def linear(self, x):
        return self.module(x)



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
