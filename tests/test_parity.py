"""The compiled backend overrides every kernel of the reference, with the same signature.

Why it is built this way: the reference backend (NumpyOps) is the spec; a method
that CythonOps silently inherits would run NumPy code under the "cython" name and
hide a missing kernel.  Anything deliberately left to the reference must be listed
in ``ALLOWED_IN_PYTHON`` with its reason.
"""

import inspect

import numpy as np
import pytest

from fastnn.backends.numpy_ops import NumpyOps

cython_ops = pytest.importorskip("fastnn.backends.cython_ops",
                                 reason="the compiled backend is not built")
CythonOps = cython_ops.CythonOps

#: Public NumpyOps methods CythonOps deliberately inherits, each with its reason.
ALLOWED_IN_PYTHON = {
    # Pure allocation, no arithmetic: np.zeros is already a calloc of the right
    # shape and dtype, and a C version would only add a second code path.
    "zeros_like": "allocation only; np.zeros is already optimal",
    # Thin aliases with their own argument lists over optimizer_update, which
    # CythonOps overrides: no arithmetic of their own, so a new optimizer needs
    # no compiled method of its own.
    "sgd_update": "alias of optimizer_update('sgd', ...), which is compiled",
    "adam_update": "alias of optimizer_update('adam', ...), which is compiled",
}


def _public_methods(cls):
    return sorted(name for name, member in inspect.getmembers(cls)
                  if not name.startswith("_") and inspect.isfunction(member))


def test_reference_has_the_known_kernels():
    # guards the test itself: if this list shrinks, the parity check means less
    expected = {"zeros_like", "gemm", "activation_forward", "activation_backward",
                "dense_forward", "dense_backward", "mse", "bce", "cross_entropy",
                "optimizer_update", "sgd_update", "adam_update", "rng_bits", "dropout_forward",
                "dropout_backward"}
    assert expected <= set(_public_methods(NumpyOps))


def test_allow_list_names_real_methods():
    assert set(ALLOWED_IN_PYTHON) <= set(_public_methods(NumpyOps))


@pytest.mark.parametrize("name", _public_methods(NumpyOps))
def test_every_kernel_is_overridden(name):
    if name in ALLOWED_IN_PYTHON:
        assert getattr(CythonOps, name) is getattr(NumpyOps, name), (
            f"{name} is in the allow-list but CythonOps overrides it; update the list")
        return
    assert name in vars(CythonOps), f"CythonOps does not override NumpyOps.{name}"
    assert getattr(CythonOps, name) is not getattr(NumpyOps, name)


def _call_shape(sig):
    """What a caller relies on: names, kinds and defaults (type hints are documentation,
    and the compiled methods carry none)."""
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


@pytest.mark.parametrize("name", _public_methods(NumpyOps))
def test_same_signature(name):
    ref = inspect.signature(getattr(NumpyOps, name))
    got = inspect.signature(getattr(CythonOps, name))
    assert _call_shape(got) == _call_shape(ref), \
        f"{name}: CythonOps{got} differs from NumpyOps{ref}"


def test_backend_name():
    assert CythonOps.name == "cython" and NumpyOps.name == "numpy"


@pytest.mark.parametrize("ops_name", ["numpy", "cython"])
def test_both_backends_refuse_the_same_kernel_arguments(ops_name):
    """Labels out of range and an Adam step below 1 are errors of the spec, with the
    same message on both backends (NumPy indexing would otherwise wrap a label of -1)."""
    import fastnn
    ops = fastnn.get_backend(ops_name)
    logits = np.zeros((3, 4))
    for labels in ([0, 4, 1], [0, -1, 1]):
        with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\) for logits of "
                                             r"shape \(3, 4\)"):
            ops.cross_entropy(logits, np.array(labels, dtype=np.int64))
    p = np.ones(3)
    with pytest.raises(ValueError, match="step counts from 1, got 0"):
        ops.adam_update(p, p.copy(), np.zeros(3), np.zeros(3), 0, 0.1)
