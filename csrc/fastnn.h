/*
 * fastnn.h -- the one C header of fastnn's compiled backend.
 *
 * Why it looks like this: every kernel is a plain function over raw,
 * C-contiguous, row-major arrays with 64-bit sizes, and returns an int status
 * (FASTNN_OK or a negative FASTNN_E* code).  Nothing here prints, exits or
 * aborts; the Cython wrapper validates shapes and dtypes while holding the GIL,
 * calls these functions with the GIL released, and turns a non-zero status into
 * a Python exception.  Each kernel exists for float (_f32) and double (_f64),
 * generated from one templated body.  The formulas are those of the NumPy
 * reference backend (fastnn/backends/numpy_ops.py), which is the spec.
 */
#ifndef FASTNN_H
#define FASTNN_H

#include <signal.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes ------------------------------------------------------ */
#define FASTNN_OK 0
#define FASTNN_ENOMEM (-1)       /* an allocation failed */
#define FASTNN_EINVAL (-2)       /* an argument is out of range */
#define FASTNN_EUNSUPPORTED (-3) /* the CPU lacks the requested ISA */
#define FASTNN_EINTERRUPTED (-4) /* stopped on request: the trainer's cancel flag */
#define FASTNN_EDIVERGED (-5)    /* a training loss or gradient was NaN or inf */
#define FASTNN_EZEROWEIGHT (-6)  /* reduction mean over a batch whose weights sum to 0 */

/* ---- the tables: one declaration per concept (X-macros) ----------------
 * Each list below is the one place a concept is declared.  The codes, the
 * counts, the name tables (fastnn_*_name below) and every dispatch in the C
 * files expand from it; the Cython wrapper reads the names and properties at
 * run time, and tests/test_tables.py checks them against the Python
 * reference's tables (fastnn/backends/numpy_ops.py), name by name.  A code is
 * the row's position.  Every dispatch lists the rows and returns
 * FASTNN_EINVAL for any other code: nothing is chosen by default.
 *
 * Activations: X(ID, name, needs_z, rowwise).  needs_z: the derivative reads
 * the pre-activation z (the others read the output y; identity reads
 * neither) -- the reference's NEEDS_PREACTIVATION.  rowwise: the value of an
 * element depends on its whole row (softmax), so a row is never split.
 * activations_impl.h defines, for each row, name_forward and name_backward
 * over one span of a row.  Every activation kernel takes two parameters,
 * alpha and beta (read only by the rows that have them: leaky_relu's slope
 * and elu's alpha are alpha; softplus's threshold is alpha and its beta is
 * beta); gelu_tanh is GELU with approximate="tanh".
 */
#define FASTNN_ACTIVATIONS(X)            \
    X(IDENTITY, identity, 0, 0)          \
    X(SIGMOID, sigmoid, 0, 0)            \
    X(TANH, tanh, 0, 0)                  \
    X(RELU, relu, 0, 0)                  \
    X(LEAKY_RELU, leaky_relu, 1, 0)      \
    X(SILU, silu, 1, 0)                  \
    X(SOFTMAX, softmax, 0, 1)            \
    X(GELU, gelu, 1, 0)                  \
    X(GELU_TANH, gelu_tanh, 1, 0)        \
    X(ELU, elu, 1, 0)                    \
    X(SELU, selu, 1, 0)                  \
    X(SOFTPLUS, softplus, 1, 0)          \
    X(MISH, mish, 1, 0)

/* Losses: X(ID, name, python_name, labels, params, vector).  labels: the
 * targets are int64 class indices (else T values shaped like the output).
 * params: the names of fastnn_loss_args.param[0 ..), space separated, as the
 * Python loss names them; vector: the name of the loss's per-output weight
 * vector (fastnn_loss_args.weight), "" for none.  losses_impl.h defines
 * fastnn_internal_loss_<name> for each row.  The sk_ rows are scikit-learn's
 * MLP losses for fastnn.sklearn (squared_loss, binary_log_loss on logistic
 * outputs, log_loss on a softmax), with its output delta as gradient. */
#define FASTNN_LOSSES(X)                                                              \
    X(MSE, mse, "mse", 0, "", "")                                                     \
    X(BCE, bce, "bce", 0, "", "")                                                     \
    X(XENT_LABELS, xent_labels, "cross_entropy", 1, "label_smoothing", "weight")      \
    X(XENT_PROBS, xent_probs, "cross_entropy", 0, "label_smoothing", "weight")        \
    X(L1, l1, "l1", 0, "", "")                                                        \
    X(HUBER, huber, "huber", 0, "delta", "")                                          \
    X(SMOOTH_L1, smooth_l1, "smooth_l1", 0, "beta", "")                               \
    X(BCE_LOGITS, bce_logits, "bce_with_logits", 0, "", "pos_weight")                \
    X(SK_SQUARED_ERROR, sk_squared_error, "sk_squared_error", 0, "", "")              \
    X(SK_LOGISTIC, sk_logistic, "sk_logistic", 0, "", "")                             \
    X(SK_SOFTMAX, sk_softmax, "sk_softmax", 1, "", "")

