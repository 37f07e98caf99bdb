"""Property-based fuzzing of every compiled kernel against the NumPy reference.

Why it is built this way: tests/test_kernels.py compares the kernels on a grid
of shapes with finite values; this file lets hypothesis pick the shapes (every
dimension may be 0 or 1) and the values, including +-inf, NaN, subnormals and
the dtype's extremes, for every method CythonOps overrides (the list is checked
against tests/test_parity.py's rule: everything but the allow-listed
``zeros_like``).  Each case runs on both backends and must either raise the
same exception with the same message, or give results that agree: NaN at the
same places, infinities equal, finite values within conftest's tolerance.

Values are drawn from "moderate finite or special" (|x| <= 100, or +-inf, NaN,
+-0, subnormal) rather than from all floats: a sum of huge finite terms
overflows or not depending on the order of the additions, which legitimately
differs between the GEMMs, whereas infinities and NaN propagate the same way
in any order.  The dtype's extremes are covered by tests/test_numerics.py.
Examples are derandomized so CI sees the same cases on every run.
"""

import inspect
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fastnn.backends.numpy_ops import ACTIVATIONS, NEEDS_PREACTIVATION, NumpyOps

co = pytest.importorskip("fastnn.backends.cython_ops", reason="the compiled backend is not built")


from tests_conftest import tol  # noqa: E402 (conftest.py registers the name)
C = co.CythonOps()
R = NumpyOps()
DTYPES = (np.float64, np.float32)
FUZZ = settings(max_examples=60, deadline=None, derandomize=True)
#: kernels fuzzed below; the test at the end checks this is every override
FUZZED = {"gemm", "activation_forward", "activation_backward", "dense_forward",
          "dense_backward", "mse", "bce", "cross_entropy", "optimizer_update",
          "rng_bits", "dropout_forward", "dropout_backward", "l1", "huber", "smooth_l1",
          "bce_with_logits", "clip_grad_norm", "clip_grad_value", "l2_penalty", "metric",
          "batchnorm_forward", "batchnorm_eval", "batchnorm_backward", "layernorm_forward",
          "layernorm_backward", "sk_squared_error", "sk_logistic", "sk_softmax"}

dims = st.integers(0, 6)          # 0 and 1 come up often; 6 spans a few SIMD lanes


def specials(dtype, lo=-100.0, hi=100.0, nan=True, inf=True):
    """Moderate finite values in [lo, hi], or special ones (see the module note)."""
    bits = np.dtype(dtype).itemsize * 8
    sub = float(np.nextafter(np.dtype(dtype).type(0), np.dtype(dtype).type(1)))
    extra = [0.0, -0.0, sub, -sub]
    extra += [v for v, ok in ((np.inf, inf), (-np.inf, inf), (np.nan, nan)) if ok]
    return st.one_of(st.floats(lo, hi, width=bits),
                     st.sampled_from([v for v in extra if lo <= v <= hi or not np.isfinite(v)]))


def arrays(dtype, shape, **kw):
    return hnp.arrays(dtype, shape, elements=specials(dtype, **kw))


def outcome(name, *args, **kwargs):
    """Run the kernel on both backends (inputs copied); ("ok", ref, got) or
    ("raised", ...) after checking that both raised the same exception and message."""
    results = []
    for ops in (R, C):
        copies = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args]
        with warnings.catch_warnings():
            warnings.simplefilter("error")        # no RuntimeWarning, whatever the values
            try:
                results.append(("ok", getattr(ops, name)(*copies, **kwargs), copies))
            except Exception as exc:              # compared below, never swallowed
                results.append(("raised", type(exc), str(exc)))
    (kind_r, *ref), (kind_c, *got) = results
    assert kind_r == kind_c, f"{name}: reference {results[0][:2]}, compiled {results[1][:2]}"
    if kind_r == "raised":
        assert got == ref, f"{name}: the backends raise differently: {ref} vs {got}"
        return None
    return ref, got


