"""Network: a stack of layers with forward/backward, fit/predict/evaluate, save/load.

Why it is built this way: the network owns the execution *plan* -- its layers
in order, with each activation that directly follows a Dense layer fused into
that layer's kernel call -- and the data checks at the API boundary.  Data is
converted once per call (never per batch); the batch order comes from a seeded
``numpy.random.Generator`` here in Python, so every backend visits the samples
in the same order and gives the same weights.
"""

from __future__ import annotations

import errno
import json
import math
import numbers
import os
import secrets
import signal
import stat
import sys
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any, Callable, Generator, Iterable, Iterator

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from ._archive import NetworkArchive
from ._validation import (as_float_array, as_samples, check_bool, check_dtype, check_float,
                          check_int)
from .backends import get_backend
from .backends.numpy_ops import NumpyOps, ieee_scope
from .layers import (LAYER_TYPES, Activation, Dense, Dropout, Identity, Layer, LeakyReLU, ReLU,
                     Sigmoid, SiLU, Softmax, Tanh)
from .losses import BCELoss, CrossEntropyLoss, Loss, get_loss
from .optimizers import Optimizer, get_optimizer

if TYPE_CHECKING:  # optional dependencies, imported lazily at run time
    from matplotlib.axes import Axes

__all__ = ["Network", "History"]

#: Version of the ``save`` file format; ``load`` rejects any other.
FORMAT_VERSION = 1


