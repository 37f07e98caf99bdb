/*
 * losses_impl.h -- the templated body of losses.c, included once per dtype with T
 * (float|double) and SFX (f32|f64) defined (see the note in losses.c).
 * No include guard on purpose.
 */
#if !defined(T) || !defined(SFX)
#error "define T and SFX before including losses_impl.h"
#endif
/* ---- MSE: loss = sum(float64(pred - target)^2) * scale ------------------ */
typedef struct {
    const T *p, *t;
} F(mse_ctx);
#define PW_NAME F(pw_mse)
#define PW_ACC double
#define PW_CTX F(mse_ctx)
#define PW_ELEM(c, i) ((double)((c)->p[i] - (c)->t[i]) * (double)((c)->p[i] - (c)->t[i]))
#include "pairwise_impl.h"

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
#define PW_NAME F(pw_bce)
#define PW_ACC double
#define PW_CTX F(bce_ctx)
#define PW_ELEM(c, i) F(bce_term)(c, i)
#include "pairwise_impl.h"

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
#define PW_NAME F(pw_sumexp)
#define PW_ACC T
#define PW_CTX F(sumexp_ctx)
#define PW_ELEM(c, i) (F(fastnn_exp)((c)->x[i] - (c)->m))
#include "pairwise_impl.h"

/* One row's shift m and sum_e = sum(exp(x - m)) (in T), without storing e. */
static inline T F(row_sum_exp)(const T *x, int64_t c, T *m_out)
{
    const T m = F(fastnn_internal_row_max)(x, c);
    *m_out = m;
    F(sumexp_ctx) v = {x, m};
    return (T)0 + F(pw_sumexp)(&v, 0, c);
}

/* e = exp(x - m) of a whole n x c block into g, each row shifted by its max
 * (stored in m[i]): the shifts row by row, then one exp loop over all n*c
 * values, which vectorizes at full width even for narrow rows (the same
 * values as row by row: exp is elementwise).  The rows' sums are then
 * fastnn_internal_sum(g + i*c, c). */
static inline __attribute__((always_inline)) void F(block_exp)(int64_t n, int64_t c, const T *x,
                                                              T *g, T *m)
{
    for (int64_t i = 0; i < n; i++) {
        const T *xr = x + i * c;
        T *gr = g + i * c;
        const T mi = F(fastnn_internal_row_max)(xr, c);
        m[i] = mi;
        for (int64_t j = 0; j < c; j++)
            gr[j] = xr[j] - mi;
    }
    for (int64_t k = 0; k < n * c; k++)
        g[k] = F(fastnn_exp)(g[k]);
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
    if (grad != NULL) {
        /* the row maxima wait in terms (a T is exact as a double) */
        T *m = (T *)terms;
        _Static_assert(sizeof(T) <= sizeof(double), "T fits a double's slot");
        F(block_exp)(n, c, logits, grad, m);
        /* from the end: terms[i] overlaps m[i] (double) or m[2i], m[2i + 1]
         * (float), which are all read by the time it is written */
        for (int64_t i = n - 1; i >= 0; i--) {
            const T *x = logits + i * c;
            T *g = grad + i * c;
            const T mi = m[i], sum_e = F(fastnn_internal_sum)(g, c);
            const int64_t lab = labels[i];
            terms[i] = log((double)sum_e) - ((double)x[lab] - (double)mi);
            for (int64_t j = 0; j < c; j++)
                g[j] = g[j] / sum_e;
            g[lab] = g[lab] - (T)1;
            for (int64_t j = 0; j < c; j++)
                g[j] = g[j] * s;
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            const T *x = logits + i * c;
            T m;
            const T sum_e = F(row_sum_exp)(x, c, &m);
            terms[i] = log((double)sum_e) - ((double)x[labels[i]] - (double)m);
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
#define PW_NAME F(pw_xprob)
#define PW_ACC double
#define PW_CTX F(xprob_ctx)
#define PW_ELEM(c, i) F(xprob_term)(c, i)
#include "pairwise_impl.h"

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
    if (grad != NULL)
        F(block_exp)(n, c, logits, grad, mrow);
    for (int64_t i = 0; i < n; i++) {
        const T *x = logits + i * c;
        const T *t = probs + i * c;
        T *g = grad != NULL ? grad + i * c : NULL;
        const T sum_e = g != NULL ? F(fastnn_internal_sum)(g, c)
                                  : F(row_sum_exp)(x, c, &mrow[i]);
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


/* ---- the trainer's losses: one per row of FASTNN_LOSSES, one signature -- */

int F(fastnn_internal_loss_mse)(int64_t rows, int64_t width, const T *pred,
                                const void *targets, int reduction, double *loss, T *grad,
                                double *work)
{
    (void)work;
    return F(fastnn_mse)(rows * width, pred, (const T *)targets, reduction, loss, grad);
}

int F(fastnn_internal_loss_bce)(int64_t rows, int64_t width, const T *pred,
                                const void *targets, int reduction, double *loss, T *grad,
                                double *work)
{
    (void)work;
    return F(fastnn_bce)(rows * width, pred, (const T *)targets, reduction, loss, grad);
}

int F(fastnn_internal_loss_xent_labels)(int64_t rows, int64_t width, const T *pred,
                                        const void *targets, int reduction, double *loss,
                                        T *grad, double *work)
{
    return F(fastnn_internal_xent_labels)(rows, width, pred, (const int64_t *)targets,
                                          reduction, loss, grad, work);
}

int F(fastnn_internal_loss_xent_probs)(int64_t rows, int64_t width, const T *pred,
                                       const void *targets, int reduction, double *loss,
                                       T *grad, double *work)
{
    return F(fastnn_internal_xent_probs)(rows, width, pred, (const T *)targets, reduction,
                                         loss, grad, work);
}
