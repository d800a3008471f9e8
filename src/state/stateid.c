/*
 * Stateids and the per-file state they hang on.
 *
 * other = boot epoch (4, big-endian) | counter (7) | type (1). The epoch makes a stateid
 * of a previous boot recognisable (STALE_STATEID) without remembering anything about
 * that boot; the counter never repeats within a boot. The seqid starts at 1 (lock
 * stateids: at 0, made 1 by the LOCK that creates them) and grows with every change of
 * the state (upgrade, downgrade, OPEN_CONFIRM, LOCK, LOCKU, CLOSE).
 */
#include "state/state_internal.h"

#include <stdlib.h>
#include <string.h>

static uint64_t other_hash(struct state_server *ss, const uint8_t other[STATE_STATEID_OTHER_SIZE])
{
    return st_hash(other, STATE_STATEID_OTHER_SIZE, ss->seed ^ 0x737469ull);
}

static uint64_t file_hash(struct state_server *ss, const void *key, size_t len)
{
    return st_hash(key, len, ss->seed ^ 0x66696c65ull);
}

/* ---- files ---- */

struct state_file *file_get_locked(struct state_server *ss, const void *key, size_t len, bool create)
{
    if (!key || len == 0 || len > STATE_FILE_KEY_MAX)
        return NULL;
    uint64_t h = file_hash(ss, key, len);
    for (struct hnode *e = htab_bucket(&ss->files, h); e; e = e->next) {
        struct state_file *f = container_of(e, struct state_file, h);
        if (f->key_len == len && memcmp(f->key, key, len) == 0) {
            f->refs++;
            return f;
        }
    }
    if (!create)
        return NULL;
    struct state_file *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->ss = ss;
    f->refs = 1;
    f->key_len = len;
    memcpy(f->key, key, len);
    dlist_init(&f->opens);
    dlist_init(&f->locks);
    dlist_init(&f->delegs);
    dlist_init(&f->awaiting);
    if (!htab_insert(&ss->files, &f->h, h)) {
        free(f);
        return NULL;
    }
    ss->nfiles++;
    return f;
}

/* The table holds no reference: a file lives while a stid or a caller uses it. */
void file_put_locked(struct state_file *f)
{
    if (--f->refs)
        return;
    htab_remove(&f->ss->files, &f->h);
    f->ss->nfiles--;
    free(f);
}

/* ---- stids ---- */

struct state_stid *stid_new_locked(struct state_server *ss, enum state_stid_type type,
                                   struct state_client *c, struct state_file *f)
{
    if (ss->nstids >= ss->p.max_stids)
        return NULL;
    struct state_stid *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->ss = ss;
    st->refs = 1; /* the table's */
    st->type = type;
    st_put_be32(st->other, ss->epoch);
    uint64_t n = ss->next_stid++;
    for (int i = 10; i >= 4; i--, n >>= 8)
        st->other[i] = (uint8_t)n;
    st->other[11] = (uint8_t)type;
    st->seqid = type == STATE_STID_LOCK ? 0 : 1;
    dlist_init(&st->file_link);
    dlist_init(&st->owner_link);
    dlist_init(&st->locks);
    dlist_init(&st->open_link);
    dlist_init(&st->recall_link);
    if (!htab_insert(&ss->stids, &st->h, other_hash(ss, st->other))) {
        free(st);
        return NULL;
    }
    st->client = c;
    c->refs++;
    st->file = f;
    f->refs++;
    ss->nstids++;
    return st;
}

void stid_unhash_locked(struct state_server *ss, struct state_stid *st)
{
    if (st->dead)
        return;
    st->dead = true;
    htab_remove(&ss->stids, &st->h);
    dlist_del(&st->file_link);
    dlist_del(&st->owner_link);
    switch (st->type) {
    case STATE_STID_OPEN: {
        struct dlist *pos, *tmp;
        dlist_for_each_safe(pos, tmp, &st->locks)
            stid_unhash_locked(ss, container_of(pos, struct state_stid, open_link));
        break;
    }
    case STATE_STID_LOCK:
        dlist_del(&st->open_link);
        break;
    case STATE_STID_DELEG:
        dlist_del(&st->recall_link);
        if (st->revoked)
            st->client->revoked_delegs--;
        ss->ndelegs--;
        break;
    default:
        break;
    }
    if (st->owner)
        st->owner->nstids--;
    ss->nstids--;
    stid_put_locked(st);
}

/* 4.0 CLOSE: the open, just unhashed, goes back into the table (dead) as its owner's
 * last closed open, so that a retransmitted CLOSE finds its owner's reply cache. The
 * table's reference is the owner's `closed` field. False: no memory (the replay then
 * answers BAD_STATEID, as without this). */
