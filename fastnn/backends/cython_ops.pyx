# cython: language_level=3
"""CythonOps: the compiled backend -- NumpyOps' kernels, run by C code in csrc/.

Why it is built this way: each method keeps NumpyOps' signature and meaning
(the reference is the spec), checks every shape, dtype and contiguity while it
holds the GIL, allocates its outputs with NumPy, then releases the GIL for one
C call on raw pointers.  C returns an int status that ``_check_status`` turns
into a Python exception; C itself never prints or aborts.  One fused-type body
(``floating``) serves float32 and float64; inputs are taken as ``const``
memoryviews so read-only arrays work, and a size-0 view gives a NULL pointer
(C never dereferences a pointer for an empty array).

The module also exposes the instruction-set and thread controls of the C
side: ``cpu_isa``, ``get_isa``, ``set_isa``, ``supported_isas``,
``get_num_threads``, ``set_num_threads``, ``fma_peak`` (the machine's
multiply-add peak, for benchmarks), ``build_flags``, and
``source_hash`` (the fingerprint of the sources it was built from, which
fastnn compares with a source tree's; see fastnn/backends/_source_hash.py).
The environment variable ``FASTNN_ISA`` (generic|avx2|avx512), when set, is
applied at import with the same checks as ``set_isa``.
"""

import math
import os
import threading

import numpy as np

cimport cython
from cython cimport floating
from libc.errno cimport errno
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memset
cimport numpy as cnp

from fastnn.backends._csrc cimport *
from fastnn._validation import (ZERO_WEIGHT_MESSAGE, ZeroWeightError, check_kernel_weights,
                                check_loss_params)
from fastnn.backends.numpy_ops import (NumpyOps, _check_activation, _reduction_scale,
                                       _sk_total, _unknown_optimizer, check_clip_call,
                                       check_l2_call,
                                       check_optimizer_call, missing_state, rows_width)

cnp.import_array()

__all__ = ["CythonOps", "Trainer", "cpu_isa", "get_isa", "set_isa", "supported_isas",
           "get_num_threads", "set_num_threads", "fma_peak", "build_flags", "source_hash"]

cdef extern from *:
    """
    static const char *fastnn_build_flags(void)
    {
        return "compiler "
    #if defined(__VERSION__)
            __VERSION__
    #else
            "unknown"
    #endif
    #if defined(__OPTIMIZE__)
            ", optimized"
    #else
            ", not optimized"
    #endif
    #if defined(__SANITIZE_ADDRESS__)
            ", AddressSanitizer"
    #endif
    #if defined(__AVX2__) || defined(__AVX512F__)
            ", compiled with -march above x86-64"
    #endif
    #if defined(FASTNN_CFLAGS)
            ", flags: " FASTNN_CFLAGS
    #endif
            ;
    }

    /* setup.py defines it (fastnn/backends/_source_hash.py), and finds the
       marker in a built extension to tell whether it is up to date */
    #ifndef FASTNN_SOURCE_HASH
    #define FASTNN_SOURCE_HASH "unknown"
    #endif
    static const char fastnn_source_marker[] = "fastnn-source-hash:" FASTNN_SOURCE_HASH;
    static const char *fastnn_source_hash(void)
    {
        return fastnn_source_marker + sizeof "fastnn-source-hash:" - 1;
    }
    """
    const char *fastnn_build_flags()
    const char *fastnn_source_hash()


cdef extern from *:
    """
    #include <signal.h>
    #include <string.h>
    #include "fastnn.h"

    /* SIGINT during a training call (Trainer.run with catch_sigint).  The
     * handler only counts (async-signal-safe): the trainer reads the count
     * as its cancel flag, the wrapper reads it after the call. */
    static volatile sig_atomic_t fastnn_sigints;

    static void fastnn_on_sigint(int signum)
    {
        (void)signum;
        if (fastnn_sigints < 2)
            fastnn_sigints = fastnn_sigints + 1;
    }

    #if defined(_WIN32)
    typedef struct { int unused; } fastnn_sigsave;
    static int fastnn_sigint_catch(fastnn_trainer *t, fastnn_sigsave *old)
    {
        (void)t; (void)old;
        return -1;
    }
    static int fastnn_sigint_release(fastnn_trainer *t, const fastnn_sigsave *old)
    {
        (void)t; (void)old;
        return -1;
    }
    #else
    typedef struct sigaction fastnn_sigsave;
    /* install the counting handler, saving the previous action in *old */
    static int fastnn_sigint_catch(fastnn_trainer *t, fastnn_sigsave *old)
    {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = fastnn_on_sigint;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART | SA_ONSTACK;
        fastnn_sigints = 0;
        fastnn_trainer_set_cancel(t, &fastnn_sigints);
        if (sigaction(SIGINT, &sa, old) != 0) {
            fastnn_trainer_set_cancel(t, NULL);
            return -1;
        }
        return 0;
    }
    /* put the previous action back exactly */
    static int fastnn_sigint_release(fastnn_trainer *t, const fastnn_sigsave *old)
    {
        const int rc = sigaction(SIGINT, old, NULL);
        fastnn_trainer_set_cancel(t, NULL);
        return rc;
    }
    #endif

    static int fastnn_sigint_count(void) { return (int)fastnn_sigints; }
    """
    ctypedef struct fastnn_sigsave:
        pass
    int fastnn_sigint_catch(fastnn_trainer *t, fastnn_sigsave *old) nogil
    int fastnn_sigint_release(fastnn_trainer *t, const fastnn_sigsave *old) nogil
    int fastnn_sigint_count() nogil


# ------------------------------------------------------------------ status
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
    if status == FASTNN_EZEROWEIGHT:
        raise ZeroWeightError(ZERO_WEIGHT_MESSAGE)     # the reference's words
    raise ValueError(f"{what}: invalid argument (status {status})")


# ------------------------------------------------------------------ tables
# The C side's tables (csrc/fastnn.h's X-macros), read once at import: the
# wrapper keeps no list of codes of its own.  tests/test_tables.py checks them
# against the reference's (numpy_ops.ACTIVATIONS, NEEDS_PREACTIVATION, ...).
cdef str _text(const char *s):
    return None if s == NULL else s.decode("ascii")


def _c_tables():
    """The C tables of activations, losses, optimizers, reductions and ISAs.

    Returns
    -------
    dict
        ``"activations"``: one dict per code (``name``, ``needs_z``,
        ``rowwise``); ``"losses"``: (``name``, ``python_name``, ``labels``,
        ``params``, a tuple of names, ``vector``, a name or None);
        ``"optimizers"``: (``name``, ``n_state``, ``hypers``, a tuple of
        names); ``"reductions"`` and ``"isas"``: the names, by code;
        ``"metrics"``: (``name``, ``labels``).
    """
    return {
        "activations": [{"name": _text(fastnn_activation_name(i)),
                         "needs_z": fastnn_activation_needs_z(i) == 1,
                         "rowwise": fastnn_activation_rowwise(i) == 1}
                        for i in range(FASTNN_N_ACT)],
        "losses": [{"name": _text(fastnn_loss_name(i)),
                    "python_name": _text(fastnn_loss_python_name(i)),
                    "labels": fastnn_loss_labels(i) == 1,
                    "params": tuple(_text(fastnn_loss_params(i)).split()),
                    "vector": _text(fastnn_loss_vector(i)) or None}
                   for i in range(FASTNN_N_LOSS)],
        "optimizers": [{"name": _text(fastnn_optimizer_name(i)),
                        "n_state": fastnn_optimizer_n_state(i),
                        "n_hyper": fastnn_optimizer_n_hyper(i),
                        "root": fastnn_optimizer_root(i) == 1,
                        "hypers": tuple(_text(fastnn_optimizer_hypers(i)).split())}
                       for i in range(FASTNN_N_OPT)],
        "reductions": [_text(fastnn_reduction_name(i)) for i in range(FASTNN_N_REDUCTION)],
        "metrics": [{"name": _text(fastnn_metric_name(i)),
                     "labels": fastnn_metric_labels(i) == 1} for i in range(FASTNN_N_METRIC)],
        "isas": [_text(fastnn_isa_name(i)) for i in range(FASTNN_N_ISA)],
    }


_TABLES = _c_tables()
_ACT_CODES = {row["name"]: i for i, row in enumerate(_TABLES["activations"])}
_LOSS_CODES = {(row["python_name"], row["labels"]): i for i, row in enumerate(_TABLES["losses"])}
_OPT_CODES = {row["name"]: i for i, row in enumerate(_TABLES["optimizers"])}
_REDUCTION_CODES = {name: i for i, name in enumerate(_TABLES["reductions"])}
_ISA_NAMES = tuple(_TABLES["isas"])
#: how many scalar parameters a loss may have (fastnn_loss_args.param)
LOSS_MAX_PARAM = FASTNN_LOSS_MAX_PARAM
_METRIC_CODES = {row["name"]: i for i, row in enumerate(_TABLES["metrics"])}


# -------------------------------------------------------------- ISA, threads


def cpu_isa():
    """Name of the best instruction set this CPU supports."""
    return fastnn_isa_name(fastnn_cpu_isa()).decode()


def get_isa():
    """Name of the instruction set the GEMM micro-kernels use now."""
    return fastnn_isa_name(fastnn_get_isa()).decode()


def supported_isas():
    """Names of every instruction set this CPU can run, slowest first."""
    return list(_ISA_NAMES[:fastnn_cpu_isa() + 1])


def set_isa(name):
    """Force the instruction set: "generic", "avx2" or "avx512".

    Raises ValueError for an unknown name and RuntimeError when the CPU lacks it.
    """
    if not isinstance(name, str):
        raise TypeError(f"the ISA name must be a string, got {type(name).__name__}")
    if name not in _ISA_NAMES:
        raise ValueError(f"unknown ISA {name!r}; expected one of {_ISA_NAMES}")
    cdef int status = fastnn_set_isa(_ISA_NAMES.index(name))
    if status == FASTNN_EUNSUPPORTED:
        raise RuntimeError(f"ISA {name!r} is not supported by this CPU "
                           f"(it supports {supported_isas()})")
    _check_status(status, "set_isa")


def get_num_threads():
    """Threads the compiled kernels may use."""
    return fastnn_get_num_threads()


def set_num_threads(n):
    """Let the compiled kernels use ``n`` >= 1 threads (results do not depend on it)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of threads must be an integer >= 1, got {n!r}")
    _check_status(fastnn_set_num_threads(min(n, 1 << 20)), "set_num_threads")


def fma_peak(dtype):
    """The machine's multiply-add peak, in GFLOP/s, for ``dtype`` on fastnn's threads.

    Independent FMA chains in registers, with the instruction set the GEMM
    uses (``get_isa()``: ``FASTNN_ISA`` or the best the CPU has), run on all
    ``get_num_threads()`` threads at once and timed, the best of a few runs
    (about 0.1 s in all).  An FMA counts as 2 flops.  With the ``generic``
    ISA it is the compiler-vectorized C of the portable kernels (a multiply
    and an add per element, no FMA instruction).

    Parameters
    ----------
    dtype : str or numpy dtype
        ``float32`` or ``float64``.

    Returns
    -------
    float
        GFLOP/s.

    Raises
    ------
    TypeError
        For any other dtype.
    """
    dt = None
    if dtype is not None:           # np.dtype(None) would be float64: no silent default
        try:
            dt = np.dtype(dtype)
        except (TypeError, ValueError):
            pass
    if dt is None or dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"fma_peak: dtype must be float32 or float64, got {dtype!r}")
    cdef double gflops = 0.0
    cdef int status
    cdef bint f64 = dt == np.float64
    with nogil:
        status = fastnn_fma_peak_f64(&gflops) if f64 else fastnn_fma_peak_f32(&gflops)
    _check_status(status, "fma_peak")
    return gflops


def build_flags():
    """A short description of how the C code was compiled."""
    return fastnn_build_flags().decode()


def source_hash():
    """SHA-256 of the C and Cython sources this extension was built from ("unknown"
    when it was built without setup.py)."""
    return fastnn_source_hash().decode()


_env_isa = os.environ.get("FASTNN_ISA", "").strip()
if _env_isa:
    try:
        set_isa(_env_isa.lower())
    except (ValueError, RuntimeError) as _exc:
        raise type(_exc)(f"the environment variable FASTNN_ISA={_env_isa!r} is not usable: "
                         f"{_exc} (or unset it)") from None


# --------------------------------------------------------------- validation
def _float_array(a, str name):
    """``a`` itself if it is a C-contiguous float32/float64 ndarray, else an error."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype != np.float32 and a.dtype != np.float64:
        raise TypeError(f"{name} must be float32 or float64, got {a.dtype} (shape {a.shape})")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (shape {a.shape})")
    return a


