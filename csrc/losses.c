/*
 * losses.c -- MSE, BCE and cross-entropy (integer labels or probabilities):
 * the loss, accumulated in double, and optionally d loss / d pred.
 *
 * Why it is built this way: the NumPy reference (NumpyOps.mse, bce,
 * cross_entropy) is the spec, and it mixes dtypes on purpose: differences,
 * exponentials and gradients are computed in the array's dtype T, while the
 * terms of the loss are widened to float64 and summed there.  Each kernel
 * (losses_impl.h) does the same operations in the same dtype, and sums in
 * NumPy's pairwise order (pairwise_impl.h), so a float32 loss matches the
 * reference to the last bits wherever libm agrees with NumPy's exp/log.  No
 * warnings are raised for extreme values: exp underflows to 0 and logs are
 * clamped exactly as in the reference.  The cross-entropy's z - max enters
 * the loss in double (as in the reference), so float32 logits of -3e38
 * beside 3e38 give the finite loss 6e38, not inf.
 *
 * The body is written once over T in losses_impl.h, included once per
 * dtype; each loss of the trainer is one row of FASTNN_LOSSES (fastnn.h) and
 * one fastnn_internal_loss_<name> there, with the trainer's signature; the
 * public fastnn_loss_* reaches every row by its code.  The per-element
 * losses share one driver (an element term and its derivative per row);
 * sample weights multiply each row's terms (and its gradient's factor), and
 * the mean divides by the batch's total weight, so a weight of 2 counts as
 * two copies of the row.  Without weights or parameters nothing is
 * multiplied by 1: the unweighted losses keep their bits.
 *
 * scikit-learn's losses (the sk_ rows, for fastnn.sklearn) follow its
 * sklearn/neural_network code instead: its probabilities (expit, a softmax
 * of z - max), clipped to [eps, 1 - eps] in the value only, xlogy's zero
 * terms, a mean over rows (not over outputs), and as gradient its output
 * delta, which for the squared error is not the derivative of the value.
 */

#include <float.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <tgmath.h>

#include "fastnn.h"
#include "internal.h"
#include "vexp.h"

/* batches up to this many rows need no heap buffer in the cross-entropy */
#define LOSS_STACK_ROWS 256

/* the reference's _reduction_scale: 1/count for mean, 1 for sum */
static int reduction_scale(int reduction, int64_t count, double *scale)
{
    if (reduction == FASTNN_REDUCTION_MEAN) {
        if (count <= 0)
            return FASTNN_EINVAL;
        *scale = 1.0 / (double)count;
        return FASTNN_OK;
    }
    if (reduction == FASTNN_REDUCTION_SUM) {
        *scale = 1.0;
        return FASTNN_OK;
    }
    return FASTNN_EINVAL;
}

/* np.maximum(a, b): a if a >= b or a is NaN */
#define NP_MAX(a, b) (((a) < (b)) ? (b) : (a))

/* a contiguous vector of doubles: sum in NumPy's order */
typedef struct {
    const double *x;
} dvec_ctx;
#define PW_NAME pw_dvec
#define PW_ACC double
#define PW_CTX dvec_ctx
#define PW_ELEM(c, i) ((c)->x[i])
#include "pairwise_impl.h"

/* The per-element losses' scale and total weight: sum w (rows without
 * weights); scale 1 / (width * sum w) for mean (FASTNN_EINVAL without
 * elements, FASTNN_EZEROWEIGHT for a total weight of 0), 1 for sum. */
static int pointwise_scale(int64_t rows, int64_t width, const double *sw, int reduction,
                           double *scale, double *weight)
{
    if (rows < 0 || width < 0)
        return FASTNN_EINVAL;
    double total = (double)rows;
    if (sw != NULL) {
        dvec_ctx v = {sw};
        total = 0.0 + pw_dvec(&v, 0, rows);
    }
    *weight = total;
    if (reduction == FASTNN_REDUCTION_MEAN) {
        if (rows == 0 || width == 0)
            return FASTNN_EINVAL;
        if (!(total > 0.0))
            return total == 0.0 ? FASTNN_EZEROWEIGHT : FASTNN_EINVAL;
        *scale = 1.0 / ((double)width * total);
        return FASTNN_OK;
    }
    if (reduction == FASTNN_REDUCTION_SUM) {
        *scale = 1.0;
        return FASTNN_OK;
    }
    return FASTNN_EINVAL;
}

/* scipy.special.xlogy in double: 0 where x is 0 (unless y is NaN), else
 * x * log(y) */
static inline double sk_xlogy(double x, double y)
{
    return x == 0.0 && !isnan(y) ? 0.0 : x * log(y);
}

#define FASTNN_TEMPLATE "losses_impl.h"
#include "per_dtype.h"
