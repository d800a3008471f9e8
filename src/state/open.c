/*
 * Open and lock owners, 4.0 seqid replay, opens with share reservations
 * (OPEN/OPEN_CONFIRM/OPEN_DOWNGRADE/CLOSE), lock stateids and RELEASE_LOCKOWNER.
 *
 * One open stateid per (open owner, file): a second OPEN by the same owner upgrades it
 * (union of modes, seqid + 1). One lock stateid per (lock owner, file). Byte ranges live
 * in the lock space; a lock owner holds its lock-space owner (key = 8-byte big-endian
 * clientid + owner bytes, host key = the clientid) so expiry can release a whole client
 * with lock_release_host. Lock order: state mu, then the lock space's mutex (only for
 * lock_owner_put); kernel calls (releases) run after mu is dropped.
 */
#include "state/state_internal.h"

#include "lock/lock.h"

#include <stdlib.h>
#include <string.h>

static uint64_t owner_hash(struct state_server *ss, uint64_t clientid, enum owner_kind kind,
                           const void *key, size_t len)
{
    uint64_t h = st_hash(key, len, ss->seed ^ clientid ^ ((uint64_t)kind << 56));
    return h;
}

static struct state_owner *owner_find_locked(struct state_server *ss, struct state_client *c,
                                             enum owner_kind kind, const void *key, size_t len)
{
    for (struct hnode *e = htab_bucket(&ss->owners, owner_hash(ss, c->clientid, kind, key, len)); e; e = e->next) {
        struct state_owner *o = container_of(e, struct state_owner, h);
        if (o->client == c && o->kind == kind && o->key_len == len && memcmp(o->key, key, len) == 0)
            return o;
    }
    return NULL;
}

/* The owner with a new reference (created when asked). NULL: cap or no memory. */
static struct state_owner *owner_get_locked(struct state_server *ss, struct state_client *c,
                                            enum owner_kind kind, const void *key, size_t len,
                                            bool create, bool *created)
{
    *created = false;
    struct state_owner *o = owner_find_locked(ss, c, kind, key, len);
    if (o) {
        o->refs++;
        return o;
    }
    if (!create || c->nowners >= ss->p.max_owners_per_client)
        return NULL;
    o = calloc(1, sizeof(*o) + len);
    if (!o)
        return NULL;
    o->ss = ss;
    o->refs = 2; /* the table's and the caller's */
    o->kind = kind;
    o->key_len = len;
    memcpy(o->key, key, len);
    dlist_init(&o->stids);
    if (!htab_insert(&ss->owners, &o->h, owner_hash(ss, c->clientid, kind, key, len))) {
        free(o);
        return NULL;
    }
    o->client = c;
    c->refs++;
    dlist_add_tail(&c->owners, &o->link);
    c->nowners++;
    ss->nowners++;
    *created = true;
    return o;
}

/* Not inlined: gcc's -Wuse-after-free cannot see that a caller holding its own
 * reference keeps the owner alive across owner_destroy_locked (which drops the table's
 * reference), and would flag destroy-then-put at -O2. */
__attribute__((noinline)) void owner_put_locked(struct state_owner *o)
{
    if (--o->refs)
        return;
    free(o->reply);
    if (o->lo)
        lock_owner_put(o->lo);
    client_put_locked(o->client);
    free(o);
}

void owner_destroy_locked(struct state_server *ss, struct state_owner *o)
{
    if (o->dead)
        return;
    o->dead = true;
    struct dlist *pos, *tmp;
    dlist_for_each_safe(pos, tmp, &o->stids)
        stid_unhash_locked(ss, container_of(pos, struct state_stid, owner_link));
    if (o->closed)
        stid_forget_closed_locked(ss, o->closed);
    if (ss->destroying && o->lo) {
        /* Teardown: the lock space's owner goes now, while the space surely exists
         * (peernfsd destroys it after us); a reference someone still holds on this
         * owner must not reach the space later. Its locks go with the host release. */
        lock_owner_put(o->lo);
        o->lo = NULL;
    }
    htab_remove(&ss->owners, &o->h);
    dlist_del(&o->link);
    o->client->nowners--;
    ss->nowners--;
    owner_put_locked(o);
}

