"""Analysis of a partition's geometry: its planar mesh, boundary curves, class regions with
their Betti numbers, and regions matched across two partitions."""

from .mesh import PlanarMesh, build_mesh

__all__ = ["PlanarMesh", "build_mesh"]
