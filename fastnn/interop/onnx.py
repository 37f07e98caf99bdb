"""ONNX interop: a Network to and from an ``onnx.ModelProto``.

Why it is built this way: ONNX is an optional dependency (``pip install
"fastnn[onnx]"``), imported only inside these functions, so ``import fastnn``
never needs it; the network class is handed in (``Network.from_onnx`` passes
itself), as in ``fastnn.interop.torch``.  Export writes one standard operator
per layer where ONNX has one whose numbers are fastnn's (Gemm / MatMul,
Relu, Sigmoid, Tanh, Softmax, Mish, Gelu, LeakyRelu, Elu, Selu,
BatchNormalization, LayerNormalization, Flatten, Dropout -- the identity at
inference --, Identity), at opset 20, in the network's dtype, with a dynamic
batch dimension.  ONNX attributes are float32: where rounding a constant to
float32 would move a float64 model's numbers (SELU's constants, a LeakyReLU slope
or ELU alpha that float32 cannot hold, Softplus's beta and threshold, which no standard
operator has) or where onnxruntime has no float64 kernel (Erf, so exact GELU),
the layer is a model-local ONNX function of domain ``fastnn`` built of
standard operators, with its constants as float64 inputs; onnxruntime inlines
it.  Import reads those, the standard operators, and the patterns
``torch.onnx.export`` writes for the same ``nn.Sequential`` layers (SiLU as
Sigmoid and Mul, GELU as Div/Erf/Add/Mul/Mul, Softplus(beta) as
Mul/Softplus/Div, Mish as Softplus/Tanh/Mul, Linear as Gemm or MatMul+Add);
anything else is refused, naming the node.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .._custom import user_methods
from . import _import_optional
from ..backends.numpy_ops import NumpyOps
from ..layers import (ELU, GELU, SELU, BatchNorm1d, Dense, Dropout, Flatten, Identity, Layer,
                      LayerNorm, LeakyReLU, Mish, ReLU, Sigmoid, SiLU, Softmax, Softplus, Tanh)

if TYPE_CHECKING:
    from ..network import Network

__all__ = ["to_onnx", "from_onnx", "estimator_to_onnx", "OPSET"]

#: the ONNX opset of exported models (Gelu needs 20); onnxruntime >= 1.17 runs it
OPSET = 20
#: the IR version of opset 20 (onnxruntime refuses IR versions newer than it knows)
_IR_VERSION = 9
#: the domain of fastnn's model-local functions
DOMAIN = "fastnn"

_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805
#: the fastnn-domain function of ELU
_ELU_NAME = "ELU"


def _import_onnx(what: str) -> Any:
    """onnx, or an ImportError that says how to install it."""
    return _import_optional("onnx", what, "the onnx package",
                            '`pip install "fastnn[onnx]"` (or `pip install onnx`)')


def _exact32(value: float) -> bool:
    """Whether float32 holds ``value`` exactly (an ONNX float attribute keeps it)."""
    return bool(float(np.float32(value)) == value)


def _from32(value: float) -> float:
    """A float32 attribute as the float it was written from: its shortest repr (1e-05)."""
    return float(str(np.float32(value)))


# ----------------------------------------------------------------- export
class _Builder:
    """The nodes, initializers and functions of the graph being written."""

    def __init__(self, onnx: Any, dtype: np.dtype[Any]) -> None:
        self.onnx = onnx
        self.h = onnx.helper
        self.dtype = dtype
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.functions: dict[str, Any] = {}
        self.count = 0

    def const(self, name: str, value: Any, dtype: Any = None) -> str:
        arr = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        name = f"{name}_{len(self.inits)}"
        self.inits.append(self.onnx.numpy_helper.from_array(np.array(arr, order="C"), name))
        return name

    def node(self, op: str, inputs: list[str], tag: str, domain: str = "",
             **attrs: Any) -> str:
        self.count += 1
        out = f"{tag}_{self.count}"
        self.nodes.append(self.h.make_node(op, inputs, [out], name=out, domain=domain, **attrs))
        return out

    def function(self, name: str, inputs: list[str], body: Callable[[Any], list[Any]]) -> None:
        """Declare the fastnn-domain function ``name`` (once)."""
        if name not in self.functions:
            self.functions[name] = self.h.make_function(
                DOMAIN, name, inputs, ["y"], body(self.h),
                [self.h.make_opsetid("", OPSET)])


def _const_node(h: Any, out: str, value: float, like: str) -> list[Any]:
    """Nodes of a function body: ``out`` = the float64 ``value`` cast like ``like``."""
    return [h.make_node("Constant", [], [out + "_d"],
                        value=h.make_tensor(out + "_t", 11, [], [value])),   # 11: DOUBLE
            h.make_node("CastLike", [out + "_d", like], [out])]


def _leaky_body(h: Any) -> list[Any]:
    # x if x > 0 else slope * x, the slope a float64 input
    return [*_const_node(h, "zero", 0.0, "x"),
            h.make_node("Greater", ["x", "zero"], ["pos"]),
            h.make_node("Mul", ["x", "slope"], ["neg"]),
            h.make_node("Where", ["pos", "x", "neg"], ["y"])]


def _elu_body(h: Any) -> list[Any]:
    # x if x > 0 else alpha * (exp(x) - 1), alpha a float64 input (onnxruntime has no
    # float64 Elu)
    return [*_const_node(h, "zero", 0.0, "x"),
            *_const_node(h, "one", 1.0, "x"),
            h.make_node("Greater", ["x", "zero"], ["pos"]),
            h.make_node("Exp", ["x"], ["ex"]),
            h.make_node("Sub", ["ex", "one"], ["e"]),
            h.make_node("Mul", ["e", "alpha"], ["neg"]),
            h.make_node("Where", ["pos", "x", "neg"], ["y"])]


def _selu_body(h: Any) -> list[Any]:
    # scale * (x if x > 0 else alpha * (exp(x) - 1)), PyTorch's constants in float64
    elu = [n for n in _elu_body(h)]
    elu[-1].output[0] = "w"
    return [*_const_node(h, "alpha", _SELU_ALPHA, "x"), *elu,
            *_const_node(h, "scale", _SELU_SCALE, "x"),
            h.make_node("Mul", ["w", "scale"], ["y"])]


def _gelu_tanh_body(h: Any) -> list[Any]:
    # 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3))), the constants in float64
    # (onnxruntime's float64 Gelu(approximate="tanh") is float32-accurate)
    return [*_const_node(h, "half", 0.5, "x"),
            *_const_node(h, "one", 1.0, "x"),
            *_const_node(h, "root", math.sqrt(2 / math.pi), "x"),
            *_const_node(h, "kappa", 0.044715, "x"),
            h.make_node("Mul", ["x", "x"], ["x2"]),
            h.make_node("Mul", ["x2", "x"], ["x3"]),
            h.make_node("Mul", ["x3", "kappa"], ["kx3"]),
            h.make_node("Add", ["x", "kx3"], ["inner"]),
            h.make_node("Mul", ["inner", "root"], ["arg"]),
            h.make_node("Tanh", ["arg"], ["t"]),
            h.make_node("Add", ["one", "t"], ["onet"]),
            h.make_node("Mul", ["half", "x"], ["hx"]),
            h.make_node("Mul", ["hx", "onet"], ["y"])]


def _log1pexp(h: Any, x: str, out: str) -> list[Any]:
    """Nodes of ``out = log(1 + exp(x))`` as ``max(x, 0) + log(1 + exp(-|x|))``, which
    never overflows (onnxruntime has no float64 Softplus)."""
    return [*_const_node(h, out + "_one", 1.0, x),
            h.make_node("Relu", [x], [out + "_pos"]),
            h.make_node("Abs", [x], [out + "_abs"]),
            h.make_node("Neg", [out + "_abs"], [out + "_neg"]),
            h.make_node("Exp", [out + "_neg"], [out + "_exp"]),
            h.make_node("Add", [out + "_one", out + "_exp"], [out + "_sum"]),
            h.make_node("Log", [out + "_sum"], [out + "_log"]),
            h.make_node("Add", [out + "_pos", out + "_log"], [out])]


def _softplus_body(h: Any) -> list[Any]:
    # x where beta * x > threshold, else log(1 + exp(beta * x)) / beta (PyTorch's)
    return [h.make_node("Mul", ["x", "beta"], ["bx"]),
            h.make_node("Greater", ["bx", "threshold"], ["big"]),
            *_log1pexp(h, "bx", "sp"),
            h.make_node("Div", ["sp", "beta"], ["small"]),
            h.make_node("Where", ["big", "x", "small"], ["y"])]


def _mish_body(h: Any) -> list[Any]:
    # x * tanh(log(1 + exp(x)))
    return [*_log1pexp(h, "x", "sp"),
            h.make_node("Tanh", ["sp"], ["t"]),
            h.make_node("Mul", ["x", "t"], ["y"])]


def _normalized(h: Any, affine: bool) -> list[Any]:
    """``y = d / sqrt(var + eps)``, then ``* scale + bias`` (affine): what both norms
    do with the deviation ``d`` and the variance ``var``."""
    nodes = [h.make_node("Add", ["var", "eps"], ["ve"]),
             h.make_node("Sqrt", ["ve"], ["sd"]),
             h.make_node("Div", ["d", "sd"], ["xhat"])]
    if not affine:
        return [*nodes, h.make_node("Identity", ["xhat"], ["y"])]
    return [*nodes, h.make_node("Mul", ["xhat", "scale"], ["sx"]),
            h.make_node("Add", ["sx", "bias"], ["y"])]


def _batchnorm_body(affine: bool) -> Callable[[Any], list[Any]]:
    # (x - mean) / sqrt(var + eps) [* scale + bias], eps a float64 input; the
    # momentum input (NaN: None) is the layer's setting, not used at inference
    return lambda h: [h.make_node("Sub", ["x", "mean"], ["d"]), *_normalized(h, affine)]


def _layernorm_body(affine: bool) -> Callable[[Any], list[Any]]:
    # each row: (x - mean) / sqrt(var + eps) [* scale + bias], var the biased variance
    return lambda h: [
        h.make_node("Constant", [], ["axes"], value=h.make_tensor("axes", 7, [1], [-1])),
        h.make_node("ReduceMean", ["x", "axes"], ["mean"]),
        h.make_node("Sub", ["x", "mean"], ["d"]),
        h.make_node("Mul", ["d", "d"], ["d2"]),
        h.make_node("ReduceMean", ["d2", "axes"], ["var"]),
        *_normalized(h, affine)]


#: erf's Taylor expansion about the nearest point of a grid of step 1/32 on [0, 6]
_ERF_STEP = 32
_ERF_TERMS = 12


def _gelu_erf_body(h: Any) -> list[Any]:
    """x * 0.5 * (1 + erf(x / sqrt(2))) in float64, without Erf (onnxruntime has no
    float64 kernel for it): erf(a + t) = erf(a) + 2/sqrt(pi) exp(-a^2)
    sum_k (-1)^(k-1) H_(k-1)(a) t^k / k!, a the nearest grid point, |t| <= 1/64,
    H the Hermite polynomials; the grid's erf(a) and exp(-a^2) are tables."""
    grid = np.arange(6 * _ERF_STEP + 1) / _ERF_STEP
    erf_table = np.array([math.erf(a) for a in grid])
    gauss_table = np.exp(-grid * grid) * (2 / math.sqrt(math.pi))
    nodes = [
        h.make_node("Constant", [], ["erf_t"], value=h.make_tensor(
            "erf_t", 11, [grid.size], erf_table.tolist())),
        h.make_node("Constant", [], ["gauss_t"], value=h.make_tensor(
            "gauss_t", 11, [grid.size], gauss_table.tolist())),
    ]

    def c(name: str, value: float) -> None:
        nodes.extend(_const_node(h, name, value, "x"))

    c("rsqrt2", math.sqrt(0.5))
    c("six", 6.0)
    c("step", float(_ERF_STEP))
    c("half", 0.5)
    c("one", 1.0)
    c("two", 2.0)
    nodes += [h.make_node("Mul", ["x", "rsqrt2"], ["z"]),
              h.make_node("Sign", ["z"], ["sgn"]),
              h.make_node("Abs", ["z"], ["az"]),
              h.make_node("Min", ["az", "six"], ["cz"]),
              h.make_node("Mul", ["cz", "step"], ["scaled"]),
              h.make_node("Round", ["scaled"], ["k"]),
              h.make_node("Div", ["k", "step"], ["a"]),
              h.make_node("Sub", ["cz", "a"], ["t"]),
              h.make_node("Cast", ["k"], ["ki"], to=7),          # 7: INT64
              h.make_node("Gather", ["erf_t", "ki"], ["ea"]),
              h.make_node("Gather", ["gauss_t", "ki"], ["ga"]),
              h.make_node("Mul", ["two", "a"], ["twoa"])]
    # sum_k (-1)^(k-1) H_(k-1)(a) t^k / k!  (H_0 = 1, H_1 = 2a, H_(n+1) = 2a H_n - 2n H_(n-1))
    nodes.append(h.make_node("Identity", ["t"], ["s1"]))      # k = 1: H_0 t
    nodes.append(h.make_node("Identity", ["t"], ["p1"]))      # t^1 / 1!
    prev, cur = "", "twoa"                                     # H_0 (1), H_1
    for k in range(2, _ERF_TERMS + 1):
        c(f"inv{k}", 1.0 / k)
        nodes.append(h.make_node("Mul", [f"p{k - 1}", "t"], [f"pt{k}"]))
        nodes.append(h.make_node("Mul", [f"pt{k}", f"inv{k}"], [f"p{k}"]))   # t^k / k!
        nodes.append(h.make_node("Mul", [cur, f"p{k}"], [f"term{k}"]))       # H_(k-1) t^k/k!
        op = "Sub" if k % 2 == 0 else "Add"
        nodes.append(h.make_node(op, [f"s{k - 1}", f"term{k}"], [f"s{k}"]))
        # the next Hermite polynomial, H_k = 2a H_(k-1) - 2(k-1) H_(k-2)
        nxt = f"H{k}"
        nodes.append(h.make_node("Mul", ["twoa", cur], [nxt + "_a"]))
        if prev:
            c(f"twon{k}", 2.0 * (k - 1))
            nodes.append(h.make_node("Mul", [f"twon{k}", prev], [nxt + "_b"]))
            nodes.append(h.make_node("Sub", [nxt + "_a", nxt + "_b"], [nxt]))
        else:                                                  # H_2 = 2a H_1 - 2
            nodes.append(h.make_node("Sub", [nxt + "_a", "two"], [nxt]))
        prev, cur = cur, nxt
    last = f"s{_ERF_TERMS}"
    nodes += [h.make_node("Mul", ["ga", last], ["corr"]),
              h.make_node("Add", ["ea", "corr"], ["erfa"]),
              h.make_node("Mul", ["sgn", "erfa"], ["erfz"]),
              h.make_node("Add", ["one", "erfz"], ["cdf2"]),
              h.make_node("Mul", ["x", "half"], ["hx"]),
              h.make_node("Mul", ["hx", "cdf2"], ["y"])]
    return nodes


