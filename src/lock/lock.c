/*
 * The lock space (see lock.h for the contract).
 *
 * Objects: hosts and owners (refcounted, in hash tables keyed by their bytes), files
 * (one per file key while any owner holds a lock or queues a waiter on it), holds (one
 * per owner and file: the open file description and our record of its ranges) and
 * waiters (a FIFO per file).
 *
 * Locking: ls->mu guards the tables, refcounts, waiter counters and the retry schedule;
 * file->mu guards the file's holds and waiters. Order: file->mu, then ls->mu; nothing
 * takes a file mutex while holding ls->mu. Kernel calls and open_file run under the file
 * mutex only (F_OFD_SETLK never sleeps on a conflict). Granted callbacks run on the
 * retry thread with no mutex held.
 *
 * A file is referenced by each caller working on it and once more ("busy") while it has
 * holds or waiters; it is freed at zero references.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lock/lock.h"
#include "lock/lock_range.h"

/* ---- small intrusive hash table keyed by bytes ---- */

struct hent {
    struct hent *next;
    uint64_t hash;
    uint8_t *key;
    size_t key_len;
};

struct htab {
    struct hent **b;
    size_t nb, n;
};

static uint64_t hash_bytes(const void *p, size_t n)
{
    const uint8_t *s = p;
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static struct hent *htab_find(struct htab *t, const void *key, size_t len, uint64_t h)
{
    if (!t->nb)
        return NULL;
    for (struct hent *e = t->b[h & (t->nb - 1)]; e; e = e->next)
        if (e->hash == h && e->key_len == len && memcmp(e->key, key, len) == 0)
            return e;
    return NULL;
}

static int htab_insert(struct htab *t, struct hent *e)
{
    if (t->n >= t->nb) {
        size_t nb = t->nb ? t->nb * 2 : 64;
        struct hent **b = calloc(nb, sizeof(*b));
        if (!b)
            return -ENOMEM;
        for (size_t i = 0; i < t->nb; i++)
            for (struct hent *x = t->b[i], *nx; x; x = nx) {
                nx = x->next;
                x->next = b[x->hash & (nb - 1)];
                b[x->hash & (nb - 1)] = x;
            }
        free(t->b);
        t->b = b;
        t->nb = nb;
    }
    struct hent **slot = &t->b[e->hash & (t->nb - 1)];
    e->next = *slot;
    *slot = e;
    t->n++;
    return 0;
}

static void htab_remove(struct htab *t, struct hent *e)
{
    for (struct hent **p = &t->b[e->hash & (t->nb - 1)]; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            t->n--;
            return;
        }
}

static int hent_init(struct hent *e, const void *key, size_t len)
{
    e->key = malloc(len ? len : 1);
    if (!e->key)
        return -ENOMEM;
    memcpy(e->key, key, len);
    e->key_len = len;
    e->hash = hash_bytes(key, len);
    e->next = NULL;
    return 0;
}

/* ---- objects ---- */

struct lock_host {
    struct hent h; /* first */
    unsigned refs;
    unsigned nwaiters;
};

struct lock_owner {
    struct hent h; /* first */
    struct lock_space *ls;
    struct lock_host *host;
    unsigned refs;
};

struct lock_hold {
    struct lock_hold *next;
    struct lock_owner *owner; /* referenced */
    int fd;
    int accmode;
    unsigned nwaiters; /* this owner's waiters on the file */
    struct lock_rngset r;
};

struct lock_waiter {
    struct lock_waiter *next;
    struct lock_hold *hold;
    short type;
    off_t s, e;
    lock_granted_fn fn;
    void *arg;
    enum lock_status result; /* for the callback, after removal */
};

struct lock_file {
    struct hent h; /* first */
    struct lock_space *ls;
    pthread_mutex_t mu;
    unsigned refs; /* ls->mu */
    bool busy;     /* mu: holds a reference while it has holds or waiters */
    struct lock_hold *holds;
    struct lock_waiter *waiters;
    /* retry schedule, ls->mu */
    bool sched;
    struct lock_file *snext;
    int64_t next_ns, interval_ns;
};

struct lock_space {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct htab hosts, owners, files;
    struct lock_space_params p;
    unsigned nwaiters, nfds;
    struct lock_file *sched; /* files with waiters */
    pthread_t thread;
    bool stop;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

const char *lock_status_name(enum lock_status st)
{
    static const char *const names[] = {"OK", "DENIED", "BLOCKED", "ALREADY_QUEUED", "NOLOCKS",
                                        "ACCESS", "STALE", "IO", "INVAL", "NOT_QUEUED"};
    return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}

/* ---- hosts and owners ---- */

static void host_put_locked(struct lock_space *ls, struct lock_host *h)
{
    if (--h->refs)
        return;
    htab_remove(&ls->hosts, &h->h);
    free(h->h.key);
    free(h);
}

struct lock_owner *lock_owner_get(struct lock_space *ls, const void *key, size_t key_len,
                                  const void *host_key, size_t host_key_len)
{
    uint64_t hash = hash_bytes(key, key_len);
    pthread_mutex_lock(&ls->mu);
    struct lock_owner *o = (struct lock_owner *)htab_find(&ls->owners, key, key_len, hash);
    if (o) {
        o->refs++;
        pthread_mutex_unlock(&ls->mu);
        return o;
    }
    uint64_t hh = hash_bytes(host_key, host_key_len);
    struct lock_host *h = (struct lock_host *)htab_find(&ls->hosts, host_key, host_key_len, hh);
    if (h) {
        h->refs++;
    } else {
        h = calloc(1, sizeof(*h));
        if (!h || hent_init(&h->h, host_key, host_key_len) || htab_insert(&ls->hosts, &h->h)) {
            if (h)
                free(h->h.key);
            free(h);
            pthread_mutex_unlock(&ls->mu);
            return NULL;
        }
        h->refs = 1;
    }
    o = calloc(1, sizeof(*o));
    if (!o || hent_init(&o->h, key, key_len) || htab_insert(&ls->owners, &o->h)) {
        if (o)
            free(o->h.key);
        free(o);
        host_put_locked(ls, h);
        pthread_mutex_unlock(&ls->mu);
        return NULL;
    }
    o->ls = ls;
    o->host = h;
    o->refs = 1;
    pthread_mutex_unlock(&ls->mu);
    return o;
}

struct lock_owner *lock_owner_ref(struct lock_owner *o)
{
    pthread_mutex_lock(&o->ls->mu);
    o->refs++;
    pthread_mutex_unlock(&o->ls->mu);
    return o;
}

static void owner_put_locked(struct lock_space *ls, struct lock_owner *o)
{
    if (--o->refs)
        return;
    htab_remove(&ls->owners, &o->h);
    host_put_locked(ls, o->host);
    free(o->h.key);
    free(o);
}

void lock_owner_put(struct lock_owner *o)
{
    if (!o)
        return;
    struct lock_space *ls = o->ls;
    pthread_mutex_lock(&ls->mu);
    owner_put_locked(ls, o);
    pthread_mutex_unlock(&ls->mu);
}

const void *lock_owner_key(const struct lock_owner *o, size_t *len)
{
    *len = o->h.key_len;
    return o->h.key;
}

/* ---- files ---- */

static struct lock_file *file_get(struct lock_space *ls, const void *key, size_t len, bool create)
{
    uint64_t hash = hash_bytes(key, len);
    pthread_mutex_lock(&ls->mu);
    struct lock_file *f = (struct lock_file *)htab_find(&ls->files, key, len, hash);
    if (f) {
        f->refs++;
    } else if (create) {
        f = calloc(1, sizeof(*f));
        if (!f || hent_init(&f->h, key, len) || htab_insert(&ls->files, &f->h)) {
            if (f)
                free(f->h.key);
            free(f);
            f = NULL;
        } else {
            f->ls = ls;
            f->refs = 1;
            pthread_mutex_init(&f->mu, NULL);
        }
    }
    pthread_mutex_unlock(&ls->mu);
    return f;
}

static void file_put(struct lock_file *f)
{
    struct lock_space *ls = f->ls;
    pthread_mutex_lock(&ls->mu);
    bool last = --f->refs == 0;
    if (last)
        htab_remove(&ls->files, &f->h);
    pthread_mutex_unlock(&ls->mu);
    if (last) {
        pthread_mutex_destroy(&f->mu);
        free(f->h.key);
        free(f);
    }
}

static void sched_unlink_locked(struct lock_space *ls, struct lock_file *f)
{
    for (struct lock_file **p = &ls->sched; *p; p = &(*p)->snext)
        if (*p == f) {
            *p = f->snext;
            break;
        }
    f->sched = false;
}

/* f->mu held: keep the busy reference and the schedule in step with the contents. */
static void file_settle(struct lock_file *f)
{
    struct lock_space *ls = f->ls;
    bool busy = f->holds || f->waiters;
    pthread_mutex_lock(&ls->mu);
    if (!f->waiters && f->sched)
        sched_unlink_locked(ls, f);
    if (busy != f->busy) {
        f->busy = busy;
        if (busy)
            f->refs++;
        else
            f->refs--; /* the caller's own reference keeps it above zero */
    }
    pthread_mutex_unlock(&ls->mu);
}

/* f->mu held. delay_ns 0 = retry now (one of our owners released something). */
static void file_schedule(struct lock_file *f, int64_t delay_ns)
{
    struct lock_space *ls = f->ls;
    if (!f->waiters)
        return;
    int64_t min = (int64_t)ls->p.retry_min_ms * 1000000;
    int64_t at = now_ns() + delay_ns;
    pthread_mutex_lock(&ls->mu);
    if (!f->sched) {
        f->sched = true;
        f->snext = ls->sched;
        ls->sched = f;
        f->next_ns = at;
    } else if (at < f->next_ns) {
        f->next_ns = at;
    }
    f->interval_ns = min;
    pthread_cond_signal(&ls->cv);
    pthread_mutex_unlock(&ls->mu);
}

/* ---- holds ---- */

static struct lock_hold *hold_find(struct lock_file *f, struct lock_owner *o)
{
    for (struct lock_hold *h = f->holds; h; h = h->next)
        if (h->owner == o)
            return h;
    return NULL;
}

static bool access_error(int err)
{
    return err == -EACCES || err == -EPERM || err == -EROFS || err == -ETXTBSY || err == -EISDIR;
}

static enum lock_status open_error(int err)
{
    if (access_error(err) || err == -EBADF)
        return LOCK_ACCESS;
    if (err == -ENOENT || err == -ESTALE)
        return LOCK_STALE;
    if (err == -EMFILE || err == -ENFILE || err == -ENOMEM || err == -ENOLCK)
        return LOCK_NOLOCKS;
    return LOCK_IO;
}

/* A new fd: read-write if the file allows it, else the access `type` needs. */
static int open_for(const struct lock_file_id *fid, short type, int *accmode)
{
    const int extra = O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    int fd = fid->open_file(fid->ctx, O_RDWR | extra);
    *accmode = O_RDWR;
    if (fd < 0 && access_error(fd)) {
        *accmode = type == F_WRLCK ? O_WRONLY : O_RDONLY;
        fd = fid->open_file(fid->ctx, *accmode | extra);
    }
    return fd;
}

static enum lock_status hold_open(struct lock_file *f, struct lock_owner *o, const struct lock_file_id *fid,
                                  short type, struct lock_hold **out)
{
    struct lock_hold *h = calloc(1, sizeof(*h));
    if (!h)
        return LOCK_NOLOCKS;
    h->fd = open_for(fid, type, &h->accmode);
    if (h->fd < 0) {
        enum lock_status st = open_error(h->fd);
        free(h);
        return st;
    }
    struct lock_space *ls = f->ls;
    pthread_mutex_lock(&ls->mu);
    o->refs++;
    ls->nfds++;
    pthread_mutex_unlock(&ls->mu);
    h->owner = o;
    h->next = f->holds;
    f->holds = h;
    *out = h;
    return LOCK_OK;
}

/* f->mu held: close the hold's description (the kernel drops its locks) and free it. */
static void hold_free(struct lock_file *f, struct lock_hold *h)
{
    for (struct lock_hold **p = &f->holds; *p; p = &(*p)->next)
        if (*p == h) {
            *p = h->next;
            break;
        }
    close(h->fd);
    lock_rngset_free(&h->r);
    struct lock_space *ls = f->ls;
    pthread_mutex_lock(&ls->mu);
    ls->nfds--;
    owner_put_locked(ls, h->owner);
    pthread_mutex_unlock(&ls->mu);
    free(h);
}

static void hold_maybe_free(struct lock_file *f, struct lock_hold *h)
{
    if (h && h->r.n == 0 && h->nwaiters == 0)
        hold_free(f, h);
}

/* F_OFD_SETLK on the hold and, on success, the same change in our record: 0 or -errno. */
static int hold_setlk(struct lock_hold *h, short type, off_t s, off_t e)
{
    if (lock_rngset_reserve(&h->r))
        return -ENOMEM;
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = s,
                       .l_len = e == OFF_MAX ? 0 : e - s + 1, .l_pid = 0};
    if (fcntl(h->fd, F_OFD_SETLK, &fl) < 0)
        return errno == EACCES ? -EAGAIN : -errno;
    lock_rngset_apply(&h->r, s, e, type);
    return 0;
}

static enum lock_status setlk_error(int err)
{
    if (err == -EBADF)
        return LOCK_ACCESS; /* the description lacks the access the lock type needs */
    if (err == -ENOLCK || err == -ENOMEM)
        return LOCK_NOLOCKS;
    if (err == -EINVAL)
        return LOCK_INVAL;
    return LOCK_IO;
}

static void to_wire(off_t s, off_t e, uint64_t *start, uint64_t *len)
{
    *start = (uint64_t)s;
    *len = e == OFF_MAX ? 0 : (uint64_t)(e - s) + 1;
}

/* ---- waiters ---- */

/* f->mu held: unlink a waiter and update the counters (does not free it). */
static void waiter_unlink(struct lock_file *f, struct lock_waiter **pp)
{
    struct lock_waiter *w = *pp;
    *pp = w->next;
    w->hold->nwaiters--;
    struct lock_space *ls = f->ls;
    pthread_mutex_lock(&ls->mu);
    ls->nwaiters--;
    w->hold->owner->host->nwaiters--;
    pthread_mutex_unlock(&ls->mu);
}

/* f->mu held: drop a hold's waiters without callbacks, then the hold itself. */
static void hold_release(struct lock_file *f, struct lock_hold *h)
{
    for (struct lock_waiter **pp = &f->waiters; *pp;) {
        if ((*pp)->hold == h) {
            struct lock_waiter *w = *pp;
            waiter_unlink(f, pp);
            free(w);
        } else {
            pp = &(*pp)->next;
        }
    }
    hold_free(f, h);
}

static enum lock_status waiter_add(struct lock_file *f, struct lock_hold *h, short type, off_t s, off_t e,
                                   const struct lock_req *req)
{
    struct lock_waiter **pp = &f->waiters;
    for (; *pp; pp = &(*pp)->next) {
        struct lock_waiter *x = *pp;
        if (x->hold == h && x->type == type && x->s == s && x->e == e)
            return LOCK_ALREADY_QUEUED;
    }
    struct lock_space *ls = f->ls;
    struct lock_host *host = h->owner->host;
    pthread_mutex_lock(&ls->mu);
    bool full = ls->nwaiters >= ls->p.max_waiters || host->nwaiters >= ls->p.max_waiters_per_host;
    if (!full) {
        ls->nwaiters++;
        host->nwaiters++;
    }
    pthread_mutex_unlock(&ls->mu);
    if (full)
        return LOCK_NOLOCKS;
    struct lock_waiter *w = calloc(1, sizeof(*w));
    if (!w) {
        pthread_mutex_lock(&ls->mu);
        ls->nwaiters--;
        host->nwaiters--;
        pthread_mutex_unlock(&ls->mu);
        return LOCK_NOLOCKS;
    }
    *w = (struct lock_waiter){NULL, h, type, s, e, req->granted, req->arg, LOCK_OK};
    *pp = w;
    h->nwaiters++;
    file_schedule(f, (int64_t)ls->p.retry_min_ms * 1000000);
    return LOCK_BLOCKED;
}

/* f->mu held: try every waiter in FIFO order; move the finished ones to *done. */
static void file_retry(struct lock_file *f, struct lock_waiter **done)
{
    for (struct lock_waiter **pp = &f->waiters; *pp;) {
        struct lock_waiter *w = *pp;
        int r = hold_setlk(w->hold, w->type, w->s, w->e);
        if (r == -EAGAIN) {
            pp = &w->next;
            continue;
        }
        w->result = r == 0 ? LOCK_OK : setlk_error(r);
        waiter_unlink(f, pp);
        struct lock_hold *h = w->hold;
        w->hold = NULL;
        hold_maybe_free(f, h);
        w->next = *done;
        *done = w;
    }
}

static void run_callbacks(struct lock_waiter *done)
{
    /* reverse to FIFO order */
    struct lock_waiter *rev = NULL;
    while (done) {
        struct lock_waiter *n = done->next;
        done->next = rev;
        rev = done;
        done = n;
    }
    while (rev) {
        struct lock_waiter *n = rev->next;
        if (rev->fn)
            rev->fn(rev->arg, rev->result);
        free(rev);
        rev = n;
    }
}

static void *retry_thread(void *arg)
{
    struct lock_space *ls = arg;
    struct lock_file **due = NULL;
    size_t cap = 0;
    pthread_mutex_lock(&ls->mu);
    while (!ls->stop) {
        int64_t now = now_ns(), next = INT64_MAX;
        size_t n = 0;
        for (struct lock_file *f = ls->sched; f; f = f->snext) {
            if (f->next_ns <= now) {
                if (n == cap) {
                    size_t nc = cap ? cap * 2 : 16;
                    struct lock_file **d = realloc(due, nc * sizeof(*d));
                    if (!d)
                        break;
                    due = d;
                    cap = nc;
                }
                f->refs++;
                due[n++] = f;
            } else if (f->next_ns < next) {
                next = f->next_ns;
            }
        }
        if (n == 0) {
            if (next == INT64_MAX) {
                pthread_cond_wait(&ls->cv, &ls->mu);
            } else {
                struct timespec ts = {next / 1000000000, next % 1000000000};
                pthread_cond_timedwait(&ls->cv, &ls->mu, &ts);
            }
            continue;
        }
        pthread_mutex_unlock(&ls->mu);
        struct lock_waiter *done = NULL;
        for (size_t i = 0; i < n; i++) {
            struct lock_file *f = due[i];
            pthread_mutex_lock(&f->mu);
            file_retry(f, &done);
            pthread_mutex_lock(&ls->mu);
            if (f->sched) {
                /* back off; a kick during the retry could not happen (it needs f->mu) */
                int64_t max = (int64_t)ls->p.retry_max_ms * 1000000;
                f->interval_ns = f->interval_ns * 2 > max ? max : f->interval_ns * 2;
                f->next_ns = now_ns() + f->interval_ns;
            }
            pthread_mutex_unlock(&ls->mu);
            file_settle(f);
            pthread_mutex_unlock(&f->mu);
            file_put(f);
        }
        run_callbacks(done);
        pthread_mutex_lock(&ls->mu);
    }
    pthread_mutex_unlock(&ls->mu);
    free(due);
    return NULL;
}

/* ---- space ---- */

struct lock_space *lock_space_create(const struct lock_space_params *params)
{
    struct lock_space *ls = calloc(1, sizeof(*ls));
    if (!ls)
        return NULL;
    if (params)
        ls->p = *params;
    if (!ls->p.max_waiters)
        ls->p.max_waiters = 8192;
    if (!ls->p.max_waiters_per_host)
        ls->p.max_waiters_per_host = 1024;
    if (!ls->p.retry_min_ms)
        ls->p.retry_min_ms = 10;
    if (!ls->p.retry_max_ms)
        ls->p.retry_max_ms = 500;
    if (ls->p.retry_max_ms < ls->p.retry_min_ms)
        ls->p.retry_max_ms = ls->p.retry_min_ms;
    pthread_mutex_init(&ls->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ls->cv, &ca);
    pthread_condattr_destroy(&ca);
    int err = pthread_create(&ls->thread, NULL, retry_thread, ls);
    if (err) {
        pthread_cond_destroy(&ls->cv);
        pthread_mutex_destroy(&ls->mu);
        free(ls);
        errno = err;
        return NULL;
    }
    return ls;
}

static void htab_free_all(struct htab *t, void (*fn)(struct hent *))
{
    for (size_t i = 0; i < t->nb; i++)
        for (struct hent *e = t->b[i], *n; e; e = n) {
            n = e->next;
            if (fn)
                fn(e);
            free(e->key);
            free(e);
        }
    free(t->b);
}

static void file_destroy(struct hent *e)
{
    struct lock_file *f = (struct lock_file *)e;
    while (f->waiters) {
        struct lock_waiter *w = f->waiters;
        f->waiters = w->next;
        free(w);
    }
    while (f->holds) {
        struct lock_hold *h = f->holds;
        f->holds = h->next;
        close(h->fd);
        lock_rngset_free(&h->r);
        free(h);
    }
    pthread_mutex_destroy(&f->mu);
}

void lock_space_destroy(struct lock_space *ls)
{
    if (!ls)
        return;
    pthread_mutex_lock(&ls->mu);
    ls->stop = true;
    pthread_cond_signal(&ls->cv);
    pthread_mutex_unlock(&ls->mu);
    pthread_join(ls->thread, NULL);
    htab_free_all(&ls->files, file_destroy);
    htab_free_all(&ls->owners, NULL);
    htab_free_all(&ls->hosts, NULL);
    pthread_cond_destroy(&ls->cv);
    pthread_mutex_destroy(&ls->mu);
    free(ls);
}

void lock_space_stats(struct lock_space *ls, struct lock_space_stats *st)
{
    pthread_mutex_lock(&ls->mu);
    st->files = (unsigned)ls->files.n;
    st->fds = ls->nfds;
    st->waiters = ls->nwaiters;
    pthread_mutex_unlock(&ls->mu);
}

/* ---- operations ---- */

static short fl_type(enum lock_type t)
{
    return t == LOCK_SHARED ? F_RDLCK : t == LOCK_EXCLUSIVE ? F_WRLCK : -1;
}

/* f->mu held: ask the kernel through fd; identify one of our holders if we can. */
static enum lock_status conflict_get(struct lock_file *f, int fd, struct lock_hold *self, short type, off_t s,
                                     off_t e, struct lock_conflict *c)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = s,
                       .l_len = e == OFF_MAX ? 0 : e - s + 1, .l_pid = 0};
    if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
        return setlk_error(-errno);
    if (fl.l_type == F_UNLCK)
        return LOCK_OK;
    if (!c)
        return LOCK_DENIED;
    off_t cs = fl.l_start, ce = fl.l_len == 0 ? OFF_MAX : fl.l_start + fl.l_len - 1;
    c->type = fl.l_type == F_WRLCK ? LOCK_EXCLUSIVE : LOCK_SHARED;
    to_wire(cs, ce, &c->start, &c->len);
    c->holder = NULL;
    c->pid = fl.l_pid > 0 ? fl.l_pid : 0;
    if (fl.l_pid != -1)
        return LOCK_DENIED; /* a classic POSIX lock: a local process */
    /* an OFD lock: ours if one of our holds records exactly this range */
    for (struct lock_hold *h = f->holds; h && !c->holder; h = h->next) {
        if (h == self)
            continue;
        for (size_t i = 0; i < h->r.n; i++)
            if (h->r.v[i].start == cs && h->r.v[i].end == ce && h->r.v[i].type == fl.l_type) {
                c->holder = lock_owner_ref(h->owner);
                break;
            }
    }
    return LOCK_DENIED;
}

