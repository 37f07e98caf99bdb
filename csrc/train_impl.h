/*
 * train_impl.h -- the templated body of train.c, included once per dtype
 * with T (float|double) and SFX (f32|f64) defined (see the note in
 * train.c).  No include guard on purpose.
 */
#if !defined(T) || !defined(SFX)
#error "define T and SFX before including train_impl.h"
#endif
#include "rows_impl.h"

int F(fastnn_trainer_new)(fastnn_trainer **out, fastnn_stage *stages,
                           int64_t n_stages, fastnn_train_spec *spec,
                           int64_t n_features, int64_t batch)
{
    return trainer_new(out, stages, n_stages, spec, n_features, batch, sizeof(T));
}

/* Every parameter's update, in layer order (W, then b), or its dry run
 * (write = 0: FASTNN_EDIVERGED if any new value would be inf or NaN): one
 * call for all the arrays, the optimizer's constants prepared once.  With
 * measure, the update records in t->bounds the magnitudes it wrote. */
static int F(update_all)(fastnn_trainer *t, const double *hyper, int64_t step, int write,
                         int measure)
{
    return F(fastnn_internal_opt_update)(t->spec->optimizer, write, &t->params, step,
                                         hyper, measure ? t->bounds : NULL);
}

/* 1 when every update of this batch is proved finite from the bounds on the
 * parameters and state (measured at the start of the run or by the update of
 * a batch that needed the dry run, or proved by the previous proof) and on
 * this batch's gradients (bound_gradients), see fastnn_internal_opt_safe;
 * t->next_bounds then bounds what the update will write.  The dry run can
 * then be skipped: the same guarantee for the price of a few operations per
 * array instead of a pass over all of them.  Small networks (t->use_proof =
 * 0, see proof_run in train.c) always take the dry run: there it costs less
 * than the proof's bookkeeping. */
static int F(safe_all)(fastnn_trainer *t, const double *hyper, int64_t step)
{
    return t->use_proof &&
           F(fastnn_internal_opt_safe)(t->spec->optimizer, &t->params, step, hyper,
                                       t->bounds, t->grad_max, t->next_bounds);
}

/* Bounds on this batch's gradients, for safe_all, from what dW is made of
 * (a look at the batch-sized inputs and dZ costs less than one at dW): each
 * |dW_ij| = |sum_p X_pi dZ_pj| <= rows * max|X| * max|dZ| (X the stage's
 * input, dZ kept from phase 1), widened for the rounding of the sum, and
 * |db| exactly.  Taken after the gradients are clipped: the norm's factor
 * (at most 1) only shrinks them, so the bound on dW still holds, and
 * clipping by value caps it at v; db is read as clipped.  With the L2
 * penalty (spec->l2_alpha > 0, added before the clipping) the bound on dW
 * grows by c P, c = alpha / total as rounded to T and P the bound on |W|
 * that the proof holds (t->bounds; none known: no proof), widened for the
 * rounding of the product and the sum (and an underflow's absolute error).
 * 0 when the trainer does not prove (a small network). */
static int F(bound_gradients)(fastnn_trainer *t, const T *x, int64_t rows, double total)
{
    if (!t->use_proof)
        return 0;
    for (int64_t s = t->first_param_stage; s < t->n_stages; s++) {
        const fastnn_stage *st = &t->stages[s];
        if (st->kind != FASTNN_STAGE_DENSE)
            continue;
        const T *input = s > 0 ? (const T *)t->ys[s - 1] : x;
        const double in_max = F(fastnn_internal_max_abs)(input, 1, rows * st->width_in,
                                                         rows * st->width_in);
        const double dz_max = F(fastnn_internal_max_abs)((const T *)t->dz[s], 1,
                                                         rows * st->width_out,
                                                         rows * st->width_out);
        const int64_t i = t->first_param[s];
        /* the computed sum of rows products exceeds the exact one by at most
           a factor (1 + rows eps), eps T's epsilon (or inf or NaN: no proof) */
        const double eps = sizeof(T) == sizeof(float) ? (double)FLT_EPSILON : DBL_EPSILON;
        t->grad_max[i] = (double)rows * in_max * dz_max * (1.0 + (double)(rows + 2) * eps);
        if (t->spec->l2_alpha > 0.0) {
            const double c = (double)(T)(t->spec->l2_alpha / total);
            const double tiny = sizeof(T) == sizeof(float) ? (double)FLT_MIN : DBL_MIN;
            t->grad_max[i] = t->bounds[i].known && isfinite(c)
                                 ? (t->grad_max[i] + c * t->bounds[i].param * (1.0 + eps) +
                                    tiny) * (1.0 + eps)
                                 : INFINITY;
        }
        /* clipped to [-v, v] (after the norm's scaling, which shrinks
           magnitudes: a factor below 1 rounded to T is at most 1) */
        if (t->spec->clip_value_on && (double)(T)t->spec->clip_value < t->grad_max[i])
            t->grad_max[i] = (double)(T)t->spec->clip_value;
        if (st->b != NULL)
            t->grad_max[i + 1] = F(fastnn_internal_max_abs)((const T *)db_of(t, s), 1,
                                                            st->width_out, st->width_out);
    }
    return 1;
}

