/*
 * The lock space (src/lock/) against temporary files: range split/merge/upgrade/
 * downgrade compared with what the kernel reports through an independent open file
 * description, owner identity, conflicts both ways with a local process holding a
 * classic fcntl lock (forked child), blocking locks granted by an NFS-owner unlock (at
 * once) and by a local unlock/exit (within the documented timer bound), cancel and the
 * cancel/grant race, release of an owner and of a host, 64-bit edge offsets, waiter
 * caps, one fd per (owner, file) closed when the owner holds nothing, and concurrent use.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "lock/lock.h"

static char dir[64];

struct tfile {
    char path[128];
    bool readonly; /* simulate a file whose mode refuses write opens */
    struct lock_file_id id;
};

static int open_cb(void *ctx, int flags)
{
    struct tfile *t = ctx;
    if (t->readonly && (flags & O_ACCMODE) != O_RDONLY)
        return -EACCES;
    int fd = open(t->path, flags);
    return fd < 0 ? -errno : fd;
}

static void tfile_init(struct tfile *t, const char *name)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->path, sizeof(t->path), "%s/%s", dir, name);
    int fd = open(t->path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    if (fd >= 0)
        close(fd);
    t->id = (struct lock_file_id){t->path, strlen(t->path), open_cb, t};
}

static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static int64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* ---- granted-callback recorder ---- */

struct grant {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls;
    enum lock_status status;
    int64_t at_ms;
};

static void grant_init(struct grant *g)
{
    memset(g, 0, sizeof(*g));
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
}

static void granted_cb(void *arg, enum lock_status st)
{
    struct grant *g = arg;
    pthread_mutex_lock(&g->mu);
    g->calls++;
    g->status = st;
    g->at_ms = ms_now();
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* Wait up to ms for the first call; returns the number of calls so far. */
static int grant_wait(struct grant *g, int ms)
{
    int64_t end = ms_now() + ms;
    pthread_mutex_lock(&g->mu);
    while (!g->calls && ms_now() < end) {
        pthread_mutex_unlock(&g->mu);
        sleep_ms(1);
        pthread_mutex_lock(&g->mu);
    }
    int n = g->calls;
    pthread_mutex_unlock(&g->mu);
    return n;
}

/* ---- helpers ---- */

static struct lock_space *ls;

static struct lock_owner *owner(const char *key, const char *host)
{
    return lock_owner_get(ls, key, strlen(key), host, strlen(host));
}

static enum lock_status lk(struct lock_owner *o, struct tfile *t, enum lock_type type, uint64_t s, uint64_t l)
{
    struct lock_req r = {type, s, l, false, NULL, NULL};
    return lock_lock(ls, o, &t->id, &r, NULL);
}

static enum lock_status lkw(struct lock_owner *o, struct tfile *t, enum lock_type type, uint64_t s, uint64_t l,
                            struct grant *g)
{
    struct lock_req r = {type, s, l, true, granted_cb, g};
    return lock_lock(ls, o, &t->id, &r, NULL);
}

/* The locks the kernel reports from an independent description, probing with a write
 * lock from offset 0 upwards (valid while one other description holds locks). */
static size_t kernel_ranges(struct tfile *t, struct lock_range *out, size_t max)
{
    int fd = open(t->path, O_RDWR);
    size_t n = 0;
    off_t p = 0;
    while (fd >= 0 && n < max) {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = p, .l_len = 0};
        if (fcntl(fd, F_OFD_GETLK, &fl) < 0 || fl.l_type == F_UNLCK)
            break;
        out[n].type = fl.l_type == F_WRLCK ? LOCK_EXCLUSIVE : LOCK_SHARED;
        out[n].start = (uint64_t)fl.l_start;
        out[n].len = (uint64_t)fl.l_len;
        n++;
        if (fl.l_len == 0)
            break;
        p = fl.l_start + fl.l_len;
    }
    if (fd >= 0)
        close(fd);
    return n;
}

struct want {
    enum lock_type type;
    uint64_t start, len;
};

