"""Shared helpers for the exactness tests: model builders, independent reference
computations (float64 copies of the model, brute-force activation codes) and
the invariant checks every partition must pass."""

from __future__ import annotations

import copy
import gc
import importlib
import os
import threading
import time
from contextlib import contextmanager
from fractions import Fraction
from itertools import combinations

import numpy as np
import pytest
import torch
from torch import nn

import splinecam as sc
from splinecam.geometry import Polygons
from splinecam.run import chain

REL = 1e-9  # the exactness bar of the issue, relative to the output scale / slice area


def examples(n: int) -> int:
    """Hypothesis example count: ``n`` times $SPLINECAM_TEST_SCALE (default 1) for thorough runs."""
    return n * int(os.environ.get("SPLINECAM_TEST_SCALE", "1"))


# --- models ----------------------------------------------------------------------


def arrangement_model(weights, biases, out=None, act=None) -> nn.Sequential:
    """2 -> n -> 1 network whose first-layer units are the lines ``w . (u, v) + b = 0``."""
    w = torch.as_tensor(np.asarray(weights, dtype=np.float64), dtype=torch.float32)
    n = w.shape[0]
    first, last = nn.Linear(2, n), nn.Linear(n, 1)
    with torch.no_grad():
        first.weight.copy_(w)
        first.bias.copy_(torch.as_tensor(np.asarray(biases, dtype=np.float64), dtype=torch.float32))
        gen = torch.Generator().manual_seed(n)
        last.weight.copy_(torch.randn(1, n, generator=gen) if out is None else torch.as_tensor(out).reshape(1, n))
        last.bias.fill_(0.1)
    return nn.Sequential(first, act or nn.ReLU(), last).eval()


def linear_layer(weight, bias) -> nn.Linear:
    w = torch.as_tensor(weight, dtype=torch.float32)
    lin = nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        lin.weight.copy_(w)
        lin.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    return lin


def via_quadrants(out_weight, out_bias) -> nn.Sequential:
    """Hidden layer relu(u), relu(-u), relu(v), relu(-v) (regions = quadrants), then a linear
    read-out: u = h0 - h1 and v = h2 - h3, so any affine logits can be built on top."""
    first = linear_layer([[1, 0], [-1, 0], [0, 1], [0, -1]], [0, 0, 0, 0])
    return nn.Sequential(first, nn.ReLU(), linear_layer(out_weight, out_bias)).eval()


def random_mlp(widths, k, seed, act="relu", integer=False, extras=False, inputs: int = 2) -> nn.Sequential:
    """Sequential MLP inputs (2) -> widths... -> k.  ``integer``: small integer weights, half-integer
    biases (lines through lattice points, many exact coincidences).  ``extras``: sprinkle
    eval BatchNorm1d, Dropout, Identity and nested Sequentials in."""
    gen = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    d = inputs
    for i, w in enumerate(widths):
        lin = nn.Linear(d, w)
        _fill(lin, gen, integer)
        block = [lin]
        if extras and i % 2 == 0:
            bn = nn.BatchNorm1d(w)
            with torch.no_grad():
                bn.running_mean.copy_(torch.randn(w, generator=gen) * 0.3)
                bn.running_var.copy_(torch.rand(w, generator=gen) + 0.5)
                bn.weight.copy_(torch.randn(w, generator=gen))
                bn.bias.copy_(torch.randn(w, generator=gen) * 0.3)
            block.append(bn)
        block.append(nn.ReLU() if act == "relu" else nn.LeakyReLU(0.1 + 0.2 * (i % 3)))
        if extras:
            block += [nn.Dropout(0.3), nn.Identity()]
            layers.append(nn.Sequential(*block))
        else:
            layers += block
        d = w
    lin = nn.Linear(d, k)
    _fill(lin, gen, integer)
    layers.append(lin)
    return nn.Sequential(*layers).eval()


def degenerate_mlp(widths, seed, act, integer, duplicate, dead) -> nn.Sequential:
    """A random MLP with, optionally, a duplicated unit and a dead unit in every hidden layer
    (``dead="flat"``: identically zero, on its breakpoint)."""
    model = random_mlp(widths, 2, seed, act=act, integer=integer)
    linears = [m for m in model if isinstance(m, nn.Linear)][:-1]
    with torch.no_grad():
        for lin in linears:
            if duplicate and lin.out_features > 1:
                lin.weight[1] = lin.weight[0]
                lin.bias[1] = lin.bias[0]
            if dead:
                lin.weight[-1] = 0.0
                lin.bias[-1] = -1.0 if dead != "flat" else 0.0  # off, or flat on the breakpoint
    return model


def _fill(lin: nn.Linear, gen, integer: bool) -> None:
    with torch.no_grad():
        if integer:
            lin.weight.copy_(torch.randint(-2, 3, lin.weight.shape, generator=gen).float())
            lin.bias.copy_(torch.randint(-2, 3, lin.bias.shape, generator=gen).float() / 2)
        else:
            lin.weight.copy_(torch.randn(lin.weight.shape, generator=gen))
            lin.bias.copy_(torch.randn(lin.bias.shape, generator=gen) * 0.5)


