/*
 * The client library's asynchronous metadata calls against a real server, from ONE
 * caller thread: client_async_check URL [--locks]
 *
 * URL names a writable directory. In a fresh subdirectory it queues, each batch all at
 * once before waiting: N creates, N setattrs (mode + size), N lookups (same handles as
 * the creates), symlinks + readlinks, links, renames, a readdir (exactly the expected
 * names), fsstat, then removes / rmdir (lookups then fail with NOENT). It checks every
 * result and that the batches ran on more than one worker (several requests were on
 * the wire at once). With --locks, over two client instances: open + write lock,
 * testlock from the other (-EAGAIN naming the range), a waiting lock that completes only
 * after the unlock, and a waiting lock cut short by nfs_client_destroy (-ECANCELED).
 * Prints what failed and exits 1, or prints a summary and exits 0.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/nfs_client.h"

#define N 200
#define MAX_THREADS 64

static int failures;

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    failures++;
}

/* ---- a batch of calls in flight and their outcomes ---- */

struct batch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pending;
    pthread_t threads[MAX_THREADS];
    int nthreads;
};

struct slot {
    struct batch *b;
    int status;
    bool done;
    struct nfs_op_result res;
    char target[256];
};

static void batch_init(struct batch *b)
{
    memset(b, 0, sizeof(*b));
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
}

static void note_thread(struct batch *b)
{
    pthread_t me = pthread_self();
    for (int i = 0; i < b->nthreads; i++)
        if (pthread_equal(b->threads[i], me))
            return;
    if (b->nthreads < MAX_THREADS)
        b->threads[b->nthreads++] = me;
}

static void slot_done(void *arg, int status, const struct nfs_op_result *res)
{
    struct slot *s = arg;
    pthread_mutex_lock(&s->b->mu);
    s->status = status;
    s->res = *res;
    if (res->target)
        snprintf(s->target, sizeof(s->target), "%s", res->target);
    s->res.target = NULL;
    s->done = true;
    note_thread(s->b);
    s->b->pending--;
    pthread_cond_broadcast(&s->b->cv);
    pthread_mutex_unlock(&s->b->mu);
}

/* Before a call is issued: its slot cleared and counted (the completion may run before
 * the call returns). */
static void prepare(struct batch *b, struct slot *s)
{
    memset(s, 0, sizeof(*s));
    s->b = b;
    pthread_mutex_lock(&b->mu);
    b->pending++;
    pthread_mutex_unlock(&b->mu);
}

/* After: st != 0 means it will never complete. */
static void issued(struct batch *b, struct slot *s, int st, const char *what)
{
    if (!st)
        return;
    fail("%s: issuing failed: %s", what, nfs_client_strerror(st));
    pthread_mutex_lock(&b->mu);
    s->status = st;
    s->done = true;
    b->pending--;
    pthread_mutex_unlock(&b->mu);
}

#define ISSUE(b, s, what, call)          \
    do {                                 \
        prepare(b, s);                   \
        issued(b, s, (call), what);      \
    } while (0)

