"""The build: the compiled backend is the installed extension, it reaches the C code,
and the sdist carries everything needed to build it.

These tests fail (they do not skip) when the compiled backend is missing: a test
run that silently fell back to the reference backend, e.g. because the source
tree shadowed the installed package, would otherwise pass while testing nothing
compiled.
"""

import glob
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import time

import numpy as np
import pytest

import fastnn
from fastnn.backends import NumpyOps

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _inside(path, directory):
    path, directory = os.path.realpath(path), os.path.realpath(directory)
    return os.path.commonpath([path, directory]) == directory


def test_fastnn_is_the_installed_package():
    where = os.path.dirname(os.path.abspath(fastnn.__file__))
    if os.environ.get("FASTNN_EDITABLE") == "1":
        pytest.skip("FASTNN_EDITABLE=1: testing the source tree on purpose")
    assert not _inside(where, REPO), (
        f"fastnn was imported from the source tree ({where}), not from the installed package; "
        "install it (pip install .) and run pytest so that the repository root is not on "
        "sys.path (e.g. 'python -P -m pytest' or the 'pytest' script), or set FASTNN_EDITABLE=1 "
        "for an in-place build")


def test_compiled_module_is_an_extension_module():
    from fastnn.backends import cython_ops
    assert isinstance(cython_ops.__loader__, importlib.machinery.ExtensionFileLoader)
    assert cython_ops.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
    assert cython_ops.__file__.endswith(".so") or cython_ops.__file__.endswith(".pyd")
    # it sits beside the Python package it belongs to
    assert os.path.dirname(cython_ops.__file__) == os.path.dirname(
        os.path.abspath(fastnn.backends.__file__))
    assert issubclass(cython_ops.CythonOps, NumpyOps)
    assert "cython" in fastnn.backends.available_backends()
    ops = fastnn.get_backend("cython")
    assert isinstance(ops, cython_ops.CythonOps) and ops.name == "cython"
    assert fastnn.backends.CythonOps is cython_ops.CythonOps


def test_c_rng_matches_reference():
    # rng_bits is computed by the C function in csrc/ (fastnn.h): it must give the
    # reference's bits exactly
    from fastnn.backends.cython_ops import CythonOps
    ref, comp = NumpyOps(), CythonOps()
    assert type(comp).rng_bits is not NumpyOps.rng_bits
    index = np.concatenate([np.arange(1000, dtype=np.uint64),
                            np.array([2**32, 2**63, 2**64 - 2], dtype=np.uint64)])
    for seed, step in [(0, 0), (1, 0), (12345, 7), (2**63 + 11, 2**40), (2**64 - 1, 2**64 - 2)]:
        got = comp.rng_bits(seed, step, index)
        assert got.dtype == np.uint64 and got.shape == index.shape
        np.testing.assert_array_equal(got, ref.rng_bits(seed, step, index))
    np.testing.assert_array_equal(comp.rng_bits(3, 4, np.arange(6, dtype=np.uint64).reshape(2, 3)),
                                  ref.rng_bits(3, 4, np.arange(6, dtype=np.uint64).reshape(2, 3)))


def _can_build_sdist():
    missing = [m for m in ("build", "setuptools", "Cython", "numpy")
               if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"cannot build the sdist here: {', '.join(missing)} not installed "
                    "('pip install build' to run this test)")


def test_sdist_contains_everything_needed(tmp_path):
    _can_build_sdist()
    # build from a copy, so the build leaves nothing (egg-info, generated .c) in the repo
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", "*.so", ".pytest_cache"))
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir",
         str(tmp_path / "dist"), str(src)],
        capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, f"sdist build failed:\n{result.stdout}\n{result.stderr}"
    tarballs = glob.glob(str(tmp_path / "dist" / "*.tar.gz"))
    assert len(tarballs) == 1, tarballs
    with tarfile.open(tarballs[0]) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    csrc = sorted(os.path.relpath(p, REPO)
                  for p in glob.glob(os.path.join(REPO, "csrc", "*.[ch]")))
    assert "csrc/fastnn.h" in csrc and any(p.endswith(".c") for p in csrc)
    needed = csrc + ["fastnn/backends/cython_ops.pyx", "fastnn/backends/_csrc.pxd",
                     "setup.py", "pyproject.toml", "README.md"]
    needed += sorted(os.path.relpath(p, REPO) for p in
                     glob.glob(os.path.join(REPO, "fastnn", "**", "*.py"), recursive=True))
    missing = [name for name in needed if name not in names]
    assert not missing, f"the sdist lacks {missing}"
    assert not [n for n in names if n.endswith((".so", ".o", ".pyc"))], "build products in sdist"
    assert elapsed < 120, f"sdist build took {elapsed:.0f} s"
