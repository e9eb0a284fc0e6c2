"""Certified partitions of models that start with a sine encoding (splinecam.run.curved):
analytic curves and counts, patterns against a grid, polylines against sign changes, counts
that do not depend on the subdivision, limits and progress, and the errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import SinEncoding, model_out, seconds_to_stop, sine_mlp
from torch import nn

import splinecam as sc
from splinecam.errors import RegionLimitError, TimeLimitError, UnsupportedModelError
from splinecam.run.curved import BORDER, DECISION, INSIDE, UNCERTIFIED

ISLANDS = sc.Slice.box((-np.pi + 0.1, -np.pi + 0.2), (3 * np.pi + 0.1, 3 * np.pi + 0.2))


def one_unit(weights, bias, F=np.eye(2), phi=np.zeros(2)) -> nn.Sequential:
    """Encoding, one unit ``w . sin(F x + phi) + b``, ReLU, one output: its boundary is a level curve."""
    first, last = nn.Linear(len(weights), 1), nn.Linear(1, 1)
    with torch.no_grad():
        first.weight[:] = torch.tensor([weights], dtype=torch.float64)
        first.bias[:] = bias
        last.weight[:] = 2.0
        last.bias[:] = -0.5
    return nn.Sequential(SinEncoding(F, phi), first, nn.ReLU(), last).double()


def unit_edges(part, layer=0):
    """The polyline segments (S, 2, 2) of a layer's units (each appears on both sides)."""
    a = part.arrays
    nxt = np.arange(len(a.vertices)) + 1
    nxt[a.offsets[1:] - 1] = a.offsets[:-1]
    on = a.edge_units[:, 0] == layer
    return np.stack([a.vertices[on], a.vertices[nxt[on]]], 1)


