"""What the partition-time snapshot of the user's model (for an independent ``verify``) costs on
the fast path: the small SDF case of benchmarks/peers.py (2-50x2-1 on [-0.5, 0.5]^2).

Each run is a fresh process that times, interleaved, ``sc.partition`` as it is and with the
snapshot replaced by nothing (``frozen`` patched out), plus the snapshot call alone.  Prints
medians over all calls and their ratio.

Usage: python benchmarks/verify_snapshot.py [--runs=5] [--calls=15]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time


def worker(calls: int) -> dict:
    import importlib

    import torch

    import splinecam as sc
    from peers import trained_sdf

    torch.set_num_threads(1)
    part_mod = importlib.import_module("splinecam.partition")
    model, sl = trained_sdf([2, 50, 50, 1], seed=3), sc.Slice.box((-0.5, -0.5), (0.5, 0.5))
    real = part_mod.frozen
    sc.partition(model, sl, progress=False)  # warm
    out = {"with": [], "without": [], "snapshot": []}
    for i in range(calls):
        for kind in (("with", "without") if i % 2 == 0 else ("without", "with")):
            part_mod.frozen = real if kind == "with" else (lambda *a: None)
            t = time.perf_counter()
            n = len(sc.partition(model, sl, progress=False))
            out[kind].append(time.perf_counter() - t)
        part_mod.frozen = real
        t = time.perf_counter()
        real(model, torch.float64, "cpu", sl.input_shape)
        out["snapshot"].append(time.perf_counter() - t)
    out["regions"] = n
    return out


def main(argv: list[str]) -> None:
    runs = int(next((a.split("=")[1] for a in argv if a.startswith("--runs=")), 5))
    calls = int(next((a.split("=")[1] for a in argv if a.startswith("--calls=")), 15))
    merged: dict = {"with": [], "without": [], "snapshot": []}
    for _ in range(runs):
        res = subprocess.run([sys.executable, __file__, f"--worker={calls}"], capture_output=True, text=True,
                             check=True)
        got = json.loads(res.stdout.splitlines()[-1])
        for k in merged:
            merged[k] += got[k]
    med = {k: statistics.median(v) for k, v in merged.items()}
    print(f"SDF 2-50x2-1 on [-0.5,0.5]^2, {got['regions']} regions; {runs} fresh processes x {calls} interleaved calls")
    print(f"{'partition with snapshot':28} {med['with'] * 1e3:8.2f} ms")
    print(f"{'partition without snapshot':28} {med['without'] * 1e3:8.2f} ms")
    print(f"{'snapshot alone':28} {med['snapshot'] * 1e3:8.3f} ms")
    print(f"ratio with / without: {med['with'] / med['without']:.3f}; snapshot / partition: "
          f"{med['snapshot'] / med['with']:.4f}")


if __name__ == "__main__":
    arg = next((a for a in sys.argv[1:] if a.startswith("--worker=")), None)
    if arg:
        sys.path.insert(0, __file__.rsplit("/", 1)[0])
        print(json.dumps(worker(int(arg.split("=")[1]))))
    else:
        main(sys.argv[1:])
