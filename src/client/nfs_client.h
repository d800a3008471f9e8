/*
 * NFS client library on rpc/ and xdr/: used by the peernfs CLI, tests, and later by
 * inter-server copy and the peer agent.
 *
 * One public API, one ops vector per protocol version behind it (struct nfs_client_ops
 * in client/nfs_client_impl.h):
 *  - NFSv3 (RFC 1813) with MOUNT v3, portmap v2 / rpcbind v4 and NLM v4 locks, over TCP;
 *  - NFSv4.0 (RFC 7530; vers=4 or 4.0): SETCLIENTID + SETCLIENTID_CONFIRM (the same id
 *    string and verifier for the instance's lifetime), COMPOUNDs without SEQUENCE, the
 *    lease renewed with RENEW from the background thread, open / lock owner seqids
 *    (OPEN_CONFIRM when asked, open_to_lock_owner4 then exist_lock_owner4,
 *    RELEASE_LOCKOWNER once the lock owner holds nothing), one seqid-mutating exchange
 *    at a time per client. The library runs no callback service for 4.0: SETCLIENTID
 *    names our address with port 0, the server's CB_NULL probe fails, and so a 4.0
 *    client gets NO DELEGATIONS (and nfs_client_on_callback refuses it). Recovery as
 *    below: a reconnect (the server's reply caches answer retransmissions, which keep
 *    their seqids), RENEW to check the client id, and after STALE_CLIENTID / EXPIRED a
 *    new SETCLIENTID and the same reclaims in the grace period (4.0 has no
 *    RECLAIM_COMPLETE). I/O stateids carry their real seqid (4.0 has no "current" one):
 *    an OLD_STATEID answer sends the I/O again with the newer one;
 *  - NFSv4.1 / 4.2 (RFC 8881, RFC 7862): EXCHANGE_ID, CREATE_SESSION with a back channel
 *    on the same connection (CB_NULL, CB_SEQUENCE, CB_RECALL answered by the library;
 *    other callbacks via nfs_client_on_callback), SEQUENCE slots, lease renewal from a
 *    background thread, open / lock stateids, delegations returned when recalled.
 *    The URL path is walked from the server's pseudo-fs root (PUTROOTFH + LOOKUP).
 *    A dropped connection or a server restart is recovered from transparently (RFC 8881
 *    8.4.2): reconnect + BIND_CONN_TO_SESSION, else a new session, else EXCHANGE_ID and
 *    the reclaim of every open and lock (CLAIM_PREVIOUS, reclaim = true); calls in
 *    flight or issued meanwhile wait and go out again, for up to 2 minutes. A file whose
 *    state the server refuses to give back (NO_GRACE) fails its later I/O with -EIO.
 *
 * Threads: a client is thread-safe; every call may come from any thread. The *_async
 * calls return at once, so one thread can keep many requests in flight: READ / WRITE /
 * COMMIT / GETATTR run their completion on the RPC reader thread (keep it short: copy,
 * signal, return), the other operations on the client's async workers (see below).
 *
 * Status codes: every call returns 0 on success, a positive NFS status (the nfsstat3 /
 * nfsstat4 number from the server, e.g. 2 = NOENT) when the server refused, or a
 * negative errno for local and transport failures (-ETIMEDOUT, -ECONNRESET, -EPROTO for
 * a malformed or rejected reply, -ENOMEM, -EINVAL). nfs_client_strerror() names them.
 */
#ifndef PEERNFS_CLIENT_NFS_CLIENT_H
#define PEERNFS_CLIENT_NFS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NFS_CLIENT_FH_MAX 128 /* NFSv4 handles are up to 128 bytes, v3 up to 64 */
#define NFS_CLIENT_IO_MAX (1u << 20)
#define NFS_ASYNC_WORKERS 32 /* metadata *_async calls running at once, per client */

/* ---- URLs ---- */

