/*
 * Opens: OPEN, OPEN_CONFIRM, OPEN_DOWNGRADE, CLOSE, OPENATTR (RFC 7530 sections 9,
 * 16.16-16.19, 16.2; RFC 8881 sections 9, 18.16-18.18, 18.2).
 *
 * OPEN runs in three steps, never holding the state lock across the backend:
 *  1. the file: by name in the current directory (CLAIM_NULL, CLAIM_DELEGATE_CUR,
 *     CLAIM_DELEGATE_PREV), created as the createhow4 says, or the current filehandle
 *     itself (CLAIM_PREVIOUS, 4.1 CLAIM_FH, CLAIM_DELEG_CUR_FH, CLAIM_DELEG_PREV_FH);
 *     then its type and the caller's access;
 *  2. truncation (UNCHECKED4 with size 0 on an existing file), after other clients'
 *     delegations are recalled;
 *  3. state_open: share reservations, the open stateid, a delegation offer.
 * CLAIM_DELEGATE_PREV / CLAIM_DELEG_PREV_FH reclaim a delegation that the client's
 * previous incarnation held (the client restarted, the server did not; state.h
 * "Delegation recovery", policy in state/deleg_recovery.c): the open is a CLAIM_NULL
 * open of the existing file (a reclaim never creates one: the delegated file existed,
 * so a missing name is RECLAIM_BAD) and carries a delegation of the same type with a
 * new stateid; RECLAIM_BAD when none awaits, GRACE during the grace period.
 *
 * EXCLUSIVE4 / EXCLUSIVE4_1 keep the client's verifier in the new file's atime and
 * mtime seconds (high bits cleared), as NFSv3 CREATE does here (nfs3_proc_create.c):
 * a retransmitted OPEN finds its own file and succeeds; another verifier gets EXIST.
 * The result's attrset names time_access and time_modify so the client sets the real
 * times afterwards (RFC 8881 18.16.4).
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "nfs4/nfs4_attr.h"
#include "nfs4/nfs4_internal.h"


/* Modes of files created without a mode attribute. An exclusive create's file gets its
 * real attributes from the client's SETATTR right after. */
#define NFS4_OPEN_DEFAULT_MODE 0644
#define NFS4_OPEN_EXCLUSIVE_MODE 0600

/* share_access bits beyond READ/WRITE: 4.1 delegation wants and signals. */
#define NFS4_SHARE_WANT_SIGNAL_MASK \
    (OPEN4_SHARE_ACCESS_WANT_SIGNAL_DELEG_WHEN_RESRC_AVAIL | OPEN4_SHARE_ACCESS_WANT_PUSH_DELEG_WHEN_UNCONTENDED)

/* A write delegation's space limit: no limit to speak of (the client may fill the
 * file without asking). */
#define NFS4_DELEG_SPACE_LIMIT UINT64_MAX

struct nfs4_open {
    struct nfs4_compound *c;
    const OPEN4args *a;
    OPEN4resok *ok;
    struct state_client *client;
    struct state_owner *owner;
    uint32_t access, deny, want; /* share bits, and the 4.1 want (OPEN4_SHARE_ACCESS_WANT_*) */
    enum state_open_claim claim;
    const stateid4 *deleg_stateid; /* CLAIM_DELEGATE_CUR / CLAIM_DELEG_CUR_FH */
    enum state_deleg_type prev_type; /* CLAIM_DELEGATE_PREV: the delegation awaiting recovery */
    struct nfs4_fh file;           /* the file opened */
    struct stat st;                /* and its attributes */
    bool created;     /* this OPEN made the file (or found its own exclusive create) */
    bool new_file;    /* ... and it did not exist before this request */
    bool truncate;    /* UNCHECKED4 size 0 on an existing file */
    uint64_t change_before, change_after;
    uint32_t attrset[NFS4_ATTR_WORDS];
};

/* ---- share_access / share_deny ---- */

static nfsstat4 nfs4_open_share(struct nfs4_open *o)
{
    uint32_t access = o->a->share_access;
    uint32_t extra = o->c->minor >= 1 ? OPEN4_SHARE_ACCESS_WANT_DELEG_MASK | NFS4_SHARE_WANT_SIGNAL_MASK : 0;
    if (access & ~(OPEN4_SHARE_ACCESS_BOTH | extra))
        return NFS4ERR_INVAL;
    o->access = access & OPEN4_SHARE_ACCESS_BOTH;
    o->want = access & OPEN4_SHARE_ACCESS_WANT_DELEG_MASK;
    o->deny = o->a->share_deny;
    if (o->access == 0 || o->deny > OPEN4_SHARE_DENY_BOTH || o->want > OPEN4_SHARE_ACCESS_WANT_CANCEL)
        return NFS4ERR_INVAL;
    return NFS4_OK;
}

/* ---- the file's type and the caller's access ---- */