enum state_status state_open_owner_get(struct state_server *ss, struct state_client *c,
                                       const void *owner, size_t owner_len,
                                       struct state_owner **out, bool *created)
{
    if (!owner || owner_len == 0 || owner_len > STATE_OWNER_MAX)
        return STATE_ERR_INVAL;
    st_lock(ss);
    enum state_status st = STATE_OK;
    if (c->dead) {
        st = STATE_ERR_EXPIRED;
    } else if (!(*out = owner_get_locked(ss, c, OWNER_OPEN, owner, owner_len, true, created))) {
        st = STATE_ERR_RESOURCE;
    } else if (*created) {
        (*out)->confirmed = c->minorversion > 0; /* 4.1 has no OPEN_CONFIRM */
    }
    st_unlock(ss);
    return st;
}

struct state_owner *state_owner_ref(struct state_owner *o)
{
    st_lock(o->ss);
    o->refs++;
    st_unlock(o->ss);
    return o;
}

void state_owner_put(struct state_owner *o)
{
    if (!o)
        return;
    struct state_server *ss = o->ss;
    st_lock(ss);
    owner_put_locked(o);
    st_unlock(ss);
}

bool state_owner_confirmed(struct state_owner *o)
{
    st_lock(o->ss);
    bool c = o->confirmed;
    st_unlock(o->ss);
    return c;
}

/* ---- 4.0 seqids ---- */

enum state_status state_owner_seqid_begin(struct state_owner *o, uint32_t seqid, bool is_open,
                                          void **replay, size_t *replay_len)
{
    struct state_server *ss = o->ss;
    *replay = NULL;
    *replay_len = 0;
    st_lock(ss);
    enum state_status st = STATE_ERR_BAD_SEQID;
    if (o->dead) {
        st = STATE_ERR_BAD_STATEID;
    } else if (o->busy) {
        st = STATE_ERR_DELAY;
    } else if (!o->has_seq || seqid == o->seqid + 1) {
        st = STATE_OK;
    } else if (seqid == o->seqid && o->reply_cached) {
        if ((*replay = malloc(o->reply_len ? o->reply_len : 1))) {
            memcpy(*replay, o->reply, o->reply_len);
            *replay_len = o->reply_len;
            st = STATE_ERR_REPLAY;
        } else {
            st = STATE_ERR_RESOURCE;
        }
    } else if (is_open && o->kind == OWNER_OPEN && !o->confirmed) {
        /* an unconfirmed owner re-used: forget its unconfirmed opens, start over */
        struct dlist *pos, *tmp;
        dlist_for_each_safe(pos, tmp, &o->stids)
            stid_unhash_locked(ss, container_of(pos, struct state_stid, owner_link));
        o->has_seq = false;
        o->reply_cached = false;
        st = STATE_OK;
    }
    if (st == STATE_OK) {
        o->busy = true;
        if (o->closed) /* a new op: the last CLOSE can no longer be replayed */
            stid_forget_closed_locked(ss, o->closed);
    }
    st_unlock(ss);
    return st;
}

void state_owner_seqid_end(struct state_owner *o, uint32_t seqid, bool advance,
                           const void *reply, size_t reply_len)
{
    struct state_server *ss = o->ss;
    st_lock(ss);
    o->busy = false;
    if (advance) {
        o->seqid = seqid;
        o->has_seq = true;
        o->reply_cached = false;
        if (reply && reply_len <= ss->p.max_reply_cache) {
            void *copy = malloc(reply_len ? reply_len : 1);
            if (copy) {
                memcpy(copy, reply, reply_len);
                free(o->reply);
                o->reply = copy;
                o->reply_len = reply_len;
                o->reply_cached = true;
            }
        }
    }
    st_unlock(ss);
}

/* ---- opens ---- */

static bool share_valid(uint32_t access, uint32_t deny)
{
    return access >= STATE_SHARE_ACCESS_READ && access <= STATE_SHARE_ACCESS_BOTH &&
           deny <= STATE_SHARE_DENY_BOTH;
}

