"""scikit-learn's SGD and Adam as rows of the optimizer table (``sk_sgd``, ``sk_adam``).

Why it is built this way: ``fastnn.sklearn`` must give scikit-learn's fitted
model, so its optimizers are scikit-learn's own formulas (its velocity form of
SGD, its Adam with the bias-corrected step size and eps on the uncorrected
square root), not PyTorch's.  They are tested against scikit-learn's optimizer
objects themselves, fed the same gradients step by step, on both backends; and
the compiled trainer, which runs them in C, against the reference trainer.
"""

import warnings

import numpy as np
import pytest

from fastnn import Dense, Network, Tanh
from fastnn.optimizers import _SklearnAdam, _SklearnSGD

skopt = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")

RTOL = 1e-13


def _net(backend):
    return Network([Dense(5, 4), Tanh(), Dense(4, 3)], backend=backend, seed=3)


def _sklearn_params(net):
    """scikit-learn's params list (coefs_, then intercepts_): copies of the network's."""
    dense = [layer for layer in net.layers if isinstance(layer, Dense)]
    return [d.W.copy() for d in dense] + [d.b.copy() for d in dense]


def _set_grads(net, grads):
    dense = [layer for layer in net.layers if isinstance(layer, Dense)]
    n = len(dense)
    for i, d in enumerate(dense):
        d.dW, d.db = grads[i].copy(), grads[n + i].copy()


def _assert_same(net, params):
    dense = [layer for layer in net.layers if isinstance(layer, Dense)]
    n = len(dense)
    for i, d in enumerate(dense):
        np.testing.assert_allclose(d.W, params[i], rtol=RTOL, atol=1e-15)
        np.testing.assert_allclose(d.b, params[n + i], rtol=RTOL, atol=1e-15)


@pytest.mark.parametrize("schedule", ["constant", "invscaling", "adaptive"])
@pytest.mark.parametrize("momentum, nesterov", [(0.9, True), (0.9, False), (0.0, True),
                                                (0.5, False)])
def test_sk_sgd_is_scikit_learns_sgd(backend, rng, momentum, nesterov, schedule):
    """30 updates, the learning rate changed by scikit-learn's schedule every 5 (its
    epochs): the same parameters as scikit-learn's SGDOptimizer."""
    net = _net(backend)
    params = _sklearn_params(net)
    theirs = skopt.SGDOptimizer(params, learning_rate_init=0.05, lr_schedule=schedule,
                                momentum=momentum, nesterov=nesterov, power_t=0.5)
    ours = _SklearnSGD(lr=0.05, momentum=momentum, nesterov=nesterov)
    moved = False
    for step in range(1, 31):
        grads = [rng.standard_normal(p.shape) for p in params]
        _set_grads(net, grads)
        ours.step(net)
        theirs.update_params(params, grads)
        if step % 5 == 0:
            theirs.iteration_ends(step * 7)
            if schedule == "adaptive":
                theirs.trigger_stopping("", False)
            moved |= theirs.learning_rate != ours.lr
            ours.lr = theirs.learning_rate
    _assert_same(net, params)
    assert moved == (schedule != "constant")


@pytest.mark.parametrize("betas, eps", [((0.9, 0.999), 1e-8), ((0.5, 0.9), 1e-3),
                                        ((0.0, 0.0), 1e-8)])
def test_sk_adam_is_scikit_learns_adam(backend, rng, betas, eps):
    """40 updates: the same parameters as scikit-learn's AdamOptimizer (and not
    PyTorch's Adam, whose eps sits after the bias correction)."""
    net, torch_form = _net(backend), _net(backend)
    params = _sklearn_params(net)
    theirs = skopt.AdamOptimizer(params, learning_rate_init=0.01, beta_1=betas[0],
                                 beta_2=betas[1], epsilon=eps)
    ours = _SklearnAdam(lr=0.01, betas=betas, eps=eps)
    from fastnn import Adam
    other = Adam(lr=0.01, betas=betas, eps=eps)
    for _ in range(40):
        grads = [rng.standard_normal(p.shape) * 1e-3 for p in params]
        _set_grads(net, grads)
        _set_grads(torch_form, grads)
        ours.step(net)
        other.step(torch_form)
        theirs.update_params(params, grads)
    _assert_same(net, params)
    assert ours.state["0.W"]["step"] == theirs.t == 40
    if eps > 1e-6:     # eps's place matters when it is not negligible
        assert not np.allclose(torch_form.layers[0].W, params[0], rtol=1e-9)


