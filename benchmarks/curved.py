"""What a certified (curved) partition costs: ``python -m benchmarks.curved``.

For a Fourier-feature MLP (``sc.nn.FourierFeatures(B, kind="sin")``, B ~ N(0, 1), seeded) of a
few widths, on the box [-1, 1]^2, at two tolerances: seconds, pieces, regions, uncertified cells
and the slice share they cover.  Each row is one run in a fresh process (one run per row: a
table of costs, not a comparison)."""

from __future__ import annotations

import json
import subprocess
import sys

CONFIGS = [((8,), 4, 1e-4), ((8,), 4, 1e-6), ((8, 8), 4, 1e-4), ((16, 16), 8, 1e-4)]


def one(widths, features, tol) -> dict:
    import time

    import torch
    from torch import nn

    import splinecam as sc

    gen = torch.Generator().manual_seed(0)
    layers, width = [sc.nn.FourierFeatures(torch.randn(features, 2, generator=gen) * 0.5, kind="sin")], 2 * features
    for w in widths:
        layers += [nn.Linear(width, w), nn.ReLU()]
        width = w
    torch.manual_seed(0)
    model = nn.Sequential(*layers, nn.Linear(width, 1))
    sl = sc.Slice.box((-1, -1), (1, 1))
    start = time.perf_counter()
    part = sc.partition(model, sl, progress=False, tol=tol)
    seconds = time.perf_counter() - start
    cells = part.uncertified
    return dict(seconds=seconds, pieces=len(part), regions=part.n_regions, uncertified=len(cells),
                uncertified_area=float(((cells[:, 2:] - cells[:, :2]).prod(1)).sum() / sl.area) if len(cells) else 0.0)


def main() -> None:
    print("| widths | features (x2) | tol | seconds | pieces | regions | uncertified cells | their share of the slice |")
    print("|---|---|---|---|---|---|---|---|")
    for widths, features, tol in CONFIGS:
        code = f"import json; from benchmarks.curved import one; print(json.dumps(one({widths!r}, {features}, {tol})))"
        out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                        check=True).stdout.strip().splitlines()[-1])
        print(f"| {widths} | {features} | {tol:g} | {out['seconds']:.2f} | {out['pieces']:,} | {out['regions']:,} | "
              f"{out['uncertified']:,} | {out['uncertified_area']:.1e} |")


if __name__ == "__main__":
    main()
