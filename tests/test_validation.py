"""Input checks at the API boundary: odd-but-valid inputs (non-contiguous, Fortran
order, read-only, integer, lists) work, give the clean float64 result and are
never modified; a few name checks.  The bad-input battery (every entry point,
both backends, crash-safe) is tests/test_bad_input.py.
"""

import numpy as np
import pytest

import fastnn
from fastnn import (SGD, Adam, BCELoss, Dense, Dropout, MSELoss, Network, Perceptron, ReLU,
                    Sigmoid, Tanh)


def _reg(backend, dtype="float64"):
    return Network([Dense(2, 4), Tanh(), Dense(4, 1)], backend=backend, dtype=dtype, seed=0)


def _clf(backend, dtype="float64"):
    return Network([Dense(2, 4), Tanh(), Dense(4, 3)], backend=backend, dtype=dtype, seed=0)


X4 = np.array([[0.0, 1.0], [1.0, 0.5], [-1.0, 2.0], [0.5, -0.5]])
Y4 = np.array([0.0, 1.0, 1.0, 0.0])
L4 = np.array([0, 2, 1, 2])


def _fit(net, X, y, loss="mse", **kw):
    return net.fit(X, y, loss=loss, optimizer=SGD(0.1), epochs=1, **kw)


# -------------------------------------------------------------- network
@pytest.mark.parametrize("name", ["cuda", "NumPy2", ""])
def test_unknown_backend(name):
    match = rf"unknown backend '{name}'; expected one of \['cython', 'numpy'\]"
    with pytest.raises(ValueError, match=match):
        Network([Dense(2, 1)], backend=name)
    with pytest.raises(ValueError, match=match):
        fastnn.set_backend(name)
    with pytest.raises(ValueError, match=match):
        fastnn.get_backend(name)
    with pytest.raises(ValueError, match=match):
        with fastnn.use_backend(name):
            pass
    with pytest.raises(TypeError, match="backend name must be a string, got int"):
        Network([Dense(2, 1)], backend=3)


def test_unknown_loss_and_optimizer(backend):
    with pytest.raises(ValueError, match=r"unknown loss 'hinge'; expected a Loss or one of"):
        _reg(backend).fit(X4, Y4, loss="hinge", optimizer="sgd")
    with pytest.raises(ValueError, match=r"unknown loss 'hinge'"):
        _reg(backend).evaluate(X4, Y4, loss="hinge")
    with pytest.raises(ValueError, match=r"unknown optimizer 'lion'; expected an Optimizer"):
        _reg(backend).fit(X4, Y4, loss="mse", optimizer="lion")
    with pytest.raises(ValueError, match=r"unknown optimizer"):
        _reg(backend).fit(X4, Y4, loss="mse", optimizer=None)
    with pytest.raises(ValueError, match=r"reduction must be one of \('mean', 'sum'\), got 'avg'"):
        MSELoss(reduction="avg")


def test_unknown_activation_and_init(ops):
    X = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"unknown activation 'swish'; expected one of"):
        ops.activation_forward(X, "swish")
    with pytest.raises(ValueError, match=r"unknown activation 'swish'"):
        ops.activation_backward(X, X, X, "swish")
    with pytest.raises(ValueError, match=r"unknown init 'uniform'; expected one of"):
        Dense(2, 3, init="uniform")


def test_zero_epochs_is_a_no_op(backend):
    net = _reg(backend)
    before = net.layers[0].W.copy()
    hist = net.fit(X4, Y4, loss="mse", optimizer=SGD(0.1), epochs=0)
    assert hist.epochs == [] and hist.history == {}
    np.testing.assert_array_equal(net.layers[0].W, before)


def test_perceptron_checks_input(backend):
    p = Perceptron(2, seed=0, backend=backend)
    with pytest.raises(ValueError, match="Perceptron targets must be 0 or 1"):
        p.fit(X4, np.array([0, 1, 2, 0]))
    with pytest.raises(ValueError, match=r"X has 4 samples but y has shape \(3,\)"):
        p.fit(X4, np.array([0, 1, 0]))
    with pytest.raises(ValueError, match="X has 3 features per sample"):
        p.predict(np.zeros((2, 3)))


