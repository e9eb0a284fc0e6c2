"""Summary statistics of a partition."""

from __future__ import annotations

import numpy as np


def _summary(prefix: str, values: np.ndarray) -> dict:
    values = np.asarray(values, dtype=np.float64)
    return {
        f"{prefix}_mean": float(values.mean()), f"{prefix}_std": float(values.std()),
        f"{prefix}_min": float(values.min()), f"{prefix}_max": float(values.max()),
    }


def stats(part) -> dict:
    """Region count, area and vertex-count distributions, decision-boundary length and pieces, time."""
    db = part.decision_boundary()
    return {
        "n_regions": len(part),
        **_summary("area", part.areas),
        **_summary("vertices", part.vertex_counts),
        "boundary_length": db.length,
        "boundary_segments": len(db),
        "boundary_pieces": db.pieces(),
        "seconds": part.seconds,
    }
