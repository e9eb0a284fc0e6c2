"""The plane BSP of :func:`splinecam.geometry.split_polyhedra` compiled with numba, for float64
NumPy arrays on the CPU (see :mod:`splinecam.geometry.polyhedra` for the representation).

It makes the same pieces as the torch loop (the same vertex arithmetic, classification and face
bookkeeping as ``cut_polyhedra`` and ``polyhedra_sides``), polyhedron by polyhedron and depth
first, the positive side of each cut first, with each piece's pending planes and sides kept on a
stack; :func:`breakpoint_split` is the whole split of an elementwise op around it.  ``AVAILABLE``
is False when numba is not installed.

Every call is bounded as the 2-D kernel (:mod:`splinecam.geometry.compiled`): it stops before a
piece past its byte budget or a cut past about ``max_work`` steps (once a piece is finished) and
hands back the pieces on its stack (the top first) and the polyhedra it has not started as the
*rest*, to split again in that order.
"""

from __future__ import annotations

import numpy as np

from .compiled import AVAILABLE, piece_codes, settle_child

__all__ = ["AVAILABLE", "MAX_FACES", "PIECE_BYTES", "TOO_MANY_FACES", "breakpoint_split", "split_by_planes"]

PIECE_BYTES = 1024  # bytes a finished piece holds besides its side records (vertices, faces, indices)
MAX_FACES = 63  # faces one polyhedron may have (one bit each in an int64 incidence mask)
_DONE, _LIMIT, TOO_MANY_FACES = 0, 1, 2  # the status of a call


def _grow(a, need):
    """``a`` with at least ``need`` rows (doubling), its rows copied."""
    if need <= a.shape[0]:
        return a
    out = np.empty((max(need, 2 * a.shape[0]),) + a.shape[1:], a.dtype)
    out[: a.shape[0]] = a
    return out


def _half(sv, si, sf, su, v0, nv, f0, nf, s, side, sign, xv, xi, nx, pl, u0, u1, cv, ci, cf, cu, k, kf, cnt):
    """Write the part where ``sign * plane >= 0`` of the piece (vertices ``sv[v0:v0+nv]`` with
    incidence ``si``, faces ``sf[f0:f0+nf]`` / ``su``) to ``cv``, ``ci`` from row ``k`` and
    ``cf``, ``cu`` from row ``kf`` (as ``polyhedra._half``): its vertices on that side, then the
    crossing points ``xv[:nx]``; the new face (the plane times ``sign``, units ``u0, u1``);
    faces left with fewer than three vertices dropped, the bits renumbered.  Returns the numbers
    of vertices and faces written."""
    new_bit = np.int64(1) << nf
    k0 = k
    for j in range(nv):
        if sign * side[j] >= 0:
            cv[k, 0], cv[k, 1], cv[k, 2] = sv[v0 + j, 0], sv[v0 + j, 1], sv[v0 + j, 2]
            ci[k] = si[v0 + j] | (new_bit if side[j] == 0 else 0)
            k += 1
    for j in range(nx):
        cv[k, 0], cv[k, 1], cv[k, 2] = xv[j, 0], xv[j, 1], xv[j, 2]
        ci[k] = xi[j] | new_bit
        k += 1
    for b in range(nf + 1):
        cnt[b] = 0
    for j in range(k0, k):
        m = ci[j]
        for b in range(nf + 1):
            cnt[b] += (m >> b) & 1
    n_live = 0
    for b in range(nf + 1):  # cnt becomes the new position of each live face, -1 for a dead one
        if cnt[b] >= 3:
            if b < nf:
                for q in range(4):
                    cf[kf + n_live, q] = sf[f0 + b, q]
                cu[kf + n_live, 0], cu[kf + n_live, 1] = su[f0 + b, 0], su[f0 + b, 1]
            else:
                for q in range(4):
                    cf[kf + n_live, q] = sign * pl[q]
                cu[kf + n_live, 0], cu[kf + n_live, 1] = u0, u1
            cnt[b] = n_live
            n_live += 1
        else:
            cnt[b] = -1
    for j in range(k0, k):
        m, out = ci[j], np.int64(0)
        for b in range(nf + 1):
            if (m >> b) & 1 and cnt[b] >= 0:
                out |= np.int64(1) << cnt[b]
        ci[j] = out
    return k - k0, n_live


