"""Optimizers: SGD (momentum, Nesterov, weight decay), Adam, AdamW, RMSprop and Adagrad,
as PyTorch defines them.

Why it is built this way: an optimizer holds its hyper-parameters and its
state (velocities, moments, step count) keyed by parameter name, and applies
one in-place backend kernel per parameter, so the update is one pass with no
temporaries on the compiled backend.  State lives here, not in the layers, so
a network can be trained with another optimizer at any time.  A ``step`` is
all or nothing -- compute, check, commit: every new parameter and state value
is computed aside (the same kernels, run on copies, so the same bits), all of
them are checked finite, and only then written back.  So an update that
would be inf or NaN, or an error part-way (a read-only ``W``), changes
nothing, and a ``predict`` in another thread never sees a value that is
taken back -- the same rule as the native loop's dry run.

An optimizer works on parameters, not on a network: ``update(params, ops)``
takes (key, param, grad) triples and the backend's kernels, and
``step(network)`` is a convenience that only gathers ``network.parameters()``
and ``network.ops``.  So this module imports neither the network nor a
backend: the arrows point from the network to the optimizers to the ops.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, Iterable, Protocol, Sequence

import numpy as np
from numpy.typing import NDArray

from ._interrupts import _DeferInterrupt
from ._validation import as_float_array, check_bool, check_float

#: (key, param, grad) of one parameter, as ``Network.parameters`` yields it
ParamGrad = tuple[str, NDArray[Any], "NDArray[Any] | None"]


class _HasParameters(Protocol):
    """What ``step`` reads of a network: its parameters and its backend's kernels."""

    ops: Any

    def parameters(self) -> Iterable[ParamGrad]: ...


__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "get_optimizer"]


def _check_writeable(key: str, arrays: list[NDArray[Any] | None], what: str) -> None:
    """Refuse a read-only array of ``arrays``, naming the parameter (e.g. "2.W")."""
    for array in arrays:
        if array is not None and not array.flags.writeable:
            raise ValueError(f"{key}{what} is read-only (shape {array.shape}) but the optimizer "
                             "updates it in place; nothing was changed: make it writeable "
                             "(flags.writeable = True) to train it")


class _RefusedUpdate(FloatingPointError):
    """``step`` refused an update that would leave a value inf or NaN (nothing written)."""


