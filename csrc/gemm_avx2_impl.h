/*
 * gemm_avx2_impl.h -- the AVX2 micro-kernel of gemm_avx2.c, included once
 * per dtype with T, SFX, VT (vector type), VL (lanes), MR (rows of the tile),
 * FMA_SCALAR (a*b + c rounded once) and the vector operations SK_ZERO,
 * SK_LOAD, SK_SET1, SK_FMA, SK_STORE defined (the ones the direct kernels of
 * gemm_impl.h use too); defines kern_avx2_<SFX> (the contract is in
 * gemm_internal.h): MR rows x AVX2_NV vectors of accumulators.  Edge tiles
 * are written to a local tile first, then copied element-wise.  No include
 * guard on purpose.
 */
#if !defined(T) || !defined(SFX) || !defined(VT) || !defined(VL) || !defined(MR) || \
    !defined(FMA_SCALAR)
#error "define T, SFX, VT, VL, MR, FMA_SCALAR and SK_* before including gemm_avx2_impl.h"
#endif

static TGT void F(kern_avx2)(int64_t kc, const T *restrict A, const T *restrict B,
                             T *restrict C, int64_t ldc, int64_t mr_eff, int64_t nr_eff,
                             T beta)
{
    VT acc[MR][AVX2_NV];
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < AVX2_NV; v++)
            acc[i][v] = SK_ZERO();
    for (int64_t p = 0; p < kc; p++) {
        VT b[AVX2_NV];
        for (int v = 0; v < AVX2_NV; v++)
            b[v] = SK_LOAD(B + v * VL);
        for (int i = 0; i < MR; i++) {
            const VT a = SK_SET1(A[i]);
            for (int v = 0; v < AVX2_NV; v++)
                acc[i][v] = SK_FMA(a, b[v], acc[i][v]);
        }
        A += MR;
        B += AVX2_NV * VL;
    }
    const VT vbeta = SK_SET1(beta);
    if (mr_eff == MR && nr_eff == AVX2_NV * VL) {
        if (beta == (T)0) {
            for (int i = 0; i < MR; i++)
                for (int v = 0; v < AVX2_NV; v++)
                    SK_STORE(C + i * ldc + v * VL, acc[i][v]);
        } else {
            for (int i = 0; i < MR; i++)
                for (int v = 0; v < AVX2_NV; v++) {
                    T *c = C + i * ldc + v * VL;
                    SK_STORE(c, SK_FMA(vbeta, SK_LOAD(c), acc[i][v]));
                }
        }
        return;
    }
    T tile[MR][AVX2_NV * VL];
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < AVX2_NV; v++)
            SK_STORE(&tile[i][v * VL], acc[i][v]);
    for (int64_t i = 0; i < mr_eff; i++) {
        T *c = C + i * ldc;
        if (beta == (T)0)
            for (int64_t j = 0; j < nr_eff; j++)
                c[j] = tile[i][j];
        else /* same single rounding as the vector path */
            for (int64_t j = 0; j < nr_eff; j++)
                c[j] = FMA_SCALAR(beta, c[j], tile[i][j]);
    }
}
