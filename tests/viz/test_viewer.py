"""The HTML viewer file: encoding round trip, self-containment, size, CLI.  (Browser tests: test_viewer_browser.py.)"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import splinecam as sc
from splinecam.apps.cli import main
from splinecam.viz.plot import COLOR_BY, region_colors
from splinecam.viz.viewer import _palette, read_data


@pytest.fixture(scope="module")
def part():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16), torch.nn.ReLU(),
                                torch.nn.Linear(16, 3))
    sl = sc.Slice.from_points(np.array([0.0, 0.0]), np.array([1.0, 0.2]), np.array([0.1, 1.0]))
    return sc.partition(model, sl, progress=False)


@pytest.fixture(scope="module")
def page(part, tmp_path_factory):
    path = part.to_html(tmp_path_factory.mktemp("v") / "p.html", color_by="class", title="a <b>&</script> title")
    return path, path.read_text(encoding="utf-8")


def test_round_trip_is_bit_exact(part, page):
    meta, arrays = read_data(page[0])
    np.testing.assert_array_equal(arrays["verts"], part.arrays.vertices)
    np.testing.assert_array_equal(arrays["offsets"], part.arrays.offsets)
    np.testing.assert_array_equal(arrays["layers"], part.arrays.edge_units[:, 0])
    np.testing.assert_array_equal(arrays["affine"], part.affine)
    np.testing.assert_array_equal(arrays["boundary"], part.decision_boundary().segments)
    assert arrays["verts"].dtype == np.float64 and arrays["offsets"].dtype == np.int32
    assert meta["n_regions"] == len(part) and meta["n_outputs"] == 3 and meta["color_by"] == "class"
    assert np.array_equal(meta["polygon"], part.slice.polygon)
    assert np.array_equal(meta["anchors"], part.slice.anchors_uv)
    assert [layer["units"] for layer in meta["layers"]] == [16, 16]


@pytest.mark.parametrize("mode", COLOR_BY)
def test_palette_colours_match_plot_colours(part, page, mode):
    meta, arrays = read_data(page[0])
    pal = np.array([[int(h[i:i + 2], 16) for i in (1, 3, 5)] for h in meta["palettes"][mode]]) / 255
    shown = pal[arrays[f"color_{mode}"]]
    assert np.abs(shown - region_colors(part, mode)[:, :3]).max() <= 1 / 62 + 1 / 510


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 300), st.just(4)), elements=st.floats(0, 1)))
def test_palette_quantisation(rgba):
    pal, index = _palette(rgba)
    assert index.dtype == np.uint16 and len(index) == len(rgba) and len(set(pal)) == len(pal)
    rgb = np.array([[int(h[i:i + 2], 16) for i in (1, 3, 5)] for h in pal]) / 255
    assert np.abs(rgb[index] - rgba[:, :3]).max() <= 1 / 62 + 1 / 510


def test_self_contained(page):
    text = page[1]
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert "http://" not in text and "https://" not in text
    assert not re.search(r"<(link|iframe|img|object|embed)\b", text, re.I)
    assert not re.search(r"\b(fetch|XMLHttpRequest|WebSocket|EventSource|importScripts)\b|import\(", text)


def test_title_is_escaped(page):
    text = page[1]
    assert "<title>a &lt;b&gt;&amp;&lt;/script&gt; title</title>" in text
    assert text.count("</script>") == text.count("<script")  # the title closes no script element
    assert read_data(page[0])[0]["title"] == "a <b>&</script> title"


def test_size_per_region(part, page):
    """Binary arrays in base64: the file is the raw bytes x 4/3 plus the fixed page."""
    _, arrays = read_data(page[0])
    raw = sum(a.nbytes for a in arrays.values())
    n, k, nv = len(part), part.n_outputs, len(part.arrays.vertices)
    cells = sum(16 * len(arrays[f"cells_{m}_verts"]) + 4 * len(arrays[f"cells_{m}_offsets"])
                + 6 * len(arrays[f"cells_{m}_region"]) for m in ("class", "sign"))  # cells of cut regions
    assert raw == (16 * nv + 4 * (n + 1) + 4 * nv + 24 * k * n + 32 * len(arrays["boundary"]) + 2 * len(COLOR_BY) * n
                   + n + cells)  # one byte per region: exact or coarse
    size = page[0].stat().st_size
    assert 4 / 3 * raw < size < 4 / 3 * raw + 80_000


def test_class_cells_and_key_and_points(tmp_path):
    """The class colourings carry the exact cells of every region the boundary cuts, with the
    class of each; the key lists the classes present; points keep their class colours."""
    from helpers import random_mlp

    part = sc.partition(random_mlp([12, 12], 3, seed=0), sc.Slice.box((-2, -2), (2, 2)), progress=False)
    path = part.to_html(tmp_path / "pts.html", points=[[0.1, 0.2], [0.3, 0.4]], labels=np.array([0, 2]),
                        class_names=["cat", "dog", "bird"])
    meta, arrays = read_data(path)
    cells = part.class_cells()
    cut = np.bincount(cells.region, minlength=len(part))[cells.region] > 1
    np.testing.assert_array_equal(arrays["cells_class_region"], cells.region[cut])
    assert len(arrays["cells_class_offsets"]) == cut.sum() + 1 and cut.any()
    pal = np.array([[int(h[i:i + 2], 16) for i in (1, 3, 5)] for h in meta["palettes"]["class"]]) / 255
    shown = pal[arrays["cells_class_color"]]
    from splinecam.viz.plot import class_color
    nearest = np.linalg.norm(shown[:, None] - class_color(np.arange(3), 0.4)[None], axis=2).argmin(1)
    np.testing.assert_array_equal(nearest, cells.label[cut])
    assert [k["name"] for k in meta["class_keys"]["class"]] == [["cat", "dog", "bird"][c] for c in np.unique(cells.label)]
    assert meta["points"] == [[0.1, 0.2, "#1f77b4"], [0.3, 0.4, "#2ca02c"]]
    assert all(layer["color"] != meta["layers"][0]["color"] for layer in meta["layers"][1:])


def test_bad_colouring(part, tmp_path):
    with pytest.raises(ValueError, match="color_by"):
        part.to_html(tmp_path / "x.html", color_by="rainbow")


def test_cli_view(part, tmp_path, capsys):
    part.save(tmp_path / "p.npz")
    assert main(["view", str(tmp_path / "p.npz"), "--color-by", "slope"]) == 0
    meta, arrays = read_data(tmp_path / "p.html")
    assert "wrote" in capsys.readouterr().out
    assert meta["title"] == "p" and meta["color_by"] == "slope"
    np.testing.assert_array_equal(arrays["verts"], part.arrays.vertices)
    assert main(["view", str(tmp_path / "p.npz"), "--out", str(tmp_path / "other.html"), "--title", "T"]) == 0
    assert read_data(tmp_path / "other.html")[0]["title"] == "T"


def test_read_data_rejects_other_files(tmp_path):
    (tmp_path / "x.html").write_text("<html></html>")
    with pytest.raises(ValueError, match="not a splinecam viewer"):
        read_data(tmp_path / "x.html")


def test_single_region_without_anchors(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(2, 1))
    p = sc.partition(model, sc.Slice.box((-1, -1), (1, 1)), progress=False)
    meta, arrays = read_data(p.to_html(tmp_path / "one.html"))
    assert meta["n_regions"] == 1 and meta["anchors"] == [] and arrays["offsets"].tolist() == [0, 4]