def _export_activation(b: _Builder, layer: Layer, x: str, i: int) -> str | None:
    """The output of ``layer`` (an activation of fastnn's table) on ``x``, or None."""
    f64 = b.dtype == np.float64
    tag = f"{type(layer).__name__}{i}"
    simple: dict[type, str] = {Identity: "Identity", Sigmoid: "Sigmoid", Tanh: "Tanh",
                               ReLU: "Relu"}
    if type(layer) in simple:
        return b.node(simple[type(layer)], [x], tag)
    if type(layer) is Softmax:
        return b.node("Softmax", [x], tag, axis=1)
    if type(layer) is Mish:
        if not f64:
            return b.node("Mish", [x], tag)
        b.function("Mish", ["x"], _mish_body)
        return b.node("Mish", [x], tag, domain=DOMAIN)
    if type(layer) is SiLU:                       # x * sigmoid(x), as torch writes it
        s = b.node("Sigmoid", [x], tag + "_sigmoid")
        return b.node("Mul", [x, s], tag)
    if type(layer) is LeakyReLU:         # (onnxruntime has no float64 LeakyRelu)
        if not f64:
            return b.node("LeakyRelu", [x], tag, alpha=float(layer.alpha))
        b.function("LeakyReLU", ["x", "slope"], _leaky_body)
        return b.node("LeakyReLU", [x, b.const(tag + "_slope", layer.alpha)], tag,
                      domain=DOMAIN)
    if type(layer) is ELU:
        if not f64:
            return b.node("Elu", [x], tag, alpha=float(layer.alpha))
        b.function(_ELU_NAME, ["x", "alpha"], _elu_body)
        return b.node(_ELU_NAME, [x, b.const(tag + "_alpha", layer.alpha)], tag, domain=DOMAIN)
    if type(layer) is SELU:
        if not f64:
            return b.node("Selu", [x], tag, alpha=_SELU_ALPHA, gamma=_SELU_SCALE)
        b.function("SELU", ["x"], _selu_body)
        return b.node("SELU", [x], tag, domain=DOMAIN)
    if type(layer) is Softplus:
        b.function("Softplus", ["x", "beta", "threshold"], _softplus_body)
        return b.node("Softplus", [x, b.const(tag + "_beta", layer.beta),
                                   b.const(tag + "_threshold", layer.alpha)], tag,
                      domain=DOMAIN)
    if type(layer) is GELU:
        if not f64:
            return b.node("Gelu", [x], tag, approximate=layer.approximate)
        name = "GELU" if layer.approximate == "none" else "GELUTanh"
        b.function(name, ["x"], _gelu_erf_body if name == "GELU" else _gelu_tanh_body)
        return b.node(name, [x], tag, domain=DOMAIN)
    return None


