/*
 * Unit tests for the NFSv4 open and lock ops (src/nfs4/nfs4_open.c, nfs4_lock.c,
 * nfs4_deleg.c, nfs4_stateid.c): the handlers called directly with a hand-made COMPOUND
 * context over a real state server and lock space, no engine and no network. The 4.0
 * owner seqid bookkeeping the engine does after each op is repeated here (run()).
 *
 * Needs root (the posix backend opens files by handle); exits 77 (skipped) otherwise.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "nfs4/nfs4_attr.h"
#include "nfs4/nfs4_internal.h"
#include "nfs4/nfs4_io.h"

static uint8_t arena_mem[1 << 20];
static struct xdr_arena arena;
static char tmpdir[64];
static char path_rw[128];
static struct export_table table;
static struct nfs4_server srv;
static struct sockaddr_in peer;
static struct rpc_call call;
static struct nfs4_compound cc;
static bool last_was_replay;

static const struct state_principal principal = {"sys:0", 5};

/* Run one op as the engine would, including the 4.0 seqid end with the encoded result. */
static nfsstat4 run(nfs4_op_fn fn, uint32_t opnum, nfs_argop4 *a, nfs_resop4 *r)
{
    memset(r, 0, sizeof(*r));
    a->argop = opnum;
    xdr_arena_init(&arena, arena_mem, sizeof(arena_mem));
    call.args.arena = &arena;
    nfsstat4 st = fn(&cc, a, r);
    r->resop = opnum;
    last_was_replay = cc.replay != NULL;
    if (cc.replay) {
        free(cc.replay);
        cc.replay = NULL;
    }
    if (cc.seqid_active) {
        static uint8_t buf[8192];
        struct xdr_enc e;
        xdr_enc_init(&e, buf, sizeof(buf));
        bool data = st == NFS4_OK || (st == NFS4ERR_DENIED && (opnum == OP_LOCK || opnum == OP_LOCKT));
        if (data)
            CHECK(xdr_encode_nfs_resop4(&e, r));
        else
            CHECK(xdr_enc_u32(&e, opnum) && xdr_enc_u32(&e, st));
        bool advance = !(st == NFS4ERR_STALE_CLIENTID || st == NFS4ERR_STALE_STATEID || st == NFS4ERR_BAD_STATEID ||
                         st == NFS4ERR_BAD_SEQID || st == NFS4ERR_BADXDR || st == NFS4ERR_RESOURCE);
        state_owner_seqid_end(cc.seqid_owner, cc.seqid, advance, buf, xdr_enc_len(&e));
        state_owner_put(cc.seqid_owner);
        cc.seqid_owner = NULL;
        cc.seqid_active = false;
    }
    fs_posix_thread_reset();
    return st;
}

static component4 NAME(const char *s)
{
    component4 n = {.len = (uint32_t)strlen(s), .val = (const uint8_t *)s};
    return n;
}

static void cur_root(void)
{
    struct export *ex = export_by_path(&table, path_rw, strlen(path_rw));
    CHECK(ex != NULL);
    CHECK_EQ(nfs4_fh_set_export_root(&cc, ex, &cc.cur), NFS4_OK);
}

static uint64_t new_client(const char *id)
{
    uint8_t verf[8] = {1, 2, 3, 4, 5, 6, 7, 8}, confirm[8];
    struct state_cb_info cb = {0};
    uint64_t clientid = 0;
    CHECK_EQ(state_setclientid(srv.state, id, strlen(id), verf, &principal, &cb, &clientid, confirm), STATE_OK);
    CHECK_EQ(state_setclientid_confirm(srv.state, clientid, confirm, &principal), STATE_OK);
    return clientid;
}

/* ---- OPEN helpers ---- */

struct opened {
    stateid4 sid;
    uint32_t rflags;
    struct nfs4_fh fh;
};

static nfsstat4 open_name(uint64_t clientid, const char *owner, uint32_t seqid, const char *name, bool create,
                          createmode4 how, const uint8_t *verf, uint32_t access, uint32_t deny, struct opened *out)
{
    static uint32_t mask[2];
    static uint8_t vals[4];
    nfs_argop4 a;
    nfs_resop4 r;
    memset(&a, 0, sizeof(a));
    OPEN4args *o = &a.opopen;
    o->seqid = seqid;
    o->share_access = access;
    o->share_deny = deny;
    o->owner.clientid = clientid;
    o->owner.owner = (struct xdr_opaque){(uint32_t)strlen(owner), (const uint8_t *)owner};
    o->openhow.opentype = create ? OPEN4_CREATE : OPEN4_NOCREATE;
    o->openhow.how.mode = how;
    if (how == EXCLUSIVE4) {
        memcpy(o->openhow.how.createverf, verf, 8);
    } else {
        mask[0] = 0;
        mask[1] = 1u << (NFS4_ATTR_MODE - 32);
        xdr_put_be32(vals, 0644);
        o->openhow.how.createattrs.attrmask = (bitmap4){2, mask};
        o->openhow.how.createattrs.attr_vals = (struct xdr_opaque){4, vals};
    }
    o->claim.claim = CLAIM_NULL;
    o->claim.file = NAME(name);
    cur_root();
    nfsstat4 st = run(nfs4_op_open, OP_OPEN, &a, &r);
    CHECK_EQ(r.opopen.status, st);
    if (st == NFS4_OK && out) {
        out->sid = r.opopen.resok4.stateid;
        out->rflags = r.opopen.resok4.rflags;
        out->fh = cc.cur;
        CHECK(r.opopen.resok4.rflags & OPEN4_RESULT_LOCKTYPE_POSIX);
        CHECK_EQ(r.opopen.resok4.delegation.delegation_type, OPEN_DELEGATE_NONE);
    }
    return st;
}

