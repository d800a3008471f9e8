/*
 * NLM v4 procedures (XNFS chapter 10) on the lock space. The logic of each procedure
 * (nlm_do_*) is shared with versions 1 and 3 (nlm_proc1.c), which translate to and
 * from the v4 types around it.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fh.h"
#include "nlm/nlm_internal.h"
#include "util/log.h"
#include "xdr/sm_inter_xdr.h"

#define NLM_MSG_TO_RES 5u     /* TEST_MSG (6) answers with TEST_RES (11), ... */
#define NLM_GRANT_ATTEMPTS 5u /* ~15 s of retries, then the lock is released */
#define NLM_RES_ATTEMPTS 3u
#define NLM_ARGS_MAX 8192u    /* encoded nlm4_testargs / results: < 4.2 KiB */

/* The file a lock names, as the lock space sees it. */
struct nlm_file {
    struct export *ex;
    struct fs_fh fh;
    uint8_t key[2 + FS_FH_MAX];
    struct lock_file_id id;
};

static int nlm_open_file(void *ctx, int flags)
{
    struct nlm_file *f = ctx;
    int fd = f->ex->ops->open_fd ? f->ex->ops->open_fd(f->ex->fs, &f->fh, flags) : -EOPNOTSUPP;
    if (fd < 0)
        log_debug("nlm: opening the file for locking: %s", strerror(-fd));
    return fd;
}

static void nlm_file_bind(struct nlm_file *f)
{
    f->key[0] = (uint8_t)(f->ex->id >> 8);
    f->key[1] = (uint8_t)f->ex->id;
    memcpy(f->key + 2, f->fh.data, f->fh.len);
    f->id = (struct lock_file_id){ f->key, 2u + f->fh.len, nlm_open_file, f };
}

/* An NFSv3 handle -> the file, checking the caller against the export's rules. */
static nlm4_stats nlm_file_resolve(struct rpc_call *call, const netobj *wire, struct nlm_file *f)
{
    struct nlm_service *s = call->prog_ctx;

    memset(f, 0, sizeof(*f));
    if (fh_unwrap(&s->nfs->fh_key, s->nfs->exports, wire->val, wire->len, &f->ex, &f->fh) < 0)
        return NLM4_STALE_FH;
    if (!export_client_rule(f->ex, call->peer)) {
        log_info("nlm: file handle of an export not exported to this client");
        return NLM4_FAILED;
    }
    nlm_file_bind(f);
    return NLM4_GRANTED;
}

/*
 * NFSv4 delegations: an NFSv4 client may hold byte-range locks of a delegated file
 * only locally, so a lock (or TEST) of such a file from an NFSv3 client first recalls
 * the delegation: exclusive conflicts with any delegation, shared with a write one.
 * While the recall runs the answer is NLM4_DENIED_GRACE_PERIOD, on which clients wait
 * and retry (Linux: every 5 s; DENIED would fail the request, and TEST would need a
 * holder to name). A reclaim gets no answer at all, as knfsd's lockd does for every
 * request here: the Linux client fails a reclaim on GRACE_PERIOD, but retransmits an
 * unanswered one.
 */
static nlm4_stats nlm_deleg_busy(const struct nlm_service *s, const struct nlm_file *f, bool exclusive,
                                 bool reclaim)
{
    if (!nfs_deleg_break(s->nfs, f->ex, &f->fh, exclusive))
        return NLM4_GRANTED;
    return reclaim ? NLM_DROP_REPLY : NLM4_DENIED_GRACE_PERIOD;
}

struct nlm_who {
    uint8_t owner[NLM_KEY_MAX];
    uint8_t host[NLM_KEY_MAX];
    size_t owner_len, host_len;
};

static struct lock_owner *nlm_owner_get(struct nlm_service *s, const nlm4_lock *l, struct nlm_who *w)
{
    w->owner_len = nlm_owner_key(w->owner, l->caller_name.val, l->caller_name.len, l->svid, l->oh.val, l->oh.len);
    w->host_len = nlm_host_key(w->host, l->caller_name.val, l->caller_name.len);
    return lock_owner_get(s->locks, w->owner, w->owner_len, w->host, w->host_len);
}

