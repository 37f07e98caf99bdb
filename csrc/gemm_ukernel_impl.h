/*
 * gemm_ukernel_impl.h -- the register-blocked micro-kernel of the SIMD ISAs
 * (gemm_avx2.c, gemm_avx512.c), written once.  Included per dtype with T,
 * SFX, ISFX (avx2|avx512), TGT, VT (vector type), VL (lanes), MASK_T, MR
 * and NR (the packed panels' strides, NR = 2*VL), KR1 > KR2 > KR3 (the row
 * counts of the bodies, KR1 = MR) and the vector operations SK_ZERO,
 * SK_LOAD, SK_SET1, SK_FMA, SK_STORE, SK_MASK, SK_LOADM, SK_STOREM defined
 * (the ones the direct kernels of gemm_impl.h use too).
 *
 * Why bodies: a tile's accumulators live in registers only if the compiler
 * knows the tile's size, so each size is its own function.  With ROWS and
 * COLV defined this file defines body_<ISFX>_<ROWS>_<COLV>_<SFX>, computing
 * ROWS rows x COLV vectors of a tile (masked stores for an edge tile); once
 * per dtype without them, it defines kern_<ISFX>_<SFX> (the contract is in
 * gemm_internal.h), which picks the smallest body covering mr_eff rows
 * (KR3/KR2/KR1) and nr_eff columns (1 or 2 vectors), so an edge tile costs
 * its own rows, not MR.  Every body computes each element with the same fma
 * chain (p ascending from a zero accumulator, then acc or beta*C + acc
 * rounded once), so results do not depend on which body ran.
 *
 * The k loop is unrolled 4 times; the C tile is prefetched before it, so
 * the C update at the end does not wait for memory.  No include guard on
 * purpose.
 */
#if !defined(T) || !defined(SFX) || !defined(ISFX) || !defined(VT) || !defined(VL) || \
    !defined(MASK_T) || !defined(MR) || !defined(NR) || !defined(KR1) || !defined(KR2) || \
    !defined(KR3)
#error "define T, SFX, ISFX, VT, VL, MASK_T, MR, NR, KR1-3 and SK_* before including gemm_ukernel_impl.h"
#endif

#define BODY(rows, colv) F(FASTNN_CAT(FASTNN_CAT(FASTNN_CAT(body, ISFX), rows), colv))

#ifdef ROWS /* ---- one body ---------------------------------------------- */

static TGT __attribute__((noinline)) void BODY(ROWS, COLV)(
    int64_t kc, const T *restrict A, const T *restrict B, T *restrict C, int64_t ldc,
    int64_t mr_eff, int64_t nr_eff, T beta)
{
    for (int i = 0; i < ROWS; i++) /* the first and last line of each row */
        if (i < mr_eff) {
            _mm_prefetch((const char *)(C + i * ldc), _MM_HINT_T0);
            _mm_prefetch((const char *)(C + i * ldc + nr_eff - 1), _MM_HINT_T0);
        }
    VT acc[ROWS][COLV];
    for (int i = 0; i < ROWS; i++)
        for (int v = 0; v < COLV; v++)
            acc[i][v] = SK_ZERO();
#pragma GCC unroll 4
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
        const int64_t rem = nr_eff - (int64_t)v * VL;
        mask[v] = SK_MASK(rem >= VL ? VL : (rem <= 0 ? 0 : (int)rem));
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

static TGT void F(FASTNN_CAT(kern, ISFX))(int64_t kc, const T *restrict A,
                                          const T *restrict B, T *restrict C,
                                          int64_t ldc, int64_t mr_eff,
                                          int64_t nr_eff, T beta)
{
    if (nr_eff > VL) {
        if (mr_eff > KR2)
            BODY(KR1, 2)(kc, A, B, C, ldc, mr_eff, nr_eff, beta);
        else if (mr_eff > KR3)
            BODY(KR2, 2)(kc, A, B, C, ldc, mr_eff, nr_eff, beta);
        else
            BODY(KR3, 2)(kc, A, B, C, ldc, mr_eff, nr_eff, beta);
    } else {
        if (mr_eff > KR2)
            BODY(KR1, 1)(kc, A, B, C, ldc, mr_eff, nr_eff, beta);
        else if (mr_eff > KR3)
            BODY(KR2, 1)(kc, A, B, C, ldc, mr_eff, nr_eff, beta);
        else
            BODY(KR3, 1)(kc, A, B, C, ldc, mr_eff, nr_eff, beta);
    }
}

#endif /* ROWS */

#undef BODY
