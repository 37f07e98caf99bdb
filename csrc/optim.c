/*
 * optim.c -- SGD (momentum, Nesterov, weight decay) and Adam, in place.
 *
 * Why it is built this way: the NumPy reference (NumpyOps.sgd_update and
 * adam_update) makes several whole-array passes with temporaries; here each
 * element is read and written once, but the arithmetic per element is the
 * reference's, in the same order and in the array's dtype T, with every
 * scalar rounded to T exactly where the reference writes ``dt(...)``.  The
 * scalar bias corrections of Adam are computed in double as Python does
 * (``beta ** step`` is C's pow, ``x ** 0.5`` is pow(x, 0.5), not sqrt).
 *
 * This file includes itself once per dtype: the part under
 * FASTNN_OPTIM_TEMPLATE is the templated body (T = float|double).
 */
#ifndef FASTNN_OPTIM_TEMPLATE

#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "fastnn.h"
#include "internal.h"

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)

#define FASTNN_OPTIM_TEMPLATE
#define T float
#define SFX f32
#define SQRT sqrtf
#define TINY FLT_MIN
#include "optim.c"
#undef T
#undef SFX
#undef SQRT
#undef TINY
#define T double
#define SFX f64
#define SQRT sqrt
#define TINY DBL_MIN
#include "optim.c"
#undef T
#undef SFX
#undef SQRT
#undef TINY
#undef FASTNN_OPTIM_TEMPLATE

#else /* ---------------- templated body: T, SFX ---------------------------- */

#define F(name) CAT(name, SFX)

/* the reference's _flush_subnormal: state entries below the smallest normal
   number become 0 (so a decaying moment does not crawl through subnormals) */
static inline T F(flush)(T x)
{
    return (x < TINY && x > -TINY) ? (T)0 : x;
}

/* x is inf or NaN: x - x is 0 exactly for finite x (branch-free, vectorizes) */
#define NOT_FINITE(x) (((x) - (x)) != (T)0)

/*
 * The optimizers' arithmetic is written once, in the *_body functions, and
 * serves two passes: the update (write = 1: the new values replace the old
 * ones in place) and the trainer's dry run before it (write = 0: nothing is
 * written; the result is whether any new value would be inf or NaN).  Both
 * are inlined with a constant `write` into per-ISA clones, so the update
 * loop is the one it was and the dry run is the same loop without stores.
 */

/* SGD over one contiguous span (see fastnn_sgd); returns any new value non-finite
 * (computed only when !write) */
static inline __attribute__((always_inline)) int
F(sgd_body)(const int write, int64_t size, T *param, const T *grad, T *velocity, T lr_t,
            T mu, T wd, int use_wd, int nesterov)
{
    int bad = 0;
    if (velocity == NULL) {
        for (int64_t i = 0; i < size; i++) {
            const T g = use_wd ? grad[i] + wd * param[i] : grad[i];
            const T p = param[i] - lr_t * g;
            if (write)
                param[i] = p;
            else
                bad |= NOT_FINITE(p);
        }
    } else if (nesterov) {
        for (int64_t i = 0; i < size; i++) {
            const T g = use_wd ? grad[i] + wd * param[i] : grad[i];
            const T sum = velocity[i] * mu + g;
            const T v = F(flush)(sum);
            const T p = param[i] - lr_t * (g + mu * v);
            if (write) {
                velocity[i] = v;
                param[i] = p;
            } else {
                bad |= NOT_FINITE(sum) | NOT_FINITE(p);     /* v is finite iff sum is */
            }
        }
    } else {
        for (int64_t i = 0; i < size; i++) {
            const T g = use_wd ? grad[i] + wd * param[i] : grad[i];
            const T sum = velocity[i] * mu + g;
            const T v = F(flush)(sum);
            const T p = param[i] - lr_t * v;
            if (write) {
                velocity[i] = v;
                param[i] = p;
            } else {
                bad |= NOT_FINITE(sum) | NOT_FINITE(p);     /* v is finite iff sum is */
            }
        }
    }
    return bad;
}

FASTNN_ELEMENTWISE static void F(sgd_span)(int64_t size, T *param, const T *grad, T *velocity,
                                           T lr_t, T mu, T wd, int use_wd, int nesterov)
{
    (void)F(sgd_body)(1, size, param, grad, velocity, lr_t, mu, wd, use_wd, nesterov);
}