/* Whether this batch's update is proved finite (bound_gradients, then
 * safe_all); when not, it counts as a batch that needs the dry run.  The one
 * rule of both paths (train_batch, tiny_batch). */
static int F(batch_proved)(fastnn_trainer *t, const T *x, int64_t rows, double total,
                           const double *hyper, int64_t step)
{
    const int proved = F(bound_gradients)(t, x, rows, total) && F(safe_all)(t, hyper, step);
    if (!proved)
        t->exact_checks++;
    return proved;
}

/* The batch's loss (*loss) of the network's output pred and its total
 * weight (*total; sw: the batch's sample weights, or NULL), and its
 * gradient (in the last stage's flow); FASTNN_EDIVERGED when the loss is NaN or
 * infinite, before any update, so the weights stay finite. */
static int F(batch_loss)(fastnn_trainer *t, const T *pred, const void *targets,
                          const double *sw, int64_t rows, double *loss, double *total)
{
    const fastnn_train_spec *spec = t->spec;
    const int64_t width = t->stages[t->n_stages - 1].width_out;
    fastnn_loss_args args = spec->loss_args;
    args.sample_weight = sw;
    int status;
    switch (spec->loss) {
#define LOSS_DISPATCH(ID, name, python_name, labels, params, vector)                    \
    case FASTNN_LOSS_##ID:                                                              \
        status = F(FASTNN_CAT(fastnn_internal_loss, name))(rows, width, pred, targets,  \
                                                           &args, spec->reduction, loss, \
                                                           total, (T *)t->flow[t->n_stages - 1], \
                                                           t->loss_work);               \
        break;
    FASTNN_LOSSES(LOSS_DISPATCH)
#undef LOSS_DISPATCH
    default:
        return FASTNN_EINVAL;
    }
    if (status != FASTNN_OK)
        return status;
    return isfinite(*loss) ? FASTNN_OK : FASTNN_EDIVERGED;
}

/* scikit-learn's L2 penalty (spec->l2_alpha, 0: off) after the backward,
 * before clipping: every dense stage's dW += (alpha / total) W (with whole:
 * the fused update adds it block by block, fused_block) and *loss += 0.5
 * alpha sum ||W||^2 / total (fastnn_l2_penalty), total the batch's total
 * weight; FASTNN_EDIVERGED when the loss is then NaN or infinite.  The one
 * code of every path (train_batch, tiny_batch): the same bits. */
static int F(l2_penalty)(fastnn_trainer *t, double total, double *loss, int whole)
{
    if (t->spec->l2_alpha == 0.0)
        return FASTNN_OK;
    double penalty;
    if (whole) {
        const int status = F(fastnn_l2_penalty)(t->l2_count, t->l2_sizes,
                                                (const T *const *)t->l2_W,
                                                (T *const *)t->l2_dW, t->spec->l2_alpha,
                                                total, &penalty);
        if (status != FASTNN_OK)
            return status;
    } else {
        if (!(total > 0.0))
            return FASTNN_EZEROWEIGHT;   /* as fastnn_l2_penalty */
        penalty = F(fastnn_internal_l2_loss)(t->l2_count, t->l2_sizes,
                                             (const T *const *)t->l2_W, t->spec->l2_alpha,
                                             total);
    }
    *loss += penalty;
    return isfinite(*loss) ? FASTNN_OK : FASTNN_EDIVERGED;
}

/* gradient clipping, as torch.nn.utils.clip_grad_norm_ / _value_ after the
 * backward (the norm summed in a fixed order, on this thread) */