static nfsstat4 open_confirm(struct opened *op, uint32_t seqid)
{
    nfs_argop4 a = {.opopen_confirm = {.open_stateid = op->sid, .seqid = seqid}};
    nfs_resop4 r;
    cc.cur = op->fh;
    nfsstat4 st = run(nfs4_op_open_confirm, OP_OPEN_CONFIRM, &a, &r);
    if (st == NFS4_OK)
        op->sid = r.opopen_confirm.resok4.open_stateid;
    return st;
}

/* ---- LOCK helpers ---- */

static nfsstat4 lock_new_seq(struct opened *op, uint32_t open_seqid, uint64_t clientid, const char *lowner,
                             uint32_t lock_seqid, nfs_lock_type4 type, uint64_t off, uint64_t len, stateid4 *lsid,
                             LOCK4denied *denied)
{
    nfs_argop4 a;
    nfs_resop4 r;
    memset(&a, 0, sizeof(a));
    a.oplock.locktype = type;
    a.oplock.offset = off;
    a.oplock.length = len;
    a.oplock.locker.new_lock_owner = true;
    a.oplock.locker.open_owner.open_seqid = open_seqid;
    a.oplock.locker.open_owner.open_stateid = op->sid;
    a.oplock.locker.open_owner.lock_seqid = lock_seqid;
    a.oplock.locker.open_owner.lock_owner.clientid = clientid;
    a.oplock.locker.open_owner.lock_owner.owner =
        (struct xdr_opaque){(uint32_t)strlen(lowner), (const uint8_t *)lowner};
    cc.cur = op->fh;
    nfsstat4 st = run(nfs4_op_lock, OP_LOCK, &a, &r);
    if (st == NFS4_OK && lsid)
        *lsid = r.oplock.resok4.lock_stateid;
    if (st == NFS4ERR_DENIED && denied) {
        static uint8_t owner_copy[64];
        *denied = r.oplock.denied;
        size_t n = denied->owner.owner.len < sizeof(owner_copy) ? denied->owner.owner.len : sizeof(owner_copy);
        memcpy(owner_copy, denied->owner.owner.val, n);
        denied->owner.owner.val = owner_copy;
    }
    return st;
}

static nfsstat4 lock_new(struct opened *op, uint32_t open_seqid, uint64_t clientid, const char *lowner,
                         nfs_lock_type4 type, uint64_t off, uint64_t len, stateid4 *lsid, LOCK4denied *denied)
{
    return lock_new_seq(op, open_seqid, clientid, lowner, 0, type, off, len, lsid, denied);
}

static nfsstat4 lock_exist(struct opened *op, stateid4 *lsid, uint32_t lock_seqid, nfs_lock_type4 type, uint64_t off,
                           uint64_t len)
{
    nfs_argop4 a;
    nfs_resop4 r;
    memset(&a, 0, sizeof(a));
    a.oplock.locktype = type;
    a.oplock.offset = off;
    a.oplock.length = len;
    a.oplock.locker.new_lock_owner = false;
    a.oplock.locker.lock_owner.lock_stateid = *lsid;
    a.oplock.locker.lock_owner.lock_seqid = lock_seqid;
    cc.cur = op->fh;
    nfsstat4 st = run(nfs4_op_lock, OP_LOCK, &a, &r);
    if (st == NFS4_OK)
        *lsid = r.oplock.resok4.lock_stateid;
    return st;
}

static nfsstat4 locku(struct opened *op, stateid4 *lsid, uint32_t seqid, uint64_t off, uint64_t len)
{
    nfs_argop4 a = {
        .oplocku = {.locktype = WRITE_LT, .seqid = seqid, .lock_stateid = *lsid, .offset = off, .length = len}};
    nfs_resop4 r;
    cc.cur = op->fh;
    nfsstat4 st = run(nfs4_op_locku, OP_LOCKU, &a, &r);
    if (st == NFS4_OK)
        *lsid = r.oplocku.lock_stateid;
    return st;
}

static nfsstat4 lockt(struct opened *op, uint64_t clientid, const char *lowner, nfs_lock_type4 type, uint64_t off,
                      uint64_t len)
{
    nfs_argop4 a;
    nfs_resop4 r;
    memset(&a, 0, sizeof(a));
    a.oplockt.locktype = type;
    a.oplockt.offset = off;
    a.oplockt.length = len;
    a.oplockt.owner.clientid = clientid;
    a.oplockt.owner.owner = (struct xdr_opaque){(uint32_t)strlen(lowner), (const uint8_t *)lowner};
    cc.cur = op->fh;
    return run(nfs4_op_lockt, OP_LOCKT, &a, &r);
}

static nfsstat4 close_open(struct opened *op, uint32_t seqid)
{
    nfs_argop4 a = {.opclose = {.seqid = seqid, .open_stateid = op->sid}};
    nfs_resop4 r;
    cc.cur = op->fh;
    nfsstat4 st = run(nfs4_op_close, OP_CLOSE, &a, &r);
    if (st == NFS4_OK)
        op->sid = r.opclose.open_stateid;
    return st;
}

