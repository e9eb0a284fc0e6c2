"""Convex polyhedra cut by planes: pieces tile their parent (volumes add up), lie on their side,
keep a consistent face structure (every face a convex polygon of >= 3 vertices on its plane,
Euler's V - E + F = 2), and sections are the polygons where planes meet the cells."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from splinecam.geometry import plane_tolerance
from splinecam.geometry.polyhedra import MAX_FACES, Polyhedra, cut_polyhedra, polyhedra_sides, sections
from helpers import examples

RTOL = 1e-10
BOX = np.array([[1, 0, 0, 1], [-1, 0, 0, 1], [0, 1, 0, 1], [0, -1, 0, 1], [0, 0, 1, 1], [0, 0, -1, 1.0]])
ONE = torch.full((3,), 2.0, dtype=torch.float64)


def tolerance(planes: torch.Tensor) -> torch.Tensor:
    return plane_tolerance(planes[:, :3].unbind(1), planes[:, 3], ONE, RTOL)


def cut_all(polys: Polyhedra, planes: torch.Tensor):
    units = torch.stack([torch.arange(len(polys)), torch.full((len(polys),), 7)], 1)
    return cut_polyhedra(polys, planes, tolerance(planes), units)


def check_structure(polys: Polyhedra) -> None:
    """Every face has >= 3 vertices, all on its plane; vertices inside all faces; Euler holds."""
    index, offsets = polys.faces()
    fcount = (offsets[1:] - offsets[:-1]).numpy()
    assert (fcount >= 3).all()
    assert (polys.face_counts <= MAX_FACES).all()
    owner = polys.owner()
    for p in range(len(polys)):
        v = polys.verts[polys.offsets[p]:polys.offsets[p + 1]].numpy()
        planes = polys.planes[polys.face_offsets[p]:polys.face_offsets[p + 1]].numpy()
        assert (v @ planes[:, :3].T + planes[:, 3] >= -1e-9).all()
        faces = range(int(polys.face_offsets[p]), int(polys.face_offsets[p + 1]))
        edges = sum(fcount[f] for f in faces) // 2
        assert len(v) - edges + len(planes) == 2
        gaps = np.abs(v[:, None] - v[None]).max(-1) + np.eye(len(v))
        assert gaps.min() > 1e-12  # no duplicate vertices
    for f in range(len(polys.planes)):
        pts = polys.verts[index[offsets[f]:offsets[f + 1]]]
        assert (owner[index[offsets[f]:offsets[f + 1]]] == owner[index[offsets[f]]]).all()
        assert ((pts @ polys.planes[f, :3] + polys.planes[f, 3]).abs() <= 1e-9).all()
        rel = pts - pts.mean(0)  # counter-clockwise seen from outside: turns along the outward normal
        turn = torch.linalg.cross(rel, rel.roll(-1, 0)) @ -polys.planes[f, :3]
        assert (turn > -1e-12).all()


def test_box_and_tetrahedron():
    box = Polyhedra.from_planes(BOX)
    assert box.volumes().item() == pytest.approx(8.0, rel=1e-15)
    assert np.allclose(box.volume_centroids().numpy(), 0, atol=1e-15)
    check_structure(box)
    tet = Polyhedra.from_planes([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [-1, -1, -1, 1]])
    assert len(tet.verts) == 4 and tet.volumes().item() == pytest.approx(1 / 6, rel=1e-14)
    assert np.allclose(tet.volume_centroids().numpy(), 0.25)
    with pytest.raises(ValueError, match="no polytope"):
        Polyhedra.from_planes(BOX[:5])


def test_cut_through_vertices_and_faces():
    box = Polyhedra.from_planes(BOX)
    # through four vertices (a diagonal plane), through a face (not crossed), through the centre
    for plane, pieces, vol in (([1, -1, 0, 0], 2, 4.0), ([1, 0, 0, -1], 1, 8.0), ([1, 1, 1, 0], 2, 4.0),
                               ([1, 1, 1, -3], 1, 8.0), ([1, 1, 1, -2.5], 2, 8 - 1 / 48)):
        res = cut_all(box, torch.tensor([plane], dtype=torch.float64))
        assert len(res.pos) + len(res.neg) == pieces
        both = Polyhedra.cat([res.pos, res.neg])
        assert both.volumes().sum().item() == pytest.approx(8.0, rel=1e-14)
        assert both.volumes().max().item() == pytest.approx(vol, rel=1e-13)
        check_structure(both)
        new = both.face_units[:, 1] == 7
        assert int(new.sum()) == (2 if pieces == 2 else 0)


def test_section_of_a_cube_is_the_regular_hexagon():
    box = Polyhedra.from_planes(BOX)
    planes = torch.tensor([[1.0, 1.0, 1.0, 0.0]], dtype=torch.float64)
    sec = sections(box, planes, tolerance(planes))
    pts = sec.verts.numpy()
    assert len(pts) == 6 and sec.parent.tolist() == [0]
    assert np.allclose(pts.sum(1), 0, atol=1e-15)
    area = 0.5 * np.linalg.norm(np.cross(pts, np.roll(pts, -1, 0)).sum(0))
    assert area == pytest.approx(3 * np.sqrt(3), rel=1e-14)
    # a plane through four vertices: the section is the rectangle of those vertices (edges of one vertex)
    planes = torch.tensor([[1.0, -1.0, 0.0, 0.0]], dtype=torch.float64)
    sec = sections(box, planes, tolerance(planes))
    assert len(sec.verts) == 4 and (sec.edges[:, 0] == sec.edges[:, 1]).all()


@settings(max_examples=examples(8), deadline=None)
@given(st.integers(0, 2**31 - 1), st.booleans())
def test_random_cuts_tile(seed, integer):
    """Rounds of random (or integer, through vertices and edges) planes: the volumes add up, each
    piece lies on its side, and the structure stays a convex polyhedron's."""
    gen = torch.Generator().manual_seed(seed)
    polys = Polyhedra.from_planes(BOX * [1, 1, 1, 2])
    for _ in range(5):
        n = len(polys)
        planes = torch.randn(n, 4, generator=gen, dtype=torch.float64)
        if integer:
            planes = torch.randint(-2, 3, (n, 4), generator=gen).to(torch.float64)
            planes[:, 0] += (planes[:, :3] == 0).all(1)
        res = cut_all(polys, planes)
        for half, parent, sign in ((res.pos, res.pos_parent, 1), (res.neg, res.neg_parent, -1)):
            s = (half.verts * planes[parent][half.owner(), :3]).sum(1) + planes[parent][half.owner(), 3]
            assert (sign * s >= -tolerance(planes)[parent][half.owner()]).all()
        parent = torch.cat([res.pos_parent, res.neg_parent])
        polys_next = Polyhedra.cat([res.pos, res.neg])
        vol = torch.zeros(n, dtype=torch.float64).index_add_(0, parent, polys_next.volumes())
        assert torch.allclose(vol, polys.volumes(), rtol=1e-12, atol=1e-14)
        assert (polys_next.volumes() > 0).all()
        polys = polys_next
    check_structure(polys)
    assert polys.volumes().sum().item() == pytest.approx(64.0, rel=1e-12)
    # the cell interface: extremes over the vertices, sides of every (cell, plane) pair
    maps = torch.randn(len(polys), 4, 5, generator=gen, dtype=torch.float64)
    hi, lo = polys.extremes(maps)
    owner = polys.owner()
    vals = maps[owner, 0] + (polys.verts[:, :, None] * maps[owner, 1:]).sum(1)
    index = owner[:, None].expand(-1, 5)
    assert torch.allclose(hi, torch.full_like(hi, -np.inf).scatter_reduce(0, index, vals, "amax"), rtol=1e-14, atol=1e-14)
    assert torch.allclose(lo, torch.full_like(lo, np.inf).scatter_reduce(0, index, vals, "amin"), rtol=1e-14, atol=1e-14)
    planes = torch.randn(len(polys), 4, generator=gen, dtype=torch.float64)
    has_pos, has_neg = polyhedra_sides(polys, torch.arange(len(polys)), planes, tolerance(planes))
    res = cut_all(polys, planes)
    assert torch.equal(has_pos & has_neg, torch.isin(torch.arange(len(polys)), res.pos_parent)
                       & torch.isin(torch.arange(len(polys)), res.neg_parent))


def test_select_mask_cat_keep_the_cells():
    polys = Polyhedra.from_planes(BOX)
    res = cut_all(Polyhedra.cat([polys, polys]), torch.tensor([[1.0, 0.2, 0, 0.1], [0, 1.0, 1.0, -0.3]],
                                                               dtype=torch.float64))
    both = Polyhedra.cat([res.pos, res.neg])
    sub, _ = both.select(torch.tensor([3, 0]))
    assert torch.equal(sub.volumes(), both.volumes()[[3, 0]])
    assert torch.equal(both.mask(torch.tensor([False, True, True, False])).volumes(), both.volumes()[1:3])
    assert both.measure().sum().item() == pytest.approx(16.0)
    lo, hi = both.bounding_boxes()
    assert (lo >= -1).all() and (hi <= 1).all()
    assert torch.allclose(both.centroids(), torch.stack([both.verts[both.owner() == p].mean(0) for p in range(4)]))