class Optimizer:
    """Base class.  ``step(network)`` updates every parameter from its gradient.

    Parameters
    ----------
    lr : float
        Learning rate (>= 0).

    Attributes
    ----------
    state : dict
        Per-parameter state, keyed like ``Network.parameters`` ("0.W", ...).
        It belongs to one network at a time; once that network is gone it
        carries over to the next network stepped (e.g. an unpickled copy),
        converted to that network's dtype.
    kernel : str
        Class attribute: the optimizer's row in the backends' optimizer table
        (C's FASTNN_OPTIMIZERS, the reference's ``numpy_ops.OPTIMIZERS``),
        whose update ``ops.optimizer_update`` applies; "" for an optimizer
        written from scratch (its own ``step`` or ``update``).
    """

    kernel: str = ""

    def __init__(self, lr: float) -> None:
        self.lr = check_float(lr, "lr", minimum=0.0)
        self.state: dict[str, Any] = {}
        self._owner: weakref.ref[Any] | None = None
        self._aside: dict[str, list[NDArray[Any]]] = {}

    def _bind(self, owner: Any, params: list[ParamGrad]) -> None:
        """Tie the state to ``owner`` (a weak reference; None ties nothing); another live
        owner is refused.

        Binding to a new owner (the previous one is gone) adopts the state: it
        must match ``params`` and is converted to their dtype.  The
        hyper-parameters are checked against that dtype.
        """
        current = self._owner() if self._owner is not None else None
        if owner is not None and current is not None and current is not owner:
            raise ValueError(f"this {type(self).__name__} already holds the state of another "
                             "network; give each network its own optimizer")
        if params:
            self._check_dtype(params[0][1].dtype)
        if current is None:
            self._adopt_state(params)
            if owner is not None:
                self._owner = weakref.ref(owner)

    def _check_dtype(self, dtype: np.dtype[Any]) -> None:
        """Refuse hyper-parameters that the network's dtype cannot hold (Adam's eps)."""

    def _adopt_state(self, entries: list[ParamGrad]) -> None:
        """Check the state against the parameters ``entries``; convert it to their dtype."""
        if not self.state:
            return
        params = {key: param for key, param, _ in entries}
        name = type(self).__name__

        def adopt(value: Any, key: str, what: str) -> Any:
            if isinstance(value, dict):
                return {k: adopt(v, key, f"{what} {k}") for k, v in value.items()}
            if not isinstance(value, np.ndarray):
                return value
            param = params[key]
            if value.shape != param.shape:
                raise ValueError(f"this {name} holds state for {key} of shape {value.shape} "
                                 f"(from a network that is gone) but {key} of this network "
                                 f"has shape {param.shape}; call reset() or use a new "
                                 f"{name}")
            if value.dtype == param.dtype:
                return value
            return as_float_array(value, param.dtype, f"{name} state of {key}{what}")

        stale = sorted(set(self.state) - set(params))
        if stale:
            raise ValueError(f"this {name} holds state for parameters {stale} (from a network "
                             f"that is gone) that this network does not have (it has "
                             f"{sorted(params)}); call reset() or use a new {name}")
        self.state.update({key: adopt(value, key, "") for key, value in self.state.items()})

    def __getstate__(self) -> dict[str, Any]:
        # a copy or an unpickled optimizer binds to the first network it steps
        state = self.__dict__.copy()
        state["_owner"] = None
        state["_aside"] = {}            # scratch buffers, made again when needed
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_aside", {})

    def step(self, network: _HasParameters) -> None:
        """Apply one update to all parameters of ``network`` (after its backward).

        A convenience: ``update(network.parameters(), network.ops, owner=network)``.

        Parameters
        ----------
        network : Network
            Its parameters are updated in place from their gradients.

        Raises
        ------
        RuntimeError
            A parameter has no gradient (``backward`` was not called).
        ValueError
            A parameter (or its state) is read-only; the message names it
            (e.g. ``"2.W"``).
        FloatingPointError
            The update would make a parameter or a state value inf or NaN
            (the message names the first such parameter); nothing is written.
        """
        params, ops = self._gather(network)
        self.update(params, ops, owner=network)

    def _gather(self, network: Any) -> tuple[list[ParamGrad], Any]:
        """``network``'s (key, param, grad) list and its backend's kernels."""
        if not callable(getattr(network, "parameters", None)) or not hasattr(network, "ops"):
            raise TypeError(f"{type(self).__name__} steps a fastnn Network, got "
                            f"{type(network).__name__}")
        return list(network.parameters()), network.ops

    def update(self, params: Iterable[ParamGrad], ops: Any, *, owner: Any = None) -> None:
        """Apply one update to each (key, param, grad) of ``params``, all or nothing.

        Every new parameter and state value is computed aside (with the kernels
        of ``ops``) and checked before any is written, so an error leaves the
        parameters and the state exactly as they were.  Then all are written:
        a Ctrl-C meanwhile (in the main thread, under Python's default
        handler or ``fit``'s) is honoured after the last.

        Parameters
        ----------
        params : iterable of (str, ndarray, ndarray or None)
            Each parameter's key (e.g. ``"0.W"``, which keys the state), the
            array updated in place and its gradient.
        ops : NumpyOps
            The backend's kernels.
        owner : object, optional
            What the state belongs to (``step`` passes the network): a second
            live owner is refused.  None: no owner is checked or recorded.

        Raises
        ------
        RuntimeError, ValueError, FloatingPointError
            As ``step``.
        """
        entries = list(params)
        staged = self._prepare(entries, ops, owner)
        for key, _, grad, _ in staged:
            if grad is None:
                raise RuntimeError(f"no gradient for {key}: call backward before step")
        commits = []
        for key, param, grad, state in staged:       # compute aside, check
            assert grad is not None                   # (refused above)
            targets = [param]
            targets += [a for a in state if a is not None]
            copies = self._copies_aside(key, targets)
            rest = iter(copies[1:])
            try:
                self._update(ops, key, copies[0], grad,
                             [None if a is None else next(rest) for a in state])
            except (ValueError, TypeError) as exc:
                if type(exc) not in (ValueError, TypeError):
                    raise
                raise type(exc)(f"updating {key}: {exc}; nothing was changed") from exc
            for copy in copies:
                if not np.isfinite(copy).all():
                    raise _RefusedUpdate(
                        f"the update of {key} would make it or its optimizer state NaN or "
                        "infinite (a non-finite gradient, or too large a learning rate); "
                        "nothing was changed")
            commits.append((key, targets, copies))
        with _DeferInterrupt():                      # commit, whole: Ctrl-C comes after
            for key, targets, copies in commits:
                for target, copy in zip(targets, copies):
                    np.copyto(target, copy)
                self._advance(key)

    def _prepare(self, entries: list[ParamGrad], ops: Any, owner: Any
                 ) -> list[tuple[str, NDArray[Any], NDArray[Any] | None,
                                 list[NDArray[Any] | None]]]:
        """Bind, check every parameter writeable, then make the state (as ``update`` uses it).

        Returns (key, param, grad, state arrays) per parameter; a read-only
        array is refused before any state is made.
        """
        self._bind(owner, entries)
        for key, param, _ in entries:
            if not param.flags.writeable:
                _check_writeable(key, [param], "")
        staged = []
        for key, param, grad in entries:
            state = self._state_arrays(ops, key, param)
            _check_writeable(key, state, " (its optimizer state)")
            staged.append((key, param, grad, state))
        return staged

    def _copies_aside(self, key: str, arrays: list[NDArray[Any]]) -> list[NDArray[Any]]:
        """Scratch copies of ``arrays`` (buffers kept between steps, made once per key)."""
        bufs = self._aside.get(key)
        if bufs is None or len(bufs) != len(arrays):
            bufs = self._aside[key] = [np.empty_like(a, order="C") for a in arrays]
        for i, array in enumerate(arrays):
            buf = bufs[i]
            if buf.shape != array.shape or buf.dtype != array.dtype:
                buf = bufs[i] = np.empty_like(array, order="C")
            np.copyto(buf, array)
        return bufs

    def checked_step(self, network: _HasParameters) -> Callable[[], bool]:
        """A function applying ``step(network)``, False when it refused a non-finite update.

        For a training loop: call it once (it creates the state, as
        ``native_spec`` does), then the returned function once per batch
        (after the backward).  A refused update changes nothing, bit for bit
        (see ``step``).

        Parameters
        ----------
        network : Network

        Returns
        -------
        callable () -> bool
            True if the update was applied, False if it was refused.
        """
        params, ops = self._gather(network)
        self._prepare(params, ops, network)

        def step() -> bool:
            try:
                self.step(network)
            except _RefusedUpdate:
                return False
            return True
        return step

    def native_spec(self, network: _HasParameters
                    ) -> tuple[dict[str, Any], dict[str, list[NDArray[Any] | None]]]:
        """Hyper-parameters and state arrays for a backend's native training loop.

        Parameters
        ----------
        network : Network

        Returns
        -------
        spec : dict
            The update's constants.
        states : dict of str -> list of (ndarray or None)
            Each parameter key's state arrays, in the order of the ``kernel``
            row of the table (shape of the parameter) or
            None, created here exactly as ``step`` would create them.

        Raises
        ------
        ValueError
            A parameter (or its state) is read-only, as ``step`` raises it.
        """
        params, ops = self._gather(network)
        states = {key: state for key, _, _, state in self._prepare(params, ops, network)}
        return self._spec(), states

    def native_done(self, step: int) -> None:
        """Record the step count reached by the native loop (Adam's bias correction).

        Parameters
        ----------
        step : int
            Updates applied so far.
        """

    def _state_arrays(self, ops: Any, key: str,
                      param: NDArray[Any]) -> list[NDArray[Any] | None]:
        """The state arrays of ``key`` (created on first use), None where unused.

        None, None here: an optimizer written from scratch (its own ``step``
        or ``update``) keeps whatever state it needs itself.
        """
        return [None, None]

    def _hypers(self) -> dict[str, Any]:
        """The hyper-parameters by the names of the ``kernel`` row of the table."""
        raise NotImplementedError

    def _spec(self) -> dict[str, Any]:
        return {"optimizer": self.kernel, **self._hypers(), "step": 0}

    def _step_number(self, key: str) -> int:
        """The number, from 1, of the next update of ``key`` (Adam's bias correction)."""
        return 1

    def _update(self, ops: Any, key: str, param: NDArray[Any], grad: NDArray[Any],
                state: list[NDArray[Any] | None]) -> None:
        """Update ``param`` and ``state`` in place (``step`` hands in copies of the real ones)."""
        if not self.kernel:
            raise NotImplementedError
        ops.optimizer_update(self.kernel, param, grad, state, self._hypers(),
                             self._step_number(key))

    def _advance(self, key: str) -> None:
        """Count one committed update of ``key`` (Adam's step)."""

    def reset(self) -> None:
        """Forget all state (velocities, moments, step counts)."""
        self.state.clear()
        self._aside.clear()
        self._owner = None


