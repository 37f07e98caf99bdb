/*
 * gemm_generic.c -- portable C micro-kernels (any architecture).
 * MR x NR accumulators in a local array; fixed trip counts so the compiler
 * can keep them in registers and vectorize with the baseline ISA.
 */
#include <stdint.h>

#include "gemm_internal.h"
#include "internal.h"

#define GEN_MR_F32 4
#define GEN_NR_F32 8
#define GEN_MR_F64 4
#define GEN_NR_F64 4

/* the micro-kernel, written once over T in gemm_generic_impl.h */
#define T float
#define SFX f32
#define MR GEN_MR_F32
#define NR GEN_NR_F32
#include "gemm_generic_impl.h"
#undef T
#undef SFX
#undef MR
#undef NR

#define T double
#define SFX f64
#define MR GEN_MR_F64
#define NR GEN_NR_F64
#include "gemm_generic_impl.h"
#undef T
#undef SFX
#undef MR
#undef NR

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

/* ---- direct small-product kernels (template in gemm_impl.h) ------------
 * With GCC/clang, 16-byte vectors of the compiler's generic vector extension
 * (SSE2 on x86-64, NEON on arm64, plain scalars elsewhere), blocks of 4 rows
 * x 2 vectors; otherwise (or with -DFASTNN_GEMM_SMALL_SCALAR) scalars
 * (VL = 1), blocks of 4 rows x 4 columns.
 * a*b + c is written unfused; it stays unfused under -std=c11 (fp-contract
 * off), so the bits are those of separate multiply and add. */

#define FASTNN_GEMM_SMALL_TEMPLATE 1
#define ISFX generic
#define TGT
#define R0 4
#define SK_HAVE_PACKT 0
#define SK_ZERO() ((VT){0})
#define SK_FMA(a, b, c) ((a) * (b) + (c))

#if (defined(__GNUC__) || defined(__clang__)) && !defined(FASTNN_GEMM_SMALL_SCALAR)
typedef float fastnn_v4f __attribute__((vector_size(16), aligned(4)));
typedef double fastnn_v2d __attribute__((vector_size(16), aligned(8)));
#define NV 2
#define MASK_T int
#define SK_MASK(cnt) (cnt)
#define SK_SET1(x) (SK_ZERO() + (x))
#define SK_LOAD(p) (*(const VT *)(p))
#define SK_STORE(p, v) (*(VT *)(p) = (v))
#define SK_LOADM(p, mk) F(sk_loadm)(p, mk)
#define SK_STOREM(p, mk, v) F(sk_storem)(p, mk, v)

static inline fastnn_v4f sk_loadm_f32(const float *p, int cnt)
{
    const fastnn_v4f v = {p[0], cnt > 1 ? p[1] : 0.0f, cnt > 2 ? p[2] : 0.0f,
                          cnt > 3 ? p[3] : 0.0f};
    return v;
}
static inline void sk_storem_f32(float *p, int cnt, fastnn_v4f v)
{
    for (int l = 0; l < cnt; l++)
        p[l] = v[l];
}
static inline fastnn_v2d sk_loadm_f64(const double *p, int cnt)
{
    const fastnn_v2d v = {p[0], cnt > 1 ? p[1] : 0.0};
    return v;
}
static inline void sk_storem_f64(double *p, int cnt, fastnn_v2d v)
{
    for (int l = 0; l < cnt; l++)
        p[l] = v[l];
}

#define T float
#define VT fastnn_v4f
#define VL 4
#define SFX f32
#include "gemm_impl.h"
#undef T
#undef VT
#undef VL
#undef SFX

#define T double
#define VT fastnn_v2d
#define VL 2
#define SFX f64
#include "gemm_impl.h"
#undef T
#undef VT
#undef VL
#undef SFX

#else /* portable scalars */
#define VL 1
#define NV 4
#define MASK_T int
#define SK_MASK(cnt) (cnt)
#define SK_SET1(x) (x)
#define SK_LOAD(p) (*(p))
#define SK_LOADM(p, mk) ((void)(mk), *(p))
#define SK_STORE(p, v) (*(p) = (v))
#define SK_STOREM(p, mk, v) ((void)(mk), *(p) = (v))

#define T float
#define VT float
#define SFX f32
#include "gemm_impl.h"
#undef T
#undef VT
#undef SFX

#define T double
#define VT double
#define SFX f64
#include "gemm_impl.h"
#undef T
#undef VT
#undef SFX
#endif
