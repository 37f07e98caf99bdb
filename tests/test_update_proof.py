"""The native trainer's proof that an update stays finite, which lets it skip the dry run.

Why it is built this way: a batch's update is applied only when every new
parameter and optimizer state value is finite.  The native trainer used to
check that with a dry run of every update (a second pass over all the
parameters, gradients and state, each batch); now it first tries to prove it
from a few numbers -- bounds on the parameters and state (measured by the
last update that needed the dry run, then carried forward by each proof) and
a bound on the batch's gradients from its inputs and dZ (csrc/optim_impl.h,
``*_safe``) -- and runs the dry run only when the proof fails.  A wrong proof would let a
non-finite value in, so the proof is tested on its own, against the
reference's arithmetic, over values from tiny to the edge of overflow; and
the trainer is tested to use it (``Trainer.exact_checks``), and to fall back
to the dry run where it must, with the reference's results either way.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastnn
from fastnn import training
from fastnn.backends import numpy_ops
from tests_conftest import tol  # noqa: E402 (conftest.py registers the name)

co = pytest.importorskip("fastnn.backends.cython_ops",
                         reason="the compiled backend is not built")

DTYPES = (np.float32, np.float64)


#: the optimizers of the table and their flags that switch state arrays on
NAMES = ["sgd", "adam", "adamw", "rmsprop", "adagrad", "sk_sgd", "sk_adam"]


def _hypers(name, lr, beta1, beta2, eps, weight_decay, momentum, nesterov, amsgrad=False,
            alpha=0.99, centered=False, lr_decay=0.0):
    if name == "sgd":
        return {"lr": lr, "momentum": momentum, "weight_decay": weight_decay,
                "nesterov": float(nesterov)}
    if name == "rmsprop":
        return {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay,
                "momentum": momentum, "centered": float(centered)}
    if name == "adagrad":
        return {"lr": lr, "lr_decay": lr_decay, "weight_decay": weight_decay, "eps": eps}
    if name == "sk_sgd":
        return {"lr": lr, "momentum": momentum, "nesterov": float(nesterov)}
    if name == "sk_adam":
        return {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps}
    return {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps, "weight_decay": weight_decay,
            "amsgrad": float(amsgrad)}


#: per optimizer, the state arrays that hold squares (never negative once written)
SQUARES = {"sgd": (), "adam": (1, 2), "adamw": (1, 2), "rmsprop": (0,), "adagrad": (0,),
           "sk_sgd": (), "sk_adam": (1,)}


def _used(name, hypers):
    """Which of the row's state arrays these hyper-parameters use."""
    if name == "sgd":
        return [hypers["momentum"] != 0]
    if name == "rmsprop":
        return [True, hypers["momentum"] != 0, hypers["centered"] != 0]
    if name in ("adagrad", "sk_sgd"):
        return [True]
    if name == "sk_adam":
        return [True, True]
    return [True, True, hypers["amsgrad"] != 0]


def _arrays(rng, dtype, size, exponent, n_state, name, signed=False):
    """param, grad and state arrays of magnitudes about 10**exponent (per array);
    beyond the dtype's range some values are infinite.  The squares the optimizer
    keeps (Adam's v, RMSprop's square_avg, ...) are made >= 0 unless ``signed``."""
    def draw(e):
        with np.errstate(over="ignore"):
            return (rng.standard_normal(size) * 10.0 ** e).astype(dtype)
    param, grad = draw(exponent[0]), draw(exponent[1])
    states = [draw(exponent[min(2 + j, len(exponent) - 1)]) for j in range(n_state)]
    if not signed:
        for j in SQUARES[name]:
            if j < n_state:
                states[j] = np.abs(states[j])  # a square the optimizer wrote
    return param, grad, states


def _reference_update(name, param, grad, states, hypers, step):
    """The reference's new parameter and state arrays (the inputs left alone)."""
    p, s = param.copy(), [None if x is None else x.copy() for x in states]
    with np.errstate(all="ignore"):
        numpy_ops.NumpyOps().optimizer_update(name, p, grad, s, hypers, step)
    return p, s