/* An open of the file that conflicts with (access, deny), or NULL. The asking owner's
 * own open counts (as knfsd: an owner's deny READ refuses its own later OPEN for READ);
 * an upgrade that does not conflict with it merges into it. A courtesy client's
 * conflicting opens are expired on the way: *restart tells the caller to look again. */
static struct state_stid *share_conflict_locked(struct state_server *ss, struct state_file *f,
                                                struct state_owner *self, uint32_t access,
                                                uint32_t deny, bool *restart)
{
    *restart = false;
    struct dlist *pos, *tmp;
    dlist_for_each_safe(pos, tmp, &f->opens) {
        struct state_stid *x = container_of(pos, struct state_stid, file_link);
        if (!(x->share_deny & access) && !(x->share_access & deny))
            continue;
        if (x->client != (self ? self->client : NULL) && client_expire_if_courtesy_locked(ss, x->client)) {
            *restart = true;
            return NULL;
        }
        return x;
    }
    return NULL;
}

static enum state_status open_grace_locked(struct state_server *ss, struct state_client *c,
                                           enum state_open_claim claim)
{
    switch (claim) {
    case STATE_CLAIM_NULL:
        /* RFC 8881 18.51.3: a 4.1 client gets no new state before its RECLAIM_COMPLETE */
        if (c->minorversion >= 1 && !c->reclaim_complete)
            return STATE_ERR_GRACE;
        return grace_check_locked(ss, c, false);
    case STATE_CLAIM_PREVIOUS:
        return grace_check_locked(ss, c, true);
    case STATE_CLAIM_DELEGATE_CUR:
        return STATE_OK; /* the delegation was granted in this boot: nothing to protect */
    case STATE_CLAIM_DELEGATE_PREV:
        /* Not one of the claims RFC 8881 18.16.3 / RFC 7530 16.16.5 exempt from GRACE.
         * A 4.1 client's RECLAIM_COMPLETE is not asked for: this recovers from the
         * client's restart, not the server's, so it is no grace-period reclaim. */
        return grace_check_locked(ss, c, false);
    }
    return STATE_ERR_INVAL;
}

/* CLAIM_DELEGATE_PREV succeeded: the client's awaiting record of the file is consumed;
 * its type is the delegation to grant. (Looked up again: the conflict checks may have
 * expired courtesy clients meanwhile, never this live client's records.) */
static enum state_deleg_type open_take_awaiting_locked(struct state_server *ss, struct state_file *f,
                                                       struct state_client *c)
{
    struct deleg_awaiting *a = deleg_awaiting_find_locked(f, c);
    if (!a)
        return STATE_DELEG_NONE;
    enum state_deleg_type type = a->dtype;
    deleg_awaiting_free_locked(ss, a);
    return type;
}

