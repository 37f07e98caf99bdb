/*
 * train.c -- whole training epochs in C: batching, forward, loss, backward
 * and update for every layer, with no Python in between.
 *
 * Why it is built this way: for small networks the time goes to call
 * overhead, not arithmetic, so a fit must not return to Python per batch.
 * The trainer allocates its workspace once per fit (one buffer per stage
 * output, pre-activation, dropout mask and dense dZ, the gradient flowing
 * down, the gathered batch and its sample weights) and then only calls the
 * same kernels the Python API uses, with the reference loop's arithmetic
 * (Network.fit), so the two give the same numbers.  The backward runs in two
 * phases -- dZ, db and dX of every layer, then every dW -- so that the
 * update can be proved finite before it starts (see safe_all in
 * train_impl.h), in place of a dry run over every array.  The proof then
 * lets the update run inside the second phase (fused_pass in train_impl.h):
 * each finished block of dW is applied to W while in cache, and no whole dW
 * is ever stored, when the caller leaves the gradients to the trainer (a
 * fit does; scikit-learn's L-BFGS objective reads them).  It runs a bounded
 * number of batches per call
 * and reports where it stopped, so the caller can re-enter Python (signals,
 * progress, validation) between calls.  A cancel flag (set by a signal
 * handler) is read between batches, between stages and inside the GEMMs, so
 * Ctrl-C stops even a batch of seconds at once; that batch is dropped whole
 * (nothing is written to the parameters or optimizer state before its
 * update, which is the last thing a batch does).  A tiny network (XOR's)
 * takes a path of its own instead, tiny_batch: the same arithmetic without
 * the kernels' set-up, which is most of its time.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fastnn.h"
#include "internal.h"

/* Networks with fewer parameters than this check every update with its dry
 * run instead of proving it finite (see safe_all in train_impl.h): the
 * proof's fixed costs per array and its maxima (measured on XOR, 17
 * parameters: a fifth of the time per batch) are more than a dry run over
 * a few thousand values in L1 of an update of a few operations per value
 * (SGD's).  An update with a square root and a division per value (the
 * optimizer table's root column: Adam's, RMSprop's, ...) makes its dry run
 * as dear as itself, and the proof pays from FASTNN_TRAIN_PROOF_MIN_ROOT
 * parameters. */
#ifndef FASTNN_TRAIN_PROOF_MIN
#define FASTNN_TRAIN_PROOF_MIN 4096
#endif
#ifndef FASTNN_TRAIN_PROOF_MIN_ROOT
#define FASTNN_TRAIN_PROOF_MIN_ROOT 256
#endif

/* Networks with fewer parameters than this may take the tiny path. */
#ifndef FASTNN_TRAIN_TINY_PARAMS
#define FASTNN_TRAIN_TINY_PARAMS 4096
#endif

