"""Ops for the functions and tensor methods that torch.fx records (``call_function`` /
``call_method`` nodes): affine ones (reshapes, sums of activations, scaling, pooling,
concatenation...) and piecewise-linear ones (relu, clamp, abs, max, max-pooling...).

Each factory gets the call's arguments with activations replaced by :class:`Live`
objects (see :func:`splinecam.register_op`) and returns an op, a list of ops to
chain, or None for an identity.
"""

from __future__ import annotations

import operator

import torch
from torch.nn import functional as F
from torch.utils._pytree import tree_flatten, tree_map

from .affine import FunctionOp
from ..errors import Unsupported
from .base import Live
from .elementwise import abs_op, clamp_op, leaky_relu_op, relu_op
from .maxtype import DimMaxOp, PoolMaxOp
from .registry import OpRegistry

__all__ = ["SMOOTH_NAMES", "register_function_ops"]

SMOOTH_NAMES = {
    "gelu", "silu", "tanh", "sigmoid", "softplus", "elu", "selu", "celu", "mish", "softmax", "log_softmax",
    "softmin", "layer_norm", "group_norm", "rms_norm", "exp", "log", "sin", "cos", "sqrt", "rsqrt", "hardswish",
    "hardsigmoid", "logsigmoid", "softsign", "tanhshrink", "glu", "erf", "pow", "normalize", "square",
    "reciprocal", "log1p", "expm1",
}


def lives(args, kwargs) -> list[Live]:
    """The activations among the arguments, in order."""
    return [a for a in tree_flatten((args, kwargs))[0] if isinstance(a, Live)]


def bind(fn, args, kwargs):
    """``g(*xs) = fn(*args, **kwargs)`` with the i-th activation replaced by ``xs[i]``."""

    def call(*xs):
        sub = lambda a: xs[a.slot] if isinstance(a, Live) else a  # noqa: E731
        return fn(*tree_map(sub, args), **tree_map(sub, kwargs))

    return call


def _method(name: str):
    return lambda self, *args, **kwargs: getattr(self, name)(*args, **kwargs)


def _get(args, kwargs, pos: int, name: str, default=None):
    if len(args) > pos:
        return args[pos]
    return kwargs.get(name, default)


def affine_factory(fn, additive=(), one_live: bool = False, live_first: bool = False, nonnegative: bool = False):
    """Factory for ``fn`` that is affine in its activations when its other arguments are fixed.

    additive: ((position, keyword, zero), ...) constant arguments that only add
    a bias; they are replaced by ``zero`` to get the linear part.  one_live: a
    product-like function (more than one activation would be bilinear);
    live_first: only the first argument may be an activation (a divisor may not);
    nonnegative: the linear part's coefficients are all >= 0 (unless scaled by ``alpha``).
    """

    def make(*args, **kwargs):
        live = lives(args, kwargs)
        if one_live and len(live) != 1:
            raise Unsupported("a product of two activations is not piecewise-linear")
        if live_first and not isinstance(args[0], Live):
            raise Unsupported("dividing by an activation is not piecewise-linear")
        largs, lkwargs = list(args), dict(kwargs)
        for pos, key, zero in additive:
            if len(largs) > pos and not isinstance(largs[pos], Live):
                largs[pos] = zero
            elif key in lkwargs and not isinstance(lkwargs[key], Live):
                lkwargs[key] = zero
        linear = bind(fn, tuple(largs), lkwargs)
        zeros = [torch.zeros_like(a.example[:1]) for a in live]
        if linear(*zeros).any():
            raise Unsupported("the call is not affine in its activations")
        bias = bind(fn, args, kwargs)(*zeros)[0]
        return FunctionOp(linear, bias if bias.any() else None, nonnegative and "alpha" not in kwargs)

    return make


