/*
 * Directory entry cache of the posix backend (see posix_dircache.h for the model).
 *
 * Invariants:
 *  - a snapshot is in at most one bucket chain, `hashed` says whether it is, and at
 *    most one hashed snapshot per (owner, handle); while hashed the table owns one
 *    reference and its `accounted` bytes are part of dc.bytes;
 *  - only trusted snapshots are ever hashed;
 *  - entries are written only under the snapshot's fill lock, at the end, and become
 *    visible to lock-free readers through the release store of their chunk's count;
 *    chunks never move or shrink until the snapshot is freed;
 *  - lock order: fill lock, then bucket lock; the eviction lock is only tried; the
 *    inotify lock is taken with no other lock held (dir_free runs outside them all);
 *  - a watch is in the wd table while the kernel holds it (until rm_watch or
 *    IN_IGNORED) and is freed when its last snapshot lets go of it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs/posix_dircache.h"

#define DC_BUCKETS 4096u
#define DC_CHUNK_MIN 16u
#define DC_CHUNK_MAX 512u
#define DC_NAMES_MIN 1024u
#define DC_NAMES_MAX 65536u
/* getdents64 buffers: a snapshot that will be reused reads big ones; one that serves a
 * single listing reads about what a reply holds, as an uncached listing would. */
#define DC_FILL_BIG 32768
#define DC_FILL_SMALL 8192
#define DC_NO_CHUNK UINT32_MAX

struct dc_slot {
    uint64_t cookie;
    uint32_t chunk; /* DC_NO_CHUNK: empty */
    uint32_t off;
};

struct dc_names {
    struct dc_names *next;
    size_t used, cap;
    char buf[];
};

struct dc_bucket {
    pthread_mutex_t lock;
    struct dc_dir *head;
} __attribute__((aligned(64)));

static struct {
    struct dc_bucket *buckets; /* NULL: no memory at start, nothing is cached */
    atomic_size_t bytes;
    atomic_uint ndirs;
    atomic_size_t max_bytes;
    atomic_uint max_dirs;
    atomic_size_t hand;
    pthread_mutex_t evict_lock;
    atomic_uint_fast64_t hits, misses, fills, evictions;
} dc = {
    .max_bytes = DC_DEFAULT_BYTES,
    .max_dirs = DC_DEFAULT_DIRS,
    .evict_lock = PTHREAD_MUTEX_INITIALIZER,
};

static pthread_once_t dc_once = PTHREAD_ONCE_INIT;

static void dc_init(void)
{
    struct dc_bucket *b = aligned_alloc(64, DC_BUCKETS * sizeof(*b));
    if (!b)
        return;
    for (unsigned i = 0; i < DC_BUCKETS; i++) {
        pthread_mutex_init(&b[i].lock, NULL);
        b[i].head = NULL;
    }
    dc.buckets = b;
}

static struct dc_bucket *bucket_of(uint64_t hash)
{
    return &dc.buckets[(hash ^ (hash >> 32)) & (DC_BUCKETS - 1)];
}

