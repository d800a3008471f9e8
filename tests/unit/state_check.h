/* Helpers for the unit tests of state/: CHECK_ST names the state_status values, a
 * fake clock (fake_now, in ms) drives leases and grace without sleeping, new_server
 * makes a server on it, and two principals and verifiers for its clients. */
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

#define STATE_CHECK_LEASE_S 10u

/* A server on the fake clock (10 s leases, 20 s grace); dir NULL: no client records. */
static inline struct state_server *new_server(const char *dir, bool delegations)
{
    struct state_params p = {0};
    p.state_dir = dir;
    p.lease_time_s = STATE_CHECK_LEASE_S;
    p.grace_time_s = 20;
    p.delegations = delegations;
    p.clock_ms = fake_clock;
    struct state_server *ss = state_server_create(&p);
    CHECK(ss != NULL);
    return ss;
}

static const struct state_principal P1 = {"sys:1000", 8}, P2 = {"sys:2000", 8};
static const uint8_t V1[8] = {1, 1, 1, 1, 1, 1, 1, 1}, V2[8] = {2, 2, 2, 2, 2, 2, 2, 2};

#endif
