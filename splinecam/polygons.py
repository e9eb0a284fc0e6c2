"""Batched convex-polygon geometry: cut many polygons by many lines at once.

Pure geometry, no neural networks.  Polygons are ragged: one flat vertex array
``verts (N, 2)`` plus ``offsets (P + 1,)``; polygon ``p`` owns the vertices
``offsets[p]:offsets[p + 1]``, counter-clockwise.  ``labels (N, 2)`` names
the line that carries the edge from each vertex to the next one, so that
every edge of a partition remembers which unit created it.

A line is a row ``(a, b, c)`` meaning ``a*u + b*v + c = 0``; its positive
side is ``a*u + b*v + c > 0``.  A vertex is *on* a line when
``|a*u + b*v + c| <= tol`` for that line's tolerance.  A polygon is split only
when it has vertices strictly on both sides; on-line vertices go to both
pieces, so no piece is a zero-area sliver.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

BORDER = -1  # label of an edge that lies on the slice border


@dataclass
class Polygons:
    """A batch of convex polygons.

    verts: (N, 2) float; offsets: (P + 1,) int64; labels: (N, 2) int64.
    """

    verts: torch.Tensor
    offsets: torch.Tensor
    labels: torch.Tensor
    _owner: torch.Tensor | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return self.offsets.numel() - 1

    @property
    def counts(self) -> torch.Tensor:
        """(P,) number of vertices of each polygon."""
        return self.offsets[1:] - self.offsets[:-1]

    def owner(self) -> torch.Tensor:
        """(N,) polygon index of each vertex."""
        if self._owner is None:
            self._owner = ragged_arange(self.counts, self.verts.shape[0])[0]
        return self._owner

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
        return Polygons(self.verts[source], _offsets_from_counts(counts), self.labels[source], poly), source

    def mask(self, keep: torch.Tensor) -> "Polygons":
        """The polygons where ``keep`` (P,) bool holds, in order."""
        vert = keep[self.owner()]
        return Polygons(self.verts[vert], _offsets_from_counts(self.counts[keep]), self.labels[vert])

    def centroids(self) -> torch.Tensor:
        """(P, 2) mean of each polygon's vertices (a point strictly inside)."""
        sums = torch.zeros(len(self), 2, dtype=self.verts.dtype, device=self.verts.device)
        sums.index_add_(0, self.owner(), self.verts)
        return sums / self.counts[:, None].to(self.verts.dtype)

    def areas(self) -> torch.Tensor:
        """(P,) signed area (positive for counter-clockwise polygons), computed relative to each
        polygon's first vertex so that polygons far from the origin keep their precision."""
        rel = self.verts - self.verts[self.offsets[:-1]][self.owner()]
        nxt = rel[self.next_vertex()]
        cross = rel[:, 0] * nxt[:, 1] - rel[:, 1] * nxt[:, 0]
        out = torch.zeros(len(self), dtype=self.verts.dtype, device=self.verts.device)
        return out.index_add_(0, self.owner(), cross) / 2

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
        labels = torch.cat([p.labels for p in parts])
        offsets = _offsets_from_counts(torch.cat([p.counts for p in parts]))
        return Polygons(verts, offsets, labels)

    @staticmethod
    def single(vertices: torch.Tensor) -> "Polygons":
        """One polygon from (n, 2) counter-clockwise vertices, all edges on the border."""
        n = vertices.shape[0]
        offsets = torch.tensor([0, n], device=vertices.device)
        labels = torch.full((n, 2), BORDER, dtype=torch.int64, device=vertices.device)
        return Polygons(vertices, offsets, labels)