def agree(got, want, dtype, what, scale=None):
    """NaN at the same places, infinities equal, finite values within tol(dtype)
    (atol widened per element by ``scale`` for sums of many products)."""
    if want is None:
        assert got is None, what
        return
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (what, got.shape, want.shape)
    g, w = got.astype(np.float64), want.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(g), np.isnan(w), err_msg=f"{what}: NaN positions")
    inf = np.isinf(w) | np.isinf(g)
    np.testing.assert_array_equal(g[inf], w[inf], err_msg=f"{what}: infinities")
    t = tol(dtype)
    fin = np.isfinite(w) & np.isfinite(g)
    atol = t["atol"] if scale is None else t["atol"] * np.maximum(np.broadcast_to(scale, w.shape),
                                                                   1.0)[fin]
    err = np.abs(g[fin] - w[fin])
    bad = err > atol + t["rtol"] * np.abs(w[fin])
    assert not bad.any(), f"{what}: {bad.sum()} values differ, worst {err.max()}"


def magnitude(A, B):
    """|A| @ |B| over the finite entries: the scale of a GEMM's rounding error."""
    a = np.where(np.isfinite(A), np.abs(A), 0).astype(np.float64)
    b = np.where(np.isfinite(B), np.abs(B), 0).astype(np.float64)
    return a @ b


dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)


# --------------------------------------------------------------------- GEMM
@dtypes
@given(data=st.data())
@FUZZ
def test_fuzz_gemm(dtype, data):
    m, k, n = (data.draw(dims, label=x) for x in "mkn")
    ta, tb = data.draw(st.booleans(), label="trans_a"), data.draw(st.booleans(), label="trans_b")
    A = data.draw(arrays(dtype, (k, m) if ta else (m, k)), label="A")
    B = data.draw(arrays(dtype, (n, k) if tb else (k, n)), label="B")
    res = outcome("gemm", A, B, trans_a=ta, trans_b=tb)
    if res:
        (want, _), (got, _) = res
        agree(got, want, dtype, "gemm", magnitude(A.T if ta else A, B.T if tb else B))


# -------------------------------------------------------------- activations
@dtypes
@given(data=st.data())
@FUZZ
def test_fuzz_activations(dtype, data):
    kind = data.draw(st.sampled_from(ACTIVATIONS), label="kind")
    shape = (data.draw(dims, label="rows"), data.draw(dims, label="cols"))
    alpha = data.draw(st.floats(0.0, 1.0), label="alpha")
    X = data.draw(arrays(dtype, shape), label="X")
    res = outcome("activation_forward", X, kind, alpha)
    if res is None:
        return
    (Y, _), (Yc, _) = res
    agree(Yc, Y, dtype, f"{kind} forward")
    if kind != "softmax":
        # elementwise: NaN in gives NaN out, a finite x never NaN (an infinite one
        # may, as in PyTorch: silu(-inf) = -inf * 0, leaky_relu(-inf) with alpha 0)
        assert np.isnan(Y[np.isnan(X)]).all(), (kind, X, Y)
        assert not np.isnan(Y[np.isfinite(X)]).any(), (kind, X, Y)
    dY = data.draw(arrays(dtype, shape), label="dY")
    Z = X if kind in NEEDS_PREACTIVATION else None
    res = outcome("activation_backward", dY, Z, Y, kind, alpha)
    if res:
        (want, _), (got, _) = res
        agree(got, want, dtype, f"{kind} backward")


# ------------------------------------------------------------------- dense
@dtypes
@given(data=st.data())
@FUZZ
def test_fuzz_dense(dtype, data):
    n, n_in, n_out = (data.draw(dims, label=x) for x in ("n", "n_in", "n_out"))
    kind = data.draw(st.sampled_from(ACTIVATIONS), label="kind")
    X = data.draw(arrays(dtype, (n, n_in)), label="X")
    W = data.draw(arrays(dtype, (n_in, n_out)), label="W")
    b = data.draw(st.none() | arrays(dtype, (n_out,)), label="b")
    res = outcome("dense_forward", X, W, b, kind, 0.1)
    if res is None:
        return
    ((Z, Y), _), ((Zc, Yc), _) = res
    scale = magnitude(X, W) + (0 if b is None else np.where(np.isfinite(b), np.abs(b), 0))
    agree(Zc, Z, dtype, f"dense {kind} Z", scale)
    # a softmax row sums exps of Z, whose rounding differs with the GEMM's order
    agree(Yc, Y, dtype, f"dense {kind} Y", scale)
    dY = data.draw(arrays(dtype, (n, n_out)), label="dY")
    need_dX, need_db = data.draw(st.booleans(), label="need_dX"), b is not None
    res = outcome("dense_backward", X, W, Z, Y, dY, kind, 0.1, need_dX=need_dX,
                  need_db=need_db)
    if res:
        (want, _), (got, _) = res
        dZ = R.activation_backward(dY, Z, Y, kind, 0.1) if kind != "identity" else dY
        scales = (magnitude(dZ, W.T), magnitude(X.T, dZ),
                  np.where(np.isfinite(dZ), np.abs(dZ), 0).sum(axis=0))
        for g, w, s, what in zip(got, want, scales, ("dX", "dW", "db")):
            agree(g, w, dtype, f"dense {kind} {what}", s)


