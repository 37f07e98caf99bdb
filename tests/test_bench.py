"""The benchmark's own pieces: the tutorial baseline, the FMA peak, the tables.

Why it is built this way: a speed-up is only as honest as its baseline, so
the "tutorial" loop (``fastnn.bench.TutorialMLP``) is checked to do the same
computation as fastnn's reference backend -- same initial weights, same
batch order, the same weights after a few batches to float64 tolerance, on
every workload's network.  The FMA peak and the report are checked for what
they must be (positive, finite, float32 above float64 on SIMD; the columns
and the "% of peak" computed from the counts), never for a speed.
"""

import math

import numpy as np
import pytest

import fastnn
from fastnn import bench
from fastnn.__main__ import main as cli
from tests_conftest import compiled_problem, tol


@pytest.fixture
def co():
    """The compiled module; fails (naming the cause) when it cannot be tested."""
    if compiled_problem() is not None:
        pytest.fail(f"the compiled backend cannot be tested: {compiled_problem()}",
                    pytrace=False)
    from fastnn.backends import cython_ops
    return cython_ops


# ------------------------------------------------------------- the baseline
def _few_batches(name):
    """The workload's data, cut to two full batches and a partial one, in float64."""
    w = bench.WORKLOADS[name]
    X, y = bench.workload_data(name)
    if w["batch"] is not None:
        rows = min(len(X), 2 * w["batch"] + max(1, w["batch"] // 2))
        X, y = X[:rows], y[:rows]
    return X.astype(np.float64), y


@pytest.mark.parametrize("name", [n for n, w in bench.WORKLOADS.items() if w["tutorial"]])
def test_tutorial_loop_trains_as_the_reference(name):
    w = bench.WORKLOADS[name]
    X, y = _few_batches(name)
    net, loss, optimizer = bench.fastnn_network(name, "numpy", dtype="float64")
    mlp = bench.tutorial_network(name, net=net)             # the same initial weights
    initial = [W.copy() for W in mlp.W]
    # the same order: fit's seeded permutation per epoch, or the rows in order
    history = net.fit(X, y, loss=loss, optimizer=optimizer, epochs=2, batch_size=w["batch"],
                      shuffle=w["shuffle"], seed=0)
    losses = mlp.fit(X, y, 2, w["batch"], np.random.default_rng(0) if w["shuffle"] else None)
    dense = [layer for layer in net.layers if hasattr(layer, "W")]
    assert len(dense) == len(mlp.W) == len(w["sizes"]) - 1
    for layer, W, b, W0 in zip(dense, mlp.W, mlp.b, initial):
        assert not np.allclose(W, W0)                           # it did train
        np.testing.assert_allclose(W, layer.W, **tol(np.float64))
        np.testing.assert_allclose(b, layer.b, **tol(np.float64))
    np.testing.assert_allclose(losses, history.loss, rtol=1e-10)


def test_tutorial_loop_differs_from_another_computation():
    # the comparison above can fail: the same loop with momentum 0.5 instead of
    # 0.9 leaves other weights after the same batches
    X, y = _few_batches("mnist64")
    net, loss, optimizer = bench.fastnn_network("mnist64", "numpy")
    mlp = bench.tutorial_network("mnist64", net=net)
    mlp.momentum = 0.5
    net.fit(X, y, loss=loss, optimizer=optimizer, epochs=1, batch_size=64, shuffle=False)
    mlp.fit(X, y, 1, 64)
    assert not np.allclose(mlp.W[0], net.layers[0].W, **tol(np.float64))


@pytest.mark.parametrize("backend", ["numpy", "cython"])
def test_toolbox_torch_runner_builds_the_same_network_and_schedule(backend):
    """The torch runner's model, optimizer and per-call one-cycle schedule, given
    fastnn's initial weights, train as fastnn does (float64, two calls)."""
    torch = pytest.importorskip("torch")
    if backend == "cython":
        from fastnn.backends import available_backends
        if "cython" not in available_backends():
            pytest.skip("compiled backend not built")
    name = "toolbox"
    w = bench.WORKLOADS[name]
    assert not w["tutorial"]
    with pytest.raises(ValueError, match="cannot express"):
        bench.tutorial_network(name)
    X, y = _few_batches(name)
    net, loss, optimizer = bench.fastnn_network(name, backend, dtype="float64")
    kinds = [type(layer).__name__ for layer in net.layers]
    assert kinds == ["Dense", "BatchNorm1d", "GELU", "Dense", "BatchNorm1d", "GELU", "Dense"]
    model, loss_fn, topt = bench.torch_model(name, dtype=torch.float64)
    assert [type(m) for m in model] == [type(m) for m in net.to_torch()]
    assert type(topt) is torch.optim.AdamW and type(optimizer) is fastnn.AdamW
    model.load_state_dict(net.to_torch().state_dict())
    model.train()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    n, batch = len(X), w["batch"]
    for epochs in (2, 1):              # two training calls, a schedule each
        net.fit(X, y, loss=loss, optimizer=optimizer, epochs=epochs, batch_size=batch,
                shuffle=False, lr_scheduler=bench.fastnn_schedule(name, epochs, n))
        scheduler = bench.torch_schedule(name, topt, epochs, n)
        for _ in range(epochs):
            for start in range(0, n, batch):
                topt.zero_grad()
                loss_fn(model(Xt[start:start + batch]), yt[start:start + batch]).backward()
                topt.step()
                scheduler.step()
    state = net.to_torch().state_dict()
    for key, value in model.state_dict().items():
        if key in ("0.bias", "3.bias"):
            # a bias before a batch norm has gradient 0 up to rounding: both stay
            # at rounding noise (AdamW's normalized steps of it differ)
            assert np.abs(state[key].numpy()).max() < 1e-9
            assert np.abs(value.numpy()).max() < 1e-9
            continue
        np.testing.assert_allclose(state[key].numpy(), value.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=key)
    assert int(state["1.num_batches_tracked"]) == 3 * bench.batches_per_epoch(name, n)


def test_tutorial_loop_refuses_what_it_does_not_know():
    with pytest.raises(ValueError, match="unknown activation, loss or optimizer"):
        bench.TutorialMLP([np.ones((2, 1))], [np.zeros(1)], "tanh", "mse", "sgd", 0.1)


# ------------------------------------------------------------------ the peak
def test_fma_peak_is_a_positive_finite_rate_on_every_isa(co):
    previous = co.get_isa()
    try:
        for isa in co.supported_isas():
            co.set_isa(isa)
            for dtype in ("float32", np.float64):
                gflops = co.fma_peak(dtype)
                assert isinstance(gflops, float) and math.isfinite(gflops) and gflops > 0, \
                    (isa, dtype, gflops)
    finally:
        co.set_isa(previous)


def test_fma_peak_float32_at_least_float64_on_simd(co):
    # twice the lanes per register: ~2x on AVX2 / AVX-512.  One thread, and the
    # best of three each, so a neighbour's burst on the shared cores cannot
    # turn the comparison around
    simd = [isa for isa in co.supported_isas() if isa != "generic"]
    if not simd:
        pytest.skip("this CPU has no AVX2 or AVX-512")
    previous_isa, previous_threads = co.get_isa(), co.get_num_threads()
    try:
        co.set_num_threads(1)
        for isa in simd:
            co.set_isa(isa)
            best = {dt: max(co.fma_peak(dt) for _ in range(3)) for dt in ("float64", "float32")}
            assert best["float32"] >= best["float64"], (isa, best)
    finally:
        co.set_isa(previous_isa)
        co.set_num_threads(previous_threads)


@pytest.mark.parametrize("dtype", ["int32", np.float16, "complex128", None, "nonsense", 3])
def test_fma_peak_refuses_other_dtypes(co, dtype):
    with pytest.raises(TypeError, match=r"fma_peak: dtype must be float32 or float64, got"):
        co.fma_peak(dtype)


# ------------------------------------------------------------------ the report
def test_flops_per_sample_counts_forward_dw_and_dx_but_the_first_dx():
    for name, w in bench.WORKLOADS.items():
        sizes = w["sizes"]
        forward = sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:]))
        first_dx = 2 * sizes[0] * sizes[1]
        assert bench.flops_per_sample(name) == 3 * forward - first_dx, name


