"""The geometry layer: batched ragged convex polygons in float64 on any torch device
(cutting by lines, one BSP loop, max cells, point location).  It knows nothing of networks."""

from .bsp import bsp
from .cut import Cut, classify, cut, line_tolerance, sides
from .linesplit import LineSplit, split_at_breakpoints, split_by_lines
from .locate import RegionGrid, distance_to_polygons
from .maxcells import MaxCells, candidate_tolerance, max_cells, possible_winners
from .trig import Waves, sin_range
from .polygons import (BORDER, Polygons, first_of_runs, offsets_from_counts, polygon_areas, ragged_arange,
                       spatial_order, vertex_extremes)

__all__ = [
    "BORDER", "Cut", "LineSplit", "MaxCells", "Polygons", "RegionGrid", "bsp", "candidate_tolerance", "classify", "cut",
    "distance_to_polygons", "first_of_runs", "line_tolerance", "max_cells", "offsets_from_counts", "polygon_areas",
    "possible_winners", "ragged_arange", "sides", "spatial_order", "split_at_breakpoints", "split_by_lines",
    "vertex_extremes", "Waves", "sin_range",
]
