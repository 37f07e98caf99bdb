/*
 * optim_impl.h -- the templated body of optim.c, included once per dtype
 * with T (float|double), SFX (f32|f64), SQRT and TINY defined (see the note
 * in optim.c).  No include guard on purpose.
 *
 * An optimizer here is its row of FASTNN_OPTIMIZERS (fastnn.h) and three
 * pieces, named after the row:
 *   name_k        its per-step constants, rounded to T;
 *   name_modes    how many variants of its formula it has (at most
 *                 OPT_MODES; each compiles its own loop);
 *   name_prepare  fills the constants from the hyper-parameters and the
 *                 step, picks the mode (the variant, fixed for the whole
 *                 pass, 0 <= mode < name_modes) and checks the state arrays
 *                 it needs (FASTNN_EINVAL otherwise);
 *   name_elem     the update of element i: computes the new parameter and
 *                 state values, writes them when `write`, else returns
 *                 whether any is inf or NaN;
 *   name_states   which state arrays a mode reads and writes, as bits
 *                 (1 << j: state j; e.g. RMSprop's grad_avg without its
 *                 momentum_buffer);
 *   name_safe     whether, for every |param| <= P, |grad| <= G and state
 *                 values within the bounds b, every new value is provably
 *                 finite (0 when it cannot tell), and if so, bounds on
 *                 the values it writes: the trainer's shortcut past the
 *                 dry run (see fastnn_internal_opt_safe).
 * Everything else -- the loops compiled per mode and per instruction set,
 * the split across threads, the dry run (write = 0) and the update
 * (write = 1), the dispatch on the code -- is written once below and
 * expands from the table.
 */
#if !defined(T) || !defined(SFX) || !defined(SQRT) || !defined(TINY) || !defined(UT) || \
    !defined(T_MAX) || !defined(T_EPS)
#error "define T, SFX, SQRT, TINY, UT, T_MAX and T_EPS before including optim_impl.h"
#endif

/* the reference's _flush_subnormal: state entries below the smallest normal
   number become 0 (so a decaying moment does not crawl through subnormals) */
static inline T F(flush)(T x)
{
    return (x < TINY && x > -TINY) ? (T)0 : x;
}

/* x is inf or NaN: x - x is 0 exactly for finite x (branch-free, vectorizes) */
#define NOT_FINITE(x) (((x) - (x)) != (T)0)

/* The bits of |x| as an unsigned integer (UT, T's width): for finite x and
   inf they order as |x| does, and NaN is above them all, so a running
   maximum of them is an integer max, which vectorizes (a float max with
   NaN semantics does not, without -ffast-math).  SIGN_OF: x's sign bit. */
#define SIGN_SHIFT (8 * (int)sizeof(UT) - 1)
static inline UT F(mag_bits)(T x)
{
    UT u;
    memcpy(&u, &x, sizeof u);
    return u & ~((UT)1 << SIGN_SHIFT);
}
static inline UT F(sign_of)(T x)
{
    UT u;
    memcpy(&u, &x, sizeof u);
    return u >> SIGN_SHIFT;
}
/* the largest magnitude as a double; +inf when it is inf or NaN */
static inline double F(mag_value)(UT bits)
{
    T x;
    memcpy(&x, &bits, sizeof x);
    return x <= T_MAX ? (double)x : INFINITY;
}

/* A bound proves finiteness only below a quarter of T's largest value: the
   bounds are exact sums and products of the inputs' maxima, while each
   operation in T may round up by a factor (1 + 2^-24) at most, a handful of
   times; a factor of 4 covers that with room to spare, and a NaN or
   infinite bound never passes. */
#define WITHIN(x) ((x) <= (double)T_MAX / 4.0)

/* The bounds a proof hands on, on what the update writes, are carried from
 * batch to batch, so they must hold as they are: each value the update
 * writes is its exact bound's arithmetic on values within their bounds,
 * rounded a few times in T, each rounding at most a factor (1 + T_EPS / 2)
 * or, among subnormal numbers, by up to half the smallest one; the bounds
 * are widened by (1 + 16 T_EPS) and 4 TINY, which covers that. */
#define NEXT(x) ((x) * (1.0 + 16.0 * (double)T_EPS) + 4.0 * (double)TINY)

/* max |x| over a rows x cols block of row stride ld, as a double; +inf if
   any element is inf or NaN (see internal.h) */
FASTNN_ELEMENTWISE double F(fastnn_internal_max_abs)(const T *x, int64_t rows, int64_t cols,
                                                     int64_t ld)
{
    UT m = 0;
    if (ld == cols) {   /* contiguous rows: one long row */
        cols *= rows;
        rows = 1;
    }
    for (int64_t i = 0; i < rows; i++) {
        const T *r = x + i * ld;
        for (int64_t j = 0; j < cols; j++) {
            const UT b = F(mag_bits)(r[j]);
            m = b > m ? b : m;
        }
    }
    return F(mag_value)(m);
}

/* ---- SGD ----------------------------------------------------------------
 * g = grad + wd*p (if wd != 0);  v = flush(mu*v + g);  step = g + mu*v
 * (nesterov) or v;  (step = g if mu == 0);  p -= lr*step.
 * hyper: lr, momentum, weight_decay, nesterov.  Modes: 0 no momentum (no
 * state), 1 Nesterov, 2 heavy ball.
 */
typedef struct {
    T lr, mu, wd;
    int use_wd;
} F(sgd_k);
enum { F(sgd_modes) = 3 };

static int F(sgd_prepare)(const double *h, int64_t step, T *const *state, F(sgd_k) *k,
                          int *mode)
{
    (void)step;
    k->lr = (T)h[0];
    k->mu = (T)h[1];
    k->wd = (T)h[2];
    k->use_wd = h[2] != 0.0;
    *mode = h[1] == 0.0 ? 0 : h[3] != 0.0 ? 1 : 2;
    return *mode != 0 && state[0] == NULL ? FASTNN_EINVAL : FASTNN_OK;
}

static inline __attribute__((always_inline)) int
F(sgd_elem)(const int write, const int mode, int64_t i, T *param, const T *grad,
            T *const *s, const F(sgd_k) *k)
{
    const T g = k->use_wd ? grad[i] + k->wd * param[i] : grad[i];
    if (mode == 0) {
        const T p = param[i] - k->lr * g;
        if (write)
            param[i] = p;
        return write ? 0 : NOT_FINITE(p);
    }
    const T sum = s[0][i] * k->mu + g;
    const T v = F(flush)(sum);
    const T p = mode == 1 ? param[i] - k->lr * (g + k->mu * v) : param[i] - k->lr * v;
    if (write) {
        s[0][i] = v;
        param[i] = p;
    }
    return write ? 0 : NOT_FINITE(sum) | NOT_FINITE(p);    /* v is finite iff sum is */
}

static inline int F(sgd_states)(int mode)
{
    return mode == 0 ? 0 : 1;   /* bits: the velocity */
}

/* |g| <= G + |wd| P;  |v| <= |mu| |v_old| + |g|;  |p'| <= P + |lr| |step|;
 * next: those bounds, on the values the update writes */
static int F(sgd_safe)(const F(sgd_k) *k, int mode, const fastnn_opt_bounds *b, double G,
                       fastnn_opt_bounds *next)
{
    const double lr = fabs((double)k->lr), mu = fabs((double)k->mu);
    const double g = G + (k->use_wd ? fabs((double)k->wd) * b->param : 0.0);
    double step = g, v = 0.0;
    if (mode != 0) {
        v = mu * b->state[0] + g;
        if (!WITHIN(v))
            return 0;
        step = mode == 1 ? g + mu * v : v;
    }
    if (!(WITHIN(g) && WITHIN(step) && WITHIN(lr * step) && WITHIN(b->param + lr * step)))
        return 0;
    *next = (fastnn_opt_bounds){1, NEXT(b->param + lr * step), {NEXT(v), 0.0}, {mode != 0, 0}};
    return 1;
}

/* ---- Adam and AdamW -----------------------------------------------------
 * Adam: g = grad + wd*p (if wd != 0).  AdamW: p = p * (1 - lr*wd) first (the
 * decoupled decay, its factor computed in double then rounded to T), g = grad.
 * Then m = flush(b1*m + (1-b1)*g);  v = flush(b2*v + (1-b2)*g^2);
 * amsgrad: vm = max(vm, v) (NaN propagating, as torch.maximum), else vm = v;
 * p -= step_size * m / (sqrt(vm)/bc2 + eps), step_size = lr/(1-b1^t) and
 * bc2 = (1-b2^t)^0.5 computed in double, then rounded to T.
 * hyper: lr, beta1, beta2, eps, weight_decay, amsgrad.  Modes: 0 plain, 1
 * amsgrad (states m, v, max v).  adamw_* are adam_* with the decay decoupled.
 */