/* lock_file_id.open_file for a filehandle (ctx = struct nfs4_fh *) */
static int open_by_fh(void *ctx, int flags)
{
    struct nfs4_fh *f = ctx;
    return f->ex->ops->open_fd(f->ex->fs, &f->fh, flags);
}

/* ---- tests ---- */

static void test_open_create_modes(uint64_t cl)
{
    struct opened o;
    uint8_t v1[8] = {9, 9, 9, 9, 1, 1, 1, 1}, v2[8] = {9, 9, 9, 9, 2, 2, 2, 2};

    /* EXCLUSIVE4: the same verifier again is success, another is EXIST */
    CHECK_EQ(open_name(cl, "ex-owner", 0, "excl", true, EXCLUSIVE4, v1, OPEN4_SHARE_ACCESS_BOTH, 0, &o), NFS4_OK);
    CHECK(o.rflags & OPEN4_RESULT_CONFIRM);
    CHECK_EQ(open_name(cl, "ex-owner", 1, "excl", true, EXCLUSIVE4, v1, OPEN4_SHARE_ACCESS_BOTH, 0, &o), NFS4_OK);
    CHECK_EQ(open_name(cl, "ex-owner", 2, "excl", true, EXCLUSIVE4, v2, OPEN4_SHARE_ACCESS_BOTH, 0, &o),
             NFS4ERR_EXIST);
    /* GUARDED4 on an existing name */
    CHECK_EQ(open_name(cl, "ex-owner", 3, "excl", true, GUARDED4, NULL, OPEN4_SHARE_ACCESS_BOTH, 0, &o),
             NFS4ERR_EXIST);
    /* NOCREATE of a missing name; a directory; bad share bits */
    CHECK_EQ(open_name(cl, "ex-owner", 4, "missing", false, UNCHECKED4, NULL, OPEN4_SHARE_ACCESS_READ, 0, &o),
             NFS4ERR_NOENT);
    CHECK(mkdir(path_rw, 0755) != 0); /* exists */
    char d[192];
    snprintf(d, sizeof(d), "%s/adir", path_rw);
    CHECK_EQ(mkdir(d, 0755), 0);
    CHECK_EQ(open_name(cl, "ex-owner", 5, "adir", false, UNCHECKED4, NULL, OPEN4_SHARE_ACCESS_READ, 0, &o),
             NFS4ERR_ISDIR);
    CHECK_EQ(open_name(cl, "ex-owner", 6, "excl", false, UNCHECKED4, NULL, 0, 0, &o), NFS4ERR_INVAL);
    /* UNCHECKED4 with size 0 on an existing file truncates it */
    char p[192];
    snprintf(p, sizeof(p), "%s/trunc", path_rw);
    int fd = open(p, O_CREAT | O_WRONLY, 0644);
    CHECK(fd >= 0 && write(fd, "data", 4) == 4);
    close(fd);
    static uint32_t mask[1] = {1u << NFS4_ATTR_SIZE};
    static uint8_t vals[8];
    nfs_argop4 a;
    nfs_resop4 r;
    memset(&a, 0, sizeof(a));
    a.opopen.seqid = 0;
    a.opopen.share_access = OPEN4_SHARE_ACCESS_WRITE;
    a.opopen.owner.clientid = cl;
    a.opopen.owner.owner = (struct xdr_opaque){5, (const uint8_t *)"trunc"};
    a.opopen.openhow.opentype = OPEN4_CREATE;
    a.opopen.openhow.how.mode = UNCHECKED4;
    a.opopen.openhow.how.createattrs.attrmask = (bitmap4){1, mask};
    a.opopen.openhow.how.createattrs.attr_vals = (struct xdr_opaque){8, vals};
    a.opopen.claim.claim = CLAIM_NULL;
    a.opopen.claim.file = NAME("trunc");
    cur_root();
    CHECK_EQ(run(nfs4_op_open, OP_OPEN, &a, &r), NFS4_OK);
    struct stat st;
    CHECK(stat(p, &st) == 0 && st.st_size == 0);
    CHECK(r.opopen.resok4.attrset.len == 1 && r.opopen.resok4.attrset.val[0] == (1u << NFS4_ATTR_SIZE));
}

