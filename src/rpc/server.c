#include "rpc/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "rpc/conn.h"
#include "rpc/drc.h"
#include "rpc/gss.h"
#include "rpc/msg.h"
#include "rpc/record.h"
#include "util/log.h"

#define MAX_PROGRAMS 16
#define MAX_LISTENERS 8
#define ARENA_SIZE (64 * 1024)
#define MAX_READS_PER_EVENT 8 /* fairness between connections of one loop */
#define MAX_OUT_QUEUED (32u << 20) /* stop reading a client that does not read its replies */

/* One registration. A program number may be registered several times with disjoint
 * versions (NFSv3 and NFSv4 are both 100003, served by separate modules); vers_low and
 * vers_high span all registrations of the number, as PROG_MISMATCH reports them. */
struct prog_entry {
    const struct rpc_program_desc *desc;
    void *ctx;
    uint32_t vers_low, vers_high;
};

#define BATCH_MAX (32 * 1024) /* below OUT_COPY_MAX: a partial batch send is copied */

struct job;

/* A call's duplicate request cache state (drc.h), from its lookup to its reply. */
struct rpc_drc_state {
    struct job *job;
    struct worker *w;  /* the thread executing it: a cached reply is copied to its buffer */
    struct drc_key key;
    uint64_t ticket;   /* != 0: the call holds an IN PROGRESS entry (kept across a requeue) */
    size_t replay_len; /* RPC_DRC_REPLAY: bytes of the cached reply at w->reply + 4 */
};

struct job {
    struct job *next;
    struct rpc_conn *conn;
    struct rec_slice rec;
    struct rpc_call_hdr hdr;
    struct rpc_cred cred;
    const struct prog_entry *prog;
    const struct rpc_proc_desc *proc;
    struct sockaddr_storage peer; /* datagram sockets: who to answer */
    socklen_t peer_len;
    struct rpc_drc_state drc;
    const uint8_t *args; /* the procedure arguments: in the record, or unwrapped (gss) */
    size_t args_len;
    struct rpc_gss_call gss; /* RPCSEC_GSS calls: context, sequence number, service */
};

/* Where an RPCSEC_GSS call's handler writes its results: room below them for the reply
 * header and verifier and the integrity wrapping, and above them for a checksum. */
#define GSS_RES_OFF (4 + RPC_GSS_REPLY_SLACK)

struct job_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *head, *tail;
};

struct loop {
    struct ev_tag wake_tag;
    struct rpc_server *srv;
    pthread_t thread;
    int epfd, evfd;
    atomic_bool idle;
    struct job_queue inbox;
    struct worker w;
};

struct pool_thread {
    struct rpc_server *srv;
    pthread_t thread;
    struct worker w;
};

struct listener {
    struct ev_tag tag;
    int fd;
    bool udp;
};

/* Unsent reply bytes. Small tails are copied into the outbuf itself; a large one keeps
 * the worker's whole reply buffer (`block`), which the worker then replaces. */
struct outbuf {
    struct outbuf *next;
    size_t len, off;
    uint8_t *data;
    void *block; /* freed with the outbuf when not NULL */
    uint8_t inline_data[];
};

#define OUT_COPY_MAX (64 * 1024) /* tails up to this size are copied, larger ones moved */

struct stat_counters {
    atomic_ullong calls, replies, handoffs, pooled, garbage, rejected, accepted, closed;
};

#define DRC_REPLY_MAX (64 * 1024) /* bigger replies (READ, READDIR) are never cached */

struct rpc_server {
    struct rpc_server_config cfg;
    struct prog_entry progs[MAX_PROGRAMS];
    unsigned nprogs;
    struct listener listeners[MAX_LISTENERS];
    unsigned nlisteners;
    uint16_t port;
    struct loop *loops;
    atomic_uint next_loop;
    struct job_queue pool;
    struct pool_thread *pool_threads;
    pthread_mutex_t conns_mu; /* taken on accept and close only */
    struct rpc_conn *conns;
    atomic_bool stopping;
    bool started;
    struct stat_counters st;
    struct bc_server bc;
    struct drc *drc; /* duplicate request cache */
    struct rpc_gss *gss; /* RPCSEC_GSS contexts */
};

/* ---------- small helpers ---------- */

static void queue_init(struct job_queue *q)
{
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    q->head = q->tail = NULL;
}

static void queue_push(struct job_queue *q, struct job *j)
{
    j->next = NULL;
    pthread_mutex_lock(&q->mu);
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

/* Take the whole queue at once (loop inbox). */
static struct job *queue_take_all(struct job_queue *q)
{
    pthread_mutex_lock(&q->mu);
    struct job *j = q->head;
    q->head = q->tail = NULL;
    pthread_mutex_unlock(&q->mu);
    return j;
}

static int worker_init(struct worker *w, int index, size_t reply_cap)
{
    w->index = index;
    w->reply_cap = reply_cap;
    w->recyclable = true;
    w->reply = malloc(reply_cap);
    w->arena = malloc(ARENA_SIZE);
    return (w->reply && w->arena) ? 0 : -ENOMEM;
}

static void worker_fini(struct worker *w)
{
    free(w->reply);
    free(w->arena);
    free(w->batch);
}

static void wake_loop(struct loop *l)
{
    uint64_t one = 1;
    ssize_t n = write(l->evfd, &one, sizeof(one));
    (void)n; /* a full eventfd counter still wakes the loop */
}

const char *rpc_call_peer_str(const struct rpc_call *call, char *buf, size_t len)
{
    const struct sockaddr *sa = call->peer;
    const void *addr = NULL;
    if (sa && sa->sa_family == AF_INET)
        addr = &((const struct sockaddr_in *)sa)->sin_addr;
    else if (sa && sa->sa_family == AF_INET6)
        addr = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (!addr || !inet_ntop(sa->sa_family, addr, buf, (socklen_t)len))
        snprintf(buf, len, "?");
    return buf;
}

/* ---------- reply buffers ---------- */

/*
 * Reply buffers that a large reply moved into a connection's queue come back here when
 * sent, so the next worker that needs one gets pages that are already mapped: a fresh
 * 1 MiB buffer costs 256 page faults inside the READ's pread, measured as the largest
 * cost of pipelined 1 MiB READs. The lock is taken only for replies over OUT_COPY_MAX.
 */
#define SPARE_REPLIES 32

static struct {
    pthread_mutex_t mu;
    void *bufs[SPARE_REPLIES];
    unsigned n;
} spare = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void reply_buf_release(void *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&spare.mu);
    if (spare.n < SPARE_REPLIES) {
        spare.bufs[spare.n++] = b;
        b = NULL;
    }
    pthread_mutex_unlock(&spare.mu);
    free(b);
}

/* The worker's reply buffer, replaced after a large reply took it. All reply buffers of
 * a process have the same size (the server's max_reply). */
