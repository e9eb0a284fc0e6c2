"""Optional dependencies: import one, or say which ``pip install splinecam[extra]`` brings it."""

from __future__ import annotations

import importlib


def require(module: str, extra: str, feature: str):
    """Import ``module``; if it is missing raise ImportError naming ``feature`` and the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"{feature} needs the optional package {module.split('.')[0]!r}: pip install 'splinecam[{extra}]'."
        ) from None
