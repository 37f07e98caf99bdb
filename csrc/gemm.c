/*
 * gemm.c -- fastnn_gemm_f32 / fastnn_gemm_f64: blocked, packed GEMM driver
 * over the per-ISA micro-kernels (gemm_generic.c, gemm_avx2.c,
 * gemm_avx512.c), generated from one templated body (gemm_impl.h), with a
 * direct (unpacked, allocation-free, single-threaded) path for small
 * products.
 */
#include <stdint.h>
#include <stdlib.h>

#include "fastnn.h"
#include "gemm_internal.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define T float
#define SFX f32
#include "gemm_impl.h"
#undef T
#undef SFX

#define T double
#define SFX f64
#include "gemm_impl.h"
#undef T
#undef SFX
