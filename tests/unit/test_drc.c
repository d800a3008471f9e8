/*
 * Unit tests for rpc/drc.c, the duplicate request cache, alone: IN PROGRESS then DONE,
 * hits copy the reply, every key field tells calls apart, expiry, LRU eviction by entry
 * count and by bytes, oversized replies, aborts, stale tickets, and threads hammering one
 * table.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "rpc/drc.h"

static uint8_t out[1 << 16];

static struct sockaddr_in sin4(const char *ip, uint16_t port)
{
    struct sockaddr_in s = { .sin_family = AF_INET, .sin_port = htons(port) };
    inet_pton(AF_INET, ip, &s.sin_addr);
    return s;
}

/* A key for call xid from 10.0.0.1:port with the given argument bytes. */
static struct drc_key key_of(uint32_t xid, uint16_t port, uint32_t proc, const char *args)
{
    struct sockaddr_in s = sin4("10.0.0.1", port);
    struct drc_key k;
    drc_key_init(&k, (const struct sockaddr *)&s, sizeof(s), xid, 100003, 3, proc, (const uint8_t *)args,
                 strlen(args));
    return k;
}

/* begin + finish with reply `r`; returns the verdict of the begin */
static enum drc_verdict run(struct drc *d, const struct drc_key *k, int64_t now, const char *r)
{
    size_t n;
    uint64_t t;
    enum drc_verdict v = drc_begin(d, k, now, out, sizeof(out), &n, &t);
    if (v == DRC_MISS)
        drc_finish(d, k, t, r, strlen(r), now);
    return v;
}

static enum drc_verdict lookup(struct drc *d, const struct drc_key *k, int64_t now, size_t *n)
{
    uint64_t t;
    enum drc_verdict v = drc_begin(d, k, now, out, sizeof(out), n, &t);
    if (v == DRC_MISS)
        drc_abort(d, k, t); /* a probe: leave nothing behind */
    return v;
}

static void test_in_progress_then_done(void)
{
    struct drc *d = drc_new(NULL);
    struct drc_key k = key_of(1, 700, 9, "mkdir a");
    size_t n;
    uint64_t t, t2;
    CHECK_EQ(drc_begin(d, &k, 0, out, sizeof(out), &n, &t), DRC_MISS);
    CHECK(t != 0);
    CHECK_EQ(drc_begin(d, &k, 1, out, sizeof(out), &n, &t2), DRC_IN_PROGRESS);
    CHECK_EQ(t2, 0);
    drc_finish(d, &k, t, "reply-1", 7, 2);
    memset(out, 0, 16);
    CHECK_EQ(drc_begin(d, &k, 3, out, sizeof(out), &n, &t2), DRC_HIT);
    CHECK_EQ(n, 7);
    CHECK(memcmp(out, "reply-1", 7) == 0);
    CHECK_EQ(t2, 0);
    /* a second finish with the old ticket changes nothing */
    drc_finish(d, &k, t, "other", 5, 4);
    CHECK_EQ(drc_begin(d, &k, 5, out, sizeof(out), &n, &t2), DRC_HIT);
    CHECK(n == 7 && memcmp(out, "reply-1", 7) == 0);
    struct drc_stats st;
    drc_get_stats(d, &st);
    CHECK_EQ(st.hits, 2);
    CHECK_EQ(st.in_progress_drops, 1);
    CHECK_EQ(st.inserts, 1);
    CHECK_EQ(st.entries, 1);
    CHECK(st.bytes >= 7);
    drc_free(d);
}

