"""Benchmark tiles and executors: one slice in tiles on local worker processes, many slices
through ``partition_many``.

Every measurement runs in fresh subprocesses, the kinds interleaved, three timed calls in each;
the table shows medians (and ranges) over all calls.
Usage: python benchmarks/bench_distributed.py [--repeats=3] [--slices=64]

- w256: 2 -> 256x3 ReLU -> 1 (seed 0), box [-2, 2]^2; cnn: 1x16x16 -> conv8 -> pool -> conv16 ->
  pool -> 10, the plane through three nearby random images.
- "1 process": ``sc.partition`` with one torch thread, warm (the process has run the case once).
  "tiles=4, local": ``tiles=4, executor="local"``, the call starting and closing its
  LocalCluster (one single-threaded worker process per core).  "tiles=k, running cluster": the
  same on a LocalCluster started before the clock starts and warm (it has served the case
  once), as a cluster that serves many calls.
- many: ``partition_many`` of a small CNN (1x8x8 -> conv4 -> pool -> 10) on N slices through
  random images, on a running LocalCluster of 1 or 2 workers (warm: it has served 4 of them);
  slices per second.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

import splinecam as sc
from splinecam.run.executors import WORKER_MALLOC_SETTING


def case(name):
    """(model, slice) of a tiled case; seeds fixed."""
    torch.manual_seed(0)
    if name == "w256":
        layers = [nn.Linear(2, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                  nn.Linear(256, 1)]
        return nn.Sequential(*layers), sc.Slice.box((-2, -2), (2, 2))
    if name == "cnn":
        model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1),
                              nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256, 10)).eval()
        gen = torch.Generator().manual_seed(1)
        x = torch.rand(1, 16, 16, generator=gen) + 0.02 * torch.randn(3, 1, 16, 16, generator=gen)
        return model, sc.Slice.from_points(*x)
    raise ValueError(f"unknown case {name!r}")


def small_cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(36, 10)).eval()


def many_slices(n):
    gen = torch.Generator().manual_seed(2)
    return [sc.Slice.from_points(*torch.rand(3, 1, 8, 8, generator=gen)) for _ in range(n)]


def warm_up():
    """Pay the one-time costs of a process (imports, torch.fx, loading the compiled kernels)
    outside the clock: a small CNN (the engine) and a small MLP (the fast path)."""
    torch.set_num_threads(1)
    sc.partition(small_cnn(), many_slices(1)[0], progress=False)
    sc.partition(nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1)), sc.Slice.box((-1, -1), (1, 1)),
                 progress=False)


def running_cluster(workers):
    import dask
    import distributed

    with dask.config.set({WORKER_MALLOC_SETTING: None}):  # as the README advises for any cluster
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                           dashboard_address=":0")
    client = distributed.Client(cluster)
    client.run(warm_up)
    return cluster, client


def run_one(kind, name, arg, calls=3):
    """Seconds of ``calls`` timed calls (one for "local") in this fresh process, and regions."""
    warm_up()
    if kind == "many":
        model, slices = small_cnn(), many_slices(int(arg))
        cluster, client = running_cluster(int(name))
        sc.partition_many(model, slices[:4], executor=client, progress=False)  # warm
        seconds = []
        for _ in range(calls):
            t0 = time.perf_counter()
            parts = sc.partition_many(model, slices, executor=client, progress=False)
            seconds.append(time.perf_counter() - t0)
        client.close()
        cluster.close()
        return {"seconds": seconds, "regions": sum(len(p) for p in parts)}
    model, sl = case(name)
    client = cluster = None
    if kind == "cluster":
        cluster, client = running_cluster(2)
    options = {} if kind == "single" else {"tiles": int(arg), "executor": "local" if kind == "local" else client}
    if kind != "local":  # warm: the process (or cluster) has served this case once already
        sc.partition(model, sl, progress=False, **options)
    seconds = []
    for _ in range(1 if kind == "local" else calls):
        t0 = time.perf_counter()
        part = sc.partition(model, sl, progress=False, **options)
        seconds.append(time.perf_counter() - t0)
    if client is not None:
        client.close()
        cluster.close()
    return {"seconds": seconds, "regions": len(part)}


def measure(specs, repeats):
    """{spec: (median, min, max, regions)} of every (kind, name, arg) in ``specs``, each run in
    ``repeats`` fresh processes, interleaved (spec 1, spec 2, ..., spec 1, ...) so that the
    machine's drift hits all alike; the medians are over all timed calls."""
    runs = {spec: [] for spec in specs}
    for _ in range(repeats):
        for spec in specs:
            out = subprocess.run([sys.executable, __file__, "--one", *map(str, spec)], capture_output=True, text=True,
                                 env={**os.environ, "PYTHONWARNINGS": "ignore"})
            if out.returncode:
                raise RuntimeError(out.stderr[-3000:])
            runs[spec].append(json.loads(out.stdout.strip().splitlines()[-1]))
    result = {}
    for spec, rs in runs.items():
        seconds = [t for r in rs for t in r["seconds"]]
        assert len({r["regions"] for r in rs}) == 1
        result[spec] = statistics.median(seconds), min(seconds), max(seconds), rs[0]["regions"]
    return result


def main(argv):
    if argv[:1] == ["--one"]:
        print(json.dumps(run_one(*argv[1:4])))
        return
    opts = dict(a[2:].split("=") for a in argv if a.startswith("--"))
    repeats, n = int(opts.get("repeats", 3)), int(opts.get("slices", 64))
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start; {repeats} fresh processes "
          "of each, interleaved, 3 timed calls in each (1 for local); medians (min-max) over all calls")
    print("\n| case | regions | 1 process | tiles=4, local (cluster start included) | speed-up | "
          "tiles=4, running cluster | speed-up | tiles=3, running cluster | speed-up |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in ("w256", "cnn"):
        specs = [("single", name, 0), ("local", name, 4), ("cluster", name, 4), ("cluster", name, 3)]
        got = measure(specs, repeats)
        single, lo, hi, regions = got[specs[0]]
        cells = [got[spec] for spec in specs[1:]]
        assert all(c[3] == regions for c in cells), "tiled and untiled region counts differ"
        row = " | ".join(f"{c[0]:.2f} s ({c[1]:.2f}-{c[2]:.2f}) | {single / c[0]:.2f}x" for c in cells)
        print(f"| {name} | {regions:,} | {single:.2f} s ({lo:.2f}-{hi:.2f}) | {row} |")
    print(f"\n| partition_many, {n} slices of a small CNN | 1 worker | 2 workers | speed-up |")
    print("|---|---:|---:|---:|")
    got = measure([("many", "1", n), ("many", "2", n)], repeats)
    one, two = got[("many", "1", n)], got[("many", "2", n)]
    print(f"| slices per second ({one[3] / n:,.0f} regions per slice) | {n / one[0]:.1f} | {n / two[0]:.1f} | "
          f"{one[0] / two[0]:.2f}x |")
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main(sys.argv[1:])
