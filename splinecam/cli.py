"""The ``splinecam`` command line."""

from __future__ import annotations

import argparse
import sys

from . import __version__


def _demo(args) -> int:
    from .demo import run_demo

    run_demo(args.out, seed=args.seed)
    return 0


def _train_video(args) -> int:
    from .dynamics import train_video

    paths = train_video(args.out, epochs=args.epochs, every=args.every, seed=args.seed, fps=args.fps)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="splinecam", description="Exact geometry of piecewise-linear networks on 2-D slices.")
    parser.add_argument("--version", action="version", version=f"splinecam {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train a small MLP on two moons and draw its exact partition")
    demo.add_argument("--out", default="splinecam-demo", help="output folder (default: splinecam-demo)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)
    video = sub.add_parser("train-video", help="train a width-10, depth-5 MLP on two moons and two circles and "
                           "animate its exact partition during training")
    video.add_argument("--out", default="splinecam-train-video", help="output folder (default: splinecam-train-video)")
    video.add_argument("--epochs", type=int, default=200)
    video.add_argument("--every", type=int, default=5, help="record the partition every this many epochs")
    video.add_argument("--fps", type=int, default=8)
    video.add_argument("--seed", type=int, default=0)
    video.set_defaults(func=_train_video)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
