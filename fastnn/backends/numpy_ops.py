"""NumpyOps: the reference backend, and the executable spec of every kernel.

Why it is built this way: layers, losses and optimizers never compute anything
themselves; they call a kernel on an ops object.  This class is the plain NumPy
version of each kernel, written as readably as the tutorials, with a one-line
formula in every docstring.  The compiled backend (``CythonOps``) subclasses it
and overrides every kernel with C code that must give the same numbers, so any
question of "what should this return?" is answered by reading this file.

Conventions shared by all kernels:

* arrays are C-contiguous float32 or float64, all of one dtype; sizes come from
  the arrays;
* scalar hyper-parameters are Python floats; where a formula multiplies an
  array by a scalar, the scalar is first rounded to the array's dtype (NumPy 2
  semantics), and the compiled kernels do the same;
* loss values are accumulated and returned in float64;
* kernels compute IEEE results silently, like the C code: an overflow gives
  inf, an invalid operation NaN, an underflow 0 or a subnormal, and none warns
  (``@_ieee``), whatever ``np.seterr`` says.  Detecting a non-finite loss is
  the caller's job (``Network.fit`` stops with an error naming the epoch);
  extreme but finite inputs (logits of +-1e30, probabilities of exactly 0 or
  1) give finite losses and gradients by construction, not by hiding warnings;
* inputs are never written to; ``out=`` arguments, where offered, are written
  in full and returned.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
from typing import Any, Callable, Iterator, Mapping, NamedTuple, Sequence, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

# Loss reductions, in the order of the C enum ``FASTNN_REDUCTION_*``: defined in
# fastnn._validation, which the losses read without importing a backend.
from .._validation import REDUCTIONS as REDUCTIONS  # re-exported: the backends read it here
from .._validation import (ZERO_WEIGHT_MESSAGE, ZeroWeightError, check_kernel_weights,
                           check_loss_params)

#: a C-contiguous float32/float64 (labels: int64) ndarray
Array = NDArray[Any]

_F = TypeVar("_F", bound=Callable[..., Any])

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(z: Any) -> Any:
    """SplitMix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


_silent = threading.local()     # .on: this thread is inside an @_ieee kernel or scope


@contextlib.contextmanager
def ieee_scope() -> Iterator[None]:
    """Run a stretch of kernel calls as ``@_ieee`` runs one: NumPy's warnings off, set once.

    For loops of small kernels (the reference training loop's batches),
    where switching the error state per call would cost as much as the work.
    """
    if getattr(_silent, "on", False):
        yield
        return
    _silent.on = True
    try:
        with np.errstate(all="ignore"):
            yield
    finally:
        _silent.on = False


def _ieee(kernel: _F) -> _F:
    """Run ``kernel`` with NumPy's floating-point warnings off (see the module note).

    Kernels call kernels (dense_forward calls gemm and activation_forward):
    only the outermost one opens an ``ieee_scope``, which costs about as much
    as a small kernel; inside one, a kernel costs a flag test.
    """
    @functools.wraps(kernel)
    def silent(*args: Any, **kwargs: Any) -> Any:
        if getattr(_silent, "on", False):
            return kernel(*args, **kwargs)
        with ieee_scope():
            return kernel(*args, **kwargs)
    return silent  # type: ignore[return-value]


def _sigmoid(x: NDArray[Any]) -> NDArray[Any]:
    """Two-branch logistic: never overflows for large ``|x|``."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _flush_subnormal(state: NDArray[Any]) -> None:
    """Zero, in place, the entries of an optimizer state smaller in magnitude than
    the dtype's smallest normal number.

    The one deliberate departure from PyTorch's formulas: a moment whose
    gradient has become 0 decays geometrically and would otherwise spend
    hundreds of steps as a subnormal number, which CPUs compute 10-100x more
    slowly.  The values dropped are below 1.2e-38 (float32) or 2.2e-308
    (float64), far below what can move a weight.
    """
    state[np.abs(state) < np.finfo(state.dtype).tiny] = 0


def _check_activation(kind: str) -> None:
    if kind not in ACTIVATIONS:
        raise ValueError(f"unknown activation {kind!r}; expected one of {ACTIVATIONS}")


def _check_softmax_2d(a: Array, name: str) -> None:
    """Softmax works on the rows of a 2-D array."""
    if a.ndim != 2:
        raise ValueError(f"softmax needs a 2-D {name}, got shape {a.shape}")


def _check_softmax_columns(rows: int, cols: int, name: str, shape: tuple[int, ...]) -> None:
    """A softmax row needs at least one column (no rows at all is fine)."""
    if rows and not cols:
        raise ValueError(f"softmax of rows with no columns ({name} has shape {shape})")


def _reduction_scale(reduction: str, count: int) -> float:
    """1/count for 'mean', 1 for 'sum' (float64)."""
    if reduction == "mean":
        return 1.0 / count
    if reduction == "sum":
        return 1.0
    raise ValueError(f"unknown reduction {reduction!r}; expected 'mean' or 'sum'")


def rows_width(a: Array) -> tuple[int, int]:
    """A loss's rows and row width for pred ``a``: (n, d) for (n, d), (n, 1) for (n,).

    The rows are what sample weights weigh and the width what a weight
    vector (``pos_weight``) runs along; shapes of more dimensions count the
    first axis as rows.
    """
    if a.ndim == 0:
        return 1, 1
    rows = a.shape[0]
    return rows, (a.size // rows if rows else int(np.prod(a.shape[1:])))


def _weighted_scale(reduction: str, width: int, total: float) -> float:
    """The scale of a weighted sum: 1 / (width * total) for 'mean', 1 for 'sum'."""
    if reduction == "sum":
        return 1.0
    if reduction != "mean":
        return _reduction_scale(reduction, 1)          # the error
    if width == 0:
        return 1.0 / 0                                 # as _reduction_scale(mean, 0)
    if total == 0:
        raise ZeroWeightError(ZERO_WEIGHT_MESSAGE)
    return 1.0 / (width * total)


def _elementwise(reduction: str, sample_weight: Array | None, pred: Array, terms: Any,
                 g: Array | None, k: float = 1.0) -> tuple[float, Array | None]:
    """The per-element losses' reduction, weights and gradient scale.

    ``terms``: the float64 loss of each element of ``pred``; ``g``: its
    unscaled derivative (pred's dtype) or None.  Without weights: loss =
    sum(terms) * scale (1/size for mean), grad = g * T(k * scale).  With
    ``sample_weight`` w (n,) for pred (n, d): loss = sum(w_i * terms_ij) *
    scale, scale = 1 / (d * sum w) for mean, grad_ij = g_ij * T(k * scale * w_i).
    """
    if sample_weight is None:
        scale = _reduction_scale(reduction, pred.size)
        loss = float(np.sum(terms) * scale)
        return loss, None if g is None else g * pred.dtype.type(k * scale)
    rows, width = rows_width(pred)
    check_kernel_weights(rows, sample_weight)
    if pred.size == 0:
        _reduction_scale(reduction, 0)        # the error of an empty mean, as unweighted
    scale = _weighted_scale(reduction, width, float(np.sum(sample_weight)))
    weighted = np.reshape(terms, (rows, width)) * sample_weight[:, None]
    loss = float(np.sum(weighted) * scale)
    if g is None:
        return loss, None
    factor = (k * scale * sample_weight).astype(pred.dtype)
    return loss, (np.reshape(g, (rows, width)) * factor[:, None]).reshape(pred.shape)


def _cross_entropy_general(logits: Array, target: Array, reduction: str,
                           weight: Array | None, eps: float, sample_weight: Array | None,
                           need_grad: bool, e: Array, sum_e: Array,
                           nlogp: Any) -> tuple[float, Array | None]:
    """The cross-entropy with class weights, label smoothing or sample weights.

    ``nlogp`` = -log_softmax(logits) in float64, ``e`` / ``sum_e`` the
    shifted exponentials and their row sums (see ``NumpyOps.cross_entropy``
    for the formulas).
    """
    n, c = logits.shape
    cw = np.ones(c) if weight is None else weight
    sw = np.ones(n) if sample_weight is None else sample_weight
    ec = eps / c if c else 0.0                   # no classes: no rows either
    rows = np.arange(n)
    if target.ndim == 1:
        q = np.broadcast_to(ec * cw, (n, c)).copy()
        q[rows, target] += (1 - eps) * cw[target]
        omega = sw * cw[target] if weight is not None else sw
    else:
        q = cw * ((1 - eps) * target.astype(np.float64) + ec)
        omega = sw
    if reduction == "mean" and n == 0:
        _reduction_scale(reduction, 0)                    # the error of an empty mean
    total = float(np.sum(omega))
    scale = _weighted_scale(reduction, 1, total)
    loss = float(np.sum(sw * (q * nlogp).sum(axis=1)) * scale)
    if not need_grad:
        return loss, None
    softmax = (e / sum_e).astype(np.float64)
    grad = (softmax * q.sum(axis=1, keepdims=True) - q) * (sw * scale)[:, None]
    return loss, grad.astype(logits.dtype)


# scikit-learn's losses (the sk_ kernels, for fastnn.sklearn) are written below
# as its sklearn/neural_network/_base.py and _multilayer_perceptron.py write them
def _sk_total(pred: Array, reduction: str, sample_weight: Array | None) -> float:
    """The sk_ kernels' checks, and the rows' total weight (rows without weights).

    An empty ``pred`` under "mean" is the error of an empty mean, a total
    weight of 0 a ZeroWeightError, as for the other losses.
    """
    rows, _ = rows_width(pred)
    check_kernel_weights(rows, sample_weight)
    if pred.size == 0:
        _reduction_scale(reduction, 0)                 # the error of an empty mean
    total = float(rows) if sample_weight is None else float(np.sum(sample_weight))
    _weighted_scale(reduction, 1, total)                # unknown reduction; weights of 0
    return total


def _sk_average(terms: Any, sample_weight: Array | None, reduction: str) -> Any:
    """scikit-learn's ``np.average(terms, weights=sample_weight, axis=0)`` (float64
    (n, k) -> (k,)) for "mean"; for "sum" the same without the division."""
    if reduction == "sum":
        return (terms if sample_weight is None else terms * sample_weight[:, None]).sum(axis=0)
    return np.average(terms, weights=sample_weight, axis=0)


def _sk_delta(delta: Array, sample_weight: Array | None, reduction: str,
              total: float) -> Array:
    """scikit-learn's output delta as the gradient: ``delta *= sample_weight`` per
    row, then ``/ sw_sum`` (the total weight, in the dtype) for "mean"."""
    if sample_weight is not None:
        delta = delta * sample_weight.astype(delta.dtype)[:, None]
    return delta / delta.dtype.type(total) if reduction == "mean" else delta


def _xlogy(x: Any, y: Any) -> Any:
    """scipy.special.xlogy in float64: 0 where x == 0 (unless y is NaN), else x log y."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return np.where((x == 0) & ~np.isnan(y), 0.0, x * np.log(y))