def _reshaper(target):
    def make(*args, **kwargs):
        x = args[0]
        if not isinstance(x, Live) or len(lives(args, kwargs)) != 1:
            raise Unsupported("reshape of something that is not one activation")
        out = bind(target, args, kwargs)(x.example)
        if out.dim() == 0 or out.shape[0] != x.example.shape[0]:
            raise Unsupported("the reshape mixes samples of a batch (keep dim 0 as the batch dim)")
        shape = tuple(out.shape[1:])
        return FunctionOp(lambda t: t.reshape(t.shape[0], *shape), nonnegative=True)

    return make


def _identity(*args, **kwargs):
    return None


def _dropout(*args, **kwargs):
    p, training = _get(args, kwargs, 1, "p", 0.5), _get(args, kwargs, 2, "training", True)
    if training and p > 0:
        raise Unsupported("dropout in training mode is random; pass training=self.training and call model.eval()")
    return None


def _number(v, what: str):
    if v is None:
        return None
    if isinstance(v, Live):
        raise Unsupported(f"{what} that depends on the input is not piecewise-linear in one unit")
    if isinstance(v, torch.Tensor):
        if v.numel() != 1:
            raise Unsupported(f"{what} given as a tensor of shape {tuple(v.shape)}; use a number")
        v = v.item()
    return float(v)


def _clamp(*args, **kwargs):
    return clamp_op(_number(_get(args, kwargs, 1, "min"), "a clamp bound"), _number(_get(args, kwargs, 2, "max"), "a clamp bound"))


def _two_max(a, b):
    """max(a, b) of two activations of one shape: stack them, then a max over the new last dim."""
    if a.example.shape != b.example.shape:
        raise Unsupported("max of two activations of different shapes; expand them first")
    return [FunctionOp(lambda x, y: torch.stack([x, y], -1), nonnegative=True), DimMaxOp([-1])]


def _max(*args, **kwargs):
    """torch.max(x) / torch.max(x, dim, keepdim) / torch.max(a, b) (also the method)."""
    x, other = args[0], _get(args, kwargs, 1, "dim", kwargs.get("other"))
    if isinstance(other, Live):
        return _two_max(x, other)
    if isinstance(other, torch.Tensor):
        return clamp_op(_number(other, "max with a constant"), None)
    if other is None:
        return DimMaxOp(None)
    return DimMaxOp([int(other)], bool(_get(args, kwargs, 2, "keepdim", False)))


def _maximum(a, b):
    if isinstance(a, Live) and isinstance(b, Live):
        return _two_max(a, b)
    x, c = (a, b) if isinstance(a, Live) else (b, a)
    return clamp_op(_number(c, "max with a constant"), None)


def _amax(*args, **kwargs):
    dim = _get(args, kwargs, 1, "dim", ())
    dims = None if dim in ((), []) else ([dim] if isinstance(dim, int) else list(dim))
    return DimMaxOp(dims, bool(_get(args, kwargs, 2, "keepdim", False)))


def _max_pool(ndim: int, fn):
    def make(*args, **kwargs):
        names = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
        defaults = (None, None, None, 0, 1, False, False)
        a = dict(zip(names, defaults)) | dict(zip(names, args)) | kwargs
        if a["return_indices"]:
            raise Unsupported("return_indices=True gives integer indices, not a piecewise-linear value")
        pool = lambda t: fn(t, a["kernel_size"], a["stride"], a["padding"], a["dilation"], a["ceil_mode"])  # noqa: E731
        return PoolMaxOp(pool, ndim, a["kernel_size"], a["stride"], a["padding"], a["dilation"])

    return make


def _relu(*args, **kwargs):
    return relu_op()


def _abs(*args, **kwargs):
    return abs_op()


def _prelu(x, weight):
    if isinstance(weight, Live):
        raise Unsupported("PReLU slopes that depend on the input")
    return leaky_relu_op(weight)


