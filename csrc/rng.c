/*
 * rng.c -- counter-based random bits and dropout masks.
 *
 * Why it is built this way: a dropout mask must be the same on every backend
 * and for every thread count, so each element's bits are a pure function of
 * (seed, step, index) -- SplitMix64's finaliser applied twice -- with no
 * generator state to share between threads.  The NumPy reference
 * (NumpyOps.rng_bits) computes the same function with uint64 arrays.  The
 * dropout kernels are written once over T in rng_impl.h, included once per
 * dtype.
 */
#include "fastnn.h"
#include "internal.h"

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

#define FASTNN_TEMPLATE "rng_impl.h"
#include "per_dtype.h"
