/*
 * The callback service: one thread runs every call's state machine (cb.h).
 *
 *   NEW -> (4.1) back conn + slot --> SENT -> REPLIED -> done
 *              \- no slot free: WAIT, retried every few ms until slot_wait_ms
 *       -> (4.0) cached connection up --> SENT ...
 *              \- connecting: CONNECTING on the connection's waiter list
 *   REPLIED with NFS4ERR_DELAY: WAIT for the backoff, then NEW again.
 *
 * Everything about a call is touched by the service thread only, except that an rpc
 * completion (on an event-loop or client reader thread) stores the outcome in it and
 * moves it to the inbox under `mu`; the hand-over through `mu` orders those writes
 * before the service thread reads them.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cb/cb.h"
#include "rpc/clnt.h"
#include "util/log.h"

#define SLOT_POLL_MS 10u
#define OPS_BUF_MAX 8192u

enum cb_phase { PH_NEW, PH_WAIT, PH_CONNECTING, PH_SENT, PH_REPLIED };

struct cb_conn;

struct cb_call {
    struct cb_call *next;
    struct cb_service *svc;
    enum cb_phase phase;
    uint32_t proc, minor, prog, ident;
    bool auth_none;
    struct rpc_cred cred; /* AUTH_SYS: what the call carries */
    struct state_session *session; /* 4.1+: referenced */
    /* 4.0 */
    char key[96]; /* netid + ' ' + universal address: the connection cache key */
    struct sockaddr_storage addr;
    socklen_t addr_len;
    struct cb_conn *conn; /* while SENT on it (counted in conn->users) */
    bool conn_reused;     /* it had carried calls before this one */
    bool reconnected;     /* one fresh connection was tried after a stale one */
    /* the ops after CB_SEQUENCE, encoded once */
    uint8_t *ops;
    size_t ops_len;
    uint32_t nops;
    uint32_t opnums[CB_MAX_OPS + 1]; /* as sent, CB_SEQUENCE first for 4.1 */
    uint32_t nopnums;
    /* 4.1 back slot */
    bool have_slot;
    uint32_t slotid, seqid, highest_slotid;
    uint8_t sessionid[NFS4_SESSIONID_SIZE];
    /* timers */
    unsigned delays;
    uint64_t due_ms, slot_deadline_ms;
    /* set by the rpc completion */
    int rpc_err;
    bool reply_ok;
    struct cb_reply reply;
    cb_done_fn done;
    void *ctx;
};

enum conn_state { CONN_CONNECTING, CONN_UP };

struct cb_conn {
    struct cb_conn *next;
    char key[96];
    enum conn_state state;
    int fd;                   /* CONNECTING */
    struct rpc_clnt *clnt;    /* UP */
    uint64_t deadline_ms;     /* CONNECTING */
    uint64_t last_used_ms;
    struct cb_call *waiters;  /* CONNECTING: calls to send once up */
    unsigned users;           /* calls SENT on it */
    uint64_t sent;            /* calls ever sent on it */
    bool dropped;             /* out of the cache; freed when users reaches 0 */
};

