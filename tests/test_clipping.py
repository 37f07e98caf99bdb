"""Gradient clipping: ``fit(clip_grad_norm=..., clip_grad_value=...)`` and its kernels.

Why it is built this way: clipping is PyTorch's ``torch.nn.utils.clip_grad_norm_``
and ``clip_grad_value_`` applied between each batch's backward and its update, so
it is checked against them: the kernels on lists of arrays (both backends), and
whole trainings against a PyTorch loop that clips, to 1e-9 in float64.  The
compiled trainer clips in C inside its epoch loop; the norm is a reduction, so
its result must not depend on the thread count, and the update's finiteness
proof, whose gradient bound is taken after clipping, must stay sound -- both
are tested on networks large enough for the thread pool and the proof.
"""

import warnings

import numpy as np
import pytest

import fastnn
from fastnn import SGD, Adam, Dense, Network, ReLU, RMSprop, Tanh
from fastnn import training
from tests_conftest import tol  # noqa: E402 (conftest.py registers the name)

torch = pytest.importorskip("torch")
nn = torch.nn


# ------------------------------------------------------------------ kernels
def test_clip_grad_norm_by_hand(backend, dtype):
    # two arrays [3], [[4, 0]]: norm 5; max_norm 1: c = 1/(5 + 1e-6), so
    # [3c] = [0.59999988], [[4c, 0]] = [[0.79999984, 0]]
    ops = fastnn.get_backend(backend)
    grads = [np.array([3.0], dtype), np.array([[4.0, 0.0]], dtype)]
    total = ops.clip_grad_norm(grads, 1.0)
    assert total == pytest.approx(5.0, rel=1e-15)
    c = 1.0 / (5.0 + 1e-6)
    assert c * 3 == pytest.approx(0.59999988, abs=1e-8)
    np.testing.assert_allclose(grads[0], [3 * c], **tol(dtype))
    np.testing.assert_allclose(grads[1], [[4 * c, 0.0]], **tol(dtype))
    assert grads[0].dtype == dtype


def test_clip_grad_norm_leaves_small_gradients_alone(backend, dtype):
    ops = fastnn.get_backend(backend)
    g = np.array([0.3, -0.4], dtype)
    before = g.copy()
    assert ops.clip_grad_norm([g], 0.5) == pytest.approx(0.5, rel=1e-7)  # c = 0.5/0.500001 < 1
    assert (np.abs(g) < np.abs(before)).all()
    g = before.copy()
    ops.clip_grad_norm([g], 0.6)                                          # c > 1: untouched
    np.testing.assert_array_equal(g, before)


def test_clip_grad_value_by_hand(backend, dtype):
    ops = fastnn.get_backend(backend)
    g = np.array([[-3.0, -0.5, 0.0], [0.25, 2.0, np.nan]], dtype)
    ops.clip_grad_value([g], 0.5)
    np.testing.assert_array_equal(g[0], [-0.5, -0.5, 0.0])
    np.testing.assert_array_equal(g[1, :2], [0.25, 0.5])
    assert np.isnan(g[1, 2])                        # clamp keeps NaN, as torch.clamp


@pytest.mark.parametrize("max_norm", [0.0, 0.1, 2.0, 1e3])
def test_the_kernels_match_torch(backend, max_norm):
    ops = fastnn.get_backend(backend)
    rng = np.random.default_rng(0)
    shapes = [(7, 13), (13,), (300, 257), (1,)]
    arrays = [rng.standard_normal(s) for s in shapes]
    tensors = [torch.nn.Parameter(torch.zeros(s, dtype=torch.float64)) for s in shapes]
    for t, a in zip(tensors, arrays):
        t.grad = torch.from_numpy(a.copy())
    ours = [a.copy() for a in arrays]
    total = ops.clip_grad_norm(ours, max_norm)
    theirs = nn.utils.clip_grad_norm_(tensors, max_norm)
    assert total == pytest.approx(float(theirs), rel=1e-12)
    for a, t in zip(ours, tensors):
        np.testing.assert_allclose(a, t.grad.numpy(), rtol=1e-12, atol=0)
    ours = [a.copy() for a in arrays]
    for t, a in zip(tensors, arrays):
        t.grad = torch.from_numpy(a.copy())
    ops.clip_grad_value(ours, max_norm)
    nn.utils.clip_grad_value_(tensors, max_norm)
    for a, t in zip(ours, tensors):
        np.testing.assert_array_equal(a, t.grad.numpy())


