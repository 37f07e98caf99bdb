"""Kernel benchmarks: GEMM, dense forward/backward at MNIST-batch shapes, activations, updates.

Run: ``pytest benchmarks/test_bench_kernels.py --benchmark-group-by=group``.
"""

import numpy as np
import pytest

MNIST_LAYERS = [(64, 784, 256), (64, 256, 128), (64, 128, 10)]
DTYPES = [np.float32, np.float64]


def _arrays(rng, dtype, *shapes):
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


@pytest.mark.parametrize("dtype", [np.float32], ids=["float32"])
def test_gemm_2048(benchmark, ops, dtype):
    """The large product: GFLOP/s = 2 * 2048^3 / time."""
    A, B = _arrays(np.random.default_rng(0), dtype, (2048, 2048), (2048, 2048))
    benchmark.group = "gemm 2048x2048x2048 float32"
    benchmark.extra_info["gflop"] = 2 * 2048 ** 3 / 1e9
    benchmark(ops.gemm, A, B)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("n,n_in,n_out", MNIST_LAYERS)
def test_dense_forward(benchmark, ops, dtype, n, n_in, n_out):
    X, W, b = _arrays(np.random.default_rng(0), dtype, (n, n_in), (n_in, n_out), (n_out,))
    benchmark.group = f"dense forward relu {n}x{n_in}x{n_out} {np.dtype(dtype).name}"
    benchmark(ops.dense_forward, X, W, b, "relu")


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("n,n_in,n_out", MNIST_LAYERS)
def test_dense_backward(benchmark, ops, dtype, n, n_in, n_out):
    X, W, b, dY = _arrays(np.random.default_rng(0), dtype, (n, n_in), (n_in, n_out), (n_out,),
                          (n, n_out))
    Z, Y = ops.dense_forward(X, W, b, "relu")
    benchmark.group = f"dense backward relu {n}x{n_in}x{n_out} {np.dtype(dtype).name}"
    benchmark(ops.dense_backward, X, W, Z, Y, dY, "relu")


@pytest.mark.parametrize("kind", ["sigmoid", "tanh", "relu", "silu", "softmax"])
def test_activation_forward(benchmark, ops, kind):
    (X,) = _arrays(np.random.default_rng(0), np.float32, (64, 256))
    benchmark.group = f"activation {kind} 64x256 float32"
    benchmark(ops.activation_forward, X, kind)


def test_cross_entropy(benchmark, ops):
    (logits,) = _arrays(np.random.default_rng(0), np.float32, (64, 10))
    labels = np.random.default_rng(1).integers(0, 10, 64)
    benchmark.group = "cross-entropy 64x10 float32"
    benchmark(ops.cross_entropy, logits, labels)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_sgd_momentum(benchmark, ops, dtype):
    p, g, v = _arrays(np.random.default_rng(0), dtype, (784, 256), (784, 256), (784, 256))
    benchmark.group = f"sgd momentum update 784x256 {np.dtype(dtype).name}"
    benchmark(ops.sgd_update, p, g, v, 1e-6, 0.9)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_adam(benchmark, ops, dtype):
    p, g, m = _arrays(np.random.default_rng(0), dtype, (784, 256), (784, 256), (784, 256))
    v = np.abs(m)
    benchmark.group = f"adam update 784x256 {np.dtype(dtype).name}"
    benchmark(ops.adam_update, p, g, m, v, 1, 1e-6)
