"""One optimizer table, one update kernel: ``ops.optimizer_update(name, ...)``.

Why it is built this way: adding an optimizer must touch only its row
(csrc/fastnn.h), its C update (csrc/optim_impl.h), its reference function
(``numpy_ops.OPTIMIZERS``) and its class (fastnn/optimizers.py).  So the
backends have one generic update each, dispatching by the table's name; these
tests check that every row of C's table has its reference function, that both
backends agree with it, and that names and arrays outside the table are
refused the same way on both.  (An unknown code given to the C entry point
itself is refused in tests/test_tables.py, entry ``optimizer_update``.)
"""

import re

import numpy as np
import pytest

import fastnn
from fastnn.backends import numpy_ops
from fastnn.backends.numpy_ops import OPTIMIZERS
from fastnn.optimizers import Adam, Optimizer
from tests_conftest import tol  # noqa: E402 (conftest.py registers the name)


@pytest.fixture(scope="module")
def c_rows():
    co = pytest.importorskip("fastnn.backends.cython_ops",
                             reason="the compiled backend is not built")
    return {row["name"]: row for row in co._c_tables()["optimizers"]}


def test_every_c_row_has_its_reference_function(c_rows):
    assert set(OPTIMIZERS) == set(c_rows)
    for name, row in c_rows.items():
        ref = OPTIMIZERS[name]
        assert callable(ref.update), name
        assert ref.n_state == row["n_state"], name
        assert ref.hypers == row["hypers"], name      # same names, same order


def _hypers(name, rng):
    """Random hyper-parameters of the row ``name`` that use all of its state."""
    h = {k: float(rng.uniform(0.05, 0.95)) for k in OPTIMIZERS[name].hypers}
    if "weight_decay" in h:
        h["weight_decay"] = 0.01
    if "nesterov" in h:
        h["nesterov"] = float(rng.integers(0, 2))
    return h


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_both_backends_agree_with_the_reference_function(backend, dtype, rng, name):
    ops = fastnn.get_backend(backend)
    ref = OPTIMIZERS[name]
    for shape in ((0,), (7,), (5, 33)):
        param = rng.standard_normal(shape).astype(dtype)
        grad = rng.standard_normal(shape).astype(dtype)
        states = [np.abs(rng.standard_normal(shape)).astype(dtype) for _ in range(ref.n_state)]
        h, step = _hypers(name, rng), int(rng.integers(1, 50))
        want_p, want_s = param.copy(), [s.copy() for s in states]
        with numpy_ops.ieee_scope():
            ref.update(want_p, grad, want_s, h, step)
        got_p, got_s = param.copy(), [s.copy() for s in states]
        grad_before = grad.copy()
        ops.optimizer_update(name, got_p, grad, got_s, h, step)
        np.testing.assert_array_equal(grad, grad_before)
        if shape != (0,):
            assert not np.array_equal(want_p, param), "the update changed nothing"
        np.testing.assert_allclose(got_p, want_p, **tol(dtype))
        for g, w in zip(got_s, want_s):
            assert g.dtype == w.dtype
            np.testing.assert_allclose(g, w, **tol(dtype))


def test_the_aliases_are_the_generic_kernel(backend, rng):
    """sgd_update / adam_update give exactly what optimizer_update gives."""
    ops = fastnn.get_backend(backend)
    p, g = rng.standard_normal(9), rng.standard_normal(9)
    v = rng.standard_normal(9)
    a, va, b, vb = p.copy(), v.copy(), p.copy(), v.copy()
    ops.sgd_update(a, g, va, 0.1, 0.9, 0.01, True)
    ops.optimizer_update("sgd", b, g, [vb], {"lr": 0.1, "momentum": 0.9,
                                             "weight_decay": 0.01, "nesterov": 1.0})
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(va, vb)
    m, v2 = np.abs(rng.standard_normal(9)), np.abs(rng.standard_normal(9))
    a, ma, va, b, mb, vb = p.copy(), m.copy(), v2.copy(), p.copy(), m.copy(), v2.copy()
    ops.adam_update(a, g, ma, va, 3, 0.01, 0.8, 0.99, 1e-6, 0.0)
    ops.optimizer_update("adam", b, g, [mb, vb], {"lr": 0.01, "beta1": 0.8, "beta2": 0.99,
                                                  "eps": 1e-6, "weight_decay": 0.0,
                                                  "amsgrad": 0.0}, 3)
    for x, y in ((a, b), (ma, mb), (va, vb)):
        np.testing.assert_array_equal(x, y)


