/*
 * Cached entry attributes of the posix backend's READDIRPLUS (posix_dircache.h, "Entry
 * attributes"): after a listing that cached them (asserted through the counters), every
 * change made before the next listing is seen by it: local writes by path, truncate,
 * chmod, utimensat, rename-over, writes and setattr through the backend, a hard-linked
 * file changed through its other name, a subdirectory's own changes; listings stay
 * correct when no inotify watch can be had; and concurrent listers + local writers
 * never see a size older than one written before their request.
 *
 * Needs root (open_by_handle_at); exits 77 (skipped) otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "fs/fs.h"
#include "fs/posix_dircache.h"

static const struct fs_ops *ops = &fs_posix_ops;
static char base[64];
static struct fs_export *ex;
static struct fs_fh rootfh;
static const struct fs_cred root_cred = {0, 0, 0, {0}};

#define S(x) x, strlen(x)
#define NFILES 40

static char *path_of(const char *rel)
{
    static __thread char buf[4][512]; /* two paths in one call */
    static __thread unsigned next;
    char *b = buf[next++ % 4];
    snprintf(b, 512, "%s/%s", base, rel);
    return b;
}

/* Files made by another "process" (plain system calls, not the backend). */
static void local_file(const char *rel, const char *data)
{
    int fd = open(path_of(rel), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK_EQ(write(fd, data, strlen(data)), (long long)strlen(data));
        close(fd);
    }
}

static void local_append(const char *rel, const char *data)
{
    int fd = open(path_of(rel), O_WRONLY | O_APPEND);
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK_EQ(write(fd, data, strlen(data)), (long long)strlen(data));
        close(fd);
    }
}

static struct dc_attr_stats astats(void)
{
    struct dc_attr_stats s;
    dc_get_attr_stats(&s);
    return s;
}

static struct fs_fh dir_fh(const char *rel)
{
    struct fs_fh fh;
    struct stat st;
    memset(&fh, 0, sizeof(fh));
    CHECK_EQ(ops->lookup(ex, &root_cred, &rootfh, S(rel), &fh, &st), 0);
    return fh;
}

/* ---- one READDIRPLUS listing, compared with lstat of every name ---- */

struct seen {
    char name[64];
    bool has;
    struct fs_fh fh;
    struct stat st;
};

struct listing {
    struct seen v[256];
    int n;
};

static int collect(void *ctx, const struct fs_dirent *de)
{
    struct listing *l = ctx;
    if (l->n == 256)
        return -ENOSPC;
    struct seen *s = &l->v[l->n++];
    snprintf(s->name, sizeof(s->name), "%.*s", (int)de->namelen, de->name);
    s->has = de->st && de->fh;
    if (s->has) {
        s->st = *de->st;
        s->fh = *de->fh;
    }
    return 0;
}

/* `chunk` > 0: in calls of that many entries (resumed by cookie); 0: in one call. */
static int list(const struct fs_fh *dir, struct listing *l)
{
    bool eof = false;
    l->n = 0;
    return ops->readdir(ex, &root_cred, dir, 0, FS_READDIR_PLUS, collect, l, &eof);
}

static bool ts_eq(struct timespec a, struct timespec b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static const struct seen *find(const struct listing *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->v[i].name, name) == 0)
            return &l->v[i];
    return NULL;
}

/* Every entry's attributes (but atime) equal lstat's now; the number that differ. */
static int stale_entries(const char *dirrel, const struct listing *l)
{
    int bad = 0;
    for (int i = 0; i < l->n; i++) {
        const struct seen *s = &l->v[i];
        if (strcmp(s->name, ".") == 0 || strcmp(s->name, "..") == 0)
            continue;
        char rel[160];
        snprintf(rel, sizeof(rel), "%s/%s", dirrel, s->name);
        struct stat now;
        if (lstat(path_of(rel), &now) < 0 || !s->has) {
            fprintf(stderr, "%s: %s\n", rel, s->has ? "gone" : "listed without attributes");
            bad++;
            continue;
        }
        const struct stat *a = &s->st;
        if (a->st_ino != now.st_ino || a->st_mode != now.st_mode || a->st_nlink != now.st_nlink ||
            a->st_uid != now.st_uid || a->st_gid != now.st_gid || a->st_size != now.st_size ||
            a->st_blocks != now.st_blocks || !ts_eq(a->st_mtim, now.st_mtim) ||
            !ts_eq(a->st_ctim, now.st_ctim)) {
            fprintf(stderr, "%s: stale attributes (size %lld/%lld mode %o/%o nlink %lu/%lu)\n",
                    rel, (long long)a->st_size, (long long)now.st_size, (unsigned)a->st_mode,
                    (unsigned)now.st_mode, (unsigned long)a->st_nlink,
                    (unsigned long)now.st_nlink);
            bad++;
        }
    }
    return bad;
}

