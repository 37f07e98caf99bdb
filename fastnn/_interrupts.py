"""SIGINT helpers shared by the fit driver and the callbacks.

Why it is built this way: ``fit``'s Ctrl-C guard (fastnn.training) and the
steps that must run whole (an optimizer writing its update, in
fastnn.optimizers; ``EarlyStopping`` restoring the best weights, in
fastnn.callbacks; the compiled trainer handing its counts back, in
fastnn.training) all take SIGINT over Python's default handler only, from
the main thread only; the two helpers live here, below those modules, so
none imports another for them.
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
        self._previous = _take_sigint(self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self._received = True

    def __exit__(self, *exc_info: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            if self._received:
                signal.raise_signal(signal.SIGINT)

