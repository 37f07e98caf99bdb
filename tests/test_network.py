"""Network: seeding and initialisers, save/load, History, evaluate, batching and
shuffling, Dropout, the backend registry (and FASTNN_BACKEND), the spirals set.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastnn
from fastnn import (SGD, Adam, CrossEntropyLoss, Dense, Dropout, History, LeakyReLU, MSELoss,
                    Network, ReLU, Sigmoid, SiLU, Tanh)
from fastnn.backends import available_backends


from tests_conftest import tol  # noqa: E402 (conftest.py registers the name)


def traj_tol(dtype):
    """Tolerance for a short training trajectory (~10 steps) compared across backends:
    the per-kernel tolerance of the table, times 100 for the accumulation over steps."""
    return {k: 100 * v for k, v in tol(dtype).items()}


def _needs_cython():
    if "cython" not in available_backends():
        pytest.skip("the compiled backend is not available in this installation")


def _mlp(backend="numpy", dtype="float64", seed=0, dropout=None):
    layers = [Dense(3, 8), Tanh()]
    if dropout is not None:
        layers.append(Dropout(dropout))
    layers += [Dense(8, 5), ReLU(), Dense(5, 2)]
    return Network(layers, backend=backend, dtype=dtype, seed=seed)


def _weights(net):
    return {key: p.copy() for key, p, _ in net.parameters()}


def _data(rng, n=10, n_in=3, n_out=2):
    return rng.standard_normal((n, n_in)), rng.standard_normal((n, n_out))


# ------------------------------------------------------------ seeding, init
def test_same_seed_same_weights(backend, dtype):
    a, b = _mlp(backend, dtype, seed=42), _mlp(backend, dtype, seed=42)
    for (ka, pa, _), (kb, pb, _) in zip(a.parameters(), b.parameters()):
        assert ka == kb and pa.dtype == dtype
        np.testing.assert_array_equal(pa, pb)


def test_same_seed_same_weights_on_both_backends_and_dtypes():
    _needs_cython()
    ref = _weights(_mlp("numpy", "float64", seed=9))
    for backend in ("numpy", "cython"):
        w64 = _weights(_mlp(backend, "float64", seed=9))
        w32 = _weights(_mlp(backend, "float32", seed=9))
        assert ref.keys() == w64.keys() == w32.keys()
        for key in ref:
            assert w64[key].tobytes() == ref[key].tobytes(), key
            assert w32[key].dtype == np.float32
            # float32 weights are the float64 weights rounded
            np.testing.assert_array_equal(w32[key], ref[key].astype(np.float32), err_msg=key)


def test_different_seeds_differ(backend):
    a, b = _weights(_mlp(backend, seed=1)), _weights(_mlp(backend, seed=2))
    for key in a:
        if key.endswith(".W"):
            assert not np.array_equal(a[key], b[key]), key


def _stats(init, next_layer=None, n_in=200, n_out=600):
    layers = [Dense(n_in, n_out, init=init)] + ([next_layer] if next_layer else [])
    dense = Network(layers, backend="numpy", seed=123).layers[0]
    return dense.W, dense.b


def _close(value, want, rel=0.1):
    return abs(value - want) <= rel * want


def test_init_normal():
    W, b = _stats("normal")             # W and b ~ N(0, 1)
    assert _close(W.std(), 1.0) and abs(W.mean()) < 0.02
    assert _close(b.std(), 1.0) and abs(b.mean()) < 0.15


def test_init_small_normal():
    W, b = _stats("small_normal")       # W ~ 0.01 N(0, 1), b = 0
    assert _close(W.std(), 0.01)
    np.testing.assert_array_equal(b, 0.0)


@pytest.mark.parametrize("init", ["xavier", "glorot"])
def test_init_xavier(init):
    W, b = _stats(init)                 # U(-a, a), a = sqrt(6 / (n_in + n_out)); std a / sqrt(3)
    a = np.sqrt(6.0 / 800)
    assert np.abs(W).max() <= a and np.abs(W).max() > 0.99 * a
    assert _close(W.std(), a / np.sqrt(3))
    np.testing.assert_array_equal(b, 0.0)


@pytest.mark.parametrize("init", ["he", "kaiming"])
def test_init_he(init):
    W, b = _stats(init)                 # N(0, 2 / n_in): std 0.1
    assert _close(W.std(), 0.1)
    assert np.abs(W).max() > np.sqrt(6.0 / 800) * 1.5      # normal tails, not uniform
    np.testing.assert_array_equal(b, 0.0)


@pytest.mark.parametrize("next_layer,std", [
    (ReLU(), 0.1), (LeakyReLU(), 0.1), (SiLU(), 0.1),          # He: sqrt(2 / 200)
    (Sigmoid(), 0.05), (Tanh(), 0.05), (None, 0.05),           # Xavier: sqrt(2 / 800)
])
def test_init_auto(next_layer, std):
    W, b = _stats("auto", next_layer)
    assert _close(W.std(), std), (next_layer, W.std())
    np.testing.assert_array_equal(b, 0.0)


def test_init_default_is_auto_he_before_relu():
    net = Network([Dense(200, 600), ReLU()], backend="numpy", seed=5)
    assert net.layers[0].init == "auto"
    assert _close(net.layers[0].W.std(), 0.1)


# -------------------------------------------------------------- save / load
def test_save_load_round_trip(backend, dtype, tmp_path, rng):
    net = Network([Dense(3, 6), LeakyReLU(0.2), Dropout(0.25), Dense(6, 2, bias=False), Sigmoid()],
                  backend=backend, dtype=dtype, seed=3)
    X = rng.standard_normal((5, 3))
    net.fit(X, rng.uniform(0, 1, (5, 2)), loss="bce", optimizer=Adam(0.01), epochs=2, seed=1)
    path = tmp_path / "net.npz"
    net.save(path)
    assert sorted(os.listdir(tmp_path)) == ["net.npz"]          # no temporary left behind
    with np.load(path, allow_pickle=False) as data:            # no pickled objects
        files = set(data.files)
        config = json.loads(str(data["config"]))
    assert {"0.W", "0.b", "3.W"} <= files and "3.b" not in files
    assert config["dtype"] == dtype.name
    loaded = Network.load(path, backend=backend)
    assert loaded.dtype == dtype and loaded.backend == backend
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in net.layers]
    assert loaded.layers[1].negative_slope == 0.2 and loaded.layers[2].p == 0.25
    assert loaded.layers[3].b is None
    for (k1, p1, _), (k2, p2, _) in zip(net.parameters(), loaded.parameters()):
        assert k1 == k2 and p2.dtype == dtype
        assert p1.tobytes() == p2.tobytes(), k1                 # bit-exact
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


def test_save_load_continues_training_identically(backend, tmp_path, rng):
    # the dropout generator's state is saved too: one more epoch after load gives the
    # same weights as one more epoch of the original
    X, T = _data(rng)
    net = _mlp(backend, seed=4, dropout=0.3)
    net.fit(X, T, loss="mse", optimizer=SGD(0.05), epochs=2, batch_size=4, seed=0)
    net.save(tmp_path / "a.npz")
    loaded = Network.load(tmp_path / "a.npz", backend=backend)
    for n in (net, loaded):
        n.fit(X, T, loss="mse", optimizer=SGD(0.05), epochs=1, batch_size=4, seed=1)
    for (k, p1, _), (_, p2, _) in zip(net.parameters(), loaded.parameters()):
        np.testing.assert_array_equal(p1, p2, err_msg=k)


def test_load_on_other_backend(tmp_path, rng):
    _needs_cython()
    net = _mlp("numpy", seed=8)
    net.save(tmp_path / "n.npz")
    loaded = Network.load(tmp_path / "n.npz", backend="cython")
    assert loaded.backend == "cython"
    X = rng.standard_normal((4, 3))
    np.testing.assert_allclose(loaded.predict(X), net.predict(X), **tol(np.float64))


# ------------------------------------------------------- History, evaluate
def test_history_regression(backend, rng):
    X, T = _data(rng)
    net = _mlp(backend, seed=0)
    before = net.evaluate(X, T, loss="mse")
    assert set(before) == {"loss"}
    hist = net.fit(X, T, loss="mse", optimizer=SGD(0.05), epochs=4, batch_size=None)
    assert isinstance(hist, History)
    assert hist.epochs == [0, 1, 2, 3]
    assert set(hist.history) == {"loss", "lr"}
    assert len(hist.loss) == 4 and hist["loss"] is hist.loss
    # full batch: epoch 0's loss is the loss before its one update
    assert hist.loss[0] == pytest.approx(before["loss"], rel=1e-12)
    assert hist.loss[-1] < hist.loss[0]
    with pytest.raises(AttributeError, match="val_loss"):
        hist.val_loss


def test_history_validation_data(backend, rng):
    X, T = _data(rng)
    X_val, T_val = _data(rng, n=6)
    net = _mlp(backend, seed=0)
    hist = net.fit(X, T, loss="mse", optimizer=SGD(0.05), epochs=3,
                   validation_data=(X_val, T_val))
    assert set(hist.history) == {"loss", "lr", "val_loss"}
    assert len(hist.val_loss) == 3
    # the last val_loss is the validation loss of the final weights
    assert hist.val_loss[-1] == pytest.approx(net.evaluate(X_val, T_val, loss="mse")["loss"],
                                              rel=1e-12)


@pytest.mark.parametrize("loss", ["bce", "cross_entropy"])
def test_history_classification_has_val_accuracy(backend, loss, rng):
    # History (network.py): "loss" always; "val_loss", and "val_accuracy" for
    # classification losses, when validation data is given
    X = rng.standard_normal((12, 3))
    if loss == "bce":
        net = Network([Dense(3, 4), Tanh(), Dense(4, 1), Sigmoid()], backend=backend, seed=0)
        y = (X[:, 0] > 0).astype(float)
    else:
        net = Network([Dense(3, 4), Tanh(), Dense(4, 3)], backend=backend, seed=0)
        y = rng.integers(0, 3, 12)
    hist = net.fit(X, y, loss=loss, optimizer=Adam(0.01), epochs=3, batch_size=5,
                   validation_data=(X[:6], y[:6]))
    assert set(hist.history) == {"loss", "lr", "val_loss", "val_accuracy"}
    for key in hist.history:
        assert len(hist[key]) == 3
    assert all(0.0 <= a <= 1.0 for a in hist.val_accuracy)
    final = net.evaluate(X[:6], y[:6], loss=loss)
    assert hist.val_accuracy[-1] == final["accuracy"]
    assert hist.val_loss[-1] == pytest.approx(final["loss"], rel=1e-12)
    assert set(net.fit(X, y, loss=loss, optimizer=Adam(0.01), epochs=1).history) == {"loss", "lr"}


def test_evaluate_cross_entropy(backend, rng):
    net = Network([Dense(3, 4)], backend=backend, seed=0)
    X = rng.standard_normal((9, 3))
    y = rng.integers(0, 4, 9)
    scores = net.evaluate(X, y, loss=CrossEntropyLoss())
    assert set(scores) == {"loss", "accuracy"}
    Z = X @ net.layers[0].W + net.layers[0].b
    log_softmax = Z - Z.max(axis=1, keepdims=True)
    log_softmax -= np.log(np.exp(log_softmax).sum(axis=1, keepdims=True))
    assert scores["loss"] == pytest.approx(-log_softmax[np.arange(9), y].mean(), rel=1e-12)
    assert scores["accuracy"] == np.mean(Z.argmax(axis=1) == y)
    # probability targets give the same numbers for one-hot rows
    scores_p = net.evaluate(X, np.eye(4)[y], loss="cross_entropy")
    assert scores_p["loss"] == pytest.approx(scores["loss"], rel=1e-12)
    assert scores_p["accuracy"] == scores["accuracy"]


def test_evaluate_bce_and_mse(backend, rng):
    net = Network([Dense(2, 1), Sigmoid()], backend=backend, seed=1)
    X = rng.standard_normal((8, 2))
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1], dtype=float)
    p = net.predict(X)[:, 0]
    bce = net.evaluate(X, y, loss="bce")
    assert bce["loss"] == pytest.approx(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)),
                                        rel=1e-12)
    assert bce["accuracy"] == np.mean((p > 0.5) == (y > 0.5))
    mse = net.evaluate(X, y, loss=MSELoss(reduction="sum"))
    assert mse == {"loss": pytest.approx(np.sum((p - y) ** 2), rel=1e-12)}


def _fixed(layers, backend, W, b, dtype="float64"):
    """A Network of ``layers`` whose first (Dense) layer has the weights W, b."""
    net = Network(layers, backend=backend, dtype=dtype, seed=0)
    net.layers[0].W, net.layers[0].b = W, b
    return net


def test_bce_accuracy_is_per_label(backend, dtype):
    """BCE accuracy: the fraction of all outputs on the target's side of 0.5
    (Keras's binary accuracy), in evaluate and in fit's val_accuracy.  (It took
    the argmax of the target: every prediction right scored 0.0, and [0, 0]
    predicted for [0, 1] scored 1.0.)"""
    # output j is sigmoid(8 * x_j): predictions [[1, 1], [0, 0], [1, 0]]
    X = np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]])
    net = _fixed([Dense(2, 2), Sigmoid()], backend, np.diag([8.0, 8.0]), [0.0, 0.0], dtype)
    right = np.array([[1, 1], [0, 0], [1, 0]])
    assert net.evaluate(X, right, loss="bce")["accuracy"] == 1.0
    assert net.evaluate(X[1:2], [[0, 1]], loss="bce")["accuracy"] == 0.5
    assert net.evaluate(X, 1 - right, loss="bce")["accuracy"] == 0.0
    three_of_six = [[1, 0], [1, 0], [1, 1]]            # 1 + 1 + 1 of 2 labels each
    assert net.evaluate(X, three_of_six, loss="bce")["accuracy"] == 0.5
    hist = net.fit(X, right, loss="bce", optimizer=SGD(0.0), epochs=2,
                   validation_data=(X, three_of_six))
    assert hist.val_accuracy == [0.5, 0.5]
    # one output: the same rule (a threshold at 0.5)
    one = _fixed([Dense(2, 1), Sigmoid()], backend, [[8.0], [0.0]], [0.0], dtype)
    assert one.evaluate(X, [1, 0, 0], loss="bce")["accuracy"] == pytest.approx(2 / 3)
    assert one.fit(X, [1, 0, 1], loss="bce", optimizer=SGD(0.0), epochs=1,
                   validation_data=(X, [1, 0, 0])).val_accuracy == [pytest.approx(2 / 3)]


def test_cross_entropy_accuracy_is_the_argmax(backend, dtype):
    """Cross-entropy accuracy: the largest logit against the label, or against
    the largest target probability, in evaluate and in fit's val_accuracy."""
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    net = _fixed([Dense(2, 3)], backend, [[2.0, 1.0, 0.0], [0.0, 1.0, 2.0]], [0.0] * 3,
                 dtype)                                  # classes 0, 2, 0, 2
    labels = np.array([0, 2, 1, 2])
    probs = np.array([[0.6, 0.2, 0.2], [0.1, 0.1, 0.8], [0.2, 0.7, 0.1], [0.0, 0.0, 1.0]])
    for y in (labels, probs):
        assert net.evaluate(X, y, loss="cross_entropy")["accuracy"] == 0.75
        hist = net.fit(X, y, loss="cross_entropy", optimizer=SGD(0.0), epochs=1,
                       validation_data=(X, y))
        assert hist.val_accuracy == [0.75]
    # one logit: softmax over one class always picks class 0
    one = _fixed([Dense(2, 1)], backend, [[5.0], [-5.0]], [0.0], dtype)
    assert one.evaluate(X, [0, 0, 0, 0], loss="cross_entropy")["accuracy"] == 1.0


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_weights_assigned_before_the_network_are_kept(backend, dtype):
    """Dense W / b assigned before the layer is in a Network are its weights
    (in the network's dtype), not thrown away for initial ones; the other
    layers get the same initial weights as without the assignment."""
    d = Dense(2, 1)
    d.W = [[1], [2]]
    d.b = [0.5]
    net = Network([d], backend=backend, dtype=dtype, seed=0)
    assert net.predict([[1, 1]]).tolist() == [[3.5]]
    assert d.W.dtype == d.b.dtype == np.dtype(dtype)
    W = np.arange(12.0).reshape(3, 4) / 10
    first = Dense(3, 4)
    first.W = W
    assigned = Network([first, Tanh(), Dense(4, 2)], backend=backend, dtype=dtype, seed=3)
    plain = Network([Dense(3, 4), Tanh(), Dense(4, 2)], backend=backend, dtype=dtype, seed=3)
    np.testing.assert_array_equal(assigned.layers[0].W, W.astype(dtype))
    np.testing.assert_array_equal(assigned.layers[0].b, plain.layers[0].b)   # drawn: zeros
    np.testing.assert_array_equal(assigned.layers[2].W, plain.layers[2].W)
    np.testing.assert_array_equal(assigned.layers[2].b, plain.layers[2].b)
    only_b = Dense(2, 3, init="normal")
    only_b.b = [1.0, 2.0, 3.0]
    net = Network([only_b], backend=backend, dtype=dtype, seed=4)
    twin = Network([Dense(2, 3, init="normal")], backend=backend, dtype=dtype, seed=4)
    np.testing.assert_array_equal(only_b.b, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(only_b.W, twin.layers[0].W)


def test_assigned_weights_too_large_for_float32_are_refused():
    d = Dense(2, 1)
    d.W = [[1e300], [1.0]]
    with pytest.raises(ValueError, match=r"layer 0: Dense.W has a value too large for float32"):
        Network([d], dtype="float32")
    np.testing.assert_array_equal(d.W, [[1e300], [1.0]])     # kept for a float64 network
    assert Network([d]).predict([[0.0, 2.0]]).tolist() == [[2.0 + d.b[0]]]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_layer_in_a_second_network_is_refused(backend, dtype):
    """Building a layer again for a second network re-initialised the first
    network's weights (and with another dtype left it training float32 weights
    in a float64 network): refused, and the first network is left exactly as
    it was."""
    X, y = np.ones((4, 3)), np.zeros((4, 2))
    hidden, out = Dense(3, 4), Dense(4, 2)
    first = Network([hidden, Tanh(), out], backend=backend, seed=0)
    first.fit(X, y, loss="mse", optimizer=SGD(0.1), epochs=2)
    weights = [p.copy() for _, p, _ in first.parameters()]
    arrays = [p for _, p, _ in first.parameters()]
    with pytest.raises(ValueError, match=r"layer 2 \(Dense\(n_in=4, n_out=2.*already belongs "
                                         r"to another Network"):
        Network([Dense(3, 4), Tanh(), out], backend=backend, dtype=dtype, seed=1)
    with pytest.raises(ValueError, match="layer 0 .*already belongs to another Network"):
        Network([hidden], backend=backend, dtype=dtype, seed=1)
    assert first.dtype == np.dtype("float64")
    for (_, p, _), w, a in zip(first.parameters(), weights, arrays):
        assert p is a and p.dtype == np.float64
        np.testing.assert_array_equal(p, w)
    first.fit(X, y, loss="mse", optimizer=SGD(0.1), epochs=1)     # still trains


def test_layers_of_a_network_that_failed_to_build_can_be_used_again(backend):
    """Only a network that was built claims its layers: after a size error the
    same layer objects make a network, with the weights the user assigned."""
    d = Dense(2, 3)
    d.W = np.ones((2, 3))
    with pytest.raises(ValueError, match="expects 4 inputs but receives 3"):
        Network([d, Tanh(), Dense(4, 1)], backend=backend)
    net = Network([d, Tanh(), Dense(3, 1)], backend=backend)
    np.testing.assert_array_equal(net.layers[0].W, np.ones((2, 3)))


# -------------------------------------------------------- batching, shuffle
def _manual_fit(net, X, T, batches, epochs, lr):
    """The training loop written out with the public pieces, on the given batches."""
    loss, opt = MSELoss(), SGD(lr)
    losses = []
    for _ in range(epochs):
        total = 0.0
        for idx in batches:
            out = net.forward(X[idx], training=True)
            value, grad = loss.compute(net.ops, out, T[idx])
            net.backward(grad)
            opt.step(net)
            total += value * len(idx)
        losses.append(total / len(X))
    return losses


def test_last_partial_batch_is_used(backend, rng):
    # 10 samples, batch 4 -> batches [0:4], [4:8], [8:10]
    X, T = _data(rng, n=10)
    ref = _mlp("numpy", seed=6)
    losses = _manual_fit(ref, X, T, [range(0, 4), range(4, 8), range(8, 10)], epochs=2, lr=0.1)
    net = _mlp(backend, seed=6)
    hist = net.fit(X, T, loss="mse", optimizer=SGD(0.1), epochs=2, batch_size=4, shuffle=False)
    for key, p in _weights(net).items():
        np.testing.assert_allclose(p, _weights(ref)[key], err_msg=key, **traj_tol(np.float64))
    np.testing.assert_allclose(hist.loss, losses, rtol=1e-10)
    # and dropping the last batch would have given other weights
    skip = _mlp("numpy", seed=6)
    _manual_fit(skip, X, T, [range(0, 4), range(4, 8)], epochs=2, lr=0.1)
    assert not np.allclose(_weights(skip)["4.W"], _weights(net)["4.W"], rtol=1e-6)


def test_batch_size_none_is_full_batch(backend, rng):
    X, T = _data(rng, n=10)
    ref = _mlp("numpy", seed=6)
    losses = _manual_fit(ref, X, T, [range(10)], epochs=3, lr=0.1)
    for batch_size in (None, 10, 1000):
        net = _mlp(backend, seed=6)
        hist = net.fit(X, T, loss="mse", optimizer=SGD(0.1), epochs=3, batch_size=batch_size)
        for key, p in _weights(net).items():
            np.testing.assert_allclose(p, _weights(ref)[key], err_msg=f"{batch_size} {key}",
                                       **traj_tol(np.float64))
        np.testing.assert_allclose(hist.loss, losses, rtol=1e-10)


def test_shuffle_with_fit_seed_is_reproducible(backend, rng):
    X, T = _data(rng, n=10)

    def run(seed, shuffle=True, net_seed=0):
        net = _mlp(backend, seed=net_seed)
        net.fit(X, T, loss="mse", optimizer=SGD(0.1), epochs=3, batch_size=3, shuffle=shuffle,
                seed=seed)
        return _weights(net)

    a, b, c, plain = run(5), run(5), run(6), run(5, shuffle=False)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert not np.allclose(a["4.W"], c["4.W"])
    assert not np.allclose(a["4.W"], plain["4.W"])
    # without a fit seed, the network's own seed drives the shuffling
    n1, n2 = _mlp(backend, seed=3), _mlp(backend, seed=3)
    for n in (n1, n2):
        n.fit(X, T, loss="mse", optimizer=SGD(0.1), epochs=2, batch_size=3)
    for (k, p1, _), (_, p2, _) in zip(n1.parameters(), n2.parameters()):
        np.testing.assert_array_equal(p1, p2, err_msg=k)


@pytest.mark.parametrize("dropout", [None, 0.3])
def test_fit_identical_on_both_backends(dtype, dropout, rng):
    _needs_cython()
    X, T = _data(rng, n=10)
    out = {}
    for backend in ("numpy", "cython"):
        net = _mlp(backend, dtype, seed=2, dropout=dropout)
        hist = net.fit(X, T, loss="mse", optimizer=Adam(0.01), epochs=3, batch_size=4, seed=7)
        out[backend] = (_weights(net), hist.loss)
    for key, p in out["numpy"][0].items():
        np.testing.assert_allclose(out["cython"][0][key], p, err_msg=key, **traj_tol(dtype))
    np.testing.assert_allclose(out["cython"][1], out["numpy"][1], **traj_tol(dtype))


# ------------------------------------------------------------------ Dropout
def test_dropout_only_in_fit(backend, rng):
    X, T = _data(rng, n=10)
    net = _mlp(backend, seed=1, dropout=0.5)
    plain = _mlp(backend, seed=1)
    for key, p, _ in plain.parameters():
        layer, name = key.split(".")
        # the dropout layer shifts indices of the later layers by one
        src = net.layers[int(layer) + (1 if int(layer) >= 2 else 0)]
        setattr(plain.layers[int(layer)], name, getattr(src, name))
    p1, p2 = net.predict(X), net.predict(X)
    np.testing.assert_array_equal(p1, p2)                        # predict is deterministic
    np.testing.assert_array_equal(p1, plain.predict(X))          # ... and dropout-free
    np.testing.assert_array_equal(net.forward(X), p1)            # training=False by default
    t1, t2 = net.forward(X, training=True), net.forward(X, training=True)
    assert not np.allclose(t1, p1) and not np.allclose(t1, t2)   # a new mask each step
    assert net.evaluate(X, T, loss="mse")["loss"] == plain.evaluate(X, T, loss="mse")["loss"]
    # dropout is active during fit: the weights move differently than without it
    net.fit(X, T, loss="mse", optimizer=SGD(0.1), epochs=1, batch_size=None)
    plain.fit(X, T, loss="mse", optimizer=SGD(0.1), epochs=1, batch_size=None)
    assert not np.allclose(net.layers[0].W, plain.layers[0].W)


def test_dropout_mask_statistics(ops):
    X = np.ones((400, 250))
    Y, mask = ops.dropout_forward(X, 0.3, 1234, 0)
    values = set(np.unique(mask).tolist())
    assert values == {0.0, np.float64(1.0 / 0.7)}
    assert abs((mask != 0).mean() - 0.7) < 0.01
    np.testing.assert_array_equal(Y, X * mask)
    assert not np.array_equal(ops.dropout_forward(X, 0.3, 1234, 1)[1], mask)
    np.testing.assert_array_equal(ops.dropout_forward(X, 0.3, 1234, 0)[1], mask)
    np.testing.assert_array_equal(ops.dropout_forward(X, 1.0, 1, 0)[0], 0.0)
    np.testing.assert_array_equal(ops.dropout_forward(X, 0.0, 1, 0)[0], X)


@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (300, 257)])
def test_dropout_masks_match_across_backends(dtype, shape, rng):
    _needs_cython()
    X = rng.standard_normal(shape).astype(dtype)
    for seed, step, p in [(0, 0, 0.5), (2**63 + 17, 3, 0.1), (99, 12345, 0.9)]:
        Yn, Mn = fastnn.get_backend("numpy").dropout_forward(X, p, seed, step)
        Yc, Mc = fastnn.get_backend("cython").dropout_forward(X, p, seed, step)
        assert Mc.dtype == dtype and Yc.dtype == dtype
        np.testing.assert_array_equal(Mc, Mn)
        np.testing.assert_array_equal(Yc, Yn)