static void count(atomic_uint_fast64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* ---- snapshots ---- */

static void attrs_of(const struct stat *st, struct dc_attrs *a)
{
    a->ino = st->st_ino;
    a->size = (uint64_t)st->st_size;
    a->nlink = st->st_nlink;
    a->mtime = st->st_mtim;
    a->ctime = st->st_ctim;
}

static bool ts_eq(struct timespec a, struct timespec b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static bool attrs_eq(const struct dc_attrs *a, const struct dc_attrs *b)
{
    return a->ino == b->ino && a->size == b->size && a->nlink == b->nlink &&
           ts_eq(a->mtime, b->mtime) && ts_eq(a->ctime, b->ctime);
}

/* Whether a snapshot taken now may be reused: see "Validity" in posix_dircache.h. A
 * ctime without a sub-second part means a filesystem that may keep whole seconds. */
static bool dc_trusted(const struct stat *st, const struct timespec *t0)
{
    long long window = st->st_ctim.tv_nsec == 0 ? DC_TRUST_COARSE_NS : DC_TRUST_NS;
    long long age = ((long long)t0->tv_sec - (long long)st->st_ctim.tv_sec) * 1000000000LL +
                    ((long long)t0->tv_nsec - (long long)st->st_ctim.tv_nsec);
    return age >= window;
}

static bool dc_reusable(struct dc_dir *d, const struct dc_attrs *now)
{
    return d->trusted && !atomic_load_explicit(&d->stale, memory_order_relaxed) &&
           attrs_eq(&d->attrs, now);
}

static struct dc_chunk *chunk_new(uint32_t cap)
{
    struct dc_chunk *c = malloc(sizeof(*c) + (size_t)cap * sizeof(struct dc_ent));
    if (!c)
        return NULL;
    atomic_init(&c->next, NULL);
    atomic_init(&c->n, 0);
    c->cap = cap;
    return c;
}

static void watch_release(struct dc_watch *w);

static void dir_free(struct dc_dir *d)
{
    if (d->watch)
        watch_release(d->watch);
    struct dc_chunk *c = d->first;
    while (c) {
        struct dc_chunk *next = atomic_load_explicit(&c->next, memory_order_relaxed);
        free(c);
        c = next;
    }
    while (d->names) {
        struct dc_names *next = d->names->next;
        free(d->names);
        d->names = next;
    }
    free(d->chunkv);
    free(d->index);
    pthread_mutex_destroy(&d->fill_lock);
    free(d);
}

void dc_put(struct dc_dir *d)
{
    if (atomic_fetch_sub_explicit(&d->refs, 1, memory_order_acq_rel) == 1)
        dir_free(d);
}

static struct dc_slot *index_alloc(uint32_t nslots)
{
    struct dc_slot *s = malloc(nslots * sizeof(*s));
    if (s)
        for (uint32_t i = 0; i < nslots; i++)
            s[i].chunk = DC_NO_CHUNK;
    return s;
}

static struct dc_dir *dir_new(uintptr_t owner, const struct fs_fh *fh, uint64_t hash,
                              const struct dc_attrs *a, bool trusted, uint64_t base)
{
    struct dc_dir *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    pthread_mutex_init(&d->fill_lock, NULL);
    atomic_init(&d->refs, 1);
    atomic_init(&d->referenced, true);
    atomic_init(&d->stale, false);
    atomic_init(&d->complete, false);
    d->trusted = trusted;
    d->hash = hash;
    d->owner = owner;
    d->fh = *fh;
    d->attrs = *a;
    d->base = base;
    /* A snapshot that will not be reused serves one listing: no index (nobody will
     * look a cookie up in it) and no small first chunk (its memory is back soon). */
    uint32_t cap = trusted ? DC_CHUNK_MIN : DC_CHUNK_MAX / 2;
    d->chunkv_cap = 8;
    d->chunkv = malloc(d->chunkv_cap * sizeof(*d->chunkv));
    d->first = chunk_new(cap);
    if (trusted) {
        d->index_mask = 31;
        d->index = index_alloc(d->index_mask + 1);
    }
    if (!d->chunkv || !d->first || (trusted && !d->index)) {
        dir_free(d);
        return NULL;
    }
    d->last = d->first;
    d->chunkv[0] = d->first;
    d->nchunks = 1;
    d->bytes = sizeof(*d) + d->chunkv_cap * sizeof(*d->chunkv) + sizeof(struct dc_chunk) +
               cap * sizeof(struct dc_ent);
    if (d->index)
        d->bytes += (d->index_mask + 1) * sizeof(struct dc_slot);
    return d;
}

/* ---- the cookie index (fill lock held) ---- */

static uint32_t slot_of(uint64_t cookie, uint32_t mask)
{
    uint64_t h = cookie * 0x9e3779b97f4a7c15ull;
    return (uint32_t)(h >> 32) & mask;
}

static void index_put(struct dc_slot *index, uint32_t mask, uint64_t cookie, uint32_t chunk,
                      uint32_t off)
{
    for (uint32_t i = slot_of(cookie, mask);; i = (i + 1) & mask) {
        if (index[i].chunk == DC_NO_CHUNK) {
            index[i] = (struct dc_slot){cookie, chunk, off};
            return;
        }
        /* A cookie seen twice (an ext4 hash collision): keep the first, as lseek to
         * it would. */
        if (index[i].cookie == cookie)
            return;
    }
}

static const struct dc_slot *index_get(const struct dc_dir *d, uint64_t cookie)
{
    for (uint32_t i = slot_of(cookie, d->index_mask);; i = (i + 1) & d->index_mask) {
        const struct dc_slot *s = &d->index[i];
        if (s->chunk == DC_NO_CHUNK)
            return NULL;
        if (s->cookie == cookie)
            return s;
    }
}

/* Room for one more entry in the index, keeping it at most half full. */
static int index_reserve(struct dc_dir *d)
{
    uint32_t nslots = d->index_mask + 1;
    if (!d->index || (d->nentries + 1) * 2 <= nslots)
        return 0;
    uint32_t mask = nslots * 2 - 1;
    struct dc_slot *n = index_alloc(mask + 1);
    if (!n)
        return -ENOMEM;
    for (uint32_t i = 0; i < nslots; i++)
        if (d->index[i].chunk != DC_NO_CHUNK)
            index_put(n, mask, d->index[i].cookie, d->index[i].chunk, d->index[i].off);
    free(d->index);
    d->index = n;
    d->index_mask = mask;
    d->bytes += (size_t)nslots * sizeof(*n);
    return 0;
}

/* ---- appending (fill lock held) ---- */

static char *names_alloc(struct dc_dir *d, size_t len)
{
    struct dc_names *b = d->names;
    if (!b || b->cap - b->used < len) {
        size_t cap = b ? b->cap * 2 : DC_NAMES_MIN;
        if (cap > DC_NAMES_MAX)
            cap = DC_NAMES_MAX;
        if (cap < len)
            cap = len;
        struct dc_names *n = malloc(sizeof(*n) + cap);
        if (!n)
            return NULL;
        n->next = b;
        n->used = 0;
        n->cap = cap;
        d->names = n;
        d->bytes += sizeof(*n) + cap;
        b = n;
    }
    char *p = b->buf + b->used;
    b->used += len;
    return p;
}

/* The chunk the next entry goes to, adding one when the last is full. */
static struct dc_chunk *chunk_for_append(struct dc_dir *d)
{
    struct dc_chunk *c = d->last;
    if (atomic_load_explicit(&c->n, memory_order_relaxed) < c->cap)
        return c;
    if (d->nchunks == d->chunkv_cap) {
        struct dc_chunk **v = realloc(d->chunkv, d->chunkv_cap * 2 * sizeof(*v));
        if (!v)
            return NULL;
        d->bytes += d->chunkv_cap * sizeof(*v);
        d->chunkv = v;
        d->chunkv_cap *= 2;
    }
    uint32_t cap = c->cap * 2 > DC_CHUNK_MAX ? DC_CHUNK_MAX : c->cap * 2;
    struct dc_chunk *n = chunk_new(cap);
    if (!n)
        return NULL;
    d->bytes += sizeof(*n) + (size_t)cap * sizeof(struct dc_ent);
    d->chunkv[d->nchunks++] = n;
    d->last = n;
    atomic_store_explicit(&c->next, n, memory_order_release);
    return n;
}

static int append(struct dc_dir *d, const char *name, size_t namelen, uint64_t ino,
                  uint64_t cookie, uint8_t type)
{
    if (index_reserve(d) < 0)
        return -ENOMEM;
    struct dc_chunk *c = chunk_for_append(d);
    char *p = c ? names_alloc(d, namelen + 1) : NULL;
    if (!p)
        return -ENOMEM;
    memcpy(p, name, namelen + 1);
    uint32_t i = atomic_load_explicit(&c->n, memory_order_relaxed);
    struct dc_ent *e = &c->ent[i];
    e->name = p;
    e->namelen = (uint16_t)namelen;
    e->ino = ino;
    e->cookie = cookie;
    e->type = type;
    atomic_init(&e->fh_state, DC_FH_NONE);
    atomic_init(&e->st_seq, 0);
    if (d->index)
        index_put(d->index, d->index_mask, cookie, d->nchunks - 1, i);
    d->nentries++;
    d->last_cookie = cookie;
    atomic_store_explicit(&c->n, i + 1, memory_order_release);
    return 0;
}

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

static void account(struct dc_dir *d, size_t bytes);

/*
 * Read one more getdents64 buffer into d, unless someone else did while the reader at
 * `seen` waited for the lock (then the reader just reads on).
 */
static int dc_fill(struct dc_dir *d, const struct dc_pos *seen, const struct dc_source *src)
{
    union {
        struct linux_dirent64 align;
        char b[DC_FILL_BIG];
    } buf;
    size_t size = d->trusted ? sizeof(buf.b) : DC_FILL_SMALL;
    int err = 0;

    pthread_mutex_lock(&d->fill_lock);
    if (atomic_load_explicit(&d->complete, memory_order_relaxed) || d->last != seen->c ||
        atomic_load_explicit(&seen->c->n, memory_order_relaxed) != seen->i) {
        pthread_mutex_unlock(&d->fill_lock);
        return 0;
    }
    uint64_t from = d->nentries ? d->last_cookie : d->base;
    long n = -1;
    pthread_mutex_lock(src->pos_lock);
    if (lseek(src->fd, (off_t)from, SEEK_SET) != -1)
        n = syscall(SYS_getdents64, src->fd, buf.b, size);
    if (n < 0)
        err = -errno;
    pthread_mutex_unlock(src->pos_lock);
    count(&dc.fills);
    if (n == 0)
        atomic_store_explicit(&d->complete, true, memory_order_release);
    for (long off = 0; !err && off < n;) {
        struct linux_dirent64 *de = (struct linux_dirent64 *)(buf.b + off);
        off += de->d_reclen;
        err = append(d, de->d_name, strlen(de->d_name), de->d_ino, (uint64_t)de->d_off,
                     de->d_type);
    }
    size_t bytes = d->bytes;
    pthread_mutex_unlock(&d->fill_lock);
    account(d, bytes);
    return err;
}

struct dc_ent *dc_next(struct dc_dir *d, struct dc_pos *pos, const struct dc_source *src, int *err)
{
    *err = 0;
    for (;;) {
        struct dc_chunk *c = pos->c;
        /* `complete` first: once it is seen, the counts read below are final (fills
         * that appended entries may have run between reading them and reading it) */
        bool complete = atomic_load_explicit(&d->complete, memory_order_acquire);
        if (pos->i < atomic_load_explicit(&c->n, memory_order_acquire))
            return &c->ent[pos->i++];
        struct dc_chunk *next = atomic_load_explicit(&c->next, memory_order_acquire);
        if (next && pos->i >= c->cap) {
            pos->c = next;
            pos->i = 0;
            continue;
        }
        if (complete)
            return NULL;
        *err = dc_fill(d, pos, src);
        if (*err)
            return NULL;
    }
}

/* The position after `cookie`, if d holds it (d is trusted, so it has an index). */
static bool dc_find(struct dc_dir *d, uint64_t cookie, struct dc_pos *pos)
{
    if (cookie == d->base) {
        *pos = (struct dc_pos){d->first, 0};
        return true;
    }
    pthread_mutex_lock(&d->fill_lock);
    const struct dc_slot *s = index_get(d, cookie);
    if (s)
        *pos = (struct dc_pos){d->chunkv[s->chunk], s->off + 1};
    pthread_mutex_unlock(&d->fill_lock);
    return s != NULL;
}

const struct fs_fh *dc_ent_fh(const struct dc_ent *e)
{
    if (atomic_load_explicit(&e->fh_state, memory_order_acquire) == DC_FH_SET)
        return &e->fh;
    return NULL;
}

void dc_ent_set_fh(struct dc_ent *e, const struct fs_fh *fh)
{
    uint8_t none = DC_FH_NONE;
    if (!atomic_compare_exchange_strong_explicit(&e->fh_state, &none, DC_FH_BUSY,
                                                 memory_order_acquire, memory_order_relaxed))
        return;
    e->fh = *fh;
    atomic_store_explicit(&e->fh_state, DC_FH_SET, memory_order_release);
}

/* ---- the table ---- */

static bool same_key(const struct dc_dir *d, uintptr_t owner, const struct fs_fh *fh,
                     uint64_t hash)
{
    return d->hash == hash && d->owner == owner && d->fh.len == fh->len &&
           memcmp(d->fh.data, fh->data, fh->len) == 0;
}

static void unhash_locked(struct dc_bucket *b, struct dc_dir *prev, struct dc_dir *d)
{
    if (prev)
        prev->next = d->next;
    else
        b->head = d->next;
    d->next = NULL;
    d->hashed = false;
    atomic_fetch_sub_explicit(&dc.bytes, d->accounted, memory_order_relaxed);
    atomic_fetch_sub_explicit(&dc.ndirs, 1, memory_order_relaxed);
    d->accounted = 0;
}

static bool over_limit(void)
{
    return atomic_load_explicit(&dc.bytes, memory_order_relaxed) >
               atomic_load_explicit(&dc.max_bytes, memory_order_relaxed) ||
           atomic_load_explicit(&dc.ndirs, memory_order_relaxed) >
               atomic_load_explicit(&dc.max_dirs, memory_order_relaxed);
}

/* CLOCK over the buckets until the cache is within its budget; two turns of the hand
 * at most (the second finds every referenced bit cleared by the first). Snapshots in
 * use may go: their readers keep them alive. */
static void dc_evict(void)
{
    if (!dc.buckets || pthread_mutex_trylock(&dc.evict_lock) != 0)
        return;
    for (unsigned n = 0; n < 2 * DC_BUCKETS && over_limit(); n++) {
        size_t i = atomic_fetch_add_explicit(&dc.hand, 1, memory_order_relaxed);
        struct dc_bucket *b = &dc.buckets[i & (DC_BUCKETS - 1)];
        struct dc_dir *victims = NULL;
        pthread_mutex_lock(&b->lock);
        struct dc_dir *prev = NULL, *d = b->head;
        while (d) {
            struct dc_dir *next = d->next;
            bool used = atomic_exchange_explicit(&d->referenced, false, memory_order_relaxed);
            if (!used || atomic_load_explicit(&d->stale, memory_order_relaxed)) {
                unhash_locked(b, prev, d);
                d->next = victims;
                victims = d;
                count(&dc.evictions);
            } else {
                prev = d;
            }
            d = next;
        }
        pthread_mutex_unlock(&b->lock);
        while (victims) {
            struct dc_dir *next = victims->next;
            dc_put(victims);
            victims = next;
        }
    }
    pthread_mutex_unlock(&dc.evict_lock);
}

/* Count d's growth to `bytes` in the total while it is cached; a snapshot grown past a
 * quarter of the budget leaves the table. */
static void account(struct dc_dir *d, size_t bytes)
{
    if (!dc.buckets)
        return;
    struct dc_bucket *b = bucket_of(d->hash);
    bool drop = false;
    pthread_mutex_lock(&b->lock);
    if (d->hashed && bytes > d->accounted) { /* two fills may report out of order */
        atomic_fetch_add_explicit(&dc.bytes, bytes - d->accounted, memory_order_relaxed);
        d->accounted = bytes;
        if (bytes > atomic_load_explicit(&dc.max_bytes, memory_order_relaxed) / 4) {
            struct dc_dir *prev = NULL;
            for (struct dc_dir *x = b->head; x != d; x = x->next)
                prev = x;
            unhash_locked(b, prev, d);
            drop = true;
        }
    }
    pthread_mutex_unlock(&b->lock);
    if (drop)
        dc_put(d);
    else if (over_limit())
        dc_evict();
}

/* The cached snapshot of (owner, fh), referenced, or NULL. */
static struct dc_dir *dc_lookup(uintptr_t owner, const struct fs_fh *fh, uint64_t hash)
{
    struct dc_bucket *b = bucket_of(hash);
    struct dc_dir *found = NULL;
    pthread_mutex_lock(&b->lock);
    for (struct dc_dir *d = b->head; d; d = d->next) {
        if (same_key(d, owner, fh, hash)) {
            atomic_fetch_add_explicit(&d->refs, 1, memory_order_relaxed);
            found = d;
            break;
        }
    }
    pthread_mutex_unlock(&b->lock);
    if (found && !atomic_load_explicit(&found->referenced, memory_order_relaxed))
        atomic_store_explicit(&found->referenced, true, memory_order_relaxed);
    return found;
}

/*
 * Cache n (new, trusted) unless a valid snapshot is cached already. One made at cookie 0
 * replaces a valid one made further on: it will come to hold the whole directory.
 */
static void dc_publish(struct dc_dir *n)
{
    struct dc_bucket *b = bucket_of(n->hash);
    struct dc_dir *old = NULL;
    bool added = false;
    pthread_mutex_lock(&b->lock);
    struct dc_dir *prev = NULL, *x = b->head;
    while (x && !same_key(x, n->owner, &n->fh, n->hash)) {
        prev = x;
        x = x->next;
    }
    if (!x || !dc_reusable(x, &n->attrs) || (n->base == 0 && x->base != 0)) {
        if (x) {
            unhash_locked(b, prev, x);
            old = x;
        }
        atomic_fetch_add_explicit(&n->refs, 1, memory_order_relaxed); /* the table's */
        n->hashed = true;
        n->accounted = n->bytes; /* no one else has n yet: no fill lock needed */
        n->next = b->head;
        b->head = n;
        atomic_fetch_add_explicit(&dc.bytes, n->accounted, memory_order_relaxed);
        atomic_fetch_add_explicit(&dc.ndirs, 1, memory_order_relaxed);
        added = true;
    }
    pthread_mutex_unlock(&b->lock);
    if (old)
        dc_put(old);
    if (added && over_limit())
        dc_evict();
}

int dc_open(uintptr_t owner, const struct fs_fh *fh, uint64_t hash, const struct stat *st,
            const struct timespec *t0, uint64_t cookie, struct dc_dir **out, struct dc_pos *pos)
{
    pthread_once(&dc_once, dc_init);
    struct dc_attrs now;
    attrs_of(st, &now);
    bool caching = dc.buckets && atomic_load_explicit(&dc.max_bytes, memory_order_relaxed) > 0;
    struct dc_dir *s = caching ? dc_lookup(owner, fh, hash) : NULL;
    if (s) {
        if (dc_reusable(s, &now)) {
            if (dc_find(s, cookie, pos)) {
                count(&dc.hits);
                *out = s;
                return 0;
            }
        } else {
            atomic_store_explicit(&s->stale, true, memory_order_relaxed);
        }
        dc_put(s);
    }
    count(&dc.misses);
    bool trusted = caching && dc_trusted(st, t0);
    struct dc_dir *n = dir_new(owner, fh, hash, &now, trusted, cookie);
    if (!n)
        return -ENOMEM;
    if (trusted)
        dc_publish(n);
    *out = n;
    *pos = (struct dc_pos){n->first, 0};
    return 0;
}

/* ---- entry attributes ---- */

/* Modification generations, one per st_dev bucket (a collision only invalidates more). */
#define DC_MODGENS 64u
static struct {
    _Atomic uint64_t v;
} __attribute__((aligned(64))) dc_modgens[DC_MODGENS];

_Atomic uint64_t *dc_modgen(dev_t dev)
{
    uint64_t h = (uint64_t)dev * 0x9e3779b97f4a7c15ull;
    return &dc_modgens[(h >> 32) % DC_MODGENS].v;
}

struct dc_watch {
    struct dc_watch *next; /* wd table chain */
    int wd;
    unsigned refs;      /* snapshots holding it (inotify lock) */
    bool hashed;        /* in the wd table: the kernel still has the watch */
    atomic_bool dead;   /* IN_IGNORED seen: serve and store nothing more */
    _Atomic uint64_t gen;
};

#define DC_WD_BUCKETS 256u
#define DC_WATCH_MASK                                                                       \
    (IN_ATTRIB | IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM |       \
     IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK)

static struct {
    pthread_mutex_t lock; /* everything here but the counters and the test hook */
    int fd;               /* 0: not made yet (fd 0 is never ours), -1: failed */
    struct dc_watch *tab[DC_WD_BUCKETS];
    unsigned nwatches;
    atomic_bool fail_watches;
    atomic_uint_fast64_t hits, stores, events, overflows, failures;
} dn = {.lock = PTHREAD_MUTEX_INITIALIZER};

static struct dc_watch **wd_slot(int wd)
{
    return &dn.tab[(unsigned)wd % DC_WD_BUCKETS];
}

static struct dc_watch *wd_find(int wd)
{
    for (struct dc_watch *w = *wd_slot(wd); w; w = w->next)
        if (w->wd == wd)
            return w;
    return NULL;
}

static void wd_unhash(struct dc_watch *w)
{
    struct dc_watch **pp = wd_slot(w->wd);
    while (*pp != w)
        pp = &(*pp)->next;
    *pp = w->next;
    w->next = NULL;
    w->hashed = false;
}

static void bump(struct dc_watch *w)
{
    atomic_fetch_add_explicit(&w->gen, 1, memory_order_relaxed);
}

static void bump_all(void)
{
    for (unsigned i = 0; i < DC_WD_BUCKETS; i++)
        for (struct dc_watch *w = dn.tab[i]; w; w = w->next)
            bump(w);
}

/* Read every queued event (inotify lock held). */
static void drain_locked(void)
{
    union {
        struct inotify_event align;
        char b[16384];
    } buf;
    for (;;) {
        ssize_t n = read(dn.fd, buf.b, sizeof(buf.b));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN) /* cannot happen; but then trust nothing */
            bump_all();
        if (n <= 0)
            return;
        for (ssize_t off = 0; off < n;) {
            const struct inotify_event *ev = (const void *)(buf.b + off);
            off += (ssize_t)(sizeof(*ev) + ev->len);
            count(&dn.events);
            if (ev->mask & IN_Q_OVERFLOW) {
                count(&dn.overflows);
                bump_all();
                continue;
            }
            struct dc_watch *w = wd_find(ev->wd);
            if (!w)
                continue; /* a watch we removed */
            bump(w);
            if (ev->mask & IN_IGNORED) {
                atomic_store_explicit(&w->dead, true, memory_order_relaxed);
                wd_unhash(w);
                dn.nwatches--;
            }
        }
    }
}

/* A watch on directory fd `dirfd`, shared with the snapshots already watching it
 * (inotify lock held, queue just drained so no IN_IGNORED of a wd is pending unread). */
static struct dc_watch *watch_get_locked(int dirfd)
{
    if (atomic_load_explicit(&dn.fail_watches, memory_order_relaxed))
        return NULL;
    char path[32];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", dirfd);
    int wd = inotify_add_watch(dn.fd, path, DC_WATCH_MASK);
    if (wd < 0)
        return NULL;
    struct dc_watch *w = wd_find(wd);
    if (w) {
        w->refs++;
        return w;
    }
    w = calloc(1, sizeof(*w));
    if (!w) {
        inotify_rm_watch(dn.fd, wd);
        return NULL;
    }
    w->wd = wd;
    w->refs = 1;
    w->hashed = true;
    w->next = *wd_slot(wd);
    *wd_slot(wd) = w;
    dn.nwatches++;
    return w;
}

static void watch_release(struct dc_watch *w)
{
    pthread_mutex_lock(&dn.lock);
    if (--w->refs == 0) {
        if (w->hashed) {
            inotify_rm_watch(dn.fd, w->wd);
            wd_unhash(w);
            dn.nwatches--;
        }
        free(w);
    }
    pthread_mutex_unlock(&dn.lock);
}

void dc_attrs_begin(struct dc_dir *d, int dirfd, _Atomic uint64_t *mgen, struct dc_attr_ctx *c)
{
    *c = (struct dc_attr_ctx){0};
    if (!d->trusted) /* serves this listing only: nothing to reuse */
        return;
    pthread_mutex_lock(&dn.lock);
    if (dn.fd == 0) {
        dn.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (dn.fd == 0) { /* fd 0 was closed: keep it, take another */
            int fd = fcntl(0, F_DUPFD_CLOEXEC, 1);
            dn.fd = fd < 0 ? -1 : fd;
        } else if (dn.fd < 0) {
            dn.fd = -1;
        }
    }
    if (dn.fd > 0) {
        drain_locked();
        if (d->watch_state == DC_WATCH_NONE) {
            d->watch = watch_get_locked(dirfd);
            d->watch_state = d->watch ? DC_WATCH_SET : DC_WATCH_FAILED;
            if (!d->watch)
                count(&dn.failures);
        }
        struct dc_watch *w = d->watch;
        if (w && !atomic_load_explicit(&w->dead, memory_order_relaxed)) {
            c->on = true;
            c->wgen = atomic_load_explicit(&w->gen, memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&dn.lock);
    c->mgen = atomic_load_explicit(mgen, memory_order_acquire);
}

/*
 * The seqlock without fences (ThreadSanitizer does not model them): the writer's word
 * stores are release stores after its odd sequence number, the reader's word loads
 * acquire loads before its second look at the sequence, so a reader that saw any word
 * of a write sees that write's odd (or a later) sequence number the second time.
 */
bool dc_attrs_get(struct dc_ent *e, struct dc_attr_ctx *c, struct stat *st)
{
    if (!c->on)
        return false;
    unsigned s1 = atomic_load_explicit(&e->st_seq, memory_order_acquire);
    if (s1 == 0 || (s1 & 1))
        return false;
    uint64_t w[DC_ST_WORDS];
    for (size_t i = 0; i < DC_ST_WORDS; i++)
        w[i] = atomic_load_explicit(&e->st_w[i], memory_order_acquire);
    if (atomic_load_explicit(&e->st_seq, memory_order_relaxed) != s1)
        return false;
    if (w[DC_ST_WORDS - 2] != c->mgen || w[DC_ST_WORDS - 1] != c->wgen)
        return false;
    memcpy(st, w, sizeof(*st));
    c->hits++;
    return true;
}

void dc_attrs_put(struct dc_ent *e, struct dc_attr_ctx *c, const struct stat *st)
{
    if (!c->on || S_ISDIR(st->st_mode) || st->st_nlink != 1)
        return;
    unsigned s = atomic_load_explicit(&e->st_seq, memory_order_relaxed);
    if ((s & 1) || !atomic_compare_exchange_strong_explicit(&e->st_seq, &s, s + 1,
                                                            memory_order_relaxed,
                                                            memory_order_relaxed))
        return; /* someone else is storing it */
    uint64_t w[DC_ST_WORDS];
    memcpy(w, st, sizeof(*st));
    w[DC_ST_WORDS - 2] = c->mgen;
    w[DC_ST_WORDS - 1] = c->wgen;
    for (size_t i = 0; i < DC_ST_WORDS; i++)
        atomic_store_explicit(&e->st_w[i], w[i], memory_order_release);
    /* never back to 0 ("never written") when the counter wraps */
    atomic_store_explicit(&e->st_seq, s + 2 == 0 ? 2 : s + 2, memory_order_release);
    c->stores++;
}

void dc_attrs_end(const struct dc_attr_ctx *c)
{
    if (c->hits)
        atomic_fetch_add_explicit(&dn.hits, c->hits, memory_order_relaxed);
    if (c->stores)
        atomic_fetch_add_explicit(&dn.stores, c->stores, memory_order_relaxed);
}

void dc_get_attr_stats(struct dc_attr_stats *s)
{
    s->hits = atomic_load_explicit(&dn.hits, memory_order_relaxed);
    s->stores = atomic_load_explicit(&dn.stores, memory_order_relaxed);
    s->events = atomic_load_explicit(&dn.events, memory_order_relaxed);
    s->overflows = atomic_load_explicit(&dn.overflows, memory_order_relaxed);
    s->watch_failures = atomic_load_explicit(&dn.failures, memory_order_relaxed);
    pthread_mutex_lock(&dn.lock);
    s->watches = dn.nwatches;
    pthread_mutex_unlock(&dn.lock);
}

void dc_test_fail_watches(bool fail)
{
    atomic_store_explicit(&dn.fail_watches, fail, memory_order_relaxed);
}

void dc_forget_owner(uintptr_t owner)
{
    pthread_once(&dc_once, dc_init);
    if (!dc.buckets)
        return;
    for (unsigned i = 0; i < DC_BUCKETS; i++) {
        struct dc_bucket *b = &dc.buckets[i];
        struct dc_dir *victims = NULL;
        pthread_mutex_lock(&b->lock);
        struct dc_dir *prev = NULL, *d = b->head;
        while (d) {
            struct dc_dir *next = d->next;
            if (d->owner == owner) {
                unhash_locked(b, prev, d);
                d->next = victims;
                victims = d;
            } else {
                prev = d;
            }
            d = next;
        }
        pthread_mutex_unlock(&b->lock);
        while (victims) {
            struct dc_dir *next = victims->next;
            dc_put(victims);
            victims = next;
        }
    }
}

void dc_set_limit(size_t max_bytes, unsigned max_dirs)
{
    pthread_once(&dc_once, dc_init);
    atomic_store_explicit(&dc.max_bytes, max_bytes, memory_order_relaxed);
    atomic_store_explicit(&dc.max_dirs, max_dirs, memory_order_relaxed);
    if (over_limit())
        dc_evict();
}

void dc_get_stats(struct fs_posix_dircache_stats *s)
{
    s->hits = atomic_load_explicit(&dc.hits, memory_order_relaxed);
    s->misses = atomic_load_explicit(&dc.misses, memory_order_relaxed);
    s->fills = atomic_load_explicit(&dc.fills, memory_order_relaxed);
    s->evictions = atomic_load_explicit(&dc.evictions, memory_order_relaxed);
    s->bytes = atomic_load_explicit(&dc.bytes, memory_order_relaxed);
    s->dirs = atomic_load_explicit(&dc.ndirs, memory_order_relaxed);
}

void fs_posix_set_dircache_limit(size_t max_bytes, unsigned max_dirs)
{
    dc_set_limit(max_bytes, max_dirs);
}

void fs_posix_dircache_stats(struct fs_posix_dircache_stats *s)
{
    dc_get_stats(s);
}
