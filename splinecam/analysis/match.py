"""Regions of two partitions of one slice matched: by activation code, then by overlap.

A region *lives* while its activation pattern does: regions of ``a`` and ``b`` with the same
code are *kept*; a region of ``a`` whose code ``b`` lacks *died*, one of ``b`` whose code
``a`` lacks was *born*.  Each died region is also paired with the region of ``b`` that
covers most of it, and each born one with the region of ``a`` it covers most (exact
polygon clipping).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..geometry import Polygons, cut, line_tolerance

__all__ = ["RegionMatch", "match_regions"]

_RTOL = 1e-10
_PAIR_BLOCK = 1 << 22  # (region, region) box tests held at once


@dataclass(frozen=True)
class RegionMatch:
    """kept (M, 2): pairs (region of a, region of b) with the same code; died (D,): regions of
    a whose code b lacks, with died_into (D,) the region of b that overlaps each most; born
    (B,): regions of b whose code a lacks, with born_from (B,) the region of a that overlaps
    each most (-1 where none overlaps)."""

    kept: np.ndarray
    died: np.ndarray
    died_into: np.ndarray
    born: np.ndarray
    born_from: np.ndarray

    def __repr__(self) -> str:
        return f"RegionMatch({len(self.kept):,} kept, {len(self.died):,} died, {len(self.born):,} born)"


def match_regions(a, b) -> RegionMatch:
    """Match the regions of two partitions ``a`` and ``b`` of the same slice (see the module)."""
    sa, sb = a.slice, b.slice
    same = (sa.polygon.shape == sb.polygon.shape and np.allclose(sa.polygon, sb.polygon)
            and np.allclose(sa.origin, sb.origin) and np.allclose(sa.basis, sb.basis))
    if not same:
        raise ValueError("match_regions needs two partitions of the same slice; partition both models on one Slice.")
    if [layer.bits for layer in a.layers] != [layer.bits for layer in b.layers]:
        raise ValueError("match_regions needs models of the same architecture (their codes have different layers).")
    ka, kb = _code_keys(a.arrays.packed_codes), _code_keys(b.arrays.packed_codes)
    _, ia, ib = np.intersect1d(ka, kb, assume_unique=True, return_indices=True)
    died = np.setdiff1d(np.arange(len(a)), ia)
    born = np.setdiff1d(np.arange(len(b)), ib)
    kept = np.stack([ia, ib], 1)
    kept = kept[np.argsort(ia)]
    return RegionMatch(kept, died, _largest_overlap(a, died, b), born, _largest_overlap(b, born, a))


def _code_keys(packed: np.ndarray) -> np.ndarray:
    """(R,) one comparable key per row of packed codes (R, B)."""
    packed = np.ascontiguousarray(packed)
    return packed.view(np.dtype((np.void, packed.shape[1]))).ravel() if packed.shape[1] else np.zeros(len(packed), "V1")


def _boxes(part) -> tuple[np.ndarray, np.ndarray]:
    v, starts = part.arrays.vertices, part.arrays.offsets[:-1]
    if not len(starts):
        return np.zeros((0, 2)), np.zeros((0, 2))
    return np.minimum.reduceat(v, starts), np.maximum.reduceat(v, starts)


def _largest_overlap(src, idx: np.ndarray, dst) -> np.ndarray:
    """(len(idx),) the region of ``dst`` whose intersection with region ``idx[i]`` of ``src``
    has the largest area (-1 where none has a positive one)."""
    best = np.full(len(idx), -1)
    if not len(idx) or not len(dst):
        return best
    lo_s, hi_s = _boxes(src)
    lo_d, hi_d = _boxes(dst)
    step = max(1, _PAIR_BLOCK // len(dst))
    pairs = []
    for s in range(0, len(idx), step):
        i = idx[s : s + step]
        meet = ((lo_s[i, None] <= hi_d[None]) & (lo_d[None] <= hi_s[i, None])).all(2)
        row, col = np.nonzero(meet)
        pairs.append(np.stack([row + s, col], 1))
    pairs = np.concatenate(pairs)
    area = _intersection_areas(src.arrays.polygons().select(torch.as_tensor(idx[pairs[:, 0]]))[0],
                               dst.arrays.polygons(), pairs[:, 1], src.slice)
    order = np.lexsort((-area, pairs[:, 0]))
    first = order[np.r_[True, pairs[order, 0][1:] != pairs[order, 0][:-1]]]
    hit = area[first] > 0
    best[pairs[first[hit], 0]] = pairs[first[hit], 1]
    return best


def _intersection_areas(polys: Polygons, clip: Polygons, which: np.ndarray, sl) -> np.ndarray:
    """(P,) area of polygon p of ``polys`` clipped by the convex polygon ``clip[which[p]]``."""
    extent = torch.as_tensor(np.abs(sl.polygon).max(0) + 1e-300)
    which = torch.as_tensor(which)
    counts = clip.counts[which]
    start = clip.offsets[:-1][which]
    pair = torch.arange(len(polys))
    for k in range(int(counts.max()) if len(counts) else 0):
        act = torch.nonzero(counts[pair] > k).flatten()
        if not act.numel():
            break
        j = start[pair[act]] + k
        nxt = torch.where(counts[pair[act]] > k + 1, j + 1, start[pair[act]])
        p, q = clip.verts[j], clip.verts[nxt]
        a, b = p[:, 1] - q[:, 1], q[:, 0] - p[:, 0]  # left of p -> q: inside a CCW polygon
        c = -(a * p[:, 0] + b * p[:, 1])
        lines = torch.stack([a, b, c], 1)
        res = cut(polys.select(act)[0], lines, line_tolerance(a, b, c, extent, _RTOL),
                  torch.full((len(act), 2), -1, dtype=torch.int64))
        rest = torch.ones(len(polys), dtype=torch.bool)
        rest[act] = False
        rest = torch.nonzero(rest).flatten()
        polys = Polygons.cat([polys.select(rest)[0], res.pos])
        pair = torch.cat([pair[rest], pair[act[res.pos_parent]]])
    area = np.zeros(int(pair.max()) + 1 if len(pair) else 0)
    np.add.at(area, pair.numpy(), polys.areas().numpy())
    return np.pad(area, (0, len(which) - len(area)))
