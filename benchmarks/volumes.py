"""3-D volumes: the polyhedral complex of bunny SDF MLPs against Berzins' edge subdivision, and the
exact level-set mesh of a trained SDF against marching cubes.

Part 1 (complex).  Berzins' bunny SDF MLPs: 3 inputs, 3 hidden layers of 16 ReLU (``3,3x16``)
and 8 of 32 (``3,8x32``), on his box [-0.5, 0.5]^3.  His complex includes the zero set of the
output (the surface), so ours is the partition of the model with a ReLU after its output; we
count its vertices and edges (``VolumePartition.complex_counts``).  With ``--berzins=DIR`` (a
checkout of github.com/arturs-berzins/relu_edge_subdivision: NN.py, edge_subdivision.py,
models/) his trained models are read from DIR/models and his ``skeletal_subdivision`` runs too
(CPU, prune=False); without it, bunny-like SDFs (a union of spheres and ellipsoids) are fitted
at a fixed seed with the same shapes, and ours runs alone.  Each (model, method) run is a fresh
subprocess on one thread, the methods interleaved, ``--runs`` times; times are the medians.  His
time gives the vertices and edges; ours is the partition (cells with maps and codes) and then the
counting, so the table gives both ratios: against our partition and against both (the complex).

Part 2 (mesh).  A 3-32x3-1 ReLU MLP fitted at seed 0 to the signed distance of a torus (radii
0.5 and 0.2) in [-1, 1]^3.  Exact: ``sc.level_set_mesh`` (boundary first) and
``sc.partition(...).level_set_mesh()``.  Marching cubes (skimage) on an n^3 grid of float64
network values (evaluation included in the time).  Error of each mesh against the exact one:
the symmetric Hausdorff distance, from points on each mesh's triangles (barycentric grids 0.004
apart along the longest edge, coarser where a mesh would get more than ``MOST_SAMPLES`` points: the
spacing used is printed, and the distance is exact to within it), each point's distance to the
other mesh computed exactly against the triangles of its 16 nearest grid points of that mesh (one
k-d tree per mesh), and the largest |f| at its vertices (the exact mesh's is rounding).

Usage: python benchmarks/volumes.py [--runs=N] [--berzins=DIR] [--parts=complex,mesh] [--models=3x16,8x32]
(``--models``: the hidden layers of the complex part's models, all by default)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import splinecam as sc

ROOT = Path(__file__).resolve().parent.parent
SHAPES = {"3,3x16": (3, 16), "3,8x32": (8, 32)}  # name -> (hidden layers, width)
BOX = 0.5  # Berzins' bunny box [-0.5, 0.5]^3
MOST_SAMPLES = 400_000  # points on one mesh for the Hausdorff distance at most (bounds its time and memory)


def bunny_like(points: torch.Tensor) -> torch.Tensor:
    """Signed distance (approximate for the ellipsoids) of a bunny-like union: body, head, two ears."""
    parts = [((0.0, -0.1, 0.0), (0.25, 0.2, 0.2)), ((0.17, 0.08, 0.0), (0.11, 0.1, 0.1)),
             ((0.2, 0.25, 0.05), (0.04, 0.13, 0.03)), ((0.2, 0.25, -0.05), (0.04, 0.13, 0.03))]
    dist = [((points - torch.tensor(c)) / torch.tensor(r)).norm(dim=1) * min(r) - min(r) for c, r in parts]
    return torch.stack(dist).amin(0)


def mlp(depth: int, width: int) -> nn.Sequential:
    layers, d = [], 3
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.ReLU()]
        d = width
    return nn.Sequential(*layers, nn.Linear(d, 1))


def fit(model: nn.Module, sdf, lo: float, hi: float, steps: int, seed: int = 0) -> nn.Module:
    """Adam on the mean squared SDF error at uniform points of [lo, hi]^3, fixed seed, one thread."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(20000, 3, generator=gen) * (hi - lo) + lo
    y = sdf(x)[:, None]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        idx = torch.randint(len(x), (2048,), generator=gen)
        opt.zero_grad()
        nn.functional.mse_loss(model(x[idx]), y[idx]).backward()
        opt.step()
    return model.eval()


