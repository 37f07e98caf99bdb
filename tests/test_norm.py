"""BatchNorm1d and LayerNorm: kernels, gradients, backends, PyTorch parity, save/load.

The reference kernels are checked against finite differences and PyTorch; the
compiled kernels against the reference over a grid of shapes; whole trainings
against PyTorch's float64 trajectory (shuffled batches, SGD with momentum and
Adam, then eval-mode prediction), running statistics included.
"""

import warnings

import numpy as np
import pytest

import fastnn
from fastnn import training
from fastnn import (SGD, Adam, AdamW, BatchNorm1d, Dense, GELU, LayerNorm, Network, ReLU,
                    get_backend)

torch = pytest.importorskip("torch")
nn = torch.nn

SHAPES = [(2, 1), (7, 13), (300, 5), (3, 257), (64, 33)]


def _backends():
    names = ["numpy"]
    try:
        get_backend("cython")
        names.append("cython")
    except ImportError:
        pass
    return names


BACKENDS = _backends()


# ------------------------------------------------------------ kernels
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_kernels_match_pytorch(shape, affine):
    """The reference forward and backward of both norms are PyTorch's (float64)."""
    rng = np.random.default_rng(1)
    ops = get_backend("numpy")
    X = rng.standard_normal(shape) * 3 + 1
    dY = rng.standard_normal(shape)
    w = rng.standard_normal(shape[1]) if affine else None
    b = rng.standard_normal(shape[1]) if affine else None
    for kind in ("bn", "ln"):
        xt = torch.tensor(X, requires_grad=True)
        if kind == "bn":
            m = nn.BatchNorm1d(shape[1], affine=affine, dtype=torch.float64).train()
            Y, xhat, mean, var = ops.batchnorm_forward(X, w, b, 1e-5)
            dX, dw, db = ops.batchnorm_backward(dY, xhat, var, w, 1e-5)
        else:
            m = nn.LayerNorm(shape[1], elementwise_affine=affine, dtype=torch.float64)
            Y, xhat, rstd = ops.layernorm_forward(X, w, b, 1e-5)
            dX, dw, db = ops.layernorm_backward(dY, xhat, rstd, w)
        if affine:
            with torch.no_grad():
                m.weight.copy_(torch.tensor(w))
                m.bias.copy_(torch.tensor(b))
        yt = m(xt)
        yt.backward(torch.tensor(dY))
        np.testing.assert_allclose(Y, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(dX, xt.grad.numpy(), rtol=1e-9, atol=1e-11)
        if affine:
            np.testing.assert_allclose(dw, m.weight.grad.numpy(), rtol=1e-10, atol=1e-11)
            np.testing.assert_allclose(db, m.bias.grad.numpy(), rtol=1e-10, atol=1e-11)


@pytest.mark.skipif("cython" not in BACKENDS, reason="compiled backend not built")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_compiled_kernels_match_reference(shape, affine, dtype):
    rng = np.random.default_rng(2)
    ref, cy = get_backend("numpy"), get_backend("cython")
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == "float32" else dict(rtol=1e-12, atol=1e-12)
    X = (rng.standard_normal(shape) * 2 + 0.5).astype(dtype)
    dY = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(shape[1]).astype(dtype) if affine else None
    b = rng.standard_normal(shape[1]).astype(dtype) if affine else None
    rm = rng.standard_normal(shape[1]).astype(dtype)
    rv = rng.uniform(0.5, 2, shape[1]).astype(dtype)
    copies = [a.copy() for a in (X, dY, rm, rv)]
    got, want = cy.batchnorm_forward(X, w, b, 1e-5), ref.batchnorm_forward(X, w, b, 1e-5)
    for g, r in zip(got, want):
        np.testing.assert_allclose(g, r, **tol)
        assert g.dtype == r.dtype
    got = cy.batchnorm_backward(dY, want[1], want[3], w, 1e-5)
    for g, r in zip(got, ref.batchnorm_backward(dY, want[1], want[3], w, 1e-5)):
        np.testing.assert_allclose(g, r, **tol)
        assert g.dtype == r.dtype
    np.testing.assert_allclose(cy.batchnorm_eval(X, rm, rv, w, b, 1e-5),
                               ref.batchnorm_eval(X, rm, rv, w, b, 1e-5), **tol)
    got, want = cy.layernorm_forward(X, w, b, 1e-5), ref.layernorm_forward(X, w, b, 1e-5)
    for g, r in zip(got, want):
        np.testing.assert_allclose(g, r, **tol)
    got = cy.layernorm_backward(dY, want[1], want[2], w)
    for g, r in zip(got, ref.layernorm_backward(dY, want[1], want[2], w)):
        np.testing.assert_allclose(g, r, **tol)
        assert g.dtype == r.dtype
    for a, c in zip((X, dY, rm, rv), copies):       # inputs never modified
        np.testing.assert_array_equal(a, c)


@pytest.mark.skipif("cython" not in BACKENDS, reason="compiled backend not built")
def test_compiled_kernels_validate():
    cy = get_backend("cython")
    X = np.ones((4, 3))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        cy.batchnorm_forward(X[:1], None, None, 1e-5)
    with pytest.raises(ValueError, match="weight has shape"):
        cy.batchnorm_forward(X, np.ones(2), np.ones(2), 1e-5)
    with pytest.raises(TypeError):
        cy.layernorm_forward(X, np.ones(3, dtype=np.float32), np.ones(3, np.float32), 1e-5)
    with pytest.raises(ValueError, match="both"):
        cy.layernorm_forward(X, np.ones(3), None, 1e-5)
    with pytest.raises(ValueError, match="eps"):
        cy.layernorm_forward(X, None, None, -1.0)
    with pytest.raises(ValueError, match="rstd"):
        cy.layernorm_backward(X, X, np.ones(3), None)


# ------------------------------------------------------------ gradients
def _numeric_check(net, X, T, loss):
    """Finite differences of the training-mode loss against backward, every parameter."""
    def value():
        return loss(net.forward(X, training=True), T)
    out = net.forward(X, training=True)
    net.backward(loss.gradient(out, T))
    for key, p, g in list(net.parameters()):
        g = g.copy()
        num = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + 1e-6
            up = value()
            p[idx] = old - 1e-6
            down = value()
            p[idx] = old
            num[idx] = (up - down) / 2e-6
        np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-7, err_msg=key)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("norm", ["bn", "ln"])