def to_onnx(network: Network, path: str | os.PathLike[str] | None = None, *,
            sample_shape: tuple[int, ...] | None = None) -> Any:
    """An ONNX model equal to ``network.predict`` (see ``Network.to_onnx``).

    Parameters
    ----------
    network : Network
    path : str or path-like, optional
        Where to write the model as well.
    sample_shape : tuple of int, optional
        The shape of one input sample (default ``(n_inputs,)``).

    Returns
    -------
    onnx.ModelProto
    """
    onnx = _import_onnx("Network.to_onnx")
    b = _Builder(onnx, network.dtype)
    x = "input"
    for i, layer in enumerate(network.layers):
        x = _export_layer(b, layer, x, i)
    return _finish(b, network, x, "output", path, sample_shape=sample_shape)


def _export_layer(b: _Builder, layer: Layer, x: str, i: int) -> str:
    name = type(layer).__name__
    custom = user_methods(layer, "Layer")
    if custom:
        raise TypeError(f"layer {i} ({layer!r}) overrides {sorted(custom)}: ONNX has no "
                        "counterpart for a layer of your own")
    if type(layer) is Dense:
        W = b.const(f"dense{i}_W", layer.W)
        if layer.bias:
            return b.node("Gemm", [x, W, b.const(f"dense{i}_b", layer.b)], f"dense{i}")
        return b.node("MatMul", [x, W], f"dense{i}")
    out = _export_activation(b, layer, x, i)
    if out is not None:
        return out
    if type(layer) is Dropout:        # the identity at inference; the ratio kept for reading back
        return b.node("Dropout", [x, b.const(f"dropout{i}_ratio", layer.p, np.float64)],
                      f"dropout{i}")
    if type(layer) is Flatten:
        return b.node("Flatten", [x], f"flatten{i}", axis=1)
    if type(layer) in (BatchNorm1d, LayerNorm):
        assert isinstance(layer, (BatchNorm1d, LayerNorm))
        n = layer.num_features
        weight = layer.weight if layer.affine else np.ones(n)
        bias = layer.bias if layer.affine else np.zeros(n)
        # ONNX's epsilon is float32: a float64 model whose eps float32 cannot hold
        # (1e-5) gets fastnn's function with eps as a float64 input
        exact = b.dtype != np.float64 or _exact32(layer.eps)
        if isinstance(layer, BatchNorm1d):
            assert layer.running_mean is not None and layer.running_var is not None
            stats = [b.const(f"bn{i}_mean", layer.running_mean),
                     b.const(f"bn{i}_var", layer.running_var)]
            # (and one without affine parameters, or with momentum=None, which the
            # BatchNormalization operator cannot say)
            if not exact or not layer.affine or layer.momentum is None:
                fn = "BatchNorm1d" if layer.affine else "BatchNorm1dPlain"
                params = [b.const(f"bn{i}_scale", weight), b.const(f"bn{i}_bias", bias)] \
                    if layer.affine else []
                b.function(fn, ["x", *(["scale", "bias"] if layer.affine else []), "mean",
                                "var", "eps", "momentum"], _batchnorm_body(layer.affine))
                momentum = math.nan if layer.momentum is None else layer.momentum
                return b.node(fn, [x, *params, *stats, b.const(f"bn{i}_eps", layer.eps),
                                   b.const(f"bn{i}_momentum", momentum)],
                              f"batchnorm{i}", domain=DOMAIN)
            inputs = [x, b.const(f"bn{i}_scale", weight), b.const(f"bn{i}_bias", bias),
                      *stats]
            momentum = 0.9 if layer.momentum is None else 1.0 - layer.momentum
            return b.node("BatchNormalization", inputs, f"batchnorm{i}",
                          epsilon=float(layer.eps), momentum=momentum)
        if not exact:
            fn = "LayerNorm" if layer.affine else "LayerNormPlain"
            params = [b.const(f"ln{i}_scale", weight), b.const(f"ln{i}_bias", bias)] \
                if layer.affine else []
            b.function(fn, ["x", *(["scale", "bias"] if layer.affine else []), "eps"],
                       _layernorm_body(layer.affine))
            return b.node(fn, [x, *params, b.const(f"ln{i}_eps", layer.eps)],
                          f"layernorm{i}", domain=DOMAIN)
        inputs = [x, b.const(f"ln{i}_scale", weight)]
        if layer.affine:
            inputs.append(b.const(f"ln{i}_bias", bias))
        return b.node("LayerNormalization", inputs, f"layernorm{i}", axis=-1,
                      epsilon=float(layer.eps))
    raise TypeError(f"layer {i} ({name}: {layer!r}) has no ONNX counterpart")


