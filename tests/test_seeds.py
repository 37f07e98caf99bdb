"""The tutorials in seeds/ (000-004): their networks and numbers, reproduced with fastnn.

Each test builds the tutorial's network with fastnn's public API and checks
either a number the tutorial prints or the weights the tutorial's own code
(transcribed in plain NumPy below) reaches from the same starting point.

Where a tutorial's exact set-up does not do what the test wants to show, the
test says so and states the honest equivalent (see the XOR and student tests).
"""

import numpy as np
import pytest

import fastnn
from fastnn import SGD, Dense, MSELoss, Network, Perceptron, Sigmoid


def _sigmoid(x):
    # the tutorials' sigmoid, verbatim
    return 1 / (1 + np.exp(-x))


# ------------------------------------------------------------------ seed 002
def test_seed002_neuron(backend):
    # w = [0, 1], b = 4, x = [2, 3]  ->  f(7) = 0.9990889488055994 (printed by the tutorial)
    net = Network([Dense(2, 1), Sigmoid()], backend=backend, seed=0)
    net.layers[0].W = np.array([[0], [1]])          # integer arrays, as in the tutorial
    net.layers[0].b = np.array([4])
    out = net.predict(np.array([[2, 3]]))
    assert out.shape == (1, 1)
    assert out.dtype == np.float64
    assert abs(out[0, 0] - 0.9990889488055994) <= 1e-15


def test_seed002_feedforward_2_2_1(backend):
    # every neuron has w = [0, 1] and b = 0: in fastnn's X @ W layout a neuron's
    # weights are a column of W.  h1 = h2 = f(3) = 0.9526; o1 = f(h2) = 0.7216325609518421
    net = Network([Dense(2, 2), Sigmoid(), Dense(2, 1), Sigmoid()], backend=backend, seed=0)
    net.layers[0].W = [[0, 0], [1, 1]]
    net.layers[0].b = [0, 0]
    net.layers[2].W = [[0], [1]]
    net.layers[2].b = [0]
    out = net.predict([[2, 3]])
    assert abs(out[0, 0] - 0.7216325609518421) <= 1e-15
    hidden = Network([Dense(2, 2), Sigmoid()], backend=backend, seed=0)
    hidden.layers[0].W = [[0, 0], [1, 1]]
    hidden.layers[0].b = [0, 0]
    np.testing.assert_allclose(hidden.predict([[2, 3]]), [[0.9526, 0.9526]], atol=5e-5)


def test_seed002_mse_example():
    # mse_loss([1, 0, 0, 1], [0, 0, 0, 0]) -> 0.5
    assert MSELoss()(np.array([0, 0, 0, 0]), np.array([1, 0, 0, 1])) == 0.5


def test_seed002_alice_partial_derivative(backend):
    # All weights 1, biases 0, only Alice (x = [-2, -1], y = 1):
    # h1 = h2 = f(-3) = 0.0474, o1 = f(0.0948) = 0.524, dL/dw1 = 0.0214.
    net = Network([Dense(2, 2), Sigmoid(), Dense(2, 1), Sigmoid()], backend=backend, seed=0)
    net.layers[0].W = np.ones((2, 2))
    net.layers[0].b = np.zeros(2)
    net.layers[2].W = np.ones((2, 1))
    net.layers[2].b = np.zeros(1)
    x = np.array([[-2.0, -1.0]])
    out = net.forward(x)
    assert round(float(out[0, 0]), 3) == 0.524
    loss, grad = MSELoss().compute(net.ops, out, np.array([[1.0]]))
    net.backward(grad)
    dw1 = net.layers[0].dW[0, 0]          # w1: x1 -> h1
    # the tutorial multiplies factors rounded to 3 digits (-0.952 * 0.249 * -0.0904);
    # the exact value is 0.021469...
    assert abs(dw1 - 0.0214) < 1e-4
    # the tutorial's chain rule, written out
    h = _sigmoid(-3.0)
    y_pred = _sigmoid(2 * h)
    d_L_d_ypred = -2 * (1 - y_pred)
    d_ypred_d_h1 = 1 * y_pred * (1 - y_pred)
    d_h1_d_w1 = -2 * h * (1 - h)
    np.testing.assert_allclose(dw1, d_L_d_ypred * d_ypred_d_h1 * d_h1_d_w1, rtol=1e-13)
    assert loss == pytest.approx((1 - y_pred) ** 2, rel=1e-14)