def _matrix(a, str name):
    """A C-contiguous 2-D float array."""
    _float_array(a, name)
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {a.shape}")
    return a


def _same(a, str a_name, b, str b_name):
    """Check that b is a C-contiguous float array with a's shape and dtype."""
    _float_array(b, b_name)
    if a.shape != b.shape:
        raise ValueError(f"{b_name} has shape {b.shape} but {a_name} has shape {a.shape}")
    if a.dtype != b.dtype:
        raise TypeError(f"{b_name} is {b.dtype} (shape {b.shape}) but {a_name} is "
                        f"{a.dtype} (shape {a.shape})")
    return b


def _same_dtype(a, str a_name, b, str b_name):
    if a.dtype != b.dtype:
        raise TypeError(f"{b_name} is {b.dtype} (shape {b.shape}) but {a_name} is "
                        f"{a.dtype} (shape {a.shape})")


def _writable(a, str name):
    if not a.flags.writeable:
        raise ValueError(f"{name} is updated in place but is read-only (shape {a.shape})")


cdef int _act_code(kind) except -1:
    _check_activation(kind)              # the reference's checks and errors
    if kind not in _ACT_CODES:
        raise ValueError(f"activation {kind!r} has no compiled kernel "
                         f"(the C table has {sorted(_ACT_CODES)})")
    return _ACT_CODES[kind]


cdef bint _needs_z(int act):
    """Whether activation ``act``'s derivative reads Z (the C table's needs_z)."""
    return fastnn_activation_needs_z(act) == 1


cdef bint _rowwise(int act):
    """Whether activation ``act`` works on whole rows (the C table's rowwise)."""
    return fastnn_activation_rowwise(act) == 1


cdef int _reduction_code(reduction, count) except -1:
    _reduction_scale(reduction, count)   # the reference's checks and errors
    if reduction not in _REDUCTION_CODES:
        raise ValueError(f"reduction {reduction!r} has no compiled kernel "
                         f"(the C table has {sorted(_REDUCTION_CODES)})")
    return _REDUCTION_CODES[reduction]


cdef inline bint _f32(a):
    return a.itemsize == 4


# ------------------------------------------------------------ pointer access
cdef inline const floating *_cp(const floating[::1] a) noexcept nogil:
    """Data pointer of a const view; NULL for an empty view (never dereferenced)."""
    return &a[0] if a.shape[0] > 0 else NULL


cdef inline floating *_mp(floating[::1] a) noexcept nogil:
    """Data pointer of a writable view; NULL for an empty view."""
    return &a[0] if a.shape[0] > 0 else NULL


cdef inline object _flat(a):
    """The 1-D view of a C-contiguous array (or None)."""
    return None if a is None else a.reshape(-1)


# ------------------------------------------------------- fused C call sites
cdef int _gemm(int typenum, bint ta, bint tb, int64_t m, int64_t n, int64_t k,
               const void *pa, int64_t lda, const void *pb, int64_t ldb,
               void *pc) except -1:
    """The one GEMM call site: C (m x n, row stride n) = op(A) @ op(B)."""
    cdef int status
    with nogil:
        if typenum == cnp.NPY_FLOAT32:
            status = fastnn_gemm_f32(ta, tb, m, n, k, <const float *>pa, lda,
                                     <const float *>pb, ldb, 0, <float *>pc, n, NULL)
        else:
            status = fastnn_gemm_f64(ta, tb, m, n, k, <const double *>pa, lda,
                                     <const double *>pb, ldb, 0, <double *>pc, n, NULL)
    return _check_status(status, "gemm")


cdef int _act_fwd(int act, double alpha, double beta, int64_t rows, int64_t cols,
                  const floating[::1] x, floating[::1] y) except -1:
    cdef int status
    cdef const floating *px = _cp(x)
    cdef floating *py = _mp(y)
    with nogil:
        if floating is float:
            status = fastnn_act_forward_f32(act, alpha, beta, rows, cols, px, py)
        else:
            status = fastnn_act_forward_f64(act, alpha, beta, rows, cols, px, py)
    return _check_status(status, "activation_forward")


cdef int _act_bwd(int act, double alpha, double beta, int64_t rows, int64_t cols,
                  const floating[::1] z, const floating[::1] y, const floating[::1] dy,
                  floating[::1] dz) except -1:
    cdef int status
    cdef const floating *pz = NULL
    cdef const floating *py = NULL
    cdef const floating *pdy = _cp(dy)
    cdef floating *pdz = _mp(dz)
    if z is not None:
        pz = _cp(z)
    if y is not None:
        py = _cp(y)
    with nogil:
        if floating is float:
            status = fastnn_act_backward_f32(act, alpha, beta, rows, cols, pz, py, pdy, pdz)
        else:
            status = fastnn_act_backward_f64(act, alpha, beta, rows, cols, pz, py, pdy, pdz)
    return _check_status(status, "activation_backward")


cdef int _dense_fwd(int64_t n, int64_t n_in, int64_t n_out, const floating[::1] X,
                    const floating[::1] W, const floating[::1] b, int act, double alpha,
                    double beta, floating[::1] Z, floating[::1] Y) except -1:
    cdef int status
    cdef const floating *px = _cp(X)
    cdef const floating *pw = _cp(W)
    cdef const floating *pb = NULL
    cdef floating *pz = NULL
    cdef floating *py = _mp(Y)
    if b is not None:
        pb = _cp(b)
    if Z is not None:
        pz = _mp(Z)
    with nogil:
        if floating is float:
            status = fastnn_dense_forward_f32(n, n_in, n_out, px, pw, pb, act, alpha, beta, pz, py)
        else:
            status = fastnn_dense_forward_f64(n, n_in, n_out, px, pw, pb, act, alpha, beta, pz, py)
    return _check_status(status, "dense_forward")


cdef int _dense_bwd(int64_t n, int64_t n_in, int64_t n_out, const floating[::1] X,
                    const floating[::1] W, const floating[::1] Z, const floating[::1] Y,
                    const floating[::1] dY, int act, double alpha, double beta,
                    floating[::1] dZ, floating[::1] dX, floating[::1] dW,
                    floating[::1] db) except -1:
    cdef int status
    cdef const floating *px = _cp(X)
    cdef const floating *pw = _cp(W)
    cdef const floating *pzz = NULL
    cdef const floating *pyy = NULL
    cdef const floating *pdy = _cp(dY)
    # dZ None: identity, dZ is dY itself and C does not write it (act == identity)
    cdef floating *pdz = <floating *>pdy
    cdef floating *pdx = NULL
    cdef floating *pdw = _mp(dW)
    cdef floating *pdb = NULL
    if Z is not None:
        pzz = _cp(Z)
    if Y is not None:
        pyy = _cp(Y)
    if dZ is not None:
        pdz = _mp(dZ)
    if dX is not None:
        pdx = _mp(dX)
    if db is not None:
        pdb = _mp(db)
    with nogil:
        if floating is float:
            status = fastnn_dense_backward_f32(n, n_in, n_out, px, pw, pzz, pyy, pdy, act,
                                               alpha, beta, pdz, pdx, pdw, pdb)
        else:
            status = fastnn_dense_backward_f64(n, n_in, n_out, px, pw, pzz, pyy, pdy, act,
                                               alpha, beta, pdz, pdx, pdw, pdb)
    return _check_status(status, "dense_backward")


cdef double _pointwise_loss(bint bce, int64_t size, const floating[::1] p,
                            const floating[::1] t, int red, floating[::1] grad) except? -1.0:
    """MSE (bce false) or BCE (bce true) of pred p against target t."""
    cdef int status
    cdef double loss = 0.0
    cdef const floating *pp = _cp(p)
    cdef const floating *pt = _cp(t)
    cdef floating *pg = NULL
    if grad is not None:
        pg = _mp(grad)
    with nogil:
        if floating is float:
            status = (fastnn_bce_f32 if bce else fastnn_mse_f32)(size, pp, pt, red, &loss, pg)
        else:
            status = (fastnn_bce_f64 if bce else fastnn_mse_f64)(size, pp, pt, red, &loss, pg)
    _check_status(status, "bce" if bce else "mse")
    return loss


cdef double _xent_labels(int64_t n, int64_t c, const floating[::1] z, const int64_t[::1] lab,
                         int red, floating[::1] grad) except? -1.0:
    cdef int status
    cdef double loss = 0.0
    cdef const floating *pz = _cp(z)
    cdef const int64_t *pl = &lab[0] if lab.shape[0] > 0 else NULL
    cdef floating *pg = NULL
    if grad is not None:
        pg = _mp(grad)
    with nogil:
        if floating is float:
            status = fastnn_xent_labels_f32(n, c, pz, pl, red, &loss, pg)
        else:
            status = fastnn_xent_labels_f64(n, c, pz, pl, red, &loss, pg)
    if status == FASTNN_EINVAL:
        raise ValueError(f"cross_entropy: target labels must lie in [0, {c}) for logits of "
                         f"shape ({n}, {c})")
    _check_status(status, "cross_entropy")
    return loss


cdef double _xent_probs(int64_t n, int64_t c, const floating[::1] z, const floating[::1] t,
                        int red, floating[::1] grad) except? -1.0:
    cdef int status
    cdef double loss = 0.0
    cdef const floating *pz = _cp(z)
    cdef const floating *pt = _cp(t)
    cdef floating *pg = NULL
    if grad is not None:
        pg = _mp(grad)
    with nogil:
        if floating is float:
            status = fastnn_xent_probs_f32(n, c, pz, pt, red, &loss, pg)
        else:
            status = fastnn_xent_probs_f64(n, c, pz, pt, red, &loss, pg)
    _check_status(status, "cross_entropy")
    return loss


cdef object _loss(int code, int64_t rows, int64_t width, pred, target, int red, params,
                  vector, sample_weight, bint need_grad, str what):
    """Row ``code`` of C's loss table through fastnn_loss_*, the arrays checked by the
    caller: (loss, grad or None)."""
    cdef fastnn_loss_args args
    cdef double value = 0.0
    cdef int status, j
    cdef const void *pp = cnp.PyArray_DATA(<cnp.ndarray>pred)
    cdef const void *pt = cnp.PyArray_DATA(<cnp.ndarray>target)
    cdef void *pg = NULL
    cdef bint f32 = _f32(pred)
    memset(&args, 0, sizeof(args))
    if len(params) > FASTNN_LOSS_MAX_PARAM:
        raise ValueError(f"{what}: {len(params)} parameters, C takes {FASTNN_LOSS_MAX_PARAM}")
    for j, p in enumerate(params):
        args.param[j] = p
    if vector is not None:
        args.weight = <const double *>cnp.PyArray_DATA(<cnp.ndarray>vector)
    if sample_weight is not None:
        args.sample_weight = <const double *>cnp.PyArray_DATA(<cnp.ndarray>sample_weight)
    grad = np.empty(pred.shape, dtype=pred.dtype) if need_grad else None
    if need_grad:
        pg = cnp.PyArray_DATA(<cnp.ndarray>grad)
    with nogil:
        if f32:
            status = fastnn_loss_f32(code, rows, width, <const float *>pp, pt, &args, red,
                                     &value, NULL, <float *>pg)
        else:
            status = fastnn_loss_f64(code, rows, width, <const double *>pp, pt, &args, red,
                                     &value, NULL, <double *>pg)
    _check_status(status, what)
    return value, grad


cdef int _dropout(const floating[::1] x, floating[::1] mask, floating[::1] y, double p,
                  uint64_t seed, uint64_t step) except -1:
    cdef int status
    cdef int64_t size = x.shape[0]
    cdef const floating *px = _cp(x)
    cdef floating *pm = _mp(mask)
    cdef floating *py = _mp(y)
    with nogil:
        if floating is float:
            status = fastnn_dropout_f32(size, p, seed, step, px, pm, py)
        else:
            status = fastnn_dropout_f64(size, p, seed, step, px, pm, py)
    return _check_status(status, "dropout")


cdef int _dropout_backward(const floating[::1] dy, const floating[::1] mask,
                           floating[::1] dx) except -1:
    cdef int status
    cdef int64_t size = dy.shape[0]
    with nogil:
        if floating is float:
            status = fastnn_dropout_backward_f32(size, _cp(dy), _cp(mask), _mp(dx))
        else:
            status = fastnn_dropout_backward_f64(size, _cp(dy), _cp(mask), _mp(dx))
    return _check_status(status, "dropout_backward")