enum state_status state_open(struct state_server *ss, const struct state_open_args *args,
                             struct state_open_res *res)
{
    memset(res, 0, sizeof(*res));
    if (!share_valid(args->share_access, args->share_deny) || !args->file_key ||
        args->file_key_len == 0 || args->file_key_len > STATE_FILE_KEY_MAX)
        return STATE_ERR_INVAL;
    struct state_owner *o = args->owner;
    st_lock(ss);
    struct state_client *c = o->client;
    struct state_file *f = NULL;
    enum state_status st;
    if (o->dead || c->dead) {
        st = STATE_ERR_EXPIRED;
        goto out;
    }
    if ((st = open_grace_locked(ss, c, args->claim)) != STATE_OK)
        goto out;
    if (!(f = file_get_locked(ss, args->file_key, args->file_key_len, true))) {
        st = STATE_ERR_RESOURCE;
        goto out;
    }
    if (args->claim == STATE_CLAIM_DELEGATE_PREV && !deleg_awaiting_find_locked(f, c)) {
        st = STATE_ERR_RECLAIM_BAD; /* never delegated, discarded, timed out or purged */
        goto out;
    }
    if (args->claim == STATE_CLAIM_DELEGATE_CUR) {
        bool found = false; /* the client's own delegation on this file */
        for (struct dlist *pos = f->delegs.next; pos != &f->delegs && args->deleg_stateid; pos = pos->next) {
            struct state_stid *x = container_of(pos, struct state_stid, file_link);
            if (x->client == c && memcmp(x->other, args->deleg_stateid->other, STATE_STATEID_OTHER_SIZE) == 0)
                found = true;
        }
        if (!found) {
            st = STATE_ERR_BAD_STATEID;
            goto out;
        }
    }
    bool restart;
    bool touches_write = (args->share_access & STATE_SHARE_ACCESS_WRITE) || args->share_deny;
    do {
        if ((st = deleg_conflicts_locked(ss, f, c, touches_write)) != STATE_OK)
            goto out;
        if (args->claim != STATE_CLAIM_DELEGATE_CUR && args->claim != STATE_CLAIM_PREVIOUS &&
            (st = deleg_conflicts_own_locked(ss, f, c, o)) != STATE_OK)
            goto out;
        if (share_conflict_locked(ss, f, o, args->share_access, args->share_deny, &restart)) {
            st = STATE_ERR_SHARE_DENIED;
            goto out;
        }
    } while (restart);
    if (o->dead || c->dead) { /* cannot happen (only courtesy clients of others go), but cheap */
        st = STATE_ERR_EXPIRED;
        goto out;
    }
    struct state_stid *open = NULL;
    for (struct dlist *pos = f->opens.next; pos != &f->opens; pos = pos->next) {
        struct state_stid *x = container_of(pos, struct state_stid, file_link);
        if (x->owner == o)
            open = x;
    }
    if (open) {
        open->seqid++;
    } else {
        if (o->nstids >= ss->p.max_opens_per_owner || !(open = stid_new_locked(ss, STATE_STID_OPEN, c, f))) {
            st = STATE_ERR_RESOURCE;
            goto out;
        }
        open->owner = o;
        o->refs++;
        o->nstids++;
        dlist_add_tail(&f->opens, &open->file_link);
        dlist_add_tail(&o->stids, &open->owner_link);
    }
    open->share_access |= args->share_access;
    open->share_deny |= args->share_deny;
    open->access_bmap |= 1u << args->share_access;
    open->deny_bmap |= 1u << args->share_deny;
    open->refs++;
    res->open = open;
    res->stateid.seqid = open->seqid;
    memcpy(res->stateid.other, open->other, STATE_STATEID_OTHER_SIZE);
    /* A reclaim confirms its owner: the client knew it before the restart, and a
     * Linux client sends no GETFH with a CLAIM_PREVIOUS open, so it could not even
     * name the file in an OPEN_CONFIRM (knfsd does the same). */
    if (args->claim == STATE_CLAIM_PREVIOUS)
        o->confirmed = true;
    res->confirm_needed = c->minorversion == 0 && !o->confirmed;
    if (!res->confirm_needed)
        client_record_locked(ss, c);
    enum state_deleg_type want = args->claim == STATE_CLAIM_PREVIOUS ? args->reclaim_deleg : args->want_deleg;
    if (args->claim == STATE_CLAIM_DELEGATE_PREV)
        want = open_take_awaiting_locked(ss, f, c);
    if (want != STATE_DELEG_NONE && args->claim != STATE_CLAIM_DELEGATE_CUR) {
        bool reclaim = args->claim == STATE_CLAIM_PREVIOUS || args->claim == STATE_CLAIM_DELEGATE_PREV;
        struct state_stid *d = deleg_try_grant_locked(ss, open, want, reclaim, &res->deleg_recall_pending);
        if (d) {
            res->deleg = d; /* referenced by deleg_try_grant_locked */
            res->deleg_type = d->dtype;
            res->deleg_stateid.seqid = d->seqid;
            memcpy(res->deleg_stateid.other, d->other, STATE_STATEID_OTHER_SIZE);
        }
    }
    client_renew_locked(ss, c);
    st = STATE_OK;
out:
    if (f)
        file_put_locked(f);
    st_unlock(ss);
    return st;
}

