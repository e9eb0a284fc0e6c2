"""Paths through input space: 1-D domains of a partition (polylines and ellipses through data).

A :class:`Path` is parameterised by one number t:

- a *polyline* through points ``p_0, ..., p_n`` (any input shape): leg i is the segment
  ``x(t) = p_i + (t - i) * (p_{i+1} - p_i)`` for ``t`` in ``[i, i + 1]``, so ``t`` runs over
  ``[0, n]`` (``[0, 1]`` for a segment ``x0 -> x1``); each leg is its own 1-D chart
  (:class:`Leg`), partitioned in its own coordinate ``t - i`` for precision;
- an *ellipse* through three inputs: their Steiner circumellipse (the ellipse through them
  centred at their mean m), ``x(s) = m + A cos s + B sin s`` for ``s`` in ``[0, 2 pi]``, with
  ``A = x0 - m`` and ``B = (2 (x1 - m) + (x0 - m)) / sqrt(3)``, so that ``x(0) = x0``,
  ``x(2 pi / 3) = x1``, ``x(4 pi / 3) = x2``.  It is the unit circle ``(cos s, sin s)`` of the
  2-D chart ``x = m + [A B] @ (u, v)``: there every unit's pre-activation is
  ``a cos s + b sin s + c``, whose zeros are solved in closed form
  (:class:`~splinecam.geometry.Arcs`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .geometry import Arcs, Intervals
from .geometry.compiled1d import point_sizes
from .slices import finite_array, float64_array, not_finite, rounding

__all__ = ["Leg", "Path", "PathSet"]

_ROUNDINGS = 16  # a difference within this many units of rounding (of the inputs' dtype) is noise


class Leg:
    """One chart of a path: ``x = origin + basis @ t`` (basis (D, d)) over the cell of
    parameters ``[lo, hi]``: a segment (d = 1, :class:`~splinecam.geometry.Intervals`, ``t`` the
    leg's own coordinate ``0..1``) or an ellipse (d = 2, arcs of the unit circle,
    :class:`~splinecam.geometry.Arcs`, ``s`` in ``[0, 2 pi]``).  What a run reads of a domain
    (see docs/architecture.md): ``origin``, ``basis``, ``input_shape``, ``frame``, ``measure``,
    ``noun``, ``measure_noun``."""

    noun, measure_noun = "path", "length"

    def __init__(self, origin: np.ndarray, basis: np.ndarray, cells: type, lo: float, hi: float):
        self.origin, self.basis, self.cells = origin, basis, cells
        self.input_shape = tuple(origin.shape)
        self.lo, self.hi = lo, hi

    @property
    def measure(self) -> float:
        """The length of the parameter range."""
        return self.hi - self.lo

    def bounds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The chart point at the middle of a segment (1,) (the origin (2,) for an ellipse), the
        leg's ends about it (2, 1) and its half-sizes (d,), float64 NumPy."""
        ends = np.array([[self.lo], [self.hi]])
        if self.cells is Arcs:  # angles do not move with the chart point (the ellipse's centre)
            return np.zeros(2), ends, np.ones(2)
        center = (ends[0] + ends[1]) / 2
        return center, ends - center, ends[1] - center

    def frame(self, dtype=torch.float64, device="cpu"):
        """:meth:`bounds`, with the leg as one cell about the chart point (in ``dtype`` on ``device``)."""
        center, ends, extent = self.bounds()
        return center, self.cells.single(torch.from_numpy(ends).to(dtype=dtype, device=device)), extent


