/*
 * Backend API: one filesystem tree exported by peernfsd.
 *
 * A backend is an ops vector (struct fs_ops) plus one instance per export
 * (struct fs_export). Objects are named by persistent backend handles (struct fs_fh)
 * that stay valid across server restarts; the protocol layers wrap them in wire
 * filehandles (fs/fh.h). Every operation returns 0 or a negative errno; the protocol
 * layers map errnos to their status codes in one table each (e.g. nfs3/nfs3_status.c).
 *
 * Credentials: operations that create, remove, rename or change objects take the
 * caller's (already squashed) credential and run with it, so the backing filesystem's
 * own permission checks (directory write/search, sticky bits, ownership for chmod)
 * apply and new objects get the caller's owner. Reads and writes of open files are
 * checked with fs_ops.permission (the protocol layer calls it), as a kernel server
 * checks each READ/WRITE.
 *
 * Attributes are plain struct stat. The pNFS part of the API (layout_type,
 * get_device_info, layout_get, ...) and the callback vector come with the pNFS issue.
 */
#ifndef PEERNFS_FS_H
#define PEERNFS_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

/* Backend handle bytes: must fit a 64-byte NFSv3 filehandle with our wrapping. */
#define FS_FH_MAX 40

struct fs_fh {
    uint8_t len;
    uint8_t data[FS_FH_MAX];
};

#define FS_MAX_GROUPS 16

struct fs_cred {
    uint32_t uid, gid;
    uint32_t ngroups;
    uint32_t groups[FS_MAX_GROUPS];
};

/* fs_ops.permission "may" bits */
enum fs_may { FS_MAY_READ = 4, FS_MAY_WRITE = 2, FS_MAY_EXEC = 1 };

/* fs_setattr.mask bits */
enum fs_set {
    FS_SET_MODE = 1u << 0,
    FS_SET_UID = 1u << 1,
    FS_SET_GID = 1u << 2,
    FS_SET_SIZE = 1u << 3,
    FS_SET_ATIME = 1u << 4,     /* to .atime */
    FS_SET_ATIME_NOW = 1u << 5, /* to the server's time */
    FS_SET_MTIME = 1u << 6,
    FS_SET_MTIME_NOW = 1u << 7,
};

struct fs_setattr {
    unsigned mask;
    mode_t mode;
    uid_t uid;
    gid_t gid;
    uint64_t size;
    struct timespec atime, mtime;
};

/* How durable a write must be before it returns. */
enum fs_stable { FS_UNSTABLE = 0, FS_DATA_SYNC = 1, FS_FILE_SYNC = 2 };

struct fs_statfs {
    uint64_t total_bytes, free_bytes, avail_bytes;
    uint64_t total_files, free_files, avail_files;
    uint32_t name_max;
};

/* fs_ops.readdir flags */
enum fs_readdir_flags {
    /* Also give each entry's handle and attributes (READDIRPLUS). */
    FS_READDIR_PLUS = 1u << 0,
};

/*
 * One directory entry handed to a readdir callback. `cookie` is the position AFTER this
 * entry (pass it back to continue); cookies are stable across calls and restarts.
 *
 * With FS_READDIR_PLUS, `fh` and `st` are the entry's handle and its attributes as of
 * now, or both NULL when the backend could not get them (the name was removed or
 * replaced since the listing saw it, or another filesystem is mounted on it); the
 * entry is listed all the same. Without the flag they are NULL. Everything the entry
 * points to is valid only during the callback.
 */
struct fs_dirent {
    const char *name;
    uint32_t namelen;
    uint64_t fileid;
    uint64_t cookie;
    uint8_t type; /* DT_* */
    const struct fs_fh *fh;
    const struct stat *st;
};

/* fs_ops.setxattr: what must hold of the attribute beforehand (RFC 8276 setxattr_option4). */
enum fs_xattr_how { FS_XATTR_EITHER = 0, FS_XATTR_CREATE = 1, FS_XATTR_REPLACE = 2 };

/* Bounds of extended attributes (Linux's XATTR_SIZE_MAX and XATTR_LIST_MAX): a value,
 * and a whole name list, are at most 64 KiB. */
#define FS_XATTR_SIZE_MAX 65536u
#define FS_XATTR_LIST_MAX 65536u

/* Return 0 to continue, 1 to stop (this entry was not consumed), <0 to abort with that errno. */
typedef int (*fs_readdir_fn)(void *ctx, const struct fs_dirent *de);

struct fs_export;
struct fs_watch; /* fs_ops.watch_begin */

/* The protocol layer's side of fs_ops.watch_begin: is the file `key` still delegated?
 * With `recall`, someone else wants it: start taking the delegations back. */
#define FS_WATCH_KEY_MAX 64
struct fs_watch_cb {
    bool (*held)(void *ctx, const void *key, size_t keylen, bool recall);
    void *ctx;
};

struct fs_ops {
    const char *name;

    /* Open the tree rooted at `path`; fails if it is not a directory or the backing
     * filesystem cannot give persistent handles. */
    int (*export_open)(const char *path, struct fs_export **out);
    void (*export_close)(struct fs_export *ex);

