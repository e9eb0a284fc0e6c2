"""splinecam against regioncam (the fastest peer we know) on small and medium MLPs.

Both run in this one process, warm (one untimed call each first), one thread each, on the same
float32 weights and the same square slice; the calls are interleaved (ours, theirs, ours, ...)
so that load on the machine hits both alike.  Prints the median of several runs of each.

Usage: python benchmarks/peers.py [--runs=5] [--quick]   (--quick: leave out the 2-256x3 row)

regioncam (``pip install regioncam``) is optional: without it only our times are printed.
The "trained" rows are small MLPs fitted here (fixed seeds, a few hundred Adam steps) to the
signed distance of a five-pointed star; nothing is written to disk.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")  # in case a regioncam build uses rayon threads

import torch  # noqa: E402
from torch import nn  # noqa: E402

import splinecam as sc  # noqa: E402
from splinecam.geometry import compiled  # noqa: E402

try:
    import regioncam
except ImportError:  # optional, benchmark-only
    regioncam = None


def mlp(widths: list[int]) -> nn.Sequential:
    """Linear/ReLU layers of the given widths (input first), float32, torch's default init."""
    layers: list[nn.Module] = []
    for i, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(w_in, w_out))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def star_sdf(p: torch.Tensor, r_out: float = 0.38, r_in: float = 0.16) -> torch.Tensor:
    """(N,) signed distance of points p (N, 2) to a five-pointed star (negative inside)."""
    angles = torch.arange(10, dtype=p.dtype) * math.pi / 5 + math.pi / 2
    radii = torch.tensor([r_out, r_in] * 5, dtype=p.dtype)
    verts = torch.stack([radii * torch.cos(angles), radii * torch.sin(angles)], 1)  # (10, 2)
    a, b = verts, verts.roll(-1, 0)
    ab = b - a
    ap = p[:, None] - a  # (N, 10, 2)
    t = ((ap * ab).sum(-1) / (ab * ab).sum(-1)).clamp(0, 1)
    dist = (ap - t[..., None] * ab).norm(dim=-1).amin(1)
    # inside by the crossing number: edges that straddle the point's height, left of it
    straddle = (a[:, 1] > p[:, None, 1]) != (b[:, 1] > p[:, None, 1])
    x_cross = a[:, 0] + (p[:, None, 1] - a[:, 1]) * ab[:, 0] / torch.where(ab[:, 1] == 0, 1.0, ab[:, 1])
    inside = (straddle & (p[:, None, 0] < x_cross)).sum(1) % 2 == 1
    return torch.where(inside, -dist, dist)


def trained_sdf(widths: list[int], seed: int, steps: int = 400) -> nn.Sequential:
    """An MLP fitted to the star's signed distance on [-0.5, 0.5]^2 (deterministic)."""
    torch.manual_seed(seed)
    model = mlp(widths)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        p = torch.rand(512, 2, generator=gen) - 0.5
        loss = ((model(p)[:, 0] - star_sdf(p)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def cases(quick: bool):
    """(name, model, half-size of the square slice, runs)."""
    torch.manual_seed(0)
    yield "2-64x4-1, seed 0, [-2,2]^2", mlp([2, 64, 64, 64, 64, 1]), 2.0, None
    torch.manual_seed(5)
    yield "2-96x3-1, seed 5, [-1,1]^2", mlp([2, 96, 96, 96, 1]), 1.0, None
    yield "SDF 2-100x2-1, [-0.5,0.5]^2", trained_sdf([2, 100, 100, 1], seed=1), 0.5, None
    yield "SDF 2-32x4-1, [-0.5,0.5]^2", trained_sdf([2, 32, 32, 32, 32, 1], seed=2), 0.5, None
    yield "SDF 2-50x2-1, [-0.5,0.5]^2", trained_sdf([2, 50, 50, 1], seed=3), 0.5, None
    if not quick:
        torch.manual_seed(0)
        yield "2-256x3-1, seed 0, [-2,2]^2", mlp([2, 256, 256, 256, 1]), 2.0, 2


def ours(model, half: float) -> int:
    sl = sc.Slice.box((-half, -half), (half, half))
    return len(sc.partition(model, sl, progress=False))


def theirs(model, half: float) -> int:
    rc = regioncam.Regioncam(size=half)  # the square [-size, size]^2
    rc.add(model)
    return rc.num_faces


def timed(fn, *args) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = fn(*args)
    return time.perf_counter() - t0, n


def main(argv: list[str]) -> None:
    runs = int(next((a.split("=")[1] for a in argv if a.startswith("--runs=")), 5))
    quick = "--quick" in argv
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread; splinecam float64, compiled kernels "
          f"{'active' if compiled.AVAILABLE else 'NOT active (numba missing): the torch loop'}; "
          f"load average {os.getloadavg()[0]:.2f}")
    if regioncam is None:
        print("regioncam is not installed (pip install regioncam): only splinecam's times are shown.")
    else:
        print(f"regioncam {getattr(regioncam, '__version__', '?')} (float32), RAYON_NUM_THREADS={os.environ['RAYON_NUM_THREADS']}")
    print(f"{'case':30} {'regions (ours)':>14} {'regions (theirs)':>16} {'splinecam':>10} {'regioncam':>10} {'ours/theirs':>11}")
    for name, model, half, n_runs in cases(quick):
        n_runs = n_runs or runs
        fns = [ours] + ([theirs] if regioncam is not None else [])
        counts = [fn(model, half) for fn in fns]  # warm-up
        times: list[list[float]] = [[] for _ in fns]
        for r in range(n_runs):
            order = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
            for k in order:
                t, counts[k] = timed(fns[k], model, half)
                times[k].append(t)
        med = [statistics.median(t) for t in times]
        if regioncam is None:
            print(f"{name:30} {counts[0]:>14,} {'-':>16} {_ms(med[0]):>10} {'-':>10} {'-':>11}")
        else:
            print(f"{name:30} {counts[0]:>14,} {counts[1]:>16,} {_ms(med[0]):>10} {_ms(med[1]):>10} {med[0] / med[1]:>11.2f}")
    print(f"medians of {runs} runs ({2} for 2-256x3); load average at the end {os.getloadavg()[0]:.2f}")


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


if __name__ == "__main__":
    main(sys.argv[1:])
