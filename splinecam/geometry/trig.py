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

from dataclasses import dataclass

import numpy as np

__all__ = ["Waves", "sin_range"]

_EPS = np.finfo(np.float64).eps
_TWO_PI = 2 * np.pi


def sin_range(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds (low, high) of ``sin`` over the angle intervals ``[lo, hi]`` (any equal shapes)."""
    pad = 8 * _EPS * (1 + np.maximum(np.abs(lo), np.abs(hi)))  # the angles' own rounding
    lo, hi = lo - pad, hi + pad
    a, b = np.sin(lo), np.sin(hi)
    low, high = np.minimum(a, b) - 2 * _EPS, np.maximum(a, b) + 2 * _EPS
    # a crest (pi/2 + 2 pi k) or a trough (-pi/2 + 2 pi k) inside: the first one at or above lo,
    # found with a margin so that rounding can only add one (which is sound)
    crest = np.pi / 2 + _TWO_PI * np.ceil((lo - np.pi / 2) / _TWO_PI - 1e-9)
    trough = -np.pi / 2 + _TWO_PI * np.ceil((lo + np.pi / 2) / _TWO_PI - 1e-9)
    wide = hi - lo >= _TWO_PI
    high = np.where(wide | (crest <= hi), 1.0, np.minimum(high, 1.0))
    low = np.where(wide | (trough <= hi), -1.0, np.maximum(low, -1.0))
    return low, high


def _weighted(M: np.ndarray, m: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, K) bounds of ``M @ s + m`` for ``s`` in the boxes ``[low, high]`` (N, J), padded for
    the rounding of the sums."""
    pos, neg = np.maximum(M, 0.0), np.minimum(M, 0.0)
    lo = low @ pos.T + high @ neg.T + m
    hi = high @ pos.T + low @ neg.T + m
    return lo - _slack(M, m), hi + _slack(M, m)


def _slack(M: np.ndarray, m: np.ndarray) -> np.ndarray:
    """(K,) a bound on the rounding of ``M @ s + m`` for ``|s| <= 1``."""
    return 4 * (M.shape[1] + 2) * _EPS * (np.abs(M).sum(1) + np.abs(m))


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

    def _ranges(self, centres: np.ndarray, half: np.ndarray, shift: float):
        """Bounds of ``sin(theta + shift)`` over the boxes, and for the linear features: of theta
        (shift 0, values), 1 (shift pi/2, slopes), 0 (shift pi, second derivatives)."""
        mid = centres @ self.A.T + self.b
        reach = half @ np.abs(self.A).T
        low, high = sin_range(mid - reach + shift, mid + reach + shift)
        k = self.linear
        if k:
            const = {0.0: None, np.pi / 2: 1.0, np.pi: 0.0}[shift]
            pad = 8 * _EPS * (np.abs(mid[:, :k]) + reach[:, :k])
            low[:, :k] = mid[:, :k] - reach[:, :k] - pad if const is None else const
            high[:, :k] = mid[:, :k] + reach[:, :k] + pad if const is None else const
        return low, high

    def bounds(self, M: np.ndarray, m: np.ndarray, centres: np.ndarray, half: np.ndarray) -> tuple:
        """Sound (N, K) bounds of the functions over the boxes: the tighter, unit by unit, of the
        interval sum and the mean-value form ``f(centre) +- |grad| . half``."""
        lo, hi = _weighted(M, m, *self._ranges(centres, half, 0.0))
        (gu_lo, gu_hi), (gv_lo, gv_hi) = self.gradient(M, centres, half)
        reach = (np.maximum(-gu_lo, gu_hi) * half[:, :1] + np.maximum(-gv_lo, gv_hi) * half[:, 1:])
        mid = self.values(M, m, centres)
        slack = _slack(M, m)
        return np.maximum(lo, mid - reach * (1 + 4 * _EPS) - slack), np.minimum(hi, mid + reach * (1 + 4 * _EPS) + slack)

    def gradient(self, M: np.ndarray, centres: np.ndarray, half: np.ndarray) -> tuple:
        """((lo, hi) of d/du, (lo, hi) of d/dv): sound (N, K) bounds over the boxes."""
        ranges = self._ranges(centres, half, np.pi / 2)
        zero = np.zeros(len(M))
        return _weighted(M * self.A[:, 0], zero, *ranges), _weighted(M * self.A[:, 1], zero, *ranges)

    def curvature(self, M: np.ndarray, centres: np.ndarray, half: np.ndarray) -> np.ndarray:
        """(N, K, 3) sound bounds of ``|f_uu|``, ``|f_uv|``, ``|f_vv|`` over the boxes."""
        ranges = self._ranges(centres, half, np.pi)  # -sin(theta): the sign does not matter here
        zero = np.zeros(len(M))
        out = []
        for i, k in ((0, 0), (0, 1), (1, 1)):
            lo, hi = _weighted(M * (self.A[:, i] * self.A[:, k]), zero, *ranges)
            out.append(np.maximum(-lo, hi))
        return np.stack(out, -1)
