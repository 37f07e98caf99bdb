/*
 * gemm.c -- fastnn_gemm_f32 / fastnn_gemm_f64: blocked, packed GEMM driver
 * over the per-ISA micro-kernels (gemm_generic.c, gemm_avx2.c,
 * gemm_avx512.c), generated from one templated body (gemm_impl.h), with a
 * direct (unpacked, allocation-free, single-threaded) path for small
 * products.
 *
 * This file also holds what both dtypes share:
 *
 * - the per-thread packing buffer of the calling thread: grow-only, kept in
 *   a _Thread_local pointer between calls (so steady-state calls allocate
 *   nothing), never larger than the largest call on that thread needed,
 *   freed when the thread exits (pthread key destructor);
 *
 * - a small pool of persistent helper threads that share the units of work
 *   of one call with the calling thread, without any barrier:
 *     * the caller publishes the job, then computes units itself;
 *     * units are claimed with a CAS on per-thread ranges (one atomic word
 *       per range holding next|end): each thread starts in its own range
 *       (locality: consecutive units share a packed block), then takes what
 *       is left in the others' ranges;
 *     * the caller only waits, at the end, for units that a helper has
 *       actually claimed and not finished.  A helper that is descheduled
 *       (busy core) before it claims anything costs nothing: the caller
 *       simply computes every unit itself.
 *   A helper reads the job only after a successful claim; the job cannot
 *   finish (and its fields cannot change) before that claimed unit is done,
 *   so a late helper never sees a half-written or finished job.  Helpers
 *   spin briefly after each job, then sleep on a condition variable.  Their
 *   packing buffers are owned by the pool and only grown by a caller between
 *   jobs (every existing helper's buffer is grown before a job is
 *   published), so a helper never allocates.  One job at a time: a caller
 *   that finds the pool busy (another thread's GEMM, or a GEMM called from an
 *   epilogue) runs on its own thread.  Which thread computes a unit never
 *   changes its bits.
 *
 * - a training run's cancel flag (fastnn_internal_cancel, thread-local to the
 *   caller, copied into the job): each unit looks at it before each k slice
 *   and stops, so a GEMM of seconds stops within one slice of one block.
 *
 * - the elementwise passes (activations, optimizer updates) run on the same
 *   pool (fastnn_internal_parallel_ranges): one set of threads for all the
 *   compiled work, so a pass never competes with helpers still spinning
 *   after a GEMM, as a second (OpenMP) team did.
 */
#define _GNU_SOURCE 1
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fastnn.h"
#include "gemm_internal.h"
#include "internal.h"

#if defined(__unix__) || defined(__APPLE__)
#define FASTNN_GEMM_POOL 1
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <time.h>
#else
#define FASTNN_GEMM_POOL 0
#endif

/* ---- the calling thread's cancel flag (see internal.h) ------------------ */

_Thread_local const volatile sig_atomic_t *fastnn_internal_cancel;

/* ---- per-thread buffer of the calling thread ---------------------------- */

typedef struct {
    void *buf;
    size_t cap;
} gemm_tbuf;

static _Thread_local gemm_tbuf g_tbuf;
static _Thread_local int g_tbuf_busy; /* a GEMM of this thread is using it */

#if FASTNN_GEMM_POOL
static pthread_key_t g_tbuf_key;
static int g_tbuf_key_ok;
static pthread_once_t g_tbuf_once = PTHREAD_ONCE_INIT;
static void tbuf_destroy(void *p) { free(p); }
static void tbuf_key_init(void)
{
    g_tbuf_key_ok = pthread_key_create(&g_tbuf_key, tbuf_destroy) == 0;
}
#endif

static void *gemm_thread_buffer_grow(size_t bytes);

/* 64-byte aligned buffer of at least `bytes` bytes, or NULL (out of memory).
 * A GEMM called from an epilogue on the same thread cannot use the cached
 * buffer (the outer call still does): it gets a private one, which it must
 * give back with gemm_thread_buffer_done. */
static void *gemm_thread_buffer(size_t bytes, int *priv)
{
    *priv = g_tbuf_busy;
    if (*priv)
        return aligned_alloc(64, (bytes + 63) / 64 * 64);
    g_tbuf_busy = 1;
    void *p = gemm_thread_buffer_grow(bytes);
    if (p == NULL)
        g_tbuf_busy = 0;
    return p;
}

static void gemm_thread_buffer_done(void *buf, int priv)
{
    if (priv)
        free(buf);
    else
        g_tbuf_busy = 0;
}

static void *gemm_thread_buffer_grow(size_t bytes)
{
    if (bytes <= g_tbuf.cap)
        return g_tbuf.buf;
    bytes = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, bytes);
    if (p == NULL)
        return NULL;
