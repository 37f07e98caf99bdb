"""Optimizers: hand-worked two-step updates, PyTorch's formulas, invalid hyper-parameters.

The hand-worked tests use a Network with one Dense(2, 1) layer whose weights
and gradients are set by hand, and ``optimizer.step(network)``:

    W0 = [[1.0], [-2.0]],  b0 = [0.5]
    step 1 gradients:  dW = [[0.5], [-1.0]],  db = [2.0]
    step 2 gradients:  dW = [[1.0], [0.25]],  db = [-1.0]

The expected numbers are worked out by hand in the comments (not computed by
the code under test).
"""

import math

import numpy as np
import pytest

import fastnn
from fastnn import SGD, Adam, Dense, Network, Tanh


from tests_conftest import tol  # noqa: E402 (conftest.py registers the name)
from tests_conftest import STEP_GRADS  # noqa: E402
from tests_conftest import check_steps as _check  # noqa: E402
from tests_conftest import step_net as _net  # noqa: E402
from tests_conftest import two_steps as _two_steps  # noqa: E402


def test_sgd_plain(backend, dtype):
    # lr = 0.1: p -= 0.1 g
    # step 1: W = [1 - 0.05, -2 + 0.1] = [0.95, -1.9];  b = 0.5 - 0.2 = 0.3
    # step 2: W = [0.95 - 0.1, -1.9 - 0.025] = [0.85, -1.925];  b = 0.3 + 0.1 = 0.4
    got = _two_steps(_net(backend, dtype), SGD(lr=0.1))
    _check(got, [([[0.95], [-1.9]], [0.3]), ([[0.85], [-1.925]], [0.4])], dtype)


def test_sgd_momentum(backend, dtype):
    # lr = 0.1, mu = 0.9: v = 0.9 v + g (v starts at 0, so v1 = g1, as PyTorch), p -= 0.1 v
    # step 1: v = [0.5, -1.0], vb = 2.0 -> W = [0.95, -1.9], b = 0.3
    # step 2: v = 0.9*[0.5, -1.0] + [1.0, 0.25] = [1.45, -0.65];  vb = 1.8 - 1.0 = 0.8
    #         W = [0.95 - 0.145, -1.9 + 0.065] = [0.805, -1.835];  b = 0.3 - 0.08 = 0.22
    got = _two_steps(_net(backend, dtype), SGD(lr=0.1, momentum=0.9))
    _check(got, [([[0.95], [-1.9]], [0.3]), ([[0.805], [-1.835]], [0.22])], dtype)


def test_sgd_nesterov(backend, dtype):
    # lr = 0.1, mu = 0.9, Nesterov: v = 0.9 v + g; p -= 0.1 (g + 0.9 v)
    # step 1: v = g1; step = 1.9 g1 = [0.95, -1.9], b: 3.8
    #         W = [1 - 0.095, -2 + 0.19] = [0.905, -1.81];  b = 0.5 - 0.38 = 0.12
    # step 2: v = [1.45, -0.65], vb = 0.8; step = g2 + 0.9 v = [1.0 + 1.305, 0.25 - 0.585]
    #         = [2.305, -0.335];  b: -1.0 + 0.72 = -0.28
    #         W = [0.905 - 0.2305, -1.81 + 0.0335] = [0.6745, -1.7765];  b = 0.12 + 0.028 = 0.148
    got = _two_steps(_net(backend, dtype), SGD(lr=0.1, momentum=0.9, nesterov=True))
    _check(got, [([[0.905], [-1.81]], [0.12]), ([[0.6745], [-1.7765]], [0.148])], dtype)


