"""Inline display in Jupyter and other notebooks: nothing is fetched from a network.

A partition shows the interactive viewer of :mod:`splinecam.viz.viewer` inside a
sandboxed ``<iframe srcdoc=...>`` (its page holds all its code and data, so
it works offline and several outputs do not interfere).  The page grows with
the partition (:func:`~splinecam.viz.viewer.page_bytes`), so above :data:`MAX_REGIONS`
regions a static PNG is shown instead, with a note saying how to get the
viewer.  ``part.show(interactive=True)`` (or ``False``) chooses explicitly.

A decision boundary shows its length, pieces and segments, and an SVG drawing.
"""

from __future__ import annotations

import base64
import html
import io

from .plot import partition_figure
from .viewer import page_bytes, render_html

__all__ = ["MAX_REGIONS", "boundary_html", "partition_html", "picture", "show"]

MAX_REGIONS = 20_000
"""Above this many regions a partition is shown as a static picture unless asked otherwise."""


class Inline:
    """HTML that notebooks display (``_repr_html_``); ``str()`` gives the HTML itself."""

    def __init__(self, markup: str):
        self.markup = markup

    def _repr_html_(self) -> str:
        return self.markup

    def __str__(self) -> str:
        return self.markup


def _summary(part) -> str:
    return (f"splinecam partition: {len(part):,} regions, {part.n_outputs} output{'s' * (part.n_outputs > 1)}, "
            f"{len(part.layers)} piecewise-linear layer{'s' * (len(part.layers) != 1)}")


def viewer_frame(part, height: int = 520, color_by: str = "random") -> str:
    """The interactive viewer of ``part`` in a sandboxed iframe (self-contained HTML)."""
    page = render_html(part, color_by=color_by, title=_summary(part))
    return (f'<iframe srcdoc="{html.escape(page, quote=True)}" sandbox="allow-scripts allow-downloads" '
            f'style="width: 100%; height: {int(height)}px; border: 1px solid #ccc;" '
            f'title="{html.escape(_summary(part))}"></iframe>')


def picture(part, color_by: str = "random", dpi: int = 100) -> str:
    """A static PNG of ``part`` (regions and decision boundary) as an inline ``<img>``."""
    buffer = io.BytesIO()
    partition_figure(part, color_by=color_by).savefig(buffer, format="png", dpi=dpi)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(_summary(part))}" style="max-width: 100%;">'


def partition_html(part, interactive: bool | None = None, max_regions: int | None = None, height: int = 520,
                   color_by: str = "random") -> str:
    """HTML for a partition: the viewer, or a PNG when it has more than ``max_regions``
    (default :data:`MAX_REGIONS`) regions and ``interactive`` is not True."""
    limit = MAX_REGIONS if max_regions is None else max_regions
    if interactive is None:
        interactive = len(part) <= limit
    if interactive:
        return viewer_frame(part, height=height, color_by=color_by)
    head = f"<div><b>{html.escape(_summary(part))}</b>"
    note = ""
    if len(part) > limit:
        note = (f"<br><small>A static picture: the interactive viewer would embed {len(part):,} regions "
                f"(about {page_bytes(part) / 1e6:.1f} MB), more than the limit of {limit:,}.  "
                f"Use <code>part.show(interactive=True)</code> to embed it anyway, or "
                f"<code>part.to_html(\"part.html\")</code> to open it in a browser.</small>")
    return f"{head}{note}</div>{picture(part, color_by=color_by)}"


def show(part, interactive: bool | None = None, max_regions: int | None = None, height: int = 520,
         color_by: str = "random") -> Inline:
    """What a notebook displays for ``part``, with the choices made explicit (see :func:`partition_html`)."""
    return Inline(partition_html(part, interactive=interactive, max_regions=max_regions, height=height,
                                 color_by=color_by))


def boundary_html(db, width: int = 360) -> str:
    """A line of numbers and an SVG drawing of the boundary's segments (v upwards)."""
    text = (f"decision boundary: {len(db):,} segments, length {db.length:.6g}, "
            f"{db.pieces()} connected piece{'s' * (db.pieces() != 1)}")
    if not len(db):
        return f"<div><b>{html.escape(text)}</b></div>"
    pts = db.segments.reshape(-1, 2)
    lo, hi = pts.min(0), pts.max(0)
    span = max(float((hi - lo).max()), 1e-300)
    pad = 0.04 * span
    w, h = float(hi[0] - lo[0]) + 2 * pad, float(hi[1] - lo[1]) + 2 * pad
    lines = db.segments.copy()
    lines[..., 0] -= lo[0] - pad
    lines[..., 1] = (hi[1] + pad) - lines[..., 1]  # SVG's y points down
    path = " ".join(f"M{a[0]:.6g} {a[1]:.6g}L{b[0]:.6g} {b[1]:.6g}" for a, b in lines)
    height = max(40, min(int(width * h / w), 3 * width))
    return (f"<div><b>{html.escape(text)}</b><br>"
            f'<svg width="{width}" height="{height}" viewBox="0 0 {w:.6g} {h:.6g}" '
            f'preserveAspectRatio="xMidYMid meet" style="border: 1px solid #ccc; background: #fff;">'
            f'<path d="{path}" fill="none" stroke="black" stroke-width="{span / 150:.6g}" stroke-linecap="round"/>'
            f"</svg></div>")
