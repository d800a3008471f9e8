/*
 * Open file cache of the posix backend (see posix_fdcache.h for the model).
 *
 * Invariants:
 *  - an entry is in at most one bucket chain, and `hashed` says whether it is;
 *  - while hashed the table owns one reference, so refs >= 1; new references are taken
 *    only under the bucket lock while the entry is hashed, hence an entry found with
 *    refs == 1 under the lock has no user and cannot get one before the lock is dropped;
 *  - at most one hashed entry per handle (fdc_add replaces).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/posix_fdcache.h"

/* Buckets scanned per eviction pass before giving up (the limit is soft). */
#define EVICT_SCAN 64

int fdc_init(struct fdcache *c, unsigned max_entries)
{
    size_t n = 64;
    while (n < max_entries / 2)
        n <<= 1;
    memset(c, 0, sizeof(*c));
    c->buckets = aligned_alloc(64, n * sizeof(*c->buckets));
    if (!c->buckets)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_init(&c->buckets[i].lock, NULL);
        c->buckets[i].head = NULL;
    }
    c->mask = n - 1;
    c->max = max_entries;
    atomic_init(&c->count, 0);
    atomic_init(&c->hand, 0);
    return 0;
}

static void entry_free(struct fdc_entry *e)
{
    close(e->fd);
    pthread_mutex_destroy(&e->pos_lock);
    free(e);
}

void fdc_put(struct fdc_entry *e)
{
    if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1)
        entry_free(e);
}

void fdc_destroy(struct fdcache *c)
{
    if (!c->buckets)
        return;
    for (size_t i = 0; i <= c->mask; i++) {
        struct fdc_entry *e = c->buckets[i].head;
        while (e) {
            struct fdc_entry *next = e->next;
            e->hashed = false;
            fdc_put(e);
            e = next;
        }
        pthread_mutex_destroy(&c->buckets[i].lock);
    }
    free(c->buckets);
    c->buckets = NULL;
}

/* Handles are short and already high in entropy (inode numbers, generations): a
 * multiply-xorshift over 8-byte words spreads them well enough. */
