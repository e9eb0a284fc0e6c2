"""The 2-D slice: an affine chart ``x(u, v) = origin + basis @ (u, v)`` of input space
with a convex polygon of allowed ``(u, v)``."""

from __future__ import annotations

import numbers
from functools import cached_property

import numpy as np
import torch

from .geometry import Polygons, polygon_areas

__all__ = ["Slice", "as_points", "chart_axes", "convex_ccw", "finite_array", "float64_array", "not_finite", "rounding"]


_ROUNDINGS = 16  # a difference within this many units of rounding (of the inputs' dtype) is noise


def rounding(*values) -> float:
    """The relative rounding (machine epsilon) of the least precise of ``values`` (arrays, tensors,
    numbers): that of float64 for integers and float64, of float32 for float32, etc."""
    eps = _EPS64
    for v in values:
        dtype = v.dtype if isinstance(v, (torch.Tensor, np.ndarray)) else None
        if dtype is None or dtype == np.float64:
            continue
        if isinstance(dtype, torch.dtype) and dtype.is_floating_point:
            eps = max(eps, torch.finfo(dtype).eps)
        elif isinstance(dtype, np.dtype) and np.issubdtype(dtype, np.floating):
            eps = max(eps, float(np.finfo(dtype).eps))
    return eps


_EPS64 = float(np.finfo(np.float64).eps)


def float64_array(x) -> np.ndarray:
    """``x`` (an array, tensor or nested sequence) as a float64 NumPy array."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().to(torch.float64).numpy()  # exact for every float dtype (bfloat16 has no NumPy twin)
    return np.asarray(x, dtype=np.float64)


def finite_array(x, name: str) -> np.ndarray:
    """``x`` (an array, tensor or nested sequence) as a float64 NumPy array, checked finite."""
    arr = float64_array(x)
    if not np.isfinite(arr).all():
        raise not_finite(name)
    return arr


def not_finite(name: str) -> ValueError:
    """The error for coordinates ``name`` with NaN or inf values."""
    return ValueError(f"{name} contains NaN or inf values; a domain needs finite coordinates.")


def chart_axes(origin, basis, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``origin`` (one input of any shape) and ``basis`` (D, k) of a k-dimensional chart as
    float64 arrays, after checking them: finite, D = origin.numel(), columns linearly independent
    to the precision of the basis's dtype."""
    origin = finite_array(origin, "origin")
    eps = rounding(basis)
    basis = finite_array(basis, "basis")
    d = origin.size
    if basis.ndim != 2 or basis.shape != (d, k):
        raise ValueError(f"basis must have shape (D, {k}) with D = origin.numel() = {d}, got {basis.shape}.")
    sv = np.linalg.svd(basis, compute_uv=False)
    if not sv[-1] > max(1e-12, _ROUNDINGS * eps) * max(sv[0], 1e-300):
        raise ValueError(f"basis is rank-deficient: its {k} columns must be linearly independent (to the "
                         "precision of their dtype).")
    return origin, basis


def as_points(uv) -> np.ndarray:
    """(N, 2) float64 slice coordinates from ``uv`` ((N, 2) or one point (2,))."""
    arr = np.atleast_2d(finite_array(uv, "uv"))
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"slice coordinates must have shape (N, 2) (or (2,) for one point), got {np.shape(uv)}.")
    return arr


def convex_ccw(polygon: np.ndarray, eps: float | None = None) -> np.ndarray:
    """Check that ``polygon`` (n, 2) is convex with positive area; return it counter-clockwise.

    Collinear vertices are dropped; an explicitly repeated closing vertex is allowed.  ``eps``:
    the relative rounding of the coordinates as given (default: that of ``polygon``'s dtype);
    turns within it are taken as straight.
    """
    eps = rounding(polygon) if eps is None else eps
    poly = np.asarray(polygon, dtype=np.float64)
    if poly.ndim != 2 or poly.shape[1] != 2 or poly.shape[0] < 3:
        raise ValueError(f"polygon must have shape (n, 2) with n >= 3, got {poly.shape}.")
    if np.array_equal(poly[0], poly[-1]) and poly.shape[0] > 3:
        poly = poly[:-1]
    scale = np.abs(poly - poly.mean(0)).max()
    if not scale > 0:
        raise ValueError("polygon has no area: its vertices coincide.")
    eps = max(1e-12, _ROUNDINGS * eps) * scale**2
    edge_in, edge_out = poly - np.roll(poly, 1, axis=0), np.roll(poly, -1, axis=0) - poly
    turn = edge_in[:, 0] * edge_out[:, 1] - edge_in[:, 1] * edge_out[:, 0]
    winding = np.arctan2(turn, np.sum(edge_in * edge_out, axis=1)).sum()
    if np.any(turn > eps) and np.any(turn < -eps) or abs(abs(winding) - 2 * np.pi) > 1e-6 and np.any(abs(turn) > eps):
        raise ValueError("polygon is not convex (or crosses itself); give the vertices of a convex polygon, e.g. a rectangle.")
    if not np.any(abs(turn) > eps):
        raise ValueError("polygon has no area: its vertices lie on one line.")
    if turn.sum() < 0:
        poly, turn = poly[::-1], -turn[::-1]
        turn = np.roll(turn, 1)  # reversed order: vertex i's turn moves with it
    return np.ascontiguousarray(poly[turn > eps])