static enum rpc_accept_status nlm_reply_res(struct rpc_call *call, const netobj *cookie, nlm4_stats st)
{
    if (st == NLM_DROP_REPLY)
        return RPC_NO_REPLY;
    nlm4_res res = { .cookie = *cookie, .stat = { st } };
    return xdr_encode_nlm4_res(&call->res, &res) ? RPC_SUCCESS : RPC_SYSTEM_ERR;
}

/* ---- TEST ---- */

nlm4_stats nlm_do_test(struct rpc_call *call, const nlm4_testargs *a, nlm4_holder *h)
{
    struct nlm_service *s = call->prog_ctx;
    struct nlm_file f;
    struct nlm_who w;
    struct lock_conflict c;

    if (nlm_in_grace(s))
        return NLM4_DENIED_GRACE_PERIOD;
    nlm4_stats st = nlm_file_resolve(call, &a->alock.fh, &f);
    if (st == NLM4_GRANTED)
        st = nlm_deleg_busy(s, &f, a->exclusive, false);
    if (st != NLM4_GRANTED)
        return st;
    struct lock_owner *o = nlm_owner_get(s, &a->alock, &w);
    if (!o)
        return NLM4_DENIED_NOLOCKS;
    enum lock_status ls = lock_test(s->locks, o, &f.id, a->exclusive ? LOCK_EXCLUSIVE : LOCK_SHARED,
                                    a->alock.l_offset, a->alock.l_len, &c);
    lock_owner_put(o);
    if (ls != LOCK_DENIED)
        return nlm_status(ls);
    memset(h, 0, sizeof(*h));
    h->exclusive = c.type == LOCK_EXCLUSIVE;
    h->l_offset = c.start;
    h->l_len = c.len;
    h->svid = (int32_t)c.pid; /* a local process */
    if (c.holder) {
        size_t klen, ohlen;
        const uint8_t *key = lock_owner_key(c.holder, &klen), *oh;
        int32_t svid;
        /* the key lives as long as the owner: copy the owner handle into the arena */
        if (nlm_owner_key_parse(key, klen, &svid, &oh, &ohlen)) {
            uint8_t *copy = ohlen ? xdr_arena_alloc(call->args.arena, ohlen, 1) : NULL;
            h->svid = svid;
            if (copy) {
                memcpy(copy, oh, ohlen);
                h->oh = (netobj){ (uint32_t)ohlen, copy };
            }
        }
        lock_owner_put(c.holder);
    }
    return NLM4_DENIED;
}

static bool nlm_enc_testres(struct xdr_enc *x, const netobj *cookie, nlm4_stats st, const nlm4_holder *h)
{
    nlm4_testres res = { .cookie = *cookie };
    res.stat.stat = st;
    if (st == NLM4_DENIED)
        res.stat.holder = *h;
    return xdr_encode_nlm4_testres(x, &res);
}

/* ---- LOCK: blocked waiters ---- */

struct nlm_block {
    struct nlm_block *next, *prev;
    struct nlm_service *s;
    struct lock_owner *owner;
    struct nlm_file file;
    uint64_t start, len;
    struct sockaddr_storage peer;
    socklen_t peer_len;
    uint32_t vers;   /* the client's NLM version: GRANTED is called back in it */
    size_t args_len; /* the GRANTED call's arguments (nlm4_testargs or nlm1_), encoded */
    uint8_t args[];
};

static void nlm_block_unlink(struct nlm_service *s, struct nlm_block *b)
{
    pthread_mutex_lock(&s->mu);
    if (b->prev)
        b->prev->next = b->next;
    else if (s->blocks == b)
        s->blocks = b->next;
    if (b->next)
        b->next->prev = b->prev;
    b->next = b->prev = NULL;
    pthread_mutex_unlock(&s->mu);
}

static void nlm_block_free(struct nlm_block *b)
{
    lock_owner_put(b->owner);
    free(b);
}

