"""Which methods of a layer, loss or optimizer are a user's own code.

Why it is built this way: the compiled backend's native trainer runs a piece
in C only when it knows that piece exactly -- a built-in class, or a subclass
that overrides none of its computing methods.  Anything else is user code,
which must run as written on every backend (never be replaced by the C code of
the class it derives from).  A method is user code when the class that
defines it, first in the method resolution order, is not one of fastnn's own.
"""

from __future__ import annotations

from typing import Any

__all__ = ["user_methods"]

#: The methods that compute, per kind of piece (its fastnn base class's name).
COMPUTING = {
    "Layer": ("forward", "backward", "params", "grads"),
    "Loss": ("compute",),
    "Optimizer": ("step", "update", "checked_step", "native_spec", "_update",
                  "_state_arrays", "_advance", "_spec"),
}


def _fastnn_class(cls: type) -> bool:
    return cls.__module__ == "fastnn" or cls.__module__.startswith("fastnn.")


def user_methods(piece: Any, kind: str) -> list[str]:
    """The computing methods of ``piece`` that a class outside fastnn defines.

    Parameters
    ----------
    piece : Layer, Loss or Optimizer
    kind : {"Layer", "Loss", "Optimizer"}
        Which methods to look at (``COMPUTING[kind]``).

    Returns
    -------
    list of str
        E.g. ``["forward", "backward"]``; empty for a piece fastnn knows.
    """
    found = []
    for name in COMPUTING[kind]:
        for cls in type(piece).__mro__:
            if name in vars(cls):
                if not _fastnn_class(cls):
                    found.append(name)
                break
    return found
