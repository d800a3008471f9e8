/*
 * The NFSv4.x ops vector (RFC 7530, RFC 8881, RFC 7862): one TCP connection carrying
 * the fore channel and, from 4.1 on, the session's back channel.
 *
 * Connecting: EXCHANGE_ID (a client owner unique per client instance: host name, pid,
 * random), CREATE_SESSION with CONN_BACK_CHAN and our callback program (AUTH_SYS),
 * RECLAIM_COMPLETE, then PUTROOTFH + LOOKUPs of the URL path in the server's pseudo-fs.
 * Every later COMPOUND starts with SEQUENCE on a slot of the session's slot table
 * (nfs4_slots.c).
 *
 * Requests (struct v4_req) survive what a server restart or a dropped connection does
 * to them, as the Linux client's do: NFS4ERR_DELAY is retried with backoff, GRACE every
 * second; a lost connection, BADSESSION / DEADSESSION, STALE_CLIENTID, and a stale
 * stateid (STALE_STATEID, EXPIRED) hand the repair to the state manager thread
 * (nfs4_recover.c) and wait for it; the request then goes out again: on the same slot
 * and sequence id when the session survived (the server's reply cache answers a
 * retransmission), else on the new session with its stateids refreshed from the
 * per-file state (which the recovery reclaimed). Blocking calls retry on their own
 * thread; asynchronous ones (READ / WRITE / COMMIT / GETATTR) are queued for the state
 * manager, since their completions run on the RPC reader thread, which must not block.
 * Everything is bounded by V4_RECOVERY_MS per request.
 *
 * NFSv4.0 (RFC 7530) goes the same way without a session: SETCLIENTID +
 * SETCLIENTID_CONFIRM instead of EXCHANGE_ID + CREATE_SESSION + RECLAIM_COMPLETE, no
 * SEQUENCE (compound_args leaves op[0] out), RENEW from the state manager, and the
 * owners' seqids put into OPEN / CLOSE / LOCK / LOCKU when they go out and advanced by
 * their replies (nfs4_v40.c), one exchange at a time (nfs4c_owners_begin). No callback
 * service: the server's probe of our callback address fails, so it grants no
 * delegations. A reconnect is all a lost connection needs (the server's reply caches
 * answer retransmissions); a restart is recovered as with 4.1.
 *
 * Open state: one open owner and one lock owner per client instance; the open / lock /
 * delegation stateids of a file live in a small list keyed by handle (struct v4_file),
 * so READ / WRITE by handle find the right stateid (seqid 0 = "the current one"), and
 * a recovery finds what to reclaim.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "client/nfs4_reply.h"
#include "client/nfs4_state.h"
#include "util/log.h"

#define V4_READDIR_MAXCOUNT (64u * 1024)

static const stateid4 anon_stateid; /* all zeros: the anonymous stateid */

static bool enc_compound(struct xdr_enc *x, const void *v) { return xdr_encode_COMPOUND4args(x, v); }

static struct xdr_opaque opq(const void *p, size_t n) { return (struct xdr_opaque){ (uint32_t)n, p }; }
static struct xdr_opaque fh4(const struct nfs_fh *f) { return opq(f->data, f->len); }
static struct xdr_opaque name4(const char *s) { return opq(s, strlen(s)); }

static void now_mono(struct timespec *t) { clock_gettime(CLOCK_MONOTONIC, t); }

static bool sessions(const struct nfs4_state *v4) { return v4->minor != 0; }

/* The COMPOUND as it goes out: with SEQUENCE in op[0] (4.1+), or from op[1] (4.0). */
static COMPOUND4args compound_args(const struct nfs4_state *v4, struct v4_args *a)
{
    uint32_t skip = sessions(v4) || a->n == 0 ? 0 : 1;
    return (COMPOUND4args){ { 0, NULL }, v4->minor, { a->n - skip, a->op + skip } };
}

/* Index of the first result after SEQUENCE (4.1+); 4.0 replies have none. */
static uint32_t first_result(const struct nfs4_state *v4) { return sessions(v4) ? 1 : 0; }

