"""Cutting convex polygons by lines, all polygons of a batch at once (float64, any device).

A line is ``(a, b, c)``: the points with ``a*u + b*v + c = 0``; its positive
side is ``a*u + b*v + c > 0``.  A vertex is *on* a line when
``|a*u + b*v + c| <= tol`` for that line's tolerance.  A polygon is split only
when it has vertices strictly on both sides; on-line vertices go to both
pieces, so no piece is a zero-area sliver.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .polygons import Polygons, offsets_from_counts
from .tolerance import plane_tolerance

__all__ = ["Cut", "classify", "cut", "line_tolerance", "sides"]


def line_tolerance(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, extent, rtol: float,
                   atol: float = 0.0) -> torch.Tensor:
    """On-line tolerance of the lines ``a*u + b*v + c`` (each (...)) over a domain of
    half-sizes ``extent`` (2,) around the origin: :func:`plane_tolerance` in the plane."""
    return plane_tolerance((a, b), c, extent, rtol, atol)


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
    pair, vert = polys.vertices_of(poly)
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


def cut(polys: Polygons, lines: torch.Tensor, tol: torch.Tensor, line_units: torch.Tensor) -> Cut:
    """Cut polygon ``p`` by line ``lines[p]`` for every p at once.

    lines: (P, 3); tol: (P,); line_units: (P, 2), the edge units of the new edges.
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
    sub = Polygons(polys.verts[vert], offsets_from_counts(polys.counts[split]), polys.edge_units[vert])
    s, side = s[vert], side[vert]
    units = line_units[split]
    pos = Polygons.cat([polys.mask(to_pos), _half(sub, s, side, units)])
    neg = Polygons.cat([polys.mask(to_neg), _half(sub, -s, -side, units)])
    whole_pos, whole_neg = torch.nonzero(to_pos).flatten(), torch.nonzero(to_neg).flatten()
    return Cut(pos, torch.cat([whole_pos, split]), neg, torch.cat([whole_neg, split]))


def _half(polys: Polygons, s: torch.Tensor, side: torch.Tensor, line_units: torch.Tensor) -> Polygons:
    """The part of each crossed polygon where its line's value ``s`` (N,) is >= 0.

    side: (N,) vertex classification of s in {-1, 0, 1}; line_units: (P, 2).
    """
    owner = polys.owner()
    nxt = polys.next_vertex()
    s_next, side_next = s[nxt], side[nxt]
    crossing = side * side_next == -1
    keep = side >= 0
    n_emit = keep.long() + crossing.long()
    pos = torch.cumsum(n_emit, 0) - n_emit
    counts = torch.zeros(len(polys), dtype=torch.int64, device=s.device).index_add_(0, owner, n_emit)
    offsets = offsets_from_counts(counts)

    v = polys.verts
    t = torch.where(crossing, s / torch.where(crossing, s - s_next, 1.0), 0.0)
    meet = v + t[:, None] * (v[nxt] - v)
    cut_units = line_units[owner]
    keep_units = torch.where(((side == 0) & (side_next < 0))[:, None], cut_units, polys.edge_units)
    meet_units = torch.where((side > 0)[:, None], cut_units, polys.edge_units)

    total = int(offsets[-1])
    out = torch.empty(total, 2, dtype=v.dtype, device=v.device)
    units = torch.empty(total, 2, dtype=polys.edge_units.dtype, device=v.device)
    out[pos[keep]] = v[keep]
    units[pos[keep]] = keep_units[keep]
    at = pos[crossing] + keep[crossing].long()
    out[at] = meet[crossing]
    units[at] = meet_units[crossing]
    return Polygons(out, offsets, units)