/* nfs://host[:port]/export/path[?arg=value&...]; host may be [IPv6]. Arguments:
 *   vers=3|4|4.0|4.1|4.2   protocol version (default 3)
 *   port=N                  NFS port (skips rpcbind for NFS; default: ask rpcbind)
 *   mountport=N             MOUNT port (skips rpcbind for MOUNT)
 *   nlmport=N               NLM port for v3 locks (default: rpcbind; without one, the
 *                           NFS port, where peernfsd serves NLM too)
 *   export=/path            the export to mount; default: the longest prefix of the
 *                           URL path the server agrees to mount
 *   timeo=S                 per-RPC timeout in seconds (default 30)
 *   window=N                READ/WRITE RPCs in flight for transfers (default 4, 1..64)
 *   uid=N, gid=N            AUTH_SYS identity (default: the caller's)
 * Unknown arguments are an error (a typo must not silently change behaviour). */
struct nfs_url {
    char *host;        /* without brackets */
    uint16_t port;     /* 0 = via rpcbind (v3) or 2049 (v4) */
    uint16_t mountport;
    uint16_t nlmport;  /* 0 = via rpcbind, else (when that fails) the NFS port */
    char *path;        /* "/export/path", never empty ("/" at least), no trailing '/' */
    char *export_path; /* NULL unless export= was given */
    int vers_major, vers_minor;
    int timeo_s;
    int window;
    int64_t uid, gid; /* -1 = the caller's */
};

/* 0 or -EINVAL with a message in err (when errlen > 0). Free with nfs_url_free. */
int nfs_url_parse(const char *url, struct nfs_url *u, char *err, size_t errlen);
void nfs_url_free(struct nfs_url *u);
/* Is s an nfs:// URL (as opposed to a local path)? */
bool nfs_url_is_nfs(const char *s);

/* ---- handles and attributes ---- */

struct nfs_fh {
    uint32_t len;
    uint8_t data[NFS_CLIENT_FH_MAX];
};

enum nfs_ftype { NFS_REG = 1, NFS_DIR, NFS_BLK, NFS_CHR, NFS_LNK, NFS_SOCK, NFS_FIFO };

struct nfs_time {
    int64_t sec;
    uint32_t nsec;
};

struct nfs_attr {
    enum nfs_ftype type;
    uint32_t mode; /* permission bits only */
    uint32_t nlink, uid, gid;
    uint64_t size, used, fsid, fileid;
    uint32_t rdev_major, rdev_minor;
    struct nfs_time atime, mtime, ctime;
};

/* SETATTR: only the members whose set_* flag is true are changed. */
struct nfs_setattr {
    bool set_mode, set_uid, set_gid, set_size, set_atime, set_mtime;
    bool atime_now, mtime_now; /* server time instead of the given value */
    uint32_t mode, uid, gid;
    uint64_t size;
    struct nfs_time atime, mtime;
};

struct nfs_fsstat {
    uint64_t total_bytes, free_bytes, avail_bytes;
    uint64_t total_files, free_files, avail_files;
};

/* ---- connecting ---- */

struct nfs_client;

/* Resolve the host, find the ports (rpcbind unless port=/mountport=), mount the export
 * (MOUNT v3 MNT, AUTH_SYS) and fetch FSINFO. On failure returns NULL, *status set and a
 * message in err. As root the client binds a reserved source port when rpc/ can
 * (servers default to `secure`); see nfs_client.c. */
struct nfs_client *nfs_client_connect(const char *url, int *status, char *err, size_t errlen);
struct nfs_client *nfs_client_connect_url(const struct nfs_url *u, int *status, char *err,
                                          size_t errlen);
/* Fails what is still in flight with -ECANCELED and frees the client (UMNT is sent). */
void nfs_client_destroy(struct nfs_client *c);

/* The handle of the mounted export, and the rest of the URL path below it ("" when the
 * URL names the export itself; relative, no leading '/'). */
const struct nfs_fh *nfs_client_root(const struct nfs_client *c);
const char *nfs_client_url_rest(const struct nfs_client *c);
/* The largest READ / WRITE the server takes (FSINFO rtmax/wtmax, capped at 1 MiB). */
uint32_t nfs_client_rsize(const struct nfs_client *c);
uint32_t nfs_client_wsize(const struct nfs_client *c);
int nfs_client_version(const struct nfs_client *c); /* 3, 40, 41 or 42 */

