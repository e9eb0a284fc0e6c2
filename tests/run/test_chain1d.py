"""The compiled chain kernel of paths (:mod:`splinecam.run.chain1d`): the engine's pieces (the
same breakpoints to 1e-12, codes, end units and maps) on random, integer-weight, dead- and
duplicate-unit MLPs and on degenerate paths; its limits, bounded calls and Ctrl-C; the cache of
chains follows the model's structure and weights."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest
import torch
from helpers import arrangement_model, check_same_pieces, degenerate_mlp, examples, random_mlp
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import nn

import splinecam as sc
from splinecam import path_partition
from splinecam.geometry import compiled1d
from splinecam.run import chain, chain1d


@contextmanager
def counting_kernel():
    """Inside: the list of how many pieces each call of the chain kernel output (failing where
    the kernel is not compiled)."""
    assert compiled1d.AVAILABLE, "numba is needed for the compiled kernel"
    calls = []
    original = compiled1d.chain_pieces

    def spy(*args):
        out = original(*args)
        calls.append(out[0])
        return out

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compiled1d, "chain_pieces", spy)
        yield calls


@pytest.fixture
def kernel_calls() -> list:
    with counting_kernel() as calls:
        yield calls


def engine(model, path, **options) -> sc.PathPartition:
    """The path's partition by the engine (no fast path of any kind)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(chain, "ENABLED", False)
        return sc.partition(model, path, progress=False, **options)


def polyline(rng, integer: bool, closed: bool) -> sc.Path:
    pts = rng.integers(-2, 3, (4, 2)).astype(float) if integer else rng.normal(size=(4, 2)) * 1.5
    while (np.abs(np.diff(pts, axis=0)).max(1) == 0).any() or (closed and np.array_equal(pts[0], pts[-1])):
        pts = rng.integers(-2, 3, (4, 2)).astype(float)
    return sc.Path.through(pts, closed=closed)


@settings(max_examples=examples(40), deadline=None)
@given(widths=st.lists(st.integers(1, 12), min_size=1, max_size=3), seed=st.integers(0, 10**6),
       act=st.sampled_from(["relu", "leaky"]), integer=st.booleans(), duplicate=st.booleans(),
       dead=st.sampled_from([False, True, "flat"]), closed=st.booleans())
@example(widths=[3, 7], seed=114, act="leaky", integer=True, duplicate=False, dead=False, closed=False)  # a vertex
def test_the_kernel_makes_the_engines_pieces(widths, seed, act, integer, duplicate, dead, closed):
    model = degenerate_mlp(widths, seed, act, integer, duplicate, dead)
    path = polyline(np.random.default_rng(seed), integer, closed)
    with counting_kernel() as calls:
        fast = sc.partition(model, path, progress=False)
    assert calls
    check_same_pieces(fast, engine(model, path))
    if integer and act == "relu":  # exact arithmetic: the very same breakpoints
        assert np.array_equal(fast.t, engine(model, path).t)
    assert fast.complete and fast.verify(n_points=200).ok


def test_layers_without_activations_between_and_at_the_ends(kernel_calls):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 9), nn.Linear(9, 7), nn.LeakyReLU(0.3), nn.Linear(7, 8), nn.Linear(8, 6),
                          nn.Linear(6, 5), nn.ReLU(), nn.ReLU(), nn.Linear(5, 4), nn.ReLU()).eval()
    path = sc.Path.through(np.random.default_rng(1).normal(size=(5, 3)) * 6)
    fast = sc.partition(model, path, progress=False)
    assert kernel_calls and len(fast) > 10
    check_same_pieces(fast, engine(model, path))
    linear = nn.Sequential(nn.Linear(3, 2)).eval()  # no activation at all: one piece a leg
    part = sc.partition(linear, path, progress=False)
    assert len(part) == 4
    check_same_pieces(part, engine(linear, path))