# -------------------------------------------------------- backend registry
def test_use_backend_and_set_backend(backend):
    before = fastnn.get_backend().name
    other = "numpy" if backend != "numpy" else ("cython" if "cython" in available_backends()
                                                else "numpy")
    with fastnn.use_backend(backend) as ops:
        assert ops is fastnn.get_backend(backend)
        assert fastnn.get_backend().name == backend
        assert Network([Dense(2, 1)]).backend == backend
        assert Network([Dense(2, 1)], backend=other).backend == other
        # set_backend inside the context is undone when the context exits
        assert fastnn.set_backend(other).name == other
        assert fastnn.get_backend().name == other
        assert Network([Dense(2, 1)]).backend == other
    assert fastnn.get_backend().name == before
    assert fastnn.get_backend(fastnn.get_backend("numpy")) is fastnn.get_backend("numpy")


def test_use_backend_restores_after_error():
    before = fastnn.get_backend().name
    with pytest.raises(KeyError):
        with fastnn.use_backend("numpy"):
            raise KeyError("boom")
    assert fastnn.get_backend().name == before


def _run_with_env(value, code):
    env = dict(os.environ)
    env.pop("FASTNN_BACKEND", None)
    if value is not None:
        env["FASTNN_BACKEND"] = value
    # import the same fastnn as this process
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120, cwd=os.path.dirname(env["PYTHONPATH"]))