static uint8_t *worker_reply(struct worker *w)
{
    if (w->reply)
        return w->reply;
    pthread_mutex_lock(&spare.mu);
    if (spare.n)
        w->reply = spare.bufs[--spare.n];
    pthread_mutex_unlock(&spare.mu);
    if (!w->reply)
        w->reply = malloc(w->reply_cap);
    return w->reply;
}

/* ---------- connections ---------- */

static void outbuf_free(struct outbuf *o)
{
    reply_buf_release(o->block);
    free(o);
}

void conn_put(struct rpc_conn *c)
{
    if (atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    /* last reference: nobody can send on or poll this fd any more */
    close(c->fd);
    for (struct outbuf *o = c->out_head, *next; o; o = next) {
        next = o->next;
        outbuf_free(o);
    }
    bc_conn_fini(c);
    rec_reader_free(&c->rr);
    pthread_mutex_destroy(&c->send_mu);
    free(c); /* no server access here: a handle may outlive rpc_server_destroy */
}

/* Recompute the epoll mask; caller holds send_mu. */
static void conn_update_events_locked(struct rpc_conn *c)
{
    if (c->closed)
        return;
    uint32_t ev = (c->read_paused ? 0 : EPOLLIN) | (c->out_head ? EPOLLOUT : 0);
    if (ev == c->events)
        return;
    struct epoll_event e = { .events = ev, .data.ptr = &c->tag };
    if (epoll_ctl(c->loop->epfd, EPOLL_CTL_MOD, c->fd, &e) == 0)
        c->events = ev;
}

static void conn_close(struct rpc_conn *c, const char *why)
{
    pthread_mutex_lock(&c->send_mu);
    bool was_closed = c->closed;
    c->closed = true;
    pthread_mutex_unlock(&c->send_mu);
    if (was_closed)
        return;
    log_debug("connection fd %d closed: %s", c->fd, why);
    pthread_mutex_lock(&c->srv->conns_mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        c->srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&c->srv->conns_mu);
    epoll_ctl(c->loop->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    shutdown(c->fd, SHUT_RDWR); /* in-flight replies now fail fast; fd closes at last put */
    atomic_fetch_add(&c->srv->st.closed, 1);
    bc_conn_down(c);
    conn_put(c); /* the loop's reference */
}

/* Queue the unsent tail [data, data+len) of the worker's reply; caller holds send_mu. */
static bool conn_queue_locked(struct rpc_conn *c, struct worker *w, uint8_t *data, size_t len)
{
    bool move = len > OUT_COPY_MAX && w->recyclable;
    struct outbuf *o = malloc(sizeof(*o) + (move ? 0 : len));
    if (!o)
        return false;
    if (move) { /* no copy of a big READ reply: the queue takes the buffer */
        o->block = w->reply;
        o->data = data;
        w->reply = NULL;
    } else {
        o->block = NULL;
        o->data = o->inline_data;
        memcpy(o->data, data, len);
    }
    o->len = len;
    o->off = 0;
    o->next = NULL;
    if (c->out_tail)
        c->out_tail->next = o;
    else
        c->out_head = o;
    c->out_tail = o;
    c->out_bytes += len;
    if (c->out_bytes > MAX_OUT_QUEUED)
        c->read_paused = true;
    conn_update_events_locked(c);
    return true;
}

/* Send bytes on a stream connection; what the socket does not take is queued (moved
 * from the worker's reply buffer when `data` is in it and large, else copied). */
static void conn_send_bytes(struct rpc_conn *c, struct worker *w, uint8_t *data, size_t len)
{
    pthread_mutex_lock(&c->send_mu);
    if (!c->closed) {
        size_t off = 0;
        if (!c->out_head) {
            ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0)
                off = (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EINTR)
                off = len; /* the peer is gone; the loop will see it and close */
        }
        if (off < len && !conn_queue_locked(c, w, data + off, len - off))
            log_err("out of memory queueing a %zu-byte reply", len - off);
    }
    pthread_mutex_unlock(&c->send_mu);
}

static void batch_flush(struct worker *w)
{
    if (w->batch_len) {
        conn_send_bytes(w->batch_conn, w, w->batch, w->batch_len);
        w->batch_len = 0;
    }
}

/* Send the record in the worker's reply buffer (its first 4 bytes are reserved for the
 * record mark); `to` is the peer of a datagram socket. */
void conn_send_record(struct rpc_conn *c, struct worker *w, size_t len,
                      const struct sockaddr_storage *to, socklen_t tolen)
{
    uint8_t *data = w->reply;
    if (c->udp) {
        if (sendto(c->fd, data + 4, len - 4, MSG_DONTWAIT, (const struct sockaddr *)to, tolen) < 0)
            log_debug("udp reply of %zu bytes not sent: %s", len - 4, strerror(errno));
        return;
    }
    xdr_put_be32(data, REC_LAST_FRAG | (uint32_t)(len - 4));
    if (w->batch_conn == c && w->batch) {
        if (len <= BATCH_MAX - w->batch_len) {
            memcpy(w->batch + w->batch_len, data, len);
            w->batch_len += len;
            return;
        }
        batch_flush(w); /* keep the batch ahead of a big reply only for simplicity */
    }
    conn_send_bytes(c, w, data, len);
}

static void conn_flush(struct rpc_conn *c)
{
    pthread_mutex_lock(&c->send_mu);
    while (c->out_head) {
        struct iovec iov[16];
        int n = 0;
        for (struct outbuf *o = c->out_head; o && n < 16; o = o->next, n++) {
            iov[n].iov_base = o->data + o->off;
            iov[n].iov_len = o->len - o->off;
        }
        ssize_t w = writev(c->fd, iov, n);
        if (w < 0)
            break; /* EAGAIN: wait for EPOLLOUT; other errors: EPOLLERR/HUP closes */
        c->out_bytes -= (size_t)w;
        while (w > 0) {
            struct outbuf *o = c->out_head;
            size_t left = o->len - o->off;
            if ((size_t)w < left) {
                o->off += (size_t)w;
                break;
            }
            w -= (ssize_t)left;
            c->out_head = o->next;
            if (!c->out_head)
                c->out_tail = NULL;
            outbuf_free(o);
        }
    }
    if (c->out_bytes <= MAX_OUT_QUEUED / 2 &&
        atomic_load(&c->inflight) < c->srv->cfg.max_inflight)
        c->read_paused = false;
    conn_update_events_locked(c);
    pthread_mutex_unlock(&c->send_mu);
}

/* ---------- executing calls ---------- */

static void job_free(struct job *j)
{
    struct rpc_conn *c = j->conn;
    if (j->drc.ticket) /* ended without a reply to keep: a retransmission runs again */
        drc_abort(c->srv->drc, &j->drc.key, j->drc.ticket);
    rpc_gss_call_release(&j->gss);
    rbuf_put(j->rec.buf);
    unsigned left = atomic_fetch_sub(&c->inflight, 1) - 1;
    if (left == c->srv->cfg.max_inflight / 2) {
        pthread_mutex_lock(&c->send_mu);
        if (c->read_paused && c->out_bytes <= MAX_OUT_QUEUED / 2) {
            c->read_paused = false;
            conn_update_events_locked(c);
        }
        pthread_mutex_unlock(&c->send_mu);
    }
    conn_put(c);
    free(j);
}

/* ---------- duplicate request cache ---------- */

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum rpc_accept_status rpc_call_cache_reply(struct rpc_call *call)
{
    struct rpc_drc_state *ds = call->drc;
    if (!ds || ds->ticket)
        return RPC_SUCCESS; /* not from the server, or tracked by its first run */
    struct job *j = ds->job;
    struct drc *drc = j->conn->srv->drc;
    struct worker *w = ds->w;
    drc_key_init(&ds->key, call->peer, call->peer_len, j->hdr.xid, j->hdr.prog, j->hdr.vers,
                 j->hdr.proc, j->args, j->args_len);
    /* a hit lands where the reply is sent from; the handler has encoded nothing yet. An
     * RPCSEC_GSS call keeps only its plain results: a retransmission has a new sequence
     * number, so its reply gets a new verifier and protection. */
    size_t at = j->gss.ctx ? GSS_RES_OFF : 4;
    switch (drc_begin(drc, &ds->key, monotonic_ms(), w->reply + at, w->reply_cap - at, &ds->replay_len,
                      &ds->ticket)) {
    case DRC_HIT:
        log_debug("call %#x: retransmission answered from the duplicate request cache", j->hdr.xid);
        return RPC_DRC_REPLAY;
    case DRC_IN_PROGRESS:
        log_debug("call %#x: retransmission of a call in progress dropped", j->hdr.xid);
        return RPC_NO_REPLY;
    case DRC_MISS:
        break;
    }
    return RPC_SUCCESS;
}

/* The call's reply (in w->reply, len bytes with the record mark) goes out: keep it for
 * retransmissions when the call holds a cache entry. A SYSTEM_ERR is transient (out of
 * memory, ...): a retransmission should run again, so it is not kept. */
static void drc_settle(struct job *j, const struct worker *w, size_t len, enum rpc_accept_status st)
{
    struct rpc_drc_state *ds = &j->drc;
    if (!ds->ticket)
        return;
    struct drc *drc = j->conn->srv->drc;
    if (st == RPC_SYSTEM_ERR || len < 4)
        drc_abort(drc, &ds->key, ds->ticket);
    else
        drc_finish(drc, &ds->key, ds->ticket, w->reply + 4, len - 4, monotonic_ms());
    ds->ticket = 0;
}

/* The same for an RPCSEC_GSS call: its plain results (res_len bytes at GSS_RES_OFF),
 * only for SUCCESS (other replies carry nothing but the status). */
static void drc_settle_gss(struct job *j, const struct worker *w, size_t res_len, enum rpc_accept_status st)
{
    struct rpc_drc_state *ds = &j->drc;
    if (!ds->ticket)
        return;
    struct drc *drc = j->conn->srv->drc;
    if (st != RPC_SUCCESS)
        drc_abort(drc, &ds->key, ds->ticket);
    else
        drc_finish(drc, &ds->key, ds->ticket, w->reply + GSS_RES_OFF, res_len, monotonic_ms());
    ds->ticket = 0;
}

/* RPC_REQUEUE_BLOCKING: the job goes to the blocking pool, keeping its record (decoded
 * again there); false, logged, when it already runs there. */
static bool requeue_on_pool(struct worker *w, struct job *j)
{
    struct rpc_server *srv = j->conn->srv;
    if (w->blocking_pool) {
        log_err("call %#x asked for the blocking pool while on it", j->hdr.xid);
        return false;
    }
    atomic_fetch_add(&srv->st.pooled, 1);
    queue_push(&srv->pool, j);
    return true;
}

/* The procedure's handler, or the duplicate request cache's answer to a retransmission. */
static enum rpc_accept_status run_handler(struct job *j, struct rpc_call *call)
{
    enum rpc_accept_status st = RPC_SUCCESS;
    if (j->proc->flags & RPC_PROC_DRC) /* only these procedures ever take the cache's locks */
        st = rpc_call_cache_reply(call);
    return st == RPC_SUCCESS ? j->proc->fn(call) : st;
}

/* Handler results that answer nothing now: no reply, a deferred one (job_free forgets a
 * cache entry: nothing to keep), or a move to the blocking pool. True when the job is
 * gone; a requeue that cannot happen becomes SYSTEM_ERR in *st, to be answered. */
static bool job_handed_off(struct worker *w, struct job *j, enum rpc_accept_status *st)
{
    switch (*st) {
    case RPC_NO_REPLY:
    case RPC_DEFERRED:
        job_free(j);
        return true;
    case RPC_REQUEUE_BLOCKING:
        if (requeue_on_pool(w, j))
            return true;
        *st = RPC_SYSTEM_ERR;
        return false;
    default:
        return false;
    }
}

/* Send the reply to an RPCSEC_GSS call whose handler returned st with results at
 * GSS_RES_OFF: the verifier and the call's protection added (rpc_gss_enc_reply). */
static void send_gss_reply(struct worker *w, struct job *j, enum rpc_accept_status st, size_t res_len)
{
    struct rpc_server *srv = j->conn->srv;
    struct xdr_enc out;
    size_t len;
    if (st == RPC_AUTH_TOOWEAK) { /* denied: no verifier */
        xdr_enc_init(&out, w->reply + 4, w->reply_cap - 4);
        rpc_enc_auth_error(&out, j->hdr.xid, RPC_AUTH_TOOWEAK_STAT);
        len = xdr_enc_len(&out);
    } else {
        if (st == RPC_GARBAGE_ARGS)
            atomic_fetch_add(&srv->st.garbage, 1);
        len = rpc_gss_enc_reply(&j->gss, j->hdr.xid, st, w->reply, w->reply_cap, 4, GSS_RES_OFF,
                                st == RPC_SUCCESS ? res_len : 0);
    }
    if (len == 0) { /* RFC 2203 5.3.3.4: no verifier or wrapping, no reply */
        log_info("call %#x: no RPCSEC_GSS reply could be made; dropped", j->hdr.xid);
        return;
    }
    atomic_fetch_add(&srv->st.replies, 1);
    conn_send_record(j->conn, w, 4 + len, &j->peer, j->peer_len);
}

/* execute_job for an RPCSEC_GSS call: the handler's results go to GSS_RES_OFF and are
 * protected after it returns. */
static void execute_gss_job(struct worker *w, struct job *j, struct rpc_call *call)
{
    size_t cap = w->reply_cap - GSS_RES_OFF - RPC_GSS_REPLY_SLACK;
    xdr_enc_init(&call->res, w->reply + GSS_RES_OFF, cap);
    enum rpc_accept_status st = run_handler(j, call);
    if (job_handed_off(w, j, &st))
        return;
    size_t res_len = xdr_enc_len(&call->res);
    if (st == RPC_DRC_REPLAY) { /* the cached results are in place */
        st = j->drc.replay_len ? RPC_SUCCESS : RPC_SYSTEM_ERR;
        res_len = j->drc.replay_len;
    } else {
        drc_settle_gss(j, w, res_len, st);
    }
    send_gss_reply(w, j, st, res_len);
    job_free(j);
}

static void execute_job(struct worker *w, struct job *j)
{
    struct rpc_server *srv = j->conn->srv;
    struct rpc_call call = {
        .conn = j->conn,
        .peer = (const struct sockaddr *)(j->conn->udp ? &j->peer : &j->conn->peer),
        .peer_len = j->conn->udp ? j->peer_len : j->conn->peer_len,
        .xid = j->hdr.xid,
        .prog = j->hdr.prog,
        .vers = j->hdr.vers,
        .proc = j->hdr.proc,
        .cred = j->cred,
        .prog_ctx = j->prog->ctx,
        .worker = w->index,
        .on_blocking_pool = w->blocking_pool,
        .drc = &j->drc,
    };
    struct xdr_arena arena;
    const size_t hdr = 4 + RPC_ACCEPTED_HDR_LEN;

    if (!worker_reply(w)) {
        log_err("out of memory for a reply buffer; call %#x dropped", j->hdr.xid);
        job_free(j);
        return;
    }
    xdr_arena_init(&arena, w->arena, ARENA_SIZE);
    xdr_dec_init(&call.args, j->args, j->args_len, &arena);
    j->drc.job = j;
    j->drc.w = w;
    j->drc.replay_len = 0;
    if (j->gss.ctx) {
        execute_gss_job(w, j, &call);
        return;
    }
    xdr_enc_init(&call.res, w->reply + hdr, w->reply_cap - hdr);

    enum rpc_accept_status st = run_handler(j, &call);
    if (job_handed_off(w, j, &st))
        return;
    struct xdr_enc out;
    xdr_enc_init(&out, w->reply + 4, w->reply_cap - 4);
    size_t len;
    switch (st) {
    case RPC_SUCCESS:
        rpc_enc_accepted(&out, call.xid, RPC_SUCCESS);
        len = hdr + xdr_enc_len(&call.res);
        break;
    case RPC_DRC_REPLAY:
        if (j->drc.replay_len) { /* the cached reply is in place, header and all */
            atomic_fetch_add(&srv->st.replies, 1);
            conn_send_record(j->conn, w, 4 + j->drc.replay_len, &j->peer, j->peer_len);
            job_free(j);
            return;
        }
        log_err("call %#x: RPC_DRC_REPLAY without a cached reply", call.xid);
        st = RPC_SYSTEM_ERR;
        rpc_enc_accepted(&out, call.xid, st);
        len = 4 + xdr_enc_len(&out);
        break;
    case RPC_AUTH_TOOWEAK:
        rpc_enc_auth_error(&out, call.xid, RPC_AUTH_TOOWEAK_STAT);
        len = 4 + xdr_enc_len(&out);
        break;
    default:
        if (st == RPC_GARBAGE_ARGS)
            atomic_fetch_add(&srv->st.garbage, 1);
        rpc_enc_accepted(&out, call.xid, st);
        len = 4 + xdr_enc_len(&out);
        break;
    }
    drc_settle(j, w, len, st);
    atomic_fetch_add(&srv->st.replies, 1);
    conn_send_record(j->conn, w, len, &j->peer, j->peer_len);
    job_free(j);
}

/* ---------- deferred replies ---------- */

struct rpc_deferred {
    struct rpc_conn *conn; /* holds a reference */
    uint32_t xid;
    struct rpc_gss_call gss; /* an RPCSEC_GSS call's context (referenced) and numbers */
    struct sockaddr_storage peer; /* datagram sockets: who to answer */
    socklen_t peer_len;
};

struct rpc_deferred *rpc_call_defer(struct rpc_call *call)
{
    if (!call->conn) /* a client's callback service (clnt.c) answers synchronously only */
        return NULL;
    struct rpc_deferred *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->conn = call->conn;
    d->xid = call->xid;
    if (call->drc && call->drc->job)
        rpc_gss_call_keep(&d->gss, &call->drc->job->gss);
    if (call->peer && call->peer_len <= sizeof(d->peer)) {
        memcpy(&d->peer, call->peer, call->peer_len);
        d->peer_len = call->peer_len;
    }
    conn_get(d->conn);
    return d;
}

const struct sockaddr *rpc_deferred_peer(const struct rpc_deferred *d, socklen_t *len)
{
    *len = d->peer_len;
    return (const struct sockaddr *)&d->peer;
}

void rpc_deferred_drop(struct rpc_deferred *d)
{
    if (!d)
        return;
    conn_put(d->conn);
    rpc_gss_call_release(&d->gss);
    free(d);
}

#define DEFERRED_REPLY_MAX (64 * 1024)

/* rpc_deferred_reply for an RPCSEC_GSS call: results encoded at GSS_RES_OFF, then
 * protected; tmp->reply is freed and d dropped here. */
static int deferred_reply_gss(struct rpc_deferred *d, struct worker *tmp, enum rpc_accept_status st,
                              bool (*enc)(struct xdr_enc *x, const void *res), const void *res)
{
    struct xdr_enc x;
    int err = 0;
    xdr_enc_init(&x, tmp->reply + GSS_RES_OFF, tmp->reply_cap - GSS_RES_OFF - RPC_GSS_REPLY_SLACK);
    if (st == RPC_SUCCESS && enc && !enc(&x, res)) {
        st = RPC_SYSTEM_ERR;
        err = -EMSGSIZE;
    }
    size_t len = rpc_gss_enc_reply(&d->gss, d->xid, st, tmp->reply, tmp->reply_cap, 4, GSS_RES_OFF,
                                   st == RPC_SUCCESS ? xdr_enc_len(&x) : 0);
    if (len) {
        atomic_fetch_add(&d->conn->srv->st.replies, 1);
        conn_send_record(d->conn, tmp, 4 + len, &d->peer, d->peer_len);
    } else {
        err = -EPROTO;
    }
    free(tmp->reply);
    rpc_deferred_drop(d);
    return err;
}

int rpc_deferred_reply(struct rpc_deferred *d, enum rpc_accept_status st,
                       bool (*enc)(struct xdr_enc *x, const void *res), const void *res)
{
    struct worker tmp = { .reply_cap = DEFERRED_REPLY_MAX, .recyclable = false };
    int err = 0;
    tmp.reply = malloc(tmp.reply_cap);
    if (!tmp.reply) {
        rpc_deferred_drop(d);
        return -ENOMEM;
    }
    if (d->gss.ctx)
        return deferred_reply_gss(d, &tmp, st, enc, res);
    struct xdr_enc x;
    xdr_enc_init(&x, tmp.reply + 4, tmp.reply_cap - 4);
    bool ok = rpc_enc_accepted(&x, d->xid, st);
    if (ok && st == RPC_SUCCESS && enc && !enc(&x, res)) {
        /* results that do not fit: tell the client instead of sending half a reply */
        xdr_enc_init(&x, tmp.reply + 4, tmp.reply_cap - 4);
        ok = rpc_enc_accepted(&x, d->xid, RPC_SYSTEM_ERR);
        err = -EMSGSIZE;
    }
    if (ok) {
        atomic_fetch_add(&d->conn->srv->st.replies, 1);
        conn_send_record(d->conn, &tmp, 4 + xdr_enc_len(&x), &d->peer, d->peer_len);
    }
    free(tmp.reply);
    rpc_deferred_drop(d);
    return ok ? err : -EMSGSIZE;
}

/* Answer a call that never reaches a handler (bad version, unknown program, ...). */
static void reply_error(struct worker *w, struct rpc_conn *c, const struct job *j,
                        enum rpc_parse_result pr, uint32_t stat, uint32_t low, uint32_t high)
{
    const struct rpc_call_hdr *h = &j->hdr;
    if (!worker_reply(w))
        return;
    struct xdr_enc out;
    xdr_enc_init(&out, w->reply + 4, w->reply_cap - 4);
    if (pr == RPC_PARSE_RPC_MISMATCH)
        rpc_enc_rpc_mismatch(&out, h->xid);
    else if (pr == RPC_PARSE_AUTH_ERROR)
        rpc_enc_auth_error(&out, h->xid, h->auth_stat);
    else if (stat == RPC_PROG_MISMATCH)
        rpc_enc_prog_mismatch(&out, h->xid, low, high);
    else
        rpc_enc_accepted(&out, h->xid, stat);
    atomic_fetch_add(&c->srv->st.rejected, 1);
    conn_send_record(c, w, 4 + xdr_enc_len(&out), &j->peer, j->peer_len);
}

static const struct rpc_version_desc *find_vers(const struct rpc_program_desc *d, uint32_t vers)
{
    for (uint32_t i = 0; i < d->nvers; i++)
        if (d->versions[i].vers == vers)
            return &d->versions[i];
    return NULL;
}

/* The registration serving (prog, vers) with *v set, or, when the program is known but
 * not that version, any registration of it with *v NULL (for the PROG_MISMATCH range);
 * NULL when the program is unknown. */
static const struct prog_entry *find_prog(const struct rpc_server *srv, uint32_t prog,
                                          uint32_t vers, const struct rpc_version_desc **v)
{
    const struct prog_entry *known = NULL;
    *v = NULL;
    for (unsigned i = 0; i < srv->nprogs; i++) {
        const struct prog_entry *p = &srv->progs[i];
        if (p->desc->prog != prog)
            continue;
        if ((*v = find_vers(p->desc, vers)))
            return p;
        known = p;
    }
    return known;
}

/* A call with an RPCSEC_GSS credential (rpc_gss_accept): true when it goes on to its
 * procedure (j->args and j->gss set); otherwise it has been answered or dropped here,
 * or *pr says how reply_error answers it. */
static bool accept_gss(struct worker *w, struct rpc_conn *c, const struct rec_slice *rec, struct job *j,
                       enum rpc_parse_result *pr)
{
    struct xdr_enc out;
    enum rpc_auth_stat why = RPC_AUTH_BADCRED;
    if (!c->srv->gss || !worker_reply(w))
        return false;
    xdr_enc_init(&out, w->reply + 4, w->reply_cap - 4);
    switch (rpc_gss_accept(c->srv->gss, rec->data, rec->len, &j->hdr, &j->cred, &j->gss, &out, &why)) {
    case RPC_GSS_PROCEED:
        j->args = j->gss.args;
        j->args_len = j->gss.args_len;
        return true;
    case RPC_GSS_REPLIED:
        atomic_fetch_add(&c->srv->st.replies, 1);
        conn_send_record(c, w, 4 + xdr_enc_len(&out), &j->peer, j->peer_len);
        return false;
    case RPC_GSS_DENIED:
        j->hdr.auth_stat = why;
        *pr = RPC_PARSE_AUTH_ERROR;
        return true; /* reply_error answers */
    case RPC_GSS_GARBAGE: {
        size_t len = rpc_gss_enc_reply(&j->gss, j->hdr.xid, RPC_GARBAGE_ARGS, w->reply, w->reply_cap, 4,
                                       GSS_RES_OFF, 0);
        if (len)
            conn_send_record(c, w, 4 + len, &j->peer, j->peer_len);
        atomic_fetch_add(&c->srv->st.garbage, 1);
        rpc_gss_call_release(&j->gss);
        return false;
    }
    case RPC_GSS_DROP:
        break;
    }
    return false;
}

/* Parse a record and either answer it at once or return a job to execute. */
static struct job *prepare_call(struct worker *w, struct rpc_conn *c, struct rec_slice *rec,
                                const struct sockaddr_storage *from, socklen_t fromlen)
{
    struct rpc_server *srv = c->srv;
    struct job *j = malloc(sizeof(*j));
    if (!j) {
        rbuf_put(rec->buf);
        return NULL;
    }
    if (from) {
        memcpy(&j->peer, from, fromlen);
        j->peer_len = fromlen;
    }
    enum rpc_parse_result pr = rpc_parse_call(rec->data, rec->len, &j->hdr, &j->cred);
    const struct prog_entry *p = NULL;
    const struct rpc_version_desc *v = NULL;
    uint32_t stat = RPC_SUCCESS;

    if (pr == RPC_PARSE_CALL) {
        atomic_fetch_add(&srv->st.calls, 1);
        if (!(p = find_prog(srv, j->hdr.prog, j->hdr.vers, &v)))
            stat = RPC_PROG_UNAVAIL;
        else if (!v)
            stat = RPC_PROG_MISMATCH;
        else if (j->hdr.proc >= v->nprocs || !v->procs[j->hdr.proc].fn)
            stat = RPC_PROC_UNAVAIL;
        else if ((v->procs[j->hdr.proc].flags & RPC_PROC_NEED_AUTH_SYS) &&
                 j->cred.flavor == RPC_AUTH_NONE) {
            j->hdr.auth_stat = RPC_AUTH_TOOWEAK_STAT;
            pr = RPC_PARSE_AUTH_ERROR;
        }
    }
    memset(&j->gss, 0, sizeof(j->gss));
    if (pr == RPC_PARSE_CALL) {
        j->args = rec->data + j->hdr.args_off;
        j->args_len = rec->len - j->hdr.args_off;
    }
    if (pr == RPC_PARSE_CALL && stat == RPC_SUCCESS && j->cred.flavor == RPC_AUTH_GSS &&
        !accept_gss(w, c, rec, j, &pr)) {
        rbuf_put(rec->buf);
        free(j);
        return NULL;
    }
    if (pr == RPC_PARSE_CALL && stat == RPC_SUCCESS) {
        j->next = NULL;
        j->conn = c;
        j->rec = *rec;
        j->prog = p;
        j->proc = &v->procs[j->hdr.proc];
        j->drc = (struct rpc_drc_state){ .job = j };
        conn_get(c);
        atomic_fetch_add(&c->inflight, 1);
        return j;
    }
    if (pr == RPC_PARSE_REPLY)
        bc_on_reply(c, rec, w->arena, ARENA_SIZE);
    else if (pr != RPC_PARSE_DROP)
        reply_error(w, c, j, pr, stat, p ? p->vers_low : 0, p ? p->vers_high : 0);
    rbuf_put(rec->buf);
    free(j);
    return NULL;
}

/* Hand a job to an idle loop (claiming it), or return false. */
static bool handoff(struct rpc_server *srv, struct loop *self, struct job *j)
{
    for (unsigned i = 0; i < srv->cfg.nloops; i++) {
        struct loop *l = &srv->loops[i];
        bool expect = true;
        if (l == self || !atomic_load_explicit(&l->idle, memory_order_relaxed))
            continue;
        if (!atomic_compare_exchange_strong(&l->idle, &expect, false))
            continue;
        queue_push(&l->inbox, j);
        wake_loop(l);
        atomic_fetch_add(&srv->st.handoffs, 1);
        return true;
    }
    return false;
}

static void dispatch_jobs(struct loop *self, struct job *first)
{
    struct rpc_server *srv = self->srv;
    struct job *inline_head = NULL, **inline_tail = &inline_head;

    for (struct job *j = first, *next; j; j = next) {
        next = j->next;
        j->next = NULL;
        if (j->proc->flags & RPC_PROC_BLOCKING) {
            atomic_fetch_add(&srv->st.pooled, 1);
            queue_push(&srv->pool, j);
        } else if (next && handoff(srv, self, j)) {
            /* the last job always stays here: this thread has nothing better to do */
        } else {
            *inline_tail = j;
            inline_tail = &j->next;
        }
    }
    /* Several replies to one connection: batch them into one send. A single reply is
     * sent at once (no copy, no added latency). */
    struct worker *w = &self->w;
    if (inline_head && inline_head->next && w->batch) {
        w->batch_conn = inline_head->conn;
        conn_get(w->batch_conn);
    }
    for (struct job *j = inline_head, *next; j; j = next) {
        next = j->next;
        execute_job(w, j);
    }
    if (w->batch_conn) {
        batch_flush(w);
        conn_put(w->batch_conn);
        w->batch_conn = NULL;
    }
}

#define UDP_MAX_DATAGRAM 65536

/* Each datagram is one record; read a bounded batch, then dispatch them. */
static void udp_on_readable(struct rpc_conn *c)
{
    struct loop *l = c->loop;
    struct job *head = NULL, **tail = &head;

    for (int i = 0; i < 32; i++) {
        struct rbuf *b = rbuf_new(UDP_MAX_DATAGRAM);
        if (!b)
            break;
        struct sockaddr_storage from;
        socklen_t fromlen = sizeof(from);
        ssize_t n = recvfrom(c->fd, b->data, b->cap, MSG_DONTWAIT | MSG_TRUNC,
                             (struct sockaddr *)&from, &fromlen);
        if (n < 0 || (size_t)n > b->cap) { /* EAGAIN, or truncated: drop */
            rbuf_put(b);
            if (n < 0)
                break;
            continue;
        }
        struct rec_slice rec = { .buf = b, .data = b->data, .len = (size_t)n };
        struct job *j = prepare_call(&l->w, c, &rec, &from, fromlen);
        if (j) {
            *tail = j;
            tail = &j->next;
        }
    }
    if (head)
        dispatch_jobs(l, head);
}

static void conn_on_readable(struct rpc_conn *c)
{
    if (c->udp) {
        udp_on_readable(c);
        return;
    }
    struct loop *l = c->loop;
    struct job *head = NULL, **tail = &head;
    const char *close_why = NULL;

    for (int round = 0; round < MAX_READS_PER_EVENT && !close_why; round++) {
        size_t avail;
        uint8_t *space = rec_reader_space(&c->rr, &avail);
        if (!space) {
            close_why = "out of memory";
            break;
        }
        ssize_t n = read(c->fd, space, avail);
        if (n == 0) {
            close_why = "peer closed";
            break;
        }
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR)
                close_why = strerror(errno);
            break;
        }
        rec_reader_filled(&c->rr, (size_t)n);
        struct rec_slice rec;
        enum rec_status rs;
        while ((rs = rec_reader_next(&c->rr, &rec)) == REC_OK) {
            struct job *j = prepare_call(&l->w, c, &rec, NULL, 0);
            if (j) {
                *tail = j;
                tail = &j->next;
            }
        }
        if (rs == REC_TOO_BIG)
            close_why = "record larger than the maximum";
        if ((size_t)n < avail)
            break; /* drained the socket */
    }
    if (atomic_load(&c->inflight) >= c->srv->cfg.max_inflight) {
        pthread_mutex_lock(&c->send_mu);
        c->read_paused = true;
        conn_update_events_locked(c);
        pthread_mutex_unlock(&c->send_mu);
    }
    if (head)
        dispatch_jobs(l, head);
    if (close_why)
        conn_close(c, close_why);
}

