"""Studies over data and models: on-manifold slices, and tables of statistics."""

from __future__ import annotations

import sys
import warnings

import numpy as np

from ..partition import partition_many
from ..slices import Slice
from ..analysis.stats import stats

__all__ = ["compare", "slice_from_data"]

DEFAULT_COLUMNS = (
    "n_regions", "area_median", "vertices_mean", "eccentricity_mean", "slope_median",
    "edges", "boundary_length", "boundary_pieces", "boundary_turning_mean", "seconds",
)


def slice_from_data(X, y, classes=(0, 1), seed: int = 0, margin: float = 0.25) -> Slice:
    """Deprecated name of :meth:`splinecam.Slice.from_data`; it goes in the next release."""
    warnings.warn("splinecam.slice_from_data is now splinecam.Slice.from_data.", DeprecationWarning, stacklevel=2)
    return Slice.from_data(X, y, classes=classes, seed=seed, margin=margin)


def _mean(values: list):
    if isinstance(values[0], list):
        if len({len(v) for v in values}) == 1:
            return np.mean(np.asarray(values, dtype=np.float64), axis=0).tolist()
        return values
    return float(np.mean(values))


def compare(models: dict, slices, columns=DEFAULT_COLUMNS, show: bool = True, file=None, executor=None,
            **options):
    """Statistics of several models over the same slices.

    models: {name: model}; slices: a Slice or a list of them; options go to
    :func:`splinecam.partition`.  One row per model: ``model``, ``slices``
    (count), every key of :func:`splinecam.analysis.stats.stats` averaged over the
    slices (lists element by element), and ``per_slice`` (the individual
    dicts).  Returns a pandas DataFrame of these rows, indexed by model
    name, when pandas is installed (``pip install 'splinecam[frames]'``),
    else the list of row dicts.  If ``show``, prints ``columns`` as a table
    to ``file`` (default: standard output).  executor: where the partitions run, as in
    :func:`splinecam.partition_many`.

    >>> table = sc.compare({"small": m1, "big": m2}, [sl1, sl2])
    >>> table.loc["big", "n_regions"]
    """
    if isinstance(slices, Slice):
        slices = [slices]
    slices = list(slices)
    if not models or not slices:
        raise ValueError("compare needs at least one model and one slice.")
    options.setdefault("progress", False)
    parts = partition_many([m for m in models.values() for _ in slices], slices * len(models), executor=executor,
                           **options)
    rows = []
    for k, name in enumerate(models):
        per_slice = [stats(part) for part in parts[k * len(slices) : (k + 1) * len(slices)]]
        row = {"model": str(name), "slices": len(slices)}
        row.update({key: _mean([s[key] for s in per_slice]) for key in per_slice[0]})
        row["per_slice"] = per_slice
        rows.append(row)
    if show:
        print(format_table(rows, ("model",) + tuple(columns)), file=sys.stdout if file is None else file)
    try:
        import pandas as pd
    except ImportError:
        return rows
    return pd.DataFrame(rows).set_index("model", drop=False).rename_axis(None)


def format_table(rows: list[dict], columns) -> str:
    """A plain-text table of ``columns`` of ``rows`` (numbers to 4 significant digits)."""
    missing = [c for c in columns if c not in rows[0]]
    if missing:
        raise KeyError(f"unknown column(s) {missing}; available: {sorted(rows[0])}.")

    def cell(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        if isinstance(v, list):
            return "/".join(cell(x) for x in v)
        return str(v)

    table = [list(columns)] + [[cell(r[c]) for c in columns] for r in rows]
    widths = [max(len(line[j]) for line in table) for j in range(len(columns))]
    lines = ["  ".join(s.ljust(w) if j == 0 else s.rjust(w) for j, (s, w) in enumerate(zip(line, widths))) for line in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
