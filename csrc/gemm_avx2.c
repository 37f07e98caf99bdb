/*
 * gemm_avx2.c -- AVX2+FMA micro-kernels.  Compiled without -march: every
 * function carries __attribute__((target("avx2,fma"))) and is only called
 * after dispatch.c has checked the CPU.
 *
 * f32: MR x NR = 6 x 16 (2 ymm per row, 12 accumulators)
 * f64: MR x NR = 6 x 8  (2 ymm per row, 12 accumulators)
 * Partial tiles run a smaller body (2 or 4 rows, 1 vector per row) over the
 * same packed layout, and use masked loads/stores on the n edge
 * (gemm_ukernel_impl.h, shared with gemm_avx512.c).
 */
#include <stdint.h>

#include "gemm_internal.h"
#include "internal.h"

#ifdef FASTNN_HAVE_X86_KERNELS

#include <immintrin.h>

#define TGT __attribute__((target("avx2,fma")))

/* packing prefetch distance, in elements (FASTNN_GEMM_PACK_PF bytes) */
#define PF_F32 (FASTNN_GEMM_PACK_PF / (int64_t)sizeof(float))
#define PF_F64 (FASTNN_GEMM_PACK_PF / (int64_t)sizeof(double))

#define AVX2_MR_F32 6
#define AVX2_MR_F64 6
#define AVX2_NV 2


/* Masked stores are slow on some CPUs (microcoded on AMD Zen: tens of cycles
 * each), and a panel of MR = 6 rows is not a whole number of vectors.  A
 * vector of the last w < VL lanes of row p of a panel may be stored whole:
 * its extra lanes fall on the first lanes of row p + 1, which are written
 * later -- the lanes r0 >= 0 go from the last vector down, and the rows in
 * order -- except past the last row (p = kc - 1), stored masked. */
#define SPILL(w, vl, p, kc) ((w) == (vl) || (p) + 1 < (kc))

/* ---- transposing pack: D[p*R + r] = S[r*lds + p] (r < rows), 0 above ---- */

static TGT inline __m256i lane_mask8(int64_t n) /* first n of 8 int32 lanes */
{
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), idx);
}

static TGT inline __m256i lane_mask4(int64_t n) /* first n of 4 int64 lanes */
{
    const __m256i idx = _mm256_setr_epi64x(0, 1, 2, 3);
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), idx);
}

static TGT void packt_avx2_f32(const float *S, int64_t lds, int64_t rows,
                               int64_t kc, int R, float *D)
{
    for (int r0 = (R - 1) / 8 * 8; r0 >= 0; r0 -= 8) { /* (see SPILL) */
        const int w = (R - r0 < 8) ? R - r0 : 8;
        const __m256i wm = lane_mask8(w);
        const int64_t nrow = rows - r0 < 0 ? 0 : (rows - r0 < 8 ? rows - r0 : 8);
        for (int64_t p = 0; p < kc; p += 8) {
            const int64_t pc = (kc - p < 8) ? kc - p : 8;
            const __m256i pm = lane_mask8(pc);
            __m256 r[8];
            if (p + PF_F32 < kc) /* the same rows, a few lines ahead */
                for (int i = 0; i < nrow; i++)
                    _mm_prefetch((const char *)(S + (r0 + i) * lds + p + PF_F32), _MM_HINT_T0);
            for (int i = 0; i < 8; i++)
                r[i] = (i < nrow) ? _mm256_maskload_ps(S + (r0 + i) * lds + p, pm)
                                  : _mm256_setzero_ps();
            __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
            __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
            __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
            __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
            __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
            r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
            r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
            r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
            r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
            r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
            r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
            r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
            for (int q = 0; q < 8; q++) {
                if (q >= pc)
                    break;
                if (SPILL(w, 8, p + q, kc))
                    _mm256_storeu_ps(D + (p + q) * R + r0, r[q]);
                else
                    _mm256_maskstore_ps(D + (p + q) * R + r0, wm, r[q]);
            }
        }
    }
}