_BIAS = ((2, "bias", None),)
_ADD = ((0, "input", 0.0), (1, "other", 0.0))
_LINEAR_FUNCTIONS = {
    operator.add: _ADD, operator.sub: _ADD, torch.add: _ADD, torch.sub: _ADD, torch.subtract: _ADD,
    operator.neg: (), torch.neg: (), operator.pos: (), operator.getitem: (), torch.cat: (), torch.concat: (),
    torch.stack: (), torch.flatten: (), torch.permute: (), torch.transpose: (), torch.squeeze: (),
    torch.unsqueeze: (), torch.mean: (), torch.sum: (), torch.narrow: (), torch.movedim: (), torch.flip: (),
    F.avg_pool1d: (), F.avg_pool2d: (), F.adaptive_avg_pool1d: (), F.adaptive_avg_pool2d: (),
    F.pad: ((3, "value", 0.0),),
}
_PRODUCTS = {operator.mul: (), torch.mul: (), torch.multiply: (), F.linear: _BIAS, F.conv1d: _BIAS, F.conv2d: _BIAS,
             operator.matmul: (), torch.matmul: ()}
_DIVISIONS = (operator.truediv, torch.div, torch.true_divide)
_LINEAR_METHODS = {
    "add": _ADD, "sub": _ADD, "neg": (), "permute": (), "transpose": (), "squeeze": (), "unsqueeze": (),
    "mean": (), "sum": (), "narrow": (), "movedim": (), "flip": (), "__getitem__": (),
}


_SIGNED = {operator.sub, torch.sub, torch.subtract, operator.neg, torch.neg, "sub", "neg"}  # the others' coefficients are >= 0


def register_function_ops(registry: OpRegistry) -> None:
    """Register the ops of the functions and tensor methods torch.fx records in ``registry``."""
    for fn, additive in _LINEAR_FUNCTIONS.items():
        registry.register(fn, affine_factory(fn, additive, nonnegative=fn not in _SIGNED))
    for fn, additive in _PRODUCTS.items():
        registry.register(fn, affine_factory(fn, additive, one_live=True))
    for fn in _DIVISIONS:
        registry.register(fn, affine_factory(fn, live_first=True))
    for name, additive in _LINEAR_METHODS.items():
        registry.register(name, affine_factory(_method(name), additive, nonnegative=name not in _SIGNED))
    for name in ("mul", "matmul"):
        registry.register(name, affine_factory(_method(name), one_live=True))
    registry.register("div", affine_factory(_method("div"), live_first=True))
    for name in ("view", "reshape", "flatten"):
        registry.register(name, _reshaper(_method(name)))
    registry.register(torch.reshape, _reshaper(torch.reshape))
    for name in ("contiguous", "clone"):
        registry.register(name, _identity)
    registry.register(F.dropout, _dropout)
    for fn in (F.relu, torch.relu, torch.relu_, "relu", "relu_"):
        registry.register(fn, _relu)
    registry.register(F.leaky_relu, lambda x, negative_slope=0.01, inplace=False: leaky_relu_op(_number(negative_slope, "slope")))
    registry.register(F.relu6, lambda *a, **k: clamp_op(0.0, 6.0))
    registry.register(F.hardtanh, lambda x, min_val=-1.0, max_val=1.0, inplace=False: clamp_op(float(min_val), float(max_val)))
    for fn in (torch.abs, "abs"):
        registry.register(fn, _abs)
    for fn in (torch.clamp, torch.clip, "clamp", "clip", "clamp_", "clip_"):
        registry.register(fn, _clamp)
    for fn in (torch.clamp_min, "clamp_min"):
        registry.register(fn, lambda x, min: clamp_op(_number(min, "a clamp bound"), None))
    for fn in (torch.clamp_max, "clamp_max"):
        registry.register(fn, lambda x, max: clamp_op(None, _number(max, "a clamp bound")))
    registry.register(F.prelu, _prelu)
    for fn in (torch.max, "max"):
        registry.register(fn, _max)
    for fn in (torch.maximum, "maximum"):
        registry.register(fn, _maximum)
    for fn in (torch.amax, "amax"):
        registry.register(fn, _amax)
    registry.register(F.max_pool1d, _max_pool(1, F.max_pool1d))
    registry.register(F.max_pool2d, _max_pool(2, F.max_pool2d))
