"""Learning-rate schedules (fastnn.schedules) against torch.optim.lr_scheduler.

Why it is built this way: the schedules promise PyTorch's sequences, so each
is stepped side by side with PyTorch's over many steps and the rates (and
OneCycleLR's momentum or beta1) must be equal -- the same Python-float
arithmetic, so exactly equal.  Then whole float64 trainings with a schedule,
from the same weights in the same batch order, must end with PyTorch's
weights (1e-9 relative) on both backends, which also checks that the values
reach the compiled trainer when they should: between epochs, and per batch
from the table handed to C for OneCycleLR.
"""

import math

import numpy as np
import pytest

import fastnn
from fastnn import SGD, Adam, Dense, Network, Tanh
from fastnn.backends import available_backends
from fastnn.schedules import (CosineAnnealingLR, ExponentialLR, LinearLR, MultiStepLR,
                              OneCycleLR, ReduceLROnPlateau, StepLR)

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
L = torch.optim.lr_scheduler

STEPS = 300

#: (fastnn schedule, the same schedule of PyTorch's given its optimizer)
EPOCH_CASES = {
    "step": (lambda: StepLR(7, 0.3), lambda o: L.StepLR(o, 7, 0.3)),
    "step_default": (lambda: StepLR(2), lambda o: L.StepLR(o, 2)),
    "multistep": (lambda: MultiStepLR([3, 10, 10, 40], 0.5),
                  lambda o: L.MultiStepLR(o, [3, 10, 10, 40], 0.5)),
    "multistep_at_0": (lambda: MultiStepLR([0, 5]), lambda o: L.MultiStepLR(o, [0, 5])),
    "exponential": (lambda: ExponentialLR(0.97), lambda o: L.ExponentialLR(o, 0.97)),
    "cosine": (lambda: CosineAnnealingLR(17, 0.001), lambda o: L.CosineAnnealingLR(o, 17, 0.001)),
    "cosine_default": (lambda: CosineAnnealingLR(5), lambda o: L.CosineAnnealingLR(o, 5)),
    "linear_default": (lambda: LinearLR(), lambda o: L.LinearLR(o)),
    "linear": (lambda: LinearLR(0.1, 0.7, 30), lambda o: L.LinearLR(o, 0.1, 0.7, 30)),
}


def _torch_opt(kind, lr, **kw):
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    if kind == "sgd":
        return torch.optim.SGD([p], lr=lr, **kw)
    return torch.optim.Adam([p], lr=lr, **kw)


def _torch_values(opt):
    group = opt.param_groups[0]
    return (group["lr"], group["momentum"] if "momentum" in group else group["betas"][0])


def _fastnn_values(opt):
    return (opt.lr, opt.momentum if isinstance(opt, SGD) else opt.betas[0])


@pytest.mark.parametrize("case", sorted(EPOCH_CASES))
def test_epoch_schedules_give_pytorchs_rates_exactly(case):
    make, make_torch = EPOCH_CASES[case]
    topt = _torch_opt("sgd", 0.37, momentum=0.9)
    tsched = make_torch(topt)
    opt = SGD(lr=0.37, momentum=0.9)
    sched = make()
    sched.bind(opt)
    for step in range(STEPS):
        assert opt.lr == topt.param_groups[0]["lr"], (case, step)
        assert sched.get_last_lr() == tsched.get_last_lr()
        topt.step()
        tsched.step()
        sched.step()
    assert sched.last_epoch == tsched.last_epoch == STEPS


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("three_phase", [False, True])
@pytest.mark.parametrize("anneal", ["cos", "linear"])
def test_one_cycle_gives_pytorchs_rates_and_momenta_exactly(kind, three_phase, anneal):
    kw = dict(pct_start=0.25, anneal_strategy=anneal, three_phase=three_phase,
              base_momentum=0.8, max_momentum=0.93, div_factor=10.0, final_div_factor=100.0)
    topt = _torch_opt(kind, 0.01, **({"momentum": 0.5} if kind == "sgd" else {}))
    tsched = L.OneCycleLR(topt, 0.4, total_steps=STEPS, **kw)
    opt = SGD(lr=0.01, momentum=0.5) if kind == "sgd" else Adam(lr=0.01)
    sched = OneCycleLR(0.4, STEPS, **kw)
    sched.bind(opt)
    for step in range(STEPS):
        assert _fastnn_values(opt) == _torch_values(topt), step
        topt.step()
        tsched.step()
        sched.step()
    assert _fastnn_values(opt) == _torch_values(topt)
    with pytest.raises(ValueError, match="total_steps"):
        sched.step()                            # PyTorch raises there too
    with pytest.raises(ValueError, match="total steps"):
        tsched.step()


