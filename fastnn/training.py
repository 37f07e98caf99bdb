"""Training: the fit driver, History, the progress display and the Ctrl-C guards.

Why it is built this way: training is a loop *over* a network, not part of
it.  ``Network.fit`` is a thin method calling ``fit`` here, so the network
module holds only the model (layers, plan, passes) and this module the
driver: the batch order comes from a seeded ``numpy.random.Generator`` here
in Python (every backend visits the samples in the same order), the backend's
trainer runs the batches, and between its calls Python observes the epochs
(validation, progress, early stopping).  This module imports no network
module: it works on the network it is handed.  For L-BFGS (fastnn.sklearn)
it also gives the loss and gradient over a whole data set without an
update (``_LossAndGradients``): the same trainer, one batch of all the rows.
Data larger than memory enters as it is: a memmap X is handed to the trainer
in place (each batch's rows are read, shuffled or not), and an iterable of
(X_batch, y_batch) pairs is trained batch by batch by the same trainers
(``_drive_batches``), so it equals the array fit with the same batches.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
import time
import warnings
from typing import TYPE_CHECKING, Any, Iterable, Iterator, NamedTuple, Protocol, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._custom import user_methods
from ._interrupts import _DeferInterrupt, _StopOnInterrupt
from ._metrics import resolve_metrics, score_metrics
from ._validation import (ZeroWeightError, as_weights, check_bool, check_float, check_int,
                          check_mapped)
from .backends.numpy_ops import ieee_scope
from .callbacks import Callback, EarlyStopping
from .layers import Activation, BatchNorm1d, Dense, Dropout, Flatten, Layer, LayerNorm
from .losses import Loss, get_loss
from .optimizers import Optimizer, get_optimizer
from .schedules import LRScheduler, OneCycleLR, ReduceLROnPlateau

if TYPE_CHECKING:  # optional dependencies, and the network, imported lazily at run time
    from matplotlib.axes import Axes

    from .network import Network

__all__ = ["History", "PythonTrainer", "fit"]


class History:
    """Per-epoch records of ``fit``: ``history.loss``, ``history["val_loss"]``, ...

    Attributes
    ----------
    history : dict of str -> list of float
        ``loss`` (the mean of the batch losses, each weighted by its batch's
        total weight -- its size when unweighted -- so, for ``reduction="mean"``,
        the weighted mean over the epoch's samples; or their sum for
        ``reduction="sum"``) and ``lr`` (the learning rate the epoch started
        with) always; the ``metrics`` asked for (``accuracy``, ``mae``,
        ``mse``); ``val_loss``, ``val_accuracy`` for classification losses (as
        ``Network.evaluate``'s accuracy: per label for BCE, argmax for
        cross-entropy) and ``val_`` + each metric, when validation data is
        given.  One entry per epoch actually run.
    epochs : list of int
        The indices (from 0) of the epochs run.
    stopped_epoch : int or None
        With ``early_stopping`` (an EarlyStopping callback): the index of the
        epoch after which training stopped early; None when all ``epochs`` ran.
    best_epoch : int or None
        With ``early_stopping`` (an EarlyStopping callback): the index of the
        epoch with the best monitored value (the weights restored with
        ``restore_best_weights``); else None.
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
    History(epochs=3, keys=['loss', 'lr'])
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



