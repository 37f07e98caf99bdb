/*
 * gemm_avx512_impl.h -- the AVX-512 micro-kernel of gemm_avx512.c, included
 * per dtype with T, SFX, VT (vector type), VL (lanes), MASK_T, MR and NR
 * (the packed panels' strides) and the vector operations SK_ZERO, SK_LOAD,
 * SK_SET1, SK_FMA, SK_STORE, SK_LOADM, SK_STOREM defined (the ones the
 * direct kernels of gemm_impl.h use too).
 *
 * With ROWS and COLV defined it defines body_<ROWS>_<COLV>_<SFX>, computing
 * ROWS rows x COLV vectors of a tile (masked stores for an edge tile); once
 * per dtype without them, it defines kern_avx512_<SFX> (the contract is in
 * gemm_internal.h), which picks the smallest body covering mr_eff rows
 * (4/8/12) and nr_eff columns (1 or 2 vectors).  Every body computes each
 * element with the same fma chain, so results do not depend on which ran.
 * No include guard on purpose.
 */
#if !defined(T) || !defined(SFX) || !defined(VT) || !defined(VL) || !defined(MASK_T) || \
    !defined(MR) || !defined(NR)
#error "define T, SFX, VT, VL, MASK_T, MR, NR and SK_* before including gemm_avx512_impl.h"
#endif

#define BODY(rows, colv) F(FASTNN_CAT(FASTNN_CAT(body, rows), colv))

#ifdef ROWS /* ---- one body ---------------------------------------------- */

static TGT __attribute__((noinline)) void BODY(ROWS, COLV)(
    int64_t kc, const T *restrict A, const T *restrict B, T *restrict C, int64_t ldc,
    int64_t mr_eff, int64_t nr_eff, T beta)
{
    VT acc[ROWS][COLV];
    for (int i = 0; i < ROWS; i++)
        for (int v = 0; v < COLV; v++)
            acc[i][v] = SK_ZERO();
    for (int64_t p = 0; p < kc; p++) {
        VT b[COLV];
        for (int v = 0; v < COLV; v++)
            b[v] = SK_LOAD(B + v * VL);
        for (int i = 0; i < ROWS; i++) {
            const VT a = SK_SET1(A[i]);
            for (int v = 0; v < COLV; v++)
                acc[i][v] = SK_FMA(a, b[v], acc[i][v]);
        }
        A += MR;
        B += NR;
    }
    const VT vbeta = SK_SET1(beta);
    if (mr_eff == ROWS && nr_eff == COLV * VL) {
        if (beta == (T)0) {
            for (int i = 0; i < ROWS; i++)
                for (int v = 0; v < COLV; v++)
                    SK_STORE(C + i * ldc + v * VL, acc[i][v]);
        } else {
            for (int i = 0; i < ROWS; i++)
                for (int v = 0; v < COLV; v++) {
                    T *c = C + i * ldc + v * VL;
                    SK_STORE(c, SK_FMA(vbeta, SK_LOAD(c), acc[i][v]));
                }
        }
        return;
    }
    MASK_T mask[COLV];
    for (int v = 0; v < COLV; v++) {
        int64_t rem = nr_eff - (int64_t)v * VL;
        mask[v] = rem >= VL ? (MASK_T)((1u << VL) - 1u)
                            : (rem <= 0 ? (MASK_T)0 : (MASK_T)((1u << rem) - 1u));
    }
    for (int i = 0; i < ROWS; i++) {
        if (i >= mr_eff)
            break;
        for (int v = 0; v < COLV; v++) {
            T *c = C + i * ldc + v * VL;
            if (beta == (T)0)
                SK_STOREM(c, mask[v], acc[i][v]);
            else
                SK_STOREM(c, mask[v], SK_FMA(vbeta, SK_LOADM(c, mask[v]), acc[i][v]));
        }
    }
}

#else /* ---- the kernel: the smallest body that covers the tile --------- */

static TGT void F(kern_avx512)(int64_t kc, const T *restrict A, const T *restrict B,
                               T *restrict C, int64_t ldc, int64_t mr_eff, int64_t nr_eff,
                               T beta)
{
    if (nr_eff > VL) {
        if (mr_eff > 8)
            BODY(12, 2)(kc, A, B, C, ldc, mr_eff, nr_eff, beta);
        else if (mr_eff > 4)
            BODY(8, 2)(kc, A, B, C, ldc, mr_eff, nr_eff, beta);
        else
            BODY(4, 2)(kc, A, B, C, ldc, mr_eff, nr_eff, beta);
    } else {
        if (mr_eff > 8)
            BODY(12, 1)(kc, A, B, C, ldc, mr_eff, nr_eff, beta);
        else if (mr_eff > 4)
            BODY(8, 1)(kc, A, B, C, ldc, mr_eff, nr_eff, beta);
        else
            BODY(4, 1)(kc, A, B, C, ldc, mr_eff, nr_eff, beta);
    }
}

#endif /* ROWS */

#undef BODY