def distance_to_segments(p, segs) -> np.ndarray:
    """(N,) the distance of each point (N, 2) to the nearest segment (S, 2, 2), 256 points at a time."""
    a, d = segs[:, 0], segs[:, 1] - segs[:, 0]
    out = []
    for q in np.array_split(p, max(1, len(p) // 256)):
        t = np.clip(((q[:, None] - a) * d).sum(-1) / np.maximum((d * d).sum(-1), 1e-300), 0, 1)
        out.append(np.linalg.norm(q[:, None] - (a + t[..., None] * d), axis=-1).min(1))
    return np.concatenate(out)


def test_islands_of_one_unit_match_the_analytic_curve_and_count():
    # sin u + sin v = 1.2: one closed curve around each maximum; 4 in the slice, none touching it
    part = sc.partition(one_unit([1.0, 1.0], -1.2), ISLANDS, progress=False)
    assert part.curved and part.n_regions == 5 and len(part.uncertified) == 0
    assert part.tolerance == pytest.approx(1e-6 * 4 * np.pi)
    segs = np.unique(np.sort(unit_edges(part).view(complex), 1).view(float).reshape(-1, 2, 2), axis=0)  # once each
    p = segs.reshape(-1, 2)
    f = np.sin(p[:, 0]) + np.sin(p[:, 1]) - 1.2  # first-order distance to the curve (|grad| >= 0.97 there)
    assert np.max(np.abs(f) / np.hypot(np.cos(p[:, 0]), np.cos(p[:, 1]))) <= part.tolerance
    v = np.linspace(*ISLANDS.polygon[[0, 2], 1], 1001)
    s = 1.2 - np.sin(v)
    v, s = v[np.abs(s) <= 1], s[np.abs(s) <= 1]
    u = np.concatenate([np.arcsin(s) + 2 * np.pi * k for k in (0, 1)] + [np.pi - np.arcsin(s) + 2 * np.pi * k
                                                                         for k in (0, 1)])
    curve = np.stack([u, np.tile(v, 4)], 1)  # points of the true curve, all inside the slice
    assert distance_to_segments(curve, segs).max() <= part.tolerance
    assert (part.region >= 0).all()
    sizes = np.sort(np.bincount(part.region, weights=part.areas))
    island = island_area(1.2)
    assert np.allclose(sizes[:4], island, rtol=0, atol=20 * part.tolerance)
    dmap = sc.density_map(part, 64)  # 1 / the area of the region at each pixel: an island's, or the rest's
    gap = np.abs(1 / dmap.values.ravel()[:, None] - sizes).min(1)  # each pixel shows its region's area
    shown = 1 / dmap.values.ravel()
    assert gap.max() <= 1e-9 and np.isclose(shown, sizes[0]).any() and np.isclose(shown, sizes[4]).any()
    assert part.verify().ok


def test_level_sets_are_certified_curves():
    # out = 2 relu(sin u + sin v - 1.2) - 0.5 = 0.3: sin u + sin v = 1.6, a closed curve in each island
    model = one_unit([1.0, 1.0], -1.2)
    part = sc.partition(model, ISLANDS, progress=False, tol=1e-5)
    curve = part.level_set(0.3)
    assert len(curve) > 0
    p = curve.segments.reshape(-1, 2)
    f = np.sin(p[:, 0]) + np.sin(p[:, 1]) - 1.6
    assert np.max(np.abs(f) / np.hypot(np.cos(p[:, 0]), np.cos(p[:, 1]))) <= 1e-5
    v = np.linspace(0.5, np.pi - 0.5, 301)  # points of the true curve: u from sin u = 1.6 - sin v
    s = 1.6 - np.sin(v)
    v, s = v[np.abs(s) <= 1], s[np.abs(s) <= 1]
    on = np.stack([np.arcsin(s), v], 1)
    assert distance_to_segments(on, curve.segments).max() <= 1e-5
    assert part.level_set(0.0).segments.shape == part.decision_boundary().segments.shape
    with pytest.raises(ValueError, match="one-output"):
        sc.partition(sine_mlp([3], 2, 0), sc.Slice.box((-1, -1), (1, 1)), progress=False, tol=1e-3).level_set(0.5)


def island_area(level: float) -> float:
    """The area of one island ``sin u + sin v > level`` (level > 0), by the trapezoid rule."""
    v = np.linspace(0, np.pi, 200001)
    width = np.pi - 2 * np.arcsin(np.clip(level - np.sin(v), -1, 1))
    return float(np.sum((width[1:] + width[:-1]) / 2) * (v[1] - v[0]))


def test_class_regions_are_the_certified_sides_of_the_decision_boundary():
    # out = 2 relu(sin u + sin v - 1.2) - 0.5 > 0 where sin u + sin v > 1.45: four islands
    part = sc.partition(one_unit([1.0, 1.0], -1.2), ISLANDS, progress=False, tol=1e-6)
    regions = part.class_regions()
    assert sorted(regions) == [0, 1]
    assert (regions[1].b0, regions[1].b1) == (4, 0) and (regions[0].b0, regions[0].b1) == (1, 4)
    assert regions[1].area == pytest.approx(4 * island_area(1.45), abs=1e-4)
    assert regions[0].area + regions[1].area == pytest.approx(ISLANDS.area, rel=1e-12)
    cells = part.class_cells()
    assert np.array_equal(cells.label, part.side) and cells.areas.sum() == pytest.approx(ISLANDS.area, rel=1e-12)
    for ring, _ in regions[1].polygons:  # each island's outline is within tol of the level curve
        f = np.sin(ring[:, 0]) + np.sin(ring[:, 1]) - 1.45
        assert np.max(np.abs(f) / np.hypot(np.cos(ring[:, 0]), np.cos(ring[:, 1]))) <= part.tolerance
    with pytest.raises(ValueError, match=r"at_level\(0.3\)"):
        part.class_regions(level=0.3)
    assert part.at_level(0.0) is part
    higher = part.at_level(0.3).class_regions()  # sin u + sin v > 1.6: smaller islands
    assert higher[1].b0 == 4 and higher[1].area == pytest.approx(4 * island_area(1.6), abs=1e-4)
    with pytest.raises(ValueError, match="1 or 2 outputs"):
        sc.partition(sine_mlp([2], 3, 0), sc.Slice.box((-1, -1), (1, 1)), progress=False, tol=1e-3).class_regions()


DEGENERATE = [  # (F, phi, W, b, (patterns, regions), reason): a true degeneracy at the origin, which no
    # subdivision separates; the regions that meet only there may be joined there (not proven), so the count is
    # between the number of patterns and the number of regions
    (np.array([[1.0, 0], [0, 1], [1, 1]]), np.zeros(3), np.eye(3), np.zeros(3), (6, 6), 0),  # three lines through it
    (np.array([[0.0, 1], [1, 0]]), np.array([0, np.pi / 2]), np.array([[1.0, 0], [1, 0.1]]), np.array([0, -0.1]),
     (3, 4), 2),  # sin v = 0 and sin v = 0.1 (1 - cos u), touching there: the slivers between them meet only there
    (np.array([[1.0, 1], [1, -1]]), np.array([np.pi / 2, np.pi / 2]), np.array([[1.0, -1]]), np.array([0.0]), (2, 4),
     1),  # sin(u + v + pi/2) = sin(u - v + pi/2), i.e. sin u sin v = 0: the lines u = 0 and v = 0 crossing, one unit
]


@pytest.mark.parametrize("F, phi, W, b, regions, reason", DEGENERATE)
def test_true_degeneracies_are_listed_uncertified_with_their_reason(tmp_path, F, phi, W, b, regions, reason):
    model = nn.Sequential(SinEncoding(F, phi), layer(W, b), nn.ReLU(), layer(np.ones((1, len(b))), [5.0])).double()
    sl = sc.Slice.box((-0.3, -0.2), (0.4, 0.5))  # the origin on no dyadic line of the box
    part = sc.partition(model, sl, progress=False)
    cells = part.uncertified
    assert len(cells) > 0 and part.uncertified_reasons == [UNCERTIFIED[reason]] * len(cells)
    assert (cells[:, 2:] - cells[:, :2]).max() <= 0.7 * 2.0 ** -26 * (1 + 1e-9)  # the smallest cells
    assert np.abs(cells).max() <= 1e-6  # all at the degenerate point
    assert regions[0] <= part.n_regions <= regions[1] and part.verify(n_points=400).ok
    part.save(tmp_path / "degenerate.npz")
    assert sc.CurvedPartition.load(tmp_path / "degenerate.npz").uncertified_reasons == part.uncertified_reasons


def test_stripes_of_one_unit_count_and_lie_on_the_lines():
    # sin u = 0.3 on u in [0, 4 pi]: 4 vertical lines, 5 stripes alternating off / on
    sl = sc.Slice.box((0.05, -1.0), (4 * np.pi - 0.05, 1.3))
    part = sc.partition(one_unit([1.0, 0.0], -0.3), sl, progress=False, tol=1e-7)
    assert part.n_regions == 5 and len(part.uncertified) == 0
    roots = np.sort(np.concatenate([np.arcsin(0.3) + [0, 2 * np.pi], np.pi - np.arcsin(0.3) + [0, 2 * np.pi]]))
    p = unit_edges(part).reshape(-1, 2)
    assert np.abs(p[:, :1] - roots).min(1).max() <= 1e-7
    on = part.pieces.bits[:, 0]
    assert np.bincount(part.region[on]).astype(bool).sum() == 2


def rotation(angle: float) -> np.ndarray:
    return np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])