bool stid_keep_closed_locked(struct state_server *ss, struct state_stid *st)
{
    struct state_owner *o = st->owner;
    if (!o || st->type != STATE_STID_OPEN || !st->dead || o->closed == st)
        return false;
    if (o->closed)
        stid_forget_closed_locked(ss, o->closed);
    if (!htab_insert(&ss->stids, &st->h, other_hash(ss, st->other)))
        return false;
    st->refs++;
    o->closed = st;
    return true;
}

/* The owner's next seqid-mutating op, or its end: the closed open leaves the table. */
void stid_forget_closed_locked(struct state_server *ss, struct state_stid *st)
{
    struct state_owner *o = st->owner;
    if (!o || o->closed != st)
        return;
    o->closed = NULL;
    htab_remove(&ss->stids, &st->h);
    stid_put_locked(st);
}

void stid_put_locked(struct state_stid *st)
{
    if (--st->refs)
        return;
    if (st->owner)
        owner_put_locked(st->owner);
    if (st->open)
        stid_put_locked(st->open);
    file_put_locked(st->file);
    client_put_locked(st->client);
    free(st);
}

enum state_special state_stateid_special(const struct state_stateid *sid)
{
    bool zero = true, ones = true;
    for (int i = 0; i < STATE_STATEID_OTHER_SIZE; i++) {
        zero &= sid->other[i] == 0;
        ones &= sid->other[i] == 0xff;
    }
    if (zero && sid->seqid == 0)
        return STATE_SPECIAL_ANONYMOUS;
    if (ones && sid->seqid == UINT32_MAX)
        return STATE_SPECIAL_BYPASS;
    if (zero && sid->seqid == 1)
        return STATE_SPECIAL_CURRENT;
    if (zero && sid->seqid == UINT32_MAX)
        return STATE_SPECIAL_INVALID;
    return STATE_SPECIAL_NONE;
}

static enum state_status lookup_locked(struct state_server *ss, struct state_client *client,
                                       const struct state_stateid *sid, unsigned types,
                                       unsigned flags, struct state_stid **out)
{
    if (state_stateid_special(sid) != STATE_SPECIAL_NONE)
        return STATE_ERR_BAD_STATEID;
    uint32_t epoch = (uint32_t)sid->other[0] << 24 | (uint32_t)sid->other[1] << 16 |
                     (uint32_t)sid->other[2] << 8 | sid->other[3];
    if (epoch != ss->epoch)
        return STATE_ERR_STALE_STATEID;
    struct state_stid *st = NULL;
    for (struct hnode *e = htab_bucket(&ss->stids, other_hash(ss, sid->other)); e; e = e->next) {
        struct state_stid *x = container_of(e, struct state_stid, h);
        if (memcmp(x->other, sid->other, STATE_STATEID_OTHER_SIZE) == 0) {
            st = x;
            break;
        }
    }
    if (!st || (st->dead && !(flags & STATE_LOOKUP_ALLOW_CLOSED))) {
        /* A dead stid still hashed is an owner's last closed open (stid_keep_closed) */
        if (!client && expired_stateid_locked(ss, sid->other))
            return STATE_ERR_EXPIRED; /* 4.0: its client's state was discarded */
        return STATE_ERR_BAD_STATEID;
    }
    if (!(st->type & types) || (client && st->client != client))
        return STATE_ERR_BAD_STATEID;
    if (st->revoked && !(flags & STATE_LOOKUP_ALLOW_REVOKED))
        return STATE_ERR_DELEG_REVOKED;
    if (st->admin_revoked)
        return STATE_ERR_ADMIN_REVOKED;
    if (!(sid->seqid == 0 && (flags & STATE_LOOKUP_V41))) {
        if (sid->seqid < st->seqid)
            return STATE_ERR_OLD_STATEID;
        if (sid->seqid > st->seqid)
            return STATE_ERR_BAD_STATEID;
    }
    client_renew_locked(ss, st->client);
    st->refs++;
    *out = st;
    return STATE_OK;
}

enum state_status state_stateid_lookup(struct state_server *ss, struct state_client *client,
                                       const struct state_stateid *sid, unsigned types,
                                       unsigned flags, struct state_stid **out)
{
    st_lock(ss);
    enum state_status st = lookup_locked(ss, client, sid, types, flags, out);
    st_unlock(ss);
    return st;
}

struct state_stid *state_stid_ref(struct state_stid *st)
{
    st_lock(st->ss);
    st->refs++;
    st_unlock(st->ss);
    return st;
}