struct cb_service {
    struct cb_config cfg;
    pthread_mutex_t mu;       /* guards inbox, ncalls, stopping, stats */
    struct cb_call *inbox, *inbox_tail;
    unsigned ncalls;          /* accepted, not yet completed */
    bool stopping;
    int wake[2];
    pthread_t thread;
    struct cb_stats stats;
    /* service thread only */
    bool halting;             /* saw `stopping`: calls are cancelled, not started */
    struct cb_call *waiting;
    struct cb_conn *conns;
    unsigned nconns;
    struct pollfd *pfds;
    struct cb_conn **pconns;
    size_t pcap;
    struct rpc_cred cred_sys;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void wake(struct cb_service *svc)
{
    char b = 1;
    ssize_t n = write(svc->wake[1], &b, 1); /* full pipe: a wake-up is pending anyway */
    (void)n;
}

static void inbox_push(struct cb_service *svc, struct cb_call *call)
{
    pthread_mutex_lock(&svc->mu);
    call->next = NULL;
    if (svc->inbox_tail)
        svc->inbox_tail->next = call;
    else
        svc->inbox = call;
    svc->inbox_tail = call;
    pthread_mutex_unlock(&svc->mu);
    wake(svc);
}

#define STAT_ADD(svc, field, n)              \
    do {                                     \
        pthread_mutex_lock(&(svc)->mu);      \
        (svc)->stats.field += (n);           \
        pthread_mutex_unlock(&(svc)->mu);    \
    } while (0)

/* ---------------------------------------------------------------------------------- */
/* Completion                                                                          */
/* ---------------------------------------------------------------------------------- */

static void call_finish(struct cb_service *svc, struct cb_call *call, int err, nfsstat4 status,
                        bool path_failed)
{
    struct cb_result r = {.err = err, .status = status, .path_failed = path_failed};
    if (err == 0 && call->reply_ok && call->reply.has_attrs) {
        r.has_attrs = true;
        r.change = call->reply.change;
        r.size = call->reply.size;
    }
    if (err)
        STAT_ADD(svc, failures, 1);
    call->done(call->ctx, &r);
    state_session_put(call->session);
    free(call->ops);
    free(call);
    pthread_mutex_lock(&svc->mu);
    svc->ncalls--;
    pthread_mutex_unlock(&svc->mu);
}

static void call_wait(struct cb_service *svc, struct cb_call *call, uint64_t due)
{
    call->phase = PH_WAIT;
    call->due_ms = due;
    call->next = svc->waiting;
    svc->waiting = call;
}

/* ---------------------------------------------------------------------------------- */
/* RPC completions (event-loop / reader threads: decode and hand over, nothing else)    */
/* ---------------------------------------------------------------------------------- */

static void store_reply(struct cb_call *call, int err, struct xdr_dec *res)
{
    call->rpc_err = err;
    call->reply_ok = false;
    if (err == 0 && call->proc == CB_PROC_COMPOUND)
        call->reply_ok = cb_reply_decode(res, call->opnums, call->nopnums, &call->reply);
    call->phase = PH_REPLIED;
}

static void back_done(void *ctx, int err, struct xdr_dec *results)
{
    struct cb_call *call = ctx;
    store_reply(call, err, results); /* `results` is only valid during this function */
    inbox_push(call->svc, call);
}

static void clnt_done(void *arg, int status, struct rpc_reply *rep)
{
    struct cb_call *call = arg;
    store_reply(call, status, status == 0 && rep ? &rep->res : NULL);
    if (rep && (status == 0 || status == -EPROTO))
        rpc_reply_free(rep);
    inbox_push(call->svc, call);
}

static const struct rpc_cred *call_cred(const struct cb_call *call)
{
    return call->auth_none ? NULL : &call->cred;
}

/* The call's credential: the target's (the client's csa_sec_parms / BACKCHANNEL_CTL
 * choice), else AUTH_SYS as root of machine CB_MACHINE_NAME. */
static void call_set_cred(struct cb_service *svc, struct cb_call *call, const struct cb_target *t)
{
    call->cred = svc->cred_sys;
    if (!t->sec)
        return;
    call->auth_none = t->sec->flavor == RPC_AUTH_NONE;
    call->cred.uid = t->sec->uid;
    call->cred.gid = t->sec->gid;
    uint32_t n = t->sec->machinename_len;
    if (n > RPC_AUTHSYS_MAXNAME || n > STATE_CB_MACHINE_MAX)
        n = 0;
    call->cred.machinename_len = n;
    memcpy(call->cred.machinename, t->sec->machinename, n);
    call->cred.machinename[n] = '\0';
}

static bool enc_call_args(struct xdr_enc *x, const void *arg)
{
    const struct cb_call *call = arg;
    if (call->proc == CB_PROC_NULL)
        return true;
    CB_SEQUENCE4args seq;
    if (call->have_slot) {
        memset(&seq, 0, sizeof(seq));
        memcpy(seq.csa_sessionid, call->sessionid, sizeof(seq.csa_sessionid));
        seq.csa_sequenceid = call->seqid;
        seq.csa_slotid = call->slotid;
        seq.csa_highest_slotid = call->highest_slotid;
        seq.csa_cachethis = false; /* our ops are idempotent enough to resend */
    }
    return cb_encode_compound(x, call->minor, call->ident, call->have_slot ? &seq : NULL, call->ops,
                              call->ops_len, call->nops);
}

/* ---------------------------------------------------------------------------------- */
/* 4.1+: the session's back channel                                                    */
/* ---------------------------------------------------------------------------------- */

static void start_back(struct cb_service *svc, struct cb_call *call)
{
    struct rpc_conn *conn = state_session_back_conn(call->session);
    if (!conn) {
        call_finish(svc, call, -ENOTCONN, 0, true);
        return;
    }
    if (call->proc == CB_PROC_COMPOUND && !call->have_slot) {
        if (state_cb_slot_get(call->session, &call->slotid, &call->seqid, &call->highest_slotid) != 0) {
            cb_conn_release(conn);
            uint64_t now = now_ms();
            if (now >= call->slot_deadline_ms) {
                call_finish(svc, call, -EBUSY, 0, false);
            } else {
                STAT_ADD(svc, slot_waits, 1);
                call_wait(svc, call, now + SLOT_POLL_MS);
            }
            return;
        }
        call->have_slot = true;
    }
    call->phase = PH_SENT;
    STAT_ADD(svc, calls, 1);
    int err = rpc_conn_call(conn, call->prog, CB_PROG_VERS, call->proc, call_cred(call), enc_call_args,
                            call, svc->cfg.call_timeout_ms, back_done, call);
    cb_conn_release(conn);
    if (err) {
        /* not sent: done will not run; treat it as a reply that never came */
        call->rpc_err = err;
        call->reply_ok = false;
        call->phase = PH_REPLIED;
        inbox_push(svc, call);
    }
}

static bool retry_after_delay(struct cb_service *svc, struct cb_call *call)
{
    if (call->delays >= svc->cfg.delay_retries)
        return false;
    uint64_t wait = (uint64_t)svc->cfg.delay_backoff_ms << call->delays;
    call->delays++;
    STAT_ADD(svc, delay_retries, 1);
    call_wait(svc, call, now_ms() + wait);
    return true;
}

/* The CB_SEQUENCE result must be for the request we sent (RFC 8881 20.9.3). */
static bool seq_matches(const struct cb_call *call)
{
    const CB_SEQUENCE4resok *r = &call->reply.seq;
    return memcmp(r->csr_sessionid, call->sessionid, NFS4_SESSIONID_SIZE) == 0 &&
           r->csr_sequenceid == call->seqid && r->csr_slotid == call->slotid;
}

static void replied_back(struct cb_service *svc, struct cb_call *call)
{
    int err = call->rpc_err;
    nfsstat4 st = NFS4_OK;
    bool answered = false, path_bad = false, retry = false;
    if (err == 0 && call->proc == CB_PROC_COMPOUND && !call->reply_ok)
        err = -EBADMSG;
    if (err) {
        path_bad = true; /* no usable answer on this back channel */
    } else if (call->proc == CB_PROC_COMPOUND) {
        const struct cb_reply *r = &call->reply;
        st = r->status;
        if (!r->has_seq) {
            /* refused before CB_SEQUENCE ran (BADXDR, MINOR_VERS_MISMATCH, ...): the slot's
             * seqid was not used */
            path_bad = true;
        } else if (r->seq_status == NFS4_OK) {
            answered = true;
            if (!seq_matches(call)) {
                err = -EBADMSG;
                path_bad = true;
            } else if (st == NFS4ERR_DELAY) {
                retry = true;
            }
        } else if (r->seq_status == NFS4ERR_DELAY) {
            retry = true; /* the slot's seqid was not used either */
        } else {
            /* BADSESSION, BADSLOT, SEQ_MISORDERED, ...: this session cannot be called back
             * until the client fixes it (a new back connection clears the mark) */
            path_bad = true;
        }
    }
    if (call->have_slot) {
        state_cb_slot_put(call->session, call->slotid, answered);
        call->have_slot = false;
        /* a slot came free: waiting calls try again now */
        for (struct cb_call *w = svc->waiting; w; w = w->next)
            if (w->session == call->session && !w->have_slot)
                w->due_ms = 0;
    }
    if (path_bad) {
        log_info("cb: back channel call failed (err %d, status %u): session callback path down", err,
                 (unsigned)(call->reply_ok ? call->reply.seq_status : 0));
        state_session_cb_path_down(call->session);
    }
    if (retry && retry_after_delay(svc, call))
        return;
    call_finish(svc, call, err, st, path_bad);
}

/* ---------------------------------------------------------------------------------- */
/* 4.0: our own connection to the client's callback address                             */
/* ---------------------------------------------------------------------------------- */

static void start_fore(struct cb_service *svc, struct cb_call *call);

static void conn_free(struct cb_conn *conn)
{
    if (conn->clnt)
        rpc_clnt_destroy(conn->clnt);
    if (conn->fd >= 0)
        close(conn->fd);
    free(conn);
}

/* Out of the cache: calls in flight on it fail (rpc_clnt_destroy completes them, they
 * come back through the inbox), waiters fail with err; freed once nobody uses it. */
static void conn_drop(struct cb_service *svc, struct cb_conn *conn, int err)
{
    if (conn->dropped)
        return;
    conn->dropped = true;
    for (struct cb_conn **pp = &svc->conns; *pp; pp = &(*pp)->next)
        if (*pp == conn) {
            *pp = conn->next;
            svc->nconns--;
            break;
        }
    struct cb_call *w = conn->waiters;
    conn->waiters = NULL;
    if (conn->clnt) {
        rpc_clnt_destroy(conn->clnt);
        conn->clnt = NULL;
    }
    if (conn->users == 0)
        conn_free(conn);
    while (w) {
        struct cb_call *next = w->next;
        call_finish(svc, w, err, 0, true);
        w = next;
    }
}

static void conn_unuse(struct cb_conn *conn)
{
    conn->users--;
    conn->last_used_ms = now_ms();
    if (conn->dropped && conn->users == 0)
        conn_free(conn);
}

static struct cb_conn *conn_find(struct cb_service *svc, const char *key)
{
    for (struct cb_conn *c = svc->conns; c; c = c->next)
        if (strcmp(c->key, key) == 0)
            return c;
    return NULL;
}

/* Keeps the cache bounded: the least recently used idle connection goes. */
static void conn_make_room(struct cb_service *svc)
{
    if (svc->nconns < svc->cfg.max_conns)
        return;
    struct cb_conn *lru = NULL;
    for (struct cb_conn *c = svc->conns; c; c = c->next)
        if (c->state == CONN_UP && c->users == 0 && (!lru || c->last_used_ms < lru->last_used_ms))
            lru = c;
    if (lru)
        conn_drop(svc, lru, -ECANCELED);
}

/* Returns false when the connection was dropped (and maybe freed). */
static bool conn_up(struct cb_service *svc, struct cb_conn *conn, int fd)
{
    int err = 0;
    conn->fd = -1; /* the rpc client owns it now (and closes it on failure) */
    conn->clnt = rpc_clnt_connect_fd(fd, &err);
    if (!conn->clnt) {
        STAT_ADD(svc, connect_failures, 1);
        conn_drop(svc, conn, err ? err : -ENOMEM);
        return false;
    }
    STAT_ADD(svc, connects, 1);
    conn->state = CONN_UP;
    conn->last_used_ms = now_ms();
    /* the waiters in the order they came */
    struct cb_call *rev = NULL, *w = conn->waiters;
    conn->waiters = NULL;
    while (w) {
        struct cb_call *next = w->next;
        w->next = rev;
        rev = w;
        w = next;
    }
    while (rev) {
        struct cb_call *next = rev->next;
        start_fore(svc, rev);
        rev = next;
    }
    return true;
}

static struct cb_conn *conn_open(struct cb_service *svc, const struct cb_call *call, int *err)
{
    conn_make_room(svc);
    struct cb_conn *conn = calloc(1, sizeof(*conn));
    if (!conn) {
        *err = -ENOMEM;
        return NULL;
    }
    conn->fd = -1;
    memcpy(conn->key, call->key, sizeof(conn->key));
    int fd = socket(call->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = -errno;
        free(conn);
        return NULL;
    }
    conn->next = svc->conns;
    svc->conns = conn;
    svc->nconns++;
    if (connect(fd, (const struct sockaddr *)&call->addr, call->addr_len) == 0) {
        if (conn_up(svc, conn, fd))
            return conn;
        *err = -ECONNREFUSED;
        return NULL;
    }
    if (errno != EINPROGRESS) {
        *err = -errno;
        close(fd);
        STAT_ADD(svc, connect_failures, 1);
        conn_drop(svc, conn, *err);
        return NULL;
    }
    conn->fd = fd;
    conn->state = CONN_CONNECTING;
    conn->deadline_ms = now_ms() + svc->cfg.connect_timeout_ms;
    return conn;
}

/* The non-blocking connect finished (revents) or ran out of time. */
static void conn_connect_done(struct cb_service *svc, struct cb_conn *conn, bool timed_out)
{
    int soerr = 0;
    socklen_t l = sizeof(soerr);
    if (timed_out) {
        soerr = ETIMEDOUT;
    } else if (getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &soerr, &l) < 0) {
        soerr = errno;
    }
    if (soerr) {
        log_info("cb: callback connection to %s failed: %s", conn->key, strerror(soerr));
        STAT_ADD(svc, connect_failures, 1);
        conn_drop(svc, conn, -soerr);
        return;
    }
    (void)conn_up(svc, conn, conn->fd);
}

