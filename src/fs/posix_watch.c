/*
 * The open watcher: see posix_watch.h.
 *
 * Threads: watches are created by request threads (pxw_begin) and freed only by the
 * watcher thread (the sweep), so the watcher may use a watch outside the table lock;
 * everything else about a watch (pending, held opens, its cb and key) is under the table
 * lock. The watcher calls the protocol layer (fs_watch_cb.held) holding cb_mu, which
 * pxw_forget takes too: once it returns, a forgotten cb is never called again.
 */
#include "fs/posix_watch.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define PXW_BUCKETS 1024u

struct pxw_held {
    int fd;        /* the event's fd: names the open in the answer */
    pid_t pid;
    uint64_t since_ms;
};

struct fs_watch {
    struct fs_watch *next; /* bucket chain */
    dev_t dev;
    ino_t ino;
    int path_fd;           /* O_PATH: names the inode when the mark is removed */
    unsigned pending;      /* pxw_begin calls not yet ended */
    const struct fs_watch_cb *cb; /* NULL: forgotten (pxw_forget), never delegated */
    uint8_t key[FS_WATCH_KEY_MAX];
    size_t keylen;
    struct pxw_held *held;
    unsigned nheld, held_cap;
    /* how the change watch's events name the inode (0 bytes: not watched for changes) */
    __kernel_fsid_t fsid;
    union {
        struct file_handle fh;
        unsigned char room[sizeof(struct file_handle) + MAX_HANDLE_SZ];
    } handle;
};

static struct {
    pthread_once_t once;
    bool ok;
    int fan_fd, wake_fd;
    int change_fd; /* FAN_CLASS_NOTIF | FAN_REPORT_FID group: links, renames, attributes */
    pid_t self;
    pthread_mutex_t lock;
    pthread_mutex_t cb_mu; /* held across fs_watch_cb.held calls */
    struct fs_watch *buckets[PXW_BUCKETS];
    unsigned count, total_held;
    struct fs_watch **scratch; /* the watcher's snapshot of watches (PXW_MAX_WATCHES) */
} pxw = {.once = PTHREAD_ONCE_INIT,
         .lock = PTHREAD_MUTEX_INITIALIZER,
         .cb_mu = PTHREAD_MUTEX_INITIALIZER,
         .fan_fd = -1,
         .wake_fd = -1,
         .change_fd = -1};

static uint64_t pxw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static unsigned pxw_bucket(dev_t dev, ino_t ino)
{
    uint64_t h = ((uint64_t)ino * 0x9e3779b97f4a7c15ull) ^ (uint64_t)dev;
    return (unsigned)(h >> 32) & (PXW_BUCKETS - 1);
}

static struct fs_watch *pxw_find_locked(dev_t dev, ino_t ino)
{
    for (struct fs_watch *w = pxw.buckets[pxw_bucket(dev, ino)]; w; w = w->next)
        if (w->dev == dev && w->ino == ino)
            return w;
    return NULL;
}

/*
 * Answer the open whose event came with `fd`. The fd is closed FIRST: it is an open file
 * description of the file, and the opener (often our own request thread, about to
 * probe with a lease that counts the file's openers) runs on as soon as it is answered.
 * The kernel finds the event by the number in the answer, the oldest first, so a number
 * reused by a later event meanwhile still names this one.
 */
