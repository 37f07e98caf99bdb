"""PyTorch's activations GELU, ELU, SELU, Softplus and Mish: against PyTorch, kernel and training.

Why it is built this way: these activations promise PyTorch's formulas, names
and defaults, so each is checked against torch itself -- its forward and
backward on values that reach every branch (Softplus's threshold, ELU's
negative side, GELU's tails), and a whole training run: the same network and
weights trained by fastnn's ``fit`` and by a torch loop, compared epoch by
epoch and weight by weight in float64.  On the compiled backend the training
must run in C (the native trainer), the activation fused into the Dense
layer before it and also as a stage of its own.  The classes' parameters,
their validation, save/load and the torch mapping are checked here too; the
finite-difference gradients are in test_gradients.py, the compiled-vs-reference
kernel grid in test_kernels.py.
"""

import warnings

import numpy as np
import pytest

import fastnn
from fastnn import ELU, GELU, SELU, Adam, Dense, Mish, Network, SGD, Softplus, Tanh, training

from tests_conftest import tol  # noqa: E402 (conftest.py registers the name)

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
nn = torch.nn

#: id -> (fastnn layer factory, torch module factory, kernel kind, alpha, beta)
ACTS = {
    "gelu": (GELU, nn.GELU, "gelu", 0.0, 0.0),
    "gelu_tanh": (lambda: GELU(approximate="tanh"), lambda: nn.GELU(approximate="tanh"),
                  "gelu_tanh", 0.0, 0.0),
    "elu": (ELU, nn.ELU, "elu", 1.0, 0.0),
    "elu_0.7": (lambda: ELU(alpha=0.7), lambda: nn.ELU(alpha=0.7), "elu", 0.7, 0.0),
    "selu": (SELU, nn.SELU, "selu", 0.0, 0.0),
    "softplus": (Softplus, nn.Softplus, "softplus", 20.0, 1.0),
    # beta 2, threshold 1.5: the identity for x > 0.75, so training crosses it
    "softplus_2_1.5": (lambda: Softplus(beta=2.0, threshold=1.5),
                       lambda: nn.Softplus(beta=2.0, threshold=1.5), "softplus", 1.5, 2.0),
    "mish": (Mish, nn.Mish, "mish", 0.0, 0.0),
}


def _values(rng):
    """Values that reach every branch: N(0, 3), the tails to +-40, and near 0."""
    return np.concatenate([rng.standard_normal(300) * 3, rng.uniform(-40, 40, 100),
                           rng.uniform(-1e-3, 1e-3, 20), [0.0, -0.0, 0.75, 10.0]]).reshape(8, -1)


@pytest.mark.parametrize("name", list(ACTS))
def test_kernels_match_pytorch(ops, name, rng):
    make, make_torch, kind, alpha, beta = ACTS[name]
    layer = make()
    assert (layer.kind, layer.alpha, layer.beta) == (kind, alpha, beta)
    X = _values(rng)
    G = rng.standard_normal(X.shape)
    xt = torch.from_numpy(X.copy()).requires_grad_(True)
    yt = make_torch()(xt)
    yt.backward(torch.from_numpy(G))
    Y = ops.activation_forward(X, kind, alpha, beta)
    dZ = ops.activation_backward(G, X, Y, kind, alpha, beta)
    # absolute 1e-13: where the formula cancels (1 + tanh(x) at x << 0) the
    # libraries' last bits differ, times |x| <= 40
    np.testing.assert_allclose(Y, yt.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(dZ, xt.grad.numpy(), rtol=1e-12, atol=1e-13)
    # the same through the Dense kernel, the activation fused into it
    W = np.eye(X.shape[1])
    Z, Yd = ops.dense_forward(X, W, None, kind, alpha, beta)
    np.testing.assert_array_equal(Yd, Y)
    dX, _, _ = ops.dense_backward(X, W, Z, Yd, G, kind, alpha, beta)
    np.testing.assert_allclose(dX, dZ, **tol(np.float64))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (300, 257)])
