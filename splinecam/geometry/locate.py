"""Points against a tiling by convex polygons: which polygon holds a point, how far a point
is from a polygon.  CPU, float64, NumPy in and out."""

from __future__ import annotations

import numpy as np
import torch

from .polygons import Polygons, ragged_arange

__all__ = ["RegionGrid", "distance_to_polygons"]


def _edges(polys: Polygons, pts: np.ndarray, regions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For point m (M, 2) against polygon regions[m] (M,): one row per polygon edge, with the
    pair m of the row (E,), the edge vector (E, 2) and the point relative to the edge's start (E, 2)."""
    pair, vert = polys.vertices_of(torch.as_tensor(regions))
    nxt = polys.next_vertex()[vert]
    verts = polys.verts
    pair = pair.numpy()
    e = (verts[nxt] - verts[vert]).numpy()
    d = pts[pair] - verts[vert].numpy()
    return pair, e, d


def distance_to_polygons(polys: Polygons, pts: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """(M,) distance from point pts[m] (M, 2) to polygon regions[m] (0 inside)."""
    pair, e, d = _edges(polys, pts, regions)
    outside = e[:, 0] * d[:, 1] - e[:, 1] * d[:, 0] < 0  # right of a CCW edge
    t = np.clip((d * e).sum(1) / np.maximum((e * e).sum(1), 1e-300), 0.0, 1.0)
    seg_dist = np.linalg.norm(d - t[:, None] * e, axis=1)
    dist = np.full(len(regions), np.inf)
    np.minimum.at(dist, pair, seg_dist)
    any_out = np.bincount(pair, weights=outside, minlength=len(regions)) > 0
    return np.where(any_out, dist, 0.0)


class RegionGrid:
    """A uniform grid of polygon bounding boxes for point location in a tiling."""

    def __init__(self, polys: Polygons):
        self.polys = polys
        verts = polys.verts.numpy()
        lo, hi = (t.numpy() for t in polys.bounding_boxes())
        if not len(verts):  # no polygons (e.g. a run stopped before its first region): an empty box
            verts = np.zeros((1, 2))
        self.lo, self.hi = verts.min(0), verts.max(0)
        n = len(polys)
        self.g = int(np.clip(np.sqrt(n), 1, 2048))
        self.size = np.maximum(self.hi - self.lo, 1e-300) / self.g
        c0, c1 = self._cell(lo), self._cell(hi)
        span = c1 - c0 + 1
        region, k = (t.numpy() for t in ragged_arange(torch.as_tensor(span[:, 0] * span[:, 1])))
        cx = c0[region, 0] + k % span[region, 0]
        cy = c0[region, 1] + k // span[region, 0]
        cell = cx * self.g + cy
        order = np.argsort(cell, kind="stable")
        self.cell_regions = region[order]
        self.cell_start = np.searchsorted(cell[order], np.arange(self.g * self.g + 1))
        # on an edge: within rounding of the slice's size, or of the coordinates themselves
        self.tol = 1e-12 * float((self.hi - self.lo).max()) + 8 * np.finfo(np.float64).eps * float(np.abs(verts).max())

    def _cell(self, pts: np.ndarray) -> np.ndarray:
        return np.clip(np.floor((pts - self.lo) / self.size), 0, self.g - 1).astype(np.int64)

    def locate(self, pts: np.ndarray) -> np.ndarray:
        """(N,) index of the polygon holding each point (N, 2), -1 for none.  A point within
        rounding of several polygons (on a shared edge, or in a sliver thinner than the
        tolerance) goes to the one it is deepest inside, the lowest-numbered on ties."""
        result = np.full(len(pts), -1, dtype=np.int64)
        inside_box = np.all((pts >= self.lo - self.tol) & (pts <= self.hi + self.tol), axis=1)
        c = self._cell(pts)
        cell = c[:, 0] * self.g + c[:, 1]
        start, stop = self.cell_start[cell], self.cell_start[cell + 1]
        point, k = (t.numpy() for t in ragged_arange(torch.as_tensor(np.where(inside_box, stop - start, 0))))
        region = self.cell_regions[start[point] + k]
        cand, e, d = _edges(self.polys, pts[point], region)
        depth = (e[:, 0] * d[:, 1] - e[:, 1] * d[:, 0]) / np.maximum(np.hypot(e[:, 0], e[:, 1]), 1e-300)
        margin = np.full(len(region), np.inf)
        np.minimum.at(margin, cand, depth)  # signed distance inside each candidate (convex: min over edges)
        inside = margin >= -self.tol
        point, region, margin = point[inside], region[inside], margin[inside]
        order = np.lexsort((region, -margin, point))
        first = order[np.r_[True, point[order][1:] != point[order][:-1]]] if len(order) else order
        result[point[first]] = region[first]
        return result
