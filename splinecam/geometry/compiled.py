"""The line BSP of :mod:`splinecam.geometry.linesplit` compiled with numba, for NumPy arrays on the CPU.

It makes the same pieces as the torch loop (same vertex arithmetic, same classification, same
order of cuts within a polygon), polygon by polygon and depth first, with each piece's pending
lines and sides kept on a stack; :func:`breakpoint_split` is the whole split of an elementwise
op around it, and :func:`gather_pieces` the pieces' states after it.  ``AVAILABLE`` is False
when numba is not installed.

Every call is bounded: it stops after the pieces whose records fit its byte budget or after
about ``max_work`` steps (a line at a vertex, a side copied), whichever comes first, and hands back the
pieces it has not finished (the pieces on its stack, the top first, then the polygons it has
not started) as the *rest*: splitting the rest again, in that order, goes on where the call
stopped.  So nothing a call allocates grows with the size of the arrangement, and the caller
sees its limits, Ctrl-C and progress between calls.
"""

from __future__ import annotations

import numpy as np

__all__ = ["AVAILABLE", "PIECE_BYTES", "breakpoint_split", "gather_pieces", "piece_codes", "settle_child",
           "split_by_lines"]

try:
    from numba import njit
except ImportError:  # numba is optional: the torch loop does the same work
    njit = None

AVAILABLE = njit is not None


# what the cutting kernel reports: all done, an output or a scratch buffer too small to go on
# (grow it, keeping its contents, and call again), or the piece or work limit of the call reached
_DONE, _OUT_FULL, _SCRATCH_FULL, _LIMIT = 0, 1, 2, 3

PIECE_BYTES = 256  # bytes a finished piece holds besides its side records (vertices, edge units, indices)


def _grown1(a, most):
    """(n,) ``a`` -> (min(2n, most),) (at least n + 1) with its entries copied."""
    b = np.empty(max(min(2 * a.shape[0], most), a.shape[0] + 1), a.dtype)
    b[: a.shape[0]] = a
    return b


def _grown2(a, most):
    """(n, w) ``a`` -> (min(2n, most), w) (at least n + 1 rows) with its rows copied."""
    b = np.empty((max(min(2 * a.shape[0], most), a.shape[0] + 1), a.shape[1]), a.dtype)
    b[: a.shape[0]] = a
    return b


def _copy2(dst, d0, src, s0, n):
    """``dst[d0:d0+n] = src[s0:s0+n]`` for (., 2) arrays that do not overlap there."""
    for j in range(n):
        dst[d0 + j, 0], dst[d0 + j, 1] = src[s0 + j, 0], src[s0 + j, 1]


def _copy1(dst, d0, src, s0, n):
    """``dst[d0:d0+n] = src[s0:s0+n]`` for (.,) arrays that do not overlap there."""
    for j in range(n):
        dst[d0 + j] = src[s0 + j]


def _half(sv, su, v0, nv, s, side, sign, unit0, unit1, tv, tu, t0):
    """Write the part of polygon ``sv[v0:v0+nv]`` where ``sign * s >= 0`` to ``tv``, ``tu`` from
    row ``t0`` (as ``cut._half``); returns the number of vertices written."""
    k = t0
    for j in range(nv):
        nx = j + 1 if j + 1 < nv else 0
        sj, sn = sign * side[j], sign * side[nx]
        if sj >= 0:
            tv[k, 0], tv[k, 1] = sv[v0 + j, 0], sv[v0 + j, 1]
            if sj == 0 and sn < 0:
                tu[k, 0], tu[k, 1] = unit0, unit1
            else:
                tu[k, 0], tu[k, 1] = su[v0 + j, 0], su[v0 + j, 1]
            k += 1
        if sj * sn == -1:
            a, b = sign * s[j], sign * s[nx]
            t = a / (a - b)
            tv[k, 0] = sv[v0 + j, 0] + t * (sv[v0 + nx, 0] - sv[v0 + j, 0])
            tv[k, 1] = sv[v0 + j, 1] + t * (sv[v0 + nx, 1] - sv[v0 + j, 1])
            if sj > 0:
                tu[k, 0], tu[k, 1] = unit0, unit1
            else:
                tu[k, 0], tu[k, 1] = su[v0 + j, 0], su[v0 + j, 1]
            k += 1
    return k - t0


