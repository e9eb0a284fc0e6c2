"""Ragged batches of convex polygons (torch, any device) and the index helpers they need.

A batch of P polygons is a flat vertex array plus offsets: polygon p has the
vertices ``verts[offsets[p]:offsets[p + 1]]``, counter-clockwise, and edge j
of a polygon runs from its vertex j to vertex j + 1 (cyclically).  Each edge
carries an ``edge_units`` pair of integers, e.g. the (layer, unit) whose line
made it; :data:`BORDER` marks an edge on the border of the slice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["BORDER", "Polygons", "Ragged", "RaggedCells", "first_of_runs", "offsets_from_counts", "polygon_areas", "ragged_arange",
           "spatial_order", "vertex_extremes"]

BORDER = -1  # edge_units entry of an edge that lies on the slice border
_BLOCK_ELEMENTS = 1 << 24  # vertex-by-function evaluations held at once (128 MiB in float64)


def offsets_from_counts(counts: torch.Tensor) -> torch.Tensor:
    """(n + 1,) offsets of groups of sizes ``counts`` (n,)."""
    return torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])


def ragged_arange(counts: torch.Tensor, total: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """For ``counts`` (n,): the (total,) group index and position in group of each element."""
    if total is None:
        total = int(counts.sum())
    group = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts, output_size=total)
    start = torch.cumsum(counts, 0) - counts
    return group, torch.arange(total, device=counts.device) - start[group]


def first_of_runs(keys: torch.Tensor) -> torch.Tensor:
    """(n,) bool: where a run of equal values of the sorted ``keys`` (n,) starts."""
    first = torch.ones_like(keys, dtype=torch.bool)
    first[1:] = keys[1:] != keys[:-1]
    return first


class Ragged:
    """P records stored by their ``offsets`` (P + 1,) (NumPy or torch) into ragged arrays."""

    def __len__(self) -> int:
        return len(self.offsets) - 1


class RaggedCells(Ragged):
    """What batches of P cells stored as ragged vertex lists share: ``offsets`` (P + 1,) into
    ``verts`` (N, d), and ``_owner``, the cached vertex owners."""

    @property
    def counts(self) -> torch.Tensor:
        """(P,) number of vertices of each cell."""
        return self.offsets[1:] - self.offsets[:-1]

    def owner(self) -> torch.Tensor:
        """(N,) cell index of each vertex."""
        if self._owner is None:
            self._owner = torch.repeat_interleave(torch.arange(len(self), device=self.verts.device), self.counts,
                                                  output_size=self.verts.shape[0])
        return self._owner


@dataclass
class Polygons(RaggedCells):
    """A batch of convex polygons.

    verts: (N, 2) float; offsets: (P + 1,) int64; edge_units: (N, 2) int64.
    The cells of a 2-D chart (see :mod:`splinecam.geometry.cells`).
    """

    dim = 2  # chart coordinates of the states of its cells

    verts: torch.Tensor
    offsets: torch.Tensor
    edge_units: torch.Tensor
    _owner: torch.Tensor | None = field(default=None, repr=False, compare=False)

    @staticmethod
    def from_numpy(verts: np.ndarray, offsets: np.ndarray, edge_units: np.ndarray | None = None) -> "Polygons":
        """A CPU batch sharing the memory of NumPy arrays (edge units default to BORDER)."""
        if edge_units is None:
            edge_units = np.full((len(verts), 2), BORDER, dtype=np.int64)
        return Polygons(torch.as_tensor(verts), torch.as_tensor(offsets), torch.as_tensor(edge_units))

    def next_vertex(self) -> torch.Tensor:
        """(N,) index of the next vertex of the same polygon (cyclic)."""
        nxt = torch.arange(1, self.verts.shape[0] + 1, device=self.verts.device)
        nxt[self.offsets[1:] - 1] = self.offsets[:-1]
        return nxt

    def select(self, index: torch.Tensor) -> tuple["Polygons", torch.Tensor]:
        """Polygons ``index`` (any order), and the (N',) source vertex of each new vertex."""
        counts = self.counts[index]
        poly, pos = ragged_arange(counts)
        source = self.offsets[:-1][index][poly] + pos
        return Polygons(self.verts[source], offsets_from_counts(counts), self.edge_units[source], poly), source

    def vertices_of(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For polygons ``index`` (L,): (pair (M,), vertex (M,)), one row per vertex of each."""
        pair, pos = ragged_arange(self.counts[index])
        return pair, self.offsets[:-1][index][pair] + pos

    def mask(self, keep: torch.Tensor) -> "Polygons":
        """The polygons where ``keep`` (P,) bool holds, in order."""
        vert = keep[self.owner()]
        return Polygons(self.verts[vert], offsets_from_counts(self.counts[keep]), self.edge_units[vert])

    def centroids(self) -> torch.Tensor:
        """(P, 2) mean of each polygon's vertices (a point strictly inside)."""
        sums = torch.segment_reduce(self.verts, "sum", offsets=self.offsets, axis=0)
        return sums / self.counts[:, None].to(self.verts.dtype)

    def areas(self) -> torch.Tensor:
        """(P,) signed area (positive for counter-clockwise polygons), computed relative to each
        polygon's first vertex so that polygons far from the origin keep their precision."""
        rel = self.verts - self.verts[self.offsets[:-1]][self.owner()]
        nxt = rel[self.next_vertex()]
        cross = rel[:, 0] * nxt[:, 1] - rel[:, 1] * nxt[:, 0]
        out = torch.zeros(len(self), dtype=self.verts.dtype, device=self.verts.device)
        return out.index_add_(0, self.owner(), cross) / 2

    def measure(self) -> torch.Tensor:
        """(P,) the area of each polygon (the cell interface's measure)."""
        return self.areas()

    def extremes(self, maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`vertex_extremes` of the polygons: two (P, U) from maps (P, 3, U)."""
        return vertex_extremes(self, maps)

    def bounding_boxes(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(P, 2) lower and (P, 2) upper corners of each polygon's bounding box."""
        owner = self.owner()[:, None].expand(-1, 2)
        lo = torch.full((len(self), 2), torch.inf, dtype=self.verts.dtype, device=self.verts.device)
        hi = torch.full_like(lo, -torch.inf)
        return lo.scatter_reduce(0, owner, self.verts, "amin"), hi.scatter_reduce(0, owner, self.verts, "amax")

    def homogeneous_padded(self) -> torch.Tensor:
        """(P, Vmax, 3) rows ``(u, v, 1)``; short polygons repeat their first vertex.

        Repeating a vertex changes no maximum or minimum over the vertices, so
        the padded block can be multiplied by per-polygon affine maps at once.
        """
        counts = self.counts
        vmax = int(counts.max()) if len(self) else 0
        col = torch.arange(vmax, device=self.verts.device)
        idx = self.offsets[:-1, None] + torch.where(col < counts[:, None], col, 0)
        pts = self.verts[idx]
        return torch.cat([pts, torch.ones_like(pts[..., :1])], dim=-1)

    @staticmethod
    def cat(parts: list["Polygons"]) -> "Polygons":
        verts = torch.cat([p.verts for p in parts])
        edge_units = torch.cat([p.edge_units for p in parts])
        offsets = offsets_from_counts(torch.cat([p.counts for p in parts]))
        return Polygons(verts, offsets, edge_units)

    @staticmethod
    def single(vertices: torch.Tensor) -> "Polygons":
        """One polygon from (n, 2) counter-clockwise vertices, all edges on the border."""
        n = vertices.shape[0]
        offsets = torch.tensor([0, n], device=vertices.device)
        edge_units = torch.full((n, 2), BORDER, dtype=torch.int64, device=vertices.device)
        return Polygons(vertices, offsets, edge_units)


def polygon_areas(verts: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(P,) signed areas of ragged polygons, NumPy (as :meth:`Polygons.areas`)."""
    return Polygons.from_numpy(verts, offsets).areas().numpy()


def vertex_extremes(polys: Polygons, maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Max and min over each polygon's vertices of its affine functions.

    maps: (P, 3, U) rows (value at the origin, d/du, d/dv).  Returns two (P, U).
    """
    h = polys.homogeneous_padded()[..., [2, 0, 1]]  # rows (1, u, v)
    counts = polys.counts
    p, vmax = h.shape[:2]
    u = maps.shape[2]
    step = max(1, _BLOCK_ELEMENTS // max(1, vmax * u))
    hi, lo = [], []
    for s in range(0, p, step):
        width = int(counts[s : s + step].max())  # padding repeats vertices: trim it per block
        z = torch.bmm(h[s : s + step, :width], maps[s : s + step])
        hi.append(z.amax(1))
        lo.append(z.amin(1))
    return torch.cat(hi), torch.cat(lo)


def spatial_order(points: torch.Tensor) -> torch.Tensor:
    """(n,) permutation that visits the points (n, 2) along a Z-order (Morton) curve over
    their bounding box, so that every stretch of it covers a compact area (points (n, 1) of a
    line: in order)."""
    if not len(points):
        return torch.zeros(0, dtype=torch.int64, device=points.device)
    if points.shape[1] == 1:
        return torch.argsort(points[:, 0])
    lo, hi = points.amin(0), points.amax(0)
    cells = ((points - lo) / torch.clamp(hi - lo, min=1e-300) * 65535).long().clamp(0, 65535)
    key = torch.zeros(len(points), dtype=torch.int64, device=points.device)
    for bit in range(16):
        key |= ((cells[:, 0] >> bit) & 1) << (2 * bit) | ((cells[:, 1] >> bit) & 1) << (2 * bit + 1)
    return torch.argsort(key)