/* ---------- accepting ---------- */

/* A connection (or a UDP socket) registered with one of the loops; NULL on failure
 * (fd closed). */
static struct rpc_conn *conn_new(struct rpc_server *srv, int fd, const struct sockaddr_storage *ss,
                                 socklen_t sl, bool udp)
{
    struct rpc_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        close(fd);
        return NULL;
    }
    c->tag.kind = EV_CONN;
    c->fd = fd;
    c->srv = srv;
    c->udp = udp;
    if (ss)
        c->peer = *ss;
    c->peer_len = sl;
    atomic_init(&c->refs, 1);
    atomic_init(&c->inflight, 0);
    rec_reader_init(&c->rr, srv->cfg.max_record);
    pthread_mutex_init(&c->send_mu, NULL);
    bc_conn_init(c, &srv->bc);
    c->loop = &srv->loops[atomic_fetch_add(&srv->next_loop, 1) % srv->cfg.nloops];
    c->events = EPOLLIN;
    pthread_mutex_lock(&srv->conns_mu);
    c->next = srv->conns;
    if (c->next)
        c->next->prev = c;
    srv->conns = c;
    pthread_mutex_unlock(&srv->conns_mu);
    struct epoll_event e = { .events = EPOLLIN, .data.ptr = &c->tag };
    if (epoll_ctl(c->loop->epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
        log_warn("epoll_ctl: %s", strerror(errno));
        conn_close(c, "epoll_ctl failed");
        return NULL;
    }
    return c;
}

