/*
 * activations.c -- elementwise (softmax: row-wise) activations and their
 * derivatives, float and double from one templated body.
 *
 * Why it is built this way: the NumPy reference (NumpyOps.activation_forward
 * and activation_backward) is the spec, so every formula below does the same
 * operations in the same order and in the array's dtype, scalars included
 * (alpha is rounded to T first, like ``dt(alpha)``).  Row sums (softmax) use
 * NumPy's own pairwise summation order (PAIRWISE_SUM, pairwise.h), so float32 results
 * agree with the reference to the last bits wherever libm agrees with NumPy's
 * exp.  The functions work on strided blocks (row stride ld) so dense.c can
 * run them on a finished GEMM block while it is still in cache.
 *
 * This file includes itself once per dtype: the part under
 * FASTNN_ACT_TEMPLATE is the templated body (T = float|double, SFX = f32|f64).
 */
#ifndef FASTNN_ACT_TEMPLATE

#include <stddef.h>
#include <stdint.h>
#include <tgmath.h>

#include "fastnn.h"
#include "internal.h"
#include "pairwise.h"
#include "vexp.h"

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)

#define FASTNN_ACT_TEMPLATE
#define T float
#define SFX f32
#include "activations.c"
#undef T
#undef SFX
#define T double
#define SFX f64
#include "activations.c"
#undef T
#undef SFX
#undef FASTNN_ACT_TEMPLATE

#else /* ---------------- templated body: T, SFX ---------------------------- */

#define F(name) CAT(name, SFX)

/* contiguous sum x[0..n) in T, NumPy's order: -0.0 + pairwise(x) */
typedef struct {
    const T *x;
} F(vec_ctx);
#define VEC_ELEM(c, i) ((c)->x[i])
PAIRWISE_SUM(F(pw_vec), T, F(vec_ctx), VEC_ELEM)
#undef VEC_ELEM

/* sum of the products x[i]*y[i] (each rounded to T), NumPy's order */
typedef struct {
    const T *x, *y;
} F(dot_ctx);
#define DOT_ELEM(c, i) ((T)((c)->x[i] * (c)->y[i]))
PAIRWISE_SUM(F(pw_dot), T, F(dot_ctx), DOT_ELEM)
#undef DOT_ELEM

/* Internal (used by dense.c and losses.c): NumPy's sum of a contiguous vector. */
T F(fastnn_internal_sum)(const T *x, int64_t n)
{
    F(vec_ctx) c = {x};
    return (T)0 + F(pw_vec)(&c, 0, n);
}

/* the reference's _sigmoid: e = exp(-|x|); x >= 0 ? 1/(1+e) : e/(1+e) */
static inline T F(sigmoid)(T x)
{
    const T e = F(fastnn_exp)(-fabs(x));
    const T d = (T)1 + e;
    return x >= (T)0 ? (T)1 / d : e / d;
}

/* max of a row, propagating NaN like ndarray.max (also used by losses.c) */
T F(fastnn_internal_row_max)(const T *x, int64_t n)
{
    T m = x[0];
    for (int64_t j = 1; j < n; j++) {
        const T v = x[j];
        if (v > m || v != v)
            m = v;
        if (m != m)
            break;
    }
    return m;
}

/* softmax of one row: e = exp(x - max); y = e / sum(e).  y may alias x. */
static inline void F(softmax_row)(const T *x, T *y, int64_t n)
{
    if (n <= 0)
        return;
    const T m = F(fastnn_internal_row_max)(x, n);
    for (int64_t j = 0; j < n; j++)
        y[j] = F(fastnn_exp)(x[j] - m);
    const T s = F(fastnn_internal_sum)(y, n);
    for (int64_t j = 0; j < n; j++)
        y[j] = y[j] / s;
}

/*
 * Internal (used by dense.c): forward activation of a rows x cols block,
 * x with row stride ldx, y with row stride ldy; y may alias x (same ld).
 */
