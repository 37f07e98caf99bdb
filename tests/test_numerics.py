"""Numerical robustness: extreme values give finite, correct results without warnings,
and a diverging ``fit`` stops with the last finite weights in place.

Why it is built this way: the issue asks that logits and activations of
+-1e4, +-1e30 and the dtype's largest values give finite losses and gradients
on both backends, with no RuntimeWarning even under ``np.errstate(all="raise")``
-- so every call here runs inside ``strict()``, which turns any NumPy warning
or floating-point error into a test failure.  Each result is checked against
its mathematical limit (sigmoid(1e30) is exactly 1, the cross-entropy of a
logit gap of 2e30 is 2e30, ...), not only for finiteness, and the two backends
against each other.  Divergence is checked against a second run stopped just
before the batch that diverges: weights and optimizer state must be identical.
"""

import contextlib
import re
import warnings

import numpy as np
import pytest

import fastnn
from fastnn.backends import available_backends
from fastnn.backends.numpy_ops import ACTIVATIONS, NEEDS_PREACTIVATION


from tests_conftest import tol  # noqa: E402 (conftest.py registers the name)
BACKENDS = [b for b in ("numpy", "cython") if b in available_backends()]
DTYPES = (np.float64, np.float32)
ALPHA = 0.01


@contextlib.contextmanager
def strict():
    """Any NumPy RuntimeWarning or floating-point error inside fails the test."""
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        yield


def extremes(dtype):
    """One row of extreme values representable in ``dtype``: zeros, the smallest
    subnormal, the smallest normal, +-1e4, +-1e30, +-3e38 and the dtype's max."""
    fi = np.finfo(dtype)
    sub = np.nextafter(dtype(0), dtype(1))
    row = [0.0, -0.0, sub, -sub, fi.tiny, -fi.tiny, 1.0, -1.0, 1e4, -1e4, 1e30, -1e30,
           3e38, -3e38, fi.max, -fi.max]
    return np.array([row], dtype)


def softmax_rows(dtype):
    """Rows whose softmax is known exactly: ties at 1e30, all -1e30, subnormals,
    the dtype's max beside its negative (z - max overflows to -inf)."""
    fi = np.finfo(dtype)
    sub = float(np.nextafter(dtype(0), dtype(1)))
    return np.array([[1e30, 1e30, -1e30], [-1e30, -1e30, -1e30], [sub, 0.0, -sub],
                     [fi.max, -fi.max, 0.0], [3e38, -3e38, 3e38], [1e4, -1e4, 0.0]], dtype)


SOFTMAX_EXPECTED = np.array([[0.5, 0.5, 0.0], [1 / 3] * 3, [1 / 3] * 3, [1.0, 0.0, 0.0],
                             [0.5, 0.0, 0.5], [1.0, 0.0, 0.0]])


def both(fn):
    """``fn(ops)`` on every available backend, each under ``strict()``; the results."""
    out = []
    for name in BACKENDS:
        with strict():
            out.append(fn(fastnn.get_backend(name)))
    return out


def assert_same(results, dtype, what):
    """The backends' arrays agree: NaN at the same places, values within tol(dtype)."""
    ref = np.asarray(results[0], dtype=np.float64)
    for other in results[1:]:
        got = np.asarray(other, dtype=np.float64)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg=what)
        np.testing.assert_allclose(got, ref, **tol(dtype), err_msg=what)


