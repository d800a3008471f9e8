/*
 * The NFSv4.1 / 4.2 ops vector (RFC 8881, RFC 7862): one TCP connection carrying the
 * fore channel and the session's back channel.
 *
 * Connecting: EXCHANGE_ID (a client owner unique per client instance: host name, pid,
 * random), CREATE_SESSION with CONN_BACK_CHAN and our callback program (AUTH_SYS),
 * RECLAIM_COMPLETE, then PUTROOTFH + LOOKUPs of the URL path in the server's pseudo-fs.
 * Every later COMPOUND starts with SEQUENCE on a slot of the session's slot table
 * (nfs4_slots.c); NFS4ERR_DELAY / GRACE answers of the blocking calls are retried with
 * backoff (the asynchronous READ / WRITE / COMMIT / GETATTR report them instead).
 *
 * A background thread per client renews the lease (SEQUENCE-only COMPOUND when nothing
 * was sent for lease/3) and returns recalled delegations: CB_RECALL is answered at once
 * from the back channel worker and the COMMIT + DELEGRETURN run on that thread, because
 * the server may hold back our fore channel requests until the delegation is back.
 *
 * Open state: one open owner and one lock owner per client instance; the open / lock /
 * delegation stateids of a file live in a small list keyed by handle (struct v4_file),
 * so READ / WRITE by handle find the right stateid (seqid 0 = "the current one").
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "client/nfs4_cb.h"
#include "client/nfs4_reply.h"
#include "client/nfs4_slots.h"
#include "client/nfs_client_impl.h"
#include "xdr/nfs4_xdr.h"

#define V4_MAXOPS 20
#define V4_ARENA_DEFAULT (64u * 1024)
#define V4_FORE_SLOTS 64
#define V4_BACK_SLOTS 4
#define V4_READDIR_MAXCOUNT (64u * 1024)

/* The state of one file handle this client opened or holds a delegation for. */
struct v4_file {
    struct v4_file *next;
    struct nfs_fh fh;
    unsigned refs; /* nfs_files open on it */
    bool have_open, have_lock;
    stateid4 open_sid, lock_sid;
    uint32_t deleg_type; /* OPEN_DELEGATE_NONE / READ / WRITE */
    stateid4 deleg_sid;
};

struct v4_recall {
    struct v4_recall *next;
    struct nfs_fh fh;
    stateid4 sid;
};

struct v4_user_cb {
    nfs_callback_fn fn;
    void *ctx;
};

struct nfs4_state {
    uint32_t minor;
    bool have_clientid, have_session;
    clientid4 clientid;
    sessionid4 sessionid;
    uint32_t maxops;
    struct nfs4_slot_table slots;
    struct nfs4_cb_service cb;
    struct v4_user_cb user_cb[NFS4_CB_OP_MAX];
    char ownerid[300];
    char open_owner[48], lock_owner[48];

    pthread_mutex_t mu; /* files, recalls, stats, last_send, stopping */
    pthread_cond_t cv;  /* wakes the lease thread */
    struct v4_file *files;
    struct v4_recall *recalls;
    bool thread_started, stopping;
    pthread_t thread;
    uint32_t lease_s;
    struct timespec last_send;
    struct nfs_client_stats stats;
};

static const stateid4 anon_stateid; /* all zeros: the anonymous stateid */

static bool enc_compound(struct xdr_enc *x, const void *v) { return xdr_encode_COMPOUND4args(x, v); }

static struct xdr_opaque opq(const void *p, size_t n) { return (struct xdr_opaque){ (uint32_t)n, p }; }
static struct xdr_opaque fh4(const struct nfs_fh *f) { return opq(f->data, f->len); }
static struct xdr_opaque name4(const char *s) { return opq(s, strlen(s)); }

static void now_mono(struct timespec *t) { clock_gettime(CLOCK_MONOTONIC, t); }

static void stat_add(struct nfs4_state *v4, uint64_t *ctr)
{
    pthread_mutex_lock(&v4->mu);
    (*ctr)++;
    pthread_mutex_unlock(&v4->mu);
}

/* ---- building COMPOUNDs ---- */

struct v4_args {
    uint32_t n;
    nfs_argop4 op[V4_MAXOPS];
    uint32_t bm[V4_MAXOPS][2]; /* bitmap words of GETATTR / READDIR ops */
};

static nfs_argop4 *add_op(struct v4_args *a, nfs_opnum4 op)
{
    if (a->n == 0)
        a->n = 1; /* op[0] is SEQUENCE, filled when a slot is taken */
    nfs_argop4 *o = &a->op[a->n++];
    memset(o, 0, sizeof(*o));
    o->argop = op;
    return o;
}

static void add_putfh(struct v4_args *a, const struct nfs_fh *fh)
{
    add_op(a, OP_PUTFH)->opputfh.object = fh4(fh);
}

static bitmap4 bitmap(struct v4_args *a, uint64_t mask)
{
    uint32_t *w = a->bm[a->n];
    w[0] = (uint32_t)mask;
    w[1] = (uint32_t)(mask >> 32);
    return (bitmap4){ 2, w };
}

static void add_getattr(struct v4_args *a, uint64_t mask)
{
    bitmap4 b = bitmap(a, mask);
    add_op(a, OP_GETATTR)->opgetattr.attr_request = b;
}

/* ---- replies ---- */

struct v4_reply {
    struct rpc_reply rep;
    void *arena_mem;
    COMPOUND4res res;
    uint32_t next; /* index of the next result to take */
};

static void v4_reply_free(struct v4_reply *r)
{
    rpc_reply_free(&r->rep);
    free(r->arena_mem);
    r->arena_mem = NULL;
}

static int v4_decode(struct v4_reply *r, size_t arena_size)
{
    struct xdr_arena arena;
    r->arena_mem = malloc(arena_size);
    if (!r->arena_mem)
        return -ENOMEM;
    xdr_arena_init(&arena, r->arena_mem, arena_size);
    r->rep.res.arena = &arena;
    int st = nfs4_reply_compound(&r->rep.res, &r->res);
    r->rep.res.arena = NULL;
    return st;
}

/* The next result, which must be of op `op` (else the reply is malformed: NULL). */
static const nfs_resop4 *v4_next(struct v4_reply *r, nfs_opnum4 op)
{
    if (r->next >= r->res.resarray.len || r->res.resarray.val[r->next].resop != op)
        return NULL;
    return &r->res.resarray.val[r->next++];
}

/* Skip results of ops whose only outcome is their status (PUTFH, SAVEFH, LOOKUP...). */
static bool v4_skip(struct v4_reply *r, nfs_opnum4 op) { return v4_next(r, op) != NULL; }

/* ---- SEQUENCE and the slot table ---- */

static void note_sent(struct nfs4_state *v4)
{
    pthread_mutex_lock(&v4->mu);
    now_mono(&v4->last_send);
    v4->stats.compounds++;
    pthread_mutex_unlock(&v4->mu);
}

static int seq_begin(struct nfs_client *c, struct v4_args *a, uint32_t *slot)
{
    struct nfs4_state *v4 = c->v4;
    uint32_t seqid, highest;
    int st = nfs4_slot_get(&v4->slots, c->timeout_ms, slot, &seqid, &highest);
    if (st)
        return st;
    if (a->n == 0)
        a->n = 1;
    nfs_argop4 *o = &a->op[0];
    memset(o, 0, sizeof(*o));
    o->argop = OP_SEQUENCE;
    SEQUENCE4args *s = &o->opsequence;
    memcpy(s->sa_sessionid, v4->sessionid, sizeof(sessionid4));
    s->sa_sequenceid = seqid;
    s->sa_slotid = *slot;
    s->sa_highest_slotid = highest;
    s->sa_cachethis = false;
    return 0;
}

/* Give the slot back according to what became of SEQUENCE; returns its status (0,
 * positive nfsstat4) or the transport / decoding error. */
