"""The split of an elementwise op over intervals compiled with numba (the torch rule of
``ElementwiseOp.split`` with :func:`~splinecam.geometry.split_intervals`, in one pass per
interval, for float64 NumPy arrays on the CPU): the same arithmetic, classification and
pieces, with the zeros of an interval taken in order (the sequential form of the torch rule's
vectorised passes).  ``AVAILABLE`` is False when numba is not installed.

Two kernels share the cut of one interval (:func:`_crossing`, :func:`_cuts`, :func:`_piece_code`):
:func:`interval_breakpoint_split` (one elementwise op over a batch of intervals) and
:func:`chain_pieces` (intervals through a whole chain of affine maps and elementwise ops, depth
first, each piece's next state from its neighbour's by the units that changed).

Bounded: a call stops after the interval whose pieces pass ``budget`` bytes or ``max_work``
steps (at least one interval) and hands back the intervals it has not started as the rest.
"""

from __future__ import annotations

import numpy as np

from .compiled import AVAILABLE

__all__ = ["AVAILABLE", "CHAIN_AFFINE", "CHAIN_META", "PIECE_BYTES", "chain_pieces", "interval_breakpoint_split"]

PIECE_BYTES = 96  # bytes of a piece's records besides its code (ends, units, parent)

if AVAILABLE:
    from numba import njit


def _crossing(a_lo, a_hi, z0, z1, breakpoints, rtol, extent, base, pa, pc, ptol, pbit):
    """The (unit, breakpoint) planes of units with values ``z0`` (U,) at the chart point and
    slopes ``z1`` (U,) over ``[a_lo, a_hi]``: the code of the interval in ``base`` (U * k,)
    (a unit's side; flat ones at the middle), and the planes ``pa * t + pc`` that strictly cross
    it with their tolerance and bit (``pa``, ``pc``, ``ptol``, ``pbit``).  Returns their number."""
    k = breakpoints.shape[0]
    mid = (a_lo + a_hi) / 2
    m = 0
    for u in range(z0.shape[0]):
        v0, v1 = z0[u], z1[u]
        v_lo, v_hi = v1 * a_lo + v0, v1 * a_hi + v0
        top, bottom = max(v_lo, v_hi), min(v_lo, v_hi)
        for q in range(k):
            b = breakpoints[q]
            c = v0 - b
            tol = (abs(v1) * extent + abs(c)) * rtol
            above, below = top - b > tol, bottom - b < -tol
            if above and below:
                pa[m], pc[m], ptol[m], pbit[m] = v1, c, tol, u * k + q
                m += 1
                base[u * k + q] = True
            elif not above and not below:
                base[u * k + q] = v1 * mid + v0 > b
            else:
                base[u * k + q] = above
    return m


def _cuts(a_lo, a_hi, m, pa, pc, ptol, proot, order, cut, roots):
    """The zeros of the ``m`` crossing planes in ``[a_lo, a_hi]``, in order, and which are cuts
    (see :func:`~splinecam.geometry.split_intervals`): fills ``cut`` with the indices of the
    planes whose zero cuts and ``roots`` with those zeros, in order of position; returns their
    number.  (Ties keep the planes' order: a stable sort.)"""
    nz = 0
    for j in range(m):
        f_lo, f_hi = pa[j] * a_lo + pc[j], pa[j] * a_hi + pc[j]
        if max(f_lo, f_hi) > ptol[j] and min(f_lo, f_hi) < -ptol[j]:
            proot[nz] = min(max(-pc[j] / pa[j], a_lo), a_hi)
            order[nz] = j
            nz += 1
    if nz > 16:
        idx = np.argsort(proot[:nz], kind="mergesort")
        sorted_roots, sorted_order = proot[:nz][idx], order[:nz][idx]
        proot[:nz], order[:nz] = sorted_roots, sorted_order
    else:  # insertion sort: few zeros
        for i in range(1, nz):
            t, j = proot[i], order[i]
            p = i
            while p > 0 and proot[p - 1] > t:
                proot[p], order[p] = proot[p - 1], order[p - 1]
                p -= 1
            proot[p], order[p] = t, j
    last = a_lo
    n_cut = 0
    for i in range(nz):
        j = order[i]
        t = proot[i]
        g_t, g_hi, g_last = pa[j] * t + pc[j], pa[j] * a_hi + pc[j], pa[j] * last + pc[j]
        usable = max(g_t, g_hi) > ptol[j] or min(g_t, g_hi) < -ptol[j]
        leaves = max(g_last, g_t) > ptol[j] or min(g_last, g_t) < -ptol[j]
        if usable and leaves:
            cut[n_cut] = j
            roots[n_cut] = t
            last = t
            n_cut += 1
    return n_cut