def positive_number(value, name: str, zero_ok: bool = False) -> float:
    """``value`` as a float, after checking it is a finite number > 0 (>= 0 with ``zero_ok``)."""
    bound = "a non-negative" if zero_ok else "a positive"
    number = float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else np.nan
    if not np.isfinite(number) or number < 0 or (number == 0 and not zero_ok):
        raise ValueError(f"{name} must be {bound} finite number, got {value!r}.")
    return number


def check_seed(seed) -> int:
    """``seed`` as an int, after checking it is a non-negative integer."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    return int(seed)


def _corner(point, name: str) -> np.ndarray:
    arr = finite_array(point, name)
    if arr.shape != (2,):
        raise ValueError(f"{name} must be one point (u, v) of shape (2,), got shape {arr.shape}.")
    return arr


def _box(lo, hi) -> np.ndarray:
    (u0, v0), (u1, v1) = _corner(lo, "lo"), _corner(hi, "hi")
    return np.array([[u0, v0], [u1, v0], [u1, v1], [u0, v1]], dtype=np.float64)


class Slice:
    """A 2-D affine chart of input space, ``x = origin + basis @ uv``, over a convex polygon.

    origin: one input of any shape (e.g. (3, 32, 32)); basis: (D, 2) with
    D = origin.numel(), linearly independent columns; polygon: (n, 2) convex.
    """

    def __init__(self, origin, basis, polygon, anchors_uv=None):
        self.origin, self.basis = chart_axes(origin, basis, 2)
        self.input_shape = tuple(self.origin.shape)
        self.polygon = convex_ccw(finite_array(polygon, "polygon"), rounding(polygon))
        self.anchors_uv = None if anchors_uv is None else finite_array(anchors_uv, "anchors_uv")

    @property
    def dim(self) -> int:
        """D, the input dimension."""
        return self.origin.size

    @cached_property
    def area(self) -> float:
        """The area of the slice polygon (computed once)."""
        return float(polygon_areas(self.polygon, np.array([0, len(self.polygon)]))[0])

    noun, measure_noun = "slice", "area"  # what progress and limits call the domain and its measure

    @property
    def measure(self) -> float:
        """The area of the slice polygon (the domain's measure, which progress reports)."""
        return self.area

    def frame(self, dtype=torch.float64, device="cpu") -> tuple[np.ndarray, Polygons, np.ndarray]:
        """Where a run starts: the centre of the polygon (2,) (float64), the polygon about it as
        one cell (in ``dtype`` on ``device``) and its half-sizes (2,) (float64)."""
        center = self.polygon.sum(0) / len(self.polygon)
        root = self.polygon - center
        return center, Polygons.single(torch.from_numpy(root).to(dtype=dtype, device=device)), np.abs(root).max(0)

    @classmethod
    def box(cls, lo, hi) -> "Slice":
        """Identity chart of R^2 (a network with 2 inputs) over the box ``lo``-``hi``."""
        return cls(np.zeros(2), np.eye(2), _box(lo, hi))

    @classmethod
    def from_points(cls, x1, x2, x3, margin: float = 0.25) -> "Slice":
        """Plane through three inputs (any shape), orthonormal basis, rectangle around them.

        The rectangle is the bounding box of the three points enlarged by
        ``margin`` of its size on every side; ``anchors_uv`` holds the (3, 2)
        coordinates of the points.
        """
        margin = positive_number(margin, "margin", zero_ok=True)
        eps = _ROUNDINGS * rounding(x1, x2, x3)
        pts = [finite_array(x, name) for x, name in ((x1, "x1"), (x2, "x2"), (x3, "x3"))]
        if not (pts[0].shape == pts[1].shape == pts[2].shape):
            raise ValueError(f"the three points have different shapes: {[p.shape for p in pts]}.")
        flat = np.stack([p.ravel() for p in pts])
        d1, d2 = flat[1] - flat[0], flat[2] - flat[0]
        q, r = np.linalg.qr(np.stack([d1, d2], axis=1))
        noise = eps * np.linalg.norm(flat, axis=1).max()  # the rounding of the points as given
        if abs(r[0, 0]) <= noise or abs(r[1, 1]) <= max(1e-10 * abs(r[0, 0]), noise):
            raise ValueError("the three points lie on one line (or coincide) to the precision of their dtype: "
                             "they span no plane.")
        uv = np.array([[0.0, 0.0], [r[0, 0], 0.0], [r[0, 1], r[1, 1]]])
        lo, hi = uv.min(0), uv.max(0)
        size = hi - lo
        pad = margin * np.maximum(size, size.max() * 1e-3)
        return cls(pts[0], q, _box(lo - pad, hi + pad), anchors_uv=uv)

    @classmethod
    def from_data(cls, X, y, classes=(0, 1), seed: int = 0, margin: float = 0.25) -> "Slice":
        """On-manifold slice: the plane through three nearby inputs of two classes.

        X: (N, *input_shape) inputs; y: (N,) labels.  A random input x1 of class
        ``classes[0]`` (drawn with ``seed``), the input x2 of class ``classes[1]``
        nearest to it, and the input x3 of either class nearest to x1 that does
        not lie on the line x1-x2.  Returns ``Slice.from_points(x1, x2, x3,
        margin)``; its ``anchors_uv`` (3, 2) hold the three points.
        """
        X = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
        y = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"y must have shape (N,) with N = len(X) = {len(X)}, got {y.shape}.")
        a, b = classes
        if a == b:
            raise ValueError(f"classes must be two different labels, got {classes!r}.")
        flat = X.reshape(len(X), -1).astype(np.float64)
        in_a, in_b = np.flatnonzero(y == a), np.flatnonzero(y == b)
        if not len(in_a) or not len(in_b):
            raise ValueError(f"classes {a!r} and {b!r} must both occur in y (found {len(in_a)} and {len(in_b)}).")
        if not np.isfinite(flat[np.isin(y, classes)]).all():
            raise ValueError("X contains NaN or inf values among the inputs of the two classes.")
        i1 = int(np.random.default_rng(check_seed(seed)).choice(in_a))
        dist = np.linalg.norm(flat - flat[i1], axis=1)
        i2 = int(in_b[np.argmin(dist[in_b])])
        d12 = flat[i2] - flat[i1]
        if not np.linalg.norm(d12) > 0:
            raise ValueError(f"inputs {i1} and {i2} of classes {a!r} and {b!r} coincide; no plane through them.")
        for i3 in np.flatnonzero(np.isin(y, classes))[np.argsort(dist[np.isin(y, classes)], kind="stable")]:
            try:  # from_points judges "on one line" in the precision of X
                return cls.from_points(X[i1], X[i2], X[i3], margin=margin)
            except ValueError:
                continue
        raise ValueError("all inputs of the two classes lie on one line (to the precision of X's dtype); "
                         "no plane through three of them.")

    @classmethod
    def around(cls, x, radius: float = 1.0, seed: int = 0) -> "Slice":
        """Random orthonormal plane through ``x``, square ``[-radius, radius]^2``."""
        radius = positive_number(radius, "radius")
        x = finite_array(x, "x")
        if x.size < 2:
            raise ValueError(f"x must have at least 2 entries to span a plane, got shape {x.shape}.")
        gen = np.random.default_rng(check_seed(seed))
        q, _ = np.linalg.qr(gen.standard_normal((x.size, 2)))
        return cls(x, q, _box((-radius, -radius), (radius, radius)), anchors_uv=np.zeros((1, 2)))

    def to_input(self, uv, dtype=torch.float64) -> torch.Tensor:
        """(N, *input_shape) inputs at slice coordinates ``uv`` (N, 2)."""
        uv = as_points(uv)
        x = self.origin.ravel()[None, :] + uv @ self.basis.T
        return torch.as_tensor(x.reshape((-1,) + self.input_shape), dtype=dtype)

    def to_plane(self, x) -> np.ndarray:
        """(N, 2) least-squares coordinates of inputs ``x`` (N, *input_shape) on the plane."""
        x = finite_array(x, "x").reshape(-1, self.dim)
        uv, *_ = np.linalg.lstsq(self.basis, (x - self.origin.ravel()).T, rcond=None)
        return uv.T

    def __repr__(self) -> str:
        return f"Slice(input_shape={self.input_shape}, polygon with {len(self.polygon)} vertices, area={self.area:.4g})"