/* Only regular files are opened (RFC 7530 16.16.6, RFC 8881 18.16.3). 4.0 answers
 * SYMLINK for every other non-directory, as knfsd reads 16.16.6. */
static nfsstat4 nfs4_open_check_type(const struct nfs4_compound *c, const struct stat *st)
{
    if (S_ISREG(st->st_mode))
        return NFS4_OK;
    if (S_ISDIR(st->st_mode))
        return NFS4ERR_ISDIR;
    if (S_ISLNK(st->st_mode) || c->minor == 0)
        return NFS4ERR_SYMLINK;
    return NFS4ERR_WRONG_TYPE;
}

/* The caller may read (or, like knfsd, execute: a client must read a 0711 program to
 * run it) and write as asked. The backend lets a file's owner do both whatever the mode
 * (a file created 0444 by its writer). */
static nfsstat4 nfs4_open_check_access(struct nfs4_open *o)
{
    const struct nfs4_fh *f = &o->file;
    if (o->access & OPEN4_SHARE_ACCESS_READ) {
        int err = NFS4_FS(f, permission, &f->cred, &o->st, FS_MAY_READ);
        if (err && NFS4_FS(f, permission, &f->cred, &o->st, FS_MAY_EXEC) == 0)
            err = 0;
        if (err)
            return nfs4_errno(err);
    }
    if (o->access & OPEN4_SHARE_ACCESS_WRITE) {
        int err = NFS4_FS(f, permission, &f->cred, &o->st, FS_MAY_WRITE);
        if (err)
            return nfs4_errno(err);
    }
    return NFS4_OK;
}

/* ---- creating ---- */

struct nfs4_open_create {
    struct nfs4_attr_set set;
    struct fs_setattr sa;   /* the attributes, as the backend takes them */
    mode_t mode;            /* the new file's mode */
    bool exclusive;         /* EXCLUSIVE4 / EXCLUSIVE4_1: verifier below */
    time_t v_atime, v_mtime;
};

static nfsstat4 nfs4_open_decode_attrs(struct nfs4_open *o, const fattr4 *fa, struct nfs4_open_create *k,
                                       mode_t dflt)
{
    int rc = nfs4_attr_decode_set(fa->attrmask.val, fa->attrmask.len, fa->attr_vals.val, fa->attr_vals.len,
                                  &k->set, o->attrset, o->c->minor);
    if (rc)
        return (nfsstat4)rc;
    nfs4_attr_set_to_fs(&k->set, dflt, &k->sa);
    k->mode = (k->sa.mask & FS_SET_MODE) ? (k->sa.mode & 07777) : dflt;
    k->sa.mask &= ~(unsigned)FS_SET_MODE; /* the create call takes it */
    if (o->file.cred.uid != 0 && (k->sa.mask & (FS_SET_UID | FS_SET_GID))) {
        /* a new file belongs to its creator (as knfsd): owners are not set, and the
         * attrset does not claim them */
        k->sa.mask &= ~(unsigned)(FS_SET_UID | FS_SET_GID);
        o->attrset[NFS4_ATTR_OWNER / 32] &= ~(1u << (NFS4_ATTR_OWNER % 32));
        o->attrset[NFS4_ATTR_OWNER_GROUP / 32] &= ~(1u << (NFS4_ATTR_OWNER_GROUP % 32));
    }
    return NFS4_OK;
}

/* The verifier's halves as times (high bit cleared: some filesystems and clients
 * mishandle negative times). */
static void nfs4_open_verifier(struct nfs4_open_create *k, const verifier4 v)
{
    k->exclusive = true;
    k->v_mtime = (time_t)(xdr_get_be32(v) & 0x7fffffffu);
    k->v_atime = (time_t)(xdr_get_be32(v + 4) & 0x7fffffffu);
}

/* EXCLUSIVE4_1 attributes must be ones the server can set together with the verifier
 * (suppattr_exclcreat), RFC 8881 18.16.3. */
static nfsstat4 nfs4_open_check_exclcreat(const struct nfs4_open *o)
{
    const uint32_t *ok = nfs4_attr_exclcreat(o->c->minor);
    for (unsigned w = 0; w < NFS4_ATTR_WORDS; w++)
        if (o->attrset[w] & ~ok[w])
            return NFS4ERR_INVAL;
    return NFS4_OK;
}