# -------------------------------------------------------------- activations
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kind", [k for k in ACTIVATIONS if k != "softmax"])
def test_elementwise_activation_limits(kind, dtype):
    X = extremes(dtype)
    x = X[0].astype(np.float64)
    big, tiny = np.abs(x) >= 1e4, np.abs(x) < 1e-30
    forwards = both(lambda ops: ops.activation_forward(X, kind, ALPHA))
    Z = X if kind in NEEDS_PREACTIVATION else None
    big_dY = float(np.dtype(dtype).type(-1e30))
    for dY_value in (1.0, big_dY):
        dY = np.full_like(X, dY_value)
        backwards = both(lambda ops: ops.activation_backward(dY, Z, forwards[0], kind, ALPHA))
        for dZ in backwards:
            assert np.isfinite(dZ).all(), (kind, dY_value, dZ)
        assert_same(backwards, dtype, f"{kind} backward")
    assert_same(forwards, dtype, f"{kind} forward")
    Y = forwards[0][0].astype(np.float64)
    d = backwards[0][0].astype(np.float64) / big_dY  # the derivative f'(x)
    fmax = float(np.finfo(dtype).max)
    if kind == "selu":   # scale > 1: selu(max) = 1.05 * max overflows, in PyTorch too
        np.testing.assert_array_equal(np.isinf(Y), x > fmax / 1.0507009873554805)
        Y = np.where(np.isinf(Y), fmax, Y)
    assert np.isfinite(Y).all()
    a = float(np.dtype(dtype).type(ALPHA))
    if kind == "sigmoid":
        np.testing.assert_array_equal(Y[big], (x[big] > 0).astype(float))
        np.testing.assert_allclose(Y[tiny], 0.5)
        np.testing.assert_array_equal(d[big], 0.0)
        np.testing.assert_allclose(d[tiny], 0.25)
    elif kind == "tanh":
        np.testing.assert_array_equal(Y[big], np.sign(x[big]))
        np.testing.assert_array_equal(Y[tiny], x[tiny])
        np.testing.assert_array_equal(d[big], 0.0)
        np.testing.assert_array_equal(d[tiny], 1.0)
    elif kind == "silu":
        np.testing.assert_array_equal(Y[big], np.where(x[big] > 0, x[big], 0.0))
        np.testing.assert_array_equal(d[big], (x[big] > 0).astype(float))
        np.testing.assert_allclose(d[tiny], 0.5)
    elif kind in ("gelu", "gelu_tanh", "mish"):     # x * (a CDF-like factor -> 0 or 1)
        np.testing.assert_array_equal(Y[big], np.where(x[big] > 0, x[big], 0.0))
        np.testing.assert_array_equal(d[big], (x[big] > 0).astype(float))
        np.testing.assert_allclose(d[tiny], 0.5 if kind != "mish" else np.tanh(np.log(2)))
    elif kind in ("elu", "selu"):
        alpha, scale = (a, 1.0) if kind == "elu" else (1.6732632423543772, 1.0507009873554805)
        np.testing.assert_allclose(Y[big & (x < 0)], -alpha * scale, rtol=1e-6)
        np.testing.assert_allclose(d[big], np.where(x[big] > 0, scale, 0.0), rtol=1e-6)
        np.testing.assert_allclose(d[tiny], np.where(x[tiny] > 0, scale, alpha * scale),
                                   rtol=1e-6)
    elif kind == "softplus":    # threshold ALPHA, beta 1: x above it, log(2) near 0
        np.testing.assert_array_equal(Y[big], np.where(x[big] > 0, x[big], 0.0))
        np.testing.assert_allclose(Y[tiny], np.log(2), rtol=1e-6)
        np.testing.assert_array_equal(d[big], (x[big] > 0).astype(float))
        np.testing.assert_allclose(d[tiny], 0.5, rtol=1e-6)
    elif kind in ("relu", "leaky_relu", "identity"):
        slope = {"relu": 0.0, "leaky_relu": a, "identity": 1.0}[kind]
        np.testing.assert_array_equal(Y, np.where(x > 0, x, (slope * X[0]).astype(np.float64)))
        np.testing.assert_allclose(d, np.where(x > 0, 1.0, slope), rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_softmax_of_extreme_logits_is_a_distribution(dtype):
    X = softmax_rows(dtype)
    forwards = both(lambda ops: ops.activation_forward(X, "softmax"))
    assert_same(forwards, dtype, "softmax forward")
    for Y in forwards:
        np.testing.assert_allclose(Y, SOFTMAX_EXPECTED, rtol=1e-6, atol=0)
        np.testing.assert_allclose(Y.sum(axis=1), 1.0, rtol=1e-6)
    for dY in (np.ones_like(X), np.full_like(X, 1e30)):   # a constant dY has dZ = 0
        backwards = both(lambda ops: ops.activation_backward(dY, None, forwards[0], "softmax"))
        for dZ in backwards:
            np.testing.assert_array_equal(dZ, 0.0)
    # the fused path (dense + softmax) gives the same distribution
    eye = np.eye(3, dtype=dtype)
    for _, Y in both(lambda ops: ops.dense_forward(X, eye, None, "softmax")):
        np.testing.assert_allclose(Y, SOFTMAX_EXPECTED, rtol=1e-6, atol=0)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kind", ACTIVATIONS)
def test_fused_dense_activation_at_extreme_preactivations(kind, dtype):
    """dense_forward / dense_backward with Z = +-1e30: the activation fused into the
    GEMM's store and the standalone kernel give the same finite values."""
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, -0.5]], dtype)
    W = np.array([[1e30, -1e30, 1e4], [-1e30, 1e30, -1e4]], dtype)
    b = np.array([0.0, 1.0, -1.0], dtype)
    dY = np.array([[1.0, -1.0, 0.5]] * 4, dtype)
    fused = both(lambda ops: ops.dense_forward(X, W, b, kind, ALPHA))
    standalone = both(lambda ops: ops.activation_forward(X @ W + b, kind, ALPHA))
    for (Z, Y), Y_alone in zip(fused, standalone):
        assert np.isfinite(Y).all(), (kind, Y)
        np.testing.assert_array_equal(Y, Y_alone)
    assert_same([Y for _, Y in fused], dtype, f"dense {kind} forward")
    Z, Y = fused[0]
    grads = both(lambda ops: ops.dense_backward(X, W, Z, Y, dY, kind, ALPHA))
    for g in grads:
        assert all(np.isfinite(a).all() for a in g), (kind, g)
    for i, what in enumerate(("dX", "dW", "db")):
        assert_same([g[i] for g in grads], dtype, f"dense {kind} {what}")


