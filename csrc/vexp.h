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

static inline __attribute__((always_inline)) double fastnn_exp_f64(double x)
{
    const double shifter = 0x1.8p52;               /* adding it rounds to an integer */
    const double log2e = 0x1.71547652b82fep0;
    const double ln2_hi = 0x1.62e42fee00000p-1;    /* k * ln2_hi is exact, |k| < 2^11 */
    const double ln2_lo = 0x1.a39ef35793c76p-33;
    /* beyond these bounds exp is inf or 0 in double; NaN passes both tests */
    double xc = x > 709.9 ? 709.9 : x;
    xc = xc < -746.0 ? -746.0 : xc;
    const double kd = xc * log2e + shifter;
    const double k = kd - shifter;
    const double r = (xc - k * ln2_hi) - k * ln2_lo;
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
    /* 2^k as two normal factors 2^k1 * 2^k2 (|k2 - k1| <= 1), so that results
       in the subnormal range are rounded only once, by the last
       multiplication.  The shifter leaves k1 + 1023 (< 2^11) in the low bits
       of k1b, and the shift moves them into the exponent field; double and
       shift only, which AVX2 has for 64-bit lanes. */
    const double k1 = (k * 0.5 + shifter) - shifter;
    const double k2 = k - k1;
    const double k1b = k1 + (shifter + 1023.0), k2b = k2 + (shifter + 1023.0);
    uint64_t b1, b2;
    memcpy(&b1, &k1b, sizeof b1);
    memcpy(&b2, &k2b, sizeof b2);
    b1 <<= 52;
    b2 <<= 52;
    double s1, s2;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    return p * s1 * s2;
}

static inline __attribute__((always_inline)) float fastnn_exp_f32(float x)
{
    return (float)fastnn_exp_f64((double)x);
}

#endif /* FASTNN_VEXP_H */