static void send_fore(struct cb_service *svc, struct cb_call *call, struct cb_conn *conn)
{
    call->phase = PH_SENT;
    call->conn = conn;
    call->conn_reused = conn->sent > 0;
    conn->users++;
    conn->sent++;
    STAT_ADD(svc, calls, 1);
    int err = rpc_clnt_call_async(conn->clnt, call->prog, CB_PROG_VERS, call->proc, call_cred(call),
                                  enc_call_args, call, (int)svc->cfg.call_timeout_ms, clnt_done, call);
    if (err == 0)
        return;
    call->conn = NULL;
    conn_drop(svc, conn, -ECONNRESET);
    conn_unuse(conn);
    if (err == -ECONNRESET && !call->reconnected) {
        /* the client closed the cached connection while it was idle: one fresh try */
        call->reconnected = true;
        start_fore(svc, call);
        return;
    }
    call_finish(svc, call, err, 0, true);
}

static void start_fore(struct cb_service *svc, struct cb_call *call)
{
    if (call->addr_len == 0) {
        call_finish(svc, call, -EINVAL, 0, true);
        return;
    }
    struct cb_conn *conn = conn_find(svc, call->key);
    if (!conn) {
        int err = 0;
        if (!(conn = conn_open(svc, call, &err))) {
            call_finish(svc, call, err, 0, true);
            return;
        }
    }
    if (conn->state == CONN_CONNECTING) {
        call->phase = PH_CONNECTING;
        call->next = conn->waiters;
        conn->waiters = call;
        return;
    }
    send_fore(svc, call, conn);
}

