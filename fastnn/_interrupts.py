"""SIGINT handling: fit's Ctrl-C guard, and the steps held whole against it.

Why it is built this way: ``fit``'s guard (``_StopOnInterrupt``, used by
fastnn.training and the layers' passes in fastnn.network) turns a first
Ctrl-C into a request to stop between batches; the steps that must run whole
(an optimizer writing its update, in fastnn.optimizers; ``EarlyStopping``
restoring the best weights, in fastnn.callbacks; the compiled trainer handing
its counts back, in fastnn.training) hold Ctrl-C back over Python's default
handler or that guard (``_DeferInterrupt``), so a second Ctrl-C never lands
in the middle of one.  Both take SIGINT from the main thread only and leave a
custom handler alone; they live here, below all those modules, so none
imports another for them.
"""

from __future__ import annotations

import signal
import threading
from typing import Any


def _take_sigint(handler: Any) -> Any:
    """Install ``handler`` for SIGINT if this is the main thread and Python's default
    handler is in place; return the handler it replaced, or None when left alone
    (a custom handler, or another thread)."""
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
        return signal.signal(signal.SIGINT, handler)
    return None


class _StopOnInterrupt:
    """While ``fit`` runs: Ctrl-C asks training to stop, dropping the unfinished batch.

    Python's default SIGINT handler raises KeyboardInterrupt wherever the main
    thread happens to be -- possibly between two parameters of an optimizer
    step, leaving the network half-updated.  Inside this context the first
    SIGINT only sets ``requested`` and puts the previous handler back, so a
    second Ctrl-C aborts at once as usual (after an update being written:
    ``_DeferInterrupt``).  The reference loop looks at
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
        self._previous = _take_sigint(self._handle)
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

    In the main thread, over Python's default SIGINT handler or ``fit``'s
    guard (a custom handler is left alone): the SIGINTs inside the block are
    counted, and on leaving it the handler is put back and each raised again
    -- with the default handler KeyboardInterrupt comes right after the
    block instead of in the middle of it; with the guard the first asks fit
    to stop and a second raises KeyboardInterrupt, as they would have.
    """

    def __init__(self) -> None:
        self._previous: Any = None
        self._received = 0

    def __enter__(self) -> _DeferInterrupt:
        if threading.current_thread() is threading.main_thread():
            current = signal.getsignal(signal.SIGINT)
            if (current is signal.default_int_handler
                    or isinstance(getattr(current, "__self__", None), _StopOnInterrupt)):
                self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self._received += 1

    def __exit__(self, *exc_info: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            for _ in range(min(self._received, 2)):   # a third changes nothing
                signal.raise_signal(signal.SIGINT)
