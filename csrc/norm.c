/*
 * norm.c -- BatchNorm1d and LayerNorm, forward and backward.
 *
 * Why it is built this way: each mean, variance and parameter-gradient sum is
 * accumulated in double, in index order, in one thread (a reduction is never
 * split), so the results match the NumPy reference (fastnn/backends/numpy_ops.py)
 * to rounding and never depend on the thread count.  The bodies are written once
 * over T in norm_impl.h and included once per dtype; the compiled trainer
 * (train_impl.h) calls the same functions for its norm stages.
 */
#include <math.h>
#include <stdlib.h>

#include "fastnn.h"
#include "internal.h"

#define FASTNN_TEMPLATE "norm_impl.h"
#include "per_dtype.h"
