/*
 * Byte-range locks: LOCK, LOCKT, LOCKU, RELEASE_LOCKOWNER (RFC 7530 sections 9.1.5,
 * 16.10-16.12, 16.37; RFC 8881 sections 8.4, 18.10-18.12).
 *
 * Ranges live in the one lock space shared with NLM and local processes (design.md):
 *  - owner key = 8-byte big-endian clientid + the lock_owner4 bytes, host key = the
 *    clientid (made by state/ for lock stateids; LOCKT builds the same key);
 *  - file key = 2-byte big-endian export id + the backend handle, exactly as NLM
 *    (nlm_proc.c) names a file, so that an NFSv3+NLM client and an NFSv4 client on the
 *    same file exclude each other. (state/ names files by the wire handle instead; the
 *    has_locks callbacks below translate.)
 * Ranges: length 0 is INVAL; all ones means "to end of file" (the lock space's len 0);
 * offset + length beyond 2^64 - 1 is INVAL; the lock space clamps what lies beyond
 * OFF_MAX. Blocking types (READW/WRITEW) never wait here: the client polls on DENIED.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "nfs4/nfs4_internal.h"
#include "util/log.h"


/* ---- the file as the lock space sees it (struct nfs4_lock_file: nfs4_internal.h) ---- */

/* Lock space callback: a new descriptor of its own for the backing file. */
static int nfs4_lock_open_file(void *ctx, int flags)
{
    struct nfs4_lock_file *f = ctx;
    if (!f->ex->ops->open_fd)
        return -EOPNOTSUPP;
    int fd = f->ex->ops->open_fd(f->ex->fs, &f->fh, flags);
    if (fd < 0)
        log_debug("nfs4: opening the file for locking: %s", strerror(-fd));
    return fd;
}

static void nfs4_lock_file_bind(struct nfs4_lock_file *f, struct export *ex, const struct fs_fh *fh)
{
    f->ex = ex;
    f->fh = *fh;
    f->key[0] = (uint8_t)(ex->id >> 8);
    f->key[1] = (uint8_t)ex->id;
    memcpy(f->key + 2, fh->data, fh->len);
    f->id = (struct lock_file_id){f->key, 2u + fh->len, nfs4_lock_open_file, f};
}

/* The lock-space file of a state/ file key (a wire handle); false for a handle that
 * names no export object (pseudo fs, export gone): nothing can be locked there. */
static bool nfs4_lock_file_from_state_key(struct nfs4_server *srv, const void *file_key, size_t len,
                                          struct nfs4_lock_file *f)
{
    struct export *ex;
    struct fs_fh fh;
    if (len == 0 || len > FH_WIRE_MAX || fh_unwrap(&srv->fh_key, srv->exports, file_key, (uint32_t)len, &ex, &fh) < 0)
        return false;
    nfs4_lock_file_bind(f, ex, &fh);
    return true;
}

bool nfs4_lock_has_locks(void *ctx, struct lock_owner *lo, const void *file_key, size_t file_key_len)
{
    struct nfs4_server *srv = ctx;
    struct nfs4_lock_file f;
    if (!lo || !srv->locks || !nfs4_lock_file_from_state_key(srv, file_key, file_key_len, &f))
        return false;
    return lock_owner_ranges(srv->locks, lo, f.id.key, f.id.key_len, NULL, 0) > 0;
}

/* 4.1 CLOSE: the server may free the lock state instead of answering LOCKS_HELD
 * (RFC 8881 18.2.4): drop the owner's ranges on the file and report none held. */
bool nfs4_lock_free_locks(void *ctx, struct lock_owner *lo, const void *file_key, size_t file_key_len)
{
    struct nfs4_server *srv = ctx;
    struct nfs4_lock_file f;
    if (lo && srv->locks && nfs4_lock_file_from_state_key(srv, file_key, file_key_len, &f))
        lock_release_file(srv->locks, lo, &f.id);
    return false;
}

/* ---- arguments ---- */

/* RFC 8881 18.10.3: length 0, or a range past 2^64 - 1 (all ones excepted), is INVAL. */
static nfsstat4 nfs4_lock_range_check(uint64_t offset, uint64_t length)
{
    if (length == 0)
        return NFS4ERR_INVAL;
    if (length != UINT64_MAX && offset > UINT64_MAX - length)
        return NFS4ERR_INVAL;
    return NFS4_OK;
}

static bool nfs4_lock_type_valid(nfs_lock_type4 t)
{
    return t == READ_LT || t == WRITE_LT || t == READW_LT || t == WRITEW_LT;
}