static TGT void packt_avx2_f64(const double *S, int64_t lds, int64_t rows,
                               int64_t kc, int R, double *D)
{
    for (int r0 = (R - 1) / 4 * 4; r0 >= 0; r0 -= 4) { /* (see SPILL) */
        const int w = (R - r0 < 4) ? R - r0 : 4;
        const __m256i wm = lane_mask4(w);
        const int64_t nrow = rows - r0 < 0 ? 0 : (rows - r0 < 4 ? rows - r0 : 4);
        for (int64_t p = 0; p < kc; p += 4) {
            const int64_t pc = (kc - p < 4) ? kc - p : 4;
            const __m256i pm = lane_mask4(pc);
            __m256d r[4];
            if (p + PF_F64 < kc) /* the same rows, a few lines ahead */
                for (int i = 0; i < nrow; i++)
                    _mm_prefetch((const char *)(S + (r0 + i) * lds + p + PF_F64), _MM_HINT_T0);
            for (int i = 0; i < 4; i++)
                r[i] = (i < nrow) ? _mm256_maskload_pd(S + (r0 + i) * lds + p, pm)
                                  : _mm256_setzero_pd();
            __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
            __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
            r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
            r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
            r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
            r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
            for (int q = 0; q < 4; q++) {
                if (q >= pc)
                    break;
                if (SPILL(w, 4, p + q, kc))
                    _mm256_storeu_pd(D + (p + q) * R + r0, r[q]);
                else
                    _mm256_maskstore_pd(D + (p + q) * R + r0, wm, r[q]);
            }
        }
    }
}

/* ---- copying pack: D[p*R + r] = S[p*lds + r] (r < cols), 0 above ------- */
/* A full micro-panel (the usual B panel) is copied row by row: each source
 * row's R elements are read at once, where strips of one vector read every
 * row's cache lines once per strip (kc rows at a large stride outgrow L1
 * between two strips: measured 10% of an AVX2 64x784 @ 784x256). */

static TGT void packn_avx2_f32(const float *S, int64_t lds, int64_t cols,
                               int64_t kc, int R, float *D)
{
    if (cols == R && R == 16) {
        for (int64_t p = 0; p < kc; p++) {
            const float *s = S + p * lds;
            float *d = D + p * 16;
            _mm256_storeu_ps(d, _mm256_loadu_ps(s));
            _mm256_storeu_ps(d + 8, _mm256_loadu_ps(s + 8));
        }
        return;
    }
    for (int r0 = (R - 1) / 8 * 8; r0 >= 0; r0 -= 8) { /* (see SPILL) */
        const int w = (R - r0 < 8) ? R - r0 : 8;
        const __m256i wm = lane_mask8(w);
        const int64_t c = cols - r0 < 0 ? 0 : (cols - r0 < w ? cols - r0 : w);
        const __m256i cm = lane_mask8(c);
        if (w == 8 && c == 8)
            for (int64_t p = 0; p < kc; p++)
                _mm256_storeu_ps(D + p * R + r0, _mm256_loadu_ps(S + p * lds + r0));
        else
            for (int64_t p = 0; p < kc; p++) {
                const __m256 v = _mm256_maskload_ps(S + p * lds + r0, cm);
                if (SPILL(w, 8, p, kc))
                    _mm256_storeu_ps(D + p * R + r0, v);
                else
                    _mm256_maskstore_ps(D + p * R + r0, wm, v);
            }
    }
}

static TGT void packn_avx2_f64(const double *S, int64_t lds, int64_t cols,
                               int64_t kc, int R, double *D)
{
    if (cols == R && R == 8) {
        for (int64_t p = 0; p < kc; p++) {
            const double *s = S + p * lds;
            double *d = D + p * 8;
            _mm256_storeu_pd(d, _mm256_loadu_pd(s));
            _mm256_storeu_pd(d + 4, _mm256_loadu_pd(s + 4));
        }
        return;
    }
    for (int r0 = (R - 1) / 4 * 4; r0 >= 0; r0 -= 4) { /* (see SPILL) */
        const int w = (R - r0 < 4) ? R - r0 : 4;
        const __m256i wm = lane_mask4(w);
        const int64_t c = cols - r0 < 0 ? 0 : (cols - r0 < w ? cols - r0 : w);
        const __m256i cm = lane_mask4(c);
        if (w == 4 && c == 4)
            for (int64_t p = 0; p < kc; p++)
                _mm256_storeu_pd(D + p * R + r0, _mm256_loadu_pd(S + p * lds + r0));
        else
            for (int64_t p = 0; p < kc; p++) {
                const __m256d v = _mm256_maskload_pd(S + p * lds + r0, cm);
                if (SPILL(w, 4, p, kc))
                    _mm256_storeu_pd(D + p * R + r0, v);
                else
                    _mm256_maskstore_pd(D + p * R + r0, wm, v);
            }
    }
}

