/*
 * internal.h -- helpers shared between the C files, not part of the API.
 *
 * Why it is built this way: dense.c runs the activations on finished GEMM
 * blocks (strided, in cache) and sums columns in NumPy's order, with the
 * functions activations.c defines; one header declares them for both sides,
 * so the compiler checks that the definitions match.
 */
#ifndef FASTNN_INTERNAL_H
#define FASTNN_INTERNAL_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "fastnn.h"

/* Loops compiled for AVX-512 and AVX2 besides the x86-64 baseline, the best
   chosen when the library loads (elementwise passes, and the cross-entropy's
   rows, whose exp vectorizes).  The compiler never reorders floating-point
   arithmetic (no -ffast-math: a sum stays in its written order) and does no
   FMA contraction (-std=c11 means -ffp-contract=off), so every clone gives
   the same bits. */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__) && \
    !defined(__SANITIZE_ADDRESS__)
#define FASTNN_ELEMENTWISE __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FASTNN_ELEMENTWISE
#endif

/* The one template idiom of csrc/: a body written over a type T lives in a
   *_impl.h header, which its .c file includes once per dtype with T (float |
   double) and SFX (f32 | f64) defined; F(name) gives the name its dtype
   suffix (name_f32), and FASTNN_CAT is the one token-pasting macro (a_b). */
#define FASTNN_CAT_(a, b) a##_##b
#define FASTNN_CAT(a, b) FASTNN_CAT_(a, b)
#define F(name) FASTNN_CAT(name, SFX)

/* the activation table's properties, inline for the kernels (tables.c
   exports the same answers); FASTNN_EINVAL for an unknown code */
static inline int fastnn_internal_act_needs_z(int act)
{
    switch (act) {
#define FASTNN_X_(ID, name, needs_z, rowwise) case FASTNN_ACT_##ID: return needs_z;
    FASTNN_ACTIVATIONS(FASTNN_X_)
#undef FASTNN_X_
    default: return FASTNN_EINVAL;
    }
}

static inline int fastnn_internal_act_rowwise(int act)
{
    switch (act) {
#define FASTNN_X_(ID, name, needs_z, rowwise) case FASTNN_ACT_##ID: return rowwise;
    FASTNN_ACTIVATIONS(FASTNN_X_)
#undef FASTNN_X_
    default: return FASTNN_EINVAL;
    }
}

/* activations whose derivative reads the pre-activation z (the others need
   only the output y): the reference's NEEDS_PREACTIVATION, from the table */
static inline int fastnn_needs_preactivation(int act)
{
    return fastnn_internal_act_needs_z(act) == 1;
}

/* gemm.c: fn(ctx, lo, hi) over contiguous ranges of [0, n) that together
   cover it, on the GEMM's thread pool: as many ranges as `work` (elements
   touched) pays for, a single call on the caller's thread for small passes.
   For elementwise passes only: a reduction is never split. */
typedef void (*fastnn_range_fn)(const void *ctx, int64_t lo, int64_t hi);
void fastnn_internal_parallel_ranges(fastnn_range_fn fn, const void *ctx, int64_t n,
                                     int64_t work);

/* gemm.c: C (m x n, row stride ldc) = op(A) @ op(B) (as fastnn_gemm with
   beta 0 and no epilogue) for products of m*n*k <= FASTNN_GEMM_TINY_MNK,
   with fastnn_gemm's bits: element by element, each a chain over p in order
   from +0, fused multiply-adds on the FMA instruction sets as the direct
   kernels' vector FMAs, a product and a sum on the portable one.  For the
   trainer's tiny networks, where the direct kernels' set-up is most of a
   product's time.  Arguments trusted. */
#ifndef FASTNN_GEMM_TINY_MNK
#define FASTNN_GEMM_TINY_MNK 32
#endif
void fastnn_internal_gemm_tiny_f32(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                                   const float *A, int64_t lda, const float *B, int64_t ldb,
                                   float *C, int64_t ldc);
void fastnn_internal_gemm_tiny_f64(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                                   const double *A, int64_t lda, const double *B, int64_t ldb,
                                   double *C, int64_t ldc);

/* gemm.c: C (m x n) = op(A) @ op(B) (fastnn_gemm's arguments, beta 0)
   without ever storing C: every finished block of C is handed to the
   epilogue (fn not NULL), as fastnn_gemm's epilogue gets it, but in a
   scratch of the thread that computed it (ldc the block's row stride), valid
   only during that call.  The same bits as fastnn_gemm's C: the path (direct
   or packed), kc and the kernels are fastnn_gemm's; the direct path's blocks
   are panels of rows.  For the trainer's fused update (see train.c), whose
   gradient then needs no array of its own.  Arguments trusted. */