static nfsstat4 nfs4_open_createhow(struct nfs4_open *o, struct nfs4_open_create *k)
{
    const createhow4 *how = &o->a->openhow.how;
    memset(k, 0, sizeof(*k));
    switch (how->mode) {
    case UNCHECKED4:
    case GUARDED4:
        return nfs4_open_decode_attrs(o, &how->createattrs, k, NFS4_OPEN_DEFAULT_MODE);
    case EXCLUSIVE4:
        k->mode = NFS4_OPEN_EXCLUSIVE_MODE;
        nfs4_open_verifier(k, how->createverf);
        return NFS4_OK;
    case EXCLUSIVE4_1: {
        if (o->c->minor == 0)
            return NFS4ERR_INVAL;
        nfsstat4 s = nfs4_open_decode_attrs(o, &how->ch_createboth.cva_attrs, k, NFS4_OPEN_EXCLUSIVE_MODE);
        if (s == NFS4_OK)
            s = nfs4_open_check_exclcreat(o);
        if (s == NFS4_OK)
            nfs4_open_verifier(k, how->ch_createboth.cva_verf);
        return s;
    }
    }
    return NFS4ERR_INVAL;
}

static int nfs4_open_backend_create(struct nfs4_open *o, const struct nfs4_fh *dir, const component4 *name,
                                    mode_t mode)
{
    struct fs_fh fh;
    int err = NFS4_FS(dir, create, &dir->cred, &dir->fh, (const char *)name->val, name->len, mode, true, &fh,
                      &o->st);
    if (err == 0)
        nfs4_fh_set_export(o->c, dir, &fh, &o->file);
    return err;
}

static int nfs4_open_backend_lookup(struct nfs4_open *o, const struct nfs4_fh *dir, const component4 *name)
{
    struct fs_fh fh;
    int err = NFS4_FS(dir, lookup, &dir->cred, &dir->fh, (const char *)name->val, name->len, &fh, &o->st);
    if (err == 0)
        nfs4_fh_set_export(o->c, dir, &fh, &o->file);
    return err;
}

/* Attributes of a new file the create call did not take (size 0 is already true). */
static nfsstat4 nfs4_open_new_file_attrs(struct nfs4_open *o, struct nfs4_open_create *k)
{
    struct fs_setattr sa = k->sa;
    if ((sa.mask & FS_SET_SIZE) && sa.size == 0)
        sa.mask &= ~(unsigned)FS_SET_SIZE;
    if (k->exclusive) {
        sa.mask |= FS_SET_ATIME | FS_SET_MTIME;
        sa.mask &= ~(unsigned)(FS_SET_ATIME_NOW | FS_SET_MTIME_NOW);
        sa.atime = (struct timespec){.tv_sec = k->v_atime};
        sa.mtime = (struct timespec){.tv_sec = k->v_mtime};
        nfs4_bitmap_set(o->attrset, NFS4_ATTR_TIME_ACCESS);
        nfs4_bitmap_set(o->attrset, NFS4_ATTR_TIME_MODIFY);
    }
    if (sa.mask == 0)
        return NFS4_OK;
    const struct nfs4_fh *f = &o->file;
    return nfs4_errno(NFS4_FS(f, setattr, &f->cred, &f->fh, &sa, &o->st));
}

/* The name exists: what each createhow4 makes of that. */
static nfsstat4 nfs4_open_existing(struct nfs4_open *o, struct nfs4_open_create *k, createmode4 mode)
{
    switch (mode) {
    case UNCHECKED4:
        /* Only a size of 0 applies to an existing file (as knfsd): the truncation. */
        memset(o->attrset, 0, sizeof(o->attrset));
        if ((k->sa.mask & FS_SET_SIZE) && k->sa.size == 0 && S_ISREG(o->st.st_mode)) {
            o->truncate = true;
            nfs4_bitmap_set(o->attrset, NFS4_ATTR_SIZE);
        }
        return NFS4_OK;
    case GUARDED4:
        return NFS4ERR_EXIST;
    case EXCLUSIVE4:
    case EXCLUSIVE4_1:
        /* A retransmission of our own exclusive create succeeds. */
        if (S_ISREG(o->st.st_mode) && o->st.st_mtim.tv_sec == k->v_mtime && o->st.st_atim.tv_sec == k->v_atime) {
            o->created = true;
            nfs4_bitmap_set(o->attrset, NFS4_ATTR_TIME_ACCESS);
            nfs4_bitmap_set(o->attrset, NFS4_ATTR_TIME_MODIFY);
            return NFS4_OK;
        }
        return NFS4ERR_EXIST;
    }
    return NFS4ERR_INVAL;
}

static nfsstat4 nfs4_open_create(struct nfs4_open *o, const struct nfs4_fh *dir, const component4 *name)
{
    struct nfs4_open_create k;
    o->file = *dir; /* cred for the checks below */
    nfsstat4 s = nfs4_open_createhow(o, &k);
    if (s != NFS4_OK)
        return s;
    createmode4 mode = o->a->openhow.how.mode;
    /* Create exclusively, else find what is there; a name that keeps appearing and
     * vanishing in between is DELAY. */
    for (int attempt = 0; attempt < 3; attempt++) {
        int err = nfs4_open_backend_create(o, dir, name, k.mode);
        if (err == 0) {
            o->created = o->new_file = true;
            return nfs4_open_new_file_attrs(o, &k);
        }
        if (err != -EEXIST)
            return nfs4_errno(err);
        err = nfs4_open_backend_lookup(o, dir, name);
        if (err == -ENOENT)
            continue;
        if (err)
            return nfs4_errno(err);
        return nfs4_open_existing(o, &k, mode);
    }
    return NFS4ERR_DELAY;
}

