/*
 * Server-side back channel (backchannel.h): calls from the server to a client on the
 * client's own connection, their replies matched by xid, timeouts, and close
 * notifications. server.c calls in at the hooks declared in conn.h: connection setup,
 * close and free, and every REPLY record a loop reads.
 *
 * Locking: a connection's bc_mu guards its outstanding calls and notifications; the
 * timer's mutex guards the list of connections with calls ("armed"), and is taken
 * before a bc_mu, never after. No completion runs with a lock held.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "rpc/conn.h"
#include "rpc/msg.h"
#include "util/log.h"

/* An outstanding call, on its connection's bc_calls list. */
struct bc_call {
    struct bc_call *next;
    uint32_t xid;
    int64_t deadline_ms;
    rpc_conn_done_fn done;
    void *ctx;
};

struct close_note {
    struct close_note *next;
    rpc_conn_close_fn fn;
    void *ctx;
};

struct rpc_conn *rpc_conn_get(struct rpc_conn *c)
{
    conn_get(c);
    return c;
}

void rpc_conn_put(struct rpc_conn *c)
{
    if (c)
        conn_put(c);
}

uint64_t rpc_conn_id(const struct rpc_conn *c) { return c->id; }

const struct sockaddr *rpc_conn_peer(const struct rpc_conn *c, socklen_t *len)
{
    *len = c->udp ? 0 : c->peer_len;
    return (const struct sockaddr *)&c->peer;
}

