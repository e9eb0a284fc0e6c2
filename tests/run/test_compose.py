"""Composed affine ops (``compose=True``, the default) give exactly the partition of the chains
they replace: the same regions, codes and edge units, maps to 1e-9; values read by two nodes
are not composed away; a composed op that disagrees with its chain is not used; limits and
boundary first work on composed graphs."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import splinecam as sc
from helpers import assert_same_boundary, assert_same_partition, examples, forced
from splinecam.ops import ChannelAffineOp, ConvOp, LinearOp
from splinecam.partition import check_shapes
from splinecam.run.chain import read_chain
from splinecam.run.compose import compose
from splinecam.run.trace import prepare


def _trained_like(model: nn.Module, seed: int) -> nn.Module:
    """Random BatchNorm statistics and affine parameters (as after training), random biases; eval."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(0.5 * torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(0.3 + torch.rand(m.num_features, generator=gen))
                m.weight.copy_(0.5 + torch.rand(m.num_features, generator=gen))
                m.bias.copy_(0.3 * torch.randn(m.num_features, generator=gen))
            elif isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=gen))
    return model.eval()


def bn_cnn(seed: int, stride: int = 2, groups: int = 2) -> nn.Sequential:
    """1x8x8: strided conv + BN, grouped conv + two BNs, max-pool to 1x1, adaptive average pool to
    3x3 (replication), flatten and linear; then linear + BN1d + linear and a head."""
    torch.manual_seed(seed)
    side = 8 // stride
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=stride, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1, groups=groups, bias=False), nn.BatchNorm2d(4), nn.BatchNorm2d(4), nn.ReLU(),
        nn.MaxPool2d(side), nn.AdaptiveAvgPool2d((3, 3)), nn.Flatten(), nn.Linear(36, 8), nn.ReLU(),
        nn.Linear(8, 6), nn.BatchNorm1d(6), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3),
    )
    return _trained_like(model, seed)


