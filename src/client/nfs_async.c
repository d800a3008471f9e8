/*
 * Asynchronous forms of the operations that are not READ / WRITE / COMMIT / GETATTR.
 *
 * Those four are asynchronous all the way down (one RPC each, completed on the reader
 * thread). The others may take several round trips whose later steps depend on the
 * earlier replies: an NFSv3 CREATE or LOOKUP whose reply carried no handle or
 * attributes is followed by a LOOKUP / GETATTR, an NFSv4.0 OPEN by OPEN_CONFIRM, a
 * CLOSE by LOCKU + RELEASE_LOCKOWNER, a READDIR by more READDIRs, a waiting lock by
 * polls; 4.0 owners also serialize on their seqids. So they run as their blocking
 * forms on a small pool of worker threads per client, which all share the client's
 * one connection: a caller thread queues as many as it likes and up to
 * NFS_ASYNC_WORKERS of them are on the wire at once (the rest wait in order).
 * Workers are started when requests queue up and none is idle, and are joined by
 * nfs_client_destroy, which first fails what never started with -ECANCELED and
 * cuts short lock waits.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/nfs_client_impl.h"
#include "util/deadline.h"

enum async_kind {
    A_LOOKUP_PATH, A_LOOKUP, A_SETATTR, A_OPEN, A_OPEN_AT, A_CLOSE, A_CREATE, A_MKDIR, A_REMOVE,
    A_RMDIR, A_RENAME, A_LINK, A_SYMLINK, A_READLINK, A_FSSTAT, A_READDIR, A_LOCK,
    A_UNLOCK, A_TESTLOCK,
};

struct async_op {
    struct async_op *next;
    enum async_kind kind;
    struct nfs_fh fh, fh2; /* copies: the caller's may be gone by the time we run */
    char *name, *name2;    /* copies of paths, names, the symlink target */
    struct nfs_setattr sa;
    uint32_t mode;
    int flags;
    bool flag; /* create: exclusive; readdir: plus; lock: wait */
    enum nfs_lock_type lock_type;
    uint64_t off, len;
    struct nfs_file *file; /* the caller's, used in place (documented in the header) */
    nfs_dirent_fn dirent_fn;
    void *dirent_arg;
    nfs_op_done_fn done;
    void *arg;
};

struct nfs_async {
    pthread_mutex_t mu;
    pthread_cond_t work; /* a request queued, or stopping */
    pthread_cond_t stop; /* stopping (wakes lock waits) */
    struct async_op *head, **tail;
    pthread_t threads[NFS_ASYNC_WORKERS];
    int nthreads, idle;
    int queued; /* requests waiting for a worker */
    bool stopping;
};

static void op_free(struct async_op *op)
{
    free(op->name);
    free(op->name2);
    free(op);
}

static int run_readlink(struct nfs_client *c, struct async_op *op, struct nfs_op_result *r)
{
    char *target = malloc(PATH_MAX + 1);
    if (!target)
        return -ENOMEM;
    int st = nfs_readlink(c, &op->fh, target, PATH_MAX + 1);
    r->target = st ? NULL : target;
    op->name2 = target; /* freed with the op, after the completion */
    return st;
}