/* Optimizers: X(ID, name, n_state, n_hyper, root, hypers).  n_state: the state
 * arrays per parameter (fastnn_stage.state_W / state_b, in this order; an
 * entry the hyper-parameters do not use may be NULL, e.g. SGD's velocity
 * without momentum); root: 1 when each element's update takes a square
 * root and a division (so its dry run costs about what the update does,
 * and the trainer proves updates finite from fewer parameters, see
 * proof_run in train.c); hypers: the names of fastnn_train_spec.hyper[0 ..
 * n_hyper), space separated, as the Python optimizer's spec names them
 * (booleans are 0/1).  optim_impl.h defines, for each row, name_k (its
 * per-step constants), name_prepare and name_elem (its update of one
 * element).  States: SGD velocity; Adam and AdamW m, v, max v (amsgrad);
 * RMSprop square_avg, momentum_buffer, grad_avg (centered); Adagrad sum;
 * sk_sgd and sk_adam, scikit-learn's SGD and Adam (fastnn.sklearn): the
 * velocity; m, v. */
#define FASTNN_OPTIMIZERS(X)                                                     \
    X(SGD, sgd, 1, 4, 0, "lr momentum weight_decay nesterov")                    \
    X(ADAM, adam, 3, 6, 1, "lr beta1 beta2 eps weight_decay amsgrad")            \
    X(ADAMW, adamw, 3, 6, 1, "lr beta1 beta2 eps weight_decay amsgrad")          \
    X(RMSPROP, rmsprop, 3, 6, 1, "lr alpha eps weight_decay momentum centered")  \
    X(ADAGRAD, adagrad, 1, 4, 1, "lr lr_decay weight_decay eps")                 \
    X(SK_SGD, sk_sgd, 1, 3, 0, "lr momentum nesterov")                           \
    X(SK_ADAM, sk_adam, 2, 4, 1, "lr beta1 beta2 eps")

/* Metrics of fit and evaluate: X(ID, name, labels).  Each is a mean over
 * a batch of outputs pred (rows x cols) and its targets: labels, int64 class
 * indices (rows); else T values shaped like pred.  metrics.c defines them:
 * mae = mean |pred - t|, mse = mean (pred - t)^2 (the terms in double,
 * summed in NumPy's pairwise order), binary_accuracy = the fraction of the
 * rows x cols outputs on the same side of 0.5 as their target,
 * argmax_accuracy = the fraction of rows whose largest output (the first
 * one, a NaN counting as largest, as numpy.argmax) is at the largest
 * target's place, label_accuracy = the same against the label. */
#define FASTNN_METRICS(X)                     \
    X(MAE, mae, 0)                            \
    X(MSE, mse, 0)                            \
    X(BINARY_ACCURACY, binary_accuracy, 0)    \
    X(ARGMAX_ACCURACY, argmax_accuracy, 0)    \
    X(LABEL_ACCURACY, label_accuracy, 1)

/* Loss reductions: X(ID, name). */
#define FASTNN_REDUCTIONS(X) \
    X(MEAN, mean)            \
    X(SUM, sum)

/* Instruction sets (dispatch.c): X(ID, name), in increasing order. */
#define FASTNN_ISAS(X)   \
    X(GENERIC, generic)  \
    X(AVX2, avx2)     /* AVX2 + FMA */ \
    X(AVX512, avx512) /* AVX-512F */

/* the largest n_state and n_hyper of any optimizer (checked in tables.c) */
#define FASTNN_OPT_MAX_STATE 3
#define FASTNN_OPT_MAX_HYPER 8
/* the largest number of params of any loss (checked by tests/test_tables.py) */
#define FASTNN_LOSS_MAX_PARAM 2

#define FASTNN_X_ACT_CODE(ID, name, needs_z, rowwise) FASTNN_ACT_##ID,
#define FASTNN_X_LOSS_CODE(ID, name, python_name, labels, params, vector) FASTNN_LOSS_##ID,
#define FASTNN_X_OPT_CODE(ID, name, n_state, n_hyper, root, hypers) FASTNN_OPT_##ID,
#define FASTNN_X_REDUCTION_CODE(ID, name) FASTNN_REDUCTION_##ID,
#define FASTNN_X_METRIC_CODE(ID, name, labels) FASTNN_METRIC_##ID,
#define FASTNN_X_ISA_CODE(ID, name) FASTNN_ISA_##ID,
enum { FASTNN_ACTIVATIONS(FASTNN_X_ACT_CODE) FASTNN_N_ACT };
enum { FASTNN_LOSSES(FASTNN_X_LOSS_CODE) FASTNN_N_LOSS };
enum { FASTNN_OPTIMIZERS(FASTNN_X_OPT_CODE) FASTNN_N_OPT };
enum { FASTNN_REDUCTIONS(FASTNN_X_REDUCTION_CODE) FASTNN_N_REDUCTION };
enum { FASTNN_METRICS(FASTNN_X_METRIC_CODE) FASTNN_N_METRIC };
enum { FASTNN_ISAS(FASTNN_X_ISA_CODE) FASTNN_N_ISA };

