"""A partition as a planar mesh: shared vertices, whole shared edges, half-edges.

A :class:`~splinecam.Partition` stores each region's polygon on its own.  Here the regions
become one planar subdivision of the slice: every vertex is stored once however many
regions meet there, an edge of one region that ends in the middle of a neighbour's edge
(a T-junction) splits that edge, so that neighbours share whole edges, and each region's
boundary is a cycle of half-edges (``next``, ``twin``).  For a complete partition of the
convex slice, Euler's formula V - E + R = 1 holds.

Coincident vertices are found by distance: two polygon corners are one vertex when they
lie within ``1e-12`` of the slice size, or within ``1e-9`` of it and on the same two lines
(the same pair of edge units meets there).  Everything is vectorised NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components

from ..geometry import ragged_arange
from ..geometry.surface import LOOSE, merge_points  # LOOSE is also the collinearity slack

__all__ = ["PlanarMesh", "build_mesh", "cycle_next", "group_pairs", "merge_points", "mesh_of_polygons"]



@dataclass(frozen=True)
class PlanarMesh:
    """The planar subdivision of R regions: V vertices, E edges, H half-edges.

    vertices: (V, 2) slice coordinates, each vertex once;
    edges: (E, 2) vertex ids; edge_regions: (E, 2) the region left of ``edges[e, 0] ->
    edges[e, 1]`` and the one right of it (-1 outside the slice or, in a partial
    partition, where no region was computed); edge_units: (E, 2) the (layer, unit) whose
    line carries the edge, (-1, -1) on the slice border.
    Half-edges, region by region, each region's counter-clockwise: offsets (R + 1,) (region
    r owns half-edges ``offsets[r]:offsets[r + 1]``); half_origin (H,) its first vertex;
    half_twin (H,) the opposite half-edge (-1 without one); half_next (H,) the next one
    around its region; half_region (H,); half_edge (H,) its edge.
    """

    vertices: np.ndarray
    edges: np.ndarray
    edge_regions: np.ndarray
    edge_units: np.ndarray
    offsets: np.ndarray
    half_origin: np.ndarray
    half_twin: np.ndarray
    half_next: np.ndarray
    half_region: np.ndarray
    half_edge: np.ndarray

    @property
    def n_vertices(self) -> int:
        return len(self.vertices)

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    @property
    def n_regions(self) -> int:
        return len(self.offsets) - 1

    @property
    def euler_characteristic(self) -> int:
        """V - E + R (1 for a complete partition of the convex slice)."""
        return self.n_vertices - self.n_edges + self.n_regions

    @property
    def edge_lengths(self) -> np.ndarray:
        """(E,) edge lengths."""
        return np.linalg.norm(self.vertices[self.edges[:, 1]] - self.vertices[self.edges[:, 0]], axis=1)

    @property
    def interior(self) -> np.ndarray:
        """(E,) bool: the edge has a region on each side."""
        return (self.edge_regions >= 0).all(1)

    def region_edges(self, r: int) -> np.ndarray:
        """The edges of region r, counter-clockwise."""
        return self.half_edge[self.offsets[r] : self.offsets[r + 1]]

    def region_vertices(self, r: int) -> np.ndarray:
        """The vertex ids of region r, counter-clockwise (T-junctions included)."""
        return self.half_origin[self.offsets[r] : self.offsets[r + 1]]

    def adjacency(self) -> csr_matrix:
        """(R, R) symmetric sparse matrix: entry (r, s) is the length of the edges r and s share."""
        inner = self.interior
        a, b = self.edge_regions[inner].T
        w = self.edge_lengths[inner]
        n = self.n_regions
        return coo_matrix((np.r_[w, w], (np.r_[a, b], np.r_[b, a])), shape=(n, n)).tocsr()

    def __repr__(self) -> str:
        return f"PlanarMesh({self.n_vertices:,} vertices, {self.n_edges:,} edges, {self.n_regions:,} regions)"


def build_mesh(part) -> PlanarMesh:
    """The planar mesh of a partition's regions (coarse cells included); see :class:`PlanarMesh`."""
    a = part.arrays
    return mesh_of_polygons(a.vertices, a.offsets, a.edge_units, slice_scale(part.slice))


