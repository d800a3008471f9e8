/*
 * peernfs: command-line NFS client on client/ (see docs/peernfs.1.md).
 * Exit codes: 0 success, 1 the operation failed, 2 usage error (bad arguments or URL),
 * 3 (lock) the lock is held by someone else.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client/nfs_client.h"
#include "util/log.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_LOCKED = 3 };

static const char *cmd_name = "peernfs";
static int opt_window;
static bool opt_quiet, opt_long, opt_symbolic, opt_recursive;

static const char usage_text[] =
    "usage: peernfs [options] COMMAND ARGS...\n"
    "\n"
    "commands (URL = nfs://host[:port]/export/path[?vers=3&port=N&mountport=N...]):\n"
    "  ls [-l] URL          list a directory (or show one file)\n"
    "  stat URL             show attributes\n"
    "  cat URL              write a file to stdout\n"
    "  get URL [LOCAL]      copy a file from NFS (LOCAL default: its name, or a directory)\n"
    "  put LOCAL URL        copy a local file to NFS (URL may name a directory)\n"
    "  cp SRC DST           copy; SRC and DST are URLs or local paths (at least one URL)\n"
    "  mkdir URL            create a directory\n"
    "  rm [-r] URL          remove a file or an empty directory; -r: a directory and all\n"
    "                       below it\n"
    "  mv URL URL           rename on one server\n"
    "  ln [-s] SRC URL      hard link SRC (a URL) as URL; -s: symlink with target text SRC\n"
    "  df URL               file system usage\n"
    "  lock [--read|--write] [--wait] [--range START:LEN] [--hold SECS] [--stats] URL\n"
    "       [-- CMD [ARG...]]\n"
    "                       hold a byte-range lock (default: write lock on the whole file)\n"
    "                       while CMD runs (exit status: CMD's), for SECS seconds, or until\n"
    "                       SIGINT / SIGTERM (printing \"locked\" once it is held); --wait\n"
    "                       polls until the lock is free; --stats prints NFSv4 delegation\n"
    "                       counters on exit. v3: NLM (no blocking locks: polled)\n"
    "\n"
    "options:\n"
    "  -w, --window N       READ/WRITE requests in flight (1..64, default 4)\n"
    "  -q, --quiet          no progress bar\n"
    "  -v, --verbose        log what the client library does to recover from a dropped\n"
    "                       connection or a server restart (NFSv4)\n"
    "  -h, --help           this text\n"
    "\n"
    "exit status: 0 success, 1 the operation failed, 2 usage error, 3 (lock) the lock is\n"
    "held by someone else (without --wait).\n";

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "peernfs: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'peernfs --help'.\n");
    return EXIT_USAGE;
}

static int fail(const char *what, int st)
{
    fprintf(stderr, "peernfs: %s: %s: %s\n", cmd_name, what, nfs_client_strerror(st));
    return EXIT_FAIL;
}

static int fail_errno(const char *what)
{
    fprintf(stderr, "peernfs: %s: %s: %s\n", cmd_name, what, strerror(errno));
    return EXIT_FAIL;
}

/* ---- connecting ---- */

struct target {
    struct nfs_client *c;
    struct nfs_fh fh;      /* the object (or, with parent, its directory) */
    struct nfs_attr attr;
    char name[1025];       /* with parent: the last path component */
    const char *url;
};

/* Connect to url and look its path up; with parent, the directory holding the last
 * component (left in t->name). Returns an exit code, having said what failed. */
static bool probe_quiet; /* open_dest's probe: a missing object is not an error */

static int target_open(struct target *t, const char *url, bool parent, bool want_attr)
{
    char err[512];
    struct nfs_url u;
    memset(t, 0, sizeof(*t));
    t->url = url;
    if (nfs_url_parse(url, &u, err, sizeof(err)))
        return usage_error("%s: %s", url, err);
    if (opt_window)
        u.window = opt_window;
    if (parent) {
        char *slash = strrchr(u.path, '/');
        if (!slash[1] || strlen(slash + 1) >= sizeof(t->name)) {
            nfs_url_free(&u);
            return usage_error("%s: needs a file name after the export", url);
        }
        strcpy(t->name, slash + 1);
        slash[slash == u.path ? 1 : 0] = 0;
    }
    int st;
    t->c = nfs_client_connect_url(&u, &st, err, sizeof(err));
    nfs_url_free(&u);
    if (!t->c) {
        fprintf(stderr, "peernfs: %s: %s: %s\n", cmd_name, url, err);
        return st == -EINVAL ? EXIT_USAGE : EXIT_FAIL;
    }
    st = nfs_lookup_path(t->c, nfs_client_url_rest(t->c), &t->fh, want_attr ? &t->attr : NULL);
    if (st && probe_quiet)
        return EXIT_FAIL;
    return st ? fail(url, st) : EXIT_OK;
}

