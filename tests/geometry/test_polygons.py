"""The batched cut kernel on its own: pieces tile their parent, on-line vertices go to both
pieces (no slivers, no duplicates), and every edge keeps the label of the line it lies on."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from splinecam.geometry import BORDER, Polygons, candidate_tolerance, cut
from helpers import check_polygon_shapes, examples, hull, make_batch

RTOL = 1e-10
CUT = 999  # second label of the edges a cut creates


def pieces(polys: Polygons) -> list[np.ndarray]:
    return [polys.verts[polys.offsets[i]:polys.offsets[i + 1]].numpy() for i in range(len(polys))]


def piece_labels(polys: Polygons) -> list[np.ndarray]:
    return [polys.edge_units[polys.offsets[i]:polys.offsets[i + 1]].numpy() for i in range(len(polys))]


def area(p: np.ndarray) -> float:
    return 0.5 * float(np.sum(p[:, 0] * np.roll(p[:, 1], -1) - p[:, 1] * np.roll(p[:, 0], -1)))


def do_cut(polys: list[np.ndarray], lines: np.ndarray):
    batch = make_batch(polys)
    lines_t = torch.as_tensor(lines, dtype=torch.float64)
    extent = torch.tensor([max(np.abs(p).max() for p in polys)] * 2, dtype=torch.float64)
    tol = candidate_tolerance(lines_t, extent, RTOL)
    line_labels = torch.stack([torch.arange(len(polys)), torch.full((len(polys),), CUT)], 1)
    return batch, cut(batch, lines_t, tol, line_labels), tol.numpy()


def check_cut(polys: list[np.ndarray], lines: np.ndarray) -> None:
    batch, res, tol = do_cut(polys, lines)
    scale = max(np.abs(p).max() for p in polys)
    pos, neg = pieces(res.pos), pieces(res.neg)
    pos_parent, neg_parent = res.pos_parent.numpy(), res.neg_parent.numpy()
    assert len(pos) == len(pos_parent) and len(neg) == len(neg_parent)
    check_polygon_shapes(pos + neg, scale)

    def s(p, parent):
        a, b, c = lines[parent]
        return a * p[:, 0] + b * p[:, 1] + c

    for p, parent in zip(pos, pos_parent):
        assert s(p, parent).min() >= -tol[parent]
    for p, parent in zip(neg, neg_parent):
        assert s(p, parent).max() <= tol[parent]

    for i, poly in enumerate(polys):
        sv = s(poly, i)
        crossed = sv.max() > tol[i] and sv.min() < -tol[i]
        n_pos, n_neg = (pos_parent == i).sum(), (neg_parent == i).sum()
        # a crossed polygon gives one piece per side; else it goes whole to the side it touches
        assert (n_pos, n_neg) == ((1, 1) if crossed else ((0, 1) if sv.min() < -tol[i] else (1, 0)))
        mine = [p for p, q in zip(pos, pos_parent) if q == i] + [p for p, q in zip(neg, neg_parent) if q == i]
        assert sum(area(p) for p in mine) == pytest.approx(area(poly), rel=1e-12, abs=1e-14 * scale**2)
        if not crossed:
            assert np.array_equal(mine[0], poly)
            continue
        # every piece vertex is a parent vertex or lies on the line and on a parent edge
        for p in mine:
            for v in p:
                if np.any(np.all(v == poly, axis=1)):
                    continue
                assert abs(s(v[None], i)[0]) <= 1e-12 * scale * np.abs(lines[i]).sum()
                e = np.roll(poly, -1, axis=0) - poly
                d = v - poly
                cross = np.abs(e[:, 0] * d[:, 1] - e[:, 1] * d[:, 0]) / np.linalg.norm(e, axis=1)
                assert cross.min() <= 1e-12 * scale
        # on-line parent vertices appear in both pieces, exactly
        on = np.abs(sv) <= tol[i]
        for v in poly[on]:
            for p in mine:
                assert np.any(np.all(p == v, axis=1))

    # labels: an edge labelled with the cut carries it; other edges lie on their parent edge
    for plist, llist, parents in ((pos, piece_labels(res.pos), pos_parent), (neg, piece_labels(res.neg), neg_parent)):
        for p, lab, parent in zip(plist, llist, parents):
            nxt = np.roll(p, -1, axis=0)
            for a, b, (l0, l1) in zip(p, nxt, lab):
                if l1 == CUT:
                    assert l0 == parent
                    assert abs(s(a[None], parent)[0]) <= tol[parent] * 10
                    assert abs(s(b[None], parent)[0]) <= tol[parent] * 10
                else:
                    assert l0 == 100 + parent
                    q = polys[parent]
                    e0, e1 = q[l1], q[(l1 + 1) % len(q)]
                    e = e1 - e0
                    for x in (a, b):
                        d = x - e0
                        assert abs(e[0] * d[1] - e[1] * d[0]) <= 1e-12 * scale * np.linalg.norm(e)


def test_square_through_two_vertices():
    """The diagonal u = v of the unit square: two triangles, both diagonal corners in each."""
    sq = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=np.float64)
    check_cut([sq], np.array([[1.0, -1.0, 0.0]]))
    _, res, _ = do_cut([sq], np.array([[1.0, -1.0, 0.0]]))
    assert [len(p) for p in pieces(res.pos)] == [3] and [len(p) for p in pieces(res.neg)] == [3]


def test_square_through_one_vertex():
    sq = np.array([[0, 0], [2, 0], [2, 2], [0, 2]], dtype=np.float64)
    line = np.array([[1.0, -2.0, 0.0]])  # u = 2v through (0, 0) and (2, 1)
    check_cut([sq], line)
    _, res, _ = do_cut([sq], line)
    assert sorted(len(p) for p in pieces(res.pos) + pieces(res.neg)) == [3, 4]


@pytest.mark.parametrize("line,side", [
    ([1.0, 0.0, 0.0], "pos"),     # along the edge u = 0, polygon on the positive side
    ([-1.0, 0.0, 0.0], "neg"),    # same line, flipped
    ([1.0, 1.0, 0.0], "pos"),     # touches the corner (0, 0) only
    ([1.0, 0.0, 5.0], "pos"),     # misses
    ([1.0, 0.0, -5.0], "neg"),
])
def test_not_crossed(line, side):
    sq = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=np.float64)
    check_cut([sq], np.array([line]))
    _, res, _ = do_cut([sq], np.array([line]))
    assert (len(res.pos), len(res.neg)) == ((1, 0) if side == "pos" else (0, 1))


def test_line_within_tolerance_of_a_vertex_makes_no_sliver():
    sq = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], dtype=np.float64)
    line = np.array([[1.0, 1.0, -2.0 + 1e-13]])  # passes 1e-13 away from the corner (1, 1)
    check_cut([sq], line)
    _, res, _ = do_cut([sq], line)
    assert len(res.pos) + len(res.neg) == 1


def test_batch_equals_one_by_one():
    rng = np.random.default_rng(1)
    polys = [hull(rng.uniform(-3, 3, (8, 2))) for _ in range(20)]
    lines = rng.normal(size=(20, 3))
    _, res, _ = do_cut(polys, lines)
    for i in range(20):
        _, one, _ = do_cut([polys[i]], lines[i:i + 1])
        for side, parents in (("pos", res.pos_parent), ("neg", res.neg_parent)):
            got = [p for p, q in zip(pieces(getattr(res, side)), parents.numpy()) if q == i]
            want = pieces(getattr(one, side))
            assert len(got) == len(want)
            for a, b in zip(got, want):
                assert np.array_equal(a, b)


def test_single_polygon_border_labels():
    sq = torch.tensor([[0.0, 0], [1, 0], [1, 1], [0, 1]], dtype=torch.float64)
    p = Polygons.single(sq)
    assert len(p) == 1 and torch.all(p.edge_units == BORDER)
    assert float(p.areas()[0]) == 1.0


coord = st.integers(-4, 4)


@settings(max_examples=examples(100), deadline=None)
@given(
    raw=st.lists(st.lists(st.tuples(coord, coord), min_size=3, max_size=8), min_size=1, max_size=6),
    lines=st.lists(st.tuples(st.integers(-3, 3), st.integers(-3, 3), st.integers(-6, 6)), min_size=6, max_size=6),
)
def test_integer_polygons_and_lines(raw, lines):
    """Lattice polygons cut by lattice lines: lines through vertices and along edges are common."""
    polys = [hull(np.array(r, dtype=np.float64)) for r in raw]
    polys = [p for p in polys if len(p) >= 3]
    if not polys:
        return
    ln = np.array(lines[: len(polys)], dtype=np.float64)
    ln[np.all(ln[:, :2] == 0, axis=1), 0] = 1.0  # a line needs a direction
    check_cut(polys, ln)


@settings(max_examples=examples(60), deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(1, 30))
def test_random_polygons_and_lines(seed, n):
    rng = np.random.default_rng(seed)
    size = 10 ** rng.uniform(-3, 3)  # one domain scale per batch, as in a slice
    polys = [hull(rng.normal(size=(rng.integers(3, 12), 2)) * size * rng.uniform(0.2, 1)) for _ in range(n)]
    polys = [p for p in polys if len(p) >= 3]
    # lines through the centroid, through a vertex, or through two vertices
    lines = []
    for p in polys:
        kind = rng.integers(3)
        a = p[rng.integers(len(p))] if kind else p.mean(0)
        b = p[rng.integers(len(p))] if kind == 2 else a + rng.normal(size=2)
        if np.all(a == b):
            b = a + rng.normal(size=2)
        d = b - a
        lines.append([d[1], -d[0], d[0] * a[1] - d[1] * a[0]])
    check_cut(polys, np.array(lines))


def test_region_grid_of_no_polygons_locates_nothing():
    """A run stopped before its first region has no polygons: every point is in none."""
    import warnings

    from splinecam.geometry.locate import RegionGrid

    empty = Polygons.from_numpy(np.zeros((0, 2)), np.zeros(1, dtype=np.int64))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert (RegionGrid(empty).locate(np.random.default_rng(0).normal(size=(5, 2)) * 1e3) == -1).all()

