"""The ``splinecam`` command line."""

from __future__ import annotations

import argparse
import sys

from .._version import __version__
from ..viz.plot import COLOR_BY

__all__ = ["main"]


def _demo(args) -> int:
    from .demo import run_demo

    run_demo(args.out, seed=args.seed)
    return 0


def _train_video(args) -> int:
    from .dynamics import train_video

    executor = args.executor
    if executor not in (None, "local"):  # a scheduler address
        from ..run.executors import import_distributed

        executor = import_distributed().Client(executor)
    paths = train_video(args.out, epochs=args.epochs, every=args.every, seed=args.seed, fps=args.fps,
                        executor=executor, tensorboard=args.tensorboard)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def _view(args) -> int:
    from pathlib import Path

    from ..partition import Partition

    out = Path(args.out) if args.out else Path(args.file).with_suffix(".html")
    part = Partition.load(args.file)
    part.to_html(out, color_by=args.color_by, title=args.title or Path(args.file).stem)
    print(f"wrote {out} ({len(part):,} regions, {out.stat().st_size / 1e6:.1f} MB)")
    return 0


class UsageError(Exception):
    """A bad command line; the message says what is wrong, prefixed by the command."""


class _Parser(argparse.ArgumentParser):
    """An argument parser that raises :class:`UsageError` instead of printing the usage block and
    exiting with status 2 (its subcommands' parsers are of this class too)."""

    def error(self, message):
        raise UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


def _integer(least: int):
    """An argparse type: an integer of at least ``least``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < least:
            raise argparse.ArgumentTypeError(f"expected an integer of at least {least}, got {text!r}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="splinecam", description="Exact geometry of piecewise-linear networks on 2-D slices.")
    parser.add_argument("--version", action="version", version=f"splinecam {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train a small MLP on two moons and draw its exact partition")
    demo.add_argument("--out", default="splinecam-demo", help="output folder (default: splinecam-demo)")
    demo.add_argument("--seed", type=_integer(0), default=0)
    demo.set_defaults(func=_demo, parser=demo)
    video = sub.add_parser("train-video", help="train a width-10, depth-5 MLP on two moons and two circles and "
                           "animate its exact partition during training")
    video.add_argument("--out", default="splinecam-train-video", help="output folder (default: splinecam-train-video)")
    video.add_argument("--epochs", type=_integer(1), default=200)
    video.add_argument("--every", type=_integer(1), default=5, help="record the partition every this many epochs")
    video.add_argument("--fps", type=_integer(1), default=8)
    video.add_argument("--seed", type=_integer(0), default=0)
    video.add_argument("--tensorboard", metavar="DIR", help="also log pictures and statistics for TensorBoard to DIR")
    video.add_argument("--executor", help="compute the partitions on Dask: 'local' (a local cluster, one worker per "
                       "core) or a scheduler address such as tcp://host:8786 (default: in this process)")
    video.set_defaults(func=_train_video, parser=video)
    view = sub.add_parser("view", help="write an interactive HTML viewer of a saved partition (.npz from Partition.save)")
    view.add_argument("file", help="partition file written by Partition.save")
    view.add_argument("--out", help="HTML file to write (default: FILE with suffix .html)")
    view.add_argument("--color-by", choices=COLOR_BY, default="random", help="initial colouring (default: random)")
    view.add_argument("--title", help="page title (default: the file name)")
    view.set_defaults(func=_view, parser=view)
    return parser


def main(argv=None) -> int:
    """Run one command; a bad file, folder or argument prints one line on stderr and returns 1."""
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # said by the command's own parser, as its other errors are
            args.parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except UsageError as err:
        print(" ".join(str(err).split()), file=sys.stderr)
        return 1
    try:
        return args.func(args)
    except (OSError, ValueError, RuntimeError, ImportError) as err:
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"splinecam {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
