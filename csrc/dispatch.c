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
#define _GNU_SOURCE 1   /* sched_getaffinity, CPU_COUNT */
#include "fastnn.h"
#include "gemm_internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__linux__)
#include <sched.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
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
    if (s == NULL || *s == '\0')
        return best;
    for (int isa = 0; isa < FASTNN_N_ISA; isa++)
        if (strcmp(s, fastnn_isa_name(isa)) == 0)
            return isa > best ? best : isa; /* unsupported request: keep the best */
    return best; /* unknown request: keep the best (the wrapper refuses it at import) */
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
    if (isa < 0 || isa >= FASTNN_N_ISA)
        return FASTNN_EINVAL;
    if (isa > fastnn_cpu_isa())
        return FASTNN_EUNSUPPORTED;
    atomic_store(&fastnn_internal_isa, isa);
    return FASTNN_OK;
}

const char *fastnn_isa_name(int isa)
{
    switch (isa) {
#define ISA_NAME(ID, name) case FASTNN_ISA_##ID: return #name;
    FASTNN_ISAS(ISA_NAME)
#undef ISA_NAME
    default:
        return "unknown"; /* the documented name of no ISA, not a row */
    }
}

int fastnn_set_num_threads(int n)
{
    if (n < 1)
        return FASTNN_EINVAL;
    atomic_store(&g_threads, n);
    return FASTNN_OK;
}

/* the CPUs this process may run on (its affinity mask, as taskset or a
   container sets it), at least 1: the default thread count */
static int online_cpus(void)
{
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
#endif
#if defined(_SC_NPROCESSORS_ONLN)
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n > 0)
        return n < 1024 ? (int)n : 1024;
#endif
    return 1;
}

int fastnn_get_num_threads(void)
{
    int n = atomic_load_explicit(&g_threads, memory_order_relaxed);
    if (n < 1) {
        n = online_cpus();
        int expected = 0;
        if (!atomic_compare_exchange_strong(&g_threads, &expected, n))
            n = expected;
    }
    return n;
}
