"""AdamW, Adam's amsgrad, RMSprop and Adagrad: hand-worked updates, PyTorch trajectories,
state, validation.

Why it is built this way: each optimizer is checked three ways.  Hand-worked
two-step updates (the setting of tests/test_optimizers.py: one Dense(2, 1), its
weights and gradients set by hand, ``optimizer.step``) pin the formula, with the
decimals worked out in the comments, not by the code under test.  Several
epochs of ``fit`` against ``torch.optim`` on the same weights and batch order
pin PyTorch's definitions to 1e-9 in float64, on both backends (the compiled
one in its native C loop).  And the state (moments, sums, step counts) is
checked to carry over between fits, through copies and pickles, the same on
both backends.
"""

import copy
import math
import pickle
import warnings

import numpy as np
import pytest

import fastnn
from fastnn import Adagrad, Adam, AdamW, Dense, Network, ReLU, RMSprop, Tanh
from fastnn import training
from tests_conftest import tol  # noqa: E402 (conftest.py registers the name)

from tests_conftest import check_steps as _check  # noqa: E402
from tests_conftest import step_net as _net  # noqa: E402
from tests_conftest import two_steps as _two_steps  # noqa: E402


def _steps(w1, b1, w2, b2):
    return [([[w1[0]], [w1[1]]], [b1]), ([[w2[0]], [w2[1]]], [b2])]


# --------------------------------------------------------- hand-worked updates
def test_adamw(backend, dtype):
    # lr = 0.1, betas = (0.9, 0.999), eps = 1e-8, weight_decay = 0.1: each step first
    # p *= 1 - 0.1*0.1 = 0.99, then Adam's update of the plain gradient
    # step 1: p -= 0.1 g/(|g| + 1e-8) ~ 0.1 sign(g)
    #   W = [0.99 - 0.1, -1.98 + 0.1] = [0.89, -1.88];  b = 0.495 - 0.1 = 0.395
    # step 2: Adam's updates of tests/test_optimizers.py::test_adam (the gradients hold
    #   no decay): [0.0965182, -0.0469465], b 0.0266337
    #   W = [0.99*0.89 - 0.0965182, -0.99*1.88 + 0.0469465] = [0.7845818, -1.8142535]
    #   b = 0.99*0.395 - 0.0266337 = 0.3644163
    def upd(m, v):
        return 0.1 * (m / 0.19) / (math.sqrt(v / 0.001999) + 1e-8)

    w1 = [0.99 * 1 - 0.1 * 0.5 / (0.5 + 1e-8), 0.99 * -2 + 0.1 * 1.0 / (1.0 + 1e-8)]
    b1 = 0.99 * 0.5 - 0.1 * 2.0 / (2.0 + 1e-8)
    w2 = [0.99 * w1[0] - upd(0.145, 0.00124975), 0.99 * w1[1] - upd(-0.065, 0.0010615)]
    b2 = 0.99 * b1 - upd(0.08, 0.004996)
    assert w2 == pytest.approx([0.7845818, -1.8142535], abs=1e-6)
    assert b2 == pytest.approx(0.3644163, abs=1e-6)
    got = _two_steps(_net(backend, dtype), AdamW(lr=0.1, weight_decay=0.1))
    _check(got, _steps(w1, b1, w2, b2), dtype)


