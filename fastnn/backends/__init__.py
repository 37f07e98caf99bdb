"""Backend registry: pick the kernels (``ops``) a network runs on, by name.

Why it is built this way: the API layer (layers, losses, optimizers) only ever
talks to an ops object, so a backend is just a name mapped to a class.  The
compiled module is imported lazily, so the reference backend works (and the
error is clear) even when the extension is missing.  The default comes from,
in order: ``set_backend``/``use_backend``, the ``FASTNN_BACKEND`` environment
variable, then the compiled backend when it imports, else the reference.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from typing import IO, Any, Iterator

from .numpy_ops import NumpyOps

__all__ = ["NumpyOps", "CythonOps", "available_backends", "get_backend", "set_backend",
           "use_backend", "set_num_threads", "get_num_threads", "show_config"]

_BACKENDS = {
    "numpy": ("fastnn.backends.numpy_ops", "NumpyOps"),
    "cython": ("fastnn.backends.cython_ops", "CythonOps"),
}
_instances: dict[str, NumpyOps] = {}
_default: str | None = None


def _load(name: str) -> NumpyOps:
    if not isinstance(name, str):
        raise TypeError(f"backend name must be a string, got {type(name).__name__}")
    key = name.lower()
    if key not in _BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected one of {sorted(_BACKENDS)}")
    if key not in _instances:
        module, cls = _BACKENDS[key]
        try:
            _instances[key] = getattr(importlib.import_module(module), cls)()
        except ImportError as exc:
            raise ImportError(
                f"the {key!r} backend is not available ({exc}); reinstall fastnn with "
                "'pip install .' so the extension is built, or use backend='numpy'") from exc
    return _instances[key]


def available_backends() -> list[str]:
    """Names of the backends that import on this installation.

    Returns
    -------
    list of str
        A subset of ``["numpy", "cython"]``.
    """
    names = []
    for name in _BACKENDS:
        try:
            _load(name)
        except ImportError:
            continue
        names.append(name)
    return names


def _default_name() -> str:
    if _default is not None:
        return _default
    env = os.environ.get("FASTNN_BACKEND")
    if env:
        if env.lower() not in _BACKENDS:
            raise ValueError(f"the environment variable FASTNN_BACKEND={env!r} is not a "
                             f"backend; expected one of {sorted(_BACKENDS)} (or unset it)")
        return env
    return "cython" if "cython" in available_backends() else "numpy"


def get_backend(name: str | NumpyOps | None = None) -> NumpyOps:
    """The ops object (the kernels) of a backend.

    Parameters
    ----------
    name : {"numpy", "cython"}, an ops object, or None
        An ops object is returned as is; None gives the default backend.

    Returns
    -------
    NumpyOps
        ``NumpyOps`` or its compiled subclass ``CythonOps``.
    """
    if isinstance(name, NumpyOps):
        return name
    return _load(_default_name() if name is None else name)


def set_backend(name: str) -> NumpyOps:
    """Make ``name`` the default backend of new networks.

    Parameters
    ----------
    name : {"numpy", "cython"}

    Returns
    -------
    NumpyOps
        The backend's ops object.
    """
    global _default
    ops = _load(name)
    _default = ops.name
    return ops


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[NumpyOps]:
    """Context manager: ``with use_backend("numpy"): ...`` restores the old default after.

    Parameters
    ----------
    name : {"numpy", "cython"}

    Yields
    ------
    NumpyOps
        The backend's ops object.
    """
    global _default
    previous = _default
    ops = set_backend(name)
    try:
        yield ops
    finally:
        _default = previous


def _compiled() -> Any:
    """The compiled extension module, or None when it is not built."""
    try:
        return importlib.import_module("fastnn.backends.cython_ops")
    except ImportError:
        return None


def set_num_threads(n: int) -> None:
    """Number of threads the compiled kernels may use (>= 1).

    Results do not depend on it: work is split over output blocks, never
    inside a sum.  The reference backend is single-threaded NumPy.

    Parameters
    ----------
    n : int
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of threads must be an integer >= 1, got {n!r}")
    module = _compiled()
    if module is not None:
        module.set_num_threads(n)


def get_num_threads() -> int:
    """Threads the compiled kernels use (1 without the extension).

    Returns
    -------
    int
    """
    module = _compiled()
    return module.get_num_threads() if module is not None else 1


def show_config(file: IO[str] | None = None) -> None:
    """Print backends, default backend, instruction set, threads and build flags.

    Parameters
    ----------
    file : text stream, optional
        Where to print (default: stdout).
    """
    module = _compiled()
    lines = [f"backends:        {', '.join(available_backends())}",
             f"default backend: {get_backend().name}"]
    if module is None:
        lines.append("compiled:        not built")
    else:
        lines += [f"isa in use:      {module.get_isa()} (cpu best: {module.cpu_isa()}, "
                  f"available: {', '.join(module.supported_isas())})",
                  f"threads:         {module.get_num_threads()}",
                  f"build flags:     {module.build_flags()}"]
    print("\n".join(lines), file=file)


def __getattr__(attr: str) -> Any:
    if attr == "CythonOps":
        return type(_load("cython"))
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