enum lock_status lock_test(struct lock_space *ls, struct lock_owner *o, const struct lock_file_id *fid,
                           enum lock_type type, uint64_t start, uint64_t len, struct lock_conflict *c)
{
    short t = fl_type(type);
    if (t < 0)
        return LOCK_INVAL;
    off_t s, e;
    lock_range_clamp(start, len, &s, &e);
    struct lock_file *f = file_get(ls, fid->key, fid->key_len, true);
    if (!f)
        return LOCK_NOLOCKS;
    pthread_mutex_lock(&f->mu);
    struct lock_hold *h = hold_find(f, o);
    enum lock_status st;
    int fd = h ? h->fd : -1, acc;
    if (!h) {
        fd = open_for(fid, F_RDLCK, &acc);
        if (fd < 0 && access_error(fd))
            fd = fid->open_file(fid->ctx, O_WRONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    }
    if (fd < 0)
        st = open_error(fd);
    else
        st = conflict_get(f, fd, h, t, s, e, c);
    if (!h && fd >= 0)
        close(fd);
    file_settle(f);
    pthread_mutex_unlock(&f->mu);
    file_put(f);
    return st;
}

enum lock_status lock_lock(struct lock_space *ls, struct lock_owner *o, const struct lock_file_id *fid,
                           const struct lock_req *req, struct lock_conflict *c)
{
    short t = fl_type(req->type);
    if (t < 0 || (req->wait && !req->granted))
        return LOCK_INVAL;
    off_t s, e;
    lock_range_clamp(req->start, req->len, &s, &e);
    struct lock_file *f = file_get(ls, fid->key, fid->key_len, true);
    if (!f)
        return LOCK_NOLOCKS;
    pthread_mutex_lock(&f->mu);
    struct lock_hold *h = hold_find(f, o);
    enum lock_status st = LOCK_OK;
    if (!h)
        st = hold_open(f, o, fid, t, &h);
    if (st == LOCK_OK) {
        int r = hold_setlk(h, t, s, e);
        if (r == 0)
            st = LOCK_OK;
        else if (r != -EAGAIN)
            st = setlk_error(r);
        else if (req->wait)
            st = waiter_add(f, h, t, s, e, req);
        else if ((st = conflict_get(f, h->fd, h, t, s, e, c)) == LOCK_OK)
            st = LOCK_DENIED; /* released since: the client retries */
        if (r == 0 && f->waiters)
            file_schedule(f, 0); /* a downgrade may let readers in */
        hold_maybe_free(f, h);
    }
    file_settle(f);
    pthread_mutex_unlock(&f->mu);
    file_put(f);
    return st;
}

enum lock_status lock_unlock(struct lock_space *ls, struct lock_owner *o, const struct lock_file_id *fid,
                             uint64_t start, uint64_t len)
{
    off_t s, e;
    lock_range_clamp(start, len, &s, &e);
    struct lock_file *f = file_get(ls, fid->key, fid->key_len, false);
    if (!f)
        return LOCK_OK;
    pthread_mutex_lock(&f->mu);
    struct lock_hold *h = hold_find(f, o);
    enum lock_status st = LOCK_OK;
    if (h) {
        int r = hold_setlk(h, F_UNLCK, s, e);
        if (r)
            st = setlk_error(r);
        file_schedule(f, 0);
        hold_maybe_free(f, h);
    }
    file_settle(f);
    pthread_mutex_unlock(&f->mu);
    file_put(f);
    return st;
}

enum lock_status lock_cancel(struct lock_space *ls, struct lock_owner *o, const struct lock_file_id *fid,
                             enum lock_type type, uint64_t start, uint64_t len)
{
    off_t s, e;
    lock_range_clamp(start, len, &s, &e);
    short t = fl_type(type);
    struct lock_file *f = file_get(ls, fid->key, fid->key_len, false);
    if (!f)
        return LOCK_NOT_QUEUED;
    pthread_mutex_lock(&f->mu);
    enum lock_status st = LOCK_NOT_QUEUED;
    for (struct lock_waiter **pp = &f->waiters; *pp; pp = &(*pp)->next) {
        struct lock_waiter *w = *pp;
        if (w->hold->owner == o && w->type == t && w->s == s && w->e == e) {
            struct lock_hold *h = w->hold;
            waiter_unlink(f, pp);
            free(w);
            hold_maybe_free(f, h);
            st = LOCK_OK;
            break;
        }
    }
    file_settle(f);
    pthread_mutex_unlock(&f->mu);
    file_put(f);
    return st;
}

/* f referenced by the caller: drop the holds matching (owner o, or any owner of host). */
static void file_release(struct lock_file *f, struct lock_owner *o, struct lock_host *host)
{
    pthread_mutex_lock(&f->mu);
    bool any = false;
    for (struct lock_hold *h = f->holds, *n; h; h = n) {
        n = h->next;
        if (h->owner == o || (host && h->owner->host == host)) {
            hold_release(f, h);
            any = true;
        }
    }
    if (any)
        file_schedule(f, 0);
    file_settle(f);
    pthread_mutex_unlock(&f->mu);
}

void lock_release_file(struct lock_space *ls, struct lock_owner *o, const struct lock_file_id *fid)
{
    struct lock_file *f = file_get(ls, fid->key, fid->key_len, false);
    if (!f)
        return;
    file_release(f, o, NULL);
    file_put(f);
}

/* Every file, referenced: a snapshot to walk without ls->mu. */
static struct lock_file **files_snapshot(struct lock_space *ls, size_t *n)
{
    pthread_mutex_lock(&ls->mu);
    struct lock_file **v = malloc((ls->files.n ? ls->files.n : 1) * sizeof(*v));
    *n = 0;
    if (v)
        for (size_t i = 0; i < ls->files.nb; i++)
            for (struct hent *e = ls->files.b[i]; e; e = e->next) {
                struct lock_file *f = (struct lock_file *)e;
                f->refs++;
                v[(*n)++] = f;
            }
    pthread_mutex_unlock(&ls->mu);
    return v;
}

static void release_matching(struct lock_space *ls, struct lock_owner *o, struct lock_host *host)
{
    size_t n;
    struct lock_file **v = files_snapshot(ls, &n);
    /* out of memory: nothing released; callers treat release as best effort anyway */
    for (size_t i = 0; v && i < n; i++) {
        file_release(v[i], o, host);
        file_put(v[i]);
    }
    free(v);
}

void lock_release_owner(struct lock_space *ls, struct lock_owner *o)
{
    release_matching(ls, o, NULL);
}

void lock_release_host(struct lock_space *ls, const void *host_key, size_t host_key_len)
{
    pthread_mutex_lock(&ls->mu);
    struct lock_host *h =
        (struct lock_host *)htab_find(&ls->hosts, host_key, host_key_len, hash_bytes(host_key, host_key_len));
    if (h)
        h->refs++;
    pthread_mutex_unlock(&ls->mu);
    if (!h)
        return;
    release_matching(ls, NULL, h);
    pthread_mutex_lock(&ls->mu);
    host_put_locked(ls, h);
    pthread_mutex_unlock(&ls->mu);
}

bool lock_host_active(struct lock_space *ls, const void *host_key, size_t host_key_len)
{
    pthread_mutex_lock(&ls->mu);
    bool found = htab_find(&ls->hosts, host_key, host_key_len, hash_bytes(host_key, host_key_len)) != NULL;
    pthread_mutex_unlock(&ls->mu);
    return found;
}

size_t lock_owner_ranges(struct lock_space *ls, struct lock_owner *o, const void *file_key, size_t file_key_len,
                         struct lock_range *out, size_t max)
{
    struct lock_file *f = file_get(ls, file_key, file_key_len, false);
    if (!f)
        return 0;
    pthread_mutex_lock(&f->mu);
    struct lock_hold *h = hold_find(f, o);
    size_t n = h ? h->r.n : 0;
    for (size_t i = 0; i < n && i < max; i++) {
        out[i].type = h->r.v[i].type == F_WRLCK ? LOCK_EXCLUSIVE : LOCK_SHARED;
        to_wire(h->r.v[i].start, h->r.v[i].end, &out[i].start, &out[i].len);
    }
    pthread_mutex_unlock(&f->mu);
    file_put(f);
    return n;
}
