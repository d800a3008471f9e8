/*
 * Delegations: grant policy, conflicts (with other clients' opens and with non-NFSv4
 * access), the recall state machine and revocation.
 *
 * Recall: a conflict marks the delegation recalling (once), queues a STATE_WORK_CB_RECALL
 * for cb/ (which sends CB_RECALL outside the state lock) and answers DELAY. If the
 * delegation is not returned within one lease of the recall, state_tick revokes it: it
 * no longer conflicts, its stateid answers DELEG_REVOKED, and the holder's SEQUENCE
 * replies carry RECALLABLE_STATE_REVOKED until it frees it (FREE_STATEID/DELEGRETURN).
 * A courtesy holder is expired instead of recalled.
 */
#include "state/state_internal.h"
#include "util/deadline.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

bool deleg_recall_pending_locked(struct state_file *f)
{
    for (struct dlist *p = f->delegs.next; p != &f->delegs; p = p->next)
        if (container_of(p, struct state_stid, file_link)->recalling)
            return true;
    return false;
}

static void recall_start_locked(struct state_server *ss, struct state_stid *d)
{
    d->recalling = true;
    d->recall_ms = st_now(ss);
    dlist_add_tail(&ss->recalls, &d->recall_link);
    st_queue_work(ss, STATE_WORK_CB_RECALL, d->client, d);
}

enum state_status deleg_conflicts_locked(struct state_server *ss, struct state_file *f,
                                         struct state_client *asking, bool want_write)
{
    deleg_awaiting_conflicts_locked(ss, f, asking, want_write); /* discarded, never waited for */
    bool conflict;
again:
    conflict = false;
    for (struct dlist *p = f->delegs.next; p != &f->delegs; p = p->next) {
        struct state_stid *d = container_of(p, struct state_stid, file_link);
        if (d->client == asking || (!want_write && d->dtype == STATE_DELEG_READ))
            continue;
        if (client_expire_if_courtesy_locked(ss, d->client))
            goto again; /* the list changed */
        conflict = true;
        if (!d->recalling)
            recall_start_locked(ss, d);
    }
    return conflict ? STATE_ERR_DELAY : STATE_OK;
}

/*
 * The client `c` opens the file under open owner `o` while it holds a write delegation
 * of it: a client that knows of its delegation opens under it without asking (or with
 * CLAIM_DELEGATE_CUR), so this is a part of the client that does not know. Linux mounts
 * of one server with nosharecache are that: one client id, but each mount has its own
 * inodes, and the delegation's cached locks and writes live in the other mount's. Such
 * an open recalls the delegation unless `o` has the file open already (the holder's own
 * owner racing its grant).
 */
enum state_status deleg_conflicts_own_locked(struct state_server *ss, struct state_file *f,
                                             struct state_client *c, struct state_owner *o)
{
    bool conflict = false;
    for (struct dlist *p = f->delegs.next; p != &f->delegs; p = p->next) {
        struct state_stid *d = container_of(p, struct state_stid, file_link);
        if (d->client != c || d->dtype != STATE_DELEG_WRITE)
            continue;
        for (struct dlist *q = f->opens.next; q != &f->opens; q = q->next)
            if (container_of(q, struct state_stid, file_link)->owner == o)
                return STATE_OK;
        conflict = true;
        if (!d->recalling)
            recall_start_locked(ss, d);
    }
    return conflict ? STATE_ERR_DELAY : STATE_OK;
}

/* Policy: a read delegation when no other client has the file open for write, a write
 * delegation (asked for, with a write open) when nobody else has it open at all (no
 * other client, and no other open owner of this one: deleg_conflicts_own_locked);
 * never while the callback path is down, a recall is pending on the file, or during
 * grace. A reclaim (CLAIM_PREVIOUS) gets what it held. Returns a referenced stid. */
