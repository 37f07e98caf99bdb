"""Command line: ``python -m fastnn demo``, ``bench`` and ``info``.

Why it is built this way: the demo is the tutorials' networks, run through the
public API exactly as a user would write them, so it doubles as a smoke test
of an installation.  Each subcommand is one small function.
"""

import argparse
import sys

import numpy as np

import fastnn
from fastnn import bench, datasets


def demo(backend=None, seed=0):
    """Train the tutorials' networks (XOR, the gender example, a spiral classifier) and an
    MLP on the real 8x8 digits (when scikit-learn is installed), and print."""
    ops = fastnn.get_backend(backend)
    print(f"fastnn {fastnn.__version__} demo, backend {ops.name!r}\n")

    print("XOR with a 2-4-1 sigmoid network (MSE, SGD lr=2, full batch, 3000 epochs)")
    X, y = datasets.xor()
    net = fastnn.Network([fastnn.Dense(2, 4), fastnn.Sigmoid(), fastnn.Dense(4, 1),
                          fastnn.Sigmoid()], backend=ops.name, seed=seed)
    history = net.fit(X, y, loss=fastnn.MSELoss(), optimizer=fastnn.SGD(lr=2.0), epochs=3000)
    for epoch in (0, 999, 1999, 2999):
        print(f"  epoch {epoch + 1:4d}  loss {history.loss[epoch]:.6f}")
    for inputs, pred, expected in zip(X, net.predict(X), y):
        print(f"  {inputs.astype(int)} -> {pred[0]:.4f} (expected {int(expected[0])})")

    print("\nGender from weight and height (2-2-1 sigmoid, per-sample SGD, 1000 epochs)")
    X, y = datasets.gender()
    net = fastnn.Network([fastnn.Dense(2, 2, init="normal"), fastnn.Sigmoid(),
                          fastnn.Dense(2, 1, init="normal"), fastnn.Sigmoid()],
                         backend=ops.name, seed=seed)
    history = net.fit(X, y, loss="mse", optimizer=fastnn.SGD(lr=0.1), epochs=1000,
                      batch_size=1, shuffle=False)
    print(f"  loss: epoch 1 {history.loss[0]:.3f}, epoch 1000 {history.loss[-1]:.3f}")
    X_new, names, _ = datasets.gender_new_people()
    for name, p in zip(names, net.predict(X_new)[:, 0]):
        print(f"  {name}: {p:.3f} - {'F' if p > 0.5 else 'M'}")

    print("\nThree interleaved spirals (2-64-64-3 ReLU, cross-entropy, Adam, batch 32)")
    X, y = datasets.spirals(n_per_class=200, seed=seed)
    order = np.random.default_rng(seed).permutation(len(X))
    train, test = order[:480], order[480:]
    net = fastnn.Network([fastnn.Dense(2, 64), fastnn.ReLU(), fastnn.Dense(64, 64),
                          fastnn.ReLU(), fastnn.Dense(64, 3)], backend=ops.name, seed=seed)
    history = net.fit(X[train], y[train], loss="cross_entropy",
                      optimizer=fastnn.Adam(lr=0.01), epochs=200, batch_size=32,
                      validation_data=(X[test], y[test]))
    train_accuracy = net.evaluate(X[train], y[train], loss="cross_entropy")["accuracy"]
    print(f"  final loss {history.loss[-1]:.4f}, train accuracy {train_accuracy:.3f}, "
          f"held-out accuracy {history.val_accuracy[-1]:.3f}")

    print("\nReal handwritten digits, 8x8 (64-64-10 ReLU, cross-entropy, Adam, batch 32)")
    try:
        X, y = datasets.load_digits()          # pixels / 16, in [0, 1]
    except ImportError:
        print('  skipped: the digits part needs scikit-learn: pip install "fastnn[sklearn]"')
        return 0
    order = np.random.default_rng(seed).permutation(len(X))
    cut = (3 * len(X)) // 4                      # seeded 75 / 25 split
    train, test = order[:cut], order[cut:]
    net = fastnn.Network([fastnn.Dense(64, 64), fastnn.ReLU(), fastnn.Dense(64, 10)],
                         backend=ops.name, seed=seed)
    history = net.fit(X[train], y[train], loss="cross_entropy",
                      optimizer=fastnn.Adam(lr=0.003), epochs=40, batch_size=32)
    accuracy = net.evaluate(X[test], y[test], loss="cross_entropy")["accuracy"]
    print(f"  {len(train)} training images, final loss {history.loss[-1]:.4f}; "
          f"held-out accuracy on {len(test)} images {accuracy:.3f}")
    return 0


def info():
    """Print the version, the backends, the instruction set, threads and build flags."""
    print(f"fastnn {fastnn.__version__}")
    fastnn.show_config()
    return 0


def _positive_int(text):
    """argparse type: an integer >= 1 (a median needs at least one round)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m fastnn", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="train the tutorials' networks and print the results")
    p_demo.add_argument("--backend", choices=("numpy", "cython"), default=None)
    p_demo.add_argument("--seed", type=int, default=0)
    p_bench = sub.add_parser("bench", help="time the training workloads, backends alternating")
    p_bench.add_argument("--workload", action="append",
                         choices=sorted(bench.WORKLOADS) + sorted(bench.SKLEARN_WORKLOADS),
                         help="run only this workload (repeatable; sk_*: scikit-learn's "
                              "MLPClassifier against fastnn.sklearn's); default: every "
                              "training workload and the default sk_* rows")
    p_bench.add_argument("--rounds", type=_positive_int, default=3,
                         help="alternating rounds per training workload (median)")
    p_bench.add_argument("--gemm-rounds", type=_positive_int, default=3,
                         help="alternating rounds per GEMM shape (median)")
    p_bench.add_argument("--seconds", type=float, default=0.25,
                         help="time per trainer per round")
    p_bench.add_argument("--no-torch", action="store_true", help="skip the PyTorch column")
    p_bench.add_argument("--no-gemm", action="store_true", help="skip the GEMM comparison")
    p_bench.add_argument("--scaling", action="store_true",
                         help="also: time per row at 1,000 / 10,000 / 100,000 rows, 1 thread "
                              "against 2, and the wide network's memory (~20 s more)")
    p_bench.add_argument("--no-sklearn", action="store_true",
                         help="skip the scikit-learn workloads (sk_*)")
    p_bench.add_argument("--sklearn-all", action="store_true",
                         help="every scikit-learn workload: also the MNIST-shaped sgd and "
                              "lbfgs rows and the float32 adam rows (~15 s more)")
    sub.add_parser("info", help="show the version, backends, ISA, threads and build flags")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo(args.backend, args.seed)
    if args.command == "bench":
        return bench.main(args.workload, args.rounds, args.seconds,
                          False if args.no_torch else None, gemm=not args.no_gemm,
                          gemm_rounds=args.gemm_rounds, scaling=args.scaling,
                          sklearn=not args.no_sklearn, sklearn_all=args.sklearn_all)
    return info()


if __name__ == "__main__":
    sys.exit(main())
