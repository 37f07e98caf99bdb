/*
 * activations_impl.h -- the templated body of activations.c, included once
 * per dtype with T (float|double) and SFX (f32|f64) defined (see the note in
 * activations.c).  No include guard on purpose.
 */
#if !defined(T) || !defined(SFX)
#error "define T and SFX before including activations_impl.h"
#endif
/* contiguous sum x[0..n) in T, NumPy's order: -0.0 + pairwise(x) */
typedef struct {
    const T *x;
} F(vec_ctx);
#define PW_NAME F(pw_vec)
#define PW_ACC T
#define PW_CTX F(vec_ctx)
#define PW_ELEM(c, i) ((c)->x[i])
#include "pairwise_impl.h"

/* sum of the products x[i]*y[i] (each rounded to T), NumPy's order */
typedef struct {
    const T *x, *y;
} F(dot_ctx);
#define PW_NAME F(pw_dot)
#define PW_ACC T
#define PW_CTX F(dot_ctx)
#define PW_ELEM(c, i) ((T)((c)->x[i] * (c)->y[i]))
#include "pairwise_impl.h"

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

/* ---- the activations: one pair of span functions per row of
 * FASTNN_ACTIVATIONS.  forward: y = f(x) over n elements (y may alias x);
 * backward: d = f'(g) over n elements, reading z (needs_z) or y (d may
 * alias g); a (alpha, rounded to T) is leaky_relu's slope.  An elementwise
 * activation's span may cover many rows; a rowwise one's is one row. */

static inline void F(identity_forward)(const T *x, T *y, int64_t n, T a)
{
    (void)a;
    if (x != y)
        for (int64_t j = 0; j < n; j++)
            y[j] = x[j];
}

static inline void F(identity_backward)(const T *z, const T *y, const T *g, T *d, int64_t n,
                                        T a)
{
    (void)z, (void)y, (void)a;
    if (d != g)
        for (int64_t j = 0; j < n; j++)
            d[j] = g[j];
}

static inline void F(sigmoid_forward)(const T *x, T *y, int64_t n, T a)
{
    (void)a;
    for (int64_t j = 0; j < n; j++)
        y[j] = F(sigmoid)(x[j]);
}

static inline void F(sigmoid_backward)(const T *z, const T *y, const T *g, T *d, int64_t n,
                                       T a)
{
    (void)z, (void)a;
    for (int64_t j = 0; j < n; j++)
        d[j] = g[j] * (y[j] * ((T)1 - y[j]));
}

static inline void F(tanh_forward)(const T *x, T *y, int64_t n, T a)
{
    (void)a;
    for (int64_t j = 0; j < n; j++)
        y[j] = tanh(x[j]);
}

static inline void F(tanh_backward)(const T *z, const T *y, const T *g, T *d, int64_t n, T a)
{
    (void)z, (void)a;
    for (int64_t j = 0; j < n; j++)
        d[j] = g[j] * ((T)1 - y[j] * y[j]);
}

static inline void F(relu_forward)(const T *x, T *y, int64_t n, T a)
{
    (void)a;
    for (int64_t j = 0; j < n; j++)
        y[j] = x[j] <= (T)0 ? (T)0 : x[j];   /* NaN stays NaN */
}

static inline void F(relu_backward)(const T *z, const T *y, const T *g, T *d, int64_t n, T a)
{
    (void)z, (void)a;
    for (int64_t j = 0; j < n; j++) { /* loads first: a branch-free select */
        const T gj = g[j], yj = y[j];
        d[j] = yj > (T)0 ? gj : (T)0;
    }
}

static inline void F(leaky_relu_forward)(const T *x, T *y, int64_t n, T a)
{
    for (int64_t j = 0; j < n; j++)
        y[j] = x[j] > (T)0 ? x[j] : a * x[j];
}

static inline void F(leaky_relu_backward)(const T *z, const T *y, const T *g, T *d, int64_t n,
                                          T a)
{
    (void)y;
    for (int64_t j = 0; j < n; j++) {
        const T gj = g[j], zj = z[j];
        d[j] = zj > (T)0 ? gj : a * gj;
    }
}

static inline void F(silu_forward)(const T *x, T *y, int64_t n, T a)
{
    (void)a;
    for (int64_t j = 0; j < n; j++)
        y[j] = x[j] * F(sigmoid)(x[j]);
}

static inline void F(silu_backward)(const T *z, const T *y, const T *g, T *d, int64_t n, T a)
{
    (void)y, (void)a;
    for (int64_t j = 0; j < n; j++) {
        const T s = F(sigmoid)(z[j]);
        d[j] = g[j] * (s * ((T)1 + z[j] * ((T)1 - s)));
    }
}

static inline void F(softmax_forward)(const T *x, T *y, int64_t n, T a)
{
    (void)a;
    F(softmax_row)(x, y, n);
}

/* y * (g - sum(g * y)): the row sum is taken before d is written */
static inline void F(softmax_backward)(const T *z, const T *y, const T *g, T *d, int64_t n,
                                       T a)
{
    (void)z, (void)a;
    F(dot_ctx) c = {g, y};
    const T s = (T)0 + F(pw_dot)(&c, 0, n);
    for (int64_t j = 0; j < n; j++)
        d[j] = y[j] * (g[j] - s);
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
            F(FASTNN_CAT(name, forward))(xr, yr, cols, a);                     \
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
            F(FASTNN_CAT(name, backward))(z ? z + o : NULL, y ? y + o : NULL, g, d, cols, a); \
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

