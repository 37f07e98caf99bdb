/*
 * gemm_internal.h -- what the GEMM driver (gemm.c / gemm_impl.h) needs to
 * know about a micro-kernel.  Not part of the public API.
 *
 * Packed layouts (zero padded to full mr / nr, so kernels never read junk):
 *   A block  : ceil(mc/mr) micro-panels, each kc x mr:  Ap[p*mr + i]
 *   B panel  : ceil(nc/nr) micro-panels, each kc x nr:  Bp[p*nr + j]
 * Kernel contract: acc = sum_p Ap[p*mr+i] * Bp[p*nr+j] (p ascending, one
 * accumulator per element, so the bits do not depend on where the tile sits),
 * then for i < mr_eff, j < nr_eff:
 *   beta == 0 : C[i*ldc+j] = acc            (C is not read)
 *   otherwise : C[i*ldc+j] = acc + beta*C[i*ldc+j]
 */
#ifndef FASTNN_GEMM_INTERNAL_H
#define FASTNN_GEMM_INTERNAL_H

#include <stdint.h>

#include "fastnn.h"

typedef void (*fastnn_ukern_f32)(int64_t kc, const float *Ap, const float *Bp,
                                 float *C, int64_t ldc, int64_t mr_eff,
                                 int64_t nr_eff, float beta);
typedef void (*fastnn_ukern_f64)(int64_t kc, const double *Ap,
                                 const double *Bp, double *C, int64_t ldc,
                                 int64_t mr_eff, int64_t nr_eff, double beta);

/* Optional transposing pack: D[p*R + r] = S[r*lds + p] for r < rows,
 * 0 for rows <= r < R, p < kc.  Packs an A micro-panel when A is not
 * transposed and a B micro-panel when B is.  NULL: portable loops. */
typedef void (*fastnn_packt_f32)(const float *S, int64_t lds, int64_t rows,
                                 int64_t kc, int R, float *D);
typedef void (*fastnn_packt_f64)(const double *S, int64_t lds, int64_t rows,
                                 int64_t kc, int R, double *D);

/* Optional copying pack: D[p*R + r] = S[p*lds + r] for r < cols, 0 for
 * cols <= r < R, p < kc.  Packs an A micro-panel when A is transposed and a
 * B micro-panel when B is not.  NULL: portable loops. */
typedef void (*fastnn_packn_f32)(const float *S, int64_t lds, int64_t cols,
                                 int64_t kc, int R, float *D);
typedef void (*fastnn_packn_f64)(const double *S, int64_t lds, int64_t cols,
                                 int64_t kc, int R, double *D);

/* Blocking of one ISA/dtype.  kc is the only parameter that changes the
 * rounding (k is cut into ceil(k/kc) nearly equal slices); mc, nc and ns
 * (column width of one unit of work, a multiple of nr) only decide how the
 * work is cut, never the arithmetic. */
typedef struct {
    int mr, nr;
    int64_t kc, mc, nc, ns;
    fastnn_ukern_f32 kern;
    fastnn_packt_f32 pack_t;
    fastnn_packn_f32 pack_n;
} fastnn_gemm_cfg_f32;

typedef struct {
    int mr, nr;
    int64_t kc, mc, nc, ns;
    fastnn_ukern_f64 kern;
    fastnn_packt_f64 pack_t;
    fastnn_packn_f64 pack_n;
} fastnn_gemm_cfg_f64;

void fastnn_gemm_cfg_generic_f32(fastnn_gemm_cfg_f32 *cfg);
void fastnn_gemm_cfg_generic_f64(fastnn_gemm_cfg_f64 *cfg);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define FASTNN_HAVE_X86_KERNELS 1
void fastnn_gemm_cfg_avx2_f32(fastnn_gemm_cfg_f32 *cfg);
void fastnn_gemm_cfg_avx2_f64(fastnn_gemm_cfg_f64 *cfg);
void fastnn_gemm_cfg_avx512_f32(fastnn_gemm_cfg_f32 *cfg);
void fastnn_gemm_cfg_avx512_f64(fastnn_gemm_cfg_f64 *cfg);
#endif

/* Below this many flops (2*m*n*k) a GEMM runs on one thread. */
#ifndef FASTNN_GEMM_MT_FLOPS
#define FASTNN_GEMM_MT_FLOPS 2000000.0
#endif

#endif /* FASTNN_GEMM_INTERNAL_H */
