"""Sample and class weights: ``fit(sample_weight=, class_weight=)``, ``evaluate(sample_weight=)``.

Why it is built this way: the definition -- a batch's loss is sum_i w_i l_i /
sum_i w_i for ``reduction="mean"`` (l_i the row's loss, the mean over its
outputs for the per-element losses), sum_i w_i l_i for ``"sum"``; with
``CrossEntropyLoss(weight=c)`` and labels, row i counts w_i * c[y_i] times --
is checked three ways: by hand on the kernels, by its consequence (in
full-batch training an integer weight is that many copies of the row, on
both backends and for every loss), and against PyTorch (``reduction="none"``
losses weighted by hand).  The compiled trainer gathers each batch's weights
with its shuffled rows: it must agree with the reference, which indexes them
in Python.  Bad weights fail with messages naming the problem.
"""

import numpy as np
import pytest

import fastnn
from fastnn import (SGD, Adam, BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, Dense, HuberLoss,
                    L1Loss, MSELoss, Network, Sigmoid, SmoothL1Loss, Tanh)
from fastnn._validation import ZeroWeightError

LOSSES = {
    "mse": (lambda: MSELoss(), "values"),
    "l1": (lambda: L1Loss(), "values"),
    "huber": (lambda: HuberLoss(delta=0.5), "values"),
    "smooth_l1": (lambda: SmoothL1Loss(beta=0.5), "values"),
    "bce": (lambda: BCELoss(), "probs01"),
    "bce_logits": (lambda: BCEWithLogitsLoss(pos_weight=[2.0, 0.5, 1.0]), "probs01"),
    "ce_labels": (lambda: CrossEntropyLoss(), "labels"),
    "ce_labels_w_ls": (lambda: CrossEntropyLoss(weight=[0.5, 2.0, 1.0], label_smoothing=0.1),
                       "labels"),
    "ce_probs_w": (lambda: CrossEntropyLoss(weight=[0.5, 2.0, 1.0]), "dist"),
}


def _targets(kind, rng, n, c=3):
    if kind == "values":
        return rng.standard_normal((n, c))
    if kind == "probs01":
        return rng.integers(0, 2, (n, c)).astype(float)
    if kind == "labels":
        return rng.integers(0, c, n)
    return rng.dirichlet(np.ones(c), n)


def _net(name, backend, dtype="float64"):
    last = [Sigmoid()] if name == "bce" else []
    return Network([Dense(4, 5), Tanh(), Dense(5, 3)] + last, backend=backend, seed=11,
                   dtype=dtype)


def _params(net):
    return [p.copy() for _, p, _ in net.parameters()]


# --------------------------------------------------------- the definition
def test_the_weighted_mean_of_a_multi_output_loss_by_hand(ops, rng):
    pred, target = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    w = np.array([0.5, 0.0, 2.0, 1.0, 3.0])
    row = ((pred - target) ** 2).mean(axis=1)            # l_i: the mean over outputs
    value, grad = ops.mse(pred, target, sample_weight=w)
    assert value == pytest.approx(np.sum(w * row) / np.sum(w), rel=1e-14)
    np.testing.assert_allclose(grad, 2 * (pred - target) * w[:, None] / (3 * w.sum()),
                               rtol=1e-14)
    value, grad = ops.mse(pred, target, "sum", sample_weight=w)
    assert value == pytest.approx(np.sum(w[:, None] * (pred - target) ** 2), rel=1e-14)
    np.testing.assert_allclose(grad, 2 * (pred - target) * w[:, None], rtol=1e-14)