typedef struct {
    T b1, b2, omb1, omb2, ss, bc, ep, wd, keep;
    int use_wd, decoupled;
} F(adam_k);
enum { F(adam_modes) = 2 };

static int F(adam_setup)(const double *h, int64_t step, T *const *state, F(adam_k) *k,
                         int *mode, int decoupled)
{
    const double lr = h[0], beta1 = h[1], beta2 = h[2], eps = h[3], weight_decay = h[4];
    *mode = h[5] != 0.0;
    if (step < 1 || state[0] == NULL || state[1] == NULL || (*mode && state[2] == NULL))
        return FASTNN_EINVAL;
    const double step_size = lr / (1.0 - pow(beta1, (double)step));
    const double bc2 = pow(1.0 - pow(beta2, (double)step), 0.5);
    k->wd = (T)weight_decay;
    k->b1 = (T)beta1;
    k->b2 = (T)beta2;
    k->omb1 = (T)(1.0 - beta1);
    k->omb2 = (T)(1.0 - beta2);
    k->ss = (T)step_size;
    k->bc = (T)bc2;
    k->ep = (T)eps;
    k->decoupled = decoupled && weight_decay != 0.0;
    k->use_wd = !decoupled && weight_decay != 0.0;
    k->keep = (T)(1.0 - lr * weight_decay);
    return FASTNN_OK;
}

static int F(adam_prepare)(const double *h, int64_t step, T *const *state, F(adam_k) *k,
                           int *mode)
{
    return F(adam_setup)(h, step, state, k, mode, 0);
}

static inline __attribute__((always_inline)) int
F(adam_elem)(const int write, const int mode, int64_t i, T *param, const T *grad,
             T *const *s, const F(adam_k) *k)
{
    /* param read once, and the moments checked before their flush (the
     * same finiteness): so written, the dry run vectorizes too */
    T *m = s[0], *v = s[1];
    const T p0 = param[i];
    const T pi = k->decoupled ? p0 * k->keep : p0;
    const T g = k->use_wd ? grad[i] + k->wd * p0 : grad[i];
    const T m_raw = m[i] * k->b1 + k->omb1 * g, v_raw = v[i] * k->b2 + k->omb2 * (g * g);
    const T mi = F(flush)(m_raw), vi = F(flush)(v_raw);
    T vm = vi;
    if (mode == 1) {
        const T old = s[2][i];
        vm = (old > vi || old != old) ? old : vi;
    }
    const T denom = SQRT(vm) / k->bc + k->ep;
    const T p = pi - k->ss * (mi / denom);
    if (write) {
        m[i] = mi;
        v[i] = vi;
        if (mode == 1)
            s[2][i] = vm;
        param[i] = p;
    }
    return write ? 0
                 : NOT_FINITE(m_raw) | NOT_FINITE(v_raw) | NOT_FINITE(p) |
                       (mode == 1 ? NOT_FINITE(vm) : 0);
}

/* the state arrays a mode reads and writes, as bits (1 << j: state j) */
static inline int F(adam_states)(int mode)
{
    return mode == 1 ? 7 : 3;
}

/* With v >= 0 (no sign bit in the state), b2 >= 0, 1 - b2 >= 0, bc > 0 and
 * eps > 0, the denominator is at least eps (amsgrad's max v is >= v):
 * |p0| <= P, times |keep| for AdamW;  |g| <= G + |wd| P (Adam);
 * |m| <= |b1| M + |1-b1| |g|;  v <= b2 V + (1-b2) g^2 (and v >= 0);
 * max v <= max(VM, v);  |p'| <= |p0| + |ss| |m| / eps;  next: those bounds. */
static int F(adam_safe)(const F(adam_k) *k, int mode, const fastnn_opt_bounds *b, double G,
                        fastnn_opt_bounds *next)
{
    if (b->negative[1] || !(k->b2 >= 0) || !(k->omb2 >= 0) || !(k->bc > 0) || !(k->ep > 0))
        return 0;
    const double p0 = k->decoupled ? fabs((double)k->keep) * b->param : b->param;
    const double g = G + (k->use_wd ? fabs((double)k->wd) * b->param : 0.0);
    const double m = fabs((double)k->b1) * b->state[0] + fabs((double)k->omb1) * g;
    const double v = (double)k->b2 * b->state[1] + (double)k->omb2 * (g * g);
    const double vm = mode == 1 ? fmax(b->state[2], v) : v;
    const double ratio = m / (double)k->ep, step = fabs((double)k->ss) * ratio;
    if (!(WITHIN(p0) && WITHIN(g) && WITHIN(g * g) && WITHIN(m) && WITHIN(v) && WITHIN(vm) &&
          WITHIN(sqrt(vm) / (double)k->bc + (double)k->ep) && WITHIN(ratio) &&
          WITHIN(step) && WITHIN(p0 + step)))
        return 0;
    *next = (fastnn_opt_bounds){1, NEXT(p0 + step),
                                {NEXT(m), NEXT(v), mode == 1 ? NEXT(vm) : 0.0},
                                {1, 0, mode == 1 && b->negative[2]}};
    return 1;
}

typedef F(adam_k) F(adamw_k);
enum { F(adamw_modes) = F(adam_modes) };

static int F(adamw_prepare)(const double *h, int64_t step, T *const *state, F(adamw_k) *k,
                            int *mode)
{
    return F(adam_setup)(h, step, state, k, mode, 1);
}

static inline __attribute__((always_inline)) int
F(adamw_elem)(const int write, const int mode, int64_t i, T *param, const T *grad,
              T *const *s, const F(adamw_k) *k)
{
    return F(adam_elem)(write, mode, i, param, grad, s, k);
}

static inline int F(adamw_states)(int mode)
{
    return F(adam_states)(mode);
}

static int F(adamw_safe)(const F(adamw_k) *k, int mode, const fastnn_opt_bounds *b, double G,
                         fastnn_opt_bounds *next)
{
    return F(adam_safe)(k, mode, b, G, next);
}

/* A bound on |g| / (sqrt(s) + eps) where s = flush(x + c*g^2) was computed in
 * T from x >= 0 and c > 0 (RMSprop's square_avg, c = 1 - alpha; Adagrad's
 * sum, c = 1), tighter than |g| / eps: when s is not flushed, s >= c g^2 up
 * to rounding (adding x >= 0 rounds monotonically), so the ratio is at most
 * 1/sqrt(c) -- or, if c g^2 is below TINY / 2 and s is not, below
 * 1/sqrt(2c); when s is flushed to 0, c g^2 < 2 TINY, so the ratio is at most
 * sqrt(2 TINY / c) / eps.  Widened by (1 + 16 T_EPS) for the roundings of
 * the square, the product, the square root and the quotient.  inf when c
 * is not > 0. */
static double F(root_ratio_cap)(double c, double eps)
{
    if (!(c > 0))
        return INFINITY;
    const double kept = 1.0 / sqrt(c), flushed = sqrt(2.0 * (double)TINY / c) / eps;
    return (kept > flushed ? kept : flushed) * (1.0 + 16.0 * (double)T_EPS);
}

/* ---- RMSprop ------------------------------------------------------------
 * g = grad + wd*p (if wd != 0);  sq = flush(a*sq + (1-a)*g^2);
 * centered: ga = flush(lerp(ga, g, 1-a)) (torch's lerp: ga + w*(g - ga) for
 * |w| < 0.5, else g - (g - ga)*(1 - w), w = 1-a rounded to T),
 * avg = sqrt(sq - ga^2) + eps; else avg = sqrt(sq) + eps;
 * momentum: buf = flush(mu*buf + g/avg), p -= lr*buf; else p -= lr*(g/avg).
 * hyper: lr, alpha, eps, weight_decay, momentum, centered.  States:
 * square_avg, momentum_buffer, grad_avg.  Modes: bit 0 momentum, bit 1
 * centered.
 */
typedef struct {
    T lr, a, oma, ep, wd, mu, w, omw;
    int use_wd, small;
} F(rmsprop_k);
enum { F(rmsprop_modes) = 4 };

