"""Meshes from convex polyhedra: the level-set surface of a piecewise-affine function as one
triangle mesh with shared vertices, and the vertices and edges of the cell complex itself.

Neighbouring cells compute the points they share (a crossing of the surface with a common edge, a
common vertex) separately, so the copies differ by rounding: they are merged within a tolerance
scaled to the domain (a k-d tree finds every pair within it; each group of mutually close points
becomes one vertex, the first of the group).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import compiled, compiled3d
from .polygons import ragged_arange
from .polyhedra import Polyhedra, plane_sides, sections

__all__ = ["LOOSE", "SurfaceMesh", "TIGHT", "complex_counts", "face_keys", "merge_points", "surface_mesh"]

TIGHT = 1e-12  # points closer than this (relative to the domain's size) are one vertex
LOOSE = 1e-9  # ... and so are those closer than this with the same defining lines or faces
_DIRECTION = np.array([1.0, 0.6180339887498949, 0.3819660112501051])  # pairs are found along it (irrational ratios)


def merge_points(points: np.ndarray, scale: float, keys: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Ids of coincident points (N, d) and the (V, d) mean position of each id (ids number the
    groups in the order of their first point).

    Points within ``TIGHT * scale`` are one, and so are points within ``LOOSE * scale`` whose
    rows of ``keys`` (N, k) (e.g. the lines or faces that define them) are equal.  Compiled
    (:func:`~splinecam.geometry.compiled3d.merge_ids`) when numba is installed, else with a k-d tree.
    """
    n, d = points.shape
    if not n:
        return np.zeros(0, np.int64), np.zeros((0, d))
    keys = np.zeros((n, 0), np.int64) if keys is None else keys
    if compiled.AVAILABLE:
        direction = _DIRECTION[:d] / np.linalg.norm(_DIRECTION[:d])
        ids = compiled3d.merge_ids(np.ascontiguousarray(points, np.float64), np.ascontiguousarray(keys),
                                   TIGHT * scale, LOOSE * max(scale, 1e-300), direction)
        count = int(ids.max()) + 1
    else:
        count, ids = _merge_tree(points, scale, keys)
    size = np.bincount(ids, minlength=count)[:, None]
    pos = np.stack([np.bincount(ids, points[:, k], count) for k in range(d)], 1) / size
    return ids.astype(np.int64), pos