static void test_open_lock_close(uint64_t cl1, uint64_t cl2)
{
    struct opened o1, o2;
    stateid4 l1, l2;
    LOCK4denied den;

    /* client 1 creates and confirms; a replayed OPEN_CONFIRM answers from the cache */
    CHECK_EQ(open_name(cl1, "owner1", 10, "f", true, UNCHECKED4, NULL, OPEN4_SHARE_ACCESS_BOTH, 0, &o1), NFS4_OK);
    CHECK(o1.rflags & OPEN4_RESULT_CONFIRM);
    CHECK(o1.fh.kind == NFS4_FH_EXPORT && !nfs4_fh_is_export_root(&o1.fh));
    stateid4 before = o1.sid;
    CHECK_EQ(open_confirm(&o1, 11), NFS4_OK);
    CHECK_EQ(o1.sid.seqid, before.seqid + 1);
    struct opened again = o1;
    again.sid = before;
    CHECK_EQ(open_confirm(&again, 11), NFS4_OK);
    CHECK(last_was_replay);
    /* a confirmed owner's wrong seqid is refused without running */
    CHECK_EQ(open_name(cl1, "owner1", 42, "f", false, UNCHECKED4, NULL, OPEN4_SHARE_ACCESS_READ, 0, NULL),
             NFS4ERR_BAD_SEQID);
    CHECK(!last_was_replay);

    /* I/O checks with the open stateid and the special ones */
    cc.cur = o1.fh;
    CHECK_EQ(nfs4_check_io_stateid(&cc, &o1.sid, true), NFS4_OK);
    stateid4 anon = {0};
    CHECK_EQ(nfs4_check_io_stateid(&cc, &anon, false), NFS4_OK);
    stateid4 old = before;
    CHECK_EQ(nfs4_check_io_stateid(&cc, &old, false), NFS4ERR_OLD_STATEID);

    /* bad ranges */
    CHECK_EQ(lock_new(&o1, 12, cl1, "lk1", WRITE_LT, 0, 0, &l1, NULL), NFS4ERR_INVAL);
    CHECK_EQ(lock_new(&o1, 13, cl1, "lk1", WRITE_LT, 10, UINT64_MAX - 5, &l1, NULL), NFS4ERR_INVAL);
    /* client 1: write lock 0..99 with a new lock owner */
    CHECK_EQ(lock_new(&o1, 14, cl1, "lk1", WRITE_LT, 0, 100, &l1, NULL), NFS4_OK);
    CHECK_EQ(l1.seqid, 1u); /* a new lock stateid */

    /* client 2 opens for read; its read lock on 50..59 is denied, naming client 1's owner */
    CHECK_EQ(open_name(cl2, "owner2", 0, "f", false, UNCHECKED4, NULL, OPEN4_SHARE_ACCESS_READ, 0, &o2), NFS4_OK);
    CHECK_EQ(open_confirm(&o2, 1), NFS4_OK);
    CHECK_EQ(lock_new(&o2, 2, cl2, "lk2", READ_LT, 50, 10, &l2, &den), NFS4ERR_DENIED);
    CHECK_EQ(den.offset, 0);
    CHECK_EQ(den.length, 100);
    CHECK_EQ(den.locktype, WRITE_LT);
    CHECK_EQ(den.owner.clientid, cl1);
    CHECK(den.owner.owner.len == 3 && memcmp(den.owner.owner.val, "lk1", 3) == 0);
    /* a write lock on a read-only open is OPENMODE */
    CHECK_EQ(lock_new(&o2, 3, cl2, "lk2", WRITE_LT, 500, 10, &l2, NULL), NFS4ERR_OPENMODE);
    /* beyond the conflict: granted */
    CHECK_EQ(lock_new(&o2, 4, cl2, "lk2", READ_LT, 100, UINT64_MAX, &l2, NULL), NFS4_OK);
    /* LOCKT */
    CHECK_EQ(lockt(&o2, cl2, "lk2", WRITE_LT, 0, 1), NFS4ERR_DENIED);
    CHECK_EQ(lockt(&o2, cl1, "lk1", WRITE_LT, 0, 1), NFS4_OK); /* own lock */
    CHECK_EQ(lockt(&o2, cl1, "lk1", WRITE_LT, 100, 1), NFS4ERR_DENIED);

    /* The same file through NLM's file identity (export id + backend handle) conflicts */
    uint8_t key[2 + FS_FH_MAX];
    key[0] = (uint8_t)(o1.fh.ex->id >> 8);
    key[1] = (uint8_t)o1.fh.ex->id;
    memcpy(key + 2, o1.fh.fh.data, o1.fh.fh.len);
    struct lock_file_id fid = {key, 2u + o1.fh.fh.len, open_by_fh, &o1.fh};
    struct lock_owner *nlm = lock_owner_get(srv.locks, "nlmhost:1", 9, "nlmhost", 7);
    CHECK(nlm != NULL);
    struct lock_conflict k = {0};
    CHECK_EQ(lock_test(srv.locks, nlm, &fid, LOCK_SHARED, 10, 1, &k), LOCK_DENIED);
    if (k.holder)
        lock_owner_put(k.holder);
    lock_owner_put(nlm);

    /* 4.0 CLOSE with locks held; LOCKU (with a replay) then CLOSE */
    CHECK_EQ(close_open(&o1, 15), NFS4ERR_LOCKS_HELD);
    CHECK_EQ(lock_exist(&o1, &l1, 1, READ_LT, 0, 10), NFS4_OK); /* downgrade part of it */
    stateid4 l1_before = l1;
    CHECK_EQ(locku(&o1, &l1, 2, 0, UINT64_MAX), NFS4_OK);
    CHECK_EQ(l1.seqid, l1_before.seqid + 1);
    CHECK_EQ(locku(&o1, &l1_before, 2, 0, UINT64_MAX), NFS4_OK);
    CHECK(last_was_replay);
    CHECK_EQ(locku(&o1, &l1, 3, 0, 1), NFS4_OK); /* nothing locked: fine */
    CHECK_EQ(lockt(&o2, cl2, "lk2", WRITE_LT, 0, 100), NFS4_OK);
    CHECK_EQ(close_open(&o1, 16), NFS4_OK);
    CHECK_EQ(close_open(&o1, 17), NFS4ERR_BAD_STATEID);

    /* RELEASE_LOCKOWNER: LOCKS_HELD while client 2's owner holds 100.., then OK */
    nfs_argop4 a = {.oprelease_lockowner = {.lock_owner = {.clientid = cl2, .owner = {3, (const uint8_t *)"lk2"}}}};
    nfs_resop4 r;
    CHECK_EQ(run(nfs4_op_release_lockowner, OP_RELEASE_LOCKOWNER, &a, &r), NFS4ERR_LOCKS_HELD);
    CHECK_EQ(locku(&o2, &l2, 1, 0, UINT64_MAX), NFS4_OK);
    CHECK_EQ(run(nfs4_op_release_lockowner, OP_RELEASE_LOCKOWNER, &a, &r), NFS4_OK);
    CHECK_EQ(close_open(&o2, 5), NFS4_OK);

    struct lock_space_stats ls;
    lock_space_stats(srv.locks, &ls);
    CHECK_EQ(ls.fds, 0);
}

