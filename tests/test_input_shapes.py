"""Inputs of other shapes than (n_samples, n_features): Flatten, and one sample.

Why it is built this way: the MNIST tutorial feeds images as ``(n, 28, 28)``
through ``nn.Flatten()``, and ``nn.Linear`` takes a single sample as a 1-D
tensor; fastnn takes both as PyTorch does.  Each feature is checked against
the plain 2-D call it must equal (same numbers, on both backends), against
PyTorch where PyTorch has the same call, and -- for Flatten -- in ``fit``,
which on the compiled backend must still run the native trainer.
"""

import pickle
import warnings

import numpy as np
import pytest

import fastnn
from fastnn import (SGD, Adam, Dense, Dropout, Flatten, Network, ReLU, Sigmoid, Softmax, Tanh,
                    training)

try:
    import torch
except ImportError:     # the PyTorch comparisons skip; the rest runs
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


def _mnist_like(backend, seed=0, dtype="float64"):
    return Network([Flatten(), Dense(28 * 28, 16), ReLU(), Dense(16, 10)], backend=backend,
                   seed=seed, dtype=dtype)


def _images(rng, n=12):
    return rng.random((n, 28, 28))


# ------------------------------------------------------------------ Flatten
def test_flatten_predicts_as_the_flat_input(backend, rng):
    net = _mnist_like(backend)
    X = _images(rng)
    assert net.n_inputs == 784
    out = net.predict(X)
    assert out.shape == (12, 10)
    np.testing.assert_array_equal(out, net.predict(X.reshape(12, 784)))
    np.testing.assert_array_equal(net(X), out)
    # any layout and real dtype, converted once where X enters
    np.testing.assert_array_equal(net.predict(np.asfortranarray(X)), out)
    np.testing.assert_array_equal(net.predict(X.tolist()), out)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_flatten_fit_equals_the_flat_fit_and_stays_native(backend, dtype, rng):
    X = _images(rng, 40).astype(dtype)
    y = rng.integers(0, 10, 40)
    nets = [_mnist_like(backend, seed=3, dtype=dtype) for _ in range(2)]
    if backend == "cython":   # Flatten does not send fit to the Python loop
        loss = fastnn.CrossEntropyLoss()
        Xc, T = nets[0]._check_data(X, y, loss)
        assert Xc.shape == (40, 784) and Xc.flags.c_contiguous
        made = training._make_trainer(nets[0], Xc, T, loss, SGD(lr=0.1), 8, None)
        try:
            assert isinstance(made, training._NativeTrainer)
        finally:
            made.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")        # no "runs the Python training loop" warning
        h3 = nets[0].fit(X, y, loss="cross_entropy", optimizer=Adam(lr=0.01), epochs=3,
                         batch_size=8, seed=1, validation_data=(X, y))
    h2 = nets[1].fit(X.reshape(40, -1), y, loss="cross_entropy", optimizer=Adam(lr=0.01),
                     epochs=3, batch_size=8, seed=1, validation_data=(X.reshape(40, -1), y))
    assert h3.loss == h2.loss and h3.val_loss == h2.val_loss
    for a, b in zip(nets[0].layers, nets[1].layers):
        for name, p in a.params().items():
            np.testing.assert_array_equal(p, b.params()[name])
    assert nets[0].evaluate(X, y, loss="cross_entropy") == \
        nets[1].evaluate(X.reshape(40, -1), y, loss="cross_entropy")


def test_flatten_backward_gives_the_input_shape(backend, rng):
    net = Network([Flatten(), Dense(6, 4), Tanh(), Dense(4, 2)], backend=backend, seed=2)
    X = rng.standard_normal((5, 2, 3))
    out = net.forward(X)
    dX = net.backward(np.ones_like(out))
    assert dX.shape == (5, 2, 3)
    net.forward(X.reshape(5, 6))
    np.testing.assert_array_equal(dX.reshape(5, 6), net.backward(np.ones_like(out)))


def test_flatten_layer_on_its_own(ops, rng):
    layer = Flatten()
    layer.build(12, ops, np.dtype(np.float64), np.random.default_rng(0))
    X = rng.standard_normal((2, 3, 4))
    Y = layer.forward(X)
    assert Y.shape == (2, 12) and Y.flags.c_contiguous
    np.testing.assert_array_equal(Y, X.reshape(2, 12))
    dX = layer.backward(np.arange(24.0).reshape(2, 12))
    np.testing.assert_array_equal(dX, np.arange(24.0).reshape(2, 3, 4))
    np.testing.assert_array_equal(layer.forward(Y), Y)        # 2-D: the identity
    with pytest.raises(ValueError, match="expects"):
        layer.forward(np.ones(3))
    with pytest.raises(RuntimeError, match="before forward"):
        fresh = Flatten()
        fresh.build(1, ops, np.dtype(np.float64), np.random.default_rng(0))
        fresh.backward(np.ones((1, 1)))


def test_flatten_after_dense_is_the_identity(backend, rng):
    net = Network([Dense(3, 4), Flatten(), Sigmoid(), Dense(4, 2)], backend=backend, seed=0)
    plain = Network([Dense(3, 4), Sigmoid(), Dense(4, 2)], backend=backend, seed=0)
    X = rng.standard_normal((5, 3))
    np.testing.assert_allclose(net.predict(X), plain.predict(X), rtol=1e-15, atol=1e-15)
    with pytest.raises(ValueError, match="must be 2-D"):     # no Flatten before a Dense
        net.predict(rng.standard_normal((5, 3, 1)))


