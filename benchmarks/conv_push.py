"""How a convolution's linear part is fastest pushed in float64 on one CPU core, for every
distinct Conv2d of the vision benchmark's networks (ResNet-18 and VGG-11-BN on 3x32x32, the Tiny
ImageNet VGG-16 on 3x64x64) at its input size: torch's own conv, "gemm" (the unfolded inputs of
all samples in one matrix product) and "matrix" (the dense matrix of the whole conv, where
small), each on the same batch of inputs, interleaved, the best of ``--runs`` runs; and the way
``ConvOp.lowering`` picks.  A batch is ``--batch`` samples (the engine pushes the value and two
tangents of some tens of regions at once).
Usage: python -m benchmarks.conv_push [--batch 150] [--runs 5]
"""

from __future__ import annotations

import sys
import time

import torch
from torch import nn

from splinecam.ops import ConvOp
from splinecam.ops.affine import MATRIX_ELEMENTS

from benchmarks.architectures import ResNet18, VGG11BN, tiny_imagenet_vgg


def conv_inputs() -> dict:
    """(name, in_channels, out_channels, kernel, stride, padding, input size) -> the conv, for
    every distinct Conv2d of the three networks at the size its input has."""
    found = {}
    for name, model, shape in [("resnet18", ResNet18(), (3, 32, 32)), ("vgg11bn", VGG11BN(), (3, 32, 32)),
                               ("vgg16tin", tiny_imagenet_vgg(16), (3, 64, 64))]:
        def hook(conv, args, _out, name=name):
            key = (name, conv.in_channels, conv.out_channels, conv.kernel_size[0], conv.stride[0], conv.padding[0],
                   tuple(args[0].shape[2:]))
            found.setdefault(key, conv)
        handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
        with torch.no_grad():
            model.eval()(torch.zeros(1, *shape))
        for h in handles:
            h.remove()
    return found


def best_seconds(fn, runs: int) -> float:
    fn()
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv) -> None:
    opts = dict(zip(argv[::2], argv[1::2]))
    batch, runs = int(opts.get("--batch", 150)), int(opts.get("--runs", 5))
    torch.set_num_threads(1)
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(f"torch {torch.__version__}, 1 thread, float64, CPU, {batch} samples, best of {runs}; load average {load}")
    print("| network | conv | input | torch ms | gemm ms | matrix ms | picked | picked vs torch |")
    print("|---|---|---|---:|---:|---:|---|---:|")
    for (name, cin, cout, k, s, p, size), conv in conv_inputs().items():
        op = ConvOp(conv.double())
        x = torch.randn(batch, cin, *size, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        ways = ["torch", "gemm"]
        if cout * cin * size[0] * size[1] * torch.Size(op.out_size(size)).numel() <= MATRIX_ELEMENTS:
            ways.append("matrix")
        ms = {}
        for _ in range(runs):  # interleaved: one run of each way per round
            for way in ways:
                ms[way] = min(ms.get(way, float("inf")), 1e3 * best_seconds(lambda: op.lowered(x, way), 1))
        pick = op.lowering(size)
        cells = " | ".join(f"{ms[w]:.1f}" if w in ms else "-" for w in ("torch", "gemm", "matrix"))
        print(f"| {name} | {cin}->{cout} k{k} s{s} p{p} | {size[0]}x{size[1]} | {cells} | {pick} | "
              f"{ms['torch'] / ms[pick]:.2f}x |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
