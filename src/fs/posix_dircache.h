/*
 * The posix backend's directory entry cache (private to src/fs/).
 *
 * For a directory handle, a snapshot of its entries as getdents64 gave them: name,
 * d_ino, d_type, the d_off cookie, and, filled in lazily, the entry's persistent handle.
 * A listing resumed at a cookie finds its place through an index (cookie -> position)
 * instead of lseek + getdents64, and name_to_handle_at runs once per name, not once per
 * listing. Entry attributes (READDIRPLUS) are cached too, under their own rules: see
 * "Entry attributes" below.
 *
 * Snapshots are filled lazily, one getdents64 buffer at a time, from the cookie of the
 * listing that made them (`base`) on, as listings reach their end; a snapshot made at
 * cookie 0 becomes the whole directory after one full listing.
 *
 * Validity. A snapshot records the directory's attributes (st_ino, st_size, st_nlink,
 * st_mtim, st_ctim) as they were before its first getdents64, and each listing that
 * wants to reuse it compares them with the directory's attributes now (the fstat of the
 * cached directory fd every listing does anyway). Every change of a directory's entries
 * sets its mtime and ctime to the current time, but the kernel takes that time from a
 * coarse clock (one tick, 1-10 ms, and whole seconds on some filesystems): two changes
 * within one tick can leave the times as they were. So a snapshot is reused only if the
 * directory's ctime was at least DC_TRUST_NS older than the moment before the fstat it
 * was made with: any later change then gets a ctime at least one tick newer, which the
 * comparison sees. A directory changed more recently is read afresh on every call (the
 * snapshot serves that call only), as before there was a cache. ctime, unlike mtime, is
 * not settable by users; a system clock stepped back could in theory reproduce an old
 * ctime to the nanosecond, and the size and link count would also have to match.
 *
 * A cached handle is used only while its snapshot is valid, so a name removed and made
 * again never maps to the handle of the object it named before; the caller still
 * checks that the name's attributes show the inode the snapshot saw.
 *
 * Memory and locking. Snapshots are found through a hash table with one lock per bucket
 * (no lock shared by all directories on the hot path) and are refcounted: the table
 * holds one reference while a snapshot is hashed, each listing one while it reads it,
 * so eviction never frees what a reader uses. Entries are appended in chunks that never
 * move; readers walk them without locks (a chunk's count is published with release
 * order after its entries are written), and only finding a cookie in the index and
 * appending take the snapshot's own fill lock. The cache is bounded by a byte budget and
 * a number of directories (process-wide, all exports together); CLOCK eviction (a
 * second chance for snapshots used since the hand last passed) runs when either is
 * exceeded, and a single snapshot larger than a quarter of the budget is dropped from
 * the table, so a huge directory is read a buffer at a time like an uncached one.
 *
 * Entry attributes. A READDIRPLUS listing used to fstatat every name (most of its CPU);
 * now an entry of a reusable (trusted) snapshot keeps the struct stat a listing got,
 * stamped with two generations read BEFORE that fstatat, and a later listing serves it
 * only while both are unchanged:
 *  - the filesystem's modification generation (dc_modgen: one counter per st_dev
 *    bucket, process-wide, so exports that overlap or share a filesystem see each
 *    other's changes), bumped by every modifying backend op (write, setattr, create,
 *    mkdir, symlink, mknod, remove, rename, link) after its system call, before it
 *    returns. Any change through the server invalidates every cached attribute of that
 *    filesystem: simple, one atomic add per op; a workload that writes as it lists
 *    just falls back to fstatat. This covers the server's own changes through fds
 *    opened by handle, which inotify may not report to the parent directory.
 *  - the generation of the snapshot's inotify watch on its directory (one process-wide
 *    inotify fd; watches shared, refcounted, by all snapshots of one directory; added
 *    on a snapshot's first READDIRPLUS, removed when its last snapshot is freed). Local
 *    processes: every change of a child's data or attributes (IN_MODIFY, IN_ATTRIB,
 *    IN_CLOSE_WRITE) and of the directory's names is queued by the kernel before the
 *    modifying system call returns, and each listing that may serve cached attributes
 *    first drains the inotify fd (non-blocking reads until EAGAIN, under one mutex),
 *    bumping the generation of each watch an event names. So a change that happened
 *    before the request (causally) is always seen. IN_Q_OVERFLOW bumps every watch;
 *    IN_IGNORED (directory gone, unmounted) kills the watch: its snapshots cache
 *    nothing more. No inotify fd or no watch (ENOSPC: the user's watch limit) means
 *    that snapshot caches no attributes: listings stay correct, just uncached.
 *  - only non-directories with st_nlink == 1 are cached (a hard link changed through
 *    another directory notifies only that directory; a subdirectory's own mtime and
 *    link count changes notify only a watch on the subdirectory). Directories,
 *    hard-linked files, "." and ".." always get a fresh fstatat.
 * The stat is published in the entry through a seqlock of atomic words (readers never
 * block, a torn copy is detected and treated as a miss; concurrent writers: first wins).
 * It lives in every entry (sizeof(struct stat) + 20 bytes; an entry is about 240 bytes
 * on x86-64 instead of 72), so the byte budget holds about a third as many entries as
 * before, and a directory above roughly 60,000 entries exceeds a quarter of the default
 * budget and is not kept (allocating the slots per chunk on the first READDIRPLUS would
 * win that back for plain READDIR).
 *
 * Accepted limits (changes a listing may not show until something else invalidates
 * the entry's cached attributes: a server-side modifying op on that filesystem, any
 * event in the directory, the directory changing). Ganesha, for comparison, sees no
 * local change at all.
 *  - writes through a shared mmap by local processes: no inotify event, and the
 *    kernel updates mtime/ctime lazily (at page fault / writeback) anyway;
 *  - atime: not tracked (IN_ACCESS is not watched: every read would flood the queue);
 *  - changes by other local processes through an fd opened by handle
 *    (open_by_handle_at, e.g. the kernel NFS server or another userspace server on the
 *    same filesystem): a disconnected dentry has no parent to notify;
 *  - a NEW hard link made by a local process from another directory to a file whose
 *    attributes are cached (measured on Linux 6.18: the link count change is reported
 *    only to watches on the file itself, the new name only to the other directory),
 *    and then changes made through that new name;
 *  - space usage (st_blocks) changed later by the filesystem on its own (delayed
 *    allocation or compression at writeback, deduplication), with no system call;
 *  - a mount made on a cached file's name (mounts make no inotify event): the listing
 *    keeps giving the underlying file's handle and attributes, as it would have before
 *    the mount.
 */