def _finish(b: _Builder, network: Network, x: str, output: str,
            path: str | os.PathLike[str] | None, out_shape: list[Any] | None = None,
            sample_shape: tuple[int, ...] | None = None) -> Any:
    """Name the output, build, check and (given a path) write the model."""
    onnx, h = b.onnx, b.h
    b.nodes.append(h.make_node("Identity", [x], [output], name=output))
    elem = onnx.TensorProto.DOUBLE if b.dtype == np.float64 else onnx.TensorProto.FLOAT
    in_shape: list[Any] = ["batch", network.n_inputs]
    if sample_shape is not None:      # (n, d1, d2, ...) into a Flatten before the first Dense
        sample = tuple(int(d) for d in sample_shape)
        if int(np.prod(sample)) != network.n_inputs or any(d < 1 for d in sample) or \
                (len(sample) > 1 and not network._flattens_input):
            raise ValueError(f"sample_shape {sample_shape!r} does not give the network's "
                             f"{network.n_inputs} inputs" + (
                                 "" if network._flattens_input else
                                 " (a shape of several axes needs a Flatten before the "
                                 "first Dense)"))
        in_shape = ["batch", *sample]
    graph = h.make_graph(
        b.nodes, "fastnn", [h.make_tensor_value_info("input", elem, in_shape)],
        [h.make_tensor_value_info(output, elem,
                                  ["batch", network.n_outputs] if out_shape is None
                                  else out_shape)],
        b.inits)
    opsets = [h.make_opsetid("", OPSET)]
    if b.functions:
        opsets.append(h.make_opsetid(DOMAIN, 1))
    model = h.make_model(graph, opset_imports=opsets, ir_version=_IR_VERSION,
                         functions=list(b.functions.values()), producer_name="fastnn")
    onnx.checker.check_model(model)
    if path is not None:
        onnx.save(model, os.fspath(path))
    return model


