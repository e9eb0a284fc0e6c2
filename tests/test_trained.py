"""The tier of trained models (tests/trained_models.py): a digits CNN with BatchNorm and
max-pooling, a signed-distance MLP and a multi-class MLP that uses one ReLU instance twice.  On
each, through every executor that can run it (the MLP fast path and the engine): the partition is
exact (tiles the slice, each region's map is the model's, verify compares and passes), the
decision boundary's samples tie, boundary-first gives exactly the full partition's boundary, and
tiles give the untiled partition."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import splinecam as sc
from helpers import (assert_same_boundary, assert_same_partition, check_boundary_ties, check_regions_real, check_tiling,
                     forced, model_out)
from trained_models import digits_cnn, multiclass_mlp, sdf_mlp

pytest.importorskip("sklearn")


@pytest.fixture(scope="session")
def trained():
    """name -> (model, slice), made once per session."""
    cnn, X, y = digits_cnn()
    sdf, _, _ = sdf_mlp()
    multi, _, _ = multiclass_mlp()
    return {
        "digits_cnn": (cnn, sc.Slice.from_data(X, y, classes=(3, 8))),
        "sdf_mlp": (sdf, sc.Slice.box((-1.6, -1.6), (1.6, 1.6))),
        "multiclass_mlp": (multi, sc.Slice.box((-2.5, -2.5), (2.5, 2.5))),
    }


CASES = [("digits_cnn", "engine"), ("sdf_mlp", "fast"), ("sdf_mlp", "engine"), ("multiclass_mlp", "fast"),
         ("multiclass_mlp", "engine")]


@pytest.fixture(scope="session")
def partitions(trained):
    """(name, executor) -> the full partition (cached: several tests read it)."""
    cache = {}

    def get(name, executor):
        if (name, executor) not in cache:
            model, sl = trained[name]
            with forced(executor):
                cache[name, executor] = sc.partition(model, sl, progress=False)
        return cache[name, executor]

    return get


@pytest.mark.parametrize("name, executor", CASES)
def test_partition_is_exact(trained, partitions, name, executor):
    model, sl = trained[name]
    part = partitions(name, executor)
    check_tiling(part)
    if name == "digits_cnn":  # (check_regions_real reads ReLU codes only) each region's map is the model there
        pts, reg = part.centroids, np.arange(len(part))  # inside: the regions are convex
        assert np.array_equal(part.locate(pts), reg)
        assert np.abs(part.evaluate(pts) - model_out(model, sl, pts)).max() <= 1e-9 * _scale(part)
    else:
        check_regions_real(part, model)
    rep = part.verify(n_points=400)
    assert rep.ok, str(rep)
    assert rep.points_compared == 400 and rep.regions_compared > 1


def _scale(part) -> float:
    """The scale of the outputs: the largest |output| at the regions' centroids."""
    return float(np.abs(part.centroid_outputs).max())


@pytest.mark.parametrize("name", ["sdf_mlp", "multiclass_mlp"])
def test_executors_agree(partitions, name):
    assert_same_partition(partitions(name, "fast"), partitions(name, "engine"))


@pytest.mark.parametrize("name, executor", CASES)
def test_boundary_samples_tie(trained, partitions, name, executor):
    model, sl = trained[name]
    part = partitions(name, executor)
    db = part.decision_boundary()
    assert len(db) > 0
    if name != "digits_cnn":  # its scale reads ReLU pre-activations at every vertex (slow on the CNN)
        check_boundary_ties(part, db, model)
    samples = part.sample_boundary(50, seed=1)
    f = model_out(model, sl, samples.uv)
    scale = _scale(part)
    if f.shape[1] == 1:
        assert np.abs(f[:, 0]).max() <= 1e-9 * scale
    else:
        tied = np.take_along_axis(f, samples.classes, 1)
        assert (f.max(1)[:, None] - tied).max() <= 1e-9 * scale


@pytest.mark.parametrize("name", ["digits_cnn", "sdf_mlp", "multiclass_mlp"])
def test_boundary_first_is_the_full_boundary(trained, partitions, name):
    """(The issue's repro: on today's code the digits CNN gave 0 segments.)"""
    model, sl = trained[name]
    fast = sc.decision_boundary(model, sl, progress=False)
    assert_same_boundary(fast, partitions(name, "engine").decision_boundary())
    assert not fast.partition.exact.all()  # the bounds settled cells
    rep = fast.partition.verify(n_points=400)
    assert rep.ok and 0 < rep.points_compared < 400, str(rep)


@pytest.mark.slow
@pytest.mark.parametrize("name, executor", CASES)
def test_tiles_equal_untiled(trained, partitions, name, executor):
    model, sl = trained[name]
    with forced(executor):
        tiled = sc.partition(model, sl, progress=False, tiles=2)
    assert_same_partition(tiled, partitions(name, executor))


def test_verify_of_only_coarse_cells_is_not_ok(trained):
    """A boundary-first partition whose cells are all coarse compares nothing: not ok."""
    model, _ = trained["sdf_mlp"]
    far = sc.Slice.box((5.0, 5.0), (6.0, 6.0))  # the circle's boundary is far away: every cell settles
    part = sc.decision_boundary(model, far, progress=False).partition
    assert not part.exact.any()
    rep = part.verify()
    assert rep.points_compared == 0 and rep.regions_compared == 0
    assert not rep.ok
    assert "0 compared" in str(rep)


def test_verify_runs_the_weights_partitioned(trained):
    """The fast path's partition verifies against the weights it was made with, and against
    the user's model, not the fast path's reading of it."""
    model, sl = trained["multiclass_mlp"]
    part = sc.partition(model, sl, progress=False)
    before = part.verify().ok
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        with torch.no_grad():
            model[0].bias.add_(0.5)  # the user trains on after partitioning
        assert before and part.verify().ok
        assert not part.verify(model=model).ok  # the moved model does not match
    finally:
        model.load_state_dict(saved)
