/*
 * gemm_ukernel_tiles.h -- the micro-kernel of one ISA and dtype: its bodies
 * (KR1/KR2/KR3 rows x 2/1 vectors) from gemm_ukernel_impl.h, then the kernel
 * that calls them (ROWS undefined).  Included by gemm_avx2.c and
 * gemm_avx512.c once per dtype, with the dtype's T, VT, SK_*, MR, NR and the
 * ISA's KR1-3 defined, so the list of bodies is written once.
 */
#define ROWS KR1
#define COLV 2
#include "gemm_ukernel_impl.h"
#undef ROWS
#undef COLV
#define ROWS KR1
#define COLV 1
#include "gemm_ukernel_impl.h"
#undef ROWS
#undef COLV
#define ROWS KR2
#define COLV 2
#include "gemm_ukernel_impl.h"
#undef ROWS
#undef COLV
#define ROWS KR2
#define COLV 1
#include "gemm_ukernel_impl.h"
#undef ROWS
#undef COLV
#define ROWS KR3
#define COLV 2
#include "gemm_ukernel_impl.h"
#undef ROWS
#undef COLV
#define ROWS KR3
#define COLV 1
#include "gemm_ukernel_impl.h"
#undef ROWS
#undef COLV
#include "gemm_ukernel_impl.h" /* the kernel: ROWS undefined */