/* ---- claims ---- */

/* The current filehandle must be a directory for a claim by name. */
static nfsstat4 nfs4_open_dir(struct nfs4_open *o, struct stat *dst)
{
    const struct nfs4_fh *dir = &o->c->cur;
    nfsstat4 s = nfs4_fh_getattr(dir, dst);
    if (s != NFS4_OK)
        return s;
    if (S_ISDIR(dst->st_mode))
        return NFS4_OK;
    return S_ISLNK(dst->st_mode) ? NFS4ERR_SYMLINK : NFS4ERR_NOTDIR;
}

/* A name in a pseudo-fs directory: every entry there is a directory, nothing can be
 * created. */
static nfsstat4 nfs4_open_pseudo(struct nfs4_open *o, const component4 *name)
{
    struct nfs4_compound *c = o->c;
    struct pseudo_node *n = pseudo_node_child(c->cur.node, (const char *)name->val, name->len);
    if (n && pseudo_node_visible(n, c->call->peer))
        return NFS4ERR_ISDIR;
    return o->a->openhow.opentype == OPEN4_CREATE ? NFS4ERR_ROFS : NFS4ERR_NOENT;
}

/* CLAIM_DELEGATE_PREV by name: the file the delegation was of, never a new one; an
 * OPEN4_CREATE treats it as existing (UNCHECKED4 may truncate, the others are EXIST). */
static nfsstat4 nfs4_open_prev_by_name(struct nfs4_open *o, const component4 *name, bool create)
{
    int err = nfs4_open_backend_lookup(o, &o->c->cur, name);
    if (err == -ENOENT)
        return NFS4ERR_RECLAIM_BAD;
    if (err)
        return nfs4_errno(err);
    if (!create)
        return NFS4_OK;
    struct nfs4_open_create k;
    nfsstat4 s = nfs4_open_createhow(o, &k);
    return s != NFS4_OK ? s : nfs4_open_existing(o, &k, o->a->openhow.how.mode);
}

static nfsstat4 nfs4_open_by_name(struct nfs4_open *o, const component4 *name)
{
    struct nfs4_compound *c = o->c;
    nfsstat4 s = nfs4_check_name(name);
    if (s != NFS4_OK)
        return s;
    if (c->cur.kind == NFS4_FH_PSEUDO)
        return nfs4_open_pseudo(o, name);
    struct stat dst;
    if ((s = nfs4_open_dir(o, &dst)) != NFS4_OK)
        return s;
    o->change_before = o->change_after = nfs4_attr_change_from_stat(&dst);
    bool create = o->a->openhow.opentype == OPEN4_CREATE;
    if ((create || (o->access & OPEN4_SHARE_ACCESS_WRITE)) && nfs4_fh_read_only(&c->cur))
        return NFS4ERR_ROFS;
    if (o->claim == STATE_CLAIM_DELEGATE_PREV)
        return nfs4_open_prev_by_name(o, name, create);
    if (!create) {
        int err = nfs4_open_backend_lookup(o, &c->cur, name);
        return nfs4_errno(err);
    }
    s = nfs4_open_create(o, &c->cur, name);
    if (o->new_file && nfs4_fh_getattr(&c->cur, &dst) == NFS4_OK)
        o->change_after = nfs4_attr_change_from_stat(&dst);
    return s;
}

/* Claims naming the file by the current filehandle. An OPEN4_CREATE there can only
 * find the file existing: UNCHECKED4 may truncate it, the others are EXIST (as the
 * name exists). */
static nfsstat4 nfs4_open_by_fh(struct nfs4_open *o)
{
    struct nfs4_compound *c = o->c;
    if (c->cur.kind != NFS4_FH_EXPORT)
        return NFS4ERR_ISDIR;
    if ((o->access & OPEN4_SHARE_ACCESS_WRITE) && nfs4_fh_read_only(&c->cur))
        return NFS4ERR_ROFS;
    o->file = c->cur;
    nfsstat4 s = nfs4_fh_getattr(&o->file, &o->st);
    if (s != NFS4_OK)
        return s;
    o->change_before = o->change_after = 0; /* no directory involved */
    if (o->claim != STATE_CLAIM_PREVIOUS && o->a->openhow.opentype == OPEN4_CREATE) {
        struct nfs4_open_create k;
        if (nfs4_fh_read_only(&c->cur))
            return NFS4ERR_ROFS;
        if ((s = nfs4_open_createhow(o, &k)) != NFS4_OK)
            return s;
        return nfs4_open_existing(o, &k, o->a->openhow.how.mode);
    }
    return NFS4_OK;
}