static int F(clip_gradients)(fastnn_trainer *t)
{
    const fastnn_train_spec *spec = t->spec;
    T *const *grads = (T *const *)t->grad_ptrs;
    int status = FASTNN_OK;
    if (spec->clip_norm_on) {
        double total;
        status = F(fastnn_clip_grad_norm)(t->params.count, t->param_sizes, grads,
                                          spec->clip_norm, &total);
        if (status != FASTNN_OK)
            return status;
    }
    if (spec->clip_value_on)
        status = F(fastnn_clip_grad_value)(t->params.count, t->param_sizes, grads,
                                           spec->clip_value);
    return status;
}

/* The applied batch's statistics into each BatchNorm1d stage's running ones,
 * as torch.nn.BatchNorm1d: num_batches_tracked + 1, then with f = momentum
 * (or 1 / num_batches_tracked) running = (1 - f) running + f batch, the
 * variance unbiased (times rows / (rows - 1)); in double, as the reference. */
static void F(running_statistics)(fastnn_trainer *t, int64_t rows)
{
    for (int64_t s = 0; s < t->n_stages; s++) {
        fastnn_stage *st = &t->stages[s];
        if (st->kind != FASTNN_STAGE_BATCHNORM)
            continue;
        const int64_t w = st->width_out;
        const double *mean = t->stat[s], *var = t->stat[s] + w;
        T *rm = (T *)st->running_mean, *rv = (T *)st->running_var;
        st->num_batches_tracked++;
        const double f = st->momentum_none ? 1.0 / (double)st->num_batches_tracked
                                           : st->momentum;
        const double unbias = (double)rows / (double)(rows - 1);
        for (int64_t j = 0; j < w; j++) {
            rm[j] = (T)((1.0 - f) * (double)rm[j] + f * mean[j]);
            rv[j] = (T)((1.0 - f) * (double)rv[j] + f * (var[j] * unbias));
        }
    }
}

/* one batch's gradients: forward, loss, backward and the L2 penalty,
 * nothing applied; *loss gets the batch loss (with the penalty) and *total
 * its total weight (sw: the batch's sample weights, or NULL).  Without
 * whole, the dense stages' dW are left to the fused update (only their dZ
 * and db are computed). */
