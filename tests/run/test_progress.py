"""Progress where stderr is not a terminal (a log file, CI, a batch job): plain lines every
LOG_EVERY seconds, never carriage returns."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from helpers import random_mlp
from torch import nn

import splinecam as sc
from splinecam.run import watch as watch_module
from splinecam.run.executors import run_tasks


class _Clock:
    """A fake ``time`` module for the watch: every reading advances by ``step`` seconds."""

    def __init__(self, step):
        self.now, self.step = 0.0, step

    def perf_counter(self):
        self.now += self.step
        return self.now


def _cnn():
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(3, 4, 2), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4, 3)).eval()


@pytest.mark.parametrize("progress", [None, True])
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_a_long_run_writes_plain_lines(monkeypatch, capsys, progress, kind):
    """With a clock that makes every reading 3 s later, the run is 'long': it writes lines
    (regions, op, share of the area, seconds), each at least LOG_EVERY s after the last, and a
    last line at the end."""
    clock = _Clock(3.0)
    monkeypatch.setattr(watch_module, "time", clock)
    if kind == "mlp":
        model, sl = random_mlp([16, 16], 2, 0), sc.Slice.box((-2, -2), (2, 2))
    else:
        model, sl = _cnn(), sc.Slice.from_points(*torch.rand(3, 1, 6, 6, generator=torch.Generator().manual_seed(0)))
    part = sc.partition(model, sl, progress=progress, chunk_size=8)
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert len(lines) >= 2, err
    assert all(line.startswith("splinecam: ") and "% of the slice's area" in line for line in lines), lines
    seconds = [int(line.rsplit(", ", 1)[1].removesuffix(" s")) for line in lines]
    periodic = seconds[:-1]  # the last line is the one at the end, whenever the run ends
    assert all(b - a >= watch_module.LOG_EVERY - 1 for a, b in zip(periodic, periodic[1:])), seconds
    assert lines[-1].startswith(f"splinecam: {len(part):,} regions") and "100% of the slice's area" in lines[-1]


def test_a_short_run_writes_nothing_or_a_first_and_a_last_line(capsys):
    """progress=None: nothing for a short run; progress=True: a line at once and one at the end."""
    model, sl = random_mlp([8], 2, 0), sc.Slice.box((-1, -1), (1, 1))
    sc.partition(model, sl)
    assert capsys.readouterr().err == ""
    part = sc.partition(model, sl, progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and lines[0].startswith("splinecam: 0% of the slice's area, 0 s"), lines
    assert lines[1].startswith(f"splinecam: {len(part):,} regions, 100% of the slice's area, "), lines


@pytest.mark.parametrize("seconds", [0.0, 3.0])
def test_a_paths_bar_is_made_only_once_the_run_is_long(monkeypatch, seconds):
    """progress=None: a path's partition (made per call, in microseconds) opens no bar unless
    the run is still going BAR_DELAY s after its start (a clock that makes every reading 3 s
    later): then one bar, which has seen the whole path's length at the end."""
    clock = _Clock(seconds)
    monkeypatch.setattr(watch_module, "time", clock)
    bars = []
    monkeypatch.setattr(watch_module, "progress_bar", lambda *args, **kwargs: bars.append(_Bar()) or bars[-1])
    monkeypatch.setattr("splinecam.run.chain1d.WORK_PER_CALL", 1)  # a call of the kernel per batch
    model = random_mlp([16, 16], 2, 0)
    part = sc.partition(model, sc.Path.through([[-2.0, -2.0], [2.0, 1.0], [0.0, 2.0]]))
    assert len(part) > 16
    if seconds == 0.0:
        assert bars == []
    else:
        assert len(bars) == 1 and bars[0].n == pytest.approx(2.0)  # (the path's t runs over [0, 2])


class _Bar:
    """The part of tqdm's interface the watch uses, recording the share shown."""

    def __init__(self):
        self.n, self.total = 0.0, 2.0

    def update(self, n):
        self.n += n

    def set_postfix_str(self, text, refresh=False):
        pass

    def close(self):
        pass


def test_tasks_progress_lines(monkeypatch, capsys):
    monkeypatch.setattr(watch_module, "time", _Clock(6.0))
    assert run_tasks(None, abs, [(-i,) for i in range(5)], [f"t{i}" for i in range(5)], progress=True,
                     desc="tiles") == list(range(5))
    lines = capsys.readouterr().err.splitlines()
    assert lines and lines[-1].startswith("tiles: 5 of 5 tasks") and all("\r" not in x for x in lines), lines
    assert run_tasks(None, abs, [(-1,)], ["t"], progress=False) == [1]
    assert capsys.readouterr().err == ""
    assert run_tasks(None, abs, [(-1,)], ["t"]) == [1]  # progress=None, short
    assert capsys.readouterr().err == ""


def test_stderr_to_a_file_gets_no_carriage_returns(tmp_path):
    """A real process whose stderr is a log file, the bar asked for at once."""
    script = ("import splinecam as sc, torch; torch.manual_seed(0); m = torch.nn.Sequential(torch.nn.Linear(2, 64), "
              "torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1)); "
              "print(len(sc.partition(m, sc.Slice.box((-2, -2), (2, 2)), progress=True, tiles=2)))")
    log = tmp_path / "log.txt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(os.path.dirname(sc.__file__)),
                                                        os.environ.get("PYTHONPATH", "")])}
    with open(log, "w") as f:
        done = subprocess.run([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=f, text=True, env=env)
    assert done.returncode == 0 and int(done.stdout) > 100
    assert "\r" not in log.read_text()