enum state_status state_open_confirm(struct state_server *ss, struct state_stid *open,
                                     struct state_stateid *out)
{
    st_lock(ss);
    enum state_status st = STATE_ERR_BAD_STATEID;
    if (open->type == STATE_STID_OPEN && !open->dead) {
        open->owner->confirmed = true;
        open->seqid++;
        client_record_locked(ss, open->client);
        out->seqid = open->seqid;
        memcpy(out->other, open->other, STATE_STATEID_OTHER_SIZE);
        st = STATE_OK;
    }
    st_unlock(ss);
    return st;
}

enum state_status state_open_downgrade(struct state_server *ss, struct state_stid *open,
                                       uint32_t share_access, uint32_t share_deny,
                                       struct state_stateid *out)
{
    if (!share_valid(share_access, share_deny))
        return STATE_ERR_INVAL;
    st_lock(ss);
    enum state_status st = STATE_ERR_BAD_STATEID;
    if (open->type != STATE_STID_OPEN || open->dead)
        goto out;
    st = STATE_ERR_INVAL;
    if ((share_access & ~open->share_access) || (share_deny & ~open->share_deny) ||
        !(open->access_bmap & (1u << share_access)) || !(open->deny_bmap & (1u << share_deny)))
        goto out;
    open->share_access = share_access;
    open->share_deny = share_deny;
    /* modes wider than the new ones can no longer be downgraded to */
    for (uint32_t v = 0; v <= 3; v++) {
        if (v & ~share_access)
            open->access_bmap &= ~(1u << v);
        if (v & ~share_deny)
            open->deny_bmap &= ~(1u << v);
    }
    open->seqid++;
    out->seqid = open->seqid;
    memcpy(out->other, open->other, STATE_STATEID_OTHER_SIZE);
    st = STATE_OK;
out:
    st_unlock(ss);
    return st;
}

/* References to the lock stids of a list (open->locks or owner->stids), for asking
 * has_locks outside mu. Returns the count; *out malloc'd (NULL when none). */
static size_t collect_stids_locked(struct dlist *head, bool by_open_link, struct state_stid ***out)
{
    size_t n = 0, i = 0;
    for (struct dlist *p = head->next; p != head; p = p->next)
        n++;
    *out = NULL;
    if (!n || !(*out = malloc(n * sizeof(**out))))
        return 0;
    for (struct dlist *p = head->next; p != head; p = p->next) {
        struct state_stid *st = by_open_link ? container_of(p, struct state_stid, open_link)
                                             : container_of(p, struct state_stid, owner_link);
        st->refs++;
        (*out)[i++] = st;
    }
    return n;
}

static bool any_locks_held(struct state_stid **v, size_t n, state_has_locks_fn has_locks, void *ctx)
{
    for (size_t i = 0; i < n && has_locks; i++)
        if (has_locks(ctx, v[i]->owner ? v[i]->owner->lo : NULL, v[i]->file->key, v[i]->file->key_len))
            return true;
    return false;
}

/* Seqids only grow: their sum tells whether any of v moved. */
static uint64_t stids_seqid_sum_locked(struct state_stid **v, size_t n)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += v[i]->seqid;
    return sum;
}

static void put_stids_locked(struct state_stid **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        stid_put_locked(v[i]);
    free(v);
}

enum state_status state_close(struct state_server *ss, struct state_stid *open,
                              state_has_locks_fn has_locks, void *ctx,
                              struct state_stateid *out)
{
    st_lock(ss);
    if (open->type != STATE_STID_OPEN || open->dead) {
        st_unlock(ss);
        return STATE_ERR_BAD_STATEID;
    }
    struct state_stid **v;
    size_t n = collect_stids_locked(&open->locks, true, &v);
    st_unlock(ss);
    bool held = any_locks_held(v, n, has_locks, ctx); /* outside mu */
    st_lock(ss);
    put_stids_locked(v, n);
    enum state_status st = STATE_ERR_LOCKS_HELD;
    if (open->dead) {
        st = STATE_ERR_BAD_STATEID;
    } else if (!held) {
        open->seqid++;
        out->seqid = open->seqid;
        memcpy(out->other, open->other, STATE_STATEID_OTHER_SIZE);
        stid_unhash_locked(ss, open);
        if (open->client->minorversion == 0) /* 4.1 replays come from the slot cache */
            stid_keep_closed_locked(ss, open);
        st = STATE_OK;
    }
    st_unlock(ss);
    return st;
}

