"""splinecam: the exact geometry of piecewise-linear networks on 2-D slices of input space."""

__version__ = "0.1.0"

from .distributed import partition_many
from .dynamics import Recorder, animate, record
from .engine import RegionLimitError
from .layers import partition_by_layer, plot_layers
from .ops import register_op
from .partition import Partition, partition
from .sampling import BoundarySamples
from .slices import Slice
from .stats import DensityMap, density_map, local_complexity
from .study import compare, slice_from_data
from .trace import UnsupportedModelError

__all__ = [
    "BoundarySamples", "DensityMap", "Partition", "Recorder", "RegionLimitError", "Slice", "UnsupportedModelError",
    "__version__", "animate", "compare", "density_map", "local_complexity", "partition", "partition_by_layer", "partition_many",
    "plot_layers", "record", "register_op", "slice_from_data",
]