static void accept_conns(struct rpc_server *srv, struct listener *ls)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(ls->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                log_warn("accept: %s", strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct rpc_conn *c = conn_new(srv, fd, &ss, sl, false);
        if (!c)
            continue;
        atomic_fetch_add(&srv->st.accepted, 1);
        log_debug("connection fd %d accepted", fd);
    }
}

/* ---------- threads ---------- */

static void *loop_main(void *arg)
{
    struct loop *l = arg;
    struct rpc_server *srv = l->srv;
    struct epoll_event evs[64];

    while (!atomic_load(&srv->stopping)) {
        struct job *j = queue_take_all(&l->inbox);
        if (j) {
            for (struct job *next; j; j = next) {
                next = j->next;
                execute_job(&l->w, j);
            }
            continue;
        }
        atomic_store(&l->idle, true);
        /* a job pushed between take_all and here also wrote the eventfd: no lost wakeup */
        int n = epoll_wait(l->epfd, evs, 64, -1);
        atomic_store(&l->idle, false);
        for (int i = 0; i < n; i++) {
            struct ev_tag *t = evs[i].data.ptr;
            if (t->kind == EV_WAKE) {
                uint64_t v;
                ssize_t r = read(l->evfd, &v, sizeof(v));
                (void)r;
            } else if (t->kind == EV_LISTENER) {
                accept_conns(srv, (struct listener *)t);
            } else {
                struct rpc_conn *c = (struct rpc_conn *)t;
                conn_get(c); /* stay alive through this event even if closed below */
                if (evs[i].events & EPOLLOUT)
                    conn_flush(c);
                if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                    conn_on_readable(c);
                conn_put(c);
            }
        }
    }
    return NULL;
}

