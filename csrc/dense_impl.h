/*
 * dense_impl.h -- the templated body of dense.c, included once per dtype with T
 * (float|double) and SFX (f32|f64) defined (see the note in dense.c).
 * No include guard on purpose.
 */
#if !defined(T) || !defined(SFX)
#error "define T and SFX before including dense_impl.h"
#endif
#include "rows_impl.h"

typedef struct {
    const T *b;     /* bias (n_out) or NULL */
    T *Z;           /* GEMM output (Z, or Y when Z is not stored) */
    T *Y;           /* activation output */
    int64_t n_out;  /* row stride of Z and Y */
    int act, rowwise;   /* rowwise: fastnn_internal_act_rowwise(act) */
    double alpha, beta;
    atomic_int *rowwise_pending; /* set when a softmax block missed columns */
} F(dense_ep);

/* C[i, j] += b[j] over a rows x cols block of row stride ldc: Z = X W + b
 * (the GEMM's epilogue, the trainer's tiny path).  Compiled per instruction
 * set; eight columns at a time (one or two vectors), then one at a time.
 * Rows narrower than eight go one value at a time (add_bias_narrow,
 * rows_impl.h), which the trainer's tiny path calls in line instead. */
FASTNN_ELEMENTWISE void F(fastnn_internal_add_bias)(int64_t rows, int64_t cols, T *C,
                                                    int64_t ldc, const T *b)
{
    if (cols < 8) {
        F(add_bias_narrow)(rows, cols, C, ldc, b);
        return;
    }
    for (int64_t i = 0; i < rows; i++) {
        T *restrict c = C + i * ldc;
        const T *restrict bb = b;
        int64_t j = 0;
        for (; j + 8 <= cols; j += 8)
            for (int k = 0; k < 8; k++)
                c[j + k] = c[j + k] + bb[j + k];
        for (; j < cols; j++)
            c[j] = c[j] + bb[j];
    }
}

/* db[j] = the sum of d[i, j] over the rows i, row after row (NumPy's order
 * for a sum over axis 0 of more than one column); n x cols, C-contiguous.
 * Eight columns at a time are summed down all the rows in registers; fewer
 * than eight row by row (sum_rows_narrow, rows_impl.h). */
FASTNN_ELEMENTWISE void F(fastnn_internal_sum_rows)(int64_t n, int64_t cols, const T *d, T *db)
{
    if (cols < 8) {
        F(sum_rows_narrow)(n, cols, d, db);
        return;
    }
    int64_t j = 0;
    for (; j + 8 <= cols; j += 8) {
        T acc[8] = {0};
        for (int64_t i = 0; i < n; i++)
            for (int k = 0; k < 8; k++)
                acc[k] = acc[k] + d[i * cols + j + k];
        for (int k = 0; k < 8; k++)
            db[j + k] = acc[k];
    }
    for (; j < cols; j++) {
        T acc = (T)0;
        for (int64_t i = 0; i < n; i++)
            acc = acc + d[i * cols + j];
        db[j] = acc;
    }
}

/* bias + activation of one finished block of the GEMM (any thread) */
static void F(dense_epilogue)(const void *ctx, int64_t row0, int64_t col0,
                              int64_t rows, int64_t cols, void *Cv,
                              int64_t ldc)
{
    const F(dense_ep) *e = (const F(dense_ep) *)ctx;
    T *C = (T *)Cv;
    if (e->b != NULL)
        F(fastnn_internal_add_bias)(rows, cols, C, ldc, e->b + col0);
    if (e->rowwise && cols != e->n_out) {
        /* the block does not hold whole rows: a rowwise activation
         * (softmax) runs after the GEMM.  The GEMM cuts columns the same way
         * for every row block, so either every block spans all columns (all
         * fused here) or none does (all done by the row pass): no row is
         * ever transformed twice. */
        atomic_store_explicit(e->rowwise_pending, 1, memory_order_relaxed);
        return;
    }
    T *Y = e->Y + row0 * e->n_out + col0;
    if (e->act == FASTNN_ACT_IDENTITY && Y == C)
        return;
    F(fastnn_internal_act_forward)(e->act, e->alpha, e->beta, rows, cols, C, ldc, Y,
                                   e->n_out);
}