/* Counters of the NFSv4 state machinery (all 0 for v3), for tests and diagnostics. */
struct nfs_client_stats {
    uint64_t compounds;       /* COMPOUNDs sent (including renewals) */
    uint64_t renewals;        /* SEQUENCE-only (4.0: RENEW) COMPOUNDs of the lease thread */
    uint64_t delay_retries;   /* NFS4ERR_DELAY / GRACE answers retried */
    uint64_t delegations;     /* delegations received with OPEN (never over 4.0) */
    uint64_t recalls;         /* CB_RECALLs received */
    uint64_t delegreturns;    /* DELEGRETURNs the server accepted */
    uint64_t callbacks;       /* CB_COMPOUNDs served */
    uint64_t reconnects;      /* connections made again after one was lost */
    uint64_t recoveries;      /* recoveries completed (reconnect, new session, reclaim) */
    uint64_t reclaims;        /* opens + locks reclaimed after a server restart */
    uint64_t lost;            /* files whose state the server refused to give back */
};
void nfs_client_get_stats(struct nfs_client *c, struct nfs_client_stats *st);

/* NFSv4.1+ (4.0 clients have no callback service): handle the callback op `op` (OP_CB_OFFLOAD = 15, OP_CB_LAYOUTRECALL = 5, ...;
 * not CB_SEQUENCE, and CB_RECALL only to replace the library's own handling). fn gets
 * the decoded `const nfs_cb_argop4 *` and fills `nfs_cb_resop4 *` (xdr/nfs4_xdr.h) and
 * returns the op's nfsstat4; it runs on a back channel worker thread and must not wait
 * for the server. Unregistered ops are answered NFS4ERR_NOTSUPP. fn NULL unregisters.
 * 0, -EINVAL (bad op) or -EPROTONOSUPPORT (an NFSv3 or NFSv4.0 client). */
typedef uint32_t (*nfs_callback_fn)(void *ctx, const void *cb_argop, void *cb_resop);
int nfs_client_on_callback(struct nfs_client *c, uint32_t op, nfs_callback_fn fn, void *ctx);

/* Message for a status from any call of this API (never NULL). */
const char *nfs_client_strerror(int status);

/* ---- blocking operations ---- */

/* Walk a '/'-separated path from the root (empty path or "/" = the root). attr may be
 * NULL. Symlinks are not followed. */
int nfs_lookup_path(struct nfs_client *c, const char *path, struct nfs_fh *fh,
                    struct nfs_attr *attr);
int nfs_lookup(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
               struct nfs_fh *fh, struct nfs_attr *attr);
int nfs_getattr(struct nfs_client *c, const struct nfs_fh *fh, struct nfs_attr *attr);
int nfs_setattr(struct nfs_client *c, const struct nfs_fh *fh, const struct nfs_setattr *sa,
                struct nfs_attr *attr);

/* Open / close. NFSv3 has no open state: open looks the file up (creating it with
 * NFS_O_CREAT, truncating with NFS_O_TRUNC) and close is a no-op. NFSv4 sends OPEN
 * (CLAIM_NULL; UNCHECKED4 create, GUARDED4 with NFS_O_EXCL) with share access READ for
 * NFS_O_RDONLY, WRITE for NFS_O_WRONLY, both otherwise, and keeps the open stateid per
 * handle in the client: READ / WRITE / SETATTR / LOCK on that handle use it (without an
 * open, the anonymous stateid), CLOSE drops it when the last nfs_file of the handle is
 * closed. A directory "opens" by lookup only. Delegations granted with OPEN are kept
 * until the server recalls them or the client is destroyed. */
enum { NFS_O_CREAT = 1, NFS_O_EXCL = 2, NFS_O_TRUNC = 4, NFS_O_RDONLY = 8, NFS_O_WRONLY = 16 };
struct nfs_file {
    struct nfs_fh fh;
    struct nfs_attr attr;
    int flags;       /* as given to nfs_open */
    bool v4_open;    /* NFSv4: an OPEN is held for fh (CLOSE on nfs_close) */
};
int nfs_open(struct nfs_client *c, const char *path, int flags, uint32_t mode,
             struct nfs_file *f);
/* The same for name in the directory dir (no path walk: one OPEN over NFSv4). */
int nfs_open_at(struct nfs_client *c, const struct nfs_fh *dir, const char *name, int flags,
                uint32_t mode, struct nfs_file *f);
