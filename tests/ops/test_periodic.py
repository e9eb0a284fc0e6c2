"""Periodic piecewise-linear waves (triangle, sawtooth, any periodic CPWL function) and the
encodings built from them: the wave against an independent reference, its pieces and codes, and
exact partitions of networks that use them (tiling, unique codes, every code seen on a fine grid
a region, maps that reproduce the model, edges on breakpoints), on random and integer weights with
breakpoints exactly on region vertices; limits, progress, boundary first."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import splinecam as sc
from helpers import (check_against_grid, check_regions_real, check_tiling, check_verify, examples, op_codes_at,
                     preacts, run)
from splinecam.ops.periodic import CODE_BITS, PeriodicOp, periodic_breakpoint, periodic_piece

INTEGER_WAVE = dict(knots=[0.0, 1.0], values=[-1.0, 1.0], period=2.0)  # breakpoints at every integer


def reference_wave(z: np.ndarray, knots, values, period) -> np.ndarray:
    """The periodic function by numpy interpolation over one period (independent of splinecam)."""
    t = np.append(knots, knots[0] + period)
    v = np.append(values, values[0])
    return np.interp(knots[0] + np.mod(z - knots[0], period), t, v)


def seeded(model: nn.Module, seed: int, integer: bool = False, scale: float = 1.0) -> nn.Module:
    """Every Linear of ``model`` drawn at random (non-zero biases), or as small integers / halves."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                if integer:
                    m.weight.copy_(torch.randint(-2, 3, m.weight.shape, generator=g).float())
                    m.bias.copy_(torch.randint(-2, 3, m.bias.shape, generator=g).float() / 2)
                else:
                    m.weight.copy_(torch.randn(m.weight.shape, generator=g) * scale)
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g))
    return model.eval()


def wave_net(wave: nn.Module, units: int = 4, hidden: int = 5, out: int = 1, d: int = 2) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d, units), wave, nn.Linear(units, hidden), nn.ReLU(), nn.Linear(hidden, out))


def check_breakpoint_edges(part: sc.Partition) -> None:
    """Every edge a unit made lies on one breakpoint of its op: both ends of the edge on the same one."""
    verts = np.concatenate(part.polygons)
    nxt = np.concatenate([np.roll(p, -1, axis=0) for p in part.polygons])
    labels = np.concatenate(part.edge_units)
    za, zb = preacts(part, verts), preacts(part, nxt)
    for layer, node in enumerate(part.graph.split_nodes):
        sel = labels[:, 0] == layer
        if not sel.any():
            continue
        unit = labels[sel, 1]
        ends = torch.as_tensor(np.stack([za[layer][sel, unit], zb[layer][sel, unit]]))
        scale = max(float(np.abs(za[layer]).max()), 1.0)
        op = node.op
        if isinstance(op, PeriodicOp):
            p = op.piece(ends)
            near = torch.where(ends - op.breakpoint(p, ends) < op.breakpoint(p + 1, ends) - ends, p, p + 1)
            assert (near[0] == near[1]).all(), "an edge joins two different breakpoints"
            dist = (ends - op.breakpoint(near, ends)).abs()
        else:
            dist = (ends[..., None] - op.breakpoints).abs().amin(-1)
        assert float(dist.max()) <= 1e-9 * scale, f"layer {layer}: an edge lies {float(dist.max())} off its breakpoint"


def check_exact(part: sc.Partition, model: nn.Module, grid: int = 150) -> None:
    """Every invariant of an exact partition, with the codes from the ops themselves."""
    assert part.complete
    check_tiling(part)
    check_regions_real(part, model, codes_at=op_codes_at)
    check_breakpoint_edges(part)
    check_verify(part)
    check_against_grid(part, grid, codes_at=op_codes_at)


# --- the wave ----------------------------------------------------------------------------------


@st.composite
def waves(draw):
    period = draw(st.floats(0.05, 10.0))
    cuts = sorted(c / 64 for c in draw(st.lists(st.integers(0, 63), min_size=1, max_size=5, unique=True)))
    shift = draw(st.floats(-5.0, 5.0))
    values = draw(st.lists(st.floats(-3.0, 3.0), min_size=len(cuts), max_size=len(cuts)))
    return [shift + c * period for c in cuts], values, period


