"""The line BSP of :mod:`splinecam.geometry.linesplit` compiled with numba, for NumPy arrays on the CPU.

It makes the same pieces as the torch loop (same vertex arithmetic, same classification, same
order of cuts within a polygon), polygon by polygon and depth first, with each piece's pending
lines and sides kept on a stack; :func:`breakpoint_split` is the whole split of an elementwise
op around it.  ``AVAILABLE`` is False when numba is not installed.
"""

from __future__ import annotations

import numpy as np

try:
    from numba import njit
except ImportError:  # numba is optional: the torch loop does the same work
    njit = None

AVAILABLE = njit is not None


def _grow1(a, need):
    """``a`` (n,) with room for ``need`` entries (contents kept)."""
    b = np.empty(max(need, 2 * a.shape[0]), a.dtype)
    b[: a.shape[0]] = a
    return b


def _grow_rows(a, need):
    """``a`` (n, w) with room for ``need`` rows (contents kept)."""
    b = np.empty((max(need, 2 * a.shape[0]), a.shape[1]), a.dtype)
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


def _touch(tv, c0, cn, line):
    """(has_pos, has_neg) of the vertices ``tv[c0:c0+cn]`` w.r.t. ``line`` (a, b, c, tol)."""
    pos = neg = False
    for j in range(c0, c0 + cn):
        s = line[0] * tv[j, 0] + line[1] * tv[j, 1] + line[2]
        if s > line[3]:
            pos = True
        elif s < -line[3]:
            neg = True
    return pos, neg


