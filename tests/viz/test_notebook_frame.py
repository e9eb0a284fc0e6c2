"""Tables (to_frame, agreeing with stats), notebook display (self-contained HTML) and class legends."""

from __future__ import annotations

import base64
import html
import io
import re
import sys

import matplotlib
import numpy as np
import pytest

import splinecam as sc
from helpers import BOX, model_out, random_mlp, run, via_quadrants
from splinecam.viz import notebook

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

pd = pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def part3():
    return run(random_mlp([8, 8], 3, seed=1))  # 3 classes and a boundary in the box


# --- to_frame ------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3])
def test_to_frame_agrees_with_stats(k):
    part = run(random_mlp([7, 6], k, seed=11 + k))
    df = part.to_frame()
    stats = part.stats()
    assert len(df) == stats["n_regions"] == len(part)
    for column, key in [("area", "area"), ("vertices", "vertices"), ("eccentricity", "eccentricity"),
                        ("slope_norm", "slope")]:
        values = df[column].to_numpy()
        assert values.mean() == pytest.approx(stats[f"{key}_mean"], rel=1e-12)
        assert values.std() == pytest.approx(stats[f"{key}_std"], rel=1e-9, abs=1e-15)
        assert values.min() == stats[f"{key}_min"] and values.max() == stats[f"{key}_max"]
        assert np.median(values) == pytest.approx(stats[f"{key}_median"], rel=1e-12)
    assert df["area"].sum() == pytest.approx(BOX.area, rel=1e-12)
    # outputs, class and margin at the centroid, from the model itself
    centroids = df[["centroid_u", "centroid_v"]].to_numpy()
    assert np.array_equal(part.locate(centroids), np.arange(len(part)))
    out = model_out(part.model, part.slice, centroids)
    cols = ["output"] if k == 1 else [f"output_{j}" for j in range(k)]
    np.testing.assert_allclose(df[cols].to_numpy(), out, rtol=1e-9, atol=1e-9 * np.abs(out).max())
    uncut = df["n_classes"].to_numpy() == 1  # where no boundary cuts the region, its class is the centroid's
    assert (df["n_classes"] >= 1).all() and uncut.any()
    if k == 1:
        assert np.array_equal(df["class"][uncut], (out[uncut, 0] > 0).astype(int))
        np.testing.assert_allclose(df["margin"], np.abs(out[:, 0]), rtol=1e-9, atol=1e-12)
    else:
        assert np.array_equal(df["class"][uncut], out[uncut].argmax(1))
        top2 = np.sort(out, 1)[:, -2:]
        np.testing.assert_allclose(df["margin"], top2[:, 1] - top2[:, 0], rtol=1e-9, atol=1e-12)
    # per-layer counts: sides per layer add up to each region's vertex count
    edge_cols = [c for c in df if c.startswith("edges_")] + ["border_edges"]
    assert len(edge_cols) == len(part.layers) + 1
    assert np.array_equal(df[edge_cols].sum(axis=1), df["vertices"])
    bits = [layer.bits for layer in part.layers]
    active = np.stack([df[f"active_{j + 1}"] for j in range(len(bits))], 1)
    assert np.array_equal(active.sum(1), part.codes.sum(1))


@pytest.mark.parametrize("k", [1, 3])
def test_class_area_frame_is_exact(k):
    from splinecam.viz.frame import class_area_frame

    part = run(random_mlp([7, 6], k, seed=11 + k))
    cells = part.class_cells()
    table = class_area_frame(part)
    assert table["area"].sum() == pytest.approx(BOX.area, rel=1e-12)
    assert table["fraction"].sum() == pytest.approx(1.0, rel=1e-12)
    for c, row in table.iterrows():
        assert row["area"] == pytest.approx(cells.areas[cells.label == c].sum(), rel=1e-12)
        assert row["regions"] == len(np.unique(cells.region[cells.label == c]))
    df = part.to_frame()  # each region's class is the one with the largest cell in it
    for r in np.flatnonzero(df["n_classes"].to_numpy() > 1):
        mine = cells.region == r
        assert df["class"].iloc[r] == cells.label[mine][cells.areas[mine].argmax()]
    level = class_area_frame(part, output=0, level=0.2)
    assert list(level.index) in ([0, 1], [0], [1]) and level["area"].sum() == pytest.approx(BOX.area, rel=1e-12)