static int seq_end(struct nfs_client *c, uint32_t slot, int st, const COMPOUND4res *res)
{
    struct nfs4_slot_table *t = &c->v4->slots;
    if (st) {
        /* -EPROTO: the RPC layer refused the call, so SEQUENCE never ran; otherwise
         * (timeout, lost connection, garbage reply) we cannot know */
        nfs4_slot_put(t, slot, st == -EPROTO ? NFS4_SLOT_UNUSED : NFS4_SLOT_LOST, UINT32_MAX);
        return st;
    }
    if (res->resarray.len == 0) {
        nfs4_slot_put(t, slot, NFS4_SLOT_UNUSED, UINT32_MAX);
        return res->status ? (int)res->status : -EBADMSG;
    }
    const nfs_resop4 *o = &res->resarray.val[0];
    if (o->resop != OP_SEQUENCE) {
        nfs4_slot_put(t, slot, NFS4_SLOT_LOST, UINT32_MAX);
        return -EBADMSG;
    }
    const SEQUENCE4res *s = &o->opsequence;
    if (s->sr_status == NFS4_OK) {
        bool same = s->sr_resok4.sr_slotid == slot &&
                    !memcmp(s->sr_resok4.sr_sessionid, c->v4->sessionid, sizeof(sessionid4));
        nfs4_slot_put(t, slot, same ? NFS4_SLOT_DONE : NFS4_SLOT_LOST,
                      s->sr_resok4.sr_target_highest_slotid);
        return same ? 0 : -EBADMSG;
    }
    bool lost = s->sr_status == NFS4ERR_SEQ_MISORDERED || s->sr_status == NFS4ERR_SEQ_FALSE_RETRY;
    nfs4_slot_put(t, slot, lost ? NFS4_SLOT_LOST : NFS4_SLOT_UNUSED, UINT32_MAX);
    return (int)s->sr_status;
}

static bool retry_status(int st) { return st == NFS4ERR_DELAY || st == NFS4ERR_GRACE; }

/* One COMPOUND without SEQUENCE (EXCHANGE_ID, CREATE_SESSION, DESTROY_*). */
static int v4_call_nosession(struct nfs_client *c, nfs_argop4 *ops, uint32_t n,
                             struct v4_reply *r)
{
    memset(r, 0, sizeof(*r));
    COMPOUND4args ca = { { 0, NULL }, c->v4->minor, { n, ops } };
    int st = rpc_clnt_call(c->rpc, NFS4_PROGRAM, NFS_V4, NFSPROC4_COMPOUND, &c->cred,
                           enc_compound, &ca, c->timeout_ms, &r->rep);
    note_sent(c->v4);
    if (!st)
        st = v4_decode(r, V4_ARENA_DEFAULT);
    else
        st = nfs_client_rpc_status(st, &r->rep);
    if (st)
        return st;
    return (int)r->res.status;
}

/*
 * A blocking COMPOUND: SEQUENCE + a->op[1..]. Returns the COMPOUND status (0 or the
 * failing op's nfsstat4) with r holding the results after SEQUENCE (r->next), or a
 * negative error. DELAY / GRACE (from SEQUENCE or an op) are retried with backoff for
 * up to the client's timeout; a retired slot's SEQ_MISORDERED is retried on another.
 * v4_reply_free(r) in every case.
 */
static int v4_call_sized(struct nfs_client *c, struct v4_args *a, struct v4_reply *r,
                         size_t arena_size)
{
    struct nfs4_state *v4 = c->v4;
    unsigned delay_ms = 20, waited_ms = 0, misordered = 0;
    for (;;) {
        memset(r, 0, sizeof(*r));
        uint32_t slot;
        int st = seq_begin(c, a, &slot);
        if (st)
            return st;
        COMPOUND4args ca = { { 0, NULL }, v4->minor, { a->n, a->op } };
        st = rpc_clnt_call(c->rpc, NFS4_PROGRAM, NFS_V4, NFSPROC4_COMPOUND, &c->cred,
                           enc_compound, &ca, c->timeout_ms, &r->rep);
        note_sent(v4);
        if (!st)
            st = v4_decode(r, arena_size);
        else
            st = nfs_client_rpc_status(st, &r->rep);
        int sst = seq_end(c, slot, st, st ? NULL : &r->res);
        if (st)
            return st;
        int cst = sst ? sst : (int)r->res.status;
        if (retry_status(cst) && waited_ms < (unsigned)c->timeout_ms) {
            v4_reply_free(r);
            stat_add(v4, &v4->stats.delay_retries);
            usleep(delay_ms * 1000u);
            waited_ms += delay_ms;
            delay_ms = delay_ms >= 500 ? 1000 : delay_ms * 2;
            continue;
        }
        if (sst == NFS4ERR_SEQ_MISORDERED && misordered++ < 3) {
            v4_reply_free(r);
            continue;
        }
        if (sst)
            return sst;
        r->next = 1;
        return cst;
    }
}

static int v4_call(struct nfs_client *c, struct v4_args *a, struct v4_reply *r)
{
    return v4_call_sized(c, a, r, V4_ARENA_DEFAULT);
}

/* A COMPOUND whose results need nothing but the status. */
static int v4_call_status(struct nfs_client *c, struct v4_args *a)
{
    struct v4_reply r;
    int st = v4_call(c, a, &r);
    v4_reply_free(&r);
    return st;
}

static int take_fh(struct v4_reply *r, struct nfs_fh *fh)
{
    const nfs_resop4 *o = v4_next(r, OP_GETFH);
    if (!o)
        return -EBADMSG;
    struct nfs_fh tmp;
    return nfs4_fh_from_wire(fh ? fh : &tmp, &o->opgetfh.resok4.object);
}

static int take_attr(struct v4_reply *r, uint64_t want, struct nfs4_fattr *fa)
{
    const nfs_resop4 *o = v4_next(r, OP_GETATTR);
    if (!o)
        return -EBADMSG;
    return nfs4_reply_fattr(&o->opgetattr.resok4.obj_attributes, want, fa);
}

/* ---- open / delegation state per handle ---- */

static struct v4_file *file_find(struct nfs4_state *v4, const struct nfs_fh *fh)
{
    for (struct v4_file *f = v4->files; f; f = f->next)
        if (f->fh.len == fh->len && !memcmp(f->fh.data, fh->data, fh->len))
            return f;
    return NULL;
}

static struct v4_file *file_get(struct nfs4_state *v4, const struct nfs_fh *fh)
{
    struct v4_file *f = file_find(v4, fh);
    if (!f && (f = calloc(1, sizeof(*f)))) {
        f->fh = *fh;
        f->next = v4->files;
        v4->files = f;
    }
    return f;
}

static void file_drop_if_idle(struct nfs4_state *v4, struct v4_file *f)
{
    if (f->refs || f->have_open || f->deleg_type != OPEN_DELEGATE_NONE)
        return;
    for (struct v4_file **p = &v4->files; *p; p = &(*p)->next) {
        if (*p == f) {
            *p = f->next;
            free(f);
            return;
        }
    }
}

/* The stateid for I/O on fh: the open's, else a delegation's, else anonymous; seqid 0
 * means "the current one" (RFC 8881 8.2.2), so an upgrade in flight does not matter. */
static stateid4 io_stateid(struct nfs4_state *v4, const struct nfs_fh *fh)
{
    stateid4 sid = anon_stateid;
    pthread_mutex_lock(&v4->mu);
    struct v4_file *f = file_find(v4, fh);
    if (f && f->have_open)
        sid = f->open_sid;
    else if (f && f->deleg_type != OPEN_DELEGATE_NONE)
        sid = f->deleg_sid;
    pthread_mutex_unlock(&v4->mu);
    if (memcmp(&sid, &anon_stateid, sizeof(sid)))
        sid.seqid = 0;
    return sid;
}

/* ---- the lease thread: renewals and delegation returns ---- */

static void do_recall(struct nfs_client *c, const struct v4_recall *rc)
{
    struct nfs4_state *v4 = c->v4;
    /* our writes are never cached here, but UNSTABLE ones may wait for COMMIT: make
     * them stable before the server lets others at the file */
    struct v4_args a = { 0 };
    add_putfh(&a, &rc->fh);
    COMMIT4args *cm = &add_op(&a, OP_COMMIT)->opcommit;
    cm->offset = 0;
    cm->count = 0;
    v4_call_status(c, &a);
    a.n = 0;
    add_putfh(&a, &rc->fh);
    add_op(&a, OP_DELEGRETURN)->opdelegreturn.deleg_stateid = rc->sid;
    int st = v4_call_status(c, &a);
    pthread_mutex_lock(&v4->mu);
    if (st == 0 || st == NFS4ERR_BAD_STATEID || st == NFS4ERR_DELEG_REVOKED) {
        struct v4_file *f = file_find(v4, &rc->fh);
        if (f && !memcmp(f->deleg_sid.other, rc->sid.other, NFS4_OTHER_SIZE)) {
            f->deleg_type = OPEN_DELEGATE_NONE;
            file_drop_if_idle(v4, f);
        }
    }
    if (st == 0)
        v4->stats.delegreturns++;
    pthread_mutex_unlock(&v4->mu);
}

