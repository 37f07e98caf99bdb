"""fit's user-facing features: progress output, early stopping, History.plot.

Why it is built this way: these features only decide *between* epochs, so
each test checks what the user sees (the printed lines, the records kept, the
weights left in the layers) on both backends, and that the numbers of the
epochs that ran are the ones a plain ``fit`` gives.
"""

import sys

import numpy as np
import pytest

from fastnn import SGD, Adam, Dense, Network, Sigmoid, Tanh


def _net(backend, seed=0):
    return Network([Dense(3, 5), Tanh(), Dense(5, 1)], backend=backend, seed=seed)


def _data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    return X, np.tanh(X @ np.array([[0.5], [-1.0], [0.25]]))


# ---------------------------------------------------------------- progress
def test_verbose_0_prints_nothing(backend, capsys):
    X, y = _data()
    _net(backend).fit(X, y, loss="mse", optimizer=SGD(0.1), epochs=3, verbose=0)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""


def _hide_tqdm(monkeypatch):
    for name in ("tqdm", "tqdm.auto", "tqdm.autonotebook", "tqdm.std"):
        monkeypatch.setitem(sys.modules, name, None)      # `import tqdm...` now fails


@pytest.mark.parametrize("verbose", [1, 2, True])
def test_verbose_plain_lines_without_tqdm(backend, verbose, capsys, monkeypatch):
    _hide_tqdm(monkeypatch)
    X, y = _data()
    hist = _net(backend).fit(X, y, loss="mse", optimizer=SGD(0.1), epochs=4, batch_size=8,
                             verbose=verbose, validation_data=(X[:6], y[:6]))
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert len(lines) == 4 and out.err == ""
    for epoch, line in enumerate(lines):
        assert line.startswith(f"epoch {epoch + 1}/4 ")
        assert f"loss={hist.loss[epoch]:.6g}" in line
        assert f"val_loss={hist.val_loss[epoch]:.6g}" in line
        assert " eta " in line


def test_verbose_2_is_plain_even_with_tqdm(backend, capsys):
    X, y = _data()
    _net(backend).fit(X, y, loss="mse", optimizer=SGD(0.1), epochs=3, verbose=2)
    out = capsys.readouterr()
    assert len(out.out.strip().splitlines()) == 3 and out.err == ""


def test_verbose_1_tqdm_bar(backend, capsys):
    pytest.importorskip("tqdm", reason="tqdm is not installed (pip install tqdm)")
    X, y = _data()
    hist = _net(backend).fit(X, y, loss="mse", optimizer=SGD(0.1), epochs=5, verbose=1)
    out = capsys.readouterr()
    assert out.out == ""                  # the bar goes to stderr
    assert "5/5" in out.err and "loss=" in out.err and f"{hist.loss[-1]:.4g}" in out.err


def test_verbose_does_not_change_numbers(backend, capsys, monkeypatch):
    _hide_tqdm(monkeypatch)
    X, y = _data()
    quiet, loud = _net(backend), _net(backend)
    h1 = quiet.fit(X, y, loss="mse", optimizer=Adam(0.01), epochs=5, batch_size=5, seed=3)
    h2 = loud.fit(X, y, loss="mse", optimizer=Adam(0.01), epochs=5, batch_size=5, seed=3,
                  verbose=1)
    assert h1.loss == h2.loss
    np.testing.assert_array_equal(quiet.layers[0].W, loud.layers[0].W)


def test_verbose_rejects_bad_values(backend):
    X, y = _data()
    with pytest.raises(ValueError, match="verbose"):
        _net(backend).fit(X, y, loss="mse", optimizer=SGD(0.1), verbose=-1)


# ---------------------------------------------------------- early stopping
def _reference_run(backend, X, y, epochs, **fit_kw):
    """The same training without early stopping: losses per epoch and weights after each."""
    net = _net(backend)
    opt = SGD(0.2, momentum=0.9)
    losses, weights, vals = [], [], []
    for _ in range(epochs):
        h = net.fit(X, y, loss="mse", optimizer=opt, epochs=1, shuffle=False, **fit_kw)
        losses.append(h.loss[0])
        if "validation_data" in fit_kw:
            vals.append(h.val_loss[0])
        weights.append([p.copy() for _, p, _ in net.parameters()])
    return losses, vals, weights


def _expected_stop(values, patience, min_delta):
    best, best_epoch, wait = np.inf, None, 0
    for epoch, value in enumerate(values):
        if value < best - min_delta:
            best, best_epoch, wait = value, epoch, 0
        else:
            wait += 1
            if wait >= patience:
                return epoch, best_epoch
    return None, best_epoch