@settings(max_examples=examples(60), deadline=None)
@given(wave=waves(), z=st.lists(st.floats(-1e4, 1e4), min_size=1, max_size=20), on=st.lists(st.integers(-10**6, 10**6), max_size=10))
def test_the_wave_is_its_interpolation_and_its_pieces_are_consistent(wave, z, on):
    knots, values, period = wave
    op = PeriodicOp(knots, values, period)
    kt = op.knots
    exact = periodic_breakpoint(torch.tensor(on, dtype=torch.long), kt, period)  # values exactly on breakpoints
    zt = torch.cat([torch.tensor(z, dtype=torch.float64), exact])
    p = periodic_piece(zt, kt, period)
    assert (periodic_breakpoint(p, kt, period) < zt).all() and (zt <= periodic_breakpoint(p + 1, kt, period)).all()
    assert torch.equal(periodic_piece(exact, kt, period), torch.tensor(on, dtype=torch.long) - 1)
    got = op.forward(zt).numpy()
    ref = reference_wave(zt.numpy(), np.array(knots), np.array(values), period)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9 * (1 + np.abs(zt.numpy()).max() / period))
    # the code is the piece, offset by 2**31, most significant bit first
    bits = op.code(zt[:, None]).numpy().astype(np.int64)
    assert bits.shape == (len(zt), CODE_BITS)
    np.testing.assert_array_equal(bits @ (1 << np.arange(CODE_BITS - 1, -1, -1)) - 2**31, p.numpy())


def test_wave_arguments_are_checked():
    with pytest.raises(ValueError, match="increase strictly"):
        PeriodicOp([0.0, 1.0, 1.0], [0, 1, 2], 3.0)
    with pytest.raises(ValueError, match="within one period"):
        PeriodicOp([0.0, 2.0], [0, 1], 2.0)
    with pytest.raises(ValueError, match="positive"):
        PeriodicOp([0.0], [1.0], -1)
    with pytest.raises(ValueError, match="one value per knot"):
        PeriodicOp([0.0, 1.0], [1.0], 3)
    with pytest.raises(ValueError, match="2\\*\\*31 periods"):
        PeriodicOp([0.0], [1.0], 1e-3).code(torch.tensor([[1e7]]))


# --- exact partitions ----------------------------------------------------------------------------


@pytest.mark.parametrize("wave, scale", [
    (sc.nn.TriangleWave(), 3.0),
    (sc.nn.Sawtooth(0.8, period=1.5), 2.0),
    (sc.nn.PeriodicPWL([-0.3, 0.1, 0.5, 0.9], [0.5, -1.0, 2.0, 0.0], 1.7), 2.0),
    (sc.nn.TriangleWave(period=0.3), 1.0),  # many breakpoints in every unit's range
])
@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_random_wave_networks_are_exact(wave, scale, seed):
    model = seeded(wave_net(wave), seed, scale=scale)
    part = run(model)
    assert len(part) > 20
    check_exact(part, model)


@pytest.mark.parametrize("make", [
    lambda: sc.nn.PositionalEncoding(2, 3, kind="triangle"),
    lambda: sc.nn.PositionalEncoding(2, 2, kind=sc.nn.Sawtooth(0.7), include_input=False),
    lambda: sc.nn.FourierFeatures(torch.randn(3, 2, generator=torch.Generator().manual_seed(3)), kind="triangle",
                                  include_input=True),
])
def test_encoded_networks_are_exact(make):
    enc = make()
    model = seeded(nn.Sequential(enc, nn.Linear(enc.out_features, 6), nn.ReLU(), nn.Linear(6, 3)), 5)
    part = run(model, sc.Slice.box((-0.4, -0.3), (0.3, 0.4)))
    check_exact(part, model)
    db = part.decision_boundary()
    assert len(db) > 0


@settings(max_examples=examples(10), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(units=st.integers(1, 4), seed=st.integers(0, 10**6), dup=st.booleans(), dead=st.booleans())
def test_integer_networks_with_breakpoints_on_vertices(units, seed, dup, dead):
    """Integer weights and breakpoints at every integer over the box [-2, 2]^2: the unit lines
    meet on lattice points, the slice corners among them; duplicate units, and dead units whose
    constant value is a breakpoint itself (flat on it over the whole slice)."""
    model = seeded(wave_net(sc.nn.PeriodicPWL(**INTEGER_WAVE), units=units, hidden=3), seed, integer=True)
    with torch.no_grad():
        first = model[0]
        if dup and units > 1:
            first.weight[1], first.bias[1] = first.weight[0], first.bias[0]
        if dead:
            first.weight[-1] = 0.0
            first.bias[-1] = float(seed % 3 - 1)
    part = run(model, sc.Slice.box((-2, -2), (2, 2)))
    check_exact(part, model, grid=90)
    # the breakpoints really lie on region vertices: a lattice point inside the box is a vertex
    if (model[0].weight != 0).any(1).any():
        verts = np.concatenate(part.polygons)
        on_lattice = np.abs(verts - np.round(verts)).max(1) < 1e-12
        assert on_lattice.sum() >= 4  # the corners, at least


def test_one_unit_count_is_the_number_of_crossed_breakpoints():
    """One unit ``u`` under a wave with breakpoints at the integers, on [-2.5, 2.5] x [0, 1]: the
    slice splits into the 6 strips between -2.5, -2, ..., 2, 2.5 (then the ReLU layer is affine
    in each strip when it has no kink, so we give it none)."""
    model = nn.Sequential(nn.Linear(2, 1), sc.nn.PeriodicPWL(**INTEGER_WAVE), nn.Linear(1, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0]]))
        model[0].bias.zero_()
    part = run(model, sc.Slice.box((-2.5, 0), (2.5, 1)))
    assert len(part) == 6
    np.testing.assert_allclose(np.sort(part.areas), [0.5, 0.5, 1, 1, 1, 1])
    check_exact(part, model)


