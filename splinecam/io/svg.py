"""An SVG picture of a partition: regions, decision boundary and the edges of each layer as groups.

Groups (``<g id=...>``): ``regions`` (one path per region, ``data-region`` its index),
``layer-<name>`` (the edges each piecewise-linear layer created), ``border`` and
``boundary`` (the decision boundary as curves).  Coordinates are slice coordinates with
``v`` up.  The file is written atomically.
"""

from __future__ import annotations

import colorsys
from xml.sax.saxutils import quoteattr

import numpy as np

from .files import write_atomically

__all__ = ["to_svg"]

_SIZE = 800  # pixels of the longer side


def _path(points: np.ndarray, closed: bool) -> str:
    body = " L".join(f"{u:.10g},{v:.10g}" for u, v in points)
    return "M" + body + (" Z" if closed else "")


def _colours(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    hues = rng.random(n)
    return ["#%02x%02x%02x" % tuple(int(255 * c) for c in colorsys.hls_to_rgb(h, 0.72, 0.55)) for h in hues]


def to_svg(part, path, boundary: bool = True) -> None:
    """Write ``part`` as an SVG file at ``path`` (see the module docstring)."""
    lo, hi = part.slice.polygon.min(0), part.slice.polygon.max(0)
    span = float(max(hi - lo))
    stroke = span / _SIZE
    width, height = (_SIZE * (hi - lo) / span).round().astype(int)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="{lo[0]:.10g} {-hi[1]:.10g} {hi[0] - lo[0]:.10g} {hi[1] - lo[1]:.10g}">',
           '<g transform="scale(1,-1)">', '<g id="regions" stroke="none">']
    for r, (poly, colour) in enumerate(zip(part.polygons, _colours(len(part)))):
        out.append(f'<path data-region="{r}" fill="{colour}" d="{_path(poly, True)}"/>')
    out.append("</g>")
    mesh = part.mesh()
    v = mesh.vertices
    for layer in range(-1, len(part.layers)):
        e = mesh.edges[mesh.edge_units[:, 0] == layer]
        name = "border" if layer < 0 else f"layer-{part.layers[layer].name}"
        d = " ".join(f"M{v[a, 0]:.10g},{v[a, 1]:.10g} L{v[b, 0]:.10g},{v[b, 1]:.10g}" for a, b in e)
        out.append(f'<g id={quoteattr(name)} fill="none" stroke="#333" stroke-width="{stroke * 0.5:.6g}"><path d="{d}"/></g>')
    if boundary:
        out.append(f'<g id="boundary" fill="none" stroke="black" stroke-width="{stroke * 2:.6g}">')
        out += [f'<path d="{_path(c.points, False)}"/>' for c in part.decision_boundary().curves()]
        out.append("</g>")
    out.append("</g></svg>\n")
    text = "\n".join(out).encode()
    write_atomically(path, lambda f: f.write(text))
