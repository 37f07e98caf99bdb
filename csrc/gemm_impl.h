/*
 * gemm_impl.h -- templated body of the blocked, packed GEMM driver.
 * Included by gemm.c once per dtype with T (float|double) and SFX (f32|f64)
 * defined; every name below gets the suffix.  No include guard on purpose.
 *
 * Blocking (GotoBLAS/BLIS): C is cut into units of work of at most mc rows
 * x nc columns.  Each thread takes a contiguous range of units (then steals
 * from the others' ranges); a unit runs over the k slices (kc), packs into
 * its thread's buffer the block of op(A) and the block of op(B) the slice
 * needs (each kept, all its slices up to FASTNN_GEMM_CACHE_BYTES, while
 * consecutive units share it: the driver orders the units so that fewer
 * elements are packed, with a bias to whole rows of C per thread) and runs
 * the micro-kernel over the unit (jr outer, ir inner).
 * After the last k slice a unit is final, and its epilogue runs right away
 * on the thread that computed it.  The rounding depends only on kc (a
 * function of k and the ISA), never on the thread count or the cut.  With
 * no C (fastnn_internal_gemm_blocks) a unit computes its block in its
 * thread's buffer and hands it to the epilogue: C is never stored.
 *
 * Small products (limits in gemm_internal.h: every product the packed path
 * would run on one thread, for the AVX2 / AVX-512 kernels) skip all of the
 * above: no packing, no allocation, no thread pool, no thread-count lookup; a
 * per-ISA direct kernel (the FASTNN_GEMM_SMALL_TEMPLATE part of this file,
 * instantiated in gemm_generic.c / gemm_avx2.c / gemm_avx512.c) computes all
 * of C, then the epilogue runs once over all of C.  Which path runs is a
 * function of the shape and the ISA only, so results stay independent of
 * the thread count.
 */
#ifdef FASTNN_GEMM_SMALL_TEMPLATE
/* ==== direct small-product kernel (no packing, no allocation) ============
 * Included by each per-ISA file (gemm_generic.c, gemm_avx2.c, gemm_avx512.c)
 * once per dtype, with FASTNN_GEMM_SMALL_TEMPLATE and these defined:
 *   T, SFX (f32|f64), ISFX (generic|avx2|avx512), TGT (target attribute or
 *   empty), VT (vector type), VL (lanes), NV (vectors per block of columns),
 *   R0 (rows of the largest block, >= 4), MASK_T, SK_MASK(cnt) (first cnt
 *   lanes), SK_ZERO(), SK_SET1(x), SK_LOAD(p), SK_LOADM(p, mk), SK_STORE(p, v),
 *   SK_STOREM(p, mk, v), SK_FMA(a, b, c) (a*b + c), SK_PACKT (transposing
 *   pack with the fastnn_packt_* contract; only used when SK_HAVE_PACKT).
 * Defines int fastnn_gemm_small_<ISFX>_<SFX>(...) (see gemm_internal.h).
 *
 * op(A) is read in place (one broadcast per element and k step, from
 * A[i*lda + p] or, transposed, A[p*lda + i]); op(B) rows are read in place
 * when B is not transposed, else op(B) is first transposed, a panel of
 * columns at a time, into a 16 KB buffer on the stack.  C is computed in
 * blocks of up to R0 rows x NV vectors; every element is one accumulator
 * summed over p = 0..k-1 in order, then stored (beta == 0, C not read) or
 * combined as acc + beta*C with SK_FMA, so the bits depend only on the
 * shape, the dtype and the ISA -- never on the block that computed them.
 */
#define SK(name) F(FASTNN_CAT(name, ISFX)) /* name_<isa>_<dtype> */

static inline __attribute__((always_inline)) TGT void
SK(sk_body)(const int ROWS, const int NVV, const int TA, const int FULL,
            int64_t k, const T *restrict A, int64_t lda, const T *restrict B,
            int64_t ldb, T beta, T *restrict C, int64_t ldc, MASK_T mk)
{
    VT acc[R0][NV];
    for (int i = 0; i < ROWS; i++)
        for (int v = 0; v < NVV; v++)
            acc[i][v] = SK_ZERO();
    for (int64_t p = 0; p < k; p++) {
        VT b[NV];
        const T *bp = B + p * ldb;
        for (int v = 0; v < NVV; v++)
            b[v] = (FULL || v < NVV - 1) ? SK_LOAD(bp + v * VL)
                                         : SK_LOADM(bp + v * VL, mk);
        for (int i = 0; i < ROWS; i++) {
            const VT a = SK_SET1(TA ? A[p * lda + i] : A[i * lda + p]);
            for (int v = 0; v < NVV; v++)
                acc[i][v] = SK_FMA(a, b[v], acc[i][v]);
        }
    }
    if (beta == (T)0) {
        for (int i = 0; i < ROWS; i++)
            for (int v = 0; v < NVV; v++) {
                T *c = C + i * ldc + v * VL;
                if (FULL || v < NVV - 1)
                    SK_STORE(c, acc[i][v]);
                else
                    SK_STOREM(c, mk, acc[i][v]);
            }
    } else {
        const VT vb = SK_SET1(beta);
        for (int i = 0; i < ROWS; i++)
            for (int v = 0; v < NVV; v++) {
                T *c = C + i * ldc + v * VL;
                if (FULL || v < NVV - 1)
                    SK_STORE(c, SK_FMA(vb, SK_LOAD(c), acc[i][v]));
                else
                    SK_STOREM(c, mk, SK_FMA(vb, SK_LOADM(c, mk), acc[i][v]));
            }
    }
}

