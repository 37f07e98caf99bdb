/*
 * pairwise_impl.h -- NumPy's pairwise summation order (private header).
 *
 * Why it is built this way: the reference backend sums with NumPy, and a
 * compiled kernel that adds in NumPy's order gives the same bits, not merely
 * close ones.  This body defines a static summation function for any element
 * expression, so activations.c (softmax rows) and losses.c (loss terms) share
 * one definition.  It is a template like the other *_impl.h files: include
 * it with these defined (it undefines them at its end, so it can be included
 * again at once):
 *   PW_NAME         the function's name: ACC PW_NAME(const PW_CTX *c, lo, n);
 *                   PW_NAME_block, the same for n <= 128, is inlined where used
 *   PW_ACC          the accumulator type
 *   PW_CTX          the context type the element expression reads
 *   PW_ELEM(c, i)   the element i, i in [lo, lo + n)
 *
 * NumPy's pairwise summation (numpy/_core/src/umath/loops_utils.h.src,
 * PW_BLOCKSIZE 128).  NumPy uses it for every reduction along a contiguous
 * axis (x.sum(axis=1) of a C-contiguous matrix, a whole contiguous array).
 * No include guard on purpose.
 */
#if !defined(PW_NAME) || !defined(PW_ACC) || !defined(PW_CTX) || !defined(PW_ELEM)
#error "define PW_NAME, PW_ACC, PW_CTX and PW_ELEM before including pairwise_impl.h"
#endif

#include <stdint.h>

/* a block of at most 128 elements: no recursion, so inlined where it is
 * called (a row of 10 logits is summed in a few adds, not a call) */
static inline __attribute__((always_inline)) PW_ACC
FASTNN_CAT(PW_NAME, block)(const PW_CTX *c, int64_t lo, int64_t n)
{
    if (n < 8) {
        PW_ACC res = (PW_ACC)-0.0;
        for (int64_t i = 0; i < n; i++)
            res += PW_ELEM(c, lo + i);
        return res;
    }
    PW_ACC r0 = PW_ELEM(c, lo + 0), r1 = PW_ELEM(c, lo + 1);
    PW_ACC r2 = PW_ELEM(c, lo + 2), r3 = PW_ELEM(c, lo + 3);
    PW_ACC r4 = PW_ELEM(c, lo + 4), r5 = PW_ELEM(c, lo + 5);
    PW_ACC r6 = PW_ELEM(c, lo + 6), r7 = PW_ELEM(c, lo + 7);
    int64_t i;
    for (i = 8; i < n - (n % 8); i += 8) {
        r0 += PW_ELEM(c, lo + i + 0);
        r1 += PW_ELEM(c, lo + i + 1);
        r2 += PW_ELEM(c, lo + i + 2);
        r3 += PW_ELEM(c, lo + i + 3);
        r4 += PW_ELEM(c, lo + i + 4);
        r5 += PW_ELEM(c, lo + i + 5);
        r6 += PW_ELEM(c, lo + i + 6);
        r7 += PW_ELEM(c, lo + i + 7);
    }
    PW_ACC res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7));
    for (; i < n; i++)
        res += PW_ELEM(c, lo + i);
    return res;
}

static PW_ACC PW_NAME(const PW_CTX *c, int64_t lo, int64_t n)
{
    if (n <= 128)
        return FASTNN_CAT(PW_NAME, block)(c, lo, n);
    int64_t n2 = n / 2;
    n2 -= n2 % 8;
    return PW_NAME(c, lo, n2) + PW_NAME(c, lo + n2, n - n2);
}

#undef PW_NAME
#undef PW_ACC
#undef PW_CTX
#undef PW_ELEM
