"""The trainers' scikit-learn pieces: the L2 penalty, the epoch loss by rows, and the
loss and gradient over a whole data set (for L-BFGS).

Why it is built this way: scikit-learn's MLPs are the specification
(``sklearn/neural_network/_multilayer_perceptron.py``: ``_backprop``,
``_compute_loss_grad``, ``_fit_stochastic``, ``_loss_grad_lbfgs``), so every
test compares with a hand-written NumPy loop of its formulas -- forward, delta
= (p - y) * w, dW = (A^T delta + alpha W) / n_b, db = sum(delta) / n_b, the
penalty 0.5 alpha sum ||W||^2 / n_b in the batch's loss, a plain SGD step --
rather than with fastnn's own reference, and runs on both backends.  The
compiled trainer's two paths (the tiny one and the general one) must give
the same bits, and its proof that an update is finite must still hold with
the penalty's term in the gradients.
"""

import numpy as np
import pytest

import fastnn
from fastnn import training
from fastnn._validation import ZeroWeightError
from tests_conftest import fd_grad

try:
    from fastnn.backends import cython_ops as co
except ImportError:         # the compiled half fails in conftest, naming the cause
    co = None

BACKENDS = ("numpy", "cython")
DTYPES = (np.float64, np.float32)
#: hand loop (float64) against a fit: float64 to 1e-12, float32 as float32 drifts
HAND_TOL = {np.dtype(np.float64): {"rtol": 1e-12, "atol": 1e-13},
            np.dtype(np.float32): {"rtol": 2e-4, "atol": 2e-5}}


def _problem(dtype=np.float64, n=50, n_in=5, hidden=7, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_in)).astype(dtype)
    y = rng.integers(0, classes, n)
    w = rng.uniform(0.2, 3.0, n)
    return X, y, w


def _network(backend, dtype, n_in=5, hidden=7, classes=3):
    return fastnn.Network([fastnn.Dense(n_in, hidden), fastnn.ReLU(),
                           fastnn.Dense(hidden, classes)], backend=backend, dtype=dtype,
                          seed=4)


def _penalized(alpha, by_rows=False):
    loss = fastnn.CrossEntropyLoss()
    loss.l2_penalty = alpha
    loss.epoch_by_rows = by_rows
    return loss


# ------------------------------------------------ scikit-learn's formulas, by hand
def _sk_loss_grad(Ws, bs, X, y, w, alpha):
    """scikit-learn's _backprop for a ReLU network with a softmax output (float64):
    the batch loss with the penalty, and [(dW, db)] per layer."""
    acts = [np.asarray(X, np.float64)]
    for i, (W, b) in enumerate(zip(Ws, bs)):
        z = acts[-1] @ W + b
        if i < len(Ws) - 1:
            acts.append(np.maximum(z, 0.0))
        else:
            e = np.exp(z - z.max(axis=1, keepdims=True))
            acts.append(e / e.sum(axis=1, keepdims=True))
    p = acts[-1]
    Y = np.eye(p.shape[1])[y]
    sw = p.shape[0] if w is None else w.sum()
    loss = np.average(-np.log((p * Y).sum(axis=1)), weights=w)
    loss += 0.5 * alpha * sum(np.dot(W.ravel(), W.ravel()) for W in Ws) / sw
    delta = p - Y
    if w is not None:
        delta = delta * w[:, None]
    grads = [None] * len(Ws)
    for i in range(len(Ws) - 1, -1, -1):
        grads[i] = ((acts[i].T @ delta + alpha * Ws[i]) / sw, delta.sum(axis=0) / sw)
        if i > 0:
            delta = (delta @ Ws[i].T) * (acts[i] > 0)
    return loss, grads


def _sk_fit(Ws, bs, X, y, w, alpha, lr, batch, orders):
    """scikit-learn's _fit_stochastic with plain SGD (no momentum), float64: the
    weights after the epochs of ``orders``, and each epoch's batch losses,
    rows and total weights."""
    Ws = [np.array(W, np.float64) for W in Ws]
    bs = [np.array(b, np.float64) for b in bs]
    epochs = []
    for order in orders:
        batches = []
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            wb = None if w is None else w[idx]
            loss, grads = _sk_loss_grad(Ws, bs, X[idx], y[idx], wb, alpha)
            for i, (dW, db) in enumerate(grads):
                Ws[i] -= lr * dW
                bs[i] -= lr * db
            batches.append((loss, len(idx), len(idx) if wb is None else wb.sum()))
        epochs.append(batches)
    return Ws, bs, epochs


