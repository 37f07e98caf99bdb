"""Saving and loading a learning-rate schedule with its optimizer: a resumed run is
the run without the break, bit for bit.

Why it is built this way: ``save_optimizer(opt, path, lr_scheduler=s)`` writes the
schedule's ``state_dict`` beside the optimizer's state (one pickle-free file), and
``load_optimizer(path, net, lr_scheduler=new)`` restores it into a new schedule,
bound to the loaded optimizer without a step.  The test is the user's: fit N
epochs with a schedule, save network, optimizer and schedule, load them into new
objects, fit M more -- the weights and the learning rates equal those of one fit
of N + M epochs, on both backends.  Without the schedule's state the resumed run
restarts the schedule (a new bind takes the initial step from the current rate),
and these tests fail; with shuffled batches they fail too unless the network's
file holds the generator of the batch order, which ``save`` now writes.
Files whose schedule or generator state does not fit are refused.
"""

import json
import zipfile

import numpy as np
import pytest

from fastnn import SGD, Adam, Dense, Network, Tanh
from fastnn.io import load_optimizer, save_optimizer
from fastnn.schedules import (CosineAnnealingLR, ExponentialLR, LinearLR, MultiStepLR,
                              OneCycleLR, ReduceLROnPlateau, StepLR)

N, M, BATCH = 3, 4, 5
BATCHES = -(-21 // BATCH)

SCHEDULES = {
    "step": (lambda: SGD(lr=0.1, momentum=0.9), lambda: StepLR(step_size=2, gamma=0.5)),
    "multistep": (lambda: SGD(lr=0.1), lambda: MultiStepLR([1, 4, 4], gamma=0.5)),
    "exponential": (lambda: Adam(lr=0.01), lambda: ExponentialLR(gamma=0.7)),
    "cosine": (lambda: Adam(lr=0.02), lambda: CosineAnnealingLR(T_max=5, eta_min=1e-3)),
    "linear": (lambda: SGD(lr=0.1), lambda: LinearLR(start_factor=0.25, total_iters=5)),
    # a relative threshold of 0.5: the rate falls after most epochs
    "plateau": (lambda: SGD(lr=0.1, momentum=0.5),
                lambda: ReduceLROnPlateau(factor=0.5, patience=0, threshold=0.5)),
    "onecycle-sgd": (lambda: SGD(lr=0.1, momentum=0.9),
                     lambda: OneCycleLR(max_lr=0.2, total_steps=(N + M) * BATCHES)),
    "onecycle-adam": (lambda: Adam(lr=0.01),
                      lambda: OneCycleLR(max_lr=0.02, total_steps=(N + M) * BATCHES,
                                         three_phase=True)),
}


def _data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((21, 3)), rng.standard_normal((21, 2))


def _net(backend):
    return Network([Dense(3, 5), Tanh(), Dense(5, 2)], backend=backend, seed=1)


def _fit(net, opt, schedule, epochs, shuffle=False):
    X, y = _data()
    return net.fit(X, y, loss="mse", optimizer=opt, lr_scheduler=schedule, epochs=epochs,
                   batch_size=BATCH, shuffle=shuffle)


@pytest.mark.parametrize("shuffle", [False, True], ids=["in-order", "shuffled"])
@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_training_with_a_schedule_resumes_exactly(backend, name, shuffle, tmp_path):
    # shuffled: the network's file holds the generator of the batch order
    make_opt, make_schedule = SCHEDULES[name]
    straight, opt, schedule = _net(backend), make_opt(), make_schedule()
    _fit(straight, opt, schedule, N + M, shuffle)

    net, opt1, schedule1 = _net(backend), make_opt(), make_schedule()
    _fit(net, opt1, schedule1, N, shuffle)
    net.save(tmp_path / "net.npz")
    save_optimizer(opt1, tmp_path / "opt.npz", lr_scheduler=schedule1)

    net2 = Network.load(tmp_path / "net.npz", backend=backend)
    schedule2 = make_schedule()
    opt2 = load_optimizer(tmp_path / "opt.npz", net2, lr_scheduler=schedule2)
    assert schedule2.optimizer is opt2 and schedule2.last_epoch == schedule1.last_epoch
    assert opt2.lr == opt1.lr
    _fit(net2, opt2, schedule2, M, shuffle)

    assert schedule2.state_dict() == schedule.state_dict()
    assert opt2.lr == opt.lr and repr(opt2) == repr(opt)
    for (key, a, _), (_, b, _) in zip(straight.parameters(), net2.parameters()):
        np.testing.assert_array_equal(a, b, err_msg=key)


def test_the_schedule_changes_the_rate_in_both_halves(tmp_path):
    # the cases above are not vacuous: each half of the plateau run lowers the rate
    make_opt, make_schedule = SCHEDULES["plateau"]
    net, opt, schedule = _net("numpy"), make_opt(), make_schedule()
    first = _fit(net, opt, schedule, N).history["lr"]
    second = _fit(net, opt, schedule, M).history["lr"]
    assert first[0] > first[-1] > second[-1]


def test_an_unbound_schedule_round_trips(tmp_path):
    opt = SGD(lr=0.1)
    save_optimizer(opt, tmp_path / "opt.npz", lr_scheduler=StepLR(step_size=3, gamma=0.2))
    schedule = StepLR(step_size=1)
    opt2 = load_optimizer(tmp_path / "opt.npz", _net("numpy"), lr_scheduler=schedule)
    assert schedule.optimizer is None and (schedule.step_size, schedule.gamma) == (3, 0.2)
    schedule.bind(opt2)
    assert schedule.last_epoch == 0 and opt2.lr == 0.1


def _saved(tmp_path, schedule_factory=lambda: StepLR(step_size=2)):
    net, opt, schedule = _net("numpy"), SGD(lr=0.1), schedule_factory()
    _fit(net, opt, schedule, 2)
    save_optimizer(opt, tmp_path / "opt.npz", lr_scheduler=schedule)
    return net, tmp_path / "opt.npz"


def _rewrite(path, edit):
    with zipfile.ZipFile(path) as z:
        members = {name: z.read(name) for name in z.namelist()}
    config = json.loads(np.load(path)["config"].item())
    edit(config)
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            if name != "config.npy":
                z.writestr(name, data)
    with zipfile.ZipFile(path, "a") as z, z.open("config.npy", "w") as f:
        np.lib.format.write_array(f, np.array(json.dumps(config)))


def test_a_schedule_of_another_class_is_refused(tmp_path):
    net, path = _saved(tmp_path)
    schedule = CosineAnnealingLR(T_max=3)
    with pytest.raises(ValueError, match="holds the state of a 'StepLR' schedule"):
        load_optimizer(path, net, lr_scheduler=schedule)
    assert schedule.optimizer is None and schedule.last_epoch == -1


def test_a_file_without_a_schedule_is_refused(tmp_path):
    net = _net("numpy")
    save_optimizer(SGD(lr=0.1), tmp_path / "opt.npz")
    with pytest.raises(ValueError, match="holds no learning-rate schedule"):
        load_optimizer(tmp_path / "opt.npz", net, lr_scheduler=StepLR(step_size=2))
    assert isinstance(load_optimizer(tmp_path / "opt.npz", net), SGD)


def test_a_bound_schedule_is_not_overwritten(tmp_path):
    net, path = _saved(tmp_path)
    schedule = StepLR(step_size=2)
    schedule.bind(SGD(lr=1.0))
    with pytest.raises(ValueError, match="already schedules"):
        load_optimizer(path, net, lr_scheduler=schedule)


def test_a_schedule_of_another_optimizer_is_not_saved(tmp_path):
    schedule = StepLR(step_size=2)
    schedule.bind(SGD(lr=1.0))
    with pytest.raises(ValueError, match="schedules another optimizer"):
        save_optimizer(SGD(lr=1.0), tmp_path / "opt.npz", lr_scheduler=schedule)
    assert not (tmp_path / "opt.npz").exists()


def test_a_schedule_class_of_ones_own_is_not_saved(tmp_path):
    class Mine(StepLR):
        pass

    with pytest.raises(TypeError, match="schedules of fastnn.schedules"):
        save_optimizer(SGD(lr=1.0), tmp_path / "opt.npz", lr_scheduler=Mine(step_size=2))


@pytest.mark.parametrize("edit, words", [
    (lambda c: c["schedule"]["state"].update(step_size=0), "step_size"),
    (lambda c: c["schedule"]["state"].update(step_size=2.5), "must be an integer"),
    (lambda c: c["schedule"]["state"].update(gamma="x"), "must be a number"),
    (lambda c: c["schedule"]["state"].update(last_epoch=-1), "bound but counts"),
    (lambda c: c["schedule"]["state"].pop("gamma"), "has the keys"),
    (lambda c: c["schedule"]["state"].update(extra=1), "has the keys"),
    (lambda c: c["schedule"].update(bound="yes"), "must be a boolean"),
    (lambda c: c["schedule"].pop("bound"), "'type', 'bound' and 'state'"),
])
def test_a_damaged_schedule_is_refused(tmp_path, edit, words):
    net, path = _saved(tmp_path)
    _rewrite(path, edit)
    schedule = StepLR(step_size=2)
    with pytest.raises(ValueError, match=words) as info:
        load_optimizer(path, net, lr_scheduler=schedule)
    assert str(path) in str(info.value)
    assert schedule.optimizer is None and schedule.last_epoch == -1


def test_onecycle_phases_must_follow_from_its_arguments(tmp_path):
    net, path = _saved(tmp_path, lambda: OneCycleLR(max_lr=0.2, total_steps=20))

    def edit(config):
        config["schedule"]["state"]["_rates"]["object"]["max_lr"] = 5.0
    _rewrite(path, edit)
    with pytest.raises(ValueError, match="_rates"):
        load_optimizer(path, net, lr_scheduler=OneCycleLR(max_lr=0.2, total_steps=20))


def _members(path):
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in z.namelist()}


