/*
 * gemm_avx512.c -- AVX-512F micro-kernels.  Compiled without -march: every
 * function carries __attribute__((target("avx512f"))) and is only called
 * after dispatch.c has checked the CPU.
 *
 * f32: MR x NR = 12 x 32 (2 zmm per row, 24 accumulators)
 * f64: MR x NR = 12 x 16 (2 zmm per row, 24 accumulators)
 * Partial tiles run a smaller body (4 or 8 rows, 1 vector per row) over the
 * same packed layout, and use masked loads/stores on the n edge.  Every body
 * computes each element with the same fma chain, so results do not depend
 * on which body ran.
 */
#include <stdint.h>

#include "gemm_internal.h"
#include "internal.h"

#ifdef FASTNN_HAVE_X86_KERNELS

#include <immintrin.h>

#define TGT __attribute__((target("avx512f")))

/* packing prefetch distance, in elements (FASTNN_GEMM_PACK_PF bytes) */
#define PF_F32 (FASTNN_GEMM_PACK_PF / (int64_t)sizeof(float))
#define PF_F64 (FASTNN_GEMM_PACK_PF / (int64_t)sizeof(double))

#define MR_F32 12
#define NV_F32 2
#define MR_F64 12
#define NV_F64 2

/* ---- transposing pack: D[p*R + r] = S[r*lds + p] (r < rows), 0 above ---- */

static TGT inline void transpose16_ps(__m512 r[16])
{
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    /* u[4j+c], lane l: rows 4j..4j+3 of column 4l+c */
    for (int j = 0; j < 4; j++) {
        u[4 * j + 0] = _mm512_shuffle_ps(t[4 * j], t[4 * j + 2], 0x44);
        u[4 * j + 1] = _mm512_shuffle_ps(t[4 * j], t[4 * j + 2], 0xEE);
        u[4 * j + 2] = _mm512_shuffle_ps(t[4 * j + 1], t[4 * j + 3], 0x44);
        u[4 * j + 3] = _mm512_shuffle_ps(t[4 * j + 1], t[4 * j + 3], 0xEE);
    }
    for (int c = 0; c < 4; c++) {
        __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
        __m512 v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
        __m512 w0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
        __m512 w1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
        r[c] = _mm512_shuffle_f32x4(v0, w0, 0x88);
        r[8 + c] = _mm512_shuffle_f32x4(v0, w0, 0xDD);
        r[4 + c] = _mm512_shuffle_f32x4(v1, w1, 0x88);
        r[12 + c] = _mm512_shuffle_f32x4(v1, w1, 0xDD);
    }
}

static TGT void packt_avx512_f32(const float *S, int64_t lds, int64_t rows,
                                 int64_t kc, int R, float *D)
{
    for (int r0 = 0; r0 < R; r0 += 16) {
        const int w = (R - r0 < 16) ? R - r0 : 16;
        const __mmask16 wm = (__mmask16)((1u << w) - 1u);
        const int64_t nrow = rows - r0 < 0 ? 0 : (rows - r0 < 16 ? rows - r0 : 16);
        for (int64_t p = 0; p < kc; p += 16) {
            const int64_t pc = (kc - p < 16) ? kc - p : 16;
            const __mmask16 pm = (__mmask16)((1u << pc) - 1u);
            __m512 v[16];
            if (p + PF_F32 < kc) /* the same rows, a few lines ahead */
                for (int i = 0; i < nrow; i++)
                    _mm_prefetch((const char *)(S + (r0 + i) * lds + p + PF_F32), _MM_HINT_T0);
            for (int i = 0; i < 16; i++)
                v[i] = (i < nrow) ? _mm512_maskz_loadu_ps(pm, S + (r0 + i) * lds + p)
                                  : _mm512_setzero_ps();
            transpose16_ps(v);
            for (int q = 0; q < 16; q++) {
                if (q >= pc)
                    break;
                _mm512_mask_storeu_ps(D + (p + q) * R + r0, wm, v[q]);
            }
        }
    }
}