static void target_close(struct target *t)
{
    nfs_client_destroy(t->c);
    t->c = NULL;
}

/* ---- progress bar ---- */

struct progress {
    bool enabled, shown;
    uint64_t total;
    double start, last;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void progress_init(struct progress *p, uint64_t total)
{
    /* only for people watching: stdout is a terminal */
    p->enabled = !opt_quiet && isatty(STDOUT_FILENO);
    p->shown = false;
    p->total = total;
    p->start = p->last = now_s();
}

static void human(char *buf, size_t len, double v)
{
    const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int i = 0;
    while (v >= 1024 && i < 4)
        v /= 1024, i++;
    snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", v, unit[i]);
}

static void progress_draw(struct progress *p, uint64_t done, bool final)
{
    double t = now_s(), el = t - p->start;
    /* copies shorter than a second get no bar; redraw at most 10 times a second */
    if (!p->enabled || el < 1.0 || (!final && t - p->last < 0.1))
        return;
    p->last = t;
    p->shown = true;
    double rate = done / (el > 0 ? el : 1);
    char d[32], tot[32], r[32];
    human(d, sizeof(d), (double)done);
    human(tot, sizeof(tot), (double)p->total);
    human(r, sizeof(r), rate);
    int pct = p->total ? (int)(100.0 * done / p->total) : 100;
    char bar[21];
    for (int i = 0; i < 20; i++)
        bar[i] = i < pct / 5 ? '#' : '.';
    bar[20] = 0;
    long eta = rate > 0 && p->total > done ? (long)((p->total - done) / rate) : 0;
    printf("\r%10s / %-10s %3d%% [%s] %10s/s ETA %ld:%02ld ", d, tot, pct, bar, r, eta / 60,
           eta % 60);
    fflush(stdout);
}

static void progress_cb(void *arg, uint64_t done) { progress_draw(arg, done, false); }

static void progress_end(struct progress *p, uint64_t done)
{
    progress_draw(p, done, true);
    if (p->shown) {
        printf("\n");
        fflush(stdout);
    }
}

/* ---- data sinks and sources ---- */

/* All of data to fd: with write(), or with pwrite() from *at when at is not NULL. */
static int write_all(int fd, const void *data, size_t len, const uint64_t *at)
{
    const char *p = data;
    uint64_t off = at ? *at : 0;
    while (len) {
        ssize_t n = at ? pwrite(fd, p, len, (off_t)off) : write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

/* In file order (a pipe or a terminal works). */
static int fd_sink(void *arg, uint64_t off, const void *data, size_t len)
{
    (void)off;
    return write_all(*(int *)arg, data, len, NULL);
}

/* At the chunk's own offset (nfs_xfer_opts.sink_any_order). */
static int fd_pwrite_sink(void *arg, uint64_t off, const void *data, size_t len)
{
    return write_all(*(int *)arg, data, len, &off);
}

static int fd_source(void *arg, uint64_t off, void *data, size_t len)
{
    int fd = *(int *)arg;
    char *p = data;
    while (len) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO; /* the file shrank under us */
        p += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---- commands ---- */

static void mode_string(const struct nfs_attr *a, char *s)
{
    static const char types[] = "?-dbclsp";
    s[0] = types[a->type <= NFS_FIFO ? a->type : 0];
    for (int i = 0; i < 9; i++)
        s[1 + i] = (a->mode & (0400 >> i)) ? "rwxrwxrwx"[i] : '-';
    s[10] = 0;
}

static void print_long(const struct nfs_attr *a, const char *name)
{
    char m[11], tb[32];
    mode_string(a, m);
    time_t t = (time_t)a->mtime.sec;
    struct tm tm;
    strftime(tb, sizeof(tb), "%Y-%m-%d %H:%M", localtime_r(&t, &tm));
    printf("%s %3u %5u %5u %12llu %s %s\n", m, a->nlink, a->uid, a->gid,
           (unsigned long long)a->size, tb, name);
}

struct listing {
    size_t n, cap;
    char **names;
    struct nfs_attr *attrs;
    bool *have_attr;
};

static int list_add(void *arg, const struct nfs_dirent *e)
{
    struct listing *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        char **nn = realloc(l->names, cap * sizeof(*nn));
        if (nn)
            l->names = nn;
        struct nfs_attr *na = realloc(l->attrs, cap * sizeof(*na));
        if (na)
            l->attrs = na;
        bool *nh = realloc(l->have_attr, cap * sizeof(*nh));
        if (nh)
            l->have_attr = nh;
        if (!nn || !na || !nh)
            return -ENOMEM;
        l->cap = cap;
    }
    if (!(l->names[l->n] = strdup(e->name)))
        return -ENOMEM;
    l->have_attr[l->n] = e->attr != NULL;
    if (e->attr)
        l->attrs[l->n] = *e->attr;
    l->n++;
    return 0;
}

static char **sort_names;
static int by_name(const void *a, const void *b)
{
    return strcmp(sort_names[*(const size_t *)a], sort_names[*(const size_t *)b]);
}

static int cmd_ls(const char *url)
{
    struct target t;
    int rc = target_open(&t, url, false, true);
    if (rc)
        goto out;
    if (t.attr.type != NFS_DIR) {
        const char *rest = nfs_client_url_rest(t.c), *slash = strrchr(rest, '/');
        const char *name = slash ? slash + 1 : *rest ? rest : url;
        if (opt_long)
            print_long(&t.attr, name);
        else
            printf("%s\n", name);
        goto out;
    }
    struct listing l = { 0 };
    int st = nfs_readdir(t.c, &t.fh, opt_long, list_add, &l);
    if (st)
        rc = fail(url, st);
    size_t *idx = malloc((l.n + 1) * sizeof(*idx));
    if (!rc && idx) {
        for (size_t i = 0; i < l.n; i++)
            idx[i] = i;
        sort_names = l.names;
        qsort(idx, l.n, sizeof(*idx), by_name);
        for (size_t k = 0; k < l.n; k++) {
            size_t i = idx[k];
            if (opt_long && l.have_attr[i])
                print_long(&l.attrs[i], l.names[i]);
            else
                printf("%s\n", l.names[i]);
        }
    } else if (!rc) {
        rc = fail(url, -ENOMEM);
    }
    for (size_t i = 0; i < l.n; i++)
        free(l.names[i]);
    free(l.names);
    free(l.attrs);
    free(l.have_attr);
    free(idx);
out:
    target_close(&t);
    if (!rc && fflush(stdout))
        rc = fail_errno("stdout");
    return rc;
}

static int cmd_stat(const char *url)
{
    struct target t;
    int rc = target_open(&t, url, false, true);
    if (!rc) {
        static const char *types[] = { "?", "regular file", "directory", "block device",
                                       "character device", "symbolic link", "socket", "fifo" };
        const struct nfs_attr *a = &t.attr;
        char m[11];
        mode_string(a, m);
        printf("  URL: %s\n  Type: %s\n  Size: %llu\tUsed: %llu\n  Mode: %04o (%s)\n"
               "  Links: %u\tUid: %u\tGid: %u\n  Fileid: %llu\tFsid: %#llx\n"
               "  Atime: %lld.%09u\n  Mtime: %lld.%09u\n  Ctime: %lld.%09u\n",
               url, types[a->type <= NFS_FIFO ? a->type : 0], (unsigned long long)a->size,
               (unsigned long long)a->used, a->mode, m, a->nlink, a->uid, a->gid,
               (unsigned long long)a->fileid, (unsigned long long)a->fsid,
               (long long)a->atime.sec, a->atime.nsec, (long long)a->mtime.sec, a->mtime.nsec,
               (long long)a->ctime.sec, a->ctime.nsec);
        if (a->type == NFS_LNK) {
            char target[4097];
            int st = nfs_readlink(t.c, &t.fh, target, sizeof(target));
            if (st)
                rc = fail(url, st);
            else
                printf("  Target: %s\n", target);
        }
    }
    target_close(&t);
    return rc;
}

/* NFS file -> fd, written in order (fd may be a pipe), or, when own_file says fd is a file
 * just opened with O_TRUNC, at each chunk's offset. */
static int download(struct target *t, int fd, bool own_file, bool progress, const char *what)
{
    if (t->attr.type != NFS_REG) {
        fprintf(stderr, "peernfs: %s: %s: not a regular file\n", cmd_name, t->url);
        return EXIT_FAIL;
    }
    struct progress p;
    progress_init(&p, t->attr.size);
    p.enabled &= progress;
    struct nfs_xfer_opts o = { .window = opt_window, .progress = progress_cb, .progress_arg = &p };
    uint64_t done = 0;
    struct stat sb;
    /* a regular file we opened at offset 0: chunks may land in any order (pwrite), so
     * each is written from the receive thread as it arrives */
    bool positional = own_file && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode);
    o.sink_any_order = positional;
    int st = nfs_read_range(t->c, &t->fh, 0, t->attr.size, positional ? fd_pwrite_sink : fd_sink,
                            &fd, &o, &done);
    /* chunks past an early end (an error, or the file changed) may have been written */
    if (positional && ftruncate(fd, (off_t)done) < 0 && !st)
        st = -errno;
    progress_end(&p, done);
    /* a failed local write shows as -errno from the sink, e.g. -ENOSPC or -EPIPE */
    return st ? fail(st < 0 && st != -EBADMSG && st != -ETIMEDOUT && st != -ECONNRESET ? what
                                                                                        : t->url,
                     st)
              : EXIT_OK;
}

static int cmd_cat(const char *url)
{
    struct target t;
    int rc = target_open(&t, url, false, true);
    if (!rc)
        rc = download(&t, STDOUT_FILENO, false, false, "stdout");
    target_close(&t);
    return rc;
}

static bool is_local_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int get_to_local(const char *url, const char *local)
{
    struct target t;
    char *path = NULL;
    int rc = target_open(&t, url, false, true);
    if (rc)
        goto out;
    const char *rest = nfs_client_url_rest(t.c), *slash = strrchr(rest, '/');
    const char *base = slash ? slash + 1 : rest;
    if (!local || is_local_dir(local)) {
        if (!*base) {
            rc = usage_error("%s: give a local file name", url);
            goto out;
        }
        if (asprintf(&path, "%s%s%s", local ? local : "", local ? "/" : "", base) < 0) {
            rc = fail(url, -ENOMEM);
            goto out;
        }
        local = path;
    }
    int fd = open(local, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = fail_errno(local);
        goto out;
    }
    rc = download(&t, fd, true, true, local);
    if (close(fd) < 0 && !rc)
        rc = fail_errno(local);
out:
    free(path);
    target_close(&t);
    return rc;
}

/* Connect to the file a copy writes: URL naming a directory gets the source's name. */
static int open_dest(struct target *t, const char *url, const char *src_name, struct nfs_file *f,
                     uint32_t mode)
{
    struct target probe;
    probe_quiet = true;
    int rc = target_open(&probe, url, false, true);
    probe_quiet = false;
    bool into_dir = !rc && probe.attr.type == NFS_DIR;
    target_close(&probe);
    char *u2 = NULL;
    if (into_dir) {
        /* insert "/name" before any "?args" */
        const char *q = strchr(url, '?');
        size_t n = q ? (size_t)(q - url) : strlen(url);
        if (asprintf(&u2, "%.*s/%s%s", (int)n, url, src_name, q ? q : "") < 0)
            return fail(url, -ENOMEM);
        url = u2;
    }
    rc = target_open(t, url, true, false);
    if (!rc) {
        struct nfs_attr a;
        int st = nfs_create(t->c, &t->fh, t->name, mode, false, &f->fh, &a);
        if (!st && a.size) {
            struct nfs_setattr sa = { .set_size = true, .size = 0 };
            st = nfs_setattr(t->c, &f->fh, &sa, NULL);
        }
        if (st)
            rc = fail(url, st);
    }
    free(u2);
    return rc;
}

static int put_from_local(const char *local, const char *url)
{
    int fd = open(local, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail_errno(local);
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        int rc = S_ISREG(sb.st_mode) ? fail_errno(local) : fail(local, -EINVAL);
        close(fd);
        return rc;
    }
    char *tmp = strdup(local);
    struct target t;
    struct nfs_file f;
    int rc = tmp ? open_dest(&t, url, basename(tmp), &f, sb.st_mode & 0777) : fail(local, -ENOMEM);
    free(tmp);
    if (!rc) {
        struct progress p;
        progress_init(&p, (uint64_t)sb.st_size);
        struct nfs_xfer_opts o = { .window = opt_window, .progress = progress_cb, .progress_arg = &p };
        int st = nfs_write_range(t.c, &f.fh, 0, (uint64_t)sb.st_size, fd_source, &fd, &o);
        progress_end(&p, st ? 0 : (uint64_t)sb.st_size);
        if (st)
            rc = fail(url, st);
    }
    if (t.c)
        target_close(&t);
    close(fd);
    return rc;
}

/* NFS -> NFS, through this host: batches of BATCH bytes read pipelined, then written
 * pipelined. (Later: server-side COPY.) */
#define BATCH (32u << 20)
struct nfs_copy {
    struct nfs_client *dc;
    struct nfs_fh dfh;
    uint8_t *buf;
    size_t fill;
    uint64_t base; /* file offset of buf[0] */
    struct progress *p;
};

static int mem_source(void *arg, uint64_t off, void *data, size_t len)
{
    struct nfs_copy *k = arg;
    memcpy(data, k->buf + (off - k->base), len);
    return 0;
}

static int copy_flush(struct nfs_copy *k)
{
    if (!k->fill)
        return 0;
    int st = nfs_write_range(k->dc, &k->dfh, k->base, k->fill, mem_source, k, NULL);
    k->base += k->fill;
    k->fill = 0;
    progress_draw(k->p, k->base, false);
    return st;
}

static int copy_sink(void *arg, uint64_t off, const void *data, size_t len)
{
    struct nfs_copy *k = arg;
    while (len) {
        size_t n = BATCH - k->fill < len ? BATCH - k->fill : len;
        memcpy(k->buf + k->fill, data, n);
        k->fill += n;
        data = (const uint8_t *)data + n;
        len -= n;
        int st = k->fill == BATCH ? copy_flush(k) : 0;
        if (st)
            return st;
    }
    return 0;
}

static int copy_nfs_nfs(const char *src, const char *dst)
{
    struct target s, d = { 0 };
    struct nfs_file f;
    int rc = target_open(&s, src, false, true);
    if (!rc && s.attr.type != NFS_REG) {
        fprintf(stderr, "peernfs: cp: %s: not a regular file\n", src);
        rc = EXIT_FAIL;
    }
    if (!rc) {
        const char *rest = nfs_client_url_rest(s.c), *slash = strrchr(rest, '/');
        rc = open_dest(&d, dst, slash ? slash + 1 : rest, &f, s.attr.mode);
    }
    if (!rc) {
        struct progress p;
        progress_init(&p, s.attr.size);
        struct nfs_copy k = { .dc = d.c, .dfh = f.fh, .buf = malloc(BATCH), .p = &p };
        int st = k.buf ? nfs_read_range(s.c, &s.fh, 0, s.attr.size, copy_sink, &k, NULL, NULL)
                       : -ENOMEM;
        if (!st)
            st = copy_flush(&k);
        progress_end(&p, k.base);
        free(k.buf);
        if (st)
            rc = fail(dst, st);
    }
    target_close(&s);
    target_close(&d);
    return rc;
}

static int cmd_cp(const char *src, const char *dst)
{
    bool sn = nfs_url_is_nfs(src), dn = nfs_url_is_nfs(dst);
    if (sn && dn)
        return copy_nfs_nfs(src, dst);
    if (sn)
        return get_to_local(src, dst);
    if (dn)
        return put_from_local(src, dst);
    return usage_error("cp: one of SRC and DST must be an nfs:// URL");
}

static int cmd_mkdir(const char *url)
{
    struct target t;
    int rc = target_open(&t, url, true, false);
    if (!rc) {
        int st = nfs_mkdir(t.c, &t.fh, t.name, 0755, NULL, NULL);
        if (st)
            rc = fail(url, st);
    }
    target_close(&t);
    return rc;
}

/* ---- rm -r ---- */

/* A directory being emptied: its entries' REMOVEs are all issued at once (the library's
 * asynchronous calls keep many on the wire), subdirectories are emptied depth first
 * meanwhile, and the directory goes when its last REMOVE has completed. */
struct rm_dir {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pending;
    int status;        /* the first failure below this directory */
    const char *path;  /* for messages */
};

struct rm_entry {
    struct rm_entry *next;
    bool is_dir;
    char name[];
};

struct rm_call {
    struct rm_dir *d;
    char name[];
};

static void rm_failed(struct rm_dir *d, const char *name, int st)
{
    fprintf(stderr, "peernfs: rm: %s/%s: %s\n", d->path, name, nfs_client_strerror(st));
    if (!d->status)
        d->status = st;
}

static void rm_removed(void *arg, int status, const struct nfs_op_result *res)
{
    (void)res;
    struct rm_call *call = arg;
    struct rm_dir *d = call->d;
    pthread_mutex_lock(&d->mu);
    if (status)
        rm_failed(d, call->name, status);
    d->pending--;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    free(call);
}

static int rm_collect(void *arg, const struct nfs_dirent *e)
{
    struct rm_entry **list = arg;
    size_t n = strlen(e->name) + 1;
    struct rm_entry *r = malloc(sizeof(*r) + n);
    if (!r)
        return -ENOMEM;
    memcpy(r->name, e->name, n);
    /* without attributes in the listing, a failing REMOVE (NFS3ERR_ISDIR / NFS4ERR_ISDIR
     * or EXIST/NOTEMPTY) would not tell; READDIRPLUS gives them on every server here */
    r->is_dir = e->attr && e->attr->type == NFS_DIR;
    r->next = *list;
    *list = r;
    return 0;
}

static int rm_tree(struct nfs_client *c, const struct nfs_fh *dir, const char *path);

/* Remove one entry of d: a REMOVE in flight, or (a directory) its tree, then RMDIR. */
static void rm_entry(struct nfs_client *c, const struct nfs_fh *dir, struct rm_dir *d,
                     const struct rm_entry *e)
{
    if (e->is_dir) {
        struct nfs_fh sub;
        size_t len = strlen(d->path) + strlen(e->name) + 2;
        char *subpath = malloc(len);
        int st = subpath ? nfs_lookup(c, dir, e->name, &sub, NULL) : -ENOMEM;
        if (!st) {
            snprintf(subpath, len, "%s/%s", d->path, e->name);
            st = rm_tree(c, &sub, subpath);
            if (!st)
                st = nfs_rmdir(c, dir, e->name);
        }
        free(subpath);
        if (st && st != -ECANCELED) {
            pthread_mutex_lock(&d->mu);
            rm_failed(d, e->name, st);
            pthread_mutex_unlock(&d->mu);
        }
        return;
    }
    size_t n = strlen(e->name) + 1;
    struct rm_call *call = malloc(sizeof(*call) + n);
    int st = call ? 0 : -ENOMEM;
    if (call) {
        call->d = d;
        memcpy(call->name, e->name, n);
        pthread_mutex_lock(&d->mu);
        d->pending++;
        pthread_mutex_unlock(&d->mu);
        st = nfs_remove_async(c, dir, e->name, rm_removed, call);
    }
    if (st) {
        free(call);
        pthread_mutex_lock(&d->mu);
        d->pending -= call != NULL;
        rm_failed(d, e->name, st);
        pthread_mutex_unlock(&d->mu);
    }
}

/* Empty the directory dir (path names it in messages): 0, or the first failure, which
 * has been reported (-ECANCELED then, so that callers above do not report it again). */
static int rm_tree(struct nfs_client *c, const struct nfs_fh *dir, const char *path)
{
    struct rm_entry *list = NULL;
    int st = nfs_readdir(c, dir, true, rm_collect, &list);
    struct rm_dir d = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, path };
    if (st)
        rm_failed(&d, ".", st);
    for (struct rm_entry *e = list; e && !st; e = e->next)
        rm_entry(c, dir, &d, e);
    pthread_mutex_lock(&d.mu);
    while (d.pending > 0)
        pthread_cond_wait(&d.cv, &d.mu);
    pthread_mutex_unlock(&d.mu);
    while (list) {
        struct rm_entry *e = list;
        list = e->next;
        free(e);
    }
    pthread_mutex_destroy(&d.mu);
    pthread_cond_destroy(&d.cv);
    return d.status ? -ECANCELED : 0;
}

static int cmd_rm(const char *url)
{
    struct target t;
    int rc = target_open(&t, url, true, false);
    if (!rc) {
        struct nfs_fh fh;
        struct nfs_attr a;
        int st = nfs_lookup(t.c, &t.fh, t.name, &fh, &a);
        if (!st && a.type == NFS_DIR && opt_recursive)
            st = rm_tree(t.c, &fh, url);
        if (!st)
            st = a.type == NFS_DIR ? nfs_rmdir(t.c, &t.fh, t.name) : nfs_remove(t.c, &t.fh, t.name);
        if (st == -ECANCELED)
            rc = EXIT_FAIL; /* said already */
        else if (st)
            rc = fail(url, st);
    }
    target_close(&t);
    return rc;
}

static int cmd_mv_ln(const char *src, const char *dst, bool link)
{
    struct target s, d;
    memset(&d, 0, sizeof(d));
    int rc;
    if (link && opt_symbolic) {
        rc = target_open(&d, dst, true, false);
        int st = rc ? 0 : nfs_symlink(d.c, &d.fh, d.name, src, NULL);
        if (st)
            rc = fail(dst, st);
        target_close(&d);
        return rc;
    }
    if (!nfs_url_is_nfs(src) || !nfs_url_is_nfs(dst))
        return usage_error("%s: both arguments must be nfs:// URLs", link ? "ln" : "mv");
    rc = target_open(&s, src, !link, false);
    if (!rc)
        rc = target_open(&d, dst, true, false);
    if (!rc) {
        /* handles are the server's: a directory handle from the second connection is good on
         * the first when both name the same server (else the server says XDEV / STALE) */
        int st = link ? nfs_link(s.c, &s.fh, &d.fh, d.name)
                      : nfs_rename(s.c, &s.fh, s.name, &d.fh, d.name);
        if (st)
            rc = fail(dst, st);
    }
    target_close(&s);
    target_close(&d);
    return rc;
}

static int cmd_df(const char *url)
{
    struct target t;
    int rc = target_open(&t, url, false, false);
    if (!rc) {
        struct nfs_fsstat fs;
        int st = nfs_fsstat(t.c, &t.fh, &fs);
        if (st) {
            rc = fail(url, st);
        } else {
            uint64_t used = fs.total_bytes - fs.free_bytes;
            uint64_t denom = used + fs.avail_bytes;
            printf("%-12s %14s %14s %14s %5s %10s %10s\n", "Filesystem", "1K-blocks", "Used",
                   "Available", "Use%", "Inodes", "IFree");
            printf("%-12s %14llu %14llu %14llu %4.0f%% %10llu %10llu\n", "nfs",
                   (unsigned long long)(fs.total_bytes / 1024), (unsigned long long)(used / 1024),
                   (unsigned long long)(fs.avail_bytes / 1024),
                   denom ? 100.0 * used / denom : 0.0, (unsigned long long)fs.total_files,
                   (unsigned long long)fs.free_files);
        }
    }
    target_close(&t);
    return rc;
}

/* ---- lock ---- */

static volatile sig_atomic_t lock_stop;
static void lock_signal(int sig) { (void)sig; lock_stop = 1; }

static bool parse_u64(const char *s, uint64_t *v)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 0);
    if (errno || end == s || *end || *s == '-')
        return false;
    *v = x;
    return true;
}

