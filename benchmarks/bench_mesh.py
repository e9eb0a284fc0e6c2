"""Benchmark the planar mesh against the partition it is built from.

For each case of ``benchmarks/bench.py`` (and w256 of ``benchmarks/peers.py``: 2-256x3-1,
seed 0, [-2,2]^2), a fresh process times ``sc.partition`` and then ``part.mesh()`` (uncached)
on the same partition, and reports peak memory before and after the mesh.  Runs of the
cases are interleaved (case order a, b, ..., then again); the table shows medians.

Usage: python benchmarks/bench_mesh.py [--runs=N] [case ...]   (default: --runs=3 a b c d w256)
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def case(name):
    """(description, model, slice)."""
    import torch

    import splinecam as sc
    from bench import case as bench_case
    from peers import mlp

    if name == "w256":
        torch.manual_seed(0)
        return "2-256x3-1, seed 0, [-2,2]^2", mlp([2, 256, 256, 256, 1]), sc.Slice.box((-2, -2), (2, 2))
    return bench_case(name)


def run_one(name):
    from torch import nn

    import splinecam as sc
    from splinecam.analysis.mesh import build_mesh

    desc, model, sl = case(name)
    warm = sc.partition(nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)), sc.Slice.box((-1, -1), (1, 1)),
                        progress=False)
    build_mesh(warm)
    t0 = time.perf_counter()
    part = sc.partition(model, sl, progress=False)
    t_part = time.perf_counter() - t0
    peak0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    t0 = time.perf_counter()
    mesh = build_mesh(part)
    t_mesh = time.perf_counter() - t0
    peak1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    result_mb = sum(a.nbytes for a in vars(part.arrays).values()) / 2**20
    mesh_mb = sum(a.nbytes for a in vars(mesh).values()) / 2**20
    return {"case": name, "model": desc, "regions": len(part), "partition_s": t_part, "mesh_s": t_mesh,
            "euler": mesh.euler_characteristic, "peak_before_MiB": peak0, "peak_after_MiB": peak1,
            "result_MiB": result_mb, "mesh_MiB": mesh_mb}


def main(argv):
    runs = [a for a in argv if a.startswith("--runs=")]
    argv = [a for a in argv if a not in runs]
    n_runs = int(runs[0].split("=")[1]) if runs else 3
    if len(argv) == 2 and argv[0] == "--one":
        print(json.dumps(run_one(argv[1])))
        return
    names = argv or ["a", "b", "c", "d", "w256"]
    rows = {n: [] for n in names}
    for _ in range(n_runs):
        for name in names:
            out = subprocess.run([sys.executable, __file__, "--one", name], capture_output=True, text=True)
            if out.returncode:
                print(f"{name} failed:\n{out.stderr}")
                continue
            rows[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{n_runs} runs per case, fresh processes, interleaved; medians")
    print(f"{'case':5} {'regions':>9} {'partition s':>12} {'mesh s':>8} {'mesh/part':>10} {'Euler':>6} "
          f"{'result MiB':>11} {'mesh MiB':>9} {'peak +MiB':>10}  model")
    for name, rs in rows.items():
        if not rs:
            continue
        med = {k: statistics.median(r[k] for r in rs) for k in ("partition_s", "mesh_s", "result_MiB", "mesh_MiB")}
        ratio = statistics.median(r["mesh_s"] / r["partition_s"] for r in rs)
        grow = statistics.median(r["peak_after_MiB"] - r["peak_before_MiB"] for r in rs)
        print(f"{name:5} {rs[0]['regions']:>9,} {med['partition_s']:>12.3f} {med['mesh_s']:>8.3f} {ratio:>10.2f} "
              f"{rs[0]['euler']:>6} {med['result_MiB']:>11.1f} {med['mesh_MiB']:>9.1f} {grow:>10.0f}  {rs[0]['model']}")


if __name__ == "__main__":
    main(sys.argv[1:])