static TGT inline void transpose8_pd(__m512d r[8])
{
    __m512d t[8], v[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm512_unpacklo_pd(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_pd(r[2 * i], r[2 * i + 1]);
    }
    /* t[2i] lane l: rows 2i,2i+1 of column 2l; t[2i+1]: column 2l+1 */
    for (int h = 0; h < 2; h++) {      /* rows 0-3 (h=0), 4-7 (h=1) */
        for (int c = 0; c < 2; c++) {  /* column parity */
            __m512d a = t[4 * h + c], b = t[4 * h + 2 + c];
            v[4 * h + c] = _mm512_shuffle_f64x2(a, b, 0x88);     /* cols c, 4+c */
            v[4 * h + 2 + c] = _mm512_shuffle_f64x2(a, b, 0xDD); /* cols 2+c, 6+c */
        }
    }
    for (int c = 0; c < 4; c++) {
        r[c] = _mm512_shuffle_f64x2(v[c], v[4 + c], 0x88);
        r[4 + c] = _mm512_shuffle_f64x2(v[c], v[4 + c], 0xDD);
    }
}

static TGT void packt_avx512_f64(const double *S, int64_t lds, int64_t rows,
                                 int64_t kc, int R, double *D)
{
    for (int r0 = 0; r0 < R; r0 += 8) {
        const int w = (R - r0 < 8) ? R - r0 : 8;
        const __mmask8 wm = (__mmask8)((1u << w) - 1u);
        const int64_t nrow = rows - r0 < 0 ? 0 : (rows - r0 < 8 ? rows - r0 : 8);
        for (int64_t p = 0; p < kc; p += 8) {
            const int64_t pc = (kc - p < 8) ? kc - p : 8;
            const __mmask8 pm = (__mmask8)((1u << pc) - 1u);
            __m512d v[8];
            if (p + PF_F64 < kc) /* the same rows, a few lines ahead */
                for (int i = 0; i < nrow; i++)
                    _mm_prefetch((const char *)(S + (r0 + i) * lds + p + PF_F64), _MM_HINT_T0);
            for (int i = 0; i < 8; i++)
                v[i] = (i < nrow) ? _mm512_maskz_loadu_pd(pm, S + (r0 + i) * lds + p)
                                  : _mm512_setzero_pd();
            transpose8_pd(v);
            for (int q = 0; q < 8; q++) {
                if (q >= pc)
                    break;
                _mm512_mask_storeu_pd(D + (p + q) * R + r0, wm, v[q]);
            }
        }
    }
}

/* ---- copying pack: D[p*R + r] = S[p*lds + r] (r < cols), 0 above ------- */
/* A full micro-panel (the usual B panel) is copied row by row: each source
 * row's R elements are read at once, where strips of one vector read every
 * row's cache lines once per strip (kc rows at a large stride outgrow L1
 * between two strips: measured 10% of an AVX2 64x784 @ 784x256). */

static TGT void packn_avx512_f32(const float *S, int64_t lds, int64_t cols,
                                 int64_t kc, int R, float *D)
{
    if (cols == R && R == 32) {
        for (int64_t p = 0; p < kc; p++) {
            const float *s = S + p * lds;
            float *d = D + p * 32;
            _mm512_storeu_ps(d, _mm512_loadu_ps(s));
            _mm512_storeu_ps(d + 16, _mm512_loadu_ps(s + 16));
        }
        return;
    }
    for (int r0 = 0; r0 < R; r0 += 16) {
        const int w = (R - r0 < 16) ? R - r0 : 16;
        const __mmask16 wm = (__mmask16)((1u << w) - 1u);
        const int64_t c = cols - r0 < 0 ? 0 : (cols - r0 < w ? cols - r0 : w);
        const __mmask16 cm = (__mmask16)((1u << c) - 1u);
        for (int64_t p = 0; p < kc; p++)
            _mm512_mask_storeu_ps(D + p * R + r0, wm,
                                  _mm512_maskz_loadu_ps(cm, S + p * lds + r0));
    }
}

static TGT void packn_avx512_f64(const double *S, int64_t lds, int64_t cols,
                                 int64_t kc, int R, double *D)
{
    if (cols == R && R == 16) {
        for (int64_t p = 0; p < kc; p++) {
            const double *s = S + p * lds;
            double *d = D + p * 16;
            _mm512_storeu_pd(d, _mm512_loadu_pd(s));
            _mm512_storeu_pd(d + 8, _mm512_loadu_pd(s + 8));
        }
        return;
    }
    for (int r0 = 0; r0 < R; r0 += 8) {
        const int w = (R - r0 < 8) ? R - r0 : 8;
        const __mmask8 wm = (__mmask8)((1u << w) - 1u);
        const int64_t c = cols - r0 < 0 ? 0 : (cols - r0 < w ? cols - r0 : w);
        const __mmask8 cm = (__mmask8)((1u << c) - 1u);
        for (int64_t p = 0; p < kc; p++)
            _mm512_mask_storeu_pd(D + p * R + r0, wm,
                                  _mm512_maskz_loadu_pd(cm, S + p * lds + r0));
    }
}

/* ---- the micro-kernel (gemm_ukernel_impl.h) and the direct small-product
 * kernels (gemm_impl.h), written once over T, with the vector operations
 * SK_* of the dtype defined for both ---------------------------------------- */

#define FASTNN_GEMM_SMALL_TEMPLATE 1
#define ISFX avx512
#define NV 2
#define R0 8
#define SK_HAVE_PACKT 1
#define SK_MASK(cnt) ((MASK_T)((1u << (cnt)) - 1u))
#define KR1 12 /* = MR_F32 = MR_F64 */
#define KR2 8
#define KR3 4

#define T float
#define SFX f32
#define VT __m512
#define VL 16
#define MASK_T __mmask16
#define SK_ZERO() _mm512_setzero_ps()
#define SK_SET1(x) _mm512_set1_ps(x)
#define SK_LOAD(p) _mm512_loadu_ps(p)
#define SK_LOADM(p, mk) _mm512_maskz_loadu_ps(mk, p)
#define SK_STORE(p, v) _mm512_storeu_ps(p, v)
#define SK_STOREM(p, mk, v) _mm512_mask_storeu_ps(p, mk, v)
#define SK_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define SK_PACKT packt_avx512_f32
#define MR MR_F32
#define NR (16 * NV_F32)
#include "gemm_ukernel_tiles.h"
#undef MR
#undef NR
#include "gemm_impl.h"
#undef T
#undef SFX
#undef VT
#undef VL
#undef MASK_T
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
#define VT __m512d
#define VL 8
#define MASK_T __mmask8
#define SK_ZERO() _mm512_setzero_pd()
#define SK_SET1(x) _mm512_set1_pd(x)
#define SK_LOAD(p) _mm512_loadu_pd(p)
#define SK_LOADM(p, mk) _mm512_maskz_loadu_pd(mk, p)
#define SK_STORE(p, v) _mm512_storeu_pd(p, v)
#define SK_STOREM(p, mk, v) _mm512_mask_storeu_pd(p, mk, v)
#define SK_FMA(a, b, c) _mm512_fmadd_pd(a, b, c)
#define SK_PACKT packt_avx512_f64
#define MR MR_F64
#define NR (8 * NV_F64)
#include "gemm_ukernel_tiles.h"
#undef MR
#undef NR
#include "gemm_impl.h"

void fastnn_gemm_cfg_avx512_f32(fastnn_gemm_cfg_f32 *cfg)
{
    cfg->mr = MR_F32;
    cfg->nr = 16 * NV_F32;
    /* kc 512, mc 96 (a 192 KB block of A, as 256 x 192 was): 2048^3 at a
       median 393 GFLOP/s against 367 with 256 x 192, and the MNIST-shaped
       products no slower (2 threads, alternating runs of each) */
    cfg->kc = 512;
    cfg->mc = 96;
    cfg->nc = 4096;
    cfg->ns = 64;
    cfg->kern = kern_avx512_f32;
    cfg->pack_t = packt_avx512_f32;
    cfg->pack_n = packn_avx512_f32;
}

void fastnn_gemm_cfg_avx512_f64(fastnn_gemm_cfg_f64 *cfg)
{
    cfg->mr = MR_F64;
    cfg->nr = 8 * NV_F64;
    cfg->kc = 256;
    cfg->mc = 96;
    cfg->nc = 4096;
    cfg->ns = 32;
    cfg->kern = kern_avx512_f64;
    cfg->pack_t = packt_avx512_f64;
    cfg->pack_n = packn_avx512_f64;
}

#endif /* FASTNN_HAVE_X86_KERNELS */
