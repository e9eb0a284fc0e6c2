"""Every registered op kind, with random non-default parameters (BatchNorm statistics, weights and
shifts; conv and linear biases; PReLU slopes; clamp ranges; padding modes; grouped, strided and
dilated convolutions; pools), against torch itself:

- the traced graph computes what the model computes;
- an affine op's ``push`` gives ``forward`` on the value row and the jvp of ``forward`` on the
  tangent rows, and ``forward`` is ``linear + offset``;
- the zonotope and the interval bounds of the outputs over a cell contain the model's outputs at
  points sampled in the cell.

The table below has a case for every target of the registry: a new op kind without one fails
:func:`test_every_registered_target_has_a_case`.
"""

from __future__ import annotations

import operator

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

import splinecam as sc
from helpers import examples
from splinecam.analysis.bounds import OutputBounds, corners, form_bounds
from splinecam.geometry import Polygons
from splinecam.ops import REGISTRY, AffineOp, SplitOp
from splinecam.analysis.sampling import sample_polygon
from splinecam.run.trace import prepare


class Call(nn.Module):
    """A model that applies ``fn`` to its input (fx records the calls inside ``fn``)."""

    def __init__(self, fn, **tensors):
        super().__init__()
        self.fn = fn
        for name, t in tensors.items():
            self.register_buffer(name, t)

    def forward(self, x):
        return self.fn(self, x)


def num(d, lo=-2.0, hi=2.0) -> float:
    return d.draw(st.floats(lo, hi, allow_nan=False, allow_infinity=False))


def gen_of(d) -> torch.Generator:
    return torch.Generator().manual_seed(d.draw(st.integers(0, 2**31 - 1)))


def randomised(module: nn.Module, g: torch.Generator) -> nn.Module:
    """Every parameter and buffer of ``module`` drawn at random (variances positive), eval mode."""
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g) + 0.3 if "var" in name else torch.randn(t.shape, generator=g))
    return module.eval()


# --- cases: draw -> (model, input shape of one sample) ------------------------------------------

IMG = (2, 5, 6)  # (C, H, W)
SEQ = (4, 7)  # (C, L)


