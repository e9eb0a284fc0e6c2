"""Pictures of partitions and boundaries (matplotlib, imported lazily).

Colourings (``color_by``): ``random`` (pale, one per region), ``slope``, ``area``, ``output``
(continuous scales), ``class`` (the exact cells where each class wins: every region cut along
the decision boundary), ``sign`` (the exact cells of ``f >= t`` and ``f < t`` for a level set),
``layer`` (edges coloured by the layer that made them) and ``code`` (a colour from a hash of
each region's activation code: a region keeps it across training checkpoints while its pattern
lives).
"""

from __future__ import annotations

import numpy as np

__all__ = ["CLASS_PALETTE", "COARSE_COLOR", "COLOR_BY", "FILL_LIGHT", "check_color_by", "class_cells_of",
           "class_color", "class_faces", "class_labels", "class_region_faces", "code_colors", "edge_style",
           "layer_handles", "layer_label", "layer_palette", "partition_figure", "plot_boundary",
           "pale_colors", "plot_layers", "plot_partition", "region_colors"]

COLOR_BY = ("random", "slope", "area", "output", "class", "sign", "layer", "code")

COARSE_COLOR = (0.82, 0.82, 0.82, 1.0)  # the coarse cells of a boundary-first partition

CLASS_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
    "#000075", "#67001f", "#e7298a", "#fdb462", "#01665e", "#80b1d3", "#f032e6", "#b3de69", "#5e3c99",
    "#ffe119", "#46f0f0", "#7f3b08", "#1b9e77", "#d6616b", "#911eb4",
)
"""24 qualitative class colours: tab10 without its grey, then 15 more picked one by one as far
(in RGB) from those before as possible; none grey or pale.  Class
``c`` gets ``CLASS_PALETTE[c % 24]``; each further round of 24 is mixed 30% further with black."""

EDGE_ALPHA = 0.6  # the opacity of the edges of regions large on the page
FILL_LIGHT = 0.4  # class fills are the class colour mixed with white by this much (legend swatches too)


def _axes(ax):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    return ax


