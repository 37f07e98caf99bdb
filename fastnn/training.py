"""Training: the fit driver, History, the progress display and the Ctrl-C guards.

Why it is built this way: training is a loop *over* a network, not part of
it.  ``Network.fit`` is a thin method calling ``fit`` here, so the network
module holds only the model (layers, plan, passes) and this module the
driver: the batch order comes from a seeded ``numpy.random.Generator`` here
in Python (every backend visits the samples in the same order), the backend's
trainer runs the batches, and between its calls Python observes the epochs
(validation, progress, early stopping).  This module imports no network
module: it works on the network it is handed.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any, Callable, Generator

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import check_bool, check_float, check_int
from .backends.numpy_ops import ieee_scope
from .layers import Activation, Dense, Dropout, Layer
from .losses import Loss, get_loss
from .optimizers import Optimizer, get_optimizer

if TYPE_CHECKING:  # optional dependencies, and the network, imported lazily at run time
    from matplotlib.axes import Axes

    from .network import Network

__all__ = ["History", "fit"]


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



def fit(network: Network, X: ArrayLike, y: ArrayLike, *, loss: Loss | type[Loss] | str,
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
    X, T = network._check_data(X, y, loss)
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            got = type(validation_data).__name__
            if isinstance(validation_data, (tuple, list)):
                got += f" of length {len(validation_data)}"
            raise TypeError("validation_data must be a pair (X_val, y_val), a tuple or a "
                            f"list of two arrays; got {got}")
        X_val_in, y_val_in = validation_data
        X_val, T_val = network._check_data(X_val_in, y_val_in, loss, "X_val", "y_val")
    rng = np.random.default_rng(seed) if seed is not None else network._shuffle_rng
    n = X.shape[0]
    batch = n if batch_size is None else min(batch_size, n)

    def next_orders(count: int) -> NDArray[np.int64] | None:
        """Sample orders of the next ``count`` epochs: (count, n), or None when in order."""
        return np.stack([rng.permutation(n) for _ in range(count)]) if shuffle else None

    native = getattr(network.ops, "make_trainer", None) is not None
    per_epoch = bool(verbose) or validation_data is not None or early_stopping
    run = _epochs_native if native else _epochs_python
    history = History()
    monitor = "val_loss" if validation_data is not None else "loss"
    best = np.inf
    best_params: list[NDArray[Any]] | None = None
    wait = 0
    if not network._fit_lock.acquire(blocking=False):
        raise RuntimeError("fit is already running on this network (in another thread); "
                           "one network trains in one thread at a time -- wait for that "
                           "fit to return, or train a separate network")
    try:
        with _StopOnInterrupt() as interrupt:
            progress = _Progress(epochs, verbose) if verbose else None
            chunks = run(network, X, T, loss, optimizer, batch, next_orders, epochs, per_epoch,
                         interrupt)
            try:
                for totals in chunks:
                    losses = totals / n if loss.reduction == "mean" else totals
                    if not per_epoch:           # a whole chunk of epochs at once
                        history._extend({"loss": losses.tolist()})
                        continue
                    record = {"loss": float(losses[0])}
                    if validation_data is not None:
                        scores = network._score(X_val, T_val, loss)
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
                                best_params = [p.copy() for _, p, _ in network.parameters()]
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
        network._fit_lock.release()
    if history.interrupted:
        warnings.warn(f"fit interrupted (Ctrl-C) after {len(history.epochs)} of {epochs} "
                      "epochs; the network keeps the weights of the last completed batch",
                      UserWarning, stacklevel=2)
    elif best_params is not None and history.best_epoch != history.epochs[-1]:
        with _DeferInterrupt():                 # all of the best epoch's, or none
            for (_, param, _), saved in zip(network.parameters(), best_params):
                param[...] = saved              # in place: arrays keep their identity
    return history

def _epochs_python(network: Network, X: NDArray[Any], T: NDArray[Any], loss: Loss,
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
    dropouts = [layer for layer in network.layers if isinstance(layer, Dropout)]
    step = optimizer.checked_step(network)    # creates the state, as the native loop does
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
                    out = network._forward(X[idx], training=True, interrupt=interrupt)
                    value, grad = loss.compute(network.ops, out, T[idx])
                    if not math.isfinite(value):
                        raise _diverged(epoch)
                    network._backward_no_input_grad(grad, interrupt)  # type: ignore[arg-type]
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

def _epochs_native(network: Network, X: NDArray[Any], T: NDArray[Any], loss: Loss,
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
    for layer, _ in network._plan:          # gradient buffers the trainer writes
        if isinstance(layer, Dense):
            params = layer.params()
            if layer.dW is None:
                layer.dW = network.ops.zeros_like(params["W"])
            if "b" in params and layer.db is None:
                layer.db = network.ops.zeros_like(params["b"])
    spec, states = optimizer.native_spec(network)
    stages = [_stage(network, layer, activation, states) for layer, activation in network._plan]
    trainer = network.ops.make_trainer(  # type: ignore[attr-defined]
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
        for stage, step in zip(network._plan, final["dropout_steps"]):
            if step is not None:
                stage[0].step = step  # type: ignore[attr-defined]
        optimizer.native_done(final["step"])

def _stage(network: Network, layer: Layer, activation: Activation | None,
           states: dict[str, list[Any]]) -> dict[str, Any]:
    """Plain description of one plan entry for the native trainer."""
    if isinstance(layer, Dense):
        key = network.layers.index(layer)      # parameter keys are "<layer index>.W"
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


def _diverged(epoch: int) -> FloatingPointError:
    """The error ``fit`` raises (0-based epoch) when a batch's loss is NaN or infinite,
    or its update would leave a weight or optimizer state value so: the update is
    not applied, weights and optimizer state stay as the previous batch left them."""
    return FloatingPointError(
        f"training diverged in epoch {epoch + 1}: a batch's loss, gradient or update is "
        "NaN or infinite (try a smaller learning rate); fit stopped without applying that "
        "update, so the weights and optimizer state are those left by the previous batch")



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

