"""The documented API: doctests, type hints, docstrings and the py.typed marker,
checked on the package the tests import.

Why it is built this way: ``import fastnn`` resolves to the installed package
(the ``pytest`` script) or to this source tree (``python -m pytest``), each with
its compiled extension built from these sources (tests/test_build.py checks
that), so ``doctest.testmod`` on the imported modules runs the examples on the
compiled default backend, as users get it, without ``--doctest-modules``
collecting the source tree.
"""

import doctest
import importlib
import inspect
import os

import numpy as np
import pytest

import fastnn
from fastnn.backends import _compiled_status
from fastnn.backends._source_hash import source_root

MODULES = ["fastnn.network", "fastnn.training", "fastnn.io", "fastnn.interop.torch",
           "fastnn.layers", "fastnn.losses", "fastnn.optimizers", "fastnn.perceptron",
           "fastnn.datasets", "fastnn._validation", "fastnn.backends",
           "fastnn.backends.numpy_ops", "fastnn.sklearn"]
#: modules whose docstrings must hold examples (the key ones)
WITH_EXAMPLES = {"fastnn.network", "fastnn.layers", "fastnn.losses", "fastnn.datasets"}


def _module(name):
    if name == "fastnn.sklearn":
        pytest.importorskip("sklearn", reason="fastnn.sklearn needs scikit-learn")
    if name == "fastnn.interop.torch":
        pytest.importorskip("torch", reason="its examples convert to and from PyTorch")
    return importlib.import_module(name)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = _module(name)
    printed = np.get_printoptions()
    try:
        np.set_printoptions(legacy=False)
        flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
        result = doctest.testmod(module, optionflags=flags, verbose=False, report=True)
    finally:
        np.set_printoptions(**printed)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
    if name in WITH_EXAMPLES:
        assert result.attempted > 0, f"{name} has no doctest examples"


def test_doctests_run_on_the_compiled_default_backend():
    # the installed package or this source tree (never another one), compiled
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    where = os.path.dirname(os.path.abspath(fastnn.__file__))
    assert source_root(where) is None or os.path.samefile(where, os.path.join(here, "fastnn"))
    module, problem = _compiled_status()
    assert module is not None, problem
    if not os.environ.get("FASTNN_BACKEND"):
        assert fastnn.get_backend().name == "cython"


def test_py_typed_is_installed():
    assert os.path.isfile(os.path.join(os.path.dirname(fastnn.__file__), "py.typed"))


def _public_callables():
    for name in fastnn.__all__:
        obj = getattr(fastnn, name)
        if inspect.ismodule(obj) or name == "__version__":
            continue
        if inspect.isclass(obj):
            yield name, obj
            for attr, member in vars(obj).items():
                if attr.startswith("_") and attr not in ("__init__", "__call__"):
                    continue
                if isinstance(member, (staticmethod, classmethod)):
                    member = member.__func__
                if isinstance(member, property):
                    member = member.fget
                if inspect.isfunction(member):
                    yield f"{name}.{attr}", member
        elif callable(obj):
            yield name, obj
    for name in fastnn.datasets.__all__:
        yield f"datasets.{name}", getattr(fastnn.datasets, name)


@pytest.mark.parametrize("name, obj", list(_public_callables()), ids=lambda v: v
                         if isinstance(v, str) else "")
def test_public_names_are_typed_and_documented(name, obj):
    if not name.endswith("__init__"):          # documented in the class docstring
        assert inspect.getdoc(obj), f"{name} has no docstring"
    if inspect.isclass(obj):
        return
    signature = inspect.signature(obj)
    for param in signature.parameters.values():
        if param.name in ("self", "cls"):
            continue
        assert param.annotation is not inspect.Parameter.empty, \
            f"{name}: parameter {param.name!r} has no type hint"
    assert signature.return_annotation is not inspect.Signature.empty, \
        f"{name} has no return type hint"
