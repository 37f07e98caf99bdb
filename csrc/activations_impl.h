/*
 * activations_impl.h -- the templated body of activations.c, included once
 * per dtype with T (float|double) and SFX (f32|f64) defined (see the note in
 * activations.c).  No include guard on purpose.
 */
#if !defined(T) || !defined(SFX)
#error "define T and SFX before including activations_impl.h"
#endif
#include "rows_impl.h"

/* sum of the products x[i]*y[i] (each rounded to T), NumPy's order */
typedef struct {
    const T *x, *y;
} F(dot_ctx);
#define PW_NAME F(pw_dot)
#define PW_ACC T
#define PW_CTX F(dot_ctx)
#define PW_ELEM(c, i) ((T)((c)->x[i] * (c)->y[i]))
#include "pairwise_impl.h"

/* Internal (used by dense.c): NumPy's sum of a contiguous vector. */
T F(fastnn_internal_sum)(const T *x, int64_t n)
{
    return F(row_sum)(x, n);
}

/* the reference's _sigmoid: e = exp(-|x|); x >= 0 ? 1/(1+e) : e/(1+e) */
static inline T F(sigmoid)(T x)
{
    const T e = F(fastnn_exp)(-fabs(x));
    const T d = (T)1 + e;
    return x >= (T)0 ? (T)1 / d : e / d;
}

/* softmax of one row: e = exp(x - max); y = e / sum(e).  y may alias x. */
static inline void F(softmax_row)(const T *x, T *y, int64_t n)
{
    if (n <= 0)
        return;
    const T m = F(row_max)(x, n);
    for (int64_t j = 0; j < n; j++)
        y[j] = F(fastnn_exp)(x[j] - m);
    const T s = F(row_sum)(y, n);
    for (int64_t j = 0; j < n; j++)
        y[j] = y[j] / s;
}

/* ---- the activations: one pair of span functions per row of
 * FASTNN_ACTIVATIONS.  forward: y = f(x) over n elements (y may alias x);
 * backward: d = f'(g) over n elements, reading z (needs_z) or y (d may
 * alias g).  a and b are the activation's two parameters, alpha and beta,
 * rounded to T: a is leaky_relu's slope and elu's alpha, softplus's
 * threshold is a and its beta b; the others read neither.  An elementwise
 * activation's span may cover many rows; a rowwise one's is one row. */

static inline void F(identity_forward)(const T *x, T *y, int64_t n, T a, T b)
{
    (void)a, (void)b;
    if (x != y)
        for (int64_t j = 0; j < n; j++)
            y[j] = x[j];
}

static inline void F(identity_backward)(const T *z, const T *y, const T *g, T *d, int64_t n,
                                        T a, T b)
{
    (void)z, (void)y, (void)a, (void)b;
    if (d != g)
        for (int64_t j = 0; j < n; j++)
            d[j] = g[j];
}

static inline void F(sigmoid_forward)(const T *x, T *y, int64_t n, T a, T b)
{
    (void)a, (void)b;
    for (int64_t j = 0; j < n; j++)
        y[j] = F(sigmoid)(x[j]);
}

static inline void F(sigmoid_backward)(const T *z, const T *y, const T *g, T *d, int64_t n,
                                       T a, T b)
{
    (void)z, (void)a, (void)b;
    for (int64_t j = 0; j < n; j++)
        d[j] = g[j] * (y[j] * ((T)1 - y[j]));
}

static inline void F(tanh_forward)(const T *x, T *y, int64_t n, T a, T b)
{
    (void)a, (void)b;
    for (int64_t j = 0; j < n; j++)
        y[j] = tanh(x[j]);
}

static inline void F(tanh_backward)(const T *z, const T *y, const T *g, T *d, int64_t n, T a, T b)
{
    (void)z, (void)a, (void)b;
    for (int64_t j = 0; j < n; j++)
        d[j] = g[j] * ((T)1 - y[j] * y[j]);
}

static inline void F(relu_forward)(const T *x, T *y, int64_t n, T a, T b)
{
    (void)a, (void)b;
    for (int64_t j = 0; j < n; j++)
        y[j] = x[j] <= (T)0 ? (T)0 : x[j];   /* NaN stays NaN */
}

static inline void F(relu_backward)(const T *z, const T *y, const T *g, T *d, int64_t n, T a, T b)
{
    (void)z, (void)a, (void)b;
    for (int64_t j = 0; j < n; j++) { /* loads first: a branch-free select */
        const T gj = g[j], yj = y[j];
        d[j] = yj > (T)0 ? gj : (T)0;
    }
}

