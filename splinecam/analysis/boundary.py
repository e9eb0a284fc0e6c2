"""Decision boundaries and level sets, exactly, from a partition's regions and maps.

Inside a region every output is affine.  The region splits into *cells*,
one per candidate that attains the maximum there: the cell of candidate m is
the region clipped by the half-planes ``g_m >= g_j`` (a convex polygon).  A
boundary segment is an edge shared by the cells of two candidates.  For
K > 1 the candidates are the logits; for a level set ``f_k = t`` they are
``0`` (class 0, ``f_k < t``) and ``f_k - t`` (class 1, ``f_k > t``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from ..extras import late
from ..geometry import Polygons, Ragged, candidate_tolerance, max_cells
from ..io.geojson import boundary_geojson

__all__ = ["Boundary", "ClassCells", "class_cells", "curved_class_cells", "decision_boundary", "level_set",
           "partition_boundary", "partition_level_set", "point_ids"]

_RTOL = 1e-10


def point_ids(pts: np.ndarray, scale: float) -> np.ndarray:
    """(N,) integer id per point (N, 2); points within ~1e-9 * scale of each other share one."""
    keys = np.round(pts / (max(scale, 1e-300) * 1e-9)).astype(np.int64)
    return np.unique(keys, axis=0, return_inverse=True)[1].reshape(-1)


@dataclass
class Boundary:
    """Boundary segments.  segments: (S, 2, 2) endpoints in slice coordinates;
    regions: (S,) region of each; classes: (S, 2) the two tied candidates; partition: the
    :class:`~splinecam.Partition` they were read off (``regions`` index it)."""

    segments: np.ndarray
    regions: np.ndarray
    classes: np.ndarray
    partition: object = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.segments)

    @property
    def lengths(self) -> np.ndarray:
        """(S,) segment lengths."""
        return np.linalg.norm(self.segments[:, 1] - self.segments[:, 0], axis=1)

    @property
    def length(self) -> float:
        return float(self.lengths.sum())

    def pieces(self) -> int:
        """Number of connected polylines formed by the segments (:attr:`n_components`)."""
        return self.n_components

    def curves(self):
        """The segments as connected polylines; see :func:`splinecam.analysis.topology.curves`."""
        return late("analysis.topology.curves")(self)

    @property
    def n_components(self) -> int:
        """The number of connected components of the boundary."""
        return late("analysis.topology.n_components")(self)

    def to_geojson(self) -> dict:
        """The curves as a GeoJSON FeatureCollection (a dict); see :mod:`splinecam.io.geojson`."""
        return boundary_geojson(self)

    def plot(self, ax=None, **kwargs):
        """Draw the segments as one LineCollection; kwargs go to it.  Returns it."""
        return late("viz.plot.plot_boundary")(self, ax=ax, **kwargs)

    def __repr__(self) -> str:
        return f"Boundary({len(self):,} segments, length {self.length:.6g}, {self.pieces()} pieces)"

    def _repr_html_(self) -> str:
        return late("viz.notebook.boundary_html")(self)


def partition_boundary(part) -> Boundary:
    """The decision boundary of a partition (``part.decision_boundary()``): where the output
    crosses 0 (K = 1) or the top logit is attained by two classes (K > 1)."""
    if part.n_outputs == 1:
        return partition_level_set(part, 0.0, 0)
    return tie_segments(part, part.affine)


def partition_level_set(part, value: float, output: int = 0) -> Boundary:
    """A level set of a partition (``part.level_set(value, output)``): where output ``output``
    crosses ``value``."""
    return tie_segments(part, level_candidates(part, value, output))


def level_candidates(part, value: float, output: int = 0) -> np.ndarray:
    """(R, 2, 3) the candidates of the level set ``f_output = value``: ``0`` (class 0, below)
    and ``f_output - value`` (class 1, at or above)."""
    if not 0 <= output < part.n_outputs:
        raise ValueError(f"output must be in [0, {part.n_outputs}), got {output}.")
    f = part.affine[:, output].copy()
    f[:, 2] -= value
    return np.stack([np.zeros_like(f), f], axis=1)


@dataclass
class ClassCells(Ragged):
    """The exact cells where each class wins: every region cut along the decision boundary
    (or a level set), C convex cells in all.

    vertices: (N, 2) slice coordinates, each cell counter-clockwise; offsets: (C + 1,), cell i
    is ``vertices[offsets[i]:offsets[i + 1]]``; label: (C,) the class that wins in the cell
    (the top logit; for a level set 0 where ``f < t`` and 1 where ``f >= t``; -1 for the coarse
    cells of a boundary-first partition, whose maps are unknown); region: (C,) the region the
    cell lies in; areas: (C,).  Cells of one region tile it; ties go to the lowest class.
    """

    vertices: np.ndarray
    offsets: np.ndarray
    label: np.ndarray
    region: np.ndarray
    areas: np.ndarray

    @property
    def polygons(self) -> list[np.ndarray]:
        """C arrays (n_i, 2), counter-clockwise."""
        return np.split(self.vertices, self.offsets[1:-1])

    def region_class(self, n_regions: int) -> np.ndarray:
        """(n_regions,) the class that wins the largest area of each region (-1 for a coarse cell)."""
        order = np.lexsort((self.areas, self.region))
        out = np.full(n_regions, -1, dtype=np.int64)
        out[self.region[order]] = self.label[order]  # the last (largest) cell of each region stays
        return out

    def class_areas(self) -> dict[int, float]:
        """{class: total area where it wins}, for the classes that win somewhere (coarse: -1)."""
        classes, where = np.unique(self.label, return_inverse=True)
        return dict(zip(classes.tolist(), np.bincount(where, self.areas, len(classes)).tolist()))


def class_cells(part, output: int | None = None, level: float | None = None) -> ClassCells:
    """The cells of ``part``'s regions where each class wins, exactly (see :class:`ClassCells`).

    With ``output`` and ``level`` None and K > 1 outputs the classes are the logits (argmax
    cells, cut along the decision boundary); otherwise the two sides of the level set
    ``f_output = level`` (defaults: output 0, level 0): label 0 where ``f < level``, 1 where
    ``f >= level``.  Coarse cells (``part.exact`` False) are one cell each, labelled -1.  For a
    curved partition see :func:`curved_class_cells`.
    """
    if getattr(part, "curved", False):
        return curved_class_cells(part, output, level)
    if output is None and level is None and part.n_outputs > 1:
        funcs = part.affine
    else:
        funcs = level_candidates(part, 0.0 if level is None else float(level), 0 if output is None else output)
    exact = np.flatnonzero(part.exact)
    whole = part.arrays.polygons()
    if len(exact):
        mc, cen, _, _, _ = _region_cells(part, funcs, exact)
        cells = Polygons(mc.cells.verts + cen[mc.parent][mc.cells.owner()], mc.cells.offsets, mc.cells.edge_units)
        region, label = torch.as_tensor(exact)[mc.parent], mc.winner
    else:
        cells, region, label = whole.select(torch.zeros(0, dtype=torch.int64))[0], torch.zeros(0, dtype=torch.int64), \
            torch.zeros(0, dtype=torch.int64)
    coarse = torch.as_tensor(np.flatnonzero(~part.exact))
    cells = Polygons.cat([cells, whole.select(coarse)[0]])
    region = torch.cat([region, coarse])
    label = torch.cat([label, torch.full_like(coarse, -1)])
    order = torch.as_tensor(np.lexsort((label.numpy(), region.numpy())))
    cells = cells.select(order)[0]
    return ClassCells(cells.verts.numpy(), cells.offsets.numpy(), label[order].numpy(), region[order].numpy(),
                      cells.areas().numpy())


def curved_class_cells(part, output: int | None = None, level: float | None = None) -> ClassCells:
    """The class cells of a :class:`~splinecam.CurvedPartition`: its pieces, each labelled with
    the side of the certified decision function it lies on (one output: 1 where ``f > level``;
    two: the argmax), ``region`` the piece itself.  The labels are certified as the pieces'
    patterns are, except on the uncertified cells (labelled by the side at their centre).  Only
    the decision function the partition certified has cells: another level needs another run,
    ``part.at_level(level).class_cells()``."""
    k, want = part.n_outputs, part.net.decision
    if want is None:
        raise ValueError(f"the class cells of a curved partition are certified for 1 or 2 outputs; this model has {k}.")
    if output not in (None, 0) or (k == 2 and level is not None):
        raise ValueError("the class cells of a curved partition are those of its certified decision function (one "
                         "output: f against a level; two: their argmax); output and level (two outputs) cannot be "
                         "chosen.")
    if level is not None and float(level) != want[1]:
        raise ValueError(f"this curved partition certified the level {want[1]:g}, not {float(level):g}: use "
                         f"part.at_level({float(level):g}).class_cells() (a second certificate run).")
    n = len(part)
    return ClassCells(part.arrays.vertices, part.arrays.offsets, part.side.astype(np.int64), np.arange(n, dtype=np.int64),
                      part.areas)


def _region_cells(part, funcs: np.ndarray, exact: np.ndarray):
    """The max cells of the candidates ``funcs`` (R, C, 3) in the exact regions ``exact`` (E,),
    computed about each region's centroid: (cells, centroids (E, 2), region-local candidates
    (E, C, 3), extent, atol); ``cells.parent`` indexes ``exact``."""
    polys = part.arrays.polygons().select(torch.as_tensor(exact))[0]
    verts, offsets = polys.verts, polys.offsets
    cen = torch.as_tensor(part.centroids[exact])
    g = torch.as_tensor(funcs[exact], dtype=torch.float64).clone()
    g[..., 2] += g[..., 0] * cen[:, None, 0] + g[..., 1] * cen[:, None, 1]  # region-local maps
    local = Polygons(verts - cen[polys.owner()], offsets, polys.edge_units)
    extent = (local.verts.abs().amax(0) + 1e-300).max()
    ext2 = torch.stack([extent, extent])
    # ties are judged against the scale of the outputs over the whole slice: a candidate that
    # cancels to ~0 in one region (a plateau) must not set a tolerance of its own rounding noise
    atol = _RTOL * float(candidate_tolerance(g, ext2, 1.0).max()) if len(g) else 0.0
    return max_cells(local, g, _RTOL, ext2, atol=atol), cen, g, extent, atol


def tie_segments(part, funcs: np.ndarray) -> Boundary:
    """Edges between the cells of the candidates ``funcs`` (R, C, 3) that attain the maximum,
    in the exact regions of ``part`` (coarse cells, see ``Partition.exact``, hold none)."""
    exact = np.flatnonzero(part.exact)
    if not len(exact):
        return Boundary(np.zeros((0, 2, 2)), np.zeros(0, np.int64), np.zeros((0, 2), np.int64), partition=part)
    mc, cen, g, extent, atol = _region_cells(part, funcs, exact)
    multi = torch.nonzero((mc.possible.sum(1) > 1)[mc.parent]).flatten()  # regions where the top changes
    cells, source = mc.cells.select(multi)
    cell_region, cell_cand, tie = mc.parent[multi], mc.winner[multi], mc.tie[source]

    owner = cells.owner()
    nxt = cells.next_vertex()
    on_tie = tie >= 0
    reg, m, j = cell_region[owner][on_tie], cell_cand[owner][on_tie], tie[on_tie]
    a, b = cells.verts[on_tie], cells.verts[nxt][on_tie]
    seg_len = (b - a).norm(dim=1)
    keep = seg_len > 1e-12 * extent
    reg, m, j, a, b = reg[keep], m[keep], j[keep], a[keep], b[keep]
    slope_scale = float(g[..., :2].abs().max()) if len(g) else 0.0
    j = _winner_across(g[reg], g[reg][..., :2], m, a, b, extent, atol, slope_scale)
    lo, hi = torch.minimum(m, j), torch.maximum(m, j)
    key = (reg * g.shape[1] + lo) * g.shape[1] + hi
    _, first = np.unique(key.numpy(), return_index=True)
    first = torch.as_tensor(first)
    segs = torch.stack([a[first], b[first]], 1) + cen[reg[first]][:, None]
    # ties along region borders can sit next to a region with a single winner: look at all cells
    border = _border_ties(part, funcs, exact, cen, mc.cells, mc.tie, mc.parent, mc.winner, g, extent, atol,
                          slope_scale)
    segments = np.concatenate([segs.numpy(), border[0]])
    regions = exact[np.concatenate([reg[first].numpy(), border[1]]).astype(np.int64)]
    classes = np.concatenate([torch.stack([lo[first], hi[first]], 1).numpy(), border[2]])
    return Boundary(segments.reshape(-1, 2, 2), regions, classes.astype(np.int64), partition=part)


def _candidate_tolerance(g: torch.Tensor, extent, atol: float) -> torch.Tensor:
    """(E, 1) tolerance for "two candidates tie" at a point of a region with candidates g (E, C, 3)."""
    return 2 * candidate_tolerance(g, torch.stack([extent, extent]), _RTOL, atol).amax(1, keepdim=True)


def _winner_across(g: torch.Tensor, slopes: torch.Tensor, m: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                   extent, atol: float, slope_scale: float) -> torch.Tensor:
    """The candidate that wins just across each edge a -> b (E, 2) of a cell of winner m (E,).

    g: (E, C, 3) the candidates on this side (their values on the edge are the same on both
    sides); slopes: (E, C, 2) their slopes across the edge; slope_scale: the largest slope of
    the slice, below whose rounding two candidates grow alike.  Among the candidates that tie
    with m along the edge, the one that grows fastest across it wins there (lowest index on
    ties; m itself when the edge is only touched).
    """
    hom_a = torch.cat([a, torch.ones_like(a[:, :1])], 1)
    hom_b = torch.cat([b, torch.ones_like(b[:, :1])], 1)
    va, vb = torch.einsum("ecj,ej->ec", g, hom_a), torch.einsum("ecj,ej->ec", g, hom_b)
    rows = torch.arange(len(m))
    tol = _candidate_tolerance(g, extent, atol)
    tied = ((va - va[rows, m][:, None]).abs() <= tol) & ((vb - vb[rows, m][:, None]).abs() <= tol)
    tied[rows, m] = True
    outward = torch.stack([b[:, 1] - a[:, 1], a[:, 0] - b[:, 0]], 1)  # right of a -> b: outside a CCW cell
    growth = torch.einsum("ecj,ej->ec", slopes, outward).masked_fill(~tied, -torch.inf)
    top = growth.amax(1, keepdim=True)
    slack = _RTOL * (top.abs() + slope_scale * outward.norm(dim=1, keepdim=True))
    return (growth >= top - slack).to(torch.int8).argmax(1)  # the first of the fastest


def _border_ties(part, funcs: np.ndarray, exact: np.ndarray, cen: torch.Tensor, cells: Polygons, tie, cell_region,
                 cell_cand, g, extent, atol: float, slope_scale: float):
    """Ties along region borders: a cell edge on the region border where the winner m ties
    with a candidate j at both ends, and j wins just across.  Reported once (m < j).  Cells
    index the exact regions ``exact`` (centroids ``cen``); a coarse cell across holds no tie."""
    empty = (np.zeros((0, 2, 2)), np.zeros(0, np.int64), np.zeros((0, 2), np.int64))
    if not len(cells):
        return empty
    owner = cells.owner()
    nxt = cells.next_vertex()
    border = tie < 0
    r, m = cell_region[owner], cell_cand[owner]
    hom_a = torch.cat([cells.verts, torch.ones(len(owner), 1, dtype=torch.float64)], 1)
    hom_b = hom_a[nxt]
    ga = torch.einsum("ncj,nj->nc", g[r], hom_a)
    gb = torch.einsum("ncj,nj->nc", g[r], hom_b)
    wa = ga.gather(1, m[:, None])
    wb = gb.gather(1, m[:, None])
    tol = _candidate_tolerance(g[r], extent, atol)
    tie = ((wa - ga).abs() <= tol) & ((wb - gb).abs() <= tol)
    tie[torch.arange(len(owner)), m] = False
    edge, j = torch.nonzero(tie & border[:, None] & (m[:, None] < torch.arange(g.shape[1])), as_tuple=True)
    if not edge.numel():
        return empty
    a, b = cells.verts[edge], cells.verts[nxt][edge]
    normal = torch.stack([b[:, 1] - a[:, 1], a[:, 0] - b[:, 0]], 1)  # outward for CCW
    normal = normal / normal.norm(dim=1, keepdim=True)
    probe = ((a + b) / 2 + 1e-8 * extent * normal + cen[r[edge]]).numpy()
    across = part.locate(probe)  # only to find the region across
    inside = across >= 0
    inside[inside] = part.exact[across[inside]]
    across = torch.as_tensor(across)
    ok = torch.nonzero(torch.as_tensor(inside) & (across != torch.as_tensor(exact)[r[edge]])).flatten()
    slopes = torch.as_tensor(funcs[across[ok].numpy(), :, :2], dtype=torch.float64)
    winner = torch.full((len(edge),), -1)
    winner[ok] = _winner_across(g[r[edge[ok]]], slopes, m[edge[ok]], a[ok], b[ok], extent, atol, slope_scale)
    real = (winner == j).numpy()
    segs = (torch.stack([a, b], 1) + cen[r[edge]][:, None]).numpy()[real]
    return segs, r[edge].numpy()[real], np.stack([m[edge].numpy(), j.numpy()], 1)[real]



def decision_boundary(part) -> Boundary:
    """Deprecated name of :func:`partition_boundary` (``sc.decision_boundary(model, sl)`` is
    boundary-first); it goes in the next release."""
    warnings.warn("splinecam.analysis.boundary.decision_boundary(part) is now partition_boundary(part) "
                  "(or part.decision_boundary()).", DeprecationWarning, stacklevel=2)
    return partition_boundary(part)


def level_set(part, value: float, output: int = 0) -> Boundary:
    """Deprecated name of :func:`partition_level_set` (``sc.level_set(model, sl, value)`` is
    boundary-first); it goes in the next release."""
    warnings.warn("splinecam.analysis.boundary.level_set(part, ...) is now partition_level_set(part, ...) "
                  "(or part.level_set(...)).", DeprecationWarning, stacklevel=2)
    return partition_level_set(part, value, output)