# -------------------------------------------------------------------- losses
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("reduction", ("mean", "sum"))
def test_bce_of_saturated_predictions_is_large_but_finite(dtype, reduction):
    """sigmoid(+-1e30) is exactly 1 or 0: the wrong label costs the clamp, 100 per
    element (PyTorch), and the gradient (p - t) / max(p(1-p), 1e-12) is +-1e12."""
    sub = np.nextafter(dtype(0), dtype(1))
    p = np.array([[1.0, 0.0, sub, 1.0, 0.0, 0.5]], dtype)
    t = np.array([[0.0, 1.0, 1.0, 1.0, 0.0, 0.5]], dtype)
    scale = 1 / p.size if reduction == "mean" else 1.0
    results = both(lambda ops: ops.bce(p, t, reduction))
    for loss, grad in results:
        # 3 saturated wrong predictions at the clamp, 2 right ones at 0, one at log 2
        assert loss == pytest.approx((300 + np.log(2)) * scale, rel=1e-12)
        np.testing.assert_allclose(grad[0, :3] / np.float64(scale), [1e12, -1e12, -1e12],
                                   rtol=1e-6)
        np.testing.assert_array_equal(grad[0, 3:5], 0.0)
    assert_same([g for _, g in results], dtype, "bce grad")
    # the same through a Sigmoid at +-1e30: the chain rule gives exactly 0
    Y = p.copy()
    for dZ in both(lambda ops: ops.activation_backward(results[0][1], None, Y, "sigmoid")):
        np.testing.assert_array_equal(dZ[0, [0, 1, 3, 4]], 0.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("reduction", ("mean", "sum"))
@pytest.mark.parametrize("target", ("labels", "probs"))
def test_cross_entropy_of_extreme_logits_is_finite_and_exact(dtype, reduction, target):
    """-log_softmax of a label a gap g below the max is g (exp of the others is 0):
    the loss is finite even for a gap of 6e38 in float32 (it was inf: z - max
    overflowed in float32 before being widened)."""
    logits = np.array([[1e30, -1e30, 0.0], [3e38, -3e38, 0.0], [-1e4, 1e4, -1e4],
                       [-1e30, -1e30, -1e30]], dtype)
    labels = np.array([1, 1, 0, 2])
    gaps = np.array([2e30, float(dtype(3e38)) * 2, 2e4, np.log(3)])
    tgt = labels if target == "labels" else np.eye(3, dtype=dtype)[labels]
    scale = 1 / 4 if reduction == "mean" else 1.0
    results = both(lambda ops: ops.cross_entropy(logits, tgt, reduction))
    softmax = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [1 / 3] * 3])
    for loss, grad in results:
        assert loss == pytest.approx(gaps.sum() * scale, rel=1e-12)
        np.testing.assert_allclose(grad, (softmax - np.eye(3)[labels]) * scale, rtol=1e-6,
                                   atol=1e-7)
    assert_same([g for _, g in results], dtype, "cross-entropy grad")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("reduction", ("mean", "sum"))
