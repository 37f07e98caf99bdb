"""64-bit index arithmetic in the C kernels: offsets beyond 2**31 elements.

Why it is built this way: a kernel that computed ``i * ld`` or a loop counter
in 32-bit ``int`` would be right on every array of ordinary size and wrong (a
read or write far outside the array) once an offset passes 2**31 elements.
The GEMM takes row strides, so it is driven directly through its C entry
points (ctypes on the extension's exported symbols; the Python API only takes
C-contiguous arrays) with a stride of 2**31 + 16 elements: row 1 then starts
beyond 2**31, and the stride itself does not fit in an ``int``, while the
buffer is mostly untouched zero pages (about 8.6 GB of address space, a few MB
of memory).  The small-product and the
packed paths, every operand transposed or not, and every instruction set
this CPU has are run.  The elementwise test needs 8.6 GB of real memory, so
it runs only with FASTNN_BIG_TESTS=1.
"""

import ctypes
import os

import numpy as np
import pytest

cython_ops = pytest.importorskip("fastnn.backends.cython_ops",
                                 reason="the compiled backend is not installed")

#: a row stride beyond int32 (any int product or truncation of it goes wrong)
BIG = 2**31 + 16
_F32P = ctypes.POINTER(ctypes.c_float)
_I64 = ctypes.c_int64


def _lib():
    lib = ctypes.CDLL(cython_ops.__file__)
    lib.fastnn_gemm_f32.restype = ctypes.c_int
    lib.fastnn_gemm_f32.argtypes = [ctypes.c_int, ctypes.c_int, _I64, _I64, _I64,
                                    _F32P, _I64, _F32P, _I64, ctypes.c_float, _F32P, _I64,
                                    ctypes.c_void_p]
    lib.fastnn_act_forward_f32.restype = ctypes.c_int
    lib.fastnn_act_forward_f32.argtypes = [ctypes.c_int, ctypes.c_double, _I64, _I64,
                                           _F32P, _F32P]
    return lib


def _ptr(a):
    return a.ctypes.data_as(_F32P)


def _strided(rows, cols):
    """A zeroed float32 buffer holding a rows x cols matrix with row stride BIG,
    and that matrix as a view; skips if the address space is not available."""
    try:
        buf = np.zeros((rows - 1) * BIG + cols, dtype=np.float32)
    except MemoryError:
        pytest.skip(f"cannot reserve {(rows - 1) * BIG * 4 / 2**30:.1f} GiB of address space")
    view = np.lib.stride_tricks.as_strided(buf, shape=(rows, cols), strides=(BIG * 4, 4))
    return buf, view


@pytest.fixture(params=cython_ops.supported_isas())
def isa(request):
    before = cython_ops.get_isa()
    cython_ops.set_isa(request.param)
    yield request.param
    cython_ops.set_isa(before)


# (which operand has the huge stride, trans_a, trans_b, m, n, k): the stored
# shape of the strided operand has 2 rows; m*n*k above 10**6 takes the packed
# path on every ISA, the others the direct small-product path
CASES = [
    ("A", False, False, 2, 8, 5), ("A", False, False, 2, 600, 1000),
    ("A", True, False, 8, 8, 2), ("A", True, False, 1000, 600, 2),
    ("B", False, False, 4, 8, 2), ("B", False, False, 600, 1000, 2),
    ("B", False, True, 4, 2, 8), ("B", False, True, 1000, 2, 600),
    ("C", False, False, 2, 8, 5), ("C", False, False, 2, 1000, 600),
]


@pytest.mark.parametrize("which, ta, tb, m, n, k", CASES)
def test_gemm_row_offsets_beyond_int32(isa, which, ta, tb, m, n, k):
    lib = _lib()
    rng = np.random.default_rng(7)
    a_shape = (k, m) if ta else (m, k)
    b_shape = (n, k) if tb else (k, n)
    A = rng.standard_normal(a_shape).astype(np.float32)
    B = rng.standard_normal(b_shape).astype(np.float32)
    C = np.zeros((m, n), dtype=np.float32)
    lda, ldb, ldc = a_shape[1], b_shape[1], n
    if which == "A":
        buf, view = _strided(*a_shape)
        view[...] = A
        A, lda = buf, BIG
    elif which == "B":
        buf, view = _strided(*b_shape)
        view[...] = B
        B, ldb = buf, BIG
    else:
        buf, view = _strided(m, n)
        C, ldc = buf, BIG
    status = lib.fastnn_gemm_f32(ta, tb, m, n, k, _ptr(A), lda, _ptr(B), ldb, 0.0,
                                 _ptr(C), ldc, None)
    assert status == 0
    got = view if which == "C" else C
    opa = (view if which == "A" else A).astype(np.float64)
    opb = (view if which == "B" else B).astype(np.float64)
    want = (opa.T if ta else opa) @ (opb.T if tb else opb)
    # float32 products of length k <= 1000 against a float64 reference
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.sqrt(k))
    if which == "C":  # nothing written just after or before a row
        for r in range(m):
            assert not buf[r * BIG + n:r * BIG + n + 4096].any()
            assert r == 0 or not buf[r * BIG - 4096:r * BIG].any()


@pytest.mark.skipif(os.environ.get("FASTNN_BIG_TESTS") != "1",
                    reason="needs 8.6 GB of memory: set FASTNN_BIG_TESTS=1")
def test_elementwise_beyond_int32_elements():
    # relu, in place, on 2**16 rows x (2**15 + 16) columns = 2**31 + 2**20
    # elements: a 32-bit counter or offset would stop early or write elsewhere
    lib = _lib()
    rows, cols = 2**16, 2**15 + 16
    x = np.full(rows * cols, -1.0, dtype=np.float32)
    x[-1] = 2.0
    relu = 3  # FASTNN_ACT_RELU (csrc/fastnn.h)
    assert lib.fastnn_act_forward_f32(relu, 0.0, rows, cols, _ptr(x), _ptr(x)) == 0
    assert x[-1] == 2.0 and x[-2] == 0.0 and x[2**31] == 0.0
    assert np.count_nonzero(x) == 1
