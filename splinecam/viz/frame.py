"""Per-region tables: a partition as a pandas DataFrame, one row per region.

Columns (R rows, K outputs, L piecewise-linear layers):

- ``area``, ``vertices``: the region's area and vertex count;
- ``centroid_u``, ``centroid_v``: its vertex mean (a point strictly inside);
- ``class``: the class that wins the largest part of the region, exactly (the argmax cells
  of :func:`splinecam.analysis.boundary.class_cells`; ``output >= 0`` for K = 1; -1 for a coarse cell);
  ``n_classes``: how many classes win somewhere in it (2 or more where the boundary cuts it);
- ``output`` (K = 1) or ``output_0`` ... ``output_{K-1}`` (1 < K <= 32): the
  network outputs at the centroid;
- ``margin``: at the centroid, the top logit minus the runner-up (``|output|``
  for K = 1);
- ``slope_norm``, ``eccentricity``: as defined in :mod:`splinecam.analysis.stats`;
- ``active_<l>``: units of layer ``l`` (1-based) above their breakpoint;
- ``edges_<l>``: the region's sides carried by a unit of layer ``l``;
  ``border_edges``: its sides on the slice border.

Column means agree with :func:`splinecam.analysis.stats.stats` (``area_mean``,
``vertices_mean``, ``eccentricity_mean``, ``slope_mean``, ...).  :func:`class_area_frame`
is the exact area where each class wins, one row per class.
"""

from __future__ import annotations

import numpy as np

from ..extras import require
from .plot import class_cells_of
from ..analysis.stats import eccentricities, slope_norms

__all__ = ["class_area_frame", "region_frame"]

MAX_OUTPUT_COLUMNS = 32


def margins(part) -> np.ndarray:
    """(R,) top logit minus the runner-up at each centroid (``|output|`` for one output)."""
    out = part.centroid_outputs
    if part.n_outputs == 1:
        return np.abs(out[:, 0])
    top2 = np.sort(out, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def region_columns(part) -> dict[str, np.ndarray]:
    """The columns of :func:`region_frame` as a dict of (R,) arrays (no pandas needed)."""
    cells = class_cells_of(part, "class")
    cols = {
        "area": part.areas,
        "vertices": part.vertex_counts,
        "centroid_u": part.centroids[:, 0],
        "centroid_v": part.centroids[:, 1],
        "class": cells.region_class(len(part)),
        "n_classes": np.bincount(cells.region, minlength=len(part)),
    }
    out = part.centroid_outputs
    if part.n_outputs == 1:
        cols["output"] = out[:, 0]
    elif part.n_outputs <= MAX_OUTPUT_COLUMNS:
        cols.update({f"output_{k}": out[:, k] for k in range(part.n_outputs)})
    cols["margin"] = margins(part)
    cols["slope_norm"] = slope_norms(part)
    cols["eccentricity"] = eccentricities(part)
    bits = np.cumsum([0] + [layer.bits for layer in part.layers])
    codes = part.codes
    for k in range(len(part.layers)):
        cols[f"active_{k + 1}"] = codes[:, bits[k]:bits[k + 1]].sum(1)
    owner = np.repeat(np.arange(len(part)), part.vertex_counts)
    layer = np.concatenate(part.edge_units)[:, 0] if len(part) else np.zeros(0, int)
    counts = np.zeros((len(part), len(part.layers) + 1), dtype=np.int64)
    np.add.at(counts, (owner, layer + 1), 1)  # column 0: border sides (layer -1)
    for k in range(len(part.layers)):
        cols[f"edges_{k + 1}"] = counts[:, k + 1]
    cols["border_edges"] = counts[:, 0]
    return cols


def region_frame(part):
    """A pandas DataFrame with one row per region (see the module doc for the columns).

    >>> df = part.to_frame()
    >>> df.nlargest(5, "area")[["area", "class", "slope_norm"]]
    """
    pd = require("pandas", "frames", "Partition.to_frame()")
    frame = pd.DataFrame(region_columns(part))
    frame.index.name = "region"
    return frame


def class_area_columns(part, output: int | None = None, level: float | None = None) -> dict[str, np.ndarray]:
    """The columns of :func:`class_area_frame` as a dict of arrays (no pandas needed)."""
    cells = part.class_cells(output=output, level=level)
    classes, where = np.unique(cells.label, return_inverse=True)
    area = np.bincount(where, cells.areas, len(classes))
    regions = [len(np.unique(cells.region[cells.label == c])) for c in classes]
    return {"class": classes, "area": area, "fraction": area / part.slice.area, "regions": np.array(regions),
            "cells": np.bincount(where, minlength=len(classes))}


def class_area_frame(part, output: int | None = None, level: float | None = None):
    """A pandas DataFrame, one row per class that wins somewhere: ``class`` (-1: coarse cells),
    its exact ``area`` (the area of its argmax cells, :func:`splinecam.analysis.boundary.class_cells`;
    for ``level``: class 0 is ``f_output < level``, 1 is ``>= level``), ``fraction`` of the
    slice, and the ``regions`` and ``cells`` it wins in.

    >>> sc.frame.class_area_frame(part)
    """
    pd = require("pandas", "frames", "class_area_frame()")
    return pd.DataFrame(class_area_columns(part, output, level)).set_index("class")