def _softmax_forward(X: Array, alpha: float, beta: float) -> Array:
    _check_softmax_2d(X, "X")
    _check_softmax_columns(X.shape[0], X.shape[1], "X", X.shape)
    if X.size == 0:
        return X.copy()
    e = np.exp(X - X.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _softmax_backward(dY: Array, Z: Any, Y: Any, alpha: float, beta: float) -> Array:
    _check_softmax_2d(dY, "dY")
    return Y * (dY - (dY * Y).sum(axis=1, keepdims=True))


def _silu_backward(dY: Array, Z: Any, Y: Any, alpha: float, beta: float) -> Array:
    s = _sigmoid(Z)
    return dY * (s * (1 + Z * (1 - s)))


# PyTorch's activations (aten/src/ATen/native/cpu/Activation.cpp), operation for
# operation as csrc/activations_impl.h computes them, constants included (taken in
# double as PyTorch takes them, then rounded to the array's dtype).
_SQRT1_2 = 0.70710678118654752440                          # M_SQRT1_2
_INV_SQRT_2PI = 1.12837916709551257390 * 0.70710678118654752440 * 0.5   # M_2_SQRTPI*M_SQRT1_2/2
_SQRT_2_PI = 1.41421356237309504880 * 1.12837916709551257390 * 0.5      # M_SQRT2*M_2_SQRTPI/2
_GELU_KAPPA = 0.044715
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946

_erf_object = np.frompyfunc(math.erf, 1, 1)


def _erf(x: Array) -> Array:
    """erf elementwise, from the C library's erf (``math.erf``; NumPy has none),
    rounded to x's dtype."""
    return np.asarray(_erf_object(x), dtype=np.float64).astype(x.dtype, copy=False)


def _gelu_forward(X: Array, alpha: float, beta: float) -> Array:
    dt = X.dtype.type
    return X * dt(0.5) * (1 + _erf(X * dt(_SQRT1_2)))


def _gelu_backward(dY: Array, Z: Any, Y: Any, alpha: float, beta: float) -> Array:
    dt = Z.dtype.type
    cdf = dt(0.5) * (1 + _erf(Z * dt(_SQRT1_2)))
    pdf = dt(_INV_SQRT_2PI) * np.exp(dt(-0.5) * (Z * Z))
    return dY * (cdf + Z * pdf)


def _gelu_tanh_forward(X: Array, alpha: float, beta: float) -> Array:
    dt = X.dtype.type
    inner = dt(_SQRT_2_PI) * (X + dt(_GELU_KAPPA) * (X * X * X))
    return dt(0.5) * X * (1 + np.tanh(inner))


def _gelu_tanh_backward(dY: Array, Z: Any, Y: Any, alpha: float, beta: float) -> Array:
    dt = Z.dtype.type
    kb, kk = dt(_SQRT_2_PI), dt(_GELU_KAPPA)
    z2 = Z * Z
    t = np.tanh(kb * (Z + kk * (z2 * Z)))
    left_d = dt(0.5) * (1 + t)
    s = 1 - t * t       # where it is 0 its term is 0, also when z^2 overflows (the limit)
    right_d = np.where(s == 0, dt(0), s * kb * (1 + dt(3) * kk * z2))
    return dY * (left_d + dt(0.5) * Z * right_d)


def _elu_forward(X: Array, alpha: float, beta: float) -> Array:
    return np.where(X <= 0, np.expm1(X) * X.dtype.type(alpha), X)


def _elu_backward(dY: Array, Z: Any, Y: Any, alpha: float, beta: float) -> Array:
    return np.where(Z <= 0, dY * (Z.dtype.type(alpha) * np.exp(Z)), dY)


def _selu_forward(X: Array, alpha: float, beta: float) -> Array:
    dt = X.dtype.type
    return np.where(X <= 0, np.expm1(X) * dt(_SELU_ALPHA * _SELU_SCALE), X * dt(_SELU_SCALE))


def _selu_backward(dY: Array, Z: Any, Y: Any, alpha: float, beta: float) -> Array:
    dt = Z.dtype.type
    return np.where(Z <= 0, dY * (dt(_SELU_ALPHA * _SELU_SCALE) * np.exp(Z)),
                    dY * dt(_SELU_SCALE))


def _softplus_forward(X: Array, alpha: float, beta: float) -> Array:
    dt = X.dtype.type
    bx = X * dt(beta)
    return np.where(bx > dt(alpha), X, np.log1p(np.exp(bx)) / dt(beta))


def _softplus_backward(dY: Array, Z: Any, Y: Any, alpha: float, beta: float) -> Array:
    dt = Z.dtype.type
    bz = Z * dt(beta)
    e = np.exp(bz)
    return np.where(bz > dt(alpha), dY, dY * e / (e + 1))


def _mish_forward(X: Array, alpha: float, beta: float) -> Array:
    return X * np.tanh(np.log1p(np.exp(X)))


def _mish_backward(dY: Array, Z: Any, Y: Any, alpha: float, beta: float) -> Array:
    s = 1 / (1 + np.exp(-Z))
    t = np.tanh(np.log1p(np.exp(Z)))
    return dY * (t + Z * s * (1 - t * t))


class _Activation(NamedTuple):
    """One activation of the reference: its kernels and what its derivative reads."""

    forward: Callable[[Array, float, float], Array]            # (X, alpha, beta) -> Y
    backward: Callable[[Array, Any, Any, float, float], Array]  # (dY, Z, Y, alpha, beta) -> dZ
    needs_z: bool = False   # the derivative reads the pre-activation Z, not only Y


#: The activations, one row each, in the order of C's table (``FASTNN_ACTIVATIONS``
#: in csrc/fastnn.h; tests/test_tables.py checks the two agree).  The formulas
#: are in ``NumpyOps.activation_forward`` / ``activation_backward``.
ACTIVATION_TABLE: dict[str, _Activation] = {
    "identity": _Activation(lambda X, a, b: X.copy(), lambda dY, Z, Y, a, b: dY.copy()),
    "sigmoid": _Activation(lambda X, a, b: _sigmoid(X), lambda dY, Z, Y, a, b: dY * (Y * (1 - Y))),
    "tanh": _Activation(lambda X, a, b: np.tanh(X), lambda dY, Z, Y, a, b: dY * (1 - Y * Y)),
    "relu": _Activation(lambda X, a, b: np.where(X <= 0, X.dtype.type(0), X),
                        lambda dY, Z, Y, a, b: np.where(Y > 0, dY, dY.dtype.type(0))),
    "leaky_relu": _Activation(lambda X, a, b: np.where(X > 0, X, X.dtype.type(a) * X),
                              lambda dY, Z, Y, a, b: np.where(Z > 0, dY, dY.dtype.type(a) * dY),
                              needs_z=True),
    "silu": _Activation(lambda X, a, b: X * _sigmoid(X), _silu_backward, needs_z=True),
    "softmax": _Activation(_softmax_forward, _softmax_backward),
    "gelu": _Activation(_gelu_forward, _gelu_backward, needs_z=True),
    "gelu_tanh": _Activation(_gelu_tanh_forward, _gelu_tanh_backward, needs_z=True),
    "elu": _Activation(_elu_forward, _elu_backward, needs_z=True),
    "selu": _Activation(_selu_forward, _selu_backward, needs_z=True),
    "softplus": _Activation(_softplus_forward, _softplus_backward, needs_z=True),
    "mish": _Activation(_mish_forward, _mish_backward, needs_z=True),
}

#: Activation names, in C's order.
ACTIVATIONS = tuple(ACTIVATION_TABLE)

#: Activations whose derivative needs the pre-activation ``Z``; the others
#: derive it from the output ``Y`` alone, so ``Z`` need not be kept.
NEEDS_PREACTIVATION = frozenset(k for k, row in ACTIVATION_TABLE.items() if row.needs_z)


# ----------------------------------------------------------------- optimizers
# One reference update per row of C's optimizer table (FASTNN_OPTIMIZERS in
# csrc/fastnn.h), under the same name: ``update(param, grad, states, h, step)``
# updates ``param`` and the state arrays in place, with ``states`` the row's
# n_state arrays in order and ``h`` the hyper-parameters by the row's names.
# tests/test_tables.py checks this table against C's.

def _sgd_update(param: Array, grad: Array, states: list[Array | None], h: dict[str, float],
                step: int) -> None:
    """PyTorch's SGD: g = grad + wd*p; v = flush(mu*v + g);

    step = g + mu*v if nesterov else v (g if mu == 0); p -= lr*step.
    states: [velocity] (None when mu == 0).
    """
    lr, momentum, weight_decay, nesterov = (h["lr"], h["momentum"], h["weight_decay"],
                                            h["nesterov"])
    velocity = states[0]
    if momentum != 0 and velocity is None:
        raise missing_state("sgd", 0, param.shape, h)
    dt = param.dtype.type
    g = grad + dt(weight_decay) * param if weight_decay != 0 else grad
    if momentum != 0:
        assert velocity is not None
        velocity *= dt(momentum)
        velocity += g
        _flush_subnormal(velocity)
        g = g + dt(momentum) * velocity if nesterov else velocity
    param -= dt(lr) * g


def _adam_core(param: Array, grad: Array, states: list[Array | None], h: dict[str, float],
               step: int, name: str, decoupled: bool) -> None:
    """Adam (decoupled: AdamW) in place; see ``_adam_update`` / ``_adamw_update``."""
    lr, beta1, beta2, eps, weight_decay, amsgrad = (h["lr"], h["beta1"], h["beta2"], h["eps"],
                                                    h["weight_decay"], h["amsgrad"])
    for j in range(3 if amsgrad else 2):
        if states[j] is None:
            raise missing_state(name, j, param.shape, h)
    m, v, v_max = states
    assert m is not None and v is not None
    dt = param.dtype.type
    g = grad
    if weight_decay != 0 and decoupled:
        param *= dt(1 - lr * weight_decay)
    elif weight_decay != 0:
        g = grad + dt(weight_decay) * param
    m *= dt(beta1)
    m += dt(1 - beta1) * g
    _flush_subnormal(m)
    v *= dt(beta2)
    v += dt(1 - beta2) * (g * g)
    _flush_subnormal(v)
    if amsgrad:
        assert v_max is not None
        np.maximum(v_max, v, out=v_max)
        v = v_max
    step_size = lr / (1 - beta1 ** step)
    bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
    denom = np.sqrt(v) / dt(bias_correction2_sqrt) + dt(eps)
    param -= dt(step_size) * (m / denom)


def _adam_update(param: Array, grad: Array, states: list[Array | None], h: dict[str, float],
                 step: int) -> None:
    """PyTorch's Adam, step counted from 1: g = grad + wd*p;

    m = flush(b1*m + (1-b1)*g); v = flush(b2*v + (1-b2)*g^2);
    amsgrad: v_max = max(v_max, v) and v_max in place of v below;
    p -= (lr/(1-b1^t)) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
    states: [m, v, v_max] (v_max None without amsgrad).
    """
    _adam_core(param, grad, states, h, step, "adam", False)


def _adamw_update(param: Array, grad: Array, states: list[Array | None], h: dict[str, float],
                  step: int) -> None:
    """PyTorch's AdamW: p *= 1 - lr*wd (decoupled decay), then Adam's update with g = grad

    (see ``_adam_update``).  states: [m, v, v_max] (v_max None without amsgrad).
    """
    _adam_core(param, grad, states, h, step, "adamw", True)


def _lerp(start: Array, end: Array, weight: Any) -> Array:
    """PyTorch's lerp: start + w*(end - start) for |w| < 0.5, else end - (end - start)*(1 - w)."""
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (type(weight)(1) - weight)


def _rmsprop_update(param: Array, grad: Array, states: list[Array | None],
                    h: dict[str, float], step: int) -> None:
    """PyTorch's RMSprop: g = grad + wd*p; sq = flush(a*sq + (1-a)*g^2);

    centered: ga = flush(lerp(ga, g, 1-a)), avg = sqrt(sq - ga^2) + eps, else
    avg = sqrt(sq) + eps; momentum: buf = flush(mu*buf + g/avg), p -= lr*buf,
    else p -= lr*g/avg.  states: [square_avg, momentum_buffer, grad_avg]
    (None where momentum is 0 / not centered).
    """
    lr, alpha, eps, weight_decay, momentum, centered = (
        h["lr"], h["alpha"], h["eps"], h["weight_decay"], h["momentum"], h["centered"])
    for j, needed in enumerate((True, momentum != 0, centered != 0)):
        if needed and states[j] is None:
            raise missing_state("rmsprop", j, param.shape, h)
    square_avg, buf, grad_avg = states
    assert square_avg is not None
    dt = param.dtype.type
    g = grad + dt(weight_decay) * param if weight_decay != 0 else grad
    square_avg *= dt(alpha)
    square_avg += dt(1 - alpha) * (g * g)
    _flush_subnormal(square_avg)
    if centered:
        assert grad_avg is not None
        grad_avg[...] = _lerp(grad_avg, g, dt(1 - alpha))
        _flush_subnormal(grad_avg)
        avg = np.sqrt(square_avg - grad_avg * grad_avg) + dt(eps)
    else:
        avg = np.sqrt(square_avg) + dt(eps)
    if momentum != 0:
        assert buf is not None
        buf *= dt(momentum)
        buf += g / avg
        _flush_subnormal(buf)
        param -= dt(lr) * buf
    else:
        param -= dt(lr) * (g / avg)


def _adagrad_update(param: Array, grad: Array, states: list[Array | None],
                    h: dict[str, float], step: int) -> None:
    """PyTorch's Adagrad, step counted from 1: g = grad + wd*p; sum = flush(sum + g^2);

    p -= clr * g / (sqrt(sum) + eps), clr = lr / (1 + (t-1)*lr_decay).
    states: [sum] (made full of initial_accumulator_value).
    """
    lr, lr_decay, weight_decay, eps = h["lr"], h["lr_decay"], h["weight_decay"], h["eps"]
    state_sum = states[0]
    if state_sum is None:
        raise missing_state("adagrad", 0, param.shape, h)
    dt = param.dtype.type
    g = grad + dt(weight_decay) * param if weight_decay != 0 else grad
    clr = lr / (1 + (step - 1) * lr_decay)
    state_sum += g * g
    _flush_subnormal(state_sum)
    param -= dt(clr) * (g / (np.sqrt(state_sum) + dt(eps)))


def _sk_sgd_update(param: Array, grad: Array, states: list[Array | None],
                   h: dict[str, float], step: int) -> None:
    """scikit-learn's SGDOptimizer: v = mu*v - lr*g;

    p += mu*v - lr*g (nesterov, the new v) or v.  No weight decay, no flush.
    states: [velocity] (always, also for mu == 0).
    """
    lr, momentum, nesterov = h["lr"], h["momentum"], h["nesterov"]
    velocity = states[0]
    if velocity is None:
        raise missing_state("sk_sgd", 0, param.shape, h)
    dt = param.dtype.type
    velocity[...] = dt(momentum) * velocity - dt(lr) * grad
    if nesterov:
        param += dt(momentum) * velocity - dt(lr) * grad
    else:
        param += velocity


def _sk_adam_update(param: Array, grad: Array, states: list[Array | None],
                    h: dict[str, float], step: int) -> None:
    """scikit-learn's AdamOptimizer, step t counted from 1: m = b1*m + (1-b1)*g;

    v = b2*v + (1-b2)*g^2; lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t) (in double);
    p += (-lr_t * m) / (sqrt(v) + eps).  No weight decay, no flush.
    states: [m, v].
    """
    lr, beta1, beta2, eps = h["lr"], h["beta1"], h["beta2"], h["eps"]
    for j in range(2):
        if states[j] is None:
            raise missing_state("sk_adam", j, param.shape, h)
    m, v = states[0], states[1]
    assert m is not None and v is not None
    dt = param.dtype.type
    m[...] = dt(beta1) * m + dt(1 - beta1) * grad
    v[...] = dt(beta2) * v + dt(1 - beta2) * (grad * grad)
    lr_t = lr * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
    param += (dt(-lr_t) * m) / (np.sqrt(v) + dt(eps))


class OptimizerRef(NamedTuple):
    """A row of the reference optimizer table (as C's row: n_state, hyper names)."""

    n_state: int
    hypers: tuple[str, ...]
    update: Callable[[Array, Array, list[Array | None], dict[str, float], int], None]


#: The reference optimizers, by the names of C's table (see the note above).
OPTIMIZERS: dict[str, OptimizerRef] = {
    "sgd": OptimizerRef(1, ("lr", "momentum", "weight_decay", "nesterov"), _sgd_update),
    "adam": OptimizerRef(3, ("lr", "beta1", "beta2", "eps", "weight_decay", "amsgrad"),
                         _adam_update),
    "adamw": OptimizerRef(3, ("lr", "beta1", "beta2", "eps", "weight_decay", "amsgrad"),
                          _adamw_update),
    "rmsprop": OptimizerRef(3, ("lr", "alpha", "eps", "weight_decay", "momentum", "centered"),
                            _rmsprop_update),
    "adagrad": OptimizerRef(1, ("lr", "lr_decay", "weight_decay", "eps"), _adagrad_update),
    "sk_sgd": OptimizerRef(1, ("lr", "momentum", "nesterov"), _sk_sgd_update),
    "sk_adam": OptimizerRef(2, ("lr", "beta1", "beta2", "eps"), _sk_adam_update),
}


#: The metrics, by the names of C's table (FASTNN_METRICS): whether the
#: targets are int64 class labels (n,) rather than values shaped like the
#: outputs.  ``NumpyOps.metric`` computes each.
METRICS: dict[str, bool] = {
    "mae": False,
    "mse": False,
    "binary_accuracy": False,
    "argmax_accuracy": False,
    "label_accuracy": True,
}


def check_optimizer_call(name: str, states: Any, hypers: Any, step: int, n_state: int,
                         hyper_names: tuple[str, ...]) -> tuple[list[Any], dict[str, float]]:
    """The checks of ``optimizer_update`` both backends share (the same messages).

    Parameters
    ----------
    name : str
        The optimizer's name (already known to the caller's table).
    states : sequence
        Its ``n_state`` state arrays (or None; entries left out at the end
        are None), then possibly more entries, all None (an optimizer's
        fixed-length list, as ``native_spec`` gives).
    hypers : mapping
        Its hyper-parameters, exactly the names ``hyper_names``.
    step : int
        The number of this update, counted from 1.
    n_state, hyper_names
        The optimizer's row of the table.

    Returns
    -------
    (list, dict)
        The state list and the hyper-parameters as Python floats.
    """
    states = list(states)
    states += [None] * (n_state - len(states))      # entries left out are None
    if any(s is not None for s in states[n_state:]):
        raise ValueError(f"optimizer {name!r} keeps {n_state} state array(s) (then only "
                         f"None), got {['None' if s is None else type(s).__name__ for s in states]}")
    if not isinstance(hypers, Mapping) or set(hypers) != set(hyper_names):
        got = sorted(hypers) if isinstance(hypers, Mapping) else type(hypers).__name__
        raise ValueError(f"optimizer {name!r} takes the hyper-parameters {hyper_names} "
                         f"(a dict by name), got {got}")
    if step < 1:
        raise ValueError(f"{name}: step counts from 1, got {step}")
    return states[:n_state], {k: float(hypers[k]) for k in hyper_names}


def missing_state(name: str, j: int, shape: tuple[int, ...], h: dict[str, float]) -> ValueError:
    """The error for state array ``j`` of optimizer ``name`` given as None but needed.

    Parameters
    ----------
    name : str
        The optimizer.
    j : int
        The index of the state array in the table's order.
    shape : tuple of int
        The parameter's shape (the state array's).
    h : dict
        The hyper-parameters that need it.

    Returns
    -------
    ValueError
        The same message on both backends.
    """
    return ValueError(f"{name}: the hyper-parameters {h} need state array {j} of shape "
                      f"{shape}, got None")


def check_clip_call(grads: Any, limit: Any, name: str) -> list[Array]:
    """The checks of ``clip_grad_norm`` / ``clip_grad_value`` both backends share.

    Parameters
    ----------
    grads : sequence of ndarray
        C-contiguous, writeable float32 or float64 arrays, all of one dtype.
    limit : float
        ``max_norm`` or ``clip_value``: a finite number >= 0.
    name : str
        The limit's name, for the messages.

    Returns
    -------
    list of ndarray
        ``grads`` as a list.
    """
    if isinstance(limit, bool) or not isinstance(limit, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a real number, got {limit!r}")
    if not (math.isfinite(limit) and limit >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {limit}")
    grads = list(grads)
    dtypes = set()
    for i, g in enumerate(grads):
        if (not isinstance(g, np.ndarray) or g.dtype not in (np.float32, np.float64)
                or not g.flags.c_contiguous):
            raise TypeError(f"gradient {i} must be a C-contiguous float32 or float64 ndarray, "
                            f"got {type(g).__name__}"
                            f"{' ' + str(g.dtype) if isinstance(g, np.ndarray) else ''}")
        if not g.flags.writeable:
            raise ValueError(f"gradient {i} (shape {g.shape}) is read-only but is clipped "
                             "in place")
        dtypes.add(g.dtype)
    if len(dtypes) > 1:
        raise TypeError(f"the gradients mix dtypes {sorted(d.name for d in dtypes)}")
    return grads


def check_l2_call(weights: Any, grads: Any, alpha: Any,
                  total: Any) -> tuple[list[Array], list[Array], float, float]:
    """The checks of ``l2_penalty`` both backends share.

    Parameters
    ----------
    weights, grads : sequence of ndarray
        Pairs of C-contiguous float32 or float64 arrays of one dtype, each
        gradient of its weight's shape and writeable.
    alpha : float
        A finite number >= 0.
    total : float
        The batch's total weight: a number > 0 (else ZeroWeightError).

    Returns
    -------
    (weights, grads, alpha, total) : lists and floats
    """
    for value, name in ((alpha, "alpha"), (total, "total")):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating,
                                                             np.integer)):
            raise TypeError(f"{name} must be a real number, got {value!r}")
    if not (math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha}")
    weights = list(weights)
    grads = check_clip_call(grads, 0.0, "limit")
    if len(weights) != len(grads):
        raise ValueError(f"{len(weights)} weight arrays but {len(grads)} gradients")
    for i, (w, g) in enumerate(zip(weights, grads)):
        if not isinstance(w, np.ndarray) or w.dtype != g.dtype or w.shape != g.shape:
            got = (f"{w.dtype} {w.shape}" if isinstance(w, np.ndarray)
                   else type(w).__name__)
            raise TypeError(f"weight {i} must be an ndarray of its gradient's dtype and "
                            f"shape, {g.dtype} {g.shape}; got {got}")
        if not w.flags.c_contiguous:
            raise TypeError(f"weight {i} must be C-contiguous")
    if not total > 0:
        raise ZeroWeightError(ZERO_WEIGHT_MESSAGE)
    return weights, grads, float(alpha), float(total)


def _unknown_optimizer(name: Any, known: Any) -> ValueError:
    return ValueError(f"unknown optimizer {name!r}; expected one of {sorted(known)}")


class NumpyOps:
    """Reference kernels in plain NumPy (float32 or float64).

    Each kernel's docstring gives its formula and the shapes it takes.
    ``Array`` is a C-contiguous float32/float64 ndarray (labels: int64).
    """

    name: str = "numpy"

    # ------------------------------------------------------------ memory
    def zeros_like(self, a: Array) -> Array:
        """A new zero-filled C-contiguous array of a's shape and dtype."""
        return np.zeros(a.shape, dtype=a.dtype)

    # ------------------------------------------------------------- GEMM
    @_ieee
    def gemm(self, A: Array, B: Array, *, trans_a: bool = False, trans_b: bool = False,
             out: Array | None = None) -> Array:
        """C = op(A) @ op(B), op(M) = M.T when its flag is set.

        A: (m, k), or (k, m) with ``trans_a``; B: (k, n), or (n, k) with
        ``trans_b``.  Returns C of shape (m, n).
        """
        a = A.T if trans_a else A
        b = B.T if trans_b else B
        return np.matmul(a, b, out=out)

    # ------------------------------------------------------ activations
    @_ieee
    def activation_forward(self, X: Array, kind: str, alpha: float = 0.01,
                           beta: float = 1.0) -> Array:
        """Y = f(X) elementwise (softmax: along each row).

        identity: x; sigmoid: 1/(1+e^-x); tanh; relu: 0 if x<=0 else x (NaN stays NaN);
        leaky_relu: x if x>0 else alpha*x; silu: x*sigmoid(x);
        softmax: e^(x-max) / sum(e^(x-max)) per row;
        gelu: x*0.5*(1+erf(x/sqrt(2))); gelu_tanh: 0.5*x*(1+tanh(sqrt(2/pi)*(x+0.044715*x^3)));
        elu: x if x>0 else alpha*expm1(x); selu: scale*x if x>0 else scale*alpha0*expm1(x)
        (PyTorch's constants); softplus: x if beta*x > alpha (the threshold) else
        log1p(exp(beta*x))/beta; mish: x*tanh(log1p(exp(x))).  ``alpha`` and ``beta``
        are read only by the activations named with them.  X: (n, d) -> Y: (n, d);
        softmax needs a 2-D X with columns, unless it has no rows.
        """
        _check_activation(kind)
        return ACTIVATION_TABLE[kind].forward(X, alpha, beta)

    @_ieee
    def activation_backward(self, dY: Array, Z: Any, Y: Any, kind: str,
                            alpha: float = 0.01, beta: float = 1.0) -> Array:
        """dZ = dY * f'(Z), with f' taken from Y where possible.

        sigmoid: dY*y*(1-y); tanh: dY*(1-y^2); relu: dY if y>0 else 0;
        leaky_relu: dY if z>0 else alpha*dY; silu: dY*s*(1+z*(1-s)), s=sigmoid(z);
        softmax: y*(dY - sum(dY*y, per row)); gelu: dY*(cdf(z) + z*pdf(z));
        gelu_tanh, elu, selu, softplus, mish: PyTorch's derivatives, from z
        (the functions above this class).  ``Z`` is read only by the activations
        of ``NEEDS_PREACTIVATION`` and may be None otherwise.
        dY, Z, Y: (n, d) -> dZ: (n, d).
        """
        _check_activation(kind)
        return ACTIVATION_TABLE[kind].backward(dY, Z, Y, alpha, beta)

    # ------------------------------------------------------------ dense
    @_ieee
    def dense_forward(self, X: Array, W: Array, b: Array | None, kind: str = "identity",
                      alpha: float = 0.01, beta: float = 1.0) -> tuple[Array | None, Array]:
        """Z = X @ W + b; Y = f(Z).  Returns (Z, Y); Z is None unless f needs it.

        X: (n, n_in), W: (n_in, n_out), b: (n_out,) or None; Y: (n, n_out).
        """
        Z = self.gemm(X, W)
        if kind == "softmax":
            _check_softmax_columns(Z.shape[0], Z.shape[1], "W", W.shape)
        if b is not None:
            Z += b
        if kind == "identity":
            return None, Z
        Y = self.activation_forward(Z, kind, alpha, beta)
        return (Z if kind in NEEDS_PREACTIVATION else None), Y

    @_ieee
    def dense_backward(self, X: Array, W: Array, Z: Any, Y: Any, dY: Array,
                       kind: str = "identity", alpha: float = 0.01, beta: float = 1.0, *,
                       need_dX: bool = True,
                       need_db: bool = True) -> tuple[Array | None, Array, Array | None]:
        """dZ = dY*f'(Z); dW = X.T @ dZ; db = sum(dZ, axis=0); dX = dZ @ W.T.

        Returns (dX or None, dW, db or None) with the shapes of X, W, b.
        """
        dZ = dY if kind == "identity" else self.activation_backward(dY, Z, Y, kind, alpha, beta)
        dW = self.gemm(X, dZ, trans_a=True)
        db = dZ.sum(axis=0) if need_db else None
        dX = self.gemm(dZ, W, trans_b=True) if need_dX else None
        return dX, dW, db

    # ----------------------------------------------------------- losses
    # Every loss takes ``sample_weight``: None, or a float64 (n,) array of
    # weights >= 0 for the n rows of pred.  A row's loss l_i is the sum of its
    # terms (cross-entropy) or their mean over the row (the per-element
    # losses); the batch's is sum_i w_i l_i, divided for "mean" by the total
    # weight sum_i w_i (times the label's class weight for the weighted
    # cross-entropy with labels), so an integer weight counts as that many
    # copies of the row.  A total weight of 0 under "mean" is a
    # ZeroWeightError.  Without weights the formulas are the unweighted ones,
    # nothing multiplied by 1.
    @_ieee
    def mse(self, pred: Array, target: Array, reduction: str = "mean", *,
            sample_weight: Array | None = None,
            need_grad: bool = True) -> tuple[float, Array | None]:
        """L = mean or sum of (pred - target)^2;  dL/dpred = 2*(pred - target)*scale.

        pred, target: same shape.  Returns (loss as float, grad or None).
        """
        diff = pred - target
        return _elementwise(reduction, sample_weight, pred, np.square(diff, dtype=np.float64),
                            diff if need_grad else None, 2.0)

    @_ieee
    def bce(self, prob: Array, target: Array, reduction: str = "mean", *,
            sample_weight: Array | None = None,
            need_grad: bool = True) -> tuple[float, Array | None]:
        """L = -[t*log(p) + (1-t)*log(1-p)] with logs clamped at -100 (PyTorch);

        dL/dp = (p - t) / max(p*(1-p), 1e-12) * scale.  prob, target: same shape (n, d).
        Returns (loss, grad or None).
        """
        p = prob.astype(np.float64)
        t = target.astype(np.float64)
        log_p = np.maximum(np.log(p), -100.0)
        log_1mp = np.maximum(np.log(1 - p), -100.0)
        grad = None
        if need_grad:
            dt = prob.dtype.type
            grad = (prob - target) / np.maximum(prob * (1 - prob), dt(1e-12))
        return _elementwise(reduction, sample_weight, prob, -(t * log_p + (1 - t) * log_1mp),
                            grad)

    @_ieee
    def l1(self, pred: Array, target: Array, reduction: str = "mean", *,
           sample_weight: Array | None = None,
           need_grad: bool = True) -> tuple[float, Array | None]:
        """L = mean or sum of |pred - target|;  dL/dpred = sign(pred - target)*scale,

        0 where pred == target (PyTorch's sgn).  pred, target: same shape.
        """
        diff = pred - target
        return _elementwise(reduction, sample_weight, pred, np.abs(diff.astype(np.float64)),
                            np.sign(diff) if need_grad else None)

    @_ieee
    def huber(self, pred: Array, target: Array, reduction: str = "mean", *,
              delta: float = 1.0, sample_weight: Array | None = None,
              need_grad: bool = True) -> tuple[float, Array | None]:
        """L = z^2/2 if z < delta else delta*(z - delta/2), z = |pred - target|;

        dL/dpred = clip(pred - target, -delta, delta)*scale.  delta > 0.
        """
        delta = check_loss_params("huber", {"delta": delta})["delta"]
        diff = pred - target
        z = np.abs(diff.astype(np.float64))
        terms = np.where(z < delta, 0.5 * z * z, delta * (z - 0.5 * delta))
        grad = None
        if need_grad:
            a = pred.dtype.type(delta)
            grad = np.where(diff < -a, -a, np.where(diff > a, a, diff))
        return _elementwise(reduction, sample_weight, pred, terms, grad)

    @_ieee
    def smooth_l1(self, pred: Array, target: Array, reduction: str = "mean", *,
                  beta: float = 1.0, sample_weight: Array | None = None,
                  need_grad: bool = True) -> tuple[float, Array | None]:
        """L = z^2/(2 beta) if z < beta else z - beta/2, z = |pred - target|;

        dL/dpred = clip((pred - target)/beta, -1, 1)*scale.  beta >= 0; beta = 0
        is the L1 loss, gradient included (as PyTorch's smooth_l1_loss).
        """
        beta = check_loss_params("smooth_l1", {"beta": beta})["beta"]
        diff = pred - target
        z = np.abs(diff.astype(np.float64))
        terms = np.where(z < beta, 0.5 * z * z / beta, z - 0.5 * beta)
        grad = None
        if need_grad:
            dt = pred.dtype.type
            b = dt(beta)
            grad = (np.sign(diff) if beta == 0 else
                    np.where(diff < -b, dt(-1), np.where(diff > b, dt(1), diff / b)))
        return _elementwise(reduction, sample_weight, pred, terms, grad)

    @_ieee
    def bce_with_logits(self, logits: Array, target: Array, reduction: str = "mean", *,
                        pos_weight: Array | None = None, sample_weight: Array | None = None,
                        need_grad: bool = True) -> tuple[float, Array | None]:
        """L = (1-t)*x - (1 + (v-1)*t) * logsigmoid(x) on logits x (PyTorch's formula),

        logsigmoid(x) = min(x, 0) - log1p(exp(-|x|)), v the ``pos_weight`` of
        each output (float64 (d,), None: 1);  dL/dx = (sigmoid(x) - t)*scale,
        or ((v*t + 1 - t)*sigmoid(x) - v*t)*scale.  logits, target: (n, d).
        """
        check_kernel_weights(0, None, rows_width(logits)[1], pos_weight, "pos_weight")
        shape = rows_width(logits)           # pos_weight runs along a row
        x = logits.astype(np.float64).reshape(shape)
        t = target.astype(np.float64).reshape(shape)
        log_sig = np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))
        lw = 1.0 if pos_weight is None else 1 + (pos_weight - 1) * t
        grad = None
        if need_grad:
            s = _sigmoid(logits)
            if pos_weight is None:
                grad = s - target
            else:
                vt = pos_weight.astype(logits.dtype) * target.reshape(shape)
                grad = ((vt + logits.dtype.type(1) - target.reshape(shape)) * s.reshape(shape)
                        - vt).reshape(logits.shape)
        return _elementwise(reduction, sample_weight, logits, (1 - t) * x - lw * log_sig, grad)

    @_ieee
    def cross_entropy(self, logits: Array, target: Array, reduction: str = "mean", *,
                      weight: Array | None = None, label_smoothing: float = 0.0,
                      sample_weight: Array | None = None,
                      need_grad: bool = True) -> tuple[float, Array | None]:
        """L = -sum_c t_c * log_softmax(z)_c per row, mean or sum over rows;

        dL/dz = (softmax(z) * sum_c t_c - t) * scale.  ``target`` is either int64
        class labels (n,) in [0, C) or probabilities (n, C); logits: (n, C).
        With class weights c (float64 (C,)) and ``label_smoothing`` eps,
        PyTorch's definitions through an effective target q per row: labels
        y: q_k = (eps/C) c_k, plus (1 - eps) c_y at k = y; probabilities t:
        q_k = c_k ((1 - eps) t_k + eps/C); the row's loss is -sum_k q_k
        log_softmax(z)_k, its gradient softmax * sum_k q_k - q; the mean
        divides by sum_i c_{y_i} (labels) or n (probabilities), each row
        counted with its sample weight.  Returns (loss, grad (n, C) or None).
        """
        n, c = logits.shape
        eps = check_loss_params("cross_entropy", {"label_smoothing": label_smoothing})[
            "label_smoothing"]
        if c == 0 and n:
            raise ValueError(f"cross_entropy needs at least one class, logits has shape "
                             f"{logits.shape}")
        if target.ndim == 1 and n and (target.min() < 0 or target.max() >= c):
            raise ValueError(f"cross_entropy: target labels must lie in [0, {c}) for logits "
                             f"of shape ({n}, {c})")
        check_kernel_weights(n, sample_weight, c, weight, "weight")
        plain = weight is None and eps == 0 and sample_weight is None
        scale = _reduction_scale(reduction, n) if plain else 1.0
        row_max = logits.max(axis=1, keepdims=True, initial=-np.inf)  # initial: for n == 0
        e = np.exp(logits - row_max)
        sum_e = e.sum(axis=1, keepdims=True)
        log_sum = np.log(sum_e.astype(np.float64))
        # z - max for the loss is taken in float64: in float32 it overflows to
        # -inf for logits of -3e38 beside 3e38, whose loss 6e38 float64 holds
        shifted = np.subtract(logits, row_max, dtype=np.float64)
        rows = np.arange(n)
        if not plain:
            return _cross_entropy_general(logits, target, reduction, weight, eps,
                                          sample_weight, need_grad, e, sum_e,
                                          log_sum - shifted)
        if target.ndim == 1:
            # -log_softmax at the label = log(sum e) - (z_label - max)
            loss = float(np.sum(log_sum[:, 0] - shifted[rows, target]) * scale)
        else:
            log_softmax = shifted - log_sum
            loss = float(-np.sum(target * log_softmax) * scale)
        grad = None
        if need_grad:
            dt = logits.dtype.type
            softmax = e / sum_e
            if target.ndim == 1:
                grad = softmax
                grad[rows, target] -= 1
            else:
                grad = softmax * target.sum(axis=1, keepdims=True) - target
            grad *= dt(scale)
        return loss, grad

    # ------------------------------------------ scikit-learn's losses
    # For fastnn.sklearn: the losses of scikit-learn's MLPs, and as gradient
    # the output delta its _backprop uses (out - y, p - y; times w_i, divided
    # for "mean" by sum_i w_i).  Each batch loss is a weighted mean over ROWS
    # (np.average(..., axis=0)), then a mean (squared error) or a sum (log
    # losses) over the outputs; "sum" leaves out the division by sum_i w_i.
    @_ieee
    def sk_squared_error(self, pred: Array, target: Array, reduction: str = "mean", *,
                         sample_weight: Array | None = None,
                         need_grad: bool = True) -> tuple[float, Array | None]:
        """L = 0.5 * mean over outputs of np.average((pred - target)^2, weights=w, axis=0);

        dL/dpred = (pred - target) * w_i / sum(w) -- scikit-learn's delta, NOT
        divided by the k outputs, so for k > 1 it is k times the derivative of L
        (scikit-learn's squared_loss and _backprop).  pred, target: (n, k).
        """
        total = _sk_total(pred, reduction, sample_weight)
        rows, width = rows_width(pred)
        diff = (pred - target).reshape(rows, width)
        avg = _sk_average(np.square(diff, dtype=np.float64), sample_weight, reduction)
        loss = float(0.5 * avg.mean()) if width else 0.0
        if not need_grad:
            return loss, None
        return loss, _sk_delta(diff, sample_weight, reduction, total).reshape(pred.shape)

    @_ieee
    def sk_logistic(self, logits: Array, target: Array, reduction: str = "mean", *,
                    sample_weight: Array | None = None,
                    need_grad: bool = True) -> tuple[float, Array | None]:
        """L = sum over outputs of np.average(-(xlogy(t, pc) + xlogy(1-t, 1-pc)), weights=w,

        axis=0), p = expit(z) = 1/(1 + exp(-z)) in the dtype, pc = clip(p, eps,
        1 - eps), eps = finfo(dtype).eps (scikit-learn's binary_log_loss of its
        logistic outputs); dL/dz = (p - t) * w_i / sum(w), p unclipped.
        logits, target: (n, k), targets in [0, 1].
        """
        total = _sk_total(logits, reduction, sample_weight)
        shape = rows_width(logits)
        dt = logits.dtype.type
        z, t = logits.reshape(shape), target.reshape(shape)
        p = dt(1) / (dt(1) + np.exp(-z))                   # scipy.special.expit
        eps = dt(np.finfo(logits.dtype).eps)
        pc = np.clip(p, eps, dt(1) - eps)
        terms = -(_xlogy(t, pc) + _xlogy(dt(1) - t, dt(1) - pc))
        loss = float(_sk_average(terms, sample_weight, reduction).sum())
        if not need_grad:
            return loss, None
        return loss, _sk_delta(p - t, sample_weight, reduction, total).reshape(logits.shape)

    @_ieee
    def sk_softmax(self, logits: Array, target: Array, reduction: str = "mean", *,
                   sample_weight: Array | None = None,
                   need_grad: bool = True) -> tuple[float, Array | None]:
        """L = -sum over classes of np.average(xlogy(Y, clip(p, eps, 1 - eps)), weights=w,

        axis=0), Y the one-hot int64 labels ``target`` (n,), p = exp(z - max) /
        sum in the dtype (scikit-learn's softmax and log_loss); dL/dz =
        (p - Y) * w_i / sum(w).  logits: (n, C).
        """
        n, c = logits.shape
        if c == 0 and n:
            raise ValueError(f"sk_softmax needs at least one class, logits has shape "
                             f"{logits.shape}")
        if n and (target.min() < 0 or target.max() >= c):
            raise ValueError(f"sk_softmax: target labels must lie in [0, {c}) for logits of "
                             f"shape ({n}, {c})")
        total = _sk_total(logits, reduction, sample_weight)
        dt = logits.dtype.type
        p = np.exp(logits - logits.max(axis=1, keepdims=True, initial=-np.inf))
        p /= p.sum(axis=1, keepdims=True)
        onehot = np.zeros_like(logits)
        onehot[np.arange(n), target] = 1
        eps = dt(np.finfo(logits.dtype).eps)
        terms = _xlogy(onehot, np.clip(p, eps, dt(1) - eps))
        loss = float(-_sk_average(terms, sample_weight, reduction).sum())
        if not need_grad:
            return loss, None
        return loss, _sk_delta(p - onehot, sample_weight, reduction, total)

    # ---------------------------------------------------------- metrics
    @_ieee
    def metric(self, name: str, pred: Array, target: Array) -> float:
        """A metric of the outputs ``pred`` (n, C) against ``target``: a mean.

        ``mae`` = mean |pred - t|, ``mse`` = mean (pred - t)^2 (differences in
        the dtype, terms summed in float64); ``binary_accuracy`` = the fraction
        of the n * C outputs on the same side of 0.5 as their target;
        ``argmax_accuracy`` = the fraction of rows whose largest output is at
        the largest target's place; ``label_accuracy`` = the same against
        int64 labels ``target`` (n,).  Others: ``target`` shaped like ``pred``.
        """
        if name not in METRICS:
            raise ValueError(f"unknown metric kernel {name!r}; expected one of "
                             f"{sorted(METRICS)}")
        if not isinstance(pred, np.ndarray) or pred.ndim != 2 or pred.size == 0:
            raise ValueError(f"pred must be a non-empty 2-D array, got "
                             f"{getattr(pred, 'shape', type(pred).__name__)}")
        if METRICS[name]:
            if target.dtype != np.int64 or target.shape != pred.shape[:1]:
                raise ValueError(f"{name} takes int64 labels of shape {pred.shape[:1]}, got "
                                 f"{target.dtype} of shape {target.shape}")
            return float(np.mean(pred.argmax(axis=1) == target))
        if target.shape != pred.shape or target.dtype != pred.dtype:
            raise ValueError(f"target is {target.dtype} of shape {target.shape} but pred is "
                             f"{pred.dtype} of shape {pred.shape}")
        if name == "mae":
            return float(np.sum(np.abs(pred - target), dtype=np.float64) / pred.size)
        if name == "mse":
            return float(np.sum(np.square(pred - target, dtype=np.float64)) / pred.size)
        if name == "binary_accuracy":
            return float(np.mean((pred > 0.5) == (target > 0.5)))
        return float(np.mean(pred.argmax(axis=1) == target.argmax(axis=1)))

    # ------------------------------------------------------- optimizers
    @_ieee
    def optimizer_update(self, name: str, param: Array, grad: Array,
                         states: Sequence[Array | None], hypers: Mapping[str, float],
                         step: int = 1) -> None:
        """One update of optimizer ``name``, in place: ``param`` and ``states``.

        Parameters
        ----------
        name : str
            A row of the optimizer table (``OPTIMIZERS``, C's FASTNN_OPTIMIZERS).
        param, grad : ndarray
            Same shape and dtype; ``grad`` is not written.
        states : sequence of ndarray or None
            The optimizer's state arrays in the table's order (shape of
            ``param``), updated in place; None where the hyper-parameters need
            none (SGD's velocity without momentum; entries left out at the
            end are None).  Entries past the table's count must be None.
        hypers : dict
            The hyper-parameters by the table's names, all of them.
        step : int, default 1
            The number of this update, counted from 1 (Adam's bias correction).
        """
        row = OPTIMIZERS.get(name)
        if row is None:
            raise _unknown_optimizer(name, OPTIMIZERS)
        state_list, h = check_optimizer_call(name, states, hypers, step, row.n_state,
                                             row.hypers)
        row.update(param, grad, state_list, h, step)

    def sgd_update(self, param: Array, grad: Array, velocity: Array | None, lr: float,
                   momentum: float = 0.0, weight_decay: float = 0.0,
                   nesterov: bool = False) -> None:
        """In place (PyTorch's SGD): g = grad + wd*p; v = flush(mu*v + g);

        step = g + mu*v if nesterov else v (g if mu == 0); p -= lr*step.
        ``velocity`` (same shape) is updated in place; None when mu == 0.
        flush() zeroes subnormal entries (see ``_flush_subnormal``).
        ``optimizer_update("sgd", ...)`` under its own arguments.
        """
        self.optimizer_update("sgd", param, grad, [velocity if momentum != 0 else None],
                              {"lr": lr, "momentum": momentum,
                               "weight_decay": weight_decay, "nesterov": float(bool(nesterov))})

    def adam_update(self, param: Array, grad: Array, m: Array, v: Array, step: int, lr: float,
                    beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                    weight_decay: float = 0.0) -> None:
        """In place (PyTorch's Adam), step counted from 1: g = grad + wd*p;

        m = flush(b1*m + (1-b1)*g); v = flush(b2*v + (1-b2)*g^2);
        p -= (lr/(1-b1^t)) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
        flush() zeroes subnormal entries (see ``_flush_subnormal``).
        param, grad, m, v: same shape; m and v are updated in place.
        ``optimizer_update("adam", ...)`` under its own arguments.
        """
        self.optimizer_update("adam", param, grad, [m, v, None],
                              {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps,
                               "weight_decay": weight_decay, "amsgrad": 0.0}, step)

    # ------------------------------------------- scikit-learn's L2 penalty
    @_ieee
    def l2_penalty(self, weights: Sequence[Array], grads: Sequence[Array], alpha: float,
                   total: float) -> float:
        """scikit-learn's L2 penalty of a batch, in place: every dW += c W, c = alpha / total

        (c rounded to the dtype); returns 0.5 * alpha * S / total, S the sum
        over the arrays of sum(W^2) in float64 -- scikit-learn's ``coef_grads
        += alpha * W; /= sw_sum`` and ``loss += 0.5 * alpha * sum ||W||^2 /
        sw_sum``, with the loss gradient already divided by ``total``.

        Parameters
        ----------
        weights : sequence of ndarray
            The weight matrices W (a Dense layer's, shape (n_in, n_out)), read only.
        grads : sequence of ndarray
            Their gradients dW, same shapes and dtype, written in place.
        alpha : float
            The penalty's factor, finite and >= 0.
        total : float
            The batch's total weight (its rows, or the sum of its sample
            weights), > 0 (ZeroWeightError otherwise).

        Returns
        -------
        float
            The penalty to add to the batch's loss.
        """
        weights, grads, alpha, total = check_l2_call(weights, grads, alpha, total)
        squares = 0.0
        for w, g in zip(weights, grads):
            g += g.dtype.type(alpha / total) * w
            squares += float(np.sum(np.square(w, dtype=np.float64)))
        return 0.5 * alpha * squares / total

    # ------------------------------------------------- gradient clipping
    @_ieee
    def clip_grad_norm(self, grads: Sequence[Array], max_norm: float) -> float:
        """In place, as ``torch.nn.utils.clip_grad_norm_``: the norm of all the arrays

        total = sqrt(sum over the arrays of sum(g^2)) (in float64);
        c = max_norm / (total + 1e-6); unless c >= 1, every g *= c (rounded
        to the dtype).  grads: float arrays of one dtype, written in place.
        Returns total (inf or NaN when a gradient is).
        """
        grads = check_clip_call(grads, max_norm, "max_norm")
        total = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads))
        coef = max_norm / (total + 1e-6)
        if not coef >= 1.0:
            for g in grads:
                g *= g.dtype.type(coef)
        return total

    @_ieee
    def clip_grad_value(self, grads: Sequence[Array], clip_value: float) -> None:
        """In place, as ``torch.nn.utils.clip_grad_value_``: g = min(max(g, -v), v),

        v rounded to the dtype; NaN stays NaN.  grads: float arrays of one
        dtype, written in place.
        """
        grads = check_clip_call(grads, clip_value, "clip_value")
        for g in grads:
            v = g.dtype.type(clip_value)
            np.clip(g, -v, v, out=g)

    # ---------------------------------------------- randomness, dropout
    def rng_bits(self, seed: int, step: int, index: ArrayLike) -> Any:
        """64 random bits for element ``index`` of training step ``step``:

        mix64(mix64(seed + golden*(step+1)) + golden*(index+1)), uint64 wrap-around.
        ``index`` is an integer array; returns uint64 of its shape.
        """
        with np.errstate(over="ignore"):
            key = _mix64(np.uint64(seed) + _GOLDEN * np.uint64(step + 1))
            idx = np.asarray(index, dtype=np.uint64)
            return _mix64(key + _GOLDEN * (idx + np.uint64(1)))

    @_ieee
    def dropout_forward(self, X: Array, p: float, seed: int, step: int) -> tuple[Array, Array]:
        """mask = (u >= p) / (1 - p) with u = top 53 bits of rng_bits / 2^53; Y = X * mask.

        Returns (Y, mask), both of X's shape and dtype; p == 1 gives zeros.
        """
        dt = X.dtype.type
        bits = self.rng_bits(seed, step, np.arange(X.size, dtype=np.uint64))
        u = (bits >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)
        keep_scale = dt(1.0 / (1.0 - p)) if p < 1 else dt(0)
        mask = np.where(u >= p, keep_scale, dt(0)).reshape(X.shape)
        return X * mask, mask

    @_ieee
    def dropout_backward(self, dY: Array, mask: Array) -> Array:
        """dX = dY * mask (the mask of the matching forward)."""
        return dY * mask

    # ------------------------------------------------------------ normalization
    # PyTorch's formulas: xhat = (x - mean) * rstd, rstd = 1 / sqrt(var + eps) with
    # the biased variance; y = xhat * weight + bias.  Each mean and variance is
    # summed in float64 in one pass per column (BatchNorm1d) or per row (LayerNorm),
    # in index order, and never split, so the compiled kernels match the sums' order.
    @_ieee
    def batchnorm_forward(self, X: Array, weight: Array | None, bias: Array | None,
                          eps: float) -> tuple[Array, Array, Array, Array]:
        """Training-mode BatchNorm1d over the batch axis.

        X: (n, d), n >= 2; weight, bias: (d,) or None (``affine=False``).
        mean_j = sum_i x_ij / n, var_j = sum_i (x_ij - mean_j)^2 / n,
        xhat = (x - mean) * rstd, rstd = 1 / sqrt(var + eps), Y = xhat * weight + bias.

        Returns
        -------
        (Y, xhat, mean, var) : Y, xhat of X's shape and dtype; mean, var float64 (d,),
            var the biased batch variance (the running variance takes
            ``var * n / (n - 1)``).
        """
        n = X.shape[0]
        if n < 2:
            raise ValueError(f"BatchNorm1d needs more than 1 value per channel when "
                             f"training, got input of shape {X.shape}")
        x64 = X.astype(np.float64)
        mean = x64.sum(axis=0) / n
        var = ((x64 - mean) ** 2).sum(axis=0) / n
        rstd = 1.0 / np.sqrt(var + eps)
        xhat64 = (x64 - mean) * rstd
        Y = xhat64 * weight.astype(np.float64) + bias.astype(np.float64) \
            if weight is not None and bias is not None else xhat64
        return Y.astype(X.dtype), xhat64.astype(X.dtype), mean, var

    @_ieee
    def batchnorm_eval(self, X: Array, running_mean: Array, running_var: Array,
                       weight: Array | None, bias: Array | None, eps: float) -> Array:
        """Eval-mode BatchNorm1d: Y = (X - running_mean) / sqrt(running_var + eps) * weight + bias.

        X: (n, d); running_mean, running_var, weight, bias: (d,).  Returns Y (n, d).
        """
        x64 = X.astype(np.float64)
        rstd = 1.0 / np.sqrt(running_var.astype(np.float64) + eps)
        Y = (x64 - running_mean.astype(np.float64)) * rstd
        if weight is not None and bias is not None:
            Y = Y * weight.astype(np.float64) + bias.astype(np.float64)
        return Y.astype(X.dtype)

    @_ieee
    def batchnorm_backward(self, dY: Array, xhat: Array, var: Array, weight: Array | None,
                           eps: float) -> tuple[Array, Array, Array]:
        """Training-mode BatchNorm1d backward.

        dY, xhat: (n, d); var: float64 (d,) the biased batch variance; weight (d,) or None.
        g = dY * weight, dX = rstd / n * (n g - sum_i g - xhat sum_i g xhat),
        dweight = sum_i dY xhat, dbias = sum_i dY.

        Returns (dX (n, d), dweight (d,), dbias (d,)), X's dtype.
        """
        n = dY.shape[0]
        if n < 1:
            raise ValueError(f"batchnorm_backward needs at least one row, got dY of shape "
                             f"{dY.shape}")
        dy = dY.astype(np.float64)
        xh = xhat.astype(np.float64)
        dbias = dy.sum(axis=0)
        dweight = (dy * xh).sum(axis=0)
        w = weight.astype(np.float64) if weight is not None else np.ones(dY.shape[1])
        rstd = 1.0 / np.sqrt(var + eps)
        dX = (w * rstd / n) * (n * dy - dbias - xh * dweight)
        dt = dY.dtype
        return dX.astype(dt), dweight.astype(dt), dbias.astype(dt)

    @_ieee
    def layernorm_forward(self, X: Array, weight: Array | None, bias: Array | None,
                          eps: float) -> tuple[Array, Array, Array]:
        """LayerNorm over the last axis.

        X: (n, d); weight, bias: (d,) or None (``elementwise_affine=False``).
        mean_i = sum_j x_ij / d, var_i = sum_j (x_ij - mean_i)^2 / d,
        xhat = (x - mean) * rstd, rstd = 1 / sqrt(var + eps), Y = xhat * weight + bias.

        Returns (Y, xhat, rstd): Y, xhat (n, d) X's dtype, rstd float64 (n,).
        """
        d = X.shape[1]
        if d < 1:
            raise ValueError(f"layernorm_forward needs at least one feature, got X of shape "
                             f"{X.shape}")
        x64 = X.astype(np.float64)
        mean = x64.sum(axis=1, keepdims=True) / d
        var = ((x64 - mean) ** 2).sum(axis=1, keepdims=True) / d
        rstd = 1.0 / np.sqrt(var + eps)
        xhat64 = (x64 - mean) * rstd
        Y = xhat64 * weight.astype(np.float64) + bias.astype(np.float64) \
            if weight is not None and bias is not None else xhat64
        return Y.astype(X.dtype), xhat64.astype(X.dtype), rstd[:, 0]

    @_ieee
    def layernorm_backward(self, dY: Array, xhat: Array, rstd: Array,
                           weight: Array | None) -> tuple[Array, Array, Array]:
        """LayerNorm backward.

        dY, xhat: (n, d); rstd: float64 (n,); weight (d,) or None.
        g = dY * weight, dX = rstd / d * (d g - sum_j g - xhat sum_j g xhat),
        dweight = sum_i dY xhat, dbias = sum_i dY.

        Returns (dX (n, d), dweight (d,), dbias (d,)), X's dtype.
        """
        d = dY.shape[1]
        if d < 1:
            raise ValueError(f"layernorm_backward needs at least one feature, got dY of "
                             f"shape {dY.shape}")
        dy = dY.astype(np.float64)
        xh = xhat.astype(np.float64)
        g = dy * weight.astype(np.float64) if weight is not None else dy
        sg = g.sum(axis=1, keepdims=True)
        sgx = (g * xh).sum(axis=1, keepdims=True)
        dX = (rstd[:, None] / d) * (d * g - sg - xh * sgx)
        dt = dY.dtype
        return dX.astype(dt), (dy * xh).sum(axis=0).astype(dt), dy.sum(axis=0).astype(dt)
