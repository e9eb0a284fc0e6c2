"""Statistics of a partition: distributions over regions, edges per layer, boundary shape,
local complexity around points, and a density image.

Definitions (all exact functions of the partition's polygons and maps):

- *eccentricity* of a region: ``sqrt(1 - l_min / l_max)`` where ``l_min <= l_max``
  are the eigenvalues of the covariance of the uniform distribution on the
  polygon (its second area moments).  0 for a square, a regular polygon or
  any shape with equal spread in all directions; ``sqrt(3)/2`` for a 2:1
  rectangle; towards 1 for slivers.
- *slope norm* of a region: the Frobenius norm of the (K, 2) linear part of
  its output map ``uv -> f``, i.e. ``||(a, b)||`` over all outputs.
- *edges per layer*: the interior edges of the planar subdivision (a
  segment between two consecutive vertices, shared by two regions), grouped
  by the layer whose unit created them.  Each is counted once even though
  both adjacent polygons store it; a polygon side with a T-junction (a
  vertex of the neighbours strictly inside it) counts as its pieces.
- *turning angle* of the decision boundary: at every point where exactly
  two boundary segments meet, ``pi`` minus the angle between them (0 where
  the boundary goes straight on), in radians.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .boundary import point_ids
from ..geometry import distance_to_polygons
from .topology import neighbour_stats

__all__ = ["DensityMap", "density_map", "eccentricities", "edges_by_layer", "local_complexity",
           "slope_norms", "stats", "turning_angles"]

_PAIR_BLOCK = 1 << 22  # (point, region) candidate pairs held at once


def _summary(prefix: str, values: np.ndarray) -> dict:
    values = np.asarray(values, dtype=np.float64)
    if not values.size:
        return {f"{prefix}_{name}": float("nan") for name in ("mean", "std", "min", "max", "median")}
    return {
        f"{prefix}_mean": float(values.mean()), f"{prefix}_std": float(values.std()),
        f"{prefix}_min": float(values.min()), f"{prefix}_max": float(values.max()),
        f"{prefix}_median": float(np.median(values)),
    }


def slope_norms(part) -> np.ndarray:
    """(R,) Frobenius norm of each region's linear map (K, 2)."""
    return np.linalg.norm(part.affine[:, :, :2], axis=(1, 2))


def eccentricities(part) -> np.ndarray:
    """(R,) ``sqrt(1 - l_min / l_max)`` of each region's second area moments (see module doc)."""
    polys = part.arrays.polygons()
    owner = polys.owner().numpy()
    p = part.arrays.vertices - part.centroids[owner]  # region-local coordinates keep precision
    q = p[polys.next_vertex().numpy()]
    c = p[:, 0] * q[:, 1] - q[:, 0] * p[:, 1]
    starts = part.arrays.offsets[:-1]

    def total(x):
        return np.add.reduceat(x * c, starts)

    area = total(np.ones_like(c)) / 2
    mx = total(p[:, 0] + q[:, 0]) / (6 * area)
    my = total(p[:, 1] + q[:, 1]) / (6 * area)
    sxx = total(p[:, 0] ** 2 + p[:, 0] * q[:, 0] + q[:, 0] ** 2) / (12 * area) - mx**2
    syy = total(p[:, 1] ** 2 + p[:, 1] * q[:, 1] + q[:, 1] ** 2) / (12 * area) - my**2
    sxy = total(2 * p[:, 0] * p[:, 1] + p[:, 0] * q[:, 1] + q[:, 0] * p[:, 1] + 2 * q[:, 0] * q[:, 1]) / (24 * area) - mx * my
    half_trace = (sxx + syy) / 2
    root = np.hypot((sxx - syy) / 2, sxy)
    lmax, lmin = half_trace + root, np.maximum(half_trace - root, 0.0)
    return np.sqrt(np.clip(1 - lmin / lmax, 0.0, 1.0))


def edges_by_layer(part) -> tuple[np.ndarray, np.ndarray]:
    """Interior edges of the subdivision per layer: counts (L,) int and total lengths (L,),
    read off :meth:`Partition.mesh` (each edge once; a side with T-junctions as its pieces)."""
    n_layers = len(part.layers)
    mesh = part.mesh()
    layer = mesh.edge_units[mesh.interior, 0]
    counts = np.bincount(layer, minlength=n_layers)[:n_layers]
    return counts, np.bincount(layer, weights=mesh.edge_lengths[mesh.interior], minlength=n_layers)[:n_layers]


def turning_angles(db) -> np.ndarray:
    """(J,) turning angle (radians) at every point where exactly two boundary segments meet."""
    if not len(db):
        return np.zeros(0)
    ends = db.segments.reshape(-1, 2)
    ids = point_ids(ends, float(np.abs(ends).max()))
    away = (db.segments[:, ::-1] - db.segments).reshape(-1, 2)  # from each end to the other end
    order = np.argsort(ids, kind="stable")
    counts = np.bincount(ids)
    starts = np.cumsum(counts) - counts
    two = np.flatnonzero(counts == 2)
    a, b = away[order[starts[two]]], away[order[starts[two] + 1]]
    between = np.arctan2(np.abs(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]), (a * b).sum(1))
    return np.pi - between


