"""Topology read off a partition: the region graph, boundary curves, class regions with holes.

- :func:`to_networkx`: the region adjacency graph; :func:`neighbour_stats` summarises it.
- :func:`curves`: a :class:`~splinecam.Boundary` as connected polylines (open ones end on
  the slice border or at junctions, closed ones repeat their first point), with the class
  pair along each piece and the junctions where three or more classes meet.
- :func:`class_regions`: for each class, the exact region where it wins (the union of its
  argmax cells) as polygons with holes, its area and Betti numbers b0 (components) and b1
  (holes).  Classes of a level set ``f_k = t`` are 0 (``f_k < t``) and 1 (``f_k > t``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..extras import require
from ..geometry import BORDER
from .boundary import class_cells
from .mesh import LOOSE, PlanarMesh, cycle_next, merge_points, mesh_of_polygons, slice_scale

__all__ = ["BoundaryCurves", "ClassRegion", "Curve", "class_regions", "curves", "n_components",
           "neighbour_stats", "to_networkx", "unit_changes"]

_RTOL = 1e-10  # the tolerance of the argmax cells (as for the boundary)
_BLOCK = 1 << 16  # edges whose codes are compared at once


# -- the region graph -------------------------------------------------------------------


def unit_changes(part, mesh: PlanarMesh) -> np.ndarray:
    """(E,) the number of units whose code differs across each edge (-1 on the border)."""
    bits_per_unit = [layer.bits // max(layer.units, 1) for layer in part.layers]
    unit_of_bit = np.concatenate([np.repeat(np.arange(layer.units), b) + sum(x.units for x in part.layers[:i])
                                  for i, (layer, b) in enumerate(zip(part.layers, bits_per_unit))] or [np.zeros(0, int)])
    n_units = int(unit_of_bit.max(initial=-1)) + 1
    out = np.full(mesh.n_edges, -1)
    inner = np.flatnonzero(mesh.interior)
    for s in range(0, len(inner), _BLOCK):
        e = inner[s : s + _BLOCK]
        a, b = mesh.edge_regions[e].T
        diff = part.codes_of(a) != part.codes_of(b)
        per_unit = np.zeros((len(e), n_units), bool)
        rows, bits = np.nonzero(diff)
        per_unit[rows, unit_of_bit[bits]] = True
        out[e] = per_unit.sum(1)
    return out


def neighbour_stats(part) -> dict:
    """Neighbours per region (mean, max) and the mean number of neighbours whose code differs
    from the region's in exactly one unit."""
    mesh = part.mesh()
    inner = mesh.interior
    a, b = mesh.edge_regions[inner].T
    pairs = np.unique(np.stack([np.minimum(a, b), np.maximum(a, b)], 1), axis=0)
    one = unit_changes(part, mesh)[inner] == 1
    one_pairs = np.unique(np.stack([np.minimum(a, b), np.maximum(a, b)], 1)[one], axis=0)
    n = len(part)
    count = np.bincount(pairs.reshape(-1), minlength=n)
    count_one = np.bincount(one_pairs.reshape(-1), minlength=n)
    return {"neighbours_mean": float(count.mean()) if n else float("nan"), "neighbours_max": int(count.max(initial=0)),
            "one_unit_neighbours_mean": float(count_one.mean()) if n else float("nan")}


def to_networkx(part):
    """The region adjacency graph as a ``networkx.Graph``: node r with ``area``, ``cls`` (the
    argmax class at the centroid; for K = 1, whether the output is > 0) and ``code`` (a bytes
    key of the activation pattern); an edge per pair of neighbours with ``length`` (shared) and
    ``units`` (the (layer, unit) pairs of the shared edges)."""
    nx = require("networkx", "topology", "to_networkx")
    mesh = part.mesh()
    out = part.centroid_outputs
    cls = (out[:, 0] > 0).astype(int) if part.n_outputs == 1 else out.argmax(1)
    g = nx.Graph()
    g.add_nodes_from((r, {"area": float(area), "cls": int(c), "code": code.tobytes()})
                     for r, (area, c, code) in enumerate(zip(part.areas, cls, part.arrays.packed_codes)))
    inner = np.flatnonzero(mesh.interior)
    ab = np.sort(mesh.edge_regions[inner], 1)
    pairs, which = np.unique(ab, axis=0, return_inverse=True)
    which = which.reshape(-1)
    length = np.bincount(which, weights=mesh.edge_lengths[inner], minlength=len(pairs))
    units = [set() for _ in pairs]
    for k, unit in zip(which.tolist(), map(tuple, mesh.edge_units[inner].tolist())):
        units[k].add(unit)
    g.add_edges_from((int(a), int(b), {"length": float(w), "units": u}) for (a, b), w, u in zip(pairs, length, units))
    return g