def layer(weights, bias) -> nn.Linear:
    weights = np.asarray(weights, np.float64)
    out = nn.Linear(weights.shape[1], weights.shape[0]).double()
    with torch.no_grad():
        out.weight[:] = torch.as_tensor(weights)
        out.bias[:] = torch.as_tensor(np.asarray(bias, np.float64))
    return out


def meeting_points(part, first, second) -> np.ndarray:
    """The polyline vertices that the curves of two units (layer, unit) share: their junctions."""
    a = part.arrays
    on = [(a.edge_units == label).all(1) for label in (first, second)]
    shared = {tuple(p) for p in a.vertices[on[0]]} & {tuple(p) for p in a.vertices[on[1]]}
    return np.array(sorted(shared)).reshape(-1, 2)


def test_crossings_of_two_curves_are_certified_at_the_analytic_points():
    # sin(w0 . x) = 0.3 and sin(w1 . x) = 0.2 with (w0, w1) a rotation: two families of parallel
    # lines crossing at right angles, 2 x 2 of them in the slice (4 crossings, 9 regions)
    R = rotation(0.4)
    model = nn.Sequential(SinEncoding(R, np.zeros(2)), layer(np.eye(2), [-0.3, -0.2]), nn.ReLU(),
                          layer([[1.0, 1.0]], [5.0])).double()  # the output is > 0: no decision boundary
    roots = [np.arcsin(c) + np.array([0, np.pi - 2 * np.arcsin(c)]) for c in (0.3, 0.2)]
    want = np.array([R.T @ (r0, r1) for r0 in roots[0] for r1 in roots[1]])  # the crossings, in x = uv
    sl = sc.Slice.box(want.min(0) - 0.35, want.max(0) + 0.3)
    part = sc.partition(model, sl, progress=False, tol=1e-6)
    assert len(part.uncertified) == 0 and part.certified.all()
    assert part.n_regions == 9
    got = meeting_points(part, (0, 0), (0, 1))
    assert len(got) == 4
    assert np.abs(np.sort(got.view(complex), 0).view(float) - np.sort(want.view(complex), 0).view(float)).max() <= 1e-6
    for unit, r in enumerate(roots):  # every vertex of each unit's polyline is on one of its lines
        p = part.arrays.vertices[(part.arrays.edge_units == (0, unit)).all(1)] @ R.T
        assert np.abs(p[:, unit, None] - r).min(1).max() <= 1e-6
    assert abs(part.areas.sum() - sl.area) <= 1e-9 * sl.area and part.verify(n_points=400).ok


