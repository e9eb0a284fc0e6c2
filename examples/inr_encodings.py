"""How a periodic input encoding changes an implicit neural representation's partition.

Fits scikit-image's ``camera`` (downsampled) as an image INR ``(u, v) -> intensity`` three times,
with the same ReLU MLP, the same steps and the same seed: on raw coordinates, on a triangle-wave
positional encoding (``sc.nn.PositionalEncoding(kind="triangle")``, piecewise-linear: its
partition is exact) and on the usual sine encoding (``kind="sin"``).  Draws, side by side, the
fit, the partition, the density of regions and the level sets of each.

The sine model's regions are bounded by curves: its panel shows the certified partition
(``sc.partition``, boundary polylines within ``--tol`` of the true curves) and its region density;
its level sets are drawn sampled on a grid (marked as such: ``part.level_set(value)`` certifies one
but costs a whole certificate run).

    python examples/inr_encodings.py [--size 48] [--steps 800] [--tol 1e-4] [--out docs/inr_encodings.png]
"""

from __future__ import annotations

import argparse
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402
from torch import nn  # noqa: E402

import splinecam as sc  # noqa: E402
from splinecam.extras import require  # noqa: E402

LEVELS = (0.25, 0.45, 0.65)
LEVEL_COLORS = ("#1b9e77", "#d95f02", "#7570b3")
ZOOM = (-0.05, 0.45, 0.08)  # the inset: the camera man's head (centre u, v; half-size)
KINDS = (("raw coordinates", None), ("triangle encoding", "triangle"), ("sine encoding", "sin"))


def target(size: int) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    """The camera image (size, size) in [0, 1] (row 0 at the top), the pixel centres (size**2, 2) as
    (u, v) in [-1, 1]^2 (v up) and the intensities (size**2, 1)."""
    data = require("skimage.data", "examples", "examples/inr_encodings.py")
    transform = require("skimage.transform", "examples", "examples/inr_encodings.py")
    img = transform.resize(data.camera().astype(np.float64) / 255.0, (size, size), anti_aliasing=True)
    t = (np.arange(size) + 0.5) / size * 2 - 1
    uu, vv = np.meshgrid(t, -t)
    uv = torch.tensor(np.stack([uu.ravel(), vv.ravel()], 1), dtype=torch.float32)
    return img, uv, torch.tensor(img.reshape(-1, 1), dtype=torch.float32)


def inr(kind: str | None, width: int, depth: int, frequencies: int, seed: int) -> nn.Sequential:
    """The same ReLU MLP (``depth`` hidden layers of ``width``) on raw or encoded coordinates."""
    torch.manual_seed(seed)
    enc = [] if kind is None else [sc.nn.PositionalEncoding(2, frequencies, kind=kind)]
    d = 2 if kind is None else enc[0].out_features
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.ReLU()]
        d = width
    return nn.Sequential(*enc, *layers, nn.Linear(d, 1))


