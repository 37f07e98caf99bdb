"""Analytic gradients against central finite differences (float64, eps = 1e-6).

Per activation x loss (d loss / d pre-activation), per layer (Dense.backward's
dW, db, dX with every fused activation; each activation's own backward), and
for whole multi-layer networks (every parameter's gradient and dX).  Random
points keep away from the kinks of ReLU / LeakyReLU (|z| >= 0.1); the kinks
themselves are checked exactly.  Runs on both backends via the fixture.
"""

import numpy as np
import pytest

from fastnn import (ELU, GELU, SELU, BCELoss, CrossEntropyLoss, Dense, Identity, LeakyReLU,
                    Mish, MSELoss, Network, ReLU, Sigmoid, SiLU, Softmax, Softplus, Tanh)

from tests_conftest import fd_grad  # noqa: E402 (conftest.py registers the name)

EPS = 1e-6
FD_TOL = {"rtol": 1e-6, "atol": 1e-8}

ACTIVATIONS = {
    "identity": Identity,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
    "leaky_relu": lambda: LeakyReLU(0.1),
    "silu": SiLU,
    "softmax": Softmax,
    "gelu": GELU,
    "gelu_tanh": lambda: GELU(approximate="tanh"),
    "elu": lambda: ELU(0.7),
    "selu": SELU,
    # threshold 3 at beta 2: f is the identity for z > 1.5, so both branches are checked
    "softplus": lambda: Softplus(beta=2.0, threshold=3.0),
    "mish": Mish,
}


def _away_from_kinks(rng, shape, low=0.1, high=2.0):
    """Values with |z| in [low, high], random signs: no ReLU kink within eps."""
    return rng.uniform(low, high, shape) * rng.choice([-1.0, 1.0], shape)


def _fd_grad(f, x):
    return fd_grad(f, x, EPS)


def _built(layer, n_in, ops):
    layer.build(n_in, ops, np.dtype(np.float64), np.random.default_rng(0))
    return layer


def _targets(loss_name, rng, n, c):
    """(loss object, target array as the kernel takes it) for n samples and c outputs."""
    if loss_name == "mse":
        return MSELoss(), rng.standard_normal((n, c))
    if loss_name == "bce":
        return BCELoss(), rng.uniform(0.0, 1.0, (n, c))
    if loss_name == "ce_labels":
        loss = CrossEntropyLoss()
        return loss, loss.prepare_target(rng.integers(0, c, n), n, c, np.float64)
    if loss_name == "ce_probs":
        loss = CrossEntropyLoss()
        return loss, loss.prepare_target(rng.dirichlet(np.ones(c), n), n, c, np.float64)
    raise AssertionError(loss_name)


LOSSES = ("mse", "bce", "ce_labels", "ce_probs")
# BCE takes probabilities: only the activations whose output lies in (0, 1) are valid
# before it (sigmoid, softmax); identity/tanh/relu/leaky_relu/silu can leave [0, 1].
VALID = [(a, l) for a in ACTIVATIONS for l in LOSSES
         if l != "bce" or a in ("sigmoid", "softmax")]


@pytest.mark.parametrize("kind,loss_name", VALID)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_activation_times_loss(ops, kind, loss_name, reduction, rng):
    n, c = 5, 3
    act = _built(ACTIVATIONS[kind](), c, ops)
    Z = _away_from_kinks(rng, (n, c))
    loss, T = _targets(loss_name, rng, n, c)
    loss.reduction = reduction

    def value():
        return loss.compute(ops, act.forward(Z.copy()), T, need_grad=False)[0]

    Y = act.forward(Z)
    val, dY = loss.compute(ops, Y, T)
    assert val == pytest.approx(value(), rel=1e-14)
    assert dY.shape == Y.shape
    dZ = act.backward(dY)
    np.testing.assert_allclose(dZ, _fd_grad(value, Z), **FD_TOL)


@pytest.mark.parametrize("kind", list(ACTIVATIONS))
def test_activation_backward(ops, kind, rng):
    # L = sum(G * f(Z)) with a random G, so dL/dY = G
    n, c = 4, 5
    act = _built(ACTIVATIONS[kind](), c, ops)
    Z = _away_from_kinks(rng, (n, c))
    G = rng.standard_normal((n, c))
    act.forward(Z)
    dZ = act.backward(G)
    np.testing.assert_allclose(dZ, _fd_grad(lambda: float(np.sum(G * act.forward(Z))), Z),
                               **FD_TOL)


@pytest.mark.parametrize("kind", list(ACTIVATIONS))
@pytest.mark.parametrize("bias", [True, False])
def test_dense_backward(ops, kind, bias, rng):
    # Dense(4, 3) with the activation fused (as Network does it); L = sum(G * Y)
    n, n_in, n_out = 6, 4, 3
    dense = _built(Dense(n_in, n_out, bias=bias), n_in, ops)
    act = ACTIVATIONS[kind]() if kind != "identity" else None
    X = rng.standard_normal((n, n_in))
    G = rng.standard_normal((n, n_out))
    # choose W, b so the pre-activation keeps away from 0 (the ReLU kink)
    dense.W = rng.standard_normal((n_in, n_out))
    if bias:
        dense.b = rng.standard_normal(n_out)
    Z = X @ dense.W + (dense.b if bias else 0)
    X[np.abs(Z).min(axis=1) < 0.05] += 0.3  # nudge rows whose pre-activation is near 0
    assert np.abs(X @ dense.W + (dense.b if bias else 0)).min() > 1e-3

    def value():
        return float(np.sum(G * dense.forward(X, activation=act)))

    dense.forward(X, activation=act)
    dX = dense.backward(G)
    assert dX.shape == X.shape and dense.dW.shape == (n_in, n_out)
    np.testing.assert_allclose(dense.dW, _fd_grad(value, dense.W), **FD_TOL)
    if bias:
        assert dense.db.shape == (n_out,)
        np.testing.assert_allclose(dense.db, _fd_grad(value, dense.b), **FD_TOL)
    else:
        assert dense.db is None
    np.testing.assert_allclose(dX, _fd_grad(value, X), **FD_TOL)