static int F(rmsprop_prepare)(const double *h, int64_t step, T *const *state, F(rmsprop_k) *k,
                              int *mode)
{
    (void)step;
    const double lr = h[0], alpha = h[1], eps = h[2], weight_decay = h[3], momentum = h[4];
    *mode = (momentum != 0.0) | (h[5] != 0.0) << 1;
    if (state[0] == NULL || ((*mode & 1) && state[1] == NULL) ||
        ((*mode & 2) && state[2] == NULL))
        return FASTNN_EINVAL;
    k->lr = (T)lr;
    k->a = (T)alpha;
    k->oma = (T)(1.0 - alpha);
    k->ep = (T)eps;
    k->wd = (T)weight_decay;
    k->use_wd = weight_decay != 0.0;
    k->mu = (T)momentum;
    k->w = (T)(1.0 - alpha);
    k->omw = (T)1 - k->w;
    k->small = fabs((double)k->w) < 0.5;
    return FASTNN_OK;
}

static inline __attribute__((always_inline)) int
F(rmsprop_elem)(const int write, const int mode, int64_t i, T *param, const T *grad,
                T *const *s, const F(rmsprop_k) *k)
{
    const T pi = param[i];
    const T g = k->use_wd ? grad[i] + k->wd * pi : grad[i];
    const T sq_raw = s[0][i] * k->a + k->oma * (g * g);
    const T sq = F(flush)(sq_raw);
    T ga_raw = 0, ga = 0, avg;
    if (mode & 2) {
        const T old = s[2][i];
        ga_raw = k->small ? old + k->w * (g - old) : g - (g - old) * k->omw;
        ga = F(flush)(ga_raw);
        avg = SQRT(sq - ga * ga) + k->ep;
    } else {
        avg = SQRT(sq) + k->ep;
    }
    T buf_raw = 0, buf = 0, p;
    if (mode & 1) {
        buf_raw = s[1][i] * k->mu + g / avg;
        buf = F(flush)(buf_raw);
        p = pi - k->lr * buf;
    } else {
        p = pi - k->lr * (g / avg);
    }
    if (write) {
        s[0][i] = sq;
        if (mode & 1)
            s[1][i] = buf;
        if (mode & 2)
            s[2][i] = ga;
        param[i] = p;
    }
    return write ? 0
                 : NOT_FINITE(sq_raw) | NOT_FINITE(p) | ((mode & 1) ? NOT_FINITE(buf_raw) : 0) |
                       ((mode & 2) ? NOT_FINITE(ga_raw) : 0);
}

static inline int F(rmsprop_states)(int mode)
{
    return 1 | ((mode & 1) ? 2 : 0) | ((mode & 2) ? 4 : 0);
}

/* Not centered, with sq >= 0 (no sign bit), a >= 0, 1 - a >= 0 and eps > 0,
 * avg is at least eps:  |g| <= G + |wd| P;  sq <= a S + (1-a) g^2;
 * |g/avg| <= min(|g| / eps, root_ratio_cap(1-a));  |buf| <= |mu| B + |g/avg|;
 * |p'| <= P + |lr| |step|.
 * Centered: no proof -- sq - ga^2, exactly >= 0 for the running averages,
 * may round below 0 (a NaN square root), which no bound on magnitudes rules
 * out; every such update takes the dry run. */
static int F(rmsprop_safe)(const F(rmsprop_k) *k, int mode, const fastnn_opt_bounds *b,
                           double G, fastnn_opt_bounds *next)
{
    if ((mode & 2) || b->negative[0] || !(k->a >= 0) || !(k->oma >= 0) || !(k->ep > 0))
        return 0;
    const double g = G + (k->use_wd ? fabs((double)k->wd) * b->param : 0.0);
    const double sq = (double)k->a * b->state[0] + (double)k->oma * (g * g);
    const double ratio = fmin(g / (double)k->ep,
                              F(root_ratio_cap)((double)k->oma, (double)k->ep));
    const double buf = (mode & 1) ? fabs((double)k->mu) * b->state[1] + ratio : 0.0;
    const double step = fabs((double)k->lr) * ((mode & 1) ? buf : ratio);
    if (!(WITHIN(g) && WITHIN(g * g) && WITHIN(sq) && WITHIN(sqrt(sq) + (double)k->ep) &&
          WITHIN(ratio) && WITHIN(buf) && WITHIN(step) && WITHIN(b->param + step)))
        return 0;
    *next = (fastnn_opt_bounds){1, NEXT(b->param + step), {NEXT(sq), NEXT(buf), 0.0},
                                {0, (mode & 1) != 0, 0}};
    return 1;
}

/* ---- Adagrad ------------------------------------------------------------
 * g = grad + wd*p (if wd != 0);  sum = flush(sum + g^2);
 * p -= clr * g / (sqrt(sum) + eps), clr = lr / (1 + (t-1)*lr_decay) computed
 * in double, then rounded to T.  hyper: lr, lr_decay, weight_decay, eps.
 * State: sum (made with initial_accumulator_value).  One mode.
 */
typedef struct {
    T clr, ep, wd;
    int use_wd;
} F(adagrad_k);
enum { F(adagrad_modes) = 1 };

static int F(adagrad_prepare)(const double *h, int64_t step, T *const *state, F(adagrad_k) *k,
                              int *mode)
{
    const double lr = h[0], lr_decay = h[1], weight_decay = h[2], eps = h[3];
    if (step < 1 || state[0] == NULL)
        return FASTNN_EINVAL;
    k->clr = (T)(lr / (1.0 + (double)(step - 1) * lr_decay));
    k->ep = (T)eps;
    k->wd = (T)weight_decay;
    k->use_wd = weight_decay != 0.0;
    *mode = 0;
    return FASTNN_OK;
}

static inline __attribute__((always_inline)) int
F(adagrad_elem)(const int write, const int mode, int64_t i, T *param, const T *grad,
                T *const *s, const F(adagrad_k) *k)
{
    (void)mode;
    const T pi = param[i];
    const T g = k->use_wd ? grad[i] + k->wd * pi : grad[i];
    const T sum_raw = s[0][i] + g * g;
    const T sum = F(flush)(sum_raw);
    const T p = pi - k->clr * (g / (SQRT(sum) + k->ep));
    if (write) {
        s[0][i] = sum;
        param[i] = p;
    }
    return write ? 0 : NOT_FINITE(sum_raw) | NOT_FINITE(p);
}

static inline int F(adagrad_states)(int mode)
{
    (void)mode;
    return 1;
}

/* With sum >= 0 (no sign bit) and eps > 0 the denominator is at least eps:
 * |g| <= G + |wd| P;  sum <= S + g^2;
 * |p'| <= P + |clr| min(|g| / eps, root_ratio_cap(1)). */
static int F(adagrad_safe)(const F(adagrad_k) *k, int mode, const fastnn_opt_bounds *b,
                           double G, fastnn_opt_bounds *next)
{
    (void)mode;
    if (b->negative[0] || !(k->ep > 0))
        return 0;
    const double g = G + (k->use_wd ? fabs((double)k->wd) * b->param : 0.0);
    const double sum = b->state[0] + g * g;
    const double ratio = fmin(g / (double)k->ep, F(root_ratio_cap)(1.0, (double)k->ep));
    const double step = fabs((double)k->clr) * ratio;
    if (!(WITHIN(g) && WITHIN(g * g) && WITHIN(sum) && WITHIN(sqrt(sum) + (double)k->ep) &&
          WITHIN(ratio) && WITHIN(step) && WITHIN(b->param + step)))
        return 0;
    *next = (fastnn_opt_bounds){1, NEXT(b->param + step), {NEXT(sum), 0.0, 0.0}, {0, 0, 0}};
    return 1;
}

/* ---- scikit-learn's SGD ------------------------------------------------
 * sklearn.neural_network's SGDOptimizer, in its own form (not PyTorch's):
 * v = mu*v - lr*g;  update = mu*v - lr*g (nesterov, with the new v) or v;
 * p += update.  No weight decay (scikit-learn's L2 penalty is in the
 * gradient), no subnormal flush (scikit-learn has none).  hyper: lr,
 * momentum, nesterov.  State: the velocity, always (also for mu == 0, as
 * scikit-learn keeps it).  Modes: 0 heavy ball, 1 Nesterov.
 */
typedef struct {
    T lr, mu;
} F(sk_sgd_k);
enum { F(sk_sgd_modes) = 2 };

static int F(sk_sgd_prepare)(const double *h, int64_t step, T *const *state, F(sk_sgd_k) *k,
                             int *mode)
{
    (void)step;
    k->lr = (T)h[0];
    k->mu = (T)h[1];
    *mode = h[2] != 0.0;
    return state[0] == NULL ? FASTNN_EINVAL : FASTNN_OK;
}