def polygon_areas(verts: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(P,) signed areas of ragged polygons, NumPy (as :meth:`Polygons.areas`)."""
    return Polygons(torch.as_tensor(verts), torch.as_tensor(offsets), torch.zeros(len(verts), 2)).areas().numpy()


def _offsets_from_counts(counts: torch.Tensor) -> torch.Tensor:
    return torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])


def ragged_arange(counts: torch.Tensor, total: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """For ``counts`` (n,): the (total,) group index and position in group of each element."""
    if total is None:
        total = int(counts.sum())
    group = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts, output_size=total)
    start = torch.cumsum(counts, 0) - counts
    return group, torch.arange(total, device=counts.device) - start[group]


def classify(verts: torch.Tensor, lines: torch.Tensor, tol: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Side of each vertex (N, 2) w.r.t. its own line (N, 3): (value (N,), side (N,) in {-1, 0, 1})."""
    s = lines[:, 0] * verts[:, 0] + lines[:, 1] * verts[:, 1] + lines[:, 2]
    side = (s > tol).to(torch.int8) - (s < -tol).to(torch.int8)
    return s, side


def sides(polys: Polygons, poly: torch.Tensor, lines: torch.Tensor, tol: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Where polygon ``poly[q]`` lies w.r.t. line ``q``, for L (polygon, line) pairs.

    Returns ``(has_pos, has_neg)``, both (L,) bool: some vertex strictly on
    the positive / negative side.  The pair crosses when both hold.
    """
    pair, pos = ragged_arange(polys.counts[poly])
    vert = polys.offsets[:-1][poly][pair] + pos
    _, side = classify(polys.verts[vert], lines[pair], tol[pair])
    return _touches(side, pair, poly.numel())


def _touches(side: torch.Tensor, group: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(n,) bool x2: whether group g has a vertex strictly on the positive / negative side."""
    n_pos = torch.zeros(n, dtype=torch.int64, device=side.device).index_add_(0, group, (side > 0).long())
    n_neg = torch.zeros(n, dtype=torch.int64, device=side.device).index_add_(0, group, (side < 0).long())
    return n_pos > 0, n_neg > 0


@dataclass
class Cut:
    """Result of :func:`cut`: the pieces on each side and the polygon each came from."""

    pos: Polygons
    pos_parent: torch.Tensor
    neg: Polygons
    neg_parent: torch.Tensor


def cut(polys: Polygons, lines: torch.Tensor, tol: torch.Tensor, line_labels: torch.Tensor) -> Cut:
    """Cut polygon ``p`` by line ``lines[p]`` for every p at once.

    lines: (P, 3); tol: (P,); line_labels: (P, 2), the label of the new edges.
    A polygon with vertices strictly on both sides becomes two pieces; one
    that is not crossed goes whole to the side it touches (to ``pos`` when
    all its vertices are on the line).  Pieces keep the order of their polygons.
    """
    owner = polys.owner()
    s, side = classify(polys.verts, lines[owner], tol[owner])
    has_pos, has_neg = _touches(side, owner, len(polys))
    crossed = has_pos & has_neg
    to_pos, to_neg = ~crossed & ~has_neg, ~crossed & has_neg
    split = torch.nonzero(crossed).flatten()

    vert = crossed[owner]
    sub = Polygons(polys.verts[vert], _offsets_from_counts(polys.counts[split]), polys.labels[vert])
    s, side = s[vert], side[vert]
    labels = line_labels[split]
    pos = Polygons.cat([polys.mask(to_pos), _half(sub, s, side, labels)])
    neg = Polygons.cat([polys.mask(to_neg), _half(sub, -s, -side, labels)])
    whole_pos, whole_neg = torch.nonzero(to_pos).flatten(), torch.nonzero(to_neg).flatten()
    return Cut(pos, torch.cat([whole_pos, split]), neg, torch.cat([whole_neg, split]))


def _half(polys: Polygons, s: torch.Tensor, side: torch.Tensor, line_labels: torch.Tensor) -> Polygons:
    """The part of each crossed polygon where its line's value ``s`` (N,) is >= 0.

    side: (N,) vertex classification of s in {-1, 0, 1}; line_labels: (P, 2).
    """
    owner = polys.owner()
    nxt = polys.next_vertex()
    s_next, side_next = s[nxt], side[nxt]
    crossing = side * side_next == -1
    keep = side >= 0
    n_emit = keep.long() + crossing.long()
    pos = torch.cumsum(n_emit, 0) - n_emit
    counts = torch.zeros(len(polys), dtype=torch.int64, device=s.device).index_add_(0, owner, n_emit)
    offsets = _offsets_from_counts(counts)

    v = polys.verts
    t = torch.where(crossing, s / torch.where(crossing, s - s_next, 1.0), 0.0)
    meet = v + t[:, None] * (v[nxt] - v)
    cut_label = line_labels[owner]
    keep_label = torch.where(((side == 0) & (side_next < 0))[:, None], cut_label, polys.labels)
    meet_label = torch.where((side > 0)[:, None], cut_label, polys.labels)

    total = int(offsets[-1])
    out = torch.empty(total, 2, dtype=v.dtype, device=v.device)
    labels = torch.empty(total, 2, dtype=polys.labels.dtype, device=v.device)
    out[pos[keep]] = v[keep]
    labels[pos[keep]] = keep_label[keep]
    at = pos[crossing] + keep[crossing].long()
    out[at] = meet[crossing]
    labels[at] = meet_label[crossing]
    return Polygons(out, offsets, labels)


_WINNER_BLOCK = 1 << 22  # vertex x candidate x candidate evaluations held at once
_CREATED = -2  # marks, inside max_cells, the edges its clipping creates


def line_tolerance(diff: torch.Tensor, extent: torch.Tensor, rtol: float, atol: float = 0.0) -> torch.Tensor:
    """(...) on-line tolerance of lines (..., 3) over a domain of half-sizes ``extent`` (2,),
    at least ``atol``."""
    return rtol * (diff[..., 0].abs() * extent[0] + diff[..., 1].abs() * extent[1] + diff[..., 2].abs()) + atol


def possible_winners(polys: Polygons, funcs: torch.Tensor, rtol: float, extent: torch.Tensor,
                     valid: torch.Tensor | None = None, atol: float = 0.0) -> torch.Tensor:
    """(P, C) bool: candidate m may attain the max of ``funcs`` (P, C, 3) somewhere in polygon p.

    m is out when another candidate j beats it by more than the tolerance at
    every vertex, when j is the same function (within the tolerance) and
    j < m (ties go to the lowest index), or when ``valid[p, m]`` is False.
    """
    h = polys.homogeneous_padded()
    p, c = funcs.shape[:2]
    if valid is None:
        valid = torch.ones(p, c, dtype=torch.bool, device=funcs.device)
    lower = torch.ones(c, c, dtype=torch.bool, device=funcs.device).tril(-1)  # [m, j]: j < m
    out = []
    step = max(1, _WINNER_BLOCK // max(1, h.shape[1] * c * c))
    for s in range(0, p, step):
        g, ok = funcs[s : s + step], valid[s : s + step]
        vals = torch.bmm(h[s : s + step], g.transpose(1, 2))  # (r, V, C)
        # a candidate that leads at every vertex by more than any tolerance leads on the whole
        # (convex) polygon: only the other polygons need the pairwise test
        top = vals.masked_fill(~ok[:, None, :], -torch.inf).topk(min(2, c), dim=2)
        leader = top.indices[:, 0, 0]
        margin = (top.values[..., 0] - top.values[..., -1]).amin(1)
        span = line_tolerance(g, extent, rtol, atol).amax(1) * 2
        clear = (top.indices[..., 0] == leader[:, None]).all(1) & (margin > span)
        winners = torch.zeros_like(ok)
        winners[clear, leader[clear]] = True
        rest = torch.nonzero(~clear).flatten()
        if rest.numel():
            v, gr = vals[rest], g[rest]
            diff = (v[:, :, :, None] - v[:, :, None, :]).amax(1)  # [m, j]: max over vertices of g_m - g_j
            tol = line_tolerance(gr[:, :, None, :] - gr[:, None, :, :], extent, rtol, atol)
            same = (diff <= tol) & (diff.transpose(1, 2) <= tol)
            beaten = (diff < -tol) | (same & lower)
            okr = ok[rest]
            winners[rest] = okr & ~(beaten & okr[:, None, :]).any(2)
        out.append(winners)
    return torch.cat(out) if out else torch.zeros(0, c, dtype=torch.bool, device=funcs.device)


@dataclass
class MaxCells:
    """Result of :func:`max_cells`.

    cells: the non-empty cells; parent (n,) the polygon and winner (n,) the
    candidate of each; tie (N,) for each cell edge, the candidate it ties with
    there (-1 for an edge of the original polygon); possible (P, C) from
    :func:`possible_winners`.
    """

    cells: Polygons
    parent: torch.Tensor
    winner: torch.Tensor
    tie: torch.Tensor
    possible: torch.Tensor


def max_cells(polys: Polygons, funcs: torch.Tensor, rtol: float, extent: torch.Tensor,
              valid: torch.Tensor | None = None, new_labels: torch.Tensor | None = None,
              atol: float = 0.0) -> MaxCells:
    """Split every polygon into the cells where each of its candidates attains the max.

    polys: P convex polygons; funcs: (P, C, 3) rows (a, b, c) of the candidates
    ``a*u + b*v + c`` of each polygon; extent: (2,) domain half-sizes for the
    tolerances; valid: (P, C) bool, candidates that exist (default all);
    new_labels: (P, 2) label of the edges the cells create (default -1).
    The cell of m is the polygon clipped by ``g_m >= g_j`` for every other
    possible winner j; empty clips vanish, and identical candidates keep only
    the lowest index, so the cells tile each polygon.
    """
    dev = funcs.device
    p, c = funcs.shape[:2]
    possible = possible_winners(polys, funcs, rtol, extent, valid, atol)
    parent, winner = torch.nonzero(possible, as_tuple=True)
    cells = polys.select(parent)[0]
    if new_labels is None:
        new_labels = torch.full((p, 2), BORDER, dtype=torch.int64, device=dev)
    for j in range(c):
        act = torch.nonzero((winner != j) & possible[parent, j]).flatten()
        if not act.numel():
            continue
        r = parent[act]
        lines = funcs[r, winner[act]] - funcs[r, j]
        mark = torch.stack([torch.full_like(r, j), torch.full_like(r, _CREATED)], 1)  # old labels have >= -1 there
        res = cut(cells.select(act)[0], lines, line_tolerance(lines, extent, rtol, atol), mark)
        rest = torch.ones(len(cells), dtype=torch.bool, device=dev)
        rest[act] = False
        rest = torch.nonzero(rest).flatten()
        cells = Polygons.cat([cells.select(rest)[0], res.pos])
        src = torch.cat([rest, act[res.pos_parent]])
        parent, winner = parent[src], winner[src]
    created = cells.labels[:, 1] == _CREATED
    tie = torch.where(created, cells.labels[:, 0], -1)
    labels = torch.where(created[:, None], new_labels[parent][cells.owner()], cells.labels)
    return MaxCells(Polygons(cells.verts, cells.offsets, labels), parent, winner, tie, possible)