# ------------------------------------------------- odd but valid inputs
def _variants(X):
    """(name, array-like) views of X with the same values and other layouts / types."""
    big = np.zeros((X.shape[0] * 2, X.shape[1] * 3))
    big[::2, ::3] = X
    ro = X.copy()
    ro.flags.writeable = False
    out = [
        ("non_contiguous", big[::2, ::3]),
        ("fortran", np.asfortranarray(X)),
        ("read_only", ro),
        ("list", X.tolist()),
        ("float32_input", X.astype(np.float32)),
    ]
    if np.array_equal(X, np.round(X)):
        out += [("int64", X.astype(np.int64)), ("int32", X.astype(np.int32)),
                ("uint8", X.astype(np.uint8) if (X >= 0).all() else X.astype(np.int8))]
    return out


def _integer_data(rng, n=12):
    X = rng.integers(0, 5, (n, 2)).astype(np.float64)
    y = (X[:, 0] > X[:, 1]).astype(np.float64)
    labels = rng.integers(0, 3, n)
    return X, y, labels


@pytest.mark.parametrize("which", ["X", "y", "labels"])
def test_odd_inputs_give_the_clean_result_and_are_not_modified(backend, dtype, which, rng):
    X, y, labels = _integer_data(rng)
    if which == "X":
        cases = _variants(X)
    elif which == "y":
        cases = [(name, [r[0] for r in v] if isinstance(v, list) else v[:, 0])
                 for name, v in _variants(y.reshape(-1, 1))]
    else:
        cases = [("non_contiguous", np.repeat(labels, 2)[::2]), ("read_only", labels.copy()),
                 ("list", labels.tolist()), ("int32", labels.astype(np.int32)),
                 ("float_labels", labels.astype(np.float64))]
        cases[1][1].flags.writeable = False
    make = _clf if which == "labels" else _reg
    loss = "cross_entropy" if which == "labels" else "mse"
    target = labels if which == "labels" else y

    clean = make(backend, dtype)
    clean_hist = clean.fit(X, target, loss=loss, optimizer=Adam(0.01), epochs=2, batch_size=5,
                           seed=1, validation_data=(X, target))
    clean_pred = clean.predict(X)
    clean_eval = clean.evaluate(X, target, loss=loss)
    for name, value in cases:
        snapshot = np.array(value, copy=True)
        Xv = value if which == "X" else X
        tv = value if which != "X" else target
        net = make(backend, dtype)
        hist = net.fit(Xv, tv, loss=loss, optimizer=Adam(0.01), epochs=2, batch_size=5, seed=1,
                       validation_data=(Xv, tv))
        for (k, p, _), (_, q, _) in zip(net.parameters(), clean.parameters()):
            np.testing.assert_array_equal(p, q, err_msg=f"{name}: {k}")
        assert hist.history == clean_hist.history, name
        if which == "X":
            pred = net.predict(Xv)
            assert pred.dtype == dtype
            np.testing.assert_array_equal(pred, clean_pred, err_msg=name)
            np.testing.assert_array_equal(net.forward(Xv), clean_pred, err_msg=name)
        assert net.evaluate(Xv, tv, loss=loss) == clean_eval, name
        # never modified
        after = np.asarray(value)
        assert after.dtype == snapshot.dtype, name
        np.testing.assert_array_equal(after, snapshot, err_msg=name)
        if isinstance(value, np.ndarray) and name == "read_only":
            assert not value.flags.writeable


def test_caller_arrays_are_not_modified_by_any_call(backend, rng):
    # clean float64 C arrays too: fit / predict / evaluate / forward / backward / losses
    X = rng.standard_normal((8, 2))
    y = rng.uniform(0, 1, 8)
    Xc, yc = X.copy(), y.copy()
    net = Network([Dense(2, 3), ReLU(), Dropout(0.2), Dense(3, 1), Sigmoid()], backend=backend,
                  seed=0)
    net.fit(X, y, loss="bce", optimizer=SGD(0.1, momentum=0.9), epochs=2, batch_size=3,
            validation_data=(X, y))
    net.predict(X)
    net.evaluate(X, y, loss="bce")
    out = net.forward(X, training=True)
    grad = np.ones_like(out)
    gc = grad.copy()
    net.backward(grad)
    BCELoss()(out, y)
    MSELoss().gradient(out, y)
    np.testing.assert_array_equal(X, Xc)
    np.testing.assert_array_equal(y, yc)
    np.testing.assert_array_equal(grad, gc)