/* Our record and the kernel's both equal `want`. */
static void expect(int line, struct lock_owner *o, struct tfile *t, const struct want *w, size_t nw)
{
    struct lock_range ours[32], kern[32];
    size_t no = lock_owner_ranges(ls, o, t->path, strlen(t->path), ours, 32);
    size_t nk = kernel_ranges(t, kern, 32);
    bool ok = no == nw && nk == nw;
    for (size_t i = 0; ok && i < nw; i++)
        ok = ours[i].type == w[i].type && ours[i].start == w[i].start && ours[i].len == w[i].len &&
             kern[i].type == w[i].type && kern[i].start == w[i].start && kern[i].len == w[i].len;
    if (!ok) {
        fprintf(stderr, "line %d: ranges differ (want %zu, ours %zu, kernel %zu)\n", line, nw, no, nk);
        for (size_t i = 0; i < no; i++)
            fprintf(stderr, "  ours   %d %llu+%llu\n", ours[i].type, (unsigned long long)ours[i].start,
                    (unsigned long long)ours[i].len);
        for (size_t i = 0; i < nk; i++)
            fprintf(stderr, "  kernel %d %llu+%llu\n", kern[i].type, (unsigned long long)kern[i].start,
                    (unsigned long long)kern[i].len);
        check_failures++;
    }
}
#define EXPECT(o, t, ...)                                                            \
    do {                                                                             \
        const struct want w_[] = {__VA_ARGS__};                                      \
        expect(__LINE__, o, t, w_, sizeof(w_) / sizeof(w_[0]));                      \
    } while (0)
#define EXPECT_NONE(o, t) expect(__LINE__, o, t, NULL, 0)

#define S LOCK_SHARED
#define X LOCK_EXCLUSIVE

/* ---- tests ---- */

static void test_ranges(void)
{
    struct tfile t;
    tfile_init(&t, "ranges");
    int fds0 = count_fds();
    struct lock_owner *a = owner("a", "h");

    CHECK_EQ(lk(a, &t, X, 10, 10), LOCK_OK);
    EXPECT(a, &t, {X, 10, 10});
    CHECK_EQ(count_fds(), fds0 + 1);
    CHECK_EQ(lk(a, &t, X, 20, 10), LOCK_OK); /* merge */
    EXPECT(a, &t, {X, 10, 20});
    CHECK_EQ(lk(a, &t, S, 15, 5), LOCK_OK); /* split by a downgrade in the middle */
    EXPECT(a, &t, {X, 10, 5}, {S, 15, 5}, {X, 20, 10});
    CHECK_EQ(count_fds(), fds0 + 1); /* still one description */
    CHECK_EQ(lk(a, &t, X, 0, 0), LOCK_OK); /* upgrade all to end of file */
    EXPECT(a, &t, {X, 0, 0});
    CHECK_EQ(lock_unlock(ls, a, &t.id, 50, 10), LOCK_OK); /* hole */
    EXPECT(a, &t, {X, 0, 50}, {X, 60, 0});
    CHECK_EQ(lk(a, &t, S, 0, 100), LOCK_OK); /* downgrade a prefix */
    EXPECT(a, &t, {S, 0, 100}, {X, 100, 0});
    CHECK_EQ(lk(a, &t, X, 40, 20), LOCK_OK); /* upgrade in the middle */
    EXPECT(a, &t, {S, 0, 40}, {X, 40, 20}, {S, 60, 40}, {X, 100, 0});
    CHECK_EQ(lk(a, &t, S, 40, 20), LOCK_OK); /* downgrade back: merges the shared runs */
    EXPECT(a, &t, {S, 0, 100}, {X, 100, 0});
    CHECK_EQ(lock_unlock(ls, a, &t.id, 1000, 5), LOCK_OK);
    EXPECT(a, &t, {S, 0, 100}, {X, 100, 900}, {X, 1005, 0});
    CHECK_EQ(lock_unlock(ls, a, &t.id, 500, 2000), LOCK_OK); /* spans a hole */
    EXPECT(a, &t, {S, 0, 100}, {X, 100, 400}, {X, 2500, 0});
    CHECK_EQ(lock_unlock(ls, a, &t.id, 7, 0), LOCK_OK);
    EXPECT(a, &t, {S, 0, 7});
    CHECK_EQ(lk(a, &t, S, 7, 3), LOCK_OK); /* adjacent same type merges */
    EXPECT(a, &t, {S, 0, 10});
    CHECK_EQ(lk(a, &t, X, 10, 3), LOCK_OK); /* adjacent other type stays apart */
    EXPECT(a, &t, {S, 0, 10}, {X, 10, 3});
    CHECK_EQ(count_fds(), fds0 + 1);
    CHECK_EQ(lock_unlock(ls, a, &t.id, 0, 0), LOCK_OK);
    EXPECT_NONE(a, &t);
    CHECK_EQ(count_fds(), fds0); /* holds nothing: description closed */
    CHECK_EQ(lock_unlock(ls, a, &t.id, 0, 0), LOCK_OK); /* nothing held: still OK */
    CHECK_EQ(lock_unlock(ls, a, &t.id, 5, 5), LOCK_OK);
    struct lock_space_stats st;
    lock_space_stats(ls, &st);
    CHECK_EQ(st.files, 0);
    CHECK_EQ(st.fds, 0);
    lock_owner_put(a);
}