static void test_key_fields(void)
{
    struct drc *d = drc_new(NULL);
    struct drc_key k = key_of(7, 700, 9, "mkdir a");
    CHECK_EQ(run(d, &k, 0, "r"), DRC_MISS);
    size_t n;
    CHECK_EQ(lookup(d, &k, 1, &n), DRC_HIT);
    struct drc_key same = key_of(7, 700, 9, "mkdir a");
    CHECK_EQ(lookup(d, &same, 1, &n), DRC_HIT);
    struct drc_key other_xid = key_of(8, 700, 9, "mkdir a");
    struct drc_key other_port = key_of(7, 701, 9, "mkdir a");
    struct drc_key other_proc = key_of(7, 700, 10, "mkdir a");
    struct drc_key other_sum = key_of(7, 700, 9, "mkdir b");   /* same length */
    struct drc_key other_len = key_of(7, 700, 9, "mkdir aa");
    CHECK_EQ(lookup(d, &other_xid, 1, &n), DRC_MISS);
    CHECK_EQ(lookup(d, &other_port, 1, &n), DRC_MISS);
    CHECK_EQ(lookup(d, &other_proc, 1, &n), DRC_MISS);
    CHECK_EQ(lookup(d, &other_sum, 1, &n), DRC_MISS);
    CHECK_EQ(lookup(d, &other_len, 1, &n), DRC_MISS);

    /* another address, another family, another version, another program */
    struct sockaddr_in s2 = sin4("10.0.0.2", 700);
    struct drc_key k2;
    drc_key_init(&k2, (const struct sockaddr *)&s2, sizeof(s2), 7, 100003, 3, 9, (const uint8_t *)"mkdir a", 7);
    CHECK_EQ(lookup(d, &k2, 1, &n), DRC_MISS);
    struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_port = htons(700) };
    drc_key_init(&k2, (const struct sockaddr *)&s6, sizeof(s6), 7, 100003, 3, 9, (const uint8_t *)"mkdir a", 7);
    CHECK_EQ(lookup(d, &k2, 1, &n), DRC_MISS);
    struct sockaddr_in s1 = sin4("10.0.0.1", 700);
    drc_key_init(&k2, (const struct sockaddr *)&s1, sizeof(s1), 7, 100003, 4, 9, (const uint8_t *)"mkdir a", 7);
    CHECK_EQ(lookup(d, &k2, 1, &n), DRC_MISS);
    drc_key_init(&k2, (const struct sockaddr *)&s1, sizeof(s1), 7, 100005, 3, 9, (const uint8_t *)"mkdir a", 7);
    CHECK_EQ(lookup(d, &k2, 1, &n), DRC_MISS);
    drc_key_init(&k2, (const struct sockaddr *)&s1, sizeof(s1), 7, 100003, 3, 9, (const uint8_t *)"mkdir a", 7);
    CHECK_EQ(lookup(d, &k2, 1, &n), DRC_HIT);

    /* the checksum covers the first DRC_SUM_BYTES only: a difference after them (same
     * length) is the same call, which is what a retransmission of a big WRITE costs */
    static uint8_t a[1000], b[1000];
    memset(a, 'x', sizeof(a));
    memset(b, 'x', sizeof(b));
    b[DRC_SUM_BYTES - 1] = 'y';
    struct drc_key ka, kb;
    drc_key_init(&ka, (const struct sockaddr *)&s1, sizeof(s1), 9, 100003, 3, 7, a, sizeof(a));
    drc_key_init(&kb, (const struct sockaddr *)&s1, sizeof(s1), 9, 100003, 3, 7, b, sizeof(b));
    CHECK(memcmp(&ka, &kb, sizeof(ka)) != 0);
    b[DRC_SUM_BYTES - 1] = 'x';
    b[DRC_SUM_BYTES] = 'y';
    drc_key_init(&kb, (const struct sockaddr *)&s1, sizeof(s1), 9, 100003, 3, 7, b, sizeof(b));
    CHECK(memcmp(&ka, &kb, sizeof(ka)) == 0);
    drc_free(d);
}

static void test_expiry(void)
{
    struct drc_config cfg = { .ttl_ms = 1000 };
    struct drc *d = drc_new(&cfg);
    struct drc_key k1 = key_of(1, 700, 9, "a"), k2 = key_of(2, 700, 9, "b");
    size_t n;
    run(d, &k1, 0, "one");
    run(d, &k2, 500, "two");
    CHECK_EQ(lookup(d, &k1, 999, &n), DRC_HIT); /* moves k1 to the warm end, age kept */
    CHECK_EQ(lookup(d, &k1, 1000, &n), DRC_MISS);
    CHECK_EQ(lookup(d, &k2, 1499, &n), DRC_HIT);
    CHECK_EQ(lookup(d, &k2, 1500, &n), DRC_MISS);
    struct drc_stats st;
    drc_get_stats(d, &st);
    CHECK_EQ(st.entries, 0);
    CHECK_EQ(st.bytes, 0);
    CHECK_EQ(st.evictions, 2);
    /* an IN PROGRESS entry does not expire: the call may run long */
    uint64_t t;
    CHECK_EQ(drc_begin(d, &k1, 2000, out, sizeof(out), &n, &t), DRC_MISS);
    CHECK_EQ(drc_begin(d, &k1, 900000, out, sizeof(out), &n, &t), DRC_IN_PROGRESS);
    drc_free(d); /* frees the IN PROGRESS entry too (ASan checks) */
}

