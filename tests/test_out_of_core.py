"""Out-of-core data: fit on a memmap reads only its batches; fit on an iterable of batches.

Why it is built this way: what matters is what fit allocates beside the data,
so the memmap tests measure the peak of NumPy's allocations (tracemalloc, which
NumPy reports its buffers to) over a fit on a file much larger than that peak
may be -- a whole-array temporary (a boolean copy for the finiteness check, a
conversion, a gather of all the shuffled rows) would show as megabytes.  The
messages of the chunked checks are compared with the whole-array ones they
replace.  The iterable's test is an equality: the same batches as an array fit
with ``shuffle=False`` give the same weights, bit for bit, on both backends.
"""

import tracemalloc

import numpy as np
import pytest

from fastnn import SGD, Adam, Dense, Dropout, Network, ReLU, Tanh
from fastnn import _validation
from fastnn.schedules import OneCycleLR, StepLR


def _memmap(tmp_path, rows, cols, dtype=np.float32, seed=0, order="C"):
    path = tmp_path / "X.bin"
    X = np.memmap(path, dtype=dtype, mode="w+", shape=(rows, cols), order=order)
    rng = np.random.default_rng(seed)
    step = max(1, (1 << 20) // cols)
    for s in range(0, rows, step):
        X[s:s + step] = rng.standard_normal((min(step, rows - s), cols), dtype=dtype)
    X.flush()
    del X
    return np.memmap(path, dtype=dtype, mode="r", shape=(rows, cols), order=order)


# ------------------------------------------------------------------ memmaps
@pytest.fixture(scope="module")
def big_memmap(tmp_path_factory):
    """64 MiB of float32 on disk, mapped read-only (one file for both backends)."""
    return _memmap(tmp_path_factory.mktemp("ooc"), 32768, 512)


def test_memmap_fit_allocates_far_less_than_the_data(backend, big_memmap):
    X = big_memmap
    rows, cols = X.shape
    y = np.random.default_rng(1).standard_normal((rows, 1)).astype(np.float32)
    net = Network([Dense(cols, 2), ReLU(), Dense(2, 1)], dtype="float32", seed=0,
                  backend=backend)
    tracemalloc.start()
    try:
        net.fit(X, y, loss="mse", optimizer=SGD(0.001), epochs=1, batch_size=1024,
                shuffle=True, seed=0, validation_split=0.1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # y, the epoch's order, one chunk of the finiteness check, a batch and the
    # held-out rows' activations: ~6 MiB; a copy of X would be 64 MiB more, a
    # boolean one 16 MiB more
    assert peak < X.nbytes / 8, f"fit allocated {peak / 2**20:.1f} MiB at its peak"
    assert np.isfinite(net.layers[0].W).all()


def test_memmap_fit_equals_the_in_memory_fit(backend, tmp_path):
    X = _memmap(tmp_path, 300, 7, dtype=np.float64)
    y = np.asarray(X[:, :1]) * 0.5
    nets = [Network([Dense(7, 4), Tanh(), Dense(4, 1)], seed=0, backend=backend)
            for _ in range(2)]
    h = [net.fit(data, y, loss="mse", optimizer=Adam(0.01), epochs=3, batch_size=32, seed=3,
                 validation_split=0.2)
         for net, data in zip(nets, (X, np.array(X)))]
    assert h[0].history == h[1].history
    for a, b in zip(nets[0].layers[::2], nets[1].layers[::2]):
        np.testing.assert_array_equal(a.W, b.W)
    assert nets[0].evaluate(X, y, loss="mse") == nets[1].evaluate(np.array(X), y, loss="mse")
    np.testing.assert_array_equal(nets[0].predict(X), nets[0].predict(np.array(X)))


@pytest.mark.parametrize("shape, at", [((5000, 300), (3700, 123)), ((2, 3), (1, 2)),
                                       ((4000000,), (3999999,))])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_chunked_finiteness_names_the_first_bad_value(shape, at, value):
    a = np.zeros(shape)
    a[at] = value
    later = tuple(s - 1 for s in shape)
    if later != at:
        a[later] = np.nan                        # only the first one is named
    assert _validation.first_non_finite(a) == tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
    with pytest.raises(ValueError, match=rf"first at index \({at[0]},"):
        _validation.as_float_array(a, np.float64, "X")
    assert _validation.first_non_finite(np.zeros(shape)) is None


def test_value_too_large_for_float32_is_still_named():
    a = np.zeros((3000, 500))
    a[2500, 7] = 1e300
    with pytest.raises(ValueError, match=r"too large for float32 \(1e\+300 at index "
                                         r"\(2500, 7\)"):
        _validation.as_float_array(a, np.float32, "X")


def test_memmap_with_nan_is_refused_with_its_index(backend, tmp_path):
    X = _memmap(tmp_path, 4096, 300)
    w = np.memmap(tmp_path / "X.bin", dtype=np.float32, mode="r+", shape=X.shape)
    w[4000, 17] = np.nan
    w.flush()
    del w
    net = Network([Dense(300, 1)], dtype="float32", seed=0, backend=backend)
    with pytest.raises(ValueError, match=r"X contains NaN or infinity \(first at index "
                                         r"\(4000, 17\), shape \(4096, 300\)\)"):
        net.fit(X, np.zeros(4096), loss="mse", optimizer="sgd")


def test_memmap_of_another_dtype_is_refused(backend, tmp_path):
    X = _memmap(tmp_path, 64, 5, dtype=np.float64)
    net = Network([Dense(5, 1)], dtype="float32", seed=0, backend=backend)
    with pytest.raises(TypeError, match="memory-mapped array of dtype float64.*float32"):
        net.fit(X, np.zeros(64), loss="mse", optimizer="sgd")
    np.save(tmp_path / "X.npy", np.zeros((64, 5), dtype=np.float64))
    with pytest.raises(TypeError, match="memory-mapped"):
        net.fit(np.load(tmp_path / "X.npy", mmap_mode="r"), np.zeros(64), loss="mse",
                optimizer="sgd")
    net.fit(np.array(X), np.zeros(64), loss="mse", optimizer="sgd")   # in memory: converted
    # predict and evaluate convert it, as any array (outputs are as many rows anyway)
    np.testing.assert_array_equal(net.predict(X), net.predict(np.array(X)))


def test_non_contiguous_memmap_is_refused(backend, tmp_path):
    X = _memmap(tmp_path, 64, 5, order="F")
    net = Network([Dense(5, 1)], dtype="float32", seed=0, backend=backend)
    with pytest.raises(ValueError, match="not C-contiguous"):
        net.fit(X, np.zeros(64), loss="mse", optimizer="sgd")
    Xc = _memmap(tmp_path, 64, 6)
    with pytest.raises(ValueError, match="not C-contiguous"):
        net.fit(Xc[:, :5], np.zeros(64), loss="mse", optimizer="sgd")


# ---------------------------------------------------------------- iterables
def _data(n=103, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5))
    return X, np.tanh(X @ rng.standard_normal((5, 2)))


class _Batches:
    """A re-iterable reading its batches on demand, as a loader over files does."""

    def __init__(self, X, y, size):
        self.X, self.y, self.size = X, y, size

    def __iter__(self):
        for s in range(0, self.X.shape[0], self.size):
            yield self.X[s:s + self.size], self.y[s:s + self.size]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("optimizer", [lambda: SGD(0.05, momentum=0.9), lambda: Adam(0.01)])
def test_iterable_equals_the_array_with_the_same_batches(backend, dtype, optimizer):
    X, y = _data()
    X, y = X.astype(dtype), y.astype(dtype)

    def net():
        return Network([Dense(5, 8), ReLU(), Dropout(0.25), Dense(8, 2)], seed=1,
                       dtype=dtype, backend=backend)

    a, b = net(), net()
    ha = a.fit(X, y, loss="mse", optimizer=optimizer(), epochs=4, batch_size=16,
               shuffle=False, clip_grad_norm=1.0, validation_data=(X[:20], y[:20]))
    hb = b.fit(_Batches(X, y, 16), loss="mse", optimizer=optimizer(), epochs=4,
               shuffle=False, clip_grad_norm=1.0, validation_data=(X[:20], y[:20]))
    assert ha.history == hb.history
    pairs = list(zip(a.parameters(), b.parameters()))
    assert len(pairs) == 4
    for (name, pa, _), (_, pb, _) in pairs:
        np.testing.assert_array_equal(pa, pb, err_msg=name)
    assert a.layers[2].step == b.layers[2].step          # the dropout stream
    # a second fit goes on from the same state
    a.fit(X, y, loss="mse", optimizer="sgd", batch_size=16, shuffle=False)
    b.fit([(X[s:s + 16], y[s:s + 16]) for s in range(0, 103, 16)], loss="mse",
          optimizer="sgd", shuffle=False)
    np.testing.assert_array_equal(a.layers[0].W, b.layers[0].W)


def test_iterable_of_uneven_batches_equals_their_steps(backend):
    X, y = _data()
    bounds = [0, 10, 47, 50, 103]
    pairs = [(X[s:e], y[s:e]) for s, e in zip(bounds[:-1], bounds[1:])]
    a = Network([Dense(5, 3), Tanh(), Dense(3, 2)], seed=2, backend=backend)
    b = Network([Dense(5, 3), Tanh(), Dense(3, 2)], seed=2, backend=backend)
    opt_a, opt_b = Adam(0.01), Adam(0.01)
    h = b.fit(pairs, loss="mse", optimizer=opt_b, epochs=2, shuffle=False,
              lr_scheduler=StepLR(step_size=1, gamma=0.5))
    losses = []
    for epoch in range(2):                     # one whole-batch fit per pair
        total = 0.0
        for Xb, yb in pairs:
            total += a.fit(Xb, yb, loss="mse", optimizer=opt_a,
                           shuffle=False).loss[0] * Xb.shape[0]
        losses.append(total / 103)
        opt_a.lr *= 0.5                        # StepLR(1, 0.5) after the epoch
    np.testing.assert_array_equal(a.layers[0].W, b.layers[0].W)
    np.testing.assert_allclose(h.loss, losses, rtol=1e-14)
    assert h.lr == [0.01, 0.005]


def test_iterable_refuses_what_does_not_apply(backend):
    X, y = _data()
    pairs = [(X[:50], y[:50]), (X[50:], y[50:])]
    net = Network([Dense(5, 2)], seed=0, backend=backend)
    fit = dict(loss="mse", optimizer="sgd")
    for kwargs, what in [({"shuffle": True}, "shuffle=True"), ({"batch_size": 8}, "batch_size"),
                         ({"seed": 1}, "seed"), ({"validation_split": 0.2}, "validation_split"),
                         ({"sample_weight": np.ones(103)}, "sample_weight"),
                         ({"metrics": ["mae"]}, "metrics"),
                         ({"lr_scheduler": OneCycleLR(max_lr=0.1, total_steps=4)},
                          "the per-batch schedule")]:
        kwargs = {"shuffle": False, **kwargs}
        with pytest.raises(ValueError, match=f"iterable of .* does not take {what}"):
            net.fit(pairs, **fit, **kwargs)
    with pytest.raises(TypeError, match="iterator .* once per epoch"):
        net.fit(iter(pairs), **fit, epochs=2, shuffle=False)
    net.fit(iter(pairs), **fit, epochs=1, shuffle=False)         # one pass: fine
    for data in (X, X.tolist(), X[:, :2].tolist(), 3.0):
        with pytest.raises(TypeError, match="y is missing"):
            net.fit(data, **fit)
    with pytest.raises(TypeError, match="batch 1 of epoch 0 is a tuple of length 3"):
        net.fit([(X, y), (X, y, y)], **fit, shuffle=False)
    with pytest.raises(ValueError, match=r"X_batch \(batch 1\) has 4 features"):
        net.fit([(X, y), (X[:, :4], y)], **fit, shuffle=False)
    with pytest.raises(ValueError, match="no batch in epoch 0"):
        net.fit([], **fit, shuffle=False)


def test_iterable_with_early_stopping_and_callbacks(backend):
    X, y = _data()
    net = Network([Dense(5, 2)], seed=0, backend=backend)
    h = net.fit(_Batches(X, y, 25), loss="mse", optimizer=SGD(5.0), epochs=30,
                shuffle=False, early_stopping=True, patience=2,
                validation_data=(X, y))
    assert len(h.loss) < 30 and len(h.val_loss) == len(h.loss)


def test_the_readme_example_runs_and_prints_what_it_says(capsys):
    import os
    import re
    with open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "README.md"), encoding="utf-8") as f:
        section = f.read().split("### Data larger than memory", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out == "True\n"


def test_iterable_equals_the_array_with_class_weights_and_batchnorm(backend):
    from fastnn import BatchNorm1d, CrossEntropyLoss
    X, _ = _data(n=90)
    labels = np.random.default_rng(3).integers(0, 3, 90)
    loss = CrossEntropyLoss(weight=[1.0, 0.25, 2.0])

    def net():
        return Network([Dense(5, 6), BatchNorm1d(6), ReLU(), Dense(6, 3)], seed=4,
                       backend=backend)

    a, b = net(), net()
    ha = a.fit(X, labels, loss=loss, optimizer=Adam(0.02), epochs=3, batch_size=20,
               shuffle=False)
    hb = b.fit(_Batches(X, labels, 20), loss=loss, optimizer=Adam(0.02), epochs=3,
               shuffle=False)
    assert ha.history == hb.history
    for (name, pa, _), (_, pb, _) in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(pa, pb, err_msg=name)
    np.testing.assert_array_equal(a.layers[1].running_mean, b.layers[1].running_mean)
    assert a.layers[1].num_batches_tracked == b.layers[1].num_batches_tracked == 15
    zero = CrossEntropyLoss(weight=[1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="batch 2 of epoch 1 has total weight 0"):
        b.fit([(X[:3], np.array([0, 1, 2])), (X[:2], np.array([1, 1]))], loss=zero,
              optimizer="sgd", shuffle=False)


def test_iterable_of_memmap_slices_equals_the_memmap_fit(backend, tmp_path):
    X = _memmap(tmp_path, 200, 6, dtype=np.float64)
    y = np.sin(np.asarray(X[:, :2]))
    nets = [Network([Dense(6, 5), Tanh(), Dense(5, 2)], seed=5, backend=backend)
            for _ in range(2)]
    ha = nets[0].fit(X, y, loss="huber", optimizer=SGD(0.1, momentum=0.5), epochs=3,
                     batch_size=64, shuffle=False)
    hb = nets[1].fit(_Batches(X, y, 64), loss="huber", optimizer=SGD(0.1, momentum=0.5),
                     epochs=3, shuffle=False)
    assert ha.history == hb.history
    for (name, pa, _), (_, pb, _) in zip(nets[0].parameters(), nets[1].parameters()):
        np.testing.assert_array_equal(pa, pb, err_msg=name)


# ------------------------------------------ row-indexable arrays (h5py, zarr)
class _Rows:
    """An array of rows that is not NumPy's, as h5py's Dataset is: a NumPy dtype, a
    shape, row indexing by a slice or an *increasing* index array (h5py refuses
    any other), and an ``__array__`` that reads it whole -- which fit must never
    call.  It counts the rows it gives out."""

    def __init__(self, a):
        self._a, self.shape, self.dtype = a, a.shape, a.dtype
        self.rows_read = 0

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, key):
        if isinstance(key, np.ndarray):
            assert (np.diff(key) > 0).all(), "h5py takes increasing indices only"
        out = self._a[key]
        self.rows_read += out.shape[0]
        return out

    def __array__(self, dtype=None, copy=None):
        raise AssertionError("the whole array was read")


@pytest.mark.parametrize("shuffle, batch_size", [(True, 32), (True, None), (False, 25)])
def test_a_row_indexable_array_is_read_batch_by_batch_with_the_array_fits_weights(
        backend, shuffle, batch_size):
    """fit on a row-indexable non-NumPy array reads each epoch's rows once, a batch at a
    time, and ends with the weights and history of the same fit on the NumPy array
    (the same shuffle draws), bit for bit."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((203, 6))
    y = rng.integers(0, 3, 203)
    X_val, y_val = X[:20], y[:20]
    rows = _Rows(X)
    fits = []
    for data in (X, rows):
        net = Network([Dense(6, 8), Tanh(), Dense(8, 3)], backend=backend, seed=4)
        h = net.fit(data, y, loss="cross_entropy", optimizer=Adam(lr=0.01), epochs=3,
                    batch_size=batch_size, shuffle=shuffle, seed=9,
                    validation_data=(X_val, y_val))
        fits.append((net, h))
    (a, ha), (b, hb) = fits
    for (key, p, _), (_, q, _) in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(q, p, err_msg=key)
    assert ha.loss == hb.loss and ha["val_loss"] == hb["val_loss"]
    assert rows.rows_read == 3 * 203


def test_a_row_indexable_array_refuses_what_needs_it_whole(backend):
    X = _Rows(np.zeros((40, 3)))
    y = np.zeros(40, dtype=np.int64)
    net = Network([Dense(3, 2)], backend=backend)
    for kwargs, what in [({"validation_split": 0.2}, "validation_split"),
                         ({"sample_weight": np.ones(40)}, "sample_weight"),
                         ({"metrics": ["accuracy"]}, "metrics")]:
        with pytest.raises(ValueError, match=f"_Rows.*does not take {what}"):
            net.fit(X, y, loss="cross_entropy", optimizer="sgd", **kwargs)
    with pytest.raises(ValueError, match="X has 40 samples but y has shape"):
        net.fit(X, y[:39], loss="cross_entropy", optimizer="sgd")
