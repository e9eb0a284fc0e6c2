"""The fast path for plain MLPs (:mod:`splinecam.run.chain`): the same partition as the engine, bit
for bit; it stays bounded on its own; the engine takes every model the path does not know; the
partition keeps the weights it was made with."""

from __future__ import annotations

import copy
import functools
import importlib

import numpy as np
import pytest
import torch
from helpers import arrangement_model, degenerate_mlp, examples, random_mlp, run
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import nn

import splinecam as sc
from splinecam.run import chain
from splinecam.run.trace import prepare
from helpers import fast_path_only

partition_module = importlib.import_module("splinecam.partition")
partition_graph = partition_module.partition_graph  # the engine's entry, before any test patches it


def engine_run(model, sl, **options) -> sc.Partition:
    """The engine's partition of ``model`` (what ``sc.partition`` did before the fast path)."""
    twin, graph = prepare(model, torch.float64, "cpu", sl.input_shape)
    return partition_graph(twin, graph, sl, torch.float64, torch.device("cpu"), False, partition_module.Options(**options))




@pytest.fixture
def fast_only():
    with fast_path_only():
        yield


@pytest.fixture
def fast_results(monkeypatch) -> list:
    """What each run of the fast path returned or raised."""
    results = []
    original = chain.ChainRun.run

    def spy(self, watch):
        try:
            results.append(original(self, watch))
        except Exception as err:
            results.append(err)
            raise
        return results[-1]

    monkeypatch.setattr(chain.ChainRun, "run", spy)
    return results


def assert_identical(a: sc.Partition, b: sc.Partition, atol: float = 0.0) -> None:
    """The same layers and regions (matched by code), with the same edge units and vertices,
    maps and centroid outputs bit-identical (or within ``atol``: float64 rounding)."""
    same = np.array_equal if atol == 0 else functools.partial(np.allclose, rtol=0, atol=atol)
    assert a.layers == b.layers and len(a) == len(b)
    ka = {c.tobytes(): r for r, c in enumerate(a.arrays.packed_codes)}
    kb = {c.tobytes(): r for r, c in enumerate(b.arrays.packed_codes)}
    assert ka.keys() == kb.keys()
    for key, r in ka.items():
        s = kb[key]
        assert same(a.polygons[r], b.polygons[s]) and np.array_equal(a.edge_units[r], b.edge_units[s])
    order_a, order_b = list(ka.values()), [kb[k] for k in ka]
    assert same(a.affine[order_a], b.affine[order_b])
    assert same(a.centroid_outputs[order_a], b.centroid_outputs[order_b])


@settings(max_examples=examples(25), deadline=None)
@given(
    widths=st.lists(st.integers(1, 10), min_size=1, max_size=3),
    seed=st.integers(0, 10**6),
    act=st.sampled_from(["relu", "leaky"]),
    integer=st.booleans(),
    duplicate=st.booleans(),
    dead=st.booleans(),
    through_points=st.booleans(),
    chunk_size=st.sampled_from([None, 1, 4]),
)
@example(widths=[3, 3], seed=13127, act="relu", integer=True, duplicate=True, dead=True, through_points=False,
         chunk_size=None)
def test_fast_path_equals_the_engine(widths, seed, act, integer, duplicate, dead, through_points, chunk_size):
    model = degenerate_mlp(widths, seed, act, integer, duplicate, dead)
    if through_points:
        gen = torch.Generator().manual_seed(seed)
        sl = sc.Slice.from_points(*(torch.rand(3, 2, generator=gen) * 2 - 1))
    else:
        sl = sc.Slice.box((-1.5, -1), (1, 1.5))
    with fast_path_only():
        fast = run(model, sl, chunk_size=chunk_size)  # depth first in chunks of a few pieces, or one
    assert_identical(fast, engine_run(model, sl, chunk_size=chunk_size))
    assert fast.verify(n_points=300).ok


def test_nested_sequentials_identity_and_eval_dropout_take_the_fast_path(fast_only):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Sequential(nn.Linear(2, 6), nn.LeakyReLU(0.2)), nn.Identity(), nn.Dropout(0.5),
                          nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))).eval()
    part = run(model)
    assert [layer.name for layer in part.layers] == ["0.1", "3.1"]
    assert_identical(part, engine_run(model, sc.Slice.box((-1, -1), (1, 1))))


