"""Intervals cut at points: the pieces tile each interval, no plane strictly crosses a piece, the
sides recorded are the sides at the pieces, concurrent planes make one cut, and a budget hands
back the intervals not cut, which split later to the same pieces; max cells of intervals are
the upper envelope of their candidates."""

import numpy as np
import torch
from helpers import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from splinecam.geometry import BORDER, Arcs, Intervals, max_cells, plane_tolerance, split_cells

RTOL = 1e-10


def _batch(rng, p, integer=False):
    lo = rng.integers(-5, 5, p).astype(float) if integer else rng.normal(size=p) * 3
    hi = lo + (rng.integers(1, 4, p) if integer else rng.uniform(0.1, 4, p))
    ends = torch.full((p, 2, 2), BORDER, dtype=torch.int64)
    return Intervals(torch.tensor(lo), torch.tensor(hi), ends)


def _planes(rng, cells, n, integer=False, through=None):
    """n planes per interval (a, c), sorted by interval; ``through``: points (p,) every plane of an
    interval passes through."""
    p = len(cells)
    region = torch.arange(p).repeat_interleave(n)
    a = torch.tensor(rng.integers(-3, 4, p * n).astype(float) if integer else rng.normal(size=p * n))
    if through is not None:
        c = -a * through[region]
    else:  # a point inside the interval (or outside, now and then)
        t = cells.lo[region] + (cells.hi - cells.lo)[region] * torch.tensor(rng.uniform(-0.2, 1.2, p * n))
        c = -a * (torch.round(t) if integer else t)
    return region, torch.stack([a, c], 1)


def _tolerance(planes, cells):
    extent = torch.stack([cells.lo.abs(), cells.hi.abs()]).amax(0).max()[None]
    return plane_tolerance((planes[:, 0].clone(),), planes[:, 1], extent, RTOL)


def _check(cells, region, planes, tol, res):
    units = torch.stack([torch.zeros_like(region), torch.arange(len(region))], 1)
    pieces, parent = res.pieces, res.parent
    assert len(res.rest) == 0
    # the pieces tile each interval, in order, with positive lengths
    for r in range(len(cells)):
        own = torch.nonzero(parent == r).flatten()
        lo, hi = pieces.lo[own], pieces.hi[own]
        assert lo[0] == cells.lo[r] and hi[-1] == cells.hi[r]
        assert torch.equal(lo[1:], hi[:-1]) and bool((hi > lo).all())
    # no plane strictly crosses a piece; the recorded side is the side at the piece
    piece, plane, side = res.sides_of(torch.arange(len(pieces)))
    a, c = planes[plane, 0], planes[plane, 1]
    v_lo, v_hi = a * pieces.lo[piece] + c, a * pieces.hi[piece] + c
    t = tol[plane]
    assert not bool((((v_lo > t) & (v_hi < -t)) | ((v_lo < -t) & (v_hi > t))).any())
    expect = torch.where(v_lo.abs() > t, torch.sign(v_lo), torch.where(v_hi.abs() > t, torch.sign(v_hi), 0))
    assert torch.equal(side.long(), expect.long())
    assert torch.equal(region[plane], parent[piece])  # every plane of the piece's interval, once
    counts = torch.bincount(piece, minlength=len(pieces))
    assert torch.equal(counts, torch.bincount(region, minlength=len(cells))[parent])
    # each inner end carries the unit of a plane of its interval through it
    inner = torch.nonzero(pieces.ends[:, 0, 0] != BORDER).flatten()
    which = pieces.ends[inner, 0, 1]
    assert torch.equal(region[which], parent[inner])
    assert bool(((planes[which, 0] * pieces.lo[inner] + planes[which, 1]).abs() <= tol[which] * 4).all())
    del units


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), p=st.integers(1, 6), n=st.integers(0, 7), integer=st.booleans())
def test_pieces_tile_and_no_plane_crosses_a_piece(seed, p, n, integer):
    rng = np.random.default_rng(seed)
    cells = _batch(rng, p, integer)
    region, planes = _planes(rng, cells, n, integer)
    tol = _tolerance(planes, cells)
    units = torch.stack([torch.zeros_like(region), torch.arange(len(region))], 1)
    _check(cells, region, planes, tol, split_cells(cells, region, planes, tol, units))


