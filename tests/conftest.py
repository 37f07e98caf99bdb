"""Shared fixtures: backend x dtype, the one tolerance table, seeded generators.

Why it is built this way: every test that compares numbers takes its
tolerance from ``TOL`` keyed by dtype, so a loosened tolerance is visible in
one place; backends are parametrised so each test runs on the reference and on
the compiled backend.  The compiled half FAILS, naming the cause, when the
extension cannot be loaded or was built from other C/Cython sources than this
repository's: a compiled half that skipped, or ran an old build, would test
nothing.  The header of a run says which fastnn it imports.
"""

import functools
import os
import sys

import numpy as np
import pytest

import fastnn
from fastnn.backends import _compiled_status, _source_hash

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: rtol/atol per dtype for compiled-vs-reference comparisons of one kernel call.
#: float64: ~1e-12 relative (summation order differs between GEMMs);
#: float32: ~1e-5 relative.
TOL = {
    np.dtype(np.float64): {"rtol": 1e-12, "atol": 1e-12},
    np.dtype(np.float32): {"rtol": 1e-5, "atol": 1e-5},
}

# Test modules take the table as ``from tests_conftest import tol``: with
# --import-mode=importlib this file is not importable by a name of its own.
sys.modules["tests_conftest"] = sys.modules[__name__]

BACKENDS = ("numpy", "cython")
DTYPES = (np.float64, np.float32)


def tol(dtype):
    """The tolerance keyword arguments for ``dtype``."""
    return TOL[np.dtype(dtype)]


@functools.lru_cache(maxsize=None)
def compiled_problem():
    """Why the compiled backend cannot be tested here, or None.

    Either it cannot be loaded (the cause and the fix), or it was built from
    other C/Cython sources than this repository's (a stale in-tree build, or an
    installed copy of other code).
    """
    module, problem = _compiled_status()
    if module is None:
        return problem
    built = module.source_hash() if hasattr(module, "source_hash") else "unknown"
    if built != _source_hash.source_hash(REPO):
        return (f"the compiled extension {module.__file__} was built from other C/Cython "
                f"sources than those of {REPO}, so it would test old code; rebuild it: "
                f"'pip install .' in {REPO}")
    return None


def pytest_report_header(config):
    where = os.path.dirname(os.path.abspath(fastnn.__file__))
    kind = "source tree" if _source_hash.source_root(where) else "installed"
    problem = compiled_problem()
    return [f"fastnn: {where} ({kind}); compiled backend: "
            + ("ok" if problem is None else f"NOT USABLE: {problem}")]


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Backend name; the compiled one fails, naming the cause, if it cannot be tested."""
    if request.param == "cython" and compiled_problem() is not None:
        pytest.fail(f"the compiled backend cannot be tested: {compiled_problem()}",
                    pytrace=False)
    return request.param


@pytest.fixture
def ops(backend):
    """The ops object of ``backend``."""
    return fastnn.get_backend(backend)


@pytest.fixture(params=DTYPES, ids=lambda d: np.dtype(d).name)
def dtype(request):
    return np.dtype(request.param)


@pytest.fixture
def rng():
    return np.random.default_rng(20261121)