def _reference_is_finite(name, param, grad, states, hypers, step):
    p, s = _reference_update(name, param, grad, states, hypers, step)
    return bool(np.isfinite(p).all() and all(np.isfinite(x).all() for x in s if x is not None))


@settings(max_examples=1000, deadline=None)
@given(name=st.sampled_from(NAMES), dtype=st.sampled_from(DTYPES),
       exps=st.lists(st.integers(-45, 308), min_size=5, max_size=5),
       lr_exp=st.integers(-8, 40), momentum=st.sampled_from([0.0, 0.9, -0.5, 1.5]),
       nesterov=st.booleans(), wd=st.sampled_from([0.0, 1e-4, 10.0, 1e30]),
       beta1=st.sampled_from([0.9, 0.0, 1.0]), beta2=st.sampled_from([0.999, 0.0, 1.0]),
       eps=st.sampled_from([1e-8, 1e-30, 0.0, 1e-300]), step=st.integers(1, 10_000),
       amsgrad=st.booleans(), alpha=st.sampled_from([0.99, 0.0, 1.0, 0.3, 1.5]),
       centered=st.booleans(), lr_decay=st.sampled_from([0.0, 0.01, 1e10]),
       signed=st.sampled_from([False, False, False, True]),
       seed=st.integers(0, 2**32 - 1))
def test_a_proved_update_is_finite_in_the_reference(name, dtype, exps, lr_exp, momentum,
                                                     nesterov, wd, beta1, beta2, eps, step,
                                                     amsgrad, alpha, centered, lr_decay,
                                                     signed, seed):
    """Whenever the proof says an update stays finite, the reference's update of the
    same arrays gives only finite values (the proof may say no when unsure), within
    the bounds the proof hands to the next batch."""
    top = 38 if dtype == np.float32 else 308
    exps = [min(e, top) for e in exps]
    n_state = numpy_ops.OPTIMIZERS[name].n_state
    param, grad, states = _arrays(np.random.default_rng(seed), dtype, 64, exps, n_state, name,
                                  signed)
    hypers = _hypers(name, 10.0 ** lr_exp, beta1, beta2, eps, wd, momentum, nesterov, amsgrad,
                     alpha, centered, lr_decay)
    states = [s if on else None for s, on in zip(states, _used(name, hypers))]
    proved = co.CythonOps()._update_proved(name, param, grad, states, hypers, step)
    if proved is not None:
        p, s = _reference_update(name, param, grad, states, hypers, step)
        assert np.isfinite(p).all() and all(np.isfinite(x).all() for x in s if x is not None)
        assert np.abs(p).max() <= proved["param"]
        for j, x in enumerate(s):
            if x is not None:
                assert np.abs(x).max() <= proved["states"][j]
                assert proved["signed"][j] or not np.signbit(x).any()


#: every mode of every row, with the flags that pick it
MODES = {"sgd": {}, "adam": {}, "adam-amsgrad": {"amsgrad": True}, "adamw": {},
         "adamw-amsgrad": {"amsgrad": True}, "rmsprop": {"momentum": 0.0},
         "rmsprop-momentum": {}, "adagrad": {"lr_decay": 0.01}, "sk_sgd": {}, "sk_adam": {}}


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("mode", sorted(MODES))
def test_ordinary_updates_are_proved(mode, dtype):
    """Weights, gradients and moments of everyday sizes: the proof holds, so the trainer
    skips the dry run."""
    name = mode.split("-")[0]
    rng = np.random.default_rng(0)
    param, grad, states = _arrays(rng, dtype, 1000, [0, -2, -2, -4, -4],
                                  numpy_ops.OPTIMIZERS[name].n_state, name)
    args = {"momentum": 0.9, **MODES[mode]}
    hypers = _hypers(name, 1e-3, 0.9, 0.999, 1e-8, 1e-4, args.pop("momentum"), False, **args)
    states = [s if on else None for s, on in zip(states, _used(name, hypers))]
    assert co.CythonOps()._update_proved(name, param, grad, states, hypers, 1) is not None


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_centered_rmsprop_is_never_proved(momentum):
    """sq - ga^2 may round below 0 (its square root NaN) whatever the magnitudes: the
    centered update always takes the dry run."""
    rng = np.random.default_rng(0)
    param, grad, states = _arrays(rng, np.float64, 100, [0, -2, -2, -4, -4], 3, "rmsprop")
    hypers = _hypers("rmsprop", 1e-3, 0, 0, 1e-8, 0.0, momentum, False, centered=True)
    states = [s if on else None for s, on in zip(states, _used("rmsprop", hypers))]
    assert co.CythonOps()._update_proved("rmsprop", param, grad, states, hypers, 1) is None
    # and a centered update whose difference is negative is refused by the dry run
    states[0][:] = 0.0
    states[2][:] = 1.0
    for backend in ("numpy", "cython"):
        ops = fastnn.get_backend(backend)
        p, s = param.copy(), [None if x is None else x.copy() for x in states]
        with np.errstate(invalid="ignore"):
            ops.optimizer_update("rmsprop", p, grad, s, hypers, 1)
        assert np.isnan(p).all()