def test_one_cycle_table_is_the_stepped_sequence():
    opt = Adam(lr=0.1)
    sched = OneCycleLR(1.0, 50)
    sched.bind(opt)
    table = sched._batch_table(50)
    assert sched.last_epoch == 0                # the table changes nothing
    for row in table:
        assert (opt.lr, opt.betas[0]) == (row[0], row[1])
        sched.step()


@pytest.mark.parametrize("kw", [
    {}, {"mode": "max"}, {"threshold_mode": "abs", "threshold": 0.05},
    {"mode": "max", "threshold_mode": "abs", "threshold": 0.01, "cooldown": 2},
    {"patience": 2, "cooldown": 3, "factor": 0.5, "min_lr": 0.01},
    {"patience": 0, "factor": 0.9, "eps": 0.01},
])
def test_reduce_on_plateau_gives_pytorchs_rates_exactly(kw):
    values = np.random.default_rng(0).standard_normal(STEPS).cumsum()
    topt = _torch_opt("sgd", 0.5)
    tsched = L.ReduceLROnPlateau(topt, **kw)
    opt = SGD(lr=0.5)
    sched = ReduceLROnPlateau(**kw)
    sched.bind(opt)
    reductions = 0
    for value in values.tolist():
        before = opt.lr
        tsched.step(value)
        sched.step(value)
        assert opt.lr == topt.param_groups[0]["lr"]
        reductions += opt.lr != before
    assert reductions > 0                       # the comparison saw reductions


# ------------------------------------------------------------ fit with a schedule
def _data(n=40, d=4, k=3):
    rng = np.random.default_rng(1)
    return rng.standard_normal((n, d)), rng.standard_normal((n, k))


def _net(backend):
    return Network([Dense(4, 8), Tanh(), Dense(8, 3)], seed=2, backend=backend)


def _torch_fit(net, X, y, opt_kind, opt_kw, make_sched, epochs, batch, per_batch, plateau):
    model = net.to_torch()
    model.train()
    opt = (torch.optim.SGD if opt_kind == "sgd" else torch.optim.Adam)(model.parameters(),
                                                                       **opt_kw)
    sched = make_sched(opt)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    lrs, losses = [], []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        total = 0.0
        for start in range(0, len(X), batch):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(Xt[start:start + batch]),
                                                yt[start:start + batch])
            loss.backward()
            opt.step()
            total += loss.item() * len(Xt[start:start + batch])
            if per_batch:
                sched.step()
        losses.append(total / len(X))
        if plateau:
            sched.step(losses[-1])
        elif not per_batch:
            sched.step()
    weights = [m.weight.detach().numpy().T for m in model if isinstance(m, torch.nn.Linear)]
    return weights, lrs, losses


FIT_CASES = {
    "step_sgd": ("sgd", {"lr": 0.1, "momentum": 0.9}, lambda: StepLR(3, 0.5),
                 lambda o: L.StepLR(o, 3, 0.5)),
    "cosine_adam": ("adam", {"lr": 0.05}, lambda: CosineAnnealingLR(5, 0.001),
                    lambda o: L.CosineAnnealingLR(o, 5, 0.001)),
    "multistep_sgd": ("sgd", {"lr": 0.2}, lambda: MultiStepLR([2, 4, 9], 0.3),
                      lambda o: L.MultiStepLR(o, [2, 4, 9], 0.3)),
    "exponential_adam": ("adam", {"lr": 0.05, "weight_decay": 0.01}, lambda: ExponentialLR(0.8),
                         lambda o: L.ExponentialLR(o, 0.8)),
    "linear_sgd": ("sgd", {"lr": 0.2, "momentum": 0.5, "nesterov": True},
                   lambda: LinearLR(0.2, 1.0, 6), lambda o: L.LinearLR(o, 0.2, 1.0, 6)),
    "plateau_sgd": ("sgd", {"lr": 0.3, "momentum": 0.9},
                    lambda: ReduceLROnPlateau(patience=1, factor=0.5, threshold=0.05),
                    lambda o: L.ReduceLROnPlateau(o, patience=1, factor=0.5, threshold=0.05)),
    "onecycle_sgd": ("sgd", {"lr": 0.1, "momentum": 0.9}, lambda: OneCycleLR(0.5, 60),
                     lambda o: L.OneCycleLR(o, 0.5, total_steps=60)),
    "onecycle_sgd_no_momentum": ("sgd", {"lr": 0.1}, lambda: OneCycleLR(0.5, 60),
                                 lambda o: L.OneCycleLR(o, 0.5, total_steps=60)),
    "onecycle_adam_3phase": ("adam", {"lr": 0.01},
                             lambda: OneCycleLR(0.05, 65, three_phase=True,
                                                anneal_strategy="linear"),
                             lambda o: L.OneCycleLR(o, 0.05, total_steps=65, three_phase=True,
                                                    anneal_strategy="linear")),
    "onecycle_sgd_fixed_momentum": ("sgd", {"lr": 0.1, "momentum": 0.9},
                                    lambda: OneCycleLR(0.5, 60, cycle_momentum=False),
                                    lambda o: L.OneCycleLR(o, 0.5, total_steps=60,
                                                           cycle_momentum=False)),
}