def fit(network: Network, X: ArrayLike | Iterable[tuple[ArrayLike, ArrayLike]],
        y: ArrayLike | None = None, *, loss: Loss | type[Loss] | str,
        optimizer: Optimizer | type[Optimizer] | str, epochs: int = 1,
        batch_size: int | None = None, shuffle: bool = True, seed: int | None = None,
        verbose: int = 0,
        validation_data: tuple[ArrayLike, ArrayLike] | None = None,
        early_stopping: bool = False, patience: int = 10, min_delta: float = 0.0,
        restore_best_weights: bool = True,
        sample_weight: ArrayLike | None = None,
        class_weight: dict[Any, float] | str | None = None,
        observers: Sequence[_Observer] = (), clip_grad_norm: float | None = None,
        clip_grad_value: float | None = None, validation_split: float = 0.0,
        lr_scheduler: LRScheduler | None = None, callbacks: Sequence[Callback] = (),
        metrics: Sequence[str] | None = None, shuffler: Any = None) -> History:
    """Train ``network`` on (X, y): the one fit driver behind ``Network.fit``.

    Parameters
    ----------
    network : Network
    X, y, loss, optimizer, epochs, batch_size, shuffle, seed, verbose, validation_data,
    early_stopping, patience, min_delta, restore_best_weights, sample_weight, class_weight,
    clip_grad_norm, clip_grad_value, validation_split, lr_scheduler, callbacks, metrics
        As ``Network.fit``.
    observers : sequence of objects with ``on_epoch_end(epoch, logs)``
        Called after each epoch, after the callbacks, with the epoch's
        records; one returning ``"stop"`` ends training.  Internal
        (fastnn.sklearn uses it); see ``_Observer``.
    shuffler : object with ``permutation(n)``, optional
        Gives each epoch's sample order (one call per epoch run, when
        ``shuffle``) in place of the network's shuffle generator; ``seed``
        must then be None.  Internal: fastnn.sklearn hands scikit-learn's
        composed orders through it.

    Returns
    -------
    History

    Raises
    ------
    RuntimeError, FloatingPointError, ValueError
        As ``Network.fit``.
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
    clip = _Clipping(
        None if clip_grad_norm is None else check_float(clip_grad_norm, "clip_grad_norm",
                                                        minimum=0.0),
        None if clip_grad_value is None else check_float(clip_grad_value, "clip_grad_value",
                                                         minimum=0.0))
    if isinstance(validation_split, (bool, np.bool_)) \
            or not isinstance(validation_split, numbers.Real) or not 0.0 <= validation_split < 1.0:
        raise ValueError(f"validation_split must be a fraction in [0, 1), got "
                         f"{validation_split!r}")
    if validation_split and validation_data is not None:
        raise ValueError("give validation_data or validation_split, not both")
    if lr_scheduler is not None and not isinstance(lr_scheduler, LRScheduler):
        raise TypeError(f"lr_scheduler must be a schedule of fastnn.schedules (e.g. "
                        f"StepLR(step_size=10)), got {lr_scheduler!r}")
    callbacks = list(callbacks) if callbacks is not None else []
    for i, callback in enumerate(callbacks):
        if not isinstance(callback, Callback):
            raise TypeError(f"callbacks[{i}] is {callback!r}, not a fastnn.callbacks.Callback")
    if shuffler is not None and seed is not None:
        raise ValueError("give seed or shuffler, not both")
    rng = (shuffler if shuffler is not None
           else np.random.default_rng(seed) if seed is not None else network._shuffle_rng)
    batches: Iterable[Any] | None = None
    weights: NDArray[np.float64] | None
    resolved: list[tuple[str, str]]
    if y is None:                             # an iterable of (X_batch, y_batch) pairs
        batches = _check_batches(X, epochs, batch_size, shuffle, seed, shuffler,
                                 validation_split, sample_weight, class_weight, metrics,
                                 lr_scheduler)
        X = T = np.empty((1, 0))              # the sizes below are one "row" per batch
        weights, resolved = None, []
    elif _row_indexable(X):                   # h5py, zarr, ...: read batch by batch
        batches = _RowBatches(X, y, batch_size, shuffle, rng, validation_split,
                              sample_weight, class_weight, metrics, lr_scheduler)
        X = T = np.empty((1, 0))
        weights, resolved = None, []
    else:
        if isinstance(X, np.ndarray):         # a memmap: in place, never copied whole
            check_mapped(X, network.dtype, "X")
        X, T = network._check_data(X, y, loss)
        weights = fit_weights(loss, T, sample_weight, class_weight, network.n_outputs)
        resolved = resolve_metrics(metrics, loss, T)
    validation: _Validation | None = None
    if validation_split:
        n_all = X.shape[0]
        split_at = int(n_all * (1.0 - validation_split))   # Keras's: the last rows held out
        if split_at < 1 or split_at >= n_all:
            raise ValueError(f"validation_split={validation_split} of {n_all} samples leaves "
                             f"{split_at} for training and {n_all - split_at} for validation; "
                             "both need at least one")
        validation = _Validation(network, loss, X[split_at:], T[split_at:], resolved)
        X, T = X[:split_at], T[:split_at]
        if weights is not None:               # the held-out rows are scored unweighted
            weights = weights[:split_at]
            if not (weights > 0).any():
                raise ValueError("every training sample left by validation_split has "
                                 "weight 0: there is nothing to train on")
    elif validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            got = type(validation_data).__name__
            if isinstance(validation_data, (tuple, list)):
                got += f" of length {len(validation_data)}"
            raise TypeError("validation_data must be a pair (X_val, y_val), a tuple or a "
                            f"list of two arrays; got {got}")
        X_val_in, y_val_in = validation_data
        validation = _Validation(network, loss,
                                 *network._check_data(X_val_in, y_val_in, loss, "X_val", "y_val"),
                                 resolved)
    n = X.shape[0]
    batch = n if batch_size is None else min(batch_size, n)
    per_epoch_batches = -(-n // batch)
    history = History()
    if early_stopping:                        # the shorthand for an EarlyStopping callback
        callbacks.append(EarlyStopping("val_loss" if validation else "loss", min_delta,
                                       patience, "min", restore_best_weights))
    if not network._fit_lock.acquire(blocking=False):
        raise RuntimeError("fit is already running on this network (in another thread); "
                           "one network trains in one thread at a time -- wait for that "
                           "fit to return, or train a separate network")
    watchers: list[Any] = []
    schedule: _Schedule | None = None
    completed = False
    try:
        if lr_scheduler is not None:
            lr_scheduler.bind(optimizer)
            schedule = _Schedule(lr_scheduler, epochs * per_epoch_batches)
        scorers: list[Any] = [o for o in (_TrainingMetrics(network, X, T, resolved)
                                          if resolved else None, validation) if o is not None]
        progress = _ProgressObserver(epochs, verbose, history) if verbose else None
        watchers += [*scorers, *callbacks, *([schedule] if schedule is not None else []),
                     _Recorder(history), *([progress] if progress is not None else [])]
        watchers += observers
        with _StopOnInterrupt() as interrupt:
            network.stop_training = False
            for watcher in watchers:
                if isinstance(watcher, Callback):
                    watcher.set_fit(network, history)
            try:
                for watcher in watchers:
                    begin = getattr(watcher, "on_train_begin", None)
                    if begin is not None:
                        begin({})
                if batches is not None:
                    _drive_batches(network, batches, watchers, history, epochs, loss,
                                   optimizer, interrupt, clip,
                                   _epoch_rates(optimizer, schedule, per_epoch_batches),
                                   len(scorers))
                else:
                    trainer = _make_trainer(network, X, T, loss, optimizer, batch, interrupt,
                                            weights, clip, schedule)
                    _drive(trainer, watchers, history, n, batch, epochs, shuffle, rng, loss,
                           interrupt, _row_weights(loss, T, weights),
                           lr_of=_epoch_rates(optimizer, schedule, per_epoch_batches),
                           n_scorers=len(scorers), network=network)
                completed = True
            finally:
                if schedule is not None:
                    schedule.finish()
                history.interrupted = interrupt.requested
        # after the guard: a Ctrl-C in a hook is the user's (KeyboardInterrupt)
    finally:
        try:
            last = {k: v[-1] for k, v in history.history.items()} if history.epochs else {}
            for watcher in watchers:
                # a callback's on_train_end runs when fit returns (Keras's rule); the
                # progress display closes in any case
                end = getattr(watcher, "on_train_end", None)
                if end is not None and (completed or getattr(watcher, "always_end", False)):
                    end(dict(last))
        finally:
            network._fit_lock.release()
    if history.interrupted:
        warnings.warn(f"fit interrupted (Ctrl-C) after {len(history.epochs)} of {epochs} "
                      "epochs; the network keeps the weights of the last completed batch",
                      UserWarning, stacklevel=3)
    return history


def _whole_set_arguments(validation_split: float, sample_weight: Any, class_weight: Any,
                         metrics: Any, lr_scheduler: LRScheduler | None
                         ) -> list[tuple[bool, str, str]]:
    """fit's arguments that need the whole training set at once, as (given, name,
    why): refused where the data comes a batch at a time."""
    return [(bool(validation_split), f"validation_split={validation_split!r}",
             "there are no last rows to hold out; give validation_data"),
            (sample_weight is not None or class_weight is not None,
             "sample_weight or class_weight", "they weigh the rows of a whole array"),
            (bool(metrics), "metrics",
             "they are scored over the whole training set after each epoch"),
            (lr_scheduler is not None and lr_scheduler.per_batch,
             f"the per-batch schedule {type(lr_scheduler).__name__}",
             "it needs the number of batches before the first")]


def _refuse(what_fit: str, hint: str, arguments: list[tuple[bool, str, str]]) -> None:
    """ValueError for the first given argument of ``arguments`` (see
    ``_whole_set_arguments``)."""
    for given, name, why in arguments:
        if given:
            raise ValueError(f"{what_fit} does not take {name}: {why}{hint}")


def _check_batches(batches: Any, epochs: int, batch_size: int | None, shuffle: bool,
                   seed: int | None, shuffler: Any, validation_split: float,
                   sample_weight: Any, class_weight: Any, metrics: Any,
                   lr_scheduler: LRScheduler | None) -> Iterable[Any]:
    """``fit``'s X when y is omitted: a re-iterable of (X_batch, y_batch) pairs.

    Each pair is one batch, in the order the iterable yields them, and the
    iterable is iterated once per epoch -- so what is decided by fit for an
    array is the iterable's here, and an argument that would decide it is
    refused rather than ignored: ``batch_size`` (the pairs are the batches),
    ``shuffle=True`` and ``seed`` (the iterable's order is the order: shuffle
    there, as a DataLoader does), ``validation_split`` (there are no last rows
    of a stream to hold out: give ``validation_data``), ``sample_weight`` and
    ``class_weight`` (per-sample arrays of the whole set), ``metrics`` (a pass
    over the training data after each epoch) and a per-batch learning-rate
    schedule (it needs the number of batches before the first).  An iterator
    (a generator) is one pass: refused for more than one epoch.
    """
    first = (batches[0] if isinstance(batches, (list, tuple)) and len(batches) else None)
    if (isinstance(batches, (str, bytes)) or not hasattr(batches, "__iter__")
            or hasattr(batches, "shape") or hasattr(batches, "__array__")
            or (first is not None and not (isinstance(first, (tuple, list)) and len(first) == 2
                                           and np.ndim(first[0]) >= 1))):
        raise TypeError("y is missing: fit takes an array X and its targets y, or, with y "
                        "omitted, a re-iterable of (X_batch, y_batch) pairs; got X of type "
                        f"{type(batches).__name__}")
    refused = [(batch_size is not None, f"batch_size={batch_size!r}",
                "its pairs are the batches"),
               (shuffle, "shuffle=True",
                "the batches are trained in the order the iterable yields them (shuffle "
                "there, e.g. a DataLoader(shuffle=True)); pass shuffle=False"),
               (seed is not None or shuffler is not None, "seed",
                "there is no shuffle to seed")]
    _refuse("fit on an iterable of (X_batch, y_batch) pairs", "", refused
            + _whole_set_arguments(validation_split, sample_weight, class_weight, metrics,
                                   lr_scheduler))
    if epochs > 1 and iter(batches) is batches:
        raise TypeError(f"X is an iterator ({type(batches).__name__}), which yields its "
                        f"batches once, but fit iterates X once per epoch ({epochs} epochs): "
                        "pass a re-iterable -- a list, or an object whose __iter__ starts "
                        "over (e.g. a torch DataLoader)")
    return batches


def _row_indexable(X: Any) -> bool:
    """Whether X is an array of rows that is not NumPy's (an h5py or zarr dataset):
    a NumPy ``dtype``, a ``shape`` of 2 or more dimensions and row indexing, but
    not an ndarray -- ``fit`` reads it a batch at a time (``_RowBatches``), where
    ``np.asarray`` would read it whole."""
    return (not isinstance(X, np.ndarray) and isinstance(getattr(X, "dtype", None), np.dtype)
            and len(getattr(X, "shape", ())) >= 2 and hasattr(X, "__getitem__"))


class _RowBatches:
    """A row-indexable X that is not a NumPy array (``_row_indexable``) as ``fit``'s
    batches, read one batch at a time.

    The batches are an array fit's: ``batch_size`` rows (None: all), each epoch
    in the order of one ``rng.permutation(n)`` (the draw an array fit makes) or
    in order without ``shuffle``; so the trained weights are an array fit's,
    bit for bit.  A shuffled batch's rows are read with one increasing index
    (h5py takes no other), then put in the order's order.  ``y`` is in memory.
    What needs the whole of X at once is refused: ``validation_split`` (give
    ``validation_data``), sample and class weights, ``metrics`` and a per-batch
    schedule.
    """

    def __init__(self, X: Any, y: ArrayLike, batch_size: int | None, shuffle: bool,
                 rng: Any, validation_split: float, sample_weight: Any, class_weight: Any,
                 metrics: Any, lr_scheduler: LRScheduler | None) -> None:
        _refuse(f"fit on X of type {type(X).__name__} (read a batch at a time)",
                "; or pass np.asarray(X)",
                _whole_set_arguments(validation_split, sample_weight, class_weight, metrics,
                                     lr_scheduler))
        self.X, self.y = X, np.asarray(y)
        n = int(X.shape[0])
        if self.y.shape[:1] != (n,):
            raise ValueError(f"X has {n} samples but y has shape {self.y.shape}")
        if n == 0:
            raise ValueError(f"X has no samples (shape {tuple(X.shape)})")
        self.n, self.batch = n, n if batch_size is None else min(batch_size, n)
        self.shuffle, self.rng = shuffle, rng

    def __iter__(self) -> Iterator[tuple[NDArray[Any], NDArray[Any]]]:
        order = self.rng.permutation(self.n) if self.shuffle else None
        for start in range(0, self.n, self.batch):
            stop = min(start + self.batch, self.n)
            if order is None:
                yield np.asarray(self.X[start:stop]), self.y[start:stop]
                continue
            idx = order[start:stop]
            increasing = np.sort(idx)
            rows = np.asarray(self.X[increasing])
            yield rows[np.searchsorted(increasing, idx)], self.y[idx]


def _drive_batches(network: Network, batches: Iterable[Any], watchers: list[Any],
                   history: History, epochs: int, loss: Loss, optimizer: Optimizer,
                   interrupt: _StopOnInterrupt, clip: _Clipping, lr_of: Any,
                   n_scorers: int) -> None:
    """The training loop over an iterable of (X_batch, y_batch) pairs (see
    ``_check_batches``): each epoch iterates it once, each pair is checked where
    it enters (as ``fit``'s X and y) and trained as one batch by the backend's
    trainer -- the same trainer, with the same steps, as a fit on the
    concatenated array with ``shuffle=False`` and these batch boundaries, so
    the weights are the same bit for bit.  The epoch's loss is the batches'
    losses weighted by their rows (``"mean"``; by the rows' weights with
    ``CrossEntropyLoss(weight=...)`` and labels) or summed, as ``_drive``'s; a
    batch whose rows all weigh 0 under ``"mean"`` is refused before it trains.
    Only one batch is in memory at a time (beside what the iterable holds).
    A compiled trainer is kept while the batches keep their shape (and
    dtypes): each batch is copied into the arrays it was made on, so a batch
    costs a copy, not a new trainer (the Python trainer is made per batch).
    """
    held: list[Any] = [None]                 # the kept (trainer, X, T), or None
    try:
        _run_batches(network, batches, watchers, history, epochs, loss, optimizer,
                     interrupt, clip, lr_of, n_scorers, held)
    finally:
        if held[0] is not None:
            held[0][0].close()


def _run_batches(network: Network, batches: Iterable[Any], watchers: list[Any],
                 history: History, epochs: int, loss: Loss, optimizer: Optimizer,
                 interrupt: _StopOnInterrupt, clip: _Clipping, lr_of: Any,
                 n_scorers: int, held: list[Any]) -> None:
    """``_drive_batches``'s loop; ``held[0]``: the kept (trainer, X, T), or None."""
    mean = loss.reduction == "mean"
    by_rows = loss.epoch_by_rows
    beginners = [w for w in watchers if getattr(w, "on_epoch_begin", None) is not None]
    for done in range(epochs):
        if interrupt.requested:
            return
        for watcher in beginners:
            watcher.on_epoch_begin(done, {})
        lrs = lr_of(done, 1)
        totals = np.zeros(1)
        rows = count = 0
        omegas: list[NDArray[np.float64]] = []      # the rows' weights in a mean, if any
        for pair in batches:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                got = type(pair).__name__
                if isinstance(pair, (tuple, list)):
                    got += f" of length {len(pair)}"
                raise TypeError(f"batch {count} of epoch {done} is a {got}, not a pair "
                                "(X_batch, y_batch)")
            Xb, Tb = network._check_data(pair[0], pair[1], loss, f"X_batch (batch {count})",
                                         f"y_batch (batch {count})")
            omega = _row_weights(loss, Tb, None)
            if omega is not None:
                if mean and not (omega > 0).any():
                    raise ZeroWeightError(
                        f"batch {count + 1} of epoch {done + 1} has total weight 0: "
                        "reduction='mean' divides a batch's loss by its samples' total "
                        "weight (the label's weight of CrossEntropyLoss(weight=...)); give "
                        "those samples weight, use larger batches, or reduction='sum'")
                if not by_rows:
                    omegas.append(omega)
            kept = held[0]
            if kept is not None and (kept[1].shape, kept[1].dtype, kept[2].shape,
                                     kept[2].dtype) == (Xb.shape, Xb.dtype, Tb.shape, Tb.dtype):
                trainer = kept[0]
                np.copyto(kept[1], Xb)
                np.copyto(kept[2], Tb)
            else:
                if kept is not None:
                    held[0] = None
                    kept[0].close()
                Xb, Tb = np.array(Xb), np.array(Tb)     # the trainer's own arrays
                trainer = _make_trainer(network, Xb, Tb, loss, optimizer, Xb.shape[0],
                                        interrupt, None, clip, None)
                held[0] = (trainer, Xb, Tb)
            catch = interrupt.catching
            try:
                trainer.run(None, 0, 0, 1, totals, catch)
            except FloatingPointError as exc:
                if len(exc.args) == 2 and isinstance(exc.args[1], int):
                    raise _diverged(done) from None
                raise
            finally:
                if not isinstance(trainer, _NativeTrainer):
                    held[0] = None
                    trainer.close()
            if catch and trainer.interrupted:
                interrupt.trip()
            if interrupt.requested:       # the unfinished epoch is not recorded
                return
            rows += Xb.shape[0]
            count += 1
        if not count:
            raise ValueError(f"X yielded no batch in epoch {done}: fit needs at least one "
                             "(X_batch, y_batch) pair per epoch"
                             + (" (an iterable whose __iter__ does not start over yields "
                                "its batches only once)" if done else ""))
        # the epoch's total weight as _drive's: one sum over the rows in order
        total = float(np.sum(np.concatenate(omegas))) if omegas else rows
        if _observe(watchers, history, totals / total if mean else totals, lrs, n_scorers,
                    network):
            return


def fit_weights(loss: Loss, T: NDArray[Any], sample_weight: ArrayLike | None,
                class_weight: dict[Any, float] | str | None,
                n_outputs: int) -> NDArray[np.float64] | None:
    """The weight of each sample in ``fit``: ``sample_weight`` times its class's weight.

    Parameters
    ----------
    loss : Loss
    T : ndarray
        The checked targets (``loss.prepare_target``).
    sample_weight : array-like of shape (n,), optional
        Finite weights >= 0, not all 0.
    class_weight : dict, "balanced" or None
        ``{class: weight}`` (classes not named weigh 1) or ``"balanced"``,
        scikit-learn's n_samples / (n_classes * count of the class), over the
        classes present.  The classes are the labels of ``CrossEntropyLoss``
        (class-label targets) or the 0/1 targets of a one-output
        ``BCELoss`` / ``BCEWithLogitsLoss``.
    n_outputs : int

    Returns
    -------
    ndarray of float64 (n,), or None when neither is given.
    """
    n = T.shape[0]
    weights = None
    if sample_weight is not None:
        weights = as_weights(sample_weight, "sample_weight", n, "samples").copy()
    if class_weight is not None:
        per_class = _class_weights(loss, T, class_weight, n_outputs)
        weights = per_class if weights is None else weights * per_class
    if weights is not None and not (weights > 0).any():
        raise ValueError("every sample has weight 0 (sample_weight times class_weight): "
                         "there is nothing to train on")
    return weights


def _class_labels(loss: Loss, T: NDArray[Any], n_outputs: int) -> tuple[NDArray[np.int64], int]:
    """Each sample's class and the number of classes, for ``class_weight``."""
    from .losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss
    if isinstance(loss, CrossEntropyLoss) and T.ndim == 1:
        return T, n_outputs
    if (isinstance(loss, (BCELoss, BCEWithLogitsLoss)) and T.shape[1:] == (1,)
            and np.isin(T, (0, 1)).all()):
        return T[:, 0].astype(np.int64), 2
    raise ValueError(f"class_weight needs class labels: CrossEntropyLoss with integer labels "
                     f"(n,), or a single 0/1 target of BCELoss / BCEWithLogitsLoss; got "
                     f"{type(loss).__name__} with targets of shape {T.shape}"
                     + ("" if T.ndim == 1 else " holding values other than 0 and 1"
                        if T.shape[1:] == (1,) else ""))


def _class_weights(loss: Loss, T: NDArray[Any], class_weight: Any,
                   n_outputs: int) -> NDArray[np.float64]:
    """``class_weight`` as one weight per sample (see ``fit_weights``)."""
    labels, n_classes = _class_labels(loss, T, n_outputs)
    table = np.ones(n_classes)
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f"class_weight must be a dict {{class: weight}} or 'balanced', "
                             f"got {class_weight!r}")
        counts = np.bincount(labels, minlength=n_classes)
        present = counts > 0
        table[present] = labels.shape[0] / (present.sum() * counts[present])
    elif isinstance(class_weight, dict):
        for key, value in class_weight.items():
            if (isinstance(key, (bool, np.bool_)) or not isinstance(key, (int, np.integer))
                    or not 0 <= key < n_classes):
                raise ValueError(f"class_weight has the key {key!r}, which is not a class: "
                                 f"the classes are the integers 0 to {n_classes - 1}")
            table[int(key)] = check_float(value, f"class_weight[{key!r}]", minimum=0.0)
    else:
        raise TypeError(f"class_weight must be a dict {{class: weight}}, 'balanced' or None, "
                        f"got {type(class_weight).__name__}")
    return table[labels]