static void *lease_thread(void *arg)
{
    struct nfs_client *c = arg;
    struct nfs4_state *v4 = c->v4;
    pthread_mutex_lock(&v4->mu);
    while (!v4->stopping) {
        struct v4_recall *rc = v4->recalls;
        if (rc) {
            v4->recalls = rc->next;
            pthread_mutex_unlock(&v4->mu);
            do_recall(c, rc);
            free(rc);
            pthread_mutex_lock(&v4->mu);
            continue;
        }
        uint32_t interval = v4->lease_s / 3 ? v4->lease_s / 3 : 1;
        struct timespec now, due = v4->last_send;
        due.tv_sec += interval;
        now_mono(&now);
        if (now.tv_sec > due.tv_sec || (now.tv_sec == due.tv_sec && now.tv_nsec >= due.tv_nsec)) {
            v4->stats.renewals++;
            pthread_mutex_unlock(&v4->mu);
            struct v4_args a = { 0 };
            a.n = 1; /* SEQUENCE only: renews the lease (RFC 8881 8.3) */
            v4_call_status(c, &a);
            pthread_mutex_lock(&v4->mu);
            continue;
        }
        pthread_cond_timedwait(&v4->cv, &v4->mu, &due);
    }
    pthread_mutex_unlock(&v4->mu);
    return NULL;
}

/* ---- the back channel ---- */

static nfsstat4 cb_recall(void *ctx, const nfs_cb_argop4 *arg, nfs_cb_resop4 *res)
{
    struct nfs4_state *v4 = ctx;
    const CB_RECALL4args *a = &arg->opcbrecall;
    (void)res;
    struct v4_recall *rc = calloc(1, sizeof(*rc));
    if (!rc || nfs4_fh_from_wire(&rc->fh, &a->fh)) {
        free(rc);
        return rc ? NFS4ERR_BADHANDLE : NFS4ERR_RESOURCE;
    }
    rc->sid = a->stateid;
    pthread_mutex_lock(&v4->mu);
    v4->stats.recalls++;
    struct v4_recall **p = &v4->recalls;
    while (*p)
        p = &(*p)->next;
    *p = rc;
    pthread_cond_signal(&v4->cv);
    pthread_mutex_unlock(&v4->mu);
    return NFS4_OK; /* the DELEGRETURN follows from the lease thread */
}

static nfsstat4 cb_user(void *ctx, const nfs_cb_argop4 *arg, nfs_cb_resop4 *res)
{
    const struct v4_user_cb *u = ctx;
    return (nfsstat4)u->fn(u->ctx, arg, res);
}

static enum rpc_accept_status cb_null_proc(struct rpc_call *call)
{
    (void)call;
    return RPC_SUCCESS;
}

static enum rpc_accept_status cb_compound_proc(struct rpc_call *call)
{
    struct nfs4_state *v4 = call->prog_ctx;
    CB_COMPOUND4args a;
    if (!xdr_decode_CB_COMPOUND4args(&call->args, &a))
        return RPC_GARBAGE_ARGS;
    nfs_cb_resop4 *resv = calloc(a.argarray.len ? a.argarray.len : 1, sizeof(*resv));
    if (!resv)
        return RPC_SYSTEM_ERR;
    CB_COMPOUND4res r;
    memset(&r, 0, sizeof(r));
    r.resarray.val = resv;
    nfs4_cb_dispatch(&v4->cb, &a, &r);
    bool ok = xdr_encode_CB_COMPOUND4res(&call->res, &r);
    free(resv);
    stat_add(v4, &v4->stats.callbacks);
    return ok ? RPC_SUCCESS : RPC_SYSTEM_ERR;
}

static const struct rpc_proc_desc cb_procs[] = {
    [CB_NULL] = { cb_null_proc, "CB_NULL", 0 },
    [CB_COMPOUND] = { cb_compound_proc, "CB_COMPOUND", 0 },
};
static const struct rpc_version_desc cb_versions[] = { { NFS_CB, 2, cb_procs } };
static const struct rpc_program_desc cb_program = { NFS4_CALLBACK, "nfs4_cb", 1, cb_versions };

int nfs_client_on_callback(struct nfs_client *c, uint32_t op, nfs_callback_fn fn, void *ctx)
{
    if (!c->v4)
        return -EPROTONOSUPPORT;
    if (op < OP_CB_GETATTR || op >= NFS4_CB_OP_MAX || op == OP_CB_SEQUENCE)
        return -EINVAL;
    struct nfs4_state *v4 = c->v4;
    if (!fn)
        return nfs4_cb_register(&v4->cb, op, op == OP_CB_RECALL ? cb_recall : NULL,
                                op == OP_CB_RECALL ? v4 : NULL);
    /* the slot is written before the dispatcher can see it (its mutex orders them) */
    nfs4_cb_register(&v4->cb, op, NULL, NULL);
    v4->user_cb[op] = (struct v4_user_cb){ fn, ctx };
    return nfs4_cb_register(&v4->cb, op, cb_user, &v4->user_cb[op]);
}

void nfs_client_get_stats(struct nfs_client *c, struct nfs_client_stats *st)
{
    memset(st, 0, sizeof(*st));
    if (!c->v4)
        return;
    pthread_mutex_lock(&c->v4->mu);
    *st = c->v4->stats;
    pthread_mutex_unlock(&c->v4->mu);
}

/* ---- connecting ---- */

static void make_owner_ids(struct nfs_client *c, struct nfs4_state *v4)
{
    uint8_t rnd[8] = { 0 };
    if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd)) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        memcpy(rnd, &t.tv_nsec, sizeof(t.tv_nsec) < 8 ? sizeof(t.tv_nsec) : 8);
    }
    unsigned long long r = 0;
    memcpy(&r, rnd, sizeof(r));
    snprintf(v4->ownerid, sizeof(v4->ownerid), "peernfs/%s/%d/%016llx", c->cred.machinename,
             (int)getpid(), r);
    snprintf(v4->open_owner, sizeof(v4->open_owner), "open/%d/%016llx", (int)getpid(), r);
    snprintf(v4->lock_owner, sizeof(v4->lock_owner), "lock/%d/%016llx", (int)getpid(), r);
}