#define SK_ROWS_(TA, FULL, NVV)                                                \
    do {                                                                       \
        if (R == R0)                                                           \
            SK(sk_body)(R0, NVV, TA, FULL, k, Ai, lda, Bj, ldb, beta, Cij,     \
                        ldc, mk);                                              \
        else if (R == 4)                                                       \
            SK(sk_body)(4, NVV, TA, FULL, k, Ai, lda, Bj, ldb, beta, Cij, ldc, \
                        mk);                                                   \
        else if (R == 2)                                                       \
            SK(sk_body)(2, NVV, TA, FULL, k, Ai, lda, Bj, ldb, beta, Cij, ldc, \
                        mk);                                                   \
        else                                                                   \
            SK(sk_body)(1, NVV, TA, FULL, k, Ai, lda, Bj, ldb, beta, Cij, ldc, \
                        mk);                                                   \
    } while (0)
#define SK_COLS_(TA, FULL)                                                     \
    do {                                                                       \
        if (nvv == NV)                                                         \
            SK_ROWS_(TA, FULL, NV);                                            \
        else                                                                   \
            SK_ROWS_(TA, FULL, (NV == 2 ? 1 : nvv));                           \
    } while (0)

/* C (m x n) = op(A) @ B (+ beta*C) with B row-major k x n, stride ldb */
static inline __attribute__((always_inline)) TGT void
SK(sk_nn)(int ta, int64_t m, int64_t n, int64_t k, const T *A, int64_t lda,
          const T *B, int64_t ldb, T beta, T *C, int64_t ldc)
{
    for (int64_t j0 = 0; j0 < n; j0 += NV * VL) {
        const int64_t w = (n - j0 < NV * VL) ? n - j0 : NV * VL;
        const int nvv = (int)((w + VL - 1) / VL);
        const int cnt = (int)(w - (int64_t)(nvv - 1) * VL);
        const MASK_T mk = SK_MASK(cnt);
        const int full = (cnt == VL);
        const T *Bj = B + j0;
        for (int64_t i0 = 0; i0 < m;) {
            const int64_t rows = m - i0;
            const int R = rows >= R0 ? R0 : rows >= 4 ? 4 : rows >= 2 ? 2 : 1;
            const T *Ai = ta ? A + i0 : A + i0 * lda;
            T *Cij = C + i0 * ldc + j0;
            if (ta) {
                if (full)
                    SK_COLS_(1, 1);
                else
                    SK_COLS_(1, 0);
            } else {
                if (full)
                    SK_COLS_(0, 1);
                else
                    SK_COLS_(0, 0);
            }
            i0 += R;
        }
    }
}
#undef SK_ROWS_
#undef SK_COLS_

#define SK_BUFN (16384 / (int64_t)sizeof(T))

/* B stored n x k: op(B) is transposed into a stack buffer, cw columns at a
 * time (cw * k <= SK_BUFN), then multiplied as above. */
static TGT __attribute__((noinline)) void
SK(sk_nt)(int ta, int64_t m, int64_t n, int64_t k, const T *A, int64_t lda,
          const T *B, int64_t ldb, T beta, T *C, int64_t ldc)
{
    _Alignas(64) T buf[SK_BUFN];
    const int64_t nround = (n + VL - 1) / VL * VL;
    int64_t cw = nround;
    if (nround * k > SK_BUFN) { /* several panels (k <= SK_BUFN / VL) */
        cw = SK_BUFN / k / (NV * VL) * (NV * VL);
        if (cw < VL)
            cw = SK_BUFN / k / VL * VL;
    }
    for (int64_t jb = 0; jb < n; jb += cw) {
        const int64_t w = (n - jb < cw) ? n - jb : cw;
        const int64_t ld = (w + VL - 1) / VL * VL;
        const T *s = B + jb * ldb;
#if SK_HAVE_PACKT
        if (k >= 8 && w * k > 128) {
            SK_PACKT(s, ldb, w, k, (int)ld, buf);
        } else
#endif
        {
            for (int64_t r = 0; r < w; r++)
                for (int64_t p = 0; p < k; p++)
                    buf[p * ld + r] = s[r * ldb + p];
        }
        SK(sk_nn)(ta, m, w, k, A, lda, buf, ld, beta, C + jb, ldc);
    }
}