int nfs_close(struct nfs_client *c, struct nfs_file *f);

/* Results of READ / WRITE / COMMIT. */
enum nfs_stable { NFS_UNSTABLE = 0, NFS_DATA_SYNC = 1, NFS_FILE_SYNC = 2 };
struct nfs_io_result {
    uint32_t count;           /* bytes read / written */
    bool eof;                 /* READ: the end of the file was reached */
    enum nfs_stable committed; /* WRITE: how stable the server made it */
    uint8_t verf[8];          /* WRITE / COMMIT: the server's write verifier */
};

/* count <= nfs_client_rsize / wsize. */
int nfs_read(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off, void *buf,
             uint32_t count, struct nfs_io_result *res);
int nfs_write(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off, const void *buf,
              uint32_t count, enum nfs_stable stable, struct nfs_io_result *res);
int nfs_commit(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off, uint32_t count,
               struct nfs_io_result *res);

/* Directory operations; fh / attr outputs may be NULL. */
int nfs_create(struct nfs_client *c, const struct nfs_fh *dir, const char *name, uint32_t mode,
               bool exclusive, struct nfs_fh *fh, struct nfs_attr *attr);
int nfs_mkdir(struct nfs_client *c, const struct nfs_fh *dir, const char *name, uint32_t mode,
              struct nfs_fh *fh, struct nfs_attr *attr);
int nfs_remove(struct nfs_client *c, const struct nfs_fh *dir, const char *name);
int nfs_rmdir(struct nfs_client *c, const struct nfs_fh *dir, const char *name);
int nfs_rename(struct nfs_client *c, const struct nfs_fh *from_dir, const char *from,
               const struct nfs_fh *to_dir, const char *to);
int nfs_link(struct nfs_client *c, const struct nfs_fh *file, const struct nfs_fh *dir,
             const char *name);
int nfs_symlink(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                const char *target, struct nfs_fh *fh);
/* NUL-terminated target in buf; -ENAMETOOLONG when it does not fit. */
int nfs_readlink(struct nfs_client *c, const struct nfs_fh *fh, char *buf, size_t len);
int nfs_fsstat(struct nfs_client *c, const struct nfs_fh *fh, struct nfs_fsstat *st);

/* READDIRPLUS (READDIR when plus is false or the server refuses it), following cookies
 * until the end. The callback sees each entry except "." and ".."; attr / fh are NULL
 * when the server sent none. A nonzero return from it stops the walk and is returned. */
struct nfs_dirent {
    const char *name; /* NUL-terminated, valid during the callback */
    uint64_t fileid, cookie;
    const struct nfs_attr *attr;
    const struct nfs_fh *fh;
};
typedef int (*nfs_dirent_fn)(void *arg, const struct nfs_dirent *e);
int nfs_readdir(struct nfs_client *c, const struct nfs_fh *dir, bool plus, nfs_dirent_fn fn,
                void *arg);

/* Byte-range locks on an opened file, [off, off+len), len 0 = to the end of the file.
 * NFSv4: LOCK (open_to_lock_owner4 the first time, then exist_lock_owner4), LOCKU,
 * LOCKT, one lock owner per client instance. NFSv3: NLM v4 (TEST / LOCK / UNLOCK) to
 * the server's NLM service (nlmport=, else rpcbind, else the NFS port), with the host
 * name as caller_name and an owner handle + svid unique per client instance; no statd
 * monitoring and no GRANTED callbacks (we run no lockd).
 * A lock held by someone else: -EAGAIN. With wait, the call polls (non-blocking LOCK
 * every 100 ms, backing off to 2 s) until granted: neither protocol's blocking locks are
 * used, since v3 needs a lockd to receive NLM_GRANTED. A server in its grace period is
 * polled the same way (also without wait). NFS_LOCK_UNLOCK = nfs_unlock. */
enum nfs_lock_type { NFS_LOCK_READ, NFS_LOCK_WRITE, NFS_LOCK_UNLOCK };
int nfs_lock(struct nfs_client *c, struct nfs_file *f, enum nfs_lock_type type, uint64_t off,
             uint64_t len, bool wait);