/* The tables at run time (tables.c), for the wrapper and its tests.  Each
 * returns NULL, or FASTNN_EINVAL, for a code outside [0, FASTNN_N_*). */
const char *fastnn_activation_name(int act);
int fastnn_activation_needs_z(int act);   /* 0 or 1 */
int fastnn_activation_rowwise(int act);   /* 0 or 1 */
const char *fastnn_loss_name(int loss);   /* the C row's name ("xent_labels") */
const char *fastnn_loss_python_name(int loss); /* the Python loss ("cross_entropy") */
int fastnn_loss_labels(int loss);         /* 0 or 1 */
const char *fastnn_loss_params(int loss); /* space separated ("" for none) */
const char *fastnn_loss_vector(int loss); /* the weight vector's name, "" for none */
const char *fastnn_optimizer_name(int opt);
int fastnn_optimizer_n_state(int opt);
int fastnn_optimizer_n_hyper(int opt);
int fastnn_optimizer_root(int opt);       /* 0 or 1 */
const char *fastnn_optimizer_hypers(int opt); /* space separated */
const char *fastnn_reduction_name(int reduction);
const char *fastnn_metric_name(int metric);
int fastnn_metric_labels(int metric);     /* 0 or 1 */

/* ---- instruction sets and threads (dispatch.c) ------------------------- */
int fastnn_cpu_isa(void);              /* best ISA this CPU supports */
int fastnn_get_isa(void);              /* ISA in use */
int fastnn_set_isa(int isa);           /* FASTNN_EUNSUPPORTED if the CPU lacks it */
const char *fastnn_isa_name(int isa);  /* "generic", "avx2", "avx512" or "unknown" */
int fastnn_set_num_threads(int n);     /* n >= 1; FASTNN_EINVAL otherwise */
int fastnn_get_num_threads(void);

/* ---- the machine's FMA peak (peak.c) ------------------------------------
 * *gflops = the multiply-add throughput (GFLOP/s, an FMA counted as 2 flops)
 * of the ISA in use (fastnn_get_isa) on fastnn_get_num_threads() threads at
 * once: independent FMA chains in registers, timed, the best of a few runs
 * (~0.1 s in all).  The generic ISA measures the compiler-vectorized C of
 * the portable kernels (a multiply and an add per element).  FASTNN_EINVAL
 * for a NULL gflops, FASTNN_ENOMEM.
 */
int fastnn_fma_peak_f32(double *gflops);
int fastnn_fma_peak_f64(double *gflops);

/* ---- GEMM (gemm.c) ------------------------------------------------------
 * C[m, n] = op(A) @ op(B)              (beta == 0, C is overwritten)
 * C[m, n] = op(A) @ op(B) + beta * C   (beta != 0)
 * op(A) is A (m x k, row stride lda) or, if trans_a, A stored as k x m.
 * op(B) is B (k x n, row stride ldb) or, if trans_b, B stored as n x k.
 * The epilogue, when not NULL, is called once for every finished block of C
 * (all of k accumulated), by the thread that computed it; dense.c uses it to
 * fuse bias and activation into the store.  Work is split across threads
 * over blocks of C only, never over k, so results do not depend on the
 * thread count.
 */
typedef struct fastnn_epilogue {
    void (*fn)(const void *ctx, int64_t row0, int64_t col0, int64_t rows,
               int64_t cols, void *C, int64_t ldc);
    const void *ctx;
} fastnn_epilogue;

int fastnn_gemm_f32(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                    const float *A, int64_t lda, const float *B, int64_t ldb,
                    float beta, float *C, int64_t ldc,
                    const fastnn_epilogue *epilogue);
int fastnn_gemm_f64(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                    const double *A, int64_t lda, const double *B, int64_t ldb,
                    double beta, double *C, int64_t ldc,
                    const fastnn_epilogue *epilogue);

/* ---- activations (activations.c); y may alias x, dz may alias dy ------- */
int fastnn_act_forward_f32(int act, double alpha, double beta, int64_t rows, int64_t cols,
                           const float *x, float *y);