static void test_lru_by_count(void)
{
    struct drc_config cfg = { .max_entries = 4, .nshards = 1 };
    struct drc *d = drc_new(&cfg);
    struct drc_key k[6];
    size_t n;
    for (uint32_t i = 0; i < 4; i++) {
        k[i] = key_of(100 + i, 700, 9, "x");
        run(d, &k[i], i, "r");
    }
    CHECK_EQ(lookup(d, &k[0], 10, &n), DRC_HIT); /* k0 is now the most recent */
    k[4] = key_of(104, 700, 9, "x");
    run(d, &k[4], 11, "r");                      /* evicts k1, the least recent */
    CHECK_EQ(lookup(d, &k[0], 12, &n), DRC_HIT);
    CHECK_EQ(lookup(d, &k[2], 12, &n), DRC_HIT);
    CHECK_EQ(lookup(d, &k[3], 12, &n), DRC_HIT);
    CHECK_EQ(lookup(d, &k[4], 12, &n), DRC_HIT);
    /* last: a miss takes an entry (IN PROGRESS) and so evicts the least recent, k0 */
    CHECK_EQ(lookup(d, &k[1], 12, &n), DRC_MISS);
    CHECK_EQ(lookup(d, &k[2], 12, &n), DRC_HIT);

    /* IN PROGRESS entries are never evicted: with all 4 in progress, a 5th is untracked */
    struct drc *d2 = drc_new(&cfg);
    uint64_t t[6];
    for (uint32_t i = 0; i < 4; i++)
        CHECK_EQ(drc_begin(d2, &k[i], 0, out, sizeof(out), &n, &t[i]), DRC_MISS);
    k[5] = key_of(105, 700, 9, "x");
    CHECK_EQ(drc_begin(d2, &k[5], 0, out, sizeof(out), &n, &t[5]), DRC_MISS);
    CHECK_EQ(t[5], 0);
    drc_finish(d2, &k[5], t[5], "r", 1, 0); /* ignored */
    for (uint32_t i = 0; i < 4; i++)
        CHECK_EQ(drc_begin(d2, &k[i], 0, out, sizeof(out), &n, &t[5]), DRC_IN_PROGRESS);
    for (uint32_t i = 0; i < 4; i++)
        drc_finish(d2, &k[i], t[i], "r", 1, 1);
    struct drc_stats st;
    drc_get_stats(d2, &st);
    CHECK_EQ(st.entries, 4);
    CHECK_EQ(st.inserts, 4);
    drc_free(d2);
    drc_free(d);
}

static void test_lru_by_bytes_and_size_caps(void)
{
    static char big[3000];
    memset(big, 'b', sizeof(big) - 1);
    struct drc_config cfg = { .max_bytes = 8000, .max_reply = 4000, .nshards = 1 };
    struct drc *d = drc_new(&cfg);
    struct drc_key k[4];
    size_t n;
    for (uint32_t i = 0; i < 3; i++) {
        k[i] = key_of(200 + i, 700, 9, "y");
        run(d, &k[i], 0, big); /* ~3 KiB each: the third pushes out the first */
    }
    CHECK_EQ(lookup(d, &k[0], 1, &n), DRC_MISS);
    CHECK_EQ(lookup(d, &k[1], 1, &n), DRC_HIT);
    CHECK_EQ(n, sizeof(big) - 1);
    CHECK_EQ(lookup(d, &k[2], 1, &n), DRC_HIT);
    struct drc_stats st;
    drc_get_stats(d, &st);
    CHECK(st.bytes <= 8000);
    CHECK_EQ(st.entries, 2);
    CHECK_EQ(st.evictions, 1);

    /* a reply over max_reply is not kept, and its entry goes: the retransmission runs */
    static char huge[5000];
    memset(huge, 'h', sizeof(huge) - 1);
    k[3] = key_of(300, 700, 9, "z");
    uint64_t t;
    CHECK_EQ(drc_begin(d, &k[3], 2, out, sizeof(out), &n, &t), DRC_MISS);
    drc_finish(d, &k[3], t, huge, strlen(huge), 2);
    CHECK_EQ(lookup(d, &k[3], 3, &n), DRC_MISS);
    /* an out buffer too small for the reply: treated as a miss, the new run replaces it */
    CHECK_EQ(drc_begin(d, &k[1], 4, out, 10, &n, &t), DRC_MISS);
    CHECK(t != 0);
    drc_finish(d, &k[1], t, "small", 5, 4);
    CHECK_EQ(lookup(d, &k[1], 5, &n), DRC_HIT);
    CHECK(n == 5 && memcmp(out, "small", 5) == 0);
    drc_free(d);
}

