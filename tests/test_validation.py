"""Input checks at the API boundary: bad input raises ValueError / TypeError with a
message naming the problem and the shapes; odd-but-valid inputs (non-contiguous,
Fortran order, read-only, integer, lists) work, give the clean float64 result and
are never modified.
"""

import numpy as np
import pytest

import fastnn
from fastnn import (SGD, Adam, BCELoss, CrossEntropyLoss, Dense, Dropout, LeakyReLU, MSELoss,
                    Network, Perceptron, ReLU, Sigmoid, Tanh)


def _reg(backend, dtype="float64"):
    return Network([Dense(2, 4), Tanh(), Dense(4, 1)], backend=backend, dtype=dtype, seed=0)


def _clf(backend, dtype="float64"):
    return Network([Dense(2, 4), Tanh(), Dense(4, 3)], backend=backend, dtype=dtype, seed=0)


X4 = np.array([[0.0, 1.0], [1.0, 0.5], [-1.0, 2.0], [0.5, -0.5]])
Y4 = np.array([0.0, 1.0, 1.0, 0.0])
L4 = np.array([0, 2, 1, 2])


def _fit(net, X, y, loss="mse", **kw):
    return net.fit(X, y, loss=loss, optimizer=SGD(0.1), epochs=1, **kw)


# ------------------------------------------------------------------- X
@pytest.mark.parametrize("call", ["fit", "predict", "evaluate", "forward"])
def test_wrong_feature_count(backend, call):
    net = _reg(backend)
    X = np.zeros((4, 3))
    match = r"X has 3 features per sample \(shape \(4, 3\)\) but the network expects 2"
    with pytest.raises(ValueError, match=match):
        if call == "fit":
            _fit(net, X, Y4)
        elif call == "evaluate":
            net.evaluate(X, Y4, loss="mse")
        else:
            getattr(net, call)(X)


def test_x_y_length_mismatch(backend):
    with pytest.raises(ValueError, match=r"X has 4 samples but y has shape \(3,\)"):
        _fit(_reg(backend), X4, Y4[:3])
    with pytest.raises(ValueError, match=r"X has 4 samples but y has shape \(5,\)"):
        _reg(backend).evaluate(X4, np.zeros(5), loss="mse")
    with pytest.raises(ValueError, match=r"X has 4 samples but y has shape \(2,\)"):
        _fit(_clf(backend), X4, L4[:2], loss="cross_entropy")


def test_y_wrong_shape_for_outputs(backend):
    with pytest.raises(ValueError, match=r"y has shape \(4, 3\) but the network outputs \(4, 1\)"):
        _fit(_reg(backend), X4, np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"shape \(4, 2\)"):
        _fit(_clf(backend), X4, np.full((4, 2), 0.5), loss="cross_entropy")


@pytest.mark.parametrize("labels,match", [
    ([0, 1, 3, 2], r"class labels must lie in \[0, 3\).*3 outputs.*from 0 to 3"),
    ([0, -1, 2, 1], r"class labels must lie in \[0, 3\).*from -1 to 2"),
    ([0.0, 1.5, 2.0, 1.0], "whole numbers; got fractional"),
    ([0.0, np.nan, 2.0, 1.0], "y contains NaN or infinity"),
])
def test_bad_class_labels(backend, labels, match):
    with pytest.raises(ValueError, match=match):
        _fit(_clf(backend), X4, np.array(labels), loss="cross_entropy")
    with pytest.raises(ValueError, match=match):
        _clf(backend).evaluate(X4, np.array(labels), loss=CrossEntropyLoss())


def test_probability_targets_out_of_range(backend):
    y = np.array([[0.5, 0.5, 0.0]] * 3 + [[1.5, -0.5, 0.0]])
    with pytest.raises(ValueError, match=r"probability targets must lie in \[0, 1\]"):
        _fit(_clf(backend), X4, y, loss="cross_entropy")
    net = Network([Dense(2, 1), Sigmoid()], backend=backend, seed=0)
    with pytest.raises(ValueError, match=r"BCELoss targets must lie in \[0, 1\]"):
        _fit(net, X4, np.array([0.0, 1.0, 2.0, 0.0]), loss="bce")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_x(backend, bad):
    X = X4.copy()
    X[2, 1] = bad
    match = r"X contains NaN or infinity \(first at index \(2, 1\), shape \(4, 2\)\)"
    with pytest.raises(ValueError, match=match):
        _fit(_reg(backend), X, Y4)
    with pytest.raises(ValueError, match=match):
        _reg(backend).predict(X)
    with pytest.raises(ValueError, match=r"X_val contains NaN or infinity"):
        _fit(_reg(backend), X4, Y4, validation_data=(X, Y4))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_y(backend, bad):
    y = Y4.copy()
    y[1] = bad
    with pytest.raises(ValueError, match=r"y contains NaN or infinity \(first at index \(1,\)"):
        _fit(_reg(backend), X4, y)
    with pytest.raises(ValueError, match="y contains NaN or infinity"):
        _reg(backend).evaluate(X4, y, loss="mse")