FASTNN_ELEMENTWISE static int F(sgd_span_bad)(int64_t size, T *param, const T *grad,
                                              T *velocity, T lr_t, T mu, T wd, int use_wd,
                                              int nesterov)
{
    return F(sgd_body)(0, size, param, grad, velocity, lr_t, mu, wd, use_wd, nesterov);
}

/* fastnn_sgd's arguments, for a pass split across threads; bad is NULL for
 * the update, else the dry run's flag, set by any range that finds a
 * non-finite value (a relaxed store: the flag is read after the pass) */
typedef struct {
    T *param;
    const T *grad;
    T *vel;
    T lr_t, mu, wd;
    int use_wd, nesterov;
    atomic_int *bad;
} F(sgd_job);

static void F(sgd_range)(const void *ctx, int64_t lo, int64_t hi)
{
    const F(sgd_job) *j = (const F(sgd_job) *)ctx;
    T *vel = j->vel ? j->vel + lo : NULL;
    if (j->bad == NULL)
        F(sgd_span)(hi - lo, j->param + lo, j->grad + lo, vel, j->lr_t, j->mu, j->wd,
                    j->use_wd, j->nesterov);
    else if (F(sgd_span_bad)(hi - lo, j->param + lo, j->grad + lo, vel, j->lr_t, j->mu, j->wd,
                             j->use_wd, j->nesterov))
        atomic_store_explicit(j->bad, 1, memory_order_relaxed);
}

/*
 * g = grad + wd*p (if wd != 0);  v = flush(mu*v + g);  step = g + mu*v (nesterov)
 * or v;  (step = g if mu == 0);  p -= lr*step.
 * write = 0: the dry run (see internal.h).  Arguments checked by the caller.
 */
int F(fastnn_internal_sgd)(int write, int64_t size, T *param, const T *grad, T *velocity,
                           double lr, double momentum, double weight_decay, int nesterov)
{
    atomic_int bad;
    atomic_init(&bad, 0);
    const T wd = (T)weight_decay, mu = (T)momentum, lr_t = (T)lr;
    const int use_wd = weight_decay != 0.0;
    T *vel = momentum == 0.0 ? NULL : velocity;
    const F(sgd_job) job = {param, grad, vel, lr_t, mu, wd, use_wd, nesterov,
                            write ? NULL : &bad};
    fastnn_internal_parallel_ranges(F(sgd_range), &job, size, size);
    return atomic_load(&bad) ? FASTNN_EDIVERGED : FASTNN_OK;
}

int F(fastnn_sgd)(int64_t size, T *param, const T *grad, T *velocity,
                  double lr, double momentum, double weight_decay, int nesterov)
{
    if (size < 0)
        return FASTNN_EINVAL;
    if (size == 0)
        return FASTNN_OK;
    if (param == NULL || grad == NULL || (momentum != 0.0 && velocity == NULL))
        return FASTNN_EINVAL;
    return F(fastnn_internal_sgd)(1, size, param, grad, velocity, lr, momentum, weight_decay,
                                  nesterov);
}

/* Adam over one contiguous span (see fastnn_adam); returns any new value non-finite
 * (computed only when !write) */
static inline __attribute__((always_inline)) int
F(adam_body)(const int write, int64_t size, T *param, const T *grad, T *m, T *v, T b1, T b2,
             T omb1, T omb2, T ss, T bc, T ep, T wd, int use_wd)
{
    int bad = 0;
    for (int64_t i = 0; i < size; i++) {
        /* param read once, and the moments checked before their flush (the
         * same finiteness): so written, the dry run vectorizes too */
        const T pi = param[i];
        const T g = use_wd ? grad[i] + wd * pi : grad[i];
        const T m_raw = m[i] * b1 + omb1 * g, v_raw = v[i] * b2 + omb2 * (g * g);
        const T mi = F(flush)(m_raw), vi = F(flush)(v_raw);
        const T denom = SQRT(vi) / bc + ep;
        const T p = pi - ss * (mi / denom);
        if (write) {
            m[i] = mi;
            v[i] = vi;
            param[i] = p;
        } else {
            bad |= NOT_FINITE(m_raw) | NOT_FINITE(v_raw) | NOT_FINITE(p);
        }
    }
    return bad;
}

