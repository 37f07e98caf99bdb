/*
 * vexp.h -- exp(x) written so that the compiler can vectorize the loops that
 * call it (sigmoid, SiLU, softmax, the cross-entropy's row sums).
 *
 * Why it is built this way: libm's exp is a function call per element, which
 * no loop around it can vectorize; on small layers it was a tenth of the
 * training time.  This is the classic branch-free method -- k = round(x/ln 2),
 * r = x - k ln 2 in two parts (Cody-Waite), exp(r) by its Taylor polynomial
 * to degree 13 (truncation below 2^-60 for |r| <= ln(2)/2), times 2^k built
 * from the exponent bits -- in plain C: no intrinsics, no FMA (so every
 * instruction-set clone gives the same bits), no table lookups and no
 * branches, only selects.  Its error is within about one unit in the last
 * place, like libm's and NumPy's own exp (neither is correctly rounded, and
 * they differ from each other in the last bit).  float goes through double,
 * so its result is the correctly rounded float except in rare near-ties.
 *
 * It is always inlined: a loop vectorizes only with the body in line.
 *
 * Special values follow C's exp: exp(+inf) = +inf, exp(-inf) = 0, NaN stays
 * NaN, overflow gives +inf, underflow goes through the subnormals to 0.
 */
#ifndef FASTNN_VEXP_H
#define FASTNN_VEXP_H

#include <stdint.h>
#include <string.h>

/* exp(r) * 2^-k for x clamped to xc, with its k = round(x / ln 2) in *k */
static inline __attribute__((always_inline)) double fastnn_exp_reduced(double xc, double *k)
{
    const double shifter = 0x1.8p52;               /* adding it rounds to an integer */
    const double log2e = 0x1.71547652b82fep0;
    const double ln2_hi = 0x1.62e42fee00000p-1;    /* k * ln2_hi is exact, |k| < 2^11 */
    const double ln2_lo = 0x1.a39ef35793c76p-33;
    const double kd = xc * log2e + shifter;
    *k = kd - shifter;
    const double r = (xc - *k * ln2_hi) - *k * ln2_lo;
    double p = 0x1.6124613a86d09p-33;              /* 1/13! */
    p = p * r + 0x1.1eed8eff8d898p-29;             /* 1/12! */
    p = p * r + 0x1.ae64567f544e4p-26;             /* 1/11! */
    p = p * r + 0x1.27e4fb7789f5cp-22;             /* 1/10! */
    p = p * r + 0x1.71de3a556c734p-19;             /* 1/9! */
    p = p * r + 0x1.a01a01a01a01ap-16;             /* 1/8! */
    p = p * r + 0x1.a01a01a01a01ap-13;             /* 1/7! */
    p = p * r + 0x1.6c16c16c16c17p-10;             /* 1/6! */
    p = p * r + 0x1.1111111111111p-7;              /* 1/5! */
    p = p * r + 0x1.5555555555555p-5;              /* 1/4! */
    p = p * r + 0x1.5555555555555p-3;              /* 1/3! */
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    return p;
}

/* 2^k for an integer k with k + 1023 in [1, 2046] (a normal double): the
   shifter leaves k + 1023 (< 2^11) in the low bits of kb, and the shift moves
   them into the exponent field; double and shift only, which AVX2 has for
   64-bit lanes. */
static inline __attribute__((always_inline)) double fastnn_exp2i(double k)
{
    const double kb = k + (0x1.8p52 + 1023.0);
    uint64_t b;
    memcpy(&b, &kb, sizeof b);
    b <<= 52;
    double s;
    memcpy(&s, &b, sizeof s);
    return s;
}

static inline __attribute__((always_inline)) double fastnn_exp_f64(double x)
{
    /* beyond these bounds exp is inf or 0 in double; NaN passes both tests */
    double xc = x > 709.9 ? 709.9 : x;
    xc = xc < -746.0 ? -746.0 : xc;
    double k;
    const double p = fastnn_exp_reduced(xc, &k);
    /* 2^k as two normal factors 2^k1 * 2^k2 (|k2 - k1| <= 1), so that results
       in the subnormal range are rounded only once, by the last
       multiplication */
    const double k1 = (k * 0.5 + 0x1.8p52) - 0x1.8p52;
    return p * fastnn_exp2i(k1) * fastnn_exp2i(k - k1);
}

/* float through double, clamped to float's range: exp(89) is above FLT_MAX
   (inf) and exp(-104) below half of the least subnormal float (0), so |k| <=
   150 and 2^k is one normal double: p * 2^k is exact, the same double as
   fastnn_exp_f64's p * 2^k1 * 2^k2, and so the same float (checked for all
   2^32 inputs when it was written) */
static inline __attribute__((always_inline)) float fastnn_exp_f32(float x)
{
    double xc = (double)x > 89.0 ? 89.0 : (double)x;
    xc = xc < -104.0 ? -104.0 : xc;
    double k;
    const double p = fastnn_exp_reduced(xc, &k);
    return (float)(p * fastnn_exp2i(k));
}

#endif /* FASTNN_VEXP_H */