def test_sample_weights_and_class_weights_multiply_in_the_cross_entropy(ops, rng):
    z, y = rng.standard_normal((6, 3)), np.array([0, 1, 2, 1, 0, 2])
    cw, w = np.array([0.5, 2.0, 1.0]), rng.uniform(0.1, 2, 6)
    nll = -(z - np.log(np.exp(z).sum(axis=1, keepdims=True)))[np.arange(6), y]
    value, _ = ops.cross_entropy(z, y, weight=cw, sample_weight=w)
    assert value == pytest.approx(np.sum(w * cw[y] * nll) / np.sum(w * cw[y]), rel=1e-13)
    value, _ = ops.cross_entropy(z, y, "sum", weight=cw, sample_weight=w)
    assert value == pytest.approx(np.sum(w * cw[y] * nll), rel=1e-13)
    # probability targets: PyTorch's mean divides by the rows, here their weights
    t = rng.dirichlet(np.ones(3), 6)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    value, _ = ops.cross_entropy(z, t, weight=cw, sample_weight=w)
    assert value == pytest.approx(-np.sum(w[:, None] * cw * t * logp) / w.sum(), rel=1e-13)


@pytest.mark.parametrize("kernel", ["mse", "l1", "bce_with_logits"])
def test_a_zero_total_weight_under_mean_is_an_error_and_under_sum_zero(ops, kernel):
    pred = np.full((3, 2), 0.25)
    w = np.zeros(3)
    with pytest.raises(ZeroWeightError, match="weights sum to 0"):
        getattr(ops, kernel)(pred, pred, sample_weight=w)
    value, grad = getattr(ops, kernel)(pred, pred, "sum", sample_weight=w)
    assert value == 0 and not grad.any()
    with pytest.raises(ZeroWeightError):
        ops.cross_entropy(pred, np.array([0, 1, 1]), weight=np.array([1.0, 0.0]),
                          sample_weight=np.array([0.0, 1.0, 2.0]))