def test_both_backends_agree_in_float32():
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s).astype(np.float32) * 10 for s in ((40, 100), (100,))]
    results = []
    for backend in ("numpy", "cython"):
        copies = [a.copy() for a in arrays]
        total = fastnn.get_backend(backend).clip_grad_norm(copies, 3.0)
        results.append((total, copies))
    (t_ref, ref), (t_got, got) = results
    assert t_got == pytest.approx(t_ref, rel=1e-12)     # summed in float64 both ways
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, **tol(np.float32))


@pytest.mark.parametrize("args, error, match", [
    (([np.zeros(3)], -1.0), ValueError, "max_norm must be a finite number >= 0"),
    (([np.zeros(3)], float("nan")), ValueError, "max_norm must be a finite number >= 0"),
    (([np.zeros(3)], "1"), TypeError, "max_norm must be a real number"),
    (([np.zeros(3), np.zeros(3, np.float32)], 1.0), TypeError, "mix dtypes"),
    (([np.zeros(3, np.int64)], 1.0), TypeError, "gradient 0 must be a C-contiguous float"),
    (([np.zeros((3, 2)).T], 1.0), TypeError, "gradient 0 must be a C-contiguous float"),
])
def test_the_kernels_check_their_arguments(backend, args, error, match):
    ops = fastnn.get_backend(backend)
    with pytest.raises(error, match=match):
        ops.clip_grad_norm(*args)
    ro = np.ones(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        ops.clip_grad_value([ro], 0.5)


# ---------------------------------------------------------------- training
OPTIMIZERS = {
    "sgd-momentum": (lambda: SGD(lr=0.05, momentum=0.9),
                     lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    "adam": (lambda: Adam(lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
    "rmsprop": (lambda: RMSprop(lr=0.01, momentum=0.5),
                lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.5)),
}


def _problem():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 5)) * 3
    y = rng.integers(0, 3, 30)
    return X, y


def _torch_fit(net, make_opt, X, y, epochs, batch, clip):
    model = net.to_torch().train()
    opt = make_opt(model.parameters())
    loss_fn = nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    norms = []
    for _ in range(epochs):
        for start in range(0, len(X), batch):
            opt.zero_grad()
            loss_fn(model(Xt[start:start + batch]), yt[start:start + batch]).backward()
            if clip[0] == "norm":
                norms.append(float(nn.utils.clip_grad_norm_(model.parameters(), clip[1])))
            else:
                nn.utils.clip_grad_value_(model.parameters(), clip[1])
            opt.step()
    linears = [m for m in model if isinstance(m, nn.Linear)]
    return [(m.weight.detach().numpy().T, m.bias.detach().numpy()) for m in linears], norms


@pytest.mark.parametrize("clip", [("norm", 0.5), ("value", 0.02)], ids=["norm", "value"])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_training_with_clipping_matches_pytorch(backend, name, clip):
    make_ours, make_theirs = OPTIMIZERS[name]
    X, y = _problem()
    layers = lambda: [Dense(5, 8), ReLU(), Dense(8, 3)]  # noqa: E731
    net = Network(layers(), backend=backend, seed=2)
    want, norms = _torch_fit(net, make_theirs, X, y, 5, 7, clip)
    if clip[0] == "norm":
        assert sum(n > clip[1] for n in norms) >= len(norms) // 2   # clipping is at work
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # the native loop on the compiled backend
        net.fit(X, y, loss="cross_entropy", optimizer=make_ours(), epochs=5, batch_size=7,
                shuffle=False, **{f"clip_grad_{clip[0]}": clip[1]})
    unclipped = Network(layers(), backend=backend, seed=2)
    unclipped.fit(X, y, loss="cross_entropy", optimizer=make_ours(), epochs=5, batch_size=7,
                  shuffle=False)
    dense = [layer for layer in net.layers if isinstance(layer, Dense)]
    for layer, (W, b) in zip(dense, want):
        np.testing.assert_allclose(layer.W, W, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(layer.b, b, rtol=1e-9, atol=1e-12)
    assert not np.allclose(unclipped.layers[0].W, net.layers[0].W, rtol=1e-6)


def test_norm_then_value_when_both_are_given(backend):
    X, y = _problem()
    net = Network([Dense(5, 8), ReLU(), Dense(8, 3)], backend=backend, seed=2)
    model = net.to_torch().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    for start in range(0, 30, 10):
        opt.zero_grad()
        nn.CrossEntropyLoss()(model(Xt[start:start + 10]), yt[start:start + 10]).backward()
        nn.utils.clip_grad_norm_(model.parameters(), 0.3)
        nn.utils.clip_grad_value_(model.parameters(), 0.05)
        opt.step()
    net.fit(X, y, loss="cross_entropy", optimizer=SGD(lr=0.1), batch_size=10, shuffle=False,
            clip_grad_norm=0.3, clip_grad_value=0.05)
    np.testing.assert_allclose(net.layers[0].W, model[0].weight.detach().numpy().T,
                               rtol=1e-12, atol=1e-14)


def test_a_user_optimizer_in_the_python_loop_sees_clipped_gradients(backend):
    """Pieces of user code run the Python loop on either backend; it clips too, to the
    same numbers as the native loop."""
    class MySGD(SGD):
        def step(self, network):
            super().step(network)

    X, y = _problem()
    results = []
    for opt in (SGD(lr=0.1), MySGD(lr=0.1)):
        net = Network([Dense(5, 8), Tanh(), Dense(8, 3)], backend=backend, seed=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=3, batch_size=7,
                    shuffle=False, clip_grad_norm=0.2)
        results.append(net.layers[0].W.copy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"clip_grad_norm": -1.0}, ValueError, "clip_grad_norm must be >= 0"),
    ({"clip_grad_value": float("inf")}, ValueError, "clip_grad_value must be finite"),
    ({"clip_grad_norm": "1"}, TypeError, "clip_grad_norm must be a real number"),
    ({"clip_grad_value": True}, TypeError, "clip_grad_value must be a real number"),
])
def test_fit_checks_the_limits(backend, kwargs, error, match):
    X, y = _problem()
    net = Network([Dense(5, 3)], backend=backend, seed=0)
    W = net.layers[0].W.copy()
    with pytest.raises(error, match=match):
        net.fit(X, y, loss="cross_entropy", optimizer=SGD(lr=0.1), **kwargs)
    np.testing.assert_array_equal(net.layers[0].W, W)


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_a_non_finite_gradient_spreads_as_in_torch(backend, bad):
    """An infinite gradient makes the norm inf, c = 0 and that gradient NaN (inf * 0);
    a NaN one makes every gradient NaN: then the update is refused (nothing written)."""
    ops = fastnn.get_backend(backend)
    arrays = [np.array([1.0, bad]), np.array([[2.0, -3.0]])]
    tensors = [torch.nn.Parameter(torch.zeros(a.shape, dtype=torch.float64)) for a in arrays]
    for t, a in zip(tensors, arrays):
        t.grad = torch.from_numpy(a.copy())
    ours = [a.copy() for a in arrays]
    total = ops.clip_grad_norm(ours, 1.0)
    theirs = float(nn.utils.clip_grad_norm_(tensors, 1.0))
    assert (np.isnan(total) and np.isnan(theirs)) or total == theirs
    for a, t in zip(ours, tensors):
        np.testing.assert_array_equal(a, t.grad.numpy())        # NaN where torch has NaN


