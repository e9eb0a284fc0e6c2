"""Boundary first: ``sc.decision_boundary`` / ``sc.level_set`` equal the boundary read off the
full partition (same segments, length and class pairs), while settling cells the bounds prove
free of it; the bounds themselves hold at sampled points."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import splinecam as sc
from helpers import examples, forced, linear_layer, model_out, random_mlp, via_quadrants
from hypothesis import given, settings
from hypothesis import strategies as st
from zoo_models import _setup

from splinecam.analysis.bounds import OutputBounds, corners, form_bounds
from splinecam.geometry import Polygons
from splinecam.analysis.sampling import sample_polygon
from splinecam.run.trace import prepare
from helpers import assert_same_boundary

BIG = sc.Slice.box((-3, -3), (3, 3))




def check(model, sl, value=None, output=0, settles=True, bounds="zonotope"):
    full = sc.partition(model, sl, progress=False)
    if value is None:
        fast, ref = sc.decision_boundary(model, sl, progress=False, bounds=bounds), full.decision_boundary()
    else:
        fast, ref = sc.level_set(model, sl, value, output, progress=False, bounds=bounds), full.level_set(value, output)
    assert_same_boundary(fast, ref)
    part = fast.partition
    assert abs(part.areas.sum() - sl.area) <= 1e-9 * sl.area
    assert part.exact.sum() <= len(full)
    if settles:
        assert not part.exact.all(), "no cell was settled: the test does not exercise the bounds"
    assert np.isnan(part.affine[~part.exact]).all()
    # exact regions are regions of the full partition: same map at their centroids
    cen = part.centroids[part.exact]
    assert np.allclose(part.evaluate(cen), full.evaluate(cen), rtol=1e-9, atol=1e-9 * np.abs(full.affine).max())
    return fast, full


@settings(max_examples=examples(8), deadline=None)
@given(widths=st.lists(st.integers(2, 9), min_size=1, max_size=3), k=st.sampled_from([1, 3]),
       seed=st.integers(0, 10**6), integer=st.booleans(), value=st.sampled_from([None, 0.25]))
def test_both_executors_prune_the_same_and_give_the_full_boundary(widths, k, seed, integer, value):
    """Boundary first runs on the MLP fast path and on the engine (each forced), with the same
    plan and the same pruning: the same exact regions and coarse cells, the full boundary."""
    model = random_mlp(widths, k, seed, integer=integer)
    parts = {}
    for executor in ("fast", "engine"):
        with forced(executor):
            parts[executor] = check(model, BIG, value, settles=False)[0].partition
    fast, engine = parts["fast"], parts["engine"]
    assert fast.exact.sum() == engine.exact.sum() and len(fast) == len(engine)

    def codes(part):
        return sorted(c.tobytes() for c in part.arrays.packed_codes[part.exact])

    assert codes(fast) == codes(engine)


@pytest.mark.parametrize("k", [1, 2, 4])
@pytest.mark.parametrize("seed", [0, 1])
def test_random_mlps(k, seed):
    check(random_mlp([8, 6, 6], k, seed), BIG)


def test_interval_bounds_settle_fewer_cells():
    model = random_mlp([8, 8], 1, 3)
    zonotope, _ = check(model, BIG)
    interval, _ = check(model, BIG, bounds="interval", settles=False)
    assert interval.partition.exact.sum() >= zonotope.partition.exact.sum()


@pytest.mark.parametrize("seed", [3])
def test_leaky_and_prelu(seed):
    check(random_mlp([8, 8], 2, seed, act="leaky"), BIG)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 8), nn.PReLU(8), nn.Linear(8, 8), nn.PReLU(), nn.Linear(8, 1)).eval()
    with torch.no_grad():
        model[1].weight.uniform_(-0.5, 0.5)
    check(model, BIG)


@pytest.mark.parametrize("name", ["resnet", "maxout", "mixed"])  # VGG-like: see the CNN test
def test_zoo(name):
    model, sl, _ = _setup(name)
    check(model, sl, settles=name != "resnet")


def cnn() -> nn.Module:
    torch.manual_seed(6)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3, 8), nn.ReLU(),
                         nn.Linear(8, 3)).eval()


CNN_SLICE = sc.Slice.from_points(*(2 * torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(6))))


def test_cnn_with_max_pooling_settles_cells():
    check(cnn(), CNN_SLICE)


class Branches(nn.Module):
    """Two parallel ReLU branches from one layer, joined: their noise symbols must not mix."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.a, self.b, self.c, self.out = nn.Linear(2, 8), nn.Linear(8, 6), nn.Linear(8, 6), nn.Linear(6, 2)

    def forward(self, x):
        h = torch.relu(self.a(x))
        return self.out(torch.relu(self.b(h)) - torch.relu(self.c(h)))


def test_parallel_branches():
    check(Branches().eval(), BIG)


