"""Benchmark the partition engine: regions, seconds and peak memory per case.

Each case runs in a fresh subprocess so that its peak resident memory is its own.
Usage: python benchmarks/bench.py [--threads=N] [case ...]   (cases: a b c d e; default all)
Times are for a warm process: one tiny partition runs first (imports, torch.fx setup).
"""

from __future__ import annotations

import io
import json
import resource
import subprocess
import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torch import nn

import splinecam as sc


def mlp(widths, act=nn.ReLU, batchnorm=False):
    layers = []
    for i, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(w_in, w_out))
        if i < len(widths) - 2:
            if batchnorm:
                layers.append(nn.BatchNorm1d(w_out))
            layers.append(act())
    return nn.Sequential(*layers)


class CifarNet(nn.Module):
    """3x32x32 -> conv32 -> pool -> conv64 -> residual block (2 x conv64) -> pool -> 10."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 64, 3, padding=1)
        self.conv4 = nn.Conv2d(64, 64, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(64 * 4 * 4, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        x = torch.relu(x + self.conv4(torch.relu(self.conv3(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


def case(name):
    """(description, model, slice) of a benchmark case; seeds fixed."""
    if name == "a":
        torch.manual_seed(0)
        return "2 -> 64x4 ReLU -> 1, [-1,1]^2", mlp([2, 64, 64, 64, 64, 1]), sc.Slice.box((-1, -1), (1, 1))
    if name == "b":
        torch.manual_seed(0)
        return "2 -> 256x3 ReLU -> 1, [-1,1]^2", mlp([2, 256, 256, 256, 1]), sc.Slice.box((-1, -1), (1, 1))
    if name == "c":
        torch.manual_seed(0)
        model = mlp([784, 256, 256, 256, 10])
        x = torch.randn(3, 784)
        return "784 -> 256x3 ReLU -> 10, 3 random inputs", model, sc.Slice.from_points(*x)
    if name == "d":
        torch.manual_seed(0)
        model = mlp([10] + [20] * 10 + [1], act=lambda: nn.LeakyReLU(0.03), batchnorm=True)
        with torch.no_grad():  # non-trivial running statistics, as after training
            for m in model.modules():
                if isinstance(m, nn.BatchNorm1d):
                    m.running_mean.uniform_(-0.2, 0.2)
                    m.running_var.uniform_(0.5, 1.5)
        model.eval()
        torch.manual_seed(1)
        return "10 -> 20x10 LeakyReLU(0.03)+BN -> 1, around a random input", model, sc.Slice.around(torch.randn(10), radius=1.0)
    if name == "e":
        torch.manual_seed(0)
        model = CifarNet().eval()
        # three random images close together: through three independent ones, ~20,000 first-layer
        # lines cross the slice (some 10^8 regions)
        x = torch.rand(3, 32, 32) + 1e-3 * torch.randn(3, 3, 32, 32)
        return "CIFAR CNN 3x32x32, 4 conv 32-64, max-pool, residual -> 10, 3 close random inputs", model, sc.Slice.from_points(*x)
    raise ValueError(f"unknown case {name!r}")


def run_one(name):
    desc, model, sl = case(name)
    # warm-up: the first partition in a process pays one-time costs (torch.fx import, tracing setup)
    sc.partition(nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)), sc.Slice.box((-1, -1), (1, 1)), progress=False)
    t0 = time.perf_counter()
    part = sc.partition(model, sl, progress=False)
    t_part = time.perf_counter() - t0
    t0 = time.perf_counter()
    db = part.decision_boundary()
    t_db = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB, before verify
    t0 = time.perf_counter()
    fig, ax = plt.subplots(figsize=(6, 6))
    part.plot(ax=ax, color_by="random")
    fig.savefig(io.BytesIO(), format="png", dpi=150)
    plt.close(fig)
    t_plot = time.perf_counter() - t0
    rep = part.verify(n_points=2000)
    return {"case": name, "model": desc, "regions": len(part), "partition_s": round(t_part, 3),
            "boundary_s": round(t_db, 3), "plot_s": round(t_plot, 3), "boundary_segments": len(db), "peak_GiB": round(peak, 3),
            "verify": rep.ok, "max_rel_error": rep.max_rel_error}


def main(argv):
    threads = [a for a in argv if a.startswith("--threads=")]
    if threads:
        argv = [a for a in argv if a not in threads]
        torch.set_num_threads(int(threads[0].split("=")[1]))
    if len(argv) == 2 and argv[0] == "--one":
        print(json.dumps(run_one(argv[1])))
        return
    names = argv or ["a", "b", "c", "d", "e"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float64, CPU")
    print(f"{'case':4} {'regions':>9} {'partition s':>12} {'boundary s':>11} {'plot s':>7} {'peak GiB':>9} {'verify':>7}  model")
    for name in names:
        cmd = [sys.executable, __file__, "--one", name, f"--threads={torch.get_num_threads()}"]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode:
            print(f"{name:4} failed:\n{out.stderr}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{name:4} {r['regions']:>9,} {r['partition_s']:>12.2f} {r['boundary_s']:>11.2f} {r['plot_s']:>7.2f} "
              f"{r['peak_GiB']:>9.2f} {str(r['verify']):>7}  {r['model']}")


if __name__ == "__main__":
    main(sys.argv[1:])