def test_empty_x(backend):
    with pytest.raises(ValueError, match=r"X is empty: shape \(0, 2\)"):
        _reg(backend).predict(np.zeros((0, 2)))
    with pytest.raises(ValueError, match=r"X is empty: shape \(0, 2\)"):
        _fit(_reg(backend), np.zeros((0, 2)), np.zeros(0))


@pytest.mark.parametrize("X,shape", [
    (np.zeros(2), r"\(2,\)"), (np.zeros((2, 2, 2)), r"\(2, 2, 2\)"), (np.float64(1.0), r"\(\)"),
])
def test_x_not_2d(backend, X, shape):
    with pytest.raises(ValueError, match=r"X must be 2-D \(n_samples, n_features\), got shape "
                       + shape):
        _reg(backend).predict(X)
    with pytest.raises(ValueError, match="X must be 2-D"):
        _fit(_reg(backend), X, Y4)


@pytest.mark.parametrize("X,dtype", [
    (np.array([["a", "b"], ["c", "d"]]), "<U1"),
    (np.array([[1 + 2j, 0], [0, 1]]), "complex128"),
    (np.array([[1.0, None], [0.0, 1.0]], dtype=object), "object"),
    (np.array([["2020-01-01", "2020-01-02"]] * 2, dtype="datetime64[D]"), "datetime64"),
])
def test_non_real_x(backend, X, dtype):
    match = rf"X must hold real numbers; got an array of dtype {dtype}.*\(shape \(2, 2\)\)"
    with pytest.raises(TypeError, match=match):
        _reg(backend).predict(X)
    with pytest.raises(TypeError, match="X must hold real numbers"):
        _fit(_reg(backend), X, Y4[:2])


@pytest.mark.parametrize("y", [np.array(["0", "1", "1", "0"]), np.array([0j, 1, 1, 0]),
                               np.array([0, 1, None, 0], dtype=object)])
def test_non_real_y(backend, y):
    with pytest.raises(TypeError, match=r"y must hold real numbers; got an array of dtype"):
        _fit(_reg(backend), X4, y)
    with pytest.raises(TypeError, match=r"y must hold real numbers"):
        _fit(_clf(backend), X4, y, loss="cross_entropy")


def test_bce_needs_sigmoid_output(backend):
    with pytest.raises(ValueError, match=r"BCELoss takes probabilities: end the network with "
                                         r"Sigmoid\(\)"):
        _fit(_reg(backend), X4, Y4, loss="bce")


def test_backward_gradient_with_wrong_shape(backend):
    # Network.backward takes d loss / d output, shape (n, n_outputs) of the last forward;
    # another shape must raise (naming both shapes), never broadcast silently
    net = Network([Dense(2, 3), Sigmoid(), Dense(3, 1), Sigmoid()], backend=backend, seed=0)
    net.forward(X4)
    for grad in (np.ones((1, 1)), np.ones((5, 1)), np.ones((4, 2))):
        shape = str(grad.shape).replace("(", r"\(").replace(")", r"\)")
        with pytest.raises(ValueError, match=rf"{shape}.*\(4, 1\)|\(4, 1\).*{shape}"):
            net.backward(grad)
    with pytest.raises(ValueError, match=r"2-D.*\(4,\)|\(4,\).*\(4, 1\)"):
        net.backward(np.ones(4))


# -------------------------------------------------------------- network
def test_mismatched_layer_sizes(backend):
    with pytest.raises(ValueError, match=r"layer 1: Dense\(n_in=5, n_out=1.*expects 5 inputs "
                                         r"but receives 4"):
        Network([Dense(2, 4), Dense(5, 1)], backend=backend)
    with pytest.raises(ValueError, match=r"layer 2: .*expects 3 inputs but receives 4"):
        Network([Dense(2, 4), ReLU(), Dense(3, 1)], backend=backend)