struct fastnn_trainer {
    fastnn_stage *stages;
    int64_t n_stages;
    fastnn_train_spec *spec;
    int64_t n_features, batch;
    int64_t first_param_stage;
    size_t elem;     /* sizeof(T) the trainer was made for */
    void *xb, *tb;   /* gathered batch: inputs (allocated by the first run with
                        orders: a fit in order, or fastnn_train_gradient over
                        a whole data set, needs no copy of X) and targets */
    double *wb;      /* gathered batch: sample weights (spec->loss_args.sample_weight) */
    void **out;      /* per stage: output (batch x width_out) */
    void **z;        /* per stage: pre-activation, or NULL */
    void **mask;     /* per stage: dropout mask, or NULL */
    void **ys;       /* per stage: output of the current batch (may alias) */
    void **flow;     /* per stage: where the gradient of its output lives in the
                        backward -- the dZ of the nearest dense stage at or below
                        it (a dense stage makes its dZ over its dY, in place), so
                        no buffer of batch x widest is needed; else grad */
    void *grad;      /* the flowing gradient where no dense stage is at or below
                        (a norm stage with parameters under the first), or NULL */
    void **dz;       /* per dense stage: its dZ, kept for the second phase */
    double **stat;   /* per norm stage: BatchNorm1d's batch mean and (biased) variance
                        (2 x width), LayerNorm's rstd (batch); its xhat is in z */
    double *norm_work; /* the norm backward's scratch (2 x widest) */
    int has_norm;    /* the network has a norm stage */
    double *loss_work; /* the cross-entropy's per-row scratch (2 x batch) */
    /* every parameter array in layer order (W, then b), as the optimizer
       takes them; per stage, the index of its W there (-1: none); per array,
       bounds on its values and state (measured or proved, see safe_all), the
       proof's bounds on what the update will write, and a bound on the
       current batch's |gradient| */
    fastnn_opt_arrays params;
    int64_t *param_sizes, *first_param;
    void **param_ptrs, **state_ptrs;
    const void **grad_ptrs;
    fastnn_opt_bounds *bounds, *next_bounds;
    double *grad_max;
    /* the dense stages' gradients when the caller gives none (own_grads):
       per stage, db from the start and dW only for a run that needs whole
       arrays (!fused) */
    int own_grads;
    void **own_dw, **own_db;
    int fused;            /* this run's update runs in dW's GEMM (see fused_run) */
    void *plan;           /* the fused update's (fastnn_internal_opt_plan_*) */
    /* the L2 penalty's arrays (spec->l2_alpha): every dense stage's W and dW
       in layer order, and per entry the index of its W in params */
    int64_t l2_count;
    int64_t *l2_sizes, *l2_param;
    const void **l2_W;
    void **l2_dW;
    int64_t exact_checks; /* batches whose update needed the dry run */
    int64_t n_params;     /* the values of all parameter arrays */
    int use_proof;        /* prove updates finite (see safe_all), set per run */
    int tiny_fits;        /* the network is tiny (see tiny_fits) */
    int tiny;             /* batches take the tiny path (see tiny_batch) */
    const volatile sig_atomic_t *cancel; /* stop when non-zero; NULL: never */
};

void fastnn_trainer_set_cancel(fastnn_trainer *t, const volatile sig_atomic_t *flag)
{
    if (t != NULL)
        t->cancel = flag;
}

int64_t fastnn_trainer_exact_checks(const fastnn_trainer *t)
{
    return t != NULL ? t->exact_checks : -1;
}

int fastnn_trainer_fused(const fastnn_trainer *t)
{
    return t != NULL ? t->fused : -1;
}

int fastnn_trainer_set_tiny(fastnn_trainer *t, int on)
{
    if (t == NULL)
        return FASTNN_EINVAL;
    if (on >= 0)
        t->tiny = on && t->tiny_fits;
    return t->tiny;
}

static inline int cancelled(const fastnn_trainer *t)
{
    return t->cancel != NULL && *t->cancel != 0;
}

/* A batch stopped by the cancel flag after the forward pass of its first
 * `ran` stages: give back the dropout steps those stages drew, so the batch
 * leaves nothing behind (its partial outputs and gradients are scratch). */
static int batch_interrupted(fastnn_trainer *t, int64_t ran)
{
    for (int64_t s = 0; s < ran; s++)
        if (t->stages[s].kind == FASTNN_STAGE_DROPOUT && t->stages[s].p != 0.0)
            t->stages[s].step--;
    return FASTNN_EINTERRUPTED;
}

static void *wmalloc(size_t bytes)
{
    const size_t align = 64;
    bytes = (bytes + align - 1) / align * align;
    return aligned_alloc(align, bytes ? bytes : align);
}

/* Whether a network is small enough for the tiny path (tiny_batch in
 * train_impl.h): dense and activation stages only (no dropout or norm), fewer
 * than FASTNN_TRAIN_TINY_PARAMS parameters, and at most
 * FASTNN_TRAIN_TINY_VALUES values in any stage's output for a batch (so
 * the general path, too, would run every elementwise pass on one thread).
 * A function of the network and the batch size only, so every
 * batch of a fit takes the same path. */
#ifndef FASTNN_TRAIN_TINY_VALUES
#define FASTNN_TRAIN_TINY_VALUES 16384
#endif
static int tiny_fits(const fastnn_stage *stages, int64_t n_stages, int64_t batch,
                     int64_t n_params)
{
    if (n_params >= FASTNN_TRAIN_TINY_PARAMS)
        return 0;
    for (int64_t s = 0; s < n_stages; s++) {
        const fastnn_stage *st = &stages[s];
        if ((st->kind != FASTNN_STAGE_DENSE && st->kind != FASTNN_STAGE_ACTIVATION) ||
            batch > FASTNN_TRAIN_TINY_VALUES / st->width_out)
            return 0;
    }
    return 1;
}

