"""Input checks at the API boundary.

Why it is built this way: data is converted and checked exactly once, where it
enters fastnn (``fit``, ``predict``, a loss called by the user, a weight
assignment), so the kernels below can assume C-contiguous arrays of the right
dtype and never convert inside a loop.  Every message names the argument, the
problem and the shapes involved.  Conversion always copies when it must change
anything, so a caller's array is never modified.  Out-of-core data is never
copied whole: the finiteness check reads an array a chunk at a time, and a
memory-mapped training X is used in place or refused (``check_mapped``).

A masked array (``numpy.ma.MaskedArray``) is taken at its word: with no
masked element it is its data, with any masked element it is refused --
``numpy.asarray`` would silently hand over whatever the masked slots hold.
Integer arguments are Python or NumPy integers (``numbers.Integral``), never
bools; flags are Python or NumPy bools, never strings or numbers.
"""

from __future__ import annotations

import mmap
import numbers
from typing import Any, Literal, overload

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

#: Loss reductions, in the order of the C enum ``FASTNN_REDUCTION_*``: one list,
#: read by the losses and by the backends (``numpy_ops.REDUCTIONS`` is this one).
REDUCTIONS = ("mean", "sum")


def check_dtype(dtype: DTypeLike) -> np.dtype[Any]:
    """The network dtype as a NumPy dtype: float32 or float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from exc
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be 'float32' or 'float64', got {dt.name!r}")
    return dt


def unmasked(a: Any, name: str) -> Any:
    """``a`` itself, or the data of a masked array none of whose elements is masked.

    Parameters
    ----------
    a : object
        Anything; only a ``numpy.ma.MaskedArray`` is looked at.
    name : str
        The argument's name in the message.

    Returns
    -------
    object
        ``a``, or ``a.data`` (the same memory, never modified) for a masked array.

    Raises
    ------
    ValueError
        If ``a`` is a masked array with at least one masked element.
    """
    if not isinstance(a, np.ma.MaskedArray):
        return a
    mask = np.ma.getmaskarray(a)
    if mask.any():
        first = tuple(int(i) for i in np.argwhere(mask)[0])
        raise ValueError(f"{name} is a masked array with {int(mask.sum())} masked value(s) "
                         f"(first at index {first}, shape {a.shape}); fastnn does not guess "
                         f"them: fill or drop the masked values first (e.g. {name}.filled(v), "
                         "or keep the rows without any)")
    return np.ma.getdata(a)


def as_numeric(a: ArrayLike, name: str) -> NDArray[Any]:
    """``a`` as an ndarray of real numbers (bool, int or float), else a TypeError.

    A masked array with a masked element is a ValueError (see ``unmasked``).
    """
    arr = np.asarray(unmasked(a, name))
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must hold real numbers; got an array of dtype {arr.dtype} "
            f"(shape {arr.shape})")
    return arr


def as_float_array(a: ArrayLike, dtype: DTypeLike, name: str, *,
                   ndim: int | None = None) -> NDArray[Any]:
    """``a`` as a C-contiguous array of ``dtype``, checked for finite values."""
    arr = as_numeric(a, name)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    with np.errstate(over="ignore", invalid="ignore"):   # overflow is reported below
        out = np.ascontiguousarray(arr, dtype=dtype)
    bad = first_non_finite(out)
    if bad is not None:
        if np.isfinite(arr[bad]):
            raise ValueError(f"{name} has a value too large for {np.dtype(dtype).name} "
                             f"({float(arr[bad]):g} at index {bad}, shape {arr.shape})")
        raise ValueError(f"{name} contains NaN or infinity (first at index {bad}, "
                         f"shape {arr.shape})")
    return out


#: elements per chunk of ``first_non_finite``: its temporaries stay ~128 KiB whatever
#: the array's size (a memmap of many GB is read a chunk at a time, never copied),
#: a small part of a small network's training memory (a 1 Mi-element chunk took 2
#: MiB, as much as all of the MNIST-shaped network's weights and momentum); the
#: check of 47 M float32 values takes 11.6 ms in place of 10.0
CHUNK_ELEMENTS = 1 << 16


def first_non_finite(a: NDArray[Any]) -> tuple[int, ...] | None:
    """The index of ``a``'s first NaN or infinity in C order, or None.

    Reads ``a`` in chunks of ``CHUNK_ELEMENTS`` elements, so the boolean
    temporaries are a chunk's, not the array's (``np.isfinite(a).all()`` over an
    800 MB float32 memmap would allocate 200 MB).

    Parameters
    ----------
    a : ndarray, C-contiguous

    Returns
    -------
    tuple of int, or None
        As ``tuple(np.argwhere(~np.isfinite(a))[0])``.
    """
    flat = a.reshape(-1)                  # a view: a is C-contiguous
    for start in range(0, flat.shape[0], CHUNK_ELEMENTS):
        finite = np.isfinite(flat[start:start + CHUNK_ELEMENTS])
        if not finite.all():
            at = start + int(np.argmin(finite))
            return tuple(int(i) for i in np.unravel_index(at, a.shape))
    return None


def _file_mapped(a: Any) -> bool:
    """Whether ``a``'s memory is a file mapping (an ``np.memmap``, ``np.load(...,
    mmap_mode=...)``, an array over an ``mmap.mmap``), through its bases."""
    while a is not None:
        if isinstance(a, (np.memmap, mmap.mmap)):
            return True
        a = getattr(a, "base", None) if isinstance(a, np.ndarray) else getattr(a, "obj", None)
    return False


def check_mapped(X: NDArray[Any], dtype: DTypeLike, name: str = "X") -> None:
    """Refuse a file-mapped training X that would have to be copied whole into memory.

    A memmap that is C-contiguous and of the network's dtype is used in place
    (rows are read as the batches need them); any other dtype or layout would
    be converted to a private copy of the whole file, held for the whole fit,
    which is what out-of-core data cannot afford -- so ``fit`` refuses it,
    naming the cure.  (``predict`` and ``evaluate`` convert it as any array,
    as scikit-learn's estimator checks expect: their outputs and activations
    are as many rows anyway.)
    """
    if not _file_mapped(X):
        return
    want = np.dtype(dtype)
    if X.dtype != want:
        raise TypeError(
            f"{name} is a memory-mapped array of dtype {X.dtype} (shape {X.shape}) but the "
            f"network's dtype is {want.name}: converting it would copy the whole file into "
            f"memory. fastnn uses a memmap in place only when it is C-contiguous and of the "
            f"network's dtype: write the file as {want.name} once, or pass fit an iterable "
            f"of (X_batch, y_batch) pairs that converts each batch")
    if not X.flags.c_contiguous:
        raise ValueError(
            f"{name} is a memory-mapped array that is not C-contiguous (shape {X.shape}, "
            f"strides {X.strides}): using it would copy the whole file into memory. fastnn "
            f"uses a memmap in place only when it is C-contiguous (whole rows, row-major) "
            f"and of the network's dtype: write such a file once, or pass fit an iterable "
            f"of (X_batch, y_batch) pairs")


def as_samples(X: ArrayLike, dtype: DTypeLike, n_features: int | None,
               name: str = "X") -> NDArray[Any]:
    """X as a (n_samples, n_features) C-contiguous float array, n_samples >= 1."""
    arr = as_numeric(X, name)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: shape {arr.shape}, need at least one sample")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"{name} has {arr.shape[1]} features per sample (shape {arr.shape}) "
                         f"but the network expects {n_features}")
    return as_float_array(arr, dtype, name)


def as_batch(a: ArrayLike, dtype: DTypeLike | None, shape: tuple[int | None, ...], name: str,
             owner: object, of_last_forward: bool = False) -> NDArray[Any]:
    """``a`` as a C-contiguous ``dtype`` array of ``shape`` (None: any size there).

    For a layer called directly: converts and checks the shape, not the
    values (a Network checks values once, where data enters it).  An array
    that already fits is returned as is, so the per-batch cost is a few
    attribute reads (``owner``, the layer, is formatted only for an error:
    "... but [the last forward of] <owner> expects shape ...").
    """
    if (type(a) is np.ndarray and a.dtype == dtype and a.flags.c_contiguous
            and _fits(a.shape, shape)):
        return a
    arr = as_numeric(a, name)
    if not _fits(arr.shape, shape):
        want = ", ".join("n" if s is None else str(s) for s in shape)
        want = f"({want},)" if len(shape) == 1 else f"({want})"
        whose = f"the last forward of {owner!r}" if of_last_forward else repr(owner)
        raise ValueError(f"{name} has shape {arr.shape} but {whose} expects shape {want}")
    return np.ascontiguousarray(arr, dtype=dtype)


def _fits(actual: tuple[int, ...], shape: tuple[int | None, ...]) -> bool:
    if len(actual) != len(shape):
        return False
    for a, s in zip(actual, shape):     # a loop, not all(genexpr): called per batch
        if s is not None and s != a:
            return False
    return True


@overload
def check_int(value: Any, name: str, *, minimum: int | None = None,
              allow_none: Literal[False] = False) -> int: ...


@overload
def check_int(value: Any, name: str, *, minimum: int | None = None,
              allow_none: bool) -> int | None: ...


def check_int(value: Any, name: str, *, minimum: int | None = None,
              allow_none: bool = False) -> int | None:
    """An int (not bool) >= minimum."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_bool(value: Any, name: str) -> bool:
    """A Python or NumPy bool, as a bool; anything else (``"no"``, 0, None) is a TypeError."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_float(value: Any, name: str, *, minimum: float | None = None,
                maximum: float | None = None, below: float | None = None,
                above: float | None = None) -> float:
    """A finite real number in [minimum, maximum] (and < below, > above, if given)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    if above is not None and value <= above:
        raise ValueError(f"{name} must be > {above}, got {value}")
    if below is not None and value >= below:
        raise ValueError(f"{name} must be < {below}, got {value}")
    return value