TGT int SK(fastnn_gemm_small)(int trans_a, int trans_b, int64_t m, int64_t n,
                          int64_t k, const T *A, int64_t lda, const T *B,
                          int64_t ldb, T beta, T *C, int64_t ldc)
{
    if (m <= 0 || n <= 0 || k <= 0)
        return -1;
    if (trans_b && n == 1) { /* op(B) is the k x 1 column B[0..k-1] */
        SK(sk_nn)(trans_a != 0, m, n, k, A, lda, B, 1, beta, C, ldc);
    } else if (trans_b && k == 1 && ldb == 1) { /* op(B) = the row B[0..n-1] */
        SK(sk_nn)(trans_a != 0, m, n, k, A, lda, B, n, beta, C, ldc);
    } else if (trans_b) {
        if (k * VL > SK_BUFN)
            return -1; /* the transposed panel would not fit: packed path */
        SK(sk_nt)(trans_a != 0, m, n, k, A, lda, B, ldb, beta, C, ldc);
    } else {
        SK(sk_nn)(trans_a != 0, m, n, k, A, lda, B, ldb, beta, C, ldc);
    }
    return 0;
}

#undef SK_BUFN
#undef SK

#else /* ==== packed GEMM driver ============================================ */

#if !defined(T) || !defined(SFX)
#error "define T and SFX before including gemm_impl.h"
#endif

#define CFG_T FASTNN_CAT(fastnn_gemm_cfg, SFX)
#define UKERN_T FASTNN_CAT(fastnn_ukern, SFX)

/* ---- packing ----------------------------------------------------------- */

/* mc x kc block of op(A) starting at (i0, p0) -> micro-panels of MR rows */
static inline __attribute__((always_inline)) void
F(pack_a_body)(int trans_a, const T *restrict A, int64_t lda, int64_t i0,
                int64_t mc, int64_t p0, int64_t kc, const int MR,
                T *restrict Ap)
{
    for (int64_t ir = 0; ir < mc; ir += MR) {
        const int64_t me = (mc - ir < MR) ? mc - ir : MR;
        T *restrict d = Ap + ir * kc;
        if (!trans_a) { /* A is m x k: row i, column p at A[i*lda + p] */
            const T *restrict s = A + (i0 + ir) * lda + p0;
            if (me == MR) {
                for (int64_t p = 0; p < kc; p++)
                    for (int i = 0; i < MR; i++)
                        d[p * MR + i] = s[i * lda + p];
            } else {
                for (int64_t p = 0; p < kc; p++) {
                    int i = 0;
                    for (; i < me; i++)
                        d[p * MR + i] = s[i * lda + p];
                    for (; i < MR; i++)
                        d[p * MR + i] = (T)0;
                }
            }
        } else { /* A stored k x m: op(A)[i][p] = A[p*lda + i] */
            const T *restrict s = A + p0 * lda + i0 + ir;
            if (me == MR) {
                for (int64_t p = 0; p < kc; p++)
                    for (int i = 0; i < MR; i++)
                        d[p * MR + i] = s[p * lda + i];
            } else {
                for (int64_t p = 0; p < kc; p++) {
                    int i = 0;
                    for (; i < me; i++)
                        d[p * MR + i] = s[p * lda + i];
                    for (; i < MR; i++)
                        d[p * MR + i] = (T)0;
                }
            }
        }
    }
}

/* kc x nc panel of op(B) starting at (p0, j0) -> micro-panels of NR columns */
static inline __attribute__((always_inline)) void
F(pack_b_body)(int trans_b, const T *restrict B, int64_t ldb, int64_t j0,
                int64_t nc, int64_t p0, int64_t kc, const int NR,
                T *restrict Bp)
{
    for (int64_t jr = 0; jr < nc; jr += NR) {
        const int64_t ne = (nc - jr < NR) ? nc - jr : NR;
        T *restrict d = Bp + jr * kc;
        if (!trans_b) { /* B is k x n: B[p*ldb + j] */
            const T *restrict s = B + p0 * ldb + j0 + jr;
            if (ne == NR) {
                for (int64_t p = 0; p < kc; p++)
                    for (int j = 0; j < NR; j++)
                        d[p * NR + j] = s[p * ldb + j];
            } else {
                for (int64_t p = 0; p < kc; p++) {
                    int j = 0;
                    for (; j < ne; j++)
                        d[p * NR + j] = s[p * ldb + j];
                    for (; j < NR; j++)
                        d[p * NR + j] = (T)0;
                }
            }
        } else { /* B stored n x k: op(B)[p][j] = B[j*ldb + p] */
            const T *restrict s = B + (j0 + jr) * ldb + p0;
            if (ne == NR) {
                for (int64_t p = 0; p < kc; p++)
                    for (int j = 0; j < NR; j++)
                        d[p * NR + j] = s[j * ldb + p];
            } else {
                for (int64_t p = 0; p < kc; p++) {
                    int j = 0;
                    for (; j < ne; j++)
                        d[p * NR + j] = s[j * ldb + p];
                    for (; j < NR; j++)
                        d[p * NR + j] = (T)0;
                }
            }
        }
    }
}

#define PACKT_T FASTNN_CAT(fastnn_packt, SFX)
#define PACKN_T FASTNN_CAT(fastnn_packn, SFX)

