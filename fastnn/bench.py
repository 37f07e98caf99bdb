"""Benchmarks of the training loop: ``python -m fastnn bench``.

Why it is built this way: this machine is shared and noisy, so a speed claim
is a *ratio measured in one run*: every round times each trainer once, in
alternation (tutorial, numpy, cython, torch, tutorial, ...), and the table
reports medians over rounds.  Each trainer trains for a number of epochs
calibrated to take about the same wall time, and throughput is samples per
second.  The baseline a user migrates from is the "tutorial" column: the
plain NumPy loop of the tutorials (``TutorialMLP``, no checks), the same
network, data and formulas, so ``cython / tutorial`` is the speed-up a user
of the tutorials gets.  PyTorch, when installed, runs in a child process (so
its threads and allocator do not disturb ours) that takes one command per
round over a pipe.  Each timed call starts after a 0.1 s rest, so that the
threads of the trainer before it (OpenBLAS's spin for a while after a
product) are idle and do not take the two cores from it.  How close the
compiled backend runs to the machine is
the "% of peak" column: its FLOPs per second over the FMA peak that
``cython_ops.fma_peak`` measures (same instruction set, all of fastnn's
threads), measured at the start, after each workload and at the end of the
run, the best counting (a neighbour's burst on a shared core only ever
lowers it).  The workloads are defined once
here and also used by ``benchmarks/``.

The scikit-learn workloads (``SKLEARN_WORKLOADS``, ``bench_sklearn``) measure
another promise: ``fastnn.sklearn.MLPClassifier`` gives scikit-learn's fitted
model, faster.  A user compares whole ``fit`` calls, so that is what they
time, in alternating pairs (scikit-learn, fastnn, ...), each on a new
estimator with the same parameters, data and ``random_state``; and a speed-up
means something only for the same model, so each row also shows how far
fastnn's ``coefs_`` are from scikit-learn's.  A fit that raises is a row with
its error, never the end of the run.

The default run takes about 80 s on the project's 2-core machines (with
PyTorch, the toolbox workload and the default scikit-learn rows): three rounds of each training workload and of each
GEMM shape (whose blocks wait for the other library's threads to go idle,
so a round costs more).  ``--sklearn-all`` adds the other scikit-learn rows
(~15 s).  ``--scaling`` adds the growth with the data size,
one thread against two, and the memory of the wide network (~20 s more).  It
compares the compiled backend with the reference, so when the compiled one
cannot be loaded it stops and says why (never a column of NaN).
"""

import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np


def _workload(sizes, activation, loss, optimizer, lr, batch, rows, dtype, title, *,
              momentum=0.0, shuffle=None, init="auto", tiny=False, norm=None,
              schedule=None):
    """One workload: the network (``sizes``: input width, then each layer's output
    width; ``activation`` after every layer but a cross-entropy's logits), its
    loss and optimizer (``"sgd"`` with ``momentum``, ``"adam"`` or ``"adamw"``),
    batches (None: the whole set), data rows and dtype.  ``shuffle`` defaults to
    "when there are batches"; ``tiny``: too small for "% of peak" to mean
    anything (all call overhead); ``norm``: ``"batchnorm"`` puts a BatchNorm1d
    after each hidden Dense (before its activation); ``schedule``:
    ``"onecycle"`` runs OneCycleLR(max_lr=lr) over each training call's batches.
    ``tutorial``: whether ``TutorialMLP`` can express it (plain Dense layers,
    sigmoid or ReLU, SGD or Adam, no schedule)."""
    tutorial = (norm is None and schedule is None and activation in ("sigmoid", "relu")
                and optimizer in ("sgd", "adam"))
    return dict(sizes=sizes, activation=activation, loss=loss, optimizer=optimizer, lr=lr,
                momentum=momentum, batch=batch, rows=rows, dtype=dtype, title=title,
                shuffle=batch is not None if shuffle is None else shuffle, init=init,
                tiny=tiny, norm=norm, schedule=schedule, tutorial=tutorial)


WORKLOADS = {
    "xor": _workload((2, 4, 1), "sigmoid", "mse", "sgd", 0.5, None, 4, "float64",
                     "XOR 2-4-1 sigmoid, MSE, SGD, full batch, float64", tiny=True),
    # the weight/height tutorial: every weight and bias ~ N(0, 1),
    # one sample at a time, in the table's order
    "weight_height": _workload((2, 2, 1), "sigmoid", "mse", "sgd", 0.1, 1, 4, "float64",
                               "weight/height 2-2-1 sigmoid, MSE, per-sample SGD, float64",
                               shuffle=False, init="normal", tiny=True),
    "digits": _workload((64, 32, 10), "relu", "cross_entropy", "adam", 1e-3, 32, 1797,
                        "float32",
                        "digits 64-32-10 relu, cross-entropy, Adam, batch 32, float32"),
    "mnist32": _workload((784, 256, 128, 10), "relu", "cross_entropy", "sgd", 0.01, 64, 6400,
                         "float32", "MNIST-shaped 784-256-128-10 relu, SGD momentum, "
                         "batch 64, float32", momentum=0.9),
    "mnist64": _workload((784, 256, 128, 10), "relu", "cross_entropy", "sgd", 0.01, 64, 6400,
                         "float64", "MNIST-shaped 784-256-128-10 relu, SGD momentum, "
                         "batch 64, float64", momentum=0.9),
    "wide": _workload((784, 1024, 1024, 10), "relu", "cross_entropy", "adam", 1e-3, 256, 2048,
                      "float32", "wide 784-1024-1024-10 relu, cross-entropy, Adam, "
                      "batch 256, float32"),
    # the training toolbox: batch norm, GELU, AdamW and a one-cycle schedule
    "toolbox": _workload((784, 256, 128, 10), "gelu", "cross_entropy", "adamw", 1e-3, 64, 6400,
                         "float32", "toolbox 784-256-128-10 BatchNorm1d, GELU, AdamW, "
                         "OneCycleLR, batch 64, float32", norm="batchnorm",
                         schedule="onecycle"),
}


def workload_data(name, rows=None):
    """Data of the workload: its own table (XOR, weight/height) or seeded synthetic
    data of its shape, ``rows`` rows (default the workload's).

    Returns X (rows, n_in) of the workload's dtype and y: (rows, 1) floats for
    MSE, int64 class labels (rows,) for cross-entropy.
    """
    from fastnn import datasets
    w = WORKLOADS[name]
    if name == "xor":
        X, y = datasets.xor()
        return X, y.reshape(-1, 1)
    if name == "weight_height":
        X, y = datasets.gender()                   # Alice, Bob, Charlie, Diana
        return X, y.reshape(-1, 1)
    rows = w["rows"] if rows is None else rows
    rng = np.random.default_rng(0)
    X = rng.random((rows, w["sizes"][0])).astype(w["dtype"])
    return X, rng.integers(0, w["sizes"][-1], rows)