static nfsstat4 nfs4_open_claim(struct nfs4_open *o)
{
    const open_claim4 *cl = &o->a->claim;
    bool v41 = o->c->minor >= 1;
    switch (cl->claim) {
    case CLAIM_NULL:
        o->claim = STATE_CLAIM_NULL;
        return nfs4_open_by_name(o, &cl->file);
    case CLAIM_DELEGATE_CUR:
        o->claim = STATE_CLAIM_DELEGATE_CUR;
        o->deleg_stateid = &cl->delegate_cur_info.delegate_stateid;
        return nfs4_open_by_name(o, &cl->delegate_cur_info.file);
    case CLAIM_PREVIOUS:
        o->claim = STATE_CLAIM_PREVIOUS;
        return nfs4_open_by_fh(o);
    case CLAIM_FH:
        if (!v41)
            return NFS4ERR_INVAL;
        o->claim = STATE_CLAIM_NULL;
        return nfs4_open_by_fh(o);
    case CLAIM_DELEG_CUR_FH:
        if (!v41)
            return NFS4ERR_INVAL;
        o->claim = STATE_CLAIM_DELEGATE_CUR;
        o->deleg_stateid = &cl->oc_delegate_stateid;
        return nfs4_open_by_fh(o);
    case CLAIM_DELEGATE_PREV:
        o->claim = STATE_CLAIM_DELEGATE_PREV;
        return nfs4_open_by_name(o, &cl->file_delegate_prev);
    case CLAIM_DELEG_PREV_FH:
        if (!v41) /* 4.0's open_claim4 has no such arm (one decoder serves all versions) */
            return NFS4ERR_INVAL;
        o->claim = STATE_CLAIM_DELEGATE_PREV;
        return nfs4_open_by_fh(o);
    }
    return NFS4ERR_INVAL;
}

/* ---- truncation ---- */

static nfsstat4 nfs4_open_truncate(struct nfs4_open *o)
{
    if (!o->truncate)
        return NFS4_OK;
    if (!(o->access & OPEN4_SHARE_ACCESS_WRITE))
        return NFS4ERR_INVAL; /* truncating needs a write open (as knfsd) */
    size_t klen;
    const void *key = nfs4_file_key(&o->file, &klen);
    /* Other clients' delegations go first: they may hold cached data of the file. */
    nfsstat4 s = nfs4_state_status(state_deleg_conflicts(o->c->srv->state, key, klen, o->client, true));
    if (s != NFS4_OK)
        return s;
    struct fs_setattr sa = {.mask = FS_SET_SIZE, .size = 0};
    const struct nfs4_fh *f = &o->file;
    return nfs4_errno(NFS4_FS(f, setattr, &f->cred, &f->fh, &sa, &o->st));
}

/* ---- delegations ---- */

/*
 * What to offer: a read delegation for a read-only open, a write delegation for a write
 * open, unless the client asked otherwise; state/ decides whether policy allows it
 * (callback path up, no conflicting opens, not in grace).
 *
 * A delegated client serves opens, reads, writes and byte-range locks from its cache
 * (Linux keeps its locks to itself under a delegated open), so local processes on the
 * server must not get at the file unseen either: the backend's open watcher holds their
 * opens and has the delegation recalled first (fs_ops.watch_begin). Write delegations
 * need it (and that no local process has the file open); read delegations are offered
 * without it where the backend cannot watch, as before.
 */
static enum state_deleg_type nfs4_open_want_deleg(const struct nfs4_open *o)
{
    if (o->c->srv->cfg.no_delegations)
        return STATE_DELEG_NONE;
    bool write = (o->access & OPEN4_SHARE_ACCESS_WRITE) != 0;
    bool watchable = o->file.kind == NFS4_FH_EXPORT && o->file.ex->ops->watch_begin;
    switch (o->want) {
    case OPEN4_SHARE_ACCESS_WANT_NO_DELEG:
    case OPEN4_SHARE_ACCESS_WANT_CANCEL:
        return STATE_DELEG_NONE;
    case OPEN4_SHARE_ACCESS_WANT_READ_DELEG:
        return write ? STATE_DELEG_NONE : STATE_DELEG_READ;
    default:
        return !write ? STATE_DELEG_READ : watchable ? STATE_DELEG_WRITE : STATE_DELEG_NONE;
    }
}

/*
 * Arm the backend's open watcher before a delegation may be granted (the grant's
 * caller ends it with nfs4_open_watch_end); returns what may still be offered. A
 * reclaim (CLAIM_PREVIOUS) gets its delegation back either way.
 */
