/* The state server: its lock and deferred work, clock, tables, work queue, statistics. */
#include "state/state_internal.h"

#include "lock/lock.h"
#include "util/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* ---- hash table ---- */

void htab_init(struct htab *t)
{
    t->b = NULL;
    t->n = t->count = 0;
}

void htab_free(struct htab *t)
{
    free(t->b);
    htab_init(t);
}

static bool htab_grow(struct htab *t)
{
    size_t n = t->n ? t->n * 2 : 64;
    struct hnode **b = calloc(n, sizeof(*b));
    if (!b)
        return false;
    for (size_t i = 0; i < t->n; i++)
        for (struct hnode *e = t->b[i], *next; e; e = next) {
            next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    free(t->b);
    t->b = b;
    t->n = n;
    return true;
}

bool htab_insert(struct htab *t, struct hnode *node, uint64_t hash)
{
    /* Growing is best effort once a table exists: a failed grow only lengthens chains. */
    if ((t->count >= t->n && !htab_grow(t)) && !t->n)
        return false;
    node->hash = hash;
    struct hnode **head = &t->b[hash & (t->n - 1)];
    node->next = *head;
    *head = node;
    t->count++;
    return true;
}

void htab_remove(struct htab *t, struct hnode *node)
{
    if (!t->n)
        return;
    for (struct hnode **pp = &t->b[node->hash & (t->n - 1)]; *pp; pp = &(*pp)->next)
        if (*pp == node) {
            *pp = node->next;
            node->next = NULL;
            t->count--;
            return;
        }
}

/* FNV-1a with a per-boot seed mixed in: the keys are client-chosen. */
uint64_t st_hash(const void *p, size_t len, uint64_t seed)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

void st_random(void *buf, size_t len)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = getrandom(p, len, 0);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            /* no entropy source: still unique enough with the clock mixed in */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            for (size_t i = 0; i < len; i++)
                p[i] = (uint8_t)((uint64_t)ts.tv_nsec >> ((i % 4) * 8)) ^ (uint8_t)(i * 131u);
            return;
        }
        p += n;
        len -= (size_t)n;
    }
}

void st_put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

void st_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* ---- lock, clock, deferred work ---- */