static void replied_fore(struct cb_service *svc, struct cb_call *call)
{
    struct cb_conn *conn = call->conn;
    call->conn = NULL;
    int err = call->rpc_err;
    if (err == 0 && call->proc == CB_PROC_COMPOUND && !call->reply_ok)
        err = -EBADMSG;
    if (err && conn)
        conn_drop(svc, conn, -ECONNRESET);
    if (conn)
        conn_unuse(conn);
    if (err == -ECONNRESET && call->conn_reused && !call->reconnected && !svc->halting) {
        /* a stale cached connection (closed by the client while idle): one fresh try */
        call->reconnected = true;
        start_fore(svc, call);
        return;
    }
    nfsstat4 st = err == 0 && call->proc == CB_PROC_COMPOUND ? call->reply.status : NFS4_OK;
    if (err == 0 && st == NFS4ERR_DELAY && retry_after_delay(svc, call))
        return;
    call_finish(svc, call, err, st, err != 0);
}

/* ---------------------------------------------------------------------------------- */
/* The service thread                                                                  */
/* ---------------------------------------------------------------------------------- */

static void call_start(struct cb_service *svc, struct cb_call *call)
{
    if (svc->halting)
        call_finish(svc, call, -ECANCELED, 0, false);
    else if (call->minor == 0)
        start_fore(svc, call);
    else
        start_back(svc, call);
}

