/*
 * CB_NOTIFY_LOCK (RFC 8881 20.11) for 4.1+ clients whose blocking lock (READW_LT /
 * WRITEW_LT) was denied.
 *
 * The server does not queue NFSv4 locks: the client polls with LOCK (Linux: every 1 to
 * 30 s) unless the OPEN said OPEN4_RESULT_MAY_NOTIFY_LOCK, in which case it waits for
 * CB_NOTIFY_LOCK (and still retries every 30 s). To know when the range is free, a
 * probe owner of ours queues a blocking waiter for the same range in the lock space,
 * which grants it when the conflict goes (an NFS or NLM unlock at once, a local
 * process's within the space's retry interval). The probe lets go of the lock at once
 * and the client is told; the notification is a hint and grants nothing: the client
 * takes the lock with LOCK like anybody else.
 *
 * Probes have owner keys of their own ("nfs4-notify" + serial) and a host key of their
 * own ("nfs4-notify" + clientid), so that releasing the client's locks (expiry,
 * DESTROY_CLIENTID) does not drop them unseen; a waiter lives one lease at most, and at
 * most NFS4_NOTIFY_MAX exist. Threads: LOCK adds waiters (request threads), the lock
 * space's thread runs the grant callback, the callback thread sends the notifications
 * and expires waiters (nfs4_lock_notify_run). notify_mu guards the two lists; it is
 * never held while sending.
 */
#include "nfs4/nfs4_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cb/cb.h"
#include "util/log.h"
#include "xdr/xdr.h"

#define NFS4_NOTIFY_MAX 1024u
#define NFS4_NOTIFY_TAG "nfs4-notify"
#define NFS4_NOTIFY_TAG_LEN (sizeof(NFS4_NOTIFY_TAG) - 1)

struct nfs4_lock_waiter {
    struct nfs4_lock_waiter *next;
    struct nfs4_server *srv;
    struct state_client *client; /* referenced */
    struct lock_owner *probe;    /* referenced */
    struct nfs4_lock_file file;  /* file.id points into it: the waiter never moves */
    enum lock_type type;
    uint64_t start, len;
    uint64_t expires_ms;
    uint64_t clientid;
    uint32_t fh_len, owner_len;
    uint8_t fh[FH_WIRE_MAX];
    uint8_t owner[NFS4_OPAQUE_LIMIT];
};

static uint64_t notify_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void nfs4_lock_notify_init(struct nfs4_server *srv)
{
    pthread_mutex_init(&srv->notify_mu, NULL);
}

/* The probe's lock and descriptor go; then the waiter. Not in any list. */
static void waiter_free(struct nfs4_lock_waiter *w)
{
    if (w->probe) {
        lock_release_file(w->srv->locks, w->probe, &w->file.id);
        lock_owner_put(w->probe);
    }
    if (w->client)
        state_client_put(w->client);
    free(w);
}

static bool unlink_waiter_locked(struct nfs4_lock_waiter **head, struct nfs4_lock_waiter *w)
{
    for (struct nfs4_lock_waiter **p = head; *p; p = &(*p)->next) {
        if (*p == w) {
            *p = w->next;
            w->next = NULL;
            return true;
        }
    }
    return false;
}

/* The probe's wait ended (free: the range came free; else it failed): the waiter leaves
 * the queued list for the ready one (the callback thread tells the client) or goes. */
static void notify_settle(struct nfs4_lock_waiter *w, bool free)
{
    struct nfs4_server *srv = w->srv;
    lock_release_file(srv->locks, w->probe, &w->file.id); /* the probe never keeps it */
    pthread_mutex_lock(&srv->notify_mu);
    unlink_waiter_locked(&srv->notify_waiters, w);
    bool send = free && !srv->notify_closing;
    if (send) {
        w->next = srv->notify_ready;
        srv->notify_ready = w;
    } else {
        srv->notify_count--;
    }
    pthread_mutex_unlock(&srv->notify_mu);
    if (send)
        nfs4_cb_kick(srv);
    else
        waiter_free(w);
}

/* Lock space thread: the range came free (LOCK_OK) or the probe failed. */
static void notify_granted(void *arg, enum lock_status status)
{
    notify_settle(arg, status == LOCK_OK);
}