static int exchange_id(struct nfs_client *c, char *err, size_t errlen)
{
    struct nfs4_state *v4 = c->v4;
    nfs_argop4 op;
    memset(&op, 0, sizeof(op));
    op.argop = OP_EXCHANGE_ID;
    EXCHANGE_ID4args *e = &op.opexchange_id;
    /* a fresh verifier per instance: a restarted process is a new incarnation */
    if (getrandom(e->eia_clientowner.co_verifier, sizeof(verifier4), 0) != sizeof(verifier4))
        memcpy(e->eia_clientowner.co_verifier, v4->ownerid + strlen(v4->ownerid) - 8, 8);
    e->eia_clientowner.co_ownerid = name4(v4->ownerid);
    e->eia_flags = EXCHGID4_FLAG_USE_NON_PNFS;
    e->eia_state_protect.spa_how = SP4_NONE;
    struct v4_reply r;
    int st = v4_call_nosession(c, &op, 1, &r);
    const nfs_resop4 *o = st ? NULL : v4_next(&r, OP_EXCHANGE_ID);
    if (!st && !o)
        st = -EBADMSG;
    if (!st) {
        v4->clientid = o->opexchange_id.eir_resok4.eir_clientid;
        v4->have_clientid = true;
        uint32_t seq = o->opexchange_id.eir_resok4.eir_sequenceid;
        v4_reply_free(&r);

        /* CREATE_SESSION: fore channel sized for 1 MiB I/O, back channel for callbacks */
        memset(&op, 0, sizeof(op));
        op.argop = OP_CREATE_SESSION;
        CREATE_SESSION4args *cs = &op.opcreate_session;
        cs->csa_clientid = v4->clientid;
        cs->csa_sequence = seq;
        cs->csa_flags = CREATE_SESSION4_FLAG_CONN_BACK_CHAN;
        cs->csa_fore_chan_attrs = (channel_attrs4){ 0, NFS_CLIENT_IO_MAX + 64 * 1024,
                                                    NFS_CLIENT_IO_MAX + 64 * 1024, 8192,
                                                    V4_MAXOPS, V4_FORE_SLOTS, { 0, NULL } };
        cs->csa_back_chan_attrs = (channel_attrs4){ 0, 64 * 1024, 16 * 1024, 0, 8,
                                                    V4_BACK_SLOTS, { 0, NULL } };
        cs->csa_cb_program = NFS4_CALLBACK;
        callback_sec_parms4 sec;
        memset(&sec, 0, sizeof(sec));
        sec.cb_secflavor = RPC_AUTH_SYS;
        sec.cbsp_sys_cred.stamp = (uint32_t)time(NULL);
        sec.cbsp_sys_cred.machinename =
            (struct xdr_string){ c->cred.machinename_len, c->cred.machinename };
        sec.cbsp_sys_cred.uid = c->cred.uid;
        sec.cbsp_sys_cred.gid = c->cred.gid;
        cs->csa_sec_parms.len = 1;
        cs->csa_sec_parms.val = &sec;
        st = v4_call_nosession(c, &op, 1, &r);
        o = st ? NULL : v4_next(&r, OP_CREATE_SESSION);
        if (!st && !o)
            st = -EBADMSG;
        if (!st) {
            const CREATE_SESSION4resok *ok = &o->opcreate_session.csr_resok4;
            memcpy(v4->sessionid, ok->csr_sessionid, sizeof(sessionid4));
            v4->have_session = true;
            uint32_t nslots = ok->csr_fore_chan_attrs.ca_maxrequests;
            nfs4_slots_init(&v4->slots, nslots);
            nfs4_cb_set_session(&v4->cb, ok->csr_sessionid,
                                ok->csr_back_chan_attrs.ca_maxrequests, v4->minor);
            v4->maxops = ok->csr_fore_chan_attrs.ca_maxoperations;
            if (v4->maxops > V4_MAXOPS)
                v4->maxops = V4_MAXOPS;
            uint32_t maxreq = ok->csr_fore_chan_attrs.ca_maxrequestsize;
            uint32_t maxresp = ok->csr_fore_chan_attrs.ca_maxresponsesize;
            /* room for the RPC and COMPOUND headers around the data */
            c->rsize = maxresp > 8192 ? maxresp - 4096 : 4096;
            c->wsize = maxreq > 8192 ? maxreq - 4096 : 4096;
        } else {
            snprintf(err, errlen, "CREATE_SESSION: %s", nfs_client_strerror(st));
        }
    } else {
        snprintf(err, errlen, "EXCHANGE_ID: %s", nfs_client_strerror(st));
    }
    v4_reply_free(&r);
    return st;
}

static int walk_dirs(struct nfs_client *c, const char *path, const char *tail)
{
    struct v4_args a = { 0 };
    add_op(&a, OP_PUTROOTFH);
    add_op(&a, OP_GETFH);
    struct v4_reply r;
    int st = v4_call(c, &a, &r);
    if (!st && (!v4_skip(&r, OP_PUTROOTFH) || (st = take_fh(&r, &c->root)) != 0))
        st = st ? st : -EBADMSG;
    v4_reply_free(&r);
    if (st)
        return st;
    const char *p = path;
    unsigned per = c->v4->maxops > 4 ? (c->v4->maxops - 2) / 2 : 1;
    for (;;) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        char names[V4_MAXOPS][256];
        const char *starts[V4_MAXOPS];
        unsigned n = 0;
        const char *q = p;
        while (*q && n < per) {
            size_t len = strcspn(q, "/");
            if (len >= sizeof(names[0]))
                return 63; /* NAMETOOLONG */
            memcpy(names[n], q, len);
            names[n][len] = 0;
            starts[n] = q;
            q += len;
            while (*q == '/')
                q++;
            if (strcmp(names[n], ".") != 0)
                n++;
        }
        if (n == 0) {
            p = q;
            continue;
        }
        a.n = 0;
        add_putfh(&a, &c->root);
        for (unsigned i = 0; i < n; i++) {
            add_op(&a, OP_LOOKUP)->oplookup.objname = name4(names[i]);
            add_op(&a, OP_GETFH);
        }
        st = v4_call(c, &a, &r);
        if (st < 0 || !v4_skip(&r, OP_PUTFH)) {
            v4_reply_free(&r);
            return st < 0 ? st : -EBADMSG;
        }
        unsigned found = 0;
        for (; found < n; found++) {
            struct nfs_fh fh;
            if (!v4_skip(&r, OP_LOOKUP) || r.res.resarray.val[r.next - 1].oplookup.status ||
                take_fh(&r, &fh))
                break;
            c->root = fh;
        }
        v4_reply_free(&r);
        if (found < n) {
            p = starts[found];
            break;
        }
        p = q;
    }
    while (*p == '/')
        p++;
    while (*tail == '/')
        tail++;
    if (asprintf(&c->rest, "%s%s%s", p, *p && *tail ? "/" : "", tail) < 0)
        c->rest = NULL;
    return c->rest ? 0 : -ENOMEM;
}

/* PUTROOTFH, then LOOKUP + GETFH per URL path component but the last, as many per
 * COMPOUND as the session allows: the deepest directory found becomes the root and the
 * rest (at least the last component) is left to nfs_lookup_path, as with an NFSv3
 * export: a URL naming a file still to be created connects, and one naming a file can
 * be opened by its name in that directory. */
static int walk_url_path(struct nfs_client *c, const char *url_path)
{
    char *path = strdup(url_path);
    if (!path)
        return -ENOMEM;
    char *last = strrchr(path, '/');
    const char *tail = url_path + (last ? last - path : 0);
    if (last)
        *last = 0;
    int st = walk_dirs(c, path, tail);
    free(path);
    return st;
}

static int fetch_fsinfo(struct nfs_client *c)
{
    struct v4_args a = { 0 };
    add_putfh(&a, &c->root);
    add_getattr(&a, NFS4_ATTRS_FSINFO);
    struct v4_reply r;
    struct nfs4_fattr fa;
    int st = v4_call(c, &a, &r);
    if (!st)
        st = v4_skip(&r, OP_PUTFH) ? take_attr(&r, NFS4_ATTRS_FSINFO, &fa) : -EBADMSG;
    v4_reply_free(&r);
    if (st)
        return st;
    if (fa.have & NFS4_ATTR_BIT(FATTR4_LEASE_TIME))
        c->v4->lease_s = fa.lease_time ? fa.lease_time : 90;
    uint64_t rmax = fa.maxread ? fa.maxread : c->rsize, wmax = fa.maxwrite ? fa.maxwrite : c->wsize;
    if (rmax < c->rsize)
        c->rsize = (uint32_t)rmax;
    if (wmax < c->wsize)
        c->wsize = (uint32_t)wmax;
    c->rsize &= ~4095u, c->wsize &= ~4095u;
    if (c->rsize > NFS_CLIENT_IO_MAX)
        c->rsize = NFS_CLIENT_IO_MAX;
    if (c->wsize > NFS_CLIENT_IO_MAX)
        c->wsize = NFS_CLIENT_IO_MAX;
    if (c->rsize < 4096)
        c->rsize = 4096;
    if (c->wsize < 4096)
        c->wsize = 4096;
    c->dtpref = 16384;
    return 0;
}

