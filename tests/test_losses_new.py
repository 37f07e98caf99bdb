"""The losses L1Loss, HuberLoss, SmoothL1Loss, BCEWithLogitsLoss and the weighted,
label-smoothed CrossEntropyLoss: PyTorch's numbers, gradients, both backends.

Why it is built this way: fastnn promises PyTorch's definitions, so each loss's
value and gradient (torch's autograd) are compared in float64 with torch's
module of the same name and arguments, on both backends, with the kinks
(|d| = 0, delta, beta; beta = 0) among the points; then the analytic gradient
against central differences through an activation; then the compiled kernel
against the reference over the shape grid in both dtypes; then whole
trajectories of ``fit`` against the same PyTorch loop (1e-9 relative), with
the compiled trainer checked to run in C.  Parameter checks come last.
"""

import warnings

import numpy as np
import pytest

import fastnn
from fastnn import (SGD, Adam, BCEWithLogitsLoss, CrossEntropyLoss, Dense, HuberLoss, L1Loss,
                    Network, ReLU, Sigmoid, SmoothL1Loss, Tanh)
from fastnn.losses import get_loss

from tests_conftest import fd_grad, tol  # noqa: E402 (conftest.py registers the name)

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
nn = torch.nn

REDUCTIONS = ("mean", "sum")


def _pair(name, reduction):
    """(fastnn loss, torch loss, kind of target) for a case name."""
    if name == "l1":
        return L1Loss(reduction), nn.L1Loss(reduction=reduction), "values"
    if name.startswith("huber"):
        delta = float(name.split("_")[1])
        return (HuberLoss(reduction, delta=delta), nn.HuberLoss(reduction=reduction, delta=delta),
                "values")
    if name.startswith("smooth_l1"):
        beta = float(name.split("_")[2])
        return (SmoothL1Loss(reduction, beta=beta),
                nn.SmoothL1Loss(reduction=reduction, beta=beta), "values")
    if name == "bce_logits":
        return BCEWithLogitsLoss(reduction), nn.BCEWithLogitsLoss(reduction=reduction), "probs01"
    if name == "bce_logits_pw":
        pw = np.array([2.0, 0.25, 1.0])
        return (BCEWithLogitsLoss(reduction, pos_weight=pw),
                nn.BCEWithLogitsLoss(reduction=reduction, pos_weight=torch.from_numpy(pw)),
                "probs01")
    cw = np.array([0.5, 2.0, 1.0])
    weight = cw if "_w" in name else None
    eps = 0.2 if "_ls" in name else 0.0
    torch_loss = nn.CrossEntropyLoss(weight=None if weight is None else torch.from_numpy(cw),
                                     reduction=reduction, label_smoothing=eps)
    ours = CrossEntropyLoss(reduction, weight=weight, label_smoothing=eps)
    return ours, torch_loss, "labels" if name.startswith("ce_labels") else "dist"


CASES = ["l1", "huber_1.0", "huber_0.3", "smooth_l1_1.0", "smooth_l1_0.3", "smooth_l1_0.0",
         "bce_logits", "bce_logits_pw", "ce_labels_w", "ce_labels_ls", "ce_labels_w_ls",
         "ce_dist_w", "ce_dist_ls", "ce_dist_w_ls"]


def _data(kind, rng, n=9, c=3):
    pred = rng.standard_normal((n, c)) * 2
    if kind == "values":
        target = rng.standard_normal((n, c))
        # kinks: d = 0, d = +-1, +-0.3 exactly (the deltas and betas above)
        target[0] = pred[0]
        target[1] = pred[1] - np.array([1.0, -1.0, 0.3])
        target[2] = pred[2] + np.array([0.3, -0.3, 0.0])
        return pred, target, torch.from_numpy(target)
    if kind == "probs01":
        pred[0] = [40.0, -40.0, 800.0]      # far from 0: the stable formula
        target = rng.uniform(0, 1, (n, c))
        target[1] = [0.0, 1.0, 1.0]
        return pred, target, torch.from_numpy(target)
    if kind == "labels":
        labels = rng.integers(0, c, n)
        return pred, labels, torch.from_numpy(labels)
    dist = rng.dirichlet(np.ones(c), n)
    return pred, dist, torch.from_numpy(dist)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", CASES)