def test_engine_and_tiles_agree():
    model = seeded(wave_net(sc.nn.TriangleWave(period=1.0)), 7, scale=2.0)
    ref = run(model)
    tiled = run(model, tiles=4)
    assert len(tiled) == len(ref)
    idx = ref.locate(tiled.centroids)
    np.testing.assert_array_equal(tiled.codes, ref.codes[idx])
    np.testing.assert_allclose(tiled.areas, ref.areas[idx], rtol=1e-9)


def test_boundary_first_matches_the_full_partition():
    model = seeded(wave_net(sc.nn.TriangleWave(period=1.0), units=3), 2, scale=2.0)
    full = run(model).decision_boundary()
    fast = sc.decision_boundary(model, sc.Slice.box((-1, -1), (1, 1)), progress=False)
    assert len(full) > 0
    assert abs(fast.length - full.length) <= 1e-9 * full.length


# --- limits, progress, errors -----------------------------------------------------------------------


def test_region_limit_gives_exact_partial_result():
    model = seeded(wave_net(sc.nn.TriangleWave(period=1.0)), 3, scale=2.0)
    full = run(model)
    with pytest.raises(sc.RegionLimitError) as info:
        run(model, max_regions=len(full) // 2, chunk_size=4)
    part = info.value.partial
    assert 0 < len(part) < len(full) and not part.complete
    idx = full.locate(part.centroids)
    np.testing.assert_array_equal(part.codes, full.codes[idx])
    np.testing.assert_allclose(part.areas, full.areas[idx], rtol=1e-9)
    assert part.verify(n_points=100).ok


def test_timeout_and_progress(capsys):
    model = seeded(wave_net(sc.nn.TriangleWave(period=0.05), units=12, hidden=12), 4, scale=3.0)
    with pytest.raises(sc.TimeLimitError) as info:
        sc.partition(model, sc.Slice.box((-1, -1), (1, 1)), progress=True, timeout=0.5, max_memory="64KB")
    part = info.value.partial
    assert not part.complete and part.areas.sum() < part.slice.area
    err = capsys.readouterr().err
    assert "regions" in err and "% of the slice" in err


@pytest.mark.parametrize("tail", [nn.Tanh(), nn.GELU()])
def test_a_smooth_op_after_the_encoding_gets_the_clear_error(tail):
    enc = sc.nn.PositionalEncoding(2, 2, kind="triangle")
    model = nn.Sequential(enc, nn.Linear(enc.out_features, 4), tail, nn.Linear(4, 1))
    with pytest.raises(sc.UnsupportedModelError, match="not piecewise-linear"):
        run(model)


def test_a_wave_deep_in_the_network_is_exact_too():
    """A periodic op anywhere (here after a ReLU layer) is still piecewise-linear and exact."""
    model = seeded(nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 3), sc.nn.TriangleWave(period=1.0),
                                 nn.Linear(3, 1)), 8, scale=2.0)
    check_exact(run(model), model)


def test_periods_far_from_zero_keep_exact_maps():
    """A high frequency (2**8 pi, NeRF's ninth band) on a slice away from the origin."""
    enc = sc.nn.PositionalEncoding(2, kind="triangle", frequencies=[2.0**8 * math.pi])
    model = seeded(nn.Sequential(enc, nn.Linear(enc.out_features, 3), nn.ReLU(), nn.Linear(3, 1)), 9)
    part = run(model, sc.Slice.box((3.0, -4.0), (3.02, -3.985)))
    check_exact(part, model, grid=80)