def test_sgd_weight_decay(backend, dtype):
    # lr = 0.1, wd = 0.1: g = grad + 0.1 p (biases too, as PyTorch with one param group)
    # step 1: g = [0.5 + 0.1, -1.0 - 0.2] = [0.6, -1.2];  gb = 2.0 + 0.05 = 2.05
    #         W = [1 - 0.06, -2 + 0.12] = [0.94, -1.88];  b = 0.5 - 0.205 = 0.295
    # step 2: g = [1.0 + 0.094, 0.25 - 0.188] = [1.094, 0.062];  gb = -1.0 + 0.0295 = -0.9705
    #         W = [0.94 - 0.1094, -1.88 - 0.0062] = [0.8306, -1.8862]
    #         b = 0.295 + 0.09705 = 0.39205
    got = _two_steps(_net(backend, dtype), SGD(lr=0.1, weight_decay=0.1))
    _check(got, [([[0.94], [-1.88]], [0.295]), ([[0.8306], [-1.8862]], [0.39205])], dtype)


def test_sgd_momentum_weight_decay(backend, dtype):
    # lr = 0.1, mu = 0.5, wd = 0.1
    # step 1: g = [0.6, -1.2], gb = 2.05; v = g -> W = [0.94, -1.88], b = 0.295
    # step 2: g = [1.094, 0.062], gb = -0.9705
    #         v = 0.5*[0.6, -1.2] + g = [1.394, -0.538];  vb = 1.025 - 0.9705 = 0.0545
    #         W = [0.94 - 0.1394, -1.88 + 0.0538] = [0.8006, -1.8262]
    #         b = 0.295 - 0.00545 = 0.28955
    got = _two_steps(_net(backend, dtype), SGD(lr=0.1, momentum=0.5, weight_decay=0.1))
    _check(got, [([[0.94], [-1.88]], [0.295]), ([[0.8006], [-1.8262]], [0.28955])], dtype)


def test_adam(backend, dtype):
    # lr = 0.1, betas = (0.9, 0.999), eps = 1e-8
    # step 1: m = 0.1 g, v = 0.001 g^2;  m_hat = g, v_hat = g^2  ->  p -= 0.1 g / (|g| + 1e-8)
    #   W[0]: 1 - 0.1*0.5/(0.5 + 1e-8) = 0.9000000020;  W[1]: -2 + 0.1*1/(1 + 1e-8) = -1.9000000010
    #   b: 0.5 - 0.1*2/(2 + 1e-8) = 0.4000000005
    # step 2: m = 0.09 g1 + 0.1 g2;  v = 0.000999 g1^2 + 0.001 g2^2
    #   m_hat = m / (1 - 0.81) = m / 0.19;  v_hat = v / (1 - 0.998001) = v / 0.001999
    #   W[0]: m = 0.045 + 0.1 = 0.145, v = 0.00024975 + 0.001 = 0.00124975
    #         m_hat = 0.763157894..., sqrt(v_hat) = sqrt(0.625187593...) = 0.790688...
    #         update = 0.1 * 0.763157894 / 0.790688... = 0.0965182...
    #   W[1]: m = -0.09 + 0.025 = -0.065, v = 0.000999 + 0.0000625 = 0.0010615
    #         m_hat = -0.342105263..., sqrt(v_hat) = sqrt(0.531015507...) = 0.728708...
    #         update = -0.0469465...
    #   b:    m = 0.18 - 0.1 = 0.08, v = 0.003996 + 0.001 = 0.004996
    #         m_hat = 0.421052631..., sqrt(v_hat) = sqrt(2.499249624...) = 1.580901...
    #         update = 0.0266337...
    def upd(m, v):
        return 0.1 * (m / 0.19) / (math.sqrt(v / 0.001999) + 1e-8)

    w1 = [1 - 0.1 * 0.5 / (0.5 + 1e-8), -2 + 0.1 * 1.0 / (1.0 + 1e-8)]
    b1 = 0.5 - 0.1 * 2.0 / (2.0 + 1e-8)
    w2 = [w1[0] - upd(0.145, 0.00124975), w1[1] - upd(-0.065, 0.0010615)]
    b2 = b1 - upd(0.08, 0.004996)
    # the decimals worked out above
    assert w2[0] == pytest.approx(0.9 - 0.0965182, abs=1e-6)
    assert w2[1] == pytest.approx(-1.9 + 0.0469465, abs=1e-6)
    assert b2 == pytest.approx(0.4 - 0.0266337, abs=1e-6)
    got = _two_steps(_net(backend, dtype), Adam(lr=0.1))
    _check(got, [([[w1[0]], [w1[1]]], [b1]), ([[w2[0]], [w2[1]]], [b2])], dtype)


