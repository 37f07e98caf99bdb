/*
 * tables.c -- the X-macro tables of fastnn.h at run time: names and
 * properties by code.
 *
 * Why it is built this way: each concept (activation, loss, optimizer,
 * reduction, ISA) is declared once, in fastnn.h; the wrapper must not keep a
 * second list by hand, so it asks these functions, and a test compares them
 * with the Python reference's tables.  Every function is an expansion of the
 * one list, and an unknown code gets NULL or FASTNN_EINVAL, never a default
 * row.
 */
#include <stddef.h>

#include "fastnn.h"
#include "internal.h"

/* every optimizer fits the trainer's state and hyper-parameter arrays */
#define CHECK_OPT(ID, name, n_state, n_hyper, root, hypers)                       \
    _Static_assert((n_state) >= 0 && (n_state) <= FASTNN_OPT_MAX_STATE,           \
                   #name ": n_state exceeds FASTNN_OPT_MAX_STATE");               \
    _Static_assert((n_hyper) >= 0 && (n_hyper) <= FASTNN_OPT_MAX_HYPER,           \
                   #name ": n_hyper exceeds FASTNN_OPT_MAX_HYPER");
FASTNN_OPTIMIZERS(CHECK_OPT)
#undef CHECK_OPT

/* one lookup per column: switch over the rows, NULL / FASTNN_EINVAL otherwise */
#define ACT_NAME(ID, name, needs_z, rowwise) case FASTNN_ACT_##ID: return #name;
#define LOSS_NAME(ID, name, python_name, labels, params, vector) \
    case FASTNN_LOSS_##ID: return #name;
#define LOSS_PYNAME(ID, name, python_name, labels, params, vector) \
    case FASTNN_LOSS_##ID: return python_name;
#define LOSS_LABELS(ID, name, python_name, labels, params, vector) \
    case FASTNN_LOSS_##ID: return labels;
#define LOSS_PARAMS(ID, name, python_name, labels, params, vector) \
    case FASTNN_LOSS_##ID: return params;
#define LOSS_VECTOR(ID, name, python_name, labels, params, vector) \
    case FASTNN_LOSS_##ID: return vector;
#define OPT_NAME(ID, name, n_state, n_hyper, root, hypers) case FASTNN_OPT_##ID: return #name;
#define OPT_N_STATE(ID, name, n_state, n_hyper, root, hypers) case FASTNN_OPT_##ID: return n_state;
#define OPT_N_HYPER(ID, name, n_state, n_hyper, root, hypers) case FASTNN_OPT_##ID: return n_hyper;
#define OPT_ROOT(ID, name, n_state, n_hyper, root, hypers) case FASTNN_OPT_##ID: return root;
#define OPT_HYPERS(ID, name, n_state, n_hyper, root, hypers) case FASTNN_OPT_##ID: return hypers;
#define REDUCTION_NAME(ID, name) case FASTNN_REDUCTION_##ID: return #name;
#define METRIC_NAME(ID, name, labels) case FASTNN_METRIC_##ID: return #name;
#define METRIC_LABELS(ID, name, labels) case FASTNN_METRIC_##ID: return labels;

const char *fastnn_activation_name(int act)
{
    switch (act) {
    FASTNN_ACTIVATIONS(ACT_NAME)
    default: return NULL;
    }
}

int fastnn_activation_needs_z(int act)
{
    return fastnn_internal_act_needs_z(act);
}

int fastnn_activation_rowwise(int act)
{
    return fastnn_internal_act_rowwise(act);
}

const char *fastnn_loss_name(int loss)
{
    switch (loss) {
    FASTNN_LOSSES(LOSS_NAME)
    default: return NULL;
    }
}

const char *fastnn_loss_python_name(int loss)
{
    switch (loss) {
    FASTNN_LOSSES(LOSS_PYNAME)
    default: return NULL;
    }
}

int fastnn_loss_labels(int loss)
{
    switch (loss) {
    FASTNN_LOSSES(LOSS_LABELS)
    default: return FASTNN_EINVAL;
    }
}

const char *fastnn_loss_params(int loss)
{
    switch (loss) {
    FASTNN_LOSSES(LOSS_PARAMS)
    default: return NULL;
    }
}

const char *fastnn_loss_vector(int loss)
{
    switch (loss) {
    FASTNN_LOSSES(LOSS_VECTOR)
    default: return NULL;
    }
}

const char *fastnn_optimizer_name(int opt)
{
    switch (opt) {
    FASTNN_OPTIMIZERS(OPT_NAME)
    default: return NULL;
    }
}

int fastnn_optimizer_n_state(int opt)
{
    switch (opt) {
    FASTNN_OPTIMIZERS(OPT_N_STATE)
    default: return FASTNN_EINVAL;
    }
}

int fastnn_optimizer_n_hyper(int opt)
{
    switch (opt) {
    FASTNN_OPTIMIZERS(OPT_N_HYPER)
    default: return FASTNN_EINVAL;
    }
}

int fastnn_optimizer_root(int opt)
{
    switch (opt) {
    FASTNN_OPTIMIZERS(OPT_ROOT)
    default: return FASTNN_EINVAL;
    }
}

const char *fastnn_optimizer_hypers(int opt)
{
    switch (opt) {
    FASTNN_OPTIMIZERS(OPT_HYPERS)
    default: return NULL;
    }
}

const char *fastnn_reduction_name(int reduction)
{
    switch (reduction) {
    FASTNN_REDUCTIONS(REDUCTION_NAME)
    default: return NULL;
    }
}

const char *fastnn_metric_name(int metric)
{
    switch (metric) {
    FASTNN_METRICS(METRIC_NAME)
    default: return NULL;
    }
}

int fastnn_metric_labels(int metric)
{
    switch (metric) {
    FASTNN_METRICS(METRIC_LABELS)
    default: return FASTNN_EINVAL;
    }
}
