"""splinecam: the exact geometry of piecewise-linear networks on 2-D slices of input space."""

__version__ = "0.1.0"

from .engine import RegionLimitError
from .ops import register_op
from .partition import Partition, partition
from .slices import Slice
from .trace import UnsupportedModelError

__all__ = ["Partition", "RegionLimitError", "Slice", "UnsupportedModelError", "partition", "register_op", "__version__"]