int F(fastnn_dense_forward)(int64_t n, int64_t n_in, int64_t n_out,
                            const T *X, const T *W, const T *b, int act,
                            double alpha, double beta, T *Z, T *Y)
{
    if (n < 0 || n_in < 0 || n_out < 0 || act < 0 || act >= FASTNN_N_ACT)
        return FASTNN_EINVAL;
    if (n == 0 || n_out == 0)
        return FASTNN_OK;
    if (Y == NULL || (n_in > 0 && (X == NULL || W == NULL)))
        return FASTNN_EINVAL;
    atomic_int pending;
    atomic_init(&pending, 0);
    T *C = Z != NULL ? Z : Y;
    F(dense_ep) ctx = {b, C, Y, n_out, act, fastnn_internal_act_rowwise(act) == 1, alpha, beta,
                       &pending};
    fastnn_epilogue ep = {F(dense_epilogue), &ctx};
    int status = F(fastnn_gemm)(0, 0, n, n_out, n_in, X, n_in, W, n_out, (T)0,
                                C, n_out, &ep);
    if (status != FASTNN_OK)
        return status;
    if (atomic_load(&pending))
        status = F(fastnn_internal_act_forward)(act, alpha, beta, n, n_out, C, n_out,
                                                Y, n_out);
    return status;
}

int F(fastnn_internal_dense_backward_dx)(int64_t n, int64_t n_in, int64_t n_out,
                                         const T *W, const T *Z, const T *Y, const T *dY,
                                         int act, double alpha, double beta, T *dZ, T *dX, T *db)
{
    if (n < 0 || n_in < 0 || n_out < 0 || act < 0 || act >= FASTNN_N_ACT)
        return FASTNN_EINVAL;
    if (n > 0 && n_out > 0 && (dY == NULL || dZ == NULL))
        return FASTNN_EINVAL;

    /* dZ = act'(dY) over the whole block, then db summed row by row */
    const int pairwise_db = (n_out == 1); /* NumPy sums a lone column pairwise */
    if (db != NULL && n == 0) /* no rows: db = 0 (else each sum below writes all of db) */
        for (int64_t j = 0; j < n_out; j++)
            db[j] = (T)0;
    if (n > 0 && n_out > 0) {
        int status = F(fastnn_internal_act_backward)(act, alpha, beta, n, n_out, Z, Y, dY, dZ,
                                                     n_out);
        if (status != FASTNN_OK)
            return status;
        if (db != NULL && pairwise_db)
            db[0] = F(fastnn_internal_sum)(dZ, n);
        else if (db != NULL && n_out < 8)
            F(sum_rows_narrow)(n, n_out, dZ, db);
        else if (db != NULL)
            F(fastnn_internal_sum_rows)(n, n_out, dZ, db);
    }
    /* dX = dZ @ W^T  (n x n_in, k = n_out) */
    if (dX == NULL)
        return FASTNN_OK;
    return F(fastnn_gemm)(0, 1, n, n_in, n_out, dZ, n_out, W, n_out, (T)0, dX, n_in, NULL);
}

int F(fastnn_internal_dense_backward_dw)(int64_t n, int64_t n_in, int64_t n_out, const T *X,
                                         const T *dZ, T *dW, const fastnn_epilogue *epilogue)
{
    if (n < 0 || n_in < 0 || n_out < 0)
        return FASTNN_EINVAL;
    if (n_in > 0 && n_out > 0 && dW == NULL)
        return FASTNN_EINVAL;
    /* dW = X^T @ dZ  (n_in x n_out, k = n) */
    return F(fastnn_gemm)(1, 0, n_in, n_out, n, X, n_in, dZ, n_out, (T)0, dW, n_out, epilogue);
}

int F(fastnn_dense_backward)(int64_t n, int64_t n_in, int64_t n_out,
                             const T *X, const T *W, const T *Z, const T *Y,
                             const T *dY, int act, double alpha, double beta, T *dZ, T *dX,
                             T *dW, T *db)
{
    if (n_in > 0 && n_out > 0 && dW == NULL)
        return FASTNN_EINVAL;
    const int status = F(fastnn_internal_dense_backward_dx)(n, n_in, n_out, W, Z, Y, dY, act,
                                                            alpha, beta, dZ, dX, db);
    if (status != FASTNN_OK)
        return status;
    return F(fastnn_internal_dense_backward_dw)(n, n_in, n_out, X, dZ, dW, NULL);
}
