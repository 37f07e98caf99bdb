"""A short training run of the compiled backend under valgrind memcheck.

Why it is built this way: valgrind sees reads of uninitialised memory and
accesses outside heap blocks in the very -O3 build users run (AddressSanitizer
needs its own build and sees no uninitialised reads), but it is ~50x slower,
so this is one small workload through every C path of a real fit: an
MNIST-shaped network (784 inputs, a fused ReLU layer, dropout, 10 logits)
trained with Adam on cross-entropy labels, shuffled batches with a partial
last one, validation data, then predict, evaluate, save and load.
.ci/run runs

    PYTHONMALLOC=malloc valgrind --xml=yes --xml-file=vg.xml ... python .ci/memcheck.py
    python .ci/memcheck.py --verdict vg.xml

The verdict counts only errors with a frame of fastnn's extension
(cython_ops*.so) on one of their stacks -- where the bad access happened or,
for an uninitialised value, where the memory came from -- and definite
leaks allocated there.  CPython and NumPy have errors of their own under
valgrind (CPython 3.11's int.from_bytes, the dynamic loader, interpreter
lifetime "leaks"); a suppressions file for those would have to list them
all and go stale with every Python, while the filter below needs nothing.

Instruction sets: valgrind hides AVX-512 from the program, so the best it
runs is AVX2; valgrind 3.19 cannot decode the ``vmovq xmm, xmm`` that GCC
emits for the AVX2 float64 kernel's scalar FMA (_mm_set_sd in
csrc/gemm_avx2.c) and stops with SIGILL, so AVX2 runs float32 only.  The
generic kernels run both dtypes.  AddressSanitizer (the other CI step)
covers every instruction set.
"""

import os
import sys
import tempfile
import xml.etree.ElementTree as ET

import numpy as np

#: (instruction set, dtype) pairs run under valgrind (see the module note)
CASES = [("generic", "float32"), ("generic", "float64"), ("avx2", "float32")]
EXTENSION = "cython_ops"


def run(isa, dtype):
    """Fit, predict, evaluate, save and load; True if the numbers are sane."""
    from fastnn import Adam, CrossEntropyLoss, Dense, Dropout, Network, ReLU

    rng = np.random.default_rng(0)
    n, n_val = 300, 64                      # 300 = 4 batches of 64 + a partial one
    X = rng.random((n + n_val, 784)).astype(dtype)
    y = rng.integers(0, 10, n + n_val)
    net = Network([Dense(784, 32), ReLU(), Dropout(0.2), Dense(32, 10)],
                  backend="cython", dtype=dtype, seed=1)
    history = net.fit(X[:n], y[:n], loss=CrossEntropyLoss(), optimizer=Adam(lr=1e-3),
                      epochs=3, batch_size=64, shuffle=True, seed=2,
                      validation_data=(X[n:], y[n:]))
    pred = net.predict(X[n:])
    scores = net.evaluate(X[n:], y[n:], loss="cross_entropy")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "net.npz")
        net.save(path)
        again = Network.load(path, backend="cython")
    same = np.array_equal(again.predict(X[n:]), pred)
    print(f"{isa} {dtype}: loss {history.loss[0]:.4f} -> {history.loss[-1]:.4f}, "
          f"evaluate {scores}, reloaded predicts the same: {same}")
    return bool(np.all(np.isfinite(history.loss)) and np.all(np.isfinite(pred)) and same)


def workload():
    from fastnn.backends import cython_ops

    ok = True
    for isa, dtype in CASES:
        if isa not in cython_ops.supported_isas():
            print(f"{isa}: not available here, skipped")
            continue
        cython_ops.set_isa(isa)
        ok = run(isa, dtype) and ok
    return 0 if ok else 1


def _frames(error):
    """Every (fn, obj, file, line) on every stack of a valgrind <error>."""
    return [(f.findtext("fn") or "?", f.findtext("obj") or "", f.findtext("file") or "",
             f.findtext("line") or "")
            for stack in error.findall("stack") for f in stack.findall("frame")]


def verdict(xml_path):
    """Print the errors that involve fastnn's extension; 1 if there are any."""
    root = ET.parse(xml_path).getroot()
    ours, others = [], 0
    for error in root.iter("error"):
        kind = error.findtext("kind")
        if kind.startswith("Leak_") and kind != "Leak_DefinitelyLost":
            continue
        frames = _frames(error)
        if any(EXTENSION in obj for _, obj, _, _ in frames):
            ours.append((kind, error.findtext("what") or error.findtext("xwhat/text"), frames))
        else:
            others += 1
    for kind, what, frames in ours:
        print(f"{kind}: {what}")
        for fn, obj, file, line in frames[:12]:
            print(f"    {fn} ({file}:{line})" if file else f"    {fn} ({os.path.basename(obj)})")
    print(f"valgrind: {len(ours)} error(s) involving fastnn's extension, "
          f"{others} elsewhere (CPython, NumPy, the loader: not counted)")
    fatal = root.find("fatal_signal")
    if fatal is not None:
        print(f"valgrind: the program died of {fatal.findtext('signame')}")
        return 1
    return 1 if ours else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--verdict":
        sys.exit(verdict(sys.argv[2]))
    sys.exit(workload())