int fastnn_act_forward_f64(int act, double alpha, double beta, int64_t rows, int64_t cols,
                           const double *x, double *y);
/* z (pre-activation) is read by the activations whose row has needs_z, y by
   the others but identity (which reads neither) */
int fastnn_act_backward_f32(int act, double alpha, double beta, int64_t rows, int64_t cols,
                            const float *z, const float *y, const float *dy,
                            float *dz);
int fastnn_act_backward_f64(int act, double alpha, double beta, int64_t rows, int64_t cols,
                            const double *z, const double *y, const double *dy,
                            double *dz);

/* ---- dense layer (dense.c) ----------------------------------------------
 * forward:  Z = X @ W + b;  Y = act(Z).   X: n x n_in, W: n_in x n_out,
 *           b: n_out or NULL, Z: n x n_out or NULL (not stored), Y: n x n_out.
 * backward: dZ = act'(dY);  dW = X^T @ dZ;  db = sum_rows(dZ);  dX = dZ @ W^T.
 *           dZ is a caller-owned n x n_out buffer (may alias dY); dX and db
 *           may be NULL.
 */
int fastnn_dense_forward_f32(int64_t n, int64_t n_in, int64_t n_out,
                             const float *X, const float *W, const float *b,
                             int act, double alpha, double beta, float *Z, float *Y);
int fastnn_dense_forward_f64(int64_t n, int64_t n_in, int64_t n_out,
                             const double *X, const double *W, const double *b,
                             int act, double alpha, double beta, double *Z, double *Y);
int fastnn_dense_backward_f32(int64_t n, int64_t n_in, int64_t n_out,
                              const float *X, const float *W, const float *Z,
                              const float *Y, const float *dY, int act,
                              double alpha, double beta, float *dZ, float *dX, float *dW,
                              float *db);
int fastnn_dense_backward_f64(int64_t n, int64_t n_in, int64_t n_out,
                              const double *X, const double *W, const double *Z,
                              const double *Y, const double *dY, int act,
                              double alpha, double beta, double *dZ, double *dX, double *dW,
                              double *db);

/* ---- losses (losses.c) --------------------------------------------------
 * Each writes the loss (accumulated in double) to *loss and, when grad is not
 * NULL, d loss / d pred to grad (same shape as pred).
 *
 * fastnn_loss_* computes any row of FASTNN_LOSSES (the code `loss`) with its
 * parameters and weights: pred is rows x width, targets rows int64 labels (a
 * row with labels) or rows x width T values.  A row's loss l_i is its terms'
 * sum (cross-entropy) or their mean over the width (the per-element losses,
 * for reduction mean; their sum for sum).  With sample weights w_i the batch
 * loss is sum_i w_i l_i, divided for reduction mean by the batch's total
 * weight sum_i w_i -- times the label's class weight for the cross-entropy
 * with labels and a weight vector, PyTorch's denominator -- so an integer
 * weight counts as that many copies of the row.  The sk_ rows (scikit-learn's
 * losses) divide by sum_i w_i only, never by the width, and their gradient is
 * scikit-learn's output delta (out - y, p - y) times w_i / sum_i w_i (see
 * losses_impl.h).  *total (may be NULL) gets
 * that total weight (rows when unweighted).  FASTNN_EZEROWEIGHT for reduction
 * mean when it is 0 (rows > 0); FASTNN_EINVAL for an unknown code or
 * reduction, a label out of range, or a parameter out of its range (Huber's
 * delta <= 0, smooth L1's beta < 0, label_smoothing outside [0, 1]).
 */
typedef struct fastnn_loss_args {
    double param[FASTNN_LOSS_MAX_PARAM]; /* the row's params, in its order */
    const double *weight;        /* the row's vector: width values, or NULL (none) */
    const double *sample_weight; /* rows weights >= 0, or NULL (all 1) */
} fastnn_loss_args;

int fastnn_loss_f32(int loss, int64_t rows, int64_t width, const float *pred,
                    const void *targets, const fastnn_loss_args *args, int reduction,
                    double *value, double *total, float *grad);
int fastnn_loss_f64(int loss, int64_t rows, int64_t width, const double *pred,
                    const void *targets, const fastnn_loss_args *args, int reduction,
                    double *value, double *total, double *grad);

/* the unweighted kernels of the first rows, as before */
int fastnn_mse_f32(int64_t size, const float *pred, const float *target,
                   int reduction, double *loss, float *grad);
int fastnn_mse_f64(int64_t size, const double *pred, const double *target,
                   int reduction, double *loss, double *grad);
int fastnn_bce_f32(int64_t size, const float *prob, const float *target,
                   int reduction, double *loss, float *grad);
int fastnn_bce_f64(int64_t size, const double *prob, const double *target,
                   int reduction, double *loss, double *grad);