def test_mse_of_extreme_predictions(dtype, reduction):
    """Differences of 2e30 give a finite loss of 4e60 (float64 sums) and gradient;
    a float32 difference beyond its range (6e38) is genuinely inf -- silently,
    as an IEEE result, the same on both backends (fit reports it as divergence)."""
    pred = np.array([[1e30, -1e30, 1e4, 0.0]], dtype)
    target = np.array([[-1e30, 1e30, -1e4, 0.0]], dtype)
    scale = 1 / 4 if reduction == "mean" else 1.0
    results = both(lambda ops: ops.mse(pred, target, reduction))
    for loss, grad in results:
        assert loss == pytest.approx((8e60 + 4e8) * scale, rel=1e-6)
        np.testing.assert_allclose(grad, 2 * (pred.astype(float) - target) * scale, rtol=1e-6)
    over = np.array([[3e38]], dtype)
    results = both(lambda ops: ops.mse(over, -over, reduction))
    for loss, grad in results:
        assert (loss == np.inf) == (np.dtype(dtype) == np.float32)
        assert np.isfinite(grad).all() == (np.dtype(dtype) == np.float64)


# ------------------------------------------------------------ whole network
def _net(backend, dtype, head, scale):
    """Dense(2, 4) > Tanh > Dense(4, k) [> head], the last weights scaled by ``scale``."""
    width = 1 if head == "sigmoid" else 3
    layers = [fastnn.Dense(2, 4), fastnn.Tanh(), fastnn.Dense(4, width)]
    if head == "sigmoid":
        layers.append(fastnn.Sigmoid())
    elif head == "softmax":
        layers.append(fastnn.Softmax())
    elif head == "identity+sigmoid":       # Identity is fused, Sigmoid runs standalone
        layers = layers[:-1] + [fastnn.Dense(4, 1), fastnn.Identity(), fastnn.Sigmoid()]
    net = fastnn.Network(layers, backend=backend, dtype=dtype, seed=3)
    last_dense = [layer for layer in net.layers if isinstance(layer, fastnn.Dense)][-1]
    last_dense.W *= scale
    return net


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("head,loss", [("sigmoid", "bce"), ("identity+sigmoid", "bce"),
                                       ("softmax", "bce"), ("none", "cross_entropy")])