static inline __attribute__((always_inline)) int
F(sk_sgd_elem)(const int write, const int mode, int64_t i, T *param, const T *grad,
               T *const *s, const F(sk_sgd_k) *k)
{
    const T g = grad[i];
    const T v = k->mu * s[0][i] - k->lr * g;
    const T u = mode == 1 ? k->mu * v - k->lr * g : v;
    const T p = param[i] + u;
    if (write) {
        s[0][i] = v;
        param[i] = p;
    }
    return write ? 0 : NOT_FINITE(v) | NOT_FINITE(p);
}

static inline int F(sk_sgd_states)(int mode)
{
    (void)mode;
    return 1;   /* bits: the velocity */
}

/* |v| <= |mu| V + |lr| G;  |update| <= |mu| |v| + |lr| G (nesterov) or |v|;
 * |p'| <= P + |update|;  next: those bounds (v of either sign) */
static int F(sk_sgd_safe)(const F(sk_sgd_k) *k, int mode, const fastnn_opt_bounds *b,
                          double G, fastnn_opt_bounds *next)
{
    const double lr = fabs((double)k->lr), mu = fabs((double)k->mu);
    const double lg = lr * G, v = mu * b->state[0] + lg;
    const double u = mode == 1 ? mu * v + lg : v;
    if (!(WITHIN(lg) && WITHIN(mu * b->state[0]) && WITHIN(v) && WITHIN(u) &&
          WITHIN(b->param + u)))
        return 0;
    *next = (fastnn_opt_bounds){1, NEXT(b->param + u), {NEXT(v), 0.0, 0.0}, {1, 0, 0}};
    return 1;
}

/* ---- scikit-learn's Adam -----------------------------------------------
 * sklearn.neural_network's AdamOptimizer, step t counted from 1:
 * m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;
 * lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t) computed in double (as scikit-learn
 * does in Python floats), then rounded to T;  p += (-lr_t * m) / (sqrt(v) + eps)
 * -- eps added to the uncorrected sqrt(v), unlike PyTorch's Adam.  No weight
 * decay, no subnormal flush.  hyper: lr, beta1, beta2, eps.  States: m, v.
 */
typedef struct {
    T b1, b2, omb1, omb2, nlr, ep;
} F(sk_adam_k);
enum { F(sk_adam_modes) = 1 };

static int F(sk_adam_prepare)(const double *h, int64_t step, T *const *state, F(sk_adam_k) *k,
                              int *mode)
{
    const double lr = h[0], beta1 = h[1], beta2 = h[2], eps = h[3];
    *mode = 0;
    if (step < 1 || state[0] == NULL || state[1] == NULL)
        return FASTNN_EINVAL;
    const double lr_t = lr * sqrt(1.0 - pow(beta2, (double)step)) / (1.0 - pow(beta1, (double)step));
    k->b1 = (T)beta1;
    k->b2 = (T)beta2;
    k->omb1 = (T)(1.0 - beta1);
    k->omb2 = (T)(1.0 - beta2);
    k->nlr = (T)(-lr_t);
    k->ep = (T)eps;
    return FASTNN_OK;
}

static inline __attribute__((always_inline)) int
F(sk_adam_elem)(const int write, const int mode, int64_t i, T *param, const T *grad,
                T *const *s, const F(sk_adam_k) *k)
{
    (void)mode;
    const T g = grad[i];
    const T m = k->b1 * s[0][i] + k->omb1 * g;
    const T v = k->b2 * s[1][i] + k->omb2 * (g * g);
    const T p = param[i] + (k->nlr * m) / (SQRT(v) + k->ep);
    if (write) {
        s[0][i] = m;
        s[1][i] = v;
        param[i] = p;
    }
    return write ? 0 : NOT_FINITE(m) | NOT_FINITE(v) | NOT_FINITE(p);
}

static inline int F(sk_adam_states)(int mode)
{
    (void)mode;
    return 3;   /* bits: m, v */
}

/* With v >= 0 (no sign bit in the state), b2 >= 0, 1 - b2 >= 0 and eps > 0
 * the denominator is at least eps:  |m| <= |b1| M + |1-b1| G;
 * v <= b2 V + (1-b2) G^2 (and v >= 0);  |lr_t m| <= |lr_t| |m|;
 * |p'| <= P + |lr_t| |m| / eps;  next: those bounds.  Nothing is flushed, so
 * m and lr_t m may be subnormal, where a rounding errs by up to TINY / 2
 * absolutely, an error the division by a tiny eps magnifies: |m| and
 * |lr_t m| are widened by 3 TINY and TINY before it. */
static int F(sk_adam_safe)(const F(sk_adam_k) *k, int mode, const fastnn_opt_bounds *b,
                           double G, fastnn_opt_bounds *next)
{
    (void)mode;
    if (b->negative[1] || !(k->b2 >= 0) || !(k->omb2 >= 0) || !(k->ep > 0))
        return 0;
    const double m = fabs((double)k->b1) * b->state[0] + fabs((double)k->omb1) * G;
    const double v = (double)k->b2 * b->state[1] + (double)k->omb2 * (G * G);
    const double num = fabs((double)k->nlr) * (m + 3.0 * (double)TINY) + (double)TINY;
    const double step = num / (double)k->ep;
    if (!(WITHIN(G * G) && WITHIN(m) && WITHIN(v) && WITHIN(sqrt(v) + (double)k->ep) &&
          WITHIN(num) && WITHIN(step) && WITHIN(b->param + step)))
        return 0;
    *next = (fastnn_opt_bounds){1, NEXT(b->param + step), {NEXT(m), NEXT(v), 0.0}, {1, 0, 0}};
    return 1;
}

/* ---- the shared machinery ----------------------------------------------- */

/* what a tracking update wrote to one array (the largest magnitudes of the
 * parameter and of each state in use, the states' sign bits), as bounds */
static void F(bounds_of)(const UT *mags, const UT *signs, int used, fastnn_opt_bounds *b)
{
    b->known = 1;
    b->param = F(mag_value)(mags[0]);
    for (int q = 0; q < FASTNN_OPT_MAX_STATE; q++) {
        const int on = used >> q & 1;
        b->state[q] = on ? F(mag_value)(mags[1 + q]) : 0.0;
        b->negative[q] = on && signs[q] != 0;
    }
}

/* one pass of an update over [lo, hi), split across threads: bad is NULL for
 * the update, else the dry run's flag, set by any range that finds a
 * non-finite value (a relaxed store: the flag is read after the pass); with
 * track, the update's ranges merge the magnitudes of what they wrote into
 * mags (the parameter's, then each state's) and the states' sign bits into
 * signs */
typedef struct {
    T *param;
    const T *grad;
    T *state[FASTNN_OPT_MAX_STATE];
    int mode;
    atomic_int *bad;
    int track;          /* the update merges its magnitudes (bounds wanted) */
    _Atomic UT mags[1 + FASTNN_OPT_MAX_STATE];
    _Atomic UT signs[FASTNN_OPT_MAX_STATE];
    union {
#define OPT_K_MEMBER(ID, name, n_state, n_hyper, root, hypers) F(FASTNN_CAT(name, k)) name;
        FASTNN_OPTIMIZERS(OPT_K_MEMBER)
#undef OPT_K_MEMBER
    } k;
} F(opt_job);