static void pxw_answer(int fd, uint32_t response)
{
    close(fd);
    struct fanotify_response r = {.fd = fd, .response = response};
    if (write(pxw.fan_fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
        log_warn("open watcher: answering an open failed: %s", strerror(errno));
}

/* The mark, by the magic link of the O_PATH fd: fanotify_mark takes no O_PATH dirfd. */
static int pxw_mark_group(int group_fd, uint64_t mask, int path_fd, unsigned flags)
{
    char link[32];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", path_fd);
    return fanotify_mark(group_fd, flags, mask, AT_FDCWD, link) < 0 ? -errno : 0;
}

static int pxw_mark(int path_fd, unsigned flags)
{
    return pxw_mark_group(pxw.fan_fd, FAN_OPEN_PERM, path_fd, flags);
}

/*
 * Changes a process makes without opening the file: link, unlink, rename (of it or over
 * it) and chmod/chown/utimes. The kernel tells them after the fact (a notification group:
 * permission events cannot name inodes by handle), so the delegation is recalled then;
 * the holder learns of the change at its next GETATTR instead of trusting its cache for
 * the rest of the delegation's life. Unlink and rename-over show as FAN_ATTRIB (the link
 * count changed).
 */
#define PXW_CHANGE_EVENTS (FAN_ATTRIB | FAN_MOVE_SELF | FAN_DELETE_SELF)

static void pxw_change_watch_add(struct fs_watch *w, int path_fd)
{
    struct statfs sfs;
    int mount_id;
    w->handle.fh.handle_bytes = MAX_HANDLE_SZ;
    if (pxw.change_fd < 0 || fstatfs(path_fd, &sfs) < 0 ||
        name_to_handle_at(path_fd, "", &w->handle.fh, &mount_id, AT_EMPTY_PATH) < 0 ||
        pxw_mark_group(pxw.change_fd, PXW_CHANGE_EVENTS, path_fd, FAN_MARK_ADD) < 0) {
        w->handle.fh.handle_bytes = 0;
        return;
    }
    memcpy(&w->fsid, &sfs.f_fsid, sizeof(w->fsid));
}

static void pxw_change_watch_remove(struct fs_watch *w)
{
    if (w->handle.fh.handle_bytes)
        pxw_mark_group(pxw.change_fd, PXW_CHANGE_EVENTS, w->path_fd, FAN_MARK_REMOVE);
}

/* ---- the watcher thread ---- */

static void pxw_hold(const struct fanotify_event_metadata *m)
{
    struct stat st;
    if (fstat(m->fd, &st) < 0) {
        pxw_answer(m->fd, FAN_ALLOW);
        return;
    }
    pthread_mutex_lock(&pxw.lock);
    struct fs_watch *w = pxw_find_locked(st.st_dev, st.st_ino);
    if (w && pxw.total_held < PXW_MAX_HELD && w->nheld == w->held_cap) {
        unsigned cap = w->held_cap ? 2 * w->held_cap : 4;
        struct pxw_held *n = realloc(w->held, cap * sizeof(*n));
        if (n) {
            w->held = n;
            w->held_cap = cap;
        }
    }
    if (!w || w->nheld == w->held_cap || pxw.total_held >= PXW_MAX_HELD) {
        pthread_mutex_unlock(&pxw.lock);
        if (w)
            log_warn("open watcher: too many opens held; pid %d opens a delegated file at once", (int)m->pid);
        pxw_answer(m->fd, FAN_ALLOW);
        return;
    }
    w->held[w->nheld++] = (struct pxw_held){.fd = m->fd, .pid = m->pid, .since_ms = pxw_now_ms()};
    pxw.total_held++;
    pthread_mutex_unlock(&pxw.lock);
    log_info("open watcher: pid %d opens a delegated file (inode %llu): recalling first", (int)m->pid,
             (unsigned long long)st.st_ino);
}

static void pxw_read_events(void)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct fanotify_event_metadata))));
    for (;;) {
        ssize_t n = read(pxw.fan_fd, buf, sizeof(buf));
        if (n <= 0)
            return; /* EAGAIN: drained */
        const struct fanotify_event_metadata *m = (const void *)buf;
        for (; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
            if (m->fd < 0)
                continue;
            if (!(m->mask & FAN_OPEN_PERM))
                close(m->fd);
            else if (m->pid == pxw.self)
                pxw_answer(m->fd, FAN_ALLOW); /* the server's own open */
            else
                pxw_hold(m);
        }
    }
}

static struct fs_watch *pxw_find_by_handle_locked(const __kernel_fsid_t *fsid, const struct file_handle *fh)
{
    for (unsigned b = 0; b < PXW_BUCKETS; b++)
        for (struct fs_watch *w = pxw.buckets[b]; w; w = w->next)
            if (w->handle.fh.handle_bytes == fh->handle_bytes && w->handle.fh.handle_type == fh->handle_type &&
                memcmp(&w->fsid, fsid, sizeof(*fsid)) == 0 &&
                memcmp(w->handle.fh.f_handle, fh->f_handle, fh->handle_bytes) == 0)
                return w;
    return NULL;
}

static bool pxw_ask(struct fs_watch *w, bool recall);

