"""``estimate``: what a partition will cost, before a long run.

It pushes the slice through the model up to the first piecewise-linear layer and counts the
lines of that layer that cross the slice (a lower bound on the regions follows from their
arrangement), partitions a small patch at the slice's centre to measure seconds per region
and region density, and projects the time and memory of the whole slice."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ..partition import check_shapes, checked_arguments, partition_graph
from ..slices import Slice
from ..run.plan import graph_layers, region_bytes, chart_frame
from ..run.trace import prepare

__all__ = ["Estimate", "estimate"]

_PAIRS_AT_ONCE = 1 << 22  # line pairs intersected at once


@dataclass
class Estimate:
    """Result of :func:`estimate`.

    first_layer: name of the first piecewise-linear layer; lines: its (unit,
    breakpoint) lines that cross the slice (None for a max-type first layer);
    lower_bound: regions of the arrangement of those lines in the slice (each
    later layer only splits them further; exact for lines in general position);
    probe_regions, probe_seconds: the partition of the patch at the centre;
    seconds_per_region: their ratio; regions: projected regions (the patch's
    density over the whole area, at least ``lower_bound``); seconds, bytes:
    projected time and memory of the result.
    """

    first_layer: str
    lines: int | None
    lower_bound: int
    probe_regions: int
    probe_seconds: float
    seconds_per_region: float
    regions: int
    seconds: float
    bytes: int

    def __str__(self) -> str:
        lines = "max-type" if self.lines is None else f"{self.lines:,} lines cross the slice"
        return (
            f"first piecewise-linear layer {self.first_layer}: {lines}; at least {self.lower_bound:,} regions\n"
            f"probe: {self.probe_regions:,} regions in {self.probe_seconds:.2f} s "
            f"({self.seconds_per_region * 1e3:.2f} ms a region)\n"
            f"projected: about {self.regions:,} regions, {_duration(self.seconds)}, "
            f"{self.bytes / 2**30:.2f} GiB for the result"
        )


def estimate(model, sl: Slice, dtype=torch.float64, device="cpu", probe_regions: int = 100, **options) -> Estimate:
    """Estimate the regions, time and memory of ``partition(model, sl)`` before running it.

    probe_regions: about how many regions the patch at the slice's centre should have
    (its size follows the first layer's line density); ``options`` as for
    :func:`splinecam.partition` (they apply to the probe).
    """
    opts, device = checked_arguments(model, sl, device, options, "estimate")
    twin, graph = prepare(model, dtype, device, sl.input_shape)
    shapes = check_shapes(twin, graph, sl, dtype, device)
    name, lines = _first_layer_lines(graph, sl, dtype, device, opts.rtol)
    bound = _arrangement_regions(lines, sl) if lines is not None else 1
    n_lines = None if lines is None else len(lines)
    # a patch whose share of the area is about probe_regions / lower bound (within limits)
    share = float(np.clip(probe_regions / max(bound, 1), 1e-6, 1.0))
    patch = _patch(sl, share)
    t0 = time.perf_counter()
    part = partition_graph(twin, graph, patch, dtype, device, False, opts)
    probe_s = time.perf_counter() - t0
    per_region = probe_s / max(len(part), 1)
    regions = max(bound, int(len(part) / share))
    return Estimate(name, n_lines, bound, len(part), probe_s, per_region, regions, regions * per_region,
                    regions * region_bytes(int(np.prod(shapes[-1])), list(graph_layers(graph, shapes).values())) // 2)


def _first_layer_lines(graph, sl: Slice, dtype, device, rtol: float) -> tuple[str, np.ndarray | None]:
    """The first piecewise-linear node's name and its lines (L, 3) ``a*u + b*v + c`` in slice
    coordinates that cross the slice polygon, normalised and distinct (None where the op's
    cells are not cut by lines: max-type)."""
    center, root, extent, state = chart_frame(sl, dtype, device)
    values = {0: state}
    for i, node, args in graph.walk(values):
        if node.op.splits:
            break
        values[i + 1] = node.op.push(*args)
    else:
        return "(none)", np.zeros((0, 3))
    lines = node.op.crossing_lines(args[0], root, extent, rtol)
    if lines is None:
        return node.name, None
    lines[:, 2] -= lines[:, 0] * center[0] + lines[:, 1] * center[1]  # about the slice's uv origin
    lines = lines.cpu().numpy()
    return node.name, np.unique(lines / np.linalg.norm(lines[:, :2], axis=1, keepdims=True), axis=0)


def _arrangement_regions(lines: np.ndarray, sl: Slice) -> int:
    """1 + lines + their intersection points inside the slice polygon: the regions the
    lines (L, 3), normalised and distinct, make in the polygon in general position."""
    n = len(lines)
    inside = 0
    poly = np.asarray(sl.polygon)
    edges = np.roll(poly, -1, axis=0) - poly
    step = max(1, _PAIRS_AT_ONCE // max(n, 1))
    for s in range(0, n, step):
        i, j = np.nonzero(np.arange(n)[None, :] > np.arange(s, min(s + step, n))[:, None])
        i = i + s
        la, lb = lines[i], lines[j]
        det = la[:, 0] * lb[:, 1] - la[:, 1] * lb[:, 0]
        ok = np.abs(det) > 1e-12
        u = (la[ok, 1] * lb[ok, 2] - lb[ok, 1] * la[ok, 2]) / det[ok]
        v = (lb[ok, 0] * la[ok, 2] - la[ok, 0] * lb[ok, 2]) / det[ok]
        pts = np.stack([u, v], 1)
        cross = edges[None, :, 0] * (pts[:, None, 1] - poly[None, :, 1]) - edges[None, :, 1] * (pts[:, None, 0] - poly[None, :, 0])
        inside += int((cross > 0).all(1).sum())
    return 1 + n + inside


def _patch(sl: Slice, share: float) -> Slice:
    """The slice polygon shrunk about its centre to ``share`` of its area."""
    poly = np.asarray(sl.polygon)
    center = poly.mean(0)
    return Slice(sl.origin, sl.basis, center + (poly - center) * np.sqrt(share))


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
