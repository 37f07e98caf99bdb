/*
 * dispatch.c -- CPU detection, the instruction set in use and the thread
 * count used by the compiled kernels.
 *
 * The ISA is chosen once, lazily, on the first call that needs it: the best
 * one the CPU (and OS) supports according to __builtin_cpu_supports, unless
 * the environment variable FASTNN_ISA (generic|avx2|avx512) asks for another
 * one the CPU supports.  fastnn_set_isa() overrides it later.  The state is
 * kept in C11 atomics so concurrent first calls are race free.
 */
#include "fastnn.h"
#include "gemm_internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* read directly by the GEMM driver (gemm_internal.h) */
atomic_int fastnn_internal_isa = ATOMIC_VAR_INIT(-1);
static atomic_int g_threads = ATOMIC_VAR_INIT(0);

int fastnn_cpu_isa(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    /* libgcc's cpu model also checks that the OS saves the ymm/zmm state */
    if (__builtin_cpu_supports("avx512f"))
        return FASTNN_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return FASTNN_ISA_AVX2;
#endif
    return FASTNN_ISA_GENERIC;
}

static int isa_from_env(int best)
{
    const char *s = getenv("FASTNN_ISA");
    int want = -1;
    if (s == NULL || *s == '\0')
        return best;
    if (strcmp(s, "generic") == 0)
        want = FASTNN_ISA_GENERIC;
    else if (strcmp(s, "avx2") == 0)
        want = FASTNN_ISA_AVX2;
    else if (strcmp(s, "avx512") == 0)
        want = FASTNN_ISA_AVX512;
    if (want < 0 || want > best)
        return best; /* unknown or unsupported request: keep the best */
    return want;
}

int fastnn_get_isa(void)
{
    int isa = atomic_load_explicit(&fastnn_internal_isa, memory_order_relaxed);
    if (isa < 0) {
        int expected = -1;
        isa = isa_from_env(fastnn_cpu_isa());
        if (!atomic_compare_exchange_strong(&fastnn_internal_isa, &expected, isa))
            isa = expected; /* someone set it first (set_isa or another init) */
    }
    return isa;
}

int fastnn_set_isa(int isa)
{
    if (isa < FASTNN_ISA_GENERIC || isa > FASTNN_ISA_AVX512)
        return FASTNN_EINVAL;
    if (isa > fastnn_cpu_isa())
        return FASTNN_EUNSUPPORTED;
    atomic_store(&fastnn_internal_isa, isa);
    return FASTNN_OK;
}

const char *fastnn_isa_name(int isa)
{
    switch (isa) {
    case FASTNN_ISA_GENERIC:
        return "generic";
    case FASTNN_ISA_AVX2:
        return "avx2";
    case FASTNN_ISA_AVX512:
        return "avx512";
    default:
        return "unknown";
    }
}

int fastnn_set_num_threads(int n)
{
    if (n < 1)
        return FASTNN_EINVAL;
    atomic_store(&g_threads, n);
    return FASTNN_OK;
}

int fastnn_get_num_threads(void)
{
    int n = atomic_load_explicit(&g_threads, memory_order_relaxed);
    if (n < 1) {
#ifdef _OPENMP
        n = omp_get_num_procs();
        if (n < 1)
            n = 1;
#else
        n = 1;
#endif
        int expected = 0;
        if (!atomic_compare_exchange_strong(&g_threads, &expected, n))
            n = expected;
    }
    return n;
}

int fastnn_has_openmp(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}
