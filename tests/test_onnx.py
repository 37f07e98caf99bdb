"""ONNX interop: ``Network.to_onnx`` / ``Network.from_onnx`` and the estimators' ``to_onnx``.

Why it is built this way: an exported model is only as good as what another
runtime computes from it, so every exported model runs in onnxruntime and
its output is compared with ``predict`` (float64 to 1e-12, float32 to 1e-5),
for every layer kind, on both backends.  The activations are taken from the
activation table (the C header's list), so a new activation without an ONNX
export fails here.  Import is checked on what ``to_onnx`` writes (the same
layers, settings and weights back) and on what ``torch.onnx.export`` writes
from an ``nn.Sequential`` (the TorchScript exporter at opsets 17 and 20, and
the default dynamo exporter when onnxscript is installed).  onnx and
onnxruntime are optional: these tests skip without them.
"""

import io
import sys
import warnings

import numpy as np
import pytest

import fastnn
from fastnn import (ELU, GELU, SELU, BatchNorm1d, Dense, Dropout, Flatten, Identity, Layer,
                    LayerNorm, LeakyReLU, Mish, Network, ReLU, Sigmoid, SiLU, Softmax, Softplus,
                    Tanh)
from fastnn.backends.numpy_ops import ACTIVATIONS

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install 'fastnn[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")

#: onnxruntime against predict: the issue's figures
TOL = {np.dtype(np.float64): {"rtol": 1e-12, "atol": 1e-12},
       np.dtype(np.float32): {"rtol": 1e-5, "atol": 1e-5}}

#: each activation kind of the table -> layers of it, with settings other than the defaults
#: (slopes and alphas float32 cannot hold, a threshold the inputs cross)
KIND_LAYERS = {
    "identity": [Identity], "sigmoid": [Sigmoid], "tanh": [Tanh], "relu": [ReLU],
    "leaky_relu": [LeakyReLU, lambda: LeakyReLU(0.13), lambda: LeakyReLU(0.25)], "silu": [SiLU], "softmax": [Softmax],
    "gelu": [GELU], "gelu_tanh": [lambda: GELU("tanh")], "elu": [ELU, lambda: ELU(0.7)],
    "selu": [SELU], "softplus": [Softplus, lambda: Softplus(beta=0.7, threshold=3.0)],
    "mish": [Mish],
}


def run(model, X):
    """onnxruntime's output of ``model`` on X."""
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: X})[0]


def check_close(got, want, dtype):
    assert got.dtype == want.dtype == dtype
    np.testing.assert_allclose(got, want, **TOL[np.dtype(dtype)])


