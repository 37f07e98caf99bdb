"""Whole training runs: the compiled backend's native loop against the reference loop.

Why it is built this way: ``fit`` on the compiled backend runs batches in C
(csrc/train.c) while the reference runs the readable Python loop of
``fastnn.training``; the two must give the same weights and losses for
every activation, loss and optimizer, with dropout and shuffling, in both
dtypes, and the C loop's results must not depend on how its work is cut into
calls or on the thread count.
"""

import numpy as np
import pytest

import fastnn
from fastnn.backends import available_backends
from fastnn.training import _stage

pytestmark = pytest.mark.skipif("cython" not in available_backends(),
                                reason="the compiled backend is not built")

#: Relative to the largest weight, after 20 steps.  float64: the issue's 1e-10
#: (seen: 3e-15).  float32: ~1e-6 per step compounds, and Adam's sqrt(v)
#: amplifies the rounding of tiny second moments (seen: 1.5e-5).
FIT_RTOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 5e-5}

ACTIVATIONS = {
    "relu": lambda: [fastnn.ReLU()],
    "leaky_relu": lambda: [fastnn.LeakyReLU(0.1)],
    "silu": lambda: [fastnn.SiLU()],
    "tanh": lambda: [fastnn.Tanh()],
    "sigmoid": lambda: [fastnn.Sigmoid()],
    "softmax": lambda: [fastnn.Softmax()],
    "identity+tanh": lambda: [fastnn.Identity(), fastnn.Tanh()],
}
OPTIMIZERS = {
    "adam": lambda: fastnn.Adam(lr=0.01, weight_decay=0.01),
    "sgd-nesterov": lambda: fastnn.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "sgd": lambda: fastnn.SGD(lr=0.1),
}


def _data(loss):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 6))
    y = {"labels": rng.integers(0, 3, 50), "probs": rng.dirichlet(np.ones(3), 50),
         "bce": rng.integers(0, 2, (50, 1)).astype(float),
         "mse": rng.standard_normal((50, 3))}[loss]
    return X, y


def _network(backend, dtype, activation, loss, dropout=0.3):
    width = 1 if loss == "bce" else 3
    layers = [fastnn.Dense(6, 8), *ACTIVATIONS[activation](), fastnn.Dropout(dropout),
              fastnn.Dense(8, width)]
    if loss == "bce":
        layers.append(fastnn.Sigmoid())
    return fastnn.Network(layers, seed=5, backend=backend, dtype=dtype)


def _fit_both(dtype, activation, loss, optimizer, **kw):
    X, y = _data(loss)
    loss_name = {"labels": "cross_entropy", "probs": "cross_entropy"}.get(loss, loss)
    nets, histories = [], []
    for backend in ("numpy", "cython"):
        net = _network(backend, dtype, activation, loss)
        histories.append(net.fit(X, y, loss=loss_name, optimizer=OPTIMIZERS[optimizer](),
                                 epochs=5, batch_size=16, seed=1, **kw))
        nets.append(net)
    return nets, histories


