"""Decision boundaries and level sets: ties at every endpoint, nothing missing, nothing
counted twice, and exact lengths on hand-built cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import splinecam as sc
from helpers import (
    examples,
    REL, check_boundary_complete, check_boundary_ties, model_out, output_scale, overlap_length,
    linear_layer, random_mlp, run, via_quadrants,
)


def check_segments_in_regions(part, db) -> None:
    """Each segment lies in the closed polygon of its region."""
    for seg, r in zip(db.segments, db.regions):
        poly = part.polygons[r]
        e = np.roll(poly, -1, axis=0) - poly
        for p in seg:
            d = p - poly
            cross = e[:, 0] * d[:, 1] - e[:, 1] * d[:, 0]
            assert cross.min() >= -1e-9 * np.linalg.norm(e, axis=1).max(), (seg, r)


def check_boundary(part, db, model) -> None:
    check_boundary_ties(part, db, model)
    check_segments_in_regions(part, db)
    check_boundary_complete(part, db, model)
    assert overlap_length(db) <= 1e-9 * max(db.length, 1.0), "boundary segments overlap (counted twice)"


@settings(max_examples=examples(30), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    widths=st.lists(st.integers(1, 8), min_size=1, max_size=3),
    k=st.integers(1, 5),
    seed=st.integers(0, 10**6),
    act=st.sampled_from(["relu", "leaky"]),
)
def test_random_decision_boundary(widths, k, seed, act):
    model = random_mlp(widths, k, seed, act=act)
    part = run(model)
    db = part.decision_boundary()
    check_boundary(part, db, model)


@settings(max_examples=examples(30), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    widths=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    k=st.integers(1, 4),
    seed=st.integers(0, 10**6),
)
def test_integer_decision_boundary(widths, k, seed):
    """Integer weights: ties through vertices, along region borders, dead plateaus."""
    model = random_mlp(widths, k, seed, integer=True)
    part = run(model)
    db = part.decision_boundary()
    check_boundary(part, db, model)


@settings(max_examples=examples(20), deadline=None)
@given(seed=st.integers(0, 10**6), k=st.integers(1, 3), q=st.floats(0.05, 0.95))
def test_level_sets(seed, k, q):
    """``level_set(value, output)``: f_output == value at every endpoint, and complete."""
    model = random_mlp([5, 4], k, seed)
    part = run(model)
    output = seed % k
    verts = np.concatenate(part.polygons)
    f = model_out(model, part.slice, verts)[:, output]
    value = float(np.quantile(f, q))
    ls = part.level_set(value, output)
    check_boundary_ties(part, ls, model, value=value, output=output)
    check_segments_in_regions(part, ls)
    assert overlap_length(ls) <= 1e-9 * max(ls.length, 1.0)
    # complete: shifting the output by -value turns the level set into a K = 1 decision boundary
    shifted = nn.Sequential(model, linear_layer(np.eye(k)[output][None], [-value])).eval()
    check_boundary_complete(part, ls, shifted)


def test_three_classes_not_union_of_pairwise_ties():
    """f = (u, -u, 2v - 1): the 0|1 tie line u = 0 is boundary only for v <= 1/2, where class 2
    does not win; above, the 0|2 and 1|2 ties take over.  The boundary is a Y."""
    for model in (
        nn.Sequential(linear_layer([[1, 0], [-1, 0], [0, 2]], [0, 0, -1])).eval(),
        via_quadrants([[1, -1, 0, 0], [-1, 1, 0, 0], [0, 0, 2, -2]], [0, 0, -1]),
    ):
        part = run(model)
        db = part.decision_boundary()
        check_boundary(part, db, model)
        assert db.length == pytest.approx(1.5 + 2 * np.sqrt(1.25), rel=1e-12)
        by_pair = {}
        for seg, c in zip(db.segments, map(tuple, db.classes)):
            by_pair[c] = by_pair.get(c, 0.0) + np.linalg.norm(seg[1] - seg[0])
        assert by_pair == pytest.approx({(0, 1): 1.5, (0, 2): np.sqrt(1.25), (1, 2): np.sqrt(1.25)}, rel=1e-12)
        zero_one = db.segments[(db.classes == [0, 1]).all(1)]
        assert np.abs(zero_one[..., 0]).max() <= 1e-12  # on u = 0
        assert zero_one[..., 1].max() == pytest.approx(0.5, abs=1e-12)  # and not above v = 1/2
        assert db.pieces() == 1


def test_boundary_along_region_borders():
    """Logits (u, -u) through relu(u), relu(-u): the tie u = 0 is the border between regions,
    reported once."""
    model = via_quadrants([[1, -1, 0, 0], [-1, 1, 0, 0]], [0, 0])
    part = run(model)
    db = part.decision_boundary()
    check_boundary(part, db, model)
    assert db.length == pytest.approx(2.0, rel=1e-12)
    assert np.all(db.classes == [0, 1])
    assert np.abs(db.segments[..., 0]).max() <= 1e-12


def test_k1_boundary_hand_length():
    """f = relu(u) + relu(v) - 1/2: v = 1/2 (u < 0), u + v = 1/2 (first quadrant), u = 1/2 (v < 0)."""
    model = via_quadrants([[1, 0, 1, 0]], [-0.5])
    part = run(model)
    db = part.decision_boundary()
    check_boundary(part, db, model)
    assert db.length == pytest.approx(2 + np.sqrt(0.5), rel=1e-12)
    assert db.pieces() == 1
    assert np.all(db.classes == [0, 1])


def test_level_set_hand_length():
    """|u| = 1/2 on [-1, 1]^2: two vertical segments of length 2."""
    model = via_quadrants([[1, 1, 0, 0]], [0])
    part = run(model)
    ls = part.level_set(0.5)
    check_boundary_ties(part, ls, model, value=0.5, output=0)
    assert ls.length == pytest.approx(4.0, rel=1e-12)
    assert np.allclose(np.sort(np.abs(ls.segments[..., 0]).ravel()), 0.5, atol=1e-12)
    assert ls.pieces() == 2
    assert len(part.level_set(5.0)) == 0  # never reached


def test_dead_plateau_k1():
    """f = relu(u) is identically 0 for u < 0: the boundary of {f > 0} is u = 0, once."""
    model = via_quadrants([[1, 0, 0, 0]], [0])
    part = run(model)
    db = part.decision_boundary()
    check_boundary(part, db, model)
    assert db.length == pytest.approx(2.0, rel=1e-12)


def test_dead_plateau_all_logits_tied():
    """f = (0, 0, relu(u)): for u < 0 all logits tie (argmax is class 0), for u > 0 class 2
    wins.  The boundary is u = 0, counted once."""
    model = via_quadrants([[0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]], [0, 0, 0])
    part = run(model)
    db = part.decision_boundary()
    check_boundary_ties(part, db, model)
    assert db.length == pytest.approx(2.0, rel=1e-12), (db.segments.tolist(), db.classes.tolist())


def test_duplicate_logits():
    """f = (u, -u, -u): classes 1 and 2 are the same function; the boundary is u = 0, once."""
    model = nn.Sequential(linear_layer([[1, 0], [-1, 0], [-1, 0]], [0, 0, 0])).eval()
    part = run(model)
    db = part.decision_boundary()
    check_boundary_ties(part, db, model)
    assert db.length == pytest.approx(2.0, rel=1e-12), (db.segments.tolist(), db.classes.tolist())


def test_level_set_output_out_of_range():
    part = run(random_mlp([4], 2, seed=0))
    with pytest.raises(ValueError, match=r"output must be in \[0, 2\)"):
        part.level_set(0.0, output=2)
    with pytest.raises(ValueError, match="output must be"):
        part.level_set(0.0, output=-1)


def test_boundary_on_general_slice():
    """A plane through three 6-D inputs; the boundary ties in input space (run the model on
    ``slice.to_input(endpoints)``)."""
    gen = torch.Generator().manual_seed(11)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(generator=gen)
    sl = sc.Slice.from_points(*torch.randn(3, 6, generator=gen))
    part = run(model, sl)
    db = part.decision_boundary()
    assert len(db) > 0
    check_boundary(part, db, model)
    logits = model_out(model, sl, db.segments.reshape(-1, 2))
    top2 = np.sort(logits, 1)[:, -2:]
    assert np.abs(top2[:, 1] - top2[:, 0]).max() <= REL * output_scale(part, model)
