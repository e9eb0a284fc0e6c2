"""One slice in tiles: cut the slice polygon into convex tiles, partition each tile (anywhere:
see :mod:`splinecam.distributed`), and merge the pieces back into the partition of the slice.

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

import time
from dataclasses import dataclass

import numpy as np
import torch

from .distributed import TASK_LOCK, executor_scope, one_thread, run_tasks
from .engine import RegionLimitError
from .geometry import polygon_areas
from .partition import Partition, default_device, partition
from .geometry import ragged_arange
from .regions import LayerInfo, RegionArrays, concat_regions, unpack_codes, vertex_means
from .slices import Slice
from .trace import prepare

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


def _tile_task(model, tile: Slice, options: dict) -> tuple[RegionArrays, list[LayerInfo]]:
    with TASK_LOCK, one_thread():
        part = partition(model, tile, **options)
    return part.arrays, part.layers


def partition_tiled(model, sl: Slice, tiles, executor, dtype, device, progress, **options) -> Partition:
    """:func:`splinecam.partition` with ``tiles`` and ``executor`` (see there): the tiles'
    partitions run on the executor and are merged into the partition of ``sl``."""
    start = time.perf_counter()
    grid = Grid.over(sl.polygon, 1 if tiles is None else tiles)
    cells = grid.cells(sl.polygon)
    device = default_device(model) if device is None else device
    twin, graph = prepare(model, dtype, device, sl.input_shape)  # fails early, here, on unsupported models
    options = {**options, "dtype": dtype, "device": device, "progress": False}
    jobs = [(model, Slice(sl.origin, sl.basis, cell), options) for _, cell in cells]
    names = [f"tile {index} of the {len(grid.u) - 1} x {len(grid.v) - 1} tiles" for index, _ in cells]
    with executor_scope(executor) as client:
        results = run_tasks(client, _tile_task, jobs, names, progress, "tiles")
    layers = results[0][1]
    merged = merge([index for index, _ in cells], [arrays for arrays, _ in results], layers, grid, sl)
    if options["max_regions"] is not None and len(merged.offsets) - 1 > options["max_regions"]:
        raise RegionLimitError(f"the partition has {len(merged.offsets) - 1:,} regions, more than max_regions="
                               f"{options['max_regions']:,}; use a smaller slice or pass a larger max_regions.")
    return Partition(merged, sl, layers, seconds=time.perf_counter() - start, model=twin, graph=graph)


# -- the merge ------------------------------------------------------------------------------


def merge(cells: list[tuple[int, int]], parts: list[RegionArrays], layers: list[LayerInfo], grid: Grid,
          sl: Slice) -> RegionArrays:
    """Merge the partitions ``parts`` (their regions, whose codes have the layers ``layers``) of
    the tiles ``cells`` ((column, row) each) of ``grid``.

    Only the pieces with an edge on a seam can belong to a region cut by the seams; every
    other piece is a whole region already."""
    pieces = concat_regions(parts)
    counts = np.diff(pieces.offsets)
    owner = np.repeat(np.arange(len(counts)), counts)
    nxt = np.arange(1, len(pieces.vertices) + 1)
    nxt[pieces.offsets[1:] - 1] = pieces.offsets[:-1]
    scale = float(np.ptp(sl.polygon, axis=0).max())
    edge, axis, line = _seams(pieces, nxt, grid, _SEAM_RTOL * scale)
    group = _groups(pieces.packed_codes, np.unique(owner[edge]))
    n_groups = int(group.max()) + 1 if len(group) else 0

    # a seam edge is interior when its region has pieces on both sides of its grid line
    cell = np.repeat(np.array(cells, dtype=np.int64).reshape(-1, 2), [len(p.offsets) - 1 for p in parts], axis=0)
    touched = group[np.unique(owner[edge])]
    lo = np.full((n_groups, 2), np.iinfo(np.int64).max)
    hi = np.full((n_groups, 2), -1)
    np.minimum.at(lo, group[owner[edge]], cell[owner[edge]])
    np.maximum.at(hi, group[owner[edge]], cell[owner[edge]])
    g = group[owner[edge]]
    interior = (lo[g, axis] < line) & (line <= hi[g, axis])
    labels = pieces.edge_units.copy()
    outer = ~interior
    if outer.any():
        labels[edge[outer]] = _seam_labels(outer, edge, axis, line, pieces, layers, nxt, owner, group,
                                           _SEAM_RTOL * scale)

    size = np.bincount(group, minlength=n_groups)
    merged = np.zeros(n_groups, bool)
    merged[touched[size[touched] > 1]] = True
    keep = merged[group[owner]]
    keep[edge[interior]] = False
    m_verts, m_labels, m_group = _outlines(pieces.vertices[keep], labels[keep], group[owner[keep]], _CORNER_RTOL * scale)
    return _assemble(pieces, labels, group, merged, m_verts, m_labels, m_group)


def _ranges(start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """The concatenated index ranges ``start[i] : start[i] + count[i]``."""
    group, pos = (x.numpy() for x in ragged_arange(torch.as_tensor(count)))
    return start[group] + pos


def _groups(codes: np.ndarray, touched: np.ndarray) -> np.ndarray:
    """(P,) region of each piece, numbered in the order of their first piece: the pieces
    ``touched`` (sorted) with equal packed codes (P, bytes) share one, the others are alone."""
    key = np.arange(len(codes))
    if touched.size:
        width = codes.shape[1]
        if width:
            sub = np.ascontiguousarray(codes[touched]).view(np.dtype((np.void, width))).ravel()
            _, first, inverse = np.unique(sub, return_index=True, return_inverse=True)
            key[touched] = touched[first][inverse.ravel()]
        else:  # no piecewise-linear layer: one region
            key[touched] = touched[0]
    return np.unique(key, return_inverse=True)[1].ravel()


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


def _seam_labels(outer, edge, axis, line, pieces: RegionArrays, layers: list[LayerInfo], nxt, owner, group,
                 tol) -> np.ndarray:
    """(n, 2) (layer, unit) of the seam edges ``edge[outer]`` (n = outer.sum()) that stay on a
    region's boundary: the first unit, in the earliest layer, whose code differs between the
    region and the one across the seam (the unit whose line the untiled run cut along).
    edge, axis, line: all seam edges (E,) as returned by :func:`_seams`; outer: (E,) bool."""
    along = 1 - axis  # the coordinate that runs along the seam
    t0, t1 = pieces.vertices[edge, along], pieces.vertices[nxt[edge], along]
    widths = np.array([layer.bits for layer in layers])
    ends = np.cumsum(widths)
    out = []
    for k in np.flatnonzero(outer):
        overlap = np.minimum(max(t0[k], t1[k]), np.maximum(t0, t1)) - np.maximum(min(t0[k], t1[k]), np.minimum(t0, t1))
        across = edge[(axis == axis[k]) & (line == line[k]) & ((t1 - t0) * (t1[k] - t0[k]) < 0) & (overlap > tol)
                      & (group[owner[edge]] != group[owner[edge[k]]])]
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


def _assemble(pieces: RegionArrays, labels, group, merged, m_verts, m_labels, m_group) -> RegionArrays:
    """The merged partition: regions in the order of their first piece; a region of one piece
    as it is (with its seam labels), a ``merged`` (G,) one from its outline (``m_*``, by group)
    with the map of its largest piece and the output at its own centroid."""
    n_groups = len(merged)
    counts = np.diff(pieces.offsets)
    piece = np.unique(group, return_index=True)[1]  # the first piece of each region
    parts = np.flatnonzero(merged[group])  # the pieces of merged regions, and the largest of each
    if parts.size:
        areas = polygon_areas(pieces.vertices[_ranges(pieces.offsets[parts], counts[parts])],
                              np.r_[0, np.cumsum(counts[parts])])
        order = np.lexsort((-areas, group[parts]))
        first = order[np.r_[True, group[parts][order][1:] != group[parts][order][:-1]]]
        piece[group[parts][first]] = parts[first]

    m_count = np.bincount(m_group, minlength=n_groups)
    start = np.where(merged, len(pieces.vertices) + np.cumsum(m_count) - m_count, pieces.offsets[piece])
    count = np.where(merged, m_count, counts[piece])
    idx = _ranges(start, count)
    outputs = pieces.centroid_outputs[piece].copy()
    m = np.flatnonzero(merged)
    if m.size:  # the output at the merged centroid, from the piece's centroid: both local
        piece_centroid = vertex_means(pieces.vertices[_ranges(pieces.offsets[piece[m]], counts[piece[m]])],
                                      np.r_[0, np.cumsum(counts[piece[m]])])
        centroid = vertex_means(m_verts, np.r_[0, np.cumsum(m_count[m])])  # m_verts: the merged ones, in order
        outputs[m] += np.einsum("rkj,rj->rk", pieces.affine[piece[m], :, :2], centroid - piece_centroid)
    return RegionArrays(np.concatenate([pieces.vertices, m_verts])[idx], np.r_[0, np.cumsum(count)],
                        np.concatenate([labels, m_labels])[idx], pieces.affine[piece], pieces.packed_codes[piece], outputs)