# ------------------------------------------ integer weights = repeated rows
@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_integer_weights_train_as_repeated_rows(backend, name, reduction, rng):
    make, kind = LOSSES[name]
    X = rng.standard_normal((7, 4))
    y = _targets(kind, rng, 7)
    w = np.array([1, 3, 0, 2, 1, 4, 1])
    loss = make()
    loss.reduction = reduction
    weighted = _net(name, backend)
    h1 = weighted.fit(X, y, loss=loss, optimizer=SGD(lr=0.05, momentum=0.5), epochs=6,
                      sample_weight=w)
    repeated = _net(name, backend)
    h2 = repeated.fit(np.repeat(X, w, axis=0), np.repeat(y, w, axis=0), loss=loss,
                      optimizer=SGD(lr=0.05, momentum=0.5), epochs=6)
    for a, b in zip(_params(weighted), _params(repeated)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(h1.loss, h2.loss, rtol=1e-12)
    # and evaluate weighs the same way, accuracy included
    s1 = weighted.evaluate(X, y, loss=loss, sample_weight=w)
    s2 = weighted.evaluate(np.repeat(X, w, axis=0), np.repeat(y, w, axis=0), loss=loss)
    assert s1.keys() == s2.keys()
    for key in s1:
        assert s1[key] == pytest.approx(s2[key], rel=1e-12)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_weights_change_training(backend, name, rng):
    # not a no-op: other weights give other weights
    make, kind = LOSSES[name]
    X = rng.standard_normal((9, 4))
    y = _targets(kind, rng, 9)
    nets = []
    for w in (None, rng.uniform(0.1, 3.0, 9)):
        net = _net(name, backend)
        net.fit(X, y, loss=make(), optimizer=SGD(lr=0.1), epochs=3, sample_weight=w)
        nets.append(net)
    assert not np.allclose(nets[0].layers[2].W, nets[1].layers[2].W, rtol=1e-6)


# --------------------------------------- compiled trainer vs the reference
@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_shuffled_minibatches_gather_the_weights_with_their_rows(name, dtype, rng):
    # the reference indexes w[order] in Python; the C trainer gathers them itself
    make, kind = LOSSES[name]
    X = rng.standard_normal((29, 4))
    y = _targets(kind, rng, 29)
    w = rng.uniform(0.0, 2.0, 29)
    w[[3, 11]] = 0.0
    result = {}
    for backend in ("numpy", "cython"):
        net = _net(name, backend, dtype)
        history = net.fit(X, y, loss=make(), optimizer=Adam(lr=0.01), epochs=4, batch_size=6,
                          seed=5, sample_weight=w, class_weight=None)
        result[backend] = (history.loss, _params(net))
    close = {"rtol": 1e-10, "atol": 1e-12} if dtype == "float64" else {"rtol": 2e-4,
                                                                      "atol": 1e-5}
    np.testing.assert_allclose(result["numpy"][0], result["cython"][0], **close)
    for a, b in zip(result["numpy"][1], result["cython"][1]):
        np.testing.assert_allclose(a, b, **close)


def test_the_compiled_trainer_runs_weighted_fits_in_c(monkeypatch, rng):
    def refuse(*args, **kwargs):
        raise AssertionError("the Python trainer ran")
    monkeypatch.setattr(fastnn.training.PythonTrainer, "__init__", refuse)
    X, y = rng.standard_normal((10, 4)), rng.integers(0, 3, 10)
    net = _net("ce_labels", "cython")
    net.fit(X, y, loss=CrossEntropyLoss(weight=[1.0, 2.0, 3.0], label_smoothing=0.1),
            optimizer=SGD(lr=0.1), epochs=2, batch_size=3, sample_weight=np.arange(10.0),
            class_weight="balanced")


# ----------------------------------------------------------- vs PyTorch
torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")


@pytest.mark.parametrize("name", ["mse", "huber", "bce_logits", "ce_labels_w_ls", "ce_probs_w"])
def test_weighted_training_matches_a_weighted_pytorch_loop(backend, name):
    rng = np.random.default_rng(3)
    nn = torch.nn
    X = rng.standard_normal((17, 4))
    make, kind = LOSSES[name]
    y = _targets(kind, rng, 17)
    w = rng.uniform(0.1, 2.0, 17)
    loss = make()
    net = _net(name, backend)
    model = net.to_torch().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    if name == "mse":
        per_row = lambda out, t: nn.MSELoss(reduction="none")(out, t).mean(dim=1)  # noqa: E731
    elif name == "huber":
        per_row = lambda out, t: nn.HuberLoss(reduction="none", delta=0.5)(  # noqa: E731
            out, t).mean(dim=1)
    elif name == "bce_logits":
        pw = torch.tensor([2.0, 0.5, 1.0], dtype=torch.float64)
        per_row = lambda out, t: nn.BCEWithLogitsLoss(  # noqa: E731
            reduction="none", pos_weight=pw)(out, t).mean(dim=1)
    else:
        cw = torch.from_numpy(loss.weight)
        per_row = lambda out, t: nn.CrossEntropyLoss(  # noqa: E731
            weight=cw, reduction="none", label_smoothing=loss.label_smoothing)(out, t)
    Xt, yt, wt = torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(w)
    batch, epochs = 5, 4
    for _ in range(epochs):
        for start in range(0, 17, batch):
            s = slice(start, start + batch)
            opt.zero_grad()
            rows = per_row(model(Xt[s]), yt[s])
            # the mean's denominator: the sample weights, times the labels' class weights
            norm = wt[s] * (cw[yt[s]] if kind == "labels" else 1.0)
            (torch.sum(wt[s] * rows) / torch.sum(norm)).backward()
            opt.step()
    net.fit(X, y, loss=loss, optimizer=SGD(lr=0.1, momentum=0.9), epochs=epochs,
            batch_size=batch, shuffle=False, sample_weight=w)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    for layer, linear in zip([lr for lr in net.layers if isinstance(lr, Dense)], linears):
        np.testing.assert_allclose(layer.W, linear.weight.detach().numpy().T, rtol=1e-9,
                                   atol=1e-12)
        np.testing.assert_allclose(layer.b, linear.bias.detach().numpy(), rtol=1e-9,
                                   atol=1e-12)


# --------------------------------------------------------- class weights
def test_class_weight_dict_is_the_sample_weight_of_each_label(backend, rng):
    X, y = rng.standard_normal((12, 4)), rng.integers(0, 3, 12)
    a, b = _net("ce_labels", backend), _net("ce_labels", backend)
    w = rng.uniform(0.5, 1.5, 12)
    a.fit(X, y, loss="cross_entropy", optimizer=SGD(lr=0.1), epochs=3, batch_size=5,
          shuffle=False, sample_weight=w, class_weight={0: 2.0, 2: 0.5})
    table = np.array([2.0, 1.0, 0.5])                   # class 1 not named: 1
    b.fit(X, y, loss="cross_entropy", optimizer=SGD(lr=0.1), epochs=3, batch_size=5,
          shuffle=False, sample_weight=w * table[y])
    for p, q in zip(_params(a), _params(b)):
        np.testing.assert_array_equal(p, q)


def test_balanced_class_weight_is_scikit_learns(backend, rng):
    from sklearn.utils.class_weight import compute_class_weight
    X, y = rng.standard_normal((20, 4)), np.array([0] * 12 + [2] * 6 + [1] * 2)
    expected = compute_class_weight("balanced", classes=np.unique(y), y=y)
    a, b = _net("ce_labels", backend), _net("ce_labels", backend)
    a.fit(X, y, loss="cross_entropy", optimizer=SGD(lr=0.1), epochs=2, shuffle=False,
          class_weight="balanced")
    b.fit(X, y, loss="cross_entropy", optimizer=SGD(lr=0.1), epochs=2, shuffle=False,
          sample_weight=expected[y])
    for p, q in zip(_params(a), _params(b)):
        np.testing.assert_allclose(p, q, rtol=1e-15, atol=0)


def test_class_weight_for_a_binary_output(backend, rng):
    X, y = rng.standard_normal((10, 4)), rng.integers(0, 2, 10).astype(float)
    nets = [Network([Dense(4, 1)], backend=backend, seed=2) for _ in range(2)]
    nets[0].fit(X, y, loss=BCEWithLogitsLoss(), optimizer=SGD(lr=0.1), epochs=2,
                class_weight={1: 3.0}, shuffle=False)
    nets[1].fit(X, y, loss=BCEWithLogitsLoss(), optimizer=SGD(lr=0.1), epochs=2,
                sample_weight=np.where(y == 1, 3.0, 1.0), shuffle=False)
    np.testing.assert_array_equal(nets[0].layers[0].W, nets[1].layers[0].W)


@pytest.mark.parametrize("loss, y, class_weight, error, words", [
    ("cross_entropy", [0, 1, 2, 1], {3: 1.0}, ValueError, "key 3, which is not a class"),
    ("cross_entropy", [0, 1, 2, 1], {True: 1.0}, ValueError, "key True"),
    ("cross_entropy", [0, 1, 2, 1], {0: -1.0}, ValueError, r"class_weight\[0\] must be >= 0"),
    ("cross_entropy", [0, 1, 2, 1], {0: np.nan}, ValueError, "must be finite"),
    ("cross_entropy", [0, 1, 2, 1], "auto", ValueError, "'balanced'"),
    ("cross_entropy", [0, 1, 2, 1], [1.0, 2.0], TypeError, "got list"),
    ("mse", np.zeros((4, 3)), {0: 1.0}, ValueError, "class_weight needs class labels"),
    ("cross_entropy", np.full((4, 3), 1 / 3), "balanced", ValueError,
     "class_weight needs class labels"),
])
def test_bad_class_weights_are_refused(backend, loss, y, class_weight, error, words):
    net = _net("ce_labels", backend)
    W0 = net.layers[0].W.copy()
    with pytest.raises(error, match=words):
        net.fit(np.zeros((4, 4)), y, loss=loss, optimizer=SGD(), class_weight=class_weight)
    np.testing.assert_array_equal(net.layers[0].W, W0)


# ------------------------------------------------------ bad sample weights
@pytest.mark.parametrize("w, words", [
    ([1.0, 2.0, 3.0], "sample_weight has 3 values but there are 4 samples"),
    ([[1.0, 2.0, 3.0, 4.0]], "sample_weight must be 1-D"),
    ([1.0, -2.0, 3.0, 4.0], "sample_weight must be >= 0; got -2 at index 1"),
    ([1.0, np.nan, 3.0, 4.0], r"sample_weight contains NaN or infinity \(first at index \(1,\)"),
    ([1.0, 2.0, np.inf, 4.0], "sample_weight contains NaN or infinity"),
    ([0.0, 0.0, 0.0, 0.0], "every sample has weight 0"),
    (["a", "b", "c", "d"], "sample_weight must hold real numbers"),
])
def test_bad_sample_weights_are_refused_with_the_problem_named(backend, w, words):
    net = _net("mse", backend)
    W0 = net.layers[0].W.copy()
    with pytest.raises((ValueError, TypeError), match=words):
        net.fit(np.zeros((4, 4)), np.zeros((4, 3)), loss="mse", optimizer=SGD(),
                sample_weight=w)
    with pytest.raises((ValueError, TypeError), match=words):
        net.evaluate(np.zeros((4, 4)), np.zeros((4, 3)), loss="mse", sample_weight=w)
    np.testing.assert_array_equal(net.layers[0].W, W0)


def test_a_batch_of_zero_weight_is_refused_before_its_epoch(backend, rng):
    X, y = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))
    w = np.array([1.0, 1.0, 0.0, 0.0, 1.0, 1.0])          # batch 2 of size 2 weighs 0
    net = _net("mse", backend)
    before = _params(net)
    with pytest.raises(ZeroWeightError, match=r"batch 2 of epoch 1 \(samples 2 to 3\) has total "
                                              r"weight 0"):
        net.fit(X, y, loss="mse", optimizer=SGD(lr=0.1), epochs=3, batch_size=2,
                shuffle=False, sample_weight=w)
    for a, b in zip(before, _params(net)):
        np.testing.assert_array_equal(a, b)               # nothing of it trained
    # "sum" has no denominator: the batch just adds nothing
    net.fit(X, y, loss=MSELoss("sum"), optimizer=SGD(lr=0.01), epochs=1, batch_size=2,
            shuffle=False, sample_weight=w)
    # the class weights of the cross-entropy count too: class 0 weighs 0 here
    labels = np.array([1, 2, 0, 0, 1, 2])
    with pytest.raises(ZeroWeightError, match="batch 2 of epoch 1"):
        _net("ce_labels", backend).fit(X, labels, loss=CrossEntropyLoss(weight=[0.0, 1.0, 1.0]),
                                       optimizer=SGD(), batch_size=2, shuffle=False)


