# cython: language_level=3
"""CythonOps: the compiled backend -- NumpyOps' kernels, run by C code in csrc/.

Why it is built this way: each method keeps NumpyOps' signature and meaning
(the reference is the spec), checks every shape, dtype and contiguity while it
holds the GIL, allocates its outputs with NumPy, then releases the GIL for one
C call on raw pointers.  C returns an int status that ``_check_status`` turns
into a Python exception; C itself never prints or aborts.  One fused-type body
(``floating``) serves float32 and float64.
"""

import numpy as np

cimport cython
from cython cimport floating
from libc.stdint cimport int64_t, uint64_t

from fastnn.backends._csrc cimport *
from fastnn.backends.numpy_ops import NumpyOps

__all__ = ["CythonOps"]


cdef int _check_status(int status, str what) except -1:
    """Raise the Python exception for a non-zero C status."""
    if status == FASTNN_OK:
        return 0
    if status == FASTNN_ENOMEM:
        raise MemoryError(f"{what}: out of memory")
    if status == FASTNN_EUNSUPPORTED:
        raise RuntimeError(f"{what}: not supported by this CPU")
    if status == FASTNN_EINTERRUPTED:
        raise KeyboardInterrupt(f"{what}: interrupted")
    raise ValueError(f"{what}: invalid argument (status {status})")


def _float_array(a, str name):
    """``a`` itself if it is a C-contiguous float32/float64 ndarray, else an error."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype != np.float32 and a.dtype != np.float64:
        raise TypeError(f"{name} must be float32 or float64, got {a.dtype} (shape {a.shape})")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (shape {a.shape})")
    return a


def _same(a, str a_name, b, str b_name):
    """Check that b has a's shape and dtype."""
    if a.shape != b.shape:
        raise ValueError(f"{b_name} has shape {b.shape} but {a_name} has shape {a.shape}")
    if a.dtype != b.dtype:
        raise TypeError(f"{b_name} is {b.dtype} but {a_name} is {a.dtype}")


cdef int _dropout(const floating[::1] x, floating[::1] mask, floating[::1] y, double p,
                  uint64_t seed, uint64_t step) except -1:
    cdef int status
    cdef int64_t size = x.shape[0]
    with nogil:
        if floating is float:
            status = fastnn_dropout_f32(size, p, seed, step, &x[0], &mask[0], &y[0])
        else:
            status = fastnn_dropout_f64(size, p, seed, step, &x[0], &mask[0], &y[0])
    return _check_status(status, "dropout")


class CythonOps(NumpyOps):
    """Compiled kernels with NumpyOps' signatures and numbers."""

    name = "cython"

    def rng_bits(self, seed, step, index):
        idx = np.asarray(index, dtype=np.uint64)
        out = np.empty(idx.shape, dtype=np.uint64)
        cdef uint64_t s = seed, t = step
        flat_in = idx.reshape(-1)
        flat_out = out.reshape(-1)
        cdef Py_ssize_t i
        for i in range(flat_in.shape[0]):
            flat_out[i] = fastnn_rng_bits(s, t, <uint64_t>flat_in[i])
        return out

    def dropout_forward(self, X, p, seed, step):
        X = _float_array(X, "X")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout p must lie in [0, 1], got {p}")
        Y = np.empty_like(X)
        mask = np.empty_like(X)
        if X.size:
            if X.dtype == np.float32:
                _dropout[float](X.reshape(-1), mask.reshape(-1), Y.reshape(-1), p, seed, step)
            else:
                _dropout[double](X.reshape(-1), mask.reshape(-1), Y.reshape(-1), p, seed, step)
        return Y, mask
