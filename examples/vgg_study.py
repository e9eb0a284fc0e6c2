"""The SplineCam paper's study of a VGG's linear regions: slices around test samples, and the
distributions of their region counts, region areas and region eccentricities.

    python examples/vgg_study.py [--data FOLDER] [--checkpoint MODEL.pt ...] [--slices 8]
                                 [--radius 0.3] [--size 16] [--executor local] [--out vgg_study.png]

--data: a folder of class subfolders of images (torchvision's ImageFolder layout, e.g. Tiny
ImageNet's images sorted by class), read with PIL, resized to --size x --size RGB, scaled to
[0, 1]; every fifth image of a class is a test sample.  Without it: scikit-learn's digits (8x8),
upsampled to --size x --size, three channels.
--checkpoint: a model saved whole with ``torch.save(model, path)`` that takes (N, 3, size, size);
give several to compare them (the paper: with and without augmentation).  Without one, a small
VGG-style network (conv + BN + ReLU blocks, average pools, no conv bias, first conv of stride 2,
as in the paper's Tiny ImageNet VGGs) is trained here for a few seconds at a fixed seed.
Each slice is ``Slice.around(test sample, radius)``; --executor local runs the slices on this
machine's Dask cluster (one worker per core).  Prints one line per slice and a summary, and
saves a figure: one slice's partition and the three distributions.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import splinecam as sc  # noqa: E402
from splinecam.analysis.stats import eccentricities  # noqa: E402

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def image_folder(root: Path, size: int, per_class: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(N, 3, size, size) float32 images in [0, 1], their labels and the class names of an
    ImageFolder-style ``root`` (at most ``per_class`` images of each class, in name order)."""
    from PIL import Image

    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise SystemExit(f"{root} has no class subfolders; pass a folder laid out as root/<class>/<image>.")
    images, labels = [], []
    for label, name in enumerate(classes):
        files = sorted(p for p in (root / name).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:per_class]
        for path in files:
            with Image.open(path) as img:
                rgb = img.convert("RGB").resize((size, size), Image.BILINEAR)
            images.append(np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1) / 255.0)
            labels.append(label)
    if not images:
        raise SystemExit(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found under {root}.")
    return np.stack(images), np.asarray(labels), classes


def digits(size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """scikit-learn's 1,797 digits, upsampled to (N, 3, size, size) in [0, 1]."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SystemExit("without --data this example uses scikit-learn's digits: pip install scikit-learn") from None
    data = load_digits()
    x = torch.as_tensor(data.images, dtype=torch.float32)[:, None] / 16.0
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)
    return x.numpy(), data.target, [str(c) for c in range(10)]


def small_vgg(size: int, classes: int) -> nn.Sequential:
    """Two conv + BN + ReLU blocks each followed by a 2x2 average pool (the first conv of stride
    2, no conv bias), then 64 hidden units and the classes."""
    side = size // 8
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(16, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(32 * side * side, 64), nn.ReLU(), nn.Linear(64, classes),
    )


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, seed: int = 0) -> nn.Module:
    """Adam, batches of 64, a fixed seed; returns the model in eval mode."""
    torch.manual_seed(seed)
    X, Y = torch.as_tensor(x), torch.as_tensor(y, dtype=torch.long)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(X)).split(64):
            opt.zero_grad()
            F.cross_entropy(model(X[idx]), Y[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        print(f"trained {epochs} epochs: training accuracy {(model(X).argmax(1) == Y).float().mean():.1%}")
    return model


def study(model: nn.Module, samples: np.ndarray, radius: float, executor) -> list[sc.Partition]:
    """The partitions of the slices around ``samples`` (one a task on ``executor``)."""
    slices = [sc.Slice.around(torch.as_tensor(s, dtype=torch.float64), radius=radius, seed=i)
              for i, s in enumerate(samples)]
    return sc.partition_many(model, slices, executor=executor, progress=True)


def summary(name: str, parts: list[sc.Partition]) -> dict:
    """Region counts per slice; areas (as shares of the slice) and eccentricities of all regions."""
    counts = np.array([len(p) for p in parts])
    areas = np.concatenate([p.areas / p.slice.area for p in parts])
    ecc = np.concatenate([eccentricities(p) for p in parts])
    for i, p in enumerate(parts):
        print(f"  {name} slice {i}: {len(p):,} regions in {p.seconds:.1f} s")
    print(f"{name}: regions per slice median {np.median(counts):.0f} (min {counts.min()}, max {counts.max()}); "
          f"region area median {np.median(areas):.2e} of the slice; eccentricity mean {ecc.mean():.3f}")
    return {"counts": counts, "areas": areas, "eccentricity": ecc}


def figure(results: dict, example: sc.Partition, path: str) -> None:
    fig, axes = plt.subplots(1, 4, figsize=(17, 4))
    example.plot(ax=axes[0], color_by="class")
    axes[0].set_title(f"slice 0 of {next(iter(results))}: {len(example):,} regions")
    for name, r in results.items():
        axes[1].hist(r["counts"], bins=min(20, len(r["counts"])), alpha=0.6, label=name)
        axes[2].hist(np.log10(r["areas"]), bins=40, alpha=0.6, density=True, label=name)
        axes[3].hist(r["eccentricity"], bins=40, range=(0, 1), alpha=0.6, density=True, label=name)
    for ax, title in zip(axes[1:], ["regions per slice", "log10 region area (share of the slice)", "region eccentricity"]):
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"saved {path}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="ImageFolder-style folder (default: scikit-learn's digits)")
    parser.add_argument("--checkpoint", type=Path, action="append", help="a model saved with torch.save(model, path)")
    parser.add_argument("--slices", type=int, default=8, help="test samples to slice around (default 8)")
    parser.add_argument("--radius", type=float, default=0.3, help="radius of each slice (default 0.3)")
    parser.add_argument("--size", type=int, default=16, help="image side (default 16)")
    parser.add_argument("--per-class", type=int, default=200, help="images read per class of --data (default 200)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs of the model trained without --checkpoint")
    parser.add_argument("--executor", choices=["local"], help="run the slices on this machine's Dask cluster")
    parser.add_argument("--out", default="vgg_study.png")
    args = parser.parse_args(argv)

    x, y, classes = image_folder(args.data, args.size, args.per_class) if args.data else digits(args.size)
    test = np.arange(len(x)) % 5 == 0
    print(f"{len(x):,} images of {len(classes)} classes, {args.size}x{args.size}; {test.sum():,} test samples")
    if args.checkpoint:
        models = {p.stem: torch.load(p, weights_only=False).eval() for p in args.checkpoint}
    else:
        t0 = time.perf_counter()
        models = {"small VGG": train(small_vgg(args.size, len(classes)), x[~test], y[~test], args.epochs)}
        print(f"  in {time.perf_counter() - t0:.1f} s")
    samples = x[test][: args.slices]
    results, example = {}, None
    for name, model in models.items():
        t0 = time.perf_counter()
        parts = study(model, samples, args.radius, args.executor)
        print(f"{name}: {len(parts)} slices in {time.perf_counter() - t0:.1f} s")
        results[name] = summary(name, parts)
        example = example or parts[0]
    figure(results, example, args.out)
    if args.executor == "local":
        sc.close_local_cluster()


if __name__ == "__main__":
    main()
