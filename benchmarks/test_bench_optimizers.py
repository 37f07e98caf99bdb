"""Update and clipping benchmarks: AdamW, Adam with amsgrad, RMSprop, Adagrad, and the
gradient clipping of ``fit``, at the MNIST-shaped network's first layer (784x256).

Run: ``pytest benchmarks/test_bench_optimizers.py --benchmark-group-by=group``.
Each group shows the numpy and cython backends side by side.
"""

import numpy as np
import pytest

DTYPES = [np.float32, np.float64]
SHAPE = (784, 256)

#: each row's hyper-parameters, with the flags that switch on all of its state
ROWS = {
    "adamw amsgrad": ("adamw", {"lr": 1e-6, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                                "weight_decay": 1e-2, "amsgrad": 1.0}, 3),
    "rmsprop": ("rmsprop", {"lr": 1e-6, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0,
                            "momentum": 0.0, "centered": 0.0}, 1),
    "rmsprop momentum centered": ("rmsprop", {"lr": 1e-6, "alpha": 0.99, "eps": 1e-8,
                                              "weight_decay": 0.0, "momentum": 0.9,
                                              "centered": 1.0}, 3),
    "adagrad": ("adagrad", {"lr": 1e-6, "lr_decay": 0.0, "weight_decay": 0.0, "eps": 1e-10}, 1),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("row", sorted(ROWS))
def test_update(benchmark, ops, dtype, row):
    name, hypers, n_state = ROWS[row]
    rng = np.random.default_rng(0)
    p, g = (rng.standard_normal(SHAPE).astype(dtype) for _ in range(2))
    # small squares and averages (the centered difference stays >= 0)
    states = [np.full(SHAPE, 1e-2, dtype) for _ in range(n_state)]
    if n_state == 3:
        states[1][...] = 0.0
        states[2][...] = 1e-3
    benchmark.group = f"{row} update 784x256 {np.dtype(dtype).name}"
    benchmark(ops.optimizer_update, name, p, g, states, hypers, 1)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("kernel", ["clip_grad_norm", "clip_grad_value"])
def test_clip(benchmark, ops, dtype, kernel):
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(s).astype(dtype) for s in (SHAPE, (256,), (256, 128), (128,))]
    benchmark.group = f"{kernel} 784-256-128 {np.dtype(dtype).name}"
    # a limit above the norm (and every value): the arrays stay the same between rounds
    benchmark(getattr(ops, kernel), grads, 1e6)