def stats(part) -> dict:
    """Summary statistics of a partition (see the module docstring for definitions).

    Keys: n_regions; area_, vertices_, eccentricity_, slope_ {mean, std, min,
    max, median}; boundary_length, boundary_segments, boundary_pieces,
    boundary_turning_mean (radians, NaN without junctions); edges (interior
    edges), edges_per_layer and edge_length_per_layer (lists, one entry per
    CPWL layer); seconds (time to compute the partition).

    On a boundary-first partition (:func:`splinecam.decision_boundary`) the region counts
    and distributions are over its exact regions only; ``n_coarse`` counts its coarse cells
    (unions of regions proved free of the boundary, never refined), and the edges are those
    of the cells (coarse cells' inner edges are not known).  ``n_coarse`` is 0 otherwise.
    """
    db = part.decision_boundary()
    turns = turning_angles(db)
    counts, lengths = edges_by_layer(part)
    exact = part.exact
    return {
        "n_regions": int(exact.sum()),
        "n_coarse": int((~exact).sum()),
        **_summary("area", part.areas[exact]),
        **_summary("vertices", part.vertex_counts[exact]),
        **_summary("eccentricity", eccentricities(part)[exact]),
        **_summary("slope", slope_norms(part)[exact]),
        "boundary_length": db.length,
        "boundary_segments": len(db),
        "boundary_pieces": db.pieces(),
        "boundary_turning_mean": float(turns.mean()) if len(turns) else float("nan"),
        "edges": int(counts.sum()),
        "edges_per_layer": counts.tolist(),
        "edge_length_per_layer": lengths.tolist(),
        **neighbour_stats(part),
        "seconds": part.seconds,
    }


# -- local complexity -----------------------------------------------------------------


def local_complexity(part, points_uv, radius) -> np.ndarray:
    """(N,) number of regions that meet the closed disk of ``radius`` around each point.

    points_uv: (N, 2) slice coordinates; radius: a number or (N,).  Exact: a
    region counts when the distance from the centre to its polygon is at
    most the radius.  Regions are pre-filtered by their bounding boxes.
    """
    pts = np.asarray(points_uv, dtype=np.float64)
    pts = pts[None] if pts.ndim == 1 else pts
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points_uv must have shape (N, 2), got {pts.shape}.")
    r = np.broadcast_to(np.asarray(radius, dtype=np.float64), (len(pts),))
    if not (np.all(np.isfinite(pts)) and np.all(np.isfinite(r)) and np.all(r >= 0)):
        raise ValueError("points_uv must be finite and radius finite and >= 0.")
    polys = part.arrays.polygons()
    lo, hi = (t.numpy() for t in polys.bounding_boxes())
    out = np.zeros(len(pts), dtype=np.int64)
    step = max(1, _PAIR_BLOCK // max(len(part), 1))
    for s in range(0, len(pts), step):
        p, rr = pts[s : s + step], r[s : s + step]
        gap = np.maximum(np.maximum(lo[None] - p[:, None], p[:, None] - hi[None]), 0.0)  # (n, R, 2)
        point, region = np.nonzero((gap**2).sum(-1) <= rr[:, None] ** 2)
        hit = distance_to_polygons(polys, p[point], region) <= rr[point]
        out[s : s + step] = np.bincount(point[hit], minlength=len(p))
    return out


# -- density image ----------------------------------------------------------------------


@dataclass
class DensityMap:
    """Regions per unit area: at each pixel centre, 1 / area of the region there.

    values: (H, W), row 0 at the bottom (``imshow(origin="lower")``), NaN
    outside the slice; extent: (u_min, u_max, v_min, v_max).  Its integral
    over the slice is the number of regions.
    """

    values: np.ndarray
    extent: tuple[float, float, float, float]

    def plot(self, ax=None, cmap="magma", colorbar: bool = True, **kwargs):
        """imshow on a log colour scale; kwargs go to imshow.  Returns the image."""
        import matplotlib.pyplot as plt
        from matplotlib.colors import LogNorm

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 5))
        finite = self.values[np.isfinite(self.values)]
        kw = {"cmap": cmap, "origin": "lower", "extent": self.extent, "interpolation": "nearest"}
        if finite.size:
            kw["norm"] = LogNorm(vmin=finite.min(), vmax=max(finite.max(), finite.min() * (1 + 1e-9)))
        kw.update(kwargs)
        image = ax.imshow(self.values, **kw)
        if colorbar:
            ax.figure.colorbar(image, ax=ax, label="regions per unit area")
        return image


def density_map(part, resolution: int = 256) -> DensityMap:
    """Density of regions over the slice, as an image ``resolution`` pixels on its longer side: at
    each pixel 1 / the area of the region there (of a curved partition: its region, not its piece)."""
    if int(resolution) != resolution or resolution < 1:
        raise ValueError(f"resolution must be a positive integer, got {resolution!r}.")
    poly = part.slice.polygon
    (u0, v0), (u1, v1) = poly.min(0), poly.max(0)
    pixel = max(u1 - u0, v1 - v0) / int(resolution)
    w, h = max(1, round((u1 - u0) / pixel)), max(1, round((v1 - v0) / pixel))
    u = u0 + (np.arange(w) + 0.5) * (u1 - u0) / w
    v = v0 + (np.arange(h) + 0.5) * (v1 - v0) / h
    uu, vv = np.meshgrid(u, v)
    idx = part.locate(np.stack([uu.ravel(), vv.ravel()], 1))
    areas = part.areas
    if getattr(part, "curved", False):  # rows are pieces of the regions: each piece's region's area
        known = part.region >= 0
        region_area = np.bincount(part.region[known], weights=areas[known], minlength=part.n_regions)
        areas = np.where(known, region_area[np.maximum(part.region, 0)], np.nan)
    values = np.where(idx >= 0, 1.0 / areas[np.maximum(idx, 0)], np.nan).reshape(h, w)
    return DensityMap(values, (float(u0), float(u1), float(v0), float(v1)))