static enum state_deleg_type nfs4_open_watch_begin(struct nfs4_open *o, enum state_deleg_type want,
                                                   bool reclaim, struct fs_watch **w)
{
    *w = NULL;
    if (want == STATE_DELEG_NONE)
        return want;
    const struct nfs4_fh *f = &o->file;
    struct nfs4_server *srv = o->c->srv;
    if (!f->ex->ops->watch_begin)
        return want == STATE_DELEG_WRITE && !reclaim ? STATE_DELEG_NONE : want;
    if (!reclaim && !state_deleg_offerable(srv->state, o->client))
        return STATE_DELEG_NONE; /* spare the backend the preparations */
    size_t klen;
    const void *key = nfs4_file_key(f, &klen);
    bool exclusive = want == STATE_DELEG_WRITE && !reclaim;
    int err = NFS4_FS(f, watch_begin, &f->fh, key, klen, exclusive, &srv->deleg_watch, w);
    if (err == 0 || reclaim)
        return want;
    if (err == -EOPNOTSUPP && want == STATE_DELEG_READ)
        return want; /* unwatched, as where the backend cannot watch at all */
    return STATE_DELEG_NONE;
}

static void nfs4_open_watch_end(struct nfs4_open *o, struct fs_watch *w)
{
    if (w)
        o->file.ex->ops->watch_end(w);
}

static const char nfs4_everyone[] = "EVERYONE@";

static void nfs4_open_deleg_ace(nfsace4 *ace)
{
    ace->type = ACE4_ACCESS_ALLOWED_ACE_TYPE;
    ace->flag = 0;
    ace->access_mask = 0;
    ace->who = (utf8str_mixed){sizeof(nfs4_everyone) - 1, (const uint8_t *)nfs4_everyone};
}

static void nfs4_open_deleg_result(struct nfs4_open *o, const struct state_open_res *sr)
{
    open_delegation4 *d = &o->ok->delegation;
    memset(d, 0, sizeof(*d));
    if (sr->deleg && sr->deleg_type == STATE_DELEG_READ) {
        d->delegation_type = OPEN_DELEGATE_READ;
        nfs4_stateid_from_state(&sr->deleg_stateid, &d->read.stateid);
        d->read.recall = false;
        nfs4_open_deleg_ace(&d->read.permissions);
    } else if (sr->deleg && sr->deleg_type == STATE_DELEG_WRITE) {
        d->delegation_type = OPEN_DELEGATE_WRITE;
        nfs4_stateid_from_state(&sr->deleg_stateid, &d->write.stateid);
        d->write.recall = false;
        d->write.space_limit.limitby = NFS_LIMIT_SIZE;
        d->write.space_limit.filesize = NFS4_DELEG_SPACE_LIMIT;
        nfs4_open_deleg_ace(&d->write.permissions);
    } else if (o->c->minor >= 1 && o->want != OPEN4_SHARE_ACCESS_WANT_NO_PREFERENCE) {
        /* 4.1: a client that asked hears why not (RFC 8881 18.16.3) */
        d->delegation_type = OPEN_DELEGATE_NONE_EXT;
        if (o->want == OPEN4_SHARE_ACCESS_WANT_NO_DELEG)
            d->od_whynone.ond_why = WND4_NOT_WANTED;
        else if (o->want == OPEN4_SHARE_ACCESS_WANT_CANCEL)
            d->od_whynone.ond_why = WND4_CANCELLED;
        else if (sr->deleg_recall_pending)
            d->od_whynone.ond_why = WND4_CONTENTION;
        else
            d->od_whynone.ond_why = WND4_RESOURCE;
        d->od_whynone.ond_server_will_push_deleg = false;
    } else {
        d->delegation_type = OPEN_DELEGATE_NONE;
    }
    if (sr->deleg)
        __atomic_fetch_add(&o->c->srv->counters.delegs_granted, 1, __ATOMIC_RELAXED);
}

/* ---- OPEN ---- */

/* attrset as a bitmap4 in the request arena (trailing zero words dropped). */
static void nfs4_open_attrset(struct nfs4_open *o)
{
    uint32_t n = NFS4_ATTR_WORDS;
    while (n > 0 && o->attrset[n - 1] == 0)
        n--;
    o->ok->attrset = (bitmap4){0, NULL};
    uint32_t *w = n ? xdr_arena_alloc(o->c->call->args.arena, n, sizeof(uint32_t)) : NULL;
    if (!w)
        return;
    memcpy(w, o->attrset, n * sizeof(uint32_t));
    o->ok->attrset = (bitmap4){n, w};
}