# ------------------------------------------------------------------- losses
def _loss_pair(res, dtype, what):
    if res is None:
        return
    ((loss, grad), _), ((loss_c, grad_c), _) = res
    assert isinstance(loss_c, float)
    # float64 sums of terms computed in the dtype: the dtype's tolerance (as test_kernels)
    agree(np.float64(loss_c), np.float64(loss), dtype, what)
    agree(grad_c, grad, dtype, f"{what} grad")


@dtypes
@given(data=st.data())
@FUZZ
def test_fuzz_losses(dtype, data):
    shape = (data.draw(dims, label="n"), data.draw(dims, label="c"))
    reduction = data.draw(st.sampled_from(("mean", "sum")), label="reduction")
    need_grad = data.draw(st.booleans(), label="need_grad")
    a = data.draw(arrays(dtype, shape), label="a")
    b = data.draw(arrays(dtype, shape), label="b")
    p = data.draw(arrays(dtype, shape, lo=0.0, hi=1.0, inf=False), label="p")
    t = data.draw(arrays(dtype, shape, lo=0.0, hi=1.0, nan=False, inf=False), label="t")
    labels = np.asarray(data.draw(st.lists(st.integers(0, max(shape[1] - 1, 0)),
                                           min_size=shape[0], max_size=shape[0]),
                                  label="labels"), np.int64)
    for name, x, y in [("mse", a, b), ("bce", p, t), ("cross_entropy", a, labels),
                       ("cross_entropy", a, t)]:
        _loss_pair(outcome(name, x, y, reduction, need_grad=need_grad), dtype, name)


def _weights(data, n, label):
    """None, or n finite weights >= 0 (zeros, subnormals and all-zero included)."""
    if not data.draw(st.booleans(), label=f"{label}?"):
        return None
    sub = float(np.nextafter(0.0, 1.0))
    values = st.one_of(st.floats(0.0, 10.0), st.sampled_from([0.0, sub, 1.0]))
    return np.asarray(data.draw(st.lists(values, min_size=n, max_size=n), label=label),
                      dtype=np.float64)


@dtypes
@given(data=st.data())
@FUZZ
def test_fuzz_weighted_and_new_losses(dtype, data):
    shape = (data.draw(dims, label="n"), data.draw(dims, label="c"))
    n, c = shape
    reduction = data.draw(st.sampled_from(("mean", "sum")), label="reduction")
    need_grad = data.draw(st.booleans(), label="need_grad")
    a = data.draw(arrays(dtype, shape), label="a")
    b = data.draw(arrays(dtype, shape), label="b")
    p = data.draw(arrays(dtype, shape, lo=0.0, hi=1.0, inf=False), label="p")
    t = data.draw(arrays(dtype, shape, lo=0.0, hi=1.0, nan=False, inf=False), label="t")
    labels = np.asarray(data.draw(st.lists(st.integers(0, max(c - 1, 0)), min_size=n,
                                           max_size=n), label="labels"), np.int64)
    sw = _weights(data, n, "sample_weight")
    vec = _weights(data, c, "vector")
    delta = data.draw(st.sampled_from([1.0, 0.25, 3.0]), label="delta")
    beta = data.draw(st.sampled_from([1.0, 0.0, 0.5]), label="beta")
    eps = data.draw(st.sampled_from([0.0, 0.1, 1.0]), label="label_smoothing")
    cases = [("mse", a, b, {}), ("bce", p, t, {}), ("l1", a, b, {}),
             ("huber", a, b, {"delta": delta}), ("smooth_l1", a, b, {"beta": beta}),
             ("bce_with_logits", a, t, {"pos_weight": vec}),
             ("cross_entropy", a, labels, {"weight": vec, "label_smoothing": eps}),
             ("cross_entropy", a, t, {"weight": vec, "label_smoothing": eps})]
    for name, x, y, kwargs in cases:
        res = outcome(name, x, y, reduction, need_grad=need_grad, sample_weight=sw, **kwargs)
        _loss_pair(res, dtype, name)


