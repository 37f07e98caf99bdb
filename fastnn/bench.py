"""Benchmarks of the training loop: ``python -m fastnn bench``.

Why it is built this way: this machine is shared and noisy, so a speed claim
is a *ratio measured in one run*: every round times each backend once, in
alternation (numpy, cython, torch, numpy, ...), and the table reports medians
over rounds.  Each backend trains for a number of epochs calibrated to take
about the same wall time, and throughput is samples per second.  PyTorch, when
installed, runs in a child process (so its threads and allocator do not
disturb ours) that takes one command per round over a pipe.  The workloads
are defined once here and also used by ``benchmarks/``.

The default run fits in about a minute on the project's 2-core machines:
five rounds of each training workload, three of each GEMM shape (whose
blocks wait for the other library's threads to go idle, so a round costs
more); ``--gemm-rounds 5`` gives the GEMM the training's five.  It compares
the compiled backend with the reference, so when the compiled one cannot be
loaded it stops and says why (never a column of NaN).
"""

import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

WORKLOADS = {
    # name: sizes, activation, loss, optimizer, batch size, rows, dtype
    "xor": dict(sizes=(2, 4, 1), activation="sigmoid", loss="mse", optimizer="sgd",
                batch=None, rows=4, dtype="float64",
                title="XOR 2-4-1 sigmoid, MSE, SGD, full batch, float64"),
    "digits": dict(sizes=(64, 32, 10), activation="relu", loss="cross_entropy",
                   optimizer="adam", batch=32, rows=1797, dtype="float32",
                   title="digits 64-32-10 relu, cross-entropy, Adam, batch 32, float32"),
    "mnist32": dict(sizes=(784, 256, 128, 10), activation="relu", loss="cross_entropy",
                    optimizer="momentum", batch=64, rows=6400, dtype="float32",
                    title="MNIST-shaped 784-256-128-10 relu, SGD momentum, batch 64, float32"),
    "mnist64": dict(sizes=(784, 256, 128, 10), activation="relu", loss="cross_entropy",
                    optimizer="momentum", batch=64, rows=6400, dtype="float64",
                    title="MNIST-shaped 784-256-128-10 relu, SGD momentum, batch 64, float64"),
}


def workload_data(name):
    """Seeded synthetic data of the workload's shape: X (rows, n_in), y."""
    w = WORKLOADS[name]
    if name == "xor":
        return (np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64),
                np.array([[0], [1], [1], [0]], dtype=np.float64))
    rng = np.random.default_rng(0)
    X = rng.random((w["rows"], w["sizes"][0])).astype(w["dtype"])
    return X, rng.integers(0, w["sizes"][-1], w["rows"])


def fastnn_network(name, backend):
    """The workload's network, loss and optimizer on a fastnn backend."""
    import fastnn
    w = WORKLOADS[name]
    act = {"sigmoid": fastnn.Sigmoid, "relu": fastnn.ReLU}[w["activation"]]
    layers = []
    for n_in, n_out in zip(w["sizes"][:-1], w["sizes"][1:]):
        layers += [fastnn.Dense(n_in, n_out), act()]
    if w["loss"] == "cross_entropy":
        layers.pop()                       # logits out
    net = fastnn.Network(layers, backend=backend, dtype=w["dtype"], seed=0)
    optimizer = {"sgd": lambda: fastnn.SGD(lr=0.5),
                 "adam": lambda: fastnn.Adam(lr=1e-3),
                 "momentum": lambda: fastnn.SGD(lr=0.01, momentum=0.9)}[w["optimizer"]]()
    return net, w["loss"], optimizer


def _fastnn_trainer(name, backend):
    """A function training ``epochs`` epochs of the workload on a fastnn backend."""
    X, y = workload_data(name)
    net, loss, optimizer = fastnn_network(name, backend)
    batch = WORKLOADS[name]["batch"]
    shuffle = batch is not None            # full-batch XOR: order is irrelevant

    def train(epochs):
        net.fit(X, y, loss=loss, optimizer=optimizer, epochs=epochs, batch_size=batch,
                shuffle=shuffle, seed=0)
    return train