class SharedValues(nn.Module):
    """Residual blocks whose affine values are read twice: a BN output that feeds a conv and the
    sum, a conv output that feeds a BN and the sum; and a plain conv + BN inside the block."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 3, 3, padding=1)
        self.bn0 = nn.BatchNorm2d(3)
        self.conv1 = nn.Conv2d(3, 3, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(3)
        self.conv2 = nn.Conv2d(3, 3, 1)
        self.bn2 = nn.BatchNorm2d(3)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        y = self.bn0(torch.relu(self.stem(x)))
        h = torch.relu(self.bn1(self.conv1(y)) + y)  # y read by conv1 and the sum
        z = self.conv2(h)
        h = torch.relu(self.bn2(z) + z)  # z read by bn2 and the sum
        return self.fc(self.pool(h).flatten(1))


def integer_model() -> nn.Sequential:
    """Integer weights, BatchNorms whose scale and shift are integers (eps 0, variance 1/4): many
    lines through the integer points of the slice, concurrent and parallel lines."""
    conv = nn.Conv2d(1, 3, 2, bias=False)
    bn = nn.BatchNorm2d(3, eps=0.0)
    lin1, lin2 = nn.Linear(12, 4), nn.Linear(4, 4)
    bn1 = nn.BatchNorm1d(4, eps=0.0)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        conv.weight.copy_(torch.randint(-2, 3, conv.weight.shape, generator=gen))
        for b in (bn, bn1):
            b.running_var.fill_(0.25)
            b.running_mean.copy_(torch.randint(-1, 2, b.running_mean.shape, generator=gen))
            b.weight.copy_(torch.randint(1, 3, b.weight.shape, generator=gen))
            b.bias.copy_(torch.randint(-1, 2, b.bias.shape, generator=gen))
        for lin in (lin1, lin2):
            lin.weight.copy_(torch.randint(-2, 3, lin.weight.shape, generator=gen))
            lin.bias.copy_(torch.randint(-1, 2, lin.bias.shape, generator=gen))
    head = nn.Linear(4, 3)
    with torch.no_grad():
        head.weight.copy_(torch.randint(-2, 3, head.weight.shape, generator=gen))
        head.bias.zero_()
    return nn.Sequential(conv, bn, nn.ReLU(), nn.Flatten(), lin1, bn1, lin2, nn.ReLU(), head).eval()


def _slice(shape, seed: int, scale: float = 1.0) -> sc.Slice:
    gen = torch.Generator().manual_seed(seed)
    return sc.Slice.from_points(*(scale * torch.randn(3, *shape, generator=gen)))


def _graphs(model, sl):
    """(names of the traced nodes, names and op types of the composed nodes)."""
    twin, graph = prepare(model, torch.float64, "cpu", sl.input_shape)
    shapes = check_shapes(twin, graph, sl, torch.float64, "cpu")
    composed, new_shapes = compose(graph, shapes, torch.float64, "cpu")
    assert len(new_shapes) == len(composed.nodes) + 1
    with torch.no_grad():  # the shapes are those of the composed graph's values
        x = sl.to_input(np.zeros((1, 2)))
        assert [tuple(v.shape[1:]) for v in composed.forward(x, values=True)] == new_shapes
    return [n.name for n in graph.nodes], {n.name: type(n.op) for n in composed.nodes}


def _same(model, sl, **options):
    dense = sc.partition(model, sl, progress=False, compose=False, **options)
    composed = sc.partition(model, sl, progress=False, **options)
    assert composed.layers == dense.layers
    assert_same_partition(composed, dense)
    return composed


def test_the_cnn_composes_where_it_should():
    model = bn_cnn(0)
    names, composed = _graphs(model, _slice((1, 8, 8), 0))
    assert composed["0+1"] is ConvOp and composed["3+4+5"] is ConvOp  # conv + BN, conv + BN + BN
    assert composed["8+9+10"] is LinearOp  # adaptive pool (replicating 1x1 to 3x3) + flatten + linear: 4 columns
    assert composed["12+13+14"] is LinearOp  # linear + BN1d + linear
    assert "7" in composed and "16" in composed  # the max-pool and the head stay as they are


@pytest.mark.parametrize("stride, groups", [(2, 2), (1, 4), (2, 1)])
def test_cnn_with_batchnorm_composed_is_the_same_partition(stride, groups):
    model = bn_cnn(1, stride, groups)
    part = _same(model, _slice((1, 8, 8), 1, 0.5 if stride == 2 else 0.25))
    assert len(part) > 20


@settings(max_examples=examples(6), deadline=None)
@given(seed=st.integers(0, 10**6))
def test_random_cnns_composed_are_the_same_partition(seed):
    _same(bn_cnn(seed, 2, 2), _slice((1, 8, 8), seed, 0.5))


def test_values_read_twice_are_not_composed_away():
    model = _trained_like(SharedValues(), 2)
    sl = _slice((1, 5, 5), 2)
    names, composed = _graphs(model, sl)
    assert composed["bn0"] is ChannelAffineOp  # read by conv1 and the sum
    assert composed["conv1+bn1"] is ConvOp  # conv1's output is read by bn1 only
    assert composed["conv2"] is ConvOp and composed["bn2"] is ChannelAffineOp  # z is read twice
    assert len(_same(model, sl)) > 10


def test_integer_weights_composed_are_the_same_partition():
    model = integer_model()
    gen = torch.Generator().manual_seed(4)
    origin = torch.randint(-1, 2, (1, 3, 3), generator=gen).double()
    basis = np.stack([np.eye(9)[0], np.eye(9)[4]], 1)
    sl = sc.Slice(origin, basis, np.array([[-2.0, -2.0], [2.0, -2.0], [2.0, 2.0], [-2.0, 2.0]]))
    names, composed = _graphs(model, sl)
    assert composed["0+1"] is ConvOp
    assert composed["3+4+5+6"] is LinearOp  # flatten, linear, BN1d, linear: one 12 -> 4 layer
    assert len(_same(model, sl)) > 5


@pytest.mark.parametrize("executor", ["fast", "engine"])
def test_linear_after_linear_on_both_executors(executor):
    """A plain MLP with linear layers back to back (no activation between): one layer each."""
    torch.manual_seed(6)
    model = _trained_like(nn.Sequential(nn.Linear(2, 16), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 8),
                                        nn.Linear(8, 3)), 6)
    sl = sc.Slice.box((-2, -2), (2, 2))
    graph, shapes = compose(*read_chain(model, sl).graph(2), torch.float64, "cpu")
    assert [n.name for n in graph.nodes] == ["0+1", "2", "3+4"]
    with forced(executor):
        part = _same(model, sl)
        assert len(part) > 20
        db = sc.decision_boundary(model, sl, progress=False)
    assert_same_boundary(db, part.decision_boundary())


def test_a_composed_op_that_disagrees_with_its_chain_is_not_used(monkeypatch):
    """The tracer's check of every op, for composed ops: a wrong composition (the BN's shift
    dropped) is refused with a warning and the chain runs."""
    original = ConvOp.then

    def wrong(self, nxt, shape):
        fused = original(self, nxt, shape)
        if fused is not None:
            fused._bias = None
        return fused

    monkeypatch.setattr(ConvOp, "then", wrong)
    model = bn_cnn(3)
    sl = _slice((1, 8, 8), 3, 0.5)
    with pytest.warns(RuntimeWarning, match="disagrees"):
        names, composed = _graphs(model, sl)
    assert "0+1" not in composed and composed["1"] is ChannelAffineOp
    with pytest.warns(RuntimeWarning, match="disagrees"):
        _same(model, sl)


def test_limits_on_composed_graphs_hand_back_finished_regions():
    model, sl = bn_cnn(4), _slice((1, 8, 8), 4, 0.25)
    full = sc.partition(model, sl, progress=False)
    with pytest.raises(sc.RegionLimitError) as err:
        sc.partition(model, sl, progress=False, max_regions=len(full) - 1, chunk_size=4)
    partial = err.value.partial
    assert not partial.complete and 0 < len(partial) < len(full)
    assert partial.verify(n_points=300).ok
    small = sc.partition(model, sl, progress=False, max_memory="200KB")
    assert_same_partition(small, full)


def test_boundary_first_on_a_composed_graph():
    model, sl = bn_cnn(5), _slice((1, 8, 8), 5, 0.5)
    db = sc.decision_boundary(model, sl, progress=False)
    assert_same_boundary(db, sc.partition(model, sl, progress=False, compose=False).decision_boundary())
    dense = sc.decision_boundary(model, sl, progress=False, compose=False)
    assert_same_boundary(db, dense)


def test_compose_option_is_checked():
    with pytest.raises(ValueError, match="compose must be True or False"):
        sc.partition(bn_cnn(0), _slice((1, 8, 8), 0), progress=False, compose="no")
    sc.partition(nn.Sequential(nn.Linear(2, 2)), sc.Slice.box((-1, -1), (1, 1)), progress=False, compose=True)
    with pytest.raises(ValueError, match="compose must be True or False"):  # equal to True, but not a bool
        sc.partition(bn_cnn(0), _slice((1, 8, 8), 0), progress=False, compose=1)


def test_a_chain_that_cannot_be_differentiated_stays(monkeypatch):
    """A user's op whose linear part runs through NumPy cannot be pulled back: a warning, and the
    chain runs as it is."""
    from splinecam.ops import FunctionOp, affine

    def via_numpy(t):
        return torch.from_numpy(t.detach().numpy() * 2.0)

    class Twice(nn.Module):
        def forward(self, x):
            return 2.0 * x

    monkeypatch.setattr(affine, "PULL_ELEMENTS", 4)  # the pull-back path
    sc.register_op(Twice, lambda m: FunctionOp(via_numpy))
    try:
        torch.manual_seed(7)
        model = nn.Sequential(nn.Linear(2, 6), nn.ReLU(), Twice(), nn.Linear(6, 3)).eval()
        with pytest.warns(RuntimeWarning, match="could not compose"):
            _same(model, sc.Slice.box((-1, -1), (1, 1)))
    finally:
        sc.unregister_op(Twice)