def _dense_params(net):
    dense = [layer for layer in net.layers if isinstance(layer, fastnn.Dense)]
    return [layer.W.copy() for layer in dense], [layer.b.copy() for layer in dense]


# ------------------------------------------------------------------ the penalty
@pytest.mark.parametrize("by_rows", [False, True], ids=["by_weight", "by_rows"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_fit_with_the_penalty_is_scikit_learns_loop(backend, dtype, weighted, by_rows):
    """3 epochs of SGD in shuffled batches of 16 (the last one of 2 rows): the weights
    and History.loss equal scikit-learn's formulas by hand; the epoch loss is
    sum_b loss_b n_b / sum_b n_b with ``epoch_by_rows``, else weighted by the
    batches' total weights (the same without sample weights)."""
    alpha, lr, batch, epochs, seed = 0.3, 0.1, 16, 3, 7
    X, y, w = _problem(dtype)
    w = w if weighted else None
    net = _network(backend, dtype)
    Ws, bs = _dense_params(net)
    history = net.fit(X, y, loss=_penalized(alpha, by_rows), optimizer=fastnn.SGD(lr=lr),
                      epochs=epochs, batch_size=batch, shuffle=True, seed=seed,
                      sample_weight=w)
    rng = np.random.default_rng(seed)           # fit's batch orders
    orders = [rng.permutation(len(X)) for _ in range(epochs)]
    Ws_sk, bs_sk, losses = _sk_fit(Ws, bs, X.astype(np.float64), y, w, alpha, lr, batch,
                                   orders)
    tol = HAND_TOL[np.dtype(dtype)]
    dense = [layer for layer in net.layers if isinstance(layer, fastnn.Dense)]
    for layer, W, b in zip(dense, Ws_sk, bs_sk):
        np.testing.assert_allclose(layer.W, W, **tol)
        np.testing.assert_allclose(layer.b, b, **tol)
    if by_rows:
        expected = [sum(v * rows for v, rows, _ in e) / len(X) for e in losses]
    else:
        expected = [sum(v * tot for v, _, tot in e) / sum(tot for _, _, tot in e)
                    for e in losses]
    np.testing.assert_allclose(history.loss, expected, **tol)
    # the two rules differ with sample weights (so the test tells them apart)
    if weighted:
        other = [sum(v * (tot if by_rows else rows) for v, rows, tot in e)
                 / sum(tot if by_rows else rows for _, rows, tot in e) for e in losses]
        assert not np.allclose(history.loss, other, rtol=1e-6, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_penalty_decays_the_weights_not_the_biases(backend):
    """alpha huge, lr small, one full batch: b moves exactly as without the penalty
    (by the data gradient only), W by lr alpha / n W more."""
    X, y, _ = _problem()
    alpha, lr = 1e6, 1e-7
    nets = []
    for a in (0.0, alpha):
        net = _network(backend, np.float64)
        net.fit(X, y, loss=_penalized(a), optimizer=fastnn.SGD(lr=lr), epochs=1,
                shuffle=False)
        nets.append(net)
    start = _network(backend, np.float64)
    for plain, decayed, before in zip(*(
            [layer for layer in net.layers if isinstance(layer, fastnn.Dense)]
            for net in (*nets, start))):
        np.testing.assert_array_equal(decayed.b, plain.b)
        assert not np.array_equal(plain.b, before.b)          # b did move
        np.testing.assert_allclose(decayed.W, plain.W - lr * alpha / len(X) * before.W,
                                   rtol=1e-12, atol=1e-15)
        assert np.abs(decayed.W - plain.W).max() > 1e-3 * np.abs(before.W).max()


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_history_loss_has_the_penalty(backend):
    """One full batch: History.loss is the data loss plus 0.5 alpha sum ||W||^2 / n,
    W before the update."""
    X, y, _ = _problem()
    alpha = 0.7
    net = _network(backend, np.float64)
    Ws, _ = _dense_params(net)
    plain = _network(backend, np.float64)
    h0 = plain.fit(X, y, loss="cross_entropy", optimizer=fastnn.SGD(lr=0.1), epochs=1,
                   shuffle=False)
    h1 = net.fit(X, y, loss=_penalized(alpha), optimizer=fastnn.SGD(lr=0.1), epochs=1,
                 shuffle=False)
    penalty = 0.5 * alpha * sum(float(np.sum(W * W)) for W in Ws) / len(X)
    assert penalty > 0.01 * h0.loss[0]
    np.testing.assert_allclose(h1.loss[0], h0.loss[0] + penalty, rtol=1e-13)


# ---------------------------------------- the compiled trainer's two paths, the proof
def _native_fit(dtype, tiny, alpha, weighted, by_rows=False, epochs=4, batch=16,
                layers=None, lr=0.1, rows=50, optimizer=None):
    """A fit through the compiled trainer's own entry, on its tiny path or not: the
    parameters, the epoch sums and the dry-run count."""
    made = (layers() if layers is not None else
            [fastnn.Dense(5, 7), fastnn.ReLU(), fastnn.Dense(7, 3)])
    net = fastnn.Network(made, backend="cython", dtype=dtype, seed=4)
    X, y, w = _problem(dtype, n=rows, n_in=made[0].W.shape[0])
    loss = _penalized(alpha, by_rows)
    Xc, T = net._check_data(X, y, loss)
    opt = optimizer() if optimizer is not None else fastnn.SGD(lr=lr, momentum=0.9)
    trainer = training._make_trainer(net, Xc, T, loss, opt, batch, None,
                                     w if weighted else None)
    assert isinstance(trainer, training._NativeTrainer)
    trainer.trainer.tiny = tiny
    assert trainer.trainer.tiny == tiny
    rng = np.random.default_rng(1)
    orders = np.stack([rng.permutation(rows) for _ in range(epochs)])
    losses = np.zeros(epochs)
    trainer.run(orders, 0, 0, 10**6, losses)
    checks = trainer.trainer.exact_checks
    trainer.close()
    return [p.copy() for _, p, _ in net.parameters()], losses, checks


@pytest.mark.parametrize("by_rows", [False, True], ids=["by_weight", "by_rows"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_the_tiny_path_gives_the_general_paths_bits_with_the_penalty(dtype, weighted,
                                                                      by_rows, isa):
    tiny = _native_fit(dtype, True, 0.05, weighted, by_rows)
    general = _native_fit(dtype, False, 0.05, weighted, by_rows)
    plain = _native_fit(dtype, False, 0.0, weighted, by_rows)
    for a, b in zip(tiny[0], general[0]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(tiny[1], general[1])
    assert tiny[2] == general[2]
    # the penalty changed the numbers (so the comparison tests it)
    assert not np.array_equal(tiny[0][0], plain[0][0])
    assert (tiny[1] > plain[1]).all()


@pytest.fixture(params=["default"] if co is None else co.supported_isas())
def isa(request):
    """Every instruction set this machine runs, in turn (the default back after)."""
    if co is None:
        pytest.skip("the compiled backend is not built")
    before = co.get_isa()
    co.set_isa(request.param)
    yield request.param
    co.set_isa(before)


def _proved_layers():
    return [fastnn.Dense(40, 100), fastnn.Tanh(), fastnn.Dense(100, 3)]   # 4403 parameters


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_the_proof_covers_the_penalty(dtype):
    """A network the proof covers (>= 4096 parameters): with the penalty's term in the
    gradient bound, no dry run, as without it, and the same weights as a run of one
    batch per call (each proved from the bounds measured when its call starts)."""
    kw = dict(alpha=0.5, weighted=True, layers=_proved_layers, rows=64, batch=8, epochs=3,
              lr=0.05)
    params, losses, checks = _native_fit(dtype, False, **kw)
    assert checks == 0
    # batch by batch: the bounds measured again at each call's start
    X, y, w = _problem(dtype, n=64, n_in=40)
    net = fastnn.Network(_proved_layers(), backend="cython", dtype=dtype, seed=4)
    loss = _penalized(0.5)
    Xc, T = net._check_data(X, y, loss)
    trainer = training._make_trainer(net, Xc, T, loss, fastnn.SGD(lr=0.05, momentum=0.9), 8,
                                     None, w)
    rng = np.random.default_rng(1)
    orders = np.stack([rng.permutation(64) for _ in range(3)])
    each = np.zeros(3)
    epoch = start = 0
    while epoch < 3:
        epoch, start = trainer.run(orders, epoch, start, 1, each)
    assert trainer.trainer.exact_checks == 0
    trainer.close()
    for a, b in zip(params, [p for _, p, _ in net.parameters()]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(losses, each)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_a_penalty_that_blows_the_weights_up_is_refused_in_time(dtype):
    """lr alpha / n_b = 2.5: each step multiplies W by about -1.5 until it overflows
    (float32's W; float64's penalty, summed in double, first).  The proof must hand
    over to the dry run in time: one call leaves the finite weights of the last
    good batch, those of a run of one batch per call, and the proof carried most
    batches."""
    rows, batch, lr = 16, 4, 0.01
    alpha = 2.5 * batch / lr
    X, _, _ = _problem(dtype, n=rows, n_in=40)

    def make():
        net = fastnn.Network([fastnn.Dense(40, 110)], backend="cython", dtype=dtype,
                             seed=0)                              # 4510 parameters
        loss = fastnn.MSELoss()
        loss.l2_penalty = alpha
        Xc, T = net._check_data(X, np.zeros((rows, 110), dtype), loss)
        return net, training._make_trainer(net, Xc, T, loss, fastnn.SGD(lr=lr), batch, None)

    net_c, tr = make()
    good, epoch, start, losses = 0, 0, 0, np.zeros(100000)
    with pytest.raises(FloatingPointError):
        while True:
            epoch, start = tr.run(None, epoch, start, 1, losses)
            good += 1
    assert good >= 20
    tr.close()
    net_a, tr = make()
    with pytest.raises(FloatingPointError):
        tr.run(None, 0, 0, 10**9, np.zeros(100000))
    assert tr.trainer.exact_checks < good // 2
    tr.close()
    for (_, a, _), (_, c, _) in zip(net_a.parameters(), net_c.parameters()):
        assert np.isfinite(a).all()
        np.testing.assert_array_equal(a, c)


# --------------------------------------------- loss and gradients over a data set
def _flat_params(net):
    dense = [layer for layer in net.layers if isinstance(layer, fastnn.Dense)]
    return np.concatenate([layer.W.ravel() for layer in dense] +
                          [layer.b.ravel() for layer in dense])


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_loss_and_gradients_are_scikit_learns(backend, weighted):
    """The value and the gradients equal scikit-learn's _backprop over all rows, and
    finite differences of the value; the parameters are left as they were."""
    X, y, w = _problem()
    w = w if weighted else None
    alpha = 0.4
    net = _network(backend, np.float64)
    Ws, bs = _dense_params(net)
    before = _flat_params(net)
    value, grads = training.loss_and_gradients(net, X, y, _penalized(alpha), w)
    np.testing.assert_array_equal(_flat_params(net), before)
    expected, sk = _sk_loss_grad(Ws, bs, X, y, w, alpha)
    np.testing.assert_allclose(value, expected, rtol=1e-13)
    assert len(grads) == 2
    for (dW, db), (eW, eb) in zip(grads, sk):
        np.testing.assert_allclose(dW, eW, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(db, eb, rtol=1e-12, atol=1e-14)
    # finite differences of the value through the same object, every parameter
    computer = training._LossAndGradients(net, X, y, _penalized(alpha), w)
    if backend == "cython":
        assert computer._native is not None             # one C call per evaluation
    dense = [layer for layer in net.layers if isinstance(layer, fastnn.Dense)]
    for layer, (dW, db) in zip(dense, grads):
        for param, grad in ((layer.W, dW), (layer.b, db)):
            fd = fd_grad(lambda: computer.value_and_grad()[0], param)
            np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)
    computer.close()
    np.testing.assert_array_equal(_flat_params(net), before)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_packed_calls_take_and_give_scikit_learns_layout(backend, dtype):
    """value_and_packed_grad(params): the parameters written in place (scikit-learn's
    _pack order: every W, then every b), the gradient packed the same way, float64;
    the same answer on repeated calls and on both backends."""
    X, y, w = _problem(dtype)
    alpha = 0.2
    net = _network(backend, dtype)
    dense = [layer for layer in net.layers if isinstance(layer, fastnn.Dense)]
    arrays = [layer.W for layer in dense] + [layer.b for layer in dense]
    computer = training._LossAndGradients(net, X, y, _penalized(alpha), w)
    rng = np.random.default_rng(5)
    params = rng.uniform(-0.5, 0.5, _flat_params(net).size)
    value, packed = computer.value_and_packed_grad(params)
    assert packed.dtype == np.float64 and packed.shape == params.shape
    assert all(a is b for a, b in zip(arrays, [layer.W for layer in dense] +
                                      [layer.b for layer in dense]))   # in place
    np.testing.assert_allclose(_flat_params(net), params.astype(dtype))
    Ws = [layer.W.astype(np.float64) for layer in dense]
    bs = [layer.b.astype(np.float64) for layer in dense]
    expected, sk = _sk_loss_grad(Ws, bs, X.astype(np.float64), y, w, alpha)
    flat = np.concatenate([g.ravel() for g, _ in sk] + [g.ravel() for _, g in sk])
    tol = HAND_TOL[np.dtype(dtype)]
    np.testing.assert_allclose(value, expected, **tol)
    np.testing.assert_allclose(packed, flat, **tol)
    again = computer.value_and_packed_grad(params)
    assert again[0] == value
    np.testing.assert_array_equal(again[1], packed)
    computer.close()
    with pytest.raises(ValueError, match="1-D array of"):
        computer.set_params(params[:-1])


def test_a_non_finite_loss_and_gradient_raises():
    X, y, _ = _problem()
    for backend in BACKENDS:
        net = _network(backend, np.float64)
        net.layers[0].W[0, 0] = np.inf
        with pytest.raises(FloatingPointError):
            training.loss_and_gradients(net, X, y, _penalized(0.1))


# ------------------------------------------------------------------ the kernel
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_the_l2_penalty_kernel_matches_the_reference(dtype):
    from fastnn.backends.numpy_ops import NumpyOps
    co = pytest.importorskip("fastnn.backends.cython_ops")
    rng = np.random.default_rng(0)
    shapes = [(1, 1), (7, 13), (300, 257), (0, 3)]
    Ws = [rng.standard_normal(s).astype(dtype) for s in shapes]
    g0 = [rng.standard_normal(s).astype(dtype) for s in shapes]
    ref, comp = [g.copy() for g in g0], [g.copy() for g in g0]
    copies = [W.copy() for W in Ws]
    p_ref = NumpyOps().l2_penalty(Ws, ref, 0.3, 17.5)
    p_c = co.CythonOps().l2_penalty(Ws, comp, 0.3, 17.5)
    for a, b, g in zip(ref, comp, g0):
        np.testing.assert_array_equal(a, b)      # the same rounding of c and c W
        assert a.size == 0 or not np.array_equal(a, g)
    for W, c in zip(Ws, copies):
        np.testing.assert_array_equal(W, c)      # W is read only
    expected = 0.5 * 0.3 * sum(float(np.sum(W.astype(np.float64) ** 2)) for W in Ws) / 17.5
    np.testing.assert_allclose(p_ref, expected, rtol=1e-13)
    np.testing.assert_allclose(p_c, expected, rtol=1e-13)
    for ops in (NumpyOps(), co.CythonOps()):
        with pytest.raises(ZeroWeightError):
            ops.l2_penalty(Ws, [g.copy() for g in g0], 0.3, 0.0)
        with pytest.raises(ValueError, match="alpha"):
            ops.l2_penalty(Ws, [g.copy() for g in g0], -1.0, 1.0)
        with pytest.raises(TypeError, match="weight 0"):
            ops.l2_penalty([Ws[1]], [g0[0].copy()], 0.3, 1.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_bad_l2_penalty_is_refused(backend):
    X, y, _ = _problem()
    for bad in (-0.1, float("nan"), float("inf")):
        net = _network(backend, np.float64)
        with pytest.raises(ValueError, match="l2_penalty"):
            net.fit(X, y, loss=_penalized(bad), optimizer=fastnn.SGD(lr=0.1))


def test_a_user_loss_gets_the_reference_loss_and_gradients_with_a_warning():
    """A Loss whose compute is user code: the reference runs it (on the compiled
    backend too, saying so), with the penalty, and gives the built-in's numbers."""
    class MyCrossEntropy(fastnn.CrossEntropyLoss):
        def compute(self, ops, pred, target, **kwargs):
            return super().compute(ops, pred, target, **kwargs)

    X, y, w = _problem()
    mine = MyCrossEntropy()
    mine.l2_penalty = 0.3
    net = _network("cython", np.float64)
    with pytest.warns(UserWarning, match="MyCrossEntropy.compute is user code"):
        computer = training._LossAndGradients(net, X, y, mine, w)
    assert computer._native is None
    value, grads = computer.value_and_grad()
    expected, sk = _sk_loss_grad(*_dense_params(net), X, y, w, 0.3)
    np.testing.assert_allclose(value, expected, rtol=1e-13)
    for (dW, db), (eW, eb) in zip(grads, sk):
        np.testing.assert_allclose(dW, eW, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(db, eb, rtol=1e-12, atol=1e-14)


# ------------------------------------------- against scikit-learn's estimator itself
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_scikit_learns_multiclass_model_with_alpha(backend, solver, weighted):
    """MLPClassifier(alpha=0.05) on 3 classes, with and without sample weights: a
    Network with scikit-learn's initial draws and batch orders (fastnn.sklearn's
    pieces), its optimizer rows, and this trainer's penalty and epoch loss ends with
    scikit-learn's coefs_, intercepts_ and loss_curve_ (1e-9); L-BFGS, scipy's
    minimize over ``_LossAndGradients``, with its coefs_ and loss_ (1e-7)."""
    sksk = pytest.importorskip("fastnn.sklearn")
    scipy_optimize = pytest.importorskip("scipy.optimize")
    import warnings

    from sklearn.neural_network import MLPClassifier
    from sklearn.utils import check_random_state

    from fastnn.optimizers import _SklearnAdam, _SklearnSGD
    rng = np.random.default_rng(11)
    n, alpha, epochs, batch = 90, 0.05, 10, 16
    X = rng.standard_normal((n, 6))
    y = rng.integers(0, 3, n)
    w = rng.uniform(0.2, 3.0, n) if weighted else None
    lr = 1e-2 if solver == "adam" else 0.05
    est = MLPClassifier(hidden_layer_sizes=(7,), activation="tanh", solver=solver,
                        learning_rate_init=lr, alpha=alpha, batch_size=batch,
                        max_iter=epochs, tol=0.0, n_iter_no_change=10**6, random_state=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # ConvergenceWarning: max_iter is small
        est.fit(X, y, sample_weight=w)
    rs = check_random_state(4)
    init = sksk._sklearn_initial_weights(rs, [6, 7, 3], "tanh")
    net = fastnn.Network([fastnn.Dense(6, 7), fastnn.Tanh(), fastnn.Dense(7, 3)],
                         backend=backend, seed=0)
    dense = [net.layers[0], net.layers[2]]
    for layer, (W, b) in zip(dense, init):
        layer.W, layer.b = W, b
    loss = _penalized(alpha, by_rows=True)
    if solver == "lbfgs":
        computer = training._LossAndGradients(net, X, y, loss, w)
        x0 = _flat_params(net)
        result = scipy_optimize.minimize(computer.value_and_packed_grad, x0,
                                         method="L-BFGS-B", jac=True,
                                         options={"maxfun": 15000, "maxiter": epochs,
                                                  "gtol": 0.0})
        computer.set_params(result.x)
        computer.close()
        np.testing.assert_allclose(result.fun, est.loss_, rtol=1e-7)
        tol = {"rtol": 1e-7, "atol": 1e-9}
    else:
        net._shuffle_rng = sksk._SklearnOrder(rs, n)
        opt = (_SklearnAdam(lr=lr) if solver == "adam"
               else _SklearnSGD(lr=lr, momentum=0.9, nesterov=True))
        curve = []
        for _ in range(epochs):
            curve.append(net.fit(X, y, loss=loss, optimizer=opt, epochs=1, batch_size=batch,
                                 sample_weight=w).loss[0])
        np.testing.assert_allclose(curve, est.loss_curve_, rtol=1e-9)
        tol = {"rtol": 1e-9, "atol": 1e-12}
    worst = 0.0
    for layer, W, b in zip(dense, est.coefs_, est.intercepts_):
        np.testing.assert_allclose(layer.W, W, **tol)
        np.testing.assert_allclose(layer.b, b, **tol)
        worst = max(worst, float(np.max(np.abs(layer.W - W) / np.abs(W))),
                    float(np.max(np.abs(layer.b - b) / np.abs(b))))
    print(f"{backend} {solver} weighted={weighted}: largest relative difference of "
          f"coefs_/intercepts_ {worst:.2e}")
