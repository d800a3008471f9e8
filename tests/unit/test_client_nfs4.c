/*
 * client/: the NFSv4.1 fore channel slot table (nfs4_slots.c) and the back channel
 * dispatcher (nfs4_cb.c), without a server:
 *  - slots: lowest free slot first, highest_slotid, seqid advances only when the server
 *    processed SEQUENCE, lost slots are retired, the server's target shrinks / regrows
 *    the usable range, waiters block and time out, close wakes them, all retired = -EIO;
 *    several threads sharing few slots never get the same one at once;
 *  - callbacks: CB_SEQUENCE first (else OP_NOT_IN_SESSION / SEQUENCE_POS), bad session /
 *    slot / misordered / retransmitted seqids, minor version mismatch, registered
 *    handlers run with their ctx, unregistered ops NOTSUPP, unknown op numbers
 *    OP_ILLEGAL, processing stops at the first error;
 *  - lock sets (nfs4_lockset.c, what a recovery reclaims): a new lock replaces the
 *    owner's over its range, an unlock splits what it cuts through, ranges to the end
 *    of the file, and random sequences checked against a byte map.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "client/nfs4_cb.h"
#include "client/nfs4_lockset.h"
#include "client/nfs4_slots.h"

static void test_slots_basic(void)
{
    struct nfs4_slot_table t;
    nfs4_slots_init(&t, 3);
    uint32_t s, seq, hi;
    CHECK_EQ(nfs4_slot_get(&t, 0, &s, &seq, &hi), 0);
    CHECK_EQ(s, 0); CHECK_EQ(seq, 1); CHECK_EQ(hi, 0);
    uint32_t s1, seq1, hi1;
    CHECK_EQ(nfs4_slot_get(&t, 0, &s1, &seq1, &hi1), 0);
    CHECK_EQ(s1, 1); CHECK_EQ(seq1, 1); CHECK_EQ(hi1, 1);
    nfs4_slot_put(&t, 0, NFS4_SLOT_DONE, UINT32_MAX);
    CHECK_EQ(nfs4_slot_get(&t, 0, &s, &seq, &hi), 0);
    CHECK_EQ(s, 0); CHECK_EQ(seq, 2); CHECK_EQ(hi, 1); /* lowest free; seqid advanced */
    nfs4_slot_put(&t, 0, NFS4_SLOT_UNUSED, UINT32_MAX);
    CHECK_EQ(nfs4_slot_get(&t, 0, &s, &seq, &hi), 0);
    CHECK_EQ(s, 0); CHECK_EQ(seq, 2); /* refused SEQUENCE: same seqid again */
    CHECK_EQ(nfs4_slot_get(&t, 0, &s, &seq, &hi), 0);
    CHECK_EQ(s, 2); CHECK_EQ(hi, 2);
    /* full: a bounded wait times out */
    CHECK_EQ(nfs4_slot_get(&t, 50, &s, &seq, &hi), -ETIMEDOUT);
    CHECK_EQ(nfs4_slots_busy(&t), 3);
    /* slot 1 lost: retired, never handed out again */
    nfs4_slot_put(&t, 1, NFS4_SLOT_LOST, UINT32_MAX);
    CHECK_EQ(nfs4_slot_get(&t, 0, &s, &seq, &hi), -ETIMEDOUT);
    /* the server lowers its target to slot 0 only */
    nfs4_slot_put(&t, 2, NFS4_SLOT_DONE, 0);
    CHECK_EQ(nfs4_slot_get(&t, 0, &s, &seq, &hi), -ETIMEDOUT); /* 2 free but above target */
    nfs4_slot_put(&t, 0, NFS4_SLOT_DONE, 2); /* and raises it again */
    CHECK_EQ(nfs4_slot_get(&t, 0, &s, &seq, &hi), 0);
    CHECK_EQ(s, 0); CHECK_EQ(seq, 3);
    CHECK_EQ(nfs4_slot_get(&t, 0, &s1, &seq1, &hi1), 0);
    CHECK_EQ(s1, 2); CHECK_EQ(seq1, 2);
    nfs4_slot_put(&t, 0, NFS4_SLOT_LOST, UINT32_MAX);
    nfs4_slot_put(&t, 2, NFS4_SLOT_LOST, UINT32_MAX);
    CHECK_EQ(nfs4_slot_get(&t, 0, &s, &seq, &hi), -EIO); /* every slot retired */
    /* putting a slot that is not busy changes nothing */
    nfs4_slot_put(&t, 1, NFS4_SLOT_DONE, UINT32_MAX);
    nfs4_slot_put(&t, 99, NFS4_SLOT_DONE, UINT32_MAX);
    nfs4_slots_destroy(&t);
}

