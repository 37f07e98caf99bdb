"""Perceptron: the single neuron of the tutorials' AND-gate lesson, trained with the classic perceptron rule.

Why it is built this way: it is the tutorials' first exercise (AND/OR gates),
kept as its own small class rather than a Network because its step activation
has no gradient.  The rule w += lr * (y - y_hat) * x is exactly an SGD step
with gradient -(y - y_hat) * x, so it reuses the backend's SGD kernel.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from ._validation import as_float_array, as_samples, check_dtype, check_float, check_int
from .backends import get_backend

__all__ = ["Perceptron"]


class Perceptron:
    """A single neuron with a step activation: y = 1 if x . w + b > 0 else 0.

    Parameters
    ----------
    n_inputs : int
    seed : int or None
        Seeds the initial weights and bias (standard normal, as in the tutorial's ``Perceptron``).
    backend : str or None
        As for Network.
    dtype : {"float64", "float32"}
        As for Network.

    Attributes
    ----------
    weights : ndarray, shape (n_inputs,)
    bias : ndarray, shape (1,)
    """

    def __init__(self, n_inputs: int, *, seed: int | None = None, backend: str | None = None,
                 dtype: DTypeLike = "float64") -> None:
        self.n_inputs = check_int(n_inputs, "n_inputs", minimum=1)
        seed = check_int(seed, "seed", minimum=0, allow_none=True)
        self.dtype = check_dtype(dtype)
        self.ops = get_backend(backend)
        rng = np.random.default_rng(seed)
        self.weights = rng.standard_normal(self.n_inputs).astype(self.dtype)
        self.bias = rng.standard_normal(1).astype(self.dtype)

    def forward(self, X: ArrayLike) -> NDArray[np.int64] | int:
        """0/1 predictions of the step neuron.

        Parameters
        ----------
        X : array-like, shape (n, n_inputs), or one sample (n_inputs,)

        Returns
        -------
        ndarray of int64, shape (n,), or an int for one sample
        """
        single = np.ndim(X) == 1
        Xa = as_samples(np.atleast_2d(X), self.dtype, self.n_inputs)
        z = self.ops.gemm(Xa, self.weights.reshape(-1, 1))[:, 0] + self.bias[0]
        out = (z > 0).astype(np.int64)
        return int(out[0]) if single else out

    def predict(self, X: ArrayLike) -> NDArray[np.int64] | int:
        """Same as ``forward``: 0/1 predictions, shape (n,) (an int for one sample)."""
        return self.forward(X)

    def fit(self, X: ArrayLike, y: ArrayLike, *, epochs: int = 100,
            lr: float = 1.0) -> list[int]:
        """Perceptron rule, one sample at a time, until an epoch makes no mistake.

        Parameters
        ----------
        X : array-like, shape (n, n_inputs)
        y : array-like of 0/1, shape (n,)
        epochs : int, default 100
            At most this many passes.
        lr : float, default 1.0

        Returns
        -------
        list of int
            The number of mistakes in each epoch run (the last is 0 when it
            converged).
        """
        Xa = as_samples(X, self.dtype, self.n_inputs)
        ya = as_float_array(y, self.dtype, "y", ndim=1)
        if ya.shape[0] != Xa.shape[0]:
            raise ValueError(f"X has {Xa.shape[0]} samples but y has shape {ya.shape}")
        if not np.isin(ya, (0, 1)).all():
            raise ValueError("Perceptron targets must be 0 or 1")
        epochs = check_int(epochs, "epochs", minimum=0)
        lr = check_float(lr, "lr", minimum=0.0)
        mistakes: list[int] = []
        for _ in range(epochs):
            wrong = 0
            for x, target in zip(Xa, ya):
                error = target - self.forward(x)
                if error:
                    wrong += 1
                    self.ops.sgd_update(self.weights, -error * x, None, lr)
                    self.ops.sgd_update(self.bias, np.array([-error], self.dtype), None, lr)
            mistakes.append(wrong)
            if wrong == 0:
                break
        return mistakes