enum state_status state_file_check_anon_io(struct state_server *ss, const void *file_key,
                                           size_t file_key_len, bool write, bool bypass)
{
    (void)bypass; /* bypass skips byte-range checks (nfs4/), never share reservations */
    st_lock(ss);
    enum state_status st = STATE_OK;
    struct state_file *f = file_get_locked(ss, file_key, file_key_len, false);
    if (f) {
        bool restart;
        do {
            if ((st = deleg_conflicts_locked(ss, f, NULL, write)) != STATE_OK)
                break;
            /* an anonymous reader/writer is "no owner" with access and deny none */
            if (share_conflict_locked(ss, f, NULL, write ? STATE_SHARE_ACCESS_WRITE : STATE_SHARE_ACCESS_READ,
                                      0, &restart))
                st = STATE_ERR_SHARE_DENIED;
        } while (st == STATE_OK && restart);
        file_put_locked(f);
    }
    st_unlock(ss);
    return st;
}

/* ---- lock stateids ---- */

enum state_status state_lock_stateid_get(struct state_server *ss, struct state_stid *open,
                                         const void *lock_owner, size_t lock_owner_len,
                                         uint32_t lock_seqid, struct state_stid **lock_stid)
{
    if (!lock_owner || lock_owner_len == 0 || lock_owner_len > STATE_OWNER_MAX || open->type != STATE_STID_OPEN)
        return STATE_ERR_INVAL;
    struct lock_owner *lo = NULL;
    if (ss->p.locks) { /* before mu: lock_owner_get takes the lock space's mutex */
        uint8_t *key = malloc(8 + lock_owner_len);
        if (!key)
            return STATE_ERR_RESOURCE;
        uint8_t host[8];
        st_put_be64(host, open->client->clientid);
        memcpy(key, host, 8);
        memcpy(key + 8, lock_owner, lock_owner_len);
        lo = lock_owner_get(ss->p.locks, key, 8 + lock_owner_len, host, sizeof(host));
        free(key);
        if (!lo)
            return STATE_ERR_RESOURCE;
    }
    st_lock(ss);
    enum state_status st = STATE_OK;
    struct state_client *c = open->client;
    bool created;
    struct state_owner *o = NULL;
    if (open->dead || c->dead) {
        st = STATE_ERR_BAD_STATEID;
        goto out;
    }
    if (!(o = owner_get_locked(ss, c, OWNER_LOCK, lock_owner, lock_owner_len, true, &created))) {
        st = STATE_ERR_RESOURCE;
        goto out;
    }
    if (created || (o->nstids == 0 && !o->busy)) {
        /* open_to_lock_owner4 starts the lock owner's sequence (RFC 7530 16.10.5): a new
         * owner, or one left without any stateid (its opens closed), takes lock_seqid */
        o->confirmed = true;
        o->has_seq = true;
        o->seqid = lock_seqid;
        o->reply_cached = false;
    }
    if (!o->lo) {
        o->lo = lo;
        lo = NULL;
    }
    struct state_stid *ls = NULL;
    for (struct dlist *pos = open->file->locks.next; pos != &open->file->locks; pos = pos->next) {
        struct state_stid *x = container_of(pos, struct state_stid, file_link);
        if (x->owner == o)
            ls = x;
    }
    if (!ls) {
        if (o->nstids >= ss->p.max_opens_per_owner ||
            !(ls = stid_new_locked(ss, STATE_STID_LOCK, c, open->file))) {
            st = STATE_ERR_RESOURCE;
            goto out;
        }
        ls->owner = o;
        o->refs++;
        o->nstids++;
        ls->open = open;
        open->refs++;
        dlist_add_tail(&open->file->locks, &ls->file_link);
        dlist_add_tail(&o->stids, &ls->owner_link);
        dlist_add_tail(&open->locks, &ls->open_link);
    }
    ls->refs++;
    *lock_stid = ls;
out:
    if (o)
        owner_put_locked(o);
    st_unlock(ss);
    if (lo)
        lock_owner_put(lo);
    return st;
}

