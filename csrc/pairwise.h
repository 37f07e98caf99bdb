/*
 * pairwise.h -- NumPy's pairwise summation order, as a macro (private header).
 *
 * Why it is built this way: the reference backend sums with NumPy, and a
 * compiled kernel that adds in NumPy's order gives the same bits, not merely
 * close ones.  The macro defines a static summation function for any element
 * expression, so activations.c (softmax rows) and losses.c (loss terms) share
 * one definition.
 */
#ifndef FASTNN_PAIRWISE_H
#define FASTNN_PAIRWISE_H

#include <stdint.h>

/*
 * NumPy's pairwise summation (numpy/_core/src/umath/loops_utils.h.src,
 * PW_BLOCKSIZE 128), for an element expression ELEM(ctx, i), i in [lo, lo+n).
 * Accumulates in ACC.  NumPy uses it for every reduction along a contiguous
 * axis (x.sum(axis=1) of a C-contiguous matrix, a whole contiguous array).
 */
#define PAIRWISE_SUM(NAME, ACC, CTX, ELEM)                                     \
    static ACC NAME(const CTX *c, int64_t lo, int64_t n)                       \
    {                                                                          \
        if (n < 8) {                                                           \
            ACC res = (ACC)-0.0;                                               \
            for (int64_t i = 0; i < n; i++)                                    \
                res += ELEM(c, lo + i);                                        \
            return res;                                                        \
        }                                                                      \
        if (n <= 128) {                                                        \
            ACC r0 = ELEM(c, lo + 0), r1 = ELEM(c, lo + 1);                    \
            ACC r2 = ELEM(c, lo + 2), r3 = ELEM(c, lo + 3);                    \
            ACC r4 = ELEM(c, lo + 4), r5 = ELEM(c, lo + 5);                    \
            ACC r6 = ELEM(c, lo + 6), r7 = ELEM(c, lo + 7);                    \
            int64_t i;                                                         \
            for (i = 8; i < n - (n % 8); i += 8) {                             \
                r0 += ELEM(c, lo + i + 0);                                     \
                r1 += ELEM(c, lo + i + 1);                                     \
                r2 += ELEM(c, lo + i + 2);                                     \
                r3 += ELEM(c, lo + i + 3);                                     \
                r4 += ELEM(c, lo + i + 4);                                     \
                r5 += ELEM(c, lo + i + 5);                                     \
                r6 += ELEM(c, lo + i + 6);                                     \
                r7 += ELEM(c, lo + i + 7);                                     \
            }                                                                  \
            ACC res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7));       \
            for (; i < n; i++)                                                 \
                res += ELEM(c, lo + i);                                        \
            return res;                                                        \
        }                                                                      \
        int64_t n2 = n / 2;                                                    \
        n2 -= n2 % 8;                                                          \
        return NAME(c, lo, n2) + NAME(c, lo + n2, n - n2);                     \
    }

#endif /* FASTNN_PAIRWISE_H */
