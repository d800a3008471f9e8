/*
 * NLM v4 (XNFS; the lock protocol of NFSv3) for NFSv3 clients: TEST, LOCK and UNLOCK,
 * always non-blocking (block = false). We run no lockd, so the server's NLM_GRANTED
 * callback for a blocked request would reach nobody; nfs_lock() polls instead. No statd
 * either: if this host crashes, the server learns it only when the locks are dropped by
 * hand (the server's own reboot is handled by its grace period, which we poll through).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "client/nfs_client_impl.h"
#include "xdr/nlm4_xdr.h"

struct nlm_state {
    pthread_mutex_t mu;
    struct rpc_clnt *rpc;
    char owner[64]; /* the owner handle (oh): unique per client instance */
    int32_t svid;
    uint32_t cookie;
};

static bool enc_testargs(struct xdr_enc *x, const void *v) { return xdr_encode_nlm4_testargs(x, v); }
static bool enc_lockargs(struct xdr_enc *x, const void *v) { return xdr_encode_nlm4_lockargs(x, v); }
static bool enc_unlockargs(struct xdr_enc *x, const void *v)
{
    return xdr_encode_nlm4_unlockargs(x, v);
}

/* Connect to NLM: nlmport=, else rpcbind, else the NFS port (peernfsd serves NLM on it). */
static int nlm_connect(struct nfs_client *c, struct nlm_state *n)
{
    uint16_t port = c->nlmport;
    char err[256];
    if (!port && nfs_client_rpcb_getport(c, NLM_PROG, NLM4_VERS, &port, err, sizeof(err)))
        port = 0;
    struct sockaddr_storage ss = c->addr; /* holds the NFS port */
    if (port)
        nfs_client_set_port(&ss, port);
    int st = 0;
    n->rpc = nfs_client_rpc_connect((struct sockaddr *)&ss, c->addrlen, c->timeout_ms, &st);
    return n->rpc ? 0 : st;
}

static int nlm_get(struct nfs_client *c, struct nlm_state **out)
{
    static pthread_mutex_t init_mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&init_mu);
    int st = 0;
    if (!c->nlm) {
        struct nlm_state *n = calloc(1, sizeof(*n));
        if (!n) {
            st = -ENOMEM;
        } else {
            pthread_mutex_init(&n->mu, NULL);
            uint32_t r = 0;
            if (getrandom(&r, sizeof(r), 0) != sizeof(r))
                r = (uint32_t)(uintptr_t)n;
            n->svid = (int32_t)(r & 0x7fffffff);
            snprintf(n->owner, sizeof(n->owner), "peernfs-%d-%08x", (int)getpid(), r);
            st = nlm_connect(c, n);
            if (st) {
                pthread_mutex_destroy(&n->mu);
                free(n);
            } else {
                c->nlm = n;
            }
        }
    }
    *out = c->nlm;
    pthread_mutex_unlock(&init_mu);
    return st;
}

void nlm_client_free(struct nfs_client *c)
{
    if (!c->nlm)
        return;
    rpc_clnt_destroy(c->nlm->rpc);
    pthread_mutex_destroy(&c->nlm->mu);
    free(c->nlm);
    c->nlm = NULL;
}

static nlm4_lock alock(struct nfs_client *c, struct nlm_state *n, struct nfs_file *f, uint64_t off,
                       uint64_t len)
{
    nlm4_lock l;
    l.caller_name = (struct xdr_string){ c->cred.machinename_len, c->cred.machinename };
    l.fh = (netobj){ f->fh.len, f->fh.data };
    l.oh = (netobj){ (uint32_t)strlen(n->owner), (const uint8_t *)n->owner };
    l.svid = n->svid;
    l.l_offset = off;
    l.l_len = len; /* 0 = to the end, as in our API */
    return l;
}