/* Whether this run proves its updates finite (the spec's optimizer may have
 * changed since the last), from FASTNN_TRAIN_PROOF_MIN or _ROOT parameters.
 * The proof bounds dense gradients only, so a network with a norm stage
 * checks every update with its dry run; so does an unknown optimizer (its
 * update refuses it). */
static int proof_run(const fastnn_trainer *t)
{
    const int root = fastnn_optimizer_root(t->spec->optimizer);
    const int64_t min = root == 1 ? FASTNN_TRAIN_PROOF_MIN_ROOT : FASTNN_TRAIN_PROOF_MIN;
    return !t->has_norm && (root == 0 || root == 1) && t->n_params >= min;
}

/* Whether this run fuses each update into dW's GEMM (train_batch): the
 * trainer keeps the gradients itself, proves updates (the dry run is then
 * rare, and takes a second pass of the GEMMs), and nothing needs whole
 * gradient arrays (the norm of clip_grad_norm does; the tiny path keeps
 * its own order).  Its memory: no dW at all, a block of it per thread. */
static int fused_run(const fastnn_trainer *t, int tiny)
{
    return t->own_grads && t->use_proof && !tiny && !t->spec->clip_norm_on;
}

/* A dense stage's gradient arrays: the caller's, or the trainer's own */
static void *dw_of(const fastnn_trainer *t, int64_t s)
{
    return t->own_grads ? t->own_dw[s] : t->stages[s].dW;
}

static void *db_of(const fastnn_trainer *t, int64_t s)
{
    return t->own_grads ? t->own_db[s] : t->stages[s].db;
}

/* The arrays the unfused update and the L2 penalty take: every dense
 * stage's dW and db as they are now (a W's NULL until whole_gradients). */
static void gradient_pointers(fastnn_trainer *t)
{
    int64_t l2 = 0;
    for (int64_t s = 0; s < t->n_stages; s++) {
        if (t->stages[s].kind != FASTNN_STAGE_DENSE)
            continue;
        const int64_t i = t->first_param[s];
        t->grad_ptrs[i] = dw_of(t, s);
        if (t->stages[s].b != NULL)
            t->grad_ptrs[i + 1] = db_of(t, s);
        t->l2_dW[l2++] = dw_of(t, s);
    }
}

/* Whole dW arrays of the trainer's own, for a run that is not fused */
static int whole_gradients(fastnn_trainer *t)
{
    if (!t->own_grads)
        return FASTNN_OK;
    for (int64_t s = 0; s < t->n_stages; s++) {
        const fastnn_stage *st = &t->stages[s];
        if (st->kind == FASTNN_STAGE_DENSE && t->own_dw[s] == NULL &&
            (t->own_dw[s] = wmalloc((size_t)(st->width_in * st->width_out) * t->elem)) == NULL)
            return FASTNN_ENOMEM;
    }
    gradient_pointers(t);
    return FASTNN_OK;
}

/* Whether this run takes the tiny path: it is on, and the stages are still
 * of the kinds it runs (the caller may change them between runs). */
static int tiny_run(const fastnn_trainer *t)
{
    if (!t->tiny)
        return 0;
    for (int64_t s = 0; s < t->n_stages; s++)
        if (t->stages[s].kind != FASTNN_STAGE_DENSE &&
            t->stages[s].kind != FASTNN_STAGE_ACTIVATION)
            return 0;
    return 1;
}

/* This batch's hyper-parameters: the spec's, or its row of the per-batch
 * schedule; NULL past the schedule's last row (the batch is refused). */
static const double *batch_hyper(const fastnn_train_spec *spec)
{
    if (spec->hyper_table == NULL)
        return spec->hyper;
    if (spec->hyper_row < 0 || spec->hyper_row >= spec->hyper_rows)
        return NULL;
    return spec->hyper_table + spec->hyper_row * FASTNN_OPT_MAX_HYPER;
}

/* A proved update applied: the proof's bounds on what it wrote are the
 * next batch's. */
static void adopt_proved_bounds(fastnn_trainer *t)
{
    for (int64_t i = 0; i < t->params.count; i++)
        t->bounds[i] = t->next_bounds[i];
}

