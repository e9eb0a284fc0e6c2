"""Exact cells of networks in 3-D volumes: they fill the volume, their maps and codes are the
network's, and a brute-force scan finds no pattern that is not a cell."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import splinecam as sc
from helpers import check_volume_partition, examples, model64, random_mlp, volume_preacts

BOX = sc.Volume.box([-1, -1, -1], [1, 1, 1])


def part_of(model, volume=BOX, **options) -> sc.VolumePartition:
    return sc.partition(model, volume, progress=False, **options)


@settings(max_examples=examples(6), deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from(["relu", "leaky"]), st.booleans())
def test_random_mlps(seed, act, integer):
    """Random and integer-weight (planes through lattice points, many coincidences) MLPs."""
    model = random_mlp([6, 5], 2, seed, act=act, integer=integer, inputs=3)
    check_volume_partition(part_of(model), model)


def test_engine_path_with_batchnorm_and_a_chart_of_a_larger_input():
    """BatchNorm with random statistics (the engine, not the MLP fast path), on the 3-D chart
    through four inputs of a 5-input network."""
    model = random_mlp([8, 6], 1, 3, extras=True, inputs=5)
    rng = np.random.default_rng(0)
    volume = sc.Volume.from_points(*rng.standard_normal((4, 5)))
    part = part_of(model, volume)
    assert len(part) > 20
    check_volume_partition(part, model)


def test_general_polytope_domain():
    model = random_mlp([7], 1, 5, inputs=3)
    tet = sc.Volume(np.zeros(3), np.eye(3), [[-1, -1, -1], [2, 0, 0], [0, 2, 0], [0, 0, 2]])
    part = part_of(model, tet)
    check_volume_partition(part, model)
    assert (np.abs(part.arrays.face_units[:, 0]) >= 0).all()
    border = part.arrays.face_units[:, 0] == -1
    assert set(part.arrays.face_units[border, 1]) == {0, 1, 2, 3}


def test_brute_force_patterns_on_a_grid():
    """Every activation pattern seen on a fine grid is the code of the cell holding the point, and
    every cell's code is seen at its own interior points; no two cells share a code."""
    model = random_mlp([5, 4], 1, 11, integer=True, inputs=3)
    part = part_of(model)
    g = np.linspace(-1, 1, 41)
    uvw = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    z = volume_preacts(part, uvw)
    code = np.concatenate([zi > 0 for zi in z], 1)
    clear = (np.concatenate([np.abs(zi) for zi in z], 1) > 1e-9).all(1)
    seen = {row.tobytes() for row in code[clear]}
    cells = {row.tobytes(): r for r, row in enumerate(part.codes)}
    assert len(cells) == len(part)
    assert seen <= set(cells)
    cell = part.locate(uvw[clear])
    assert (cell >= 0).all()
    assert (part.codes_of(cell) == code[clear]).all()
    with torch.no_grad():
        want = model64(model)(BOX.to_input(uvw)).numpy()
    assert np.allclose(part.evaluate(uvw), want, rtol=0, atol=1e-12)


def test_cells_and_faces():
    model = random_mlp([6], 1, 2, inputs=3)
    part = part_of(model)
    index, offsets, cell, units = part.faces()
    assert len(offsets) - 1 == len(cell) == len(units)
    verts, faces, face_units = part.cell(0)
    assert len(faces) == len(face_units) >= 4
    planes = part.arrays.planes[part.arrays.face_offsets[0]:part.arrays.face_offsets[1]]
    for f, plane in zip(faces, planes):
        assert np.abs(verts[f] @ plane[:3] + plane[3]).max() <= 1e-12
    assert (verts @ planes[:, :3].T + planes[:, 3] >= -1e-12).all()
    n_vertices, n_edges = part.complex_counts()
    assert n_vertices >= 8 and n_edges >= 12
    assert "cells" in repr(part)