# --------------------------------------- the native trainer: threads, proof
def _big(backend, dtype, logit=0.0):
    """4403 parameters: above the native trainer's threshold for proofs, and an
    update large enough to be split over the thread pool."""
    net = Network([Dense(40, 100), ReLU(), Dense(100, 3)], backend=backend, dtype=dtype, seed=0)
    net.layers[2].b[0] = logit
    return net


def _big_data(dtype):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((64, 40)) * 5).astype(dtype), rng.integers(0, 3, 64)


@pytest.mark.skipif(not fastnn.backends.available_backends().count("cython"),
                    reason="the compiled backend is not built")
def test_the_compiled_norm_does_not_depend_on_the_thread_count():
    X, y = _big_data(np.float64)
    before = fastnn.get_num_threads()
    weights = []
    try:
        for threads in (1, 2):
            fastnn.set_num_threads(threads)
            net = Network([Dense(40, 600), ReLU(), Dense(600, 3)], backend="cython", seed=0)
            net.fit(X, y, loss="cross_entropy", optimizer=Adam(lr=1e-3), epochs=2,
                    batch_size=16, shuffle=False, clip_grad_norm=0.1)
            weights.append([p.copy() for _, p, _ in net.parameters()])
    finally:
        fastnn.set_num_threads(before)
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(not fastnn.backends.available_backends().count("cython"),
                    reason="the compiled backend is not built")
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("clip", [("norm", 0.5), ("value", 1e-3)], ids=["norm", "value"])
def test_the_proof_still_carries_the_batches_with_clipping(clip, dtype):
    """24 batches in one native call: the proof (its gradient bound taken after
    clipping) covers them all, from the bounds measured when the call starts, and the
    result is the reference loop's."""
    X, y = _big_data(dtype)
    net = _big("cython", dtype)
    loss = fastnn.CrossEntropyLoss()
    Xc, T = net._check_data(X, y, loss)
    clipping = training._Clipping(**{clip[0]: clip[1]})
    make = lambda: SGD(lr=0.05, momentum=0.9)  # noqa: E731 (RMSprop's g/|g| would
    # magnify float32's differences of summation order in tiny gradients)
    trainer = training._make_trainer(net, Xc, T, loss, make(), 8, None, clip=clipping)
    assert isinstance(trainer, training._NativeTrainer)
    trainer.run(None, 0, 0, 10**6, np.zeros(3))
    assert trainer.trainer.exact_checks == 0
    trainer.close()
    ref = _big("numpy", dtype)
    ref.fit(X, y, loss="cross_entropy", optimizer=make(), epochs=3, batch_size=8,
            shuffle=False, **{f"clip_grad_{clip[0]}": clip[1]})
    for (key, p, _), (_, q, _) in zip(net.parameters(), ref.parameters()):
        np.testing.assert_allclose(p, q, err_msg=key, **tol(dtype))