def test_format_table_columns_ratios_and_percent_of_peak():
    results = {name: {"tutorial": 1000.0 * (i + 1), "numpy": 500.0 * (i + 1),
                      "cython": 4000.0 * (i + 1), "torch": 2000.0 * (i + 1)}
               for i, name in enumerate(bench.WORKLOADS)}
    peak = {"float32": 300.0, "float64": 150.0}
    gemm = [("AB 64x784x256 float32", "float32", 120.0, 60.0)]
    lines = bench.format_table(results, gemm, peak).splitlines()
    assert lines[0] == ("| workload | tutorial samples/s | numpy samples/s | cython samples/s | "
                        "torch samples/s | cython / tutorial | cython / torch | % of peak |")
    rows = {line.split(" | ")[0][2:]: line for line in lines[2:2 + len(results)]}
    for name, r in results.items():
        w = bench.WORKLOADS[name]
        cells = [c.strip() for c in rows[w["title"]].strip("|").split("|")]
        assert cells[1:5] == [f"{r[t]:,.0f}" for t in ("tutorial", "numpy", "cython", "torch")]
        assert cells[5] == f"{r['cython'] / r['tutorial']:.1f}x"
        assert cells[6] == f"{r['cython'] / r['torch']:.1f}x"
        if name in ("xor", "weight_height"):
            assert cells[7] == "—"
        else:
            pct = 100 * r["cython"] * bench.flops_per_sample(name) / (peak[w["dtype"]] * 1e9)
            assert cells[7] == f"{pct:.1f}%"
    assert lines[-3] == ("| GEMM (same run) | fastnn GFLOP/s | numpy @ GFLOP/s | fastnn / numpy "
                         "| fastnn % of peak |")
    assert lines[-1] == "| AB 64x784x256 float32 | 120 | 60 | 2.00 | 40% |"