def _row_weights(loss: Loss, T: NDArray[Any],
                 weights: NDArray[np.float64] | None) -> NDArray[np.float64] | None:
    """The weight each sample counts with in a mean: its sample weight times its
    label's class weight (CrossEntropyLoss(weight=...) with labels); None: all 1."""
    rows = loss.row_weights(T)
    if rows is None:
        return weights
    return rows if weights is None else weights * rows


def _check_batch_weights(omega: NDArray[np.float64], orders: NDArray[np.int64] | None,
                         n: int, batch: int, first_epoch: int) -> None:
    """Refuse, before they run, epochs with a batch whose samples all weigh 0
    (``reduction="mean"`` divides a batch's loss by its total weight)."""
    w = omega[orders] if orders is not None else omega[None, :]
    sums = np.add.reduceat(w, np.arange(0, n, batch), axis=1)
    bad = np.argwhere(sums == 0)
    if bad.size:
        e, b = (int(i) for i in bad[0])
        epoch = first_epoch + (e if orders is not None else 0)
        which = (f"samples {b * batch} to {min(n, (b + 1) * batch) - 1}" if orders is None
                 else "its shuffled samples")
        raise ZeroWeightError(
            f"batch {b + 1} of epoch {epoch + 1} ({which}) has total weight 0: "
            "reduction='mean' divides a batch's loss by its samples' total weight "
            "(sample_weight times class_weight, times the label's weight of "
            "CrossEntropyLoss(weight=...)); give those samples weight, use larger "
            "batches, or reduction='sum'")