def _check_network(net, X, loss, T):
    def value():
        return loss.compute(net.ops, net.forward(X), T, need_grad=False)[0]

    out = net.forward(X)
    val, grad = loss.compute(net.ops, out, T)
    dX = net.backward(grad)
    analytic = {key: g.copy() for key, _, g in net.parameters()}
    assert len(analytic) >= 3
    for key, param, _ in net.parameters():
        np.testing.assert_allclose(analytic[key], _fd_grad(value, param), err_msg=key, **FD_TOL)
    np.testing.assert_allclose(dX, _fd_grad(value, X), err_msg="dX", **FD_TOL)


NETWORKS = {
    # every activation, fused after Dense; bias=False; an unfused activation (Tanh
    # followed by Sigmoid: the second one runs as its own layer)
    "mse": (lambda: [Dense(3, 5), Tanh(), Sigmoid(), Dense(5, 4, bias=False), LeakyReLU(0.2),
                     Dense(4, 4), SiLU(), Dense(4, 2)], "mse"),
    "bce": (lambda: [Dense(3, 4), Sigmoid(), Dense(4, 2), Sigmoid()], "bce"),
    "bce_softmax": (lambda: [Dense(3, 4), Tanh(), Dense(4, 3), Softmax()], "bce"),
    "ce_labels": (lambda: [Dense(3, 6), Tanh(), Dense(6, 4), Identity(), Dense(4, 3)],
                  "ce_labels"),
    "ce_probs": (lambda: [Dense(3, 6), Sigmoid(), Dense(6, 3)], "ce_probs"),
    # PyTorch's activations, fused, with their parameters, and one on its own (after Tanh)
    "torch_activations": (lambda: [Dense(3, 5), GELU(), Dense(5, 4), ELU(0.5), Dense(4, 4),
                                   Mish(), Dense(4, 4), SELU(), Dense(4, 4, bias=False),
                                   Softplus(2.0, 1.0), Dense(4, 3), Tanh(), GELU("tanh"),
                                   Dense(3, 2)], "mse"),
}


@pytest.mark.parametrize("name", list(NETWORKS))
def test_network_gradients(backend, name, rng):
    layers, loss_name = NETWORKS[name]
    net = Network(layers(), backend=backend, seed=5)
    X = rng.standard_normal((7, 3))
    loss, T = _targets(loss_name, rng, 7, net.n_outputs)
    _check_network(net, X, loss, T)


def test_network_gradients_relu(backend, rng):
    # ReLU hidden layer: pick the data so no hidden pre-activation is near the kink
    net = Network([Dense(3, 6), ReLU(), Dense(6, 2)], backend=backend, seed=1)
    X = rng.standard_normal((40, 3))
    Z = X @ net.layers[0].W + net.layers[0].b
    X = X[np.abs(Z).min(axis=1) > 0.05][:8]
    assert X.shape[0] == 8
    loss, T = _targets("mse", rng, 8, 2)
    _check_network(net, X, loss, T)
    assert (net.layers[0].W != 0).all()


# ------------------------------------------------------------------ kinks
def test_relu_derivative_at_zero_is_zero(ops):
    relu = _built(ReLU(), 3, ops)
    Z = np.array([[0.0, -0.0, 0.0]])
    Y = relu.forward(Z)
    np.testing.assert_array_equal(Y, 0.0)
    np.testing.assert_array_equal(relu.backward(np.array([[1.0, -2.0, 5.0]])), 0.0)
    # fused into Dense: W = 0, b = 0 gives Z = 0 exactly
    dense = _built(Dense(2, 3), 2, ops)
    dense.W = np.zeros((2, 3))
    dense.b = np.zeros(3)
    dense.forward(np.array([[1.0, 2.0], [3.0, -4.0]]), activation=ReLU())
    dX = dense.backward(np.ones((2, 3)))
    np.testing.assert_array_equal(dense.dW, 0.0)
    np.testing.assert_array_equal(dense.db, 0.0)
    np.testing.assert_array_equal(dX, 0.0)


def test_leaky_relu_derivative_at_zero_is_the_slope(ops):
    leaky = _built(LeakyReLU(0.25), 2, ops)
    Z = np.array([[0.0, 0.0]])
    leaky.forward(Z)
    np.testing.assert_array_equal(leaky.backward(np.array([[1.0, -4.0]])), [[0.25, -1.0]])
    dense = _built(Dense(2, 2), 2, ops)
    dense.W = np.zeros((2, 2))
    dense.b = np.zeros(2)
    dense.forward(np.array([[1.0, 2.0]]), activation=LeakyReLU(0.25))
    dense.backward(np.array([[1.0, -4.0]]))
    np.testing.assert_array_equal(dense.db, [0.25, -1.0])
    np.testing.assert_array_equal(dense.dW, [[0.25, -1.0], [0.5, -2.0]])


def test_sigmoid_does_not_overflow(ops):
    sig = _built(Sigmoid(), 4, ops)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        Y = sig.forward(np.array([[-1000.0, -40.0, 40.0, 1000.0]]))
    assert Y[0, 0] == 0.0 and Y[0, 3] == 1.0
    assert 0 < Y[0, 1] < 1e-17 and 1 - 1e-15 < Y[0, 2] <= 1.0
