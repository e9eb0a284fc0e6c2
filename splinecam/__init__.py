"""splinecam: the exact geometry of piecewise-linear networks on 2-D slices (and 1-D paths) of input space.

The public API, by layer: slices, paths and the partition (``Slice``, ``Path``, ``partition``,
``Partition``, ``PathPartition``), integrated gradients,
analysis (boundaries, boundary-first, statistics, estimates, per-layer partitions), pictures,
files (ONNX), studies and training videos, ops (``register_op``) and the errors.
"""

from . import _moved, nn
from ._version import __version__
from .analysis.boundary import Boundary, ClassCells
from .analysis.attribution import integrated_gradients
from .analysis.boundary_first import decision_boundary, level_set
from .analysis.estimate import Estimate, estimate
from .analysis.layers import partition_by_layer
from .analysis.match import RegionMatch, match_regions
from .analysis.mesh import PlanarMesh
from .analysis.sampling import BoundarySamples, VerifyReport
from .analysis.stats import DensityMap, density_map, local_complexity
from .analysis.volumes import LevelSetMesh, level_set_mesh
from .apps.dynamics import Recorder, animate, record
from .apps.study import compare, slice_from_data
from .errors import (
    InvalidPartitionFile,
    RegionLimitError,
    StoppedEarly,
    TaskError,
    TimeLimitError,
    UnsupportedModelError,
)
from .io.onnx import load_onnx
from .ops import register_op, unregister_op
from .partition import CurvedPartition, Partition, partition, partition_many
from .path_partition import PathPartition
from .paths import Path
from .run.executors import close_local_cluster
from .run.regions import LayerInfo, RegionArrays
from .slices import Slice
from .viz.plot import plot_layers
from .volume_partition import VolumePartition
from .volumes import Volume

__all__ = [
    "Boundary", "BoundarySamples", "ClassCells", "CurvedPartition", "DensityMap", "Estimate", "InvalidPartitionFile", "LayerInfo",
    "LevelSetMesh", "Partition", "Path", "PathPartition", "PlanarMesh",
    "Recorder", "RegionArrays", "RegionMatch", "RegionLimitError", "Slice", "StoppedEarly", "TaskError", "TimeLimitError",
    "UnsupportedModelError", "VerifyReport", "Volume", "VolumePartition", "__version__", "animate", "close_local_cluster", "compare",
    "decision_boundary", "density_map", "estimate", "integrated_gradients", "level_set", "level_set_mesh", "load_onnx", "local_complexity",
    "match_regions", "nn", "partition", "partition_by_layer", "partition_many",
    "plot_layers", "record", "register_op", "slice_from_data", "unregister_op",
]


_moved.install()


def __getattr__(name):
    """``splinecam.<old module>`` of 0.1 (e.g. ``splinecam.notebook``): the moved module, with a warning."""
    if name in _moved.MOVED:
        return _moved.moved_module(name)
    raise AttributeError(f"module 'splinecam' has no attribute {name!r}")
