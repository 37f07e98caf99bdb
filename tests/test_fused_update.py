"""The native trainer's fused update: each dW block is applied as soon as the GEMM finishes it.

Why it is built this way: a fit's trainer that keeps its gradients to itself
(``fit`` gives it no ``dW``) runs a large network's update inside the dW
product -- every finished block of dW gets the L2 term and the clipping, and
the optimizer's pass over its rows of W, while it is still in cache -- so no
whole dW is ever stored (csrc/train_impl.h, ``fused_pass``).  It must change
nothing but the memory and the time: the GEMM's blocks must carry the bits of
the whole product, the fused update must give the bits of the unfused one
(the trainer given gradient arrays) for every optimizer, with the L2 penalty
and clipping, on the proved batches and on those that take the dry run, and
a batch whose update would not be finite must still change nothing.
"""

import numpy as np
import pytest

import fastnn
from fastnn.training import _stage

co = pytest.importorskip("fastnn.backends.cython_ops",
                         reason="the compiled backend is not built")

DTYPES = (np.float32, np.float64)


# ------------------------------------------------------------------ GEMM blocks
#: (m, n, k): direct-path products (a few panels, one, a single row or column),
#: packed ones (several row and column blocks, more than one k slice), and k = 0
SHAPES = [(7, 5, 3), (300, 200, 9), (1, 40, 17), (40, 1, 17), (64, 10, 1),
          (784, 256, 64), (300, 1100, 700), (97, 33, 1300), (200, 130, 0)]


@pytest.mark.parametrize("isa", co.supported_isas())
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_the_blocks_carry_the_bits_of_the_whole_product(isa, dtype, trans_a, trans_b, m, n,
                                                        k):
    rng = np.random.default_rng(m * 7 + n * 3 + k)
    A = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    B = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    before = co.get_isa()
    co.set_isa(isa)
    try:
        C, blocks, largest = co._gemm_blocks(A, B, trans_a, trans_b)
        whole = co.CythonOps().gemm(A, B, trans_a=trans_a, trans_b=trans_b)
    finally:
        co.set_isa(before)
    np.testing.assert_array_equal(C, whole)
    assert blocks >= 1
    if m * n > 200_000:                # never all of C at once
        assert largest < m * n // 4, (blocks, largest)


def test_the_blocks_refuse_nothing_but_report_their_status():
    with pytest.raises(ValueError, match="op\\(A\\) is 3 x 4"):
        co._gemm_blocks(np.ones((3, 4)), np.ones((5, 2)))


# ------------------------------------------------------------ the fused update
#: 64-96-48-10: 11,386 parameters, enough for every optimizer's proof
SIZES = (64, 96, 48, 10)

OPTIMIZERS = {
    "sgd": lambda: fastnn.SGD(lr=0.05),
    "sgd-momentum": lambda: fastnn.SGD(lr=0.05, momentum=0.9, nesterov=True,
                                       weight_decay=1e-3),
    "adam": lambda: fastnn.Adam(lr=0.01),
    "adamw-amsgrad": lambda: fastnn.AdamW(lr=0.01, amsgrad=True),
    "rmsprop": lambda: fastnn.RMSprop(lr=0.01, momentum=0.5),
    "adagrad": lambda: fastnn.Adagrad(lr=0.05),
}


def _network(dtype):
    layers = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        layers += [fastnn.Dense(n_in, n_out), fastnn.ReLU()]
    return fastnn.Network(layers[:-1], seed=3, backend="cython", dtype=dtype)


def _data(dtype, n=203):
    rng = np.random.default_rng(1)
    return (rng.standard_normal((n, SIZES[0])).astype(dtype),
            rng.integers(0, SIZES[-1], n))


def _trainer(net, optimizer, X, y, gradients, batch=32, clip_value=None, l2=0.0):
    """The native trainer, given the Dense layers' gradient arrays or not."""
    if gradients:
        for layer in net.layers:
            if isinstance(layer, fastnn.Dense):
                layer.dW, layer.db = np.zeros_like(layer.W), np.zeros_like(layer.b)
    spec, states = optimizer.native_spec(net)
    spec = {**spec, "clip_grad_value": clip_value, "l2_penalty": l2}
    stages = [_stage(net, layer, act, states, gradients) for layer, act in net._plan]
    return net.ops.make_trainer(stages, "cross_entropy", "mean", spec, X, y, batch), states


def _train(dtype, name, gradients, calls=(1, 3, 100), **kw):
    """Weights, optimizer state, per-epoch losses and the trainer's counts after
    runs of ``calls`` batches each."""
    X, y = _data(dtype)
    net = _network(dtype)
    trainer, states = _trainer(net, OPTIMIZERS[name](), X, y, gradients, **kw)
    order = np.random.default_rng(2).permutation(len(X))[None]
    losses = np.zeros(4)
    epoch = start = 0
    fused = []
    for max_batches in calls:
        orders = np.concatenate([order] * 4)
        epoch, start = trainer.run(orders, epoch, start, max_batches, losses)
        fused.append(trainer.fused)
    result = ([p.copy() for _, p, _ in net.parameters()],
              [s.copy() for arrays in states.values() for s in arrays if s is not None],
              losses.copy(), trainer.exact_checks, fused, (epoch, start))
    trainer.close()
    return result


