"""A self-contained interactive HTML viewer of a partition.

The page holds every byte it needs: the JavaScript and CSS of
``viewer_template.html`` and the partition itself as little-endian binary
arrays in base64 (float64 vertices, boundary and affine maps; int32 offsets
and edge layers; uint16 colour indices per colouring; for the class colourings the exact
class cells of the regions the boundary cuts).  It fetches nothing and opens from disk in any
modern browser.
"""

from __future__ import annotations

import base64
import html
import json
import re
from importlib import resources
from pathlib import Path

import numpy as np

from ..io.files import write_atomically
from .plot import (COLOR_BY, FILL_LIGHT, check_color_by, class_cells_of, class_color, class_faces, class_labels,
                   class_region_faces, layer_label, layer_palette, region_colors)

__all__ = ["FORMAT", "encode", "page_bytes", "read_data", "render_html", "to_html"]

FORMAT = "splinecam.viewer/1"
_SPLIT = re.compile(r"(__SPLINECAM_[A-Z]+__)")
_BLOB = re.compile(r'<script type="application/octet-stream" id="sc-(\w+)">([A-Za-z0-9+/=]*)</script>')
_META = re.compile(r'<script type="application/json" id="sc-meta">(.*?)</script>', re.S)


def _palette(rgba: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Quantise (R, 4) colours to 5 bits a channel: (hex palette, (R,) uint16 index).

    Few distinct colours let the page fill all regions of one colour at once.
    """
    q = np.round(rgba[:, :3] * 31).astype(np.int64)
    uniq, index = np.unique(q[:, 0] * 1024 + q[:, 1] * 32 + q[:, 2], return_inverse=True)
    rgb = np.round(np.stack([uniq // 1024, uniq // 32 % 32, uniq % 32], 1) * 255 / 31).astype(int)
    return ["#%02x%02x%02x" % tuple(c) for c in rgb], index.astype(np.uint16)


def encode(part, points=None, labels=None, class_names=None) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) written into the page.

    arrays: ``verts`` (N, 2) float64, ``offsets`` (R+1,) int32, ``layers``
    (N,) int32 layer of the line carrying each edge (-1 border), ``affine``
    (R, K, 3) float64 (NaN on coarse cells), ``boundary`` (S, 2, 2) float64 decision-boundary
    segments, ``exact`` (R,) uint8 (0 for the coarse cells of a boundary-first partition),
    ``color_<mode>`` (R,) uint16 palette index per mode of :data:`splinecam.viz.plot.COLOR_BY`, and
    for ``class`` and ``sign`` the exact class cells of the regions cut by the boundary (level
    set 0 of output 0 for ``sign``): ``cells_<mode>_verts`` (M, 2) float64, ``cells_<mode>_offsets``
    (C+1,) int32, ``cells_<mode>_region`` (C,) int32, ``cells_<mode>_color`` (C,) uint16;
    meta: JSON-ready description, palettes, slice polygon, anchors, layers, the class key of
    each class colouring, and ``points`` (list of [u, v, colour]) to draw.
    """
    import matplotlib as mpl

    a = part.arrays
    if len(a.vertices) >= 2**31:
        raise ValueError("the viewer stores offsets as int32; this partition has too many vertices.")
    boundary = part.decision_boundary()
    arrays = {
        "verts": np.ascontiguousarray(a.vertices, dtype="<f8"),
        "offsets": a.offsets.astype("<i4"),
        "layers": a.edge_units[:, 0].astype("<i4"),
        "affine": np.ascontiguousarray(part.affine, dtype="<f8"),
        "boundary": np.ascontiguousarray(boundary.segments, dtype="<f8").reshape(-1, 2, 2),
        "exact": part.exact.astype("<u1"),
    }
    palettes, keys = {}, {}
    for mode in COLOR_BY:
        cells = {}
        if mode in ("class", "sign"):
            faces, cells, keys[mode] = _class_mode(part, mode, class_names)
        else:
            faces = region_colors(part, mode)
        palettes[mode], index = _palette(faces)
        arrays[f"color_{mode}"] = index[:len(part)].astype("<u2")
        if cells:
            arrays.update(cells)
            arrays[f"cells_{mode}_color"] = index[len(part):].astype("<u2")
    n_layers = len(part.layers)
    layer_rgb = layer_palette(n_layers)[:, :3]
    anchors = part.slice.anchors_uv
    meta = {
        "format": FORMAT,
        "n_regions": int(part.exact.sum()),
        "n_coarse": int((~part.exact).sum()),
        "n_outputs": part.n_outputs,
        "polygon": part.slice.polygon.tolist(),
        "anchors": [] if anchors is None else np.asarray(anchors, dtype=np.float64).reshape(-1, 2).tolist(),
        "layers": [
            {"name": layer.name, "units": layer.units, "label": layer_label(k, layer), "color": mpl.colors.to_hex(rgb)}
            for k, (layer, rgb) in enumerate(zip(part.layers, layer_rgb))
        ],
        "palettes": palettes,
        "class_keys": keys,
        "points": _points(points, labels),
        "color_modes": list(COLOR_BY),
        "arrays": {name: {"dtype": a.dtype.name, "shape": list(a.shape)} for name, a in arrays.items()},
    }
    return meta, arrays


def _class_mode(part, mode: str, class_names) -> tuple[np.ndarray, dict, list]:
    """A class colouring: (fills of the R regions then of the cells of the regions the boundary
    cuts (R + C, 4), the cells' arrays, the class key [{name, color}] of the classes present)."""
    import matplotlib as mpl

    cells = class_cells_of(part, mode)
    cut = np.bincount(cells.region, minlength=len(part))[cells.region] > 1
    counts = np.diff(cells.offsets)
    arrays = {
        f"cells_{mode}_verts": np.ascontiguousarray(cells.vertices[np.repeat(cut, counts)], dtype="<f8"),
        f"cells_{mode}_offsets": np.r_[0, np.cumsum(counts[cut])].astype("<i4"),
        f"cells_{mode}_region": cells.region[cut].astype("<i4"),
    }
    faces = np.concatenate([class_region_faces(part, cells), class_faces(cells.label[cut], cells.region[cut], 0)])
    names = class_labels(part, mode, class_names if mode == "class" else None)
    key = [{"name": names[c], "color": mpl.colors.to_hex(class_color([c], FILL_LIGHT)[0])}
           for c in np.unique(cells.label[cells.label >= 0])]
    return faces, arrays, key


def _points(points, labels) -> list:
    """[[u, v, "#rrggbb"], ...] of the data points: class colours for integer labels, else white."""
    if points is None:
        return []
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if labels is None or not np.issubdtype(np.asarray(labels).dtype, np.integer):
        colors = ["#ffffff"] * len(pts)
    else:
        import matplotlib as mpl

        colors = [mpl.colors.to_hex(c) for c in class_color(np.asarray(labels).reshape(-1))]
    return [[float(u), float(v), c] for (u, v), c in zip(pts, colors)]


def page_bytes(part) -> int:
    """About the size of ``part``'s viewer page: 136 + 32 K bytes a region for K outputs (as
    measured by ``benchmarks/bench_viewer.py``: 168 for K = 1, 459 for K = 10)."""
    return len(part) * (136 + 32 * part.n_outputs)


def _json_for_script(obj) -> str:
    """JSON that cannot close its <script> element."""
    return json.dumps(obj, separators=(",", ":")).replace("</", "<\\/")


def render_html(part, color_by: str = "random", title: str | None = None, points=None, labels=None,
                class_names=None) -> str:
    """The page as one string; see :func:`to_html`."""
    check_color_by(color_by)
    meta, arrays = encode(part, points=points, labels=labels, class_names=class_names)
    meta["title"] = title if title is not None else "splinecam partition"
    meta["color_by"] = color_by
    blobs = "".join(
        f'<script type="application/octet-stream" id="sc-{name}">{base64.b64encode(a.tobytes()).decode("ascii")}</script>\n'
        for name, a in arrays.items()
    )
    fill = {
        "__SPLINECAM_TITLE__": html.escape(meta["title"]),
        "__SPLINECAM_META__": _json_for_script(meta),
        "__SPLINECAM_DATA__": blobs,
    }
    template = resources.files("splinecam.viz").joinpath("viewer_template.html").read_text(encoding="utf-8")
    return "".join(fill.get(piece, piece) for piece in _SPLIT.split(template))


def to_html(part, path, color_by: str = "random", title: str | None = None, points=None, labels=None,
            class_names=None) -> Path:
    """Write the interactive viewer of ``part`` to ``path`` (one self-contained HTML file).

    color_by: the initial colouring, one of :data:`splinecam.viz.plot.COLOR_BY`
    (all of them can be switched in the page; ``class`` and ``sign`` fill the exact cells
    where each class wins); title: shown in the page; points: (N, 2) slice coordinates of
    data to draw, coloured by integer class ``labels`` (N,) if given; class_names: the names
    of the classes in the class key.  Returns the path.
    """
    page = render_html(part, color_by=color_by, title=title, points=points, labels=labels,
                       class_names=class_names).encode("utf-8")
    return write_atomically(path, lambda f: f.write(page))


def read_data(path) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) embedded in a viewer page written by :func:`to_html`."""
    text = Path(path).read_text(encoding="utf-8")
    found = _META.search(text)
    meta = json.loads(found.group(1)) if found else {}
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a splinecam viewer page.")
    blobs = dict(_BLOB.findall(text))
    arrays = {}
    for name, spec in meta["arrays"].items():
        dtype = np.dtype(spec["dtype"]).newbyteorder("<")
        arrays[name] = np.frombuffer(base64.b64decode(blobs[name]), dtype=dtype).reshape(spec["shape"])
    return meta, arrays
