"""Boundary curves and class regions with their Betti numbers."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from torch import nn

import splinecam as sc
from helpers import linear_layer, model_out, random_mlp, run

BOX2 = sc.Slice.box((-2, -2), (2, 2))
HAT = [[1, 0], [-1, 0], [0, 1], [0, -1]]  # relu(u), relu(-u), relu(v), relu(-v): |u| = h0 + h1


def abs_net() -> nn.Module:
    """|x1| + |x2| - 1."""
    return nn.Sequential(linear_layer(HAT, [0] * 4), nn.ReLU(), linear_layer([[1] * 4], [-1])).eval()


def annulus_net() -> nn.Module:
    """||x1| + |x2| - 1| - 0.3."""
    return nn.Sequential(linear_layer(HAT, [0] * 4), nn.ReLU(),
                         linear_layer([[1] * 4, [-1] * 4], [-1, 1]), nn.ReLU(),
                         linear_layer([[1, 1]], [-0.3])).eval()


def test_abs_has_one_closed_curve_and_a_hole_outside():
    part = run(abs_net(), BOX2)
    db = part.decision_boundary()
    cv = db.curves()
    assert len(cv) == 1 and cv[0].closed and db.n_components == 1
    np.testing.assert_array_equal(cv[0].points[0], cv[0].points[-1])
    assert cv[0].length == pytest.approx(db.length, rel=1e-12) == pytest.approx(4 * np.sqrt(2), rel=1e-12)
    regions = part.class_regions()
    inside, outside = regions[0], regions[1]  # class 0: f < 0
    assert (inside.b0, inside.b1) == (1, 0) and inside.area == pytest.approx(2.0, rel=1e-12)
    assert (outside.b0, outside.b1) == (1, 1) and outside.area == pytest.approx(14.0, rel=1e-12)


def test_annulus():
    part = run(annulus_net(), BOX2)
    regions = part.class_regions()
    ring = regions[0]  # {f < 0}
    assert (ring.b0, ring.b1) == (1, 1)
    # |(|u| + |v|) - 1| < 0.3 (with the float32 weights the model holds)
    assert ring.area == pytest.approx(2 * (1.3**2 - 0.7**2), rel=1e-6)
    assert (regions[1].b0, regions[1].b1) == (2, 1)
    cv = part.decision_boundary().curves()
    assert len(cv) == 2 and all(c.closed for c in cv)


def test_linear_two_class_model_has_one_open_curve():
    model = nn.Sequential(linear_layer([[1, 2], [-0.5, 0.25]], [0.1, -0.2])).eval()
    part = run(model, BOX2)
    cv = part.decision_boundary().curves()
    assert len(cv) == 1 and not cv[0].closed and len(cv.junctions) == 0
    ends = cv[0].points[[0, -1]]
    assert np.all(np.isclose(np.abs(ends), 2.0).any(1))  # both ends on the slice border
    np.testing.assert_array_equal(np.sort(cv[0].classes, 1), [[0, 1]] * len(cv[0].classes))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_curves_cover_the_boundary(seed):
    part = run(random_mlp([8, 8], 4, seed), BOX2)
    for db in (part.decision_boundary(), part.level_set(0.1, output=1)):
        cv = db.curves()
        assert cv.lengths.sum() == pytest.approx(db.length, rel=1e-12)
        assert sum(len(c.segments) for c in cv) == len(db)
        assert sorted(np.concatenate([c.segments for c in cv]).tolist()) == list(range(len(db)))
        for c in cv:  # pieces chain end to end, in the order of their segments
            seg = db.segments[c.segments]
            fwd = np.isclose(seg[:, 0], c.points[:-1], atol=1e-9).all(1) & np.isclose(seg[:, 1], c.points[1:], atol=1e-9).all(1)
            bwd = np.isclose(seg[:, 1], c.points[:-1], atol=1e-9).all(1) & np.isclose(seg[:, 0], c.points[1:], atol=1e-9).all(1)
            assert np.all(fwd | bwd)
            if not c.closed:  # open curves end on the border or at junctions
                for p in c.points[[0, -1]]:
                    on_border = np.isclose(np.abs(p), 2.0).any()
                    at_junction = len(cv.junctions) and np.isclose(cv.junctions, p, atol=1e-9).all(1).any()
                    assert on_border or at_junction
        # three or more classes meet at every junction
        for j in cv.junctions:
            near = [c.classes[k] for c in cv for k in range(len(c.classes))
                    if np.isclose(c.points[k], j, atol=1e-9).all() or np.isclose(c.points[k + 1], j, atol=1e-9).all()]
            assert len(np.unique(np.concatenate(near))) >= 3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_class_regions_are_exact(seed):
    """Areas tile the slice; every grid point away from the boundary lies in its class's region;
    the Betti numbers agree with shapely's union of the argmax cells."""
    shapely = pytest.importorskip("shapely")
    model = random_mlp([8, 8], 3, seed)
    part = run(model, BOX2)
    regions = part.class_regions()
    assert sum(r.area for r in regions.values()) == pytest.approx(BOX2.area, rel=1e-9)
    g = np.stack(np.meshgrid(np.linspace(-1.97, 1.97, 41), np.linspace(-1.97, 1.97, 41)), -1).reshape(-1, 2)
    out = model_out(model, BOX2, g)
    top = np.sort(out, 1)
    clear = top[:, -1] - top[:, -2] > 1e-6
    cls = out.argmax(1)
    shapes = {c: r.to_shapely() for c, r in regions.items()}
    for c, shape in shapes.items():
        assert shape.is_valid and shape.area == pytest.approx(regions[c].area, rel=1e-9)
        inside = np.array([shape.contains(shapely.Point(p)) for p in g])
        np.testing.assert_array_equal(inside[clear], cls[clear] == c)
    for c, r in regions.items():  # shapely's union of the argmax cells, clipped by shapely
        union = reference_cells(part, c)
        parts = list(getattr(union, "geoms", [union]))
        assert (r.b0, r.b1) == (len(parts), sum(len(p.interiors) for p in parts))


