/*
 * Delegation recovery after a CLIENT restart (RFC 7530 10.2.1, 16.16, 16.8; RFC 8881
 * 10.2.1, 18.16, 18.5): the delegations of a client incarnation that a new incarnation
 * of the same client replaces (same owner id, new verifier, confirmed by
 * SETCLIENTID_CONFIRM or CREATE_SESSION) are kept "awaiting recovery" for the new one,
 * which may reclaim each with OPEN CLAIM_DELEGATE_PREV / CLAIM_DELEG_PREV_FH (state_open)
 * and gets an ordinary delegation with a new stateid. Its opens and locks go as before.
 *
 * Policy: a delegation awaiting recovery NEVER delays or blocks anyone. The RFCs let a
 * server hold conflicting requests back while a restarted client may still reclaim; we
 * do not, because the common client (Linux) never reclaims this way: it keeps no
 * delegations across its restarts, so waiting for it would only ever cost its peers a
 * lease of DELAY after every client reboot. So:
 *  - a conflicting request of another client, an NFSv3/NLM access, or a local process's
 *    open that would have recalled a delegation simply discards the awaiting record
 *    (deleg_awaiting_conflicts_locked, from deleg_conflicts_locked): no CB_RECALL (the
 *    new incarnation does not know the delegation), no DELAY;
 *  - the whole set goes one lease after the new incarnation's confirmation (one lease
 *    after the grace period if that ends later: no reclaim of this kind is allowed during
 *    grace), and at DELEGPURGE or when the client goes;
 *  - a reclaim that finds nothing (never delegated, discarded, timed out, purged) gets
 *    RECLAIM_BAD.
 * Bounded: the records are made only from delegations the replaced incarnation held (its
 * delegation stateids are freed at the same time), one per delegation.
 */
#include "state/state_internal.h"
#include "util/log.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

void deleg_awaiting_free_locked(struct state_server *ss, struct deleg_awaiting *a)
{
    dlist_del(&a->client_link);
    dlist_del(&a->file_link);
    file_put_locked(a->file);
    atomic_fetch_sub_explicit(&ss->nawaiting, 1, memory_order_relaxed);
    free(a);
}

static bool deleg_awaiting_add_locked(struct state_server *ss, struct state_client *c, struct state_file *f,
                                      enum state_deleg_type dtype)
{
    struct deleg_awaiting *a = calloc(1, sizeof(*a));
    if (!a)
        return false;
    a->client = c;
    a->file = f;
    f->refs++;
    a->dtype = dtype;
    dlist_add_tail(&c->awaiting, &a->client_link);
    dlist_add_tail(&f->awaiting, &a->file_link);
    atomic_fetch_add_explicit(&ss->nawaiting, 1, memory_order_relaxed);
    return true;
}

/* A delegation the old incarnation still held as its own: not revoked (no longer on the
 * file) and not being recalled (someone already waits for it: it would only be
 * discarded by that requester's retry). */
static bool deleg_recoverable(const struct state_stid *d)
{
    return !d->dead && !d->revoked && !d->recalling;
}

/*
 * `c` (just confirmed) replaces `old`, an earlier incarnation of the same client: old's
 * delegations, and what old itself still had awaiting, become c's awaiting set. Call it
 * before destroying old (which frees old's delegation stateids). Another principal is
 * not the same client: nothing is kept for it.
 */