static int F(batch_gradients)(fastnn_trainer *t, const T *x, const void *targets,
                              const double *sw, int64_t rows, double *loss, double *total,
                              int whole)
{
    fastnn_stage *stages = t->stages;
    const int64_t ns = t->n_stages;
    const T **ys = (const T **)t->ys;
    int status;

    /* forward */
    const T *in = x;
    for (int64_t s = 0; s < ns; s++) {
        fastnn_stage *st = &stages[s];
        T *y = (T *)t->out[s];
        const int64_t size = rows * st->width_out;
        if ((st->kind == FASTNN_STAGE_BATCHNORM || st->kind == FASTNN_STAGE_LAYERNORM) &&
            (t->stat[s] == NULL ||
             (st->kind == FASTNN_STAGE_BATCHNORM &&
              (st->running_mean == NULL || st->running_var == NULL))))
            return FASTNN_EINVAL;   /* a norm the trainer was not made with */
        switch (st->kind) {
        case FASTNN_STAGE_DENSE:
            status = F(fastnn_dense_forward)(rows, st->width_in, st->width_out, in,
                                              (const T *)st->W, (const T *)st->b,
                                              st->act, st->alpha, st->beta, (T *)t->z[s], y);
            break;
        case FASTNN_STAGE_ACTIVATION:
            status = F(fastnn_act_forward)(st->act, st->alpha, st->beta, rows, st->width_out,
                                           in, y);
            break;
        case FASTNN_STAGE_BATCHNORM: /* xhat in z; the batch's mean and variance */
            status = F(fastnn_batchnorm_forward)(rows, st->width_out, in, (const T *)st->W,
                                                  (const T *)st->b, st->eps, y, (T *)t->z[s],
                                                  t->stat[s], t->stat[s] + st->width_out);
            break;
        case FASTNN_STAGE_LAYERNORM: /* xhat in z; each row's rstd */
            status = F(fastnn_layernorm_forward)(rows, st->width_out, in, (const T *)st->W,
                                                  (const T *)st->b, st->eps, y, (T *)t->z[s],
                                                  t->stat[s]);
            break;
        case FASTNN_STAGE_DROPOUT: /* p == 0 is the identity and draws nothing */
            if (st->p == 0.0) {
                y = (T *)in;
                status = FASTNN_OK;
            } else {
                status = F(fastnn_dropout)(size, st->p, st->seed, st->step, in,
                                            (T *)t->mask[s], y);
                st->step++;
            }
            break;
        default:
            return FASTNN_EINVAL;
        }
        if (status == FASTNN_EINTERRUPTED || cancelled(t))
            return batch_interrupted(t, s + 1);
        if (status != FASTNN_OK)
            return status;
        ys[s] = y;
        in = y;
    }

    /* loss and its gradient */
    status = F(batch_loss)(t, in, targets, sw, rows, loss, total);
    if (status != FASTNN_OK)
        return status;

    /* backward, phase 1, down to the first stage with parameters: each dense
     * stage's dZ (kept in t->dz, made over its dY), db and dX; the gradient
     * flowing down lives in t->flow (the dZ of the dense stage below) */
    for (int64_t s = ns - 1; s >= t->first_param_stage; s--) {
        fastnn_stage *st = &stages[s];
        const T *input = s > 0 ? ys[s - 1] : x;
        const int64_t size = rows * st->width_out;
        T *cur = (T *)t->flow[s];
        switch (st->kind) {
        case FASTNN_STAGE_DENSE:
            status = F(fastnn_internal_dense_backward_dx)(
                rows, st->width_in, st->width_out, (const T *)st->W, (const T *)t->z[s],
                ys[s], cur, st->act, st->alpha, st->beta, (T *)t->dz[s],
                s > t->first_param_stage ? (T *)t->flow[s - 1] : NULL, (T *)db_of(t, s));
            break;
        case FASTNN_STAGE_ACTIVATION:
            status = F(fastnn_act_backward)(st->act, st->alpha, st->beta, rows, st->width_out,
                                            input, ys[s], cur, cur);
            break;
        case FASTNN_STAGE_DROPOUT:
            status = st->p == 0.0 ? FASTNN_OK
                                  : F(fastnn_dropout_backward)(size, cur, (const T *)t->mask[s],
                                                               cur);
            break;
        case FASTNN_STAGE_BATCHNORM: /* dX over dY (elementwise, after the sums) */
            status = F(fastnn_batchnorm_backward)(rows, st->width_out, cur, (const T *)t->z[s],
                                                   t->stat[s] + st->width_out,
                                                   (const T *)st->W, st->eps, cur,
                                                   (T *)st->dW, (T *)st->db, t->norm_work);
            break;
        case FASTNN_STAGE_LAYERNORM:
            status = F(fastnn_layernorm_backward)(rows, st->width_out, cur, (const T *)t->z[s],
                                                   t->stat[s], (const T *)st->W, cur,
                                                   (T *)st->dW, (T *)st->db, t->norm_work);
            break;
        default:
            return FASTNN_EINVAL;
        }
        if (status == FASTNN_EINTERRUPTED || cancelled(t))
            return batch_interrupted(t, ns);
        if (status != FASTNN_OK)
            return status;
    }

    /* phase 2: dW = X^T dZ of each dense stage, then the update, applied only
     * if every new parameter and optimizer state value is finite (a
     * non-finite gradient makes one of them non-finite): proved from bounds,
     * or else checked by a dry run, so a diverging batch changes nothing */
    for (int64_t s = t->first_param_stage; s < ns && whole; s++) {
        const fastnn_stage *st = &stages[s];
        if (st->kind != FASTNN_STAGE_DENSE)
            continue;
        status = F(fastnn_internal_dense_backward_dw)(rows, st->width_in, st->width_out,
                                                      s > 0 ? ys[s - 1] : x,
                                                      (const T *)t->dz[s], (T *)dw_of(t, s),
                                                      NULL);
        if (status == FASTNN_EINTERRUPTED || cancelled(t))
            return batch_interrupted(t, ns);
        if (status != FASTNN_OK)
            return status;
    }
    return F(l2_penalty)(t, *total, loss, whole);
}

/* The fused update (t->fused, see fused_run in train.c): each dense stage's
 * dW is computed block by block by fastnn_internal_gemm_blocks, and each
 * finished block, still in cache, gets the L2 term and the clipping by
 * value as batch_gradients and clip_gradients give them to a whole dW
 * (the same operations per element, so the same bits), then one pass of the
 * update over its rows of W (fastnn_internal_opt_plan_apply); no whole dW
 * is ever stored. */
