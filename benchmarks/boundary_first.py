"""Boundary first against the full partition: cells visited and seconds to the decision boundary.

Each (case, method) runs in a fresh subprocess, warmed up by one tiny partition (imports,
torch.fx), on one thread; a run past --limit seconds is killed and reported as such.
Methods: ``full`` = ``sc.partition(...).decision_boundary()``; ``zonotope`` / ``interval`` =
``sc.decision_boundary(..., bounds=...)``.  Cells: the regions of the full partition; for
boundary first all cells of its result (exact regions + coarse cells).  Every boundary-first
result is checked against the full one when both finished (segments, length, classes).

Usage: python benchmarks/boundary_first.py [--runs=N] [--limit=S] [--methods=full,zonotope,interval]
       [case ...]   (cases: w128 cnn resnet18; default w128 cnn)
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
from torch.nn import functional as F

import splinecam as sc

ROOT = Path(__file__).resolve().parent.parent


def w128():
    """2-128x3-1 ReLU MLP, nn.Linear default init with torch.manual_seed(1), on [-4, 4]^2."""
    torch.manual_seed(1)
    layers, d = [], 2
    for _ in range(3):
        layers += [nn.Linear(d, 128), nn.ReLU()]
        d = 128
    return nn.Sequential(*layers, nn.Linear(d, 1)).eval(), sc.Slice.box((-4, -4), (4, 4))


def cnn():
    """The CNN of examples/cnn_example.py (1x12x12, conv-pool x2, 3 classes), trained 5 epochs;
    the slice through one image of each class."""
    sys.path.insert(0, str(ROOT / "examples"))
    from cnn_example import make_model, shapes, train

    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    x, y = shapes(2000, rng)
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    model = make_model()
    train(model, x, y, 5)
    anchors = [x[int(np.flatnonzero(y.numpy() == k)[0])] for k in range(3)]
    return model.eval(), sc.Slice.from_points(*anchors, margin=0.3)


class Residual(nn.Module):
    """``relu(body(x) + short(x))``."""

    def __init__(self, body: nn.Module, short: nn.Module):
        super().__init__()
        self.body, self.short = body, short

    def forward(self, x):
        return F.relu(self.body(x) + self.short(x))


def basic_block(c_in: int, c_out: int, stride: int) -> nn.Module:
    """The ResNet basic block: two 3x3 conv + BN, a 1x1 conv + BN shortcut when the shape changes."""
    body = nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
                         nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out))
    same = stride == 1 and c_in == c_out
    short = nn.Identity() if same else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
    return Residual(body, short)


class ResNet18(nn.Module):
    """ResNet-18 for 3x32x32 inputs (3x3 stem, no max-pool), 10 classes."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        blocks, c = [], 64
        for c_out, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
            blocks += [basic_block(c, c_out, stride), basic_block(c_out, c_out, 1)]
            c = c_out
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(512, 10)

    def forward(self, x):
        x = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def resnet18():
    """ResNet-18, default init, eval; the square of half-width 0.05 around a random image."""
    torch.manual_seed(0)
    return ResNet18().eval(), sc.Slice.around(torch.randn(3, 32, 32), radius=0.05)


CASES = {"w128": w128, "cnn": cnn, "resnet18": resnet18}


def one(case: str, method: str, out: str) -> None:
    """Run one (case, method) and write its result as JSON to ``out`` (.npz for the boundary)."""
    torch.set_num_threads(1)
    sc.partition(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), sc.Slice.box((-1, -1), (1, 1)), progress=False)
    model, sl = CASES[case]()
    start = time.perf_counter()
    if method == "full":
        part = sc.partition(model, sl, progress=False)
        db = part.decision_boundary()
    else:
        db = sc.decision_boundary(model, sl, progress=False, bounds=method)
        part = db.partition
    seconds = time.perf_counter() - start
    np.savez(out, segments=db.segments, classes=db.classes)
    print(json.dumps({"seconds": seconds, "cells": len(part), "exact": int(part.exact.sum()),
                      "segments": len(db), "length": db.length}))


def same(a: str, b: str) -> bool:
    """The boundaries saved in a and b are the same segments (as a set) with the same classes."""
    fa, fb = np.load(a), np.load(b)

    def rows(f):
        s, c = f["segments"], f["classes"]
        swap = (s[:, 0, 0] > s[:, 1, 0]) | ((s[:, 0, 0] == s[:, 1, 0]) & (s[:, 0, 1] > s[:, 1, 1]))
        s = np.where(swap[:, None, None], s[:, ::-1], s).reshape(-1, 4)
        return s[np.lexsort(s.T[::-1])], c[np.lexsort(s.T[::-1])]

    (sa, ca), (sb, cb) = rows(fa), rows(fb)
    if sa.shape != sb.shape:
        return False
    scale = max(1.0, float(np.abs(sa).max(initial=0)))
    return bool(np.allclose(sa, sb, rtol=0, atol=1e-9 * scale) and (ca == cb).all())


def main(argv: list[str]) -> None:
    if argv[:1] == ["--one"]:
        one(*argv[1:4])
        return
    opts = dict(a[2:].split("=", 1) for a in argv if a.startswith("--"))
    cases = [a for a in argv if not a.startswith("--")] or ["w128", "cnn"]
    runs, limit = int(opts.get("runs", 3)), float(opts.get("limit", 600))
    methods = opts.get("methods", "full,zonotope,interval").split(",")
    tmp = Path("/tmp") / f"bf_bench_{int(time.time())}"
    tmp.mkdir(exist_ok=True)
    print(f"{runs} run(s) per entry, fresh process each, 1 thread; seconds: min over runs (all runs listed)")
    print("| case | method | cells | exact regions | segments | length | seconds | runs (s) | vs full |")
    print("|---|---|---|---|---|---|---|---|---|")
    for case in cases:
        base = None
        for method in methods:
            times, res = [], None
            for r in range(runs if method != "interval" else 1):
                path = tmp / f"{case}_{method}.npz"
                try:
                    proc = subprocess.run([sys.executable, __file__, "--one", case, method, str(path)],
                                          capture_output=True, text=True, timeout=limit)
                except subprocess.TimeoutExpired:
                    res = None
                    break
                if proc.returncode:
                    print(proc.stderr[-2000:], file=sys.stderr)
                    res = None
                    break
                res = json.loads(proc.stdout.strip().splitlines()[-1])
                times.append(res["seconds"])
            if res is None:
                print(f"| {case} | {method} | - | - | - | - | > {limit:.0f} (or failed) | | |")
                continue
            t = min(times)
            if method == "full":
                base = (res["cells"], t)
                ratio = ""
            elif base is None:
                ratio = "full did not finish"
            else:
                ok = same(tmp / f"{case}_full.npz", tmp / f"{case}_{method}.npz")
                ratio = f"{base[0] / res['cells']:.1f}x fewer cells, {base[1] / t:.1f}x faster, {'equal' if ok else 'DIFFERENT'}"
            print(f"| {case} | {method} | {res['cells']:,} | {res['exact']:,} | {res['segments']:,} | "
                  f"{res['length']:.6g} | {t:.2f} | {', '.join(f'{x:.2f}' for x in times)} | {ratio} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
