/*
 * rng.c -- counter-based random bits and dropout masks.
 *
 * Why it is built this way: a dropout mask must be the same on every backend
 * and for every thread count, so each element's bits are a pure function of
 * (seed, step, index) -- SplitMix64's finaliser applied twice -- with no
 * generator state to share between threads.  The NumPy reference
 * (NumpyOps.rng_bits) computes the same function with uint64 arrays.
 */
#include "fastnn.h"

#define GOLDEN UINT64_C(0x9E3779B97F4A7C15)

static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static inline uint64_t step_key(uint64_t seed, uint64_t step)
{
    return mix64(seed + GOLDEN * (step + 1));
}

uint64_t fastnn_rng_bits(uint64_t seed, uint64_t step, uint64_t index)
{
    return mix64(step_key(seed, step) + GOLDEN * (index + 1));
}

/* u in [0, 1) from the top 53 bits, exactly as the reference does it */
#define UNIFORM(bits) ((double)((bits) >> 11) * (1.0 / 9007199254740992.0))

#define DEFINE_DROPOUT(SUFFIX, T)                                              \
    int fastnn_dropout_##SUFFIX(int64_t size, double p, uint64_t seed,         \
                                uint64_t step, const T *x, T *mask, T *y)      \
    {                                                                          \
        if (size < 0 || !(p >= 0.0 && p <= 1.0))                               \
            return FASTNN_EINVAL;                                              \
        const uint64_t key = step_key(seed, step);                             \
        const T keep = p < 1.0 ? (T)(1.0 / (1.0 - p)) : (T)0;                  \
        for (int64_t i = 0; i < size; i++) {                                   \
            const double u = UNIFORM(mix64(key + GOLDEN * ((uint64_t)i + 1))); \
            const T m = u >= p ? keep : (T)0;                                  \
            mask[i] = m;                                                       \
            y[i] = x[i] * m;                                                   \
        }                                                                      \
        return FASTNN_OK;                                                      \
    }

#define DEFINE_DROPOUT_BACKWARD(SUFFIX, T)                                     \
    int fastnn_dropout_backward_##SUFFIX(int64_t size, const T *dy,            \
                                         const T *mask, T *dx)                 \
    {                                                                          \
        if (size < 0)                                                          \
            return FASTNN_EINVAL;                                              \
        for (int64_t i = 0; i < size; i++)                                     \
            dx[i] = dy[i] * mask[i];                                           \
        return FASTNN_OK;                                                      \
    }

DEFINE_DROPOUT(f32, float)
DEFINE_DROPOUT(f64, double)
DEFINE_DROPOUT_BACKWARD(f32, float)
DEFINE_DROPOUT_BACKWARD(f64, double)
