"""Loading the compiled backend: never a silent fallback.

Why it is built this way: what happens when the extension is missing, stale,
or refused (an invalid ``FASTNN_ISA``) depends on the process's first import,
so each case runs in a child Python on a temporary copy of the package -- a
source tree (setup.py, csrc/ and fastnn/ side by side) with or without the
extension -- and the test reads what the user would see: the warning, the
error, the output of ``python -m fastnn``.
"""

import importlib.machinery
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import fastnn
from fastnn.backends import _compiled_status

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]

#: run in the child: use the default backend twice, then ask for the compiled one
PROBE = """if True:
    import json, warnings
    import numpy as np
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import fastnn
        from fastnn.backends import available_backends
        out = {"file": fastnn.__file__, "available": available_backends()}
        out["default"] = [fastnn.Network([fastnn.Dense(2, 1)], seed=0).ops.name
                          for _ in range(2)]
        fastnn.MSELoss()(np.zeros((2, 1)), np.ones((2, 1)))
    out["warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
    try:
        fastnn.get_backend("cython")
        out["cython"] = "ok"
    except Exception as exc:
        out["cython"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(out))
"""


def _tree(tmp_path, extension=True):
    """A copy of the source tree (setup.py, csrc/, fastnn/), with or without the extension."""
    root = tmp_path / "clone"
    root.mkdir()
    shutil.copy2(os.path.join(REPO, "setup.py"), root)
    shutil.copytree(os.path.join(REPO, "csrc"), root / "csrc")
    shutil.copytree(os.path.join(REPO, "fastnn"), root / "fastnn", ignore=shutil.ignore_patterns(
        "__pycache__", "*.so", "*.pyd"))
    if extension:
        module, problem = _compiled_status()
        if module is None:
            pytest.fail(f"the compiled backend cannot be loaded: {problem}", pytrace=False)
        shutil.copy2(module.__file__, root / "fastnn" / "backends" / ("cython_ops" + SUFFIX))
    return root


def _run(args, cwd, drop=(), **env):
    clean = {k: v for k, v in os.environ.items()
             if k not in ("FASTNN_BACKEND", "FASTNN_ISA", "PYTHONPATH", *drop)}
    clean.update(env)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=clean, capture_output=True,
                          text=True, timeout=300)