def bunny_model(name: str, berzins: str | None) -> nn.Sequential:
    """The model ``name``: Berzins' trained weights from ``berzins``/models, else fitted here."""
    depth, width = SHAPES[name]
    torch.manual_seed(0)
    model = mlp(depth, width)
    if berzins:
        state = torch.load(Path(berzins) / "models" / f"{name},relu,bunny", map_location="cpu")
        model.load_state_dict({f"{2 * int(k.split('.')[1])}.{k.split('.')[2]}": v for k, v in state.items()})
        return model.eval()
    return fit(model, bunny_like, -BOX, BOX, 1500)


def worker(method: str, name: str, berzins: str | None) -> dict:
    """One timed run in this (fresh) process."""
    torch.set_num_threads(1)
    model = bunny_model(name, berzins)
    if method == "berzins":
        sys.path.insert(0, berzins)
        from NN import Net  # noqa: PLC0415 (his code, where installed)
        from edge_subdivision import skeletal_subdivision  # noqa: PLC0415

        depth, width = SHAPES[name]
        net = Net([3] + [width] * depth + [1])
        net.load_state_dict(torch.load(Path(berzins) / "models" / f"{name},relu,bunny", map_location="cpu"))
        with torch.no_grad():
            start = time.perf_counter()
            vs, edges, _ = skeletal_subdivision(net, bbox=(-BOX, BOX), device="cpu", plot=False, prune=False,
                                                verbose=False)
            seconds = time.perf_counter() - start
        return {"seconds": seconds, "vertices": len(vs), "edges": len(edges)}
    volume = sc.Volume.box([-BOX] * 3, [BOX] * 3)
    sc.partition(mlp(1, 2), sc.Volume.box([-1] * 3, [1] * 3), progress=False).complex_counts()  # warm up: imports, numba
    complex_model = nn.Sequential(*model, nn.ReLU())  # the surface's plane in the complex, as his
    start = time.perf_counter()
    part = sc.partition(complex_model, volume, progress=False)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    vertices, edges = part.complex_counts()
    return {"seconds": seconds, "count_seconds": time.perf_counter() - start, "vertices": vertices, "edges": edges,
            "cells": len(part)}