class ChannelMax(nn.Module):
    """The max over the channels of a batch of feature maps (``torch.amax(x, 1, keepdim=True)``)."""

    def forward(self, x):
        return torch.amax(x, dim=1, keepdim=True)


def pooled_cnn(seed: int, integer: bool = False, duplicate: bool = False, channels: int = 3, k: int = 2) -> nn.Sequential:
    """A CNN with max-type ops on (1, 6, 6) images: conv 3x3, ReLU, 2x2 max-pool, conv 1x1, a max
    over the channels, linear to k outputs; random (integer: small integers, biases halves)
    weights and biases; duplicate: channel 1 a copy of channel 0 in both convolutions (tied
    candidates in the pools and in the channel max)."""
    gen = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(channels, channels, 1),
                          ChannelMax(), nn.Flatten(), nn.Linear(9, k)).eval()
    with torch.no_grad():
        for layer in (model[0], model[3], model[6]):
            _fill(layer, gen, integer)
            if duplicate and layer is not model[6]:
                layer.weight[1] = layer.weight[0]
                layer.bias[1] = layer.bias[0]
    return model


BOX = sc.Slice.box((-1, -1), (1, 1))


def run(model, sl=BOX, **kwargs) -> sc.Partition:
    return sc.partition(model, sl, progress=False, **kwargs)


# --- independent references ----------------------------------------------------------


def model64(model: nn.Module) -> nn.Module:
    """A float64 CPU copy of the user's model (the reference, independent of splinecam)."""
    return copy.deepcopy(model).to(dtype=torch.float64, device="cpu").eval()


def model_out(model: nn.Module, sl: sc.Slice, uv) -> np.ndarray:
    """(N, K) float64 outputs of the model at slice coordinates uv (N, 2)."""
    with torch.no_grad():
        return model64(model)(sl.to_input(uv)).reshape(len(np.atleast_2d(uv)), -1).numpy()


def preacts(part: sc.Partition, uv) -> list[np.ndarray]:
    """Pre-activations (N, units) of every piecewise-linear layer at uv (N, 2)."""
    out = []
    x = part.slice.to_input(uv)
    with torch.no_grad():
        part.graph.forward(x, on_split=lambda layer, z: out.append(z.reshape(len(z), -1).numpy().copy()))
    return out


def codes_at(part: sc.Partition, uv) -> tuple[np.ndarray, np.ndarray]:
    """(N, units) activation code at uv and (N, units) mask of units within 1e-7 of a breakpoint.

    Valid for ReLU/LeakyReLU (one breakpoint at 0)."""
    z = preacts(part, uv)
    if not z:
        return np.zeros((len(uv), 0), bool), np.zeros((len(uv), 0), bool)
    scale = [max(np.abs(zi).max(), 1e-300) for zi in z]
    code = np.concatenate([zi > 0 for zi in z], 1)
    near = np.concatenate([np.abs(zi) <= 1e-7 * s for zi, s in zip(z, scale)], 1)
    return code, near


def op_codes_at(part: sc.Partition, uv, rtol: float = 1e-7) -> tuple[np.ndarray, np.ndarray]:
    """(N, bits) activation code at uv from each split op's own ``code``, and (N, bits) the bits
    within ``rtol`` of the layer's largest |input| of a tie (its ``ambiguous``): any op kind."""
    codes, near = [], []

    def record(layer, z):
        op = part.graph.split_nodes[layer].op
        codes.append(op.code(z).numpy())
        near.append(op.ambiguous(z, rtol * max(float(z.abs().max()), 1e-300)).numpy())

    with torch.no_grad():
        part.graph.forward(part.slice.to_input(uv), on_split=record)
    if not codes:
        return np.zeros((len(uv), 0), bool), np.zeros((len(uv), 0), bool)
    return np.concatenate(codes, 1), np.concatenate(near, 1)


def output_scale(part: sc.Partition, model) -> float:
    """Largest |output| over all region vertices (the scale for relative errors), but at
    least the largest |pre-activation| there: float64 rounding is relative to the
    intermediate values, so a network whose output is identically 0 still has a scale."""
    verts = np.concatenate(part.polygons)
    inner = [float(np.abs(z).max()) for z in preacts(part, verts)]
    return max([float(np.abs(model_out(model, part.slice, verts)).max()), 1e-300] + inner)