static void *pool_main(void *arg)
{
    struct pool_thread *pt = arg;
    struct rpc_server *srv = pt->srv;
    struct job_queue *q = &srv->pool;

    for (;;) {
        pthread_mutex_lock(&q->mu);
        while (!q->head && !atomic_load(&srv->stopping))
            pthread_cond_wait(&q->cv, &q->mu);
        struct job *j = q->head;
        if (j) {
            q->head = j->next;
            if (!q->head)
                q->tail = NULL;
        }
        pthread_mutex_unlock(&q->mu);
        if (!j)
            return NULL; /* stopping and nothing left */
        execute_job(&pt->w, j);
    }
}

/* ---------- lifecycle ---------- */

struct rpc_server *rpc_server_new(const struct rpc_server_config *cfg)
{
    struct rpc_server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return NULL;
    srv->cfg = *cfg;
    if (!srv->cfg.nloops) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        srv->cfg.nloops = n > 0 ? (unsigned)n : 2;
    }
    if (!srv->cfg.npool)
        srv->cfg.npool = 8;
    if (!srv->cfg.max_record)
        srv->cfg.max_record = (4u << 20) + (64u << 10);
    if (!srv->cfg.max_reply)
        srv->cfg.max_reply = (1u << 20) + (64u << 10);
    if (!srv->cfg.max_inflight)
        srv->cfg.max_inflight = 256;
    struct drc_config dc = { .max_bytes = srv->cfg.drc_max_bytes,
                             .max_entries = srv->cfg.drc_max_entries,
                             .max_reply = DRC_REPLY_MAX };
    if (!(srv->drc = drc_new(&dc))) {
        free(srv);
        return NULL;
    }
    queue_init(&srv->pool);
    pthread_mutex_init(&srv->conns_mu, NULL);
    bc_server_init(&srv->bc);
    srv->gss = rpc_gss_new(); /* NULL (no memory): RPCSEC_GSS calls are dropped */
    return srv;
}