/* The blocking form of op, its outputs in r. */
static int run_op(struct nfs_client *c, struct async_op *op, struct nfs_op_result *r)
{
    switch (op->kind) {
    case A_LOOKUP_PATH: return nfs_lookup_path(c, op->name, &r->fh, &r->attr);
    case A_LOOKUP: return nfs_lookup(c, &op->fh, op->name, &r->fh, &r->attr);
    case A_SETATTR: return nfs_setattr(c, &op->fh, &op->sa, &r->attr);
    case A_OPEN:
        r->file = op->file;
        return nfs_open(c, op->name, op->flags, op->mode, op->file);
    case A_OPEN_AT:
        r->file = op->file;
        return nfs_open_at(c, &op->fh, op->name, op->flags, op->mode, op->file);
    case A_CLOSE: r->file = op->file; return nfs_close(c, op->file);
    case A_CREATE:
        return nfs_create(c, &op->fh, op->name, op->mode, op->flag, &r->fh, &r->attr);
    case A_MKDIR: return nfs_mkdir(c, &op->fh, op->name, op->mode, &r->fh, &r->attr);
    case A_REMOVE: return nfs_remove(c, &op->fh, op->name);
    case A_RMDIR: return nfs_rmdir(c, &op->fh, op->name);
    case A_RENAME: return nfs_rename(c, &op->fh, op->name, &op->fh2, op->name2);
    case A_LINK: return nfs_link(c, &op->fh, &op->fh2, op->name);
    case A_SYMLINK: return nfs_symlink(c, &op->fh, op->name, op->name2, &r->fh);
    case A_READLINK: return run_readlink(c, op, r);
    case A_FSSTAT: return nfs_fsstat(c, &op->fh, &r->fsstat);
    case A_READDIR: return nfs_readdir(c, &op->fh, op->flag, op->dirent_fn, op->dirent_arg);
    case A_LOCK:
        r->file = op->file;
        return nfs_lock(c, op->file, op->lock_type, op->off, op->len, op->flag);
    case A_UNLOCK: r->file = op->file; return nfs_unlock(c, op->file, op->off, op->len);
    case A_TESTLOCK:
        r->file = op->file;
        return nfs_testlock(c, op->file, op->lock_type, op->off, op->len, &r->conflict);
    }
    return -EINVAL;
}

static void complete(struct async_op *op, int st, const struct nfs_op_result *r)
{
    op->done(op->arg, st, r);
    op_free(op);
}

static void *worker(void *p)
{
    struct nfs_client *c = p;
    struct nfs_async *a = c->async;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (!a->head && !a->stopping) {
            a->idle++;
            pthread_cond_wait(&a->work, &a->mu);
            a->idle--;
        }
        if (!a->head)
            break; /* stopping, and nothing left */
        struct async_op *op = a->head;
        a->head = op->next;
        if (!a->head)
            a->tail = &a->head;
        a->queued--;
        pthread_mutex_unlock(&a->mu);
        struct nfs_op_result r;
        memset(&r, 0, sizeof(r));
        int st = run_op(c, op, &r);
        complete(op, st, &r);
        pthread_mutex_lock(&a->mu);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

static struct nfs_async *async_get(struct nfs_client *c)
{
    static pthread_mutex_t create_mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&create_mu);
    if (!c->async && (c->async = calloc(1, sizeof(*c->async))) != NULL) {
        struct nfs_async *a = c->async;
        pthread_mutex_init(&a->mu, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&a->work, NULL);
        pthread_cond_init(&a->stop, &ca);
        pthread_condattr_destroy(&ca);
        a->tail = &a->head;
    }
    pthread_mutex_unlock(&create_mu);
    return c->async;
}

/* Queue op; a worker runs it. 0, or the op is freed and the error returned (its
 * completion never runs). */
static int submit(struct nfs_client *c, struct async_op *op)
{
    struct nfs_async *a = async_get(c);
    if (!a) {
        op_free(op);
        return -ENOMEM;
    }
    pthread_mutex_lock(&a->mu);
    if (a->stopping) {
        pthread_mutex_unlock(&a->mu);
        op_free(op);
        return -ECANCELED;
    }
    *a->tail = op;
    a->tail = &op->next;
    a->queued++;
    int st = 0;
    /* idle workers may not have woken for earlier requests yet: count what waits */
    if (a->queued > a->idle && a->nthreads < NFS_ASYNC_WORKERS) {
        st = pthread_create(&a->threads[a->nthreads], NULL, worker, c);
        if (st == 0)
            a->nthreads++;
        else if (a->nthreads > 0)
            st = 0; /* the running workers will get to it */
        else
            a->tail = &a->head, a->head = NULL, a->queued = 0;
    }
    if (!st)
        pthread_cond_signal(&a->work);
    pthread_mutex_unlock(&a->mu);
    if (st) {
        op_free(op);
        return -st;
    }
    return 0;
}

