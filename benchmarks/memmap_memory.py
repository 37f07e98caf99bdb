"""Private memory of a fit on a float32 memmap (out-of-core data).

Why it is built this way: the point is what ``fit`` allocates beside the
data, so the file is written first (in chunks), the child process maps it
read-only, and two figures are taken around one epoch of ``fit``: the peak of
NumPy's allocations (tracemalloc: NumPy reports its buffers to it) and the
peak growth of the process's anonymous resident memory (``RssAnon`` of
/proc/self/status, Linux: the private pages, not the file's page cache),
sampled every millisecond by a thread (NumPy's loops and the compiled
trainer release the GIL).

Usage: python benchmarks/memmap_memory.py [MiB] [backend]   (default 800 cython)
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import tracemalloc

import numpy as np


def rss_anon_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main(mib: int = 800, backend: str = "cython") -> None:
    import fastnn
    from fastnn import Dense, Network, ReLU

    n_features = 256
    rows = mib * 2**20 // (4 * n_features)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "X.f32")
        X = np.memmap(path, dtype=np.float32, mode="w+", shape=(rows, n_features))
        rng = np.random.default_rng(0)
        for s in range(0, rows, 65536):
            X[s:s + 65536] = rng.standard_normal((min(65536, rows - s), n_features),
                                                  dtype=np.float32)
        X.flush()
        del X
        y = rng.standard_normal((rows, 1)).astype(np.float32)
        X = np.memmap(path, dtype=np.float32, mode="r", shape=(rows, n_features))
        net = Network([Dense(n_features, 32), ReLU(), Dense(32, 1)], dtype="float32",
                      seed=0, backend=backend)
        before = rss_anon_mib()
        highest = [before]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.001):
                highest[0] = max(highest[0], rss_anon_mib())

        sampler = threading.Thread(target=sample)
        sampler.start()
        tracemalloc.start()
        try:
            net.fit(X, y, loss="mse", optimizer="sgd", epochs=1, batch_size=256,
                    shuffle=True, seed=0)
            peak = tracemalloc.get_traced_memory()[1] / 2**20
        finally:
            tracemalloc.stop()
            done.set()
            sampler.join()
        grew = max(highest[0], rss_anon_mib()) - before
        print(f"fastnn {fastnn.__version__} backend={backend}: {rows} x {n_features} "
              f"float32 memmap ({X.nbytes / 2**20:.0f} MiB), one epoch, batch 256, shuffled: "
              f"NumPy allocation peak {peak:.1f} MiB, RssAnon peak growth {grew:.1f} MiB "
              f"(the epoch's order alone: {rows * 8 / 2**20:.1f} MiB)")

if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 800,
         sys.argv[2] if len(sys.argv) > 2 else "cython")