@pytest.mark.parametrize("X, words", [
    (np.zeros((4, 28, 27)), r"X has shape \(4, 28, 27\), 756 values per sample once flattened, "
                            "but the network expects 784"),
    (np.zeros((4, 10)), "X has 10 features per sample"),
    (np.zeros(10), r"X has shape \(10,\): one sample needs 784 values"),
])
def test_flatten_wrong_sizes_are_named(backend, X, words):
    with pytest.raises(ValueError, match=words):
        _mnist_like(backend).predict(X)


def test_softmax_before_a_leading_flatten_is_refused():
    with pytest.raises(ValueError, match="put it after the Flatten"):
        Network([Softmax(), Flatten(), Dense(4, 2)])
    Network([Dropout(0.1), Flatten(), Dense(4, 2)])     # elementwise before it: fine


def test_flatten_save_load(backend, rng, tmp_path):
    net = _mnist_like(backend)
    net.save(tmp_path / "net.npz")
    back = Network.load(tmp_path / "net.npz", backend=backend)
    assert repr(back.layers[0]) == "Flatten()"
    X = _images(rng, 3)
    np.testing.assert_array_equal(back.predict(X), net.predict(X))


@needs_torch
def test_flatten_matches_pytorch(backend, rng):
    nn = torch.nn
    net = _mnist_like(backend)
    model = net.to_torch()
    assert type(model[0]) is nn.Flatten and model[0].start_dim == 1
    X = _images(rng, 5)
    np.testing.assert_allclose(model(torch.from_numpy(X)).detach().numpy(), net.predict(X),
                               rtol=1e-12, atol=1e-13)
    back = Network.from_torch(model, backend=backend)
    assert isinstance(back.layers[0], Flatten)
    np.testing.assert_array_equal(back.predict(X), net.predict(X))
    # training: the same trained weights from (n, 28, 28) images
    y = rng.integers(0, 10, 5)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        opt.zero_grad()
        value = nn.CrossEntropyLoss()(model(torch.from_numpy(X)), torch.from_numpy(y))
        value.backward()
        opt.step()
    net.fit(X, y, loss="cross_entropy", optimizer=SGD(lr=0.1, momentum=0.9), epochs=3,
            shuffle=False)
    np.testing.assert_allclose(net.layers[1].W, model[1].weight.detach().numpy().T,
                               rtol=1e-9, atol=1e-12)
    # and d loss / d input in the images' shape, as torch's
    Xt = torch.from_numpy(X).requires_grad_(True)
    model(Xt).sum().backward()
    out = net.forward(X)
    np.testing.assert_allclose(net.backward(np.ones_like(out)), Xt.grad.numpy(),
                               rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------- one sample
def test_one_sample_in_one_out(backend, rng):
    net = Network([Dense(3, 5), Tanh(), Dense(5, 2)], backend=backend, seed=1)
    x = rng.standard_normal(3)
    row = net.predict(x[None, :])
    for got in (net.predict(x), net(x), net.predict(x.tolist())):
        assert got.shape == (2,)
        np.testing.assert_array_equal(got, row[0])
    out = net.forward(x)
    assert out.shape == (2,)
    dx = net.backward(np.ones(2))
    assert dx.shape == (3,)
    net.forward(x[None, :])
    np.testing.assert_array_equal(dx, net.backward(np.ones((1, 2)))[0])


def test_one_sample_wrong_shapes(backend):
    net = Network([Dense(3, 2)], backend=backend, seed=0)
    with pytest.raises(ValueError, match=r"X has shape \(4,\): one sample needs 3 values"):
        net.predict(np.zeros(4))
    net.forward(np.zeros(3))
    with pytest.raises(ValueError, match=r"grad has shape \(1, 2\) but the last forward "
                                         r"output has shape \(2,\)"):
        net.backward(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="must be 2-D"):     # fit takes a 2-D X only
        net.fit(np.zeros(3), np.zeros(2), loss="mse", optimizer="sgd")


def test_one_sample_through_flatten(backend, rng):
    net = _mnist_like(backend)
    x = rng.random(784)
    out = net.predict(x)
    assert out.shape == (10,)
    np.testing.assert_array_equal(out, net.predict(x.reshape(1, 28, 28))[0])


@needs_torch
def test_one_sample_matches_nn_linear(backend, rng):
    net = Network([Dense(4, 3), Sigmoid(), Dense(3, 2)], backend=backend, seed=0)
    model = net.to_torch()
    x = rng.standard_normal(4)
    theirs = model(torch.from_numpy(x)).detach().numpy()
    assert theirs.shape == net.predict(x).shape == (2,)
    np.testing.assert_allclose(net.predict(x), theirs, rtol=1e-12, atol=1e-14)


def test_a_network_pickled_before_these_features_still_predicts(backend, rng):
    net = Network([Dense(3, 2)], backend=backend, seed=0)
    state = net.__getstate__()
    del state["_flattens_input"], state["_last_input_shape"]   # as an older fastnn pickled it
    old = Network.__new__(Network)
    old.__setstate__(state)
    x = rng.standard_normal(3)
    np.testing.assert_array_equal(old.predict(x), net.predict(x))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(net)).predict(x), net.predict(x))