def test_adam_weight_decay(backend, dtype):
    # lr = 0.1, betas = (0.9, 0.999), eps = 1e-8, wd = 0.1 (L2 added to the gradient)
    # step 1: g = [0.6, -1.2], gb = 2.05 -> p -= 0.1 g/(|g| + eps) ~ 0.1 sign(g)
    #   W = [1 - 0.1*0.6/(0.6 + 1e-8), -2 + 0.1*1.2/(1.2 + 1e-8)] ~ [0.9, -1.9];  b ~ 0.4
    # step 2: g = grad2 + 0.1 p1 ~ [1.0 + 0.09, 0.25 - 0.19] = [1.09, 0.06]
    #         gb ~ -1 + 0.04 = -0.96
    #   W[0]: m = 0.09*0.6 + 0.1*1.09 = 0.163, v = 0.000999*0.36 + 0.001*1.1881 = 0.00154774
    #         update = 0.1*(0.163/0.19)/sqrt(0.00154774/0.001999) = 0.0974970...
    #   W[1]: m = -0.108 + 0.006 = -0.102, v = 0.000999*1.44 + 0.001*0.0036 = 0.00144216
    #         update = -0.0632042...
    #   b:    m = 0.1845 - 0.096 = 0.0885, v = 0.000999*4.2025 + 0.001*0.9216 = 0.0051198975
    #         update = 0.0291049...
    def upd(m, v):
        return 0.1 * (m / 0.19) / (math.sqrt(v / 0.001999) + 1e-8)

    w1 = [1 - 0.1 * 0.6 / (0.6 + 1e-8), -2 + 0.1 * 1.2 / (1.2 + 1e-8)]
    b1 = 0.5 - 0.1 * 2.05 / (2.05 + 1e-8)
    g2 = [1.0 + 0.1 * w1[0], 0.25 + 0.1 * w1[1]]
    gb2 = -1.0 + 0.1 * b1
    w2 = [w1[0] - upd(0.09 * 0.6 + 0.1 * g2[0], 0.000999 * 0.36 + 0.001 * g2[0] ** 2),
          w1[1] - upd(0.09 * -1.2 + 0.1 * g2[1], 0.000999 * 1.44 + 0.001 * g2[1] ** 2)]
    b2 = b1 - upd(0.09 * 2.05 + 0.1 * gb2, 0.000999 * 2.05 ** 2 + 0.001 * gb2 ** 2)
    assert w2[0] == pytest.approx(0.9 - 0.0974970, abs=1e-6)
    assert w2[1] == pytest.approx(-1.9 + 0.0632042, abs=1e-6)
    assert b2 == pytest.approx(0.4 - 0.0291049, abs=1e-6)
    got = _two_steps(_net(backend, dtype), Adam(lr=0.1, weight_decay=0.1))
    _check(got, [([[w1[0]], [w1[1]]], [b1]), ([[w2[0]], [w2[1]]], [b2])], dtype)


