"""Losses: MSELoss, BCELoss and CrossEntropyLoss, with PyTorch's definitions.

Why it is built this way: a loss object only knows its reduction and how to
check a target; the arithmetic is a backend kernel returning the value and the
gradient together (one pass, as the compiled kernels do it).  Targets are
validated and converted once per ``fit``, in ``prepare_target``, not per batch.
"""

import numpy as np

from ._validation import as_float_array, as_numeric
from .backends import get_backend
from .backends.numpy_ops import REDUCTIONS

__all__ = ["Loss", "MSELoss", "BCELoss", "CrossEntropyLoss", "get_loss"]


class Loss:
    """Base class.  ``loss(pred, target)`` -> float; ``loss.gradient(pred, target)`` -> array.

    Parameters
    ----------
    reduction : {"mean", "sum"}, default "mean"
    """

    kernel = None
    #: whether ``evaluate`` reports an accuracy for this loss
    classification = False

    def __init__(self, reduction="mean"):
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def __repr__(self):
        return f"{type(self).__name__}(reduction={self.reduction!r})"

    # -- used by Network: targets checked once, kernels called per batch
    def prepare_target(self, y, n_samples, n_outputs, dtype):
        """Check ``y`` against the network output (n_samples, n_outputs); returns
        the target array the kernel takes."""
        y = as_float_array(y, dtype, "y")
        if y.ndim == 1 and n_outputs == 1:
            y = y.reshape(-1, 1)
        if y.shape != (n_samples, n_outputs):
            raise ValueError(f"y has shape {y.shape} but the network outputs "
                             f"({n_samples}, {n_outputs}) for these samples")
        return y

    def compute(self, ops, pred, target, *, need_grad=True):
        """(loss as float, d loss / d pred or None) via the backend kernel."""
        return getattr(ops, self.kernel)(pred, target, self.reduction, need_grad=need_grad)

    # -- user-facing convenience, on the default backend
    def _user_args(self, pred, target):
        pred = np.asarray(as_numeric(pred, "pred"))
        dtype = pred.dtype if pred.dtype in (np.float32, np.float64) else np.float64
        pred = as_float_array(pred, dtype, "pred")
        if pred.ndim == 1:
            pred = pred.reshape(-1, 1)
        if pred.ndim != 2:
            raise ValueError(f"pred must be 1-D or 2-D, got shape {pred.shape}")
        return pred, self.prepare_target(target, pred.shape[0], pred.shape[1], dtype)

    def __call__(self, pred, target):
        """The loss of ``pred`` (n, d) against ``target`` as a float."""
        pred, target = self._user_args(pred, target)
        return self.compute(get_backend(), pred, target, need_grad=False)[0]

    def gradient(self, pred, target):
        """d loss / d pred, shape (n, d) (a 1-D pred gives (n, 1))."""
        pred, target = self._user_args(pred, target)
        return self.compute(get_backend(), pred, target)[1]


class MSELoss(Loss):
    """Mean squared error: mean (or sum) over all elements of (pred - target)^2.

    ``reduction="sum"`` is the tutorials' sum-of-squares error.
    """

    kernel = "mse"


class BCELoss(Loss):
    """Binary cross-entropy on probabilities (after a Sigmoid), logs clamped at -100."""

    kernel = "bce"
    classification = True

    def prepare_target(self, y, n_samples, n_outputs, dtype):
        y = super().prepare_target(y, n_samples, n_outputs, dtype)
        if ((y < 0) | (y > 1)).any():
            raise ValueError("BCELoss targets must lie in [0, 1]")
        return y

    def _user_args(self, pred, target):
        pred, target = super()._user_args(pred, target)
        if ((pred < 0) | (pred > 1)).any():
            raise ValueError("BCELoss expects probabilities in [0, 1] as pred "
                             "(put a Sigmoid before it)")
        return pred, target


class CrossEntropyLoss(Loss):
    """Cross-entropy on **logits** (no Softmax before it), fused with softmax.

    Targets are integer class labels of shape (n,) in [0, C), or class
    probabilities of shape (n, C).  ``mean`` averages over samples.
    """

    kernel = "cross_entropy"
    classification = True

    def prepare_target(self, y, n_samples, n_outputs, dtype):
        arr = as_numeric(y, "y")
        if arr.ndim == 2:
            return _check_probabilities(super().prepare_target(arr, n_samples, n_outputs, dtype))
        if arr.ndim != 1 or arr.shape[0] != n_samples:
            raise ValueError(f"y must be class labels of shape ({n_samples},) or probabilities "
                             f"of shape ({n_samples}, {n_outputs}); got shape {arr.shape}")
        if arr.dtype.kind == "f":
            if not np.isfinite(arr).all():
                raise ValueError("y contains NaN or infinity")
            if (arr != np.round(arr)).any():
                raise ValueError("class labels in y must be whole numbers; got fractional values")
        labels = arr.astype(np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= n_outputs):
            raise ValueError(f"class labels must lie in [0, {n_outputs}) for a network with "
                             f"{n_outputs} outputs; got labels from {labels.min()} to "
                             f"{labels.max()}")
        return labels


def _check_probabilities(y):
    if ((y < 0) | (y > 1)).any():
        raise ValueError("probability targets must lie in [0, 1]")
    return y


_LOSSES = {"mse": MSELoss, "bce": BCELoss, "cross_entropy": CrossEntropyLoss,
           "crossentropy": CrossEntropyLoss}


def get_loss(loss):
    """A Loss instance from an instance, a class or a name ("mse", "bce", "cross_entropy")."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, type) and issubclass(loss, Loss):
        return loss()
    if isinstance(loss, str) and loss.lower() in _LOSSES:
        return _LOSSES[loss.lower()]()
    raise ValueError(f"unknown loss {loss!r}; expected a Loss or one of {sorted(_LOSSES)}")