def test_a_curve_bending_at_an_earlier_curve_is_certified():
    # layer 1: z0 = sin u - 0.3, z1 = sin v + 5 (always on); layer 2: z2 = relu(z0) + z1 - 5.2, so
    # z2 = 0 is sin v = 0.2 where sin u < 0.3 and sin v = 0.5 - sin u beyond: a bend at
    # (asin 0.3, asin 0.2); 4 regions
    model = nn.Sequential(SinEncoding(np.eye(2), np.zeros(2)), layer(np.eye(2), [-0.3, 5.0]), nn.ReLU(),
                          layer([[1.0, 1.0]], [-5.2]), nn.ReLU(), layer([[1.0]], [3.0])).double()
    sl = sc.Slice.box((0.05, 0.05), (1.5, 1.5))
    part = sc.partition(model, sl, progress=False, tol=1e-6)
    assert len(part.uncertified) == 0 and part.n_regions == 4
    bend = meeting_points(part, (0, 0), (1, 0))
    assert len(bend) == 1 and np.abs(bend[0] - np.arcsin([0.3, 0.2])).max() <= 1e-6
    p = part.arrays.vertices[(part.arrays.edge_units == (1, 0)).all(1)]
    left = p[:, 0] < np.arcsin(0.3)
    assert np.abs(p[left, 1] - np.arcsin(0.2)).max() <= 1e-6
    assert np.abs(np.sin(p[~left, 1]) - (0.5 - np.sin(p[~left, 0]))).max() <= 1e-6
    assert part.verify(n_points=400).ok