static void batch_wait(struct batch *b)
{
    pthread_mutex_lock(&b->mu);
    while (b->pending > 0)
        pthread_cond_wait(&b->cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
}

static bool slot_finished(struct slot *s)
{
    pthread_mutex_lock(&s->b->mu);
    bool d = s->done;
    pthread_mutex_unlock(&s->b->mu);
    return d;
}

static void slot_wait(struct slot *s)
{
    pthread_mutex_lock(&s->b->mu);
    while (!s->done)
        pthread_cond_wait(&s->b->cv, &s->b->mu);
    pthread_mutex_unlock(&s->b->mu);
}

static bool fh_eq(const struct nfs_fh *a, const struct nfs_fh *b)
{
    return a->len == b->len && !memcmp(a->data, b->data, a->len);
}

static void expect_status(const struct slot *s, int want, const char *what, int i)
{
    if (s->status != want)
        fail("%s #%d: status %d (%s), wanted %d", what, i, s->status,
             nfs_client_strerror(s->status), want);
}

/* ---- the namespace checks ---- */

struct names {
    struct batch *b;
    int seen[N];
    int others;
};

static int dirent_seen(void *arg, const struct nfs_dirent *e)
{
    struct names *n = arg;
    int i;
    char tail[16];
    if (sscanf(e->name, "m%d%15s", &i, tail) == 2 && !strcmp(tail, ".moved") && i >= 0 && i < N)
        n->seen[i]++;
    else if (sscanf(e->name, "f%d", &i) == 1 && i >= 0 && i < N && !strchr(e->name, '.'))
        n->seen[i]++;
    else if (strncmp(e->name, "s", 1) && strncmp(e->name, "l", 1))
        n->others++;
    return 0;
}

static void name_of(char *buf, size_t len, int i, bool moved)
{
    if (moved)
        snprintf(buf, len, "m%d.moved", i);
    else
        snprintf(buf, len, "f%d", i);
}

static int workers_used(struct batch *b)
{
    pthread_mutex_lock(&b->mu);
    int n = b->nthreads;
    pthread_mutex_unlock(&b->mu);
    return n;
}

static void check_namespace(struct nfs_client *c, const struct nfs_fh *dir)
{
    static struct slot s[N], t[N];
    struct nfs_fh fh[N];
    struct batch b;
    batch_init(&b);
    char name[64], name2[64];

    for (int i = 0; i < N; i++) {
        name_of(name, sizeof(name), i, false);
        ISSUE(&b, &s[i], "create", nfs_create_async(c, dir, name, 0644, true, slot_done, &s[i]));
    }
    batch_wait(&b);
    for (int i = 0; i < N; i++) {
        expect_status(&s[i], 0, "create", i);
        fh[i] = s[i].res.fh;
        if (!s[i].status && (s[i].res.attr.type != NFS_REG || s[i].res.fh.len == 0))
            fail("create #%d: no handle / not a regular file", i);
    }
    int create_workers = workers_used(&b);

    batch_init(&b);
    struct nfs_setattr sa = { .set_mode = true, .mode = 0600, .set_size = true, .size = 4096 };
    for (int i = 0; i < N; i++)
        ISSUE(&b, &s[i], "setattr", nfs_setattr_async(c, &fh[i], &sa, slot_done, &s[i]));
    for (int i = 0; i < N; i++) {
        name_of(name, sizeof(name), i, false);
        ISSUE(&b, &t[i], "lookup", nfs_lookup_async(c, dir, name, slot_done, &t[i]));
    }
    batch_wait(&b);
    for (int i = 0; i < N; i++) {
        expect_status(&s[i], 0, "setattr", i);
        expect_status(&t[i], 0, "lookup", i);
        if (!s[i].status && (s[i].res.attr.mode != 0600 || s[i].res.attr.size != 4096))
            fail("setattr #%d: attributes after: mode %o size %llu", i, s[i].res.attr.mode,
                 (unsigned long long)s[i].res.attr.size);
        if (!t[i].status && !fh_eq(&t[i].res.fh, &fh[i]))
            fail("lookup #%d: another handle than CREATE gave", i);
    }

    /* symlinks, then their targets read back; hard links; renames of half the files */
    batch_init(&b);
    for (int i = 0; i < N / 4; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        snprintf(name2, sizeof(name2), "target-%d/x", i);
        ISSUE(&b, &s[i], "symlink", nfs_symlink_async(c, dir, name, name2, slot_done, &s[i]));
        snprintf(name, sizeof(name), "l%d", i);
        ISSUE(&b, &t[i], "link", nfs_link_async(c, &fh[i], dir, name, slot_done, &t[i]));
    }
    batch_wait(&b);
    for (int i = 0; i < N / 4; i++) {
        expect_status(&s[i], 0, "symlink", i);
        expect_status(&t[i], 0, "link", i);
    }
    batch_init(&b);
    for (int i = 0; i < N / 4; i++)
        ISSUE(&b, &t[i], "readlink", nfs_readlink_async(c, &s[i].res.fh, slot_done, &t[i]));
    batch_wait(&b);
    for (int i = 0; i < N / 4; i++) {
        expect_status(&t[i], 0, "readlink", i);
        snprintf(name2, sizeof(name2), "target-%d/x", i);
        if (!t[i].status && strcmp(t[i].target, name2))
            fail("readlink #%d: '%s', wanted '%s'", i, t[i].target, name2);
    }
    batch_init(&b);
    for (int i = 0; i < N; i += 2) {
        name_of(name, sizeof(name), i, false);
        name_of(name2, sizeof(name2), i, true);
        ISSUE(&b, &s[i], "rename", nfs_rename_async(c, dir, name, dir, name2, slot_done, &s[i]));
    }
    batch_wait(&b);
    for (int i = 0; i < N; i += 2)
        expect_status(&s[i], 0, "rename", i);

    /* the listing has each file once, under its new name where it was renamed */
    struct names seen;
    memset(&seen, 0, sizeof(seen));
    struct slot rd, fs;
    batch_init(&b);
    ISSUE(&b, &rd, "readdir", nfs_readdir_async(c, dir, true, dirent_seen, &seen, slot_done, &rd));
    ISSUE(&b, &fs, "fsstat", nfs_fsstat_async(c, dir, slot_done, &fs));
    batch_wait(&b);
    expect_status(&rd, 0, "readdir", 0);
    expect_status(&fs, 0, "fsstat", 0);
    for (int i = 0; i < N; i++)
        if (seen.seen[i] != 1)
            fail("readdir: f%d seen %d times", i, seen.seen[i]);
    if (seen.others)
        fail("readdir: %d unexpected names", seen.others);
    if (!fs.status && (fs.res.fsstat.total_bytes == 0 ||
                       fs.res.fsstat.free_bytes > fs.res.fsstat.total_bytes))
        fail("fsstat: total %llu free %llu", (unsigned long long)fs.res.fsstat.total_bytes,
             (unsigned long long)fs.res.fsstat.free_bytes);

    /* everything removed; then the names are gone */
    batch_init(&b);
    for (int i = 0; i < N; i++) {
        name_of(name, sizeof(name), i, i % 2 == 0);
        ISSUE(&b, &s[i], "remove", nfs_remove_async(c, dir, name, slot_done, &s[i]));
    }
    for (int i = 0; i < N / 4; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        ISSUE(&b, &t[i], "remove symlink", nfs_remove_async(c, dir, name, slot_done, &t[i]));
        snprintf(name, sizeof(name), "l%d", i);
        ISSUE(&b, &t[N / 4 + i], "remove link", nfs_remove_async(c, dir, name, slot_done, &t[N / 4 + i]));
    }
    batch_wait(&b);
    for (int i = 0; i < N; i++)
        expect_status(&s[i], 0, "remove", i);
    for (int i = 0; i < N / 2; i++)
        expect_status(&t[i], 0, "remove symlink/link", i);
    batch_init(&b);
    for (int i = 0; i < N; i += 10) {
        name_of(name, sizeof(name), i, false);
        ISSUE(&b, &s[i], "lookup removed", nfs_lookup_async(c, dir, name, slot_done, &s[i]));
    }
    batch_wait(&b);
    for (int i = 0; i < N; i += 10)
        expect_status(&s[i], 2 /* NOENT */, "lookup after remove", i);
    if (create_workers < 2)
        fail("the %d creates all completed on %d worker thread(s): nothing ran in parallel",
             N, create_workers);
    printf("namespace: %d creates on %d workers; setattr, lookup, symlink, readlink, link, "
           "rename, readdir, fsstat, remove checked\n", N, create_workers);
}

/* ---- locks over two client instances ---- */

static void check_locks(struct nfs_client *a, const char *url, const char *dir_path)
{
    int st;
    char err[256];
    struct nfs_client *b_cl = nfs_client_connect(url, &st, err, sizeof(err));
    if (!b_cl) {
        fail("second client: %s", err);
        return;
    }
    char path[600];
    snprintf(path, sizeof(path), "%s%slocked", dir_path, *dir_path ? "/" : "");
    struct nfs_file fa, fb, fc;
    struct batch b;
    struct slot oa, ob, la, tb, wb, ua;
    batch_init(&b);
    ISSUE(&b, &oa, "open a", nfs_open_async(a, path, NFS_O_CREAT, 0644, &fa, slot_done, &oa));
    batch_wait(&b);
    expect_status(&oa, 0, "open a", 0);
    ISSUE(&b, &ob, "open b", nfs_open_async(b_cl, path, 0, 0, &fb, slot_done, &ob));
    ISSUE(&b, &la, "lock a", nfs_lock_async(a, &fa, NFS_LOCK_WRITE, 10, 20, false, slot_done, &la));
    batch_wait(&b);
    expect_status(&ob, 0, "open b", 0);
    expect_status(&la, 0, "lock a", 0);
    if (oa.res.file != &fa || ob.res.file != &fb)
        fail("open: the result does not name the caller's nfs_file");

    ISSUE(&b, &tb, "testlock b", nfs_testlock_async(b_cl, &fb, NFS_LOCK_READ, 0, 15, slot_done, &tb));
    batch_wait(&b);
    expect_status(&tb, -EAGAIN, "testlock b", 0);
    if (tb.status == -EAGAIN && (tb.res.conflict.type != NFS_LOCK_WRITE || tb.res.conflict.off != 10 ||
                                 tb.res.conflict.len != 20))
        fail("testlock b: conflict type %d [%llu,+%llu), wanted WRITE [10,+20)",
             tb.res.conflict.type, (unsigned long long)tb.res.conflict.off,
             (unsigned long long)tb.res.conflict.len);

    /* b waits for the range; it must not get it before a unlocks */
    ISSUE(&b, &wb, "lock b wait", nfs_lock_async(b_cl, &fb, NFS_LOCK_WRITE, 0, 0, true, slot_done, &wb));
    usleep(700 * 1000);
    if (slot_finished(&wb))
        fail("waiting lock completed (status %d) while the conflicting lock was held", wb.status);
    ISSUE(&b, &ua, "unlock a", nfs_unlock_async(a, &fa, 10, 20, slot_done, &ua));
    batch_wait(&b);
    expect_status(&ua, 0, "unlock a", 0);
    expect_status(&wb, 0, "lock b after unlock", 0);

    /* now a waits on b's lock until b unlocks and closes */
    struct slot wa, ca, ub, cb;
    ISSUE(&b, &wa, "lock a wait", nfs_lock_async(a, &fa, NFS_LOCK_READ, 0, 0, true, slot_done, &wa));
    usleep(300 * 1000);
    if (slot_finished(&wa))
        fail("waiting read lock completed (status %d) under a write lock", wa.status);
    ISSUE(&b, &ub, "unlock b", nfs_unlock_async(b_cl, &fb, 0, 0, slot_done, &ub));
    slot_wait(&ub); /* one call at a time per nfs_file */
    ISSUE(&b, &cb, "close b", nfs_close_async(b_cl, &fb, slot_done, &cb));
    batch_wait(&b);
    expect_status(&ub, 0, "unlock b", 0);
    expect_status(&cb, 0, "close b", 0);
    expect_status(&wa, 0, "lock a after b unlocked", 0);
    ISSUE(&b, &ca, "close a", nfs_close_async(a, &fa, slot_done, &ca));
    batch_wait(&b);
    expect_status(&ca, 0, "close a", 0);

    /* a lock wait cut short by destroy: a holds, b waits, b is destroyed */
    struct slot oa2, la2, ob2, wb2;
    ISSUE(&b, &oa2, "reopen a", nfs_open_async(a, path, 0, 0, &fa, slot_done, &oa2));
    ISSUE(&b, &ob2, "reopen b", nfs_open_async(b_cl, path, 0, 0, &fc, slot_done, &ob2));
    batch_wait(&b);
    ISSUE(&b, &la2, "lock a again", nfs_lock_async(a, &fa, NFS_LOCK_WRITE, 0, 0, false, slot_done, &la2));
    batch_wait(&b);
    expect_status(&la2, 0, "lock a again", 0);
    ISSUE(&b, &wb2, "lock b wait 2", nfs_lock_async(b_cl, &fc, NFS_LOCK_WRITE, 0, 0, true, slot_done, &wb2));
    usleep(300 * 1000);
    nfs_client_destroy(b_cl);
    batch_wait(&b);
    expect_status(&wb2, -ECANCELED, "waiting lock of a destroyed client", 0);
    ISSUE(&b, &ca, "close a 2", nfs_close_async(a, &fa, slot_done, &ca));
    batch_wait(&b);
    expect_status(&ca, 0, "close a 2", 0);
    printf("locks: open, lock, testlock conflict, waiting lock granted after unlock and after "
           "close, waiting lock cancelled by destroy\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: client_async_check URL [--locks]\n");
        return 2;
    }
    bool locks = argc > 2 && !strcmp(argv[2], "--locks");
    int st;
    char err[256];
    struct nfs_client *c = nfs_client_connect(argv[1], &st, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "connect: %s\n", err);
        return 1;
    }
    /* a fresh directory under the URL's, made asynchronously too */
    char sub[64], rest[512];
    snprintf(sub, sizeof(sub), "async.%d", (int)getpid());
    const char *base = nfs_client_url_rest(c);
    snprintf(rest, sizeof(rest), "%s%s%s", base, *base ? "/" : "", sub);
    struct batch b;
    struct slot top, mk;
    batch_init(&b);
    ISSUE(&b, &top, "lookup_path", nfs_lookup_path_async(c, base, slot_done, &top));
    batch_wait(&b);
    expect_status(&top, 0, "lookup_path", 0);
    ISSUE(&b, &mk, "mkdir", nfs_mkdir_async(c, &top.res.fh, sub, 0755, slot_done, &mk));
    batch_wait(&b);
    expect_status(&mk, 0, "mkdir", 0);
    if (!failures) {
        check_namespace(c, &mk.res.fh);
        if (locks)
            check_locks(c, argv[1], rest);
        struct slot rm;
        if (locks) {
            ISSUE(&b, &rm, "remove", nfs_remove_async(c, &mk.res.fh, "locked", slot_done, &rm));
            batch_wait(&b);
        }
        ISSUE(&b, &rm, "rmdir", nfs_rmdir_async(c, &top.res.fh, sub, slot_done, &rm));
        batch_wait(&b);
        expect_status(&rm, 0, "rmdir", 0);
    }
    nfs_client_destroy(c);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("async API: all checks passed\n");
    return 0;
}