def _copy_piece(sv, si, sf, su, v0, nv, f0, nf, dv, di, df, du, k, kf):
    """Copy a piece's vertices and faces to ``dv``, ``di`` (from row k) and ``df``, ``du`` (from kf)."""
    for j in range(nv):
        dv[k + j, 0], dv[k + j, 1], dv[k + j, 2] = sv[v0 + j, 0], sv[v0 + j, 1], sv[v0 + j, 2]
        di[k + j] = si[v0 + j]
    for j in range(nf):
        for q in range(4):
            df[kf + j, q] = sf[f0 + j, q]
        du[kf + j, 0], du[kf + j, 1] = su[f0 + j, 0], su[f0 + j, 1]


def split_by_planes(verts, offsets, incidence, planes, face_offsets, face_units, plane_offsets, cuts, cut_units,
                    budget, piece_bytes, max_work):
    """Cut polyhedron r (``verts[offsets[r]:offsets[r + 1]]``, ``incidence``, faces ``planes`` /
    ``face_units`` from ``face_offsets``) by its planes ``cuts[plane_offsets[r]:plane_offsets[r + 1]]``
    (rows a, b, c, d, tol; the new faces carry ``cut_units``), in order, until no plane crosses a
    piece; within the call's bounds (see the module; each piece costs its side records,
    ``PIECE_BYTES`` and ``piece_bytes`` more for the caller's records).

    Returns (status, pieces, parent, sides, rest, rest_parent): status 0, or 2 when a piece would
    have more than ``MAX_FACES`` faces; pieces and rest as tuples (verts, offsets, incidence,
    planes, face_offsets, face_units); per piece one int8 side (-1, 0, 1) for every plane of
    its polyhedron (flat in piece order)."""
    n_poly = offsets.shape[0] - 1
    most = most_v = most_f = 0
    for r in range(n_poly):
        most = max(most, plane_offsets[r + 1] - plane_offsets[r])
        most_v = max(most_v, offsets[r + 1] - offsets[r])
        most_f = max(most_f, face_offsets[r + 1] - face_offsets[r])
    max_pieces = max(1, budget // (most + PIECE_BYTES + piece_bytes))
    cap = min(4 * (n_poly + cuts.shape[0]) + 16, max_pieces + 1)
    ov, oi = np.empty((8 * cap, 3)), np.empty(8 * cap, np.int64)
    of, ou = np.empty((6 * cap, 4)), np.empty((6 * cap, 2), np.int64)
    ooff, ofoff, opar = np.zeros(cap + 1, np.int64), np.zeros(cap + 1, np.int64), np.empty(cap, np.int64)
    oside = np.empty(cap * max(most, 1), np.int8)
    # the stack: pieces (vertices, faces), their pending planes and sides, and (v0, nv, f0, nf, p0, np)
    rows_v, rows_f = 4 * (most_v + 8) * (min(most, 16) + 2), 4 * (most_f + 8) * (min(most, 16) + 2)
    sv, si = np.empty((rows_v, 3)), np.empty(rows_v, np.int64)
    sf, su = np.empty((rows_f, 4)), np.empty((rows_f, 2), np.int64)
    sp, ss = np.empty((most + 2) * max(most, 1), np.int64), np.empty((most + 2) * max(most, 1), np.int8)
    st = np.empty((most + 2, 6), np.int64)
    cv, ci = np.empty((4 * most_v + 64, 3)), np.empty(4 * most_v + 64, np.int64)
    cf, cu = np.empty((2 * MAX_FACES + 4, 4)), np.empty((2 * MAX_FACES + 4, 2), np.int64)
    xv, xi = np.empty((4 * most_v + 64, 3)), np.empty(4 * most_v + 64, np.int64)
    s, side = np.empty(4 * most_v + 64), np.empty(4 * most_v + 64, np.int64)
    rows = np.empty((2, max(most, 1)), np.int8)
    rest = np.empty((2, max(most, 1)), np.int64)
    cnt = np.empty(MAX_FACES + 2, np.int64)
    signs, nums, fnums, n_rest = np.zeros(2, np.int64), np.zeros(2, np.int64), np.zeros(2, np.int64), np.zeros(2, np.int64)
    n_out = n_v = n_f = n_s = work = 0
    status = _DONE
    r, depth = 0, 0
    while r < n_poly:
        l0, m = plane_offsets[r], plane_offsets[r + 1] - plane_offsets[r]
        nv, nf = offsets[r + 1] - offsets[r], face_offsets[r + 1] - face_offsets[r]
        sv, si = _grow(sv, nv), _grow(si, nv)
        sf, su = _grow(sf, nf), _grow(su, nf)
        _copy_piece(verts, incidence, planes, face_units, offsets[r], nv, face_offsets[r], nf, sv, si, sf, su, 0, 0)
        for j in range(m):
            sp[j] = j
            ss[j] = 0
        st[0, 0], st[0, 1], st[0, 2], st[0, 3], st[0, 4], st[0, 5] = 0, nv, 0, nf, 0, m
        depth = 1
        while depth:
            depth -= 1
            v0, nv, f0, nf, p0, np_ = st[depth, 0], st[depth, 1], st[depth, 2], st[depth, 3], st[depth, 4], st[depth, 5]
            s0 = depth * m
            if np_ == 0:  # final
                if n_out >= max_pieces:
                    status = _LIMIT
                    depth += 1
                    break
                ov, oi = _grow(ov, n_v + nv), _grow(oi, n_v + nv)
                of, ou = _grow(of, n_f + nf), _grow(ou, n_f + nf)
                ooff, ofoff, opar = _grow(ooff, n_out + 2), _grow(ofoff, n_out + 2), _grow(opar, n_out + 1)
                oside = _grow(oside, n_s + m)
                _copy_piece(sv, si, sf, su, v0, nv, f0, nf, ov, oi, of, ou, n_v, n_f)
                for j in range(m):
                    oside[n_s + j] = ss[s0 + j]
                n_v, n_f, n_s = n_v + nv, n_f + nf, n_s + m
                opar[n_out] = r
                n_out += 1
                ooff[n_out], ofoff[n_out] = n_v, n_f
                continue
            if work >= max_work and n_out:
                status = _LIMIT
                depth += 1
                break
            work += 2 * (np_ * nv + m)
            item = sp[p0]
            pl = cuts[l0 + item]
            t = pl[4]
            s, side = _grow(s, nv), _grow(side, nv)
            pos = neg = False
            for j in range(nv):
                s[j] = sv[v0 + j, 0] * pl[0] + sv[v0 + j, 1] * pl[1] + sv[v0 + j, 2] * pl[2] + pl[3]
                side[j] = (1 if s[j] > t else 0) - (1 if s[j] < -t else 0)
                pos = pos or side[j] > 0
                neg = neg or side[j] < 0
            n_child = 2 if pos and neg else 1
            if n_child == 2 and nf >= MAX_FACES:
                status = TOO_MANY_FACES
                depth += 1
                break
            if n_child == 2:
                nx = 0  # the points where edges (two shared faces) cross the plane, positive end first
                for i in range(nv):
                    if side[i] <= 0:
                        continue
                    for j in range(nv):
                        if side[j] >= 0:
                            continue
                        shared = si[v0 + i] & si[v0 + j]
                        if shared & (shared - 1):
                            if nx >= xv.shape[0]:
                                xv, xi = _grow(xv, nx + 1), _grow(xi, nx + 1)
                            tt = s[i] / (s[i] - s[j])
                            for q in range(3):
                                xv[nx, q] = sv[v0 + i, q] + tt * (sv[v0 + j, q] - sv[v0 + i, q])
                            xi[nx] = shared
                            nx += 1
                cv, ci = _grow(cv, 2 * (nv + nx)), _grow(ci, 2 * (nv + nx))
                signs[0], signs[1] = 1, -1
                k = kf = 0
                for c in range(2):
                    nums[c], fnums[c] = _half(sv, si, sf, su, v0, nv, f0, nf, s, side, signs[c], xv, xi, nx, pl,
                                              cut_units[l0 + item, 0], cut_units[l0 + item, 1], cv, ci, cf, cu, k,
                                              kf, cnt)
                    k, kf = k + nums[c], kf + fnums[c]
            else:
                signs[0] = -1 if neg else 1
                cv, ci = _grow(cv, nv), _grow(ci, nv)
                _copy_piece(sv, si, sf, su, v0, nv, f0, nf, cv, ci, cf, cu, 0, 0)
                nums[0], fnums[0] = nv, nf
            # pending planes and sides of each child: the rest of the parent's, settled on the child
            k = 0
            for c in range(n_child):
                n_rest[c] = settle_child(cv, k, nums[c], cuts, l0, sp, p0, np_, ss, s0, m, item, signs[c], rows, rest, c)
                k += nums[c]
            # push the children where the parent was: the negative one first, the positive one is cut next
            need_v, need_f = v0 + nums[0] + nums[1] * (n_child - 1), f0 + fnums[0] + fnums[1] * (n_child - 1)
            sv, si = _grow(sv, need_v), _grow(si, need_v)
            sf, su = _grow(sf, need_f), _grow(su, need_f)
            sp, ss = _grow(sp, p0 + 2 * np_ + 1), _grow(ss, (depth + 3) * m + 1)
            st = _grow(st, depth + 3)
            dst_v, dst_f, dst_p = v0, f0, p0
            for c in range(n_child - 1, -1, -1):
                kv = nums[0] if c == 1 else 0
                kf = fnums[0] if c == 1 else 0
                _copy_piece(cv, ci, cf, cu, kv, nums[c], kf, fnums[c], sv, si, sf, su, dst_v, dst_f)
                for j in range(n_rest[c]):
                    sp[dst_p + j] = rest[c, j]
                for j in range(m):
                    ss[depth * m + j] = rows[c, j]
                st[depth, 0], st[depth, 1], st[depth, 2] = dst_v, nums[c], dst_f
                st[depth, 3], st[depth, 4], st[depth, 5] = fnums[c], dst_p, n_rest[c]
                dst_v, dst_f, dst_p = dst_v + nums[c], dst_f + fnums[c], dst_p + n_rest[c]
                depth += 1
        if status != _DONE:
            break
        r += 1
    pieces = (ov[:n_v], ooff[: n_out + 1], oi[:n_v], of[:n_f], ofoff[: n_out + 1], ou[:n_f])  # views, as the 2-D kernel
    if status == _DONE:
        depth = 0
    rest_arrays, rest_parent = _rest(verts, offsets, incidence, planes, face_offsets, face_units, sv, si, sf, su, st, r,
                                     depth)
    return status, pieces, opar[:n_out], oside[:n_s], rest_arrays, rest_parent


def _rest(verts, offsets, incidence, planes, face_offsets, face_units, sv, si, sf, su, st, r, depth):
    """The pieces a call left: the ``depth`` pieces on the stack of polyhedron ``r`` (top first),
    then polyhedra r + 1, ... whole (all from r if ``depth`` is 0).  Returns the arrays and the parents."""
    n_poly = offsets.shape[0] - 1
    first = r + 1 if depth else r
    later = max(n_poly - first, 0)
    n_v = offsets[n_poly] - offsets[first] if later else 0
    n_f = face_offsets[n_poly] - face_offsets[first] if later else 0
    for d in range(depth):
        n_v += st[d, 1]
        n_f += st[d, 3]
    rv, ri = np.empty((n_v, 3)), np.empty(n_v, np.int64)
    rf, ru = np.empty((n_f, 4)), np.empty((n_f, 2), np.int64)
    ro, rfo, rp = np.zeros(depth + later + 1, np.int64), np.zeros(depth + later + 1, np.int64), np.empty(depth + later, np.int64)
    k = kf = 0
    for i in range(depth + later):
        if i < depth:
            d = depth - 1 - i
            _copy_piece(sv, si, sf, su, st[d, 0], st[d, 1], st[d, 2], st[d, 3], rv, ri, rf, ru, k, kf)
            k, kf = k + st[d, 1], kf + st[d, 3]
            rp[i] = r
        else:
            q = first + i - depth
            nv, nf = offsets[q + 1] - offsets[q], face_offsets[q + 1] - face_offsets[q]
            _copy_piece(verts, incidence, planes, face_units, offsets[q], nv, face_offsets[q], nf, rv, ri, rf, ru, k, kf)
            k, kf = k + nv, kf + nf
            rp[i] = q
        ro[i + 1], rfo[i + 1] = k, kf
    return (rv, ro, ri, rf, rfo, ru), rp


def _unit_planes(verts, offsets, z, breakpoints, rtol, extent, layer, base, plane_offsets):
    """For every polyhedron r: the settled bits ``base[r]`` (U * k, unit-major: above the
    breakpoint) and the (unit, breakpoint) planes that cross it (as ``ElementwiseOp.split``):
    returns the planes (L, 5) (a, b, c, d, tol), their units (L, 2) and bits (L,), with
    ``plane_offsets`` filled."""
    n_poly, n_units, k = offsets.shape[0] - 1, z.shape[2], breakpoints.shape[0]
    hi, lo = np.empty(n_units), np.empty(n_units)
    cuts, units, bit = np.empty((max(64, 2 * n_poly), 5)), np.empty((max(64, 2 * n_poly), 2), np.int64), np.empty(max(64, 2 * n_poly), np.int64)
    n = 0
    for r in range(n_poly):
        v0, nv = offsets[r], offsets[r + 1] - offsets[r]
        cx = cy = cz = 0.0
        for j in range(v0, v0 + nv):
            cx += verts[j, 0]
            cy += verts[j, 1]
            cz += verts[j, 2]
        cx, cy, cz = cx / nv, cy / nv, cz / nv
        for u in range(n_units):
            hi[u], lo[u] = -np.inf, np.inf
        for j in range(v0, v0 + nv):
            x, y, w = verts[j, 0], verts[j, 1], verts[j, 2]
            for u in range(n_units):
                s = z[r, 0, u] + x * z[r, 1, u] + y * z[r, 2, u] + w * z[r, 3, u]
                hi[u] = s if s > hi[u] else hi[u]
                lo[u] = s if s < lo[u] else lo[u]
        for u in range(n_units):
            c0, a, b, c = z[r, 0, u], z[r, 1, u], z[r, 2, u], z[r, 3, u]
            for q in range(k):
                tol = (abs(a) * extent[0] + abs(b) * extent[1] + abs(c) * extent[2] + abs(c0 - breakpoints[q])) * rtol
                above, below = hi[u] - breakpoints[q] > tol, lo[u] - breakpoints[q] < -tol
                base[r, u * k + q] = above
                if not above and not below:  # flat on the breakpoint: its side at the vertex mean
                    base[r, u * k + q] = a * cx + b * cy + c * cz + c0 > breakpoints[q]
                elif above and below:
                    cuts, units, bit = _grow(cuts, n + 1), _grow(units, n + 1), _grow(bit, n + 1)
                    cuts[n, 0], cuts[n, 1], cuts[n, 2], cuts[n, 3], cuts[n, 4] = a, b, c, c0 - breakpoints[q], tol
                    units[n, 0], units[n, 1], bit[n] = layer, u, u * k + q
                    n += 1
        plane_offsets[r + 1] = n
    return cuts[:n], units[:n], bit[:n]


def breakpoint_split(verts, offsets, incidence, planes, face_offsets, face_units, z, breakpoints, rtol, extent, layer,
                     budget, max_work):
    """The split of an elementwise op compiled for polyhedra (see ``ElementwiseOp.split``): the
    planes where a unit's map ``z[r]`` (4, U) (value at the chart point, d/du, d/dv, d/dw)
    crosses a breakpoint (k,) cut polyhedron r; each piece's code (U * k bits, unit-major) is
    "above the breakpoint" there.  Bounded as :func:`split_by_planes` (``budget`` bytes for the
    pieces' records, codes included).  Returns (status, pieces, parent, code (n, U * k) bool,
    rest, rest_parent) (see :func:`split_by_planes`)."""
    n_poly, bits = offsets.shape[0] - 1, z.shape[2] * breakpoints.shape[0]
    base = np.empty((n_poly, bits), np.bool_)
    plane_offsets = np.zeros(n_poly + 1, np.int64)
    cuts, units, bit = _unit_planes(verts, offsets, z, breakpoints, rtol, extent, layer, base, plane_offsets)
    status, pieces, parent, side, rest, rest_parent = split_by_planes(
        verts, offsets, incidence, planes, face_offsets, face_units, plane_offsets, cuts, units, budget, bits, max_work)
    code = np.empty((parent.shape[0], bits), np.bool_)
    piece_codes(base, plane_offsets, cuts, bit, pieces[0], pieces[1], parent, side, code)
    return status, pieces, parent, code, rest, rest_parent


def vertex_keys(offsets, incidence, face_offsets, face_units, width):
    """(N, width) int64 keys of the vertices of polyhedra (see ``surface.face_keys``): the units of
    the faces each lies on, coded ``(layer + 2) * 2**40 + unit + 2``, the ``width`` smallest in
    increasing order, -1 past the last."""
    n = incidence.shape[0]
    keys = np.full((n, width), -1, np.int64)
    for p in range(offsets.shape[0] - 1):
        f0, nf = face_offsets[p], face_offsets[p + 1] - face_offsets[p]
        for v in range(offsets[p], offsets[p + 1]):
            m, k = incidence[v], 0
            for b in range(nf):
                if not (m >> b) & 1:
                    continue
                code = (face_units[f0 + b, 0] + 2) * (np.int64(1) << 40) + face_units[f0 + b, 1] + 2
                j = min(k, width)  # insert in order among the smallest ``width``
                while j > 0 and keys[v, j - 1] > code:
                    if j < width:
                        keys[v, j] = keys[v, j - 1]
                    j -= 1
                if j < width:
                    keys[v, j] = code
                k += 1
    return keys


def _root(parent, i):
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _float_order(x):
    """The order (N,) that sorts the float64 values ``x`` (N,) (ties in any order), by a radix
    sort of their bits: 16 bits a pass from the lowest, a pass where all values share those bits
    left out (four times faster than ``np.argsort`` on the vertices of a 3-D complex)."""
    n = x.shape[0]
    keys = np.empty(n, np.uint64)
    top = np.uint64(1) << np.uint64(63)
    for i in range(n):  # the order of floats as the order of unsigned integers
        k = np.uint64(0) if x[i] == 0.0 else x[i:i + 1].view(np.uint64)[0]  # (-0.0 and 0.0 alike)
        keys[i] = ~k if k & top else k | top
    order, other = np.arange(n), np.empty(n, np.int64)
    count = np.empty(1 << 16, np.int64)
    for shift in range(0, 64, 16):
        count[:] = 0
        for i in range(n):
            count[(keys[i] >> np.uint64(shift)) & np.uint64(0xFFFF)] += 1
        if n == 0 or count[(keys[0] >> np.uint64(shift)) & np.uint64(0xFFFF)] == n:
            continue
        total = 0
        for d in range(1 << 16):
            count[d], total = total, total + count[d]
        for a in range(n):
            i = order[a]
            d = (keys[i] >> np.uint64(shift)) & np.uint64(0xFFFF)
            other[count[d]] = i
            count[d] += 1
        order, other = other, order
    return order


def merge_ids(points, keys, tight, loose, direction):
    """Ids of coincident points (N, d) (the rule of ``surface.merge_points``): points within
    ``tight`` are one, and so are those within ``loose`` whose rows of ``keys`` (N, k) are equal;
    ids number the groups in the order of their first point.  Pairs are found along the
    projection on the unit vector ``direction`` (d,) (points within a distance lie within it there)."""
    n, dim = points.shape
    proj = np.zeros(n)
    size = 0.0
    for i in range(n):
        a = 0.0
        for q in range(dim):
            proj[i] += points[i, q] * direction[q]
            a += abs(points[i, q])
        size = max(size, a)
    order = _float_order(proj)  # any order of ties: a pair is found from whichever comes first
    window = loose + 8 * 2.220446049250313e-16 * size  # the projection's rounding
    parent = np.arange(n)
    for a in range(n):
        i = order[a]
        for b in range(a + 1, n):
            j = order[b]
            if proj[j] - proj[i] > window:
                break
            d = 0.0
            for q in range(dim):
                d += (points[i, q] - points[j, q]) ** 2
            d = np.sqrt(d)
            if d > loose:
                continue
            near = d <= tight
            if not near:
                near = True
                for q in range(keys.shape[1]):
                    if keys[i, q] != keys[j, q]:
                        near = False
                        break
            if near:
                ri, rj = _root(parent, i), _root(parent, j)
                if ri != rj:
                    parent[max(ri, rj)] = min(ri, rj)
    ids = np.empty(n, np.int64)
    count = 0
    for i in range(n):  # roots are their groups' first points
        r = _root(parent, i)
        if r == i:
            ids[i] = count
            count += 1
        else:
            ids[i] = ids[r]
    return ids


def edge_count(offsets, incidence, ids, n_ids):
    """The distinct pairs of ids (``ids`` (N,) of the vertices, ``n_ids`` of them) that span an
    edge of some polyhedron (two vertices sharing two faces), pairs of one id left out; counted
    in an open-addressing hash set of the pairs."""
    n = 0
    for p in range(offsets.shape[0] - 1):
        c = offsets[p + 1] - offsets[p]
        n += c * (c - 1) // 2
    bits = 4
    while (1 << bits) < 2 * n + 2:
        bits += 1
    table = np.full(1 << bits, -1, np.int64)
    mask = (1 << bits) - 1
    count = 0
    for p in range(offsets.shape[0] - 1):
        for i in range(offsets[p], offsets[p + 1]):
            for j in range(i + 1, offsets[p + 1]):
                shared = incidence[i] & incidence[j]
                if shared & (shared - 1) and ids[i] != ids[j]:
                    key = min(ids[i], ids[j]) * n_ids + max(ids[i], ids[j])
                    h = ((key * np.int64(-7046029254386353131)) >> 20) & mask  # multiplicative hashing
                    while table[h] != -1 and table[h] != key:
                        h = (h + 1) & mask
                    if table[h] == -1:
                        table[h] = key
                        count += 1
    return count


if AVAILABLE:  # compiled on first use, cached on disk beside this file
    from numba import njit

    _half, _copy_piece = njit(inline="always")(_half), njit(inline="always")(_copy_piece)
    _grow, _rest = njit(cache=True)(_grow), njit(cache=True)(_rest)
    _unit_planes = njit(cache=True)(_unit_planes)
    split_by_planes = njit(cache=True)(split_by_planes)
    breakpoint_split = njit(cache=True)(breakpoint_split)
    vertex_keys, _root = njit(cache=True)(vertex_keys), njit(cache=True)(_root)
    merge_ids, edge_count = njit(cache=True)(merge_ids), njit(cache=True)(edge_count)
    _float_order = njit(cache=True)(_float_order)
