"""Vision networks: ResNet-18 and VGG-11-BN (3x32x32, 10 classes, random init, eval, float64) on
slices around an image and through three images, and a small max-pooling ResNet at many regions;
the limits on huge arrangements ("...-points" cases: timeout=60 s; "mlp3000": the plain MLP
2-3000-64-1 on the box [-3, 3]^2 with timeout=5 s, on the fast path); and the SplineCam paper's
Tiny ImageNet networks ("vgg11tin-...", "vgg16tin-...": VGG-11 and VGG-16 with batch norm, average
pools, no conv bias, first conv of stride 2, 3x64x64, 200 classes) on slices around an image,
with the projected cost of the paper's study (90 such slices) on one core and on N workers.

For each case: regions, seconds of the partition call (a case that stops at its time limit
says so), the ratio to the inherent cost (the model's own float64 forward pass on 3R inputs:
the value and two tangents of each of R regions), peak resident memory, the bytes of the
result, the share of the slice finished, the seconds until the progress bar first moved (the
first finished area) and whether ``verify`` passes (on the partial result too).  Each case runs
in a fresh process (its peak memory is its own), single-threaded, once per engine: "dense" (each
affine op on its own: ``compose=False``) and "composed" (the default), interleaved, ``--runs``
times; "speed-up" is the dense run's seconds over the composed run's of the same round.
Usage: python -m benchmarks.vision [--runs N] [--engines dense,composed] [--workers 8,32] [--baseline DIR] [case ...]
       (default: the cases of the README table, one run; --baseline DIR: each round starts with
       the default engine of the source tree DIR (another checkout, e.g. the main branch), run by
       that tree's own copy of this script in a fresh process, the speed-ups against it)
       python -m benchmarks.vision --alternate CASE ROUNDS   (the engines alternating in one process)
       python -m benchmarks.vision --interrupt CASE SECONDS [SECONDS ...]   (Ctrl-C latency
       SECONDS into a case, each in a fresh process)
"""

from __future__ import annotations

import _thread
import json
import os
import resource
import subprocess
import sys
import signal
import threading
import time

import torch
from torch import nn

import splinecam as sc
from splinecam.run.watch import Watch

from benchmarks.architectures import BasicBlock, ResNet18, VGG11BN, tiny_imagenet_vgg

CASES = {
    "resnet18-r0.01": ("resnet18", "around", 0.01), "resnet18-r0.03": ("resnet18", "around", 0.03),
    "resnet18-r0.1": ("resnet18", "around", 0.1), "resnet18-points": ("resnet18", "points", 60),
    "vgg11bn-r0.01": ("vgg11bn", "around", 0.01), "vgg11bn-r0.03": ("vgg11bn", "around", 0.03),
    "vgg11bn-r0.1": ("vgg11bn", "around", 0.1), "vgg11bn-points": ("vgg11bn", "points", 60),
    "smallresnet-r3": ("smallresnet", "around", 3.0), "smallresnet-r5": ("smallresnet", "around", 5.0),
    "smallresnet-r6.5": ("smallresnet", "around", 6.5), "mlp3000": ("mlp3000", "box", 5),
    "vgg11tin-r0.03": ("vgg11tin", "around", 0.03), "vgg16tin-r0.015": ("vgg16tin", "around", 0.015),
}
DEFAULT = list(CASES)
ENGINES = {"dense": {"compose": False}, "composed": {}}
STUDY_SLICES = 90  # the paper's study: slices around 90 test samples


