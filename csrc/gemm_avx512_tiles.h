/*
 * gemm_avx512_tiles.h -- the AVX-512 micro-kernel of one dtype: its small
 * tiles (ROWS x COLV vectors: 12/8/4 rows, 2/1 vectors) from
 * gemm_avx512_impl.h, then the kernel that calls them (ROWS undefined).
 * Included by gemm_avx512.c once per dtype, with the dtype's T, VT, SK_*,
 * MR and NR defined, so the list of tiles is written once.
 */
#define ROWS 12
#define COLV 2
#include "gemm_avx512_impl.h"
#undef ROWS
#undef COLV
#define ROWS 12
#define COLV 1
#include "gemm_avx512_impl.h"
#undef ROWS
#undef COLV
#define ROWS 8
#define COLV 2
#include "gemm_avx512_impl.h"
#undef ROWS
#undef COLV
#define ROWS 8
#define COLV 1
#include "gemm_avx512_impl.h"
#undef ROWS
#undef COLV
#define ROWS 4
#define COLV 2
#include "gemm_avx512_impl.h"
#undef ROWS
#undef COLV
#define ROWS 4
#define COLV 1
#include "gemm_avx512_impl.h"
#undef ROWS
#undef COLV
#include "gemm_avx512_impl.h" /* the kernel: ROWS undefined */
