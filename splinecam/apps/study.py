"""Studies over data and models: on-manifold slices, and tables of statistics."""

from __future__ import annotations

import sys

import numpy as np
import torch

from ..run.executors import partition_many
from ..slices import Slice, check_seed
from ..analysis.stats import stats

DEFAULT_COLUMNS = (
    "n_regions", "area_median", "vertices_mean", "eccentricity_mean", "slope_median",
    "edges", "boundary_length", "boundary_pieces", "boundary_turning_mean", "seconds",
)


def slice_from_data(X, y, classes=(0, 1), seed: int = 0, margin: float = 0.25) -> Slice:
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
    i1 = int(np.random.default_rng(check_seed(seed)).choice(in_a))
    dist = np.linalg.norm(flat - flat[i1], axis=1)
    i2 = int(in_b[np.argmin(dist[in_b])])
    d12 = flat[i2] - flat[i1]
    if not np.linalg.norm(d12) > 0:
        raise ValueError(f"inputs {i1} and {i2} of classes {a!r} and {b!r} coincide; no plane through them.")
    unit = d12 / np.linalg.norm(d12)
    for i3 in np.flatnonzero(np.isin(y, classes))[np.argsort(dist[np.isin(y, classes)], kind="stable")]:
        off = flat[i3] - flat[i1]
        if np.linalg.norm(off - (off @ unit) * unit) > 1e-9 * max(np.linalg.norm(off), np.linalg.norm(d12)):
            return Slice.from_points(X[i1], X[i2], X[i3], margin=margin)
    raise ValueError("all inputs of the two classes lie on one line; no plane through three of them.")


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