# -- boundary curves --------------------------------------------------------------------


@dataclass(frozen=True)
class Curve:
    """One polyline: points (n, 2) (closed: ``points[0] == points[-1]``); classes (n - 1, 2) the
    class pair along each piece; segments (n - 1,) the boundary segment of each piece."""

    points: np.ndarray
    closed: bool
    classes: np.ndarray
    segments: np.ndarray

    @property
    def length(self) -> float:
        return float(np.linalg.norm(np.diff(self.points, axis=0), axis=1).sum())


@dataclass(frozen=True)
class BoundaryCurves:
    """A boundary as curves: maximal polylines between ends and junctions.

    curves: the :class:`Curve` list; junctions (J, 2) the points where three or more curves
    meet (three classes, for a decision boundary); n_components: connected components of
    the whole boundary."""

    curves: list
    junctions: np.ndarray
    n_components: int

    def __len__(self) -> int:
        return len(self.curves)

    def __iter__(self):
        return iter(self.curves)

    def __getitem__(self, i) -> Curve:
        return self.curves[i]

    @property
    def lengths(self) -> np.ndarray:
        return np.array([c.length for c in self.curves])


def _boundary_graph(db) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The boundary as a graph: (P, 2) vertex ids of its pieces, the (V, 2) vertices and the
    (P,) segment of each piece.  A segment is cut where another one ends inside it (a
    T-junction), so that curves meet at shared vertices."""
    ends = db.segments.reshape(-1, 2)
    scale = slice_scale(db.partition.slice) if db.partition is not None else float(np.abs(ends).max(initial=1.0))
    ids, verts = merge_points(ends, scale, np.zeros((len(ends), 1)))
    ids = ids.reshape(-1, 2)
    lone = np.flatnonzero(np.bincount(ids.reshape(-1), minlength=len(verts)) == 1)
    vert, seg, t = _inside_segments(verts[lone], verts[ids[:, 0]], verts[ids[:, 1]], LOOSE * scale)
    if not len(seg):
        return ids, verts, np.arange(len(ids))
    order = np.lexsort((t, seg))
    vert, seg = lone[vert[order]], seg[order]
    cuts = np.bincount(seg, minlength=len(ids))
    source = np.repeat(np.arange(len(ids)), cuts + 1)
    first = np.r_[0, np.cumsum(cuts + 1)[:-1]]
    start = ids[source, 0].copy()
    stop = ids[source, 1].copy()
    inner = np.ones(len(source), bool)
    inner[first] = False
    start[inner] = vert  # pieces after the first start at a cut, in order along the segment
    last = np.r_[first[1:], len(source)] - 1
    tail = np.ones(len(source), bool)
    tail[last] = False
    stop[tail] = vert
    return np.stack([start, stop], 1), verts, source


def _inside_segments(p: np.ndarray, a: np.ndarray, b: np.ndarray, tol: float):
    """The (point, segment) pairs with point p (n, 2) strictly inside segment a -> b (S, 2)
    (within ``tol`` of it, farther than ``tol`` from its ends), and t (along it, 0 to 1)."""
    found = [np.zeros(0, np.int64)] * 2 + [np.zeros(0)]
    step = max(1, _BLOCK * 16 // max(len(a), 1))
    d = b - a
    length = np.linalg.norm(d, axis=1)
    for s in range(0, len(p), step):
        q = p[s : s + step, None] - a[None]
        t = (q * d).sum(2) / length**2
        off = np.abs(q[..., 0] * d[:, 1] - q[..., 1] * d[:, 0]) / length
        hit = (off <= tol) & (t * length > tol) & ((1 - t) * length > tol)
        i, j = np.nonzero(hit)
        found = [np.r_[found[0], i + s], np.r_[found[1], j], np.r_[found[2], t[i, j]]]
    return found[0].astype(np.int64), found[1].astype(np.int64), found[2]


def n_components(db) -> int:
    """The number of connected components of a boundary's segments."""
    if not len(db):
        return 0
    ids, verts, _ = _boundary_graph(db)
    graph = coo_matrix((np.ones(len(ids)), (ids[:, 0], ids[:, 1])), shape=(len(verts), len(verts)))
    _, comp = connected_components(graph, directed=False)
    return len(np.unique(comp[ids[:, 0]]))