# ------------------------------------------------------------ estimators
def estimator_to_onnx(estimator: Any, path: str | os.PathLike[str] | None = None) -> Any:
    """A fitted ``fastnn.sklearn`` estimator as an ONNX model (see ``_BaseMLP.to_onnx``).

    The classifier's output ``probabilities`` is ``predict_proba`` (softmax,
    or the logistic's [1 - p, p] columns for a binary problem, or each
    label's logistic for a multi-label one); the regressor's ``predictions``
    is ``predict`` ((n,) for one output).
    """
    onnx = _import_onnx("to_onnx")
    network = estimator.network_
    b = _Builder(onnx, network.dtype)
    x = "input"
    for i, layer in enumerate(network.layers):
        x = _export_layer(b, layer, x, i)
    act = estimator.out_activation_
    if act == "softmax":
        return _finish(b, network, b.node("Softmax", [x], "softmax", axis=1), "probabilities",
                       path)
    if act == "logistic":
        p = b.node("Sigmoid", [x], "logistic")
        if network.n_outputs == 1:                # binary: the columns [1 - p, p]
            q = b.node("Sub", [b.const("one", 1.0), p], "complement")
            both = b.node("Concat", [q, p], "binary", axis=1)
            return _finish(b, network, both, "probabilities", path, ["batch", 2])
        return _finish(b, network, p, "probabilities", path)
    if network.n_outputs == 1:                    # the regressor's 1-D predictions
        flat = b.node("Reshape", [x, b.const("shape", [-1], np.int64)], "ravel")
        return _finish(b, network, flat, "predictions", path, ["batch"])
    return _finish(b, network, x, "predictions", path)


