"""Imports made when first needed: optional dependencies (or which ``pip install splinecam[extra]``
brings one), and the upper layers that the core's convenience methods call."""

from __future__ import annotations

import importlib
import sys

__all__ = ["late", "require"]


def require(module: str, extra: str, feature: str):
    """Import ``module``; if it is missing raise ImportError naming ``feature`` and the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"{feature} needs the optional package {module.split('.')[0]!r}: pip install 'splinecam[{extra}]'."
        ) from None


def late(path: str):
    """``splinecam.<path>`` (e.g. ``"viz.plot.plot_partition"``), imported when first asked for.

    How the core (:class:`~splinecam.Partition`, :class:`~splinecam.Boundary`) reaches analysis
    and presentation code for its convenience methods without importing an upper layer.
    """
    module, _, name = path.rpartition(".")
    return getattr(sys.modules.get(f"splinecam.{module}") or importlib.import_module(f"splinecam.{module}"), name)