def test_adam_amsgrad(backend, dtype):
    # lr = 0.1, betas = (0.9, 0.5), eps = 1e-8, amsgrad: the denominator uses the
    # largest v so far.  step 1: m = 0.1 g, v = 0.5 g^2 = max_v; m_hat = g, v_hat = g^2
    #   W = [0.9, -1.9], b = 0.4 (each up to eps)
    # step 2: m = 0.09 g1 + 0.1 g2 (/ 0.19);  v = 0.25 g1^2 + 0.5 g2^2 (/ 0.75)
    #   W[0]: v = 0.0625 + 0.5 = 0.5625 > 0.125: m = 0.145,
    #         update = 0.1*(0.145/0.19)/sqrt(0.5625/0.75) = 0.0881219
    #   W[1]: v = 0.25 + 0.03125 = 0.28125 < 0.5: max_v = 0.5, m = -0.065,
    #         update = 0.1*(-0.065/0.19)/sqrt(0.5/0.75) = -0.0418991
    #         (plain Adam: / sqrt(0.28125/0.75), -0.0558650)
    #   b:    v = 1 + 0.5 = 1.5 < 2: max_v = 2, m = 0.08,
    #         update = 0.1*(0.08/0.19)/sqrt(2/0.75) = 0.0257841
    #   W = [0.8118781, -1.8581009];  b = 0.3742159
    def upd(m, v):
        return 0.1 * (m / 0.19) / (math.sqrt(v / 0.75) + 1e-8)

    w1 = [1 - 0.1 * 0.5 / (0.5 + 1e-8), -2 + 0.1 * 1.0 / (1.0 + 1e-8)]
    b1 = 0.5 - 0.1 * 2.0 / (2.0 + 1e-8)
    w2 = [w1[0] - upd(0.145, 0.5625), w1[1] - upd(-0.065, 0.5)]
    b2 = b1 - upd(0.08, 2.0)
    assert w2 == pytest.approx([0.8118781, -1.8581009], abs=1e-6)
    assert b2 == pytest.approx(0.3742159, abs=1e-6)
    got = _two_steps(_net(backend, dtype), Adam(lr=0.1, betas=(0.9, 0.5), amsgrad=True))
    _check(got, _steps(w1, b1, w2, b2), dtype)
    plain = _two_steps(_net(backend, dtype), Adam(lr=0.1, betas=(0.9, 0.5)))
    assert plain[1][0][1, 0] == pytest.approx(w1[1] - upd(-0.065, 0.28125), rel=1e-5)


def test_rmsprop(backend, dtype):
    # lr = 0.1, alpha = 0.9, eps = 1e-8
    # step 1: sq = 0.1 g^2; p -= 0.1 g/(sqrt(0.1)|g|) = 0.3162278 sign(g)
    #   W = [0.6837722, -1.6837722];  b = 0.1837722
    # step 2: sq = 0.09 g1^2 + 0.1 g2^2
    #   W[0]: sq = 0.0225 + 0.1 = 0.1225, sqrt 0.35:   update = 0.1/0.35 = 0.2857143
    #   W[1]: sq = 0.09 + 0.00625 = 0.09625, sqrt 0.3102418: update = 0.025/0.3102418
    #         = 0.0805823
    #   b:    sq = 0.36 + 0.1 = 0.46, sqrt 0.6782330: update = -0.1/0.678233 = -0.1474420
    #   W = [0.3980579, -1.7643545];  b = 0.3312142
    r = math.sqrt(0.1)
    w1 = [1 - 0.1 * 0.5 / (r * 0.5 + 1e-8), -2 + 0.1 * 1.0 / (r * 1.0 + 1e-8)]
    b1 = 0.5 - 0.1 * 2.0 / (r * 2.0 + 1e-8)
    w2 = [w1[0] - 0.1 * 1.0 / (math.sqrt(0.1225) + 1e-8),
          w1[1] - 0.1 * 0.25 / (math.sqrt(0.09625) + 1e-8)]
    b2 = b1 + 0.1 / (math.sqrt(0.46) + 1e-8)
    assert w2 == pytest.approx([0.3980579, -1.7643545], abs=1e-6)
    assert b2 == pytest.approx(0.3312142, abs=1e-6)
    got = _two_steps(_net(backend, dtype), RMSprop(lr=0.1, alpha=0.9))
    _check(got, _steps(w1, b1, w2, b2), dtype)


def test_rmsprop_momentum(backend, dtype):
    # lr = 0.1, alpha = 0.9, momentum = 0.5: buf = 0.5 buf + g/avg; p -= 0.1 buf
    # step 1: buf = sign(g)/sqrt(0.1) = 3.162278 sign(g): as test_rmsprop
    # step 2: W[0]: buf = 1.581139 + 1/0.35 = 4.438282  -> W = 0.6837722 - 0.4438282
    #         W[1]: buf = -1.581139 + 0.805823 = -0.775316 -> W = -1.6837722 + 0.0775316
    #         b:    buf = 1.581139 - 1.474420 = 0.106719  -> b = 0.1837722 - 0.0106719
    #   W = [0.2399440, -1.6062406];  b = 0.1731003
    def avg(sq):
        return math.sqrt(sq) + 1e-8

    bufs1 = [0.5 / avg(0.1 * 0.25), -1.0 / avg(0.1), 2.0 / avg(0.4)]
    w1 = [1 - 0.1 * bufs1[0], -2 - 0.1 * bufs1[1]]
    b1 = 0.5 - 0.1 * bufs1[2]
    bufs2 = [0.5 * bufs1[0] + 1.0 / avg(0.1225), 0.5 * bufs1[1] + 0.25 / avg(0.09625),
             0.5 * bufs1[2] - 1.0 / avg(0.46)]
    w2 = [w1[0] - 0.1 * bufs2[0], w1[1] - 0.1 * bufs2[1]]
    b2 = b1 - 0.1 * bufs2[2]
    assert w2 == pytest.approx([0.2399440, -1.6062406], abs=1e-6)
    assert b2 == pytest.approx(0.1731003, abs=1e-6)
    got = _two_steps(_net(backend, dtype), RMSprop(lr=0.1, alpha=0.9, momentum=0.5))
    _check(got, _steps(w1, b1, w2, b2), dtype)


