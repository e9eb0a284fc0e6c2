"""The split of an elementwise op over intervals compiled with numba (the torch rule of
``ElementwiseOp.split`` with :func:`~splinecam.geometry.split_intervals`, in one pass per
interval, for float64 NumPy arrays on the CPU): the same arithmetic, classification and
pieces, with the zeros of an interval taken in order (the sequential form of the torch rule's
vectorised passes).  ``AVAILABLE`` is False when numba is not installed.

Two kernels share the cut of one interval (:func:`_crossing`, :func:`_cuts`, :func:`_side`):
:func:`interval_breakpoint_split` (one elementwise op over a batch of intervals) and
:func:`chain_pieces` (intervals through a whole chain of linear and elementwise ops, level by
level in batches, depth first: a piece's state from its left neighbour's, by the units that
changed within an interval, by the slope's product and continuity across intervals).  The small
helpers are inlined into the kernels (numba's ``inline="always"``), and the hot loops index
arrays rather than slice them: each view costs two atomic reference counts.

Bounded: a call stops after the interval whose pieces pass ``budget`` bytes or ``max_work``
steps (at least one interval) and hands back the intervals it has not started as the rest.
"""

from __future__ import annotations

import numpy as np

from .compiled import AVAILABLE
from .polygons import BORDER

__all__ = ["AVAILABLE", "CHAIN_AFFINE", "CHAIN_META", "CHAIN_SPLIT", "PIECE_BYTES", "chain_pieces", "chain_product",
           "interval_breakpoint_split", "point_sizes"]

PIECE_BYTES = 96  # bytes of a piece's records besides its code (ends, units, parent)

if AVAILABLE:
    from numba import njit


def _crossing(a_lo, a_hi, z, r, units, breakpoints, rtol, extent, base, rare, pa, pc, ptol, pbit):
    """The (unit, breakpoint) planes of the ``units`` units with values ``z[r, 0]`` at the chart
    point and slopes ``z[r, 1]`` (z (R, 2, >= units)) over ``[a_lo, a_hi]``: the code of the
    interval in ``base`` (U * k,) (a unit's side; flat ones at the middle), and the planes
    ``pa * t + pc`` that strictly cross it with their tolerance and bit (``pa``, ``pc``,
    ``ptol``, ``pbit``).  Returns their number.
    (Two passes: every unit's side, in a loop the compiler vectorises; then the few crossing
    or flat ones, marked in ``rare`` and counted, up to the last.)"""
    k, n_rare = breakpoints.shape[0], 0
    if k == 1:  # (one breakpoint: the loop without an inner one, which the compiler vectorises)
        b = breakpoints[0]
        for u in range(units):
            v0, v1 = z[r, 0, u], z[r, 1, u]
            v_lo, v_hi = v1 * a_lo + v0, v1 * a_hi + v0
            tol = (abs(v1) * extent + abs(v0 - b)) * rtol
            above, below = max(v_lo, v_hi) - b > tol, min(v_lo, v_hi) - b < -tol
            base[u] = above
            rare[u] = above == below
            n_rare += above == below
    else:
        for u in range(units):
            v0, v1 = z[r, 0, u], z[r, 1, u]
            v_lo, v_hi = v1 * a_lo + v0, v1 * a_hi + v0
            for q in range(k):
                b = breakpoints[q]
                tol = (abs(v1) * extent + abs(v0 - b)) * rtol
                above, below = max(v_lo, v_hi) - b > tol, min(v_lo, v_hi) - b < -tol
                base[u * k + q] = above
                rare[u * k + q] = above == below
                n_rare += above == below
    mid = (a_lo + a_hi) / 2
    m = 0
    for bit in range(units * k):
        if n_rare == 0:
            break
        if not rare[bit]:
            continue
        n_rare -= 1
        u, b = bit // k, breakpoints[bit % k]
        v0, v1 = z[r, 0, u], z[r, 1, u]
        c = v0 - b
        if base[bit]:  # above and below: it crosses
            pa[m], pc[m], ptol[m], pbit[m] = v1, c, (abs(v1) * extent + abs(c)) * rtol, bit
            m += 1
        else:  # flat on the breakpoint: its side at the middle
            base[bit] = v1 * mid + v0 > b
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


