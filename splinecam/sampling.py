"""Sampling in a slice, and verification of a partition by sampling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .trace import prepare

_POINTS_AT_ONCE = 256


def sample_polygon(polygon: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 2) points uniform in a convex polygon (m, 2), by a fan of triangles."""
    a, b, c = polygon[0], polygon[1:-1], polygon[2:]
    area = np.abs((b[:, 0] - a[0]) * (c[:, 1] - a[1]) - (b[:, 1] - a[1]) * (c[:, 0] - a[0]))
    tri = rng.choice(len(area), size=n, p=area / area.sum())
    r1, r2 = rng.random(n), rng.random(n)
    flip = r1 + r2 > 1
    r1[flip], r2[flip] = 1 - r1[flip], 1 - r2[flip]
    return a + r1[:, None] * (b[tri] - a) + r2[:, None] * (c[tri] - a)


@dataclass
class VerifyReport:
    """Result of :func:`verify`.  Relative errors are relative to the largest |output| or
    |pre-activation| seen (the scale of the numbers that were added up)."""

    n_points: int
    max_abs_error: float
    max_rel_error: float
    code_mismatches: int
    unlocated: int
    area_error: float
    tol: float

    @property
    def ok(self) -> bool:
        return (
            self.max_rel_error <= self.tol and self.code_mismatches == 0
            and self.unlocated == 0 and self.area_error <= self.tol
        )

    def __str__(self) -> str:
        return (
            f"verify: {'OK' if self.ok else 'FAILED'} at {self.n_points} points: max |error| "
            f"{self.max_abs_error:.2e} ({self.max_rel_error:.2e} relative), "
            f"{self.code_mismatches} code mismatches, {self.unlocated} points in no region, "
            f"area error {self.area_error:.2e}"
        )


def verify(part, n_points: int = 2000, seed: int = 0, model=None, tol: float | None = None) -> VerifyReport:
    """Check a partition against the network at random points of the slice.

    At ``n_points`` uniform points: the model's output (the partition's copy of
    the model, in its dtype, or ``model`` run in float64) on the inputs
    ``slice.to_input(uv)`` against ``part.evaluate``; the activation code at
    each point against its region's code (units within ``tol`` of a breakpoint,
    and max units whose two best candidates are within ``tol``, relative to the
    scale of the numbers, are not counted); every point lies in a region; and
    the region areas sum to the slice area.  ``tol``: 1e-9 in float64 (the
    default), 1e-4 for a float32 partition.  Points in the coarse cells of a boundary-first
    partition (``part.exact`` False: no single map) count as located but are not compared.
    """
    if model is not None:
        twin, graph = prepare(model, torch.float64, "cpu", part.slice.input_shape)
    elif part.model is not None:
        twin, graph = part.model, part.graph
    else:
        raise ValueError("this partition was loaded from a file; pass the model: part.verify(model=...).")
    rng = np.random.default_rng(seed)
    uv = sample_polygon(part.slice.polygon, n_points, rng)
    first = next(iter(twin.parameters()), None)
    x = part.slice.to_input(uv, dtype=torch.float64)
    if first is not None:
        x = x.to(device=first.device, dtype=first.dtype)
    if tol is None:
        tol = 1e-9 if x.dtype == torch.float64 else 1e-4
    idx = part.locate(uv)
    located = idx >= 0
    compared = located & part.exact[np.maximum(idx, 0)]
    err = np.abs(part.evaluate(uv)[compared] - _forward(twin, x)[compared])
    max_abs = float(err.max()) if err.size else 0.0
    # the scale of the numbers added up: outputs and pre-activations can cancel to ~0 while the
    # terms that make them do not
    scale = _largest_magnitude(twin, graph, x)
    mismatches = 0
    for s in range(0, n_points, _POINTS_AT_ONCE):  # in chunks: activations of big models are big
        seen, amb = _codes_at(graph, x[s : s + _POINTS_AT_ONCE], tol * scale)
        if seen is not None:
            sel = idx[s : s + _POINTS_AT_ONCE]
            ok = compared[s : s + _POINTS_AT_ONCE]
            differ = (part.codes_of(sel[ok]) != seen[ok]) & ~amb[ok]
            mismatches += int(differ.any(axis=1).sum())
    area_error = abs(float(part.areas.sum()) - part.slice.area) / part.slice.area
    return VerifyReport(n_points, max_abs, max_abs / scale, mismatches, int((~located).sum()), area_error, tol)


def _codes_at(graph, x: torch.Tensor, atol: float) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(N, bits) activation codes at inputs x, and which bits are within ``atol`` of a tie."""
    seen, amb = [], []

    def record(layer, z):
        op = graph.split_nodes[layer].op
        seen.append(op.code(z))
        amb.append(op.ambiguous(z, atol))

    with torch.no_grad():
        graph.forward(x, on_split=record)
    if not seen:
        return None, None
    return torch.cat(seen, 1).cpu().numpy(), torch.cat(amb, 1).cpu().numpy()


def _forward(model, x: torch.Tensor) -> np.ndarray:
    """(N, K) outputs of the model, in chunks of points."""
    with torch.no_grad():
        out = [model(x[s : s + _POINTS_AT_ONCE]).reshape(len(x[s : s + _POINTS_AT_ONCE]), -1) for s in range(0, len(x), _POINTS_AT_ONCE)]
    return torch.cat(out).cpu().numpy()


def _largest_magnitude(model, graph, x: torch.Tensor) -> float:
    """max |output| and |input of a piecewise-linear op| over the points x."""
    top = [1e-300]
    with torch.no_grad():
        for s in range(0, len(x), _POINTS_AT_ONCE):
            out = graph.forward(x[s : s + _POINTS_AT_ONCE], on_split=lambda layer, z: top.append(float(z.abs().max())))
            top.append(float(out.abs().max()))
    return max(top)


@dataclass
class BoundarySamples:
    """Points on the exact decision boundary.

    uv: (n, 2) slice coordinates; x: (n, D) float64 input-space points;
    classes: (n, 2) the two tied classes (for K = 1, ``(0, 1)``: output below /
    above 0); regions: (n,) region of each point; ``inputs``: x shaped
    (n, *input_shape), ready for ``model(...)``.
    """

    uv: np.ndarray
    x: torch.Tensor
    classes: np.ndarray
    regions: np.ndarray
    input_shape: tuple

    def __len__(self) -> int:
        return len(self.uv)

    @property
    def inputs(self) -> torch.Tensor:
        return self.x.reshape(len(self.x), *self.input_shape)


def sample_boundary(part, n: int, seed: int = 0, boundary=None) -> BoundarySamples:
    """``n`` points drawn uniformly by length on the decision boundary (or on ``boundary``,
    e.g. a level set): a segment with probability proportional to its length,
    then a uniform point on it."""
    if int(n) != n or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}.")
    db = part.decision_boundary() if boundary is None else boundary
    lengths = db.lengths
    if not len(db) or lengths.sum() <= 0:
        raise ValueError("the boundary does not cross this slice: there is nothing to sample.")
    rng = np.random.default_rng(seed)
    seg = rng.choice(len(db), size=int(n), p=lengths / lengths.sum())
    t = rng.random(int(n))[:, None]
    a, b = db.segments[seg, 0], db.segments[seg, 1]
    uv = a + t * (b - a)
    x = part.slice.to_input(uv).reshape(int(n), -1)
    return BoundarySamples(uv, x, db.classes[seg], db.regions[seg], part.slice.input_shape)