static void F(atomic_max_bits)(_Atomic UT *a, UT x)
{
    UT seen = atomic_load_explicit(a, memory_order_relaxed);
    while (x > seen &&
           !atomic_compare_exchange_weak_explicit(a, &seen, x, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

/* the most modes an optimizer may have */
#define OPT_MODES 4

/* The passes over a span: FASTNN_OPT_DRY, _WRITE and _WRITE_TRACK (internal.h). */

/* For each optimizer: its loop over a span (inlined with constant pass and
 * mode, so each is a plain loop the compiler vectorizes), the passes of a
 * span as instruction-set clones, and the thread range. */
/* the cases of a pass's OPT_MODES modes (the static assert below keeps them 4) */
#define OPT_MODE_CASES(CASE, name, pass) \
    CASE(name, pass, 0) CASE(name, pass, 1) CASE(name, pass, 2) CASE(name, pass, 3)
#define OPT_CASE(name, pass, mode)                                                     \
    case (pass) * OPT_MODES + (mode):                                                  \
        if ((mode) < F(FASTNN_CAT(name, modes)))                                       \
            return F(FASTNN_CAT(name, loop))(pass, mode, n, param, grad, state, k,     \
                                             mags, signs);                             \
        return FASTNN_EINVAL;
/* the serial update's arrays below this size run scalar loops */
#define OPT_SERIAL_SCALAR_MAX 16
#define OPT_SERIAL_CASE(name, pass, mode)                                              \
    case (pass) * OPT_MODES + (mode):                                                  \
        if ((mode) < F(FASTNN_CAT(name, modes)))                                       \
            bad |= F(FASTNN_CAT(name, loop))(pass, mode, a->sizes[r], (T *)a->params[r], \
                                             (const T *)a->grads[r], s, &j->k.name,    \
                                             mags, signs);                             \
        else                                                                           \
            return FASTNN_EINVAL;                                                      \
        break;
#define OPT_PASSES(ID, name, n_state, n_hyper, root, hypers)                            \
    static inline __attribute__((always_inline)) int F(FASTNN_CAT(name, loop))(         \
        const int pass, const int mode, int64_t n, T *param, const T *grad,           \
        T *const *state, const F(FASTNN_CAT(name, k)) *kp, UT *mags, UT *signs)       \
    {                                                                                 \
        const F(FASTNN_CAT(name, k)) k = *kp;                                         \
        const int write = pass != FASTNN_OPT_DRY;                                     \
        const int track = pass == FASTNN_OPT_WRITE_TRACK;                             \
        const int used = F(FASTNN_CAT(name, states))(mode);                           \
        T *s[FASTNN_OPT_MAX_STATE];                                                   \
        UT m[1 + FASTNN_OPT_MAX_STATE] = {0}, sg[FASTNN_OPT_MAX_STATE] = {0};          \
        for (int j = 0; j < FASTNN_OPT_MAX_STATE; j++)                                \
            s[j] = state[j];                                                          \
        int bad = 0;                                                                  \
        for (int64_t i = 0; i < n; i++) {                                             \
            bad |= F(FASTNN_CAT(name, elem))(write, mode, i, param, grad, s, &k);     \
            if (track) {                                                              \
                const UT pb = F(mag_bits)(param[i]);                                  \
                m[0] = pb > m[0] ? pb : m[0];                                         \
                for (int j = 0; j < FASTNN_OPT_MAX_STATE; j++) {                      \
                    if (!(used >> j & 1))                                             \
                        continue;                                                     \
                    const UT sb = F(mag_bits)(s[j][i]);                               \
                    m[1 + j] = sb > m[1 + j] ? sb : m[1 + j];                         \
                    sg[j] |= F(sign_of)(s[j][i]);                                     \
                }                                                                     \
            }                                                                         \
        }                                                                             \
        if (track) {                                                                  \
            for (int j = 0; j < 1 + FASTNN_OPT_MAX_STATE; j++)                        \
                mags[j] = m[j];                                                       \
            for (int j = 0; j < FASTNN_OPT_MAX_STATE; j++)                            \
                signs[j] = sg[j];                                                     \
        }                                                                             \
        return bad;                                                                   \
    }                                                                                 \
    FASTNN_ELEMENTWISE static int F(FASTNN_CAT(name, span))(                          \
        int pass, int mode, int64_t n, T *param, const T *grad, T *const *state,      \
        const F(FASTNN_CAT(name, k)) *k, UT *mags, UT *signs)                         \
    {                                                                                 \
        _Static_assert(F(FASTNN_CAT(name, modes)) >= 1 &&                             \
                       F(FASTNN_CAT(name, modes)) <= OPT_MODES && OPT_MODES == 4,     \
                       #name ": one case per mode below");                            \
        /* (a case past the optimizer's modes is never taken: compiled out) */        \
        switch (pass * OPT_MODES + mode) {                                            \
        OPT_MODE_CASES(OPT_CASE, name, FASTNN_OPT_DRY)                                \
        OPT_MODE_CASES(OPT_CASE, name, FASTNN_OPT_WRITE)                              \
        OPT_MODE_CASES(OPT_CASE, name, FASTNN_OPT_WRITE_TRACK)                        \
        default: return FASTNN_EINVAL; /* not a mode: counts as bad */               \
        }                                                                             \
    }                                                                                 \
    static void F(FASTNN_CAT(name, range))(const void *ctx, int64_t lo, int64_t hi)   \
    {                                                                                 \
        F(opt_job) *j = (F(opt_job) *)ctx;                                            \
        T *s[FASTNN_OPT_MAX_STATE];                                                   \
        UT mags[1 + FASTNN_OPT_MAX_STATE], signs[FASTNN_OPT_MAX_STATE]; /* track: set */ \
        for (int q = 0; q < FASTNN_OPT_MAX_STATE; q++)                                \
            s[q] = j->state[q] ? j->state[q] + lo : NULL;                             \
        const int pass = j->bad != NULL ? FASTNN_OPT_DRY                              \
                         : j->track     ? FASTNN_OPT_WRITE_TRACK                      \
                                        : FASTNN_OPT_WRITE;                           \
        if (F(FASTNN_CAT(name, span))(pass, j->mode, hi - lo,                         \
                                      j->param + lo, j->grad + lo, s, &j->k.name,     \
                                      mags, signs) &&                                 \
            j->bad != NULL)                                                           \
            atomic_store_explicit(j->bad, 1, memory_order_relaxed);                   \
        if (j->track) {                                                               \
            for (int q = 0; q < 1 + FASTNN_OPT_MAX_STATE; q++)                        \
                F(atomic_max_bits)(&j->mags[q], mags[q]);                             \
            for (int q = 0; q < FASTNN_OPT_MAX_STATE; q++)                            \
                atomic_fetch_or_explicit(&j->signs[q], signs[q], memory_order_relaxed); \
        }                                                                             \
    }                                                                                 \
    /* arrays of a few values in scalar loops (a vector loop's set-up costs    \
       more there), the others by the span's vector loops */                   \
    __attribute__((optimize("no-tree-vectorize"))) static int                         \
    F(FASTNN_CAT(name, serial))(const F(opt_job) *j, const fastnn_opt_arrays *a,      \
                                int used, int dry, fastnn_opt_bounds *bounds)         \
    {                                                                                 \
        for (int write = !dry; write <= 1; write++) {                                 \
            const int pass = !write  ? FASTNN_OPT_DRY                                 \
                             : bounds ? FASTNN_OPT_WRITE_TRACK                        \
                                      : FASTNN_OPT_WRITE;                             \
            int bad = 0;                                                              \
            for (int64_t r = 0; r < a->count; r++) {                                  \
                T *s[FASTNN_OPT_MAX_STATE];                                           \
                UT mags[1 + FASTNN_OPT_MAX_STATE], signs[FASTNN_OPT_MAX_STATE];       \
                for (int q = 0; q < FASTNN_OPT_MAX_STATE; q++)                        \
                    s[q] = (used >> q & 1) ? (T *)a->states[r * FASTNN_OPT_MAX_STATE + q] \
                                           : NULL;                                    \
                if (a->sizes[r] >= OPT_SERIAL_SCALAR_MAX) {                           \
                    bad |= F(FASTNN_CAT(name, span))(pass, j->mode, a->sizes[r],      \
                                                     (T *)a->params[r],               \
                                                     (const T *)a->grads[r], s,       \
                                                     &j->k.name, mags, signs);        \
                } else {                                                              \
                    switch (pass * OPT_MODES + j->mode) {                             \
                    OPT_MODE_CASES(OPT_SERIAL_CASE, name, FASTNN_OPT_DRY)             \
                    OPT_MODE_CASES(OPT_SERIAL_CASE, name, FASTNN_OPT_WRITE)           \
                    OPT_MODE_CASES(OPT_SERIAL_CASE, name, FASTNN_OPT_WRITE_TRACK)     \
                    default: return FASTNN_EINVAL;                                    \
                    }                                                                 \
                }                                                                     \
                if (pass == FASTNN_OPT_WRITE_TRACK)                                   \
                    F(bounds_of)(mags, signs, used, &bounds[r]);                      \
            }                                                                         \
            if (bad)                                                                  \
                return FASTNN_EDIVERGED;                                              \
        }                                                                             \
        return FASTNN_OK;                                                             \
    }                                                                                 \
    static int F(FASTNN_CAT(name, safe_of))(const F(opt_job) *j,                      \
                                            const fastnn_opt_bounds *b, double G,     \
                                            fastnn_opt_bounds *next)                  \
    {                                                                                 \
        return F(FASTNN_CAT(name, safe))(&j->k.name, j->mode, b, G, next);            \
    }                                                                                 \
    static int F(FASTNN_CAT(name, used_of))(const F(opt_job) *j)                      \
    {                                                                                 \
        return F(FASTNN_CAT(name, states))(j->mode);                                  \
    }                                                                                 \
    static int F(FASTNN_CAT(name, segment))(const F(opt_job) *j, int pass, int64_t n,  \
                                            T *param, const T *grad, T *const *state, \
                                            UT *mags, UT *signs)                      \
    {                                                                                 \
        return F(FASTNN_CAT(name, span))(pass, j->mode, n, param, grad, state,        \
                                         &j->k.name, mags, signs);                    \
    }
FASTNN_OPTIMIZERS(OPT_PASSES)
#undef OPT_PASSES
#undef OPT_SERIAL_CASE
#undef OPT_SERIAL_SCALAR_MAX
#undef OPT_CASE
#undef OPT_MODE_CASES

/* the job of one parameter's update: its constants prepared and its mode
 * picked (FASTNN_EINVAL for an unknown optimizer or a missing state), with
 * the optimizer's range, bound and state count */
static int F(opt_job_init)(F(opt_job) *job, int opt, T *param, const T *grad,
                           T *const *state, int64_t step, const double *hyper,
                           fastnn_range_fn *range,
                           int (**safe)(const F(opt_job) *, const fastnn_opt_bounds *, double,
                                       fastnn_opt_bounds *),
                           int (**used)(const F(opt_job) *))
{
    job->param = param;     /* field by field: the union of constants is not zeroed */
    job->grad = grad;
    job->mode = 0;
    job->bad = NULL;
    job->track = 0;
    for (int q = 0; q < FASTNN_OPT_MAX_STATE; q++) {
        job->state[q] = NULL;
        atomic_init(&job->signs[q], 0);
    }
    for (int q = 0; q < 1 + FASTNN_OPT_MAX_STATE; q++)
        atomic_init(&job->mags[q], 0);
    int status;
    switch (opt) {
#define OPT_DISPATCH(ID, name, n_state, n_hyper, root, hypers)                         \
    case FASTNN_OPT_##ID:                                                              \
        for (int q = 0; q < (n_state); q++)                                            \
            job->state[q] = state[q];                                                  \
        status = F(FASTNN_CAT(name, prepare))(hyper, step, job->state, &job->k.name,   \
                                              &job->mode);                             \
        *range = F(FASTNN_CAT(name, range));                                           \
        *safe = F(FASTNN_CAT(name, safe_of));                                          \
        *used = F(FASTNN_CAT(name, used_of));                                          \
        if (job->mode < 0 || job->mode >= F(FASTNN_CAT(name, modes)))                  \
            return FASTNN_EINVAL;                                                      \
        break;
    FASTNN_OPTIMIZERS(OPT_DISPATCH)
#undef OPT_DISPATCH
    default:
        return FASTNN_EINVAL;
    }
    return status;
}

/* array i's state arrays, as the job wants them (NULL where the bits of
 * `used` are not set); FASTNN_EINVAL when one the optimizer needs is missing */
static int F(opt_job_arrays)(F(opt_job) *job, const fastnn_opt_arrays *a, int64_t i,
                             int used)
{
    job->param = (T *)a->params[i];
    job->grad = (const T *)a->grads[i];
    for (int q = 0; q < FASTNN_OPT_MAX_STATE; q++) {
        const int on = used >> q & 1;
        job->state[q] = on ? (T *)a->states[i * FASTNN_OPT_MAX_STATE + q] : NULL;
        if (on && job->state[q] == NULL)
            return FASTNN_EINVAL;
    }
    return FASTNN_OK;
}

/* how many state arrays the bits of `used` name */
static inline int F(n_states)(int used)
{
    int n = 0;
    for (int q = 0; q < FASTNN_OPT_MAX_STATE; q++)
        n += used >> q & 1;
    return n;
}

/* the job of a set of arrays: the constants prepared once (the step and the
 * hyper-parameters are the same for all), every array's states checked */
static int F(opt_job_all)(F(opt_job) *job, int opt, const fastnn_opt_arrays *a, int64_t step,
                          const double *hyper, fastnn_range_fn *range,
                          int (**safe)(const F(opt_job) *, const fastnn_opt_bounds *, double,
                                       fastnn_opt_bounds *),
                          int *used_bits)
{
    if (a->count < 1)
        return FASTNN_EINVAL;
    int (*used)(const F(opt_job) *);
    T *first[FASTNN_OPT_MAX_STATE];
    for (int q = 0; q < FASTNN_OPT_MAX_STATE; q++)
        first[q] = (T *)a->states[q];
    const int status = F(opt_job_init)(job, opt, NULL, NULL, first, step, hyper, range, safe,
                                       &used);
    if (status != FASTNN_OK)
        return status;
    *used_bits = used(job);
    for (int64_t i = 0; i < a->count; i++)
        if (F(opt_job_arrays)(job, a, i, *used_bits) != FASTNN_OK)
            return FASTNN_EINVAL;
    return FASTNN_OK;
}

/* the magnitudes a tracking update merges, back to nothing */
static void F(job_reset)(F(opt_job) *job)
{
    for (int q = 0; q < 1 + FASTNN_OPT_MAX_STATE; q++)
        atomic_store_explicit(&job->mags[q], 0, memory_order_relaxed);
    for (int q = 0; q < FASTNN_OPT_MAX_STATE; q++)
        atomic_store_explicit(&job->signs[q], 0, memory_order_relaxed);
}

/* what a tracking update wrote, as bounds */
static void F(job_bounds)(F(opt_job) *job, int used, fastnn_opt_bounds *b)
{
    UT mags[1 + FASTNN_OPT_MAX_STATE], signs[FASTNN_OPT_MAX_STATE];
    for (int q = 0; q < 1 + FASTNN_OPT_MAX_STATE; q++)
        mags[q] = atomic_load(&job->mags[q]);
    for (int q = 0; q < FASTNN_OPT_MAX_STATE; q++)
        signs[q] = atomic_load(&job->signs[q]);
    F(bounds_of)(mags, signs, used, b);
}

/* write = 0: the dry run (see internal.h).  Arguments checked by the caller. */
int F(fastnn_internal_opt_update)(int opt, int write, const fastnn_opt_arrays *a,
                                  int64_t step, const double *hyper,
                                  fastnn_opt_bounds *bounds)
{
    atomic_int bad;
    atomic_init(&bad, 0);
    F(opt_job) job;
    fastnn_range_fn range;
    int (*safe)(const F(opt_job) *, const fastnn_opt_bounds *, double, fastnn_opt_bounds *);
    int used;
    const int status = F(opt_job_all)(&job, opt, a, step, hyper, &range, &safe, &used);
    if (status != FASTNN_OK)
        return status;
    job.bad = write ? NULL : &bad;
    job.track = write && bounds != NULL;
    /* work: the elements read and written (param, grad and each state read,
       param and each state written by the update) */
    const int n_used = F(n_states)(used);
    const int per = write ? 2 + 2 * n_used : 2 + n_used;
    for (int64_t i = 0; i < a->count; i++) {
        const int64_t size = a->sizes[i];
        F(opt_job_arrays)(&job, a, i, used);  /* checked above */
        if (job.track)
            F(job_reset)(&job);
        if (size > 0)
            fastnn_internal_parallel_ranges(range, &job, size, size * per);
        if (job.track)
            F(job_bounds)(&job, used, &bounds[i]);
    }
    return atomic_load(&bad) ? FASTNN_EDIVERGED : FASTNN_OK;
}

/* the dry run (with dry), then the update, serially (see internal.h) */
int F(fastnn_internal_opt_update_serial)(int opt, const fastnn_opt_arrays *a, int64_t step,
                                         const double *hyper, int dry,
                                         fastnn_opt_bounds *bounds)
{
    F(opt_job) job;
    fastnn_range_fn range;
    int (*safe)(const F(opt_job) *, const fastnn_opt_bounds *, double, fastnn_opt_bounds *);
    int used;   /* the bits of the state arrays in use */
    const int status = F(opt_job_all)(&job, opt, a, step, hyper, &range, &safe, &used);
    if (status != FASTNN_OK)
        return status;
    switch (opt) {
#define OPT_SERIAL(ID, name, n_state, n_hyper, root, hypers)                           \
    case FASTNN_OPT_##ID:                                                              \
        return F(FASTNN_CAT(name, serial))(&job, a, used, dry, bounds);
    FASTNN_OPTIMIZERS(OPT_SERIAL)
#undef OPT_SERIAL
    default:
        return FASTNN_EINVAL;
    }
}

/* ---- an update applied piece by piece (see internal.h) ---------------- */

/* what a tracking pass wrote to one array, merged across pieces and threads */
typedef struct {
    _Atomic UT mags[1 + FASTNN_OPT_MAX_STATE];
    _Atomic UT signs[FASTNN_OPT_MAX_STATE];
} F(opt_track);

typedef struct {
    F(opt_job) job;     /* the constants and the mode (its arrays unused) */
    const fastnn_opt_arrays *a;
    int pass, used;
    int (*segment)(const F(opt_job) *, int, int64_t, T *, const T *, T *const *, UT *, UT *);
    atomic_int bad;     /* the dry run met a value that is not finite */
    F(opt_track) track[]; /* per array */
} F(opt_plan);

size_t F(fastnn_internal_opt_plan_bytes)(int64_t count)
{
    return sizeof(F(opt_plan)) + (size_t)count * sizeof(F(opt_track));
}

int F(fastnn_internal_opt_plan_prepare)(void *plan, int opt, int pass,
                                        const fastnn_opt_arrays *a, int64_t step,
                                        const double *hyper)
{
    F(opt_plan) *p = (F(opt_plan) *)plan;
    fastnn_range_fn range;
    int (*safe)(const F(opt_job) *, const fastnn_opt_bounds *, double, fastnn_opt_bounds *);
    if (pass != FASTNN_OPT_DRY && pass != FASTNN_OPT_WRITE && pass != FASTNN_OPT_WRITE_TRACK)
        return FASTNN_EINVAL;
    const int status = F(opt_job_all)(&p->job, opt, a, step, hyper, &range, &safe, &p->used);
    if (status != FASTNN_OK)
        return status;
    switch (opt) {
#define OPT_SEGMENT(ID, name, n_state, n_hyper, root, hypers)                          \
    case FASTNN_OPT_##ID:                                                              \
        p->segment = F(FASTNN_CAT(name, segment));                                     \
        break;
    FASTNN_OPTIMIZERS(OPT_SEGMENT)
#undef OPT_SEGMENT
    default:
        return FASTNN_EINVAL;   /* (opt_job_all took none other) */
    }
    p->a = a;
    p->pass = pass;
    atomic_init(&p->bad, 0);
    for (int64_t i = 0; i < a->count; i++) {
        for (int q = 0; q < 1 + FASTNN_OPT_MAX_STATE; q++)
            atomic_init(&p->track[i].mags[q], 0);
        for (int q = 0; q < FASTNN_OPT_MAX_STATE; q++)
            atomic_init(&p->track[i].signs[q], 0);
    }
    return FASTNN_OK;
}

void F(fastnn_internal_opt_plan_apply)(void *plan, int64_t i, int64_t off, int64_t n,
                                       const T *grad)
{
    F(opt_plan) *p = (F(opt_plan) *)plan;
    const fastnn_opt_arrays *a = p->a;
    T *s[FASTNN_OPT_MAX_STATE];
    UT mags[1 + FASTNN_OPT_MAX_STATE], signs[FASTNN_OPT_MAX_STATE]; /* track: set */
    for (int q = 0; q < FASTNN_OPT_MAX_STATE; q++)
        s[q] = (p->used >> q & 1) ? (T *)a->states[i * FASTNN_OPT_MAX_STATE + q] + off : NULL;
    if (p->segment(&p->job, p->pass, n, (T *)a->params[i] + off, grad, s, mags, signs) &&
        p->pass == FASTNN_OPT_DRY)
        atomic_store_explicit(&p->bad, 1, memory_order_relaxed);
    if (p->pass == FASTNN_OPT_WRITE_TRACK) {
        for (int q = 0; q < 1 + FASTNN_OPT_MAX_STATE; q++)
            F(atomic_max_bits)(&p->track[i].mags[q], mags[q]);
        for (int q = 0; q < FASTNN_OPT_MAX_STATE; q++)
            atomic_fetch_or_explicit(&p->track[i].signs[q], signs[q], memory_order_relaxed);
    }
}

int F(fastnn_internal_opt_plan_finish)(void *plan, fastnn_opt_bounds *bounds)
{
    F(opt_plan) *p = (F(opt_plan) *)plan;
    if (p->pass == FASTNN_OPT_WRITE_TRACK)
        for (int64_t i = 0; i < p->a->count; i++) {
            UT mags[1 + FASTNN_OPT_MAX_STATE], signs[FASTNN_OPT_MAX_STATE];
            for (int q = 0; q < 1 + FASTNN_OPT_MAX_STATE; q++)
                mags[q] = atomic_load(&p->track[i].mags[q]);
            for (int q = 0; q < FASTNN_OPT_MAX_STATE; q++)
                signs[q] = atomic_load(&p->track[i].signs[q]);
            F(bounds_of)(mags, signs, p->used, &bounds[i]);
        }
    return atomic_load(&p->bad) ? FASTNN_EDIVERGED : FASTNN_OK;
}

/* ---- bounds measured on the arrays as they are (see internal.h) -------- */

typedef struct {
    const T *x;
    _Atomic UT mag, sign;   /* the largest magnitude's bits; any sign bit */
} F(measure_job);

FASTNN_ELEMENTWISE static void F(measure_range)(const void *ctx, int64_t lo, int64_t hi)
{
    F(measure_job) *j = (F(measure_job) *)ctx;
    UT m = 0, sg = 0;
    for (int64_t i = lo; i < hi; i++) {
        const UT b = F(mag_bits)(j->x[i]);
        m = b > m ? b : m;
        sg |= F(sign_of)(j->x[i]);
    }
    F(atomic_max_bits)(&j->mag, m);
    atomic_fetch_or_explicit(&j->sign, sg, memory_order_relaxed);
}

static void F(measure)(const T *x, int64_t n, UT *mag, UT *sign)
{
    F(measure_job) job = {x};
    atomic_init(&job.mag, 0);
    atomic_init(&job.sign, 0);
    if (n > 0)
        fastnn_internal_parallel_ranges(F(measure_range), &job, n, n);
    *mag = atomic_load(&job.mag);
    *sign = atomic_load(&job.sign);
}

void F(fastnn_internal_opt_measure)(const fastnn_opt_arrays *a, fastnn_opt_bounds *bounds)
{
    for (int64_t i = 0; i < a->count; i++) {
        UT mags[1 + FASTNN_OPT_MAX_STATE] = {0}, signs[FASTNN_OPT_MAX_STATE] = {0}, unused;
        int present = 0;
        F(measure)((const T *)a->params[i], a->sizes[i], &mags[0], &unused);
        for (int q = 0; q < FASTNN_OPT_MAX_STATE; q++) {
            const T *s = (const T *)a->states[i * FASTNN_OPT_MAX_STATE + q];
            if (s == NULL)
                continue;
            present |= 1 << q;
            F(measure)(s, a->sizes[i], &mags[1 + q], &signs[q]);
        }
        F(bounds_of)(mags, signs, present, &bounds[i]);
    }
}

/* whether every update is provably finite (see internal.h) */
int F(fastnn_internal_opt_safe)(int opt, const fastnn_opt_arrays *a, int64_t step,
                                const double *hyper, const fastnn_opt_bounds *bounds,
                                const double *grad_max, fastnn_opt_bounds *next)
{
    F(opt_job) job;
    fastnn_range_fn range;
    int (*safe)(const F(opt_job) *, const fastnn_opt_bounds *, double, fastnn_opt_bounds *);
    int used;
    if (F(opt_job_all)(&job, opt, a, step, hyper, &range, &safe, &used) != FASTNN_OK)
        return 0;
    for (int64_t i = 0; i < a->count; i++)
        if (!bounds[i].known || !safe(&job, &bounds[i], grad_max[i], &next[i]))
            return 0;
    return 1;
}

/* the trainer's proof on given arrays (see fastnn.h) */
int F(fastnn_optimizer_update_proof)(int opt, int64_t size, const T *param, const T *grad,
                                     T *const *state, const double *hyper, int64_t step,
                                     double *next)
{
    if (opt < 0 || opt >= FASTNN_N_OPT || size < 0 || step < 1 || param == NULL ||
        grad == NULL || hyper == NULL || state == NULL)
        return FASTNN_EINVAL;
    F(opt_job) job;
    fastnn_range_fn range;
    int (*safe)(const F(opt_job) *, const fastnn_opt_bounds *, double, fastnn_opt_bounds *);
    int (*used)(const F(opt_job) *);
    const int status = F(opt_job_init)(&job, opt, NULL, NULL, state, step, hyper, &range,
                                       &safe, &used);
    if (status != FASTNN_OK)
        return status;
    fastnn_opt_bounds b = {1, F(fastnn_internal_max_abs)(param, 1, size, size), {0}, {0}};
    for (int q = 0; q < FASTNN_OPT_MAX_STATE; q++) {
        if (!(used(&job) >> q & 1))
            continue;
        UT sign = 0;
        for (int64_t i = 0; i < size; i++)
            sign |= F(sign_of)(state[q][i]);
        b.state[q] = F(fastnn_internal_max_abs)(state[q], 1, size, size);
        b.negative[q] = sign != 0;
    }
    fastnn_opt_bounds after;
    const int proved = safe(&job, &b, F(fastnn_internal_max_abs)(grad, 1, size, size), &after);
    if (proved && next != NULL) {
        next[0] = after.param;
        for (int q = 0; q < FASTNN_OPT_MAX_STATE; q++) {
            next[1 + q] = after.state[q];
            next[1 + FASTNN_OPT_MAX_STATE + q] = after.negative[q];
        }
    }
    return proved;
}

/* the public kernel: its arguments checked, then one update (see fastnn.h) */
int F(fastnn_optimizer_update)(int opt, int64_t size, T *param, const T *grad,
                               T *const *state, const double *hyper, int64_t step)
{
    if (opt < 0 || opt >= FASTNN_N_OPT || size < 0 || step < 1)
        return FASTNN_EINVAL;
    if (size == 0)
        return FASTNN_OK;
    if (param == NULL || grad == NULL || hyper == NULL || state == NULL)
        return FASTNN_EINVAL;
    const int64_t sizes[1] = {size};
    void *params[1] = {param};
    const void *grads[1] = {grad};
    void *states[FASTNN_OPT_MAX_STATE];
    for (int q = 0; q < FASTNN_OPT_MAX_STATE; q++)
        states[q] = state[q];
    const fastnn_opt_arrays a = {1, sizes, params, grads, states};
    return F(fastnn_internal_opt_update)(opt, 1, &a, step, hyper, NULL);
}

/* ---- gradient clipping (see fastnn.h) ------------------------------------ */

/* sum of x^2 over n elements, in double, by 8 interleaved partial sums
 * combined in a fixed order: the same bits for any thread count */
static double F(sum_squares)(const T *x, int64_t n)
{
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            const double v = (double)x[i + j];
            acc[j] += v * v;
        }
    for (int j = 0; i < n; i++, j++) {
        const double v = (double)x[i];
        acc[j] += v * v;
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

typedef struct {
    T *x;
    T c;        /* scale: x *= c; or clamp: x = min(max(x, -c), c) */
} F(clip_job);

FASTNN_ELEMENTWISE static void F(clip_scale_range)(const void *ctx, int64_t lo, int64_t hi)
{
    const F(clip_job) *j = (const F(clip_job) *)ctx;
    T *x = j->x;
    const T c = j->c;
    for (int64_t i = lo; i < hi; i++)
        x[i] = x[i] * c;
}

FASTNN_ELEMENTWISE void F(fastnn_internal_clamp)(T *g, int64_t n, T v)
{
    for (int64_t i = 0; i < n; i++) {
        const T x = g[i];
        g[i] = x < -v ? -v : x > v ? v : x;     /* NaN fails both: kept */
    }
}

static void F(clip_clamp_range)(const void *ctx, int64_t lo, int64_t hi)
{
    const F(clip_job) *j = (const F(clip_job) *)ctx;
    F(fastnn_internal_clamp)(j->x + lo, hi - lo, j->c);
}

static int F(clip_check)(int64_t count, const int64_t *sizes, T *const *grads, double limit)
{
    if (count < 0 || (count > 0 && (sizes == NULL || grads == NULL)) || !(limit >= 0.0))
        return FASTNN_EINVAL;
    for (int64_t i = 0; i < count; i++)
        if (sizes[i] < 0 || (sizes[i] > 0 && grads[i] == NULL))
            return FASTNN_EINVAL;
    return FASTNN_OK;
}

int F(fastnn_clip_grad_norm)(int64_t count, const int64_t *sizes, T *const *grads,
                             double max_norm, double *total)
{
    if (total == NULL || F(clip_check)(count, sizes, grads, max_norm) != FASTNN_OK)
        return FASTNN_EINVAL;
    double sum = 0.0;
    for (int64_t i = 0; i < count; i++)
        if (sizes[i] > 0)
            sum += F(sum_squares)(grads[i], sizes[i]);
    *total = sqrt(sum);
    const double c = max_norm / (*total + 1e-6);
    if (c >= 1.0)
        return FASTNN_OK;       /* torch multiplies by min(c, 1): by 1, a no-op */
    for (int64_t i = 0; i < count; i++) {
        const F(clip_job) job = {grads[i], (T)c};
        if (sizes[i] > 0)
            fastnn_internal_parallel_ranges(F(clip_scale_range), &job, sizes[i], 2 * sizes[i]);
    }
    return FASTNN_OK;
}

int F(fastnn_clip_grad_value)(int64_t count, const int64_t *sizes, T *const *grads,
                              double clip_value)
{
    if (F(clip_check)(count, sizes, grads, clip_value) != FASTNN_OK)
        return FASTNN_EINVAL;
    for (int64_t i = 0; i < count; i++) {
        const F(clip_job) job = {grads[i], (T)clip_value};
        if (sizes[i] > 0)
            fastnn_internal_parallel_ranges(F(clip_clamp_range), &job, sizes[i], 2 * sizes[i]);
    }
    return FASTNN_OK;
}

/* ---- scikit-learn's L2 penalty (see fastnn.h) --------------------------- */

/* dw += c w (contracted to no FMA: -std=c11 keeps -ffp-contract=off) */
static inline T F(l2_term)(T dw, T c, T w)
{
    return dw + c * w;
}

/* dw += c w over n elements, and the sum of w^2 in double by F(sum_squares)'s
 * 8 interleaved partial sums (the same bits), in one pass */
static double F(l2_array)(const T *w, T *dw, int64_t n, T c)
{
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            const T v = w[i + j];
            dw[i + j] = F(l2_term)(dw[i + j], c, v);
            acc[j] += (double)v * (double)v;
        }
    for (int j = 0; i < n; i++, j++) {
        const T v = w[i];
        dw[i] = F(l2_term)(dw[i], c, v);
        acc[j] += (double)v * (double)v;
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

FASTNN_ELEMENTWISE void F(fastnn_internal_l2_add)(T *dw, const T *w, int64_t n, T c)
{
    for (int64_t i = 0; i < n; i++)
        dw[i] = F(l2_term)(dw[i], c, w[i]);
}

double F(fastnn_internal_l2_loss)(int64_t count, const int64_t *sizes, const T *const *W,
                                  double alpha, double total)
{
    double sum = 0.0;
    for (int64_t i = 0; i < count; i++)
        if (sizes[i] > 0)
            sum += F(sum_squares)(W[i], sizes[i]);
    return 0.5 * alpha * sum / total;
}

int F(fastnn_l2_penalty)(int64_t count, const int64_t *sizes, const T *const *W,
                         T *const *dW, double alpha, double total, double *penalty)
{
    if (penalty == NULL || count < 0 || (count > 0 && (sizes == NULL || W == NULL ||
                                                       dW == NULL)) ||
        !(alpha >= 0.0) || !isfinite(alpha))
        return FASTNN_EINVAL;
    for (int64_t i = 0; i < count; i++)
        if (sizes[i] < 0 || (sizes[i] > 0 && (W[i] == NULL || dW[i] == NULL)))
            return FASTNN_EINVAL;
    if (!(total > 0.0))
        return FASTNN_EZEROWEIGHT;
    const T c = (T)(alpha / total);
    double sum = 0.0;
    for (int64_t i = 0; i < count; i++)
        if (sizes[i] > 0)
            sum += F(l2_array)(W[i], dW[i], sizes[i], c);
    *penalty = 0.5 * alpha * sum / total;
    return FASTNN_OK;
}

#undef OPT_MODES
#undef NOT_FINITE
#undef SIGN_SHIFT
#undef WITHIN
#undef NEXT