struct state_stid *deleg_try_grant_locked(struct state_server *ss, struct state_stid *open,
                                          enum state_deleg_type want, bool reclaim,
                                          bool *recall_pending)
{
    struct state_client *c = open->client;
    struct state_file *f = open->file;
    enum state_deleg_type type = want;
    if (!reclaim) {
        if (!ss->p.delegations || ss->in_grace || !client_cb_up_locked(c))
            return NULL;
        if (deleg_recall_pending_locked(f)) {
            *recall_pending = true;
            return NULL;
        }
        bool others_open = false, others_write = false;
        for (struct dlist *p = f->opens.next; p != &f->opens; p = p->next) {
            struct state_stid *x = container_of(p, struct state_stid, file_link);
            if (x->client != c) {
                others_open = true;
                others_write |= (x->share_access & STATE_SHARE_ACCESS_WRITE) != 0;
            } else if (x->owner != open->owner) {
                others_open = true; /* see deleg_conflicts_own_locked */
            }
        }
        if (want == STATE_DELEG_WRITE && (!(open->share_access & STATE_SHARE_ACCESS_WRITE) || others_open))
            type = STATE_DELEG_READ;
        if (type == STATE_DELEG_READ && (others_write || (open->share_access & STATE_SHARE_ACCESS_WRITE)))
            return NULL;
    }
    for (struct dlist *p = f->delegs.next; p != &f->delegs; p = p->next) {
        struct state_stid *x = container_of(p, struct state_stid, file_link);
        if (x->client == c || x->dtype == STATE_DELEG_WRITE || type == STATE_DELEG_WRITE)
            return NULL; /* already held, or exclusive */
    }
    struct state_stid *d = stid_new_locked(ss, STATE_STID_DELEG, c, f);
    if (!d)
        return NULL;
    d->dtype = type;
    dlist_add_tail(&f->delegs, &d->file_link);
    dlist_add_tail(&c->delegs, &d->owner_link);
    atomic_fetch_add_explicit(&ss->ndelegs, 1, memory_order_relaxed); /* freed: stid_unhash_locked */
    d->refs++;
    return d;
}

void deleg_tick_locked(struct state_server *ss, uint64_t now)
{
    struct dlist *pos, *tmp;
    dlist_for_each_safe(pos, tmp, &ss->recalls) {
        struct state_stid *d = container_of(pos, struct state_stid, recall_link);
        if (now - d->recall_ms < ss->lease_ms)
            break; /* oldest first */
        dlist_del(&d->recall_link);
        dlist_del(&d->file_link);
        d->recalling = false;
        d->revoked = true;
        d->client->revoked_delegs++;
    }
}

enum state_status state_deleg_conflicts(struct state_server *ss, const void *file_key,
                                        size_t file_key_len, struct state_client *asking,
                                        bool want_write)
{
    st_lock(ss);
    enum state_status st = STATE_OK;
    struct state_file *f = file_get_locked(ss, file_key, file_key_len, false);
    if (f) {
        st = deleg_conflicts_locked(ss, f, asking, want_write);
        file_put_locked(f);
    }
    st_unlock(ss);
    return st;
}

bool state_deleg_break_for_file(struct state_server *ss, const void *file_key,
                                size_t file_key_len, bool write)
{
    return state_deleg_conflicts(ss, file_key, file_key_len, NULL, write) == STATE_ERR_DELAY;
}

bool state_deleg_held(struct state_server *ss, const void *file_key, size_t file_key_len, bool recall)
{
    st_lock(ss);
    bool held = false;
    struct state_file *f = file_get_locked(ss, file_key, file_key_len, false);
    if (f) {
        if (recall)
            deleg_conflicts_locked(ss, f, NULL, true);
        /* an awaiting record keeps the watch (the local open then discards it at once) */
        held = !dlist_empty(&f->delegs) || !dlist_empty(&f->awaiting);
        file_put_locked(f);
    }
    st_unlock(ss);
    return held;
}

static struct state_stid *deleg_write_of_other_locked(struct state_file *f, struct state_client *asking)
{
    for (struct dlist *p = f->delegs.next; p != &f->delegs; p = p->next) {
        struct state_stid *d = container_of(p, struct state_stid, file_link);
        if (d->dtype == STATE_DELEG_WRITE && d->client != asking)
            return d;
    }
    return NULL;
}