static void test_owners(void)
{
    struct tfile t;
    tfile_init(&t, "owners");
    struct lock_owner *a = owner("host1/1/oh", "host1");
    struct lock_owner *a2 = owner("host1/1/oh", "host1");
    struct lock_owner *b = owner("host1/2/oh", "host1");
    struct lock_owner *c = owner("host2/1/oh", "host2");
    CHECK(a == a2);
    size_t kl;
    const void *k = lock_owner_key(a, &kl);
    CHECK(kl == 10 && memcmp(k, "host1/1/oh", 10) == 0);

    CHECK_EQ(lk(a, &t, X, 0, 100), LOCK_OK);
    CHECK_EQ(lk(a2, &t, X, 50, 100), LOCK_OK); /* same key: own locks never conflict */
    CHECK_EQ(lock_test(ls, a, &t.id, X, 0, 0, NULL), LOCK_OK);
    struct lock_conflict cf;
    memset(&cf, 0, sizeof(cf));
    CHECK_EQ(lock_test(ls, b, &t.id, S, 120, 1, &cf), LOCK_DENIED);
    CHECK(cf.holder == a);
    CHECK_EQ(cf.type, X);
    CHECK_EQ(cf.start, 0);
    CHECK_EQ(cf.len, 150);
    lock_owner_put(cf.holder);
    struct lock_req r = {X, 149, 2, false, NULL, NULL};
    memset(&cf, 0, sizeof(cf));
    CHECK_EQ(lock_lock(ls, c, &t.id, &r, &cf), LOCK_DENIED);
    CHECK(cf.holder == a);
    lock_owner_put(cf.holder);
    CHECK_EQ(lk(c, &t, X, 150, 10), LOCK_OK); /* just past it */
    /* shared locks of different owners coexist; exclusive conflicts with them */
    CHECK_EQ(lk(a, &t, S, 0, 150), LOCK_OK);
    CHECK_EQ(lk(b, &t, S, 0, 10), LOCK_OK);
    CHECK_EQ(lk(b, &t, X, 0, 10), LOCK_DENIED);
    memset(&cf, 0, sizeof(cf));
    CHECK_EQ(lock_test(ls, c, &t.id, X, 5, 1, &cf), LOCK_DENIED);
    CHECK(cf.holder == a || cf.holder == b);
    CHECK_EQ(cf.type, S);
    lock_owner_put(cf.holder);
    lock_release_owner(ls, a);
    CHECK_EQ(lock_test(ls, c, &t.id, X, 50, 1, NULL), LOCK_OK);
    lock_release_owner(ls, b);
    lock_release_owner(ls, c);
    lock_owner_put(a);
    lock_owner_put(a2);
    lock_owner_put(b);
    lock_owner_put(c);
}

/* A local process holding a classic fcntl lock; commands over a pipe:
 * 'u' unlock, 'x' exit, 't' try F_SETLK write on [100,101) and report '0' or 'E'. */
struct child {
    pid_t pid;
    int cmd, resp;
};