struct waiter_arg {
    struct nfs4_slot_table *t;
    int st;
};

static void *waiter(void *p)
{
    struct waiter_arg *w = p;
    uint32_t s, seq, hi;
    w->st = nfs4_slot_get(w->t, -1, &s, &seq, &hi);
    return NULL;
}

static void test_slots_close(void)
{
    struct nfs4_slot_table t;
    nfs4_slots_init(&t, 1);
    uint32_t s, seq, hi;
    CHECK_EQ(nfs4_slot_get(&t, 0, &s, &seq, &hi), 0);
    struct waiter_arg w = { &t, 1 };
    pthread_t th;
    pthread_create(&th, NULL, waiter, &w);
    struct timespec d = { 0, 50 * 1000 * 1000 };
    nanosleep(&d, NULL);
    nfs4_slots_close(&t);
    pthread_join(th, NULL);
    CHECK_EQ(w.st, -ECANCELED);
    nfs4_slots_destroy(&t);
}

#define THREADS 6
#define ROUNDS 2000
static atomic_int in_use[4];
static atomic_int overlap;

static void *hammer(void *p)
{
    struct nfs4_slot_table *t = p;
    for (int i = 0; i < ROUNDS; i++) {
        uint32_t s, seq, hi;
        if (nfs4_slot_get(t, -1, &s, &seq, &hi))
            break;
        if (atomic_fetch_add(&in_use[s], 1) != 0)
            atomic_fetch_add(&overlap, 1);
        atomic_fetch_sub(&in_use[s], 1);
        nfs4_slot_put(t, s, NFS4_SLOT_DONE, UINT32_MAX);
    }
    return NULL;
}

static void test_slots_threads(void)
{
    struct nfs4_slot_table t;
    nfs4_slots_init(&t, 4);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, hammer, &t);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ(atomic_load(&overlap), 0);
    uint64_t total = 0;
    for (int i = 0; i < 4; i++)
        total += t.seqid[i] - 1;
    CHECK_EQ(total, THREADS * ROUNDS); /* every request advanced exactly one seqid */
    nfs4_slots_destroy(&t);
}

/* ---- the callback dispatcher ---- */

static int recalls;
static void *recall_ctx;

static nfsstat4 on_recall(void *ctx, const nfs_cb_argop4 *arg, nfs_cb_resop4 *res)
{
    (void)res;
    recall_ctx = ctx;
    recalls++;
    return arg->opcbrecall.truncate ? NFS4ERR_INVAL : NFS4_OK;
}

static const sessionid4 sid = "0123456789abcde";

static nfs_cb_argop4 cb_seq(uint32_t slot, uint32_t seq)
{
    nfs_cb_argop4 a;
    memset(&a, 0, sizeof(a));
    a.argop = OP_CB_SEQUENCE;
    memcpy(a.opcbsequence.csa_sessionid, sid, sizeof(sessionid4));
    a.opcbsequence.csa_slotid = slot;
    a.opcbsequence.csa_sequenceid = seq;
    return a;
}

static nfs_cb_argop4 cb_op(uint32_t op)
{
    nfs_cb_argop4 a;
    memset(&a, 0, sizeof(a));
    a.argop = op;
    return a;
}

static CB_COMPOUND4res run(struct nfs4_cb_service *s, nfs_cb_argop4 *ops, uint32_t n,
                           uint32_t minor, nfs_cb_resop4 *resv)
{
    CB_COMPOUND4args a;
    memset(&a, 0, sizeof(a));
    a.minorversion = minor;
    a.argarray.len = n;
    a.argarray.val = ops;
    CB_COMPOUND4res r;
    memset(&r, 0, sizeof(r));
    r.resarray.val = resv;
    nfs4_cb_dispatch(s, &a, &r);
    return r;
}