def class_color(classes, light=0.0) -> np.ndarray:
    """(N, 3) RGB of ``classes`` (N,) from :data:`CLASS_PALETTE`, mixed with white by ``light``
    (a number or (N, 1); 0 gives the full colour)."""
    import matplotlib as mpl

    classes = np.asarray(classes, dtype=np.int64).reshape(-1)
    base = np.array([mpl.colors.to_rgb(c) for c in CLASS_PALETTE])
    n = len(base)
    rounds = np.minimum(np.maximum(classes, 0) // n, 3)
    rgb = base[np.maximum(classes, 0) % n] * (1 - 0.3 * rounds)[:, None]
    return 1 - (1 - np.asarray(light)) * (1 - rgb)


def region_colors(part, color_by: str, output: int = 0, seed: int = 0, level: float = 0.0) -> np.ndarray:
    """(R, 4) RGBA face colour of every region; light grey for coarse cells (``part.exact``).
    For ``class`` and ``sign``: the class that wins the largest part of the region."""
    check_color_by(color_by)
    if color_by in ("class", "sign"):
        return class_region_faces(part, class_cells_of(part, color_by, output, level), seed)
    faces = _region_colors(part, color_by, output, seed)
    faces[~part.exact] = COARSE_COLOR
    return faces


def class_region_faces(part, cells, seed: int = 0) -> np.ndarray:
    """(R, 4) region fills of a class colouring: the class of each region's largest cell."""
    faces = class_faces(cells.region_class(len(part)), np.arange(len(part)), seed)
    faces[~part.exact] = COARSE_COLOR
    return faces


def check_color_by(color_by: str) -> None:
    if color_by not in COLOR_BY:
        raise ValueError(f"color_by must be one of {COLOR_BY}, got {color_by!r}.")


def class_cells_of(part, color_by: str, output: int = 0, level: float = 0.0):
    """The :class:`~splinecam.analysis.boundary.ClassCells` that ``color_by`` ("class" or "sign") fills:
    the argmax cells for "class" with K > 1 outputs, else the sides of ``f_output = level``.  A
    curved partition has the cells of its certified decision function only: its "sign" cells of
    one of two outputs are all unknown (-1, drawn grey)."""
    from ..analysis.boundary import ClassCells, class_cells

    if color_by == "class" and part.n_outputs > 1:
        return class_cells(part)
    if getattr(part, "curved", False) and part.n_outputs > 1:
        a = part.arrays
        return ClassCells(a.vertices, a.offsets, np.full(len(part), -1), np.arange(len(part)), part.areas)
    return class_cells(part, output=output, level=level)


def class_faces(labels: np.ndarray, region: np.ndarray, seed: int, contrast=1.0) -> np.ndarray:
    """(N, 4) fills of cells with class ``labels`` (N,) in regions ``region`` (N,): the class
    colour, a little lighter or darker per region so that regions stay apart (by ``contrast``, a
    number or one per region: 0 gives the plain class colour); coarse grey."""
    n = int(region.max(initial=-1)) + 1
    shade = FILL_LIGHT + 0.12 * np.broadcast_to(contrast, (n,)) * (np.random.default_rng(seed).random(n) - 0.5)
    faces = np.c_[class_color(labels, shade[region][:, None]), np.ones(len(labels))]
    faces[labels < 0] = COARSE_COLOR
    return faces


def _region_colors(part, color_by: str, output: int, seed: int) -> np.ndarray:
    import matplotlib as mpl

    curved = getattr(part, "curved", False)  # a curved partition's rows are pieces: colour its regions
    n = part.n_regions + 1 if curved else len(part)
    if color_by in ("random", "layer"):
        colors = pale_colors(n, seed, saturated=color_by == "random")
        return colors[part.region] if curved else colors  # region -1: the last colour
    if color_by == "code":
        return code_colors(part.arrays.packed_codes)
    if color_by == "slope":
        value, cmap = np.log10(np.linalg.norm(part.affine[:, :, :2], axis=(1, 2)) + 1e-12), "viridis"
    elif color_by == "area":
        value, cmap = np.log10(np.maximum(part.areas, 1e-300)), "magma"
    else:
        value, cmap = part.centroid_outputs[:, output], "coolwarm"
    lo, hi = np.nanpercentile(value, [1, 99]) if part.exact.any() else (0.0, 1.0)
    norm = (value - lo) / max(hi - lo, 1e-300)
    return mpl.colormaps[cmap](np.clip(norm, 0, 1))


def pale_colors(n: int, seed: int = 0, saturated: bool = True) -> np.ndarray:
    """(n, 4) pale RGBA colours of random hue, one per cell (near grey unless ``saturated``)."""
    import matplotlib as mpl

    rng = np.random.default_rng(seed)
    hue = rng.random(n)
    sat = 0.12 + 0.22 * rng.random(n) if saturated else np.full(n, 0.04)
    hsv = np.stack([hue, sat, 0.93 + 0.06 * rng.random(n)], 1)
    return np.c_[mpl.colors.hsv_to_rgb(hsv), np.ones(n)]


def code_colors(packed_codes: np.ndarray) -> np.ndarray:
    """(R, 4) a colour per activation code (R, B) uint8, from a 64-bit hash of its bytes: equal
    codes get equal colours in any partition (of the same network shape)."""
    import matplotlib as mpl

    codes = np.asarray(packed_codes, dtype=np.uint64)
    h = np.full(len(codes), 0xCBF29CE484222325, dtype=np.uint64)  # FNV-1a over the bytes
    with np.errstate(over="ignore"):
        for col in codes.T:
            h = (h ^ col) * np.uint64(0x100000001B3)
        h ^= h >> np.uint64(29)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(32)
    unit = [((h >> np.uint64(shift)) & np.uint64(0xFFFF)).astype(np.float64) / 65535 for shift in (0, 16, 32)]
    hsv = np.stack([unit[0], 0.25 + 0.4 * unit[1], 0.8 + 0.2 * unit[2]], 1)  # hue, saturation, value
    return np.c_[mpl.colors.hsv_to_rgb(hsv), np.ones(len(codes))]


def region_classes(part) -> np.ndarray:
    """(R,) the class that wins the largest part of each region (top logit; for one output,
    ``output >= 0``); -1 for coarse cells."""
    return class_cells_of(part, "class").region_class(len(part))


def class_labels(part, color_by: str, class_names, level: float = 0.0, output: int = 0) -> list[str]:
    """The legend names of the classes of ``color_by`` ("class" or "sign")."""
    if color_by == "class" and part.n_outputs > 1:
        n, default = part.n_outputs, [f"class {k}" for k in range(part.n_outputs)]
    else:
        f = "f" if part.n_outputs == 1 else f"f{output}"
        n, default = 2, [f"{f} < {level:g}", f"{f} \u2265 {level:g}"]
    if class_names is None:
        return default
    if len(class_names) != n:
        raise ValueError(f"class_names needs {n} names (one per class"
                         f"{', f < t then f >= t' if n == 2 and default[0].startswith('f') else ''}), "
                         f"got {len(class_names)}.")
    return [str(name) for name in class_names]


def layer_palette(n_layers: int) -> np.ndarray:
    """(n_layers, 4) distinct colours, dark to light, none too pale on white."""
    import matplotlib as mpl

    if n_layers <= 10:
        return mpl.colormaps["tab10"](np.arange(n_layers))
    return mpl.colormaps["viridis"](np.linspace(0, 0.85, n_layers))


def layer_handles(part, layer_count=None) -> list:
    """Legend entries of the layers of ``part``, named after their modules."""
    from matplotlib.lines import Line2D

    palette = layer_palette(max(len(part.layers), 1) if layer_count is None else layer_count)
    return [Line2D([], [], color=palette[k], lw=1.5, label=layer_label(k, layer)) for k, layer in enumerate(part.layers)]


def layer_label(k: int, layer) -> str:
    """The legend name of layer ``k`` (0-based), a :class:`~splinecam.LayerInfo`: its module name and units."""
    name = f"module {layer.name}" if layer.name.isdigit() else layer.name
    return f"layer {k + 1}: {name}, {layer.units} units"


def _chosen_layers(part, edge_layers) -> np.ndarray:
    """(L,) bool: the layers whose edges are drawn (``edge_layers``: indices or names; None: all)."""
    keep = np.zeros(max(len(part.layers), 1), bool)
    if edge_layers is None:
        keep[:] = True
        return keep
    names = [layer.name for layer in part.layers]
    for item in edge_layers:
        if isinstance(item, str) and item in names:
            keep[names.index(item)] = True
        elif isinstance(item, (int, np.integer)) and 0 <= item < len(names):
            keep[item] = True
        else:
            raise ValueError(f"edge_layers: {item!r} is neither a layer name nor an index of part.layers "
                             f"(names: {names}).")
    return keep


def points_per_unit(ax) -> float:
    """Typographic points per slice unit along x of ``ax`` (after its limits are set)."""
    width_pt = ax.get_position().width * ax.figure.get_figwidth() * 72
    lo, hi = ax.get_xlim()
    return width_pt / max(hi - lo, 1e-300)


def edge_style(areas: np.ndarray, pt_per_unit: float, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(alpha (R,), width (R,) in points) of the edges of regions of ``areas`` (R,): regions a few
    points across get thin, faint edges; below about 1.5 points they vanish."""
    size = np.sqrt(np.maximum(areas, 0)) * pt_per_unit
    alpha = EDGE_ALPHA * np.clip((size - 1.5) / 8, 0, 1)
    width = np.clip(0.06 * size, 0.15, 0.7) * scale
    return alpha, width


def _edges(part, ax, by_layer: bool, edge_layers, edgecolor, linewidth, layer_count=None):
    """One LineCollection of the region edges of the chosen layers, faded by region size."""
    import matplotlib as mpl
    from matplotlib.collections import LineCollection

    v = part.arrays.vertices
    nxt = part.arrays.polygons().next_vertex().numpy()
    owner = np.repeat(np.arange(len(part)), part.vertex_counts)
    layer = part.arrays.edge_units[:, 0]
    keep = (layer >= 0) & _chosen_layers(part, edge_layers)[np.maximum(layer, 0)] & part.exact[owner]
    alpha, width = edge_style(part.areas, points_per_unit(ax), 1.0 if linewidth is None else linewidth / 0.4)
    if not by_layer:
        keep &= (alpha > 0)[owner]  # edges of regions too small to see are not drawn at all
    if by_layer:
        n_layers = max(len(part.layers), 1) if layer_count is None else layer_count
        rgb = layer_palette(n_layers)[layer[keep], :3]
        alpha = np.maximum(alpha, 0.25)  # layer colours are the point of the picture
    else:
        rgb = np.broadcast_to(mpl.colors.to_rgb(edgecolor), (int(keep.sum()), 3))
    colors = np.c_[rgb, alpha[owner[keep]]]
    segs = np.stack([v[keep], v[nxt[keep]]], 1)
    edges = LineCollection(segs, colors=colors, linewidths=width[owner[keep]] * (1.4 if by_layer else 1.0),
                           zorder=2, capstyle="round")
    ax.add_collection(edges)
    return edges


def plot_partition(part, ax=None, color_by: str = "random", boundary: bool = True, points=None,
                   labels=None, output: int = 0, edgecolor="0.2", linewidth=None, boundary_kw=None,
                   layer_count=None, class_names=None, level: float = 0.0, edge_layers=None, legend: bool = True,
                   anchors: bool = True, anchor_labels=None, anchor_images: bool = False, axis_labels=("u", "v"),
                   **kwargs):
    """Draw the regions (one PolyCollection), their edges, the decision boundary, anchors and
    points, with a legend beside the axes.

    color_by: see :data:`COLOR_BY`; ``class`` fills the exact cells where each class wins,
    ``sign`` the exact cells of ``f_output >= level`` and ``< level``.  Coarse cells of a
    boundary-first partition (``Partition.exact``) are grey and hatched; the unfinished area of a
    partial result (``part.complete`` False) is hatched.  Edges fade with the size of their
    region on the page (edges of regions under ~1.5 points vanish); ``edge_layers`` (indices or
    names of ``part.layers``) draws only those layers' edges; ``linewidth`` scales the widest.
    points: (N, 2) slice coordinates to scatter, coloured by ``labels`` (integer classes: the
    class colours; numbers: a colour scale).  class_names: legend names of the classes (for one
    output or ``sign``: ``f < t``, then ``f >= t``).  anchors: mark the slice's anchor points,
    named ``anchor_labels`` (default ``x1, x2, ...``); anchor_images: draw the anchor inputs
    (image-shaped: (C, H, W) or (H, W)) as thumbnails beside them.  axis_labels: (u, v) names
    (None: none).  layer_count: layers in the colour scale of ``color_by="layer"``.  kwargs go
    to the PolyCollection.  Returns a dict of the artists: ``regions``, ``edges``, ``coarse``,
    ``unfinished``, ``boundary``, ``points``, ``anchors``, ``thumbnails``, ``legend`` (those drawn).
    """
    from matplotlib.collections import PolyCollection

    check_color_by(color_by)
    ax = _axes(ax)
    poly = part.slice.polygon
    lo, hi = poly.min(0), poly.max(0)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    artists, handles = {}, []
    if color_by in ("class", "sign"):
        cells = class_cells_of(part, color_by, output, level)
        names = class_labels(part, color_by, class_names, level, output)
        contrast = edge_style(part.areas, points_per_unit(ax))[0] / EDGE_ALPHA  # tiny regions: no shading either
        shapes, faces = cells.polygons, class_faces(cells.label, cells.region, 0, contrast)
    else:
        cells, shapes, faces = None, part.polygons, region_colors(part, color_by, output=output)
    exact = part.exact if cells is None else cells.label >= 0
    if not part.complete:
        artists["unfinished"] = _unfinished(ax, poly)
        handles.append(artists["unfinished"])
    regions = PolyCollection([s for s, e in zip(shapes, exact) if e], facecolors=faces[exact], edgecolors="face",
                             linewidths=0.05, antialiased=True, zorder=1, **kwargs)
    ax.add_collection(regions)
    artists["regions"] = regions
    if cells is not None:
        present = np.unique(cells.label[cells.label >= 0])
        handles += [_patch(class_color([c], FILL_LIGHT)[0], names[c]) for c in present]
    if not part.exact.all():
        coarse = [p for p, e in zip(part.polygons, part.exact) if not e]
        artists["coarse"] = PolyCollection(coarse, facecolors=COARSE_COLOR, edgecolors="0.6", hatch="//",
                                           linewidths=0.4, label="coarse cell (no boundary)", zorder=1)
        ax.add_collection(artists["coarse"])
        handles.append(artists["coarse"])
    layered = color_by == "layer"
    artists["edges"] = _edges(part, ax, layered, edge_layers, edgecolor, linewidth, layer_count)
    if layered:
        handles += [h for h, k in zip(layer_handles(part, layer_count), _chosen_layers(part, edge_layers)) if k]
    ax.add_patch(_outline(poly))
    if boundary:
        db = part.decision_boundary() if color_by != "sign" else part.level_set(level, output)
        artists["boundary"] = plot_boundary(db, ax=ax, **(boundary_kw or {}))
        if len(db):
            f = "f" if part.n_outputs == 1 else f"f{output}"
            handles.append(_line("decision boundary" if color_by != "sign" else f"level set {f} = {level:g}"))
    if points is not None:
        artists["points"] = _scatter(ax, points, labels)
        handles.append(_marker("data points"))
    if anchors and part.slice.anchors_uv is not None:
        artists.update(_anchors(part, ax, anchor_labels, anchor_images))
    if axis_labels is not None:
        ax.set_xlabel(axis_labels[0])
        ax.set_ylabel(axis_labels[1])
    if legend and handles:
        artists["legend"] = ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                                      borderaxespad=0.0, fontsize=8, frameon=False)
    return artists


def _patch(color, label):
    from matplotlib.patches import Patch

    return Patch(facecolor=color, edgecolor="0.35", linewidth=0.5, label=label)


def _line(label):
    import matplotlib.patheffects as pe
    from matplotlib.lines import Line2D

    return Line2D([], [], color="black", lw=2.0, label=label,
                  path_effects=[pe.Stroke(linewidth=3.6, foreground="white"), pe.Normal()])


def _marker(label):
    from matplotlib.lines import Line2D

    return Line2D([], [], ls="none", marker="o", ms=4.5, mfc="white", mec="black", mew=0.6, label=label)


def _outline(poly):
    from matplotlib.patches import Polygon

    return Polygon(poly, closed=True, fill=False, edgecolor="0.15", linewidth=0.8, zorder=2.5)


def _unfinished(ax, poly):
    """The slice polygon hatched under the regions: what a partial result did not reach."""
    from matplotlib.patches import Polygon

    patch = Polygon(poly, closed=True, facecolor="white", edgecolor="0.55", hatch="xx", linewidth=0.5,
                    zorder=0.5, label="not computed (partial result)")
    ax.add_patch(patch)
    return patch


def _scatter(ax, points, labels):
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    kw = {"s": 16, "edgecolors": "black", "linewidths": 0.6, "zorder": 4, "label": "data points"}
    if labels is None:
        return ax.scatter(pts[:, 0], pts[:, 1], color="white", **kw)
    labels = np.asarray(labels)
    if np.issubdtype(labels.dtype, np.integer) or np.issubdtype(labels.dtype, np.bool_):
        return ax.scatter(pts[:, 0], pts[:, 1], color=class_color(labels.astype(np.int64)), **kw)
    return ax.scatter(pts[:, 0], pts[:, 1], c=labels, cmap="coolwarm", **kw)


def _anchors(part, ax, anchor_labels, anchor_images):
    """The slice's anchor points as labelled dots, and optionally their inputs as thumbnails."""
    import matplotlib.patheffects as pe

    uv = np.asarray(part.slice.anchors_uv, dtype=np.float64).reshape(-1, 2)
    names = [f"x{i + 1}" for i in range(len(uv))] if anchor_labels is None else [str(s) for s in anchor_labels]
    if len(names) != len(uv):
        raise ValueError(f"anchor_labels needs {len(uv)} names (one per anchor), got {len(names)}.")
    out = {"anchors": ax.scatter(uv[:, 0], uv[:, 1], s=36, color="white", edgecolors="black", linewidths=1.4,
                                 zorder=5)}
    centre = part.slice.polygon.mean(0)
    halo = [pe.withStroke(linewidth=2.5, foreground="white")]
    for (u, v), name in zip(uv, names):
        if anchor_images:  # the label on the side away from the thumbnail
            toward = centre - (u, v)
            toward = 10 * toward / (np.linalg.norm(toward) or 1.0)
            place = {"xytext": tuple(toward), "ha": "left" if toward[0] >= 0 else "right", "va": "center"}
        else:
            place = {"xytext": (6, 6)}
        ax.annotate(name, (u, v), textcoords="offset points", fontsize=10, fontweight="bold", zorder=6,
                    path_effects=halo, **place)
    if anchor_images:
        out["thumbnails"] = _thumbnails(part, ax, uv, centre)
    return out


def anchor_pictures(sl, uv: np.ndarray) -> list[np.ndarray]:
    """The inputs at ``uv`` (N, 2) as images scaled to [0, 1]: (H, W) grey or (H, W, 3) colour.

    Raises ValueError when the slice's inputs are not image-shaped ((H, W) or (C, H, W), C in 1, 3)."""
    shape = tuple(sl.input_shape)
    if not (len(shape) == 2 or (len(shape) == 3 and shape[0] in (1, 3))):
        raise ValueError(f"anchor_images needs image-shaped inputs ((H, W) or (C, H, W) with C = 1 or 3); "
                         f"this slice's inputs have shape {shape}.")
    pictures = []
    for x in sl.to_input(uv).numpy():
        img = x[0] if x.ndim == 3 and x.shape[0] == 1 else np.moveaxis(x, 0, -1) if x.ndim == 3 else x
        lo, hi = img.min(), img.max()
        pictures.append((img - lo) / (hi - lo) if hi > lo else np.zeros_like(img))
    return pictures


def _thumbnails(part, ax, uv, centre):
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    boxes = []
    side_pt = 0.12 * ax.get_position().width * ax.figure.get_figwidth() * 72
    for (u, v), img in zip(uv, anchor_pictures(part.slice, uv)):
        away = np.array([u, v]) - centre
        away = away / (np.linalg.norm(away) or 1.0)
        zoom = side_pt / max(img.shape[:2]) * ax.figure.dpi / 72
        box = AnnotationBbox(OffsetImage(img, zoom=zoom, cmap="gray" if img.ndim == 2 else None,
                                         interpolation="nearest"),
                             (u, v), xybox=tuple(away * 1.15 * side_pt), boxcoords="offset points", pad=0.15,
                             frameon=True, bboxprops={"edgecolor": "0.2", "linewidth": 0.8}, zorder=6,
                             arrowprops={"arrowstyle": "-", "color": "0.2", "linewidth": 0.8})
        ax.add_artist(box)
        boxes.append(box)
    return boxes


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
    """Draw a boundary as its curves (connected polylines, :meth:`Boundary.curves`: joins drawn
    whole, no halo between segments) in one LineCollection, black with a thin white halo, above
    the regions; kwargs go to it."""
    import matplotlib.patheffects as pe
    from matplotlib.collections import LineCollection

    ax = _axes(ax)
    kw = {"colors": "black", "linewidths": 2.0, "zorder": 3, "capstyle": "round", "joinstyle": "round"}
    kw.update(kwargs)
    if "path_effects" not in kw:
        width = np.max(np.atleast_1d(kw.get("linewidths", kw.get("linewidth", 2.0))))
        kw["path_effects"] = [pe.Stroke(linewidth=float(width) + 1.6, foreground="white"), pe.Normal()]
    lines = LineCollection([curve.points for curve in db.curves()], **kw)
    ax.add_collection(lines)
    return lines


def plot_layers(parts: list, boundary=None, axes=None, ncols: int | None = None,
                panel_size: float = 3.2, titles=None, boundary_kw=None):
    """Draw the partitions of :func:`partition_by_layer` side by side, every edge coloured by
    the layer that created it (one colour scale for all panels).

    boundary: a :class:`splinecam.analysis.boundary.Boundary` drawn on every panel
    (e.g. the whole model's ``decision_boundary()``); axes: as many axes as
    partitions (default: a new figure, ``ncols`` per row).  Returns (fig, axes).
    """
    import matplotlib.pyplot as plt

    if not parts:
        raise ValueError("no partitions to draw (the model has no piecewise-linear layer).")
    n = len(parts)
    if axes is None:
        ncols = min(n, 5) if ncols is None else ncols
        nrows = -(-n // ncols)
        span = np.ptp(parts[0].slice.polygon, axis=0)
        height = panel_size * min(span[1] / span[0], 2.0)
        fig, grid = plt.subplots(nrows, ncols, figsize=(panel_size * ncols, (height + 0.4) * nrows + 0.4),
                                 squeeze=False, layout="constrained")
        for ax in grid.ravel()[n:]:
            ax.set_axis_off()
        axes = grid.ravel()[:n]
    axes = list(np.ravel(axes))
    if len(axes) != n:
        raise ValueError(f"got {len(axes)} axes for {n} partitions.")
    layer_count = max(len(p.layers) for p in parts)
    for k, (part, ax) in enumerate(zip(parts, axes)):
        plot_partition(part, ax=ax, color_by="layer", boundary=False, layer_count=layer_count, legend=False,
                       axis_labels=None)
        if boundary is not None:
            plot_boundary(boundary, ax=ax, **(boundary_kw or {}))
        layers = "layer 1" if k == 0 else f"layers 1-{k + 1}"
        ax.set_title(titles[k] if titles is not None else f"{layers}: {len(part):,} regions", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = layer_handles(max(parts, key=lambda p: len(p.layers)), layer_count)
    fig = axes[0].figure
    constrained = fig.get_layout_engine() is not None
    fig.legend(handles=handles, loc="outside lower center" if constrained else "lower center", ncol=len(handles),
               fontsize=9, frameon=False)
    return fig, axes