/* Unused: never granted (the first successful LOCK bumps the seqid to 1) and held by
 * nobody but the table and the caller (a concurrent LOCK through the same new stateid
 * may still succeed with it). */
static bool lock_stid_unused_locked(const struct state_stid *ls)
{
    return !ls->dead && ls->seqid == 0 && ls->refs <= 2;
}

void state_lock_new_owner_end(struct state_server *ss, struct state_stid *lock_stid, uint32_t lock_seqid,
                              bool granted, bool seqid_used)
{
    st_lock(ss);
    struct state_owner *o = lock_stid->owner;
    if (lock_stid->type != STATE_STID_LOCK || !o) {
        st_unlock(ss);
        return;
    }
    if (!granted && lock_stid_unused_locked(lock_stid)) {
        stid_unhash_locked(ss, lock_stid);
        if (o->nstids == 0 && !o->busy && !o->dead)
            owner_destroy_locked(ss, o); /* the caller's stid reference keeps o valid */
    }
    if (!o->dead && seqid_used && !o->busy) {
        /* the lock owner's seqid was consumed by this op: the next exist_lock_owner4
         * LOCK/LOCKU sends lock_seqid + 1; a reply cached for an older seqid is stale */
        o->seqid = lock_seqid;
        o->has_seq = true;
        o->reply_cached = false;
    }
    st_unlock(ss);
}

struct state_owner *state_stid_owner(struct state_stid *st) { return st->owner; }

struct lock_owner *state_stid_lock_owner(struct state_stid *st)
{
    return st->owner ? st->owner->lo : NULL;
}

void state_lock_stateid_bump(struct state_server *ss, struct state_stid *lock_stid,
                             struct state_stateid *out)
{
    st_lock(ss);
    lock_stid->seqid++;
    out->seqid = lock_stid->seqid;
    memcpy(out->other, lock_stid->other, STATE_STATEID_OTHER_SIZE);
    st_unlock(ss);
}

enum state_status state_release_lockowner(struct state_server *ss, uint64_t clientid,
                                          const void *owner, size_t owner_len,
                                          state_has_locks_fn has_locks, void *ctx)
{
    if (!owner || owner_len == 0 || owner_len > STATE_OWNER_MAX)
        return STATE_ERR_INVAL;
    st_lock(ss);
    struct state_client *c = client_find_locked(ss, clientid);
    if (!c || !c->confirmed) {
        st_unlock(ss);
        return STATE_ERR_STALE_CLIENTID;
    }
    client_renew_locked(ss, c);
    bool created;
    struct state_owner *o = owner_get_locked(ss, c, OWNER_LOCK, owner, owner_len, false, &created);
    if (!o) {
        st_unlock(ss);
        return STATE_OK;
    }
    struct state_stid **v;
    size_t n = collect_stids_locked(&o->stids, false, &v);
    uint64_t seqids_before = stids_seqid_sum_locked(v, n);
    st_unlock(ss);
    bool held = any_locks_held(v, n, has_locks, ctx); /* outside mu */
    st_lock(ss);
    /* as in state_free_stateid: a LOCK of the owner that ran or runs meanwhile holds a
     * reference (ours and the table's are the others), moved a seqid or added a stateid */
    held = held || o->nstids != n || stids_seqid_sum_locked(v, n) != seqids_before;
    for (size_t i = 0; i < n && !held; i++)
        held = v[i]->refs > 2;
    put_stids_locked(v, n);
    if (!held)
        owner_destroy_locked(ss, o);
    owner_put_locked(o);
    st_unlock(ss);
    return held ? STATE_ERR_LOCKS_HELD : STATE_OK;
}