uint64_t fdc_hash(const struct fs_fh *fh)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ fh->len;
    size_t i = 0;
    for (; i + 8 <= fh->len; i += 8) {
        uint64_t w;
        memcpy(&w, fh->data + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    uint64_t w = 0;
    memcpy(&w, fh->data + i, fh->len - i);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    return h;
}

static bool same_fh(const struct fs_fh *a, const struct fs_fh *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static struct fdc_bucket *bucket_of(struct fdcache *c, uint64_t hash)
{
    return &c->buckets[(hash ^ (hash >> 32)) & c->mask];
}

struct fdc_entry *fdc_get(struct fdcache *c, const struct fs_fh *fh, uint64_t hash)
{
    struct fdc_bucket *b = bucket_of(c, hash);
    pthread_mutex_lock(&b->lock);
    for (struct fdc_entry *e = b->head; e; e = e->next) {
        if (e->hash == hash && same_fh(&e->fh, fh)) {
            atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
            pthread_mutex_unlock(&b->lock);
            if (!atomic_load_explicit(&e->referenced, memory_order_relaxed))
                atomic_store_explicit(&e->referenced, true, memory_order_relaxed);
            return e;
        }
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

struct fdc_entry *fdc_entry_new(const struct fs_fh *fh, uint64_t hash, int fd, mode_t fmt,
                                enum fdc_level level)
{
    struct fdc_entry *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    atomic_init(&e->refs, 1);
    atomic_init(&e->referenced, true);
    pthread_mutex_init(&e->pos_lock, NULL);
    e->fd = fd;
    e->fmt = fmt & S_IFMT;
    e->level = (uint8_t)level;
    e->hash = hash;
    e->fh = *fh;
    return e;
}

/* Unlink e from its chain (bucket lock held; prev NULL when e is the head). */
static void unhash_locked(struct fdcache *c, struct fdc_bucket *b, struct fdc_entry *prev,
                          struct fdc_entry *e)
{
    if (prev)
        prev->next = e->next;
    else
        b->head = e->next;
    e->next = NULL;
    e->hashed = false;
    atomic_fetch_sub_explicit(&c->count, 1, memory_order_relaxed);
}

/*
 * One CLOCK pass over up to `scan` buckets, evicting unused entries; `force` ignores the
 * referenced bits. Stops once the table is within its limit (or `want` entries went).
 */
static void evict(struct fdcache *c, size_t scan, bool force, unsigned want)
{
    unsigned evicted = 0;
    for (size_t n = 0; n < scan; n++) {
        if (!force && atomic_load_explicit(&c->count, memory_order_relaxed) <= c->max)
            return;
        if (force && evicted >= want)
            return;
        size_t i = atomic_fetch_add_explicit(&c->hand, 1, memory_order_relaxed) & c->mask;
        struct fdc_bucket *b = &c->buckets[i];
        struct fdc_entry *victims = NULL;
        pthread_mutex_lock(&b->lock);
        struct fdc_entry *prev = NULL, *e = b->head;
        while (e) {
            struct fdc_entry *next = e->next;
            bool used = atomic_exchange_explicit(&e->referenced, false, memory_order_relaxed);
            if (!e->pinned && (force || !used) &&
                atomic_load_explicit(&e->refs, memory_order_acquire) == 1) {
                unhash_locked(c, b, prev, e);
                e->next = victims;
                victims = e;
                evicted++;
            } else {
                prev = e;
            }
            e = next;
        }
        pthread_mutex_unlock(&b->lock);
        while (victims) { /* close outside the lock */
            struct fdc_entry *next = victims->next;
            fdc_put(victims);
            victims = next;
        }
    }
}

void fdc_shrink(struct fdcache *c, unsigned n)
{
    evict(c, c->mask + 1, true, n);
}

struct fdc_entry *fdc_add(struct fdcache *c, struct fdc_entry *e)
{
    struct fdc_bucket *b = bucket_of(c, e->hash);
    struct fdc_entry *old = NULL;

    pthread_mutex_lock(&b->lock);
    struct fdc_entry *prev = NULL;
    for (struct fdc_entry *x = b->head; x; prev = x, x = x->next) {
        if (x->hash != e->hash || !same_fh(&x->fh, &e->fh))
            continue;
        if (x->level >= e->level) {
            /* someone cached an fd at least as good meanwhile: use theirs */
            atomic_fetch_add_explicit(&x->refs, 1, memory_order_relaxed);
            pthread_mutex_unlock(&b->lock);
            fdc_put(e);
            return x;
        }
        e->pinned = x->pinned;
        unhash_locked(c, b, prev, x);
        old = x;
        break;
    }
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed); /* the table's */
    e->hashed = true;
    e->next = b->head;
    b->head = e;
    unsigned count = atomic_fetch_add_explicit(&c->count, 1, memory_order_relaxed) + 1;
    pthread_mutex_unlock(&b->lock);

    if (old)
        fdc_put(old);
    if (count > c->max)
        evict(c, EVICT_SCAN, false, 0);
    return e;
}

void fdc_forget(struct fdcache *c, struct fdc_entry *e)
{
    struct fdc_bucket *b = bucket_of(c, e->hash);
    bool drop = false;
    pthread_mutex_lock(&b->lock);
    if (e->hashed && !e->pinned) {
        struct fdc_entry *prev = NULL;
        for (struct fdc_entry *x = b->head; x; prev = x, x = x->next) {
            if (x == e) {
                unhash_locked(c, b, prev, e);
                drop = true;
                break;
            }
        }
    }
    pthread_mutex_unlock(&b->lock);
    if (drop)
        fdc_put(e); /* the table's reference */
}