/* Another process changed a watched inode: recall (no answer is owed: nothing waits).
 * `ev` holds one whole event, copied to aligned memory (FID events are not 8-aligned). */
static void pxw_changed(const unsigned char *ev, size_t len)
{
    struct fanotify_event_metadata m;
    struct fanotify_event_info_fid fid;
    struct {
        struct file_handle fh;
        unsigned char room[MAX_HANDLE_SZ];
    } h;
    memcpy(&m, ev, sizeof(m));
    if (m.pid == pxw.self || m.metadata_len < sizeof(m) || m.metadata_len > len ||
        len - m.metadata_len < sizeof(fid) + sizeof(h.fh))
        return; /* the server's own change, or not the record asked for */
    memcpy(&fid, ev + m.metadata_len, sizeof(fid));
    memcpy(&h.fh, ev + m.metadata_len + sizeof(fid), sizeof(h.fh));
    size_t room = len - m.metadata_len - sizeof(fid) - sizeof(h.fh);
    if (fid.hdr.info_type != FAN_EVENT_INFO_TYPE_FID || h.fh.handle_bytes > MAX_HANDLE_SZ ||
        h.fh.handle_bytes > room)
        return;
    memcpy(h.fh.f_handle, ev + m.metadata_len + sizeof(fid) + sizeof(h.fh), h.fh.handle_bytes);
    pthread_mutex_lock(&pxw.lock);
    struct fs_watch *w = pxw_find_by_handle_locked(&fid.fsid, &h.fh);
    pthread_mutex_unlock(&pxw.lock);
    /* w stays valid: only this thread frees watches */
    if (w && pxw_ask(w, true))
        log_info("open watcher: pid %d changed a delegated file (inode %llu): recalled", (int)m.pid,
                 (unsigned long long)w->ino);
}

static void pxw_read_change_events(void)
{
    unsigned char buf[4096];
    for (;;) {
        ssize_t n = read(pxw.change_fd, buf, sizeof(buf));
        if (n <= 0)
            return; /* EAGAIN: drained */
        size_t off = 0;
        while ((size_t)n - off >= sizeof(struct fanotify_event_metadata)) {
            uint32_t event_len;
            memcpy(&event_len, buf + off, sizeof(event_len)); /* the first field */
            if (event_len < sizeof(struct fanotify_event_metadata) || event_len > (size_t)n - off)
                break;
            pxw_changed(buf + off, event_len);
            off += event_len;
        }
    }
}

/* Answer w's held opens: all of them, or (expired_only) those held too long. */
static void pxw_release_locked(struct fs_watch *w, bool expired_only, uint64_t now)
{
    unsigned kept = 0;
    for (unsigned i = 0; i < w->nheld; i++) {
        struct pxw_held *h = &w->held[i];
        if (expired_only && now - h->since_ms < PXW_HOLD_MAX_MS) {
            w->held[kept++] = *h;
            continue;
        }
        if (expired_only)
            log_warn("open watcher: a delegation of inode %llu was not returned in %u ms; pid %d's open goes ahead",
                     (unsigned long long)w->ino, PXW_HOLD_MAX_MS, (int)h->pid);
        pxw_answer(h->fd, FAN_ALLOW);
        pxw.total_held--;
    }
    w->nheld = kept;
}

/* The watches with held opens (holding) or idle ones (for the sweep), into scratch. */
static unsigned pxw_snapshot(bool holding)
{
    unsigned n = 0;
    pthread_mutex_lock(&pxw.lock);
    for (unsigned b = 0; b < PXW_BUCKETS; b++)
        for (struct fs_watch *w = pxw.buckets[b]; w; w = w->next)
            if (holding ? w->nheld > 0 : (w->nheld == 0 && w->pending == 0))
                pxw.scratch[n++] = w;
    pthread_mutex_unlock(&pxw.lock);
    return n;
}

/* Is w's file still delegated (recall: someone wants it)? False once forgotten. */
static bool pxw_ask(struct fs_watch *w, bool recall)
{
    uint8_t key[FS_WATCH_KEY_MAX];
    pthread_mutex_lock(&pxw.cb_mu);
    pthread_mutex_lock(&pxw.lock);
    const struct fs_watch_cb *cb = w->cb;
    size_t keylen = w->keylen;
    memcpy(key, w->key, keylen);
    pthread_mutex_unlock(&pxw.lock);
    bool held = cb && cb->held(cb->ctx, key, keylen, recall);
    pthread_mutex_unlock(&pxw.cb_mu);
    return held;
}

