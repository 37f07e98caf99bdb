/*
 * losses_impl.h -- the templated body of losses.c, included once per dtype with T
 * (float|double) and SFX (f32|f64) defined (see the note in losses.c).
 * No include guard on purpose.
 */
#if !defined(T) || !defined(SFX)
#error "define T and SFX before including losses_impl.h"
#endif
#include "rows_impl.h"

/* ---- per-element losses -------------------------------------------------
 * mse, bce, l1, huber, smooth_l1 and bce_logits: a term e(p, t) per element,
 * in double (the loss), and its derivative g(p, t) in T.  One driver
 * (POINTWISE_LOSS) sums the terms, each times its row's sample weight, in
 * NumPy's pairwise order over the flat array, scales the sum (1 / (width *
 * sum w) for mean), and writes grad = g * T(k * scale * w_row) (k = 2 for
 * MSE, whose factor 2 goes into the row's factor, as in the reference).
 * Without sample weights a term is not multiplied at all, so the unweighted
 * losses keep their bits.
 */
typedef struct {
    const T *p, *t;
    const double *sw;  /* a weight per row, or NULL */
    const double *vec; /* a weight per column (pos_weight), or NULL */
    int64_t width;
    double a;          /* the loss's parameter (Huber's delta, smooth L1's beta) */
} F(elem_ctx);

static inline double F(row_weighted)(const F(elem_ctx) *c, int64_t i, double e)
{
    return c->sw != NULL ? c->sw[i / c->width] * e : e;
}

/* MSE: e = float64(p - t)^2; g = p - t (k = 2) */
static inline double F(mse_term)(const F(elem_ctx) *c, int64_t i)
{
    return (double)(c->p[i] - c->t[i]) * (double)(c->p[i] - c->t[i]);
}
static inline T F(mse_grad)(T p, T t, int64_t j, const F(elem_ctx) *c)
{
    (void)j, (void)c;
    return p - t;
}

/* BCE: e = -(t*max(log p, -100) + (1-t)*max(log(1-p), -100)) in float64;
 * g = (p - t) / max(p*(1-p), 1e-12) */
static inline double F(bce_term)(const F(elem_ctx) *c, int64_t i)
{
    const double p = (double)c->p[i], t = (double)c->t[i];
    double lp = log(p), l1p = log(1.0 - p);
    lp = NP_MAX(lp, -100.0);
    l1p = NP_MAX(l1p, -100.0);
    return -(t * lp + (1.0 - t) * l1p);
}
static inline T F(bce_grad)(T p, T t, int64_t j, const F(elem_ctx) *c)
{
    (void)j, (void)c;
    const T q = p * ((T)1 - p);
    return (p - t) / NP_MAX(q, (T)1e-12);
}

/* L1: e = |float64(p - t)|; g = sign(p - t), 0 at 0 (PyTorch's sgn) */
static inline double F(l1_term)(const F(elem_ctx) *c, int64_t i)
{
    return fabs((double)(c->p[i] - c->t[i]));
}
static inline T F(sign)(T d)
{
    return d > (T)0 ? (T)1 : (d < (T)0 ? (T)-1 : (d == (T)0 ? (T)0 : d));
}
static inline T F(l1_grad)(T p, T t, int64_t j, const F(elem_ctx) *c)
{
    (void)j, (void)c;
    return F(sign)(p - t);
}

/* Huber (delta = a > 0): z = |float64(p - t)|; e = z < a ? z^2/2 : a*(z - a/2);
 * g = clip(p - t, -a, a) (PyTorch's: the slope is a beyond +-a) */
static inline double F(huber_term)(const F(elem_ctx) *c, int64_t i)
{
    const double z = fabs((double)(c->p[i] - c->t[i])), a = c->a;
    return z < a ? 0.5 * z * z : a * (z - 0.5 * a);
}
static inline T F(huber_grad)(T p, T t, int64_t j, const F(elem_ctx) *c)
{
    (void)j;
    const T d = p - t, a = (T)c->a;
    return d < -a ? -a : (d > a ? a : d);
}

/* smooth L1 (beta = a >= 0): e = z < a ? z^2/(2a) : z - a/2; g = clip((p - t)/a,
 * -1, 1); beta 0 is L1 (as PyTorch's smooth_l1_loss), gradient included */
