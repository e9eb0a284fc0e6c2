"""Benchmark tiles and executors: one slice in tiles on local worker processes, many slices
through ``partition_many``.

Every measurement runs in fresh subprocesses, the kinds interleaved, three timed calls in each;
the table shows medians (and ranges) over all calls.
Usage: python benchmarks/bench_distributed.py [--repeats=3] [--slices=64] [--cases=w256,cnn] [--many=1]

- w256: 2 -> 256x3 ReLU -> 1 (seed 0), box [-2, 2]^2; cnn: 1x16x16 -> conv8 -> pool -> conv16 ->
  pool -> 10, the plane through three nearby random images.
- "1 process": ``sc.partition`` with one torch thread, warm (the process has run the case once).
  "2 processes at once": the same in two processes whose timed calls start together: what two
  cores give this workload on this machine now (their memory, caches and the other programs
  running), the ceiling of any two-worker speed-up ("throughput": 2 x 1 process / this).
  "tiles=4, local": ``tiles=4, executor="local"`` in a fresh process: the first call starts
  the process's LocalCluster (one single-threaded worker process per core), the timed calls
  after it reuse it.  "tiles=k, running cluster": on a LocalCluster started before the clock
  and warm (it has served the case once), as a cluster that serves many calls; it is started
  with Dask's defaults, as a user starts one, and "workers' CPU" sums their CPU time per call.
  "pinned": the same, after the workers' malloc thresholds were pinned again as Dask's
  ``MALLOC_TRIM_THRESHOLD_=65536`` pins them (what every Dask worker ran with before
  ``splinecam.run.executors.glibc_malloc_defaults``).
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
    import distributed

    # as a user starts one: Dask's defaults (its workers' MALLOC_TRIM_THRESHOLD_ included)
    cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = distributed.Client(cluster)
    client.run(warm_up)
    return cluster, client


def pin_like_dask():
    """glibc's malloc thresholds as ``MALLOC_TRIM_THRESHOLD_=65536`` leaves them: trim 64 KiB,
    mmap fixed at its initial 128 KiB."""
    import ctypes

    libc = ctypes.CDLL("libc.so.6")
    return libc.mallopt(-1, 65536) and libc.mallopt(-3, 128 * 1024)


def cpu_seconds():
    return time.process_time()


def run_one(kind, name, arg, calls=3):
    """Seconds of ``calls`` timed calls in this fresh process, and regions; for "pair", of the
    timed calls of two such processes that start their calls at the same moment (``arg``:
    that moment, a ``time.time()``, for the processes of a pair)."""
    if kind == "pair":
        go = time.time() + 30  # time enough for both to import and warm up
        procs = [subprocess.Popen([sys.executable, __file__, "--one", "single", name, str(go)], stdout=subprocess.PIPE,
                                  text=True) for _ in range(2)]
        runs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
        if any(p.returncode for p in procs):
            raise RuntimeError("a process of the pair failed")
        return {"seconds": [t for r in runs for t in r["seconds"]], "regions": runs[0]["regions"]}
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
    if kind in ("cluster", "pinned"):
        cluster, client = running_cluster(2)
    options = {} if kind == "single" else {"tiles": int(arg), "executor": "local" if kind == "local" else client}
    t0 = time.perf_counter()
    sc.partition(model, sl, progress=False, **options)  # warm: the process (or cluster) has served this case once
    first = time.perf_counter() - t0
    if kind == "single" and float(arg):
        while time.time() < float(arg):  # the moment the pair starts its timed calls
            time.sleep(0.001)
    if kind == "pinned":
        assert all(client.run(pin_like_dask).values())
    seconds, worker_cpu = [], []
    for _ in range(calls):
        cpu = client.run(cpu_seconds) if client is not None else {}
        t0 = time.perf_counter()
        part = sc.partition(model, sl, progress=False, **options)
        seconds.append(time.perf_counter() - t0)
        if client is not None:
            worker_cpu.append(sum(client.run(cpu_seconds)[w] - cpu[w] for w in cpu))
    if client is not None:
        client.close()
        cluster.close()
    sc.close_local_cluster()
    return {"seconds": seconds, "regions": len(part), "first": first, "worker_cpu": worker_cpu}


def measure(specs, repeats):
    """{spec: {"median", "min", "max", "regions", "first"}} of every (kind, name, arg) in
    ``specs``, each run in ``repeats`` fresh processes, interleaved (spec 1, spec 2, ..., spec 1,
    ...) so that the machine's drift hits all alike; the medians are over all timed calls
    ("first": the median of the untimed first calls)."""
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
        result[spec] = {"median": statistics.median(seconds), "min": min(seconds), "max": max(seconds),
                        "regions": rs[0]["regions"], "first": statistics.median(r.get("first", 0) for r in rs),
                        "worker_cpu": statistics.median([t for r in rs for t in r.get("worker_cpu", [])] or [0])}
    return result


def _cell(m) -> str:
    return f"{m['median']:.2f} s ({m['min']:.2f}-{m['max']:.2f})"


def main(argv):
    if argv[:1] == ["--one"]:
        print(json.dumps(run_one(*argv[1:4])))
        return
    opts = dict(a[2:].split("=") for a in argv if a.startswith("--"))
    repeats, n = int(opts.get("repeats", 3)), int(opts.get("slices", 64))
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start; {repeats} fresh processes "
          "of each, interleaved, 3 timed calls in each; medians (min-max) over all calls")
    print("\n| case | regions | 1 process | 2 processes at once | throughput | tiles=4, local: first call | "
          "later calls | speed-up | tiles=4, running cluster | speed-up | workers' CPU | tiles=3, running cluster | "
          "speed-up | tiles=4, pinned | workers' CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in opts.get("cases", "w256,cnn").split(","):
        specs = [("single", name, 0), ("pair", name, 0), ("local", name, 4), ("cluster", name, 4), ("cluster", name, 3),
                 ("pinned", name, 4)]
        got = measure(specs, repeats)
        single, pair, local, four, three, pinned = (got[spec] for spec in specs)
        assert all(got[spec]["regions"] == single["regions"] for spec in specs), "tiled and untiled region counts differ"

        def vs(m):
            return f"{_cell(m)} | {single['median'] / m['median']:.2f}x"

        print(f"| {name} | {single['regions']:,} | {_cell(single)} | {_cell(pair)} | "
              f"{2 * single['median'] / pair['median']:.2f}x | {local['first']:.2f} s | {vs(local)} | {vs(four)} | "
              f"{four['worker_cpu']:.2f} s | {vs(three)} | {_cell(pinned)} | {pinned['worker_cpu']:.2f} s |")
    if opts.get("many", "1") != "0":
        print(f"\n| partition_many, {n} slices of a small CNN | 1 worker | 2 workers | speed-up |")
        print("|---|---:|---:|---:|")
        got = measure([("many", "1", n), ("many", "2", n)], repeats)
        one, two = got[("many", "1", n)], got[("many", "2", n)]
        print(f"| slices per second ({one['regions'] / n:,.0f} regions per slice) | {n / one['median']:.1f} | "
              f"{n / two['median']:.1f} | {one['median'] / two['median']:.2f}x |")
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main(sys.argv[1:])
