"""The bad-input battery: every entry point, both backends, one table.

Why it is built this way: each row of ``CASES`` is (id, what it makes, expected
exception, regex the message must match).  A row's ``make(backend)`` returns
the call, the caller's inputs and the network (if any); ``_run`` calls it,
records the exception and checks that no input was modified and that the
network's weights are unchanged (the error came before any work).  On the
compiled backend a bad input could crash the process, so all its rows run in
one child process first (``_sweep``), which prints one JSON line per row; a
crash is reported with its signal for the row that caused it and the child is
restarted after it.  The reference backend runs in-process.
"""

import copy
import json
import os
import re
import subprocess
import sys
import warnings
from typing import Any, Callable, NamedTuple

import numpy as np
import pytest

import fastnn
from fastnn import (SGD, Adam, BCELoss, CrossEntropyLoss, Dense, Dropout, LeakyReLU, MSELoss,
                    Network, ReLU, Sigmoid, Tanh)
from fastnn.backends import available_backends

BACKENDS = ("numpy", "cython")
X4 = np.array([[0.0, 1.0], [1.0, 0.5], [-1.0, 2.0], [0.5, -0.5]])
Y4 = np.array([0.0, 1.0, 1.0, 0.0])
L4 = np.array([0, 2, 1, 2])


class Case(NamedTuple):
    id: str
    make: Callable[[str], tuple[Callable[[], Any], list[Any], Any]]
    exc: type
    match: str


def _reg(b, dtype="float64"):
    return Network([Dense(2, 4), Tanh(), Dense(4, 1)], backend=b, dtype=dtype, seed=0)


def _clf(b):
    return Network([Dense(2, 4), Tanh(), Dense(4, 3)], backend=b, seed=0)


def _prob(b):
    return Network([Dense(2, 3), ReLU(), Dropout(0.3), Dense(3, 1), Sigmoid()], backend=b,
                   seed=0)


def _esc(shape):
    return re.escape(str(shape))


# ---------------------------------------------------------- case builders
def fit(X, y, *, net=_reg, loss="mse", optimizer=None, epochs=2, batch_size=3, **kw):
    def make(b):
        Xc, yc, n = copy.deepcopy(X), copy.deepcopy(y), net(b)
        opt = optimizer if optimizer is not None else SGD(0.1)
        return (lambda: n.fit(Xc, yc, loss=loss, optimizer=opt, epochs=epochs,
                              batch_size=batch_size, **kw),
                [Xc, yc], n)
    return make


def evaluate(X, y, *, net=_reg, loss="mse"):
    def make(b):
        Xc, yc, n = copy.deepcopy(X), copy.deepcopy(y), net(b)
        return (lambda: n.evaluate(Xc, yc, loss=loss)), [Xc, yc], n
    return make


def method(name, *args, net=_reg, before=None):
    """net.<name>(*args), after ``before(net)`` if given."""
    def make(b):
        argc, n = copy.deepcopy(list(args)), net(b)
        if before is not None:
            before(n)
        return (lambda: getattr(n, name)(*argc)), argc, n
    return make


def layer_call(index, name, *args, net=_reg, forward_first=None, **kw):
    """net.layers[index].<name>(*args, **kw) on a built network, after
    ``forward(forward_first, training=True)`` if given."""
    def make(b):
        argc, n = copy.deepcopy(list(args)), net(b)
        if forward_first is not None:
            n.layers[index].forward(forward_first, training=True)
        return (lambda: getattr(n.layers[index], name)(*argc, **kw)), argc, n
    return make


def assign(attr, value, *, dtype="float64", index=0, net=None):
    def make(b):
        n = net(b) if net else _reg(b, dtype)
        v = copy.deepcopy(value)
        return (lambda: setattr(n.layers[index], attr, v)), [v], n
    return make


def call(fn, *args, backend_arg=False, **kw):
    """fn(*args, **kw), on ``backend`` as the default (or as ``backend=``)."""
    def make(b):
        argc = copy.deepcopy(list(args))
        extra = {"backend": b} if backend_arg else {}

        def run():
            with fastnn.use_backend(b):
                return fn(*argc, **kw, **extra)
        return run, argc, None
    return make


def loss_call(loss, pred, target, what="__call__"):
    def make(b):
        p, t = copy.deepcopy(pred), copy.deepcopy(target)

        def run():
            with fastnn.use_backend(b):
                return getattr(loss, what)(p, t)
        return run, [p, t], None
    return make


def with_env(name, value, fn):
    def make(b):
        def run():
            old = os.environ.get(name)
            os.environ[name] = value
            try:
                return fn(b)
            finally:
                if old is None:
                    del os.environ[name]
                else:
                    os.environ[name] = old
        return run, [], None
    return make


def step(opt_make, *, before=None):
    def make(b):
        n = _reg(b)
        if before is not None:
            before(n)
        return (lambda: opt_make().step(n)), [], n
    return make


def load(write):
    """Network.load of a file made by ``write(path)`` in a fresh temporary directory."""
    def make(b):
        import tempfile
        path = os.path.join(tempfile.mkdtemp(prefix="fastnn-bad-"), "net.npz")
        write(path)
        return (lambda: Network.load(path, backend=b)), [], None
    return make


def _saved(path):
    Network([Dense(2, 3), Tanh(), Dense(3, 1)], seed=0).save(path)