cdef int _rng(uint64_t seed, uint64_t step, const uint64_t[::1] idx, uint64_t[::1] out) except -1:
    cdef Py_ssize_t i, size = idx.shape[0]
    with nogil:
        for i in range(size):
            out[i] = fastnn_rng_bits(seed, step, idx[i])
    return 0


# ------------------------------------------------------------ normalization
cdef inline void *_ptr(a):
    """Data pointer of a checked ndarray, NULL for None."""
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)


def _norm_params(X, weight, bias, str what):
    """weight and bias: both None, or both C-contiguous (d,) arrays of X's dtype."""
    if (weight is None) != (bias is None):
        raise ValueError(f"{what}: weight and bias must both be given or both be None")
    if weight is None:
        return
    for a, name in ((weight, "weight"), (bias, "bias")):
        _float_array(a, name)
        if a.shape != (X.shape[1],):
            raise ValueError(f"{what}: {name} has shape {a.shape} but X has shape {X.shape}"
                             f" (expected ({X.shape[1]},))")
        _same_dtype(X, "X", a, name)


def _stat(a, int64_t d, str name, str what):
    """A C-contiguous float64 (d,) statistic."""
    if not isinstance(a, np.ndarray) or a.dtype != np.float64 or a.shape != (d,) \
            or not a.flags.c_contiguous:
        raise ValueError(f"{what}: {name} must be a C-contiguous float64 array of shape "
                         f"({d},), got {getattr(a, 'dtype', type(a).__name__)} "
                         f"{getattr(a, 'shape', '')}")


def _eps(eps, str what):
    eps = float(eps)
    if not eps >= 0.0 or not math.isfinite(eps):
        raise ValueError(f"{what}: eps must be a finite number >= 0, got {eps}")
    return eps


# ------------------------------------------------------------ gemm fast path
cdef inline bint _plain_matrix(object a, int typenum):
    """a is an ndarray, 2-D, C-contiguous, aligned and in native byte order, of the
    given float type."""
    return (type(a) is np.ndarray and cnp.PyArray_NDIM(<cnp.ndarray>a) == 2
            and cnp.PyArray_TYPE(<cnp.ndarray>a) == typenum
            and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>a)
            and cnp.PyArray_ISBEHAVED_RO(<cnp.ndarray>a))


cdef object _gemm_fast(object A, object B, bint ta, bint tb):
    """op(A) @ op(B) for the common case (two plain matrices of one float type
    whose shapes agree), with the C API only; None sends the call to the
    checked path, which also raises every error."""
    if type(A) is not np.ndarray:
        return None
    cdef int typenum = cnp.PyArray_TYPE(<cnp.ndarray>A)
    if typenum != cnp.NPY_FLOAT32 and typenum != cnp.NPY_FLOAT64:
        return None
    if not (_plain_matrix(A, typenum) and _plain_matrix(B, typenum)):
        return None
    cdef cnp.npy_intp *sa = cnp.PyArray_DIMS(<cnp.ndarray>A)
    cdef cnp.npy_intp *sb = cnp.PyArray_DIMS(<cnp.ndarray>B)
    cdef int64_t m = sa[1] if ta else sa[0], k = sa[0] if ta else sa[1]
    cdef int64_t k2 = sb[1] if tb else sb[0], n = sb[0] if tb else sb[1]
    if k != k2:
        return None
    cdef cnp.npy_intp dims[2]
    dims[0] = m
    dims[1] = n
    C = cnp.PyArray_EMPTY(2, dims, typenum, 0)
    _gemm(typenum, ta, tb, m, n, k, cnp.PyArray_DATA(<cnp.ndarray>A), sa[1],
          cnp.PyArray_DATA(<cnp.ndarray>B), sb[1], cnp.PyArray_DATA(<cnp.ndarray>C))
    return C


# ------------------------------------------------------------------ trainer
_STAGE_CODES = {"dense": FASTNN_STAGE_DENSE, "activation": FASTNN_STAGE_ACTIVATION,
                "dropout": FASTNN_STAGE_DROPOUT, "batchnorm": FASTNN_STAGE_BATCHNORM,
                "layernorm": FASTNN_STAGE_LAYERNORM}


cdef void *_data(a, str name, shape, dtype, bint writable, bint optional) except? NULL:
    """Data pointer of a C-contiguous array of exactly ``shape`` and ``dtype`` (None -> NULL)."""
    if a is None:
        if optional:
            return NULL
        raise ValueError(f"{name} is missing")
    _float_array(a, name)
    if a.shape != shape:
        raise ValueError(f"{name} has shape {a.shape}, expected {shape}")
    if a.dtype != dtype:
        raise TypeError(f"{name} is {a.dtype} but the network is {dtype}")
    if writable:
        _writable(a, name)
    return cnp.PyArray_DATA(a)


