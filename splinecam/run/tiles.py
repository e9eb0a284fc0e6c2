"""One slice in tiles: the grid that cuts the slice polygon into convex tiles, and the exact merge
of the tiles' regions back into the regions of the slice (:func:`splinecam.partition` runs the
tiles, anywhere: see :mod:`splinecam.run.executors`).

A tile is the slice's own chart (same origin and basis, so the same ``uv``) over a convex
polygon: one cell of a ``ku x kv`` grid over the slice polygon's bounding box, clipped to it.
Within a slice every activation pattern is one convex region, so the pieces (over all tiles)
that share a code are the pieces of one region and their union is convex.  The merge:

- a piece edge on a grid line (a *seam*) with pieces of the same region on both sides of that
  line is interior to the region; every other piece edge is on the region's boundary;
- the region's polygon: the start points of its boundary edges in counter-clockwise order,
  dropping the points that are not corners (collinear, within a tolerance scaled to the slice);
- a seam edge that stays on a region's boundary lies along a unit line.  Its label is the
  (layer, unit) the untiled run gives it: the first unit, in the earliest layer, whose code
  differs between the region and the region across the seam (the engine cuts layer by
  layer, each layer's lines in unit order, so of duplicate units the lowest carries the edge);
- the affine map is the largest piece's (the pieces' maps agree up to rounding); the output
  at the merged region's centroid is computed from it, relative to the piece.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..geometry import polygon_areas, ragged_arange
from ..slices import Slice
from .regions import LayerInfo, RegionArrays, concat_regions, unpack_codes, vertex_means

__all__ = ["Grid", "merge"]

_SEAM_RTOL = 1e-9  # an edge is on a grid line within this fraction of the slice size
_CORNER_RTOL = 1e-10  # a point closer than this (fraction of the slice size) to a line through its neighbours is no corner


# -- tiles ------------------------------------------------------------------------------


@dataclass
class Grid:
    """Grid lines ``u (ku + 1,)`` and ``v (kv + 1,)`` over a bounding box."""

    u: np.ndarray
    v: np.ndarray

    @classmethod
    def over(cls, polygon: np.ndarray, tiles) -> "Grid":
        """A ``tiles`` grid (an int k for k x k, or a pair (ku, kv)) over the bounding box of ``polygon``."""
        ks = (tiles, tiles) if isinstance(tiles, (int, np.integer)) else tiles
        ks = tuple(ks) if isinstance(ks, (tuple, list)) else ()
        if len(ks) != 2 or not all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) and k >= 1 for k in ks):
            raise ValueError(f"tiles must be a positive integer k (a k x k grid) or a pair (ku, kv), got {tiles!r}.")
        ku, kv = ks
        lo, hi = polygon.min(0), polygon.max(0)
        lines = [np.r_[lo[d], lo[d] + (hi[d] - lo[d]) * np.arange(1, k) / k, hi[d]] for d, k in ((0, ku), (1, kv))]
        return cls(*lines)

    def cells(self, polygon: np.ndarray) -> list[tuple[tuple[int, int], np.ndarray]]:
        """((column, row), (m, 2) polygon) of every cell clipped to ``polygon`` that has area."""
        total = _area(polygon)
        out = []
        for i in range(len(self.u) - 1):
            strip = _clip(_clip(polygon, 0, self.u[i], -1), 0, self.u[i + 1], 1)
            for j in range(len(self.v) - 1):
                cell = _clip(_clip(strip, 1, self.v[j], -1), 1, self.v[j + 1], 1)
                if len(cell) >= 3 and _area(cell) > 1e-12 * total:
                    out.append(((i, j), cell))
        return out


def _area(poly: np.ndarray) -> float:
    return float(polygon_areas(poly, np.array([0, len(poly)]))[0])


def _clip(poly: np.ndarray, axis: int, value: float, sign: int) -> np.ndarray:
    """The part of the convex polygon ``poly`` (n, 2) where ``sign * (x[axis] - value) <= 0``;
    the points it adds lie exactly on the line ``x[axis] = value``."""
    out = []
    for p, q in zip(poly, np.roll(poly, -1, axis=0)):
        sp, sq = sign * (p[axis] - value), sign * (q[axis] - value)
        if sp <= 0:
            out.append(p)
        if sp * sq < 0:
            m = p + sp / (sp - sq) * (q - p)
            m[axis] = value
            out.append(m)
    return np.array(out, dtype=np.float64).reshape(-1, 2)


# -- the merge ------------------------------------------------------------------------------


def merge(cells: list[tuple[int, int]], parts: list[RegionArrays], layers: list[LayerInfo], grid: Grid,
          sl: Slice) -> RegionArrays:
    """Merge the partitions ``parts`` (their regions, whose codes have the layers ``layers``) of
    the tiles ``cells`` ((column, row) each) of ``grid``: the whole regions (pieces alone in
    their region) in order, then the merged ones.

    Only the pieces with an edge on a seam can belong to a region cut by the seams; every
    other piece is a whole region already, so the grouping looks at those pieces only."""
    pieces = concat_regions(parts)
    counts = np.diff(pieces.offsets)
    owner = np.repeat(np.arange(len(counts)), counts)
    nxt = np.arange(1, len(pieces.vertices) + 1)
    nxt[pieces.offsets[1:] - 1] = pieces.offsets[:-1]
    scale = float(np.ptp(sl.polygon, axis=0).max())
    edge, axis, line = _seams(pieces, nxt, grid, _SEAM_RTOL * scale)
    seam_pieces = np.unique(owner[edge])  # (S,) sorted
    group, n_groups = _groups(pieces.packed_codes[seam_pieces])  # (S,) region of each seam piece
    edge_group = group[np.searchsorted(seam_pieces, owner[edge])]

    # a seam edge is interior when its region has pieces on both sides of its grid line
    cell = np.repeat(np.array(cells, dtype=np.int64).reshape(-1, 2), [len(p.offsets) - 1 for p in parts], axis=0)
    lo = np.full((n_groups, 2), np.iinfo(np.int64).max)
    hi = np.full((n_groups, 2), -1)
    np.minimum.at(lo, edge_group, cell[owner[edge]])
    np.maximum.at(hi, edge_group, cell[owner[edge]])
    interior = (lo[edge_group, axis] < line) & (line <= hi[edge_group, axis])
    labels = pieces.edge_units.copy()
    outer = ~interior
    if outer.any():
        labels[edge[outer]] = _seam_labels(outer, edge, axis, line, edge_group, pieces, layers, nxt, owner,
                                           _SEAM_RTOL * scale)

    # the regions of more than one piece, numbered 0..M-1, and their pieces
    several = np.bincount(group, minlength=n_groups) > 1
    merged_id = np.cumsum(several) - 1
    split = several[group]
    parts_of = seam_pieces[split]  # (Q,) pieces of merged regions, and their region
    region_of = merged_id[group[split]]
    whole = np.ones(len(counts), bool)
    whole[parts_of] = False
    vertex = _ranges(pieces.offsets[parts_of], counts[parts_of])  # their vertices, but the interior seam edges
    keep = np.ones(len(pieces.vertices), bool)
    keep[edge[interior]] = False
    vertex = vertex[keep[vertex]]
    m_verts, m_labels, m_region = _outlines(pieces.vertices[vertex], labels[vertex], region_of[np.searchsorted(
        parts_of, owner[vertex])] if len(parts_of) else np.zeros(0, np.int64), _CORNER_RTOL * scale)
    return _assemble(pieces, labels, whole, parts_of, region_of, m_verts, m_labels, m_region)


def _ranges(start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """The concatenated index ranges ``start[i] : start[i] + count[i]``."""
    group, pos = (x.numpy() for x in ragged_arange(torch.as_tensor(count)))
    return start[group] + pos


def _polygons(pieces: RegionArrays, counts: np.ndarray, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The vertices (N', 2) and offsets (len(which) + 1,) of the pieces ``which``."""
    return pieces.vertices[_ranges(pieces.offsets[which], counts[which])], np.r_[0, np.cumsum(counts[which])]