class SGD(Optimizer):
    """Stochastic gradient descent: ``p -= lr * step`` with PyTorch's momentum.

    Parameters
    ----------
    lr : float, default 0.01
    momentum : float in [0, 1], default 0.0
        v = momentum * v + g; step = v (or g + momentum * v with ``nesterov``).
    nesterov : bool, default False
    weight_decay : float, default 0.0
        L2 penalty: g = grad + weight_decay * p.
    """

    kernel = "sgd"

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        super().__init__(lr)
        self.momentum = check_float(momentum, "momentum", minimum=0.0, maximum=1.0)
        self.nesterov = bool(nesterov)
        self.weight_decay = check_float(weight_decay, "weight_decay", minimum=0.0)
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs a momentum > 0")

    def __repr__(self) -> str:
        return (f"SGD(lr={self.lr}, momentum={self.momentum}, nesterov={self.nesterov}, "
                f"weight_decay={self.weight_decay})")

    def _state_arrays(self, ops: Any, key: str,
                      param: NDArray[Any]) -> list[NDArray[Any] | None]:
        if self.momentum == 0:
            return [None, None]
        if key not in self.state:
            self.state[key] = ops.zeros_like(param)
        return [self.state[key], None]

    def _hypers(self) -> dict[str, Any]:
        return {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay,
                "nesterov": self.nesterov}


