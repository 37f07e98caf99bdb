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
import threading
from typing import Any, Callable, Iterator, Mapping, NamedTuple, Sequence, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

# Loss reductions, in the order of the C enum ``FASTNN_REDUCTION_*``: defined in
# fastnn._validation, which the losses read without importing a backend.
from .._validation import REDUCTIONS as REDUCTIONS  # re-exported: the backends read it here

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


def _softmax_forward(X: Array, alpha: float) -> Array:
    _check_softmax_2d(X, "X")
    _check_softmax_columns(X.shape[0], X.shape[1], "X", X.shape)
    if X.size == 0:
        return X.copy()
    e = np.exp(X - X.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _softmax_backward(dY: Array, Z: Any, Y: Any, alpha: float) -> Array:
    _check_softmax_2d(dY, "dY")
    return Y * (dY - (dY * Y).sum(axis=1, keepdims=True))


def _silu_backward(dY: Array, Z: Any, Y: Any, alpha: float) -> Array:
    s = _sigmoid(Z)
    return dY * (s * (1 + Z * (1 - s)))


class _Activation(NamedTuple):
    """One activation of the reference: its kernels and what its derivative reads."""

    forward: Callable[[Array, float], Array]            # (X, alpha) -> Y
    backward: Callable[[Array, Any, Any, float], Array]  # (dY, Z, Y, alpha) -> dZ
    needs_z: bool = False   # the derivative reads the pre-activation Z, not only Y


#: The activations, one row each, in the order of C's table (``FASTNN_ACTIVATIONS``
#: in csrc/fastnn.h; tests/test_tables.py checks the two agree).  The formulas
#: are in ``NumpyOps.activation_forward`` / ``activation_backward``.
ACTIVATION_TABLE: dict[str, _Activation] = {
    "identity": _Activation(lambda X, a: X.copy(), lambda dY, Z, Y, a: dY.copy()),
    "sigmoid": _Activation(lambda X, a: _sigmoid(X), lambda dY, Z, Y, a: dY * (Y * (1 - Y))),
    "tanh": _Activation(lambda X, a: np.tanh(X), lambda dY, Z, Y, a: dY * (1 - Y * Y)),
    "relu": _Activation(lambda X, a: np.where(X <= 0, X.dtype.type(0), X),
                        lambda dY, Z, Y, a: np.where(Y > 0, dY, dY.dtype.type(0))),
    "leaky_relu": _Activation(lambda X, a: np.where(X > 0, X, X.dtype.type(a) * X),
                              lambda dY, Z, Y, a: np.where(Z > 0, dY, dY.dtype.type(a) * dY),
                              needs_z=True),
    "silu": _Activation(lambda X, a: X * _sigmoid(X), _silu_backward, needs_z=True),
    "softmax": _Activation(_softmax_forward, _softmax_backward),
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


def _adam_update(param: Array, grad: Array, states: list[Array | None], h: dict[str, float],
                 step: int) -> None:
    """PyTorch's Adam, step counted from 1: g = grad + wd*p;

    m = flush(b1*m + (1-b1)*g); v = flush(b2*v + (1-b2)*g^2);
    p -= (lr/(1-b1^t)) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
    states: [m, v].
    """
    lr, beta1, beta2, eps, weight_decay = (h["lr"], h["beta1"], h["beta2"], h["eps"],
                                           h["weight_decay"])
    m, v = states
    for j, s in enumerate(states):
        if s is None:
            raise missing_state("adam", j, param.shape, h)
    assert m is not None and v is not None
    dt = param.dtype.type
    g = grad + dt(weight_decay) * param if weight_decay != 0 else grad
    m *= dt(beta1)
    m += dt(1 - beta1) * g
    _flush_subnormal(m)
    v *= dt(beta2)
    v += dt(1 - beta2) * (g * g)
    _flush_subnormal(v)
    step_size = lr / (1 - beta1 ** step)
    bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
    denom = np.sqrt(v) / dt(bias_correction2_sqrt) + dt(eps)
    param -= dt(step_size) * (m / denom)


class OptimizerRef(NamedTuple):
    """A row of the reference optimizer table (as C's row: n_state, hyper names)."""

    n_state: int
    hypers: tuple[str, ...]
    update: Callable[[Array, Array, list[Array | None], dict[str, float], int], None]


#: The reference optimizers, by the names of C's table (see the note above).
OPTIMIZERS: dict[str, OptimizerRef] = {
    "sgd": OptimizerRef(1, ("lr", "momentum", "weight_decay", "nesterov"), _sgd_update),
    "adam": OptimizerRef(2, ("lr", "beta1", "beta2", "eps", "weight_decay"), _adam_update),
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
        Its ``n_state`` state arrays (or None), then possibly more entries,
        all None (an optimizer's fixed-length list, as ``native_spec`` gives).
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
    if len(states) < n_state or any(s is not None for s in states[n_state:]):
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
    def activation_forward(self, X: Array, kind: str, alpha: float = 0.01) -> Array:
        """Y = f(X) elementwise (softmax: along each row).

        identity: x; sigmoid: 1/(1+e^-x); tanh; relu: 0 if x<=0 else x (NaN stays NaN);
        leaky_relu: x if x>0 else alpha*x; silu: x*sigmoid(x);
        softmax: e^(x-max) / sum(e^(x-max)) per row.  X: (n, d) -> Y: (n, d);
        softmax needs a 2-D X with columns, unless it has no rows.
        """
        _check_activation(kind)
        return ACTIVATION_TABLE[kind].forward(X, alpha)

    @_ieee
    def activation_backward(self, dY: Array, Z: Any, Y: Any, kind: str,
                            alpha: float = 0.01) -> Array:
        """dZ = dY * f'(Z), with f' taken from Y where possible.

        sigmoid: dY*y*(1-y); tanh: dY*(1-y^2); relu: dY if y>0 else 0;
        leaky_relu: dY if z>0 else alpha*dY; silu: dY*s*(1+z*(1-s)), s=sigmoid(z);
        softmax: y*(dY - sum(dY*y, per row)).  ``Z`` is read only by
        leaky_relu and silu (``NEEDS_PREACTIVATION``) and may be None otherwise.
        dY, Z, Y: (n, d) -> dZ: (n, d).
        """
        _check_activation(kind)
        return ACTIVATION_TABLE[kind].backward(dY, Z, Y, alpha)

    # ------------------------------------------------------------ dense
    @_ieee
    def dense_forward(self, X: Array, W: Array, b: Array | None, kind: str = "identity",
                      alpha: float = 0.01) -> tuple[Array | None, Array]:
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
        Y = self.activation_forward(Z, kind, alpha)
        return (Z if kind in NEEDS_PREACTIVATION else None), Y

    @_ieee
    def dense_backward(self, X: Array, W: Array, Z: Any, Y: Any, dY: Array,
                       kind: str = "identity", alpha: float = 0.01, *, need_dX: bool = True,
                       need_db: bool = True) -> tuple[Array | None, Array, Array | None]:
        """dZ = dY*f'(Z); dW = X.T @ dZ; db = sum(dZ, axis=0); dX = dZ @ W.T.

        Returns (dX or None, dW, db or None) with the shapes of X, W, b.
        """
        dZ = dY if kind == "identity" else self.activation_backward(dY, Z, Y, kind, alpha)
        dW = self.gemm(X, dZ, trans_a=True)
        db = dZ.sum(axis=0) if need_db else None
        dX = self.gemm(dZ, W, trans_b=True) if need_dX else None
        return dX, dW, db

    # ----------------------------------------------------------- losses
    @_ieee
    def mse(self, pred: Array, target: Array, reduction: str = "mean", *,
            need_grad: bool = True) -> tuple[float, Array | None]:
        """L = mean or sum of (pred - target)^2;  dL/dpred = 2*(pred - target)*scale.

        pred, target: same shape.  Returns (loss as float, grad or None).
        """
        scale = _reduction_scale(reduction, pred.size)
        diff = pred - target
        loss = float(np.sum(np.square(diff, dtype=np.float64)) * scale)
        grad = diff * pred.dtype.type(2.0 * scale) if need_grad else None
        return loss, grad

    @_ieee
    def bce(self, prob: Array, target: Array, reduction: str = "mean", *,
            need_grad: bool = True) -> tuple[float, Array | None]:
        """L = -[t*log(p) + (1-t)*log(1-p)] with logs clamped at -100 (PyTorch);

        dL/dp = (p - t) / max(p*(1-p), 1e-12) * scale.  prob, target: same shape (n, d).
        Returns (loss, grad or None).
        """
        scale = _reduction_scale(reduction, prob.size)
        p = prob.astype(np.float64)
        t = target.astype(np.float64)
        log_p = np.maximum(np.log(p), -100.0)
        log_1mp = np.maximum(np.log(1 - p), -100.0)
        loss = float(-np.sum(t * log_p + (1 - t) * log_1mp) * scale)
        grad = None
        if need_grad:
            dt = prob.dtype.type
            grad = (prob - target) / np.maximum(prob * (1 - prob), dt(1e-12)) * dt(scale)
        return loss, grad

    @_ieee
    def cross_entropy(self, logits: Array, target: Array, reduction: str = "mean", *,
                      need_grad: bool = True) -> tuple[float, Array | None]:
        """L = -sum_c t_c * log_softmax(z)_c per row, mean or sum over rows;

        dL/dz = (softmax(z) * sum_c t_c - t) * scale.  ``target`` is either int64
        class labels (n,) in [0, C) or probabilities (n, C); logits: (n, C).
        Returns (loss, grad (n, C) or None).
        """
        n, c = logits.shape
        scale = _reduction_scale(reduction, n)
        if c == 0 and n:
            raise ValueError(f"cross_entropy needs at least one class, logits has shape "
                             f"{logits.shape}")
        if target.ndim == 1 and n and (target.min() < 0 or target.max() >= c):
            raise ValueError(f"cross_entropy: target labels must lie in [0, {c}) for logits "
                             f"of shape ({n}, {c})")
        row_max = logits.max(axis=1, keepdims=True, initial=-np.inf)  # initial: for n == 0
        e = np.exp(logits - row_max)
        sum_e = e.sum(axis=1, keepdims=True)
        log_sum = np.log(sum_e.astype(np.float64))
        # z - max for the loss is taken in float64: in float32 it overflows to
        # -inf for logits of -3e38 beside 3e38, whose loss 6e38 float64 holds
        shifted = np.subtract(logits, row_max, dtype=np.float64)
        rows = np.arange(n)
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
            none (SGD's velocity without momentum).  Entries past the
            table's count must be None.
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
        self.optimizer_update("adam", param, grad, [m, v],
                              {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps,
                               "weight_decay": weight_decay}, step)

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