static void child_main(const char *path, int cmd, int resp)
{
    /* drop inherited descriptions so the parent's OFD locks go when it closes them */
    for (int fd = 3; fd < 1024; fd++)
        if (fd != cmd && fd != resp)
            close(fd);
    int fd = open(path, O_RDWR);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    char c = fcntl(fd, F_SETLK, &fl) == 0 ? 'R' : 'E';
    if (write(resp, &c, 1) != 1)
        _exit(1);
    while (read(cmd, &c, 1) == 1) {
        if (c == 'u') {
            fl.l_type = F_UNLCK;
            c = fcntl(fd, F_SETLK, &fl) == 0 ? '0' : 'E';
        } else if (c == 't') {
            struct flock t = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 1};
            c = fcntl(fd, F_SETLK, &t) == 0 ? '0' : (errno == EAGAIN || errno == EACCES) ? 'A' : 'E';
        } else {
            _exit(0);
        }
        if (write(resp, &c, 1) != 1)
            _exit(1);
    }
    _exit(0);
}

static bool child_start(struct child *ch, const char *path)
{
    int c[2], r[2];
    if (pipe(c) || pipe(r))
        return false;
    ch->pid = fork();
    if (ch->pid == 0) {
        close(c[1]);
        close(r[0]);
        child_main(path, c[0], r[1]);
    }
    close(c[0]);
    close(r[1]);
    ch->cmd = c[1];
    ch->resp = r[0];
    char x = 0;
    return read(ch->resp, &x, 1) == 1 && x == 'R';
}

static char child_cmd(struct child *ch, char c)
{
    char x = 0;
    if (write(ch->cmd, &c, 1) != 1 || (c != 'x' && read(ch->resp, &x, 1) != 1))
        return 0;
    return x;
}

static void child_end(struct child *ch)
{
    close(ch->cmd);
    close(ch->resp);
    waitpid(ch->pid, NULL, 0);
}

static void test_local(bool by_exit)
{
    struct tfile t;
    tfile_init(&t, by_exit ? "local-exit" : "local-unlock");
    struct child ch;
    CHECK(child_start(&ch, t.path));
    struct lock_owner *a = owner("a", "h");

    /* the local lock blocks our owner, and TEST names the process */
    struct lock_req r = {X, 5, 1, false, NULL, NULL};
    struct lock_conflict cf;
    memset(&cf, 0, sizeof(cf));
    CHECK_EQ(lock_lock(ls, a, &t.id, &r, &cf), LOCK_DENIED);
    CHECK(cf.holder == NULL);
    CHECK_EQ(cf.pid, ch.pid);
    CHECK_EQ(cf.start, 0);
    CHECK_EQ(cf.len, 10);
    CHECK_EQ(cf.type, X);
    CHECK_EQ(lock_test(ls, a, &t.id, S, 9, 0, &cf), LOCK_DENIED);
    CHECK_EQ(cf.pid, ch.pid);
    CHECK_EQ(lk(a, &t, S, 10, 5), LOCK_OK); /* outside it */

    /* and our owner's lock blocks the local process */
    CHECK_EQ(lk(a, &t, X, 100, 10), LOCK_OK);
    CHECK_EQ(child_cmd(&ch, 't'), 'A');
    CHECK_EQ(lock_unlock(ls, a, &t.id, 100, 10), LOCK_OK);
    CHECK_EQ(child_cmd(&ch, 't'), '0');

    /* a blocking lock is granted within the timer bound after the local release */
    struct grant g;
    grant_init(&g);
    CHECK_EQ(lkw(a, &t, X, 0, 10, &g), LOCK_BLOCKED);
    sleep_ms(700); /* let the backoff reach its 500 ms cap */
    CHECK_EQ(g.calls, 0);
    int64_t t0 = ms_now();
    if (by_exit) {
        child_cmd(&ch, 'x');
        waitpid(ch.pid, NULL, 0);
        ch.pid = -1;
    } else {
        CHECK_EQ(child_cmd(&ch, 'u'), '0');
    }
    CHECK_EQ(grant_wait(&g, 2000), 1);
    CHECK_EQ(g.status, LOCK_OK);
    int64_t lat = g.at_ms - t0;
    printf("local %s -> granted after %lld ms (bound 500)\n", by_exit ? "exit" : "unlock", (long long)lat);
    CHECK(lat <= 600);
    if (ch.pid > 0)
        child_end(&ch); /* also drops its lock on [100,101) */
    else {
        close(ch.cmd);
        close(ch.resp);
    }
    EXPECT(a, &t, {X, 0, 10}, {S, 10, 5});
    lock_release_owner(ls, a);
    lock_owner_put(a);
}

