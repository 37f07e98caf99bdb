"""scikit-learn's MLP losses as rows of the loss table (``sk_squared_error``,
``sk_logistic``, ``sk_softmax``).

Why it is built this way: ``fastnn.sklearn`` must give scikit-learn's fitted
model, so its losses are scikit-learn's own: the value of its ``squared_loss``,
``binary_log_loss`` and ``log_loss`` (probabilities clipped to [eps, 1 - eps],
means over rows), and as gradient the output delta of its ``_backprop``
((out - y) * w_i / sum(w), not always the derivative of the value).  They are
tested against scikit-learn's functions themselves, called on probabilities
computed by scikit-learn's own activation functions, on both backends and in
both dtypes, with and without sample weights; at saturated logits, where the
clip decides the value; compiled against the reference; and inside
``Network.fit``, whose compiled trainer must run them in C and end with the
reference's weights -- and, with scikit-learn's draws, batch orders and
optimizers (alpha = 0), with scikit-learn's own fitted models.
"""

import warnings

import numpy as np
import pytest

import fastnn
from fastnn import Dense, MSELoss, Network, Tanh
from fastnn._validation import ZeroWeightError
from fastnn.losses import (_SklearnLogistic, _SklearnSoftmax, _SklearnSquaredError,
                           get_loss)
from fastnn.optimizers import _SklearnAdam, _SklearnSGD

from tests_conftest import fd_grad, tol  # noqa: E402 (conftest.py registers the name)

skbase = pytest.importorskip("sklearn.neural_network._base")

LOSSES = {"sk_squared_error": _SklearnSquaredError, "sk_logistic": _SklearnLogistic,
          "sk_softmax": _SklearnSoftmax}
SHAPES = [(1, 1), (7, 1), (200, 1), (1, 3), (7, 3), (200, 3)]


def _rtol(dtype):
    return 1e-12 if np.dtype(dtype) == np.float64 else 1e-5


def _data(name, rng, n, k, dtype):
    """Outputs (logits) and targets of loss ``name``: values, 0/1 targets, or labels."""
    out = (rng.standard_normal((n, k)) * 3).astype(dtype)
    if name == "sk_squared_error":
        return out, rng.standard_normal((n, k)).astype(dtype)
    if name == "sk_logistic":
        return out, (rng.uniform(size=(n, k)) < 0.5).astype(dtype)
    return out, rng.integers(0, k, n).astype(np.int64)


def _expected(name, out, target, w):
    """scikit-learn's loss value and its output delta (p - y) * w / sum(w), computed
    with scikit-learn's own activation and loss functions on its probabilities."""
    n, k = out.shape
    if name == "sk_squared_error":
        p, y = out, target
        value = skbase.squared_loss(y, p, sample_weight=w)
    elif name == "sk_logistic":
        p, y = out.copy(), target
        skbase.ACTIVATIONS["logistic"](p)                  # expit, in place
        value = skbase.binary_log_loss(y, p, sample_weight=w)
    else:
        p, y = out.copy(), np.eye(k, dtype=out.dtype)[target]
        skbase.ACTIVATIONS["softmax"](p)                   # z - max, exp, / sum, in place
        value = skbase.log_loss(y, p, sample_weight=w)
    delta = (p - y).astype(np.float64)
    if w is not None:
        delta *= w.reshape(-1, 1)
    total = n if w is None else w.sum()
    return float(value), delta / total, total


def _check_delta(grad, want, dtype):
    assert grad.dtype == dtype
    rtol = _rtol(dtype)
    # p - y cancels where p is near y: the error of p, not of the delta, is the scale
    np.testing.assert_allclose(grad, want, rtol=rtol, atol=rtol * 1e-3)