@pytest.mark.skipif(not fastnn.backends.available_backends().count("cython"),
                    reason="the compiled backend is not built")
def test_near_overflow_with_clipping_every_batch_is_checked():
    """A bias of 1e38 in float32 is beyond what the proof accepts, clipped or not: the
    dry run checks every batch, and the result is the reference's."""
    dtype = np.float32
    X, y = _big_data(dtype)
    net = _big("cython", dtype, 1e38)
    loss = fastnn.CrossEntropyLoss()
    Xc, T = net._check_data(X, y, loss)
    trainer = training._make_trainer(net, Xc, T, loss, Adam(lr=1e-3), 8, None,
                                     clip=training._Clipping(value=1e-2))
    trainer.run(None, 0, 0, 10**6, np.zeros(3))
    assert trainer.trainer.exact_checks == 24
    trainer.close()
    ref = _big("numpy", dtype, 1e38)
    ref.fit(X, y, loss="cross_entropy", optimizer=Adam(lr=1e-3), epochs=3, batch_size=8,
            shuffle=False, clip_grad_value=1e-2)
    for (key, p, _), (_, q, _) in zip(net.parameters(), ref.parameters()):
        assert np.isfinite(p).all(), key
        np.testing.assert_allclose(p, q, err_msg=key, **tol(dtype))
