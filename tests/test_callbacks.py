"""Callbacks (fastnn.callbacks), validation_split and the training metrics of fit.

Why it is built this way: a callback is an observer of the driver's epochs,
so the tests record what each hook sees -- when, with which logs -- on both
backends, and check that the compiled backend still trains each epoch in one
native call.  The built-in callbacks are checked by their effect (the files
written, the epoch training stopped at, the weights restored) and
``early_stopping=True`` against the EarlyStopping callback it stands for.
validation_split must equal the same fit given the last rows as
validation_data; the metrics must equal ``evaluate`` after each epoch (the
definition: one pass after the epoch) and agree between the backends.
"""

import csv
import os

import numpy as np
import pytest

import fastnn
from fastnn import SGD, Adam, CrossEntropyLoss, Dense, Network, ReLU, Sigmoid, Tanh
from fastnn.backends import available_backends
from fastnn.callbacks import Callback, CSVLogger, EarlyStopping, LambdaCallback, ModelCheckpoint


def _data(n=60, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, k, n)


def _net(backend, d=5, k=3, seed=1):
    return Network([Dense(d, 12), Tanh(), Dense(12, k)], seed=seed, backend=backend)


class Recorder(Callback):
    def __init__(self):
        self.calls = []

    def on_train_begin(self, logs):
        self.calls.append(("train_begin", dict(logs)))

    def on_epoch_begin(self, epoch, logs):
        self.calls.append(("epoch_begin", epoch))

    def on_epoch_end(self, epoch, logs):
        self.calls.append(("epoch_end", epoch, dict(logs)))

    def on_train_end(self, logs):
        self.calls.append(("train_end", dict(logs)))


def test_hooks_run_in_order_with_the_epochs_logs(backend):
    X, y = _data()
    rec = Recorder()
    net = _net(backend)
    history = net.fit(X, y, loss="cross_entropy", optimizer=SGD(0.1), epochs=3, batch_size=16,
                      validation_split=0.2, metrics=["accuracy"], callbacks=[rec])
    assert rec.network is net and rec.history is history
    kinds = [c[0] for c in rec.calls]
    assert kinds == ["train_begin"] + ["epoch_begin", "epoch_end"] * 3 + ["train_end"]
    assert [c[1] for c in rec.calls if c[0] != "train_begin" and c[0] != "train_end"] == \
        [0, 0, 1, 1, 2, 2]
    ends = [c[2] for c in rec.calls if c[0] == "epoch_end"]
    assert list(ends[0]) == ["loss", "accuracy", "val_loss", "val_accuracy", "lr"]
    for key in ends[0]:
        assert [logs[key] for logs in ends] == history[key]
    assert rec.calls[-1][1] == ends[-1]


def test_stop_training_stops_after_the_epoch(backend):
    X, y = _data()

    class StopAt(Callback):
        def on_epoch_end(self, epoch, logs):
            if epoch == 2:
                self.network.stop_training = True

    net = _net(backend)
    history = net.fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=10,
                      callbacks=[StopAt()])
    assert history.epochs == [0, 1, 2]
    assert net.stop_training is True
    history = net.fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=2)
    assert history.epochs == [0, 1]             # reset by the next fit


@pytest.mark.skipif("cython" not in available_backends(), reason="no compiled backend")
def test_compiled_backend_runs_each_epoch_in_one_native_call_with_callbacks(monkeypatch):
    from fastnn import training
    calls = []
    original = training._NativeTrainer.run

    def run(self, orders, epoch, start, max_batches, losses, catch=False):
        calls.append((len(losses), epoch, start))
        return original(self, orders, epoch, start, 10**9, losses, catch)

    monkeypatch.setattr(training._NativeTrainer, "run", run)
    X, y = _data(n=200)
    with_lr = []
    net = _net("cython")
    net.fit(X, y, loss="cross_entropy", optimizer=SGD(0.1), epochs=5, batch_size=8,
            callbacks=[LambdaCallback(on_epoch_end=lambda e, logs: with_lr.append(logs["lr"]))],
            lr_scheduler=fastnn.schedules.StepLR(1, 0.5))
    # one call per epoch, each a whole epoch of 25 batches in C
    assert calls == [(1, 0, 0)] * 5
    assert with_lr == [0.1 * 0.5 ** k for k in range(5)]