/* pynfs 4.0 cases: CLOSE replays (CLOSE10, CLOSE12), READ through a write-only open
 * (OPEN23b), LOCK's clientid checked first (LOCK10), an owner's own deny (OPEN21). */
static void test_pynfs40(uint64_t cl)
{
    struct opened a1, a2;
    CHECK_EQ(open_name(cl, "rp-owner", 0, "rp1", true, UNCHECKED4, NULL, OPEN4_SHARE_ACCESS_BOTH, 0, &a1), NFS4_OK);
    CHECK_EQ(open_confirm(&a1, 1), NFS4_OK);
    CHECK_EQ(open_name(cl, "rp-owner", 2, "rp2", true, UNCHECKED4, NULL, OPEN4_SHARE_ACCESS_BOTH, 0, &a2), NFS4_OK);
    /* CLOSE, then its retransmission (same seqid, the stateid as it was): the cached reply */
    struct opened closed = a1;
    CHECK_EQ(close_open(&closed, 3), NFS4_OK);
    CHECK_EQ(closed.sid.seqid, a1.sid.seqid + 1);
    struct opened again = a1;
    CHECK_EQ(close_open(&again, 3), NFS4_OK);
    CHECK(last_was_replay); /* (run() does not decode the replayed bytes) */
    again = a1;
    CHECK_EQ(close_open(&again, 3), NFS4_OK); /* and again */
    CHECK(last_was_replay);
    /* not a replay: the closed stateid is no use */
    again = closed;
    CHECK_EQ(close_open(&again, 4), NFS4ERR_BAD_STATEID);
    CHECK(!last_was_replay);
    /* the owner goes on with its other open (CLOSE12); then the first CLOSE is forgotten */
    CHECK_EQ(close_open(&a2, 4), NFS4_OK);
    again = a1;
    CHECK_EQ(close_open(&again, 3), NFS4ERR_BAD_STATEID);
    /* ... and the second one's replay still works */
    again = a2;
    again.sid.seqid--;
    CHECK_EQ(close_open(&again, 4), NFS4_OK);
    CHECK(last_was_replay);

    /* OPEN23b: READ with a write-only open's stateid */
    struct opened w;
    CHECK_EQ(open_name(cl, "wo-owner", 0, "wo", true, UNCHECKED4, NULL, OPEN4_SHARE_ACCESS_WRITE, 0, &w), NFS4_OK);
    CHECK_EQ(open_confirm(&w, 1), NFS4_OK);
    cc.cur = w.fh;
    CHECK_EQ(nfs4_check_io_stateid(&cc, &w.sid, false), NFS4_OK);
    CHECK_EQ(nfs4_check_io_stateid(&cc, &w.sid, true), NFS4_OK);

    /* LOCK10: open_to_lock_owner with an unknown clientid: STALE_CLIENTID before the
     * stateid, and the open owner's seqid is not consumed */
    stateid4 l;
    CHECK_EQ(lock_new(&w, 2, 0, "lk10", WRITE_LT, 0, 10, &l, NULL), NFS4ERR_STALE_CLIENTID);
    CHECK_EQ(lock_new(&w, 2, (uint64_t)state_boot_epoch(srv.state) << 32 | 0xfffffff, "lk10", WRITE_LT, 0, 10, &l,
                      NULL),
             NFS4ERR_STALE_CLIENTID);
    CHECK_EQ(lock_new(&w, 2, cl, "lk10", WRITE_LT, 0, 10, &l, NULL), NFS4_OK);
    CHECK_EQ(locku(&w, &l, 1, 0, 10), NFS4_OK);

    /* OPEN21: the owner's own deny READ refuses its own OPEN for READ */
    struct opened d;
    CHECK_EQ(open_name(cl, "wo-owner", 3, "dr", true, UNCHECKED4, NULL, OPEN4_SHARE_ACCESS_BOTH, OPEN4_SHARE_DENY_READ,
                       &d),
             NFS4_OK);
    CHECK_EQ(open_name(cl, "wo-owner", 4, "dr", false, UNCHECKED4, NULL, OPEN4_SHARE_ACCESS_READ, 0, NULL),
             NFS4ERR_SHARE_DENIED);
    CHECK_EQ(close_open(&d, 5), NFS4_OK);
    CHECK_EQ(close_open(&w, 6), NFS4_OK);
}

/* The Linux 4.0 client's retries of a DENIED LOCK with a new lock owner: each retry is
 * open_to_lock_owner4 again, with lock_seqid 0, 0, 1 and then 2 when granted. A failed
 * new owner leaves no state behind, so each retry starts the lock owner's sequence at
 * its lock_seqid: the LOCKU after the grant (lock_seqid + 1) is accepted, and CLOSE and
 * RELEASE_LOCKOWNER then find no locks. Every LOCK consumes an open owner seqid. */