static void test_wake_and_cancel(void)
{
    struct tfile t;
    tfile_init(&t, "wake");
    struct lock_owner *a = owner("a", "h"), *b = owner("b", "h2");
    int fds0 = count_fds();

    /* an NFS owner's unlock wakes the waiter at once, not at the next timer tick */
    struct grant g;
    grant_init(&g);
    CHECK_EQ(lk(a, &t, X, 0, 10), LOCK_OK);
    CHECK_EQ(lkw(b, &t, S, 5, 10, &g), LOCK_BLOCKED);
    CHECK_EQ(lkw(b, &t, S, 5, 10, &g), LOCK_ALREADY_QUEUED);
    CHECK_EQ(count_fds(), fds0 + 2); /* the waiter's description is already open */
    sleep_ms(400); /* timer interval now > 300 ms */
    CHECK_EQ(g.calls, 0);
    int64_t t0 = ms_now();
    CHECK_EQ(lock_unlock(ls, a, &t.id, 0, 10), LOCK_OK);
    CHECK_EQ(grant_wait(&g, 1000), 1);
    printf("NFS unlock -> granted after %lld ms\n", (long long)(g.at_ms - t0));
    CHECK(g.at_ms - t0 < 100);
    EXPECT(b, &t, {S, 5, 10});
    sleep_ms(50);
    CHECK_EQ(g.calls, 1); /* exactly once */

    /* a downgrade lets a shared waiter in at once too */
    struct grant g2;
    grant_init(&g2);
    CHECK_EQ(lock_unlock(ls, b, &t.id, 0, 0), LOCK_OK);
    CHECK_EQ(lk(a, &t, X, 0, 10), LOCK_OK);
    CHECK_EQ(lkw(b, &t, S, 0, 1, &g2), LOCK_BLOCKED);
    sleep_ms(400);
    CHECK_EQ(lk(a, &t, S, 0, 10), LOCK_OK);
    CHECK_EQ(grant_wait(&g2, 1000), 1);
    CHECK_EQ(lock_unlock(ls, b, &t.id, 0, 0), LOCK_OK);

    /* cancel: removed, never called back, no lock taken, fd closed */
    struct grant g3;
    grant_init(&g3);
    CHECK_EQ(lk(a, &t, X, 0, 10), LOCK_OK);
    CHECK_EQ(lkw(b, &t, X, 0, 1, &g3), LOCK_BLOCKED);
    CHECK_EQ(lock_cancel(ls, b, &t.id, S, 0, 1), LOCK_NOT_QUEUED); /* other type */
    CHECK_EQ(lock_cancel(ls, b, &t.id, X, 0, 1), LOCK_OK);
    CHECK_EQ(lock_cancel(ls, b, &t.id, X, 0, 1), LOCK_NOT_QUEUED);
    CHECK_EQ(count_fds(), fds0 + 1);
    CHECK_EQ(lock_unlock(ls, a, &t.id, 0, 0), LOCK_OK);
    sleep_ms(100);
    CHECK_EQ(g3.calls, 0);
    EXPECT_NONE(b, &t);

    /* cancel after the grant: NOT_QUEUED, the lock is held and the callback runs */
    struct grant g4;
    grant_init(&g4);
    CHECK_EQ(lk(a, &t, X, 0, 10), LOCK_OK);
    CHECK_EQ(lkw(b, &t, X, 0, 1, &g4), LOCK_BLOCKED);
    CHECK_EQ(lock_unlock(ls, a, &t.id, 0, 0), LOCK_OK);
    CHECK_EQ(grant_wait(&g4, 1000), 1);
    CHECK_EQ(lock_cancel(ls, b, &t.id, X, 0, 1), LOCK_NOT_QUEUED);
    EXPECT(b, &t, {X, 0, 1});
    lock_release_owner(ls, b);
    CHECK_EQ(count_fds(), fds0);

    lock_owner_put(a);
    lock_owner_put(b);
}