bool rpc_conn_connected(const struct rpc_conn *c)
{
    struct rpc_conn *m = (struct rpc_conn *)c; /* locking is not a modification */
    pthread_mutex_lock(&m->bc_mu);
    bool up = !m->bc_down;
    pthread_mutex_unlock(&m->bc_mu);
    return up;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void bc_complete_all(struct bc_call *list, int err)
{
    for (struct bc_call *b = list, *next; b; b = next) {
        next = b->next;
        b->done(b->ctx, err, NULL);
        free(b);
    }
}

/* Put c on the timer's list (it holds a reference there) and wake the timer when this
 * deadline comes before the one it sleeps towards. */
static void bc_timer_arm(struct bc_server *t, struct rpc_conn *c, int64_t deadline)
{
    pthread_mutex_lock(&t->mu);
    if (!c->bc_armed) {
        c->bc_armed = true;
        conn_get(c);
        c->bc_armed_next = t->armed;
        t->armed = c;
    }
    if (deadline < t->next_wake_ms)
        pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

/* One pass over the armed connections (t->mu held): move expired calls to *expired,
 * take connections without calls off the list, and return the earliest deadline left.
 * Lock order: bc_server.mu, then a connection's bc_mu. Dropping the list's reference
 * here is safe: a last conn_put only frees memory (leaf locks, no callbacks). */
static int64_t bc_timer_scan(struct bc_server *t, int64_t now, struct bc_call **expired)
{
    int64_t next = INT64_MAX;
    for (struct rpc_conn **cp = &t->armed; *cp;) {
        struct rpc_conn *c = *cp;
        pthread_mutex_lock(&c->bc_mu);
        for (struct bc_call **pp = &c->bc_calls; *pp;) {
            struct bc_call *b = *pp;
            if (b->deadline_ms <= now) {
                *pp = b->next;
                b->next = *expired;
                *expired = b;
            } else {
                next = b->deadline_ms < next ? b->deadline_ms : next;
                pp = &b->next;
            }
        }
        bool idle = !c->bc_calls;
        pthread_mutex_unlock(&c->bc_mu);
        if (idle) {
            *cp = c->bc_armed_next;
            c->bc_armed = false;
            c->bc_armed_next = NULL;
            conn_put(c);
        } else {
            cp = &c->bc_armed_next;
        }
    }
    return next;
}

static void *bc_timer_main(void *arg)
{
    struct bc_server *t = arg;

    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        struct bc_call *expired = NULL;
        t->next_wake_ms = bc_timer_scan(t, mono_ms(), &expired);
        if (expired) { /* complete outside every lock, then look again */
            pthread_mutex_unlock(&t->mu);
            bc_complete_all(expired, -ETIMEDOUT);
            pthread_mutex_lock(&t->mu);
            continue;
        }
        if (t->next_wake_ms == INT64_MAX) {
            pthread_cond_wait(&t->cv, &t->mu);
        } else {
            struct timespec ts = { .tv_sec = t->next_wake_ms / 1000,
                                   .tv_nsec = (t->next_wake_ms % 1000) * 1000000 };
            pthread_cond_timedwait(&t->cv, &t->mu, &ts);
        }
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

#define BC_CALL_SMALL (64 * 1024)
#define BC_CALL_MAX ((1u << 20) + (64u << 10))

/* Encode the call record (mark included) into a fresh buffer sized for it. */
static uint8_t *bc_encode(uint32_t xid, uint32_t prog, uint32_t vers, uint32_t proc,
                          const struct rpc_cred *cred, bool (*enc)(struct xdr_enc *, const void *),
                          const void *args, size_t *cap, size_t *len)
{
    const size_t sizes[2] = { BC_CALL_SMALL, BC_CALL_MAX };
    for (int i = 0; i < 2; i++) {
        uint8_t *buf = malloc(sizes[i]);
        if (!buf)
            return NULL;
        struct xdr_enc x;
        xdr_enc_init(&x, buf + 4, sizes[i] - 4);
        if (rpc_enc_call(&x, xid, prog, vers, proc, cred) && (!enc || enc(&x, args))) {
            *cap = sizes[i];
            *len = 4 + xdr_enc_len(&x);
            return buf;
        }
        free(buf);
    }
    *len = 1; /* tells the caller: too big, not out of memory */
    return NULL;
}

int rpc_conn_call(struct rpc_conn *c, uint32_t prog, uint32_t vers, uint32_t proc,
                  const struct rpc_cred *cred, bool (*enc)(struct xdr_enc *x, const void *args),
                  const void *args, unsigned timeout_ms, rpc_conn_done_fn done, void *ctx)
{
    if (!c || !done)
        return -EINVAL;
    if (c->udp)
        return -EOPNOTSUPP; /* a UDP socket has no one client to call back */
    if (!rpc_conn_connected(c))
        return -ENOTCONN;
    struct bc_call *b = malloc(sizeof(*b));
    if (!b)
        return -ENOMEM;
    int64_t deadline = mono_ms() + timeout_ms;
    b->xid = atomic_fetch_add(&c->bc_next_xid, 1);
    b->deadline_ms = deadline;
    b->done = done;
    b->ctx = ctx;
    size_t len = 0;
    struct worker tmp = { .recyclable = false }; /* a partial send copies its tail */
    tmp.reply = bc_encode(b->xid, prog, vers, proc, cred, enc, args, &tmp.reply_cap, &len);
    if (!tmp.reply) {
        free(b);
        return len ? -EMSGSIZE : -ENOMEM;
    }
    /* registered before sending: the reply may arrive before send() returns */
    pthread_mutex_lock(&c->bc_mu);
    bool down = c->bc_down;
    if (!down) {
        b->next = c->bc_calls;
        c->bc_calls = b;
    }
    pthread_mutex_unlock(&c->bc_mu);
    if (down) { /* closed meanwhile (the server may be gone: do not touch it) */
        free(tmp.reply);
        free(b);
        return -ENOTCONN;
    }
    atomic_fetch_add(&c->bcs->calls, 1);
    bc_timer_arm(c->bcs, c, deadline);
    /* b may be completed and freed from here on */
    conn_send_record(c, &tmp, len, NULL, 0);
    free(tmp.reply);
    return 0;
}

/* The connection closed: complete its calls, then run its close notifications. */
void bc_conn_down(struct rpc_conn *c)
{
    pthread_mutex_lock(&c->bc_mu);
    c->bc_down = true;
    struct bc_call *calls = c->bc_calls;
    struct close_note *notes = c->notes;
    c->bc_calls = NULL;
    c->notes = NULL;
    c->notifying = true;
    c->notify_thread = pthread_self();
    pthread_mutex_unlock(&c->bc_mu);

    bc_complete_all(calls, -ECONNRESET);
    for (struct close_note *n = notes, *next; n; n = next) {
        next = n->next;
        n->fn(n->ctx, c);
        free(n);
    }
    pthread_mutex_lock(&c->bc_mu);
    c->notifying = false;
    pthread_cond_broadcast(&c->notify_cv);
    pthread_mutex_unlock(&c->bc_mu);
}

int rpc_conn_on_close(struct rpc_conn *c, rpc_conn_close_fn fn, void *ctx)
{
    struct close_note *n = malloc(sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->fn = fn;
    n->ctx = ctx;
    n->next = NULL;
    pthread_mutex_lock(&c->bc_mu);
    bool down = c->bc_down;
    if (!down) { /* appended: notifications run in registration order */
        struct close_note **pp = &c->notes;
        while (*pp)
            pp = &(*pp)->next;
        *pp = n;
    }
    pthread_mutex_unlock(&c->bc_mu);
    if (down) {
        free(n);
        return -ENOTCONN;
    }
    return 0;
}

int rpc_conn_cancel_on_close(struct rpc_conn *c, rpc_conn_close_fn fn, void *ctx)
{
    pthread_mutex_lock(&c->bc_mu);
    for (struct close_note **pp = &c->notes; *pp; pp = &(*pp)->next) {
        struct close_note *n = *pp;
        if (n->fn == fn && n->ctx == ctx) {
            *pp = n->next;
            pthread_mutex_unlock(&c->bc_mu);
            free(n);
            return 0;
        }
    }
    /* it may be running right now: wait, so the caller can free ctx afterwards */
    while (c->notifying && !pthread_equal(c->notify_thread, pthread_self()))
        pthread_cond_wait(&c->notify_cv, &c->bc_mu);
    pthread_mutex_unlock(&c->bc_mu);
    return -ENOENT;
}

/* A REPLY on a server connection answers one of our back-channel calls: match its xid
 * and complete that call. Runs on the loop thread between reads, when the loop worker's
 * arena is free: it backs the results cursor. Unknown xids are dropped (a late reply
 * to a call that timed out, a duplicate, or garbage). */
void bc_on_reply(struct rpc_conn *c, const struct rec_slice *rec, uint8_t *arena_mem, size_t arena_size)
{
    uint32_t xid;
    size_t off;
    int err = rpc_reply_results(rec->data, rec->len, &xid, &off);
    struct bc_call *call = NULL;

    if (!c->udp) {
        pthread_mutex_lock(&c->bc_mu);
        for (struct bc_call **pp = &c->bc_calls; *pp; pp = &(*pp)->next) {
            if ((*pp)->xid == xid) {
                call = *pp;
                *pp = call->next;
                break;
            }
        }
        pthread_mutex_unlock(&c->bc_mu);
    }
    if (!call) {
        atomic_fetch_add(&c->bcs->dropped, 1);
        log_debug("RPC reply xid %#x matches no call on this connection, dropped", xid);
        return;
    }
    atomic_fetch_add(&c->bcs->replies, 1);
    struct xdr_arena arena;
    struct xdr_dec res;
    xdr_arena_init(&arena, arena_mem, arena_size);
    if (!err)
        xdr_dec_init(&res, rec->data + off, rec->len - off, &arena);
    call->done(call->ctx, err, err ? NULL : &res);
    free(call);
}

/* ---------- hooks for server.c ---------- */

void bc_server_init(struct bc_server *b)
{
    pthread_mutex_init(&b->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cv, &ca);
    pthread_condattr_destroy(&ca);
    b->next_wake_ms = INT64_MAX;
    if (getrandom(&b->xid_seed, sizeof(b->xid_seed), GRND_NONBLOCK) != sizeof(b->xid_seed))
        b->xid_seed = (uint32_t)mono_ms() ^ (uint32_t)getpid();
}

int bc_server_start(struct bc_server *b)
{
    int err = pthread_create(&b->thread, NULL, bc_timer_main, b);
    if (err)
        return -err;
    b->running = true;
    return 0;
}

void bc_server_stop(struct bc_server *b)
{
    if (!b->running)
        return;
    pthread_mutex_lock(&b->mu);
    b->stop = true;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->thread, NULL);
    b->running = false;
}

void bc_server_fini(struct bc_server *b)
{
    for (struct rpc_conn *c = b->armed, *next; c; c = next) {
        next = c->bc_armed_next;
        c->bc_armed = false;
        conn_put(c);
    }
    b->armed = NULL;
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
}

void bc_conn_init(struct rpc_conn *c, struct bc_server *b)
{
    c->bcs = b;
    pthread_mutex_init(&c->bc_mu, NULL);
    pthread_cond_init(&c->notify_cv, NULL);
    c->id = atomic_fetch_add(&b->next_conn_id, 1) + 1;
    /* xids of our calls: a per-connection sequence from a random start */
    atomic_init(&c->bc_next_xid, b->xid_seed + (uint32_t)c->id * 0x9e3779b9u);
}

void bc_conn_fini(struct rpc_conn *c)
{
    for (struct close_note *n = c->notes, *next; n; n = next) {
        next = n->next;
        free(n);
    }
    pthread_mutex_destroy(&c->bc_mu);
    pthread_cond_destroy(&c->notify_cv);
}