#if FASTNN_GEMM_POOL
    pthread_once(&g_tbuf_once, tbuf_key_init);
    if (g_tbuf_key_ok && pthread_setspecific(g_tbuf_key, p) != 0) {
        free(p); /* could not register the destructor: would leak */
        return NULL;
    }
#endif
    free(g_tbuf.buf);
    g_tbuf.buf = p;
    g_tbuf.cap = bytes;
    return p;
}

/* ---- units of work and the helper pool ---------------------------------- */

/* per-thread state a unit function may keep between units of one job */
typedef struct {
    int64_t a, b;
} gemm_ustate;

typedef void (*gemm_unit_fn)(const void *ctx, int64_t u, void *buf,
                             gemm_ustate *st);

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

#if FASTNN_GEMM_POOL

#define POOL_MAX 64
#define RANGE_END(w) ((int64_t)((w) >> 32))
#define RANGE_NEXT(w) ((int64_t)((w)&0xffffffffu))

/* How long (microseconds) an idle helper spins on the job generation before
 * it sleeps: covers the gap between the GEMMs of a training step. */
/* A tail (see g_adapt) longer than this many microseconds, and longer than
 * three quarters of the job, says a helper was descheduled. */
#ifndef FASTNN_GEMM_TAIL_US
#define FASTNN_GEMM_TAIL_US 200.0
#endif

#ifndef FASTNN_GEMM_SPIN_US
#define FASTNN_GEMM_SPIN_US 200
#endif

typedef struct {
    _Alignas(64) atomic_uint_fast64_t w; /* end << 32 | next */
} pool_range;

typedef struct {
    _Alignas(64) atomic_flag busy; /* a caller owns the pool */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int sleepers;                   /* under mu */
    int nhelpers;                   /* started helpers (written by the owner) */
    atomic_int nhelpers_pub;        /* same, readable by helpers */
    atomic_int nparticipants;       /* helpers asked to join the job (hint) */
    _Alignas(64) atomic_uint_fast64_t gen; /* job generation */
    /* the job: written by the owner before the ranges are published, read by
     * helpers only after a successful claim */
    gemm_unit_fn fn;
    const void *ctx;
    uint64_t jobid;
    atomic_int nranges;             /* hint for helpers */
    _Alignas(64) atomic_llong done; /* finished units */
    pool_range r[POOL_MAX];
    struct {
        pthread_t th;
        void *buf;
        size_t cap;
    } h[POOL_MAX];
} gemm_pool;

/* Load detection (read and written only by the pool owner).  The caller
 * measures, for each threaded job, how long it waited at the end for units
 * a helper had claimed but not finished ("tail").  A long tail means a
 * helper was descheduled mid-unit (the other core is busy): the caller then
 * runs alone for a while (1 ms, doubling up to 256 ms while it keeps
 * happening), and so it does when, over a window of jobs, the tails add up
 * to more than a quarter of the time.  Bits never depend on it. */
static struct {
    double off_until;    /* microseconds (CLOCK_MONOTONIC) */
    int level;           /* backoff level */
    int njobs;           /* jobs in the current window */
    double wait, total;  /* sums over the window */
} g_adapt;

static gemm_pool g_pool = {.busy = ATOMIC_FLAG_INIT,
                           .mu = PTHREAD_MUTEX_INITIALIZER,
                           .cv = PTHREAD_COND_INITIALIZER};
static pthread_once_t g_pool_once = PTHREAD_ONCE_INIT;

/* claim one unit, starting in range `start`; -1 when none is left */
static int64_t pool_claim(int start, int nranges)
{
    for (int i = 0; i < nranges; i++) {
        const int r = (start + i) % nranges;
        atomic_uint_fast64_t *w = &g_pool.r[r].w;
        uint_fast64_t c = atomic_load_explicit(w, memory_order_acquire);
        while (RANGE_NEXT(c) < RANGE_END(c)) {
            if (atomic_compare_exchange_weak_explicit(
                    w, &c, c + 1, memory_order_acq_rel, memory_order_acquire))
                return RANGE_NEXT(c);
        }
    }
    return -1;
}

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec * 1e-3;
}

