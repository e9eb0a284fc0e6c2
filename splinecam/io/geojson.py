"""GeoJSON (RFC 7946) of partitions and boundaries, in slice coordinates ``(u, v)``.

Rings are closed (first point repeated) and counter-clockwise, as the RFC asks.  The result
is a plain dict: ``json.dump`` it to write a file.
"""

from __future__ import annotations

import numpy as np

__all__ = ["boundary_geojson", "partition_geojson"]


def _ring(points: np.ndarray) -> list:
    return np.vstack([points, points[:1]]).tolist()


def partition_geojson(part) -> dict:
    """A FeatureCollection with one Polygon per region; properties: ``region``, ``area``,
    ``cls`` (the argmax at the centroid; for K = 1, whether the output is > 0), ``exact``,
    ``code`` (the packed activation code in hex)."""
    out = part.centroid_outputs
    cls = (out[:, 0] > 0).astype(int) if part.n_outputs == 1 else np.nan_to_num(out, nan=-np.inf).argmax(1)
    features = [{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [_ring(poly)]},
                 "properties": {"region": r, "area": float(part.areas[r]), "cls": int(cls[r]), "exact": bool(part.exact[r]),
                                "code": part.arrays.packed_codes[r].tobytes().hex()}}
                for r, poly in enumerate(part.polygons)]
    return {"type": "FeatureCollection", "features": features}


def boundary_geojson(db) -> dict:
    """A FeatureCollection with one LineString per curve of the boundary (see
    :meth:`splinecam.Boundary.curves`); properties: ``closed``, ``length``, ``classes`` (the
    class pairs along it, each once)."""
    features = [{"type": "Feature", "geometry": {"type": "LineString", "coordinates": c.points.tolist()},
                 "properties": {"closed": c.closed, "length": c.length,
                                "classes": np.unique(np.sort(c.classes, 1), axis=0).tolist()}}
                for c in db.curves()]
    return {"type": "FeatureCollection", "features": features}
