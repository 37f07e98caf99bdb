"""The native trainer's tiny path: a small network's batch in one fused pass, same bits.

Why it is built this way: for a network like XOR's a batch is a few hundred
multiply-adds, and the general path spent most of its time setting kernels up
(a validated GEMM call per product, the update's thread pool and vector
loops).  The tiny path (csrc/train_impl.h, ``tiny_batch``) runs the same
arithmetic in the same order without that set-up: the tiniest products
written out element by element (``fastnn_internal_gemm_tiny``, which must
give the direct GEMM kernels' bits: fused multiply-adds on AVX2 and AVX-512,
a product and a sum on the portable kernels), the others through the GEMM,
and the update's dry run and write on the calling thread.  So the test is
exact: for every instruction set, both dtypes and a spread of networks,
losses and optimizers, a fit on the tiny path must leave the very bits a fit
on the general path leaves (``Trainer.tiny = False``) -- the parameters, the
optimizer state, the losses, and where a run diverges, the batch it stops at.
"""

import numpy as np
import pytest

import fastnn
from fastnn import training

co = pytest.importorskip("fastnn.backends.cython_ops",
                         reason="the compiled backend is not built")

DTYPES = (np.float32, np.float64)


@pytest.fixture(params=co.supported_isas())
def isa(request):
    """Every instruction set this machine runs, in turn (the default back after)."""
    before = co.get_isa()
    co.set_isa(request.param)
    yield request.param
    co.set_isa(before)


def _dense(n_in, n_out, bias=True):
    return fastnn.Dense(n_in, n_out, bias=bias)


# (name, layers, loss, optimizer, batch, rows, targets): small networks the tiny
# path takes, with every stage kind and activation it may meet, bias or none,
# batches that leave a partial last one, and each optimizer mode
NETWORKS = {
    "xor": (lambda: [_dense(2, 4), fastnn.Sigmoid(), _dense(4, 1), fastnn.Sigmoid()],
            "mse", lambda: fastnn.SGD(lr=0.5), None, 4, "values"),
    "weight_height": (lambda: [_dense(2, 2), fastnn.Sigmoid(), _dense(2, 1), fastnn.Sigmoid()],
                      "mse", lambda: fastnn.SGD(lr=0.1), 1, 4, "values"),
    "no_bias_tanh": (lambda: [_dense(3, 5, bias=False), fastnn.Tanh(), _dense(5, 2, bias=False)],
                     "mse", lambda: fastnn.SGD(lr=0.05, momentum=0.9, nesterov=True,
                                               weight_decay=1e-3), 3, 10, "values"),
    "labels_adam": (lambda: [_dense(4, 8), fastnn.ReLU(), _dense(8, 3)],
                    "cross_entropy", lambda: fastnn.Adam(lr=0.01, weight_decay=1e-4), 5, 17,
                    "labels"),
    "probs_leaky": (lambda: [_dense(3, 6), fastnn.LeakyReLU(0.2), _dense(6, 3)],
                    "cross_entropy", lambda: fastnn.SGD(lr=0.1, momentum=0.5), 4, 9, "probs"),
    "softmax_stage_bce": (lambda: [_dense(5, 4), fastnn.SiLU(), _dense(4, 3), fastnn.Softmax()],
                          "bce", lambda: fastnn.SGD(lr=0.2), 6, 13, "binary"),
    "softplus_gelu": (lambda: [_dense(3, 5), fastnn.Softplus(beta=2.0, threshold=1.5),
                               _dense(5, 4), fastnn.GELU(approximate="tanh"), _dense(4, 2)],
                      "mse", lambda: fastnn.SGD(lr=0.05, momentum=0.9), 4, 11, "values"),
    "smoothed_weighted_ce": (lambda: [_dense(3, 4), fastnn.ELU(), _dense(4, 3)],
                          fastnn.CrossEntropyLoss(weight=np.array([1.0, 2.0, 0.5]),
                                                  label_smoothing=0.1),
                          lambda: fastnn.Adam(lr=0.02), 4, 10, "labels"),
    "huber": (lambda: [_dense(2, 3), fastnn.Tanh(), _dense(3, 2)], fastnn.HuberLoss(delta=0.5),
              lambda: fastnn.SGD(lr=0.1), 3, 8, "values"),
    "rmsprop_centered": (lambda: [_dense(3, 4), fastnn.Tanh(), _dense(4, 2)], "mse",
                         lambda: fastnn.RMSprop(lr=0.01, momentum=0.9, centered=True,
                                                weight_decay=1e-3), 4, 9, "values"),
    "rmsprop": (lambda: [_dense(3, 4), fastnn.ReLU(), _dense(4, 3)], "cross_entropy",
                lambda: fastnn.RMSprop(lr=0.01), 4, 9, "labels"),
    "rmsprop_centered_only": (lambda: [_dense(3, 4), fastnn.Sigmoid(), _dense(4, 1)], "mse",
                              lambda: fastnn.RMSprop(lr=0.01, centered=True), 3, 7,
                              "values"),
    "adamw_amsgrad": (lambda: [_dense(2, 5), fastnn.GELU(), _dense(5, 2)], "mse",
                      lambda: fastnn.AdamW(lr=0.01, amsgrad=True), 2, 6, "values"),
    "adagrad": (lambda: [_dense(4, 6), fastnn.ReLU(), _dense(6, 3)], "cross_entropy",
                lambda: fastnn.Adagrad(lr=0.05, lr_decay=0.01, weight_decay=1e-3,
                                       initial_accumulator_value=0.1), 5, 12, "labels"),
    "deep_sum": (lambda: [_dense(2, 8), fastnn.Sigmoid(), _dense(8, 8), fastnn.Tanh(),
                          _dense(8, 1)],
                 fastnn.MSELoss(reduction="sum"), lambda: fastnn.Adam(lr=0.005), 2, 7,
                 "values"),
    # scikit-learn's losses (fastnn.sklearn's rows)
    "sk_squared_error": (lambda: [_dense(3, 4), fastnn.ReLU(), _dense(4, 2)],
                         fastnn.losses._SklearnSquaredError(),
                         lambda: fastnn.optimizers._SklearnSGD(lr=0.05), 4, 9, "values"),
    "sk_logistic": (lambda: [_dense(3, 4), fastnn.Tanh(), _dense(4, 3)],
                    fastnn.losses._SklearnLogistic(),
                    lambda: fastnn.optimizers._SklearnAdam(lr=0.01), 4, 10, "binary"),
    "sk_softmax": (lambda: [_dense(4, 5), fastnn.Sigmoid(), _dense(5, 3)],
                   fastnn.losses._SklearnSoftmax(reduction="sum"),
                   lambda: fastnn.optimizers._SklearnSGD(lr=0.05, nesterov=False), 5, 12,
                   "labels"),
}


