/* Helpers for the unit tests of state/: CHECK_ST names the state_status values, and a
 * fake clock (fake_now, in ms) drives leases and grace without sleeping. */
#ifndef PEERNFS_TEST_STATE_CHECK_H
#define PEERNFS_TEST_STATE_CHECK_H

#include <stdint.h>

#include "check.h"
#include "state/state.h"

#define CHECK_ST(expr, want)                                                            \
    do {                                                                                \
        enum state_status st_ = (expr);                                                 \
        if (st_ != (want)) {                                                            \
            fprintf(stderr, "%s:%d: %s = %s, want %s\n", __FILE__, __LINE__, #expr,      \
                    state_status_name(st_), state_status_name(want));                   \
            check_failures++;                                                           \
        }                                                                               \
    } while (0)

static uint64_t fake_now = 1000000;
static inline uint64_t fake_clock(void *ctx)
{
    (void)ctx;
    return fake_now;
}

#endif