/* The client answered the GRANTED callback (or never did: status -1). */
static void nlm_grant_done(struct nlm_service *s, void *arg, int status)
{
    struct nlm_block *b = arg;
    if (status != NLM4_GRANTED) {
        log_info("nlm: GRANTED callback %s: releasing the lock",
                 status < 0 ? "unanswered" : "refused by the client");
        lock_unlock(s->locks, b->owner, &b->file.id, b->start, b->len);
    } else {
        log_debug("nlm: GRANTED callback accepted");
    }
    nlm_block_free(b);
}

/* Lock space thread: the waiter got its lock (or failed). */
static void nlm_granted(void *arg, enum lock_status st)
{
    struct nlm_block *b = arg;
    struct nlm_service *s = b->s;

    nlm_block_unlink(s, b);
    if (st != LOCK_OK) {
        nlm_block_free(b); /* the client's next LOCK retransmission gets the error */
        return;
    }
    if (nlm_callback(s, (struct sockaddr *)&b->peer, b->peer_len, b->vers, NLMPROC4_GRANTED, b->args,
                     b->args_len, NLM_GRANT_ATTEMPTS, nlm_grant_done, b) < 0) {
        lock_unlock(s->locks, b->owner, &b->file.id, b->start, b->len);
        nlm_block_free(b);
    }
}

static struct nlm_block *nlm_block_new(struct rpc_call *call, const nlm4_lockargs *a, const struct nlm_file *f,
                                       struct lock_owner *o)
{
    uint8_t *buf = malloc(NLM_ARGS_MAX);
    struct xdr_enc x;
    nlm4_testargs g = { .cookie = a->cookie, .exclusive = a->exclusive, .alock = a->alock };

    if (!buf)
        return NULL;
    xdr_enc_init(&x, buf, NLM_ARGS_MAX);
    struct nlm_block *b = NULL;
    bool encoded = call->vers == NLM4_VERS ? xdr_encode_nlm4_testargs(&x, &g) : nlm1_encode_testargs(&x, &g);
    if (encoded && call->peer_len <= sizeof(b->peer))
        b = calloc(1, sizeof(*b) + xdr_enc_len(&x));
    if (b) {
        b->s = call->prog_ctx;
        b->owner = lock_owner_ref(o);
        b->file = *f;
        nlm_file_bind(&b->file);
        b->start = a->alock.l_offset;
        b->len = a->alock.l_len;
        memcpy(&b->peer, call->peer, call->peer_len);
        b->peer_len = call->peer_len;
        b->vers = call->vers;
        b->args_len = xdr_enc_len(&x);
        memcpy(b->args, buf, b->args_len);
    }
    free(buf);
    return b;
}

static void nlm_monitor(struct rpc_call *call, const nlm4_lock *l)
{
    struct nlm_service *s = call->prog_ctx;
    if (s->cfg.nsm)
        nlm_nsm_monitor(s, call->peer, l->caller_name.val, l->caller_name.len);
}