int nfs_unlock(struct nfs_client *c, struct nfs_file *f, uint64_t off, uint64_t len);
/* 0: the lock would be granted now; -EAGAIN: it conflicts with `conflict` (may be NULL). */
struct nfs_lock_conflict {
    enum nfs_lock_type type;
    uint64_t off, len; /* len 0 = to the end */
};
int nfs_testlock(struct nfs_client *c, struct nfs_file *f, enum nfs_lock_type type,
                 uint64_t off, uint64_t len, struct nfs_lock_conflict *conflict);

/* ---- asynchronous operations ---- */

/* READ / WRITE / COMMIT / GETATTR are one RPC each and asynchronous all the way down:
 * completions run on the RPC reader thread. For READ the data is already in buf. res is
 * valid during the call only. A call that returns nonzero never runs its completion. */
typedef void (*nfs_io_done_fn)(void *arg, int status, const struct nfs_io_result *res);
typedef void (*nfs_attr_done_fn)(void *arg, int status, const struct nfs_attr *attr);

/* buf must stay valid until the completion has run; WRITE data is copied before the
 * call returns. */
int nfs_read_async(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off, void *buf,
                   uint32_t count, nfs_io_done_fn done, void *arg);
int nfs_write_async(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off,
                    const void *buf, uint32_t count, enum nfs_stable stable,
                    nfs_io_done_fn done, void *arg);
int nfs_commit_async(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off,
                     uint32_t count, nfs_io_done_fn done, void *arg);
int nfs_getattr_async(struct nfs_client *c, const struct nfs_fh *fh, nfs_attr_done_fn done,
                      void *arg);

/* Every other operation, asynchronously: the arguments are copied before the call
 * returns (except `struct nfs_file *`, used in place: it must stay valid, and not be
 * used by another call, until the completion has run), and `done` runs once with the
 * status and, for status 0, the outputs:
 *   lookup / lookup_path / create / mkdir: fh and attr; symlink: fh; setattr: attr
 *   (the new attributes); fsstat: fsstat; readlink: target (NUL-terminated);
 *   testlock (-EAGAIN): conflict; open / open_at / close / lock / unlock / testlock:
 *   file is the caller's nfs_file (open has filled it).
 * res is valid during the completion only. These calls may take several round trips
 * (an NFSv3 CREATE without a handle in its reply is followed by a LOOKUP, a 4.0 OPEN by
 * OPEN_CONFIRM, READDIR by more READDIRs, a lock with wait polls), so each runs as its
 * blocking form on one of up to NFS_ASYNC_WORKERS worker threads of the client, which
 * share its connection: a single caller thread can have that many on the wire at once
 * and queue more (they start in the order queued). Completions run on those worker
 * threads: they may call any function of this API, including blocking ones, except
 * nfs_client_destroy. readdir's fn runs on the worker too. nfs_client_destroy fails
 * calls that have not started with -ECANCELED, ends lock waits with -ECANCELED, and
 * waits for the rest (each bounded by timeo=) before it returns.
 * A call that returns nonzero (-ENOMEM, -ECANCELED when the client is being destroyed)
 * never runs its completion. */
struct nfs_op_result {
    struct nfs_fh fh;
    struct nfs_attr attr;
    struct nfs_fsstat fsstat;
    const char *target;
    struct nfs_file *file;
    struct nfs_lock_conflict conflict;
};
typedef void (*nfs_op_done_fn)(void *arg, int status, const struct nfs_op_result *res);

int nfs_lookup_path_async(struct nfs_client *c, const char *path, nfs_op_done_fn done,
                          void *arg);
int nfs_lookup_async(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                     nfs_op_done_fn done, void *arg);
int nfs_setattr_async(struct nfs_client *c, const struct nfs_fh *fh, const struct nfs_setattr *sa,
                      nfs_op_done_fn done, void *arg);
int nfs_open_async(struct nfs_client *c, const char *path, int flags, uint32_t mode,
                   struct nfs_file *f, nfs_op_done_fn done, void *arg);
int nfs_open_at_async(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                      int flags, uint32_t mode, struct nfs_file *f, nfs_op_done_fn done,
                      void *arg);
