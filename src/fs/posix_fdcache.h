/*
 * The posix backend's open file cache (private to src/fs/): backend handle -> open fd,
 * so that an operation on a handle costs no open_by_handle_at.
 *
 * A hash table with one lock per bucket (no lock shared by all operations), entries
 * refcounted: the table holds one reference while an entry is hashed and each user
 * holds one while it uses the fd, so an entry can be evicted or invalidated while in use
 * and its fd is closed by whoever drops the last reference. The size is bounded by a
 * soft limit; eviction is CLOCK (a second chance for entries used since the hand last
 * passed), never of entries in use.
 *
 * An entry's fd has an access level: an O_PATH fd (enough for fstat, *at calls relative
 * to a directory, and the AT_EMPTY_PATH calls), an fd open for reading, or one open for
 * reading and writing. A user who needs more than the cached level opens a new fd and
 * fdc_add replaces the entry; fds are never shared-mutated. Files are not opened for
 * writing until someone writes: a cached writable fd would make local exec(2) of the
 * file fail with ETXTBSY.
 */
#ifndef PEERNFS_FS_POSIX_FDCACHE_H
#define PEERNFS_FS_POSIX_FDCACHE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "fs/fs.h"

enum fdc_level { FDC_PATH = 0, FDC_READ = 1, FDC_WRITE = 2 };

struct fdc_entry {
    struct fdc_entry *next; /* bucket chain (bucket lock) */
    atomic_uint refs;
    atomic_bool referenced; /* CLOCK bit: used since the hand last passed */
    bool hashed;            /* bucket lock */
    bool pinned;            /* never evicted (the export root) */
    uint8_t level;          /* enum fdc_level */
    mode_t fmt;             /* S_IFMT bits of the object */
    int fd;
    uint64_t hash;
    /* Directories: serialises lseek + getdents64 on the shared open file description. */
    pthread_mutex_t pos_lock;
    struct fs_fh fh;
};

struct fdc_bucket {
    pthread_mutex_t lock;
    struct fdc_entry *head;
} __attribute__((aligned(64)));

struct fdcache {
    struct fdc_bucket *buckets;
    size_t mask;
    unsigned max;
    atomic_uint count;
    atomic_size_t hand;
};

int fdc_init(struct fdcache *c, unsigned max_entries);
/* Close everything; no entry may be in use. */
void fdc_destroy(struct fdcache *c);

uint64_t fdc_hash(const struct fs_fh *fh);

/* The cached entry for fh with a reference taken, or NULL. */
struct fdc_entry *fdc_get(struct fdcache *c, const struct fs_fh *fh, uint64_t hash);

/* A new unhashed entry owning fd, with one reference (the caller's); NULL: no memory
 * (fd is left open). */
struct fdc_entry *fdc_entry_new(const struct fs_fh *fh, uint64_t hash, int fd, mode_t fmt,
                                enum fdc_level level);

/* Offer e (whose reference passes to the cache call) to the table. Returns the entry to
 * use, referenced: an already hashed one at least as capable as e (e is then dropped),
 * or e itself, now hashed in place of any weaker entry for the same handle. */
struct fdc_entry *fdc_add(struct fdcache *c, struct fdc_entry *e);

/* Take e out of the table (no more lookups find it); the caller's reference stays. */
void fdc_forget(struct fdcache *c, struct fdc_entry *e);

/* Drop a reference; the last one closes the fd. */
void fdc_put(struct fdc_entry *e);

/* Evict unused entries even if recently used (after EMFILE/ENFILE). */
void fdc_shrink(struct fdcache *c, unsigned n);

#endif