/* labels: n int64 class indices in [0, c) */
int fastnn_xent_labels_f32(int64_t n, int64_t c, const float *logits,
                           const int64_t *labels, int reduction, double *loss,
                           float *grad);
int fastnn_xent_labels_f64(int64_t n, int64_t c, const double *logits,
                           const int64_t *labels, int reduction, double *loss,
                           double *grad);
/* probs: n x c target probabilities */
int fastnn_xent_probs_f32(int64_t n, int64_t c, const float *logits,
                          const float *probs, int reduction, double *loss,
                          float *grad);
int fastnn_xent_probs_f64(int64_t n, int64_t c, const double *logits,
                          const double *probs, int reduction, double *loss,
                          double *grad);

/* ---- optimizers (optim.c), in place, one pass, no temporaries ---------- */
/* One update of optimizer `opt` (FASTNN_OPT_*), the same for every row of
 * FASTNN_OPTIMIZERS: state holds the row's n_state arrays of `size` elements
 * (an entry may be NULL where the hyper-parameters need none, e.g. SGD
 * without momentum), hyper its n_hyper values in the row's order, step
 * counts from 1.  FASTNN_EINVAL for an unknown code or a missing array. */
int fastnn_optimizer_update_f32(int opt, int64_t size, float *param,
                                const float *grad, float *const *state,
                                const double *hyper, int64_t step);
int fastnn_optimizer_update_f64(int opt, int64_t size, double *param,
                                const double *grad, double *const *state,
                                const double *hyper, int64_t step);
/* ---- gradient clipping (optim.c), in place, over a set of arrays ------
 * count gradient arrays, the i-th of sizes[i] elements at grads[i], as
 * torch.nn.utils.clip_grad_norm_ / clip_grad_value_ define it.
 * norm: total = sqrt(sum over the arrays of sum g^2), summed in double in a
 * fixed order (arrays in turn, each by 8 interleaved partial sums, never
 * split across threads, so the result does not depend on the thread count);
 * c = max_norm / (total + 1e-6) in double; unless c >= 1 (so also for a NaN
 * c), every g *= c rounded to T.  *total gets the norm (inf or NaN when a
 * gradient is).  value: g = min(max(g, -v), v) with v rounded to T (NaN
 * stays NaN).  FASTNN_EINVAL for count < 0, a negative size, a NULL array
 * of non-zero size, a NULL total, or a negative or NaN max_norm / v. */
int fastnn_clip_grad_norm_f32(int64_t count, const int64_t *sizes, float *const *grads,
                              double max_norm, double *total);
int fastnn_clip_grad_norm_f64(int64_t count, const int64_t *sizes, double *const *grads,
                              double max_norm, double *total);
int fastnn_clip_grad_value_f32(int64_t count, const int64_t *sizes, float *const *grads,
                               double clip_value);
int fastnn_clip_grad_value_f64(int64_t count, const int64_t *sizes, double *const *grads,
                               double clip_value);

/* scikit-learn's L2 penalty on count weight arrays W[i] (sizes[i]
 * elements) with their gradients dW[i], in place: every dW += c W with c =
 * alpha / total rounded to T, and *penalty = 0.5 alpha S / total, S = the
 * sum over the arrays, in order, of each one's sum of W^2 in double (8
 * interleaved partial sums combined in a fixed order; one thread, so the
 * same bits for any thread count).  The trainer's penalty (spec l2_alpha)
 * is this function over its dense stages' W.  FASTNN_EINVAL: alpha negative,
 * NaN or infinite, a negative size or a NULL array of non-zero size;
 * FASTNN_EZEROWEIGHT: total <= 0 or NaN (nothing written). */
int fastnn_l2_penalty_f32(int64_t count, const int64_t *sizes, const float *const *W,
                          float *const *dW, double alpha, double total, double *penalty);
int fastnn_l2_penalty_f64(int64_t count, const int64_t *sizes, const double *const *W,
                          double *const *dW, double alpha, double total, double *penalty);

/* The proof the trainer uses to skip the dry run of an update, on these
 * arrays (nothing is written): 1 when every new value of the update above
 * is proved finite from the largest magnitudes of param, grad and state
 * (and the state's signs), bounding each operation of the formula with a
 * margin for rounding; 0 when it cannot tell; FASTNN_EINVAL as above.  When
 * it proves and next is not NULL, next gets the bounds the trainer carries
 * to the following batch: |new param| <= next[0], |new state j| <=
 * next[1 + j], and next[1 + FASTNN_OPT_MAX_STATE + j] is 0 when state j is
 * proved non-negative (1 + 2 * FASTNN_OPT_MAX_STATE doubles). */
int fastnn_optimizer_update_proof_f32(int opt, int64_t size, const float *param,
                                      const float *grad, float *const *state,
                                      const double *hyper, int64_t step, double *next);