nlm4_stats nlm_do_lock(struct rpc_call *call, const nlm4_lockargs *a, bool monitored)
{
    struct nlm_service *s = call->prog_ctx;
    struct nlm_file f;
    struct nlm_who w;

    if (nlm_in_grace(s) && !a->reclaim)
        return NLM4_DENIED_GRACE_PERIOD;
    nlm4_stats st = nlm_file_resolve(call, &a->alock.fh, &f);
    if (st == NLM4_GRANTED)
        st = nlm_deleg_busy(s, &f, a->exclusive, a->reclaim);
    if (st != NLM4_GRANTED)
        return st;
    struct lock_owner *o = nlm_owner_get(s, &a->alock, &w);
    if (!o)
        return NLM4_DENIED_NOLOCKS;
    struct lock_req req = { .type = a->exclusive ? LOCK_EXCLUSIVE : LOCK_SHARED,
                            .start = a->alock.l_offset, .len = a->alock.l_len };
    struct nlm_block *b = NULL;
    if (a->block && monitored) {
        if (!(b = nlm_block_new(call, a, &f, o))) {
            lock_owner_put(o);
            return NLM4_DENIED_NOLOCKS;
        }
        req.wait = true;
        req.granted = nlm_granted;
        req.arg = b;
        /* listed before the lock space may call nlm_granted on its thread */
        pthread_mutex_lock(&s->mu);
        b->next = s->blocks;
        if (s->blocks)
            s->blocks->prev = b;
        s->blocks = b;
        pthread_mutex_unlock(&s->mu);
    }
    enum lock_status ls = lock_lock(s->locks, o, &f.id, &req, NULL);
    if (b && ls != LOCK_BLOCKED) {
        nlm_block_unlink(s, b);
        nlm_block_free(b);
    }
    lock_owner_put(o);
    if (ls != LOCK_OK && ls != LOCK_BLOCKED && ls != LOCK_DENIED)
        log_info("nlm: LOCK: %s", lock_status_name(ls));
    if (a->reclaim && ls == LOCK_OK) /* recovery after our restart: worth a line */
        log_info("nlm: reclaimed %s lock of %.*s (svid %d) at %llu, length %llu%s",
                 a->exclusive ? "write" : "read", (int)a->alock.caller_name.len, a->alock.caller_name.val,
                 (int)a->alock.svid, (unsigned long long)a->alock.l_offset, (unsigned long long)a->alock.l_len,
                 nlm_in_grace(s) ? "" : " (after the grace period)");
    if (monitored && (ls == LOCK_OK || ls == LOCK_BLOCKED || ls == LOCK_ALREADY_QUEUED))
        nlm_monitor(call, &a->alock);
    return nlm_status(ls);
}

/* ---- CANCEL, UNLOCK ---- */

nlm4_stats nlm_do_cancel(struct rpc_call *call, const nlm4_cancargs *a)
{
    struct nlm_service *s = call->prog_ctx;
    struct nlm_file f;
    struct nlm_who w;

    nlm4_stats st = nlm_file_resolve(call, &a->alock.fh, &f);
    if (st != NLM4_GRANTED)
        return st;
    struct lock_owner *o = nlm_owner_get(s, &a->alock, &w);
    if (!o)
        return NLM4_DENIED_NOLOCKS;
    enum lock_status ls = lock_cancel(s->locks, o, &f.id, a->exclusive ? LOCK_EXCLUSIVE : LOCK_SHARED,
                                      a->alock.l_offset, a->alock.l_len);
    /* NOT_QUEUED: granted meanwhile (or never queued); the client gave up waiting, so
     * "cancelled" must mean "not held" */
    if (ls == LOCK_NOT_QUEUED)
        lock_unlock(s->locks, o, &f.id, a->alock.l_offset, a->alock.l_len);
    lock_owner_put(o);
    return NLM4_GRANTED;
}

nlm4_stats nlm_do_unlock(struct rpc_call *call, const nlm4_unlockargs *a)
{
    struct nlm_service *s = call->prog_ctx;
    struct nlm_file f;
    struct nlm_who w;

    nlm4_stats st = nlm_file_resolve(call, &a->alock.fh, &f);
    if (st != NLM4_GRANTED)
        return st;
    struct lock_owner *o = nlm_owner_get(s, &a->alock, &w);
    if (!o)
        return NLM4_DENIED_NOLOCKS;
    enum lock_status ls = lock_unlock(s->locks, o, &f.id, a->alock.l_offset, a->alock.l_len);
    lock_owner_put(o);
    /* unlocking what is not held is success; a file gone since is too */
    return ls == LOCK_STALE ? NLM4_GRANTED : nlm_status(ls);
}

/* ---- the procedures ---- */

static enum rpc_accept_status nlm4_proc_null(struct rpc_call *call)
{
    (void)call;
    return RPC_SUCCESS;
}

/* *_MSG: answer with a call of the matching *_RES procedure to the client's lockd. */
enum rpc_accept_status nlm_send_res(struct rpc_call *call, struct xdr_enc *x)
{
    struct nlm_service *s = call->prog_ctx;
    nlm_callback(s, call->peer, call->peer_len, call->vers, call->proc + NLM_MSG_TO_RES, x->start,
                 xdr_enc_len(x), NLM_RES_ATTEMPTS, NULL, NULL);
    return RPC_SUCCESS; /* void result, as knfsd */
}