def _merge_tree(points: np.ndarray, scale: float, keys: np.ndarray) -> tuple[int, np.ndarray]:
    """The groups of :func:`merge_points` from a k-d tree's pairs: their number and ids (N,)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    n = len(points)
    pairs = cKDTree(points).query_pairs(LOOSE * max(scale, 1e-300), output_type="ndarray")
    near = np.linalg.norm(points[pairs[:, 0]] - points[pairs[:, 1]], axis=1) <= TIGHT * scale
    near |= (keys[pairs[:, 0]] == keys[pairs[:, 1]]).all(1)
    pairs = pairs[near]
    return connected_components(coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n)),
                                directed=False)


@dataclass
class SurfaceMesh:
    """A triangle mesh: vertices (V, 3), triangles (F, 3) (indices, counter-clockwise seen from
    the side where the function is above the level), and ``cell`` (F,): the cell of each."""

    vertices: np.ndarray
    triangles: np.ndarray
    cell: np.ndarray


def surface_mesh(cells: Polyhedra, maps: torch.Tensor, tol: torch.Tensor, scale: float) -> SurfaceMesh:
    """The boundary of ``{f > 0}`` for the affine function ``f = maps[r] . (x, y, z, 1)`` (R, 4) of
    each cell r (on-plane tolerance ``tol`` (R,)): the section polygon of every cell that ``f = 0``
    crosses (vertices strictly on both sides), and, where the level set holds a whole face (a
    degenerate net: ``f`` flat on a face, or on a whole cell), the faces of cells with ``f > 0``
    that lie on it (twice found, from two such cells, they are no boundary and are dropped).
    Each polygon is a fan of triangles; vertices are merged across cells (see
    :func:`merge_points`; ``scale``: the domain's size, keys: the faces each point lies on);
    triangles that merging made degenerate are dropped."""
    sec = sections(cells, maps, tol)
    counts = sec.offsets[1:] - sec.offsets[:-1]
    flat_cell, flat_index, flat_counts = _faces_on_level(cells, maps, tol)
    parent = torch.cat([sec.parent, flat_cell])
    counts = torch.cat([counts, flat_counts])
    points = torch.cat([sec.verts, cells.verts[flat_index]])
    owner = parent[ragged_arange(counts, len(points))[0]]
    keys = face_keys(cells, owner, torch.cat([sec.incidence, cells.incidence[flat_index]]))
    label, verts = merge_points(points.cpu().numpy(), scale, keys)
    offsets = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    poly, k = ragged_arange((counts - 2).clamp(min=0))
    start = offsets[:-1][poly]
    tri = label[torch.stack([start, start + k + 1, start + k + 2], 1).cpu().numpy()]
    ok = (tri[:, 0] != tri[:, 1]) & (tri[:, 1] != tri[:, 2]) & (tri[:, 0] != tri[:, 2])
    n_sec = len(sec.parent)
    if len(flat_counts):  # a face found from both sides is no boundary: drop both copies
        face, pos = ragged_arange(flat_counts)
        rows = np.full((len(flat_counts), int(flat_counts.max())), -1)
        rows[face.numpy(), pos.numpy()] = label[int(offsets[n_sec]):]
        _, inverse, seen = np.unique(np.sort(rows, axis=1), axis=0, return_inverse=True, return_counts=True)
        twice = np.concatenate([np.zeros(n_sec, bool), seen[inverse.ravel()] > 1])
        ok &= ~twice[poly.cpu().numpy()]
    return SurfaceMesh(verts, tri[ok], parent[poly].cpu().numpy()[ok])


def _faces_on_level(cells: Polyhedra, maps: torch.Tensor, tol: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The faces, on the level set ``f = 0`` (every vertex within tolerance), of the cells where
    ``f > 0`` (vertices on or above it, one strictly): their cells (n,), their vertex indices in
    rings counter-clockwise seen from inside the cell, and their vertex counts (n,)."""
    _, side = plane_sides(cells, maps, tol)
    owner = cells.owner()
    above = torch.zeros(len(cells), dtype=torch.bool, device=side.device).index_add_(0, owner, side > 0)
    below = torch.zeros_like(above).index_add_(0, owner, side < 0)
    index, offsets = cells.faces()
    fcount = offsets[1:] - offsets[:-1]
    face_of = ragged_arange(fcount, len(index))[0]
    off_level = torch.zeros(len(fcount), dtype=torch.bool, device=side.device).index_add_(0, face_of, side[index] != 0)
    face_cell = ragged_arange(cells.face_counts, len(fcount))[0]
    chosen = ~off_level & above[face_cell] & ~below[face_cell]
    faces = torch.nonzero(chosen).flatten()
    face, pos = ragged_arange(fcount[faces])
    ring = index[offsets[faces][face] + fcount[faces][face] - 1 - pos]  # reversed: seen from inside
    return face_cell[faces], ring, fcount[faces]


def face_keys(cells: Polyhedra, cell: torch.Tensor, incidence: torch.Tensor, width: int = 3) -> np.ndarray:
    """(M, width) int64: for points of cells ``cell`` (M,) on the faces ``incidence`` (M,) (bit
    masks), the units of the first ``width`` of those faces in a canonical order (-1 past the
    last): the same for copies of a point computed in neighbouring cells."""
    n_bits = int(cells.face_counts.max()) if len(cells) else 1
    bits = ((incidence[:, None] >> torch.arange(n_bits, device=incidence.device)) & 1).bool()
    face = (cells.face_offsets[:-1][cell][:, None] + torch.arange(n_bits, device=cell.device)).clamp(
        max=max(len(cells.planes) - 1, 0))
    units = cells.face_units[face]
    code = torch.where(bits, (units[..., 0] + 2) * (1 << 40) + units[..., 1] + 2, torch.iinfo(torch.int64).max)
    code = code.sort(1).values[:, :width]
    return torch.where(code == torch.iinfo(torch.int64).max, -1, code).cpu().numpy()


def complex_counts(cells: Polyhedra, scale: float) -> tuple[int, int]:
    """(vertices, edges) of the cell complex: the cells' vertices merged across cells (see
    :func:`merge_points`; ``scale``: the domain's size), and the distinct pairs of merged
    vertices that span an edge of some cell (share two faces).  Compiled when numba is installed."""
    if compiled.AVAILABLE and cells.verts.device.type == "cpu":
        arrays = [t.contiguous().numpy() for t in (cells.offsets, cells.incidence, cells.face_offsets, cells.face_units)]
        keys = compiled3d.vertex_keys(*arrays, 3)
        label, verts = merge_points(cells.verts.to(torch.float64).numpy(), scale, keys)
        return len(verts), int(compiled3d.edge_count(arrays[0], arrays[1], label, len(verts)))
    keys = face_keys(cells, cells.owner(), cells.incidence)
    label, verts = merge_points(cells.verts.cpu().numpy(), scale, keys)
    owner = cells.owner()
    i, k = ragged_arange(cells.counts[owner])  # every ordered pair of vertices of a cell
    j = cells.offsets[:-1][owner[i]] + k
    shared = cells.incidence[i] & cells.incidence[j]
    edge = (i < j) & ((shared & (shared - 1)) != 0)
    a, b = label[i[edge].cpu().numpy()], label[j[edge].cpu().numpy()]
    ends = np.minimum(a, b) * len(verts) + np.maximum(a, b)  # one int64 per edge: a fast unique
    return len(verts), len(np.unique(ends[a != b]))