def _touch(tv, c0, cn, cuts, o):
    """(has_pos, has_neg) of the vertices ``tv[c0:c0+cn]`` (d columns) w.r.t. the plane of row o of
    ``cuts``, ``cuts[o, :d] . t + cuts[o, d]``, with tolerance ``cuts[o, d + 1]`` (polygons, d = 2,
    and polyhedra, d = 3: the same arithmetic as the torch rules)."""
    d = tv.shape[1]
    lt = cuts[o, d + 1]
    pos = neg = False
    for j in range(c0, c0 + cn):
        s = cuts[o, 0] * tv[j, 0]
        for q in range(1, d):
            s += cuts[o, q] * tv[j, q]
        s += cuts[o, d]
        if s > lt:
            pos = True
        elif s < -lt:
            neg = True
        if pos and neg:
            break
    return pos, neg


def settle_child(cv, start, n, cuts, l0, sp, p0, np_, ss, s0, m, item, sign, rows, rest, c):
    """The BSP's bookkeeping for child c (vertices ``cv[start:start+n]``) of a piece cut by its
    plane ``item``: row c of ``rows``, the sides of the piece's planes (its parent's ``ss[s0:s0+m]``,
    ``sign`` for the cut, the child's side of each pending plane that no longer crosses it) and of
    ``rest``, the pending planes (``sp[p0+1:p0+np_]``, rows ``cuts[l0 + plane]``) that still cross
    it; returns their number.  Both compiled BSPs (polygons and polyhedra) use it."""
    for j in range(m):
        rows[c, j] = ss[s0 + j]
    rows[c, item] = sign
    k = 0
    for q in range(1, np_):
        other = sp[p0 + q]
        hp, hn = _touch(cv, start, n, cuts, l0 + other)
        if hp and hn:
            rest[c, k] = other
            k += 1
        else:
            rows[c, other] = (1 if hp else 0) - (1 if hn else 0)
    return k


