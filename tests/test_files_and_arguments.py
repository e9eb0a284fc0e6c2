"""Bad files, folders, devices and numbers: one clear error each, and nothing half-written."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import splinecam as sc
from helpers import BOX, random_mlp, run
from splinecam.apps.cli import main
from splinecam.viz.plot import COLOR_BY

MESSAGE = "not a valid splinecam partition"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(path, arrays) of a valid partition file."""
    path = tmp_path_factory.mktemp("saved") / "part.npz"
    run(random_mlp([5, 5], 2, seed=3)).save(path)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    return path, arrays


def _write(path, arrays, **changes):
    data = {**arrays, **changes}
    np.savez(path, **{k: v for k, v in data.items() if v is not None})
    return path


def _meta(arrays, **changes):
    meta = json.loads(str(arrays["meta"]))
    meta.update(changes)
    return np.array(json.dumps(meta))


@pytest.mark.parametrize("case", [
    "empty", "text", "npy", "truncated", "foreign", "other_format", "bad_json", "no_layers", "missing_affine",
    "offsets_short", "offsets_past_end", "offsets_decreasing", "nan_vertex", "verts_shape", "codes_width",
    "affine_rows", "labels_layer", "float_offsets", "bad_slice", "object_array",
])
def test_load_rejects_bad_files(saved, tmp_path, case):
    path, a = saved
    bad = tmp_path / "bad.npz"
    off, verts = a["offsets"], a["verts"]
    if case == "empty":
        bad.write_bytes(b"")
    elif case == "text":
        bad.write_text("regions: 12\n")
    elif case == "npy":
        np.save(tmp_path / "bad.npy", verts)
        bad = tmp_path / "bad.npy"
    elif case == "truncated":
        data = path.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif case == "foreign":
        np.savez(bad, x=np.arange(3))
    elif case == "other_format":
        _write(bad, a, meta=_meta(a, format="something/2"))
    elif case == "bad_json":
        _write(bad, a, meta=np.array("{not json"))
    elif case == "no_layers":
        _write(bad, a, meta=_meta(a, layers=None))
    elif case == "missing_affine":
        _write(bad, a, affine=None)
    elif case == "offsets_short":
        _write(bad, a, offsets=off[:-1])
    elif case == "offsets_past_end":
        _write(bad, a, offsets=np.r_[off[:-1], off[-1] + 5])
    elif case == "offsets_decreasing":
        o = off.copy()
        o[1], o[2] = o[2], o[1]
        _write(bad, a, offsets=o)
    elif case == "nan_vertex":
        v = verts.copy()
        v[4, 1] = np.nan
        _write(bad, a, verts=v)
    elif case == "verts_shape":
        _write(bad, a, verts=verts[:, :1])
    elif case == "codes_width":
        _write(bad, a, codes=a["codes"][:, :0])
    elif case == "affine_rows":
        _write(bad, a, affine=a["affine"][:-1])
    elif case == "labels_layer":
        lab = a["labels"].copy()
        lab[0, 0] = 7
        _write(bad, a, labels=lab)
    elif case == "float_offsets":
        _write(bad, a, offsets=off.astype(float))
    elif case == "bad_slice":
        _write(bad, a, polygon=np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]))
    elif case == "object_array":
        np.savez(bad, **{**a, "verts": np.array([1, "x"], dtype=object)})
    with pytest.raises(ValueError, match=MESSAGE) as err:
        sc.Partition.load(bad)
    assert type(err.value).__name__ == "InvalidPartitionFile"
    assert str(bad) in str(err.value)


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        sc.Partition.load(tmp_path / "none.npz")


def test_save_is_atomic(saved, tmp_path, monkeypatch):
    """A save that fails half-way leaves the earlier file intact and no temporary file behind."""
    path = tmp_path / "p.npz"
    part = sc.Partition.load(saved[0])
    part.save(path)
    before = path.read_bytes()

    def interrupted(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", interrupted)
    with pytest.raises(KeyboardInterrupt):
        part.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["p.npz"]
    part.save(tmp_path / "q")  # numpy's rule: the .npz suffix is added
    assert len(sc.Partition.load(tmp_path / "q.npz")) == len(part)


def test_save_into_missing_folder(saved, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sc.Partition.load(saved[0]).save(tmp_path / "nope" / "p.npz")


def _cli(*args, cwd):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(os.path.dirname(sc.__file__)),
                                                        os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "splinecam.apps.cli", *args], capture_output=True, text=True, cwd=cwd, env=env)


