"""The geometry layer: batched convex cells in float64 on any torch device (intervals of a path,
ragged polygons of a slice, ragged polyhedra of a volume: the cell interface of :mod:`~splinecam.geometry.cells`), cutting
them by planes, one BSP loop, max cells, point location.  It knows nothing of networks."""

from .bsp import bsp
from .cells import CellSplit, breakpoint_split, split_cells
from .cut import Cut, classify, cut, line_tolerance, sides
from .intervals import Arcs, Intervals, split_intervals, split_intervals_at_breakpoints
from .linesplit import LineSplit, split_at_breakpoints, split_by_lines
from .locate import RegionGrid, distance_to_polygons
from .maxcells import MaxCells, candidate_tolerance, max_cells, possible_winners
from .polyhedra import Polyhedra, split_polyhedra
from .trig import Waves, sin_range
from .polygons import (BORDER, Polygons, Ragged, first_of_runs, offsets_from_counts, polygon_areas, ragged_arange,
                       spatial_order, vertex_extremes)
from .tolerance import plane_tolerance

__all__ = [
    "Arcs", "BORDER", "CellSplit", "Cut", "Intervals", "LineSplit", "MaxCells", "Polygons", "Polyhedra", "Ragged", "RegionGrid", "breakpoint_split", "bsp", "candidate_tolerance", "classify", "cut",
    "distance_to_polygons", "first_of_runs", "line_tolerance", "max_cells", "offsets_from_counts", "plane_tolerance",
    "polygon_areas",
    "possible_winners", "ragged_arange", "sides", "spatial_order", "split_at_breakpoints", "split_by_lines",
    "split_cells", "split_intervals", "split_intervals_at_breakpoints", "split_polyhedra",
    "vertex_extremes", "Waves", "sin_range",
]