int fastnn_optimizer_update_proof_f64(int opt, int64_t size, const double *param,
                                      const double *grad, double *const *state,
                                      const double *hyper, int64_t step, double *next);

/* ---- metrics (metrics.c) -------------------------------------------------
 * *value = metric `metric` (FASTNN_METRIC_*) of pred (rows x cols) against
 * target: rows int64 labels for a row with labels, else rows x cols values.
 * rows >= 1, cols >= 1; FASTNN_EINVAL for an unknown code or a NULL array.
 */
int fastnn_metric_f32(int metric, int64_t rows, int64_t cols, const float *pred,
                      const void *target, double *value);
int fastnn_metric_f64(int metric, int64_t rows, int64_t cols, const double *pred,
                      const void *target, double *value);

/* ---- counter-based randomness and dropout (rng.c) ---------------------- */
uint64_t fastnn_rng_bits(uint64_t seed, uint64_t step, uint64_t index);
/* mask[i] = (u(seed, step, i) >= p) ? 1 / (1 - p) : 0;  y = x * mask */
int fastnn_dropout_f32(int64_t size, double p, uint64_t seed, uint64_t step,
                       const float *x, float *mask, float *y);
int fastnn_dropout_f64(int64_t size, double p, uint64_t seed, uint64_t step,
                       const double *x, double *mask, double *y);
/* dx = dy * mask (dx may alias dy) */
int fastnn_dropout_backward_f32(int64_t size, const float *dy, const float *mask,
                                float *dx);
int fastnn_dropout_backward_f64(int64_t size, const double *dy, const double *mask,
                                double *dx);

/* ---- BatchNorm1d and LayerNorm (norm.c) ----------------------------------
 * X is (n, d) row-major; weight/bias (d,) or NULL (no affine parameters).
 * Means and variances (biased) are summed in double, in index order, in one
 * thread; mean/var (BatchNorm1d, per column) and rstd = 1 / sqrt(var + eps)
 * (LayerNorm, per row) are double.  work: 2 d doubles of scratch.  A
 * BatchNorm1d training batch needs n >= 2 (FASTNN_EINVAL otherwise). */
int fastnn_batchnorm_forward_f32(int64_t n, int64_t d, const float *x, const float *w,
        const float *b, double eps, float *y, float *xhat, double *mean, double *var);
int fastnn_batchnorm_forward_f64(int64_t n, int64_t d, const double *x, const double *w,
        const double *b, double eps, double *y, double *xhat, double *mean, double *var);
int fastnn_batchnorm_eval_f32(int64_t n, int64_t d, const float *x, const float *rmean,
        const float *rvar, const float *w, const float *b, double eps, float *y);
int fastnn_batchnorm_eval_f64(int64_t n, int64_t d, const double *x, const double *rmean,
        const double *rvar, const double *w, const double *b, double eps, double *y);
int fastnn_batchnorm_backward_f32(int64_t n, int64_t d, const float *dy, const float
        *xhat, const double *var, const float *w, double eps, float *dx, float *dw, float
        *db, double *work);
int fastnn_batchnorm_backward_f64(int64_t n, int64_t d, const double *dy, const double
        *xhat, const double *var, const double *w, double eps, double *dx, double *dw,
        double *db, double *work);
int fastnn_layernorm_forward_f32(int64_t n, int64_t d, const float *x, const float *w,
        const float *b, double eps, float *y, float *xhat, double *rstd);
int fastnn_layernorm_forward_f64(int64_t n, int64_t d, const double *x, const double *w,
        const double *b, double eps, double *y, double *xhat, double *rstd);
int fastnn_layernorm_backward_f32(int64_t n, int64_t d, const float *dy, const float
        *xhat, const double *rstd, const float *w, float *dx, float *dw, float *db, double
        *work);
int fastnn_layernorm_backward_f64(int64_t n, int64_t d, const double *dy, const double
        *xhat, const double *rstd, const double *w, double *dx, double *dw, double *db,
        double *work);

/* ---- whole training epochs (train.c) -------------------------------------
 * The network's plan as a flat list of stages, the loss and the optimizer;
 * a trainer owns the workspace for one fit (allocated once) and runs batches
 * forward, loss, backward and update without returning to Python.  The
 * formulas are those of the kernels above, applied in the order of the
 * reference loop in fastnn/network.py (Network.fit).
 */
#define FASTNN_STAGE_DENSE 0      /* Y = act(X @ W + b) */
#define FASTNN_STAGE_ACTIVATION 1 /* Y = act(X) */
#define FASTNN_STAGE_DROPOUT 2    /* Y = X * mask(seed, step) */
#define FASTNN_STAGE_BATCHNORM 3  /* BatchNorm1d in training mode (batch statistics) */
#define FASTNN_STAGE_LAYERNORM 4  /* LayerNorm over each row */