/* A batch applied: the update count, and the schedule's row, advance. */
static void batch_done(fastnn_train_spec *spec, int64_t step)
{
    spec->step = step;
    if (spec->hyper_table != NULL)
        spec->hyper_row++;
}

/* a per-stage array of buffers, each buffer and then the array (NULL: none) */
static void free_per_stage(void **a, int64_t n_stages)
{
    if (a != NULL)
        for (int64_t s = 0; s < n_stages; s++)
            free(a[s]);
    free(a);
}

void fastnn_trainer_free(fastnn_trainer *t)
{
    if (t == NULL)
        return;
    free_per_stage(t->out, t->n_stages);
    free_per_stage(t->z, t->n_stages);
    free_per_stage(t->mask, t->n_stages);
    free_per_stage(t->dz, t->n_stages);
    free_per_stage(t->own_dw, t->n_stages);
    free_per_stage(t->own_db, t->n_stages);
    free(t->ys);
    free(t->flow);
    free(t->xb);
    free(t->tb);
    free(t->wb);
    free(t->grad);
    free(t->plan);
    if (t->stat)
        for (int64_t s = 0; s < t->n_stages; s++)
            free(t->stat[s]);
    free(t->stat);
    free(t->norm_work);
    free(t->next_bounds);
    free(t->loss_work);
    free(t->bounds);
    free(t->grad_max);
    free(t->param_sizes);
    free(t->first_param);
    free(t->param_ptrs);
    free(t->state_ptrs);
    free(t->grad_ptrs);
    free(t->l2_sizes);
    free(t->l2_param);
    free(t->l2_W);
    free(t->l2_dW);
    free(t);
}

/* the first dense stage (0 when there is none) */
static int64_t first_dense(const fastnn_stage *stages, int64_t n_stages)
{
    for (int64_t s = 0; s < n_stages; s++)
        if (stages[s].kind == FASTNN_STAGE_DENSE)
            return s;
    return 0;
}