#ifndef PEERNFS_FS_POSIX_DIRCACHE_H
#define PEERNFS_FS_POSIX_DIRCACHE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "fs/fs.h"

/* How much older than "now" a directory's ctime must be for a snapshot to be reused. */
#define DC_TRUST_NS (20 * 1000 * 1000LL)
/* The same, for filesystems that keep whole seconds (2 s on FAT). */
#define DC_TRUST_COARSE_NS (2020 * 1000 * 1000LL)

#define DC_DEFAULT_BYTES ((size_t)64 << 20)
#define DC_DEFAULT_DIRS 4096u

/* struct stat as 64-bit words, then the modification and watch generations */
#define DC_ST_WORDS (sizeof(struct stat) / 8 + 2)
_Static_assert(sizeof(struct stat) % 8 == 0, "struct stat is not a whole number of words");

enum dc_fh_state { DC_FH_NONE = 0, DC_FH_BUSY = 1, DC_FH_SET = 2 };

struct dc_ent {
    const char *name;
    uint64_t ino;
    uint64_t cookie; /* d_off: the position after this entry */
    uint16_t namelen;
    uint8_t type;            /* DT_* */
    _Atomic uint8_t fh_state; /* enum dc_fh_state; fh is readable once DC_FH_SET */
    struct fs_fh fh;
    /* Cached attributes: a seqlock (0: never written, odd: being written) over the
     * struct stat's words and the two generations it was taken at. */
    atomic_uint st_seq;
    _Atomic uint64_t st_w[DC_ST_WORDS];
};

struct dc_chunk {
    _Atomic(struct dc_chunk *) next;
    atomic_uint n; /* entries written (release after writing them) */
    uint32_t cap;
    struct dc_ent ent[];
};

/* The directory attributes a snapshot is valid for. */
struct dc_attrs {
    uint64_t ino, size, nlink;
    struct timespec mtime, ctime;
};

struct dc_names;
struct dc_slot;
struct dc_watch;

enum dc_watch_state { DC_WATCH_NONE = 0, DC_WATCH_SET, DC_WATCH_FAILED };

struct dc_dir {
    struct dc_dir *next; /* bucket chain (bucket lock) */
    atomic_uint refs;
    atomic_bool referenced; /* CLOCK bit */
    atomic_bool stale;      /* seen not to match the directory any more */
    atomic_bool complete;   /* the last entry has been read */
    bool hashed;            /* bucket lock */
    bool trusted;           /* may be reused by later listings (see above) */
    uint64_t hash;
    uintptr_t owner; /* the export */
    struct fs_fh fh;
    struct dc_attrs attrs;
    uint64_t base; /* the cookie the first entry follows */
    struct dc_chunk *first;
    size_t accounted; /* bytes counted in the cache's total (bucket lock) */
    /* inotify watch of the directory (the inotify lock) */
    uint8_t watch_state; /* enum dc_watch_state */
    struct dc_watch *watch;