class _StepCounting(Optimizer):
    """An optimizer whose update depends on the step count (Adam's bias correction,
    Adagrad's learning-rate decay): ``state[key]["step"]`` per parameter, all in step
    for the native loop."""

    def _spec(self) -> dict[str, Any]:
        steps = {st["step"] for st in self.state.values()}
        if len(steps) > 1:
            raise RuntimeError(f"{type(self).__name__}'s parameters are at different steps "
                               f"{sorted(steps)}; the native loop needs them in step")
        return {**super()._spec(), "step": steps.pop() if steps else 0}

    def native_done(self, step: int) -> None:
        for st in self.state.values():
            st["step"] = step

    def _step_number(self, key: str) -> int:
        return int(self.state[key]["step"]) + 1

    def _advance(self, key: str) -> None:
        self.state[key]["step"] += 1


class _HasEps(Optimizer):
    """An optimizer dividing by ``... + eps``: ``eps`` must not round to 0 (0/0) nor
    overflow in the network's dtype."""

    eps: float
    #: the class's default eps, named in the message
    _eps_default: float = 1e-8

    #: (eps, dtype) last found usable: steps of a training loop skip the check
    _eps_checked: tuple[Any, ...] = ()

    def _check_dtype(self, dtype: np.dtype[Any]) -> None:
        if self._eps_checked == (self.eps, dtype):
            return
        with np.errstate(over="ignore", under="ignore"):
            eps = dtype.type(self.eps)
        if eps == 0 or not np.isfinite(eps):
            finfo = np.finfo(dtype)
            raise ValueError(
                f"{type(self).__name__} eps={self.eps:g} "
                f"{'rounds to 0' if eps == 0 else 'overflows'} in "
                f"{dtype.name}, the network's dtype, so the update would be "
                f"{'0/0 (NaN) for a zero gradient' if eps == 0 else 'always 0'}; in "
                f"{dtype.name} eps must lie between {float(finfo.smallest_subnormal):.3g} and "
                f"{float(finfo.max):.3g} (the default {self._eps_default:g} is usual)")
        self._eps_checked = (self.eps, dtype)