static int v4_mount(struct nfs_client *c, const struct nfs_url *u, char *err, size_t errlen)
{
    struct nfs4_state *v4 = calloc(1, sizeof(*v4));
    if (!v4)
        return -ENOMEM;
    c->v4 = v4;
    v4->minor = (uint32_t)u->vers_minor;
    v4->lease_s = 90;
    v4->maxops = V4_MAXOPS;
    pthread_mutex_init(&v4->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&v4->cv, &ca);
    pthread_condattr_destroy(&ca);
    nfs4_cb_init(&v4->cb);
    nfs4_cb_register(&v4->cb, OP_CB_RECALL, cb_recall, v4);
    make_owner_ids(c, v4);

    nfs_client_set_port(&c->addr, u->port ? u->port : 2049);
    int st;
    c->rpc = nfs_client_rpc_connect((struct sockaddr *)&c->addr, c->addrlen, c->timeout_ms, &st);
    if (!c->rpc) {
        snprintf(err, errlen, "NFS port %u: %s", u->port ? u->port : 2049, nfs_client_strerror(st));
        return st;
    }
    /* before CREATE_SESSION: the server may probe the back channel right away */
    if ((st = rpc_clnt_set_callback_program(c->rpc, &cb_program, v4))) {
        snprintf(err, errlen, "back channel: %s", nfs_client_strerror(st));
        return st;
    }
    if ((st = exchange_id(c, err, errlen)))
        return st;
    struct v4_args a = { 0 };
    add_op(&a, OP_RECLAIM_COMPLETE)->opreclaim_complete.rca_one_fs = false;
    st = v4_call_status(c, &a);
    if (st < 0 || (st && st != NFS4ERR_COMPLETE_ALREADY)) {
        snprintf(err, errlen, "RECLAIM_COMPLETE: %s", nfs_client_strerror(st));
        return st;
    }
    if ((st = walk_url_path(c, u->path))) {
        snprintf(err, errlen, "LOOKUP %s: %s", u->path, nfs_client_strerror(st));
        return st;
    }
    if ((st = fetch_fsinfo(c))) {
        snprintf(err, errlen, "GETATTR (lease, maxread, maxwrite): %s", nfs_client_strerror(st));
        return st;
    }
    now_mono(&v4->last_send);
    if (pthread_create(&v4->thread, NULL, lease_thread, c) == 0)
        v4->thread_started = true;
    else
        return -EAGAIN;
    return 0;
}

static void v4_unmount(struct nfs_client *c)
{
    struct nfs4_state *v4 = c->v4;
    if (!v4) {
        rpc_clnt_destroy(c->rpc);
        c->rpc = NULL;
        return;
    }
    if (v4->thread_started) {
        pthread_mutex_lock(&v4->mu);
        v4->stopping = true;
        pthread_cond_signal(&v4->cv);
        pthread_mutex_unlock(&v4->mu);
        pthread_join(v4->thread, NULL);
    }
    if (v4->have_session && c->rpc) {
        /* give back what we hold so the server need not wait for our lease to expire */
        for (struct v4_file *f = v4->files; f; f = f->next) {
            struct v4_args a = { 0 };
            if (f->have_open) {
                add_putfh(&a, &f->fh);
                CLOSE4args *cl = &add_op(&a, OP_CLOSE)->opclose;
                cl->open_stateid = f->open_sid;
                v4_call_status(c, &a);
            }
            if (f->deleg_type != OPEN_DELEGATE_NONE) {
                a.n = 0;
                add_putfh(&a, &f->fh);
                add_op(&a, OP_DELEGRETURN)->opdelegreturn.deleg_stateid = f->deleg_sid;
                if (v4_call_status(c, &a) == 0)
                    v4->stats.delegreturns++;
            }
        }
        for (struct v4_recall *rc = v4->recalls; rc; rc = rc->next)
            do_recall(c, rc);
        nfs_argop4 op;
        struct v4_reply r;
        memset(&op, 0, sizeof(op));
        op.argop = OP_DESTROY_SESSION;
        memcpy(op.opdestroy_session.dsa_sessionid, v4->sessionid, sizeof(sessionid4));
        v4_call_nosession(c, &op, 1, &r);
        v4_reply_free(&r);
    }
    if (v4->have_clientid && c->rpc) {
        nfs_argop4 op;
        struct v4_reply r;
        memset(&op, 0, sizeof(op));
        op.argop = OP_DESTROY_CLIENTID;
        op.opdestroy_clientid.dca_clientid = v4->clientid;
        v4_call_nosession(c, &op, 1, &r);
        v4_reply_free(&r);
    }
    if (v4->have_session)
        nfs4_slots_close(&v4->slots);
    rpc_clnt_destroy(c->rpc); /* waits for running callback handlers */
    c->rpc = NULL;
    while (v4->files) {
        struct v4_file *f = v4->files;
        v4->files = f->next;
        free(f);
    }
    while (v4->recalls) {
        struct v4_recall *rc = v4->recalls;
        v4->recalls = rc->next;
        free(rc);
    }
    if (v4->have_session)
        nfs4_slots_destroy(&v4->slots);
    nfs4_cb_destroy(&v4->cb);
    pthread_mutex_destroy(&v4->mu);
    pthread_cond_destroy(&v4->cv);
    free(v4);
    c->v4 = NULL;
}

/* ---- attributes and names ---- */

static void attr_out(struct nfs_attr *out, const struct nfs4_fattr *fa)
{
    if (out)
        *out = fa->attr;
}

static int v4_lookup(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                     struct nfs_fh *fh, struct nfs_attr *attr)
{
    struct v4_args a = { 0 };
    add_putfh(&a, dir);
    add_op(&a, OP_LOOKUP)->oplookup.objname = name4(name);
    add_op(&a, OP_GETFH);
    add_getattr(&a, NFS4_ATTRS_STAT);
    struct v4_reply r;
    struct nfs4_fattr fa;
    int st = v4_call(c, &a, &r);
    if (!st) {
        st = v4_skip(&r, OP_PUTFH) && v4_skip(&r, OP_LOOKUP) ? take_fh(&r, fh) : -EBADMSG;
        if (!st)
            st = take_attr(&r, NFS4_ATTRS_STAT, &fa);
        if (!st)
            attr_out(attr, &fa);
    }
    v4_reply_free(&r);
    return st;
}

static int v4_getattr(struct nfs_client *c, const struct nfs_fh *fh, struct nfs_attr *attr)
{
    struct v4_args a = { 0 };
    add_putfh(&a, fh);
    add_getattr(&a, NFS4_ATTRS_STAT);
    struct v4_reply r;
    struct nfs4_fattr fa;
    int st = v4_call(c, &a, &r);
    if (!st)
        st = v4_skip(&r, OP_PUTFH) ? take_attr(&r, NFS4_ATTRS_STAT, &fa) : -EBADMSG;
    if (!st)
        attr_out(attr, &fa);
    v4_reply_free(&r);
    return st;
}

static int v4_setattr(struct nfs_client *c, const struct nfs_fh *fh, const struct nfs_setattr *sa,
                      struct nfs_attr *attr)
{
    uint8_t buf[256];
    uint32_t mask[2];
    struct v4_args a = { 0 };
    add_putfh(&a, fh);
    SETATTR4args *s = &add_op(&a, OP_SETATTR)->opsetattr;
    s->stateid = sa->set_size ? io_stateid(c->v4, fh) : anon_stateid;
    if (!nfs4_encode_sattr(sa, buf, sizeof(buf), mask, &s->obj_attributes))
        return -EINVAL;
    if (attr)
        add_getattr(&a, NFS4_ATTRS_STAT);
    struct v4_reply r;
    struct nfs4_fattr fa;
    int st = v4_call(c, &a, &r);
    if (!st && attr) {
        st = v4_skip(&r, OP_PUTFH) && v4_skip(&r, OP_SETATTR) ? take_attr(&r, NFS4_ATTRS_STAT, &fa)
                                                               : -EBADMSG;
        if (!st)
            attr_out(attr, &fa);
    }
    v4_reply_free(&r);
    return st;
}

/* ---- OPEN / CLOSE ---- */

