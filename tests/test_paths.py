"""Paths: the exact pieces of a network along a segment, a polyline or an ellipse.

Every partition is checked against a brute-force scan (codes on a dense grid of the path, each
change located by bisection to the exact switch): every change is a breakpoint (or a flip of
the model's argmax between candidates tied within the tolerance, as rounding makes them), every piece's
code and map hold at the grid points, neighbouring pieces differ, the lengths add up.  Random,
integer-weight and degenerate networks (a path on a unit's hyperplane, through a vertex of the
arrangement), a trained model, the engine and the fast path, limits, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import arrangement_model, check_same_pieces, examples, linear_layer, pooled_cnn, random_mlp
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from trained_models import multiclass_mlp, sdf_mlp

import splinecam as sc
from splinecam.analysis.sampling import ambiguous_bits, code_mismatches, network_outputs
from splinecam.geometry.compiled1d import point_sizes

GRID = 3000


def _model_at(part, t):
    """(outputs (m, K), codes (m, bits), scale, inputs) of the model at path parameters t (m,)."""
    x = part.to_input(t)
    outputs, codes, scale = network_outputs(part.model, part.graph, x)
    return outputs, codes, scale, x


def _switches(part, t, codes, atol: float, steps: int = 60) -> np.ndarray:
    """The exact parameters (n,) where the model's code changes between grid points t (m,) with
    codes (m, bits): bisection to the last float steps (all changes at once, each on the bits
    that differ at its grid points: a unit touching the path in between flips by rounding).  A
    change counts where a bit differs 1e-7 of the range either side of it, not within ``atol`` of
    a tie at either: not a unit flat at zero (integer weights) nor one touching the path."""
    lo, hi = part.path.t_range
    i = np.flatnonzero((codes[1:] != codes[:-1]).any(1))
    if not i.size:
        return np.zeros(0)
    bits = codes[i] != codes[i + 1]
    a, b, ca = t[i], t[i + 1], codes[i]  # (copies)
    for _ in range(steps):
        m = (a + b) / 2
        live = np.flatnonzero((m != a) & (m != b))
        if not live.size:
            break
        same = ((_model_at(part, m[live])[1] == ca[live]) | ~bits[live]).all(1)
        a[live[same]], b[live[~same]] = m[live[same]], m[live[~same]]
    s, step = (a + b) / 2, 1e-7 * (hi - lo)
    left, right = np.maximum(s - step, lo), np.minimum(s + step, hi)
    tied = ambiguous_bits(part.graph, part.to_input(left), atol) | ambiguous_bits(part.graph, part.to_input(right), atol)
    return s[((_model_at(part, left)[1] != _model_at(part, right)[1]) & bits & ~tied).any(1)]


def check_path_partition(part, n: int = GRID) -> None:
    """The brute-force checks of the module doc."""
    lo, hi = part.path.t_range
    assert part.complete
    assert part.lo[0] == lo and part.hi[-1] == hi and np.array_equal(part.lo[1:], part.hi[:-1])
    assert np.all(part.hi > part.lo)
    assert abs(part.lengths.sum() - (hi - lo)) <= 1e-12 * (hi - lo)
    t = np.linspace(lo, hi, n)
    outputs, codes, scale, x = _model_at(part, t)
    idx = part.locate(t)
    assert np.all(idx >= 0)
    near = np.min(np.abs(t[:, None] - part.t[None]), 1) <= 1e-9 * (hi - lo)
    keep = ~near
    assert np.max(np.abs(part.evaluate(t)[keep] - outputs[keep])) <= 1e-9 * scale
    assert code_mismatches(part, idx, codes, keep, part.graph, x, 1e-9 * scale) == 0
    switches = _switches(part, t, codes, 1e-9 * scale)  # every change of the model's code is a breakpoint
    off = np.min(np.abs(part.t[None] - switches[:, None]), 1, initial=np.inf) > 1e-9 * (hi - lo)
    assert not off.any(), switches[off]
    same_leg = part.leg[1:] == part.leg[:-1]  # within a leg, neighbouring pieces differ
    assert np.all((part.codes[1:] != part.codes[:-1]).any(1)[same_leg])
    inner = part.edge_units[1:-1]
    assert np.all((inner[:, 0] >= 0) == same_leg)  # a unit made every breakpoint inside a leg


def _path(kind: str, rng, d: int = 2, integer: bool = False):
    pts = rng.integers(-2, 3, (4, d)).astype(float) if integer else rng.normal(size=(4, d))
    while integer and (np.abs(np.diff(pts, axis=0)).max(1) == 0).any():
        pts = rng.integers(-2, 3, (4, d)).astype(float)
    if kind == "segment":
        return sc.Path.segment(pts[0], pts[1])
    if kind == "polyline":  # closed where the last point is not the first (the closing leg needs two points)
        return sc.Path.through(pts, closed=bool(rng.integers(2)) and not np.array_equal(pts[-1], pts[0]))
    if integer and abs(np.linalg.det(np.stack([pts[1] - pts[0], pts[2] - pts[0]]))) < 0.5:
        pts[2] = pts[0] + np.array([pts[1, 1] - pts[0, 1], pts[0, 0] - pts[1, 0]]) + [0.0, 0.5]
    return sc.Path.ellipse(pts[0], pts[1], pts[2])


@settings(max_examples=examples(25), deadline=None)
@given(seed=st.integers(0, 10**6), kind=st.sampled_from(["segment", "polyline", "ellipse"]),
       integer=st.booleans(), act=st.sampled_from(["relu", "leaky"]), extras=st.booleans())
def test_pieces_match_a_brute_force_scan(seed, kind, integer, act, extras):
    model = random_mlp([6, 5], 2, seed, act=act, integer=integer, extras=extras)
    path = _path(kind, np.random.default_rng(seed), integer=integer)
    check_path_partition(sc.partition(model, path, progress=False))


@pytest.mark.parametrize("kind", ["segment", "polyline", "ellipse"])
def test_wide_inputs_and_both_executors_agree(kind):
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(7, 24), nn.ReLU(), nn.Linear(24, 24), nn.LeakyReLU(0.2), nn.Linear(24, 3)).eval()
    path = _path(kind, np.random.default_rng(5), d=7)
    fast = sc.partition(model, path, progress=False)
    check_path_partition(fast)
    engine = sc.partition(nn.Sequential(nn.Identity(), model, nn.Flatten()), path, progress=False)  # traced
    check_same_pieces(fast, engine)


def test_a_path_on_a_units_hyperplane():
    """Unit 0 (u = 0) is zero all along the path: one flat unit, no breakpoint of its own; unit
    1 (v = 0) cuts at t = 1/2."""
    model = arrangement_model([(1, 0), (0, 1)], [0, 0])
    part = sc.partition(model, sc.Path.segment([0.0, -1.0], [0.0, 1.0]), progress=False)
    check_path_partition(part)
    assert np.array_equal(part.t, [0.0, 0.5, 1.0])
    assert part.codes[:, 0].tolist() == [False, False]
    assert part.edge_units[1].tolist() == [0, 1]


def test_a_path_through_a_vertex_of_the_arrangement():
    """Three concurrent lines through the origin, crossed at t = 1/2: one breakpoint, where all
    three units change."""
    model = arrangement_model([(1, 0), (0, 1), (1, 1), (2, 2)], [0, 0, 0, 0])
    part = sc.partition(model, sc.Path.segment([-1.0, -0.5], [1.0, 0.5]), progress=False)
    check_path_partition(part)
    assert np.array_equal(part.t, [0.0, 0.5, 1.0])
    assert (part.codes[0] != part.codes[1]).tolist() == [True, True, True, True]


def test_an_ellipse_tangent_to_a_line_and_through_points():
    """The ellipse through three points is the Steiner circumellipse: x(0) = x0, x(2pi/3) = x1,
    x(4pi/3) = x2; a unit whose line only touches it makes no breakpoint."""
    x0, x1, x2 = np.array([1.0, 0.0]), np.array([-0.5, np.sqrt(3) / 2]), np.array([-0.5, -np.sqrt(3) / 2])
    path = sc.Path.ellipse(x0, x1, x2)  # the unit circle
    x = path.to_input([0, 2 * np.pi / 3, 4 * np.pi / 3]).numpy()
    assert np.allclose(x, [x0, x1, x2], atol=1e-15)
    assert np.allclose(path.to_chart(x), [0, 2 * np.pi / 3, 4 * np.pi / 3], atol=1e-15)
    model = arrangement_model([(1, 0), (0, 1)], [-1, 0])  # u = 1 touches the circle at s = 0; v = 0 cuts it twice
    part = sc.partition(model, path, progress=False)
    check_path_partition(part)
    assert np.allclose(part.t, [0, np.pi, 2 * np.pi], atol=1e-15)


def test_on_a_trained_model_crossings_tie_and_transitions_count_the_changes():
    model, X, y = multiclass_mlp()
    path = sc.Path.through([X[y == c][0] for c in range(4)], closed=True)
    part = sc.partition(model, path, progress=False)
    check_path_partition(part)
    assert part.verify().ok
    cross = part.decision_boundary()
    assert len(cross) >= 3
    out = part.model(cross.x).detach().numpy()
    top = np.sort(out, 1)
    scale = np.abs(out).max()
    assert np.all(top[:, -1] - top[:, -2] <= 1e-9 * scale)  # the two best tie
    assert np.array_equal(np.sort(out.argsort(1)[:, -2:], 1), np.sort(cross.classes, 1))
    counts = part.transitions()
    codes, start = part.codes, 0
    for layer in part.layers:  # brute force: changes of the layer's bits between neighbours
        bits = codes[:, start : start + layer.bits]
        assert counts[layer.name] == int((bits[1:] != bits[:-1]).any(1).sum())
        start += layer.bits
    assert sum(counts.values()) >= len(part) - 1 - (len(path.points) - 2)  # every inner breakpoint changes a layer


def test_level_set_crossings_of_a_trained_sdf_are_zeros():
    model, X, _ = sdf_mlp()
    part = sc.partition(model, sc.Path.segment([-2.0, -1.5], [2.0, 1.7]), progress=False)
    check_path_partition(part)
    cross = part.decision_boundary()
    assert len(cross) == 2  # in and out of the circle
    assert np.all(np.abs(part.model(cross.x).detach().numpy()) <= 1e-9 * np.abs(part.centroid_outputs).max())
    half = part.level_set(0.5)
    assert np.all(np.abs(part.model(half.x).detach().numpy() - 0.5) <= 1e-9 * 4)


def test_image_inputs():
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 2)).eval()
    a, b = torch.randn(1, 6, 6), torch.randn(1, 6, 6)
    part = sc.partition(conv, sc.Path.segment(a, b), progress=False)
    check_path_partition(part)


def _image_path(kind: str, seed: int) -> sc.Path:
    """A segment or a polyline through random (1, 6, 6) images."""
    pts = np.random.default_rng(seed).normal(size=(3, 1, 6, 6))
    return sc.Path.segment(pts[0], pts[1]) if kind == "segment" else sc.Path.through(pts)


@settings(max_examples=examples(8), deadline=None)
@given(seed=st.integers(0, 10**6), kind=st.sampled_from(["segment", "polyline"]), integer=st.booleans(),
       duplicate=st.booleans())
def test_max_type_ops_match_a_brute_force_scan(seed, kind, integer, duplicate):
    """Max-pooling and a max over channels on image paths (random or integer weights): the winner
    of each window changes exactly at the breakpoints; duplicate channels tie everywhere (the
    lowest one wins).  (Real pixels: integer images make conv units identically zero along the
    path, whose sign the model's rounding flips back and forth, hundreds of times a path.)"""
    part = sc.partition(pooled_cnn(seed, integer, duplicate), _image_path(kind, seed), progress=False)
    check_path_partition(part)
    assert part.verify().ok


def test_max_type_ops_on_an_ellipse_say_what_to_do():
    pts = np.random.default_rng(0).normal(size=(3, 1, 6, 6))
    with pytest.raises(sc.UnsupportedModelError, match="on an ellipse.*MaxPool2d|on an ellipse.*2.*straight legs"):
        sc.partition(pooled_cnn(0), sc.Path.ellipse(*pts), progress=False)


def test_a_max_of_affine_candidates_is_their_upper_envelope():
    """maxout of 1-D candidates on a segment: the breakpoints are the upper envelope's corners,
    exactly (t = 1/4 and 3/4: f = max(-4t + 1, 0 t, 4t - 3); a fourth candidate, 2t - 2, never
    wins, and a copy of the first ties it everywhere)."""
    model = nn.Sequential(linear_layer([[-4.0], [0.0], [4.0], [2.0], [-4.0]], [1.0, 0.0, -3.0, -2.0, 1.0]), ChannelMax1d())
    part = sc.partition(model, sc.Path.segment([0.0], [1.0]), progress=False)
    check_path_partition(part)
    assert part.t.tolist() == [0.0, 0.25, 0.75, 1.0]
    assert part.edge_units[1:-1].tolist() == [[0, 0], [0, 0]]


class ChannelMax1d(nn.Module):
    """The max over the units of flat activations (maxout of one group)."""

    def forward(self, x):
        return torch.amax(x, dim=1, keepdim=True)


def test_limits_hand_back_exact_pieces():
    model = random_mlp([40, 40], 2, 4)
    path = sc.Path.through(np.random.default_rng(0).normal(size=(6, 2)) * 3)
    full = sc.partition(model, path, progress=False)
    with pytest.raises(sc.RegionLimitError) as err:
        sc.partition(model, path, progress=False, max_regions=len(full) // 2, chunk_size=8)
    part = err.value.partial
    assert isinstance(part, sc.PathPartition) and not part.complete and 0 < len(part) < len(full)
    assert part.verify().ok
    keys = {(round(lo, 12), round(hi, 12)) for lo, hi in zip(full.lo, full.hi)}
    assert all((round(lo, 12), round(hi, 12)) in keys for lo, hi in zip(part.lo, part.hi))
    with pytest.raises(sc.TimeLimitError) as err:
        sc.partition(model, path, progress=False, timeout=1e-9)
    assert isinstance(err.value.partial, sc.PathPartition)


def test_bad_paths_and_options_say_what_to_do():
    with pytest.raises(ValueError, match="coincide"):
        sc.Path.segment([0.0, 1.0], [0.0, 1.0])
    near = np.float32([1.0, 1.0]), np.nextafter(np.float32([1.0, 1.0]), np.float32(2))  # a float32 rounding apart
    for make in (lambda a, b: sc.Path.segment(a, b), lambda a, b: sc.Path.through(np.stack([a, b]))):
        with pytest.raises(ValueError, match="coincide"):  # noise in the inputs' own dtype
            make(*near)
        make(*(x.astype(np.float64) for x in near))  # in float64: two points
    with pytest.raises(ValueError, match="one line"):
        sc.Path.ellipse([0.0, 0.0], [1.0, 1.0], [2.0, 2.0])
    with pytest.raises(ValueError, match="x0 contains NaN"):
        sc.Path.segment([0.0, np.nan], [0.0, 1.0])
    with pytest.raises(ValueError, match="x1 contains NaN"):
        sc.Path.segment([0.0, 1.0], [np.inf, 1.0])
    with pytest.raises(ValueError, match="one shape"):
        sc.Path.segment([0.0, 1.0], [0.0, 1.0, 2.0])
    big = sc.Path.segment([1e308, 1e308], [1e308, 0.0])  # finite, with a sum that overflows
    assert np.isfinite(big.points).all()
    with pytest.raises(ValueError, match="tiles"):
        sc.partition(random_mlp([3], 1, 0), sc.Path.segment([0.0, 0.0], [1.0, 1.0]), tiles=2)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 6), st.integers(1, 40), st.integers(0, 2**32 - 1), st.sampled_from(["plain", "repeat", "nan", "inf"]))
