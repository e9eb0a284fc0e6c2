"""Characterisation: extended statistics, local complexity, density, boundary samples,
per-layer partitions, comparisons, slices from data."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn

import splinecam as sc
from splinecam.analysis.sampling import sample_polygon
from splinecam.analysis.stats import edges_by_layer, eccentricities, point_ids, slope_norms, turning_angles

BOX = sc.Slice.box((-1, -1), (1, 1))


def one_layer(weights, biases, out_weights, out_bias=0.0) -> nn.Sequential:
    """Linear(2, H) - ReLU - Linear(H, K) in float64 with the given parameters."""
    w = torch.as_tensor(weights, dtype=torch.float64)
    out = torch.as_tensor(out_weights, dtype=torch.float64).reshape(-1, w.shape[0])
    model = nn.Sequential(nn.Linear(2, w.shape[0]), nn.ReLU(), nn.Linear(w.shape[0], out.shape[0])).double()
    with torch.no_grad():
        model[0].weight.copy_(w)
        model[0].bias.copy_(torch.as_tensor(biases, dtype=torch.float64))
        model[2].weight.copy_(out)
        model[2].bias.fill_(out_bias)
    return model


def random_mlp(seed: int, width: int = 8, depth: int = 2, outputs: int = 3, std: float = 0.8) -> nn.Sequential:
    gen = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    for k in range(depth):
        layers += [nn.Linear(2 if k == 0 else width, width), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(width, outputs)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * std)
    return model


def grid_model(xs, ys) -> nn.Sequential:
    """Regions: the rectangles of the grid of vertical lines u = xs and horizontal lines v = ys."""
    w = [[1.0, 0.0]] * len(xs) + [[0.0, 1.0]] * len(ys)
    b = [-x for x in xs] + [-y for y in ys]
    return one_layer(w, b, np.ones(len(w)))


def synthetic(polygons, labels, n_layers, sl) -> sc.Partition:
    """A partition assembled by hand (polygons CCW, labels = layer of the edge from vertex i to i + 1)."""
    verts = np.concatenate([np.asarray(p, dtype=np.float64) for p in polygons])
    lab = np.concatenate([np.stack([np.asarray(l), np.zeros(len(l), int)], 1) for l in labels]).astype(np.int64)
    offsets = np.r_[0, np.cumsum([len(p) for p in polygons])]
    affine = np.zeros((len(polygons), 1, 3))
    arrays = sc.RegionArrays(verts, offsets, lab, affine, np.zeros((len(polygons), 0), np.uint8),
                             np.zeros((len(polygons), 1)))
    return sc.Partition(arrays, sl, [sc.LayerInfo(f"l{k}", 1, 1) for k in range(n_layers)])


# -- statistics -------------------------------------------------------------------------


def test_stats_keeps_the_core_keys_and_adds_the_new_ones():
    s = sc.partition(random_mlp(0), BOX, progress=False).stats()
    core = ["n_regions", "area_mean", "area_std", "area_min", "area_max", "vertices_mean", "vertices_std",
            "vertices_min", "vertices_max", "boundary_length", "boundary_segments", "boundary_pieces", "seconds"]
    new = ["eccentricity_mean", "slope_median", "boundary_turning_mean", "edges", "edges_per_layer",
           "edge_length_per_layer"]
    assert all(k in s for k in core + new)
    assert len(s["edges_per_layer"]) == 2 and s["edges"] == sum(s["edges_per_layer"])


@pytest.mark.parametrize("polygon, expected", [
    ([[0, 0], [2, 0], [2, 1], [0, 1]], np.sqrt(3) / 2),  # 2:1 rectangle: variances 4/12 and 1/12
    ([[0, 0], [1, 0], [1, 1], [0, 1]], 0.0),
    ([[0, 0], [1, 0], [0.5, np.sqrt(3) / 2]], 0.0),  # equilateral triangle
    ([[0, 0], [10, 0], [10, 1], [0, 1]], np.sqrt(1 - 1 / 100)),
])
def test_eccentricity_hand_cases(polygon, expected):
    sl = sc.Slice(np.zeros(2), np.eye(2), polygon)
    part = sc.partition(nn.Sequential(nn.Linear(2, 1)), sl, progress=False)
    assert len(part) == 1
    assert eccentricities(part)[0] == pytest.approx(expected, abs=1e-7)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.1, 3.0), st.floats(0, np.pi))
def test_eccentricity_matches_monte_carlo_covariance(seed, stretch, angle):
    rng = np.random.default_rng(seed)
    pts = rng.standard_normal((12, 2)) * [stretch, 1.0]
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    pts = pts @ rot.T
    hull = pts[np.argsort(np.arctan2(*(pts - pts.mean(0)).T[::-1]))]
    e_in, e_out = hull - np.roll(hull, 1, 0), np.roll(hull, -1, 0) - hull
    keep = hull[e_in[:, 0] * e_out[:, 1] - e_in[:, 1] * e_out[:, 0] > 1e-3]
    if len(keep) < 3:
        return
    try:
        sl = sc.Slice(np.zeros(2), np.eye(2), np.array(keep))
    except ValueError:  # not convex after the crude filter
        return
    part = sc.partition(nn.Sequential(nn.Linear(2, 1)), sl, progress=False)
    sample = sample_polygon(sl.polygon, 200_000, np.random.default_rng(seed + 1))
    lam = np.linalg.eigvalsh(np.cov(sample.T))
    assert eccentricities(part)[0] == pytest.approx(np.sqrt(1 - lam[0] / lam[1]), abs=0.02)


def test_slope_norms():
    model = one_layer([[1.0, 0.0]], [0.0], [[3.0], [4.0]])  # x > 0: f = (3x, 4x)
    part = sc.partition(model, BOX, progress=False)
    norms = slope_norms(part)
    at = part.locate([[0.5, 0.0], [-0.5, 0.0]])
    assert norms[at] == pytest.approx([5.0, 0.0])


@pytest.mark.parametrize("xs, ys, n_edges, length", [
    ([0.0], [0.0], 4, 4.0),  # a cross: two lines, each cut in two at the centre
    ([-0.5, 0.0, 0.5], [], 3, 6.0),  # three parallel lines
    ([-0.5, 0.5], [0.25], 7, 6.0),  # 2 vertical lines in 2 pieces, a horizontal one in 3
])
def test_edges_per_layer_one_hidden_layer(xs, ys, n_edges, length):
    part = sc.partition(grid_model(xs, ys), BOX, progress=False)
    counts, lengths = edges_by_layer(part)
    assert counts.tolist() == [n_edges]
    assert lengths[0] == pytest.approx(length)


def test_edges_per_layer_counts_a_t_junction_once_per_piece():
    # left half A; right half split into C (bottom) and B (top) by a layer-2 edge ending on A's side
    sl = sc.Slice.box((0, 0), (2, 2))
    a = [[0, 0], [1, 0], [1, 2], [0, 2]]
    c = [[1, 0], [2, 0], [2, 1], [1, 1]]
    b = [[1, 1], [2, 1], [2, 2], [1, 2]]
    part = synthetic([a, c, b], [[-1, 0, -1, -1], [-1, -1, 1, 0], [1, -1, -1, 0]], 2, sl)
    counts, lengths = edges_by_layer(part)
    assert counts.tolist() == [2, 1]  # the layer-1 line x = 1 is two edges, split at (1, 1)
    assert lengths.tolist() == pytest.approx([2.0, 1.0])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.integers(1, 3))
def test_edges_satisfy_euler_and_lengths_add_up(seed, depth):
    part = sc.partition(random_mlp(seed, width=6, depth=depth), BOX, progress=False)
    counts, lengths = edges_by_layer(part)
    verts = part.arrays.vertices
    ids = point_ids(verts, float(np.abs(verts).max()))
    n_vertices = ids.max() + 1
    on_border = np.zeros(n_vertices, bool)
    on_border[ids[part.arrays.edge_units[:, 0] < 0]] = True
    # Euler for a subdivided disk: V - E + (R + 1) = 2; the border cycle has as many edges as vertices
    assert counts.sum() == n_vertices + len(part) - 1 - on_border.sum()
    perimeter = sum(np.linalg.norm(np.roll(p, -1, 0) - p, axis=1).sum() for p in part.polygons)
    assert lengths.sum() == pytest.approx((perimeter - 8.0) / 2, rel=1e-9)


def v_boundary_model(extra=True):
    """K = 1, f = relu(u) + 0.25 relu(-u) - v - 0.5: boundary v = u - 0.5 (u > 0),
    v = -0.25 u - 0.5 (u < 0).  ``extra`` units (output weight 0) cut it into more segments."""
    w = [[1.0, 0.0], [-1.0, 0.0]]
    b = [0.0, 0.0]
    out = [1.0, 0.25]
    if extra:
        w += [[1.0, 0.0], [0.3, 1.0], [1.0, -0.2], [-1.0, 0.1]]
        b += [-0.3, 0.1, 0.55, -0.7]
        out += [0.0, 0.0, 0.0, 0.0]
    model = one_layer(w + [[0.0, 1.0]], b + [5.0], out + [-1.0], out_bias=-0.5 + 5.0)  # relu(v + 5) = v + 5
    return model


def test_turning_angle_of_a_known_boundary():
    part = sc.partition(v_boundary_model(), BOX, progress=False)
    db = part.decision_boundary()
    turns = turning_angles(db)
    assert db.pieces() == 1 and len(turns) == len(db) - 1  # one open polyline
    kink = np.pi - np.arccos(np.dot([1, 1], [-1, 0.25]) / np.hypot(1, 1) / np.hypot(1, 0.25))
    assert np.sort(turns)[-1] == pytest.approx(kink)
    assert np.sort(turns)[:-1] == pytest.approx(0.0, abs=1e-7)
    assert part.stats()["boundary_turning_mean"] == pytest.approx(kink / len(turns))


# -- local complexity and density ---------------------------------------------------------


def rect_distance(pts, lo, hi):
    gap = np.maximum(np.maximum(lo - pts, pts - hi), 0)
    return np.hypot(gap[:, 0], gap[:, 1])


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(-0.9, 0.9), min_size=1, max_size=4, unique=True),
       st.lists(st.floats(-0.9, 0.9), max_size=3, unique=True),
       st.floats(0.0, 1.5), st.integers(0, 1000))
def test_local_complexity_equals_brute_force_on_a_grid(xs, ys, radius, seed):
    for lines in (xs, ys):
        assume(all(abs(a - b) > 1e-3 for a in lines for b in lines if a != b))
    xs, ys = sorted(xs), sorted(ys)
    part = sc.partition(grid_model(xs, ys), BOX, progress=False)
    ux, vy = np.r_[-1, xs, 1], np.r_[-1, ys, 1]
    pts = np.random.default_rng(seed).uniform(-1.4, 1.4, (50, 2))
    expected = np.zeros(len(pts), int)
    for i in range(len(ux) - 1):
        for j in range(len(vy) - 1):
            d = rect_distance(pts, np.array([ux[i], vy[j]]), np.array([ux[i + 1], vy[j + 1]]))
            expected += d <= radius
    got = sc.local_complexity(part, pts, radius)
    near_tie = np.zeros(len(pts), bool)  # skip points whose disk is within rounding of touching a cell
    for i in range(len(ux) - 1):
        for j in range(len(vy) - 1):
            d = rect_distance(pts, np.array([ux[i], vy[j]]), np.array([ux[i + 1], vy[j + 1]]))
            near_tie |= np.abs(d - radius) < 1e-9
    assert np.array_equal(got[~near_tie], expected[~near_tie])


def test_local_complexity_hand_values_and_per_point_radius():
    part = sc.partition(grid_model([0.0], [0.0]), BOX, progress=False)  # four quadrants
    pts = [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5], [0.1, 0.5], [0.0, 0.0], [3.0, 3.0]]
    radius = [0.4, 0.5, 0.71, 0.2, 0.0, 1.0]
    # inside one quadrant; touching two axes at distance 0.5 (closed disk); reaching the corner
    # at distance 0.7071; crossing one axis; at the common corner; far outside the slice
    assert sc.local_complexity(part, pts, radius).tolist() == [1, 3, 4, 2, 4, 0]
    assert sc.local_complexity(part, [0.5, 0.5], 0.1).tolist() == [1]
    assert sc.local_complexity(part, np.zeros((0, 2)), 0.1).shape == (0,)
    with pytest.raises(ValueError):
        sc.local_complexity(part, [[0.0, 0.0]], -1.0)
    with pytest.raises(ValueError):
        sc.local_complexity(part, [[0.0, 0.0, 0.0]], 1.0)


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.05, 0.5))
def test_local_complexity_bounds_by_sampling(seed, radius):
    part = sc.partition(random_mlp(seed, width=6, depth=2), BOX, progress=False)
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-0.8, 0.8, (5, 2))
    got = sc.local_complexity(part, centres, radius)
    for c, n in zip(centres, got):
        r = radius * np.sqrt(rng.random(5000))
        t = rng.uniform(0, 2 * np.pi, 5000)
        seen = np.unique(part.locate(c + np.stack([r * np.cos(t), r * np.sin(t)], 1)))
        assert len(seen[seen >= 0]) <= n  # every region hit by a sample meets the disk
        dist = np.array([np.min(np.linalg.norm(p - c, axis=1)) for p in part.polygons])
        assert n >= (dist <= radius).sum()  # a region with a vertex in the disk meets it


def test_density_map_integrates_to_region_count():
    sl = sc.Slice.box((0, 0), (1, 1))
    part = sc.partition(grid_model([0.5], [0.25]), sl, progress=False)  # 4 rectangles, pixel aligned
    dm = sc.density_map(part, resolution=8)
    assert dm.values.shape == (8, 8)
    assert dm.values.sum() / 64 == pytest.approx(4.0)
    assert dm.values[0, 0] == pytest.approx(1 / (0.5 * 0.25))  # bottom-left pixel, bottom-left region
    tri = sc.Slice(np.zeros(2), np.eye(2), [[0, 0], [1, 0], [0, 1]])
    dm = sc.density_map(sc.partition(nn.Sequential(nn.Linear(2, 1)), tri, progress=False), resolution=10)
    assert np.isnan(dm.values[-1, -1]) and dm.values[0, 0] == pytest.approx(2.0)
    with pytest.raises(ValueError):
        sc.density_map(part, resolution=0)


# -- boundary samples ---------------------------------------------------------------------


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.sampled_from([1, 2, 4]))
def test_boundary_samples_tie_in_the_model(seed, outputs):
    model = random_mlp(seed, width=8, depth=2, outputs=outputs)
    part = sc.partition(model, BOX, progress=False)
    if part.decision_boundary().length == 0:
        return
    samples = part.sample_boundary(500, seed=seed)
    assert samples.uv.shape == (500, 2) and samples.x.shape == (500, 2) and samples.classes.shape == (500, 2)
    with torch.no_grad():
        out = model(samples.x).numpy()
        scale = np.abs(model(BOX.to_input(part.arrays.vertices)).numpy()).max()
    if outputs == 1:
        assert np.all(np.abs(out[:, 0]) <= 1e-9 * scale)
        return
    pair = np.take_along_axis(out, samples.classes, 1)
    assert np.all(np.abs(pair[:, 0] - pair[:, 1]) <= 1e-9 * scale)
    assert np.all(pair.max(1) >= out.max(1) - 1e-9 * scale)  # the tied pair is the top pair


def test_boundary_samples_are_uniform_by_length():
    part = sc.partition(v_boundary_model(), BOX, progress=False)
    assert len(part.decision_boundary()) >= 5  # the extra units cut the boundary into pieces
    n = 8000
    s = part.sample_boundary(n, seed=3)
    u, v = s.uv.T
    assert np.all(np.abs(v - np.where(u > 0, u - 0.5, -0.25 * u - 0.5)) < 1e-12)
    left, right = np.hypot(1, 0.25), np.hypot(1, 1)
    arc = np.where(u < 0, np.hypot(u + 1, v + 0.25), left + np.hypot(u, v + 0.5)) / (left + right)
    ks = np.max(np.abs(np.sort(arc) - np.arange(1, n + 1) / n))
    assert ks < 1.95 / np.sqrt(n)  # Kolmogorov-Smirnov at the 0.1 % level
    share = np.mean(u < 0)  # per-segment (not per-length) sampling would be far from this
    assert abs(share - left / (left + right)) < 3.3 * np.sqrt(0.25 / n)


def test_sample_boundary_errors_without_boundary():
    part = sc.partition(one_layer([[1.0, 0.0]], [0.0], [[1.0]], out_bias=5.0), BOX, progress=False)
    with pytest.raises(ValueError, match="nothing to sample"):
        part.sample_boundary(10)


# -- per-layer partitions -----------------------------------------------------------------


@pytest.mark.parametrize("act", [nn.ReLU, lambda: nn.LeakyReLU(0.1)])
def test_partition_by_layer_refines_and_ends_at_the_full_partition(act):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(2, 7), act(), nn.Linear(7, 7), nn.Identity(), act(), nn.Linear(7, 6), act(),
                          nn.Linear(6, 3)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2.0)
    before = [p.clone() for p in model.parameters()]
    parts = sc.partition_by_layer(model, BOX)
    full = sc.partition(model, BOX, progress=False)
    assert [p.n_outputs for p in parts] == [7, 7, 6]
    assert all(p.verify().ok for p in parts)
    assert len(parts[-1]) == len(full)
    assert np.sort(parts[-1].areas) == pytest.approx(np.sort(full.areas))
    for coarse, fine in zip(parts, parts[1:]):
        assert len(fine) >= len(coarse)
        where = coarse.locate(fine.centroids)
        bits = coarse.codes.shape[1]
        assert np.array_equal(fine.codes[:, :bits], coarse.codes[where])  # fine regions nest in coarse ones
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_partition_by_layer_options_and_errors():
    model = random_mlp(0)
    with pytest.raises(TypeError, match="unknown option"):
        sc.partition_by_layer(model, BOX, max_region=3)
    with pytest.raises(sc.RegionLimitError):
        sc.partition_by_layer(model, BOX, max_regions=3)
    assert sc.partition_by_layer(nn.Sequential(nn.Linear(2, 2)), BOX) == []


def test_plot_layers_uses_one_colour_scale(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model = random_mlp(2, width=6, depth=3)
    parts = sc.partition_by_layer(model, BOX)
    fig, axes = sc.plot_layers(parts, boundary=sc.partition(model, BOX, progress=False).decision_boundary())
    assert len(axes) == 3
    first = [ax.collections[1].get_colors() for ax in axes]  # the layer-coloured edges
    layer1 = [c[parts[k].arrays.edge_units[parts[k].arrays.edge_units[:, 0] >= 0, 0] == 0] for k, c in enumerate(first)]
    assert all(np.allclose(layer1[0][0][:3], c[0][:3]) for c in layer1)  # alpha follows the region size
    fig.savefig(tmp_path / "layers.png")
    plt.close(fig)


# -- studies ------------------------------------------------------------------------------


def test_slice_from_data_uses_three_nearby_inputs():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 10))
    y = np.arange(60) % 3
    sl = sc.Slice.from_data(X, y, classes=(2, 0), seed=4)
    anchors = sl.to_input(sl.anchors_uv).numpy()
    idx = [int(np.argmin(np.linalg.norm(X - a, axis=1))) for a in anchors]
    assert np.allclose(X[idx], anchors)
    i1, i2, i3 = idx
    assert y[i1] == 2 and y[i2] == 0 and y[i3] in (0, 2)
    d = np.linalg.norm(X - X[i1], axis=1)
    assert d[i2] == d[y == 0].min()
    others = np.isin(y, (0, 2)) & ~np.isin(np.arange(60), [i1, i2])
    assert d[i3] == d[others].min()
    with pytest.raises(ValueError, match="must both occur"):
        sc.Slice.from_data(X, y, classes=(0, 7))


def test_compare_prints_and_returns_a_frame(capsys, monkeypatch):
    models = {"narrow": random_mlp(0, width=4), "wide": random_mlp(1, width=12)}
    slices = [BOX, sc.Slice.box((-0.5, -0.5), (0.5, 0.5))]
    table = sc.compare(models, slices)
    out = capsys.readouterr().out
    assert "narrow" in out and "wide" in out and "n_regions" in out
    assert list(table.index) == list(table["model"]) == ["narrow", "wide"]
    for (_, row), model in zip(table.iterrows(), models.values()):
        counts = [len(sc.partition(model, s, progress=False)) for s in slices]
        assert row["n_regions"] == pytest.approx(np.mean(counts))
        assert [s["n_regions"] for s in row["per_slice"]] == counts
    first = [p[0]["n_regions"] for p in table["per_slice"]]
    monkeypatch.setitem(sys.modules, "pandas", None)  # without pandas: the list of row dicts
    rows = sc.compare(models, slices[:1], show=False)
    assert [r["model"] for r in rows] == ["narrow", "wide"]
    assert [r["n_regions"] for r in rows] == first


def test_boundary_samples_of_an_image_model_are_flat_points_and_model_inputs():
    """samples.x is (n, D) in input space; samples.inputs has the model's input shape, and the
    top two logits of a CNN tie there."""
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 3)).eval()
    sl = sc.Slice.from_points(*torch.randn(3, 1, 4, 4), margin=1.0)
    part = sc.partition(model, sl, progress=False)
    samples = part.sample_boundary(200, seed=1)
    assert samples.x.shape == (200, 16) and samples.inputs.shape == (200, 1, 4, 4)
    np.testing.assert_allclose(samples.x.numpy(), sl.to_input(samples.uv).reshape(200, -1).numpy())
    with torch.no_grad():
        out = part.model(samples.inputs).numpy()
    top2 = np.sort(out, axis=1)[:, -2:]
    assert np.all(top2[:, 1] - top2[:, 0] <= 1e-9 * np.abs(out).max())