/* OPEN name in dir (CLAIM_NULL); records the open (and any delegation) for the handle. */
static int open_in_dir(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                       int flags, uint32_t mode, uint32_t want, struct nfs_fh *fh,
                       struct nfs_attr *attr)
{
    struct nfs4_state *v4 = c->v4;
    uint8_t buf[128];
    uint32_t mask[2];
    struct v4_args a = { 0 };
    add_putfh(&a, dir);
    OPEN4args *o = &add_op(&a, OP_OPEN)->opopen;
    uint32_t access = (flags & NFS_O_RDONLY) ? OPEN4_SHARE_ACCESS_READ
                    : (flags & NFS_O_WRONLY) ? OPEN4_SHARE_ACCESS_WRITE
                                             : OPEN4_SHARE_ACCESS_BOTH;
    o->seqid = 0; /* 4.1: open-owner seqids are not used */
    o->share_access = access | want;
    o->share_deny = OPEN4_SHARE_DENY_NONE;
    o->owner.clientid = v4->clientid;
    o->owner.owner = name4(v4->open_owner);
    if (flags & NFS_O_CREAT) {
        o->openhow.opentype = OPEN4_CREATE;
        o->openhow.how.mode = (flags & NFS_O_EXCL) ? GUARDED4 : UNCHECKED4;
        /* UNCHECKED4 with size 0 truncates an existing file (RFC 8881 18.16.3) */
        struct nfs_setattr sa = { .set_mode = true, .mode = mode,
                                  .set_size = (flags & NFS_O_TRUNC) != 0, .size = 0 };
        nfs4_encode_sattr(&sa, buf, sizeof(buf), mask, &o->openhow.how.createattrs);
    } else {
        o->openhow.opentype = OPEN4_NOCREATE;
    }
    o->claim.claim = CLAIM_NULL;
    o->claim.file = name4(name);
    add_op(&a, OP_GETFH);
    add_getattr(&a, NFS4_ATTRS_STAT);
    struct v4_reply r;
    int st = v4_call(c, &a, &r);
    const nfs_resop4 *ro = NULL;
    struct nfs_fh got;
    struct nfs4_fattr fa;
    if (!st) {
        ro = v4_skip(&r, OP_PUTFH) ? v4_next(&r, OP_OPEN) : NULL;
        st = ro ? take_fh(&r, &got) : -EBADMSG;
        if (!st)
            st = take_attr(&r, NFS4_ATTRS_STAT, &fa);
    }
    if (st) {
        v4_reply_free(&r);
        return st;
    }
    const OPEN4resok *ok = &ro->opopen.resok4;
    pthread_mutex_lock(&v4->mu);
    struct v4_file *f = file_get(v4, &got);
    if (f) {
        f->refs++;
        f->have_open = true;
        f->open_sid = ok->stateid;
        uint32_t dt = ok->delegation.delegation_type;
        if (dt == OPEN_DELEGATE_READ || dt == OPEN_DELEGATE_WRITE) {
            f->deleg_type = dt;
            f->deleg_sid = dt == OPEN_DELEGATE_READ ? ok->delegation.read.stateid
                                                    : ok->delegation.write.stateid;
            v4->stats.delegations++;
        }
    }
    pthread_mutex_unlock(&v4->mu);
    v4_reply_free(&r);
    if (!f)
        return -ENOMEM;
    *fh = got;
    attr_out(attr, &fa);
    return 0;
}

static int close_fh(struct nfs_client *c, const struct nfs_fh *fh);

static int v4_open(struct nfs_client *c, const char *path, int flags, uint32_t mode,
                   struct nfs_file *f)
{
    memset(f, 0, sizeof(*f));
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    if (!*name) /* the root itself: a directory, no open state */
        return nfs_open_by_lookup(c, path, flags & ~NFS_O_CREAT, mode, f);
    char *parent = strndup(path, slash ? (size_t)(slash - path) : 0);
    if (!parent)
        return -ENOMEM;
    struct nfs_fh dir;
    int st = nfs_lookup_path(c, parent, &dir, NULL);
    free(parent);
    if (st)
        return st;
    st = open_in_dir(c, &dir, name, flags, mode, 0, &f->fh, &f->attr);
    if (st == NFS4ERR_ISDIR || st == NFS4ERR_SYMLINK || st == NFS4ERR_WRONG_TYPE)
        return nfs_open_by_lookup(c, path, flags & ~(NFS_O_CREAT | NFS_O_TRUNC), mode, f);
    if (st)
        return st;
    f->v4_open = true;
    if ((flags & NFS_O_TRUNC) && !(flags & NFS_O_CREAT) && f->attr.size) {
        struct nfs_setattr sa = { .set_size = true, .size = 0 };
        st = v4_setattr(c, &f->fh, &sa, &f->attr);
        if (st) {
            close_fh(c, &f->fh);
            f->v4_open = false;
        }
    }
    return st;
}

/* Drop one reference to the open of fh; the last one sends CLOSE (after unlocking and
 * freeing the lock stateid: CLOSE with locks held is NFS4ERR_LOCKS_HELD). */
static int close_fh(struct nfs_client *c, const struct nfs_fh *fh)
{
    struct nfs4_state *v4 = c->v4;
    pthread_mutex_lock(&v4->mu);
    struct v4_file *f = file_find(v4, fh);
    if (!f || !f->refs) {
        pthread_mutex_unlock(&v4->mu);
        return 0;
    }
    if (--f->refs) {
        pthread_mutex_unlock(&v4->mu);
        return 0;
    }
    bool had_lock = f->have_lock;
    stateid4 lock_sid = f->lock_sid, open_sid = f->open_sid;
    f->have_lock = false;
    pthread_mutex_unlock(&v4->mu);

    int st;
    struct v4_args a = { 0 };
    if (had_lock) {
        add_putfh(&a, fh);
        LOCKU4args *u = &add_op(&a, OP_LOCKU)->oplocku;
        u->locktype = WRITE_LT;
        u->lock_stateid = lock_sid;
        u->offset = 0;
        u->length = NFS4_UINT64_MAX;
        add_op(&a, OP_FREE_STATEID)->opfree_stateid.fsa_stateid = lock_sid;
        v4_call_status(c, &a);
        a.n = 0;
    }
    add_putfh(&a, fh);
    CLOSE4args *cl = &add_op(&a, OP_CLOSE)->opclose;
    cl->seqid = 0;
    cl->open_stateid = open_sid;
    st = v4_call_status(c, &a);
    pthread_mutex_lock(&v4->mu);
    if ((f = file_find(v4, fh)) && !f->refs) {
        f->have_open = false;
        file_drop_if_idle(v4, f);
    }
    pthread_mutex_unlock(&v4->mu);
    return st;
}

static int v4_close(struct nfs_client *c, struct nfs_file *f)
{
    if (!f->v4_open)
        return 0;
    f->v4_open = false;
    return close_fh(c, &f->fh);
}

/* ---- READ / WRITE / COMMIT / GETATTR, asynchronous ---- */

struct v4_io {
    struct nfs_client *c;
    uint32_t slot;
    nfs_opnum4 op;
    nfs_io_done_fn done;
    nfs_attr_done_fn attr_done;
    void *arg;
    void *buf;
    uint32_t count;
};

static void v4_io_done(void *arg, int status, struct rpc_reply *rep)
{
    struct v4_io *io = arg;
    struct v4_reply r;
    memset(&r, 0, sizeof(r));
    if (rep)
        r.rep = *rep;
    int st = status ? nfs_client_rpc_status(status, &r.rep) : v4_decode(&r, 16 * 1024);
    int sst = seq_end(io->c, io->slot, st, st ? NULL : &r.res);
    struct nfs_io_result res;
    struct nfs4_fattr fa;
    memset(&res, 0, sizeof(res));
    if (!st)
        st = sst ? sst : (int)r.res.status;
    r.next = 1;
    if (!st && !v4_skip(&r, OP_PUTFH))
        st = -EBADMSG;
    if (!st) {
        const nfs_resop4 *o = v4_next(&r, io->op);
        if (!o) {
            st = -EBADMSG;
        } else if (io->op == OP_READ) {
            const READ4resok *ok = &o->opread.resok4;
            if (ok->data.len > io->count) {
                st = -EBADMSG;
            } else {
                memcpy(io->buf, ok->data.val, ok->data.len);
                res.count = ok->data.len;
                res.eof = ok->eof;
            }
        } else if (io->op == OP_WRITE) {
            const WRITE4resok *ok = &o->opwrite.resok4;
            if (ok->count > io->count || ok->committed > FILE_SYNC4) {
                st = -EBADMSG;
            } else {
                res.count = ok->count;
                res.committed = (enum nfs_stable)ok->committed;
                memcpy(res.verf, ok->writeverf, 8);
            }
        } else if (io->op == OP_COMMIT) {
            res.count = io->count;
            res.committed = NFS_FILE_SYNC;
            memcpy(res.verf, o->opcommit.resok4.writeverf, 8);
        } else {
            st = nfs4_reply_fattr(&o->opgetattr.resok4.obj_attributes, NFS4_ATTRS_STAT, &fa);
        }
    }
    v4_reply_free(&r);
    if (io->attr_done)
        io->attr_done(io->arg, st, st ? NULL : &fa.attr);
    else
        io->done(io->arg, st, &res);
    free(io);
}