void nfs_async_shutdown(struct nfs_client *c)
{
    struct nfs_async *a = c->async;
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    a->stopping = true;
    struct async_op *never = a->head;
    a->head = NULL;
    a->tail = &a->head;
    a->queued = 0;
    pthread_cond_broadcast(&a->work);
    pthread_cond_broadcast(&a->stop);
    pthread_mutex_unlock(&a->mu);
    struct nfs_op_result none;
    memset(&none, 0, sizeof(none));
    while (never) {
        struct async_op *op = never;
        never = op->next;
        complete(op, -ECANCELED, &none);
    }
    for (int i = 0; i < a->nthreads; i++)
        pthread_join(a->threads[i], NULL);
    pthread_cond_destroy(&a->work);
    pthread_cond_destroy(&a->stop);
    pthread_mutex_destroy(&a->mu);
    free(a);
    c->async = NULL;
}

int nfs_async_sleep(struct nfs_client *c, unsigned ms)
{
    struct nfs_async *a = async_get(c);
    if (!a) {
        struct timespec t = { ms / 1000, (long)(ms % 1000) * 1000000L };
        nanosleep(&t, NULL);
        return 0;
    }
    struct timespec until = deadline_after_ms(ms);
    pthread_mutex_lock(&a->mu);
    int rc = 0;
    while (!a->stopping && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&a->stop, &a->mu, &until);
    bool stopped = a->stopping;
    pthread_mutex_unlock(&a->mu);
    return stopped ? -ECANCELED : 0;
}

/* ---- the public calls: copy the arguments, queue ---- */

static struct async_op *op_new(enum async_kind kind, nfs_op_done_fn done, void *arg)
{
    struct async_op *op = calloc(1, sizeof(*op));
    if (op) {
        op->kind = kind;
        op->done = done;
        op->arg = arg;
    }
    return op;
}

/* op with a handle and up to two strings copied; NULL when out of memory */
static struct async_op *op_with(enum async_kind kind, const struct nfs_fh *fh, const char *name,
                                const char *name2, nfs_op_done_fn done, void *arg)
{
    struct async_op *op = op_new(kind, done, arg);
    if (!op)
        return NULL;
    if (fh)
        op->fh = *fh;
    if ((name && !(op->name = strdup(name))) || (name2 && !(op->name2 = strdup(name2)))) {
        op_free(op);
        return NULL;
    }
    return op;
}

static int submit_new(struct nfs_client *c, struct async_op *op)
{
    return op ? submit(c, op) : -ENOMEM;
}

int nfs_lookup_path_async(struct nfs_client *c, const char *path, nfs_op_done_fn done,
                          void *arg)
{
    return submit_new(c, op_with(A_LOOKUP_PATH, NULL, path, NULL, done, arg));
}

int nfs_lookup_async(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                     nfs_op_done_fn done, void *arg)
{
    return submit_new(c, op_with(A_LOOKUP, dir, name, NULL, done, arg));
}

int nfs_setattr_async(struct nfs_client *c, const struct nfs_fh *fh, const struct nfs_setattr *sa,
                      nfs_op_done_fn done, void *arg)
{
    struct async_op *op = op_with(A_SETATTR, fh, NULL, NULL, done, arg);
    if (op)
        op->sa = *sa;
    return submit_new(c, op);
}

/* nfs_open_async (A_OPEN: by path) and nfs_open_at_async (A_OPEN_AT: a name in dir). */
static int submit_open(struct nfs_client *c, enum async_kind kind, const struct nfs_fh *dir, const char *name,
                       int flags, uint32_t mode, struct nfs_file *f, nfs_op_done_fn done, void *arg)
{
    struct async_op *op = op_with(kind, dir, name, NULL, done, arg);
    if (op) {
        op->flags = flags;
        op->mode = mode;
        op->file = f;
    }
    return submit_new(c, op);
}

int nfs_open_async(struct nfs_client *c, const char *path, int flags, uint32_t mode,
                   struct nfs_file *f, nfs_op_done_fn done, void *arg)
{
    return submit_open(c, A_OPEN, NULL, path, flags, mode, f, done, arg);
}

int nfs_open_at_async(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                      int flags, uint32_t mode, struct nfs_file *f, nfs_op_done_fn done,
                      void *arg)
{
    return submit_open(c, A_OPEN_AT, dir, name, flags, mode, f, done, arg);
}

int nfs_close_async(struct nfs_client *c, struct nfs_file *f, nfs_op_done_fn done, void *arg)
{
    struct async_op *op = op_new(A_CLOSE, done, arg);
    if (op)
        op->file = f;
    return submit_new(c, op);
}

