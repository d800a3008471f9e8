#include "rpc/drc.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define DRC_DEFAULT_BYTES (16u << 20)
#define DRC_DEFAULT_ENTRIES 8192
#define DRC_DEFAULT_REPLY (64u << 10)
#define DRC_DEFAULT_TTL_MS 120000
#define DRC_DEFAULT_SHARDS 16
#define DRC_MAX_SHARDS 256

struct drc_entry {
    struct drc_key key;
    uint32_t hash;
    bool done;
    uint64_t ticket;
    int64_t done_ms;              /* when the reply was stored (DONE) */
    struct drc_entry *hnext;      /* bucket chain */
    struct drc_entry *prev, *next; /* LRU list of DONE entries, least recent first */
    uint8_t *reply;
    size_t reply_len;
};

struct drc_shard {
    pthread_mutex_t mu;
    struct drc_entry **buckets;
    uint32_t mask;
    struct drc_entry *lru_head, *lru_tail;
    unsigned entries;
    size_t bytes; /* DONE entries: reply + entry overhead */
    uint64_t next_ticket;
};

struct drc {
    struct drc_config cfg;
    unsigned nshards;
    unsigned shard_entries;
    size_t shard_bytes;
    atomic_ullong hits, in_progress_drops, inserts, evictions;
    struct drc_shard shards[];
};

/* ---------- keys ---------- */

/* A multiply-xor hash over 8-byte words (a byte at a time cost ~300 ns for 256 bytes):
 * enough to tell apart two calls reusing an xid, not meant to resist an adversary (who
 * could only confuse their own calls: the key holds their address and port). */
static uint32_t sum_bytes(const uint8_t *p, size_t n)
{
    const uint64_t mul = 0x9E3779B97F4A7C15ull;
    uint64_t h = 0x2545F4914F6CDD1Dull ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        h = (h ^ v) * mul;
        h ^= h >> 29;
    }
    if (i < n) {
        uint64_t v = 0;
        memcpy(&v, p + i, n - i);
        h = (h ^ v) * mul;
        h ^= h >> 29;
    }
    h *= mul;
    return (uint32_t)(h ^ (h >> 32));
}

void drc_key_init(struct drc_key *k, const struct sockaddr *peer, socklen_t peer_len, uint32_t xid,
                  uint32_t prog, uint32_t vers, uint32_t proc, const uint8_t *args, size_t args_len)
{
    memset(k, 0, sizeof(*k));
    k->xid = xid;
    k->prog = prog;
    k->vers = vers;
    k->proc = proc;
    k->args_len = args_len > UINT32_MAX ? UINT32_MAX : (uint32_t)args_len;
    k->args_sum = sum_bytes(args, args_len < DRC_SUM_BYTES ? args_len : DRC_SUM_BYTES);
    if (peer && peer->sa_family == AF_INET && peer_len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)peer;
        k->family = AF_INET;
        k->port = ntohs(s->sin_port);
        memcpy(k->addr, &s->sin_addr, 4);
    } else if (peer && peer->sa_family == AF_INET6 && peer_len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)peer;
        k->family = AF_INET6;
        k->port = ntohs(s->sin6_port);
        memcpy(k->addr, &s->sin6_addr, 16);
    }
}

/* key_eq compares bytes: no padding may hide in the key */
_Static_assert(sizeof(struct drc_key) == 6 * 4 + 2 * 2 + 16, "struct drc_key has padding");

static uint32_t key_hash(const struct drc_key *k)
{
    return sum_bytes((const uint8_t *)k, sizeof(*k));
}

static bool key_eq(const struct drc_key *a, const struct drc_key *b)
{
    return memcmp(a, b, sizeof(*a)) == 0;
}

/* ---------- the table ---------- */

static size_t entry_cost(const struct drc_entry *e) { return sizeof(*e) + e->reply_len; }

static unsigned pow2_at_least(unsigned n)
{
    unsigned p = 1;
    while (p < n && p < (1u << 30))
        p <<= 1;
    return p;
}