@dtypes
@given(data=st.data())
@FUZZ
def test_fuzz_sklearn_losses(dtype, data):
    # scikit-learn's losses (the sk_ rows), logits up to +-100 and beyond (inf)
    shape = (data.draw(dims, label="n"), data.draw(dims, label="c"))
    n, c = shape
    reduction = data.draw(st.sampled_from(("mean", "sum")), label="reduction")
    need_grad = data.draw(st.booleans(), label="need_grad")
    a = data.draw(arrays(dtype, shape), label="a")
    b = data.draw(arrays(dtype, shape), label="b")
    t = data.draw(arrays(dtype, shape, lo=0.0, hi=1.0, nan=False, inf=False), label="t")
    labels = np.asarray(data.draw(st.lists(st.integers(0, max(c - 1, 0)), min_size=n,
                                           max_size=n), label="labels"), np.int64)
    sw = _weights(data, n, "sample_weight")
    for name, x, y in [("sk_squared_error", a, b), ("sk_logistic", a, t),
                       ("sk_softmax", a, labels)]:
        res = outcome(name, x, y, reduction, need_grad=need_grad, sample_weight=sw)
        _loss_pair(res, dtype, name)


# --------------------------------------------------------------- optimizers
@dtypes
@given(data=st.data())
@FUZZ
def test_fuzz_optimizers(dtype, data):
    shape = data.draw(st.sampled_from([(0,), (1,), (7,), (0, 3), (3, 0), (2, 5)]), label="shape")
    p = data.draw(arrays(dtype, shape), label="param")
    g = data.draw(arrays(dtype, shape), label="grad")
    lr = data.draw(st.floats(1e-4, 10.0), label="lr")
    wd = data.draw(st.sampled_from([0.0, 1e-2]), label="weight_decay")
    mu = data.draw(st.sampled_from([0.0, 0.9]), label="momentum")
    nesterov = mu != 0 and data.draw(st.booleans(), label="nesterov")
    v = data.draw(arrays(dtype, shape), label="velocity") if mu else None
    res = outcome("sgd_update", p, g, v, lr, mu, wd, nesterov)
    if res:
        (_, ref), (_, got) = res
        agree(got[0], ref[0], dtype, "sgd param")
        if mu:
            agree(got[2], ref[2], dtype, "sgd velocity")
    m = data.draw(arrays(dtype, shape), label="m")
    v2 = data.draw(arrays(dtype, shape, lo=0.0), label="v")     # a second moment is >= 0
    step = data.draw(st.integers(1, 1000), label="step")
    b1, b2 = data.draw(st.floats(0.0, 0.99), label="b1"), data.draw(st.floats(0.0, 0.999),
                                                                      label="b2")
    res = outcome("adam_update", p, g, m, v2, step, lr, b1, b2, 1e-8, wd)
    if res:
        (_, ref), (_, got) = res
        for i, what in ((0, "param"), (2, "m"), (3, "v")):
            agree(got[i], ref[i], dtype, f"adam {what}")


def both(call):
    """``call(ops)`` on each backend, as ``outcome`` does, for calls whose arguments
    hold arrays inside lists (``call`` makes its own copies)."""
    results = []
    for ops in (R, C):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                results.append(("ok", call(ops)))
            except Exception as exc:              # compared below, never swallowed
                results.append(("raised", type(exc), str(exc)))
    assert results[0][0] == results[1][0], results
    if results[0][0] == "raised":
        assert results[0] == results[1]
        return None
    return results[0][1], results[1][1]


