/*
 * The callback thread: turns the state layer's work (state_tick / state_work_take) into
 * callbacks through cb/ — CB_RECALL of delegations, CB_NULL probes of 4.0 callback
 * paths — and reports the outcome back to state/. It wakes every second for the timers
 * and at once when kicked (new work queued: state_params.work_ready, SETCLIENTID_CONFIRM,
 * a new back channel). The callbacks themselves are asynchronous (cb/ runs them on its
 * own thread), so one unreachable client never holds up the others.
 *
 * Back-channel connections: state/ holds a reference to each connection bound to a
 * session (cb_conn_hold / cb_conn_release as state_params.conn_hold / conn_release);
 * nfs4_cb_conn_seen() registers a close notification on each connection once, which
 * tells state/ the connection is gone (state_conn_dead) so it drops it and falls back to
 * another back connection or reports the callback path down.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "cb/cb.h"
#include "nfs4/nfs4_internal.h"
#include "rpc/backchannel.h"
#include "util/log.h"

#define NFS4_CB_TICK_MS 1000u

struct nfs4_cb_thread {
    struct nfs4_server *srv;
    struct cb_service *cb;
};

static void count(uint64_t *counter)
{
    __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

/* ---- targets ---- */

/* Where to call the client: 4.0 its SETCLIENTID address, 4.1+ its newest session with a
 * usable back channel (*session referenced: the caller puts it), called with the
 * credential the client chose (kept in *sec). False: no path. */
bool nfs4_cb_target(struct state_client *client, struct cb_target *t, struct state_session **session,
                    struct state_cb_sec *sec)
{
    memset(t, 0, sizeof(*t));
    *session = NULL;
    t->minorversion = state_client_minorversion(client);
    if (t->minorversion == 0)
        return state_client_cb_info(client, &t->info);
    if (!(*session = state_client_back_session(client)))
        return false;
    t->session = *session;
    state_session_cb_sec(*session, sec);
    t->sec = sec;
    return true;
}

/* ---- callbacks about one delegation (CB_RECALL, CB_GETATTR) ---- */

/* The completion's context: the server and a reference on the delegation. */
struct nfs4_deleg_call {
    struct nfs4_server *srv;
    struct state_stid *deleg;
};

/* Submits one callback about call->deleg on file fh (its wire filehandle). */
typedef int (*nfs4_deleg_send_fn)(struct cb_service *cb, const struct cb_target *t, struct nfs4_deleg_call *call,
                                  const void *fh, size_t fh_len, cb_done_fn done);

/* Sends the callback to the delegation's holder; 0, or an error (no path, no memory, the
 * service refused it) after which `done` will not run. */
static int nfs4_deleg_callback(struct nfs4_server *srv, struct cb_service *cb, const struct state_work *w,
                               nfs4_deleg_send_fn send, cb_done_fn done)
{
    struct cb_target t;
    struct state_session *session;
    struct state_cb_sec sec;
    if (!nfs4_cb_target(w->client, &t, &session, &sec))
        return -ENOTCONN;
    struct nfs4_deleg_call *call = malloc(sizeof(*call));
    int err = -ENOMEM;
    if (call) {
        call->srv = srv;
        call->deleg = state_stid_ref(w->deleg);
        size_t fh_len;
        const void *fh = state_stid_file_key(call->deleg, &fh_len); /* the wire filehandle */
        err = send(cb, &t, call, fh, fh_len, done);
        if (err) {
            state_stid_put(call->deleg);
            free(call);
        }
    }
    state_session_put(session);
    return err;
}

static void nfs4_deleg_call_free(struct nfs4_deleg_call *call)
{
    state_stid_put(call->deleg);
    free(call);
}

/* ---- CB_RECALL ---- */

static void nfs4_recall_result(struct nfs4_server *srv, struct state_stid *deleg, bool ok)
{
    state_deleg_recall_sent(srv->state, deleg, ok);
    count(ok ? &srv->counters.cb_recall_sent : &srv->counters.cb_recall_failed);
}

