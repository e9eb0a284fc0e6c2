"""Figures: the exact class cells (areas tile the regions, labels are the model's argmax inside),
pictures whose pixels show the class the model predicts, the palette, legends, anchors, faded
edges of dense partitions, and no warnings."""

from __future__ import annotations

import warnings

import matplotlib
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

matplotlib.use("Agg")
from helpers import REL, examples, model_out, output_scale, random_mlp, run
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import splinecam as sc
from splinecam.viz.plot import (
    CLASS_PALETTE,
    COARSE_COLOR,
    class_color,
    code_colors,
    edge_style,
    plot_partition,
)

BOX2 = sc.Slice.box((-2, -2), (2, 2))


def cell_interior_points(cells, shrink: float = 0.8):
    """(M, 2) points inside the cells (centroid and vertices pulled toward it), (M,) their cell."""
    pts, owner = [], []
    for i, poly in enumerate(cells.polygons):
        c = poly.mean(0)
        q = np.vstack([c[None], c + shrink * (poly - c)])
        pts.append(q)
        owner.append(np.full(len(q), i))
    return np.concatenate(pts), np.concatenate(owner)


def check_class_cells(part, model, output=None, level=None) -> None:
    cells = part.class_cells(output=output, level=level)
    assert len(cells.offsets) == len(cells) + 1 and len(cells.label) == len(cells.region) == len(cells.areas)
    assert (cells.areas > 0).all()
    per_region = np.bincount(cells.region, cells.areas, len(part))
    assert np.abs(per_region - part.areas).max() <= REL * part.slice.area
    assert sum(cells.class_areas().values()) == pytest.approx(part.slice.area, rel=1e-9)
    pts, owner = cell_interior_points(cells)
    assert (part.locate(pts) == cells.region[owner]).all()  # each cell lies in its region
    out = model_out(model, part.slice, pts)
    tol = 1e-9 * output_scale(part, model)
    label = cells.label[owner]
    if level is None and part.n_outputs > 1:
        assert (out[np.arange(len(out)), label] >= out.max(1) - tol).all()
    else:
        f = out[:, 0 if output is None else output] - (0.0 if level is None else level)
        assert (f[label == 1] >= -tol).all() and (f[label == 0] <= tol).all()


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(widths=st.lists(st.integers(1, 8), min_size=1, max_size=3), k=st.integers(1, 5),
       seed=st.integers(0, 10**6), integer=st.booleans(), extras=st.booleans())
def test_class_cells_tile_the_regions_and_win_inside(widths, k, seed, integer, extras):
    """Random and degenerate (integer weights: ties through vertices, dead units, plateaus)."""
    model = random_mlp(widths, k, seed, integer=integer, extras=extras)
    part = run(model, BOX2)
    check_class_cells(part, model)
    check_class_cells(part, model, output=k - 1, level=0.37)


def test_class_cells_of_duplicate_and_dead_units():
    lin = nn.Linear(2, 4)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 1.0], [1.0, 1.0], [0.0, 0.0], [1.0, -1.0]]))  # duplicate, dead
        lin.bias.copy_(torch.tensor([0.0, 0.0, -1.0, 0.0]))
    head = nn.Linear(4, 3)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0], [0.0, 0.0, 1.0, 0.0]]))
        head.bias.zero_()
    model = nn.Sequential(lin, nn.ReLU(), head)
    part = run(model, BOX2)
    check_class_cells(part, model)
    cells = part.class_cells()
    assert set(cells.class_areas()) <= {0, 1, 2}


def test_class_cells_of_coarse_cells_are_labelled_minus_one():
    model = random_mlp([8, 8], 3, seed=3)
    fast = sc.decision_boundary(model, sc.Slice.box((-3, -3), (3, 3)), progress=False).partition
    cells = fast.class_cells()
    assert (cells.label[~fast.exact[cells.region]] == -1).all()
    assert (cells.label[fast.exact[cells.region]] >= 0).all()
    assert np.bincount(cells.region, cells.areas, len(fast)) == pytest.approx(fast.areas, rel=1e-9, abs=1e-12)


# --- pictures show what the model predicts ---------------------------------------------------


