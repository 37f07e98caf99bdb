/*
 * per_dtype.h -- the one way a C file instantiates a dtype template.
 *
 * Why it is built this way: each kernel body is written once, in a
 * `*_impl.h` file over the type T, with FASTNN_CAT / F(name) in internal.h
 * giving each function its _f32 / _f64 suffix (SFX).  A C file names its
 * template and includes this header, which includes the template once per
 * dtype:
 *
 *     #define FASTNN_TEMPLATE "losses_impl.h"
 *     #include "per_dtype.h"
 *
 * Files whose template needs more than T and SFX per dtype (the GEMM
 * micro-kernels' vector types, optim.c's sqrt) spell the two blocks out
 * in the same shape.
 */
#ifndef FASTNN_TEMPLATE
#error "define FASTNN_TEMPLATE (the *_impl.h file) before including per_dtype.h"
#endif

#define T float
#define SFX f32
#include FASTNN_TEMPLATE
#undef T
#undef SFX

#define T double
#define SFX f64
#include FASTNN_TEMPLATE
#undef T
#undef SFX

#undef FASTNN_TEMPLATE