def test_gradients_in_a_network(backend, norm):
    rng = np.random.default_rng(3)
    make = (lambda: BatchNorm1d(5)) if norm == "bn" else (lambda: LayerNorm(5))
    last = BatchNorm1d(3) if norm == "bn" else LayerNorm(3)
    net = Network([Dense(4, 5), make(), GELU(), Dense(5, 3), last], seed=2, backend=backend)
    for layer in net.layers:             # non-trivial affine parameters
        if isinstance(layer, (BatchNorm1d, LayerNorm)):
            layer.weight[...] = rng.uniform(0.5, 1.5, layer.weight.shape)
            layer.bias[...] = rng.standard_normal(layer.bias.shape)
    X = rng.standard_normal((9, 4))
    T = rng.standard_normal((9, 3))
    _numeric_check(net, X, T, fastnn.MSELoss())
    # the input gradient too
    out = net.forward(X, training=True)
    dX = net.backward(fastnn.MSELoss().gradient(out, T))
    num = np.zeros_like(X)
    for idx in np.ndindex(X.shape):
        Xp, Xm = X.copy(), X.copy()
        Xp[idx] += 1e-6
        Xm[idx] -= 1e-6
        num[idx] = (fastnn.MSELoss()(net.forward(Xp, training=True), T)
                    - fastnn.MSELoss()(net.forward(Xm, training=True), T)) / 2e-6
    np.testing.assert_allclose(dX, num, rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------ layer semantics
def test_defaults_and_names_are_pytorchs():
    bn, ln = BatchNorm1d(4), LayerNorm(4)
    assert bn.config() == {"num_features": 4, "eps": 1e-5, "momentum": 0.1, "affine": True}
    assert ln.config() == {"normalized_shape": 4, "eps": 1e-5, "elementwise_affine": True}
    assert LayerNorm((4,)).normalized_shape == (4,)
    net = Network([Dense(3, 4), bn, ln], seed=0)
    np.testing.assert_array_equal(bn.weight, np.ones(4))
    np.testing.assert_array_equal(bn.bias, np.zeros(4))
    np.testing.assert_array_equal(bn.running_mean, np.zeros(4))
    np.testing.assert_array_equal(bn.running_var, np.ones(4))
    assert bn.num_batches_tracked == 0
    assert [k for k, _, _ in net.parameters()] == ["0.W", "0.b", "1.weight", "1.bias",
                                                    "2.weight", "2.bias"]
    with pytest.raises(ValueError, match="1-tuple"):
        LayerNorm((2, 3))
    with pytest.raises(ValueError, match="features"):
        Network([Dense(3, 4), BatchNorm1d(5)])


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_row_in_training_is_an_error(backend):
    net = Network([Dense(3, 4), BatchNorm1d(4), Dense(4, 1)], seed=0, backend=backend)
    X = np.ones((5, 3))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        net.forward(X[:1], training=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            net.fit(X, np.ones((5, 1)), loss="mse", optimizer=SGD(), batch_size=4,
                    shuffle=False)              # the last batch has one row
    assert net.predict(X[:1]).shape == (1, 1)  # eval mode takes one row


@pytest.mark.parametrize("backend", BACKENDS)
def test_refused_batch_leaves_running_statistics(backend):
    """A diverged batch changes neither the weights nor the running statistics."""
    rng = np.random.default_rng(5)
    net = Network([Dense(3, 4), BatchNorm1d(4), Dense(4, 1)], seed=0, backend=backend)
    X = rng.standard_normal((8, 3))
    y = rng.standard_normal((8, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net.fit(X, y, loss="mse", optimizer=SGD(lr=0.01), batch_size=4, shuffle=False)
    bn = net.layers[1]
    before = (bn.running_mean.copy(), bn.running_var.copy(), bn.num_batches_tracked,
              net.layers[0].W.copy())
    assert before[2] == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(FloatingPointError):
            net.fit(X, y * 1e300, loss="mse", optimizer=SGD(lr=1e300), batch_size=4,
                    shuffle=False)
    np.testing.assert_array_equal(bn.running_mean, before[0])
    np.testing.assert_array_equal(bn.running_var, before[1])
    assert bn.num_batches_tracked == before[2]
    np.testing.assert_array_equal(net.layers[0].W, before[3])


# ------------------------------------------------------------ PyTorch trajectories
MEASURED = {}

OPTIMIZERS = {
    "sgd": (lambda: SGD(lr=0.05, momentum=0.9, weight_decay=1e-3),
            lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-3)),
    "adam": (lambda: Adam(lr=0.01, weight_decay=1e-3),
             lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=1e-3)),
    "adamw": (lambda: AdamW(lr=0.01), lambda p: torch.optim.AdamW(p, lr=0.01)),
}


def _network(norm, backend):
    if norm == "bn":
        # no bias before the batch norm: its gradient is 0 up to rounding, which
        # Adam's normalized step would turn into steps of size lr in either direction
        return Network([Dense(5, 8, bias=False), BatchNorm1d(8), ReLU(), Dense(8, 3)], seed=4,
                       backend=backend)
    return Network([Dense(5, 8), LayerNorm(8), GELU(), Dense(8, 3)], seed=4, backend=backend)


@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
@pytest.mark.parametrize("norm", ["bn", "ln"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_training_matches_pytorch(backend, norm, opt):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((30, 5)) * 2 + 1
    y = rng.integers(0, 3, 30)
    net = _network(norm, backend)
    model = net.to_torch().train()
    ours, theirs = OPTIMIZERS[opt]
    topt = theirs(model.parameters())
    epochs, batch, n, seed = 5, 8, 30, 11
    orders = np.random.default_rng(seed)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    loss_fn = nn.CrossEntropyLoss()
    torch_losses = []
    for _ in range(epochs):
        order = torch.from_numpy(orders.permutation(n))
        total = 0.0
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            topt.zero_grad()
            value = loss_fn(model(Xt[idx]), yt[idx])
            value.backward()
            topt.step()
            total += value.item() * len(idx)
        torch_losses.append(total / n)
    if backend == "cython":   # the compiled trainer runs the norms in C, not the Python loop
        loss = fastnn.CrossEntropyLoss()
        Xc, T = net._check_data(X, y, loss)
        made = training._make_trainer(net, Xc, T, loss, ours(), batch, None)
        try:
            assert isinstance(made, training._NativeTrainer)
        finally:
            made.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")        # no "runs the Python training loop" warning
        history = net.fit(X, y, loss="cross_entropy", optimizer=ours(), epochs=epochs,
                          batch_size=batch, shuffle=True, seed=seed)
    np.testing.assert_allclose(history.loss, torch_losses, rtol=1e-9)
    worst = 0.0
    tstate = model.state_dict()
    for i, layer in enumerate(net.layers):
        pairs = []
        if isinstance(layer, Dense):
            pairs = [(layer.W, tstate[f"{i}.weight"].numpy().T)]
            if layer.bias:
                pairs.append((layer.b, tstate[f"{i}.bias"].numpy()))
        elif isinstance(layer, (BatchNorm1d, LayerNorm)):
            pairs = [(layer.weight, tstate[f"{i}.weight"].numpy()),
                     (layer.bias, tstate[f"{i}.bias"].numpy())]
            if isinstance(layer, BatchNorm1d):
                pairs += [(layer.running_mean, tstate[f"{i}.running_mean"].numpy()),
                          (layer.running_var, tstate[f"{i}.running_var"].numpy())]
                assert layer.num_batches_tracked == int(tstate[f"{i}.num_batches_tracked"])
                assert layer.num_batches_tracked == epochs * 4
        for ours_, theirs_ in pairs:
            np.testing.assert_allclose(ours_, theirs_, rtol=1e-9, atol=1e-12)
            worst = max(worst, float(np.max(np.abs(ours_ - theirs_) /
                                            np.maximum(np.abs(theirs_), 1e-300))))
    model.eval()
    with torch.no_grad():
        want = model(Xt).numpy()
    np.testing.assert_allclose(net.predict(X), want, rtol=1e-9, atol=1e-12)
    key = (norm, backend)
    MEASURED[key] = max(MEASURED.get(key, 0.0), worst)
    print(f"\n{norm} {backend} {opt}: largest relative difference {worst:.2e}")


# ------------------------------------------------------------ interop and io
@pytest.mark.parametrize("backend", BACKENDS)
def test_torch_round_trip_and_save_load(backend, tmp_path):
    rng = np.random.default_rng(9)
    net = Network([Dense(4, 6), BatchNorm1d(6, momentum=0.2, eps=1e-3), ReLU(),
                   LayerNorm(6, eps=1e-4), Dense(6, 2)], seed=1, backend=backend)
    X = rng.standard_normal((12, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net.fit(X, rng.standard_normal((12, 2)), loss="mse", optimizer=Adam(lr=0.05),
                epochs=3, batch_size=5)
    bn = net.layers[1]
    assert bn.num_batches_tracked == 9
    model = net.to_torch()
    assert isinstance(model[1], nn.BatchNorm1d) and isinstance(model[3], nn.LayerNorm)
    assert model[1].momentum == 0.2 and model[1].eps == 1e-3 and model[3].eps == 1e-4
    assert int(model[1].num_batches_tracked) == 9
    np.testing.assert_array_equal(model[1].running_var.numpy(), bn.running_var)
    with torch.no_grad():
        np.testing.assert_allclose(model(torch.from_numpy(X)).numpy(), net.predict(X),
                                   rtol=1e-12)
    back = Network.from_torch(model, backend=backend)
    np.testing.assert_array_equal(back.predict(X), net.predict(X))
    assert back.layers[1].num_batches_tracked == 9
    path = tmp_path / "net.npz"
    net.save(path)
    loaded = Network.load(path)
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))
    lb = loaded.layers[1]
    np.testing.assert_array_equal(lb.running_mean, bn.running_mean)
    np.testing.assert_array_equal(lb.running_var, bn.running_var)
    assert lb.num_batches_tracked == 9
    assert lb.config() == bn.config()
    assert loaded.layers[3].config() == net.layers[3].config()


# ------------------------------------------------------------ the compiled trainer
def _norm_net(backend, dtype, kind, affine, momentum, dropout):
    norm1 = BatchNorm1d(24, momentum=momentum, affine=affine) if kind == "bn" else \
        LayerNorm(24, elementwise_affine=affine)
    # no bias before a batch norm (its gradient is 0 up to rounding, which Adam's
    # normalized step would magnify into steps of size lr)
    layers = [Dense(7, 24, bias=kind != "bn"), norm1, GELU()]
    if dropout:
        layers.append(fastnn.Dropout(0.2))
    layers += [Dense(24, 5, bias=kind == "bn"),
               LayerNorm(5) if kind == "bn" else BatchNorm1d(5), Dense(5, 3)]
    return Network(layers, seed=3, backend=backend, dtype=dtype)


def _stats(net):
    out = []
    for layer in net.layers:
        if isinstance(layer, BatchNorm1d):
            out += [layer.running_mean, layer.running_var,
                    np.array([layer.num_batches_tracked], dtype=float)]
    return out


@pytest.mark.skipif("cython" not in BACKENDS, reason="compiled backend not built")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("first", ["bn", "ln"])
def test_compiled_trainer_matches_reference_with_a_norm_first(first, dtype):
    """A norm with parameters under every Dense (here normalizing the input):
    the gradient flowing into it has no Dense stage's dZ to live in, so the
    C trainer keeps a buffer of its own for it (every other stage's flows
    through the dZ of the Dense below); same weights and statistics as the
    reference."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((42, 6)) * 3 + 1     # batches of 8, the last of 2
    y = rng.integers(0, 3, 42)
    nets = []
    for backend in ("numpy", "cython"):
        norm = BatchNorm1d(6) if first == "bn" else LayerNorm(6)
        net = Network([norm, fastnn.Dropout(0.1), Dense(6, 9), GELU(), Dense(9, 3)], seed=2,
                      backend=backend, dtype=dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            history = net.fit(X, y, loss="cross_entropy", optimizer=AdamW(lr=0.01), epochs=3,
                              batch_size=8, seed=1)
        nets.append((net, history))
    (ref, h_ref), (cy, h_cy) = nets
    tol = dict(rtol=2e-4, atol=1e-5) if dtype == "float32" else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h_cy.loss, h_ref.loss, **tol)
    assert not np.array_equal(ref.layers[0].weight, np.ones(6))    # the norm learned
    for (_, p_ref, _), (_, p_cy, _) in zip(ref.parameters(), cy.parameters()):
        np.testing.assert_allclose(p_cy, p_ref, **tol)
    for s_ref, s_cy in zip(_stats(ref), _stats(cy)):
        np.testing.assert_allclose(s_cy, s_ref, **tol)


@pytest.mark.skipif("cython" not in BACKENDS, reason="compiled backend not built")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind, affine, momentum, dropout", [
    ("bn", True, 0.1, False), ("bn", False, None, True), ("ln", True, 0.3, True),
    ("ln", False, 0.1, False)])
@pytest.mark.parametrize("opt", ["sgd", "adamw"])
def test_compiled_trainer_matches_reference(kind, affine, momentum, dropout, opt, dtype):
    """The C trainer's norm stages give the reference trainer's weights and statistics."""
    rng = np.random.default_rng(12)
    X = rng.standard_normal((53, 7)) * 2
    y = rng.integers(0, 3, 53)
    nets = []
    for backend in ("numpy", "cython"):
        net = _norm_net(backend, dtype, kind, affine, momentum, dropout)
        optimizer = SGD(lr=0.05, momentum=0.9) if opt == "sgd" else AdamW(lr=0.01)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            history = net.fit(X, y, loss="cross_entropy", optimizer=optimizer, epochs=3,
                              batch_size=10, seed=1, clip_grad_norm=5.0)
        nets.append((net, history))
    (ref, h_ref), (cy, h_cy) = nets
    tol = dict(rtol=2e-4, atol=1e-5) if dtype == "float32" else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h_cy.loss, h_ref.loss, **tol)
    for (_, p_ref, _), (_, p_cy, _) in zip(ref.parameters(), cy.parameters()):
        np.testing.assert_allclose(p_cy, p_ref, **tol)
    for s_ref, s_cy in zip(_stats(ref), _stats(cy)):
        np.testing.assert_allclose(s_cy, s_ref, **tol)
    assert _stats(ref)[2][0] == 3 * 6
    np.testing.assert_allclose(cy.predict(X), ref.predict(X), **tol)


@pytest.mark.skipif("cython" not in BACKENDS, reason="compiled backend not built")
def test_compiled_trainer_does_not_depend_on_the_thread_count():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((300, 40))
    y = rng.integers(0, 4, 300)
    before = fastnn.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            fastnn.set_num_threads(threads)
            net = Network([Dense(40, 256), BatchNorm1d(256), ReLU(), Dense(256, 64),
                           LayerNorm(64), GELU(), Dense(64, 4)], seed=2, backend="cython")
            net.fit(X, y, loss="cross_entropy", optimizer=Adam(lr=0.01), epochs=2,
                    batch_size=100, seed=0)
            results.append([p.copy() for _, p, _ in net.parameters()] + _stats(net))
    finally:
        fastnn.set_num_threads(before)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif("cython" not in BACKENDS, reason="compiled backend not built")
def test_tiny_path_refuses_norm_stages_and_the_proof_is_off():
    """A tiny network with a norm takes the general path; any network with a norm
    checks every update with the dry run (the proof does not bound norm gradients)."""
    loss = fastnn.MSELoss()
    X = np.random.default_rng(0).standard_normal((8, 2))
    T = np.zeros((8, 1))
    for layers, tiny in (([Dense(2, 4), ReLU(), Dense(4, 1)], True),
                         ([Dense(2, 4), LayerNorm(4), ReLU(), Dense(4, 1)], False),
                         ([Dense(2, 4), BatchNorm1d(4), ReLU(), Dense(4, 1)], False)):
        net = Network(layers, seed=0, backend="cython")
        made = training._make_trainer(net, X, T, loss, SGD(), 4, None)
        try:
            assert isinstance(made, training._NativeTrainer)
            assert made.trainer.tiny is tiny
        finally:
            made.close()
    rng = np.random.default_rng(1)
    X = rng.standard_normal((64, 100))
    net = Network([Dense(100, 64), BatchNorm1d(64), ReLU(), Dense(64, 2)], seed=0,
                  backend="cython")                       # 6,000+ parameters
    loss = fastnn.CrossEntropyLoss()
    Xc, T = net._check_data(X, rng.integers(0, 2, 64), loss)
    made = training._make_trainer(net, Xc, T, loss, SGD(lr=0.01), 16, None)
    try:
        made.run(None, 0, 0, 8, np.zeros(2))
        assert made.trainer.exact_checks == 8
    finally:
        made.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_refused_update_leaves_running_statistics(backend):
    """A finite loss whose update would overflow: refused whole, statistics included."""
    rng = np.random.default_rng(6)
    net = Network([Dense(3, 4), BatchNorm1d(4), Dense(4, 1)], seed=0, backend=backend)
    X = rng.standard_normal((8, 3))
    y = rng.standard_normal((8, 1)) * 1e3
    bn = net.layers[1]
    bn.running_mean[...] = 0.5
    before = [a.copy() for a in (bn.running_mean, bn.running_var, net.layers[0].W,
                                 bn.weight)]
    with pytest.raises(FloatingPointError):
        net.fit(X, y, loss="mse", optimizer=SGD(lr=1e308), batch_size=4, shuffle=False)
    for a, b in zip((bn.running_mean, bn.running_var, net.layers[0].W, bn.weight), before):
        np.testing.assert_array_equal(a, b)
    assert bn.num_batches_tracked == 0


class _InterruptAt:
    """A stand-in for fit's Ctrl-C guard: ``requested`` turns True at its k-th look."""

    def __init__(self, k):
        self.k, self.looks = k, 0

    @property
    def requested(self):
        self.looks += 1
        return self.looks >= self.k


@pytest.mark.parametrize("looks", [3, 5, 7, 8])
def test_interrupted_batch_leaves_running_statistics(looks):
    """The reference trainer drops a batch interrupted after its BatchNorm1d ran:
    its statistics are not written (the first batch's are)."""
    rng = np.random.default_rng(8)
    X = rng.standard_normal((16, 3))
    T = rng.standard_normal((16, 1))
    loss = fastnn.MSELoss()

    def make():
        return Network([Dense(3, 4), BatchNorm1d(4), ReLU(), Dense(4, 1)], seed=0,
                       backend="numpy")
    net, twin = make(), make()
    # the guard is looked at before each batch, before each stage of its forward and
    # backward, and before its update: every k stops the second batch, before its
    # BatchNorm1d ran (3, 5) or after (7, 8)
    trainer = training.PythonTrainer(net, X, T, loss, SGD(lr=0.1), 8, _InterruptAt(8 + looks))
    epoch, start = trainer.run(None, 0, 0, 2, np.zeros(1))
    assert trainer.interrupted and (epoch, start) == (0, 8)
    twin_trainer = training.PythonTrainer(twin, X, T, loss, SGD(lr=0.1), 8, _InterruptAt(10**9))
    twin_trainer.run(None, 0, 0, 1, np.zeros(1))
    for a, b in zip(_stats(net), _stats(twin)):
        np.testing.assert_array_equal(a, b)
    assert net.layers[1].num_batches_tracked == 1
    assert not net.layers[1]._hold and net.layers[1]._pending is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_optimizer_state_of_the_norms_saves_and_resumes(backend, tmp_path):
    """save/load of the network and its optimizer (the norms' moments included):
    training resumes as if uninterrupted."""
    from fastnn.io import load_optimizer, save_optimizer
    rng = np.random.default_rng(10)
    X = rng.standard_normal((20, 4))
    y = rng.integers(0, 2, 20)

    def make():
        return Network([Dense(4, 6, bias=False), BatchNorm1d(6), ReLU(), Dense(6, 6),
                        LayerNorm(6), Dense(6, 2)], seed=5, backend=backend)
    net, opt = make(), Adam(lr=0.01)
    net.fit(X, y, loss="cross_entropy", optimizer=opt, epochs=2, batch_size=8, shuffle=False)
    net.save(tmp_path / "net.npz")
    save_optimizer(opt, tmp_path / "opt.npz")
    assert any(key.endswith(".weight") for key in opt.state)
    resumed = Network.load(tmp_path / "net.npz", backend=backend)
    ropt = load_optimizer(tmp_path / "opt.npz", resumed)
    for a, o in ((net, opt), (resumed, ropt)):
        a.fit(X, y, loss="cross_entropy", optimizer=o, epochs=1, batch_size=8, shuffle=False)
    for (_, p, _), (_, q, _) in zip(net.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(p, q)
    for a, b in zip(_stats(net), _stats(resumed)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("make", [lambda: BatchNorm1d(4), lambda: LayerNorm(4),
                                  lambda: BatchNorm1d(4, affine=False),
                                  lambda: LayerNorm(4, elementwise_affine=False)],
                         ids=["bn", "ln", "bn-plain", "ln-plain"])
def test_layer_gradients_by_finite_differences(backend, make):
    """Each layer alone: backward's dX, dweight and dbias against central differences
    of sum(Y * G) in float64 (training mode)."""
    rng = np.random.default_rng(13)
    layer = make()
    layer.build(4, get_backend(backend), np.dtype(np.float64), rng)
    if layer.affine:
        layer.weight[...] = rng.uniform(0.5, 1.5, 4)
        layer.bias[...] = rng.standard_normal(4)
    X = rng.standard_normal((6, 4)) * 2
    G = rng.standard_normal((6, 4))

    def f():
        return float(np.sum(layer.forward(X, training=True) * G))
    layer.forward(X, training=True)
    dX = layer.backward(G)
    arrays = [("X", X, dX)]
    if layer.affine:
        arrays += [("weight", layer.weight, layer.dweight.copy()),
                   ("bias", layer.bias, layer.dbias.copy())]
    for name, a, grad in arrays:
        num = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            old = a[idx]
            a[idx] = old + 1e-6
            up = f()
            a[idx] = old - 1e-6
            down = f()
            a[idx] = old
            num[idx] = (up - down) / 2e-6
        np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-8, err_msg=name)
