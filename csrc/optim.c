/*
 * optim.c -- SGD (momentum, Nesterov, weight decay), Adam and AdamW (amsgrad),
 * RMSprop (momentum, centered) and Adagrad, in place; gradient clipping.
 *
 * Why it is built this way: the NumPy reference (numpy_ops.OPTIMIZERS, one
 * function per optimizer) makes several whole-array passes with temporaries; here each
 * element is read and written once, but the arithmetic per element is the
 * reference's, in the same order and in the array's dtype T, with every
 * scalar rounded to T exactly where the reference writes ``dt(...)``.  The
 * scalar bias corrections of Adam are computed in double as Python does
 * (``beta ** step`` is C's pow, ``x ** 0.5`` is pow(x, 0.5), not sqrt).
 *
 * The body is written once over T in optim_impl.h, included once per dtype
 * (with SQRT, TINY, T_MAX and T_EPS, T's sqrt, smallest normal and
 * largest number and epsilon, and UT, the unsigned integer of T's width,
 * defined too).
 */

#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fastnn.h"
#include "internal.h"

#define T float
#define SFX f32
#define SQRT sqrtf
#define TINY FLT_MIN
#define UT uint32_t
#define T_MAX FLT_MAX
#define T_EPS FLT_EPSILON
#include "optim_impl.h"
#undef T
#undef SFX
#undef SQRT
#undef TINY
#undef UT
#undef T_MAX
#undef T_EPS

#define T double
#define SFX f64
#define SQRT sqrt
#define TINY DBL_MIN
#define UT uint64_t
#define T_MAX DBL_MAX
#define T_EPS DBL_EPSILON
#include "optim_impl.h"
#undef T
#undef SFX
#undef SQRT
#undef TINY
#undef UT
#undef T_MAX
#undef T_EPS
