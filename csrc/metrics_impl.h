/*
 * metrics_impl.h -- the templated body of metrics.c, included once per dtype
 * with T and SFX defined.  No include guard on purpose.
 */
#if !defined(T) || !defined(SFX)
#error "define T and SFX before including metrics_impl.h"
#endif

typedef struct {
    const T *p, *t;
} F(metric_ctx);

#define PW_NAME F(pw_abs_diff)
#define PW_ACC double
#define PW_CTX F(metric_ctx)
#define PW_ELEM(c, i) ((double)fabs((double)((c)->p[i] - (c)->t[i])))
#include "pairwise_impl.h"

#define PW_NAME F(pw_sq_diff)
#define PW_ACC double
#define PW_CTX F(metric_ctx)
#define PW_ELEM(c, i) ((double)((c)->p[i] - (c)->t[i]) * (double)((c)->p[i] - (c)->t[i]))
#include "pairwise_impl.h"

/* numpy.argmax of one row: the first largest value, the first NaN if any */
static int64_t F(row_argmax)(const T *row, int64_t cols)
{
    int64_t best = 0;
    for (int64_t j = 1; j < cols; j++) {
        if (isnan(row[best]))
            break;
        if (row[j] > row[best] || isnan(row[j]))
            best = j;
    }
    return best;
}

int F(fastnn_metric)(int metric, int64_t rows, int64_t cols, const T *pred,
                     const void *target, double *value)
{
    if (rows < 1 || cols < 1 || pred == NULL || target == NULL || value == NULL)
        return FASTNN_EINVAL;
    const int64_t size = rows * cols;
    const T *t = (const T *)target;
    F(metric_ctx) c = {pred, t};
    int64_t hits = 0;
    switch (metric) {
    case FASTNN_METRIC_MAE:
        *value = (0.0 + F(pw_abs_diff)(&c, 0, size)) / (double)size;
        return FASTNN_OK;
    case FASTNN_METRIC_MSE:
        *value = (0.0 + F(pw_sq_diff)(&c, 0, size)) / (double)size;
        return FASTNN_OK;
    case FASTNN_METRIC_BINARY_ACCURACY:
        for (int64_t i = 0; i < size; i++)
            hits += (pred[i] > (T)0.5) == (t[i] > (T)0.5);
        *value = (double)hits / (double)size;
        return FASTNN_OK;
    case FASTNN_METRIC_ARGMAX_ACCURACY:
        for (int64_t r = 0; r < rows; r++)
            hits += F(row_argmax)(pred + r * cols, cols) == F(row_argmax)(t + r * cols, cols);
        *value = (double)hits / (double)rows;
        return FASTNN_OK;
    case FASTNN_METRIC_LABEL_ACCURACY: {
        const int64_t *labels = (const int64_t *)target;
        for (int64_t r = 0; r < rows; r++)
            hits += F(row_argmax)(pred + r * cols, cols) == labels[r];
        *value = (double)hits / (double)rows;
        return FASTNN_OK;
    }
    default:
        return FASTNN_EINVAL;
    }
}