def test_value_and_gradient_match_pytorch(ops, case, reduction, rng):
    ours, theirs, kind = _pair(case, reduction)
    pred, target, t_target = _data(kind, rng)
    T = ours.prepare_target(target, *pred.shape, np.float64)
    value, grad = ours.compute(ops, pred, T)
    z = torch.from_numpy(pred.copy()).requires_grad_(True)
    expected = theirs(z, t_target)
    expected.backward()
    assert value == pytest.approx(expected.item(), rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(grad, z.grad.numpy(), rtol=1e-12, atol=1e-15)
    # the value without the gradient is the same number
    assert ours.compute(ops, pred, T, need_grad=False) == (value, None)


def test_subgradients_at_the_kinks_are_pytorchs(ops):
    d = np.array([[-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0]])
    zero = np.zeros_like(d)
    for loss, expected in [
        (L1Loss("sum"), [-1, -1, -1, 0, 1, 1, 1]),                  # sgn: 0 at 0
        (HuberLoss("sum", delta=1.0), [-1, -1, -0.5, 0, 0.5, 1, 1]),  # d at |d| = delta
        (SmoothL1Loss("sum", beta=1.0), [-1, -1, -0.5, 0, 0.5, 1, 1]),
        (SmoothL1Loss("sum", beta=0.0), [-1, -1, -1, 0, 1, 1, 1]),  # beta 0: L1, 0 at 0
    ]:
        value, grad = loss.compute(ops, d, zero)
        np.testing.assert_array_equal(grad, [expected], err_msg=repr(loss))
        assert np.isfinite(value)


def test_bce_with_logits_is_stable_for_huge_logits(ops):
    x = np.array([[1e4, -1e4, 745.0, -745.0]])
    t = np.array([[1.0, 0.0, 0.0, 1.0]])
    value, grad = BCEWithLogitsLoss("sum").compute(ops, x, t)
    assert value == pytest.approx(745.0 * 2, rel=1e-15)
    np.testing.assert_array_equal(grad, [[0.0, 0.0, 1.0, -1.0]])


# -------------------------------------------------------- finite differences
EPS = 1e-6


def _fd(f, x):
    return fd_grad(f, x, EPS)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
def test_gradient_through_an_activation_matches_finite_differences(ops, case, reduction,
                                                                   weighted, rng):
    # L(tanh(Z)) with targets away from every kink (|d| not within 1e-3 of 0,
    # delta or beta), so central differences are exact to ~1e-9
    ours, _, kind = _pair(case, reduction)
    Z = rng.uniform(-1.5, 1.5, (6, 3))
    _, target, _ = _data(kind, rng, 6, 3)
    if kind == "values":
        target = np.tanh(Z) + rng.choice([-1, 1], Z.shape) * rng.uniform(0.05, 0.25, Z.shape)
    T = ours.prepare_target(target, 6, 3, np.float64)
    w = rng.uniform(0.2, 2.0, 6) if weighted else None
    act = fastnn.Tanh()
    act.build(3, ops, np.dtype(np.float64), np.random.default_rng(0))

    def value():
        return ours.compute(ops, act.forward(Z.copy()), T, need_grad=False,
                            sample_weight=w)[0]

    Y = act.forward(Z)
    _, dY = ours.compute(ops, Y, T, sample_weight=w)
    np.testing.assert_allclose(act.backward(dY), _fd(value, Z), rtol=1e-6, atol=1e-9)


# ---------------------------------------------------- compiled vs reference
SHAPES = [(1, 1), (1, 17), (17, 1), (7, 13), (300, 257)]


def _kernel_args(case):
    ours = _pair(case, "mean")[0]
    return ours.kernel, ours.kernel_args(), _pair(case, "mean")[2]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
def test_compiled_kernel_matches_the_reference(case, shape, weighted, dtype, rng):
    co = pytest.importorskip("fastnn.backends.cython_ops")
    ref, comp = fastnn.get_backend("numpy"), co.CythonOps()
    kernel, kwargs, kind = _kernel_args(case)
    n, c = shape
    if "weight" in kwargs and kwargs["weight"] is not None:
        kwargs["weight"] = rng.uniform(0.1, 2.0, c)
    if kwargs.get("pos_weight") is not None:
        kwargs["pos_weight"] = rng.uniform(0.1, 3.0, c)
    pred = (rng.standard_normal((n, c)) * 3).astype(dtype)
    if kind == "values":
        target = (pred + rng.standard_normal((n, c))).astype(dtype)
        target.reshape(-1)[::5] = pred.reshape(-1)[::5]           # d = 0 included
    elif kind == "probs01":
        target = rng.uniform(0, 1, (n, c)).astype(dtype)
    elif kind == "labels":
        target = rng.integers(0, c, n).astype(np.int64)
    else:
        target = rng.dirichlet(np.ones(c), n).astype(dtype)
    w = rng.uniform(0, 2, n) if weighted else None
    saved = [a.copy() for a in (pred, target)]
    for reduction in REDUCTIONS:
        for need_grad in (True, False):
            a = getattr(ref, kernel)(pred, target, reduction, sample_weight=w,
                                     need_grad=need_grad, **kwargs)
            b = getattr(comp, kernel)(pred, target, reduction, sample_weight=w,
                                      need_grad=need_grad, **kwargs)
            assert b[0] == pytest.approx(a[0], rel=tol(dtype)["rtol"] * 10, abs=1e-12)
            if need_grad:
                assert b[1].dtype == pred.dtype and b[1].shape == pred.shape
                np.testing.assert_allclose(b[1], a[1], **tol(dtype))
            else:
                assert a[1] is None and b[1] is None
    for before, after in zip(saved, (pred, target)):
        np.testing.assert_array_equal(before, after)             # inputs untouched


def test_the_unweighted_cross_entropy_keeps_its_bits(backend, rng):
    # weight None, label_smoothing 0 and no sample weights is the old kernel
    ops = fastnn.get_backend(backend)
    z = rng.standard_normal((40, 5))
    labels = rng.integers(0, 5, 40)
    ones = np.ones(40)
    plain = ops.cross_entropy(z, labels)
    weighted = ops.cross_entropy(z, labels, weight=np.ones(5), sample_weight=ones)
    assert weighted[0] == pytest.approx(plain[0], rel=1e-14)
    np.testing.assert_allclose(weighted[1], plain[1], rtol=1e-14, atol=1e-17)


# ----------------------------------------------------- training vs PyTorch
def _torch_losses(case):
    return _pair(case, "mean")


@pytest.mark.parametrize("case", ["l1", "huber_0.3", "smooth_l1_0.3", "smooth_l1_0.0",
                                  "bce_logits_pw", "ce_labels_w_ls", "ce_dist_w_ls",
                                  "ce_labels_ls"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_training_trajectory_matches_pytorch(backend, case, optimizer, monkeypatch):
    rng = np.random.default_rng(7)
    ours, theirs, kind = _torch_losses(case)
    X = rng.standard_normal((21, 4))
    _, y, t_y = _data(kind, rng, 21, 3)
    net = Network([Dense(4, 6), Tanh(), Dense(6, 3)], backend=backend, seed=3)
    model = net.to_torch().train()
    if optimizer == "sgd":
        ours_opt, opt = SGD(lr=0.1, momentum=0.9), torch.optim.SGD(model.parameters(), lr=0.1,
                                                                   momentum=0.9)
    else:
        ours_opt, opt = Adam(lr=0.02), torch.optim.Adam(model.parameters(), lr=0.02)
    epochs, batch = 5, 8
    Xt = torch.from_numpy(X)
    torch_losses = []
    for _ in range(epochs):
        total = 0.0
        for start in range(0, 21, batch):
            opt.zero_grad()
            value = theirs(model(Xt[start:start + batch]), t_y[start:start + batch])
            value.backward()
            opt.step()
            # the epoch's loss: batch losses weighted by the batch's total weight
            if kind == "labels" and ours.weight is not None:
                total += value.item() * float(ours.weight[y[start:start + batch]].sum())
            else:
                total += value.item() * min(batch, 21 - start)
        norm = float(ours.weight[y].sum()) if kind == "labels" and ours.weight is not None \
            else 21
        torch_losses.append(total / norm)
    if backend == "cython":       # the compiled trainer runs it, not the Python loop
        def refuse(*args, **kwargs):
            raise AssertionError("the Python trainer ran")
        monkeypatch.setattr(fastnn.training.PythonTrainer, "__init__", refuse)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = net.fit(X, y, loss=ours, optimizer=ours_opt, epochs=epochs, batch_size=batch,
                          shuffle=False)
    np.testing.assert_allclose(history.loss, torch_losses, rtol=1e-9)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    dense = [layer for layer in net.layers if isinstance(layer, Dense)]
    worst = 0.0
    for layer, linear in zip(dense, linears):
        for ours_p, theirs_p in ((layer.W, linear.weight.detach().numpy().T),
                                 (layer.b, linear.bias.detach().numpy())):
            np.testing.assert_allclose(ours_p, theirs_p, rtol=1e-9, atol=1e-12)
            worst = max(worst, float(np.max(np.abs(ours_p - theirs_p) / np.abs(theirs_p))))
    print(f"{case} {optimizer} {backend}: largest relative difference {worst:.2e}")


def test_bce_with_logits_accuracy_thresholds_logits_at_zero(backend):
    net = Network([Dense(1, 1)], backend=backend, seed=0)
    net.layers[0].W = [[1.0]]
    net.layers[0].b = [0.0]
    X = np.array([[-0.3], [0.2], [0.4], [-2.0]])
    y = np.array([0, 1, 0, 0])
    scores = net.evaluate(X, y, loss=BCEWithLogitsLoss())
    assert scores["accuracy"] == 0.75          # logits -0.3, 0.2, 0.4, -2: one wrong


# ---------------------------------------------------------------- checks
@pytest.mark.parametrize("make, words", [
    (lambda: HuberLoss(delta=0.0), "delta must be > 0"),
    (lambda: HuberLoss(delta=-1.0), "delta must be > 0"),
    (lambda: SmoothL1Loss(beta=-0.5), "beta must be >= 0"),
    (lambda: SmoothL1Loss(beta=float("nan")), "beta must be finite"),
    (lambda: CrossEntropyLoss(label_smoothing=1.5), "label_smoothing must be <= 1"),
    (lambda: CrossEntropyLoss(label_smoothing=-0.1), "label_smoothing must be >= 0"),
    (lambda: CrossEntropyLoss(weight=[1.0, -2.0]), "weight must be >= 0; got -2 at index 1"),
    (lambda: CrossEntropyLoss(weight=[1.0, np.nan]), "weight contains NaN"),
    (lambda: CrossEntropyLoss(weight=[[1.0]]), "weight must be 1-D"),
    (lambda: BCEWithLogitsLoss(pos_weight=[-1.0]), "pos_weight must be >= 0"),
    (lambda: CrossEntropyLoss("none"), "reduction must be one of"),
])
def test_bad_parameters_are_refused_when_the_loss_is_made(make, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(")):
        make()


def test_a_weight_vector_of_the_wrong_length_names_both(backend):
    net = Network([Dense(2, 3)], backend=backend, seed=0)
    X = np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"weight=...\) has 2 weights but the network has 3"):
        net.fit(X, [0, 1, 2, 0], loss=CrossEntropyLoss(weight=[1.0, 2.0]), optimizer=SGD())
    with pytest.raises(ValueError, match=r"pos_weight=...\) has 1 weights but the network has"):
        net.fit(X, np.zeros((4, 3)), loss=BCEWithLogitsLoss(pos_weight=[1.0]), optimizer=SGD())


@pytest.mark.parametrize("backend_name", ["numpy", "cython"])
def test_the_kernels_refuse_bad_parameters_alike(backend_name):
    ops = fastnn.get_backend(backend_name)
    p = np.zeros((2, 3))
    with pytest.raises(ValueError, match="huber: delta must be > 0"):
        ops.huber(p, p, delta=0.0)
    with pytest.raises(ValueError, match="smooth_l1: beta must be >= 0"):
        ops.smooth_l1(p, p, beta=-1.0)
    with pytest.raises(ValueError, match="label_smoothing must be <= 1"):
        ops.cross_entropy(p, np.zeros(2, np.int64), label_smoothing=2.0)
    with pytest.raises(ValueError, match="weight has 2 values but there are 3 outputs"):
        ops.cross_entropy(p, np.zeros(2, np.int64), weight=np.ones(2))
    with pytest.raises(ValueError, match="pos_weight has 2 values but there are 3 outputs"):
        ops.bce_with_logits(p, p, pos_weight=np.ones(2))
    with pytest.raises(TypeError, match="sample_weight must be a C-contiguous float64"):
        ops.l1(p, p, sample_weight=np.ones(2, np.float32))


def test_get_loss_knows_the_new_names():
    assert type(get_loss("l1")) is L1Loss
    assert type(get_loss("huber")) is HuberLoss and get_loss("huber").delta == 1.0
    assert type(get_loss("smooth_l1")) is SmoothL1Loss and get_loss("smooth_l1").beta == 1.0
    assert type(get_loss("bce_with_logits")) is BCEWithLogitsLoss
    ce = get_loss("cross_entropy")
    assert ce.weight is None and ce.label_smoothing == 0.0       # PyTorch's defaults
    assert BCEWithLogitsLoss().pos_weight is None


def test_a_sigmoid_net_with_bce_with_logits_trains_on_both_backends_alike(rng):
    X = rng.standard_normal((30, 3))
    y = (X[:, :1] > 0).astype(float)
    weights = {}
    for backend in ("numpy", "cython"):
        net = Network([Dense(3, 5), ReLU(), Dense(5, 1)], backend=backend, seed=4)
        net.fit(X, y, loss=BCEWithLogitsLoss(pos_weight=[3.0]), optimizer=Adam(lr=0.05),
                epochs=20, batch_size=7, seed=1)
        weights[backend] = net.layers[2].W
    np.testing.assert_allclose(weights["numpy"], weights["cython"], rtol=1e-10, atol=1e-12)


def test_bce_loss_still_wants_a_sigmoid_and_bce_with_logits_does_not(backend):
    net = Network([Dense(2, 1)], backend=backend, seed=0)
    X, y = np.zeros((2, 2)), np.array([0.0, 1.0])
    with pytest.raises(ValueError, match="end the network with Sigmoid"):
        net.fit(X, y, loss="bce", optimizer=SGD())
    net.fit(X, y, loss="bce_with_logits", optimizer=SGD())
    Network([Dense(2, 1), Sigmoid()], backend=backend, seed=0).fit(X, y, loss="bce",
                                                                   optimizer=SGD())