/* lock [options] URL [-- CMD...]: argv[0] is "lock" (getopt restarts from there). */
static int cmd_lock(int argc, char **argv)
{
    static const struct option lopts[] = {
        { "read", no_argument, NULL, 'r' },   { "write", no_argument, NULL, 'W' },
        { "wait", no_argument, NULL, 'a' },   { "range", required_argument, NULL, 'R' },
        { "hold", required_argument, NULL, 'H' }, { "stats", no_argument, NULL, 'S' },
        { "help", no_argument, NULL, 'h' },   { NULL, 0, NULL, 0 },
    };
    bool write = true, wait = false, stats = false;
    uint64_t off = 0, len = 0, hold = 0;
    bool have_hold = false;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "+", lopts, NULL)) != -1) {
        switch (ch) {
        case 'r': write = false; break;
        case 'W': write = true; break;
        case 'a': wait = true; break;
        case 'S': stats = true; break;
        case 'R': {
            char *colon = strchr(optarg, ':');
            if (!colon)
                return usage_error("bad --range %s (START:LEN, LEN 0 = to the end)", optarg);
            *colon = 0;
            if (!parse_u64(optarg, &off) || !parse_u64(colon + 1, &len))
                return usage_error("bad --range (START:LEN)");
            break;
        }
        case 'H':
            if (!parse_u64(optarg, &hold))
                return usage_error("bad --hold %s (seconds)", optarg);
            have_hold = true;
            break;
        case 'h': fputs(usage_text, stdout); return EXIT_OK;
        default: return usage_error("lock: bad option");
        }
    }
    if (optind >= argc)
        return usage_error("lock: missing URL");
    const char *url = argv[optind++];
    if (!nfs_url_is_nfs(url))
        return usage_error("lock: not an nfs:// URL: %s", url);
    char **cmd = NULL;
    if (optind < argc) {
        if (strcmp(argv[optind], "--") || optind + 1 >= argc)
            return usage_error("lock: a command goes after --");
        cmd = argv + optind + 1;
    }
    struct target t;
    int rc = target_open(&t, url, false, false);
    if (rc) {
        target_close(&t);
        return rc;
    }
    struct nfs_file f;
    int st = nfs_open(t.c, nfs_client_url_rest(t.c), write ? NFS_O_WRONLY : NFS_O_RDONLY, 0, &f);
    if (st) {
        target_close(&t);
        return fail(url, st);
    }
    struct sigaction sa = { .sa_handler = lock_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    st = nfs_lock(t.c, &f, write ? NFS_LOCK_WRITE : NFS_LOCK_READ, off, len, wait);
    if (st == -EAGAIN) {
        struct nfs_lock_conflict cf;
        if (nfs_testlock(t.c, &f, write ? NFS_LOCK_WRITE : NFS_LOCK_READ, off, len, &cf) == -EAGAIN)
            fprintf(stderr, "peernfs: lock: %s: held by someone else (%s lock, %llu:%llu)\n", url,
                    cf.type == NFS_LOCK_WRITE ? "write" : "read", (unsigned long long)cf.off,
                    (unsigned long long)cf.len);
        else
            fprintf(stderr, "peernfs: lock: %s: held by someone else\n", url);
        rc = EXIT_LOCKED;
    } else if (st) {
        rc = fail(url, st);
    } else if (cmd) {
        pid_t pid = fork();
        if (pid == 0) {
            signal(SIGINT, SIG_DFL);
            signal(SIGTERM, SIG_DFL);
            execvp(cmd[0], cmd);
            fprintf(stderr, "peernfs: lock: %s: %s\n", cmd[0], strerror(errno));
            _exit(127);
        }
        int ws = 0;
        if (pid < 0)
            rc = fail_errno("fork");
        else {
            while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
                ;
            rc = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
        }
    } else {
        printf("locked\n");
        fflush(stdout);
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        while (!lock_stop) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (have_hold && (uint64_t)(now.tv_sec - start.tv_sec) >= hold)
                break;
            usleep(50 * 1000);
        }
    }
    if (!st) {
        int ust = nfs_unlock(t.c, &f, off, len);
        if (ust && rc == EXIT_OK)
            rc = fail(url, ust);
    }
    nfs_close(t.c, &f);
    if (stats) {
        struct nfs_client_stats cs;
        nfs_client_get_stats(t.c, &cs);
        fprintf(stderr, "peernfs: lock: delegations %llu recalls %llu delegreturns %llu "
                        "callbacks %llu renewals %llu delay-retries %llu reconnects %llu "
                        "recoveries %llu reclaims %llu lost %llu\n",
                (unsigned long long)cs.delegations, (unsigned long long)cs.recalls,
                (unsigned long long)cs.delegreturns, (unsigned long long)cs.callbacks,
                (unsigned long long)cs.renewals, (unsigned long long)cs.delay_retries,
                (unsigned long long)cs.reconnects, (unsigned long long)cs.recoveries,
                (unsigned long long)cs.reclaims, (unsigned long long)cs.lost);
    }
    target_close(&t);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "window", required_argument, NULL, 'w' },
        { "quiet", no_argument, NULL, 'q' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        { "long", no_argument, NULL, 'l' },
        { "symbolic", no_argument, NULL, 's' },
        { "recursive", no_argument, NULL, 'r' },
        { NULL, 0, NULL, 0 },
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "+w:qvhlsr", longopts, NULL)) != -1) {
        switch (ch) {
        case 'v': log_init("peernfs", LOG_LVL_INFO, false); break;
        case 'w': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 64)
                return usage_error("bad --window %s (1..64)", optarg);
            opt_window = (int)v;
            break;
        }
        case 'q': opt_quiet = true; break;
        case 'l': opt_long = true; break;
        case 's': opt_symbolic = true; break;
        case 'r': opt_recursive = true; break;
        case 'h': fputs(usage_text, stdout); return EXIT_OK;
        default: return usage_error("bad option");
        }
    }
    if (optind >= argc)
        return usage_error("missing command");
    cmd_name = argv[optind++];
    if (!strcmp(cmd_name, "lock"))
        return cmd_lock(argc - optind + 1, argv + optind - 1);
    /* command options (ls -l, ln -s) may follow the command too */
    while ((ch = getopt_long(argc, argv, "+w:qhlsr", longopts, NULL)) != -1) {
        switch (ch) {
        case 'l': opt_long = true; break;
        case 's': opt_symbolic = true; break;
        case 'r': opt_recursive = true; break;
        case 'q': opt_quiet = true; break;
        case 'w': opt_window = atoi(optarg); if (opt_window < 1 || opt_window > 64)
                      return usage_error("bad --window %s (1..64)", optarg);
                  break;
        case 'h': fputs(usage_text, stdout); return EXIT_OK;
        default: return usage_error("bad option");
        }
    }
    int n = argc - optind;
    char **a = argv + optind;
    static const struct { const char *name; int min, max; } cmds[] = {
        { "ls", 1, 1 }, { "stat", 1, 1 }, { "cat", 1, 1 }, { "get", 1, 2 }, { "put", 2, 2 },
        { "cp", 2, 2 }, { "mkdir", 1, 1 }, { "rm", 1, 1 }, { "mv", 2, 2 }, { "ln", 2, 2 },
        { "df", 1, 1 },
    };
    size_t i;
    for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (!strcmp(cmds[i].name, cmd_name))
            break;
    if (i == sizeof(cmds) / sizeof(cmds[0]))
        return usage_error("unknown command '%s'", cmd_name);
    if (n < cmds[i].min || n > cmds[i].max)
        return usage_error("%s: wrong number of arguments", cmd_name);
    bool src_local_ok = !strcmp(cmd_name, "put") || !strcmp(cmd_name, "cp") ||
                        (!strcmp(cmd_name, "ln") && opt_symbolic);
    bool dst_local_ok = !strcmp(cmd_name, "get") || !strcmp(cmd_name, "cp");
    if (!src_local_ok && !nfs_url_is_nfs(a[0]))
        return usage_error("%s: not an nfs:// URL: %s", cmd_name, a[0]);
    if (n == 2 && !dst_local_ok && !nfs_url_is_nfs(a[1]))
        return usage_error("%s: not an nfs:// URL: %s", cmd_name, a[1]);

    if (!strcmp(cmd_name, "ls")) return cmd_ls(a[0]);
    if (!strcmp(cmd_name, "stat")) return cmd_stat(a[0]);
    if (!strcmp(cmd_name, "cat")) return cmd_cat(a[0]);
    if (!strcmp(cmd_name, "get")) return get_to_local(a[0], n == 2 ? a[1] : NULL);
    if (!strcmp(cmd_name, "put")) return put_from_local(a[0], a[1]);
    if (!strcmp(cmd_name, "cp")) return cmd_cp(a[0], a[1]);
    if (!strcmp(cmd_name, "mkdir")) return cmd_mkdir(a[0]);
    if (!strcmp(cmd_name, "rm")) return cmd_rm(a[0]);
    if (!strcmp(cmd_name, "mv")) return cmd_mv_ln(a[0], a[1], false);
    if (!strcmp(cmd_name, "ln")) return cmd_mv_ln(a[0], a[1], true);
    return cmd_df(a[0]);
}