static inline void F(leaky_relu_forward)(const T *x, T *y, int64_t n, T a, T b)
{
    (void)b;
    for (int64_t j = 0; j < n; j++)
        y[j] = x[j] > (T)0 ? x[j] : a * x[j];
}

static inline void F(leaky_relu_backward)(const T *z, const T *y, const T *g, T *d, int64_t n,
                                          T a, T b)
{
    (void)y, (void)b;
    for (int64_t j = 0; j < n; j++) {
        const T gj = g[j], zj = z[j];
        d[j] = zj > (T)0 ? gj : a * gj;
    }
}

static inline void F(silu_forward)(const T *x, T *y, int64_t n, T a, T b)
{
    (void)a, (void)b;
    for (int64_t j = 0; j < n; j++)
        y[j] = x[j] * F(sigmoid)(x[j]);
}

static inline void F(silu_backward)(const T *z, const T *y, const T *g, T *d, int64_t n, T a, T b)
{
    (void)y, (void)a, (void)b;
    for (int64_t j = 0; j < n; j++) {
        const T s = F(sigmoid)(z[j]);
        d[j] = g[j] * (s * ((T)1 + z[j] * ((T)1 - s)));
    }
}

static inline void F(softmax_forward)(const T *x, T *y, int64_t n, T a, T b)
{
    (void)a, (void)b;
    F(softmax_row)(x, y, n);
}

/* y * (g - sum(g * y)): the row sum is taken before d is written */
static inline void F(softmax_backward)(const T *z, const T *y, const T *g, T *d, int64_t n,
                                       T a, T b)
{
    (void)z, (void)a, (void)b;
    F(dot_ctx) c = {g, y};
    const T s = (T)0 + F(pw_dot)(&c, 0, n);
    for (int64_t j = 0; j < n; j++)
        d[j] = y[j] * (g[j] - s);
}

/* PyTorch's formulas (aten/src/ATen/native/cpu/Activation.cpp), operation
 * for operation in T, as the reference writes them.  The constants are
 * PyTorch's, computed as it computes them (in double, then rounded to T):
 * M_SQRT1_2; M_2_SQRTPI * M_SQRT1_2 * 0.5, the normal density's 1/sqrt(2 pi);
 * M_SQRT2 * M_2_SQRTPI * 0.5, the sqrt(2/pi) of the tanh form, and its
 * 0.044715; SELU's alpha and scale. */
#define FASTNN_SQRT1_2 0.70710678118654752440
#define FASTNN_INV_SQRT_2PI (1.12837916709551257390 * 0.70710678118654752440 * 0.5)
#define FASTNN_SQRT_2_PI (1.41421356237309504880 * 1.12837916709551257390 * 0.5)
#define FASTNN_GELU_KAPPA 0.044715
#define FASTNN_SELU_ALPHA 1.6732632423543772848170429916717
#define FASTNN_SELU_SCALE 1.0507009873554804934193349852946

/* gelu (exact): x * 0.5 * (1 + erf(x * sqrt(1/2))), erf from libm */
static inline void F(gelu_forward)(const T *x, T *y, int64_t n, T a, T b)
{
    (void)a, (void)b;
    const T k = (T)FASTNN_SQRT1_2;
    for (int64_t j = 0; j < n; j++)
        y[j] = x[j] * (T)0.5 * ((T)1 + erf(x[j] * k));
}

/* dy * (cdf + z * pdf), cdf = 0.5 * (1 + erf(z sqrt(1/2))),
   pdf = exp(-0.5 z^2) / sqrt(2 pi) */
static inline void F(gelu_backward)(const T *z, const T *y, const T *g, T *d, int64_t n,
                                    T a, T b)
{
    (void)y, (void)a, (void)b;
    const T k = (T)FASTNN_SQRT1_2, kb = (T)FASTNN_INV_SQRT_2PI;
    for (int64_t j = 0; j < n; j++) {
        const T zj = z[j];
        const T cdf = (T)0.5 * ((T)1 + erf(zj * k));
        const T pdf = kb * F(fastnn_exp)((T)-0.5 * (zj * zj));
        d[j] = g[j] * (cdf + zj * pdf);
    }
}

/* gelu, approximate="tanh": 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
static inline void F(gelu_tanh_forward)(const T *x, T *y, int64_t n, T a, T b)
{
    (void)a, (void)b;
    const T kb = (T)FASTNN_SQRT_2_PI, kk = (T)FASTNN_GELU_KAPPA;
    for (int64_t j = 0; j < n; j++) {
        const T xj = x[j];
        const T inner = kb * (xj + kk * (xj * xj * xj));
        y[j] = (T)0.5 * xj * ((T)1 + tanh(inner));
    }
}

/* with t = tanh(inner): dy * (0.5 (1 + t) + 0.5 z (1 - t^2) sqrt(2/pi)
   (1 + 3 * 0.044715 z^2)); where 1 - t^2 is 0 its term is 0, also when z^2
   overflows (PyTorch's formula gives 0 * inf = NaN there, |z| > 1e154 in
   double): the limit, and the same value wherever PyTorch's is a number */
