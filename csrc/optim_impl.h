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
 *   name_states   how many state arrays a mode reads and writes;
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
 * rounded a few times in T, each rounding at most a factor (1 + T_EPS / 2);
 * the bounds are widened by (1 + 16 T_EPS), which covers that. */
#define NEXT(x) ((x) * (1.0 + 16.0 * (double)T_EPS))

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
    return mode == 0 ? 0 : 1;
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

/* ---- Adam ---------------------------------------------------------------
 * g = grad + wd*p (if wd != 0);  m = flush(b1*m + (1-b1)*g);
 * v = flush(b2*v + (1-b2)*g^2);
 * p -= step_size * m / (sqrt(v)/bc2 + eps), step_size = lr/(1-b1^t) and
 * bc2 = (1-b2^t)^0.5 computed in double, then rounded to T.
 * hyper: lr, beta1, beta2, eps, weight_decay.  One mode.
 */
typedef struct {
    T b1, b2, omb1, omb2, ss, bc, ep, wd;
    int use_wd;
} F(adam_k);
enum { F(adam_modes) = 1 };

static int F(adam_prepare)(const double *h, int64_t step, T *const *state, F(adam_k) *k,
                           int *mode)
{
    const double lr = h[0], beta1 = h[1], beta2 = h[2], eps = h[3], weight_decay = h[4];
    if (step < 1 || state[0] == NULL || state[1] == NULL)
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
    k->use_wd = weight_decay != 0.0;
    *mode = 0;
    return FASTNN_OK;
}

static inline __attribute__((always_inline)) int
F(adam_elem)(const int write, const int mode, int64_t i, T *param, const T *grad,
             T *const *s, const F(adam_k) *k)
{
    (void)mode;
    /* param read once, and the moments checked before their flush (the
     * same finiteness): so written, the dry run vectorizes too */
    T *m = s[0], *v = s[1];
    const T pi = param[i];
    const T g = k->use_wd ? grad[i] + k->wd * pi : grad[i];
    const T m_raw = m[i] * k->b1 + k->omb1 * g, v_raw = v[i] * k->b2 + k->omb2 * (g * g);
    const T mi = F(flush)(m_raw), vi = F(flush)(v_raw);
    const T denom = SQRT(vi) / k->bc + k->ep;
    const T p = pi - k->ss * (mi / denom);
    if (write) {
        m[i] = mi;
        v[i] = vi;
        param[i] = p;
    }
    return write ? 0 : NOT_FINITE(m_raw) | NOT_FINITE(v_raw) | NOT_FINITE(p);
}

static inline int F(adam_states)(int mode)
{
    (void)mode;
    return 2;
}

/* With v >= 0 (no sign bit in the state), b2 >= 0, 1 - b2 >= 0, bc > 0 and
 * eps > 0, the denominator is at least eps:  |g| <= G + |wd| P;
 * |m| <= |b1| M + |1-b1| |g|;  v <= b2 V + (1-b2) g^2 (and v >= 0);
 * |p'| <= P + |ss| |m| / eps;  next: those bounds. */
static int F(adam_safe)(const F(adam_k) *k, int mode, const fastnn_opt_bounds *b, double G,
                        fastnn_opt_bounds *next)
{
    (void)mode;
    if (b->negative[1] || !(k->b2 >= 0) || !(k->omb2 >= 0) || !(k->bc > 0) || !(k->ep > 0))
        return 0;
    const double g = G + (k->use_wd ? fabs((double)k->wd) * b->param : 0.0);
    const double m = fabs((double)k->b1) * b->state[0] + fabs((double)k->omb1) * g;
    const double v = (double)k->b2 * b->state[1] + (double)k->omb2 * (g * g);
    const double ratio = m / (double)k->ep, step = fabs((double)k->ss) * ratio;
    if (!(WITHIN(g) && WITHIN(g * g) && WITHIN(m) && WITHIN(v) &&
          WITHIN(sqrt(v) / (double)k->bc + (double)k->ep) && WITHIN(ratio) &&
          WITHIN(step) && WITHIN(b->param + step)))
        return 0;
    *next = (fastnn_opt_bounds){1, NEXT(b->param + step), {NEXT(m), NEXT(v)}, {1, 0}};
    return 1;
}