int nfs_close_async(struct nfs_client *c, struct nfs_file *f, nfs_op_done_fn done, void *arg);
int nfs_create_async(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                     uint32_t mode, bool exclusive, nfs_op_done_fn done, void *arg);
int nfs_mkdir_async(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                    uint32_t mode, nfs_op_done_fn done, void *arg);
int nfs_remove_async(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                     nfs_op_done_fn done, void *arg);
int nfs_rmdir_async(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                    nfs_op_done_fn done, void *arg);
int nfs_rename_async(struct nfs_client *c, const struct nfs_fh *from_dir, const char *from,
                     const struct nfs_fh *to_dir, const char *to, nfs_op_done_fn done,
                     void *arg);
int nfs_link_async(struct nfs_client *c, const struct nfs_fh *file, const struct nfs_fh *dir,
                   const char *name, nfs_op_done_fn done, void *arg);
int nfs_symlink_async(struct nfs_client *c, const struct nfs_fh *dir, const char *name,
                      const char *target, nfs_op_done_fn done, void *arg);
int nfs_readlink_async(struct nfs_client *c, const struct nfs_fh *fh, nfs_op_done_fn done,
                       void *arg);
int nfs_fsstat_async(struct nfs_client *c, const struct nfs_fh *fh, nfs_op_done_fn done,
                     void *arg);
int nfs_readdir_async(struct nfs_client *c, const struct nfs_fh *dir, bool plus,
                      nfs_dirent_fn fn, void *fn_arg, nfs_op_done_fn done, void *arg);
int nfs_lock_async(struct nfs_client *c, struct nfs_file *f, enum nfs_lock_type type,
                   uint64_t off, uint64_t len, bool wait, nfs_op_done_fn done, void *arg);
int nfs_unlock_async(struct nfs_client *c, struct nfs_file *f, uint64_t off, uint64_t len,
                     nfs_op_done_fn done, void *arg);
int nfs_testlock_async(struct nfs_client *c, struct nfs_file *f, enum nfs_lock_type type,
                       uint64_t off, uint64_t len, nfs_op_done_fn done, void *arg);

/* ---- pipelined transfers ---- */

/* Whole-range transfers keeping `window` READ/WRITE RPCs of up to rsize/wsize bytes in
 * flight on the one connection (0 = the URL's window=, default 4). */
struct nfs_xfer_opts {
    int window;
    /* called on the calling thread after each chunk completes (may be NULL) */
    void (*progress)(void *arg, uint64_t done_bytes);
    void *progress_arg;
    /* nfs_read_range: the sink takes chunks in any order, from the library's receive
     * thread too, possibly while the calling thread is in it (pwrite() to a regular file
     * qualifies, a pipe does not). A chunk that one reply brought whole then goes to the
     * sink as soon as that reply arrives, with no hand-off to the calling thread (less
     * CPU at both ends of a copy, see bench/RESULTS.md). When the transfer
     * stops early (an error, or EOF before len because the file shrank), chunks past
     * *done_bytes may already be in the sink: truncate a destination file to it. */
    bool sink_any_order;
};

/* Read [off, off+len) (stops early at EOF) and hand the data to sink in file order, on
 * the calling thread (unless opts->sink_any_order). A nonzero sink return stops the
 * transfer and is returned. *done_bytes (may be NULL) = bytes delivered in order from
 * off. */
typedef int (*nfs_sink_fn)(void *arg, uint64_t off, const void *data, size_t len);
int nfs_read_range(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off, uint64_t len,
                   nfs_sink_fn sink, void *arg, const struct nfs_xfer_opts *o,
                   uint64_t *done_bytes);

/* Write [off, off+len) with data from source (which fills exactly len bytes for the
 * range it is given, on the calling thread; nonzero return stops), as UNSTABLE writes
 * with a COMMIT every 64 MiB. When the write verifier changes within such a batch (the
 * server restarted and may have lost uncommitted data), the batch is written again, so
 * source may be asked for the same range more than once; a server that keeps changing
 * it fails the call with NFS3ERR_IO (5) rather than silently losing data. */
typedef int (*nfs_source_fn)(void *arg, uint64_t off, void *data, size_t len);
int nfs_write_range(struct nfs_client *c, const struct nfs_fh *fh, uint64_t off, uint64_t len,
                    nfs_source_fn source, void *arg, const struct nfs_xfer_opts *o);

#endif