def test_lambda_callback_calls_each_hook_given(backend):
    X, y = _data()
    seen = []
    cb = LambdaCallback(on_epoch_begin=lambda e, logs: seen.append(("b", e)),
                        on_epoch_end=lambda e, logs: seen.append(("e", e, sorted(logs))),
                        on_train_begin=lambda logs: seen.append("begin"),
                        on_train_end=lambda logs: seen.append(("end", sorted(logs))))
    _net(backend).fit(X, y, loss="cross_entropy", optimizer="adam", epochs=2, callbacks=[cb])
    assert seen == ["begin", ("b", 0), ("e", 0, ["loss", "lr"]), ("b", 1),
                    ("e", 1, ["loss", "lr"]), ("end", ["loss", "lr"])]
    with pytest.raises(TypeError, match="on_epoch_end must be callable"):
        LambdaCallback(on_epoch_end=3)


def test_callbacks_must_be_callbacks():
    X, y = _data()
    with pytest.raises(TypeError, match=r"callbacks\[0\] is .* not a fastnn.callbacks.Callback"):
        _net("numpy").fit(X, y, loss="cross_entropy", optimizer="sgd",
                          callbacks=[lambda e, logs: None])


# ----------------------------------------------------------------- early stopping
def _stopping_fit(backend, **kw):
    X, y = _data(n=120)
    net = _net(backend)
    history = net.fit(X, y, loss="cross_entropy", optimizer=SGD(3.0, momentum=0.9),
                      epochs=40, batch_size=40, shuffle=False,
                      validation_data=(X[:30], y[:30]), **kw)
    return net, history


def test_early_stopping_shorthand_is_the_callback(backend):
    a_net, a = _stopping_fit(backend, early_stopping=True, patience=3, min_delta=1e-3)
    b_net, b = _stopping_fit(backend, callbacks=[EarlyStopping(
        "val_loss", min_delta=1e-3, patience=3, restore_best_weights=True)])
    assert a.stopped_epoch is not None and a.stopped_epoch < 39
    assert (a.stopped_epoch, a.best_epoch, a.history) == (b.stopped_epoch, b.best_epoch,
                                                          b.history)
    for (_, p, _), (_, q, _) in zip(a_net.parameters(), b_net.parameters()):
        np.testing.assert_array_equal(p, q)
    # the best epoch's weights were restored: its val_loss is what evaluate gives now
    X, y = _data(n=120)
    assert a_net.evaluate(X[:30], y[:30], loss="cross_entropy")["loss"] == \
        pytest.approx(a.val_loss[a.best_epoch], rel=1e-12)


def test_early_stopping_in_max_mode_on_accuracy(backend):
    cb = EarlyStopping("val_accuracy", patience=2)
    assert cb.mode == "max"
    _, history = _stopping_fit(backend, callbacks=[cb])
    best = max(history.val_accuracy[:cb.best_epoch + 1])
    assert history.val_accuracy[cb.best_epoch] == best
    assert cb.stopped_epoch == len(history.epochs) - 1
    assert cb.stopped_epoch - cb.best_epoch == 2


def test_early_stopping_names_a_missing_monitor(backend):
    X, y = _data()
    with pytest.raises(ValueError, match=r"monitors 'val_loss', which the epoch's logs do not "
                                         r"have \(they have \['loss', 'lr'\]\) \(pass "
                                         "validation_data or validation_split"):
        _net(backend).fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=2,
                          callbacks=[EarlyStopping()])