static void test_cb_dispatch(void)
{
    struct nfs4_cb_service s;
    nfs4_cb_init(&s);
    nfs_cb_resop4 res[8];
    nfs_cb_argop4 ops[8];
    int ctx_token;

    /* before the session exists: BADSESSION */
    ops[0] = cb_seq(0, 1);
    CB_COMPOUND4res r = run(&s, ops, 1, 1, res);
    CHECK_EQ(r.status, NFS4ERR_BADSESSION);
    CHECK_EQ(r.resarray.len, 1);

    nfs4_cb_set_session(&s, sid, 2, 1);
    CHECK_EQ(nfs4_cb_register(&s, OP_CB_RECALL, on_recall, &ctx_token), 0);
    CHECK_EQ(nfs4_cb_register(&s, OP_CB_SEQUENCE, on_recall, NULL), -EINVAL);
    CHECK_EQ(nfs4_cb_register(&s, 99, on_recall, NULL), -EINVAL);

    /* CB_SEQUENCE + CB_RECALL: handled, results in order */
    ops[0] = cb_seq(1, 1);
    ops[1] = cb_op(OP_CB_RECALL);
    r = run(&s, ops, 2, 1, res);
    CHECK_EQ(r.status, NFS4_OK);
    CHECK_EQ(r.resarray.len, 2);
    CHECK_EQ(res[0].resop, OP_CB_SEQUENCE);
    CHECK_EQ(res[0].opcbsequence.csr_resok4.csr_slotid, 1);
    CHECK_EQ(res[0].opcbsequence.csr_resok4.csr_sequenceid, 1);
    CHECK_EQ(res[0].opcbsequence.csr_resok4.csr_highest_slotid, 1);
    CHECK_EQ(res[1].resop, OP_CB_RECALL);
    CHECK_EQ(res[1].opcbrecall.status, NFS4_OK);
    CHECK_EQ(recalls, 1);
    CHECK(recall_ctx == &ctx_token);

    /* the same seqid again: a retransmission we did not cache */
    r = run(&s, ops, 2, 1, res);
    CHECK_EQ(r.status, NFS4ERR_RETRY_UNCACHED_REP);
    CHECK_EQ(r.resarray.len, 1);
    CHECK_EQ(recalls, 1);
    /* skipping ahead: misordered; bad slot; wrong session */
    ops[0] = cb_seq(1, 3);
    CHECK_EQ(run(&s, ops, 2, 1, res).status, NFS4ERR_SEQ_MISORDERED);
    ops[0] = cb_seq(2, 1);
    CHECK_EQ(run(&s, ops, 2, 1, res).status, NFS4ERR_BADSLOT);
    ops[0] = cb_seq(0, 1);
    ops[0].opcbsequence.csa_sessionid[0] ^= 1;
    CHECK_EQ(run(&s, ops, 2, 1, res).status, NFS4ERR_BADSESSION);
    /* minor version 0 or another minor than the session's */
    ops[0] = cb_seq(0, 1);
    r = run(&s, ops, 2, 0, res);
    CHECK_EQ(r.status, NFS4ERR_MINOR_VERS_MISMATCH);
    CHECK_EQ(r.resarray.len, 0);
    CHECK_EQ(run(&s, ops, 2, 2, res).status, NFS4ERR_MINOR_VERS_MISMATCH);

    /* not first: OP_NOT_IN_SESSION; CB_SEQUENCE twice: SEQUENCE_POS */
    ops[0] = cb_op(OP_CB_RECALL);
    CHECK_EQ(run(&s, ops, 1, 1, res).status, NFS4ERR_OP_NOT_IN_SESSION);
    ops[0] = cb_seq(0, 1);
    ops[1] = cb_seq(0, 2);
    r = run(&s, ops, 2, 1, res);
    CHECK_EQ(r.status, NFS4ERR_SEQUENCE_POS);
    CHECK_EQ(r.resarray.len, 2);

    /* unregistered op: NOTSUPP and the rest is not run; unknown op: OP_ILLEGAL */
    ops[0] = cb_seq(0, 2);
    ops[1] = cb_op(OP_CB_OFFLOAD);
    ops[2] = cb_op(OP_CB_RECALL);
    r = run(&s, ops, 3, 1, res);
    CHECK_EQ(r.status, NFS4ERR_NOTSUPP);
    CHECK_EQ(r.resarray.len, 2);
    CHECK_EQ(res[1].resop, OP_CB_OFFLOAD);
    CHECK_EQ(recalls, 1);
    ops[0] = cb_seq(0, 3);
    ops[1] = cb_op(77);
    r = run(&s, ops, 2, 1, res);
    CHECK_EQ(r.status, NFS4ERR_OP_ILLEGAL);
    CHECK_EQ(res[1].resop, OP_CB_ILLEGAL);

    /* a handler's error stops the compound */
    ops[0] = cb_seq(0, 4);
    ops[1] = cb_op(OP_CB_RECALL);
    ops[1].opcbrecall.truncate = true;
    ops[2] = cb_op(OP_CB_RECALL);
    r = run(&s, ops, 3, 1, res);
    CHECK_EQ(r.status, NFS4ERR_INVAL);
    CHECK_EQ(r.resarray.len, 2);
    CHECK_EQ(recalls, 2);
    /* unregistering: NOTSUPP */
    CHECK_EQ(nfs4_cb_register(&s, OP_CB_RECALL, NULL, NULL), 0);
    ops[0] = cb_seq(0, 5);
    CHECK_EQ(run(&s, ops, 2, 1, res).status, NFS4ERR_NOTSUPP);
    /* an empty CB_COMPOUND is fine */
    CHECK_EQ(run(&s, ops, 0, 1, res).status, NFS4_OK);
    nfs4_cb_destroy(&s);
}

