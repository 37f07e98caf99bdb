"""Data sets: the tutorials' toy tables and a seeded generator of a harder 2-D set.

Why it is built this way: every network and number in the tutorials must be
reproducible with fastnn, so their data lives here verbatim (as float64 arrays
the caller owns), and the synthetic set is drawn from a seeded
``numpy.random.Generator`` so a seed names one exact data set.
"""

import numpy as np

from ._validation import check_float, check_int

__all__ = ["xor", "and_gate", "or_gate", "gender", "gender_new_people", "student_pass",
           "spirals"]

_GATE_X = [[0, 0], [0, 1], [1, 0], [1, 1]]


def xor():
    """The XOR truth table (seeds 001, 004): X (4, 2), y (4, 1)."""
    return np.array(_GATE_X, dtype=np.float64), np.array([[0], [1], [1], [0]], dtype=np.float64)


def and_gate():
    """The AND truth table (seed 001): X (4, 2), y (4,)."""
    return np.array(_GATE_X, dtype=np.float64), np.array([0, 0, 0, 1], dtype=np.float64)


def or_gate():
    """The OR truth table: X (4, 2), y (4,)."""
    return np.array(_GATE_X, dtype=np.float64), np.array([0, 1, 1, 1], dtype=np.float64)


def gender(shifted=True):
    """Seed 002's table of weight (lb), height (in) -> gender (1 = F, 0 = M).

    With ``shifted`` (the tutorial's choice) weight is minus 135 and height
    minus 66.  Returns X (4, 2) for Alice, Bob, Charlie, Diana, and y (4,).
    """
    X = np.array([[133, 65], [160, 72], [152, 70], [120, 60]], dtype=np.float64)
    if shifted:
        X -= [135, 66]
    return X, np.array([1, 0, 0, 1], dtype=np.float64)


def gender_new_people(shifted=True):
    """Seed 002's two new people, Emily (128 lb, 63 in; F) and Frank (155 lb, 68 in; M).

    Returns (X (2, 2), names, expected) with expected genders [1, 0].
    """
    X = np.array([[128, 63], [155, 68]], dtype=np.float64)
    if shifted:
        X -= [135, 66]
    return X, ("Emily", "Frank"), np.array([1, 0], dtype=np.float64)


def student_pass():
    """Seed 000's (hours studied, hours slept) -> pass (1) / fail (0): X (3, 2), y (3, 1)."""
    X = np.array([[5.0, 7.0], [1.0, 2.0], [10.0, 6.0]])
    return X, np.array([[1.0], [0.0], [1.0]])


def spirals(n_per_class=100, n_classes=3, noise=0.2, seed=0):
    """Interleaved 2-D spirals, one arm per class: a set no linear model separates.

    Returns X (n_per_class * n_classes, 2) and integer labels y of that length.
    """
    n_per_class = check_int(n_per_class, "n_per_class", minimum=1)
    n_classes = check_int(n_classes, "n_classes", minimum=2)
    noise = check_float(noise, "noise", minimum=0.0)
    rng = np.random.default_rng(seed)
    X = np.empty((n_per_class * n_classes, 2))
    y = np.repeat(np.arange(n_classes), n_per_class)
    for c in range(n_classes):
        r = np.linspace(0.0, 1.0, n_per_class)
        t = np.linspace(c * 4.0, (c + 1) * 4.0, n_per_class) + rng.standard_normal(n_per_class) * noise
        X[c * n_per_class:(c + 1) * n_per_class] = np.column_stack([r * np.sin(t), r * np.cos(t)])
    return X, y
