/*
 * peak.c -- the machine's FMA peak: fastnn_fma_peak_f32 / fastnn_fma_peak_f64.
 *
 * Why it is built this way: a benchmark that reports "% of peak" needs the
 * arithmetic throughput the GEMM's instruction set can reach on all of
 * fastnn's threads at once, measured, not looked up.  Each thread runs NACC
 * independent chains acc = acc * a + b in registers for a fixed number of
 * iterations: an FMA has a latency of about 4 cycles and a CPU issues one to
 * two per cycle, so 8 chains in flight are the minimum, and NACC is 12 (AVX2,
 * 16 ymm registers) or 24 (AVX-512, 32 zmm registers).  The job runs on the
 * GEMM's thread pool, one unit per thread (fastnn_internal_parallel_ranges);
 * the caller times each whole job, grows the iteration count until a job
 * takes ~PEAK_MIN_S, and keeps the best of PEAK_RUNS jobs (a busy core only
 * ever slows a run down).  The instruction set follows the GEMM's
 * (fastnn_get_isa, i.e. FASTNN_ISA or the best the CPU has):
 *
 *   avx512  : 24 zmm chains of vfmadd (16 float / 8 double lanes)
 *   avx2    : 12 ymm chains of vfmadd (8 float / 4 double lanes, AVX2+FMA)
 *   generic : plain C over a local array of 32 float / 16 double chains,
 *             vectorized by the compiler for the baseline ISA (SSE2 on
 *             x86-64).  -std=c11 contracts no a*b+c into an FMA, so this
 *             measures a multiply and an add per element (counted as the 2
 *             flops of an FMA): what the portable C kernels can reach.
 *
 * a = 1 - 2^-12 and b = 2^-16 keep every value normal and finite (the chains
 * converge to b / (1 - a) = 1/16).  Nothing here prints; the status is
 * FASTNN_OK, FASTNN_EINVAL (no output pointer) or FASTNN_ENOMEM.
 */
#define _GNU_SOURCE 1 /* clock_gettime */
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "fastnn.h"
#include "gemm_internal.h"
#include "internal.h"

#ifdef FASTNN_HAVE_X86_KERNELS
#include <immintrin.h>
#endif

#define PEAK_A (1.0 - 1.0 / 4096.0)
#define PEAK_B (1.0 / 65536.0)
#define PEAK_MIN_S 0.02 /* seconds per timed job */
#define PEAK_RUNS 5     /* timed jobs; the best counts */

/* The chains of one thread: acc[j] = acc[j] * a + b, NACC of them, iters
 * times; returns the sum of the final values (so nothing is optimized away).
 * FMADD(acc, a, b) is the ISA's fused multiply-add (or a plain expression). */
#define PEAK_CHAINS(NAME, TARGET, T, VT, NACC, LANES, SET1, FMADD, STOREU)   \
    static TARGET double NAME(int64_t iters)                                \
    {                                                                       \
        const VT a = SET1((T)PEAK_A), b = SET1((T)PEAK_B);                  \
        VT acc[NACC];                                                       \
        _Pragma("GCC unroll 32")                                            \
        for (int j = 0; j < NACC; j++)                                      \
            acc[j] = SET1((T)PEAK_B * (T)(j + 1));                          \
        for (int64_t i = 0; i < iters; i++) {                               \
            _Pragma("GCC unroll 32")                                        \
            for (int j = 0; j < NACC; j++)                                  \
                acc[j] = FMADD(acc[j], a, b);                               \
        }                                                                   \
        T lane[LANES];                                                      \
        double s = 0.0;                                                     \
        for (int j = 0; j < NACC; j++) {                                    \
            STOREU(lane, acc[j]);                                           \
            for (int l = 0; l < LANES; l++)                                 \
                s += (double)lane[l];                                       \
        }                                                                   \
        return s;                                                           \
    }

/* generic: scalars (the compiler vectorizes the unrolled chains) */
#define PEAK_SCALAR(x) (x)
#define PEAK_MULADD(acc, a, b) ((acc) * (a) + (b))
#define PEAK_STORE1(p, v) ((p)[0] = (v))
#define PEAK_NO_TARGET
PEAK_CHAINS(chains_generic_f32, PEAK_NO_TARGET, float, float, 32, 1, PEAK_SCALAR,
            PEAK_MULADD, PEAK_STORE1)