/* ---- the micro-kernel (gemm_ukernel_impl.h) and the direct small-product
 * kernels (gemm_impl.h), written once over T, with the vector operations
 * SK_* of the dtype defined for both ---------------------------------------- */

#define FASTNN_GEMM_SMALL_TEMPLATE 1
#define ISFX avx2
#define NV 2
#define R0 6
#define SK_HAVE_PACKT 1
#define MASK_T __m256i
#define KR1 6 /* = AVX2_MR_F32 = AVX2_MR_F64 */
#define KR2 4
#define KR3 2

#define T float
#define SFX f32
#define VT __m256
#define VL 8
#define SK_MASK(cnt) lane_mask8(cnt)
#define SK_ZERO() _mm256_setzero_ps()
#define SK_SET1(x) _mm256_set1_ps(x)
#define SK_LOAD(p) _mm256_loadu_ps(p)
#define SK_LOADM(p, mk) _mm256_maskload_ps(p, mk)
#define SK_STORE(p, v) _mm256_storeu_ps(p, v)
#define SK_STOREM(p, mk, v) _mm256_maskstore_ps(p, mk, v)
#define SK_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define SK_PACKT packt_avx2_f32
#define MR AVX2_MR_F32
#define NR (8 * AVX2_NV)
#include "gemm_ukernel_tiles.h"
#undef MR
#undef NR
#include "gemm_impl.h"
#undef T
#undef SFX
#undef VT
#undef VL
#undef SK_MASK
#undef SK_ZERO
#undef SK_SET1
#undef SK_LOAD
#undef SK_LOADM
#undef SK_STORE
#undef SK_STOREM
#undef SK_FMA
#undef SK_PACKT

#define T double
#define SFX f64
#define VT __m256d
#define VL 4
#define SK_MASK(cnt) lane_mask4(cnt)
#define SK_ZERO() _mm256_setzero_pd()
#define SK_SET1(x) _mm256_set1_pd(x)
#define SK_LOAD(p) _mm256_loadu_pd(p)
#define SK_LOADM(p, mk) _mm256_maskload_pd(p, mk)
#define SK_STORE(p, v) _mm256_storeu_pd(p, v)
#define SK_STOREM(p, mk, v) _mm256_maskstore_pd(p, mk, v)
#define SK_FMA(a, b, c) _mm256_fmadd_pd(a, b, c)
#define SK_PACKT packt_avx2_f64
#define MR AVX2_MR_F64
#define NR (4 * AVX2_NV)
#include "gemm_ukernel_tiles.h"
#undef MR
#undef NR
#include "gemm_impl.h"

void fastnn_gemm_cfg_avx2_f32(fastnn_gemm_cfg_f32 *cfg)
{
    cfg->mr = AVX2_MR_F32;
    cfg->nr = 8 * AVX2_NV;
    cfg->kc = 256;
    cfg->mc = 144;
    cfg->nc = 4096;
    cfg->ns = 64;
    cfg->kern = kern_avx2_f32;
    cfg->pack_t = packt_avx2_f32;
    cfg->pack_n = packn_avx2_f32;
}

void fastnn_gemm_cfg_avx2_f64(fastnn_gemm_cfg_f64 *cfg)
{
    cfg->mr = AVX2_MR_F64;
    cfg->nr = 4 * AVX2_NV;
    cfg->kc = 256;
    cfg->mc = 96;
    cfg->nc = 4096;
    cfg->ns = 32;
    cfg->kern = kern_avx2_f64;
    cfg->pack_t = packt_avx2_f64;
    cfg->pack_n = packn_avx2_f64;
}

#endif /* FASTNN_HAVE_X86_KERNELS */
