"""Exactness of the partition: hand-counted arrangements, random and degenerate networks
(hypothesis), brute-force grids, queries, save/load, and the user's model left untouched."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from torch import nn

import splinecam as sc
from helpers import (
    HAND, examples,
    BOX, arrangement_count, arrangement_model, check_against_grid, check_partition, check_tiling, model_out,
    random_mlp, run, via_quadrants,
)

# (first-layer lines (a, b, c) meaning a*u + b*v + c = 0 on the box [-1, 1]^2, regions counted by hand)


@pytest.mark.parametrize("act", [nn.ReLU(), nn.LeakyReLU(0.2)], ids=["relu", "leaky"])
@pytest.mark.parametrize("name", list(HAND))
def test_hand_counted_arrangement(name, act):
    lines, expected = HAND[name]
    assert arrangement_count(lines) == expected  # the exact counter agrees with the hand count
    w = [(a, b) for a, b, _ in lines]
    b = [c for _, _, c in lines]
    model = arrangement_model(w, b, act=act)
    part = run(model)
    assert len(part) == expected
    check_partition(part, model)
    check_against_grid(part, n=80)


def test_diamonds_two_layers():
    """|u| + |v| = 1/2 and |u| + |v| = 1 (through the box-edge midpoints) on the quadrants: 4 x 3 regions."""
    quadrants_then_diamonds = via_quadrants([[1.0, 1, 1, 1], [1, 1, 1, 1]], [-0.5, -1.0])
    model = nn.Sequential(*quadrants_then_diamonds, nn.ReLU(), nn.Linear(2, 1)).eval()
    part = run(model)
    assert len(part) == 12
    check_partition(part, model)
    check_against_grid(part, n=80)
    # edges on the first layer's lines are labelled layer 0, the diamonds layer 1
    labels = np.concatenate(part.edge_units)
    assert set(map(tuple, labels[labels[:, 0] == 1])) == {(1, 0), (1, 1)}
    # units 0/1 (and 2/3) share the line u = 0 (v = 0): either may label it, both lines appear
    assert {int(u) // 2 for u in labels[labels[:, 0] == 0, 1]} == {0, 1}


def test_second_layer_line_through_first_layer_vertex():
    """Second-layer unit u + v (via relu(u)-relu(-u)+...) vanishes exactly at the first-layer crossing."""
    model = nn.Sequential(*via_quadrants([[1.0, -1, 1, -1]], [0.0]), nn.ReLU(), nn.Linear(1, 2)).eval()
    part = run(model)
    # quadrants; u + v = 0 splits the 2nd and 4th quadrants only, through their shared corner
    assert len(part) == 6
    check_partition(part, model)


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    widths=st.lists(st.integers(1, 7), min_size=1, max_size=3),
    k=st.integers(1, 4),
    seed=st.integers(0, 10**6),
    act=st.sampled_from(["relu", "leaky"]),
    extras=st.booleans(),
)
def test_random_networks(widths, k, seed, act, extras):
    model = random_mlp(widths, k, seed, act=act, extras=extras)
    part = run(model)
    check_partition(part, model)
    check_against_grid(part, n=60)


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    widths=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    k=st.integers(1, 3),
    seed=st.integers(0, 10**6),
    act=st.sampled_from(["relu", "leaky"]),
)
def test_integer_networks(widths, k, seed, act):
    """Integer weights and half-integer biases: lines through lattice points, vertices and each other."""
    model = random_mlp(widths, k, seed, act=act, integer=True)
    part = run(model)
    check_partition(part, model)
    check_against_grid(part, n=64)


line_coef = st.integers(-2, 2)


@settings(max_examples=examples(30), deadline=None)
@given(lines=st.lists(st.tuples(line_coef, line_coef, st.integers(-4, 4)), min_size=1, max_size=7))
def test_integer_arrangements_count(lines):
    """One hidden layer of integer lines (halved offsets): the count equals the exact rational count,
    including concurrent, duplicate, dead, corner and border lines."""
    lines = [(a, b, c / 2) for a, b, c in lines]
    model = arrangement_model([(a, b) for a, b, _ in lines], [c for *_, c in lines])
    part = run(model)
    assert len(part) == arrangement_count(lines)
    check_partition(part, model)


@settings(max_examples=examples(8), deadline=None)
@given(seed=st.integers(0, 10**6), n_dup=st.integers(1, 3), n_dead=st.integers(1, 3), k=st.integers(1, 3),
       base=st.sampled_from([2, 3]))
@example(seed=103, n_dup=3, n_dead=1, k=1, base=3)  # a sliver thinner than locate's tolerance
def test_duplicate_and_dead_units(seed, n_dup, n_dead, k, base):
    """Copies and multiples of units, and zero-weight units, in every layer.  Multiples by
    powers of 2 are exact (the same line); by powers of 3 float32 rounds them into
    near-duplicates, whose thin sliver regions are real and must be found."""
    model = random_mlp([5, 5], k, seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for lin in (model[0], model[2]):
            src = torch.randint(0, 5, (n_dup + n_dead,), generator=gen)
            for i in range(n_dup):
                lin.weight[4 - i] = lin.weight[src[i]] * base**i
                lin.bias[4 - i] = lin.bias[src[i]] * base**i
            for i in range(n_dead):
                lin.weight[i] = 0
                lin.bias[i] = float(i - 1)  # dead, exactly at the breakpoint, always on
    part = run(model)
    check_partition(part, model)
    check_against_grid(part, n=60)


def test_near_duplicate_units_make_no_duplicate_region():
    """Layer-1 units that are float32-rounded multiples of each other (rows x1, x3, x9) with
    near-duplicate layer-0 lines: every region must still have its own activation code."""
    w0 = [[-11.537919044494629, -8.689702033996582], [-1.8672912120819092, 5.33703088760376],
          [-1.2819910049438477, -0.9655224680900574]]
    b0 = [-5.801887035369873, -1.44927179813385, -0.6446540951728821]
    w1 = [[77.0670394897461, -23.54421615600586, -22.762998580932617],
          [8.563004493713379, -2.6160240173339844, -2.529222011566162],
          [2.854334831237793, -0.8720080256462097, -0.8430739641189575]]
    b1 = [7.362051010131836, 0.8180056810379028, 0.2726685702800751]
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 1)).eval()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor(w0))
        model[0].bias.copy_(torch.tensor(b0))
        model[2].weight.copy_(torch.tensor(w1))
        model[2].bias.copy_(torch.tensor(b1))
    part = run(model)
    check_partition(part, model)
    check_against_grid(part, n=60)


def test_general_slice_in_high_dimension():
    """A plane through three inputs of shape (2, 5), a Flatten, BatchNorm and a triangle polygon."""
    gen = torch.Generator().manual_seed(3)
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(10, 12), nn.BatchNorm1d(12), nn.ReLU(),
        nn.Sequential(nn.Linear(12, 8), nn.LeakyReLU(0.05), nn.Dropout(0.5)), nn.Linear(8, 3),
    ).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(generator=gen)
        model[2].running_mean.normal_(generator=gen)
        model[2].running_var.uniform_(0.5, 2, generator=gen)
    pts = torch.randn(3, 2, 5, generator=gen)
    sl = sc.Slice.from_points(*pts)
    part = run(model, sl)
    check_partition(part, model)
    check_against_grid(part, n=60)
    tri = sc.Slice(sl.origin, sl.basis, sl.anchors_uv)  # the triangle of the three points
    part = run(model, tri)
    check_partition(part, model)
    assert abs(part.areas.sum() - tri.area) <= 1e-9 * tri.area


def test_far_offset_box():
    """A small box far from the origin of the chart: regions keep their precision."""
    model = random_mlp([8, 8], 2, seed=5)
    sl = sc.Slice(np.array([0.3, -0.2]), np.eye(2) * 1e-3, [[-1, -1], [1, -1], [1, 1], [-1, 1]])
    part = run(model, sl)
    check_partition(part, model)


def test_linear_model_is_one_region():
    model = nn.Sequential(nn.Linear(2, 3)).eval()
    part = run(model)
    assert len(part) == 1 and part.codes.shape == (1, 0)
    check_partition(part, model)


def test_verify_on_identically_zero_output():
    """f = relu(u + 1/2) - relu(u) - 1/2 is 0 for u > 0: rounding noise (~1e-16) must not count
    as a relative error of 1 (the tolerance needs a scale when the outputs are all ~0)."""
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)).eval()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
        model[0].bias.copy_(torch.tensor([0.5, 0.0]))
        model[2].weight.copy_(torch.tensor([[1.0, -1.0]]))
        model[2].bias.fill_(-0.5)
    part = run(model, sc.Slice.box((0.1, -1), (1, 1)))
    assert len(part) == 1
    check_partition(part, model)


# --- queries --------------------------------------------------------------------------


def test_locate_outside_and_inside():
    model = random_mlp([6, 6], 2, seed=1)
    part = run(model)
    outside = np.array([[1.5, 0], [0, -1.0000001], [-3, 7], [1e9, 1e9], [1.0 + 1e-6, 1.0]])
    assert np.all(part.locate(outside) == -1)
    assert np.all(np.isnan(part.evaluate(outside)))
    inside = part.centroids
    assert np.array_equal(part.locate(inside), np.arange(len(part)))
    # the slice's own corners are located (in some region that has that corner)
    corners = BOX.polygon
    idx = part.locate(corners)
    assert np.all(idx >= 0)
    for c, r in zip(corners, idx):
        assert np.min(np.linalg.norm(part.polygons[r] - c, axis=1)) < 1e-12


def test_evaluate_matches_model():
    model = random_mlp([10, 10], 4, seed=2)
    part = run(model)
    pts = np.random.default_rng(0).uniform(-1, 1, (3000, 2))
    ref = model_out(model, BOX, pts)
    got = part.evaluate(pts)
    assert got.shape == (3000, 4)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9 * np.abs(ref).max())


def test_layers_and_code_layout():
    model = random_mlp([5, 3], 1, seed=4)
    part = run(model)
    assert [(layer.units, layer.bits) for layer in part.layers] == [(5, 5), (3, 3)]
    assert part.codes.shape == (len(part), 8) and part.codes.dtype == bool
    assert part.vertex_counts.sum() == len(np.concatenate(part.polygons))


# --- save / load --------------------------------------------------------------------------


def test_save_load_round_trip(tmp_path, monkeypatch):
    gen = torch.Generator().manual_seed(0)
    model = random_mlp([6, 6], 3, seed=8)
    sl = sc.Slice.from_points(*torch.randn(3, 2, generator=gen))
    part = run(model, sl)
    path = tmp_path / "part.npz"
    part.save(path)

    def no_pickle(*args, **kwargs):
        raise AssertionError("loading ran pickle")

    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(pickle, "loads", no_pickle)
    with np.load(path, allow_pickle=False) as f:  # every array is plain data
        assert all(f[k].dtype != object for k in f.files)
    back = sc.Partition.load(path)
    monkeypatch.undo()
    assert len(back) == len(part)
    for a, b in zip(back.polygons, part.polygons):
        assert np.array_equal(a, b)
    for a, b in zip(back.edge_units, part.edge_units):
        assert np.array_equal(a, b)
    assert np.array_equal(back.affine, part.affine)
    assert np.array_equal(back.codes, part.codes)
    assert np.array_equal(back.areas, part.areas)
    assert np.array_equal(back.slice.origin, sl.origin)
    assert np.array_equal(back.slice.basis, sl.basis)
    assert np.array_equal(back.slice.polygon, sl.polygon)
    assert np.array_equal(back.slice.anchors_uv, sl.anchors_uv)
    assert back.slice.input_shape == sl.input_shape
    assert [vars(x) for x in back.layers] == [vars(x) for x in part.layers]
    pts = part.centroids
    assert np.array_equal(back.locate(pts), part.locate(pts))
    db_a, db_b = part.decision_boundary(), back.decision_boundary()
    assert np.array_equal(db_a.segments, db_b.segments) and np.array_equal(db_a.classes, db_b.classes)
    rep = back.verify(model=model, n_points=300)
    assert rep.ok, str(rep)


def test_load_rejects_other_files(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, meta=np.array('{"format": "something else"}'))
    with pytest.raises(ValueError, match="not a valid splinecam partition"):
        sc.Partition.load(path)


# --- the user's model is never modified ---------------------------------------------------


@pytest.mark.parametrize("training", [False, True])
def test_model_untouched(training):
    gen = torch.Generator().manual_seed(0)
    model = nn.Sequential(
        nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.0), nn.Linear(8, 2),
    )
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(generator=gen)
        model[1].running_mean.normal_(generator=gen)
    model.train(training)
    if training:
        model[1].eval()  # the rest stays in training mode (Dropout p=0 is fine)
    model[0].weight.grad = torch.ones_like(model[0].weight)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [m.training for m in model.modules()]
    grads = [p.requires_grad for p in model.parameters()]
    part = run(model)
    assert len(part) > 1
    after = model.state_dict()
    for k, v in before.items():
        assert after[k].dtype == v.dtype and after[k].device == v.device
        assert torch.equal(after[k], v), k
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert [m.training for m in model.modules()] == flags
    assert [p.requires_grad for p in model.parameters()] == grads
    assert torch.equal(model[0].weight.grad, torch.ones_like(model[0].weight))
    assert part.model is not model


@pytest.mark.parametrize("offset, width", [(1e6, 1e-3), (1e4, 1.0), (0.0, 1e-9)])
def test_slice_far_from_the_origin_or_tiny(offset, width):
    """A box at ``offset`` of side ``width`` crossed by the lines of a network: the box keeps its
    four corners, areas sum exactly, and the maps, codes and boundary check against the model
    (areas, locate and evaluate work relative to each region, not to the origin)."""
    lo = np.array([offset, offset])
    sl = sc.Slice.box(lo, lo + width)
    assert sl.polygon.shape == (4, 2)
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(12, 2, generator=gen, dtype=torch.float64)
    through = torch.as_tensor(lo) + torch.rand(12, 2, generator=gen, dtype=torch.float64) * width
    model = nn.Sequential(nn.Linear(2, 12), nn.ReLU(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3)).double().eval()
    with torch.no_grad():
        model[0].weight.copy_(w)
        model[0].bias.copy_(-(w * through).sum(1))  # every first-layer line crosses the box
    part = run(model, sl)
    assert len(part) > 12
    assert abs(part.areas.sum() - sl.area) <= 1e-12 * sl.area and abs(sl.area - width**2) <= 1e-6 * width**2
    assert part.verify(2000).ok
    if offset < 1e6:  # at 1e6 the model's own float64 rounding (1e-10) exceeds the edge check's bar
        check_partition(part, model)
    else:
        check_tiling(part)


def test_verify_of_an_empty_partial_partition_reports_nothing_compared():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1)).double()
    with pytest.raises(sc.RegionLimitError) as info:
        sc.partition(model, sc.Slice.box([-5, -5], [5, 5]), max_regions=1)
    report = info.value.partial.verify()
    assert report.points_compared == 0 and not report.ok and not report.complete
