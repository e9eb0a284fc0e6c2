"""The module paths of splinecam 0.1 (``splinecam.notebook``, ``splinecam.distributed``, ...),
kept for one release: importing one warns (DeprecationWarning) and gives the module at its new
place in the layered packages."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED = {
    "trace": "run.trace", "watch": "run.watch", "engine": "run.engine", "chain": "run.chain",
    "regions": "run.regions", "tiles": "run.tiles", "distributed": "run.executors",
    "boundary": "analysis.boundary", "boundary_first": "analysis.boundary_first", "bounds": "analysis.bounds",
    "stats": "analysis.stats", "sampling": "analysis.sampling", "layers": "analysis.layers",
    "estimate": "analysis.estimate", "plot": "viz.plot", "viewer": "viz.viewer", "notebook": "viz.notebook",
    "frame": "viz.frame", "tensorboard": "viz.tensorboard", "fileio": "io.files", "onnx": "io.onnx",
    "study": "apps.study", "dynamics": "apps.dynamics", "datasets": "apps.datasets", "demo": "apps.demo",
    "cli": "apps.cli",
}


def moved_module(old: str):
    """The module that ``splinecam.<old>`` now is, with a DeprecationWarning."""
    new = f"splinecam.{MOVED[old]}"
    warnings.warn(f"splinecam.{old} is now {new}; the old name goes in the next release.", DeprecationWarning,
                  stacklevel=3)
    return importlib.import_module(new)


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves ``import splinecam.<old>`` to the moved module."""

    def find_spec(self, fullname, path=None, target=None):
        package, _, old = fullname.rpartition(".")
        if package == "splinecam" and old in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        module = moved_module(spec.name.rpartition(".")[2])
        sys.modules[spec.name] = module
        return module

    def exec_module(self, module):
        pass


def install() -> None:
    """Let ``import splinecam.<old>`` find the moved modules (once per process)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