def split_by_lines(verts, offsets, edge_units, line_offsets, lines, line_units, max_pieces):
    """Cut polygon r of ``verts``/``offsets``/``edge_units`` by its lines
    ``lines[line_offsets[r]:line_offsets[r + 1]]`` (rows a, b, c, tol), in order, until no line
    crosses a piece.

    Returns (verts, offsets, edge_units, parent, sides, complete): the pieces, the polygon each
    came from, and per piece one int8 side (-1, 0, 1) for every line of its polygon, flat in
    piece order; ``complete`` is False (and the rest partial) when more than ``max_pieces``
    pieces would be made.
    """
    n_poly = offsets.shape[0] - 1
    ov = np.empty((max(16, verts.shape[0] * 2), 2), verts.dtype)
    ou = np.empty((ov.shape[0], 2), edge_units.dtype)
    ooff = np.zeros(max(16, n_poly * 2) + 1, offsets.dtype)
    opar = np.empty(ooff.shape[0], offsets.dtype)
    oside = np.empty(max(16, lines.shape[0] * 4), np.int8)
    n_out = n_v = n_s = 0
    # the stack of pieces: vertices, pending lines and sides of each live in LIFO buffers
    sv = np.empty((64, 2), verts.dtype)
    su = np.empty((64, 2), edge_units.dtype)
    sp = np.empty(64, np.int64)
    ss = np.empty(64, np.int8)
    st = np.empty((16, 4), np.int64)  # per stack entry: vertex start, vertex count, pending start, pending count
    cv = np.empty((64, 2), verts.dtype)  # scratch: the children of the piece being cut
    cu = np.empty((64, 2), edge_units.dtype)
    signs = np.zeros(2, np.int64)  # per child: its side of the cut, vertex count and start, pending count
    counts = np.zeros(2, np.int64)
    starts = np.zeros(2, np.int64)
    n_rest = np.zeros(2, np.int64)
    max_m = 1
    for r in range(n_poly):
        max_m = max(max_m, line_offsets[r + 1] - line_offsets[r])
    rest = np.empty((2, max_m), np.int64)
    s = np.empty(16)  # the piece being cut: its vertices' line values and sides
    side = np.empty(16, np.int64)
    rows = np.empty((2, max_m), np.int8)
    for r in range(n_poly):
        l0, m = line_offsets[r], line_offsets[r + 1] - line_offsets[r]
        nv = offsets[r + 1] - offsets[r]
        if nv > sv.shape[0]:
            sv = _grow_rows(sv, nv)
        if nv > su.shape[0]:
            su = _grow_rows(su, nv)
        if m > sp.shape[0]:
            sp = _grow1(sp, m)
        if m > ss.shape[0]:
            ss = _grow1(ss, m)
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
                    return ov[:n_v], ooff[: n_out + 1], ou[:n_v], opar[:n_out], oside[:n_s], False
                if n_v + nv > ov.shape[0]:
                    ov = _grow_rows(ov, n_v + nv)
                if n_v + nv > ou.shape[0]:
                    ou = _grow_rows(ou, n_v + nv)
                _copy2(ov, n_v, sv, v0, nv)
                _copy2(ou, n_v, su, v0, nv)
                n_v += nv
                if n_out + 2 > ooff.shape[0]:
                    ooff = _grow1(ooff, n_out + 2)
                if n_out + 1 > opar.shape[0]:
                    opar = _grow1(opar, n_out + 1)
                if n_s + m > oside.shape[0]:
                    oside = _grow1(oside, n_s + m)
                _copy1(oside, n_s, ss, s0, m)
                n_s += m
                opar[n_out] = r
                n_out += 1
                ooff[n_out] = n_v
                continue
            item = sp[p0]
            line = lines[l0 + item]
            if nv > s.shape[0]:
                s = _grow1(s, nv)
            if nv > side.shape[0]:
                side = _grow1(side, nv)
            pos = neg = False
            for j in range(nv):
                s[j] = line[0] * sv[v0 + j, 0] + line[1] * sv[v0 + j, 1] + line[2]
                side[j] = (1 if s[j] > line[3] else 0) - (1 if s[j] < -line[3] else 0)
                pos = pos or side[j] > 0
                neg = neg or side[j] < 0
            # the children, made in scratch buffers, then moved to the piece's place on the stack
            if 4 * nv + 4 > cv.shape[0]:
                cv = _grow_rows(cv, 4 * nv + 4)
            if 4 * nv + 4 > cu.shape[0]:
                cu = _grow_rows(cu, 4 * nv + 4)
            n_child = 2 if pos and neg else 1
            signs[0], signs[1] = (1, -1) if n_child == 2 else ((-1, 0) if neg else (1, 0))
            k = 0
            for c in range(n_child):
                if n_child == 2:
                    counts[c] = _half(sv, su, v0, nv, s, side, signs[c], line_units[l0 + item, 0],
                                      line_units[l0 + item, 1], cv, cu, k)
                else:
                    _copy2(cv, 0, sv, v0, nv)
                    _copy2(cu, 0, su, v0, nv)
                    counts[c] = nv
                starts[c] = k
                k += counts[c]
            # pending lines and sides of each child: the rest of the parent's, settled on the child
            for c in range(n_child):
                n_rest[c] = 0
                for j in range(m):
                    rows[c, j] = ss[s0 + j]
                rows[c, item] = signs[c]
                for q in range(1, np_):
                    other = sp[p0 + q]
                    hp, hn = _touch(cv, starts[c], counts[c], lines[l0 + other])
                    if hp and hn:
                        rest[c, n_rest[c]] = other
                        n_rest[c] += 1
                    else:
                        rows[c, other] = (1 if hp else 0) - (1 if hn else 0)
            # push the children: the negative one first, so that the positive one is cut next
            if v0 + k > sv.shape[0]:
                sv = _grow_rows(sv, v0 + k)
            if v0 + k > su.shape[0]:
                su = _grow_rows(su, v0 + k)
            if p0 + 2 * np_ > sp.shape[0]:
                sp = _grow1(sp, p0 + 2 * np_)
            if (depth + 2) * m > ss.shape[0]:
                ss = _grow1(ss, (depth + 2) * m)
            if depth + 2 > st.shape[0]:
                st = _grow_rows(st, depth + 2)
            dst_v, dst_p = v0, p0
            for c in range(n_child - 1, -1, -1):
                _copy2(sv, dst_v, cv, starts[c], counts[c])
                _copy2(su, dst_v, cu, starts[c], counts[c])
                for j in range(n_rest[c]):
                    sp[dst_p + j] = rest[c, j]
                for j in range(m):
                    ss[depth * m + j] = rows[c, j]
                st[depth, 0], st[depth, 1], st[depth, 2], st[depth, 3] = dst_v, counts[c], dst_p, n_rest[c]
                dst_v += counts[c]
                dst_p += n_rest[c]
                depth += 1
    return ov[:n_v], ooff[: n_out + 1], ou[:n_v], opar[:n_out], oside[:n_s], True


