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

from .polygons import ragged_arange
from .polyhedra import Polyhedra, sections

__all__ = ["LOOSE", "SurfaceMesh", "TIGHT", "complex_counts", "face_keys", "merge_points", "surface_mesh"]

TIGHT = 1e-12  # points closer than this (relative to the domain's size) are one vertex
LOOSE = 1e-9  # ... and so are those closer than this with the same defining lines or faces


def merge_points(points: np.ndarray, scale: float, keys: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Ids of coincident points (N, d) and the (V, d) mean position of each id.

    Points within ``TIGHT * scale`` are one, and so are points within ``LOOSE * scale`` whose
    rows of ``keys`` (N, k) (e.g. the lines or faces that define them) are equal.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    n, d = points.shape
    if not n:
        return np.zeros(0, np.int64), np.zeros((0, d))
    pairs = cKDTree(points).query_pairs(LOOSE * max(scale, 1e-300), output_type="ndarray")
    near = np.linalg.norm(points[pairs[:, 0]] - points[pairs[:, 1]], axis=1) <= TIGHT * scale
    if keys is not None:
        near |= (keys[pairs[:, 0]] == keys[pairs[:, 1]]).all(1)
    pairs = pairs[near]
    count, ids = connected_components(coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n)),
                                      directed=False)
    size = np.bincount(ids, minlength=count)[:, None]
    pos = np.stack([np.bincount(ids, points[:, k], count) for k in range(d)], 1) / size
    return ids.astype(np.int64), pos


@dataclass
class SurfaceMesh:
    """A triangle mesh: vertices (V, 3), triangles (F, 3) (indices, counter-clockwise seen from
    the side where the function is above the level), and ``cell`` (F,): the cell of each."""

    vertices: np.ndarray
    triangles: np.ndarray
    cell: np.ndarray


def surface_mesh(cells: Polyhedra, maps: torch.Tensor, tol: torch.Tensor, scale: float) -> SurfaceMesh:
    """The surface where the affine function ``maps[r] . (x, y, z, 1)`` (R, 4) of each cell r is
    zero, over the cells that it crosses (vertices strictly on both sides, tolerance ``tol`` (R,)):
    each cell's section polygon as a fan of triangles, vertices merged across cells (see
    :func:`merge_points`; ``scale``: the domain's size, keys: the faces each point lies on);
    triangles that merging made degenerate are dropped."""
    sec = sections(cells, maps, tol)
    counts = sec.offsets[1:] - sec.offsets[:-1]
    keys = face_keys(cells, sec.parent[ragged_arange(counts, len(sec.verts))[0]], sec.incidence)
    label, verts = merge_points(sec.verts.cpu().numpy(), scale, keys)
    fans = (counts - 2).clamp(min=0)
    poly, k = ragged_arange(fans)
    start = sec.offsets[:-1][poly]
    tri = label[torch.stack([start, start + k + 1, start + k + 2], 1).cpu().numpy()]
    ok = (tri[:, 0] != tri[:, 1]) & (tri[:, 1] != tri[:, 2]) & (tri[:, 0] != tri[:, 2])
    return SurfaceMesh(verts, tri[ok], sec.parent[poly].cpu().numpy()[ok])


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
    vertices that span an edge of some cell (share two faces)."""
    keys = face_keys(cells, cells.owner(), cells.incidence)
    label, verts = merge_points(cells.verts.cpu().numpy(), scale, keys)
    owner = cells.owner()
    i, k = ragged_arange(cells.counts[owner])  # every ordered pair of vertices of a cell
    j = cells.offsets[:-1][owner[i]] + k
    shared = cells.incidence[i] & cells.incidence[j]
    edge = (i < j) & ((shared & (shared - 1)) != 0)
    ends = np.sort(label[torch.stack([i[edge], j[edge]], 1).cpu().numpy()], axis=1)
    ends = ends[ends[:, 0] != ends[:, 1]]
    return len(verts), len(np.unique(ends, axis=0))