@pytest.mark.parametrize("make", [lambda: _SklearnSGD(lr=0.05, momentum=0.9),
                                  lambda: _SklearnSGD(lr=0.05, momentum=0.5, nesterov=False),
                                  lambda: _SklearnAdam(lr=0.01)],
                         ids=["sgd-nesterov", "sgd", "adam"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_the_compiled_trainer_runs_them_like_the_reference(make, dtype):
    """Network.fit with the compiled backend runs the rows in its native loop (no
    warning of a Python fallback) and ends with the reference backend's weights."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((37, 5)).astype(dtype)
    y = rng.integers(0, 3, 37)
    nets = []
    for backend in ("numpy", "cython"):
        net = Network([Dense(5, 4), Tanh(), Dense(4, 3)], backend=backend, seed=3, dtype=dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            h = net.fit(X, y, loss="cross_entropy", optimizer=make(), epochs=6, batch_size=8,
                        shuffle=True)
        nets.append((net, h))
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    (ref, h_ref), (native, h_native) = nets
    for (key, p, _), (_, q, _) in zip(ref.parameters(), native.parameters()):
        np.testing.assert_allclose(q, p, rtol=rtol, atol=rtol, err_msg=key)
    np.testing.assert_allclose(h_native.loss, h_ref.loss, rtol=rtol)
    assert h_ref.loss[-1] < h_ref.loss[0]


# ----------------------------------------------- the pieces together, alpha = 0
def _sklearn_run(est_cls, X, y, **params):
    est = est_cls(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # ConvergenceWarning: max_iter is small
        est.fit(X, y)
    return est


@pytest.mark.parametrize("solver, schedule", [("adam", "constant"), ("sgd", "constant"),
                                              ("sgd", "invscaling")])
@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic"])
@pytest.mark.parametrize("n_classes", [2, 3], ids=["binary", "multiclass"])
def test_sklearn_draws_orders_and_optimizers_give_its_model(backend, solver, schedule,
                                                            activation, n_classes):
    """A fastnn Network with scikit-learn's initial draws, its composed batch orders and
    its optimizer rows, trained with Network.fit epoch by epoch, ends with the
    multiclass MLPClassifier's coefs_, intercepts_ and loss_curve_ (alpha=0: the L2
    penalty on the weights is not in the trainer yet).  Binary: scikit-learn's one
    logistic output is a Dense with one output under BCEWithLogitsLoss (the same
    gradient, sigmoid(z) - y, over the batch's rows)."""
    sksk = pytest.importorskip("fastnn.sklearn")
    from sklearn.neural_network import MLPClassifier
    from sklearn.utils import check_random_state

    from fastnn import Sigmoid
    from fastnn import ReLU as FReLU
    from fastnn import Tanh as FTanh
    rng = np.random.default_rng(11)
    X = rng.standard_normal((90, 6))
    y = rng.integers(0, n_classes, 90)
    n_out = 1 if n_classes == 2 else n_classes
    epochs, batch, lr = 12, 16, (1e-2 if solver == "adam" else 0.05)
    est = _sklearn_run(MLPClassifier, X, y, hidden_layer_sizes=(7,), activation=activation,
                       solver=solver, learning_rate=schedule, learning_rate_init=lr,
                       alpha=0.0, batch_size=batch, max_iter=epochs, tol=0.0,
                       n_iter_no_change=10**6, random_state=4)
    rs = check_random_state(4)
    init = sksk._sklearn_initial_weights(rs, [6, 7, n_out], activation)
    act = {"relu": FReLU, "tanh": FTanh, "logistic": Sigmoid}[activation]
    net = Network([Dense(6, 7), act(), Dense(7, n_out)], backend=backend, seed=0)
    for layer, (W, b) in zip([net.layers[0], net.layers[2]], init):
        layer.W, layer.b = W, b
    net._shuffle_rng = sksk._SklearnOrder(rs, 90)
    opt = (_SklearnAdam(lr=lr) if solver == "adam"
           else _SklearnSGD(lr=lr, momentum=0.9, nesterov=True))
    curve, t = [], 0
    for _ in range(epochs):
        h = (net.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=1, batch_size=batch)
             if n_classes > 2 else
             net.fit(X, y.reshape(-1, 1).astype(float), loss="bce_with_logits",
                     optimizer=opt, epochs=1, batch_size=batch))
        curve.append(h.loss[0])
        t += 90
        if schedule == "invscaling":
            opt.lr = float(lr) / (t + 1) ** 0.5
    worst = 0.0
    for layer, W, b in zip([net.layers[0], net.layers[2]], est.coefs_, est.intercepts_):
        np.testing.assert_allclose(layer.W, W, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(layer.b, b, rtol=1e-9, atol=1e-12)
        worst = max(worst, float(np.max(np.abs(layer.W - W) / np.abs(W))))
    np.testing.assert_allclose(curve, est.loss_curve_, rtol=1e-9)
    print(f"{backend} {solver} {schedule} {activation} {n_classes} classes: largest relative difference of "
          f"coefs_ {worst:.2e}")
