"""Analysis of a partition's geometry: its planar mesh, boundary curves, class regions with
their Betti numbers, and regions matched across two partitions."""

from .match import RegionMatch, match_regions
from .mesh import PlanarMesh, build_mesh
from .topology import BoundaryCurves, ClassCells, ClassRegion, Curve, class_regions, curves, to_networkx

__all__ = ["BoundaryCurves", "ClassCells", "ClassRegion", "Curve", "PlanarMesh", "RegionMatch", "build_mesh",
           "class_regions", "curves", "match_regions", "to_networkx"]