def fastnn_network(name, backend, dtype=None, sizes=None):
    """The workload's network (seed 0), loss and optimizer on a fastnn backend
    (``dtype``: another dtype than the workload's, for tests; ``sizes``: other
    layer widths than the workload's)."""
    import fastnn
    w = WORKLOADS[name]
    act = {"sigmoid": fastnn.Sigmoid, "relu": fastnn.ReLU, "gelu": fastnn.GELU}[w["activation"]]
    layers = []
    sizes = w["sizes"] if sizes is None else sizes
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers.append(fastnn.Dense(n_in, n_out, init=w["init"]))
        if w["norm"] == "batchnorm":
            layers.append(fastnn.BatchNorm1d(n_out))
        layers.append(act())
    if w["loss"] == "cross_entropy":
        layers.pop()                       # logits out
        if w["norm"] is not None:
            layers.pop()                   # no norm on the logits
    net = fastnn.Network(layers, backend=backend, dtype=dtype or w["dtype"], seed=0)
    optimizer = {"adam": lambda: fastnn.Adam(lr=w["lr"]),
                 "adamw": lambda: fastnn.AdamW(lr=w["lr"]),
                 "sgd": lambda: fastnn.SGD(lr=w["lr"], momentum=w["momentum"])}[w["optimizer"]]()
    return net, w["loss"], optimizer


def batches_per_epoch(name, rows=None):
    """Batches in one epoch of the workload (``rows``: default the workload's)."""
    w = WORKLOADS[name]
    rows = w["rows"] if rows is None else rows
    return 1 if w["batch"] is None else -(-rows // w["batch"])


def fastnn_schedule(name, epochs, rows=None):
    """The workload's learning-rate schedule for one training call of ``epochs``
    epochs (a fresh one-cycle over its batches), or None."""
    w = WORKLOADS[name]
    if w["schedule"] is None:
        return None
    from fastnn.schedules import OneCycleLR
    return OneCycleLR(max_lr=w["lr"], total_steps=epochs * batches_per_epoch(name, rows))


def _fastnn_trainer(name, backend, data=None):
    """A function training ``epochs`` epochs of the workload on a fastnn backend
    (on ``data`` = (X, y), default the workload's); its ``network`` attribute is
    the network it trains."""
    X, y = workload_data(name) if data is None else data
    net, loss, optimizer = fastnn_network(name, backend)
    w = WORKLOADS[name]

    def train(epochs):
        net.fit(X, y, loss=loss, optimizer=optimizer, epochs=epochs, batch_size=w["batch"],
                shuffle=w["shuffle"], seed=0,
                lr_scheduler=fastnn_schedule(name, epochs, len(X)))
    train.network = net
    return train


class TutorialMLP:
    """The NumPy training loop a reader of the tutorials writes by hand: the baseline.

    Plain ``X @ W + b``, ``np.maximum`` or ``1 / (1 + np.exp(-z))``, a
    max-shifted softmax, ``A.T @ dZ``, and the optimizer formulas of fastnn
    (PyTorch's): SGD ``v = mu*v + g; p -= lr*v``; Adam with its bias
    corrections and ``eps`` after the square root.  Losses take the mean (MSE
    over all elements, cross-entropy on logits over the rows).  No finiteness
    checks, no validation; buffers are updated in place where a tutorial
    could (optimizer state, parameters, the incoming gradient), so the
    baseline is not handicapped by needless copies.  Each epoch's loss is
    kept, as the tutorials print it (it costs a few operations on the output).

    Parameters
    ----------
    weights : list of ndarray, each (n_in, n_out)
        Copied; the layers' weights, ``X @ W`` layout.
    biases : list of ndarray, each (n_out,)
        Copied.
    activation : {"sigmoid", "relu"}
        After every layer, but the last one when ``loss`` is cross-entropy.
    loss : {"mse", "cross_entropy"}
        MSE against targets (n, n_out); cross-entropy on the logits against
        integer labels (n,).
    optimizer : {"sgd", "adam"}
    lr : float
    momentum : float, default 0
        SGD only.
    betas, eps
        Adam only: PyTorch's defaults.
    """

    def __init__(self, weights, biases, activation, loss, optimizer, lr, *, momentum=0.0,
                 betas=(0.9, 0.999), eps=1e-8):
        if activation not in ("sigmoid", "relu") or loss not in ("mse", "cross_entropy") \
                or optimizer not in ("sgd", "adam"):
            raise ValueError(f"TutorialMLP: unknown activation, loss or optimizer: "
                             f"{activation!r}, {loss!r}, {optimizer!r}")
        self.W = [np.array(W) for W in weights]
        self.b = [np.array(b) for b in biases]
        self.activation, self.loss, self.optimizer = activation, loss, optimizer
        self.lr, self.momentum, self.betas, self.eps = lr, momentum, betas, eps
        params = self.W + self.b
        n_state = 2 if optimizer == "adam" else (1 if momentum else 0)
        self.state = [[np.zeros_like(p) for _ in range(n_state)] for p in params]
        self.t = 0                          # updates done (Adam's step count)

    def fit(self, X, y, epochs, batch_size=None, rng=None):
        """Train ``epochs`` epochs; returns the mean loss of each epoch.

        X : (n, n_in); y : (n, n_out) targets or (n,) labels.  ``batch_size``
        None: the whole set per step.  ``rng`` (a numpy Generator): shuffle
        each epoch with ``rng.permutation(n)``; None: the rows in order.
        """
        n = len(X)
        batch = n if batch_size is None else batch_size
        losses = []
        for _ in range(epochs):
            if rng is not None:
                order = rng.permutation(n)
                Xs, ys = X[order], y[order]
            else:
                Xs, ys = X, y
            total = 0.0
            for start in range(0, n, batch):
                xb, yb = Xs[start:start + batch], ys[start:start + batch]
                total += self.step(xb, yb) * len(xb)
            losses.append(total / n)
        return losses

    def step(self, xb, yb):
        """One batch: forward, loss, backward and update; returns the batch's loss."""
        last = len(self.W) - 1
        # forward, keeping each layer's output for the backward pass
        A = [xb]
        for l, (W, b) in enumerate(zip(self.W, self.b)):
            Z = A[-1] @ W + b
            if l == last and self.loss == "cross_entropy":
                A.append(Z)                                     # logits
            elif self.activation == "relu":
                A.append(np.maximum(Z, 0))
            else:
                A.append(1 / (1 + np.exp(-Z)))
        out = A[-1]
        # the loss and its gradient with respect to the output (mean reduction)
        if self.loss == "mse":
            diff = out - yb
            loss = float(np.mean(diff * diff))
            dA = diff * (2 / diff.size)
        else:
            rows = np.arange(len(yb))
            shifted = out - out.max(axis=1, keepdims=True)
            E = np.exp(shifted)
            S = E.sum(axis=1, keepdims=True)
            loss = float(np.mean(np.log(S[:, 0]) - shifted[rows, yb]))
            dZ = E / S                                          # softmax
            dZ[rows, yb] -= 1
            dZ *= 1 / len(yb)
        # backward, last layer first: each layer's dX uses its W before the update
        self.t += 1
        for l in range(last, -1, -1):
            if l < last or self.loss == "mse":
                if self.activation == "relu":
                    dA *= A[l + 1] > 0
                else:
                    dA *= A[l + 1] * (1 - A[l + 1])
                dZ = dA
            dW = A[l].T @ dZ
            db = dZ.sum(axis=0)
            if l > 0:
                dA = dZ @ self.W[l].T
            self._update(self.W[l], dW, self.state[l])
            self._update(self.b[l], db, self.state[len(self.W) + l])
        return loss

    def _update(self, p, g, state):
        """The optimizer's update of one parameter, in place."""
        if self.optimizer == "sgd":
            if state:
                v, = state
                v *= self.momentum
                v += g
                g = v
            p -= self.lr * g
            return
        m, v = state
        beta1, beta2 = self.betas
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * (g * g)
        step_size = self.lr / (1 - beta1 ** self.t)
        denom = np.sqrt(v) / (1 - beta2 ** self.t) ** 0.5 + self.eps
        p -= step_size * (m / denom)


def tutorial_network(name, dtype=None, net=None):
    """The workload as a ``TutorialMLP`` from the initial weights of its fastnn
    network (``net``, default the workload's on the reference backend, seed 0)."""
    w = WORKLOADS[name]
    if not w["tutorial"]:
        raise ValueError(f"TutorialMLP cannot express the {name!r} workload ({w['title']})")
    if net is None:
        net, _, _ = fastnn_network(name, "numpy", dtype)
    dense = [layer for layer in net.layers if hasattr(layer, "W")]
    return TutorialMLP([d.W for d in dense], [d.b for d in dense], w["activation"], w["loss"],
                       w["optimizer"], w["lr"], momentum=w["momentum"])


def _tutorial_trainer(name, data=None):
    """A function training ``epochs`` epochs of the workload with ``TutorialMLP``."""
    X, y = workload_data(name) if data is None else data
    w = WORKLOADS[name]
    mlp = tutorial_network(name)
    rng = np.random.default_rng(0) if w["shuffle"] else None

    def train(epochs):
        mlp.fit(X, y, epochs, w["batch"], rng)
    return train


def torch_model(name, dtype=None):
    """The workload's network as a ``torch.nn.Sequential`` (torch's own initial
    weights; ``dtype``: a torch dtype other than the workload's, for tests), its
    loss function and its optimizer."""
    import torch
    w = WORKLOADS[name]
    dtype = getattr(torch, w["dtype"]) if dtype is None else dtype
    act = {"sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU,
           "gelu": torch.nn.GELU}[w["activation"]]
    layers = []
    for n_in, n_out in zip(w["sizes"][:-1], w["sizes"][1:]):
        layers.append(torch.nn.Linear(n_in, n_out))
        if w["norm"] == "batchnorm":
            layers.append(torch.nn.BatchNorm1d(n_out))
        layers.append(act())
    if w["loss"] == "cross_entropy":
        layers.pop()
        if w["norm"] is not None:
            layers.pop()
    model = torch.nn.Sequential(*layers).to(dtype)
    loss_fn = torch.nn.MSELoss() if w["loss"] == "mse" else torch.nn.CrossEntropyLoss()
    params = model.parameters()
    optimizer = {"adam": lambda: torch.optim.Adam(params, lr=w["lr"]),
                 "adamw": lambda: torch.optim.AdamW(params, lr=w["lr"]),
                 "sgd": lambda: torch.optim.SGD(params, lr=w["lr"],
                                                momentum=w["momentum"])}[w["optimizer"]]()
    return model, loss_fn, optimizer


def torch_schedule(name, optimizer, epochs, rows=None):
    """``fastnn_schedule``'s PyTorch twin: a fresh ``OneCycleLR`` over one training
    call's batches, stepped after each batch, or None."""
    import torch
    w = WORKLOADS[name]
    if w["schedule"] is None:
        return None
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=w["lr"], total_steps=epochs * batches_per_epoch(name, rows))