static void call_replied(struct cb_service *svc, struct cb_call *call)
{
    STAT_ADD(svc, replies, call->rpc_err == 0);
    if (call->minor == 0)
        replied_fore(svc, call);
    else
        replied_back(svc, call);
}

static void run_inbox(struct cb_service *svc, struct cb_call *list)
{
    while (list) {
        struct cb_call *next = list->next;
        if (list->phase == PH_REPLIED)
            call_replied(svc, list);
        else
            call_start(svc, list);
        list = next;
    }
}

static void run_timers(struct cb_service *svc, uint64_t now)
{
    struct cb_call *list = svc->waiting, *keep = NULL;
    svc->waiting = NULL;
    while (list) {
        struct cb_call *next = list->next;
        if (list->due_ms <= now || svc->halting) {
            list->phase = PH_NEW;
            call_start(svc, list);
        } else {
            list->next = keep;
            keep = list;
        }
        list = next;
    }
    /* calls started above may have queued themselves again */
    while (keep) {
        struct cb_call *next = keep->next;
        keep->next = svc->waiting;
        svc->waiting = keep;
        keep = next;
    }
}

static void close_idle(struct cb_service *svc, uint64_t now)
{
    struct cb_conn *c = svc->conns;
    while (c) {
        struct cb_conn *next = c->next;
        if (svc->halting || (c->state == CONN_UP && c->users == 0 && now - c->last_used_ms >= svc->cfg.idle_ms))
            conn_drop(svc, c, -ECANCELED);
        c = next;
    }
}