static int trainer_new(fastnn_trainer **out, fastnn_stage *stages, int64_t n_stages,
                       fastnn_train_spec *spec, int64_t n_features, int64_t batch,
                       size_t elem)
{
    *out = NULL;
    if (stages == NULL || spec == NULL || n_stages < 1 || n_features < 1 || batch < 1)
        return FASTNN_EINVAL;
    /* every code names a row of its table (fastnn.h) */
    if (spec->loss < 0 || spec->loss >= FASTNN_N_LOSS || spec->optimizer < 0 ||
        spec->optimizer >= FASTNN_N_OPT || spec->reduction < 0 ||
        spec->reduction >= FASTNN_N_REDUCTION)
        return FASTNN_EINVAL;
    if ((spec->clip_norm_on && !(spec->clip_norm >= 0.0)) ||
        (spec->clip_value_on && !(spec->clip_value >= 0.0)) ||
        !(spec->l2_alpha >= 0.0) || !isfinite(spec->l2_alpha))
        return FASTNN_EINVAL;
    /* gradients: the caller's (dW, and db with b) or none (the trainer's
       own), the same for every dense stage */
    const fastnn_stage *dense = &stages[first_dense(stages, n_stages)];
    const int own_grads = dense->kind == FASTNN_STAGE_DENSE && dense->dW == NULL;
    for (int64_t s = 0; s < n_stages; s++) {
        const fastnn_stage *st = &stages[s];
        switch (st->kind) {
        case FASTNN_STAGE_DENSE: {
            const int given = st->dW != NULL;
            if (given == own_grads || (given ? st->b != NULL && st->db == NULL
                                             : st->db != NULL))
                return FASTNN_EINVAL;
        }
            /* fall through */
        case FASTNN_STAGE_ACTIVATION:
            if (st->act < 0 || st->act >= FASTNN_N_ACT)
                return FASTNN_EINVAL;
            break;
        case FASTNN_STAGE_DROPOUT:
            break;
        case FASTNN_STAGE_BATCHNORM:
        case FASTNN_STAGE_LAYERNORM:
            if (st->width_in != st->width_out || !(st->eps >= 0.0) ||
                (st->W == NULL) != (st->b == NULL) || (st->W && (!st->dW || !st->db)))
                return FASTNN_EINVAL;
            if (st->kind == FASTNN_STAGE_BATCHNORM &&
                ((!st->momentum_none && !(st->momentum >= 0.0 && st->momentum <= 1.0)) ||
                 st->running_mean == NULL || st->running_var == NULL ||
                 st->num_batches_tracked < 0 || batch < 2))
                return FASTNN_EINVAL;
            break;
        default:
            return FASTNN_EINVAL;
        }
    }
    fastnn_trainer *t = calloc(1, sizeof *t);
    if (t == NULL)
        return FASTNN_ENOMEM;
    t->stages = stages;
    t->n_stages = n_stages;
    t->spec = spec;
    t->n_features = n_features;
    t->batch = batch;
    t->elem = elem;
    t->first_param_stage = n_stages;
    t->out = calloc((size_t)n_stages, sizeof(void *));
    t->z = calloc((size_t)n_stages, sizeof(void *));
    t->mask = calloc((size_t)n_stages, sizeof(void *));
    t->ys = calloc((size_t)n_stages, sizeof(void *));
    t->dz = calloc((size_t)n_stages, sizeof(void *));
    t->flow = calloc((size_t)n_stages, sizeof(void *));
    t->stat = calloc((size_t)n_stages, sizeof(double *));
    /* at most two parameter arrays per stage */
    const size_t most = 2 * (size_t)n_stages;
    t->bounds = calloc(most, sizeof(fastnn_opt_bounds));
    t->next_bounds = calloc(most, sizeof(fastnn_opt_bounds));
    t->grad_max = calloc(most, sizeof(double));
    t->param_sizes = calloc(most, sizeof(int64_t));
    t->first_param = calloc((size_t)n_stages, sizeof(int64_t));
    t->param_ptrs = calloc(most, sizeof(void *));
    t->grad_ptrs = calloc(most, sizeof(void *));
    t->state_ptrs = calloc(most * FASTNN_OPT_MAX_STATE, sizeof(void *));
    t->l2_sizes = calloc((size_t)n_stages, sizeof(int64_t));
    t->l2_param = calloc((size_t)n_stages, sizeof(int64_t));
    t->l2_W = calloc((size_t)n_stages, sizeof(void *));
    t->l2_dW = calloc((size_t)n_stages, sizeof(void *));
    t->own_grads = own_grads;
    t->own_dw = calloc((size_t)n_stages, sizeof(void *));
    t->own_db = calloc((size_t)n_stages, sizeof(void *));
    if (!t->l2_sizes || !t->l2_param || !t->l2_W || !t->l2_dW || !t->own_dw || !t->own_db)
        goto nomem;
    if (!t->out || !t->z || !t->mask || !t->ys || !t->dz || !t->flow || !t->stat ||
        !t->bounds ||
        !t->next_bounds ||
        !t->grad_max ||
        !t->param_sizes || !t->first_param || !t->param_ptrs || !t->grad_ptrs ||
        !t->state_ptrs)
        goto nomem;
    int64_t widest = n_features;
    for (int64_t s = 0; s < n_stages; s++) {
        const fastnn_stage *st = &stages[s];
        const size_t bytes = (size_t)batch * (size_t)st->width_out * elem;
        if (st->width_in < 1 || st->width_out < 1)
            goto invalid;
        if (st->width_out > widest)
            widest = st->width_out;
        const int norm = st->kind == FASTNN_STAGE_BATCHNORM ||
                         st->kind == FASTNN_STAGE_LAYERNORM;
        if ((st->kind == FASTNN_STAGE_DENSE || (norm && st->W != NULL)) &&
            t->first_param_stage == n_stages)
            t->first_param_stage = s;
        if (norm) {  /* xhat in z; the batch statistics */
            t->has_norm = 1;
            if (!(t->z[s] = wmalloc(bytes)) ||
                !(t->stat[s] = wmalloc((2 * (size_t)st->width_out + (size_t)batch) *
                                       sizeof(double))))
                goto nomem;
        }
        if (!(t->out[s] = wmalloc(bytes)))
            goto nomem;
        if (st->kind == FASTNN_STAGE_DENSE && fastnn_needs_preactivation(st->act) &&
            !(t->z[s] = wmalloc(bytes)))
            goto nomem;
        if (st->kind == FASTNN_STAGE_DENSE && !(t->dz[s] = wmalloc(bytes)))
            goto nomem;
        if (st->kind == FASTNN_STAGE_DENSE && t->own_grads && st->b != NULL &&
            !(t->own_db[s] = wmalloc((size_t)st->width_out * elem)))
            goto nomem;
        if (st->kind == FASTNN_STAGE_DROPOUT && !(t->mask[s] = wmalloc(bytes)))
            goto nomem;
    }
    if (t->first_param_stage == n_stages)
        goto invalid;
    /* the flowing gradient's home per stage (see flow); grad, as wide as the
       widest stage without a dense one at or below, only where needed */
    int64_t loose = 0;
    for (int64_t s = 0; s < n_stages; s++) {
        t->flow[s] = t->dz[s] != NULL ? t->dz[s] : s > 0 ? t->flow[s - 1] : NULL;
        if (t->flow[s] == NULL && s >= t->first_param_stage && stages[s].width_out > loose)
            loose = stages[s].width_out;
    }
    if (loose > 0) {
        if (!(t->grad = wmalloc((size_t)batch * (size_t)loose * elem)))
            goto nomem;
        for (int64_t s = 0; s < n_stages; s++)
            if (t->flow[s] == NULL)
                t->flow[s] = t->grad;
    }
    int64_t n_params = 0, count = 0;
    for (int64_t s = 0; s < n_stages; s++) {
        fastnn_stage *st = &stages[s];
        t->first_param[s] = -1;
        const int norm = st->kind == FASTNN_STAGE_BATCHNORM ||
                         st->kind == FASTNN_STAGE_LAYERNORM;
        if (st->kind != FASTNN_STAGE_DENSE && !(norm && st->W != NULL))
            continue;
        t->first_param[s] = count;
        if (!norm) {    /* a dense stage: its W takes the L2 penalty */
            t->l2_sizes[t->l2_count] = st->width_in * st->width_out;
            t->l2_param[t->l2_count] = count;
            t->l2_W[t->l2_count] = st->W;
            t->l2_count++;   /* (its dW: gradient_pointers) */
        }
        for (int which = 0; which < 2; which++) {
            void *p = which ? st->b : st->W;
            if (p == NULL)
                continue;
            t->param_sizes[count] = which || norm ? st->width_out
                                                  : st->width_in * st->width_out;
            t->param_ptrs[count] = p;
            t->grad_ptrs[count] = which ? st->db : st->dW;
            for (int q = 0; q < FASTNN_OPT_MAX_STATE; q++)
                t->state_ptrs[count * FASTNN_OPT_MAX_STATE + q] =
                    which ? st->state_b[q] : st->state_W[q];
            n_params += t->param_sizes[count];
            count++;
        }
    }
    gradient_pointers(t);
    t->params = (fastnn_opt_arrays){count, t->param_sizes, t->param_ptrs, t->grad_ptrs,
                                    t->state_ptrs};
    t->plan = wmalloc(elem == sizeof(float) ? fastnn_internal_opt_plan_bytes_f32(count)
                                            : fastnn_internal_opt_plan_bytes_f64(count));
    if (t->plan == NULL)
        goto nomem;
    t->n_params = n_params;
    t->tiny = t->tiny_fits = tiny_fits(stages, n_stages, batch, n_params);
    /* targets: int64 labels or T values, at most batch x last width */
    const size_t t_bytes = (size_t)batch * (size_t)stages[n_stages - 1].width_out *
                           (elem > sizeof(int64_t) ? elem : sizeof(int64_t));
    t->tb = wmalloc(t_bytes);
    t->loss_work = wmalloc(2 * (size_t)batch * sizeof(double));
    t->wb = wmalloc((size_t)batch * sizeof(double));
    t->norm_work = wmalloc(2 * (size_t)widest * sizeof(double));
    if (!t->tb || !t->loss_work || !t->wb || !t->norm_work)
        goto nomem;
    *out = t;
    return FASTNN_OK;
nomem:
    fastnn_trainer_free(t);
    return FASTNN_ENOMEM;
invalid:
    fastnn_trainer_free(t);
    return FASTNN_EINVAL;
}

#define FASTNN_TEMPLATE "train_impl.h"
#include "per_dtype.h"
