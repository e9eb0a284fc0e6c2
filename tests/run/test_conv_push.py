"""Partitions whose convolutions push by unfolded matrix products or dense matrices (the default
on small maps, :meth:`ConvOp.lowering`) are exactly those of torch's own conv: the same regions,
codes and edge units, maps to 1e-9; on CNNs with max-pooling, residual blocks, concatenation,
strided, dilated and grouped convs, trained-like BatchNorm and integer weights; and under a
region limit, the partial result is finished regions of that partition."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import splinecam as sc
from helpers import assert_same_partition, examples, keyed
from splinecam.ops import ConvOp
from zoo_models import _setup, _with_stats


class Concat(nn.Module):
    """Two branches (a strided conv; a dilated grouped conv after a max-pool) concatenated,
    BatchNorm, ReLU, a 1x1-map conv (its matrix) and a head."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(2, 4, 3, stride=2, padding=1)
        self.b = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(2, 4, 3, padding=2, dilation=2, groups=2))
        self.bn = nn.BatchNorm2d(8)
        self.c = nn.Conv2d(8, 6, 4)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        h = torch.relu(self.bn(torch.cat([self.a(x), self.b(x)], 1)))
        return self.fc(torch.relu(self.c(h)).flatten(1))


def _trained(model: nn.Module, seed: int) -> nn.Module:
    """Random BatchNorm scales and shifts and conv biases on top of the zoo's statistics."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=gen))
                m.bias.copy_(0.3 * torch.randn(m.num_features, generator=gen))
            elif isinstance(m, nn.Conv2d) and m.bias is not None:
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=gen))
    return _with_stats(model)


def _both(model, sl, **options):
    """(torch's conv everywhere, the default ways) partitions."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ConvOp, "lowering", lambda self, size: "torch")
        plain = sc.partition(model, sl, progress=False, **options)
    return plain, sc.partition(model, sl, progress=False, **options)


def _ways(model, shape) -> set:
    """The ways the model's convs push on inputs of ``shape``."""
    seen, hooks = set(), []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(lambda c, a, o: seen.add(ConvOp(c).lowering(tuple(a[0].shape[2:])))))
    with torch.no_grad():
        model(torch.zeros(1, *shape, dtype=next(model.parameters()).dtype))
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("name", ["vgg", "resnet"])
@pytest.mark.parametrize("compose", [True, False])
def test_zoo_cnns_are_the_same_partition(name, compose):
    model, sl, _ = _setup(name)
    model = _trained(model, 1)
    assert _ways(model, sl.input_shape) >= {"matrix", "gemm"}
    plain, part = _both(model, sl, compose=compose)
    assert_same_partition(part, plain)
    assert len(part) > 10


@settings(max_examples=examples(5), deadline=None)
@given(seed=st.integers(0, 10**6))
def test_concatenated_grouped_dilated_branches_are_the_same_partition(seed):
    torch.manual_seed(seed)
    model = _trained(Concat(), seed)
    sl = sc.Slice.from_points(*torch.randn(3, 2, 8, 8, generator=torch.Generator().manual_seed(seed)))
    plain, part = _both(model, sl)
    assert_same_partition(part, plain)


def test_integer_weights_are_the_same_partition():
    """Integer kernels on an integer slice: many lines through the same vertices."""
    gen = torch.Generator().manual_seed(5)
    model = nn.Sequential(nn.Conv2d(1, 3, 2, bias=False), nn.ReLU(), nn.Conv2d(3, 2, 2, padding=1), nn.ReLU(),
                          nn.Flatten(), nn.Linear(2 * 3 * 3, 2)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randint(-2, 3, p.shape, generator=gen))
    origin = torch.randint(-1, 2, (1, 3, 3), generator=gen).double()
    basis = np.stack([np.eye(9)[0], np.eye(9)[4]], 1)
    sl = sc.Slice(origin, basis, np.array([[-2.0, -2.0], [2.0, -2.0], [2.0, 2.0], [-2.0, 2.0]]))
    assert _ways(model, sl.input_shape) == {"gemm", "matrix"}
    plain, part = _both(model, sl)
    assert_same_partition(part, plain)
    assert len(part) > 5


def test_a_region_limit_hands_back_regions_of_the_same_partition():
    model, sl, _ = _setup("resnet")
    model = _trained(model, 2)
    plain, _ = _both(model, sl)
    with pytest.raises(sc.RegionLimitError) as err:
        sc.partition(model, sl, progress=False, max_regions=len(plain) - 1, chunk_size=4)
    partial = err.value.partial
    assert 0 < len(partial) < len(plain)
    full = keyed(plain)
    assert all(k in full for k in keyed(partial))
    i = np.array([full[k] for k in keyed(partial)])
    np.testing.assert_allclose(partial.areas, plain.areas[i], rtol=0, atol=1e-9 * plain.slice.area)