struct drc *drc_new(const struct drc_config *cfg)
{
    struct drc_config c = cfg ? *cfg : (struct drc_config){ 0 };
    if (!c.max_bytes)
        c.max_bytes = DRC_DEFAULT_BYTES;
    if (!c.max_entries)
        c.max_entries = DRC_DEFAULT_ENTRIES;
    if (!c.max_reply)
        c.max_reply = DRC_DEFAULT_REPLY;
    if (!c.ttl_ms)
        c.ttl_ms = DRC_DEFAULT_TTL_MS;
    if (!c.nshards)
        c.nshards = DRC_DEFAULT_SHARDS;
    if (c.nshards > DRC_MAX_SHARDS)
        c.nshards = DRC_MAX_SHARDS;
    if (c.nshards > c.max_entries)
        c.nshards = c.max_entries;
    struct drc *d = calloc(1, sizeof(*d) + c.nshards * sizeof(d->shards[0]));
    if (!d)
        return NULL;
    d->cfg = c;
    d->nshards = c.nshards;
    d->shard_entries = (c.max_entries + c.nshards - 1) / c.nshards;
    d->shard_bytes = (c.max_bytes + c.nshards - 1) / c.nshards;
    for (unsigned i = 0; i < d->nshards; i++) {
        struct drc_shard *s = &d->shards[i];
        pthread_mutex_init(&s->mu, NULL);
        s->mask = pow2_at_least(d->shard_entries) - 1;
        s->buckets = calloc((size_t)s->mask + 1, sizeof(*s->buckets));
        if (!s->buckets) {
            d->nshards = i + 1;
            drc_free(d);
            return NULL;
        }
    }
    return d;
}

static void entry_free(struct drc_entry *e)
{
    free(e->reply);
    free(e);
}

void drc_free(struct drc *d)
{
    if (!d)
        return;
    for (unsigned i = 0; i < d->nshards; i++) {
        struct drc_shard *s = &d->shards[i];
        for (uint32_t b = 0; s->buckets && b <= s->mask; b++) {
            for (struct drc_entry *e = s->buckets[b], *next; e; e = next) {
                next = e->hnext;
                entry_free(e);
            }
        }
        free(s->buckets);
        pthread_mutex_destroy(&s->mu);
    }
    free(d);
}

static struct drc_shard *shard_of(struct drc *d, uint32_t hash) { return &d->shards[hash % d->nshards]; }

static struct drc_entry **bucket_of(struct drc_shard *s, uint32_t hash)
{
    return &s->buckets[(hash / DRC_MAX_SHARDS) & s->mask];
}

static struct drc_entry *find(struct drc_shard *s, const struct drc_key *k, uint32_t hash)
{
    for (struct drc_entry *e = *bucket_of(s, hash); e; e = e->hnext)
        if (e->hash == hash && key_eq(&e->key, k))
            return e;
    return NULL;
}