PEAK_CHAINS(chains_generic_f64, PEAK_NO_TARGET, double, double, 16, 1, PEAK_SCALAR,
            PEAK_MULADD, PEAK_STORE1)

#ifdef FASTNN_HAVE_X86_KERNELS
#define PEAK_AVX2 __attribute__((target("avx2,fma")))
#define PEAK_AVX512 __attribute__((target("avx512f")))
PEAK_CHAINS(chains_avx2_f32, PEAK_AVX2, float, __m256, 12, 8, _mm256_set1_ps,
            _mm256_fmadd_ps, _mm256_storeu_ps)
PEAK_CHAINS(chains_avx2_f64, PEAK_AVX2, double, __m256d, 12, 4, _mm256_set1_pd,
            _mm256_fmadd_pd, _mm256_storeu_pd)
PEAK_CHAINS(chains_avx512_f32, PEAK_AVX512, float, __m512, 24, 16, _mm512_set1_ps,
            _mm512_fmadd_ps, _mm512_storeu_ps)
PEAK_CHAINS(chains_avx512_f64, PEAK_AVX512, double, __m512d, 24, 8, _mm512_set1_pd,
            _mm512_fmadd_pd, _mm512_storeu_pd)
#endif

typedef double (*peak_chains_fn)(int64_t iters);

/* the chains of (isa, dtype) and the flops of one of their iterations */
static peak_chains_fn peak_kernel(int isa, int f64, double *flops_per_iter)
{
#ifdef FASTNN_HAVE_X86_KERNELS
    if (isa == FASTNN_ISA_AVX512) {
        *flops_per_iter = 2.0 * 24 * (f64 ? 8 : 16);
        return f64 ? chains_avx512_f64 : chains_avx512_f32;
    }
    if (isa == FASTNN_ISA_AVX2) {
        *flops_per_iter = 2.0 * 12 * (f64 ? 4 : 8);
        return f64 ? chains_avx2_f64 : chains_avx2_f32;
    }
#else
    (void)isa;
#endif
    *flops_per_iter = 2.0 * (f64 ? 16 : 32);
    return f64 ? chains_generic_f64 : chains_generic_f32;
}

typedef struct {
    peak_chains_fn chains;
    int64_t iters;
    volatile double *sink; /* one slot per unit: keeps the results alive */
} peak_job;

static void peak_unit(const void *ctx, int64_t lo, int64_t hi)
{
    const peak_job *job = (const peak_job *)ctx;
    for (int64_t u = lo; u < hi; u++)
        job->sink[u] = job->chains(job->iters);
}

static double peak_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* seconds of one job: `threads` units of `iters` iterations, all at once */
static double peak_time(peak_job *job, int threads)
{
    const double t0 = peak_now();
    /* work: large enough that parallel_ranges gives every thread a unit */
    fastnn_internal_parallel_ranges(peak_unit, job, threads, INT64_MAX / 4);
    return peak_now() - t0;
}

static int fma_peak(int f64, double *gflops)
{
    if (gflops == NULL)
        return FASTNN_EINVAL;
    const int threads = fastnn_get_num_threads();
    double flops_per_iter;
    peak_job job;
    job.chains = peak_kernel(fastnn_get_isa(), f64, &flops_per_iter);
    job.iters = 1 << 12;
    job.sink = malloc(sizeof(double) * (size_t)threads);
    if (job.sink == NULL)
        return FASTNN_ENOMEM;
    double seconds = peak_time(&job, threads); /* also wakes the pool */
    while (seconds < PEAK_MIN_S && job.iters < ((int64_t)1 << 40)) {
        const double grow = seconds > 0.0 ? 1.2 * PEAK_MIN_S / seconds : 16.0;
        job.iters = (int64_t)((double)job.iters * (grow < 16.0 ? (grow > 2.0 ? grow : 2.0)
                                                                : 16.0));
        seconds = peak_time(&job, threads);
    }
    for (int run = 1; run < PEAK_RUNS; run++) {
        const double s = peak_time(&job, threads);
        if (s < seconds)
            seconds = s;
    }
    free((void *)job.sink);
    *gflops = flops_per_iter * (double)job.iters * threads / seconds / 1e9;
    return FASTNN_OK;
}

int fastnn_fma_peak_f32(double *gflops) { return fma_peak(0, gflops); }

int fastnn_fma_peak_f64(double *gflops) { return fma_peak(1, gflops); }