def test_cli_process_exit_status(tmp_path):
    """The real command: one line on stderr, exit status 1, no traceback."""
    done = _cli("view", str(tmp_path / "none.npz"), cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [f"splinecam view: error: [Errno 2] No such file or directory: "
                                                f"'{tmp_path / 'none.npz'}'"]


def _main(capsys, *args):
    """(exit code, stderr lines) of the command line run in this process."""
    code = main(list(args))
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("case", ["missing", "text", "truncated", "no_folder"])
def test_cli_bad_files_one_line(saved, tmp_path, capsys, case):
    path = saved[0]
    args = {
        "missing": ["view", str(tmp_path / "none.npz")],
        "text": ["view", str(tmp_path / "t.npz")],
        "truncated": ["view", str(tmp_path / "half.npz")],
        "no_folder": ["view", str(path), "--out", str(tmp_path / "nope" / "v.html")],
    }[case]
    (tmp_path / "t.npz").write_text("hello")
    (tmp_path / "half.npz").write_bytes(path.read_bytes()[:200])
    code, lines = _main(capsys, *args)
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith("splinecam view: error:"), lines
    assert not (tmp_path / "nope").exists()


def test_cli_view_writes_page(saved, tmp_path, capsys):
    code, lines = _main(capsys, "view", str(saved[0]), "--out", str(tmp_path / "v.html"))
    assert code == 0 and not lines
    from splinecam.viz.viewer import read_data

    assert read_data(tmp_path / "v.html")[0]["n_regions"] == len(sc.Partition.load(saved[0]))


@pytest.mark.parametrize("device", ["cuda", "cuda:7", "mps", "not-a-device"])
def test_unusable_device(device):
    usable = {"cuda": torch.cuda.is_available(), "cuda:7": torch.cuda.device_count() > 7,
              "mps": torch.backends.mps.is_available(), "not-a-device": False}[device]
    if usable:
        pytest.skip(f"{device} works here")
    model = random_mlp([4], 1, seed=0)
    with pytest.raises(ValueError, match=r"device") as err:
        sc.partition(model, BOX, device=device, progress=False)
    assert "cpu" in str(err.value)
    with pytest.raises(ValueError, match=r"device"):
        sc.partition_by_layer(model, BOX, device=device)


@pytest.mark.parametrize("radius", [0, -1.0, float("nan"), float("inf"), "1", None, True])
def test_around_radius(radius):
    with pytest.raises(ValueError, match="radius must be a positive finite number"):
        sc.Slice.around(np.zeros(4), radius=radius)


def test_constructor_numbers():
    with pytest.raises(ValueError, match="seed"):
        sc.Slice.around(np.zeros(4), seed=0.5)
    with pytest.raises(ValueError, match="at least 2"):
        sc.Slice.around(np.zeros(1))
    with pytest.raises(ValueError, match="margin"):
        sc.Slice.from_points([0, 0], [1, 0], [0, 1], margin=-0.1)
    with pytest.raises(ValueError, match="margin"):
        sc.Slice.from_points([0, 0], [1, 0], [0, 1], margin=float("nan"))
    with pytest.raises(ValueError, match=r"lo must be one point"):
        sc.Slice.box(0, 1)
    with pytest.raises(ValueError, match=r"hi must be one point"):
        sc.Slice.box((0, 0), (1, 1, 1))
    assert sc.Slice.around(np.zeros(4), radius=np.float32(0.5)).area == pytest.approx(1.0)
    assert sc.Slice.from_points([0, 0], [1, 0], [0, 1], margin=0).area == pytest.approx(1.0)


@pytest.mark.parametrize("command", ["demo", "train-video"])
def test_cli_output_folder_that_cannot_exist(tmp_path, capsys, command):
    (tmp_path / "afile").write_text("x")
    code, lines = _main(capsys, command, "--out", str(tmp_path / "afile" / "out"))
    assert code == 1 and len(lines) == 1 and lines[0].startswith(f"splinecam {command}: error:"), lines


def test_save_and_load_open_files(saved, tmp_path):
    import io

    part = sc.Partition.load(saved[0])
    buffer = io.BytesIO()
    part.save(buffer)
    buffer.seek(0)
    back = sc.Partition.load(buffer)
    assert len(back) == len(part) and np.array_equal(back.affine, part.affine)
    with pytest.raises(ValueError, match=MESSAGE):
        sc.Partition.load(io.BytesIO(b"PK\x03\x04 and then nothing"))


def test_other_numeric_arguments():
    part = run(random_mlp([4], 2, seed=1))
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="n_points must be a positive integer"):
            part.verify(n_points=bad)
    X, y = np.random.default_rng(0).standard_normal((10, 2)), np.r_[np.zeros(5), np.ones(5)]
    for bad in (1.5, -1, "0"):
        with pytest.raises(ValueError, match="seed must be a non-negative integer"):
            sc.Slice.from_data(X, y, seed=bad)
    assert sc.Slice.from_data(X, y, seed=np.int64(3)).anchors_uv.shape == (3, 2)


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_respect_the_umask(saved, tmp_path, umask, capsys):
    """save, to_html and `splinecam view` give their files the mode any new file gets (the
    temporary file's 0600 must not survive the rename), and leave no temporary file behind."""
    part = sc.Partition.load(saved[0])
    old = os.umask(umask)
    try:
        part.save(tmp_path / "p.npz")
        part.to_html(tmp_path / "p.html")
        assert main(["view", str(saved[0]), "--out", str(tmp_path / "v.html")]) == 0
        (tmp_path / "plain.txt").write_text("x")  # what any other file gets
    finally:
        os.umask(old)
    expected = 0o666 & ~umask
    assert (tmp_path / "plain.txt").stat().st_mode & 0o777 == expected
    for name in ("p.npz", "p.html", "v.html"):
        assert (tmp_path / name).stat().st_mode & 0o777 == expected, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.html", "p.npz", "plain.txt", "v.html"]


