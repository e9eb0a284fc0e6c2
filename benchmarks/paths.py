"""splinecam's exact 1-D paths against regioncam's ``Regioncam1D`` on the peers' MLPs.

The MLPs are those of ``benchmarks/peers.py`` (the same widths, seeds and trained star SDFs).
On each, the same segments (the square's two diagonals and random chords through it, fixed
seed) are partitioned by both, in this one process, warm (one untimed call each first), one
thread each (torch, regioncam's Rayon pool and, with threadpoolctl installed, the BLAS of our
kernel's matrix products), interleaved (ours, theirs, theirs, ours, ...) so that load on the machine hits both
alike.  Prints the piece counts (they must agree) and the median time of several runs of each
over all segments of a case, and the ratio; and, of our time, the median spent in the compiled
chain kernel (:func:`splinecam.geometry.compiled1d.chain_pieces`; the rest is Python around it);
and the time of one call of ``sc.partition_many`` for all the segments of a case (one run of the
kernel over all of them: what a study of many paths calls).

Timed as ``timeit`` times: the garbage collector is off while timing (a full collection in a
process that has imported torch takes a fraction of a second, and when it falls in a timed call
depends on everything else the process allocated); ``--gc`` keeps it on.  It runs once before
each case, not before each timed run: a full collection walks every object of the process
(0.2 s here) and leaves the CPU's caches cold, which costs the next call about 0.5 ms of ours
(a user's loop over paths does not collect between calls); ``--collect`` collects before each
timed run all the same.

Usage: python benchmarks/paths.py [--runs=5] [--segments=8] [--gc] [--collect]

regioncam (``pip install regioncam``) is optional: without it only our times are printed.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import splinecam as sc  # noqa: E402
from splinecam.geometry import compiled1d  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run as a script: the repository root
from benchmarks.peers import cases  # noqa: E402

try:
    import regioncam
except ImportError:  # optional, benchmark-only
    regioncam = None
try:
    from threadpoolctl import threadpool_limits
except ImportError:  # optional, benchmark-only (scikit-learn installs it)
    threadpool_limits = None


def segments(half: float, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The two diagonals of the square [-half, half]^2 and n - 2 random chords of it (seed 0)."""
    rng = np.random.default_rng(0)
    out = [(np.array([-half, -half]), np.array([half, half])), (np.array([-half, half]), np.array([half, -half]))]
    while len(out) < n:
        a, b = rng.uniform(-half, half, (2, 2))
        if np.linalg.norm(b - a) > half / 4:
            out.append((a, b))
    return out


KERNEL = [0.0]  # seconds spent in the chain kernel since the last reset


def _timed_kernel(kernel):
    def timed(*args):
        t0 = time.perf_counter()
        try:
            return kernel(*args)
        finally:
            KERNEL[0] += time.perf_counter() - t0
    return timed


def ours(model, segs) -> int:
    return sum(len(sc.partition(model, sc.Path.segment(a, b), progress=False)) for a, b in segs)


def ours_together(model, segs) -> int:
    """All segments in one call (``partition_many``: one run of the kernel)."""
    return sum(len(p) for p in sc.partition_many(model, [sc.Path.segment(a, b) for a, b in segs], progress=False))


def theirs(model, segs) -> int:
    total = 0
    for a, b in segs:
        rc = regioncam.Regioncam1D.through_points(np.stack([a, b]).astype(np.float32), size=2.0)  # exactly a..b
        rc.add(model)
        total += rc.num_edges
    return total


def main(argv: list[str]) -> None:
    runs = int(next((a.split("=")[1] for a in argv if a.startswith("--runs=")), 5))
    n_seg = int(next((a.split("=")[1] for a in argv if a.startswith("--segments=")), 8))
    keep_gc, collect = "--gc" in argv, "--collect" in argv
    torch.set_num_threads(1)
    compiled1d.chain_pieces = _timed_kernel(compiled1d.chain_pieces)
    blas = "BLAS 1 thread" if threadpool_limits is not None else "BLAS on its own threads (pip install threadpoolctl)"
    print(f"torch {torch.__version__}, 1 thread; {blas}; splinecam float64; load average {os.getloadavg()[0]:.2f}")
    if regioncam is None:
        print("regioncam is not installed (pip install regioncam): only splinecam's times are shown.")
    else:
        print(f"regioncam (float32), RAYON_NUM_THREADS={os.environ['RAYON_NUM_THREADS']}")
    print(f"{n_seg} segments per case (the square's diagonals and random chords); medians of {runs} runs; "
          f"garbage collector {'on' if keep_gc else 'off while timing (as timeit)'}, a full collection before "
          f"{'each timed run' if collect else 'each case'}")
    print("splinecam: a call of sc.partition per segment; (kernel): of which in the compiled kernel; one call: "
          "sc.partition_many of all the segments (one run of the kernel); regioncam: a Regioncam1D per segment")
    print(f"{'case':30} {'pieces (ours)':>13} {'pieces (theirs)':>15} {'splinecam':>10} {'(kernel)':>9} {'one call':>9} "
          f"{'regioncam':>10} {'ours/theirs':>11} {'one call/theirs':>15}")
    if threadpool_limits is not None:
        threadpool_limits(limits=1, user_api="blas")  # (for the rest of this process)
    for name, model, half, _ in cases(quick=False):
        segs = segments(half, n_seg)
        fns = [ours, ours_together] + ([theirs] if regioncam is not None else [])
        counts = [fn(model, segs) for fn in fns]  # warm-up
        gc.collect()
        times: list[list[float]] = [[] for _ in fns]
        kernel: list[float] = []
        for r in range(runs):
            for k in (range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))):
                KERNEL[0] = 0.0
                if collect:
                    gc.collect()
                if not keep_gc:
                    gc.disable()
                t0 = time.perf_counter()
                counts[k] = fns[k](model, segs)
                times[k].append(time.perf_counter() - t0)
                gc.enable()
                if k == 0:
                    kernel.append(KERNEL[0])
        med = [statistics.median(t) for t in times]
        inside = _ms(statistics.median(kernel))
        assert counts[1] == counts[0], "partition_many gave other pieces than partition"
        if regioncam is None:
            print(f"{name:30} {counts[0]:>13,} {'-':>15} {_ms(med[0]):>10} {inside:>9} {_ms(med[1]):>9} {'-':>10} {'-':>11} "
                  f"{'-':>15}")
        else:
            print(f"{name:30} {counts[0]:>13,} {counts[2]:>15,} {_ms(med[0]):>10} {inside:>9} {_ms(med[1]):>9} "
                  f"{_ms(med[2]):>10} {med[0] / med[2]:>11.2f} {med[1] / med[2]:>15.2f}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


if __name__ == "__main__":
    main(sys.argv[1:])