def arrangement_count(lines, lo=(-1, -1), hi=(1, 1)) -> int:
    """Number of faces cut from the open box by lines (a, b, c), ``a*u + b*v + c = 0``,
    exactly with rationals: 1 + (#distinct lines crossing the interior) + sum over interior
    intersection points p of (lines through p - 1)."""
    lo = [Fraction(x) for x in lo]
    hi = [Fraction(x) for x in hi]
    distinct = []
    for a, b, c in lines:
        a, b, c = Fraction(a), Fraction(b), Fraction(c)
        if a == 0 and b == 0:
            continue
        s = [a * u + b * v + c for u in (lo[0], hi[0]) for v in (lo[1], hi[1])]
        if not (max(s) > 0 and min(s) < 0):
            continue  # misses the open box (touching a corner or lying on an edge)
        norm = a if a != 0 else b
        key = (a / norm, b / norm, c / norm)
        if key not in distinct:
            distinct.append(key)
    points: dict[tuple, set] = {}
    for i, j in combinations(range(len(distinct)), 2):
        (a1, b1, c1), (a2, b2, c2) = distinct[i], distinct[j]
        det = a1 * b2 - a2 * b1
        if det == 0:
            continue
        u = (b1 * c2 - b2 * c1) / det
        v = (a2 * c1 - a1 * c2) / det
        if lo[0] < u < hi[0] and lo[1] < v < hi[1]:
            points.setdefault((u, v), set()).update((i, j))
    return 1 + len(distinct) + sum(len(s) - 1 for s in points.values())


# --- invariant checks ------------------------------------------------------------------


def turns(poly: np.ndarray) -> np.ndarray:
    """(n,) cross products of consecutive edges of a polygon (n, 2)."""
    e = np.roll(poly, -1, axis=0) - poly
    e_next = np.roll(e, -1, axis=0)
    return e[:, 0] * e_next[:, 1] - e[:, 1] * e_next[:, 0]


def check_polygon_shapes(polys, scale: float) -> None:
    """Every polygon: >= 3 vertices, no duplicate consecutive vertices, CCW, convex, positive area."""
    for i, p in enumerate(polys):
        assert p.ndim == 2 and p.shape[1] == 2 and len(p) >= 3, f"region {i} has {len(p)} vertices"
        edge = np.linalg.norm(np.roll(p, -1, axis=0) - p, axis=1)
        assert edge.min() > 1e-12 * scale, f"region {i} has duplicate consecutive vertices: {p}"
        t = turns(p)
        assert t.min() >= -1e-12 * scale * edge.max(), f"region {i} is not convex/CCW: turns {t}"
        area = _area(p)
        # real regions can be tiny (near-duplicate units in float32 make 1e-16 slivers, whose
        # reality check_regions_real confirms); a zero-area artifact is at rounding level
        assert area > 1e-22 * scale**2, f"region {i} has area {area}"


def check_tiling(part: sc.Partition) -> None:
    sl = part.slice
    scale = float(np.abs(sl.polygon - sl.polygon.mean(0)).max())
    check_polygon_shapes(part.polygons, scale)
    assert np.all(part.areas > 0)
    np.testing.assert_allclose(part.areas, [_area(p) for p in part.polygons], rtol=1e-12, atol=1e-14 * sl.area)
    assert abs(part.areas.sum() - sl.area) <= REL * sl.area, (part.areas.sum(), sl.area)
    # every vertex lies in the slice polygon
    verts = np.concatenate(part.polygons)
    e = np.roll(sl.polygon, -1, axis=0) - sl.polygon
    d = verts[:, None, :] - sl.polygon[None]
    cross = e[None, :, 0] * d[..., 1] - e[None, :, 1] * d[..., 0]
    assert cross.min() >= -1e-12 * scale**2


def _area(p: np.ndarray) -> float:
    """Shoelace area relative to the first vertex (exact enough far from the origin)."""
    q = p - p[0]
    return 0.5 * float(np.sum(q[:, 0] * np.roll(q[:, 1], -1) - q[:, 1] * np.roll(q[:, 0], -1)))


def interior_points(part: sc.Partition, shrink: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Points strictly inside each region: the centroid and every vertex pulled toward it.
    Returns (M, 2) points and (M,) their region."""
    pts, reg = [], []
    for r, (p, c) in enumerate(zip(part.polygons, part.centroids)):
        q = np.vstack([c[None], c + shrink * (p - c)])
        pts.append(q)
        reg.append(np.full(len(q), r))
    return np.concatenate(pts), np.concatenate(reg)


def check_regions_real(part: sc.Partition, model, codes_at=codes_at) -> None:
    """No duplicate and no fake region: codes are unique, the model's code inside each
    region equals the region's code (``codes_at``: :func:`codes_at`, or :func:`op_codes_at` for
    any op kind), and the region's affine map is the model there."""
    codes = part.codes
    assert codes.shape == (len(part), sum(layer.bits for layer in part.layers))
    if len(part) > 1:
        assert len(np.unique(codes, axis=0)) == len(part), "two regions share an activation code"
    pts, reg = interior_points(part)
    assert np.array_equal(part.locate(pts), reg)
    code, near = codes_at(part, pts)
    mismatch = (code != codes[reg]) & ~near
    assert not mismatch.any(), f"{mismatch.any(1).sum()} interior points disagree with their region's code"
    ref = model_out(model, part.slice, pts)
    scale = output_scale(part, model)
    got = np.einsum("nkj,nj->nk", part.affine[reg], np.c_[pts, np.ones(len(pts))])
    assert np.abs(got - ref).max() <= REL * scale
    np.testing.assert_allclose(part.evaluate(pts), ref, rtol=0, atol=REL * scale)


