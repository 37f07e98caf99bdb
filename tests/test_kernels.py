"""Every kernel of the compiled backend against the NumPy reference.

Why it is built this way: NumpyOps is the spec, so each test calls the same
kernel on both backends with the same (copied) inputs and compares with the
one tolerance table of conftest (``tol(dtype)``).  The grid of shapes covers
the edges of a blocked kernel (1x1, one row, one column, primes, larger than a
cache block); hypothesis supplies the values.  Inputs are checked to be left
untouched (and read-only inputs to be accepted), optimizer state to be updated
in place, bad arguments to raise errors that name the shapes, the GEMM and
dense kernels to agree on every instruction set the CPU has, and their results
to be bit-identical for 1 and 2 threads.
"""

import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fastnn.backends.numpy_ops import ACTIVATIONS, NEEDS_PREACTIVATION, NumpyOps


from tests_conftest import tol  # noqa: E402 (conftest.py registers the name)
co = pytest.importorskip("fastnn.backends.cython_ops", reason="the compiled backend is not built")

C = co.CythonOps()
R = NumpyOps()
DTYPES = (np.float64, np.float32)
ISAS = ("generic", "avx2", "avx512")
HYP = settings(max_examples=25, deadline=None)

#: (rows, cols) grid for elementwise / row-wise kernels
SHAPES = [(1, 1), (1, 17), (17, 1), (7, 13), (300, 257)]
#: (m, k, n) grid for GEMM and dense layers (n x n_in @ n_in x n_out)
MKN = [(1, 1, 1), (1, 5, 9), (9, 5, 1), (7, 11, 13), (300, 129, 257)]
#: dense adds an n_in longer than the GEMM's k slice (kc = 256), so the fused
#: epilogue must wait for the last slice of k
DENSE = MKN + [(33, 520, 70)]


# ------------------------------------------------------------------ helpers
@pytest.fixture(params=ISAS)
def isa(request):
    """Force one instruction set for the test; restore the previous one after."""
    if request.param not in co.supported_isas():
        pytest.skip(f"this CPU does not support {request.param}")
    previous = co.get_isa()
    co.set_isa(request.param)
    try:
        yield request.param
    finally:
        co.set_isa(previous)


@pytest.fixture
def threads():
    """Restore the thread count after a test that changes it."""
    previous = co.get_num_threads()
    try:
        yield
    finally:
        co.set_num_threads(previous)


def ro(a):
    """A read-only copy of ``a`` (the compiled kernels must accept it)."""
    if a is None:
        return None
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


def close(got, want, dtype, scale=None):
    """assert got ~ want with conftest's tolerance; ``scale`` widens atol per element."""
    if want is None:
        assert got is None
        return
    assert got is not None
    assert got.shape == want.shape and got.dtype == want.dtype
    t = tol(dtype)
    atol = t["atol"] if scale is None else t["atol"] * np.maximum(scale, 1.0)
    err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    bound = atol + t["rtol"] * np.abs(want.astype(np.float64))
    bad = ~(err <= bound)
    assert not bad.any(), (f"{bad.sum()} of {bad.size} elements differ; worst error "
                           f"{err.max()} (dtype {np.dtype(dtype).name})")


def same_loss(got, want, dtype):
    assert isinstance(got, float)
    t = tol(dtype)
    assert abs(got - want) <= t["atol"] + t["rtol"] * abs(want), (got, want)


def randn(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def values(dtype, shape, lo=-20.0, hi=20.0):
    """Hypothesis arrays of ``shape`` with finite values in [lo, hi]."""
    return hnp.arrays(dtype, shape, elements=st.floats(lo, hi, width=np.dtype(dtype).itemsize * 8,
                                                       allow_nan=False, allow_infinity=False))


def op_shape(shape, trans):
    return shape[::-1] if trans else shape


# --------------------------------------------------------------------- GEMM
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("m,k,n", MKN)
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True),
                                             (True, True)])
def test_gemm_matches_reference(isa, dtype, m, k, n, trans_a, trans_b, rng):
    A = randn(rng, op_shape((m, k), trans_a), dtype)
    B = randn(rng, op_shape((k, n), trans_b), dtype)
    A0, B0 = A.copy(), B.copy()
    got = C.gemm(ro(A), ro(B), trans_a=trans_a, trans_b=trans_b)
    want = R.gemm(A, B, trans_a=trans_a, trans_b=trans_b)
    # The two GEMMs add the k products in different orders, so their rounding
    # errors are bounded by the sum of the magnitudes |A| @ |B| (k * eps * that),
    # not by |A @ B|, which may have cancelled to ~0: the absolute tolerance is
    # scaled per element by (|op(A)| @ |op(B)|).
    scale = np.abs(A.T if trans_a else A).astype(np.float64) @ np.abs(B.T if trans_b else B)
    close(got, want, dtype, scale)
    np.testing.assert_array_equal(A, A0)
    np.testing.assert_array_equal(B, B0)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(data=st.data())