@pytest.mark.parametrize("args,says", [
    ([], "required: command"),
    (["bogus"], "invalid choice: 'bogus'"),
    (["view", "p.npz", "--nope"], "unrecognized arguments: --nope"),
    (["demo", "--seed", "x"], "argument --seed"),
    (["demo", "--seed", "-1"], "argument --seed"),
    (["demo", "extra"], "unrecognized arguments: extra"),
    (["train-video", "--epochs", "1.5"], "argument --epochs"),
    (["train-video", "--epochs", "0"], "argument --epochs"),
    (["train-video", "--every", "0"], "argument --every"),
    (["train-video", "--fps", "0"], "argument --fps"),
    (["train-video", "--tensorboard"], "argument --tensorboard: expected one argument"),
    (["view"], "required: file"),
    (["view", "p.npz", "--color-by", "nope"], "argument --color-by: invalid choice: 'nope'"),
    (["view", "p.npz", "--title"], "argument --title"),
])
def test_cli_bad_arguments_one_line(tmp_path, capsys, args, says):
    """Every command's bad arguments: one line on stderr naming the argument, status 1, no usage block."""
    code, lines = _main(capsys, *args, *(["--out", str(tmp_path / "out")] if args[:1] in (["demo"], ["train-video"]) else []))
    assert code == 1
    assert len(lines) == 1 and says in lines[0] and "--help" in lines[0], lines
    assert lines[0].startswith(f"splinecam {args[0]}: error:" if args[:1] in (["demo"], ["train-video"], ["view"])
                               else "splinecam: error:"), lines
    assert not (tmp_path / "out").exists()


def test_cli_bad_argument_exit_status(tmp_path):
    done = _cli("view", "p.npz", "--color-by", "nope", cwd=tmp_path)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "splinecam view: error: argument --color-by: invalid choice: 'nope' (choose from "
        f"{', '.join(repr(c) for c in COLOR_BY)}) (see splinecam view --help)"]