def _torch_trainer(name):
    """The same workload as an idiomatic PyTorch CPU training loop."""
    import torch
    w = WORKLOADS[name]
    X, y = workload_data(name)
    model, loss_fn, optimizer = torch_model(name)
    dtype = getattr(torch, w["dtype"])
    Xt = torch.from_numpy(X).to(dtype)
    yt = torch.from_numpy(y).to(dtype) if w["loss"] == "mse" else torch.from_numpy(y)
    model.train()
    n = len(Xt)
    batch = w["batch"] or n
    generator = torch.Generator().manual_seed(0)

    def train(epochs):
        scheduler = torch_schedule(name, optimizer, epochs, n)
        for _ in range(epochs):
            order = torch.randperm(n, generator=generator) if w["shuffle"] else None
            for start in range(0, n, batch):
                if order is None:
                    xb, yb = Xt[start:start + batch], yt[start:start + batch]
                else:
                    idx = order[start:start + batch]
                    xb, yb = Xt[idx], yt[idx]
                optimizer.zero_grad()
                loss_fn(model(xb), yb).backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
    return train


def _calibrate(train, target):
    """Epochs that take about ``target`` seconds (after one warm-up epoch)."""
    train(1)
    epochs, elapsed = 1, 0.0
    while True:
        t = time.perf_counter()
        train(epochs)
        elapsed = time.perf_counter() - t
        if elapsed >= target / 4 or epochs >= 1 << 20:
            break
        epochs *= 2
    return max(1, int(epochs * target / max(elapsed, 1e-9)))


def _time(train, epochs):
    t = time.perf_counter()
    train(epochs)
    return time.perf_counter() - t


def _alternate(entries, rounds, target, settle=0.1):
    """Median seconds per epoch of each entry, timed in alternating rounds.

    ``entries`` maps a label to ``(calibrate, time)``: ``calibrate(target)``
    gives the epochs that take about ``target`` seconds, ``time(epochs)`` the
    seconds they take.  Every round times each entry once, in order, each
    after ``settle`` seconds of rest: the threads of the entry before
    (OpenBLAS's, PyTorch's, fastnn's pool) keep spinning for a while after
    their last call, and on two cores they would take the next entry's
    (measured: fastnn's MNIST-shaped float32 fit at 159,000 samples/s right
    after the tutorial loop, 250,000 after a 0.1 s pause).
    """
    epochs = {label: calibrate(target) for label, (calibrate, _) in entries.items()}
    seconds = {label: [] for label in entries}
    for _ in range(rounds):
        for label, (_, timer) in entries.items():
            time.sleep(settle)
            seconds[label].append(timer(epochs[label]) / epochs[label])
    return {label: statistics.median(v) for label, v in seconds.items()}


def _local(train):
    """``(calibrate, time)`` of a trainer running in this process."""
    return (lambda target: _calibrate(train, target)), (lambda epochs: _time(train, epochs))