def test_perceptron_accepts_lists_and_integers(backend):
    X, y = fastnn.datasets.and_gate()
    a = Perceptron(2, seed=3, backend=backend)
    b = Perceptron(2, seed=3, backend=backend)
    Xl, yl = X.astype(int).tolist(), y.astype(int).tolist()
    a.fit(X, y)
    b.fit(Xl, yl)
    np.testing.assert_array_equal(a.weights, b.weights)
    np.testing.assert_array_equal(b.predict(Xl), [0, 0, 0, 1])
    assert Xl == [[0, 0], [0, 1], [1, 0], [1, 1]] and yl == [0, 0, 0, 1]


# ------------------------------------------- weights assigned: the dtype rule
def test_weight_assignment_converts_in_place(backend, dtype, rng):
    # any real dtype and layout is converted to the network's dtype and copied into the
    # same array (optimizer state and views stay valid); fit/predict then give exactly
    # the result of assigning the clean array
    W = rng.integers(-3, 4, (2, 4)).astype(np.float64) / 4     # exact in float32 too
    big = np.zeros((4, 8))
    big[::2, ::2] = W
    ro = W.copy()
    ro.flags.writeable = False
    variants = {"float32": W.astype(np.float32), "int": (W * 4).astype(np.int64) / 4,
                "non_contiguous": big[::2, ::2], "fortran": np.asfortranarray(W),
                "read_only": ro, "list": W.tolist(), "float64": W}
    results = {}
    for name, value in variants.items():
        snapshot = np.array(value, copy=True)
        net = _reg(backend, dtype)
        dense = net.layers[0]
        same_array = dense.W
        dense.W = value
        assert dense.W is same_array and dense.W.dtype == dtype and dense.W.flags.c_contiguous
        _fit(net, X4, Y4, batch_size=2)
        results[name] = net.predict(X4)
        np.testing.assert_array_equal(np.asarray(value), snapshot, err_msg=name)
    for name, pred in results.items():
        np.testing.assert_array_equal(pred, results["float64"], err_msg=name)


# ------------------------------------------ scikit-learn estimators, odd inputs
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_sklearn_odd_inputs_give_the_clean_result(backend, kind, rng):
    sk = pytest.importorskip("fastnn.sklearn")
    X = rng.integers(0, 5, (30, 3)).astype(np.float64)
    y = (X[:, 0] > X[:, 1]).astype(np.int64) if kind == "classifier" else X[:, 2] - X[:, 0]
    make = sk.MLPClassifier if kind == "classifier" else sk.MLPRegressor
    big = np.zeros((60, 6))
    big[::2, ::2] = X
    ro = X.copy()
    ro.flags.writeable = False
    cases = {"non_contiguous": (big[::2, ::2], y), "fortran": (np.asfortranarray(X), y),
             "read_only": (ro, y), "int_X": (X.astype(np.int32), y),
             "lists": (X.tolist(), y.tolist()), "non_contiguous_y": (X, np.repeat(y, 2)[::2])}

    def fitted(Xv, yv):
        est = make(hidden_layer_sizes=(4,), max_iter=3, random_state=0, backend=backend,
                   batch_size=8)
        with pytest.warns(Warning):              # ConvergenceWarning after 3 epochs
            est.fit(Xv, yv)
        return est

    clean = fitted(X, y)
    for name, (Xv, yv) in cases.items():
        snapshots = [np.array(Xv, copy=True), np.array(yv, copy=True)]
        est = fitted(Xv, yv)
        for a, b in zip(est.coefs_ + est.intercepts_, clean.coefs_ + clean.intercepts_):
            np.testing.assert_array_equal(a, b, err_msg=name)
        np.testing.assert_array_equal(est.predict(Xv), clean.predict(X), err_msg=name)
        assert est.loss_curve_ == clean.loss_curve_, name
        for before, after in zip(snapshots, (Xv, yv)):
            np.testing.assert_array_equal(np.asarray(after), before, err_msg=name)