@dtypes
@given(data=st.data())
@FUZZ
def test_fuzz_optimizer_rows(dtype, data):
    """Adam (amsgrad), AdamW, RMSprop (momentum, centered) and Adagrad through the
    generic kernel, every state array compared."""
    name = data.draw(st.sampled_from(["adam", "adamw", "rmsprop", "adagrad"]), label="name")
    shape = data.draw(st.sampled_from([(0,), (1,), (7,), (2, 5)]), label="shape")
    p = data.draw(arrays(dtype, shape), label="param")
    g = data.draw(arrays(dtype, shape), label="grad")
    step = data.draw(st.integers(1, 1000), label="step")
    lr = data.draw(st.floats(1e-4, 10.0), label="lr")
    wd = data.draw(st.sampled_from([0.0, 1e-2]), label="weight_decay")
    flag = data.draw(st.booleans(), label="amsgrad/centered")
    if name == "rmsprop":
        h = {"lr": lr, "alpha": data.draw(st.floats(0.0, 1.0), label="alpha"), "eps": 1e-8,
             "weight_decay": wd, "momentum": data.draw(st.sampled_from([0.0, 0.9])),
             "centered": float(flag)}
        used = [True, h["momentum"] != 0, flag]
        squares = (0,)
    elif name == "adagrad":
        h = {"lr": lr, "lr_decay": data.draw(st.sampled_from([0.0, 0.1])), "weight_decay": wd,
             "eps": 1e-10}
        used, squares = [True], (0,)
    else:
        h = {"lr": lr, "beta1": data.draw(st.floats(0.0, 0.99)),
             "beta2": data.draw(st.floats(0.0, 0.999)), "eps": 1e-8, "weight_decay": wd,
             "amsgrad": float(flag)}
        used, squares = [True, True, flag], (1, 2)
    states = [data.draw(arrays(dtype, shape, lo=0.0 if j in squares else -100.0),
                        label=f"state {j}") if on else None for j, on in enumerate(used)]

    def call(ops):
        q, s = p.copy(), [None if x is None else x.copy() for x in states]
        ops.optimizer_update(name, q, g.copy(), s, h, step)
        return q, s
    res = both(call)
    if res:
        (want_p, want_s), (got_p, got_s) = res
        agree(got_p, want_p, dtype, f"{name} param")
        for j, (x, y) in enumerate(zip(got_s, want_s)):
            agree(x, y, dtype, f"{name} state {j}")


@dtypes
@given(data=st.data())
@FUZZ
def test_fuzz_clipping(dtype, data):
    shapes = data.draw(st.lists(st.sampled_from([(0,), (1,), (7,), (2, 5), (3, 0)]),
                                max_size=4), label="shapes")
    grads = [data.draw(arrays(dtype, s), label=f"grad {i}") for i, s in enumerate(shapes)]
    limit = data.draw(st.sampled_from([0.0, 1e-3, 1.0, 50.0]) | st.floats(0.0, 1e3),
                      label="limit")
    for kernel in ("clip_grad_norm", "clip_grad_value"):
        def call(ops):
            copies = [x.copy() for x in grads]
            return getattr(ops, kernel)(copies, limit), copies
        res = both(call)
        if res:
            (want_total, want), (got_total, got) = res
            if kernel == "clip_grad_norm":
                agree(got_total, want_total, np.float64, "the norm")
            for i, (x, y) in enumerate(zip(got, want)):
                agree(x, y, dtype, f"{kernel} grad {i}")


@dtypes
@given(data=st.data())
@FUZZ
def test_fuzz_l2_penalty(dtype, data):
    """scikit-learn's L2 penalty: dW += (alpha / total) W in place, and the penalty;
    a total of 0 is refused alike."""
    shapes = data.draw(st.lists(st.sampled_from([(0,), (1,), (7,), (2, 5), (3, 0), (9, 2)]),
                                max_size=4), label="shapes")
    weights = [data.draw(arrays(dtype, s), label=f"W {i}") for i, s in enumerate(shapes)]
    grads = [data.draw(arrays(dtype, s), label=f"dW {i}") for i, s in enumerate(shapes)]
    alpha = data.draw(st.sampled_from([0.0, 1e-4, 1.0, 50.0]) | st.floats(0.0, 1e3),
                      label="alpha")
    total = data.draw(st.sampled_from([0.0, 1.0, 17.5]) | st.floats(1e-3, 1e3), label="total")

    def call(ops):
        copies = [x.copy() for x in grads]
        return ops.l2_penalty([w.copy() for w in weights], copies, alpha, total), copies
    res = both(call)
    if res:
        (want_p, want), (got_p, got) = res
        agree(got_p, want_p, np.float64, "the penalty")
        for i, (x, y) in enumerate(zip(got, want)):
            np.testing.assert_array_equal(x, y, err_msg=f"l2_penalty dW {i}")   # same bits


# ------------------------------------------------------ randomness, dropout
@given(seed=st.integers(0, 2**64 - 1), step=st.integers(0, 2**40),
       shape=st.lists(st.integers(0, 5), max_size=3))
@FUZZ
def test_fuzz_rng_bits(seed, step, shape):
    idx = np.arange(int(np.prod(shape)), dtype=np.uint64).reshape(shape) * np.uint64(977)
    res = outcome("rng_bits", seed, step, idx)
    if res:
        (want, _), (got, _) = res
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype == np.uint64


