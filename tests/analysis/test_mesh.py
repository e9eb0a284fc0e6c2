"""The planar mesh of a partition: Euler's formula, twins, whole shared edges, adjacency."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree
from torch import nn

import splinecam as sc
from helpers import arrangement_model, examples, random_mlp, run


def shoelace(p: np.ndarray) -> float:
    q = p - p[0]
    return 0.5 * float(np.sum(q[:, 0] * np.roll(q[:, 1], -1) - q[:, 1] * np.roll(q[:, 0], -1)))


def perimeter(p: np.ndarray) -> float:
    return float(np.linalg.norm(np.roll(p, -1, axis=0) - p, axis=1).sum())


def check_mesh(part: sc.Partition) -> sc.PlanarMesh:
    """Every invariant of the mesh of a complete partition."""
    m = part.mesh()
    scale = float(np.abs(part.slice.polygon - part.slice.polygon.mean(0)).max())
    assert m.n_vertices - m.n_edges + len(part) == 1 == m.euler_characteristic
    # vertices are stored once
    assert not len(cKDTree(m.vertices).query_pairs(1e-12 * scale))
    # half-edges: twins pair up across two different regions; only border half-edges lack one
    has = m.half_twin >= 0
    tw = m.half_twin[has]
    assert np.array_equal(m.half_twin[tw], np.flatnonzero(has))
    dest = m.half_origin[m.half_next]
    assert np.array_equal(m.half_origin[tw], dest[has]) and np.array_equal(dest[tw], m.half_origin[has])
    assert np.all(m.half_region[tw] != m.half_region[has])
    border = m.edge_units[m.half_edge, 0] < 0
    assert np.array_equal(~has, border)
    # edges: an interior edge has two distinct regions, a border edge one
    inner = m.edge_units[:, 0] >= 0
    assert np.array_equal(inner, m.interior)
    assert np.all(m.edge_regions[inner, 0] != m.edge_regions[inner, 1])
    assert np.all(m.edge_regions[~inner, 0] >= 0) and np.all(m.edge_regions[~inner, 1] == -1)
    # border edges lie on the slice border and make up its perimeter
    assert m.edge_lengths[~inner].sum() == pytest.approx(perimeter(part.slice.polygon), rel=1e-12)
    # each region's cycle is its polygon, with only T-junction vertices (on its sides) added
    for r, poly in enumerate(part.polygons):
        cyc = m.vertices[m.region_vertices(r)]
        assert shoelace(cyc) == pytest.approx(part.areas[r], rel=1e-9, abs=1e-15 * scale**2)
        assert perimeter(cyc) == pytest.approx(perimeter(poly), rel=1e-9)
        assert np.abs(cyc[:, None] - poly[None]).max(2).min(0).max() <= 1e-9 * scale  # every corner kept
    # shared edge lengths sum to (sum of perimeters - slice perimeter) / 2
    adj = part.adjacency()
    assert (adj != adj.T).nnz == 0 and adj.diagonal().sum() == 0
    total = sum(perimeter(p) for p in part.polygons)
    assert adj.sum() / 2 == pytest.approx((total - perimeter(part.slice.polygon)) / 2, rel=1e-9, abs=1e-12)
    # across an interior edge of an elementwise unit, the codes differ in that unit (coarse
    # cells of boundary-first partitions have no code)
    inner &= part.exact[m.edge_regions[:, 0]] & part.exact[np.maximum(m.edge_regions[:, 1], 0)]
    start = np.cumsum([0] + [layer.bits for layer in part.layers])
    elementwise = np.array([layer.bits == layer.units for layer in part.layers] + [False])
    e = np.flatnonzero(inner & elementwise[m.edge_units[:, 0]])
    bit = start[m.edge_units[e, 0]] + m.edge_units[e, 1]
    codes = part.codes
    a, b = m.edge_regions[e].T
    assert np.all(codes[a, bit] != codes[b, bit])
    return m


def cnn(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(12, 6), nn.ReLU(), nn.Linear(6, 3))
    with torch.no_grad():
        bn = model[1]
        bn.running_mean.uniform_(-0.3, 0.3)
        bn.running_var.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.2, 0.2)
    return model.eval()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_and_integer_mlps(seed):
    check_mesh(run(random_mlp([8, 8, 8], 3, seed)))
    check_mesh(run(random_mlp([6, 6, 6], 2, seed, integer=True)))
    check_mesh(run(random_mlp([6, 6], 1, seed, act="leaky", extras=True)))


def test_degenerate_arrangement():
    """Concurrent lines, lines through the slice's corners, duplicate (also rescaled) and dead units."""
    w = [[1, 0], [0, 1], [1, 1], [1, -1], [1, 0], [0, 0], [2, 2], [1, -1], [0, 1]]
    b = [0, 0, 0, 0, 0, 0.5, 0, 0, 0.5]
    part = run(arrangement_model(w, b))
    m = check_mesh(part)
    assert m.n_vertices == len(set(map(tuple, np.round(m.vertices, 12))))


def test_far_from_the_origin():
    """Concurrent lines at a point far from 0: the vertices still merge (coordinates round there)."""
    c = 1e4
    part = run(arrangement_model([[1, 0], [0, 1], [1, 1], [1, -1]], [-c, -c, -2 * c, 0]),
               sc.Slice.box((c - 1, c - 1), (c + 1, c + 1)))
    assert check_mesh(part).n_vertices == 9


def test_cnn_with_max_pooling():
    x = torch.randn(3, 1, 6, 6, generator=torch.Generator().manual_seed(4))
    check_mesh(sc.partition(cnn(0), sc.Slice.from_points(*x), progress=False))


def test_t_junctions_of_boundary_first_and_tiles():
    """Coarse cells end their neighbours' lines on their sides: the mesh splits those sides."""
    model = random_mlp([8, 8, 8], 3, 1)
    coarse = sc.decision_boundary(model, sc.Slice.box((-1, -1), (1, 1)), progress=False).partition
    assert not coarse.exact.all()
    m = check_mesh(coarse)
    assert (m.offsets[1:] - m.offsets[:-1]).sum() > len(coarse.arrays.vertices)  # some sides were split
    check_mesh(run(model, tiles=3))


@settings(max_examples=examples(25), deadline=None)
@given(st.lists(st.tuples(st.integers(-2, 2), st.integers(-2, 2), st.integers(-2, 2)), min_size=1, max_size=7))
def test_integer_arrangements(lines):
    """Integer lines through lattice points of [-1, 1]^2: many concurrent lines and duplicates."""
    w = [(a, b) for a, b, _ in lines]
    c = [c / 2 for _, _, c in lines]
    check_mesh(run(arrangement_model(w, c)))


def test_adjacency_and_networkx():
    part = run(random_mlp([6, 6], 3, 2))
    m = part.mesh()
    adj = part.adjacency()
    assert adj.shape == (len(part), len(part))
    g = part.to_networkx()
    assert g.number_of_nodes() == len(part) and g.number_of_edges() == adj.nnz // 2
    for a, b, data in g.edges(data=True):
        assert data["length"] == pytest.approx(adj[a, b], rel=1e-12)
        assert all(u[0] >= 0 for u in data["units"])
    assert g.nodes[0]["area"] == part.areas[0] and g.nodes[0]["code"] == part.arrays.packed_codes[0].tobytes()
    s = part.stats()
    neighbours = np.diff(adj.indptr)
    assert s["neighbours_mean"] == pytest.approx(neighbours.mean()) and s["neighbours_max"] == neighbours.max()
    assert 0 < s["one_unit_neighbours_mean"] <= s["neighbours_mean"]
    assert m is part.mesh()  # cached