/* List dir twice; the second listing must serve at least `min_hits` cached entries,
 * and both must be fresh. */
static void list_cached(const char *rel, const struct fs_fh *dir, int min_hits)
{
    struct listing *l = malloc(sizeof(*l));
    CHECK_EQ(list(dir, l), 0);
    CHECK_EQ(stale_entries(rel, l), 0);
    struct dc_attr_stats s0 = astats();
    CHECK_EQ(list(dir, l), 0);
    CHECK_EQ(stale_entries(rel, l), 0);
    struct dc_attr_stats s1 = astats();
    if ((long long)(s1.hits - s0.hits) < min_hits) {
        fprintf(stderr, "%s: %llu cached entries served, wanted %d\n", rel,
                (unsigned long long)(s1.hits - s0.hits), min_hits);
        check_failures++;
    }
    free(l);
}

/* After a change: the next listing is fresh. */
static void expect_fresh(const char *rel, const struct fs_fh *dir, const char *what)
{
    struct listing *l = malloc(sizeof(*l));
    CHECK_EQ(list(dir, l), 0);
    int bad = stale_entries(rel, l);
    if (bad)
        fprintf(stderr, "after %s: %d stale entries\n", what, bad);
    CHECK_EQ(bad, 0);
    free(l);
}

static void age_dir(void)
{
    usleep(40 * 1000); /* past the snapshot trust window (20 ms) */
}

/* ---- tests ---- */

static void test_local_changes(void)
{
    CHECK_EQ(mkdir(path_of("a"), 0755), 0);
    char rel[64];
    for (int i = 0; i < NFILES; i++) {
        snprintf(rel, sizeof(rel), "a/f%d", i);
        local_file(rel, "hello");
    }
    CHECK_EQ(mkdir(path_of("a/sub"), 0755), 0);
    age_dir();
    struct fs_fh a = dir_fh("a");
    struct dc_attr_stats s0 = astats();
    list_cached("a", &a, NFILES);
    CHECK(astats().stores - s0.stores >= NFILES);
    CHECK(astats().watches >= 1);

    local_append("a/f1", "more");
    expect_fresh("a", &a, "a local write");
    list_cached("a", &a, NFILES);

    CHECK_EQ(truncate(path_of("a/f2"), 1), 0);
    expect_fresh("a", &a, "a local truncate");
    list_cached("a", &a, NFILES);

    CHECK_EQ(chmod(path_of("a/f3"), 0600), 0);
    expect_fresh("a", &a, "a local chmod");
    list_cached("a", &a, NFILES);

    struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = 1000000, .tv_nsec = 5}};
    CHECK_EQ(utimensat(AT_FDCWD, path_of("a/f4"), ts, 0), 0);
    expect_fresh("a", &a, "a local utimensat");
    list_cached("a", &a, NFILES);

    /* the same mtime set again: only ctime changes */
    CHECK_EQ(utimensat(AT_FDCWD, path_of("a/f4"), ts, 0), 0);
    expect_fresh("a", &a, "a local utimensat to the same time");
    list_cached("a", &a, NFILES);

    /* rename-over from another directory */
    local_file("other", "a much longer file than hello");
    CHECK_EQ(rename(path_of("other"), path_of("a/f5")), 0);
    expect_fresh("a", &a, "a local rename-over");
    age_dir();
    list_cached("a", &a, NFILES);

    /* a write through an fd opened before the listing */
    int fd = open(path_of("a/f6"), O_WRONLY);
    CHECK(fd >= 0);
    list_cached("a", &a, NFILES);
    CHECK_EQ(pwrite(fd, "0123456789", 10, 100), 10);
    expect_fresh("a", &a, "a write through an fd opened before");
    close(fd);

    /* the subdirectory's own mtime and link count (never cached) */
    list_cached("a", &a, NFILES);
    CHECK_EQ(mkdir(path_of("a/sub/inner"), 0755), 0);
    expect_fresh("a", &a, "a change inside the subdirectory");
}

