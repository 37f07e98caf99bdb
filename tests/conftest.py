"""Shared fixtures: backend x dtype, the one tolerance table, seeded generators.

Why it is built this way: every test that compares numbers takes its
tolerance from ``TOL`` keyed by dtype, so a loosened tolerance is visible in
one place; backends are parametrised so each test runs on the reference and on
the compiled backend (skipped, with the reason, if the extension is missing).
"""

import sys

import numpy as np
import pytest

import fastnn
from fastnn.backends import available_backends

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


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Backend name; the compiled one is skipped with a reason if it does not import."""
    if request.param not in available_backends():
        pytest.skip(f"backend {request.param!r} is not available in this installation")
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
