"""What a certified (curved) partition costs: ``python -m benchmarks.curved [--baseline DIR] [--runs N]``.

For a Fourier-feature MLP (``sc.nn.FourierFeatures(B, kind="sin")``, B ~ N(0, 1), seeded) of a
few widths, on the box [-1, 1]^2, at two tolerances: seconds (wall, and the process's CPU time,
steadier on a shared machine), pieces, regions, uncertified cells and the slice share they cover.  Each run is a fresh process with a time limit (``--limit``,
default 300 s; a run it stops shows ``>limit`` and the share of the slice it finished).  With
``--baseline DIR`` (another checkout of splinecam, e.g. the main branch) each configuration also
runs on it, the two interleaved (this, baseline, this, ...), ``--runs`` times each (default 1),
and the table gives the medians and their ratios (baseline / this, where both finished)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CAMERA = "camera"  # the sine model of examples/inr_encodings.py, trained as there (its default flags)
CONFIGS = [((8,), 4, 1e-4), ((8,), 4, 1e-6), ((8, 8), 4, 1e-4), ((16, 16), 8, 1e-4), (CAMERA, 4, 1e-4)]


def camera_model(frequencies: int):
    """The example's sine INR of the camera image, fitted with its defaults (deterministic)."""
    import torch

    from examples.inr_encodings import fit, inr, target

    torch.set_num_threads(1)
    img, uv, y = target(48)
    model = inr("sin", 32, 2, frequencies, 0)
    fit(model, uv, y, 800, 5e-3)
    return model.eval()


def one(widths, features, tol, limit) -> dict:
    import time

    import torch
    from torch import nn

    import splinecam as sc

    if widths == CAMERA:
        model = camera_model(features)
    else:
        gen = torch.Generator().manual_seed(0)
        layers, width = [sc.nn.FourierFeatures(torch.randn(features, 2, generator=gen) * 0.5, kind="sin")], 2 * features
        torch.manual_seed(0)  # the same weights in every process
        for w in widths:
            layers += [nn.Linear(width, w), nn.ReLU()]
            width = w
        model = nn.Sequential(*layers, nn.Linear(width, 1))
    sl = sc.Slice.box((-1, -1), (1, 1))
    start, cpu = time.perf_counter(), time.process_time()
    try:
        part, done = sc.partition(model, sl, progress=False, tol=tol, timeout=limit), True
    except sc.StoppedEarly as err:
        part, done = err.partial, False
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    cells = part.uncertified
    return dict(seconds=seconds, cpu=cpu, done=done, share=float(part.areas.sum() / sl.area), pieces=len(part),
                regions=part.n_regions, uncertified=len(cells),
                uncertified_area=float(((cells[:, 2:] - cells[:, :2]).prod(1)).sum() / sl.area) if len(cells) else 0.0)


def run(root: Path, widths, features, tol, limit) -> dict:
    """One run in a fresh process with ``root`` first on the path."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, __file__, "--one", json.dumps([widths, features, tol, limit])],
                         capture_output=True, text=True, check=True, env=env, cwd=root)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cell(results: list, limit: float, key: str = "seconds") -> tuple[str, float | None]:
    """The median of ``key`` as text (``>limit (share)`` where a run stopped) and as a number (None)."""
    if all(r["done"] for r in results):
        seconds = statistics.median(r[key] for r in results)
        return f"{seconds:.2f}", seconds
    return f">{limit:g} ({min(r['share'] for r in results):.0%})", None


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, help="another splinecam checkout to compare with")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--limit", type=float, default=300.0, help="seconds per run (default 300)")
    ap.add_argument("--rows", help="the rows to run, e.g. 0,4 (default all; row 4 is the example's camera INR, "
                                   "4 frequencies as (x2) features, which needs scikit-image)")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # one run, in this process: [widths, features, tol, limit]
    args = ap.parse_args(argv)
    if args.one:
        widths, features, tol, limit = json.loads(args.one)
        print(json.dumps(one(widths if widths == CAMERA else tuple(widths), features, tol, limit)))
        return
    head = "| widths | features (x2) | tol | seconds | CPU seconds | pieces | regions | uncertified cells | their share |"
    print(head + (" baseline seconds | baseline CPU seconds | baseline uncertified cells | ratio | CPU ratio |"
                  if args.baseline else ""))
    print("|---" * (9 + 5 * bool(args.baseline)) + "|")
    rows = CONFIGS if args.rows is None else [CONFIGS[int(k)] for k in args.rows.split(",")]
    for widths, features, tol in rows:
        mine, base = [], []
        for _ in range(args.runs):
            mine.append(run(ROOT, widths, features, tol, args.limit))
            if args.baseline:
                base.append(run(args.baseline.resolve(), widths, features, tol, args.limit))
        (text, seconds), (cpu_text, cpu) = cell(mine, args.limit), cell(mine, args.limit, "cpu")
        last = mine[-1]
        row = (f"| {widths} | {features} | {tol:g} | {text} | {cpu_text} | {last['pieces']:,} | {last['regions']:,} | "
               f"{last['uncertified']:,} | {last['uncertified_area']:.1e} |")
        if args.baseline:
            (base_text, base_seconds), (base_cpu_text, base_cpu) = cell(base, args.limit), cell(base, args.limit, "cpu")
            ratio = f"{base_seconds / seconds:.2f}" if seconds and base_seconds else "-"
            cpu_ratio = f"{base_cpu / cpu:.2f}" if cpu and base_cpu else "-"
            row += f" {base_text} | {base_cpu_text} | {base[-1]['uncertified']:,} | {ratio} | {cpu_ratio} |"
        print(row, flush=True)


if __name__ == "__main__":
    main()
