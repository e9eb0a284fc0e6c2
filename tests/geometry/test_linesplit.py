"""The compiled line split (numba, CPU) makes exactly the pieces of the torch BSP loop: the same
vertices bit for bit, the same edge units and the same recorded sides; only the order of the
pieces differs.  Degenerate input is the point: lattice lines through vertices and along edges,
duplicate lines, concurrent lines, lines that cross nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from hypothesis import example, given, settings
from hypothesis import strategies as st

from splinecam.geometry import compiled, line_tolerance, linesplit, split_by_lines
from helpers import examples, hull, make_batch, pieces_by_sides, random_mlp, run

pytestmark = pytest.mark.skipif(not compiled.AVAILABLE, reason="numba is not installed")


def polygon_bytes(pieces, p: int) -> tuple[bytes, bytes]:
    """Piece p's vertices and edge units, as bytes."""
    a, b = int(pieces.offsets[p]), int(pieces.offsets[p + 1])
    return pieces.verts[a:b].numpy().tobytes(), pieces.edge_units[a:b].numpy().tobytes()


def check_same(polys: list[np.ndarray], lines: list[np.ndarray]) -> None:
    """Split polygon p by lines[p] (n_p, 3) with both loops and compare."""
    batch = make_batch(polys)
    poly = torch.cat([torch.full((len(ln),), p, dtype=torch.int64) for p, ln in enumerate(lines)])
    ln = torch.as_tensor(np.concatenate(lines).reshape(-1, 3))
    extent = torch.as_tensor(np.abs(np.concatenate(polys)).max(0))
    tol = line_tolerance(ln[:, 0], ln[:, 1], ln[:, 2], extent, 1e-10)
    units = torch.stack([torch.full_like(poly, 7), torch.arange(len(poly))], 1)
    fast = split_by_lines(batch, poly, ln, tol, units, use_compiled=True)
    slow = split_by_lines(batch, poly, ln, tol, units, use_compiled=False)
    assert len(fast.pieces) == len(slow.pieces)
    assert torch.equal(torch.sort(fast.parent).values, torch.sort(slow.parent).values)
    assert pieces_by_sides(fast, polygon_bytes) == pieces_by_sides(slow, polygon_bytes)


coord = st.integers(-4, 4)
lattice_line = st.tuples(st.integers(-3, 3), st.integers(-3, 3), st.integers(-6, 6))


@settings(max_examples=examples(40), deadline=None)
@given(
    raw=st.lists(st.lists(st.tuples(coord, coord), min_size=3, max_size=8), min_size=1, max_size=4),
    lines=st.lists(st.lists(lattice_line, min_size=0, max_size=8), min_size=4, max_size=4),
    dup=st.booleans(),
)
def test_lattice_polygons_and_lines(raw, lines, dup):
    """Lines through lattice points: through vertices, along edges, concurrent, duplicated."""
    polys = [p for p in (hull(np.array(r, dtype=np.float64)) for r in raw) if len(p) >= 3]
    if not polys:
        return
    per = []
    for p in range(len(polys)):
        ln = np.array(lines[p], dtype=np.float64).reshape(-1, 3)
        ln[np.all(ln[:, :2] == 0, axis=1), 0] = 1.0  # a line needs a direction
        per.append(np.concatenate([ln, ln]) if dup else ln)
    check_same(polys, per)


@settings(max_examples=examples(25), deadline=None)
@given(seed=st.integers(0, 10**6), n_lines=st.integers(0, 25), concurrent=st.booleans())
def test_random_arrangements(seed, n_lines, concurrent):
    """Many lines through one polygon (an arrangement), some all through one point."""
    rng = np.random.default_rng(seed)
    size = 10 ** rng.uniform(-3, 3)
    polys = [hull(rng.normal(size=(rng.integers(3, 10), 2)) * size) for _ in range(2)]
    polys = [p for p in polys if len(p) >= 3]
    per = []
    for p in polys:
        d = rng.normal(size=(n_lines, 2))
        through = np.repeat(p.mean(0, keepdims=True), n_lines, 0) if concurrent else p[rng.integers(len(p), size=n_lines)]
        through[::3] += rng.normal(size=through[::3].shape) * size * 0.3
        per.append(np.stack([d[:, 1], -d[:, 0], d[:, 0] * through[:, 1] - d[:, 1] * through[:, 0]], 1))
    check_same(polys, per)


def test_no_lines_and_uncrossed_lines():
    """Polygons without lines, and lines that miss their polygon, leave the polygons whole."""
    square = np.array([[0.0, 0], [1, 0], [1, 1], [0, 1]])
    check_same([square, square + 5], [np.zeros((0, 3)), np.array([[1.0, 0, 10], [0, 1, -1]])])


