/*
 * losses.c -- MSE, BCE and cross-entropy (integer labels or probabilities):
 * the loss, accumulated in double, and optionally d loss / d pred.
 *
 * Why it is built this way: the NumPy reference (NumpyOps.mse, bce,
 * cross_entropy) is the spec, and it mixes dtypes on purpose: differences,
 * exponentials and gradients are computed in the array's dtype T, while the
 * terms of the loss are widened to float64 and summed there.  Each kernel
 * below does the same operations in the same dtype, and sums in NumPy's
 * pairwise order (PAIRWISE_SUM, pairwise.h), so a float32
 * loss matches the reference to the last bits wherever libm agrees with
 * NumPy's exp/log.  No warnings are raised for extreme values: exp
 * underflows to 0 and logs are clamped exactly as in the reference.  The
 * cross-entropy's z - max enters the loss in double (as in the reference), so
 * float32 logits of -3e38 beside 3e38 give the finite loss 6e38, not inf.
 *
 * This file includes itself once per dtype: the part under
 * FASTNN_LOSS_TEMPLATE is the templated body (T = float|double).
 */
#ifndef FASTNN_LOSS_TEMPLATE

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <tgmath.h>

#include "fastnn.h"
#include "internal.h"
#include "pairwise.h"
#include "vexp.h"

/* batches up to this many rows need no heap buffer in the cross-entropy */
#define LOSS_STACK_ROWS 256

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)

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
#define DVEC_ELEM(c, i) ((c)->x[i])
PAIRWISE_SUM(pw_dvec, double, dvec_ctx, DVEC_ELEM)
#undef DVEC_ELEM

#define FASTNN_LOSS_TEMPLATE
#define T float
#define SFX f32
#include "losses.c"
#undef T
#undef SFX
#define T double
#define SFX f64
#include "losses.c"
#undef T
#undef SFX
#undef FASTNN_LOSS_TEMPLATE

#else /* ---------------- templated body: T, SFX ---------------------------- */

#define F(name) CAT(name, SFX)

/* ---- MSE: loss = sum(float64(pred - target)^2) * scale ------------------ */
typedef struct {
    const T *p, *t;
} F(mse_ctx);
#define MSE_ELEM(c, i) ((double)((c)->p[i] - (c)->t[i]) * (double)((c)->p[i] - (c)->t[i]))
PAIRWISE_SUM(F(pw_mse), double, F(mse_ctx), MSE_ELEM)
#undef MSE_ELEM

int F(fastnn_mse)(int64_t size, const T *pred, const T *target, int reduction,
                  double *loss, T *grad)
{
    double scale;
    if (size < 0 || loss == NULL || reduction_scale(reduction, size, &scale))
        return FASTNN_EINVAL;
    if (size > 0 && (pred == NULL || target == NULL))
        return FASTNN_EINVAL;
    F(mse_ctx) c = {pred, target};
    *loss = (0.0 + F(pw_mse)(&c, 0, size)) * scale;
    if (grad != NULL) {
        const T g2 = (T)(2.0 * scale);
        for (int64_t i = 0; i < size; i++)
            grad[i] = (pred[i] - target[i]) * g2;
    }
    return FASTNN_OK;
}

/* ---- BCE ----------------------------------------------------------------
 * loss = -sum(t*max(log p, -100) + (1-t)*max(log(1-p), -100)) * scale, in
 * float64; grad = (p - t) / max(p*(1-p), 1e-12) * scale, in T.
 */
typedef struct {
    const T *p, *t;
} F(bce_ctx);
static inline double F(bce_term)(const F(bce_ctx) *c, int64_t i)
{
    const double p = (double)c->p[i], t = (double)c->t[i];
    double lp = log(p), l1p = log(1.0 - p);
    lp = NP_MAX(lp, -100.0);
    l1p = NP_MAX(l1p, -100.0);
    return t * lp + (1.0 - t) * l1p;
}
PAIRWISE_SUM(F(pw_bce), double, F(bce_ctx), F(bce_term))

int F(fastnn_bce)(int64_t size, const T *prob, const T *target, int reduction,
                  double *loss, T *grad)
{
    double scale;
    if (size < 0 || loss == NULL || reduction_scale(reduction, size, &scale))
        return FASTNN_EINVAL;
    if (size > 0 && (prob == NULL || target == NULL))
        return FASTNN_EINVAL;
    F(bce_ctx) c = {prob, target};
    *loss = -(0.0 + F(pw_bce)(&c, 0, size)) * scale;
    if (grad != NULL) {
        const T s = (T)scale, tiny = (T)1e-12;
        for (int64_t i = 0; i < size; i++) {
            const T p = prob[i];
            const T q = p * ((T)1 - p);
            grad[i] = (p - target[i]) / NP_MAX(q, tiny) * s;
        }
    }
    return FASTNN_OK;
}

/* ---- cross-entropy on logits -------------------------------------------- */

/* sum of exp(x - m) over a row, in T, NumPy's order */
typedef struct {
    const T *x;
    T m;
} F(sumexp_ctx);
#define SUMEXP_ELEM(c, i) (F(fastnn_exp)((c)->x[i] - (c)->m))
PAIRWISE_SUM(F(pw_sumexp), T, F(sumexp_ctx), SUMEXP_ELEM)
#undef SUMEXP_ELEM

/*
 * One row's shift m and sum_e = sum(exp(x - m)) (in T).  When g is not
 * NULL, e = exp(x - m) is stored in g and summed from there (same values).
 */