static void pxw_serve_held(void)
{
    pthread_mutex_lock(&pxw.lock);
    bool holding = pxw.total_held > 0;
    pthread_mutex_unlock(&pxw.lock);
    if (!holding)
        return; /* the common case (the server's own opens): no table walk */
    unsigned n = pxw_snapshot(true);
    uint64_t now = pxw_now_ms();
    for (unsigned i = 0; i < n; i++) {
        struct fs_watch *w = pxw.scratch[i];
        bool delegated = pxw_ask(w, true);
        pthread_mutex_lock(&pxw.lock);
        pxw_release_locked(w, delegated || w->pending > 0, now);
        pthread_mutex_unlock(&pxw.lock);
    }
}

static void pxw_unlink_locked(struct fs_watch *w)
{
    struct fs_watch **pp = &pxw.buckets[pxw_bucket(w->dev, w->ino)];
    while (*pp != w)
        pp = &(*pp)->next;
    *pp = w->next;
    pxw.count--;
}

/* Drop the watches of files no longer delegated. */
static void pxw_sweep(void)
{
    unsigned n = pxw_snapshot(false);
    for (unsigned i = 0; i < n; i++) {
        struct fs_watch *w = pxw.scratch[i];
        if (pxw_ask(w, false))
            continue;
        pthread_mutex_lock(&pxw.lock);
        bool idle = w->nheld == 0 && w->pending == 0;
        if (idle)
            pxw_unlink_locked(w);
        pthread_mutex_unlock(&pxw.lock);
        if (!idle)
            continue;
        pxw_change_watch_remove(w);
        int err = pxw_mark(w->path_fd, FAN_MARK_REMOVE);
        if (err && err != -ENOENT)
            log_debug("open watcher: removing the mark of inode %llu: %s", (unsigned long long)w->ino,
                      strerror(-err));
        close(w->path_fd);
        free(w->held);
        free(w);
    }
}

static void *pxw_thread(void *arg)
{
    (void)arg;
    uint64_t last_sweep = pxw_now_ms();
    for (;;) {
        pthread_mutex_lock(&pxw.lock);
        bool holding = pxw.total_held > 0;
        pthread_mutex_unlock(&pxw.lock);
        struct pollfd p[3] = {{.fd = pxw.fan_fd, .events = POLLIN},
                              {.fd = pxw.wake_fd, .events = POLLIN},
                              {.fd = pxw.change_fd, .events = POLLIN}}; /* -1: ignored */
        if (poll(p, 3, holding ? (int)PXW_POLL_MS : (int)PXW_SWEEP_MS) < 0 && errno != EINTR)
            log_warn("open watcher: poll: %s", strerror(errno));
        uint64_t v;
        if (p[1].revents & POLLIN && read(pxw.wake_fd, &v, sizeof(v)) < 0)
            (void)v;
        pxw_read_events();
        if (p[2].revents & POLLIN)
            pxw_read_change_events();
        pxw_serve_held();
        uint64_t now = pxw_now_ms();
        if (now - last_sweep >= PXW_SWEEP_MS) {
            pxw_sweep();
            last_sweep = now;
        }
    }
    return NULL;
}

static void pxw_init(void)
{
    pxw.fan_fd = fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_QUEUE |
                                   FAN_UNLIMITED_MARKS,
                               O_RDONLY | O_LARGEFILE | O_CLOEXEC);
    if (pxw.fan_fd < 0) {
        log_notice("open watcher: fanotify unavailable (%s): no write delegations, and read delegations "
                   "are not recalled when a local process opens the file", strerror(errno));
        return;
    }
    pxw.change_fd = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_FID | FAN_CLOEXEC | FAN_NONBLOCK |
                                      FAN_UNLIMITED_QUEUE | FAN_UNLIMITED_MARKS,
                                  O_RDONLY | O_CLOEXEC);
    if (pxw.change_fd < 0)
        log_notice("open watcher: no change watch (%s): links, renames and chmod by local processes "
                   "do not recall delegations", strerror(errno));
    pxw.self = getpid(); /* before the thread reads it */
    pxw.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pxw.scratch = calloc(PXW_MAX_WATCHES, sizeof(*pxw.scratch));
    pthread_t t;
    if (pxw.wake_fd < 0 || !pxw.scratch || pthread_create(&t, NULL, pxw_thread, NULL) != 0) {
        log_warn("open watcher: cannot start");
        return;
    }
    pthread_detach(t);
    /* A lease taken to probe for other openers (posix.c) signals SIGIO when someone
     * opens the file meanwhile; its default action would end the process. */
    struct sigaction old, ign = {.sa_handler = SIG_IGN};
    if (sigaction(SIGIO, NULL, &old) == 0 && old.sa_handler == SIG_DFL)
        sigaction(SIGIO, &ign, NULL);
    pxw.ok = true;
}

