/*
 * rows_impl.h -- the sum and the max of a short contiguous row, and a bias
 * added to or summed over narrow rows, inlined where they are used (private
 * template header).
 *
 * Why it is built this way: softmax and the cross-entropy take a row's max
 * and its sum once per row, and a classifier's rows are short (10 logits):
 * a call per row, and a max taken one value at a time, cost more than the
 * arithmetic.  Both are static inline here, so each caller (activations.c,
 * losses.c, compiled once per instruction set) gets its own vectorized copy;
 * the results are bit for bit those of NumPy's x.sum() and of exp(x - x.max()).
 * The bias helpers are the narrow case of dense.c's per-ISA kernels
 * (fastnn_internal_add_bias, fastnn_internal_sum_rows): XOR's rows of 4 and
 * the weight/height network's of 2 cost less added one by one in line than
 * a call.  Included by activations_impl.h, losses_impl.h, dense_impl.h and
 * train_impl.h with T and SFX defined.
 * No include guard on purpose.
 */
#if !defined(T) || !defined(SFX)
#error "define T and SFX before including rows_impl.h"
#endif

/* contiguous sum x[0..n) in T, NumPy's order: -0.0 + pairwise(x) */
typedef struct {
    const T *x;
} F(vec_ctx);
#define PW_NAME F(pw_vec)
#define PW_ACC T
#define PW_CTX F(vec_ctx)
#define PW_ELEM(c, i) ((c)->x[i])
#include "pairwise_impl.h"

static inline __attribute__((always_inline)) T F(row_sum)(const T *x, int64_t n)
{
    F(vec_ctx) c = {x};
    return (T)0 + (n <= 128 ? FASTNN_CAT(F(pw_vec), block)(&c, 0, n) : F(pw_vec)(&c, 0, n));
}

/* the shift of a row for exp(x - m): its largest value.  Eight lanes of
 * selects (each lane a maxps: v > m ? v : m), then the lanes and the tail.
 * Every user sums exp(x - m) over the whole row, so a row holding a NaN
 * gives NaN everywhere whatever m is (m itself may or may not be the NaN),
 * and of a largest value of zero the sign does not matter (x - (+0) and
 * x - (-0) have the same exp): the results are those of x - x.max(). */
static inline __attribute__((always_inline)) T F(row_max)(const T *x, int64_t n)
{
    T m = x[0];
    int64_t j = 0;
    if (n >= 8) {
        T acc[8];
        for (int k = 0; k < 8; k++)
            acc[k] = x[k];
        for (j = 8; j + 8 <= n; j += 8)
            for (int k = 0; k < 8; k++) {
                const T v = x[j + k];
                acc[k] = v > acc[k] ? v : acc[k];
            }
        for (int k = 0; k < 8; k++)
            m = acc[k] > m ? acc[k] : m;
    }
    for (; j < n; j++)
        m = x[j] > m ? x[j] : m;
    return m;
}

/* C[i, j] += b[j] over a rows x cols block of row stride ldc, one by one */
static inline __attribute__((always_inline)) void
F(add_bias_narrow)(int64_t rows, int64_t cols, T *C, int64_t ldc, const T *b)
{
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            C[i * ldc + j] = C[i * ldc + j] + b[j];
}

/* db[j] = (0 + d[0, j]) + d[1, j] + ... over the n rows of d (n x cols,
 * C-contiguous), row by row: NumPy's order for a sum over axis 0 */
static inline __attribute__((always_inline)) void
F(sum_rows_narrow)(int64_t n, int64_t cols, const T *d, T *db)
{
    for (int64_t j = 0; j < cols; j++)
        db[j] = (T)0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < cols; j++)
            db[j] = db[j] + d[i * cols + j];
}