/* ---- lock sets ---- */

#define MAP_LEN 128 /* byte map of the model; "to the end" covers all of it */

/* 0 none, 1 read, 2 write per byte, as the set says; false if ranges overlap. */
static bool lockset_map(const struct nfs4_lockset *s, uint8_t map[MAP_LEN])
{
    memset(map, 0, MAP_LEN);
    bool disjoint = true;
    for (uint32_t i = 0; i < s->n; i++) {
        const struct nfs4_lock_range *r = &s->r[i];
        if (r->off >= r->end)
            disjoint = false;
        for (uint64_t b = r->off; b < MAP_LEN && b < r->end; b++) {
            if (map[b])
                disjoint = false;
            map[b] = r->write ? 2 : 1;
        }
    }
    return disjoint;
}

static void model_set(uint8_t map[MAP_LEN], uint64_t off, uint64_t len, uint8_t v)
{
    uint64_t end = len == 0 ? MAP_LEN : off + len;
    for (uint64_t b = off; b < end && b < MAP_LEN; b++)
        map[b] = v;
}

static void test_lockset_cases(void)
{
    struct nfs4_lockset s = { 0 };
    uint8_t map[MAP_LEN];
    CHECK_EQ(nfs4_lockset_add(&s, true, 10, 20), 0);   /* W [10,30) */
    CHECK_EQ(nfs4_lockset_add(&s, false, 15, 5), 0);   /* R [15,20) splits it */
    CHECK_EQ(s.n, 3);
    CHECK(lockset_map(&s, map));
    CHECK_EQ(map[14], 2); CHECK_EQ(map[15], 1); CHECK_EQ(map[19], 1); CHECK_EQ(map[20], 2);
    CHECK_EQ(nfs4_lockset_remove(&s, 12, 16), 0);      /* unlock [12,28) */
    CHECK(lockset_map(&s, map));
    CHECK_EQ(s.n, 2);
    CHECK_EQ(map[11], 2); CHECK_EQ(map[12], 0); CHECK_EQ(map[27], 0); CHECK_EQ(map[28], 2);
    CHECK_EQ(nfs4_lockset_add(&s, false, 100, 0), 0);  /* R to the end */
    CHECK_EQ(nfs4_lock_range_len(&s.r[s.n - 1]), UINT64_MAX);
    CHECK_EQ(nfs4_lockset_remove(&s, 200, 0), 0);      /* cut its tail: [100,200) left */
    CHECK_EQ(nfs4_lock_range_len(&s.r[s.n - 1]), 100);
    CHECK_EQ(nfs4_lockset_add(&s, true, UINT64_MAX - 5, 100), 0); /* wraps: to the end */
    CHECK_EQ(s.r[s.n - 1].end, UINT64_MAX);
    struct nfs4_lockset copy;
    CHECK_EQ(nfs4_lockset_copy(&copy, &s), 0);
    CHECK_EQ(copy.n, s.n);
    CHECK_EQ(nfs4_lockset_remove(&s, 0, 0), 0);        /* unlock everything */
    CHECK_EQ(s.n, 0);
    CHECK_EQ(copy.n, 4);
    nfs4_lockset_clear(&copy);
    nfs4_lockset_clear(&s);
}

static void test_lockset_random(void)
{
    srand(12345);
    for (int round = 0; round < 200; round++) {
        struct nfs4_lockset s = { 0 };
        uint8_t model[MAP_LEN] = { 0 }, got[MAP_LEN];
        for (int i = 0; i < 40; i++) {
            uint64_t off = (uint64_t)(rand() % 100), len = (uint64_t)(rand() % 12);
            int what = rand() % 3;
            if (what == 0)
                CHECK_EQ(nfs4_lockset_remove(&s, off, len), 0);
            else
                CHECK_EQ(nfs4_lockset_add(&s, what == 2, off, len), 0);
            model_set(model, off, len, (uint8_t)what);
            CHECK(lockset_map(&s, got));
            if (memcmp(model, got, MAP_LEN)) {
                CHECK(!"lock set differs from the byte map");
                break;
            }
        }
        nfs4_lockset_clear(&s);
    }
}

int main(void)
{
    test_slots_basic();
    test_slots_close();
    test_slots_threads();
    test_cb_dispatch();
    test_lockset_cases();
    test_lockset_random();
    return check_report("test_client_nfs4");
}
