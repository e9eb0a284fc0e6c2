"""Sound bounds of trigonometric sums over boxes of the plane.

A *wave family* is ``theta(p) = A @ p + b`` (A: (J, 2), b: (J,)), the phases of a sine encoding
on slice coordinates ``p = (u, v)``; its features are ``sin(theta)``, except the first ``linear``
ones, which are ``theta`` itself (an encoding that passes its raw input on).  A batch of K
functions of it is ``f_k(p) = M[k] @ features(p) + m[k]`` (M: (K, J), m: (K,)); their gradient
and Hessian are sums of the same kind (``d f / d p_i = (M * A[:, i]) @ slope(p)`` with ``slope
= cos(theta)``, 1 for a linear feature; ``d2 f / d p_i d p_k = -(M * A[:, i] * A[:, k]) @
sin(theta)``, 0 for a linear feature), so every bound below is one rule: the range of each
feature (or its derivative) over an interval of angles, weighted.  Bounds are sound up to float64 rounding, which they pad for: every
interval holds the true range of the function over the closed box.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Waves", "box_bounds", "sin_range"]

try:
    from numba import njit
except ImportError:  # numba is optional: the same loops then run in Python (slowly)
    njit = None

_EPS = float(np.finfo(np.float64).eps)
_TWO_PI = 2 * math.pi
_SHIFTS = (0.0, math.pi / 2, math.pi)  # the angle shifts of values, slopes and second derivatives


def _sin_bounds(lo: float, hi: float):
    """Bounds (low, high) of ``sin`` over the angle interval ``[lo, hi]``, padded for the
    rounding of the angles themselves."""
    pad = 8 * _EPS * (1 + max(abs(lo), abs(hi)))
    lo, hi = lo - pad, hi + pad
    if hi - lo >= _TWO_PI:
        return -1.0, 1.0
    a, b = math.sin(lo), math.sin(hi)
    low, high = min(a, b) - 2 * _EPS, max(a, b) + 2 * _EPS
    # a crest (pi/2 + 2 pi k) or a trough (-pi/2 + 2 pi k) inside: the first one at or above lo,
    # found with a margin so that rounding can only add one (which is sound)
    crest = math.pi / 2 + _TWO_PI * math.ceil((lo - math.pi / 2) / _TWO_PI - 1e-9)
    trough = -math.pi / 2 + _TWO_PI * math.ceil((lo + math.pi / 2) / _TWO_PI - 1e-9)
    return (-1.0 if trough <= hi else max(low, -1.0)), (1.0 if crest <= hi else min(high, 1.0))


def _sin_ranges(lo, hi, low, high):
    """:func:`_sin_bounds` of each of the intervals (n,) into low, high (n,)."""
    for i in range(lo.shape[0]):
        low[i], high[i] = _sin_bounds(lo[i], hi[i])


def _ranges(A, b, linear, c, h, kind, low, high):
    """Bounds of each feature's value (kind 0), slope (1) or second-derivative factor (2: sin of
    the angle, 0 for a linear feature) over the box of centre c (2,) and half-widths h (2,)."""
    for j in range(A.shape[0]):
        mid = A[j, 0] * c[0] + A[j, 1] * c[1] + b[j]
        reach = abs(A[j, 0]) * h[0] + abs(A[j, 1]) * h[1]
        if j >= linear:
            low[j], high[j] = _sin_bounds(mid - reach + _SHIFTS[kind], mid + reach + _SHIFTS[kind])
        elif kind == 0:
            pad = 8 * _EPS * (abs(mid) + reach)
            low[j], high[j] = mid - reach - pad, mid + reach + pad
        else:
            low[j] = high[j] = 1.0 if kind == 1 else 0.0


def _weighted(M, A, k, axes, m, low, high):
    """Bounds of ``sum_j M[k, j] * prod(A[j, axes]) * s_j + m`` for ``s`` in ``[low, high]``,
    padded for the rounding of the products and the sum."""
    lo = hi = m
    size = abs(m)
    for j in range(M.shape[1]):
        w = M[k, j]
        for i in axes:
            w = w * A[j, i]
        if w >= 0:
            lo, hi = lo + w * low[j], hi + w * high[j]
        else:
            lo, hi = lo + w * high[j], hi + w * low[j]
        size += abs(w) * max(abs(low[j]), abs(high[j]))
    slack = 4 * (M.shape[1] + 2) * _EPS * size
    return lo - slack, hi + slack


def _bounds(A, b, linear, M, m, centres, half, out_lo, out_hi):
    """(N, K) bounds of the functions over the boxes into out_lo, out_hi: the tighter, function by
    function, of the interval sum and the mean-value form ``f(centre) +- |grad| . half``."""
    J, none = A.shape[0], np.empty(0, np.int64)
    low, high, slow, shigh, at, at_hi = np.empty(J), np.empty(J), np.empty(J), np.empty(J), np.empty(J), np.empty(J)
    for n in range(centres.shape[0]):
        c, h = centres[n], half[n]
        _ranges(A, b, linear, c, h, 0, low, high)
        _ranges(A, b, linear, c, h, 1, slow, shigh)
        _ranges(A, b, linear, c, np.zeros(2), 0, at, at_hi)  # the features at the centre (padded)
        for k in range(M.shape[0]):
            lo, hi = _weighted(M, A, k, none, m[k], low, high)
            reach = 0.0
            for i in range(2):
                glo, ghi = _weighted(M, A, k, np.array([i]), 0.0, slow, shigh)
                reach += max(-glo, ghi) * h[i]
            flo, fhi = _weighted(M, A, k, none, m[k], at, at_hi)
            out_lo[n, k] = max(lo, flo - reach * (1 + 4 * _EPS))
            out_hi[n, k] = min(hi, fhi + reach * (1 + 4 * _EPS))


def _derivatives(A, b, linear, M, centres, half, order, out):
    """Bounds over the boxes of the first derivatives (order 1: out (N, K, 2, 2), (lo, hi) of
    d/du and d/dv) or of the absolute second derivatives (order 2: out (N, K, 3, 2), |f_uu|,
    |f_uv|, |f_vv| in [:, :, :, 1])."""
    J = A.shape[0]
    low, high = np.empty(J), np.empty(J)
    pairs = np.array([[0, 0], [0, 1], [1, 1]]) if order == 2 else np.array([[0, 0], [1, 1]])
    for n in range(centres.shape[0]):
        _ranges(A, b, linear, centres[n], half[n], order, low, high)
        for k in range(M.shape[0]):
            for p in range(pairs.shape[0]):
                lo, hi = _weighted(M, A, k, pairs[p, :order], 0.0, low, high)
                out[n, k, p, 0], out[n, k, p, 1] = lo, hi
                if order == 2:
                    out[n, k, p, 0], out[n, k, p, 1] = 0.0, max(-lo, hi)


def _at(A, b, linear, M, m, u, v):
    """``f = M @ features + m`` (M (J,)) at the point (u, v)."""
    f = m
    for j in range(A.shape[0]):
        theta = A[j, 0] * u + A[j, 1] * v + b[j]
        f += M[j] * (theta if j < linear else math.sin(theta))
    return f


def _bisect(A, b, linear, M, m, sign, p, axis, a, z, steps):
    """Where ``sign * f`` turns positive on the points ``p`` (2,) with coordinate ``axis`` in
    ``[a, z]``: the middle of the last of ``steps`` halvings (p is overwritten)."""
    for _ in range(steps):
        p[axis] = (a + z) / 2
        if sign * _at(A, b, linear, M, m, p[0], p[1]) > 0:
            z = p[axis]
        else:
            a = p[axis]
    return (a + z) / 2


def _roots(A, b, linear, M, m, sign, base, axis, lo, hi, steps, out):
    """Bisection, ``steps`` halvings: for each n, where ``sign[n] * f`` turns positive on the
    segment of points ``base[n]`` with coordinate ``axis[n]`` in ``[lo[n], hi[n]]`` (f = M @
    features + m, M (J,)), into out[n]."""
    for n in range(base.shape[0]):
        out[n] = _bisect(A, b, linear, M, m, sign[n], base[n].copy(), axis[n], lo[n], hi[n], steps)


def _sides(A, b, linear, M, m, sign, axis, lo, hi, steps, first, last, out):
    """On the four sides of the box [lo, hi] (2,) in the order s = lo_s, s = hi_s (running along
    t), t = lo_t, t = hi_t (running along s), where s is coordinate ``axis`` and t the other:
    ``sign * f`` at each side's start and end into first, last (4,), and where the two differ
    in sign, the crossing (``steps`` halvings) into out (4,) (else NaN)."""
    p = np.empty(2)
    for k in range(4):
        run = 1 - axis if k < 2 else axis  # the coordinate that runs along side k
        p[1 - run] = (lo if k % 2 == 0 else hi)[1 - run]
        p[run] = lo[run]
        first[k] = sign * _at(A, b, linear, M, m, p[0], p[1])
        p[run] = hi[run]
        last[k] = sign * _at(A, b, linear, M, m, p[0], p[1])
        out[k] = np.nan
        if (first[k] > 0) != (last[k] > 0):
            out[k] = _bisect(A, b, linear, M, m, sign if last[k] > 0 else -sign, p, run, lo[run], hi[run], steps)


if njit is not None:
    _sin_bounds = njit(cache=True, inline="always")(_sin_bounds)
    _sin_ranges = njit(cache=True)(_sin_ranges)
    _ranges, _weighted = njit(cache=True)(_ranges), njit(cache=True)(_weighted)
    _bounds, _derivatives = njit(cache=True)(_bounds), njit(cache=True)(_derivatives)
    _at, _bisect = njit(cache=True, inline="always")(_at), njit(cache=True)(_bisect)
    _roots, _sides = njit(cache=True)(_roots), njit(cache=True)(_sides)


box_bounds = _bounds  # the compiled kernel itself, for other compiled loops: (A, b, linear, M, m, centres, half, lo, hi)


def sin_range(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds (low, high) of ``sin`` over the angle intervals ``[lo, hi]`` (any equal shapes)."""
    lo, hi = np.broadcast_arrays(np.asarray(lo, np.float64), np.asarray(hi, np.float64))
    low, high = np.empty(lo.size), np.empty(lo.size)
    _sin_ranges(np.ascontiguousarray(lo).ravel(), np.ascontiguousarray(hi).ravel(), low, high)
    return low.reshape(lo.shape), high.reshape(lo.shape)