int nfs_create_async(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                     uint32_t mode, bool exclusive, nfs_op_done_fn done, void *arg)
{
    struct async_op *op = op_with(A_CREATE, dir, name, NULL, done, arg);
    if (op) {
        op->mode = mode;
        op->flag = exclusive;
    }
    return submit_new(c, op);
}

int nfs_mkdir_async(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                    uint32_t mode, nfs_op_done_fn done, void *arg)
{
    struct async_op *op = op_with(A_MKDIR, dir, name, NULL, done, arg);
    if (op)
        op->mode = mode;
    return submit_new(c, op);
}

int nfs_remove_async(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                     nfs_op_done_fn done, void *arg)
{
    return submit_new(c, op_with(A_REMOVE, dir, name, NULL, done, arg));
}

int nfs_rmdir_async(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                    nfs_op_done_fn done, void *arg)
{
    return submit_new(c, op_with(A_RMDIR, dir, name, NULL, done, arg));
}

int nfs_rename_async(struct nfs_client *c, const struct nfs_fh *from_dir, const char *from,
                     const struct nfs_fh *to_dir, const char *to, nfs_op_done_fn done,
                     void *arg)
{
    struct async_op *op = op_with(A_RENAME, from_dir, from, to, done, arg);
    if (op)
        op->fh2 = *to_dir;
    return submit_new(c, op);
}

int nfs_link_async(struct nfs_client *c, const struct nfs_fh *file, const struct nfs_fh *dir,
                   const char *name, nfs_op_done_fn done, void *arg)
{
    struct async_op *op = op_with(A_LINK, file, name, NULL, done, arg);
    if (op)
        op->fh2 = *dir;
    return submit_new(c, op);
}

int nfs_symlink_async(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                      const char *target, nfs_op_done_fn done, void *arg)
{
    return submit_new(c, op_with(A_SYMLINK, dir, name, target, done, arg));
}

int nfs_readlink_async(struct nfs_client *c, const struct nfs_fh *fh, nfs_op_done_fn done,
                       void *arg)
{
    return submit_new(c, op_with(A_READLINK, fh, NULL, NULL, done, arg));
}

int nfs_fsstat_async(struct nfs_client *c, const struct nfs_fh *fh, nfs_op_done_fn done,
                     void *arg)
{
    return submit_new(c, op_with(A_FSSTAT, fh, NULL, NULL, done, arg));
}

int nfs_readdir_async(struct nfs_client *c, const struct nfs_fh *dir, bool plus,
                      nfs_dirent_fn fn, void *fn_arg, nfs_op_done_fn done, void *arg)
{
    struct async_op *op = op_with(A_READDIR, dir, NULL, NULL, done, arg);
    if (op) {
        op->flag = plus;
        op->dirent_fn = fn;
        op->dirent_arg = fn_arg;
    }
    return submit_new(c, op);
}

static int lock_op(struct nfs_client *c, enum async_kind kind, struct nfs_file *f,
                   enum nfs_lock_type type, uint64_t off, uint64_t len, bool wait,
                   nfs_op_done_fn done, void *arg)
{
    struct async_op *op = op_new(kind, done, arg);
    if (op) {
        op->file = f;
        op->lock_type = type;
        op->off = off;
        op->len = len;
        op->flag = wait;
    }
    return submit_new(c, op);
}

int nfs_lock_async(struct nfs_client *c, struct nfs_file *f, enum nfs_lock_type type,
                   uint64_t off, uint64_t len, bool wait, nfs_op_done_fn done, void *arg)
{
    return lock_op(c, A_LOCK, f, type, off, len, wait, done, arg);
}

int nfs_unlock_async(struct nfs_client *c, struct nfs_file *f, uint64_t off, uint64_t len,
                     nfs_op_done_fn done, void *arg)
{
    return lock_op(c, A_UNLOCK, f, NFS_LOCK_UNLOCK, off, len, false, done, arg);
}

int nfs_testlock_async(struct nfs_client *c, struct nfs_file *f, enum nfs_lock_type type,
                       uint64_t off, uint64_t len, nfs_op_done_fn done, void *arg)
{
    return lock_op(c, A_TESTLOCK, f, type, off, len, false, done, arg);
}