@HYP
def test_gemm_hypothesis(dtype, data):
    m, k, n = (data.draw(st.integers(1, 40), label=x) for x in "mkn")
    ta, tb = data.draw(st.booleans(), label="trans_a"), data.draw(st.booleans(), label="trans_b")
    A = data.draw(values(dtype, op_shape((m, k), ta), -100, 100), label="A")
    B = data.draw(values(dtype, op_shape((k, n), tb), -100, 100), label="B")
    got = C.gemm(A, B, trans_a=ta, trans_b=tb)
    want = R.gemm(A, B, trans_a=ta, trans_b=tb)
    # see test_gemm_matches_reference for why atol scales with |A| @ |B|
    scale = np.abs(A.T if ta else A).astype(np.float64) @ np.abs(B.T if tb else B)
    close(got, want, dtype, scale)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_gemm_out_and_edges(dtype, rng):
    A, B = randn(rng, (7, 5), dtype), randn(rng, (5, 3), dtype)
    out = np.full((7, 3), np.nan, dtype)
    res = C.gemm(A, B, out=out)
    assert res is out
    close(out, A @ B, dtype, np.abs(A) @ np.abs(B))
    # out overlapping an input: the input must not be read after being written
    S = randn(rng, (6, 6), dtype)
    want = S @ S
    C.gemm(S, S.copy(), out=S)
    close(S, want, dtype, 36.0)
    # k == 0 gives zeros, empty m or n an empty result
    np.testing.assert_array_equal(C.gemm(np.ones((3, 0), dtype), np.ones((0, 4), dtype)),
                                  np.zeros((3, 4), dtype))
    assert C.gemm(np.ones((0, 2), dtype), np.ones((2, 4), dtype)).shape == (0, 4)
    assert C.gemm(np.ones((3, 2), dtype), np.ones((2, 0), dtype)).shape == (3, 0)


def test_gemm_bad_arguments():
    A, B = np.ones((3, 4)), np.ones((5, 2))
    with pytest.raises(ValueError, match=re.escape("(3, 4)") + ".*" + re.escape("(5, 2)")):
        C.gemm(A, B)
    with pytest.raises(TypeError, match="float32"):
        C.gemm(np.ones((3, 4)), np.ones((4, 2), np.float32))
    with pytest.raises(TypeError, match="int64"):
        C.gemm(np.ones((3, 4), np.int64), np.ones((4, 2), np.int64))
    with pytest.raises(ValueError, match="C-contiguous"):
        C.gemm(np.ones((4, 3)).T, np.ones((4, 2)))
    with pytest.raises(ValueError, match="2-D"):
        C.gemm(np.ones(4), np.ones((4, 2)))
    with pytest.raises(ValueError, match=re.escape("(2, 2)")):
        C.gemm(np.ones((3, 4)), np.ones((4, 2)), out=np.empty((2, 2)))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        C.gemm([[1.0]], np.ones((1, 1)))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_gemm_and_dense_threads_bit_identical(isa, dtype, rng, threads):
    X, W, b = randn(rng, (300, 129), dtype), randn(rng, (129, 257), dtype), randn(rng, 257, dtype)
    dY = randn(rng, (300, 257), dtype)
    results = []
    for nt in (1, 2):
        co.set_num_threads(nt)
        Z, Y = C.dense_forward(X, W, b, "silu")
        results.append([C.gemm(X, W), C.gemm(X, dY, trans_a=True), C.gemm(dY, W, trans_b=True),
                        Z, Y, *C.dense_backward(X, W, Z, Y, dY, "silu"),
                        C.dense_forward(X, W, b, "softmax")[1]])
    for one, two in zip(*results):
        np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_elementwise_passes_threads_bit_identical(dtype, rng, threads):
    """Activations and optimizer updates large enough to be split across threads
    (2049 x 2049 > 2^16 elements, PARALLEL_MIN in csrc/gemm.c) give the same bits
    on 1 and 2 threads, and match the reference."""
    shape = (2049, 2049)
    X, dY = randn(rng, shape, dtype, 3.0), randn(rng, shape, dtype)

    def both(run):
        out = []
        for nt in (1, 2):
            co.set_num_threads(nt)
            out.append(run())
        return out

    for kind in ACTIVATIONS:
        one, two = both(lambda: C.activation_forward(X, kind, 0.1))
        np.testing.assert_array_equal(one, two)
        one, two = both(lambda: C.activation_backward(dY, X, one, kind, 0.1))
        np.testing.assert_array_equal(one, two)

    def sgd():
        p, v = X.copy(), np.zeros_like(X)
        C.sgd_update(p, dY, v, 0.1, 0.9, 0.01, True)
        return p, v

    def adam():
        p, m, v = X.copy(), np.zeros_like(X), np.zeros_like(X)
        C.adam_update(p, dY, m, v, 1, 0.01, weight_decay=0.01)
        return p, m, v

    for run, ref in ((sgd, lambda p, v: R.sgd_update(p, dY, v, 0.1, 0.9, 0.01, True)),
                     (adam, lambda p, m, v: R.adam_update(p, dY, m, v, 1, 0.01,
                                                          weight_decay=0.01))):
        one, two = both(run)
        for a, b in zip(one, two):
            np.testing.assert_array_equal(a, b)
        expected = [X.copy()] + [np.zeros_like(X) for _ in one[1:]]
        ref(*expected)
        close(one[0], expected[0], dtype)