def _truncated(path):
    _saved(path)
    with open(path, "rb") as f:
        raw = f.read()
    with open(path, "wb") as f:
        f.write(raw[:len(raw) // 2])


def _garbage(path):
    with open(path, "wb") as f:
        f.write(b"\x80\x04not a network" * 20)


def _npz(config, **arrays):
    def write(path):
        np.savez(path, config=np.array(config if isinstance(config, str) else json.dumps(config)),
                 **arrays)
    return write


_GOOD = {"format": "fastnn", "version": 1, "dtype": "float64", "seed": 0,
         "layers": [{"type": "Dense", "config": {"n_in": 2, "n_out": 1}}]}


def _edit(**changes):
    return {**_GOOD, **changes}


def sk(kind, params, X, y, *, fit_first=None, what="fit"):
    """fastnn.sklearn estimator: fit(X, y), or fit(*fit_first) then predict(X)."""
    def make(b):
        from fastnn.sklearn import MLPClassifier, MLPRegressor
        est = (MLPClassifier if kind == "clf" else MLPRegressor)(
            **{"hidden_layer_sizes": (3,), "max_iter": 2, "random_state": 0, "backend": b,
               **params})
        Xc, yc = copy.deepcopy(X), copy.deepcopy(y)
        net = None
        if fit_first is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(*fit_first)
            net = est.network_

        def run():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return est.fit(Xc, yc) if what == "fit" else getattr(est, what)(Xc)
        return run, [Xc, yc], net
    return make


def _nan_at(a, index, value=np.nan):
    a = np.array(a, dtype=float)
    a[index] = value
    return a


def _masked(a, *indices):
    """``a`` as a masked array with the elements at ``indices`` masked (their data kept)."""
    m = np.ma.array(np.array(a, dtype=float), mask=False)
    for index in indices:
        m[index] = np.ma.masked
    return m


def _masked_msg(name, count, first, shape):
    return (re.escape(f"{name} is a masked array with {count} masked value(s) (first at index "
                      f"{first}, shape {shape})") + ".*fill or drop the masked values first")


def _forward(n):
    n.forward(X4)


def _grads_net(b):
    n = _reg(b)
    n.forward(X4)
    n.backward(np.ones((4, 1)))
    return n


def _shared_optimizer(b):
    """fit with an optimizer that has stepped another (live) network."""
    other, opt = _grads_net(b), SGD(0.1, momentum=0.5)
    opt.step(other)
    run, inputs, net = fit(X4, Y4, optimizer=opt)(b)
    return (lambda: (other, run())), inputs, net


# ------------------------------------------------------------------ table
_FEAT = r"X has 3 features per sample \(shape \(4, 3\)\) but the network expects 2"
_NOT2D = r"X must be 2-D \(n_samples, n_features\), got shape "
_REAL = r"must hold real numbers; got an array of dtype "
_DENSE = re.escape("Dense(n_in=2, n_out=4, bias=True, init='auto')")

CASES = [
    # --- Network(...)
    Case("net-empty", call(Network, [], backend_arg=True), ValueError, "at least one layer"),
    Case("net-no-dense", call(Network, [ReLU()], backend_arg=True), ValueError,
         "at least one Dense layer"),
    Case("net-not-a-layer", call(Network, [Dense(2, 2), "relu"], backend_arg=True), TypeError,
         "layer 1 is 'relu', not a fastnn Layer"),
    Case("net-layers-not-a-list", call(Network, Dense(2, 1), backend_arg=True), TypeError,
         r"layers must be a list of fastnn Layers, got Dense\(n_in=2"),
    Case("net-layer-twice", lambda b: (lambda d: call(Network, [d, d], backend_arg=True)(b))(
        Dense(2, 2)), ValueError, "appears twice"),
    Case("net-mismatched-sizes", call(Network, [Dense(2, 4), Dense(5, 1)], backend_arg=True),
         ValueError, r"layer 1: Dense\(n_in=5, n_out=1.*expects 5 inputs but receives 4"),
    Case("net-mismatched-after-activation",
         call(Network, [Dense(2, 4), ReLU(), Dense(3, 1)], backend_arg=True), ValueError,
         r"layer 2: .*expects 3 inputs but receives 4"),
    Case("net-dtype-int32", call(Network, [Dense(2, 2)], dtype="int32", backend_arg=True),
         TypeError, "dtype must be 'float32' or 'float64', got 'int32'"),
    Case("net-dtype-complex", call(Network, [Dense(2, 2)], dtype=complex, backend_arg=True),
         TypeError, "dtype must be 'float32' or 'float64', got 'complex128'"),
    Case("net-dtype-garbage", call(Network, [Dense(2, 2)], dtype="nope", backend_arg=True),
         TypeError, "dtype must be 'float32' or 'float64'"),
    Case("net-seed-negative", call(Network, [Dense(2, 2)], seed=-1, backend_arg=True),
         ValueError, "seed must be >= 0, got -1"),
    Case("net-seed-float", call(Network, [Dense(2, 2)], seed=1.5, backend_arg=True),
         TypeError, "seed must be an integer, got 1.5"),
    Case("net-backend-unknown", lambda b: call(Network, [Dense(2, 1)], backend="nope")(b),
         ValueError, r"unknown backend 'nope'; expected one of \['cython', 'numpy'\]"),
    Case("net-backend-int", lambda b: call(Network, [Dense(2, 1)], backend=3)(b),
         TypeError, "backend name must be a string, got int"),
    Case("env-FASTNN_BACKEND", with_env("FASTNN_BACKEND", "nope",
                                        lambda b: fastnn.get_backend()), ValueError,
         r"FASTNN_BACKEND='nope' is not a backend; expected one of \['cython', 'numpy'\]"),

    # --- fit: X
    Case("fit-wrong-features", fit(np.zeros((4, 3)), Y4), ValueError, _FEAT),
    Case("fit-zero-features", fit(np.zeros((4, 0)), Y4), ValueError,
         r"X has 0 features per sample \(shape \(4, 0\)\)"),
    Case("fit-empty-X", fit(np.zeros((0, 2)), np.zeros(0)), ValueError,
         r"X is empty: shape \(0, 2\)"),
    Case("fit-1d-X", fit(np.zeros(4), Y4), ValueError, _NOT2D + r"\(4,\)"),
    Case("fit-3d-X", fit(np.zeros((4, 2, 1)), Y4), ValueError, _NOT2D + r"\(4, 2, 1\)"),
    Case("fit-scalar-X", fit(1.0, Y4), ValueError, _NOT2D + r"\(\)"),
    Case("fit-nan-X", fit(_nan_at(X4, (2, 1)), Y4), ValueError,
         r"X contains NaN or infinity \(first at index \(2, 1\), shape \(4, 2\)\)"),
    Case("fit-inf-X", fit(_nan_at(X4, (0, 0), -np.inf), Y4), ValueError,
         r"X contains NaN or infinity \(first at index \(0, 0\)"),
    Case("fit-X-too-large-for-float32",
         fit(_nan_at(X4, (1, 0), 1e300), Y4, net=lambda b: _reg(b, "float32")), ValueError,
         r"X has a value too large for float32 \(1e\+300 at index \(1, 0\), shape \(4, 2\)\)"),
    Case("fit-str-X", fit(np.full((4, 2), "a"), Y4), TypeError, "X " + _REAL + r"<U1.*\(4, 2\)"),
    Case("fit-complex-X", fit(X4 + 1j, Y4), TypeError, "X " + _REAL + "complex128"),
    Case("fit-object-X", fit(np.array([[1.0, None]] * 4, dtype=object), Y4), TypeError,
         "X " + _REAL + "object"),
    Case("fit-datetime-X", fit(np.zeros((4, 2), dtype="datetime64[D]"), Y4), TypeError,
         "X " + _REAL + "datetime64"),
    Case("fit-ragged-list-X", fit([[1.0, 2.0], [1.0]], [0.0, 1.0]), ValueError,
         "inhomogeneous"),
    # --- fit: y
    Case("fit-y-short", fit(X4, Y4[:3]), ValueError, r"X has 4 samples but y has shape \(3,\)"),
    Case("fit-y-long", fit(X4, np.zeros(5)), ValueError, r"X has 4 samples but y has shape \(5,\)"),
    Case("fit-y-scalar", fit(X4, 1.0), ValueError, r"X has 4 samples but y has shape \(\)"),
    Case("fit-y-wrong-width", fit(X4, np.zeros((4, 3))), ValueError,
         r"y has shape \(4, 3\) but the network outputs \(4, 1\)"),
    Case("fit-y-3d", fit(X4, np.zeros((4, 1, 1))), ValueError,
         r"y has shape \(4, 1, 1\) but the network outputs \(4, 1\)"),
    Case("fit-nan-y", fit(X4, _nan_at(Y4, 1)), ValueError,
         r"y contains NaN or infinity \(first at index \(1,\), shape \(4,\)\)"),
    Case("fit-inf-y", fit(X4, _nan_at(Y4, 3, np.inf)), ValueError, "y contains NaN or infinity"),
    Case("fit-str-y", fit(X4, np.array(["0", "1", "1", "0"])), TypeError, "y " + _REAL + "<U1"),
    Case("fit-complex-y", fit(X4, Y4 + 0j), TypeError, "y " + _REAL + "complex128"),
    Case("fit-object-y", fit(X4, np.array([0, 1, None, 0], dtype=object)), TypeError,
         "y " + _REAL + "object"),
    # --- fit: class labels / probability targets
    Case("fit-label-too-big", fit(X4, [0, 1, 3, 2], net=_clf, loss="cross_entropy"), ValueError,
         r"class labels must lie in \[0, 3\) for a network with 3 outputs; got labels from "
         r"0 to 3"),
    Case("fit-label-negative", fit(X4, [0, -1, 2, 1], net=_clf, loss="cross_entropy"),
         ValueError, r"class labels must lie in \[0, 3\).*from -1 to 2"),
    Case("fit-label-fractional", fit(X4, [0.0, 1.5, 2.0, 1.0], net=_clf, loss="cross_entropy"),
         ValueError, r"class labels in y must be whole numbers; got fractional values "
                     r"\(first 1.5, shape \(4,\)\)"),
    Case("fit-label-nan", fit(X4, [0.0, np.nan, 2.0, 1.0], net=_clf, loss="cross_entropy"),
         ValueError, r"y contains NaN or infinity \(first at index \(1,\)"),
    Case("fit-label-huge-float", fit(X4, [0.0, 1e20, 2.0, 1.0], net=_clf, loss="cross_entropy"),
         ValueError, r"must lie in \[0, 3\).*from 0 to 1e\+20"),
    Case("fit-label-huge-uint64",
         fit(X4, np.array([0, 2**63 + 5, 2, 1], dtype=np.uint64), net=_clf,
             loss="cross_entropy"),
         ValueError, r"must lie in \[0, 3\).*from 0 to 9.2\d*e\+18"),
    Case("fit-labels-wrong-length", fit(X4, L4[:2], net=_clf, loss="cross_entropy"), ValueError,
         r"X has 4 samples but y has shape \(2,\)"),
    Case("fit-labels-3d", fit(X4, np.zeros((4, 3, 1)), net=_clf, loss="cross_entropy"),
         ValueError, r"y must be class labels of shape \(4,\) or probabilities of shape "
                     r"\(4, 3\); got shape \(4, 3, 1\)"),
    Case("fit-probabilities-wrong-width", fit(X4, np.full((4, 2), 0.5), net=_clf,
                                              loss="cross_entropy"),
         ValueError, r"y has shape \(4, 2\) but the network outputs \(4, 3\)"),
    Case("fit-probabilities-out-of-range",
         fit(X4, np.array([[0.5, 0.5, 0.0]] * 3 + [[1.5, -0.5, 0.0]]), net=_clf,
             loss="cross_entropy"),
         ValueError, r"probability targets must lie in \[0, 1\]; y has values from -0.5 to 1.5"),
    Case("fit-bce-target-out-of-range", fit(X4, [0.0, 1.0, 2.0, 0.0], net=_prob, loss="bce"),
         ValueError, r"BCELoss targets must lie in \[0, 1\]; y has values from 0 to 2"),
    Case("fit-bce-without-sigmoid", fit(X4, Y4, loss="bce"), ValueError,
         r"BCELoss takes probabilities: end the network with Sigmoid\(\)"),
    # --- fit: arguments
    Case("fit-batch-size-0", fit(X4, Y4, batch_size=0), ValueError,
         "batch_size must be >= 1, got 0"),
    Case("fit-batch-size-negative", fit(X4, Y4, batch_size=-3), ValueError,
         "batch_size must be >= 1, got -3"),
    Case("fit-batch-size-float", fit(X4, Y4, batch_size=2.5), TypeError,
         "batch_size must be an integer, got 2.5"),
    Case("fit-batch-size-bool", fit(X4, Y4, batch_size=True), TypeError,
         "batch_size must be an integer, got True"),
    Case("fit-epochs-negative", fit(X4, Y4, epochs=-1), ValueError,
         "epochs must be >= 0, got -1"),
    Case("fit-epochs-float", fit(X4, Y4, epochs=2.5), TypeError,
         "epochs must be an integer, got 2.5"),
    Case("fit-epochs-bool", fit(X4, Y4, epochs=True), TypeError,
         "epochs must be an integer, got True"),
    Case("fit-patience-0", fit(X4, Y4, early_stopping=True, patience=0), ValueError,
         "patience must be >= 1, got 0"),
    Case("fit-min-delta-negative", fit(X4, Y4, min_delta=-0.1), ValueError,
         "min_delta must be >= 0.0, got -0.1"),
    Case("fit-min-delta-nan", fit(X4, Y4, min_delta=float("nan")), ValueError,
         "min_delta must be finite"),
    Case("fit-verbose-negative", fit(X4, Y4, verbose=-1), ValueError,
         "verbose must be >= 0, got -1"),
    Case("fit-seed-negative", fit(X4, Y4, seed=-1), ValueError, "seed must be >= 0, got -1"),
    Case("fit-validation-not-a-pair", fit(X4, Y4, validation_data=X4), TypeError,
         r"validation_data must be a pair \(X_val, y_val\)"),
    Case("fit-validation-nan", fit(X4, Y4, validation_data=(_nan_at(X4, (0, 1)), Y4)),
         ValueError, r"X_val contains NaN or infinity \(first at index \(0, 1\)"),
    Case("fit-validation-wrong-features", fit(X4, Y4, validation_data=(np.zeros((4, 3)), Y4)),
         ValueError, r"X_val has 3 features per sample \(shape \(4, 3\)\)"),
    Case("fit-validation-y-length", fit(X4, Y4, validation_data=(X4, Y4[:2])), ValueError,
         r"X_val has 4 samples but y_val has shape \(2,\)"),
    Case("fit-validation-labels-range",
         fit(X4, L4, net=_clf, loss="cross_entropy", validation_data=(X4, [0, 1, 2, 7])),
         ValueError, r"class labels must lie in \[0, 3\).*from 0 to 7"),
    Case("fit-unknown-loss", fit(X4, Y4, loss="hinge"), ValueError,
         r"unknown loss 'hinge'; expected a Loss or one of"),
    Case("fit-unknown-optimizer", fit(X4, Y4, optimizer="lion"), ValueError,
         r"unknown optimizer 'lion'; expected an Optimizer"),
    Case("fit-optimizer-of-another-network", _shared_optimizer, ValueError,
         "this SGD already holds the state of another network"),
    Case("fit-shuffle-str", fit(X4, Y4, shuffle="no"), TypeError,
         "shuffle must be True or False, got 'no'"),
    Case("fit-shuffle-int", fit(X4, Y4, shuffle=0), TypeError,
         "shuffle must be True or False, got 0"),
    Case("fit-validation-dict", fit(X4, Y4, validation_data={"X": X4, "y": Y4}), TypeError,
         r"validation_data must be a pair \(X_val, y_val\), a tuple or a list of two arrays; "
         r"got dict$"),
    Case("fit-validation-triple", fit(X4, Y4, validation_data=(X4, Y4, Y4)), TypeError,
         r"validation_data must be a pair .*; got tuple of length 3$"),
    Case("fit-masked-X", fit(_masked(X4, (1, 0)), Y4), ValueError,
         _masked_msg("X", 1, (1, 0), (4, 2))),
    Case("fit-masked-y", fit(X4, _masked(Y4, 2, 3)), ValueError, _masked_msg("y", 2, (2,), (4,))),
    Case("fit-masked-labels", fit(X4, _masked(L4, 0), net=_clf, loss="cross_entropy"),
         ValueError, _masked_msg("y", 1, (0,), (4,))),
    Case("fit-masked-X-val", fit(X4, Y4, validation_data=(_masked(X4, (3, 1)), Y4)), ValueError,
         _masked_msg("X_val", 1, (3, 1), (4, 2))),
    Case("fit-masked-y-val", fit(X4, Y4, validation_data=[X4, _masked(Y4, 1)]), ValueError,
         _masked_msg("y_val", 1, (1,), (4,))),
    Case("predict-masked", method("predict", _masked(X4, (0, 1))), ValueError,
         _masked_msg("X", 1, (0, 1), (4, 2))),
    Case("forward-masked", method("forward", _masked(X4, (2, 0))), ValueError,
         _masked_msg("X", 1, (2, 0), (4, 2))),
    Case("evaluate-masked-y", evaluate(X4, _masked(Y4, 0)), ValueError,
         _masked_msg("y", 1, (0,), (4,))),
    Case("backward-masked", method("backward", _masked(np.ones((4, 1)), (3, 0)), before=_forward),
         ValueError, _masked_msg("grad", 1, (3, 0), (4, 1))),
    Case("dense-forward-masked", layer_call(0, "forward", _masked(X4, (0, 0))), ValueError,
         _masked_msg("X", 1, (0, 0), (4, 2))),
    Case("W-masked", assign("W", _masked(np.ones((2, 4)), (1, 3))), ValueError,
         _masked_msg("Dense.W", 1, (1, 3), (2, 4))),
    Case("mse-masked-pred", loss_call(MSELoss(), _masked([0.5, 1.0], 1), [0.0, 1.0]), ValueError,
         _masked_msg("pred", 1, (1,), (2,))),
    Case("perceptron-masked-X", call(lambda X, y: fastnn.Perceptron(2, seed=0).fit(X, y),
                                     _masked(X4, (1, 1)), Y4),
         ValueError, _masked_msg("X", 1, (1, 1), (4, 2))),
    Case("perceptron-predict-masked", call(lambda X: fastnn.Perceptron(2, seed=0).predict(X),
                                           _masked([1.0, 2.0], 0)),
         ValueError, _masked_msg("X", 1, (0, 0), (1, 2))),
    Case("perceptron-seed-bool", call(fastnn.Perceptron, 2, seed=True, backend_arg=True),
         TypeError, "seed must be an integer, got True"),
    Case("perceptron-seed-negative", call(fastnn.Perceptron, 2, seed=-1, backend_arg=True),
         ValueError, "seed must be >= 0, got -1"),
    Case("spirals-seed-bool", call(fastnn.datasets.spirals, 5, 3, seed=np.True_), TypeError,
         "seed must be an integer, got np.True_"),
    Case("spirals-seed-float", call(fastnn.datasets.spirals, 5, 3, seed=1.5), TypeError,
         "seed must be an integer, got 1.5"),
    Case("spirals-seed-negative", call(fastnn.datasets.spirals, 5, 3, seed=np.int64(-2)),
         ValueError, "seed must be >= 0, got -2"),

    # --- predict / forward / evaluate / backward
    Case("predict-wrong-features", method("predict", np.zeros((4, 3))), ValueError, _FEAT),
    Case("predict-nan", method("predict", _nan_at(X4, (3, 0))), ValueError,
         r"X contains NaN or infinity \(first at index \(3, 0\), shape \(4, 2\)\)"),
    Case("predict-empty", method("predict", np.zeros((0, 2))), ValueError,
         r"X is empty: shape \(0, 2\)"),
    Case("predict-1d", method("predict", [1.0, 2.0, 3.0]), ValueError,
         r"X has shape \(3,\): one sample needs 2 values"),
    Case("predict-3d", method("predict", np.zeros((4, 2, 1))), ValueError, _NOT2D + r"\(4, 2, 1\)"),
    Case("predict-str", method("predict", [["a", "b"]]), TypeError, "X " + _REAL + "<U1"),
    Case("call-wrong-features", method("__call__", np.zeros((4, 3))), ValueError, _FEAT),
    Case("forward-wrong-features", method("forward", np.zeros((4, 3))), ValueError, _FEAT),
    Case("forward-complex", method("forward", X4 * 1j), TypeError, "X " + _REAL + "complex"),
    Case("evaluate-wrong-features", evaluate(np.zeros((4, 3)), Y4), ValueError, _FEAT),
    Case("evaluate-y-length", evaluate(X4, np.zeros(5)), ValueError,
         r"X has 4 samples but y has shape \(5,\)"),
    Case("evaluate-nan-y", evaluate(X4, _nan_at(Y4, 2)), ValueError,
         "y contains NaN or infinity"),
    Case("evaluate-label-range", evaluate(X4, [0, 1, 2, 3], net=_clf, loss=CrossEntropyLoss()),
         ValueError, r"class labels must lie in \[0, 3\)"),
    Case("evaluate-unknown-loss", evaluate(X4, Y4, loss="hinge"), ValueError,
         "unknown loss 'hinge'"),
    Case("backward-before-forward", method("backward", np.ones((4, 1))), RuntimeError,
         "backward called before forward"),
    Case("backward-fewer-rows", method("backward", np.ones((1, 1)), before=_forward),
         ValueError, r"grad has shape \(1, 1\) but the last forward output has shape \(4, 1\)"),
    Case("backward-wider", method("backward", np.ones((4, 2)), before=_forward), ValueError,
         r"grad has shape \(4, 2\) but the last forward output has shape \(4, 1\)"),
    Case("backward-1d", method("backward", np.ones(4), before=_forward), ValueError,
         r"grad has shape \(4,\) but the last forward output has shape \(4, 1\)"),
    Case("backward-str", method("backward", np.full((4, 1), "a"), before=_forward), TypeError,
         "grad " + _REAL + "<U1"),
    Case("backward-complex", method("backward", np.ones((4, 1)) * 1j, before=_forward),
         TypeError, "grad " + _REAL + "complex128"),
    Case("backward-nan", method("backward", _nan_at(np.ones((4, 1)), (2, 0)), before=_forward),
         ValueError, r"grad contains NaN or infinity \(first at index \(2, 0\)"),

    # --- layers constructed and called directly
    Case("dense-n-in-0", call(Dense, 0, 3), ValueError, "Dense n_in must be >= 1, got 0"),
    Case("dense-n-out-negative", call(Dense, 2, -1), ValueError,
         "Dense n_out must be >= 1, got -1"),
    Case("dense-n-out-float", call(Dense, 2, 2.0), TypeError,
         "Dense n_out must be an integer, got 2.0"),
    Case("dense-n-in-bool", call(Dense, True, 2), TypeError,
         "Dense n_in must be an integer, got True"),
    Case("dense-unknown-init", call(Dense, 2, 3, init="uniform"), ValueError,
         "unknown init 'uniform'; expected one of"),
    Case("dropout-p-above-1", call(Dropout, 1.5), ValueError, r"Dropout p must be <= 1.0, got 1.5"),
    Case("dropout-p-negative", call(Dropout, -0.1), ValueError,
         r"Dropout p must be >= 0.0, got -0.1"),
    Case("dropout-p-nan", call(Dropout, float("nan")), ValueError, "Dropout p must be finite"),
    Case("dropout-p-str", call(Dropout, "0.5"), TypeError, "Dropout p must be a real number"),
    Case("leaky-relu-nan", call(LeakyReLU, float("nan")), ValueError,
         "negative_slope must be finite"),
    Case("dense-forward-unbuilt", lambda b: (lambda d: ((lambda: d.forward(X4)), [], None))(
        Dense(2, 1)), RuntimeError, r"is not built: put it in a Network"),
    Case("dense-forward-wrong-width", layer_call(0, "forward", np.zeros((4, 3))), ValueError,
         r"X has shape \(4, 3\) but " + _DENSE + r" expects shape \(n, 2\)"),
    Case("dense-forward-1d", layer_call(0, "forward", np.zeros(2)), ValueError,
         r"X has shape \(2,\) but " + _DENSE + r" expects shape \(n, 2\)"),
    Case("dense-forward-str", layer_call(0, "forward", np.full((4, 2), "a")), TypeError,
         "X " + _REAL + "<U1"),
    Case("dense-backward-before-forward", layer_call(0, "backward", np.zeros((4, 4))),
         RuntimeError, "Dense.backward called before forward"),
    Case("dense-backward-wrong-shape",
         layer_call(0, "backward", np.zeros((3, 4)), forward_first=X4), ValueError,
         r"dY has shape \(3, 4\) but the last forward of " + _DENSE + r" expects shape \(4, 4\)"),
    Case("activation-forward-1d", layer_call(1, "forward", np.zeros(4)), ValueError,
         r"X has shape \(4,\) but Tanh\(\) expects shape \(n, n\)"),
    Case("activation-backward-wrong-shape",
         layer_call(1, "backward", np.zeros((4, 3)), forward_first=np.zeros((4, 4))),
         ValueError, r"dY has shape \(4, 3\) but the last forward of Tanh\(\) expects shape "
                     r"\(4, 4\)"),
    Case("activation-forward-complex", layer_call(1, "forward", np.ones((2, 2)) * 1j),
         TypeError, "X " + _REAL + "complex128"),
    Case("dropout-backward-wrong-shape",
         layer_call(2, "backward", np.zeros((4, 2)), net=_prob, forward_first=np.ones((4, 3))),
         ValueError, r"dY has shape \(4, 2\) but the last forward of Dropout\(p=0.3\) expects "
                     r"shape \(4, 3\)"),
    Case("dropout-forward-object", layer_call(2, "forward", np.array([[None]]), net=_prob,
                                              training=True),
         TypeError, "X " + _REAL + "object"),

    # --- weights reassigned
    Case("W-wrong-shape", assign("W", np.zeros((4, 2))), ValueError,
         r"Dense.W must have shape \(2, 4\), got \(4, 2\)"),
    Case("W-flat", assign("W", np.zeros(8)), ValueError,
         r"Dense.W must have shape \(2, 4\), got \(8,\)"),
    Case("b-wrong-shape", assign("b", np.zeros((1, 4))), ValueError,
         r"Dense.b must have shape \(4,\), got \(1, 4\)"),
    Case("W-nan", assign("W", np.full((2, 4), np.nan)), ValueError,
         r"Dense.W contains NaN or infinity \(first at index \(0, 0\), shape \(2, 4\)\)"),
    Case("b-inf", assign("b", np.array([0, 0, np.inf, 0])), ValueError,
         r"Dense.b contains NaN or infinity \(first at index \(2,\)"),
    Case("W-too-large-for-float32", assign("W", np.full((2, 4), 1e300), dtype="float32"),
         ValueError, r"Dense.W has a value too large for float32 \(1e\+300 at index \(0, 0\)"),
    Case("W-str", assign("W", np.full((2, 4), "a")), TypeError, "Dense.W " + _REAL + "<U1"),
    Case("W-complex", assign("W", np.ones((2, 4), dtype=complex)), TypeError,
         "Dense.W " + _REAL + "complex128"),
    Case("W-object", assign("W", np.full((2, 4), None)), TypeError, "Dense.W " + _REAL + "object"),
    Case("b-without-bias", assign("b", np.zeros(1), index=1,
                                  net=lambda b: Network([Dense(2, 3), Dense(3, 1, bias=False)],
                                                        backend=b)),
         ValueError, "made with bias=False; it has no b"),

    # --- losses called directly (on the backend made the default)
    Case("mse-shape-mismatch", loss_call(MSELoss(), np.zeros(2), np.zeros(3)), ValueError,
         r"y has shape \(3, 1\) but the network outputs \(2, 1\)"),
    Case("mse-3d-pred", loss_call(MSELoss(), np.zeros((2, 2, 2)), np.zeros((2, 2, 2))),
         ValueError, r"pred must be 1-D or 2-D, got shape \(2, 2, 2\)"),
    Case("mse-empty", loss_call(MSELoss(), np.zeros((0, 1)), np.zeros((0, 1))), ValueError,
         r"pred is empty: shape \(0, 1\)"),
    Case("mse-nan-pred", loss_call(MSELoss(), [0.5, np.nan], [0.0, 1.0]), ValueError,
         r"pred contains NaN or infinity \(first at index \(1,\)"),
    Case("mse-str-target", loss_call(MSELoss(), [0.5, 1.0], ["a", "b"]), TypeError,
         "y " + _REAL + "<U1"),
    Case("mse-gradient-shape", loss_call(MSELoss(), np.zeros((2, 2)), np.zeros((2, 3)),
                                         "gradient"),
         ValueError, r"y has shape \(2, 3\) but the network outputs \(2, 2\)"),
    Case("bce-pred-out-of-range", loss_call(BCELoss(), [0.5, 1.5], [0.0, 1.0]), ValueError,
         r"BCELoss expects probabilities in \[0, 1\]"),
    Case("bce-target-out-of-range", loss_call(BCELoss(), [0.5, 0.5], [0.0, -1.0]), ValueError,
         r"BCELoss targets must lie in \[0, 1\]"),
    Case("xent-label-range", loss_call(CrossEntropyLoss(), np.zeros((2, 3)), [0, 3]), ValueError,
         r"class labels must lie in \[0, 3\).*from 0 to 3"),
    Case("xent-label-fractional", loss_call(CrossEntropyLoss(), np.zeros((2, 3)), [0, 0.5],
                                            "gradient"),
         ValueError, "whole numbers"),
    Case("loss-unknown-reduction", call(MSELoss, reduction="avg"), ValueError,
         r"reduction must be one of \('mean', 'sum'\), got 'avg'"),

    # --- optimizers
    Case("sgd-lr-negative", call(SGD, -0.1), ValueError, "lr must be >= 0.0, got -0.1"),
    Case("sgd-lr-nan", call(SGD, float("nan")), ValueError, "lr must be finite, got nan"),
    Case("adam-lr-inf", call(Adam, float("inf")), ValueError, "lr must be finite, got inf"),
    Case("sgd-lr-str", call(SGD, "0.1"), TypeError, "lr must be a real number, got '0.1'"),
    Case("sgd-momentum-negative", call(SGD, 0.1, momentum=-0.5), ValueError,
         "momentum must be >= 0.0, got -0.5"),
    Case("sgd-momentum-above-1", call(SGD, 0.1, momentum=1.5), ValueError,
         "momentum must be <= 1.0, got 1.5"),
    Case("sgd-weight-decay-negative", call(SGD, 0.1, weight_decay=-1), ValueError,
         "weight_decay must be >= 0.0, got -1.0"),
    Case("sgd-nesterov-without-momentum", call(SGD, 0.1, nesterov=True), ValueError,
         "nesterov=True needs a momentum > 0"),
    Case("adam-beta1-1", call(Adam, betas=(1.0, 0.999)), ValueError,
         r"betas\[0\] must be < 1.0, got 1.0"),
    Case("adam-beta2-negative", call(Adam, betas=(0.9, -0.1)), ValueError,
         r"betas\[1\] must be >= 0.0, got -0.1"),
    Case("adam-betas-not-pair", call(Adam, betas=0.9), TypeError, "betas must be a pair"),
    Case("adam-eps-0", call(Adam, eps=0.0), ValueError, "eps must be > 0.0, got 0.0"),
    Case("adam-eps-negative", call(Adam, eps=-1e-8), ValueError, "eps must be > 0.0"),
    Case("adam-weight-decay-nan", call(Adam, weight_decay=float("nan")), ValueError,
         "weight_decay must be finite"),
    Case("step-before-backward", step(lambda: SGD(0.1)), RuntimeError,
         "no gradient for 0.W: call backward before step"),
    Case("step-not-a-network", lambda b: ((lambda: Adam().step("net")), [], None), TypeError,
         "Adam steps a fastnn Network, got str"),

    # --- Network.load
    Case("load-missing", lambda b: ((lambda: Network.load("/nonexistent/fastnn/net.npz",
                                                          backend=b)), [], None),
         FileNotFoundError, "No such file or directory"),
    Case("load-directory", lambda b: ((lambda: Network.load(os.path.dirname(__file__),
                                                            backend=b)), [], None),
         IsADirectoryError, "Is a directory"),
    Case("load-garbage", load(_garbage), ValueError,
         r"net.npz is not a fastnn network file \(not an .npz archive"),
    Case("load-empty", load(lambda p: open(p, "wb").close()), ValueError,
         "net.npz is not a fastnn network file"),
    Case("load-truncated", load(_truncated), ValueError,
         "net.npz is not a fastnn network file: File is not a zip file"),
    Case("load-no-config", load(lambda p: np.savez(p, x=np.zeros(2))), ValueError,
         r"net.npz is not a fastnn network file \(it has no 'config' member"),
    Case("load-not-fastnn", load(_npz({"format": "other"})), ValueError,
         "is not a fastnn network file .missing fastnn header"),
    Case("load-config-not-json", load(_npz("{not json")), ValueError,
         "net.npz is not a fastnn network file"),
    Case("load-wrong-version", load(_npz(_edit(version=99))), ValueError,
         "net.npz has format version 99; this fastnn reads version 1"),
    Case("load-no-layers", load(_npz({k: v for k, v in _GOOD.items() if k != "layers"})),
         ValueError, "net.npz holds a damaged network description: KeyError: 'layers'"),
    Case("load-unknown-layer", load(_npz(_edit(layers=[{"type": "Conv2d", "config": {}}]))),
         ValueError, "damaged network description: ValueError: unknown layer type 'Conv2d'"),
    Case("load-bad-layer-config",
         load(_npz(_edit(layers=[{"type": "Dense", "config": {"n_in": 0, "n_out": 1}}]))),
         ValueError, "damaged network description: ValueError: Dense n_in must be >= 1, got 0"),
    Case("load-unexpected-layer-argument",
         load(_npz(_edit(layers=[{"type": "Dense", "config": {"n_in": 2, "n_out": 1,
                                                             "colour": "red"}}]))),
         ValueError, "damaged network description: TypeError: .*colour"),
    Case("load-bad-dtype", load(_npz(_edit(dtype="int8"))), ValueError,
         "damaged network description: TypeError: dtype must be 'float32' or 'float64'"),
    Case("load-missing-array", load(_npz(_GOOD, **{"0.W": np.zeros((2, 1))})), ValueError,
         "net.npz lacks the array '0.b'"),
    Case("load-wrong-shape", load(_npz(_GOOD, **{"0.W": np.zeros((1, 2)), "0.b": np.zeros(1)})),
         ValueError, r"net.npz: 0.W has shape \(1, 2\), expected \(2, 1\)"),
    Case("load-nan-weights",
         load(_npz(_GOOD, **{"0.W": np.full((2, 1), np.nan), "0.b": np.zeros(1)})), ValueError,
         r"net.npz: 0.W contains NaN or infinity \(first at index \(0, 0\)"),
    Case("load-str-weights",
         load(_npz(_GOOD, **{"0.W": np.full((2, 1), "a"), "0.b": np.zeros(1)})), ValueError,
         "net.npz: the member '0.W' has dtype <U1, expected float64"),
    Case("load-unknown-backend", lambda b: load(_saved)("nope"), ValueError,
         "unknown backend 'nope'"),

    # --- scikit-learn estimators (scikit-learn's conventions and messages)
    Case("sk-clf-nan-X", sk("clf", {}, _nan_at(X4, (1, 1)), L4), ValueError, "Input X contains NaN"),
    Case("sk-clf-inf-X", sk("clf", {}, _nan_at(X4, (1, 1), np.inf), L4), ValueError,
         "Input X contains infinity"),
    Case("sk-clf-length", sk("clf", {}, X4, L4[:3]), ValueError,
         r"inconsistent numbers of samples: \[4, 3\]"),
    Case("sk-clf-1d-X", sk("clf", {}, Y4, L4), ValueError, "Expected 2D array, got 1D array instead"),
    Case("sk-clf-empty", sk("clf", {}, np.zeros((0, 2)), np.zeros(0)), ValueError,
         r"0 sample\(s\) \(shape=\(0, 2\)\) while a minimum of 1 is required"),
    Case("sk-clf-complex-X", sk("clf", {}, X4 + 1j, L4), ValueError, "Complex data not supported"),
    Case("sk-clf-continuous-y", sk("clf", {}, X4, [0.1, 0.2, 0.3, 0.4]), ValueError,
         "Unknown label type"),
    Case("sk-clf-nan-y", sk("clf", {}, X4, [0.0, np.nan, 1.0, 0.0]), ValueError,
         "Input y contains NaN"),
    Case("sk-reg-y-wrong-length", sk("reg", {}, X4, np.zeros((5, 2))), ValueError,
         r"inconsistent numbers of samples: \[4, 5\]"),
    Case("sk-reg-str-y", sk("reg", {}, X4, np.array(["a", "b", "c", "d"])), ValueError,
         "could not convert string to float"),      # scikit-learn's own message
    Case("sk-predict-wrong-features", sk("clf", {}, np.zeros((2, 3)), None,
                                         fit_first=(X4, L4), what="predict"),
         ValueError, "X has 3 features, but MLPClassifier is expecting 2 features"),
    Case("sk-reg-predict-nan", sk("reg", {}, _nan_at(X4, (0, 0)), None, fit_first=(X4, Y4),
                                  what="predict"),
         ValueError, "Input X contains NaN"),
    Case("sk-predict-unfitted", sk("clf", {}, X4, None, what="predict"), ValueError,
         "This MLPClassifier instance is not fitted yet"),
    Case("sk-hidden-0", sk("clf", {"hidden_layer_sizes": (3, 0)}, X4, L4), ValueError,
         "hidden_layer_sizes must hold integers >= 1"),
    Case("sk-lr-nan", sk("clf", {"learning_rate_init": float("nan")}, X4, L4), ValueError,
         "learning_rate_init must be finite"),
    Case("sk-lr-negative", sk("reg", {"learning_rate_init": -0.1}, X4, Y4), ValueError,
         "learning_rate_init must be > 0.0"),
    Case("sk-batch-size-0", sk("clf", {"batch_size": 0}, X4, L4), ValueError,
         "batch_size must be 'auto' or an integer >= 1, got 0"),
    Case("sk-max-iter-float", sk("clf", {"max_iter": 2.5}, X4, L4), TypeError,
         "max_iter must be an integer, got 2.5"),
    Case("sk-momentum-above-1", sk("clf", {"solver": "sgd", "momentum": 1.5}, X4, L4),
         ValueError, "momentum must be <= 1.0"),
    Case("sk-beta1-1", sk("clf", {"beta_1": 1.0}, X4, L4), ValueError, "beta_1 must be < 1.0"),
    Case("sk-epsilon-0", sk("clf", {"epsilon": 0.0}, X4, L4), ValueError, "epsilon must be > 0.0"),
    Case("sk-alpha-negative", sk("reg", {"alpha": -1.0}, X4, Y4), ValueError,
         "alpha must be >= 0"),
    Case("sk-dtype", sk("reg", {"dtype": "int32"}, X4, Y4), ValueError,
         "dtype must be None \\(X's\\), 'float64' or 'float32'"),
    Case("sk-clf-masked-X", sk("clf", {}, _masked(X4, (2, 1)), L4), ValueError,
         _masked_msg("X", 1, (2, 1), (4, 2))),
    Case("sk-reg-masked-y", sk("reg", {}, X4, _masked(Y4, 3)), ValueError,
         _masked_msg("y", 1, (3,), (4,))),
    Case("sk-predict-masked", sk("clf", {}, _masked(X4, (0, 0)), None, fit_first=(X4, L4),
                                 what="predict"),
         ValueError, _masked_msg("X", 1, (0, 0), (4, 2))),
]


# ------------------------------------------------------------------ runner
def _crash(b):
    import signal
    return (lambda: os.kill(os.getpid(), signal.SIGSEGV)), [], None


#: rows that check the harness itself (not part of the battery)
_SELFTEST = [Case("_selftest-segfault", _crash, ValueError, ""),
             Case("_selftest-after", call(Dense, 0, 1), ValueError, "n_in")]
_BY_ID = {c.id: c for c in CASES + _SELFTEST}
assert len(_BY_ID) == len(CASES) + len(_SELFTEST), "case ids must be unique"


def _same(before, after):
    if isinstance(before, np.ndarray):
        return (isinstance(after, np.ndarray) and before.dtype == after.dtype
                and before.shape == after.shape
                and np.array_equal(before, after, equal_nan=before.dtype.kind in "fc"))
    return repr(before) == repr(after)


def _run(case, backend):
    """Run one row; a JSON-able record of what happened."""
    run, inputs, net = case.make(backend)
    before = copy.deepcopy(inputs)
    params = [p.copy() for _, p, _ in net.parameters()] if net is not None else []
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # a silent cast (ComplexWarning, overflow) fails
        try:
            run()
            mro, message = [], "no exception raised"
        except Exception as exc:  # noqa: BLE001 - the record says which
            mro, message = [c.__name__ for c in type(exc).__mro__], str(exc)
    modified = [i for i, (a, b) in enumerate(zip(before, inputs)) if not _same(a, b)]
    changed = net is not None and any(
        not np.array_equal(p, q) for p, (_, q, _) in zip(params, net.parameters()))
    return {"id": case.id, "mro": mro, "message": message, "modified": modified,
            "weights_changed": bool(changed)}


def _sweep(backend, ids):
    """Child process: run the rows ``ids``, one JSON line before and after each."""
    for cid in ids:
        print(json.dumps({"start": cid}), flush=True)
        print(json.dumps(_run(_BY_ID[cid], backend)), flush=True)


_CHILD = ("import sys; sys.path.insert(0, sys.argv[1]); import test_bad_input as t; "
          "t._sweep(sys.argv[2], sys.argv[3:])")


def _in_child(backend, ids):
    """Run rows in child processes; a row that kills its process gets a "crash" record
    (with the signal) and the sweep goes on after it in a new child."""
    here = os.path.dirname(os.path.abspath(__file__))
    # the same fastnn as these tests (the source tree under FASTNN_EDITABLE=1)
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))
    env = dict(os.environ, PYTHONPATH=package_root)
    results = {}
    ids = list(ids)
    while ids:
        proc = subprocess.run([sys.executable, "-c", _CHILD, here, backend, *ids],
                              capture_output=True, text=True, cwd=here, timeout=300, env=env)
        started = None
        for line in proc.stdout.splitlines():
            record = json.loads(line)
            if "start" in record:
                started = record["start"]
            else:
                results[record["id"]] = record
                started = None
        if started is None:
            assert proc.returncode == 0, f"the child failed outside any row:\n{proc.stderr}"
            break
        rc = proc.returncode
        how = f"signal {-rc}" if rc < 0 else f"exit status {rc}"
        results[started] = {"id": started, "crash": f"the process died with {how} in this row; "
                                                    f"stderr:\n{proc.stderr[-2000:]}"}
        ids = ids[ids.index(started) + 1:]
    return results


