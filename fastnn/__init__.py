"""fastnn: multilayer perceptrons on the CPU, a NumPy reference and a compiled backend.

This module only gathers the public names.  The layers, losses and
optimizers come from their modules' ``__all__``, so a new one is public by
being declared there (the lookup helpers ``get_loss``/``get_optimizer`` and
the ``INITIALIZERS`` tuple stay in their modules).
"""

from . import backends, callbacks, datasets, layers, losses, optimizers, schedules
from .backends import (get_backend, get_num_threads, set_backend, set_num_threads, show_config,
                       use_backend)
from .layers import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .network import History, Network
from .optimizers import *  # noqa: F401,F403
from .perceptron import Perceptron

__version__ = "0.1.0"

_MODULE_ONLY = ("INITIALIZERS", "get_loss", "get_optimizer")
for _name in _MODULE_ONLY:
    del globals()[_name]
del _name

__all__ = ["Network", "History",
           *(name for module in (layers, losses, optimizers) for name in module.__all__
             if name not in _MODULE_ONLY),
           "Perceptron", "backends", "callbacks", "datasets", "schedules", "get_backend",
           "set_backend", "use_backend",
           "set_num_threads", "get_num_threads", "show_config", "__version__"]