int fastnn_internal_gemm_blocks_f32(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                                    const float *A, int64_t lda, const float *B, int64_t ldb,
                                    const fastnn_epilogue *epilogue);
int fastnn_internal_gemm_blocks_f64(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                                    const double *A, int64_t lda, const double *B, int64_t ldb,
                                    const fastnn_epilogue *epilogue);

/* gemm.c: the cancel flag of the calling thread's training run (NULL when
   none), set by fastnn_train_run for its duration.  A packed GEMM started on
   this thread reads it before each k slice of each block of C (on whichever
   pool thread computes the block), skips the rest once it is non-zero and
   returns FASTNN_EINTERRUPTED, C then holding partial values. */
extern _Thread_local const volatile sig_atomic_t *fastnn_internal_cancel;

/* activations.c: y = act(x) on a rows x cols block, row strides ldx / ldy */
int fastnn_internal_act_forward_f32(int act, double alpha, double beta, int64_t rows,
                                    int64_t cols, const float *x, int64_t ldx,
                                    float *y, int64_t ldy);
int fastnn_internal_act_forward_f64(int act, double alpha, double beta, int64_t rows,
                                    int64_t cols, const double *x, int64_t ldx,
                                    double *y, int64_t ldy);
/* activations.c: dz = act'(dy) on a block, row stride ld (dz may alias dy) */
int fastnn_internal_act_backward_f32(int act, double alpha, double beta, int64_t rows,
                                     int64_t cols, const float *z,
                                     const float *y, const float *dy,
                                     float *dz, int64_t ld);
int fastnn_internal_act_backward_f64(int act, double alpha, double beta, int64_t rows,
                                     int64_t cols, const double *z,
                                     const double *y, const double *dy,
                                     double *dz, int64_t ld);
/* activations.c: the pairwise sum of x[0..n) */
float fastnn_internal_sum_f32(const float *x, int64_t n);
double fastnn_internal_sum_f64(const double *x, int64_t n);

/* losses.c: the trainer's losses, one per row of FASTNN_LOSSES, with one
   signature, that of fastnn_loss_* (fastnn.h) with the caller's scratch:
   work holds 2 * rows doubles, so the training loop, which owns that
   buffer, allocates nothing per batch; args is never NULL */
#define FASTNN_X_LOSS_DECL(ID, name, python_name, labels, params, vector)             \
    int fastnn_internal_loss_##name##_f32(int64_t rows, int64_t width, const float *pred, \
                                          const void *targets,                        \
                                          const fastnn_loss_args *args, int reduction, \
                                          double *loss, double *total, float *grad,   \
                                          double *work);                              \
    int fastnn_internal_loss_##name##_f64(int64_t rows, int64_t width, const double *pred,\
                                          const void *targets,                        \
                                          const fastnn_loss_args *args, int reduction, \
                                          double *loss, double *total, double *grad,  \
                                          double *work);
FASTNN_LOSSES(FASTNN_X_LOSS_DECL)
#undef FASTNN_X_LOSS_DECL

/* optim.c: what is known of one parameter's values and its optimizer state
   after an update: bounds on their magnitudes (measured by a tracking
   update, or proved) and whether a state value may have its sign bit set
   (known = 0: nothing is known) */
typedef struct {
    int known;
    double param;                       /* |p| <= param */
    double state[FASTNN_OPT_MAX_STATE]; /* |s_j| <= state[j] (0: unused) */
    int negative[FASTNN_OPT_MAX_STATE]; /* some s_j may be negative (or -0) */
} fastnn_opt_bounds;

/* optim.c: the parameter arrays one update covers: count arrays, the i-th
   of sizes[i] elements at params[i] (T), its gradient grads[i] and its
   optimizer state arrays states[i * FASTNN_OPT_MAX_STATE + q] (NULL where
   the optimizer keeps none, e.g. SGD without momentum) */
typedef struct {
    int64_t count;
    const int64_t *sizes;
    void *const *params;
    const void *const *grads;
    void *const *states;
} fastnn_opt_arrays;

/* optim.c: the passes of an update over its arrays: its dry run (nothing
   written: is every new value finite?), the update, and the update that
   also records the largest magnitudes it writes */
enum { FASTNN_OPT_DRY = 0, FASTNN_OPT_WRITE = 1, FASTNN_OPT_WRITE_TRACK = 2 };