static enum rpc_accept_status nlm4_proc_test(struct rpc_call *call)
{
    nlm4_testargs a;
    nlm4_holder h;
    if (!xdr_decode_nlm4_testargs(&call->args, &a))
        return RPC_GARBAGE_ARGS;
    nlm4_stats st = nlm_do_test(call, &a, &h);
    if (call->proc == NLMPROC4_TEST)
        return nlm_enc_testres(&call->res, &a.cookie, st, &h) ? RPC_SUCCESS : RPC_SYSTEM_ERR;
    uint8_t buf[NLM_ARGS_MAX];
    struct xdr_enc x;
    xdr_enc_init(&x, buf, sizeof(buf));
    return nlm_enc_testres(&x, &a.cookie, st, &h) ? nlm_send_res(call, &x) : RPC_SYSTEM_ERR;
}

static enum rpc_accept_status nlm_reply_or_msg(struct rpc_call *call, const netobj *cookie, nlm4_stats st)
{
    if (st == NLM_DROP_REPLY)
        return RPC_NO_REPLY;
    if (call->proc < NLMPROC4_TEST_MSG || call->proc > NLMPROC4_GRANTED_MSG)
        return nlm_reply_res(call, cookie, st);
    uint8_t buf[MAXNETOBJ_SZ + 64];
    struct xdr_enc x;
    nlm4_res res = { .cookie = *cookie, .stat = { st } };
    xdr_enc_init(&x, buf, sizeof(buf));
    return xdr_encode_nlm4_res(&x, &res) ? nlm_send_res(call, &x) : RPC_SYSTEM_ERR;
}

static enum rpc_accept_status nlm4_proc_lock(struct rpc_call *call)
{
    nlm4_lockargs a;
    if (!xdr_decode_nlm4_lockargs(&call->args, &a))
        return RPC_GARBAGE_ARGS;
    return nlm_reply_or_msg(call, &a.cookie, nlm_do_lock(call, &a, true));
}

/* NM_LOCK: a lock from a host that is not monitored (no statd): never blocks. */
static enum rpc_accept_status nlm4_proc_nm_lock(struct rpc_call *call)
{
    nlm4_lockargs a;
    if (!xdr_decode_nlm4_lockargs(&call->args, &a))
        return RPC_GARBAGE_ARGS;
    a.block = false;
    return nlm_reply_res(call, &a.cookie, nlm_do_lock(call, &a, false));
}

static enum rpc_accept_status nlm4_proc_cancel(struct rpc_call *call)
{
    nlm4_cancargs a;
    if (!xdr_decode_nlm4_cancargs(&call->args, &a))
        return RPC_GARBAGE_ARGS;
    return nlm_reply_or_msg(call, &a.cookie, nlm_do_cancel(call, &a));
}

static enum rpc_accept_status nlm4_proc_unlock(struct rpc_call *call)
{
    nlm4_unlockargs a;
    if (!xdr_decode_nlm4_unlockargs(&call->args, &a))
        return RPC_GARBAGE_ARGS;
    return nlm_reply_or_msg(call, &a.cookie, nlm_do_unlock(call, &a));
}

/* GRANTED is the server's callback to a client; as a server we have no waiting locks. */
static enum rpc_accept_status nlm4_proc_granted(struct rpc_call *call)
{
    nlm4_testargs a;
    if (!xdr_decode_nlm4_testargs(&call->args, &a))
        return RPC_GARBAGE_ARGS;
    return nlm_reply_or_msg(call, &a.cookie, NLM4_DENIED);
}

/* *_RES: answers to *_MSG calls we never make (GRANTED_RES: we call GRANTED). */
static enum rpc_accept_status nlm4_proc_res(struct rpc_call *call)
{
    nlm4_res r;
    nlm4_testres t;
    bool ok = call->proc == NLMPROC4_TEST_RES ? xdr_decode_nlm4_testres(&call->args, &t)
                                              : xdr_decode_nlm4_res(&call->args, &r);
    return ok ? RPC_SUCCESS : RPC_GARBAGE_ARGS;
}

