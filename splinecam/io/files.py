"""Partition files: atomic writes, and reading with every array checked.

A partition file (``"splinecam.partition/1"``) is an ``.npz`` archive of plain
arrays and one JSON string ``meta``; loading runs no code.  Whatever is wrong
with a file (not an ``.npz``, truncated, another program's, arrays missing or
of the wrong shape, offsets that do not add up, NaN vertices), reading it
raises one :class:`InvalidPartitionFile` (a ``ValueError``) that says why.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InvalidPartitionFile

__all__ = ["CURVED_FILE", "FORMAT", "FileKind", "PARTITION_FILE", "PATH_FILE", "VOLUME_FILE", "read_arrays",
           "save_arrays", "write_atomically"]

FORMAT = "splinecam.partition/1"
ARRAYS = ("verts", "offsets", "labels", "affine", "centroid_outputs", "codes", "origin", "basis", "polygon",
          "anchors_uv", "meta")
OPTIONAL = ("exact",)  # (R,) bool, written by boundary-first partitions


def npz_path(path) -> Path:
    """``path`` with the ``.npz`` suffix that :func:`numpy.savez` would add."""
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def write_atomically(path, write) -> Path:
    """Call ``write(file)`` on a temporary file in the folder of ``path``, then rename it to
    ``path``: an interrupted write never leaves a partial file under the name.  The file gets the
    mode that ``open`` would give a new file (0666 less the umask; the temporary file's own mode
    is 0600).  Returns the path."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: the folder {path.parent} does not exist.")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


def _umask() -> int:
    """The process's umask: from /proc on Linux, else by setting it and setting it back (which
    other threads could see for a moment)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


def save_arrays(path, arrays: dict[str, np.ndarray], meta: dict):
    """Write ``arrays`` and the JSON ``meta`` as a compressed ``.npz``: atomically to a path,
    or into an open binary file.  Returns ``path`` (with ``.npz`` added to a path without it)."""

    def write(f):
        np.savez_compressed(f, meta=np.array(json.dumps(meta)), **arrays)

    if hasattr(path, "write"):
        write(path)
        return path
    return write_atomically(npz_path(path), write)


@contextmanager
def _binary(source):
    """An open binary file: ``source`` itself if it has ``read``, else the file at that path."""
    if hasattr(source, "read"):
        yield source
    else:
        with open(source, "rb") as fh:
            yield fh


def read_arrays(path, kind: "FileKind | None" = None) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) of a partition file (a path or an open binary file) of ``kind`` (default
    :data:`PARTITION_FILE`), with every array's shape, dtype and values checked.

    Raises FileNotFoundError if there is no such file, :class:`InvalidPartitionFile` for anything else.
    """
    kind = PARTITION_FILE if kind is None else kind
    with _binary(path) as fh:
        try:
            start = fh.tell()
            if fh.read(4) != b"PK\x03\x04":
                raise InvalidPartitionFile("it is not an .npz archive (files from Partition.save are zip archives)")
            fh.seek(start)
            with np.load(fh, allow_pickle=False) as f:
                missing = [name for name in kind.arrays if name not in f.files]
                if "meta" in missing:
                    raise InvalidPartitionFile("it has no 'meta' entry (is it another program's .npz?)")
                meta = _meta(f["meta"], kind.format)
                if missing:
                    raise InvalidPartitionFile(f"arrays {missing} are missing")
                arrays = {name: f[name] for name in kind.arrays if name != "meta"}
                arrays.update({name: f[name] for name in kind.optional if name in f.files})
        except InvalidPartitionFile as err:
            raise InvalidPartitionFile(f"{path} is not a valid splinecam partition: {err}.") from None
        except (zipfile.BadZipFile, EOFError, zlib.error, ValueError, OSError, KeyError) as err:
            reason = "it is truncated or corrupt" if isinstance(err, (zipfile.BadZipFile, EOFError, zlib.error)) else str(err)
            raise InvalidPartitionFile(f"{path} is not a valid splinecam partition: {reason} "
                                       f"({type(err).__name__}).") from None
    try:
        kind.check(meta, arrays)
    except InvalidPartitionFile as err:
        raise InvalidPartitionFile(f"{path} is not a valid splinecam partition: {err}.") from None
    return meta, arrays