static void test_release(void)
{
    struct tfile t1, t2;
    tfile_init(&t1, "rel1");
    tfile_init(&t2, "rel2");
    int fds0 = count_fds();
    struct lock_owner *a = owner("a", "ha"), *a2 = owner("a2", "ha"), *b = owner("b", "hb");
    struct grant g, gb;
    grant_init(&g);
    grant_init(&gb);
    CHECK_EQ(lk(b, &t2, X, 500, 1), LOCK_OK);
    CHECK_EQ(lk(a, &t1, X, 0, 10), LOCK_OK);
    CHECK_EQ(lk(a, &t1, S, 20, 10), LOCK_OK);
    CHECK_EQ(lk(a, &t2, S, 0, 100), LOCK_OK);
    CHECK_EQ(lkw(a, &t2, X, 500, 1, &g), LOCK_BLOCKED);
    CHECK_EQ(lkw(b, &t1, X, 5, 1, &gb), LOCK_BLOCKED);
    CHECK_EQ(count_fds(), fds0 + 4);
    lock_release_owner(ls, a);
    CHECK_EQ(grant_wait(&gb, 1000), 1); /* release wakes waiters at once */
    EXPECT(b, &t1, {X, 5, 1});          /* and a's locks are gone from the kernel */
    CHECK_EQ(lock_unlock(ls, b, &t1.id, 0, 0), LOCK_OK);
    CHECK_EQ(lock_unlock(ls, b, &t2.id, 0, 0), LOCK_OK);
    sleep_ms(50);
    CHECK_EQ(g.calls, 0); /* a's dropped waiter is never called */
    CHECK_EQ(count_fds(), fds0);
    lock_release_owner(ls, b);
    CHECK_EQ(count_fds(), fds0);

    /* release of one file, and of a host (all its owners) */
    CHECK_EQ(lk(a, &t1, X, 0, 1), LOCK_OK);
    CHECK_EQ(lk(a, &t2, X, 0, 1), LOCK_OK);
    CHECK_EQ(lk(a2, &t1, X, 5, 1), LOCK_OK);
    CHECK_EQ(lk(b, &t1, X, 9, 1), LOCK_OK);
    lock_release_file(ls, a, &t1.id);
    EXPECT(a, &t2, {X, 0, 1});
    CHECK_EQ(lock_test(ls, b, &t1.id, X, 0, 1, NULL), LOCK_OK);
    lock_release_host(ls, "ha", 2);
    lock_release_host(ls, "nobody", 6);
    EXPECT_NONE(a, &t2);
    CHECK_EQ(lock_test(ls, b, &t1.id, X, 0, 9, NULL), LOCK_OK);
    EXPECT(b, &t1, {X, 9, 1});
    lock_release_owner(ls, b);
    CHECK_EQ(count_fds(), fds0);
    lock_owner_put(a);
    lock_owner_put(a2);
    lock_owner_put(b);
}

static void test_edges(void)
{
    struct tfile t;
    tfile_init(&t, "edges");
    struct lock_owner *a = owner("a", "h"), *b = owner("b", "h");
    const uint64_t M = (uint64_t)INT64_MAX, U = UINT64_MAX;
    CHECK_EQ(lk(a, &t, X, 0, 1), LOCK_OK);
    CHECK_EQ(lk(a, &t, X, M, 1), LOCK_OK);         /* the last byte: "to end of file" */
    EXPECT(a, &t, {X, 0, 1}, {X, M, 0});
    CHECK_EQ(lk(a, &t, S, U, 1), LOCK_OK);         /* start beyond OFF_MAX: clamped */
    EXPECT(a, &t, {X, 0, 1}, {S, M, 0});
    CHECK_EQ(lk(b, &t, S, M + 5, 1), LOCK_OK);     /* both clamp onto byte OFF_MAX */
    CHECK_EQ(lk(b, &t, X, M + 5, 1), LOCK_DENIED); /* conservative: shares OFF_MAX */
    CHECK_EQ(lk(b, &t, X, M - 1, 1), LOCK_OK);     /* below: independent */
    CHECK_EQ(lock_unlock(ls, b, &t.id, 0, 0), LOCK_OK);
    CHECK_EQ(lock_unlock(ls, a, &t.id, U, U), LOCK_OK);
    EXPECT(a, &t, {X, 0, 1});
    CHECK_EQ(lk(a, &t, X, 1, U), LOCK_OK);         /* wraps: to end of file */
    EXPECT(a, &t, {X, 0, 0});
    CHECK_EQ(lk(a, &t, S, 100, M), LOCK_OK);       /* last byte beyond OFF_MAX: to EOF */
    EXPECT(a, &t, {X, 0, 100}, {S, 100, 0});
    CHECK_EQ(lk(a, &t, X, 0, U), LOCK_OK);         /* the classic "whole file" */
    EXPECT(a, &t, {X, 0, 0});
    CHECK_EQ(lk(a, &t, S, M - 10, 11), LOCK_OK);   /* ends exactly at OFF_MAX */
    EXPECT(a, &t, {X, 0, M - 10}, {S, M - 10, 0});
    CHECK_EQ(lock_unlock(ls, a, &t.id, M, 1), LOCK_OK);
    EXPECT(a, &t, {X, 0, M - 10}, {S, M - 10, 10});
    CHECK_EQ(lock_unlock(ls, a, &t.id, U, 1), LOCK_OK); /* nothing left at OFF_MAX */
    CHECK_EQ(lock_unlock(ls, a, &t.id, 0, 0), LOCK_OK);
    EXPECT_NONE(a, &t);
    CHECK_EQ(lock_test(ls, a, &t.id, 7, 0, 0, NULL), LOCK_INVAL);
    lock_owner_put(a);
    lock_owner_put(b);
}

