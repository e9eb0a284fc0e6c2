"""Tracing: error messages, custom ops for functions and methods, max-pooling windows, PReLU tables."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import splinecam as sc
from splinecam.ops import FunctionOp, PoolMaxOp


class Smooth(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 4)
        self.act = nn.GELU()

    def forward(self, x):
        h = torch.sigmoid(self.fc(x))
        return self.act(h * h).sum(1, keepdim=True) + F.silu(x).mean(1, keepdim=True)


def test_error_lists_every_unsupported_node_with_location():
    with pytest.raises(sc.UnsupportedModelError) as info:
        sc.partition(Smooth(), sc.Slice.box((-1, -1), (1, 1)), progress=False)
    msg = str(info.value)
    assert "sigmoid" in msg and "act (GELU)" in msg and "silu" in msg
    assert msg.count("smooth, not piecewise-linear") == 3
    assert "product of two activations" in msg
    assert "test_architectures.py:" in msg  # where in the model's code


def test_training_mode_and_fx_failures_are_explained():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 1))
    with pytest.raises(sc.UnsupportedModelError, match="model.eval"):
        sc.partition(model, sc.Slice.box((-1, -1), (1, 1)), progress=False)
    assert model.training  # untouched

    class Branchy(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(sc.UnsupportedModelError, match="torch.fx"):
        sc.partition(Branchy(), sc.Slice.box((-1, -1), (1, 1)), progress=False)


def test_user_model_is_unchanged():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2, 1))
    model.eval().float()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sl = sc.Slice.from_points(*torch.randn(3, 1, 4, 4))
    sc.partition(model, sl, progress=False)
    assert not model.training
    for k, v in model.state_dict().items():
        assert v.dtype == torch.float32 if v.is_floating_point() else True
        assert torch.equal(v, before[k])
    assert all(p.requires_grad for p in model.parameters())


def double(x):
    return 2 * x


def test_register_function():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 3)

        def forward(self, x):
            return double(self.fc(x)).relu().sum(1, keepdim=True)

    sl = sc.Slice.box((-1, -1), (1, 1))
    sc.register_op(double, lambda x: FunctionOp(lambda t: 2 * t))
    try:
        part = sc.partition(Model(), sl, progress=False)
        assert part.verify(n_points=500).ok
    finally:
        sc.unregister_op(double)


@pytest.mark.parametrize("kw", [
    dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=(2, 3), stride=(1, 2)),
    dict(kernel_size=3, stride=2, ceil_mode=True), dict(kernel_size=2, dilation=2, padding=1),
])
def test_max_pool_windows_reproduce_torch(kw):
    pool = nn.MaxPool2d(**kw)
    op = PoolMaxOp(pool, 2, pool.kernel_size, pool.stride, pool.padding, pool.dilation)
    x = torch.randn(4, 3, 7, 9, dtype=torch.float64)
    assert torch.equal(op.forward(x), pool(x))
    pool1 = nn.MaxPool1d(**{k: (v[0] if isinstance(v, tuple) else v) for k, v in kw.items()})
    op1 = PoolMaxOp(pool1, 1, pool1.kernel_size, pool1.stride, pool1.padding, pool1.dilation)
    assert torch.equal(op1.forward(x[:, :, 0]), pool1(x[:, :, 0]))


def test_prelu_per_channel_on_conv_features():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.PReLU(3), nn.Flatten(), nn.Linear(12, 1)).eval()
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([-0.5, 0.1, 2.0]))
    part = sc.partition(model, sc.Slice.from_points(*torch.randn(3, 1, 4, 4)), progress=False)
    assert part.verify(n_points=2000).ok


def test_in_place_and_one_sided_clamp_spellings():
    """``x.relu_()``, ``torch.clamp_min`` and ``x.clamp_max`` are the piecewise-linear ops they name."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Linear(2, 6), nn.Linear(6, 6), nn.Linear(6, 2)

        def forward(self, x):
            h = torch.clamp_min(self.b(self.a(x).relu_()), -0.2)
            return self.c(h.clamp_max(0.5))

    torch.manual_seed(0)
    model = Net().eval()
    part = sc.partition(model, sc.Slice.box((-2, -2), (2, 2)), progress=False)
    assert part.verify(2000).ok
    assert len(np.unique(part.codes, axis=0)) == len(part)
    assert [layer.bits for layer in part.layers] == [6, 6, 6]  # one breakpoint per unit each