static inline void F(gelu_tanh_backward)(const T *z, const T *y, const T *g, T *d, int64_t n,
                                         T a, T b)
{
    (void)y, (void)a, (void)b;
    const T kb = (T)FASTNN_SQRT_2_PI, kk = (T)FASTNN_GELU_KAPPA;
    for (int64_t j = 0; j < n; j++) {
        const T zj = z[j];
        const T z2 = zj * zj;
        const T inner = kb * (zj + kk * (z2 * zj));
        const T t = tanh(inner);
        const T left = (T)0.5 * zj;
        const T right = (T)1 + t;
        const T left_d = (T)0.5 * right;
        const T s = (T)1 - t * t;
        const T right_d = s == (T)0 ? (T)0 : s * kb * ((T)1 + (T)3 * kk * z2);
        d[j] = g[j] * (left_d + left * right_d);
    }
}

/* elu: x if x > 0 else alpha * expm1(x) */
static inline void F(elu_forward)(const T *x, T *y, int64_t n, T a, T b)
{
    (void)b;
    for (int64_t j = 0; j < n; j++) {
        const T xj = x[j];
        y[j] = xj <= (T)0 ? expm1(xj) * a : xj;
    }
}

/* dy if z > 0 else dy * alpha * exp(z) */
static inline void F(elu_backward)(const T *z, const T *y, const T *g, T *d, int64_t n,
                                   T a, T b)
{
    (void)y, (void)b;
    for (int64_t j = 0; j < n; j++) {
        const T zj = z[j];
        d[j] = zj <= (T)0 ? g[j] * (a * F(fastnn_exp)(zj)) : g[j];
    }
}

/* selu: scale * x if x > 0 else scale * alpha * expm1(x) (PyTorch's
   negcoef = alpha * scale, taken in double, then rounded to T) */
static inline void F(selu_forward)(const T *x, T *y, int64_t n, T a, T b)
{
    (void)a, (void)b;
    const T neg = (T)(FASTNN_SELU_ALPHA * FASTNN_SELU_SCALE), pos = (T)FASTNN_SELU_SCALE;
    for (int64_t j = 0; j < n; j++) {
        const T xj = x[j];
        y[j] = xj <= (T)0 ? expm1(xj) * neg : xj * pos;
    }
}

/* dy * scale if z > 0 else dy * (scale * alpha) * exp(z) */
static inline void F(selu_backward)(const T *z, const T *y, const T *g, T *d, int64_t n,
                                    T a, T b)
{
    (void)y, (void)a, (void)b;
    const T neg = (T)(FASTNN_SELU_ALPHA * FASTNN_SELU_SCALE), pos = (T)FASTNN_SELU_SCALE;
    for (int64_t j = 0; j < n; j++) {
        const T zj = z[j];
        d[j] = zj <= (T)0 ? g[j] * (neg * F(fastnn_exp)(zj)) : g[j] * pos;
    }
}

/* softplus (a: threshold, b: beta): x if beta x > threshold else
   log1p(exp(beta x)) / beta */
static inline void F(softplus_forward)(const T *x, T *y, int64_t n, T a, T b)
{
    for (int64_t j = 0; j < n; j++) {
        const T xj = x[j], bx = xj * b;
        y[j] = bx > a ? xj : log1p(F(fastnn_exp)(bx)) / b;
    }
}

/* dy if beta z > threshold else dy * e / (e + 1), e = exp(beta z) */
static inline void F(softplus_backward)(const T *z, const T *y, const T *g, T *d, int64_t n,
                                        T a, T b)
{
    (void)y;
    for (int64_t j = 0; j < n; j++) {
        const T bz = z[j] * b;
        const T e = F(fastnn_exp)(bz);
        d[j] = bz > a ? g[j] : g[j] * e / (e + (T)1);
    }
}

/* mish: x * tanh(log1p(exp(x))) */
static inline void F(mish_forward)(const T *x, T *y, int64_t n, T a, T b)
{
    (void)a, (void)b;
    for (int64_t j = 0; j < n; j++)
        y[j] = x[j] * tanh(log1p(F(fastnn_exp)(x[j])));
}