def test_limits_hand_back_valid_partial_cells():
    model = random_mlp([12, 12], 1, 4, inputs=3)
    with pytest.raises(sc.RegionLimitError) as err:
        part_of(model, max_regions=300, chunk_size=8)
    partial = err.value.partial
    assert isinstance(partial, sc.VolumePartition) and not partial.complete
    assert 0 < partial.volume_fraction < 1 and len(partial) >= 1
    assert partial.verify().ok
    with pytest.raises(sc.TimeLimitError, match=r"% of the volume\)"):
        part_of(model, timeout=1e-6)


class MaxoutNet(nn.Module):
    """3 inputs -> maxout (4 units of 3 pieces) -> max-pooling (window 2) of a linear layer ->
    the max of it and its flip, with random (or integer: ties, lattice planes) weights."""

    def __init__(self, seed: int, integer: bool):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.l1, self.l2, self.out = nn.Linear(3, 12), nn.Linear(4, 4), nn.Linear(2, 2)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randint(-2, 3, p.shape, generator=gen) / 2 if integer else torch.randn(p.shape, generator=gen))

    def forward(self, x):
        h = self.l1(x).view(-1, 4, 3).max(dim=-1).values
        h = nn.functional.max_pool1d(torch.relu(self.l2(h))[:, None], 2)[:, 0]
        return self.out(torch.max(h, 0.5 * h.flip(1)))


@settings(max_examples=examples(4), deadline=None)
@given(st.integers(0, 2**31 - 1), st.booleans())
def test_max_type_ops_in_a_volume(seed, integer):
    """Maxout, max-pooling and the max of two tensors in 3-D: the cells fill the box, no two share
    a code (the winners), ``verify`` agrees, and on a 25^3 grid and at points inside every cell
    the cell's map gives the network's outputs (a brute-force check of the max cells)."""
    model = MaxoutNet(seed, integer).eval()
    part = part_of(model)
    assert part.complete and (part.volumes > 0).all()
    assert part.volumes.sum() == pytest.approx(part.volume.volume, rel=1e-11)
    assert len(np.unique(part.arrays.packed_codes, axis=0)) == len(part)
    assert part.verify().ok
    g = np.linspace(-1, 1, 25)
    first = part.arrays.vertices[part.arrays.offsets[:-1]]
    uvw = np.concatenate([np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3), part.centroids,
                          0.3 * part.centroids + 0.7 * first])
    with torch.no_grad():
        want = model64(model)(torch.as_tensor(uvw)).numpy()
    got = part.evaluate(uvw)
    assert np.abs(got - want).max() <= 1e-9 * max(1.0, float(np.abs(want).max()))
    cell = np.arange(len(part))  # each cell's own map at its interior points
    inside = np.einsum("nkd,nd->nk", part.affine[cell], np.c_[part.centroids, np.ones(len(part))])
    assert np.abs(inside - want[len(g) ** 3 : len(g) ** 3 + len(part)]).max() <= 1e-9 * max(1.0, float(np.abs(want).max()))


def test_clear_errors():
    with pytest.raises(sc.UnsupportedModelError, match="PeriodicOp"):
        part_of(nn.Sequential(nn.Linear(3, 4), sc.nn.PeriodicPWL([0.0, 1.0], [0.0, 1.0], 2.0), nn.Linear(4, 1)))
    with pytest.raises(ValueError, match="tiles"):
        sc.partition(random_mlp([3], 1, 0, inputs=3), BOX, tiles=2)
    with pytest.raises(TypeError, match="bogus"):
        part_of(random_mlp([3], 1, 0, inputs=3), bogus=1)