static void test_new_owner_denied_retry(uint64_t cl1, uint64_t cl2)
{
    struct opened h, o;
    stateid4 hl, l;
    LOCK4denied den;
    CHECK_EQ(open_name(cl1, "kc-holder", 0, "kc", true, UNCHECKED4, NULL, OPEN4_SHARE_ACCESS_BOTH, 0, &h), NFS4_OK);
    CHECK_EQ(open_confirm(&h, 1), NFS4_OK);
    CHECK_EQ(lock_new(&h, 2, cl1, "kc-hl", WRITE_LT, 0, UINT64_MAX, &hl, NULL), NFS4_OK);
    CHECK_EQ(open_name(cl2, "kc-owner", 0, "kc", false, UNCHECKED4, NULL, OPEN4_SHARE_ACCESS_BOTH, 0, &o), NFS4_OK);
    CHECK_EQ(open_confirm(&o, 1), NFS4_OK);

    CHECK_EQ(lock_new_seq(&o, 2, cl2, "kc-lk", 0, WRITE_LT, 0, UINT64_MAX, &l, &den), NFS4ERR_DENIED);
    CHECK_EQ(lock_new_seq(&o, 3, cl2, "kc-lk", 0, WRITE_LT, 0, UINT64_MAX, &l, &den), NFS4ERR_DENIED);
    CHECK(!last_was_replay);
    /* a retransmission of that LOCK (same open seqid) answers from the open owner's cache */
    CHECK_EQ(lock_new_seq(&o, 3, cl2, "kc-lk", 0, WRITE_LT, 0, UINT64_MAX, &l, NULL), NFS4ERR_DENIED);
    CHECK(last_was_replay);
    CHECK_EQ(lock_new_seq(&o, 4, cl2, "kc-lk", 1, WRITE_LT, 0, UINT64_MAX, &l, &den), NFS4ERR_DENIED);
    /* the open owner's seqid is checked (and was consumed by each LOCK above) */
    CHECK_EQ(lock_new_seq(&o, 4, cl2, "kc-lk", 2, WRITE_LT, 0, 10, &l, NULL), NFS4ERR_DENIED);
    CHECK(last_was_replay);
    CHECK_EQ(lock_new_seq(&o, 7, cl2, "kc-lk", 2, WRITE_LT, 0, UINT64_MAX, &l, NULL), NFS4ERR_BAD_SEQID);

    CHECK_EQ(locku(&h, &hl, 1, 0, UINT64_MAX), NFS4_OK);
    CHECK_EQ(lock_new_seq(&o, 5, cl2, "kc-lk", 2, WRITE_LT, 0, UINT64_MAX, &l, NULL), NFS4_OK);
    CHECK_EQ(l.seqid, 1u);
    CHECK_EQ(lock_exist(&o, &l, 4, WRITE_LT, 0, 10), NFS4ERR_BAD_SEQID); /* not lock_seqid + 1 */
    CHECK_EQ(locku(&o, &l, 3, 0, UINT64_MAX), NFS4_OK);
    CHECK_EQ(l.seqid, 2u);
    /* unlocked: RELEASE_LOCKOWNER finds no locks */
    nfs_argop4 ra = {.oprelease_lockowner = {.lock_owner = {.clientid = cl2, .owner = {5, (const uint8_t *)"kc-lk"}}}};
    nfs_resop4 rr;
    CHECK_EQ(run(nfs4_op_release_lockowner, OP_RELEASE_LOCKOWNER, &ra, &rr), NFS4_OK);
    CHECK_EQ(close_open(&o, 6), NFS4_OK);

    /* granted on the first retry with lock_seqid 1: the LOCKU then uses 2 */
    CHECK_EQ(open_name(cl2, "kc-owner", 7, "kc", false, UNCHECKED4, NULL, OPEN4_SHARE_ACCESS_BOTH, 0, &o), NFS4_OK);
    CHECK_EQ(lock_new(&h, 3, cl1, "kc-hl2", READ_LT, 0, 1, &hl, NULL), NFS4_OK);
    CHECK_EQ(lock_new_seq(&o, 8, cl2, "kc-lk2", 0, WRITE_LT, 0, UINT64_MAX, &l, &den), NFS4ERR_DENIED);
    CHECK_EQ(locku(&h, &hl, 1, 0, UINT64_MAX), NFS4_OK);
    CHECK_EQ(lock_new_seq(&o, 9, cl2, "kc-lk2", 1, WRITE_LT, 0, UINT64_MAX, &l, NULL), NFS4_OK);
    CHECK_EQ(locku(&o, &l, 2, 0, UINT64_MAX), NFS4_OK);
    CHECK_EQ(close_open(&o, 10), NFS4_OK);
    CHECK_EQ(close_open(&h, 4), NFS4_OK);
}

/* OPEN (no create) by owner "prev-owner" with a CLAIM_DELEGATE_PREV (name) or
 * CLAIM_DELEG_PREV_FH (the current filehandle) claim. */
