"""Sampling in a slice, and verification of a partition by sampling."""

from __future__ import annotations

from dataclasses import dataclass

import copy

import numpy as np
import torch

from ..run.chain import leaf_modules
from ..run.trace import prepare

__all__ = ["BoundarySamples", "VerifyReport", "ambiguous_bits", "code_mismatches", "network_outputs", "sample_boundary",
           "sample_polygon", "verified_network", "verify", "verify_curved"]

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
    |pre-activation| seen (the scale of the numbers that were added up).  ``area_error``:
    relative difference between the regions' total area and the slice's (for a partial
    partition, only its excess over the slice's); ``area_covered``: that total over the
    slice's area; ``points_compared`` / ``regions_compared``: the points where the model was
    compared with a region's map, and the exact regions they lie in (points in coarse cells are
    not compared).  A report that compared no point is not ``ok``."""

    n_points: int
    max_abs_error: float
    max_rel_error: float
    code_mismatches: int
    unlocated: int
    area_error: float
    tol: float
    area_covered: float = 1.0
    complete: bool = True
    points_compared: int = 0
    regions_compared: int = 0

    @property
    def ok(self) -> bool:
        return (
            self.points_compared > 0 and self.max_rel_error <= self.tol and self.code_mismatches == 0
            and self.unlocated == 0 and self.area_error <= self.tol
        )

    def __str__(self) -> str:
        area = f"area error {self.area_error:.2e}"
        if not self.complete:
            area += f", partial: {self.area_covered:.1%} of the slice covered"
        return (
            f"verify: {'OK' if self.ok else 'FAILED'} at {self.n_points} points ({self.points_compared} compared, in "
            f"{self.regions_compared} regions): max |error| "
            f"{self.max_abs_error:.2e} ({self.max_rel_error:.2e} relative), "
            f"{self.code_mismatches} code mismatches, {self.unlocated} points in no region, {area}"
        )


def verify(part, n_points: int | None = None, seed: int = 0, model=None, tol: float | None = None) -> VerifyReport:
    """Check a partition against the network at random points of the slice.

    At ``n_points`` uniform points (default: 1.5 per region, at least 100 and at
    most 2000, so that the check costs no more than the partition): the
    model's output (the partition's copy of the model, in its dtype, or
    ``model`` run in float64) on the inputs ``slice.to_input(uv)`` against
    ``part.evaluate``; the activation code at each point against its region's
    code (units within ``tol`` of a breakpoint, and max units whose two best
    candidates are within ``tol``, relative to the scale of the numbers, are
    not counted); every point lies in a region; and the region areas sum to the
    slice area.  For a partial partition (``part.complete`` False) the points
    are drawn in its regions and their areas may sum to less.  ``tol``: 1e-9 in
    float64 (the default), 1e-4 for a float32 partition.  Points in the coarse cells of a
    boundary-first partition (``part.exact`` False: no single map) count as located but are
    not compared; the report says how many points and regions were compared, and is not ``ok``
    when none were.
    """
    twin, graph, n_points = verified_network(part, n_points, model, part.slice.input_shape)
    rng = np.random.default_rng(seed)
    if part.complete:
        uv = sample_polygon(part.slice.polygon, n_points, rng)
    elif len(part):
        uv = _sample_regions(part, n_points, rng)
    else:
        uv = np.zeros((0, 2))
    n_points = len(uv)
    first = next(iter(twin.parameters()), None)
    x = part.slice.to_input(uv, dtype=torch.float64)
    if first is not None:
        x = x.to(device=first.device, dtype=first.dtype)
    if tol is None:
        tol = 1e-9 if x.dtype == torch.float64 else 1e-4
    idx = part.locate(uv)
    located = idx >= 0
    outputs, codes, scale = network_outputs(twin, graph, x)
    compared = located & part.exact[np.maximum(idx, 0)]
    err = np.abs(part.evaluate(uv)[compared] - outputs[compared])
    max_abs = float(err.max()) if err.size else 0.0
    mismatches = code_mismatches(part, idx, codes, compared, graph, x, tol * scale)
    return _report(part, n_points, max_abs, scale, mismatches, located, tol, idx[compared])


def _report(part, n_points, max_abs, scale, mismatches, located, tol, regions) -> VerifyReport:
    """The report of a check at ``n_points`` points, of which ``located``, comparing in ``regions``."""
    covered = float(part.areas.sum()) / part.slice.area
    area_error = abs(covered - 1) if part.complete else max(0.0, covered - 1)
    return VerifyReport(n_points, max_abs, max_abs / scale, mismatches, int((~located).sum()), area_error, tol,
                        covered, part.complete, len(regions), len(np.unique(regions)))


def verify_curved(part, n_points: int | None = None, seed: int = 0, model=None, tol: float | None = None) -> VerifyReport:
    """Check a :class:`~splinecam.CurvedPartition` by sampling, as :func:`verify` does: at uniform
    points, a float64 copy of the model (``model``, or the partition's copy) against
    ``part.evaluate`` (relative error within ``tol``, default 1e-9), and the activation pattern
    the model's own ReLU inputs give against the piece's, except at points within twice the
    partition's tolerance of a boundary polyline or in an uncertified cell; every point located;
    the pieces' areas sum to the slice's."""
    twin = part.model if model is None else copy.deepcopy(model).to(torch.float64)
    if twin is None:
        raise ValueError("this partition has no model; pass it: part.verify(model=...).")
    rng = np.random.default_rng(seed)
    n_points = n_points or min(2000, max(100, 3 * len(part) // 2))
    uv = sample_polygon(part.slice.polygon, n_points, rng) if part.complete else _sample_regions(part, n_points, rng)
    tol = 1e-9 if tol is None else tol
    idx = part.locate(uv)
    located = idx >= 0
    outputs, bits = _relu_inputs(twin, part.slice.to_input(uv, dtype=torch.float64))
    err = np.abs(part.evaluate(uv)[located] - outputs[located])
    max_abs, scale = (float(err.max()) if err.size else 0.0), max(float(np.abs(outputs).max(initial=0.0)), 1e-300)
    differ = located & (bits != part.pieces.bits[np.maximum(idx, 0)]).any(1) & part.certified[np.maximum(idx, 0)]
    if differ.any():  # excused near a boundary polyline
        a = part.arrays
        ends = np.roll(np.arange(len(a.vertices)), -1)
        ends[a.offsets[1:] - 1] = a.offsets[:-1]
        unit = a.edge_units[:, 0] >= 0
        near = _segment_distance(uv[differ], a.vertices[unit], a.vertices[ends[unit]]) <= 2 * part.tolerance
        differ[np.flatnonzero(differ)[near]] = False
    return _report(part, n_points, max_abs, scale, int(differ.sum()), located, tol, idx[located])


def _relu_inputs(twin, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The outputs (N, K) of a sequential model and the signs (N, units) of its ReLU inputs."""
    signs = []
    with torch.no_grad():
        for _, module in leaf_modules(twin):
            if isinstance(module, (torch.nn.ReLU, torch.nn.LeakyReLU)):
                signs.append((x > 0).numpy())
            x = module(x)
    return x.reshape(len(x), -1).numpy(), np.concatenate(signs, 1) if signs else np.zeros((len(x), 0), bool)


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,) the distance of each point (N, 2) to the nearest segment a -> b (S, 2)."""
    if not len(a):
        return np.full(len(p), np.inf)
    d = b - a
    t = np.clip(((p[:, None] - a) * d).sum(-1) / np.maximum((d * d).sum(-1), 1e-300), 0, 1)
    return np.linalg.norm(p[:, None] - (a + t[..., None] * d), axis=-1).min(1)


def verified_network(part, n_points: int | None, model, input_shape) -> tuple:
    """What a verify of ``part`` (a partition of any domain) runs: (model copy, graph, points):
    ``model`` prepared in float64 (inputs ``input_shape``), else the partition's own copy; the
    number of points ``n_points`` checked (default 1.5 per cell, at least 100, at most 2000)."""
    if n_points is not None and (isinstance(n_points, bool) or not isinstance(n_points, (int, np.integer))
                                 or n_points < 1):
        raise ValueError(f"n_points must be a positive integer (or None for the default), got {n_points!r}.")
    if model is not None:
        twin, graph = prepare(model, torch.float64, "cpu", input_shape)
    elif part.model is not None:
        twin, graph = part.model, part.graph
    else:
        raise ValueError("this partition keeps no copy of the model (it was loaded from a file, or drop_model() was "
                         "called); pass the model: part.verify(model=...).")
    return twin, graph, min(2000, max(100, 3 * len(part) // 2)) if n_points is None else n_points


def code_mismatches(part, idx: np.ndarray, codes: np.ndarray | None, compared: np.ndarray, graph, x: torch.Tensor,
                    atol: float) -> int:
    """How many of the points ``compared`` (N,) bool have a code ``codes`` (N, bits) (from
    :func:`network_outputs` at the inputs x) that differs from their cell's (``idx`` (N,) in
    ``part``, a partition of any domain with ``layers`` and ``codes_of``) in a bit not within
    ``atol`` of a tie (all of them where the model has other layers than the partition)."""
    bits = sum(layer.bits for layer in part.layers)
    if (0 if codes is None else codes.shape[1]) != bits:  # the model has other layers than the partition
        return int(compared.sum())
    if codes is None:
        return 0
    ok = np.flatnonzero(compared)
    differ = np.flatnonzero((part.codes_of(idx[ok]) != codes[ok]).any(axis=1))
    if not differ.size:
        return 0
    pts = ok[differ]  # only where codes differ: is every differing bit within atol of a tie?
    amb = ambiguous_bits(graph, x[torch.as_tensor(pts, device=x.device)], atol)
    return int(((part.codes_of(idx[pts]) != codes[pts]) & ~amb).any(axis=1).sum())


def _sample_regions(part, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 2) points uniform in the union of the regions of a partition."""
    areas = np.abs(part.areas)
    region = rng.choice(len(areas), size=n, p=areas / areas.sum())
    out = np.empty((n, 2))
    for r in np.unique(region):
        at = region == r
        out[at] = sample_polygon(part.polygons[r], int(at.sum()), rng)
    return out