def test_rmsprop_centered(backend, dtype):
    # lr = 0.1, alpha = 0.9, centered: ga = ga + 0.1 (g - ga); avg = sqrt(sq - ga^2) + eps
    # step 1: sq = 0.1 g^2, ga = 0.1 g: sq - ga^2 = 0.09 g^2, avg = 0.3 |g|
    #   p -= 0.1/0.3 sign(g):  W = [0.6666667, -1.6666667];  b = 0.1666667
    # step 2: ga = 0.09 g1 + 0.1 g2
    #   W[0]: ga = 0.145, sq - ga^2 = 0.1225 - 0.021025 = 0.101475, sqrt 0.3185517
    #         update = 0.1/0.3185517 = 0.3139208
    #   W[1]: ga = -0.065, 0.09625 - 0.004225 = 0.092025, sqrt 0.3033562
    #         update = 0.025/0.3033562 = 0.0824114
    #   b:    ga = 0.08, 0.46 - 0.0064 = 0.4536, sqrt 0.6734983, update = -0.1484785
    #   W = [0.3527459, -1.7490781];  b = 0.3151452
    w1 = [1 - 0.1 * 0.5 / (0.3 * 0.5 + 1e-8), -2 + 0.1 * 1.0 / (0.3 * 1.0 + 1e-8)]
    b1 = 0.5 - 0.1 * 2.0 / (0.3 * 2.0 + 1e-8)
    w2 = [w1[0] - 0.1 * 1.0 / (math.sqrt(0.101475) + 1e-8),
          w1[1] - 0.1 * 0.25 / (math.sqrt(0.092025) + 1e-8)]
    b2 = b1 + 0.1 / (math.sqrt(0.4536) + 1e-8)
    assert w2 == pytest.approx([0.3527459, -1.7490781], abs=1e-6)
    assert b2 == pytest.approx(0.3151452, abs=1e-6)
    got = _two_steps(_net(backend, dtype), RMSprop(lr=0.1, alpha=0.9, centered=True))
    _check(got, _steps(w1, b1, w2, b2), dtype)


def test_adagrad(backend, dtype):
    # lr = 0.1, lr_decay = 0.5, initial_accumulator_value = 0.75, eps = 1e-10
    # step 1: clr = 0.1; sum = 0.75 + g^2
    #   W[0]: sum = 1, update 0.05 -> 0.95
    #   W[1]: sum = 1.75, sqrt 1.3228757, update -0.0755929 -> -1.9244071
    #   b:    sum = 4.75, sqrt 2.1794495, update 0.0917663 -> 0.4082337
    # step 2: clr = 0.1/(1 + 0.5) = 0.0666667
    #   W[0]: sum = 2, sqrt 1.4142136, update 0.0471405 -> 0.9028595
    #   W[1]: sum = 1.8125, sqrt 1.3462912, update 0.0123797 -> -1.9367868
    #   b:    sum = 5.75, sqrt 2.3979158, update -0.0278019 -> 0.4360356
    def upd(clr, g, s):
        return clr * g / (math.sqrt(s) + 1e-10)

    w1 = [1 - upd(0.1, 0.5, 1.0), -2 - upd(0.1, -1.0, 1.75)]
    b1 = 0.5 - upd(0.1, 2.0, 4.75)
    clr = 0.1 / 1.5
    w2 = [w1[0] - upd(clr, 1.0, 2.0), w1[1] - upd(clr, 0.25, 1.8125)]
    b2 = b1 - upd(clr, -1.0, 5.75)
    assert w1 == pytest.approx([0.95, -1.9244071], abs=1e-6)
    assert w2 == pytest.approx([0.9028595, -1.9367868], abs=1e-6)
    assert b2 == pytest.approx(0.4360356, abs=1e-6)
    opt = Adagrad(lr=0.1, lr_decay=0.5, initial_accumulator_value=0.75)
    got = _two_steps(_net(backend, dtype), opt)
    _check(got, _steps(w1, b1, w2, b2), dtype)
    assert opt.state["0.W"]["step"] == 2
    np.testing.assert_allclose(opt.state["0.b"]["sum"], [5.75], **tol(dtype))