void deleg_awaiting_adopt_locked(struct state_server *ss, struct state_client *old, struct state_client *c)
{
    if (old->principal_len != c->principal_len || memcmp(old->principal, c->principal, c->principal_len) != 0)
        return;
    struct dlist *pos, *tmp;
    dlist_for_each_safe(pos, tmp, &old->awaiting) {
        struct deleg_awaiting *a = container_of(pos, struct deleg_awaiting, client_link);
        dlist_del(&a->client_link);
        a->client = c;
        dlist_add_tail(&c->awaiting, &a->client_link);
    }
    unsigned lost = 0;
    dlist_for_each_safe(pos, tmp, &old->delegs) {
        struct state_stid *d = container_of(pos, struct state_stid, owner_link);
        if (deleg_recoverable(d) && !deleg_awaiting_add_locked(ss, c, d->file, d->dtype))
            lost++;
    }
    if (lost)
        log_warn("state: out of memory: %u delegation(s) of client %016llx cannot await recovery", lost,
                 (unsigned long long)c->clientid);
    if (dlist_empty(&c->awaiting))
        return;
    uint64_t from = st_now(ss);
    grace_update_locked(ss, from);
    if (ss->in_grace && ss->grace_end_ms > from)
        from = ss->grace_end_ms; /* the claims answer GRACE until then */
    c->awaiting_until_ms = from + ss->lease_ms;
}

void deleg_awaiting_purge_locked(struct state_server *ss, struct state_client *c)
{
    struct dlist *pos, *tmp;
    dlist_for_each_safe(pos, tmp, &c->awaiting)
        deleg_awaiting_free_locked(ss, container_of(pos, struct deleg_awaiting, client_link));
}

/* The policy above: every record of another client that the access would have had to
 * recall (a write delegation: any access; a read delegation: a write) is discarded. */
void deleg_awaiting_conflicts_locked(struct state_server *ss, struct state_file *f,
                                     struct state_client *asking, bool want_write)
{
    struct dlist *pos, *tmp;
    dlist_for_each_safe(pos, tmp, &f->awaiting) {
        struct deleg_awaiting *a = container_of(pos, struct deleg_awaiting, file_link);
        if (a->client == asking || (!want_write && a->dtype == STATE_DELEG_READ))
            continue;
        deleg_awaiting_free_locked(ss, a);
    }
}

struct deleg_awaiting *deleg_awaiting_find_locked(struct state_file *f, struct state_client *c)
{
    for (struct dlist *p = f->awaiting.next; p != &f->awaiting; p = p->next) {
        struct deleg_awaiting *a = container_of(p, struct deleg_awaiting, file_link);
        if (a->client == c)
            return a;
    }
    return NULL;
}

void deleg_awaiting_tick_locked(struct state_server *ss, uint64_t now)
{
    if (atomic_load_explicit(&ss->nawaiting, memory_order_relaxed) == 0)
        return;
    struct dlist *pos, *tmp;
    dlist_for_each_safe(pos, tmp, &ss->clients) {
        struct state_client *c = container_of(pos, struct state_client, link);
        if (!dlist_empty(&c->awaiting) && now >= c->awaiting_until_ms)
            deleg_awaiting_purge_locked(ss, c);
    }
}

enum state_status state_deleg_awaiting(struct state_server *ss, struct state_client *c, const void *file_key,
                                       size_t file_key_len, enum state_deleg_type *type)
{
    *type = STATE_DELEG_NONE;
    st_lock(ss);
    enum state_status st = grace_check_locked(ss, c, false);
    if (st == STATE_OK) {
        struct state_file *f = file_get_locked(ss, file_key, file_key_len, false);
        struct deleg_awaiting *a = f && !c->dead ? deleg_awaiting_find_locked(f, c) : NULL;
        if (a)
            *type = a->dtype;
        else
            st = STATE_ERR_RECLAIM_BAD;
        if (f)
            file_put_locked(f);
    }
    st_unlock(ss);
    return st;
}

enum state_status state_delegpurge(struct state_server *ss, struct state_client *c)
{
    st_lock(ss);
    deleg_awaiting_purge_locked(ss, c);
    if (!c->dead)
        client_renew_locked(ss, c);
    st_unlock(ss);
    return STATE_OK;
}

unsigned state_deleg_awaiting_count(struct state_server *ss)
{
    return atomic_load_explicit(&ss->nawaiting, memory_order_relaxed);
}