def slice_scale(sl) -> float:
    """The size of a slice's polygon for the tolerances: its largest half-extent about its centre,
    but at least 1e-3 of the centre's distance from 0 (coordinates round relative to that)."""
    centre = sl.polygon.mean(0)
    return float(max(np.abs(sl.polygon - centre).max(), 1e-3 * np.abs(centre).max()))


def mesh_of_polygons(vertices: np.ndarray, offsets: np.ndarray, units: np.ndarray, scale: float) -> PlanarMesh:
    """The planar mesh of ragged counter-clockwise convex polygons (N, 2) / (R + 1,) that tile
    a convex domain of size ``scale``; units (N, 2): the (layer, unit) of the edge from each
    vertex to the next, (-1, -1) on the domain border."""
    n_regions = len(offsets) - 1
    region = np.repeat(np.arange(n_regions), np.diff(offsets))
    nxt = cycle_next(np.diff(offsets))
    code = _unit_codes(units)
    lines = np.sort(np.stack([code[_previous(nxt)], code], 1), axis=1)  # the two lines at each corner
    ids, verts = merge_points(vertices, scale, lines)
    origin, dest = ids, ids[nxt]
    keep = origin != dest  # an edge shorter than the merge distance is no edge
    origin, region, units, border = origin[keep], region[keep], units[keep], code[keep] < 0
    counts = np.bincount(region, minlength=n_regions)
    dest = origin[cycle_next(counts)]
    twin = _twins(origin, dest, border, len(verts))
    loose = ~border & (twin < 0)
    if loose.any():  # T-junctions: split the unmatched edges at the vertices inside them
        origin, region, units, border = _split_t_junctions(origin, dest, region, units, border, loose, verts, scale)
        counts = np.bincount(region, minlength=n_regions)
        dest = origin[cycle_next(counts)]
        twin = _twins(origin, dest, border, len(verts))
    return _assemble(verts, origin, dest, twin, region, units, counts)


def _unit_codes(units: np.ndarray) -> np.ndarray:
    """(N,) one int per (layer, unit) pair (N, 2); -1 on the border."""
    width = int(units[:, 1].max(initial=0)) + 1
    return np.where(units[:, 0] < 0, -1, units[:, 0] * width + units[:, 1])


def _previous(nxt: np.ndarray) -> np.ndarray:
    prev = np.empty_like(nxt)
    prev[nxt] = np.arange(len(nxt))
    return prev


def cycle_next(counts: np.ndarray) -> np.ndarray:
    """(H,) the index of the next element around each cycle, for cycles of sizes ``counts`` stored
    one after another."""
    starts = np.cumsum(counts) - counts
    nxt = np.arange(int(counts.sum())) + 1
    full = counts > 0
    nxt[(starts + counts - 1)[full]] = starts[full]
    return nxt


def _twins(origin: np.ndarray, dest: np.ndarray, border: np.ndarray, n_vertices: int) -> np.ndarray:
    """(H,) the half-edge dest -> origin of each half-edge origin -> dest, -1 where there is none
    (and on the border)."""
    key = origin * n_vertices + dest
    order = np.argsort(key, kind="stable")
    want = dest * n_vertices + origin
    at = np.minimum(np.searchsorted(key[order], want), max(len(key) - 1, 0))
    found = (key[order][at] == want) & ~border if len(key) else np.zeros(0, bool)
    return np.where(found, order[at], -1)


def group_pairs(keys: np.ndarray) -> np.ndarray:
    """(P, 2) all pairs (i, j), i < j in sort order, of the entries of ``keys`` (n,) with equal keys."""
    order = np.argsort(keys, kind="stable")
    k = keys[order]
    start = np.r_[0, np.flatnonzero(k[1:] != k[:-1]) + 1]
    size = np.diff(np.r_[start, len(k)])
    rank = np.arange(len(k)) - np.repeat(start, size)
    partners = np.repeat(size, size) - 1 - rank
    first, step = (t.numpy() for t in ragged_arange(torch.from_numpy(partners)))
    return np.stack([order[first], order[first + step + 1]], 1)