def test_to_frame_on_known_arrangement():
    """Quadrants: every region has two unit sides, two border sides and two active units."""
    part = run(via_quadrants([[1.0, -1.0, 2.0, -2.0]], [0.5]))
    df = part.to_frame()
    assert len(df) == 4
    assert list(df["edges_1"]) == [2] * 4 and list(df["border_edges"]) == [2] * 4
    assert list(df["active_1"]) == [2] * 4
    np.testing.assert_allclose(df["area"], 1.0)
    np.testing.assert_allclose(df["eccentricity"], 0.0, atol=1e-7)  # squares
    np.testing.assert_allclose(df["slope_norm"], np.hypot(1, 2))


def test_to_frame_without_pandas(part3, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"pip install 'splinecam\[frames\]'"):
        part3.to_frame()


# --- notebook display ------------------------------------------------------------------------

EXTERNAL = re.compile(r"""(?:src|href|action|data)\s*=\s*["']?\s*(?:https?:|//|ftp:)|url\(\s*["']?(?:https?:|//)"""
                      r"""|@import|\bfetch\s*\(|XMLHttpRequest|WebSocket|EventSource|\bimport\s*\(|sendBeacon""", re.I)


def _frames(markup: str) -> list[str]:
    return [html.unescape(doc) for doc in re.findall(r'<iframe srcdoc="([^"]*)"', markup)]


def test_repr_html_is_the_self_contained_viewer(part3):
    markup = part3._repr_html_()
    pages = _frames(markup)
    assert len(pages) == 1
    assert not EXTERNAL.search(markup) and not EXTERNAL.search(pages[0])
    assert 'sandbox="allow-scripts' in markup
    assert f"{len(part3):,} regions" in markup
    assert '"n_regions":%d' % len(part3) in pages[0]


def test_repr_html_large_partition_falls_back_to_png(part3, monkeypatch):
    monkeypatch.setattr(notebook, "MAX_REGIONS", len(part3) - 1)
    markup = part3._repr_html_()
    assert "<iframe" not in markup and "part.show(interactive=True)" in markup
    assert not EXTERNAL.search(markup)
    png = base64.b64decode(re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', markup).group(1))
    image = plt.imread(io.BytesIO(png))
    assert image.ndim == 3 and image.shape[0] > 100 and image[..., :3].std() > 0.05  # a picture, not blank
    assert "<iframe" in part3.show(interactive=True)._repr_html_()  # the way to choose
    assert "<iframe" not in part3.show(interactive=False)._repr_html_()
    assert "<iframe" in part3.show(max_regions=len(part3))._repr_html_()


def test_boundary_display(part3):
    db = part3.decision_boundary()
    assert repr(db) == f"Boundary({len(db):,} segments, length {db.length:.6g}, {db.pieces()} pieces)"
    markup = db._repr_html_()
    assert not EXTERNAL.search(markup)
    path = re.search(r'<path d="([^"]+)"', markup).group(1)
    assert path.count("M") == path.count("L") == len(db) > 0
    empty = sc.partition(random_mlp([3], 1, seed=0), sc.Slice.box((50, 50), (51, 51)), progress=False)
    edb = empty.decision_boundary()
    assert len(edb) == 0 and "<svg" not in edb._repr_html_() and "0 segments" in edb._repr_html_()


# --- class legend ------------------------------------------------------------------------------


def test_class_legend_names_the_classes(part3):
    fig, ax = plt.subplots()
    artists = part3.plot(ax=ax, color_by="class", class_names=["cat", "dog", "bird"])
    cells = part3.class_cells()
    present = np.unique(cells.label)
    texts = [t.get_text() for t in artists["legend"].get_texts()]
    assert texts == [["cat", "dog", "bird"][c] for c in present] + ["decision boundary"]
    faces = artists["regions"].get_facecolors()[:, :3]  # one face per class cell
    for handle, c in zip(artists["legend"].legend_handles, present):  # legend colour = its cells' hue
        mine = faces[cells.label == c]
        assert np.abs(mine - handle.get_facecolor()[:3]).max() < 0.15
    artists = part3.plot(ax=ax, color_by="class")
    assert [t.get_text() for t in artists["legend"].get_texts()][:-1] == [f"class {c}" for c in present]
    with pytest.raises(ValueError, match="class_names needs 3 names"):
        part3.plot(ax=ax, color_by="class", class_names=["a", "b"])
    one = run(random_mlp([6], 1, seed=2))
    artists = one.plot(ax=ax, color_by="class", class_names=["negative", "positive"])
    assert {t.get_text() for t in artists["legend"].get_texts()} <= {"negative", "positive", "decision boundary"}
    plt.close(fig)