def _torch_trainer(name):
    """The same workload as an idiomatic PyTorch CPU training loop."""
    import torch
    w = WORKLOADS[name]
    X, y = workload_data(name)
    dtype = getattr(torch, w["dtype"])
    Xt = torch.from_numpy(X).to(dtype)
    yt = torch.from_numpy(y).to(dtype) if w["loss"] == "mse" else torch.from_numpy(y)
    act = {"sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU}[w["activation"]]
    layers = []
    for n_in, n_out in zip(w["sizes"][:-1], w["sizes"][1:]):
        layers += [torch.nn.Linear(n_in, n_out), act()]
    if w["loss"] == "cross_entropy":
        layers.pop()
    model = torch.nn.Sequential(*layers).to(dtype)
    loss_fn = torch.nn.MSELoss() if w["loss"] == "mse" else torch.nn.CrossEntropyLoss()
    optimizer = {"sgd": lambda p: torch.optim.SGD(p, lr=0.5),
                 "adam": lambda p: torch.optim.Adam(p, lr=1e-3),
                 "momentum": lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9)}[
                     w["optimizer"]](model.parameters())
    n = len(Xt)
    batch = w["batch"] or n
    generator = torch.Generator().manual_seed(0)

    def train(epochs):
        for _ in range(epochs):
            order = torch.randperm(n, generator=generator) if w["batch"] else None
            for start in range(0, n, batch):
                if order is None:
                    xb, yb = Xt[start:start + batch], yt[start:start + batch]
                else:
                    idx = order[start:start + batch]
                    xb, yb = Xt[idx], yt[idx]
                optimizer.zero_grad()
                loss_fn(model(xb), yb).backward()
                optimizer.step()
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


def torch_available():
    try:
        import importlib.util
        return importlib.util.find_spec("torch") is not None
    except ValueError:
        return False


def bench_training(names, rounds=5, target=0.25, use_torch=None, out=sys.stdout):
    """Samples/s per backend and workload, medians of alternating rounds.

    Returns {workload: {backend: median samples/s}}.
    """
    from fastnn.backends import available_backends
    backends = [b for b in ("numpy", "cython") if b in available_backends()]
    use_torch = torch_available() if use_torch is None else use_torch
    worker = _TorchWorker() if use_torch else None
    results = {}
    try:
        for name in names:
            rows = WORKLOADS[name]["rows"]
            trainers = {b: _fastnn_trainer(name, b) for b in backends}
            epochs = {b: _calibrate(t, target) for b, t in trainers.items()}
            if worker:
                epochs["torch"] = worker.ask(workload=name, target=target)["epochs"]
            speeds = {b: [] for b in epochs}
            for _ in range(rounds):
                for b in epochs:
                    seconds = (worker.ask(workload=name, epochs=epochs[b])["seconds"]
                               if b == "torch" else _time(trainers[b], epochs[b]))
                    speeds[b].append(rows * epochs[b] / seconds)
            results[name] = {b: statistics.median(v) for b, v in speeds.items()}
            print(f"  {WORKLOADS[name]['title']}: " + ", ".join(
                f"{b} {v:,.0f}/s" for b, v in results[name].items()), file=out, flush=True)
    finally:
        if worker:
            worker.close()
    return results


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


def bench_gemm(shapes=GEMM_SHAPES, rounds=5, target=0.05, settle=0.3, out=sys.stdout):
    """GFLOP/s of fastnn's GEMM and NumPy's ``@`` per shape, alternating, medians.

    Each timed block starts ``settle`` seconds after the other library's, with
    one untimed call, so neither pays for the other's spinning threads (and
    fastnn's pool is out of the one-thread backoff that a busy core triggers).

    Returns a list of (label, fastnn GFLOP/s, numpy GFLOP/s).
    """
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
        row = (label, statistics.median(rates[ours]), statistics.median(rates[theirs]))
        rows.append(row)
        print(f"  gemm {label}: fastnn {row[1]:.0f} GFLOP/s, numpy {row[2]:.0f} GFLOP/s",
              file=out, flush=True)
    return rows


