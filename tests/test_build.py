"""The build: whichever fastnn the tests import -- the installed package (the
``pytest`` script) or this source tree (``python -m pytest``, which puts the
repository root first on sys.path) -- has its compiled extension, built from
this repository's C and Cython sources; it reaches the C code; the sdist
carries everything needed to build it and no build product; the binary wheel
(FASTNN_WHEEL, built and repaired by .ci/run) holds this package, its extension
built from these sources and linking only glibc, and nothing else.

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


# -- the binary wheel ------------------------------------------------------
# Built and repaired as the README's "binary wheel" paragraph says; .ci/run
# does it, installs the wheel where there is no compiler, and runs these tests
# on it with FASTNN_WHEEL set.  Checking a wheel is cheap (a zip listing);
# building one is not (a compile), so without FASTNN_WHEEL they skip.

def _wheel():
    path = os.environ.get("FASTNN_WHEEL", "")
    if not path:
        pytest.skip("no wheel to check: set FASTNN_WHEEL to a wheel built and repaired as the "
                    "README's 'binary wheel' paragraph says (.ci/run does)")
    assert os.path.isfile(path), f"FASTNN_WHEEL={path} is not a file"
    return path


def _wheel_tags(path):
    """(distribution, version, python tag, abi tag, platform tag) from a wheel's file name."""
    fields = os.path.basename(path)[:-len(".whl")].split("-")
    assert len(fields) == 5, f"{path}: not a wheel's file name (name-version-python-abi-platform)"
    return tuple(fields)


def _wheel_extension(whl):
    (ext,) = [n for n in whl.namelist() if n.endswith((".so", ".pyd"))]
    return ext


def test_wheel_holds_the_package_and_its_extension_only():
    import zipfile
    path = _wheel()
    name, version, python_tag, abi_tag, platform_tag = _wheel_tags(path)
    assert (name, version) == ("fastnn", fastnn.__version__), path
    # repaired: a manylinux platform tag, as `auditwheel repair` sets it
    # (a linux_x86_64 wheel is refused by PyPI and by pip on other machines)
    assert sys.platform != "linux" or platform_tag.startswith("manylinux_"), (
        f"{path} has the platform tag {platform_tag}: repair it with auditwheel")
    dist_info = f"fastnn-{version}.dist-info/"
    with zipfile.ZipFile(path) as whl:
        names = {n for n in whl.namelist() if not n.endswith("/")}
        wheel_meta = whl.read(dist_info + "WHEEL").decode()
        record = whl.read(dist_info + "RECORD").decode()
        ext = _wheel_extension(whl)
        ext_bytes = whl.read(ext)
    # nothing but the package and its metadata: no sources of the C build
    # (csrc/), no tests, no libraries grafted by auditwheel (fastnn.libs/: the
    # extension needs nothing but the C library)
    outside = sorted(n for n in names if not n.startswith(("fastnn/", dist_info)))
    assert not outside, f"{path} holds files outside the package: {outside}"
    assert "Root-Is-Purelib: false" in wheel_meta, wheel_meta
    assert f"Tag: {python_tag}-{abi_tag}-{platform_tag}" in wheel_meta, wheel_meta
    # every file listed in RECORD, and only those (pip checks their hashes)
    recorded = {line.split(",")[0] for line in record.splitlines() if line}
    assert recorded == names, f"RECORD and the wheel differ: {sorted(recorded ^ names)}"

    # the package: this tree's modules, exactly (a module deleted here but left
    # in build/release/lib/ by an earlier build would come back), the typing
    # marker, the Cython declarations shipped as package data, one extension
    package = {n for n in names if n.startswith("fastnn/")}
    modules = {os.path.relpath(p, REPO).replace(os.sep, "/") for p in
               glob.glob(os.path.join(REPO, "fastnn", "**", "*.py"), recursive=True)}
    cython = {os.path.relpath(p, REPO).replace(os.sep, "/") for pattern in ("*.pyx", "*.pxd")
              for p in glob.glob(os.path.join(REPO, "fastnn", "**", pattern), recursive=True)}
    assert "fastnn/backends/cython_ops.pyx" in cython and "fastnn/__init__.py" in modules
    assert ext.startswith("fastnn/backends/cython_ops.") and ext.endswith(".so"), ext
    if python_tag == f"cp{sys.version_info[0]}{sys.version_info[1]}":
        assert ext == "fastnn/backends/cython_ops" + SUFFIX, (ext, SUFFIX)
    expected = modules | cython | {"fastnn/py.typed", ext}
    assert package == expected, (
        f"{path}: unexpected {sorted(package - expected)}, missing {sorted(expected - package)}")
    # built from this tree's C and Cython sources, and not a sanitizer build
    assert b"fastnn-source-hash:" + source_hash(REPO).encode() in ext_bytes, (
        f"the extension in {path} was built from other C/Cython sources")
    assert b"libasan.so" not in ext_bytes, f"the extension in {path} is a sanitizer build"


def test_wheel_extension_links_only_the_c_library():
    # what lets the manylinux tag stand: no BLAS, no OpenMP runtime, no
    # libstdc++ -- the kernels' own GEMM and thread pool -- only glibc's parts
    import io
    import zipfile
    elffile = pytest.importorskip("elftools.elf.elffile",
                                  reason="pyelftools (installed with auditwheel) reads the ELF")
    path = _wheel()
    with zipfile.ZipFile(path) as whl:
        data = whl.read(_wheel_extension(whl))
    if not data.startswith(b"\x7fELF"):
        pytest.skip("the extension is not an ELF file")
    elf = elffile.ELFFile(io.BytesIO(data))
    dynamic = elf.get_section_by_name(".dynamic")
    needed = {tag.needed for tag in dynamic.iter_tags() if tag.entry.d_tag == "DT_NEEDED"}
    glibc = {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1",
             "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"}
    assert needed and needed <= glibc, f"the extension needs {sorted(needed - glibc)}"


def test_wheel_commands_of_the_readme_are_the_ones_ci_runs():
    import re
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    with open(os.path.join(REPO, ".ci", "run"), encoding="utf-8") as f:
        ci = f.read()
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)
    (block,) = [b for b in blocks if "auditwheel repair" in b]
    commands = [line.split("#")[0].strip() for line in block.splitlines()]
    build = [c for c in commands if c.startswith("python -m build --wheel")]
    repair = [c for c in commands if c.startswith("auditwheel repair")]
    assert build and repair, block
    # the same commands, with CI's directories
    assert re.search(r"^python -m build --wheel\b", ci, re.M)
    assert re.search(r"^auditwheel repair --strip\b", ci, re.M) and "--strip" in repair[0]
    assert re.search(r"--only-binary[= ]:all:", ci), "CI must not let pip build from source"
    assert block.index("python -m build --wheel") < block.index("auditwheel repair")