static void *pool_helper(void *arg)
{
    const int id = (int)(intptr_t)arg; /* helper id: range id + 1, 0-based */
    uint64_t seen = 0, jobseen = 0;
    gemm_ustate st = {-1, -1};
    for (;;) {
        /* wait for a new generation: spin, then sleep */
        uint64_t g = atomic_load_explicit(&g_pool.gen, memory_order_acquire);
        if (g == seen) {
            double t0 = now_us();
            for (int it = 1;; it++) {
                /* yield, not pause: a helper sharing a core with the caller
                 * (busy machine) must not slow it down while it waits */
                if ((it & 7) == 0)
                    sched_yield();
                else
                    cpu_relax();
                g = atomic_load_explicit(&g_pool.gen, memory_order_acquire);
                if (g != seen)
                    break;
                if ((it & 63) == 0 && now_us() - t0 > FASTNN_GEMM_SPIN_US)
                    break;
            }
        }
        if (g == seen) {
            pthread_mutex_lock(&g_pool.mu);
            g_pool.sleepers++;
            while ((g = atomic_load(&g_pool.gen)) == seen)
                pthread_cond_wait(&g_pool.cv, &g_pool.mu);
            g_pool.sleepers--;
            pthread_mutex_unlock(&g_pool.mu);
        }
        seen = g;
        if (id >= atomic_load_explicit(&g_pool.nparticipants,
                                       memory_order_relaxed))
            continue;
        /* a stale range count only changes where this helper looks */
        int nr = atomic_load_explicit(&g_pool.nranges, memory_order_relaxed);
        if (nr < 1 || nr > POOL_MAX)
            nr = POOL_MAX;
        for (int64_t u; (u = pool_claim(id + 1, nr)) >= 0;) {
            /* claimed: the job is live until this unit is done */
            if (g_pool.jobid != jobseen) {
                jobseen = g_pool.jobid;
                st.a = st.b = -1;
            }
            g_pool.fn(g_pool.ctx, u, g_pool.h[id].buf, &st);
            atomic_fetch_add_explicit(&g_pool.done, 1, memory_order_release);
        }
    }
    return NULL;
}

static void pool_atfork_child(void)
{
    /* the helpers do not exist in the child: start afresh */
    for (int i = 0; i < POOL_MAX; i++) {
        free(g_pool.h[i].buf);
        g_pool.h[i].buf = NULL;
        g_pool.h[i].cap = 0;
    }
    g_pool.nhelpers = 0;
    atomic_store(&g_pool.nhelpers_pub, 0);
    atomic_store(&g_pool.nparticipants, 0);
    g_pool.sleepers = 0;
    pthread_mutex_init(&g_pool.mu, NULL);
    pthread_cond_init(&g_pool.cv, NULL);
    atomic_flag_clear(&g_pool.busy);
}

static void pool_init(void) { pthread_atfork(NULL, NULL, pool_atfork_child); }