static nfsstat4 nfs4_open_state(struct nfs4_open *o)
{
    struct nfs4_compound *c = o->c;
    size_t klen;
    const void *key = nfs4_file_key(&o->file, &klen);
    struct state_stateid deleg_sid;
    struct state_open_args sa = {
        .owner = o->owner,
        .file_key = key,
        .file_key_len = klen,
        .share_access = o->access,
        .share_deny = o->deny,
        .claim = o->claim,
        .want_deleg = nfs4_open_want_deleg(o),
        .file_created = o->new_file,
    };
    if (o->claim == STATE_CLAIM_PREVIOUS) {
        open_delegation_type4 t = o->a->claim.delegate_type;
        sa.reclaim_deleg = t == OPEN_DELEGATE_READ    ? STATE_DELEG_READ
                           : t == OPEN_DELEGATE_WRITE ? STATE_DELEG_WRITE
                                                      : STATE_DELEG_NONE;
    }
    if (o->deleg_stateid) {
        nfs4_stateid_to_state(o->deleg_stateid, &deleg_sid);
        sa.deleg_stateid = &deleg_sid;
    }
    struct fs_watch *watch;
    if (o->claim == STATE_CLAIM_PREVIOUS) /* state/ then grants reclaim_deleg only */
        sa.reclaim_deleg = nfs4_open_watch_begin(o, sa.reclaim_deleg, true, &watch);
    else if (o->claim == STATE_CLAIM_DELEGATE_PREV) /* state/ grants the awaiting type */
        nfs4_open_watch_begin(o, o->prev_type, true, &watch);
    else
        sa.want_deleg = nfs4_open_watch_begin(o, sa.want_deleg, false, &watch);
    struct state_open_res sr;
    enum state_status st = state_open(c->srv->state, &sa, &sr);
    nfs4_open_watch_end(o, watch);
    if (st != STATE_OK)
        return nfs4_state_status(st);

    OPEN4resok *ok = o->ok;
    nfs4_stateid_from_state(&sr.stateid, &ok->stateid);
    ok->cinfo.atomic = false;
    ok->cinfo.before = o->change_before;
    ok->cinfo.after = o->change_after;
    ok->rflags = OPEN4_RESULT_LOCKTYPE_POSIX | (sr.confirm_needed ? OPEN4_RESULT_CONFIRM : 0);
    if (o->c->minor >= 1 && o->c->srv->locks) /* a denied READW/WRITEW gets CB_NOTIFY_LOCK */
        ok->rflags |= OPEN4_RESULT_MAY_NOTIFY_LOCK;
    nfs4_open_attrset(o);
    nfs4_open_deleg_result(o, &sr);
    state_stid_put(sr.open);
    if (sr.deleg)
        state_stid_put(sr.deleg);
    /* The file becomes the current filehandle, its open stateid the current stateid. */
    c->cur = o->file;
    nfs4_set_current_stateid(c, &ok->stateid);
    return NFS4_OK;
}

/* A reclaim that will fail must not truncate first: GRACE / RECLAIM_BAD now (state_open
 * decides again, under its lock). */
static nfsstat4 nfs4_open_prev_check(struct nfs4_open *o)
{
    size_t klen;
    const void *key = nfs4_file_key(&o->file, &klen);
    return nfs4_state_status(state_deleg_awaiting(o->c->srv->state, o->client, key, klen, &o->prev_type));
}

static nfsstat4 nfs4_open_run(struct nfs4_open *o)
{
    nfsstat4 s = nfs4_open_share(o);
    if (s == NFS4_OK)
        s = nfs4_open_claim(o);
    if (s == NFS4_OK)
        s = nfs4_open_check_type(o->c, &o->st);
    if (s == NFS4_OK && !o->created)
        s = nfs4_open_check_access(o);
    if (s == NFS4_OK && o->claim == STATE_CLAIM_DELEGATE_PREV)
        s = nfs4_open_prev_check(o);
    if (s == NFS4_OK)
        s = nfs4_open_truncate(o);
    if (s == NFS4_OK)
        s = nfs4_open_state(o);
    return s;
}

/* The open owner (and its client: 4.0 names it by clientid, 4.1 by the session). */
static nfsstat4 nfs4_open_owner(struct nfs4_compound *c, const open_owner4 *ow, struct state_client **client,
                                struct state_owner **owner)
{
    *client = NULL;
    *owner = NULL;
    if (ow->owner.len == 0 || ow->owner.len > NFS4_OPAQUE_LIMIT)
        return NFS4ERR_INVAL;
    struct state_client *cl;
    if (c->minor == 0) {
        enum state_status st = state_client_lookup(c->srv->state, ow->clientid, &cl);
        if (st != STATE_OK)
            return nfs4_state_status(st);
    } else {
        if (!c->client)
            return NFS4ERR_SERVERFAULT; /* SEQUENCE always sets it */
        cl = state_client_ref(c->client);
    }
    bool created;
    enum state_status st = state_open_owner_get(c->srv->state, cl, ow->owner.val, ow->owner.len, owner, &created);
    if (st != STATE_OK) {
        state_client_put(cl);
        *owner = NULL;
        return nfs4_state_status(st);
    }
    *client = cl;
    return NFS4_OK;
}