def breakpoint_split(verts, offsets, edge_units, z, breakpoints, rtol, extent, layer, max_pieces):
    """The split of an elementwise op (see ``ElementwiseOp.split``) in one pass: for region r with
    vertices ``verts[offsets[r]:offsets[r + 1]]`` and unit maps ``z[r]`` (3, U) (value at the uv
    origin, d/du, d/dv), the lines where a unit crosses a breakpoint (k,) cut the region; each
    piece's code (U * k bits, unit-major) is "above the breakpoint" there.

    A (unit, breakpoint) within tolerance of one side over the region keeps that side, one flat
    on its breakpoint reads its side at the region's vertex mean; a piece on a cutting line within
    tolerance reads it at its own vertex mean.  Returns (verts, offsets, edge_units, parent,
    code (n, U * k) bool, complete); ``complete`` as in :func:`split_by_lines`.
    """
    n_poly, n_units, k = offsets.shape[0] - 1, z.shape[2], breakpoints.shape[0]
    base = np.empty((n_poly, n_units * k), np.bool_)
    line_offsets = np.zeros(n_poly + 1, np.int64)
    lines = np.empty((16, 4))
    line_units = np.empty((16, 2), np.int64)
    bit = np.empty(16, np.int64)
    n_lines = 0
    cross = np.empty(n_units * k, np.int64)  # the crossing (unit, breakpoint) bits of one region
    cross_tol = np.empty(n_units * k)
    for r in range(n_poly):
        v0, nv = offsets[r], offsets[r + 1] - offsets[r]
        cx = cy = 0.0
        for j in range(v0, v0 + nv):
            cx += verts[j, 0]
            cy += verts[j, 1]
        cx, cy = cx / nv, cy / nv
        n_cross = 0
        for u in range(n_units):
            c0, a, b = z[r, 0, u], z[r, 1, u], z[r, 2, u]
            hi = lo = c0 + a * verts[v0, 0] + b * verts[v0, 1]
            for j in range(v0 + 1, v0 + nv):
                s = c0 + a * verts[j, 0] + b * verts[j, 1]
                hi, lo = max(hi, s), min(lo, s)
            for q in range(k):
                tol = (abs(a) * extent[0] + abs(b) * extent[1] + abs(c0 - breakpoints[q])) * rtol
                above, below = hi - breakpoints[q] > tol, lo - breakpoints[q] < -tol
                base[r, u * k + q] = above
                if not above and not below:  # flat on the breakpoint: its side at the vertex mean
                    base[r, u * k + q] = c0 + a * cx + b * cy > breakpoints[q]
                elif above and below:
                    cross[n_cross], cross_tol[n_cross] = u * k + q, tol
                    n_cross += 1
        # the region's lines, appended outside the loop over units (no array reassigned in there)
        if n_lines + n_cross > lines.shape[0]:
            lines = _grow_rows(lines, n_lines + n_cross)
        if n_lines + n_cross > line_units.shape[0]:
            line_units = _grow_rows(line_units, n_lines + n_cross)
        if n_lines + n_cross > bit.shape[0]:
            bit = _grow1(bit, n_lines + n_cross)
        for i in range(n_cross):
            u, q = cross[i] // k, cross[i] % k
            lines[n_lines, 0], lines[n_lines, 1] = z[r, 1, u], z[r, 2, u]
            lines[n_lines, 2], lines[n_lines, 3] = z[r, 0, u] - breakpoints[q], cross_tol[i]
            line_units[n_lines, 0], line_units[n_lines, 1] = layer, u
            bit[n_lines] = cross[i]
            n_lines += 1
        line_offsets[r + 1] = n_lines
    pv, po, pu, parent, side, complete = split_by_lines(verts, offsets, edge_units, line_offsets, lines[:n_lines],
                                                        line_units[:n_lines], max_pieces)
    code = np.empty((parent.shape[0], n_units * k), np.bool_)
    e = 0
    for p in range(parent.shape[0]):
        r = parent[p]
        for j in range(n_units * k):
            code[p, j] = base[r, j]
        for line in range(line_offsets[r], line_offsets[r + 1]):
            if side[e] == 0:  # on the line within tolerance: the side at the piece's vertex mean
                cx = cy = 0.0
                for j in range(po[p], po[p + 1]):
                    cx += pv[j, 0]
                    cy += pv[j, 1]
                n = po[p + 1] - po[p]
                code[p, bit[line]] = lines[line, 0] * (cx / n) + lines[line, 1] * (cy / n) + lines[line, 2] > 0
            else:
                code[p, bit[line]] = side[e] > 0
            e += 1
    return pv, po, pu, parent, code, complete


if AVAILABLE:  # compiled on first use, cached on disk beside this file
    _grow1, _grow_rows = njit(cache=True)(_grow1), njit(cache=True)(_grow_rows)
    _half, _touch = njit(cache=True)(_half), njit(cache=True)(_touch)
    _copy1, _copy2 = njit(cache=True)(_copy1), njit(cache=True)(_copy2)
    split_by_lines = njit(cache=True)(split_by_lines)
    breakpoint_split = njit(cache=True)(breakpoint_split)
