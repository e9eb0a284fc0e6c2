"""The split of an elementwise op over intervals compiled with numba (the torch rule of
``ElementwiseOp.split`` with :func:`~splinecam.geometry.split_intervals`, in one pass per
interval, for float64 NumPy arrays on the CPU): the same arithmetic, classification and
pieces, with the zeros of an interval taken in order (the sequential form of the torch rule's
vectorised passes).  ``AVAILABLE`` is False when numba is not installed.

Bounded: a call stops after the interval whose pieces pass ``budget`` bytes or ``max_work``
steps (at least one interval) and hands back the intervals it has not started as the rest.
"""

from __future__ import annotations

import numpy as np

from .compiled import AVAILABLE

__all__ = ["AVAILABLE", "PIECE_BYTES", "interval_breakpoint_split"]

PIECE_BYTES = 96  # bytes of a piece's records besides its code (ends, units, parent)

if AVAILABLE:
    from numba import njit


def interval_breakpoint_split(lo, hi, ends, z, breakpoints, rtol, extent, layer, budget, max_work):
    """Intervals ``[lo[r], hi[r]]`` (R,) with unit maps ``z[r]`` (2, U) (value at the chart
    point, slope) cut where a unit crosses a breakpoint (k,); ``extent``: the chart's half-size.
    Returns (lo (n,), hi (n,), ends (n, 2, 2), parent (n,), code (n, U * k) bool, done): the
    pieces of the first ``done`` intervals, in order."""
    n_reg, units, k = lo.shape[0], z.shape[2], breakpoints.shape[0]
    bits = units * k
    cap = 2 * n_reg + 16
    p_lo, p_hi = np.empty(cap), np.empty(cap)
    p_ends, parent = np.empty((cap, 2, 2), np.int64), np.empty(cap, np.int64)
    code = np.empty((cap, bits), np.bool_)
    base = np.empty(bits, np.bool_)
    pa, pc, ptol, proot = np.empty(bits), np.empty(bits), np.empty(bits), np.empty(bits)
    pbit, keep, order = np.empty(bits, np.int64), np.empty(bits, np.bool_), np.empty(bits, np.int64)
    n, work = 0, 0
    done = 0
    for r in range(n_reg):
        if r > 0 and (n * (PIECE_BYTES + bits) > budget or work > max_work):
            break
        a_lo, a_hi = lo[r], hi[r]
        mid = (a_lo + a_hi) / 2
        m = 0  # the (unit, breakpoint) planes that cross the interval
        for u in range(units):
            z0, z1 = z[r, 0, u], z[r, 1, u]
            v_lo, v_hi = z1 * a_lo + z0, z1 * a_hi + z0
            top, bottom = max(v_lo, v_hi), min(v_lo, v_hi)
            for q in range(k):
                b = breakpoints[q]
                c = z0 - b
                tol = (abs(z1) * extent + abs(c)) * rtol
                above, below = top - b > tol, bottom - b < -tol
                if above and below:
                    pa[m], pc[m], ptol[m], pbit[m] = z1, c, tol, u * k + q
                    m += 1
                    base[u * k + q] = True
                elif not above and not below:
                    base[u * k + q] = z1 * mid + z0 > b
                else:
                    base[u * k + q] = above
        # the zeros of the planes that strictly cross, in order, and the cuts among them
        nz = 0
        for j in range(m):
            f_lo, f_hi = pa[j] * a_lo + pc[j], pa[j] * a_hi + pc[j]
            if max(f_lo, f_hi) > ptol[j] and min(f_lo, f_hi) < -ptol[j]:
                proot[nz] = min(max(-pc[j] / pa[j], a_lo), a_hi)
                order[nz] = j
                nz += 1
        idx = np.argsort(proot[:nz], kind="mergesort")  # stable: ties keep the planes' order
        last = a_lo
        n_cut = 0
        for i in range(nz):
            j = order[idx[i]]
            t = proot[idx[i]]
            keep[i] = False
            g_t, g_hi, g_last = pa[j] * t + pc[j], pa[j] * a_hi + pc[j], pa[j] * last + pc[j]
            usable = max(g_t, g_hi) > ptol[j] or min(g_t, g_hi) < -ptol[j]
            leaves = max(g_last, g_t) > ptol[j] or min(g_last, g_t) < -ptol[j]
            if usable and leaves:
                keep[i] = True
                last = t
                n_cut += 1
        while n + n_cut + 1 > cap:
            cap *= 2
            p_lo, p_hi = _grown(p_lo, cap), _grown(p_hi, cap)
            p_ends, parent, code = _grown(p_ends, cap), _grown(parent, cap), _grown(code, cap)
        start = a_lo
        first = n
        for i in range(nz + 1):
            if i < nz and not keep[i]:
                continue
            end = proot[idx[i]] if i < nz else a_hi
            p_lo[n], p_hi[n], parent[n] = start, end, r
            if n == first:
                p_ends[n, 0, 0], p_ends[n, 0, 1] = ends[r, 0, 0], ends[r, 0, 1]
            else:
                p_ends[n, 0, 0], p_ends[n, 0, 1] = p_ends[n - 1, 1, 0], p_ends[n - 1, 1, 1]
            if i < nz:
                p_ends[n, 1, 0], p_ends[n, 1, 1] = layer, pbit[order[idx[i]]] // k
            else:
                p_ends[n, 1, 0], p_ends[n, 1, 1] = ends[r, 1, 0], ends[r, 1, 1]
            pm = (start + end) / 2
            for b in range(bits):
                code[n, b] = base[b]
            for j in range(m):  # the side of each crossing plane over the piece
                g_s, g_e = pa[j] * start + pc[j], pa[j] * end + pc[j]
                side = (1 if max(g_s, g_e) > ptol[j] else 0) - (1 if min(g_s, g_e) < -ptol[j] else 0)
                code[n, pbit[j]] = side > 0 if side != 0 else pa[j] * pm + pc[j] > 0
            work += m + bits
            n += 1
            start = end
        done = r + 1
    return p_lo[:n].copy(), p_hi[:n].copy(), p_ends[:n].copy(), parent[:n].copy(), code[:n].copy(), done


def _grown(a, size):
    """``a`` copied into a larger array of ``size`` rows."""
    out = np.empty((size,) + a.shape[1:], a.dtype)
    out[: a.shape[0]] = a
    return out


if AVAILABLE:  # compiled on first use, cached on disk beside this file
    _grown = njit(cache=True)(_grown)
    interval_breakpoint_split = njit(cache=True)(interval_breakpoint_split)