def test_the_fast_path_stays_bounded_and_stops_at_the_limits(fast_results):
    model = random_mlp([12, 12], 1, seed=3)
    full = run(model)
    assert fast_results.pop() is not None
    # chunks of a few pieces, and (30 KB: at most 111 pieces of 12 bits per split) batches cut
    # into parts before the second layer's split: the same partition (up to the rounding of
    # matrix products of other sizes), still on the fast path
    for options in ({"chunk_size": 5}, {"max_memory": "30KB"}, {"max_memory": "30KB", "chunk_size": 1}):
        bounded = run(model, **options)
        assert fast_results.pop() is not None
        assert_identical(bounded, full, atol=1e-12)
        assert bounded.verify(n_points=300).ok
    one_region = run(model, max_memory="5KB")  # the first region alone splits into more pieces:
    assert fast_results.pop() is not None  # the fast path splits the rest of each call again
    assert_identical(one_region, full, atol=1e-12)
    assert one_region.verify(n_points=300).ok
    # the limits end the fast path itself, with the regions it finished
    with pytest.raises(sc.RegionLimitError) as err:
        run(model, max_regions=len(full) - 1, chunk_size=5)
    assert fast_results.pop() is err.value
    part = err.value.partial
    assert not part.complete and 0 < len(part) < len(full) and part.verify(n_points=300).ok
    with pytest.raises(sc.TimeLimitError) as err:
        run(model, timeout=1e-9)
    assert fast_results.pop() is err.value and len(err.value.partial) == 0


@pytest.mark.parametrize("make", [
    lambda: random_mlp([6], 1, 0, extras=True),  # BatchNorm
    lambda: type("MySequential", (nn.Sequential,), {})(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1)),
    lambda: nn.Sequential(nn.Linear(2, 4), nn.Hardtanh(), nn.Linear(4, 1)),
])
def test_other_models_take_the_engine(make, fast_results):
    model = make().eval()
    part = run(model)
    assert fast_results == [] and part.verify(n_points=200).ok


def test_a_registered_op_for_relu_takes_the_engine(fast_results):
    model = arrangement_model([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.25])
    sc.register_op(nn.ReLU, lambda m: sc.ops.clamp_op(0.0, None))  # the same function, the user's op
    try:
        part = run(model)
        with pytest.raises(sc.UnsupportedModelError, match="does not compute what the model computes"):
            sc.register_op(nn.ReLU, lambda m: sc.ops.leaky_relu_op(0.5))  # not what nn.ReLU computes
            run(model)
    finally:
        sc.unregister_op(nn.ReLU)
        sc.unregister_op(nn.ReLU)
    assert fast_results == []
    assert part.verify().ok
    run(model)
    assert fast_results.pop() is not None  # unregistered: back on the fast path


def test_the_partition_keeps_its_weights_and_the_model_is_untouched(fast_only):
    model = random_mlp([8, 8], 1, seed=1)
    before = copy.deepcopy(model.state_dict())
    part = run(model)
    with torch.no_grad():  # training goes on after the snapshot
        for p in model.parameters():
            p.mul_(-2.0)
    assert part.verify(n_points=300).ok  # against the weights it was made with
    assert isinstance(part.model, nn.Sequential) and next(part.model.parameters()).dtype == torch.float64
    assert all(p.dtype == torch.float32 for p in model.parameters())
    with torch.no_grad():
        for p in model.parameters():
            p.div_(-2.0)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    part.drop_model()
    with pytest.raises(ValueError, match="pass the model"):
        part.verify()


def tied_models() -> list[nn.Sequential]:
    """Plain MLPs whose parameters ``named_parameters`` names in a less obvious way: nested
    containers, a linear layer called twice, weights tied between two layers, no bias."""
    torch.manual_seed(3)
    square = nn.Linear(5, 5)
    tied = nn.Linear(5, 5, bias=False)
    tied.weight = square.weight
    return [
        nn.Sequential(nn.Linear(2, 5), nn.Sequential(nn.ReLU(), nn.Sequential(square, nn.LeakyReLU(0.2))), square,
                      nn.ReLU(), tied, nn.ReLU(), nn.Linear(5, 1, bias=False)),
        nn.Sequential(nn.Sequential(nn.Linear(2, 5)), nn.ReLU(), nn.Sequential(nn.Linear(5, 3), nn.ReLU()),
                      nn.Linear(3, 2)),
    ]


@pytest.mark.parametrize("index", range(len(tied_models())))
def test_the_chain_snapshot_is_the_models_parameters_by_name(index, fast_only):
    """The fast path's copies of the weights stand for the model's own snapshot (what verify
    copies into a twin): the same names as named_parameters, the same values, taken once."""
    model = tied_models()[index]
    sl = sc.Slice.box((-1, -1), (1, 1))
    read = chain.read_chain(model, sl)
    named = dict(model.named_parameters())
    assert list(read.state) == list(named)
    assert all(torch.equal(read.state[k], p.detach().double()) for k, p in named.items())
    part = run(model, sl)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)
    assert part.verify(n_points=300).ok  # the weights it was made with
    assert all(torch.equal(a, b.double()) for a, b in zip(part.model.parameters(), read.state.values()))