def test_format_table_without_torch_or_peak():
    lines = bench.format_table({"xor": {"tutorial": 10.0, "numpy": 5.0, "cython": 50.0}})
    assert lines.splitlines() == [
        "| workload | tutorial samples/s | numpy samples/s | cython samples/s | "
        "cython / tutorial |", "|---|---:|---:|---:|---:|",
        f"| {bench.WORKLOADS['xor']['title']} | 10 | 5 | 50 | 5.0x |"]


def test_memory_budget_is_weights_optimizer_state_and_one_batch():
    # MNIST-shaped float32 with momentum: weights and velocity, 64 rows of Z and A
    params = (784 * 256 + 256) + (256 * 128 + 128) + (128 * 10 + 10)
    expected = (2 * params + 64 * (256 + 128 + 10) * 2) * 4 / 2**20
    assert bench.memory_budget("mnist32") == pytest.approx(expected)
    wide = (784 * 1024 + 1024) + (1024 * 1024 + 1024) + (1024 * 10 + 10)     # Adam: m and v
    assert bench.memory_budget("wide") == pytest.approx(
        (3 * wide + 256 * (1024 + 1024 + 10) * 2) * 4 / 2**20)


def test_weight_height_is_the_tutorials_table():
    X, y = bench.workload_data("weight_height")
    np.testing.assert_array_equal(X, [[-2, -1], [25, 6], [17, 4], [-15, -6]])
    np.testing.assert_array_equal(y, [[1], [0], [0], [1]])
    w = bench.WORKLOADS["weight_height"]
    assert (w["sizes"], w["batch"], w["shuffle"], w["lr"]) == ((2, 2, 1), 1, False, 0.1)


# ------------------------------------------------------------- the command
def test_bench_command_prints_the_peak_and_the_table(co, capfd):
    assert cli(["bench", "--workload", "xor", "--workload", "digits", "--rounds", "1",
                "--seconds", "0.01", "--no-torch", "--no-gemm"]) == 0
    out = capfd.readouterr().out
    assert f"FMA peak ({co.get_isa()}, {fastnn.get_num_threads()} threads): float32 " in out
    lines = out.splitlines()
    head = lines.index("| workload | tutorial samples/s | numpy samples/s | cython samples/s | "
                       "cython / tutorial | % of peak |")
    assert lines[head + 2].startswith(f"| {bench.WORKLOADS['xor']['title']} |")
    assert lines[head + 2].endswith("| — |")
    assert lines[head + 3].startswith(f"| {bench.WORKLOADS['digits']['title']} |")
    assert lines[head + 3].endswith("% |")


def test_scaling_and_threads_measure_and_restore_the_thread_count(co):
    before = fastnn.get_num_threads()
    per_row = bench.bench_scaling(rounds=1, target=0.01, rows=(100, 300))
    assert set(per_row) == {100, 300} and all(v > 0 for v in per_row.values())
    fastnn.set_num_threads(2)
    try:
        rates = bench.bench_threads(names=("digits",), rounds=1, target=0.01)
        assert set(rates["digits"]) == {1, 2} and all(v > 0 for v in rates["digits"].values())
        assert fastnn.get_num_threads() == 2
    finally:
        fastnn.set_num_threads(before)