int rpc_server_add_program(struct rpc_server *srv, const struct rpc_program_desc *prog, void *ctx)
{
    if (srv->nprogs == MAX_PROGRAMS || srv->started || !prog->nvers)
        return -EINVAL;
    uint32_t low = UINT32_MAX, high = 0;
    for (uint32_t i = 0; i < prog->nvers; i++) {
        uint32_t v = prog->versions[i].vers;
        const struct rpc_version_desc *served;
        if (find_prog(srv, prog->prog, v, &served) && served)
            return -EEXIST; /* versions of one program must be disjoint */
        low = v < low ? v : low;
        high = v > high ? v : high;
    }
    /* every registration of the number reports the range over all of them */
    for (unsigned i = 0; i < srv->nprogs; i++) {
        struct prog_entry *o = &srv->progs[i];
        if (o->desc->prog != prog->prog)
            continue;
        low = o->vers_low < low ? o->vers_low : low;
        high = o->vers_high > high ? o->vers_high : high;
    }
    struct prog_entry *p = &srv->progs[srv->nprogs++];
    p->desc = prog;
    p->ctx = ctx;
    for (unsigned i = 0; i < srv->nprogs; i++) {
        if (srv->progs[i].desc->prog == prog->prog) {
            srv->progs[i].vers_low = low;
            srv->progs[i].vers_high = high;
        }
    }
    return 0;
}

