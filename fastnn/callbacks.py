"""Callbacks: code of yours that ``fit`` runs between epochs (Keras's hooks).

Why it is built this way: ``fit``'s driver (fastnn.training) already runs
observers of the epochs between the trainer's calls -- the History, the
validation pass, the progress display, early stopping.  A ``Callback`` is
that same observer made public, with Keras's four hooks; the built-in ones
(``EarlyStopping``, ``ModelCheckpoint``, ``CSVLogger``, ``LambdaCallback``)
and the driver's own observers are all Callbacks, called in one loop.  The
hooks run in Python between epochs, never inside one, so the compiled
backend still trains each epoch whole in C (one call per epoch while a
callback is present: it may look at or change the weights after any epoch).
This module imports nothing above the optimizers: it works on the network
and History that ``fit`` hands it.
"""

from __future__ import annotations

import csv
import math
import os
from typing import TYPE_CHECKING, Any, Callable

from numpy.typing import NDArray

from ._interrupts import _DeferInterrupt
from ._validation import check_bool, check_float, check_int

if TYPE_CHECKING:  # the network and History are handed in by fit
    from .network import Network
    from .training import History

__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint", "CSVLogger", "LambdaCallback"]

Logs = dict[str, float]


class Callback:
    """Base class: override any of the hooks; ``fit(..., callbacks=[...])`` calls them.

    ``logs`` of an epoch hold its training ``loss``, the metrics asked for
    (``accuracy``, ...), ``val_loss`` and ``val_*`` with validation data, and
    ``lr`` (the learning rate the epoch started with).  Epochs count from 0.

    Attributes
    ----------
    network : Network
        Set by ``fit`` before ``on_train_begin``.  Setting
        ``self.network.stop_training = True`` ends training after the
        current epoch.
    history : History
        The History ``fit`` is filling (set with ``network``).

    Notes
    -----
    ``on_train_end`` is called when ``fit`` returns (also after Ctrl-C,
    with ``history.interrupted`` set), not when it raises.  A hook that
    raises stops ``fit`` with its exception.
    """

    network: Network
    history: History

    def set_fit(self, network: Network, history: History) -> None:
        """Called by ``fit`` before training: the network trained and its History."""
        self.network = network
        self.history = history

    def on_train_begin(self, logs: Logs) -> None:
        """Before the first epoch (``logs`` is empty)."""

    def on_epoch_begin(self, epoch: int, logs: Logs) -> None:
        """Before epoch ``epoch`` (``logs`` is empty)."""

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        """After epoch ``epoch``, with its records; a callback may add to ``logs``."""

    def on_train_end(self, logs: Logs) -> None:
        """After the last epoch, with its records (empty when no epoch ran)."""

    def quiet_epochs(self) -> int | None:
        """Epochs the trainer may run before the next hook call: 1 (every epoch)."""
        return 1


def _mode(monitor: str, mode: str) -> str:
    """"min" or "max" for ``mode`` ("auto": "max" for accuracies, as Keras)."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        return "max" if "acc" in monitor else "min"
    return mode


def _monitored(owner: str, monitor: str, logs: Logs) -> float:
    """The monitored value of ``logs``, or a ValueError naming what is there."""
    if monitor not in logs:
        hint = (" (pass validation_data or validation_split, or monitor 'loss')"
                if monitor.startswith("val_") else "")
        raise ValueError(f"{owner} monitors {monitor!r}, which the epoch's logs do not have "
                         f"(they have {sorted(logs)}){hint}")
    return float(logs[monitor])


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has stopped improving.

    An epoch improves when its value beats the best so far by more than
    ``min_delta`` (lower for mode "min", higher for "max"); after
    ``patience`` epochs in a row without improvement training stops
    (``patience=0``: at the first).  ``history.best_epoch`` and
    ``history.stopped_epoch`` record where.

    Parameters
    ----------
    monitor : str, default "val_loss"
        A key of the epoch's logs.
    min_delta : float >= 0, default 0.0
    patience : int >= 0, default 0
    mode : {"auto", "min", "max"}, default "auto"
        "auto": "max" when ``monitor`` names an accuracy, else "min".
    restore_best_weights : bool, default False
        When ``fit`` ends (stopped early or not, but not after Ctrl-C), copy
        the best epoch's parameters back in place (arrays keep their
        identity).  The optimizer state is not rolled back.

    Attributes
    ----------
    best : float
    best_epoch, stopped_epoch : int or None
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 mode: str = "auto", restore_best_weights: bool = False) -> None:
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a key of the logs such as 'val_loss', got "
                            f"{monitor!r}")
        self.monitor = monitor
        self.min_delta = check_float(min_delta, "min_delta", minimum=0.0)
        self.patience = check_int(patience, "patience", minimum=0)
        self.mode = _mode(monitor, mode)
        self.restore_best_weights = check_bool(restore_best_weights, "restore_best_weights")
        self._reset()

    def _reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self.best_params: list[NDArray[Any]] | None = None

    def on_train_begin(self, logs: Logs) -> None:
        self._reset()

    def _improves(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        value = _monitored("EarlyStopping", self.monitor, logs)
        if self._improves(value):
            self.best, self.wait, self.best_epoch = value, 0, epoch
            self.history.best_epoch = epoch
            if self.restore_best_weights:
                self.best_params = [p.copy() for _, p, _ in self.network.parameters()]
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = self.history.stopped_epoch = epoch
            self.network.stop_training = True

    def on_train_end(self, logs: Logs) -> None:
        if not self.history.interrupted:
            self.restore()

    def restore(self) -> None:
        """Copy the best epoch's parameters back in place (when it is not the last)."""
        if (self.best_params is None or not self.history.epochs
                or self.best_epoch == self.history.epochs[-1]):
            return
        with _DeferInterrupt():                 # all of the best epoch's, or none
            for (_, param, _), saved in zip(self.network.parameters(), self.best_params):
                param[...] = saved              # in place: arrays keep their identity