class _TorchWorker:
    """A child process running the PyTorch side, one command per line."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "fastnn.bench", "--torch-worker"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, **command):
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        if "error" in reply:
            raise RuntimeError(f"torch worker: {reply['error']}")
        return reply

    def entry(self, name):
        """``(calibrate, time)`` of workload ``name`` in the child."""
        return ((lambda target: self.ask(workload=name, target=target)["epochs"]),
                (lambda epochs: self.ask(workload=name, epochs=epochs)["seconds"]))

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _torch_worker_main():
    """Serve ``{"workload", "target"}`` (calibrate) and ``{"workload", "epochs"}`` (time)."""
    import torch
    torch.manual_seed(0)
    trainers = {}
    for line in sys.stdin:
        command = json.loads(line)
        try:
            name = command["workload"]
            if name not in trainers:
                trainers[name] = _torch_trainer(name)
            if "target" in command:
                reply = {"epochs": _calibrate(trainers[name], command["target"])}
            else:
                reply = {"seconds": _time(trainers[name], command["epochs"])}
        except Exception as exc:          # report to the parent, keep serving
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(reply), flush=True)


def _installed(module):
    """Whether ``module`` can be imported (without importing it)."""
    import importlib.util
    try:
        return importlib.util.find_spec(module) is not None
    except ValueError:
        return False


def torch_available():
    """Whether PyTorch can be imported (the torch column needs it)."""
    return _installed("torch")


def bench_training(names, rounds=3, target=0.25, use_torch=None, out=None, peak=None):
    """Samples/s per trainer and workload, medians of alternating rounds.

    The trainers, in each round's order: ``tutorial`` (``TutorialMLP``), the
    fastnn backends ``numpy`` and ``cython``, and ``torch`` when installed.
    ``peak``: a dict that ``measure_peak`` updates (the best so far) after
    each workload.

    Returns {workload: {trainer: median samples/s}}.
    """
    out = sys.stdout if out is None else out
    from fastnn.backends import available_backends
    backends = [b for b in ("numpy", "cython") if b in available_backends()]
    use_torch = torch_available() if use_torch is None else use_torch
    worker = _TorchWorker() if use_torch else None
    results = {}
    try:
        for name in names:
            data = workload_data(name)
            rows = len(data[0])
            entries = ({"tutorial": _local(_tutorial_trainer(name, data))}
                       if WORKLOADS[name]["tutorial"] else {})
            entries.update((b, _local(_fastnn_trainer(name, b, data))) for b in backends)
            if worker:
                entries["torch"] = worker.entry(name)
            per_epoch = _alternate(entries, rounds, target)
            results[name] = {label: rows / s for label, s in per_epoch.items()}
            print(f"  {WORKLOADS[name]['title']}: " + ", ".join(
                f"{b} {v:,.0f}/s" for b, v in results[name].items()), file=out, flush=True)
            if peak is not None:
                peak.update(measure_peak(peak))
    finally:
        if worker:
            worker.close()
    return results


# ----------------------------------------------------------------- the peak
def dense_flops_per_row(sizes):
    """Training FLOPs per row of dense layers of widths ``sizes``: 2 x (3 x sum of
    n_in * n_out - the first layer's n_in * n_out): forward ``X @ W``, ``dW``
    and ``dX`` per layer, but no ``dX`` for the first.  Updates, activations
    and the loss are not counted."""
    products = [n_in * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    return 2 * (3 * sum(products) - products[0])


def flops_per_sample(name):
    """Training FLOPs per sample of the workload's dense layers (``dense_flops_per_row``)."""
    return dense_flops_per_row(WORKLOADS[name]["sizes"])


def measure_peak(best=None):
    """The FMA peak, GFLOP/s, per dtype name: ``cython_ops.fma_peak`` (the ISA in
    use, all of fastnn's threads), or the larger of it and ``best`` (an earlier
    measurement: a neighbour's burst on a shared core only ever lowers one)."""
    from fastnn.backends import cython_ops
    peak = {dtype: cython_ops.fma_peak(dtype) for dtype in ("float32", "float64")}
    return peak if best is None else {dtype: max(peak[dtype], best[dtype]) for dtype in peak}


def percent_of_peak(name, samples_per_s, peak):
    """``samples_per_s`` x ``flops_per_sample`` as a percentage of ``peak``
    (GFLOP/s per dtype name); None for a tiny workload."""
    w = WORKLOADS[name]
    if w["tiny"]:
        return None
    return 100.0 * samples_per_s * flops_per_sample(name) / (peak[w["dtype"]] * 1e9)


#: GEMM shapes (m, k, n, transposition) timed against NumPy's ``@``: the large
#: product, and the forward (X W), backward (X^T G, G W^T) products of an MNIST batch.
GEMM_SHAPES = [
    (2048, 2048, 2048, "AB", "float32"),
    (64, 784, 256, "AB", "float32"), (784, 64, 256, "AtB", "float32"),
    (64, 256, 784, "ABt", "float32"), (64, 256, 128, "AB", "float32"),
    (64, 128, 10, "AB", "float32"),
    (64, 784, 256, "AB", "float64"), (784, 64, 256, "AtB", "float64"),
    (64, 256, 784, "ABt", "float64"), (64, 256, 128, "AB", "float64"),
    (64, 128, 10, "AB", "float64"),
]


def _repeat(f, count):
    """Call f() count times, dropping each result: keeping them all alive would
    give every call fresh, never-touched output pages, whose first-touch faults
    cost more than the arithmetic for MNIST-sized products."""
    for _ in range(count):
        f()


def bench_gemm(shapes=GEMM_SHAPES, rounds=3, target=0.05, settle=0.3, out=None):
    """GFLOP/s of fastnn's GEMM and NumPy's ``@`` per shape, alternating, medians.

    Each timed block starts ``settle`` seconds after the other library's, with
    one untimed call, so neither pays for the other's spinning threads (and
    fastnn's pool is out of the one-thread backoff that a busy core triggers).

    Returns a list of (label, dtype, fastnn GFLOP/s, numpy GFLOP/s).
    """
    out = sys.stdout if out is None else out
    from fastnn.backends import get_backend
    ops = get_backend("cython")
    rng = np.random.default_rng(0)
    rows = []
    for m, k, n, kind, dtype in shapes:
        A = rng.standard_normal((k, m) if kind == "AtB" else (m, k)).astype(dtype)
        B = rng.standard_normal((n, k) if kind == "ABt" else (k, n)).astype(dtype)
        ours = {"AB": lambda: ops.gemm(A, B), "AtB": lambda: ops.gemm(A, B, trans_a=True),
                "ABt": lambda: ops.gemm(A, B, trans_b=True)}[kind]
        theirs = {"AB": lambda: A @ B, "AtB": lambda: A.T @ B, "ABt": lambda: A @ B.T}[kind]
        np.testing.assert_allclose(ours(), theirs(), rtol=1e-3, atol=1e-3 * np.sqrt(k))
        calls = {f: _calibrate(lambda e, f=f: _repeat(f, e), target) for f in (ours, theirs)}
        rates = {f: [] for f in calls}
        for _ in range(rounds):
            for f, count in calls.items():
                # both libraries keep worker threads spinning for a while after a
                # product; let the other one's go idle, and warm this one's up
                time.sleep(settle)
                f()
                seconds = _time(lambda e, f=f: _repeat(f, e), count)
                rates[f].append(2.0 * m * n * k * count / seconds / 1e9)
        label = f"{kind} {m}x{k}x{n} {dtype}"
        row = (label, dtype, statistics.median(rates[ours]), statistics.median(rates[theirs]))
        rows.append(row)
        print(f"  gemm {label}: fastnn {row[2]:.0f} GFLOP/s, numpy {row[3]:.0f} GFLOP/s",
              file=out, flush=True)
    return rows


# ------------------------------------------------- growth, threads, memory
#: rows of the MNIST-shaped float32 data for the growth measurement
SCALING_ROWS = (1_000, 10_000, 100_000)


def bench_scaling(rounds=3, target=0.25, rows=SCALING_ROWS, out=None):
    """Seconds per epoch per row of the compiled backend on the MNIST-shaped
    float32 workload at each of ``rows`` rows, alternating, medians.

    Returns {rows: seconds per epoch per row}.
    """
    out = sys.stdout if out is None else out
    entries = {r: _local(_fastnn_trainer("mnist32", "cython", workload_data("mnist32", r)))
               for r in rows}
    per_epoch = _alternate(entries, rounds, target)
    result = {r: s / r for r, s in per_epoch.items()}
    for r, s in result.items():
        print(f"  MNIST-shaped float32, {r:,} rows: {per_epoch[r] * 1e3:,.1f} ms per epoch, "
              f"{s * 1e6:.2f} us per row", file=out, flush=True)
    return result


def bench_threads(names=("mnist32", "wide"), threads=(1, 2), rounds=3, target=0.25,
                  out=None):
    """Samples/s of the compiled backend with each of ``threads`` threads
    (``fastnn.set_num_threads``), alternating, medians; the thread count is
    restored afterwards.

    Returns {workload: {threads: samples/s}}.
    """
    out = sys.stdout if out is None else out
    import fastnn
    before = fastnn.get_num_threads()
    results = {}
    try:
        for name in names:
            data = workload_data(name)
            rows = len(data[0])
            entries = {}
            for n in threads:
                train = _fastnn_trainer(name, "cython", data)

                def on_threads(epochs, train=train, n=n):
                    fastnn.set_num_threads(n)
                    train(epochs)
                entries[n] = _local(on_threads)
            results[name] = {n: rows / s for n, s in _alternate(entries, rounds, target).items()}
            print(f"  {WORKLOADS[name]['title']}: " + ", ".join(
                f"{n} thread{'s' * (n > 1)} {v:,.0f}/s" for n, v in results[name].items()),
                file=out, flush=True)
    finally:
        fastnn.set_num_threads(before)
    return results


def peak_memory(name, backend, epochs=1):
    """Memory (MiB) of ``epochs`` epochs of the workload's ``fit``: the peak
    resident size during it above the size just before it, plus the weights
    (built before, part of the budget), measured in a child process.

    The child imports fastnn, loads the backend, builds the data and the
    network, and first fits a narrow network of the same kinds on a few rows
    (so that the code pages and lazy imports of a first fit are not counted
    as this fit's memory; the narrow one's arrays are freed); it then gives
    freed heap memory back to the system (glibc's ``malloc_trim``, where there
    is one: else memory freed before would be reused unseen), resets the
    kernel's high-water mark (``/proc/self/clear_refs``) and fits.  Linux
    only; returns None elsewhere.
    """
    code = (
        "import ctypes, gc, re\n"
        "import fastnn\n"
        "from fastnn.bench import WORKLOADS, _fastnn_trainer, fastnn_network, workload_data\n"
        f"name, backend, epochs = {name!r}, {backend!r}, {epochs!r}\n"
        "fastnn.get_backend(backend)\n"
        "X, y = workload_data(name)\n"
        "w = WORKLOADS[name]\n"
        "narrow, loss, optimizer = fastnn_network(\n"
        "    name, backend, sizes=(w['sizes'][0], 8, 8, w['sizes'][-1]))\n"
        "rows = 2 * (w['batch'] or w['rows'])\n"
        "narrow.fit(X[:rows], y[:rows], loss=loss, optimizer=optimizer, epochs=1,\n"
        "           batch_size=w['batch'], seed=0)\n"
        "del narrow, optimizer\n"
        "train = _fastnn_trainer(name, backend, (X, y))\n"
        "weights = sum(p.nbytes for _, p, _ in train.network.parameters())\n"
        "gc.collect()\n"
        "try:\n"
        "    ctypes.CDLL('libc.so.6').malloc_trim(0)\n"
        "except (OSError, AttributeError):\n"
        "    pass\n"
        "def status(key):\n"
        "    text = open('/proc/self/status').read()\n"
        "    return int(re.search(key + r':\\s+(\\d+)', text).group(1))\n"
        "open('/proc/self/clear_refs', 'w').write('5')\n"
        "before = status('VmRSS')\n"
        "train(epochs)\n"
        "print((status('VmHWM') - before) * 1024 + weights)\n")
    try:
        out = subprocess.run([sys.executable, "-c", code], check=True, text=True,
                             capture_output=True).stdout
    except (subprocess.CalledProcessError, OSError):
        return None
    return int(out) / 2.0**20


def memory_budget(name):
    """The memory (MiB) training the workload cannot do without: weights P,
    optimizer state k P (SGD with momentum 1, Adam 2), and one batch's
    activations, batch x (sum of the layers' output widths) x 2 (Z and A)."""
    w = WORKLOADS[name]
    sizes = w["sizes"]
    params = sum(n_in * n_out + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))
    k = 2 if w["optimizer"] == "adam" else (1 if w["momentum"] else 0)
    batch = w["batch"] or w["rows"]
    activations = batch * sum(sizes[1:]) * 2
    return ((1 + k) * params + activations) * np.dtype(w["dtype"]).itemsize / 2**20