def _check_betas(betas: Sequence[float]) -> tuple[float, float]:
    """Adam's (beta1, beta2): a pair of floats in [0, 1)."""
    try:
        beta1, beta2 = betas
    except (TypeError, ValueError) as exc:
        raise TypeError(f"betas must be a pair of floats, got {betas!r}") from exc
    return (check_float(beta1, "betas[0]", minimum=0.0, below=1.0),
            check_float(beta2, "betas[1]", minimum=0.0, below=1.0))


class Adam(_StepCounting, _HasEps):
    """Adam with bias correction, ``eps`` added after the square root (PyTorch's).

    Parameters
    ----------
    lr : float, default 0.001
    betas : (float, float), default (0.9, 0.999)
    eps : float > 0, default 1e-8
    weight_decay : float, default 0.0
        L2 penalty added to the gradient (not AdamW's decoupled decay).
    amsgrad : bool, default False
        Divide by the square root of the largest second moment so far
        (``max_v = max(max_v, v)``), as ``torch.optim.Adam(amsgrad=True)``.
    """

    kernel = "adam"

    def __init__(self, lr: float = 0.001, betas: Sequence[float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        super().__init__(lr)
        self.betas = _check_betas(betas)
        self.eps = check_float(eps, "eps", above=0.0)   # 0 would give 0/0 for a zero gradient
        self.weight_decay = check_float(weight_decay, "weight_decay", minimum=0.0)
        self.amsgrad = check_bool(amsgrad, "amsgrad")

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(lr={self.lr}, betas={self.betas}, eps={self.eps}, "
                f"weight_decay={self.weight_decay}, amsgrad={self.amsgrad})")

    def _state_arrays(self, ops: Any, key: str,
                      param: NDArray[Any]) -> list[NDArray[Any] | None]:
        if key not in self.state:
            self.state[key] = {"step": 0, "m": ops.zeros_like(param), "v": ops.zeros_like(param)}
        st = self.state[key]
        if self.amsgrad and "max_v" not in st:
            st["max_v"] = ops.zeros_like(param)
        return [st["m"], st["v"], st["max_v"] if self.amsgrad else None]

    def _hypers(self) -> dict[str, Any]:
        return {"lr": self.lr, "beta1": self.betas[0], "beta2": self.betas[1], "eps": self.eps,
                "weight_decay": self.weight_decay, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay (PyTorch's ``torch.optim.AdamW``).

    Each step first shrinks the parameter, ``p *= 1 - lr * weight_decay``,
    then applies Adam's update to the plain gradient (no L2 term in it).

    Parameters
    ----------
    lr : float, default 0.001
    betas : (float, float), default (0.9, 0.999)
    eps : float > 0, default 1e-8
    weight_decay : float, default 0.01
    amsgrad : bool, default False
        As ``Adam``'s.
    """

    kernel = "adamw"

    def __init__(self, lr: float = 0.001, betas: Sequence[float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(lr, betas, eps, weight_decay, amsgrad)


class RMSprop(_HasEps):
    """RMSprop as PyTorch defines it (``torch.optim.RMSprop``).

    ``sq = alpha*sq + (1-alpha)*g^2``; ``avg = sqrt(sq) + eps`` (centered:
    ``sqrt(sq - ga^2) + eps`` with ``ga`` the running mean of ``g``); then
    ``p -= lr * g/avg``, or with momentum ``buf = momentum*buf + g/avg;
    p -= lr * buf``.  ``g = grad + weight_decay * p``.

    Parameters
    ----------
    lr : float, default 0.01
    alpha : float in [0, 1], default 0.99
        Smoothing constant of the running averages.
    eps : float > 0, default 1e-8
    weight_decay : float, default 0.0
        L2 penalty added to the gradient.
    momentum : float in [0, 1], default 0.0
    centered : bool, default False
        Normalise by the estimated variance of the gradient.
    """

    kernel = "rmsprop"

    def __init__(self, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False) -> None:
        super().__init__(lr)
        self.alpha = check_float(alpha, "alpha", minimum=0.0, maximum=1.0)
        self.eps = check_float(eps, "eps", above=0.0)
        self.weight_decay = check_float(weight_decay, "weight_decay", minimum=0.0)
        self.momentum = check_float(momentum, "momentum", minimum=0.0, maximum=1.0)
        self.centered = check_bool(centered, "centered")

    def __repr__(self) -> str:
        return (f"RMSprop(lr={self.lr}, alpha={self.alpha}, eps={self.eps}, "
                f"weight_decay={self.weight_decay}, momentum={self.momentum}, "
                f"centered={self.centered})")

    def _state_arrays(self, ops: Any, key: str,
                      param: NDArray[Any]) -> list[NDArray[Any] | None]:
        st = self.state.setdefault(key, {})
        if "square_avg" not in st:
            st["square_avg"] = ops.zeros_like(param)
        if self.momentum != 0 and "momentum_buffer" not in st:
            st["momentum_buffer"] = ops.zeros_like(param)
        if self.centered and "grad_avg" not in st:
            st["grad_avg"] = ops.zeros_like(param)
        return [st["square_avg"], st["momentum_buffer"] if self.momentum != 0 else None,
                st["grad_avg"] if self.centered else None]

    def _hypers(self) -> dict[str, Any]:
        return {"lr": self.lr, "alpha": self.alpha, "eps": self.eps,
                "weight_decay": self.weight_decay, "momentum": self.momentum,
                "centered": self.centered}


class Adagrad(_StepCounting, _HasEps):
    """Adagrad as PyTorch defines it (``torch.optim.Adagrad``).

    ``sum += g^2``; ``p -= clr * g / (sqrt(sum) + eps)`` with
    ``clr = lr / (1 + (t - 1) * lr_decay)`` at step t (from 1) and
    ``g = grad + weight_decay * p``.

    Parameters
    ----------
    lr : float, default 0.01
    lr_decay : float, default 0.0
    weight_decay : float, default 0.0
    initial_accumulator_value : float, default 0.0
        The value ``sum`` starts from.
    eps : float > 0, default 1e-10
    """

    kernel = "adagrad"
    _eps_default = 1e-10

    def __init__(self, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10) -> None:
        super().__init__(lr)
        self.lr_decay = check_float(lr_decay, "lr_decay", minimum=0.0)
        self.weight_decay = check_float(weight_decay, "weight_decay", minimum=0.0)
        self.initial_accumulator_value = check_float(
            initial_accumulator_value, "initial_accumulator_value", minimum=0.0)
        self.eps = check_float(eps, "eps", above=0.0)

    def __repr__(self) -> str:
        return (f"Adagrad(lr={self.lr}, lr_decay={self.lr_decay}, "
                f"weight_decay={self.weight_decay}, "
                f"initial_accumulator_value={self.initial_accumulator_value}, eps={self.eps})")

    def _state_arrays(self, ops: Any, key: str,
                      param: NDArray[Any]) -> list[NDArray[Any] | None]:
        if key not in self.state:
            total = ops.zeros_like(param)
            total[...] = param.dtype.type(self.initial_accumulator_value)
            self.state[key] = {"step": 0, "sum": total}
        return [self.state[key]["sum"]]

    def _hypers(self) -> dict[str, Any]:
        return {"lr": self.lr, "lr_decay": self.lr_decay, "weight_decay": self.weight_decay,
                "eps": self.eps}


class _SklearnSGD(Optimizer):
    """scikit-learn's SGD (its ``SGDOptimizer``), for ``fastnn.sklearn``.

    ``v = momentum * v - lr * g``; ``p += momentum * v - lr * g`` with
    ``nesterov`` (the new ``v``), else ``p += v``.  Not PyTorch's form: the
    same updates only for a constant ``lr``, and not to the last bit.  No
    weight decay: scikit-learn's L2 penalty is part of the gradient.

    Parameters
    ----------
    lr : float, default 0.1
        The current learning rate (scikit-learn's ``invscaling`` and
        ``adaptive`` schedules change it between epochs).
    momentum : float in [0, 1], default 0.9
    nesterov : bool, default True
    """

    kernel = "sk_sgd"

    def __init__(self, lr: float = 0.1, momentum: float = 0.9, nesterov: bool = True) -> None:
        super().__init__(lr)
        self.momentum = check_float(momentum, "momentum", minimum=0.0, maximum=1.0)
        self.nesterov = check_bool(nesterov, "nesterov")

    def __repr__(self) -> str:
        return f"_SklearnSGD(lr={self.lr}, momentum={self.momentum}, nesterov={self.nesterov})"

    def _state_arrays(self, ops: Any, key: str,
                      param: NDArray[Any]) -> list[NDArray[Any] | None]:
        if key not in self.state:
            self.state[key] = ops.zeros_like(param)
        return [self.state[key], None]

    def _hypers(self) -> dict[str, Any]:
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov}


class _SklearnAdam(_StepCounting, _HasEps):
    """scikit-learn's Adam (its ``AdamOptimizer``), for ``fastnn.sklearn``.

    At step t (from 1): ``m = b1 m + (1 - b1) g``; ``v = b2 v + (1 - b2) g^2``;
    ``p += (-lr_t m) / (sqrt(v) + eps)`` with ``lr_t = lr sqrt(1 - b2^t) /
    (1 - b1^t)`` -- ``eps`` added to the uncorrected ``sqrt(v)``, unlike
    ``Adam`` (PyTorch's).  No weight decay.

    Parameters
    ----------
    lr : float, default 0.001
    betas : (float, float), default (0.9, 0.999)
    eps : float > 0, default 1e-8
    """

    kernel = "sk_adam"

    def __init__(self, lr: float = 0.001, betas: Sequence[float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        super().__init__(lr)
        self.betas = _check_betas(betas)
        self.eps = check_float(eps, "eps", above=0.0)

    def __repr__(self) -> str:
        return f"_SklearnAdam(lr={self.lr}, betas={self.betas}, eps={self.eps})"

    def _state_arrays(self, ops: Any, key: str,
                      param: NDArray[Any]) -> list[NDArray[Any] | None]:
        if key not in self.state:
            self.state[key] = {"step": 0, "m": ops.zeros_like(param), "v": ops.zeros_like(param)}
        st = self.state[key]
        return [st["m"], st["v"], None]

    def _hypers(self) -> dict[str, Any]:
        return {"lr": self.lr, "beta1": self.betas[0], "beta2": self.betas[1], "eps": self.eps}


_OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam, "adamw": AdamW,
                                           "rmsprop": RMSprop, "adagrad": Adagrad,
                                           "sk_sgd": _SklearnSGD, "sk_adam": _SklearnAdam}


def get_optimizer(optimizer: Optimizer | type[Optimizer] | str) -> Optimizer:
    """An Optimizer from an instance, a class or a name.

    Parameters
    ----------
    optimizer : Optimizer, Optimizer subclass or str
        A name is "sgd", "adam", "adamw", "rmsprop" or "adagrad" (with default
        hyper-parameters).

    Returns
    -------
    Optimizer
    """
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, type) and issubclass(optimizer, Optimizer):
        return optimizer()  # type: ignore[call-arg]
    if isinstance(optimizer, str) and optimizer.lower() in _OPTIMIZERS:
        return _OPTIMIZERS[optimizer.lower()]()  # type: ignore[call-arg]
    raise ValueError(f"unknown optimizer {optimizer!r}; expected an Optimizer or one of "
                     f"{sorted(_OPTIMIZERS)}")