static void F(pack_a)(int trans_a, const T *A, int64_t lda, int64_t i0,
                       int64_t mc, int64_t p0, int64_t kc, int mr, T *Ap,
                       PACKT_T pack_t, PACKN_T pack_n)
{
    if (trans_a && pack_n != NULL) {
        for (int64_t ir = 0; ir < mc; ir += mr)
            pack_n(A + p0 * lda + i0 + ir, lda,
                   (mc - ir < mr) ? mc - ir : mr, kc, mr, Ap + ir * kc);
        return;
    }
    if (!trans_a && pack_t != NULL) {
        for (int64_t ir = 0; ir < mc; ir += mr)
            pack_t(A + (i0 + ir) * lda + p0, lda,
                   (mc - ir < mr) ? mc - ir : mr, kc, mr, Ap + ir * kc);
        return;
    }
    /* a constant MR lets the compiler unroll the inner loop; any other
       panel height (not a code: a size) takes the same body unrolled less */
    switch (mr) {
    case 4: F(pack_a_body)(trans_a, A, lda, i0, mc, p0, kc, 4, Ap); return;
    case 6: F(pack_a_body)(trans_a, A, lda, i0, mc, p0, kc, 6, Ap); return;
    case 8: F(pack_a_body)(trans_a, A, lda, i0, mc, p0, kc, 8, Ap); return;
    case 12: F(pack_a_body)(trans_a, A, lda, i0, mc, p0, kc, 12, Ap); return;
    case 16: F(pack_a_body)(trans_a, A, lda, i0, mc, p0, kc, 16, Ap); return;
    }
    F(pack_a_body)(trans_a, A, lda, i0, mc, p0, kc, mr, Ap);
}

static void F(pack_b)(int trans_b, const T *B, int64_t ldb, int64_t j0,
                       int64_t nc, int64_t p0, int64_t kc, int nr, T *Bp,
                       PACKT_T pack_t, PACKN_T pack_n)
{
    if (!trans_b && pack_n != NULL) {
        for (int64_t jr = 0; jr < nc; jr += nr)
            pack_n(B + p0 * ldb + j0 + jr, ldb,
                   (nc - jr < nr) ? nc - jr : nr, kc, nr, Bp + jr * kc);
        return;
    }
    if (trans_b && pack_t != NULL) {
        for (int64_t jr = 0; jr < nc; jr += nr)
            pack_t(B + (j0 + jr) * ldb + p0, ldb,
                   (nc - jr < nr) ? nc - jr : nr, kc, nr, Bp + jr * kc);
        return;
    }
    switch (nr) { /* as in pack_a */
    case 4: F(pack_b_body)(trans_b, B, ldb, j0, nc, p0, kc, 4, Bp); return;
    case 8: F(pack_b_body)(trans_b, B, ldb, j0, nc, p0, kc, 8, Bp); return;
    case 16: F(pack_b_body)(trans_b, B, ldb, j0, nc, p0, kc, 16, Bp); return;
    case 24: F(pack_b_body)(trans_b, B, ldb, j0, nc, p0, kc, 24, Bp); return;
    case 32: F(pack_b_body)(trans_b, B, ldb, j0, nc, p0, kc, 32, Bp); return;
    case 48: F(pack_b_body)(trans_b, B, ldb, j0, nc, p0, kc, 48, Bp); return;
    }
    F(pack_b_body)(trans_b, B, ldb, j0, nc, p0, kc, nr, Bp);
}

/* ---- driver ------------------------------------------------------------ */

/* One call.  Units of work are (row block ic of MU rows) x (column block jb
 * of NU columns) of C; a unit runs every k slice (packing the slices of
 * op(A) and op(B) it needs, into its thread's own buffer), so it finishes
 * its block of C and runs the epilogue on it: no unit waits for another.
 * Units are numbered ic-major or jb-major (whichever packs less); a thread
 * keeps the full-k packed op(A) rows of its last ic (cache_a) or op(B)
 * columns of its last jb (cache_b) while consecutive units share them. */
typedef struct {
    int trans_a, trans_b;
    int64_t m, n, k;
    const T *A;
    int64_t lda;
    const T *B;
    int64_t ldb;
    T beta;
    T *C;                 /* NULL: blocks (see fastnn_internal_gemm_blocks) */
    int64_t ldc;
    const fastnn_epilogue *ep;
    const volatile sig_atomic_t *cancel; /* stop when non-zero (or NULL) */
    CFG_T cfg;
    int64_t kcs, nkb;     /* k slice length and count */
    int64_t MU, NU;       /* unit rows (cfg.mc) and columns (multiple of nr) */
    int64_t nic, njb;     /* row and column blocks */
    int jb_major;         /* unit u: jb = u / nic (else ic = u / njb) */
    int cache_a, cache_b; /* keep full-k packed blocks between units */
    int64_t aslice, bslice; /* elements per packed k slice (aligned) */
    int64_t boff;         /* elements from buffer start to the B region */
    int64_t coff;         /* blocks: elements from buffer start to the unit's C */
} F(gemm_job);