# ------------------------------------------------------ loss weights and parameters
class ZeroWeightError(ValueError):
    """``reduction="mean"`` over samples whose total weight is 0: the mean is undefined.

    The total weight of a batch is the sum of its sample weights, times the
    class weight of each sample's label for ``CrossEntropyLoss(weight=...)``
    with class labels (PyTorch's denominator).  ``epoch`` (0-based) is set
    when a training run raised it.
    """

    epoch: int | None = None


#: the message of a kernel's ZeroWeightError, the same on every backend
ZERO_WEIGHT_MESSAGE = ("reduction='mean' over rows whose weights sum to 0: the mean is "
                       "undefined (give some row a weight > 0, or use reduction='sum')")


def check_loss_params(kernel: str, params: dict[str, Any]) -> dict[str, float]:
    """A loss's scalar parameters as floats, in PyTorch's ranges.

    ``delta`` > 0 (Huber), ``beta`` >= 0 (smooth L1), ``label_smoothing`` in
    [0, 1] (cross-entropy); every one finite.  ``kernel`` names the loss in
    the messages.
    """
    out = {}
    for name, value in params.items():
        label = f"{kernel}: {name}"
        if name == "delta":
            out[name] = check_float(value, label, above=0.0)
        elif name == "beta":
            out[name] = check_float(value, label, minimum=0.0)
        elif name == "label_smoothing":
            out[name] = check_float(value, label, minimum=0.0, maximum=1.0)
        else:
            out[name] = check_float(value, label)
    return out