@pytest.mark.parametrize("seed", [pytest.param(0, marks=pytest.mark.slow), 1, pytest.param(2, marks=pytest.mark.slow)])
def test_random_networks_against_a_grid_and_sign_changes(seed):
    model = sine_mlp([3, 3], 1, seed)
    sl = sc.Slice.box((-1.3, -1.1), (1.2, 1.4))
    part = sc.partition(model, sl, progress=False, tol=1e-5)
    assert part.verify(n_points=500).ok
    # every pattern of a fine grid (away from the uncertified cells) is a region's
    n = 150
    u, v = np.meshgrid(np.linspace(-1.3, 1.2, n), np.linspace(-1.1, 1.4, n))
    uv = np.stack([u.ravel(), v.ravel()], 1)
    free = ~np.any([(uv >= c[:2] - 1e-3).all(1) & (uv <= c[2:] + 1e-3).all(1) for c in part.uncertified], 0) \
        if len(part.uncertified) else np.ones(len(uv), bool)
    bits = pattern_of(model, sl, uv)
    region_patterns = {b.tobytes() for b in part.pieces.bits[part.certified]}
    assert {b.tobytes() for b in bits[free]} <= region_patterns
    # and the piece a point lies in has its pattern, unless the point is within 2 tol of a polyline
    idx = part.locate(uv)
    assert (idx >= 0).all()
    wrong = (part.pieces.bits[idx] != bits).any(1) & free
    if wrong.any():
        assert distance_to_segments(uv[wrong], unit_edges_all(part)).max() <= 2 * part.tolerance
    # no two regions that touch share a pattern: regions of one pattern are apart
    first_piece = {r: np.flatnonzero(part.region == r)[0] for r in range(part.n_regions)}
    for r in range(part.n_regions):
        same = [q for q in range(r) if (part.pieces.bits[first_piece[q]] == part.pieces.bits[first_piece[r]]).all()]
        for q in same:
            assert region_gap(part, r, q) > part.tolerance
    # every polyline vertex is within tol of a sign change of its unit
    check_vertices_at_sign_changes(part, model, sl)


def pattern_of(model, sl, uv) -> np.ndarray:
    """(N, units) the signs of every ReLU input, from the torch model itself."""
    return np.concatenate([z > 0 for z in relu_inputs(model, sl, uv)], 1)


def relu_inputs(model, sl, uv) -> list[np.ndarray]:
    x, out = sl.to_input(uv), []
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.ReLU):
                out.append(x.numpy())
            x = m(x)
    return out


def unit_edges_all(part) -> np.ndarray:
    return np.concatenate([unit_edges(part, layer) for layer in range(len(part.layers) + 1)])


def region_gap(part, r, q) -> float:
    """The distance between the vertices of two regions (0 where they touch)."""
    a = np.concatenate([part.polygons[i] for i in np.flatnonzero(part.region == r)])
    b = np.concatenate([part.polygons[i] for i in np.flatnonzero(part.region == q)])
    return float(np.sqrt(((a[::7, None] - b[None, ::7]) ** 2).sum(-1)).min())


def check_vertices_at_sign_changes(part, model, sl) -> None:
    """Each vertex of a unit's polyline has a point of each sign of that unit within tol (on a
    circle of 32 points), unless it is within 4 min cells of an uncertified cell (a junction)."""
    a = part.arrays
    ring = np.stack([np.cos(np.linspace(0, 2 * np.pi, 32, endpoint=False)),
                     np.sin(np.linspace(0, 2 * np.pi, 32, endpoint=False))], 1) * part.tolerance
    for layer in range(len(part.layers)):
        on = a.edge_units[:, 0] == layer
        verts, units = a.vertices[on], a.edge_units[on, 1]
        near = np.zeros(len(verts), bool)
        for c in part.uncertified:
            near |= (verts >= c[:2] - 4 * (c[2:] - c[:2])).all(1) & (verts <= c[2:] + 4 * (c[2:] - c[:2])).all(1)
        verts, units = verts[~near], units[~near]
        z = relu_inputs(model, sl, (verts[:, None] + ring).reshape(-1, 2))[layer].reshape(len(verts), 32, -1)
        z = np.take_along_axis(z, units[:, None, None], 2)[..., 0]
        assert ((z.max(1) >= 0) & (z.min(1) <= 0)).all()