static int v4_async(struct nfs_client *c, struct v4_args *a, struct v4_io *io)
{
    if (!io)
        return -ENOMEM;
    io->c = c;
    int st = seq_begin(c, a, &io->slot);
    if (st) {
        free(io);
        return st;
    }
    COMPOUND4args ca = { { 0, NULL }, c->v4->minor, { a->n, a->op } };
    st = rpc_clnt_call_async(c->rpc, NFS4_PROGRAM, NFS_V4, NFSPROC4_COMPOUND, &c->cred,
                             enc_compound, &ca, c->timeout_ms, v4_io_done, io);
    note_sent(c->v4);
    if (st) {
        nfs4_slot_put(&c->v4->slots, io->slot, NFS4_SLOT_UNUSED, UINT32_MAX);
        free(io);
    }
    return st;
}

static struct v4_io *io_new(nfs_opnum4 op, nfs_io_done_fn done, void *arg, void *buf,
                            uint32_t count)
{
    struct v4_io *io = calloc(1, sizeof(*io));
    if (io)
        *io = (struct v4_io){ .op = op, .done = done, .arg = arg, .buf = buf, .count = count };
    return io;
}

static int v4_read_async(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off, void *buf,
                         uint32_t count, nfs_io_done_fn done, void *arg)
{
    struct v4_args a = { 0 };
    add_putfh(&a, fh);
    READ4args *rd = &add_op(&a, OP_READ)->opread;
    rd->stateid = io_stateid(c->v4, fh);
    rd->offset = off;
    rd->count = count;
    return v4_async(c, &a, io_new(OP_READ, done, arg, buf, count));
}

static int v4_write_async(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off,
                          const void *buf, uint32_t count, enum nfs_stable stable,
                          nfs_io_done_fn done, void *arg)
{
    struct v4_args a = { 0 };
    add_putfh(&a, fh);
    WRITE4args *wr = &add_op(&a, OP_WRITE)->opwrite;
    wr->stateid = io_stateid(c->v4, fh);
    wr->offset = off;
    wr->stable = (stable_how4)stable;
    wr->data = opq(buf, count);
    return v4_async(c, &a, io_new(OP_WRITE, done, arg, NULL, count));
}

static int v4_commit_async(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off,
                           uint32_t count, nfs_io_done_fn done, void *arg)
{
    struct v4_args a = { 0 };
    add_putfh(&a, fh);
    COMMIT4args *cm = &add_op(&a, OP_COMMIT)->opcommit;
    cm->offset = off;
    cm->count = count;
    return v4_async(c, &a, io_new(OP_COMMIT, done, arg, NULL, count));
}

static int v4_getattr_async(struct nfs_client *c, const struct nfs_fh *fh, nfs_attr_done_fn done,
                            void *arg)
{
    struct v4_args a = { 0 };
    add_putfh(&a, fh);
    add_getattr(&a, NFS4_ATTRS_STAT);
    struct v4_io *io = io_new(OP_GETATTR, NULL, arg, NULL, 0);
    if (io)
        io->attr_done = done;
    return v4_async(c, &a, io);
}

/* ---- directory operations ---- */

/* A regular file is created by OPEN (NFSv4 has no CREATE for files), then CLOSEd unless
 * the caller already had it open. No delegation is wanted for it: the caller writes by
 * handle right after, and our own delegation would only be recalled by that. */
static int v4_create(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                     uint32_t mode, bool exclusive, struct nfs_fh *fh, struct nfs_attr *attr)
{
    struct nfs_fh got;
    int flags = NFS_O_CREAT | (exclusive ? NFS_O_EXCL : 0);
    int st = open_in_dir(c, dir, name, flags, mode, OPEN4_SHARE_ACCESS_WANT_NO_DELEG, &got, attr);
    if (st)
        return st;
    if (fh)
        *fh = got;
    return close_fh(c, &got);
}

static int v4_make(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                   nfs_ftype4 type, const char *target, uint32_t mode, struct nfs_fh *fh,
                   struct nfs_attr *attr)
{
    uint8_t buf[64];
    uint32_t mask[2];
    struct v4_args a = { 0 };
    add_putfh(&a, dir);
    CREATE4args *cr = &add_op(&a, OP_CREATE)->opcreate;
    cr->objtype.type = type;
    if (type == NF4LNK)
        cr->objtype.linkdata = name4(target);
    cr->objname = name4(name);
    struct nfs_setattr sa = { .set_mode = true, .mode = mode };
    nfs4_encode_sattr(&sa, buf, sizeof(buf), mask, &cr->createattrs);
    add_op(&a, OP_GETFH);
    add_getattr(&a, NFS4_ATTRS_STAT);
    struct v4_reply r;
    struct nfs4_fattr fa;
    int st = v4_call(c, &a, &r);
    if (!st) {
        st = v4_skip(&r, OP_PUTFH) && v4_skip(&r, OP_CREATE) ? take_fh(&r, fh) : -EBADMSG;
        if (!st)
            st = take_attr(&r, NFS4_ATTRS_STAT, &fa);
        if (!st)
            attr_out(attr, &fa);
    }
    v4_reply_free(&r);
    return st;
}

static int v4_mkdir(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                    uint32_t mode, struct nfs_fh *fh, struct nfs_attr *attr)
{
    return v4_make(c, dir, name, NF4DIR, NULL, mode, fh, attr);
}

static int v4_symlink(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                      const char *target, struct nfs_fh *fh)
{
    return v4_make(c, dir, name, NF4LNK, target, 0777, fh, NULL);
}

static int v4_remove(struct nfs_client *c, const struct nfs_fh *dir, const char *name)
{
    struct v4_args a = { 0 };
    add_putfh(&a, dir);
    add_op(&a, OP_REMOVE)->opremove.target = name4(name);
    return v4_call_status(c, &a);
}

static int v4_rename(struct nfs_client *c, const struct nfs_fh *from_dir, const char *from,
                     const struct nfs_fh *to_dir, const char *to)
{
    struct v4_args a = { 0 };
    add_putfh(&a, from_dir);
    add_op(&a, OP_SAVEFH);
    add_putfh(&a, to_dir);
    RENAME4args *rn = &add_op(&a, OP_RENAME)->oprename;
    rn->oldname = name4(from);
    rn->newname = name4(to);
    return v4_call_status(c, &a);
}

static int v4_link(struct nfs_client *c, const struct nfs_fh *file, const struct nfs_fh *dir,
                   const char *name)
{
    struct v4_args a = { 0 };
    add_putfh(&a, file);
    add_op(&a, OP_SAVEFH);
    add_putfh(&a, dir);
    add_op(&a, OP_LINK)->oplink.newname = name4(name);
    return v4_call_status(c, &a);
}

static int v4_readlink(struct nfs_client *c, const struct nfs_fh *fh, char *buf, size_t len)
{
    struct v4_args a = { 0 };
    add_putfh(&a, fh);
    add_op(&a, OP_READLINK);
    struct v4_reply r;
    int st = v4_call(c, &a, &r);
    if (!st) {
        const nfs_resop4 *o = v4_skip(&r, OP_PUTFH) ? v4_next(&r, OP_READLINK) : NULL;
        if (!o) {
            st = -EBADMSG;
        } else {
            const linktext4 *l = &o->opreadlink.resok4.link;
            if (l->len >= len)
                st = -ENAMETOOLONG;
            else if (memchr(l->val, 0, l->len))
                st = -EBADMSG;
            else
                memcpy(buf, l->val, l->len), buf[l->len] = 0;
        }
    }
    v4_reply_free(&r);
    return st;
}