static bool same_waiter(const struct nfs4_lock_waiter *a, const struct nfs4_lock_waiter *b)
{
    return a->clientid == b->clientid && a->type == b->type && a->start == b->start && a->len == b->len &&
           a->fh_len == b->fh_len && memcmp(a->fh, b->fh, a->fh_len) == 0 && a->owner_len == b->owner_len &&
           memcmp(a->owner, b->owner, a->owner_len) == 0;
}

/* Under notify_mu: an equal waiter exists (its lifetime is renewed), or the cap is
 * reached: nothing to add. */
static bool notify_redundant_locked(struct nfs4_server *srv, const struct nfs4_lock_waiter *w)
{
    if (srv->notify_closing || srv->notify_count >= NFS4_NOTIFY_MAX)
        return true;
    for (struct nfs4_lock_waiter *x = srv->notify_waiters; x; x = x->next) {
        if (same_waiter(x, w)) {
            x->expires_ms = w->expires_ms;
            return true;
        }
    }
    return false;
}

static struct lock_owner *notify_probe_owner(struct nfs4_server *srv, uint64_t clientid)
{
    static uint64_t serial;
    uint8_t key[NFS4_NOTIFY_TAG_LEN + 8], host[NFS4_NOTIFY_TAG_LEN + 8];
    memcpy(key, NFS4_NOTIFY_TAG, NFS4_NOTIFY_TAG_LEN);
    memcpy(host, NFS4_NOTIFY_TAG, NFS4_NOTIFY_TAG_LEN);
    uint64_t n = __atomic_add_fetch(&serial, 1, __ATOMIC_RELAXED);
    xdr_put_be32(key + NFS4_NOTIFY_TAG_LEN, (uint32_t)(n >> 32));
    xdr_put_be32(key + NFS4_NOTIFY_TAG_LEN + 4, (uint32_t)n);
    xdr_put_be32(host + NFS4_NOTIFY_TAG_LEN, (uint32_t)(clientid >> 32));
    xdr_put_be32(host + NFS4_NOTIFY_TAG_LEN + 4, (uint32_t)clientid);
    return lock_owner_get(srv->locks, key, sizeof(key), host, sizeof(host));
}

void nfs4_lock_notify_add(struct nfs4_compound *c, const struct nfs4_lock_file *f, enum lock_type type,
                          uint64_t start, uint64_t len, struct lock_owner *lo)
{
    struct nfs4_server *srv = c->srv;
    size_t klen;
    const uint8_t *key = lo ? lock_owner_key(lo, &klen) : NULL;
    if (c->minor == 0 || !c->client || !srv->locks || !key || klen <= NFS4_LOCK_CLIENTID_LEN ||
        klen - NFS4_LOCK_CLIENTID_LEN > NFS4_OPAQUE_LIMIT || c->cur.wire_len > FH_WIRE_MAX)
        return;
    struct nfs4_lock_waiter *w = calloc(1, sizeof(*w));
    if (!w)
        return;
    w->srv = srv;
    w->file = *f;
    w->file.id.key = w->file.key; /* the copy's own key and context */
    w->file.id.ctx = &w->file;
    w->type = type;
    w->start = start;
    w->len = len;
    w->expires_ms = notify_now_ms() + 1000u * state_lease_time(srv->state);
    w->clientid = state_client_id(c->client);
    w->fh_len = c->cur.wire_len;
    memcpy(w->fh, c->cur.wire, w->fh_len);
    w->owner_len = (uint32_t)(klen - NFS4_LOCK_CLIENTID_LEN);
    memcpy(w->owner, key + NFS4_LOCK_CLIENTID_LEN, w->owner_len);
    w->client = state_client_ref(c->client);
    w->probe = notify_probe_owner(srv, w->clientid);

    pthread_mutex_lock(&srv->notify_mu);
    if (!w->probe || notify_redundant_locked(srv, w)) {
        pthread_mutex_unlock(&srv->notify_mu);
        waiter_free(w);
        return;
    }
    /* listed before the probe queues: its grant may come before lock_lock returns */
    w->next = srv->notify_waiters;
    srv->notify_waiters = w;
    srv->notify_count++;
    pthread_mutex_unlock(&srv->notify_mu);

    struct lock_req req = {.type = type, .start = start, .len = len, .wait = true,
                           .granted = notify_granted, .arg = w};
    enum lock_status st = lock_lock(srv->locks, w->probe, &w->file.id, &req, NULL);
    if (st != LOCK_BLOCKED) /* free already (the holder went in between), or no probe */
        notify_settle(w, st == LOCK_OK);
    /* else notify_granted or nfs4_lock_notify_run takes it from here */
}

