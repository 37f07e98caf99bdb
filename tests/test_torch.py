"""PyTorch interop: ``Network.to_torch`` / ``Network.from_torch``, and training parity.

Why it is built this way: fastnn promises PyTorch's formulas (losses, SGD,
Adam), so the strongest test is to train the same network in both from the
same weights, in the same batch order, and compare the weights.  torch is an
optional dependency: these tests skip (with the reason) when it is absent,
except the one that checks the ImportError message.
"""

import sys

import numpy as np
import pytest

from fastnn import (SGD, Adam, Dense, Dropout, Identity, LeakyReLU, Network, ReLU, Sigmoid, SiLU,
                    Softmax, Tanh)

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
nn = torch.nn


def _all_activations_net(backend, dtype="float64"):
    return Network([Dense(5, 7), Sigmoid(), Dense(7, 6), ReLU(), Dense(6, 6), Tanh(),
                    Dense(6, 5, bias=False), SiLU(), Dense(5, 5), LeakyReLU(0.2),
                    Dropout(0.3), Dense(5, 4), Identity(), Dense(4, 3), Softmax()],
                   backend=backend, dtype=dtype, seed=3)


def test_to_torch_structure_and_outputs(backend, rng):
    net = _all_activations_net(backend)
    model = net.to_torch()
    assert isinstance(model, nn.Sequential)
    kinds = [type(m) for m in model]
    assert kinds == [nn.Linear, nn.Sigmoid, nn.Linear, nn.ReLU, nn.Linear, nn.Tanh, nn.Linear,
                     nn.SiLU, nn.Linear, nn.LeakyReLU, nn.Dropout, nn.Linear, nn.Identity,
                     nn.Linear, nn.Softmax]
    assert model[9].negative_slope == 0.2 and model[10].p == 0.3 and model[14].dim == 1
    assert model[6].bias is None
    first = model[0]
    assert first.weight.dtype == torch.float64
    np.testing.assert_array_equal(first.weight.detach().numpy(), net.layers[0].W.T)
    np.testing.assert_array_equal(first.bias.detach().numpy(), net.layers[0].b)
    assert not model.training                     # evaluation mode, like predict
    X = rng.standard_normal((11, 5))
    out = model(torch.from_numpy(X)).detach().numpy()
    np.testing.assert_allclose(out, net.predict(X), rtol=1e-12, atol=1e-12)
    # copies: changing the torch weights leaves the network alone
    with torch.no_grad():
        first.weight.zero_()
    assert np.abs(net.layers[0].W).sum() > 0


def test_to_torch_float32_and_rng_untouched(backend, rng):
    net = _all_activations_net(backend, dtype="float32")
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    model = net.to_torch()                        # must not draw from torch's generator
    assert torch.equal(torch.rand(3), expected)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    X = rng.standard_normal((8, 5)).astype(np.float32)
    np.testing.assert_allclose(model(torch.from_numpy(X)).detach().numpy(), net.predict(X),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_from_torch_round_trip(backend, dtype, rng):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.LeakyReLU(0.1, inplace=True),
                          nn.Sequential(nn.Linear(8, 8, bias=False), nn.Tanh()),
                          nn.Dropout(0.25), nn.Linear(8, 3), nn.Softmax(dim=-1)).to(dtype)
    model.eval()
    net = Network.from_torch(model, backend=backend)
    assert net.backend == backend
    assert net.dtype == (np.float64 if dtype == torch.float64 else np.float32)
    assert [type(layer) for layer in net.layers] == [Dense, LeakyReLU, Dense, Tanh, Dropout,
                                                     Dense, Softmax]
    assert net.layers[1].negative_slope == pytest.approx(0.1)
    assert net.layers[2].b is None and net.layers[4].p == 0.25
    X = rng.standard_normal((9, 4))
    expected = model(torch.from_numpy(X).to(dtype)).detach().numpy()
    tol = {"rtol": 1e-12, "atol": 1e-12} if dtype == torch.float64 else {"rtol": 1e-5,
                                                                          "atol": 1e-6}
    np.testing.assert_allclose(net.predict(X.astype(net.dtype)), expected, **tol)
    # and back again: the same weights
    again = net.to_torch()
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    # a list of modules works as well
    listed = Network.from_torch([nn.Linear(4, 2).double(), nn.Sigmoid()], backend=backend)
    assert listed.n_outputs == 2


class _Custom(nn.Module):
    def forward(self, x):
        return x * 2


class _MyReLU(nn.ReLU):
    pass


@pytest.mark.parametrize("module, error, words", [
    (nn.Sequential(nn.Linear(4, 4), nn.Conv2d(1, 1, 3)), TypeError, ["Conv2d", "module 1"]),
    (nn.Sequential(nn.Linear(4, 4), _Custom()), TypeError, ["_Custom", "module 1"]),
    (nn.Sequential(nn.Linear(4, 4), _MyReLU()), TypeError, ["_MyReLU"]),
    (nn.Sequential(nn.Linear(4, 4), nn.Hardswish()), TypeError, ["Hardswish"]),
    (nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.Unflatten(1, (2, 2)))), TypeError,
     ["Unflatten", "1.0"]),
    (nn.Sequential(nn.Flatten(start_dim=2), nn.Linear(4, 4)), ValueError,
     ["module 0", "start_dim=2"]),
    (nn.Linear(4, 4), TypeError, ["nn.Sequential", "Linear"]),
    (nn.Sequential(nn.Linear(4, 4), nn.Softmax(dim=0)), ValueError, ["Softmax", "dim=0"]),
    (nn.Sequential(nn.Linear(4, 4).half()), ValueError, ["float16"]),
    (nn.Sequential(nn.Linear(4, 4).double(), nn.Linear(4, 4).float()), ValueError, ["dtypes"]),
    (nn.Sequential(nn.Linear(4, 4), nn.Linear(5, 2)), ValueError, ["layer"]),
    (nn.Sequential(nn.ReLU()), ValueError, ["Dense"]),
])
def test_from_torch_rejects(module, error, words):
    with pytest.raises(error) as info:
        Network.from_torch(module)
    for word in words:
        assert word in str(info.value)