typedef struct {
    void *plan;
    int64_t i;          /* W's index in t->params */
    int64_t n_out;
    const T *W;
    int l2, clip;       /* the L2 term (factor c), the clipping (to [-v, v]) */
    T c, v;
} F(fused_ctx);

static void F(fused_block)(const void *ctx, int64_t row0, int64_t col0, int64_t rows,
                           int64_t cols, void *C, int64_t ldc)
{
    const F(fused_ctx) *f = (const F(fused_ctx) *)ctx;
    if (cols == f->n_out && ldc == cols) {  /* whole rows, packed: one span */
        cols *= rows;
        rows = 1;
    }
    for (int64_t r = 0; r < rows; r++) {
        T *g = (T *)C + r * ldc;
        const int64_t off = (row0 + r) * f->n_out + col0;
        if (f->l2)
            F(fastnn_internal_l2_add)(g, f->W + off, cols, f->c);
        if (f->clip)
            F(fastnn_internal_clamp)(g, cols, f->v);
        F(fastnn_internal_opt_plan_apply)(f->plan, f->i, off, cols, g);
    }
}

/* One pass (FASTNN_OPT_DRY, _WRITE or _WRITE_TRACK, recording into
 * t->bounds) of the fused update over every dense stage: W block by block
 * in its dW's GEMM, then b from db (clipped by fused_gradients).  The dry
 * pass gives FASTNN_EDIVERGED when a new value would not be finite. */
static int F(fused_pass)(fastnn_trainer *t, int pass, const T *x, int64_t rows, double total,
                         const double *hyper, int64_t step)
{
    const fastnn_train_spec *spec = t->spec;
    int status = F(fastnn_internal_opt_plan_prepare)(t->plan, spec->optimizer, pass,
                                                     &t->params, step, hyper);
    if (status != FASTNN_OK)
        return status;
    for (int64_t s = t->first_param_stage; s < t->n_stages; s++) {
        const fastnn_stage *st = &t->stages[s];
        if (st->kind != FASTNN_STAGE_DENSE)
            continue;
        const F(fused_ctx) f = {t->plan, t->first_param[s], st->width_out, (const T *)st->W,
                                spec->l2_alpha > 0.0, spec->clip_value_on,
                                spec->l2_alpha > 0.0 ? (T)(spec->l2_alpha / total) : (T)0,
                                (T)spec->clip_value};
        const fastnn_epilogue ep = {F(fused_block), &f};
        status = F(fastnn_internal_gemm_blocks)(1, 0, st->width_in, st->width_out, rows,
                                                s > 0 ? (const T *)t->ys[s - 1] : x,
                                                st->width_in, (const T *)t->dz[s],
                                                st->width_out, &ep);
        if (status != FASTNN_OK)
            return status;
        if (st->b != NULL)
            F(fastnn_internal_opt_plan_apply)(t->plan, t->first_param[s] + 1, 0, st->width_out,
                                              (const T *)db_of(t, s));
    }
    return F(fastnn_internal_opt_plan_finish)(t->plan, t->bounds);
}

/* clip_gradients for the fused update: db clipped by value here (dW is,
 * block by block, in fused_block); no norm (fused_run) */
static void F(fused_gradients)(fastnn_trainer *t)
{
    if (!t->spec->clip_value_on)
        return;
    for (int64_t s = t->first_param_stage; s < t->n_stages; s++)
        if (t->stages[s].kind == FASTNN_STAGE_DENSE && t->stages[s].b != NULL)
            F(fastnn_internal_clamp)((T *)db_of(t, s), t->stages[s].width_out,
                                     (T)t->spec->clip_value);
}

/* one batch: forward, loss, backward (batch_gradients), update; *loss gets
 * the batch loss and *total its total weight (sw: the batch's sample
 * weights, or NULL) */