def _assert_same_weights(a, b, rtol):
    for (key, p, _), (_, q, _) in zip(a.parameters(), b.parameters()):
        np.testing.assert_allclose(q, p, rtol=rtol, atol=rtol * np.abs(p).max(), err_msg=key)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("loss", ["labels", "probs", "bce", "mse"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_fit_matches_reference(dtype, activation, loss, optimizer):
    (ref, native), (h_ref, h_native) = _fit_both(np.dtype(dtype), activation, loss, optimizer)
    rtol = FIT_RTOL[np.dtype(dtype)]
    _assert_same_weights(ref, native, rtol)
    np.testing.assert_allclose(h_native.loss, h_ref.loss, rtol=rtol)
    # the dropout stream advanced by one step per batch on both
    assert ref.layers[-2 if loss != "bce" else -3].step == native.layers[-2 if loss != "bce" else -3].step == 20


def test_fit_full_batch_unshuffled_and_sum_reduction():
    X, y = fastnn.datasets.xor()
    nets = [fastnn.Network([fastnn.Dense(2, 4), fastnn.Sigmoid(), fastnn.Dense(4, 1),
                            fastnn.Sigmoid()], seed=1, backend=b) for b in ("numpy", "cython")]
    hs = [net.fit(X, y, loss=fastnn.MSELoss(reduction="sum"), optimizer=fastnn.SGD(lr=0.5),
                  epochs=300, shuffle=False) for net in nets]
    _assert_same_weights(*nets, 1e-10)
    np.testing.assert_allclose(hs[1].loss, hs[0].loss, rtol=1e-10)


def test_fit_without_bias_and_with_validation():
    X, y = _data("labels")
    nets, hs = [], []
    for b in ("numpy", "cython"):
        net = fastnn.Network([fastnn.Dense(6, 5, bias=False), fastnn.Tanh(),
                              fastnn.Dense(5, 3, bias=False)], seed=2, backend=b)
        hs.append(net.fit(X, y, loss="cross_entropy", optimizer="adam", epochs=3, batch_size=7,
                          validation_data=(X[:10], y[:10])))
        nets.append(net)
    _assert_same_weights(*nets, 1e-10)
    np.testing.assert_allclose(hs[1].val_loss, hs[0].val_loss, rtol=1e-10)


def test_optimizer_state_carries_over_between_fits():
    """Two fits of 2 epochs equal one fit of 4 (Adam's moments and step are kept)."""
    X, y = _data("labels")
    nets = [_network("cython", np.float64, "relu", "labels", dropout=0.0) for _ in range(2)]
    opts = [fastnn.Adam(lr=0.01), fastnn.Adam(lr=0.01)]
    nets[0].fit(X, y, loss="cross_entropy", optimizer=opts[0], epochs=4, batch_size=16,
                shuffle=False)
    for _ in range(2):
        nets[1].fit(X, y, loss="cross_entropy", optimizer=opts[1], epochs=2, batch_size=16,
                    shuffle=False)
    for (_, p, _), (_, q, _) in zip(nets[0].parameters(), nets[1].parameters()):
        np.testing.assert_array_equal(p, q)
    assert {st["step"] for st in opts[1].state.values()} == {16}


def _trainer(net, X, y, batch):
    opt = fastnn.SGD(lr=0.05, momentum=0.9)
    for layer in net.layers:
        if isinstance(layer, fastnn.Dense):
            layer.dW, layer.db = np.zeros_like(layer.W), np.zeros_like(layer.b)
    spec, states = opt.native_spec(net)
    stages = [_stage(net, layer, act, states) for layer, act in net._plan]
    return net.ops.make_trainer(stages, "cross_entropy", "mean", spec, X, y, batch)


def test_native_loop_does_not_depend_on_how_calls_are_cut():
    """One batch per call gives the same bits as all epochs in one call."""
    X, y = _data("labels")
    orders = np.stack([np.random.default_rng(e).permutation(50) for e in range(3)])
    results = []
    for max_batches in (1000, 1, 3):
        net = _network("cython", np.float64, "silu", "labels")
        trainer = _trainer(net, X, y, 16)
        losses = np.zeros(3)
        epoch = start = 0
        while epoch < 3:
            epoch, start = trainer.run(orders, epoch, start, max_batches, losses)
        trainer.close()
        results.append((losses, [p.copy() for _, p, _ in net.parameters()]))
    for losses, params in results[1:]:
        np.testing.assert_array_equal(losses, results[0][0])
        for p, q in zip(params, results[0][1]):
            np.testing.assert_array_equal(p, q)


def test_native_fit_bit_identical_for_one_and_two_threads():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((256, 300))
    y = rng.integers(0, 10, 256)
    before = fastnn.get_num_threads()
    weights = []
    try:
        for threads in (1, 2):
            fastnn.set_num_threads(threads)
            net = fastnn.Network([fastnn.Dense(300, 200), fastnn.ReLU(), fastnn.Dense(200, 10)],
                                 seed=0, backend="cython")
            net.fit(X, y, loss="cross_entropy", optimizer=fastnn.SGD(lr=0.01, momentum=0.9),
                    epochs=2, batch_size=64, seed=0)
            weights.append([p.copy() for _, p, _ in net.parameters()])
    finally:
        fastnn.set_num_threads(before)
    for p, q in zip(*weights):
        np.testing.assert_array_equal(p, q)


def test_trainer_rejects_bad_arrays():
    X, y = _data("labels")
    net = _network("cython", np.float64, "relu", "labels")
    trainer = _trainer(net, X, y, 16)
    with pytest.raises(ValueError, match="orders must"):
        trainer.run(np.zeros((1, 49), dtype=np.int64), 0, 0, 1, np.zeros(1))
    with pytest.raises(ValueError, match=r"sample indices in \[0, 50\)"):
        trainer.run(np.full((1, 50), 50, dtype=np.int64), 0, 0, 1, np.zeros(1))
    trainer.close()
    with pytest.raises(RuntimeError, match="closed"):
        trainer.run(None, 0, 0, 1, np.zeros(1))
    with pytest.raises(ValueError, match="class labels must lie in"):
        _trainer(_network("cython", np.float64, "relu", "labels"), X, y + 3, 16)


def test_divergence_stops_fit_with_the_last_finite_weights():
    """A learning rate that blows the loss up makes fit raise an error naming the
    epoch, before the update of the batch whose loss is not finite: the weights
    stay finite, the same on both backends."""
    X, y = _data("mse")
    X = X * 100.0
    nets = {}
    for b in ("numpy", "cython"):
        net = fastnn.Network([fastnn.Dense(6, 8), fastnn.ReLU(), fastnn.Dense(8, 3)], seed=0,
                             backend=b)
        with pytest.raises(FloatingPointError, match=r"diverged in epoch \d+"), \
                np.errstate(over="ignore", invalid="ignore"):
            net.fit(X, y, loss="mse", optimizer=fastnn.SGD(lr=1.0), epochs=50, batch_size=10,
                    shuffle=False)
        for _, p, _ in net.parameters():
            assert np.isfinite(p).all()
        nets[b] = net
    _assert_same_weights(nets["numpy"], nets["cython"], 1e-10)
    with pytest.raises(FloatingPointError, match="diverged in epoch 1:"):
        nets["cython"].fit(X, y, loss="mse", optimizer=fastnn.SGD(lr=1.0), epochs=1,
                           batch_size=10, shuffle=False)
