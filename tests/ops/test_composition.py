"""Ops composed into one (``then``, ``absorb``) compute what the ops compute one after the
other, through their own ``forward`` (linear part plus offset), on random inputs."""

import pytest
import torch
from torch import nn

from splinecam.ops import ChannelAffineOp, ConvOp, FunctionOp, LinearOp, ModuleLinearOp
from splinecam.ops import affine

GEN = torch.Generator().manual_seed(0)


def _randn(*shape):
    return torch.randn(*shape, generator=GEN, dtype=torch.float64)


def _bn(c):
    return ChannelAffineOp(0.5 + torch.rand(c, generator=GEN, dtype=torch.float64), _randn(c))


def _chain(ops, x):
    for op in ops:
        x = op.forward(x)
    return x


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12 * float(b.abs().max()))


@pytest.mark.parametrize("bias, groups, stride", [(True, 1, 1), (False, 2, 2), (True, 4, 3)])
def test_conv_then_batchnorm(bias, groups, stride):
    conv = nn.Conv2d(4, 8, 3, stride, padding=1, groups=groups, bias=bias, padding_mode="reflect").double()
    op, bn = ConvOp(conv), _bn(8)
    x = _randn(3, 4, 7, 7)
    fused = op.then(bn, (8, 3, 3))
    _close(fused.forward(x), _chain([op, bn], x))
    assert op.then(_bn(5), (5, 3, 3)) is None  # not its channels
    assert op.then(LinearOp(_randn(2, 8), None), (8,)) is None


def test_linear_and_batchnorm_pairs():
    lin, bn, bn2 = LinearOp(_randn(6, 5), _randn(6)), _bn(6), _bn(6)
    x = _randn(4, 5)
    _close(lin.then(bn, (6,)).forward(x), _chain([lin, bn], x))
    y = _randn(2, 6, 3)
    _close(bn.then(bn2, (6, 3)).forward(y), _chain([bn, bn2], y))
    assert lin.then(bn, (3, 6)) is None  # a BN1d over (L, C) scales dim 1, not the features


@pytest.mark.parametrize("basis", [True, False])
def test_absorb_a_pool_flatten_and_batchnorm_both_ways(basis, monkeypatch):
    """The chain's matrix read off a basis (sparse product) or the rows pulled back (vjp)."""
    if not basis:
        monkeypatch.setattr(affine, "PULL_ELEMENTS", 64)
    ops = [_bn(3), ModuleLinearOp(nn.AdaptiveAvgPool2d((3, 3))), FunctionOp(lambda t: t.flatten(1))]
    head = LinearOp(_randn(5, 27), _randn(5))
    x = _randn(4, 3, 2, 2)
    fused = head.absorb(ops, (3, 2, 2))
    assert fused.weight.shape == (5, 12)
    _close(fused.forward(x), _chain(ops + [head], x))
    assert fused.absorbs((3, 2, 2)) and not head.absorbs((3, 9))


def test_absorb_a_dense_prefix():
    first, head = LinearOp(_randn(7, 4), _randn(7)), LinearOp(_randn(3, 7), None)
    x = _randn(5, 4)
    fused = head.absorb([first], (4,))
    assert fused.weight.shape == (3, 4)
    _close(fused.forward(x), _chain([first, head], x))


def test_costs():
    conv = ConvOp(nn.Conv2d(4, 8, 3, groups=2).double())
    assert conv.cost([(4, 5, 5)], (8, 3, 3)) == 8 * 9 * 2 * 9
    assert LinearOp(_randn(6, 5), None).cost([(5,)], (6,)) == 30
    assert _bn(6).cost([(6, 2)], (6, 2)) == 12
    assert ModuleLinearOp(nn.Flatten()).cost([(6, 2)], (12,)) == 24