cdef class Trainer:
    """Whole batches of a fit, run by csrc/train.c with the GIL released.

    Made by ``CythonOps.make_trainer`` for one ``fit``: it checks every array
    once, points the C stages at them (the parameters, gradients and
    optimizer state are updated in place), and owns the C workspace until
    ``close``.  The dense stages' ``dW`` and ``db`` are either all given
    (``gradient`` writes them; ``run`` leaves each batch's there) or all None:
    the trainer then keeps its gradients itself, and a large network's update
    runs block by block inside the dW product, never storing a whole dW.

    Attributes
    ----------
    interrupted : bool
        Whether the last ``run`` was stopped by a SIGINT it caught (see ``run``).
    tiny : bool
        Whether batches take the tiny path (see the property).
    exact_checks : int
        How many batches so far needed the dry run of their update: the
        others' updates were proved finite from bounds (csrc/fastnn.h,
        ``fastnn_trainer_exact_checks``).
    fused : bool
        Whether the last ``run`` fused each update into its dW product.
    """

    cdef readonly bint interrupted
    cdef fastnn_trainer *_trainer
    cdef fastnn_stage *_stages
    cdef fastnn_train_spec _spec
    cdef int64_t _n_stages, _n, _t_width, _batch
    cdef bint _single, _gradients
    cdef object _X, _T, _keep, _weights, _hyper_table, _hyper_names, _scheduled

    def __cinit__(self):
        self._trainer = NULL
        self._stages = NULL

    def __dealloc__(self):
        fastnn_trainer_free(self._trainer)
        free(self._stages)

    def __init__(self, stages, loss, reduction, spec, X, T, batch, loss_args=None,
                 sample_weight=None):
        cdef int status
        cdef fastnn_stage *st
        _matrix(X, "X")
        dt = X.dtype
        self._single = _f32(X)
        n, width = X.shape
        if batch < 1:
            raise ValueError(f"batch size must be >= 1, got {batch}")
        self._n_stages = len(stages)
        if self._n_stages < 1:
            raise ValueError("the network has no stages")
        self._stages = <fastnn_stage *>calloc(self._n_stages, sizeof(fastnn_stage))
        if self._stages == NULL:
            raise MemoryError("trainer: out of memory")
        opt_name = spec["optimizer"]
        if opt_name not in _OPT_CODES:
            raise ValueError(f"unknown optimizer {opt_name!r}; the C table has "
                             f"{sorted(_OPT_CODES)}")
        cdef int opt = _OPT_CODES[opt_name]
        cdef int n_state = _TABLES["optimizers"][opt]["n_state"]
        keep = []
        first_dense = next((i for i, desc in enumerate(stages) if desc["kind"] == "dense"), -1)
        for i, desc in enumerate(stages):
            st = &self._stages[i]
            kind = desc["kind"]
            if kind not in _STAGE_CODES:
                raise ValueError(f"stage {i}: unknown kind {kind!r}")
            st.kind = _STAGE_CODES[kind]
            st.width_in = width
            if kind == "dense":
                W = desc["W"]
                n_out = W.shape[1] if isinstance(W, np.ndarray) and W.ndim == 2 else -1
                st.W = _data(W, f"stage {i} W", (width, n_out), dt, True, False)
                st.b = _data(desc["b"], f"stage {i} b", (n_out,), dt, True, True)
                gradients = desc["dW"] is not None
                if i == first_dense:
                    self._gradients = gradients
                elif gradients != self._gradients:
                    raise ValueError(f"stage {i}: dW is {'given' if gradients else 'None'}, "
                                     f"but stage {first_dense}'s is "
                                     f"{'given' if self._gradients else 'None'}: give "
                                     f"every dense stage's gradients, or none")
                if not gradients and desc["db"] is not None:
                    raise ValueError(f"stage {i}: db is given but dW is None: give both "
                                     f"or neither")
                st.dW = _data(desc["dW"], f"stage {i} dW", (width, n_out), dt, True,
                              not gradients)
                st.db = _data(desc["db"], f"stage {i} db", (n_out,), dt, True,
                              st.b == NULL or not gradients)
                for j in range(n_state):    # the optimizer's state arrays
                    st.state_W[j] = _data(desc["state_W"][j], f"stage {i} state_W[{j}]",
                                          (width, n_out), dt, True, True)
                    st.state_b[j] = _data(desc["state_b"][j], f"stage {i} state_b[{j}]",
                                          (n_out,), dt, True, True)
                st.act = _act_code(desc["activation"])
                st.alpha = desc["alpha"]
                st.beta = desc["beta"]
                keep.append(desc)
                width = n_out
            elif kind == "activation":
                st.act = _act_code(desc["activation"])
                st.alpha = desc["alpha"]
                st.beta = desc["beta"]
            elif kind in ("batchnorm", "layernorm"):
                st.eps = _eps(desc["eps"], f"stage {i}")
                st.W = _data(desc["weight"], f"stage {i} weight", (width,), dt, True, True)
                st.b = _data(desc["bias"], f"stage {i} bias", (width,), dt, True, st.W == NULL)
                if st.W == NULL and st.b != NULL:
                    raise ValueError(f"stage {i}: weight and bias must both be given or both "
                                     "be None")
                if st.W != NULL:
                    st.dW = _data(desc["dweight"], f"stage {i} dweight", (width,), dt, True,
                                  False)
                    st.db = _data(desc["dbias"], f"stage {i} dbias", (width,), dt, True,
                                  False)
                    for j in range(n_state):    # the optimizer's state arrays
                        st.state_W[j] = _data(desc["state_W"][j], f"stage {i} state_W[{j}]",
                                              (width,), dt, True, True)
                        st.state_b[j] = _data(desc["state_b"][j], f"stage {i} state_b[{j}]",
                                              (width,), dt, True, True)
                if kind == "batchnorm":
                    momentum = desc["momentum"]
                    st.momentum_none = momentum is None
                    if momentum is not None:
                        momentum = float(momentum)
                        if not 0.0 <= momentum <= 1.0:
                            raise ValueError(f"stage {i}: BatchNorm1d momentum must lie in "
                                             f"[0, 1] or be None, got {momentum}")
                        st.momentum = momentum
                    st.running_mean = _data(desc["running_mean"], f"stage {i} running_mean",
                                            (width,), dt, True, False)
                    st.running_var = _data(desc["running_var"], f"stage {i} running_var",
                                           (width,), dt, True, False)
                    count = desc["num_batches_tracked"]
                    if not isinstance(count, (int, np.integer)) or count < 0:
                        raise ValueError(f"stage {i}: num_batches_tracked must be an int >= 0,"
                                         f" got {count!r}")
                    st.num_batches_tracked = count
                    if batch < 2 or n % batch == 1:   # the batch that would have one row
                        raise ValueError(
                            f"BatchNorm1d needs more than 1 value per channel when training: "
                            f"{n} samples in batches of {batch} leave a batch of one row")
                keep.append(desc)
            else:
                if not 0.0 <= desc["p"] <= 1.0:
                    raise ValueError(f"stage {i}: dropout p must lie in [0, 1], got {desc['p']}")
                st.p = desc["p"]
                st.seed = desc["seed"]
                st.step = desc["step"]
            st.width_out = width
        self._n = n
        labels = (loss, True) in _LOSS_CODES and isinstance(T, np.ndarray) and T.ndim == 1
        if (loss, labels) not in _LOSS_CODES:
            raise ValueError(f"the native trainer has no loss {loss!r}; the C table has "
                             f"{sorted({name for name, _ in _LOSS_CODES})}")
        self._spec.loss = _LOSS_CODES[(loss, labels)]
        if labels:
            if T.dtype != np.int64 or not T.flags.c_contiguous or T.shape != (n,):
                raise ValueError(f"labels must be a C-contiguous int64 array of shape ({n},), "
                                 f"got {T.dtype} of shape {T.shape}")
            if n and (T.min() < 0 or T.max() >= width):
                raise ValueError(f"class labels must lie in [0, {width}), got labels from "
                                 f"{T.min()} to {T.max()}")
            self._t_width = 1
        else:
            _data(T, "targets", (n, width), dt, False, False)
            self._t_width = width
        self._spec.reduction = _reduction_code(reduction, 1)
        # the loss's params and weight vector, by the names of its C row
        row = _TABLES["losses"][self._spec.loss]
        loss_args = {} if loss_args is None else dict(loss_args)
        unknown = set(loss_args) - set(row["params"]) - {row["vector"]}
        if unknown:
            raise ValueError(f"the loss {loss!r} takes {row['params']} and the vector "
                             f"{row['vector']!r}; got {sorted(unknown)}")
        params = check_loss_params(loss, {name: loss_args.get(name, 0.0)
                                          for name in row["params"]})
        for j, name in enumerate(row["params"]):
            self._spec.loss_args.param[j] = params[name]
        vector = loss_args.get(row["vector"]) if row["vector"] else None
        check_kernel_weights(n, sample_weight, width, vector, row["vector"] or "weight")
        self._spec.loss_args.weight = NULL
        self._spec.loss_args.sample_weight = NULL
        if vector is not None:
            self._spec.loss_args.weight = <const double *>cnp.PyArray_DATA(<cnp.ndarray>vector)
        if sample_weight is not None:
            self._spec.loss_args.sample_weight = <const double *>cnp.PyArray_DATA(
                <cnp.ndarray>sample_weight)
        self._weights = (vector, sample_weight)
        self._spec.optimizer = opt
        self._hyper_names = _TABLES["optimizers"][opt]["hypers"]
        self._spec.hyper_table = NULL
        self._spec.hyper_rows = self._spec.hyper_row = 0
        self.set_hyper(spec)
        self._spec.step = spec["step"]
        for key in ("clip_grad_norm", "clip_grad_value"):   # None, or a limit >= 0
            limit = spec.get(key)
            if limit is not None and not (isinstance(limit, (int, float))
                                          and math.isfinite(limit) and limit >= 0):
                raise ValueError(f"{key} must be None or a finite number >= 0, got {limit!r}")
        self._spec.clip_norm_on = spec.get("clip_grad_norm") is not None
        self._spec.clip_norm = spec["clip_grad_norm"] if self._spec.clip_norm_on else 0.0
        self._spec.clip_value_on = spec.get("clip_grad_value") is not None
        self._spec.clip_value = spec["clip_grad_value"] if self._spec.clip_value_on else 0.0
        # scikit-learn's L2 penalty and epoch loss (fastnn.losses.Loss.l2_penalty,
        # epoch_by_rows): absent from the spec, off
        alpha = spec.get("l2_penalty", 0.0)
        if (isinstance(alpha, bool) or not isinstance(alpha, (int, float))
                or not (math.isfinite(alpha) and alpha >= 0)):
            raise ValueError(f"l2_penalty must be a finite number >= 0, got {alpha!r}")
        self._spec.l2_alpha = alpha
        by_rows = spec.get("loss_by_rows", False)
        if not isinstance(by_rows, (bool, np.bool_)):
            raise TypeError(f"loss_by_rows must be a bool, got {by_rows!r}")
        self._spec.loss_by_rows = bool(by_rows)
        schedule = spec.get("schedule")
        if schedule is not None:
            self._set_schedule(schedule, opt_name)
        self._X, self._T, self._keep = X, T, keep
        self._batch = batch
        if self._single:
            status = fastnn_trainer_new_f32(&self._trainer, self._stages, self._n_stages,
                                            &self._spec, X.shape[1], batch)
        else:
            status = fastnn_trainer_new_f64(&self._trainer, self._stages, self._n_stages,
                                            &self._spec, X.shape[1], batch)
        _check_status(status, "trainer")

    def set_hyper(self, spec):
        """Set the hyper-parameters of the next batches (a learning-rate schedule
        between epochs): ``spec`` maps every name of the optimizer's row to a value.
        With a per-batch table, the columns the schedule does not set take them too."""
        values = []
        for name in self._hyper_names:
            if name not in spec:
                raise ValueError(f"the spec lacks the hyper-parameter {name!r} (it has "
                                 f"{sorted(spec)})")
            values.append(float(spec[name]))
        for j, value in enumerate(values):
            self._spec.hyper[j] = value
            if self._hyper_table is not None and self._hyper_names[j] not in self._scheduled:
                self._hyper_table[:, j] = value

    def _set_schedule(self, schedule, opt_name):
        """Hand C a table of per-batch hyper-parameters (``spec["schedule"]``:
        ``{"names": (...), "values": (batches, len(names)) float64}``): batch b of
        the trainer updates with row b -- the names given there, the spec's
        values for the others."""
        names = tuple(schedule["names"])
        values = schedule["values"]
        unknown = [name for name in names if name not in self._hyper_names]
        if unknown:
            raise ValueError(f"the schedule sets {unknown}, which {opt_name} does not have "
                             f"(its hyper-parameters are {self._hyper_names})")
        if (not isinstance(values, np.ndarray) or values.dtype != np.float64
                or values.ndim != 2 or values.shape[1] != len(names) or values.shape[0] < 1):
            raise ValueError(f"the schedule's values must be a float64 array (batches, "
                             f"{len(names)}), got {getattr(values, 'shape', values)!r}")
        table = np.empty((values.shape[0], FASTNN_OPT_MAX_HYPER), dtype=np.float64)
        for j in range(FASTNN_OPT_MAX_HYPER):
            table[:, j] = self._spec.hyper[j]
        for k, name in enumerate(names):
            table[:, self._hyper_names.index(name)] = values[:, k]
        self._hyper_table = table
        self._scheduled = names
        self._spec.hyper_table = <const double *>cnp.PyArray_DATA(table)
        self._spec.hyper_rows = table.shape[0]
        self._spec.hyper_row = 0

    def run(self, orders, int64_t epoch, int64_t start, int64_t max_batches,
            double[::1] losses not None, bint catch_sigint=False):
        """Train from batch position (epoch, start) for at most ``max_batches`` batches.

        orders: None (samples in order) or int64 (len(losses), n) permutations;
        losses[e] accumulates epoch e's batch losses.  Returns the position
        reached, ``(epoch, start)``; ``interrupted`` then says whether a SIGINT
        arrived.

        With ``catch_sigint`` (only from the main thread, while the caller's
        own SIGINT handling is in place) a C handler replaces the SIGINT
        action for the call, with the GIL released, and counts the signals;
        the previous action is put back exactly before this returns.  The
        first SIGINT stops the run at once -- between batches, between the
        stages of a batch or inside a GEMM (but an update that has begun runs
        to its end; a large network's runs inside its dW products) -- and
        drops the unfinished batch:
        the parameters, optimizer state, step counts and ``losses`` are those
        of the last completed batch (the gradient buffers may hold partial
        values); ``interrupted`` is then True (also for a SIGINT that came as
        the run finished).  A second SIGINT before the call returns raises
        KeyboardInterrupt.
        """
        cdef int status, signals = 0
        cdef fastnn_sigsave previous
        cdef int64_t n_epochs = losses.shape[0]
        cdef const int64_t *order_ptr = NULL
        cdef const void *x = cnp.PyArray_DATA(self._X)
        cdef const void *t = cnp.PyArray_DATA(self._T)
        self.interrupted = False
        if self._trainer == NULL:
            raise RuntimeError("this trainer is closed")
        if not (0 <= epoch <= n_epochs and 0 <= start < self._n and max_batches >= 1):
            raise ValueError(f"bad position epoch={epoch}, start={start}, "
                             f"max_batches={max_batches} for {n_epochs} epochs of "
                             f"{self._n} samples")
        if orders is not None:
            if (not isinstance(orders, np.ndarray) or orders.dtype != np.int64
                    or not orders.flags.c_contiguous or orders.shape != (n_epochs, self._n)):
                raise ValueError(f"orders must be a C-contiguous int64 array of shape "
                                 f"({n_epochs}, {self._n})")
            if orders.size and (orders.min() < 0 or orders.max() >= self._n):
                raise ValueError(f"orders must hold sample indices in [0, {self._n})")
            order_ptr = <const int64_t *>cnp.PyArray_DATA(orders)
        if catch_sigint:
            if threading.current_thread() is not threading.main_thread():
                raise RuntimeError("Trainer.run: catch_sigint is for the main thread only "
                                   "(signal handlers are the main thread's)")
            if fastnn_sigint_catch(self._trainer, &previous) != 0:
                raise OSError(errno, f"Trainer.run: could not install the SIGINT handler: "
                                     f"{os.strerror(errno)}")
        with nogil:
            if self._single:
                status = fastnn_train_run_f32(self._trainer, <const float *>x, t, self._n,
                                              self._t_width, order_ptr, n_epochs, &epoch,
                                              &start, max_batches, &losses[0])
            else:
                status = fastnn_train_run_f64(self._trainer, <const double *>x, t, self._n,
                                              self._t_width, order_ptr, n_epochs, &epoch,
                                              &start, max_batches, &losses[0])
        if catch_sigint:
            if fastnn_sigint_release(self._trainer, &previous) != 0:
                raise OSError(errno, f"Trainer.run: could not restore the previous SIGINT "
                                     f"handler: {os.strerror(errno)}")
            signals = fastnn_sigint_count()     # final: the handler is gone
            if signals >= 2:
                raise KeyboardInterrupt("a second Ctrl-C during training: stopped at once; "
                                        "the unfinished batch was not applied")
        self.interrupted = signals > 0 or status == FASTNN_EINTERRUPTED
        if status == FASTNN_EINTERRUPTED:
            return epoch, start
        if status == FASTNN_EDIVERGED:
            raise FloatingPointError(
                "training diverged: the loss or an update became NaN or infinite", epoch)
        if status == FASTNN_EZEROWEIGHT:
            error = ZeroWeightError(
                f"the weights of a batch (epoch {epoch + 1} of this run, from position "
                f"{start}) sum to 0: reduction='mean' divides by them")
            error.epoch = epoch
            raise error
        _check_status(status, "train")
        return epoch, start

    def gradient(self, int64_t n=-1):
        """One forward and backward pass over the first ``n`` rows of X (-1: all;
        at most the batch size), with the L2 penalty, and no update
        (``fastnn_train_gradient``): every stage's dW and db get the gradient.

        Returns
        -------
        float
            The loss over those rows, plus the penalty.

        Raises
        ------
        FloatingPointError
            The loss is NaN or infinite.
        ZeroWeightError
            The rows' total weight is 0.
        """
        cdef int status
        cdef double loss = 0.0
        cdef const void *x = cnp.PyArray_DATA(self._X)
        cdef const void *t = cnp.PyArray_DATA(self._T)
        if self._trainer == NULL:
            raise RuntimeError("this trainer is closed")
        if not self._gradients:
            raise ValueError("gradient: the trainer was made without the dense stages' dW "
                             "and db, which it would write")
        if n == -1:
            n = self._n
        if not 1 <= n <= min(self._n, self._batch):
            raise ValueError(f"gradient: n={n} rows, but X has {self._n} and the batch "
                             f"size is {self._batch}")
        with nogil:
            if self._single:
                status = fastnn_train_gradient_f32(self._trainer, <const float *>x, t, n,
                                                   &loss)
            else:
                status = fastnn_train_gradient_f64(self._trainer, <const double *>x, t, n,
                                                   &loss)
        if status == FASTNN_EDIVERGED:
            raise FloatingPointError("the loss is NaN or infinite")
        _check_status(status, "train_gradient")
        return loss

    @property
    def exact_checks(self):
        if self._trainer == NULL:
            raise RuntimeError("this trainer is closed")
        return fastnn_trainer_exact_checks(self._trainer)

    @property
    def fused(self):
        """Whether the last ``run`` fused each update into its dW product
        (csrc/fastnn.h, ``fastnn_trainer_fused``): no whole dW stored."""
        if self._trainer == NULL:
            raise RuntimeError("this trainer is closed")
        return fastnn_trainer_fused(self._trainer) == 1

    @property
    def tiny(self):
        """Whether batches take the tiny path (csrc/fastnn.h, ``fastnn_trainer_set_tiny``):
        one fused pass for a tiny network, with the general path's bits.  Assign False
        to make this trainer take the general path (tests compare the two)."""
        if self._trainer == NULL:
            raise RuntimeError("this trainer is closed")
        return fastnn_trainer_set_tiny(self._trainer, -1) == 1

    @tiny.setter
    def tiny(self, bint on):
        if self._trainer == NULL:
            raise RuntimeError("this trainer is closed")
        fastnn_trainer_set_tiny(self._trainer, on)

    def close(self):
        """Free the workspace; returns the dropout steps per stage and the optimizer step."""
        steps = [self._stages[i].step if self._stages[i].kind == FASTNN_STAGE_DROPOUT else None
                 for i in range(self._n_stages)]
        tracked = self.batchnorm_counts()
        fastnn_trainer_free(self._trainer)
        self._trainer = NULL
        return {"dropout_steps": steps, "step": self._spec.step,
                "scheduled_batches": self._spec.hyper_row, "num_batches_tracked": tracked}

    def batchnorm_counts(self):
        """Each stage's BatchNorm1d ``num_batches_tracked`` (None for other stages)."""
        return [self._stages[i].num_batches_tracked
                if self._stages[i].kind == FASTNN_STAGE_BATCHNORM else None
                for i in range(self._n_stages)]