def _f64(a) -> np.ndarray:
    return np.ascontiguousarray(a, np.float64)


@dataclass(frozen=True)
class Waves:
    """The phases ``theta(p) = A @ p + b`` of a sine encoding on slice coordinates.

    A: (J, 2), b: (J,) float64.  Boxes are given by centres (N, 2) and half-widths (N, 2).
    """

    A: np.ndarray
    b: np.ndarray
    linear: int = 0

    def features(self, p: np.ndarray) -> np.ndarray:
        """(N, J) the encoding at the points ``p`` (N, 2)."""
        theta = p @ self.A.T + self.b
        return np.concatenate([theta[:, :self.linear], np.sin(theta[:, self.linear:])], 1)

    def slopes(self, p: np.ndarray) -> np.ndarray:
        """(N, J) the derivative of each feature with respect to its angle at the points ``p``."""
        theta = p @ self.A.T + self.b
        return np.concatenate([np.ones_like(theta[:, :self.linear]), np.cos(theta[:, self.linear:])], 1)

    def values(self, M: np.ndarray, m: np.ndarray, p: np.ndarray) -> np.ndarray:
        """(N, K) the functions ``M @ features + m`` at the points ``p`` (N, 2)."""
        return self.features(p) @ M.T + m

    def bounds(self, M: np.ndarray, m: np.ndarray, centres: np.ndarray, half: np.ndarray) -> tuple:
        """Sound (N, K) bounds of the functions over the boxes: the tighter, unit by unit, of the
        interval sum and the mean-value form ``f(centre) +- |grad| . half``."""
        lo, hi = np.empty((len(centres), len(M))), np.empty((len(centres), len(M)))
        _bounds(_f64(self.A), _f64(self.b), self.linear, _f64(M), _f64(m), _f64(centres), _f64(half), lo, hi)
        return lo, hi

    def gradient(self, M: np.ndarray, centres: np.ndarray, half: np.ndarray) -> tuple:
        """((lo, hi) of d/du, (lo, hi) of d/dv): sound (N, K) bounds over the boxes."""
        out = np.empty((len(centres), len(M), 2, 2))
        _derivatives(_f64(self.A), _f64(self.b), self.linear, _f64(M), _f64(centres), _f64(half), 1, out)
        return (out[:, :, 0, 0], out[:, :, 0, 1]), (out[:, :, 1, 0], out[:, :, 1, 1])

    def curvature(self, M: np.ndarray, centres: np.ndarray, half: np.ndarray) -> np.ndarray:
        """(N, K, 3) sound bounds of ``|f_uu|``, ``|f_uv|``, ``|f_vv|`` over the boxes."""
        out = np.empty((len(centres), len(M), 3, 2))
        _derivatives(_f64(self.A), _f64(self.b), self.linear, _f64(M), _f64(centres), _f64(half), 2, out)
        return out[..., 1]

    def sides(self, M: np.ndarray, m: float, sign: float, axis: int, lo: np.ndarray, hi: np.ndarray,
              width: float) -> tuple:
        """On the four sides of the box [lo, hi] (s = lo_s, s = hi_s, running along t; t = lo_t,
        t = hi_t, running along s; s the coordinate ``axis``): (h at each side's start (4,), h at
        its end (4,), where h = ``sign * (M @ features + m)`` (M (J,)) changes sign along the
        side, to within ``width`` by bisection (4,), NaN where its ends have one sign)."""
        steps = max(0, math.ceil(math.log2(max(float(np.max(hi - lo)), 1e-300) / width)))
        first, last, out = np.empty(4), np.empty(4), np.empty(4)
        _sides(_f64(self.A), _f64(self.b), self.linear, _f64(M), float(m), float(sign), int(axis), _f64(lo), _f64(hi),
               steps, first, last, out)
        return first, last, out

    def roots(self, M: np.ndarray, m: float, sign: np.ndarray, base: np.ndarray, axis: np.ndarray, lo: np.ndarray,
              hi: np.ndarray, width: float) -> np.ndarray:
        """(n,) where ``sign * (M @ features + m)`` (M (J,); sign (n,) of +-1) turns positive on the
        segments of points ``base`` (n, 2) whose coordinate ``axis`` (n,) runs over ``[lo, hi]``
        (n,), to within ``width``, by bisection: ``sign * f <= 0`` at lo and ``> 0`` at hi is assumed."""
        steps = max(0, math.ceil(math.log2(max(float(np.max(hi - lo, initial=0.0)), 1e-300) / width)))
        out = np.empty(len(base))
        _roots(_f64(self.A), _f64(self.b), self.linear, _f64(M), float(m), _f64(sign), _f64(base),
               np.ascontiguousarray(axis, np.int64), _f64(lo), _f64(hi), steps, out)
        return out