class ModelCheckpoint(Callback):
    """Save the network after each epoch (or only when ``monitor`` improves).

    Each save is atomic: ``Network.save`` writes a temporary file beside
    ``path`` and renames it over ``path`` (``os.replace``), so a crash leaves
    the previous file whole.

    Parameters
    ----------
    path : str or os.PathLike
        The file (.npz); may hold ``{epoch}`` (from 1, as Keras) and any key of
        the logs, e.g. ``"ckpt-{epoch:03d}-{val_loss:.3f}.npz"``.
    monitor : str, default "val_loss"
        Read only with ``save_best_only``.
    save_best_only : bool, default False
        Save only when the epoch beats the best value so far.
    mode : {"auto", "min", "max"}, default "auto"

    Attributes
    ----------
    best : float
    saved : list of str
        The paths written, in order.
    """

    def __init__(self, path: str | os.PathLike[str], monitor: str = "val_loss",
                 save_best_only: bool = False, mode: str = "auto") -> None:
        self.path = os.fspath(path)
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a key of the logs, got {monitor!r}")
        self.monitor = monitor
        self.save_best_only = check_bool(save_best_only, "save_best_only")
        self.mode = _mode(monitor, mode)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.saved: list[str] = []

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        if self.save_best_only:
            value = _monitored("ModelCheckpoint", self.monitor, logs)
            better = value < self.best if self.mode == "min" else value > self.best
            if not better:
                return
            self.best = value
        try:
            path = self.path.format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"ModelCheckpoint path {self.path!r} could not be filled from "
                             f"the epoch and the logs {sorted(logs)}: {exc}") from None
        self.network.save(path)        # atomic: a temporary file, then os.replace
        self.saved.append(path)


class CSVLogger(Callback):
    """Write one row per epoch to a CSV file: ``epoch`` (from 0), then the logs' keys.

    The header row (the keys sorted, as Keras) is written with the first
    epoch; each epoch's row is appended and the file closed again at once, so
    the rows written survive a crash or an exception in ``fit``.

    Parameters
    ----------
    path : str or os.PathLike
    separator : str, default ","
    append : bool, default False
        Keep the rows of an existing file (its header must match the logs).
    """

    def __init__(self, path: str | os.PathLike[str], separator: str = ",",
                 append: bool = False) -> None:
        self.path = os.fspath(path)
        self.separator = separator
        self.append = check_bool(append, "append")
        self._header: list[str] | None = None

    def on_train_begin(self, logs: Logs) -> None:
        self._header = None
        if self.append and os.path.exists(self.path):
            with open(self.path, newline="", encoding="utf-8") as f:
                self._header = next(csv.reader(f, delimiter=self.separator), None)

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        keys = sorted(logs)
        header = ["epoch", *keys]
        rows = [[str(epoch), *(repr(float(logs[k])) for k in keys)]]
        mode = "a"
        if self._header is None:
            rows.insert(0, header)
            self._header, mode = header, "a" if self.append else "w"
        elif self._header != header:
            raise ValueError(f"CSVLogger: the logs' keys {keys} differ from the file's columns "
                             f"{self._header[1:]}")
        with open(self.path, mode, newline="", encoding="utf-8") as f:
            csv.writer(f, delimiter=self.separator).writerows(rows)


class LambdaCallback(Callback):
    """A callback from functions: each hook given is called with the hook's arguments.

    Parameters
    ----------
    on_epoch_begin : callable (epoch, logs), optional
    on_epoch_end : callable (epoch, logs), optional
    on_train_begin : callable (logs), optional
    on_train_end : callable (logs), optional

    Examples
    --------
    >>> import fastnn
    >>> from fastnn.callbacks import LambdaCallback
    >>> X, y = fastnn.datasets.xor()
    >>> net = fastnn.Network([fastnn.Dense(2, 4), fastnn.Tanh(), fastnn.Dense(4, 1)], seed=0)
    >>> seen = []
    >>> _ = net.fit(X, y, loss="mse", optimizer="sgd", epochs=3,
    ...             callbacks=[LambdaCallback(on_epoch_end=lambda e, logs: seen.append(e))])
    >>> seen
    [0, 1, 2]
    """

    def __init__(self, on_epoch_begin: Callable[[int, Logs], Any] | None = None,
                 on_epoch_end: Callable[[int, Logs], Any] | None = None,
                 on_train_begin: Callable[[Logs], Any] | None = None,
                 on_train_end: Callable[[Logs], Any] | None = None) -> None:
        for name, fn in (("on_epoch_begin", on_epoch_begin), ("on_epoch_end", on_epoch_end),
                         ("on_train_begin", on_train_begin), ("on_train_end", on_train_end)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be callable or None, got {fn!r}")
        self._hooks: dict[str, Any] = {"epoch_begin": on_epoch_begin,
                                       "epoch_end": on_epoch_end,
                                       "train_begin": on_train_begin,
                                       "train_end": on_train_end}

    def on_epoch_begin(self, epoch: int, logs: Logs) -> None:
        if self._hooks["epoch_begin"] is not None:
            self._hooks["epoch_begin"](epoch, logs)

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        if self._hooks["epoch_end"] is not None:
            self._hooks["epoch_end"](epoch, logs)

    def on_train_begin(self, logs: Logs) -> None:
        if self._hooks["train_begin"] is not None:
            self._hooks["train_begin"](logs)

    def on_train_end(self, logs: Logs) -> None:
        if self._hooks["train_end"] is not None:
            self._hooks["train_end"](logs)
