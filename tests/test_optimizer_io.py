"""Saving and loading an optimizer's state: training resumes exactly where it stopped.

Why it is built this way: ``fastnn.io.save_optimizer`` writes the hyper-parameters
and the state (momenta, moments, sums, step counts) of a built-in optimizer in
``save``'s pickle-free format, and ``load_optimizer`` reads it back for a network
whose parameters fix the shape and dtype of every state array before it is
read.  The test of a round trip is the one a user cares about: train, save the
network and the optimizer, load both, train on -- the same weights, bit for bit,
as training without the break, for every optimizer and on both backends.  A
file that does not fit the network, or is damaged, is refused with a
ValueError naming the file.
"""

import io
import json
import zipfile

import numpy as np
import pytest

from fastnn import SGD, Adagrad, Adam, AdamW, Dense, Network, RMSprop, Tanh
from fastnn.io import load_optimizer, save_optimizer

MAKE = {
    "sgd-momentum": lambda: SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "sgd": lambda: SGD(lr=0.05),
    "adam": lambda: Adam(lr=0.01, betas=(0.8, 0.99), weight_decay=1e-3),
    "adamw-amsgrad": lambda: AdamW(lr=0.01, amsgrad=True),
    "rmsprop-centered-momentum": lambda: RMSprop(lr=0.01, momentum=0.5, centered=True),
    "adagrad": lambda: Adagrad(lr=0.05, lr_decay=0.1, initial_accumulator_value=0.2),
}


def _data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((21, 3)), rng.standard_normal((21, 2))


def _net(backend, dtype="float64"):
    return Network([Dense(3, 5), Tanh(), Dense(5, 2, bias=False)], backend=backend,
                   dtype=dtype, seed=1)


def _train(net, opt, epochs):
    X, y = _data()
    net.fit(X, y, loss="mse", optimizer=opt, epochs=epochs, batch_size=5, shuffle=False)


@pytest.mark.parametrize("name", sorted(MAKE))
def test_training_resumes_exactly(backend, name, tmp_path):
    straight = _net(backend)
    _train(straight, MAKE[name](), 4)
    net, opt = _net(backend), MAKE[name]()
    _train(net, opt, 2)
    net.save(tmp_path / "net.npz")
    save_optimizer(opt, tmp_path / "opt.npz")
    net2 = Network.load(tmp_path / "net.npz", backend=backend)
    opt2 = load_optimizer(tmp_path / "opt.npz", net2)
    assert type(opt2) is type(opt) and repr(opt2) == repr(opt)
    assert sorted(opt2.state) == sorted(opt.state)
    _train(net2, opt2, 2)
    for (key, a, _), (_, b, _) in zip(straight.parameters(), net2.parameters()):
        np.testing.assert_array_equal(a, b, err_msg=key)


def test_a_float32_network_gets_float32_state(tmp_path):
    net, opt = _net("numpy", "float32"), Adam(lr=0.01)
    _train(net, opt, 1)
    save_optimizer(opt, tmp_path / "opt.npz")
    opt2 = load_optimizer(tmp_path / "opt.npz", net)
    assert opt2.state["0.W"]["m"].dtype == np.float32
    np.testing.assert_array_equal(opt2.state["0.W"]["v"], opt.state["0.W"]["v"])
    assert opt2.state["0.W"]["step"] == opt.state["0.W"]["step"] == 5


def test_an_unused_optimizer_round_trips(tmp_path):
    save_optimizer(RMSprop(lr=0.5, alpha=0.9), tmp_path / "opt.npz")
    opt = load_optimizer(tmp_path / "opt.npz", _net("numpy"))
    assert isinstance(opt, RMSprop) and opt.state == {} and (opt.lr, opt.alpha) == (0.5, 0.9)


def test_a_network_of_other_shapes_is_refused(tmp_path):
    opt = Adam()
    _train(_net("numpy"), opt, 1)
    save_optimizer(opt, tmp_path / "opt.npz")
    other = Network([Dense(3, 4), Tanh(), Dense(4, 2, bias=False)], seed=1)
    with pytest.raises(ValueError,
                       match=r"has shape \(3, 5\), expected \(3, 4\) \(the state .m. of .0\.W."):
        load_optimizer(tmp_path / "opt.npz", other)
    fewer = Network([Dense(3, 5), Tanh()], seed=1)
    with pytest.raises(ValueError, match="state for '2.W', which the network does not have"):
        load_optimizer(tmp_path / "opt.npz", fewer)


def test_an_optimizer_of_your_own_is_not_saved(tmp_path):
    class MyAdam(Adam):
        pass

    with pytest.raises(TypeError, match="not MyAdam"):
        save_optimizer(MyAdam(), tmp_path / "opt.npz")
    assert not (tmp_path / "opt.npz").exists()


def test_non_finite_state_is_not_saved(tmp_path):
    opt = Adagrad()
    _train(_net("numpy"), opt, 1)
    opt.state["0.b"]["sum"][1] = np.inf
    with pytest.raises(ValueError, match="cannot save.*nothing was written"):
        save_optimizer(opt, tmp_path / "opt.npz")
    assert not (tmp_path / "opt.npz").exists()


def _rewrite(path, change):
    """The optimizer file at ``path`` with its description changed by ``change``."""
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    config = json.loads(str(np.load(io.BytesIO(members["config.npy"]))))
    change(config)
    buf = io.BytesIO()
    np.save(buf, np.array(json.dumps(config)))
    members["config.npy"] = buf.getvalue()
    with zipfile.ZipFile(path, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)


@pytest.mark.parametrize("change, match", [
    (lambda c: c.update(type="Lion"), "damaged optimizer description: KeyError"),
    (lambda c: c.update(format="fastnn"), "not a fastnn optimizer file"),
    (lambda c: c["config"].update(lr=-1.0), "lr must be >= 0"),
    (lambda c: c["state"]["0.W"]["ints"].update(step=-1), "step count of '0.W'"),
    (lambda c: c["state"]["0.W"]["ints"].update(epoch=1), "at most 4 arrays and a step"),
    (lambda c: c["state"]["0.W"]["arrays"].update({f"x{i}": "state.0.0" for i in range(5)}),
     "at most 4 arrays"),
    (lambda c: c["state"]["0.W"]["arrays"].update(m="nothing"), "has no member 'nothing'"),
    (lambda c: c["state"]["0.W"]["arrays"].pop("v"), "state of '0.W' lacks 'v'"),
])
def test_a_damaged_file_is_refused(tmp_path, change, match):
    opt = Adam()
    net = _net("numpy")
    _train(net, opt, 1)
    path = tmp_path / "opt.npz"
    save_optimizer(opt, path)
    _rewrite(path, change)
    with pytest.raises(ValueError, match=match):
        load_optimizer(path, net)


def test_a_network_file_is_not_an_optimizer_file(tmp_path):
    net = _net("numpy")
    net.save(tmp_path / "net.npz")
    with pytest.raises(ValueError, match="not a fastnn optimizer file"):
        load_optimizer(tmp_path / "net.npz", net)
    save_optimizer(SGD(), tmp_path / "opt.npz")
    with pytest.raises(ValueError, match="not a fastnn network file"):
        Network.load(tmp_path / "opt.npz")