static int v4_fsstat(struct nfs_client *c, const struct nfs_fh *fh, struct nfs_fsstat *fs)
{
    struct v4_args a = { 0 };
    add_putfh(&a, fh);
    add_getattr(&a, NFS4_ATTRS_FSSTAT);
    struct v4_reply r;
    struct nfs4_fattr fa;
    int st = v4_call(c, &a, &r);
    if (!st)
        st = v4_skip(&r, OP_PUTFH) ? take_attr(&r, NFS4_ATTRS_FSSTAT, &fa) : -EBADMSG;
    if (!st)
        *fs = fa.fsstat;
    v4_reply_free(&r);
    return st;
}

static int v4_readdir(struct nfs_client *c, const struct nfs_fh *dir, bool plus,
                      nfs_dirent_fn fn, void *arg)
{
    uint64_t want = NFS4_ATTR_BIT(FATTR4_TYPE) | NFS4_ATTR_BIT(FATTR4_FILEID) |
                    NFS4_ATTR_BIT(FATTR4_RDATTR_ERROR);
    if (plus)
        want |= NFS4_ATTRS_STAT | NFS4_ATTR_BIT(FATTR4_FILEHANDLE);
    struct nfs4_dircursor cur;
    memset(&cur, 0, sizeof(cur));
    while (!cur.eof) {
        struct v4_args a = { 0 };
        add_putfh(&a, dir);
        bitmap4 b = bitmap(&a, want);
        READDIR4args *rd = &add_op(&a, OP_READDIR)->opreaddir;
        rd->cookie = cur.cookie;
        memcpy(rd->cookieverf, cur.verf, 8);
        rd->dircount = c->dtpref;
        rd->maxcount = V4_READDIR_MAXCOUNT;
        rd->attr_request = b;
        struct v4_reply r;
        /* every entry takes >= 20 bytes on the wire and < 100 of arena */
        int st = v4_call_sized(c, &a, &r, 8 * V4_READDIR_MAXCOUNT);
        if (!st) {
            const nfs_resop4 *o = v4_skip(&r, OP_PUTFH) ? v4_next(&r, OP_READDIR) : NULL;
            st = o ? nfs4_reply_readdir(&o->opreaddir.resok4, want, &cur, fn, arg) : -EBADMSG;
        }
        v4_reply_free(&r);
        if (st)
            return st;
    }
    return 0;
}

/* ---- byte-range locks ---- */

static uint64_t wire_len(uint64_t len) { return len ? len : NFS4_UINT64_MAX; }

static int v4_lock(struct nfs_client *c, struct nfs_file *file, bool write, uint64_t off,
                   uint64_t len)
{
    struct nfs4_state *v4 = c->v4;
    pthread_mutex_lock(&v4->mu);
    struct v4_file *f = file->v4_open ? file_find(v4, &file->fh) : NULL;
    bool ok = f && f->have_open, have_lock = ok && f->have_lock;
    stateid4 open_sid = ok ? f->open_sid : anon_stateid, lock_sid = ok ? f->lock_sid : anon_stateid;
    pthread_mutex_unlock(&v4->mu);
    if (!ok)
        return -EBADF; /* NFSv4 locks hang off an open: nfs_open the file first */
    struct v4_args a = { 0 };
    add_putfh(&a, &file->fh);
    LOCK4args *l = &add_op(&a, OP_LOCK)->oplock;
    l->locktype = write ? WRITE_LT : READ_LT;
    l->reclaim = false;
    l->offset = off;
    l->length = wire_len(len);
    l->locker.new_lock_owner = !have_lock;
    if (!have_lock) {
        open_to_lock_owner4 *o = &l->locker.open_owner;
        o->open_seqid = 0;
        o->open_stateid = open_sid;
        o->lock_seqid = 0;
        o->lock_owner.clientid = v4->clientid;
        o->lock_owner.owner = name4(v4->lock_owner);
    } else {
        l->locker.lock_owner.lock_stateid = lock_sid;
        l->locker.lock_owner.lock_seqid = 0;
    }
    struct v4_reply r;
    int st = v4_call(c, &a, &r);
    if (!st) {
        const nfs_resop4 *o = v4_skip(&r, OP_PUTFH) ? v4_next(&r, OP_LOCK) : NULL;
        if (!o) {
            st = -EBADMSG;
        } else {
            pthread_mutex_lock(&v4->mu);
            if ((f = file_find(v4, &file->fh))) {
                f->have_lock = true;
                f->lock_sid = o->oplock.resok4.lock_stateid;
            }
            pthread_mutex_unlock(&v4->mu);
        }
    } else if (st == NFS4ERR_DENIED) {
        st = -EAGAIN;
    }
    v4_reply_free(&r);
    return st;
}

static int v4_unlock(struct nfs_client *c, struct nfs_file *file, uint64_t off, uint64_t len)
{
    struct nfs4_state *v4 = c->v4;
    pthread_mutex_lock(&v4->mu);
    struct v4_file *f = file->v4_open ? file_find(v4, &file->fh) : NULL;
    bool have_lock = f && f->have_lock;
    stateid4 lock_sid = have_lock ? f->lock_sid : anon_stateid;
    pthread_mutex_unlock(&v4->mu);
    if (!have_lock)
        return 0; /* nothing was ever locked through this open */
    struct v4_args a = { 0 };
    add_putfh(&a, &file->fh);
    LOCKU4args *u = &add_op(&a, OP_LOCKU)->oplocku;
    u->locktype = WRITE_LT;
    u->seqid = 0;
    u->lock_stateid = lock_sid;
    u->offset = off;
    u->length = wire_len(len);
    struct v4_reply r;
    int st = v4_call(c, &a, &r);
    if (!st) {
        const nfs_resop4 *o = v4_skip(&r, OP_PUTFH) ? v4_next(&r, OP_LOCKU) : NULL;
        if (!o) {
            st = -EBADMSG;
        } else {
            pthread_mutex_lock(&v4->mu);
            if ((f = file_find(v4, &file->fh)) && f->have_lock)
                f->lock_sid = o->oplocku.lock_stateid;
            pthread_mutex_unlock(&v4->mu);
        }
    }
    v4_reply_free(&r);
    return st;
}

static int v4_testlock(struct nfs_client *c, struct nfs_file *file, bool write, uint64_t off,
                       uint64_t len, struct nfs_lock_conflict *conflict)
{
    struct v4_args a = { 0 };
    add_putfh(&a, &file->fh);
    LOCKT4args *t = &add_op(&a, OP_LOCKT)->oplockt;
    t->locktype = write ? WRITE_LT : READ_LT;
    t->offset = off;
    t->length = wire_len(len);
    t->owner.clientid = c->v4->clientid;
    t->owner.owner = name4(c->v4->lock_owner);
    struct v4_reply r;
    int st = v4_call(c, &a, &r);
    if (st == NFS4ERR_DENIED) {
        const nfs_resop4 *o = v4_skip(&r, OP_PUTFH) ? v4_next(&r, OP_LOCKT) : NULL;
        if (!o) {
            st = -EBADMSG;
        } else {
            const LOCK4denied *d = &o->oplockt.denied;
            conflict->type = (d->locktype == WRITE_LT || d->locktype == WRITEW_LT) ? NFS_LOCK_WRITE
                                                                                   : NFS_LOCK_READ;
            conflict->off = d->offset;
            conflict->len = d->length == NFS4_UINT64_MAX ? 0 : d->length;
            st = -EAGAIN;
        }
    }
    v4_reply_free(&r);
    return st;
}

const struct nfs_client_ops nfs4_client_ops = {
    .name = "NFSv4.1",
    .mount = v4_mount,
    .unmount = v4_unmount,
    .lookup = v4_lookup,
    .getattr = v4_getattr,
    .setattr = v4_setattr,
    .open = v4_open,
    .close = v4_close,
    .read_async = v4_read_async,
    .write_async = v4_write_async,
    .commit_async = v4_commit_async,
    .getattr_async = v4_getattr_async,
    .create = v4_create,
    .mkdir = v4_mkdir,
    .remove = v4_remove,
    .rmdir = v4_remove,
    .rename = v4_rename,
    .link = v4_link,
    .symlink = v4_symlink,
    .readlink = v4_readlink,
    .fsstat = v4_fsstat,
    .readdir = v4_readdir,
    .lock = v4_lock,
    .unlock = v4_unlock,
    .testlock = v4_testlock,
};