/* Poll timeout: the next timer, connect deadline or idle check (at most 1 s). */
static int next_timeout(struct cb_service *svc, uint64_t now)
{
    uint64_t next = now + 1000;
    for (struct cb_call *w = svc->waiting; w; w = w->next)
        if (w->due_ms < next)
            next = w->due_ms;
    for (struct cb_conn *c = svc->conns; c; c = c->next)
        if (c->state == CONN_CONNECTING && c->deadline_ms < next)
            next = c->deadline_ms;
    return next <= now ? 0 : (int)(next - now);
}

static bool poll_room(struct cb_service *svc, size_t n)
{
    if (n <= svc->pcap)
        return true;
    struct pollfd *p = realloc(svc->pfds, n * sizeof(*p));
    if (!p)
        return false;
    svc->pfds = p;
    struct cb_conn **c = realloc(svc->pconns, n * sizeof(*c));
    if (!c)
        return false;
    svc->pconns = c;
    svc->pcap = n;
    return true;
}

static void wait_and_connect(struct cb_service *svc)
{
    uint64_t now = now_ms();
    int timeout = next_timeout(svc, now);
    size_t n = 1;
    if (!poll_room(svc, svc->nconns + 1)) {
        timeout = timeout > 10 ? 10 : timeout; /* retry the allocation soon */
    } else {
        for (struct cb_conn *c = svc->conns; c; c = c->next)
            if (c->state == CONN_CONNECTING) {
                svc->pfds[n] = (struct pollfd){.fd = c->fd, .events = POLLOUT};
                svc->pconns[n++] = c;
            }
    }
    if (svc->pcap == 0) {
        struct pollfd one = {.fd = svc->wake[0], .events = POLLIN};
        (void)poll(&one, 1, timeout);
    } else {
        svc->pfds[0] = (struct pollfd){.fd = svc->wake[0], .events = POLLIN};
        (void)poll(svc->pfds, (nfds_t)n, timeout);
    }
    char buf[64];
    while (read(svc->wake[0], buf, sizeof(buf)) > 0) {
    }
    now = now_ms();
    for (size_t i = 1; i < n; i++) {
        struct cb_conn *c = svc->pconns[i];
        if (svc->pfds[i].revents)
            conn_connect_done(svc, c, false);
        else if (now >= c->deadline_ms)
            conn_connect_done(svc, c, true);
    }
}