# ---------------------------------------------------------- gradient clipping
cdef int _clip(list grads, double limit, bint norm, double *total) except -1:
    cdef int64_t count = len(grads), i
    cdef int status
    cdef bint f32 = count > 0 and _f32(grads[0])
    cdef int64_t *sizes = <int64_t *>calloc(count + 1, sizeof(int64_t))
    cdef void **ptrs = <void **>calloc(count + 1, sizeof(void *))
    try:
        if sizes == NULL or ptrs == NULL:
            raise MemoryError("clip: out of memory")
        for i in range(count):
            sizes[i] = grads[i].size
            ptrs[i] = cnp.PyArray_DATA(<cnp.ndarray>grads[i])
        with nogil:
            if norm and f32:
                status = fastnn_clip_grad_norm_f32(count, sizes, <float **>ptrs, limit,
                                                   total)
            elif norm:
                status = fastnn_clip_grad_norm_f64(count, sizes, <double **>ptrs, limit,
                                                   total)
            elif f32:
                status = fastnn_clip_grad_value_f32(count, sizes, <float **>ptrs, limit)
            else:
                status = fastnn_clip_grad_value_f64(count, sizes, <double **>ptrs, limit)
        _check_status(status, "clip_grad_norm" if norm else "clip_grad_value")
    finally:
        free(sizes)
        free(ptrs)
    return 0


# ---------------------------------------------------------------- the class
def _check_labels(target, logits):
    """Class labels for logits (n, c): int64, shape (n,), C-contiguous."""
    n = logits.shape[0]
    if target.dtype != np.int64:
        raise TypeError(f"target labels must be int64, got {target.dtype} "
                        f"(shape {target.shape}, logits shape {logits.shape})")
    if target.shape != (n,):
        raise ValueError(f"target has shape {target.shape} but logits has shape "
                         f"{logits.shape} (labels must have shape ({n},))")
    if not target.flags.c_contiguous:
        raise ValueError(f"target must be C-contiguous (shape {target.shape})")