static enum lock_type nfs4_lock_space_type(nfs_lock_type4 t)
{
    return t == WRITE_LT || t == WRITEW_LT ? LOCK_EXCLUSIVE : LOCK_SHARED;
}

/* The lock space's len: 0 = to end of file. */
static uint64_t nfs4_lock_len(uint64_t length)
{
    return length == UINT64_MAX ? 0 : length;
}

static nfsstat4 nfs4_lock_status(const struct nfs4_compound *c, enum lock_status st)
{
    switch (st) {
    case LOCK_OK:
    case LOCK_NOT_QUEUED:
        return NFS4_OK;
    case LOCK_DENIED:
    case LOCK_BLOCKED: /* never asked to wait */
    case LOCK_ALREADY_QUEUED:
        return NFS4ERR_DENIED;
    case LOCK_NOLOCKS: /* 4.1 has no RESOURCE: retry later */
        return c->minor == 0 ? NFS4ERR_RESOURCE : NFS4ERR_DELAY;
    case LOCK_ACCESS:
        return NFS4ERR_ACCESS;
    case LOCK_STALE:
        return NFS4ERR_STALE;
    case LOCK_IO:
        return NFS4ERR_IO;
    case LOCK_INVAL:
        return NFS4ERR_INVAL;
    }
    return NFS4ERR_SERVERFAULT;
}

/* The current filehandle as a lock-space file: only export objects can be locked. */
static nfsstat4 nfs4_lock_current_file(struct nfs4_compound *c, struct nfs4_lock_file *f)
{
    if (c->cur.kind != NFS4_FH_EXPORT)
        return NFS4ERR_ISDIR; /* pseudo-fs directories */
    if (!c->srv->locks)
        return NFS4ERR_NOTSUPP;
    nfs4_lock_file_bind(f, c->cur.ex, &c->cur.fh);
    return NFS4_OK;
}

/* LOCKT names a file without a stateid: check the object's type ourselves. */
static nfsstat4 nfs4_lock_require_file(struct nfs4_compound *c)
{
    struct stat st;
    if (c->cur.kind != NFS4_FH_EXPORT)
        return NFS4ERR_ISDIR;
    nfsstat4 s = nfs4_fh_getattr(&c->cur, &st);
    if (s != NFS4_OK)
        return s;
    if (S_ISREG(st.st_mode))
        return NFS4_OK;
    if (S_ISDIR(st.st_mode))
        return NFS4ERR_ISDIR;
    if (S_ISLNK(st.st_mode))
        return NFS4ERR_SYMLINK;
    return c->minor == 0 ? NFS4ERR_INVAL : NFS4ERR_WRONG_TYPE;
}

/* ---- conflicts: LOCK4denied ---- */

static uint64_t nfs4_get_be64(const uint8_t *p)
{
    return (uint64_t)xdr_get_be32(p) << 32 | xdr_get_be32(p + 4);
}

/* Does a lock-space owner key name an NFSv4 lock owner of this boot? Ours start with
 * the clientid, whose high 32 bits are the boot epoch (NLM keys start with "nlm"). */
static bool nfs4_lock_key_is_v4(struct nfs4_compound *c, const uint8_t *key, size_t len, uint64_t *clientid)
{
    if (len <= NFS4_LOCK_CLIENTID_LEN)
        return false;
    *clientid = nfs4_get_be64(key);
    return (uint32_t)(*clientid >> 32) == state_boot_epoch(c->srv->state);
}

/* Copy bytes into the request arena (they must outlive the holder's reference until the
 * result is encoded). Empty on failure: the owner is informative only. */
static void nfs4_lock_owner_bytes(struct nfs4_compound *c, const void *p, size_t len, lock_owner4 *out)
{
    if (len > NFS4_OPAQUE_LIMIT)
        len = NFS4_OPAQUE_LIMIT;
    uint8_t *copy = len ? xdr_arena_alloc(c->call->args.arena, len, 1) : NULL;
    if (!copy) {
        out->owner = (struct xdr_opaque){0, NULL};
        return;
    }
    memcpy(copy, p, len);
    out->owner = (struct xdr_opaque){(uint32_t)len, copy};
}