    int (*root)(struct fs_export *ex, struct fs_fh *out);
    /* Filesystem id and whether `fh` is a well-formed handle of this export:
     * -ESTALE for a handle of a removed object, -EBADF for a malformed one. */
    int (*getattr)(struct fs_export *ex, const struct fs_fh *fh, struct stat *st);
    /* ".." of the root stays at the root; names with '/' or NUL are -EINVAL (the protocol
     * layer maps it to its own error); "." and ".." are handled by the backend. */
    int (*lookup)(struct fs_export *ex, const struct fs_cred *cred, const struct fs_fh *dir,
                  const char *name, size_t namelen, struct fs_fh *out, struct stat *st);
    /* Check `may` (FS_MAY_*) for cred against the object whose attributes are `st`.
     * The owner of a file may always read and write it (the client checked the mode at
     * open time, e.g. a file created 0444 by its writer). */
    int (*permission)(struct fs_export *ex, const struct fs_cred *cred, const struct stat *st,
                      unsigned may);

    int (*read)(struct fs_export *ex, const struct fs_fh *fh, uint64_t offset, void *buf,
                size_t count, size_t *nread, bool *eof);
    /* `st` gets the attributes after the write. */
    int (*write)(struct fs_export *ex, const struct fs_fh *fh, uint64_t offset, const void *buf,
                 size_t count, enum fs_stable stable, size_t *nwritten, struct stat *st);
    /* Make [offset, offset+count) durable (count 0 = to the end of the file). */
    int (*commit)(struct fs_export *ex, const struct fs_fh *fh, uint64_t offset, uint64_t count);

    int (*setattr)(struct fs_export *ex, const struct fs_cred *cred, const struct fs_fh *fh,
                   const struct fs_setattr *sa, struct stat *st);

    /* Create a regular file. exclusive: fail with -EEXIST if it exists. */
    int (*create)(struct fs_export *ex, const struct fs_cred *cred, const struct fs_fh *dir,
                  const char *name, size_t namelen, mode_t mode, bool exclusive,
                  struct fs_fh *out, struct stat *st);
    int (*mkdir)(struct fs_export *ex, const struct fs_cred *cred, const struct fs_fh *dir,
                 const char *name, size_t namelen, mode_t mode, struct fs_fh *out, struct stat *st);
    int (*symlink)(struct fs_export *ex, const struct fs_cred *cred, const struct fs_fh *dir,
                   const char *name, size_t namelen, const char *target, size_t targetlen,
                   struct fs_fh *out, struct stat *st);
    /* type: S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK */
    int (*mknod)(struct fs_export *ex, const struct fs_cred *cred, const struct fs_fh *dir,
                 const char *name, size_t namelen, mode_t type_and_mode, dev_t rdev,
                 struct fs_fh *out, struct stat *st);
    int (*readlink)(struct fs_export *ex, const struct fs_fh *fh, char *buf, size_t bufsize,
                    size_t *len);
    /* dir: true = rmdir semantics, false = unlink semantics */
    int (*remove)(struct fs_export *ex, const struct fs_cred *cred, const struct fs_fh *dir,
                  const char *name, size_t namelen, bool dir_only);
    int (*rename)(struct fs_export *ex, const struct fs_cred *cred, const struct fs_fh *from_dir,
                  const char *from, size_t fromlen, const struct fs_fh *to_dir, const char *to,
                  size_t tolen);
    int (*link)(struct fs_export *ex, const struct fs_cred *cred, const struct fs_fh *fh,
                const struct fs_fh *dir, const char *name, size_t namelen);

    /* Entries after `cookie` (0 = from the start); "." and ".." are included. `flags`:
     * FS_READDIR_* (FS_READDIR_PLUS: handles and attributes too, with no permission
     * check beyond reading the directory, as knfsd). Sets *eof when the callback saw the
     * last entry. */
    int (*readdir)(struct fs_export *ex, const struct fs_cred *cred, const struct fs_fh *dir,
                   uint64_t cookie, unsigned flags, fs_readdir_fn fn, void *ctx, bool *eof);

    int (*statfs)(struct fs_export *ex, const struct fs_fh *fh, struct fs_statfs *sf);

    /* A NEW file descriptor for the object (flags: O_ACCMODE plus O_* modifiers), for code
     * that needs an open file description of its own, such as the lock space (one per lock
     * owner and file). Runs with the server's own rights: the protocol layer decides
     * access. -ESTALE for a removed object, -EBADF for a malformed handle. */
    int (*open_fd)(struct fs_export *ex, const struct fs_fh *fh, int flags);

    /* Optional (NULL: the protocol layer answers "not supported"). */
    /* lseek(2) SEEK_DATA / SEEK_HOLE (whence) of a regular file from `offset`: -ENXIO when
     * offset is at or past the end, or (SEEK_DATA) only a hole follows. */
    int (*seek)(struct fs_export *ex, const struct fs_fh *fh, uint64_t offset, int whence,
                uint64_t *out);
    /* fallocate(2) of a regular file: reserve [offset, offset+length) (the file may grow),
     * or with `punch` deallocate it (a hole; the size stays). `st` gets the attributes after. */
    int (*allocate)(struct fs_export *ex, const struct fs_fh *fh, uint64_t offset, uint64_t length,
                    bool punch, struct stat *st);