# ----------------------------------------------------------------- import
class _Graph:
    """The graph being read: its constants, each value's consumers, the nodes left."""

    def __init__(self, onnx: Any, graph: Any) -> None:
        self.onnx = onnx
        self.consts: dict[str, np.ndarray] = {
            t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
        self.nodes = []
        for node in graph.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                attr = {a.name: a for a in node.attribute}
                if "value" not in attr:
                    raise ValueError(f"node {node.name!r}: a Constant without a tensor value "
                                     "is not supported")
                self.consts[node.output[0]] = onnx.numpy_helper.to_array(attr["value"].t)
            elif node.op_type == "Identity" and node.input[0] in self.consts:
                self.consts[node.output[0]] = self.consts[node.input[0]]   # a shared weight
            else:
                self.nodes.append(node)
        self.index = {id(node): k for k, node in enumerate(self.nodes)}
        self.consumers: dict[str, list[Any]] = {}
        for node in self.nodes:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.elem: int = onnx.TensorProto.DOUBLE
        self.dtype: Any = np.float64
        self.opsets: list[Any] = []
        self.target = ""          # the graph's output
        #: the width of the value being read (for a norm without parameters)
        self.width: int | None = None

    def attrs(self, node: Any) -> dict[str, Any]:
        values = {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}
        return {k: v.decode() if isinstance(v, bytes) else v for k, v in values.items()}

    def const(self, node: Any, k: int) -> np.ndarray | None:
        """The constant input ``k`` of ``node``, or None when absent / not constant."""
        if k >= len(node.input) or node.input[k] == "":
            return None
        return self.consts.get(node.input[k])

    def only(self, value: str, op: str) -> Any:
        """The one consumer of ``value`` if it is an ``op`` node, else None."""
        users = self.consumers.get(value, [])
        if len(users) == 1 and users[0].op_type == op and users[0].domain in ("", "ai.onnx"):
            return users[0]
        return None


def _scalar(value: np.ndarray | None) -> float | None:
    """The number of a one-element constant (a float32 one as the float written: 0.7,
    not 0.699999988), or None."""
    if value is None or value.size != 1:
        return None
    number = value.reshape(())
    return _from32(float(number)) if value.dtype == np.float32 else float(number)


def _describe(node: Any) -> str:
    return f"{node.op_type} node {node.name or node.output[0]!r}"


def _read_layer(g: _Graph, v: str) -> tuple[Layer, str, list[Any]] | None:
    """The layer reading ``v``: (layer, its output, its nodes), or None at the end."""
    users = g.consumers.get(v, [])
    if not users:
        return None
    if len(users) >= 2:     # x * f(x) and the like: torch's SiLU, GELU, Mish at opset < 20
        region, out = _region(g, v)
        while True:
            try:
                return _identify(g, region, v, out), out, region
            except TypeError:
                # torch's GELU ends in "* 0.5" after the join: take a scaling that follows
                nxt = g.consumers.get(out, [])
                if len(nxt) != 1 or nxt[0].op_type not in ("Mul", "Div") or len(region) > 64 \
                        or all(_scalar(g.const(nxt[0], k)) is None for k in (0, 1)):
                    raise
                region, out = [*region, nxt[0]], nxt[0].output[0]
    node = users[0]
    if node.input[0] != v:
        raise TypeError(f"{_describe(node)} takes {v!r} as input {list(node.input).index(v)}; "
                        "fastnn's layers take it first")
    out = node.output[0]
    at = g.attrs(node)
    if node.domain == DOMAIN:
        layer = _read_function(g, node)
        return layer, out, [node]
    if node.domain not in ("", "ai.onnx"):
        raise TypeError(f"{_describe(node)} is of domain {node.domain!r}, which fastnn does "
                        "not read")
    op = node.op_type
    if op in ("Gemm", "MatMul"):
        return _read_dense(g, node, at)
    simple: dict[str, Callable[[], Layer]] = {
        "Relu": ReLU, "Tanh": Tanh, "Sigmoid": Sigmoid, "Identity": Identity, "Mish": Mish}
    if op in simple:
        return simple[op](), out, [node]
    if op == "Softmax":
        if at.get("axis", -1) not in (1, -1):
            raise ValueError(f"{_describe(node)} works over axis {at['axis']}; fastnn's "
                             "Softmax works over axis 1")
        return Softmax(), out, [node]
    if op == "LeakyRelu":
        return LeakyReLU(_from32(at.get("alpha", 0.01))), out, [node]
    if op == "PRelu":
        slope = _scalar(g.const(node, 1))
        if slope is None:
            raise ValueError(f"{_describe(node)} has a slope per channel; fastnn reads one "
                             "slope (LeakyReLU)")
        return LeakyReLU(slope), out, [node]
    if op == "Elu":
        return ELU(_from32(at.get("alpha", 1.0))), out, [node]
    if op == "Selu":
        if abs(at.get("alpha", _SELU_ALPHA) - _SELU_ALPHA) > 1e-6 or \
                abs(at.get("gamma", _SELU_SCALE) - _SELU_SCALE) > 1e-6:
            raise ValueError(f"{_describe(node)} has alpha={at.get('alpha')}, gamma="
                             f"{at.get('gamma')}; fastnn's SELU has PyTorch's constants")
        return SELU(), out, [node]
    if op == "Gelu":
        return GELU(at.get("approximate", "none")), out, [node]
    if op == "Softplus":
        return Softplus(), out, [node]
    if op == "Mul":                              # torch's Softplus(beta): Mul, Softplus, Div
        beta = _scalar(g.const(node, 1))
        sp = g.only(out, "Softplus")
        div = g.only(sp.output[0], "Div") if sp is not None else None
        if beta is not None and div is not None and sp is not None \
                and _scalar(g.const(div, 1)) == beta:
            return Softplus(beta=beta), div.output[0], [node, sp, div]
    if op == "Dropout":
        training = g.const(node, 2)
        if training is not None and bool(training):
            raise ValueError(f"{_describe(node)} is in training mode")
        ratio = _scalar(g.const(node, 1))
        return Dropout(0.5 if ratio is None else ratio), out, [node]
    if op == "Reshape":                   # torch's dynamo exporter's nn.Flatten
        shape = g.const(node, 1)
        if shape is not None and shape.size == 2 and (
                shape[0] == -1 or shape[1] == -1 or (shape[0] == 0 and not at.get("allowzero"))):
            return Flatten(), out, [node]
        raise TypeError(f"{_describe(node)} to the shape {shape}: fastnn reads a Reshape "
                        "only as a Flatten to (batch, features)")
    if op == "Flatten":
        if at.get("axis", 1) != 1:
            raise ValueError(f"{_describe(node)} has axis={at['axis']}; fastnn's Flatten "
                             "keeps axis 0 (axis=1)")
        return Flatten(), out, [node]
    if op == "BatchNormalization":
        return _read_batchnorm(g, node, at)
    if op == "LayerNormalization":
        return _read_layernorm(g, node, at)
    raise TypeError(f"{_describe(node)} is not supported by Network.from_onnx; it reads "
                    "Gemm, MatMul (+ Add), Relu, Sigmoid, Tanh, LeakyRelu, PRelu, Elu, Selu, "
                    "Softplus, Gelu, Mish, Softmax, Identity, Dropout, Flatten, "
                    "BatchNormalization, LayerNormalization, fastnn's functions and "
                    "torch.onnx.export's SiLU, GELU, Mish and Softplus patterns")


def _region(g: _Graph, v: str) -> tuple[list[Any], str]:
    """The nodes from ``v`` to the first value all of them flow into, and that value."""
    region: list[Any] = []
    values = {v}
    for node in g.nodes[g.index[id(g.consumers[v][0])]:]:
        if not any(name in values for name in node.input):
            if region:
                break
            continue
        region.append(node)
        values.update(node.output)
        inside = {id(n) for n in region}
        pending = {name for name in values if name == g.target
                   or any(id(c) not in inside for c in g.consumers.get(name, []))}
        if len(pending) == 1 and node.output[0] in pending and v not in pending:
            return region, node.output[0]
    ops = sorted(n.op_type for n in region)
    raise TypeError(f"the nodes {ops} after the value {v!r} do not join into one output: "
                    "a network is a chain of layers")


#: the activations a region of several nodes may compute (torch.onnx.export's
#: decompositions), recognised by their values
_CANDIDATES: list[Callable[[], Layer]] = [SiLU, GELU, lambda: GELU("tanh"), Mish]


def _identify(g: _Graph, region: list[Any], v: str, out: str) -> Layer:
    """The activation the region computes, by evaluating it (onnx's reference runtime)
    on a grid and comparing with fastnn's activations (Softplus with each beta its
    constants hold)."""
    onnx = g.onnx
    h = onnx.helper
    consts = {name for node in region for name in node.input if name in g.consts}
    x = np.linspace(-8.0, 8.0, 161).reshape(1, -1)
    thresholds0 = [_scalar(g.const(n, 1)) for n in region if n.op_type == "Greater"]
    far = next((t for t in thresholds0 if t is not None), 20.0)
    x = np.concatenate([x, [[far + 0.5, far + 1.0, 2 * far + 1]]], axis=1)
    graph = h.make_graph(
        region, "region", [h.make_tensor_value_info(v, g.elem, None)],
        [h.make_tensor_value_info(out, g.elem, None)],
        [onnx.numpy_helper.from_array(np.asarray(g.consts[c]), c) for c in sorted(consts)])
    model = h.make_model(graph, opset_imports=g.opsets, ir_version=_IR_VERSION)
    ops = [n.op_type for n in region]
    try:
        from onnx.reference import ReferenceEvaluator
        y = np.asarray(ReferenceEvaluator(model).run(None, {v: x.astype(g.dtype)})[0],
                       dtype=np.float64)
    except Exception as exc:      # an operator the reference runtime lacks, a shape error
        raise TypeError(f"the nodes {ops} after the value {v!r}: not a layer fastnn reads "
                        f"({type(exc).__name__}: {exc})") from None
    reference = NumpyOps()
    candidates = [make() for make in _CANDIDATES]
    # Softplus(beta, threshold): the threshold is what a Greater compares with (the
    # TorchScript exporter drops it: torch's default, 20), beta one of the constants
    thresholds = [_scalar(g.const(n, 1)) for n in region if n.op_type == "Greater"]
    threshold = next((t for t in thresholds if t is not None), 20.0)
    betas = {1.0}
    for c in consts:
        beta = _scalar(g.consts[c])
        if beta:
            betas.update((beta, 1 / beta))
    candidates += [Softplus(beta=beta, threshold=threshold) for beta in sorted(betas)]
    for layer in candidates:
        assert isinstance(layer, (SiLU, GELU, Mish, Softplus))
        want = reference.activation_forward(x, layer.kind, layer.alpha, layer.beta)
        if y.shape == want.shape and np.allclose(y, want, rtol=1e-5, atol=1e-6):
            return layer
    raise TypeError(f"the nodes {ops} after the value {v!r} compute none of fastnn's "
                    "activations")


def _read_function(g: _Graph, node: Any) -> Layer:
    """A node of one of fastnn's model-local functions."""
    op = node.op_type
    if op == "GELU":
        return GELU()
    if op == "Mish":
        return Mish()
    if op in ("BatchNorm1d", "BatchNorm1dPlain", "LayerNorm", "LayerNormPlain"):
        arrays = [g.const(node, k) for k in range(1, len(node.input))]
        if all(a is not None for a in arrays):
            values = [np.array(a).reshape(-1) for a in arrays]
            affine = not op.endswith("Plain")
            if op.startswith("BatchNorm1d"):
                *params, mean, var, eps, momentum = values
                m, e = _scalar(momentum), _scalar(eps)
                if m is None or e is None:
                    raise ValueError(f"{_describe(node)}: its eps and momentum must be "
                                     "single numbers")
                bn = BatchNorm1d(mean.size, eps=e,
                                 momentum=None if math.isnan(m) else m, affine=affine)
                if affine:
                    bn.weight, bn.bias = params
                bn.running_mean, bn.running_var = mean, var
                return bn
            *params, eps = values
            width = params[0].size if affine else g.width
            if width is None:
                raise ValueError(f"{_describe(node)}: its width is not known (no Dense "
                                 "before it, and the input's shape is not given)")
            e = _scalar(eps)
            if e is None:
                raise ValueError(f"{_describe(node)}: its eps must be a single number")
            ln = LayerNorm(width, eps=e, elementwise_affine=affine)
            if affine:
                ln.weight, ln.bias = params
            return ln
    if op == "GELUTanh":
        return GELU("tanh")
    if op == "SELU":
        return SELU()
    if op == "LeakyReLU":
        slope = _scalar(g.const(node, 1))
        if slope is not None:
            return LeakyReLU(slope)
    if op == "ELU":
        alpha = _scalar(g.const(node, 1))
        if alpha is not None:
            return ELU(alpha)
    if op == "Softplus":
        beta, threshold = _scalar(g.const(node, 1)), _scalar(g.const(node, 2))
        if beta is not None and threshold is not None:
            return Softplus(beta=beta, threshold=threshold)
    raise TypeError(f"{_describe(node)} of domain {DOMAIN!r} is not one fastnn writes")


def _read_dense(g: _Graph, node: Any, at: dict[str, Any]) -> tuple[Layer, str, list[Any]]:
    W = g.const(node, 1)
    if W is None or W.ndim != 2:
        raise ValueError(f"{_describe(node)}: its weight must be a 2-D constant")
    nodes = [node]
    out = node.output[0]
    if node.op_type == "Gemm":
        if at.get("transA", 0) or at.get("alpha", 1.0) != 1.0 or at.get("beta", 1.0) != 1.0:
            raise ValueError(f"{_describe(node)} has transA/alpha/beta other than 0/1/1, "
                             "which a Dense layer does not have")
        if at.get("transB", 0):
            W = W.T
        bias = g.const(node, 2)
        if len(node.input) > 2 and node.input[2] and bias is None:
            raise ValueError(f"{_describe(node)}: its bias must be a constant")
    else:
        bias = None
        add = g.only(out, "Add")
        if add is not None:
            k = 1 if add.input[0] == out else 0
            bias = g.const(add, k)
            if bias is not None:
                nodes.append(add)
                out = add.output[0]
    layer = Dense(W.shape[0], W.shape[1], bias=bias is not None)
    layer.W = np.array(W)
    if bias is not None:
        if bias.size != W.shape[1]:
            raise ValueError(f"{_describe(node)}: a bias of shape {bias.shape} for "
                             f"{W.shape[1]} outputs")
        layer.b = np.array(bias).reshape(-1)
    return layer, out, nodes


def _read_batchnorm(g: _Graph, node: Any, at: dict[str, Any]) -> tuple[Layer, str, list[Any]]:
    if at.get("training_mode", 0):
        raise ValueError(f"{_describe(node)} is in training mode")
    if len(node.output) > 1 and any(node.output[1:]):
        raise ValueError(f"{_describe(node)} outputs running statistics (training mode)")
    arrays = [g.const(node, k) for k in range(1, 5)]
    if any(a is None for a in arrays):
        raise ValueError(f"{_describe(node)}: scale, bias, mean and var must be constants")
    scale, bias, mean, var = (np.array(a).reshape(-1) for a in arrays)
    momentum = at.get("momentum", 0.9)
    layer = BatchNorm1d(scale.size, eps=_from32(at.get("epsilon", 1e-5)),
                        momentum=float(np.round(1.0 - momentum, 6)))
    layer.weight, layer.bias, layer.running_mean, layer.running_var = scale, bias, mean, var
    return layer, node.output[0], [node]


def _read_layernorm(g: _Graph, node: Any, at: dict[str, Any]) -> tuple[Layer, str, list[Any]]:
    if at.get("axis", -1) not in (-1, 1):
        raise ValueError(f"{_describe(node)} normalizes from axis {at['axis']}; fastnn's "
                         "LayerNorm normalizes the last axis")
    if len(node.output) > 1 and any(node.output[1:]):
        raise ValueError(f"{_describe(node)} outputs its mean and inverse deviation, which "
                         "fastnn's LayerNorm does not give")
    scale, bias = g.const(node, 1), g.const(node, 2)
    if scale is None or (len(node.input) > 2 and node.input[2] and bias is None):
        raise ValueError(f"{_describe(node)}: scale and bias must be constants")
    scale = np.array(scale).reshape(-1)
    eps = _from32(at.get("epsilon", 1e-5))
    if bias is None and np.all(scale == 1):       # to_onnx's elementwise_affine=False
        return LayerNorm(scale.size, eps=eps, elementwise_affine=False), node.output[0], [node]
    layer = LayerNorm(scale.size, eps=eps)
    layer.weight = scale
    layer.bias = np.zeros_like(scale) if bias is None else np.array(bias).reshape(-1)
    return layer, node.output[0], [node]


def from_onnx(cls: type[Network], model_or_path: Any, *,
              backend: str | NumpyOps | None = None) -> Network:
    """A ``cls`` network equal to an ONNX model (see ``Network.from_onnx``).

    Parameters
    ----------
    cls : type
        The network class to build (``Network``).
    model_or_path : onnx.ModelProto, str or path-like
    backend : str, NumpyOps or None

    Returns
    -------
    Network
    """
    onnx = _import_onnx("Network.from_onnx")
    model = model_or_path
    if isinstance(model_or_path, (str, os.PathLike)):
        model = onnx.load(os.fspath(model_or_path))
    elif not isinstance(model_or_path, onnx.ModelProto):
        raise TypeError(f"from_onnx reads an onnx.ModelProto or a path, got "
                        f"{type(model_or_path).__name__}")
    graph = model.graph
    inputs = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ValueError(f"the model has {len(inputs)} inputs and {len(graph.output)} "
                         "outputs; a fastnn network has one of each")
    elem = inputs[0].type.tensor_type.elem_type
    if elem not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE):
        raise ValueError(f"the model's input is {onnx.TensorProto.DataType.Name(elem)}; "
                         "fastnn computes in float32 or float64")
    dtype = np.float64 if elem == onnx.TensorProto.DOUBLE else np.float32
    g = _Graph(onnx, graph)
    g.elem, g.dtype, g.opsets = elem, dtype, list(model.opset_import)
    dims = inputs[0].type.tensor_type.shape.dim
    if len(dims) >= 2 and all(d.HasField("dim_value") for d in dims[1:]):
        g.width = int(np.prod([d.dim_value for d in dims[1:]]))
    v, target = inputs[0].name, graph.output[0].name
    g.target = target
    layers: list[Layer] = []
    seen: set[int] = set()
    while v != target:
        found = _read_layer(g, v)
        if found is None:
            raise ValueError(f"the value {v!r} leads nowhere: the graph does not end at "
                             f"its output {target!r}")
        layer, v, nodes = found
        if isinstance(layer, Dense):
            g.width = layer.n_out
        seen.update(id(n) for n in nodes)
        if isinstance(layer, Identity) and v == target and nodes[0].name == target:
            continue        # to_onnx names the output with an Identity node: not a layer
        layers.append(layer)
    left = [n for n in g.nodes if id(n) not in seen]
    if left:
        raise TypeError(f"{_describe(left[0])} is not on the network's chain")
    return cls(layers, backend=backend, dtype=dtype)