def test_network_with_preactivations_of_1e30(head, loss, dtype):
    """Last pre-activations of ~1e30: predict, evaluate and a fit step are finite
    (BCE at its clamp, cross-entropy of order 1e30), the same on both backends."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((12, 2))
    y = rng.integers(0, 2 if head in ("sigmoid", "identity+sigmoid") else 3, 12)
    if head == "softmax":
        y = np.eye(3)[y]                   # one-hot targets for BCE after a Softmax
    elif loss == "bce":
        y = y.astype(float)
    runs = []
    for backend in BACKENDS:
        net = _net(backend, dtype, head, 1e30)
        with strict():
            out = net.predict(X)
            score = net.evaluate(X, y, loss=loss)["loss"]
            history = net.fit(X, y, loss=loss, optimizer=fastnn.SGD(lr=0.1), epochs=1,
                              shuffle=False)
        z = net._forward(net._check_data(X, y, fastnn.losses.get_loss(loss))[0], training=False)
        assert np.isfinite(out).all() and np.isfinite(z).all()
        assert np.isfinite(score) and np.isfinite(history.loss[0])
        assert score > (1e29 if loss == "cross_entropy" else 5.0)   # saturated, not hidden
        assert all(np.isfinite(p).all() for _, p, _ in net.parameters())
        runs.append((score, [p.copy() for _, p, _ in net.parameters()]))
    for score, params in runs[1:]:
        assert score == pytest.approx(runs[0][0], rel=1e-5)
        for p, q in zip(params, runs[0][1]):
            assert_same([q, p], dtype, "weights after a step")


@pytest.mark.parametrize("backend", BACKENDS)
def test_network_whose_loss_overflows_stops_with_the_divergence_error(backend):
    """float32 logits beyond its range (1e30 * 1e30): the loss is genuinely not
    finite, so evaluate reports it and fit raises before changing any weight."""
    net = fastnn.Network([fastnn.Dense(2, 4), fastnn.ReLU(), fastnn.Dense(4, 3)],
                         backend=backend, dtype="float32", seed=0)
    net.layers[0].W[...] = 1e30
    net.layers[2].W[...] = 1e30
    X, y = np.ones((5, 2)), np.array([0, 1, 2, 0, 1])
    before = [p.copy() for _, p, _ in net.parameters()]
    with strict():
        assert not np.isfinite(net.evaluate(X, y, loss="cross_entropy")["loss"])
        with pytest.raises(FloatingPointError, match="diverged in epoch 1:"):
            net.fit(X, y, loss="cross_entropy", optimizer=fastnn.SGD(lr=0.1), epochs=3)
    for (_, p, _), q in zip(net.parameters(), before):
        np.testing.assert_array_equal(p, q)


# --------------------------------------------------------------- divergence
#: Each diverges within a few epochs.  Adam's step is about lr whatever the
#: gradient, so it needs a learning rate near the dtype's range to overflow
#: (1e30 in float32 overflows the gradients; in float64, 1e200 the loss).
OPTIMIZERS = {
    "sgd": lambda dtype: fastnn.SGD(lr=1e30),
    "sgd-momentum": lambda dtype: fastnn.SGD(lr=1e30, momentum=0.9),
    "adam": lambda dtype: fastnn.Adam(lr=1e30 if dtype == np.float32 else 1e200),
}


def _state(optimizer):
    """Copies of the optimizer's arrays and step counters, by parameter key."""
    out = {}
    for key, st in optimizer.state.items():
        if isinstance(st, dict):
            out[key] = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in st.items()}
        else:
            out[key] = st.copy()
    return out


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_divergence_keeps_the_weights_before_the_diverging_batch(backend, optimizer, dtype):
    """lr = 1e30 on a small problem: fit raises naming the epoch, and the weights
    and optimizer state are exactly those of a run stopped one epoch earlier
    (one batch per epoch), and finite."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((16, 3)), rng.standard_normal((16, 1))

    def run(epochs):
        net = fastnn.Network([fastnn.Dense(3, 4), fastnn.Tanh(), fastnn.Dense(4, 1)],
                             backend=backend, dtype=dtype, seed=0)
        opt = OPTIMIZERS[optimizer](dtype)
        with strict():
            net.fit(X, y, loss="mse", optimizer=opt, epochs=epochs, shuffle=False)
        return net, opt

    with pytest.raises(FloatingPointError, match=r"diverged in epoch (\d+):") as info:
        run(200)
    epoch = int(re.search(r"epoch (\d+)", str(info.value)).group(1))
    # the same run, stopped before the epoch that diverged, and one that diverges
    good, good_opt = run(epoch - 1)
    bad = fastnn.Network([fastnn.Dense(3, 4), fastnn.Tanh(), fastnn.Dense(4, 1)],
                         backend=backend, dtype=dtype, seed=0)
    bad_opt = OPTIMIZERS[optimizer](dtype)
    with strict(), pytest.raises(FloatingPointError, match=f"diverged in epoch {epoch}:"):
        bad.fit(X, y, loss="mse", optimizer=bad_opt, epochs=epoch, shuffle=False)
    _assert_same_training_state(bad, bad_opt, good, good_opt)


def _assert_same_training_state(net, optimizer, want_net, want_optimizer):
    """Parameters (finite) and optimizer state bit-identical to the wanted ones."""
    for (key, p, _), (_, q, _) in zip(net.parameters(), want_net.parameters()):
        assert np.isfinite(p).all(), key
        np.testing.assert_array_equal(p, q, err_msg=key)
    want, got = _state(want_optimizer), _state(optimizer)
    assert want.keys() == got.keys()
    for key in want:
        if isinstance(want[key], dict):
            for k in want[key]:
                np.testing.assert_array_equal(got[key][k], want[key][k], err_msg=f"{key} {k}")
        else:
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_overflow_with_a_finite_loss_stops_before_the_update(backend):
    """float32 outputs of ~1e29 give a finite loss (~1e58, summed in float64) but a
    hidden-layer gradient of ~1e58, beyond float32: fit raises in epoch 1 and no
    weight changes (training on the inf gradient would make them NaN)."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 1))
    net = fastnn.Network([fastnn.Dense(3, 4), fastnn.Tanh(), fastnn.Dense(4, 1)],
                         backend=backend, dtype="float32", seed=0)
    net.layers[2].W *= 1e29
    with strict():
        assert np.isfinite(net.evaluate(X, y, loss="mse")["loss"])
    before = [p.copy() for _, p, _ in net.parameters()]
    with strict(), pytest.raises(FloatingPointError, match="diverged in epoch 1:.*gradient"):
        net.fit(X, y, loss="mse", optimizer=fastnn.SGD(lr=1e-3), epochs=2)
    for (_, p, _), q in zip(net.parameters(), before):
        np.testing.assert_array_equal(p, q)