nlm4_stats nlm_do_share(struct rpc_call *call, const nlm4_shareargs *a, bool share)
{
    struct nlm_service *s = call->prog_ctx;
    struct nlm_file f;
    struct nlm_who w;

    if (share && nlm_in_grace(s) && !a->reclaim)
        return NLM4_DENIED_GRACE_PERIOD;
    nlm4_stats st = nlm_file_resolve(call, &a->share.fh, &f);
    if (st != NLM4_GRANTED)
        return st;
    const nlm4_share *sh = &a->share;
    w.owner_len = nlm_owner_key(w.owner, sh->caller_name.val, sh->caller_name.len, 0, sh->oh.val, sh->oh.len);
    w.host_len = nlm_host_key(w.host, sh->caller_name.val, sh->caller_name.len);
    return share ? nlm_share(s, f.key, f.id.key_len, w.owner, w.owner_len, w.host, w.host_len, sh->mode, sh->access)
                 : nlm_unshare(s, f.key, f.id.key_len, w.owner, w.owner_len);
}

static enum rpc_accept_status nlm4_proc_share(struct rpc_call *call)
{
    nlm4_shareargs a;

    if (!xdr_decode_nlm4_shareargs(&call->args, &a))
        return RPC_GARBAGE_ARGS;
    nlm4_shareres res = { .cookie = a.cookie, .sequence = 0 };
    res.stat = nlm_do_share(call, &a, call->proc == NLMPROC4_SHARE);
    return xdr_encode_nlm4_shareres(&call->res, &res) ? RPC_SUCCESS : RPC_SYSTEM_ERR;
}

void nlm_do_free_all(struct rpc_call *call, const struct xdr_string *name)
{
    struct nlm_service *s = call->prog_ctx;
    uint8_t host[NLM_KEY_MAX];

    size_t n = nlm_host_key(host, name->val, name->len);
    log_info("nlm: FREE_ALL from %.*s (version %u)", (int)name->len, name->val, (unsigned)call->vers);
    lock_release_host(s->locks, host, n);
    nlm_share_release_host(s, host, n);
}

static enum rpc_accept_status nlm4_proc_free_all(struct rpc_call *call)
{
    nlm4_notify a;

    if (!xdr_decode_nlm4_notify(&call->args, &a))
        return RPC_GARBAGE_ARGS;
    nlm_do_free_all(call, &a.name);
    return RPC_SUCCESS;
}

static bool nlm_peer_is_loopback(const struct rpc_call *call)
{
    const struct sockaddr *sa = call->peer;
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return sa->sa_family == AF_UNIX;
}

/* statd: a host we monitor rebooted (struct sm_status, on the my_id we gave SM_MON). */
static enum rpc_accept_status nlm4_proc_sm_notify(struct rpc_call *call)
{
    struct nlm_service *s = call->prog_ctx;
    sm_status a;

    if (!xdr_decode_sm_status(&call->args, &a))
        return RPC_GARBAGE_ARGS;
    if (!nlm_peer_is_loopback(call)) {
        char buf[64];
        log_warn("nlm: reboot notification from %s ignored (not loopback)", rpc_call_peer_str(call, buf, sizeof(buf)));
        return RPC_SUCCESS;
    }
    nlm_nsm_rebooted(s, a.mon_name.val, a.mon_name.len);
    return RPC_SUCCESS;
}

