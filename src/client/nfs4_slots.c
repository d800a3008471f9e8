#include "client/nfs4_slots.h"
#include "util/deadline.h"

#include <errno.h>
#include <string.h>
#include <time.h>

void nfs4_slots_init(struct nfs4_slot_table *t, uint32_t nslots)
{
    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);
    t->nslots = nslots < 1 ? 1 : nslots > NFS4_SLOTS_MAX ? NFS4_SLOTS_MAX : nslots;
    t->usable = t->nslots;
    for (uint32_t i = 0; i < NFS4_SLOTS_MAX; i++)
        t->seqid[i] = 1; /* RFC 8881 2.10.6.1: a slot's first request carries 1 */
}

void nfs4_slots_destroy(struct nfs4_slot_table *t)
{
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
}

static uint64_t mask_below(uint32_t n) { return n >= 64 ? ~0ull : (1ull << n) - 1; }

static int highest_bit(uint64_t v)
{
    return v ? 63 - __builtin_clzll(v) : -1;
}

int nfs4_slot_get(struct nfs4_slot_table *t, int timeout_ms, uint32_t *slotid, uint32_t *seqid,
                  uint32_t *highest)
{
    struct timespec deadline = deadline_after_ms(timeout_ms >= 0 ? (unsigned long)timeout_ms : 0);
    pthread_mutex_lock(&t->mu);
    int st = 0;
    for (;;) {
        if (t->closed) {
            st = -ECANCELED;
            break;
        }
        uint64_t alive = mask_below(t->nslots) & ~t->retired;
        if (!alive) {
            st = -EIO;
            break;
        }
        uint64_t free_usable = mask_below(t->usable) & alive & ~t->busy;
        /* a server that shrank the target below every live slot: use the live ones */
        if (!(mask_below(t->usable) & alive))
            free_usable = alive & ~t->busy;
        if (free_usable) {
            uint32_t s = (uint32_t)__builtin_ctzll(free_usable);
            t->busy |= 1ull << s;
            *slotid = s;
            *seqid = t->seqid[s];
            *highest = (uint32_t)highest_bit(t->busy);
            break;
        }
        if (timeout_ms < 0) {
            pthread_cond_wait(&t->cv, &t->mu);
        } else if (pthread_cond_timedwait(&t->cv, &t->mu, &deadline) == ETIMEDOUT) {
            st = -ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return st;
}

void nfs4_slot_put(struct nfs4_slot_table *t, uint32_t slotid, enum nfs4_slot_outcome outcome,
                   uint32_t target_highest)
{
    if (slotid >= NFS4_SLOTS_MAX)
        return;
    pthread_mutex_lock(&t->mu);
    if (t->busy & (1ull << slotid)) {
        t->busy &= ~(1ull << slotid);
        if (outcome == NFS4_SLOT_DONE)
            t->seqid[slotid]++;
        else if (outcome == NFS4_SLOT_LOST)
            t->retired |= 1ull << slotid;
        if (target_highest != UINT32_MAX)
            t->usable = target_highest >= t->nslots ? t->nslots : target_highest + 1;
        pthread_cond_broadcast(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
}

void nfs4_slots_close(struct nfs4_slot_table *t)
{
    pthread_mutex_lock(&t->mu);
    t->closed = true;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

uint32_t nfs4_slots_busy(struct nfs4_slot_table *t)
{
    pthread_mutex_lock(&t->mu);
    uint32_t n = (uint32_t)__builtin_popcountll(t->busy);
    pthread_mutex_unlock(&t->mu);
    return n;
}