static void test_access(void)
{
    struct tfile t;
    tfile_init(&t, "readonly");
    t.readonly = true;
    struct lock_owner *a = owner("a", "h");
    CHECK_EQ(lk(a, &t, S, 0, 10), LOCK_OK);     /* falls back to a read-only open */
    CHECK_EQ(lk(a, &t, X, 0, 10), LOCK_ACCESS); /* the held description cannot write-lock */
    EXPECT(a, &t, {S, 0, 10});
    CHECK_EQ(lock_unlock(ls, a, &t.id, 0, 0), LOCK_OK);
    CHECK_EQ(lk(a, &t, X, 0, 10), LOCK_ACCESS); /* no write open at all */
    struct lock_file_id gone = {"gone", 4, open_cb, &(struct tfile){.path = "/nonexistent/x"}};
    struct lock_req r = {S, 0, 1, false, NULL, NULL};
    CHECK_EQ(lock_lock(ls, a, &gone, &r, NULL), LOCK_STALE);
    struct lock_space_stats st;
    lock_space_stats(ls, &st);
    CHECK_EQ(st.fds, 0);
    CHECK_EQ(st.files, 0);
    lock_owner_put(a);
}

static void test_caps(void)
{
    struct lock_space *saved = ls;
    struct lock_space_params p = {.max_waiters = 2500, .max_waiters_per_host = 1000};
    ls = lock_space_create(&p);
    struct tfile t;
    tfile_init(&t, "caps");
    int fds0 = count_fds();
    struct lock_owner *a = owner("a", "ha"), *b = owner("b", "hb"), *b2 = owner("b2", "hb");
    CHECK_EQ(lk(a, &t, X, 0, 0), LOCK_OK);
    static struct grant g[3000];
    int blocked = 0, nolocks = 0;
    for (int i = 0; i < 3000; i++) {
        grant_init(&g[i]);
        enum lock_status st = lkw(b, &t, X, (uint64_t)i * 2, 1, &g[i]);
        blocked += st == LOCK_BLOCKED;
        nolocks += st == LOCK_NOLOCKS;
    }
    CHECK_EQ(blocked, 1000);
    CHECK_EQ(nolocks, 2000);
    struct grant gx;
    grant_init(&gx);
    CHECK_EQ(lkw(b2, &t, X, 1, 1, &gx), LOCK_NOLOCKS); /* same host */
    CHECK_EQ(lkw(b, &t, X, 0, 1, &gx), LOCK_ALREADY_QUEUED);
    struct lock_owner *o[3];
    int ob = 0;
    for (int i = 0; i < 3; i++) {
        char k[8], h[8];
        snprintf(k, sizeof(k), "c%d", i);
        snprintf(h, sizeof(h), "hc%d", i);
        o[i] = owner(k, h);
        for (int j = 0; j < 1000; j++)
            ob += lkw(o[i], &t, S, (uint64_t)j, 1, &gx) == LOCK_BLOCKED;
    }
    CHECK_EQ(ob, 1500); /* the total cap */
    CHECK_EQ(count_fds(), fds0 + 1 + 1 + 2);
    struct lock_space_stats st;
    lock_space_stats(ls, &st);
    CHECK_EQ(st.waiters, 2500);
    lock_release_host(ls, "hb", 2);
    lock_space_stats(ls, &st);
    CHECK_EQ(st.waiters, 1500);
    /* the freed room is usable again */
    CHECK_EQ(lkw(b2, &t, X, 1, 1, &gx), LOCK_BLOCKED);
    lock_space_destroy(ls); /* with waiters queued: no callbacks, fds closed */
    CHECK_EQ(count_fds(), fds0);
    CHECK_EQ(g[0].calls, 0);
    ls = saved;
}

