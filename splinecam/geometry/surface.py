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

__all__ = ["SurfaceMesh", "complex_counts", "merge_points", "surface_mesh"]


def merge_points(points: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Group the points (N, 3) that lie within ``tol`` of each other (transitively): returns the
    (N,) group of each point, numbered in order of first appearance, and the (G,) first point of
    each group."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    n = len(points)
    if not n:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pairs = cKDTree(points).query_pairs(tol, p=np.inf, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    first = np.full(label.max() + 1, n, np.int64)
    np.minimum.at(first, label, np.arange(n))
    rank = np.empty(len(first), np.int64)
    order = np.argsort(first, kind="stable")
    rank[order] = np.arange(len(first))
    return rank[label], first[order]


@dataclass
class SurfaceMesh:
    """A triangle mesh: vertices (V, 3), triangles (F, 3) (indices, counter-clockwise seen from
    the side where the function is above the level), and ``cell`` (F,): the cell of each."""

    vertices: np.ndarray
    triangles: np.ndarray
    cell: np.ndarray


def surface_mesh(cells: Polyhedra, maps: torch.Tensor, tol: torch.Tensor, merge_tol: float) -> SurfaceMesh:
    """The surface where the affine function ``maps[r] . (x, y, z, 1)`` (R, 4) of each cell r is
    zero, over the cells that it crosses (vertices strictly on both sides, tolerance ``tol`` (R,)):
    each cell's section polygon as a fan of triangles, vertices merged within ``merge_tol``
    across cells; triangles that merging made degenerate are dropped."""
    sec = sections(cells, maps, tol)
    label, first = merge_points(sec.verts.cpu().numpy(), merge_tol)
    counts = sec.offsets[1:] - sec.offsets[:-1]
    fans = (counts - 2).clamp(min=0)
    poly, k = ragged_arange(fans)
    start = sec.offsets[:-1][poly]
    tri = torch.stack([start, start + k + 1, start + k + 2], 1).cpu().numpy()
    tri = label[tri]
    ok = (tri[:, 0] != tri[:, 1]) & (tri[:, 1] != tri[:, 2]) & (tri[:, 0] != tri[:, 2])
    return SurfaceMesh(sec.verts.cpu().numpy()[first], tri[ok], sec.parent[poly].cpu().numpy()[ok])


def complex_counts(cells: Polyhedra, merge_tol: float) -> tuple[int, int]:
    """(vertices, edges) of the cell complex: the cells' vertices merged within ``merge_tol``,
    and the distinct pairs of merged vertices that span an edge of some cell (share two faces)."""
    label, first = merge_points(cells.verts.cpu().numpy(), merge_tol)
    owner = cells.owner()
    pair_cell, k = ragged_arange(cells.counts[owner])  # every ordered pair of vertices of a cell
    i = pair_cell
    j = cells.offsets[:-1][owner[i]] + k
    shared = cells.incidence[i] & cells.incidence[j]
    edge = (i < j) & ((shared & (shared - 1)) != 0)
    ends = np.sort(label[torch.stack([i[edge], j[edge]], 1).cpu().numpy()], axis=1)
    ends = ends[ends[:, 0] != ends[:, 1]]
    return len(first), len(np.unique(ends, axis=0))
