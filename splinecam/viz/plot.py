"""Pictures of partitions and boundaries (matplotlib, imported lazily)."""

from __future__ import annotations

import numpy as np

COLOR_BY = ("random", "slope", "area", "output", "class", "layer")


def _axes(ax):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    return ax


COARSE_COLOR = (0.82, 0.82, 0.82, 1.0)  # the coarse cells of a boundary-first partition


def region_colors(part, color_by: str, output: int = 0, seed: int = 0) -> np.ndarray:
    """(R, 4) RGBA face colour of every region; light grey for coarse cells (``part.exact``)."""
    faces = _region_colors(part, color_by, output, seed)
    faces[~part.exact] = COARSE_COLOR
    return faces


def _region_colors(part, color_by: str, output: int, seed: int) -> np.ndarray:
    import matplotlib as mpl

    if color_by not in COLOR_BY:
        raise ValueError(f"color_by must be one of {COLOR_BY}, got {color_by!r}.")
    n = len(part)
    rng = np.random.default_rng(seed)
    if color_by in ("random", "layer"):
        hue = rng.random(n)
        sat = 0.12 + 0.22 * rng.random(n) if color_by == "random" else np.full(n, 0.04)
        hsv = np.stack([hue, sat, 0.93 + 0.06 * rng.random(n)], 1)
        return np.c_[mpl.colors.hsv_to_rgb(hsv), np.ones(n)]
    if color_by == "class":
        light = 0.55 + 0.25 * rng.random(n)[:, None]  # per-region shade keeps the regions apart
        return np.c_[class_color(region_classes(part), light), np.ones(n)]
    if color_by == "slope":
        value, cmap = np.log10(np.linalg.norm(part.affine[:, :, :2], axis=(1, 2)) + 1e-12), "viridis"
    elif color_by == "area":
        value, cmap = np.log10(np.maximum(part.areas, 1e-300)), "magma"
    else:
        value, cmap = part.centroid_outputs[:, output], "coolwarm"
    lo, hi = np.nanpercentile(value, [1, 99]) if part.exact.any() else (0.0, 1.0)
    norm = (value - lo) / max(hi - lo, 1e-300)
    return mpl.colormaps[cmap](np.clip(norm, 0, 1))


def region_classes(part) -> np.ndarray:
    """(R,) class of each region at its centroid: the top logit, or ``output > 0`` for one output."""
    out = part.centroid_outputs
    return (out[:, 0] > 0).astype(int) if part.n_outputs == 1 else out.argmax(1)


def class_color(classes: np.ndarray, light) -> np.ndarray:
    """(N, 3) RGB of ``classes`` (N,): tab10, mixed with white by ``light`` (a number or (N, 1))."""
    import matplotlib as mpl

    return 1 - light * (1 - mpl.colormaps["tab10"](np.asarray(classes) % 10)[:, :3])


def _class_legend(part, ax, class_names):
    """A legend of the classes present, named by ``class_names`` (one name per class) if given."""
    from matplotlib.patches import Patch

    n_classes = 2 if part.n_outputs == 1 else part.n_outputs
    if class_names is not None and len(class_names) != n_classes:
        raise ValueError(f"class_names needs {n_classes} names (one per class"
                         f"{', output <= 0 then > 0' if part.n_outputs == 1 else ''}), got {len(class_names)}.")
    present = np.unique(region_classes(part))
    names = [str(class_names[c]) if class_names is not None else f"class {c}" for c in present]
    colors = class_color(present, 0.675)
    handles = [Patch(facecolor=c, edgecolor="0.3", label=name) for c, name in zip(colors, names)]
    return ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.85)


