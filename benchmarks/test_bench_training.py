"""Training-loop benchmarks: each workload one group, tutorial, numpy and cython side by side.

Run: ``pytest benchmarks/test_bench_training.py --benchmark-group-by=group``.
The workloads (networks, data, optimizers) are those of ``python -m fastnn
bench`` (fastnn/bench.py), which alternates the trainers within one run and
prints the ratio table; this file gives pytest-benchmark's statistics for the
same work.  "tutorial" is the plain NumPy loop of the tutorials
(``fastnn.bench.TutorialMLP``), the baseline a user migrates from; "numpy"
and "cython" are fastnn's backends.  Each benchmark call trains a fixed
number of epochs.
"""

import pytest

from fastnn.backends import available_backends
from fastnn.bench import WORKLOADS, _fastnn_trainer, _tutorial_trainer

#: epochs per timed call, chosen so one call takes ~10-100 ms on the reference
#: (wide: one epoch, its smallest call, ~100-300 ms)
EPOCHS = {"xor": 2000, "weight_height": 200, "digits": 1, "mnist32": 1, "mnist64": 1,
          "wide": 1, "toolbox": 1}


@pytest.fixture(params=("tutorial", "numpy", "cython"))
def trainer(request):
    """Which loop trains: the tutorial's, or a fastnn backend."""
    if request.param != "tutorial" and request.param not in available_backends():
        pytest.skip(f"backend {request.param!r} is not available")
    return request.param


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_training(benchmark, trainer, name):
    if trainer == "tutorial" and not WORKLOADS[name]["tutorial"]:
        pytest.skip(f"TutorialMLP cannot express the {name!r} workload")
    train = (_tutorial_trainer(name) if trainer == "tutorial"
             else _fastnn_trainer(name, trainer))
    train(1)                                    # warm-up: first-call costs out of the way
    benchmark.group = WORKLOADS[name]["title"]
    benchmark.extra_info["samples_per_call"] = WORKLOADS[name]["rows"] * EPOCHS[name]
    benchmark.pedantic(train, args=(EPOCHS[name],), rounds=5, iterations=1)