def _probe(root, **env):
    proc = _run(["-c", PROBE], root, **env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["file"] == str(root / "fastnn" / "__init__.py"), out   # the tree, not site-packages
    return out


# ------------------------------------------------------- no extension beside the sources
def test_source_tree_without_extension_warns_once_with_the_command(tmp_path):
    root = _tree(tmp_path, extension=False)
    out = _probe(root)
    assert out["available"] == ["numpy"]
    assert out["default"] == ["numpy", "numpy"]
    assert len(out["warnings"]) == 1, out["warnings"]          # once, at first use
    warning = out["warnings"][0]
    assert warning.startswith("FallbackWarning: fastnn's compiled backend cannot be used, so "
                              "the NumPy reference backend (much slower) runs instead"), warning
    assert f"is not in {root / 'fastnn' / 'backends'}" in warning
    assert f"run 'pip install .' in {root}" in warning
    assert out["cython"].startswith("ImportError: the 'cython' backend is not available: "
                                    "fastnn's compiled extension (cython_ops*.so) is not in")
    assert f"run 'pip install .' in {root}" in out["cython"]
    assert "reinstall fastnn with 'pip install .'" not in out["cython"]


@pytest.mark.parametrize("how", ["environment", "set_backend"])
def test_choosing_the_reference_on_purpose_never_warns(tmp_path, how):
    root = _tree(tmp_path, extension=False)
    code = ("import warnings; warnings.simplefilter('error'); import fastnn; "
            + ("fastnn.set_backend('numpy'); " if how == "set_backend" else "")
            + "print(fastnn.Network([fastnn.Dense(2, 1)]).ops.name)")
    proc = _run(["-c", code], root, **({"FASTNN_BACKEND": "numpy"} if how == "environment"
                                       else {}))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "numpy" and proc.stderr == ""


def test_bench_and_info_name_the_cause(tmp_path):
    root = _tree(tmp_path, extension=False)
    proc = _run(["-m", "fastnn", "bench", "--workload", "xor", "--no-torch", "--no-gemm"], root)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "nan" not in proc.stdout.lower() and "nan" not in proc.stderr.lower()
    assert proc.stderr.startswith("python -m fastnn bench: the compiled backend cannot be used")
    assert f"run 'pip install .' in {root}" in proc.stderr
    proc = _run(["-m", "fastnn", "info"], root)
    assert proc.returncode == 0, proc.stderr
    assert "compiled:        not available: fastnn's compiled extension" in proc.stdout
    assert f"run 'pip install .' in {root}" in proc.stdout
    assert "default backend: numpy (the compiled backend cannot be used)" in proc.stdout


def test_sanitizer_build_without_its_runtime_is_named_not_loaded(tmp_path):
    # loading an ASan build without the ASan runtime kills the process, so the
    # file is recognised before the import (here a stand-in: it is never loaded)
    root = _tree(tmp_path, extension=False)
    (root / "fastnn" / "backends" / ("cython_ops" + SUFFIX)).write_bytes(
        b"\x7fELF stand-in\0libasan.so.8\0libc.so.6\0")
    proc = _run(["-c", PROBE], root, drop=("LD_PRELOAD",))        # no ASan runtime
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["default"] == ["numpy", "numpy"] and len(out["warnings"]) == 1, out
    for message in (out["warnings"][0], out["cython"]):
        assert "is an AddressSanitizer build (FASTNN_SANITIZE=1) and the ASan runtime is not " \
               "loaded; start Python with LD_PRELOAD=" in message, message
        assert f"rebuild without FASTNN_SANITIZE: run 'pip install .' in {root}" in message


# ------------------------------------------------------------------ stale in-tree build
def test_stale_source_tree_build_warns_with_the_command(tmp_path):
    root = _tree(tmp_path)
    out = _probe(root)                                  # fresh: compiled, no warning
    assert out["default"] == ["cython", "cython"] and out["warnings"] == [], out
    with open(root / "csrc" / "rng.c", "a") as f:       # a developer edits the C code
        f.write("/* edited */\n")
    out = _probe(root)
    assert out["default"] == ["cython", "cython"]       # still usable, but said once
    assert len(out["warnings"]) == 1, out["warnings"]
    warning = out["warnings"][0]
    assert warning.startswith(f"UserWarning: fastnn's compiled extension {root}"), warning
    assert "was built from other sources than those in" in warning
    assert f"to rebuild it, run 'pip install .' in {root}" in warning


# ------------------------------------------------------------------ invalid FASTNN_ISA
def test_invalid_fastnn_isa_only_stops_the_compiled_backend(tmp_path):
    root = _tree(tmp_path)
    out = _probe(root, FASTNN_ISA="bogus")
    assert out["available"] == ["numpy"]
    assert out["default"] == ["numpy", "numpy"]
    assert len(out["warnings"]) == 1 and out["warnings"][0].startswith("FallbackWarning")
    assert "FASTNN_ISA='bogus' is not usable" in out["warnings"][0]
    expected = ("ValueError: the environment variable FASTNN_ISA='bogus' is not usable: unknown "
                "ISA 'bogus'; expected one of ('generic', 'avx2', 'avx512')")
    assert out["cython"].startswith(expected), out["cython"]
    proc = _run(["-m", "fastnn", "info"], root, FASTNN_ISA="bogus")
    assert proc.returncode == 0, proc.stderr
    assert "backends:        numpy\n" in proc.stdout
    assert "expected one of ('generic', 'avx2', 'avx512')" in proc.stdout
    pytest.importorskip("sklearn", reason="MLPRegressor needs scikit-learn")
    code = ("import numpy as np, warnings; from fastnn.sklearn import MLPRegressor; "
            "warnings.simplefilter('ignore'); X = np.arange(20.).reshape(10, 2); "
            "m = MLPRegressor(hidden_layer_sizes=(3,), max_iter=5, random_state=0, "
            "backend='numpy').fit(X, X[:, 0]); print(m.predict(X).shape)")
    proc = _run(["-c", code], root, FASTNN_ISA="bogus")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "(10,)"


# ---------------------------------------------------------------------- thread count
@pytest.mark.parametrize("n", [np.int64(2), np.int32(1), np.uint8(2), 2])
def test_set_num_threads_takes_numpy_integers(n):
    before = fastnn.get_num_threads()
    try:
        fastnn.set_num_threads(n)
        if _compiled_status()[0] is not None:
            assert fastnn.get_num_threads() == int(n)
    finally:
        fastnn.set_num_threads(before)


@pytest.mark.parametrize("bad,error", [(0, ValueError), (np.int64(-1), ValueError),
                                       (1.5, TypeError), ("2", TypeError), (True, TypeError)])
def test_set_num_threads_refuses_non_integers(bad, error):
    before = fastnn.get_num_threads()
    with pytest.raises(error, match="the number of threads must be"):
        fastnn.set_num_threads(bad)
    assert fastnn.get_num_threads() == before