def memory_report(name):
    """One line: the peak memory of each fastnn backend against the budget, or None."""
    mem = {b: peak_memory(name, b) for b in ("numpy", "cython")}
    if None in mem.values():
        return None
    budget = memory_budget(name)
    state = {"adam": "Adam's 2 moments", "sgd": "momentum"}[WORKLOADS[name]["optimizer"]]
    return (f"memory of one epoch of fit (its peak above what was resident before, "
            f"plus the weights), {WORKLOADS[name]['title']}: numpy {mem['numpy']:.1f} MiB, "
            f"cython "
            f"{mem['cython']:.1f} MiB; budget (weights + {state} + one batch's Z and A) "
            f"{budget:.1f} MiB: numpy {mem['numpy'] / budget:.1f}x, cython "
            f"{mem['cython'] / budget:.1f}x the budget")


# ------------------------------------------------ scikit-learn's MLPs, same model
def _sk_workload(data, solver, max_iter, dtype, title, *, hidden=(100,), extra_pairs=0,
                 default=False):
    """One scikit-learn workload: ``MLPClassifier`` on ``data`` (``"digits"`` or
    ``"mnist"``) with ``solver`` for ``max_iter`` epochs (L-BFGS: iterations),
    ``tol=0`` and ``n_iter_no_change=max_iter`` so that both estimators run all
    of them; X in ``dtype``.  Timed in ``rounds + extra_pairs`` alternating
    pairs; ``default``: in the default bench run."""
    return dict(data=data, solver=solver, max_iter=max_iter, dtype=dtype, title=title,
                hidden=tuple(hidden), extra_pairs=extra_pairs, default=default)