static void F(gemm_unit)(const void *ctx, int64_t u, void *buf,
                          gemm_ustate *st)
{
    const F(gemm_job) *J = (const F(gemm_job) *)ctx;
    const int64_t mr = J->cfg.mr, nr = J->cfg.nr;
    /* blocks: the unit's C in the buffer, rows of NU (n when one unit spans
     * them: whole rows, contiguous) */
    const int64_t ldc = J->C != NULL ? J->ldc : J->njb == 1 ? J->n : J->NU, k = J->k;
    const UKERN_T kern = J->cfg.kern;
    int64_t ic, jb;
    if (J->jb_major) {
        jb = u / J->nic;
        ic = u - jb * J->nic;
    } else {
        ic = u / J->njb;
        jb = u - ic * J->njb;
    }
    const int64_t i0 = ic * J->MU, j0 = jb * J->NU;
    const int64_t mc = (J->m - i0 < J->MU) ? J->m - i0 : J->MU;
    const int64_t nc = (J->n - j0 < J->NU) ? J->n - j0 : J->NU;
    T *const abuf = (T *)buf;
    T *const bbuf = (T *)buf + J->boff;
    const int have_a = J->cache_a && st->a == ic;
    const int have_b = J->cache_b && st->b == jb;
    T *const cblk = J->C != NULL ? J->C + i0 * ldc + j0 : (T *)buf + J->coff;

    for (int64_t kb = 0; kb < J->nkb; kb++) {
        if (J->cancel != NULL && *J->cancel) {
            st->a = st->b = -1; /* the packed blocks may be partial */
            return;             /* neither finished nor its epilogue run */
        }
        const int64_t p0 = kb * J->kcs;
        const int64_t kc = (k - p0 < J->kcs) ? k - p0 : J->kcs;
        const T beff = (kb == 0) ? J->beta : (T)1;
        T *const Ap = abuf + (J->cache_a ? kb * J->aslice : 0);
        T *const Bp = bbuf + (J->cache_b ? kb * J->bslice : 0);
        if (!have_a)
            F(pack_a)(J->trans_a, J->A, J->lda, i0, mc, p0, kc, (int)mr, Ap,
                       J->cfg.pack_t, J->cfg.pack_n);
        if (!have_b)
            F(pack_b)(J->trans_b, J->B, J->ldb, j0, nc, p0, kc, (int)nr, Bp,
                       J->cfg.pack_t, J->cfg.pack_n);
        for (int64_t jr = 0; jr < nc; jr += nr) {
            const T *bp = Bp + jr * kc;
            const int64_t ne = (nc - jr < nr) ? nc - jr : nr;
            for (int64_t ir = 0; ir < mc; ir += mr) {
                const int64_t me = (mc - ir < mr) ? mc - ir : mr;
                kern(kc, Ap + ir * kc, bp, cblk + ir * ldc + jr, ldc, me, ne,
                     beff);
            }
        }
    }
    st->a = J->cache_a ? ic : -1;
    st->b = J->cache_b ? jb : -1;
    if (J->ep != NULL && J->ep->fn != NULL)
        J->ep->fn(J->ep->ctx, i0, j0, mc, nc, cblk, ldc);
}

/* ---- direct path for small products ------------------------------------ */

#define SMALL_T FASTNN_CAT(fastnn_small, SFX)
/* by ISA code; NULL for an ISA this build has no kernels for (never selected) */
static const SMALL_T F(small_tab)[FASTNN_N_ISA] = {
    [FASTNN_ISA_GENERIC] = F(fastnn_gemm_small_generic),
#ifdef FASTNN_HAVE_X86_KERNELS
    [FASTNN_ISA_AVX2] = F(fastnn_gemm_small_avx2),
    [FASTNN_ISA_AVX512] = F(fastnn_gemm_small_avx512),
#endif
};

/* A function of the shape and the ISA only (limits: gemm_internal.h). */
static inline int F(small_ok)(int isa, int64_t m, int64_t n, int64_t k,
                               int trans_b)
{
    if (trans_b && k > FASTNN_GEMM_SMALL_KMAX_T)
        return 0;
    const int64_t lim = isa == FASTNN_ISA_GENERIC
                            ? (int64_t)FASTNN_GEMM_SMALL_MNK_GENERIC
                            : (int64_t)FASTNN_GEMM_SMALL_MNK;
    if (m > lim || n > lim || k > lim)
        return 0; /* also keeps m*n*k below from overflowing */
    return m * n * k <= lim;
}

/* ---- the tiniest products (see fastnn_internal_gemm_tiny in internal.h) -- */

/* fastnn_internal_gemm_tiny's products (internal.h) are ones the driver
 * gives to the direct kernels on every ISA, so the two give the same bits */
_Static_assert(FASTNN_GEMM_TINY_MNK <= FASTNN_GEMM_SMALL_MNK &&
                   FASTNN_GEMM_TINY_MNK <= FASTNN_GEMM_SMALL_MNK_GENERIC &&
                   FASTNN_GEMM_TINY_MNK <= FASTNN_GEMM_SMALL_KMAX_T,
               "the tiny products must be direct-path products");