class CythonOps(NumpyOps):
    """Compiled kernels with NumpyOps' signatures and numbers."""

    name = "cython"

    # ------------------------------------------------------------- GEMM
    def gemm(self, A, B, *, trans_a=False, trans_b=False, out=None):
        """C = op(A) @ op(B), op(M) = M.T when its flag is set (fastnn's C GEMM).

        A: (m, k), or (k, m) with ``trans_a``; B: (k, n), or (n, k) with
        ``trans_b``.  Returns C of shape (m, n) (``out`` when given).
        """
        if out is None:
            C = _gemm_fast(A, B, bool(trans_a), bool(trans_b))
            if C is not None:
                return C
        _matrix(A, "A")
        _matrix(B, "B")
        _same_dtype(A, "A", B, "B")
        cdef bint ta = bool(trans_a), tb = bool(trans_b)
        cdef int64_t m, k, k2, n
        if ta:
            k, m = A.shape
        else:
            m, k = A.shape
        if tb:
            n, k2 = B.shape
        else:
            k2, n = B.shape
        if k != k2:
            raise ValueError(
                f"gemm: op(A) is ({m}, {k}) but op(B) is ({k2}, {n}): A has shape {A.shape}"
                f"{' (transposed)' if ta else ''}, B has shape {B.shape}"
                f"{' (transposed)' if tb else ''}")
        C = out
        if out is not None:
            _matrix(out, "out")
            _same_dtype(A, "A", out, "out")
            if out.shape != (m, n):
                raise ValueError(f"out has shape {out.shape} but op(A) @ op(B) has shape "
                                 f"({m}, {n}) (A {A.shape}, B {B.shape})")
            _writable(out, "out")
            if np.may_share_memory(out, A) or np.may_share_memory(out, B):
                C = None   # compute aside, then copy: the inputs must stay intact
        if C is None:
            C = np.empty((m, n), dtype=A.dtype)
        _gemm(cnp.PyArray_TYPE(<cnp.ndarray>A), ta, tb, m, n, k,
              cnp.PyArray_DATA(<cnp.ndarray>A), A.shape[1],
              cnp.PyArray_DATA(<cnp.ndarray>B), B.shape[1], cnp.PyArray_DATA(<cnp.ndarray>C))
        if out is not None and C is not out:
            out[...] = C
            return out
        return C

    # ------------------------------------------------------ activations
    def activation_forward(self, X, kind, alpha=0.01, beta=1.0):
        """Y = f(X) elementwise (softmax: along each row of a 2-D X)."""
        cdef int act = _act_code(kind)
        _float_array(X, "X")
        cdef int64_t rows = 1, cols = X.size
        if _rowwise(act):
            if X.ndim != 2:
                raise ValueError(f"{kind} needs a 2-D X, got shape {X.shape}")
            rows, cols = X.shape
            if cols == 0 and rows > 0:
                raise ValueError(f"{kind} of rows with no columns (X has shape {X.shape})")
        cdef double a = alpha, bb = beta
        Y = np.empty(X.shape, dtype=X.dtype)
        if _f32(X):
            _act_fwd[float](act, a, bb, rows, cols, _flat(X), _flat(Y))
        else:
            _act_fwd[double](act, a, bb, rows, cols, _flat(X), _flat(Y))
        return Y

    def activation_backward(self, dY, Z, Y, kind, alpha=0.01, beta=1.0):
        """dZ = dY * f'(Z), f' from Y where possible (Z only for leaky_relu, silu)."""
        cdef int act = _act_code(kind)
        _float_array(dY, "dY")
        cdef int64_t rows = 1, cols = dY.size
        if _rowwise(act):
            if dY.ndim != 2:
                raise ValueError(f"{kind} needs a 2-D dY, got shape {dY.shape}")
            rows, cols = dY.shape
        if _needs_z(act):
            if Z is None:
                raise ValueError(f"activation_backward: {kind!r} needs Z "
                                 f"(dY has shape {dY.shape})")
            _same(dY, "dY", Z, "Z")
            Y = None
        elif act != FASTNN_ACT_IDENTITY:
            if Y is None:
                raise ValueError(f"activation_backward: {kind!r} needs Y "
                                 f"(dY has shape {dY.shape})")
            _same(dY, "dY", Y, "Y")
            Z = None
        else:
            Z = Y = None
        cdef double a = alpha, bb = beta
        dZ = np.empty(dY.shape, dtype=dY.dtype)
        if _f32(dY):
            _act_bwd[float](act, a, bb, rows, cols, _flat(Z), _flat(Y), _flat(dY), _flat(dZ))
        else:
            _act_bwd[double](act, a, bb, rows, cols, _flat(Z), _flat(Y), _flat(dY), _flat(dZ))
        return dZ

    # ------------------------------------------------------------ dense
    def dense_forward(self, X, W, b, kind="identity", alpha=0.01, beta=1.0):
        """Z = X @ W + b; Y = f(Z), bias and f fused into the GEMM's store.

        Returns (Z, Y); Z is None unless f' needs it (the C table's needs_z, the
        reference's ``NEEDS_PREACTIVATION``).
        """
        cdef int act = _act_code(kind)
        _matrix(X, "X")
        _matrix(W, "W")
        _same_dtype(X, "X", W, "W")
        cdef int64_t n = X.shape[0], n_in = X.shape[1], n_out = W.shape[1]
        if W.shape[0] != n_in:
            raise ValueError(f"X has shape {X.shape} but W has shape {W.shape} "
                             f"(X.shape[1] must equal W.shape[0])")
        if b is not None:
            _float_array(b, "b")
            if b.shape != (n_out,):
                raise ValueError(f"b has shape {b.shape} but W has shape {W.shape} "
                                 f"(b must have shape ({n_out},))")
            _same_dtype(W, "W", b, "b")
        if _rowwise(act) and n_out == 0 and n > 0:
            raise ValueError(f"{kind} of rows with no columns (W has shape {W.shape})")
        cdef bint keep_z = _needs_z(act)
        cdef double a = alpha, bb = beta
        Y = np.empty((n, n_out), dtype=X.dtype)
        Z = np.empty((n, n_out), dtype=X.dtype) if keep_z else None
        if _f32(X):
            _dense_fwd[float](n, n_in, n_out, _flat(X), _flat(W), _flat(b), act, a, bb,
                              _flat(Z), _flat(Y))
        else:
            _dense_fwd[double](n, n_in, n_out, _flat(X), _flat(W), _flat(b), act, a, bb,
                               _flat(Z), _flat(Y))
        return Z, Y

    def dense_backward(self, X, W, Z, Y, dY, kind="identity", alpha=0.01, beta=1.0, *,
                       need_dX=True, need_db=True):
        """dZ = dY*f'(Z); dW = X.T @ dZ; db = sum(dZ, axis=0); dX = dZ @ W.T.

        Returns (dX or None, dW, db or None) with the shapes of X, W, b.
        """
        cdef int act = _act_code(kind)
        _matrix(X, "X")
        _matrix(W, "W")
        _matrix(dY, "dY")
        _same_dtype(X, "X", W, "W")
        _same_dtype(X, "X", dY, "dY")
        cdef int64_t n = X.shape[0], n_in = X.shape[1], n_out = W.shape[1]
        if W.shape[0] != n_in:
            raise ValueError(f"X has shape {X.shape} but W has shape {W.shape} "
                             f"(X.shape[1] must equal W.shape[0])")
        if dY.shape != (n, n_out):
            raise ValueError(f"dY has shape {dY.shape} but X has shape {X.shape} and W has "
                             f"shape {W.shape} (dY must have shape ({n}, {n_out}))")
        if _needs_z(act):
            if Z is None:
                raise ValueError(f"dense_backward: {kind!r} needs Z (dY has shape {dY.shape})")
            _same(dY, "dY", Z, "Z")
            Y = None
        elif act != FASTNN_ACT_IDENTITY:
            if Y is None:
                raise ValueError(f"dense_backward: {kind!r} needs Y (dY has shape {dY.shape})")
            _same(dY, "dY", Y, "Y")
            Z = None
        else:
            Z = Y = None
        cdef double a = alpha, bb = beta
        # identity: dZ is dY itself (the reference does the same); C never writes it
        dZ = None if act == FASTNN_ACT_IDENTITY else np.empty((n, n_out), dtype=X.dtype)
        dW = np.empty((n_in, n_out), dtype=X.dtype)
        db = np.empty(n_out, dtype=X.dtype) if need_db else None
        dX = np.empty((n, n_in), dtype=X.dtype) if need_dX else None
        if _f32(X):
            _dense_bwd[float](n, n_in, n_out, _flat(X), _flat(W), _flat(Z), _flat(Y),
                              _flat(dY), act, a, bb, _flat(dZ), _flat(dX), _flat(dW), _flat(db))
        else:
            _dense_bwd[double](n, n_in, n_out, _flat(X), _flat(W), _flat(Z), _flat(Y),
                               _flat(dY), act, a, bb, _flat(dZ), _flat(dX), _flat(dW), _flat(db))
        return dX, dW, db

    # ----------------------------------------------------------- losses
    def mse(self, pred, target, reduction="mean", *, sample_weight=None, need_grad=True):
        """L = mean or sum of (pred - target)^2;  dL/dpred = 2*(pred - target)*scale."""
        if sample_weight is None:
            return self._pointwise(False, "pred", pred, target, reduction, need_grad)
        return self._elementwise("mse", "pred", pred, target, reduction, (), None, None,
                                 sample_weight, need_grad)

    def bce(self, prob, target, reduction="mean", *, sample_weight=None, need_grad=True):
        """L = -[t*log(p) + (1-t)*log(1-p)], logs clamped at -100 (PyTorch's BCELoss)."""
        if sample_weight is None:
            return self._pointwise(True, "prob", prob, target, reduction, need_grad)
        return self._elementwise("bce", "prob", prob, target, reduction, (), None, None,
                                 sample_weight, need_grad)

    def l1(self, pred, target, reduction="mean", *, sample_weight=None, need_grad=True):
        """L = mean or sum of |pred - target|;  dL/dpred = sign(pred - target)*scale."""
        return self._elementwise("l1", "pred", pred, target, reduction, (), None, None,
                                 sample_weight, need_grad)

    def huber(self, pred, target, reduction="mean", *, delta=1.0, sample_weight=None,
              need_grad=True):
        """L = z^2/2 if z < delta else delta*(z - delta/2), z = |pred - target| (PyTorch)."""
        delta = check_loss_params("huber", {"delta": delta})["delta"]
        return self._elementwise("huber", "pred", pred, target, reduction, (delta,), None,
                                 None, sample_weight, need_grad)

    def smooth_l1(self, pred, target, reduction="mean", *, beta=1.0, sample_weight=None,
                  need_grad=True):
        """L = z^2/(2 beta) if z < beta else z - beta/2; beta = 0 is L1 (PyTorch)."""
        beta = check_loss_params("smooth_l1", {"beta": beta})["beta"]
        return self._elementwise("smooth_l1", "pred", pred, target, reduction, (beta,), None,
                                 None, sample_weight, need_grad)

    def bce_with_logits(self, logits, target, reduction="mean", *, pos_weight=None,
                        sample_weight=None, need_grad=True):
        """L = (1-t)*x - (1 + (v-1)*t) * logsigmoid(x) on logits (PyTorch's formula)."""
        return self._elementwise("bce_with_logits", "logits", logits, target, reduction, (),
                                 pos_weight, "pos_weight", sample_weight, need_grad)

    def _elementwise(self, str kernel, str name, p, target, reduction, params, vector,
                     vector_name, sample_weight, bint need_grad):
        """A per-element loss of C's table with its parameters and weights."""
        _float_array(p, name)
        _same(p, name, target, "target")
        rows, width = rows_width(p)
        check_kernel_weights(rows, sample_weight, width, vector, vector_name or "weight")
        cdef int red = _reduction_code(reduction, p.size if sample_weight is None else 1)
        if p.size == 0:
            _reduction_scale(reduction, 0)    # the error of an empty mean, as the reference
        return _loss(_LOSS_CODES[(kernel, False)], rows, width, p, target, red, params,
                     vector, sample_weight, need_grad, kernel)

    def _pointwise(self, bint bce, name, p, target, reduction, bint need_grad):
        """mse (bce false) or bce: checks, output, the C call; (loss, grad or None)."""
        _float_array(p, name)
        _same(p, name, target, "target")
        cdef int red = _reduction_code(reduction, p.size)
        grad = np.empty(p.shape, dtype=p.dtype) if need_grad else None
        if _f32(p):
            loss = _pointwise_loss[float](bce, p.size, _flat(p), _flat(target), red, _flat(grad))
        else:
            loss = _pointwise_loss[double](bce, p.size, _flat(p), _flat(target), red, _flat(grad))
        return loss, grad

    def cross_entropy(self, logits, target, reduction="mean", *, weight=None,
                      label_smoothing=0.0, sample_weight=None, need_grad=True):
        """L = -sum_c t_c * log_softmax(z)_c per row, on logits, stable log-sum-exp.

        ``target``: int64 class labels (n,) in [0, C) or probabilities (n, C);
        class ``weight``, ``label_smoothing`` and ``sample_weight`` as PyTorch
        and NumpyOps.cross_entropy define them.
        """
        _matrix(logits, "logits")
        cdef int64_t n = logits.shape[0], c = logits.shape[1]
        eps = check_loss_params("cross_entropy", {"label_smoothing": label_smoothing})[
            "label_smoothing"]
        plain = weight is None and eps == 0 and sample_weight is None
        cdef int red = _reduction_code(reduction, n if plain else 1)
        if not isinstance(target, np.ndarray):
            raise TypeError(f"target must be a numpy.ndarray, got {type(target).__name__}")
        labels = target.ndim == 1
        if labels:
            _check_labels(target, logits)
        else:
            _same(logits, "logits", target, "target")
        if c == 0 and n > 0:
            raise ValueError(f"cross_entropy needs at least one class, logits has shape "
                             f"{logits.shape}")
        if not plain:
            if labels and n and (target.min() < 0 or target.max() >= c):
                raise ValueError(f"cross_entropy: target labels must lie in [0, {c}) for "
                                 f"logits of shape ({n}, {c})")
            check_kernel_weights(n, sample_weight, c, weight, "weight")
            if reduction == "mean" and n == 0:
                _reduction_scale(reduction, 0)         # the error of an empty mean
            return _loss(_LOSS_CODES[("cross_entropy", labels)], n, c, logits, target, red,
                         (eps,), weight, sample_weight, need_grad, "cross_entropy")
        grad = np.empty((n, c), dtype=logits.dtype) if need_grad else None
        if labels:
            if _f32(logits):
                loss = _xent_labels[float](n, c, _flat(logits), target, red, _flat(grad))
            else:
                loss = _xent_labels[double](n, c, _flat(logits), target, red, _flat(grad))
        else:
            if _f32(logits):
                loss = _xent_probs[float](n, c, _flat(logits), _flat(target), red, _flat(grad))
            else:
                loss = _xent_probs[double](n, c, _flat(logits), _flat(target), red,
                                           _flat(grad))
        return loss, grad

    # ------------------------------------------ scikit-learn's losses
    def sk_squared_error(self, pred, target, reduction="mean", *, sample_weight=None,
                         need_grad=True):
        """scikit-learn's squared_loss; its delta (pred - target) * w_i / sum(w) as gradient."""
        return self._sk_loss("sk_squared_error", "pred", pred, target, reduction,
                             sample_weight, need_grad)

    def sk_logistic(self, logits, target, reduction="mean", *, sample_weight=None,
                    need_grad=True):
        """scikit-learn's binary_log_loss of expit(logits); its delta (p - t) * w_i / sum(w)."""
        return self._sk_loss("sk_logistic", "logits", logits, target, reduction,
                             sample_weight, need_grad)

    def sk_softmax(self, logits, target, reduction="mean", *, sample_weight=None,
                   need_grad=True):
        """scikit-learn's log_loss of its softmax (int64 labels); its delta (p - Y) w_i / sum(w)."""
        _matrix(logits, "logits")
        cdef int64_t n = logits.shape[0], c = logits.shape[1]
        if not isinstance(target, np.ndarray):
            raise TypeError(f"target must be a numpy.ndarray, got {type(target).__name__}")
        _check_labels(target, logits)
        if c == 0 and n > 0:
            raise ValueError(f"sk_softmax needs at least one class, logits has shape "
                             f"{logits.shape}")
        if n and (target.min() < 0 or target.max() >= c):
            raise ValueError(f"sk_softmax: target labels must lie in [0, {c}) for logits of "
                             f"shape ({n}, {c})")
        _sk_total(logits, reduction, sample_weight)    # the reference's checks and errors
        return _loss(_LOSS_CODES[("sk_softmax", True)], n, c, logits, target,
                     _reduction_code(reduction, 1), (), None, sample_weight, need_grad,
                     "sk_softmax")

    def _sk_loss(self, str kernel, str name, p, target, reduction, sample_weight,
                 bint need_grad):
        """sk_squared_error or sk_logistic: the reference's checks, then C's row."""
        _float_array(p, name)
        _same(p, name, target, "target")
        _sk_total(p, reduction, sample_weight)
        rows, width = rows_width(p)
        return _loss(_LOSS_CODES[(kernel, False)], rows, width, p, target,
                     _reduction_code(reduction, 1), (), None, sample_weight, need_grad, kernel)

    # ---------------------------------------------------------- metrics
    def metric(self, name, pred, target):
        """A metric of ``pred`` (n, C) against ``target`` (see NumpyOps.metric)."""
        if name not in _METRIC_CODES:
            raise ValueError(f"unknown metric kernel {name!r}; expected one of "
                             f"{sorted(_METRIC_CODES)}")
        cdef int code = _METRIC_CODES[name]
        cdef double value = 0
        cdef int status
        _matrix(pred, "pred")
        if pred.size == 0:
            raise ValueError(f"pred must be a non-empty 2-D array, got {pred.shape}")
        cdef int64_t rows = pred.shape[0], cols = pred.shape[1]
        if _TABLES["metrics"][code]["labels"]:
            if (not isinstance(target, np.ndarray) or target.dtype != np.int64
                    or target.shape != (rows,)):
                raise ValueError(f"{name} takes int64 labels of shape ({rows},), got "
                                 f"{getattr(target, 'dtype', type(target).__name__)} of shape "
                                 f"{getattr(target, 'shape', None)}")
            target = np.ascontiguousarray(target)
        else:
            if not isinstance(target, np.ndarray) or target.shape != pred.shape \
                    or target.dtype != pred.dtype:
                raise ValueError(f"target is {getattr(target, 'dtype', None)} of shape "
                                 f"{getattr(target, 'shape', None)} but pred is "
                                 f"{pred.dtype} of shape {pred.shape}")
            target = np.ascontiguousarray(target)
        cdef const void *t = cnp.PyArray_DATA(target)
        cdef const void *p = cnp.PyArray_DATA(pred)
        cdef bint single = _f32(pred)
        with nogil:
            if single:
                status = fastnn_metric_f32(code, rows, cols, <const float *>p, t, &value)
            else:
                status = fastnn_metric_f64(code, rows, cols, <const double *>p, t, &value)
        _check_status(status, f"metric {name}")
        return value

    # ------------------------------------------------------- optimizers
    def optimizer_update(self, name, param, grad, states, hypers, step=1):
        """One update of optimizer ``name``, in place (see NumpyOps.optimizer_update).

        One wrapper for every row of C's optimizer table: the arrays checked
        here with the GIL, then fastnn_optimizer_update_* without it.
        """
        self._optimizer_call(name, param, grad, states, hypers, step, False)

    def _update_proved(self, name, param, grad, states, hypers, step=1):
        """Whether the native trainer's bound proves this update finite, so it
        would skip the update's dry run (fastnn_optimizer_update_proof_*);
        nothing is written.  For tests of that proof.

        Returns None when it cannot tell, else the bounds the trainer carries
        to the next batch: ``{"param": b, "states": [b0, b1], "signed": [s0, s1]}``,
        with |new param| <= b, |new state j| <= bj, and state j proved
        non-negative where sj is False.
        """
        return self._optimizer_call(name, param, grad, states, hypers, step, True)

    def _optimizer_call(self, name, param, grad, states, hypers, step, bint proof):
        cdef int code, j, status
        cdef double after[1 + 2 * FASTNN_OPT_MAX_STATE]
        cdef int64_t c_step, size
        cdef double hyper[FASTNN_OPT_MAX_HYPER]
        cdef void *state[FASTNN_OPT_MAX_STATE]
        cdef void *pp
        cdef const void *pg
        cdef bint f32
        code = _OPT_CODES.get(name, -1) if isinstance(name, str) else -1
        if code < 0:
            raise _unknown_optimizer(name, _OPT_CODES)
        row = _TABLES["optimizers"][code]
        state_list, h = check_optimizer_call(name, states, hypers, step, row["n_state"],
                                             row["hypers"])
        _float_array(param, "param")
        if not proof:
            _writable(param, "param")
        _same(param, "param", grad, "grad")
        for j in range(FASTNN_OPT_MAX_STATE):
            state[j] = NULL
        for j, s in enumerate(state_list):
            if s is not None:
                _same(param, "param", s, f"{name} state array {j}")
                if not proof:
                    _writable(s, f"{name} state array {j}")
                state[j] = cnp.PyArray_DATA(<cnp.ndarray>s)
        for j, hname in enumerate(row["hypers"]):
            hyper[j] = h[hname]
        c_step = step
        size = param.size
        pp = cnp.PyArray_DATA(<cnp.ndarray>param)
        pg = cnp.PyArray_DATA(<cnp.ndarray>grad)
        f32 = _f32(param)
        with nogil:
            if proof and f32:
                status = fastnn_optimizer_update_proof_f32(code, size, <const float *>pp,
                                                           <const float *>pg, <float **>state,
                                                           hyper, c_step, after)
            elif proof:
                status = fastnn_optimizer_update_proof_f64(code, size, <const double *>pp,
                                                           <const double *>pg,
                                                           <double **>state, hyper, c_step,
                                                           after)
            elif f32:
                status = fastnn_optimizer_update_f32(code, size, <float *>pp, <const float *>pg,
                                                     <float **>state, hyper, c_step)
            else:
                status = fastnn_optimizer_update_f64(code, size, <double *>pp,
                                                     <const double *>pg, <double **>state,
                                                     hyper, c_step)
        if status == FASTNN_EINVAL:
            missing = [j for j, s in enumerate(state_list) if s is None]
            if missing:
                raise missing_state(name, missing[0], param.shape, h)
        if proof and status == 0:
            return None
        if proof and status == 1:
            m = FASTNN_OPT_MAX_STATE
            return {"param": after[0], "states": [after[1 + j] for j in range(m)],
                    "signed": [after[1 + m + j] != 0 for j in range(m)]}
        _check_status(status, name)

    # ------------------------------------------------- gradient clipping
    def clip_grad_norm(self, grads, max_norm):
        """In place, as ``torch.nn.utils.clip_grad_norm_`` (see NumpyOps.clip_grad_norm):

        fastnn_clip_grad_norm_* over all the arrays at once.  Returns the norm.
        """
        cdef double total = 0.0
        _clip(check_clip_call(grads, max_norm, "max_norm"), float(max_norm), True,
                        &total)
        return total

    def clip_grad_value(self, grads, clip_value):
        """In place, as ``torch.nn.utils.clip_grad_value_`` (see NumpyOps.clip_grad_value)."""
        _clip(check_clip_call(grads, clip_value, "clip_value"), float(clip_value),
                        False, NULL)

    # ------------------------------------------- scikit-learn's L2 penalty
    def l2_penalty(self, weights, grads, alpha, total):
        """scikit-learn's L2 penalty, in place (see NumpyOps.l2_penalty):
        fastnn_l2_penalty_* over all the arrays at once, the trainer's own code.
        Returns the penalty."""
        weights, grads, alpha, total = check_l2_call(weights, grads, alpha, total)
        cdef int64_t count = len(grads), i
        cdef int status
        cdef double penalty = 0.0
        cdef double a = alpha, tot = total
        cdef bint f32 = count > 0 and _f32(grads[0])
        cdef int64_t *sizes = <int64_t *>calloc(count + 1, sizeof(int64_t))
        cdef void **wp = <void **>calloc(count + 1, sizeof(void *))
        cdef void **gp = <void **>calloc(count + 1, sizeof(void *))
        try:
            if sizes == NULL or wp == NULL or gp == NULL:
                raise MemoryError("l2_penalty: out of memory")
            for i in range(count):
                sizes[i] = grads[i].size
                wp[i] = cnp.PyArray_DATA(<cnp.ndarray>weights[i])
                gp[i] = cnp.PyArray_DATA(<cnp.ndarray>grads[i])
            with nogil:
                if f32:
                    status = fastnn_l2_penalty_f32(count, sizes, <const float *const *>wp,
                                                   <float *const *>gp, a, tot, &penalty)
                else:
                    status = fastnn_l2_penalty_f64(count, sizes, <const double *const *>wp,
                                                   <double *const *>gp, a, tot, &penalty)
            _check_status(status, "l2_penalty")
        finally:
            free(sizes)
            free(wp)
            free(gp)
        return penalty

    # ---------------------------------------------- randomness, dropout
    def rng_bits(self, seed, step, index):
        """64 random bits for element ``index`` of training step ``step`` (see NumpyOps)."""
        idx = np.asarray(index, dtype=np.uint64)
        if not idx.flags.c_contiguous:
            idx = idx.copy()
        out = np.empty(idx.shape, dtype=np.uint64)
        _rng(seed, step, idx.reshape(-1), out.reshape(-1))
        return out[()] if out.ndim == 0 else out   # a scalar for a scalar, as NumPy does

    def dropout_forward(self, X, p, seed, step):
        """mask = (u >= p) / (1 - p); Y = X * mask.  Returns (Y, mask)."""
        _float_array(X, "X")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout p must lie in [0, 1], got {p}")
        Y = np.empty(X.shape, dtype=X.dtype)
        mask = np.empty(X.shape, dtype=X.dtype)
        if _f32(X):
            _dropout[float](_flat(X), _flat(mask), _flat(Y), p, seed, step)
        else:
            _dropout[double](_flat(X), _flat(mask), _flat(Y), p, seed, step)
        return Y, mask

    def dropout_backward(self, dY, mask):
        """dX = dY * mask (the mask of the matching forward)."""
        _float_array(dY, "dY")
        _same(dY, "dY", mask, "mask")
        dX = np.empty(dY.shape, dtype=dY.dtype)
        if _f32(dY):
            _dropout_backward[float](_flat(dY), _flat(mask), _flat(dX))
        else:
            _dropout_backward[double](_flat(dY), _flat(mask), _flat(dX))
        return dX

    def batchnorm_forward(self, X, weight, bias, eps):
        """Training-mode BatchNorm1d (see NumpyOps.batchnorm_forward): (Y, xhat, mean, var)."""
        _matrix(X, "X")
        _norm_params(X, weight, bias, "batchnorm_forward")
        cdef double e = _eps(eps, "batchnorm_forward")
        cdef int64_t n = X.shape[0], d = X.shape[1]
        if n < 2:
            raise ValueError(f"BatchNorm1d needs more than 1 value per channel when "
                             f"training, got input of shape {X.shape}")
        Y = np.empty(X.shape, dtype=X.dtype)
        xhat = np.empty(X.shape, dtype=X.dtype)
        mean = np.empty(d, dtype=np.float64)
        var = np.empty(d, dtype=np.float64)
        cdef void *px = _ptr(X)
        cdef void *pw = _ptr(weight)
        cdef void *pb = _ptr(bias)
        cdef void *py = _ptr(Y)
        cdef void *ph = _ptr(xhat)
        cdef double *pm = <double *>_ptr(mean)
        cdef double *pv = <double *>_ptr(var)
        cdef bint f32 = _f32(X)
        cdef int status
        with nogil:
            if f32:
                status = fastnn_batchnorm_forward_f32(n, d, <const float *>px,
                                                      <const float *>pw, <const float *>pb,
                                                      e, <float *>py, <float *>ph, pm, pv)
            else:
                status = fastnn_batchnorm_forward_f64(n, d, <const double *>px,
                                                      <const double *>pw, <const double *>pb,
                                                      e, <double *>py, <double *>ph, pm, pv)
        _check_status(status, "batchnorm_forward")
        return Y, xhat, mean, var

    def batchnorm_eval(self, X, running_mean, running_var, weight, bias, eps):
        """Eval-mode BatchNorm1d (see NumpyOps.batchnorm_eval): Y (n, d)."""
        _matrix(X, "X")
        _norm_params(X, weight, bias, "batchnorm_eval")
        _norm_params(X, running_mean, running_var, "batchnorm_eval running statistics")
        if running_mean is None:
            raise ValueError("batchnorm_eval needs running_mean and running_var")
        cdef double e = _eps(eps, "batchnorm_eval")
        cdef int64_t n = X.shape[0], d = X.shape[1]
        Y = np.empty(X.shape, dtype=X.dtype)
        cdef void *px = _ptr(X)
        cdef void *prm = _ptr(running_mean)
        cdef void *prv = _ptr(running_var)
        cdef void *pw = _ptr(weight)
        cdef void *pb = _ptr(bias)
        cdef void *py = _ptr(Y)
        cdef bint f32 = _f32(X)
        cdef int status
        with nogil:
            if f32:
                status = fastnn_batchnorm_eval_f32(n, d, <const float *>px, <const float *>prm,
                                                   <const float *>prv, <const float *>pw,
                                                   <const float *>pb, e, <float *>py)
            else:
                status = fastnn_batchnorm_eval_f64(n, d, <const double *>px,
                                                   <const double *>prm, <const double *>prv,
                                                   <const double *>pw, <const double *>pb, e,
                                                   <double *>py)
        _check_status(status, "batchnorm_eval")
        return Y

    def batchnorm_backward(self, dY, xhat, var, weight, eps):
        """Training-mode BatchNorm1d backward (see NumpyOps.batchnorm_backward):
        (dX, dweight, dbias)."""
        _matrix(dY, "dY")
        _same(dY, "dY", xhat, "xhat")
        cdef int64_t n = dY.shape[0], d = dY.shape[1]
        _stat(var, d, "var", "batchnorm_backward")
        if weight is not None:
            _norm_params(dY, weight, weight, "batchnorm_backward")
        cdef double e = _eps(eps, "batchnorm_backward")
        if n < 1:
            raise ValueError(f"batchnorm_backward needs at least one row, got dY of shape "
                             f"{dY.shape}")
        dX = np.empty(dY.shape, dtype=dY.dtype)
        dw = np.empty(d, dtype=dY.dtype)
        db = np.empty(d, dtype=dY.dtype)
        work = np.empty(2 * d, dtype=np.float64)
        cdef void *pdy = _ptr(dY)
        cdef void *ph = _ptr(xhat)
        cdef double *pv = <double *>_ptr(var)
        cdef void *pw = _ptr(weight)
        cdef void *pdx = _ptr(dX)
        cdef void *pdw = _ptr(dw)
        cdef void *pdb = _ptr(db)
        cdef double *pk = <double *>_ptr(work)
        cdef bint f32 = _f32(dY)
        cdef int status
        with nogil:
            if f32:
                status = fastnn_batchnorm_backward_f32(n, d, <const float *>pdy,
                                                       <const float *>ph, pv, <const float *>pw,
                                                       e, <float *>pdx, <float *>pdw,
                                                       <float *>pdb, pk)
            else:
                status = fastnn_batchnorm_backward_f64(n, d, <const double *>pdy,
                                                       <const double *>ph, pv,
                                                       <const double *>pw, e, <double *>pdx,
                                                       <double *>pdw, <double *>pdb, pk)
        _check_status(status, "batchnorm_backward")
        return dX, dw, db

    def layernorm_forward(self, X, weight, bias, eps):
        """LayerNorm over the last axis (see NumpyOps.layernorm_forward): (Y, xhat, rstd)."""
        _matrix(X, "X")
        _norm_params(X, weight, bias, "layernorm_forward")
        cdef double e = _eps(eps, "layernorm_forward")
        cdef int64_t n = X.shape[0], d = X.shape[1]
        if d < 1:
            raise ValueError(f"layernorm_forward needs at least one feature, got X of shape "
                             f"{X.shape}")
        Y = np.empty(X.shape, dtype=X.dtype)
        xhat = np.empty(X.shape, dtype=X.dtype)
        rstd = np.empty(n, dtype=np.float64)
        cdef void *px = _ptr(X)
        cdef void *pw = _ptr(weight)
        cdef void *pb = _ptr(bias)
        cdef void *py = _ptr(Y)
        cdef void *ph = _ptr(xhat)
        cdef double *pr = <double *>_ptr(rstd)
        cdef bint f32 = _f32(X)
        cdef int status
        with nogil:
            if f32:
                status = fastnn_layernorm_forward_f32(n, d, <const float *>px,
                                                      <const float *>pw, <const float *>pb,
                                                      e, <float *>py, <float *>ph, pr)
            else:
                status = fastnn_layernorm_forward_f64(n, d, <const double *>px,
                                                      <const double *>pw, <const double *>pb,
                                                      e, <double *>py, <double *>ph, pr)
        _check_status(status, "layernorm_forward")
        return Y, xhat, rstd

    def layernorm_backward(self, dY, xhat, rstd, weight):
        """LayerNorm backward (see NumpyOps.layernorm_backward): (dX, dweight, dbias)."""
        _matrix(dY, "dY")
        _same(dY, "dY", xhat, "xhat")
        cdef int64_t n = dY.shape[0], d = dY.shape[1]
        _stat(rstd, n, "rstd", "layernorm_backward")
        if weight is not None:
            _norm_params(dY, weight, weight, "layernorm_backward")
        if d < 1:
            raise ValueError(f"layernorm_backward needs at least one feature, got dY of "
                             f"shape {dY.shape}")
        dX = np.empty(dY.shape, dtype=dY.dtype)
        dw = np.empty(d, dtype=dY.dtype)
        db = np.empty(d, dtype=dY.dtype)
        work = np.empty(2 * d, dtype=np.float64)
        cdef void *pdy = _ptr(dY)
        cdef void *ph = _ptr(xhat)
        cdef double *pr = <double *>_ptr(rstd)
        cdef void *pw = _ptr(weight)
        cdef void *pdx = _ptr(dX)
        cdef void *pdw = _ptr(dw)
        cdef void *pdb = _ptr(db)
        cdef double *pk = <double *>_ptr(work)
        cdef bint f32 = _f32(dY)
        cdef int status
        with nogil:
            if f32:
                status = fastnn_layernorm_backward_f32(n, d, <const float *>pdy,
                                                       <const float *>ph, pr, <const float *>pw,
                                                       <float *>pdx, <float *>pdw, <float *>pdb,
                                                       pk)
            else:
                status = fastnn_layernorm_backward_f64(n, d, <const double *>pdy,
                                                       <const double *>ph, pr,
                                                       <const double *>pw, <double *>pdx,
                                                       <double *>pdw, <double *>pdb, pk)
        _check_status(status, "layernorm_backward")
        return dX, dw, db

    def make_trainer(self, stages, loss, reduction, spec, X, T, batch, loss_args=None,
                     sample_weight=None):
        """A Trainer running whole batches of a fit in C (see fastnn.training)."""
        return Trainer(stages, loss, reduction, spec, X, T, batch, loss_args, sample_weight)