def test_a_path_along_a_units_hyperplane_and_through_a_vertex(kernel_calls):
    along = arrangement_model([(1, 0), (0, 1)], [0, 0])
    part = sc.partition(along, sc.Path.segment([0.0, -1.0], [0.0, 1.0]), progress=False)
    assert np.array_equal(part.t, [0.0, 0.5, 1.0]) and part.codes[:, 0].tolist() == [False, False]
    assert part.edge_units[1].tolist() == [0, 1]
    vertex = arrangement_model([(1, 0), (0, 1), (1, 1), (2, 2)], [0, 0, 0, 0])
    path = sc.Path.through([[-1.0, -0.5], [1.0, 0.5], [1.0, -1.0]])  # the second leg misses the vertex
    part = sc.partition(vertex, path, progress=False)
    assert part.t[:3].tolist() == [0.0, 0.5, 1.0] and (part.codes[0] != part.codes[1]).all()
    assert len(kernel_calls) == 2
    for model, p in ((along, sc.Path.segment([0.0, -1.0], [0.0, 1.0])), (vertex, path)):
        check_same_pieces(sc.partition(model, p, progress=False), engine(model, p))


def test_bounded_calls_and_refreshes_give_the_same_pieces(monkeypatch, kernel_calls):
    model = random_mlp([30, 30, 30], 2, 7)
    path = sc.Path.through(np.random.default_rng(2).normal(size=(4, 2)) * 3)
    whole = sc.partition(model, path, progress=False)
    assert len(kernel_calls) == 1
    monkeypatch.setattr(chain1d, "WORK_PER_CALL", 1)  # one interval a call
    steps = sc.partition(model, path, progress=False)
    assert len(kernel_calls) > 50 and max(kernel_calls[1:]) <= 31  # one interval's pieces at most
    check_same_pieces(steps, whole)  # (the products of other batches: other roundings)
    monkeypatch.setattr(chain1d, "REFRESH", 1)  # every state in full
    check_same_pieces(sc.partition(model, path, progress=False), whole)