def test_save_load_round_trip(tmp_path):
    """Every array, the volume, the layers and the flags come back; the loaded partition answers
    queries as the original; the write is atomic (no temporary file left, the old file kept
    when a write fails); a damaged file gets one clear error."""
    model = random_mlp([6, 5], 2, 8, inputs=3)
    rng = np.random.default_rng(1)
    volume = sc.Volume.from_points(*rng.standard_normal((4, 3)))
    part = part_of(model, volume)
    path = tmp_path / "cells.npz"
    part.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["cells.npz"]
    back = sc.VolumePartition.load(path)
    for name in part.arrays.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(back.arrays, name), getattr(part.arrays, name))
    np.testing.assert_array_equal(np.unique(back.volume.vertices, axis=0), np.unique(part.volume.vertices, axis=0))
    np.testing.assert_array_equal(back.volume.basis, part.volume.basis)
    assert back.layers == part.layers and back.complete and back.exact.all() and back.seconds == part.seconds
    pts = part.centroids[:50] + rng.uniform(-0.01, 0.01, (min(50, len(part)), 3))
    np.testing.assert_allclose(back.evaluate(pts), part.evaluate(pts), rtol=1e-12, atol=1e-12)
    assert back.complex_counts() == part.complex_counts()
    assert back.verify(model).ok
    # a partial result keeps its flag; a failed write keeps the old file
    with pytest.raises(sc.RegionLimitError) as err:
        part_of(random_mlp([12, 12], 1, 4, inputs=3), max_regions=300, chunk_size=8)
    err.value.partial.save(tmp_path / "partial")
    assert not sc.VolumePartition.load(tmp_path / "partial.npz").complete
    before = path.read_bytes()
    with pytest.MonkeyPatch.context() as m:
        m.setattr(np, "savez_compressed", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
        with pytest.raises(KeyboardInterrupt):
            part.save(path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["cells.npz", "partial.npz"]
    (tmp_path / "bad.npz").write_bytes(before[: len(before) // 2])
    with pytest.raises(sc.InvalidPartitionFile, match="truncated or corrupt"):
        sc.VolumePartition.load(tmp_path / "bad.npz")
    with pytest.raises(sc.InvalidPartitionFile, match="splinecam.volume/1"):
        sc.VolumePartition.load(_slice_file(tmp_path))


def _slice_file(tmp_path):
    """A 2-D slice partition's file (another format)."""
    part = sc.partition(random_mlp([3], 1, 0), sc.Slice.box([-1, -1], [1, 1]), progress=False)
    part.save(tmp_path / "slice.npz")
    return tmp_path / "slice.npz"


def test_limits_inside_a_huge_first_split(monkeypatch):
    """A first layer of 400 planes through the box: the compiled split stops within its budget
    and work bound, so the time limit and the memory budget hold inside the first split and the
    partial cells are exact."""
    from splinecam.geometry import compiled3d

    calls = []
    original = compiled3d.breakpoint_split

    def spy(*args):
        res = original(*args)
        calls.append((len(res[2]), len(res[5])))  # pieces made, pieces left (the rest)
        return res

    monkeypatch.setattr(compiled3d, "breakpoint_split", spy)
    model = random_mlp([400], 1, 2, inputs=3)
    start = time.perf_counter()
    with pytest.raises(sc.TimeLimitError) as err:
        part_of(model, timeout=1.5, max_memory="2MB")
    assert time.perf_counter() - start < 1.5 + 2
    assert calls[0][1] > 0 and max(c[0] for c in calls) <= 2 * 10**6 // (400 + compiled3d.PIECE_BYTES)
    partial = err.value.partial
    assert not partial.complete and 0 < partial.volume_fraction < 1
    assert partial.verify().ok


def test_many_volumes_in_one_call():
    model = random_mlp([10, 10], 2, 3, inputs=3)
    volumes = [sc.Volume.box([-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]), sc.Volume.box([0.0, -0.5, 0.0], [0.5, 0.5, 2.0])]
    parts = sc.partition_many(model, volumes, progress=False)
    assert [type(p) for p in parts] == [sc.VolumePartition] * 2
    for volume, part in zip(volumes, parts):
        alone = sc.partition(model, volume, progress=False)
        assert len(part) == len(alone) and np.isclose(part.volumes.sum(), alone.volumes.sum())
        check_volume_partition(part, model)