def rel_diff(got, want):
    """The largest difference relative to the output's scale (for the report)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-300))


def test_every_activation_of_the_table_has_a_case():
    assert set(KIND_LAYERS) == set(ACTIVATIONS)


@pytest.mark.parametrize("make", [m for makes in KIND_LAYERS.values() for m in makes],
                         ids=lambda m: repr(m()))
def test_activation_runs_in_onnxruntime(make, backend, dtype, rng):
    net = Network([Dense(4, 16), make(), Dense(16, 16), make(), Dense(16, 3)],
                  backend=backend, dtype=dtype, seed=1)
    # wide inputs: both branches of each activation, Softplus's threshold, GELU's tails
    X = (rng.standard_normal((64, 4)) * 4).astype(dtype)
    model = net.to_onnx()
    onnx.checker.check_model(model)
    got, want = run(model, X), net.predict(X)
    check_close(got, want, dtype)
    print(f"{make()!r} {backend} {np.dtype(dtype).name}: {rel_diff(got, want):.2e}")


def _norm_net(backend, dtype, rng, affine=True, eps=1e-5):
    bn = BatchNorm1d(8, eps=eps, affine=affine)
    net = Network([Flatten(), Dense(6, 8), bn, ReLU(), Dropout(0.3),
                   LayerNorm(8, eps=eps, elementwise_affine=affine), Dense(8, 3), Softmax()],
                  backend=backend, dtype=dtype, seed=2)
    X = rng.standard_normal((40, 2, 3)).astype(dtype)
    Y = rng.integers(0, 3, 40)
    # trained a little: running statistics, norm weights and biases away from their init
    net.fit(X, Y, loss="cross_entropy", optimizer=fastnn.Adam(lr=0.05), epochs=3,
            batch_size=8, seed=0)
    return net


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("eps", [1e-5, 2.0**-10])   # (float32 holds the second: ONNX's operators)
def test_norms_dropout_flatten_run_in_onnxruntime(affine, eps, backend, dtype, rng):
    net = _norm_net(backend, dtype, rng, affine=affine, eps=eps)
    model = net.to_onnx(sample_shape=(2, 3))
    standard = {"BatchNormalization", "LayerNormalization"} & {n.op_type for n in
                                                                model.graph.node}
    assert len(standard) == (2 if affine and (dtype == np.float32 or eps != 1e-5) else
                             0 if dtype == np.float64 and eps == 1e-5 else 1)
    for n in (1, 17):                             # the batch dimension is dynamic
        X = rng.standard_normal((n, 2, 3)).astype(dtype)
        got, want = run(model, X), net.predict(X)
        check_close(got, want, dtype)
    print(f"norms affine={affine} eps={eps} {backend} {np.dtype(dtype).name}: {rel_diff(got, want):.2e}")


def test_graph_dtype_dynamic_batch_and_operators(dtype):
    net = Network([Dense(3, 4), ReLU(), Dropout(0.5), Dense(4, 2, bias=False), Sigmoid()],
                  dtype=dtype, seed=0)
    model = net.to_onnx()
    elem = onnx.TensorProto.DOUBLE if dtype == np.float64 else onnx.TensorProto.FLOAT
    (inp,), (out,) = model.graph.input, model.graph.output
    assert inp.type.tensor_type.elem_type == out.type.tensor_type.elem_type == elem
    assert inp.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert inp.type.tensor_type.shape.dim[1].dim_value == 3
    assert [n.op_type for n in model.graph.node] == ["Gemm", "Relu", "Dropout", "MatMul",
                                                    "Sigmoid", "Identity"]
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    W = next(v for k, v in weights.items() if k.startswith("dense0_W"))
    assert W.dtype == dtype
    np.testing.assert_array_equal(W, net.layers[0].W)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == 20


def test_float64_uses_exact_functions_float32_standard_operators():
    layers = lambda: [Dense(2, 3), SELU(), Dense(3, 3), GELU(), Dense(3, 2)]  # noqa: E731
    f64 = Network(layers(), seed=0).to_onnx()
    f32 = Network(layers(), dtype="float32", seed=0).to_onnx()
    assert [(n.domain, n.op_type) for n in f64.graph.node if n.domain] == \
        [("fastnn", "SELU"), ("fastnn", "GELU")]
    assert {f.name for f in f64.functions} == {"SELU", "GELU"}
    assert [n.op_type for n in f32.graph.node] == ["Gemm", "Selu", "Gemm", "Gelu", "Gemm",
                                                  "Identity"]
    assert not f32.functions


def test_written_when_given_a_path_and_read_back(tmp_path, backend, rng):
    net = Network([Dense(3, 5), Tanh(), Dense(5, 2)], backend=backend, seed=4)
    path = tmp_path / "net.onnx"
    model = net.to_onnx(path)
    assert path.exists() and onnx.load(str(path)) == model
    back = Network.from_onnx(path, backend=backend)
    X = rng.standard_normal((6, 3))
    np.testing.assert_array_equal(back.predict(X), net.predict(X))
    back = Network.from_onnx(str(path))
    np.testing.assert_array_equal(back.layers[0].W, net.layers[0].W)


def _layers_of_every_kind():
    acts = [make() for makes in KIND_LAYERS.values() for make in makes if make is not Softmax]
    layers = [Flatten(), Dense(6, 5)]
    for act in acts:
        layers += [act, Dense(5, 5, bias=len(layers) % 3 != 0)]
    return layers + [BatchNorm1d(5, momentum=None), Dropout(0.25), LayerNorm(5, eps=1e-3),
                     BatchNorm1d(5, eps=1e-3, affine=False),
                     LayerNorm(5, elementwise_affine=False),
                     Dense(5, 3), Softmax()]


def _settings(layer):
    config = dict(layer.config())
    return type(layer), {k: (pytest.approx(v, rel=1e-7) if isinstance(v, float) else v)
                         for k, v in config.items()}


def test_round_trip_keeps_layers_settings_and_weights(backend, dtype, rng):
    net = Network(_layers_of_every_kind(), backend=backend, dtype=dtype, seed=5)
    for layer in net.layers:
        if isinstance(layer, BatchNorm1d):
            layer.running_mean[...] = rng.standard_normal(5)
            layer.running_var[...] = rng.uniform(0.5, 2.0, 5)
    back = Network.from_onnx(net.to_onnx(sample_shape=(2, 3)), backend=backend)
    assert back.dtype == dtype and back.backend == backend
    assert [_settings(layer) for layer in back.layers] == [_settings(layer) for layer in
                                                            net.layers]
    for a, b in zip(net.layers, back.layers):
        for name, value in a.params().items():
            np.testing.assert_array_equal(b.params()[name], value)
        if isinstance(a, BatchNorm1d):
            np.testing.assert_array_equal(b.running_mean, a.running_mean)
            np.testing.assert_array_equal(b.running_var, a.running_var)
    X = rng.standard_normal((9, 2, 3)).astype(dtype)
    np.testing.assert_array_equal(back.predict(X), net.predict(X))
    check_close(run(net.to_onnx(sample_shape=(2, 3)), X), net.predict(X), dtype)


# ------------------------------------------------------------------ torch
def _torch_sequential(torch, dtype):
    nn = torch.nn
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(6, 8), nn.SiLU(), nn.Linear(8, 8, bias=False), nn.GELU(),
        nn.Linear(8, 8), nn.GELU(approximate="tanh"), nn.Linear(8, 8), nn.Mish(),
        nn.Linear(8, 8), nn.Softplus(), nn.Linear(8, 8), nn.Softplus(beta=0.5),
        nn.Linear(8, 8), nn.ELU(0.5), nn.SELU(), nn.LeakyReLU(0.2), nn.BatchNorm1d(8),
        nn.Dropout(0.2), nn.LayerNorm(8), nn.ReLU(), nn.Tanh(), nn.Sigmoid(),
        nn.Linear(8, 3), nn.Softmax(dim=1)).to(dtype)
    with torch.no_grad():
        model[17].running_mean.normal_()
        model[17].running_var.uniform_(0.5, 2.0)
        model[17].weight.normal_()
        model[19].bias.normal_()
    return model.eval()


EXPECTED_FROM_TORCH = [
    (Flatten, {}), (Dense, {}), (SiLU, {}), (Dense, {}), (GELU, {"approximate": "none"}),
    (Dense, {}), (GELU, {"approximate": "tanh"}), (Dense, {}), (Mish, {}), (Dense, {}),
    (Softplus, {"beta": 1.0, "threshold": 20.0}), (Dense, {}),
    (Softplus, {"beta": 0.5, "threshold": 20.0}), (Dense, {}), (ELU, {"alpha": 0.5}),
    (SELU, {}), (LeakyReLU, {"negative_slope": 0.2}), (BatchNorm1d, {"eps": 1e-5}),
    (LayerNorm, {"eps": 1e-5}), (ReLU, {}), (Tanh, {}), (Sigmoid, {}), (Dense, {}),
    (Softmax, {})]


def _check_from_torch(model, onnx_model, torch, dtype, rng, backend, tag):
    net = Network.from_onnx(onnx_model, backend=backend)
    # torch's exporter drops Dropout in eval mode
    assert [type(layer) for layer in net.layers] == [cls for cls, _ in EXPECTED_FROM_TORCH]
    for layer, (_, config) in zip(net.layers, EXPECTED_FROM_TORCH):
        for key, value in config.items():
            want = pytest.approx(value, rel=1e-7) if isinstance(value, float) else value
            assert layer.config()[key] == want, (layer, key)
    assert net.layers[3].b is None
    X = rng.standard_normal((7, 2, 3))
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    want = model(torch.from_numpy(X.astype(np_dtype))).detach().numpy()
    got = net.predict(X.astype(np_dtype))
    check_close(got, want, np_dtype)
    print(f"from torch ({tag}) {backend} {np.dtype(np_dtype).name}: {rel_diff(got, want):.2e}")


@pytest.mark.parametrize("opset", [17, 20])
def test_from_torch_onnx_export(opset, backend, dtype, rng):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    torch.manual_seed(0)
    model = _torch_sequential(torch, tdtype)
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the TorchScript exporter: the default (dynamo) one needs onnxscript
        torch.onnx.export(model, (torch.zeros(2, 2, 3, dtype=tdtype),), f, dynamo=False,
                          opset_version=opset, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    _check_from_torch(model, onnx.load_from_string(f.getvalue()), torch, tdtype, rng, backend,
                      f"TorchScript exporter, opset {opset}")


def test_from_torch_dynamo_export(backend, rng):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    pytest.importorskip("onnxscript", reason="torch's dynamo exporter needs onnxscript")
    torch.manual_seed(0)
    model = _torch_sequential(torch, torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (torch.zeros(2, 2, 3, dtype=torch.float64),),
                                    dynamo=True, verbose=False,
                                    dynamic_shapes=({0: torch.export.Dim("batch")},))
    _check_from_torch(model, program.model_proto, torch, torch.float64, rng, backend,
                      "dynamo exporter")


# ------------------------------------------------------------- estimators
@pytest.mark.parametrize("problem", ["multiclass", "binary", "multilabel"])
def test_classifier_exports_its_probabilities(problem, backend, dtype, rng):
    sk = pytest.importorskip("fastnn.sklearn")
    X = rng.standard_normal((80, 5)).astype(dtype)
    y = {"multiclass": rng.integers(0, 3, 80), "binary": rng.integers(0, 2, 80),
         "multilabel": rng.integers(0, 2, (80, 3))}[problem]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                     # not converged in 30 epochs
        clf = sk.MLPClassifier((7, 6), max_iter=30, random_state=0,
                               backend=backend).fit(X, y)
    model = clf.to_onnx()
    assert model.graph.output[0].name == "probabilities"
    got, want = run(model, X), clf.predict_proba(X)
    assert got.shape == want.shape == (80, 2 if problem == "binary" else 3)
    check_close(got, want, dtype)
    print(f"classifier {problem} {backend} {np.dtype(dtype).name}: {rel_diff(got, want):.2e}")


@pytest.mark.parametrize("n_outputs", [1, 2])
def test_regressor_exports_its_predictions(n_outputs, backend, dtype, rng):
    sk = pytest.importorskip("fastnn.sklearn")
    X = rng.standard_normal((80, 5)).astype(dtype)
    y = rng.standard_normal(80) if n_outputs == 1 else rng.standard_normal((80, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = sk.MLPRegressor(hidden_layer_sizes=(7,), activation="tanh", max_iter=30,
                              random_state=0, backend=backend).fit(X, y)
    got, want = run(reg.to_onnx(), X), reg.predict(X)
    assert got.shape == want.shape
    check_close(got, want, dtype)
    print(f"regressor {n_outputs} {backend} {np.dtype(dtype).name}: {rel_diff(got, want):.2e}")


def test_unfitted_estimator_is_refused():
    sk = pytest.importorskip("fastnn.sklearn")
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        sk.MLPRegressor().to_onnx()


# ---------------------------------------------------------------- refusals
def test_a_layer_of_your_own_is_refused_by_name():
    class Double(Layer):
        def forward(self, X, *, training=False, keep=True):
            return 2 * X

    net = Network([Dense(2, 2), Double()], seed=0)
    with pytest.raises(TypeError, match=r"layer 1 \(Double"):
        net.to_onnx()


def _model(nodes, inits, n_in=3, opset=20):
    h = onnx.helper
    graph = h.make_graph(nodes, "g",
                         [h.make_tensor_value_info("x", onnx.TensorProto.DOUBLE, ["n", n_in])],
                         [h.make_tensor_value_info("y", onnx.TensorProto.DOUBLE, None)],
                         [onnx.numpy_helper.from_array(np.asarray(v), k)
                          for k, v in inits.items()])
    return h.make_model(graph, opset_imports=[h.make_opsetid("", opset)], ir_version=9)


def test_unknown_operators_and_settings_are_refused_by_name():
    h = onnx.helper
    W = np.ones((3, 2))
    model = _model([h.make_node("Gemm", ["x", "W"], ["z"], name="fc"),
                    h.make_node("Cos", ["z"], ["y"], name="the_cos")], {"W": W})
    with pytest.raises(TypeError, match="Cos node 'the_cos' is not supported"):
        Network.from_onnx(model)
    model = _model([h.make_node("Gemm", ["x", "W"], ["z"]),
                    h.make_node("Softmax", ["z"], ["y"], name="sm", axis=0)], {"W": W})
    with pytest.raises(ValueError, match="Softmax node 'sm' works over axis 0"):
        Network.from_onnx(model)
    model = _model([h.make_node("Gemm", ["x", "W"], ["z"], name="fc", alpha=2.0),
                    h.make_node("Relu", ["z"], ["y"])], {"W": W})
    with pytest.raises(ValueError, match="Gemm node 'fc' has transA/alpha/beta"):
        Network.from_onnx(model)
    # a branch that computes no activation of fastnn's (x * cos(x))
    model = _model([h.make_node("Gemm", ["x", "W"], ["z"]),
                    h.make_node("Cos", ["z"], ["c"]),
                    h.make_node("Mul", ["z", "c"], ["y"])], {"W": W})
    with pytest.raises(TypeError, match="compute none of fastnn's activations"):
        Network.from_onnx(model)
    with pytest.raises(TypeError, match="reads an onnx.ModelProto or a path"):
        Network.from_onnx(42)


def test_matmul_add_reads_as_dense(rng):
    h = onnx.helper
    W, b = rng.standard_normal((3, 2)), rng.standard_normal(2)
    model = _model([h.make_node("MatMul", ["x", "W"], ["z"]),
                    h.make_node("Add", ["z", "b"], ["y"])], {"W": W, "b": b})
    net = Network.from_onnx(model)
    assert [type(layer) for layer in net.layers] == [Dense]
    X = rng.standard_normal((4, 3))
    np.testing.assert_allclose(net.predict(X), X @ W + b, rtol=1e-14)


def test_without_onnx_the_error_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    net = Network([Dense(2, 1)], seed=0)
    with pytest.raises(ImportError, match=r'pip install "fastnn\[onnx\]"'):
        net.to_onnx()
    with pytest.raises(ImportError, match="Network.from_onnx needs the onnx package"):
        Network.from_onnx("model.onnx")