@pytest.mark.parametrize("name", ["elu_0.7", "softplus_2_1.5"])
def test_parameters_reach_the_compiled_kernels(name, shape, dtype, rng):
    """Non-default alpha / beta: compiled and reference agree, standalone and fused
    (the shape grid of test_kernels.py runs the kernels' defaults)."""
    _, _, kind, alpha, beta = ACTS[name]
    R, C = fastnn.get_backend("numpy"), fastnn.get_backend("cython")
    X = (rng.standard_normal(shape) * 2).astype(dtype)
    X[0, 0] = -1.0                      # where alpha and beta both change f
    W = (rng.standard_normal((shape[1], shape[1])) / np.sqrt(shape[1])).astype(dtype)
    b = rng.standard_normal(shape[1]).astype(dtype)
    G = rng.standard_normal(shape).astype(dtype)
    Yr = R.activation_forward(X, kind, alpha, beta)
    np.testing.assert_allclose(C.activation_forward(X, kind, alpha, beta), Yr, **tol(dtype))
    np.testing.assert_allclose(C.activation_backward(G, X, Yr, kind, alpha, beta),
                               R.activation_backward(G, X, Yr, kind, alpha, beta), **tol(dtype))
    # the fused Dense kernel: the GEMMs add in other orders, so (as in
    # test_kernels.py) the absolute tolerance scales with the sums of magnitudes
    t = tol(dtype)

    def close(got, want, scale):
        err = np.abs(got.astype(np.float64) - want)
        assert (err <= t["atol"] * np.maximum(scale, 1) + t["rtol"] * np.abs(want)).all()

    (Zr, Ydr), (_, Ydc) = (ops.dense_forward(X, W, b, kind, alpha, beta) for ops in (R, C))
    close(Ydc, Ydr, np.abs(X).astype(np.float64) @ np.abs(W) + np.abs(b))
    dZ = np.abs(R.activation_backward(G, Zr, Ydr, kind, alpha, beta)).astype(np.float64)
    dX, dW, db = C.dense_backward(X, W, Zr, Ydr, G, kind, alpha, beta)
    dXr, dWr, dbr = R.dense_backward(X, W, Zr, Ydr, G, kind, alpha, beta)
    close(dX, dXr, dZ @ np.abs(W.T))
    close(dW, dWr, np.abs(X.T) @ dZ)
    close(db, dbr, dZ.sum(axis=0))
    # and the parameters matter: the defaults give other numbers
    assert not np.allclose(C.activation_forward(X, kind), Yr)


# ------------------------------------------------------------ training parity
#: the largest relative difference of the trained weights seen per (activation,
#: backend), printed with -s: the figures the README reports
MEASURED = {}


def _train_both(backend, name, fused, optimizer):
    make, make_torch, _, _, _ = ACTS[name]
    rng = np.random.default_rng(7)
    X = rng.standard_normal((30, 4)) * 1.5
    y = rng.integers(0, 3, 30)
    if fused:      # the activation fused into each Dense before it
        layers = [Dense(4, 8), make(), Dense(8, 6), make(), Dense(6, 3)]
    else:          # a stage of its own (after Tanh), then fused
        layers = [Dense(4, 8), Tanh(), make(), Dense(8, 3)]
    net = Network(layers, backend=backend, seed=4)
    model = net.to_torch().train()
    assert sum(isinstance(m, type(make_torch())) for m in model) == (2 if fused else 1)
    ours, theirs = optimizer
    opt = theirs(model.parameters())
    epochs, batch, n = 6, 8, X.shape[0]
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    loss_fn = nn.CrossEntropyLoss()
    torch_losses = []
    for _ in range(epochs):
        total = 0.0
        for start in range(0, n, batch):
            opt.zero_grad()
            value = loss_fn(model(Xt[start:start + batch]), yt[start:start + batch])
            value.backward()
            opt.step()
            total += value.item() * min(batch, n - start)
        torch_losses.append(total / n)
    if backend == "cython":   # the compiled trainer runs it in C, not the Python loop
        loss = fastnn.CrossEntropyLoss()
        Xc, T = net._check_data(X, y, loss)
        made = training._make_trainer(net, Xc, T, loss, ours(), batch, None)
        try:
            assert isinstance(made, training._NativeTrainer)
        finally:
            made.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")        # no "runs the Python training loop" warning
        history = net.fit(X, y, loss="cross_entropy", optimizer=ours(), epochs=epochs,
                          batch_size=batch, shuffle=False)
    return net, model, history, torch_losses