def _same(a, b):
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert len(a) == len(b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", OPTIMIZERS)
@pytest.mark.parametrize("extra", [{}, {"l2": 0.3}, {"clip_value": 0.02},
                                   {"l2": 0.3, "clip_value": 0.02}],
                         ids=["plain", "l2", "clip", "l2+clip"])
def test_the_fused_update_has_the_bits_of_the_unfused_one(dtype, name, extra):
    fused = _train(dtype, name, gradients=False, **extra)
    whole = _train(dtype, name, gradients=True, **extra)
    assert fused[4] == [True] * 3 and whole[4] == [False] * 3
    _same(fused[0], whole[0])               # weights
    _same(fused[1], whole[1])               # optimizer state
    np.testing.assert_array_equal(fused[2], whole[2])
    assert fused[3] == whole[3]             # the same batches took the dry run
    assert fused[5] == whole[5]


def test_a_fit_keeps_its_gradients_to_itself():
    X, y = _data(np.float32)
    net = _network(np.float32)
    net.fit(X, y, loss="cross_entropy", optimizer=fastnn.Adam(lr=0.01), epochs=2,
            batch_size=32, seed=0)
    assert all(layer.dW is None and layer.db is None
               for layer in net.layers if isinstance(layer, fastnn.Dense))


def test_clipping_by_norm_and_a_small_network_take_whole_gradients():
    X, y = _data(np.float64)
    net = _network(np.float64)
    trainer, _ = _trainer(net, fastnn.Adam(lr=0.01), X, y, gradients=False)
    trainer.run(None, 0, 0, 2, np.zeros(1))
    assert trainer.fused
    trainer.close()
    net = _network(np.float64)
    spec, states = fastnn.Adam(lr=0.01).native_spec(net)
    stages = [_stage(net, layer, act, states, False) for layer, act in net._plan]
    trainer = net.ops.make_trainer(stages, "cross_entropy", "mean",
                                   {**spec, "clip_grad_norm": 1.0}, X, y, 32)
    trainer.run(None, 0, 0, 2, np.zeros(1))
    assert not trainer.fused              # the norm needs every gradient first
    trainer.close()
    small = fastnn.Network([fastnn.Dense(4, 3)], backend="cython", seed=0)
    spec, states = fastnn.SGD(lr=0.1).native_spec(small)
    stages = [_stage(small, layer, act, states, False) for layer, act in small._plan]
    trainer = small.ops.make_trainer(stages, "mse", "mean", spec, np.ones((8, 4)),
                                     np.zeros((8, 3)), 4)
    trainer.run(None, 0, 0, 2, np.zeros(1))
    assert not trainer.fused              # 15 parameters: the dry run every batch
    trainer.close()


def _heavy(dtype):
    """Rows 40..63 weigh so much that batch 1's update overflows (the loss a sum, not
    a mean); batch 0's rows so little that its update stays ordinary."""
    X, y = _data(dtype)
    small, heavy, lr = (1e-4, 1e37, 1e4) if dtype == np.float32 else (1e-30, 1e290, 1e30)
    w = np.ones(len(X))
    w[:32], w[40:64] = small, heavy
    net = _network(dtype)
    spec, states = fastnn.SGD(lr=lr, momentum=0.9).native_spec(net)
    stages = [_stage(net, layer, act, states, False) for layer, act in net._plan]
    trainer = net.ops.make_trainer(stages, "cross_entropy", "sum", spec, X, y, 32,
                                   sample_weight=w)
    return net, trainer, states


def _snapshot(net, states):
    return ([p.copy() for _, p, _ in net.parameters()],
            [s.copy() for arrays in states.values() for s in arrays if s is not None])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("proved", [False, True], ids=["first-of-its-run", "after-a-proof"])
def test_a_fused_batch_that_would_overflow_changes_nothing(dtype, proved):
    """The dry pass (a second pass of the dW blocks) catches it: the weights and
    the state are those before the batch, as the unfused update leaves them."""
    net, trainer, states = _heavy(dtype)
    losses = np.zeros(1)
    if proved:          # batch 0 applied in the same run, then batch 1 refused
        twin, once, twin_states = _heavy(dtype)
        once.run(None, 0, 0, 1, losses.copy())
        expected = _snapshot(twin, twin_states)
        once.close()
    else:               # the run starts at batch 1
        expected = _snapshot(net, states)
    with pytest.raises(FloatingPointError, match="an update became NaN or infinite"):
        trainer.run(None, 0, 0 if proved else 32, 100, losses)
    assert trainer.fused
    assert trainer.exact_checks == 1
    got = _snapshot(net, states)
    _same(got[0], expected[0])
    _same(got[1], expected[1])
    trainer.close()


def test_the_trainer_wants_every_dense_stages_gradients_or_none():
    X, y = _data(np.float64)
    net = _network(np.float64)
    spec, states = fastnn.SGD(lr=0.1).native_spec(net)
    stages = [_stage(net, layer, act, states, False) for layer, act in net._plan]
    net.layers[0].dW, net.layers[0].db = np.zeros((64, 96)), np.zeros(96)
    stages[0] = _stage(net, net.layers[0], net._plan[0][1], states, True)
    with pytest.raises(ValueError, match="give every dense stage's gradients, or none"):
        net.ops.make_trainer(stages, "cross_entropy", "mean", spec, X, y, 32)
    stages = [_stage(net, layer, act, states, False) for layer, act in net._plan]
    trainer = net.ops.make_trainer(stages, "cross_entropy", "mean", spec, X, y, 32)
    with pytest.raises(ValueError, match="without the dense stages' dW"):
        trainer.gradient()
    trainer.close()
