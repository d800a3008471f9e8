/*
 * The one byte-range lock space (design.md, "One lock space").
 *
 * NLM and NFSv4 locks are OFD locks (F_OFD_SETLK) on the backing files: each
 * (lock owner, file) pair gets its own open file description, so the kernel does the
 * range split/merge/upgrade/downgrade per owner, and local processes' fcntl locks
 * (classic or OFD; not flock(2), which Linux keeps apart) and NFS clients' locks exclude
 * each other. Nothing here knows a protocol.
 *
 * Identities are opaque byte strings chosen by the protocol layer:
 *  - an owner key (NLM: caller name + svid + owner handle; NFSv4: clientid + owner),
 *    equal keys = the same owner, whose own locks never conflict with each other;
 *  - a host key grouping owners (NLM: caller name; NFSv4: clientid), for the waiter
 *    cap and for dropping every lock of a host at once (FREE_ALL, SM_NOTIFY, expiry);
 *  - a file key (export id + backend handle bytes) plus an open_file callback that
 *    returns a NEW fd for the backing file.
 *
 * Offsets: the wire carries unsigned 64-bit start/len (len 0 = to end of file), the
 * kernel takes off_t. Ranges are CLAMPED, as Linux's own lockd does: a start beyond
 * OFF_MAX (2^63-1) becomes OFF_MAX, and a range whose last byte lies beyond OFF_MAX (or
 * whose start+len wraps past 2^64) extends to end of file. No byte beyond OFF_MAX can be
 * read or written through the backing file, so clamping never lets a conflicting I/O
 * through; it only makes two locks that both lie wholly above OFF_MAX conflict (they
 * share the byte OFF_MAX) -- more exclusion, never less. Refusing instead would break
 * clients that lock "the whole file" as (0, 2^64-1) or lock high bytes as a mutex.
 * Ranges reported back (TEST, conflicts, lock_owner_ranges) are the clamped ones, with
 * len 0 for "to end of file".
 *
 * Blocking locks: lock() with wait=true returns LOCK_BLOCKED at once and queues a
 * waiter on the file. The space's own thread retries the file's waiters at once when
 * one of our owners unlocks or is released, and otherwise on a timer with exponential
 * backoff from retry_min_ms (default 10) to retry_max_ms (default 500): a lock released
 * by a local process, which gives no notification, reaches a waiter within
 * retry_max_ms (plus scheduling). The granted callback runs on that thread, never with
 * an internal lock held, exactly once per queued waiter unless the waiter is cancelled
 * or dropped first (cancel, release of its owner/host/file, lock_space_destroy).
 *
 * Cancel/grant race: the waiter queue is guarded by the file's mutex, so exactly one of
 * them wins. lock_cancel() returning LOCK_OK means the waiter was removed, no lock was
 * taken and the callback will never run. LOCK_NOT_QUEUED means there was no such waiter:
 * either it was never queued, or it has already been granted -- the owner then holds the
 * lock and the callback runs (or already ran). A protocol that wants "cancelled means not
 * held" (NLM: the client answers the GRANTED callback with DENIED) unlocks the range.
 *
 * Thread safety: every function may be called from any thread concurrently, except
 * lock_space_destroy. Each file has its own mutex; the space mutex is only held for
 * table lookups and counters, never across a kernel call or the open_file callback.
 */
#ifndef PEERNFS_LOCK_H
#define PEERNFS_LOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct lock_space;
struct lock_owner;

enum lock_type { LOCK_SHARED = 1, LOCK_EXCLUSIVE = 2 };

enum lock_status {
    LOCK_OK = 0,
    LOCK_DENIED,         /* conflicts with a lock held by another owner or a local process */
    LOCK_BLOCKED,        /* queued; the granted callback runs later (arg taken) */
    LOCK_ALREADY_QUEUED, /* an identical waiter (owner, type, range) is queued: arg NOT
                            taken, the first waiter's callback will run */
    LOCK_NOLOCKS,        /* a waiter cap is reached, or out of memory/fds/kernel locks */
    LOCK_ACCESS,         /* the file cannot be opened with the access the lock type needs
                            (shared: read, exclusive: write) */
    LOCK_STALE,          /* open_file: the file no longer exists (ENOENT, ESTALE) */
    LOCK_IO,             /* any other failure of open_file or the kernel */
    LOCK_INVAL,          /* bad arguments (unknown lock type, ...) */
    LOCK_NOT_QUEUED,     /* lock_cancel: no such waiter (never queued or already granted) */
};

const char *lock_status_name(enum lock_status st);

struct lock_space_params {
    unsigned max_waiters;          /* queued waiters in the whole space; 0 = 8192 */
    unsigned max_waiters_per_host; /* queued waiters per host key; 0 = 1024 */
    unsigned retry_min_ms;         /* first timer retry of a file's waiters; 0 = 10 */
    unsigned retry_max_ms;         /* backoff cap = local-unlock latency bound; 0 = 500 */
};