def _relative(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("case", sorted(FIT_CASES))
def test_fit_with_a_schedule_follows_pytorch(backend, case):
    opt_kind, opt_kw, make, make_torch = FIT_CASES[case]
    X, y = _data()
    epochs, batch = 12, 8                       # 5 batches per epoch, 60 in all
    net = _net(backend)
    weights, lrs, losses = _torch_fit(net, X, y, opt_kind, opt_kw, make_torch, epochs, batch,
                                      case.startswith("onecycle"), case.startswith("plateau"))
    optimizer = (SGD if opt_kind == "sgd" else Adam)(**opt_kw)
    with np.errstate(all="raise"):
        history = net.fit(X, y, loss="mse", optimizer=optimizer, epochs=epochs,
                          batch_size=batch, shuffle=False, lr_scheduler=make())
    dense = [layer for layer in net.layers if isinstance(layer, Dense)]
    worst = max(_relative(layer.W, w) for layer, w in zip(dense, weights))
    assert worst < 1e-9, worst
    np.testing.assert_allclose(history.lr, lrs, rtol=1e-15, atol=0)
    np.testing.assert_allclose(history.loss, losses, rtol=1e-9)
    assert len(set(history.lr)) > 1             # the schedule did change the rate


def test_one_cycle_runs_in_the_native_trainer_with_whole_epochs_per_call(monkeypatch):
    """OneCycleLR changes the rate every batch, yet the compiled trainer is not
    called once per batch: it takes the table and applies the rows in C."""
    if "cython" not in available_backends():
        pytest.skip("the compiled backend is not built")
    from fastnn import training
    calls = []
    original = training._NativeTrainer.run

    def run(self, orders, epoch, start, max_batches, losses, catch=False):
        calls.append(max_batches)
        return original(self, orders, epoch, start, max_batches, losses, catch)

    monkeypatch.setattr(training._NativeTrainer, "run", run)
    X, y = _data(n=400)
    net = _net("cython")
    epochs, batch = 10, 8                       # 50 batches per epoch, 500 in all
    history = net.fit(X, y, loss="mse", optimizer=SGD(0.1, momentum=0.9), epochs=epochs,
                      batch_size=batch, shuffle=False, lr_scheduler=OneCycleLR(0.5, 500))
    assert len(history.epochs) == epochs
    assert len(calls) < epochs * 50 / 4         # far fewer calls than batches
    assert max(calls) > 50                      # calls of more than one epoch


@pytest.mark.skipif("cython" not in available_backends(), reason="no compiled backend")
def test_the_c_trainer_refuses_a_batch_past_its_table():
    from fastnn.backends import cython_ops as co
    rng = np.random.default_rng(0)
    X, T = rng.random((4, 3)), rng.random((4, 2))
    W, b = rng.random((3, 2)), rng.random(2)
    stage = {"kind": "dense", "W": W, "b": b, "dW": np.zeros_like(W), "db": np.zeros_like(b),
             "activation": "identity", "alpha": 0.0, "beta": 0.0, "state_W": [None, None],
             "state_b": [None, None]}
    spec = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.0, "weight_decay": 0.0,
            "nesterov": False, "step": 0,
            "schedule": {"names": ("lr",), "values": np.array([[0.5], [0.25]])}}
    trainer = co.CythonOps().make_trainer([stage], "mse", "mean", spec, X, T, 2)
    try:
        losses = np.zeros(2)
        assert trainer.run(None, 0, 0, 2, losses) == (1, 0)
        W1 = W.copy()
        with pytest.raises(ValueError, match="train: invalid argument"):
            trainer.run(None, 1, 0, 1, losses)
        assert np.array_equal(W, W1)            # nothing of the refused batch applied
    finally:
        assert trainer.close()["scheduled_batches"] == 2
    with pytest.raises(ValueError, match="does not have"):
        co.CythonOps().make_trainer([stage], "mse", "mean",
                                    {**spec, "schedule": {"names": ("beta1",),
                                                          "values": np.ones((2, 1))}}, X, T, 2)