def _groups(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """(S,) region of each piece, pieces with equal packed codes (S, bytes) sharing one, and
    the number of regions."""
    if not len(codes):
        return np.zeros(0, np.int64), 0
    if not codes.shape[1]:  # no piecewise-linear layer: one region
        return np.zeros(len(codes), np.int64), 1
    keys = np.ascontiguousarray(codes).view(np.dtype((np.void, codes.shape[1]))).ravel()
    _, inverse = np.unique(keys, return_inverse=True)
    inverse = inverse.ravel()
    return inverse, int(inverse.max()) + 1


def _seams(pieces: RegionArrays, nxt: np.ndarray, grid: Grid, tol: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The piece edges on a seam (E,): tile borders (label -1) on an interior grid line, with the
    line's axis (E,) (0: u = const, 1: v = const) and index (E,) in ``grid.u`` or ``grid.v``."""
    border = np.flatnonzero(pieces.edge_units[:, 0] < 0)
    a, b = pieces.vertices[border], pieces.vertices[nxt[border]]
    axis = np.full(len(border), -1)
    index = np.zeros(len(border), dtype=np.int64)
    for d, lines in enumerate((grid.u, grid.v)):
        inner = lines[1:-1]
        if not inner.size:
            continue
        above = np.minimum(np.searchsorted(inner, a[:, d]), len(inner) - 1)
        below = np.maximum(above - 1, 0)
        j = np.where(np.abs(a[:, d] - inner[below]) < np.abs(a[:, d] - inner[above]), below, above)
        on = (np.abs(a[:, d] - inner[j]) <= tol) & (np.abs(b[:, d] - inner[j]) <= tol)
        axis[on], index[on] = d, j[on] + 1
    on = axis >= 0
    return border[on], axis[on], index[on]


def _seam_labels(outer, edge, axis, line, edge_group, pieces: RegionArrays, layers: list[LayerInfo], nxt, owner,
                 tol) -> np.ndarray:
    """(n, 2) (layer, unit) of the seam edges ``edge[outer]`` (n = outer.sum()) that stay on a
    region's boundary: the first unit, in the earliest layer, whose code differs between the
    region and the one across the seam (the unit whose line the untiled run cut along).
    edge, axis, line: all seam edges (E,) as returned by :func:`_seams`, edge_group (E,) their
    regions; outer: (E,) bool."""
    along = 1 - axis  # the coordinate that runs along the seam
    t0, t1 = pieces.vertices[edge, along], pieces.vertices[nxt[edge], along]
    widths = np.array([layer.bits for layer in layers])
    ends = np.cumsum(widths)
    out = []
    for k in np.flatnonzero(outer):
        overlap = np.minimum(max(t0[k], t1[k]), np.maximum(t0, t1)) - np.maximum(min(t0[k], t1[k]), np.minimum(t0, t1))
        across = edge[(axis == axis[k]) & (line == line[k]) & ((t1 - t0) * (t1[k] - t0[k]) < 0) & (overlap > tol)
                      & (edge_group != edge_group[k])]
        if not across.size:
            raise RuntimeError("internal error: a tile seam edge has no region across it; please report it.")
        bits = unpack_codes(pieces.packed_codes[[owner[edge[k]], owner[across[0]]]], layers)
        d = int(np.argmax(bits[0] != bits[1]))
        layer = int(np.searchsorted(ends, d, side="right"))
        out.append((layer, (d - ends[layer] + widths[layer]) // (widths[layer] // layers[layer].units)))
    return np.array(out, dtype=pieces.edge_units.dtype)

def _outlines(starts: np.ndarray, labels: np.ndarray, group: np.ndarray, tol: float):
    """Merged polygons from the start points (M, 2) of their boundary edges, with the edges'
    labels (M, 2) and regions (M,): counter-clockwise by angle about the points' mean, without
    repeated points and points that are not corners.  Returns (verts, labels, group), by group."""
    n = int(group.max()) + 1 if len(group) else 0
    count = np.bincount(group, minlength=n)
    center = np.stack([np.bincount(group, starts[:, d], n) for d in (0, 1)], 1) / np.maximum(count, 1)[:, None]
    rel = starts - center[group]
    order = np.lexsort((np.arctan2(rel[:, 1], rel[:, 0]), group))
    pts, labels, group = starts[order], labels[order], group[order]
    prev, nxt = _ring(group)
    repeated = np.linalg.norm(pts[nxt] - pts, axis=1) <= tol  # keep the last of a cluster: its edge leaves it
    pts, labels, group = pts[~repeated], labels[~repeated], group[~repeated]
    prev, nxt = _ring(group)
    d_in, d_out = pts - pts[prev], pts[nxt] - pts
    cross = d_in[:, 0] * d_out[:, 1] - d_in[:, 1] * d_out[:, 0]
    shorter = np.minimum(np.linalg.norm(d_in, axis=1), np.linalg.norm(d_out, axis=1))
    corner = np.abs(cross) > tol * shorter  # the far end of one edge is off the other edge's line
    return pts[corner], labels[corner], group[corner]


def _ring(group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Previous and next index (M,) within each run of equal ``group`` (sorted), cyclically."""
    idx = np.arange(len(group))
    first = np.r_[True, group[1:] != group[:-1]]
    last = np.r_[group[1:] != group[:-1], True]
    start = np.maximum.accumulate(np.where(first, idx, 0))
    stop = np.minimum.accumulate(np.where(last, idx, len(group))[::-1])[::-1]
    return np.where(first, stop, idx - 1), np.where(last, start, idx + 1)


def _assemble(pieces: RegionArrays, labels, whole, parts_of, region_of, m_verts, m_labels, m_region) -> RegionArrays:
    """The merged partition: the ``whole`` (P,) bool pieces as they are (with their seam
    ``labels`` (N, 2)), then each merged region (the pieces ``parts_of`` (Q,) of the regions
    ``region_of`` (Q,)) from its outline (``m_*``, by region) with the map of its largest piece
    and the output at its own centroid."""
    counts = np.diff(pieces.offsets)
    n_merged = int(region_of.max()) + 1 if len(region_of) else 0
    largest = np.zeros(n_merged, np.int64)  # the largest piece of each merged region
    if len(parts_of):
        areas = polygon_areas(*_polygons(pieces, counts, parts_of))
        order = np.lexsort((-areas, region_of))
        largest = parts_of[order[np.r_[True, region_of[order][1:] != region_of[order][:-1]]]]
    m_count = np.bincount(m_region, minlength=n_merged)
    outputs = pieces.centroid_outputs[largest]
    if n_merged:  # the output at the merged centroid, from the piece's centroid: both local
        piece_centroid = vertex_means(*_polygons(pieces, counts, largest))
        centroid = vertex_means(m_verts, np.r_[0, np.cumsum(m_count)])
        outputs = outputs + np.einsum("rkj,rj->rk", pieces.affine[largest, :, :2], centroid - piece_centroid)
    kept = np.repeat(whole, counts)

    def rows(a, mask, extra):  # a[mask] then extra; np.compress is several times faster than a[mask]
        n = int(np.count_nonzero(mask))
        out = np.empty((n + len(extra),) + a.shape[1:], a.dtype)
        np.compress(mask, a, axis=0, out=out[:n])
        out[n:] = extra
        return out

    return RegionArrays(rows(pieces.vertices, kept, m_verts), np.r_[0, np.cumsum(rows(counts, whole, m_count))],
                        rows(labels, kept, m_labels), rows(pieces.affine, whole, pieces.affine[largest]),
                        rows(pieces.packed_codes, whole, pieces.packed_codes[largest]),
                        rows(pieces.centroid_outputs, whole, outputs))
