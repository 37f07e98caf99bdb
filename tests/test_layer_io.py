"""Every parameter-free layer saves and loads with its arguments, on both backends.

Why it is built this way: ``save`` writes each layer as its type and
``config()``, and ``load`` rebuilds it from them; a layer whose ``config``
forgot an argument would come back with its default and compute something
else.  So each layer is taken with arguments other than its defaults, and the
loaded network must have the same arguments and give the same outputs, bit for
bit.  Layers with parameters (Dense, and norms) are tested with their own code.
"""

import numpy as np
import pytest

from fastnn import ELU, GELU, Dense, Dropout, Flatten, LeakyReLU, Network, Softplus
from fastnn.layers import LAYER_TYPES

NON_DEFAULT = [lambda: GELU(approximate="tanh"), lambda: ELU(alpha=0.4),
               lambda: Softplus(beta=0.5, threshold=3.0), lambda: LeakyReLU(negative_slope=0.3),
               lambda: Dropout(0.2)]


def _parameter_free():
    out = []
    for cls in LAYER_TYPES.values():
        try:
            layer = cls()
        except TypeError:                       # needs arguments (Dense): not here
            continue
        if not layer.param_names:
            out.append(cls)
    return out


def test_the_list_is_not_empty():
    assert {c.__name__ for c in _parameter_free()} >= {
        "Identity", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "SiLU", "Softmax", "GELU", "ELU",
        "SELU", "Softplus", "Mish", "Dropout", "Flatten"}


@pytest.mark.parametrize("make", _parameter_free() + NON_DEFAULT, ids=lambda m: repr(m()))
def test_a_layer_saves_and_loads_with_its_arguments(backend, make, tmp_path):
    layer = make()
    net = Network([Dense(4, 6), layer, Dense(6, 3)], backend=backend, seed=2)
    net.save(tmp_path / "net.npz")
    back = Network.load(tmp_path / "net.npz", backend=backend)
    assert type(back.layers[1]) is type(layer)
    assert back.layers[1].config() == layer.config() and repr(back.layers[1]) == repr(layer)
    X = np.random.default_rng(0).standard_normal((5, 4)) * 3
    np.testing.assert_array_equal(back.predict(X), net.predict(X))


def test_flatten_before_the_first_dense_saves_and_loads(backend, tmp_path):
    net = Network([Flatten(), Dense(6, 2)], backend=backend, seed=0)
    net.save(tmp_path / "net.npz")
    back = Network.load(tmp_path / "net.npz", backend=backend)
    X = np.random.default_rng(1).standard_normal((3, 2, 3))
    np.testing.assert_array_equal(back.predict(X), net.predict(X))