def test_adam_eps_is_added_after_the_square_root(backend, dtype):
    # lr = 0.1, eps = 0.5 (large, so its place shows): step 1 has m_hat = g, v_hat = g^2
    #   eps after sqrt (PyTorch):  W[0] = 1 - 0.1*0.5/(0.5 + 0.5) = 0.95
    #                              W[1] = -2 + 0.1*1/(1 + 0.5) = -1.9333...
    #                              b    = 0.5 - 0.1*2/(2 + 0.5) = 0.42
    #   (eps inside the sqrt would give W[0] = 1 - 0.05/sqrt(0.75) = 0.94226...)
    net = _net(backend, dtype)
    dense = net.layers[0]
    dense.dW = np.array(STEP_GRADS[0][0], dtype=dtype)
    dense.db = np.array(STEP_GRADS[0][1], dtype=dtype)
    Adam(lr=0.1, eps=0.5).step(net)
    np.testing.assert_allclose(dense.W, [[0.95], [-2 + 0.1 / 1.5]], **tol(dtype))
    np.testing.assert_allclose(dense.b, [0.42], **tol(dtype))


# ------------------------------------------------------- PyTorch's formulas
def _torch_sgd(params, grads, state, lr, momentum, dampening, weight_decay, nesterov):
    """torch.optim.sgd._single_tensor_sgd, transcribed (maximize=False)."""
    for i, (p, g) in enumerate(zip(params, grads)):
        d_p = g if weight_decay == 0 else g + weight_decay * p
        if momentum != 0:
            buf = state.get(i)
            if buf is None:
                buf = state[i] = d_p.copy()          # torch.clone(d_p).detach()
            else:
                # buf.mul_(momentum).add_(d_p, alpha=1 - dampening)
                buf *= momentum
                buf += (1 - dampening) * d_p
            d_p = d_p + momentum * buf if nesterov else buf
        p -= lr * d_p


def _torch_adam(params, grads, state, lr, beta1, beta2, eps, weight_decay):
    """torch.optim.adam._single_tensor_adam, transcribed (amsgrad=False, maximize=False)."""
    for i, (p, g) in enumerate(zip(params, grads)):
        st = state.setdefault(i, {"step": 0, "m": np.zeros_like(p), "v": np.zeros_like(p)})
        st["step"] += 1
        if weight_decay != 0:
            g = g + weight_decay * p
        st["m"] += (g - st["m"]) * (1 - beta1)        # exp_avg.lerp_(grad, 1 - beta1)
        # exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        st["v"] *= beta2
        st["v"] += (1 - beta2) * g * g
        bias_correction1 = 1 - beta1 ** st["step"]
        bias_correction2 = 1 - beta2 ** st["step"]
        step_size = lr / bias_correction1
        denom = np.sqrt(st["v"]) / math.sqrt(bias_correction2) + eps
        p -= step_size * st["m"] / denom