def _cut_polygons(verts, offsets, edge_units, line_offsets, lines, line_units, max_pieces, max_work, at,
                  ov, ou, ooff, opar, oside, sv, su, sp, ss, st, cv, cu, s, side, rows, rest):
    """Cut polygons as :func:`split_by_lines` does, appending the pieces to the output buffers
    ``ov``, ``ou``, ``ooff``, ``opar``, ``oside``; the other arrays are scratch (``rows``,
    ``rest``: (2, most lines of a polygon)).  ``at``: where the work stands (polygon, stack depth
    to resume at (0: start the polygon), pieces, vertices and side entries written, work done),
    updated.

    Returns a status (see ``_DONE``): ``_LIMIT`` before a piece past ``max_pieces`` or a cut
    past ``max_work`` (per cut: pending lines times vertices, and the sides copied; only once
    a piece is finished), with the unfinished pieces left on the stack.  Every step checks its room before
    it changes anything, so after ``_OUT_FULL`` / ``_SCRATCH_FULL`` the caller grows those
    buffers (keeping their contents) and calls again to go on.  No array is reassigned here:
    numba then keeps the loops free of reference counting."""
    n_poly = offsets.shape[0] - 1
    signs = np.zeros(2, np.int64)  # per child: its side of the cut, vertex count and start, pending count
    nums = np.zeros(2, np.int64)
    starts = np.zeros(2, np.int64)
    n_rest = np.zeros(2, np.int64)
    n_out, n_v, n_s, work = at[2], at[3], at[4], at[5]
    for r in range(at[0], n_poly):
        l0, m = line_offsets[r], line_offsets[r + 1] - line_offsets[r]
        depth = at[1]
        at[1] = 0
        if depth == 0:  # a new polygon
            nv = offsets[r + 1] - offsets[r]
            if nv + 4 > sv.shape[0] or m > sp.shape[0] or 2 * m > ss.shape[0]:
                at[0], at[2], at[3], at[4], at[5] = r, n_out, n_v, n_s, work
                return _SCRATCH_FULL
            _copy2(sv, 0, verts, offsets[r], nv)
            _copy2(su, 0, edge_units, offsets[r], nv)
            for j in range(m):
                sp[j] = j
                ss[j] = 0
            st[0, 0], st[0, 1], st[0, 2], st[0, 3] = 0, nv, 0, m
            depth = 1
        while depth:
            depth -= 1
            v0, nv, p0, np_ = st[depth, 0], st[depth, 1], st[depth, 2], st[depth, 3]
            s0 = depth * m  # the sides of the piece at stack depth d live at ss[d * m:(d + 1) * m]
            if np_ == 0:  # final
                if n_out >= max_pieces:
                    at[0], at[1], at[2], at[3], at[4], at[5] = r, depth + 1, n_out, n_v, n_s, work
                    return _LIMIT
                if (n_v + nv > ov.shape[0] or n_out + 2 > ooff.shape[0] or n_out + 1 > opar.shape[0]
                        or n_s + m > oside.shape[0]):
                    at[0], at[1], at[2], at[3], at[4], at[5] = r, depth + 1, n_out, n_v, n_s, work
                    return _OUT_FULL
                _copy2(ov, n_v, sv, v0, nv)
                _copy2(ou, n_v, su, v0, nv)
                n_v += nv
                _copy1(oside, n_s, ss, s0, m)
                n_s += m
                opar[n_out] = r
                n_out += 1
                ooff[n_out] = n_v
                continue
            if work >= max_work and n_out:
                at[0], at[1], at[2], at[3], at[4], at[5] = r, depth + 1, n_out, n_v, n_s, work
                return _LIMIT
            # room for the cut: its values, two children (at most nv + 4 vertices in all) and
            # their pending lines and sides on the stack
            if (nv > s.shape[0] or 2 * nv + 8 > cv.shape[0] or v0 + nv + 4 > sv.shape[0]
                    or p0 + 2 * np_ > sp.shape[0] or (depth + 2) * m > ss.shape[0] or depth + 2 > st.shape[0]):
                at[0], at[1], at[2], at[3], at[4], at[5] = r, depth + 1, n_out, n_v, n_s, work
                return _SCRATCH_FULL
            work += 2 * (np_ * nv + m)  # the line on the children's vertices, the sides of both copied
            item = sp[p0]
            la, lb, lc, lt = lines[l0 + item, 0], lines[l0 + item, 1], lines[l0 + item, 2], lines[l0 + item, 3]
            pos = neg = False
            for j in range(nv):
                s[j] = la * sv[v0 + j, 0] + lb * sv[v0 + j, 1] + lc
                side[j] = (1 if s[j] > lt else 0) - (1 if s[j] < -lt else 0)
                pos = pos or side[j] > 0
                neg = neg or side[j] < 0
            # the children, made in scratch buffers, then moved to the piece's place on the stack
            n_child = 2 if pos and neg else 1
            signs[0], signs[1] = (1, -1) if n_child == 2 else ((-1, 0) if neg else (1, 0))
            k = 0
            for c in range(n_child):
                if n_child == 2:
                    nums[c] = _half(sv, su, v0, nv, s, side, signs[c], line_units[l0 + item, 0],
                                    line_units[l0 + item, 1], cv, cu, k)
                else:
                    _copy2(cv, 0, sv, v0, nv)
                    _copy2(cu, 0, su, v0, nv)
                    nums[c] = nv
                starts[c] = k
                k += nums[c]
            # pending lines and sides of each child: the rest of the parent's, settled on the child
            for c in range(n_child):
                n_rest[c] = settle_child(cv, starts[c], nums[c], lines, l0, sp, p0, np_, ss, s0, m, item, signs[c],
                                         rows, rest, c)
            # push the children: the negative one first, so that the positive one is cut next
            dst_v, dst_p = v0, p0
            for c in range(n_child - 1, -1, -1):
                _copy2(sv, dst_v, cv, starts[c], nums[c])
                _copy2(su, dst_v, cu, starts[c], nums[c])
                for j in range(n_rest[c]):
                    sp[dst_p + j] = rest[c, j]
                for j in range(m):
                    ss[depth * m + j] = rows[c, j]
                st[depth, 0], st[depth, 1], st[depth, 2], st[depth, 3] = dst_v, nums[c], dst_p, n_rest[c]
                dst_v += nums[c]
                dst_p += n_rest[c]
                depth += 1
    at[0], at[2], at[3], at[4], at[5] = n_poly, n_out, n_v, n_s, work
    return _DONE