/* LOCK4denied from the lock space's conflict; releases the holder reference. */
static void nfs4_lock_denied(struct nfs4_compound *c, struct lock_conflict *k, LOCK4denied *d)
{
    memset(d, 0, sizeof(*d));
    d->offset = k->start;
    d->length = k->len == 0 ? UINT64_MAX : k->len;
    d->locktype = k->type == LOCK_EXCLUSIVE ? WRITE_LT : READ_LT;
    if (!k->holder) { /* a local process */
        char name[32];
        int n = snprintf(name, sizeof(name), "local:%d", (int)k->pid);
        nfs4_lock_owner_bytes(c, name, n > 0 ? (size_t)n : 0, &d->owner);
        return;
    }
    size_t klen;
    const uint8_t *key = lock_owner_key(k->holder, &klen);
    uint64_t clientid;
    if (nfs4_lock_key_is_v4(c, key, klen, &clientid)) {
        d->owner.clientid = clientid;
        nfs4_lock_owner_bytes(c, key + NFS4_LOCK_CLIENTID_LEN, klen - NFS4_LOCK_CLIENTID_LEN, &d->owner);
    } else { /* NLM: its key (caller name, svid, handle) names the holder well enough */
        nfs4_lock_owner_bytes(c, key, klen, &d->owner);
    }
    lock_owner_put(k->holder);
    k->holder = NULL;
}

/* A conflict held by a courtesy client (lease expired, state kept as a courtesy) goes
 * away: expire that client (which releases its locks) and let the caller retry once. */
static bool nfs4_lock_expire_courtesy_holder(struct nfs4_compound *c, const struct lock_conflict *k)
{
    if (!k->holder)
        return false;
    size_t klen;
    const uint8_t *key = lock_owner_key(k->holder, &klen);
    uint64_t clientid;
    if (!nfs4_lock_key_is_v4(c, key, klen, &clientid))
        return false;
    return state_client_expire_if_courtesy_id(c->srv->state, clientid);
}

static void nfs4_lock_conflict_drop(struct lock_conflict *k)
{
    if (k->holder)
        lock_owner_put(k->holder);
    k->holder = NULL;
}

/* ---- LOCK ---- */

/* The lock stateid LOCK acts on, found or made from the locker4; in 4.0 also starts the
 * seqid of the owner the RFC says is checked (RFC 7530 16.10.5): the open owner with
 * open_to_lock_owner4, the lock owner otherwise. *lock_stid referenced. */
static nfsstat4 nfs4_lock_locker(struct nfs4_compound *c, const locker4 *l, struct state_stid **lock_stid)
{
    struct state_stid *st;
    nfsstat4 s;
    *lock_stid = NULL;
    if (!l->new_lock_owner) {
        const exist_lock_owner4 *e = &l->lock_owner;
        return nfs4_stid_lookup_seqid(c, &e->lock_stateid, STATE_STID_LOCK, e->lock_seqid, lock_stid);
    }
    const open_to_lock_owner4 *o = &l->open_owner;
    if (c->minor == 0) {
        /* 4.0: the new lock owner's clientid first (RFC 7530 16.10.5): an unknown one
         * is STALE_CLIENTID (EXPIRED once discarded), before the open stateid counts */
        struct state_client *cl;
        s = nfs4_state_status(state_client_lookup(c->srv->state, o->lock_owner.clientid, &cl));
        if (s != NFS4_OK)
            return s;
        state_client_put(cl);
    }
    s = nfs4_stid_lookup_seqid(c, &o->open_stateid, STATE_STID_OPEN, o->open_seqid, &st);
    if (s != NFS4_OK || c->replay)
        return s;
    /* 4.0: the lock owner must be of the open's client (4.1 ignores the clientid) */
    if (c->minor == 0 && o->lock_owner.clientid != state_client_id(state_stid_client(st)))
        s = NFS4ERR_BAD_STATEID;
    if (s == NFS4_OK) {
        const struct xdr_opaque *ob = &o->lock_owner.owner;
        if (ob->len == 0 || ob->len > NFS4_OPAQUE_LIMIT)
            s = NFS4ERR_INVAL;
        else
            s = nfs4_state_status(
                state_lock_stateid_get(c->srv->state, st, ob->val, ob->len, o->lock_seqid, lock_stid));
    }
    state_stid_put(st);
    return s;
}

/* The open's modes must allow the lock: a write lock needs write access, a read lock
 * read access (RFC 8881 18.10.4 lets the server refuse with OPENMODE; POSIX refuses
 * F_WRLCK on a descriptor not open for writing the same way). */
static nfsstat4 nfs4_lock_openmode(struct state_stid *lock_stid, nfs_lock_type4 t)
{
    uint32_t access = state_stid_share_access(lock_stid);
    uint32_t need = nfs4_lock_space_type(t) == LOCK_EXCLUSIVE ? STATE_SHARE_ACCESS_WRITE : STATE_SHARE_ACCESS_READ;
    return (access & need) ? NFS4_OK : NFS4ERR_OPENMODE;
}