def render(part, **kwargs):
    """(H, W, 3) float pixels of a plot filling the whole figure, and its axes."""
    fig = Figure(figsize=(4, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes([0, 0, 1, 1])
    plot_partition(part, ax=ax, legend=False, **kwargs)
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3] / 255.0, ax


def pixels_at(img, ax, uv):
    xy = ax.transData.transform(uv)
    col = np.floor(xy[:, 0]).astype(int)
    row = img.shape[0] - 1 - np.floor(xy[:, 1]).astype(int)
    return img[row, col]


def far_from(db, uv, ax, pixels: float) -> np.ndarray:
    """(N,) bool: the points ``uv`` more than ``pixels`` from every segment of ``db``."""
    if not len(db):
        return np.ones(len(uv), bool)
    a, b = db.segments[:, 0], db.segments[:, 1]
    d = b - a
    t = np.clip(np.einsum("nsk,sk->ns", uv[:, None] - a, d) / np.maximum((d * d).sum(1), 1e-300), 0, 1)
    dist = np.linalg.norm(uv[:, None] - (a + t[..., None] * d), axis=2).min(1)
    px_per_unit = ax.transData.transform([[1, 0]])[0, 0] - ax.transData.transform([[0, 0]])[0, 0]
    return dist * px_per_unit > pixels


def nearest_class(colors, n_classes):
    """(N,) the class whose fill colour is nearest to each pixel colour."""
    palette = class_color(np.arange(n_classes), 0.4)
    return np.linalg.norm(colors[:, None] - palette[None], axis=2).argmin(1)


@pytest.mark.parametrize("seed", [0, 5])
def test_class_picture_shows_the_predicted_class(seed):
    model = random_mlp([12, 12], 5, seed=seed)
    part = run(model, BOX2)
    img, ax = render(part, color_by="class", edge_layers=[])
    uv = np.random.default_rng(seed).uniform(-1.97, 1.97, (3000, 2))
    uv = uv[far_from(part.decision_boundary(), uv, ax, 4)]
    assert len(uv) > 1500
    predicted = model_out(model, part.slice, uv).argmax(1)
    shown = nearest_class(pixels_at(img, ax, uv), 5)
    assert (shown == predicted).all(), f"{(shown != predicted).sum()} of {len(uv)} pixels show another class"


def test_sign_picture_shows_the_side_of_the_level_set():
    model = random_mlp([10, 10], 1, seed=7)
    part = run(model, BOX2)
    level = float(np.median(part.centroid_outputs))
    img, ax = render(part, color_by="sign", level=level, edge_layers=[])
    uv = np.random.default_rng(1).uniform(-1.97, 1.97, (3000, 2))
    uv = uv[far_from(part.level_set(level), uv, ax, 4)]
    assert len(uv) > 1500
    above = model_out(model, part.slice, uv)[:, 0] >= level
    assert (nearest_class(pixels_at(img, ax, uv), 2) == above).all()


# --- palette, legends, anchors, warnings -----------------------------------------------------


def test_class_palette_has_no_grey_and_24_distinct_colours():
    rgb = class_color(np.arange(48))
    first = rgb[:24]
    dist = np.linalg.norm(first[:, None] - first[None], axis=2) + np.eye(24)
    assert dist.min() > 0.25
    saturation = (first.max(1) - first.min(1)) / first.max(1)  # HSV saturation
    assert saturation.min() > 0.35  # no grey: class 7 is not the coarse cells' grey
    assert np.linalg.norm(class_color([7], 0.4)[0] - np.array(COARSE_COLOR[:3])) > 0.3
    assert len(CLASS_PALETTE) == 24 and np.allclose(rgb[24:], first * 0.7)  # the next round is darker


def test_legend_lists_classes_present_boundary_and_points():
    model = random_mlp([12, 12], 5, seed=0)
    part = run(model, BOX2)
    fig, ax = Figure(), None
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    names = ["cat", "dog", "bird", "fish", "frog"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        artists = part.plot(ax=ax, color_by="class", class_names=names, points=np.zeros((3, 2)),
                            labels=np.array([0, 1, 2]))
        part.plot(ax=ax, points=np.zeros((3, 2)))  # no labels: white points, no colormap warning
        part.plot(ax=ax, points=np.zeros((3, 2)), labels=np.array([0.1, 0.5, 0.9]))
    present = sorted(part.class_cells().class_areas())
    texts = [t.get_text() for t in artists["legend"].get_texts()]
    assert texts == [names[c] for c in present] + ["decision boundary", "data points"]
    assert ax.get_xlabel() == "u" and ax.get_ylabel() == "v"
    with pytest.raises(ValueError, match="class_names needs 5 names"):
        part.plot(ax=ax, color_by="class", class_names=["a"])


def test_layer_legend_names_the_modules_and_edge_layers_chooses():
    model = nn.Sequential()
    model.add_module("hidden", nn.Linear(2, 6))
    model.add_module("act", nn.ReLU())
    model.add_module("deep", nn.Linear(6, 6))
    model.add_module("act2", nn.ReLU())
    model.add_module("head", nn.Linear(6, 2))
    part = run(model, BOX2)
    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    artists = part.plot(ax=ax, color_by="layer")
    texts = [t.get_text() for t in artists["legend"].get_texts()]
    assert texts[:2] == [f"layer {k + 1}: {layer.name}, {layer.units} units" for k, layer in enumerate(part.layers)]
    assert all(layer.name in ("act", "act2") for layer in part.layers)
    second = part.layers[1].name
    artists = part.plot(ax=ax, color_by="layer", edge_layers=[second])
    inner = part.arrays.edge_units[:, 0]
    assert len(artists["edges"].get_segments()) == int((inner == 1).sum())
    with pytest.raises(ValueError, match="neither a layer name"):
        part.plot(ax=ax, edge_layers=["nope"])


def test_boundary_first_with_only_coarse_cells_has_no_class_entry():
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 3))
    with torch.no_grad():
        model[2].bias.copy_(torch.tensor([100.0, 0.0, 0.0]))  # class 0 everywhere
    fast = sc.decision_boundary(model, BOX2, progress=False).partition
    assert not fast.exact.any()
    fig = Figure()
    FigureCanvasAgg(fig)
    artists = fast.plot(ax=fig.add_subplot(), color_by="class")
    assert [t.get_text() for t in artists["legend"].get_texts()] == ["coarse cell (no boundary)"]