_compiled: dict[str, dict] = {}


def _record(case, backend):
    if backend == "numpy":
        return _run(case, backend)
    if not _compiled:                       # the whole compiled battery in one child, once
        _compiled.update(_in_child(backend, [c.id for c in CASES]))
    return _compiled[case.id]


def _check(case, record):
    assert "crash" not in record, record["crash"]
    got = record["mro"][0] if record["mro"] else "nothing"
    assert case.exc.__name__ in record["mro"], (
        f"expected {case.exc.__name__}, got {got}: {record['message']}")
    assert re.search(case.match, record["message"]), (
        f"the {got} message {record['message']!r} does not match {case.match!r}")
    assert not record["modified"], f"inputs {record['modified']} were modified"
    assert not record["weights_changed"], "the network's weights changed before the error"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input(backend, case):
    _check(case, _record(case, backend))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_both_backends_raise_the_same(case):
    if "cython" not in available_backends():
        pytest.skip("the compiled backend is not built")
    a, b = _run(case, "numpy"), _record(case, "cython")
    tmp = re.compile(r"/\S*fastnn-bad-\w+/")    # each run writes its files elsewhere
    unify = lambda r: (r.get("mro", [None])[:1], tmp.sub("", r.get("message", r.get("crash"))))
    assert unify(a) == unify(b)