static nfsstat4 nfs4_lock_take(struct nfs4_compound *c, const LOCK4args *a, struct state_stid *lock_stid,
                               LOCK4res *r)
{
    struct lock_owner *lo = state_stid_lock_owner(lock_stid);
    struct nfs4_lock_file f;
    nfsstat4 s = nfs4_lock_current_file(c, &f);
    if (s != NFS4_OK)
        return s;
    if (!lo)
        return NFS4ERR_SERVERFAULT; /* state/ was created without the lock space */
    struct lock_req req = {
        .type = nfs4_lock_space_type(a->locktype),
        .start = a->offset,
        .len = nfs4_lock_len(a->length),
        .wait = false, /* READW/WRITEW: DENIED, the client polls (4.0 has no callback) */
    };
    struct lock_conflict k = {0};
    enum lock_status ls = lock_lock(c->srv->locks, lo, &f.id, &req, &k);
    if (ls == LOCK_DENIED && nfs4_lock_expire_courtesy_holder(c, &k)) {
        nfs4_lock_conflict_drop(&k);
        ls = lock_lock(c->srv->locks, lo, &f.id, &req, &k);
    }
    if (ls == LOCK_DENIED) {
        if (a->locktype == READW_LT || a->locktype == WRITEW_LT) /* 4.1+: CB_NOTIFY_LOCK later */
            nfs4_lock_notify_add(c, &f, req.type, req.start, req.len, lo);
        nfs4_lock_denied(c, &k, &r->denied);
        return NFS4ERR_DENIED;
    }
    nfs4_lock_conflict_drop(&k);
    return nfs4_lock_status(c, ls);
}

/* 4.0: does a LOCK result consume the lock_seqid of its open_to_lock_owner4? The
 * seqid-mutating rule of RFC 7530 9.1.7, as the engine applies it to the open owner. */
static bool nfs4_lock_seqid_used(const struct nfs4_compound *c, nfsstat4 s)
{
    return c->minor == 0 && !(s == NFS4ERR_STALE_CLIENTID || s == NFS4ERR_STALE_STATEID ||
                              s == NFS4ERR_BAD_STATEID || s == NFS4ERR_BAD_SEQID || s == NFS4ERR_BADXDR ||
                              s == NFS4ERR_RESOURCE || s == NFS4ERR_NOFILEHANDLE || s == NFS4ERR_MOVED);
}

NFS4_OP(lock)
{
    const LOCK4args *a = &arg->oplock;
    LOCK4res *r = &res->oplock;
    struct state_stid *lock_stid = NULL;

    /* The seqid first: in 4.0 every later error (INVAL included) consumes it. */
    nfsstat4 s = nfs4_lock_locker(c, &a->locker, &lock_stid);
    if (s != NFS4_OK || c->replay)
        return r->status = s;
    s = nfs4_lock_type_valid(a->locktype) ? nfs4_lock_range_check(a->offset, a->length) : NFS4ERR_INVAL;
    if (s == NFS4_OK)
        s = nfs4_state_status(state_grace_check(c->srv->state, state_stid_client(lock_stid), a->reclaim));
    if (s == NFS4_OK)
        s = nfs4_lock_openmode(lock_stid, a->locktype);
    if (s == NFS4_OK)
        s = nfs4_lock_take(c, a, lock_stid, r);
    if (s == NFS4_OK) {
        struct state_stateid out;
        state_lock_stateid_bump(c->srv->state, lock_stid, &out);
        nfs4_stateid_from_state(&out, &r->resok4.lock_stateid);
        nfs4_set_current_stateid(c, &r->resok4.lock_stateid);
    }
    if (a->locker.new_lock_owner) /* a failed new owner leaves no state behind */
        state_lock_new_owner_end(c->srv->state, lock_stid, a->locker.open_owner.lock_seqid, s == NFS4_OK,
                                 nfs4_lock_seqid_used(c, s));
    state_stid_put(lock_stid);
    return r->status = s;
}

/* ---- LOCKT ---- */