static int nlm_status(uint32_t stat)
{
    switch (stat) {
    case NLM4_GRANTED: return 0;
    case NLM4_DENIED: return -EAGAIN;
    case NLM4_DENIED_GRACE_PERIOD: return 10013; /* like NFS4ERR_GRACE: retried */
    case NLM4_DEADLCK: return -EDEADLK;
    case NLM4_ROFS: return 30;
    case NLM4_STALE_FH: return 70;
    case NLM4_FBIG: return 27;
    default: return -ENOLCK; /* DENIED_NOLOCKS, BLOCKED (we never block), FAILED */
    }
}

/* One NLM call; for a grace-period answer, wait and retry until timeo runs out. */
static int nlm_call(struct nfs_client *c, uint32_t proc, rpc_xdr_enc_fn enc, void *args,
                    netobj *cookie, struct nfs_lock_conflict *conflict)
{
    struct nlm_state *n;
    int st = nlm_get(c, &n);
    if (st)
        return st;
    int waited_ms = 0;
    for (;;) {
        pthread_mutex_lock(&n->mu);
        uint32_t ck = ++n->cookie;
        pthread_mutex_unlock(&n->mu);
        *cookie = (netobj){ sizeof(ck), (const uint8_t *)&ck };
        struct rpc_reply rep;
        st = rpc_clnt_call(n->rpc, NLM_PROG, NLM4_VERS, proc, &c->cred, enc, args, c->timeout_ms,
                           &rep);
        if (st) {
            st = nfs_client_rpc_status(st, &rep);
            rpc_reply_free(&rep);
            return st;
        }
        uint8_t arena_mem[256];
        struct xdr_arena arena;
        xdr_arena_init(&arena, arena_mem, sizeof(arena_mem));
        rep.res.arena = &arena;
        if (proc == NLMPROC4_TEST) {
            nlm4_testres r;
            st = xdr_decode_nlm4_testres(&rep.res, &r) ? nlm_status(r.stat.stat) : -EBADMSG;
            if (st == -EAGAIN && conflict) {
                conflict->type = r.stat.holder.exclusive ? NFS_LOCK_WRITE : NFS_LOCK_READ;
                conflict->off = r.stat.holder.l_offset;
                conflict->len = r.stat.holder.l_len;
            }
        } else {
            nlm4_res r;
            st = xdr_decode_nlm4_res(&rep.res, &r) ? nlm_status(r.stat.stat) : -EBADMSG;
        }
        rpc_reply_free(&rep);
        if (st != 10013 || waited_ms >= c->timeout_ms)
            return st;
        usleep(500 * 1000);
        waited_ms += 500;
    }
}

int nlm_client_lock(struct nfs_client *c, struct nfs_file *f, bool write, uint64_t off,
                    uint64_t len)
{
    struct nlm_state *n;
    int st = nlm_get(c, &n);
    if (st)
        return st;
    nlm4_lockargs a;
    memset(&a, 0, sizeof(a));
    a.block = false;
    a.exclusive = write;
    a.alock = alock(c, n, f, off, len);
    a.reclaim = false;
    a.state = 0;
    return nlm_call(c, NLMPROC4_LOCK, enc_lockargs, &a, &a.cookie, NULL);
}

int nlm_client_unlock(struct nfs_client *c, struct nfs_file *f, uint64_t off, uint64_t len)
{
    struct nlm_state *n;
    int st = nlm_get(c, &n);
    if (st)
        return st;
    nlm4_unlockargs a;
    memset(&a, 0, sizeof(a));
    a.alock = alock(c, n, f, off, len);
    return nlm_call(c, NLMPROC4_UNLOCK, enc_unlockargs, &a, &a.cookie, NULL);
}

int nlm_client_test(struct nfs_client *c, struct nfs_file *f, bool write, uint64_t off,
                    uint64_t len, struct nfs_lock_conflict *conflict)
{
    struct nlm_state *n;
    int st = nlm_get(c, &n);
    if (st)
        return st;
    nlm4_testargs a;
    memset(&a, 0, sizeof(a));
    a.exclusive = write;
    a.alock = alock(c, n, f, off, len);
    return nlm_call(c, NLMPROC4_TEST, enc_testargs, &a, &a.cookie, conflict);
}
