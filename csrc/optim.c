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

/* SGD over one contiguous span (see fastnn_sgd) */
FASTNN_ELEMENTWISE static void F(sgd_span)(int64_t size, T *param, const T *grad, T *velocity,
                               T lr_t, T mu, T wd, int use_wd, int nesterov)
{
    if (velocity == NULL) {
        for (int64_t i = 0; i < size; i++) {
            const T g = use_wd ? grad[i] + wd * param[i] : grad[i];
            param[i] = param[i] - lr_t * g;
        }
    } else if (nesterov) {
        for (int64_t i = 0; i < size; i++) {
            const T g = use_wd ? grad[i] + wd * param[i] : grad[i];
            const T v = F(flush)(velocity[i] * mu + g);
            velocity[i] = v;
            param[i] = param[i] - lr_t * (g + mu * v);
        }
    } else {
        for (int64_t i = 0; i < size; i++) {
            const T g = use_wd ? grad[i] + wd * param[i] : grad[i];
            const T v = F(flush)(velocity[i] * mu + g);
            velocity[i] = v;
            param[i] = param[i] - lr_t * v;
        }
    }
}

/* fastnn_sgd's arguments, for a pass split across threads */
typedef struct {
    T *param;
    const T *grad;
    T *vel;
    T lr_t, mu, wd;
    int use_wd, nesterov;
} F(sgd_job);

static void F(sgd_range)(const void *ctx, int64_t lo, int64_t hi)
{
    const F(sgd_job) *j = (const F(sgd_job) *)ctx;
    F(sgd_span)(hi - lo, j->param + lo, j->grad + lo, j->vel ? j->vel + lo : NULL, j->lr_t,
                j->mu, j->wd, j->use_wd, j->nesterov);
}

/*
 * g = grad + wd*p (if wd != 0);  v = flush(mu*v + g);  step = g + mu*v (nesterov)
 * or v;  (step = g if mu == 0);  p -= lr*step.
 */
int F(fastnn_sgd)(int64_t size, T *param, const T *grad, T *velocity,
                  double lr, double momentum, double weight_decay, int nesterov)
{
    if (size < 0)
        return FASTNN_EINVAL;
    if (size == 0)
        return FASTNN_OK;
    if (param == NULL || grad == NULL || (momentum != 0.0 && velocity == NULL))
        return FASTNN_EINVAL;
    const T wd = (T)weight_decay, mu = (T)momentum, lr_t = (T)lr;
    const int use_wd = weight_decay != 0.0;
    T *vel = momentum == 0.0 ? NULL : velocity;
    const F(sgd_job) job = {param, grad, vel, lr_t, mu, wd, use_wd, nesterov};
    fastnn_internal_parallel_ranges(F(sgd_range), &job, size, size);
    return FASTNN_OK;
}

/* Adam over one contiguous span (see fastnn_adam) */
FASTNN_ELEMENTWISE static void F(adam_span)(int64_t size, T *param, const T *grad, T *m, T *v,
                                T b1, T b2, T omb1, T omb2, T ss, T bc, T ep, T wd,
                                int use_wd)
{
    for (int64_t i = 0; i < size; i++) {
        const T g = use_wd ? grad[i] + wd * param[i] : grad[i];
        const T mi = F(flush)(m[i] * b1 + omb1 * g);
        const T vi = F(flush)(v[i] * b2 + omb2 * (g * g));
        m[i] = mi;
        v[i] = vi;
        const T denom = SQRT(vi) / bc + ep;
        param[i] = param[i] - ss * (mi / denom);
    }
}

/* fastnn_adam's arguments, for a pass split across threads */
typedef struct {
    T *param;
    const T *grad;
    T *m, *v;
    T b1, b2, omb1, omb2, ss, bc, ep, wd;
    int use_wd;
} F(adam_job);

static void F(adam_range)(const void *ctx, int64_t lo, int64_t hi)
{
    const F(adam_job) *j = (const F(adam_job) *)ctx;
    F(adam_span)(hi - lo, j->param + lo, j->grad + lo, j->m + lo, j->v + lo, j->b1, j->b2,
                 j->omb1, j->omb2, j->ss, j->bc, j->ep, j->wd, j->use_wd);
}

/*
 * g = grad + wd*p (if wd != 0);  m = flush(b1*m + (1-b1)*g);
 * v = flush(b2*v + (1-b2)*g^2);
 * p -= step_size * m / (sqrt(v)/bc2 + eps), step_size = lr/(1-b1^t) and
 * bc2 = (1-b2^t)^0.5 computed in double, then rounded to T.
 */
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
    const double step_size = lr / (1.0 - pow(beta1, (double)step));
    const double bc2 = pow(1.0 - pow(beta2, (double)step), 0.5);
    const T wd = (T)weight_decay, b1 = (T)beta1, b2 = (T)beta2;
    const T omb1 = (T)(1.0 - beta1), omb2 = (T)(1.0 - beta2);
    const T ss = (T)step_size, bc = (T)bc2, ep = (T)eps;
    const int use_wd = weight_decay != 0.0;
    const F(adam_job) job = {param, grad, m, v, b1, b2, omb1, omb2, ss, bc, ep, wd, use_wd};
    fastnn_internal_parallel_ranges(F(adam_range), &job, size, size);
    return FASTNN_OK;
}

#undef F

#endif /* FASTNN_OPTIM_TEMPLATE */
