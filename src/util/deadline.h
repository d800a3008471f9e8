/* Deadlines for pthread_cond_timedwait on a CLOCK_MONOTONIC condition variable. */
#ifndef PEERNFS_UTIL_DEADLINE_H
#define PEERNFS_UTIL_DEADLINE_H

#include <time.h>

/* Now + ms on CLOCK_MONOTONIC (the cv must be set up with pthread_condattr_setclock). */
static inline struct timespec deadline_after_ms(unsigned long ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += (time_t)(ms / 1000);
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

#endif