@dtypes
@given(data=st.data())
@FUZZ
def test_fuzz_dropout(dtype, data):
    shape = tuple(data.draw(st.lists(dims, min_size=1, max_size=3), label="shape"))
    X = data.draw(arrays(dtype, shape), label="X")
    p = data.draw(st.sampled_from([0.0, 1.0]) | st.floats(0.0, 1.0), label="p")
    seed, step = data.draw(st.integers(0, 2**63), label="seed"), data.draw(st.integers(0, 99))
    res = outcome("dropout_forward", X, p, seed, step)
    if res is None:
        return
    ((Y, mask), _), ((Yc, mask_c), _) = res
    np.testing.assert_array_equal(mask_c, mask)            # bit-identical by design
    np.testing.assert_array_equal(Yc, Y)                   # NaN positions included
    dY = data.draw(arrays(dtype, shape), label="dY")
    res = outcome("dropout_backward", dY, mask)
    if res:
        (want, _), (got, _) = res
        np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------ normalization
@dtypes
@given(data=st.data())
@FUZZ
def test_fuzz_norms(dtype, data):
    n, d = data.draw(dims, label="n"), data.draw(dims, label="d")
    X = data.draw(arrays(dtype, (n, d)), label="X")
    dY = data.draw(arrays(dtype, (n, d)), label="dY")
    affine = data.draw(st.booleans(), label="affine")
    w = data.draw(arrays(dtype, (d,)), label="weight") if affine else None
    b = data.draw(arrays(dtype, (d,)), label="bias") if affine else None
    eps = data.draw(st.sampled_from([1e-5, 0.0, 0.5]), label="eps")
    res = outcome("batchnorm_forward", X, w, b, eps)
    if res:
        (want, _), (got, _) = res
        for i, (g, r) in enumerate(zip(got, want)):
            agree(g, r, dtype if i < 2 else np.float64, f"batchnorm_forward output {i}")
        res = outcome("batchnorm_backward", dY, want[1], want[3], w, eps)
        if res:
            (bw, _), (bg, _) = res
            for i, (g, r) in enumerate(zip(bg, bw)):
                agree(g, r, dtype, f"batchnorm_backward output {i}")
    rm = data.draw(arrays(dtype, (d,)), label="running_mean")
    rv = data.draw(arrays(dtype, (d,), lo=0.0), label="running_var")
    res = outcome("batchnorm_eval", X, rm, rv, w, b, eps)
    if res:
        (want, _), (got, _) = res
        agree(got, want, dtype, "batchnorm_eval")
    res = outcome("layernorm_forward", X, w, b, eps)
    if res:
        (want, _), (got, _) = res
        for i, (g, r) in enumerate(zip(got, want)):
            agree(g, r, dtype if i < 2 else np.float64, f"layernorm_forward output {i}")
        res = outcome("layernorm_backward", dY, want[1], want[2], w)
        if res:
            (bw, _), (bg, _) = res
            for i, (g, r) in enumerate(zip(bg, bw)):
                agree(g, r, dtype, f"layernorm_backward output {i}")


# ------------------------------------------------------------------ metrics
@dtypes
@given(data=st.data())
@FUZZ
def test_fuzz_metrics(dtype, data):
    shape = (data.draw(dims, label="n"), data.draw(dims, label="c"))
    pred = data.draw(arrays(dtype, shape), label="pred")
    target = data.draw(arrays(dtype, shape), label="target")
    labels = np.asarray(data.draw(st.lists(st.integers(-1, 7), min_size=shape[0],
                                           max_size=shape[0]), label="labels"), np.int64)
    for name, t in [("mae", target), ("mse", target), ("binary_accuracy", target),
                    ("argmax_accuracy", target), ("label_accuracy", labels)]:
        result = outcome("metric", name, pred, t)
        if result is not None:
            (ref, _), (got, _) = result
            agree(got, ref, np.float64, name)
            if "accuracy" in name:
                assert got == ref, name


def test_every_compiled_kernel_is_fuzzed():
    """FUZZED covers every kernel CythonOps overrides (tests/test_parity.py lists them)."""
    overridden = {name for name, member in vars(co.CythonOps).items()
                  if not name.startswith("_") and callable(member)
                  and hasattr(NumpyOps, name) and inspect.isroutine(getattr(NumpyOps, name))}
    assert overridden == FUZZED