def check_edges(part: sc.Partition) -> None:
    """Edge labels: (layer, unit) edges lie on that unit's line, border edges on the slice border."""
    sl = part.slice
    verts = np.concatenate(part.polygons)
    labels = np.concatenate(part.edge_units)
    nxt = np.concatenate([np.roll(p, -1, axis=0) for p in part.polygons])
    assert labels.shape == (len(verts), 2)
    on_border = labels[:, 0] == -1
    assert np.all(labels[on_border, 1] == -1)
    if (~on_border).any():
        za, zb = preacts(part, verts), preacts(part, nxt)
        assert labels[~on_border, 0].max() < len(za)
        for layer in range(len(za)):
            scale = max(np.abs(za[layer]).max(), np.abs(zb[layer]).max(), 1e-300)
            sel = labels[:, 0] == layer
            unit = labels[sel, 1]
            assert np.all((unit >= 0) & (unit < za[layer].shape[1]))
            err = np.maximum(np.abs(za[layer][sel, unit]), np.abs(zb[layer][sel, unit]))
            assert err.max(initial=0) <= REL * scale, f"layer {layer}: edge off its unit's line by {err.max()}"
    # border edges lie on an edge of the slice polygon
    poly = sl.polygon
    e = np.roll(poly, -1, axis=0) - poly
    scale = float(np.abs(poly - poly.mean(0)).max())

    def dist(pts):  # (M, n_edges) distance to each border line
        d = pts[:, None, :] - poly[None]
        return np.abs(e[None, :, 0] * d[..., 1] - e[None, :, 1] * d[..., 0]) / np.linalg.norm(e, axis=1)

    both = np.maximum(dist(verts[on_border]), dist(nxt[on_border])).min(1)
    assert both.max(initial=0) <= 1e-12 * scale * 10


def check_verify(part: sc.Partition) -> None:
    rep = part.verify(n_points=500)
    assert rep.ok, str(rep)
    assert rep.max_rel_error <= REL and rep.unlocated == 0 and rep.code_mismatches == 0


def check_partition(part: sc.Partition, model) -> None:
    """All the invariants of an exact partition."""
    check_tiling(part)
    check_regions_real(part, model)
    check_edges(part)
    check_verify(part)


def grid(sl: sc.Slice, n: int) -> np.ndarray:
    """(n*n, 2) grid points over the bounding box of the slice polygon, strictly inside it."""
    lo, hi = sl.polygon.min(0), sl.polygon.max(0)
    t = (np.arange(n) + 0.5) / n
    g = np.stack(np.meshgrid(lo[0] + t * (hi[0] - lo[0]), lo[1] + t * (hi[1] - lo[1])), -1).reshape(-1, 2)
    return g


def check_against_grid(part: sc.Partition, n: int = 120, codes_at=codes_at) -> None:
    """Brute force lower bound: every activation code seen on a grid is a region's code, and
    away from lines each grid point lies in the region of its code (``codes_at`` as in
    :func:`check_regions_real`)."""
    pts = grid(part.slice, n)
    idx = part.locate(pts)
    inside = idx >= 0
    pts, idx = pts[inside], idx[inside]
    code, near = codes_at(part, pts)
    clear = ~near.any(1)  # points on a line have the code of no open region
    seen = np.unique(code[clear], axis=0)
    assert len(seen) <= len(part)
    region_codes = {c.tobytes() for c in part.codes}
    missing = [c for c in seen if c.tobytes() not in region_codes]
    assert not missing, f"{len(missing)} activation codes seen on the grid have no region"
    assert np.array_equal(part.codes[idx[clear]], code[clear])


def check_boundary_ties(part: sc.Partition, db, model, value: float = 0.0, output: int | None = None) -> None:
    """Segment endpoints tie to 1e-9 of the output scale; for K > 1 the tied pair is
    ``db.classes`` and the two classes are the top two at each segment's midpoint."""
    assert db.segments.shape == (len(db), 2, 2)
    assert db.regions.shape == (len(db),) and db.classes.shape == (len(db), 2)
    if not len(db):
        return
    scale = output_scale(part, model)
    ends = db.segments.reshape(-1, 2)
    f = model_out(model, part.slice, ends)
    assert np.all(db.lengths > 0)
    if output is not None or part.n_outputs == 1:
        k = output or 0
        assert np.abs(f[:, k] - value).max() <= REL * scale
        return
    cls = np.repeat(db.classes, 2, axis=0)
    top = f.max(1)
    tie = top[:, None] - np.take_along_axis(f, cls, 1)
    assert tie.max() <= REL * scale, f"boundary endpoints off the tie by {tie.max() / scale:.2e} relative"
    assert np.all(db.classes[:, 0] != db.classes[:, 1])
    mid = db.segments.mean(1)
    fm = model_out(model, part.slice, mid)
    gap = fm.max(1)[:, None] - np.take_along_axis(fm, db.classes, 1)
    assert gap.max() <= REL * scale, "a segment's classes do not attain the top logit at its midpoint"
    third = np.sort(fm, 1)[:, -3] if fm.shape[1] > 2 else np.full(len(fm), -np.inf)
    clear = fm.max(1) - third > REL * scale  # no third class ties there
    top2 = np.sort(np.argsort(-fm, axis=1, kind="stable")[:, :2], axis=1)
    assert np.array_equal(top2[clear], np.sort(db.classes, axis=1)[clear])