SKLEARN_WORKLOADS = {
    "sk_digits_adam": _sk_workload("digits", "adam", 40, "float64",
                                   "digits 1797x64, (100,), adam, 40 epochs, float64",
                                   extra_pairs=1, default=True),
    "sk_digits_sgd": _sk_workload("digits", "sgd", 40, "float64",
                                  "digits 1797x64, (100,), sgd, 40 epochs, float64",
                                  extra_pairs=1, default=True),
    "sk_digits_lbfgs": _sk_workload("digits", "lbfgs", 50, "float64",
                                    "digits 1797x64, (100,), lbfgs, 50 iterations, float64",
                                    extra_pairs=1, default=True),
    "sk_mnist_adam": _sk_workload("mnist", "adam", 5, "float64",
                                  "MNIST-shaped 10000x784, (100,), adam, 5 epochs, float64",
                                  default=True),
    "sk_mnist_sgd": _sk_workload("mnist", "sgd", 5, "float64",
                                 "MNIST-shaped 10000x784, (100,), sgd, 5 epochs, float64"),
    "sk_mnist_lbfgs": _sk_workload("mnist", "lbfgs", 15, "float64",
                                   "MNIST-shaped 10000x784, (100,), lbfgs, 15 iterations, "
                                   "float64"),
    "sk_digits_adam32": _sk_workload("digits", "adam", 40, "float32",
                                     "digits 1797x64, (100,), adam, 40 epochs, float32",
                                     extra_pairs=1),
    "sk_mnist_adam32": _sk_workload("mnist", "adam", 5, "float32",
                                    "MNIST-shaped 10000x784, (100,), adam, 5 epochs, float32"),
}

#: rows, features and classes of the MNIST-shaped set of the scikit-learn workloads
SK_MNIST_SHAPE = (10_000, 784, 10)


def sklearn_available():
    """Whether scikit-learn can be imported (the scikit-learn workloads need it)."""
    return _installed("sklearn")


def sklearn_data(data, rows=None, dtype="float64"):
    """X, y of a scikit-learn workload (``rows``: the first rows only).

    ``"digits"``: scikit-learn's 8x8 digits, pixels / 16 (1797 x 64, 10
    classes).  ``"mnist"``: MNIST-shaped synthetic data, 10000 x 784 uniform
    in [0, 1) (seed 0), labelled by a fixed random teacher network,
    ``argmax(tanh((X - 0.5) W1) W2)`` with W1 (784, 32) and W2 (32, 10) drawn
    from seed 1, so every class occurs and the labels are learnable.

    Returns X (rows, n_features) of ``dtype``, C-contiguous, and y (rows,) int64.
    """
    from fastnn import datasets
    if data == "digits":
        X, y = datasets.load_digits()
    elif data == "mnist":
        n, n_in, k = SK_MNIST_SHAPE
        X = np.random.default_rng(0).random((n, n_in))
        teacher = np.random.default_rng(1)
        W1 = teacher.standard_normal((n_in, 32)) * np.sqrt(12.0 / n_in)  # unit-variance z
        W2 = teacher.standard_normal((32, k))
        y = np.argmax(np.tanh((X - 0.5) @ W1) @ W2, axis=1).astype(np.int64)
    else:
        raise ValueError(f"sklearn_data: unknown data set {data!r}; expected 'digits' or "
                         "'mnist'")
    if rows is not None:
        X, y = X[:rows], y[:rows]
    return np.ascontiguousarray(X, dtype=dtype), y


def sklearn_params(name, max_iter=None):
    """The parameters given to both estimators (``max_iter``: another than the
    workload's, for tests): hidden layers, solver, ``max_iter``, ``tol=0``,
    ``n_iter_no_change=max_iter`` (the no-improvement counter rises at most once
    per epoch, so it never exceeds it: every epoch runs), ``random_state=0``;
    the rest at scikit-learn's defaults."""
    w = SKLEARN_WORKLOADS[name]
    max_iter = w["max_iter"] if max_iter is None else max_iter
    return dict(hidden_layer_sizes=w["hidden"], solver=w["solver"], max_iter=max_iter,
                tol=0.0, n_iter_no_change=max_iter, random_state=0)


def sklearn_fit_flops(sizes, n_rows, n_iter):
    """FLOPs of ``n_iter`` epochs (L-BFGS: iterations) of an MLP of layer widths
    ``sizes`` on ``n_rows`` rows.

    One epoch of a one-hidden-layer (n_in, h, k) network costs
    ``2 n (n_in h + h k)`` forward and ``2 n (n_in h + 2 h k)`` backward (dW of
    each layer, dX of all but the first): ``dense_flops_per_row`` per row.
    L-BFGS evaluates the loss and gradient over the whole set at least once per
    iteration (its line search sometimes more), so for it this is a lower bound.
    """
    return float(dense_flops_per_row(sizes)) * n_rows * n_iter


def coef_difference(coefs, reference):
    """The largest over layers of ``max |a - b| / max |b|`` (a in ``coefs``, b in
    ``reference``, e.g. scikit-learn's ``coefs_``); inf when the shapes differ."""
    if len(coefs) != len(reference):
        return float("inf")
    worst = 0.0
    for a, b in zip(coefs, reference):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            return float("inf")
        worst = max(worst, float(np.max(np.abs(a - b)) / np.max(np.abs(b))))
    return worst


def _brief(exc, width=90):
    """An exception in one short line: its type and the first line of its message."""
    text = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    return text if len(text) <= width else text[:width - 3] + "..."


def sklearn_blas():
    """One line: scikit-learn's version and the BLAS its NumPy runs on (through
    ``threadpoolctl``, which scikit-learn depends on): library, version, kernels,
    threads -- the products of scikit-learn's MLP are NumPy's.  Empty when
    scikit-learn is not installed."""
    if not sklearn_available():
        return ""
    import sklearn
    text = f"scikit-learn {sklearn.__version__}"
    try:
        from threadpoolctl import threadpool_info
        blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    except Exception:                  # threadpoolctl missing or failing: version only
        blas = []
    # the MLP's products are NumPy's; SciPy may load a BLAS of its own
    numpy_blas = [i for i in blas if "numpy" in str(i.get("filepath", ""))]
    for info in numpy_blas or blas:
        kernels = f", {info['architecture']} kernels" if info.get("architecture") else ""
        text += (f"; NumPy's BLAS {info.get('internal_api')} {info.get('version')}{kernels}, "
                 f"{info.get('num_threads')} threads")
    return text


def _load_average():
    """``"; load average x.xx"`` (the last minute's), or "" where the OS has none:
    scikit-learn's BLAS threads slow down many times over when another process
    is busy on the same cores, so a ratio comes with the load it was taken at."""
    try:
        return f"; load average {os.getloadavg()[0]:.2f}"
    except (AttributeError, OSError):
        return ""