static int F(train_batch)(fastnn_trainer *t, const T *x, const void *targets,
                           const double *sw, int64_t rows, double *loss, double *total)
{
    const fastnn_train_spec *spec = t->spec;
    const int64_t ns = t->n_stages;
    const double *hyper = batch_hyper(spec);
    if (hyper == NULL)
        return FASTNN_EINVAL;
    const int fused = t->fused;
    int status = F(batch_gradients)(t, x, targets, sw, rows, loss, total, !fused);
    if (status != FASTNN_OK)
        return status;
    if (fused)
        F(fused_gradients)(t);
    else if ((status = F(clip_gradients)(t)) != FASTNN_OK)
        return status;
    const int64_t step = spec->step + 1;
    const int proved = F(batch_proved)(t, x, rows, *total, hyper, step);
    if (!proved) {
        status = fused ? F(fused_pass)(t, FASTNN_OPT_DRY, x, rows, *total, hyper, step)
                       : F(update_all)(t, hyper, step, 0, 0);
        if (status == FASTNN_EINTERRUPTED)
            return batch_interrupted(t, ns);
        if (status != FASTNN_OK)
            return status;
    }
    if (cancelled(t))
        return batch_interrupted(t, ns);  /* the last point to drop the batch */
    /* proved: the proof's bounds on what it writes are the next batch's;
     * else the update measures what it writes */
    const int track = !proved && t->use_proof;
    if (fused) {
        /* its GEMMs run to their end: a batch is applied whole or not at all */
        const volatile sig_atomic_t *cancel = fastnn_internal_cancel;
        fastnn_internal_cancel = NULL;
        status = F(fused_pass)(t, track ? FASTNN_OPT_WRITE_TRACK : FASTNN_OPT_WRITE, x, rows,
                               *total, hyper, step);
        fastnn_internal_cancel = cancel;
    } else {
        status = F(update_all)(t, hyper, step, 1, track);
    }
    if (status != FASTNN_OK)
        return status;
    if (proved)
        adopt_proved_bounds(t);
    F(running_statistics)(t, rows);
    batch_done(t->spec, step);
    return FASTNN_OK;
}

/* A product of the tiny path: written out element by element when it is
 * that small, else by fastnn_gemm (its direct kernels); the same bits
 * either way (see fastnn_internal_gemm_tiny). */
static int F(tiny_product)(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                           const T *A, int64_t lda, const T *B, int64_t ldb, T *C, int64_t ldc)
{
    if (m * n * k <= FASTNN_GEMM_TINY_MNK) {
        F(fastnn_internal_gemm_tiny)(trans_a, trans_b, m, n, k, A, lda, B, ldb, C, ldc);
        return FASTNN_OK;
    }
    return F(fastnn_gemm)(trans_a, trans_b, m, n, k, A, lda, B, ldb, (T)0, C, ldc, NULL);
}

/* One batch of a tiny network (t->tiny; see tiny_fits in train.c): the
 * arithmetic of train_batch -- the same products (fastnn_internal_gemm_tiny
 * has fastnn_gemm's bits), activations, loss, sums and update, in the same
 * order, so the same bits -- without the kernels' set-up, which is most of
 * such a batch's time (XOR's is a few hundred multiply-adds): no validation
 * or thread pool per product, each layer's dW and dX right after its dZ.  Its
 * update is proved finite, or checked by its dry run, as train_batch's (the
 * same rule, so the same batches take the dry run).  The whole batch takes
 * about a microsecond, so the cancel flag is read once, before the update. */