typedef struct fastnn_stage {
    int kind;                   /* FASTNN_STAGE_* */
    int64_t width_in, width_out;
    int act;                    /* dense (fused) or activation stage */
    double alpha, beta;         /* the activation's parameters (FASTNN_ACTIVATIONS) */
    void *W, *b;                /* dense: parameters (b may be NULL) */
    void *dW, *db;              /* dense: gradients of the last batch, or both
                                   NULL in every dense stage: the trainer keeps
                                   its own (see fastnn_trainer_fused) */
    /* the optimizer's state arrays, FASTNN_OPTIMIZERS' n_state of them
       (in the order of FASTNN_OPTIMIZERS' note; NULL where unused) */
    void *state_W[FASTNN_OPT_MAX_STATE], *state_b[FASTNN_OPT_MAX_STATE];
    double p;                   /* dropout probability */
    uint64_t seed, step;        /* dropout stream; step advances per batch */
    /* norm stages (width_in == width_out): W, b, dW, db, state_W and state_b
       are weight, bias, their gradients and state (all NULL: no affine
       parameters); eps; BatchNorm1d's running statistics (width_out values of
       T each), updated with the unbiased batch variance only when a batch's
       update is applied, by momentum or (momentum_none) the cumulative average
       1 / num_batches_tracked, as torch.nn.BatchNorm1d */
    double eps, momentum;
    int momentum_none;
    void *running_mean, *running_var;
    int64_t num_batches_tracked;
} fastnn_stage;

typedef struct fastnn_train_spec {
    int loss, reduction, optimizer; /* FASTNN_LOSS_*, _REDUCTION_*, _OPT_* */
    double hyper[FASTNN_OPT_MAX_HYPER]; /* in the order of the optimizer's row */
    int64_t step;               /* the update count; advances per batch */
    /* the loss's params and weight vector; sample_weight: NULL, or one weight
       per sample of X (X's order), which each batch gathers with its rows */
    fastnn_loss_args loss_args;
    /* gradient clipping after each backward, before the update (as
       fastnn_clip_grad_norm / _value; the norm first when both are on) */
    int clip_norm_on, clip_value_on;
    double clip_norm, clip_value;
    /* A schedule that changes the hyper-parameters every batch (OneCycleLR):
     * NULL, or hyper_rows rows of FASTNN_OPT_MAX_HYPER values (the row's
     * order, as hyper); batch number hyper_row (from 0, counted over the
     * trainer's runs) is updated with row hyper_row instead of hyper, and
     * hyper_row advances with each applied batch.  A batch past the last row
     * is FASTNN_EINVAL, before anything of it is computed. */
    const double *hyper_table;
    int64_t hyper_rows, hyper_row;
    /* scikit-learn's L2 penalty, l2_alpha >= 0 (0: off): after each
     * backward, before clipping and the update, every dense stage's dW gets
     * (l2_alpha / total) W added (W before the update; not b, not the norm
     * stages) and the batch's loss 0.5 l2_alpha sum ||W||^2 / total, total
     * the batch's total weight (see fastnn_l2_penalty) */
    double l2_alpha;
    /* reduction mean: losses[e] of fastnn_train_run accumulates each batch's
     * loss times its rows (scikit-learn's epoch loss, also with sample
     * weights) instead of times its total weight */
    int loss_by_rows;
} fastnn_train_spec;

typedef struct fastnn_trainer fastnn_trainer;

/* stages and spec must outlive the trainer; they are updated in place */
int fastnn_trainer_new_f32(fastnn_trainer **out, fastnn_stage *stages,
                           int64_t n_stages, fastnn_train_spec *spec,
                           int64_t n_features, int64_t batch);
int fastnn_trainer_new_f64(fastnn_trainer **out, fastnn_stage *stages,
                           int64_t n_stages, fastnn_train_spec *spec,
                           int64_t n_features, int64_t batch);
void fastnn_trainer_free(fastnn_trainer *t);

/* The trainer's cancel flag (NULL, the default: none).  While it is non-zero
 * fastnn_train_run stops with FASTNN_EINTERRUPTED: it looks between batches,
 * between the stages of a batch (forward and backward), before the update,
 * and inside every large GEMM (once per k slice of a block of C), so even
 * one long batch stops within milliseconds (a tiny network's batch, see
 * fastnn_trainer_set_tiny, takes microseconds: it looks only before its
 * update).  A batch it stops in is not
 * applied: the parameters, the optimizer state, the step counts (Adam's,
 * dropout's) and losses[] are those left by the last completed batch and the
 * position is that batch's; only the gradient buffers (dW, db) may hold
 * partial values.  The flag is only read, so a signal handler may set it.
 */