def _meta(entry: np.ndarray, fmt: str) -> dict:
    if entry.shape != () or entry.dtype.kind != "U":
        raise InvalidPartitionFile("its 'meta' entry is not a JSON string")
    try:
        meta = json.loads(str(entry))
    except json.JSONDecodeError:
        raise InvalidPartitionFile("its 'meta' entry is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise InvalidPartitionFile(f"its format is {found!r}, expected {fmt!r}")
    layers = meta.get("layers")
    if not (isinstance(layers, list) and all(isinstance(x, dict) and set(x) == {"name", "units", "bits"}
                                                and isinstance(x["units"], int) and isinstance(x["bits"], int)
                                                and x["bits"] >= 0 for x in layers)):
        raise InvalidPartitionFile("'meta' has no valid 'layers' list (name, units, bits per layer)")
    if not isinstance(meta.get("seconds"), (int, float)):
        raise InvalidPartitionFile("'meta' has no 'seconds'")
    return meta


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise InvalidPartitionFile(message)


def _check_maps(a, meta: dict, n: int, rows: int) -> None:
    """The maps (n, K, rows), outputs at the centroids (n, K) and packed codes of n cells."""
    _shaped(a["affine"], "affine", "f", (n, None, rows))
    k = a["affine"].shape[1]
    _require(k >= 1, "'affine' has no outputs")
    _shaped(a["centroid_outputs"], "centroid_outputs", "f", (n, k))
    width = sum(-(-layer["bits"] // 8) for layer in meta["layers"])
    _shaped(a["codes"], "codes", "u", (n, width))


def _shaped(a: np.ndarray, name: str, kinds: str, shape: tuple) -> None:
    """``a`` has a dtype of one of ``kinds`` and shape ``shape`` (None: any size on that axis)."""
    _require(a.dtype.kind in kinds, f"'{name}' has dtype {a.dtype}")
    ok = a.ndim == len(shape) and all(s is None or s == n for s, n in zip(shape, a.shape))
    _require(ok, f"'{name}' has shape {a.shape}, expected ({', '.join('n' if s is None else str(s) for s in shape)})")


def _polygons(a: dict[str, np.ndarray], what: str) -> int:
    """The number of polygons ``what`` that ``offsets`` (n + 1,) split the finite ``verts``
    (N, 2) into, 3 or more vertices each."""
    _shaped(a["offsets"], "offsets", "iu", (None,))
    off = a["offsets"].astype(np.int64)
    _require(len(off) >= 1, "it has no offsets")
    _shaped(a["verts"], "verts", "f", (None, 2))
    _require(off[0] == 0 and off[-1] == len(a["verts"]) and np.all(np.diff(off) >= 3),
             f"'offsets' do not split the {len(a['verts'])} vertices into {what} of 3 or more")
    _require(bool(np.all(np.isfinite(a["verts"]))), "'verts' contains NaN or inf")
    return len(off) - 1


def _check(meta: dict, a: dict[str, np.ndarray]) -> None:
    """Shapes, dtypes and values that every partition file has."""
    n_regions = _polygons(a, "polygons")
    _require(n_regions >= 1, "it has no regions")
    _shaped(a["labels"], "labels", "iu", (len(a["verts"]), 2))
    _require(bool(np.all((a["labels"][:, 0] >= -1) & (a["labels"][:, 0] < len(meta["layers"])))),
             "'labels' name layers that the file does not have")
    _check_maps(a, meta, n_regions, 3)
    if "exact" in a:
        _shaped(a["exact"], "exact", "b", (n_regions,))
    _check_slice(a, meta)


def _check_path(meta: dict, a: dict[str, np.ndarray]) -> None:
    """Shapes, dtypes and values that every path partition file has."""
    _shaped(a["lo"], "lo", "f", (None,))
    n = len(a["lo"])
    _require(n >= 1, "it has no pieces")
    _shaped(a["hi"], "hi", "f", (n,))
    _require(bool(np.all(np.isfinite(a["lo"])) and np.all(np.isfinite(a["hi"])) and np.all(a["hi"] > a["lo"])),
             "'lo' and 'hi' are not finite intervals")
    _require(meta.get("kind") in ("polyline", "ellipse") and isinstance(meta.get("closed"), bool),
             "'meta' has no valid path 'kind' and 'closed'")
    _check_maps(a, meta, n, 3 if meta["kind"] == "ellipse" else 2)
    _shaped(a["ends"], "ends", "iu", (n, 2, 2))
    _require(bool(np.all((a["ends"][..., 0] >= -1) & (a["ends"][..., 0] < len(meta["layers"])))),
             "'ends' name layers that the file does not have")
    _shaped(a["leg"], "leg", "iu", (n,))
    _require(list(a["points"].shape[1:]) == meta.get("input_shape"), "'points' do not have the input shape in 'meta'")


def _check_slice(a: dict[str, np.ndarray], meta: dict) -> None:
    """The slice's arrays: origin (D,) of the input shape in ``meta``, basis (D, 2), polygon, anchors."""
    _shaped(a["polygon"], "polygon", "f", (None, 2))
    _shaped(a["basis"], "basis", "f", (a["origin"].size, 2))
    _shaped(a["anchors_uv"], "anchors_uv", "f", (None, 2))
    _require(list(a["origin"].shape) == meta.get("input_shape"), "'origin' does not have the input shape in 'meta'")


def _check_curved(meta: dict, a: dict[str, np.ndarray]) -> None:
    """Shapes, dtypes and values that every curved partition file has (its net is checked when
    it is read back: :meth:`splinecam.run.curved.SineNet.from_flat`)."""
    n = _polygons(a, "pieces")
    _shaped(a["labels"], "labels", "i", (len(a["verts"]), 2))
    units = [layer["units"] for layer in meta["layers"]]
    layer, unit = a["labels"][:, 0], a["labels"][:, 1]
    known = np.isin(layer, (-1, -2, -3)) & (unit == layer)  # border, inside, decision boundary
    inside = (layer >= 0) & (layer < len(units)) & (unit >= 0)
    inside[inside] &= unit[inside] < np.array(units, np.int64)[layer[inside]]
    _require(bool(np.all(known | inside)), "'labels' name units that the file's layers do not have")
    _shaped(a["bits"], "bits", "b", (n, sum(units)))
    for name in ("side", "certified"):
        _shaped(a[name], name, "b", (n,))
    _shaped(a["region"], "region", "i", (n,))
    _require(bool(np.all(a["region"] >= -1)) and np.array_equal(np.unique(a["region"][a["region"] >= 0]),
                                                                 np.arange(a["region"].max(initial=-1) + 1)),
             "'region' does not number the regions 0, 1, ... (-1: none)")
    for name in ("uncertified", "pending"):
        _shaped(a[name], name, "f", (None, 4))
        _require(bool(np.all(a[name][:, 2:] > a[name][:, :2])), f"'{name}' holds empty boxes")
    _shaped(a["reasons"], "reasons", "iu", (len(a["uncertified"]),))
    _require(bool(np.all(a["reasons"] >= 0)), "'reasons' holds negative codes")
    for name in ("wave_A", "wave_b", "weights", "biases", "decision"):
        _require(a[name].dtype.kind == "f" and bool(np.all(np.isfinite(a[name]))), f"'{name}' is not finite floats")
    _shaped(a["wave_A"], "wave_A", "f", (None, 2))
    _shaped(a["wave_b"], "wave_b", "f", (len(a["wave_A"]),))
    ok = isinstance(meta.get("tolerance"), (int, float)) and meta["tolerance"] > 0 and isinstance(meta.get("linear"), int)
    ok = ok and isinstance(meta.get("slopes"), list) and isinstance(meta.get("outputs"), int) and meta["outputs"] >= 1
    _require(ok and isinstance(meta.get("complete"), bool) and (meta.get("level") is None or isinstance(
        meta["level"], (int, float))), "'meta' has no valid 'tolerance', 'linear', 'slopes', 'outputs', 'level' "
                                       "and 'complete'")
    _check_slice(a, meta)


def _check_volume(meta: dict, a: dict[str, np.ndarray]) -> None:
    """Shapes, dtypes and values that every volume partition file has."""
    off, foff = (a[name].astype(np.int64) for name in ("offsets", "face_offsets"))
    for name in ("offsets", "face_offsets"):
        _shaped(a[name], name, "iu", (None,))
    n = len(off) - 1
    _require(n >= 0 and len(foff) == n + 1, "its 'face_offsets' do not match its 'offsets'")
    _shaped(a["verts"], "verts", "f", (None, 3))
    _require(off[0] == 0 and off[-1] == len(a["verts"]) and np.all(np.diff(off) >= 4),
             f"'offsets' do not split the {len(a['verts'])} vertices into polyhedra of 4 or more")
    _require(bool(np.all(np.isfinite(a["verts"]))), "'verts' contains NaN or inf")
    _shaped(a["incidence"], "incidence", "i", (len(a["verts"]),))
    _shaped(a["planes"], "planes", "f", (None, 4))
    _require(foff[0] == 0 and foff[-1] == len(a["planes"]) and np.all(np.diff(foff) >= 4) and np.all(np.diff(foff) <= 63),
             f"'face_offsets' do not split the {len(a['planes'])} faces into polyhedra of 4 to 63")
    _shaped(a["face_units"], "face_units", "iu", (len(a["planes"]), 2))
    _require(bool(np.all((a["face_units"][:, 0] >= -1) & (a["face_units"][:, 0] < len(meta["layers"])))),
             "'face_units' name layers that the file does not have")
    _check_maps(a, meta, n, 4)
    _shaped(a["exact"], "exact", "b", (n,))
    _shaped(a["basis"], "basis", "f", (a["origin"].size, 3))
    _shaped(a["polytope"], "polytope", "f", (None, 3))
    _require(list(a["origin"].shape) == meta.get("input_shape"), "'origin' does not have the input shape in 'meta'")


@dataclass(frozen=True)
class FileKind:
    """A kind of partition file: its format string, its arrays (``meta`` among them), the
    arrays it may have, and the check of their shapes, dtypes and values."""

    format: str
    arrays: tuple
    optional: tuple
    check: Callable[[dict, dict], None]


PARTITION_FILE = FileKind(FORMAT, ARRAYS, OPTIONAL, _check)
PATH_FILE = FileKind("splinecam.path/1", ("lo", "hi", "affine", "centroid_outputs", "codes", "ends", "leg", "points",
                                          "meta"), (), _check_path)
VOLUME_FILE = FileKind("splinecam.volume/1", ("verts", "offsets", "incidence", "planes", "face_offsets", "face_units",
                                              "affine", "centroid_outputs", "codes", "exact", "origin", "basis",
                                              "polytope", "meta"), (), _check_volume)
CURVED_FILE = FileKind("splinecam.curved/1", ("verts", "offsets", "labels", "bits", "side", "certified", "region",
                                              "uncertified", "reasons", "pending", "wave_A", "wave_b", "weights", "biases",
                                              "decision", "origin", "basis", "polygon", "anchors_uv", "meta"), (),
                       _check_curved)