# ------------------------------------------------------------ test hook
_PROBE_ENTRIES = ("act_forward", "act_backward", "dense_forward", "dense_backward",
                  "mse", "bce", "xent_labels", "xent_probs", "loss", "set_isa",
                  "optimizer_update",
                  "trainer_new_loss", "trainer_new_optimizer", "trainer_new_reduction",
                  "trainer_new_stage", "trainer_new_act", "train_run_loss",
                  "train_run_optimizer", "train_run_reduction", "train_run_stage",
                  "train_run_act", "metric")


def _probe_code(str entry, int code):
    """Call one C entry point with ``code`` in place of its table code (tests only).

    The arguments are otherwise valid (2 x 2 float64 arrays, a one-stage dense
    network trained by SGD on MSE): ``entry`` names the function and which
    code it gets -- an activation, a reduction, an ISA, a loss (``"loss"``:
    fastnn_loss_f64, with labels for a row that takes them), or the trainer's loss,
    optimizer, reduction, stage kind or activation, given to
    ``fastnn_trainer_new`` or set after it, so that ``fastnn_train_run``'s own
    dispatch sees it.  Returns the status after ``_check_status`` (so an
    unknown code raises ValueError); ``set_isa`` leaves the ISA as it was.
    """
    if entry not in _PROBE_ENTRIES:
        raise ValueError(f"unknown entry {entry!r}; expected one of {_PROBE_ENTRIES}")
    cdef double[4] x, y, z, dy, w, dw, tg
    cdef double[2] b, db
    cdef double[4 * FASTNN_OPT_MAX_STATE] sws      # the optimizer's states: 4 of W's
    cdef double[2 * FASTNN_OPT_MAX_STATE] sbs      # and 2 of b's per state array
    cdef double[2] losses
    cdef double *opt_state[FASTNN_OPT_MAX_STATE]
    cdef double[FASTNN_OPT_MAX_HYPER] opt_hyper
    cdef int64_t[2] labels
    cdef double loss = 0
    cdef int status = FASTNN_OK, isa
    cdef fastnn_stage stage
    cdef fastnn_train_spec spec
    cdef fastnn_loss_args largs
    cdef const void *probe_targets = NULL
    cdef int mean_code = _REDUCTION_CODES["mean"]
    cdef fastnn_trainer *trainer = NULL
    cdef int64_t epoch = 0, start = 0
    for i in range(4):
        x[i] = y[i] = z[i] = dy[i] = w[i] = tg[i] = 0.25 * i
        dw[i] = 0
    memset(sws, 0, sizeof(sws))
    memset(sbs, 0, sizeof(sbs))
    b[0] = b[1] = db[0] = db[1] = losses[0] = losses[1] = 0
    labels[0] = 0
    labels[1] = 1
    if entry == "act_forward":
        status = fastnn_act_forward_f64(code, 0.01, 1.0, 2, 2, x, y)
    elif entry == "act_backward":
        status = fastnn_act_backward_f64(code, 0.01, 1.0, 2, 2, z, y, dy, x)
    elif entry == "dense_forward":
        status = fastnn_dense_forward_f64(2, 2, 2, x, w, b, code, 0.01, 1.0, z, y)
    elif entry == "dense_backward":
        status = fastnn_dense_backward_f64(2, 2, 2, x, w, z, y, dy, code, 0.01, 1.0, z,
                                           NULL, dw, db)
    elif entry == "mse":
        status = fastnn_mse_f64(4, x, tg, code, &loss, y)
    elif entry == "bce":
        status = fastnn_bce_f64(4, x, tg, code, &loss, y)
    elif entry == "xent_labels":
        status = fastnn_xent_labels_f64(2, 2, x, labels, code, &loss, y)
    elif entry == "xent_probs":
        status = fastnn_xent_probs_f64(2, 2, x, tg, code, &loss, y)
    elif entry == "loss":
        memset(&largs, 0, sizeof(largs))
        for i in range(FASTNN_LOSS_MAX_PARAM):
            largs.param[i] = 0.5     # a value every parameter accepts
        probe_targets = <const void *>tg
        if fastnn_loss_labels(code) == 1:
            probe_targets = <const void *>labels
        status = fastnn_loss_f64(code, 2, 2, x, probe_targets, &largs, mean_code, &loss,
                                 NULL, y)
    elif entry == "optimizer_update":
        for i in range(FASTNN_OPT_MAX_STATE):
            opt_state[i] = &sws[4 * i]
        opt_hyper[0] = 0.1       # lr; every other hyper-parameter 0.5
        for i in range(1, FASTNN_OPT_MAX_HYPER):
            opt_hyper[i] = 0.5
        status = fastnn_optimizer_update_f64(code, 4, y, x, opt_state, opt_hyper, 1)
    elif entry == "metric":
        status = fastnn_metric_f64(code, 2, 2, x, tg, &loss)
    elif entry == "set_isa":
        isa = fastnn_get_isa()
        status = fastnn_set_isa(code)
        fastnn_set_isa(isa)
        if status == FASTNN_EUNSUPPORTED:
            status = FASTNN_OK       # a real ISA this CPU lacks: not what is probed
    else:
        memset(&stage, 0, sizeof(stage))
        memset(&spec, 0, sizeof(spec))
        stage.kind = FASTNN_STAGE_DENSE
        stage.width_in = stage.width_out = 2
        stage.W = <void *>w
        stage.b = <void *>b
        stage.dW = <void *>dw
        stage.db = <void *>db
        for i in range(FASTNN_OPT_MAX_STATE):
            stage.state_W[i] = <void *>&sws[4 * i]
            stage.state_b[i] = <void *>&sbs[2 * i]
        spec.hyper[0] = 0.1      # lr; every other hyper-parameter 0.5
        for i in range(1, FASTNN_OPT_MAX_HYPER):
            spec.hyper[i] = 0.5
        for i in range(FASTNN_LOSS_MAX_PARAM):
            spec.loss_args.param[i] = 0.5   # a value every loss parameter accepts
        spec.step = 0
        field = entry.rsplit("_", 1)[1]
        if entry.startswith("trainer_new"):
            _probe_set(&stage, &spec, field, code)
        status = fastnn_trainer_new_f64(&trainer, &stage, 1, &spec, 2, 2)
        if status == FASTNN_OK and entry.startswith("train_run"):
            _probe_set(&stage, &spec, field, code)
            status = fastnn_train_run_f64(trainer, x, tg, 2, 2, NULL, 1, &epoch, &start, 1,
                                          losses)
        fastnn_trainer_free(trainer)
    _check_status(status, f"{entry} with code {code}")
    return status