@pytest.mark.parametrize("seed, widths, act", [(5, [4, 3], "relu"), (2, [4, 3], "relu"), (6, [5, 3], "leaky"),
                                               pytest.param(9, [6, 4], "relu", marks=pytest.mark.slow)])
def test_junctions_are_certified_and_the_count_does_not_depend_on_the_subdivision(seed, widths, act):
    model = sine_mlp(widths, 1, seed, act=act)
    sl = sc.Slice.box((-1.0, -1.0), (1.0, 1.0))
    parts = [sc.partition(model, sl, progress=False, tol=tol) for tol in (1e-4, 1e-5)]
    assert all(len(part.uncertified) == 0 for part in parts)
    assert parts[0].n_regions == parts[1].n_regions > 3
    # the same regions: at grid points away from the curves, two points share a region in one
    # partition exactly when they do in the other
    n = 120
    u, v = np.meshgrid(np.linspace(-0.99, 0.99, n), np.linspace(-0.99, 0.99, n))
    uv = np.stack([u.ravel(), v.ravel()], 1)
    far = distance_to_segments(uv, unit_edges_all(parts[0])) > 1e-3
    labels = [part.region[part.locate(uv[far])] for part in parts]
    pairs = set(zip(*labels))
    assert len(pairs) == len(set(labels[0])) == len(set(labels[1]))


def test_evaluate_is_exact_and_the_decision_boundary_is_certified():
    model = sine_mlp([4], 1, 7)
    sl = sc.Slice.box((-1.2, -0.9), (1.1, 1.0))
    rng = np.random.default_rng(0)
    uv = rng.uniform((-1.2, -0.9), (1.1, 1.0), (300, 2))
    with torch.no_grad():  # the decision boundary through the middle of the slice
        model[-1].bias -= float(np.median(model_out(model, sl, uv)))
    part = sc.partition(model, sl, progress=False, tol=1e-5)
    want = model_out(model, sl, uv)
    assert np.abs(part.evaluate(uv) - want).max() <= 1e-12 * np.abs(want).max()
    db = part.decision_boundary()
    assert len(db) > 0
    p = db.segments.reshape(-1, 2)
    out = model_out(model, sl, (p[:, None] + 1.0001 * part.tolerance * np.array([[1, 0], [-1, 0], [0, 1], [0, -1],
                                                                        [.7, .7], [-.7, -.7], [.7, -.7], [-.7, .7]]))
                    .reshape(-1, 2)).reshape(len(p), 8)
    assert ((out.max(1) >= 0) & (out.min(1) <= 0)).all()
    assert (part.side == (model_out(model, sl, part.centroids)[:, 0] > 0)).mean() > 0.99


def test_pieces_are_convex_tiles_and_the_views_work(tmp_path):
    model = sine_mlp([3, 2], 2, 3)
    sl = sc.Slice.box((-1.0, -1.0), (1.0, 1.0))
    part = sc.partition(model, sl, progress=False, tol=1e-4)
    assert part.areas.min() > 0 and abs(part.areas.sum() - sl.area) <= 1e-9 * sl.area
    for poly in part.polygons[::50]:
        d = np.roll(poly, -1, 0) - poly
        assert (d[:, 0] * np.roll(d, -1, 0)[:, 1] - d[:, 1] * np.roll(d, -1, 0)[:, 0] >= -1e-12).all()
    labels = part.arrays.edge_units[:, 0]
    assert set(np.unique(labels)) <= {BORDER, INSIDE, DECISION, 0, 1}
    stats = part.stats()
    assert stats["n_regions"] == part.n_regions and stats["n_pieces"] == len(part) > part.n_regions
    assert stats["area_mean"] * part.n_regions == pytest.approx(sl.area)
    assert part.mesh().adjacency().shape == (len(part), len(part))
    import matplotlib
    matplotlib.use("Agg")
    part.plot()
    part.to_html(tmp_path / "curved.html")
    assert "curved" in repr(part).lower() or "CurvedPartition" in repr(part)