void state_stid_put(struct state_stid *st)
{
    if (!st)
        return;
    struct state_server *ss = st->ss;
    st_lock(ss);
    stid_put_locked(st);
    st_unlock(ss);
}

enum state_stid_type state_stid_type(const struct state_stid *st) { return st->type; }

void state_stid_stateid(struct state_stid *st, struct state_stateid *out)
{
    st_lock(st->ss);
    out->seqid = st->seqid;
    memcpy(out->other, st->other, STATE_STATEID_OTHER_SIZE);
    st_unlock(st->ss);
}

struct state_client *state_stid_client(struct state_stid *st) { return st->client; }

bool state_stid_closed(struct state_stid *st)
{
    st_lock(st->ss);
    bool dead = st->dead;
    st_unlock(st->ss);
    return dead;
}

const void *state_stid_file_key(const struct state_stid *st, size_t *len)
{
    *len = st->file->key_len;
    return st->file->key;
}

static struct state_stid *open_of(struct state_stid *st)
{
    return st->type == STATE_STID_LOCK ? st->open : st->type == STATE_STID_OPEN ? st : NULL;
}

uint32_t state_stid_share_access(struct state_stid *st)
{
    st_lock(st->ss);
    struct state_stid *o = open_of(st);
    uint32_t v = o ? o->share_access : 0;
    st_unlock(st->ss);
    return v;
}

uint32_t state_stid_share_deny(struct state_stid *st)
{
    st_lock(st->ss);
    struct state_stid *o = open_of(st);
    uint32_t v = o ? o->share_deny : 0;
    st_unlock(st->ss);
    return v;
}

enum state_status state_stid_check_io(struct state_stid *st, bool write)
{
    st_lock(st->ss);
    enum state_status r = STATE_OK;
    struct state_stid *o = open_of(st);
    if (st->revoked)
        r = STATE_ERR_DELEG_REVOKED;
    else if (st->dead || (o && o->dead))
        r = STATE_ERR_BAD_STATEID;
    else if (o) /* any open may READ: a write-only one too (knfsd; Linux partial-page writes) */
        r = (o->share_access & (write ? STATE_SHARE_ACCESS_WRITE : STATE_SHARE_ACCESS_BOTH))
                ? STATE_OK : STATE_ERR_OPENMODE;
    else if (st->type == STATE_STID_DELEG && write && st->dtype != STATE_DELEG_WRITE)
        r = STATE_ERR_OPENMODE;
    st_unlock(st->ss);
    return r;
}

enum state_status state_test_stateid(struct state_server *ss, struct state_client *client,
                                     const struct state_stateid *sid)
{
    struct state_stid *st;
    enum state_status r = state_stateid_lookup(ss, client, sid, ~0u, STATE_LOOKUP_V41, &st);
    if (r == STATE_OK)
        state_stid_put(st);
    return r;
}

enum state_status state_free_stateid(struct state_server *ss, struct state_client *client,
                                     const struct state_stateid *sid,
                                     state_has_locks_fn has_locks, void *ctx)
{
    struct state_stid *st;
    enum state_status r = state_stateid_lookup(ss, client, sid, ~0u,
                                               STATE_LOOKUP_V41 | STATE_LOOKUP_ALLOW_REVOKED, &st);
    if (r != STATE_OK)
        return r;
    st_lock(ss);
    uint32_t seqid_before = st->seqid;
    st_unlock(ss);
    if (st->type == STATE_STID_LOCK && has_locks) {
        size_t klen;
        const void *key = state_stid_file_key(st, &klen);
        if (has_locks(ctx, st->owner ? st->owner->lo : NULL, key, klen)) /* outside mu */
            r = STATE_ERR_LOCKS_HELD;
    }
    st_lock(ss);
    if (r == STATE_OK) {
        /* A LOCK or LOCKU may have used the lock stateid meanwhile (the lock space was
         * asked outside mu): one still running holds a reference (ours and the table's
         * are the others), one that ended moved the seqid. Either way it may hold locks
         * now, so it is not freed (a LOCK would otherwise hand out a freed stateid). */
        bool used_meanwhile = st->type == STATE_STID_LOCK && (st->refs > 2 || st->seqid != seqid_before);
        if (used_meanwhile || st->type == STATE_STID_OPEN || (st->type == STATE_STID_DELEG && !st->revoked))
            r = STATE_ERR_LOCKS_HELD;
        else
            stid_unhash_locked(ss, st);
    }
    stid_put_locked(st);
    st_unlock(ss);
    return r;
}