class Path:
    """A path through input space (see the module doc): build it with :meth:`segment`,
    :meth:`through` or :meth:`ellipse`.

    points: (n + 1, *input_shape) float64, the polyline's vertices (for an ellipse: x0, x1, x2);
    kind: "polyline" or "ellipse"; t_range: (0, n) or (0, 2 pi); closed: whether the polyline
    returns to its first point.
    """

    partitioner = "path_partition.partition_path"  # what sc.partition runs on a path

    def __init__(self, points, kind: str = "polyline", closed: bool = False):
        pts = np.ascontiguousarray(float64_array(points))  # (checked finite below, with the scale)
        if kind not in ("polyline", "ellipse"):
            raise ValueError(f"kind must be 'polyline' or 'ellipse', got {kind!r}.")
        need = 3 if kind == "ellipse" else 2
        if pts.ndim < 2 or len(pts) < need:
            raise ValueError(f"a {kind} needs at least {need} points, each an input (shape (n, *input_shape)), "
                             f"got an array of shape {pts.shape}.")
        if kind == "polyline" and closed:
            pts = np.concatenate([pts, pts[:1]])
        self._set(pts, kind, bool(closed), rounding(points))

    def _set(self, pts: np.ndarray, kind: str, closed: bool, roundoff: float) -> None:
        """The path through ``pts`` (n + 1, *input_shape) (C-contiguous float64, the first point
        repeated at the end of a closed polyline), checked: finite, its legs (or the ellipse's
        axes) not shorter than noise, ``roundoff`` being the relative rounding of its inputs' dtype."""
        flat = pts.reshape(len(pts), -1)
        scale, shortest, leg = point_sizes(flat)
        if not math.isfinite(scale):  # (NaN propagates through the max)
            raise not_finite("points")
        eps = _ROUNDINGS * roundoff * max(1.0, scale)
        if kind == "polyline":
            if not shortest > eps:
                raise ValueError(f"points {leg} and {leg + 1} of the path coincide: a leg needs two distinct points.")
        else:
            a, b = self._axes(flat[:3])
            sv = np.linalg.svd(np.stack([a, b], 1), compute_uv=False)
            if not sv[-1] > eps:
                raise ValueError("the three points lie on one line (or coincide): no ellipse passes through them.")
        self.points, self.kind, self.closed = pts, kind, closed
        self.input_shape = tuple(pts.shape[1:])

    @classmethod
    def segment(cls, x0, x1) -> "Path":
        """The segment ``x(t) = x0 + t (x1 - x0)``, t in [0, 1]; x0, x1: inputs of one shape."""
        a, b = float64_array(x0), float64_array(x1)
        if a.shape != b.shape:
            raise ValueError(f"x0 and x1 must be inputs of one shape, got shapes {a.shape} and {b.shape}.")
        points = np.array((a, b))  # (2, *input_shape)
        path = cls.__new__(cls)
        try:
            path._set(points, "polyline", False, rounding(x0, x1))
        except ValueError:
            finite_array(a, "x0"), finite_array(b, "x1")  # (a NaN or inf: the error names the point)
            raise
        return path

    @classmethod
    def through(cls, points, closed: bool = False) -> "Path":
        """The polyline through ``points`` (n + 1, *input_shape) (or a list of inputs), leg i over
        t in [i, i + 1]; ``closed``: back to the first point (one more leg)."""
        if isinstance(points, (list, tuple)):
            points = np.stack([finite_array(p, "points") for p in points])
        return cls(points, closed=closed)

    @classmethod
    def ellipse(cls, x0, x1, x2) -> "Path":
        """The ellipse through x0, x1, x2 centred at their mean (see the module doc), s in [0, 2 pi]."""
        return cls(np.stack([finite_array(x, "x") for x in (x0, x1, x2)]), kind="ellipse")

    @staticmethod
    def _axes(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ellipse's A and B (D,) from its three points (3, D)."""
        m = flat.mean(0)
        return flat[0] - m, (2 * (flat[1] - m) + (flat[0] - m)) / math.sqrt(3)

    @property
    def t_range(self) -> tuple[float, float]:
        """The range of the path's parameter."""
        return (0.0, 2 * math.pi) if self.kind == "ellipse" else (0.0, float(len(self.points) - 1))

    @property
    def measure(self) -> float:
        """The length of the parameter range (what progress reports)."""
        lo, hi = self.t_range
        return hi - lo

    noun, measure_noun = "path", "length"

    def legs(self) -> list[tuple[float, Leg]]:
        """(start of the leg in t, its chart) for each leg, in order."""
        flat = self.points.reshape(len(self.points), -1)
        if self.kind == "ellipse":
            a, b = self._axes(flat[:3])
            return [(0.0, Leg(flat[:3].mean(0).reshape(self.input_shape), np.stack([a, b], 1), Arcs, 0.0, 2 * math.pi))]
        return [(float(i), Leg(self.points[i], (flat[i + 1] - flat[i])[:, None], Intervals, 0.0, 1.0))
                for i in range(len(flat) - 1)]

    def to_input(self, t, dtype=torch.float64) -> torch.Tensor:
        """Inputs (m, *input_shape) at the path parameters t (m,) (clipped to ``t_range``)."""
        t = np.clip(np.asarray(t, dtype=np.float64).reshape(-1), *self.t_range)
        flat = self.points.reshape(len(self.points), -1)
        if self.kind == "ellipse":
            a, b = self._axes(flat[:3])
            x = flat[:3].mean(0) + np.cos(t)[:, None] * a + np.sin(t)[:, None] * b
        else:
            i = np.minimum(np.floor(t).astype(np.int64), len(flat) - 2)
            x = flat[i] + (t - i)[:, None] * (flat[i + 1] - flat[i])
        return torch.as_tensor(x.reshape(len(t), *self.input_shape), dtype=dtype)

    def to_chart(self, x) -> np.ndarray:
        """The parameters t (m,) of inputs x (m, *input_shape): of the nearest point of the
        polyline; for an ellipse, the angle of x projected onto the ellipse's plane in its
        ``(A, B)`` coordinates (exact for points on the ellipse)."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, math.prod(self.input_shape))
        flat = self.points.reshape(len(self.points), -1)
        if self.kind == "ellipse":
            a, b = self._axes(flat[:3])
            uv = np.linalg.lstsq(np.stack([a, b], 1), (x - flat[:3].mean(0)).T, rcond=None)[0]
            return np.remainder(np.arctan2(uv[1], uv[0]), 2 * math.pi)
        d = np.diff(flat, axis=0)  # (n, D)
        s = np.clip(((x[:, None] - flat[None, :-1]) * d).sum(-1) / (d * d).sum(-1), 0, 1)  # (m, n)
        dist = ((x[:, None] - (flat[None, :-1] + s[..., None] * d)) ** 2).sum(-1)
        best = dist.argmin(1)
        return best + s[np.arange(len(x)), best]

    def __repr__(self) -> str:
        if self.kind == "ellipse":
            return f"Path.ellipse(input_shape={self.input_shape})"
        return f"Path(input_shape={self.input_shape}, {len(self.points) - 1} legs{', closed' if self.closed else ''})"


class PathSet:
    """Paths run as one domain (:func:`splinecam.partition_many` of a plain MLP on polylines):
    what a run's watch reads of it, ``measure`` (the sum of the paths' parameter ranges),
    ``noun`` and ``measure_noun``."""

    noun = measure_noun = "set of paths"

    def __init__(self, paths: list[Path]):
        self.paths = list(paths)
        self.measure = sum(p.measure for p in self.paths)