def test_limits_and_progress(capsys):
    model = sine_mlp([4, 3], 1, 1)
    sl = sc.Slice.box((-1.0, -1.0), (1.0, 1.0))
    with pytest.raises(RegionLimitError) as err:
        sc.partition(model, sl, progress=False, max_regions=50)
    partial = err.value.partial
    assert not partial.complete and 0 < len(partial) and len(partial.pieces.pending) > 0
    assert partial.areas.sum() < sl.area
    with pytest.raises(TimeLimitError) as err:
        sc.partition(sine_mlp([8, 8], 1, 1), sl, progress=False, timeout=0.05)
    assert not err.value.partial.complete
    sc.partition(sine_mlp([2], 1, 0), sl, progress=True, tol=1e-3)
    assert "splinecam" in capsys.readouterr().err


def test_ctrl_c_stops_a_curved_partition(ctrl_c):
    enc = sc.nn.PositionalEncoding(2, 4, kind="sin")
    torch.manual_seed(0)
    model = nn.Sequential(enc, nn.Linear(enc.out_features, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1))
    delay = seconds_to_stop(lambda: sc.partition(model, sc.Slice.box((-1, -1), (1, 1)), progress=False, timeout=120),
                            ctrl_c)
    assert delay < 2, f"stopped {delay:.1f} s after Ctrl-C"


def test_smooth_ops_elsewhere_get_the_clear_error():
    enc = SinEncoding(np.eye(2), np.zeros(2))
    with pytest.raises(UnsupportedModelError, match="sin"):
        sc.partition(nn.Sequential(nn.Linear(2, 2).double(), enc, nn.Linear(2, 1).double()),
                     sc.Slice.box((-1, -1), (1, 1)), progress=False)
    with pytest.raises(UnsupportedModelError, match="Tanh"):
        sc.partition(nn.Sequential(enc, nn.Linear(2, 2).double(), nn.Tanh(), nn.Linear(2, 1).double()),
                     sc.Slice.box((-1, -1), (1, 1)), progress=False)


def test_bad_encodings_and_slices_are_refused():
    class Wrong(SinEncoding):
        def forward(self, x):
            return torch.cos(x @ self.F.T + self.phi)

    model = nn.Sequential(Wrong(np.eye(2), np.zeros(2)), nn.Linear(2, 1).double())
    with pytest.raises(UnsupportedModelError, match="sin_phases"):
        sc.partition(model, sc.Slice.box((-1, -1), (1, 1)), progress=False)
    tilted = sc.Slice(np.zeros(2), np.eye(2), np.array([[0, -1], [1, 0], [0, 1], [-1, 0.0]]))
    with pytest.raises(ValueError, match="box"):
        sc.partition(sine_mlp([2], 1, 0), tilted, progress=False)
    with pytest.raises(ValueError, match="tol"):
        sc.partition(sine_mlp([2], 1, 0), sc.Slice.box((-1, -1), (1, 1)), tol=-1.0)


@pytest.mark.parametrize("make", [
    lambda: sc.nn.PositionalEncoding(2, 2, kind="sin"),  # with the raw input (the default)
    lambda: sc.nn.PositionalEncoding(2, 2, kind="sin", include_input=False),
    lambda: sc.nn.FourierFeatures(torch.randn(3, 2, generator=torch.Generator().manual_seed(4)) * 0.4, kind="sin"),
])
def test_the_shipped_sine_encodings_are_certified(make):
    enc = make()
    torch.manual_seed(0)
    model = nn.Sequential(enc, nn.Linear(enc.out_features, 3), nn.ReLU(), nn.Linear(3, 1))  # float32, as trained
    part = sc.partition(model, sc.Slice.box((-0.7, -0.6), (0.8, 0.5)), progress=False, tol=1e-4)
    assert part.curved and part.n_regions > 1 and len(unit_edges(part)) and part.verify(n_points=300).ok