# ------------------------------------------------------ PyTorch trajectories
torch = pytest.importorskip("torch")
nn = torch.nn

TORCH_OPTIMIZERS = {
    "adamw": (lambda: AdamW(lr=0.01), lambda p: torch.optim.AdamW(p, lr=0.01)),
    "adamw-amsgrad": (lambda: AdamW(lr=0.01, betas=(0.8, 0.9), weight_decay=0.1, amsgrad=True),
                      lambda p: torch.optim.AdamW(p, lr=0.01, betas=(0.8, 0.9),
                                                  weight_decay=0.1, amsgrad=True)),
    "adam-amsgrad-wd": (lambda: Adam(lr=0.01, betas=(0.8, 0.9), weight_decay=0.01,
                                     amsgrad=True),
                        lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.9),
                                                   weight_decay=0.01, amsgrad=True)),
    "rmsprop": (lambda: RMSprop(lr=0.01), lambda p: torch.optim.RMSprop(p, lr=0.01)),
    "rmsprop-momentum-wd": (lambda: RMSprop(lr=0.005, alpha=0.9, momentum=0.8,
                                            weight_decay=0.01),
                            lambda p: torch.optim.RMSprop(p, lr=0.005, alpha=0.9, momentum=0.8,
                                                          weight_decay=0.01)),
    "rmsprop-centered": (lambda: RMSprop(lr=0.005, centered=True),
                         lambda p: torch.optim.RMSprop(p, lr=0.005, centered=True)),
    "rmsprop-centered-momentum": (
        lambda: RMSprop(lr=0.005, alpha=0.3, momentum=0.5, centered=True),
        lambda p: torch.optim.RMSprop(p, lr=0.005, alpha=0.3, momentum=0.5, centered=True)),
    "adagrad": (lambda: Adagrad(lr=0.05), lambda p: torch.optim.Adagrad(p, lr=0.05)),
    "adagrad-all": (lambda: Adagrad(lr=0.05, lr_decay=0.01, weight_decay=0.01,
                                    initial_accumulator_value=0.1, eps=1e-8),
                    lambda p: torch.optim.Adagrad(p, lr=0.05, lr_decay=0.01, weight_decay=0.01,
                                                  initial_accumulator_value=0.1, eps=1e-8)),
}

#: the largest relative difference from PyTorch seen per case, for the report
PARITY: dict[str, float] = {}


def _torch_run(model, make_opt, X, y, loss_fn, epochs, batch, clip=None):
    opt = make_opt(model.parameters())
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    losses = []
    for _ in range(epochs):
        total = 0.0
        for start in range(0, len(X), batch):
            opt.zero_grad()
            value = loss_fn(model(Xt[start:start + batch]), yt[start:start + batch])
            value.backward()
            if clip is not None and clip[0] == "norm":
                nn.utils.clip_grad_norm_(model.parameters(), clip[1])
            elif clip is not None:
                nn.utils.clip_grad_value_(model.parameters(), clip[1])
            opt.step()
            total += value.item() * min(batch, len(X) - start)
        losses.append(total / len(X))
    return losses


def _problem(loss):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((30, 5))
    if loss == "mse":
        return X, rng.standard_normal((30, 2)), [Dense(5, 8), Tanh(), Dense(8, 2)], nn.MSELoss()
    return (X, rng.integers(0, 3, 30), [Dense(5, 8), ReLU(), Dense(8, 3)],
            nn.CrossEntropyLoss())