int rpc_server_listen(struct rpc_server *srv, const struct sockaddr *addr, socklen_t len, int type)
{
    if (srv->nlisteners == MAX_LISTENERS)
        return -ENOSPC;
    int fd = socket(addr->sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (addr->sa_family == AF_INET6) /* "::" must not take the IPv4 port too */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, addr, len) < 0 || (type == SOCK_STREAM && listen(fd, 1024) < 0)) {
        int err = -errno;
        close(fd);
        return err;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        srv->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                  : ((struct sockaddr_in6 *)&ss)->sin6_port);
    struct listener *ls = &srv->listeners[srv->nlisteners++];
    ls->tag.kind = EV_LISTENER;
    ls->fd = fd;
    ls->udp = type == SOCK_DGRAM;
    return 0;
}

int rpc_server_listen_str(struct rpc_server *srv, const char *host, uint16_t port, int type)
{
    struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
    struct sockaddr_in s4 = { .sin_family = AF_INET, .sin_port = htons(port) };
    if (inet_pton(AF_INET, host, &s4.sin_addr) == 1)
        return rpc_server_listen(srv, (struct sockaddr *)&s4, sizeof(s4), type);
    if (inet_pton(AF_INET6, host, &s6.sin6_addr) == 1)
        return rpc_server_listen(srv, (struct sockaddr *)&s6, sizeof(s6), type);
    return -EINVAL;
}

uint16_t rpc_server_port(const struct rpc_server *srv) { return srv->port; }

