"""Losses, with PyTorch's definitions, names and defaults: MSELoss, L1Loss,
HuberLoss, SmoothL1Loss, BCELoss, BCEWithLogitsLoss and CrossEntropyLoss.

Why it is built this way: a loss object only knows its reduction, its
parameters and how to check a target; the arithmetic is a backend kernel
returning the value and the gradient together (one pass, as the compiled
kernels do it).  A loss declares its parameters under the names of its row
of C's loss table (``params``, and the per-output weight vector ``vector``),
so the kernels and the compiled trainer take them by name.  Sample weights
are an argument of ``compute``, not a property of the loss: they belong to
the data.  Targets are
validated and converted once per ``fit``, in ``prepare_target``, not per batch.
A loss computes through the ops object it is handed; only the user-facing
``loss(pred, target)`` looks up the default backend, inside the call.  A
subclass may override ``compute``: its code then runs on every backend.

The private ``_SklearnSquaredError``, ``_SklearnLogistic`` and
``_SklearnSoftmax`` are scikit-learn's MLP losses for ``fastnn.sklearn``:
its values (clipped probabilities, means over rows) and, as gradient, its
output delta -- rows of the same C table, so the compiled trainer runs them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from ._validation import REDUCTIONS, as_float_array, as_numeric, as_weights, check_loss_params

__all__ = ["Loss", "MSELoss", "BCELoss", "CrossEntropyLoss", "L1Loss", "HuberLoss",
           "SmoothL1Loss", "BCEWithLogitsLoss", "get_loss"]


class Loss:
    """Base class.  ``loss(pred, target)`` -> float; ``loss.gradient(pred, target)`` -> array.

    Parameters
    ----------
    reduction : {"mean", "sum"}, default "mean"

    Examples
    --------
    >>> from fastnn import MSELoss, BCELoss, CrossEntropyLoss
    >>> MSELoss()([[1.0], [2.0]], [[0.0], [0.0]])          # (1 + 4) / 2
    2.5
    >>> MSELoss(reduction="sum")([[1.0], [2.0]], [[0.0], [0.0]])
    5.0
    >>> MSELoss().gradient([[1.0], [2.0]], [[0.0], [0.0]])  # 2 (pred - target) / n
    array([[1.],
           [2.]])
    >>> round(BCELoss()([[0.9], [0.2]], [1, 0]), 6)         # -(log 0.9 + log 0.8) / 2
    0.164252
    >>> round(CrossEntropyLoss()([[2.0, 0.0, 0.0]], [0]), 6)  # logits, class labels
    0.239545
    """

    kernel: str = ""
    #: whether ``evaluate`` reports an accuracy for this loss
    classification: bool = False
    #: the output value that separates the classes of a binary accuracy
    threshold: float = 0.5
    #: the scalar parameters (attributes), as C's loss table names them
    params: tuple[str, ...] = ()
    #: the attribute holding a per-output weight vector (C's table), or None
    vector: str | None = None
    #: scikit-learn's L2 penalty ``alpha`` (>= 0; 0: off), read by ``fit``'s
    #: trainers (both backends): after each batch's backward, before clipping
    #: and the update, every Dense layer's ``dW`` gets ``(alpha / total) * W``
    #: (not ``db``, not the norm layers; ``W`` before the update) and the
    #: batch's loss ``0.5 * alpha * sum ||W||^2 / total``, ``total`` the batch's
    #: total weight (its rows, or the sum of its sample weights).  Only the
    #: training loss has it: ``compute``, ``evaluate`` and validation do not.
    #: The scikit-learn losses set it per instance.
    l2_penalty: float = 0.0
    #: whether ``fit``'s epoch loss is scikit-learn's, ``sum_b loss_b * rows_b /
    #: n`` (each batch's loss weighted by its rows), rather than the batches'
    #: losses weighted by their total weights (the same without sample weights)
    epoch_by_rows: bool = False

    def __init__(self, reduction: str = "mean") -> None:
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def __repr__(self) -> str:
        extra = "".join(f", {name}={getattr(self, name)!r}" for name in self.params)
        if self.vector is not None and getattr(self, self.vector) is not None:
            extra += f", {self.vector}={getattr(self, self.vector).tolist()!r}"
        return f"{type(self).__name__}(reduction={self.reduction!r}{extra})"

    def kernel_args(self) -> dict[str, Any]:
        """The kernel's keyword arguments: the parameters and the weight vector by name.

        Returns
        -------
        dict
            E.g. ``{"delta": 1.0}`` for HuberLoss, ``{"label_smoothing": 0.1,
            "weight": array or None}`` for CrossEntropyLoss.
        """
        args = {name: getattr(self, name) for name in self.params}
        if self.vector is not None:
            args[self.vector] = getattr(self, self.vector)
        return args

    def row_weights(self, target: NDArray[Any]) -> NDArray[np.float64] | None:
        """The weight each row's loss is counted with in the mean, besides sample weights.

        None (every row 1) but for the class-weighted cross-entropy with labels:
        the weight of each row's label (PyTorch divides by their sum).

        Parameters
        ----------
        target : ndarray, as returned by ``prepare_target``
        """
        return None

    def _check_vector(self, n_outputs: int) -> None:
        """The weight vector, if any, has one weight per output."""
        values = getattr(self, self.vector) if self.vector is not None else None
        if values is not None and values.shape != (n_outputs,):
            raise ValueError(f"{type(self).__name__}({self.vector}=...) has {values.shape[0]} "
                             f"weights but the network has {n_outputs} outputs")

    # -- used by Network: targets checked once, kernels called per batch
    def prepare_target(self, y: ArrayLike, n_samples: int, n_outputs: int,
                       dtype: DTypeLike, name: str = "y") -> NDArray[Any]:
        """Check ``y`` against the network output and convert it once.

        Parameters
        ----------
        y : array-like, shape (n_samples, n_outputs), or (n_samples,) for one output
        n_samples, n_outputs : int
            Shape of the network's output for these samples.
        dtype : float32 or float64
            The network's dtype.
        name : str, default "y"
            The target's name in error messages.

        Returns
        -------
        ndarray, shape (n_samples, n_outputs)
            The target array the kernel takes (C-contiguous, ``dtype``).
        """
        self._check_vector(n_outputs)
        arr = as_float_array(y, dtype, name)
        if arr.ndim == 1 and n_outputs == 1:
            arr = arr.reshape(-1, 1)
        if arr.shape != (n_samples, n_outputs):
            raise ValueError(f"{name} has shape {arr.shape} but the network outputs "
                             f"({n_samples}, {n_outputs}) for these samples")
        return arr

    def compute(self, ops: Any, pred: NDArray[Any], target: NDArray[Any], *,
                need_grad: bool = True, sample_weight: NDArray[np.float64] | None = None
                ) -> tuple[float, NDArray[Any] | None]:
        """The loss and its gradient via the backend kernel.

        Parameters
        ----------
        ops : NumpyOps
            The backend's kernels.
        pred : ndarray, shape (n, d)
        target : ndarray, as returned by ``prepare_target``
        need_grad : bool, default True
        sample_weight : ndarray of float64, shape (n,), optional
            A weight >= 0 per row: the loss is sum_i w_i l_i, divided for
            ``"mean"`` by sum_i w_i (times the label's class weight for
            ``CrossEntropyLoss(weight=...)`` with labels), so an integer
            weight counts as that many copies of the row; l_i is the row's
            loss (the mean of its elements' for the per-element losses and
            ``"mean"``).  ``fit`` passes it only when it has weights (a
            subclass overriding ``compute`` gets it then).

        Returns
        -------
        loss : float
        grad : ndarray, shape (n, d), or None without ``need_grad``
            d loss / d pred.
        """
        kwargs = self.kernel_args()
        if sample_weight is not None:
            kwargs["sample_weight"] = sample_weight
        result: tuple[float, NDArray[Any] | None] = getattr(ops, self.kernel)(
            pred, target, self.reduction, need_grad=need_grad, **kwargs)
        return result

    # -- user-facing convenience, on the default backend
    def _user_args(self, pred: ArrayLike, target: ArrayLike) -> tuple[NDArray[Any], NDArray[Any]]:
        arr = np.asarray(as_numeric(pred, "pred"))
        dtype = arr.dtype if arr.dtype in (np.float32, np.float64) else np.float64
        arr = as_float_array(arr, dtype, "pred")
        if arr.ndim == 1:
            arr = arr.reshape(-1, 1)
        if arr.ndim != 2:
            raise ValueError(f"pred must be 1-D or 2-D, got shape {arr.shape}")
        if arr.size == 0:
            raise ValueError(f"pred is empty: shape {arr.shape}")
        return arr, self.prepare_target(target, arr.shape[0], arr.shape[1], dtype)

    def __call__(self, pred: ArrayLike, target: ArrayLike) -> float:
        """The loss of ``pred`` against ``target``, on the default backend.

        Parameters
        ----------
        pred : array-like, shape (n, d), or (n,) for d = 1
        target : array-like
            Same shape as ``pred`` (CrossEntropyLoss: also labels (n,)).

        Returns
        -------
        float
        """
        p, t = self._user_args(pred, target)
        return self.compute(_default_ops(), p, t, need_grad=False)[0]

    def gradient(self, pred: ArrayLike, target: ArrayLike) -> NDArray[Any]:
        """d loss / d pred, on the default backend.

        Parameters
        ----------
        pred : array-like, shape (n, d), or (n,) for d = 1
        target : array-like
            As for ``__call__``.

        Returns
        -------
        ndarray, shape (n, d) (a 1-D pred gives (n, 1))
        """
        p, t = self._user_args(pred, target)
        grad = self.compute(_default_ops(), p, t)[1]
        assert grad is not None
        return grad


def _default_ops() -> Any:
    """The default backend's kernels, for the user-facing ``loss(pred, target)``.

    The one place a loss is not handed its ops (a training loop hands them to
    ``compute``), so the registry is imported here, when such a call is made.
    """
    from .backends import get_backend
    return get_backend()


class MSELoss(Loss):
    """Mean squared error: mean (or sum) over all elements of (pred - target)^2.

    ``reduction="sum"`` is the tutorials' sum-of-squares error.

    Parameters
    ----------
    reduction : {"mean", "sum"}, default "mean"
    """

    kernel = "mse"


class L1Loss(Loss):
    """Mean absolute error: mean (or sum) over all elements of |pred - target|.

    The gradient at pred == target is 0 (PyTorch's).

    Parameters
    ----------
    reduction : {"mean", "sum"}, default "mean"

    Examples
    --------
    >>> from fastnn import L1Loss
    >>> L1Loss()([[1.0], [-3.0]], [[0.0], [0.0]])
    2.0
    """

    kernel = "l1"


class HuberLoss(Loss):
    """Huber loss: z^2 / 2 for z = |pred - target| < delta, else delta * (z - delta / 2).

    Parameters
    ----------
    reduction : {"mean", "sum"}, default "mean"
    delta : float, default 1.0
        Where the loss turns from quadratic to linear (> 0), as PyTorch's.

    Examples
    --------
    >>> from fastnn import HuberLoss
    >>> HuberLoss(delta=1.0)([[0.5], [3.0]], [[0.0], [0.0]])   # (0.125 + 2.5) / 2
    1.3125
    """

    kernel = "huber"
    params = ("delta",)

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction)
        self.delta = check_loss_params("HuberLoss", {"delta": delta})["delta"]


class SmoothL1Loss(Loss):
    """Smooth L1: z^2 / (2 beta) for z = |pred - target| < beta, else z - beta / 2.

    ``beta=0`` is the L1 loss, its gradient included (as PyTorch's).

    Parameters
    ----------
    reduction : {"mean", "sum"}, default "mean"
    beta : float, default 1.0
        Where the loss turns from quadratic to linear (>= 0).

    Examples
    --------
    >>> from fastnn import SmoothL1Loss
    >>> SmoothL1Loss(beta=2.0)([[1.0], [3.0]], [[0.0], [0.0]])   # (0.25 + 2.0) / 2
    1.125
    """

    kernel = "smooth_l1"
    params = ("beta",)

    def __init__(self, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__(reduction)
        self.beta = check_loss_params("SmoothL1Loss", {"beta": beta})["beta"]


class BCELoss(Loss):
    """Binary cross-entropy on probabilities (after a Sigmoid), logs clamped at -100.

    Parameters
    ----------
    reduction : {"mean", "sum"}, default "mean"
    """

    kernel = "bce"
    classification = True

    def prepare_target(self, y: ArrayLike, n_samples: int, n_outputs: int,
                       dtype: DTypeLike, name: str = "y") -> NDArray[Any]:
        arr = super().prepare_target(y, n_samples, n_outputs, dtype, name)
        if ((arr < 0) | (arr > 1)).any():
            raise ValueError(f"BCELoss targets must lie in [0, 1]; {name} has values from "
                             f"{arr.min():g} to {arr.max():g}")
        return arr

    def _user_args(self, pred: ArrayLike, target: ArrayLike) -> tuple[NDArray[Any], NDArray[Any]]:
        pred, target = super()._user_args(pred, target)
        if ((pred < 0) | (pred > 1)).any():
            raise ValueError("BCELoss expects probabilities in [0, 1] as pred "
                             "(put a Sigmoid before it)")
        return pred, target


class BCEWithLogitsLoss(Loss):
    """Binary cross-entropy on **logits** (no Sigmoid before it), PyTorch's formula.

    l = (1 - t) x - (1 + (v - 1) t) log(sigmoid(x)) per element, computed
    stably for any logit x; targets t in [0, 1], shaped like the output.

    Parameters
    ----------
    reduction : {"mean", "sum"}, default "mean"
    pos_weight : array-like of shape (n_outputs,), optional
        v: the weight of the positive term of each output (>= 0), e.g.
        n_negative / n_positive for an unbalanced label.  None: 1.

    Examples
    --------
    >>> from fastnn import BCEWithLogitsLoss
    >>> round(BCEWithLogitsLoss()([[0.0], [2.0]], [1, 1]), 6)   # -(log .5 + log s(2)) / 2
    0.410038
    """

    kernel = "bce_with_logits"
    classification = True
    threshold = 0.0     # a logit of 0 is the probability 0.5
    vector = "pos_weight"

    def __init__(self, reduction: str = "mean", pos_weight: ArrayLike | None = None) -> None:
        super().__init__(reduction)
        self.pos_weight = None if pos_weight is None else as_weights(pos_weight, "pos_weight")

    def prepare_target(self, y: ArrayLike, n_samples: int, n_outputs: int,
                       dtype: DTypeLike, name: str = "y") -> NDArray[Any]:
        arr = super().prepare_target(y, n_samples, n_outputs, dtype, name)
        if ((arr < 0) | (arr > 1)).any():
            raise ValueError(f"BCEWithLogitsLoss targets must lie in [0, 1]; {name} has "
                             f"values from {arr.min():g} to {arr.max():g}")
        return arr


class CrossEntropyLoss(Loss):
    """Cross-entropy on **logits** (no Softmax before it), fused with softmax.

    Targets are integer class labels of shape (n,) in [0, C), or class
    probabilities of shape (n, C).  ``mean`` averages over samples.

    Parameters
    ----------
    reduction : {"mean", "sum"}, default "mean"
    weight : array-like of shape (C,), optional
        A weight >= 0 per class, as PyTorch's: each sample's loss is scaled
        by the weight of its label, and the mean divides by the sum of those
        weights (with probability targets each class's term is scaled, and
        the mean divides by the number of samples).
    label_smoothing : float in [0, 1], default 0.0
        Mixes the target with the uniform distribution, as PyTorch's: the
        target becomes (1 - label_smoothing) * target + label_smoothing / C
        (for labels, their one-hot vectors; with ``weight``, PyTorch's
        weighting of both parts).

    Examples
    --------
    >>> from fastnn import CrossEntropyLoss
    >>> round(CrossEntropyLoss(weight=[1.0, 3.0])([[0.0, 0.0], [0.0, 0.0]], [0, 1]), 6)
    0.693147
    >>> round(CrossEntropyLoss(label_smoothing=0.2)([[2.0, 0.0]], [0]), 6)
    0.326928
    """

    kernel = "cross_entropy"
    classification = True
    params: tuple[str, ...] = ("label_smoothing",)
    vector: str | None = "weight"

    def __init__(self, reduction: str = "mean", *, weight: ArrayLike | None = None,
                 label_smoothing: float = 0.0) -> None:
        super().__init__(reduction)
        self.weight = None if weight is None else as_weights(weight, "weight")
        self.label_smoothing = check_loss_params(
            "CrossEntropyLoss", {"label_smoothing": label_smoothing})["label_smoothing"]

    def row_weights(self, target: NDArray[Any]) -> NDArray[np.float64] | None:
        if self.weight is None or target.ndim != 1:
            return None
        return self.weight[target]

    def prepare_target(self, y: ArrayLike, n_samples: int, n_outputs: int,
                       dtype: DTypeLike, name: str = "y") -> NDArray[Any]:
        self._check_vector(n_outputs)
        arr = as_numeric(y, name)
        if arr.ndim == 2:
            return _check_probabilities(
                super().prepare_target(arr, n_samples, n_outputs, dtype, name), name)
        if arr.ndim != 1 or arr.shape[0] != n_samples:
            raise ValueError(f"{name} must be class labels of shape ({n_samples},) or "
                             f"probabilities of shape ({n_samples}, {n_outputs}); got shape "
                             f"{arr.shape}")
        if arr.dtype.kind == "f":
            as_float_array(arr, arr.dtype, name)          # NaN / infinity
            fractional = arr != np.round(arr)
            if fractional.any():
                raise ValueError(f"class labels in {name} must be whole numbers; got fractional "
                                 f"values (first {arr[fractional][0]:g}, shape {arr.shape})")
        # the range is checked before the cast, so 1e20 or a uint64 cannot wrap around
        if arr.size and (arr.min() < 0 or arr.max() >= n_outputs):
            raise ValueError(f"class labels must lie in [0, {n_outputs}) for a network with "
                             f"{n_outputs} outputs; got labels from {arr.min():g} to "
                             f"{arr.max():g}")
        return arr.astype(np.int64)


class _SklearnLoss(Loss):
    """What scikit-learn's MLP losses share: ``loss_curve_`` weighs each batch's
    loss by its rows (not its total sample weight)."""

    epoch_by_rows = True


class _SklearnSquaredError(_SklearnLoss):
    """scikit-learn's squared error (``MLPRegressor``), for ``fastnn.sklearn``.

    The value is scikit-learn's ``squared_loss``: each row's loss is 0.5 times
    the mean over its k outputs of (pred - target)^2, and the batch's the
    mean of those over the rows (with sample weights w: sum_i w_i l_i /
    sum_i w_i).  The gradient is scikit-learn's output delta, (pred -
    target) / n (with weights (pred - target) w_i / sum_i w_i) -- *not*
    divided by k: for k > 1 outputs scikit-learn's gradient is k times the
    derivative of the value it reports, and this loss keeps that so the
    fitted model is scikit-learn's.  Not ``MSELoss`` with a factor either
    (its gradient is 2 (pred - target) / (n k)).

    Parameters
    ----------
    reduction : {"mean", "sum"}, default "mean"
        "sum": the same without the division by the rows' total weight.

    Notes
    -----
    pred and target: (n, k); the gradient (n, k).

    Examples
    --------
    >>> from fastnn.losses import _SklearnSquaredError
    >>> _SklearnSquaredError()([[1.0, 3.0], [2.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]])
    1.75
    >>> _SklearnSquaredError().gradient([[1.0, 3.0], [2.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]])
    array([[0.5, 1.5],
           [1. , 0. ]])
    """

    kernel = "sk_squared_error"


class _SklearnLogistic(_SklearnLoss):
    """scikit-learn's log-loss of logistic outputs (binary or multi-label ``MLPClassifier``).

    The network outputs the logits z (no Sigmoid layer); p = 1 / (1 +
    exp(-z)) in the network's dtype (scikit-learn's ``expit``).  The value is
    scikit-learn's ``binary_log_loss``: each row's loss is the *sum* over its
    k outputs of -(t log pc + (1 - t) log(1 - pc)), pc = p clipped to [eps,
    1 - eps] with eps the dtype's machine epsilon, a 0 factor giving 0
    (``xlogy``); the batch's is the (weighted) mean over the rows.  The
    gradient is scikit-learn's output delta (p - t) / n (with weights (p - t)
    w_i / sum_i w_i), with the unclipped p.

    Parameters
    ----------
    reduction : {"mean", "sum"}, default "mean"
        "sum": the same without the division by the rows' total weight.

    Notes
    -----
    pred (logits) and target: (n, k), targets in [0, 1]; the gradient (n, k).
    The accuracy of ``evaluate`` thresholds the logits at 0.

    Examples
    --------
    >>> from fastnn.losses import _SklearnLogistic
    >>> round(_SklearnLogistic()([[0.0], [2.0]], [1, 1]), 6)   # -(log .5 + log s(2)) / 2
    0.410038
    """

    kernel = "sk_logistic"
    classification = True
    threshold = 0.0     # a logit of 0 is the probability 0.5

    def prepare_target(self, y: ArrayLike, n_samples: int, n_outputs: int,
                       dtype: DTypeLike, name: str = "y") -> NDArray[Any]:
        arr = super().prepare_target(y, n_samples, n_outputs, dtype, name)
        if ((arr < 0) | (arr > 1)).any():
            raise ValueError(f"_SklearnLogistic targets must lie in [0, 1]; {name} has "
                             f"values from {arr.min():g} to {arr.max():g}")
        return arr


class _SklearnSoftmax(_SklearnLoss, CrossEntropyLoss):
    """scikit-learn's log-loss of a softmax output (multiclass ``MLPClassifier``).

    The network outputs the logits z (no Softmax layer); p = exp(z - max) /
    sum, in the network's dtype, as scikit-learn computes its softmax.  The
    value is scikit-learn's ``log_loss`` with one-hot targets: each row's
    loss is -log(clip(p_label, eps, 1 - eps)), eps the dtype's machine
    epsilon, and the batch's the (weighted) mean over the rows.  The gradient
    is scikit-learn's output delta (p - onehot) / n (with weights times w_i /
    sum_i w_i).  Targets are class labels only.  A ``CrossEntropyLoss`` for
    the rest of fastnn (accuracy by argmax, ``class_weight``), without
    ``weight`` or ``label_smoothing``.

    Parameters
    ----------
    reduction : {"mean", "sum"}, default "mean"
        "sum": the same without the division by the rows' total weight.

    Notes
    -----
    pred (logits): (n, C); target: int64 class labels (n,) in [0, C); the
    gradient (n, C).

    Examples
    --------
    >>> from fastnn.losses import _SklearnSoftmax
    >>> round(_SklearnSoftmax()([[2.0, 0.0, 0.0]], [0]), 6)
    0.239545
    """

    kernel = "sk_softmax"
    params = ()
    vector = None

    def __init__(self, reduction: str = "mean") -> None:
        Loss.__init__(self, reduction)
        self.weight = None
        self.label_smoothing = 0.0

    def prepare_target(self, y: ArrayLike, n_samples: int, n_outputs: int,
                       dtype: DTypeLike, name: str = "y") -> NDArray[Any]:
        if np.ndim(y) != 1:
            raise ValueError(f"_SklearnSoftmax takes class labels of shape ({n_samples},); "
                             f"{name} has shape {np.shape(y)}")
        return super().prepare_target(y, n_samples, n_outputs, dtype, name)


def _check_probabilities(y: NDArray[Any], name: str) -> NDArray[Any]:
    if ((y < 0) | (y > 1)).any():
        raise ValueError(f"probability targets must lie in [0, 1]; {name} has values from "
                         f"{y.min():g} to {y.max():g}")
    return y


_LOSSES: dict[str, type[Loss]] = {"mse": MSELoss, "bce": BCELoss, "cross_entropy": CrossEntropyLoss,
           "crossentropy": CrossEntropyLoss, "l1": L1Loss, "huber": HuberLoss,
           "smooth_l1": SmoothL1Loss, "bce_with_logits": BCEWithLogitsLoss,
           "sk_squared_error": _SklearnSquaredError, "sk_logistic": _SklearnLogistic,
           "sk_softmax": _SklearnSoftmax}


def get_loss(loss: Loss | type[Loss] | str) -> Loss:
    """A Loss instance from an instance, a class or a name.

    Parameters
    ----------
    loss : Loss, Loss subclass or str
        A name is one of "mse", "bce", "cross_entropy" (or "crossentropy"),
        "l1", "huber", "smooth_l1", "bce_with_logits" (default parameters).

    Returns
    -------
    Loss
    """
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, type) and issubclass(loss, Loss):
        return loss()
    if isinstance(loss, str) and loss.lower() in _LOSSES:
        return _LOSSES[loss.lower()]()
    raise ValueError(f"unknown loss {loss!r}; expected a Loss or one of {sorted(_LOSSES)}")
