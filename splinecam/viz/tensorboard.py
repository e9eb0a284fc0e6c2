"""TensorBoard logging of partitions: a picture and the scalar statistics at each step.

Works with ``torch.utils.tensorboard.SummaryWriter`` (``pip install
'splinecam[tensorboard]'``) or any writer with ``add_scalar`` and ``add_image``.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..extras import require
from .plot import partition_figure
from ..analysis.stats import stats

__all__ = ["log_partition", "picture", "picture_array", "summary_writer"]

TAG = "splinecam"


def summary_writer(log_dir):
    """A ``torch.utils.tensorboard.SummaryWriter`` writing to ``log_dir``."""
    module = require("torch.utils.tensorboard", "tensorboard", "TensorBoard logging")
    return module.SummaryWriter(log_dir=str(log_dir))


def scalars(part) -> dict[str, float]:
    """The scalar statistics logged for ``part``: every number of :func:`splinecam.analysis.stats.stats`
    (NaN ones left out), and ``edges_layer_<l>`` / ``edge_length_layer_<l>`` per layer (1-based)."""
    values = {}
    for key, value in stats(part).items():
        if isinstance(value, list):
            name = "edges_layer" if key == "edges_per_layer" else "edge_length_layer"
            values.update({f"{name}_{k + 1}": float(v) for k, v in enumerate(value)})
        elif np.isfinite(value):
            values[key] = float(value)
    return values


def picture_array(part, color_by: str = "slope", size: float = 4.0, dpi: int = 100) -> np.ndarray:
    """(H, W, 3) uint8 image of ``part``: its regions and the decision boundary."""
    fig = partition_figure(part, color_by=color_by, width=size, edgecolor="white", linewidth=0.4)
    fig.set_dpi(dpi)
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def log_partition(writer, part, step: int, tag: str = TAG, image: bool = True) -> dict[str, float]:
    """Write ``part``'s scalars (``<tag>/<name>``) and, if ``image``, its picture
    (``<tag>/partition``) at ``step``.  Returns the scalars."""
    values = scalars(part)
    for name, value in values.items():
        writer.add_scalar(f"{tag}/{name}", value, step)
    if image:
        writer.add_image(f"{tag}/partition", picture_array(part), step, dataformats="HWC")
    return values


def picture(part, color_by: str = "slope", size: float = 4.0, dpi: int = 100) -> np.ndarray:
    """Deprecated name of :func:`picture_array` (``notebook.picture`` returns HTML); it goes in
    the next release."""
    warnings.warn("splinecam.viz.tensorboard.picture is now picture_array.", DeprecationWarning, stacklevel=2)
    return picture_array(part, color_by=color_by, size=size, dpi=dpi)