/* ---- concurrency: many threads and owners on few files; the end state is empty ---- */

static struct tfile ctf[3];
static atomic_int cgrants;

static void count_cb(void *arg, enum lock_status st)
{
    (void)arg;
    if (st == LOCK_OK)
        atomic_fetch_add(&cgrants, 1);
}

static void *stress(void *arg)
{
    int id = (int)(intptr_t)arg;
    char k[16];
    snprintf(k, sizeof(k), "t%d", id);
    struct lock_owner *o = owner(k, id % 2 ? "odd" : "even");
    unsigned seed = (unsigned)id * 7919u;
    for (int i = 0; i < 2000; i++) {
        struct tfile *t = &ctf[rand_r(&seed) % 3];
        uint64_t s = rand_r(&seed) % 64, l = rand_r(&seed) % 16;
        enum lock_type ty = rand_r(&seed) % 2 ? S : X;
        switch (rand_r(&seed) % 6) {
        case 0: case 1: {
            struct lock_req r = {ty, s, l, rand_r(&seed) % 4 == 0, count_cb, NULL};
            struct lock_conflict c = {0};
            if (lock_lock(ls, o, &t->id, &r, &c) == LOCK_DENIED)
                lock_owner_put(c.holder);
            break;
        }
        case 2: lock_unlock(ls, o, &t->id, s, l); break;
        case 3: lock_cancel(ls, o, &t->id, ty, s, l); break;
        case 4: {
            struct lock_conflict c = {0};
            if (lock_test(ls, o, &t->id, ty, s, l, &c) == LOCK_DENIED)
                lock_owner_put(c.holder);
            break;
        }
        default:
            if (rand_r(&seed) % 20 == 0)
                lock_release_owner(ls, o);
            else
                lock_release_file(ls, o, &t->id);
        }
    }
    lock_release_owner(ls, o);
    lock_owner_put(o);
    return NULL;
}

static void test_concurrent(void)
{
    int fds0 = count_fds();
    for (int i = 0; i < 3; i++) {
        char n[16];
        snprintf(n, sizeof(n), "conc%d", i);
        tfile_init(&ctf[i], n);
    }
    pthread_t th[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, stress, (void *)(intptr_t)i);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    sleep_ms(50);
    struct lock_space_stats st;
    lock_space_stats(ls, &st);
    CHECK_EQ(st.files, 0);
    CHECK_EQ(st.fds, 0);
    CHECK_EQ(st.waiters, 0);
    CHECK_EQ(count_fds(), fds0);
    struct lock_range k[4];
    for (int i = 0; i < 3; i++)
        CHECK_EQ(kernel_ranges(&ctf[i], k, 4), 0);
    printf("concurrent: %d waiters granted\n", atomic_load(&cgrants));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, sizeof(dir), "/tmp/test_lock.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    ls = lock_space_create(NULL);
    CHECK(ls != NULL);
    test_ranges();
    test_owners();
    test_edges();
    test_access();
    test_local(false);
    test_local(true);
    test_wake_and_cancel();
    test_release();
    test_caps();
    test_concurrent();
    struct lock_space_stats st;
    lock_space_stats(ls, &st);
    CHECK_EQ(st.files, 0);
    lock_space_destroy(ls);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup of %s failed\n", dir);
    return check_report("test_lock");
}