static void notify_sent(void *ctx, const struct cb_result *res)
{
    struct nfs4_server *srv = ctx;
    bool ok = res->err == 0 && res->status == NFS4_OK;
    __atomic_fetch_add(ok ? &srv->counters.cb_notify_lock_sent : &srv->counters.cb_notify_lock_failed, 1,
                       __ATOMIC_RELAXED);
}

/* Waiters past their lifetime whose probe is still queued: cancelled and freed. A
 * probe already granted is left to notify_granted. */
static struct nfs4_lock_waiter *notify_take_expired_locked(struct nfs4_server *srv, uint64_t now, bool all)
{
    struct nfs4_lock_waiter *gone = NULL;
    for (struct nfs4_lock_waiter **p = &srv->notify_waiters; *p;) {
        struct nfs4_lock_waiter *w = *p;
        if ((all || now >= w->expires_ms) && w->probe &&
            lock_cancel(srv->locks, w->probe, &w->file.id, w->type, w->start, w->len) == LOCK_OK) {
            *p = w->next;
            w->next = gone;
            gone = w;
            srv->notify_count--;
        } else {
            p = &w->next;
        }
    }
    return gone;
}

void nfs4_lock_notify_run(struct nfs4_server *srv, struct cb_service *cb)
{
    if (!srv->locks)
        return;
    pthread_mutex_lock(&srv->notify_mu);
    struct nfs4_lock_waiter *ready = srv->notify_ready;
    srv->notify_ready = NULL;
    for (struct nfs4_lock_waiter *w = ready; w; w = w->next)
        srv->notify_count--;
    struct nfs4_lock_waiter *gone = notify_take_expired_locked(srv, notify_now_ms(), false);
    pthread_mutex_unlock(&srv->notify_mu);
    for (struct nfs4_lock_waiter *w = ready, *next; w; w = next) {
        next = w->next;
        struct cb_target t;
        struct state_session *session;
        struct state_cb_sec sec;
        if (nfs4_cb_target(w->client, &t, &session, &sec)) {
            if (cb_notify_lock(cb, &t, w->fh, w->fh_len, w->clientid, w->owner, w->owner_len, notify_sent, srv))
                __atomic_fetch_add(&srv->counters.cb_notify_lock_failed, 1, __ATOMIC_RELAXED);
            state_session_put(session);
        }
        waiter_free(w);
    }
    for (struct nfs4_lock_waiter *w = gone, *next; w; w = next) {
        next = w->next;
        waiter_free(w);
    }
}

/* After the callback thread stopped, before the lock space goes: every waiter is
 * cancelled, or waited for when its grant is running (bounded: grants do not block). */
void nfs4_lock_notify_fini(struct nfs4_server *srv)
{
    pthread_mutex_lock(&srv->notify_mu);
    srv->notify_closing = true;
    struct nfs4_lock_waiter *ready = srv->notify_ready;
    srv->notify_ready = NULL;
    pthread_mutex_unlock(&srv->notify_mu);
    for (struct nfs4_lock_waiter *w = ready, *next; w; w = next) {
        next = w->next;
        waiter_free(w);
    }
    for (int tries = 0; srv->locks && tries < 500; tries++) {
        pthread_mutex_lock(&srv->notify_mu);
        struct nfs4_lock_waiter *gone = notify_take_expired_locked(srv, 0, true);
        bool left = srv->notify_waiters != NULL;
        pthread_mutex_unlock(&srv->notify_mu);
        for (struct nfs4_lock_waiter *w = gone, *next; w; w = next) {
            next = w->next;
            waiter_free(w);
        }
        if (!left)
            break;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    pthread_mutex_destroy(&srv->notify_mu);
}