# ------------------------------------- NumPy integers, NumPy bools, masked arrays
@pytest.mark.parametrize("kind", [np.int64, np.int32, np.uint8], ids=lambda k: k.__name__)
def test_numpy_integers_are_integers(backend, kind):
    """Every public integer argument takes a NumPy integer scalar, with the result of the
    Python int (set_num_threads is tested with the backends)."""
    def run(i):
        net = Network([Dense(i(2), i(3)), ReLU(), Dropout(0.25), Dense(i(3), i(1))],
                      backend=backend, seed=i(4))
        history = net.fit(X4, Y4, loss="mse", optimizer=SGD(0.1), epochs=i(3),
                          batch_size=i(2), seed=i(5), early_stopping=True, patience=i(2),
                          verbose=i(0))
        per = Perceptron(i(2), seed=i(6), backend=backend)
        mistakes = per.fit(*fastnn.datasets.and_gate(), epochs=i(7))
        Xs, ys = fastnn.datasets.spirals(i(5), i(3), seed=i(8))
        return ([p.copy() for _, p, _ in net.parameters()], history.loss, net.layers[0].config(),
                per.weights.copy(), mistakes, Xs, ys)

    for got, want in zip(run(kind), run(int)):
        if isinstance(want, list) and want and isinstance(want[0], np.ndarray):
            for a, b in zip(got, want):
                np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_array_equal(got, want)
    assert type(Dense(kind(2), kind(3)).n_in) is int       # a config save can write as JSON


def test_numpy_integers_in_the_sklearn_estimators(backend):
    sk = pytest.importorskip("fastnn.sklearn")
    X = np.random.default_rng(0).standard_normal((20, 2))
    y = (X[:, 0] > 0).astype(int)

    def fitted(i):
        est = sk.MLPClassifier(hidden_layer_sizes=(i(3), i(2)), max_iter=i(4), batch_size=i(5),
                               random_state=i(6), n_iter_no_change=i(2), backend=backend)
        with pytest.warns(Warning):
            return est.fit(X, y)

    a, b = fitted(np.int64), fitted(int)
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(p, q)


def test_shuffle_takes_numpy_bools(backend):
    def trained(flag):
        net = _reg(backend)
        _fit(net, X4, Y4, batch_size=1, shuffle=flag, seed=0)    # seed 1: in order
        return net.predict(X4)

    np.testing.assert_array_equal(trained(np.False_), trained(False))
    np.testing.assert_array_equal(trained(np.True_), trained(True))
    assert not np.array_equal(trained(True), trained(False))


def test_masked_arrays_with_nothing_masked_are_their_data(backend):
    """The decision: a masked array with no masked element is accepted (its data
    used, untouched); any masked element is refused (tests/test_bad_input.py)."""
    Xm = np.ma.array(X4, mask=np.zeros(X4.shape, bool))
    ym = np.ma.array(Y4)                                       # mask: nomask
    a, b = _reg(backend), _reg(backend)
    ha = _fit(a, Xm, ym, validation_data=(Xm, ym), batch_size=2)
    hb = _fit(b, X4, Y4, validation_data=(X4, Y4), batch_size=2)
    assert ha.loss == hb.loss and ha["val_loss"] == hb["val_loss"]
    np.testing.assert_array_equal(a.predict(Xm), b.predict(X4))
    assert a.evaluate(Xm, ym, loss="mse") == b.evaluate(X4, Y4, loss="mse")
    a.layers[0].W = np.ma.array(np.ones((2, 4)))
    assert type(a.layers[0].W) is np.ndarray and (a.layers[0].W == 1).all()
    assert not Xm.mask.any() and np.array_equal(Xm.data, X4)