def test_concurrent_planes_make_one_cut():
    rng = np.random.default_rng(3)
    cells = _batch(rng, 4)
    mid = (cells.lo + cells.hi) / 2 + 1e-3
    region, planes = _planes(rng, cells, 5, through=mid)
    tol = _tolerance(planes, cells)
    units = torch.stack([torch.zeros_like(region), torch.arange(len(region))], 1)
    res = split_cells(cells, region, planes, tol, units)
    _check(cells, region, planes, tol, res)
    assert len(res.pieces) == 8  # two per interval
    assert torch.allclose(res.pieces.hi[::2], mid, rtol=0, atol=1e-12)


def test_a_plane_through_an_end_or_flat_does_not_cut():
    cells = Intervals(torch.tensor([0.0]), torch.tensor([2.0]), torch.full((1, 2, 2), BORDER))
    planes = torch.tensor([[1.0, 0.0], [-1.0, 2.0], [0.0, 0.0], [0.0, 1.0]])  # through lo, through hi, flat x2
    region = torch.zeros(4, dtype=torch.int64)
    tol = _tolerance(planes, cells)
    units = torch.stack([torch.zeros(4, dtype=torch.int64), torch.arange(4)], 1)
    res = split_cells(cells, region, planes, tol, units)
    _check(cells, region, planes, tol, res)
    assert len(res.pieces) == 1
    assert res.sides_of(torch.tensor([0]))[2].tolist() == [1, 1, 0, 1]


def test_a_budget_hands_back_whole_intervals_that_split_later_alike():
    rng = np.random.default_rng(7)
    cells = _batch(rng, 9)
    region, planes = _planes(rng, cells, 6)
    tol = _tolerance(planes, cells)
    units = torch.stack([torch.zeros_like(region), torch.arange(len(region))], 1)
    whole = split_cells(cells, region, planes, tol, units)
    part = split_cells(cells, region, planes, tol, units, budget=2000)
    assert 0 < len(part.rest) < len(cells)
    done = len(cells) - len(part.rest)
    assert torch.equal(part.rest_parent, torch.arange(done, len(cells)))
    assert torch.equal(part.rest.lo, cells.lo[done:])
    keep = region >= done
    again = split_cells(part.rest, region[keep] - done, planes[keep], tol[keep], units[keep])
    assert torch.equal(torch.cat([part.pieces.lo, again.pieces.lo]), whole.pieces.lo)
    assert torch.equal(torch.cat([part.pieces.hi, again.pieces.hi]), whole.pieces.hi)


def test_extremes_measure_and_centroids():
    rng = np.random.default_rng(1)
    cells = _batch(rng, 5)
    maps = torch.tensor(rng.normal(size=(5, 2, 3)))
    hi, lo = cells.extremes(maps)
    at = torch.stack([maps[:, 0] + maps[:, 1] * cells.lo[:, None], maps[:, 0] + maps[:, 1] * cells.hi[:, None]])
    assert torch.equal(hi, at.amax(0)) and torch.equal(lo, at.amin(0))
    assert torch.equal(cells.measure(), cells.hi - cells.lo)
    assert bool(((cells.centroids()[:, 0] > cells.lo) & (cells.centroids()[:, 0] < cells.hi)).all())
    sub, _ = cells.select(torch.tensor([3, 1]))
    assert torch.equal(sub.lo, cells.lo[[3, 1]]) and len(cells.mask(cells.lo > 0)) == int((cells.lo > 0).sum())
    assert len(Intervals.cat([cells, sub])) == 7


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(1, 8), through=st.booleans())
def test_arcs_cut_at_the_closed_form_zeros(seed, n, through):
    """Arcs of the unit circle cut by ``a cos s + b sin s + c``: the pieces tile the arc, every
    inner end is a zero of its plane, and no plane changes sign inside a piece (dense samples)."""
    rng = np.random.default_rng(seed)
    cells = Arcs(torch.tensor([0.0, 1.0], dtype=torch.float64), torch.tensor([2 * np.pi, 2.5], dtype=torch.float64),
                 torch.full((2, 2, 2), BORDER))
    region = torch.arange(2).repeat_interleave(n)
    ab = torch.tensor(rng.normal(size=(2 * n, 2)))
    if through:  # every plane through the point at angle 1.3 (concurrent zeros)
        c = -(ab[:, 0] * np.cos(1.3) + ab[:, 1] * np.sin(1.3))
    else:
        c = torch.tensor(rng.normal(size=2 * n)) * ab.norm(dim=1)
    planes = torch.cat([ab, c[:, None]], 1)
    tol = plane_tolerance((planes[:, 0].clone(), planes[:, 1].clone()), planes[:, 2], torch.ones(2), RTOL)
    units = torch.stack([torch.zeros_like(region), torch.arange(len(region))], 1)
    res = split_cells(cells, region, planes, tol, units)
    pieces, parent = res.pieces, res.parent
    for r in range(2):
        own = torch.nonzero(parent == r).flatten()
        assert pieces.lo[own][0] == cells.lo[r] and pieces.hi[own][-1] == cells.hi[r]
        assert torch.equal(pieces.lo[own][1:], pieces.hi[own][:-1]) and bool((pieces.hi[own] > pieces.lo[own]).all())
    inner = torch.nonzero(pieces.ends[:, 0, 0] != BORDER).flatten()
    which = pieces.ends[inner, 0, 1]
    s = pieces.lo[inner]
    value = planes[which, 0] * torch.cos(s) + planes[which, 1] * torch.sin(s) + planes[which, 2]
    assert bool((value.abs() <= 1e-12 * (1 + planes[which].abs().sum(1))).all())
    piece, plane, side = res.sides_of(torch.arange(len(pieces)))
    f = torch.linspace(0.001, 0.999, 200, dtype=torch.float64)
    pts = pieces.lo[piece, None] + (pieces.hi - pieces.lo)[piece, None] * f
    vals = planes[plane, 0, None] * torch.cos(pts) + planes[plane, 1, None] * torch.sin(pts) + planes[plane, 2, None]
    t = tol[plane, None]
    assert not bool(((vals > t).any(1) & (vals < -t).any(1)).any())  # no sign change inside a piece
    assert bool(((side > 0) <= (vals > -t).all(1)).all()) and bool(((side < 0) <= (vals < t).all(1)).all())
    if through:  # concurrent zeros at 1.3 make one cut in each arc
        assert int((pieces.lo - 1.3).abs().lt(1e-9).sum()) == 2