NFS4_OP(lockt)
{
    const LOCKT4args *a = &arg->oplockt;
    LOCKT4res *r = &res->oplockt;

    if (!nfs4_lock_type_valid(a->locktype))
        return r->status = NFS4ERR_INVAL;
    nfsstat4 s = nfs4_lock_range_check(a->offset, a->length);
    if (s != NFS4_OK)
        return r->status = s;
    const struct xdr_opaque *ob = &a->owner.owner;
    if (ob->len == 0 || ob->len > NFS4_OPAQUE_LIMIT)
        return r->status = NFS4ERR_INVAL;
    /* 4.0: the clientid must be live (this renews it); 4.1: the session's client. */
    uint64_t clientid;
    if (c->minor == 0) {
        struct state_client *cl;
        s = nfs4_state_status(state_client_lookup(c->srv->state, a->owner.clientid, &cl));
        if (s != NFS4_OK)
            return r->status = s;
        clientid = state_client_id(cl);
        state_client_put(cl);
    } else {
        clientid = state_client_id(c->client);
    }
    if (state_in_grace(c->srv->state))
        return r->status = NFS4ERR_GRACE; /* locks may still be reclaimed */
    if ((s = nfs4_lock_require_file(c)) != NFS4_OK)
        return r->status = s;
    struct nfs4_lock_file f;
    if ((s = nfs4_lock_current_file(c, &f)) != NFS4_OK)
        return r->status = s;

    uint8_t key[NFS4_LOCK_CLIENTID_LEN + NFS4_OPAQUE_LIMIT], host[NFS4_LOCK_CLIENTID_LEN];
    xdr_put_be32(host, (uint32_t)(clientid >> 32));
    xdr_put_be32(host + 4, (uint32_t)clientid);
    memcpy(key, host, sizeof(host));
    memcpy(key + sizeof(host), ob->val, ob->len);
    struct lock_owner *lo = lock_owner_get(c->srv->locks, key, sizeof(host) + ob->len, host, sizeof(host));
    if (!lo)
        return r->status = nfs4_lock_status(c, LOCK_NOLOCKS);
    struct lock_conflict k = {0};
    enum lock_type type = nfs4_lock_space_type(a->locktype);
    uint64_t len = nfs4_lock_len(a->length);
    enum lock_status ls = lock_test(c->srv->locks, lo, &f.id, type, a->offset, len, &k);
    if (ls == LOCK_DENIED && nfs4_lock_expire_courtesy_holder(c, &k)) {
        nfs4_lock_conflict_drop(&k);
        ls = lock_test(c->srv->locks, lo, &f.id, type, a->offset, len, &k);
    }
    lock_owner_put(lo);
    if (ls == LOCK_DENIED) {
        nfs4_lock_denied(c, &k, &r->denied);
        return r->status = NFS4ERR_DENIED;
    }
    nfs4_lock_conflict_drop(&k);
    return r->status = nfs4_lock_status(c, ls);
}

/* ---- LOCKU ---- */

NFS4_OP(locku)
{
    const LOCKU4args *a = &arg->oplocku;
    LOCKU4res *r = &res->oplocku;

    struct state_stid *st;
    nfsstat4 s = nfs4_stid_lookup_seqid(c, &a->lock_stateid, STATE_STID_LOCK, a->seqid, &st);
    if (s != NFS4_OK || c->replay)
        return r->status = s;
    /* Any legal locktype is accepted and means nothing (RFC 7530 16.12.4). */
    s = nfs4_lock_type_valid(a->locktype) ? nfs4_lock_range_check(a->offset, a->length) : NFS4ERR_INVAL;
    struct nfs4_lock_file f;
    if (s == NFS4_OK)
        s = nfs4_lock_current_file(c, &f);
    struct lock_owner *lo = state_stid_lock_owner(st);
    if (s == NFS4_OK && !lo)
        s = NFS4ERR_SERVERFAULT;
    if (s == NFS4_OK) /* unlocking what is not locked is fine (POSIX) */
        s = nfs4_lock_status(c, lock_unlock(c->srv->locks, lo, &f.id, a->offset, nfs4_lock_len(a->length)));
    if (s == NFS4_OK) {
        struct state_stateid out;
        state_lock_stateid_bump(c->srv->state, st, &out);
        nfs4_stateid_from_state(&out, &r->lock_stateid);
        nfs4_set_current_stateid(c, &r->lock_stateid);
    }
    state_stid_put(st);
    return r->status = s;
}

/* ---- RELEASE_LOCKOWNER (4.0) ---- */

NFS4_OP(release_lockowner)
{
    const RELEASE_LOCKOWNER4args *a = &arg->oprelease_lockowner;
    RELEASE_LOCKOWNER4res *r = &res->oprelease_lockowner;
    const struct xdr_opaque *ob = &a->lock_owner.owner;

    if (ob->len == 0 || ob->len > NFS4_OPAQUE_LIMIT)
        return r->status = NFS4ERR_INVAL;
    enum state_status st = state_release_lockowner(c->srv->state, a->lock_owner.clientid, ob->val, ob->len,
                                                   nfs4_lock_has_locks, c->srv);
    return r->status = nfs4_state_status(st);
}
