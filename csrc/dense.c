/*
 * dense.c -- a dense layer's forward and backward pass over fastnn_gemm.
 *
 * Why it is built this way: a dense layer is a GEMM plus elementwise work,
 * and the elementwise work is cheap only while the data is in cache.  The
 * forward pass therefore hands the GEMM an epilogue that, for every finished
 * block of Z = X @ W, adds the bias and applies the activation right away, on
 * the thread that computed the block.  Softmax needs whole rows: it is fused
 * only for blocks that span all columns, otherwise it runs as a row pass
 * after the GEMM.  The backward pass computes dZ = act'(dY) over the whole
 * block (one call: per-row calls cost more than the work on small layers),
 * then the bias gradient db in one sequential pass over the rows (db[j]
 * accumulated row by row, NumPy's order for sum(axis=0); pairwise for a
 * single column, again NumPy's order), then two GEMMs: dX = dZ W^T and
 * dW = X^T dZ.  The two halves (dZ, db, dX; then dW) are also entry points of
 * their own: the trainer runs the first half of every layer before the
 * second of any, so that the update can run in dW's epilogue.  No reduction
 * is ever split across threads, so results do not depend on the thread
 * count.
 *
 * The arithmetic per element is the reference's (NumpyOps.dense_forward /
 * dense_backward): only the GEMM's summation order differs from NumPy's.
 *
 * The body is written once over T in dense_impl.h, included once per dtype.
 */

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "fastnn.h"
#include "internal.h"

#define FASTNN_TEMPLATE "dense_impl.h"
#include "per_dtype.h"