static void lru_unlink(struct drc_shard *s, struct drc_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        s->lru_head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        s->lru_tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_append(struct drc_shard *s, struct drc_entry *e)
{
    e->next = NULL;
    e->prev = s->lru_tail;
    if (s->lru_tail)
        s->lru_tail->next = e;
    else
        s->lru_head = e;
    s->lru_tail = e;
}

/* Unlink from the table (and the LRU list when DONE) and free. */
static void remove_entry(struct drc_shard *s, struct drc_entry *e)
{
    for (struct drc_entry **pp = bucket_of(s, e->hash); *pp; pp = &(*pp)->hnext) {
        if (*pp == e) {
            *pp = e->hnext;
            break;
        }
    }
    if (e->done) {
        lru_unlink(s, e);
        s->bytes -= entry_cost(e);
    }
    s->entries--;
    entry_free(e);
}

static void evict(struct drc *d, struct drc_shard *s, struct drc_entry *e)
{
    remove_entry(s, e);
    atomic_fetch_add_explicit(&d->evictions, 1, memory_order_relaxed);
}

static bool expired(const struct drc *d, const struct drc_entry *e, int64_t now_ms)
{
    return e->done && now_ms - e->done_ms >= (int64_t)d->cfg.ttl_ms;
}

/* Drop expired entries from the cold end. A hit moves an entry to the warm end without
 * renewing its age, so an expired one may hide further in: lookups check each match. */
static void expire(struct drc *d, struct drc_shard *s, int64_t now_ms)
{
    while (s->lru_head && expired(d, s->lru_head, now_ms))
        evict(d, s, s->lru_head);
}

enum drc_verdict drc_begin(struct drc *d, const struct drc_key *k, int64_t now_ms, uint8_t *out,
                           size_t out_cap, size_t *out_len, uint64_t *ticket)
{
    uint32_t hash = key_hash(k);
    struct drc_shard *s = shard_of(d, hash);
    enum drc_verdict v = DRC_MISS;
    *ticket = 0;
    *out_len = 0;

    pthread_mutex_lock(&s->mu);
    expire(d, s, now_ms);
    struct drc_entry *e = find(s, k, hash);
    if (e && expired(d, e, now_ms)) {
        evict(d, s, e);
        e = NULL;
    }
    if (e && !e->done) {
        v = DRC_IN_PROGRESS;
        atomic_fetch_add_explicit(&d->in_progress_drops, 1, memory_order_relaxed);
    } else if (e && e->reply_len <= out_cap) {
        memcpy(out, e->reply, e->reply_len);
        *out_len = e->reply_len;
        lru_unlink(s, e);
        lru_append(s, e);
        v = DRC_HIT;
        atomic_fetch_add_explicit(&d->hits, 1, memory_order_relaxed);
    } else {
        if (e) /* cannot be handed out: run the call again and keep its new reply */
            evict(d, s, e);
        while (s->entries >= d->shard_entries && s->lru_head)
            evict(d, s, s->lru_head);
        if (s->entries < d->shard_entries && (e = calloc(1, sizeof(*e)))) {
            e->key = *k;
            e->hash = hash;
            e->ticket = ++s->next_ticket;
            struct drc_entry **b = bucket_of(s, hash);
            e->hnext = *b;
            *b = e;
            s->entries++;
            *ticket = e->ticket;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return v;
}

void drc_finish(struct drc *d, const struct drc_key *k, uint64_t ticket, const void *reply, size_t len,
                int64_t now_ms)
{
    if (!ticket)
        return;
    uint32_t hash = key_hash(k);
    struct drc_shard *s = shard_of(d, hash);
    uint8_t *copy = NULL;
    if (reply && len <= d->cfg.max_reply && (copy = malloc(len ? len : 1)))
        memcpy(copy, reply, len); /* outside the lock */

    pthread_mutex_lock(&s->mu);
    struct drc_entry *e = find(s, k, hash);
    if (!e || e->done || e->ticket != ticket) {
        free(copy);
    } else if (!copy) {
        remove_entry(s, e);
    } else {
        e->reply = copy;
        e->reply_len = len;
        expire(d, s, now_ms);
        while (s->bytes + entry_cost(e) > d->shard_bytes && s->lru_head)
            evict(d, s, s->lru_head);
        if (s->bytes + entry_cost(e) > d->shard_bytes) {
            remove_entry(s, e); /* larger than the whole shard */
        } else {
            e->done = true;
            e->done_ms = now_ms;
            s->bytes += entry_cost(e);
            lru_append(s, e);
            atomic_fetch_add_explicit(&d->inserts, 1, memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&s->mu);
}

void drc_abort(struct drc *d, const struct drc_key *k, uint64_t ticket)
{
    drc_finish(d, k, ticket, NULL, 0, 0);
}

void drc_get_stats(struct drc *d, struct drc_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->hits = atomic_load(&d->hits);
    st->in_progress_drops = atomic_load(&d->in_progress_drops);
    st->inserts = atomic_load(&d->inserts);
    st->evictions = atomic_load(&d->evictions);
    for (unsigned i = 0; i < d->nshards; i++) {
        struct drc_shard *s = &d->shards[i];
        pthread_mutex_lock(&s->mu);
        st->entries += s->entries;
        st->bytes += s->bytes;
        pthread_mutex_unlock(&s->mu);
    }
}