def _split_t_junctions(origin, dest, region, units, border, loose, verts, scale):
    """Split each unmatched half-edge at the vertices of the collinear half-edges across it.

    The unmatched half-edges on one line form chains joined at shared vertices; each is cut at
    every vertex of its chain that lies strictly inside it (in order along the line).
    Returns the new (origin, region, units, border), half-edges still region by region.
    """
    u = np.flatnonzero(loose)
    ends = np.stack([origin[u], dest[u]], 1)
    inc = group_pairs(ends.reshape(-1))  # pairs of incidences at one vertex
    h1, h2 = inc[:, 0] // 2, inc[:, 1] // 2
    a, b = verts[ends[:, 0]], verts[ends[:, 1]]
    length = np.linalg.norm(b - a, axis=1)
    longer = np.where(length[h1] >= length[h2], h1, h2)
    shorter = np.where(longer == h1, h2, h1)
    d = (b - a)[longer] / length[longer, None]

    def off_line(p):
        q = p - a[longer]
        return np.abs(q[:, 0] * d[:, 1] - q[:, 1] * d[:, 0])

    together = np.maximum(off_line(a[shorter]), off_line(b[shorter])) <= LOOSE * scale
    sel = inc[together] // 2
    n_chains, chain = connected_components(coo_matrix((np.ones(len(sel)), (sel[:, 0], sel[:, 1])),
                                                      shape=(len(u), len(u))), directed=False)
    # each chain's direction: that of its longest half-edge
    lead = np.lexsort((-length, chain))
    lead = lead[np.r_[True, chain[lead][1:] != chain[lead][:-1]]]
    direction = (b - a)[lead] / length[lead, None]
    # the vertices of each chain, in order along it
    cv = np.unique(np.stack([np.repeat(chain, 2), ends.reshape(-1)], 1), axis=0)
    t = np.einsum("ij,ij->i", verts[cv[:, 1]] - a[lead][cv[:, 0]], direction[cv[:, 0]])
    order = np.lexsort((t, cv[:, 0]))
    key = cv[:, 0] * len(verts) + cv[:, 1]  # sorted (np.unique)
    rank = np.empty(len(cv), np.int64)
    rank[order] = np.arange(len(cv))
    along = cv[order, 1]
    ia = rank[np.searchsorted(key, chain * len(verts) + ends[:, 0])]
    ib = rank[np.searchsorted(key, chain * len(verts) + ends[:, 1])]
    pieces = np.abs(ib - ia)
    step = np.sign(ib - ia)
    # a vertex inside must lie on the half-edge itself (a safeguard against a bent chain)
    owner, k = (x.numpy() for x in ragged_arange(torch.from_numpy(pieces)))
    inner = along[ia[owner] + k * step[owner]]
    bad = np.zeros(len(u), bool)
    q = verts[inner] - a[owner]
    e = (b - a)[owner] / length[owner, None]
    np.logical_or.at(bad, owner, np.abs(q[:, 0] * e[:, 1] - q[:, 1] * e[:, 0]) > LOOSE * scale)
    pieces[bad] = 1
    count = np.ones(len(origin), np.int64)
    count[u] = pieces
    src, k = (x.numpy() for x in ragged_arange(torch.from_numpy(count)))
    new_origin = origin[src].copy()
    split = np.flatnonzero(loose[src] & (k > 0))
    su = np.searchsorted(u, src[split])
    new_origin[split] = along[ia[su] + k[split] * step[su]]
    return new_origin, region[src], units[src], border[src]


def _assemble(verts, origin, dest, twin, region, units, counts) -> PlanarMesh:
    """The :class:`PlanarMesh` of half-edges with their twins found."""
    h = len(origin)
    rep = (twin < 0) | (np.arange(h) < twin)  # one half-edge stands for each edge
    edge_of_rep = np.cumsum(rep) - 1
    half_edge = np.where(rep, edge_of_rep, edge_of_rep[np.maximum(twin, 0)])
    r = np.flatnonzero(rep)
    right = np.where(twin[r] >= 0, region[np.maximum(twin[r], 0)], -1)
    offsets = np.r_[0, np.cumsum(counts)].astype(np.int64)
    return PlanarMesh(verts, np.stack([origin[r], dest[r]], 1), np.stack([region[r], right], 1), units[r].copy(),
                      offsets, origin, twin, cycle_next(counts), region, half_edge)