def _conv(d, ndim: int):
    g = gen_of(d)
    groups = d.draw(st.sampled_from([1, 2]))
    conv = (nn.Conv1d if ndim == 1 else nn.Conv2d)(
        2 * groups, 2 * d.draw(st.integers(1, 2)), d.draw(st.integers(1, 3)), stride=d.draw(st.integers(1, 2)),
        padding=d.draw(st.integers(0, 1)), dilation=d.draw(st.integers(1, 2)), groups=groups,
        bias=d.draw(st.booleans()), padding_mode=d.draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"])))
    shape = (2 * groups, 7) if ndim == 1 else (2 * groups, 5, 6)
    return randomised(conv, g), shape


def _batchnorm(d):
    kind, shape = d.draw(st.sampled_from([(nn.BatchNorm1d, (4,)), (nn.BatchNorm1d, SEQ), (nn.BatchNorm2d, IMG)]))
    return randomised(kind(shape[0], affine=d.draw(st.booleans())), gen_of(d)), shape


def _avg_pool(d, ndim: int, adaptive: bool):
    if adaptive:
        return (nn.AdaptiveAvgPool1d(d.draw(st.integers(1, 4))), SEQ) if ndim == 1 else \
            (nn.AdaptiveAvgPool2d((d.draw(st.integers(1, 3)), d.draw(st.integers(1, 4)))), IMG)
    k = d.draw(st.integers(2, 3))
    kw = dict(stride=d.draw(st.integers(1, 2)), padding=d.draw(st.integers(0, 1)), ceil_mode=d.draw(st.booleans()),
              count_include_pad=d.draw(st.booleans()))
    return (nn.AvgPool1d(k, **kw), SEQ) if ndim == 1 else (nn.AvgPool2d(k, **kw), IMG)


def _max_pool(d, ndim: int):
    k = d.draw(st.integers(2, 3))
    kw = dict(stride=d.draw(st.integers(1, 2)), padding=d.draw(st.integers(0, 1)), dilation=d.draw(st.integers(1, 2)),
              ceil_mode=d.draw(st.booleans()))
    return (nn.MaxPool1d(k, **kw), SEQ) if ndim == 1 else (nn.MaxPool2d(k, **kw), IMG)


def _clamp_range(d) -> tuple[float, float]:
    a, b = sorted([num(d), num(d)])
    return a, b + 0.1


def _periodic(d):
    period = num(d, 0.2, 3.0)
    cuts = sorted(c / 20 for c in d.draw(st.lists(st.integers(0, 19), min_size=1, max_size=4, unique=True)))
    shift = num(d)
    return sc.nn.PeriodicPWL([shift + c * period for c in cuts], [num(d) for _ in cuts], period), IMG


def call(fn, shape=IMG, **tensors):
    return Call(fn, **tensors), shape


def _linear_fn(d):
    g = gen_of(d)
    return call(lambda m, x: F.linear(x, m.w, m.b), (5,), w=torch.randn(3, 5, generator=g), b=torch.randn(3, generator=g))


def _conv_fn(d, ndim: int):
    g = gen_of(d)
    fn = F.conv1d if ndim == 1 else F.conv2d
    w = torch.randn(4, 2, *(3,) * ndim, generator=g)
    stride, pad = d.draw(st.integers(1, 2)), d.draw(st.integers(0, 1))
    return call(lambda m, x: fn(x, m.w, m.b, stride=stride, padding=pad), (2, 7) if ndim == 1 else IMG,
                w=w, b=torch.randn(4, generator=g))


def _prelu(d, functional: bool):
    g = gen_of(d)
    slopes = torch.randn(2, generator=g)
    if functional:
        return call(lambda m, x: F.prelu(x, m.w), w=slopes)
    module = nn.PReLU(2)
    with torch.no_grad():
        module.weight.copy_(slopes)
    return module, IMG


def _matmul(d, fn):
    g = gen_of(d)
    return call(lambda m, x: fn(x, m.w) + 0, (3, 4), w=torch.randn(4, 5, generator=g))


def _method(name, *args, **kwargs):
    return lambda d: call(lambda m, x: getattr(x, name)(*args, **kwargs))


_CASES = {
    nn.Linear: lambda d: (randomised(nn.Linear(5, 4, bias=d.draw(st.booleans())), gen_of(d)), (5,)),
    nn.Conv1d: lambda d: _conv(d, 1),
    nn.Conv2d: lambda d: _conv(d, 2),
    nn.modules.batchnorm._BatchNorm: _batchnorm,
    nn.modules.dropout._DropoutNd: lambda d: (d.draw(st.sampled_from([nn.Dropout, nn.Dropout2d]))(0.4).eval(), IMG),
    nn.Identity: lambda d: (nn.Identity(), IMG),
    nn.Flatten: lambda d: (nn.Flatten(d.draw(st.integers(1, 2))), IMG),
    nn.Unflatten: lambda d: (nn.Unflatten(1, (2, 3)), (6,)),
    nn.AvgPool1d: lambda d: _avg_pool(d, 1, False),
    nn.AvgPool2d: lambda d: _avg_pool(d, 2, False),
    nn.AdaptiveAvgPool1d: lambda d: _avg_pool(d, 1, True),
    nn.AdaptiveAvgPool2d: lambda d: _avg_pool(d, 2, True),
    nn.ZeroPad1d: lambda d: (nn.ZeroPad1d((d.draw(st.integers(0, 2)), 1)), SEQ),
    nn.ZeroPad2d: lambda d: (nn.ZeroPad2d((1, 0, d.draw(st.integers(0, 2)), 1)), IMG),
    nn.modules.padding._ConstantPadNd: lambda d: (nn.ConstantPad2d((1, 2, 0, 1), 0.0), IMG),
    nn.ReLU: lambda d: (nn.ReLU(), IMG),
    nn.LeakyReLU: lambda d: (nn.LeakyReLU(num(d, -1.0, 1.0)), IMG),
    nn.PReLU: lambda d: _prelu(d, False),
    nn.Hardtanh: lambda d: (nn.Hardtanh(*_clamp_range(d)), IMG),
    nn.MaxPool1d: lambda d: _max_pool(d, 1),
    nn.MaxPool2d: lambda d: _max_pool(d, 2),
    sc.nn.PeriodicPWL: _periodic,
    # functions
    operator.add: lambda d: call(lambda m, x, c=num(d): x + c),
    operator.sub: lambda d: call(lambda m, x, c=num(d): c - x),
    torch.add: lambda d: call(lambda m, x, c=num(d): torch.add(x, m.t, alpha=c), t=torch.randn(IMG, generator=gen_of(d))),
    torch.sub: lambda d: call(lambda m, x, c=num(d): torch.sub(x, c)),
    torch.subtract: lambda d: call(lambda m, x: torch.subtract(m.t, x), t=torch.randn(IMG, generator=gen_of(d))),
    operator.neg: lambda d: call(lambda m, x: -x),
    torch.neg: lambda d: call(lambda m, x: torch.neg(x)),
    operator.pos: lambda d: call(lambda m, x: +x),
    operator.getitem: lambda d: call(lambda m, x: x[:, 1:, ::2]),
    torch.cat: lambda d: call(lambda m, x: torch.cat([x, 2 * x + 1], 1)),
    torch.concat: lambda d: call(lambda m, x: torch.concat([x, 2 * x + m.t], 2), t=torch.randn(IMG, generator=gen_of(d))),
    torch.stack: lambda d: call(lambda m, x: torch.stack([x, -x], 1)),
    torch.flatten: lambda d: call(lambda m, x: torch.flatten(x, 1)),
    torch.permute: lambda d: call(lambda m, x: torch.permute(x, (0, 2, 3, 1))),
    torch.transpose: lambda d: call(lambda m, x: torch.transpose(x, 1, 3)),
    torch.squeeze: lambda d: call(lambda m, x: torch.squeeze(x, 1), (1, 5, 6)),
    torch.unsqueeze: lambda d: call(lambda m, x: torch.unsqueeze(x, 2)),
    torch.mean: lambda d: call(lambda m, x: torch.mean(x, (2, 3))),
    torch.sum: lambda d: call(lambda m, x: torch.sum(x, 1)),
    torch.narrow: lambda d: call(lambda m, x: torch.narrow(x, 2, 1, 3)),
    torch.movedim: lambda d: call(lambda m, x: torch.movedim(x, 1, 3)),
    torch.flip: lambda d: call(lambda m, x: torch.flip(x, (2,))),
    F.avg_pool1d: lambda d: call(lambda m, x: F.avg_pool1d(x, 3, 2, 1), SEQ),
    F.avg_pool2d: lambda d: call(lambda m, x: F.avg_pool2d(x, 2, 1, 1, count_include_pad=False)),
    F.adaptive_avg_pool1d: lambda d: call(lambda m, x: F.adaptive_avg_pool1d(x, 3), SEQ),
    F.adaptive_avg_pool2d: lambda d: call(lambda m, x: F.adaptive_avg_pool2d(x, (2, 4))),
    F.pad: lambda d: call(lambda m, x, c=num(d): F.pad(x, (1, 1, 0, 2), value=c)),
    operator.mul: lambda d: call(lambda m, x, c=num(d): x * c),
    torch.mul: lambda d: call(lambda m, x: torch.mul(x, m.t), t=torch.randn(IMG, generator=gen_of(d))),
    torch.multiply: lambda d: call(lambda m, x, c=num(d): torch.multiply(c, x)),
    F.linear: _linear_fn,
    F.conv1d: lambda d: _conv_fn(d, 1),
    F.conv2d: lambda d: _conv_fn(d, 2),
    operator.matmul: lambda d: _matmul(d, operator.matmul),
    torch.matmul: lambda d: _matmul(d, torch.matmul),
    operator.truediv: lambda d: call(lambda m, x, c=num(d, 0.5, 3.0): x / c),
    torch.div: lambda d: call(lambda m, x, c=num(d, 0.5, 3.0): torch.div(x, -c)),
    torch.true_divide: lambda d: call(lambda m, x, c=num(d, 0.5, 3.0): torch.true_divide(x, c)),
    torch.reshape: lambda d: call(lambda m, x: torch.reshape(x, (-1, 6, 10))),
    F.dropout: lambda d: call(lambda m, x: F.dropout(x, 0.3, training=False)),
    F.relu: lambda d: call(lambda m, x: F.relu(x)),
    torch.relu: lambda d: call(lambda m, x: torch.relu(x)),
    torch.relu_: lambda d: call(lambda m, x: torch.relu_(x * 1.0)),
    F.leaky_relu: lambda d: call(lambda m, x, s=num(d, -1.0, 1.0): F.leaky_relu(x, s)),
    F.relu6: lambda d: call(lambda m, x: F.relu6(4 * x)),
    F.hardtanh: lambda d: call(lambda m, x, r=_clamp_range(d): F.hardtanh(x, *r)),
    torch.abs: lambda d: call(lambda m, x: torch.abs(x)),
    torch.clamp: lambda d: call(lambda m, x, r=_clamp_range(d): torch.clamp(x, *r)),
    torch.clip: lambda d: call(lambda m, x, r=_clamp_range(d): torch.clip(x, min=r[0])),
    torch.clamp_min: lambda d: call(lambda m, x, c=num(d): torch.clamp_min(x, c)),
    torch.clamp_max: lambda d: call(lambda m, x, c=num(d): torch.clamp_max(x, c)),
    F.prelu: lambda d: _prelu(d, True),
    torch.max: lambda d: call(d.draw(st.sampled_from([lambda m, x: torch.max(x, 2)[0], lambda m, x: torch.max(x, -x),
                                                      lambda m, x: torch.max(x, dim=3, keepdim=True).values]))),
    torch.maximum: lambda d: call(lambda m, x: torch.maximum(x, x.flip(3))),
    torch.amax: lambda d: call(lambda m, x: torch.amax(x, (1, 3), keepdim=True)),
    F.max_pool1d: lambda d: call(lambda m, x: F.max_pool1d(x, 3, 2, 1), SEQ),
    F.max_pool2d: lambda d: call(lambda m, x: F.max_pool2d(x, 2, 1, ceil_mode=True)),
    # methods
    "add": _method("add", 0.5), "sub": _method("sub", -1.5), "neg": _method("neg"),
    "permute": _method("permute", 0, 3, 1, 2), "transpose": _method("transpose", 2, 3),
    "squeeze": lambda d: call(lambda m, x: x.squeeze(2), (2, 1, 6)), "unsqueeze": _method("unsqueeze", 1),
    "mean": _method("mean", 1, keepdim=True), "sum": _method("sum", (1, 2)), "narrow": _method("narrow", 3, 2, 3),
    "movedim": _method("movedim", 3, 1), "flip": _method("flip", 1), "__getitem__": _method("__getitem__", (slice(None), 0)),
    "mul": lambda d: call(lambda m, x, c=num(d): x.mul(c)),
    "matmul": lambda d: call(lambda m, x: x.matmul(m.w), (3, 4), w=torch.randn(4, 2, generator=gen_of(d))),
    "div": lambda d: call(lambda m, x, c=num(d, 0.5, 3.0): x.div(c)),
    "view": lambda d: call(lambda m, x: x.view(-1, 60)), "reshape": lambda d: call(lambda m, x: x.reshape(-1, 10, 6)),
    "flatten": _method("flatten", 1), "contiguous": _method("contiguous"), "clone": _method("clone"),
    "relu": _method("relu"), "relu_": lambda d: call(lambda m, x: (x * 1.0).relu_()), "abs": _method("abs"),
    "clamp": lambda d: call(lambda m, x, r=_clamp_range(d): x.clamp(*r)),
    "clip": lambda d: call(lambda m, x, r=_clamp_range(d): x.clip(max=r[1])),
    "clamp_": lambda d: call(lambda m, x, r=_clamp_range(d): (x * 1.0).clamp_(*r)),
    "clip_": lambda d: call(lambda m, x, r=_clamp_range(d): (x * 1.0).clip_(r[0])),
    "clamp_min": lambda d: call(lambda m, x, c=num(d): x.clamp_min(c)),
    "clamp_max": lambda d: call(lambda m, x, c=num(d): x.clamp_max(c)),
    "max": lambda d: call(lambda m, x: x.max(1, keepdim=True).values),
    "maximum": lambda d: call(lambda m, x: x.maximum(-x)),
    "amax": _method("amax", 2),
}


def _key(target) -> str:
    return target if isinstance(target, str) else f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', target)}"


def test_every_registered_target_has_a_case():
    missing = [_key(t) for t in REGISTRY.targets() if t not in _CASES]
    assert not missing, f"registered op targets without a case in tests/test_op_properties.py: {missing}"


# --- the checks -----------------------------------------------------------------------------------


def _jvp(op, values, tangents):
    return torch.func.jvp(op.forward, tuple(values), tuple(tangents))[1]


def check_case(model: nn.Module, shape: tuple[int, ...], g: torch.Generator, scale: float) -> None:
    """The three properties of the module doc for ``model`` on inputs of one sample ``shape``,
    in a cell: the square [-1, 1]^2 of a random plane through a random input."""
    twin, graph = prepare(model, torch.float64, "cpu", shape)
    x0 = torch.randn(1, *shape, generator=g, dtype=torch.float64)
    e = torch.randn(2, *shape, generator=g, dtype=torch.float64) * scale
    square = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    uv = sample_polygon(square, 64, np.random.default_rng(int(torch.randint(2**31, (1,), generator=g))))
    uvt = torch.as_tensor(uv)
    x = x0 + torch.einsum("nk,k...->n...", uvt, e)
    with torch.no_grad():
        expected = twin(x)  # the model itself, in float64
        assert torch.allclose(graph.forward(x), expected, rtol=1e-12, atol=1e-12 * float(expected.abs().max() + 1))

    # push against forward and its jvp, node by node from the input state (x0, e1, e2)
    states = [torch.cat([x0, e], 0)[None]]  # (1, 3, *shape)
    for node in graph.nodes:
        args = [states[a] for a in node.args]
        values, tangents = [a[:, 0] for a in args], [[a[:, k] for a in args] for k in (1, 2)]
        value = node.op.forward(*values)
        if isinstance(node.op, AffineOp):
            out = node.op.push(*[a.clone() for a in args])
            off = node.op.offset(value.dim())
            lin = node.op.linear(*values)
            assert torch.allclose(lin if off is None else lin + off, value, rtol=1e-12, atol=1e-12)
            assert torch.allclose(out[:, 0], value, rtol=1e-12, atol=1e-12)
            for k in (1, 2):
                assert torch.allclose(out[:, k], _jvp(node.op, values, tangents[k - 1]), rtol=1e-10, atol=1e-10)
        else:
            assert isinstance(node.op, SplitOp)
            out = torch.stack([value] + [_jvp(node.op, values, tangents[k]) for k in (0, 1)], 1)
        states.append(out)

    # bounds over the square contain the outputs at the sampled points
    with torch.no_grad():
        shapes = [tuple(v.shape[1:]) for v in graph.forward(x0, values=True)]
        cells = corners(Polygons.single(torch.as_tensor(square)))
        y = expected.reshape(len(x), -1)
        for relaxation in ("zonotope", "interval"):
            forms = OutputBounds(graph, shapes, relaxation).output_forms(0, cells, {0: states[0]})
            assert forms is not None
            lo, hi = form_bounds(cells, forms)
            assert (y >= lo).all() and (y <= hi).all(), relaxation
        boxes = OutputBounds(graph, shapes).output_boxes(0, cells, {0: states[0]})  # symbolic intervals
        signed = [n.op for n in graph.nodes if isinstance(n.op, AffineOp) and n.op.magnitude(
            *[torch.ones(1, *shapes[a], dtype=torch.float64) for a in n.args]) is None]
        assert (boxes is None) == bool(signed)
        if boxes is not None:
            lo, hi = form_bounds(cells, *boxes)
            assert (y >= lo).all() and (y <= hi).all(), "symbolic"


@pytest.mark.parametrize("target", list(_CASES), ids=_key)
@settings(max_examples=examples(4), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_op_kind_against_torch(target, data):
    model, shape = _CASES[target](data)
    if not isinstance(model, Call):  # fx traces into the root module: make the module a leaf
        model = nn.Sequential(model)
    g = gen_of(data)
    check_case(model, shape, g, scale=data.draw(st.sampled_from([0.1, 1.0])))


def test_an_affine_op_cannot_override_forward_or_push():
    with pytest.raises(TypeError, match="overrides forward"):
        class Shifted(AffineOp):  # noqa: F841 - the class statement itself must fail
            def linear(self, x):
                return x

            def forward(self, x):
                return x + 1


class _Biased(nn.Module):
    def forward(self, x):
        return 2 * x + 1


def test_an_affine_op_whose_linear_part_has_a_bias_is_refused():
    """``ModuleLinearOp`` applies a module as the linear part: given one with a bias, forward
    agrees with the model but the tangents would carry the bias; the tracer refuses it."""
    from splinecam.ops import ModuleLinearOp
    from splinecam.run.trace import UnsupportedModelError

    REGISTRY.register(_Biased, ModuleLinearOp)
    try:
        with pytest.raises(UnsupportedModelError, match="does not compute what the model computes"):
            prepare(nn.Sequential(nn.Linear(2, 3), _Biased()), torch.float64, "cpu", (2,))
    finally:
        REGISTRY.unregister(_Biased)


@pytest.mark.parametrize("slope", [5e-324, 1e-310])
def test_bounds_stay_sound_with_subnormal_slopes(slope):
    """Products below the smallest normal number round by absolute, not relative, amounts: the
    bounds' slack covers them (hypothesis found a LeakyReLU slope of 5e-324)."""
    for seed in range(20):
        check_case(nn.Sequential(nn.LeakyReLU(slope)).eval(), (2, 5, 6), torch.Generator().manual_seed(seed), 0.1)