static int F(tiny_batch)(fastnn_trainer *t, const T *x, const void *targets,
                          const double *sw, int64_t rows, double *loss, double *total)
{
    const fastnn_stage *stages = t->stages;
    const int64_t ns = t->n_stages;
    const T **ys = (const T **)t->ys;
    int status;
    const double *hyper = batch_hyper(t->spec);
    if (hyper == NULL)
        return FASTNN_EINVAL;

    const T *in = x;
    for (int64_t s = 0; s < ns; s++) {
        const fastnn_stage *st = &stages[s];
        const int64_t w = st->width_out;
        T *y = (T *)t->out[s];
        if (st->kind == FASTNN_STAGE_DENSE) {
            /* fastnn_dense_forward: Z = X W, + b, then the activation */
            T *z = t->z[s] != NULL ? (T *)t->z[s] : y;
            status = F(tiny_product)(0, 0, rows, w, st->width_in, in, st->width_in,
                                     (const T *)st->W, w, z, w);
            if (status != FASTNN_OK)
                return status;
            if (st->b != NULL && w < 8)
                F(add_bias_narrow)(rows, w, z, w, (const T *)st->b);
            else if (st->b != NULL)
                F(fastnn_internal_add_bias)(rows, w, z, w, (const T *)st->b);
            status = st->act == FASTNN_ACT_IDENTITY && z == y
                         ? FASTNN_OK
                         : F(fastnn_internal_act_forward)(st->act, st->alpha, st->beta, rows,
                                                          w, z, w, y, w);
        } else if (st->kind == FASTNN_STAGE_ACTIVATION) {
            status = F(fastnn_internal_act_forward)(st->act, st->alpha, st->beta, rows, w, in,
                                                    w, y, w);
        } else {
            return FASTNN_EINVAL;   /* (tiny_fits took no other kind) */
        }
        if (status != FASTNN_OK)
            return status;
        ys[s] = y;
        in = y;
    }

    status = F(batch_loss)(t, in, targets, sw, rows, loss, total);
    if (status != FASTNN_OK)
        return status;

    for (int64_t s = ns - 1; s >= t->first_param_stage; s--) {
        const fastnn_stage *st = &stages[s];
        const T *input = s > 0 ? ys[s - 1] : x;
        const int64_t w = st->width_out;
        T *cur = (T *)t->flow[s];   /* the gradient flowing down, as in train_batch */
        if (st->kind == FASTNN_STAGE_DENSE) {
            T *dz = (T *)t->dz[s];
            status = F(fastnn_internal_dense_backward_dx)(rows, st->width_in, w,
                                                          (const T *)st->W,
                                                          (const T *)t->z[s], ys[s], cur,
                                                          st->act, st->alpha, st->beta, dz,
                                                          NULL, (T *)db_of(t, s));
            if (status != FASTNN_OK)
                return status;
            /* dW = X^T dZ, then dX = dZ W^T into the stage below's flow */
            status = F(tiny_product)(1, 0, st->width_in, w, rows, input, st->width_in, dz, w,
                                     (T *)dw_of(t, s), w);
            if (status == FASTNN_OK && s > t->first_param_stage)
                status = F(tiny_product)(0, 1, rows, st->width_in, w, dz, w, (const T *)st->W,
                                         w, (T *)t->flow[s - 1], st->width_in);
            if (status != FASTNN_OK)
                return status;
        } else if (st->kind == FASTNN_STAGE_ACTIVATION) {
            status = F(fastnn_internal_act_backward)(st->act, st->alpha, st->beta, rows, w,
                                                     input, ys[s], cur, cur, w);
            if (status != FASTNN_OK)
                return status;
        } else {
            return FASTNN_EINVAL;
        }
    }

    status = F(l2_penalty)(t, *total, loss, 1);
    if (status != FASTNN_OK)
        return status;
    status = F(clip_gradients)(t);
    if (status != FASTNN_OK)
        return status;
    if (cancelled(t))
        return FASTNN_EINTERRUPTED;  /* nothing written yet (no dropout here) */
    const int64_t step = t->spec->step + 1;
    const int proved = F(batch_proved)(t, x, rows, *total, hyper, step);
    status = F(fastnn_internal_opt_update_serial)(t->spec->optimizer, &t->params, step, hyper,
                                                  !proved,
                                                  !proved && t->use_proof ? t->bounds : NULL);
    if (status != FASTNN_OK)
        return status;
    if (proved)
        adopt_proved_bounds(t);
    batch_done(t->spec, step);
    return FASTNN_OK;
}

/* the shuffled batch's rows, copied on the pool: a copy of scattered rows
 * is bound by memory latency, which two cores overlap */
typedef struct {
    const T *X;
    const int64_t *order;
    int64_t nf;
    T *xb;
} F(gather_job);

static void F(gather_rows)(const void *ctx, int64_t lo, int64_t hi)
{
    const F(gather_job) *g = (const F(gather_job) *)ctx;
    for (int64_t i = lo; i < hi; i++)
        memcpy(g->xb + i * g->nf, g->X + g->order[i] * g->nf, (size_t)g->nf * sizeof(T));
}

