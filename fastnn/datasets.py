"""Data sets: the tutorials' toy tables, a seeded generator of a harder 2-D set,
and loaders for two real sets (scikit-learn's 8x8 digits, MNIST's IDX files).

Why it is built this way: every network and number in the tutorials must be
reproducible with fastnn, so their data lives here verbatim (as float64 arrays
the caller owns), and the synthetic set is drawn from a seeded
``numpy.random.Generator`` so a seed names one exact data set.  The real sets
are never downloaded by fastnn: the digits are read from the file that ships
inside scikit-learn (an optional dependency, imported only when asked for),
and MNIST from IDX files the user already has, checked byte for byte so a
damaged file gives a clear error instead of wrong data.
"""

from __future__ import annotations

import gzip
import os
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from ._validation import check_float, check_int

__all__ = ["xor", "and_gate", "or_gate", "gender", "gender_new_people", "student_pass",
           "spirals", "load_digits", "load_mnist"]

_GATE_X = [[0, 0], [0, 1], [1, 0], [1, 1]]


def xor() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The XOR truth table (the tutorials' XOR networks).

    Returns
    -------
    X : ndarray, float64, shape (4, 2)
        The four input pairs (0, 0), (0, 1), (1, 0), (1, 1).
    y : ndarray, float64, shape (4, 1)
        Their XOR.

    Examples
    --------
    >>> from fastnn import datasets
    >>> X, y = datasets.xor()
    >>> X.shape, y.shape
    ((4, 2), (4, 1))
    >>> X.astype(int).tolist(), y.ravel().tolist()
    ([[0, 0], [0, 1], [1, 0], [1, 1]], [0.0, 1.0, 1.0, 0.0])
    """
    return np.array(_GATE_X, dtype=np.float64), np.array([[0], [1], [1], [0]], dtype=np.float64)


def and_gate() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The AND truth table (the perceptron tutorial's AND gate).

    Returns
    -------
    X : ndarray, float64, shape (4, 2)
    y : ndarray, float64, shape (4,)
    """
    return np.array(_GATE_X, dtype=np.float64), np.array([0, 0, 0, 1], dtype=np.float64)


def or_gate() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The OR truth table.

    Returns
    -------
    X : ndarray, float64, shape (4, 2)
    y : ndarray, float64, shape (4,)
    """
    return np.array(_GATE_X, dtype=np.float64), np.array([0, 1, 1, 1], dtype=np.float64)


def gender(shifted: bool = True) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The weight/height tutorial's table: weight (lb), height (in) -> gender (1 = F, 0 = M).

    Parameters
    ----------
    shifted : bool, default True
        The tutorial's choice: weight minus 135 and height minus 66.

    Returns
    -------
    X : ndarray, float64, shape (4, 2)
        Alice, Bob, Charlie, Diana.
    y : ndarray, float64, shape (4,)
    """
    X = np.array([[133, 65], [160, 72], [152, 70], [120, 60]], dtype=np.float64)
    if shifted:
        X -= [135, 66]
    return X, np.array([1, 0, 0, 1], dtype=np.float64)


def gender_new_people(shifted: bool = True) -> tuple[NDArray[np.float64], tuple[str, str],
                                                      NDArray[np.float64]]:
    """The weight/height tutorial's two new people, Emily (128 lb, 63 in; F) and Frank (155 lb, 68 in; M).

    Parameters
    ----------
    shifted : bool, default True
        Shifted as in ``gender``.

    Returns
    -------
    X : ndarray, float64, shape (2, 2)
    names : (str, str)
    expected : ndarray, float64, shape (2,)
        Their genders, [1, 0].
    """
    X = np.array([[128, 63], [155, 68]], dtype=np.float64)
    if shifted:
        X -= [135, 66]
    return X, ("Emily", "Frank"), np.array([1, 0], dtype=np.float64)


def student_pass() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The hours-studied tutorial's (hours studied, hours slept) -> pass (1) / fail (0).

    Returns
    -------
    X : ndarray, float64, shape (3, 2)
    y : ndarray, float64, shape (3, 1)
    """
    X = np.array([[5.0, 7.0], [1.0, 2.0], [10.0, 6.0]])
    return X, np.array([[1.0], [0.0], [1.0]])


def spirals(n_per_class: int = 100, n_classes: int = 3, noise: float = 0.2,
            seed: int | None = 0) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Interleaved 2-D spirals, one arm per class: a set no linear model separates.

    Parameters
    ----------
    n_per_class : int, default 100
    n_classes : int, default 3
    noise : float, default 0.2
        Standard deviation of the noise added to each point's angle.
    seed : int or None, default 0
        Seeds the noise: a seed names one exact data set.

    Returns
    -------
    X : ndarray, float64, shape (n_per_class * n_classes, 2)
    y : ndarray, int64, shape (n_per_class * n_classes,)
        Class labels 0 .. n_classes - 1.
    """
    n_per_class = check_int(n_per_class, "n_per_class", minimum=1)
    n_classes = check_int(n_classes, "n_classes", minimum=2)
    noise = check_float(noise, "noise", minimum=0.0)
    seed = check_int(seed, "seed", minimum=0, allow_none=True)
    rng = np.random.default_rng(seed)
    X = np.empty((n_per_class * n_classes, 2))
    y = np.repeat(np.arange(n_classes), n_per_class)
    for c in range(n_classes):
        r = np.linspace(0.0, 1.0, n_per_class)
        t = np.linspace(c * 4.0, (c + 1) * 4.0, n_per_class) + rng.standard_normal(n_per_class) * noise
        X[c * n_per_class:(c + 1) * n_per_class] = np.column_stack([r * np.sin(t), r * np.cos(t)])
    return X, y


# ------------------------------------------------------------ real data
def load_digits(scale: bool = True) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """The 1797 real 8x8 handwritten digits that ship with scikit-learn.

    Read through ``sklearn.datasets.load_digits``, which reads the data file
    installed inside the scikit-learn package (nothing is downloaded).
    scikit-learn is an optional dependency: ``pip install "fastnn[sklearn]"``.

    Parameters
    ----------
    scale : bool, default True
        Divide the pixel values (whole numbers 0..16) by 16, so X lies in
        [0, 1] -- the scale an MLP trains well on.  False returns them as
        they are (still as float64).

    Returns
    -------
    X : ndarray, float64, shape (1797, 64)
        One row per image, the 8x8 pixels row by row.
    y : ndarray, int64, shape (1797,)
        The digit, 0..9.
    """
    try:
        from sklearn.datasets import load_digits as sklearn_load_digits
    except ImportError as exc:
        raise ImportError("fastnn.datasets.load_digits reads the digits shipped with "
                          "scikit-learn, which is not installed; install it with "
                          '`pip install "fastnn[sklearn]"`') from exc
    data = sklearn_load_digits()
    X = np.array(data.data, dtype=np.float64)
    if scale:
        X /= 16.0
    return X, np.array(data.target, dtype=np.int64)


#: IDX element types: the third byte of the magic number -> (dtype, name)
_IDX_TYPES = {0x08: (">u1", "unsigned byte"), 0x09: (">i1", "signed byte"),
              0x0B: (">i2", "short"), 0x0C: (">i4", "int"), 0x0D: (">f4", "float"),
              0x0E: (">f8", "double")}

_MNIST_KINDS = {"train": "train", "t10k": "t10k", "test": "t10k"}


def _find_idx(directory: str, stem: str) -> str:
    """Path of ``stem`` (raw), ``stem.gz``, or the ``x-images.idx3-ubyte`` spelling."""
    dotted = stem.replace("-idx", ".idx", 1)
    names = [stem, stem + ".gz", dotted, dotted + ".gz"]
    for name in names:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"no {stem} file in {directory!r}: expected one of {', '.join(names)} "
        "(the MNIST IDX files, raw or gzip-compressed, from the MNIST distribution)")