class History:
    """Per-epoch records of ``fit``: ``history.loss``, ``history["val_loss"]``, ...

    Attributes
    ----------
    history : dict of str -> list of float
        ``loss`` (the mean of the batch losses, weighted by batch size, or their
        sum for ``reduction="sum"``) always; ``val_loss``, and ``val_accuracy``
        for classification losses (as ``Network.evaluate``'s accuracy: per
        label for BCE, argmax for cross-entropy), when validation data is
        given.  One entry per epoch actually run.
    epochs : list of int
        The indices (from 0) of the epochs run.
    stopped_epoch : int or None
        With ``early_stopping``: the index of the epoch after which training
        stopped early; None when all ``epochs`` ran.
    best_epoch : int or None
        With ``early_stopping``: the index of the epoch with the best monitored
        value (the weights restored with ``restore_best_weights``); else None.
    interrupted : bool
        True when Ctrl-C (SIGINT) stopped ``fit`` early: the records cover
        the epochs completed before it, the weights are those after the last
        completed batch.

    Examples
    --------
    >>> import fastnn
    >>> X, y = fastnn.datasets.xor()
    >>> net = fastnn.Network([fastnn.Dense(2, 4), fastnn.Tanh(), fastnn.Dense(4, 1)], seed=0)
    >>> history = net.fit(X, y, loss="mse", optimizer=fastnn.SGD(lr=0.1), epochs=3)
    >>> history
    History(epochs=3, keys=['loss'])
    >>> len(history.loss), history.epochs
    (3, [0, 1, 2])
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epochs: list[int] = []
        self.stopped_epoch: int | None = None
        self.best_epoch: int | None = None
        self.interrupted = False

    def _extend(self, values: dict[str, list[float]]) -> None:
        """Append the next epochs' records: ``values`` maps each key to a list."""
        count = len(next(iter(values.values())))
        self.epochs.extend(range(len(self.epochs), len(self.epochs) + count))
        for key, value in values.items():
            self.history.setdefault(key, []).extend(value)

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]

    def __getattr__(self, key: str) -> list[float]:
        # Only called for names that are not attributes.  ``history`` is read
        # from __dict__ with .get: pickle and copy make an instance without
        # running __init__ and look up names such as __setstate__ on it, which
        # must raise AttributeError (a KeyError there broke pickling, and hung
        # a multiprocessing.Pool whose worker returned a History).
        records = self.__dict__.get("history")
        if records is None or key.startswith("__"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {key!r}")
        try:
            return records[key]
        except KeyError:
            raise AttributeError(f"History has no record {key!r}; it has "
                                 f"{sorted(records)}") from None

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epochs)}, keys={sorted(self.history)})"

    def plot(self, path: str | os.PathLike[str] | None = None, ax: Axes | None = None) -> Axes:
        """Draw the loss curves (``loss``, and ``val_loss`` when recorded) per epoch.

        Needs matplotlib (an optional dependency: ``pip install "fastnn[plot]"``),
        imported only here.

        Parameters
        ----------
        path : str or os.PathLike, optional
            Save the figure there as well (the format follows the file name's
            extension, e.g. ``.png``).
        ax : matplotlib.axes.Axes, optional
            Draw into these axes; by default a new figure is made.

        Returns
        -------
        matplotlib.axes.Axes
            The axes drawn into.
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise ImportError("History.plot needs matplotlib, which is not installed; install "
                              'it with `pip install "fastnn[plot]"` (or `pip install '
                              'matplotlib`)') from exc
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        epochs = [e + 1 for e in self.epochs]
        for key in ("loss", "val_loss"):
            if key in self.history:
                ax.plot(epochs, self.history[key], label=key)
        if self.best_epoch is not None:
            ax.axvline(self.best_epoch + 1, color="grey", linestyle=":", label="best epoch")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        if self.history:
            ax.legend()
        if path is not None:
            ax.figure.savefig(os.fspath(path))  # type: ignore[union-attr]
        return ax


class Network:
    """A feed-forward stack of layers.

    Parameters
    ----------
    layers : list of Layer
        E.g. ``[Dense(2, 4), Sigmoid(), Dense(4, 1), Sigmoid()]``.  Consecutive
        Dense sizes must agree.  Each layer object belongs to one network: a
        layer already in another Network is refused (ValueError).  Weights
        assigned to a Dense layer before are kept, in ``dtype``.
    backend : str or None
        ``"numpy"`` (reference) or ``"cython"`` (compiled); None uses the
        default (``fastnn.set_backend``, ``FASTNN_BACKEND``, else compiled).
    dtype : {"float64", "float32"}
        Dtype of weights, activations and gradients.
    seed : int or None
        Seeds the initial weights, dropout masks and the default shuffling, so
        the same seed gives the same network on every backend.

    Attributes
    ----------
    layers : list of Layer
    n_inputs, n_outputs : int
        Width of the input ``X`` (n, n_inputs) and of the output (n, n_outputs).
    dtype : numpy.dtype
    ops : NumpyOps
        The backend's kernels (``backend`` is its name).

    Examples
    --------
    The XOR network of the tutorials:

    >>> import fastnn
    >>> from fastnn import Dense, Network, Sigmoid
    >>> net = Network([Dense(2, 4), Sigmoid(), Dense(4, 1), Sigmoid()], seed=0)
    >>> net.n_inputs, net.n_outputs, net.dtype.name
    (2, 1, 'float64')
    >>> X, y = fastnn.datasets.xor()
    >>> net.predict(X).shape
    (4, 1)
    """

    def __init__(self, layers: Iterable[Layer], *, backend: str | NumpyOps | None = None,
                 dtype: DTypeLike = "float64", seed: int | None = None) -> None:
        if isinstance(layers, Layer) or not isinstance(layers, Iterable):
            raise TypeError(f"layers must be a list of fastnn Layers, got {layers!r}")
        layers = list(layers)
        seed = check_int(seed, "seed", minimum=0, allow_none=True)
        if not layers:
            raise ValueError("a Network needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layer {i} is {layer!r}, not a fastnn Layer")
        if not any(isinstance(layer, Dense) for layer in layers):
            raise ValueError("a Network needs at least one Dense layer")
        if len({id(layer) for layer in layers}) != len(layers):
            raise ValueError("the same layer object appears twice in the network")
        for i, layer in enumerate(layers):
            if layer._in_network:
                raise ValueError(
                    f"layer {i} ({layer!r}) already belongs to another Network; building it "
                    "again would change that network's weights (and dtype), so each network "
                    "needs its own layer objects: make new ones (e.g. Dense(...) again), or "
                    "copy.deepcopy the whole Network")
        self.layers = layers
        self.dtype = check_dtype(dtype)
        self.ops = get_backend(backend)
        self.seed = seed
        rng = np.random.default_rng(seed)
        self.n_inputs = next(layer for layer in layers if isinstance(layer, Dense)).n_in
        width = self.n_inputs
        for i, layer in enumerate(layers):
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            try:
                width = layer.build(width, self.ops, self.dtype, rng, nxt)
            except ValueError as exc:
                raise ValueError(f"layer {i}: {exc}") from None
        self.n_outputs = width
        self._shuffle_rng = np.random.default_rng(rng.integers(0, 2**63))
        self._plan = self._make_plan()
        self._last_output_shape: tuple[int, ...] | None = None
        self._fit_lock = threading.Lock()   # held while fit runs: one fit at a time
        for layer in layers:                # built: from now on this network's alone
            layer._in_network = True

    def __getstate__(self) -> dict[str, Any]:
        # a lock does not pickle; a copy or an unpickled network gets its own
        state = self.__dict__.copy()
        del state["_fit_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._fit_lock = threading.Lock()

    @property
    def backend(self) -> str:
        """Name of the backend this network runs on."""
        return self.ops.name

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Network([{inner}], backend={self.backend!r}, dtype={self.dtype.name!r})"

    def _make_plan(self) -> list[tuple[Layer, Activation | None]]:
        """(layer, fused activation or None) pairs; a fused activation is not run apart."""
        plan: list[tuple[Layer, Activation | None]] = []
        i = 0
        while i < len(self.layers):
            layer = self.layers[i]
            nxt = self.layers[i + 1] if i + 1 < len(self.layers) else None
            if isinstance(layer, Dense) and isinstance(nxt, Activation):
                plan.append((layer, nxt))
                i += 2
            else:
                plan.append((layer, None))
                i += 1
        return plan

    def parameters(self) -> Iterator[tuple[str, NDArray[Any], NDArray[Any] | None]]:
        """Yield (key, param, grad) for every trainable array, e.g. ("0.W", W, dW).

        Yields
        ------
        key : str
            ``"<layer index>.<name>"``, e.g. ``"0.W"``, ``"0.b"``.
        param : ndarray
            The parameter itself (e.g. a Dense ``W``, shape (n_in, n_out)).
        grad : ndarray or None
            Its gradient from the last ``backward`` (same shape), None before one.
        """
        for i, layer in enumerate(self.layers):
            grads = layer.grads()
            for name, param in layer.params().items():
                yield f"{i}.{name}", param, grads[name]

    # ------------------------------------------------------------ passes
    def _forward(self, X: NDArray[Any], training: bool, keep: bool = True,
                 interrupt: _StopOnInterrupt | None = None) -> NDArray[Any]:
        """The layers on X; ``keep=False`` (inference) leaves every layer's state alone.

        With ``interrupt`` (fit's), raises ``_BatchInterrupted`` before a layer
        once Ctrl-C has been asked for.
        """
        for layer, activation in self._plan:
            if interrupt is not None and interrupt.requested:
                raise _BatchInterrupted
            if activation is None:
                X = layer.forward(X, training=training, keep=keep)
            else:
                X = layer.forward(X, training=training, keep=keep,  # type: ignore[call-arg]
                                  activation=activation)
        return X

    def forward(self, X: ArrayLike, *, training: bool = False) -> NDArray[Any]:
        """Run the layers on X, keeping what ``backward`` needs.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_inputs)
        training : bool, default False
            Dropout is active only when True.

        Returns
        -------
        ndarray, shape (n_samples, n_outputs)
        """
        out = self._forward(as_samples(X, self.dtype, self.n_inputs), training)
        self._last_output_shape = out.shape
        return out

    def backward(self, grad: ArrayLike) -> NDArray[Any]:
        """Back-propagate d loss / d output; sets every layer's gradients.

        Parameters
        ----------
        grad : array-like, shape (n_samples, n_outputs)
            d loss / d output of the last ``forward``.

        Returns
        -------
        ndarray, shape (n_samples, n_inputs)
            d loss / d input.
        """
        if self._last_output_shape is None:
            raise RuntimeError("Network.backward called before forward")
        out = as_float_array(grad, self.dtype, "grad")
        if out.shape != self._last_output_shape:
            raise ValueError(f"grad has shape {out.shape} but the last forward output has "
                             f"shape {self._last_output_shape}")
        for layer, _ in reversed(self._plan):
            out = layer.backward(out)
        return out

    def _backward_no_input_grad(self, grad: NDArray[Any],
                                interrupt: _StopOnInterrupt | None = None) -> None:
        """backward without d loss / d input; ``interrupt`` as in ``_forward``."""
        for k, (layer, _) in enumerate(reversed(self._plan)):
            if interrupt is not None and interrupt.requested:
                raise _BatchInterrupted
            if k == len(self._plan) - 1 and isinstance(layer, Dense):
                layer.backward(grad, need_dX=False)
            else:
                grad = layer.backward(grad)

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """Network output, dropout off.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_inputs)

        Returns
        -------
        ndarray, shape (n_samples, n_outputs)
        """
        return self._forward(as_samples(X, self.dtype, self.n_inputs), training=False,
                             keep=False)

    def __call__(self, X: ArrayLike) -> NDArray[Any]:
        """Same as ``predict(X)``."""
        return self.predict(X)

    # --------------------------------------------------------- training
    def fit(self, X: ArrayLike, y: ArrayLike, *, loss: Loss | type[Loss] | str,
            optimizer: Optimizer | type[Optimizer] | str, epochs: int = 1,
            batch_size: int | None = None, shuffle: bool = True, seed: int | None = None,
            verbose: int = 0,
            validation_data: tuple[ArrayLike, ArrayLike] | None = None,
            early_stopping: bool = False, patience: int = 10, min_delta: float = 0.0,
            restore_best_weights: bool = True) -> History:
        """Train on (X, y) with mini-batch gradient descent.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_inputs)
        y : array-like, shape (n_samples, n_outputs), (n_samples,) for one output,
            or class labels (n_samples,) for CrossEntropyLoss
        loss : Loss, Loss subclass or str
            E.g. ``MSELoss()`` or ``"mse"``, ``"bce"``, ``"cross_entropy"``.
        optimizer : Optimizer, Optimizer subclass or str
            E.g. ``SGD(lr=0.1)``, ``"adam"``.  Its state carries over to the
            next ``fit`` with the same optimizer object.
        epochs : int, default 1
            Number of passes over the data (fewer with ``early_stopping``).
        batch_size : int or None
            None trains on the whole set at once; the last partial batch is used.
        shuffle : bool, default True
            Visit the samples in a new random order each epoch.
        seed : int or None
            Seeds the shuffling; None continues the network's own generator.
        verbose : int, default 0
            0 prints nothing.  1 shows a progress bar over the epochs with the
            loss and the time left (with tqdm when it is installed, on stderr;
            else one line per epoch on stdout).  2 prints one line per epoch on
            stdout (epoch, losses, time left) even when tqdm is installed.
        validation_data : (X_val, y_val) or None
            Evaluated after each epoch into ``val_loss`` (and ``val_accuracy``).
        early_stopping : bool, default False
            Stop when the monitored value -- ``val_loss`` when
            ``validation_data`` is given, else the training ``loss`` -- has not
            improved by more than ``min_delta`` for ``patience`` epochs in a row.
        patience : int, default 10
            Epochs without improvement after which training stops (>= 1).
        min_delta : float, default 0.0
            An epoch improves on the best value so far only if it is lower by
            more than ``min_delta``.
        restore_best_weights : bool, default True
            With ``early_stopping``: at the end of ``fit`` (stopped early or
            not), copy the parameters of the best epoch back into the layers'
            arrays in place (a Dense ``W`` stays the same array object).  The
            optimizer state (momentum, Adam's moments) is not rolled back.

        Returns
        -------
        History
            One record per epoch run; ``stopped_epoch`` and ``best_epoch`` are
            set with ``early_stopping``; ``interrupted`` after Ctrl-C.

        Raises
        ------
        RuntimeError
            When ``fit`` is already running on this network in another thread.
        FloatingPointError
            If training diverges: a batch's loss is NaN or infinite, or its update
            would make a weight or an optimizer state value (momentum, Adam's
            moments) NaN or infinite, as a non-finite gradient or a far too
            large learning rate does.  The message names the epoch; that update
            is not applied, so weights and optimizer state are exactly those
            the previous batch left.

        Notes
        -----
        With ``verbose``, ``validation_data`` or ``early_stopping``, the compiled
        backend runs one epoch per native call (Python decides between epochs);
        the numbers are the same as without them.

        Ctrl-C (SIGINT) during ``fit`` in the main thread stops training at
        once, also in the middle of a long batch, and ``fit`` returns the
        History of the completed epochs with ``interrupted=True``, warning
        once.  The batch being computed is dropped whole: the weights, the
        optimizer state and the dropout step counts are those after the last
        completed batch -- never a half-applied update (only the layers'
        gradient arrays, ``dW`` and ``db``, may hold partial values of the
        dropped batch).  The reference backend notices the signal between
        layers (one NumPy call, e.g. a large product, runs to its end first);
        the compiled one, whose C code runs with the GIL released, installs
        its own C handler for each call and notices it between layers and
        inside its matrix products, within milliseconds.  The best weights
        of ``early_stopping`` are not restored after an interrupt; a Ctrl-C
        while they are being copied back at the end of ``fit`` is held until
        the copy is complete (all of them are the best epoch's), then raises
        KeyboardInterrupt.  A second Ctrl-C -- before ``fit`` has returned,
        even while the compiled code still runs, or at any later time --
        raises KeyboardInterrupt at once; two are never merged into one
        (except, on the reference backend, two within a single NumPy call).
        Under a custom SIGINT handler, or in another thread, signals are
        left alone.

        The compiled backend releases the GIL while it computes, so separate
        networks train in separate threads at the same time, with the same
        numbers as one after the other; ``predict`` may be called from several
        threads at once, also while the network trains (it stores nothing in
        the layers).  One network runs one ``fit`` at a time.

        Examples
        --------
        >>> import fastnn
        >>> from fastnn import SGD, Dense, Network, Sigmoid
        >>> X, y = fastnn.datasets.xor()
        >>> net = Network([Dense(2, 4), Sigmoid(), Dense(4, 1), Sigmoid()], seed=0)
        >>> history = net.fit(X, y, loss="mse", optimizer=SGD(lr=2.0), epochs=3000)
        >>> bool(history.loss[-1] < 0.01)
        True
        >>> net.predict(X).round(1).ravel().tolist()
        [0.0, 1.0, 1.0, 0.0]

        Early stopping on the training loss, keeping the best weights:

        >>> history = net.fit(X, y, loss="mse", optimizer=SGD(lr=2.0), epochs=100000,
        ...                   early_stopping=True, patience=5, min_delta=1e-3)
        >>> history.stopped_epoch is not None and len(history.epochs) < 100000
        True
        """
        loss = get_loss(loss)
        optimizer = get_optimizer(optimizer)
        epochs = check_int(epochs, "epochs", minimum=0)
        batch_size = check_int(batch_size, "batch_size", minimum=1, allow_none=True)
        verbose = check_int(int(verbose) if isinstance(verbose, (bool, np.bool_)) else verbose,
                            "verbose", minimum=0)
        shuffle = check_bool(shuffle, "shuffle")
        early_stopping = bool(early_stopping)
        patience = check_int(patience, "patience", minimum=1)
        min_delta = check_float(min_delta, "min_delta", minimum=0.0)
        seed = check_int(seed, "seed", minimum=0, allow_none=True)
        X, T = self._check_data(X, y, loss)
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                got = type(validation_data).__name__
                if isinstance(validation_data, (tuple, list)):
                    got += f" of length {len(validation_data)}"
                raise TypeError("validation_data must be a pair (X_val, y_val), a tuple or a "
                                f"list of two arrays; got {got}")
            X_val_in, y_val_in = validation_data
            X_val, T_val = self._check_data(X_val_in, y_val_in, loss, "X_val", "y_val")
        rng = np.random.default_rng(seed) if seed is not None else self._shuffle_rng
        n = X.shape[0]
        batch = n if batch_size is None else min(batch_size, n)

        def next_orders(count: int) -> NDArray[np.int64] | None:
            """Sample orders of the next ``count`` epochs: (count, n), or None when in order."""
            return np.stack([rng.permutation(n) for _ in range(count)]) if shuffle else None

        native = getattr(self.ops, "make_trainer", None) is not None
        per_epoch = bool(verbose) or validation_data is not None or early_stopping
        run = self._epochs_native if native else self._epochs_python
        history = History()
        monitor = "val_loss" if validation_data is not None else "loss"
        best = np.inf
        best_params: list[NDArray[Any]] | None = None
        wait = 0
        if not self._fit_lock.acquire(blocking=False):
            raise RuntimeError("fit is already running on this network (in another thread); "
                               "one network trains in one thread at a time -- wait for that "
                               "fit to return, or train a separate network")
        try:
            with _StopOnInterrupt() as interrupt:
                progress = _Progress(epochs, verbose) if verbose else None
                chunks = run(X, T, loss, optimizer, batch, next_orders, epochs, per_epoch,
                             interrupt)
                try:
                    for totals in chunks:
                        losses = totals / n if loss.reduction == "mean" else totals
                        if not per_epoch:           # a whole chunk of epochs at once
                            history._extend({"loss": losses.tolist()})
                            continue
                        record = {"loss": float(losses[0])}
                        if validation_data is not None:
                            scores = self._score(X_val, T_val, loss)
                            record.update({"val_" + k: v for k, v in scores.items()})
                        history._extend({k: [v] for k, v in record.items()})
                        if progress is not None:
                            progress.update(record)
                        if early_stopping:
                            epoch = history.epochs[-1]
                            if record[monitor] < best - min_delta:
                                best, wait = record[monitor], 0
                                history.best_epoch = epoch
                                if restore_best_weights:
                                    best_params = [p.copy() for _, p, _ in self.parameters()]
                            else:
                                wait += 1
                                if wait >= patience:
                                    history.stopped_epoch = epoch
                                    break
                finally:
                    chunks.close()                  # the native trainer is closed here
                    if progress is not None:
                        progress.close(history)
                history.interrupted = interrupt.requested
        finally:
            self._fit_lock.release()
        if history.interrupted:
            warnings.warn(f"fit interrupted (Ctrl-C) after {len(history.epochs)} of {epochs} "
                          "epochs; the network keeps the weights of the last completed batch",
                          UserWarning, stacklevel=2)
        elif best_params is not None and history.best_epoch != history.epochs[-1]:
            with _DeferInterrupt():                 # all of the best epoch's, or none
                for (_, param, _), saved in zip(self.parameters(), best_params):
                    param[...] = saved              # in place: arrays keep their identity
        return history

    def _epochs_python(self, X: NDArray[Any], T: NDArray[Any], loss: Loss,
                       optimizer: Optimizer, batch: int,
                       next_orders: Callable[[int], NDArray[np.int64] | None], epochs: int,
                       per_epoch: bool, interrupt: _StopOnInterrupt
                       ) -> Generator[NDArray[np.float64], None, None]:
        """The reference loop, one epoch at a time.

        Yields, per epoch, a 1-element array of the summed batch losses (each
        times its batch size for ``reduction="mean"``).  Once
        ``interrupt.requested`` -- looked at before each batch, between the
        layers of its forward and backward passes, and before its update --
        it drops the unfinished batch (giving back the dropout steps it drew)
        and returns: the weights and optimizer state stay those of the last
        completed batch, and an unfinished epoch yields nothing.
        """
        n = X.shape[0]
        mean = loss.reduction == "mean"
        dropouts = [layer for layer in self.layers if isinstance(layer, Dropout)]
        step = optimizer.checked_step(self)    # creates the state, as the native loop does
        for epoch in range(epochs):
            orders = next_orders(1)
            order = None if orders is None else orders[0]
            total = 0.0
            with ieee_scope():                      # the kernels' error state, set once
                for start in range(0, n, batch):
                    if interrupt.requested:
                        return
                    idx: Any = (slice(start, start + batch) if order is None
                                else order[start:start + batch])
                    drawn = [layer.step for layer in dropouts]
                    try:
                        out = self._forward(X[idx], training=True, interrupt=interrupt)
                        value, grad = loss.compute(self.ops, out, T[idx])
                        if not math.isfinite(value):
                            raise _diverged(epoch)
                        self._backward_no_input_grad(grad, interrupt)  # type: ignore[arg-type]
                        if interrupt.requested:     # the last moment to drop the batch
                            raise _BatchInterrupted
                    except (_BatchInterrupted, KeyboardInterrupt) as exc:
                        for layer, count in zip(dropouts, drawn):   # the batch drew nothing
                            layer.step = count
                        if isinstance(exc, KeyboardInterrupt):      # a second Ctrl-C
                            raise
                        return
                    if not step():                  # refused: weights and state unchanged
                        raise _diverged(epoch)
                    total += value * out.shape[0] if mean else value
            yield np.array([total])

    def _epochs_native(self, X: NDArray[Any], T: NDArray[Any], loss: Loss,
                       optimizer: Optimizer, batch: int,
                       next_orders: Callable[[int], NDArray[np.int64] | None], epochs: int,
                       per_epoch: bool, interrupt: _StopOnInterrupt,
                       seconds_per_call: float = 0.25
                       ) -> Generator[NDArray[np.float64], None, None]:
        """The same loop run by the backend's native trainer, many batches per call.

        Each call does about ``seconds_per_call`` of work (whole epochs when
        they are short; the first call runs one batch to measure), so Python
        -- progress, validation -- is re-entered between calls, never inside
        a batch.  During a call (GIL released) SIGINT is caught by the
        trainer's own C handler when ``interrupt`` is catching: the first
        stops the call at once, dropping the unfinished batch, and trips
        ``interrupt``; a second raises KeyboardInterrupt.  Yields the epochs'
        loss sums as ``_epochs_python`` does, a chunk of epochs at a time; once
        ``interrupt.requested`` it yields the chunk's completed epochs and
        returns.
        """
        n = X.shape[0]
        per_epoch_batches = -(-n // batch)
        for layer, _ in self._plan:          # gradient buffers the trainer writes
            if isinstance(layer, Dense):
                params = layer.params()
                if layer.dW is None:
                    layer.dW = self.ops.zeros_like(params["W"])
                if "b" in params and layer.db is None:
                    layer.db = self.ops.zeros_like(params["b"])
        spec, states = optimizer.native_spec(self)
        stages = [self._stage(layer, activation, states) for layer, activation in self._plan]
        trainer = self.ops.make_trainer(  # type: ignore[attr-defined]
            stages, loss.kernel, loss.reduction, spec, X, T, batch)
        max_batches = 1
        try:
            done = 0
            while done < epochs:
                chunk = 1 if per_epoch else min(epochs - done,
                                                max(1, max_batches // per_epoch_batches))
                orders = next_orders(chunk)
                losses = np.zeros(chunk)
                epoch = start = 0
                while epoch < chunk:
                    if interrupt.requested:
                        if epoch:
                            yield losses[:epoch]
                        return
                    began = time.perf_counter()
                    before = epoch * per_epoch_batches + start // batch
                    catch = interrupt.catching
                    try:
                        epoch, start = trainer.run(orders, epoch, start, max_batches, losses,
                                                   catch)
                    except FloatingPointError as exc:
                        raise _diverged(done + exc.args[1]) from None
                    if catch and trainer.interrupted:
                        interrupt.trip()
                    ran = epoch * per_epoch_batches + start // batch - before
                    elapsed = time.perf_counter() - began
                    if ran and elapsed > 0:
                        max_batches = max(1, int(ran * seconds_per_call / elapsed))
                done += chunk
                yield losses
        finally:
            final = trainer.close()
            for stage, step in zip(self._plan, final["dropout_steps"]):
                if step is not None:
                    stage[0].step = step  # type: ignore[attr-defined]
            optimizer.native_done(final["step"])

    def _stage(self, layer: Layer, activation: Activation | None,
               states: dict[str, list[Any]]) -> dict[str, Any]:
        """Plain description of one plan entry for the native trainer."""
        if isinstance(layer, Dense):
            key = self.layers.index(layer)      # parameter keys are "<layer index>.W"
            return {"kind": "dense", "W": layer.W, "b": layer.b, "dW": layer.dW,
                    "db": layer.db if layer.bias else None,
                    "activation": activation.kind if activation else "identity",
                    "alpha": activation.alpha if activation else 0.0,
                    "state_W": states[f"{key}.W"],
                    "state_b": states.get(f"{key}.b", [None, None])}
        if isinstance(layer, Activation):
            return {"kind": "activation", "activation": layer.kind, "alpha": layer.alpha}
        if isinstance(layer, Dropout):
            return {"kind": "dropout", "p": layer.p, "seed": layer.seed, "step": layer.step}
        raise TypeError(f"the native trainer cannot run {layer!r}")

    def evaluate(self, X: ArrayLike, y: ArrayLike, *,
                 loss: Loss | type[Loss] | str) -> dict[str, float]:
        """Loss (and accuracy for BCE / cross-entropy) on (X, y), dropout off.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_inputs)
        y : array-like, shape (n_samples, n_outputs), (n_samples,) for one output,
            or class labels (n_samples,) for CrossEntropyLoss
        loss : Loss, Loss subclass or str

        Returns
        -------
        dict
            ``{"loss": float}``, plus ``"accuracy"`` for classification losses:
            for CrossEntropyLoss the fraction of samples whose largest output
            is the target class (the label, or the largest target
            probability); for BCELoss the fraction of all outputs (every
            label of every sample) on the same side of 0.5 as their target,
            as Keras's binary accuracy.

        Examples
        --------
        Two labels per sample, three of the four predicted right:

        >>> import fastnn
        >>> from fastnn import Dense, Network, Sigmoid
        >>> net = Network([Dense(2, 2), Sigmoid()], seed=0)
        >>> net.layers[0].W = [[8.0, 0.0], [0.0, -8.0]]
        >>> net.layers[0].b = [0.0, 0.0]
        >>> net.evaluate([[1.0, 1.0], [-1.0, -1.0]], [[1, 0], [0, 0]], loss="bce")["accuracy"]
        0.75
        """
        loss = get_loss(loss)
        X, T = self._check_data(X, y, loss)
        return self._score(X, T, loss)

    def _check_data(self, X: ArrayLike, y: ArrayLike, loss: Loss, name: str = "X",
                    y_name: str = "y") -> tuple[NDArray[Any], NDArray[Any]]:
        if isinstance(loss, BCELoss) and not isinstance(self.layers[-1], (Sigmoid, Softmax)):
            raise ValueError("BCELoss takes probabilities: end the network with Sigmoid() "
                             f"(its last layer is {self.layers[-1]!r})")
        Xa = as_samples(X, self.dtype, self.n_inputs, name)
        if np.shape(y)[:1] != (Xa.shape[0],):
            raise ValueError(f"{name} has {Xa.shape[0]} samples but {y_name} has shape "
                             f"{np.shape(y)}")
        return Xa, loss.prepare_target(y, Xa.shape[0], self.n_outputs, self.dtype, y_name)

    def _score(self, X: NDArray[Any], T: NDArray[Any], loss: Loss) -> dict[str, float]:
        out = self._forward(X, training=False, keep=False)
        scores: dict[str, float] = {"loss": loss.compute(self.ops, out, T, need_grad=False)[0]}
        if loss.classification:
            scores["accuracy"] = _accuracy(out, T, loss)
        return scores

    # ----------------------------------------------------------- storage
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write layers, weights and dtype to ``path`` (.npz), atomically.

        The file is written beside ``path`` and renamed over it, so a failure
        part-way leaves any previous file intact (a process killed mid-save
        may leave a hidden ``.fastnn-*.npz.tmp`` file beside it).  A new file
        gets the permissions ``open(path, "w")`` would give it (0666 less the
        umask); a file replaced keeps its permission bits.  When ``path`` is
        a symbolic link, the file it points to is replaced (written beside
        it, in its directory) and the link is left as it is.

        Parameters
        ----------
        path : str or os.PathLike
            The file to write (NumPy's ``.npz`` format, no pickles).

        Raises
        ------
        ValueError
            If a parameter holds NaN or infinity (the message names it and
            the first bad index): ``load`` refuses such a file, so ``save``
            writes nothing rather than a model that cannot be reopened, and
            any previous file at ``path`` is left as it was.
        """
        path = os.fspath(path)
        config = {"format": "fastnn", "version": FORMAT_VERSION, "dtype": self.dtype.name,
                  "seed": int(self.seed) if isinstance(self.seed, numbers.Integral) else None,
                  "layers": [{"type": type(layer).__name__, "config": layer.config()}
                             for layer in self.layers]}
        arrays: dict[str, NDArray[Any]] = {"config": np.array(json.dumps(config))}
        for key, param, _ in self.parameters():
            try:
                as_float_array(param, self.dtype, f"parameter {key!r}")  # load's check
            except ValueError as exc:
                raise ValueError(f"cannot save to {path!s}: {exc}; load refuses non-finite "
                                 "weights, so nothing was written") from None
            arrays[key] = param
        for i, layer in enumerate(self.layers):
            if hasattr(layer, "seed") and hasattr(layer, "step"):
                arrays[f"{i}.rng"] = np.array([layer.seed, layer.step], dtype=np.uint64)
        target = os.path.realpath(path)         # through symlinks: the link stays
        fd, tmp = _create_beside(target)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)  # type: ignore[arg-type]
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str],
             backend: str | NumpyOps | None = None) -> Network:
        """A Network from a file written by ``save``, bit-exact, with its dtype.

        Safe on untrusted files: only the members the network's description
        needs are read, each checked (zip entry, dtype, shape, order, size)
        against that description before its data is read, and never more than
        that data; a member the description does not need is not read at all.
        Loading costs the memory of the network the file describes (twice its
        weights, briefly), no more.

        Parameters
        ----------
        path : str or os.PathLike
            A file written by ``save``.
        backend : str or None
            Backend of the new network (None: the default).

        Returns
        -------
        Network

        Raises
        ------
        ValueError
            For any problem with the file's content, naming the file and the
            problem: not a zip archive, no or a damaged description (bad JSON,
            nested too deeply, unknown layer types or arguments), a missing
            array, an array of the wrong dtype, shape or order, a member that
            is encrypted, uses a compression other than stored or deflate,
            declares sizes it cannot have, is truncated or fails its CRC, a
            malformed Dropout generator state, NaN or infinite weights (which
            ``save`` refuses to write, so no file it wrote is refused here).
        OSError
            For errors of the file system (no such file, a directory, no
            permission).
        """
        ops = get_backend(backend)               # a bad backend name is not the file's fault
        with open(os.fspath(path), "rb") as f:
            if f.read(4) != b"PK\x03\x04":
                raise ValueError(f"{path!s} is not a fastnn network file (not an .npz archive, "
                                 "which save writes)")
            with NetworkArchive(f, str(path)) as archive:
                config = _load_config(archive)
                try:
                    dtype = _config_dtype(config.get("dtype"))
                    layers = _config_layers(config["layers"])
                except (KeyError, AttributeError, TypeError, ValueError) as exc:
                    raise ValueError(f"{path!s} holds a damaged network description: "
                                     f"{type(exc).__name__}: {exc}") from None
                # every array the description declares is checked and read before the
                # network (and its initial weights of that size) is made
                arrays: dict[str, NDArray[Any]] = {}
                for key, shape in _param_shapes(layers):
                    if not archive.has(key):
                        raise ValueError(f"{path!s} lacks the array {key!r}")
                    arrays[key] = archive.read_array(key, shape, dtype)
                states = {i: _load_rng_state(archive, f"{i}.rng")
                          for i, layer in enumerate(layers)
                          if hasattr(layer, "seed") and hasattr(layer, "step")}
        try:
            net = cls(layers, backend=ops, dtype=dtype, seed=config.get("seed"))
        except (KeyError, AttributeError, TypeError, ValueError) as exc:
            raise ValueError(f"{path!s} holds a damaged network description: "
                             f"{type(exc).__name__}: {exc}") from None
        for key, param, _ in net.parameters():
            if key not in arrays:                    # _param_shapes disagrees with the layers
                raise RuntimeError(f"load expected no parameter {key!r}: _param_shapes does not "
                                   f"know {net.layers[int(key.split('.')[0])]!r}")
            try:
                param[...] = as_float_array(arrays.pop(key), net.dtype, key)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path!s}: {exc}") from None
        for i, (seed, step) in states.items():
            layer = net.layers[i]
            layer.seed, layer.step = seed, step  # type: ignore[attr-defined]
        return net

    # ----------------------------------------------------------- PyTorch
    def to_torch(self) -> Any:
        """An equivalent ``torch.nn.Sequential``, with copies of the weights.

        Each ``Dense`` becomes an ``nn.Linear`` (``weight = W.T``, shape
        (n_out, n_in); ``bias = b``), each activation its PyTorch module
        (``Softmax`` as ``nn.Softmax(dim=1)``, ``LeakyReLU`` with its
        ``negative_slope``) and ``Dropout(p)`` ``nn.Dropout(p)``.  The modules
        have the network's dtype; the result is in evaluation mode (like
        ``predict``: dropout off), so call ``.train()`` before training it.
        Needs PyTorch (``pip install torch``), imported only here.

        Returns
        -------
        torch.nn.Sequential
            Maps a tensor (n_samples, n_inputs) to (n_samples, n_outputs), the
            same numbers as ``predict``.
        """
        torch = _import_torch("Network.to_torch")
        nn = torch.nn
        dtype = torch.float64 if self.dtype == np.float64 else torch.float32
        modules = []
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Dense):
                # skip_init: no random initialisation, so torch's global RNG is untouched
                linear = torch.nn.utils.skip_init(nn.Linear, layer.n_in, layer.n_out,
                                                  bias=layer.bias, dtype=dtype)
                with torch.no_grad():
                    linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(layer.W.T)))
                    if layer.bias:
                        linear.bias.copy_(torch.from_numpy(layer.b.copy()))  # type: ignore[union-attr]
                modules.append(linear)
            elif isinstance(layer, LeakyReLU):
                modules.append(nn.LeakyReLU(layer.negative_slope))
            elif isinstance(layer, Softmax):
                modules.append(nn.Softmax(dim=1))
            elif type(layer) in _TO_TORCH:
                modules.append(getattr(nn, _TO_TORCH[type(layer)])())
            elif isinstance(layer, Dropout):
                modules.append(nn.Dropout(layer.p))
            else:
                raise TypeError(f"layer {i} ({layer!r}) has no PyTorch counterpart")
        return nn.Sequential(*modules).eval()

    @classmethod
    def from_torch(cls, module: Any, *, backend: str | NumpyOps | None = None) -> Network:
        """A Network equivalent to a ``torch.nn.Sequential``, with copies of its weights.

        Reads ``nn.Linear`` (with or without bias; ``W = weight.T``),
        ``nn.Sigmoid``, ``nn.ReLU``, ``nn.Tanh``, ``nn.SiLU``, ``nn.LeakyReLU``,
        ``nn.Softmax`` (over dim 1 or -1), ``nn.Identity`` and ``nn.Dropout``;
        nested ``nn.Sequential`` / ``nn.ModuleList`` are flattened.  The dtype
        (float32 or float64) is the weights'.  Needs PyTorch (``pip install
        torch``), imported only here.

        Parameters
        ----------
        module : torch.nn.Sequential, torch.nn.ModuleList or sequence of modules
        backend : str or None
            Backend of the new network (None: the default).

        Returns
        -------
        Network
            ``predict(X)`` for X (n_samples, in_features) gives the module's
            output in evaluation mode.

        Raises
        ------
        TypeError
            For a module fastnn has no layer for (``nn.Conv2d``, a custom
            module, ...); the message names it and its position.
        ValueError
            For weights of another dtype than float32/float64, or of different
            dtypes, a ``Softmax`` over another dimension, or sizes that do not
            chain.
        """
        torch = _import_torch("Network.from_torch")
        nn = torch.nn

        def flatten(mods: Iterable[Any], prefix: str) -> Iterator[tuple[str, Any]]:
            for k, m in enumerate(mods):
                if isinstance(m, (nn.Sequential, nn.ModuleList)):
                    yield from flatten(m, f"{prefix}{k}.")
                else:
                    yield f"{prefix}{k}", m

        if isinstance(module, nn.Module) and not isinstance(module, (nn.Sequential,
                                                                     nn.ModuleList)):
            raise TypeError(f"from_torch reads an nn.Sequential (or a list of modules), got "
                            f"{type(module).__name__}")
        layers: list[Layer] = []
        weights: list[tuple[Dense, Any, Any]] = []
        dtypes = set()
        for where, m in flatten(module, ""):
            kind = type(m)
            layer: Layer
            if kind is nn.Linear:
                layer = Dense(m.in_features, m.out_features, bias=m.bias is not None)
                weights.append((layer, m.weight, m.bias))
                dtypes.add(m.weight.dtype)
                if m.bias is not None:
                    dtypes.add(m.bias.dtype)
            elif kind is nn.LeakyReLU:
                layer = LeakyReLU(float(m.negative_slope))
            elif kind is nn.Softmax:
                if m.dim not in (1, -1):
                    raise ValueError(f"module {where} is nn.Softmax(dim={m.dim}); fastnn's "
                                     "Softmax works over dim 1 (the features of each sample)")
                layer = Softmax()
            elif kind is nn.Dropout:
                layer = Dropout(float(m.p))
            elif isinstance(m, nn.Module) and kind.__name__ in _FROM_TORCH \
                    and kind is getattr(nn, kind.__name__):
                layer = _FROM_TORCH[kind.__name__]()
            else:
                raise TypeError(f"module {where} ({type(m).__module__}.{type(m).__qualname__}: "
                                f"{m!r}) is not supported by Network.from_torch; it reads "
                                "nn.Linear, nn.Sigmoid, nn.ReLU, nn.Tanh, nn.SiLU, nn.LeakyReLU, "
                                "nn.Softmax, nn.Identity and nn.Dropout")
            layers.append(layer)
        if len(dtypes) > 1:
            raise ValueError(f"the weights have different dtypes {sorted(map(str, dtypes))}; "
                             "convert the module with .double() or .float() first")
        torch_dtype = dtypes.pop() if dtypes else torch.float64
        if torch_dtype not in (torch.float32, torch.float64):
            raise ValueError(f"the weights are {torch_dtype}; fastnn computes in float32 or "
                             "float64: convert the module with .float() or .double() first")
        dtype = "float64" if torch_dtype == torch.float64 else "float32"
        net = cls(layers, backend=backend, dtype=dtype)
        for layer, weight, bias in weights:
            layer.W = weight.detach().cpu().numpy().T
            if bias is not None:
                layer.b = bias.detach().cpu().numpy()
        return net