def test_the_child_reports_a_crash_and_goes_on():
    results = _in_child("numpy", ["_selftest-segfault", "_selftest-after"])
    crash = results["_selftest-segfault"]["crash"]
    # AddressSanitizer (the CI's sanitized run) catches the SIGSEGV, reports it
    # and exits with status 1 instead of dying of the signal
    assert "signal 11" in crash or "AddressSanitizer: SEGV" in crash, crash
    _check(_BY_ID["_selftest-after"], results["_selftest-after"])


# ------------------------------------------------- instruction-set names
def test_isa_names(backend):
    if backend != "cython":
        pytest.skip("the instruction set is a compiled-backend setting")
    import fastnn.backends.cython_ops as co
    before = co.get_isa()
    with pytest.raises(ValueError, match=r"unknown ISA 'bogus'; expected one of \('generic'"):
        co.set_isa("bogus")
    with pytest.raises(TypeError, match="the ISA name must be a string, got int"):
        co.set_isa(2)
    assert co.get_isa() == before


def test_fastnn_isa_bogus_at_import(tmp_path):
    if "cython" not in available_backends():
        pytest.skip("the compiled backend is not built")
    code = """if True:
        import json, numpy as np, fastnn
        out = {}
        for attempt in range(2):        # the error repeats; it does not half-import
            try:
                fastnn.Network([fastnn.Dense(2, 1)], backend="cython")
                out[attempt] = "no error"
            except Exception as exc:
                out[attempt] = f"{type(exc).__name__}: {exc}"
        net = fastnn.Network([fastnn.Dense(2, 1)], backend="numpy", seed=0)
        out["numpy"] = net.predict(np.ones((1, 2))).shape
        print(json.dumps(out))
    """
    proc = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, FASTNN_ISA="bogus"),
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for attempt in ("0", "1"):
        assert re.match(r"ValueError: the environment variable FASTNN_ISA='bogus' is not usable: "
                        r"unknown ISA 'bogus'; expected one of", out[attempt]), out
    assert out["numpy"] == [1, 1]
