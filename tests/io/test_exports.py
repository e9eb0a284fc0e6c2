"""SVG and GeoJSON exports."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from helpers import random_mlp, run

NS = "{http://www.w3.org/2000/svg}"


def test_svg_groups(tmp_path):
    part = run(random_mlp([6, 6], 3, 1))
    path = tmp_path / "p.svg"
    part.to_svg(path)
    root = ET.parse(path).getroot()
    groups = {g.get("id"): g for g in root.iter(NS + "g") if g.get("id")}
    assert {"regions", "border", "boundary"} <= set(groups)
    assert {f"layer-{layer.name}" for layer in part.layers} <= set(groups)
    assert len(groups["regions"].findall(NS + "path")) == len(part)
    assert len(groups["boundary"].findall(NS + "path")) == len(part.decision_boundary().curves())
    assert [p.name for p in tmp_path.iterdir()] == ["p.svg"]  # no temporary file left


def test_svg_into_a_missing_folder(tmp_path):
    part = run(random_mlp([4], 1, 0))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        part.to_svg(tmp_path / "nowhere" / "p.svg")


def ring_area(ring) -> float:
    r = np.asarray(ring)[:-1]
    return 0.5 * float(np.sum(r[:, 0] * np.roll(r[:, 1], -1) - r[:, 1] * np.roll(r[:, 0], -1)))


def test_geojson():
    part = run(random_mlp([6, 6], 3, 2))
    gj = json.loads(json.dumps(part.to_geojson()))
    assert gj["type"] == "FeatureCollection" and len(gj["features"]) == len(part)
    for f, area in zip(gj["features"], part.areas):
        ring = f["geometry"]["coordinates"][0]
        assert ring[0] == ring[-1]
        assert ring_area(ring) == pytest.approx(area, rel=1e-12)  # counter-clockwise
    db = part.decision_boundary()
    bj = json.loads(json.dumps(db.to_geojson()))
    lengths = [f["properties"]["length"] for f in bj["features"]]
    assert sum(lengths) == pytest.approx(db.length, rel=1e-12)
    for f in bj["features"]:
        pts = np.asarray(f["geometry"]["coordinates"])
        assert np.linalg.norm(np.diff(pts, axis=0), axis=1).sum() == pytest.approx(f["properties"]["length"])