/* The body: op(A)'s element (i, p) at A[i*ai + p*ap], op(B)'s (p, j) at
 * B[p*bp + j*bj]; every element of C its own chain over p = 0..k-1 from
 * +0, four columns at a time (four chains in flight), then one.  Scalar on
 * purpose (not vectorized): at these sizes a vector loop's set-up and tails
 * cost more than its arithmetic. */
#define TINY_PRODUCT(MADD)                                                     \
    for (int64_t i = 0; i < m; i++) {                                          \
        const T *ar = A + i * ai;                                              \
        T *c = C + i * ldc;                                                    \
        int64_t j = 0;                                                         \
        for (; j + 4 <= n; j += 4) {                                           \
            const T *a = ar, *b = B + j * bj;                                  \
            T c0 = (T)0, c1 = (T)0, c2 = (T)0, c3 = (T)0;                      \
            for (int64_t p = 0; p < k; p++, a += ap, b += bp) {                \
                const T x = *a;                                                \
                c0 = MADD(x, b[0], c0);                                        \
                c1 = MADD(x, b[bj], c1);                                       \
                c2 = MADD(x, b[2 * bj], c2);                                   \
                c3 = MADD(x, b[3 * bj], c3);                                   \
            }                                                                  \
            c[j] = c0;                                                         \
            c[j + 1] = c1;                                                     \
            c[j + 2] = c2;                                                     \
            c[j + 3] = c3;                                                     \
        }                                                                      \
        for (; j < n; j++) {                                                   \
            const T *a = ar, *b = B + j * bj;                                  \
            T acc = (T)0;                                                      \
            for (int64_t p = 0; p < k; p++, a += ap, b += bp)                  \
                acc = MADD(*a, *b, acc);                                       \
            c[j] = acc;                                                        \
        }                                                                      \
    }
#define TINY_MULADD(a, b, c) ((a) * (b) + (c))

__attribute__((optimize("no-tree-vectorize"))) static void
F(tiny_muladd)(int64_t m, int64_t n, int64_t k, const T *A, int64_t ai, int64_t ap, const T *B,
               int64_t bp, int64_t bj, T *C, int64_t ldc)
{
    TINY_PRODUCT(TINY_MULADD)
}

#ifdef FASTNN_HAVE_X86_KERNELS
#define TINY_FMA(a, b, c) (sizeof(T) == sizeof(float) ? __builtin_fmaf(a, b, c) \
                                                      : __builtin_fma(a, b, c))
__attribute__((target("fma"), optimize("no-tree-vectorize"))) static void
F(tiny_fma)(int64_t m, int64_t n, int64_t k, const T *A, int64_t ai, int64_t ap, const T *B,
            int64_t bp, int64_t bj, T *C, int64_t ldc)
{
    TINY_PRODUCT(TINY_FMA)
}
#undef TINY_FMA
#endif
#undef TINY_MULADD
#undef TINY_PRODUCT

void F(fastnn_internal_gemm_tiny)(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                                  const T *A, int64_t lda, const T *B, int64_t ldb, T *C,
                                  int64_t ldc)
{
    const int64_t ai = trans_a ? 1 : lda, ap = trans_a ? lda : 1;
    const int64_t bp = trans_b ? 1 : ldb, bj = trans_b ? ldb : 1;
#ifdef FASTNN_HAVE_X86_KERNELS
    if (fastnn_internal_get_isa() != FASTNN_ISA_GENERIC) {  /* AVX2, AVX-512: FMA */
        F(tiny_fma)(m, n, k, A, ai, ap, B, bp, bj, C, ldc);
        return;
    }
#endif
    F(tiny_muladd)(m, n, k, A, ai, ap, B, bp, bj, C, ldc);
}

/* the blocking of ISA isa; FASTNN_EINVAL for an unknown code */
static int F(gemm_cfg)(int isa, CFG_T *cfg)
{
    switch (isa) {
    case FASTNN_ISA_GENERIC:
        F(fastnn_gemm_cfg_generic)(cfg);
        return FASTNN_OK;
#ifdef FASTNN_HAVE_X86_KERNELS
    case FASTNN_ISA_AVX2:
        F(fastnn_gemm_cfg_avx2)(cfg);
        return FASTNN_OK;
    case FASTNN_ISA_AVX512:
        F(fastnn_gemm_cfg_avx512)(cfg);
        return FASTNN_OK;
#endif
    default:
        return FASTNN_EINVAL; /* (without x86 kernels only generic is ever selected) */
    }
}

/* Blocks of C that the direct kernel computes, handed to the epilogue
 * without storing C (see fastnn_internal_gemm_blocks): row panels of at most
 * FASTNN_GEMM_BLOCK_ELEMS elements, in a buffer of the calling thread.  The
 * direct kernel's bits do not depend on the rows it is given (each element
 * is its own chain over k), so a panel has the bits of the whole product.
 * 1 when the kernel refuses the shape (nothing was handed over: the packed
 * path takes it), else a status. */