def test_models_with_tensors_of_their_own_elsewhere_take_the_engine(fast_results):
    """A buffer or parameter the fast path would not copy (on a linear layer, an activation or
    a container) sends the model to the engine, which copies all of them."""
    sl = sc.Slice.box((-1, -1), (1, 1))
    for where in ["0", "1", ""]:
        for buffer in [True, False]:
            model = random_mlp([6], 1, seed=4)
            if buffer:
                model.get_submodule(where).register_buffer("seen", torch.ones(2))
            else:
                model.get_submodule(where).register_parameter("extra", nn.Parameter(torch.ones(1)))
            assert chain.read_chain(model, sl) is None
            assert run(model, sl).verify(n_points=200).ok
    assert fast_results == []


def test_nan_weights_are_reported_as_before():
    model = random_mlp([4], 1, seed=0)
    with torch.no_grad():
        model[0].weight[1, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        run(model)


@pytest.mark.parametrize("op", [sc.ops.relu_op(), sc.ops.leaky_relu_op(0.3), sc.ops.clamp_op(-0.5, 1.0),
                                sc.ops.leaky_relu_op(torch.linspace(0.1, 0.9, 6))])  # per-channel: torch
def test_push_pieces_is_push_of_the_gathered_states(op):
    gen = torch.Generator().manual_seed(0)
    for rows in (2, 3, 4):  # states of a path, a slice, a volume
        state = torch.randn(5, rows, 6, generator=gen, dtype=torch.float64)
        parent = torch.tensor([0, 0, 2, 4, 4, 4, 1])
        code = op.above(torch.randn(7, 6, generator=gen, dtype=torch.float64))
        expected = op.push(state[parent], code)
        assert torch.equal(op.push_pieces(state, parent, code), expected)


@pytest.mark.parametrize("layers", [
    lambda: [nn.Linear(2, 3)],  # no activation: one region
    lambda: [nn.ReLU(), nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)],  # an activation on the input
    lambda: [nn.Linear(2, 5, bias=False), nn.ReLU(), nn.Linear(5, 1, bias=False)],
    lambda: [nn.Linear(2, 4), nn.LeakyReLU(1.0), nn.Linear(4, 1)],  # a breakpoint with no kink
    lambda: [nn.Linear(2, 4), nn.ReLU()],  # ends with the activation
])
def test_small_chains_equal_the_engine(layers, fast_only):
    torch.manual_seed(0)
    model = nn.Sequential(*layers())
    part = run(model)
    assert_identical(part, engine_run(model, sc.Slice.box((-1, -1), (1, 1))))
    assert part.verify(n_points=200).ok


def shared_activation_mlp(widths, seed, act) -> tuple[nn.Sequential, nn.Sequential]:
    """A random MLP that uses one activation instance after every hidden layer, and the same
    network with a fresh instance at each place."""
    model = random_mlp(widths, 2, seed, act=act)
    shared = model[1]
    reused = nn.Sequential(*[shared if type(m) is type(shared) else m for m in model])
    plain = nn.Sequential(*[copy.deepcopy(shared) if type(m) is type(shared) else m for m in model])
    return reused, plain


@settings(max_examples=examples(10), deadline=None)
@given(widths=st.lists(st.integers(1, 8), min_size=2, max_size=4), seed=st.integers(0, 10**6),
       act=st.sampled_from(["relu", "leaky"]))
@example(widths=[8, 8], seed=0, act="relu")
def test_a_module_used_twice_is_applied_twice(widths, seed, act):
    """``named_children`` lists a shared module once; the fast path reads every call of it."""
    reused, plain = shared_activation_mlp(widths, seed, act)
    sl = sc.Slice.box((-2, -2), (2, 2))
    assert len(chain.read_chain(reused, sl).ops) == len(reused)
    with fast_path_only():
        fast = run(reused, sl)
    assert_identical(fast, run(plain, sl))
    engine = engine_run(reused, sl)  # its layers are named by module (fx), the fast path's by place
    assert [(la.units, la.bits) for la in engine.layers] == [(la.units, la.bits) for la in fast.layers]
    engine.layers = fast.layers
    assert_identical(fast, engine)
    assert fast.verify(n_points=300).ok


def test_verify_does_not_trust_the_fast_paths_reading(monkeypatch):
    """verify runs the user's model itself: a fast path that misread the model (here: a ReLU
    dropped, as named_children used to) is caught."""
    reused, _ = shared_activation_mlp([8, 8], 0, "relu")
    original = chain.read_chain

    def misread(model, sl):
        read = original(model, sl)
        return chain.Chain(read.leaves[:3] + read.leaves[4:], read.ops[:3] + read.ops[4:], read.state)

    monkeypatch.setattr(partition_module, "cached_chain", misread)
    part = run(reused, sc.Slice.box((-2, -2), (2, 2)))
    assert not part.verify(n_points=300).ok