def _data(rows, n_in, n_out, kind, dtype, rng):
    X = rng.standard_normal((rows, n_in)).astype(dtype)
    if kind == "labels":
        return X, rng.integers(0, n_out, rows)
    if kind == "probs":
        p = rng.random((rows, n_out))
        return X, (p / p.sum(axis=1, keepdims=True)).astype(dtype)
    if kind == "binary":
        return X, (rng.random((rows, n_out)) > 0.5).astype(dtype)
    return X, rng.standard_normal((rows, n_out)).astype(dtype)


def _fit(name, dtype, tiny, epochs=6, lr_scale=1.0, shuffle=True, weighted=False,
         clip=None, one_cycle=False):
    """A fit of NETWORKS[name] through the native trainer, on the tiny path or not
    (with random sample weights when ``weighted``): the parameters, the optimizer's
    state, the epoch losses and how it ended."""
    layers, loss, optimizer, batch, rows, kind = NETWORKS[name]
    layers = layers()
    net = fastnn.Network(layers, backend="cython", dtype=dtype, seed=1)
    n_in, n_out = layers[0].W.shape[0], [l for l in layers if hasattr(l, "W")][-1].W.shape[1]
    rng = np.random.default_rng(2)
    X, y = _data(rows, n_in, n_out, kind, dtype, rng)
    opt = optimizer()
    opt.lr *= lr_scale
    loss = fastnn.losses.get_loss(loss)
    Xc, T = net._check_data(X, y, loss)
    weights = rng.random(rows) + 0.5 if weighted else None
    clipping = training._Clipping(*clip) if clip else training._Clipping()
    schedule = None
    if one_cycle:                 # per-batch learning rates (and momentum or beta1)
        cycles = hasattr(opt, "momentum") or hasattr(opt, "betas")
        scheduler = fastnn.schedules.OneCycleLR(max_lr=0.05, total_steps=200,
                                                cycle_momentum=cycles)
        scheduler.bind(opt)
        schedule = training._Schedule(scheduler, epochs * -(-rows // (batch or rows)))
    trainer = training._make_trainer(net, Xc, T, loss, opt, batch or rows, None, weights,
                                     clipping, schedule)
    assert isinstance(trainer, training._NativeTrainer)
    trainer.trainer.tiny = tiny
    assert trainer.trainer.tiny == tiny          # the network fits the tiny path
    orders = (np.stack([rng.permutation(rows) for _ in range(epochs)]) if shuffle else None)
    losses = np.zeros(epochs)
    try:
        trainer.run(orders, 0, 0, 10**6, losses)
        ended = "done"
    except FloatingPointError as e:
        ended = ("diverged", e.args[1])
    checks = trainer.trainer.exact_checks
    trainer.close()
    params = [p.copy() for _, p, _ in net.parameters()]
    state = {(key, name): np.array(value, copy=True)   # SGD's velocity; Adam's m, v, step
             for key, entry in opt.state.items()
             for name, value in (entry.items() if isinstance(entry, dict) else [("v", entry)])}
    return params, state, losses, ended, checks


# (sample weights; gradient clipping by norm, by value or both; a per-batch schedule)
VARIANTS = {"plain": {}, "weighted": {"weighted": True}, "clip_norm": {"clip": (0.05, None)},
            "clip_both": {"clip": (0.05, 0.01)}, "one_cycle": {"one_cycle": True}}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_the_tiny_path_gives_the_general_paths_bits(name, dtype, variant, isa):
    tiny = _fit(name, dtype, True, **VARIANTS[variant])
    general = _fit(name, dtype, False, **VARIANTS[variant])
    for a, b in zip(tiny[0], general[0]):
        np.testing.assert_array_equal(a, b)
    assert tiny[1].keys() == general[1].keys()
    for key in tiny[1]:
        np.testing.assert_array_equal(tiny[1][key], general[1][key], err_msg=str(key))
    np.testing.assert_array_equal(tiny[2], general[2])
    assert tiny[3] == general[3] == "done"
    assert tiny[4] == general[4]                 # every update checked by its dry run
    assert all(np.isfinite(p).all() for p in tiny[0])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_a_diverging_tiny_fit_stops_where_the_general_path_stops(dtype, isa):
    """A learning rate that blows the weights up: both paths refuse the same batch
    and leave the same finite weights, those of the last good batch."""
    tiny = _fit("no_bias_tanh", dtype, True, epochs=400, lr_scale=4e3, shuffle=False)
    general = _fit("no_bias_tanh", dtype, False, epochs=400, lr_scale=4e3, shuffle=False)
    assert tiny[3][0] == "diverged" and tiny[3] == general[3]
    for a, b in zip(tiny[0], general[0]):
        assert np.isfinite(a).all()
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(tiny[2], general[2])


def _trainer(layers, rows, batch, dtype=np.float64):
    net = fastnn.Network(layers, backend="cython", dtype=dtype, seed=0)
    X = np.zeros((rows, layers[0].W.shape[0]), dtype)
    y = np.zeros((rows, [l for l in layers if hasattr(l, "W")][-1].W.shape[1]), dtype)
    loss = fastnn.MSELoss()
    Xc, T = net._check_data(X, y, loss)
    return training._make_trainer(net, Xc, T, loss, fastnn.SGD(lr=0.1), batch, None)


@pytest.mark.parametrize("layers, rows, batch, tiny", [
    (lambda: [_dense(2, 4), fastnn.Sigmoid(), _dense(4, 1)], 4, 4, True),
    (lambda: [_dense(64, 32), fastnn.ReLU(), _dense(32, 10)], 64, 32, True),
    # a dropout stage: the general path
    (lambda: [_dense(2, 4), fastnn.Dropout(0.5), _dense(4, 1)], 4, 4, False),
    # 4096 parameters and more: the general path, whose updates are proved finite
    (lambda: [_dense(40, 100), _dense(100, 1)], 16, 4, False),
    # a batch's stage output beyond 16384 values: the general path (its passes split)
    (lambda: [_dense(2, 64), fastnn.ReLU(), _dense(64, 1)], 300, 300, False),
], ids=["xor", "digits", "dropout", "proved", "wide-batch"])
def test_which_networks_take_the_tiny_path(layers, rows, batch, tiny):
    trainer = _trainer(layers(), rows, batch)
    assert trainer.trainer.tiny == tiny
    trainer.trainer.tiny = True                  # asking cannot make a network fit
    assert trainer.trainer.tiny == tiny
    trainer.close()