NFS4_OP(open)
{
    const OPEN4args *a = &arg->opopen;
    OPEN4res *r = &res->opopen;
    struct nfs4_open o;

    memset(&o, 0, sizeof(o));
    o.c = c;
    o.a = a;
    o.ok = &r->resok4;
    nfsstat4 s = nfs4_open_owner(c, &a->owner, &o.client, &o.owner);
    if (s != NFS4_OK)
        return r->status = s;
    s = nfs4_seqid_begin(c, o.owner, a->seqid, true); /* 4.0 only; a replay answers here */
    if (s == NFS4_OK && !c->replay)
        s = nfs4_open_run(&o);
    state_owner_put(o.owner);
    state_client_put(o.client);
    return r->status = s;
}

/* ---- OPEN_CONFIRM (4.0) ---- */

NFS4_OP(open_confirm)
{
    const OPEN_CONFIRM4args *a = &arg->opopen_confirm;
    OPEN_CONFIRM4res *r = &res->opopen_confirm;
    struct state_stid *st;

    nfsstat4 s = nfs4_stid_lookup_seqid(c, &a->open_stateid, STATE_STID_OPEN, a->seqid, &st);
    if (s != NFS4_OK || c->replay)
        return r->status = s;
    /* Only an unconfirmed owner's open (RFC 7530 16.18.5). */
    if (state_owner_confirmed(state_stid_owner(st))) {
        s = NFS4ERR_BAD_STATEID;
    } else {
        struct state_stateid out;
        s = nfs4_state_status(state_open_confirm(c->srv->state, st, &out));
        if (s == NFS4_OK)
            nfs4_stateid_from_state(&out, &r->resok4.open_stateid);
    }
    state_stid_put(st);
    return r->status = s;
}

/* ---- OPEN_DOWNGRADE ---- */

NFS4_OP(open_downgrade)
{
    const OPEN_DOWNGRADE4args *a = &arg->opopen_downgrade;
    OPEN_DOWNGRADE4res *r = &res->opopen_downgrade;
    struct state_stid *st;

    nfsstat4 s = nfs4_stid_lookup_seqid(c, &a->open_stateid, STATE_STID_OPEN, a->seqid, &st);
    if (s != NFS4_OK || c->replay)
        return r->status = s;
    uint32_t access = a->share_access;
    if (c->minor >= 1) /* 4.1 want bits mean nothing to a downgrade */
        access &= ~(uint32_t)(OPEN4_SHARE_ACCESS_WANT_DELEG_MASK | NFS4_SHARE_WANT_SIGNAL_MASK);
    struct state_stateid out;
    s = nfs4_state_status(state_open_downgrade(c->srv->state, st, access, a->share_deny, &out));
    if (s == NFS4_OK) {
        nfs4_stateid_from_state(&out, &r->resok4.open_stateid);
        nfs4_set_current_stateid(c, &r->resok4.open_stateid);
    }
    state_stid_put(st);
    return r->status = s;
}

/* ---- CLOSE ---- */

/*
 * Locks still held at CLOSE (RFC 7530 16.2.4, RFC 8881 18.2.4): the server may free
 * them, or answer LOCKS_HELD. 4.0 clients release their lock owners with LOCKU /
 * RELEASE_LOCKOWNER, so 4.0 gets LOCKS_HELD (the conservative reading); a 4.1 open's
 * lock stateids end with it anyway, so their ranges are freed with them.
 * 4.1 returns the invalid special stateid (RFC 8881 18.2.3: the closed stateid is of no
 * further use).
 */
NFS4_OP(close)
{
    const CLOSE4args *a = &arg->opclose;
    CLOSE4res *r = &res->opclose;
    struct state_stid *st;

    nfsstat4 s = nfs4_stid_lookup_seqid(c, &a->open_stateid, STATE_STID_OPEN, a->seqid, &st);
    if (s != NFS4_OK || c->replay)
        return r->status = s;
    state_has_locks_fn locks = c->minor == 0 ? nfs4_lock_has_locks : nfs4_lock_free_locks;
    struct state_stateid out;
    s = nfs4_state_status(state_close(c->srv->state, st, locks, c->srv, &out));
    state_stid_put(st);
    if (s != NFS4_OK)
        return r->status = s;
    if (c->minor >= 1) {
        memset(&r->open_stateid, 0, sizeof(r->open_stateid));
        r->open_stateid.seqid = UINT32_MAX;
    } else {
        nfs4_stateid_from_state(&out, &r->open_stateid);
    }
    nfs4_set_current_stateid(c, &r->open_stateid);
    return r->status = NFS4_OK;
}

/* ---- OPENATTR ---- */

/* Named attributes are not supported (the named_attr attribute is false). */
NFS4_OP(openattr)
{
    (void)c;
    (void)arg;
    return res->opopenattr.status = NFS4ERR_NOTSUPP;
}