def as_weights(values: ArrayLike, name: str, length: int | None = None,
               what: str = "values") -> NDArray[np.float64]:
    """``values`` as a C-contiguous 1-D float64 array of finite weights >= 0.

    Parameters
    ----------
    values : array-like, shape (length,)
    name : str
        The argument's name in the messages.
    length : int, optional
        The length required (None: any).
    what : str
        What ``length`` counts, for the message ("samples", "outputs").

    Raises
    ------
    ValueError
        For another shape, NaN or infinity, or a negative weight (naming the
        first one and its index).
    """
    arr = as_numeric(values, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if length is not None and arr.shape[0] != length:
        raise ValueError(f"{name} has {arr.shape[0]} values but there are {length} {what}")
    out = as_float_array(arr, np.float64, name)
    if (out < 0).any():
        bad = int(np.argmax(out < 0))
        raise ValueError(f"{name} must be >= 0; got {out[bad]:g} at index {bad}")
    return out


def check_kernel_weights(rows: int, sample_weight: Any, width: int = 0, vector: Any = None,
                         vector_name: str = "weight") -> None:
    """The weight arrays a loss kernel takes, checked the same way on every backend.

    ``sample_weight``: None or a C-contiguous float64 array (rows,) of finite
    values >= 0; ``vector`` (the class weights, ``pos_weight``): None or the
    same of shape (width,).
    """
    for arr, name, n, what in ((sample_weight, "sample_weight", rows, "rows"),
                               (vector, vector_name, width, "outputs")):
        if arr is None:
            continue
        if (not isinstance(arr, np.ndarray) or arr.dtype != np.float64
                or not arr.flags.c_contiguous):
            raise TypeError(f"{name} must be a C-contiguous float64 numpy array, got "
                            f"{type(arr).__name__}"
                            + (f" of dtype {arr.dtype}" if isinstance(arr, np.ndarray) else ""))
        as_weights(arr, name, n, what)