    /*
     * Optional, all five or none: extended attributes of the user namespace (RFC 8276
     * offers no other). Names are given and listed WITHOUT the namespace prefix (the
     * posix backend adds and strips "user."); they are `namelen` bytes, not terminated,
     * and a NUL inside is -EINVAL. Only regular files and directories carry them
     * (others: -EOPNOTSUPP). They run as `cred`, so the backing filesystem decides
     * access (reading needs read permission, changing needs write permission or
     * ownership). Errors: -ENODATA no such attribute, -EEXIST / -ENODATA for
     * FS_XATTR_CREATE / FS_XATTR_REPLACE, -ERANGE a value or list larger than `bufsize`,
     * -E2BIG a value over FS_XATTR_SIZE_MAX, -ENAMETOOLONG a name the backend cannot
     * store, -EOPNOTSUPP the filesystem has no user xattrs.
     */
    /* Whether the export's filesystem stores user xattrs (the xattr_support attribute). */
    bool (*xattr_supported)(struct fs_export *ex);
    /* The value into buf; *len its length. bufsize 0 only tells whether it is empty. */
    int (*getxattr)(struct fs_export *ex, const struct fs_cred *cred, const struct fs_fh *fh,
                    const char *name, size_t namelen, void *buf, size_t bufsize, size_t *len);
    int (*setxattr)(struct fs_export *ex, const struct fs_cred *cred, const struct fs_fh *fh,
                    const char *name, size_t namelen, const void *val, size_t len, enum fs_xattr_how how);
    /* The names, each followed by a NUL, in the backend's order; *len bytes in all. */
    int (*listxattr)(struct fs_export *ex, const struct fs_cred *cred, const struct fs_fh *fh, char *buf,
                     size_t bufsize, size_t *len);
    int (*removexattr)(struct fs_export *ex, const struct fs_cred *cred, const struct fs_fh *fh,
                       const char *name, size_t namelen);

    /*
     * Optional, all three or none: access to the backing file by others than this server
     * (local processes), for delegations. A delegated client serves opens, reads, writes
     * and byte-range locks from its cache, so nobody may open the file behind its back.
     *
     * watch_begin, called BEFORE a delegation of the regular file fh is granted, arms a
     * watch: from then on another process's open of the file waits, and cb->held(ctx,
     * key, keylen, true) is called (on a backend thread; it must not block) to start the
     * recall. The open goes ahead once held() answers false (asked again every few ms)
     * and no watch_begin is pending, or after a bound (45 s, as Linux's
     * lease-break-time). `exclusive` (a write delegation): fail with -EBUSY when another
     * process has the file open already. Each success is paired with watch_end once the
     * grant is decided; the watch then stays while held(ctx, key, keylen, false) says a
     * delegation remains (asked every few seconds). -EOPNOTSUPP: the backend cannot
     * watch (e.g. no privilege); other errors: not now.
     */
    int (*watch_begin)(struct fs_export *ex, const struct fs_fh *fh, const void *key, size_t keylen,
                       bool exclusive, const struct fs_watch_cb *cb, struct fs_watch **out);
    void (*watch_end)(struct fs_watch *w);
    /* The protocol layer behind cb goes away: its watches end (held opens go ahead), and
     * once this returns cb is not called again. */
    void (*watch_forget)(const struct fs_watch_cb *cb);
};

extern const struct fs_ops fs_posix_ops;

/* posix backend: cache at most this many open files per export opened afterwards
 * (0, the default: a quarter of RLIMIT_NOFILE, at most 16384). */
void fs_posix_set_cache_limit(unsigned max_fds);

/*
 * posix backend: the directory entry cache (names, cookies and handles of directories
 * being listed, see posix_dircache.h), shared by all exports of the process. At most
 * `max_bytes` (0: cache nothing) and `max_dirs` directories; takes effect at once.
 * Defaults: 64 MiB, 4096 directories.
 */
void fs_posix_set_dircache_limit(size_t max_bytes, unsigned max_dirs);

struct fs_posix_dircache_stats {
    uint64_t hits;      /* readdir calls that reused a cached snapshot */
    uint64_t misses;    /* readdir calls that made a new one */
    uint64_t fills;     /* getdents64 calls */
    uint64_t evictions; /* snapshots dropped for the budget */
    size_t bytes;       /* memory held by cached snapshots */
    unsigned dirs;      /* cached snapshots */
};
void fs_posix_dircache_stats(struct fs_posix_dircache_stats *s);

/*
 * posix backend, thread hygiene. To make a run of requests from one user cost no
 * system calls, the backend leaves a request thread's filesystem identity (fsuid,
 * fsgid, supplementary groups; per thread in Linux) as the last caller's, and gives the
 * thread a private umask of 0 (modes from clients are final). Code that creates or opens
 * files itself on a thread that ran backend operations (state database, logs) calls
 * this first to get the process's identity and umask back.
 */
void fs_posix_thread_reset(void);

#endif
