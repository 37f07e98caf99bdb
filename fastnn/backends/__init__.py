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
import importlib.util
import os
import sys
import warnings
from types import FrameType, ModuleType
from typing import IO, Any, Iterator

from .._validation import check_int
from ._source_hash import source_hash, source_root
from .numpy_ops import NumpyOps

__all__ = ["NumpyOps", "CythonOps", "FallbackWarning", "available_backends", "get_backend",
           "set_backend", "use_backend", "set_num_threads", "get_num_threads", "show_config"]

_COMPILED = "fastnn.backends.cython_ops"
#: what importing the extension raises when it cannot be used: ImportError,
#: or the ValueError / RuntimeError of an unusable FASTNN_ISA (cython_ops.pyx)
_IMPORT_ERRORS = (ImportError, ValueError, RuntimeError)


class FallbackWarning(UserWarning):
    """The compiled backend, the default, could not be loaded: the reference runs instead.

    The message gives the cause and the command that fixes it.  Choose the
    reference on purpose (``fastnn.set_backend("numpy")`` or
    ``FASTNN_BACKEND=numpy``) and it is not issued.
    """


_fallback_warned = False      # the FallbackWarning is told once per process
_fresh_checked = False        # the source hash is compared once per process

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
        if module == _COMPILED:
            try:
                loaded = _import_compiled()
            except ImportError as exc:
                raise ImportError(f"the {key!r} backend is not available: {exc}; "
                                  "or use backend='numpy' (the reference)") from exc
        else:
            loaded = importlib.import_module(module)
        _instances[key] = getattr(loaded, cls)()
    return _instances[key]


def _outside_fastnn() -> int:
    """The ``stacklevel`` of a warning that points at the first caller outside fastnn."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _package_root() -> str | None:
    """The source tree fastnn is imported from, or None for an installed package."""
    return source_root(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _rebuild_command() -> str:
    """The one command that builds (or rebuilds) the extension this fastnn imports."""
    root = _package_root()
    if root is not None:
        return (f"run 'pip install .' in {root} (it builds the extension and places it "
                "beside the sources too)")
    return ("reinstall fastnn from its source directory: 'pip install --force-reinstall .' "
            "there")


def _asan_problem(path: str) -> str | None:
    """Why an AddressSanitizer build at ``path`` cannot load now, or None.

    Loading one without the ASan runtime first in the process kills the process
    (ASan aborts), so this is checked before the import.
    """
    try:
        with open(path, "rb") as f:
            needs_asan = b"libasan.so" in f.read()
        if not needs_asan:
            return None
        with open("/proc/self/maps") as f:
            if "libasan" in f.read():
                return None
    except OSError:
        return None
    return (f"{path} is an AddressSanitizer build (FASTNN_SANITIZE=1) and the ASan runtime "
            "is not loaded; start Python with LD_PRELOAD=\"$(gcc -print-file-name=libasan.so) "
            "$(gcc -print-file-name=libstdc++.so)\" ASAN_OPTIONS=detect_leaks=0, or rebuild "
            f"without FASTNN_SANITIZE: {_rebuild_command()}")


def _import_compiled() -> ModuleType:
    """The compiled extension module, checked.

    Raises ImportError naming the real cause and the fix (the cause chained),
    or the extension's own ValueError/RuntimeError for an unusable FASTNN_ISA;
    warns once (``UserWarning``) when a source tree's build is older than its
    sources.
    """
    if _COMPILED in sys.modules:
        module = sys.modules[_COMPILED]
    else:
        spec = importlib.util.find_spec(_COMPILED)
        here = os.path.dirname(os.path.abspath(__file__))
        if spec is None or spec.origin is None:
            where = ("this is the source tree at " + str(_package_root()) + ", which Python "
                     "found before any installed copy, and it has not been built"
                     if _package_root() is not None else "the installation is incomplete")
            raise ImportError(f"fastnn's compiled extension (cython_ops*.so) is not in {here} "
                              f"({where}); to fix it, {_rebuild_command()}")
        problem = _asan_problem(spec.origin)
        if problem is not None:
            raise ImportError(problem)
        try:
            module = importlib.import_module(_COMPILED)
        except ImportError as exc:
            raise ImportError(f"fastnn's compiled extension {spec.origin} does not load "
                              f"({exc}); to fix it, {_rebuild_command()}") from exc
    _check_fresh(module)
    return module


def _check_fresh(module: ModuleType) -> None:
    """Warn once when the extension was built from sources other than the tree it sits in."""
    global _fresh_checked
    root = _package_root()
    if root is None or _fresh_checked:
        return
    _fresh_checked = True
    built = module.source_hash() if hasattr(module, "source_hash") else "unknown"
    if built != source_hash(root):
        warnings.warn(_stale_message(module), UserWarning, stacklevel=_outside_fastnn())


def _stale_message(module: ModuleType) -> str:
    """The warning for an extension older than the sources beside it."""
    return (f"fastnn's compiled extension {module.__file__} was built from other sources "
            f"than those in {_package_root()} (C or Cython code changed since): it runs the "
            f"old code; to rebuild it, {_rebuild_command()}")


def _compiled_status() -> tuple[ModuleType | None, str | None]:
    """The compiled extension module and None, or None and why it cannot be used.

    Returns
    -------
    (module, None) or (None, str)
        The message names the cause and the command that fixes it.
    """
    try:
        return _import_compiled(), None
    except _IMPORT_ERRORS as exc:
        return None, str(exc)


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
        except _IMPORT_ERRORS:
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
    global _fallback_warned
    module, problem = _compiled_status()
    if module is None:
        if not _fallback_warned:
            _fallback_warned = True
            warnings.warn(
                f"fastnn's compiled backend cannot be used, so the NumPy reference backend "
                f"(much slower) runs instead: {problem}.  (To choose the reference on purpose, "
                "without this warning: FASTNN_BACKEND=numpy or fastnn.set_backend('numpy').)",
                FallbackWarning, stacklevel=_outside_fastnn())
        return "numpy"
    return "cython"


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

    Raises
    ------
    ImportError
        ``"cython"`` when the extension cannot be loaded: the message names the
        cause and the command that fixes it.
    ValueError, RuntimeError
        ``"cython"`` when ``FASTNN_ISA`` names no instruction set, or one this
        CPU lacks (the valid ones are named).

    Warns
    -----
    FallbackWarning
        Once, when ``name`` is None, no default was chosen and the compiled
        backend cannot be loaded, so the reference runs.
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
    """The compiled extension module, or None when it cannot be used."""
    return _compiled_status()[0]


def set_num_threads(n: int) -> None:
    """Number of threads the compiled kernels may use (>= 1).

    Results do not depend on it: work is split over output blocks, never
    inside a sum.  The reference backend is single-threaded NumPy.

    Parameters
    ----------
    n : int
        Any integer >= 1, NumPy integers included.
    """
    n = check_int(n, "the number of threads", minimum=1)
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
    module, problem = _compiled_status()
    if module is not None or _default is not None or os.environ.get("FASTNN_BACKEND"):
        default = _default_name()
    else:           # the cause is below; no FallbackWarning on top of it
        default = "numpy (the compiled backend cannot be used)"
    lines = [f"backends:        {', '.join(available_backends())}",
             f"default backend: {default}"]
    if module is None:
        lines.append(f"compiled:        not available: {problem}")
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