@pytest.mark.parametrize("validation", [False, True])
def test_early_stopping_stops_and_restores_best(backend, validation):
    X, y = _data()
    X_val, y_val = _data(10, seed=1)
    kw = {"validation_data": (X_val, y_val)} if validation else {}
    epochs, patience, min_delta = 60, 3, 1e-3
    losses, vals, weights = _reference_run(backend, X, y, epochs, **kw)
    monitored = vals if validation else losses
    stopped, best = _expected_stop(monitored, patience, min_delta)
    assert stopped is not None, "the test data should trigger a stop"

    net = _net(backend)
    arrays = [p for _, p, _ in net.parameters()]
    hist = net.fit(X, y, loss="mse", optimizer=SGD(0.2, momentum=0.9), epochs=epochs,
                   shuffle=False, early_stopping=True, patience=patience, min_delta=min_delta,
                   **kw)
    assert hist.stopped_epoch == stopped and hist.best_epoch == best
    assert hist.epochs == list(range(stopped + 1))
    np.testing.assert_allclose(hist.loss, losses[:stopped + 1], rtol=1e-12)
    if validation:
        np.testing.assert_allclose(hist.val_loss, vals[:stopped + 1], rtol=1e-12)
    # the best epoch's weights, written into the same arrays
    for (_, param, _), saved, original in zip(net.parameters(), weights[best], arrays):
        assert param is original
        np.testing.assert_allclose(param, saved, rtol=1e-12, atol=1e-15)
    assert net.layers[0].W is arrays[0]


def test_early_stopping_without_restore_keeps_last(backend):
    X, y = _data()
    losses, _, weights = _reference_run(backend, X, y, 60)
    stopped, best = _expected_stop(losses, 3, 1e-3)
    net = _net(backend)
    hist = net.fit(X, y, loss="mse", optimizer=SGD(0.2, momentum=0.9), epochs=60,
                   shuffle=False, early_stopping=True, patience=3, min_delta=1e-3,
                   restore_best_weights=False)
    assert hist.stopped_epoch == stopped and hist.best_epoch == best != stopped
    for (_, param, _), saved in zip(net.parameters(), weights[stopped]):
        np.testing.assert_allclose(param, saved, rtol=1e-12, atol=1e-15)


def test_early_stopping_not_triggered(backend):
    X, y = _data()
    net = _net(backend)
    hist = net.fit(X, y, loss="mse", optimizer=SGD(0.05), epochs=5, shuffle=False,
                   early_stopping=True, patience=10)
    assert hist.stopped_epoch is None and len(hist.epochs) == 5
    assert hist.best_epoch == int(np.argmin(hist.loss))
    plain = _net(backend).fit(X, y, loss="mse", optimizer=SGD(0.05), epochs=5, shuffle=False)
    assert hist.loss == pytest.approx(plain.loss, rel=1e-12)
    assert plain.stopped_epoch is None and plain.best_epoch is None


def test_early_stopping_message(backend, capsys, monkeypatch):
    _hide_tqdm(monkeypatch)
    X, y = _data()
    hist = _net(backend).fit(X, y, loss="mse", optimizer=SGD(0.2, momentum=0.9), epochs=60,
                             shuffle=False, early_stopping=True, patience=3, min_delta=1e-3,
                             verbose=2)
    out = capsys.readouterr().out
    assert f"early stopping after epoch {hist.stopped_epoch + 1}" in out


@pytest.mark.parametrize("kw, error", [({"patience": 0}, ValueError),
                                       ({"patience": 1.5}, TypeError),
                                       ({"min_delta": -1.0}, ValueError)])
def test_early_stopping_checks_arguments(backend, kw, error):
    X, y = _data()
    with pytest.raises(error):
        _net(backend).fit(X, y, loss="mse", optimizer=SGD(0.1), early_stopping=True, **kw)


# -------------------------------------------------------------- History.plot
def test_history_plot_png(backend, tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed "
                        '(pip install "fastnn[plot]")')
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    X, y = _data()
    net = Network([Dense(3, 4), Tanh(), Dense(4, 1), Sigmoid()], backend=backend, seed=0)
    hist = net.fit(X, (y > 0).astype(float), loss="bce", optimizer=Adam(0.05), epochs=8,
                   validation_data=(X[:5], (y[:5] > 0).astype(float)), early_stopping=True)
    path = tmp_path / "curves.png"
    ax = hist.plot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    labels = [line.get_label() for line in ax.get_lines()]
    assert "loss" in labels and "val_loss" in labels
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), hist.loss)
    # drawing into given axes
    fig, given = plt.subplots()
    assert hist.plot(ax=given) is given
    plt.close("all")


def test_history_plot_without_matplotlib(backend, monkeypatch):
    X, y = _data()
    hist = _net(backend).fit(X, y, loss="mse", optimizer=SGD(0.1), epochs=2)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="matplotlib"):
        hist.plot()