def test_a_shuffled_batch_of_zero_weight_names_its_epoch(backend, rng):
    X, y = rng.standard_normal((8, 4)), rng.standard_normal((8, 3))
    w = np.array([1.0] + [0.0] * 7)
    with pytest.raises(ZeroWeightError, match=r"of epoch 1 \(its shuffled samples\)"):
        _net("mse", backend).fit(X, y, loss="mse", optimizer=SGD(), epochs=2, batch_size=2,
                                 seed=0, sample_weight=w)


def test_the_compiled_trainer_refuses_a_zero_weight_batch_itself(rng):
    # below fit's own check: the C loss divides by nothing and changes nothing
    co = pytest.importorskip("fastnn.backends.cython_ops")
    X, T = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    W, b = rng.standard_normal((3, 2)), np.zeros(2)
    W0 = W.copy()
    stage = {"kind": "dense", "W": W, "b": b, "dW": np.zeros_like(W), "db": np.zeros_like(b),
             "activation": "identity", "alpha": 0.0, "beta": 0.0, "state_W": [None, None],
             "state_b": [None, None]}
    spec = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.0, "weight_decay": 0.0,
            "nesterov": False, "step": 0}
    trainer = co.CythonOps().make_trainer([stage], "mse", "mean", spec, X, T, 2, {},
                                          np.array([1.0, 1.0, 0.0, 0.0]))
    try:
        losses = np.zeros(1)
        assert trainer.run(None, 0, 0, 1, losses) == (0, 2)     # the first batch trains
        W1 = W.copy()
        assert not np.array_equal(W1, W0)
        with pytest.raises(ZeroWeightError, match="sum to 0"):
            trainer.run(None, 0, 2, 1, losses)
        np.testing.assert_array_equal(W, W1)
    finally:
        trainer.close()