/* ---- request threads ---- */

static int pxw_add_locked(int path_fd, const struct stat *st, const void *key, size_t keylen,
                          const struct fs_watch_cb *cb, struct fs_watch **out)
{
    if (pxw.count >= PXW_MAX_WATCHES)
        return -ENOSPC;
    struct fs_watch *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    int err = pxw_mark(path_fd, FAN_MARK_ADD);
    if (err) {
        free(w);
        return err == -EPERM || err == -EINVAL || err == -ENOSYS ? -EOPNOTSUPP : err;
    }
    w->dev = st->st_dev;
    w->ino = st->st_ino;
    w->path_fd = path_fd;
    pxw_change_watch_add(w, path_fd);
    w->cb = cb;
    memcpy(w->key, key, keylen);
    w->keylen = keylen;
    unsigned b = pxw_bucket(w->dev, w->ino);
    w->next = pxw.buckets[b];
    pxw.buckets[b] = w;
    pxw.count++;
    *out = w;
    return 0;
}

int pxw_begin(int path_fd, const struct stat *st, const void *key, size_t keylen,
              const struct fs_watch_cb *cb, struct fs_watch **out)
{
    pthread_once(&pxw.once, pxw_init);
    if (!pxw.ok || keylen > FS_WATCH_KEY_MAX) {
        close(path_fd);
        return -EOPNOTSUPP;
    }
    pthread_mutex_lock(&pxw.lock);
    struct fs_watch *w = pxw_find_locked(st->st_dev, st->st_ino);
    int err = 0;
    if (!w)
        err = pxw_add_locked(path_fd, st, key, keylen, cb, &w);
    else if (!w->cb) { /* forgotten, not swept yet: a new protocol layer takes it over */
        w->cb = cb;
        memcpy(w->key, key, keylen);
        w->keylen = keylen;
    } else if (w->cb != cb || w->keylen != keylen || memcmp(w->key, key, keylen) != 0)
        err = -EBUSY; /* the same inode through another export */
    if (!err) {
        if (w->path_fd != path_fd)
            close(path_fd);
        w->pending++;
        *out = w;
    } else {
        close(path_fd);
    }
    pthread_mutex_unlock(&pxw.lock);
    return err;
}

void pxw_end(struct fs_watch *w)
{
    pthread_mutex_lock(&pxw.lock);
    w->pending--;
    bool wake = w->pending == 0 && w->nheld > 0;
    pthread_mutex_unlock(&pxw.lock);
    if (wake) {
        uint64_t one = 1;
        if (write(pxw.wake_fd, &one, sizeof(one)) < 0)
            (void)one; /* the counter is saturated: a wake-up is pending anyway */
    }
}

void pxw_forget(const struct fs_watch_cb *cb)
{
    pthread_mutex_lock(&pxw.cb_mu); /* no held() call of cb is running or will start */
    pthread_mutex_lock(&pxw.lock);
    bool wake = false;
    for (unsigned b = 0; b < PXW_BUCKETS; b++)
        for (struct fs_watch *w = pxw.buckets[b]; w; w = w->next)
            if (w->cb == cb) {
                w->cb = NULL; /* the watcher lets its opens go and sweeps it */
                wake |= w->nheld > 0;
            }
    pthread_mutex_unlock(&pxw.lock);
    pthread_mutex_unlock(&pxw.cb_mu);
    uint64_t one = 1;
    if (wake && write(pxw.wake_fd, &one, sizeof(one)) < 0)
        (void)one; /* saturated: a wake-up is pending anyway */
}