def curves(db) -> BoundaryCurves:
    """The boundary ``db`` as :class:`BoundaryCurves` (lengths sum to ``db.length``)."""
    if not len(db):
        return BoundaryCurves([], np.zeros((0, 2)), 0)
    ids, verts, source = _boundary_graph(db)
    degree = np.bincount(ids.reshape(-1), minlength=len(verts))
    # the segments at each vertex, as a CSR list of (segment, end) incidences
    order = np.argsort(ids.reshape(-1), kind="stable")
    start = np.r_[0, np.cumsum(degree)]
    used = np.zeros(len(ids), bool)
    out = []

    def walk(s, v):  # from vertex v along segment s, on through vertices of degree 2
        seq, pts = [], [verts[v]]
        while not used[s]:
            used[s] = True
            v = ids[s, 1] if ids[s, 0] == v else ids[s, 0]
            seq.append(s)
            pts.append(verts[v])
            if degree[v] != 2:
                break
            inc = order[start[v] : start[v + 1]] // 2
            s = inc[0] if inc[1] == s else inc[1]
        return seq, np.array(pts)

    for v in np.flatnonzero(degree != 2):  # open curves start at ends and junctions
        for s in order[start[v] : start[v + 1]] // 2:
            if not used[s]:
                out.append(walk(s, v))
    for s in range(len(ids)):  # what is left are closed loops
        if not used[s]:
            out.append(walk(s, ids[s, 0]))
    result = [Curve(p, bool(degree[ids[seq[0]]].min() == 2 and np.array_equal(p[0], p[-1]) and len(seq) > 1),
                    db.classes[source[seq]], source[seq]) for seq, p in out]
    return BoundaryCurves(result, verts[degree >= 3], n_components(db))


# -- class regions ----------------------------------------------------------------------


@dataclass(frozen=True)
class ClassRegion:
    """Where one class wins: polygons, each ``(exterior (n, 2), [hole (m, 2), ...])`` with
    the exterior counter-clockwise and the holes clockwise (no repeated closing point); area;
    b0 the number of components; b1 the number of holes."""

    label: int
    polygons: list = field(repr=False)
    area: float
    b0: int
    b1: int

    def to_shapely(self):
        """The region as a ``shapely`` MultiPolygon (shapely is optional)."""
        geometry = require("shapely.geometry", "topology", "to_shapely")
        return geometry.MultiPolygon([geometry.Polygon(ext, holes) for ext, holes in self.polygons])


def class_regions(part, output: int | None = None, level: float | None = None) -> dict:
    """{class: :class:`ClassRegion`} for every class that wins somewhere: for K > 1 (and ``level``
    None) the classes of the argmax; otherwise 0 (``f_output < level``) and 1 (``f_output >
    level``), ``output`` 0 and ``level`` 0 by default.  Needs a full partition (no coarse cells)."""
    if not part.exact.all():
        raise ValueError("class regions need a full partition: this one has coarse cells (boundary-first); "
                         "run splinecam.partition on the model instead.")
    cells = class_cells(part, output, level)
    border = _border_units(cells.vertices, cells.offsets, part.slice)
    mesh = mesh_of_polygons(cells.vertices, cells.offsets, border, slice_scale(part.slice))
    label = cells.label[mesh.half_region]
    twin = mesh.half_twin
    across = np.where(twin >= 0, label[np.maximum(twin, 0)], -1)
    on = np.flatnonzero(across != label)  # half-edges with their class on the left, the other on the right
    nxt = mesh.half_next[on]
    while True:  # turn about the end vertex through cells of the same class
        tw = twin[nxt]
        inside = (tw >= 0) & (label[np.maximum(tw, 0)] == label[on])
        if not inside.any():
            break
        nxt[inside] = mesh.half_next[tw[inside]]
    succ = np.searchsorted(on, nxt)
    out = {}
    for c in np.unique(cells.label):
        mine = np.flatnonzero(label[on] == c)
        rings = _rings(on, succ, mine, mesh)
        areas = np.array([_signed_area(r) for r in rings])
        outer = [r for r, a in zip(rings, areas) if a > 0]
        holes = [r for r, a in zip(rings, areas) if a < 0]
        out[int(c)] = ClassRegion(int(c), _nest(outer, holes), float(cells.areas[cells.label == c].sum()),
                                  len(outer), len(holes))
    return out