def test_evaluate_without_weights_is_unchanged_and_weights_can_be_any_array_like(backend,
                                                                                 rng):
    net = _net("ce_labels", backend)
    X, y = rng.standard_normal((5, 4)), rng.integers(0, 3, 5)
    plain = net.evaluate(X, y, loss="cross_entropy")
    ones = net.evaluate(X, y, loss="cross_entropy", sample_weight=[1, 1, 1, 1, 1])
    assert ones["loss"] == pytest.approx(plain["loss"], rel=1e-14)
    assert ones["accuracy"] == plain["accuracy"]


def test_weighted_training_does_not_depend_on_the_thread_count(rng):
    pytest.importorskip("fastnn.backends.cython_ops")
    X, y = rng.standard_normal((256, 64)), rng.integers(0, 10, 256)
    w = rng.uniform(0, 3, 256)
    before = fastnn.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            fastnn.set_num_threads(threads)
            net = Network([Dense(64, 128), Tanh(), Dense(128, 10)], backend="cython", seed=1)
            net.fit(X, y, loss=CrossEntropyLoss(weight=np.linspace(0.5, 2, 10),
                                                label_smoothing=0.05),
                    optimizer=SGD(lr=0.05, momentum=0.9), epochs=2, batch_size=64, seed=2,
                    sample_weight=w)
            results.append(_params(net))
    finally:
        fastnn.set_num_threads(before)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------- with validation_split and metrics