def reference_cells(part, c: int):
    """The union of the cells where class c wins, each cut from its region by shapely with the
    half-planes f_c >= f_j (grown by 1e-9 so that cells of neighbouring regions meet)."""
    import shapely

    big = 1e3
    cells = []
    for r, poly in enumerate(part.polygons):
        cell = shapely.Polygon(poly)
        f = part.affine[r]
        for j in range(len(f)):
            if j == c or cell.is_empty:
                continue
            a, b, d = f[c] - f[j]  # keep a*u + b*v + d >= 0
            n = np.array([a, b]) / np.hypot(a, b)
            p0 = -d * n / np.hypot(a, b)
            t = np.array([-n[1], n[0]])
            half = shapely.Polygon([p0 + big * t, p0 - big * t, p0 - big * t + big * n, p0 + big * t + big * n])
            cell = cell.intersection(half)
        if cell.area > 0:
            cells.append(cell.buffer(1e-9))
    return shapely.union_all(cells)


def test_level_set_classes_and_errors():
    part = run(random_mlp([8, 8], 2, 5), BOX2)
    regions = part.class_regions(output=1, level=0.2)
    assert set(regions) <= {0, 1}
    assert sum(r.area for r in regions.values()) == pytest.approx(BOX2.area, rel=1e-9)
    with pytest.raises(ValueError, match="output"):
        part.class_regions(output=2)
    coarse = sc.decision_boundary(random_mlp([8, 8], 2, 5), BOX2, progress=False).partition
    with pytest.raises(ValueError, match="coarse"):
        coarse.class_regions()


def test_empty_boundary():
    model = nn.Sequential(linear_layer([[0.0, 0.0]], [1.0])).eval()
    db = run(model, BOX2).decision_boundary()
    assert len(db.curves()) == 0 and db.n_components == 0


def test_curves_meet_at_a_t_junction():
    """A segment that ends inside another one cuts it there: three curves meet at a junction."""
    segs = np.array([[[-1, 0], [1, 0]], [[0, 0], [0, 1]], [[0, 1], [0.5, 1.5]]], float)
    db = sc.Boundary(segs, np.zeros(3, np.int64), np.array([[0, 1], [1, 2], [1, 2]]))
    cv = db.curves()
    assert db.n_components == 1 and len(cv) == 3 and not any(c.closed for c in cv)
    np.testing.assert_allclose(cv.junctions, [[0, 0]])
    assert cv.lengths.sum() == pytest.approx(db.length)
    assert sorted(len(c.points) for c in cv) == [2, 2, 3]
    assert sorted(np.concatenate([c.segments for c in cv]).tolist()) == [0, 0, 1, 2]


def test_optional_packages_missing(monkeypatch):
    part = run(random_mlp([4], 2, 0), BOX2)
    region = next(iter(part.class_regions().values()))
    monkeypatch.setitem(sys.modules, "networkx", None)  # import networkx then fails
    monkeypatch.setitem(sys.modules, "shapely.geometry", None)
    with pytest.raises(ImportError, match=r"splinecam\[topology\]"):
        part.to_networkx()
    with pytest.raises(ImportError, match=r"splinecam\[topology\]"):
        region.to_shapely()