def network_outputs(model, graph, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None, float]:
    """At inputs x, in batches of points: the model's outputs (N, K), the activation codes
    (N, bits) from the graph (None without piecewise-linear ops) and the largest |output| or
    |input of a piecewise-linear op| (the scale of the numbers added up)."""
    outs, codes, top = [], [], [1e-300]

    def record(layer, z):
        seen.append(graph.split_nodes[layer].op.code(z))
        top.append(float(z.abs().max()))

    with torch.no_grad():
        for s in range(0, len(x), _POINTS_AT_ONCE):
            xs = x[s : s + _POINTS_AT_ONCE]
            out = model(xs).reshape(len(xs), -1)
            outs.append(out)
            top.append(float(out.abs().max()))
            seen: list[torch.Tensor] = []
            graph.forward(xs, on_split=record)
            if seen:
                codes.append(torch.cat(seen, 1))
    k = outs[0].shape[1] if outs else 0
    outputs = torch.cat(outs).cpu().numpy() if outs else np.zeros((0, k))
    return outputs, (torch.cat(codes).cpu().numpy() if codes else None), max(top)


def ambiguous_bits(graph, x: torch.Tensor, atol: float) -> np.ndarray:
    """(N, bits) bool: the code bits at inputs x that lie within ``atol`` of a tie."""
    amb = []
    with torch.no_grad():
        for s in range(0, len(x), _POINTS_AT_ONCE):
            parts = []
            graph.forward(x[s : s + _POINTS_AT_ONCE], on_split=lambda layer, z: parts.append(
                graph.split_nodes[layer].op.ambiguous(z, atol)))
            amb.append(torch.cat(parts, 1))
    return torch.cat(amb).cpu().numpy()


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
