/*
 * gemm_generic.c -- portable C micro-kernels (any architecture).
 * MR x NR accumulators in a local array; fixed trip counts so the compiler
 * can keep them in registers and vectorize with the baseline ISA.
 */
#include <stdint.h>

#include "gemm_internal.h"

#define GEN_MR_F32 4
#define GEN_NR_F32 8
#define GEN_MR_F64 4
#define GEN_NR_F64 4

#define DEFINE_GENERIC_KERNEL(NAME, T, MR, NR)                                 \
    static void NAME(int64_t kc, const T *restrict Ap, const T *restrict Bp,   \
                     T *restrict C, int64_t ldc, int64_t mr_eff,               \
                     int64_t nr_eff, T beta)                                   \
    {                                                                          \
        T acc[MR][NR];                                                         \
        for (int i = 0; i < MR; i++)                                           \
            for (int j = 0; j < NR; j++)                                       \
                acc[i][j] = (T)0;                                              \
        for (int64_t p = 0; p < kc; p++) {                                     \
            const T *a = Ap + p * MR;                                          \
            const T *b = Bp + p * NR;                                          \
            for (int i = 0; i < MR; i++)                                       \
                for (int j = 0; j < NR; j++)                                   \
                    acc[i][j] += a[i] * b[j];                                  \
        }                                                                      \
        if (beta == (T)0) {                                                    \
            for (int64_t i = 0; i < mr_eff; i++)                               \
                for (int64_t j = 0; j < nr_eff; j++)                           \
                    C[i * ldc + j] = acc[i][j];                                \
        } else {                                                               \
            for (int64_t i = 0; i < mr_eff; i++)                               \
                for (int64_t j = 0; j < nr_eff; j++)                           \
                    C[i * ldc + j] = acc[i][j] + beta * C[i * ldc + j];        \
        }                                                                      \
    }

DEFINE_GENERIC_KERNEL(kern_generic_f32, float, GEN_MR_F32, GEN_NR_F32)
DEFINE_GENERIC_KERNEL(kern_generic_f64, double, GEN_MR_F64, GEN_NR_F64)

void fastnn_gemm_cfg_generic_f32(fastnn_gemm_cfg_f32 *cfg)
{
    cfg->mr = GEN_MR_F32;
    cfg->nr = GEN_NR_F32;
    cfg->kc = 256;
    cfg->mc = 128;
    cfg->nc = 2048;
    cfg->ns = 64;
    cfg->kern = kern_generic_f32;
    cfg->pack_t = 0;
    cfg->pack_n = 0;
}

void fastnn_gemm_cfg_generic_f64(fastnn_gemm_cfg_f64 *cfg)
{
    cfg->mr = GEN_MR_F64;
    cfg->nr = GEN_NR_F64;
    cfg->kc = 256;
    cfg->mc = 128;
    cfg->nc = 2048;
    cfg->ns = 64;
    cfg->kern = kern_generic_f64;
    cfg->pack_t = 0;
    cfg->pack_n = 0;
}