static void test_backend_changes(void)
{
    struct fs_fh a = dir_fh("a");
    list_cached("a", &a, NFILES);
    struct listing *l = malloc(sizeof(*l));
    CHECK_EQ(list(&a, l), 0);
    const struct seen *f7 = find(l, "f7"), *f8 = find(l, "f8");
    CHECK(f7 && f7->has && f8 && f8->has);
    if (f7 && f8) {
        struct fs_fh h7 = f7->fh, h8 = f8->fh;
        size_t n = 0;
        struct stat st;
        CHECK_EQ(ops->write(ex, &h7, 1000, "xyz", 3, FS_UNSTABLE, &n, &st), 0);
        expect_fresh("a", &a, "a backend write");
        list_cached("a", &a, NFILES);
        struct fs_setattr sa = {.mask = FS_SET_MODE | FS_SET_SIZE, .mode = 0640, .size = 77};
        CHECK_EQ(ops->setattr(ex, &root_cred, &h8, &sa, &st), 0);
        expect_fresh("a", &a, "a backend setattr");
        list_cached("a", &a, NFILES);
        /* a second export of the same filesystem changing the file */
        struct fs_export *ex2;
        CHECK_EQ(ops->export_open(base, &ex2), 0);
        sa = (struct fs_setattr){.mask = FS_SET_MTIME, .mtime = {12345, 6}};
        CHECK_EQ(ops->setattr(ex2, &root_cred, &h8, &sa, &st), 0);
        expect_fresh("a", &a, "a setattr through another export");
        ops->export_close(ex2);
    }
    free(l);
}

/* A file with two names: changed through the other directory, it is fresh here. */
static void test_hard_link(void)
{
    CHECK_EQ(mkdir(path_of("h"), 0755), 0);
    CHECK_EQ(mkdir(path_of("h2"), 0755), 0);
    local_file("h/linked", "abc");
    CHECK_EQ(link(path_of("h/linked"), path_of("h2/other")), 0);
    for (int i = 0; i < 10; i++) {
        char rel[32];
        snprintf(rel, sizeof(rel), "h/g%d", i);
        local_file(rel, "x");
    }
    age_dir();
    struct fs_fh h = dir_fh("h");
    list_cached("h", &h, 10);
    local_append("h2/other", "defgh");
    expect_fresh("h", &h, "a write through the other link");
    CHECK_EQ(chmod(path_of("h2/other"), 0611), 0);
    expect_fresh("h", &h, "a chmod through the other link");
    /* the other name goes: nlink 1 again, cacheable again, and fresh */
    CHECK_EQ(unlink(path_of("h2/other")), 0);
    expect_fresh("h", &h, "the other link removed");
    list_cached("h", &h, 11);
}

/* No inotify watch to be had (as at the watch limit): correct, just uncached. */
static void test_no_watch(void)
{
    CHECK_EQ(mkdir(path_of("nw"), 0755), 0);
    for (int i = 0; i < 10; i++) {
        char rel[32];
        snprintf(rel, sizeof(rel), "nw/n%d", i);
        local_file(rel, "x");
    }
    age_dir();
    struct fs_fh d = dir_fh("nw");
    dc_test_fail_watches(true);
    struct dc_attr_stats s0 = astats();
    expect_fresh("nw", &d, "nothing");
    expect_fresh("nw", &d, "nothing");
    struct dc_attr_stats s1 = astats();
    CHECK_EQ(s1.hits - s0.hits, 0);
    CHECK_EQ(s1.stores - s0.stores, 0);
    CHECK(s1.watch_failures > s0.watch_failures);
    local_append("nw/n3", "abc");
    expect_fresh("nw", &d, "a local write without a watch");
    CHECK_EQ(chmod(path_of("nw/n4"), 0604), 0);
    expect_fresh("nw", &d, "a local chmod without a watch");
    dc_test_fail_watches(false);
}

/* ---- concurrent listers and local writers ---- */

#define CF 32
static atomic_bool stop;
static atomic_llong written[CF]; /* size of c/w<i> as of a completed write */
static struct fs_fh cdir;