def plot_partition(part, ax=None, color_by: str = "random", boundary: bool = True, points=None,
                   labels=None, output: int = 0, edgecolor="0.25", linewidth=None, boundary_kw=None,
                   layer_count=None, class_names=None, **kwargs):
    """Draw every region as one PolyCollection, with the decision boundary and points on top.
    The coarse cells of a boundary-first partition (unions of regions proved free of the
    boundary, see ``Partition.exact``) are drawn grey and hatched.

    points: (N, 2) slice coordinates to scatter (e.g. training data), coloured
    by ``labels`` if given.  layer_count: layers in the edge colour scale of
    ``color_by="layer"`` (default: the partition's).  class_names: with ``color_by="class"``, one name
    per class for the legend (for one output: ``output <= 0``, then ``> 0``; default "class k").
    kwargs go to the PolyCollection.  Returns a dict of the artists: ``regions``, ``edges`` (layer
    colouring), ``legend`` (class colouring), ``coarse`` (coarse cells, if any), ``boundary``, ``points``.
    """
    from matplotlib.collections import PolyCollection

    ax = _axes(ax)
    if linewidth is None:
        linewidth = float(np.clip(2.0 / np.sqrt(max(len(part), 1)) * 10, 0.05, 0.6))
    faces = region_colors(part, color_by, output=output)
    artists = {}
    layered = color_by == "layer"
    regions = PolyCollection(
        part.polygons, facecolors=faces, edgecolors="none" if layered else edgecolor,
        linewidths=0 if layered else linewidth, antialiased=True, **kwargs,
    )
    ax.add_collection(regions)
    artists["regions"] = regions
    if not part.exact.all():
        coarse = [p for p, e in zip(part.polygons, part.exact) if not e]
        artists["coarse"] = PolyCollection(coarse, facecolors=COARSE_COLOR, edgecolors="0.6", hatch="//",
                                           linewidths=linewidth, label="coarse cell (no boundary)")
        ax.add_collection(artists["coarse"])
    if layered:
        artists["edges"] = _layer_edges(part, ax, linewidth * 1.5, layer_count)
    if color_by == "class":
        artists["legend"] = _class_legend(part, ax, class_names)
    poly = part.slice.polygon
    lo, hi = poly.min(0), poly.max(0)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    if boundary:
        kw = {"colors": "black", "linewidths": 2.2, "zorder": 3}
        kw.update(boundary_kw or {})
        artists["boundary"] = plot_boundary(part.decision_boundary(), ax=ax, **kw)
    if points is not None:
        pts = np.asarray(points, dtype=np.float64)
        artists["points"] = ax.scatter(
            pts[:, 0], pts[:, 1], c=labels if labels is not None else "white", cmap="coolwarm",
            s=14, edgecolors="black", linewidths=0.6, zorder=4,
        )
    return artists


def _layer_edges(part, ax, linewidth, layer_count=None):
    import matplotlib as mpl
    from matplotlib.collections import LineCollection

    v = part.arrays.vertices
    nxt = part.arrays.polygons().next_vertex().numpy()
    layer = part.arrays.edge_units[:, 0]
    inner = layer >= 0
    segs = np.stack([v[inner], v[nxt[inner]]], 1)
    n_layers = max(len(part.layers), 1) if layer_count is None else layer_count
    palette = layer_palette(n_layers)
    colors = palette[layer[inner]]
    edges = LineCollection(segs, colors=colors, linewidths=linewidth, zorder=2)
    ax.add_collection(edges)
    shown = len(part.layers) if layer_count is not None else n_layers
    handles = [mpl.lines.Line2D([], [], color=palette[k], label=f"layer {k + 1}") for k in range(shown)]
    ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.85)
    return edges


def layer_palette(n_layers: int) -> np.ndarray:
    """(n_layers, 4) distinct colours, dark to light, none too pale on white."""
    import matplotlib as mpl

    if n_layers <= 10:
        return mpl.colormaps["tab10"](np.arange(n_layers))
    return mpl.colormaps["viridis"](np.linspace(0, 0.85, n_layers))


def partition_figure(part, color_by: str = "random", width: float = 6.0, **kwargs):
    """A Figure (Agg canvas, not registered with pyplot) of ``part``: its regions and decision
    boundary, titled with the region count, sized to the slice's aspect.  kwargs go to
    :func:`plot_partition`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    span = np.ptp(part.slice.polygon, axis=0)
    fig = Figure(figsize=(width, width * float(np.clip(span[1] / span[0], 0.3, 2.0))))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    plot_partition(part, ax=ax, color_by=color_by, **kwargs)
    ax.set_title(f"{len(part):,} regions", fontsize=10)
    fig.tight_layout()
    return fig


def plot_boundary(db, ax=None, **kwargs):
    """Draw boundary segments as one LineCollection; kwargs go to it."""
    from matplotlib.collections import LineCollection

    ax = _axes(ax)
    kw = {"colors": "black", "linewidths": 2.0}
    kw.update(kwargs)
    lines = LineCollection(db.segments, **kw)
    ax.add_collection(lines)
    return lines
