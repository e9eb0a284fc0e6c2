"""A plain install (no extras) takes the compiled path: numba is a core dependency."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from splinecam.geometry import compiled

ROOT = Path(__file__).resolve().parents[1]


def _requirement_names(reqs: list[str]) -> set[str]:
    return {r.split(";")[0].split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower() for r in reqs}


def test_the_compiled_kernels_are_active():
    assert compiled.AVAILABLE


def test_numba_is_a_core_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "numba" in _requirement_names(project["dependencies"])
    assert project["optional-dependencies"]["fast"] == []  # kept, empty: old install lines still work
    assert "scikit-learn" in _requirement_names(project["optional-dependencies"]["test"])


@pytest.mark.slow
def test_a_plain_install_requires_numba_and_compiles(tmp_path):
    """``pip install .`` (no extras) into a fresh virtual environment (it sees this Python's
    packages, so nothing is downloaded; pip and setuptools are this Python's): the installed
    metadata requires numba without an extra, and the installed package's kernels are active."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", str(ROOT)], check=True, cwd=tmp_path)
    probe = ("import importlib.metadata as m, splinecam, splinecam.geometry.compiled as c; "
             "print(splinecam.__file__); print([r for r in m.requires('splinecam') if 'extra' not in r]); "
             "print(c.AVAILABLE)")
    out = subprocess.run([str(py), "-c", probe], check=True, capture_output=True, text=True, cwd=tmp_path,
                         env={"PATH": "/usr/bin:/bin"}).stdout.splitlines()
    assert str(venv) in out[0]  # the installed copy, not the checkout
    assert "numba" in _requirement_names(eval(out[1]))  # noqa: S307 - a list literal printed above
    assert out[2] == "True"