static void nfs4_recall_done(void *ctx, const struct cb_result *res)
{
    struct nfs4_deleg_call *r = ctx;
    /* Delivered = the client answered over a working path; an error status for the op
     * (BAD_STATEID: it returned the delegation meanwhile, ...) still reached it. The
     * revoke timer of state/ runs either way. */
    bool ok = res->err == 0 && !res->path_failed;
    if (!ok)
        log_info("nfs4: CB_RECALL to client %016llx failed (%d, status %u)",
                 (unsigned long long)state_client_id(state_stid_client(r->deleg)), res->err,
                 (unsigned)res->status);
    nfs4_recall_result(r->srv, r->deleg, ok);
    nfs4_deleg_call_free(r);
}

static int nfs4_send_recall(struct cb_service *cb, const struct cb_target *t, struct nfs4_deleg_call *call,
                            const void *fh, size_t fh_len, cb_done_fn done)
{
    struct state_stateid sid;
    state_stid_stateid(call->deleg, &sid);
    return cb_recall(cb, t, &sid, false, fh, fh_len, done, call);
}

static void nfs4_cb_send_recall(struct nfs4_server *srv, struct cb_service *cb, const struct state_work *w)
{
    if (w->deleg && nfs4_deleg_callback(srv, cb, w, nfs4_send_recall, nfs4_recall_done) != 0)
        nfs4_recall_result(srv, w->deleg, false);
}

/* ---- CB_GETATTR (another client's GETATTR of a write-delegated file) ---- */

static void nfs4_getattr_done(void *ctx, const struct cb_result *res)
{
    struct nfs4_deleg_call *g = ctx;
    struct state_deleg_attrs a = {.change = res->change, .size = res->size};
    clock_gettime(CLOCK_REALTIME, &a.at);
    bool ok = res->err == 0 && res->has_attrs;
    if (!ok)
        log_info("nfs4: CB_GETATTR to client %016llx failed (%d, status %u): recalling its delegation",
                 (unsigned long long)state_client_id(state_stid_client(g->deleg)), res->err,
                 (unsigned)res->status);
    state_deleg_getattr_done(g->srv->state, g->deleg, ok, &a);
    nfs4_deleg_call_free(g);
}

static int nfs4_send_getattr(struct cb_service *cb, const struct cb_target *t, struct nfs4_deleg_call *call,
                             const void *fh, size_t fh_len, cb_done_fn done)
{
    return cb_getattr(cb, t, fh, fh_len, done, call);
}

static void nfs4_cb_send_getattr(struct nfs4_server *srv, struct cb_service *cb, const struct state_work *w)
{
    if (!w->deleg)
        return;
    if (nfs4_deleg_callback(srv, cb, w, nfs4_send_getattr, nfs4_getattr_done) != 0)
        state_deleg_getattr_done(srv->state, w->deleg, false, NULL);
    else
        count(&srv->counters.cb_getattr_sent);
}

/* ---- CB_NULL probe (4.0) ---- */

static void nfs4_probe_done(void *ctx, const struct cb_result *res)
{
    struct state_client *client = ctx;
    if (res->err)
        log_info("nfs4: callback path of client %016llx is down (%d)",
                 (unsigned long long)state_client_id(client), res->err);
    state_client_set_cb_up(client, res->err == 0);
    state_client_put(client);
}

static void nfs4_cb_send_probe(struct cb_service *cb, const struct state_work *w)
{
    struct cb_target t;
    struct state_session *session;
    struct state_cb_sec sec;
    if (!nfs4_cb_target(w->client, &t, &session, &sec)) {
        state_client_set_cb_up(w->client, false);
        return;
    }
    struct state_client *client = state_client_ref(w->client);
    int err = cb_null(cb, &t, nfs4_probe_done, client);
    state_session_put(session);
    if (err) {
        state_client_set_cb_up(client, false);
        state_client_put(client);
    }
}