def test_format_scaling_reports_the_ratios():
    per_row = {1_000: 2e-6, 10_000: 2.2e-6, 100_000: 3e-6}
    threads = {"mnist32": {1: 100.0, 2: 150.0}, "wide": {1: 10.0, 2: 19.0}}
    lines = bench.format_scaling(per_row, threads).splitlines()
    assert lines[2] == "| 1,000 rows | 2.0 | 2.00 |"
    assert lines[4] == "| 100,000 rows | 300.0 | 3.00 |"
    assert lines[6] == f"per-row time, 100,000 rows / 1,000 rows: {3e-6 / 2e-6:.2f}x"
    assert lines[8] == "| threads, cython | 1 thread samples/s | 2 threads samples/s | 2 / 1 |"
    assert lines[10] == f"| {bench.WORKLOADS['mnist32']['title']} | 100 | 150 | 1.50x |"
    assert lines[11].endswith(" | 10 | 19 | 1.90x |")


# ------------------------------------------- scikit-learn's MLPs, same model
#: a quick configuration of the scikit-learn workloads: few rows, two epochs
SK_QUICK = dict(rows=150, max_iter=2, settle=0.0)


def test_sklearn_workloads_default_rows_and_selection():
    defaults = bench.sklearn_names()
    assert defaults == ["sk_digits_adam", "sk_digits_sgd", "sk_digits_lbfgs", "sk_mnist_adam"]
    assert bench.sklearn_names(sklearn_all=True) == list(bench.SKLEARN_WORKLOADS)
    assert bench.sklearn_names(sklearn=False) == []
    assert bench.sklearn_names(["xor", "sk_mnist_lbfgs"]) == ["sk_mnist_lbfgs"]
    assert bench.sklearn_names(["xor"]) == []
    for name, w in bench.SKLEARN_WORKLOADS.items():
        assert w["solver"] in ("adam", "sgd", "lbfgs") and w["hidden"] == (100,), name
        assert w["dtype"] in ("float64", "float32") and w["dtype"] in w["title"], name
        assert str(w["max_iter"]) in w["title"], name
    # the float32 variant of each adam row is there, for information
    for data in ("digits", "mnist"):
        assert any(w["data"] == data and w["solver"] == "adam" and w["dtype"] == "float32"
                   for w in bench.SKLEARN_WORKLOADS.values())
    # the names do not collide with the training workloads'
    assert not set(bench.SKLEARN_WORKLOADS) & set(bench.WORKLOADS)


def test_sklearn_data_shapes_classes_and_dtype():
    pytest.importorskip("sklearn")
    X, y = bench.sklearn_data("digits")
    assert X.shape == (1797, 64) and X.dtype == np.float64 and y.shape == (1797,)
    assert X.min() == 0.0 and X.max() == 1.0                   # pixels / 16
    X, y = bench.sklearn_data("mnist", dtype="float32")
    assert X.shape == (10_000, 784) and X.dtype == np.float32 and X.flags.c_contiguous
    assert 0.0 <= X.min() and X.max() < 1.0
    counts = np.bincount(y, minlength=10)
    assert len(counts) == 10 and counts.min() > 0.03 * len(y), counts   # every class, learnable
    X2, y2 = bench.sklearn_data("mnist", rows=300)
    np.testing.assert_array_equal(y2, y[:300])                 # a cut of the same set
    np.testing.assert_array_equal(X2.astype(np.float32), X[:300])
    with pytest.raises(ValueError, match="unknown data set"):
        bench.sklearn_data("cifar")