# ------------------------------------------------------------ load's checks
def _load_config(archive: NetworkArchive) -> dict[str, Any]:
    """The file's network description, a JSON object read within a size limit."""
    path = archive.path
    if not archive.has("config"):
        raise ValueError(f"{path} is not a fastnn network file (it has no 'config' member, the "
                         "network description save writes)")
    text = archive.read_text("config")
    try:
        config = json.loads(text)
    except RecursionError:
        raise ValueError(f"{path} is not a fastnn network file (its description is nested too "
                         "deeply to be one)") from None
    except ValueError as exc:
        raise ValueError(f"{path} is not a fastnn network file ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != "fastnn":
        raise ValueError(f"{path} is not a fastnn network file (missing fastnn header)")
    version = config.get("version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise ValueError(f"{path} has format version {version!r}; this fastnn reads version "
                         f"{FORMAT_VERSION}")
    return config


def _config_dtype(value: Any) -> np.dtype[Any]:
    if not isinstance(value, str):
        raise TypeError(f"dtype must be 'float32' or 'float64', got {value!r}")
    return check_dtype(value)


def _config_layers(specs: Any) -> list[Layer]:
    if not isinstance(specs, list):
        raise TypeError(f"layers must be a list, got a {type(specs).__name__}")
    return [_config_layer(i, spec) for i, spec in enumerate(specs)]


def _config_layer(index: int, spec: Any) -> Layer:
    """Layer ``index`` of a description: {"type": name, "config": {argument: value}}.

    Nothing is allocated: a layer's arrays are made when a Network builds it.
    """
    if not isinstance(spec, dict):
        raise TypeError(f"layer {index} is a {type(spec).__name__}, not an object")
    kind = spec.get("type")
    if not isinstance(kind, str) or kind not in LAYER_TYPES:
        raise ValueError(f"unknown layer type {kind!r}")
    args = spec["config"]
    if not isinstance(args, dict):
        raise TypeError(f"layer {index}'s config is a {type(args).__name__}, not an object")
    for name, value in args.items():
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise TypeError(f"layer {index}'s argument {name!r} is a {type(value).__name__}; "
                            "layer arguments are numbers, strings, booleans or null")
    return LAYER_TYPES[kind](**args)


def _param_shapes(layers: list[Layer]) -> list[tuple[str, tuple[int, ...]]]:
    """(key, shape) of each parameter a Network of ``layers`` has, in ``parameters()`` order,
    from the layers' arguments alone (before any array of that size exists)."""
    shapes: list[tuple[str, tuple[int, ...]]] = []
    for i, layer in enumerate(layers):
        if isinstance(layer, Dense):
            shapes.append((f"{i}.W", (layer.n_in, layer.n_out)))
            if layer.bias:
                shapes.append((f"{i}.b", (layer.n_out,)))
        elif layer.param_names:
            raise TypeError(f"load cannot tell the parameter shapes of {layer!r}")
    return shapes


def _load_rng_state(archive: NetworkArchive, key: str) -> tuple[int, int]:
    """A Dropout layer's (seed, step): a uint64 array of shape (2,)."""
    if not archive.has(key):
        raise ValueError(f"{archive.path} lacks the array {key!r} (the Dropout layer's "
                         "generator state, which save writes)")
    seed, step = (int(v) for v in archive.read_array(key, (2,), np.dtype(np.uint64)))
    if step >= 2**63:
        raise ValueError(f"{archive.path}: {key} holds the step count {step}, beyond any "
                         "training (at most 2**63 - 1)")
    return seed, step


def _create_beside(target: str) -> tuple[int, str]:
    """A new, hidden temporary file in ``target``'s directory: (fd open for writing, path).

    Its permissions are those of ``target`` when it exists, else what
    ``open(target, "w")`` would give (0666 less the umask, applied by the
    system) -- not mkstemp's 0600, which would lock other users out of a
    saved model.  Created with O_EXCL under a random name (retried when
    taken), so it never opens someone else's file.
    """
    directory = os.path.dirname(target)
    try:
        mode: int | None = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = None
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(directory, f".fastnn-{secrets.token_hex(8)}.npz.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        if mode is not None:
            try:
                if hasattr(os, "fchmod"):
                    os.fchmod(fd, mode)
                else:                               # Windows: by name
                    os.chmod(tmp, mode)
            except BaseException:
                os.close(fd)
                os.unlink(tmp)
                raise
        return fd, tmp
    raise FileExistsError(errno.EEXIST, "no free temporary file name beside the target",
                          directory)


def _diverged(epoch: int) -> FloatingPointError:
    """The error ``fit`` raises (0-based epoch) when a batch's loss is NaN or infinite,
    or its update would leave a weight or optimizer state value so: the update is
    not applied, weights and optimizer state stay as the previous batch left them."""
    return FloatingPointError(
        f"training diverged in epoch {epoch + 1}: a batch's loss, gradient or update is "
        "NaN or infinite (try a smaller learning rate); fit stopped without applying that "
        "update, so the weights and optimizer state are those left by the previous batch")


def _accuracy(out: NDArray[Any], T: NDArray[Any], loss: Loss) -> float:
    """The accuracy of the outputs ``out`` (n, C) for the targets ``T`` of ``loss``.

    CrossEntropyLoss: the fraction of samples whose largest output is the
    target class (its label, or the largest target probability).  BCELoss and
    any other classification loss: per label, as Keras's binary accuracy --
    the fraction of all n * C outputs on the same side of 0.5 as their target.
    """
    if isinstance(loss, CrossEntropyLoss):
        truth = T if T.ndim == 1 else T.argmax(axis=1)
        return float(np.mean(out.argmax(axis=1) == truth))
    return float(np.mean((out > 0.5) == (T.reshape(out.shape) > 0.5)))


#: fastnn activation -> the name of its torch.nn module (LeakyReLU, Softmax apart)
_TO_TORCH: dict[type, str] = {Sigmoid: "Sigmoid", ReLU: "ReLU", Tanh: "Tanh", SiLU: "SiLU",
                              Identity: "Identity"}
#: torch.nn module name -> the fastnn activation
_FROM_TORCH: dict[str, type[Layer]] = {name: cls for cls, name in _TO_TORCH.items()}


def _import_torch(what: str) -> Any:
    """torch, or an ImportError that says how to install it."""
    try:
        import torch
    except ImportError as exc:
        raise ImportError(f"{what} needs PyTorch, which is not installed; install it with "
                          "`pip install torch` (the CPU build is enough)") from exc
    return torch


def _format_seconds(seconds: float) -> str:
    """0:07, 12:03, 1:02:03."""
    s = int(round(seconds))
    hours, rest = divmod(s, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class _Progress:
    """Progress of ``fit``, one update per epoch.

    ``verbose=1``: a tqdm bar over the epochs (loss and time left), on stderr,
    when tqdm imports; otherwise -- and always for ``verbose=2`` -- one plain
    line per epoch on stdout: ``epoch 3/10  loss=0.25  val_loss=0.3  eta 0:02``.
    """

    def __init__(self, epochs: int, verbose: int) -> None:
        self.epochs = epochs
        self.done = 0
        self.began = time.perf_counter()
        self.bar: Any = None
        if verbose == 1:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=epochs, unit="epoch", desc="fit", leave=True)

    def update(self, record: dict[str, float]) -> None:
        """Report the epoch just finished, with its records (``loss``, ``val_loss``...)."""
        self.done += 1
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in record.items()}, refresh=False)
            self.bar.update(1)
            return
        elapsed = time.perf_counter() - self.began
        eta = elapsed / self.done * (self.epochs - self.done)
        values = "  ".join(f"{k}={v:.6g}" for k, v in record.items())
        print(f"epoch {self.done}/{self.epochs}  {values}  eta {_format_seconds(eta)}",
              flush=True)

    def close(self, history: History) -> None:
        """Close the bar; say where early stopping stopped, if it did."""
        if self.bar is not None:
            self.bar.close()
        if history.stopped_epoch is not None:
            print(f"early stopping after epoch {history.stopped_epoch + 1}; best epoch "
                  f"{(history.best_epoch or 0) + 1}",
                  file=sys.stderr if self.bar is not None else sys.stdout, flush=True)


