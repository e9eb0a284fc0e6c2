"""Vision networks: ResNet-18 and VGG-11-BN (3x32x32, 10 classes, random init, eval, float64) on
slices around an image and through three images, and a small max-pooling ResNet at many regions;
and the limits on huge arrangements ("...-points" cases: timeout=60 s; "mlp3000": the plain MLP
2-3000-64-1 on the box [-3, 3]^2 with timeout=5 s, on the fast path).

For each case: regions, seconds of the partition call (a case that stops at its time limit
says so), the ratio to the inherent cost (the model's own float64 forward pass on 3R inputs:
the value and two tangents of each of R regions), peak resident memory, the bytes of the
result, the share of the slice finished, the seconds until the progress bar first moved (the
first finished area) and whether ``verify`` passes (on the partial result too).  Each case runs
in a fresh process (its peak memory is its own), single-threaded.
Usage: python -m benchmarks.vision [case ...]   (default: the cases of the README table)
       python -m benchmarks.vision --interrupt CASE SECONDS [SECONDS ...]   (Ctrl-C latency
       SECONDS into a case, each in a fresh process)
"""

from __future__ import annotations

import _thread
import json
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

from benchmarks.architectures import BasicBlock, ResNet18, VGG11BN

CASES = {
    "resnet18-r0.01": ("resnet18", "around", 0.01), "resnet18-r0.03": ("resnet18", "around", 0.03),
    "resnet18-r0.1": ("resnet18", "around", 0.1), "resnet18-points": ("resnet18", "points", 60),
    "vgg11bn-r0.01": ("vgg11bn", "around", 0.01), "vgg11bn-r0.03": ("vgg11bn", "around", 0.03),
    "vgg11bn-r0.1": ("vgg11bn", "around", 0.1), "vgg11bn-points": ("vgg11bn", "points", 60),
    "smallresnet-r3": ("smallresnet", "around", 3.0), "smallresnet-r5": ("smallresnet", "around", 5.0),
    "smallresnet-r6.5": ("smallresnet", "around", 6.5), "mlp3000": ("mlp3000", "box", 5),
}
DEFAULT = list(CASES)


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
    model = {"resnet18": ResNet18, "vgg11bn": VGG11BN, "smallresnet": small_resnet, "mlp3000": mlp3000}[net]().eval()
    if kind == "box":
        return model, sc.Slice.box((-3, -3), (3, 3)), arg
    shape = (3, 12, 12) if net == "smallresnet" else (3, 32, 32)
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


def run_one(name):
    torch.set_num_threads(1)
    model, sl, timeout = setup(name)
    warm_up()
    moved = first_progress()
    t0 = time.perf_counter()
    try:
        part, stopped = sc.partition(model, sl, progress=False, timeout=timeout), ""
    except sc.TimeLimitError as err:
        part, stopped = err.partial, "timeout"
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    n = len(part)
    fwd = forward_seconds(model, sl, 3 * n) if 0 < n <= 20000 else float("nan")
    verify = part.verify()  # at most 2000 points: cheap next to the partition
    return {"case": name, "regions": n, "seconds": seconds, "forward_s": fwd, "ratio": seconds / fwd if fwd == fwd else None,
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


def main(argv):
    if len(argv) == 2 and argv[0] == "--one":
        print(json.dumps(run_one(argv[1])))
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
    names = argv or DEFAULT
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    print(f"torch {torch.__version__}, 1 thread, float64, CPU; load average {' '.join(load)} at start")
    print("| case | regions | seconds | forward 3R s | ratio | peak RSS | result | area done | first progress | verify |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name in names:
        out = subprocess.run([sys.executable, "-m", "benchmarks.vision", "--one", name], capture_output=True, text=True)
        if out.returncode:
            print(f"| {name} | failed: {out.stderr.strip().splitlines()[-1]} |")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
        stop = " (timeout)" if r["stopped"] else ""
        moved = f"{r['first_progress']:.1f} s" if r["first_progress"] is not None else "-"
        print(f"| {name} | {r['regions']:,} | {r['seconds']:.1f}{stop} | {r['forward_s']:.1f} | {ratio} | "
              f"{r['peak_rss'] / 2**30:.2f} GiB | {r['result_bytes'] / 2**20:.1f} MiB | {100 * r['area']:.3g}% | {moved} | "
              f"{r['verify']} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
