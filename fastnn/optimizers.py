"""Optimizers: SGD (momentum, Nesterov, weight decay) and Adam, as PyTorch defines them.

Why it is built this way: an optimizer holds its hyper-parameters and its
state (velocities, moments, step count) keyed by parameter name, and applies
one in-place backend kernel per parameter, so the update is one pass with no
temporaries on the compiled backend.  State lives here, not in the layers, so
a network can be trained with another optimizer at any time.  A training loop
steps through ``checked_step``: an update that would leave a parameter or a
state value inf or NaN is undone from a snapshot (simpler than computing every
update out of place, and the same rule as the native loop's dry run).
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from ._validation import check_float

if TYPE_CHECKING:
    from .network import Network

__all__ = ["Optimizer", "SGD", "Adam", "get_optimizer"]


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
    """

    def __init__(self, lr: float) -> None:
        self.lr = check_float(lr, "lr", minimum=0.0)
        self.state: dict[str, Any] = {}
        self._owner: weakref.ref[Network] | None = None

    def _bind(self, network: Network) -> None:
        """Tie the state to ``network`` (a weak reference); another live network is refused."""
        from .network import Network      # imported here: network.py imports this module
        if not isinstance(network, Network):
            raise TypeError(f"{type(self).__name__} steps a fastnn Network, got "
                            f"{type(network).__name__}")
        owner = self._owner() if self._owner is not None else None
        if owner is None:
            self._owner = weakref.ref(network)
        elif owner is not network:
            raise ValueError(f"this {type(self).__name__} already holds the state of another "
                             "network; give each network its own optimizer")

    def __getstate__(self) -> dict[str, Any]:
        # a copy or an unpickled optimizer binds to the first network it steps
        state = self.__dict__.copy()
        state["_owner"] = None
        return state

    def step(self, network: Network) -> None:
        """Apply one update to all parameters of ``network`` (after its backward).

        Parameters
        ----------
        network : Network
            Its parameters are updated in place from their gradients.
        """
        self._bind(network)
        ops = network.ops
        for key, param, grad in network.parameters():
            if grad is None:
                raise RuntimeError(f"no gradient for {key}: call backward before step")
            self._update(ops, key, param, grad)

    def checked_step(self, network: Network) -> Callable[[], bool]:
        """A function applying ``step(network)`` only if it leaves everything finite.

        For a training loop: call it once, then the returned function once per
        batch (after the backward).  It snapshots the parameters and the state
        arrays (created here, as ``step`` would create them) into buffers made
        once, steps, and checks every parameter and state value; if one is inf
        or NaN it copies the snapshot back in place (the arrays keep their
        identity), restores the step counts and returns False -- so a refused
        update changes nothing, bit for bit.

        Parameters
        ----------
        network : Network

        Returns
        -------
        callable () -> bool
            True if the update was applied, False if it was refused.
        """
        self._bind(network)
        arrays: list[NDArray[Any]] = []
        for key, param, _ in network.parameters():
            arrays.append(param)
            arrays += [a for a in self._state_arrays(network.ops, key, param) if a is not None]
        saved = [a.copy() for a in arrays]

        def step() -> bool:
            for copy, array in zip(saved, arrays):
                np.copyto(copy, array)
            counts = self._step_counts()
            self.step(network)
            if all(np.isfinite(array).all() for array in arrays):
                return True
            for copy, array in zip(saved, arrays):
                np.copyto(array, copy)
            self._set_step_counts(counts)
            return False
        return step

    def _step_counts(self) -> dict[str, int]:
        """The state besides arrays, which ``checked_step`` restores (Adam's steps)."""
        return {}

    def _set_step_counts(self, counts: dict[str, int]) -> None:
        pass

    def native_spec(self, network: Network) -> tuple[dict[str, Any],
                                                     dict[str, list[NDArray[Any] | None]]]:
        """Hyper-parameters and state arrays for a backend's native training loop.

        Parameters
        ----------
        network : Network

        Returns
        -------
        spec : dict
            The update's constants.
        states : dict of str -> [ndarray or None, ndarray or None]
            Each parameter key's two state arrays (shape of the parameter) or
            None, created here exactly as ``step`` would create them.
        """
        self._bind(network)
        states = {key: self._state_arrays(network.ops, key, param)
                  for key, param, _ in network.parameters()}
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
        raise NotImplementedError

    def _spec(self) -> dict[str, Any]:
        raise NotImplementedError

    def _update(self, ops: Any, key: str, param: NDArray[Any], grad: NDArray[Any]) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget all state (velocities, moments, step counts)."""
        self.state.clear()
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

    def _spec(self) -> dict[str, Any]:
        return {"optimizer": "sgd", "lr": self.lr, "momentum": self.momentum,
                "weight_decay": self.weight_decay, "nesterov": self.nesterov, "step": 0}

    def _update(self, ops: Any, key: str, param: NDArray[Any], grad: NDArray[Any]) -> None:
        velocity = self._state_arrays(ops, key, param)[0]
        ops.sgd_update(param, grad, velocity, self.lr, self.momentum, self.weight_decay,
                       self.nesterov)


class Adam(Optimizer):
    """Adam with bias correction, ``eps`` added after the square root (PyTorch's).

    Parameters
    ----------
    lr : float, default 0.001
    betas : (float, float), default (0.9, 0.999)
    eps : float > 0, default 1e-8
    weight_decay : float, default 0.0
        L2 penalty added to the gradient (not AdamW's decoupled decay).
    """

    def __init__(self, lr: float = 0.001, betas: Sequence[float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(lr)
        try:
            beta1, beta2 = betas
        except (TypeError, ValueError) as exc:
            raise TypeError(f"betas must be a pair of floats, got {betas!r}") from exc
        self.betas = (check_float(beta1, "betas[0]", minimum=0.0, below=1.0),
                      check_float(beta2, "betas[1]", minimum=0.0, below=1.0))
        self.eps = check_float(eps, "eps", above=0.0)   # 0 would give 0/0 for a zero gradient
        self.weight_decay = check_float(weight_decay, "weight_decay", minimum=0.0)

    def __repr__(self) -> str:
        return (f"Adam(lr={self.lr}, betas={self.betas}, eps={self.eps}, "
                f"weight_decay={self.weight_decay})")

    def _state_arrays(self, ops: Any, key: str,
                      param: NDArray[Any]) -> list[NDArray[Any] | None]:
        if key not in self.state:
            self.state[key] = {"step": 0, "m": ops.zeros_like(param), "v": ops.zeros_like(param)}
        return [self.state[key]["m"], self.state[key]["v"]]

    def _spec(self) -> dict[str, Any]:
        steps = {st["step"] for st in self.state.values()}
        if len(steps) > 1:
            raise RuntimeError(f"Adam's parameters are at different steps {sorted(steps)}; "
                               "the native loop needs them in step")
        return {"optimizer": "adam", "lr": self.lr, "beta1": self.betas[0],
                "beta2": self.betas[1], "eps": self.eps, "weight_decay": self.weight_decay,
                "step": steps.pop() if steps else 0}

    def _step_counts(self) -> dict[str, int]:
        return {key: st["step"] for key, st in self.state.items()}

    def _set_step_counts(self, counts: dict[str, int]) -> None:
        for key, step in counts.items():
            self.state[key]["step"] = step

    def native_done(self, step: int) -> None:
        for st in self.state.values():
            st["step"] = step

    def _update(self, ops: Any, key: str, param: NDArray[Any], grad: NDArray[Any]) -> None:
        m, v = self._state_arrays(ops, key, param)
        st = self.state[key]
        st["step"] += 1
        ops.adam_update(param, grad, m, v, st["step"], self.lr, self.betas[0], self.betas[1],
                        self.eps, self.weight_decay)


_OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam}


def get_optimizer(optimizer: Optimizer | type[Optimizer] | str) -> Optimizer:
    """An Optimizer from an instance, a class or a name.

    Parameters
    ----------
    optimizer : Optimizer, Optimizer subclass or str
        A name is "sgd" or "adam" (with default hyper-parameters).

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