# -------------------------------------------------------------- activations
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", ACTIVATIONS)
def test_activation_grid(dtype, shape, kind, rng):
    X = randn(rng, shape, dtype, 3.0)
    X[0, 0] = 0.0                     # the kink of relu / leaky relu
    dY = randn(rng, shape, dtype)
    X0, dY0 = X.copy(), dY.copy()
    Y = C.activation_forward(ro(X), kind, 0.07)
    Yr = R.activation_forward(X, kind, 0.07)
    close(Y, Yr, dtype)
    Z = X if kind in NEEDS_PREACTIVATION else None
    dZ = C.activation_backward(ro(dY), ro(Z), ro(Yr), kind, 0.07)
    close(dZ, R.activation_backward(dY, Z, Yr, kind, 0.07), dtype)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(dY, dY0)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(data=st.data())
@HYP
def test_activation_hypothesis(dtype, data):
    kind = data.draw(st.sampled_from(ACTIVATIONS), label="kind")
    shape = (data.draw(st.integers(1, 9), label="rows"), data.draw(st.integers(1, 40), label="cols"))
    X = data.draw(values(dtype, shape), label="X")
    dY = data.draw(values(dtype, shape, -5, 5), label="dY")
    alpha = data.draw(st.floats(0.0, 1.0), label="alpha")
    Yr = R.activation_forward(X, kind, alpha)
    close(C.activation_forward(X, kind, alpha), Yr, dtype)
    close(C.activation_backward(dY, X, Yr, kind, alpha),
          R.activation_backward(dY, X, Yr, kind, alpha), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_exp_based_kernels_over_the_whole_range(dtype):
    """The compiled exp (csrc/vexp.h) against NumPy's over every binade it meets.

    From overflow to the last subnormal, and inf/NaN: sigmoid, SiLU, softmax
    and the cross-entropy's gradient (softmax - onehot) stay within two units
    in the last place of the reference (each exp is within about one unit of
    the true value; neither is correctly rounded).
    """
    big = 760.0 if dtype == np.float64 else 110.0
    x = np.concatenate([np.linspace(-big, big, 200_001), [np.inf, -np.inf, np.nan, 0.0, -0.0]])
    x = x.astype(dtype)
    with np.errstate(all="ignore"):
        np.testing.assert_array_max_ulp(C.activation_forward(x[None, :], "sigmoid"),
                                        R.activation_forward(x[None, :], "sigmoid"), maxulp=2)
        # x * sigmoid(x): where sigmoid(x) is subnormal, one unit of it (which
        # the two exps may round differently) is scaled up by |x| <= big
        tiny = np.finfo(dtype).smallest_subnormal
        np.testing.assert_allclose(C.activation_forward(x[None, :], "silu"),
                                   R.activation_forward(x[None, :], "silu"),
                                   rtol=4 * np.finfo(dtype).eps, atol=2 * big * tiny)
        pairs = np.stack([x, np.zeros_like(x)], axis=1)     # softmax([x, 0]) = exp(x - max)/sum
        finite = pairs[np.isfinite(x)]
        np.testing.assert_array_max_ulp(C.activation_forward(finite, "softmax"),
                                        R.activation_forward(finite, "softmax"), maxulp=2)
        labels = np.zeros(len(finite), dtype=np.int64)
        grad_c = C.cross_entropy(finite, labels, "sum")[1]
        grad_r = R.cross_entropy(finite, labels, "sum")[1]
        np.testing.assert_allclose(grad_c, grad_r, rtol=4 * np.finfo(dtype).eps,
                                   atol=4 * np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("width", [1, 7, 8, 9, 10, 15, 16, 17, 33])
def test_row_shift_with_a_nan_or_infinity_at_every_position(dtype, width, rng):
    """Softmax and the cross-entropy shift each row by its max (csrc/rows_impl.h,
    eight lanes at a time, then the tail): with a NaN, +inf or -inf at any
    position of any width the rows come out as with x - x.max() in the
    reference (a missed +inf would give finite values, not NaN)."""
    base = rng.standard_normal((1, width)).astype(dtype)
    rows = [base[0]]
    for value in (np.nan, np.inf, -np.inf):
        for p in range(width):
            row = base[0].copy()
            row[p] = value
            rows.append(row)
    rows.append(np.full(width, -np.inf, dtype))
    rows.append(np.where(np.arange(width) % 2 == 0, 0.0, -0.0).astype(dtype))
    X = np.array(rows, dtype=dtype)
    labels = np.arange(len(X), dtype=np.int64) % width
    with np.errstate(all="ignore"):
        outs = [(C.activation_forward(X, "softmax"), R.activation_forward(X, "softmax")),
                (C.cross_entropy(X, labels, "sum")[1], R.cross_entropy(X, labels, "sum")[1])]
        for c, r in outs:
            np.testing.assert_array_equal(np.isnan(c), np.isnan(r))
            close(np.nan_to_num(c), np.nan_to_num(r), dtype)

@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_activation_elementwise_any_shape_and_empty(dtype, rng):
    X = randn(rng, (2, 3, 4), dtype)
    close(C.activation_forward(X, "tanh"), R.activation_forward(X, "tanh"), dtype)
    E = np.empty((0, 5), dtype)
    for kind in ACTIVATIONS:
        assert C.activation_forward(E, kind).shape == (0, 5)
        assert C.activation_backward(E, E, E, kind).shape == (0, 5)


def test_activation_bad_arguments():
    X = np.ones((3, 4))
    with pytest.raises(ValueError, match="unknown activation"):
        C.activation_forward(X, "swish")
    with pytest.raises(ValueError, match=re.escape("(3, 5)") + ".*" + re.escape("(3, 4)")):
        C.activation_backward(X, None, np.ones((3, 5)), "sigmoid")
    with pytest.raises(TypeError, match="float32"):
        C.activation_backward(X, np.ones((3, 4), np.float32), None, "silu")
    with pytest.raises(ValueError, match="needs Z"):
        C.activation_backward(X, None, X, "leaky_relu")
    with pytest.raises(ValueError, match="2-D"):
        C.activation_forward(np.ones(4), "softmax")
    with pytest.raises(TypeError, match="int32"):
        C.activation_forward(np.ones((2, 2), np.int32), "relu")


def test_activation_relu_derivative_at_zero_is_zero():
    z = np.zeros((1, 3))
    assert not C.activation_backward(np.ones((1, 3)), z, C.activation_forward(z, "relu"),
                                     "relu").any()


# ---------------------------------------------------------------- dense layer
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("n,n_in,n_out", DENSE)
@pytest.mark.parametrize("kind", ACTIVATIONS)
def test_dense_matches_reference(isa, dtype, n, n_in, n_out, kind, rng):
    X, W = randn(rng, (n, n_in), dtype), randn(rng, (n_in, n_out), dtype)
    b = randn(rng, n_out, dtype)
    dY = randn(rng, (n, n_out), dtype)
    saved = [a.copy() for a in (X, W, b, dY)]
    # forward: Z = X@W + b goes through different GEMMs, so as for gemm the
    # absolute tolerance scales with |X| @ |W| + |b| (activations are 1-Lipschitz
    # up to a constant; softmax outputs are bounded by 1)
    scale = np.abs(X).astype(np.float64) @ np.abs(W) + np.abs(b)
    Z, Y = C.dense_forward(ro(X), ro(W), ro(b), kind, 0.05)
    Zr, Yr = R.dense_forward(X, W, b, kind, 0.05)
    close(Z, Zr, dtype, scale)
    close(Y, Yr, dtype, scale)
    # backward from the reference's forward, so only the backward is compared
    dX, dW, db = C.dense_backward(ro(X), ro(W), ro(Zr), ro(Yr), ro(dY), kind, 0.05)
    dXr, dWr, dbr = R.dense_backward(X, W, Zr, Yr, dY, kind, 0.05)
    dZ = np.abs(R.activation_backward(dY, Zr, Yr, kind, 0.05)) if kind != "identity" \
        else np.abs(dY)
    close(dW, dWr, dtype, np.abs(X.T).astype(np.float64) @ dZ)
    close(db, dbr, dtype, dZ.sum(axis=0))
    close(dX, dXr, dtype, dZ.astype(np.float64) @ np.abs(W.T))
    for a, a0 in zip((X, W, b, dY), saved):
        np.testing.assert_array_equal(a, a0)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(data=st.data())
@HYP
def test_dense_hypothesis(dtype, data):
    n, n_in, n_out = (data.draw(st.integers(1, 24), label=x) for x in ("n", "n_in", "n_out"))
    kind = data.draw(st.sampled_from(ACTIVATIONS), label="kind")
    bias = data.draw(st.booleans(), label="bias")
    X = data.draw(values(dtype, (n, n_in), -3, 3), label="X")
    W = data.draw(values(dtype, (n_in, n_out), -3, 3), label="W")
    b = data.draw(values(dtype, (n_out,), -3, 3), label="b") if bias else None
    dY = data.draw(values(dtype, (n, n_out), -3, 3), label="dY")
    scale = np.abs(X).astype(np.float64) @ np.abs(W) + (np.abs(b) if bias else 0)
    Z, Y = C.dense_forward(X, W, b, kind)
    Zr, Yr = R.dense_forward(X, W, b, kind)
    close(Z, Zr, dtype, scale)
    close(Y, Yr, dtype, scale)
    got = C.dense_backward(X, W, Zr, Yr, dY, kind, need_dX=n > 1, need_db=bias)
    want = R.dense_backward(X, W, Zr, Yr, dY, kind, need_dX=n > 1, need_db=bias)
    big = 1.0 + np.abs(X).max() * np.abs(dY).max() * max(n, n_out) * (1 + np.abs(W).max())
    for g, w in zip(got, want):
        close(g, w, dtype, big)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_dense_no_bias_flags_and_empty(dtype, rng):
    X, W = randn(rng, (5, 3), dtype), randn(rng, (3, 4), dtype)
    Z, Y = C.dense_forward(X, W, None, "relu")
    assert Z is None
    close(Y, R.dense_forward(X, W, None, "relu")[1], dtype, 10.0)
    dX, dW, db = C.dense_backward(X, W, None, Y, np.ones_like(Y), "relu", need_dX=False,
                                  need_db=False)
    assert dX is None and db is None and dW.shape == W.shape
    # identity keeps Z only as Y; its backward must not write to dY
    dY = ro(randn(rng, (5, 4), dtype))
    dX, dW, db = C.dense_backward(X, W, None, None, dY, "identity")
    close(db, dY.sum(axis=0), dtype)
    # zero rows
    E = np.empty((0, 3), dtype)
    Z, Y = C.dense_forward(E, W, np.zeros(4, dtype), "silu")
    assert Y.shape == (0, 4) and Z.shape == (0, 4)
    dX, dW, db = C.dense_backward(E, W, Z, Y, Y, "silu")
    assert dX.shape == (0, 3)
    np.testing.assert_array_equal(dW, np.zeros_like(W))
    np.testing.assert_array_equal(db, np.zeros(4, dtype))


def test_dense_bad_arguments():
    X, W = np.ones((5, 3)), np.ones((4, 2))
    with pytest.raises(ValueError, match=re.escape("(5, 3)") + ".*" + re.escape("(4, 2)")):
        C.dense_forward(X, W, None)
    with pytest.raises(ValueError, match=re.escape("(3,)")):
        C.dense_forward(X, np.ones((3, 2)), np.ones(3))
    with pytest.raises(TypeError, match="float32"):
        C.dense_forward(X, np.ones((3, 2), np.float32), None)
    with pytest.raises(ValueError, match=re.escape("(5, 3)")):
        C.dense_backward(X, np.ones((3, 2)), None, None, np.ones((5, 3)))
    with pytest.raises(ValueError, match="needs Y"):
        C.dense_backward(X, np.ones((3, 2)), None, None, np.ones((5, 2)), "tanh")


# ------------------------------------------------------------------- losses
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", ("mean", "sum"))
def test_losses_grid(dtype, shape, reduction, rng):
    pred, target = randn(rng, shape, dtype), randn(rng, shape, dtype)
    prob = rng.uniform(0, 1, shape).astype(dtype)
    prob.flat[0] = 0.0                # log(0): clamped at -100
    prob.flat[-1] = 1.0
    t01 = rng.uniform(0, 1, shape).astype(dtype)
    logits = randn(rng, shape, dtype, 4.0)
    labels = rng.integers(0, shape[1], shape[0])
    tprob = rng.dirichlet(np.ones(shape[1]), shape[0]).astype(dtype)
    saved = [a.copy() for a in (pred, target, prob, t01, logits, labels, tprob)]
    cases = [("mse", pred, target), ("bce", prob, t01), ("cross_entropy", logits, labels),
             ("cross_entropy", logits, tprob)]
    for name, a, b in cases:
        for need_grad in (True, False):
            loss, grad = getattr(C, name)(ro(a), ro(b), reduction, need_grad=need_grad)
            loss_r, grad_r = getattr(R, name)(a, b, reduction, need_grad=need_grad)
            same_loss(loss, loss_r, dtype)
            close(grad, grad_r, dtype)
    for a, a0 in zip((pred, target, prob, t01, logits, labels, tprob), saved):
        np.testing.assert_array_equal(a, a0)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(data=st.data())
@HYP
def test_losses_hypothesis(dtype, data):
    shape = (data.draw(st.integers(1, 12), label="n"), data.draw(st.integers(1, 12), label="c"))
    reduction = data.draw(st.sampled_from(("mean", "sum")), label="reduction")
    a = data.draw(values(dtype, shape, -10, 10), label="a")
    b = data.draw(values(dtype, shape, -10, 10), label="b")
    p = data.draw(values(dtype, shape, 0, 1), label="p")
    t = data.draw(values(dtype, shape, 0, 1), label="t")
    labels = np.asarray(data.draw(st.lists(st.integers(0, shape[1] - 1), min_size=shape[0],
                                           max_size=shape[0]), label="labels"), np.int64)
    for name, x, y in [("mse", a, b), ("bce", p, t), ("cross_entropy", a, labels),
                       ("cross_entropy", a, t)]:
        loss, grad = getattr(C, name)(x, y, reduction)
        loss_r, grad_r = getattr(R, name)(x, y, reduction)
        same_loss(loss, loss_r, dtype)
        close(grad, grad_r, dtype)


def test_losses_bad_arguments():
    a = np.ones((3, 4))
    with pytest.raises(ValueError, match=re.escape("(3, 5)") + ".*" + re.escape("(3, 4)")):
        C.mse(a, np.ones((3, 5)))
    with pytest.raises(TypeError, match="float32"):
        C.bce(a, np.ones((3, 4), np.float32))
    with pytest.raises(ValueError, match="unknown reduction"):
        C.mse(a, a, "max")
    with pytest.raises(ValueError, match=re.escape("(4,)") + ".*" + re.escape("(3, 4)")):
        C.cross_entropy(a, np.zeros(4, np.int64))
    with pytest.raises(TypeError, match="int32"):
        C.cross_entropy(a, np.zeros(3, np.int32))
    with pytest.raises(ValueError, match=re.escape("[0, 4)")):
        C.cross_entropy(a, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=re.escape("[0, 4)")):
        C.cross_entropy(a, np.array([0, -1, 1]))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_extreme_values_finite_without_warnings(dtype):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [-1e4, -1e4, -1e4]], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")       # any RuntimeWarning fails the test
        for kind in ("sigmoid", "silu", "softmax", "tanh"):
            y = C.activation_forward(x, kind)
            assert np.isfinite(y).all(), kind
            assert np.isfinite(C.activation_backward(np.ones_like(x), x, y, kind)).all(), kind
        loss, grad = C.cross_entropy(x, np.array([0, 1, 2]))
        assert np.isfinite(loss) and np.isfinite(grad).all()
        loss, grad = C.cross_entropy(x, np.full_like(x, 1 / 3))
        assert np.isfinite(loss) and np.isfinite(grad).all()
        Z, Y = C.dense_forward(x, np.eye(3, dtype=dtype), None, "softmax")
        assert np.isfinite(Y).all()
        loss, grad = C.bce(np.array([0.0, 1.0, 0.5], dtype), np.array([1.0, 0.0, 0.5], dtype))
        assert np.isfinite(loss) and np.isfinite(grad).all()
    s = C.activation_forward(x, "sigmoid")
    assert s[0, 0] == 1 and s[0, 1] == 0


# --------------------------------------------------------------- optimizers
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(1,), (7, 13), (300, 257)])
@pytest.mark.parametrize("momentum,nesterov,wd", [(0.0, False, 0.0), (0.0, False, 0.01),
                                                  (0.9, False, 0.0), (0.9, True, 0.001)])