static void nfs4_cb_process(struct nfs4_server *srv, struct cb_service *cb, struct state_work *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (w[i].kind) {
        case STATE_WORK_CB_RECALL: nfs4_cb_send_recall(srv, cb, &w[i]); break;
        case STATE_WORK_CB_PROBE: nfs4_cb_send_probe(cb, &w[i]); break;
        case STATE_WORK_CB_GETATTR: nfs4_cb_send_getattr(srv, cb, &w[i]); break;
        }
    }
}

/* ---- the thread ---- */

static uint64_t nfs4_cb_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void nfs4_cb_wait_until(struct nfs4_server *srv, uint64_t due_ms)
{
    struct timespec ts = {.tv_sec = (time_t)(due_ms / 1000u), .tv_nsec = (long)(due_ms % 1000u) * 1000000L};
    pthread_cond_timedwait(&srv->cb_cond, &srv->cb_lock, &ts);
}

static void *nfs4_cb_main(void *arg)
{
    struct nfs4_cb_thread *t = arg;
    struct nfs4_server *srv = t->srv;
    uint64_t next_tick = nfs4_cb_now_ms();
    pthread_mutex_lock(&srv->cb_lock);
    while (!srv->cb_stop) {
        uint64_t now = nfs4_cb_now_ms();
        bool tick = now >= next_tick, kicked = srv->cb_kick;
        if (!tick && !kicked) {
            nfs4_cb_wait_until(srv, next_tick);
            continue;
        }
        srv->cb_kick = false;
        pthread_mutex_unlock(&srv->cb_lock);
        struct state_work *w = NULL;
        size_t n;
        if (tick) {
            n = state_tick(srv->state, &w);
            next_tick = now + NFS4_CB_TICK_MS;
        } else {
            n = state_work_take(srv->state, &w);
        }
        nfs4_cb_process(srv, t->cb, w, n);
        state_work_free(w, n);
        nfs4_lock_notify_run(srv, t->cb);
        pthread_mutex_lock(&srv->cb_lock);
    }
    pthread_mutex_unlock(&srv->cb_lock);
    /* outstanding callbacks complete (or are cancelled) here; their completions report
     * to state/ */
    cb_service_destroy(t->cb);
    free(t);
    return NULL;
}

int nfs4_cb_start(struct nfs4_server *srv)
{
    if (srv->cb_thread_started)
        return 0;
    struct nfs4_cb_thread *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    int err = 0;
    t->srv = srv;
    if (!(t->cb = cb_service_new(NULL, &err))) {
        free(t);
        return err;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&srv->cb_lock, NULL);
    pthread_cond_init(&srv->cb_cond, &ca);
    pthread_condattr_destroy(&ca);
    srv->cb_stop = false;
    srv->cb_kick = true; /* take whatever was queued before we ran */
    int e = pthread_create(&srv->cb_thread, NULL, nfs4_cb_main, t);
    if (e) {
        cb_service_destroy(t->cb);
        free(t);
        pthread_mutex_destroy(&srv->cb_lock);
        pthread_cond_destroy(&srv->cb_cond);
        return -e;
    }
    __atomic_store_n(&srv->cb_thread_started, true, __ATOMIC_RELEASE);
    return 0;
}

static void nfs4_cb_forget_conns(struct nfs4_server *srv);

void nfs4_cb_stop(struct nfs4_server *srv)
{
    nfs4_cb_forget_conns(srv);
    if (!__atomic_load_n(&srv->cb_thread_started, __ATOMIC_ACQUIRE))
        return;
    pthread_mutex_lock(&srv->cb_lock);
    srv->cb_stop = true;
    pthread_cond_signal(&srv->cb_cond);
    pthread_mutex_unlock(&srv->cb_lock);
    pthread_join(srv->cb_thread, NULL);
    __atomic_store_n(&srv->cb_thread_started, false, __ATOMIC_RELEASE);
    pthread_mutex_destroy(&srv->cb_lock);
    pthread_cond_destroy(&srv->cb_cond);
}

