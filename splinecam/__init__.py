"""splinecam: the exact geometry of piecewise-linear networks on 2-D slices of input space."""

__version__ = "0.1.0"

from .analysis import PlanarMesh, match_regions
from .boundary import Boundary
from .boundary_first import decision_boundary, level_set
from .distributed import partition_many
from .dynamics import Recorder, animate, record
from .estimate import Estimate, estimate
from .layers import partition_by_layer, plot_layers
from .onnx import load_onnx
from .ops import register_op, unregister_op
from .partition import Partition, partition
from .regions import LayerInfo, RegionArrays
from .sampling import BoundarySamples, VerifyReport
from .slices import Slice
from .stats import DensityMap, density_map, local_complexity
from .study import compare, slice_from_data
from .trace import UnsupportedModelError
from .watch import RegionLimitError, StoppedEarly, TimeLimitError

__all__ = [
    "Boundary", "BoundarySamples", "PlanarMesh", "DensityMap", "Estimate", "LayerInfo", "Partition", "Recorder", "RegionArrays",
    "RegionLimitError", "Slice", "StoppedEarly", "TimeLimitError", "UnsupportedModelError", "VerifyReport",
    "__version__", "animate", "compare", "decision_boundary", "density_map", "estimate", "level_set", "load_onnx",
    "local_complexity", "match_regions", "partition", "partition_by_layer", "partition_many", "plot_layers", "record", "register_op",
    "slice_from_data", "unregister_op",
]
