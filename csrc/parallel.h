/*
 * parallel.h -- elementwise passes split across threads (private header).
 *
 * Why it is built this way: an elementwise pass gives the same bits however
 * it is cut, so each thread simply takes one contiguous range.  Below
 * FASTNN_PARALLEL_MIN elements no OpenMP function is called at all: for
 * XOR-sized arrays even an empty parallel region would cost more than the
 * whole training step.  Reductions are never split (see dense.c, losses.c).
 */
#ifndef FASTNN_PARALLEL_H
#define FASTNN_PARALLEL_H

#include <stdint.h>

#include "fastnn.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* elements below which a pass stays on the calling thread; each extra
   thread gets at least half as many.  High on purpose: an OpenMP region
   competes with the GEMM's pool threads, which spin briefly after each
   product; measured on the MNIST-shaped training workload (float64, 2
   threads), splitting the 200k-element updates cost 30% of the epoch
   (45k vs 63k samples/s), so only passes of millions of elements split. */
#ifndef FASTNN_PARALLEL_MIN
#define FASTNN_PARALLEL_MIN ((int64_t)1 << 22)
#endif

static inline int fastnn_threads_for(int64_t work)
{
#ifdef _OPENMP
    if (work < FASTNN_PARALLEL_MIN)
        return 1;
    const int64_t most = work / (FASTNN_PARALLEL_MIN / 2);
    const int nt = fastnn_get_num_threads();
    return (int64_t)nt < most ? nt : (int)most;
#else
    (void)work;
    return 1;
#endif
}

/* Run BODY with int64_t lo, hi bound to one contiguous range of [0, n) per
   thread; `work` (elements touched) decides how many threads. */
#ifdef _OPENMP
#define FASTNN_PARALLEL_RANGES(n, work, lo, hi, BODY)                         \
    do {                                                                      \
        const int nt_ = fastnn_threads_for(work);                             \
        if (nt_ <= 1) {                                                       \
            const int64_t lo = 0, hi = (n);                                   \
            BODY;                                                             \
        } else {                                                              \
            _Pragma("omp parallel num_threads(nt_)")                          \
            {                                                                 \
                const int64_t t_ = omp_get_thread_num();                      \
                const int64_t k_ = omp_get_num_threads();                     \
                const int64_t lo = (n) / k_ * t_ + ((n) % k_ < t_ ? (n) % k_ : t_);       \
                const int64_t hi = lo + (n) / k_ + (t_ < (n) % k_ ? 1 : 0);   \
                BODY;                                                         \
            }                                                                 \
        }                                                                     \
    } while (0)
#else
#define FASTNN_PARALLEL_RANGES(n, work, lo, hi, BODY)                         \
    do {                                                                      \
        const int64_t lo = 0, hi = (n);                                       \
        (void)(work);                                                         \
        BODY;                                                                 \
    } while (0)
#endif

#endif /* FASTNN_PARALLEL_H */