static void test_abort(void)
{
    struct drc *d = drc_new(NULL);
    struct drc_key k = key_of(400, 700, 9, "q");
    size_t n;
    uint64_t t, t2;
    CHECK_EQ(drc_begin(d, &k, 0, out, sizeof(out), &n, &t), DRC_MISS);
    drc_abort(d, &k, t);
    CHECK_EQ(drc_begin(d, &k, 0, out, sizeof(out), &n, &t2), DRC_MISS);
    CHECK(t2 != 0 && t2 != t);
    drc_abort(d, &k, t); /* the stale ticket does not remove the new run's entry */
    CHECK_EQ(drc_begin(d, &k, 0, out, sizeof(out), &n, &t), DRC_IN_PROGRESS);
    drc_finish(d, &k, t2, "", 0, 1); /* an empty reply is a reply */
    CHECK_EQ(lookup(d, &k, 2, &n), DRC_HIT);
    CHECK_EQ(n, 0);
    drc_abort(d, &k, 0);
    struct drc_stats st;
    drc_get_stats(d, &st);
    CHECK_EQ(st.entries, 1);
    drc_free(d);
}

/* Threads running the same few keys: every begin is a miss, a hit or in progress, the
 * counts add up, and ASan/UBSan see no race on freed entries. */
#define THREADS 4
#define ROUNDS 20000

static struct drc *shared;
static _Atomic unsigned long long misses, hits, busy;

static void *hammer(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    uint8_t buf[64];
    for (int i = 0; i < ROUNDS; i++) {
        seed = seed * 1103515245u + 12345u;
        struct drc_key k = key_of((seed >> 8) % 64, 700, 9, "h");
        size_t n;
        uint64_t t;
        switch (drc_begin(shared, &k, i / 100, buf, sizeof(buf), &n, &t)) {
        case DRC_MISS:
            misses++;
            if ((seed >> 20) % 8 == 0)
                drc_abort(shared, &k, t);
            else
                drc_finish(shared, &k, t, "0123456789", 10, i / 100);
            break;
        case DRC_HIT:
            hits++;
            if (n != 10 || memcmp(buf, "0123456789", 10) != 0)
                busy += 1000000000ull; /* flags a bad copy */
            break;
        case DRC_IN_PROGRESS:
            busy++;
            break;
        }
    }
    return NULL;
}

static void test_threads(void)
{
    struct drc_config cfg = { .max_entries = 32, .ttl_ms = 50, .nshards = 4 };
    shared = drc_new(&cfg);
    pthread_t th[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, hammer, (void *)(i + 1));
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ(misses + hits + busy, (unsigned long long)THREADS * ROUNDS);
    CHECK(busy < 1000000000ull);
    struct drc_stats st;
    drc_get_stats(shared, &st);
    CHECK_EQ(st.hits, hits);
    CHECK_EQ(st.in_progress_drops, busy);
    CHECK(st.entries <= 32);
    drc_free(shared);
}

int main(void)
{
    test_in_progress_then_done();
    test_key_fields();
    test_expiry();
    test_lru_by_count();
    test_lru_by_bytes_and_size_caps();
    test_abort();
    test_threads();
    return check_report("test_drc");
}