OPTIMIZERS = {
    "sgd": (lambda: SGD(lr=0.05), dict(lr=0.05, momentum=0, dampening=0, weight_decay=0,
                                        nesterov=False)),
    "momentum": (lambda: SGD(lr=0.05, momentum=0.8),
                 dict(lr=0.05, momentum=0.8, dampening=0, weight_decay=0, nesterov=False)),
    "nesterov_wd": (lambda: SGD(lr=0.05, momentum=0.7, nesterov=True, weight_decay=0.01),
                    dict(lr=0.05, momentum=0.7, dampening=0, weight_decay=0.01, nesterov=True)),
    "adam": (lambda: Adam(lr=0.01, betas=(0.8, 0.99), eps=1e-6),
             dict(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0)),
    "adam_wd": (lambda: Adam(lr=0.003, weight_decay=0.05),
                dict(lr=0.003, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.05)),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_matches_pytorch_formulas(backend, name, rng):
    make, hyper = OPTIMIZERS[name]
    net = Network([Dense(3, 4), Dense(4, 2, bias=False)], backend=backend, seed=2)
    ref = [p.copy() for _, p, _ in net.parameters()]
    state = {}
    opt = make()
    for _ in range(5):
        grads = [rng.standard_normal(p.shape) for p in ref]
        net.layers[0].dW, net.layers[0].db, net.layers[1].dW = grads
        opt.step(net)
        if name.startswith("adam"):
            _torch_adam(ref, grads, state, **hyper)
        else:
            _torch_sgd(ref, grads, state, **hyper)
    for (key, p, _), r in zip(net.parameters(), ref):
        np.testing.assert_allclose(p, r, rtol=1e-12, atol=1e-13, err_msg=key)


@pytest.mark.parametrize("name", ["momentum", "adam_wd"])
def test_tiny_fit_matches_pytorch_formulas(backend, name, rng):
    # fit = forward, MSE (mean) gradient, backward, step: 4 full-batch epochs of a
    # linear model, with the gradient written out in NumPy
    make, hyper = OPTIMIZERS[name]
    X = rng.standard_normal((6, 3))
    T = rng.standard_normal((6, 2))
    net = Network([Dense(3, 2)], backend=backend, seed=3)
    W, b = net.layers[0].W.copy(), net.layers[0].b.copy()
    state = {}
    for _ in range(4):
        dY = 2 * (X @ W + b - T) / T.size
        grads = [X.T @ dY, dY.sum(axis=0)]
        if name.startswith("adam"):
            _torch_adam([W, b], grads, state, **hyper)
        else:
            _torch_sgd([W, b], grads, state, **hyper)
    net.fit(X, T, loss="mse", optimizer=make(), epochs=4, batch_size=None, shuffle=False)
    np.testing.assert_allclose(net.layers[0].W, W, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(net.layers[0].b, b, rtol=1e-12, atol=1e-13)


# ----------------------------------------------------------------- errors
@pytest.mark.parametrize("make,match", [
    (lambda: SGD(lr=-0.1), "lr must be >= 0"),
    (lambda: SGD(lr=float("nan")), "lr must be finite"),
    (lambda: SGD(lr=float("inf")), "lr must be finite"),
    (lambda: Adam(lr=-1e-3), "lr must be >= 0"),
    (lambda: Adam(lr=float("nan")), "lr must be finite"),
    (lambda: SGD(lr=0.1, nesterov=True), "nesterov.*momentum"),
    (lambda: SGD(lr=0.1, momentum=-0.5), "momentum must be >= 0"),
    (lambda: SGD(lr=0.1, weight_decay=-1.0), "weight_decay must be >= 0"),
    (lambda: Adam(betas=(1.0, 0.999)), r"betas\[0\] must be < 1"),
    (lambda: Adam(betas=(0.9, 1.5)), r"betas\[1\] must be < 1"),
    (lambda: Adam(betas=(-0.1, 0.999)), r"betas\[0\] must be >= 0"),
    (lambda: Adam(betas=(0.9, float("nan"))), r"betas\[1\] must be finite"),
    (lambda: Adam(eps=-1e-8), "eps must be > 0"),
    (lambda: Adam(weight_decay=-0.1), "weight_decay must be >= 0"),
])
def test_invalid_hyper_parameters_raise_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("make,match", [
    (lambda: SGD(lr="0.1"), "lr must be a real number"),
    (lambda: SGD(lr=None), "lr must be a real number"),
    (lambda: Adam(betas=0.9), "betas must be a pair"),
    (lambda: Adam(betas=(0.9, 0.99, 0.999)), "betas must be a pair"),
])
def test_invalid_hyper_parameter_types_raise_type_error(make, match):
    with pytest.raises(TypeError, match=match):
        make()


def test_optimizer_state_belongs_to_one_network(backend):
    opt = SGD(lr=0.1, momentum=0.9)
    a, b = _net(backend, "float64"), _net(backend, "float64")
    for net in (a, b):
        net.layers[0].dW = np.ones((2, 1))
        net.layers[0].db = np.ones(1)
    opt.step(a)
    with pytest.raises(ValueError, match="another network"):
        opt.step(b)
    opt.reset()
    opt.step(b)
    np.testing.assert_allclose(b.layers[0].W, [[0.9], [-2.1]])


def test_step_before_backward_raises(backend):
    net = Network([Dense(2, 1)], backend=backend, seed=0)
    with pytest.raises(RuntimeError, match="no gradient for 0.W"):
        SGD(lr=0.1).step(net)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_optimizer_state_flushes_subnormals(ops, dtype):
    """A moment whose gradient is 0 decays geometrically; once it would be subnormal
    it is set to 0 (the documented departure from PyTorch, for speed), identically
    on both backends, while a normal neighbour is untouched."""
    tiny = np.finfo(dtype).tiny
    param = np.array([1.0, 1.0], dtype=dtype)
    grad = np.zeros(2, dtype=dtype)
    m = np.array([tiny * 1.05, 1.0], dtype=dtype)     # 0.9 * m[0] is subnormal
    v = np.array([tiny * 1.0005, 1.0], dtype=dtype)   # 0.999 * v[0] is subnormal
    ops.adam_update(param, grad, m, v, 1, 0.1)
    assert m[0] == 0 and v[0] == 0
    assert m[1] == dtype(0.9) and v[1] == dtype(0.999)
    velocity = np.array([tiny * 1.05, 1.0], dtype=dtype)
    ops.sgd_update(param, grad, velocity, 0.1, momentum=0.9)
    assert velocity[0] == 0 and velocity[1] == dtype(0.9)
    # a long decay never leaves subnormals behind
    m = np.full(2, 1e-3, dtype=dtype)
    v = np.full(2, 1e-3, dtype=dtype)
    for step in range(1, 1000 if dtype == np.float32 else 7000):
        ops.adam_update(param, grad, m, v, step, 0.0)
        assert not ((m != 0) & (np.abs(m) < tiny)).any()


def test_optimizer_survives_copy_and_pickle_with_its_network(backend):
    """A (network, optimizer) pair copied or pickled together keeps training; the
    optimizer still refuses a second live network."""
    import copy
    import pickle

    import fastnn
    X, y = fastnn.datasets.xor()
    net = fastnn.Network([fastnn.Dense(2, 3), fastnn.Tanh(), fastnn.Dense(3, 1)], seed=0,
                         backend=backend)
    opt = fastnn.Adam(lr=0.01)
    net.fit(X, y, loss="mse", optimizer=opt, epochs=2)
    for net2, opt2 in (copy.deepcopy((net, opt)), pickle.loads(pickle.dumps((net, opt)))):
        net2.fit(X, y, loss="mse", optimizer=opt2, epochs=1)
        with pytest.raises(ValueError, match="another network"):
            net.fit(X, y, loss="mse", optimizer=opt2, epochs=1)


# ------------------------------------------------------------ all or nothing
def _three_layers(backend, dtype="float64", seed=0):
    return Network([Dense(2, 3), Tanh(), Dense(3, 3), Tanh(), Dense(3, 1)], backend=backend,
                   dtype=dtype, seed=seed)


def _snapshot(net, opt):
    """Copies of every parameter and optimizer state value (arrays and step counts)."""
    params = [p.copy() for _, p, _ in net.parameters()]
    state = {key: ({k: np.copy(v) for k, v in st.items()} if isinstance(st, dict)
                   else st.copy()) for key, st in opt.state.items()}
    return params, state


def _assert_unchanged(net, opt, snapshot):
    params, state = snapshot
    for (_, p, _), q in zip(net.parameters(), params):
        np.testing.assert_array_equal(p, q)
    assert sorted(opt.state) == sorted(state)
    for key, st in state.items():
        if isinstance(st, dict):
            for k, v in st.items():
                np.testing.assert_array_equal(opt.state[key][k], v)
        else:
            np.testing.assert_array_equal(opt.state[key], st)


@pytest.mark.parametrize("make", [lambda: SGD(0.1, momentum=0.9), lambda: Adam(0.01)],
                         ids=["sgd", "adam"])
def test_a_read_only_parameter_stops_fit_and_step_before_any_change(backend, make):
    """A read-only W in the third Dense layer: fit and step refuse with a
    message naming it ("4.W"), and no parameter or state value has changed.
    (The reference backend had already updated the first layers and left
    Adam's step counts out of step; the compiled one named "stage 2 W".)"""
    X, y = np.ones((4, 2)), np.zeros(4)
    net, opt = _three_layers(backend), make()
    net.fit(X, y, loss="mse", optimizer=opt, epochs=2)     # some state to keep
    net.layers[4].W.flags.writeable = False
    before = _snapshot(net, opt)
    with pytest.raises(ValueError, match=r"4\.W is read-only \(shape \(3, 1\)\)"):
        net.fit(X, y, loss="mse", optimizer=opt, epochs=1)
    _assert_unchanged(net, opt, before)
    net.forward(X, training=True)
    net.backward(np.ones((4, 1)))
    with pytest.raises(ValueError, match=r"4\.W is read-only"):
        opt.step(net)
    _assert_unchanged(net, opt, before)
    fresh = make()                                         # no state made either
    with pytest.raises(ValueError, match=r"4\.W is read-only"):
        net.fit(X, y, loss="mse", optimizer=fresh, epochs=1)
    assert fresh.state == {}


@pytest.mark.parametrize("make", [lambda: SGD(0.1, momentum=0.9), lambda: Adam(0.01)],
                         ids=["sgd", "adam"])
@pytest.mark.parametrize("bad", ["shape", "nan"])
def test_a_step_failing_at_a_later_parameter_changes_nothing(backend, make, bad):
    """A bad gradient for the third layer's W: step raises naming it, before
    writing anything -- the first layers and the state are as before."""
    net, opt = _three_layers(backend), make()
    net.fit(np.ones((4, 2)), np.zeros(4), loss="mse", optimizer=opt, epochs=2)
    net.forward(np.ones((4, 2)), training=True)
    net.backward(np.ones((4, 1)))
    if bad == "shape":
        net.layers[4].dW = np.ones((2, 2))
        error, match = ValueError, r"4\.W"
    else:
        net.layers[4].dW = np.full((3, 1), np.nan)
        error, match = FloatingPointError, r"update of 4\.W would make it .*NaN or infinite"
    before = _snapshot(net, opt)
    with pytest.raises(error, match=match):
        opt.step(net)
    _assert_unchanged(net, opt, before)


def test_a_diverging_update_is_never_visible_in_the_weights():
    """predict beside a diverging fit: the reference loop never writes an
    inf / NaN weight that it then takes back (the compiled loop never did).
    Checked deterministically: after every kernel call of the update -- where
    a predict in another thread may look -- every weight is finite."""
    seen = []

    class Watching(fastnn.backends.numpy_ops.NumpyOps):
        def optimizer_update(self, *args, **kwargs):
            super().optimizer_update(*args, **kwargs)
            seen.append(all(np.isfinite(p).all() for _, p, _ in net.parameters()))

    net = Network([Dense(2, 3), Tanh(), Dense(3, 1)], backend=Watching(), seed=0)
    X, y = np.ones((4, 2)), np.zeros(4)
    net.fit(X, y, loss="mse", optimizer=SGD(0.1), epochs=2, batch_size=2)
    before = [p.copy() for _, p, _ in net.parameters()]
    with pytest.raises(FloatingPointError, match="training diverged in epoch 1"):
        # a finite loss (~1e300) whose update overflows: the first batch is refused
        net.fit(X, y + 1e150, loss="mse", optimizer=SGD(1e200), epochs=1, batch_size=2)
    assert seen and all(seen)
    for (_, p, _), q in zip(net.parameters(), before):
        np.testing.assert_array_equal(p, q)


# ---------------------------------------------------- hyper-parameters, dtype
def test_adam_eps_that_rounds_to_zero_in_the_dtype_is_refused(backend):
    """Adam(eps=1e-50) is 0 in float32: 0/0 for a zero gradient, reported as a
    diverged fit "try a smaller learning rate".  Refused up front, naming eps,
    the dtype and the smallest usable value; float64 holds it."""
    X, y = np.ones((4, 2)), np.zeros(4)
    net = Network([Dense(2, 1)], backend=backend, dtype="float32", seed=0)
    W = net.layers[0].W.copy()
    opt = Adam(eps=1e-50)
    match = r"eps=1e-50 rounds to 0 in float32.*between 1\.4e-45 and"
    with pytest.raises(ValueError, match=match):
        net.fit(X, y, loss="mse", optimizer=opt, epochs=1)
    net.forward(X, training=True)
    net.backward(np.ones((4, 1), dtype=np.float32))
    with pytest.raises(ValueError, match=match):
        opt.step(net)
    np.testing.assert_array_equal(net.layers[0].W, W)
    assert opt.state == {}
    Adam(eps=1e-45).step(net)                                # the smallest float32 works
    wide = Network([Dense(2, 1)], backend=backend, seed=0)
    wide.fit(X, y, loss="mse", optimizer=Adam(eps=1e-50), epochs=2)
    assert np.isfinite(wide.layers[0].W).all()


@pytest.mark.parametrize("make", [lambda: SGD(0.1, momentum=0.9), lambda: Adam(0.01)],
                         ids=["sgd", "adam"])
def test_a_reused_optimizer_takes_the_next_networks_dtype(backend, make):
    """An optimizer whose network is gone steps the next one; its state is
    converted to that network's dtype (the reference kept float64 state for a
    float32 network, the compiled trainer refused it with a TypeError), and
    the update is the one of that converted state."""
    import gc
    X, y = np.linspace(-1, 1, 8).reshape(4, 2), np.array([0.5, -0.5, 0.25, 0.0])
    opt, twin_opt = make(), make()
    old = _three_layers(backend)
    old.fit(X, y, loss="mse", optimizer=opt, epochs=3)
    del old
    gc.collect()
    for key, st in opt.state.items():       # the twin: the same state, converted by hand
        twin_opt.state[key] = ({k: (v.astype(np.float32) if isinstance(v, np.ndarray) else v)
                                for k, v in st.items()} if isinstance(st, dict)
                               else st.astype(np.float32))
    net, twin = _three_layers(backend, "float32", 1), _three_layers(backend, "float32", 1)
    net.fit(X, y, loss="mse", optimizer=opt, epochs=2)
    twin.fit(X, y, loss="mse", optimizer=twin_opt, epochs=2)
    for st in opt.state.values():
        for v in (st.values() if isinstance(st, dict) else [st]):
            assert not isinstance(v, np.ndarray) or v.dtype == np.float32
    for (_, p, _), (_, q, _) in zip(net.parameters(), twin.parameters()):
        assert p.dtype == np.float32
        np.testing.assert_array_equal(p, q)


def test_a_reused_optimizer_refuses_another_architecture(backend):
    import gc
    opt = SGD(0.1, momentum=0.9)
    old = Network([Dense(2, 3)], backend=backend, seed=0)
    old.fit(np.ones((4, 2)), np.zeros((4, 3)), loss="mse", optimizer=opt)
    del old
    gc.collect()
    net = Network([Dense(2, 4)], backend=backend, seed=0)
    W = net.layers[0].W.copy()
    with pytest.raises(ValueError, match=r"state for 0\.W of shape \(2, 3\).*has shape "
                                         r"\(2, 4\); call reset\(\)"):
        net.fit(np.ones((4, 2)), np.zeros((4, 4)), loss="mse", optimizer=opt)
    np.testing.assert_array_equal(net.layers[0].W, W)
    opt.reset()
    net.fit(np.ones((4, 2)), np.zeros((4, 4)), loss="mse", optimizer=opt)
