"""Decision boundaries and level sets, exactly, from a partition's regions and maps.

Inside a region every output is affine.  The region splits into *cells*,
one per candidate that attains the maximum there: the cell of candidate m is
the region clipped by the half-planes ``g_m >= g_j`` (a convex polygon).  A
boundary segment is an edge shared by the cells of two candidates.  For
K > 1 the candidates are the logits; for a level set ``f_k = t`` they are
``0`` (class 0, ``f_k < t``) and ``f_k - t`` (class 1, ``f_k > t``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .polygons import Polygons, cut

_RTOL = 1e-10
_BLOCK = 1 << 22


@dataclass
class Boundary:
    """Boundary segments.  segments: (S, 2, 2) endpoints in slice coordinates;
    regions: (S,) region of each; classes: (S, 2) the two tied candidates."""

    segments: np.ndarray
    regions: np.ndarray
    classes: np.ndarray

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
        """Number of connected polylines formed by the segments."""
        if not len(self):
            return 0
        pts = self.segments.reshape(-1, 2)
        scale = max(float(np.abs(pts).max()), 1e-300)
        keys = np.round(pts / (scale * 1e-9)).astype(np.int64)
        _, ids = np.unique(keys, axis=0, return_inverse=True)
        ids = ids.reshape(-1, 2)
        parent = np.arange(ids.max() + 1)

        def find(i):
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for a, b in ids:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[ra] = rb
        return len({find(i) for i in np.unique(ids)})

    def plot(self, ax=None, **kwargs):
        """Draw the segments as one LineCollection; kwargs go to it.  Returns it."""
        from .plot import plot_boundary

        return plot_boundary(self, ax=ax, **kwargs)


def decision_boundary(part) -> Boundary:
    """Where the output crosses 0 (K = 1) or the top logit is attained by two classes (K > 1)."""
    if part.n_outputs == 1:
        return level_set(part, 0.0, 0)
    return tie_segments(part, part.affine)


def level_set(part, value: float, output: int = 0) -> Boundary:
    """Where output ``output`` crosses ``value``."""
    if not 0 <= output < part.n_outputs:
        raise ValueError(f"output must be in [0, {part.n_outputs}), got {output}.")
    f = part.affine[:, output].copy()
    f[:, 2] -= value
    return tie_segments(part, np.stack([np.zeros_like(f), f], axis=1))


def tie_segments(part, funcs: np.ndarray) -> Boundary:
    """Edges between the cells of the candidates ``funcs`` (R, C, 3) that attain the maximum."""
    verts = torch.as_tensor(part._verts)
    offsets = torch.as_tensor(part._offsets)
    polys = Polygons(verts, offsets, torch.full((len(verts), 2), -1, dtype=torch.int64))
    cen = torch.as_tensor(part.centroids)
    g = torch.as_tensor(funcs, dtype=torch.float64).clone()
    g[..., 2] += g[..., 0] * cen[:, None, 0] + g[..., 1] * cen[:, None, 1]  # region-local maps
    local = Polygons(verts - cen[polys.owner()], offsets, polys.labels)
    extent = (local.verts.abs().amax(0) + 1e-300).max()

    possible = _possible_winners(local, g, extent)
    region, cand = torch.nonzero(possible & (possible.sum(1, keepdim=True) > 1), as_tuple=True)
    cells, cell_region, cell_cand = local.select(region)[0], region, cand
    for j in range(g.shape[1]):
        act = torch.nonzero((cell_cand != j) & possible[cell_region, j]).flatten()
        if not act.numel():
            continue
        r = cell_region[act]
        lines = g[r, cell_cand[act]] - g[r, j]
        tol = _RTOL * (lines[:, :2].abs().sum(1) * extent + lines[:, 2].abs())
        res = cut(cells.select(act)[0], lines, tol, torch.full((act.numel(), 2), j))
        keep_rest = torch.ones(len(cells), dtype=torch.bool)
        keep_rest[act] = False
        rest = torch.nonzero(keep_rest).flatten()
        cells = Polygons.cat([cells.select(rest)[0], res.pos])
        src = torch.cat([rest, act[res.pos_parent]])
        cell_region, cell_cand = cell_region[src], cell_cand[src]

    owner = cells.owner()
    nxt = cells.next_vertex()
    on_tie = cells.labels[:, 0] >= 0
    reg, m, j = cell_region[owner][on_tie], cell_cand[owner][on_tie], cells.labels[on_tie, 0]
    a, b = cells.verts[on_tie], cells.verts[nxt][on_tie]
    seg_len = (b - a).norm(dim=1)
    keep = seg_len > 1e-12 * extent
    reg, m, j, a, b = reg[keep], m[keep], j[keep], a[keep], b[keep]
    lo, hi = torch.minimum(m, j), torch.maximum(m, j)
    key = (reg * g.shape[1] + lo) * g.shape[1] + hi
    _, first = np.unique(key.numpy(), return_index=True)
    first = torch.as_tensor(first)
    segs = torch.stack([a[first], b[first]], 1) + cen[reg[first]][:, None]
    border = _border_ties(part, funcs, cells, cell_region, cell_cand, g, extent)
    segments = np.concatenate([segs.numpy(), border[0]])
    regions = np.concatenate([reg[first].numpy(), border[1]])
    classes = np.concatenate([torch.stack([lo[first], hi[first]], 1).numpy(), border[2]])
    return Boundary(segments.reshape(-1, 2, 2), regions.astype(np.int64), classes.astype(np.int64))


def _possible_winners(local: Polygons, g: torch.Tensor, extent: torch.Tensor) -> torch.Tensor:
    """(R, C) bool: candidate m is not beaten everywhere in the region by one other candidate.

    A candidate that leads at every vertex by more than the tolerance leads on the whole
    (convex) region, so only the other regions need the pairwise test.
    """
    h = local.homogeneous_padded()
    r, vmax = h.shape[:2]
    c = g.shape[1]
    vals = torch.bmm(h, g.transpose(1, 2))  # (R, V, C)
    top2 = vals.topk(min(2, c), dim=2)
    leader = top2.indices[:, 0, 0]
    span = g[..., :2].abs().sum(-1) * extent + g[..., 2].abs()  # (R, C)
    tol = _RTOL * 2 * span.amax(1)
    margin = (top2.values[..., 0] - top2.values[..., -1]).amin(1)
    clear = (top2.indices[..., 0] == leader[:, None]).all(1) & (margin > tol)
    possible = torch.zeros(r, c, dtype=torch.bool)
    possible[torch.arange(r), leader] = True
    mixed = torch.nonzero(~clear).flatten()
    step = max(1, _BLOCK // (vmax * c * c))
    for s in range(0, mixed.numel(), step):
        idx = mixed[s : s + step]
        v, gs = vals[idx], g[idx]
        diff = (v[:, :, :, None] - v[:, :, None, :]).amax(1)  # max over vertices of g_m - g_j
        dg = gs[:, :, None, :] - gs[:, None, :, :]
        tol = _RTOL * (dg[..., :2].abs().sum(-1) * extent + dg[..., 2].abs())
        possible[idx] = (diff >= -tol).all(2)
    return possible


def _border_ties(part, funcs: np.ndarray, cells: Polygons, cell_region, cell_cand, g, extent):
    """Ties along region borders: a cell edge on the region border where the winner m ties
    with a candidate j at both ends, and j wins just across.  Reported once (m < j)."""
    empty = (np.zeros((0, 2, 2)), np.zeros(0, np.int64), np.zeros((0, 2), np.int64))
    if not len(cells):
        return empty
    owner = cells.owner()
    nxt = cells.next_vertex()
    border = cells.labels[:, 0] < 0
    r, m = cell_region[owner], cell_cand[owner]
    hom_a = torch.cat([cells.verts, torch.ones(len(owner), 1, dtype=torch.float64)], 1)
    hom_b = hom_a[nxt]
    ga = torch.einsum("ncj,nj->nc", g[r], hom_a)
    gb = torch.einsum("ncj,nj->nc", g[r], hom_b)
    wa = ga.gather(1, m[:, None])
    wb = gb.gather(1, m[:, None])
    scale = _RTOL * (g[r].abs().sum(-1) * extent)
    tie = ((wa - ga).abs() <= scale) & ((wb - gb).abs() <= scale)
    tie[torch.arange(len(owner)), m] = False
    edge, j = torch.nonzero(tie & border[:, None] & (m[:, None] < torch.arange(g.shape[1])), as_tuple=True)
    if not edge.numel():
        return empty
    a, b = cells.verts[edge], cells.verts[nxt][edge]
    normal = torch.stack([b[:, 1] - a[:, 1], a[:, 0] - b[:, 0]], 1)  # outward for CCW
    normal = normal / normal.norm(dim=1, keepdim=True)
    cen = torch.as_tensor(part.centroids)
    probe = ((a + b) / 2 + 1e-8 * extent * normal + cen[r[edge]]).numpy()
    across = part.locate(probe)
    ok = across >= 0
    winner = np.full(len(edge), -1)
    hom = np.c_[probe[ok], np.ones(ok.sum())]
    winner[ok] = np.argmax(np.einsum("ncj,nj->nc", funcs[across[ok]], hom), 1)
    real = winner == j.numpy()
    segs = (torch.stack([a, b], 1) + cen[r[edge]][:, None]).numpy()[real]
    return segs, r[edge].numpy()[real], np.stack([m[edge].numpy(), j.numpy()], 1)[real]