/* ---- the shared machinery ----------------------------------------------- */

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
#define OPT_K_MEMBER(ID, name, n_state, n_hyper, hypers) F(FASTNN_CAT(name, k)) name;
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
#define OPT_MODES 3

/* The passes over a span: the dry run, the update, and the update that
 * also keeps the largest magnitude it writes per array (an integer max). */
#define OPT_DRY 0
#define OPT_WRITE 1
#define OPT_WRITE_TRACK 2

/* For each optimizer: its loop over a span (inlined with constant pass and
 * mode, so each is a plain loop the compiler vectorizes), the passes of a
 * span as instruction-set clones, and the thread range. */
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
                                             NULL, NULL);                              \
        else                                                                           \
            return FASTNN_EINVAL;                                                      \
        break;
#define OPT_PASSES(ID, name, n_state, n_hyper, hypers)                                 \
    static inline __attribute__((always_inline)) int F(FASTNN_CAT(name, loop))(         \
        const int pass, const int mode, int64_t n, T *param, const T *grad,           \
        T *const *state, const F(FASTNN_CAT(name, k)) *kp, UT *mags, UT *signs)       \
    {                                                                                 \
        const F(FASTNN_CAT(name, k)) k = *kp;                                         \
        const int write = pass != OPT_DRY, track = pass == OPT_WRITE_TRACK;           \
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
                for (int j = 0; j < used; j++) {                                      \
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
                       F(FASTNN_CAT(name, modes)) <= OPT_MODES && OPT_MODES == 3,     \
                       #name ": one case per mode below");                            \
        /* (a case past the optimizer's modes is never taken: compiled out) */        \
        switch (pass * OPT_MODES + mode) {                                            \
        OPT_CASE(name, OPT_DRY, 0) OPT_CASE(name, OPT_DRY, 1) OPT_CASE(name, OPT_DRY, 2) \
        OPT_CASE(name, OPT_WRITE, 0) OPT_CASE(name, OPT_WRITE, 1)                     \
        OPT_CASE(name, OPT_WRITE, 2)                                                  \
        OPT_CASE(name, OPT_WRITE_TRACK, 0) OPT_CASE(name, OPT_WRITE_TRACK, 1)         \
        OPT_CASE(name, OPT_WRITE_TRACK, 2)                                            \
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
        const int pass = j->bad != NULL ? OPT_DRY : j->track ? OPT_WRITE_TRACK : OPT_WRITE; \
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
                                int used)                                             \
    {                                                                                 \
        for (int write = 0; write <= 1; write++) {                                    \
            const int pass = write ? OPT_WRITE : OPT_DRY;                             \
            int bad = 0;                                                              \
            for (int64_t r = 0; r < a->count; r++) {                                  \
                T *s[FASTNN_OPT_MAX_STATE];                                           \
                for (int q = 0; q < FASTNN_OPT_MAX_STATE; q++)                        \
                    s[q] = q < used ? (T *)a->states[r * FASTNN_OPT_MAX_STATE + q] : NULL; \
                if (a->sizes[r] >= OPT_SERIAL_SCALAR_MAX) {                           \
                    bad |= F(FASTNN_CAT(name, span))(pass, j->mode, a->sizes[r],      \
                                                     (T *)a->params[r],               \
                                                     (const T *)a->grads[r], s,       \
                                                     &j->k.name, NULL, NULL);         \
                    continue;                                                         \
                }                                                                     \
                switch (pass * OPT_MODES + j->mode) {                                 \
                OPT_SERIAL_CASE(name, OPT_DRY, 0) OPT_SERIAL_CASE(name, OPT_DRY, 1)   \
                OPT_SERIAL_CASE(name, OPT_DRY, 2) OPT_SERIAL_CASE(name, OPT_WRITE, 0) \
                OPT_SERIAL_CASE(name, OPT_WRITE, 1) OPT_SERIAL_CASE(name, OPT_WRITE, 2) \
                default: return FASTNN_EINVAL;                                        \
                }                                                                     \
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
    }
FASTNN_OPTIMIZERS(OPT_PASSES)
#undef OPT_PASSES
#undef OPT_SERIAL_CASE
#undef OPT_SERIAL_SCALAR_MAX
#undef OPT_CASE

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
#define OPT_DISPATCH(ID, name, n_state, n_hyper, hypers)                               \
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

/* array i's state arrays, as the job wants them (NULL past the used ones);
 * FASTNN_EINVAL when one the optimizer needs is missing */
static int F(opt_job_arrays)(F(opt_job) *job, const fastnn_opt_arrays *a, int64_t i,
                             int n_used)
{
    job->param = (T *)a->params[i];
    job->grad = (const T *)a->grads[i];
    for (int q = 0; q < FASTNN_OPT_MAX_STATE; q++) {
        job->state[q] = q < n_used ? (T *)a->states[i * FASTNN_OPT_MAX_STATE + q] : NULL;
        if (q < n_used && job->state[q] == NULL)
            return FASTNN_EINVAL;
    }
    return FASTNN_OK;
}

/* the job of a set of arrays: the constants prepared once (the step and the
 * hyper-parameters are the same for all), every array's states checked */
static int F(opt_job_all)(F(opt_job) *job, int opt, const fastnn_opt_arrays *a, int64_t step,
                          const double *hyper, fastnn_range_fn *range,
                          int (**safe)(const F(opt_job) *, const fastnn_opt_bounds *, double,
                                       fastnn_opt_bounds *),
                          int *n_used)
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
    *n_used = used(job);
    for (int64_t i = 0; i < a->count; i++)
        if (F(opt_job_arrays)(job, a, i, *n_used) != FASTNN_OK)
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
static void F(job_bounds)(F(opt_job) *job, int n_used, fastnn_opt_bounds *b)
{
    b->known = 1;
    b->param = F(mag_value)(atomic_load(&job->mags[0]));
    for (int q = 0; q < FASTNN_OPT_MAX_STATE; q++) {
        b->state[q] = q < n_used ? F(mag_value)(atomic_load(&job->mags[1 + q])) : 0.0;
        b->negative[q] = q < n_used && atomic_load(&job->signs[q]) != 0;
    }
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
    int n_used;
    const int status = F(opt_job_all)(&job, opt, a, step, hyper, &range, &safe, &n_used);
    if (status != FASTNN_OK)
        return status;
    job.bad = write ? NULL : &bad;
    job.track = write && bounds != NULL;
    /* work: the elements read and written (param, grad and each state read,
       param and each state written by the update) */
    const int per = write ? 2 + 2 * n_used : 2 + n_used;
    for (int64_t i = 0; i < a->count; i++) {
        const int64_t size = a->sizes[i];
        F(opt_job_arrays)(&job, a, i, n_used);  /* checked above */
        if (job.track)
            F(job_reset)(&job);
        if (size > 0)
            fastnn_internal_parallel_ranges(range, &job, size, size * per);
        if (job.track)
            F(job_bounds)(&job, n_used, &bounds[i]);
    }
    return atomic_load(&bad) ? FASTNN_EDIVERGED : FASTNN_OK;
}

/* the dry run, then the update, serially (see internal.h) */
int F(fastnn_internal_opt_update_serial)(int opt, const fastnn_opt_arrays *a, int64_t step,
                                         const double *hyper)
{
    F(opt_job) job;
    fastnn_range_fn range;
    int (*safe)(const F(opt_job) *, const fastnn_opt_bounds *, double, fastnn_opt_bounds *);
    int n_used;
    const int status = F(opt_job_all)(&job, opt, a, step, hyper, &range, &safe, &n_used);
    if (status != FASTNN_OK)
        return status;
    switch (opt) {
#define OPT_SERIAL(ID, name, n_state, n_hyper, hypers)                                 \
    case FASTNN_OPT_##ID:                                                              \
        return F(FASTNN_CAT(name, serial))(&job, a, n_used);
    FASTNN_OPTIMIZERS(OPT_SERIAL)
#undef OPT_SERIAL
    default:
        return FASTNN_EINVAL;
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
    int n_used;
    if (F(opt_job_all)(&job, opt, a, step, hyper, &range, &safe, &n_used) != FASTNN_OK)
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
    for (int q = 0; q < used(&job); q++) {
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

#undef OPT_MODES
#undef OPT_DRY
#undef OPT_WRITE
#undef OPT_WRITE_TRACK
#undef NOT_FINITE
#undef SIGN_SHIFT
#undef WITHIN
#undef NEXT