/* dy * (t + z * s * (1 - t^2)), t = tanh(log1p(exp(z))), s = 1 / (1 + exp(-z)) */
static inline void F(mish_backward)(const T *z, const T *y, const T *g, T *d, int64_t n,
                                    T a, T b)
{
    (void)y, (void)a, (void)b;
    for (int64_t j = 0; j < n; j++) {
        const T zj = z[j];
        const T s = (T)1 / ((T)1 + F(fastnn_exp)(-zj));
        const T t = tanh(log1p(F(fastnn_exp)(zj)));
        d[j] = g[j] * (t + zj * s * ((T)1 - t * t));
    }
}

/*
 * Internal (used by dense.c): forward activation of a rows x cols block,
 * x with row stride ldx, y with row stride ldy; y may alias x (same ld).
 */
FASTNN_ELEMENTWISE int F(fastnn_internal_act_forward)(int act, double alpha, double beta,
                                   int64_t rows, int64_t cols, const T *x, int64_t ldx,
                                   T *y, int64_t ldy)
{
    const T a = (T)alpha, b = (T)beta;
    if (act < 0 || act >= FASTNN_N_ACT)
        return FASTNN_EINVAL;
    if (fastnn_internal_act_rowwise(act) == 0 && ldx == cols && ldy == cols) {
        cols *= rows;   /* contiguous and elementwise: one long row */
        rows = 1;
    }
    for (int64_t i = 0; i < rows; i++) {
        const T *xr = x + i * ldx;
        T *yr = y + i * ldy;
        switch (act) {
#define ACT_FORWARD(ID, name, needs_z, rowwise)                                \
        case FASTNN_ACT_##ID:                                                  \
            F(FASTNN_CAT(name, forward))(xr, yr, cols, a, b);                     \
            break;
        FASTNN_ACTIVATIONS(ACT_FORWARD)
#undef ACT_FORWARD
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
FASTNN_ELEMENTWISE int F(fastnn_internal_act_backward)(int act, double alpha, double beta,
                                    int64_t rows, int64_t cols, const T *z, const T *y,
                                    const T *dy, T *dz, int64_t ld)
{
    const T a = (T)alpha, b = (T)beta;
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
    if (fastnn_internal_act_rowwise(act) == 0 && ld == cols) {
        cols *= rows;   /* contiguous and elementwise: one long row */
        rows = 1;
    }
    for (int64_t i = 0; i < rows; i++) {
        const int64_t o = i * ld;
        const T *g = dy + o;
        T *d = dz + o;
        switch (act) {
#define ACT_BACKWARD(ID, name, needs_z, rowwise)                               \
        case FASTNN_ACT_##ID:                                                  \
            F(FASTNN_CAT(name, backward))(z ? z + o : NULL, y ? y + o : NULL, g, d, cols, a, b); \
            break;
        FASTNN_ACTIVATIONS(ACT_BACKWARD)
#undef ACT_BACKWARD
        default:
            return FASTNN_EINVAL;
        }
    }
    return FASTNN_OK;
}

/* an activation pass's arguments, for rows split across threads: forward
   reads a (x) and writes out (y); backward reads a (z), b (y), dy, writes out */
typedef struct {
    int act;
    double alpha, beta;
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
    F(fastnn_internal_act_forward)(j->act, j->alpha, j->beta, hi - lo, c, j->a + lo * c, c,
                                   j->out + lo * c, c);
}

static void F(act_backward_range)(const void *ctx, int64_t lo, int64_t hi)
{
    const F(act_job) *j = (const F(act_job) *)ctx;
    const int64_t c = j->cols;
    F(fastnn_internal_act_backward)(j->act, j->alpha, j->beta, hi - lo, c,
                                    j->a ? j->a + lo * c : NULL,
                                    j->b ? j->b + lo * c : NULL, j->dy + lo * c,
                                    j->out + lo * c, c);
}

int F(fastnn_act_forward)(int act, double alpha, double beta, int64_t rows, int64_t cols,
                          const T *x, T *y)
{
    if (act < 0 || act >= FASTNN_N_ACT || rows < 0 || cols < 0)
        return FASTNN_EINVAL;
    if (rows == 0 || cols == 0)
        return FASTNN_OK;
    if (x == NULL || y == NULL)
        return FASTNN_EINVAL;
    /* rows are independent: split them (act was checked, so no call can fail) */
    const F(act_job) job = {act, alpha, beta, cols, x, NULL, NULL, y};
    fastnn_internal_parallel_ranges(F(act_forward_range), &job, rows, rows * cols);
    return FASTNN_OK;
}

int F(fastnn_act_backward)(int act, double alpha, double beta, int64_t rows, int64_t cols,
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
    const F(act_job) job = {act, alpha, beta, cols, z, y, dy, dz};
    fastnn_internal_parallel_ranges(F(act_backward_range), &job, rows, rows * cols);
    return FASTNN_OK;
}