/* start helpers up to `want` (owner only); returns how many exist */
static int pool_grow(int want)
{
    if (want > POOL_MAX - 1)
        want = POOL_MAX - 1;
    if (g_pool.nhelpers >= want)
        return g_pool.nhelpers;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* helpers take no signals */
    while (g_pool.nhelpers < want) {
        const int id = g_pool.nhelpers;
        pthread_attr_t at;
        int ok = pthread_attr_init(&at) == 0;
        if (ok) {
            pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
            ok = pthread_create(&g_pool.h[id].th, &at, pool_helper,
                                (void *)(intptr_t)id) == 0;
            pthread_attr_destroy(&at);
        }
        if (!ok)
            break;
        g_pool.nhelpers++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    atomic_store(&g_pool.nhelpers_pub, g_pool.nhelpers);
    return g_pool.nhelpers;
}

/* grow every existing helper's buffer to `need` bytes (owner, between jobs) */
static int pool_buffers(size_t need)
{
    need = (need + 63) / 64 * 64;
    for (int i = 0; i < g_pool.nhelpers; i++) {
        if (g_pool.h[i].cap >= need)
            continue;
        void *p = aligned_alloc(64, need);
        if (p == NULL)
            return -1;
        free(g_pool.h[i].buf);
        g_pool.h[i].buf = p;
        g_pool.h[i].cap = need;
    }
    return 0;
}
#endif /* FASTNN_GEMM_POOL */

/* Run units 0..nunits-1 of fn(ctx, ...) on up to nt threads (the caller and
 * nt-1 helpers).  `buf` is the caller's buffer; every helper gets one of
 * `need` bytes.  Returns when every unit is done. */
static void gemm_run_units(gemm_unit_fn fn, const void *ctx, int64_t nunits,
                           int nt, void *buf, size_t need)
{
    gemm_ustate st = {-1, -1};
#if FASTNN_GEMM_POOL
    if (nt > POOL_MAX)
        nt = POOL_MAX;
    if (nt > nunits)
        nt = (int)nunits;
    if (nt > 1 && nunits < ((int64_t)1 << 31) &&
        !atomic_flag_test_and_set_explicit(&g_pool.busy,
                                           memory_order_acquire)) {
        static uint64_t jobid;
        pthread_once(&g_pool_once, pool_init);
        const double t0 = now_us();
        int nh = t0 < g_adapt.off_until ? 0 : pool_grow(nt - 1);
        if (nh > nt - 1)
            nh = nt - 1;
        if (nh > 0 && pool_buffers(need) != 0)
            nh = 0; /* out of memory for the helpers: run alone */
        if (nh > 0) {
            const int nr = nh + 1;
            g_pool.fn = fn;
            g_pool.ctx = ctx;
            g_pool.jobid = ++jobid;
            atomic_store_explicit(&g_pool.nranges, nr, memory_order_relaxed);
            atomic_store_explicit(&g_pool.done, 0, memory_order_relaxed);
            atomic_store_explicit(&g_pool.nparticipants, nh,
                                  memory_order_relaxed);
            for (int r = 0; r < POOL_MAX; r++) {
                uint64_t lo = 0, hi = 0;
                if (r < nr) {
                    lo = (uint64_t)(nunits * r / nr);
                    hi = (uint64_t)(nunits * (r + 1) / nr);
                }
                atomic_store_explicit(&g_pool.r[r].w, hi << 32 | lo,
                                      memory_order_release);
            }
            atomic_fetch_add_explicit(&g_pool.gen, 1, memory_order_seq_cst);
            pthread_mutex_lock(&g_pool.mu);
            if (g_pool.sleepers > 0)
                pthread_cond_broadcast(&g_pool.cv);
            pthread_mutex_unlock(&g_pool.mu);

            for (int64_t u; (u = pool_claim(0, nr)) >= 0;) {
                fn(ctx, u, buf, &st);
                atomic_fetch_add_explicit(&g_pool.done, 1,
                                          memory_order_relaxed);
            }
            /* wait only for units a helper has claimed */
            const double t1 = now_us();
            for (int it = 1; atomic_load_explicit(&g_pool.done,
                                                  memory_order_acquire) <
                             nunits;
                 it++) {
                cpu_relax();
                if ((it & 1023) == 0)
                    sched_yield();
            }
            const double t2 = now_us();
            const double tail = t2 - t1, total = t2 - t0;
            g_adapt.wait += tail;
            g_adapt.total += total;
            g_adapt.njobs++;
            int bad = tail > FASTNN_GEMM_TAIL_US && tail > 0.75 * total;
            if (!bad && (g_adapt.njobs >= 32 || g_adapt.total > 20000.0)) {
                bad = g_adapt.wait > 0.25 * g_adapt.total;
                if (!bad)
                    g_adapt.level = 0;
            }
            if (bad) {
                g_adapt.off_until = t2 + (double)(1000 << g_adapt.level);
                if (g_adapt.level < 8)
                    g_adapt.level++;
            }
            if (bad || g_adapt.njobs >= 32 || g_adapt.total > 20000.0) {
                g_adapt.njobs = 0;
                g_adapt.wait = g_adapt.total = 0.0;
            }
            atomic_flag_clear_explicit(&g_pool.busy, memory_order_release);
            return;
        }
        atomic_flag_clear_explicit(&g_pool.busy, memory_order_release);
    }
#else
    (void)nt;
    (void)need;
#endif
    for (int64_t u = 0; u < nunits; u++)
        fn(ctx, u, buf, &st);
}

/* ---- elementwise passes on the pool -------------------------------------- */

/* elements below which a pass stays on the calling thread (waking a helper
   costs about what a pass over this many elements does); each extra thread
   gets at least half as many */
#define PARALLEL_MIN ((int64_t)1 << 16)

typedef struct {
    fastnn_range_fn fn;
    const void *ctx;
    int64_t n, parts;
} range_job;

static void range_unit(const void *ctx, int64_t u, void *buf, gemm_ustate *st)
{
    const range_job *j = (const range_job *)ctx;
    (void)buf;
    (void)st;
    j->fn(j->ctx, j->n * u / j->parts, j->n * (u + 1) / j->parts);
}

void fastnn_internal_parallel_ranges(fastnn_range_fn fn, const void *ctx, int64_t n,
                                     int64_t work)
{
    int64_t parts = work < PARALLEL_MIN ? 1 : work / (PARALLEL_MIN / 2);
    const int nt = fastnn_get_num_threads();
    if (parts > nt)
        parts = nt;
    if (parts > n)
        parts = n;
    if (parts <= 1) {
        fn(ctx, 0, n);
        return;
    }
    const range_job job = {fn, ctx, n, parts};
    gemm_run_units(range_unit, &job, parts, (int)parts, NULL, 0);
}

#define FASTNN_TEMPLATE "gemm_impl.h"
#include "per_dtype.h"