def fit(model: nn.Module, uv: torch.Tensor, y: torch.Tensor, steps: int, lr: float) -> float:
    """Full-batch Adam on the mean squared error; returns the PSNR (dB) of the fit."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        opt.zero_grad()
        loss = ((model(uv) - y) ** 2).mean()
        loss.backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        mse = float(((model(uv) - y) ** 2).mean())
    return 10 * np.log10(1.0 / mse)


def exact_partition(model: nn.Module, sl: sc.Slice, timeout: float, tol: float):
    """The partition (certified to ``tol`` for a sine encoding), or the reason there is none."""
    try:
        return sc.partition(model.eval(), sl, progress=False, timeout=timeout, tol=tol), None
    except sc.UnsupportedModelError as e:
        return None, str(e).splitlines()[1].strip(" -")
    except sc.StoppedEarly as e:
        return e.partial, f"stopped at the time limit ({timeout} s): partial"


def sampled(model: nn.Module, n: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.linspace(-1, 1, n)
    uu, vv = np.meshgrid(t, t)
    with torch.no_grad():
        f = model(torch.tensor(np.stack([uu.ravel(), vv.ravel()], 1), dtype=torch.float32)).numpy()
    return uu, vv, f.reshape(n, n)


def region_areas(part) -> np.ndarray:
    """The areas of the regions (a curved partition's rows are pieces of its regions)."""
    if not getattr(part, "curved", False):
        return part.areas
    known = part.region >= 0
    return np.bincount(part.region[known], weights=part.areas[known], minlength=part.n_regions)


def draw_partition(part, ax, zoom=ZOOM) -> None:
    """The regions over the slice, and a zoomed inset of the square ``zoom`` (centre u, v, half-size)."""
    part.plot(ax=ax, boundary=False, legend=False, anchors=False, axis_labels=None)
    curved = getattr(part, "curved", False)  # a curved partition's rows are pieces of its regions
    reasons = sorted(set(part.uncertified_reasons)) if curved else []  # why cells are uncertified, if any
    ax.set_title(f"{part.n_regions if curved else len(part):,} regions" + (" (certified" if curved else "")
                 + (f"; {len(part.uncertified)} cells not: {reasons[0].split(' (')[0]})" if reasons
                    else ")" if curved else "") + ("" if part.complete else " (partial)"), fontsize=9)
    u, v, h = zoom
    inset = ax.inset_axes([0.6, 0.02, 0.38, 0.38])
    part.plot(ax=inset, boundary=False, legend=False, anchors=False, axis_labels=None, linewidth=0.6)
    inset.set(xlim=(u - h, u + h), ylim=(v - h, v + h), xticks=[], yticks=[], xlabel="", ylabel="", title="")
    ax.indicate_inset_zoom(inset, edgecolor="black")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=48, help="image side in pixels (default 48)")
    ap.add_argument("--steps", type=int, default=800, help="Adam steps per model (default 800)")
    ap.add_argument("--width", type=int, default=32, help="hidden units per layer (default 32)")
    ap.add_argument("--depth", type=int, default=2, help="hidden layers (default 2)")
    ap.add_argument("--frequencies", type=int, default=4, help="encoding frequencies 2^k pi, k < F (default 4)")
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per partition (default 900)")
    ap.add_argument("--tol", type=float, default=1e-4,
                    help="distance of the sine model's polylines from its true curves (default 1e-4)")
    ap.add_argument("--out", default="inr_encodings.png")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)  # small batches: more threads only wait on each other (and on a busy machine)

    start = time.perf_counter()
    img, uv, y = target(args.size)
    sl = sc.Slice.box((-1, -1), (1, 1))
    results = []
    for title, kind in KINDS:
        model = inr(kind, args.width, args.depth, args.frequencies, args.seed)
        t0 = time.perf_counter()
        psnr = fit(model, uv, y, args.steps, args.lr)
        t1 = time.perf_counter()
        part, note = exact_partition(model, sl, args.timeout, args.tol)
        t2 = time.perf_counter()
        count = "no partition" if part is None else f"{region_areas(part).size:,} regions" + (
            f" ({len(part):,} pieces, {len(part.uncertified):,} uncertified cells)" if getattr(part, "curved", False)
            else "")
        print(f"{title:18s} PSNR {psnr:5.2f} dB  fit {t1 - t0:5.1f} s  {count}  partition {t2 - t1:5.1f} s"
              + (f"  [{note}]" if note else ""))
        for cell, reason in zip(part.uncertified, part.uncertified_reasons) if getattr(part, "curved", False) else ():
            print(f"  uncertified cell {np.round(cell, 6).tolist()}: {reason}")
        results.append((title, model, psnr, part, note))

    maps = [None if part is None else sc.density_map(part, 300) for *_, part, _ in results]
    finite = np.concatenate([m.values[np.isfinite(m.values)] for m in maps if m is not None])
    norm = LogNorm(vmin=np.percentile(finite, 1), vmax=np.percentile(finite, 99.9))

    fig, axes = plt.subplots(4, 3, figsize=(10, 13.6), layout="constrained")
    for col, ((title, model, psnr, part, note), dmap) in enumerate(zip(results, maps)):
        uu, vv, f = sampled(model)
        axes[0, col].imshow(f, extent=(-1, 1, -1, 1), origin="lower", cmap="gray", vmin=0, vmax=1)
        axes[0, col].set_title(f"{title}\nfit: PSNR {psnr:.1f} dB")
        if part is not None:
            draw_partition(part, axes[1, col])
            im = dmap.plot(ax=axes[2, col], colorbar=False, norm=norm)
            axes[2, col].set_title(f"region density (median {np.median(1 / region_areas(part)):,.0f})")
            if getattr(part, "curved", False):  # certified: one level set costs a whole certificate run
                axes[3, col].contour(uu, vv, f, levels=LEVELS, colors=LEVEL_COLORS, linewidths=1.2)
                axes[3, col].set_title("level sets (sampled, not certified)")
            else:
                for level, color in zip(LEVELS, LEVEL_COLORS):
                    part.level_set(level).plot(ax=axes[3, col], colors=color, linewidths=1.2)
                axes[3, col].set_title("level sets (exact)")
        else:
            for row, what in ((1, "partition"), (2, "region density")):
                axes[row, col].text(0.5, 0.5, "needs the certified\npartition of sine\nencodings\n(not in this build)",
                                    ha="center", va="center", color="0.4", transform=axes[row, col].transAxes)
                axes[row, col].set_title(what)
            axes[3, col].contour(uu, vv, f, levels=LEVELS, colors=LEVEL_COLORS, linewidths=1.2)
            axes[3, col].set_title("level sets (sampled, not exact)")
        for ax in axes[:, col]:
            ax.set(xlim=(-1, 1), ylim=(-1, 1), aspect="equal", xticks=[], yticks=[], xlabel="", ylabel="")
    fig.colorbar(im, ax=axes[2, :], shrink=0.9, label="regions per unit area")
    axes[3, 0].legend(handles=[plt.Line2D([], [], color=c, label=f"f = {t}") for t, c in zip(LEVELS, LEVEL_COLORS)],
                      loc="lower left", fontsize=8, framealpha=0.9)
    fig.suptitle(f"camera ({args.size}\u00b2 px) as an INR: one ReLU MLP ({args.depth} x {args.width}), "
                 f"{args.steps} Adam steps, seed {args.seed}")
    fig.savefig(args.out, dpi=150)
    print(f"wrote {args.out} (figure {time.perf_counter() - t2:.1f} s; all {time.perf_counter() - start:.1f} s)")
    if any(part is None for *_, part, _ in results):
        print("the sine encoding's certified partition is not in this build: its panels show the fit and sampled "
              "level sets only")


if __name__ == "__main__":
    main()
