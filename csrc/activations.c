/*
 * activations.c -- elementwise (softmax: row-wise) activations and their
 * derivatives, float and double from one templated body.
 *
 * Why it is built this way: the NumPy reference (NumpyOps.activation_forward
 * and activation_backward) is the spec, so every formula (activations_impl.h) does the same
 * operations in the same order and in the array's dtype, scalars included
 * (alpha is rounded to T first, like ``dt(alpha)``).  Row sums (softmax) use
 * NumPy's own pairwise summation order (pairwise_impl.h), so float32 results
 * agree with the reference to the last bits wherever libm agrees with NumPy's
 * exp.  The functions work on strided blocks (row stride ld) so dense.c can
 * run them on a finished GEMM block while it is still in cache.
 *
 * Each activation is one row of FASTNN_ACTIVATIONS (fastnn.h) and two span
 * functions in activations_impl.h, name_forward and name_backward; the
 * dispatch switches expand from the table and refuse unknown codes.  The
 * body is written once over T in activations_impl.h, included once per dtype.
 */
#include <stddef.h>
#include <stdint.h>
#include <tgmath.h>

#include "fastnn.h"
#include "internal.h"
#include "vexp.h"

#define FASTNN_TEMPLATE "activations_impl.h"
#include "per_dtype.h"