int64_t nfs4c_now_ms(void)
{
    struct timespec t;
    now_mono(&t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void stat_add(struct nfs4_state *v4, uint64_t *ctr)
{
    pthread_mutex_lock(&v4->mu);
    (*ctr)++;
    pthread_mutex_unlock(&v4->mu);
}

/* ---- building COMPOUNDs ---- */

nfs_argop4 *nfs4c_add_op(struct v4_args *a, nfs_opnum4 op)
{
    if (a->n == 0)
        a->n = 1; /* op[0] is SEQUENCE, filled when a slot is taken */
    nfs_argop4 *o = &a->op[a->n++];
    memset(o, 0, sizeof(*o));
    o->argop = op;
    return o;
}

void nfs4c_add_putfh(struct v4_args *a, const struct nfs_fh *fh)
{
    nfs4c_add_op(a, OP_PUTFH)->opputfh.object = fh4(fh);
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
    nfs4c_add_op(a, OP_GETATTR)->opgetattr.attr_request = b;
}

/* Ops whose effect a blind re-execution could change (a retransmission must get the
 * first reply from the server's cache instead): SEQUENCE asks it to keep the reply. */
static bool args_cachethis(const struct v4_args *a)
{
    for (uint32_t i = 1; i < a->n; i++) {
        switch (a->op[i].argop) {
        case OP_OPEN: case OP_CLOSE: case OP_LOCK: case OP_LOCKU: case OP_CREATE:
        case OP_REMOVE: case OP_RENAME: case OP_LINK: case OP_SETATTR: case OP_WRITE:
        case OP_OPEN_DOWNGRADE: case OP_DELEGRETURN: case OP_FREE_STATEID:
            return true;
        default:
            break;
        }
    }
    return false;
}

/* ---- replies ---- */

void nfs4c_reply_free(struct v4_reply *r)
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
const nfs_resop4 *nfs4c_next(struct v4_reply *r, nfs_opnum4 op)
{
    if (r->next >= r->res.resarray.len || r->res.resarray.val[r->next].resop != op)
        return NULL;
    return &r->res.resarray.val[r->next++];
}

/* Skip results of ops whose only outcome is their status (PUTFH, SAVEFH, LOOKUP...). */
static bool v4_skip(struct v4_reply *r, nfs_opnum4 op) { return nfs4c_next(r, op) != NULL; }

/* ---- open / delegation state per handle ---- */

struct v4_file *nfs4c_file_find(struct nfs4_state *v4, const struct nfs_fh *fh)
{
    for (struct v4_file *f = v4->files; f; f = f->next)
        if (f->fh.len == fh->len && !memcmp(f->fh.data, fh->data, fh->len))
            return f;
    return NULL;
}

static struct v4_file *file_get(struct nfs4_state *v4, const struct nfs_fh *fh)
{
    struct v4_file *f = nfs4c_file_find(v4, fh);
    if (!f && (f = calloc(1, sizeof(*f)))) {
        f->fh = *fh;
        f->next = v4->files;
        v4->files = f;
    }
    return f;
}

void nfs4c_file_drop_if_idle(struct nfs4_state *v4, struct v4_file *f)
{
    if (f->refs || f->have_open || f->deleg_type != OPEN_DELEGATE_NONE)
        return;
    for (struct v4_file **p = &v4->files; *p; p = &(*p)->next) {
        if (*p == f) {
            *p = f->next;
            nfs4_lockset_clear(&f->locks);
            free(f);
            return;
        }
    }
}

static bool is_anon(const stateid4 *sid) { return !memcmp(sid, &anon_stateid, sizeof(*sid)); }

/* The stateid for I/O on fh (mu held): the open's, else a delegation's, else anonymous;
 * seqid 0 means "the current one" (RFC 8881 8.2.2), so an upgrade in flight does not
 * matter (4.0 has no such thing: an OLD_STATEID answer sends it again with the new
 * one). -EIO when the file's state was lost in a server restart. */
static int io_stateid_locked(struct nfs4_state *v4, const struct nfs_fh *fh, stateid4 *sid)
{
    *sid = anon_stateid;
    struct v4_file *f = nfs4c_file_find(v4, fh);
    if (f && f->lost)
        return -EIO;
    if (f && f->have_open)
        *sid = f->open_sid;
    else if (f && f->deleg_type != OPEN_DELEGATE_NONE)
        *sid = f->deleg_sid;
    if (!is_anon(sid) && sessions(v4))
        sid->seqid = 0;
    return 0;
}

static int io_stateid(struct nfs4_state *v4, const struct nfs_fh *fh, stateid4 *sid)
{
    pthread_mutex_lock(&v4->mu);
    int st = io_stateid_locked(v4, fh, sid);
    pthread_mutex_unlock(&v4->mu);
    return st;
}

/* ---- refreshing a request's state after a recovery ---- */

/* The open / lock stateid of fh now (mu held), or -EIO when there is none any more. */
static int file_sid_locked(struct nfs4_state *v4, const struct nfs_fh *fh, bool lock, stateid4 *sid)
{
    struct v4_file *f = nfs4c_file_find(v4, fh);
    if (!f || f->lost || !(lock ? f->have_lock : f->have_open))
        return -EIO;
    *sid = lock ? f->lock_sid : f->open_sid;
    return 0;
}

static int refresh_op_locked(struct nfs4_state *v4, nfs_argop4 *o, const struct nfs_fh *fh)
{
    switch (o->argop) {
    case OP_OPEN: o->opopen.owner.clientid = v4->clientid; return 0;
    case OP_LOCKT: o->oplockt.owner.clientid = v4->clientid; return 0;
    case OP_RENEW: o->oprenew.clientid = v4->clientid; return 0;
    case OP_RELEASE_LOCKOWNER: o->oprelease_lockowner.lock_owner.clientid = v4->clientid; return 0;
    case OP_READ: return is_anon(&o->opread.stateid) ? 0 : io_stateid_locked(v4, fh, &o->opread.stateid);
    case OP_WRITE: return is_anon(&o->opwrite.stateid) ? 0 : io_stateid_locked(v4, fh, &o->opwrite.stateid);
    case OP_SETATTR:
        return is_anon(&o->opsetattr.stateid) ? 0 : io_stateid_locked(v4, fh, &o->opsetattr.stateid);
    case OP_CLOSE: return file_sid_locked(v4, fh, false, &o->opclose.open_stateid);
    case OP_LOCKU: return file_sid_locked(v4, fh, true, &o->oplocku.lock_stateid);
    case OP_FREE_STATEID: return file_sid_locked(v4, fh, true, &o->opfree_stateid.fsa_stateid);
    case OP_LOCK: {
        LOCK4args *l = &o->oplock;
        if (!l->locker.new_lock_owner)
            return file_sid_locked(v4, fh, true, &l->locker.lock_owner.lock_stateid);
        l->locker.open_owner.lock_owner.clientid = v4->clientid;
        return file_sid_locked(v4, fh, false, &l->locker.open_owner.open_stateid);
    }
    default: return 0;
    }
}

/* Put the current client id and stateids into a request built earlier (mu held): after
 * a recovery they are the reclaimed ones. The current filehandle is followed through
 * PUTFH; ops that set another one carry no stateids after it. -EIO: the state a
 * stateid stood for was lost. */
static int args_refresh_locked(struct nfs4_state *v4, struct v4_args *a)
{
    struct nfs_fh fh = { 0 };
    for (uint32_t i = 1; i < a->n; i++) {
        nfs_argop4 *o = &a->op[i];
        if (o->argop == OP_PUTFH) {
            if (nfs4_fh_from_wire(&fh, &o->opputfh.object))
                fh.len = 0;
            continue;
        }
        int st = refresh_op_locked(v4, o, &fh);
        if (st)
            return st;
    }
    return 0;
}

/* ---- SEQUENCE and the slot table ---- */

/* Does a COMPOUND renew the lease? Every SEQUENCE does (4.1+); in 4.0 only ops naming
 * our client id or stateids do, which is not all of them: count RENEW and
 * SETCLIENTID_CONFIRM only, so the state manager renews every lease / 3 as needed. */
static bool renews_lease(const struct nfs4_state *v4, const nfs_argop4 *ops, uint32_t n)
{
    if (sessions(v4))
        return true;
    for (uint32_t i = 0; i < n; i++)
        if (ops[i].argop == OP_RENEW || ops[i].argop == OP_SETCLIENTID_CONFIRM)
            return true;
    return false;
}

/* renews: renews_lease() of the COMPOUND, asked before it went out (an asynchronous
 * one's memory may be gone once it is sent). */
static void note_sent(struct nfs4_state *v4, bool renews)
{
    pthread_mutex_lock(&v4->mu);
    if (renews)
        now_mono(&v4->last_send);
    v4->stats.compounds++;
    pthread_mutex_unlock(&v4->mu);
}

void nfs4c_add_lease_renewal_locked(struct nfs4_state *v4, struct v4_args *a)
{
    if (sessions(v4))
        a->n = 1; /* SEQUENCE alone */
    else
        nfs4c_add_op(a, OP_RENEW)->oprenew.clientid = v4->clientid;
}

/* Take a slot of the current session and fill SEQUENCE in. -ECANCELED: that session
 * was replaced while we waited, or is being replaced (try again on the new one). */
static int seq_begin(struct nfs_client *c, struct v4_req *rq)
{
    struct nfs4_state *v4 = c->v4;
    pthread_mutex_lock(&v4->mu);
    struct v4_session *s = nfs4c_sess_get_locked(v4);
    pthread_mutex_unlock(&v4->mu);
    if (!s)
        return -ENOTCONN;
    uint32_t seqid, highest;
    int st = nfs4_slot_get(&s->slots, c->timeout_ms, &rq->slot, &seqid, &highest);
    if (st == -EIO) {
        /* every slot retired (requests lost in timeouts or on dropped connections):
         * only a new session has usable slots again */
        pthread_mutex_lock(&v4->mu);
        rq->sess_gen = s->gen;
        if (v4->thread_started && !v4->stopping)
            nfs4c_recovery_ask_locked(v4, RECOV_SESSION, rq);
        pthread_mutex_unlock(&v4->mu);
        st = -ECANCELED;
    }
    if (st) {
        nfs4c_sess_put(v4, s);
        return st;
    }
    rq->sess = s;
    rq->sess_gen = s->gen;
    rq->have_slot = true;
    struct v4_args *a = rq->a;
    if (a->n == 0)
        a->n = 1;
    nfs_argop4 *o = &a->op[0];
    memset(o, 0, sizeof(*o));
    o->argop = OP_SEQUENCE;
    SEQUENCE4args *q = &o->opsequence;
    memcpy(q->sa_sessionid, s->id, sizeof(sessionid4));
    q->sa_sequenceid = seqid;
    q->sa_slotid = rq->slot;
    q->sa_highest_slotid = highest;
    q->sa_cachethis = args_cachethis(a);
    return 0;
}

static void slot_release(struct nfs_client *c, struct v4_req *rq, enum nfs4_slot_outcome how,
                         uint32_t target_highest)
{
    if (!rq->have_slot)
        return;
    nfs4_slot_put(&rq->sess->slots, rq->slot, how, target_highest);
    nfs4c_sess_put(c->v4, rq->sess);
    rq->sess = NULL;
    rq->have_slot = false;
}

/* Give the slot back according to what became of SEQUENCE; returns its status (0,
 * positive nfsstat4) or the transport / decoding error. */
static int seq_end(struct nfs_client *c, struct v4_req *rq, int st, const COMPOUND4res *res)
{
    if (st) {
        /* -EPROTO: the RPC layer refused the call, so SEQUENCE never ran; otherwise
         * (timeout, garbage reply) we cannot know */
        slot_release(c, rq, st == -EPROTO ? NFS4_SLOT_UNUSED : NFS4_SLOT_LOST, UINT32_MAX);
        return st;
    }
    if (res->resarray.len == 0) {
        slot_release(c, rq, NFS4_SLOT_UNUSED, UINT32_MAX);
        return res->status ? (int)res->status : -EBADMSG;
    }
    const nfs_resop4 *o = &res->resarray.val[0];
    if (o->resop != OP_SEQUENCE) {
        slot_release(c, rq, NFS4_SLOT_LOST, UINT32_MAX);
        return -EBADMSG;
    }
    const SEQUENCE4res *s = &o->opsequence;
    if (s->sr_status == NFS4_OK) {
        bool same = s->sr_resok4.sr_slotid == rq->slot &&
                    !memcmp(s->sr_resok4.sr_sessionid, rq->sess->id, sizeof(sessionid4));
        slot_release(c, rq, same ? NFS4_SLOT_DONE : NFS4_SLOT_LOST,
                     s->sr_resok4.sr_target_highest_slotid);
        return same ? 0 : -EBADMSG;
    }
    /* DELAY: the server still runs what this slot carried before (a request of ours
     * that went out on a lost connection): the same slot and sequence id go again, as
     * another request taking them would look like a retransmission of that one */
    if (s->sr_status == NFS4ERR_DELAY)
        return NFS4ERR_DELAY;
    /* an uncached replay still used up the sequence id; a misordered one lost track */
    enum nfs4_slot_outcome how = s->sr_status == NFS4ERR_RETRY_UNCACHED_REP ? NFS4_SLOT_DONE
                                 : s->sr_status == NFS4ERR_SEQ_MISORDERED ||
                                         s->sr_status == NFS4ERR_SEQ_FALSE_RETRY
                                     ? NFS4_SLOT_LOST
                                     : NFS4_SLOT_UNUSED;
    slot_release(c, rq, how, UINT32_MAX);
    return (int)s->sr_status;
}

/* ---- requests: retries and recovery ---- */

/* Set on the state manager thread (nfs4_recover.c): it must never wait for itself. */
_Thread_local const struct nfs4_state *nfs4c_tls_state_manager;

static bool on_state_manager(const struct nfs4_state *v4) { return nfs4c_tls_state_manager == v4; }

static void req_init(struct nfs_client *c, struct v4_req *rq, struct v4_args *a, size_t arena)
{
    struct nfs4_state *v4 = c->v4;
    memset(rq, 0, sizeof(*rq));
    rq->a = a;
    rq->arena = arena;
    rq->start_ms = nfs4c_now_ms();
    rq->delay_ms = 20;
    pthread_mutex_lock(&v4->mu);
    rq->sm = v4->stopping || on_state_manager(v4);
    rq->epoch = v4->state_epoch;
    pthread_mutex_unlock(&v4->mu);
}

/* Before each transmission: wait out a recovery, bring the stateids up to date, take
 * the current connection and a slot (keeping the one held when the session is the
 * same: a retransmission). */
static int req_prepare(struct nfs_client *c, struct v4_req *rq)
{
    struct nfs4_state *v4 = c->v4;
    pthread_mutex_lock(&v4->mu);
    bool may_wait = !rq->sm && !on_state_manager(v4);
    int st = may_wait ? nfs4c_recovery_wait_locked(v4, rq->start_ms + V4_RECOVERY_MS) : 0;
    if (!st && !rq->sm) {
        rq->epoch = v4->state_epoch;
        st = args_refresh_locked(v4, rq->a);
    }
    if (!st && !sessions(v4)) /* the owners' seqids as of now (a resend: the same) */
        nfs4_seqid_fill(rq->a->op + 1, rq->a->n ? rq->a->n - 1 : 0, v4->seqid_next);
    bool stale_slot = rq->have_slot && rq->sess != v4->sess;
    if (!st && !(rq->conn = nfs4c_conn_get_locked(v4)))
        st = -ENOTCONN;
    if (!st)
        rq->conn_gen = rq->conn->gen;
    pthread_mutex_unlock(&v4->mu);
    if (stale_slot) /* that session is gone: whatever the slot saw no longer matters */
        slot_release(c, rq, NFS4_SLOT_LOST, UINT32_MAX);
    if (!st && sessions(v4) && !rq->have_slot && (st = seq_begin(c, rq)) != 0) {
        nfs4c_conn_put(v4, rq->conn);
        rq->conn = NULL;
    }
    return st;
}

static bool transport_lost(int st)
{
    return st == -ECONNRESET || st == -EPIPE || st == -ENOTCONN || st == -ECONNABORTED;
}

enum v4_action {
    V4_DONE,    /* final: hand the status to the caller */
    V4_RETRY,   /* send again now (prepare refreshes / waits as needed) */
    V4_WAIT,    /* send again after rq->wait_ms */
};

static bool req_expired(const struct v4_req *rq)
{
    return nfs4c_now_ms() - rq->start_ms > V4_RECOVERY_MS;
}

/* A session replaced under the request (-ECANCELED from a slot wait): worth another
 * try if a state manager runs to provide the new one. */
static bool req_may_retry(struct nfs_client *c, const struct v4_req *rq)
{
    pthread_mutex_lock(&c->v4->mu);
    bool sm_runs = c->v4->thread_started && !c->v4->stopping;
    pthread_mutex_unlock(&c->v4->mu);
    return sm_runs && !rq->sm && !req_expired(rq);
}

/* Something the state manager must repair: ask, and retry (prepare waits for it). The
 * state manager's own requests report the failure instead: it is the one to repair. */
static enum v4_action req_recover(struct nfs_client *c, struct v4_req *rq, unsigned need)
{
    struct nfs4_state *v4 = c->v4;
    pthread_mutex_lock(&v4->mu);
    bool stop = v4->stopping || !v4->thread_started; /* no state manager (yet) */
    if (!stop)
        nfs4c_recovery_ask_locked(v4, need, rq);
    pthread_mutex_unlock(&v4->mu);
    return rq->sm || stop || req_expired(rq) ? V4_DONE : V4_RETRY;
}

/* DELAY: back off 20 ms doubling to 1 s, for up to the client's timeout; GRACE: every
 * second until the grace period is over (bounded by V4_RECOVERY_MS). */
static enum v4_action req_wait(struct nfs_client *c, struct v4_req *rq, int st)
{
    if (st == NFS4ERR_GRACE) {
        if (req_expired(rq))
            return V4_DONE;
        rq->wait_ms = V4_GRACE_RETRY_MS;
    } else {
        if (rq->waited_ms >= (unsigned)c->timeout_ms)
            return V4_DONE;
        rq->wait_ms = rq->delay_ms;
        rq->waited_ms += rq->delay_ms;
        rq->delay_ms = rq->delay_ms >= 500 ? 1000 : rq->delay_ms * 2;
    }
    stat_add(c->v4, &c->v4->stats.delay_retries);
    return V4_WAIT;
}

/* A stateid the server no longer knows: if a recovery re-established the state since
 * the request was built, it goes again with the new stateids; STALE_STATEID / EXPIRED
 * on current stateids mean the server lost our state (a restart we have not noticed):
 * recover it first. BAD_STATEID of the current epoch is a plain error. */
static enum v4_action req_stale(struct nfs_client *c, struct v4_req *rq, int st)
{
    struct nfs4_state *v4 = c->v4;
    pthread_mutex_lock(&v4->mu);
    bool newer = rq->epoch != v4->state_epoch;
    pthread_mutex_unlock(&v4->mu);
    if (rq->sm || rq->stale++ >= 3)
        return V4_DONE;
    if (newer)
        return V4_RETRY;
    return st == NFS4ERR_BAD_STATEID ? V4_DONE : req_recover(c, rq, RECOV_CLIENT);
}

/* 4.0: what the reply says about the owners' seqids (RFC 7530 9.1.7). */
static void seqids_advance(struct nfs_client *c, struct v4_req *rq, const COMPOUND4res *res)
{
    struct nfs4_state *v4 = c->v4;
    COMPOUND4args ca = compound_args(v4, rq->a);
    if (!nfs4_seqid_ops(ca.argarray.val, ca.argarray.len))
        return;
    pthread_mutex_lock(&v4->mu);
    nfs4_seqid_update(ca.argarray.val, ca.argarray.len, res, v4->seqid_next);
    nfs4_seqid_known(ca.argarray.val, ca.argarray.len, res, v4->seqid_uncertain);
    pthread_mutex_unlock(&v4->mu);
}

/* 4.0, BAD_SEQID: if an owner's seqid was only assumed (a request given up on), take
 * the step back and send again (see nfs4_seqid_assume). */
static bool seqids_step_back(struct nfs_client *c, struct v4_req *rq)
{
    struct nfs4_state *v4 = c->v4;
    COMPOUND4args ca = compound_args(v4, rq->a);
    pthread_mutex_lock(&v4->mu);
    bool stepped = nfs4_seqid_step_back(ca.argarray.val, ca.argarray.len, v4->seqid_next,
                                        v4->seqid_uncertain);
    pthread_mutex_unlock(&v4->mu);
    if (stepped)
        log_info("nfs4 client: BAD_SEQID after a request given up on: the server had not "
                 "processed it; sending again with the seqid before it");
    return stepped;
}

/* 4.0: a request given up on after it went out may have consumed its owners' seqids. */
static void seqids_abandoned(struct nfs_client *c, struct v4_req *rq)
{
    struct nfs4_state *v4 = c->v4;
    COMPOUND4args ca = compound_args(v4, rq->a);
    if (sessions(v4) || !rq->unanswered || !nfs4_seqid_ops(ca.argarray.val, ca.argarray.len))
        return;
    pthread_mutex_lock(&v4->mu);
    nfs4_seqid_assume(ca.argarray.val, ca.argarray.len, v4->seqid_next, v4->seqid_uncertain);
    pthread_mutex_unlock(&v4->mu);
}

/* What to do after one transmission: st is the transport / decoding status, res the
 * decoded reply when st is 0; *status becomes the request's status. */
static enum v4_action req_outcome(struct nfs_client *c, struct v4_req *rq, int *status,
                                  const COMPOUND4res *res)
{
    int st = *status;
    bool sess = sessions(c->v4);
    if (transport_lost(st) && (rq->have_slot || !sess)) {
        /* keep the slot: if the session survives the reconnect, the same slot and
         * sequence id go out again and the server's reply cache answers (4.0: the
         * same seqids, for the owners' reply caches, and its duplicate request cache) */
        return req_recover(c, rq, RECOV_CONN);
    }
    int sst = sess ? seq_end(c, rq, st, res) : 0;
    if (st)
        return V4_DONE;
    if (!sess)
        seqids_advance(c, rq, res);
    int cst = *status = sst ? sst : (int)res->status;
    switch (cst) {
    case NFS4ERR_BADSESSION:
    case NFS4ERR_DEADSESSION:
        return sst ? req_recover(c, rq, RECOV_SESSION) : V4_DONE;
    case NFS4ERR_STALE_CLIENTID:
        return req_recover(c, rq, RECOV_CLIENT);
    case NFS4ERR_DELAY:
    case NFS4ERR_GRACE:
        return req_wait(c, rq, cst);
    case NFS4ERR_STALE_STATEID:
    case NFS4ERR_EXPIRED:
    case NFS4ERR_BAD_STATEID:
        return req_stale(c, rq, cst);
    case NFS4ERR_BAD_SEQID:
        return !sess && seqids_step_back(c, rq) ? V4_RETRY : V4_DONE;
    case NFS4ERR_OLD_STATEID: /* 4.0: I/O overtaken by an OPEN upgrade: the new seqid */
        return !sess && !rq->sm && rq->stale++ < 3 ? V4_RETRY : V4_DONE;
    case NFS4ERR_RETRY_UNCACHED_REP: /* a retransmission the server did not keep */
    case NFS4ERR_SEQ_MISORDERED:     /* a retired slot's: another slot */
        return sst && rq->misordered++ < 3 ? V4_RETRY : V4_DONE;
    default:
        return V4_DONE;
    }
}

/* The request is over: let go of what it holds. */
static void req_finish(struct nfs_client *c, struct v4_req *rq)
{
    slot_release(c, rq, NFS4_SLOT_LOST, UINT32_MAX);
    if (rq->conn)
        nfs4c_conn_put(c->v4, rq->conn);
    rq->conn = NULL;
}

/* One transmission of a blocking request; the action for what came back. */
static enum v4_action call_once(struct nfs_client *c, struct v4_req *rq, struct v4_reply *r,
                                int *status)
{
    struct nfs4_state *v4 = c->v4;
    memset(r, 0, sizeof(*r));
    int st = req_prepare(c, rq);
    if (st) {
        *status = st;
        return st == -ECANCELED && req_may_retry(c, rq) ? V4_RETRY : V4_DONE;
    }
    COMPOUND4args ca = compound_args(v4, rq->a);
    st = rpc_clnt_call(rq->conn->rpc, NFS4_PROGRAM, NFS_V4, NFSPROC4_COMPOUND, &c->cred,
                       enc_compound, &ca, c->timeout_ms, &r->rep);
    note_sent(v4, renews_lease(v4, ca.argarray.val, ca.argarray.len));
    *status = st ? nfs_client_rpc_status(st, &r->rep) : v4_decode(r, rq->arena);
    /* no reply, or none we could read: the server may have run it (-EPROTO: it refused
     * the RPC itself, which runs nothing) */
    rq->unanswered = st ? st != -EPROTO : *status < 0;
    enum v4_action act = req_outcome(c, rq, status, *status ? NULL : &r->res);
    nfs4c_conn_put(v4, rq->conn);
    rq->conn = NULL;
    return act;
}

/*
 * A blocking COMPOUND: SEQUENCE (4.1+) + a->op[1..]. Returns the COMPOUND status (0 or
 * the failing op's nfsstat4) with r holding the results after SEQUENCE (r->next), or a
 * negative error. Retries as the file comment says. nfs4c_reply_free(r) in every case.
 */
static int v4_call_sized(struct nfs_client *c, struct v4_args *a, struct v4_reply *r,
                         size_t arena_size)
{
    struct v4_req rq;
    req_init(c, &rq, a, arena_size);
    for (;;) {
        int st;
        enum v4_action act = call_once(c, &rq, r, &st);
        if (act == V4_DONE) {
            if (st < 0)
                seqids_abandoned(c, &rq);
            req_finish(c, &rq);
            r->next = first_result(c->v4);
            return st;
        }
        nfs4c_reply_free(r);
        if (act == V4_WAIT)
            usleep(rq.wait_ms * 1000u);
    }
}

int nfs4c_call(struct nfs_client *c, struct v4_args *a, struct v4_reply *r)
{
    return v4_call_sized(c, a, r, V4_ARENA_DEFAULT);
}

/* A COMPOUND whose results need nothing but the status. */
int nfs4c_call_status(struct nfs_client *c, struct v4_args *a)
{
    struct v4_reply r;
    int st = nfs4c_call(c, a, &r);
    nfs4c_reply_free(&r);
    return st;
}

int nfs4c_call_nosession(struct nfs_client *c, nfs_argop4 *ops, uint32_t n, struct v4_reply *r)
{
    struct nfs4_state *v4 = c->v4;
    memset(r, 0, sizeof(*r));
    pthread_mutex_lock(&v4->mu);
    struct v4_conn *k = nfs4c_conn_get_locked(v4);
    pthread_mutex_unlock(&v4->mu);
    if (!k)
        return -ENOTCONN;
    COMPOUND4args ca = { { 0, NULL }, v4->minor, { n, ops } };
    int st = rpc_clnt_call(k->rpc, NFS4_PROGRAM, NFS_V4, NFSPROC4_COMPOUND, &c->cred,
                           enc_compound, &ca, c->timeout_ms, &r->rep);
    nfs4c_conn_put(v4, k);
    note_sent(v4, renews_lease(v4, ca.argarray.val, ca.argarray.len));
    if (!st)
        st = v4_decode(r, V4_ARENA_DEFAULT);
    else
        st = nfs_client_rpc_status(st, &r->rep);
    if (st)
        return st;
    return (int)r->res.status;
}

static int take_fh(struct v4_reply *r, struct nfs_fh *fh)
{
    const nfs_resop4 *o = nfs4c_next(r, OP_GETFH);
    if (!o)
        return -EBADMSG;
    struct nfs_fh tmp;
    return nfs4_fh_from_wire(fh ? fh : &tmp, &o->opgetfh.resok4.object);
}

static int take_attr(struct v4_reply *r, uint64_t want, struct nfs4_fattr *fa)
{
    const nfs_resop4 *o = nfs4c_next(r, OP_GETATTR);
    if (!o)
        return -EBADMSG;
    return nfs4_reply_fattr(&o->opgetattr.resok4.obj_attributes, want, fa);
}

/* ---- READ / WRITE / COMMIT / GETATTR, asynchronous ---- */

struct v4_io {
    struct v4_io *next; /* on nfs4_state.retries */
    struct nfs_client *c;
    struct v4_req rq;
    struct v4_args a;
    int64_t due_ms;
    nfs_opnum4 op;
    nfs_io_done_fn done;
    nfs_attr_done_fn attr_done;
    void *arg;
    void *buf;
    struct nfs_read_ref *ref; /* READ: the data stays in the reply (buf unused) */
    uint32_t count;
    struct nfs_fh fh; /* the args point here and at data: the caller's may be gone */
    void *data;       /* WRITE: our copy, for retransmissions (or the caller's buffer) */
    bool borrowed;    /* data is the caller's, valid until the completion has run */
};

static void io_free(struct v4_io *io)
{
    if (!io->borrowed)
        free(io->data);
    free(io);
}

/* Run the caller's completion (never with mu held) and free the request. */
static void io_complete(struct v4_io *io, int st, const struct nfs_io_result *res,
                        const struct nfs_attr *attr)
{
    req_finish(io->c, &io->rq);
    if (io->attr_done) {
        io->attr_done(io->arg, st, st ? NULL : attr);
    } else {
        struct nfs_io_result none;
        memset(&none, 0, sizeof(none));
        io->done(io->arg, st, res ? res : &none);
    }
    io_free(io);
}

/* Back to the state manager, to go out again at io->due_ms. */
static void io_requeue(struct v4_io *io, enum v4_action act)
{
    struct nfs4_state *v4 = io->c->v4;
    io->due_ms = nfs4c_now_ms() + (act == V4_WAIT ? io->rq.wait_ms : 0);
    pthread_mutex_lock(&v4->mu);
    bool stop = v4->stopping;
    if (!stop) {
        io->next = v4->retries;
        v4->retries = io;
        pthread_cond_signal(&v4->cv);
    }
    pthread_mutex_unlock(&v4->mu);
    if (stop)
        io_complete(io, -ECANCELED, NULL, NULL);
}

static int io_take_result(struct v4_io *io, struct v4_reply *r, struct nfs_io_result *res,
                          struct nfs4_fattr *fa)
{
    const nfs_resop4 *o = v4_skip(r, OP_PUTFH) ? nfs4c_next(r, io->op) : NULL;
    if (!o)
        return -EBADMSG;
    if (io->op == OP_READ) {
        const READ4resok *ok = &o->opread.resok4;
        if (ok->data.len > io->count)
            return -EBADMSG;
        if (io->ref)
            io->ref->data = ok->data.val; /* v4_io_done hands the reply over */
        else if (ok->data.len)
            memcpy(io->buf, ok->data.val, ok->data.len);
        res->count = ok->data.len;
        res->eof = ok->eof;
    } else if (io->op == OP_WRITE) {
        const WRITE4resok *ok = &o->opwrite.resok4;
        if (ok->count > io->count || ok->committed > FILE_SYNC4)
            return -EBADMSG;
        res->count = ok->count;
        res->committed = (enum nfs_stable)ok->committed;
        memcpy(res->verf, ok->writeverf, 8);
    } else if (io->op == OP_COMMIT) {
        res->count = io->count;
        res->committed = NFS_FILE_SYNC;
        memcpy(res->verf, o->opcommit.resok4.writeverf, 8);
    } else {
        return nfs4_reply_fattr(&o->opgetattr.resok4.obj_attributes, NFS4_ATTRS_STAT, fa);
    }
    return 0;
}

static void v4_io_done(void *arg, int status, struct rpc_reply *rep)
{
    struct v4_io *io = arg;
    struct v4_reply r;
    memset(&r, 0, sizeof(r));
    if (rep)
        r.rep = *rep;
    int st = status ? nfs_client_rpc_status(status, &r.rep) : v4_decode(&r, 16 * 1024);
    enum v4_action act = req_outcome(io->c, &io->rq, &st, st ? NULL : &r.res);
    nfs4c_conn_put(io->c->v4, io->rq.conn);
    io->rq.conn = NULL;
    if (act != V4_DONE) {
        nfs4c_reply_free(&r);
        io_requeue(io, act); /* the reader thread must not wait: the state manager sends */
        return;
    }
    struct nfs_io_result res;
    struct nfs4_fattr fa;
    memset(&res, 0, sizeof(res));
    r.next = first_result(io->c->v4);
    if (!st)
        st = io_take_result(io, &r, &res, &fa);
    if (!st && io->ref) { /* READ data points into the reply: it is the caller's now */
        io->ref->hold = r.rep;
        r.rep.rb = NULL;
        r.rep.buf = NULL;
    }
    nfs4c_reply_free(&r);
    io_complete(io, st, &res, &fa.attr);
}

/* Send (again). 0: out, or queued for a retry (the completion will run); else the
 * request failed and is still the caller's. */
static int io_send(struct nfs_client *c, struct v4_io *io)
{
    int st = req_prepare(c, &io->rq);
    if (st == -ECANCELED && req_may_retry(c, &io->rq)) {
        io_requeue(io, V4_RETRY); /* its session was replaced under it */
        return 0;
    }
    if (st)
        return st;
    COMPOUND4args ca = compound_args(c->v4, &io->a);
    bool renews = renews_lease(c->v4, ca.argarray.val, ca.argarray.len);
    struct v4_conn *k = io->rq.conn;
    if (io->op == OP_WRITE) /* WRITE, last, with its data empty: it goes out from io->data */
        st = rpc_clnt_call_async_payload(k->rpc, NFS4_PROGRAM, NFS_V4, NFSPROC4_COMPOUND,
                                         &c->cred, enc_compound, &ca, io->data, io->count,
                                         c->timeout_ms, v4_io_done, io);
    else
        st = rpc_clnt_call_async(k->rpc, NFS4_PROGRAM, NFS_V4, NFSPROC4_COMPOUND, &c->cred,
                                 enc_compound, &ca, c->timeout_ms, v4_io_done, io);
    note_sent(c->v4, renews);
    if (!st)
        return 0; /* io belongs to the completion now */
    enum v4_action act = req_outcome(c, &io->rq, &st, NULL);
    nfs4c_conn_put(c->v4, k);
    io->rq.conn = NULL;
    if (act == V4_DONE)
        return st;
    io_requeue(io, act);
    return 0;
}

static int v4_async(struct nfs_client *c, struct v4_io *io)
{
    req_init(c, &io->rq, &io->a, 16 * 1024);
    int st = io_send(c, io);
    if (st) {
        req_finish(c, &io->rq);
        io_free(io);
    }
    return st;
}

/* A request for op on fh; the handle is copied (the args point at the copy). */
static struct v4_io *io_new(struct nfs_client *c, const struct nfs_fh *fh, nfs_opnum4 op,
                            nfs_io_done_fn done, void *arg, void *buf, uint32_t count)
{
    struct v4_io *io = calloc(1, sizeof(*io));
    if (!io)
        return NULL;
    io->c = c;
    io->op = op;
    io->done = done;
    io->arg = arg;
    io->buf = buf;
    io->count = count;
    io->fh = *fh;
    nfs4c_add_putfh(&io->a, &io->fh);
    return io;
}

void nfs4c_retries_run_locked(struct nfs_client *c, int64_t *next_ms)
{
    struct nfs4_state *v4 = c->v4;
    *next_ms = INT64_MAX;
    int64_t now = nfs4c_now_ms();
    struct v4_io *due = NULL;
    for (struct v4_io **p = &v4->retries; *p;) {
        struct v4_io *io = *p;
        if (io->due_ms <= now) {
            *p = io->next;
            io->next = due;
            due = io;
        } else {
            if (io->due_ms < *next_ms)
                *next_ms = io->due_ms;
            p = &io->next;
        }
    }
    pthread_mutex_unlock(&v4->mu);
    while (due) {
        struct v4_io *io = due;
        due = io->next;
        int st = io_send(c, io);
        if (st)
            io_complete(io, st, NULL, NULL);
    }
    pthread_mutex_lock(&v4->mu);
}

void nfs4c_retries_fail_locked(struct nfs_client *c, int st, bool only_recovery)
{
    struct nfs4_state *v4 = c->v4;
    struct v4_io *fail = NULL;
    int64_t now = nfs4c_now_ms();
    for (struct v4_io **p = &v4->retries; *p;) {
        struct v4_io *io = *p;
        /* those due now were waiting for the recovery; later ones for DELAY / GRACE */
        if (!only_recovery || io->due_ms <= now) {
            *p = io->next;
            io->next = fail;
            fail = io;
        } else {
            p = &io->next;
        }
    }
    pthread_mutex_unlock(&v4->mu);
    while (fail) {
        struct v4_io *io = fail;
        fail = io->next;
        io_complete(io, st, NULL, NULL);
    }
    pthread_mutex_lock(&v4->mu);
}

static int v4_read_async(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off, void *buf,
                         uint32_t count, nfs_io_done_fn done, void *arg)
{
    stateid4 sid;
    int st = io_stateid(c->v4, fh, &sid);
    struct v4_io *io = st ? NULL : io_new(c, fh, OP_READ, done, arg, buf, count);
    if (!io)
        return st ? st : -ENOMEM;
    READ4args *rd = &nfs4c_add_op(&io->a, OP_READ)->opread;
    rd->stateid = sid;
    rd->offset = off;
    rd->count = count;
    return v4_async(c, io);
}

static int v4_read_async_ref(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off,
                             uint32_t count, struct nfs_read_ref *ref, nfs_io_done_fn done,
                             void *arg)
{
    stateid4 sid;
    int st = io_stateid(c->v4, fh, &sid);
    struct v4_io *io = st ? NULL : io_new(c, fh, OP_READ, done, arg, NULL, count);
    if (!io)
        return st ? st : -ENOMEM;
    io->ref = ref;
    READ4args *rd = &nfs4c_add_op(&io->a, OP_READ)->opread;
    rd->stateid = sid;
    rd->offset = off;
    rd->count = count;
    return v4_async(c, io);
}

static int v4_write(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off,
                    const void *buf, uint32_t count, enum nfs_stable stable, bool borrow,
                    nfs_io_done_fn done, void *arg)
{
    stateid4 sid;
    int st = io_stateid(c->v4, fh, &sid);
    struct v4_io *io = st ? NULL : io_new(c, fh, OP_WRITE, done, arg, NULL, count);
    if (io && borrow) {
        io->data = (void *)buf; /* only read from */
        io->borrowed = true;
    } else if (io && (io->data = malloc(count ? count : 1)) != NULL) {
        memcpy(io->data, buf, count);
    } else if (io) {
        io_free(io);
        io = NULL;
    }
    if (!io)
        return st ? st : -ENOMEM;
    WRITE4args *wr = &nfs4c_add_op(&io->a, OP_WRITE)->opwrite;
    wr->stateid = sid;
    wr->offset = off;
    wr->stable = (stable_how4)stable;
    wr->data = opq(NULL, 0); /* io_send sends io->data after the encoded COMPOUND */
    return v4_async(c, io);
}

static int v4_write_async(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off,
                          const void *buf, uint32_t count, enum nfs_stable stable,
                          nfs_io_done_fn done, void *arg)
{
    return v4_write(c, fh, off, buf, count, stable, false, done, arg);
}

static int v4_write_async_keep(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off,
                               const void *buf, uint32_t count, enum nfs_stable stable,
                               nfs_io_done_fn done, void *arg)
{
    return v4_write(c, fh, off, buf, count, stable, true, done, arg);
}

static int v4_commit_async(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off,
                           uint32_t count, nfs_io_done_fn done, void *arg)
{
    struct v4_io *io = io_new(c, fh, OP_COMMIT, done, arg, NULL, count);
    if (!io)
        return -ENOMEM;
    COMMIT4args *cm = &nfs4c_add_op(&io->a, OP_COMMIT)->opcommit;
    cm->offset = off;
    cm->count = count;
    return v4_async(c, io);
}

static int v4_getattr_async(struct nfs_client *c, const struct nfs_fh *fh, nfs_attr_done_fn done,
                            void *arg)
{
    struct v4_io *io = io_new(c, fh, OP_GETATTR, NULL, arg, NULL, 0);
    if (!io)
        return -ENOMEM;
    io->attr_done = done;
    add_getattr(&io->a, NFS4_ATTRS_STAT);
    return v4_async(c, io);
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
const struct rpc_program_desc nfs4c_cb_program = { NFS4_CALLBACK, "nfs4_cb", 1, cb_versions };

int nfs_client_on_callback(struct nfs_client *c, uint32_t op, nfs_callback_fn fn, void *ctx)
{
    if (!c->v4 || !sessions(c->v4)) /* v3, and 4.0: no callback service */
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
    /* one verifier for the instance's lifetime: a restarted server sees the same client
     * (not a rebooted one) come back and lets it reclaim (RFC 8881 2.4) */
    if (getrandom(v4->verifier, sizeof(verifier4), 0) != sizeof(verifier4))
        memcpy(v4->verifier, rnd, sizeof(verifier4) < 8 ? sizeof(verifier4) : 8);
}

static int walk_dirs(struct nfs_client *c, const char *path, const char *tail)
{
    struct v4_args a = { 0 };
    nfs4c_add_op(&a, OP_PUTROOTFH);
    nfs4c_add_op(&a, OP_GETFH);
    struct v4_reply r;
    int st = nfs4c_call(c, &a, &r);
    if (!st && (!v4_skip(&r, OP_PUTROOTFH) || (st = take_fh(&r, &c->root)) != 0))
        st = st ? st : -EBADMSG;
    nfs4c_reply_free(&r);
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
        nfs4c_add_putfh(&a, &c->root);
        for (unsigned i = 0; i < n; i++) {
            nfs4c_add_op(&a, OP_LOOKUP)->oplookup.objname = name4(names[i]);
            nfs4c_add_op(&a, OP_GETFH);
        }
        st = nfs4c_call(c, &a, &r);
        if (st < 0 || !v4_skip(&r, OP_PUTFH)) {
            nfs4c_reply_free(&r);
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
        nfs4c_reply_free(&r);
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
    nfs4c_add_putfh(&a, &c->root);
    add_getattr(&a, NFS4_ATTRS_FSINFO);
    struct v4_reply r;
    struct nfs4_fattr fa;
    int st = nfs4c_call(c, &a, &r);
    if (!st)
        st = v4_skip(&r, OP_PUTFH) ? take_attr(&r, NFS4_ATTRS_FSINFO, &fa) : -EBADMSG;
    nfs4c_reply_free(&r);
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

static int v4_state_new(struct nfs_client *c, const struct nfs_url *u)
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
    pthread_cond_init(&v4->recov_cv, &ca);
    pthread_cond_init(&v4->owners_cv, &ca);
    pthread_condattr_destroy(&ca);
    nfs4_cb_init(&v4->cb);
    nfs4_cb_register(&v4->cb, OP_CB_RECALL, cb_recall, v4);
    make_owner_ids(c, v4);
    return 0;
}

/* The first connection, with our back channel program (registered before
 * CREATE_SESSION: the server may probe the back channel right away). */
static int v4_connect(struct nfs_client *c, uint16_t port, char *err, size_t errlen)
{
    int st;
    nfs_client_set_port(&c->addr, port);
    struct rpc_clnt *rpc = nfs_client_rpc_connect((struct sockaddr *)&c->addr, c->addrlen,
                                                  c->timeout_ms, &st);
    if (!rpc) {
        snprintf(err, errlen, "NFS port %u: %s", port, nfs_client_strerror(st));
        return st;
    }
    if ((st = rpc_clnt_set_callback_program(rpc, &nfs4c_cb_program, c->v4)) ||
        !(c->v4->conn = nfs4c_conn_new(rpc))) {
        rpc_clnt_destroy(rpc);
        st = st ? st : -ENOMEM;
        snprintf(err, errlen, "back channel: %s", nfs_client_strerror(st));
    }
    return st;
}

/* 4.0: the client id; READ / WRITE sizes come from the server's maxread / maxwrite. */
static int v40_establish(struct nfs_client *c, char *err, size_t errlen)
{
    int st = nfs4c_setclientid(c);
    if (st)
        snprintf(err, errlen, "SETCLIENTID: %s", nfs_client_strerror(st));
    c->rsize = c->wsize = NFS_CLIENT_IO_MAX;
    return st;
}

/* 4.1+: client id, session, and no reclaims to make. */
static int v41_establish(struct nfs_client *c, char *err, size_t errlen)
{
    int st;
    uint32_t flags;
    if ((st = nfs4c_exchange_id(c, &flags))) {
        snprintf(err, errlen, "EXCHANGE_ID: %s", nfs_client_strerror(st));
        return st;
    }
    if ((st = nfs4c_create_session(c))) {
        snprintf(err, errlen, "CREATE_SESSION: %s", nfs_client_strerror(st));
        return st;
    }
    struct v4_args a = { 0 };
    nfs4c_add_op(&a, OP_RECLAIM_COMPLETE)->opreclaim_complete.rca_one_fs = false;
    st = nfs4c_call_status(c, &a);
    if (st < 0 || (st && st != NFS4ERR_COMPLETE_ALREADY)) {
        snprintf(err, errlen, "RECLAIM_COMPLETE: %s", nfs_client_strerror(st));
        return st;
    }
    return 0;
}

static int v4_mount(struct nfs_client *c, const struct nfs_url *u, char *err, size_t errlen)
{
    int st = v4_state_new(c, u);
    if (!st)
        st = v4_connect(c, u->port ? u->port : 2049, err, errlen);
    if (!st)
        st = sessions(c->v4) ? v41_establish(c, err, errlen) : v40_establish(c, err, errlen);
    if (st)
        return st;
    if ((st = walk_url_path(c, u->path))) {
        snprintf(err, errlen, "LOOKUP %s: %s", u->path, nfs_client_strerror(st));
        return st;
    }
    if ((st = fetch_fsinfo(c))) {
        snprintf(err, errlen, "GETATTR (lease, maxread, maxwrite): %s", nfs_client_strerror(st));
        return st;
    }
    now_mono(&c->v4->last_send);
    pthread_mutex_lock(&c->v4->mu); /* requests read it to know a recovery can happen */
    st = pthread_create(&c->v4->thread, NULL, nfs4c_state_manager, c) ? -EAGAIN : 0;
    c->v4->thread_started = st == 0;
    pthread_mutex_unlock(&c->v4->mu);
    return st;
}

static int send_close(struct nfs_client *c, const struct nfs_fh *fh, bool had_lock,
                      stateid4 lock_sid, stateid4 open_sid);

/* Give back what we hold so the server need not wait for our lease to expire (4.0
 * CLOSEs only once the locks are gone; 4.1 servers drop them with the open). */
static void give_back_state(struct nfs_client *c)
{
    struct nfs4_state *v4 = c->v4;
    for (struct v4_file *f = v4->files; f; f = f->next) {
        struct v4_args a = { 0 };
        if (f->have_open)
            send_close(c, &f->fh, f->have_lock && !sessions(v4), f->lock_sid, f->open_sid);
        if (f->deleg_type != OPEN_DELEGATE_NONE) {
            a.n = 0;
            nfs4c_add_putfh(&a, &f->fh);
            nfs4c_add_op(&a, OP_DELEGRETURN)->opdelegreturn.deleg_stateid = f->deleg_sid;
            if (nfs4c_call_status(c, &a) == 0)
                v4->stats.delegreturns++;
        }
    }
    for (struct v4_recall *rc = v4->recalls; rc; rc = rc->next)
        nfs4c_do_recall(c, rc);
}

static void destroy_session_and_client(struct nfs_client *c)
{
    struct nfs4_state *v4 = c->v4;
    nfs_argop4 op;
    struct v4_reply r;
    if (v4->sess) {
        memset(&op, 0, sizeof(op));
        op.argop = OP_DESTROY_SESSION;
        memcpy(op.opdestroy_session.dsa_sessionid, v4->sess->id, sizeof(sessionid4));
        nfs4c_call_nosession(c, &op, 1, &r);
        nfs4c_reply_free(&r);
    }
    if (v4->have_clientid && sessions(v4)) { /* 4.0 has no such op: the lease runs out */
        memset(&op, 0, sizeof(op));
        op.argop = OP_DESTROY_CLIENTID;
        op.opdestroy_clientid.dca_clientid = v4->clientid;
        nfs4c_call_nosession(c, &op, 1, &r);
        nfs4c_reply_free(&r);
    }
}

static void free_lists(struct nfs4_state *v4)
{
    while (v4->files) {
        struct v4_file *f = v4->files;
        v4->files = f->next;
        nfs4_lockset_clear(&f->locks);
        free(f);
    }
    while (v4->recalls) {
        struct v4_recall *rc = v4->recalls;
        v4->recalls = rc->next;
        free(rc);
    }
}

/* The last connection: destroying it fails what is still in flight with -ECANCELED;
 * those completions let go of it (which may put it on the dead list: take it off). */
static void conn_destroy_last(struct nfs4_state *v4, struct v4_conn *k)
{
    rpc_clnt_destroy(k->rpc); /* waits for running callback handlers */
    pthread_mutex_lock(&v4->mu);
    for (struct v4_conn **p = &v4->dead_conns; *p; p = &(*p)->next) {
        if (*p == k) {
            *p = k->next;
            break;
        }
    }
    pthread_mutex_unlock(&v4->mu);
    free(k);
}

static void v4_unmount(struct nfs_client *c)
{
    struct nfs4_state *v4 = c->v4;
    pthread_mutex_lock(&v4->mu);
    v4->stopping = true; /* from here on, requests never wait for a recovery */
    pthread_cond_broadcast(&v4->cv);
    pthread_cond_broadcast(&v4->recov_cv);
    pthread_mutex_unlock(&v4->mu);
    if (v4->thread_started)
        pthread_join(v4->thread, NULL);
    pthread_mutex_lock(&v4->mu);
    nfs4c_retries_fail_locked(c, -ECANCELED, false);
    pthread_mutex_unlock(&v4->mu);
    if (v4->conn) {
        if (v4->sess || (!sessions(v4) && v4->have_clientid))
            give_back_state(c);
        destroy_session_and_client(c);
    }
    pthread_mutex_lock(&v4->mu);
    struct v4_session *s = v4->sess;
    struct v4_conn *k = v4->conn;
    v4->sess = NULL;
    v4->conn = NULL;
    pthread_mutex_unlock(&v4->mu);
    if (s)
        nfs4_slots_close(&s->slots);
    if (k)
        conn_destroy_last(v4, k);
    nfs4c_destroy_dead_conns(v4); /* waits for running callback handlers */
    if (s)
        nfs4c_sess_put(v4, s);
    free_lists(v4);
    nfs4_cb_destroy(&v4->cb);
    pthread_mutex_destroy(&v4->mu);
    pthread_cond_destroy(&v4->cv);
    pthread_cond_destroy(&v4->recov_cv);
    pthread_cond_destroy(&v4->owners_cv);
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
    nfs4c_add_putfh(&a, dir);
    nfs4c_add_op(&a, OP_LOOKUP)->oplookup.objname = name4(name);
    nfs4c_add_op(&a, OP_GETFH);
    add_getattr(&a, NFS4_ATTRS_STAT);
    struct v4_reply r;
    struct nfs4_fattr fa;
    int st = nfs4c_call(c, &a, &r);
    if (!st) {
        st = v4_skip(&r, OP_PUTFH) && v4_skip(&r, OP_LOOKUP) ? take_fh(&r, fh) : -EBADMSG;
        if (!st)
            st = take_attr(&r, NFS4_ATTRS_STAT, &fa);
        if (!st)
            attr_out(attr, &fa);
    }
    nfs4c_reply_free(&r);
    return st;
}

static int v4_getattr(struct nfs_client *c, const struct nfs_fh *fh, struct nfs_attr *attr)
{
    struct v4_args a = { 0 };
    nfs4c_add_putfh(&a, fh);
    add_getattr(&a, NFS4_ATTRS_STAT);
    struct v4_reply r;
    struct nfs4_fattr fa;
    int st = nfs4c_call(c, &a, &r);
    if (!st)
        st = v4_skip(&r, OP_PUTFH) ? take_attr(&r, NFS4_ATTRS_STAT, &fa) : -EBADMSG;
    if (!st)
        attr_out(attr, &fa);
    nfs4c_reply_free(&r);
    return st;
}

static int v4_setattr(struct nfs_client *c, const struct nfs_fh *fh, const struct nfs_setattr *sa,
                      struct nfs_attr *attr)
{
    uint8_t buf[256];
    uint32_t mask[2];
    struct v4_args a = { 0 };
    nfs4c_add_putfh(&a, fh);
    SETATTR4args *s = &nfs4c_add_op(&a, OP_SETATTR)->opsetattr;
    s->stateid = anon_stateid;
    int st = sa->set_size ? io_stateid(c->v4, fh, &s->stateid) : 0;
    if (st)
        return st;
    if (!nfs4_encode_sattr(sa, buf, sizeof(buf), mask, &s->obj_attributes))
        return -EINVAL;
    if (attr)
        add_getattr(&a, NFS4_ATTRS_STAT);
    struct v4_reply r;
    struct nfs4_fattr fa;
    st = nfs4c_call(c, &a, &r);
    if (!st && attr) {
        st = v4_skip(&r, OP_PUTFH) && v4_skip(&r, OP_SETATTR) ? take_attr(&r, NFS4_ATTRS_STAT, &fa)
                                                               : -EBADMSG;
        if (!st)
            attr_out(attr, &fa);
    }
    nfs4c_reply_free(&r);
    return st;
}

/* ---- the owners' seqids (4.0) ---- */

static bool owners_serialized(const struct nfs4_state *v4)
{
    return !sessions(v4) && !on_state_manager(v4);
}

int nfs4c_owners_begin(struct nfs_client *c)
{
    struct nfs4_state *v4 = c->v4;
    if (!owners_serialized(v4))
        return 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += V4_RECOVERY_MS / 1000;
    int st = 0;
    pthread_mutex_lock(&v4->mu);
    while (v4->owners_busy && !v4->stopping && !st)
        if (pthread_cond_timedwait(&v4->owners_cv, &v4->mu, &ts) == ETIMEDOUT)
            st = -ETIMEDOUT;
    if (!st && v4->stopping)
        st = -ECANCELED;
    if (!st)
        v4->owners_busy = true;
    pthread_mutex_unlock(&v4->mu);
    return st;
}

void nfs4c_owners_end(struct nfs_client *c)
{
    struct nfs4_state *v4 = c->v4;
    if (!owners_serialized(v4))
        return;
    pthread_mutex_lock(&v4->mu);
    v4->owners_busy = false;
    pthread_cond_signal(&v4->owners_cv);
    pthread_mutex_unlock(&v4->mu);
}

int nfs4c_open_confirm(struct nfs_client *c, const struct nfs_fh *fh, uint32_t rflags,
                       stateid4 *sid)
{
    if (sessions(c->v4) || !(rflags & OPEN4_RESULT_CONFIRM))
        return 0;
    struct v4_args a = { 0 };
    nfs4c_add_putfh(&a, fh);
    nfs4c_add_op(&a, OP_OPEN_CONFIRM)->opopen_confirm.open_stateid = *sid;
    struct v4_reply r;
    int st = nfs4c_call(c, &a, &r);
    const nfs_resop4 *o = st ? NULL : v4_skip(&r, OP_PUTFH) ? nfs4c_next(&r, OP_OPEN_CONFIRM) : NULL;
    if (!st && !o)
        st = -EBADMSG;
    if (!st)
        *sid = o->opopen_confirm.resok4.open_stateid;
    nfs4c_reply_free(&r);
    return st;
}

/* ---- OPEN / CLOSE ---- */

static uint32_t open_access(int flags)
{
    return (flags & NFS_O_RDONLY)   ? OPEN4_SHARE_ACCESS_READ
           : (flags & NFS_O_WRONLY) ? OPEN4_SHARE_ACCESS_WRITE
                                    : OPEN4_SHARE_ACCESS_BOTH;
}

/* OPEN4args for name (CLAIM_NULL); the seqid goes in when it is sent (4.0; 4.1 has
 * none). createattrs point into buf. */
static void open_args(struct nfs4_state *v4, OPEN4args *o, const char *name, int flags,
                      uint32_t mode, uint32_t want, uint8_t *buf, size_t buflen, uint32_t mask[2])
{
    o->seqid = 0;
    /* the want bits are 4.1's: a 4.0 server takes them for a bad share_access */
    o->share_access = open_access(flags) | (sessions(v4) ? want : 0);
    o->share_deny = OPEN4_SHARE_DENY_NONE;
    o->owner.clientid = v4->clientid;
    o->owner.owner = name4(v4->open_owner);
    if (flags & NFS_O_CREAT) {
        o->openhow.opentype = OPEN4_CREATE;
        o->openhow.how.mode = (flags & NFS_O_EXCL) ? GUARDED4 : UNCHECKED4;
        /* UNCHECKED4 with size 0 truncates an existing file (RFC 8881 18.16.3) */
        struct nfs_setattr sa = { .set_mode = true, .mode = mode,
                                  .set_size = (flags & NFS_O_TRUNC) != 0, .size = 0 };
        nfs4_encode_sattr(&sa, buf, buflen, mask, &o->openhow.how.createattrs);
    } else {
        o->openhow.opentype = OPEN4_NOCREATE;
    }
    o->claim.claim = CLAIM_NULL;
    o->claim.file = name4(name);
}

/* Record a granted open (and any delegation) for the handle. */
static int open_record(struct nfs4_state *v4, const struct nfs_fh *fh, uint32_t access,
                       const stateid4 *sid, const open_delegation4 *deleg)
{
    pthread_mutex_lock(&v4->mu);
    struct v4_file *f = file_get(v4, fh);
    if (f) {
        f->refs++;
        f->have_open = true;
        f->lost = false;
        f->share_access |= access;
        f->open_sid = *sid;
        uint32_t dt = deleg->delegation_type;
        if (dt == OPEN_DELEGATE_READ || dt == OPEN_DELEGATE_WRITE) {
            f->deleg_type = dt;
            f->deleg_sid = dt == OPEN_DELEGATE_READ ? deleg->read.stateid : deleg->write.stateid;
            v4->stats.delegations++;
        }
    }
    pthread_mutex_unlock(&v4->mu);
    return f ? 0 : -ENOMEM;
}

/* OPEN name in dir (CLAIM_NULL), confirmed when the server asks (4.0); records the
 * open (and any delegation) for the handle. The caller owns the owners' seqids. */
static int open_in_dir_owned(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                             int flags, uint32_t mode, uint32_t want, struct nfs_fh *fh,
                             struct nfs_attr *attr)
{
    uint8_t buf[128];
    uint32_t mask[2];
    struct v4_args a = { 0 };
    nfs4c_add_putfh(&a, dir);
    open_args(c->v4, &nfs4c_add_op(&a, OP_OPEN)->opopen, name, flags, mode, want, buf,
              sizeof(buf), mask);
    nfs4c_add_op(&a, OP_GETFH);
    add_getattr(&a, NFS4_ATTRS_STAT);
    struct v4_reply r;
    int st = nfs4c_call(c, &a, &r);
    const nfs_resop4 *ro = NULL;
    struct nfs_fh got;
    struct nfs4_fattr fa;
    if (!st) {
        ro = v4_skip(&r, OP_PUTFH) ? nfs4c_next(&r, OP_OPEN) : NULL;
        st = ro ? take_fh(&r, &got) : -EBADMSG;
        if (!st)
            st = take_attr(&r, NFS4_ATTRS_STAT, &fa);
    }
    stateid4 sid;
    if (!st) {
        sid = ro->opopen.resok4.stateid;
        st = nfs4c_open_confirm(c, &got, ro->opopen.resok4.rflags, &sid);
    }
    if (!st)
        st = open_record(c->v4, &got, open_access(flags), &sid, &ro->opopen.resok4.delegation);
    nfs4c_reply_free(&r);
    if (st)
        return st;
    *fh = got;
    attr_out(attr, &fa);
    return 0;
}

static int open_in_dir(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                       int flags, uint32_t mode, uint32_t want, struct nfs_fh *fh,
                       struct nfs_attr *attr)
{
    int st = nfs4c_owners_begin(c);
    if (st)
        return st;
    st = open_in_dir_owned(c, dir, name, flags, mode, want, fh, attr);
    nfs4c_owners_end(c);
    return st;
}

static int close_fh(struct nfs_client *c, const struct nfs_fh *fh);

static int v4_open_at(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                      int flags, uint32_t mode, struct nfs_file *f)
{
    memset(f, 0, sizeof(*f));
    int st = open_in_dir(c, dir, name, flags, mode, 0, &f->fh, &f->attr);
    if (st == NFS4ERR_ISDIR || st == NFS4ERR_SYMLINK || st == NFS4ERR_WRONG_TYPE)
        return nfs_open_at_by_lookup(c, dir, name, flags & ~(NFS_O_CREAT | NFS_O_TRUNC), mode, f);
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
    return st ? st : v4_open_at(c, &dir, name, flags, mode, f);
}

static void file_forget_locks(struct v4_file *f)
{
    f->have_lock = false;
    nfs4_lockset_clear(&f->locks);
}

/* 4.0: RELEASE_LOCKOWNER (RFC 7530 16.37), in a COMPOUND of its own, as the Linux
 * client sends it (NFS-Ganesha 4.3 loses a reference to the export when it follows
 * other ops: a use-after-free there). 0: the server dropped the owner's lock state on
 * every file; LOCKS_HELD while it holds locks somewhere. */
static int release_lockowner(struct nfs_client *c)
{
    struct v4_args a = { 0 };
    lock_owner4 *lo = &nfs4c_add_op(&a, OP_RELEASE_LOCKOWNER)->oprelease_lockowner.lock_owner;
    lo->clientid = c->v4->clientid;
    lo->owner = name4(c->v4->lock_owner);
    return nfs4c_call_status(c, &a);
}

/* Unlock everything fh's lock owner holds and let go of its lock state there (CLOSE
 * with locks held is NFS4ERR_LOCKS_HELD): 4.1 frees the lock stateid; 4.0 has no
 * FREE_STATEID but RELEASE_LOCKOWNER, which ends the owner's lock stateids on every
 * file once it holds no lock anywhere. 4.0: the caller owns the seqids. */
static void unlock_all(struct nfs_client *c, const struct nfs_fh *fh, stateid4 lock_sid)
{
    struct nfs4_state *v4 = c->v4;
    struct v4_args a = { 0 };
    nfs4c_add_putfh(&a, fh);
    LOCKU4args *u = &nfs4c_add_op(&a, OP_LOCKU)->oplocku;
    u->locktype = WRITE_LT;
    u->lock_stateid = lock_sid;
    u->offset = 0;
    u->length = NFS4_UINT64_MAX;
    if (sessions(v4))
        nfs4c_add_op(&a, OP_FREE_STATEID)->opfree_stateid.fsa_stateid = lock_sid;
    int st = nfs4c_call_status(c, &a);
    bool released = !sessions(v4) && st == 0 && release_lockowner(c) == 0;
    pthread_mutex_lock(&v4->mu);
    for (struct v4_file *f = v4->files; f; f = f->next)
        if (released || (f->fh.len == fh->len && !memcmp(f->fh.data, fh->data, fh->len)))
            file_forget_locks(f);
    pthread_mutex_unlock(&v4->mu);
}

/* LOCKU (when a lock was taken) + CLOSE of fh's open. */
static int send_close(struct nfs_client *c, const struct nfs_fh *fh, bool had_lock,
                      stateid4 lock_sid, stateid4 open_sid)
{
    if (had_lock)
        unlock_all(c, fh, lock_sid);
    struct v4_args a = { 0 };
    nfs4c_add_putfh(&a, fh);
    CLOSE4args *cl = &nfs4c_add_op(&a, OP_CLOSE)->opclose;
    cl->seqid = 0;
    cl->open_stateid = open_sid;
    return nfs4c_call_status(c, &a);
}

/* Drop one reference to the open of fh; the last one sends CLOSE (after LOCKU). A file
 * whose state was lost in a server restart has nothing to close: -EIO tells the caller
 * that its locks (and maybe writes) did not survive. */
static int close_fh(struct nfs_client *c, const struct nfs_fh *fh)
{
    struct nfs4_state *v4 = c->v4;
    pthread_mutex_lock(&v4->mu);
    struct v4_file *f = nfs4c_file_find(v4, fh);
    if (!f || !f->refs || --f->refs) {
        pthread_mutex_unlock(&v4->mu);
        return 0;
    }
    bool lost = f->lost, had_lock = f->have_lock;
    stateid4 lock_sid = f->lock_sid, open_sid = f->open_sid;
    if (lost) {
        f->lost = false;
        nfs4c_file_drop_if_idle(v4, f);
    }
    pthread_mutex_unlock(&v4->mu);
    if (lost)
        return -EIO;
    int st = nfs4c_owners_begin(c);
    if (st)
        return st;
    st = send_close(c, fh, had_lock, lock_sid, open_sid);
    nfs4c_owners_end(c);
    pthread_mutex_lock(&v4->mu);
    if ((f = nfs4c_file_find(v4, fh)) && !f->refs) {
        f->have_open = false;
        f->share_access = 0;
        nfs4c_file_drop_if_idle(v4, f);
    }
    pthread_mutex_unlock(&v4->mu);
    return st == -EIO ? 0 : st; /* lost by a recovery meanwhile: closed all the same */
}

static int v4_close(struct nfs_client *c, struct nfs_file *f)
{
    if (!f->v4_open)
        return 0;
    f->v4_open = false;
    return close_fh(c, &f->fh);
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
    nfs4c_add_putfh(&a, dir);
    CREATE4args *cr = &nfs4c_add_op(&a, OP_CREATE)->opcreate;
    cr->objtype.type = type;
    if (type == NF4LNK)
        cr->objtype.linkdata = name4(target);
    cr->objname = name4(name);
    struct nfs_setattr sa = { .set_mode = true, .mode = mode };
    nfs4_encode_sattr(&sa, buf, sizeof(buf), mask, &cr->createattrs);
    nfs4c_add_op(&a, OP_GETFH);
    add_getattr(&a, NFS4_ATTRS_STAT);
    struct v4_reply r;
    struct nfs4_fattr fa;
    int st = nfs4c_call(c, &a, &r);
    if (!st) {
        st = v4_skip(&r, OP_PUTFH) && v4_skip(&r, OP_CREATE) ? take_fh(&r, fh) : -EBADMSG;
        if (!st)
            st = take_attr(&r, NFS4_ATTRS_STAT, &fa);
        if (!st)
            attr_out(attr, &fa);
    }
    nfs4c_reply_free(&r);
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
    nfs4c_add_putfh(&a, dir);
    nfs4c_add_op(&a, OP_REMOVE)->opremove.target = name4(name);
    return nfs4c_call_status(c, &a);
}

static int v4_rename(struct nfs_client *c, const struct nfs_fh *from_dir, const char *from,
                     const struct nfs_fh *to_dir, const char *to)
{
    struct v4_args a = { 0 };
    nfs4c_add_putfh(&a, from_dir);
    nfs4c_add_op(&a, OP_SAVEFH);
    nfs4c_add_putfh(&a, to_dir);
    RENAME4args *rn = &nfs4c_add_op(&a, OP_RENAME)->oprename;
    rn->oldname = name4(from);
    rn->newname = name4(to);
    return nfs4c_call_status(c, &a);
}

static int v4_link(struct nfs_client *c, const struct nfs_fh *file, const struct nfs_fh *dir,
                   const char *name)
{
    struct v4_args a = { 0 };
    nfs4c_add_putfh(&a, file);
    nfs4c_add_op(&a, OP_SAVEFH);
    nfs4c_add_putfh(&a, dir);
    nfs4c_add_op(&a, OP_LINK)->oplink.newname = name4(name);
    return nfs4c_call_status(c, &a);
}

static int v4_readlink(struct nfs_client *c, const struct nfs_fh *fh, char *buf, size_t len)
{
    struct v4_args a = { 0 };
    nfs4c_add_putfh(&a, fh);
    nfs4c_add_op(&a, OP_READLINK);
    struct v4_reply r;
    int st = nfs4c_call(c, &a, &r);
    if (!st) {
        const nfs_resop4 *o = v4_skip(&r, OP_PUTFH) ? nfs4c_next(&r, OP_READLINK) : NULL;
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
    nfs4c_reply_free(&r);
    return st;
}

static int v4_fsstat(struct nfs_client *c, const struct nfs_fh *fh, struct nfs_fsstat *fs)
{
    struct v4_args a = { 0 };
    nfs4c_add_putfh(&a, fh);
    add_getattr(&a, NFS4_ATTRS_FSSTAT);
    struct v4_reply r;
    struct nfs4_fattr fa;
    int st = nfs4c_call(c, &a, &r);
    if (!st)
        st = v4_skip(&r, OP_PUTFH) ? take_attr(&r, NFS4_ATTRS_FSSTAT, &fa) : -EBADMSG;
    if (!st)
        *fs = fa.fsstat;
    nfs4c_reply_free(&r);
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
        nfs4c_add_putfh(&a, dir);
        bitmap4 b = bitmap(&a, want);
        READDIR4args *rd = &nfs4c_add_op(&a, OP_READDIR)->opreaddir;
        rd->cookie = cur.cookie;
        memcpy(rd->cookieverf, cur.verf, 8);
        rd->dircount = c->dtpref;
        rd->maxcount = V4_READDIR_MAXCOUNT;
        rd->attr_request = b;
        struct v4_reply r;
        /* every entry takes >= 20 bytes on the wire and < 100 of arena */
        int st = v4_call_sized(c, &a, &r, 8 * V4_READDIR_MAXCOUNT);
        if (!st) {
            const nfs_resop4 *o = v4_skip(&r, OP_PUTFH) ? nfs4c_next(&r, OP_READDIR) : NULL;
            st = o ? nfs4_reply_readdir(&o->opreaddir.resok4, want, &cur, fn, arg) : -EBADMSG;
        }
        nfs4c_reply_free(&r);
        if (st)
            return st;
    }
    return 0;
}

/* ---- byte-range locks ---- */

static uint64_t wire_len(uint64_t len) { return len ? len : NFS4_UINT64_MAX; }

/* Where a lock request stands for the open of file (mu held): -EBADF without an open
 * (NFSv4 locks hang off one: nfs_open the file first), -EIO when it was lost. */
static int lock_state_locked(struct nfs4_state *v4, const struct nfs_file *file, bool *have_lock,
                             stateid4 *open_sid, stateid4 *lock_sid)
{
    struct v4_file *f = file->v4_open ? nfs4c_file_find(v4, &file->fh) : NULL;
    if (f && f->lost)
        return -EIO;
    if (!f || !f->have_open)
        return -EBADF;
    *have_lock = f->have_lock;
    *open_sid = f->open_sid;
    *lock_sid = f->lock_sid;
    return 0;
}

/* LOCK args: open_to_lock_owner4 the first time, then exist_lock_owner4. */
void nfs4c_lock_args(struct nfs4_state *v4, LOCK4args *l, bool write, uint64_t off, uint64_t len,
                     bool reclaim, bool have_lock, const stateid4 *open_sid,
                     const stateid4 *lock_sid)
{
    l->locktype = write ? WRITE_LT : READ_LT;
    l->reclaim = reclaim;
    l->offset = off;
    l->length = len;
    l->locker.new_lock_owner = !have_lock;
    if (!have_lock) {
        open_to_lock_owner4 *o = &l->locker.open_owner;
        o->open_seqid = 0;
        o->open_stateid = *open_sid;
        o->lock_seqid = 0;
        o->lock_owner.clientid = v4->clientid;
        o->lock_owner.owner = name4(v4->lock_owner);
    } else {
        l->locker.lock_owner.lock_stateid = *lock_sid;
        l->locker.lock_owner.lock_seqid = 0;
    }
}

/* A granted LOCK: the lock stateid, and the range for a reclaim after a restart. */
static void lock_granted(struct nfs4_state *v4, const struct nfs_fh *fh, const stateid4 *sid,
                         bool write, uint64_t off, uint64_t len)
{
    pthread_mutex_lock(&v4->mu);
    struct v4_file *f = nfs4c_file_find(v4, fh);
    if (f) {
        f->have_lock = true;
        f->lock_sid = *sid;
        if (nfs4_lockset_add(&f->locks, write, off, len))
            log_warn("nfs4 client: lock [%llu, +%llu) not recorded: it will not be reclaimed "
                     "after a server restart", (unsigned long long)off, (unsigned long long)len);
    }
    pthread_mutex_unlock(&v4->mu);
}

static int v4_lock_owned(struct nfs_client *c, struct nfs_file *file, bool write, uint64_t off,
                         uint64_t len)
{
    struct nfs4_state *v4 = c->v4;
    bool have_lock;
    stateid4 open_sid, lock_sid;
    pthread_mutex_lock(&v4->mu);
    int st = lock_state_locked(v4, file, &have_lock, &open_sid, &lock_sid);
    pthread_mutex_unlock(&v4->mu);
    if (st)
        return st;
    struct v4_args a = { 0 };
    nfs4c_add_putfh(&a, &file->fh);
    nfs4c_lock_args(v4, &nfs4c_add_op(&a, OP_LOCK)->oplock, write, off, wire_len(len), false, have_lock,
                    &open_sid, &lock_sid);
    struct v4_reply r;
    st = nfs4c_call(c, &a, &r);
    if (!st) {
        const nfs_resop4 *o = v4_skip(&r, OP_PUTFH) ? nfs4c_next(&r, OP_LOCK) : NULL;
        if (!o)
            st = -EBADMSG;
        else
            lock_granted(v4, &file->fh, &o->oplock.resok4.lock_stateid, write, off, len);
    } else if (st == NFS4ERR_DENIED) {
        st = -EAGAIN;
    }
    nfs4c_reply_free(&r);
    return st;
}

static int v4_unlock_owned(struct nfs_client *c, struct nfs_file *file, uint64_t off,
                           uint64_t len)
{
    struct nfs4_state *v4 = c->v4;
    pthread_mutex_lock(&v4->mu);
    struct v4_file *f = file->v4_open ? nfs4c_file_find(v4, &file->fh) : NULL;
    bool lost = f && f->lost, have_lock = f && f->have_lock;
    stateid4 lock_sid = have_lock ? f->lock_sid : anon_stateid;
    pthread_mutex_unlock(&v4->mu);
    if (lost)
        return -EIO;
    if (!have_lock)
        return 0; /* nothing was ever locked through this open */
    struct v4_args a = { 0 };
    nfs4c_add_putfh(&a, &file->fh);
    LOCKU4args *u = &nfs4c_add_op(&a, OP_LOCKU)->oplocku;
    u->locktype = WRITE_LT;
    u->seqid = 0;
    u->lock_stateid = lock_sid;
    u->offset = off;
    u->length = wire_len(len);
    struct v4_reply r;
    int st = nfs4c_call(c, &a, &r);
    const nfs_resop4 *o = st ? NULL : v4_skip(&r, OP_PUTFH) ? nfs4c_next(&r, OP_LOCKU) : NULL;
    if (!st && !o)
        st = -EBADMSG;
    if (!st) {
        pthread_mutex_lock(&v4->mu);
        if ((f = nfs4c_file_find(v4, &file->fh)) && f->have_lock) {
            f->lock_sid = o->oplocku.lock_stateid;
            nfs4_lockset_remove(&f->locks, off, len);
        }
        pthread_mutex_unlock(&v4->mu);
    }
    nfs4c_reply_free(&r);
    return st;
}

/* 4.0: a lock owner's LOCK / LOCKU go one at a time, with the seqid of the moment
 * (LOCK's first one also the open owner's); with 4.1 these wrappers cost nothing. */
static int v4_lock(struct nfs_client *c, struct nfs_file *file, bool write, uint64_t off,
                   uint64_t len)
{
    int st = nfs4c_owners_begin(c);
    if (st)
        return st;
    st = v4_lock_owned(c, file, write, off, len);
    nfs4c_owners_end(c);
    return st;
}

static int v4_unlock(struct nfs_client *c, struct nfs_file *file, uint64_t off, uint64_t len)
{
    int st = nfs4c_owners_begin(c);
    if (st)
        return st;
    st = v4_unlock_owned(c, file, off, len);
    nfs4c_owners_end(c);
    return st;
}

static int v4_testlock(struct nfs_client *c, struct nfs_file *file, bool write, uint64_t off,
                       uint64_t len, struct nfs_lock_conflict *conflict)
{
    struct v4_args a = { 0 };
    nfs4c_add_putfh(&a, &file->fh);
    LOCKT4args *t = &nfs4c_add_op(&a, OP_LOCKT)->oplockt;
    t->locktype = write ? WRITE_LT : READ_LT;
    t->offset = off;
    t->length = wire_len(len);
    t->owner.clientid = c->v4->clientid;
    t->owner.owner = name4(c->v4->lock_owner);
    struct v4_reply r;
    int st = nfs4c_call(c, &a, &r);
    if (st == NFS4ERR_DENIED) {
        const nfs_resop4 *o = v4_skip(&r, OP_PUTFH) ? nfs4c_next(&r, OP_LOCKT) : NULL;
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
    nfs4c_reply_free(&r);
    return st;
}

const struct nfs_client_ops nfs4_client_ops = {
    .name = "NFSv4",
    .mount = v4_mount,
    .unmount = v4_unmount,
    .lookup = v4_lookup,
    .getattr = v4_getattr,
    .setattr = v4_setattr,
    .open = v4_open,
    .open_at = v4_open_at,
    .close = v4_close,
    .read_async = v4_read_async,
    .write_async = v4_write_async,
    .write_async_keep = v4_write_async_keep,
    .read_async_ref = v4_read_async_ref,
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