def bench_sklearn(names, rounds=3, out=None, peak=None, rows=None, max_iter=None,
                  settle=0.1):
    """scikit-learn's ``MLPClassifier`` against ``fastnn.sklearn.MLPClassifier``
    (same parameters, ``random_state``, data and X dtype; fastnn's default
    backend, ``dtype`` that of X), fit by fit.

    Each workload runs ``rounds + extra_pairs`` pairs of whole fits, alternating
    (scikit-learn, fastnn, scikit-learn, ...), each on a new estimator and
    ``settle`` seconds after the previous fit (so neither starts while the
    other's BLAS or pool threads still spin); the models of the first pair are
    compared.  ``rows`` / ``max_iter``: a smaller
    configuration, for tests.  A fit that raises ends that workload's timing
    and its message goes into the row; the bench goes on.  ``peak``: a dict that
    ``measure_peak`` updates after each workload.

    Returns a list of dicts, one per workload: ``name``, ``title``,
    ``sklearn_s`` and ``fastnn_s`` (median seconds per fit, None if not
    measured), ``speedup`` (``sklearn_s / fastnn_s``), ``coef_diff``
    (``coef_difference`` of fastnn's ``coefs_`` from scikit-learn's),
    ``n_iter`` (scikit-learn's and fastnn's ``n_iter_``), ``flops`` (of fastnn's
    fit, ``sklearn_fit_flops`` with fastnn's ``n_iter_``), ``gflops`` (of
    fastnn's fit), ``sklearn_gflops`` (of scikit-learn's, its own ``n_iter_``),
    ``dtype``, ``pairs`` (the pairs timed) and ``error``
    (None, or the failing side and the exception, briefly).
    """
    import warnings
    out = sys.stdout if out is None else out
    if not sklearn_available():
        print("  scikit-learn workloads skipped: scikit-learn is not installed "
              '(pip install "fastnn[sklearn]")', file=out, flush=True)
        return []
    from sklearn.neural_network import MLPClassifier as SklearnMLP
    results = []
    data_cache = {}
    for name in names:
        w = SKLEARN_WORKLOADS[name]
        key = (w["data"], rows, w["dtype"])
        if key not in data_cache:
            data_cache[key] = sklearn_data(w["data"], rows, w["dtype"])
        X, y = data_cache[key]
        params = sklearn_params(name, max_iter)
        sizes = (X.shape[1],) + w["hidden"] + (len(np.unique(y)),)
        pairs = rounds + w["extra_pairs"]
        row = dict(name=name, title=w["title"], dtype=w["dtype"], sklearn_s=None,
                   fastnn_s=None, speedup=None, coef_diff=None, n_iter=(None, None),
                   flops=None, gflops=None, sklearn_gflops=None, pairs=0, error=None)
        times = {"scikit-learn": [], "fastnn": []}
        fitted = {}
        try:
            from fastnn.sklearn import MLPClassifier as FastMLP
            makers = {"scikit-learn": lambda: SklearnMLP(**params),
                      "fastnn": lambda: FastMLP(**params, dtype=w["dtype"])}
        except Exception as exc:        # e.g. fastnn.sklearn cannot be imported
            makers = {"scikit-learn": lambda: SklearnMLP(**params)}
            row["error"] = f"fastnn: {_brief(exc)}"
        for _ in range(pairs):
            for side, make in list(makers.items()):
                estimator = make()
                time.sleep(settle)
                try:
                    with warnings.catch_warnings():
                        # max_iter reached: the ConvergenceWarning both estimators give
                        warnings.simplefilter("ignore")
                        t = time.perf_counter()
                        estimator.fit(X, y)
                        times[side].append(time.perf_counter() - t)
                except Exception as exc:
                    row["error"] = f"{side}: {_brief(exc)}"
                    del makers[side]
                    continue
                fitted.setdefault(side, estimator)
            if "scikit-learn" not in makers:
                break
        for side, key in (("scikit-learn", "sklearn_s"), ("fastnn", "fastnn_s")):
            if times[side]:
                row[key] = statistics.median(times[side])
        row["pairs"] = min(len(times["scikit-learn"]), len(times["fastnn"]))
        if row["sklearn_s"] is not None and row["fastnn_s"] is not None:
            row["speedup"] = row["sklearn_s"] / row["fastnn_s"]
        if "scikit-learn" in fitted and row["sklearn_s"]:
            row["sklearn_gflops"] = sklearn_fit_flops(
                sizes, len(X), fitted["scikit-learn"].n_iter_) / row["sklearn_s"] / 1e9
        if "fastnn" in fitted:
            fast = fitted["fastnn"]
            row["flops"] = sklearn_fit_flops(sizes, len(X), fast.n_iter_)
            if row["fastnn_s"]:
                row["gflops"] = row["flops"] / row["fastnn_s"] / 1e9
            if "scikit-learn" in fitted:
                row["coef_diff"] = coef_difference(fast.coefs_, fitted["scikit-learn"].coefs_)
        row["n_iter"] = tuple(fitted[s].n_iter_ if s in fitted else None
                              for s in ("scikit-learn", "fastnn"))
        results.append(row)
        print(f"  scikit-learn {w['title']}: " + _sklearn_summary(row), file=out, flush=True)
        if peak is not None:
            peak.update(measure_peak(peak))
    return results


def _sklearn_summary(row):
    parts = []
    for side, key in (("scikit-learn", "sklearn_s"), ("fastnn", "fastnn_s")):
        if row[key] is not None:
            parts.append(f"{side} {row[key]:.3f} s")
    if row["speedup"] is not None:
        parts.append(f"{row['speedup']:.1f}x")
    if row["coef_diff"] is not None:
        parts.append(f"coefs_ differ by {row['coef_diff']:.1e}")
    if row["error"]:
        parts.append(f"fails: {row['error']}")
    return ", ".join(parts)


# -------------------------------------------------------------- the report
def _ratio(a, b):
    return f"{a / b:.1f}x" if a is not None and b else "—"


def format_table(results, gemm=None, peak=None):
    """The markdown tables printed by ``python -m fastnn bench``.

    ``results``: {workload: {trainer: samples/s}} (``bench_training``);
    ``gemm``: rows of ``bench_gemm``; ``peak``: GFLOP/s per dtype name, for
    the "% of peak" columns (omitted when None).
    """
    has_torch = any("torch" in r for r in results.values())
    head = ["workload", "tutorial samples/s", "numpy samples/s", "cython samples/s"]
    head += ["torch samples/s"] * has_torch + ["cython / tutorial"]
    head += ["cython / torch"] * has_torch + ["% of peak"] * (peak is not None)
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for name, r in results.items():
        cython = r.get("cython")
        cells = [WORKLOADS[name]["title"]]
        cells += [f"{r[t]:,.0f}" if t in r else "—"
                  for t in ("tutorial", "numpy", "cython") + ("torch",) * has_torch]
        cells.append(_ratio(cython, r.get("tutorial")))
        if has_torch:
            cells.append(_ratio(cython, r.get("torch")))
        if peak is not None:
            pct = percent_of_peak(name, cython, peak) if cython is not None else None
            cells.append("—" if pct is None else f"{pct:.1f}%")
        lines.append("| " + " | ".join(cells) + " |")
    if gemm:
        head = "| GEMM (same run) | fastnn GFLOP/s | numpy @ GFLOP/s | fastnn / numpy |"
        rule = "|---|---:|---:|---:|"
        if peak is not None:
            head += " fastnn % of peak |"
            rule += "---:|"
        lines += ["", head, rule]
        for label, dtype, ours, theirs in gemm:
            row = f"| {label} | {ours:.0f} | {theirs:.0f} | {ours / theirs:.2f} |"
            if peak is not None:
                row += f" {100 * ours / peak[dtype]:.0f}% |"
            lines.append(row)
    return "\n".join(lines)