def test_sgd_matches_reference(dtype, shape, momentum, nesterov, wd, rng):
    p, g = randn(rng, shape, dtype), randn(rng, shape, dtype)
    v = randn(rng, shape, dtype) if momentum else None
    pc, vc = p.copy(), (v.copy() if momentum else None)
    g0 = g.copy()
    for _ in range(3):
        C.sgd_update(pc, ro(g), vc, 0.1, momentum, wd, nesterov)
        R.sgd_update(p, g, v, 0.1, momentum, wd, nesterov)
    close(pc, p, dtype)
    if momentum:
        close(vc, v, dtype)
    np.testing.assert_array_equal(g, g0)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(1,), (7, 13), (300, 257)])
@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_adam_matches_reference(dtype, shape, wd, rng):
    p, g = randn(rng, shape, dtype), randn(rng, shape, dtype)
    m, v = np.zeros(shape, dtype), np.zeros(shape, dtype)
    pc, mc, vc = p.copy(), m.copy(), v.copy()
    g0 = g.copy()
    for step in (1, 2, 3, 10):
        C.adam_update(pc, ro(g), mc, vc, step, 1e-3, 0.9, 0.999, 1e-8, wd)
        R.adam_update(p, g, m, v, step, 1e-3, 0.9, 0.999, 1e-8, wd)
        close(pc, p, dtype)
        close(mc, m, dtype)
        close(vc, v, dtype)
    np.testing.assert_array_equal(g, g0)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(data=st.data())