def _read_idx(path: str, ndim: int, what: str) -> NDArray[np.uint8]:
    """Read an IDX file of unsigned bytes with ``ndim`` dimensions -> ndarray (uint8)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":                     # gzip, whatever the file is called
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{path}: damaged or truncated gzip data ({exc})") from None
    if len(data) < 4:
        raise ValueError(f"{path}: truncated: {len(data)} bytes, too short for an IDX header")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: bad magic number 0x{data[:4].hex()}: not an IDX file "
                         "(an IDX file starts with two zero bytes)")
    code, dims = data[2], data[3]
    if code != 0x08:
        name = _IDX_TYPES.get(code, (None, "unknown"))[1]
        raise ValueError(f"{path}: wrong dtype code 0x{code:02x} ({name}); MNIST {what} are "
                         "unsigned bytes (0x08)")
    if dims != ndim:
        raise ValueError(f"{path}: has {dims} dimensions; MNIST {what} have {ndim} "
                         f"(magic number should be 0x000008{ndim:02x})")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated: the header needs {header} bytes, the file has "
                         f"{len(data)}")
    shape = tuple(int(v) for v in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64))
    got = len(data) - header
    if got < expected:
        raise ValueError(f"{path}: truncated: the header says shape {shape}, i.e. {expected} "
                         f"bytes of data, but the file has {got}")
    if got > expected:
        raise ValueError(f"{path}: {got - expected} bytes after the data the header describes "
                         f"(shape {shape}); the file is not a valid IDX file")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def load_mnist(path: str | os.PathLike[str], kind: str = "train", *, scale: bool = True,
               dtype: DTypeLike = np.float64) -> tuple[NDArray[Any], NDArray[np.int64]]:
    """MNIST (or a set in the same format, e.g. Fashion-MNIST) from its IDX files.

    fastnn does not download anything: give the directory holding the files
    from the MNIST distribution, ``train-images-idx3-ubyte`` and
    ``train-labels-idx1-ubyte`` for ``kind="train"``, ``t10k-images-idx3-ubyte``
    and ``t10k-labels-idx1-ubyte`` for ``kind="t10k"`` (alias ``"test"``), each
    raw or gzip-compressed (``.gz``; also spelled ``train-images.idx3-ubyte``).

    Parameters
    ----------
    path : str or os.PathLike
        Directory holding the files.
    kind : {"train", "t10k", "test"}, default "train"
    scale : bool, default True
        Divide the pixels (0..255) by 255, so X lies in [0, 1]; False keeps
        the values 0..255 (as floats).
    dtype : float dtype, default float64
        Dtype of X (float32 halves the memory: 60000 x 784 is 376 MB in float64).

    Returns
    -------
    X : ndarray, shape (n_images, rows * cols) -- (60000, 784) / (10000, 784) for MNIST
        Each image's pixels row by row.
    y : ndarray, int64, shape (n_images,)

    Raises
    ------
    FileNotFoundError
        When a file is missing (the message names the expected file names).
    ValueError
        On a bad magic number, a dtype code other than unsigned byte, the wrong
        number of dimensions, truncated (or over-long) data, damaged gzip data,
        or image and label files with different counts.
    """
    if kind not in _MNIST_KINDS:
        raise ValueError(f"kind must be one of {sorted(_MNIST_KINDS)}, got {kind!r}")
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"dtype must be a float dtype, got {dtype}")
    directory = os.fspath(path)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{directory!r} is not a directory; load_mnist expects the "
                                "directory holding the MNIST IDX files")
    prefix = _MNIST_KINDS[kind]
    images_path = _find_idx(directory, f"{prefix}-images-idx3-ubyte")
    labels_path = _find_idx(directory, f"{prefix}-labels-idx1-ubyte")
    images = _read_idx(images_path, 3, "images")
    labels = _read_idx(labels_path, 1, "labels")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{images_path} has {images.shape[0]} images but {labels_path} has "
                         f"{labels.shape[0]} labels")
    X = images.reshape(images.shape[0], images.shape[1] * images.shape[2]).astype(dtype)
    if scale:
        X /= dtype.type(255)
    return X, labels.astype(np.int64)