/* optim.c: the update of optimizer opt (FASTNN_OPT_*) of every array of a
   (its constants prepared once: the same hyper-parameters, the row's hypers
   in order, and step, counting from 1, for all), with the caller's arguments
   trusted.  write = 1 is the update in place (returns FASTNN_OK); with
   bounds not NULL (a->count entries) it records there what it wrote.
   write = 0 is its dry run: the same arithmetic, nothing written;
   FASTNN_EDIVERGED if any new parameter or state value would be inf or NaN,
   else FASTNN_OK.  (A non-finite gradient always gives one.)
   FASTNN_EINVAL for an unknown optimizer, a missing state array or a step
   below 1, before anything is written. */
int fastnn_internal_opt_update_f32(int opt, int write, const fastnn_opt_arrays *a,
                                   int64_t step, const double *hyper,
                                   fastnn_opt_bounds *bounds);
int fastnn_internal_opt_update_f64(int opt, int write, const fastnn_opt_arrays *a,
                                   int64_t step, const double *hyper,
                                   fastnn_opt_bounds *bounds);

/* optim.c: with dry, the dry run of fastnn_internal_opt_update and then,
   when it passes, the update (without: the update alone, proved finite by
   the caller), with one preparation of the constants, on the calling
   thread: the same arithmetic and the same results, for the few thousand
   values of a tiny network, where the passes' set-up (the thread pool)
   costs more than the arithmetic.  With bounds, the update records the
   magnitudes it wrote, as fastnn_internal_opt_update does.
   FASTNN_EDIVERGED (nothing written), FASTNN_EINVAL as above. */
int fastnn_internal_opt_update_serial_f32(int opt, const fastnn_opt_arrays *a, int64_t step,
                                          const double *hyper, int dry,
                                          fastnn_opt_bounds *bounds);
int fastnn_internal_opt_update_serial_f64(int opt, const fastnn_opt_arrays *a, int64_t step,
                                          const double *hyper, int dry,
                                          fastnn_opt_bounds *bounds);

/* optim.c: one pass (FASTNN_OPT_DRY, _WRITE or _WRITE_TRACK) of the update
   of every array of a, as fastnn_internal_opt_update, applied piece by
   piece from any threads: for the trainer's fused update, which runs it on
   the blocks of dW in dW's GEMM epilogue, each block's gradient in the
   GEMM's scratch (see train.c).  A plan lives in plan_bytes(a->count) bytes
   of the caller's, 64-byte aligned, and holds a (not copied).  prepare sets
   its constants once (FASTNN_EINVAL: an unknown optimizer or pass, a
   missing state array, a step below 1); apply runs the pass on elements
   [off, off + n) of array i with their gradient at grad (n values, not the
   array's); finish, once every element was applied once, returns
   FASTNN_EDIVERGED when the dry run met a value that is not finite, and
   after FASTNN_OPT_WRITE_TRACK gives bounds (a->count entries) what was
   written.  The same arithmetic per element as fastnn_internal_opt_update,
   so the same bits. */
size_t fastnn_internal_opt_plan_bytes_f32(int64_t count);
size_t fastnn_internal_opt_plan_bytes_f64(int64_t count);
int fastnn_internal_opt_plan_prepare_f32(void *plan, int opt, int pass,
                                         const fastnn_opt_arrays *a, int64_t step,
                                         const double *hyper);
int fastnn_internal_opt_plan_prepare_f64(void *plan, int opt, int pass,
                                         const fastnn_opt_arrays *a, int64_t step,
                                         const double *hyper);
void fastnn_internal_opt_plan_apply_f32(void *plan, int64_t i, int64_t off, int64_t n,
                                        const float *grad);
void fastnn_internal_opt_plan_apply_f64(void *plan, int64_t i, int64_t off, int64_t n,
                                        const double *grad);
int fastnn_internal_opt_plan_finish_f32(void *plan, fastnn_opt_bounds *bounds);
int fastnn_internal_opt_plan_finish_f64(void *plan, fastnn_opt_bounds *bounds);

/* optim.c: the trainer's gradient pieces outside fastnn_clip_grad_value and
   fastnn_l2_penalty, with their bits: clamp clamps n values of g to [-v, v]
   (v rounded to T, NaN kept); l2_add adds c w to n values of dw (c as
   fastnn_l2_penalty rounds it); l2_loss is fastnn_l2_penalty's *penalty
   without touching any gradient.  Arguments trusted. */