def peak_memory(name, backend, epochs=1):
    """Peak resident memory (MiB) that ``fit`` adds, measured in a child process.

    The child builds the data, resets the kernel's high-water mark
    (``/proc/self/clear_refs``), fits, and reports VmHWM minus the resident
    size just before ``fit``.  Linux only; returns None elsewhere.
    """
    code = (
        "import re\n"
        "from fastnn.bench import _fastnn_trainer\n"
        f"train = _fastnn_trainer({name!r}, {backend!r})\n"
        "def status(key):\n"
        "    text = open('/proc/self/status').read()\n"
        "    return int(re.search(key + r':\\s+(\\d+)', text).group(1))\n"
        "open('/proc/self/clear_refs', 'w').write('5')\n"
        "before = status('VmRSS')\n"
        f"train({epochs})\n"
        "print(status('VmHWM') - before)\n")
    try:
        out = subprocess.run([sys.executable, "-c", code], check=True, text=True,
                             capture_output=True).stdout
    except (subprocess.CalledProcessError, OSError):
        return None
    return int(out) / 1024.0


def format_table(results, gemm=None):
    """The markdown table printed by ``python -m fastnn bench``."""
    has_torch = any("torch" in r for r in results.values())
    head = "| workload | numpy samples/s | cython samples/s | cython / numpy |"
    rule = "|---|---:|---:|---:|"
    if has_torch:
        head += " torch samples/s | cython / torch |"
        rule += "---:|---:|"
    lines = [head, rule]
    for name, r in results.items():
        row = (f"| {WORKLOADS[name]['title']} | {r.get('numpy', float('nan')):,.0f} | "
               f"{r.get('cython', float('nan')):,.0f} | "
               f"{r.get('cython', float('nan')) / r.get('numpy', float('nan')):.1f}x |")
        if has_torch:
            row += (f" {r.get('torch', float('nan')):,.0f} | "
                    f"{r.get('cython', float('nan')) / r.get('torch', float('nan')):.1f}x |")
        lines.append(row)
    if gemm:
        lines += ["", "| GEMM (same run) | fastnn GFLOP/s | numpy @ GFLOP/s | fastnn / numpy |",
                  "|---|---:|---:|---:|"]
        lines += [f"| {label} | {ours:.0f} | {theirs:.0f} | {ours / theirs:.2f} |"
                  for label, ours, theirs in gemm]
    return "\n".join(lines)


def main(workloads=None, rounds=5, target=0.25, use_torch=None, gemm=True, memory=True,
         out=sys.stdout, gemm_rounds=3, err=sys.stderr):
    """Run the benchmarks and print the table; 1 (and the reason, on ``err``) when the
    compiled backend cannot be loaded, else 0."""
    import fastnn
    from fastnn.backends import _compiled_status
    module, problem = _compiled_status()
    if module is None:
        print(f"python -m fastnn bench: the compiled backend cannot be used, so there is "
              f"nothing to compare: {problem}", file=err)
        return 1
    start = time.perf_counter()
    names = workloads or list(WORKLOADS)
    print(f"fastnn {fastnn.__version__} bench: {rounds} alternating rounds, ~{target}s "
          f"per backend per round ({gemm_rounds} rounds per GEMM shape), {os.cpu_count()} "
          f"cores, {fastnn.get_num_threads()} threads", file=out, flush=True)
    results = bench_training(names, rounds, target, use_torch, out)
    g = bench_gemm(rounds=gemm_rounds, out=out) if gemm else None
    print("\n" + format_table(results, g), file=out)
    if memory and "mnist32" in names:
        mem = {b: peak_memory("mnist32", b) for b in ("numpy", "cython")}
        if None not in mem.values():
            print(f"\npeak memory added by one epoch of fit, MNIST-shaped float32: numpy "
                  f"{mem['numpy']:.1f} MiB, cython {mem['cython']:.1f} MiB", file=out)
    print(f"\n(bench run in {time.perf_counter() - start:.0f} s)", file=out)
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--torch-worker"]:
        _torch_worker_main()
    else:
        sys.exit(main())