#define NLM_P(fn, name) { fn, name, 0 }
static const struct rpc_proc_desc nlm4_procs[] = {
    [NLMPROC4_NULL] = NLM_P(nlm4_proc_null, "NULL"),
    [NLMPROC4_TEST] = NLM_P(nlm4_proc_test, "TEST"),
    [NLMPROC4_LOCK] = NLM_P(nlm4_proc_lock, "LOCK"),
    [NLMPROC4_CANCEL] = NLM_P(nlm4_proc_cancel, "CANCEL"),
    [NLMPROC4_UNLOCK] = NLM_P(nlm4_proc_unlock, "UNLOCK"),
    [NLMPROC4_GRANTED] = NLM_P(nlm4_proc_granted, "GRANTED"),
    [NLMPROC4_TEST_MSG] = NLM_P(nlm4_proc_test, "TEST_MSG"),
    [NLMPROC4_LOCK_MSG] = NLM_P(nlm4_proc_lock, "LOCK_MSG"),
    [NLMPROC4_CANCEL_MSG] = NLM_P(nlm4_proc_cancel, "CANCEL_MSG"),
    [NLMPROC4_UNLOCK_MSG] = NLM_P(nlm4_proc_unlock, "UNLOCK_MSG"),
    [NLMPROC4_GRANTED_MSG] = NLM_P(nlm4_proc_granted, "GRANTED_MSG"),
    [NLMPROC4_TEST_RES] = NLM_P(nlm4_proc_res, "TEST_RES"),
    [NLMPROC4_LOCK_RES] = NLM_P(nlm4_proc_res, "LOCK_RES"),
    [NLMPROC4_CANCEL_RES] = NLM_P(nlm4_proc_res, "CANCEL_RES"),
    [NLMPROC4_UNLOCK_RES] = NLM_P(nlm4_proc_res, "UNLOCK_RES"),
    [NLMPROC4_GRANTED_RES] = NLM_P(nlm4_proc_res, "GRANTED_RES"),
    [NLM_PROC_SM_NOTIFY] = NLM_P(nlm4_proc_sm_notify, "SM_NOTIFY"),
    [NLMPROC4_SHARE] = NLM_P(nlm4_proc_share, "SHARE"),
    [NLMPROC4_UNSHARE] = NLM_P(nlm4_proc_share, "UNSHARE"),
    [NLMPROC4_NM_LOCK] = NLM_P(nlm4_proc_nm_lock, "NM_LOCK"),
    [NLMPROC4_FREE_ALL] = NLM_P(nlm4_proc_free_all, "FREE_ALL"),
};

/* Version 4 first: users that want only it (the fuzz target) take versions[0]. */
static const struct rpc_version_desc nlm_versions[] = {
    { NLM4_VERS, sizeof(nlm4_procs) / sizeof(nlm4_procs[0]), nlm4_procs },
    { NLM_VERS, NLM1_NPROCS, nlm1_procs },
    { NLM_VERSX, NLM3_NPROCS, nlm3_procs },
};

const struct rpc_program_desc nlm_program = { NLM_PROG, "NLM", sizeof(nlm_versions) / sizeof(nlm_versions[0]),
                                              nlm_versions };

/* ---- the service ---- */

bool nlm_in_grace(const struct nlm_service *s)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec < s->grace_end.tv_sec ||
           (now.tv_sec == s->grace_end.tv_sec && now.tv_nsec < s->grace_end.tv_nsec);
}

int nlm_service_init(struct nlm_service *s, struct nfs_service *nfs, const struct nlm_config *cfg)
{
    memset(s, 0, sizeof(*s));
    s->nfs = nfs;
    s->cfg = *cfg;
    clock_gettime(CLOCK_MONOTONIC, &s->grace_end);
    s->grace_end.tv_sec += cfg->grace_secs;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->locks = lock_space_create(&cfg->lock_params);
    if (!s->locks)
        goto fail;
    if (nlm_share_init(s) < 0)
        goto fail;
    if (cfg->nsm && nlm_nsm_init(s) < 0)
        goto fail;
    return 0;
fail:
    nlm_share_fini(s);
    if (s->locks)
        lock_space_destroy(s->locks);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    return -ENOMEM;
}

void nlm_service_start(struct nlm_service *s)
{
    if (s->cfg.nsm)
        nlm_nsm_simu_crash(s);
}

void nlm_service_fini(struct nlm_service *s)
{
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->cv);
    while (s->jobs)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    if (s->cfg.nsm)
        nlm_nsm_fini(s);
    lock_space_destroy(s->locks); /* no callback runs after this */
    for (struct nlm_block *b = s->blocks, *next; b; b = next) {
        next = b->next;
        free(b); /* its owner died with the lock space */
    }
    s->blocks = NULL;
    nlm_share_fini(s);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
}