def test_missing_torch_gives_a_clear_import_error(monkeypatch):
    net = Network([Dense(2, 2)], seed=0)
    monkeypatch.setitem(sys.modules, "torch", None)        # `import torch` now fails
    with pytest.raises(ImportError, match="pip install torch"):
        net.to_torch()
    with pytest.raises(ImportError, match="pip install torch"):
        Network.from_torch([])


# ------------------------------------------------------------ training parity
OPTIMIZERS = {
    "sgd-momentum": (lambda: SGD(lr=0.05, momentum=0.9),
                     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    "sgd-nesterov-wd": (lambda: SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
                        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True,
                                                  weight_decay=1e-3)),
    "adam": (lambda: Adam(lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
    "adam-wd": (lambda: Adam(lr=0.01, betas=(0.8, 0.99), eps=1e-7, weight_decay=0.01),
                lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-7,
                                           weight_decay=0.01)),
}


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("loss, batch_size", [("mse", None), ("cross_entropy", 7),
                                              ("bce", 5)])
def test_training_matches_pytorch(backend, optimizer, loss, batch_size):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((20, 4))
    if loss == "mse":
        layers, y = [Dense(4, 6), Tanh(), Dense(6, 2)], rng.standard_normal((20, 2))
        torch_loss, target = nn.MSELoss(), torch.from_numpy(y)
    elif loss == "cross_entropy":
        layers, y = [Dense(4, 6), ReLU(), Dense(6, 3)], rng.integers(0, 3, 20)
        torch_loss, target = nn.CrossEntropyLoss(), torch.from_numpy(y)
    else:
        layers = [Dense(4, 6), SiLU(), Dense(6, 1), Sigmoid()]
        y = rng.integers(0, 2, (20, 1)).astype(float)
        torch_loss, target = nn.BCELoss(), torch.from_numpy(y)
    net = Network(layers, backend=backend, seed=2)
    model = net.to_torch().train()
    make_ours, make_theirs = OPTIMIZERS[optimizer]
    opt = make_theirs(model.parameters())
    epochs, n = 4, X.shape[0]
    step = n if batch_size is None else batch_size
    Xt = torch.from_numpy(X)
    torch_losses = []
    for _ in range(epochs):
        total = 0.0
        for start in range(0, n, step):
            opt.zero_grad()
            value = torch_loss(model(Xt[start:start + step]), target[start:start + step])
            value.backward()
            opt.step()
            total += value.item() * min(step, n - start)
        torch_losses.append(total / n)
    history = net.fit(X, y, loss=loss, optimizer=make_ours(), epochs=epochs,
                      batch_size=batch_size, shuffle=False)
    np.testing.assert_allclose(history.loss, torch_losses, rtol=1e-10)
    theirs = [m for m in model if isinstance(m, nn.Linear)]
    ours = [layer for layer in net.layers if isinstance(layer, Dense)]
    for layer, linear in zip(ours, theirs):
        np.testing.assert_allclose(layer.W, linear.weight.detach().numpy().T,
                                   rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.b, linear.bias.detach().numpy(),
                                   rtol=1e-10, atol=1e-12)


def _declared_torch_layers():
    from fastnn.layers import LAYER_TYPES
    return [cls for cls in LAYER_TYPES.values() if cls.torch_module is not None]


@pytest.mark.parametrize("cls", _declared_torch_layers(), ids=lambda c: c.__name__)
def test_every_layer_that_declares_a_torch_module_round_trips(cls, backend, rng):
    # the mapping is the layer class's own declaration (torch_module, torch_config,
    # from_torch_module): a new layer brings it, nothing else lists it
    assert {c.__name__ for c in _declared_torch_layers()} >= {
        "Identity", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "SiLU", "Softmax", "Dropout"}
    layer = cls(3) if cls.__name__ in ("BatchNorm1d", "LayerNorm") else cls()  # the width
    net = Network([Dense(4, 3), layer], backend=backend, seed=1)
    model = net.to_torch()
    assert type(model[1]) is getattr(nn, cls.torch_module)
    X = rng.standard_normal((6, 4))
    np.testing.assert_allclose(model(torch.from_numpy(X)).detach().numpy(), net.predict(X),
                               rtol=1e-12, atol=1e-14)
    back = Network.from_torch(model, backend=backend)
    assert type(back.layers[1]) is cls and back.layers[1].config() == layer.config()
    np.testing.assert_array_equal(back.predict(X), net.predict(X))


def test_a_user_subclass_of_an_activation_is_not_exported_as_its_base(backend):
    class Halved(Sigmoid):                      # user code: not nn.Sigmoid any more
        def forward(self, X, *, training=False, keep=True):
            return super().forward(X, training=training, keep=keep) / 2

    net = Network([Dense(2, 2), Halved()], backend=backend, seed=0)
    with pytest.raises(TypeError, match="no PyTorch counterpart"):
        net.to_torch()