@pytest.mark.skipif("cython" not in available_backends(), reason="no compiled backend")
@pytest.mark.parametrize("opt", [lambda: SGD(0.05, momentum=0.9), lambda: Adam(0.01)])
def test_per_batch_table_same_numbers_in_both_trainers(opt):
    X, y = _data(n=45)
    results = []
    for backend in ("numpy", "cython"):
        net = _net(backend)
        history = net.fit(X, y, loss="mse", optimizer=opt(), epochs=6, batch_size=10,
                          seed=0, lr_scheduler=OneCycleLR(0.3, 30))
        results.append((history, [p.copy() for _, p, _ in net.parameters()]))
    (h0, p0), (h1, p1) = results
    assert h0.lr == h1.lr
    np.testing.assert_allclose(h0.loss, h1.loss, rtol=1e-12)
    for a, b in zip(p0, p1):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12)


def test_a_schedule_continues_over_fits(backend):
    X, y = _data()
    opt, sched = SGD(0.1), ExponentialLR(0.5)
    net = _net(backend)
    first = net.fit(X, y, loss="mse", optimizer=opt, epochs=3, lr_scheduler=sched)
    second = net.fit(X, y, loss="mse", optimizer=opt, epochs=2, lr_scheduler=sched)
    assert first.lr + second.lr == [0.1 * 0.5 ** k for k in range(5)]
    assert sched.last_epoch == 5


def test_one_cycle_after_an_interrupted_count_resumes_where_it_stopped(backend):
    X, y = _data()
    opt, sched = SGD(0.1, momentum=0.9), OneCycleLR(0.5, 25)
    net = _net(backend)
    net.fit(X, y, loss="mse", optimizer=opt, epochs=2, batch_size=8, lr_scheduler=sched)
    assert sched.last_epoch == 10
    ref = OneCycleLR(0.5, 25)
    ref.bind(SGD(0.1, momentum=0.9))
    for _ in range(10):
        ref.step()
    assert (opt.lr, opt.momentum) == (ref.optimizer.lr, ref.optimizer.momentum)
    net.fit(X, y, loss="mse", optimizer=opt, epochs=3, batch_size=8, lr_scheduler=sched)
    with pytest.raises(ValueError, match="has 0 steps left but this fit runs 5 batches"):
        net.fit(X, y, loss="mse", optimizer=opt, epochs=1, batch_size=8, lr_scheduler=sched)


def test_plateau_monitors_val_loss_when_there_is_validation_data(backend):
    X, y = _data()
    seen = []

    class Watch(ReduceLROnPlateau):
        def step(self, metrics=None):
            seen.append(metrics)
            super().step(metrics)

    net = _net(backend)
    history = net.fit(X, y, loss="mse", optimizer=SGD(0.1), epochs=3,
                      validation_data=(X[:10], y[:10]), lr_scheduler=Watch())
    assert seen == history.val_loss
    seen.clear()
    history = net.fit(X, y, loss="mse", optimizer=SGD(0.1), epochs=3, lr_scheduler=Watch())
    assert seen == history.loss


# ------------------------------------------------------------------- errors
class _PlainLR(fastnn.Optimizer):
    """An optimizer of one's own, with a learning rate and nothing else."""

    def step(self, network):
        for _, param, grad in network.parameters():
            param -= self.lr * grad