def _compare_with_torch(backend, name, make_ours, make_theirs, loss, clip=None):
    X, y, layers, loss_fn = _problem(loss)
    net = Network(layers, backend=backend, seed=2)
    model = net.to_torch().train()
    epochs, batch = 6, 7
    torch_losses = _torch_run(model, make_theirs, X, y, loss_fn, epochs, batch, clip)
    kwargs = {} if clip is None else {f"clip_grad_{clip[0]}": clip[1]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")        # the compiled backend's native loop, no warning
        history = net.fit(X, y, loss=loss, optimizer=make_ours(), epochs=epochs,
                          batch_size=batch, shuffle=False, **kwargs)
    np.testing.assert_allclose(history.loss, torch_losses, rtol=1e-9)
    theirs = [m for m in model if isinstance(m, nn.Linear)]
    ours = [layer for layer in net.layers if isinstance(layer, Dense)]
    worst = 0.0
    for layer, linear in zip(ours, theirs):
        for mine, their in ((layer.W, linear.weight.detach().numpy().T),
                            (layer.b, linear.bias.detach().numpy())):
            np.testing.assert_allclose(mine, their, rtol=1e-9, atol=1e-12)
            worst = max(worst, float(np.max(np.abs(mine - their) /
                                            np.maximum(np.abs(their), 1e-300))))
    # the weights moved: the comparison is not of two untrained networks
    assert not np.allclose(ours[0].W, Network(_problem(loss)[2], seed=2).layers[0].W)
    PARITY[f"{name} {backend}"] = worst


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("name", sorted(TORCH_OPTIMIZERS))
def test_training_matches_pytorch(backend, name, loss):
    """Six epochs of fit (batches of 7, the last of 2) against torch.optim on the same
    weights and batch order: losses and weights to 1e-9 in float64."""
    make_ours, make_theirs = TORCH_OPTIMIZERS[name]
    _compare_with_torch(backend, name, make_ours, make_theirs, loss)


# ------------------------------------------------------------------- state
def _fit(backend, opt, epochs, seed=2):
    X, y, layers, _ = _problem("mse")
    net = Network(layers, backend=backend, seed=seed)
    return net, net.fit(X, y, loss="mse", optimizer=opt, epochs=epochs, batch_size=7,
                        shuffle=False)


ALL = {"adamw-amsgrad": lambda: AdamW(lr=0.01, amsgrad=True),
       "rmsprop-centered-momentum": lambda: RMSprop(lr=0.01, momentum=0.5, centered=True),
       "adagrad": lambda: Adagrad(lr=0.05, lr_decay=0.1)}


@pytest.mark.parametrize("name", sorted(ALL))
def test_state_carries_over_between_fits(backend, name):
    """Two fits of 3 epochs with one optimizer object give what one fit of 6 gives
    (moments, sums and step counts carried over, on either backend's loop)."""
    net_a, _ = _fit(backend, ALL[name](), 6)
    opt = ALL[name]()
    X, y, _, _ = _problem("mse")
    net_b, _ = _fit(backend, opt, 3)
    net_b.fit(X, y, loss="mse", optimizer=opt, epochs=3, batch_size=7, shuffle=False)
    for (key, a, _), (_, b, _) in zip(net_a.parameters(), net_b.parameters()):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15, err_msg=key)


@pytest.mark.parametrize("name", sorted(ALL))
def test_state_is_the_same_on_both_backends(name):
    """The compiled trainer's state (written in C) is the reference loop's: every array
    and the step count."""
    opts = {}
    for backend in ("numpy", "cython"):
        opts[backend] = ALL[name]()
        _fit(backend, opts[backend], 4)
    ref, got = opts["numpy"].state, opts["cython"].state
    assert sorted(ref) == sorted(got) and ref
    for key in ref:
        assert sorted(ref[key]) == sorted(got[key]), key
        for what, value in ref[key].items():
            np.testing.assert_allclose(got[key][what], value, rtol=1e-12, atol=1e-15,
                                       err_msg=f"{key} {what}")
    expected = {"adamw-amsgrad": {"step", "m", "v", "max_v"},
                "rmsprop-centered-momentum": {"square_avg", "momentum_buffer", "grad_avg"},
                "adagrad": {"step", "sum"}}[name]
    assert set(ref["0.W"]) == expected


@pytest.mark.parametrize("name", sorted(ALL))
def test_optimizer_survives_copy_and_pickle_with_its_network(backend, name):
    """A (network, optimizer) pair copied or pickled keeps training exactly as the
    original does: the state arrays and step counts travel with it."""
    opt = ALL[name]()
    net, _ = _fit(backend, opt, 2)
    X, y, _, _ = _problem("mse")
    for net2, opt2 in (copy.deepcopy((net, opt)), pickle.loads(pickle.dumps((net, opt)))):
        net2.fit(X, y, loss="mse", optimizer=opt2, epochs=2, batch_size=7, shuffle=False)
        assert opt2.state is not opt.state
        want, _ = _fit(backend, ALL[name](), 4)
        for (key, a, _), (_, b, _) in zip(net2.parameters(), want.parameters()):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15, err_msg=key)


