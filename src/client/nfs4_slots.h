/*
 * The fore channel slot table of an NFSv4.1 session (RFC 8881 section 2.10.6.1): every
 * COMPOUND but EXCHANGE_ID / CREATE_SESSION / DESTROY_* starts with SEQUENCE naming a
 * slot and that slot's next sequence id; one request per slot at a time, so the number
 * of slots the server granted bounds the requests in flight.
 *
 * Pure bookkeeping (no I/O) so tests/unit/test_nfs4_slots.c exercises it on its own.
 * The lowest free slot is handed out (keeps sa_highest_slotid low, as the RFC asks), a
 * server's sr_target_highest_slotid shrinks (or regrows) the usable range, and a slot
 * whose request got no reply is retired: whether the server saw that sequence id is
 * unknown, and guessing wrong costs SEQ_MISORDERED or a false replay.
 */
#ifndef PEERNFS_CLIENT_NFS4_SLOTS_H
#define PEERNFS_CLIENT_NFS4_SLOTS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define NFS4_SLOTS_MAX 64

struct nfs4_slot_table {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint32_t nslots;  /* granted by CREATE_SESSION (<= NFS4_SLOTS_MAX) */
    uint32_t usable;  /* server's target_highest_slotid + 1, <= nslots */
    uint64_t busy;    /* one bit per slot */
    uint64_t retired; /* slots of lost requests, never used again */
    bool closed;
    uint32_t seqid[NFS4_SLOTS_MAX]; /* the sequence id the next request on the slot uses */
};

enum nfs4_slot_outcome {
    NFS4_SLOT_DONE,   /* the server processed SEQUENCE (whatever the later ops did) */
    NFS4_SLOT_UNUSED, /* SEQUENCE refused (DELAY, BADSLOT...): the seqid is still free */
    NFS4_SLOT_LOST,   /* no reply, or SEQ_MISORDERED: retire the slot */
};

void nfs4_slots_init(struct nfs4_slot_table *t, uint32_t nslots);
void nfs4_slots_destroy(struct nfs4_slot_table *t);
/* Take the lowest free usable slot, waiting up to timeout_ms (< 0: forever). Returns 0
 * with the slot, its sequence id and the highest slot id in use (for
 * sa_highest_slotid), -ETIMEDOUT, -ECANCELED after nfs4_slots_close, or -EIO when every
 * slot is retired. */
int nfs4_slot_get(struct nfs4_slot_table *t, int timeout_ms, uint32_t *slotid, uint32_t *seqid,
                  uint32_t *highest);
/* Give the slot back. target_highest: the reply's sr_target_highest_slotid, or
 * UINT32_MAX when there was none. */
void nfs4_slot_put(struct nfs4_slot_table *t, uint32_t slotid, enum nfs4_slot_outcome outcome,
                   uint32_t target_highest);
/* Wake every waiter with -ECANCELED (the session goes away). */
void nfs4_slots_close(struct nfs4_slot_table *t);
uint32_t nfs4_slots_busy(struct nfs4_slot_table *t);

#endif