def split_by_lines(verts, offsets, edge_units, line_offsets, lines, line_units, budget, piece_bytes, max_work):
    """Cut polygon r of ``verts``/``offsets``/``edge_units`` by its lines
    ``lines[line_offsets[r]:line_offsets[r + 1]]`` (rows a, b, c, tol), in order, until no line
    crosses a piece; within one call's bounds (see the module): the pieces whose records fit
    ``budget`` bytes (each piece costs its side records, ``PIECE_BYTES`` and ``piece_bytes``
    more for the caller's records) and about ``max_work`` evaluations.

    Returns (verts, offsets, edge_units, parent, sides, rest_verts, rest_offsets,
    rest_edge_units, rest_parent): the finished pieces, the polygon each came from, per piece one
    int8 side (-1, 0, 1) for every line of its polygon (flat in piece order), and the rest
    (unfinished pieces, in the order that goes on with the work) with their polygons.  Only this
    driver grows buffers; the kernel's loops reassign nothing.
    """
    n_poly = offsets.shape[0] - 1
    most = most_verts = 0
    for r in range(n_poly):
        most = max(most, line_offsets[r + 1] - line_offsets[r])
        most_verts = max(most_verts, offsets[r + 1] - offsets[r])
    max_pieces = max(1, budget // (most + PIECE_BYTES + piece_bytes))
    # first sizes: about what a split with this many lines makes (each buffer doubles when full,
    # those of one entry per piece up to the piece limit)
    pieces = min(4 * (n_poly + lines.shape[0]) + 16, max_pieces + 1)
    ov, ou = np.empty((6 * pieces, 2), verts.dtype), np.empty((6 * pieces, 2), np.int64)
    ooff, opar = np.zeros(pieces + 1, np.int64), np.empty(pieces, np.int64)
    oside = np.empty(pieces * max(most, 1), np.int8)
    depth = min(most, 32) + 2  # the stack of one polygon is at most (lines + 1) deep; it grows when full
    stack_rows = depth * (most_verts + 8)
    sv, su = np.empty((stack_rows, 2), verts.dtype), np.empty((stack_rows, 2), np.int64)
    sp, ss = np.empty(depth * max(most, 1), np.int64), np.empty((depth + 1) * max(most, 1), np.int8)
    st = np.empty((depth, 4), np.int64)
    cv = np.empty((2 * (most_verts + depth) + 8, 2), verts.dtype)
    cu = np.empty((2 * (most_verts + depth) + 8, 2), np.int64)
    s, side = np.empty(most_verts + depth + 4, verts.dtype), np.empty(most_verts + depth + 4, np.int64)
    sides, rest = np.empty((2, max(most, 1)), np.int8), np.empty((2, max(most, 1)), np.int64)
    at = np.zeros(6, np.int64)
    big = 1 << 62
    status = _OUT_FULL
    while status == _OUT_FULL or status == _SCRATCH_FULL:
        status = _cut_polygons(verts, offsets, edge_units, line_offsets, lines, line_units, max_pieces, max_work, at,
                               ov, ou, ooff, opar, oside, sv, su, sp, ss, st, cv, cu, s, side, sides, rest)
        if status == _OUT_FULL:
            ov, ou, oside = _grown2(ov, big), _grown2(ou, big), _grown1(oside, max_pieces * max(most, 1))
            ooff, opar = _grown1(ooff, max_pieces + 1), _grown1(opar, max_pieces)
        elif status == _SCRATCH_FULL:
            sv, su, sp, ss, st = _grown2(sv, big), _grown2(su, big), _grown1(sp, big), _grown1(ss, big), _grown2(st, big)
            cv, cu, s, side = _grown2(cv, big), _grown2(cu, big), _grown1(s, big), _grown1(side, big)
    n_out, n_v, n_s = at[2], at[3], at[4]
    r, depth = (at[0], at[1]) if status == _LIMIT else (n_poly, 0)
    rv, ro, ru, rp = _rest(verts, offsets, edge_units, sv, su, st, r, depth)
    return ov[:n_v], ooff[: n_out + 1], ou[:n_v], opar[:n_out], oside[:n_s], rv, ro, ru, rp


def _rest(verts, offsets, edge_units, sv, su, st, r, depth):
    """The pieces a call left: the ``depth`` pieces on the stack of polygon ``r`` (top first),
    then polygons r + 1, ... whole.  Returns (verts, offsets, edge_units, parent)."""
    n_poly = offsets.shape[0] - 1
    later = max(n_poly - r - 1, 0) if depth else n_poly - r
    first = r + 1 if depth else r
    n = depth + later
    n_v = offsets[n_poly] - offsets[first] if later else 0
    for d in range(depth):
        n_v += st[d, 1]
    rv, ru = np.empty((n_v, 2), verts.dtype), np.empty((n_v, 2), np.int64)
    ro, rp = np.zeros(n + 1, np.int64), np.empty(n, np.int64)
    k = 0
    for i in range(depth):
        d = depth - 1 - i
        _copy2(rv, k, sv, st[d, 0], st[d, 1])
        _copy2(ru, k, su, st[d, 0], st[d, 1])
        k += st[d, 1]
        ro[i + 1], rp[i] = k, r
    for i in range(later):
        q = first + i
        nv = offsets[q + 1] - offsets[q]
        _copy2(rv, k, verts, offsets[q], nv)
        _copy2(ru, k, edge_units, offsets[q], nv)
        k += nv
        ro[depth + i + 1], rp[depth + i] = k, q
    return rv, ro, ru, rp


def _unit_lines(verts, offsets, z, breakpoints, rtol, extent, layer, r0, base, line_offsets, lines, line_units, bit,
                n_lines, cross, cross_tol):
    """For polygons r0, r0 + 1, ... (see :func:`breakpoint_split`): the settled bits ``base[r]``
    and the crossing lines, appended to ``lines``, ``line_units``, ``bit`` at ``n_lines[0]``
    (updated), with ``line_offsets[r + 1]``.  Returns the polygon whose lines did not fit (grow
    them and call again from there), or the number of polygons when all are done."""
    n_poly, n_units, k = offsets.shape[0] - 1, z.shape[2], breakpoints.shape[0]
    hi, lo = np.empty(n_units), np.empty(n_units)
    for r in range(r0, n_poly):
        v0, nv = offsets[r], offsets[r + 1] - offsets[r]
        cx = cy = 0.0
        for j in range(v0, v0 + nv):
            cx += verts[j, 0]
            cy += verts[j, 1]
        cx, cy = cx / nv, cy / nv
        c0s, as_, bs = z[r, 0], z[r, 1], z[r, 2]
        x, y = verts[v0, 0], verts[v0, 1]
        for u in range(n_units):  # the units' ranges over the vertices, unit-contiguous (vectorised)
            hi[u] = lo[u] = c0s[u] + as_[u] * x + bs[u] * y
        for j in range(v0 + 1, v0 + nv):
            x, y = verts[j, 0], verts[j, 1]
            for u in range(n_units):
                s = c0s[u] + as_[u] * x + bs[u] * y
                hi[u] = s if s > hi[u] else hi[u]
                lo[u] = s if s < lo[u] else lo[u]
        n_cross = 0
        for u in range(n_units):
            c0, a, b = c0s[u], as_[u], bs[u]
            for q in range(k):
                tol = (abs(a) * extent[0] + abs(b) * extent[1] + abs(c0 - breakpoints[q])) * rtol
                above, below = hi[u] - breakpoints[q] > tol, lo[u] - breakpoints[q] < -tol
                base[r, u * k + q] = above
                if not above and not below:  # flat on the breakpoint: its side at the vertex mean
                    base[r, u * k + q] = c0 + a * cx + b * cy > breakpoints[q]
                elif above and below:
                    cross[n_cross], cross_tol[n_cross] = u * k + q, tol
                    n_cross += 1
        n = n_lines[0]
        if n + n_cross > lines.shape[0]:
            return r
        for i in range(n_cross):
            u, q = cross[i] // k, cross[i] % k
            lines[n, 0], lines[n, 1] = z[r, 1, u], z[r, 2, u]
            lines[n, 2], lines[n, 3] = z[r, 0, u] - breakpoints[q], cross_tol[i]
            line_units[n, 0], line_units[n, 1] = layer, u
            bit[n] = cross[i]
            n += 1
        n_lines[0] = n
        line_offsets[r + 1] = n
    return n_poly


def piece_codes(base, line_offsets, lines, bit, pv, po, parent, side, code):
    """``code[p]`` (see :func:`breakpoint_split`): the settled bits of piece p's polygon (or
    polyhedron: ``pv`` has d columns, rows of ``lines`` the plane ``lines[:d] . t + lines[d]``)
    and its side of each line that crossed it (at its vertex mean where it lies on the line)."""
    d = pv.shape[1]
    mean = np.zeros(d)
    e = 0
    for p in range(parent.shape[0]):
        r = parent[p]
        for j in range(base.shape[1]):
            code[p, j] = base[r, j]
        for line in range(line_offsets[r], line_offsets[r + 1]):
            if side[e] == 0:  # on the line within tolerance: the side at the piece's vertex mean
                mean[:] = 0.0
                for j in range(po[p], po[p + 1]):
                    for q in range(d):
                        mean[q] += pv[j, q]
                n = po[p + 1] - po[p]
                value = lines[line, 0] * (mean[0] / n)
                for q in range(1, d):
                    value += lines[line, q] * (mean[q] / n)
                code[p, bit[line]] = value + lines[line, d] > 0
            else:
                code[p, bit[line]] = side[e] > 0
            e += 1


def breakpoint_split(verts, offsets, edge_units, z, breakpoints, rtol, extent, layer, budget, max_work):
    """The split of an elementwise op (see ``ElementwiseOp.split``) compiled: for region r with
    vertices ``verts[offsets[r]:offsets[r + 1]]`` and unit maps ``z[r]`` (3, U) (value at the uv
    origin, d/du, d/dv), the lines where a unit crosses a breakpoint (k,) cut the region; each
    piece's code (U * k bits, unit-major) is "above the breakpoint" there.

    A (unit, breakpoint) within tolerance of one side over the region keeps that side, one flat
    on its breakpoint reads its side at the region's vertex mean; a piece on a cutting line within
    tolerance reads it at its own vertex mean.  Bounded as :func:`split_by_lines` (``budget``
    bytes for the pieces' records, codes included).  Returns (verts, offsets, edge_units,
    parent, code (n, U * k) bool, rest_verts, rest_offsets, rest_edge_units, rest_parent).
    """
    n_poly, bits = offsets.shape[0] - 1, z.shape[2] * breakpoints.shape[0]
    base = np.empty((n_poly, bits), np.bool_)
    line_offsets = np.zeros(n_poly + 1, np.int64)
    room = max(64, 2 * n_poly)
    lines, line_units, bit = np.empty((room, 4)), np.empty((room, 2), np.int64), np.empty(room, np.int64)
    n_lines = np.zeros(1, np.int64)
    cross, cross_tol = np.empty(bits, np.int64), np.empty(bits)
    big = 1 << 62
    r = _unit_lines(verts, offsets, z, breakpoints, rtol, extent, layer, 0, base, line_offsets, lines, line_units,
                    bit, n_lines, cross, cross_tol)
    while r < n_poly:
        lines, line_units, bit = _grown2(lines, big), _grown2(line_units, big), _grown1(bit, big)
        r = _unit_lines(verts, offsets, z, breakpoints, rtol, extent, layer, r, base, line_offsets, lines, line_units,
                        bit, n_lines, cross, cross_tol)
    n = n_lines[0]
    pv, po, pu, parent, side, rv, ro, ru, rp = split_by_lines(verts, offsets, edge_units, line_offsets, lines[:n],
                                                              line_units[:n], budget, bits, max_work)
    code = np.empty((parent.shape[0], bits), np.bool_)
    piece_codes(base, line_offsets, lines, bit, pv, po, parent, side, code)
    return pv, po, pu, parent, code, rv, ro, ru, rp


def gather_pieces(state, parent, code, slopes, intercepts, with_intercepts):
    """States (n, 1 + d, U) of pieces through an elementwise op's piece, from the states
    (R, 1 + d, U) of their regions ``parent`` (n,): unit u of piece p is ``slopes[c] * z + intercepts[c]``
    (the intercept on the value row only, if ``with_intercepts``), c = ``code[p, u].sum()`` the
    breakpoints it is above (code (n, U, k) bool).  One pass, the same arithmetic as
    ``ElementwiseOp.push(state[parent], code)``."""
    n, rows, units, k = parent.shape[0], state.shape[1], state.shape[2], code.shape[2]
    out = np.empty((n, rows, units), state.dtype)
    slope, intercept = np.empty(units, state.dtype), np.empty(units, state.dtype)
    for p in range(n):
        r = parent[p]
        for u in range(units):
            c = 0
            for q in range(k):
                c += code[p, u, q]
            slope[u], intercept[u] = slopes[c], intercepts[c]
        for j in range(rows):  # row by row: contiguous runs of units
            for u in range(units):
                out[p, j, u] = state[r, j, u] * slope[u]
        if with_intercepts:
            for u in range(units):
                out[p, 0, u] += intercept[u]
    return out


if AVAILABLE:  # compiled on first use, cached on disk beside this file
    # the helpers are inlined where they are called: no array views or calls in the inner loops
    _half, _touch = njit(inline="always")(_half), njit(inline="always")(_touch)
    settle_child = njit(inline="always")(settle_child)
    _copy1, _copy2 = njit(inline="always")(_copy1), njit(inline="always")(_copy2)
    _grown1, _grown2 = njit(cache=True)(_grown1), njit(cache=True)(_grown2)
    _cut_polygons, _unit_lines = njit(cache=True)(_cut_polygons), njit(cache=True)(_unit_lines)
    piece_codes, _rest = njit(cache=True)(piece_codes), njit(cache=True)(_rest)
    split_by_lines = njit(cache=True)(split_by_lines)
    breakpoint_split = njit(cache=True)(breakpoint_split)
    gather_pieces = njit(cache=True)(gather_pieces)