cdef void _probe_set(fastnn_stage *stage, fastnn_train_spec *spec, str field, int code):
    if field == "loss":
        spec.loss = code
    elif field == "optimizer":
        spec.optimizer = code
    elif field == "reduction":
        spec.reduction = code
    elif field == "stage":
        stage.kind = code
    else:
        stage.act = code


# ------------------------------------------------------- test hook: GEMM blocks
cdef extern from *:
    """
    #include "internal.h"

    /* fastnn_internal_gemm_blocks's blocks, copied into a whole C (tests):
       how many there were and the largest (any thread may hand one in) */
    typedef struct {
        char *out;
        int64_t ld;
        size_t elem;
        int64_t blocks, largest;
    } fastnn_block_log;

    static void fastnn_log_block(const void *ctx, int64_t row0, int64_t col0, int64_t rows,
                                 int64_t cols, void *C, int64_t ldc)
    {
        fastnn_block_log *g = (fastnn_block_log *)ctx;
        for (int64_t r = 0; r < rows; r++)
            memcpy(g->out + ((row0 + r) * g->ld + col0) * (int64_t)g->elem,
                   (const char *)C + r * ldc * (int64_t)g->elem, (size_t)cols * g->elem);
        __atomic_fetch_add(&g->blocks, 1, __ATOMIC_RELAXED);
        int64_t seen = __atomic_load_n(&g->largest, __ATOMIC_RELAXED);
        while (rows * cols > seen &&
               !__atomic_compare_exchange_n(&g->largest, &seen, rows * cols, 0,
                                            __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            ;
    }

    static int fastnn_blocks_probe(int f32, int ta, int tb, int64_t m, int64_t n, int64_t k,
                                   const void *A, int64_t lda, const void *B, int64_t ldb,
                                   fastnn_block_log *g)
    {
        const fastnn_epilogue ep = {fastnn_log_block, g};
        return f32 ? fastnn_internal_gemm_blocks_f32(ta, tb, m, n, k, (const float *)A, lda,
                                                     (const float *)B, ldb, &ep)
                   : fastnn_internal_gemm_blocks_f64(ta, tb, m, n, k, (const double *)A, lda,
                                                     (const double *)B, ldb, &ep);
    }
    """
    ctypedef struct fastnn_block_log:
        char *out
        int64_t ld
        size_t elem
        int64_t blocks, largest
    int fastnn_blocks_probe(int f32, int ta, int tb, int64_t m, int64_t n, int64_t k,
                            const void *A, int64_t lda, const void *B, int64_t ldb,
                            fastnn_block_log *g) nogil


def _gemm_blocks(A, B, bint trans_a=False, bint trans_b=False):
    """op(A) @ op(B) by ``fastnn_internal_gemm_blocks`` (tests only): the blocks its
    epilogue is handed, copied into one array.

    Returns (C, the number of blocks, the largest block's elements); C has the
    bits of ``fastnn_gemm``'s product, or the blocks do not cover it.
    """
    _same_dtype(A, "A", B, "B")
    _matrix(A, "A")
    _matrix(B, "B")
    A = np.ascontiguousarray(A)
    B = np.ascontiguousarray(B)
    cdef int64_t m = A.shape[1] if trans_a else A.shape[0]
    cdef int64_t k = A.shape[0] if trans_a else A.shape[1]
    cdef int64_t n = B.shape[0] if trans_b else B.shape[1]
    if (B.shape[1] if trans_b else B.shape[0]) != k:
        raise ValueError(f"op(A) is {m} x {k} but op(B) has {B.shape} (trans_b={trans_b})")
    C = np.full((m, n), np.nan, dtype=A.dtype)
    cdef fastnn_block_log g
    g.out = <char *>cnp.PyArray_DATA(C)
    g.ld = n
    g.elem = A.dtype.itemsize
    g.blocks = 0
    g.largest = 0
    cdef const void *pa = cnp.PyArray_DATA(A)
    cdef const void *pb = cnp.PyArray_DATA(B)
    cdef int f32 = _f32(A)
    cdef int64_t lda = A.shape[1], ldb = B.shape[1]
    cdef int ta = trans_a, tb = trans_b
    cdef int status
    with nogil:
        status = fastnn_blocks_probe(f32, ta, tb, m, n, k, pa, lda, pb, ldb, &g)
    _check_status(status, "gemm_blocks")
    return C, int(g.blocks), int(g.largest)