static inline double F(smooth_l1_term)(const F(elem_ctx) *c, int64_t i)
{
    const double z = fabs((double)(c->p[i] - c->t[i])), a = c->a;
    return z < a ? 0.5 * z * z / a : z - 0.5 * a;
}
static inline T F(smooth_l1_grad)(T p, T t, int64_t j, const F(elem_ctx) *c)
{
    (void)j;
    const T d = p - t, a = (T)c->a;
    if (a == (T)0)
        return F(sign)(d);
    return d < -a ? (T)-1 : (d > a ? (T)1 : d / a);
}

/* BCE on logits x, pos_weight v per column (PyTorch's formulas):
 * e = (1-t)*x - (1 + (v-1)*t) * logsigmoid(x), logsigmoid(x) = min(x, 0) -
 * log1p(exp(-|x|)), in float64; g = sigmoid(x) - t, or with v:
 * (v*t + 1 - t)*sigmoid(x) - v*t, in T */
static inline double F(bce_logits_term)(const F(elem_ctx) *c, int64_t i)
{
    const double x = (double)c->p[i], t = (double)c->t[i];
    const double ls = (x < 0.0 ? x : 0.0) - log1p(exp(-fabs(x)));
    const double lw = c->vec != NULL ? 1.0 + (c->vec[i % c->width] - 1.0) * t : 1.0;
    return (1.0 - t) * x - lw * ls;
}
static inline T F(bce_logits_grad)(T x, T t, int64_t j, const F(elem_ctx) *c)
{
    const T e = F(fastnn_exp)(-fabs(x));
    const T d = (T)1 + e;
    const T s = x >= (T)0 ? (T)1 / d : e / d;
    if (c->vec == NULL)
        return s - t;
    const T vt = (T)c->vec[j] * t;
    return (vt + (T)1 - t) * s - vt;
}

/* the parameter checks of the rows: PyTorch's (delta > 0, beta >= 0) */
static inline int F(huber_ok)(double a) { return a > 0.0 && isfinite(a); }
static inline int F(smooth_l1_ok)(double a) { return a >= 0.0 && isfinite(a); }
static inline int F(any_ok)(double a) { (void)a; return 1; }

#define PW_NAME F(pw_mse)
#define PW_ACC double
#define PW_CTX F(elem_ctx)
#define PW_ELEM(c, i) F(row_weighted)(c, i, F(mse_term)(c, i))
#include "pairwise_impl.h"
#define PW_NAME F(pw_bce)
#define PW_ACC double
#define PW_CTX F(elem_ctx)
#define PW_ELEM(c, i) F(row_weighted)(c, i, F(bce_term)(c, i))
#include "pairwise_impl.h"
#define PW_NAME F(pw_l1)
#define PW_ACC double
#define PW_CTX F(elem_ctx)
#define PW_ELEM(c, i) F(row_weighted)(c, i, F(l1_term)(c, i))
#include "pairwise_impl.h"
#define PW_NAME F(pw_huber)
#define PW_ACC double
#define PW_CTX F(elem_ctx)
#define PW_ELEM(c, i) F(row_weighted)(c, i, F(huber_term)(c, i))
#include "pairwise_impl.h"
#define PW_NAME F(pw_smooth_l1)
#define PW_ACC double
#define PW_CTX F(elem_ctx)
#define PW_ELEM(c, i) F(row_weighted)(c, i, F(smooth_l1_term)(c, i))
#include "pairwise_impl.h"
#define PW_NAME F(pw_bce_logits)
#define PW_ACC double
#define PW_CTX F(elem_ctx)
#define PW_ELEM(c, i) F(row_weighted)(c, i, F(bce_logits_term)(c, i))
#include "pairwise_impl.h"

