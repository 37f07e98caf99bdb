/*
 * rng_impl.h -- the templated body of rng.c (dropout), included once per
 * dtype with T (float|double) and SFX (f32|f64) defined (see the note in
 * rng.c).  No include guard on purpose.
 */
#if !defined(T) || !defined(SFX)
#error "define T and SFX before including rng_impl.h"
#endif

int F(fastnn_dropout)(int64_t size, double p, uint64_t seed, uint64_t step, const T *x,
                      T *mask, T *y)
{
    if (size < 0 || !(p >= 0.0 && p <= 1.0))
        return FASTNN_EINVAL;
    const uint64_t key = step_key(seed, step);
    const T keep = p < 1.0 ? (T)(1.0 / (1.0 - p)) : (T)0;
    for (int64_t i = 0; i < size; i++) {
        const double u = UNIFORM(mix64(key + GOLDEN * ((uint64_t)i + 1)));
        const T m = u >= p ? keep : (T)0;
        mask[i] = m;
        y[i] = x[i] * m;
    }
    return FASTNN_OK;
}

int F(fastnn_dropout_backward)(int64_t size, const T *dy, const T *mask, T *dx)
{
    if (size < 0)
        return FASTNN_EINVAL;
    for (int64_t i = 0; i < size; i++)
        dx[i] = dy[i] * mask[i];
    return FASTNN_OK;
}
