"""File formats: SVG pictures and GeoJSON of partitions and boundaries."""

from .geojson import boundary_geojson, partition_geojson
from .svg import to_svg

__all__ = ["boundary_geojson", "partition_geojson", "to_svg"]
