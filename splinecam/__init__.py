"""splinecam: the exact geometry of piecewise-linear networks on 2-D slices of input space."""

__version__ = "0.1.0"

from .engine import RegionLimitError
from .ops import register_op
from .partition import Partition, partition
from .slices import Slice
from .trace import UnsupportedModelError
from .dynamics import Recorder, animate, record
from .layers import partition_by_layer, plot_layers
from .sampling import BoundarySamples
from .stats import DensityMap, density_map, local_complexity
from .study import compare, slice_from_data

__all__ = ["Partition", "RegionLimitError", "Slice", "UnsupportedModelError", "partition", "register_op", "__version__"]
__all__ += ["BoundarySamples", "DensityMap", "Recorder", "animate", "compare", "density_map", "local_complexity",
            "partition_by_layer", "plot_layers", "record", "slice_from_data"]