def overlap_length(db) -> float:
    """Total length covered twice by the segments (collinear overlaps)."""
    s = db.segments
    if len(s) < 2:
        return 0.0
    a, b = s[:, 0], s[:, 1]
    d = b - a
    length = np.linalg.norm(d, axis=1)
    t = d / length[:, None]
    total = 0.0
    scale = max(float(np.abs(s).max()), 1e-300)
    for i in range(len(s)):
        # segments j collinear with i: both endpoints of j on the line of i
        ra = (a - a[i]) @ np.array([-t[i, 1], t[i, 0]])
        rb = (b - a[i]) @ np.array([-t[i, 1], t[i, 0]])
        on = (np.abs(ra) <= 1e-9 * scale) & (np.abs(rb) <= 1e-9 * scale)
        on[: i + 1] = False
        pa, pb = (a[on] - a[i]) @ t[i], (b[on] - a[i]) @ t[i]
        lo, hi = np.minimum(pa, pb), np.maximum(pa, pb)
        total += float(np.clip(np.minimum(hi, length[i]) - np.maximum(lo, 0), 0, None).sum())
    return total


def segments_cross(p, q, segs) -> np.ndarray:
    """(N,) whether segment p[i]-q[i] meets any of segs (S, 2, 2) (closed, with slack)."""
    a, b = segs[None, :, 0], segs[None, :, 1]
    p, q = p[:, None], q[:, None]

    def orient(x, y, z):
        return (y[..., 0] - x[..., 0]) * (z[..., 1] - x[..., 1]) - (y[..., 1] - x[..., 1]) * (z[..., 0] - x[..., 0])

    eps = 1e-12
    d1, d2 = orient(a, b, p), orient(a, b, q)
    d3, d4 = orient(p, q, a), orient(p, q, b)
    return ((d1 * d2 <= eps) & (d3 * d4 <= eps)).any(1)


def check_boundary_complete(part: sc.Partition, db, model, n: int = 40) -> None:
    """Wherever the predicted class changes between two neighbouring grid points, a
    boundary segment crosses the step between them (the boundary misses nothing)."""
    pts = grid(part.slice, n)
    step = (part.slice.polygon.max(0) - part.slice.polygon.min(0)) / n
    f = model_out(model, part.slice, pts)
    cls = (f[:, 0] > 0) if f.shape[1] == 1 else f.argmax(1)
    srt = np.sort(f, 1)
    margin = np.abs(f[:, 0]) if f.shape[1] == 1 else srt[:, -1] - srt[:, -2]
    scale = output_scale(part, model)
    for shift in (np.array([step[0], 0]), np.array([0, step[1]])):
        q = pts + shift
        inside = part.locate(q) >= 0
        fq = model_out(model, part.slice, q)
        cq = (fq[:, 0] > 0) if fq.shape[1] == 1 else fq.argmax(1)
        srt_q = np.sort(fq, 1)
        mq = np.abs(fq[:, 0]) if fq.shape[1] == 1 else srt_q[:, -1] - srt_q[:, -2]
        change = inside & (cls != cq) & (margin > 1e-6 * scale) & (mq > 1e-6 * scale)
        if change.any():
            assert len(db), "the class changes but the boundary is empty"
            hit = segments_cross(pts[change], q[change], db.segments)
            assert hit.all(), f"{(~hit).sum()} class changes with no boundary segment between them"


def hull(points: np.ndarray) -> np.ndarray:
    """Convex hull (CCW, no collinear vertices) of points (n, 2), by the monotone chain."""
    pts = sorted(set(map(tuple, points.tolist())))
    if len(pts) < 3:
        return np.array(pts, dtype=np.float64)

    def half(seq):
        out = []
        for p in seq:
            while len(out) >= 2 and (out[-1][0] - out[-2][0]) * (p[1] - out[-2][1]) - (
                out[-1][1] - out[-2][1]) * (p[0] - out[-2][0]) <= 0:
                out.pop()
            out.append(p)
        return out

    lower, upper = half(pts), half(pts[::-1])
    return np.array(lower[:-1] + upper[:-1], dtype=np.float64)


def make_batch(polys: list[np.ndarray]) -> Polygons:
    """Polygons with a distinct label (100 + p, j) on edge j of polygon p."""
    verts = torch.as_tensor(np.concatenate(polys))
    counts = torch.tensor([len(p) for p in polys])
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(counts, 0)])
    labels = torch.as_tensor(np.concatenate([[(100 + p, j) for j in range(len(q))] for p, q in enumerate(polys)]))
    return Polygons(verts, offsets, labels.to(torch.int64))


