"""Interop with other frameworks: ``fastnn.interop.torch`` (PyTorch) and
``fastnn.interop.onnx`` (ONNX).

Why it is built this way: each framework is an optional dependency, so each
has its own module, imported only when used, and a missing one is an
ImportError that says how to install it (``_import_optional``).
"""

import importlib
from typing import Any


def _import_optional(module: str, what: str, package: str, install: str) -> Any:
    """``module``, imported, or an ImportError saying that ``what`` needs
    ``package`` and how to ``install`` it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{what} needs {package}, which is not installed; install it "
                          f"with {install}") from exc