def small_resnet() -> nn.Module:
    """3x12x12 -> conv 8 -> ReLU -> max-pool 2 -> BasicBlock(8) -> max-pool 2 -> 10."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), BasicBlock(8, 8), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(8 * 3 * 3, 10))


def mlp3000() -> nn.Module:
    """The plain MLP 2-3000-64-1 (default init): millions of regions on the box [-3, 3]^2."""
    return nn.Sequential(nn.Linear(2, 3000), nn.ReLU(), nn.Linear(3000, 64), nn.ReLU(), nn.Linear(64, 1))


def setup(name):
    """(model, slice, timeout) of a case; seeds fixed."""
    net, kind, arg = CASES[name]
    torch.manual_seed(0)
    model = {"resnet18": ResNet18, "vgg11bn": VGG11BN, "smallresnet": small_resnet, "mlp3000": mlp3000,
             "vgg11tin": lambda: tiny_imagenet_vgg(11), "vgg16tin": lambda: tiny_imagenet_vgg(16)}[net]().eval()
    if kind == "box":
        return model, sc.Slice.box((-3, -3), (3, 3)), arg
    shape = {"smallresnet": (3, 12, 12), "vgg11tin": (3, 64, 64), "vgg16tin": (3, 64, 64)}.get(net, (3, 32, 32))
    images = torch.rand(3, *shape, generator=torch.Generator().manual_seed(1))
    if kind == "points":
        return model, sc.Slice.from_points(*images), arg
    return model, sc.Slice.around(images[0], radius=arg), None


def result_bytes(part: sc.Partition) -> int:
    a = part.arrays
    return sum(x.nbytes for x in (a.vertices, a.offsets, a.edge_units, a.affine, a.packed_codes, a.centroid_outputs))


def forward_seconds(model: nn.Module, sl: sc.Slice, n: int) -> float:
    """Seconds of the float64 forward pass of the model on n inputs of the slice (batches of 256)."""
    twin = model.double()
    x = sl.to_input(torch.rand(min(n, 256), 2, dtype=torch.float64).numpy() * 0.01)
    with torch.no_grad():
        twin(x[:2])
        t0 = time.perf_counter()
        for s in range(0, n, 256):
            twin(x[: min(256, n - s)])
    return time.perf_counter() - t0


def warm_up() -> None:
    """The first partition in a process pays for imports (torch.fx): run a tiny traced one (a
    CNN: a plain MLP takes the fast path, which traces nothing)."""
    tiny = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 1)).eval()
    sc.partition(tiny, sc.Slice.from_points(*torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0))),
                 progress=False)


def first_progress() -> list:
    """Records the ``time.perf_counter()`` of every first finished area (what moves the progress
    bar) in the returned list, through the public ``Watch.finished``."""
    moved = []
    finished = Watch.finished

    def spy(self, polys):
        if not moved:
            moved.append(time.perf_counter())
        finished(self, polys)

    Watch.finished = spy
    return moved


def run_one(name, engine):
    torch.set_num_threads(1)
    model, sl, timeout = setup(name)
    warm_up()
    moved = first_progress()
    t0 = time.perf_counter()
    try:
        part, stopped = sc.partition(model, sl, progress=False, timeout=timeout, **ENGINES[engine]), ""
    except sc.TimeLimitError as err:
        part, stopped = err.partial, "timeout"
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    n = len(part)
    fwd = forward_seconds(model, sl, 3 * n) if 0 < n <= 20000 else float("nan")
    verify = part.verify()  # at most 2000 points: cheap next to the partition
    return {"case": name, "engine": engine, "regions": n, "seconds": seconds, "forward_s": fwd, "ratio": seconds / fwd if fwd == fwd else None,
            "peak_rss": peak, "result_bytes": result_bytes(part), "stopped": stopped,
            "area": part.area_fraction, "first_progress": moved[0] - t0 if moved else None,
            "verify": None if verify is None else verify.ok}


def interrupt_latency(name: str, after: float) -> dict:
    """Ctrl-C (SIGINT to the main thread) ``after`` seconds into a case: seconds until it stopped."""
    torch.set_num_threads(1)
    model, sl, _ = setup(name)
    warm_up()
    fired = []

    def interrupt():
        fired.append(time.perf_counter())
        _thread.interrupt_main()

    signal.signal(signal.SIGINT, signal.default_int_handler)  # as interactive: a background job ignores SIGINT
    timer = threading.Timer(after, interrupt)
    t0 = time.perf_counter()
    timer.start()
    try:
        sc.partition(model, sl, progress=False)
        return {"case": name, "after": after, "latency": None, "note": f"finished in {time.perf_counter() - t0:.1f} s"}
    except KeyboardInterrupt:
        return {"case": name, "after": after, "latency": time.perf_counter() - fired[0], "note": ""}


def _options(argv) -> tuple[dict, list]:
    """--runs N, --engines a,b, --workers n,m and the case names."""
    opts = {"--runs": "1", "--engines": ",".join(ENGINES), "--workers": "8,32", "--baseline": ""}
    rest = []
    while argv:
        if argv[0] in opts:
            opts[argv[0]], argv = argv[1], argv[2:]
        else:
            rest, argv = rest + [argv[0]], argv[1:]
    return opts, rest


def alternate(name: str, rounds: int) -> None:
    """The engines one after the other in this one process, ``rounds`` times (each partition's
    seconds, and the dense over the composed seconds of each round): on a busy machine the
    neighbouring runs of one process share its load more evenly than fresh processes do."""
    torch.set_num_threads(1)
    model, sl, timeout = setup(name)
    warm_up()
    print(f"| {name} round | " + " | ".join(f"{e} s" for e in ENGINES) + " | speed-up |")
    print("|---|" + "---:|" * (len(ENGINES) + 1))
    for k in range(rounds):
        seconds = []
        for engine in ENGINES:
            t0 = time.perf_counter()
            sc.partition(model, sl, progress=False, **ENGINES[engine])
            seconds.append(time.perf_counter() - t0)
        print(f"| {k + 1} | " + " | ".join(f"{t:.1f}" for t in seconds) + f" | {seconds[0] / seconds[-1]:.2f}x |", flush=True)


def main(argv):
    if len(argv) == 3 and argv[0] == "--one":  # CASE ENGINE, in this process
        print(json.dumps(run_one(argv[1], argv[2])))
        return
    if len(argv) == 3 and argv[0] == "--alternate":  # CASE ROUNDS, in this process
        alternate(argv[1], int(argv[2]))
        return
    if len(argv) == 3 and argv[0] == "--interrupt-one":  # CASE SECONDS, in this process
        print(json.dumps(interrupt_latency(argv[1], float(argv[2]))))
        return
    if len(argv) >= 3 and argv[0] == "--interrupt":  # CASE SECONDS [SECONDS ...], each in a fresh process
        print("| case | Ctrl-C after | stopped after Ctrl-C |")
        print("|---|---:|---:|")
        for after in argv[2:]:
            out = subprocess.run([sys.executable, "-m", "benchmarks.vision", "--interrupt-one", argv[1], after],
                                 capture_output=True, text=True, check=False)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            latency = f"{r['latency']:.2f} s" if r["latency"] is not None else r["note"]
            print(f"| {argv[1]} | {float(after):g} s | {latency} |", flush=True)
        return
    opts, names = _options(argv)
    names, engines, runs = names or DEFAULT, opts["--engines"].split(","), int(opts["--runs"])
    baseline = opts["--baseline"]
    engines = (["baseline"] if baseline else []) + engines
    workers = [int(w) for w in opts["--workers"].split(",")]
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"torch {torch.__version__}, 1 thread, float64, CPU; load average {' '.join(load)} at start; {runs} run(s), "
          f"engines interleaved in fresh processes" + (f"; baseline: the default engine of {baseline}" if baseline else ""))
    print("| case | engine | regions | seconds | forward 3R s | ratio | speed-up | peak RSS | result | area done | "
          "first progress | verify |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    study = []
    for name in names:
        for _ in range(runs):
            first = None
            for engine in engines:
                r = _run_fresh(name, engine, baseline)
                if r is None:
                    continue
                first = first or r
                _print_row(r, first)
                if CASES[name][0].endswith("tin") and engine == engines[-1]:
                    study.append(r)
    if study:
        _print_study(study, workers)


def _run_fresh(name: str, engine: str, baseline: str = "") -> dict | None:
    """One case on one engine in a fresh process (None, after printing why, if it failed);
    "baseline": the default engine of the source tree ``baseline``, run there."""
    cmd, cwd, env = [sys.executable, "-m", "benchmarks.vision", "--one", name, engine], None, None
    if engine == "baseline":
        cmd[-1], cwd, env = "composed", baseline, {**os.environ, "PYTHONPATH": baseline}
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env)
    if out.returncode:
        print(f"| {name} | {engine} | failed: {(out.stderr.strip().splitlines() or ['?'])[-1]} |", flush=True)
        return None
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "engine": engine}


def _print_row(r: dict, first: dict) -> None:
    """A row of the table; the speed-up is against ``first`` (this round's first engine)."""
    ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
    stop = " (timeout)" if r["stopped"] else ""
    moved = f"{r['first_progress']:.1f} s" if r["first_progress"] is not None else "-"
    speedup = f"{first['seconds'] / r['seconds']:.2f}x" if r is not first and not r["stopped"] else "-"
    print(f"| {r['case']} | {r['engine']} | {r['regions']:,} | {r['seconds']:.1f}{stop} | {r['forward_s']:.1f} | {ratio} | "
          f"{speedup} | {r['peak_rss'] / 2**30:.2f} GiB | {r['result_bytes'] / 2**20:.1f} MiB | {100 * r['area']:.3g}% | "
          f"{moved} | {r['verify']} |", flush=True)


def _print_study(rows: list, workers: list) -> None:
    """The paper's study projected from one measured slice: STUDY_SLICES slices, each a task (a
    Dask cluster of N single-threaded workers runs ceil(STUDY_SLICES / N) rounds of them)."""
    print(f"\nThe paper's study ({STUDY_SLICES} slices around test samples), projected from the measured slice "
          f"(engine {rows[0]['engine']}; one slice a task):")
    head = " | ".join(f"{n} workers" for n in workers)
    print(f"| case | regions | seconds a slice | ratio to forward 3R | one core | {head} |")
    print("|---|---:|---:|---:|---:|" + "---:|" * len(workers))
    for r in rows:
        cells = " | ".join(_hours(-(-STUDY_SLICES // n) * r["seconds"]) for n in workers)
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
        print(f"| {r['case']} | {r['regions']:,} | {r['seconds']:.1f} | {ratio} | {_hours(STUDY_SLICES * r['seconds'])} | "
              f"{cells} |", flush=True)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


if __name__ == "__main__":
    main(sys.argv[1:])