@settings(max_examples=examples(40), deadline=None)
@given(seed=st.integers(0, 10**6), c=st.integers(2, 6), integer=st.booleans())
def test_max_cells_of_intervals_are_the_upper_envelope(seed, c, integer):
    """Each interval splits into the cells where one candidate (affine in t) wins: the cells
    tile it, the winner is the max at every point of its cell (ties to the lowest candidate
    inside a cell only where two candidates are the same function), and a cell's new ends are
    where two candidates tie."""
    rng = np.random.default_rng(seed)
    p = 5
    lo = torch.tensor(rng.uniform(-2, 0, p))
    cells = Intervals(lo, lo + torch.tensor(rng.uniform(0.5, 2, p)), torch.full((p, 2, 2), BORDER))
    funcs = torch.tensor(rng.integers(-3, 4, (p, c, 2)) if integer else rng.normal(size=(p, c, 2)), dtype=torch.float64)
    funcs[:, -1] = funcs[:, 0]  # a duplicate candidate: never a cell of its own
    units = torch.tensor([[7, 3]] * p)
    mc = max_cells(cells, funcs, 1e-10, torch.ones(1), new_units=units)
    out = mc.cells
    assert torch.all(mc.winner != c - 1)
    for r in range(p):
        mine = torch.nonzero(mc.parent == r).flatten()
        order = mine[torch.argsort(out.lo[mine])]
        assert out.lo[order[0]] == cells.lo[r] and out.hi[order[-1]] == cells.hi[r]
        assert torch.equal(out.lo[order[1:]], out.hi[order[:-1]]) and torch.all(out.hi[order] > out.lo[order])
        t = torch.linspace(0, 1, 101, dtype=torch.float64)[1:-1]
        for q in order:
            pts = out.lo[q] + t * (out.hi[q] - out.lo[q])
            vals = funcs[r, :, 0, None] * pts + funcs[r, :, 1, None]  # (c, m)
            assert torch.all(vals[mc.winner[q]] >= vals.amax(0) - 1e-9)
        inner = out.ends[order[1:], 0]
        assert torch.all(inner == units[r]) and torch.equal(out.ends[order[:-1], 1], inner)
        for q in order[1:]:  # a new end: the two winners tie there
            prev = order[(order == q).nonzero()[0, 0] - 1]
            a, b = funcs[r, mc.winner[q]], funcs[r, mc.winner[prev]]
            assert abs(float((a[0] - b[0]) * out.lo[q] + a[1] - b[1])) <= 1e-9