def test_no_on_train_end_and_no_restore_when_fit_raises(backend):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 5)) * 100.0, rng.standard_normal((40, 3))
    ended = []
    net = Network([Dense(5, 8), ReLU(), Dense(8, 3)], seed=0, backend=backend)
    cb = EarlyStopping("loss", patience=100, restore_best_weights=True)
    with pytest.raises(FloatingPointError, match="training diverged in epoch [2-9]"), \
            np.errstate(over="ignore", invalid="ignore"):
        net.fit(X, y, loss="mse", optimizer=SGD(0.02), epochs=50, shuffle=False,
                callbacks=[cb, LambdaCallback(on_train_end=lambda logs: ended.append(1))])
    assert ended == []
    assert cb.best_params is not None           # an epoch was best, but not restored
    assert any(not np.array_equal(p, q) for (_, p, _), q in zip(net.parameters(),
                                                                cb.best_params))


# ------------------------------------------------------------ checkpoints, CSV
def test_model_checkpoint_saves_the_best_epochs_atomically(backend, tmp_path, monkeypatch):
    X, y = _data(n=120)
    replaced = []
    real_replace = os.replace

    def replace(src, dst):
        replaced.append(os.fspath(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    path = tmp_path / "best.npz"
    best_weights = {}

    class Keep(Callback):                       # the weights of each epoch
        def on_epoch_end(self, epoch, logs):
            best_weights[epoch] = [p.copy() for _, p, _ in self.network.parameters()]

    ckpt = ModelCheckpoint(path, save_best_only=True)
    net = _net(backend)
    history = net.fit(X, y, loss="cross_entropy", optimizer=SGD(3.0, momentum=0.9), epochs=15,
                      batch_size=40, shuffle=False, validation_split=0.25,
                      callbacks=[Keep(), ckpt])
    best = int(np.argmin(history.val_loss))
    improving = [e for e in range(15) if history.val_loss[e] < min(history.val_loss[:e],
                                                                   default=np.inf)]
    assert len(ckpt.saved) == len(improving) < 15
    assert replaced.count(str(path)) == len(improving)
    loaded = Network.load(path, backend=backend)
    for (_, p, _), q in zip(loaded.parameters(), best_weights[best]):
        np.testing.assert_array_equal(p, q)
    assert [f for f in os.listdir(tmp_path) if f != "best.npz"] == []   # no temporary left

    every = ModelCheckpoint(str(tmp_path / "e{epoch:02d}-{loss:.2f}.npz"), monitor="loss")
    history = _net(backend).fit(X, y, loss="cross_entropy", optimizer="sgd", epochs=3,
                                callbacks=[every])
    assert [os.path.basename(p) for p in every.saved] == [
        f"e{e + 1:02d}-{history.loss[e]:.2f}.npz" for e in range(3)]


def test_csv_logger_writes_a_header_and_a_row_per_epoch(backend, tmp_path):
    X, y = _data()
    path = tmp_path / "log.csv"
    history = _net(backend).fit(X, y, loss="cross_entropy", optimizer=Adam(0.01), epochs=4,
                                validation_split=0.5, metrics=["accuracy"],
                                callbacks=[CSVLogger(path)])
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", "accuracy", "loss", "lr", "val_accuracy", "val_loss"]
    assert len(rows) == 5
    for e, row in enumerate(rows[1:]):
        assert int(row[0]) == e
        for key, value in zip(rows[0][1:], row[1:]):
            assert float(value) == history[key][e]
    _net(backend).fit(X, y, loss="cross_entropy", optimizer=Adam(0.01), epochs=2,
                      validation_split=0.5, metrics=["accuracy"],
                      callbacks=[CSVLogger(path, append=True)])
    with open(path, newline="") as f:
        assert len(list(csv.reader(f))) == 7


# -------------------------------------------------------------- validation_split
def test_validation_split_holds_out_the_last_rows_before_shuffling(backend):
    X, y = _data(n=50)
    a_net, b_net = _net(backend), _net(backend)
    a = a_net.fit(X, y, loss="cross_entropy", optimizer=SGD(0.1), epochs=4, batch_size=8,
                  seed=3, validation_split=0.3)
    cut = int(50 * (1 - 0.3))
    assert cut == 35
    b = b_net.fit(X[:cut], y[:cut], loss="cross_entropy", optimizer=SGD(0.1), epochs=4,
                  batch_size=8, seed=3, validation_data=(X[cut:], y[cut:]))
    assert a.history == b.history
    assert "val_loss" in a.history


@pytest.mark.parametrize("split, message", [
    (1.0, r"validation_split must be a fraction in \[0, 1\), got 1.0"),
    (-0.1, r"validation_split must be a fraction in \[0, 1\)"),
    ("0.2", r"validation_split must be a fraction"),
    (0.95, r"validation_split=0.95 of 10 samples leaves 0 for training and 10 for "
           "validation; both need at least one"),
])
def test_validation_split_errors(split, message):
    X, y = _data(n=10)
    with pytest.raises(ValueError, match=message):
        _net("numpy").fit(X, y, loss="cross_entropy", optimizer="sgd", validation_split=split)


def test_validation_split_and_data_together_are_refused():
    X, y = _data(n=10)
    with pytest.raises(ValueError, match="validation_data or validation_split, not both"):
        _net("numpy").fit(X, y, loss="cross_entropy", optimizer="sgd", validation_split=0.5,
                          validation_data=(X, y))


# ----------------------------------------------------------------------- metrics
def test_training_metrics_are_evaluate_after_each_epoch(backend):
    X, y = _data(n=64)
    Y = np.eye(3)[y]
    seen = []

    class Evaluate(Callback):
        def on_epoch_end(self, epoch, logs):
            seen.append(self.network.evaluate(X, Y, loss="mse", metrics=["accuracy", "mae"]))

    net = Network([Dense(5, 12), ReLU(), Dense(12, 3), Sigmoid()], seed=4, backend=backend)
    history = net.fit(X, Y, loss="mse", optimizer=SGD(0.5), epochs=5, batch_size=16,
                      metrics=["accuracy", "mae", "mse"], callbacks=[Evaluate()])
    assert history.accuracy == [s["accuracy"] for s in seen]
    assert history.mae == [s["mae"] for s in seen]
    # mse is the training loss of the weights after the epoch (not the epoch's mean loss)
    assert history.mse == pytest.approx([s["loss"] for s in seen], rel=1e-14)
    assert history.mse != history.loss


def test_metrics_agree_between_backends():
    if "cython" not in available_backends():
        pytest.skip("the compiled backend is not built")
    X, y = _data(n=90)
    runs = []
    for backend in ("numpy", "cython"):
        net = _net(backend)
        runs.append(net.fit(X, y, loss="cross_entropy", optimizer=Adam(0.02), epochs=6,
                            batch_size=20, seed=0, metrics=["accuracy"],
                            validation_split=0.2).history)
    assert runs[0]["accuracy"] == runs[1]["accuracy"]
    assert runs[0]["val_accuracy"] == runs[1]["val_accuracy"]
    np.testing.assert_allclose(runs[0]["loss"], runs[1]["loss"], rtol=1e-11)


def test_metric_errors_name_the_problem():
    X, y = _data()
    net = _net("numpy")
    with pytest.raises(ValueError, match=r"unknown metric 'f1'; expected one of \['accuracy', "
                                         r"'mae', 'mse'\]"):
        net.fit(X, y, loss="cross_entropy", optimizer="sgd", metrics=["f1"])
    with pytest.raises(ValueError, match="metric 'mae' compares outputs with targets of the "
                                         "same shape, but the targets are class labels"):
        net.evaluate(X, y, loss="cross_entropy", metrics=["mae"])
    with pytest.raises(TypeError, match="metrics must be a list of names"):
        net.fit(X, y, loss="cross_entropy", optimizer="sgd", metrics="accuracy")


def test_evaluate_with_metrics(backend):
    X, y = _data(n=30)
    net = _net(backend)
    out = net.predict(X)
    scores = net.evaluate(X, y, loss=CrossEntropyLoss(), metrics=["accuracy"])
    assert scores["accuracy"] == np.mean(out.argmax(1) == y)
    P = np.eye(3)[y]
    scores = net.evaluate(X, P, loss="mse", metrics=["mae", "mse", "accuracy"])
    assert scores["mae"] == pytest.approx(np.abs(out - P).mean(), rel=1e-12)
    assert scores["mse"] == pytest.approx(scores["loss"], rel=1e-12)
    assert scores["accuracy"] == np.mean((out > 0.5) == (P > 0.5))


# ------------------------------------------------------------- the metric kernels
SHAPES = [(1, 1), (7, 13), (300, 257), (5, 1), (1, 9)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", ["mae", "mse", "binary_accuracy", "argmax_accuracy",
                                  "label_accuracy"])
def test_metric_kernels_match_the_reference(ops, dtype, shape, name):
    rng = np.random.default_rng(hash((shape, name)) % 2**32)
    pred = rng.standard_normal(shape).astype(dtype)
    pred[::3, :1] = 0.5                        # on the threshold
    if shape[1] > 2:
        pred[1::4, 2] = pred[1::4, 0]           # ties: the first largest wins
    if name == "label_accuracy":
        target = rng.integers(0, shape[1], shape[0])
        target[::2] = pred[::2].argmax(axis=1)
    else:
        target = rng.standard_normal(shape).astype(dtype)
        if name == "argmax_accuracy":
            target[::2] = pred[::2]
    pred0, target0 = pred.copy(), target.copy()
    got = ops.metric(name, pred, target)
    ref = fastnn.get_backend("numpy").metric(name, pred, target)
    np.testing.assert_array_equal(pred, pred0)             # inputs untouched
    np.testing.assert_array_equal(target, target0)
    assert got == pytest.approx(ref, rel=1e-13 if dtype == np.float64 else 1e-6, abs=0)
    # and the definitions, written out
    p, t = pred.astype(np.float64), target
    expected = {
        "mae": lambda: np.abs(p - t).mean(),
        "mse": lambda: ((p - t) ** 2).mean(),
        "binary_accuracy": lambda: np.mean((pred > 0.5) == (target > 0.5)),
        "argmax_accuracy": lambda: np.mean(pred.argmax(1) == target.argmax(1)),
        "label_accuracy": lambda: np.mean(pred.argmax(1) == target),
    }[name]()
    assert got == pytest.approx(expected, rel=1e-6)
    if "accuracy" in name:
        assert got == ref                       # counts are exact


def test_argmax_metric_takes_a_nan_as_numpy_does(ops):
    pred = np.array([[0.0, np.nan, 2.0], [np.nan, 5.0, 1.0], [1.0, 3.0, 2.0]])
    labels = np.array([1, 0, 2])
    assert ops.metric("label_accuracy", pred, labels) == pytest.approx(2 / 3)


def test_metric_kernel_errors(ops):
    with pytest.raises(ValueError, match="unknown metric kernel 'auc'"):
        ops.metric("auc", np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="label_accuracy takes int64 labels of shape"):
        ops.metric("label_accuracy", np.zeros((2, 2)), np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match=r"target is float64 of shape \(2, 3\) but pred"):
        ops.metric("mae", np.zeros((2, 2)), np.zeros((2, 3)))


def test_the_readme_example_runs_and_prints_what_it_says(tmp_path, monkeypatch, capsys):
    import re
    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "README.md"), encoding="utf-8") as f:
        section = f.read().split("### Schedules, callbacks and metrics", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "['accuracy', 'loss', 'lr', 'val_accuracy', 'val_loss']"
    assert 0.95 < float(lines[1]) <= 1.0
    assert sorted(os.listdir(tmp_path)) == ["best.npz", "training.csv"]