def same_partition(a, b) -> None:
    """Equal region counts, codes (as sets), edge units, areas and maps, region by region."""
    assert len(a) == len(b)
    ka = {c.tobytes(): r for r, c in enumerate(a.codes)}
    kb = {c.tobytes(): r for r, c in enumerate(b.codes)}
    assert ka.keys() == kb.keys()
    for key, r in ka.items():
        s = kb[key]
        assert np.array_equal(a.polygons[r], b.polygons[s]) and np.array_equal(a.edge_units[r], b.edge_units[s])
    ia, ib = list(ka.values()), [kb[k] for k in ka]
    np.testing.assert_allclose(a.areas[ia], b.areas[ib], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(a.affine[ia], b.affine[ib], rtol=1e-12, atol=1e-12)


@settings(max_examples=examples(15), deadline=None)
@given(seed=st.integers(0, 10**6), integer=st.booleans(), act=st.sampled_from(["relu", "leaky"]),
       widths=st.lists(st.integers(1, 6), min_size=1, max_size=3), degenerate=st.booleans())
@example(seed=0, integer=False, act="relu", widths=[4, 5, 4], degenerate=False)
def test_engine_compiled_equals_torch(seed, integer, act, widths, degenerate):
    """Whole partitions: the compiled elementwise rule against the torch one, with integer
    weights, duplicate units and dead units (zero rows) among the cases."""
    model = random_mlp(widths, 2, seed, act=act, integer=integer)
    if degenerate:
        with torch.no_grad():
            first = model[0]
            first.weight[-1] = first.weight[0]  # a duplicate unit
            first.bias[-1] = first.bias[0]
            if len(first.weight) > 2:
                first.weight[1] = 0  # a dead unit: its "line" is constant
    # one region per push on both sides: the two splits order their pieces differently, and a
    # matrix product of other rows may round differently
    fast = run(model, chunk_size=1)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(compiled, "AVAILABLE", False)
        slow = run(model, chunk_size=1)
    same_partition(fast, slow)


def test_clamp_layers_compiled_equals_torch(monkeypatch):
    """Two breakpoints per unit (Hardtanh), concurrent lattice lines."""
    model = nn.Sequential(nn.Linear(2, 6), nn.Hardtanh(-0.5, 0.5), nn.Linear(6, 4), nn.ReLU6(), nn.Linear(4, 1))
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randint(-2, 3, p.shape, generator=gen).float() / 2)
    fast = run(model)
    monkeypatch.setattr(compiled, "AVAILABLE", False)
    same_partition(fast, run(model))


def resumed(polys, z, bps, extent, budget):
    """Split by ``split_at_breakpoints`` in bounded calls, each on the rest of the one before:
    (vertices, edge units, region, code) as bytes, in the order made, and the pieces of each call."""
    out, per_call, region = [], [], torch.arange(len(polys))
    while len(polys):
        pieces, parent, code, polys, rest_parent = linesplit.split_at_breakpoints(polys, z, bps, extent, 1e-10, 3, budget)
        per_call.append(len(pieces))
        for p in range(len(pieces)):
            a, b = int(pieces.offsets[p]), int(pieces.offsets[p + 1])
            out.append((pieces.verts[a:b].numpy().tobytes(), pieces.edge_units[a:b].numpy().tobytes(),
                        int(region[parent[p]]), code[p].numpy().tobytes()))
        z, region = z[rest_parent], region[rest_parent]
    return out, per_call


@settings(max_examples=examples(20), deadline=None)
@given(seed=st.integers(0, 10**6), integer=st.booleans(), clamp=st.booleans(),
       budget=st.sampled_from([1, 3000, 40000]), work=st.sampled_from([1, 40, 10**9]))
def test_bounded_calls_resume_where_they_stopped(seed, integer, clamp, budget, work):
    """Calls bounded by a byte budget and a work bound, each going on with the rest of the one
    before, make exactly the pieces of one unbounded call, in the same order (depth first), and
    no call makes more pieces than its budget holds."""
    rng = np.random.default_rng(seed)
    polys = make_batch([hull(rng.normal(size=(6, 2)) * 2) for _ in range(3)])
    units = 12
    z = rng.integers(-3, 4, size=(len(polys), 3, units)) / 2 if integer else rng.normal(size=(len(polys), 3, units))
    z = torch.as_tensor(z, dtype=torch.float64)
    bps = torch.tensor([-0.5, 0.5] if clamp else [0.0], dtype=torch.float64)
    extent = polys.verts.abs().amax(0)
    whole, calls = resumed(polys, z, bps, extent, linesplit.UNBOUNDED)
    assert len(calls) == 1
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(linesplit, "WORK_PER_CALL", work)
        parts, calls = resumed(polys, z, bps, extent, budget)
    assert parts == whole
    bits = units * len(bps)
    assert max(calls) <= max(1, budget // (bits + compiled.PIECE_BYTES))  # codes, sides and polygons fit
    if budget == 1 or work == 1:
        assert len(calls) > 1


def test_a_tiny_budget_and_work_bound_do_not_change_the_partition(monkeypatch):
    """Every compiled call stops after a piece or two and the engine (and the fast path) split
    the rest again: the same partition."""
    model = random_mlp([6, 6], 1, seed=5)
    fast = run(model)
    monkeypatch.setattr(linesplit, "WORK_PER_CALL", 1)
    same_partition(fast, run(model))
    same_partition(fast, run(model, max_memory="1KB"))