def _seed002_train(params, data, all_y_trues, epochs, learn_rate=0.1):
    """Seed 002's OurNeuralNetwork.train, verbatim apart from taking its weights as a dict."""
    w1, w2, w3, w4, w5, w6, b1, b2, b3 = (params[k] for k in
                                          ("w1", "w2", "w3", "w4", "w5", "w6", "b1", "b2", "b3"))

    def deriv_sigmoid(x):
        fx = _sigmoid(x)
        return fx * (1 - fx)

    for _ in range(epochs):
        for x, y_true in zip(data, all_y_trues):
            sum_h1 = w1 * x[0] + w2 * x[1] + b1
            h1 = _sigmoid(sum_h1)
            sum_h2 = w3 * x[0] + w4 * x[1] + b2
            h2 = _sigmoid(sum_h2)
            sum_o1 = w5 * h1 + w6 * h2 + b3
            y_pred = _sigmoid(sum_o1)
            d_L_d_ypred = -2 * (y_true - y_pred)
            d_ypred_d_w5 = h1 * deriv_sigmoid(sum_o1)
            d_ypred_d_w6 = h2 * deriv_sigmoid(sum_o1)
            d_ypred_d_b3 = deriv_sigmoid(sum_o1)
            d_ypred_d_h1 = w5 * deriv_sigmoid(sum_o1)
            d_ypred_d_h2 = w6 * deriv_sigmoid(sum_o1)
            d_h1_d_w1 = x[0] * deriv_sigmoid(sum_h1)
            d_h1_d_w2 = x[1] * deriv_sigmoid(sum_h1)
            d_h1_d_b1 = deriv_sigmoid(sum_h1)
            d_h2_d_w3 = x[0] * deriv_sigmoid(sum_h2)
            d_h2_d_w4 = x[1] * deriv_sigmoid(sum_h2)
            d_h2_d_b2 = deriv_sigmoid(sum_h2)
            w1 -= learn_rate * d_L_d_ypred * d_ypred_d_h1 * d_h1_d_w1
            w2 -= learn_rate * d_L_d_ypred * d_ypred_d_h1 * d_h1_d_w2
            b1 -= learn_rate * d_L_d_ypred * d_ypred_d_h1 * d_h1_d_b1
            w3 -= learn_rate * d_L_d_ypred * d_ypred_d_h2 * d_h2_d_w3
            w4 -= learn_rate * d_L_d_ypred * d_ypred_d_h2 * d_h2_d_w4
            b2 -= learn_rate * d_L_d_ypred * d_ypred_d_h2 * d_h2_d_b2
            w5 -= learn_rate * d_L_d_ypred * d_ypred_d_w5
            w6 -= learn_rate * d_L_d_ypred * d_ypred_d_w6
            b3 -= learn_rate * d_L_d_ypred * d_ypred_d_b3
    return dict(w1=w1, w2=w2, w3=w3, w4=w4, w5=w5, w6=w6, b1=b1, b2=b2, b3=b3)


def _gender_network(backend, seed):
    # seed 002: 2-2-1 sigmoid, every weight and bias ~ N(0, 1)
    return Network([Dense(2, 2, init="normal"), Sigmoid(), Dense(2, 1, init="normal"), Sigmoid()],
                   backend=backend, seed=seed)