static void *writer(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    while (!atomic_load(&stop)) {
        int i = (int)(rand_r(&seed) % CF);
        char rel[32];
        snprintf(rel, sizeof(rel), "c/w%d", i);
        int fd = open(path_of(rel), O_WRONLY | O_APPEND);
        if (fd < 0)
            continue;
        /* one writer per file: even writer ids take even files */
        if ((i & 1) == (int)((uintptr_t)arg & 1) && write(fd, "z", 1) == 1) {
            struct stat st;
            if (fstat(fd, &st) == 0)
                atomic_store(&written[i], (long long)st.st_size);
        }
        close(fd);
        if (rand_r(&seed) % 8 == 0)
            chmod(path_of(rel), (rand_r(&seed) & 1) ? 0644 : 0600);
    }
    return NULL;
}

static void *lister(void *arg)
{
    int *errors = arg;
    struct listing *l = malloc(sizeof(*l));
    while (!atomic_load(&stop)) {
        long long before[CF];
        for (int i = 0; i < CF; i++)
            before[i] = atomic_load(&written[i]);
        if (list(&cdir, l) != 0) {
            (*errors)++;
            continue;
        }
        for (int i = 0; i < CF; i++) {
            char name[16];
            snprintf(name, sizeof(name), "w%d", i);
            const struct seen *s = find(l, name);
            if (!s || !s->has || s->st.st_size < before[i]) {
                fprintf(stderr, "%s: size %lld, wrote %lld before the listing\n", name,
                        s && s->has ? (long long)s->st.st_size : -1LL, before[i]);
                (*errors)++;
            }
        }
    }
    free(l);
    return NULL;
}

static void test_concurrent(void)
{
    CHECK_EQ(mkdir(path_of("c"), 0755), 0);
    for (int i = 0; i < CF; i++) {
        char rel[32];
        snprintf(rel, sizeof(rel), "c/w%d", i);
        local_file(rel, "");
    }
    for (int i = 0; i < 200; i++) { /* quiet ones, cached most of the time */
        char rel[32];
        snprintf(rel, sizeof(rel), "c/q%d", i);
        local_file(rel, "q");
    }
    age_dir();
    cdir = dir_fh("c");
    struct dc_attr_stats s0 = astats();
    enum { NL = 3, NW = 2 };
    pthread_t lt[NL], wt[NW];
    int errors[NL] = {0};
    for (int i = 0; i < NL; i++)
        pthread_create(&lt[i], NULL, lister, &errors[i]);
    for (int i = 0; i < NW; i++)
        pthread_create(&wt[i], NULL, writer, (void *)(uintptr_t)(i + 1));
    const char *secs = getenv("DC_ATTRS_SECONDS");
    sleep(secs ? (unsigned)atoi(secs) : 3);
    atomic_store(&stop, true);
    for (int i = 0; i < NL; i++) {
        pthread_join(lt[i], NULL);
        CHECK_EQ(errors[i], 0);
    }
    for (int i = 0; i < NW; i++)
        pthread_join(wt[i], NULL);
    struct dc_attr_stats s1 = astats();
    printf("concurrent: %llu cached entries served, %llu stored, %llu events, %llu overflows\n",
           (unsigned long long)(s1.hits - s0.hits), (unsigned long long)(s1.stores - s0.stores),
           (unsigned long long)(s1.events - s0.events),
           (unsigned long long)(s1.overflows - s0.overflows));
    expect_fresh("c", &cdir, "the concurrent run");
}

int main(void)
{
    if (geteuid() != 0) {
        printf("test_dircache_attrs: needs root (open_by_handle_at), skipped\n");
        return 77;
    }
    snprintf(base, sizeof(base), "/tmp/peernfs-dcattrs-XXXXXX");
    if (!mkdtemp(base)) {
        perror("mkdtemp");
        return 1;
    }
    int rc = ops->export_open(base, &ex);
    if (rc == -EPERM || rc == -EOPNOTSUPP || rc == -EOVERFLOW) {
        printf("test_dircache_attrs: no usable file handles here (%s), skipped\n",
               strerror(-rc));
        rmdir(base);
        return 77;
    }
    CHECK_EQ(rc, 0);
    if (rc)
        return check_report("test_dircache_attrs");
    CHECK_EQ(ops->root(ex, &rootfh), 0);

    test_local_changes();
    test_backend_changes();
    test_hard_link();
    test_no_watch();
    test_concurrent();

    ops->export_close(ex);
    CHECK_EQ(astats().watches, 0); /* every snapshot freed, every watch removed */
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", base);
    return check_report("test_dircache_attrs");
}