@contextmanager
def fast_path_only():
    """Fail if a partition inside the block leaves the fast path for the engine."""
    def engine(*args, **kwargs):
        raise AssertionError("the engine ran")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(importlib.import_module("splinecam.partition"), "partition_graph", engine)
        yield


HAND = {
    "one line": ([(1, 0, 0)], 2),
    "three in general position": ([(1, 0, 0), (0, 1, 0), (1, 1, -0.5)], 7),
    "three concurrent": ([(1, 0, 0), (0, 1, 0), (1, 1, 0)], 6),
    "four concurrent": ([(1, 0, 0), (0, 1, 0), (1, 1, 0), (1, -1, 0)], 8),
    "three parallel": ([(1, 0, 0.5), (1, 0, 0), (1, 0, -0.5)], 4),
    "grid 2x2": ([(1, 0, 0.5), (1, 0, -0.5), (0, 1, 0.5), (0, 1, -0.5)], 9),
    "diagonal through two corners": ([(1, -1, 0)], 2),
    "both diagonals": ([(1, -1, 0), (1, 1, 0)], 4),
    "touches one corner only": ([(1, 1, -2)], 1),
    "touches a corner, plus a line": ([(1, 1, -2), (0, 1, 0)], 2),
    "lies on the border": ([(1, 0, -1), (0, 1, 1)], 1),
    "border line and an inner line": ([(1, 0, -1), (1, 0, 0)], 2),
    "misses the box": ([(1, 0, -3)], 1),
    "duplicate units": ([(1, 0, 0), (2, 0, 0), (1, 0, 0)], 2),
    "opposite duplicates": ([(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -3, 0)], 4),
    "dead units": ([(0, 0, 0), (0, 0, 1), (0, 0, -1), (1, 0, 0)], 2),
    "all dead": ([(0, 0, 0), (0, 0, -1)], 1),
    "lattice lines through vertices": (
        [(1, 0, 0), (0, 1, 0), (1, -1, 0), (1, 1, 0), (2, 0, -1), (0, 2, -1)], 16),
    "triangle with a median": ([(1, 0, 0), (0, 1, 0), (1, 1, -1), (1, -1, 0)], 8),
    "star through a corner": ([(1, -1, 0), (2, -1, -1), (1, -2, 1), (0, 1, 0)], 7),
}


def assert_same_boundary(fast: sc.Boundary, full: sc.Boundary) -> None:
    """Same segments as a set (endpoints in either order, up to float64 rounding), same
    class pair for each, same length to 1e-9."""
    assert len(fast) == len(full)
    assert fast.length == pytest.approx(full.length, rel=1e-9, abs=1e-300)
    if not len(full):
        return
    scale = max(1.0, float(np.abs(full.segments).max()))

    def rows(db):
        s = db.segments
        swap = (s[:, 0, 0] > s[:, 1, 0]) | ((s[:, 0, 0] == s[:, 1, 0]) & (s[:, 0, 1] > s[:, 1, 1]))
        s = np.where(swap[:, None, None], s[:, ::-1], s)
        return np.concatenate([s.reshape(-1, 4), db.classes * 10.0 * scale], 1)

    a, b = rows(fast), rows(full)
    dist = np.abs(a[:, None] - b[None]).max(2)
    tol = 1e-9 * scale
    assert dist.min(1).max() <= tol and dist.min(0).max() <= tol
    assert len(np.unique(dist.argmin(1))) == len(a)  # a one-to-one match


def keyed(part: sc.Partition) -> dict:
    """{packed code: region index}; codes are unique."""
    keys = {np.packbits(c).tobytes(): i for i, c in enumerate(part.codes)}
    assert len(keys) == len(part)
    return keys