# ----------------------------------------------------- scikit-learn's numbers
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_value_and_delta_are_scikit_learns(ops, name, shape, weighted, dtype, rng):
    n, k = shape
    out, target = _data(name, rng, n, k, dtype)
    w = rng.uniform(0.1, 3.0, n) if weighted else None
    loss = LOSSES[name]()
    T = loss.prepare_target(target, n, k, dtype)
    value, grad = loss.compute(ops, out, T, sample_weight=w)
    want, delta, _ = _expected(name, out, target, w)
    assert value == pytest.approx(want, rel=_rtol(dtype), abs=1e-300)
    _check_delta(grad, delta, dtype)
    # the value without the gradient is the same number
    kwargs = {} if w is None else {"sample_weight": w}
    assert loss.compute(ops, out, T, need_grad=False, **kwargs) == (value, None)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_reduction_sum_leaves_out_the_division(ops, name, weighted, dtype, rng):
    # "sum": sum_i w_i l_i and the delta (p - y) * w_i, i.e. "mean" times sum(w)
    out, target = _data(name, rng, 7, 3, dtype)
    w = rng.uniform(0.1, 3.0, 7) if weighted else None
    T = LOSSES[name]().prepare_target(target, 7, 3, dtype)
    want, delta, total = _expected(name, out, target, w)
    value, grad = LOSSES[name]("sum").compute(ops, out, T, sample_weight=w)
    assert value == pytest.approx(want * total, rel=_rtol(dtype))
    _check_delta(grad, delta * total, dtype)


def test_sample_weights_count_as_copies_of_rows(ops, rng):
    # an integer weight is that many copies of the row, as in scikit-learn
    for name, loss in LOSSES.items():
        out, target = _data(name, rng, 5, 3, np.float64)
        w = np.array([1.0, 3.0, 0.0, 2.0, 1.0])
        reps = w.astype(int)
        T = loss().prepare_target(target, 5, 3, np.float64)
        value, grad = loss().compute(ops, out, T, sample_weight=w)
        value_r, grad_r = loss().compute(ops, np.repeat(out, reps, axis=0),
                                         np.repeat(T, reps, axis=0))
        assert value == pytest.approx(value_r, rel=1e-14), name
        # each copy's delta is a row of the repeated batch's, summed over the copies
        summed = np.zeros_like(grad)
        np.add.at(summed, np.repeat(np.arange(5), reps), grad_r)
        np.testing.assert_allclose(grad, summed, rtol=1e-14, atol=1e-17, err_msg=name)


# ------------------------------------------------------------------ the clip
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
def test_saturated_logistic_outputs_give_scikit_learns_clipped_value(ops, weighted, dtype):
    z = np.array([[800.0, -800.0, 0.5], [-800.0, 800.0, -40.0], [40.0, 800.0, -800.0]],
                 dtype=dtype)
    y = np.array([[0.0, 1.0, 1.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]], dtype=dtype)
    w = np.array([0.5, 2.0, 1.0]) if weighted else None
    value, grad = _SklearnLogistic().compute(ops, z, y, sample_weight=w)
    want, delta, _ = _expected("sk_logistic", z, y, w)
    eps = float(np.finfo(dtype).eps)
    # -log(eps) for a logit saturated on the wrong side: about 36 (float64), 16 (float32)
    assert value > -np.log(eps)
    assert value == pytest.approx(want, rel=_rtol(dtype))
    # the delta uses the unclipped p: exactly 0 or -1 / +1 where saturated
    _check_delta(grad, delta, dtype)
    assert grad[0, 0] * (3.0 if w is None else w.sum() / w[0]) == pytest.approx(1.0)
    assert grad[1, 0] == 0 and grad[0, 1] < 0


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
def test_a_label_with_p_below_eps_gives_scikit_learns_clipped_value(ops, weighted, dtype):
    # rows: p_label = exp(-50)/... (< eps, clipped), p_label = 0 (z = -+800), and
    # p_label = 1 (clipped to 1 - eps)
    z = np.array([[0.0, -50.0, 1.0], [800.0, -800.0, 0.0], [800.0, -800.0, -800.0],
                  [0.25, -0.5, 1.0]], dtype=dtype)
    labels = np.array([1, 1, 0, 2])
    w = np.array([0.5, 2.0, 1.0, 1.5]) if weighted else None
    value, grad = _SklearnSoftmax().compute(ops, z, labels, sample_weight=w)
    want, delta, _ = _expected("sk_softmax", z, labels, w)
    assert value == pytest.approx(want, rel=_rtol(dtype))
    _check_delta(grad, delta, dtype)
    # the clip is what keeps the value finite: -log(eps) for the rows at p = 0
    eps = float(np.finfo(dtype).eps)
    single, _ = _SklearnSoftmax().compute(ops, z[1:2], labels[1:2])
    assert single == pytest.approx(-np.log(eps), rel=_rtol(dtype))