def test_partial_result_is_hatched_and_named():
    model = random_mlp([16, 16], 3, seed=2)
    with pytest.raises(sc.RegionLimitError) as err:
        run(model, BOX2, max_regions=20)
    partial = err.value.partial
    fig = Figure()
    FigureCanvasAgg(fig)
    artists = partial.plot(ax=fig.add_subplot(), color_by="class")
    assert artists["unfinished"].get_hatch() == "xx"
    assert "not computed (partial result)" in [t.get_text() for t in artists["legend"].get_texts()]


def test_anchors_are_labelled_and_images_drawn_beside_them():
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(3, 1, 6, 6, generator=gen, dtype=torch.float64)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(32, 3)).double().eval()
    sl = sc.Slice.from_points(*images)
    part = sc.partition(model, sl, progress=False)
    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    artists = part.plot(ax=ax, color_by="class", anchor_images=True)
    assert [t.get_text() for t in ax.texts] == ["x1", "x2", "x3"]
    assert len(artists["thumbnails"]) == 3
    shown = artists["thumbnails"][0].offsetbox.get_data()
    assert shown.shape == (6, 6) and shown.min() == 0 and shown.max() == 1
    part.plot(ax=ax, anchor_labels=["a", "b", "c"])
    assert [t.get_text() for t in ax.texts][-3:] == ["a", "b", "c"]
    flat = sc.Slice.from_points(*np.random.default_rng(0).standard_normal((3, 5)))
    mlp = sc.partition(nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2)), flat, progress=False)
    with pytest.raises(ValueError, match="image-shaped"):
        mlp.plot(ax=ax, anchor_images=True)


def test_edges_of_tiny_regions_fade_out():
    alpha, width = edge_style(np.array([1e-8, 1e-4, 1e-2, 1.0]), pt_per_unit=100.0)
    assert alpha[0] == 0 and alpha[1] == 0 and 0 < alpha[2] and alpha[2] <= alpha[3]
    assert (np.diff(width) >= 0).all()


def test_code_colours_follow_the_code_across_partitions():
    model = random_mlp([8, 8], 2, seed=4)
    a = run(model, sc.Slice.box((-1, -1), (1, 1)))
    b = run(model, sc.Slice.box((-0.5, -0.7), (1.5, 1.2)))
    pts = np.random.default_rng(0).uniform(-0.4, 0.9, (200, 2))
    ra, rb = a.locate(pts), b.locate(pts)
    same = (a.codes[ra] == b.codes[rb]).all(1)
    assert same.all()
    assert np.allclose(code_colors(a.arrays.packed_codes)[ra], code_colors(b.arrays.packed_codes)[rb])
    colors = code_colors(a.arrays.packed_codes)
    assert len(np.unique(np.round(colors, 6), axis=0)) > 0.9 * len(a)  # distinct codes, (nearly) distinct colours


def test_the_boundary_is_drawn_as_its_curves():
    import matplotlib.pyplot as plt

    part = run(random_mlp([12, 12], 3, seed=4))
    db = part.decision_boundary()
    fig, ax = plt.subplots()
    lines = part.plot(ax=ax, color_by="class")["boundary"]
    drawn = lines.get_segments()
    curves = db.curves()
    assert len(drawn) == len(curves) < len(db)  # polylines, not one line per segment
    length = sum(float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum()) for p in drawn)
    assert length == pytest.approx(db.length, rel=1e-12)
    plt.close(fig)