def _side(a, c, tol, start, end, pm):
    """The side of the crossing plane ``a t + c`` (tolerance ``tol``) over the piece ``[start,
    end]`` (middle ``pm``): above its breakpoint, below it, or (within tolerance there) at the
    middle.  (Numbers, not arrays: an array passed costs reference counts, and this runs for
    every plane of every piece.)"""
    g_s, g_e = a * start + c, a * end + c
    side = (1 if max(g_s, g_e) > tol else 0) - (1 if min(g_s, g_e) < -tol else 0)
    return side > 0 if side != 0 else a * pm + c > 0


def _piece_code(start, end, base, bits, m, pa, pc, ptol, pbit, code, row):
    """The code (``bits`` = U * k) of the piece ``[start, end]`` of an interval with code ``base``
    and crossing planes (``m`` of them) into ``code[row]``: each plane's side over the piece."""
    for b in range(bits):
        code[row, b] = base[b]
    pm = (start + end) / 2
    for j in range(m):
        code[row, pbit[j]] = _side(pa[j], pc[j], ptol[j], start, end, pm)


def _piece_bits(start, end, m, pa, pc, ptol, pbit, packed, row, byte):
    """:func:`_piece_code`'s crossing bits set in the packed code ``packed[row]`` (bits from byte
    ``byte`` on) that holds the interval's code: each plane's side over the piece."""
    pm = (start + end) / 2
    for j in range(m):
        b = pbit[j]
        mask = np.uint8(128 >> (b % 8))
        if _side(pa[j], pc[j], ptol[j], start, end, pm):
            packed[row, byte + b // 8] |= mask
        else:
            packed[row, byte + b // 8] &= np.uint8(255 - mask)


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
    base, rare = np.empty(bits, np.bool_), np.empty(bits, np.bool_)
    pa, pc, ptol, proot = np.empty(bits), np.empty(bits), np.empty(bits), np.empty(bits)
    pbit, cut, order = np.empty(bits, np.int64), np.empty(bits, np.int64), np.empty(bits, np.int64)
    roots = np.empty(bits)
    n, work = 0, 0
    done = 0
    for r in range(n_reg):
        if r > 0 and (n * (PIECE_BYTES + bits) > budget or work > max_work):
            break
        a_lo, a_hi = lo[r], hi[r]
        m = _crossing(a_lo, a_hi, z, r, units, breakpoints, rtol, extent, base, rare, pa, pc, ptol, pbit)
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
            _piece_code(start, end, base, bits, m, pa, pc, ptol, pbit, code, n)
            work += m + bits
            n += 1
            start = end
        done = r + 1
    return p_lo[:n].copy(), p_hi[:n].copy(), p_ends[:n].copy(), parent[:n].copy(), code[:n].copy(), done


# the columns of a chain's ``meta`` rows (one row per op, in order), see :func:`chain_pieces`
CHAIN_META = ("kind", "in", "out", "w_off", "b_off", "a_off", "k", "layer", "code_off", "next")
CHAIN_AFFINE, CHAIN_SPLIT = 0, 1  # the kinds of op
_FULL, _SLOPE, _SUMS = 0, 1, 2  # how a piece's state is made: a product; the slope a product; neighbour + columns


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


def chain_product(meta, weights, biases, first, last, rows, pairs):
    """``rows`` (m, in) through the linear ops ``first .. last - 1`` as matrix products (BLAS):
    (m, out).  The first ``2 pairs`` rows are the value and slope rows of ``pairs`` states (the
    value rows with their bias), the rest slope rows (without)."""
    cur = rows
    for j in range(first, last):
        n_in, n_out, off, b = meta[j, 1], meta[j, 2], meta[j, 3], meta[j, 4]
        cur = np.dot(cur, weights[off: off + n_in * n_out].reshape((n_in, n_out)))
        if b >= 0:
            for r in range(0, 2 * pairs, 2):
                for o in range(n_out):
                    cur[r, o] += biases[b + o]
    return cur


def _piece_of(packed, row, byte, u, k):
    """The piece (number of breakpoints below) of unit u in the packed code ``packed[row]`` whose
    op's bits start at byte ``byte``, with k breakpoints."""
    p = 0
    for q in range(k):
        b = u * k + q
        p += (packed[row, byte + b // 8] >> (7 - b % 8)) & 1
    return p


def _piece_rows(code, k, slopes, icpts, z, r, units, value, out, at):
    """The rows of a piece's state after an op with k breakpoints, slopes and intercepts (k + 1,),
    from the piece's code ``code[0]`` (U * k,) and the unit maps ``z[r]`` (2, >= U) before it:
    into ``out`` from ``at`` on the value and slope rows (2 U,), or (``value`` False) the slope
    row alone (U,)."""
    if k == 1:  # (one loop each, which the compiler vectorises)
        if value:
            for u in range(units):
                p = 1 if code[0, u] else 0
                out[at + u] = slopes[p] * z[r, 0, u] + icpts[p]
                out[at + units + u] = slopes[p] * z[r, 1, u]
        else:
            for u in range(units):
                out[at + u] = slopes[1 if code[0, u] else 0] * z[r, 1, u]
        return
    for u in range(units):
        p = 0
        for b in range(k):
            p += code[0, u * k + b]
        if value:
            out[at + u] = slopes[p] * z[r, 0, u] + icpts[p]
            out[at + units + u] = slopes[p] * z[r, 1, u]
        else:
            out[at + u] = slopes[p] * z[r, 1, u]


def _load_legs(meta, weights, biases, last, origin, step, loaded, n, extent, d_lo, d_hi, d_ends, d_code, d_z, d_leg, at):
    """The next ``n`` legs ``x = origin + t step`` ((L, D) each; ``loaded`` (1,): the legs loaded
    before) as intervals ``[-extent, extent]`` about their chart point ``t = extent`` into rows
    ``at`` on of ``d_*``: no end units, no code yet, the state (value, slope) through the linear
    ops ``0 .. last - 1``."""
    first = loaded[0]
    rows = np.empty((2 * n, origin.shape[1]))
    for j in range(n):
        for c in range(origin.shape[1]):
            rows[2 * j, c] = origin[first + j, c] + extent * step[first + j, c]
            rows[2 * j + 1, c] = step[first + j, c]
    z = chain_product(meta, weights, biases, 0, last, rows, n)
    w = z.shape[1]
    for j in range(n):
        q = at + j
        d_lo[q], d_hi[q], d_leg[q] = -extent, extent, first + j
        d_ends[q] = BORDER
        d_code[q] = 0
        d_z[q, 0, :w] = z[2 * j]
        d_z[q, 1, :w] = z[2 * j + 1]
    loaded[0] = first + n
    return n * origin.shape[1] * w


def chain_pieces(meta, weights, biases, act, rtol, extent, max_work, refresh, origin, step, starts, loaded, lv, l_lo,
                 l_hi, l_ends, l_code, l_z, l_leg, rows, o_lo, o_hi, o_ends, o_code, o_z, o_leg, o_affine, o_middle,
                 n_out, n_cap):
    """The pieces of the legs of polylines through a chain of ops, in one bounded call: those of
    :func:`_chain_batches` (see there; the legs start at ``starts`` (L,) in their paths'
    parameter t), then in the path's t: ``o_lo``, ``o_hi`` (n,) in t, ``o_affine`` (n, K, 2) the
    output maps (output k is ``a t + c``), ``o_middle`` (n, K) the outputs at the pieces'
    middles (``o_z`` then holds their states about the legs' chart points).  The arithmetic of
    the engine's result (:meth:`PieceArrays.of_states` then :meth:`PathPartition.of_pieces`)."""
    first = n_out
    n_out, waiting, busy = _chain_batches(meta, weights, biases, act, rtol, extent, max_work, refresh, origin, step,
                                          loaded, lv, l_lo, l_hi, l_ends, l_code, l_z, l_leg, rows, o_lo, o_hi, o_ends,
                                          o_code, o_z, o_leg, n_out, n_cap)
    for i in range(first, n_out):  # (lo and hi about the chart point ``extent`` until now)
        lo, hi, s = o_lo[i], o_hi[i], starts[o_leg[i]]
        o_lo[i], o_hi[i] = (lo + extent) + s, (hi + extent) + s
        m = (lo + hi) / 2
        for o in range(o_z.shape[2]):
            a, v = o_z[i, 1, o], o_z[i, 0, o]
            o_affine[i, o, 0] = a
            o_affine[i, o, 1] = (v - a * extent) - a * s  # in the leg's t, then the path's
            o_middle[i, o] = v + a * m
    return n_out, waiting, busy


def _chain_batches(meta, weights, biases, act, rtol, extent, max_work, refresh, origin, step, loaded, lv, l_lo, l_hi,
                   l_ends, l_code, l_z, l_leg, rows, o_lo, o_hi, o_ends, o_code, o_z, o_leg, n_out, n_cap):
    """Intervals of 1-D charts through a chain of ops, in batches, depth first, in one bounded call.

    The chain: ``meta`` (n_ops, 10) int64 rows (:data:`CHAIN_META`): a linear op's input and
    output widths, the offset of its transposed weight (in, out) in ``weights`` and of its bias
    in ``biases`` (-1: none); an elementwise op's width, the offset in ``act`` of its k
    breakpoints, k + 1 slopes and k + 1 intercepts, its level s (its order among the elementwise
    ops), the byte of the packed codes where its bits start, and the next elementwise op (n_ops:
    none).

    The charts: the legs ``x = origin + t step`` ((L, D) each) about their chart point ``t =
    extent``, over ``[-extent, extent]``; ``loaded`` (1,): how many of them the levels took
    before (a batch of the next ones is loaded whenever the levels are empty; without an
    elementwise op each is a piece of the outputs).

    The levels: the intervals waiting before elementwise op s are rows ``lv[s, 0] + lv[s, 1]``
    on, ``lv[s, 2]`` of them (``lv[s, 0]``: where the level's rows start; ``lv[S, 0]``: the
    end), in order along the charts: ``[l_lo, l_hi]`` about the chart point, ``l_ends`` (2, 2)
    the (layer, unit) at the ends, ``l_code`` (B,) packed codes so far, ``l_z`` (2, width) the
    state before the op (value at the chart point, slope), ``l_leg`` the chart.  The deepest
    level that holds intervals goes first: a batch of its first intervals (as many as the next
    level, empty then, or the outputs hold) is cut as :func:`interval_breakpoint_split` cuts
    them, and the pieces' states after the op and the linear ops up to the next elementwise one
    are made from their left neighbour's: a piece of the same interval as its neighbour's plus
    the columns of the units that changed; the first piece of an interval by a matrix product of
    its slope row alone, its value where it meets its neighbour (the network is continuous along
    a leg).  The first piece of a batch or of a leg, and every piece ``refresh`` steps from the
    last, take the product of both rows (which bounds the rounding of the sums).  ``rows`` (2 n
    width,): scratch for the rows of the products of n pieces.  Pieces past the chain go to the
    outputs ``o_*`` from row ``n_out`` on, below row ``n_cap`` (``o_z`` (n, 2, K)), in order
    along the charts.

    Returns (rows of the outputs filled, intervals and legs waiting, whether any wait): the
    call stops once ``max_work`` steps are done or the outputs cannot hold a batch (after a
    batch at least)."""
    n_ops = meta.shape[0]
    n_levels = lv.shape[0] - 1
    ops = np.empty(n_levels, np.int64)
    bmax = 1
    for i in range(n_ops):
        if meta[i, 0] == CHAIN_SPLIT:
            ops[meta[i, 7]] = i
            bmax = max(bmax, meta[i, 1] * meta[i, 6])
    base, code, rare = np.empty(bmax, np.bool_), np.empty((1, bmax), np.bool_), np.empty(bmax, np.bool_)
    packed = np.empty((bmax + 7) // 8, np.uint8)
    pa, pc, ptol, proot, roots = np.empty(bmax), np.empty(bmax), np.empty(bmax), np.empty(bmax), np.empty(bmax)
    pbit, cut, order = np.empty(bmax, np.int64), np.empty(bmax, np.int64), np.empty(bmax, np.int64)
    width, n_code = l_z.shape[2], l_code.shape[1]
    d, e, live = np.empty((2, width)), np.empty((2, width)), np.empty(width, np.int64)
    most = max(n_cap, lv[n_levels, 0])  # pieces of one batch at most
    parent, how = np.empty(most, np.int64), np.empty(most, np.int64)
    slope_rows = np.empty(rows.shape[0] // 2)  # (the slope rows of a batch: at most half the rows)
    work, batches = 0, 0
    n_legs = origin.shape[0]
    while True:
        s = n_levels - 1
        while s >= 0 and lv[s, 2] == 0:
            s -= 1
        if s < 0 and loaded[0] == n_legs:
            return n_out, 0, False
        if s < 0:  # the next legs: onto the first level, or (no elementwise op) pieces of the outputs
            if batches > 0 and work > max_work or n_levels == 0 and n_out == n_cap:
                return n_out, n_legs - loaded[0], True
            batches += 1
            if n_levels == 0:
                n = min(n_legs - loaded[0], n_cap - n_out)
                work += _load_legs(meta, weights, biases, n_ops, origin, step, loaded, n, extent, o_lo, o_hi, o_ends,
                                   o_code, o_z, o_leg, n_out)
                n_out += n
            else:
                n = min(n_legs - loaded[0], lv[1, 0] - lv[0, 0])
                work += _load_legs(meta, weights, biases, ops[0], origin, step, loaded, n, extent, l_lo, l_hi, l_ends,
                                   l_code, l_z, l_leg, lv[0, 0])
                lv[0, 1], lv[0, 2] = 0, n
            continue
        i = ops[s]
        units, k, nxt, layer, byte = meta[i, 1], meta[i, 6], meta[i, 9], meta[i, 7], meta[i, 8]
        bits = units * k
        last = nxt == n_ops
        room = min(n_cap - n_out, rows.shape[0] // (2 * width)) if last else lv[s + 2, 0] - lv[s + 1, 0]
        if batches > 0 and (work > max_work or room < bits + 1):
            return n_out, lv[:n_levels, 2].sum() + n_legs - loaded[0], True
        batches += 1
        a = meta[i, 5]
        bps, slopes, icpts = act[a: a + k], act[a + k: a + 2 * k + 1], act[a + 2 * k + 1: a + 3 * k + 2]
        if last:
            d_lo, d_hi, d_ends, d_code, d_z, d_leg, at = o_lo, o_hi, o_ends, o_code, o_z, o_leg, n_out
        else:
            d_lo, d_hi, d_ends, d_code, d_z, d_leg, at = l_lo, l_hi, l_ends, l_code, l_z, l_leg, lv[s + 1, 0]
        first_row = lv[s, 0] + lv[s, 1]
        n_child, n_full, n_slope, taken, steps = 0, 0, 0, 0, 0
        for r in range(first_row, first_row + lv[s, 2]):  # the batch: cut each interval, its pieces' codes
            a_lo, a_hi = l_lo[r], l_hi[r]
            m = _crossing(a_lo, a_hi, l_z, r, units, bps, rtol, extent, base, rare, pa, pc, ptol, pbit)
            n_cut = _cuts(a_lo, a_hi, m, pa, pc, ptol, proot, order, cut, roots)
            if n_child + n_cut + 1 > room:
                break
            n_bytes = (bits + 7) // 8
            for bb in range(n_bytes):
                packed[bb] = 0
            _set_bits(packed, 0, base, bits)
            start = a_lo
            for c in range(n_cut + 1):
                end = roots[c] if c < n_cut else a_hi
                q, jc = at + n_child + c, n_child + c
                d_lo[q], d_hi[q], d_leg[q], parent[jc] = start, end, l_leg[r], r
                if c == 0:
                    d_ends[q, 0, 0], d_ends[q, 0, 1] = l_ends[r, 0, 0], l_ends[r, 0, 1]
                else:
                    d_ends[q, 0, 0], d_ends[q, 0, 1] = layer, pbit[cut[c - 1]] // k
                if c < n_cut:
                    d_ends[q, 1, 0], d_ends[q, 1, 1] = layer, pbit[cut[c]] // k
                else:
                    d_ends[q, 1, 0], d_ends[q, 1, 1] = l_ends[r, 1, 0], l_ends[r, 1, 1]
                for bb in range(n_code):
                    d_code[q, bb] = l_code[r, bb]
                for bb in range(n_bytes):
                    d_code[q, byte + bb] = packed[bb]
                _piece_bits(start, end, m, pa, pc, ptol, pbit, d_code, q, byte)
                if jc > 0 and steps < refresh and (c > 0 or (d_leg[q - 1] == l_leg[r] and d_hi[q - 1] == start)):
                    how[jc] = _SUMS if c > 0 else _SLOPE  # from the left neighbour's state
                    steps += 1
                else:
                    how[jc] = _FULL
                    steps = 0
                if how[jc] != _SUMS:  # its state after the op: a row pair of the product, or the slope row
                    _piece_code(start, end, base, bits, m, pa, pc, ptol, pbit, code, 0)
                    if how[jc] == _FULL:
                        _piece_rows(code, k, slopes, icpts, l_z, r, units, True, rows, 2 * n_full * units)
                        n_full += 1
                    else:
                        _piece_rows(code, k, slopes, icpts, l_z, r, units, False, slope_rows, n_slope * units)
                        n_slope += 1
                start = end
            work += units + m + (n_cut + 1) * bits
            n_child += n_cut + 1
            taken += 1
            if work > max_work:
                break
        n_rows = 2 * n_full + n_slope
        rows[2 * n_full * units: n_rows * units] = slope_rows[: n_slope * units]
        full = rows[: n_rows * units].reshape((n_rows, units))
        if nxt > i + 1:
            full = chain_product(meta, weights, biases, i + 1, nxt, full, n_full)
            work += (n_full + n_slope) * units * meta[i + 1, 2]
        w = full.shape[1]
        f, g = 0, 2 * n_full
        for j in range(n_child):  # each piece's state: in full, or from its left neighbour's
            q = at + j
            if how[j] == _FULL:
                for o in range(w):
                    d_z[q, 0, o] = full[2 * f, o]
                    d_z[q, 1, o] = full[2 * f + 1, o]
                f += 1
                continue
            if how[j] == _SLOPE:  # the slope in full; the value where it meets its neighbour (continuity)
                t = d_lo[q]
                for o in range(w):
                    d_z[q, 1, o] = full[g, o]
                    d_z[q, 0, o] = d_z[q - 1, 0, o] + (d_z[q - 1, 1, o] - full[g, o]) * t
                g += 1
                continue
            r = parent[j]
            w1 = meta[i + 1, 2] if nxt > i + 1 else units
            for o in range(w1):
                d[0, o] = 0.0
                d[1, o] = 0.0
            last_u = -1
            for bb in range(byte, byte + (bits + 7) // 8):
                if d_code[q, bb] == d_code[q - 1, bb]:
                    continue
                for b in range((bb - byte) * 8, min(bits, (bb - byte + 1) * 8)):
                    u = b // k
                    if u == last_u:  # (a unit's bits are next to each other)
                        continue
                    last_u = u
                    if k == 1:  # (its bit, of the byte at hand)
                        p, p_old = (d_code[q, bb] >> (7 - b % 8)) & 1, (d_code[q - 1, bb] >> (7 - b % 8)) & 1
                    else:
                        p, p_old = _piece_of(d_code, q, byte, u, k), _piece_of(d_code, q - 1, byte, u, k)
                    if p == p_old:
                        continue
                    ds, di = slopes[p] - slopes[p_old], icpts[p] - icpts[p_old]
                    d0, d1 = ds * l_z[r, 0, u] + di, ds * l_z[r, 1, u]
                    if nxt == i + 1:
                        d[0, u] += d0
                        d[1, u] += d1
                    else:
                        off = meta[i + 1, 3] + u * w1
                        for o in range(w1):  # (an unsigned index: no wraparound test, so loads, not gathers)
                            wo = weights[np.uint64(off + o)]
                            d[0, o] += wo * d0
                            d[1, o] += wo * d1
                    work += w1
            cur, other = d, e
            for jj in range(i + 2, nxt):  # the later linear ops: their linear parts
                _linear_part(meta, weights, jj, cur, other, live)
                cur, other = other, cur
                work += meta[jj, 1] * meta[jj, 2]
            for o in range(w):
                d_z[q, 0, o] = d_z[q - 1, 0, o] + cur[0, o]
                d_z[q, 1, o] = d_z[q - 1, 1, o] + cur[1, o]
        lv[s, 1] += taken
        lv[s, 2] -= taken
        if lv[s, 2] == 0:
            lv[s, 1] = 0
        if last:
            n_out += n_child
        else:
            lv[s + 1, 1], lv[s + 1, 2] = 0, n_child


def point_sizes(flat):
    """Of points ``flat`` (n, D) (C-contiguous): the largest absolute value (NaN if one is NaN),
    and the size of the shortest leg between consecutive points (its largest absolute step)
    and its number.  (Compiled: a path is made per call, and NumPy's reductions cost
    microseconds each there.)"""
    n, d = flat.shape
    scale = 0.0
    for i in range(n):
        for j in range(d):
            v = flat[i, j]
            if v != v:
                return np.nan, 0.0, 0
            scale = max(scale, abs(v))
    shortest, leg = np.inf, 0
    for i in range(n - 1):
        size = 0.0
        for j in range(d):
            size = max(size, abs(flat[i + 1, j] - flat[i, j]))
        if size < shortest:
            shortest, leg = size, i
    return scale, shortest, leg


def _set_bits(packed, byte, bits, n):
    """Set the first n bits of ``bits`` (bool) into ``packed`` (uint8) from byte ``byte`` on, as
    ``np.packbits`` orders them (the first bit the highest of its byte)."""
    for i in range(n // 8):  # whole bytes, without a branch
        v = 0
        for j in range(8):
            v = (v << 1) | bits[8 * i + j]
        packed[byte + i] |= np.uint8(v)
    for b in range(n - n % 8, n):
        if bits[b]:
            packed[byte + b // 8] |= np.uint8(128 >> (b % 8))


def _grown(a, size):
    """``a`` copied into a larger array of ``size`` rows."""
    out = np.empty((size,) + a.shape[1:], a.dtype)
    out[: a.shape[0]] = a
    return out


if AVAILABLE:  # compiled on first use, cached on disk beside this file
    _inline = njit(cache=True, inline="always")
    _grown, _crossing, _cuts, _side = _inline(_grown), _inline(_crossing), _inline(_cuts), _inline(_side)
    _piece_code, _piece_bits = _inline(_piece_code), _inline(_piece_bits)
    _linear_part, _set_bits = _inline(_linear_part), _inline(_set_bits)
    chain_product = njit(cache=True)(chain_product)
    _piece_of, _chain_batches = _inline(_piece_of), njit(cache=True)(_chain_batches)
    _piece_rows, _load_legs = _inline(_piece_rows), njit(cache=True)(_load_legs)
    interval_breakpoint_split = njit(cache=True)(interval_breakpoint_split)
    chain_pieces, point_sizes = njit(cache=True)(chain_pieces), njit(cache=True)(point_sizes)