    pthread_mutex_t fill_lock; /* the fields below */
    struct dc_chunk *last;
    struct dc_chunk **chunkv;
    uint32_t nchunks, chunkv_cap;
    uint32_t nentries;
    uint64_t last_cookie;
    struct dc_slot *index; /* cookie -> (chunk, offset), open addressing */
    uint32_t index_mask;
    struct dc_names *names;
    size_t bytes; /* everything this snapshot allocated */
};

/* A reader's position: the next entry is pos.c->ent[pos.i] (once written). */
struct dc_pos {
    struct dc_chunk *c;
    uint32_t i;
};

/* Where a snapshot reads more entries from: the directory's fd and the lock that
 * serialises lseek + getdents64 on its shared open file description. */
struct dc_source {
    int fd;
    pthread_mutex_t *pos_lock;
};

/*
 * The snapshot to list directory `fh` (of export `owner`) from `cookie`, with a reference
 * (dc_put it), and the position of the entry after `cookie`. `st`: the directory's
 * attributes now; `t0`: CLOCK_REALTIME read before they were taken. Reuses the cached
 * snapshot when valid and holding the cookie; otherwise makes a new one, which is cached
 * when it may be reused. -ENOMEM only.
 */
int dc_open(uintptr_t owner, const struct fs_fh *fh, uint64_t hash, const struct stat *st,
            const struct timespec *t0, uint64_t cookie, struct dc_dir **out, struct dc_pos *pos);

/* The entry at *pos, advancing it, reading more of the directory when needed. NULL at
 * the end of the directory (*err 0) or on an error (*err < 0). */
struct dc_ent *dc_next(struct dc_dir *d, struct dc_pos *pos, const struct dc_source *src,
                             int *err);

void dc_put(struct dc_dir *d);

/* The entry's handle if known, else NULL. */
const struct fs_fh *dc_ent_fh(const struct dc_ent *e);
/* Remember the entry's handle (first writer wins). */
void dc_ent_set_fh(struct dc_ent *e, const struct fs_fh *fh);

/* ---- entry attributes (see "Entry attributes" above) ---- */

/* The modification generation of the filesystem `dev` (stable address). */
_Atomic uint64_t *dc_modgen(dev_t dev);

/* A modifying op on that filesystem is done (call after its system call). */
static inline void dc_modified(_Atomic uint64_t *gen)
{
    atomic_fetch_add_explicit(gen, 1, memory_order_release);
}

/* What one listing may serve and store: off when the snapshot is not reusable or has
 * no inotify watch. */
struct dc_attr_ctx {
    bool on;
    uint64_t mgen, wgen;
    uint64_t hits, stores; /* this listing's, reported by dc_attrs_end */
};

/* Before a READDIRPLUS listing of snapshot d (directory fd `dirfd`, modification
 * generation `mgen`) serves or stores any attributes: adds the watch if d has none
 * yet, drains the inotify queue, reads both generations. */
void dc_attrs_begin(struct dc_dir *d, int dirfd, _Atomic uint64_t *mgen, struct dc_attr_ctx *c);
/* The entry's cached attributes into *st, if valid for this listing. */
bool dc_attrs_get(struct dc_ent *e, struct dc_attr_ctx *c, struct stat *st);
/* Cache `st` (fstatat'd after dc_attrs_begin) if the rules allow it. */
void dc_attrs_put(struct dc_ent *e, struct dc_attr_ctx *c, const struct stat *st);
void dc_attrs_end(const struct dc_attr_ctx *c);

struct dc_attr_stats {
    uint64_t hits;     /* entries served cached attributes */
    uint64_t stores;   /* entries whose fstatat result was cached */
    uint64_t events;   /* inotify events read */
    uint64_t overflows;
    unsigned watches;        /* inotify watches held */
    uint64_t watch_failures; /* snapshots that got no watch */
};
void dc_get_attr_stats(struct dc_attr_stats *s);

/* Tests: make every inotify_add_watch fail (as at the watch limit). */
void dc_test_fail_watches(bool fail);

/* Drop every snapshot of `owner` (the export is closing). */
void dc_forget_owner(uintptr_t owner);

/* Budget (0 bytes: cache nothing) and counters; see fs_posix_set_dircache_limit. */
void dc_set_limit(size_t max_bytes, unsigned max_dirs);
void dc_get_stats(struct fs_posix_dircache_stats *s);

#endif