def test_fastnn_backend_environment_variable():
    code = ("import fastnn\n"
            "print(fastnn.get_backend().name, fastnn.Network([fastnn.Dense(2, 1)]).backend)\n"
            "fastnn.set_backend('numpy')\n"
            "print(fastnn.get_backend().name)\n")
    result = _run_with_env("numpy", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["numpy", "numpy", "numpy"]
    if "cython" in available_backends():
        result = _run_with_env("cython", code)
        assert result.returncode == 0, result.stderr
        # the variable picks the default; set_backend overrides it
        assert result.stdout.split() == ["cython", "cython", "numpy"]
        result = _run_with_env(None, code)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split()[:2] == ["cython", "cython"]      # compiled by default
    result = _run_with_env("tensorflow", code)
    assert result.returncode != 0
    assert "ValueError" in result.stderr and "FASTNN_BACKEND='tensorflow' is not a backend" in result.stderr


# ---------------------------------------------------------------- spirals
def test_spirals_is_seeded():
    X, y = fastnn.datasets.spirals()
    X2, y2 = fastnn.datasets.spirals()
    X3, _ = fastnn.datasets.spirals(seed=1)
    assert X.shape == (300, 2) and y.shape == (300,)
    np.testing.assert_array_equal(np.bincount(y), [100, 100, 100])
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.allclose(X, X3)
    X4, y4 = fastnn.datasets.spirals(n_per_class=10, n_classes=4, seed=1)
    assert X4.shape == (40, 2) and set(y4.tolist()) == {0, 1, 2, 3}


def test_spirals_learned_by_small_relu_classifier(backend):
    X, y = fastnn.datasets.spirals()
    net = Network([Dense(2, 32), ReLU(), Dense(32, 32), ReLU(), Dense(32, 3)], backend=backend,
                  seed=0)
    hist = net.fit(X, y, loss="cross_entropy", optimizer=Adam(0.05), epochs=100, seed=0)
    assert hist.loss[-1] < hist.loss[0]
    assert net.evaluate(X, y, loss="cross_entropy")["accuracy"] > 0.9