@pytest.mark.parametrize("case", ["huge param", "inf grad", "nan grad", "negative v",
                                  "zero eps"])
def test_the_proof_refuses_what_it_cannot_bound(case):
    rng = np.random.default_rng(1)
    param, grad, states = _arrays(rng, np.float32, 100, [0, -2, -2, -4], 2, "adam")
    hypers = _hypers("adam", 1e-3, 0.9, 0.999, 1e-8, 0.0, 0.0, False)
    states.append(None)
    if case == "huge param":
        param[7] = 1e38
    elif case == "inf grad":
        grad[3] = np.inf
    elif case == "nan grad":
        grad[3] = np.nan
    elif case == "negative v":
        states[1][5] = -1e-3
    else:
        hypers["eps"] = 0.0
    assert co.CythonOps()._update_proved("adam", param, grad, states, hypers, 1) is None


def test_the_proof_checks_its_arguments():
    param = np.zeros(4)
    with pytest.raises(ValueError, match="momentum"):
        co.CythonOps()._update_proved("sgd", param, param, [None],
                                      _hypers("sgd", 0.1, 0, 0, 0, 0.0, 0.9, False))
    with pytest.raises(ValueError, match="unknown optimizer|not an optimizer|no optimizer"):
        co.CythonOps()._update_proved("lion", param, param, [None], {})


# ------------------------------------------------------------ the trainer
def _network(backend, dtype, logit, n_in=40, hidden=100):
    """A classifier (4403 parameters with 40 inputs, above the trainer's threshold for
    proofs of every optimizer; 903 with 5, above it for an update with a square root
    and a division only; 57 with 5 and 6 hidden units, below both) whose last bias
    starts at (logit, 0, 0)."""
    net = fastnn.Network([fastnn.Dense(n_in, hidden), fastnn.ReLU(), fastnn.Dense(hidden, 3)],
                         backend=backend, dtype=dtype, seed=0)
    net.layers[2].b[0] = logit
    return net


def _data(dtype, n=64, n_in=40):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, n_in)).astype(dtype), rng.integers(0, 3, n)


OPTIMIZERS = {"sgd-momentum": lambda: fastnn.SGD(lr=0.05, momentum=0.9),
              "adam": lambda: fastnn.Adam(lr=1e-3),
              "adam-amsgrad": lambda: fastnn.Adam(lr=1e-3, amsgrad=True),
              "adamw": lambda: fastnn.AdamW(lr=1e-3, weight_decay=0.1),
              "rmsprop": lambda: fastnn.RMSprop(lr=1e-3),
              "rmsprop-momentum-wd": lambda: fastnn.RMSprop(lr=1e-3, momentum=0.9,
                                                            weight_decay=1e-3),
              "adagrad-wd": lambda: fastnn.Adagrad(lr=1e-2, weight_decay=1e-3),
              "adagrad": lambda: fastnn.Adagrad(lr=1e-2, lr_decay=1e-3),
              "sk_sgd": lambda: fastnn.optimizers._SklearnSGD(lr=0.05),
              "sk_adam": lambda: fastnn.optimizers._SklearnAdam(lr=1e-3)}


