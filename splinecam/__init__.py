"""splinecam: the exact geometry of piecewise-linear networks on 2-D slices of input space."""

__version__ = "0.1.0"

from . import _moved

from .analysis.boundary import Boundary
from .analysis.boundary_first import decision_boundary, level_set
from .run.executors import partition_many
from .apps.dynamics import Recorder, animate, record
from .analysis.estimate import Estimate, estimate
from .analysis.layers import partition_by_layer, plot_layers
from .io.onnx import load_onnx
from .ops import register_op, unregister_op
from .partition import Partition, partition
from .run.regions import LayerInfo, RegionArrays
from .analysis.sampling import BoundarySamples, VerifyReport
from .slices import Slice
from .analysis.stats import DensityMap, density_map, local_complexity
from .apps.study import compare, slice_from_data

__all__ = [
    "Boundary", "BoundarySamples", "DensityMap", "Estimate", "LayerInfo", "Partition", "Recorder", "RegionArrays",
    "RegionLimitError", "Slice", "StoppedEarly", "TimeLimitError", "UnsupportedModelError", "VerifyReport",
    "__version__", "animate", "compare", "decision_boundary", "density_map", "estimate", "level_set", "load_onnx",
    "local_complexity", "partition", "partition_by_layer", "partition_many", "plot_layers", "record", "register_op",
    "slice_from_data", "unregister_op",
]


_moved.install()


def __getattr__(name):
    """``splinecam.<old module>`` of 0.1 (e.g. ``splinecam.notebook``): the moved module, with a warning."""
    if name in _moved.MOVED:
        return _moved.moved_module(name)
    raise AttributeError(f"module 'splinecam' has no attribute {name!r}")