enum state_status state_deleg_getattr(struct state_server *ss, const void *file_key, size_t file_key_len,
                                      struct state_client *asking, struct state_deleg_attrs *out, bool *have)
{
    *have = false;
    st_lock(ss);
    enum state_status st = STATE_OK;
    struct state_file *f = file_get_locked(ss, file_key, file_key_len, false);
    struct state_stid *d = f ? deleg_write_of_other_locked(f, asking) : NULL;
    uint64_t now = st_now(ss);
    if (!d || d->recalling) {
        st = d ? STATE_ERR_DELAY : STATE_OK; /* being recalled: its data is on the way */
    } else if (client_expire_if_courtesy_locked(ss, d->client)) {
        st = STATE_OK; /* the holder was gone: its delegation with it */
    } else if (d->cbga == CBGA_ANSWERED && now - d->cbga_ms < STATE_CB_GETATTR_FRESH_MS) {
        *out = d->cbga_attrs;
        *have = true;
    } else if (d->cbga == CBGA_FAILED) {
        recall_start_locked(ss, d);
        st = STATE_ERR_DELAY;
    } else {
        if (d->cbga != CBGA_SENT || now - d->cbga_ms >= STATE_CB_GETATTR_WAIT_MS) {
            d->cbga = CBGA_SENT;
            d->cbga_ms = now;
            st_queue_work(ss, STATE_WORK_CB_GETATTR, d->client, d);
        }
        st = STATE_ERR_DELAY;
    }
    if (f)
        file_put_locked(f);
    st_unlock(ss);
    return st;
}

/* Is a CB_GETATTR about another client's write delegation of f unanswered? */
static bool deleg_getattr_pending_locked(struct state_file *f, struct state_client *asking)
{
    struct state_stid *d = deleg_write_of_other_locked(f, asking);
    return d && !d->recalling && d->cbga == CBGA_SENT;
}

bool state_deleg_getattr_wait(struct state_server *ss, const void *file_key, size_t file_key_len,
                              struct state_client *asking, unsigned timeout_ms)
{
    struct timespec deadline = deadline_after_ms(timeout_ms);
    st_lock(ss);
    bool waited = false;
    for (;;) {
        /* looked up again after every wake-up: the delegation may be gone */
        struct state_file *f = file_get_locked(ss, file_key, file_key_len, false);
        bool pending = f && deleg_getattr_pending_locked(f, asking);
        if (f)
            file_put_locked(f);
        if (!pending)
            break;
        waited = true;
        if (pthread_cond_timedwait(&ss->cbga_answered, &ss->mu, &deadline) == ETIMEDOUT)
            break;
    }
    st_unlock(ss);
    return waited;
}

void state_deleg_getattr_done(struct state_server *ss, struct state_stid *deleg, bool ok,
                              const struct state_deleg_attrs *a)
{
    st_lock(ss);
    if (deleg->cbga == CBGA_SENT) {
        deleg->cbga = ok ? CBGA_ANSWERED : CBGA_FAILED;
        deleg->cbga_ms = st_now(ss);
        if (ok)
            deleg->cbga_attrs = *a;
        pthread_cond_broadcast(&ss->cbga_answered);
    }
    st_unlock(ss);
}

bool state_deleg_offerable(struct state_server *ss, struct state_client *c)
{
    st_lock(ss);
    bool ok = ss->p.delegations && !ss->in_grace && client_cb_up_locked(c);
    st_unlock(ss);
    return ok;
}

unsigned state_deleg_count(struct state_server *ss)
{
    return atomic_load_explicit(&ss->ndelegs, memory_order_relaxed) +
           atomic_load_explicit(&ss->nawaiting, memory_order_relaxed);
}

void state_deleg_recall_sent(struct state_server *ss, struct state_stid *deleg, bool ok)
{
    if (ok)
        return;
    st_lock(ss);
    struct state_client *c = deleg->client;
    c->cb_up = false;
    for (struct dlist *p = c->sessions.next; p != &c->sessions; p = p->next)
        container_of(p, struct state_session, link)->cb_path_down = true;
    st_unlock(ss);
}

enum state_status state_delegreturn(struct state_server *ss, struct state_stid *deleg)
{
    st_lock(ss);
    enum state_status st = STATE_ERR_BAD_STATEID;
    if (deleg->type == STATE_STID_DELEG && !deleg->dead) {
        st = deleg->revoked ? STATE_ERR_DELEG_REVOKED : STATE_OK;
        stid_unhash_locked(ss, deleg);
    }
    st_unlock(ss);
    return st;
}

enum state_deleg_type state_deleg_type(struct state_stid *deleg) { return deleg->dtype; }