def format_scaling(per_row, threads):
    """The tables of ``--scaling``: ``per_row`` of ``bench_scaling`` (with the
    per-row time of the most rows over the fewest) and ``threads`` of
    ``bench_threads`` (with the ratio of the last thread count to the first)."""
    small, large = min(per_row), max(per_row)
    lines = ["| MNIST-shaped float32, cython | ms per epoch | us per row |", "|---|---:|---:|"]
    lines += [f"| {rows:,} rows | {s * rows * 1e3:,.1f} | {s * 1e6:.2f} |"
              for rows, s in per_row.items()]
    lines += ["", f"per-row time, {large:,} rows / {small:,} rows: "
              f"{per_row[large] / per_row[small]:.2f}x"]
    counts = list(next(iter(threads.values())))
    first, last = counts[0], counts[-1]
    lines += ["", "| threads, cython | " + " | ".join(
        f"{n} thread{'s' * (n > 1)} samples/s" for n in counts) + f" | {last} / {first} |",
        "|---" + "|---:" * (len(counts) + 1) + "|"]
    for name, rates in threads.items():
        lines.append(f"| {WORKLOADS[name]['title']} | "
                     + " | ".join(f"{rates[n]:,.0f}" for n in counts)
                     + f" | {rates[last] / rates[first]:.2f}x |")
    return "\n".join(lines)


def format_sklearn_table(rows, peak=None):
    """The table of the scikit-learn workloads (``rows`` of ``bench_sklearn``):
    median seconds per fit of each estimator, their ratio, how far fastnn's
    ``coefs_`` are from scikit-learn's, both ``n_iter_``, fastnn's GFLOP/s
    with its "% of peak", scikit-learn's GFLOP/s and the ratio fastnn would
    reach at the peak (peak / scikit-learn's GFLOP/s: the ceiling of the ratio
    on this machine).  ``peak``: GFLOP/s per dtype name (the columns that need
    it are omitted when None).  A row whose fit failed shows the failure in
    the fastnn column."""
    head = ["scikit-learn's MLPClassifier vs fastnn.sklearn's, same parameters",
            "scikit-learn fit s", "fastnn fit s", "scikit-learn / fastnn",
            "coefs_ max rel. diff", "n_iter_ scikit-learn / fastnn", "fastnn GFLOP/s"]
    head += ["% of peak"] * (peak is not None) + ["scikit-learn GFLOP/s"]
    head += ["ratio at peak"] * (peak is not None)
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]

    def number(value, fmt):
        return "—" if value is None else format(value, fmt)
    for row in rows:
        fast = number(row["fastnn_s"], ".3f")
        if row["error"]:
            fast = f"fails: {row['error']}".replace("|", "/")
        n_iter = " / ".join("—" if n is None else str(n) for n in row["n_iter"])
        cells = [row["title"], number(row["sklearn_s"], ".3f"), fast,
                 number(row["speedup"], ".1f") + ("x" if row["speedup"] is not None else ""),
                 number(row["coef_diff"], ".1e"), n_iter, number(row["gflops"], ".1f")]
        if peak is not None:
            pct = (None if row["gflops"] is None
                   else 100.0 * row["gflops"] / peak[row["dtype"]])
            cells.append("—" if pct is None else f"{pct:.1f}%")
        cells.append(number(row["sklearn_gflops"], ".1f"))
        if peak is not None:
            cells.append("—" if not row["sklearn_gflops"]
                         else f"{peak[row['dtype']] / row['sklearn_gflops']:.1f}x")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _format_peak(peak):
    return ", ".join(f"{dtype} {gflops:.0f}" for dtype, gflops in peak.items()) + " GFLOP/s"


def sklearn_names(workloads=None, sklearn=True, sklearn_all=False):
    """The scikit-learn workloads a run measures: those in ``workloads`` (names of
    either table; None: the default rows, ``default=True``), all of them with
    ``sklearn_all``, none when ``sklearn`` is False."""
    if not sklearn:
        return []
    if sklearn_all:
        return list(SKLEARN_WORKLOADS)
    if workloads is None:
        return [n for n, w in SKLEARN_WORKLOADS.items() if w["default"]]
    return [n for n in workloads if n in SKLEARN_WORKLOADS]


def main(workloads=None, rounds=3, target=0.25, use_torch=None, gemm=True, memory=True,
         out=None, gemm_rounds=3, err=None, scaling=False, sklearn=True, sklearn_all=False,
         sklearn_options=None):
    """Run the benchmarks and print the tables; 1 (and the reason, on ``err``) when the
    compiled backend cannot be loaded, else 0.

    ``workloads``: names from ``WORKLOADS`` and ``SKLEARN_WORKLOADS`` (None: every
    training workload and the default scikit-learn rows).  ``scaling``: also the
    growth with the data size, one thread against two, and the memory of the
    wide network (``bench_scaling``, ``bench_threads``).  ``sklearn``: the
    scikit-learn workloads (``bench_sklearn``; skipped with a line when
    scikit-learn is not installed); ``sklearn_all``: all of them, not only the
    default rows; ``sklearn_options``: keywords for ``bench_sklearn`` (``rows``,
    ``max_iter``: a quick configuration, for tests).
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    import fastnn
    from fastnn.backends import _compiled_status
    module, problem = _compiled_status()
    if module is None:
        print(f"python -m fastnn bench: the compiled backend cannot be used, so there is "
              f"nothing to compare: {problem}", file=err)
        return 1
    start = time.perf_counter()
    workloads = workloads or None
    names = list(WORKLOADS) if workloads is None else [n for n in workloads if n in WORKLOADS]
    sk_names = sklearn_names(workloads, sklearn, sklearn_all)
    peak = measure_peak()
    print(f"fastnn {fastnn.__version__} bench: {rounds} alternating rounds, ~{target}s "
          f"per trainer per round ({gemm_rounds} rounds per GEMM shape), {os.cpu_count()} "
          f"cores, {fastnn.get_num_threads()} threads; FMA peak ({module.get_isa()}, "
          f"{fastnn.get_num_threads()} threads): {_format_peak(peak)}", file=out, flush=True)
    results = bench_training(names, rounds, target, use_torch, out, peak) if names else {}
    sk_rows = []
    if sk_names:
        print("  scikit-learn's MLPClassifier against fastnn.sklearn's: whole fits, "
              f"alternating, medians ({sklearn_blas() or 'scikit-learn not installed'}"
              f"{_load_average()})", file=out, flush=True)
        sk_rows = bench_sklearn(sk_names, rounds, out, peak, **(sklearn_options or {}))
    g = bench_gemm(rounds=gemm_rounds, out=out) if gemm else None
    peak = measure_peak(peak)
    print(f"  FMA peak, the best of {len(names) + len(sk_rows) + 2} measurements (at the "
          f"start, after each workload and at the end): {_format_peak(peak)}", file=out,
          flush=True)
    if results or g:
        print("\n" + format_table(results, g, peak), file=out)
    if memory and "mnist32" in names:
        line = memory_report("mnist32")
        if line:
            print("\n" + line, file=out)
    if sk_rows:
        print("\n" + format_sklearn_table(sk_rows, peak), file=out)
    if scaling:
        print("\ngrowth with the data and the threads (cython, alternating, medians):",
              file=out, flush=True)
        per_row = bench_scaling(rounds, target, out=out)
        threads = bench_threads(rounds=rounds, target=target, out=out)
        print("\n" + format_scaling(per_row, threads), file=out)
        if memory:
            line = memory_report("wide")
            if line:
                print("\n" + line, file=out)
    print(f"\n(bench run in {time.perf_counter() - start:.0f} s)", file=out)
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--torch-worker"]:
        _torch_worker_main()
    else:
        sys.exit(main())
