"""A self-contained interactive HTML viewer of a partition.

The page holds every byte it needs: the JavaScript and CSS of
``viewer_template.html`` and the partition itself as little-endian binary
arrays in base64 (float64 vertices, boundary and affine maps; int32 offsets
and edge layers; uint16 colour indices per colouring).  It fetches nothing
and opens from disk in any modern browser.
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
from .plot import COLOR_BY, layer_palette, region_colors

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


def encode(part) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) written into the page.

    arrays: ``verts`` (N, 2) float64, ``offsets`` (R+1,) int32, ``layers``
    (N,) int32 layer of the line carrying each edge (-1 border), ``affine``
    (R, K, 3) float64 (NaN on coarse cells), ``boundary`` (S, 2, 2) float64 decision-boundary
    segments, ``exact`` (R,) uint8 (0 for the coarse cells of a boundary-first partition), and ``color_<mode>`` (R,) uint16 palette index per mode of
    :data:`splinecam.viz.plot.COLOR_BY`; meta: JSON-ready description, palettes,
    slice polygon, anchors and layers.
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
    palettes = {}
    for mode in COLOR_BY:
        palettes[mode], arrays[f"color_{mode}"] = _palette(region_colors(part, mode))
        arrays[f"color_{mode}"] = arrays[f"color_{mode}"].astype("<u2")
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
            {"name": layer.name, "units": layer.units, "color": mpl.colors.to_hex(rgb)}
            for layer, rgb in zip(part.layers, layer_rgb)
        ],
        "palettes": palettes,
        "color_modes": list(COLOR_BY),
        "arrays": {name: {"dtype": a.dtype.name, "shape": list(a.shape)} for name, a in arrays.items()},
    }
    return meta, arrays


def _json_for_script(obj) -> str:
    """JSON that cannot close its <script> element."""
    return json.dumps(obj, separators=(",", ":")).replace("</", "<\\/")


def render_html(part, color_by: str = "random", title: str | None = None) -> str:
    """The page as one string; see :func:`to_html`."""
    if color_by not in COLOR_BY:
        raise ValueError(f"color_by must be one of {COLOR_BY}, got {color_by!r}.")
    meta, arrays = encode(part)
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


def to_html(part, path, color_by: str = "random", title: str | None = None) -> Path:
    """Write the interactive viewer of ``part`` to ``path`` (one self-contained HTML file).

    color_by: the initial colouring, one of :data:`splinecam.viz.plot.COLOR_BY`
    (all of them can be switched in the page); title: shown in the page.
    Returns the path.
    """
    page = render_html(part, color_by=color_by, title=title).encode("utf-8")
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