def _write_members(path, members):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


def test_a_loaded_network_shuffles_on_where_it_stopped(tmp_path):
    net = _net("numpy")
    _fit(net, SGD(lr=0.1), None, 2, shuffle=True)
    net.save(tmp_path / "net.npz")
    expected = net._shuffle_rng.permutation(21)
    loaded = Network.load(tmp_path / "net.npz")
    np.testing.assert_array_equal(loaded._shuffle_rng.permutation(21), expected)


def test_a_file_without_the_shuffle_state_still_loads(tmp_path):
    # files of earlier versions: the batch order starts from the network's seed
    net = _net("numpy")
    _fit(net, SGD(lr=0.1), None, 2, shuffle=True)
    net.save(tmp_path / "net.npz")
    members = _members(tmp_path / "net.npz")
    del members["shuffle_rng.npy"]
    _write_members(tmp_path / "net.npz", members)
    loaded = Network.load(tmp_path / "net.npz")
    np.testing.assert_array_equal(loaded._shuffle_rng.permutation(21),
                                  _net("numpy")._shuffle_rng.permutation(21))
    np.testing.assert_array_equal(loaded.layers[0].W, net.layers[0].W)


@pytest.mark.parametrize("words, shape", [
    ([1, 2, 3, 4, 0, 0], (6,)),           # an even increment
    ([1, 2, 3, 5, 2, 0], (6,)),           # has_uint32 neither 0 nor 1
    ([1, 2, 3, 5, 0, 2**32], (6,)),       # uinteger beyond 32 bits
    ([1, 2, 3, 5, 0], (5,)),              # the wrong shape
])
def test_a_damaged_shuffle_state_is_refused(tmp_path, words, shape):
    import io as _io
    net = _net("numpy")
    net.save(tmp_path / "net.npz")
    members = _members(tmp_path / "net.npz")
    buffer = _io.BytesIO()
    np.save(buffer, np.array(words, dtype=np.uint64).reshape(shape))
    members["shuffle_rng.npy"] = buffer.getvalue()
    _write_members(tmp_path / "net.npz", members)
    with pytest.raises(ValueError, match="shuffle_rng") as info:
        Network.load(tmp_path / "net.npz")
    assert "net.npz" in str(info.value)
