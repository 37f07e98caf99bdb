"""The metrics of ``fit(..., metrics=...)`` and ``evaluate(..., metrics=...)``.

Why it is built this way: a user names a metric ("accuracy", "mae", "mse");
which kernel of the backends' metric table computes it depends on the loss
and the targets (cross-entropy's labels or probabilities, or a per-output
accuracy), so the name is resolved once per fit, here, and every epoch then
calls the backend's ``metric`` kernel (compiled C on the compiled backend)
on the outputs of one forward pass.  Shared by the network (evaluate) and
the fit driver, so it imports neither.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from numpy.typing import NDArray

from .losses import CrossEntropyLoss, Loss

#: the names a user may ask for
METRIC_NAMES = ("accuracy", "mae", "mse")


def resolve_metrics(metrics: Iterable[str] | None, loss: Loss,
                    T: NDArray[Any]) -> list[tuple[str, str]]:
    """(name, kernel) for each metric asked for, in order, without repeats.

    ``accuracy``: for CrossEntropyLoss the fraction of samples whose largest
    output is the target class (``label_accuracy`` for labels,
    ``argmax_accuracy`` for probabilities); for any other loss the fraction
    of all outputs on the same side of 0.5 as their target
    (``binary_accuracy``, Keras's binary accuracy), as ``evaluate``'s
    accuracy.  ``mae``, ``mse``: the means over all outputs.

    Raises
    ------
    TypeError
        ``metrics`` is not a list of names.
    ValueError
        An unknown name, or ``mae``/``mse`` with class labels as targets.
    """
    if metrics is None:
        return []
    if isinstance(metrics, str) or not isinstance(metrics, Iterable):
        raise TypeError(f"metrics must be a list of names such as ['accuracy'], got "
                        f"{metrics!r}")
    resolved: list[tuple[str, str]] = []
    for name in metrics:
        if not isinstance(name, str) or name not in METRIC_NAMES:
            raise ValueError(f"unknown metric {name!r}; expected one of {list(METRIC_NAMES)}")
        if any(name == done for done, _ in resolved):
            continue
        labels = T.ndim == 1 and isinstance(loss, CrossEntropyLoss)
        if name == "accuracy":
            kernel = ("label_accuracy" if labels else "argmax_accuracy"
                      if isinstance(loss, CrossEntropyLoss) else "binary_accuracy")
        elif labels:
            raise ValueError(f"metric {name!r} compares outputs with targets of the same "
                             "shape, but the targets are class labels (CrossEntropyLoss); "
                             "use 'accuracy', or one-hot targets")
        else:
            kernel = name
        resolved.append((name, kernel))
    return resolved


def score_metrics(ops: Any, out: NDArray[Any], T: NDArray[Any],
                  resolved: Sequence[tuple[str, str]], prefix: str = "") -> dict[str, float]:
    """``{prefix + name: value}`` of each resolved metric of the outputs ``out``."""
    target = T if T.ndim == 1 else T.reshape(out.shape)
    return {prefix + name: float(ops.metric(kernel, out, target)) for name, kernel in resolved}