def _piece_code(start, end, base, m, pa, pc, ptol, pbit, code):
    """The code (U * k,) of the piece ``[start, end]`` of an interval with code ``base`` and
    crossing planes (``m`` of them): each plane's side over the piece (its middle where flat)."""
    code[:] = base
    pm = (start + end) / 2
    for j in range(m):
        g_s, g_e = pa[j] * start + pc[j], pa[j] * end + pc[j]
        side = (1 if max(g_s, g_e) > ptol[j] else 0) - (1 if min(g_s, g_e) < -ptol[j] else 0)
        code[pbit[j]] = side > 0 if side != 0 else pa[j] * pm + pc[j] > 0


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
    pbit, cut, order = np.empty(bits, np.int64), np.empty(bits, np.int64), np.empty(bits, np.int64)
    roots = np.empty(bits)
    n, work = 0, 0
    done = 0
    for r in range(n_reg):
        if r > 0 and (n * (PIECE_BYTES + bits) > budget or work > max_work):
            break
        a_lo, a_hi = lo[r], hi[r]
        m = _crossing(a_lo, a_hi, z[r, 0], z[r, 1], breakpoints, rtol, extent, base, pa, pc, ptol, pbit)
        n_cut = _cuts(a_lo, a_hi, m, pa, pc, ptol, proot, order, cut, roots)
        while n + n_cut + 1 > cap:
            cap *= 2
            p_lo, p_hi = _grown(p_lo, cap), _grown(p_hi, cap)
            p_ends, parent, code = _grown(p_ends, cap), _grown(parent, cap), _grown(code, cap)
        start = a_lo
        for i in range(n_cut + 1):
            end = roots[i] if i < n_cut else a_hi
            p_lo[n], p_hi[n], parent[n] = start, end, r
            if i == 0:
                p_ends[n, 0, 0], p_ends[n, 0, 1] = ends[r, 0, 0], ends[r, 0, 1]
            else:
                p_ends[n, 0, 0], p_ends[n, 0, 1] = p_ends[n - 1, 1, 0], p_ends[n - 1, 1, 1]
            if i < n_cut:
                p_ends[n, 1, 0], p_ends[n, 1, 1] = layer, pbit[cut[i]] // k
            else:
                p_ends[n, 1, 0], p_ends[n, 1, 1] = ends[r, 1, 0], ends[r, 1, 1]
            _piece_code(start, end, base, m, pa, pc, ptol, pbit, code[n])
            work += m + bits
            n += 1
            start = end
        done = r + 1
    return p_lo[:n].copy(), p_hi[:n].copy(), p_ends[:n].copy(), parent[:n].copy(), code[:n].copy(), done


# the columns of a chain's ``meta`` rows (one row per op, in order), see :func:`chain_pieces`
CHAIN_META = ("kind", "in", "out", "w_off", "b_off", "a_off", "k", "layer", "code_off", "next")
CHAIN_AFFINE, CHAIN_SPLIT = 0, 1  # the kinds of op


def _linear_part(meta, weights, j, src, dst, live):
    """``dst[:, :out] = src[:, :in] @ W`` for linear op j (its transposed weight ``W`` (in, out)
    in ``weights``): both rows (value and slope) of a state, without the bias.  Only the units
    not zero in both rows (listed in ``live``) add, four at a time."""
    n_in, n_out, off = meta[j, 1], meta[j, 2], meta[j, 3]
    n = 0
    for u in range(n_in):
        if src[0, u] != 0.0 or src[1, u] != 0.0:
            live[n] = u
            n += 1
    for r in range(2):
        x, d = src[r], dst[r]
        for o in range(n_out):
            d[o] = 0.0
        i = 0
        while i + 4 <= n:
            a, b, c, e = live[i], live[i + 1], live[i + 2], live[i + 3]
            wa, wb = weights[off + a * n_out: off + (a + 1) * n_out], weights[off + b * n_out: off + (b + 1) * n_out]
            wc, we = weights[off + c * n_out: off + (c + 1) * n_out], weights[off + e * n_out: off + (e + 1) * n_out]
            xa, xb, xc, xe = x[a], x[b], x[c], x[e]
            for o in range(n_out):
                d[o] += (wa[o] * xa + wb[o] * xb) + (wc[o] * xc + we[o] * xe)
            i += 4
        while i < n:
            a = live[i]
            wa, xa = weights[off + a * n_out: off + (a + 1) * n_out], x[a]
            for o in range(n_out):
                d[o] += wa[o] * xa
            i += 1