static uint64_t default_clock(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t st_now(struct state_server *ss)
{
    return ss->p.clock_ms(ss->p.clock_ctx);
}

uint64_t state_now_ms(const struct state_server *ss)
{
    return ss->p.clock_ms(ss->p.clock_ctx);
}

void st_lock(struct state_server *ss)
{
    pthread_mutex_lock(&ss->mu);
}

bool st_defer(struct state_server *ss, enum deferred_kind kind, uint64_t clientid, void *conn,
              const void *owner, size_t owner_len)
{
    if (ss->ndef == ss->def_cap) {
        size_t cap = ss->def_cap ? ss->def_cap * 2 : 16;
        struct deferred *d = realloc(ss->def, cap * sizeof(*d));
        if (!d)
            return false;
        ss->def = d;
        ss->def_cap = cap;
    }
    struct deferred *d = &ss->def[ss->ndef];
    memset(d, 0, sizeof(*d));
    d->kind = kind;
    d->clientid = clientid;
    d->conn = conn;
    if (owner) {
        d->owner = malloc(owner_len ? owner_len : 1);
        if (!d->owner)
            return false;
        memcpy(d->owner, owner, owner_len);
        d->owner_len = owner_len;
    }
    ss->ndef++;
    return true;
}

static void run_deferred(struct state_server *ss, struct deferred *d)
{
    uint8_t key[8];
    switch (d->kind) {
    case DEF_RELEASE_HOST:
        if (ss->p.locks) {
            st_put_be64(key, d->clientid);
            lock_release_host(ss->p.locks, key, sizeof(key));
        }
        break;
    case DEF_CONN_RELEASE:
        if (ss->p.conn_release)
            ss->p.conn_release(d->conn);
        break;
    case DEF_REC_ADD:
        if (ss->rec)
            recovery_add(ss->rec, d->owner, d->owner_len, ss->epoch, (int64_t)time(NULL));
        break;
    case DEF_REC_REMOVE:
        if (ss->rec)
            recovery_remove(ss->rec, d->owner, d->owner_len);
        break;
    case DEF_REC_PURGE:
        if (ss->rec)
            recovery_purge_before(ss->rec, ss->epoch);
        break;
    }
    free(d->owner);
}

/* Releases mu, then runs what had to wait for it: lock-space releases (kernel calls),
 * connection releases (may re-enter state via state_conn_dead), database writes, and
 * the work_ready signal. Database writes keep their order: db_mu is taken before mu is
 * dropped, so a later unlocker's writes queue behind ours. */
void st_unlock(struct state_server *ss)
{
    struct deferred *def = ss->def;
    size_t n = ss->ndef;
    bool signal = ss->work_signal;
    ss->def = NULL;
    ss->ndef = ss->def_cap = 0;
    ss->work_signal = false;
    bool db = false;
    for (size_t i = 0; i < n; i++)
        if (def[i].kind == DEF_REC_ADD || def[i].kind == DEF_REC_REMOVE || def[i].kind == DEF_REC_PURGE)
            db = true;
    if (db)
        pthread_mutex_lock(&ss->db_mu);
    pthread_mutex_unlock(&ss->mu);
    for (size_t i = 0; i < n; i++)
        run_deferred(ss, &def[i]);
    if (db)
        pthread_mutex_unlock(&ss->db_mu);
    free(def);
    if (signal && ss->p.work_ready)
        ss->p.work_ready(ss->p.work_ctx);
}

/* ---- work queue ---- */

bool st_queue_work(struct state_server *ss, enum state_work_kind kind, struct state_client *c,
                   struct state_stid *deleg)
{
    if (ss->nwork == ss->work_cap) {
        size_t cap = ss->work_cap ? ss->work_cap * 2 : 16;
        struct state_work *w = realloc(ss->work, cap * sizeof(*w));
        if (!w)
            return false;
        ss->work = w;
        ss->work_cap = cap;
    }
    struct state_work *w = &ss->work[ss->nwork++];
    w->kind = kind;
    w->client = c;
    c->refs++;
    w->deleg = deleg;
    if (deleg)
        deleg->refs++;
    ss->work_signal = true;
    return true;
}

static size_t take_work_locked(struct state_server *ss, struct state_work **out)
{
    size_t n = ss->nwork;
    *out = n ? ss->work : NULL;
    if (n) {
        ss->work = NULL;
        ss->nwork = ss->work_cap = 0;
    }
    ss->work_signal = false; /* the taker is the one who would be woken */
    return n;
}

size_t state_work_take(struct state_server *ss, struct state_work **out)
{
    st_lock(ss);
    size_t n = take_work_locked(ss, out);
    st_unlock(ss);
    return n;
}

void state_work_free(struct state_work *w, size_t n)
{
    if (!w)
        return;
    for (size_t i = 0; i < n; i++) {
        if (w[i].deleg)
            state_stid_put(w[i].deleg);
        state_client_put(w[i].client);
    }
    free(w);
}

size_t state_tick(struct state_server *ss, struct state_work **out)
{
    st_lock(ss);
    uint64_t now = st_now(ss);
    grace_update_locked(ss, now);
    deleg_tick_locked(ss, now);
    deleg_awaiting_tick_locked(ss, now);
    clients_tick_locked(ss, now);
    size_t n = take_work_locked(ss, out);
    st_unlock(ss);
    return n;
}

/* ---- lifetime ---- */

static unsigned dflt(unsigned v, unsigned d) { return v ? v : d; }

static void channel_defaults(struct state_channel_attrs *a, uint32_t size, uint32_t cached,
                             uint32_t ops, uint32_t slots)
{
    if (!a->maxrequestsize)
        a->maxrequestsize = size;
    if (!a->maxresponsesize)
        a->maxresponsesize = size;
    if (!a->maxresponsesize_cached)
        a->maxresponsesize_cached = cached;
    if (!a->maxoperations)
        a->maxoperations = ops;
    if (!a->maxrequests)
        a->maxrequests = slots;
    a->headerpadsize = 0;
}

struct state_server *state_server_create(const struct state_params *params)
{
    struct state_server *ss = calloc(1, sizeof(*ss));
    if (!ss)
        return NULL;
    if (params)
        ss->p = *params;
    struct state_params *p = &ss->p;
    p->lease_time_s = dflt(p->lease_time_s, 90);
    p->grace_time_s = dflt(p->grace_time_s, p->lease_time_s);
    p->courtesy_max_s = dflt(p->courtesy_max_s, 86400);
    p->max_clients = dflt(p->max_clients, 16384);
    p->max_courtesy_clients = dflt(p->max_courtesy_clients, 4096);
    p->max_sessions_per_client = dflt(p->max_sessions_per_client, 16);
    p->max_owners_per_client = dflt(p->max_owners_per_client, 16384);
    p->max_opens_per_owner = dflt(p->max_opens_per_owner, 16384);
    p->max_stids = dflt(p->max_stids, 1u << 20);
    p->max_reply_cache = dflt(p->max_reply_cache, 8192);
    p->max_expired_ids = dflt(p->max_expired_ids, 65536);
    channel_defaults(&p->fore_max, (1u << 20) + 8192, 8192, 64, 64); /* ops: the COMPOUND bound */
    channel_defaults(&p->back_max, 65536, 4096, 8, 4);
    if (!p->clock_ms)
        p->clock_ms = default_clock;
    if (p->state_dir && !(ss->state_dir = strdup(p->state_dir))) {
        free(ss);
        return NULL;
    }
    p->state_dir = ss->state_dir;
    ss->lease_ms = (uint64_t)p->lease_time_s * 1000u;
    ss->grace_ms = (uint64_t)p->grace_time_s * 1000u;
    ss->courtesy_ms = (uint64_t)p->courtesy_max_s * 1000u;
    pthread_mutex_init(&ss->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ss->cbga_answered, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&ss->db_mu, NULL);
    dlist_init(&ss->clients);
    dlist_init(&ss->recalls);
    htab_init(&ss->clients_by_id);
    htab_init(&ss->clients_by_owner);
    htab_init(&ss->sessions);
    htab_init(&ss->stids);
    htab_init(&ss->files);
    htab_init(&ss->owners);
    htab_init(&ss->reclaim);
    htab_init(&ss->expired_tab);
    st_random(&ss->seed, sizeof(ss->seed));
    ss->next_client = 1;
    ss->next_stid = 1;
    ss->next_session = 1;
    grace_start(ss); /* picks the epoch, loads the reclaim set */
    return ss;
}

void state_server_destroy(struct state_server *ss)
{
    if (!ss)
        return;
    st_lock(ss);
    ss->destroying = true;
    struct dlist *pos, *tmp;
    dlist_for_each_safe(pos, tmp, &ss->clients)
        client_destroy_locked(ss, container_of(pos, struct state_client, link), false);
    struct state_work *w;
    size_t n = take_work_locked(ss, &w);
    st_unlock(ss);
    state_work_free(w, n);
    st_lock(ss);
    for (size_t i = 0; i < ss->reclaim.n; i++)
        for (struct hnode *e = ss->reclaim.b[i], *next; e; e = next) {
            next = e->next;
            free(container_of(e, struct reclaim_entry, h));
        }
    st_unlock(ss);
    if (ss->rec)
        recovery_close(ss->rec);
    htab_free(&ss->clients_by_id);
    htab_free(&ss->clients_by_owner);
    htab_free(&ss->sessions);
    htab_free(&ss->stids);
    htab_free(&ss->files);
    htab_free(&ss->owners);
    htab_free(&ss->reclaim);
    expired_free(ss);
    pthread_mutex_destroy(&ss->mu);
    pthread_cond_destroy(&ss->cbga_answered);
    pthread_mutex_destroy(&ss->db_mu);
    free(ss->state_dir);
    free(ss);
}

uint32_t state_boot_epoch(const struct state_server *ss) { return ss->epoch; }
unsigned state_lease_time(const struct state_server *ss) { return ss->p.lease_time_s; }

void state_stats(struct state_server *ss, struct state_stats *st)
{
    st_lock(ss);
    memset(st, 0, sizeof(*st));
    st->clients = ss->nclients;
    st->courtesy_clients = ss->ncourtesy;
    st->sessions = ss->nsessions;
    st->owners = ss->nowners;
    st->stids = ss->nstids;
    st->files = ss->nfiles;
    st->delegs = ss->ndelegs;
    st->delegs_awaiting = ss->nawaiting;
    st->reclaim_set = ss->reclaim_pending;
    st->db_ok = ss->rec != NULL;
    st_unlock(ss);
}

const char *state_status_name(enum state_status st)
{
    static const char *const names[] = {
        [STATE_OK] = "OK",
        [STATE_ERR_STALE_CLIENTID] = "STALE_CLIENTID",
        [STATE_ERR_EXPIRED] = "EXPIRED",
        [STATE_ERR_BAD_STATEID] = "BAD_STATEID",
        [STATE_ERR_OLD_STATEID] = "OLD_STATEID",
        [STATE_ERR_STALE_STATEID] = "STALE_STATEID",
        [STATE_ERR_BAD_SEQID] = "BAD_SEQID",
        [STATE_ERR_REPLAY] = "REPLAY",
        [STATE_ERR_BADSESSION] = "BADSESSION",
        [STATE_ERR_BADSLOT] = "BADSLOT",
        [STATE_ERR_SEQ_MISORDERED] = "SEQ_MISORDERED",
        [STATE_ERR_SEQ_FALSE_RETRY] = "SEQ_FALSE_RETRY",
        [STATE_ERR_RETRY_UNCACHED_REP] = "RETRY_UNCACHED_REP",
        [STATE_ERR_REP_TOO_BIG_TO_CACHE] = "REP_TOO_BIG_TO_CACHE",
        [STATE_ERR_DELAY] = "DELAY",
        [STATE_ERR_GRACE] = "GRACE",
        [STATE_ERR_NO_GRACE] = "NO_GRACE",
        [STATE_ERR_RECLAIM_BAD] = "RECLAIM_BAD",
        [STATE_ERR_COMPLETE_ALREADY] = "COMPLETE_ALREADY",
        [STATE_ERR_CLID_INUSE] = "CLID_INUSE",
        [STATE_ERR_NOT_SAME] = "NOT_SAME",
        [STATE_ERR_PERM] = "PERM",
        [STATE_ERR_NOENT] = "NOENT",
        [STATE_ERR_CLIENTID_BUSY] = "CLIENTID_BUSY",
        [STATE_ERR_SHARE_DENIED] = "SHARE_DENIED",
        [STATE_ERR_LOCKED] = "LOCKED",
        [STATE_ERR_DENIED] = "DENIED",
        [STATE_ERR_ADMIN_REVOKED] = "ADMIN_REVOKED",
        [STATE_ERR_DELEG_REVOKED] = "DELEG_REVOKED",
        [STATE_ERR_LOCKS_HELD] = "LOCKS_HELD",
        [STATE_ERR_OPENMODE] = "OPENMODE",
        [STATE_ERR_INVAL] = "INVAL",
        [STATE_ERR_TOOSMALL] = "TOOSMALL",
        [STATE_ERR_RESOURCE] = "RESOURCE",
        [STATE_ERR_SERVERFAULT] = "SERVERFAULT",
        [STATE_ERR_NOT_ONLY_OP] = "NOT_ONLY_OP",
        [STATE_ERR_CONN_NOT_BOUND_TO_SESSION] = "CONN_NOT_BOUND_TO_SESSION",
        [STATE_ERR_CB_PATH_DOWN] = "CB_PATH_DOWN",
        [STATE_ERR_BAD_SESSION_DIGEST] = "BAD_SESSION_DIGEST",
        [STATE_ERR_WRONG_CRED] = "WRONG_CRED",
        [STATE_ERR_SEQUENCE_POS] = "SEQUENCE_POS",
    };
    if ((unsigned)st < sizeof(names) / sizeof(names[0]) && names[st])
        return names[st];
    return "?";
}