#ifndef FASTNN_GEMM_BLOCK_ELEMS
#define FASTNN_GEMM_BLOCK_ELEMS 16384
#endif
static int F(small_blocks)(int isa, int trans_a, int trans_b, int64_t m, int64_t n,
                           int64_t k, const T *A, int64_t lda, const T *B, int64_t ldb,
                           const fastnn_epilogue *epilogue)
{
    int64_t rows = FASTNN_GEMM_BLOCK_ELEMS / n;
    rows = rows < 1 ? 1 : rows > m ? m : rows;
    int priv;
    T *panel = (T *)gemm_thread_buffer((size_t)(rows * n) * sizeof(T), &priv);
    if (panel == NULL)
        return FASTNN_ENOMEM;
    for (int64_t r0 = 0; r0 < m; r0 += rows) {
        const int64_t mb = m - r0 < rows ? m - r0 : rows;
        if (k == 0) {
            for (int64_t i = 0; i < mb * n; i++)
                panel[i] = (T)0;
        } else if (F(small_tab)[isa](trans_a, trans_b, mb, n, k,
                                     trans_a ? A + r0 : A + r0 * lda, lda, B, ldb, (T)0,
                                     panel, n) != 0) {
            gemm_thread_buffer_done(panel, priv);
            return 1;  /* (the same for every panel: refused at the first) */
        }
        epilogue->fn(epilogue->ctx, r0, 0, mb, n, panel, n);
    }
    gemm_thread_buffer_done(panel, priv);
    return FASTNN_OK;
}

/* fastnn_gemm, or with C NULL fastnn_internal_gemm_blocks; arguments checked */
static int F(gemm_drive)(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                         const T *A, int64_t lda, const T *B, int64_t ldb, T beta,
                         T *C, int64_t ldc, const fastnn_epilogue *epilogue)
{
    const int isa = fastnn_internal_get_isa();
    if (isa < 0 || isa >= FASTNN_N_ISA || F(small_tab)[isa] == NULL)
        return FASTNN_EINVAL;
    if (C == NULL && (k == 0 || F(small_ok)(isa, m, n, k, trans_b != 0))) {
        const int status = F(small_blocks)(isa, trans_a != 0, trans_b != 0, m, n, k, A, lda,
                                           B, ldb, epilogue);
        if (status != 1)
            return status;
    } else if (k == 0) { /* C = beta*C (zeros when beta == 0), then one epilogue */
        for (int64_t i = 0; i < m; i++) {
            T *c = C + i * ldc;
            if (beta == (T)0)
                for (int64_t j = 0; j < n; j++)
                    c[j] = (T)0;
            else
                for (int64_t j = 0; j < n; j++)
                    c[j] = beta * c[j];
        }
        if (epilogue != NULL && epilogue->fn != NULL)
            epilogue->fn(epilogue->ctx, 0, 0, m, n, C, ldc);
        return FASTNN_OK;
    } else if (F(small_ok)(isa, m, n, k, trans_b != 0) &&
               F(small_tab)[isa](trans_a != 0, trans_b != 0, m, n, k, A, lda, B, ldb,
                                 beta, C, ldc) == 0) {
        /* one block: all of C */
        if (epilogue != NULL && epilogue->fn != NULL)
            epilogue->fn(epilogue->ctx, 0, 0, m, n, C, ldc);
        return FASTNN_OK;
    }

    F(gemm_job) J;
    J.trans_a = trans_a != 0;
    J.trans_b = trans_b != 0;
    J.m = m;
    J.n = n;
    J.k = k;
    J.A = A;
    J.lda = lda;
    J.B = B;
    J.ldb = ldb;
    J.beta = beta;
    J.C = C;
    J.ldc = ldc;
    J.ep = epilogue;
    J.cancel = fastnn_internal_cancel;
    if (F(gemm_cfg)(isa, &J.cfg) != FASTNN_OK)
        return FASTNN_EINVAL;

    const int64_t mr = J.cfg.mr, nr = J.cfg.nr;
    /* the rounding depends on these two only (k and the ISA's kc) */
    J.nkb = (k + J.cfg.kc - 1) / J.cfg.kc;
    J.kcs = (k + J.nkb - 1) / J.nkb;

    /* units: MU = mc rows; NU columns so that there are about
     * FASTNN_GEMM_UNITS units (load balance, stealing), at most cfg.nc */
    J.MU = J.cfg.mc;
    J.nic = (m + J.MU - 1) / J.MU;
    if (J.nic > 1) { /* equal row blocks (multiples of mr), not mc + rest */
        int64_t mu = (m + J.nic - 1) / J.nic;
        J.MU = (mu + mr - 1) / mr * mr;
        J.nic = (m + J.MU - 1) / J.MU;
    }
    {
        int64_t want = (FASTNN_GEMM_UNITS + J.nic - 1) / J.nic;
        int64_t nu = (n + want - 1) / want;
        nu = (nu + nr - 1) / nr * nr;
        int64_t numax = FASTNN_GEMM_NU_BYTES / (int64_t)sizeof(T);
        if (numax > J.cfg.nc)
            numax = J.cfg.nc;
        numax = numax / nr * nr;
        if (nu > numax)
            nu = numax;
        if (nu < nr)
            nu = nr;
        J.NU = nu;
    }
    const int64_t npad_all = (n + nr - 1) / nr * nr;
    if (C == NULL && npad_all <= FASTNN_GEMM_NU_BYTES / (int64_t)sizeof(T) &&
        npad_all <= J.cfg.nc) {
        /* blocks: whole rows of C where a unit can hold them, so that the
         * epilogue gets them as one contiguous span, in about
         * FASTNN_GEMM_UNITS row blocks (the cut never changes the bits) */
        int64_t mu = (m + FASTNN_GEMM_UNITS - 1) / FASTNN_GEMM_UNITS;
        mu = (mu + mr - 1) / mr * mr;
        J.MU = mu < J.cfg.mc ? mu : J.cfg.mc;
        J.nic = (m + J.MU - 1) / J.MU;
        J.NU = npad_all;
    }
    J.njb = (n + J.NU - 1) / J.NU;
    const int64_t nunits = J.nic * J.njb;

    /* order: the one that packs fewer elements (each thread keeps the
     * operand block that consecutive units share), with a bias to ic-major:
     * a thread then owns whole rows of C (contiguous memory, disjoint pages;
     * measured 784x64.64x256 f32, 2 threads: 120 -> 96 us) */
    {
        const double mk = (double)m * (double)k, nk = (double)n * (double)k;
        const double cost_ic = mk + (J.njb == 1 ? nk : nk * (double)J.nic);
        const double cost_jb = nk + (J.nic == 1 ? mk : mk * (double)J.njb);
        J.jb_major = cost_jb < 0.75 * cost_ic;
    }
    const int64_t align = 64 / (int64_t)sizeof(T);
    const int64_t mpad = ((m < J.MU ? m : J.MU) + mr - 1) / mr * mr;
    const int64_t npad = ((n < J.NU ? n : J.NU) + nr - 1) / nr * nr;
    J.aslice = (mpad * J.kcs + align - 1) / align * align;
    J.bslice = (npad * J.kcs + align - 1) / align * align;
    {
        const int64_t cap = FASTNN_GEMM_CACHE_BYTES / (int64_t)sizeof(T);
        J.cache_a = J.nic == 1 || !J.jb_major;
        J.cache_b = J.njb == 1 || J.jb_major;
        if (J.cache_a && J.aslice * J.nkb > cap)
            J.cache_a = 0;
        if (J.cache_b && J.bslice * J.nkb > cap)
            J.cache_b = 0;
    }
    const int64_t asz = J.cache_a ? J.aslice * J.nkb : J.aslice;
    const int64_t bsz = J.cache_b ? J.bslice * J.nkb : J.bslice;
    /* blocks: each thread's unit of C, MU x NU */
    const int64_t csz = C != NULL ? 0 : (J.MU * J.NU + align - 1) / align * align;
    J.boff = asz;
    J.coff = asz + bsz;
    const size_t bytes = (size_t)(asz + bsz + csz) * sizeof(T);

    /* threads: only for enough flops and more than one unit */
    int nt = fastnn_get_num_threads();
    if (2.0 * (double)m * (double)n * (double)k < FASTNN_GEMM_MT_FLOPS)
        nt = 1;
    if ((int64_t)nt > nunits)
        nt = (int)nunits;
    if (nt < 1)
        nt = 1;

    int priv;
    void *buf = gemm_thread_buffer(bytes, &priv);
    if (buf == NULL)
        return FASTNN_ENOMEM;
    gemm_run_units(F(gemm_unit), &J, nunits, nt, buf, bytes);
    gemm_thread_buffer_done(buf, priv);
    /* cancelled: blocks of C may be missing (the trainer drops the batch) */
    return J.cancel != NULL && *J.cancel ? FASTNN_EINTERRUPTED : FASTNN_OK;
}