class _BatchInterrupted(Exception):
    """Raised inside a batch of the reference loop once Ctrl-C is requested."""


class _StopOnInterrupt:
    """While ``fit`` runs: Ctrl-C asks training to stop, dropping the unfinished batch.

    Python's default SIGINT handler raises KeyboardInterrupt wherever the main
    thread happens to be -- possibly between two parameters of an optimizer
    step, leaving the network half-updated.  Inside this context the first
    SIGINT only sets ``requested`` and puts the previous handler back, so a
    second Ctrl-C aborts at once as usual.  The reference loop looks at
    ``requested`` between batches and between the layers of a batch.  The
    compiled trainer runs with the GIL released, where no Python handler can
    run: while ``catching``, it installs its own C handler for each call,
    which stops the call inside the batch, and reports the first signal with
    ``trip`` (a second one during the call raises KeyboardInterrupt).  The
    handler is installed only from the main thread and only over Python's
    default one: a custom handler (or a ``fit`` in another thread) is left
    alone.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    @property
    def catching(self) -> bool:
        """Whether the next SIGINT is this guard's (installed, not yet tripped)."""
        return self._previous is not None and not self.requested

    def trip(self) -> None:
        """A SIGINT arrived (caught elsewhere, e.g. by the compiled trainer): as ``_handle``."""
        self._handle(signal.SIGINT, None)

    def __enter__(self) -> _StopOnInterrupt:
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def __exit__(self, *exc_info: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class _DeferInterrupt:
    """Holds back Ctrl-C over a few statements that must all run (a copy of
    every parameter), then honours it.

    In the main thread, over Python's default SIGINT handler only (as
    ``_StopOnInterrupt``): a SIGINT inside the block is recorded, and on
    leaving the block the default handler is put back and the signal raised
    again, so KeyboardInterrupt comes right after the block instead of in
    the middle of it.
    """

    def __init__(self) -> None:
        self._previous: Any = None
        self._received = False

    def __enter__(self) -> _DeferInterrupt:
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self._received = True

    def __exit__(self, *exc_info: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            if self._received:
                signal.raise_signal(signal.SIGINT)
