"""PyTorch interop of the layers' arguments and of the optimizers (state included).

Why it is built this way: ``to_torch`` / ``from_torch`` map every layer PyTorch
has by the layer's own declaration; here each is taken with arguments other
than its defaults (GELU's tanh form, ELU's alpha, Softplus's beta and
threshold, ...), both ways: fastnn -> torch -> fastnn gives the same
arguments, identical weights and identical outputs, and a torch model trained
a step equals the fastnn network trained a step, in float64.  The optimizers
(``optimizer_to_torch`` / ``optimizer_from_torch``) are checked the way a user
would move a run across: train in one library, convert network and optimizer
with its state, train on in the other -- the weights equal those of training
on in the first library, to 1e-9 relative; and the state round-trips bit for
bit.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from fastnn import (ELU, GELU, SELU, SGD, Adagrad, Adam, AdamW, Dense, Dropout, Flatten,  # noqa: E402
                    Identity, LeakyReLU, Mish, Network, ReLU, RMSprop, Sigmoid, SiLU, Softmax,
                    Softplus, Tanh)
from fastnn.interop.torch import optimizer_from_torch, optimizer_to_torch  # noqa: E402

RTOL = 1e-9

LAYERS = {
    "gelu-tanh": (lambda: GELU(approximate="tanh"), {"approximate": "tanh"}),
    "gelu": (lambda: GELU(), {"approximate": "none"}),
    "elu": (lambda: ELU(alpha=0.7), {"alpha": 0.7}),
    "selu": (SELU, {}),
    "softplus": (lambda: Softplus(beta=2.0, threshold=1.5), {"beta": 2.0, "threshold": 1.5}),
    "mish": (Mish, {}),
    "leaky_relu": (lambda: LeakyReLU(negative_slope=0.2), {"negative_slope": 0.2}),
    "silu": (SiLU, {}),
    "softmax": (Softmax, {"dim": 1}),
    "sigmoid": (Sigmoid, {}),
    "tanh": (Tanh, {}),
    "relu": (ReLU, {}),
    "identity": (Identity, {}),
    "dropout": (lambda: Dropout(0.3), {"p": 0.3}),
}


def _rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_a_layer_with_its_arguments_round_trips(backend, name, rng):
    make, torch_args = LAYERS[name]
    layer = make()
    net = Network([Dense(4, 5), layer, Dense(5, 3)], backend=backend, seed=3)
    model = net.to_torch()
    module = model[1]
    assert type(module) is getattr(nn, layer.torch_module)
    for arg, value in torch_args.items():       # torch's module got the arguments
        assert getattr(module, arg) == value, arg
    X = rng.standard_normal((7, 4)) * 3        # Softplus's threshold is crossed both ways
    np.testing.assert_allclose(model(torch.from_numpy(X)).detach().numpy(), net.predict(X),
                               rtol=1e-12, atol=1e-14)
    back = Network.from_torch(model, backend=backend)
    assert type(back.layers[1]) is type(layer) and back.layers[1].config() == layer.config()
    for (key, a, _), (_, b, _) in zip(net.parameters(), back.parameters()):
        np.testing.assert_array_equal(a, b, err_msg=key)
    np.testing.assert_array_equal(back.predict(X), net.predict(X))


def test_flatten_round_trips_with_its_input_shape(backend, rng):
    net = Network([Flatten(), Dense(6, 2)], backend=backend, seed=0)
    model = net.to_torch()
    assert type(model[0]) is nn.Flatten and (model[0].start_dim, model[0].end_dim) == (1, -1)
    X = rng.standard_normal((5, 2, 3))
    back = Network.from_torch(model, backend=backend)
    np.testing.assert_array_equal(back.predict(X), net.predict(X))
    np.testing.assert_allclose(model(torch.from_numpy(X)).detach().numpy(), net.predict(X),
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", sorted(set(LAYERS) - {"dropout"}))
def test_a_torch_step_equals_a_fastnn_step(backend, name, rng):
    # dropout draws its masks from different generators: it has no step to compare
    make, _ = LAYERS[name]
    net = Network([Dense(4, 5), make(), Dense(5, 3)], backend=backend, seed=3)
    model = net.to_torch().train()
    X, y = rng.standard_normal((8, 4)) * 2, rng.standard_normal((8, 3))
    topt = torch.optim.SGD(model.parameters(), lr=0.3)
    topt.zero_grad()
    nn.functional.mse_loss(model(torch.from_numpy(X)), torch.from_numpy(y)).backward()
    topt.step()
    net.fit(X, y, loss="mse", optimizer=SGD(lr=0.3), epochs=1, shuffle=False)
    for i in (0, 2):
        np.testing.assert_allclose(net.layers[i].W, model[i].weight.detach().numpy().T,
                                   rtol=RTOL, atol=1e-15)
        np.testing.assert_allclose(net.layers[i].b, model[i].bias.detach().numpy(),
                                   rtol=RTOL, atol=1e-15)
        assert not np.array_equal(net.layers[i].W, Network(
            [Dense(4, 5), make(), Dense(5, 3)], seed=3).layers[i].W)   # a step was taken


OPTIMIZERS = {
    "sgd": lambda: SGD(lr=0.05),
    "sgd-nesterov": lambda: SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda: Adam(lr=0.01, betas=(0.8, 0.99), weight_decay=1e-3),
    "adam-amsgrad": lambda: Adam(lr=0.01, amsgrad=True),
    "adamw-amsgrad": lambda: AdamW(lr=0.01, weight_decay=0.05, amsgrad=True),
    "rmsprop": lambda: RMSprop(lr=0.01),
    "rmsprop-centered-momentum": lambda: RMSprop(lr=0.01, alpha=0.9, momentum=0.5,
                                                 centered=True, weight_decay=1e-3),
    "adagrad": lambda: Adagrad(lr=0.05, lr_decay=0.1, initial_accumulator_value=0.2,
                               weight_decay=1e-3),
}


def _data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((12, 3)), rng.standard_normal((12, 2))


def _net(backend):
    return Network([Dense(3, 5), Tanh(), Dense(5, 2)], backend=backend, seed=1)


def _torch_epochs(model, topt, epochs, batch=4):
    X, y = (torch.from_numpy(a) for a in _data())
    for _ in range(epochs):
        for start in range(0, X.shape[0], batch):
            topt.zero_grad()
            nn.functional.mse_loss(model(X[start:start + batch]),
                                   y[start:start + batch]).backward()
            topt.step()


def _fit(net, opt, epochs, batch=4):
    X, y = _data()
    net.fit(X, y, loss="mse", optimizer=opt, epochs=epochs, batch_size=batch, shuffle=False)


def _assert_close(net, model, what):
    worst = 0.0
    for i in (0, 2):
        for mine, theirs in ((net.layers[i].W, model[i].weight.detach().numpy().T),
                             (net.layers[i].b, model[i].bias.detach().numpy())):
            np.testing.assert_allclose(mine, theirs, rtol=RTOL, atol=1e-15, err_msg=what)
            worst = max(worst, _rel(mine, theirs))
    return worst


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_fastnn_training_goes_on_in_torch(backend, name):
    net, opt = _net(backend), OPTIMIZERS[name]()
    _fit(net, opt, 2)
    model = net.to_torch().train()
    topt = optimizer_to_torch(opt, model)
    assert type(topt) is getattr(torch.optim, type(opt).__name__)
    _fit(net, opt, 2)
    _torch_epochs(model, topt, 2)
    _assert_close(net, model, name)
    # without the state, torch would start its moments afresh: not the same weights
    if name != "sgd":
        fresh_net, fresh_opt = _net(backend), OPTIMIZERS[name]()
        _fit(fresh_net, fresh_opt, 2)
        fresh_model = fresh_net.to_torch().train()
        fresh_topt = optimizer_to_torch(OPTIMIZERS[name](), fresh_model)
        _torch_epochs(fresh_model, fresh_topt, 2)
        assert _rel(fresh_model[0].weight.detach().numpy().T, net.layers[0].W) > 1e-6


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_torch_training_goes_on_in_fastnn(backend, name):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).double()
    probe = OPTIMIZERS[name]()
    args = {k: getattr(probe, k) for k in type(probe).__init__.__code__.co_varnames[1:]
            if hasattr(probe, k)}
    topt = getattr(torch.optim, type(probe).__name__)(model.parameters(), **args)
    _torch_epochs(model, topt, 2)
    net = Network.from_torch(model, backend=backend)
    opt = optimizer_from_torch(topt, model)
    assert repr(opt) == repr(probe)
    _torch_epochs(model, topt, 2)
    _fit(net, opt, 2)
    _assert_close(net, model, name)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_state_round_trips_bit_for_bit(name):
    net, opt = _net("numpy"), OPTIMIZERS[name]()
    _fit(net, opt, 3)
    model = net.to_torch()
    back = optimizer_from_torch(optimizer_to_torch(opt, model), model)
    assert type(back) is type(opt) and repr(back) == repr(opt)
    assert sorted(back.state) == sorted(opt.state)
    for key, value in opt.state.items():
        if isinstance(value, dict):
            assert sorted(back.state[key]) == sorted(value), key
            for state_name, item in value.items():
                np.testing.assert_array_equal(back.state[key][state_name], item)
        else:
            np.testing.assert_array_equal(back.state[key], value)


def test_parity_figures(backend, capsys):
    # the largest relative difference of each optimizer after 2 + 2 epochs, for the report
    worst = {}
    for name, make in sorted(OPTIMIZERS.items()):
        net, opt = _net(backend), make()
        _fit(net, opt, 2)
        model = net.to_torch().train()
        topt = optimizer_to_torch(opt, model)
        _fit(net, opt, 2)
        _torch_epochs(model, topt, 2)
        worst[name] = _assert_close(net, model, name)
    with capsys.disabled():
        print(f"\n{backend}: " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))


@pytest.mark.parametrize("make, words", [
    (lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1), "dampening"),
    (lambda ps: torch.optim.Adam(ps, lr=0.1, maximize=True), "maximize"),
    (lambda ps: torch.optim.SGD([{"params": ps[:2]}, {"params": ps[2:], "lr": 0.5}], lr=0.1),
     "2 parameter groups"),
    (lambda ps: torch.optim.SGD(ps[:2], lr=0.1), "exactly the model's"),
])
def test_torch_options_fastnn_lacks_are_refused(make, words):
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).double()
    with pytest.raises(ValueError, match=words):
        optimizer_from_torch(make(list(model.parameters())), model)


def test_torch_adam_with_decoupled_weight_decay_is_adamw():
    model = nn.Sequential(nn.Linear(3, 2)).double()
    opt = optimizer_from_torch(torch.optim.Adam(model.parameters(), lr=0.1, weight_decay=0.2,
                                                decoupled_weight_decay=True), model)
    assert type(opt) is AdamW and (opt.lr, opt.weight_decay) == (0.1, 0.2)
    assert type(optimizer_from_torch(torch.optim.Adam(model.parameters()), model)) is Adam


def test_other_optimizers_are_refused():
    model = nn.Sequential(nn.Linear(3, 2)).double()
    with pytest.raises(TypeError, match="converts torch.optim's"):
        optimizer_from_torch(torch.optim.Adamax(model.parameters()), model)

    class Mine(SGD):
        pass

    with pytest.raises(TypeError, match="converts fastnn's"):
        optimizer_to_torch(Mine(lr=0.1), model)


def test_state_of_a_parameter_the_model_lacks_is_refused():
    net, opt = _net("numpy"), Adam(lr=0.01)
    _fit(net, opt, 1)
    small = Network([Dense(3, 5)], seed=0).to_torch()
    with pytest.raises(ValueError, match="which the model lacks"):
        optimizer_to_torch(opt, small)


def test_the_converted_state_is_a_copy():
    # a bias's state is 1-D: a view would let each library's steps move the other's
    net, opt = _net("numpy"), Adagrad(lr=0.05)
    _fit(net, opt, 1)
    model = net.to_torch()
    topt = optimizer_to_torch(opt, model)
    before = opt.state["0.b"]["sum"].copy()
    topt.state[model[0].bias]["sum"] += 1.0
    np.testing.assert_array_equal(opt.state["0.b"]["sum"], before)
    back = optimizer_from_torch(topt, model)
    back.state["0.b"]["sum"] += 1.0
    np.testing.assert_array_equal(topt.state[model[0].bias]["sum"].numpy(), before + 1.0)