# ------------------------------------------------ gradient vs value, and MSE
def test_the_squared_error_gradient_is_k_over_2_times_mse_losss(ops, rng):
    # scikit-learn's delta (out - y) / n against MSELoss's 2 (out - y) / (n k):
    # k / 2 times it, so it is no MSELoss with a factor (that would scale the
    # value by the same factor); and k times the derivative of its own value
    k = 3
    out, target = _data("sk_squared_error", rng, 7, k, np.float64)
    value, grad = _SklearnSquaredError().compute(ops, out, target)
    mse_value, mse_grad = MSELoss().compute(ops, out, target)
    np.testing.assert_allclose(grad, k / 2 * mse_grad, rtol=1e-14)
    assert value == pytest.approx(mse_value / 2, rel=1e-14)        # 0.5 * the mean

    def f():
        return _SklearnSquaredError().compute(ops, out, target, need_grad=False)[0]
    np.testing.assert_allclose(grad, k * fd_grad(f, out), rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("name", ["sk_logistic", "sk_softmax"])
def test_the_log_loss_deltas_are_the_derivatives_of_their_values(ops, name, rng):
    # away from the clip, (p - y) w / sum(w) is the gradient of the value
    out, target = _data(name, rng, 6, 3, np.float64)
    out /= 3
    w = rng.uniform(0.2, 2.0, 6)
    loss = LOSSES[name]()
    T = loss.prepare_target(target, 6, 3, np.float64)
    _, grad = loss.compute(ops, out, T, sample_weight=w)

    def f():
        return loss.compute(ops, out, T, need_grad=False, sample_weight=w)[0]
    np.testing.assert_allclose(grad, fd_grad(f, out), rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
def test_the_log_losses_are_pytorchs_where_the_clip_does_not_act(ops, weighted, rng):
    # away from saturation scikit-learn's log losses are PyTorch's BCEWithLogitsLoss
    # summed over the outputs and CrossEntropyLoss, per row; both mean over rows
    torch = pytest.importorskip("torch")
    nn = torch.nn
    w = rng.uniform(0.2, 2.0, 9) if weighted else None
    tw = torch.ones(9, dtype=torch.float64) if w is None else torch.from_numpy(w)
    for name in ("sk_logistic", "sk_softmax"):
        out, target = _data(name, rng, 9, 3, np.float64)
        z = torch.from_numpy(out.copy()).requires_grad_(True)
        if name == "sk_logistic":
            rows = nn.BCEWithLogitsLoss(reduction="none")(z, torch.from_numpy(target)).sum(1)
        else:
            rows = nn.CrossEntropyLoss(reduction="none")(z, torch.from_numpy(target))
        expected = (rows * tw).sum() / tw.sum()
        expected.backward()
        value, grad = LOSSES[name]().compute(ops, out, target, sample_weight=w)
        assert value == pytest.approx(expected.item(), rel=1e-12)
        np.testing.assert_allclose(grad, z.grad.numpy(), rtol=1e-12, atol=1e-15)
        print(f"{name} {type(ops).__name__} {'weighted' if weighted else ''}: value "
              f"{abs(value - expected.item()) / expected.item():.1e}, gradient "
              f"{np.max(np.abs(grad - z.grad.numpy()) / np.abs(z.grad.numpy())):.1e}")


# ---------------------------------------------------- compiled vs reference
@pytest.mark.parametrize("shape", [(1, 1), (1, 17), (17, 1), (7, 13), (300, 257)],
                         ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_compiled_kernel_matches_the_reference(name, shape, weighted, dtype, rng):
    co = pytest.importorskip("fastnn.backends.cython_ops")
    ref, comp = fastnn.get_backend("numpy"), co.CythonOps()
    n, k = shape
    out, target = _data(name, rng, n, k, dtype)
    out.reshape(-1)[::11] = 800.0                     # saturated outputs among them
    w = rng.uniform(0, 2, n) if weighted else None
    saved = [a.copy() for a in (out, target)]
    for reduction in ("mean", "sum"):
        for need_grad in (True, False):
            a = getattr(ref, name)(out, target, reduction, sample_weight=w, need_grad=need_grad)
            b = getattr(comp, name)(out, target, reduction, sample_weight=w,
                                    need_grad=need_grad)
            assert isinstance(b[0], float)
            assert b[0] == pytest.approx(a[0], rel=tol(dtype)["rtol"], abs=1e-300)
            if need_grad:
                assert b[1].dtype == out.dtype and b[1].shape == out.shape
                np.testing.assert_allclose(b[1], a[1], **tol(dtype))
            else:
                assert a[1] is None and b[1] is None
    for before, after in zip(saved, (out, target)):
        np.testing.assert_array_equal(before, after)             # inputs untouched


@pytest.mark.parametrize("backend_name", ["numpy", "cython"])
def test_the_kernels_refuse_bad_inputs_alike(backend_name):
    ops = fastnn.get_backend(backend_name)
    z = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"sk_softmax: target labels must lie in \[0, 3\)"):
        ops.sk_softmax(z, np.array([0, 3]))
    with pytest.raises(ValueError, match="sk_softmax needs at least one class"):
        ops.sk_softmax(np.zeros((2, 0)), np.array([0, 0]))
    for name in LOSSES:
        target = np.zeros(2, np.int64) if name == "sk_softmax" else z
        with pytest.raises(ZeroWeightError):
            getattr(ops, name)(z, target, sample_weight=np.zeros(2))
        with pytest.raises(TypeError, match="sample_weight must be a C-contiguous float64"):
            getattr(ops, name)(z, target, sample_weight=np.ones(2, np.float32))
        with pytest.raises(ValueError, match="unknown reduction 'none'"):
            getattr(ops, name)(z, target, "none")
        # an empty batch: the error of an empty mean, and 0 for a sum
        empty = np.zeros((0, 3))
        e_target = np.zeros(0, np.int64) if name == "sk_softmax" else empty
        with pytest.raises(ZeroDivisionError):
            getattr(ops, name)(empty, e_target)
        value, grad = getattr(ops, name)(empty, e_target, "sum")
        assert value == 0 and grad.shape == (0, 3)


# ---------------------------------------------------------- the Python side
def test_the_classes_are_private_rows_of_the_table():
    for name, cls in LOSSES.items():
        assert cls.kernel == name and cls.params == () and cls.vector is None
        assert cls.__name__ not in fastnn.losses.__all__
        assert not hasattr(fastnn, cls.__name__)
        assert type(get_loss(name)) is cls
        assert repr(cls("sum")) == f"{cls.__name__}(reduction='sum')"


def test_targets_are_checked_once_per_fit():
    with pytest.raises(ValueError, match="_SklearnSoftmax takes class labels of shape"):
        _SklearnSoftmax().prepare_target(np.eye(3), 3, 3, np.float64)
    with pytest.raises(ValueError, match=r"class labels must lie in \[0, 3\)"):
        _SklearnSoftmax().prepare_target([0, 1, 3], 3, 3, np.float64)
    with pytest.raises(ValueError, match=r"_SklearnLogistic targets must lie in \[0, 1\]"):
        _SklearnLogistic().prepare_target([[0.0], [2.0]], 2, 1, np.float64)
    labels = _SklearnSoftmax().prepare_target([0.0, 2.0, 1.0], 3, 3, np.float64)
    assert labels.dtype == np.int64 and labels.tolist() == [0, 2, 1]


def test_evaluate_reports_accuracy_by_the_classifiers_rules(backend):
    net = Network([Dense(2, 3)], backend=backend, seed=0)
    net.layers[0].W = [[1.0, 0.0, -1.0], [0.0, 1.0, 0.0]]
    net.layers[0].b = [0.0, 0.0, 0.0]
    X = np.array([[2.0, 0.0], [0.0, 2.0], [-2.0, 0.0], [0.0, -1.0]])
    scores = net.evaluate(X, [0, 1, 2, 1], loss=_SklearnSoftmax())       # argmax: 3 of 4
    assert scores["accuracy"] == 0.75
    net1 = Network([Dense(1, 1)], backend=backend, seed=0)
    net1.layers[0].W, net1.layers[0].b = [[1.0]], [0.0]
    scores = net1.evaluate([[-0.3], [0.2], [0.4], [-2.0]], [0, 1, 0, 0],
                           loss=_SklearnLogistic())                       # logits at 0
    assert scores["accuracy"] == 0.75


# ------------------------------------------------------------ Network.fit
def _fit_data(name, k, rng):
    X = rng.standard_normal((37, 5))
    if name == "sk_squared_error":
        y = rng.standard_normal((37, k))
    elif name == "sk_logistic":
        y = (rng.uniform(size=(37, k)) < 0.4).astype(float)
    else:
        y = rng.integers(0, k, 37)
    return X, y


@pytest.mark.parametrize("size", ["tiny", "proved"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_fit_gives_the_same_weights_on_both_backends(name, k, weighted, size, dtype,
                                                     monkeypatch):
    """The compiled trainer runs the row in C (the Python loop is refused) and ends
    with the reference trainer's weights and losses: a tiny network (the trainer's
    tiny path) and one of more than 4096 parameters (the general path, whose
    updates are proved finite from the gradients' bounds)."""
    if name == "sk_softmax" and k == 1:
        k = 2
    rng = np.random.default_rng(9)
    X, y = _fit_data(name, k, rng)
    X = X.astype(dtype)
    w = rng.uniform(0.2, 2.0, 37) if weighted else None
    hidden, lr = (6, 0.1) if size == "tiny" else (700, 0.01)
    results = []
    for backend in ("numpy", "cython"):
        net = Network([Dense(5, hidden), Tanh(), Dense(hidden, k)], backend=backend, seed=3,
                      dtype=dtype)
        with monkeypatch.context() as m:
            if backend == "cython":
                def refuse(*args, **kwargs):
                    raise AssertionError("the Python trainer ran")
                m.setattr(fastnn.training.PythonTrainer, "__init__", refuse)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                h = net.fit(X, y, loss=LOSSES[name](), optimizer=_SklearnSGD(lr=lr),
                            epochs=6, batch_size=8, shuffle=True, sample_weight=w)
        results.append((net, h))
    (ref, h_ref), (native, h_native) = results
    rtol = _rtol(dtype)
    for (key, p, _), (_, q, _) in zip(ref.parameters(), native.parameters()):
        np.testing.assert_allclose(q, p, rtol=rtol, atol=rtol, err_msg=key)
    np.testing.assert_allclose(h_native.loss, h_ref.loss, rtol=rtol)
    assert h_ref.loss[-1] < h_ref.loss[0]


# ------------------------------ scikit-learn's fitted models (alpha = 0)
def _sklearn_fit(est_cls, X, y, sample_weight, **params):
    est = est_cls(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # ConvergenceWarning: max_iter is small
        est.fit(X, y, sample_weight=sample_weight)
    return est


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "sample_weight"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("problem", ["regression-1", "regression-3", "binary", "multilabel",
                                     "multiclass"])
def test_the_losses_give_scikit_learns_fitted_model(backend, problem, solver, weighted):
    """With scikit-learn's initial draws, batch orders and optimizer rows, a Network
    trained with these losses ends with scikit-learn's coefs_ and intercepts_ (1e-9)
    and, unweighted, its loss_curve_: MLPRegressor (1 and 3 outputs), and
    MLPClassifier binary (one logistic output), multi-label (independent logistic
    outputs) and multiclass (softmax).  alpha = 0: the L2 penalty is not in the
    trainer yet.  The binary problem's network is linear (``activation="identity"``)
    and a few rows are large, so logits beyond +-36 put the clip to work."""
    sksk = pytest.importorskip("fastnn.sklearn")
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.utils import check_random_state
    rng = np.random.default_rng(11)
    n, epochs, batch = 90, 10, 16
    X = rng.standard_normal((n, 6))
    w = rng.uniform(0.2, 3.0, n) if weighted else None
    lr = 1e-2 if solver == "adam" else 0.05
    activation = "identity" if problem == "binary" else "tanh"
    if problem.startswith("regression"):
        k = int(problem[-1])
        y = X[:, :k] * 2 + rng.standard_normal((n, k)) * 0.1
        y_fit, est_cls, loss = (y if k > 1 else y[:, 0]), MLPRegressor, _SklearnSquaredError()
        target = y
    elif problem == "multilabel":
        k = 3
        y = (rng.uniform(size=(n, k)) < 0.5).astype(int)
        y_fit, est_cls, loss, target = y, MLPClassifier, _SklearnLogistic(), y.astype(float)
    elif problem == "binary":
        k = 1
        y = (X[:, 0] > 0).astype(int)
        X[:3] *= 100                             # saturated logits: the clip matters
        y_fit, est_cls, loss, target = y, MLPClassifier, _SklearnLogistic(), \
            y.reshape(-1, 1).astype(float)
    else:
        k = 4
        y = rng.integers(0, k, n)
        y_fit, est_cls, loss, target = y, MLPClassifier, _SklearnSoftmax(), y
    est = _sklearn_fit(est_cls, X, y_fit, w, hidden_layer_sizes=(7,), activation=activation,
                       solver=solver, learning_rate_init=lr, alpha=0.0, batch_size=batch,
                       max_iter=epochs, tol=0.0, n_iter_no_change=10**6, random_state=4)
    rs = check_random_state(4)
    init = sksk._sklearn_initial_weights(rs, [6, 7, k], activation)
    hidden = [] if activation == "identity" else [Tanh()]
    net = Network([Dense(6, 7), *hidden, Dense(7, k)], backend=backend, seed=0)
    dense = [layer for layer in net.layers if isinstance(layer, Dense)]
    for layer, (W, b) in zip(dense, init):
        layer.W, layer.b = W, b
    net._shuffle_rng = sksk._SklearnOrder(rs, n)
    opt = (_SklearnAdam(lr=lr) if solver == "adam"
           else _SklearnSGD(lr=lr, momentum=0.9, nesterov=True))
    curve, largest = [], 0.0
    for _ in range(epochs):
        largest = max(largest, float(np.abs(net.predict(X)).max()))
        h = net.fit(X, target, loss=loss, optimizer=opt, epochs=1, batch_size=batch,
                    sample_weight=w)
        curve.append(h.loss[0])
    if problem == "binary":
        assert largest > -np.log(np.finfo(np.float64).eps) + 1   # p beyond [eps, 1 - eps]
    worst = 0.0
    for layer, W, b in zip(dense, est.coefs_, est.intercepts_):
        np.testing.assert_allclose(layer.W, W, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(layer.b, b, rtol=1e-9, atol=1e-12)
        worst = max(worst, float(np.max(np.abs(layer.W - W) / np.abs(W))),
                    float(np.max(np.abs(layer.b - b) / np.abs(b))))
    if w is None:        # weighted, scikit-learn's curve weighs batches by rows, fit by weight
        np.testing.assert_allclose(curve, est.loss_curve_, rtol=1e-9)
    print(f"{backend} {problem} {solver} {'weighted' if weighted else ''}: largest relative "
          f"difference of coefs_/intercepts_ {worst:.2e}")