static int loop_init(struct rpc_server *srv, struct loop *l, int index)
{
    l->srv = srv;
    l->wake_tag.kind = EV_WAKE;
    queue_init(&l->inbox);
    atomic_init(&l->idle, false);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->epfd < 0 || l->evfd < 0)
        return -errno;
    struct epoll_event e = { .events = EPOLLIN, .data.ptr = &l->wake_tag };
    if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->evfd, &e) < 0)
        return -errno;
    int err = worker_init(&l->w, index, srv->cfg.max_reply);
    if (!err && !(l->w.batch = malloc(BATCH_MAX)))
        err = -ENOMEM;
    return err;
}

int rpc_server_start(struct rpc_server *srv)
{
    int err;
    srv->loops = calloc(srv->cfg.nloops, sizeof(*srv->loops));
    srv->pool_threads = calloc(srv->cfg.npool, sizeof(*srv->pool_threads));
    if (!srv->loops || !srv->pool_threads)
        return -ENOMEM;
    for (unsigned i = 0; i < srv->cfg.nloops; i++)
        if ((err = loop_init(srv, &srv->loops[i], (int)i)) < 0)
            return err;
    /* TCP listeners live in loop 0's set; accepted connections and UDP sockets are
     * spread over all loops */
    for (unsigned i = 0; i < srv->nlisteners; i++) {
        if (srv->listeners[i].udp) {
            int fd = dup(srv->listeners[i].fd); /* the conn owns and closes its fd */
            if (fd < 0 || !conn_new(srv, fd, NULL, 0, true))
                return -errno;
            continue;
        }
        struct epoll_event e = { .events = EPOLLIN, .data.ptr = &srv->listeners[i].tag };
        if (epoll_ctl(srv->loops[0].epfd, EPOLL_CTL_ADD, srv->listeners[i].fd, &e) < 0)
            return -errno;
    }
    for (unsigned i = 0; i < srv->cfg.npool; i++) {
        struct pool_thread *pt = &srv->pool_threads[i];
        pt->srv = srv;
        if ((err = worker_init(&pt->w, (int)(srv->cfg.nloops + i), srv->cfg.max_reply)) < 0)
            return err;
        pt->w.blocking_pool = true;
        if ((err = pthread_create(&pt->thread, NULL, pool_main, pt)) != 0)
            return -err;
    }
    if ((err = bc_server_start(&srv->bc)) < 0)
        return err;
    for (unsigned i = 0; i < srv->cfg.nloops; i++)
        if ((err = pthread_create(&srv->loops[i].thread, NULL, loop_main, &srv->loops[i])) != 0)
            return -err;
    srv->started = true;
    return 0;
}

void rpc_server_stop(struct rpc_server *srv)
{
    atomic_store(&srv->stopping, true);
    /* the timer stops in rpc_server_destroy: a mutex is not signal-safe */
    if (!srv->loops)
        return;
    for (unsigned i = 0; i < srv->cfg.nloops; i++)
        if (srv->loops[i].evfd > 0)
            wake_loop(&srv->loops[i]);
    pthread_mutex_lock(&srv->pool.mu);
    pthread_cond_broadcast(&srv->pool.cv);
    pthread_mutex_unlock(&srv->pool.mu);
}

/* After the threads are gone: drop queued jobs and close the remaining connections. */
static void loop_drain(struct loop *l)
{
    struct job *j = queue_take_all(&l->inbox);
    for (struct job *next; j; j = next) {
        next = j->next;
        job_free(j);
    }
}

static void close_all_conns(struct rpc_server *srv)
{
    for (;;) {
        pthread_mutex_lock(&srv->conns_mu);
        struct rpc_conn *c = srv->conns;
        pthread_mutex_unlock(&srv->conns_mu);
        if (!c)
            return;
        conn_close(c, "server shutdown");
    }
}

void rpc_server_destroy(struct rpc_server *srv)
{
    if (!srv)
        return;
    rpc_server_stop(srv);
    if (srv->started) {
        for (unsigned i = 0; i < srv->cfg.nloops; i++)
            pthread_join(srv->loops[i].thread, NULL);
        for (unsigned i = 0; i < srv->cfg.npool; i++)
            pthread_join(srv->pool_threads[i].thread, NULL);
    }
    bc_server_stop(&srv->bc);
    for (unsigned i = 0; i < srv->nlisteners; i++)
        close(srv->listeners[i].fd);
    for (unsigned i = 0; srv->loops && srv->started && i < srv->cfg.nloops; i++)
        loop_drain(&srv->loops[i]);
    struct job *pj = queue_take_all(&srv->pool);
    for (struct job *next; pj; pj = next) {
        next = pj->next;
        job_free(pj);
    }
    close_all_conns(srv); /* back-channel calls still outstanding get -ECONNRESET */
    bc_server_fini(&srv->bc);
    for (unsigned i = 0; srv->loops && i < srv->cfg.nloops; i++) {
        struct loop *l = &srv->loops[i];
        if (l->epfd > 0)
            close(l->epfd);
        if (l->evfd > 0)
            close(l->evfd);
        worker_fini(&l->w);
    }
    for (unsigned i = 0; srv->pool_threads && i < srv->cfg.npool; i++)
        worker_fini(&srv->pool_threads[i].w);
    struct drc_stats ds;
    drc_get_stats(srv->drc, &ds);
    if (ds.hits || ds.in_progress_drops || ds.inserts)
        log_info("duplicate request cache: hits %llu, in progress dropped %llu, inserted %llu, "
                 "evicted %llu",
                 (unsigned long long)ds.hits, (unsigned long long)ds.in_progress_drops,
                 (unsigned long long)ds.inserts, (unsigned long long)ds.evictions);
    drc_free(srv->drc);
    rpc_gss_free(srv->gss);
    free(srv->loops);
    free(srv->pool_threads);
    free(srv);
}

void rpc_server_get_stats(struct rpc_server *srv, struct rpc_server_stats *st)
{
    st->calls = atomic_load(&srv->st.calls);
    st->replies = atomic_load(&srv->st.replies);
    st->handoffs = atomic_load(&srv->st.handoffs);
    st->pooled = atomic_load(&srv->st.pooled);
    st->garbage = atomic_load(&srv->st.garbage);
    st->rejected = atomic_load(&srv->st.rejected);
    st->conns_accepted = atomic_load(&srv->st.accepted);
    st->conns_closed = atomic_load(&srv->st.closed);
    st->backchannel_calls = atomic_load(&srv->bc.calls);
    st->backchannel_replies = atomic_load(&srv->bc.replies);
    st->backchannel_dropped = atomic_load(&srv->bc.dropped);
    struct drc_stats ds;
    drc_get_stats(srv->drc, &ds);
    st->drc_hits = ds.hits;
    st->drc_in_progress = ds.in_progress_drops;
    st->drc_inserts = ds.inserts;
    st->drc_evictions = ds.evictions;
}