FASTNN_ELEMENTWISE static void F(adam_span)(int64_t size, T *param, const T *grad, T *m, T *v,
                                            T b1, T b2, T omb1, T omb2, T ss, T bc, T ep,
                                            T wd, int use_wd)
{
    (void)F(adam_body)(1, size, param, grad, m, v, b1, b2, omb1, omb2, ss, bc, ep, wd, use_wd);
}

FASTNN_ELEMENTWISE static int F(adam_span_bad)(int64_t size, T *param, const T *grad, T *m,
                                               T *v, T b1, T b2, T omb1, T omb2, T ss, T bc,
                                               T ep, T wd, int use_wd)
{
    return F(adam_body)(0, size, param, grad, m, v, b1, b2, omb1, omb2, ss, bc, ep, wd, use_wd);
}

/* fastnn_adam's arguments, for a pass split across threads (bad: see sgd_job) */
typedef struct {
    T *param;
    const T *grad;
    T *m, *v;
    T b1, b2, omb1, omb2, ss, bc, ep, wd;
    int use_wd;
    atomic_int *bad;
} F(adam_job);

static void F(adam_range)(const void *ctx, int64_t lo, int64_t hi)
{
    const F(adam_job) *j = (const F(adam_job) *)ctx;
    if (j->bad == NULL)
        F(adam_span)(hi - lo, j->param + lo, j->grad + lo, j->m + lo, j->v + lo, j->b1, j->b2,
                     j->omb1, j->omb2, j->ss, j->bc, j->ep, j->wd, j->use_wd);
    else if (F(adam_span_bad)(hi - lo, j->param + lo, j->grad + lo, j->m + lo, j->v + lo,
                              j->b1, j->b2, j->omb1, j->omb2, j->ss, j->bc, j->ep, j->wd,
                              j->use_wd))
        atomic_store_explicit(j->bad, 1, memory_order_relaxed);
}

/*
 * g = grad + wd*p (if wd != 0);  m = flush(b1*m + (1-b1)*g);
 * v = flush(b2*v + (1-b2)*g^2);
 * p -= step_size * m / (sqrt(v)/bc2 + eps), step_size = lr/(1-b1^t) and
 * bc2 = (1-b2^t)^0.5 computed in double, then rounded to T.
 * write = 0: the dry run (see internal.h).  Arguments checked by the caller.
 */
int F(fastnn_internal_adam)(int write, int64_t size, T *param, const T *grad, T *m, T *v,
                            int64_t step, double lr, double beta1, double beta2, double eps,
                            double weight_decay)
{
    atomic_int bad;
    atomic_init(&bad, 0);
    const double step_size = lr / (1.0 - pow(beta1, (double)step));
    const double bc2 = pow(1.0 - pow(beta2, (double)step), 0.5);
    const T wd = (T)weight_decay, b1 = (T)beta1, b2 = (T)beta2;
    const T omb1 = (T)(1.0 - beta1), omb2 = (T)(1.0 - beta2);
    const T ss = (T)step_size, bc = (T)bc2, ep = (T)eps;
    const int use_wd = weight_decay != 0.0;
    const F(adam_job) job = {param, grad, m, v, b1, b2, omb1, omb2, ss, bc, ep, wd, use_wd,
                             write ? NULL : &bad};
    fastnn_internal_parallel_ranges(F(adam_range), &job, size, size);
    return atomic_load(&bad) ? FASTNN_EDIVERGED : FASTNN_OK;
}

int F(fastnn_adam)(int64_t size, T *param, const T *grad, T *m, T *v,
                   int64_t step, double lr, double beta1, double beta2,
                   double eps, double weight_decay)
{
    if (size < 0 || step < 1)
        return FASTNN_EINVAL;
    if (size == 0)
        return FASTNN_OK;
    if (param == NULL || grad == NULL || m == NULL || v == NULL)
        return FASTNN_EINVAL;
    return F(fastnn_internal_adam)(1, size, param, grad, m, v, step, lr, beta1, beta2, eps,
                                   weight_decay);
}

#undef NOT_FINITE
#undef F

#endif /* FASTNN_OPTIM_TEMPLATE */