def run_worker(method: str, name: str, berzins: str | None) -> dict:
    args = [sys.executable, __file__, f"--worker={method}", f"--model={name}"] + ([f"--berzins={berzins}"] if berzins else [])
    out = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=1800)
    if out.returncode:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def complex_table(runs: int, berzins: str | None, names: list[str]) -> None:
    methods = ["ours"] + (["berzins"] if berzins else [])
    print(f"\n## Polyhedral complex, box [-{BOX}, {BOX}]^3 ({'his trained models' if berzins else 'bunny-like SDFs fitted here; his code not given (--berzins=DIR)'}), "
          f"{runs} runs each, fresh processes, one thread, medians")
    print("| model | method | cells | vertices | edges | partition s | counting s | complex s (both) | his s / our partition s | his s / our complex s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in names:
        results: dict[str, list[dict]] = {m: [] for m in methods}
        for _ in range(runs):
            for m in methods:  # interleaved
                results[m].append(run_worker(m, name, berzins))
        med = {m: float(np.median([r["seconds"] for r in rs if "seconds" in r] or [np.nan])) for m, rs in results.items()}
        for m, rs in results.items():
            r = next((r for r in rs if "seconds" in r), rs[0])
            if "error" in r:
                print(f"| {name} | {m} | error: {r['error']} | | | | | | | |")
                continue
            ok = [x for x in rs if "seconds" in x]
            count = float(np.median([x["count_seconds"] for x in ok])) if m == "ours" else np.nan
            both = float(np.median([x["seconds"] + x["count_seconds"] for x in ok])) if m == "ours" else med[m]
            his = med.get("berzins", np.nan)
            ratios = (his / med[m], his / both) if m == "ours" else (np.nan, np.nan)
            print(f"| {name} | {m} | {r.get('cells', '')} | {r['vertices']:,} | {r['edges']:,} | {med[m]:.3f} | "
                  f"{count:.3f} | {both:.3f} | {ratios[0]:.2f} | {ratios[1]:.2f} |")


def torus(points: torch.Tensor) -> torch.Tensor:
    q = torch.stack([points[:, [0, 2]].norm(dim=1) - 0.5, points[:, 1]], 1)
    return q.norm(dim=1) - 0.2


def _samples(vertices: np.ndarray, triangles: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Points on every triangle of the mesh on a barycentric grid of ``m`` steps per edge, ``m`` its
    longest edge over ``spacing`` (at least 1, at most 64), with the triangle of each: slivers get
    points along their whole length."""
    tri = vertices[triangles]
    longest = np.linalg.norm(tri - tri[:, [1, 2, 0]], axis=2).max(1)
    steps = np.clip(np.ceil(longest / spacing), 1, 64).astype(int)
    pts, owner = [], []
    for m in np.unique(steps):
        sel = np.flatnonzero(steps == m)
        i, j = np.meshgrid(np.arange(m + 1), np.arange(m + 1), indexing="ij")
        keep = (i + j) <= m
        bary = np.stack([m - i[keep] - j[keep], i[keep], j[keep]], 1) / m  # (q, 3)
        pts.append(np.einsum("qk,tkd->tqd", bary, tri[sel]).reshape(-1, 3))
        owner.append(np.repeat(sel, len(bary)))
    return np.concatenate(pts), np.concatenate(owner)


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = b - a
    t = np.clip(((p - a) * d).sum(-1) / np.maximum((d * d).sum(-1), 1e-300), 0, 1)
    return np.linalg.norm(p - a - t[..., None] * d, axis=-1)


def point_mesh_distance(points: np.ndarray, mesh, samples, tree, k: int = 16) -> np.ndarray:
    """(N,) distance from each point to the mesh (vertices, triangles): the exact distance to the
    nearest of the triangles of its ``k`` nearest ``samples`` (points on the mesh and their
    triangles, :func:`_samples`; ``tree`` their k-d tree): an upper bound, equal to the true
    distance unless the nearest triangle holds none of them."""
    vertices, triangles = mesh
    tri = vertices[triangles]
    _, near = tree.query(points, k=k)
    cand = samples[1][near.reshape(len(points), -1)]
    a, b, c = (tri[cand][..., i, :] for i in range(3))
    p = points[:, None, :]
    v0, v1, v2 = b - a, c - a, p - a
    d00, d01, d11 = (v0 * v0).sum(-1), (v0 * v1).sum(-1), (v1 * v1).sum(-1)
    d20, d21 = (v2 * v0).sum(-1), (v2 * v1).sum(-1)
    denom = d00 * d11 - d01**2
    ok = denom > 1e-300
    v = np.where(ok, (d11 * d20 - d01 * d21) / np.where(ok, denom, 1), -1)
    w = np.where(ok, (d00 * d21 - d01 * d20) / np.where(ok, denom, 1), -1)
    inside = (v >= 0) & (w >= 0) & (v + w <= 1)
    normal = np.cross(v0, v1)
    plane = np.abs((v2 * normal).sum(-1)) / np.maximum(np.linalg.norm(normal, axis=-1), 1e-300)
    edges = np.minimum(np.minimum(_segment_distance(p, a, b), _segment_distance(p, b, c)), _segment_distance(p, c, a))
    return np.where(inside, plane, edges).min(1)


def spacing_for(meshes, most: int = MOST_SAMPLES, finest: float = 0.004) -> float:
    """The sample spacing: ``finest``, or coarser so that no mesh gets more than about ``most``
    samples (a barycentric grid of spacing h puts about 2 area / h^2 points on a mesh)."""
    area = max(float(np.linalg.norm(np.cross(v[f][:, 1] - v[f][:, 0], v[f][:, 2] - v[f][:, 0]), axis=1).sum()) / 2
               for v, f in meshes)
    return max(finest, float(np.sqrt(2 * area / most)))


def hausdorff(m1, m2, spacing: float) -> float:
    """Symmetric Hausdorff distance: from the points of each mesh's barycentric grids (:func:`_samples`,
    ``spacing`` apart at most) to the other mesh (:func:`point_mesh_distance`, one k-d tree per
    mesh), in blocks; it is the true distance to within ``spacing`` (the largest gap between samples)."""
    from scipy.spatial import cKDTree

    s1, s2 = _samples(*m1, spacing), _samples(*m2, spacing)
    t1, t2 = cKDTree(s1[0]), cKDTree(s2[0])
    worst = 0.0
    for src, dst, dst_samples, tree in ((s1, m2, s2, t2), (s2, m1, s1, t1)):
        for s in range(0, len(src[0]), 20000):
            worst = max(worst, float(point_mesh_distance(src[0][s : s + 20000], dst, dst_samples, tree).max()))
    return worst


def mesh_table(runs: int) -> None:
    from skimage.measure import marching_cubes

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = fit(mlp(3, 32), torus, -1, 1, 3000)
    twin = nn.Sequential(*[m for m in model]).double()
    volume = sc.Volume.box([-1] * 3, [1] * 3)
    sc.partition(mlp(1, 2), volume, progress=False)  # warm up
    rows = []

    def timed(fn):
        times, out = [], None
        for _ in range(runs):
            start = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - start)
        return float(np.median(times)), out

    seconds, exact = timed(lambda: sc.level_set_mesh(model, volume, progress=False))
    reference = (exact.vertices, exact.triangles)

    def max_f(vertices):
        with torch.no_grad():
            return float(twin(torch.as_tensor(vertices)).abs().max())

    def error(mesh):
        spacing = spacing_for([mesh, reference])
        return hausdorff(mesh, reference, spacing), spacing

    rows.append(("exact, boundary first", seconds, len(exact.vertices), len(exact), (0.0, 0.0), max_f(exact.vertices)))
    seconds, full = timed(lambda: sc.partition(model, volume, progress=False).level_set_mesh())
    rows.append(("exact, full partition", seconds, len(full.vertices), len(full), error((full.vertices, full.triangles)),
                 max_f(full.vertices)))
    for n in (32, 64, 128, 256):
        g = np.linspace(-1, 1, n)

        def mc():
            grid = torch.as_tensor(np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3))
            with torch.no_grad():  # in blocks: the hidden activations of n^3 points at once do not fit
                values = torch.cat([twin(grid[s : s + (1 << 18)]) for s in range(0, len(grid), 1 << 18)])
            values = values.reshape(n, n, n).numpy()
            v, f, _, _ = marching_cubes(values, level=0.0, spacing=(g[1] - g[0],) * 3)
            return v - 1, f

        seconds, (v, f) = timed(mc)
        rows.append((f"marching cubes {n}^3", seconds, len(v), len(f), error((v, f)), max_f(v)))
    print(f"\n## Level set f = 0 of a 3-32x3-1 torus SDF in [-1, 1]^3 ({runs} runs each, medians, one thread)")
    print("| method | seconds | vertices | triangles | Hausdorff to exact | sample spacing | max abs f at vertices |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, seconds, nv, nf, (h, spacing), f in rows:
        print(f"| {name} | {seconds:.3f} | {nv:,} | {nf:,} | {h:.2e} | {spacing:.0e} | {f:.2e} |")


def main(argv: list[str]) -> None:
    opts = dict(a[2:].split("=", 1) for a in argv if a.startswith("--") and "=" in a)
    berzins = opts.get("berzins")
    if "worker" in opts:
        print(json.dumps(worker(opts["worker"], opts["model"], berzins)))
        return
    runs = int(opts.get("runs", 3))
    parts = opts.get("parts", "complex,mesh").split(",")
    print(f"splinecam {sc.__version__}, torch {torch.__version__}, {time.strftime('%Y-%m-%d %H:%M')}")
    if "complex" in parts:
        names = [f"3,{m}" for m in opts["models"].split(",")] if "models" in opts else list(SHAPES)
        complex_table(runs, berzins, names)
    if "mesh" in parts:
        mesh_table(runs)


if __name__ == "__main__":
    main(sys.argv[1:])
