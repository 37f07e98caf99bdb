"""Training-loop benchmarks: each workload one group, numpy and cython side by side.

Run: ``pytest benchmarks/test_bench_training.py --benchmark-group-by=group``.
The workloads (networks, data, optimizers) are those of ``python -m fastnn
bench`` (fastnn/bench.py), which alternates the backends within one run and
prints the ratio table; this file gives pytest-benchmark's statistics for the
same work.  Each benchmark call trains a fixed number of epochs.
"""

import pytest

from fastnn.bench import WORKLOADS, _fastnn_trainer

#: epochs per timed call, chosen so one call takes ~10-100 ms on the reference
EPOCHS = {"xor": 2000, "digits": 1, "mnist32": 1, "mnist64": 1}


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_training(benchmark, backend, name):
    train = _fastnn_trainer(name, backend)
    train(1)                                    # warm-up: first-call costs out of the way
    benchmark.group = WORKLOADS[name]["title"]
    benchmark.extra_info["samples_per_call"] = WORKLOADS[name]["rows"] * EPOCHS[name]
    benchmark.pedantic(train, args=(EPOCHS[name],), rounds=5, iterations=1)