def test_sklearn_params_run_every_epoch():
    # tol=0 and n_iter_no_change=max_iter: scikit-learn's estimator runs all
    # max_iter epochs even when the loss stops improving (a large learning rate
    # makes it rise and fall)
    pytest.importorskip("sklearn")
    import warnings
    from sklearn.neural_network import MLPClassifier
    params = bench.sklearn_params("sk_digits_sgd", max_iter=12)
    assert params == dict(hidden_layer_sizes=(100,), solver="sgd", max_iter=12, tol=0.0,
                          n_iter_no_change=12, random_state=0)
    X, y = bench.sklearn_data("digits", rows=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MLPClassifier(**dict(params, learning_rate_init=2.0)).fit(X, y)
        assert model.n_iter_ == 12
        # the same with the default n_iter_no_change stops early: the check can fail
        early = MLPClassifier(**dict(params, learning_rate_init=2.0, n_iter_no_change=1)).fit(X, y)
    assert early.n_iter_ < 12


def test_sklearn_fit_flops_formula():
    n, n_in, h, k = 37, 64, 100, 10
    forward = 2 * n * (n_in * h + h * k)
    backward = 2 * n * (n_in * h + 2 * h * k)
    assert bench.sklearn_fit_flops((n_in, h, k), n, 3) == 3 * (forward + backward)
    # two hidden layers: dW everywhere, dX for all but the first
    sizes = (5, 7, 3, 2)
    per_row = 2 * (5 * 7 + 7 * 3 + 3 * 2) + 2 * (5 * 7 + 2 * 7 * 3 + 2 * 3 * 2)
    assert bench.sklearn_fit_flops(sizes, 4, 1) == 4 * per_row


def test_coef_difference_is_the_largest_relative_layer_difference():
    b = [np.array([[1.0, -4.0]]), np.array([[2.0], [0.5]])]
    assert bench.coef_difference([x.copy() for x in b], b) == 0.0
    a = [np.array([[1.0, -4.2]]), np.array([[2.0], [0.9]])]
    assert bench.coef_difference(a, b) == pytest.approx(max(0.2 / 4.0, 0.4 / 2.0))
    assert bench.coef_difference(a[:1], b) == float("inf")
    assert bench.coef_difference([a[0], a[1].T], b) == float("inf")


def _check_sklearn_row(row, name, rows):
    w = bench.SKLEARN_WORKLOADS[name]
    assert row["name"] == name and row["title"] == w["title"] and row["dtype"] == w["dtype"]
    assert row["sklearn_s"] > 0 and row["n_iter"][0] == SK_QUICK["max_iter"]
    if row["error"] is not None:
        # e.g. a solver fastnn.sklearn does not have (yet): the row says so, briefly
        assert row["error"].startswith("fastnn: ") and "\n" not in row["error"]
        assert len(row["error"]) < 120
        assert row["fastnn_s"] is None and row["speedup"] is None and row["pairs"] == 0
        return
    assert row["fastnn_s"] > 0 and row["pairs"] == 1 + w["extra_pairs"]
    assert row["speedup"] == row["sklearn_s"] / row["fastnn_s"]
    assert row["n_iter"] == (SK_QUICK["max_iter"], SK_QUICK["max_iter"])
    assert math.isfinite(row["coef_diff"]) and row["coef_diff"] >= 0
    classes = len(np.unique(bench.sklearn_data(w["data"], rows)[1]))
    n_features = {"digits": 64, "mnist": 784}[w["data"]]
    assert row["flops"] == bench.sklearn_fit_flops((n_features, 100, classes), rows,
                                                   SK_QUICK["max_iter"])
    assert row["gflops"] == pytest.approx(row["flops"] / row["fastnn_s"] / 1e9)
    assert row["sklearn_gflops"] == pytest.approx(row["flops"] / row["sklearn_s"] / 1e9)


def test_sklearn_workloads_run_quick_and_rows_have_the_fields(co):
    pytest.importorskip("sklearn")
    import io
    names = ["sk_digits_adam", "sk_digits_lbfgs", "sk_mnist_sgd", "sk_mnist_adam32"]
    out = io.StringIO()
    peak = {"float32": 1.0, "float64": 1.0}
    rows = bench.bench_sklearn(names, rounds=1, out=out, peak=peak, **SK_QUICK)
    assert [row["name"] for row in rows] == names
    for row in rows:
        _check_sklearn_row(row, row["name"], SK_QUICK["rows"])
    assert peak["float64"] > 1.0                         # measured after the workloads
    printed = out.getvalue().splitlines()
    assert len(printed) == len(names)
    assert all(line.startswith("  scikit-learn ") for line in printed)
    table = bench.format_sklearn_table(rows, peak).splitlines()
    assert len(table) == 2 + len(names)


def test_sklearn_row_of_a_failing_fit_shows_the_error_and_the_bench_goes_on(co, monkeypatch):
    pytest.importorskip("sklearn")
    import io
    import fastnn.sklearn

    def refuse(self, X, y):
        raise RuntimeError("no such model\nsecond line")
    monkeypatch.setattr(fastnn.sklearn.MLPClassifier, "fit", refuse)
    rows = bench.bench_sklearn(["sk_digits_sgd", "sk_mnist_adam"], rounds=1,
                               out=io.StringIO(), **SK_QUICK)
    assert len(rows) == 2
    for row in rows:
        assert row["error"] == "fastnn: RuntimeError: no such model"
        assert row["fastnn_s"] is None and row["coef_diff"] is None and row["gflops"] is None
        assert row["sklearn_s"] > 0 and row["n_iter"] == (SK_QUICK["max_iter"], None)
        assert row["sklearn_gflops"] > 0               # scikit-learn's side is measured
    line = bench.format_sklearn_table(rows).splitlines()[2]
    assert "| fails: fastnn: RuntimeError: no such model |" in line


def test_sklearn_workloads_skip_without_scikit_learn(monkeypatch):
    import io
    monkeypatch.setattr(bench, "sklearn_available", lambda: False)
    out = io.StringIO()
    assert bench.bench_sklearn(["sk_digits_adam"], out=out) == []
    assert "scikit-learn workloads skipped: scikit-learn is not installed" in out.getvalue()
    assert bench.sklearn_blas() == ""


def test_sklearn_blas_names_the_version_and_numpys_blas():
    sklearn = pytest.importorskip("sklearn")
    text = bench.sklearn_blas()
    assert text.startswith(f"scikit-learn {sklearn.__version__}")
    threadpoolctl = pytest.importorskip("threadpoolctl")
    blas = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
    if blas:
        assert "; NumPy's BLAS " in text and text.endswith(" threads")


def test_format_sklearn_table_cells():
    rows = [dict(name="sk_digits_adam", title="digits t", dtype="float64", sklearn_s=0.5,
                 fastnn_s=0.04, speedup=12.5, coef_diff=3.2e-12, n_iter=(40, 40),
                 flops=4e9, gflops=100.0, sklearn_gflops=8.0, pairs=5, error=None),
            dict(name="sk_digits_lbfgs", title="lbfgs t", dtype="float32", sklearn_s=0.25,
                 fastnn_s=None, speedup=None, coef_diff=None, n_iter=(50, None), flops=None,
                 gflops=None, sklearn_gflops=None, pairs=0, error="fastnn: ValueError: a | b")]
    lines = bench.format_sklearn_table(rows, {"float64": 200.0, "float32": 400.0}).splitlines()
    assert lines[0].endswith("| n_iter_ scikit-learn / fastnn | fastnn GFLOP/s | % of peak | "
                             "scikit-learn GFLOP/s | ratio at peak |")
    assert lines[2] == ("| digits t | 0.500 | 0.040 | 12.5x | 3.2e-12 | 40 / 40 | 100.0 | 50.0% "
                        "| 8.0 | 25.0x |")
    assert lines[3] == ("| lbfgs t | 0.250 | fails: fastnn: ValueError: a / b | — | — | 50 / — "
                        "| — | — | — | — |")
    plain = bench.format_sklearn_table(rows).splitlines()
    assert plain[0].endswith("| fastnn GFLOP/s | scikit-learn GFLOP/s |")
    assert plain[2].endswith("| 100.0 | 8.0 |")


def test_bench_command_sklearn_rows_only(co, capfd):
    pytest.importorskip("sklearn")
    assert bench.main(["sk_digits_sgd"], rounds=1, use_torch=False, gemm=False,
                      sklearn_options=SK_QUICK) == 0
    out = capfd.readouterr().out
    assert "tutorial samples/s" not in out                     # no training workload ran
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines)
                if line.startswith("| scikit-learn's MLPClassifier vs fastnn.sklearn's"))
    assert lines[head + 2].startswith(f"| {bench.SKLEARN_WORKLOADS['sk_digits_sgd']['title']} |")
    assert lines[head + 2].endswith("x |")


def test_bench_command_line_selects_the_sklearn_workloads(monkeypatch):
    seen = {}

    def fake_main(workloads, *args, **kwargs):
        seen.update(kwargs, workloads=workloads)
        return 0
    monkeypatch.setattr(bench, "main", fake_main)
    assert cli(["bench", "--workload", "sk_mnist_lbfgs", "--workload", "xor"]) == 0
    assert seen["workloads"] == ["sk_mnist_lbfgs", "xor"]
    assert seen["sklearn"] is True and seen["sklearn_all"] is False
    assert cli(["bench", "--no-sklearn"]) == 0
    assert seen["sklearn"] is False
    assert cli(["bench", "--sklearn-all"]) == 0
    assert seen["sklearn_all"] is True
    with pytest.raises(SystemExit):
        cli(["bench", "--workload", "sk_nonsense"])