void fastnn_trainer_set_cancel(fastnn_trainer *t, const volatile sig_atomic_t *flag);

/* How many batches so far needed the dry run of their update.  A batch's
 * update is applied only when every new value is finite: proved, for the
 * price of a few operations per parameter array, from bounds on the
 * parameters and optimizer state (measured at the start of each
 * fastnn_train_run call and by the last update that needed the dry run,
 * carried forward by each proof) and on the batch's gradients (from its
 * layers' inputs and dZ), or, when the proof fails (values near overflow, a
 * non-finite gradient; every batch of a network of fewer than a few
 * thousand parameters, for which the dry run is cheaper), checked by a dry
 * run of the update.  -1 for NULL. */
int64_t fastnn_trainer_exact_checks(const fastnn_trainer *t);

/* Whether the last fastnn_train_run fused each update into dW's GEMM: the
 * stages were given no dW and db (the trainer keeps its own), the update is
 * proved finite (a network of a few thousand parameters or more, no norm
 * stage), no clipping by norm and not the tiny path.  Such a run never
 * stores a whole dW: each finished block of it is updated from in cache
 * (a batch whose update the proof cannot carry computes the dW blocks
 * twice: the dry run, then the update).  -1 for NULL. */
int fastnn_trainer_fused(const fastnn_trainer *t);

/* Tiny networks (a few hundred multiply-adds per layer and batch, no
 * dropout) run each batch in one pass of their own, the products written out
 * element by element, which gives the same bits as the general path (the
 * same products, in the same order).  on = 0 makes this trainer take the
 * general path (for tests that compare the two), on = 1 the tiny one
 * wherever the network fits it (the default), on = -1 changes nothing.
 * Returns whether the tiny path is now taken, FASTNN_EINVAL for NULL. */
int fastnn_trainer_set_tiny(fastnn_trainer *t, int on);

/* Train from batch position (*epoch, *start) on: X is n x n_features,
 * targets n x t_width (float; t_width 1 for labels, given as int64), orders
 * is n_epochs x n sample indices (NULL: in order).  Stops after max_batches
 * batches or at the end of epoch n_epochs - 1, and stores the position
 * reached.  losses[e] accumulates epoch e's batch losses (times the batch's
 * total weight, see fastnn_loss_*, for reduction mean: its rows when
 * unweighted; times its rows with the spec's loss_by_rows).
 * FASTNN_EZEROWEIGHT: a batch's total weight is 0 (reduction
 * mean, or with the L2 penalty), before anything of it is written.  A batch whose loss is NaN or infinite, or whose
 * update would make any parameter or optimizer state value NaN or infinite,
 * stops the run with FASTNN_EDIVERGED before anything is written, so the
 * parameters and optimizer state are those left by the last good batch and
 * the position is that batch's.  FASTNN_EINTERRUPTED: stopped by the cancel
 * flag (fastnn_trainer_set_cancel), likewise with nothing of the unfinished
 * batch applied.  All arguments are checked by the caller.
 */
int fastnn_train_run_f32(fastnn_trainer *t, const float *X, const void *targets,
                         int64_t n, int64_t t_width, const int64_t *orders,
                         int64_t n_epochs, int64_t *epoch, int64_t *start,
                         int64_t max_batches, double *losses);
int fastnn_train_run_f64(fastnn_trainer *t, const double *X, const void *targets,
                         int64_t n, int64_t t_width, const int64_t *orders,
                         int64_t n_epochs, int64_t *epoch, int64_t *start,
                         int64_t max_batches, double *losses);

/* One forward and backward pass over rows n <= the trainer's batch size of
 * X (n x n_features) and targets (as fastnn_train_run's, in order; the
 * spec's sample weights, if any, are those of these rows), with the L2
 * penalty (spec l2_alpha): *loss gets the loss plus the penalty, and every
 * stage's dW and db the gradient -- scikit-learn's _loss_grad_lbfgs.  No
 * clipping, no update: the parameters, the optimizer state and the step
 * count stay as they are (a dropout stage draws its mask, and advances its
 * step, as in a training batch; BatchNorm1d uses the rows' statistics and
 * leaves its running ones).  FASTNN_EDIVERGED: the loss is NaN or
 * infinite; FASTNN_EZEROWEIGHT: the rows' total weight is 0 (reduction
 * mean, or with the penalty).  All arguments are checked by the caller. */
/* (FASTNN_EINVAL when the stages were given no dW and db.) */
int fastnn_train_gradient_f32(fastnn_trainer *t, const float *X, const void *targets,
                              int64_t n, double *loss);
int fastnn_train_gradient_f64(fastnn_trainer *t, const double *X, const void *targets,
                              int64_t n, double *loss);

#ifdef __cplusplus
}
#endif

#endif /* FASTNN_H */
