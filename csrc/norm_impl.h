/*
 * norm_impl.h -- the templated body of norm.c, included once per dtype with T
 * (float|double) and SFX (f32|f64) defined (see the note in norm.c).  No include
 * guard on purpose.  weight and bias may be NULL (no affine parameters).
 */
#if !defined(T) || !defined(SFX)
#error "define T and SFX before including norm_impl.h"
#endif

/* mean_j, var_j (biased) over the n rows; xhat = (x - mean) rstd; y = xhat w + b */
int F(fastnn_batchnorm_forward)(int64_t n, int64_t d, const T *x, const T *w, const T *b,
                                double eps, T *y, T *xhat, double *mean, double *var)
{
    if (n < 2 || d < 0 || !(eps >= 0.0))
        return FASTNN_EINVAL;
    for (int64_t j = 0; j < d; j++)
        mean[j] = 0.0, var[j] = 0.0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++)
            mean[j] += (double)x[i * d + j];
    for (int64_t j = 0; j < d; j++)
        mean[j] /= (double)n;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) {
            const double c = (double)x[i * d + j] - mean[j];
            var[j] += c * c;
        }
    for (int64_t j = 0; j < d; j++)
        var[j] /= (double)n;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) {
            const double h = ((double)x[i * d + j] - mean[j]) * (1.0 / sqrt(var[j] + eps));
            xhat[i * d + j] = (T)h;
            y[i * d + j] = (T)(w && b ? h * (double)w[j] + (double)b[j] : h);
        }
    return FASTNN_OK;
}

/* y = (x - running_mean) / sqrt(running_var + eps) w + b */
int F(fastnn_batchnorm_eval)(int64_t n, int64_t d, const T *x, const T *rmean, const T *rvar,
                             const T *w, const T *b, double eps, T *y)
{
    if (n < 0 || d < 0 || !(eps >= 0.0))
        return FASTNN_EINVAL;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) {
            const double h = ((double)x[i * d + j] - (double)rmean[j])
                             * (1.0 / sqrt((double)rvar[j] + eps));
            y[i * d + j] = (T)(w && b ? h * (double)w[j] + (double)b[j] : h);
        }
    return FASTNN_OK;
}

/* dbias = sum_i dy, dweight = sum_i dy xhat,
   dx = w rstd / n (n dy - dbias - xhat dweight); work: 2 d doubles */
int F(fastnn_batchnorm_backward)(int64_t n, int64_t d, const T *dy, const T *xhat,
                                 const double *var, const T *w, double eps, T *dx, T *dw,
                                 T *db, double *work)
{
    if (n < 1 || d < 0 || !(eps >= 0.0))
        return FASTNN_EINVAL;
    double *sb = work, *sw = work + d;
    for (int64_t j = 0; j < d; j++)
        sb[j] = 0.0, sw[j] = 0.0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) {
            const double g = (double)dy[i * d + j];
            sb[j] += g;
            sw[j] += g * (double)xhat[i * d + j];
        }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++) {
            const double scale = (w ? (double)w[j] : 1.0) * (1.0 / sqrt(var[j] + eps))
                                 / (double)n;
            dx[i * d + j] = (T)(scale * ((double)n * (double)dy[i * d + j] - sb[j]
                                         - (double)xhat[i * d + j] * sw[j]));
        }
    if (dw && db)
        for (int64_t j = 0; j < d; j++)
            dw[j] = (T)sw[j], db[j] = (T)sb[j];
    return FASTNN_OK;
}

/* per row: mean, var (biased), rstd = 1 / sqrt(var + eps); y = xhat w + b */
int F(fastnn_layernorm_forward)(int64_t n, int64_t d, const T *x, const T *w, const T *b,
                                double eps, T *y, T *xhat, double *rstd)
{
    if (n < 0 || d < 1 || !(eps >= 0.0))
        return FASTNN_EINVAL;
    for (int64_t i = 0; i < n; i++) {
        const T *xi = x + i * d;
        double s = 0.0, v = 0.0;
        for (int64_t j = 0; j < d; j++)
            s += (double)xi[j];
        const double mean = s / (double)d;
        for (int64_t j = 0; j < d; j++) {
            const double c = (double)xi[j] - mean;
            v += c * c;
        }
        const double r = 1.0 / sqrt(v / (double)d + eps);
        rstd[i] = r;
        for (int64_t j = 0; j < d; j++) {
            const double h = ((double)xi[j] - mean) * r;
            xhat[i * d + j] = (T)h;
            y[i * d + j] = (T)(w && b ? h * (double)w[j] + (double)b[j] : h);
        }
    }
    return FASTNN_OK;
}

/* g = dy w; dx = rstd / d (d g - sum_j g - xhat sum_j g xhat);
   dweight = sum_i dy xhat, dbias = sum_i dy; work: 2 d doubles */
int F(fastnn_layernorm_backward)(int64_t n, int64_t d, const T *dy, const T *xhat,
                                 const double *rstd, const T *w, T *dx, T *dw, T *db,
                                 double *work)
{
    if (n < 0 || d < 1)
        return FASTNN_EINVAL;
    double *sb = work, *sw = work + d;
    for (int64_t j = 0; j < d; j++)
        sb[j] = 0.0, sw[j] = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double sg = 0.0, sgx = 0.0;
        for (int64_t j = 0; j < d; j++) {
            const double dyv = (double)dy[i * d + j], h = (double)xhat[i * d + j];
            const double g = w ? dyv * (double)w[j] : dyv;
            sg += g;
            sgx += g * h;
            sb[j] += dyv;
            sw[j] += dyv * h;
        }
        const double scale = rstd[i] / (double)d;
        for (int64_t j = 0; j < d; j++) {
            const double dyv = (double)dy[i * d + j];
            const double g = w ? dyv * (double)w[j] : dyv;
            dx[i * d + j] = (T)(scale * ((double)d * g - sg - (double)xhat[i * d + j] * sgx));
        }
    }
    if (dw && db)
        for (int64_t j = 0; j < d; j++)
            dw[j] = (T)sw[j], db[j] = (T)sb[j];
    return FASTNN_OK;
}