int F(fastnn_gemm)(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                    const T *A, int64_t lda, const T *B, int64_t ldb, T beta,
                    T *C, int64_t ldc, const fastnn_epilogue *epilogue)
{
    if (m < 0 || n < 0 || k < 0)
        return FASTNN_EINVAL;
    if (m == 0 || n == 0)
        return FASTNN_OK;
    if (C == NULL || ldc < n)
        return FASTNN_EINVAL;
    if (k > 0) {
        if (A == NULL || B == NULL)
            return FASTNN_EINVAL;
        if (trans_a ? lda < m : lda < k)
            return FASTNN_EINVAL;
        if (trans_b ? ldb < k : ldb < n)
            return FASTNN_EINVAL;
    }
    return F(gemm_drive)(trans_a, trans_b, m, n, k, A, lda, B, ldb, beta, C, ldc, epilogue);
}

int F(fastnn_internal_gemm_blocks)(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                                   const T *A, int64_t lda, const T *B, int64_t ldb,
                                   const fastnn_epilogue *epilogue)
{
    if (m <= 0 || n <= 0)
        return FASTNN_OK;
    return F(gemm_drive)(trans_a, trans_b, m, n, k, A, lda, B, ldb, (T)0, NULL, n, epilogue);
}

#undef CFG_T
#undef UKERN_T
#undef PACKT_T
#undef PACKN_T
#undef SMALL_T

#endif /* FASTNN_GEMM_SMALL_TEMPLATE */
