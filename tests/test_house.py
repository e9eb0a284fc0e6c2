"""The layout's promises: a run leaves the traced graph as it found it, the registry can
forget what it was taught, method wrappers forward every option of their functions."""

import inspect
import sys

import numpy as np
import pytest
import torch
from torch import nn

import splinecam as sc
from splinecam.analysis import boundary, sampling, stats
from splinecam.viz import plot, viewer
from splinecam.ops import FunctionOp
from splinecam.partition import Options, partition_graph
from splinecam.run.trace import prepare


def _cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(12, 8), nn.LeakyReLU(0.1), nn.Linear(8, 3)).eval()


def _state(graph):
    """Every attribute of every op, as (name, id, value or tensor copy)."""
    out = []
    for node in graph.nodes:
        for k, v in sorted(vars(node.op).items()):
            out.append((node.name, k, id(v), v.clone() if isinstance(v, torch.Tensor) else v))
    return out


def test_a_run_does_not_change_the_graph_and_a_second_run_gives_the_same_partition():
    model = _cnn()
    torch.manual_seed(1)
    sl = sc.Slice.around(torch.randn(1, 4, 4), radius=1.0)
    twin, graph = prepare(model, torch.float64, "cpu", sl.input_shape)
    before = _state(graph)
    parts = [partition_graph(twin, graph, sl, torch.float64, "cpu", False, Options(chunk_size=c)) for c in (5, 1000)]
    after = _state(graph)
    assert [(a[0], a[1], a[2]) for a in before] == [(a[0], a[1], a[2]) for a in after]
    for (_, _, _, x), (_, _, _, y) in zip(before, after):
        if isinstance(x, torch.Tensor):
            assert torch.equal(x, y)
        else:
            assert x == y or callable(x)
    assert len(parts[0]) == len(parts[1]) > 1
    assert sorted(map(bytes, parts[0].arrays.packed_codes)) == sorted(map(bytes, parts[1].arrays.packed_codes))
    assert parts[0].verify(500).ok


def test_register_and_unregister_an_op():
    class Twice(nn.Module):
        def forward(self, x):
            return 2 * x

    model = nn.Sequential(nn.Linear(2, 4), Twice(), nn.ReLU(), nn.Linear(4, 1)).eval()
    sl = sc.Slice.box((-1, -1), (1, 1))
    names = lambda: [n.name for n in prepare(model, torch.float64, "cpu", (2,))[1].nodes]  # noqa: E731
    traced_into = names()
    sc.register_op(Twice, lambda m: FunctionOp(lambda t: 2 * t))  # a leaf now
    try:
        assert names() != traced_into and "1" in names()
        assert sc.partition(model, sl, progress=False).verify(300).ok
    finally:
        sc.unregister_op(Twice)
    assert names() == traced_into
    with pytest.raises(KeyError, match="not registered"):
        sc.unregister_op(Twice)


def _options(fn, skip):
    return {n for n, p in inspect.signature(fn).parameters.items() if n not in skip and p.kind is not p.VAR_KEYWORD}


@pytest.mark.parametrize("method, function", [
    ("level_set", boundary.partition_level_set), ("verify", sampling.verify), ("sample_boundary", sampling.sample_boundary),
    ("stats", stats.stats), ("to_html", viewer.to_html), ("decision_boundary", boundary.partition_boundary),
])
def test_partition_methods_forward_every_option(method, function):
    assert _options(getattr(sc.Partition, method), {"self"}) == _options(function, {"part"})


def test_plot_method_forwards_keyword_options():
    sig = inspect.signature(sc.Partition.plot)
    assert any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    assert _options(sc.Partition.plot, {"self"}) <= _options(plot.plot_partition, {"part"})


def test_public_types_are_exported():
    for name in ("Boundary", "VerifyReport", "BoundarySamples", "RegionLimitError", "UnsupportedModelError",
                 "RegionArrays", "LayerInfo", "unregister_op"):
        assert hasattr(sc, name)


def test_arrays_view_matches_the_per_region_lists():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 2)).eval()
    part = sc.partition(model, sc.Slice.box((-1, -1), (1, 1)), progress=False)
    a = part.arrays
    assert len(a) == len(part) and a.offsets[0] == 0 and a.offsets[-1] == len(a.vertices)
    for r in range(len(part)):
        np.testing.assert_array_equal(part.polygons[r], a.vertices[a.offsets[r]:a.offsets[r + 1]])
        np.testing.assert_array_equal(part.edge_units[r], a.edge_units[a.offsets[r]:a.offsets[r + 1]])
    np.testing.assert_array_equal(part.codes, np.unpackbits(a.packed_codes, axis=1, count=part.codes.shape[1]).astype(bool))


def test_partition_by_layer_rejects_unknown_options():
    with pytest.raises(TypeError, match="unknown option"):
        sc.partition_by_layer(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), sc.Slice.box((-1, -1), (1, 1)), bogus=1)


def test_the_old_names_still_work_with_a_warning():
    torch.manual_seed(0)
    part = sc.partition(nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 1)).eval(), sc.Slice.box((-1, -1), (1, 1)),
                        progress=False)
    with pytest.warns(DeprecationWarning, match="partition_boundary"):
        old = boundary.decision_boundary(part)
    np.testing.assert_array_equal(old.segments, part.decision_boundary().segments)
    sys.modules.pop("splinecam.notebook", None)  # imported afresh, as in a new process
    with pytest.warns(DeprecationWarning, match="splinecam.viz.notebook"):
        from splinecam.notebook import MAX_REGIONS  # the 0.1 module path
    assert MAX_REGIONS == sc.viz.notebook.MAX_REGIONS


def test_slice_from_data_is_slice_from_data_with_a_warning():
    gen = np.random.default_rng(0)
    X, y = gen.normal(size=(40, 5)), np.repeat([0, 1], 20)
    with pytest.warns(DeprecationWarning, match="Slice.from_data"):
        old = sc.slice_from_data(X, y, seed=2)
    new = sc.Slice.from_data(X, y, seed=2)
    np.testing.assert_array_equal(old.basis, new.basis)
    np.testing.assert_array_equal(old.anchors_uv, new.anchors_uv)