@HYP
def test_optimizers_hypothesis(dtype, data):
    n = data.draw(st.integers(1, 30), label="n")
    p = data.draw(values(dtype, (n,), -10, 10), label="p")
    g = data.draw(values(dtype, (n,), -10, 10), label="g")
    lr = data.draw(st.floats(1e-4, 1.0), label="lr")
    mu = data.draw(st.sampled_from([0.0, 0.5, 0.9]), label="momentum")
    nesterov = mu != 0 and data.draw(st.booleans(), label="nesterov")
    wd = data.draw(st.sampled_from([0.0, 1e-3]), label="wd")
    pc, p2 = p.copy(), p.copy()
    vc = np.zeros_like(p) if mu else None
    v2 = np.zeros_like(p) if mu else None
    C.sgd_update(pc, g, vc, lr, mu, wd, nesterov)
    R.sgd_update(p2, g, v2, lr, mu, wd, nesterov)
    close(pc, p2, dtype)
    b1 = data.draw(st.floats(0.0, 0.99), label="beta1")
    b2 = data.draw(st.floats(0.0, 0.9999), label="beta2")
    step = data.draw(st.integers(1, 50), label="step")
    pc, p2 = p.copy(), p.copy()
    mc, m2 = g * dtype(0.5), g * dtype(0.5)
    vc, v2 = g * g, g * g
    C.adam_update(pc, g, mc, vc, step, lr, b1, b2, 1e-8, wd)
    R.adam_update(p2, g, m2, v2, step, lr, b1, b2, 1e-8, wd)
    close(pc, p2, dtype)
    close(mc, m2, dtype)
    close(vc, v2, dtype)