def test_the_compiled_sizes_of_points_are_numpys(n, d, seed, kind):
    """``point_sizes`` (the check of every path's points): the largest absolute value (NaN where
    one is NaN) and the shortest leg (its size and number, the first of ties), as NumPy has them."""
    rng = np.random.default_rng(seed)
    flat = rng.normal(size=(n, d)) * 10.0 ** rng.integers(-8, 8)
    if kind == "repeat":
        flat[rng.integers(1, n)] = flat[0]  # a leg of size 0, or two equal legs
    elif kind in ("nan", "inf"):
        flat[rng.integers(n), rng.integers(d)] = np.nan if kind == "nan" else -np.inf
    scale, shortest, leg = point_sizes(np.ascontiguousarray(flat))
    steps = np.abs(np.diff(flat, axis=0)).max(1)
    if kind == "nan":
        assert np.isnan(scale)
        return
    assert scale == np.abs(flat).max()
    if kind != "inf":
        assert shortest == steps.min() and leg == int(np.argmin(steps))


def test_points_in_any_memory_order_make_the_same_path():
    points = np.asfortranarray(np.array([[0.0, 1.0], [2.0, 0.5], [1.0, -1.0]]))
    strided = np.array([[0.0, 9.0, 1.0], [2.0, 9.0, 0.5], [1.0, 9.0, -1.0]])[:, ::2]
    for pts in (points, strided, torch.tensor(points.T).T):
        path = sc.Path.through(pts)
        assert path.points.flags.c_contiguous and np.array_equal(path.points, np.ascontiguousarray(points))