int F(fastnn_train_run)(fastnn_trainer *t, const T *X, const void *targets, int64_t n,
                         int64_t t_width, const int64_t *orders, int64_t n_epochs,
                         int64_t *epoch, int64_t *start, int64_t max_batches,
                         double *losses)
{
    if (t == NULL || t->elem != sizeof(T) || n < 1 || t_width < 1 || *epoch < 0 ||
        *start < 0 || *start >= n)
        return FASTNN_EINVAL;
    const int labels = fastnn_loss_labels(t->spec->loss);
    if (labels < 0)
        return FASTNN_EINVAL;
    const int64_t nf = t->n_features;
    int mean;
    switch (t->spec->reduction) {
    case FASTNN_REDUCTION_MEAN: mean = 1; break;
    case FASTNN_REDUCTION_SUM: mean = 0; break;
    default: return FASTNN_EINVAL;
    }
    if (orders != NULL && t->xb == NULL &&
        (t->xb = wmalloc((size_t)t->batch * (size_t)nf * sizeof(T))) == NULL)
        return FASTNN_ENOMEM;
    int64_t e = *epoch, pos = *start, done = 0;
    const int tiny = tiny_run(t);
    t->use_proof = proof_run(t);
    t->fused = fused_run(t, tiny);
    if (!t->fused && whole_gradients(t) != FASTNN_OK)
        return FASTNN_ENOMEM;
    /* the parameters may have changed since the last run: their bounds are
       measured again, so that the first batch can be proved too */
    if (t->use_proof)
        F(fastnn_internal_opt_measure)(&t->params, t->bounds);
    int status = FASTNN_OK;
    /* the GEMMs this thread starts read the cancel flag too */
    const volatile sig_atomic_t *outer_cancel = fastnn_internal_cancel;
    fastnn_internal_cancel = t->cancel;
    while (e < n_epochs && done < max_batches) {
        if (cancelled(t)) {
            status = FASTNN_EINTERRUPTED;
            break;
        }
        const int64_t rows = n - pos < t->batch ? n - pos : t->batch;
        const T *x;
        const void *tg;
        const double *sw = t->spec->loss_args.sample_weight;
        if (orders == NULL) {
            if (sw != NULL)
                sw += pos;
            x = X + pos * nf;
            tg = labels ? (const void *)((const int64_t *)targets + pos)
                        : (const void *)((const T *)targets + pos * t_width);
        } else {
            const int64_t *order = orders + e * n + pos;
            const F(gather_job) gather = {X, order, nf, (T *)t->xb};
            /* work: the elements read and written */
            fastnn_internal_parallel_ranges(F(gather_rows), &gather, rows, 2 * rows * nf);
            if (labels) {
                int64_t *tb = (int64_t *)t->tb;
                for (int64_t i = 0; i < rows; i++)
                    tb[i] = ((const int64_t *)targets)[order[i]];
            } else {
                T *tb = (T *)t->tb;
                for (int64_t i = 0; i < rows; i++)
                    for (int64_t j = 0; j < t_width; j++)
                        tb[i * t_width + j] = ((const T *)targets)[order[i] * t_width + j];
            }
            if (sw != NULL) {
                for (int64_t i = 0; i < rows; i++)
                    t->wb[i] = sw[order[i]];
                sw = t->wb;
            }
            x = (const T *)t->xb;
            tg = t->tb;
        }
        double value, total;
        status = tiny ? F(tiny_batch)(t, x, tg, sw, rows, &value, &total)
                      : F(train_batch)(t, x, tg, sw, rows, &value, &total);
        if (status != FASTNN_OK)
            break;              /* the position stays at the failed batch */
        losses[e] += !mean ? value : t->spec->loss_by_rows ? value * (double)rows
                                                           : value * total;
        done++;
        pos += rows;
        if (pos >= n) {
            pos = 0;
            e++;
        }
    }
    fastnn_internal_cancel = outer_cancel;
    *epoch = e;
    *start = pos;
    return status;
}


int F(fastnn_train_gradient)(fastnn_trainer *t, const T *X, const void *targets, int64_t n,
                             double *loss)
{
    if (t == NULL || t->elem != sizeof(T) || X == NULL || targets == NULL || loss == NULL ||
        n < 1 || n > t->batch || fastnn_loss_labels(t->spec->loss) < 0 ||
        t->spec->reduction < 0 || t->spec->reduction >= FASTNN_N_REDUCTION ||
        t->own_grads)   /* the gradient goes to the caller's arrays */
        return FASTNN_EINVAL;
    const volatile sig_atomic_t *outer_cancel = fastnn_internal_cancel;
    fastnn_internal_cancel = t->cancel;
    double total;
    const int status = F(batch_gradients)(t, X, targets, t->spec->loss_args.sample_weight, n,
                                          loss, &total, 1);
    fastnn_internal_cancel = outer_cancel;
    return status;
}