def test_optimizer_bad_arguments():
    p = np.ones((3, 4))
    with pytest.raises(ValueError, match=re.escape("(4, 3)") + ".*" + re.escape("(3, 4)")):
        C.sgd_update(p, np.ones((4, 3)), None, 0.1)
    with pytest.raises(ValueError, match=re.escape("need state array 0 of shape (3, 4), got None")):
        C.sgd_update(p, p.copy(), None, 0.1, 0.9)
    with pytest.raises(ValueError, match="read-only"):
        C.sgd_update(ro(p), p.copy(), None, 0.1)
    with pytest.raises(TypeError, match="float32"):
        C.adam_update(p, p.copy(), np.zeros((3, 4), np.float32), np.zeros((3, 4)), 1, 0.1)
    with pytest.raises(ValueError, match="step"):
        C.adam_update(p, p.copy(), np.zeros((3, 4)), np.zeros((3, 4)), 0, 0.1)


# ------------------------------------------------------ randomness, dropout
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", SHAPES + [(0, 3)])
@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_dropout_bit_identical(dtype, shape, p, rng):
    X = randn(rng, shape, dtype)
    X0 = X.copy()
    Y, mask = C.dropout_forward(ro(X), p, 42, 7)
    Yr, mask_r = R.dropout_forward(X, p, 42, 7)
    np.testing.assert_array_equal(mask, mask_r)
    np.testing.assert_array_equal(Y, Yr)
    dY = randn(rng, shape, dtype)
    np.testing.assert_array_equal(C.dropout_backward(ro(dY), ro(mask)),
                                  R.dropout_backward(dY, mask_r))
    np.testing.assert_array_equal(X, X0)