void nfs4_cb_kick(struct nfs4_server *srv)
{
    if (!__atomic_load_n(&srv->cb_thread_started, __ATOMIC_ACQUIRE))
        return; /* not running: nfs4_cb_start takes the queued work */
    pthread_mutex_lock(&srv->cb_lock);
    srv->cb_kick = true;
    pthread_cond_signal(&srv->cb_cond);
    pthread_mutex_unlock(&srv->cb_lock);
}

void nfs4_cb_work_ready(void *srv)
{
    nfs4_cb_kick(srv);
}

/* ---- connection close notifications ---- */

/* Connections with a close notification registered, by (pointer, id): ids are unique
 * per rpc server and pointers may be reused, so both together name one connection. A
 * per-thread memory of the last connection seen makes the common case (the next
 * request on the same connection) free of the lock. */
#define SEEN_BUCKETS 256u

struct seen_conn {
    struct seen_conn *next;
    const struct rpc_conn *conn;
    uint64_t id;
    struct nfs4_server *srv;
};

static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static struct seen_conn *seen[SEEN_BUCKETS];
static _Thread_local const struct rpc_conn *seen_last_conn;
static _Thread_local uint64_t seen_last_id;

static unsigned seen_bucket(uint64_t id)
{
    return (unsigned)((id * 0x9e3779b97f4a7c15ull) >> 56) % SEEN_BUCKETS;
}

static struct seen_conn **seen_find(const struct rpc_conn *conn, uint64_t id)
{
    struct seen_conn **pp = &seen[seen_bucket(id)];
    while (*pp && !((*pp)->conn == conn && (*pp)->id == id))
        pp = &(*pp)->next;
    return pp;
}

static void nfs4_cb_conn_closed(void *ctx, struct rpc_conn *conn)
{
    struct seen_conn *s = ctx;
    pthread_mutex_lock(&seen_mu);
    struct nfs4_server *srv = s->srv; /* NULL: that server is gone (nfs4_cb_forget_conns) */
    struct seen_conn **pp = seen_find(s->conn, s->id);
    if (*pp == s)
        *pp = s->next;
    pthread_mutex_unlock(&seen_mu);
    if (srv)
        state_conn_dead(srv->state, conn);
    free(s);
}

/* The server is going away while its connections may still be open (the rpc server is
 * stopped, not yet destroyed): their close notifications, which run when the rpc server
 * is destroyed, must not reach its state any more. They still free their records. */
static void nfs4_cb_forget_conns(struct nfs4_server *srv)
{
    pthread_mutex_lock(&seen_mu);
    for (unsigned i = 0; i < SEEN_BUCKETS; i++)
        for (struct seen_conn *s = seen[i]; s; s = s->next)
            if (s->srv == srv)
                s->srv = NULL;
    pthread_mutex_unlock(&seen_mu);
}

void nfs4_cb_conn_seen(struct nfs4_server *srv, struct rpc_conn *conn)
{
    if (!conn)
        return;
    uint64_t id = rpc_conn_id(conn);
    if (seen_last_conn == conn && seen_last_id == id)
        return;
    pthread_mutex_lock(&seen_mu);
    struct seen_conn **pp = seen_find(conn, id);
    if (!*pp) {
        struct seen_conn *s = malloc(sizeof(*s));
        if (s) {
            *s = (struct seen_conn){.next = NULL, .conn = conn, .id = id, .srv = srv};
            *pp = s;
            /* Registered under seen_mu: the notification, which takes seen_mu to unlink
             * s, cannot run before s is in the table. UDP / closed: nothing to watch. */
            if (rpc_conn_on_close(conn, nfs4_cb_conn_closed, s) != 0) {
                *pp = NULL;
                free(s);
                s = NULL;
            }
        }
        if (!s) {
            pthread_mutex_unlock(&seen_mu);
            return; /* try again next time */
        }
    }
    pthread_mutex_unlock(&seen_mu);
    seen_last_conn = conn;
    seen_last_id = id;
}
