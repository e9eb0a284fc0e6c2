"""ConvOp's ways of pushing a conv's linear part ("gemm": unfolded inputs of many samples in one
matrix product; "matrix": the dense matrix of the whole conv) give torch's conv to rounding, on
any stride, padding, dilation, groups and rectangular kernels and maps; exactly on integers;
and ``lowering`` picks each where it is meant to.  Products that skip the inputs zero in every
row give the full product."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

from helpers import examples
from splinecam.ops import ChannelAffineOp, ConvOp, LinearOp
from splinecam.ops.affine import live_product


@st.composite
def convs(draw):
    """(conv, input (B, C_in, H, W)) with random geometry, weights and inputs."""
    groups = draw(st.sampled_from([1, 2, 3]))
    cin, cout = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride, dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3))), (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    size = [max(draw(st.integers(1, 10)), dilation[i] * (k[i] - 1) + 1 - 2 * padding[i]) for i in range(2)]
    seed = draw(st.integers(0, 10**6))
    torch.manual_seed(seed)
    conv = nn.Conv2d(cin, cout, k, stride, padding, dilation, groups, bias=draw(st.booleans())).double()
    return conv, torch.randn(draw(st.integers(1, 5)), cin, *size, dtype=torch.float64)


@settings(max_examples=examples(150), deadline=None)
@given(case=convs())
def test_every_way_is_torchs_conv(case):
    conv, x = case
    op = ConvOp(conv)
    ref = F.conv2d(x, op.weight, None, conv.stride, conv.padding, conv.dilation, conv.groups)
    ways = ["matrix"] + (["gemm"] if conv.groups == 1 else [])
    for way in ways + [op.lowering(tuple(x.shape[2:]))]:
        y = op.lowered(x, way)
        assert y.shape == ref.shape and y.is_contiguous()
        torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12 * float(ref.abs().max()))
    torch.testing.assert_close(op.linear(x), ref, rtol=1e-12, atol=1e-12 * float(ref.abs().max()))


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (3, 5), (4, 4), (8, 8)])
def test_integer_weights_and_inputs_are_exact(size):
    gen = torch.Generator().manual_seed(sum(size))
    conv = nn.Conv2d(4, 6, 3, padding=1, bias=False).double()
    with torch.no_grad():
        conv.weight.copy_(torch.randint(-3, 4, conv.weight.shape, generator=gen))
    x = torch.randint(-5, 6, (7, 4, *size), generator=gen).double()
    op = ConvOp(conv)
    ref = F.conv2d(x, op.weight, padding=1)
    for way in ("gemm", "matrix"):
        assert torch.equal(op.lowered(x, way), ref)


def test_the_way_picked_by_size():
    op = ConvOp(nn.Conv2d(8, 8, 3, padding=1).double())
    assert [op.lowering(s) for s in [(1, 1), (2, 2), (3, 3), (4, 4), (8, 8), (16, 16), (32, 32)]] == \
        ["matrix", "matrix", "matrix", "gemm", "gemm", "torch", "torch"]
    assert ConvOp(nn.Conv2d(8, 8, 3, padding=1, groups=2).double()).lowering((4, 4)) == "torch"  # grouped: no gemm
    assert ConvOp(nn.Conv2d(8, 8, 3, padding=1, groups=2).double()).lowering((2, 2)) == "matrix"
    assert ConvOp(nn.Conv2d(8, 8, 3, padding="same").double()).lowering((2, 2)) == "torch"
    assert ConvOp(nn.Conv2d(8, 8, 3, padding=1, padding_mode="circular").double()).lowering((2, 2)) == "torch"
    assert ConvOp(nn.Conv1d(8, 8, 3, padding=1).double()).lowering((4,)) == "torch"
    assert ConvOp(nn.Conv2d(512, 512, 3, padding=1).double()).lowering((4, 4)) == "gemm"  # its matrix: too large
    assert ConvOp(nn.Conv2d(64, 8, 3, padding=1).double()).lowering((16, 16)) == "gemm"  # a deep kernel: 576 inputs
    assert ConvOp(nn.Conv2d(63, 8, 3, padding=1).double()).lowering((16, 16)) == "torch"


def test_a_composed_conv_pushes_its_own_weight():
    """The matrix and rows kept for one weight are not reused by the conv composed with a
    BatchNorm after it (a new weight)."""
    torch.manual_seed(2)
    op = ConvOp(nn.Conv2d(3, 4, 3, padding=1).double())
    bn = ChannelAffineOp(torch.rand(4, dtype=torch.float64) + 0.5, torch.randn(4, dtype=torch.float64))
    for size in [(2, 2), (4, 4)]:
        x = torch.randn(5, 3, *size, dtype=torch.float64)
        op.linear(x)
        fused = op.then(bn, (4, *size))
        torch.testing.assert_close(fused.linear(x), F.conv2d(x, fused.weight, padding=1), rtol=1e-12, atol=1e-12)
        assert not torch.allclose(fused.linear(x), op.linear(x))


def test_products_skip_the_inputs_zero_in_every_row():
    """``live_product`` is ``F.linear`` whichever columns are zero: after a ReLU (half of them,
    the same in every row), with a new live column in a later batch, with none, with all; its
    kept columns follow the weight."""
    torch.manual_seed(3)
    op = LinearOp(torch.randn(80, 40, dtype=torch.float64), None)
    dead = torch.rand(40) < 0.5
    for x in [torch.randn(6, 40, dtype=torch.float64).masked_fill(dead, 0.0),  # about half live
              torch.randn(6, 40, dtype=torch.float64).masked_fill(dead & (torch.arange(40) > 3), 0.0),  # a few more
              torch.zeros(6, 40, dtype=torch.float64), torch.randn(6, 40, dtype=torch.float64)]:
        torch.testing.assert_close(live_product(op, x, op.weight), F.linear(x, op.weight), rtol=1e-13, atol=1e-13)
    x = torch.relu(torch.randn(5, 40, dtype=torch.float64))
    torch.testing.assert_close(op.forward(x), F.linear(x, op.weight), rtol=1e-13, atol=1e-13)
    other = torch.randn(80, 40, dtype=torch.float64)
    torch.testing.assert_close(live_product(op, x, other), F.linear(x, other), rtol=1e-13, atol=1e-13)
