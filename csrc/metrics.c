/*
 * metrics.c -- the metrics fit records and evaluate returns (mae, mse,
 * accuracy), over one set of outputs and its targets.
 *
 * Why it is built this way: a metric is a reduction of the outputs of a
 * whole data set, computed after the forward pass; each is one row of
 * FASTNN_METRICS (fastnn.h) and one function here, with the NumPy
 * reference (NumpyOps.metric) as the spec: differences in the dtype T, terms
 * widened to double and summed in NumPy's pairwise order (pairwise_impl.h),
 * accuracies counted exactly.  One thread: the sums are short next to the
 * forward pass that made pred, and a reduction is never split.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "fastnn.h"
#include "internal.h"

#define FASTNN_TEMPLATE "metrics_impl.h"
#include "per_dtype.h"