FASTNN_ELEMENTWISE int F(fastnn_internal_act_forward)(int act, double alpha, int64_t rows,
                                   int64_t cols, const T *x, int64_t ldx, T *y,
                                   int64_t ldy)
{
    const T a = (T)alpha;
    if (act != FASTNN_ACT_SOFTMAX && ldx == cols && ldy == cols) {
        cols *= rows;   /* contiguous and elementwise: one long row */
        rows = 1;
    }
    for (int64_t i = 0; i < rows; i++) {
        const T *xr = x + i * ldx;
        T *yr = y + i * ldy;
        switch (act) {
        case FASTNN_ACT_IDENTITY:
            if (xr != yr)
                for (int64_t j = 0; j < cols; j++)
                    yr[j] = xr[j];
            break;
        case FASTNN_ACT_SIGMOID:
            for (int64_t j = 0; j < cols; j++)
                yr[j] = F(sigmoid)(xr[j]);
            break;
        case FASTNN_ACT_TANH:
            for (int64_t j = 0; j < cols; j++)
                yr[j] = tanh(xr[j]);
            break;
        case FASTNN_ACT_RELU:
            for (int64_t j = 0; j < cols; j++)
                yr[j] = xr[j] <= (T)0 ? (T)0 : xr[j];   /* NaN stays NaN */
            break;
        case FASTNN_ACT_LEAKY_RELU:
            for (int64_t j = 0; j < cols; j++)
                yr[j] = xr[j] > (T)0 ? xr[j] : a * xr[j];
            break;
        case FASTNN_ACT_SILU:
            for (int64_t j = 0; j < cols; j++)
                yr[j] = xr[j] * F(sigmoid)(xr[j]);
            break;
        case FASTNN_ACT_SOFTMAX:
            F(softmax_row)(xr, yr, cols);
            break;
        default:
            return FASTNN_EINVAL;
        }
    }
    return FASTNN_OK;
}

/*
 * Internal (used by dense.c): derivative of a rows x cols block, all arrays
 * with row stride ld.  dz may alias dy.  If act is identity and dz == dy,
 * nothing is written.
 */
FASTNN_ELEMENTWISE int F(fastnn_internal_act_backward)(int act, double alpha, int64_t rows,
                                    int64_t cols, const T *z, const T *y,
                                    const T *dy, T *dz, int64_t ld)
{
    const T a = (T)alpha;
    if (act < 0 || act >= FASTNN_N_ACT)
        return FASTNN_EINVAL;
    if (rows == 0 || cols == 0)
        return FASTNN_OK;
    if (fastnn_needs_preactivation(act)) {
        if (z == NULL)
            return FASTNN_EINVAL;
    } else if (act != FASTNN_ACT_IDENTITY && y == NULL) {
        return FASTNN_EINVAL;
    }
    if (act != FASTNN_ACT_SOFTMAX && ld == cols) {
        cols *= rows;   /* contiguous and elementwise: one long row */
        rows = 1;
    }
    for (int64_t i = 0; i < rows; i++) {
        const int64_t o = i * ld;
        const T *g = dy + o;
        T *d = dz + o;
        switch (act) {
        case FASTNN_ACT_IDENTITY:
            if (d != g)
                for (int64_t j = 0; j < cols; j++)
                    d[j] = g[j];
            break;
        case FASTNN_ACT_SIGMOID: {
            const T *yr = y + o;
            for (int64_t j = 0; j < cols; j++)
                d[j] = g[j] * (yr[j] * ((T)1 - yr[j]));
            break;
        }
        case FASTNN_ACT_TANH: {
            const T *yr = y + o;
            for (int64_t j = 0; j < cols; j++)
                d[j] = g[j] * ((T)1 - yr[j] * yr[j]);
            break;
        }
        case FASTNN_ACT_RELU: {
            const T *yr = y + o;
            for (int64_t j = 0; j < cols; j++) { /* loads first: a branch-free select */
                const T gj = g[j], yj = yr[j];
                d[j] = yj > (T)0 ? gj : (T)0;
            }
            break;
        }
        case FASTNN_ACT_LEAKY_RELU: {
            const T *zr = z + o;
            for (int64_t j = 0; j < cols; j++) {
                const T gj = g[j], zj = zr[j];
                d[j] = zj > (T)0 ? gj : a * gj;
            }
            break;
        }
        case FASTNN_ACT_SILU: {
            const T *zr = z + o;
            for (int64_t j = 0; j < cols; j++) {
                const T s = F(sigmoid)(zr[j]);
                d[j] = g[j] * (s * ((T)1 + zr[j] * ((T)1 - s)));
            }
            break;
        }
        case FASTNN_ACT_SOFTMAX: {
            /* y * (dy - sum(dy * y)): the row sum is taken before dz is written */
            const T *yr = y + o;
            F(dot_ctx) c = {g, yr};
            const T s = (T)0 + F(pw_dot)(&c, 0, cols);
            for (int64_t j = 0; j < cols; j++)
                d[j] = yr[j] * (g[j] - s);
            break;
        }
        }
    }
    return FASTNN_OK;
}