void fastnn_internal_clamp_f32(float *g, int64_t n, float v);
void fastnn_internal_clamp_f64(double *g, int64_t n, double v);
void fastnn_internal_l2_add_f32(float *dw, const float *w, int64_t n, float c);
void fastnn_internal_l2_add_f64(double *dw, const double *w, int64_t n, double c);
double fastnn_internal_l2_loss_f32(int64_t count, const int64_t *sizes,
                                   const float *const *W, double alpha, double total);
double fastnn_internal_l2_loss_f64(int64_t count, const int64_t *sizes,
                                   const double *const *W, double alpha, double total);

/* optim.c: bounds[i] (a->count entries) on what array i of a holds now: its
   parameter's and every state array's largest magnitude (+inf for an inf or
   NaN) and the states' sign bits, as a tracking update records what it
   writes, for every state array that is there (whichever the optimizer's
   mode uses).  One read of every array, split across threads (a largest
   value and an or: the same for any split).  The trainer measures them at
   the start of each run, so that its first batch can be proved too. */
void fastnn_internal_opt_measure_f32(const fastnn_opt_arrays *a, fastnn_opt_bounds *bounds);
void fastnn_internal_opt_measure_f64(const fastnn_opt_arrays *a, fastnn_opt_bounds *bounds);

/* optim.c: 1 when the update of every array of a would give only finite
   values, for every parameter and state within its bounds[i] (known) and
   every |grad| <= grad_max[i], proved by bounding each operation of the
   formula in double with a margin for T's rounding; next[i] then gets
   bounds on what the update will write (the proof's own, so the next batch
   can be proved without a look at the arrays).  0 when it cannot tell
   (unknown bounds, a non-finite grad_max, values near T's overflow, an
   invalid optimizer).  The training loop's dry run is needed only when it
   says 0: a proof costs a few operations, the dry run a pass over every
   array. */
int fastnn_internal_opt_safe_f32(int opt, const fastnn_opt_arrays *a, int64_t step,
                                 const double *hyper, const fastnn_opt_bounds *bounds,
                                 const double *grad_max, fastnn_opt_bounds *next);
int fastnn_internal_opt_safe_f64(int opt, const fastnn_opt_arrays *a, int64_t step,
                                 const double *hyper, const fastnn_opt_bounds *bounds,
                                 const double *grad_max, fastnn_opt_bounds *next);

/* optim.c: max |x| over a rows x cols block of row stride ld, as a double;
   +inf when some element is inf or NaN */
double fastnn_internal_max_abs_f32(const float *x, int64_t rows, int64_t cols, int64_t ld);
double fastnn_internal_max_abs_f64(const double *x, int64_t rows, int64_t cols, int64_t ld);

/* dense.c: C[i, j] += b[j] over a rows x cols block of row stride ldc (b does
   not alias C); db[j] = the sum over the n rows of d[i, j], row after row
   (d n x cols, C-contiguous, not aliasing db) */
void fastnn_internal_add_bias_f32(int64_t rows, int64_t cols, float *C, int64_t ldc,
                                  const float *b);
void fastnn_internal_add_bias_f64(int64_t rows, int64_t cols, double *C, int64_t ldc,
                                  const double *b);
void fastnn_internal_sum_rows_f32(int64_t n, int64_t cols, const float *d, float *db);
void fastnn_internal_sum_rows_f64(int64_t n, int64_t cols, const double *d, double *db);

/* dense.c: fastnn_dense_backward in its two halves, for the trainer, which
   runs the first of every layer before the second of any: dx computes
   dZ = act'(dY) (dZ may alias dY), db (may be NULL) and dX = dZ W^T (dX may
   be NULL); dw computes dW = X^T dZ with an epilogue on its finished blocks
   (may be NULL). */
int fastnn_internal_dense_backward_dx_f32(int64_t n, int64_t n_in, int64_t n_out,
                                          const float *W, const float *Z, const float *Y,
                                          const float *dY, int act, double alpha, double beta,
                                          float *dZ, float *dX, float *db);
int fastnn_internal_dense_backward_dx_f64(int64_t n, int64_t n_in, int64_t n_out,
                                          const double *W, const double *Z, const double *Y,
                                          const double *dY, int act, double alpha, double beta,
                                          double *dZ, double *dX, double *db);
int fastnn_internal_dense_backward_dw_f32(int64_t n, int64_t n_in, int64_t n_out,
                                          const float *X, const float *dZ, float *dW,
                                          const fastnn_epilogue *epilogue);
int fastnn_internal_dense_backward_dw_f64(int64_t n, int64_t n_in, int64_t n_out,
                                          const double *X, const double *dZ, double *dW,
                                          const fastnn_epilogue *epilogue);

#endif /* FASTNN_INTERNAL_H */
