"""The compiled plane split of polyhedra (numba, CPU) makes exactly the pieces of the torch BSP
loop: the same vertices bit for bit, the same incidence, faces and face units, the same recorded
sides; only the order of the pieces differs.  Degenerate input is the point: lattice planes
through vertices, edges and faces, duplicate planes, planes that cross nothing; and bounded calls
that go on with their rest make the pieces of one call."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

import splinecam as sc
from splinecam.geometry import compiled, compiled3d, linesplit, plane_tolerance, surface
from splinecam.geometry.polyhedra import MAX_FACES, Polyhedra, split_polyhedra, split_polyhedra_at_breakpoints
from helpers import examples, pieces_by_sides, random_mlp

pytestmark = pytest.mark.skipif(not compiled.AVAILABLE, reason="numba is not installed")

BOX = np.array([[1, 0, 0, 1], [-1, 0, 0, 1], [0, 1, 0, 1], [0, -1, 0, 1], [0, 0, 1, 1], [0, 0, -1, 1.0]])
EXTENT = torch.full((3,), 2.0, dtype=torch.float64)


def piece_bytes(polys: Polyhedra, p: int) -> tuple[bytes, ...]:
    a, b = int(polys.offsets[p]), int(polys.offsets[p + 1])
    f, g = int(polys.face_offsets[p]), int(polys.face_offsets[p + 1])
    return (polys.verts[a:b].numpy().tobytes(), polys.incidence[a:b].numpy().tobytes(),
            polys.planes[f:g].numpy().tobytes(), polys.face_units[f:g].numpy().tobytes())


def cells_and_planes(seed: int, integer: bool, n_cells: int, n_planes: int):
    """A batch of cells (the box cut by a few planes, to have varied shapes) and planes per cell."""
    gen = torch.Generator().manual_seed(seed)
    cells = Polyhedra.from_planes(BOX * [1, 1, 1, 2])
    for _ in range(n_cells):
        plane = torch.randn(1, 4, generator=gen, dtype=torch.float64) * torch.tensor([1, 1, 1, 0.5])
        res = split_polyhedra(cells.select(torch.zeros(1, dtype=torch.int64))[0], torch.zeros(1, dtype=torch.int64),
                              plane, plane_tolerance(plane[:, :3].unbind(1), plane[:, 3], EXTENT, 1e-10),
                              torch.tensor([[0, 9]]), use_compiled=False)
        cells = Polyhedra.cat([cells, res.pieces])
    region = torch.sort(torch.randint(len(cells), (n_planes,), generator=gen)).values
    if integer:  # through lattice points: vertices, edges and faces of the box and of each other
        planes = torch.randint(-2, 3, (n_planes, 4), generator=gen).to(torch.float64)
        planes[:, 0] += (planes[:, :3] == 0).all(1)
        if n_planes > 1:
            planes[-1] = planes[0]
            region[-1] = region[0]  # a duplicate plane
            region = torch.sort(region).values
    else:
        planes = torch.randn(n_planes, 4, generator=gen, dtype=torch.float64)
    tol = plane_tolerance(planes[:, :3].unbind(1), planes[:, 3], EXTENT, 1e-10)
    units = torch.stack([torch.full_like(region, 3), torch.arange(n_planes)], 1)
    return cells, region, planes, tol, units


@settings(max_examples=examples(30), deadline=None)
@given(seed=st.integers(0, 10**6), integer=st.booleans(), n_cells=st.integers(0, 3), n_planes=st.integers(0, 14))
@example(seed=0, integer=True, n_cells=0, n_planes=14)
def test_compiled_split_equals_torch(seed, integer, n_cells, n_planes):
    cells, region, planes, tol, units = cells_and_planes(seed, integer, n_cells, n_planes)
    fast = split_polyhedra(cells, region, planes, tol, units, use_compiled=True)
    slow = split_polyhedra(cells, region, planes, tol, units, use_compiled=False)
    assert len(fast.rest) == len(slow.rest) == 0
    assert torch.equal(torch.sort(fast.parent).values, torch.sort(slow.parent).values)
    assert pieces_by_sides(fast, piece_bytes) == pieces_by_sides(slow, piece_bytes)
    vol = torch.zeros(len(cells), dtype=torch.float64).index_add_(0, fast.parent, fast.pieces.volumes())
    torch.testing.assert_close(vol, cells.volumes(), rtol=1e-12, atol=1e-14)


def resumed(cells, z, bps, budget):
    """Split by ``split_polyhedra_at_breakpoints`` in bounded calls, each on the rest of the one
    before: (piece arrays, cell, code) as bytes, in the order made, and the pieces of each call."""
    out, per_call, region = [], [], torch.arange(len(cells))
    while len(cells):
        pieces, parent, code, cells, rest_parent = split_polyhedra_at_breakpoints(cells, z, bps, EXTENT, 1e-10, 2, budget)
        per_call.append(len(pieces))
        out += [(piece_bytes(pieces, p), int(region[parent[p]]), code[p].numpy().tobytes()) for p in range(len(pieces))]
        z, region = z[rest_parent], region[rest_parent]
    return out, per_call


@settings(max_examples=examples(15), deadline=None)
@given(seed=st.integers(0, 10**6), integer=st.booleans(), clamp=st.booleans(),
       budget=st.sampled_from([1, 30000, 10**6]), work=st.sampled_from([1, 300, 10**9]))
def test_bounded_calls_resume_where_they_stopped(seed, integer, clamp, budget, work):
    """Calls bounded by a byte budget and a work bound, each going on with the rest of the one
    before, make exactly the pieces of one unbounded call, in the same order, and no call makes
    more pieces than its budget holds."""
    cells = cells_and_planes(seed, False, 2, 0)[0]
    rng = np.random.default_rng(seed)
    units = 7
    z = rng.integers(-3, 4, size=(len(cells), 4, units)) / 2 if integer else rng.normal(size=(len(cells), 4, units))
    z = torch.as_tensor(z, dtype=torch.float64)
    bps = torch.tensor([-0.5, 0.5] if clamp else [0.0], dtype=torch.float64)
    whole, calls = resumed(cells, z, bps, linesplit.UNBOUNDED)
    assert len(calls) == 1
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(linesplit, "WORK_PER_CALL", work)
        parts, calls = resumed(cells, z, bps, budget)
    assert parts == whole
    bits = units * len(bps)
    assert max(calls) <= max(1, budget // (bits + compiled3d.PIECE_BYTES))
    if budget == 1 or work == 1:
        assert len(calls) > 1


def same_cells(a: sc.VolumePartition, b: sc.VolumePartition) -> None:
    """The same cells (matched by code): the same vertex sets, volumes and maps."""
    ka = {c.tobytes(): r for r, c in enumerate(a.arrays.packed_codes)}
    kb = {c.tobytes(): r for r, c in enumerate(b.arrays.packed_codes)}
    assert ka.keys() == kb.keys() and len(ka) == len(a) == len(b)
    for key, r in ka.items():
        s = kb[key]
        va = a.arrays.vertices[a.arrays.offsets[r]:a.arrays.offsets[r + 1]]
        vb = b.arrays.vertices[b.arrays.offsets[s]:b.arrays.offsets[s + 1]]
        np.testing.assert_allclose(np.sort(va, axis=0), np.sort(vb, axis=0), rtol=0, atol=1e-12)
    ia, ib = list(ka.values()), [kb[k] for k in ka]
    np.testing.assert_allclose(a.volumes[ia], b.volumes[ib], rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(a.affine[ia], b.affine[ib], rtol=1e-11, atol=1e-11)


@settings(max_examples=examples(8), deadline=None)
@given(seed=st.integers(0, 10**6), integer=st.booleans(), act=st.sampled_from(["relu", "leaky"]),
       widths=st.lists(st.integers(1, 7), min_size=1, max_size=3))
def test_volume_partition_compiled_equals_torch(seed, integer, act, widths):
    """Whole volume partitions: the compiled elementwise rule against the torch one."""
    model = random_mlp(widths, 2, seed, act=act, integer=integer, inputs=3)
    box = sc.Volume.box([-1, -0.5, -2], [1.5, 1, 1])
    fast = sc.partition(model, box, progress=False, chunk_size=1)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(compiled, "AVAILABLE", False)
        slow = sc.partition(model, box, progress=False, chunk_size=1)
    same_cells(fast, slow)


def test_a_tiny_budget_and_work_bound_do_not_change_the_partition(monkeypatch):
    model = random_mlp([8, 6], 1, 5, inputs=3)
    box = sc.Volume.box([-1] * 3, [1] * 3)
    whole = sc.partition(model, box, progress=False)
    monkeypatch.setattr(linesplit, "WORK_PER_CALL", 1)
    same_cells(whole, sc.partition(model, box, progress=False))
    same_cells(whole, sc.partition(model, box, progress=False, max_memory="1KB"))


def test_too_many_faces_is_a_clear_error():
    """A cell cut by more planes than a face mask holds: the same error from both loops."""
    angles = np.linspace(0, 2 * np.pi, MAX_FACES + 2)[:-1]
    n = len(angles)
    planes = torch.as_tensor(np.stack([np.cos(angles), np.sin(angles), np.zeros(n), -0.9 * np.ones(n)], 1))
    planes = -planes  # inside the prism: a polygon of n sides, each cut off
    cells = Polyhedra.from_planes(BOX)
    region = torch.zeros(n, dtype=torch.int64)
    tol = plane_tolerance(planes[:, :3].unbind(1), planes[:, 3], EXTENT, 1e-10)
    units = torch.stack([torch.ones_like(region), torch.arange(n)], 1)
    for use in (True, False):
        with pytest.raises(ValueError, match=f"more than {MAX_FACES} faces"):
            split_polyhedra(cells, region, planes, tol, units, use_compiled=use)


@settings(max_examples=examples(20), deadline=None)
@given(seed=st.integers(0, 10**6), dim=st.sampled_from([2, 3]), n_keys=st.integers(0, 2), lattice=st.booleans())
def test_compiled_merge_equals_the_tree(seed, dim, n_keys, lattice):
    """The compiled merge groups points as the k-d tree does (the same ids): copies within the
    tight radius, copies within the loose one with equal keys, points on a lattice (equal
    projections, exact ties), keys that differ."""
    rng = np.random.default_rng(seed)
    base = rng.integers(-3, 4, (40, dim)).astype(float) if lattice else rng.normal(size=(40, dim))
    pick = rng.integers(0, len(base), 300)
    jitter = rng.choice([0.0, 1e-14, 5e-10, 1e-6], size=(300, 1)) * rng.normal(size=(300, dim))
    points = base[pick] + jitter
    keys = rng.integers(0, 2, (300, n_keys))
    fast = surface.merge_points(points, 1.0, keys)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(compiled, "AVAILABLE", False)
        slow = surface.merge_points(points, 1.0, keys)
    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_allclose(fast[1], slow[1], rtol=0, atol=0)


@settings(max_examples=examples(30), deadline=None)
@given(values=st.lists(st.floats(allow_nan=False), max_size=300), repeats=st.integers(1, 3))
@example(values=[0.0, -0.0, 1e-300, -1e-300, 5e-324, -5e-324, float("inf"), -float("inf"), 2.0**52, -(2.0**52)], repeats=2)
@example(values=[], repeats=1)
def test_the_radix_order_sorts_floats(values, repeats):
    """The radix sort of the merge orders floats as ``np.sort`` does (-0.0 and 0.0 alike): signs,
    subnormals, infinities, exact ties; a permutation."""
    x = np.array(values * repeats, np.float64)
    order = compiled3d._float_order(x)
    assert np.array_equal(np.sort(order), np.arange(len(x)))
    assert np.array_equal(x[order], np.sort(x))


@settings(max_examples=examples(6), deadline=None)
@given(seed=st.integers(0, 10**6), integer=st.booleans())
def test_compiled_complex_counts_equal_torch(seed, integer):
    """The vertices and edges of the complex, the face keys of every vertex: both ways the same."""
    model = random_mlp([6, 5], 1, seed, integer=integer, inputs=3)
    part = sc.partition(model, sc.Volume.box([-1] * 3, [1] * 3), progress=False)
    cells = part.polyhedra()
    arrays = [t.numpy() for t in (cells.offsets, cells.incidence, cells.face_offsets, cells.face_units)]
    np.testing.assert_array_equal(compiled3d.vertex_keys(*arrays, 3), surface.face_keys(cells, cells.owner(), cells.incidence))
    fast = part.complex_counts()
    with pytest.MonkeyPatch.context() as m:
        m.setattr(compiled, "AVAILABLE", False)
        assert part.complex_counts() == fast
