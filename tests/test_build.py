"""The build: whichever fastnn the tests import -- the installed package (the
``pytest`` script) or this source tree (``python -m pytest``, which puts the
repository root first on sys.path) -- has its compiled extension, built from
this repository's C and Cython sources; it reaches the C code; the sdist
carries everything needed to build it and no build product.

These tests fail (they do not skip) when the compiled backend is missing or
stale: a test run that silently fell back to the reference backend, or ran an
old build, would otherwise pass while testing nothing.
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
from fastnn.backends import NumpyOps, _compiled_status
from fastnn.backends._source_hash import source_hash, source_root

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def _inside(path, directory):
    path, directory = os.path.realpath(path), os.path.realpath(directory)
    return os.path.commonpath([path, directory]) == directory


def test_imported_fastnn_is_compiled_from_these_sources():
    where = os.path.dirname(os.path.abspath(fastnn.__file__))
    # the installed package, or this very source tree -- never another tree
    assert source_root(where) is None or os.path.samefile(where, os.path.join(REPO, "fastnn")), (
        f"fastnn was imported from another source tree ({where}), not {REPO}")
    module, problem = _compiled_status()
    assert module is not None, f"the compiled backend of {where} cannot be loaded: {problem}"
    assert os.path.dirname(os.path.abspath(module.__file__)) == os.path.join(where, "backends")
    assert module.source_hash() == source_hash(REPO), (
        f"{module.__file__} was built from other C/Cython sources than those of {REPO}: "
        f"rebuild it ('pip install .' in {REPO})")


def test_source_tree_holds_its_compiled_extension():
    # what makes the README's commands typed in the clone (python -m fastnn demo,
    # python -m pytest) run compiled code: 'pip install .' also places the
    # release build beside the sources (setup.py), from these sources
    beside = os.path.join(REPO, "fastnn", "backends", "cython_ops" + SUFFIX)
    assert os.path.isfile(beside), (
        f"{beside} is missing: Python run in {REPO} imports ./fastnn, which then has no "
        f"compiled backend; 'pip install .' in {REPO} places it there")
    with open(beside, "rb") as f:
        data = f.read()
    assert b"fastnn-source-hash:" + source_hash(REPO).encode() in data, (
        f"{beside} was built from other C/Cython sources: rebuild it ('pip install .' in {REPO})")
    assert b"libasan.so" not in data, f"{beside} is a sanitizer build"


def test_the_source_tree_runs_compiled_without_warnings():
    # as typed in the clone: python puts the working directory first on sys.path
    code = ("import os, fastnn; print(os.path.dirname(fastnn.__file__)); "
            "print(fastnn.get_backend().name); fastnn.show_config()")
    env = {k: v for k, v in os.environ.items() if k not in ("FASTNN_BACKEND", "FASTNN_ISA")}
    proc = subprocess.run([sys.executable, "-W", "error", "-c", code], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    where, name = proc.stdout.splitlines()[:2]
    assert os.path.samefile(where, os.path.join(REPO, "fastnn")), where
    assert name == "cython", proc.stdout
    assert "default backend: cython" in proc.stdout


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
    # build from a copy, so the build leaves nothing (egg-info, generated .c) in the repo;
    # the copy keeps the extension beside the sources (as 'pip install .' leaves it),
    # which must not enter the sdist
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache"))
    (src / "fastnn" / "backends" / ("cython_ops" + SUFFIX)).write_bytes(b"not an extension")
    (src / "csrc" / "stray.o").write_bytes(b"")
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