static void *service_main(void *arg)
{
    struct cb_service *svc = arg;
    for (;;) {
        pthread_mutex_lock(&svc->mu);
        struct cb_call *list = svc->inbox;
        svc->inbox = svc->inbox_tail = NULL;
        svc->halting = svc->stopping;
        pthread_mutex_unlock(&svc->mu);
        run_inbox(svc, list);
        uint64_t now = now_ms();
        run_timers(svc, now);
        close_idle(svc, now);
        pthread_mutex_lock(&svc->mu);
        bool finished = svc->halting && svc->ncalls == 0 && !svc->inbox;
        bool more = svc->inbox != NULL;
        svc->stats.conns = svc->nconns;
        pthread_mutex_unlock(&svc->mu);
        if (finished)
            break;
        if (!more)
            wait_and_connect(svc);
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------- */
/* Submission                                                                          */
/* ---------------------------------------------------------------------------------- */

static bool target_ok(const struct cb_target *t, cb_done_fn done)
{
    return t && done && (t->minorversion == 0 || t->session);
}

/* NULL: out of memory (the target was checked by the caller). */
static struct cb_call *call_new(struct cb_service *svc, const struct cb_target *t, uint32_t proc,
                                cb_done_fn done, void *ctx)
{
    struct cb_call *call = calloc(1, sizeof(*call));
    if (!call)
        return NULL;
    call->svc = svc;
    call->phase = PH_NEW;
    call->proc = proc;
    call->minor = t->minorversion;
    call_set_cred(svc, call, t);
    call->done = done;
    call->ctx = ctx;
    call->slot_deadline_ms = now_ms() + svc->cfg.slot_wait_ms;
    if (t->minorversion > 0) {
        call->session = state_session_ref(t->session);
        call->prog = state_session_cb_program(t->session);
        call->ident = 0; /* callback_ident is not used in 4.1 (RFC 8881 20.1) */
        state_session_id(t->session, call->sessionid);
    } else {
        struct state_cb_info info = t->info;
        info.netid[sizeof(info.netid) - 1] = '\0';
        info.addr[sizeof(info.addr) - 1] = '\0';
        call->prog = info.program;
        call->ident = info.ident;
        snprintf(call->key, sizeof(call->key), "%s %s", info.netid, info.addr);
        if (!cb_uaddr_parse(info.netid, info.addr, &call->addr, &call->addr_len))
            call->addr_len = 0; /* fails with -EINVAL on the service thread */
    }
    return call;
}

static void call_free(struct cb_call *call)
{
    state_session_put(call->session);
    free(call->ops);
    free(call);
}

static int submit(struct cb_service *svc, struct cb_call *call)
{
    pthread_mutex_lock(&svc->mu);
    if (svc->stopping) {
        pthread_mutex_unlock(&svc->mu);
        call_free(call);
        return -ECANCELED;
    }
    svc->ncalls++;
    pthread_mutex_unlock(&svc->mu);
    inbox_push(svc, call);
    return 0;
}

int cb_null(struct cb_service *svc, const struct cb_target *t, cb_done_fn done, void *ctx)
{
    if (!target_ok(t, done))
        return -EINVAL;
    struct cb_call *call = call_new(svc, t, CB_PROC_NULL, done, ctx);
    return call ? submit(svc, call) : -ENOMEM;
}

int cb_compound(struct cb_service *svc, const struct cb_target *t, const nfs_cb_argop4 *ops,
                unsigned nops, cb_done_fn done, void *ctx)
{
    if (!target_ok(t, done) || !ops || nops == 0 || nops > CB_MAX_OPS)
        return -EINVAL;
    uint8_t *buf = malloc(OPS_BUF_MAX);
    if (!buf)
        return -ENOMEM;
    struct xdr_enc x;
    xdr_enc_init(&x, buf, OPS_BUF_MAX);
    for (unsigned i = 0; i < nops; i++)
        if (ops[i].argop == OP_CB_SEQUENCE || !xdr_encode_nfs_cb_argop4(&x, &ops[i])) {
            free(buf);
            return -EINVAL;
        }
    struct cb_call *call = call_new(svc, t, CB_PROC_COMPOUND, done, ctx);
    if (!call) {
        free(buf);
        return -ENOMEM;
    }
    call->ops_len = xdr_enc_len(&x);
    call->ops = malloc(call->ops_len);
    if (!call->ops) {
        free(buf);
        call_free(call);
        return -ENOMEM;
    }
    memcpy(call->ops, buf, call->ops_len);
    free(buf);
    call->nops = nops;
    if (call->minor > 0)
        call->opnums[call->nopnums++] = OP_CB_SEQUENCE;
    for (unsigned i = 0; i < nops; i++)
        call->opnums[call->nopnums++] = ops[i].argop;
    return submit(svc, call);
}

int cb_recall(struct cb_service *svc, const struct cb_target *t, const struct state_stateid *stateid,
              bool truncate, const void *fh, size_t fh_len, cb_done_fn done, void *ctx)
{
    if (!stateid || !fh || fh_len == 0 || fh_len > NFS4_FHSIZE)
        return -EINVAL;
    nfs_cb_argop4 op = {.argop = OP_CB_RECALL};
    op.opcbrecall.stateid.seqid = stateid->seqid;
    memcpy(op.opcbrecall.stateid.other, stateid->other, sizeof(op.opcbrecall.stateid.other));
    op.opcbrecall.truncate = truncate;
    op.opcbrecall.fh = (nfs_fh4){(uint32_t)fh_len, fh};
    return cb_compound(svc, t, &op, 1, done, ctx);
}

int cb_getattr(struct cb_service *svc, const struct cb_target *t, const void *fh, size_t fh_len,
               cb_done_fn done, void *ctx)
{
    if (!fh || fh_len == 0 || fh_len > NFS4_FHSIZE)
        return -EINVAL;
    uint32_t mask = 1u << 3 | 1u << 4; /* change, size */
    nfs_cb_argop4 op = {.argop = OP_CB_GETATTR};
    op.opcbgetattr.fh = (nfs_fh4){(uint32_t)fh_len, fh};
    op.opcbgetattr.attr_request = (bitmap4){1, &mask};
    return cb_compound(svc, t, &op, 1, done, ctx);
}

int cb_recall_any(struct cb_service *svc, const struct cb_target *t, uint32_t objects_to_keep,
                  uint32_t type_mask, cb_done_fn done, void *ctx)
{
    if (t && t->minorversion == 0)
        return -EINVAL; /* a 4.1 operation */
    nfs_cb_argop4 op = {.argop = OP_CB_RECALL_ANY};
    op.opcbrecall_any.craa_objects_to_keep = objects_to_keep;
    op.opcbrecall_any.craa_type_mask = (bitmap4){1, &type_mask};
    return cb_compound(svc, t, &op, 1, done, ctx);
}

int cb_notify_lock(struct cb_service *svc, const struct cb_target *t, const void *fh, size_t fh_len,
                   uint64_t clientid, const void *owner, size_t owner_len, cb_done_fn done, void *ctx)
{
    if ((t && t->minorversion == 0) || !fh || fh_len == 0 || fh_len > NFS4_FHSIZE ||
        (owner_len && !owner) || owner_len > NFS4_OPAQUE_LIMIT)
        return -EINVAL;
    nfs_cb_argop4 op = {.argop = OP_CB_NOTIFY_LOCK};
    op.opcbnotify_lock.cnla_fh = (nfs_fh4){(uint32_t)fh_len, fh};
    op.opcbnotify_lock.cnla_lock_owner.clientid = clientid;
    op.opcbnotify_lock.cnla_lock_owner.owner = (struct xdr_opaque){(uint32_t)owner_len, owner};
    return cb_compound(svc, t, &op, 1, done, ctx);
}

/* ---------------------------------------------------------------------------------- */
/* Lifetime                                                                            */
/* ---------------------------------------------------------------------------------- */

struct cb_service *cb_service_new(const struct cb_config *cfg, int *err)
{
    struct cb_service *svc = calloc(1, sizeof(*svc));
    if (!svc) {
        *err = -ENOMEM;
        return NULL;
    }
    if (cfg)
        svc->cfg = *cfg;
#define DEFAULT(f, v) if (!svc->cfg.f) svc->cfg.f = (v)
    DEFAULT(call_timeout_ms, 5000);
    DEFAULT(connect_timeout_ms, 2000);
    DEFAULT(delay_retries, 3);
    DEFAULT(delay_backoff_ms, 100);
    DEFAULT(slot_wait_ms, svc->cfg.call_timeout_ms);
    DEFAULT(max_conns, 256);
    DEFAULT(idle_ms, 300000);
#undef DEFAULT
    svc->cred_sys.flavor = RPC_AUTH_SYS;
    svc->cred_sys.machinename_len = sizeof(CB_MACHINE_NAME) - 1;
    memcpy(svc->cred_sys.machinename, CB_MACHINE_NAME, sizeof(CB_MACHINE_NAME));
    if (pipe2(svc->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        *err = -errno;
        free(svc);
        return NULL;
    }
    pthread_mutex_init(&svc->mu, NULL);
    int e = pthread_create(&svc->thread, NULL, service_main, svc);
    if (e) {
        *err = -e;
        close(svc->wake[0]);
        close(svc->wake[1]);
        pthread_mutex_destroy(&svc->mu);
        free(svc);
        return NULL;
    }
    return svc;
}

void cb_service_destroy(struct cb_service *svc)
{
    if (!svc)
        return;
    pthread_mutex_lock(&svc->mu);
    svc->stopping = true;
    pthread_mutex_unlock(&svc->mu);
    wake(svc);
    pthread_join(svc->thread, NULL);
    close(svc->wake[0]);
    close(svc->wake[1]);
    free(svc->pfds);
    free(svc->pconns);
    pthread_mutex_destroy(&svc->mu);
    free(svc);
}

void cb_service_stats(struct cb_service *svc, struct cb_stats *out)
{
    pthread_mutex_lock(&svc->mu);
    *out = svc->stats;
    pthread_mutex_unlock(&svc->mu);
}

void cb_conn_hold(void *conn)
{
    rpc_conn_get(conn);
}

void cb_conn_release(void *conn)
{
    rpc_conn_put(conn);
}