def assert_same_partition(tiled: sc.Partition, plain: sc.Partition) -> None:
    """Same regions by code: polygons (vertex sets up to rotation), edge units, areas, maps,
    centroid outputs, and the same decision boundary length; all to 1e-9 relative."""
    scale = float(np.ptp(plain.slice.polygon, axis=0).max())
    out_scale = float(np.abs(plain.affine).max())
    a, b = keyed(tiled), keyed(plain)
    assert len(tiled) == len(plain)
    assert set(a) == set(b)
    i = np.array([a[k] for k in b])
    j = np.array(list(b.values()))
    np.testing.assert_allclose(tiled.areas[i], plain.areas[j], rtol=0, atol=1e-9 * plain.slice.area)
    np.testing.assert_allclose(tiled.affine[i], plain.affine[j], rtol=0, atol=1e-9 * out_scale * scale)
    np.testing.assert_allclose(tiled.centroid_outputs[i], plain.centroid_outputs[j], rtol=0, atol=1e-9 * out_scale * scale)
    n = tiled.vertex_counts[i]
    np.testing.assert_array_equal(n, plain.vertex_counts[j])
    # vertex k of region i[m] matches vertex (k - shift) of region j[m]: the rotation that best aligns vertex 0 of j
    starts_t, starts_p = np.cumsum(tiled.vertex_counts) - tiled.vertex_counts, np.cumsum(plain.vertex_counts) - plain.vertex_counts
    pair = np.repeat(np.arange(len(i)), n)
    k = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    verts_t, units_t = np.concatenate(tiled.polygons), np.concatenate(tiled.edge_units)
    verts_p, units_p = np.concatenate(plain.polygons), np.concatenate(plain.edge_units)
    dist = np.linalg.norm(verts_t[starts_t[i][pair] + k] - verts_p[starts_p[j]][pair], axis=1)
    order = np.lexsort((dist, pair))
    shift = k[order][np.r_[True, pair[order][1:] != pair[order][:-1]]]
    rolled = starts_t[i][pair] + (k + shift[pair]) % n[pair]
    np.testing.assert_allclose(verts_t[rolled], verts_p[starts_p[j][pair] + k], rtol=0, atol=1e-9 * scale)
    np.testing.assert_array_equal(units_t[rolled], units_p[starts_p[j][pair] + k])
    assert abs(tiled.decision_boundary().length - plain.decision_boundary().length) <= 1e-9 * scale
    assert tiled.verify(n_points=500).ok


@contextmanager
def forced(executor: str):
    """Inside: every partition takes the MLP fast path (failing if the engine runs) or the engine."""
    if executor == "fast":
        with fast_path_only():
            yield
    else:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(chain, "ENABLED", False)
            yield


def shared_act_model(model: nn.Sequential) -> nn.Sequential:
    """``model`` with its first activation instance used at every activation's place."""
    acts = [m for m in model if isinstance(m, (nn.ReLU, nn.LeakyReLU))]
    return nn.Sequential(*[acts[0] if m in acts else m for m in model])


# --- volumes -----------------------------------------------------------------------


def volume_preacts(part, uvw) -> list[np.ndarray]:
    """Pre-activations (N, units) of every piecewise-linear layer at chart points uvw (N, 3)."""
    out = []
    with torch.no_grad():
        part.graph.forward(part.volume.to_input(uvw), on_split=lambda layer, z: out.append(z.reshape(len(z), -1).numpy().copy()))
    return out


def check_volume_partition(part, model) -> None:
    """Cells fill the volume; each cell's map reproduces the model (a float64 copy of the user's) at
    points inside it; each point's activation code (away from ties) is its cell's; no two cells share
    a code (one pattern, one convex cell); the report of ``verify`` agrees."""
    assert part.complete and part.exact.all()
    assert part.volumes.sum() == pytest.approx(part.volume.volume, rel=1e-11)
    assert (part.volumes > 0).all()
    first = part.arrays.vertices[part.arrays.offsets[:-1]]
    uvw = np.concatenate([part.centroids, 0.3 * part.centroids + 0.7 * first])
    cell = np.tile(np.arange(len(part)), 2)
    with torch.no_grad():
        want = model64(model)(part.volume.to_input(uvw)).reshape(len(uvw), -1).numpy()
    got = np.einsum("nkd,nd->nk", part.affine[cell], np.c_[uvw, np.ones(len(uvw))])
    z = volume_preacts(part, uvw)
    scale = max([float(np.abs(want).max()), 1e-300] + [float(np.abs(zi).max()) for zi in z])
    assert np.abs(got - want).max() <= REL * scale
    if z:
        code = np.concatenate([zi > 0 for zi in z], 1)
        near = np.concatenate([np.abs(zi) <= 1e-7 * scale for zi in z], 1)
        assert not ((code != part.codes_of(cell)) & ~near).any()
        assert len(np.unique(part.arrays.packed_codes, axis=0)) == len(part)
    assert part.verify().ok


def check_watertight(mesh) -> None:
    """Every edge of the mesh is shared by exactly two triangles, except edges on the volume's
    border (used once); no degenerate or repeated triangles."""
    tri = mesh.triangles
    assert len(np.unique(np.sort(tri, axis=1), axis=0)) == len(tri)
    assert ((tri[:, 0] != tri[:, 1]) & (tri[:, 1] != tri[:, 2]) & (tri[:, 0] != tri[:, 2])).all()
    edges, uses = mesh.edges()
    assert uses.max(initial=2) == 2
    planes = mesh.volume.planes
    size = float(np.abs(mesh.volume.vertices).max())
    ends = mesh.vertices[edges[uses == 1]]  # (E, 2, 3): both ends on one face of the polytope
    on = np.abs(ends @ planes[:, :3].T + planes[:, 3]) <= 1e-9 * size
    assert on.all(1).any(1).all()


# --- sine encodings (curved partitions) ---------------------------------------------------