SGD_H = {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.0, "nesterov": 0.0}


@pytest.mark.parametrize("name", ["lion", "SGD", "", None])
def test_an_unknown_name_is_refused(backend, name):
    ops = fastnn.get_backend(backend)
    p = np.ones(3)
    with pytest.raises(ValueError, match=re.escape(f"unknown optimizer {name!r}; expected one "
                                                   f"of {sorted(OPTIMIZERS)}")):
        ops.optimizer_update(name, p, p.copy(), [np.zeros(3)], SGD_H)
    np.testing.assert_array_equal(p, 1.0)


@pytest.mark.parametrize("case", ["missing hyper", "extra hyper", "not a dict", "too few states",
                                  "extra state", "step 0", "missing state"])
def test_bad_arguments_are_refused_the_same_way(case):
    p = np.ones((3, 4))
    states, h, step = [np.zeros((3, 4))], dict(SGD_H), 1
    if case == "missing hyper":
        del h["nesterov"]
    elif case == "extra hyper":
        h["dampening"] = 0.0
    elif case == "not a dict":
        h = list(h.values())
    elif case == "too few states":
        states = []
    elif case == "extra state":
        states = [np.zeros((3, 4)), np.zeros((3, 4))]
    elif case == "step 0":
        step = 0
    else:
        states = [None]
    messages = []
    for ops in (fastnn.get_backend("numpy"), fastnn.get_backend("cython")):
        q = p.copy()
        with pytest.raises(ValueError) as info:
            ops.optimizer_update("sgd", q, p.copy(), states, h, step)
        np.testing.assert_array_equal(q, p)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert messages[0].startswith(("sgd", "optimizer 'sgd'")), messages[0]
    if case == "missing state":
        assert "need state array 0 of shape (3, 4), got None" in messages[0]


def test_the_compiled_wrapper_checks_every_state_array():
    C = fastnn.get_backend("cython")
    p = np.ones((3, 4))
    m = np.zeros((3, 4))
    adam_h = {"lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0,
              "amsgrad": 0.0}
    with pytest.raises(ValueError, match=re.escape("adam state array 1 has shape (4, 3) but "
                                                   "param has shape (3, 4)")):
        C.optimizer_update("adam", p, p.copy(), [m, np.zeros((4, 3))], adam_h)
    ro = np.zeros((3, 4))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="adam state array 0 is updated in place but is "
                                         r"read-only \(shape \(3, 4\)\)"):
        C.optimizer_update("adam", p, p.copy(), [ro, m], adam_h)
    with pytest.raises(TypeError, match="adam state array 1 is float32"):
        C.optimizer_update("adam", p, p.copy(), [m, m.astype(np.float32)], adam_h)
    with pytest.raises(ValueError, match="adam state array 0 must be C-contiguous"):
        C.optimizer_update("adam", p, p.copy(), [np.zeros((4, 3)).T, m], adam_h)
    np.testing.assert_array_equal(p, 1.0)
    np.testing.assert_array_equal(m, 0.0)


# the class is user code: on the compiled backend fit says it runs the Python loop
@pytest.mark.filterwarnings("ignore:MyAdam._state_arrays.*are user code:UserWarning")
def test_a_new_optimizer_class_is_its_constructor_and_its_row(backend):
    """A class with only its table name, hyper-parameters and state steps a
    network exactly as the built-in class does (through the generic kernel)."""

    class MyAdam(Optimizer):
        kernel = "adam"

        def _hypers(self):
            return {"lr": self.lr, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                    "weight_decay": 0.0, "amsgrad": False}

        def _state_arrays(self, ops, key, param):
            if key not in self.state:
                self.state[key] = {"step": 0, "m": ops.zeros_like(param),
                                   "v": ops.zeros_like(param)}
            return [self.state[key]["m"], self.state[key]["v"]]

        def _step_number(self, key):
            return self.state[key]["step"] + 1

        def _advance(self, key):
            self.state[key]["step"] += 1

    X = np.linspace(-1, 1, 24).reshape(12, 2)
    y = X[:, :1] * 2 - X[:, 1:]
    weights = []
    for opt in (Adam(0.01), MyAdam(0.01)):
        net = fastnn.Network([fastnn.Dense(2, 4), fastnn.Tanh(), fastnn.Dense(4, 1)],
                             backend=backend, seed=3)
        net.fit(X, y, loss="mse", optimizer=opt, epochs=3, batch_size=4, shuffle=False)
        weights.append([p.copy() for _, p, _ in net.parameters()])
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
