"""Toy data, the training-loop recorder, animations and the train-video command."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torch import nn

import splinecam as sc
from splinecam.apps.cli import main
from splinecam.apps.datasets import two_circles, two_moons
from splinecam.apps.dynamics import history, mlp, plot_frames, plot_history

BOX = sc.Slice.box((-1.5, -1.5), (1.5, 1.5))


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 300), st.integers(0, 2**31))
def test_toy_data_shapes_labels_and_seeds(n, seed):
    for make in (two_moons, two_circles):
        X, y = make(n, 0.1, seed)
        assert X.shape == (n, 2) and y.shape == (n,) and X.dtype == np.float64
        assert set(np.unique(y)) <= {0, 1} and abs((y == 0).sum() - (y == 1).sum()) <= 1
        X2, y2 = make(n, 0.1, seed)
        assert np.array_equal(X, X2) and np.array_equal(y, y2)


def test_toy_data_geometry_without_noise():
    X, y = two_moons(100, 0.0, 1)
    upper = X[y == 0]
    assert np.allclose(np.hypot(*upper.T), 1) and np.all(upper[:, 1] >= 0)
    lower = X[y == 1] - [1.0, 0.5]
    assert np.allclose(np.hypot(*lower.T), 1) and np.all(lower[:, 1] <= 0)
    X, y = two_circles(100, 0.0, 1, factor=0.3)
    assert np.allclose(np.hypot(*X[y == 0].T), 1) and np.allclose(np.hypot(*X[y == 1].T), 0.3)
    for bad in (dict(n=1), dict(noise=-1.0)):
        with pytest.raises(ValueError):
            two_moons(**{"n": 10, "noise": 0.1, **bad})


def test_recorder_takes_every_kth_call_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model = mlp(width=6, depth=2)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rec = sc.record(BOX, every=3)
    got = [rec(model) for _ in range(10)]
    assert rec.steps == [0, 3, 6, 9] and len(rec.snapshots) == 4
    assert [g is not None for g in got] == [k % 3 == 0 for k in range(10)]
    assert model.training and all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    direct = sc.partition(model, BOX, progress=False)
    assert len(rec.snapshots[-1]) == len(direct)
    assert np.allclose(rec.snapshots[-1].affine[np.argsort(rec.snapshots[-1].areas)], direct.affine[np.argsort(direct.areas)])
    assert rec.snapshots[0].model is None and rec.snapshots[0].verify(model=model).ok
    with pytest.raises(ValueError):
        sc.record(BOX, every=0)


def test_recorder_reports_training_mode_batchnorm():
    model = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(sc.UnsupportedModelError, match="eval"):
        sc.record(BOX, every=1)(model)


def _snapshots(n=3):
    torch.manual_seed(0)
    model = mlp(width=6, depth=2)
    rec = sc.record(BOX, every=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    X, y = two_moons(50, 0.1, 0)
    for _ in range(n):
        rec(model)
        opt.zero_grad()
        nn.functional.cross_entropy(model(torch.as_tensor(X, dtype=torch.float32)), torch.as_tensor(y)).backward()
        opt.step()
    return rec, (X, y)


def test_animate_writes_one_gif_frame_per_snapshot(tmp_path):
    rec, data = _snapshots()
    path = sc.animate({"a": rec.snapshots, "b": rec.snapshots}, tmp_path / "t.gif", steps=rec.steps, data=data)
    with Image.open(path) as im:
        assert im.n_frames == 3 and im.size[0] > 1.5 * im.size[1]
    with pytest.raises(ValueError, match=".gif or .mp4"):
        sc.animate(rec.snapshots, tmp_path / "t.avi")
    with pytest.raises(ValueError, match="same number"):
        sc.animate({"a": rec.snapshots, "b": rec.snapshots[:2]}, tmp_path / "t.gif")


def test_history_and_still_figures():
    rec, data = _snapshots()
    h = history(rec.snapshots)
    assert h["n_regions"].tolist() == [len(p) for p in rec.snapshots]
    assert h["boundary_length"].tolist() == [p.decision_boundary().length for p in rec.snapshots]
    fig, axes = plot_history({"moons": rec.snapshots}, steps=rec.steps)
    assert axes[0].lines[0].get_ydata().tolist() == h["n_regions"].tolist()
    fig, axes = plot_frames(rec.snapshots, indices=[0, 2], data=data)
    assert axes.shape == (1, 2)


def test_train_video_command(tmp_path, capsys):
    assert main(["train-video", "--out", str(tmp_path), "--epochs", "4", "--every", "2"]) == 0
    for name in ("train.gif", "history.png", "frames.png"):
        assert (tmp_path / name).stat().st_size > 0
    with Image.open(tmp_path / "train.gif") as im:
        assert im.n_frames == 3  # epochs 0, 2, 4
    assert "train.gif" in capsys.readouterr().out
