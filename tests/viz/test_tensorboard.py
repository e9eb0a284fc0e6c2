"""TensorBoard: the event files hold each recorded step's picture and statistics."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import splinecam as sc
from helpers import BOX, random_mlp
from splinecam.apps.cli import main

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from torch.utils.tensorboard import SummaryWriter  # noqa: E402


def _events(folder) -> EventAccumulator:
    acc = EventAccumulator(str(folder), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc


def test_record_logs_pictures_and_scalars(tmp_path):
    model = random_mlp([6, 6], 2, seed=4)
    writer = SummaryWriter(tmp_path)
    rec = sc.record(BOX, every=2, writer=writer)
    opt = torch.optim.SGD(model.parameters(), lr=0.3)
    for _ in range(5):  # records at calls 0, 2, 4
        rec(model)
        opt.zero_grad()
        model(torch.randn(16, 2)).square().mean().backward()
        opt.step()
    writer.close()
    acc = _events(tmp_path)
    tags = acc.Tags()
    assert tags["images"] == ["splinecam/partition"]
    images = acc.Images("splinecam/partition")
    assert [e.step for e in images] == rec.steps == [0, 2, 4]
    assert all(e.width > 100 and e.height > 100 and e.encoded_image_string[:4] == b"\x89PNG" for e in images)
    for name, key in [("n_regions", "n_regions"), ("boundary_length", "boundary_length"), ("edges", "edges"),
                      ("slope_mean", "slope_mean"), ("boundary_pieces", "boundary_pieces")]:
        logged = acc.Scalars(f"splinecam/{name}")
        assert [e.step for e in logged] == rec.steps
        expected = [part.stats()[key] for part in rec.snapshots]
        np.testing.assert_allclose([e.value for e in logged], expected, rtol=1e-6)  # stored as float32
    per_layer = [e.value for e in acc.Scalars("splinecam/edges_layer_2")]
    assert per_layer == [part.stats()["edges_per_layer"][1] for part in rec.snapshots]


def test_train_video_tensorboard(tmp_path, capsys):
    assert main(["train-video", "--out", str(tmp_path / "video"), "--epochs", "4", "--every", "2",
                 "--tensorboard", str(tmp_path / "tb")]) == 0
    for run in ("two-moons", "two-circles"):
        acc = _events(tmp_path / "tb" / run)
        assert [e.step for e in acc.Images("splinecam/partition")] == [0, 2, 4]
        assert [e.step for e in acc.Scalars("train/loss")] == [0, 1, 2, 3]
        assert len(acc.Scalars("splinecam/n_regions")) == 3
    assert (tmp_path / "video" / "train.gif").exists()


def test_missing_tensorboard_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    code = main(["train-video", "--out", str(tmp_path / "v"), "--epochs", "2", "--tensorboard", str(tmp_path / "tb")])
    err = capsys.readouterr().err
    assert code == 1 and "pip install 'splinecam[tensorboard]'" in err and len(err.strip().splitlines()) == 1