def test_rng_bits_bit_identical():
    idx = np.arange(1000, dtype=np.uint64).reshape(10, 100)
    np.testing.assert_array_equal(C.rng_bits(3, 5, idx), R.rng_bits(3, 5, idx))
    one = C.rng_bits(0, 0, 5)
    assert np.shape(one) == () and one.dtype == np.uint64
    assert one == R.rng_bits(0, 0, 5)
    np.testing.assert_array_equal(C.rng_bits(1, 2, idx[:, ::7]), R.rng_bits(1, 2, idx[:, ::7]))


def test_dropout_bad_arguments():
    with pytest.raises(ValueError, match=re.escape("(2, 3)") + ".*" + re.escape("(3, 2)")):
        C.dropout_backward(np.ones((3, 2)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="p must"):
        C.dropout_forward(np.ones(3), 1.5, 0, 0)


# ------------------------------------------------------ ISA and thread knobs
def test_isa_and_thread_controls(threads):
    assert co.cpu_isa() in ISAS
    assert co.get_isa() in co.supported_isas()
    assert co.supported_isas()[-1] == co.cpu_isa()
    with pytest.raises(ValueError, match="generic.*avx2.*avx512"):
        co.set_isa("sse2")
    unsupported = [name for name in ISAS if name not in co.supported_isas()]
    for name in unsupported:
        with pytest.raises(RuntimeError, match=name):
            co.set_isa(name)
    for bad in (0, -1, 1.5, "2"):
        with pytest.raises(ValueError):
            co.set_num_threads(bad)
    co.set_num_threads(1)
    assert co.get_num_threads() == 1


@pytest.mark.parametrize("value,expect", [("generic", "generic"), ("sse9", "ValueError")])
def test_fastnn_isa_environment_variable(value, expect, tmp_path):
    env = dict(os.environ, FASTNN_ISA=value)
    code = "import fastnn.backends.cython_ops as co; print(co.get_isa())"
    # run from an empty directory so the installed package is imported
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          cwd=tmp_path)
    if expect == "ValueError":
        assert proc.returncode != 0 and "ValueError" in proc.stderr and "sse9" in proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == expect


def test_gemm_fast_path_and_its_fallbacks(rng):
    """The wrapper's fast path (plain matrices) and every case it hands to the
    checked path give the reference's result or its errors."""
    A, B = randn(rng, (7, 13), np.float64), randn(rng, (13, 5), np.float64)
    close(C.gemm(A, B), A @ B, np.float64)
    close(C.gemm(A.T.copy(), B, trans_a=True), A @ B, np.float64)
    close(C.gemm(A, B.T.copy(), trans_b=True), A @ B, np.float64)
    swapped = B.astype(B.dtype.newbyteorder(">"))          # same values, other byte order
    with pytest.raises(TypeError):
        C.gemm(A, swapped)
    with pytest.raises(ValueError, match=re.escape("B has shape (5, 13)")):
        C.gemm(A, B.T.copy())                                # shapes disagree
    with pytest.raises(TypeError):
        C.gemm(A, B.astype(np.float32))                      # dtypes disagree
    assert C.gemm(np.empty((0, 3)), np.empty((3, 4))).shape == (0, 4)
    np.testing.assert_array_equal(C.gemm(np.empty((2, 0)), np.empty((0, 3))), np.zeros((2, 3)))