def test_limits_hand_back_the_finished_pieces(monkeypatch, kernel_calls):
    model = random_mlp([40, 40], 2, 4)
    path = sc.Path.through(np.random.default_rng(0).normal(size=(6, 2)) * 3)
    full = sc.partition(model, path, progress=False)
    monkeypatch.setattr(chain1d, "WORK_PER_CALL", 1)
    with pytest.raises(sc.RegionLimitError) as err:
        sc.partition(model, path, progress=False, max_regions=len(full) // 2)
    part = err.value.partial
    assert isinstance(part, sc.PathPartition) and not part.complete and 0 < len(part) <= len(full) // 2 + 41
    assert part.verify().ok
    n = len(part)  # the first pieces along the path, the same as the whole run's
    assert np.array_equal(part.lo, full.lo[:n]) and np.array_equal(part.packed_codes, full.packed_codes[:n])
    with pytest.raises(sc.TimeLimitError) as err:
        sc.partition(model, path, progress=False, timeout=1e-9)
    assert isinstance(err.value.partial, sc.PathPartition) and not err.value.partial.complete

    calls = len(kernel_calls)
    checks = iter(range(10**6))
    original = chain1d.Watch.check_time

    def interrupted(self):
        if next(checks) == 3:
            raise KeyboardInterrupt
        original(self)

    monkeypatch.setattr(chain1d.Watch, "check_time", interrupted)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C between two calls
        sc.partition(model, path, progress=False)
    assert 0 < len(kernel_calls) - calls < 4
    monkeypatch.setattr(chain1d.Watch, "check_time", original)
    check_same_pieces(sc.partition(model, path, progress=False), full)


def test_a_finished_runs_stack_serves_the_next_run_and_a_stopped_runs_does_not(monkeypatch, kernel_calls):
    model = random_mlp([30, 30], 2, 12)
    path = sc.Path.through(np.random.default_rng(12).normal(size=(5, 2)) * 3)
    first = sc.partition(model, path, progress=False)
    fast = chain1d.path_chain(chain.cached_chain(model, path), 2)
    kept = fast.spare[-1]
    assert len(fast.spare) == 1 and not kept[0][0][:, 1:].any()  # its levels empty
    before = [a.copy() for a in (first.lo, first.affine, first.packed_codes, first.ends, first.leg)]
    again = sc.partition(model, path, progress=False)
    assert fast.spare == [kept]  # taken and given back
    check_same_pieces(again, first)
    sc.partition(model, sc.Path.segment([0.0, 0.0], [1.0, 2.0]), progress=False)  # its rows, used again
    now = (first.lo, first.affine, first.packed_codes, first.ends, first.leg)
    assert all(np.array_equal(a, b) and a.base is None for a, b in zip(now, before))  # its own rows alone
    monkeypatch.setattr(chain1d, "WORK_PER_CALL", 1)
    with pytest.raises(sc.RegionLimitError):
        sc.partition(model, path, progress=False, max_regions=len(first) // 3)
    assert not fast.spare  # intervals left on its levels: not kept
    check_same_pieces(sc.partition(model, path, progress=False), first)


def test_a_stack_past_the_budget_takes_the_engine(kernel_calls):
    model = random_mlp([64, 64], 2, 1)
    path = sc.Path.segment([-1.0, -1.0], [1.0, 1.0])
    part = sc.partition(model, path, progress=False, max_memory="40kB")
    assert not kernel_calls
    check_same_pieces(part, sc.partition(model, path, progress=False))


def test_the_cached_chain_follows_the_model(kernel_calls):
    model = random_mlp([8, 8], 2, 3, act="leaky")
    path = sc.Path.through([[-2.0, -1.0], [1.5, 2.0], [2.0, -2.0]])
    first = sc.partition(model, path, progress=False)
    assert chain.cached_chain(model, path.legs()[0][1]) is chain.cached_chain(model, path.legs()[0][1])

    def changes():
        with torch.no_grad():
            model[0].weight.add_(0.25)  # in place
        yield
        model[2].weight.data.mul_(-1.5)  # in place, unseen by autograd's version counter
        yield
        model[2].weight.data = model[2].weight.data.t()  # the same memory read in another order
        yield
        model[2].bias.data = model[2].bias.data + 0.5  # new memory under the same parameter
        yield
        model[0].bias.detach().numpy()[0] += 1.0  # written through NumPy: no version counter at all
        yield
        weight = model[0].weight
        del model[0].weight
        model[0].weight = nn.Parameter(weight.detach() + 0.125)  # set again: now after the bias in its table
        yield
        model[3].negative_slope = 0.5  # a setting
        yield
        model[4] = nn.Linear(8, 2)  # a new module
        yield
        model[4].bias = nn.Parameter(torch.ones(2))  # a new parameter
        yield

    seen = [first]
    for _ in changes():
        part = sc.partition(model, path, progress=False)
        check_same_pieces(part, engine(model, path))
        assert part.verify().ok
        assert not any(p.affine.shape == part.affine.shape and np.array_equal(p.affine, part.affine) for p in seen)
        if len(seen) == 1:
            assert first.verify().ok  # the first partition keeps the weights it was made with
        seen.append(part)


@pytest.mark.parametrize("batch", [chain1d.BATCH, 8])
def test_thousands_of_pieces_in_batches(batch, monkeypatch, kernel_calls):
    monkeypatch.setattr(chain1d, "BATCH", batch)  # (8: a few legs and intervals at a time)
    monkeypatch.setattr(chain1d, "FIRST_OUT", batch)
    model = random_mlp([48, 48, 48], 3, 11)
    path = sc.Path.through(np.random.default_rng(3).normal(size=(40, 2)) * 2)
    fast = sc.partition(model, path, progress=False)
    assert len(fast) > 2000 and (batch > 8 or len(kernel_calls) > 5)
    check_same_pieces(fast, engine(model, path))


def test_long_chains_of_states_from_neighbours(monkeypatch, kernel_calls):
    """With no full product past a leg's first piece, every state comes from its left
    neighbour's (columns within an interval, slope product and continuity across intervals):
    the engine's pieces all the same, over thousands of pieces."""
    monkeypatch.setattr(chain1d, "REFRESH", 10**9)
    model = random_mlp([40, 40, 40], 2, 5)
    path = sc.Path.through(np.random.default_rng(6).normal(size=(30, 2)) * 4)
    fast = sc.partition(model, path, progress=False)
    assert kernel_calls and len(fast) > 1000
    check_same_pieces(fast, engine(model, path))
    assert fast.verify(n_points=500).ok


run = chain1d.PathChain.run


def paths_of(rng, n: int) -> list:
    """n polylines (segments, open and closed polylines) through random inputs (2,)."""
    return [sc.Path.segment(*rng.normal(size=(2, 2)) * 2) if i % 3 == 0 else
            sc.Path.through(rng.normal(size=(3 + i % 4, 2)) * 2, closed=i % 3 == 2) for i in range(n)]


def test_many_paths_in_one_run_are_each_paths_partition(monkeypatch, kernel_calls):
    model = random_mlp([24, 24], 3, 8, act="leaky")
    paths = paths_of(np.random.default_rng(4), 9)
    runs = []
    monkeypatch.setattr(chain1d.PathChain, "run", lambda self, legs, *args: runs.append(len(legs)) or run(self, legs, *args))
    together = sc.partition_many(model, paths, progress=False)
    assert runs == [sum(len(p.legs()) for p in paths)]  # one run of all the legs
    assert sum(kernel_calls) == sum(len(p) for p in together)
    assert [type(p) for p in together] == [sc.PathPartition] * len(paths)
    for path, part in zip(paths, together):
        assert part.path is path and part.complete
        check_same_pieces(part, sc.partition(model, path, progress=False))
        check_same_pieces(part, engine(model, path))
        assert part.verify(n_points=100).ok


def test_many_paths_elsewhere_are_partitioned_one_by_one(kernel_calls):
    model = random_mlp([10, 10], 2, 2)
    paths = paths_of(np.random.default_rng(5), 4)
    ellipse = sc.Path.ellipse([0.0, 0.0], [1.0, 0.5], [-0.5, 1.0])
    for options in ({"max_regions": 10**5}, {"timeout": 60.0}):  # a limit of each partition: a run each
        kernel_calls.clear()
        parts = sc.partition_many(model, paths, progress=False, **options)
        assert len(kernel_calls) == len(paths)
        for path, part in zip(paths, parts):
            check_same_pieces(part, sc.partition(model, path, progress=False))
    mixed = sc.partition_many(model, paths + [ellipse], progress=False)  # an ellipse: the engine's
    check_same_pieces(mixed[-1], sc.partition(model, ellipse, progress=False))
    bn = nn.BatchNorm1d(6)
    bn.running_mean.normal_(), bn.running_var.uniform_(0.5, 2.0)
    normed = nn.Sequential(nn.Linear(2, 6), bn, nn.ReLU(), nn.Linear(6, 1)).eval()  # not a plain MLP: the engine's
    parts = sc.partition_many(normed, paths, progress=False)
    check_same_pieces(parts[1], sc.partition(normed, paths[1], progress=False))
    with pytest.raises(TypeError, match="Slice"):
        sc.partition_many(model, [paths[0], "not a path"])


def test_a_region_limit_over_many_paths_hands_back_each_paths_pieces(monkeypatch, kernel_calls):
    model = random_mlp([30, 30], 2, 9)
    paths = paths_of(np.random.default_rng(7), 6)
    full = sc.partition_many(model, paths, progress=False)
    total = sum(len(p) for p in full)
    monkeypatch.setattr(chain1d, "WORK_PER_CALL", 1)
    monkeypatch.setattr(path_partition, "region_limit", lambda *_: (total // 2, ""))  # the default limit: half
    with pytest.raises(sc.RegionLimitError) as err:
        sc.partition_many(model, paths, progress=False)
    partial = err.value.partial
    assert [p.path for p in partial] == paths
    done = [p.complete for p in partial]
    assert done[0] and not all(done) and done == sorted(done, reverse=True)  # the first paths, finished
    for part, whole in zip(partial, full):
        if part.complete:
            check_same_pieces(part, whole)
        else:  # the pieces of the start of the path
            n = len(part)
            assert np.array_equal(part.lo, whole.lo[:n]) and np.array_equal(part.packed_codes, whole.packed_codes[:n])