class SinEncoding(nn.Module):
    """``sin(x @ F.T + phi)``, with the ``sin_phases`` a curved partition reads (a test's own
    encoding: the one splinecam ships is ``sc.nn.PositionalEncoding``)."""

    def __init__(self, F, phi):
        super().__init__()
        self.register_buffer("F", torch.as_tensor(np.asarray(F, np.float64)))
        self.register_buffer("phi", torch.as_tensor(np.asarray(phi, np.float64)))

    def sin_phases(self):
        return self.F, self.phi

    def forward(self, x):
        return torch.sin(x.to(self.F.dtype) @ self.F.T + self.phi)


def sine_mlp(widths, k, seed, features=3, scale=1.5, act="relu") -> nn.Sequential:
    """A sine encoding of 2-D inputs (``features`` random frequencies, each as a sine and a
    cosine) and a random MLP after it (:func:`random_mlp`'s weights; biases spread)."""
    gen = torch.Generator().manual_seed(seed)
    F = torch.randn(features, 2, generator=gen, dtype=torch.float64) * scale
    phi = torch.cat([torch.zeros(features), torch.full((features,), np.pi / 2)]).double()
    mlp = random_mlp(widths, k, seed + 1, act=act)
    first = nn.Linear(2 * features, widths[0] if widths else k)
    _fill(first, gen, False)
    return nn.Sequential(SinEncoding(torch.cat([F, F]), phi), first, *list(mlp)[1:]).double().eval()


def check_same_pieces(a, b, rtol: float = 1e-12) -> None:
    """Two partitions of one path (PathPartition) are the same: breakpoints within ``rtol`` of
    the path's length, the same codes and end units, maps within ``rtol`` of their scale."""
    assert len(a) == len(b)
    size = a.path.measure
    assert np.max(np.abs(a.lo - b.lo), initial=0) <= rtol * size and np.max(np.abs(a.hi - b.hi), initial=0) <= rtol * size
    assert np.array_equal(a.packed_codes, b.packed_codes) and np.array_equal(a.leg, b.leg)
    units_a, units_b = a.edge_units, b.edge_units
    for i in np.flatnonzero((units_a != units_b).any(1)):  # only at a vertex, where rounding picks one of its units
        changed = _changed_units(a, i)
        assert tuple(units_a[i]) in changed and tuple(units_b[i]) in changed, (i, units_a[i], units_b[i])
    scale = max(1.0, float(np.abs(a.affine).max(initial=0)))
    assert np.max(np.abs(a.affine - b.affine), initial=0) <= rtol * scale
    assert np.max(np.abs(a.centroid_outputs - b.centroid_outputs), initial=0) <= rtol * scale


def _changed_units(part, i: int) -> set:
    """The (layer, unit)s whose code changes at breakpoint i of a path partition (inside a leg):
    several where units cross at one point (a vertex)."""
    flips = np.flatnonzero(part.codes[i - 1] != part.codes[i])
    out, start = set(), 0
    for layer, info in enumerate(part.layers):
        k = info.bits // info.units
        out |= {(layer, int(b - start) // k) for b in flips if start <= b < start + info.bits}
        start += info.bits
    return out


def seconds_to_stop(run, ctrl_c, after: float = 1.0) -> float:
    """Seconds from a Ctrl-C pressed ``after`` seconds into ``run()`` to ``run`` stopping with
    KeyboardInterrupt (the test fails if it ends otherwise, or before the key was pressed)."""
    fired = []

    def interrupt():
        fired.append(time.perf_counter())
        ctrl_c()

    # hypothesis times garbage collections with a callback (once it has run in this process): a
    # Ctrl-C that lands inside it is lost ("Exception ignored in gc_callback"), as it would be
    # for any Python code that a collection runs; out of the way while the key is pressed
    theirs = [cb for cb in gc.callbacks if getattr(cb, "__module__", "").startswith("hypothesis")]
    for cb in theirs:
        gc.callbacks.remove(cb)
    timer = threading.Timer(after, interrupt)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run()
        stopped = time.perf_counter()
    finally:
        timer.cancel()
        gc.callbacks.extend(theirs)
    assert fired
    return stopped - fired[0]


def pieces_by_sides(res, piece_bytes) -> dict:
    """The pieces of a split (a LineSplit or CellSplit ``res``) keyed by (parent, its side of each
    of its cell's cuts), each to ``piece_bytes(pieces, p)``: two splits that made the same pieces
    give equal dicts, whatever their order."""
    out = {}
    piece, cut, side = (t.numpy() for t in res.sides_of(torch.arange(len(res.pieces))))
    order = np.lexsort((cut, piece))
    rows = np.split(side[order], np.cumsum(np.bincount(piece, minlength=len(res.pieces)))[:-1])
    for p in range(len(res.pieces)):
        key = (int(res.parent[p]), rows[p].tobytes())
        assert key not in out, "two pieces of one cell on the same sides of all its cuts"
        out[key] = piece_bytes(res.pieces, p)
    return out


class TickingClock:
    """A fake ``time`` module for the engine: every reading advances by 1 ms."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        self.now += 1e-3
        return self.now
