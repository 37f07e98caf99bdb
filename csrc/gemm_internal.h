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

#include <stdatomic.h>
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

/* Direct small-product kernels (template in gemm_impl.h under
 * FASTNN_GEMM_SMALL_TEMPLATE): C = op(A) @ op(B) (+ beta*C), no packing, no
 * allocation, one thread, no epilogue (the driver calls it once over all of
 * C).  Return 0 when done, -1 when the shape is not theirs (the driver then
 * takes the packed path). */
typedef int (*fastnn_small_f32)(int trans_a, int trans_b, int64_t m, int64_t n,
                                int64_t k, const float *A, int64_t lda,
                                const float *B, int64_t ldb, float beta,
                                float *C, int64_t ldc);
typedef int (*fastnn_small_f64)(int trans_a, int trans_b, int64_t m, int64_t n,
                                int64_t k, const double *A, int64_t lda,
                                const double *B, int64_t ldb, double beta,
                                double *C, int64_t ldc);
int fastnn_gemm_small_generic_f32(int, int, int64_t, int64_t, int64_t,
                                  const float *, int64_t, const float *,
                                  int64_t, float, float *, int64_t);
int fastnn_gemm_small_generic_f64(int, int, int64_t, int64_t, int64_t,
                                  const double *, int64_t, const double *,
                                  int64_t, double, double *, int64_t);
#ifdef FASTNN_HAVE_X86_KERNELS
int fastnn_gemm_small_avx2_f32(int, int, int64_t, int64_t, int64_t,
                               const float *, int64_t, const float *, int64_t,
                               float, float *, int64_t);
int fastnn_gemm_small_avx2_f64(int, int, int64_t, int64_t, int64_t,
                               const double *, int64_t, const double *,
                               int64_t, double, double *, int64_t);
int fastnn_gemm_small_avx512_f32(int, int, int64_t, int64_t, int64_t,
                                 const float *, int64_t, const float *,
                                 int64_t, float, float *, int64_t);
int fastnn_gemm_small_avx512_f64(int, int, int64_t, int64_t, int64_t,
                                 const double *, int64_t, const double *,
                                 int64_t, double, double *, int64_t);
#endif

/* When the driver takes the direct path (a function of the shape and the
 * ISA only, so results never depend on the thread count):
 *   m*n*k <= FASTNN_GEMM_SMALL_MNK (AVX2 / AVX-512; the largest m*n*k the
 *   packed path runs on one thread anyway: 2*m*n*k < FASTNN_GEMM_MT_FLOPS) or
 *   FASTNN_GEMM_SMALL_MNK_GENERIC (portable kernels), and, when B is
 *   transposed, k <= FASTNN_GEMM_SMALL_KMAX_T (the transposed panel of op(B)
 *   must fit the kernels' 16 KB stack buffer: VL*k elements).
 * Measured on a Xeon (Sapphire Rapids class, one thread, medians, ratio
 * direct/packed): AVX-512 and AVX2 0.1-0.2 for XOR-sized products, 0.5-0.8 for
 * 32..64-sized ones, 0.8-1.0 at m*n*k ~ 1e6 (max seen 1.06-1.2 on B^T with
 * k = 1 and n = 1000, the packed path's best case); the portable
 * kernels 0.8-1.0 up to 131072, 1.0-1.1 above. */
#ifndef FASTNN_GEMM_SMALL_MNK
#define FASTNN_GEMM_SMALL_MNK 999999
#endif
#ifndef FASTNN_GEMM_SMALL_MNK_GENERIC
#define FASTNN_GEMM_SMALL_MNK_GENERIC 131072
#endif
#ifndef FASTNN_GEMM_SMALL_KMAX_T
#define FASTNN_GEMM_SMALL_KMAX_T 256
#endif

/* The ISA in use, read without a call (dispatch.c owns it; -1 until chosen). */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((visibility("hidden")))
#endif
extern atomic_int fastnn_internal_isa;

static inline int fastnn_internal_get_isa(void)
{
    int isa = atomic_load_explicit(&fastnn_internal_isa, memory_order_relaxed);
    return isa >= 0 ? isa : fastnn_get_isa();
}

/* How far ahead (bytes) a packing routine prefetches the rows it is
 * reading: a packed block's source is often in L3 or memory, and its rows
 * are many separate streams. */
#ifndef FASTNN_GEMM_PACK_PF
#define FASTNN_GEMM_PACK_PF 256
#endif

/* Units of work the packed path aims for (row blocks x column blocks). */
#ifndef FASTNN_GEMM_UNITS
#define FASTNN_GEMM_UNITS 8
#endif

/* Widest unit of work, in bytes of a row of C (a multiple of nr columns). */
#ifndef FASTNN_GEMM_NU_BYTES
#define FASTNN_GEMM_NU_BYTES 2048
#endif

/* Largest full-k packed block (bytes) a thread keeps between two units. */
#ifndef FASTNN_GEMM_CACHE_BYTES
#define FASTNN_GEMM_CACHE_BYTES (8LL << 20)
#endif

/* Below this many flops (2*m*n*k) a GEMM runs on one thread. */
#ifndef FASTNN_GEMM_MT_FLOPS
#define FASTNN_GEMM_MT_FLOPS 2000000.0
#endif

/* the direct path is single-threaded: keep it below the threading threshold */
_Static_assert((long long)(FASTNN_GEMM_MT_FLOPS) > 2LL * FASTNN_GEMM_SMALL_MNK &&
                   (long long)(FASTNN_GEMM_MT_FLOPS) >
                       2LL * FASTNN_GEMM_SMALL_MNK_GENERIC,
               "direct GEMM path limits must stay below FASTNN_GEMM_MT_FLOPS");

#endif /* FASTNN_GEMM_INTERNAL_H */