def _native_run(dtype, logit, optimizer, epochs=3, batch=8, n_in=40, hidden=100, tiny=None):
    """One native trainer call over ``epochs`` epochs; the trainer's dry-run count
    (``tiny``: on the tiny path or not, None: the trainer's choice)."""
    X, y = _data(dtype, n_in=n_in)
    net = _network("cython", dtype, logit, n_in, hidden)
    loss = fastnn.CrossEntropyLoss()
    Xc, T = net._check_data(X, y, loss)
    trainer = training._make_trainer(net, Xc, T, loss, optimizer, batch, None)
    assert isinstance(trainer, training._NativeTrainer)
    if tiny is not None:
        trainer.trainer.tiny = tiny
        assert trainer.trainer.tiny == tiny
    losses = np.zeros(epochs)
    assert trainer.run(None, 0, 0, 10**6, losses) == (epochs, 0)
    checks = trainer.trainer.exact_checks
    trainer.close()
    return net, checks


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_the_trainer_proves_every_batch_on_ordinary_weights(optimizer, dtype):
    """24 batches in one call, none with the dry run: the bounds measured on the
    weights and state when the call starts prove the first, each proof the next."""
    _, checks = _native_run(dtype, 0.0, OPTIMIZERS[optimizer]())
    assert checks == 0


@pytest.mark.parametrize("optimizer", ["sgd-momentum", "adam"])
def test_weights_changed_between_calls_are_measured_again(optimizer):
    """A bias set to 1e38 between two calls (float32: beyond what the proof accepts)
    sends every batch of the second call to the dry run, and the updates stay
    finite, as in a run that started with it."""
    dtype = np.float32
    X, y = _data(dtype)
    net = _network("cython", dtype, 0.0)
    loss = fastnn.CrossEntropyLoss()
    Xc, T = net._check_data(X, y, loss)
    trainer = training._make_trainer(net, Xc, T, loss, OPTIMIZERS[optimizer](), 8, None)
    losses = np.zeros(2)
    assert trainer.run(None, 0, 0, 8, losses) == (1, 0)
    assert trainer.trainer.exact_checks == 0
    net.layers[2].b[0] = 1e38
    assert trainer.run(None, 1, 0, 8, losses) == (2, 0)
    assert trainer.trainer.exact_checks == 8
    assert all(np.isfinite(p).all() for _, p, _ in net.parameters())
    trainer.close()


def test_centered_rmsprop_checks_every_batch_with_the_dry_run():
    """No proof for the centered update (see test_centered_rmsprop_is_never_proved):
    every batch takes the dry run, and the result is the reference's."""
    net, checks = _native_run(np.float64, 0.0, fastnn.RMSprop(lr=1e-3, centered=True))
    assert checks == 24
    X, y = _data(np.float64)
    ref = _network("numpy", np.float64, 0.0)
    ref.fit(X, y, loss="cross_entropy", optimizer=fastnn.RMSprop(lr=1e-3, centered=True),
            epochs=3, batch_size=8, shuffle=False)
    for (key, p, _), (_, q, _) in zip(net.parameters(), ref.parameters()):
        np.testing.assert_allclose(p, q, err_msg=key, **tol(np.float64))


@pytest.mark.parametrize("tiny", [True, False], ids=["tiny-path", "general-path"])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_a_small_network_proves_only_an_update_with_a_root(optimizer, tiny):
    """903 parameters: SGD's dry run (a few operations per value) costs less than the
    proof's bookkeeping, so every batch takes it; the dry run of an update with a
    square root and a division per value (the optimizer table's root column) costs
    as much as the update, so it is proved, on either path, as on a large network."""
    _, checks = _native_run(np.float64, 0.0, OPTIMIZERS[optimizer](), n_in=5, tiny=tiny)
    root = {row["name"]: row["root"] for row in co._c_tables()["optimizers"]}
    name = optimizer.split("-")[0]
    assert root[name] == (name not in ("sgd", "sk_sgd"))
    assert checks == (0 if root[name] else 24)


@pytest.mark.parametrize("tiny", [True, False], ids=["tiny-path", "general-path"])
def test_a_tiny_network_checks_every_batch_with_the_dry_run(tiny):
    """57 parameters: below the proof's threshold even for Adam."""
    _, checks = _native_run(np.float64, 0.0, OPTIMIZERS["adam"](), n_in=5, hidden=6,
                            tiny=tiny)
    assert checks == 24


