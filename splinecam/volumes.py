"""The 3-D volume: an affine chart ``x(u, v, w) = origin + basis @ (u, v, w)`` of input space
over a convex polytope of allowed ``(u, v, w)``."""

from __future__ import annotations

from functools import cached_property

import numpy as np
import torch

from .geometry.polyhedra import Polyhedra
from .slices import chart_axes, finite_array, positive_number, rounding

__all__ = ["Volume", "as_chart_points"]

_ROUNDINGS = 16  # a difference within this many units of rounding (of the inputs' dtype) is noise


def as_chart_points(uvw) -> np.ndarray:
    """(N, 3) float64 chart coordinates from ``uvw`` ((N, 3) or one point (3,))."""
    arr = np.atleast_2d(finite_array(uvw, "uvw"))
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"volume coordinates must have shape (N, 3) (or (3,) for one point), got {np.shape(uvw)}.")
    return arr


def _hull_planes(points: np.ndarray, eps: float) -> np.ndarray:
    """(F, 4) planes ``(a, b, c, d)``, unit normals, inside where ``>= 0``: the faces of the convex
    hull of ``points`` (n, 3)."""
    from scipy.spatial import ConvexHull, QhullError

    if points.ndim != 2 or points.shape[1] != 3 or len(points) < 4:
        raise ValueError(f"polytope must be the (n, 3) vertices of a convex polytope with n >= 4, got {points.shape}.")
    scale = np.abs(points - points.mean(0)).max()
    try:
        hull = ConvexHull(points)
    except QhullError:
        raise ValueError("polytope has no volume: its vertices lie in one plane (or on one line).") from None
    if not hull.volume > max(1e-12, _ROUNDINGS * eps) * scale**3:
        raise ValueError("polytope has no volume: its vertices lie in one plane (or on one line).")
    planes = -hull.equations
    keep: list[np.ndarray] = []
    for p in planes:  # the facets of one face are coplanar triangles
        if not any(np.abs(p - q).max() <= 1e-9 * max(1.0, scale) for q in keep):
            keep.append(p)
    return np.array(keep)


class Volume:
    """A 3-D affine chart of input space, ``x = origin + basis @ uvw``, over a convex polytope.

    origin: one input of any shape; basis: (D, 3) with D = origin.numel(), linearly independent
    columns; polytope: (n, 3) points in chart coordinates whose convex hull is the domain.
    ``planes`` (F, 4): the polytope's faces ``(a, b, c, d)``, inside where ``a*u + b*v + c*w + d >= 0``.
    """

    def __init__(self, origin, basis, polytope, anchors=None):
        self.origin, self.basis = chart_axes(origin, basis, 3)
        self.input_shape = tuple(self.origin.shape)
        self.planes = _hull_planes(finite_array(polytope, "polytope"), rounding(polytope))
        self.vertices = Polyhedra.from_planes(self.planes).verts.numpy()
        self.anchors = None if anchors is None else finite_array(anchors, "anchors")

    noun = measure_noun = "volume"  # what a run's progress calls the domain and its measure
    partitioner = "volume_partition.partition_volume"  # what sc.partition runs on a volume

    @property
    def dim(self) -> int:
        """D, the input dimension."""
        return self.origin.size

    @property
    def measure(self) -> float:
        """The domain's measure (its volume), as every domain gives it."""
        return self.volume

    def frame(self, dtype, device) -> tuple[np.ndarray, Polyhedra, np.ndarray]:
        """Where a run starts: the centre (3,) of the polytope's vertices (the chart origin of the
        states), the polytope as one cell about it and its half-sizes (3,) about it."""
        center = self.vertices.mean(0)
        planes = self.planes.copy()
        planes[:, 3] += planes[:, :3] @ center
        root = Polyhedra.single(torch.from_numpy(planes).to(dtype=dtype, device=device))
        return center, root, np.abs(self.vertices - center).max(0)

    @cached_property
    def volume(self) -> float:
        """The volume of the polytope."""
        return float(Polyhedra.from_planes(self.planes).volumes()[0])

    @classmethod
    def box(cls, lo, hi) -> "Volume":
        """Identity chart of R^3 (a network with 3 inputs) over the box ``lo``-``hi`` (each (3,))."""
        lo, hi = finite_array(lo, "lo"), finite_array(hi, "hi")
        if lo.shape != (3,) or hi.shape != (3,):
            raise ValueError(f"lo and hi must be points of shape (3,), got {lo.shape} and {hi.shape}.")
        if not np.all(hi > lo):
            raise ValueError(f"the box needs lo < hi in every coordinate, got lo={lo.tolist()}, hi={hi.tolist()}.")
        corners = np.array(np.meshgrid(*zip(lo, hi), indexing="ij")).reshape(3, -1).T
        return cls(np.zeros(3), np.eye(3), corners)

    @classmethod
    def from_points(cls, x0, x1, x2, x3, margin: float = 0.25) -> "Volume":
        """The 3-D chart through four inputs (any shape): origin ``x0``, orthonormal basis, the box
        around the four points enlarged by ``margin`` of its size on every side; ``anchors`` holds
        their (4, 3) chart coordinates."""
        margin = positive_number(margin, "margin", zero_ok=True)
        eps = _ROUNDINGS * rounding(x0, x1, x2, x3)
        pts = [finite_array(x, name) for x, name in ((x0, "x0"), (x1, "x1"), (x2, "x2"), (x3, "x3"))]
        if len({p.shape for p in pts}) != 1:
            raise ValueError(f"the four points have different shapes: {[p.shape for p in pts]}.")
        flat = np.stack([p.ravel() for p in pts])
        q, r = np.linalg.qr((flat[1:] - flat[0]).T)
        noise = eps * np.linalg.norm(flat, axis=1).max()
        diag = np.abs(np.diag(r)) if r.shape == (3, 3) else np.zeros(3)
        if diag[0] <= noise or diag[1:].min() <= max(1e-10 * diag[0], noise):
            raise ValueError("the four points lie in one plane (or on one line) to the precision of their dtype: "
                             "they span no volume.")
        uvw = np.vstack([np.zeros(3), r.T])
        lo, hi = uvw.min(0), uvw.max(0)
        size = hi - lo
        pad = margin * np.maximum(size, size.max() * 1e-3)
        box = cls.box(lo - pad, hi + pad)
        return cls(pts[0], q, box.vertices, anchors=uvw)

    def to_input(self, uvw, dtype=torch.float64) -> torch.Tensor:
        """(N, *input_shape) inputs at chart coordinates ``uvw`` (N, 3)."""
        x = self.origin.ravel()[None, :] + as_chart_points(uvw) @ self.basis.T
        return torch.as_tensor(x.reshape((-1,) + self.input_shape), dtype=dtype)

    def to_chart(self, x) -> np.ndarray:
        """(N, 3) least-squares chart coordinates of inputs ``x`` (N, *input_shape)."""
        x = finite_array(x, "x").reshape(-1, self.dim)
        uvw, *_ = np.linalg.lstsq(self.basis, (x - self.origin.ravel()).T, rcond=None)
        return uvw.T

    def contains(self, uvw, tol: float = 0.0) -> np.ndarray:
        """(N,) bool: whether the chart points ``uvw`` (N, 3) lie in the polytope (within ``tol``)."""
        return (as_chart_points(uvw) @ self.planes[:, :3].T + self.planes[:, 3] >= -tol).all(1)

    def __repr__(self) -> str:
        return (f"Volume(input_shape={self.input_shape}, polytope with {len(self.vertices)} vertices and "
                f"{len(self.planes)} faces, volume={self.volume:.4g})")
