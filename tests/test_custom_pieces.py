"""User-defined pieces are honoured: the same model on both backends, never a substitute.

Why it is built this way: a user's Layer, Activation, Loss or Optimizer
subclass is code the compiled trainer does not know.  It must run as written
on both backends: each piece below trains the same weights on "numpy" and
"cython" (to the float64 tolerance of a whole fit), and different weights than
the built-in class it derives from (proof that the user's code ran); on the
compiled backend the fit says once, naming the piece and the method, that it
runs the Python training loop.  (Before, the compiled trainer fused a user
activation as identity, ignored a Loss's compute and an SGD's step, and
refused a user Layer.)
"""

import warnings

import numpy as np
import pytest

import fastnn
from fastnn import SGD, Activation, Dense, Layer, MSELoss, Network, Tanh
from fastnn.backends import available_backends

pytestmark = pytest.mark.skipif("cython" not in available_backends(),
                                reason="the compiled backend is not built")

#: relative to the largest weight, after a whole fit: the float64 bound of
#: tests/test_training.py's FIT_RTOL (summation orders differ between GEMMs)
FIT_RTOL = 1e-10


class ScaledMSE(MSELoss):
    """Three times the mean squared error."""

    def compute(self, ops, pred, target, *, need_grad=True):
        value, grad = super().compute(ops, pred, target, need_grad=need_grad)
        return 3.0 * value, (None if grad is None else 3.0 * grad)


class ClippedSGD(SGD):
    """SGD on gradients clipped to [-0.05, 0.05]."""

    def step(self, network):
        for _, _, grad in network.parameters():
            np.clip(grad, -0.05, 0.05, out=grad)
        super().step(network)


class Scale(Layer):
    """Y = X * s, one trainable factor per feature."""

    param_names = ("s",)

    def build(self, n_in, ops, dtype, rng, next_layer=None):
        super().build(n_in, ops, dtype, rng, next_layer)
        self.s = np.full(n_in, 1.5, dtype=dtype)
        self.ds = None
        return n_in

    def forward(self, X, *, training=False, keep=True):
        if keep:
            self._X = X
        return X * self.s

    def backward(self, dY):
        self.ds = (dY * self._X).sum(axis=0)
        return dY * self.s

    def params(self):
        return {"s": self.s}

    def grads(self):
        return {"s": self.ds}


class Softsign(Activation):
    """f(x) = x / (1 + |x|)."""

    def forward(self, X, *, training=False, keep=True):
        if keep:
            self._X = X
        return X / (1 + np.abs(X))

    def backward(self, dY):
        return dY / (1 + np.abs(self._X)) ** 2


class PlainGD(fastnn.Optimizer):
    """Written from scratch: p -= lr * grad / 2, no state, only ``step``."""

    def step(self, network):
        for _, param, grad in network.parameters():
            param -= (self.lr / 2) * grad


def _data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((40, 4)), rng.standard_normal((40, 2))


def _train(backend, hidden=Tanh, extra=None, loss=MSELoss, optimizer=SGD):
    layers = [Dense(4, 6), hidden()] + ([extra()] if extra else []) + [Dense(6, 2)]
    net = Network(layers, seed=1, backend=backend)
    X, y = _data()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net.fit(X, y, loss=loss(), optimizer=optimizer(lr=0.1), epochs=5, batch_size=8,
                seed=0)
    messages = [str(w.message) for w in caught if "Python training loop" in str(w.message)]
    return [p.copy() for _, p, _ in net.parameters()], messages, net


def _assert_same(a, b):
    scale = max(np.abs(p).max() for p in a)
    for p, q in zip(a, b):
        np.testing.assert_allclose(q, p, rtol=0, atol=FIT_RTOL * scale)


def _assert_differ(a, b):
    assert any(p.shape != q.shape or not np.allclose(p, q) for p, q in zip(a, b))


PIECES = {
    # name: (fit arguments, the built-in it derives from, the warning's words)
    "loss": (dict(loss=ScaledMSE), dict(loss=MSELoss), "ScaledMSE.compute is user code"),
    "optimizer": (dict(optimizer=ClippedSGD), dict(optimizer=SGD),
                  "ClippedSGD.step is user code"),
    "layer": (dict(extra=Scale), dict(), "Scale.forward, Scale.backward, Scale.params, "
              "Scale.grads are user code"),
    "activation": (dict(hidden=Softsign), dict(hidden=Activation),
                   "Softsign.forward, Softsign.backward are user code"),
    "optimizer-from-scratch": (dict(optimizer=PlainGD), dict(optimizer=SGD),
                               "PlainGD.step is user code"),
    "activation-after-activation": (dict(extra=Softsign), dict(extra=Activation),
                                    "Softsign.forward, Softsign.backward are user code"),
}


@pytest.mark.parametrize("piece", sorted(PIECES))
def test_user_piece_trains_the_same_on_both_backends(piece):
    custom, builtin, words = PIECES[piece]
    ref, ref_msgs, _ = _train("numpy", **custom)
    got, got_msgs, _ = _train("cython", **custom)
    _assert_same(ref, got)
    assert ref_msgs == []                               # the reference runs it anyway
    assert len(got_msgs) == 1, got_msgs                 # once per fit
    assert words in got_msgs[0]
    assert "fit runs the Python training loop on the 'cython' backend" in got_msgs[0]
    plain, plain_msgs, _ = _train("cython", **builtin)
    assert plain_msgs == []                             # the built-ins run natively
    _assert_differ(got, plain)                          # the user's code ran


def test_user_activation_after_dense_is_not_fused():
    net = Network([Dense(4, 6), Softsign(), Dense(6, 2), Tanh()], seed=0)
    assert [type(layer).__name__ for layer, _ in net._plan] == ["Dense", "Softsign", "Dense"]
    assert net._plan[2][1] is net.layers[3]             # the built-in one still fuses


@pytest.mark.parametrize("backend", ["numpy", "cython"])
def test_predict_and_evaluate_run_the_user_code(backend):
    _, _, net = _train(backend, hidden=Softsign)
    X, y = _data()
    hidden = net.layers[0].W.T @ X.T + net.layers[0].b[:, None]
    expected = (net.layers[2].W.T @ (hidden / (1 + np.abs(hidden))) + net.layers[2].b[:, None]).T
    np.testing.assert_allclose(net.predict(X), expected, rtol=1e-12, atol=1e-12)
    plain = net.evaluate(X, y, loss=MSELoss())["loss"]
    assert net.evaluate(X, y, loss=ScaledMSE())["loss"] == pytest.approx(3 * plain, rel=1e-12)


def test_a_subclass_that_overrides_nothing_runs_natively():
    class MySGD(SGD):
        def __repr__(self):
            return "MySGD()"

    class MyTanh(Tanh):
        pass

    ref, msgs, _ = _train("cython", hidden=MyTanh, optimizer=MySGD)
    plain, _, _ = _train("cython")
    assert msgs == []
    for p, q in zip(ref, plain):
        np.testing.assert_array_equal(p, q)