#: Updates that overflow by themselves, with a finite loss and finite gradients:
#: each case's optimizer and the 1-based epoch (one batch each) whose update
#: makes a weight or an optimizer state value infinite.
UPDATE_OVERFLOWS = {
    # gradients of ~10 (targets of ~100) times lr = the dtype's max: the weights
    # overflow at the first update
    "sgd": (lambda fi: fastnn.SGD(lr=float(fi.max)), 1),
    # lr = 0 holds the weights (all 1) and so the gradient, ~ weight_decay =
    # max / 2: the velocity is 0.5, 0.95, then 1.355 times max -- at the third update
    "sgd-momentum": (lambda fi: fastnn.SGD(lr=0.0, momentum=0.9,
                                           weight_decay=float(fi.max) / 2), 3),
    # the same, but Nesterov's step g + 0.9 v (1.355 max) overflows at the second
    # update, and lr * inf = 0 * inf would make the weights NaN
    "sgd-nesterov": (lambda fi: fastnn.SGD(lr=0.0, momentum=0.9, nesterov=True,
                                           weight_decay=float(fi.max) / 2), 2),
    # a linear model on inputs of 4 max^(1/4): gradients of ~max^(1/2) (float32:
    # ~1e20 > 1.8e19), whose square overflows Adam's v at the first update (the
    # step itself would be 0: the weights would silently stop moving)
    "adam": (lambda fi: fastnn.Adam(), 1),
}


def _overflowing_update(case, backend, dtype):
    """A fresh (network, optimizer, X, y) for the ``UPDATE_OVERFLOWS`` case."""
    fi = np.finfo(dtype)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((16, 3)), rng.standard_normal((16, 1))
    layers = [fastnn.Dense(3, 4), fastnn.Tanh(), fastnn.Dense(4, 1)]
    if case == "sgd":
        y = y * 100.0
    elif case == "adam":
        layers = [fastnn.Dense(3, 1)]
        X = X * (4.0 * float(fi.max) ** 0.25)
    net = fastnn.Network(layers, backend=backend, dtype=dtype, seed=0)
    if case in ("sgd-momentum", "sgd-nesterov"):
        for _, param, _ in net.parameters():
            param[...] = 1.0
    return net, UPDATE_OVERFLOWS[case][0](fi), X, y


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", sorted(UPDATE_OVERFLOWS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_an_update_that_overflows_is_not_applied(backend, case, dtype):
    """A finite gradient whose update overflows a weight, the momentum or Adam's v:
    fit raises naming the epoch of that update, and the weights and optimizer
    state are bit-identical to a run stopped just before it (before the fit for
    the first update) -- not inf, NaN or silently frozen."""
    epoch = UPDATE_OVERFLOWS[case][1]
    good, good_opt, X, y = _overflowing_update(case, backend, dtype)
    with strict():
        good.fit(X, y, loss="mse", optimizer=good_opt, epochs=epoch - 1, shuffle=False)
    bad, bad_opt, X, y = _overflowing_update(case, backend, dtype)
    with strict():
        loss = bad.evaluate(X, y, loss="mse")["loss"]
        assert np.isfinite(loss)
        with pytest.raises(FloatingPointError, match=f"diverged in epoch {epoch}:"):
            bad.fit(X, y, loss="mse", optimizer=bad_opt, epochs=epoch + 2, shuffle=False)
    _assert_same_training_state(bad, bad_opt, good, good_opt)