def test_save_and_load(tmp_path):
    model = random_mlp([8, 8], 3, 2)
    for path in (sc.Path.through(np.eye(2) * 2, closed=True), sc.Path.ellipse([1.0, 0.0], [0.0, 1.0], [-1.0, 0.3])):
        part = sc.partition(model, path, progress=False)
        part.save(tmp_path / "p.npz")
        back = sc.PathPartition.load(tmp_path / "p.npz")
        for name in ("lo", "hi", "affine", "centroid_outputs", "packed_codes", "ends", "leg"):
            assert np.array_equal(getattr(back, name), getattr(part, name))
        assert back.path.kind == path.kind and back.verify(model=model).ok
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(sc.InvalidPartitionFile):
        sc.PathPartition.load(tmp_path / "bad.npz")
    sc.partition(model, sc.Slice.box((-1, -1), (1, 1)), progress=False).save(tmp_path / "slice.npz")
    with pytest.raises(sc.InvalidPartitionFile, match="format"):
        sc.PathPartition.load(tmp_path / "slice.npz")


def test_plot_marks_breakpoints_and_crossings():
    import matplotlib

    matplotlib.use("Agg")
    part = sc.partition(random_mlp([6], 2, 1), sc.Path.segment([-1.0, -1.0], [1.0, 1.0]), progress=False)
    out = part.plot()
    assert len(out["lines"]) == 2 and len(out["crossings"]) == len(part.decision_boundary())
    assert len(out["breakpoints"].get_offsets()) == len(part) + 1


@settings(max_examples=examples(20), deadline=None)
@given(seed=st.integers(0, 10**6), integer=st.booleans(), act=st.sampled_from(["relu", "leaky"]))
def test_the_compiled_split_makes_the_same_pieces_as_the_torch_rule(seed, integer, act):
    from splinecam.geometry import compiled1d
    from splinecam.run import chain1d

    model = random_mlp([7, 7], 2, seed, act=act, integer=integer)
    path = _path("polyline", np.random.default_rng(seed), integer=integer)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(chain1d, "ENABLED", False)  # the executor of slices, its split compiled or not
        fast = sc.partition(model, path, progress=False)
        patch.setattr(compiled1d, "AVAILABLE", False)
        slow = sc.partition(model, path, progress=False)
    assert np.array_equal(fast.lo, slow.lo) and np.array_equal(fast.hi, slow.hi)
    assert np.array_equal(fast.packed_codes, slow.packed_codes) and np.array_equal(fast.ends, slow.ends)
    assert np.array_equal(fast.affine, slow.affine)