/* an activation pass's arguments, for rows split across threads: forward
   reads a (x) and writes out (y); backward reads a (z), b (y), dy, writes out */
typedef struct {
    int act;
    double alpha;
    int64_t cols;
    const T *a;
    const T *b;
    const T *dy;
    T *out;
} F(act_job);

static void F(act_forward_range)(const void *ctx, int64_t lo, int64_t hi)
{
    const F(act_job) *j = (const F(act_job) *)ctx;
    const int64_t c = j->cols;
    F(fastnn_internal_act_forward)(j->act, j->alpha, hi - lo, c, j->a + lo * c, c,
                                   j->out + lo * c, c);
}

static void F(act_backward_range)(const void *ctx, int64_t lo, int64_t hi)
{
    const F(act_job) *j = (const F(act_job) *)ctx;
    const int64_t c = j->cols;
    F(fastnn_internal_act_backward)(j->act, j->alpha, hi - lo, c, j->a ? j->a + lo * c : NULL,
                                    j->b ? j->b + lo * c : NULL, j->dy + lo * c,
                                    j->out + lo * c, c);
}

int F(fastnn_act_forward)(int act, double alpha, int64_t rows, int64_t cols,
                          const T *x, T *y)
{
    if (act < 0 || act >= FASTNN_N_ACT || rows < 0 || cols < 0)
        return FASTNN_EINVAL;
    if (rows == 0 || cols == 0)
        return FASTNN_OK;
    if (x == NULL || y == NULL)
        return FASTNN_EINVAL;
    /* rows are independent: split them (act was checked, so no call can fail) */
    const F(act_job) job = {act, alpha, cols, x, NULL, NULL, y};
    fastnn_internal_parallel_ranges(F(act_forward_range), &job, rows, rows * cols);
    return FASTNN_OK;
}

int F(fastnn_act_backward)(int act, double alpha, int64_t rows, int64_t cols,
                           const T *z, const T *y, const T *dy, T *dz)
{
    if (act < 0 || act >= FASTNN_N_ACT || rows < 0 || cols < 0)
        return FASTNN_EINVAL;
    if (rows == 0 || cols == 0)
        return FASTNN_OK;
    if (dy == NULL || dz == NULL)
        return FASTNN_EINVAL;
    if (fastnn_needs_preactivation(act) ? z == NULL : (act != FASTNN_ACT_IDENTITY && y == NULL))
        return FASTNN_EINVAL;
    const F(act_job) job = {act, alpha, cols, z, y, dy, dz};
    fastnn_internal_parallel_ranges(F(act_backward_range), &job, rows, rows * cols);
    return FASTNN_OK;
}

#undef F

#endif /* FASTNN_ACT_TEMPLATE */
