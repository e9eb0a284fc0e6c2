"""Exact level-set meshes of networks in volumes: watertight, vertices on the surface to rounding,
the octahedron ``|x| + |y| + |z| = 1`` exactly, a trained 3-D SDF; the verify report; file export."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import splinecam as sc
from helpers import REL, check_watertight, examples, linear_layer, model64, random_mlp
from trained_models import sdf3_mlp


def octahedron() -> nn.Sequential:
    """|x| + |y| + |z| - 1 as a ReLU network: relu(+-x), relu(+-y), relu(+-z), summed."""
    first = linear_layer(np.vstack([np.eye(3), -np.eye(3)]), np.zeros(6))
    return nn.Sequential(first, nn.ReLU(), linear_layer(np.ones((1, 6)), [-1.0])).eval()


def on_surface(mesh, model) -> None:
    """|f - t| at every vertex within 1e-9 of the output scale (float64 copy of the user's model)."""
    if not len(mesh.vertices):
        return
    with torch.no_grad():
        f = model64(model)(mesh.inputs()).reshape(len(mesh.vertices), -1)[:, mesh.output].numpy()
        corners = model64(model)(mesh.volume.to_input(mesh.volume.vertices)).abs().max().item()
    assert np.abs(f - mesh.t).max() <= REL * max(corners, abs(mesh.t), 1.0)


def test_octahedron_is_exactly_its_eight_faces():
    model = octahedron()
    part = sc.partition(model, sc.Volume.box([-2, -2, -2], [2, 2, 2]), progress=False)
    assert len(part) == 8
    mesh = part.level_set_mesh()
    assert len(mesh) == 8 and len(mesh.vertices) == 6
    assert np.array_equal(np.sort(np.abs(mesh.vertices), axis=1), np.tile([0.0, 0.0, 1.0], (6, 1)))
    assert mesh.areas().sum() == pytest.approx(4 * np.sqrt(3), rel=1e-15)
    check_watertight(mesh)
    edges, uses = mesh.edges()
    assert len(edges) == 12 and (uses == 2).all()
    normals = np.cross(*(mesh.vertices[mesh.triangles[:, k]] - mesh.vertices[mesh.triangles[:, 0]] for k in (1, 2)))
    centres = mesh.vertices[mesh.triangles].mean(1)
    assert ((normals * centres).sum(1) > 0).all()  # counter-clockwise seen from outside (f > 0)
    assert set(mesh.cell) == set(range(8))


@settings(max_examples=examples(6), deadline=None)
@given(st.integers(0, 2**31 - 1), st.booleans(), st.floats(-0.5, 0.5))
def test_random_level_sets_are_watertight(seed, integer, t):
    model = random_mlp([8, 6], 2, seed, integer=integer, inputs=3)
    part = sc.partition(model, sc.Volume.box([-1, -1.5, -0.5], [1.2, 1, 1]), progress=False)
    for output in (0, 1):
        mesh = part.level_set_mesh(t, output)
        check_watertight(mesh)
        on_surface(mesh, model)
        assert (part.volumes[mesh.cell] > 0).all()


def test_trained_sdf_sphere():
    model, X, y = sdf3_mlp()
    part = sc.partition(model, sc.Volume.box([-1, -1, -1], [1, 1, 1]), progress=False)
    assert part.verify().ok
    mesh = part.level_set_mesh()
    check_watertight(mesh)
    on_surface(mesh, model)
    radius = np.linalg.norm(mesh.vertices, axis=1)
    assert np.median(np.abs(radius - 0.6)) < 0.05  # the fit is a sphere of radius 0.6, roughly
    # away from the box's faces, the surface is closed: the sphere's component has no border edges
    edges, uses = mesh.edges()
    inner = (np.abs(mesh.vertices[edges]).max(-1) < 0.99).all(1)
    assert (uses[inner] == 2).all()


def test_level_set_mesh_boundary_first_matches_the_full_partition():
    model, _, _ = sdf3_mlp(seed=1)
    box = sc.Volume.box([-1, -1, -1], [1, 1, 1])
    full = sc.partition(model, box, progress=False).level_set_mesh(0.05)
    fast = sc.level_set_mesh(model, box, t=0.05, progress=False)
    check_watertight(fast)
    on_surface(fast, model)
    assert len(fast) == len(full) and len(fast.vertices) == len(full.vertices)
    assert fast.areas().sum() == pytest.approx(full.areas().sum(), rel=1e-12)
    key = lambda m: np.sort(np.round(m.vertices, 9).view("f8,f8,f8").ravel())  # noqa: E731
    assert np.array_equal(key(fast), key(full))
    assert fast.partition is not None and (~fast.partition.exact).any()


def test_verify_catches_a_wrong_model_and_meshes_export(tmp_path):
    model = random_mlp([6, 6], 1, 7, inputs=3)
    part = sc.partition(model, sc.Volume.box([-1, -1, -1], [1, 1, 1]), progress=False)
    assert part.verify().ok
    other = random_mlp([6, 6], 1, 8, inputs=3)
    assert not part.verify(model=other).ok
    mesh = part.level_set_mesh(float(np.median(part.arrays.centroid_outputs[:, 0])))
    assert len(mesh) > 10
    ply = mesh.to_ply(tmp_path / "m.ply")
    data = ply.read_bytes()
    header, body = data.split(b"end_header\n", 1)
    assert f"element vertex {len(mesh.vertices)}".encode() in header
    verts = np.frombuffer(body[: 24 * len(mesh.vertices)], "<f8").reshape(-1, 3)
    assert np.array_equal(verts, mesh.vertices)
    faces = np.frombuffer(body[24 * len(mesh.vertices):], [("n", "u1"), ("idx", "<i4", 3), ("cell", "<i4")])
    assert np.array_equal(faces["idx"], mesh.triangles) and np.array_equal(faces["cell"], mesh.cell)
    obj = mesh.to_obj(tmp_path / "m.obj").read_text().splitlines()
    v = np.array([[float(x) for x in line.split()[1:]] for line in obj if line.startswith("v ")])
    f = np.array([[int(x) for x in line.split()[1:]] for line in obj if line.startswith("f ")])
    assert np.array_equal(v, mesh.vertices) and np.array_equal(f - 1, mesh.triangles)
    with pytest.raises(ValueError, match="output"):
        part.level_set_mesh(0.0, output=1)


def test_trimesh_hand_off():
    mesh = sc.partition(octahedron(), sc.Volume.box([-2, -2, -2], [2, 2, 2]), progress=False).level_set_mesh()
    try:
        import trimesh  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"splinecam\[meshes\]"):
            mesh.to_trimesh()
        return
    tm = mesh.to_trimesh()
    assert tm.is_watertight and tm.area == pytest.approx(4 * np.sqrt(3))