static inline T F(row_sum_exp)(const T *x, int64_t c, T *g, T *m_out)
{
    const T m = F(fastnn_internal_row_max)(x, c);
    *m_out = m;
    if (g != NULL) {
        for (int64_t j = 0; j < c; j++)
            g[j] = F(fastnn_exp)(x[j] - m);
        return F(fastnn_internal_sum)(g, c);
    }
    F(sumexp_ctx) v = {x, m};
    return (T)0 + F(pw_sumexp)(&v, 0, c);
}

/* cross-entropy with labels; work holds n doubles (see fastnn_xent_labels) */
FASTNN_ELEMENTWISE int F(fastnn_internal_xent_labels)(int64_t n, int64_t c, const T *logits,
                                   const int64_t *labels, int reduction,
                                   double *loss, T *grad, double *work)
{
    double scale;
    if (n < 0 || c < 0 || loss == NULL || reduction_scale(reduction, n, &scale))
        return FASTNN_EINVAL;
    if (n == 0) {
        *loss = 0.0 * scale;
        return FASTNN_OK;
    }
    if (c == 0 || logits == NULL || labels == NULL)
        return FASTNN_EINVAL;
    for (int64_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= c)
            return FASTNN_EINVAL;
    /* per-row terms log(sum_e) - (z_label - max), summed pairwise after */
    double *terms = work;
    const T s = (T)scale;
    for (int64_t i = 0; i < n; i++) {
        const T *x = logits + i * c;
        T *g = grad != NULL ? grad + i * c : NULL;
        T m;
        const T sum_e = F(row_sum_exp)(x, c, g, &m);
        const int64_t lab = labels[i];
        terms[i] = log((double)sum_e) - ((double)x[lab] - (double)m);
        if (g != NULL) {
            for (int64_t j = 0; j < c; j++)
                g[j] = g[j] / sum_e;
            g[lab] = g[lab] - (T)1;
            for (int64_t j = 0; j < c; j++)
                g[j] = g[j] * s;
        }
    }
    dvec_ctx v = {terms};
    *loss = (0.0 + pw_dvec(&v, 0, n)) * scale;
    return FASTNN_OK;
}

int F(fastnn_xent_labels)(int64_t n, int64_t c, const T *logits,
                          const int64_t *labels, int reduction, double *loss,
                          T *grad)
{
    double stack[LOSS_STACK_ROWS];
    double *work = n <= LOSS_STACK_ROWS ? stack : (double *)malloc((size_t)n * sizeof(double));
    if (work == NULL)
        return FASTNN_ENOMEM;
    const int status = F(fastnn_internal_xent_labels)(n, c, logits, labels, reduction, loss,
                                                      grad, work);
    if (work != stack)
        free(work);
    return status;
}

/* loss term of element i (flat index) : t * ((float64(z) - float64(m_row)) - log_sum_row) */
typedef struct {
    const T *x, *t;
    const T *m;
    const double *log_sum;
    int64_t c;
} F(xprob_ctx);
static inline double F(xprob_term)(const F(xprob_ctx) *c, int64_t i)
{
    const int64_t r = i / c->c;
    const double ls = ((double)c->x[i] - (double)c->m[r]) - c->log_sum[r];
    return (double)c->t[i] * ls;
}
PAIRWISE_SUM(F(pw_xprob), double, F(xprob_ctx), F(xprob_term))

/* cross-entropy with probabilities; work holds 2 n doubles (see fastnn_xent_probs) */
FASTNN_ELEMENTWISE int F(fastnn_internal_xent_probs)(int64_t n, int64_t c, const T *logits, const T *probs,
                                  int reduction, double *loss, T *grad, double *work)
{
    double scale;
    if (n < 0 || c < 0 || loss == NULL || reduction_scale(reduction, n, &scale))
        return FASTNN_EINVAL;
    if (n == 0) {
        *loss = -0.0 * scale;
        return FASTNN_OK;
    }
    if (c == 0 || logits == NULL || probs == NULL)
        return FASTNN_EINVAL;
    /* per row: max (T) and log(sum_e) (float64) */
    double *log_sum = work;
    T *mrow = (T *)(work + n);
    const T s = (T)scale;
    for (int64_t i = 0; i < n; i++) {
        const T *x = logits + i * c;
        const T *t = probs + i * c;
        T *g = grad != NULL ? grad + i * c : NULL;
        const T sum_e = F(row_sum_exp)(x, c, g, &mrow[i]);
        log_sum[i] = log((double)sum_e);
        if (g != NULL) {
            /* (softmax * sum_c t_c - t) * scale */
            const T tsum = F(fastnn_internal_sum)(t, c);
            for (int64_t j = 0; j < c; j++)
                g[j] = (g[j] / sum_e * tsum - t[j]) * s;
        }
    }
    F(xprob_ctx) v = {logits, probs, mrow, log_sum, c};
    *loss = -(0.0 + F(pw_xprob)(&v, 0, n * c)) * scale;
    return FASTNN_OK;
}

int F(fastnn_xent_probs)(int64_t n, int64_t c, const T *logits, const T *probs,
                         int reduction, double *loss, T *grad)
{
    double stack[2 * LOSS_STACK_ROWS];
    double *work = n <= LOSS_STACK_ROWS ? stack
                                        : (double *)malloc(2 * (size_t)n * sizeof(double));
    if (work == NULL)
        return FASTNN_ENOMEM;
    const int status = F(fastnn_internal_xent_probs)(n, c, logits, probs, reduction, loss,
                                                     grad, work);
    if (work != stack)
        free(work);
    return status;
}

#undef F

#endif /* FASTNN_LOSS_TEMPLATE */