def _epoch_rates(optimizer: Optimizer, schedule: _Schedule | None,
                 per_epoch_batches: int) -> Any:
    """``rates(first, count)``: the learning rates epochs first .. first + count - 1
    of the fit start with -- the per-batch table's first row of each epoch, else
    the optimizer's, read before the call that runs them (it stays the same
    within a call: anything that changes it between epochs makes calls of one)."""
    if schedule is not None and schedule.table is not None:
        column = schedule.table[::per_epoch_batches, 0]
        return lambda first, count: column[first:first + count].tolist()
    return lambda first, count: [float(optimizer.lr)] * count


def _drive(trainer: Any, watchers: list[Any], history: History, n: int, batch: int,
           epochs: int, shuffle: bool, rng: np.random.Generator, loss: Loss,
           interrupt: _StopOnInterrupt, omega: NDArray[np.float64] | None = None,
           seconds_per_call: float = 0.25, lr_of: Any = None, n_scorers: int = 0,
           network: Any = None) -> None:
    """The one training loop: the trainer runs batches, Python observes the epochs.

    Each ``trainer.run`` call does about ``seconds_per_call`` of work (the
    first runs one batch to measure), at most as many epochs as every
    watcher allows (``quiet_epochs``: a watcher that looks at the weights
    after each epoch allows one; a Callback always does), so Python --
    progress, validation, callbacks, an epoch-level learning-rate schedule --
    is re-entered between calls, never inside a batch.  Before a call of one
    epoch the watchers' ``on_epoch_begin`` run.  The sample orders of a
    call's epochs come from ``rng`` here, so every trainer visits the same
    samples.  ``omega``: each sample's weight in a mean (see ``_row_weights``;
    None: 1): the epoch's loss divides by their total (by n with the loss's
    ``epoch_by_rows``), and with
    ``reduction="mean"`` epochs with a batch of total weight 0 are refused
    before they run.  During a call SIGINT stops the trainer (its batch is
    dropped, see ``_StopOnInterrupt``); the completed epochs are recorded and
    the loop ends.  ``lr_of(first, count)`` gives the learning rates those
    epochs start with (recorded as ``lr``).  The trainer is closed on the way
    out.
    """
    per_epoch_batches = -(-n // batch)
    mean = loss.reduction == "mean"
    # scikit-learn's epoch loss: the batches' losses weighted by their rows, over n
    total = float(np.sum(omega)) if omega is not None and not loss.epoch_by_rows else n
    check_zero = mean and omega is not None and bool((omega == 0).any())
    max_batches = 1
    done = 0
    beginners = [w for w in watchers if getattr(w, "on_epoch_begin", None) is not None]
    try:
        while done < epochs and not interrupt.requested:
            chunk = min(epochs - done, max(1, max_batches // per_epoch_batches))
            for watcher in watchers:
                quiet = watcher.quiet_epochs() if hasattr(watcher, "quiet_epochs") else 1
                if quiet is not None:
                    chunk = min(chunk, max(1, quiet))
            if beginners:
                chunk = 1
                for watcher in beginners:
                    watcher.on_epoch_begin(done, {})
            lrs = lr_of(done, chunk) if lr_of is not None else []
            orders = ((np.stack([rng.permutation(n) for _ in range(chunk)]) if chunk > 1
                       else rng.permutation(n)[None])      # one epoch: no stacked copy
                      if shuffle else None)
            if check_zero:
                assert omega is not None
                _check_batch_weights(omega, orders, n, batch, done)
            totals = np.zeros(chunk)
            epoch = start = 0
            while epoch < chunk and not interrupt.requested:
                began = time.perf_counter()
                before = epoch * per_epoch_batches + start // batch
                catch = interrupt.catching
                try:
                    epoch, start = trainer.run(orders, epoch, start, max_batches, totals, catch)
                except FloatingPointError as exc:
                    if len(exc.args) == 2 and isinstance(exc.args[1], int):
                        raise _diverged(done + exc.args[1]) from None
                    raise
                if catch and trainer.interrupted:
                    interrupt.trip()
                ran = epoch * per_epoch_batches + start // batch - before
                elapsed = time.perf_counter() - began
                if ran and elapsed > 0:
                    max_batches = max(1, int(ran * seconds_per_call / elapsed))
            losses = totals[:epoch] / total if mean else totals[:epoch]
            done += chunk
            if _observe(watchers, history, losses, lrs, n_scorers, network):
                return
    finally:
        trainer.close()


def _observe(watchers: list[Any], history: History, losses: NDArray[np.float64],
             lrs: Sequence[float] = (), n_scorers: int = 0, network: Any = None) -> bool:
    """Show the watchers each epoch's records; True when one of them says ``"stop"``
    or sets ``network.stop_training``.  The first ``n_scorers`` watchers add scores
    (metrics, validation) before the epoch's ``lr`` is added to the records."""
    values = losses.tolist()
    rates = list(lrs)[:len(values)]
    if len(watchers) == 1:                      # only the History: the epochs at once
        history._extend({"loss": values, "lr": rates} if rates else {"loss": values})
        return False
    for i, value in enumerate(values):
        epoch = len(history.epochs)
        logs = {"loss": value}
        stop = False
        for k, watcher in enumerate(watchers):
            if k == n_scorers and i < len(rates):
                logs["lr"] = rates[i]
            stop = watcher.on_epoch_end(epoch, logs) == "stop" or stop
        if stop or (network is not None and getattr(network, "stop_training", False)):
            return True
    return False


class _Observer(Protocol):
    """What the driver asks of an observer of the epochs (fastnn.callbacks.Callback
    is the public one).

    ``on_epoch_end(epoch, logs)`` is called after each epoch with its index
    and its records (``{"loss": ...}``, to which an observer may add, e.g.
    ``val_loss``), in the order of the observers; returning ``"stop"`` ends
    training after this epoch.  Optional: ``quiet_epochs()`` -- how many
    epochs may run before the next call without the observer missing
    anything (None: any number; absent: 1) -- ``on_train_begin(logs)``,
    ``on_epoch_begin(epoch, logs)`` (its presence makes every call one
    epoch) and ``on_train_end(logs)``.
    """

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> str | None: ...


class _Recorder(Callback):
    """Appends each epoch's records to the History."""

    def __init__(self, history: History) -> None:
        self.history = history

    def quiet_epochs(self) -> int | None:
        return None

    on_epoch_begin = None  # type: ignore[assignment]

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.history._extend({k: [v] for k, v in logs.items()})


class _Validation(Callback):
    """Scores the network on the validation data after each epoch: ``val_loss``,
    ``val_accuracy`` (classification losses) and ``val_`` + each metric."""

    on_epoch_begin = None  # type: ignore[assignment]

    def __init__(self, network: Network, loss: Loss, X: NDArray[Any], T: NDArray[Any],
                 metrics: Sequence[tuple[str, str]] = ()) -> None:
        self.network, self.loss, self.X, self.T = network, loss, X, T
        self.metrics = list(metrics)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        scores = self.network._score(self.X, self.T, self.loss, metrics=self.metrics)
        logs.update({"val_" + k: v for k, v in scores.items()})


class _TrainingMetrics(Callback):
    """The metrics of the training data after each epoch: one forward pass
    (dropout off) over the training rows with the epoch's final weights, the
    backend's metric kernels on its outputs -- as ``evaluate`` would give."""

    on_epoch_begin = None  # type: ignore[assignment]

    def __init__(self, network: Network, X: NDArray[Any], T: NDArray[Any],
                 metrics: Sequence[tuple[str, str]]) -> None:
        self.network, self.X, self.T, self.metrics = network, X, T, list(metrics)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        out = self.network._forward(self.X, training=False, keep=False)
        logs.update(score_metrics(self.network.ops, out, self.T, self.metrics))


class _Schedule(Callback):
    """A learning-rate schedule in the driver.

    An epoch-level schedule steps after each epoch (ReduceLROnPlateau on
    ``val_loss`` when the logs have it, else ``loss``); the trainer takes the
    optimizer's new values at its next call.  A per-batch one (OneCycleLR)
    gives the trainers ``table``, the values of every batch of the fit
    (rows of ``names``), and ``finish`` records the batches the trainer ran.
    """

    on_epoch_begin = None  # type: ignore[assignment]

    def __init__(self, scheduler: LRScheduler, batches: int) -> None:
        self.scheduler = scheduler
        self.table: NDArray[np.float64] | None = None
        self.names: tuple[str, ...] = ()
        self.batches_run = 0
        if scheduler.per_batch:
            assert isinstance(scheduler, OneCycleLR)
            self.names = scheduler.hyper_names
            if batches:
                self.table = scheduler._batch_table(batches)

    def quiet_epochs(self) -> int | None:
        return None if self.scheduler.per_batch else 1

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        if self.scheduler.per_batch:
            return
        if isinstance(self.scheduler, ReduceLROnPlateau):
            self.scheduler.step(logs["val_loss"] if "val_loss" in logs else logs["loss"])
        else:
            self.scheduler.step()

    def finish(self) -> None:
        """Advance a per-batch schedule by the batches run (once)."""
        if self.scheduler.per_batch:
            self.scheduler._advance(self.batches_run)     # type: ignore[attr-defined]
            self.batches_run = 0


class _ProgressObserver(Callback):
    """The progress display (``verbose``) as an observer."""

    always_end = True          # the bar is closed also when fit raises
    on_epoch_begin = None  # type: ignore[assignment]

    def __init__(self, epochs: int, verbose: int, history: History) -> None:
        self.progress = _Progress(epochs, verbose)
        self.history = history

    def quiet_epochs(self) -> int | None:
        return 1

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.progress.update(dict(logs))

    def on_train_end(self, logs: dict[str, float]) -> None:
        self.progress.close(self.history)


# ------------------------------------------------------------- the trainers
class _Clipping(NamedTuple):
    """Gradient clipping after each backward, before the update (None: off): the
    norm of all gradients (``torch.nn.utils.clip_grad_norm_``) then each value
    (``clip_grad_value_``)."""

    norm: float | None = None
    value: float | None = None

    def apply(self, ops: Any, grads: list[NDArray[Any]]) -> None:
        """Clip ``grads`` in place with the backend's kernels."""
        if self.norm is not None:
            ops.clip_grad_norm(grads, self.norm)
        if self.value is not None:
            ops.clip_grad_value(grads, self.value)


def _sklearn_terms(loss: Loss) -> tuple[float, bool]:
    """The loss's L2 penalty and epoch rule (``Loss.l2_penalty``,
    ``Loss.epoch_by_rows``), checked: what both trainers read."""
    alpha = loss.l2_penalty
    if (isinstance(alpha, (bool, np.bool_)) or not isinstance(alpha, numbers.Real)
            or not (math.isfinite(alpha) and alpha >= 0)):
        raise ValueError(f"{type(loss).__name__}.l2_penalty must be a finite number >= 0, "
                         f"got {alpha!r}")
    by_rows = loss.epoch_by_rows
    if not isinstance(by_rows, (bool, np.bool_)):
        raise TypeError(f"{type(loss).__name__}.epoch_by_rows must be a bool, got {by_rows!r}")
    return float(alpha), bool(by_rows)


def _dense_layers(network: Network) -> list[Dense]:
    """The network's Dense layers in the order of its plan (the L2 penalty's arrays)."""
    return [layer for layer, _ in network._plan if isinstance(layer, Dense)]


def _packed(arrays: list[NDArray[Any]]) -> NDArray[np.float64]:
    """The arrays raveled one after the other, float64 (scikit-learn's ``_pack``)."""
    return np.concatenate([np.ravel(a) for a in arrays]).astype(np.float64, copy=False)


def _weight_grads(dense: list[Dense]) -> list[NDArray[Any]]:
    """The Dense layers' dW, which a backward pass has set."""
    grads = []
    for layer in dense:
        assert layer.dW is not None
        grads.append(layer.dW)
    return grads


def _make_trainer(network: Network, X: NDArray[Any], T: NDArray[Any], loss: Loss,
                  optimizer: Optimizer, batch: int, interrupt: _StopOnInterrupt,
                  weights: NDArray[np.float64] | None = None,
                  clip: _Clipping = _Clipping(), schedule: _Schedule | None = None) -> Any:
    """The backend's native trainer when it has one and knows every piece, else the
    Python trainer -- with one warning, naming the user code, when a native one was
    passed over (never a piece run as something it is not).  A per-batch schedule's
    table goes to either trainer."""
    if getattr(network.ops, "make_trainer", None) is None:
        return PythonTrainer(network, X, T, loss, optimizer, batch, interrupt, weights, clip,
                             schedule)
    reasons = _user_code(network, loss, optimizer)
    if not reasons:
        return _NativeTrainer(network, X, T, loss, optimizer, batch, weights, clip, schedule)
    warnings.warn(f"{'; '.join(reasons)}: fit runs the Python training loop on the "
                  f"{network.ops.name!r} backend (the built-in layers still run its compiled "
                  "kernels)", UserWarning, stacklevel=4)
    return PythonTrainer(network, X, T, loss, optimizer, batch, interrupt, weights, clip,
                         schedule)


def _user_code(network: Network, loss: Loss, optimizer: Optimizer) -> list[str]:
    """Why the native trainer cannot run this fit as written: each piece that is user
    code, e.g. ``"MyLoss.compute is user code"``; empty when it knows every piece."""
    reasons = []

    def say(piece: Any, methods: list[str]) -> None:
        name = type(piece).__name__
        listed = ", ".join(f"{name}.{m}" for m in methods)
        reasons.append(f"{listed} {'is' if len(methods) == 1 else 'are'} user code")

    for layer in network.layers:
        methods = user_methods(layer, "Layer")
        if methods:
            say(layer, methods)
        elif not isinstance(layer, (Dense, Activation, Dropout, Flatten, BatchNorm1d,
                                    LayerNorm)):
            reasons.append(f"{type(layer).__name__} is a layer the native trainer does not know")
    for piece, kind in ((loss, "Loss"), (optimizer, "Optimizer")):
        methods = user_methods(piece, kind)
        if methods:
            say(piece, methods)
    return reasons


class PythonTrainer:
    """The reference trainer: the batches of a fit, run by the layers in Python.

    The same contract as the compiled backend's trainer (``run``/``close``,
    ``interrupted``), so ``fit`` has one loop: ``run`` trains from a batch
    position for at most ``max_batches`` batches.  Each batch is forward,
    loss, backward, then the optimizer's ``step`` -- all or nothing: an
    update that would leave a non-finite value is refused whole, as the
    compiled trainer's dry run refuses it.  Every piece runs its own code
    (a user's Layer, Activation, Loss or Optimizer subclass included), with
    the backend's kernels for the built-in layers.

    Parameters
    ----------
    network : Network
    X, T : ndarray
        The checked samples (n, n_inputs) and targets.
    loss : Loss
    optimizer : Optimizer
    batch : int
        Samples per batch (the last one may be smaller).
    interrupt : _StopOnInterrupt
        Once it is ``requested`` (Ctrl-C), looked at before each batch,
        between the layers of its passes and before its update, the
        unfinished batch is dropped (its dropout steps given back) and
        ``run`` returns with ``interrupted`` True.
    sample_weight : ndarray of float64 (n,), optional
        Each sample's weight, handed to the loss with the batch's rows.
    clip : _Clipping
        Gradient clipping between each backward and the update.
    schedule : _Schedule, optional
        A per-batch learning-rate schedule: before each batch the optimizer
        takes that batch's row of ``schedule.table`` (``batches_run`` counts
        the batches applied).

    Attributes
    ----------
    interrupted : bool
        Whether the last ``run`` stopped for a Ctrl-C.
    """

    def __init__(self, network: Network, X: NDArray[Any], T: NDArray[Any], loss: Loss,
                 optimizer: Optimizer, batch: int, interrupt: _StopOnInterrupt,
                 sample_weight: NDArray[np.float64] | None = None,
                 clip: _Clipping = _Clipping(), schedule: _Schedule | None = None) -> None:
        self.network, self.X, self.T, self.loss = network, X, T, loss
        self.batch, self.interrupt, self.clip = batch, interrupt, clip
        self.sample_weight = sample_weight
        self._omega = _row_weights(loss, T, sample_weight)
        self._alpha, self._by_rows = _sklearn_terms(loss)
        self._dense = _dense_layers(network)
        self.interrupted = False
        # a per-batch schedule: batch b of this trainer takes row b of its table
        self._schedule = schedule if schedule is not None and schedule.table is not None \
            else None
        self._dropouts = [layer for layer in network.layers if isinstance(layer, Dropout)]
        # running statistics are written only when a batch's update is applied
        self._batchnorms = [layer for layer in network.layers if isinstance(layer, BatchNorm1d)]
        self._step = optimizer.checked_step(network)   # creates the state, as the C one

    def run(self, orders: NDArray[np.int64] | None, epoch: int, start: int, max_batches: int,
            losses: NDArray[np.float64], catch_sigint: bool = False) -> tuple[int, int]:
        """Train from batch position (epoch, start) for at most ``max_batches`` batches.

        Parameters
        ----------
        orders : ndarray (len(losses), n) of int64, or None
            Each epoch's sample order; None: in order.
        epoch, start : int
            Where to begin: the epoch index (into ``losses``) and its first sample.
        max_batches : int
        losses : ndarray of float64
            ``losses[e]`` accumulates epoch e's batch losses (each times its
            batch's total weight -- its size when unweighted -- for
            ``reduction="mean"``).
        catch_sigint : bool
            Unused: the reference trainer notices Ctrl-C through ``interrupt``.

        Returns
        -------
        (epoch, start) : the position reached.

        Raises
        ------
        FloatingPointError
            ``(message, epoch)`` when a batch's loss is not finite or its
            update was refused; nothing of that batch is applied.
        """
        self.interrupted = False
        for norm in self._batchnorms:
            norm._hold, norm._pending = True, None
        try:
            return self._run(orders, epoch, start, max_batches, losses)
        finally:
            for norm in self._batchnorms:
                norm._hold, norm._pending = False, None

    def _run(self, orders: NDArray[np.int64] | None, epoch: int, start: int,
             max_batches: int, losses: NDArray[np.float64]) -> tuple[int, int]:
        network, X, T, batch = self.network, self.X, self.T, self.batch
        n = X.shape[0]
        mean = self.loss.reduction == "mean"
        ran = 0
        with ieee_scope():                          # the kernels' error state, set once
            while epoch < losses.shape[0] and ran < max_batches:
                if self.interrupt.requested:
                    self.interrupted = True
                    break
                stop = start + batch
                idx: Any = slice(start, stop) if orders is None else orders[epoch, start:stop]
                drawn = [layer.step for layer in self._dropouts]
                if self._schedule is not None:
                    table = self._schedule.table
                    assert table is not None
                    if self._schedule.batches_run >= table.shape[0]:
                        raise ValueError(f"the learning-rate schedule has values for "
                                         f"{table.shape[0]} batches; this is batch "
                                         f"{self._schedule.batches_run + 1}")
                    self._schedule.scheduler._apply_row(  # type: ignore[attr-defined]
                        table[self._schedule.batches_run])
                try:
                    out = network._forward(X[idx], training=True, interrupt=self.interrupt)
                    if self.sample_weight is None:
                        value, grad = self.loss.compute(network.ops, out, T[idx])
                    else:
                        value, grad = self.loss.compute(network.ops, out, T[idx],
                                                        sample_weight=self.sample_weight[idx])
                    if not math.isfinite(value):
                        raise FloatingPointError("training diverged: the loss is not finite",
                                                 epoch)
                    network._backward_no_input_grad(grad, self.interrupt)  # type: ignore[arg-type]
                    if self._alpha:                 # scikit-learn's L2 penalty
                        value += self._penalty(idx, out.shape[0])
                        if not math.isfinite(value):
                            raise FloatingPointError("training diverged: the loss is not "
                                                     "finite", epoch)
                    if self.interrupt.requested:    # the last moment to drop the batch
                        raise _BatchInterrupted
                    if self.clip != _Clipping():    # the gradients, in place
                        self.clip.apply(network.ops, [g for _, _, g in network.parameters()
                                                      if g is not None])
                except (_BatchInterrupted, KeyboardInterrupt) as exc:
                    for layer, count in zip(self._dropouts, drawn):  # the batch drew nothing
                        layer.step = count
                    if isinstance(exc, KeyboardInterrupt):           # a second Ctrl-C
                        raise
                    self.interrupted = True
                    break
                if not self._step():                # refused: weights and state unchanged
                    raise FloatingPointError("training diverged: an update is not finite",
                                             epoch)
                for norm in self._batchnorms:       # the applied batch's statistics
                    norm._commit()
                if not mean:
                    losses[epoch] += value
                elif self._omega is None or self._by_rows:
                    losses[epoch] += value * out.shape[0]
                else:
                    losses[epoch] += value * float(np.sum(self._omega[idx]))
                if self._schedule is not None:
                    self._schedule.batches_run += 1
                ran += 1
                start = stop
                if start >= n:
                    epoch, start = epoch + 1, 0
        return epoch, start

    def _penalty(self, idx: Any, rows: int) -> float:
        """The L2 penalty of the batch ``idx`` of ``rows`` rows, added to its Dense
        layers' dW (``ops.l2_penalty``); returns the penalty of its loss."""
        total = float(rows) if self._omega is None else float(np.sum(self._omega[idx]))
        return float(self.network.ops.l2_penalty(
            [layer.W for layer in self._dense], _weight_grads(self._dense), self._alpha, total))

    def close(self) -> dict[str, Any]:
        """Nothing to free: the layers and the optimizer hold their state already."""
        return {}


class _NativeTrainer:
    """The backend's compiled trainer for one fit, with the bookkeeping around it.

    Makes the optimizer state, and the gradient buffers the C code writes when
    ``gradients`` is set (the L-BFGS objective reads them); a fit's trainer
    keeps the Dense layers' gradients to itself (a large network's update then
    runs inside the dW product, and no whole dW is stored), so ``dW`` and
    ``db`` are left as they were.  Hands ``make_trainer`` plain descriptions
    of the plan's stages; ``close`` gives the dropout steps back to the layers
    and the step count to the optimizer.
    """

    def __init__(self, network: Network, X: NDArray[Any], T: NDArray[Any], loss: Loss,
                 optimizer: Optimizer, batch: int,
                 sample_weight: NDArray[np.float64] | None = None,
                 clip: _Clipping = _Clipping(), schedule: _Schedule | None = None,
                 gradients: bool = False) -> None:
        for layer, _ in network._plan:          # gradient buffers the trainer writes
            if isinstance(layer, Dense) and gradients:
                params = layer.params()
                if layer.dW is None:
                    layer.dW = network.ops.zeros_like(params["W"])
                if "b" in params and layer.db is None:
                    layer.db = network.ops.zeros_like(params["b"])
            elif isinstance(layer, (BatchNorm1d, LayerNorm)) and layer.affine:
                assert layer.weight is not None and layer.bias is not None  # (affine)
                if layer.dweight is None or layer.dbias is None:
                    layer.dweight = network.ops.zeros_like(layer.weight)
                    layer.dbias = network.ops.zeros_like(layer.bias)
        spec, states = optimizer.native_spec(network)
        alpha, by_rows = _sklearn_terms(loss)
        spec = {**spec, "clip_grad_norm": clip.norm, "clip_grad_value": clip.value,
                "l2_penalty": alpha, "loss_by_rows": by_rows}
        # a Flatten has no stage: fit's X was flattened where it entered the network
        self.plan = [(layer, activation) for layer, activation in network._plan
                     if not isinstance(layer, Flatten)]
        stages = [_stage(network, layer, activation, states, gradients)
                  for layer, activation in self.plan]
        self._batchnorms = any(isinstance(layer, BatchNorm1d) for layer, _ in self.plan)
        self.network, self.optimizer = network, optimizer
        self.schedule = schedule if schedule is not None and schedule.table is not None \
            else None
        if self.schedule is not None:            # per-batch values, applied in C
            spec = {**spec, "schedule": {"names": self.schedule.names,
                                         "values": self.schedule.table}}
        self._hypers = optimizer._hypers()       # the values the trainer holds
        self.trainer = network.ops.make_trainer(  # type: ignore[attr-defined]
            stages, loss.kernel, loss.reduction, spec, X, T, batch, loss.kernel_args(),
            sample_weight)

    @property
    def interrupted(self) -> bool:
        return bool(self.trainer.interrupted)

    def run(self, orders: NDArray[np.int64] | None, epoch: int, start: int, max_batches: int,
            losses: NDArray[np.float64], catch_sigint: bool = False) -> tuple[int, int]:
        # the optimizer's current values (an epoch-level schedule or a callback
        # may have changed them since the last call)
        hypers = self.optimizer._hypers()
        if hypers != self._hypers:
            self.trainer.set_hyper(hypers)
            self._hypers = hypers
        try:
            result: tuple[int, int] = self.trainer.run(orders, epoch, start, max_batches,
                                                       losses, catch_sigint)
        finally:     # the counts beside the running statistics C wrote in place
            if self._batchnorms:
                for stage, count in zip(self.plan, self.trainer.batchnorm_counts()):
                    if count is not None:
                        stage[0].num_batches_tracked = int(count)  # type: ignore[attr-defined]
        return result

    def close(self) -> dict[str, Any]:
        # held whole: a Ctrl-C here (the second, once fit's guard has tripped)
        # comes after it, so the counts always match the weights C wrote
        with _DeferInterrupt():
            final: dict[str, Any] = self.trainer.close()
            for stage, step in zip(self.plan, final["dropout_steps"]):
                if step is not None:
                    stage[0].step = step  # type: ignore[attr-defined]
            for stage, count in zip(self.plan, final.get("num_batches_tracked", ())):
                if count is not None:     # the running statistics were written in place
                    stage[0].num_batches_tracked = int(count)  # type: ignore[attr-defined]
            self.optimizer.native_done(final["step"])
            if self.schedule is not None:
                self.schedule.batches_run = int(final["scheduled_batches"])
        return final


def _stage(network: Network, layer: Layer, activation: Activation | None,
           states: dict[str, list[Any]], gradients: bool = True) -> dict[str, Any]:
    """Plain description of one plan entry for the native trainer (a Dense
    layer's gradient arrays only with ``gradients``)."""
    if isinstance(layer, Dense):
        key = network.layers.index(layer)      # parameter keys are "<layer index>.W"
        return {"kind": "dense", "W": layer.W, "b": layer.b,
                "dW": layer.dW if gradients else None,
                "db": layer.db if layer.bias and gradients else None,
                "activation": activation.kind if activation else "identity",
                "alpha": activation.alpha if activation else 0.0,
                "beta": activation.beta if activation else 0.0,
                "state_W": states[f"{key}.W"],
                "state_b": states.get(f"{key}.b", [None] * len(states[f"{key}.W"]))}
    if isinstance(layer, Activation):
        return {"kind": "activation", "activation": layer.kind, "alpha": layer.alpha,
                "beta": layer.beta}
    if isinstance(layer, Dropout):
        return {"kind": "dropout", "p": layer.p, "seed": layer.seed, "step": layer.step}
    if isinstance(layer, (BatchNorm1d, LayerNorm)):
        key = network.layers.index(layer)
        n_state = len(states[f"{key}.weight"]) if layer.affine else 0
        desc = {"kind": "batchnorm" if isinstance(layer, BatchNorm1d) else "layernorm",
                "eps": layer.eps, "weight": layer.weight, "bias": layer.bias,
                "dweight": layer.dweight, "dbias": layer.dbias,
                "state_W": states[f"{key}.weight"] if layer.affine else [None] * n_state,
                "state_b": states[f"{key}.bias"] if layer.affine else [None] * n_state}
        if isinstance(layer, BatchNorm1d):
            desc.update(momentum=layer.momentum, running_mean=layer.running_mean,
                        running_var=layer.running_var,
                        num_batches_tracked=layer.num_batches_tracked)
        return desc
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


# ------------------------------------------------- loss and gradient, for L-BFGS
class _LossAndGradients:
    """scikit-learn's ``_loss_grad_lbfgs``: the loss (with the L2 penalty) and its
    gradient over a whole data set, one forward and backward pass, no update.

    Made once per fit (the data checked and converted once, the compiled
    backend's trainer and its workspace allocated once) and called many times
    with new parameters, as ``scipy.optimize.minimize`` calls its ``fun``.  On a
    backend with a native trainer that knows every piece each call is one C
    call (``Trainer.gradient``, the trainer's own batch code: the same
    arithmetic as a training batch of all the rows); otherwise the reference
    in Python (the layers' forward and backward, ``loss.compute`` and
    ``ops.l2_penalty``).

    Parameters
    ----------
    network : Network
    X : array-like (n, n_inputs)
    T : array-like
        The targets, as ``fit`` takes them.
    loss : Loss
        Its ``l2_penalty`` is the penalty's ``alpha``.
    sample_weight : array-like (n,), optional
        The loss's weights (scikit-learn's: every divisor becomes their sum).

    Notes
    -----
    The gradient is that of the training-mode forward pass: a Dropout layer
    draws a new mask per call (and advances its step), BatchNorm1d uses the
    data's statistics and leaves its running ones.  The trainer points at
    the network's parameter arrays: ``value_and_grad`` writes new values
    into them in place, never replaces them.
    """

    def __init__(self, network: Network, X: ArrayLike, T: ArrayLike, loss: Loss,
                 sample_weight: ArrayLike | None = None) -> None:
        from .optimizers import SGD
        loss = get_loss(loss)
        Xc, Tc = network._check_data(X, T, loss)
        self.network, self.loss = network, loss
        self.weights = fit_weights(loss, Tc, sample_weight, None, network.n_outputs)
        self._omega = _row_weights(loss, Tc, self.weights)
        self._alpha, _ = _sklearn_terms(loss)
        self._dense = _dense_layers(network)
        self.X, self.T = Xc, Tc
        self._native: _NativeTrainer | None = None
        optimizer = SGD(lr=0.0)     # no update is ever applied; its spec fills the C one
        if getattr(network.ops, "make_trainer", None) is not None:
            reasons = _user_code(network, loss, optimizer)
            if not reasons:
                self._native = _NativeTrainer(network, Xc, Tc, loss, optimizer, Xc.shape[0],
                                              self.weights, gradients=True)
            else:
                warnings.warn(f"{'; '.join(reasons)}: the loss and gradients run in Python on "
                              f"the {network.ops.name!r} backend (the built-in layers still "
                              "run its compiled kernels)", UserWarning, stacklevel=3)
        self._batchnorms = [layer for layer in network.layers if isinstance(layer, BatchNorm1d)]

    def value_and_grad(self, params: ArrayLike | None = None
                       ) -> tuple[float, list[tuple[NDArray[Any], NDArray[Any] | None]]]:
        """The loss and its gradient at ``params``.

        Parameters
        ----------
        params : array-like, 1-D, optional
            New values of the Dense layers' parameters, packed as scikit-learn's
            ``_pack``: every W raveled (layer order), then every b; written into
            the layers in place.  None: the current values.

        Returns
        -------
        value : float
            The mean loss over the data (weighted: over the sum of the
            weights) plus ``0.5 * alpha * sum ||W||^2 / total``.
        grads : list of (dW, db)
            Per Dense layer, in order, copies of shape W's and b's (db None for a
            layer without bias): ``(delta^T A + alpha W) / total`` and
            ``sum(delta) / total``.

        Raises
        ------
        FloatingPointError
            The loss is NaN or infinite.
        """
        if params is not None:
            self.set_params(params)
        value = self._run()
        return value, [(dW.copy(), None if layer.db is None else layer.db.copy())
                       for dW, layer in zip(_weight_grads(self._dense), self._dense)]

    def value_and_packed_grad(self, params: ArrayLike) -> tuple[float, NDArray[np.float64]]:
        """``value_and_grad`` with the gradient packed as ``params`` (float64):
        the function ``scipy.optimize.minimize(..., jac=True)`` calls."""
        self.set_params(params)
        value = self._run()
        return value, _packed(_weight_grads(self._dense)
                              + [layer.db for layer in self._dense if layer.db is not None])

    def packed_params(self) -> NDArray[np.float64]:
        """The Dense layers' parameters, packed as ``set_params`` takes them."""
        return _packed([layer.W for layer in self._dense]
                       + [layer.b for layer in self._dense if layer.b is not None])

    def set_params(self, params: ArrayLike) -> None:
        """Write ``params`` (packed as scikit-learn's ``_pack``) into the Dense layers."""
        flat = np.asarray(params)
        sizes = [layer.W.size for layer in self._dense]
        sizes += [layer.b.size for layer in self._dense if layer.b is not None]
        if flat.ndim != 1 or flat.shape[0] != sum(sizes):
            raise ValueError(f"params must be a 1-D array of {sum(sizes)} values, got shape "
                             f"{flat.shape}")
        at = 0
        for layer in self._dense:
            layer.W[...] = flat[at:at + layer.W.size].reshape(layer.W.shape)
            at += layer.W.size
        for layer in self._dense:
            if layer.b is not None:
                layer.b[...] = flat[at:at + layer.b.size]
                at += layer.b.size

    def _run(self) -> float:
        if self._native is not None:
            return float(self._native.trainer.gradient())
        network, loss = self.network, self.loss
        for norm in self._batchnorms:       # the running statistics stay as they are
            norm._hold, norm._pending = True, None
        try:
            with ieee_scope():
                out = network._forward(self.X, training=True)
                if self.weights is None:
                    value, grad = loss.compute(network.ops, out, self.T)
                else:
                    value, grad = loss.compute(network.ops, out, self.T,
                                               sample_weight=self.weights)
                if not math.isfinite(value):
                    raise FloatingPointError("the loss is NaN or infinite")
                network._backward_no_input_grad(grad)  # type: ignore[arg-type]
                if self._alpha:
                    total = (float(self.X.shape[0]) if self._omega is None
                             else float(np.sum(self._omega)))
                    value += float(network.ops.l2_penalty(
                        [layer.W for layer in self._dense], _weight_grads(self._dense),
                        self._alpha, total))
                    if not math.isfinite(value):
                        raise FloatingPointError("the loss is NaN or infinite")
        finally:
            for norm in self._batchnorms:
                norm._hold, norm._pending = False, None
        return float(value)

    def close(self) -> None:
        """Free the compiled trainer's workspace (and give the dropout steps back)."""
        if self._native is not None:
            self._native.close()
            self._native = None


def loss_and_gradients(network: Network, X: ArrayLike, T: ArrayLike, loss: Loss,
                       sample_weight: ArrayLike | None = None
                       ) -> tuple[float, list[tuple[NDArray[Any], NDArray[Any] | None]]]:
    """The loss (with ``loss.l2_penalty``) and its gradient over all of (X, T) at the
    network's current parameters: one ``_LossAndGradients`` call (make one object
    per fit to call it many times).

    Parameters
    ----------
    network : Network
    X : array-like (n, n_inputs)
    T : array-like
    loss : Loss
    sample_weight : array-like (n,), optional

    Returns
    -------
    value : float
    grads : list of (dW, db), per Dense layer in order (see
        ``_LossAndGradients.value_and_grad``).
    """
    computer = _LossAndGradients(network, X, T, loss, sample_weight)
    try:
        return computer.value_and_grad()
    finally:
        computer.close()
