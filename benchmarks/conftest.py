"""Benchmark fixtures: each workload is a pytest-benchmark group with one entry per backend.

Why it is built this way: a speed claim is only meaningful as a ratio measured
in one run on this noisy shared machine, so every group holds the reference
and the compiled backend side by side (``--benchmark-group-by=group``).
Speed goals live here, never in the unit tests.
"""

import pytest

import fastnn
from fastnn.backends import available_backends


@pytest.fixture(params=("numpy", "cython"))
def backend(request):
    if request.param not in available_backends():
        pytest.skip(f"backend {request.param!r} is not available")
    return request.param


@pytest.fixture
def ops(backend):
    return fastnn.get_backend(backend)
