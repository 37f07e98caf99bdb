"""The one fit driver: both backends' trainers keep the same contract.

Why it is built this way: ``fit`` has one loop (``fastnn.training._drive``)
over a trainer -- the compiled backend's native one or the reference
``PythonTrainer`` -- that runs ``run(orders, epoch, start, max_batches,
losses)`` from a batch position and is closed at the end.  These tests hold
the Python trainer to that contract (positions, how calls are cut, the
all-or-nothing update), check that fit on the reference backend goes through
it, and that the scikit-learn estimators' stopping rule observes one fit
instead of calling fit again and again.
"""

import numpy as np
import pytest

import fastnn
from fastnn import training
from fastnn.backends import available_backends

from tests_conftest import tol


def _net(backend, dtype=np.float64):
    return fastnn.Network([fastnn.Dense(6, 8), fastnn.SiLU(), fastnn.Dropout(0.2),
                           fastnn.Dense(8, 3)], seed=3, backend=backend, dtype=dtype)


def _data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((50, 6)), rng.integers(0, 3, 50)


def _trainer(net, X, y, batch=16, opt=None):
    loss = fastnn.CrossEntropyLoss()
    Xc, T = net._check_data(X, y, loss)
    with training._StopOnInterrupt() as interrupt:
        pass                                    # a guard that never trips
    return training._make_trainer(net, Xc, T, loss, opt or fastnn.SGD(0.05, momentum=0.9),
                                  batch, interrupt)


def _run(trainer, orders, epochs, max_batches):
    losses = np.zeros(epochs)
    epoch = start = 0
    positions = []
    while epoch < epochs:
        epoch, start = trainer.run(orders, epoch, start, max_batches, losses)
        positions.append((epoch, start))
    trainer.close()
    return losses, positions


def test_reference_trainer_is_the_python_trainer():
    X, y = _data()
    assert isinstance(_trainer(_net("numpy"), X, y), training.PythonTrainer)


def test_python_trainer_does_not_depend_on_how_calls_are_cut():
    X, y = _data()
    orders = np.stack([np.random.default_rng(e).permutation(50) for e in range(3)])
    results = []
    for max_batches in (1000, 1, 3):
        net = _net("numpy")
        losses, positions = _run(_trainer(net, X, y), orders, 3, max_batches)
        results.append((losses, [p.copy() for _, p, _ in net.parameters()], positions))
    assert results[1][2][:5] == [(0, 16), (0, 32), (0, 48), (1, 0), (1, 16)]
    assert results[2][2][:2] == [(0, 48), (1, 32)]
    for losses, params, _ in results[1:]:
        np.testing.assert_array_equal(losses, results[0][0])
        for p, q in zip(params, results[0][1]):
            np.testing.assert_array_equal(p, q)


@pytest.mark.skipif("cython" not in available_backends(), reason="no compiled backend")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_python_and_native_trainers_keep_the_same_positions_and_numbers(dtype):
    X, y = _data()
    orders = np.stack([np.random.default_rng(e).permutation(50) for e in range(2)])
    runs = []
    for backend in ("numpy", "cython"):
        net = _net(backend, dtype)
        losses, positions = _run(_trainer(net, X, y), orders, 2, 1)
        runs.append((losses, positions, net))
    (l0, p0, n0), (l1, p1, n1) = runs
    assert p0 == p1
    np.testing.assert_allclose(l1, l0, rtol=1e-10 if dtype == np.float64 else 5e-5)
    assert [layer.step for layer in n0.layers if isinstance(layer, fastnn.Dropout)] == \
        [layer.step for layer in n1.layers if isinstance(layer, fastnn.Dropout)] == [8]
    for (_, p, _), (_, q, _) in zip(n0.parameters(), n1.parameters()):
        np.testing.assert_allclose(q, p, rtol=1e-9 if dtype == np.float64 else 5e-4,
                                   atol=tol(dtype)["atol"])


def test_python_trainer_refuses_a_diverging_batch_whole():
    X, y = _data()
    net = _net("numpy")
    net.layers[0].W[0, 0] = np.inf
    before = [p.copy() for _, p, _ in net.parameters()]
    trainer = _trainer(net, X, y)
    with pytest.raises(FloatingPointError) as info:
        trainer.run(None, 0, 0, 10, np.zeros(1))
    assert info.value.args[1] == 0              # the epoch, as the compiled trainer says it
    for (_, p, _), q in zip(net.parameters(), before):
        np.testing.assert_array_equal(p, q)


def test_fit_on_the_reference_backend_runs_the_python_trainer(monkeypatch):
    calls = []
    real = training.PythonTrainer.run

    def run(self, *args):
        calls.append(args[1:3])
        return real(self, *args)

    monkeypatch.setattr(training.PythonTrainer, "run", run)
    X, y = _data()
    net = _net("numpy")
    history = net.fit(X, y, loss="cross_entropy", optimizer="adam", epochs=3, batch_size=16,
                      validation_data=(X[:10], y[:10]))
    assert calls and calls[0] == (0, 0)
    assert len(history.val_loss) == 3


def test_scikit_learn_stopping_observes_one_fit(monkeypatch):
    pytest.importorskip("sklearn")
    from fastnn.sklearn import MLPRegressor
    calls = []
    real = training.fit

    def fit(*args, **kwargs):
        calls.append(kwargs["epochs"])
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "fit", fit)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    y = X @ [1.0, -2.0, 0.5]
    reg = MLPRegressor(hidden_layer_sizes=(5,), max_iter=200, n_iter_no_change=3, tol=1e-2,
                       random_state=0, backend="numpy")
    reg.fit(X, y)
    assert calls == [200]                   # one fit; its observer stopped it
    assert reg.n_iter_ < 200 and len(reg.loss_curve_) == reg.n_iter_
