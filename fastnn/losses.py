"""Losses: MSELoss, BCELoss and CrossEntropyLoss, with PyTorch's definitions.

Why it is built this way: a loss object only knows its reduction and how to
check a target; the arithmetic is a backend kernel returning the value and the
gradient together (one pass, as the compiled kernels do it).  Targets are
validated and converted once per ``fit``, in ``prepare_target``, not per batch.
A loss computes through the ops object it is handed; only the user-facing
``loss(pred, target)`` looks up the default backend, inside the call.  A
subclass may override ``compute``: its code then runs on every backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from ._validation import REDUCTIONS, as_float_array, as_numeric

__all__ = ["Loss", "MSELoss", "BCELoss", "CrossEntropyLoss", "get_loss"]


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

    def __init__(self, reduction: str = "mean") -> None:
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reduction={self.reduction!r})"

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
        arr = as_float_array(y, dtype, name)
        if arr.ndim == 1 and n_outputs == 1:
            arr = arr.reshape(-1, 1)
        if arr.shape != (n_samples, n_outputs):
            raise ValueError(f"{name} has shape {arr.shape} but the network outputs "
                             f"({n_samples}, {n_outputs}) for these samples")
        return arr

    def compute(self, ops: Any, pred: NDArray[Any], target: NDArray[Any], *,
                need_grad: bool = True) -> tuple[float, NDArray[Any] | None]:
        """The loss and its gradient via the backend kernel.

        Parameters
        ----------
        ops : NumpyOps
            The backend's kernels.
        pred : ndarray, shape (n, d)
        target : ndarray, as returned by ``prepare_target``
        need_grad : bool, default True

        Returns
        -------
        loss : float
        grad : ndarray, shape (n, d), or None without ``need_grad``
            d loss / d pred.
        """
        result: tuple[float, NDArray[Any] | None] = getattr(ops, self.kernel)(
            pred, target, self.reduction, need_grad=need_grad)
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
    """

    kernel = "mse"


class BCELoss(Loss):
    """Binary cross-entropy on probabilities (after a Sigmoid), logs clamped at -100."""

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


class CrossEntropyLoss(Loss):
    """Cross-entropy on **logits** (no Softmax before it), fused with softmax.

    Targets are integer class labels of shape (n,) in [0, C), or class
    probabilities of shape (n, C).  ``mean`` averages over samples.
    """

    kernel = "cross_entropy"
    classification = True

    def prepare_target(self, y: ArrayLike, n_samples: int, n_outputs: int,
                       dtype: DTypeLike, name: str = "y") -> NDArray[Any]:
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


def _check_probabilities(y: NDArray[Any], name: str) -> NDArray[Any]:
    if ((y < 0) | (y > 1)).any():
        raise ValueError(f"probability targets must lie in [0, 1]; {name} has values from "
                         f"{y.min():g} to {y.max():g}")
    return y


_LOSSES: dict[str, type[Loss]] = {"mse": MSELoss, "bce": BCELoss, "cross_entropy": CrossEntropyLoss,
           "crossentropy": CrossEntropyLoss}


def get_loss(loss: Loss | type[Loss] | str) -> Loss:
    """A Loss instance from an instance, a class or a name.

    Parameters
    ----------
    loss : Loss, Loss subclass or str
        A name is one of "mse", "bce", "cross_entropy" (or "crossentropy").

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