def _forward(meta, weights, biases, first, last, src, out, t_a, t_b, live):
    """The state (2, width) ``src`` through the linear ops ``first .. last - 1`` into ``out``
    (value rows with their bias); returns the width of ``out``."""
    if first == last:
        n = src.shape[1]
        out[:, :n] = src
        return n
    cur = src
    for j in range(first, last):
        dst = out if j == last - 1 else (t_a if (j - first) % 2 == 0 else t_b)
        _linear_part(meta, weights, j, cur, dst, live)
        if meta[j, 4] >= 0:
            n_out, b = meta[j, 2], meta[j, 4]
            for o in range(n_out):
                dst[0, o] += biases[b + o]
        cur = dst
    return meta[last - 1, 2]


def chain_pieces(meta, weights, biases, act, first, rtol, extent, max_work, refresh,
                 s_op, s_lo, s_hi, s_ends, s_code, s_z, s_leg, sp, o_lo, o_hi, o_ends, o_code, o_z, o_leg):
    """Intervals of 1-D charts through a chain of ops, depth first from a stack, in one bounded call.

    The chain: ``meta`` (n_ops, 10) int64 rows (:data:`CHAIN_META`): a linear op's input and
    output widths, the offset of its transposed weight (in, out) in ``weights`` and of its bias
    in ``biases`` (-1: none); an elementwise op's width, the offset in ``act`` of its k
    breakpoints, k + 1 slopes and k + 1 intercepts, its layer (for the pieces' ends), the byte
    of the packed codes where its bits start, and the next elementwise op (n_ops: none);
    ``first``: the first elementwise op (n_ops: none).

    The stack (its first ``sp`` items pending, the last popped first): ``s_op`` the elementwise op
    each item is before (-1: before the chain, its state the input's), its interval ``[s_lo,
    s_hi]`` about the chart point, ``s_ends`` (2, 2) the (layer, unit) at its ends, ``s_code``
    (B,) packed codes so far, ``s_z`` (2, width) its state (value at the chart point, slope),
    ``s_leg`` its chart.  An item is cut as :func:`interval_breakpoint_split` cuts it; each
    piece's state after the op and the linear ops up to the next elementwise one is its left
    neighbour's plus the changed units' columns (every ``refresh``-th piece in full, as the first).
    Pieces past the chain go to the outputs ``o_*`` in order along the charts (``o_z``
    (n, 2, K)); the others onto the stack, the first on top.

    Returns (pieces output, items pending, work done): the call stops before an item once
    ``max_work`` steps are done or its pieces might not fit the outputs (after one item at
    least)."""
    n_ops, width = meta.shape[0], s_z.shape[2]
    bmax = 1
    for i in range(n_ops):
        if meta[i, 0] == CHAIN_SPLIT:
            bmax = max(bmax, meta[i, 1] * meta[i, 6])
    base, code = np.empty(bmax, np.bool_), np.empty(bmax, np.bool_)
    pa, pc, ptol, proot = np.empty(bmax), np.empty(bmax), np.empty(bmax), np.empty(bmax)
    pbit, cut, order = np.empty(bmax, np.int64), np.empty(bmax, np.int64), np.empty(bmax, np.int64)
    roots = np.empty(bmax)
    piece, live = np.empty(width, np.int64), np.empty(width, np.int64)
    pz, h, zn = np.empty((2, width)), np.empty((2, width)), np.empty((2, width))
    t_a, t_b = np.empty((2, width)), np.empty((2, width))
    pcode = np.empty(s_code.shape[1], np.uint8)
    out_cap = o_lo.shape[0]
    n_out, work, items = 0, 0, 0
    while sp > 0:
        top = sp - 1
        i = s_op[top]
        if i < 0:  # the input through the linear ops before the first elementwise one
            w = _forward(meta, weights, biases, 0, first, s_z[top], zn, t_a, t_b, live)
            s_z[top, :, :w] = zn[:, :w]
            s_op[top] = i = first
            work += w
            if first == n_ops:  # no elementwise op: the item is one piece
                if n_out >= out_cap:
                    break
                sp = top
                o_lo[n_out], o_hi[n_out], o_ends[n_out], o_leg[n_out] = s_lo[top], s_hi[top], s_ends[top], s_leg[top]
                o_code[n_out] = s_code[top]
                o_z[n_out] = s_z[top, :, :o_z.shape[2]]
                n_out += 1
                continue
        units, k, nxt = meta[i, 1], meta[i, 6], meta[i, 9]
        bits = units * k
        if items > 0 and (work > max_work or (nxt == n_ops and n_out + bits + 1 > out_cap)):
            break
        sp = top
        items += 1
        a_lo, a_hi, leg = s_lo[top], s_hi[top], s_leg[top]
        e_lo0, e_lo1, e_hi0, e_hi1 = s_ends[top, 0, 0], s_ends[top, 0, 1], s_ends[top, 1, 0], s_ends[top, 1, 1]
        pz[:, :units] = s_z[top, :, :units]
        pcode[:] = s_code[top]
        a = meta[i, 5]
        bps, slopes, icpts = act[a: a + k], act[a + k: a + 2 * k + 1], act[a + 2 * k + 1: a + 3 * k + 2]
        layer, byte = meta[i, 7], meta[i, 8]
        m = _crossing(a_lo, a_hi, pz[0, :units], pz[1, :units], bps, rtol, extent, base, pa, pc, ptol, pbit)
        n_cut = _cuts(a_lo, a_hi, m, pa, pc, ptol, proot, order, cut, roots)
        start = a_lo
        for c in range(n_cut + 1):
            end = roots[c] if c < n_cut else a_hi
            _piece_code(start, end, base[:bits], m, pa, pc, ptol, pbit, code[:bits])
            if c % refresh == 0:  # the state in full
                for u in range(units):
                    p = 0
                    for q in range(k):
                        p += code[u * k + q]
                    piece[u] = p
                    h[0, u] = slopes[p] * pz[0, u] + icpts[p]
                    h[1, u] = slopes[p] * pz[1, u]
                w = _forward(meta, weights, biases, i + 1, nxt, h[:, :units], zn, t_a, t_b, live)
                work += units * w
            else:  # the left neighbour's state plus the changed units' columns
                d, e = t_a, t_b
                w = meta[i + 1, 2] if nxt > i + 1 else units
                d[:, :w] = 0.0
                for j in range(m):
                    u = pbit[j] // k
                    p = 0
                    for q in range(k):
                        p += code[u * k + q]
                    if p == piece[u]:
                        continue
                    ds, di = slopes[p] - slopes[piece[u]], icpts[p] - icpts[piece[u]]
                    piece[u] = p
                    d0, d1 = ds * pz[0, u] + di, ds * pz[1, u]
                    if nxt == i + 1:
                        d[0, u] += d0
                        d[1, u] += d1
                    else:
                        off = meta[i + 1, 3] + u * w
                        for o in range(w):
                            d[0, o] += weights[off + o] * d0
                            d[1, o] += weights[off + o] * d1
                    work += w
                for j in range(i + 2, nxt):  # the later linear ops: their linear parts
                    _linear_part(meta, weights, j, d, e, live)
                    d, e = e, d
                    w = meta[j, 2]
                    work += meta[j, 1] * w
                for o in range(w):
                    zn[0, o] += d[0, o]
                    zn[1, o] += d[1, o]
            work += m + bits
            if nxt == n_ops:
                slot = n_out
                n_out += 1
                o_lo[slot], o_hi[slot], o_leg[slot] = start, end, leg
                o_code[slot] = pcode
                _set_bits(o_code[slot], byte, code[:bits])
                o_z[slot] = zn[:, :o_z.shape[2]]
                ends = o_ends[slot]
            else:
                slot = sp + n_cut - c
                s_op[slot], s_lo[slot], s_hi[slot], s_leg[slot] = nxt, start, end, leg
                s_code[slot] = pcode
                _set_bits(s_code[slot], byte, code[:bits])
                s_z[slot, :, :w] = zn[:, :w]
                ends = s_ends[slot]
            if c == 0:
                ends[0, 0], ends[0, 1] = e_lo0, e_lo1
            else:
                ends[0, 0], ends[0, 1] = layer, pbit[cut[c - 1]] // k
            if c < n_cut:
                ends[1, 0], ends[1, 1] = layer, pbit[cut[c]] // k
            else:
                ends[1, 0], ends[1, 1] = e_hi0, e_hi1
            start = end
        if nxt != n_ops:
            sp += n_cut + 1
    return n_out, sp, work


def _set_bits(packed, byte, bits):
    """Set the bits (n,) bool into ``packed`` (uint8) from byte ``byte`` on, as ``np.packbits``
    orders them (the first bit the highest of its byte)."""
    for b in range(bits.shape[0]):
        if bits[b]:
            packed[byte + b // 8] |= np.uint8(128 >> (b % 8))


def _grown(a, size):
    """``a`` copied into a larger array of ``size`` rows."""
    out = np.empty((size,) + a.shape[1:], a.dtype)
    out[: a.shape[0]] = a
    return out


if AVAILABLE:  # compiled on first use, cached on disk beside this file
    _grown, _crossing, _cuts, _piece_code = (njit(cache=True)(f) for f in (_grown, _crossing, _cuts, _piece_code))
    _linear_part, _forward, _set_bits = (njit(cache=True)(f) for f in (_linear_part, _forward, _set_bits))
    interval_breakpoint_split = njit(cache=True)(interval_breakpoint_split)
    chain_pieces = njit(cache=True)(chain_pieces)
