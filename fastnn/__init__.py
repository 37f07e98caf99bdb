"""fastnn: multilayer perceptrons on the CPU, a NumPy reference and a compiled backend.

This module only gathers the public names.
"""

from . import backends, datasets
from .backends import (get_backend, get_num_threads, set_backend, set_num_threads, show_config,
                       use_backend)
from .layers import (Activation, Dense, Dropout, Identity, Layer, LeakyReLU, ReLU, Sigmoid,
                     SiLU, Softmax, Tanh)
from .losses import BCELoss, CrossEntropyLoss, Loss, MSELoss
from .network import History, Network
from .optimizers import SGD, Adam, Optimizer
from .perceptron import Perceptron

__version__ = "0.1.0"

__all__ = ["Network", "History", "Layer", "Dense", "Activation", "Identity", "Sigmoid", "Tanh",
           "ReLU", "LeakyReLU", "SiLU", "Softmax", "Dropout", "Loss", "MSELoss", "BCELoss",
           "CrossEntropyLoss", "Optimizer", "SGD", "Adam", "Perceptron", "backends", "datasets",
           "get_backend", "set_backend", "use_backend", "set_num_threads", "get_num_threads",
           "show_config", "__version__"]