@pytest.mark.parametrize("optimizer", ["adam", "adam-amsgrad", "adamw", "rmsprop", "sk_adam"])
def test_the_tiny_path_measures_what_it_writes(optimizer):
    """On the tiny path (903 parameters, proved for these optimizers), the update
    after a dry run records bounds on what it wrote, and the next batch's proof
    starts from them: with a bias of 1e38 in float32 they are beyond what the proof
    accepts, so every batch takes the dry run (a bound recorded too small would let
    the proof pass), and the weights are the general path's."""
    runs = {}
    for tiny in (True, False):
        net, checks = _native_run(np.float32, 1e38, OPTIMIZERS[optimizer](), n_in=5,
                                  tiny=tiny)
        assert checks == 24
        runs[tiny] = [p.copy() for _, p, _ in net.parameters()]
        assert all(np.isfinite(p).all() for p in runs[tiny])
    for a, b in zip(runs[True], runs[False]):
        np.testing.assert_array_equal(a, b)


# (an L2 term of a 1e38 bias squares to inf in RMSprop's and Adagrad's sums: a true
# divergence, so those with weight decay are left out here)
@pytest.mark.parametrize("optimizer", sorted(k for k in OPTIMIZERS if not k.endswith("-wd")))
def test_near_overflow_every_batch_is_checked_and_matches_the_reference(optimizer):
    """A bias of 1e38 in float32 (a logit whose gradient is ordinary) is beyond what
    the proof accepts, so every batch runs the dry run; the updates are finite and
    agree with the reference's (to float32's tolerance: the GEMMs sum in another
    order)."""
    dtype, logit = np.float32, 1e38
    net, checks = _native_run(dtype, logit, OPTIMIZERS[optimizer]())
    assert checks == 24
    X, y = _data(dtype)
    ref = _network("numpy", dtype, logit)
    ref.fit(X, y, loss="cross_entropy", optimizer=OPTIMIZERS[optimizer](), epochs=3,
            batch_size=8, shuffle=False)
    for (key, p, _), (_, q, _) in zip(net.parameters(), ref.parameters()):
        assert np.isfinite(p).all(), key
        np.testing.assert_allclose(p, q, err_msg=key, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("lr", [0.011, 0.012])
def test_a_slow_divergence_hands_over_to_the_dry_run_in_time(lr, dtype):
    """A linear network (4201 parameters) whose weights grow for dozens of batches
    until they overflow.  In one call the proof carries its bounds from batch to
    batch and must give up before the overflow, so that the dry run refuses the
    diverging batch: the weights left are exactly those of a run stopped one batch
    earlier, and of a run of one batch per call (each call proves from the bounds
    it measures when it starts)."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((16, 40)).astype(dtype), rng.standard_normal((16, 1)).astype(dtype)
    loss = fastnn.MSELoss()

    def trainer():
        net = fastnn.Network([fastnn.Dense(40, 100), fastnn.Dense(100, 1)], backend="cython",
                             dtype=dtype, seed=0)
        Xc, T = net._check_data(X, y, loss)
        opt = fastnn.SGD(lr=lr, momentum=0.9)
        return net, training._make_trainer(net, Xc, T, loss, opt, 4, None)

    def weights(net):
        return [p.copy() for _, p, _ in net.parameters()]

    # batch by batch: each call measures the weights again
    net_c, tr = trainer()
    losses, epoch, start, good = np.zeros(3000), 0, 0, 0
    with pytest.raises(FloatingPointError):
        while True:
            epoch, start = tr.run(None, epoch, start, 1, losses)
            good += 1
    assert good >= 30
    tr.close()
    # one call: the proof carries on until it must hand over
    net_a, tr = trainer()
    with pytest.raises(FloatingPointError):
        tr.run(None, 0, 0, 10**6, np.zeros(3000))
    assert tr.trainer.exact_checks < good // 2      # the proof carried most batches
    tr.close()
    # one call stopped just before the diverging batch
    net_b, tr = trainer()
    tr.run(None, 0, 0, good, np.zeros(3000))
    tr.close()
    for a, b, c in zip(weights(net_a), weights(net_b), weights(net_c)):
        assert np.isfinite(a).all()
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