def test_amsgrad_switched_on_later_starts_its_maximum_at_zero(backend):
    """The max of v is made when amsgrad is first used (zeros, as PyTorch's state)."""
    opt = Adam(lr=0.01)
    _fit(backend, opt, 1)
    assert "max_v" not in opt.state["0.W"]
    opt.amsgrad = True
    _fit(backend, opt, 1)
    assert opt.state["0.W"]["max_v"].shape == (5, 8)
    assert (opt.state["0.W"]["max_v"] >= 0).all() and opt.state["0.W"]["max_v"].any()


def test_the_native_trainer_runs_every_new_optimizer_in_c():
    """No fallback to the Python loop: the compiled backend makes its native trainer
    for each built-in optimizer."""
    X, y, layers, _ = _problem("mse")
    for make in (AdamW, lambda: Adam(amsgrad=True), RMSprop,
                 lambda: RMSprop(momentum=0.9, centered=True), Adagrad):
        net = Network([Dense(5, 8), Tanh(), Dense(8, 2)], backend="cython", seed=2)
        Xc, T = net._check_data(X, y, fastnn.MSELoss())
        trainer = training._make_trainer(net, Xc, T, fastnn.MSELoss(), make(), 7, None)
        assert isinstance(trainer, training._NativeTrainer)
        trainer.close()


# -------------------------------------------------------------- validation
@pytest.mark.parametrize("make, error, match", [
    (lambda: AdamW(lr=-1.0), ValueError, "lr must be >= 0"),
    (lambda: AdamW(weight_decay=-0.1), ValueError, "weight_decay must be >= 0"),
    (lambda: AdamW(betas=(0.9, 1.0)), ValueError, r"betas\[1\] must be < 1"),
    (lambda: Adam(amsgrad=1), TypeError, "amsgrad must be True or False"),
    (lambda: RMSprop(alpha=1.5), ValueError, "alpha must be <= 1"),
    (lambda: RMSprop(alpha=-0.1), ValueError, "alpha must be >= 0"),
    (lambda: RMSprop(eps=0.0), ValueError, "eps must be > 0"),
    (lambda: RMSprop(momentum=-0.5), ValueError, "momentum must be >= 0"),
    (lambda: RMSprop(centered="yes"), TypeError, "centered must be True or False"),
    (lambda: Adagrad(lr_decay=-1.0), ValueError, "lr_decay must be >= 0"),
    (lambda: Adagrad(initial_accumulator_value=-1.0), ValueError,
     "initial_accumulator_value must be >= 0"),
    (lambda: Adagrad(eps=float("nan")), ValueError, "eps must be finite"),
])
def test_invalid_hyper_parameters_are_refused(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_pytorch_defaults():
    """The defaults are torch.optim's."""
    assert (AdamW().lr, AdamW().betas, AdamW().eps, AdamW().weight_decay, AdamW().amsgrad) == \
        (1e-3, (0.9, 0.999), 1e-8, 1e-2, False)
    assert Adam().amsgrad is False
    r = RMSprop()
    assert (r.lr, r.alpha, r.eps, r.weight_decay, r.momentum, r.centered) == \
        (1e-2, 0.99, 1e-8, 0.0, 0.0, False)
    a = Adagrad()
    assert (a.lr, a.lr_decay, a.weight_decay, a.initial_accumulator_value, a.eps) == \
        (1e-2, 0.0, 0.0, 0.0, 1e-10)
    for name, cls in (("adamw", AdamW), ("rmsprop", RMSprop), ("adagrad", Adagrad)):
        assert type(fastnn.optimizers.get_optimizer(name)) is cls


@pytest.mark.parametrize("cls", [RMSprop, Adagrad])
def test_an_eps_that_rounds_to_zero_in_float32_is_refused(cls):
    net = Network([Dense(2, 1)], dtype="float32", seed=0)
    X = np.zeros((2, 2), np.float32)
    with pytest.raises(ValueError, match=f"{cls.__name__} eps=1e-50 rounds to 0 in float32"):
        net.fit(X, X[:, :1], loss="mse", optimizer=cls(eps=1e-50))
