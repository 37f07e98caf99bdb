/*
 * gemm_generic_impl.h -- the portable micro-kernel of gemm_generic.c,
 * included once per dtype with T (float|double), SFX (f32|f64), MR and NR
 * (the tile) defined; defines kern_generic_<SFX> (the contract is in
 * gemm_internal.h).  MR x NR accumulators in a local array, fixed trip
 * counts, so the compiler keeps them in registers and vectorizes with the
 * baseline ISA.  No include guard on purpose.
 */
#if !defined(T) || !defined(SFX) || !defined(MR) || !defined(NR)
#error "define T, SFX, MR and NR before including gemm_generic_impl.h"
#endif

static void F(kern_generic)(int64_t kc, const T *restrict Ap, const T *restrict Bp,
                            T *restrict C, int64_t ldc, int64_t mr_eff, int64_t nr_eff,
                            T beta)
{
    T acc[MR][NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++)
            acc[i][j] = (T)0;
    for (int64_t p = 0; p < kc; p++) {
        const T *a = Ap + p * MR;
        const T *b = Bp + p * NR;
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++)
                acc[i][j] += a[i] * b[j];
    }
    if (beta == (T)0) {
        for (int64_t i = 0; i < mr_eff; i++)
            for (int64_t j = 0; j < nr_eff; j++)
                C[i * ldc + j] = acc[i][j];
    } else {
        for (int64_t i = 0; i < mr_eff; i++)
            for (int64_t j = 0; j < nr_eff; j++)
                C[i * ldc + j] = acc[i][j] + beta * C[i * ldc + j];
    }
}