static nfsstat4 open_prev(uint64_t clientid, uint32_t seqid, open_claim_type4 claim, const char *name)
{
    nfs_argop4 a;
    nfs_resop4 r;
    memset(&a, 0, sizeof(a));
    OPEN4args *o = &a.opopen;
    o->seqid = seqid;
    o->share_access = OPEN4_SHARE_ACCESS_READ;
    o->owner.clientid = clientid;
    o->owner.owner = (struct xdr_opaque){10, (const uint8_t *)"prev-owner"};
    o->openhow.opentype = OPEN4_NOCREATE;
    o->claim.claim = claim;
    if (claim == CLAIM_DELEGATE_PREV)
        o->claim.file_delegate_prev = NAME(name);
    cur_root();
    nfsstat4 st = run(nfs4_op_open, OP_OPEN, &a, &r);
    CHECK_EQ(r.opopen.status, st);
    return st;
}

/* DELEGPURGE: 4.0 names the client (unknown: STALE_CLIENTID); nothing awaiting is OK.
 * A delegation reclaim of a client that never had one is RECLAIM_BAD, whether the name
 * exists or not (a reclaim creates nothing); CLAIM_DELEG_PREV_FH is no 4.0 claim. */
static void test_deleg_ops(uint64_t cl)
{
    nfs_argop4 a;
    nfs_resop4 r;
    memset(&a, 0, sizeof(a));
    cur_root();
    CHECK_EQ(run(nfs4_op_delegreturn, OP_DELEGRETURN, &a, &r), NFS4ERR_BAD_STATEID);
    CHECK_EQ(run(nfs4_op_delegpurge, OP_DELEGPURGE, &a, &r), NFS4ERR_STALE_CLIENTID);
    a.opdelegpurge.clientid = cl;
    CHECK_EQ(run(nfs4_op_delegpurge, OP_DELEGPURGE, &a, &r), NFS4_OK);
    memset(&a, 0, sizeof(a));
    CHECK_EQ(run(nfs4_op_openattr, OP_OPENATTR, &a, &r), NFS4ERR_NOTSUPP);

    struct opened o;
    CHECK_EQ(open_name(cl, "prev-maker", 1, "prev-file", true, UNCHECKED4, NULL, OPEN4_SHARE_ACCESS_READ, 0, &o),
             NFS4_OK);
    CHECK_EQ(open_prev(cl, 1, CLAIM_DELEGATE_PREV, "prev-file"), NFS4ERR_RECLAIM_BAD);
    CHECK_EQ(open_prev(cl, 2, CLAIM_DELEGATE_PREV, "prev-missing"), NFS4ERR_RECLAIM_BAD);
    struct stat st;
    char path[192];
    snprintf(path, sizeof(path), "%s/prev-missing", path_rw);
    CHECK(stat(path, &st) != 0); /* not created */
    CHECK_EQ(open_prev(cl, 3, CLAIM_DELEG_PREV_FH, NULL), NFS4ERR_INVAL);
}

/* 4.1: no seqids, the current stateid, NONE_EXT answers, CLOSE frees the locks. */
static void test_v41(void)
{
    uint8_t verf[8] = {4, 1, 4, 1, 4, 1, 4, 1};
    struct state_exchange_id_res xr;
    CHECK_EQ(state_exchange_id(srv.state, "client-41", 9, verf, 0, &principal, 1, &xr), STATE_OK);
    struct state_create_session_args csa = {
        .clientid = xr.clientid,
        .sequence = xr.sequenceid,
        .fore = {0, 1 << 20, 1 << 20, 8192, 16, 8},
        .back = {0, 4096, 4096, 0, 2, 1},
        .principal = &principal,
    };
    struct state_create_session_res csr;
    CHECK_EQ(state_create_session(srv.state, &csa, &csr), STATE_OK);
    struct state_client *client = NULL;
    CHECK_EQ(state_client_lookup(srv.state, xr.clientid, &client), STATE_OK);
    if (!client)
        return;
    CHECK_EQ(state_reclaim_complete(srv.state, client), STATE_OK); /* before any OPEN */
    cc.minor = 1;
    cc.client = client;

    nfs_argop4 a;
    nfs_resop4 r;
    memset(&a, 0, sizeof(a));
    a.opopen.share_access = OPEN4_SHARE_ACCESS_BOTH | OPEN4_SHARE_ACCESS_WANT_NO_DELEG;
    a.opopen.owner.owner = (struct xdr_opaque){4, (const uint8_t *)"o41"};
    a.opopen.openhow.opentype = OPEN4_CREATE;
    a.opopen.openhow.how.mode = GUARDED4;
    a.opopen.claim.claim = CLAIM_NULL;
    a.opopen.claim.file = NAME("f41");
    cur_root();
    CHECK_EQ(run(nfs4_op_open, OP_OPEN, &a, &r), NFS4_OK);
    CHECK(!(r.opopen.resok4.rflags & OPEN4_RESULT_CONFIRM));
    CHECK_EQ(r.opopen.resok4.delegation.delegation_type, OPEN_DELEGATE_NONE_EXT);
    CHECK_EQ(r.opopen.resok4.delegation.od_whynone.ond_why, WND4_NOT_WANTED);
    CHECK(cc.have_cur_stateid && memcmp(&cc.cur_stateid, &r.opopen.resok4.stateid, sizeof(stateid4)) == 0);
    struct nfs4_fh file = cc.cur;
    stateid4 open_sid = r.opopen.resok4.stateid;

    /* LOCK with the current stateid (seqid 1, other 0) */
    stateid4 current = {.seqid = 1};
    memset(&a, 0, sizeof(a));
    a.oplock.locktype = WRITEW_LT;
    a.oplock.offset = 0;
    a.oplock.length = UINT64_MAX;
    a.oplock.locker.new_lock_owner = true;
    a.oplock.locker.open_owner.open_stateid = current;
    a.oplock.locker.open_owner.lock_owner.owner = (struct xdr_opaque){4, (const uint8_t *)"l41"};
    a.oplock.locker.open_owner.lock_owner.clientid = 0; /* ignored in 4.1: the session's client */
    CHECK_EQ(run(nfs4_op_lock, OP_LOCK, &a, &r), NFS4_OK);
    struct lock_space_stats ls;
    lock_space_stats(srv.locks, &ls);
    CHECK_EQ(ls.fds, 1);
    /* the lock stateid with seqid 0 ("the current one") for I/O */
    stateid4 lsid = r.oplock.resok4.lock_stateid;
    lsid.seqid = 0;
    CHECK_EQ(nfs4_check_io_stateid(&cc, &lsid, true), NFS4_OK);
    stateid4 invalid = {.seqid = UINT32_MAX};
    CHECK_EQ(nfs4_check_io_stateid(&cc, &invalid, false), NFS4ERR_BAD_STATEID);
    /* FREE_STATEID of a lock stateid whose owner holds locks: LOCKS_HELD (RFC 8881 18.38.3) */
    memset(&a, 0, sizeof(a));
    a.opfree_stateid.fsa_stateid = lsid;
    CHECK_EQ(run(nfs4_op_free_stateid, OP_FREE_STATEID, &a, &r), NFS4ERR_LOCKS_HELD);
    CHECK_EQ(nfs4_check_io_stateid(&cc, &lsid, true), NFS4_OK);

    /* CLOSE frees the locks and answers the invalid special stateid */
    memset(&a, 0, sizeof(a));
    a.opclose.open_stateid = open_sid;
    a.opclose.open_stateid.seqid = 0;
    cc.cur = file;
    CHECK_EQ(run(nfs4_op_close, OP_CLOSE, &a, &r), NFS4_OK);
    CHECK_EQ(r.opclose.open_stateid.seqid, UINT32_MAX);
    lock_space_stats(srv.locks, &ls);
    CHECK_EQ(ls.fds, 0);
    CHECK_EQ(nfs4_check_io_stateid(&cc, &open_sid, false), NFS4ERR_BAD_STATEID);
    /* 4.1 keeps no closed stateid (replays come from the slot cache) */
    CHECK_EQ(run(nfs4_op_close, OP_CLOSE, &a, &r), NFS4ERR_BAD_STATEID);

    cc.minor = 0;
    cc.client = NULL;
    cc.have_cur_stateid = false;
    state_client_put(client);
}