OPTIMIZERS = {
    "adam": (lambda: Adam(lr=0.02), lambda p: torch.optim.Adam(p, lr=0.02)),
    "sgd": (lambda: SGD(lr=0.1, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.1,
                                                                          momentum=0.9)),
}


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "standalone"])
@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("name", list(ACTS))
def test_training_matches_pytorch(backend, name, opt, fused):
    net, model, history, torch_losses = _train_both(backend, name, fused, OPTIMIZERS[opt])
    np.testing.assert_allclose(history.loss, torch_losses, rtol=1e-9)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    denses = [layer for layer in net.layers if isinstance(layer, Dense)]
    worst = 0.0
    for layer, linear in zip(denses, linears):
        for ours, theirs in ((layer.W, linear.weight.detach().numpy().T),
                             (layer.b, linear.bias.detach().numpy())):
            np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
            worst = max(worst, float(np.max(np.abs(ours - theirs) / np.abs(theirs))))
    key = (name, backend)
    MEASURED[key] = max(MEASURED.get(key, 0.0), worst)
    print(f"\n{name} {backend} {opt} {'fused' if fused else 'standalone'}: "
          f"largest relative weight difference {worst:.2e}")


def test_training_moves_the_weights():
    """The trajectory test compares trained weights, not the initial ones."""
    net, model, history, _ = _train_both("numpy", "gelu", True, OPTIMIZERS["adam"])
    start = Network([Dense(4, 8), GELU(), Dense(8, 6), GELU(), Dense(6, 3)], seed=4)
    assert np.abs(net.layers[0].W - start.layers[0].W).max() > 1e-3
    assert history.loss[-1] < history.loss[0]


# ------------------------------------------------------------------ classes
def test_defaults_and_names_are_pytorchs():
    assert GELU().approximate == nn.GELU().approximate == "none"
    assert ELU().alpha == nn.ELU().alpha == 1.0
    assert (Softplus().beta, Softplus().threshold) == (nn.Softplus().beta,
                                                       nn.Softplus().threshold) == (1.0, 20.0)
    assert repr(Softplus(2.0, 5.0)) == "Softplus(beta=2.0, threshold=5.0)"
    assert repr(GELU("tanh")) == "GELU(approximate='tanh')" and repr(Mish()) == "Mish()"
    for name in ("GELU", "ELU", "SELU", "Softplus", "Mish", "Flatten"):
        assert name in fastnn.__all__


@pytest.mark.parametrize("make, error, words", [
    (lambda: GELU(approximate="erf"), ValueError, "'none' or 'tanh'"),
    (lambda: ELU(alpha=float("nan")), ValueError, "ELU alpha must be finite"),
    (lambda: ELU(alpha="1"), TypeError, "ELU alpha must be a real number"),
    (lambda: Softplus(beta=0.0), ValueError, "beta must not be 0"),
    (lambda: Softplus(threshold=float("inf")), ValueError, "threshold must be finite"),
])
def test_bad_parameters_are_refused(make, error, words):
    with pytest.raises(error, match=words):
        make()


def test_save_load_and_torch_round_trip(backend, tmp_path, rng):
    layers = [Dense(3, 6), GELU("tanh"), Dense(6, 5), ELU(0.3), Dense(5, 5), Softplus(1.5, 4.0),
              Dense(5, 4), SELU(), Dense(4, 4), Mish(), Dense(4, 4), GELU(), Dense(4, 2)]
    net = Network(layers, backend=backend, seed=9)
    X = rng.standard_normal((6, 3)) * 2
    path = tmp_path / "net.npz"
    net.save(path)
    back = Network.load(path, backend=backend)
    assert [repr(a) for a in back.layers] == [repr(a) for a in net.layers]
    np.testing.assert_array_equal(back.predict(X), net.predict(X))
    model = net.to_torch()
    assert [type(m).__name__ for m in model][1::2] == ["GELU", "ELU", "Softplus", "SELU",
                                                       "Mish", "GELU"]
    assert model[1].approximate == "tanh" and model[3].alpha == 0.3
    assert (model[5].beta, model[5].threshold) == (1.5, 4.0)
    np.testing.assert_allclose(model(torch.from_numpy(X)).detach().numpy(), net.predict(X),
                               rtol=1e-12, atol=1e-14)
    again = Network.from_torch(model, backend=backend)
    assert [repr(a) for a in again.layers] == [repr(a) for a in net.layers]
    np.testing.assert_array_equal(again.predict(X), net.predict(X))


def test_he_initialisation_before_the_relu_family():
    for act in (GELU(), ELU(), SELU(), Softplus(), Mish()):
        net = Network([Dense(200, 300), act], seed=0)
        assert net.layers[0].W.std() == pytest.approx(np.sqrt(2 / 200), rel=0.05)