/* the trainer's signature (internal.h); CHECK: the row's parameter check */
#define POINTWISE_LOSS(name, K, CHECK)                                                   \
    int F(fastnn_internal_loss_##name)(int64_t rows, int64_t width, const T *pred,       \
                                       const void *targets, const fastnn_loss_args *args, \
                                       int reduction, double *loss, double *total,       \
                                       T *grad, double *work)                            \
    {                                                                                    \
        (void)work;                                                                      \
        const T *target = (const T *)targets;                                            \
        double scale, weight;                                                            \
        if (loss == NULL || !F(CHECK)(args->param[0]))                                   \
            return FASTNN_EINVAL;                                                        \
        const int status = pointwise_scale(rows, width, args->sample_weight, reduction,  \
                                           &scale, &weight);                             \
        if (status != FASTNN_OK)                                                         \
            return status;                                                               \
        if (rows * width > 0 && (pred == NULL || target == NULL))                        \
            return FASTNN_EINVAL;                                                        \
        F(elem_ctx) c = {pred, target, args->sample_weight, args->weight, width,         \
                         args->param[0]};                                                \
        *loss = (0.0 + F(pw_##name)(&c, 0, rows * width)) * scale;                       \
        if (total != NULL)                                                               \
            *total = weight;                                                             \
        if (grad != NULL)                                                                \
            for (int64_t r = 0; r < rows; r++) {                                         \
                const double w = c.sw != NULL ? c.sw[r] : 1.0;                           \
                const T f = (T)((K) * scale * w);                                        \
                const T *pr = pred + r * width, *tr = target + r * width;                \
                T *gr = grad + r * width;                                                \
                for (int64_t j = 0; j < width; j++)                                      \
                    gr[j] = F(name##_grad)(pr[j], tr[j], j, &c) * f;                     \
            }                                                                            \
        return FASTNN_OK;                                                                \
    }

POINTWISE_LOSS(mse, 2.0, any_ok)
POINTWISE_LOSS(bce, 1.0, any_ok)
POINTWISE_LOSS(l1, 1.0, any_ok)
POINTWISE_LOSS(huber, 1.0, huber_ok)
POINTWISE_LOSS(smooth_l1, 1.0, smooth_l1_ok)
POINTWISE_LOSS(bce_logits, 1.0, any_ok)
#undef POINTWISE_LOSS

static const fastnn_loss_args F(no_args) = {{0.0}, NULL, NULL};

int F(fastnn_mse)(int64_t size, const T *pred, const T *target, int reduction,
                  double *loss, T *grad)
{
    return F(fastnn_internal_loss_mse)(1, size, pred, target, &F(no_args), reduction, loss,
                                       NULL, grad, NULL);
}

int F(fastnn_bce)(int64_t size, const T *prob, const T *target, int reduction,
                  double *loss, T *grad)
{
    return F(fastnn_internal_loss_bce)(1, size, prob, target, &F(no_args), reduction, loss,
                                       NULL, grad, NULL);
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
    const T m = F(row_max)(x, c);
    *m_out = m;
    F(sumexp_ctx) v = {x, m};
    return (T)0 + F(pw_sumexp)(&v, 0, c);
}

/* e = exp(x - m) of a whole n x c block into g, each row shifted by its max
 * (stored in m[i]): the shifts row by row, then one exp loop over all n*c
 * values, which vectorizes at full width even for narrow rows (the same
 * values as row by row: exp is elementwise).  The rows' sums are then
 * row_sum(g + i*c, c). */
static inline __attribute__((always_inline)) void F(block_exp)(int64_t n, int64_t c, const T *x,
                                                              T *g, T *m)
{
    for (int64_t i = 0; i < n; i++) {
        const T *xr = x + i * c;
        T *gr = g + i * c;
        const T mi = F(row_max)(xr, c);
        m[i] = mi;
        for (int64_t j = 0; j < c; j++)
            gr[j] = xr[j] - mi;
    }
    for (int64_t k = 0; k < n * c; k++)
        g[k] = F(fastnn_exp)(g[k]);
}

/* cross-entropy with labels, unweighted and unsmoothed; work holds n doubles */
FASTNN_ELEMENTWISE static int F(xent_labels_plain)(int64_t n, int64_t c, const T *logits,
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
            const T mi = m[i], sum_e = F(row_sum)(g, c);
            const int64_t lab = labels[i];
            terms[i] = log((double)sum_e) - ((double)x[lab] - (double)mi);
            /* (p - onehot) * s in one pass (p - 0 is p: the same bits as
               p, then p[lab] - 1, then the scaling) */
            for (int64_t j = 0; j < c; j++)
                g[j] = (g[j] / sum_e - (j == lab ? (T)1 : (T)0)) * s;
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
    const int status = F(xent_labels_plain)(n, c, logits, labels, reduction, loss, grad, work);
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

/* cross-entropy with probabilities, unweighted and unsmoothed; work holds 2 n doubles */
FASTNN_ELEMENTWISE static int F(xent_probs_plain)(int64_t n, int64_t c, const T *logits, const T *probs,
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
        const T sum_e = g != NULL ? F(row_sum)(g, c)
                                  : F(row_sum_exp)(x, c, &mrow[i]);
        log_sum[i] = log((double)sum_e);
        if (g != NULL) {
            /* (softmax * sum_c t_c - t) * scale */
            const T tsum = F(row_sum)(t, c);
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
    const int status = F(xent_probs_plain)(n, c, logits, probs, reduction, loss, grad, work);
    if (work != stack)
        free(work);
    return status;
}


/* ---- cross-entropy with class weights, label smoothing, sample weights ---
 * PyTorch's definitions, as one effective target q per row: with class
 * weights c_k (1 without), smoothing eps over C classes and ec = eps / C,
 *   labels y:        q_k = ec * c_k, plus (1 - eps) * c_y at k = y;
 *   probabilities t: q_k = c_k * ((1 - eps) * t_k + ec);
 * the row's loss l_i = sum_k q_k * (log sum_e - (z_k - max)), its gradient
 * softmax * sum_k q_k - q (in double, rounded to T once), times the row's
 * sample weight w_i.  The mean divides by sum_i w_i c_{y_i} (labels) or
 * sum_i w_i (probabilities) -- PyTorch's denominators, times the sample
 * weights.  work holds 2 n doubles: the rows' weighted losses, then their
 * total weights. */
static int F(xent_general)(int64_t n, int64_t c, const T *logits, const int64_t *labels,
                           const T *probs, const fastnn_loss_args *args, int reduction,
                           double *loss, double *total, T *grad, double *work)
{
    const double eps = args->param[0];
    const double *cw = args->weight, *sw = args->sample_weight;
    if (n < 0 || c < 0 || loss == NULL || !(eps >= 0.0 && eps <= 1.0))
        return FASTNN_EINVAL;
    if (reduction != FASTNN_REDUCTION_MEAN && reduction != FASTNN_REDUCTION_SUM)
        return FASTNN_EINVAL;
    if (n == 0) {
        if (reduction == FASTNN_REDUCTION_MEAN)
            return FASTNN_EINVAL;
        *loss = 0.0;
        if (total != NULL)
            *total = 0.0;
        return FASTNN_OK;
    }
    if (c == 0 || logits == NULL || (labels == NULL && probs == NULL))
        return FASTNN_EINVAL;
    if (labels != NULL)
        for (int64_t i = 0; i < n; i++)
            if (labels[i] < 0 || labels[i] >= c)
                return FASTNN_EINVAL;
    double *terms = work, *omega = work + n;
    for (int64_t i = 0; i < n; i++)
        omega[i] = (sw != NULL ? sw[i] : 1.0) * (labels != NULL && cw != NULL ? cw[labels[i]]
                                                                             : 1.0);
    dvec_ctx oc = {omega};
    const double tot = 0.0 + pw_dvec(&oc, 0, n);
    if (total != NULL)
        *total = tot;
    double scale = 1.0;
    if (reduction == FASTNN_REDUCTION_MEAN) {
        if (!(tot > 0.0))
            return tot == 0.0 ? FASTNN_EZEROWEIGHT : FASTNN_EINVAL;
        scale = 1.0 / tot;
    }
    const double ec = eps / (double)c;
    for (int64_t i = 0; i < n; i++) {
        const T *x = logits + i * c;
        const T *t = probs != NULL ? probs + i * c : NULL;
        T *g = grad != NULL ? grad + i * c : NULL;
        T m, sum_e;
        if (g != NULL) {
            m = F(row_max)(x, c);
            for (int64_t k = 0; k < c; k++)
                g[k] = F(fastnn_exp)(x[k] - m);
            sum_e = F(row_sum)(g, c);
        } else {
            sum_e = F(row_sum_exp)(x, c, &m);
        }
        const double lse = log((double)sum_e);
        const int64_t y = labels != NULL ? labels[i] : -1;
        const double cy = y >= 0 && cw != NULL ? cw[y] : 1.0;
        double l = 0.0, Q = 0.0;
#define XENT_Q(k)                                                                        \
    (t != NULL ? (cw != NULL ? cw[k] : 1.0) * ((1.0 - eps) * (double)t[k] + ec)           \
               : ec * (cw != NULL ? cw[k] : 1.0) + ((k) == y ? (1.0 - eps) * cy : 0.0))
        for (int64_t k = 0; k < c; k++) {
            const double q = XENT_Q(k);
            Q += q;
            l += q * (lse - ((double)x[k] - (double)m));
        }
        const double w = sw != NULL ? sw[i] : 1.0;
        terms[i] = w * l;
        if (g != NULL) {
            const double f = w * scale;
            for (int64_t k = 0; k < c; k++)
                g[k] = (T)(((double)(g[k] / sum_e) * Q - XENT_Q(k)) * f);
        }
#undef XENT_Q
    }
    dvec_ctx v = {terms};
    *loss = (0.0 + pw_dvec(&v, 0, n)) * scale;
    return FASTNN_OK;
}

/* whether the cross-entropy's args ask for nothing beyond the plain kernels */
static inline int F(plain_xent)(const fastnn_loss_args *args)
{
    return args->param[0] == 0.0 && args->weight == NULL && args->sample_weight == NULL;
}

/* ---- the trainer's losses: one per row of FASTNN_LOSSES, one signature -- */

int F(fastnn_internal_loss_xent_labels)(int64_t rows, int64_t width, const T *pred,
                                        const void *targets, const fastnn_loss_args *args,
                                        int reduction, double *loss, double *total, T *grad,
                                        double *work)
{
    if (!F(plain_xent)(args))
        return F(xent_general)(rows, width, pred, (const int64_t *)targets, NULL, args,
                               reduction, loss, total, grad, work);
    if (total != NULL)
        *total = (double)rows;
    return F(xent_labels_plain)(rows, width, pred, (const int64_t *)targets, reduction, loss,
                                grad, work);
}

int F(fastnn_internal_loss_xent_probs)(int64_t rows, int64_t width, const T *pred,
                                       const void *targets, const fastnn_loss_args *args,
                                       int reduction, double *loss, double *total, T *grad,
                                       double *work)
{
    if (!F(plain_xent)(args))
        return F(xent_general)(rows, width, pred, NULL, (const T *)targets, args, reduction,
                               loss, total, grad, work);
    if (total != NULL)
        *total = (double)rows;
    return F(xent_probs_plain)(rows, width, pred, (const T *)targets, reduction, loss, grad,
                               work);
}

/* ---- scikit-learn's losses (fastnn.sklearn) ------------------------------
 * sk_squared_error, sk_logistic and sk_softmax: the losses of scikit-learn's
 * MLPs (sklearn/neural_network/_base.py) and, as their gradient, the output
 * delta its _backprop uses.  Each row's loss w_i l_i is computed in double,
 * each term times w_i as np.average weighs it (so tiny weights round as
 * there), and kept in work (rows doubles); the batch's loss is their sum
 * (NumPy's pairwise order), divided for mean by the total weight W = sum_i
 * w_i (rows without weights) -- never by the width: scikit-learn averages
 * over rows (np.average(..., axis=0)), then takes the mean (squared error)
 * or the sum (log losses) over the outputs.  The
 * gradient is the delta d (out - y, or p - y with the unclipped p) in T,
 * d * T(w_i) with weights (its deltas[last] *= sample_weight), divided by
 * T(W) for mean (its / sw_sum); sum is the same without the division. */

/* the delta of one element: (d * w) / W for mean, d * w for sum */
static inline T F(sk_delta)(T d, const double *sw, int64_t row, T div, int mean)
{
    if (sw != NULL)
        d = d * (T)sw[row];
    return mean ? d / div : d;
}

/* the checks shared by the sk_ rows, and W: pointwise_scale's (mean over no
 * element is FASTNN_EINVAL, a total weight of 0 FASTNN_EZEROWEIGHT; its
 * scale is not used) */
static inline int F(sk_prologue)(int64_t rows, int64_t width, const T *pred,
                                 const void *targets, const fastnn_loss_args *args,
                                 int reduction, double *loss, double *work, double *weight)
{
    double scale;
    if (loss == NULL)
        return FASTNN_EINVAL;
    const int status = pointwise_scale(rows, width, args->sample_weight, reduction, &scale,
                                       weight);
    if (status != FASTNN_OK)
        return status;
    if ((rows * width > 0 && (pred == NULL || targets == NULL)) || (rows > 0 && work == NULL))
        return FASTNN_EINVAL;
    return FASTNN_OK;
}

/* the batch's loss from the rows' (weighted) losses in work */
static inline double F(sk_batch)(const double *work, int64_t rows, double weight, int mean)
{
    dvec_ctx v = {work};
    const double s = 0.0 + pw_dvec(&v, 0, rows);
    return mean ? s / weight : s;
}

/* scikit-learn's squared_loss: l_i = 0.5 * mean over the width of
 * float64(out - y)^2, so the mean loss is 0.5 * the mean over outputs of
 * the (weighted) mean over rows.  Gradient: the delta out - y, NOT divided
 * by the width -- scikit-learn's gradient is not the derivative of the
 * value it reports when there are k > 1 outputs (it is k times it), and
 * not MSELoss's either (2 (out - y) / (rows k)). */
int F(fastnn_internal_loss_sk_squared_error)(int64_t rows, int64_t width, const T *pred,
                                             const void *targets,
                                             const fastnn_loss_args *args, int reduction,
                                             double *loss, double *total, T *grad,
                                             double *work)
{
    const T *target = (const T *)targets;
    const double *sw = args->sample_weight;
    double weight;
    const int status = F(sk_prologue)(rows, width, pred, targets, args, reduction, loss, work,
                                      &weight);
    if (status != FASTNN_OK)
        return status;
    const int mean = reduction == FASTNN_REDUCTION_MEAN;
    const T div = (T)weight;
    for (int64_t r = 0; r < rows; r++) {
        const T *pr = pred + r * width, *tr = target + r * width;
        double l = 0.0;
        for (int64_t j = 0; j < width; j++) {
            const T d = pr[j] - tr[j];
            const double e = (double)d * (double)d;
            l += sw != NULL ? sw[r] * e : e;
        }
        work[r] = l;
        if (grad != NULL) {
            T *gr = grad + r * width;
            for (int64_t j = 0; j < width; j++)
                gr[j] = F(sk_delta)(pr[j] - tr[j], sw, r, div, mean);
        }
    }
    *loss = width > 0 ? 0.5 * (F(sk_batch)(work, rows, weight, mean) / (double)width) : 0.0;
    if (total != NULL)
        *total = weight;
    return FASTNN_OK;
}

/* T's machine epsilon, np.finfo(T).eps: scikit-learn's clip */
#define SK_EPS ((T)(sizeof(T) == sizeof(float) ? (double)FLT_EPSILON : DBL_EPSILON))

/* np.clip(p, eps, 1 - eps), NaN staying NaN */
static inline T F(sk_clip)(T p)
{
    const T lo = SK_EPS, hi = (T)1 - SK_EPS;
    return p < lo ? lo : (p > hi ? hi : p);
}

/* scikit-learn's binary_log_loss on p = expit(z) = 1 / (1 + exp(-z)) in T:
 * l_i = the SUM over the width of -(xlogy(y, pc) + xlogy(1 - y, 1 - pc)),
 * pc = clip(p, eps, 1 - eps) (one logistic output: binary; k: multi-label).
 * Gradient: the delta p - y, with the unclipped p. */
int F(fastnn_internal_loss_sk_logistic)(int64_t rows, int64_t width, const T *pred,
                                        const void *targets, const fastnn_loss_args *args,
                                        int reduction, double *loss, double *total, T *grad,
                                        double *work)
{
    const T *target = (const T *)targets;
    const double *sw = args->sample_weight;
    double weight;
    const int status = F(sk_prologue)(rows, width, pred, targets, args, reduction, loss, work,
                                      &weight);
    if (status != FASTNN_OK)
        return status;
    const int mean = reduction == FASTNN_REDUCTION_MEAN;
    const T div = (T)weight, one = (T)1;
    for (int64_t r = 0; r < rows; r++) {
        const T *zr = pred + r * width, *yr = target + r * width;
        T *gr = grad != NULL ? grad + r * width : NULL;
        double l = 0.0;
        for (int64_t j = 0; j < width; j++) {
            const T p = one / (one + F(fastnn_exp)(-zr[j]));
            const T pc = F(sk_clip)(p), y = yr[j];
            const double e = -(sk_xlogy((double)y, (double)pc) +
                               sk_xlogy((double)(one - y), (double)(one - pc)));
            l += sw != NULL ? sw[r] * e : e;
            if (gr != NULL)
                gr[j] = F(sk_delta)(p - y, sw, r, div, mean);
        }
        work[r] = l;
    }
    *loss = F(sk_batch)(work, rows, weight, mean);
    if (total != NULL)
        *total = weight;
    return FASTNN_OK;
}

/* the rows' softmax deltas into grad and their (weighted) losses into work:
 * exp(z - max) of the whole block at once (block_exp: the same values as row
 * by row, vectorized at full width even for narrow rows), then per row
 * p = e / sum, the delta p - onehot and -log(clip(p_label)) */
FASTNN_ELEMENTWISE static void F(sk_softmax_rows)(int64_t rows, int64_t width, const T *pred,
                                                  const int64_t *labels, const double *sw,
                                                  T div, int mean, T *grad, double *work)
{
    /* the row maxima wait in work (a T is exact as a double); only block_exp
       reads them, before any work[i] is written */
    F(block_exp)(rows, width, pred, grad, (T *)work);
    for (int64_t i = 0; i < rows; i++) {
        T *g = grad + i * width;
        const int64_t lab = labels[i];
        const T sum_e = F(row_sum)(g, width);
        const T p_lab = g[lab] / sum_e;
        for (int64_t k = 0; k < width; k++) {
            const T p = g[k] / sum_e;
            g[k] = F(sk_delta)(k == lab ? p - (T)1 : p, sw, i, div, mean);
        }
        const double l = -log((double)F(sk_clip)(p_lab));
        work[i] = sw != NULL ? sw[i] * l : l;
    }
}

/* scikit-learn's log_loss on its softmax p = exp(z - max) / sum (in T) with
 * one-hot targets (int64 labels): l_i = -log(clip(p_label, eps, 1 - eps))
 * (the other classes are xlogy(0, .) = 0; a row is NaN in all its p or in
 * none).  Gradient: the delta p - onehot. */
int F(fastnn_internal_loss_sk_softmax)(int64_t rows, int64_t width, const T *pred,
                                       const void *targets, const fastnn_loss_args *args,
                                       int reduction, double *loss, double *total, T *grad,
                                       double *work)
{
    const int64_t *labels = (const int64_t *)targets;
    const double *sw = args->sample_weight;
    double weight;
    const int status = F(sk_prologue)(rows, width, pred, targets, args, reduction, loss, work,
                                      &weight);
    if (status != FASTNN_OK)
        return status;
    if (rows > 0 && width == 0)
        return FASTNN_EINVAL;
    for (int64_t i = 0; i < rows; i++)
        if (labels[i] < 0 || labels[i] >= width)
            return FASTNN_EINVAL;
    const int mean = reduction == FASTNN_REDUCTION_MEAN;
    if (grad != NULL) {
        F(sk_softmax_rows)(rows, width, pred, labels, sw, (T)weight, mean, grad, work);
    } else {
        for (int64_t i = 0; i < rows; i++) {
            T m;
            const T sum_e = F(row_sum_exp)(pred + i * width, width, &m);
            const T p_lab = F(fastnn_exp)(pred[i * width + labels[i]] - m) / sum_e;
            const double l = -log((double)F(sk_clip)(p_lab));
            work[i] = sw != NULL ? sw[i] * l : l;
        }
    }
    *loss = F(sk_batch)(work, rows, weight, mean);
    if (total != NULL)
        *total = weight;
    return FASTNN_OK;
}
#undef SK_EPS

/* ---- any row by its code ------------------------------------------------ */
static int F(loss_dispatch)(int code, int64_t rows, int64_t width, const T *pred,
                            const void *targets, const fastnn_loss_args *args, int reduction,
                            double *value, double *total, T *grad, double *work)
{
    switch (code) {
#define LOSS_CASE(ID, name, python_name, labels, params, vector)                          \
    case FASTNN_LOSS_##ID:                                                                \
        return F(fastnn_internal_loss_##name)(rows, width, pred, targets, args, reduction, \
                                              value, total, grad, work);
    FASTNN_LOSSES(LOSS_CASE)
#undef LOSS_CASE
    default: return FASTNN_EINVAL;
    }
}

int F(fastnn_loss)(int code, int64_t rows, int64_t width, const T *pred, const void *targets,
                   const fastnn_loss_args *args, int reduction, double *value, double *total,
                   T *grad)
{
    if (rows < 0 || width < 0 || rows > INT64_MAX / 2 / (int64_t)sizeof(double))
        return FASTNN_EINVAL;
    if (args == NULL)
        args = &F(no_args);
    double stack[2 * LOSS_STACK_ROWS];
    double *work = rows <= LOSS_STACK_ROWS
                       ? stack
                       : (double *)malloc(2 * (size_t)rows * sizeof(double));
    if (work == NULL)
        return FASTNN_ENOMEM;
    const int status = F(loss_dispatch)(code, rows, width, pred, targets, args, reduction,
                                        value, total, grad, work);
    if (work != stack)
        free(work);
    return status;
}