def polygons_sdf(sides: int = 7) -> nn.Module:
    """The signed distance (inside) of the union of two regular polygons: ``min`` over the
    polygons of ``max_i n_i . x - r`` (maxout, then a max of two)."""
    angles = torch.arange(sides) * 2 * torch.pi / sides
    normals = torch.stack([angles.cos(), angles.sin()], 1)
    centres = torch.tensor([[-0.8, 0.0], [1.0, 0.5]])
    weight = torch.cat([normals, normals])
    bias = torch.cat([-1.0 - normals @ centres[0], -0.7 - normals @ centres[1]])
    lin = linear_layer(weight, bias)

    class SDF(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = lin

        def forward(self, x):
            h = self.lin(x).view(-1, 2, sides).amax(2)
            return -torch.amax(-h, 1, keepdim=True)

    return SDF().eval()


@pytest.mark.parametrize("value", [-0.5, 0.0, 0.7])
def test_level_sets_of_sdf(value):
    fast, _ = check(polygons_sdf(), BIG, value=value)
    assert fast.pieces() >= 1


def test_level_sets_of_relu_regressor():
    check(random_mlp([10, 10], 3, 7), BIG, value=-1.0, output=2)


@pytest.mark.parametrize("seed", range(5))
def test_integer_weights(seed):
    """Ties through vertices, along region borders and on plateaus."""
    model = random_mlp([6, 6, 5], 1 + seed % 3, seed, integer=True)
    check(model, BIG, settles=False)


def test_ties_along_region_borders():
    """Output exactly 0 along region borders and on plateaus (integer weights)."""
    check(via_quadrants([[1, -1, 0, 0], [-1, 1, 0, 0]], [0, 0]), BIG, settles=False)  # logits (u, -u)
    check(via_quadrants([[1, 0, 0, 0]], [0.0]), BIG, settles=False)  # f = relu(u) = 0 on a half plane
    # two layers: u+ = relu(u), u- = relu(-u), and relu(u -+ 1) cutting the plane at u = +-1;
    # logits (a - b + c, b - a + c) with a = relu(u+ - u-), b = relu(u- - u+), c = relu(v - 2)
    # tie on the border u = 0; the cells |u| > 1 are settled
    first = linear_layer([[1, 0], [-1, 0], [1, 0], [-1, 0], [0, 1]], [0, 0, -1, -1, -2])
    second = linear_layer([[1, -1, 0, 0, 0], [-1, 1, 0, 0, 0], [0, 0, 0, 0, 1]], [0, 0, 0])
    model = nn.Sequential(first, nn.ReLU(), second, nn.ReLU(), linear_layer([[1, -1, 1], [-1, 1, 1]], [0, 0])).eval()
    fast, _ = check(model, BIG)
    assert fast.length == pytest.approx(6.0, rel=1e-12) and np.abs(fast.segments[..., 0]).max() == 0
    dup = nn.Sequential(linear_layer([[1, 0], [1, 0], [0, 1], [2, 0]], [0, 0, 1, 0]), nn.ReLU(),
                        linear_layer([[1, -1, 1, 0.5], [0, 0, 1, 1]], [-2, 0]), nn.ReLU(),
                        linear_layer([[1, -1]], [0.25])).eval()  # duplicate units
    check(dup, BIG)


def test_no_boundary_settles_everything():
    model = via_quadrants([[1, 1, 1, 1]], [0.5])  # |u| + |v| + 1/2 > 0
    fast = sc.decision_boundary(model, BIG, progress=False)
    assert len(fast) == 0 and fast.length == 0
    assert not fast.partition.exact.any()


def test_bounds_hold_at_points():
    """Bounds of the output forms over the whole slice, from the input on, contain the outputs
    at sampled points, and are not vacuous."""
    for model, sl in [(random_mlp([8, 8], 3, 0), BIG), (cnn(), CNN_SLICE), (Branches().eval(), BIG)]:
        twin, graph = prepare(model, torch.float64, "cpu", sl.input_shape)
        x0 = torch.as_tensor(sl.origin)[None]
        shapes = [tuple(v.shape[1:]) for v in graph.forward(x0, values=True)]
        poly = torch.as_tensor(sl.polygon)
        centre = poly.mean(0)
        basis = torch.as_tensor(sl.basis)
        state = torch.stack([x0.reshape(-1) + basis @ centre, basis[:, 0], basis[:, 1]])
        cells = corners(Polygons.single(poly - centre))
        forms = OutputBounds(graph, shapes).output_forms(0, cells, {0: state.reshape(1, 3, *sl.input_shape)})
        lo, hi = (b.numpy()[0] for b in form_bounds(cells, forms))
        out = model_out(model, sl, sample_polygon(sl.polygon, 2000, np.random.default_rng(0)))
        assert (out >= lo).all() and (out <= hi).all()
        assert (hi - lo).max() < 100 * np.ptp(out, 0).max()


def test_analysis_of_a_boundary_first_partition(tmp_path):
    model = random_mlp([12, 12], 2, 0)
    fast = sc.decision_boundary(model, BIG, progress=False)
    part = fast.partition
    stats = part.stats()
    assert stats["n_regions"] == int(part.exact.sum()) and stats["n_coarse"] == int((~part.exact).sum())
    assert np.isfinite(stats["slope_mean"])
    assert part.verify(500).ok
    samples = part.sample_boundary(50)
    assert part.exact[samples.regions].all()
    out = model_out(model, BIG, samples.uv)
    top2 = np.sort(out, 1)[:, -2:]
    assert np.abs(top2[:, 1] - top2[:, 0]).max() <= 1e-9 * np.abs(out).max()
    path = part.to_html(tmp_path / "bf.html")
    assert "coarse" in path.read_text()
    import matplotlib

    matplotlib.use("Agg")
    artists = part.plot()
    assert "coarse" in artists
    part.save(tmp_path / "bf.npz")
    assert (sc.Partition.load(tmp_path / "bf.npz").exact == part.exact).all()
    full = sc.partition(model, BIG, progress=False)
    assert full.decision_boundary().partition is full and full.exact.all()


def test_bad_arguments():
    model = random_mlp([4], 2, 0)
    with pytest.raises(ValueError, match="output must be in"):
        sc.level_set(model, BIG, 0.0, output=2)
    with pytest.raises(TypeError, match="unknown option"):
        sc.decision_boundary(model, BIG, max_region=3)
    with pytest.raises(TypeError, match="Slice"):
        sc.decision_boundary(model, (0, 1))
    with pytest.raises(ValueError, match="bounds must be one of"):
        sc.decision_boundary(model, BIG, bounds="crown")


class _Opaque(sc.ops.SplitOp):
    """A user's piecewise-linear op of a kind the bounds know no relaxation for (a ReLU inside)."""

    def __init__(self):
        self.inner = sc.ops.relu_op()

    def layer_size(self, in_shape):
        return self.inner.layer_size(in_shape)

    def split(self, polys, z, ctx):
        return self.inner.split(polys, z, ctx)

    def forward(self, x):
        return self.inner.forward(x)

    def code(self, x):
        return self.inner.code(x)

    def ambiguous(self, x, atol):
        return self.inner.ambiguous(x, atol)


class _Act(nn.Module):
    def forward(self, x):
        return torch.relu(x)


def test_an_op_without_relaxation_is_refused_not_pruned():
    model = nn.Sequential(nn.Linear(2, 6), _Act(), nn.Linear(6, 1)).eval()
    sc.register_op(_Act, lambda m: _Opaque())
    try:
        assert sc.partition(model, BIG, progress=False).verify().ok  # the op itself works
        with pytest.raises(sc.UnsupportedModelError, match="no sound bound is known for .*_Opaque"):
            sc.decision_boundary(model, BIG, progress=False)
    finally:
        sc.unregister_op(_Act)


def test_batchnorm_shift_reaches_the_bounds():
    """BatchNorms with random shifts and running means (the issue's finding 1, on an MLP: on
    the code before the fix, boundary-first settled every cell and found no boundary)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 16), nn.BatchNorm1d(16),
                          nn.ReLU(), nn.Linear(16, 3))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for bn in (model[1], model[4]):
            bn.running_mean.copy_(torch.randn(16, generator=gen))
            bn.running_var.copy_(torch.rand(16, generator=gen) + 0.5)
            bn.weight.copy_(torch.randn(16, generator=gen))
            bn.bias.copy_(torch.randn(16, generator=gen))
    _, full = check(model.eval(), sc.Slice.box((-2, -2), (2, 2)), settles=False)
    assert len(full.decision_boundary()) > 0


@pytest.mark.parametrize("case", ["mlp", "cnn", "digits_cnn"])
def test_symbolic_intervals_only_add_settled_cells(case, monkeypatch):
    """The cheap symbolic intervals run before the forms, which then see only the cells they left:
    the same boundary, and at least the cells the forms alone settle are settled."""
    if case == "mlp":
        model, sl = random_mlp([16, 16], 1, 3), BIG
    elif case == "cnn":
        model, sl = cnn(), CNN_SLICE
    else:
        from trained_models import digits_cnn

        model, X, y = digits_cnn()
        sl = sc.Slice.from_data(X, y, classes=(3, 8))
    on = sc.decision_boundary(model, sl, progress=False)
    monkeypatch.setattr(OutputBounds, "output_boxes", lambda self, *args: None)
    off = sc.decision_boundary(model, sl, progress=False)
    assert_same_boundary(on, off)
    assert on.partition.exact.sum() <= off.partition.exact.sum()
    assert len(on.partition) <= len(off.partition)