def test_bad_network_definitions(backend):
    with pytest.raises(ValueError, match="at least one layer"):
        Network([], backend=backend)
    with pytest.raises(ValueError, match="at least one Dense layer"):
        Network([ReLU()], backend=backend)
    with pytest.raises(TypeError, match="layer 1 is 'relu', not a fastnn Layer"):
        Network([Dense(2, 2), "relu"], backend=backend)
    d = Dense(2, 2)
    with pytest.raises(ValueError, match="appears twice"):
        Network([d, d], backend=backend)
    with pytest.raises(TypeError, match="dtype must be 'float32' or 'float64', got 'int32'"):
        Network([Dense(2, 2)], backend=backend, dtype="int32")
    with pytest.raises(TypeError, match="dtype must be 'float32' or 'float64'"):
        Network([Dense(2, 2)], backend=backend, dtype="not-a-dtype")


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
    with pytest.raises(ValueError, match=r"unknown optimizer 'rmsprop'; expected an Optimizer"):
        _reg(backend).fit(X4, Y4, loss="mse", optimizer="rmsprop")
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


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(batch_size=0), ValueError, "batch_size must be >= 1, got 0"),
    (dict(batch_size=-3), ValueError, "batch_size must be >= 1, got -3"),
    (dict(batch_size=2.5), TypeError, "batch_size must be an integer, got 2.5"),
    (dict(batch_size=True), TypeError, "batch_size must be an integer, got True"),
    (dict(epochs=-1), ValueError, "epochs must be >= 0, got -1"),
    (dict(epochs=1.0), TypeError, "epochs must be an integer, got 1.0"),
    (dict(validation_data=X4), TypeError, r"validation_data must be a pair \(X_val, y_val\)"),
])
def test_bad_fit_arguments(backend, kwargs, exc, match):
    args = dict(loss="mse", optimizer=SGD(0.1))
    args.update(kwargs)
    net = _reg(backend)
    before = net.layers[0].W.copy()
    with pytest.raises(exc, match=match):
        net.fit(X4, Y4, **args)
    np.testing.assert_array_equal(net.layers[0].W, before)


def test_zero_epochs_is_a_no_op(backend):
    net = _reg(backend)
    before = net.layers[0].W.copy()
    hist = net.fit(X4, Y4, loss="mse", optimizer=SGD(0.1), epochs=0)
    assert hist.epochs == [] and hist.history == {}
    np.testing.assert_array_equal(net.layers[0].W, before)


def test_bad_layer_arguments():
    with pytest.raises(ValueError, match="Dense n_in must be >= 1, got 0"):
        Dense(0, 3)
    with pytest.raises(TypeError, match="Dense n_out must be an integer, got 2.0"):
        Dense(2, 2.0)
    with pytest.raises(ValueError, match=r"Dropout p must be <= 1.0, got 1.5"):
        Dropout(1.5)
    with pytest.raises(ValueError, match=r"Dropout p must be >= 0.0, got -0.1"):
        Dropout(-0.1)
    with pytest.raises(ValueError, match="negative_slope must be finite"):
        LeakyReLU(float("nan"))


def test_weights_assigned_with_wrong_shape(backend, dtype):
    net = Network([Dense(2, 3), Dense(3, 1, bias=False)], backend=backend, dtype=dtype, seed=0)
    dense = net.layers[0]
    W, b = dense.W, dense.b
    before = W.copy()
    with pytest.raises(ValueError, match=r"Dense.W must have shape \(2, 3\), got \(3, 2\)"):
        dense.W = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"Dense.W must have shape \(2, 3\), got \(6,\)"):
        dense.W = np.zeros(6)
    with pytest.raises(ValueError, match=r"Dense.b must have shape \(3,\), got \(1, 3\)"):
        dense.b = np.zeros((1, 3))
    with pytest.raises(ValueError, match="Dense.W contains NaN or infinity"):
        dense.W = np.full((2, 3), np.nan)
    with pytest.raises(TypeError, match="Dense.W must hold real numbers, got dtype <U1"):
        dense.W = np.full((2, 3), "a")
    with pytest.raises(ValueError, match="made with bias=False; it has no b"):
        net.layers[1].b = np.zeros(1)
    # nothing was changed by the failed assignments, and a good one is copied in place
    assert dense.W is W and dense.b is b
    np.testing.assert_array_equal(dense.W, before)
    dense.W = np.arange(6).reshape(2, 3)
    assert dense.W is W and W.dtype == dtype and W.flags.c_contiguous
    np.testing.assert_array_equal(W, [[0, 1, 2], [3, 4, 5]])


def test_loss_called_by_user_checks_input():
    with pytest.raises(ValueError, match=r"y has shape \(3, 1\) but the network outputs"):
        MSELoss()(np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match=r"BCELoss expects probabilities in \[0, 1\]"):
        BCELoss()(np.array([0.5, 1.5]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="pred must be 1-D or 2-D"):
        MSELoss()(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))


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