def test_seed002_sgd_matches_tutorial_code(backend):
    # 3 epochs of the tutorial's per-sample SGD vs fit(batch_size=1, shuffle=False)
    X, y = fastnn.datasets.gender()
    net = _gender_network(backend, seed=7)
    d1, d2 = net.layers[0], net.layers[2]
    start = dict(w1=d1.W[0, 0], w2=d1.W[1, 0], w3=d1.W[0, 1], w4=d1.W[1, 1],
                 w5=d2.W[0, 0], w6=d2.W[1, 0], b1=d1.b[0], b2=d1.b[1], b3=d2.b[0])
    start = {k: float(v) for k, v in start.items()}
    want = _seed002_train(start, X, y, epochs=3)
    net.fit(X, y, loss="mse", optimizer=SGD(lr=0.1), epochs=3, batch_size=1, shuffle=False)
    got = dict(w1=d1.W[0, 0], w2=d1.W[1, 0], w3=d1.W[0, 1], w4=d1.W[1, 1],
               w5=d2.W[0, 0], w6=d2.W[1, 0], b1=d1.b[0], b2=d1.b[1], b3=d2.b[0])
    for key in want:
        assert want[key] != start[key]
        np.testing.assert_allclose(got[key], want[key], rtol=1e-12, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_seed002_gender_network_predicts_emily_and_frank(backend, seed):
    X, y = fastnn.datasets.gender()
    X_new, names, expected = fastnn.datasets.gender_new_people()
    assert names == ("Emily", "Frank")
    net = _gender_network(backend, seed)
    history = net.fit(X, y, loss="mse", optimizer=SGD(lr=0.1), epochs=1000, batch_size=1,
                      shuffle=False)
    assert history.loss[-1] < history.loss[0]
    emily, frank = net.predict(X_new)[:, 0]
    assert emily > 0.5, f"Emily (F) predicted {emily:.3f}"
    assert frank < 0.5, f"Frank (M) predicted {frank:.3f}"
    np.testing.assert_array_equal(net.predict(X)[:, 0] > 0.5, y > 0.5)


# ------------------------------------------------------------ seeds 001 / 004
def _seed001_train(W1, b1, W2, b2, X, y, epochs, learning_rate):
    """Seed 001's NeuralNetwork.forward/backward (full batch), verbatim."""
    W1, b1, W2, b2 = (a.copy() for a in (W1, b1.reshape(1, -1), W2, b2.reshape(1, -1)))
    for _ in range(epochs):
        a1 = _sigmoid(np.dot(X, W1) + b1)
        a2 = _sigmoid(np.dot(a1, W2) + b2)
        m = X.shape[0]
        output_delta = (a2 - y) * (a2 * (1 - a2))
        hidden_delta = output_delta.dot(W2.T) * (a1 * (1 - a1))
        W2 -= learning_rate * a1.T.dot(output_delta) / m
        b2 -= learning_rate * np.sum(output_delta, axis=0, keepdims=True) / m
        W1 -= learning_rate * X.T.dot(hidden_delta) / m
        b1 -= learning_rate * np.sum(hidden_delta, axis=0, keepdims=True) / m
    return W1, b1[0], W2, b2[0]


def _xor_network(backend, seed, init):
    return Network([Dense(2, 4, init=init), Sigmoid(), Dense(4, 1, init=init), Sigmoid()],
                   backend=backend, seed=seed)


def test_seed001_xor_training_matches_tutorial_code(backend):
    # Seed 001's backward omits MSE's factor 2: its learning_rate=1.0 is fastnn's
    # MSE (mean) with SGD lr=0.5.  Its init is W ~ 0.01 N(0, 1), b = 0 ("small_normal").
    # With that init the tutorial itself sits at the symmetric saddle (outputs ~0.5)
    # after its 1000 epochs; fastnn must reproduce that trajectory, not "fix" it.
    X, y = fastnn.datasets.xor()
    net = _xor_network(backend, seed=3, init="small_normal")
    start = [a.copy() for a in (net.layers[0].W, net.layers[0].b, net.layers[2].W,
                                net.layers[2].b)]
    want = _seed001_train(*start, X, y, epochs=1000, learning_rate=1.0)
    net.fit(X, y, loss="mse", optimizer=SGD(lr=0.5), epochs=1000, shuffle=False)
    got = (net.layers[0].W, net.layers[0].b, net.layers[2].W, net.layers[2].b)
    for g, w, s in zip(got, want, start):
        assert not np.array_equal(w, s)
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(net.predict(X), 0.5, atol=0.01)   # the tutorial's saddle


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_xor_learned_by_2_4_1_sigmoid(backend, seed):
    # Seed 001/004's 2-4-1 sigmoid network, MSE, full-batch SGD with seed 001's step
    # (lr 1.0 without the factor 2 = MSE-mean lr 0.5).  The initialisation is seed
    # 002's N(0, 1) (init="normal"), since seed 001's 0.01 N(0, 1) stays at the
    # saddle (see the test above); 2000 epochs give every seed a clear margin.
    X, y = fastnn.datasets.xor()
    net = _xor_network(backend, seed, init="normal")
    net.fit(X, y, loss="mse", optimizer=SGD(lr=0.5), epochs=2000, batch_size=None)
    pred = net.predict(X)[:, 0]
    np.testing.assert_array_equal(pred > 0.5, y[:, 0] > 0.5, err_msg=f"XOR predictions {pred}")
    assert np.all(np.abs(pred - y[:, 0]) < 0.3), pred


@pytest.mark.parametrize("gate", ["and_gate", "or_gate"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_seed001_perceptron_learns_gate(backend, gate, seed):
    X, y = getattr(fastnn.datasets, gate)()
    p = Perceptron(2, seed=seed, backend=backend)
    mistakes = p.fit(X, y)
    assert mistakes[-1] == 0
    np.testing.assert_array_equal(p.predict(X), y.astype(np.int64))
    for x, target in zip(X, y):
        assert p.forward(x) == int(target)


# ---------------------------------------------------------------- seed 003
def test_seed003_bias_free_sum_of_squares_matches_tutorial_code(backend):
    # Seed 003: sigmoid layers without biases, sum-of-squares loss, weights += d_weights
    # (i.e. SGD lr=1 on MSE with reduction="sum").  The code below is the article's
    # backprop (its data and code are not in the excerpt; this is the article's XOR-like table).
    X = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=float)
    y = np.array([[0], [1], [1], [0]], dtype=float)
    net = Network([Dense(3, 4, bias=False), Sigmoid(), Dense(4, 1, bias=False), Sigmoid()],
                  backend=backend, seed=11)
    w1, w2 = net.layers[0].W.copy(), net.layers[2].W.copy()
    for _ in range(20):
        layer1 = _sigmoid(np.dot(X, w1))
        output = _sigmoid(np.dot(layer1, w2))
        d_w2 = np.dot(layer1.T, (2 * (y - output) * output * (1 - output)))
        d_w1 = np.dot(X.T, (np.dot(2 * (y - output) * output * (1 - output), w2.T)
                            * layer1 * (1 - layer1)))
        w1 += d_w1
        w2 += d_w2
    net.fit(X, y, loss=MSELoss(reduction="sum"), optimizer=SGD(lr=1.0), epochs=20,
            shuffle=False)
    assert net.layers[0].b is None
    np.testing.assert_allclose(net.layers[0].W, w1, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(net.layers[2].W, w2, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- seed 000
def test_seed000_student_training_matches_transcription(backend):
    # Seed 000's PyTorch loop: nn.Linear(2, 1) + Sigmoid, MSELoss (mean), SGD lr=0.1,
    # full batch, 100 epochs -- its gradient written out in NumPy.
    X, y = fastnn.datasets.student_pass()
    net = Network([Dense(2, 1), Sigmoid()], backend=backend, seed=4)
    W, b = net.layers[0].W.copy(), net.layers[0].b.copy()
    for _ in range(100):
        p = _sigmoid(X @ W + b)
        dz = 2 * (p - y) / y.size * p * (1 - p)
        W -= 0.1 * X.T @ dz
        b -= 0.1 * dz.sum(axis=0)
    net.fit(X, y, loss="mse", optimizer=SGD(lr=0.1), epochs=100, shuffle=False)
    np.testing.assert_allclose(net.layers[0].W, W, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(net.layers[0].b, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_seed000_student_predicts_pass(backend, seed):
    # The inputs (5, 7), (10, 6) are large, so a wide random init can start deep in
    # the sigmoid's flat tail and stay there for 100 epochs (the default Xavier init
    # does for some seeds, and so does PyTorch's own nn.Linear init for some seeds).
    # init="small_normal" starts at z ~ 0 where the gradient is largest.
    X, y = fastnn.datasets.student_pass()
    net = Network([Dense(2, 1, init="small_normal"), Sigmoid()], backend=backend, seed=seed)
    net.fit(X, y, loss="mse", optimizer=SGD(lr=0.1), epochs=100)
    assert net.predict([[5.0, 7.0]])[0, 0] > 0.5
    assert net.predict(np.array([5.0, 7.0]).reshape(1, 2))[0, 0] > 0.5
