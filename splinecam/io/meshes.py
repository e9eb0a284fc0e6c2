"""Triangle meshes as files: PLY (binary little-endian, with each triangle's cell) and Wavefront
OBJ (text); both written atomically."""

from __future__ import annotations

import numpy as np

from .files import write_atomically

__all__ = ["to_obj", "to_ply"]


def _checked(vertices, triangles) -> tuple[np.ndarray, np.ndarray]:
    v, t = np.asarray(vertices, dtype=np.float64), np.asarray(triangles, dtype=np.int64)
    if v.ndim != 2 or v.shape[1] != 3 or t.ndim != 2 or t.shape[1] != 3:
        raise ValueError(f"a mesh needs vertices (V, 3) and triangles (F, 3), got {v.shape} and {t.shape}.")
    if t.size and (t.min() < 0 or t.max() >= len(v)):
        raise ValueError("triangles index vertices that do not exist.")
    return v, t


def to_ply(path, vertices, triangles, cell=None):
    """Write a binary PLY file: vertices (V, 3) as doubles, triangles (F, 3) and, if given, the
    (F,) ``cell`` of each as an int face property.  Returns the path."""
    v, t = _checked(vertices, triangles)
    face = np.dtype([("n", "u1"), ("idx", "<i4", 3)] + ([("cell", "<i4")] if cell is not None else []))
    rows = np.empty(len(t), face)
    rows["n"], rows["idx"] = 3, t
    if cell is not None:
        rows["cell"] = np.asarray(cell, dtype=np.int64)
    header = ["ply", "format binary_little_endian 1.0", "comment splinecam exact level-set mesh",
              f"element vertex {len(v)}", "property double x", "property double y", "property double z",
              f"element face {len(t)}", "property list uchar int vertex_indices"]
    header += ["property int cell"] if cell is not None else []

    def write(f):
        f.write(("\n".join(header + ["end_header"]) + "\n").encode("ascii"))
        f.write(v.astype("<f8").tobytes())
        f.write(rows.tobytes())

    return write_atomically(path, write)


def to_obj(path, vertices, triangles):
    """Write a Wavefront OBJ file (vertices with 17 significant digits, 1-based faces).  Returns the path."""
    v, t = _checked(vertices, triangles)

    def write(f):
        f.write(b"# splinecam exact level-set mesh\n")
        f.write("".join(f"v {x:.17g} {y:.17g} {z:.17g}\n" for x, y, z in v).encode("ascii"))
        f.write("".join(f"f {a} {b} {c}\n" for a, b, c in t + 1).encode("ascii"))

    return write_atomically(path, write)
