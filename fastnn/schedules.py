"""Learning-rate schedules: PyTorch's ``torch.optim.lr_scheduler``, for ``fit``.

Why it is built this way: a schedule changes an optimizer's hyper-parameters
(``lr``; OneCycleLR also SGD's ``momentum`` or Adam's ``betas[0]``) between
updates, exactly as PyTorch's scheduler changes its param group, with the
same constructor arguments (less the optimizer, which ``fit`` binds on its
first use) and the same arithmetic: each ``step`` evaluates PyTorch's own
recursive ``get_lr`` in Python floats, so the sequence of learning rates is
PyTorch's bit for bit.  The schedule holds its own state (``last_epoch``,
the base rate), so a second ``fit`` with the same schedule continues it.

``fit(..., lr_scheduler=...)`` steps a schedule where a PyTorch loop
would: the epoch-based ones once after each epoch (the compiled trainer is
re-entered with the new values between epochs) and ``OneCycleLR`` after each
batch -- for it ``fit`` computes the values of every batch of the run up
front (``_batch_table``), and both trainers take them from that table (the
compiled one in C, batch by batch), so a whole epoch still runs in one call.
This module imports nothing from fastnn but the validation helpers: it works
on any optimizer with an ``lr`` attribute.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Iterable

import numpy as np
from numpy.typing import NDArray

from ._validation import check_bool, check_float, check_int

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR",
           "LinearLR", "OneCycleLR", "ReduceLROnPlateau"]


class LRScheduler:
    """Base class: PyTorch's ``LRScheduler`` without the optimizer argument.

    ``fit`` binds the schedule to its optimizer on first use (that sets the
    learning rate of the first epoch, as PyTorch's constructor does) and
    calls ``step()`` after each epoch.  A schedule belongs to one optimizer.

    Attributes
    ----------
    last_epoch : int
        The number of ``step`` calls since binding (-1: not bound yet).
    base_lr : float or None
        The optimizer's ``lr`` when the schedule was bound (PyTorch's
        ``initial_lr``).
    optimizer : Optimizer or None
        The optimizer scheduled.
    """

    #: True for a schedule that steps after every batch (OneCycleLR)
    per_batch = False

    def __init__(self) -> None:
        self.last_epoch = -1
        self.base_lr: float | None = None
        self.optimizer: Any = None
        self._is_initial = False

    def bind(self, optimizer: Any) -> None:
        """Attach to ``optimizer`` (a second call with the same one does nothing).

        Sets ``base_lr`` and takes the initial step (``last_epoch`` 0), as
        PyTorch's constructor does.

        Raises
        ------
        ValueError
            The schedule already schedules another optimizer, or the
            optimizer lacks a hyper-parameter the schedule changes.
        """
        if self.optimizer is optimizer:
            return
        if self.optimizer is not None:
            raise ValueError(f"this {type(self).__name__} already schedules another optimizer "
                             f"({type(self.optimizer).__name__}); make one schedule per "
                             "optimizer")
        if not isinstance(getattr(optimizer, "lr", None), (int, float)):
            raise ValueError(f"{type(self).__name__} schedules the learning rate, but "
                             f"{type(optimizer).__name__} has no lr")
        self._check(optimizer)
        self.optimizer = optimizer
        self._setup()
        self.base_lr = float(optimizer.lr)
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def _check(self, optimizer: Any) -> None:
        """Refuse an optimizer the schedule cannot drive (before anything changes)."""

    def _setup(self) -> None:
        """Set what binding sets before the initial step (OneCycleLR's rates)."""

    @property
    def lr(self) -> float:
        """The optimizer's current learning rate."""
        return float(self.optimizer.lr)

    def get_last_lr(self) -> list[float]:
        """The last learning rate computed (a list of one, as PyTorch's)."""
        return [self.lr]

    def get_lr(self) -> float:
        """The learning rate after the step just counted (PyTorch's recursive form)."""
        raise NotImplementedError

    def step(self) -> None:
        """Count one epoch and set the optimizer's learning rate for the next."""
        self._require_bound()
        self.last_epoch += 1
        self.optimizer.lr = self.get_lr()

    def _require_bound(self) -> None:
        if self.optimizer is None:
            raise RuntimeError(f"this {type(self).__name__} has no optimizer yet: pass it to "
                               "fit(..., lr_scheduler=...), which binds it, or call bind")

    def state_dict(self) -> dict[str, Any]:
        """The schedule's state (everything but the optimizer), as PyTorch's."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict``."""
        self.__dict__.update({k: v for k, v in state.items() if k != "optimizer"})

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._args().items())
        return f"{type(self).__name__}({args})"

    def _args(self) -> dict[str, Any]:
        return {}


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs.

    Parameters
    ----------
    step_size : int >= 1
    gamma : float >= 0, default 0.1

    Examples
    --------
    >>> import fastnn
    >>> from fastnn.schedules import StepLR
    >>> opt = fastnn.SGD(lr=1.0)
    >>> schedule = StepLR(step_size=2, gamma=0.5)
    >>> schedule.bind(opt)
    >>> rates = [opt.lr]
    >>> for _ in range(4):
    ...     schedule.step()
    ...     rates.append(opt.lr)
    >>> rates
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    def __init__(self, step_size: int, gamma: float = 0.1) -> None:
        super().__init__()
        self.step_size = check_int(step_size, "step_size", minimum=1)
        self.gamma = check_float(gamma, "gamma", minimum=0.0)

    def _args(self) -> dict[str, Any]:
        return {"step_size": self.step_size, "gamma": self.gamma}

    def get_lr(self) -> float:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self.optimizer.lr
        return self.optimizer.lr * self.gamma


class MultiStepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` at each epoch of ``milestones``.

    Parameters
    ----------
    milestones : iterable of int >= 0
        Epoch indices (a repeated one multiplies by ``gamma`` once per repeat).
    gamma : float >= 0, default 0.1
    """

    def __init__(self, milestones: Iterable[int], gamma: float = 0.1) -> None:
        super().__init__()
        try:
            values = list(milestones)
        except TypeError:
            raise TypeError(f"milestones must be a list of epoch indices, got "
                            f"{milestones!r}") from None
        self.milestones = Counter(check_int(m, "each milestone", minimum=0) for m in values)
        self.gamma = check_float(gamma, "gamma", minimum=0.0)

    def _args(self) -> dict[str, Any]:
        return {"milestones": sorted(self.milestones.elements()), "gamma": self.gamma}

    def get_lr(self) -> float:
        if self.last_epoch not in self.milestones:
            return self.optimizer.lr
        return self.optimizer.lr * self.gamma ** self.milestones[self.last_epoch]


class ExponentialLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every epoch.

    Parameters
    ----------
    gamma : float >= 0
    """

    def __init__(self, gamma: float) -> None:
        super().__init__()
        self.gamma = check_float(gamma, "gamma", minimum=0.0)

    def _args(self) -> dict[str, Any]:
        return {"gamma": self.gamma}

    def get_lr(self) -> float:
        if self._is_initial:
            return self.optimizer.lr
        return self.optimizer.lr * self.gamma


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from the base rate to ``eta_min`` over ``T_max`` epochs.

    lr_t = eta_min + (base - eta_min) (1 + cos(pi t / T_max)) / 2, computed by
    PyTorch's recursive form (so beyond ``T_max`` it rises again, as PyTorch's).

    Parameters
    ----------
    T_max : int >= 1
    eta_min : float >= 0, default 0
    """

    def __init__(self, T_max: int, eta_min: float = 0.0) -> None:
        super().__init__()
        self.T_max = check_int(T_max, "T_max", minimum=1)
        self.eta_min = check_float(eta_min, "eta_min", minimum=0.0)

    def _args(self) -> dict[str, Any]:
        return {"T_max": self.T_max, "eta_min": self.eta_min}

    def get_lr(self) -> float:
        lr, base, t, T = self.optimizer.lr, self.base_lr, self.last_epoch, self.T_max
        assert base is not None
        if self._is_initial:
            return lr
        if (t - 1 - T) % (2 * T) == 0:
            return lr + (base - self.eta_min) * (1 - math.cos(math.pi / T)) / 2
        return ((1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
                * (lr - self.eta_min) + self.eta_min)


class LinearLR(LRScheduler):
    """Scale the learning rate linearly from ``start_factor`` to ``end_factor``
    of the base rate over ``total_iters`` epochs.

    Parameters
    ----------
    start_factor : float in (0, 1], default 1/3
    end_factor : float in [0, 1], default 1.0
    total_iters : int >= 1, default 5
    """

    def __init__(self, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5) -> None:
        super().__init__()
        self.start_factor = check_float(start_factor, "start_factor", above=0.0, maximum=1.0)
        self.end_factor = check_float(end_factor, "end_factor", minimum=0.0, maximum=1.0)
        self.total_iters = check_int(total_iters, "total_iters", minimum=1)

    def _args(self) -> dict[str, Any]:
        return {"start_factor": self.start_factor, "end_factor": self.end_factor,
                "total_iters": self.total_iters}

    def get_lr(self) -> float:
        lr = self.optimizer.lr
        if self.last_epoch == 0:
            return lr * self.start_factor
        if self._is_initial or self.last_epoch > self.total_iters:
            return lr
        return lr * (1.0 + (self.end_factor - self.start_factor)
                     / (self.total_iters * self.start_factor
                        + (self.last_epoch - 1) * (self.end_factor - self.start_factor)))


class OneCycleLR(LRScheduler):
    """The 1cycle policy: the rate rises from ``max_lr / div_factor`` to ``max_lr``
    over ``pct_start`` of ``total_steps`` batches, then falls to
    ``max_lr / div_factor / final_div_factor``; the momentum moves the other way.

    Steps after every batch (``fit`` computes the whole run's values up front
    and hands them to the trainer).  With ``cycle_momentum`` it drives SGD's
    ``momentum`` or Adam's ``betas[0]`` (an optimizer with neither is
    refused), as PyTorch does.

    Parameters
    ----------
    max_lr : float > 0
    total_steps : int >= 1
        The number of batches of the cycle; the fits using the schedule may
        run at most this many batches in all.
    pct_start : float in [0, 1], default 0.3
    anneal_strategy : {"cos", "linear"}, default "cos"
    cycle_momentum : bool, default True
    base_momentum, max_momentum : float in [0, 1], defaults 0.85, 0.95
    div_factor : float > 0, default 25.0
    final_div_factor : float > 0, default 1e4
    three_phase : bool, default False
    """

    per_batch = True

    def __init__(self, max_lr: float, total_steps: int, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True,
                 base_momentum: float = 0.85, max_momentum: float = 0.95,
                 div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False) -> None:
        super().__init__()
        self.max_lr = check_float(max_lr, "max_lr", above=0.0)
        self.total_steps = check_int(total_steps, "total_steps", minimum=1)
        self.pct_start = check_float(pct_start, "pct_start", minimum=0.0, maximum=1.0)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be 'cos' or 'linear', got "
                             f"{anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        self.cycle_momentum = check_bool(cycle_momentum, "cycle_momentum")
        self.base_momentum = check_float(base_momentum, "base_momentum", minimum=0.0,
                                         maximum=1.0)
        self.max_momentum = check_float(max_momentum, "max_momentum", minimum=0.0,
                                        maximum=1.0)
        self.div_factor = check_float(div_factor, "div_factor", above=0.0)
        self.final_div_factor = check_float(final_div_factor, "final_div_factor", above=0.0)
        self.three_phase = check_bool(three_phase, "three_phase")
        self.use_beta1 = False
        T, p = self.total_steps, self.pct_start
        if three_phase:
            self._phases = [
                (float(p * T) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (float(2 * p * T) - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                (T - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:
            self._phases = [
                (float(p * T) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (T - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]
        self._rates = {"max_lr": self.max_lr, "initial_lr": self.max_lr / self.div_factor}
        self._rates["min_lr"] = self._rates["initial_lr"] / self.final_div_factor
        self._rates.update(max_momentum=self.max_momentum, base_momentum=self.base_momentum)

    def _args(self) -> dict[str, Any]:
        return {"max_lr": self.max_lr, "total_steps": self.total_steps,
                "pct_start": self.pct_start, "anneal_strategy": self.anneal_strategy,
                "cycle_momentum": self.cycle_momentum, "three_phase": self.three_phase}

    def _check(self, optimizer: Any) -> None:
        if not self.cycle_momentum:
            return
        if hasattr(optimizer, "betas"):
            self.use_beta1 = True
        elif not hasattr(optimizer, "momentum"):
            raise ValueError(f"OneCycleLR(cycle_momentum=True) cycles the momentum, but "
                             f"{type(optimizer).__name__} has neither momentum (SGD) nor "
                             "betas (Adam); pass cycle_momentum=False")

    def _setup(self) -> None:
        if self.cycle_momentum:
            self._set_momentum(self.max_momentum)

    @property
    def hyper_names(self) -> tuple[str, ...]:
        """The optimizer hyper-parameters set per batch, by the C table's names."""
        if not self.cycle_momentum:
            return ("lr",)
        return ("lr", "beta1" if self.use_beta1 else "momentum")

    def _set_momentum(self, value: float) -> None:
        if self.use_beta1:
            self.optimizer.betas = (value, *self.optimizer.betas[1:])
        else:
            self.optimizer.momentum = value

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _values(self, step_num: int) -> tuple[float, float | None]:
        """(lr, momentum or None) at step ``step_num`` (PyTorch's get_lr)."""
        if step_num > self.total_steps:
            raise ValueError(f"OneCycleLR was stepped {step_num} times but total_steps is "
                             f"{self.total_steps}")
        start_step = 0.0
        for i, (end_step, lr0, lr1, m0, m1) in enumerate(self._phases):
            if step_num <= end_step or i == len(self._phases) - 1:
                pct = (step_num - start_step) / (end_step - start_step)
                lr = self._anneal(self._rates[lr0], self._rates[lr1], pct)
                momentum = (self._anneal(self._rates[m0], self._rates[m1], pct)
                            if self.cycle_momentum else None)
                return lr, momentum
            start_step = end_step
        raise AssertionError("unreachable")

    def get_lr(self) -> float:
        lr, momentum = self._values(self.last_epoch)
        if momentum is not None:
            self._set_momentum(momentum)
        return lr

    def steps_left(self) -> int:
        """How many more batches the cycle allows."""
        self._require_bound()
        return self.total_steps - self.last_epoch

    def _batch_table(self, batches: int) -> NDArray[np.float64]:
        """The values of the next ``batches`` batches: rows (lr[, momentum]), as
        ``hyper_names``; nothing changes (``_advance`` records the batches run)."""
        self._require_bound()
        if batches > self.steps_left():
            raise ValueError(f"OneCycleLR(total_steps={self.total_steps}) has "
                             f"{self.steps_left()} steps left but this fit runs {batches} "
                             "batches (epochs x batches per epoch); give total_steps = "
                             "epochs * ceil(n_samples / batch_size)")
        rows = [self._values(self.last_epoch + i) for i in range(batches)]
        return np.array([r if r[1] is not None else r[:1] for r in rows], dtype=np.float64)

    def _apply_row(self, row: NDArray[np.float64]) -> None:
        """Set the optimizer's values from one row of ``_batch_table``."""
        self.optimizer.lr = float(row[0])
        if self.cycle_momentum:
            self._set_momentum(float(row[1]))

    def _advance(self, batches: int) -> None:
        """Record ``batches`` steps (one per batch run) at once."""
        for _ in range(batches):
            self.step()


class ReduceLROnPlateau(LRScheduler):
    """Multiply the learning rate by ``factor`` once the monitored value has not
    improved for ``patience`` epochs.

    ``fit`` steps it after each epoch on ``val_loss`` when there is validation
    data, else on the epoch's training ``loss``; ``step(value)`` does it by hand.

    Parameters
    ----------
    mode : {"min", "max"}, default "min"
    factor : float in [0, 1), default 0.1
    patience : int >= 0, default 10
    threshold : float >= 0, default 1e-4
    threshold_mode : {"rel", "abs"}, default "rel"
    cooldown : int >= 0, default 0
    min_lr : float >= 0, default 0
    eps : float >= 0, default 1e-8
        A reduction smaller than this is skipped.
    """

    def __init__(self, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float = 0.0, eps: float = 1e-8) -> None:
        super().__init__()
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.mode, self.threshold_mode = mode, threshold_mode
        self.factor = check_float(factor, "factor", minimum=0.0, below=1.0)
        self.patience = check_int(patience, "patience", minimum=0)
        self.threshold = check_float(threshold, "threshold", minimum=0.0)
        self.cooldown = check_int(cooldown, "cooldown", minimum=0)
        self.min_lr = check_float(min_lr, "min_lr", minimum=0.0)
        self.eps = check_float(eps, "eps", minimum=0.0)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def _args(self) -> dict[str, Any]:
        return {"mode": self.mode, "factor": self.factor, "patience": self.patience,
                "threshold": self.threshold, "threshold_mode": self.threshold_mode,
                "cooldown": self.cooldown, "min_lr": self.min_lr}

    def bind(self, optimizer: Any) -> None:
        """Attach to ``optimizer``; unlike the others it takes no initial step."""
        if self.optimizer is optimizer:
            return
        if self.optimizer is not None:
            raise ValueError("this ReduceLROnPlateau already schedules another optimizer "
                             f"({type(self.optimizer).__name__}); make one schedule per "
                             "optimizer")
        if not isinstance(getattr(optimizer, "lr", None), (int, float)):
            raise ValueError(f"ReduceLROnPlateau schedules the learning rate, but "
                             f"{type(optimizer).__name__} has no lr")
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr)
        self.last_epoch = 0

    def _is_better(self, a: float, best: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def step(self, metrics: float | None = None) -> None:
        """Count one epoch whose monitored value is ``metrics``.

        Raises
        ------
        TypeError
            Without a value (ReduceLROnPlateau steps on one).
        """
        self._require_bound()
        if metrics is None:
            raise TypeError("ReduceLROnPlateau.step needs the monitored value, "
                            "e.g. step(val_loss)")
        current = float(metrics)
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            old_lr = float(self.optimizer.lr)
            new_lr = max(old_lr * self.factor, self.min_lr)
            if old_lr - new_lr > self.eps:
                self.optimizer.lr = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