def _border_units(vertices: np.ndarray, offsets: np.ndarray, sl) -> np.ndarray:
    """(N, 2) (-1, -1) for the cell edges on the slice border, (0, 0) for the others."""
    nxt = cycle_next(np.diff(offsets))
    poly = sl.polygon
    e = np.roll(poly, -1, axis=0) - poly
    scale = slice_scale(sl)

    def dist(p):  # (N, n) distance to each border line
        d = p[:, None, :] - poly[None]
        return np.abs(e[None, :, 0] * d[..., 1] - e[None, :, 1] * d[..., 0]) / np.linalg.norm(e, axis=1)

    on = (np.maximum(dist(vertices), dist(vertices[nxt])) <= 1e-9 * scale).any(1)
    return np.repeat(np.where(on, BORDER, 0)[:, None], 2, axis=1)


def _rings(on: np.ndarray, succ: np.ndarray, mine: np.ndarray, mesh: PlanarMesh) -> list:
    """The cycles of the successor map ``succ`` over the boundary half-edges ``mine`` (indices
    into ``on``), each as the (n, 2) points of its half-edges' origins."""
    seen = np.zeros(len(on), bool)
    rings = []
    for h in mine:
        if seen[h]:
            continue
        ring = []
        while not seen[h]:
            seen[h] = True
            ring.append(mesh.half_origin[on[h]])
            h = succ[h]
        rings.append(_drop_straight(mesh.vertices[ring]))
    return rings


def _drop_straight(ring: np.ndarray) -> np.ndarray:
    """The ring (n, 2) without vertices where it goes straight on."""
    prev, nxt = np.roll(ring, 1, axis=0), np.roll(ring, -1, axis=0)
    a, b = ring - prev, nxt - ring
    cross = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    straight = (np.abs(cross) <= 1e-12 * np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)) & ((a * b).sum(1) > 0)
    return ring[~straight] if (~straight).sum() >= 3 else ring


def _signed_area(ring: np.ndarray) -> float:
    q = ring - ring[0]
    return 0.5 * float(np.sum(q[:, 0] * np.roll(q[:, 1], -1) - q[:, 1] * np.roll(q[:, 0], -1)))


def _contains(ring: np.ndarray, p: np.ndarray) -> bool:
    """Whether the point p (2,) is inside the ring (n, 2) (crossing number)."""
    a, b = ring, np.roll(ring, -1, axis=0)
    straddle = (a[:, 1] > p[1]) != (b[:, 1] > p[1])
    x = a[:, 0] + (p[1] - a[:, 1]) * (b[:, 0] - a[:, 0]) / np.where(straddle, b[:, 1] - a[:, 1], 1.0)
    return bool(np.sum(straddle & (p[0] < x)) % 2)


def _nest(outer: list, holes: list) -> list:
    """Each outer ring with the holes it holds (a hole goes to the smallest outer ring around it)."""
    areas = np.array([_signed_area(r) for r in outer])
    kept = [[] for _ in outer]
    for hole in holes:
        i = np.argmax(np.linalg.norm(np.roll(hole, -1, axis=0) - hole, axis=1))
        a, b = hole[i], hole[(i + 1) % len(hole)]
        probe = (a + b) / 2 + 1e-6 * np.array([a[1] - b[1], b[0] - a[0]])  # just off the hole, in the class
        around = [k for k, r in enumerate(outer) if _contains(r, probe)]
        if around:
            kept[min(around, key=lambda k: areas[k])].append(hole)
    return [(r, h) for r, h in zip(outer, kept)]
