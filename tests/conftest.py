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


def fd_grad(f, x, eps=1e-6):
    """Central differences of the scalar f() w.r.t. every element of x (perturbed in place)."""
    grad = np.zeros_like(x, dtype=np.float64)
    flat = x.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        grad.reshape(-1)[i] = (up - down) / (2 * eps)
    return grad


# The hand-worked two-step optimizer harness (tests/test_optimizers.py and
# tests/test_adaptive_optimizers.py): a 2-1 Dense layer with set weights, two
# hand-set gradients, and the expected (W, b) after each step.
STEP_W0 = [[1.0], [-2.0]]
STEP_B0 = [0.5]
STEP_GRADS = [([[0.5], [-1.0]], [2.0]), ([[1.0], [0.25]], [-1.0])]


def step_net(backend, dtype):
    """The 2-1 network with weights STEP_W0, STEP_B0."""
    net = fastnn.Network([fastnn.Dense(2, 1)], backend=backend, dtype=dtype, seed=0)
    net.layers[0].W = STEP_W0
    net.layers[0].b = STEP_B0
    return net


def two_steps(net, opt):
    """Apply the two hand-set gradients; returns [(W, b) after step 1, after step 2]."""
    dense = net.layers[0]
    out = []
    for dW, db in STEP_GRADS:
        dense.dW = np.array(dW, dtype=net.dtype)
        dense.db = np.array(db, dtype=net.dtype)
        opt.step(net)
        out.append((dense.W.copy(), dense.b.copy()))
    return out


def check_steps(got, want, dtype):
    """Each step's (W, b) of ``dtype`` against its hand-worked values."""
    for (W, b), (W_want, b_want) in zip(got, want):
        assert W.dtype == dtype and b.dtype == dtype
        np.testing.assert_allclose(W, W_want, **tol(dtype))
        np.testing.assert_allclose(b, b_want, **tol(dtype))


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