def test_validation_split_keeps_the_weights_of_the_rows_it_trains_on(backend, rng):
    """The held-out rows' weights are dropped with them: the fit equals one given
    the training rows, their weights and the held-out rows as validation_data."""
    X, y = rng.standard_normal((10, 4)), rng.integers(0, 3, 10)
    w = rng.random(10) + 0.1
    split = _net("ce", backend)
    h1 = split.fit(X, y, loss="cross_entropy", optimizer=SGD(lr=0.1), epochs=3, batch_size=4,
                   seed=0, sample_weight=w, validation_split=0.3)
    given = _net("ce", backend)
    h2 = given.fit(X[:7], y[:7], loss="cross_entropy", optimizer=SGD(lr=0.1), epochs=3,
                   batch_size=4, seed=0, sample_weight=w[:7], validation_data=(X[7:], y[7:]))
    for a, b in zip(_params(split), _params(given)):
        np.testing.assert_array_equal(a, b)
    assert h1.loss == h2.loss and h1["val_loss"] == h2["val_loss"]


def test_validation_split_refuses_training_rows_that_all_weigh_zero(backend, rng):
    X, y = rng.standard_normal((10, 4)), rng.integers(0, 3, 10)
    w = np.r_[np.zeros(7), np.ones(3)]
    with pytest.raises(ValueError, match="left by validation_split has weight 0"):
        _net("ce", backend).fit(X, y, loss="cross_entropy", optimizer=SGD(lr=0.1),
                                sample_weight=w, validation_split=0.3)


def test_evaluate_refuses_unweighted_metrics_beside_sample_weight(backend, rng):
    X, y = rng.standard_normal((5, 4)), rng.integers(0, 3, 5)
    net = _net("ce", backend)
    with pytest.raises(ValueError, match="metrics or sample_weight, not both"):
        net.evaluate(X, y, loss="cross_entropy", sample_weight=np.ones(5), metrics=["accuracy"])
    assert "accuracy" in net.evaluate(X, y, loss="cross_entropy", metrics=["accuracy"])