def test_one_cycle_refuses_an_optimizer_without_momentum(backend):
    X, y = _data()
    with pytest.raises(ValueError, match="has neither momentum .SGD. nor betas .Adam.; pass "
                                         "cycle_momentum=False"):
        _net(backend).fit(X, y, loss="mse", optimizer=_PlainLR(0.1), epochs=1,
                          lr_scheduler=OneCycleLR(0.5, 10))
    with pytest.warns(UserWarning, match="user code") if backend == "cython" else _nothing():
        history = _net(backend).fit(X, y, loss="mse", optimizer=_PlainLR(0.1), epochs=2,
                                    lr_scheduler=OneCycleLR(0.5, 20, cycle_momentum=False))
    assert history.lr[0] == pytest.approx(0.5 / 25, rel=1e-14) and history.lr[1] > 0.03


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_schedule_errors_name_the_problem():
    with pytest.raises(ValueError, match="step_size must be >= 1"):
        StepLR(0)
    with pytest.raises(ValueError, match="T_max must be >= 1"):
        CosineAnnealingLR(0)
    with pytest.raises(ValueError, match="start_factor must be > 0"):
        LinearLR(start_factor=0.0)
    with pytest.raises(ValueError, match="anneal_strategy"):
        OneCycleLR(0.1, 10, anneal_strategy="cosine")
    with pytest.raises(ValueError, match="factor must be < 1"):
        ReduceLROnPlateau(factor=1.0)
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        ReduceLROnPlateau(mode="lowest")
    with pytest.raises(TypeError, match="milestones"):
        MultiStepLR(5)
    sched = StepLR(2)
    sched.bind(SGD(0.1))
    with pytest.raises(ValueError, match="already schedules another optimizer"):
        sched.bind(SGD(0.1))
    with pytest.raises(RuntimeError, match="has no optimizer yet"):
        StepLR(2).step()
    X, y = _data()
    with pytest.raises(TypeError, match="lr_scheduler must be a schedule"):
        _net("numpy").fit(X, y, loss="mse", optimizer="sgd",
                          lr_scheduler=L.StepLR(_torch_opt("sgd", 0.1), 2))
    with pytest.raises(ValueError, match=r"total_steps=10\) has 10 steps left but this fit "
                                         r"runs 15 batches"):
        _net("numpy").fit(X, y, loss="mse", optimizer=SGD(0.1, momentum=0.9), epochs=3,
                          batch_size=8, lr_scheduler=OneCycleLR(0.5, 10))


def test_cosine_rates_match_the_closed_form_within_a_period():
    opt = SGD(lr=1.0)
    sched = CosineAnnealingLR(10, 0.1)
    sched.bind(opt)
    for t in range(10):
        assert opt.lr == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi * t / 10)) / 2,
                                       rel=1e-13)
        sched.step()


def test_history_records_the_rate_without_a_schedule(backend):
    X, y = _data()
    opt = Adam(0.003)
    history = _net(backend).fit(X, y, loss="mse", optimizer=opt, epochs=4)  # epochs at once
    assert history.lr == [0.003] * 4

    class Halve(fastnn.callbacks.Callback):    # a callback may change the rate itself
        def on_epoch_end(self, epoch, logs):
            self.network_opt.lr /= 2

    halve = Halve()
    halve.network_opt = opt
    net = _net(backend)
    history = net.fit(X, y, loss="mse", optimizer=opt, epochs=3, callbacks=[halve])
    assert history.lr == [0.003, 0.0015, 0.00075]
    twin = _net(backend)
    twin_opt = Adam(0.003)
    for _ in range(3):                          # the same, epoch by epoch by hand
        twin.fit(X, y, loss="mse", optimizer=twin_opt, epochs=1, shuffle=False)
        twin_opt.lr /= 2
    net2 = _net(backend)
    opt2 = Adam(0.003)
    halve.network_opt = opt2
    net2.fit(X, y, loss="mse", optimizer=opt2, epochs=3, shuffle=False, callbacks=[halve])
    for (_, p, _), (_, q, _) in zip(net2.parameters(), twin.parameters()):
        np.testing.assert_allclose(p, q, rtol=1e-13, atol=1e-15)


@pytest.mark.skipif("cython" not in available_backends(), reason="no compiled backend")
def test_a_callback_changing_another_hyper_parameter_during_one_cycle():
    """The per-batch table sets lr and momentum; a value the schedule does not set
    (weight_decay) changed by a callback between epochs reaches the C trainer too."""
    X, y = _data(n=45)

    class Decay(fastnn.callbacks.Callback):
        def __init__(self, opt):
            self.opt = opt

        def on_epoch_end(self, epoch, logs):
            self.opt.weight_decay = 0.1 * (epoch + 1)

    results = []
    for backend in ("numpy", "cython"):
        opt = SGD(0.05, momentum=0.9)
        net = _net(backend)
        net.fit(X, y, loss="mse", optimizer=opt, epochs=4, batch_size=10, shuffle=False,
                lr_scheduler=OneCycleLR(0.3, 20), callbacks=[Decay(opt)])
        results.append([p.copy() for _, p, _ in net.parameters()])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12)
    plain = _net("cython")
    plain.fit(X, y, loss="mse", optimizer=SGD(0.05, momentum=0.9), epochs=4, batch_size=10,
              shuffle=False, lr_scheduler=OneCycleLR(0.3, 20))
    assert not np.allclose(plain.layers[0].W, results[1][0])   # the decay did change things