/* ---- setup ---- */

static int setup(void)
{
    char text[512], file[192], err[256];

    strcpy(tmpdir, "/tmp/peernfs-open4-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        tmpdir[0] = '\0';
        return -1;
    }
    snprintf(path_rw, sizeof(path_rw), "%s/rw", tmpdir);
    if (mkdir(path_rw, 0755))
        return -1;
    snprintf(text, sizeof(text), "%s 127.0.0.1(rw,no_root_squash,fsid=21)\n", path_rw);
    snprintf(file, sizeof(file), "%s/exports", tmpdir);
    FILE *f = fopen(file, "w");
    if (!f)
        return -1;
    fputs(text, f);
    fclose(f);
    if (export_table_load(&table, file, err, sizeof(err))) {
        fprintf(stderr, "export_table_load: %s\n", err);
        return -1;
    }
    srv.exports = &table;
    memset(srv.fh_key.k, 0x5a, sizeof(srv.fh_key.k));
    if (pseudo_fs_build(&srv.pseudo, &table, &srv.fh_key))
        return -1;
    srv.locks = lock_space_create(NULL);
    if (!srv.locks)
        return -1;
    struct state_params sp = {.grace_time_s = UINT32_MAX, .locks = srv.locks};
    srv.state = state_server_create(&sp);
    if (!srv.state)
        return -1;
    peer.sin_family = AF_INET;
    peer.sin_port = htons(700);
    peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    call.peer = (const struct sockaddr *)&peer;
    call.peer_len = sizeof(peer);
    call.cred.flavor = RPC_AUTH_SYS;
    call.cred.has_ids = true;
    cc.call = &call;
    cc.srv = &srv;
    cc.minor = 0;
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)type, (void)ftw;
    return remove(path) < 0 ? -1 : 0;
}

static void teardown(void)
{
    if (srv.state)
        state_server_destroy(srv.state);
    if (srv.locks)
        lock_space_destroy(srv.locks);
    pseudo_fs_free(&srv.pseudo);
    export_table_free(&table);
    if (tmpdir[0] && nftw(tmpdir, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
}

int main(void)
{
    if (geteuid() != 0) {
        printf("test_nfs4_lock_open: skipped (needs root for open_by_handle_at)\n");
        return 77;
    }
    if (setup() != 0) {
        fprintf(stderr, "test_nfs4_lock_open: setup failed: %s\n", strerror(errno));
        teardown();
        return 1;
    }
    uint64_t cl1 = new_client("client-one"), cl2 = new_client("client-two");
    test_open_create_modes(cl1);
    test_open_lock_close(cl1, cl2);
    test_pynfs40(cl1);
    test_new_owner_denied_retry(cl1, cl2);
    test_deleg_ops(cl1);
    test_v41();
    teardown();
    return check_report("test_nfs4_lock_open");
}
