"""Declarations of csrc/fastnn.h for Cython.

Why it is built this way: Cython needs the functions' and structs'
signatures, which are declared here as they are in the header.  The tables
(activations, losses, optimizers, reductions, ISAs: fastnn.h's X-macros) are
not listed here: only their counts and the functions that read them at run
time (``fastnn_activation_name`` ...), plus the few codes the wrapper names
itself.  tests/test_tables.py checks the run-time tables against the Python
reference's.
"""

from libc.stdint cimport int64_t, uint64_t

cdef extern from "fastnn.h" nogil:
    enum: FASTNN_OK
    enum: FASTNN_ENOMEM
    enum: FASTNN_EINVAL
    enum: FASTNN_EUNSUPPORTED
    enum: FASTNN_EINTERRUPTED
    enum: FASTNN_EDIVERGED
    enum: FASTNN_EZEROWEIGHT
    # the tables (fastnn.h's X-macros): counts, and the codes the wrapper names
    enum: FASTNN_N_ACT
    enum: FASTNN_N_LOSS
    enum: FASTNN_N_OPT
    enum: FASTNN_N_REDUCTION
    enum: FASTNN_N_METRIC
    enum: FASTNN_N_ISA
    enum: FASTNN_OPT_MAX_STATE
    enum: FASTNN_OPT_MAX_HYPER
    enum: FASTNN_LOSS_MAX_PARAM
    enum: FASTNN_ACT_IDENTITY
    enum: FASTNN_ACT_LEAKY_RELU
    const char *fastnn_activation_name(int act)
    int fastnn_activation_needs_z(int act)
    int fastnn_activation_rowwise(int act)
    const char *fastnn_loss_name(int loss)
    const char *fastnn_loss_python_name(int loss)
    int fastnn_loss_labels(int loss)
    const char *fastnn_loss_params(int loss)
    const char *fastnn_loss_vector(int loss)
    const char *fastnn_optimizer_name(int opt)
    int fastnn_optimizer_n_state(int opt)
    int fastnn_optimizer_n_hyper(int opt)
    int fastnn_optimizer_root(int opt)
    const char *fastnn_optimizer_hypers(int opt)
    const char *fastnn_reduction_name(int reduction)
    const char *fastnn_metric_name(int metric)
    int fastnn_metric_labels(int metric)

    ctypedef struct fastnn_epilogue:
        void (*fn)(const void *ctx, int64_t row0, int64_t col0, int64_t rows, int64_t cols, void *C, int64_t ldc) noexcept nogil
        const void *ctx

    int fastnn_cpu_isa()
    int fastnn_get_isa()
    int fastnn_set_isa(int isa)
    const char *fastnn_isa_name(int isa)
    int fastnn_set_num_threads(int n)
    int fastnn_get_num_threads()
    int fastnn_fma_peak_f32(double *gflops)
    int fastnn_fma_peak_f64(double *gflops)
    int fastnn_gemm_f32(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc, const fastnn_epilogue *epilogue)
    int fastnn_gemm_f64(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const double *A, int64_t lda, const double *B, int64_t ldb, double beta, double *C, int64_t ldc, const fastnn_epilogue *epilogue)
    int fastnn_act_forward_f32(int act, double alpha, double beta, int64_t rows, int64_t cols, const float *x, float *y)
    int fastnn_act_forward_f64(int act, double alpha, double beta, int64_t rows, int64_t cols, const double *x, double *y)
    int fastnn_act_backward_f32(int act, double alpha, double beta, int64_t rows, int64_t cols, const float *z, const float *y, const float *dy, float *dz)
    int fastnn_act_backward_f64(int act, double alpha, double beta, int64_t rows, int64_t cols, const double *z, const double *y, const double *dy, double *dz)
    int fastnn_dense_forward_f32(int64_t n, int64_t n_in, int64_t n_out, const float *X, const float *W, const float *b, int act, double alpha, double beta, float *Z, float *Y)
    int fastnn_dense_forward_f64(int64_t n, int64_t n_in, int64_t n_out, const double *X, const double *W, const double *b, int act, double alpha, double beta, double *Z, double *Y)
    int fastnn_dense_backward_f32(int64_t n, int64_t n_in, int64_t n_out, const float *X, const float *W, const float *Z, const float *Y, const float *dY, int act, double alpha, double beta, float *dZ, float *dX, float *dW, float *db)
    int fastnn_dense_backward_f64(int64_t n, int64_t n_in, int64_t n_out, const double *X, const double *W, const double *Z, const double *Y, const double *dY, int act, double alpha, double beta, double *dZ, double *dX, double *dW, double *db)
    ctypedef struct fastnn_loss_args:
        double param[FASTNN_LOSS_MAX_PARAM]
        const double *weight
        const double *sample_weight

    int fastnn_loss_f32(int loss, int64_t rows, int64_t width, const float *pred, const void *targets, const fastnn_loss_args *args, int reduction, double *value, double *total, float *grad)
    int fastnn_loss_f64(int loss, int64_t rows, int64_t width, const double *pred, const void *targets, const fastnn_loss_args *args, int reduction, double *value, double *total, double *grad)
    int fastnn_mse_f32(int64_t size, const float *pred, const float *target, int reduction, double *loss, float *grad)
    int fastnn_mse_f64(int64_t size, const double *pred, const double *target, int reduction, double *loss, double *grad)
    int fastnn_bce_f32(int64_t size, const float *prob, const float *target, int reduction, double *loss, float *grad)
    int fastnn_bce_f64(int64_t size, const double *prob, const double *target, int reduction, double *loss, double *grad)
    int fastnn_xent_labels_f32(int64_t n, int64_t c, const float *logits, const int64_t *labels, int reduction, double *loss, float *grad)
    int fastnn_xent_labels_f64(int64_t n, int64_t c, const double *logits, const int64_t *labels, int reduction, double *loss, double *grad)
    int fastnn_xent_probs_f32(int64_t n, int64_t c, const float *logits, const float *probs, int reduction, double *loss, float *grad)
    int fastnn_xent_probs_f64(int64_t n, int64_t c, const double *logits, const double *probs, int reduction, double *loss, double *grad)
    int fastnn_optimizer_update_f32(int opt, int64_t size, float *param, const float *grad, float *const *state, const double *hyper, int64_t step)
    int fastnn_optimizer_update_f64(int opt, int64_t size, double *param, const double *grad, double *const *state, const double *hyper, int64_t step)
    int fastnn_optimizer_update_proof_f32(int opt, int64_t size, const float *param, const float *grad, float *const *state, const double *hyper, int64_t step, double *next)
    int fastnn_optimizer_update_proof_f64(int opt, int64_t size, const double *param, const double *grad, double *const *state, const double *hyper, int64_t step, double *next)
    int fastnn_clip_grad_norm_f32(int64_t count, const int64_t *sizes, float *const *grads, double max_norm, double *total)
    int fastnn_clip_grad_norm_f64(int64_t count, const int64_t *sizes, double *const *grads, double max_norm, double *total)
    int fastnn_clip_grad_value_f32(int64_t count, const int64_t *sizes, float *const *grads, double clip_value)
    int fastnn_clip_grad_value_f64(int64_t count, const int64_t *sizes, double *const *grads, double clip_value)
    int fastnn_l2_penalty_f32(int64_t count, const int64_t *sizes, const float *const *W, float *const *dW, double alpha, double total, double *penalty)
    int fastnn_l2_penalty_f64(int64_t count, const int64_t *sizes, const double *const *W, double *const *dW, double alpha, double total, double *penalty)
    uint64_t fastnn_rng_bits(uint64_t seed, uint64_t step, uint64_t index)
    int fastnn_dropout_f32(int64_t size, double p, uint64_t seed, uint64_t step, const float *x, float *mask, float *y)
    int fastnn_dropout_f64(int64_t size, double p, uint64_t seed, uint64_t step, const double *x, double *mask, double *y)
    int fastnn_dropout_backward_f32(int64_t size, const float *dy, const float *mask, float *dx)
    int fastnn_dropout_backward_f64(int64_t size, const double *dy, const double *mask, double *dx)

    # norm.c
    int fastnn_batchnorm_forward_f32(int64_t n, int64_t d, const float *x, const float *w, const float *b, double eps, float *y, float *xhat, double *mean, double *var)
    int fastnn_batchnorm_forward_f64(int64_t n, int64_t d, const double *x, const double *w, const double *b, double eps, double *y, double *xhat, double *mean, double *var)
    int fastnn_batchnorm_eval_f32(int64_t n, int64_t d, const float *x, const float *rmean, const float *rvar, const float *w, const float *b, double eps, float *y)
    int fastnn_batchnorm_eval_f64(int64_t n, int64_t d, const double *x, const double *rmean, const double *rvar, const double *w, const double *b, double eps, double *y)
    int fastnn_batchnorm_backward_f32(int64_t n, int64_t d, const float *dy, const float *xhat, const double *var, const float *w, double eps, float *dx, float *dw, float *db, double *work)
    int fastnn_batchnorm_backward_f64(int64_t n, int64_t d, const double *dy, const double *xhat, const double *var, const double *w, double eps, double *dx, double *dw, double *db, double *work)
    int fastnn_layernorm_forward_f32(int64_t n, int64_t d, const float *x, const float *w, const float *b, double eps, float *y, float *xhat, double *rstd)
    int fastnn_layernorm_forward_f64(int64_t n, int64_t d, const double *x, const double *w, const double *b, double eps, double *y, double *xhat, double *rstd)
    int fastnn_layernorm_backward_f32(int64_t n, int64_t d, const float *dy, const float *xhat, const double *rstd, const float *w, float *dx, float *dw, float *db, double *work)
    int fastnn_layernorm_backward_f64(int64_t n, int64_t d, const double *dy, const double *xhat, const double *rstd, const double *w, double *dx, double *dw, double *db, double *work)

    # whole training epochs (train.c)
    enum: FASTNN_STAGE_DENSE
    enum: FASTNN_STAGE_ACTIVATION
    enum: FASTNN_STAGE_DROPOUT
    enum: FASTNN_STAGE_BATCHNORM
    enum: FASTNN_STAGE_LAYERNORM

    ctypedef struct fastnn_stage:
        int kind
        int64_t width_in, width_out
        int act
        double alpha
        double beta
        double beta
        void *W
        void *b
        void *dW
        void *db
        void *state_W[FASTNN_OPT_MAX_STATE]
        void *state_b[FASTNN_OPT_MAX_STATE]
        double p
        uint64_t seed, step
        double eps, momentum
        int momentum_none
        void *running_mean
        void *running_var
        int64_t num_batches_tracked

    ctypedef struct fastnn_train_spec:
        int loss, reduction, optimizer
        double hyper[FASTNN_OPT_MAX_HYPER]
        int64_t step
        fastnn_loss_args loss_args
        int clip_norm_on, clip_value_on
        double clip_norm, clip_value
        const double *hyper_table
        int64_t hyper_rows, hyper_row
        double l2_alpha
        int loss_by_rows

    int fastnn_metric_f32(int metric, int64_t rows, int64_t cols, const float *pred, const void *target, double *value)
    int fastnn_metric_f64(int metric, int64_t rows, int64_t cols, const double *pred, const void *target, double *value)

    ctypedef struct fastnn_trainer:
        pass

    int fastnn_trainer_new_f32(fastnn_trainer **out, fastnn_stage *stages, int64_t n_stages, fastnn_train_spec *spec, int64_t n_features, int64_t batch)
    int fastnn_trainer_new_f64(fastnn_trainer **out, fastnn_stage *stages, int64_t n_stages, fastnn_train_spec *spec, int64_t n_features, int64_t batch)
    void fastnn_trainer_free(fastnn_trainer *t)
    int64_t fastnn_trainer_exact_checks(const fastnn_trainer *t)
    int fastnn_trainer_fused(const fastnn_trainer *t)
    int fastnn_trainer_set_tiny(fastnn_trainer *t, int on)
    int fastnn_train_run_f32(fastnn_trainer *t, const float *X, const void *targets, int64_t n, int64_t t_width, const int64_t *orders, int64_t n_epochs, int64_t *epoch, int64_t *start, int64_t max_batches, double *losses)
    int fastnn_train_run_f64(fastnn_trainer *t, const double *X, const void *targets, int64_t n, int64_t t_width, const int64_t *orders, int64_t n_epochs, int64_t *epoch, int64_t *start, int64_t max_batches, double *losses)
    int fastnn_train_gradient_f32(fastnn_trainer *t, const float *X, const void *targets, int64_t n, double *loss)
    int fastnn_train_gradient_f64(fastnn_trainer *t, const double *X, const void *targets, int64_t n, double *loss)