/* Starts the retry thread. NULL params = defaults. Returns NULL on failure (errno). */
struct lock_space *lock_space_create(const struct lock_space_params *params);
/* Stops the thread, closes every fd (releasing every lock), frees every object. No
 * callback runs; owners still referenced by the caller become invalid. */
void lock_space_destroy(struct lock_space *ls);

/* The owner with this key, created on first use (host_key applies only then: the owner
 * key is expected to include whatever identifies the host). Returns a new reference, or
 * NULL when out of memory. Keys are copied. */
struct lock_owner *lock_owner_get(struct lock_space *ls, const void *key, size_t key_len,
                                  const void *host_key, size_t host_key_len);
struct lock_owner *lock_owner_ref(struct lock_owner *o);
void lock_owner_put(struct lock_owner *o);
const void *lock_owner_key(const struct lock_owner *o, size_t *len);

/* A file: key bytes identify it (two calls with equal keys = the same file);
 * open_file(ctx, flags) returns a new fd for it with the given O_ACCMODE plus
 * O_CLOEXEC|O_NOCTTY|O_NONBLOCK (which it may honour or not), or -errno. It is only
 * called during the lock-space call it was passed to; the fd is kept by the space. */
struct lock_file_id {
    const void *key;
    size_t key_len;
    int (*open_file)(void *ctx, int flags);
    void *ctx;
};

/* A conflicting lock. holder: one of our owners (a new reference, release with
 * lock_owner_put), or NULL for a local process, whose pid is given when the kernel
 * reports one (classic fcntl locks; 0 for OFD locks of local processes or a pid outside
 * our pid namespace). */
struct lock_conflict {
    enum lock_type type;
    uint64_t start, len; /* len 0 = to end of file */
    struct lock_owner *holder;
    pid_t pid;
};

/* Called once when a queued waiter got its lock (status LOCK_OK), or could not get it
 * for a reason other than a conflict (status = the error; the waiter is gone). */
typedef void (*lock_granted_fn)(void *arg, enum lock_status status);

struct lock_req {
    enum lock_type type;
    uint64_t start, len; /* len 0 = to end of file */
    bool wait;           /* queue when in conflict (LOCK_BLOCKED) */
    lock_granted_fn granted;
    void *arg;
};

/* Would `type` on the range conflict for this owner? LOCK_OK = no (the owner's own locks
 * never conflict), LOCK_DENIED with *c filled (c may be NULL), or an error. */
enum lock_status lock_test(struct lock_space *ls, struct lock_owner *o, const struct lock_file_id *f,
                           enum lock_type type, uint64_t start, uint64_t len, struct lock_conflict *c);

/* Take (or convert: upgrade/downgrade, split, merge as POSIX locks do) a lock. On
 * LOCK_DENIED and c != NULL, *c describes one conflicting lock. */
enum lock_status lock_lock(struct lock_space *ls, struct lock_owner *o, const struct lock_file_id *f,
                           const struct lock_req *req, struct lock_conflict *c);

/* Unlock a range; unlocking what is not held is LOCK_OK. Wakes the file's waiters. */
enum lock_status lock_unlock(struct lock_space *ls, struct lock_owner *o, const struct lock_file_id *f,
                             uint64_t start, uint64_t len);

/* Remove the owner's queued waiter with exactly this type and range (see the
 * cancel/grant race above): LOCK_OK (removed, callback never runs) or LOCK_NOT_QUEUED. */
enum lock_status lock_cancel(struct lock_space *ls, struct lock_owner *o, const struct lock_file_id *f,
                             enum lock_type type, uint64_t start, uint64_t len);

/* Drop every lock and queued waiter (no callbacks) of an owner on one file / on all
 * files / of every owner of a host (client crash, FREE_ALL, lease expiry). */
void lock_release_file(struct lock_space *ls, struct lock_owner *o, const struct lock_file_id *f);
void lock_release_owner(struct lock_space *ls, struct lock_owner *o);
void lock_release_host(struct lock_space *ls, const void *host_key, size_t host_key_len);
/* Does any owner of the host still exist: holding a lock or a file, waiting, or
 * referenced by a caller? (NSM: a client with none may be unmonitored.) */
bool lock_host_active(struct lock_space *ls, const void *host_key, size_t host_key_len);

/* The owner's locks on a file as the space records them (sorted, merged), for
 * introspection and tests: fills up to max, returns the total count. */
struct lock_range {
    enum lock_type type;
    uint64_t start, len; /* len 0 = to end of file */
};
size_t lock_owner_ranges(struct lock_space *ls, struct lock_owner *o, const void *file_key,
                         size_t file_key_len, struct lock_range *out, size_t max);

/* Counters, for tests and statistics. */
struct lock_space_stats {
    unsigned files;   /* files with locks or waiters */
    unsigned fds;     /* open file descriptions held (one per owner and file) */
    unsigned waiters; /* queued waiters */
};
void lock_space_stats(struct lock_space *ls, struct lock_space_stats *st);

#endif
