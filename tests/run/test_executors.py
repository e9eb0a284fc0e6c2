"""Both executors on the exact-rational cases: every hand-counted and every integer arrangement
of tests/test_partition.py, and integer MLPs that reuse one activation instance, run through the
MLP fast path and through the engine (each forced), and each result is checked against the model
itself (exact counts where a rational count exists; tiling, maps and codes otherwise)."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from helpers import (HAND, arrangement_count, arrangement_model, check_against_grid, check_partition, examples, forced,
                     random_mlp, run, shared_act_model)

from splinecam.run import chain


EXECUTORS = ["fast", "engine"]






@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize("act", [nn.ReLU(), nn.LeakyReLU(0.2)], ids=["relu", "leaky"])
@pytest.mark.parametrize("name", list(HAND))
def test_hand_counted_arrangement(name, act, executor):
    lines, expected = HAND[name]
    model = arrangement_model([(a, b) for a, b, _ in lines], [c for *_, c in lines], act=act)
    with forced(executor):
        part = run(model)
    assert len(part) == expected
    check_partition(part, model)


@pytest.mark.parametrize("executor", EXECUTORS)
@settings(max_examples=examples(15), deadline=None)
@given(lines=st.lists(st.tuples(st.integers(-2, 2), st.integers(-2, 2), st.integers(-4, 4)), min_size=1, max_size=7))
def test_integer_arrangements_count(executor, lines):
    lines = [(a, b, c / 2) for a, b, c in lines]
    model = arrangement_model([(a, b) for a, b, _ in lines], [c for *_, c in lines])
    with forced(executor):
        part = run(model)
    assert len(part) == arrangement_count(lines)
    check_partition(part, model)


@pytest.mark.parametrize("executor", EXECUTORS)
@settings(max_examples=examples(8), deadline=None)
@given(widths=st.lists(st.integers(2, 6), min_size=2, max_size=3), seed=st.integers(0, 10**6),
       act=st.sampled_from(["relu", "leaky"]))
def test_integer_mlps_reusing_one_activation(executor, widths, seed, act):
    """Integer weights (lines through lattice points), one activation instance used after every
    hidden layer: the same partition as the model with separate instances, exact against it."""
    plain = random_mlp(widths, 2, seed, act=act, integer=True)
    first = next(m for m in plain if isinstance(m, (nn.ReLU, nn.LeakyReLU)))
    plain = nn.Sequential(*[copy.deepcopy(first) if isinstance(m, (nn.ReLU, nn.LeakyReLU)) else m for m in plain])
    reused = shared_act_model(plain)
    with forced(executor):
        part = run(reused)
    assert len(part) == len(run(plain))
    check_partition(part, reused)
    check_against_grid(part, n=64)


def test_the_forcing_works():
    """The fast path is taken where forced (the engine would fail the run), the engine where forced."""
    model = shared_act_model(random_mlp([4, 4], 1, 0))
    with forced("fast"):
        assert len(run(model)) > 1
    with forced("engine"), pytest.MonkeyPatch.context() as patch:
        patch.setattr(chain.ChainRun, "run", lambda *a: pytest.fail("the fast path ran"))
        assert len(run(model)) > 1
