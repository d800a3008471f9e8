/*
 * Internal interface of the NFSv4 server: the server object, the per-COMPOUND context
 * (current and saved filehandles, current stateid, session slot) and the op table.
 * Not for use outside src/nfs4/.
 *
 * A COMPOUND runs as RFC 8881 section 15.2 (and 7530 section 15.2) says: the ops are
 * executed in order, each result is encoded as soon as the op finishes, and the first
 * op that fails ends the request. The op table (nfs4_compound.c) maps each op number to
 * its handler and flags in one place.
 */
#ifndef PEERNFS_NFS4_INTERNAL_H
#define PEERNFS_NFS4_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/export.h"
#include "fs/fh.h"
#include "fs/fs.h"
#include "lock/lock.h"
#include "nfs4/nfs4.h"
#include "nfs4/nfs4_pseudo.h"
#include "rpc/svc.h"
#include "state/state.h"
#include "xdr/nfs4_xdr.h"

/* Transfer sizes (the attribute maxread/maxwrite and the session limits). */
#define NFS4_MAXIO (1024u * 1024u)
#define NFS4_NAME_MAX 255u
#define NFS4_LINK_MAX 4096u
/* Ops per COMPOUND we accept (4.0 has no negotiation; 4.1 sessions clamp below it). */
#define NFS4_MAX_OPS_PER_COMPOUND 64u

struct nfs4_counters {
    /* Ops executed, by op number (0..OP_MAX); read by tests through the log/stats. */
    uint64_t ops[80];
    uint64_t cb_recall_sent, cb_recall_failed, delegs_granted, delegs_returned, delegs_revoked;
    uint64_t cb_getattr_sent;
    uint64_t cb_notify_lock_sent, cb_notify_lock_failed;
};

struct nfs4_lock_waiter;

struct nfs4_server {
    const struct export_table *exports;
    struct fh_key fh_key;
    uint8_t write_verf[8];
    struct lock_space *locks;
    struct pseudo_fs pseudo;
    struct state_server *state;
    struct nfs4_server_config cfg;
    unsigned max_minor;
    uint8_t server_owner[32]; /* so_major_id: one per daemon instance */
    size_t server_owner_len;
    uint64_t boot_ns; /* for the 4.0 setclientid confirm verifiers etc. */
    /* Callback thread: sends CB_RECALL etc. from state work lists. */
    pthread_t cb_thread;
    pthread_mutex_t cb_lock;
    pthread_cond_t cb_cond;
    bool cb_stop, cb_kick, cb_thread_started;
    /* CB_NOTIFY_LOCK waiters (nfs4_lock_notify.c), guarded by notify_mu */
    pthread_mutex_t notify_mu;
    struct nfs4_lock_waiter *notify_waiters; /* probes queued in the lock space */
    struct nfs4_lock_waiter *notify_ready;   /* range came free: notification to send */
    unsigned notify_count;
    bool notify_closing;
    struct nfs4_counters counters; /* updated with relaxed atomics */
    struct fs_watch_cb deleg_watch; /* the backends' open watchers ask state/ (nfs4_open.c) */
};

/* A filehandle as a COMPOUND holds it: a pseudo-fs directory or an object of an export,
 * with the access the caller has there. */
enum nfs4_fh_kind { NFS4_FH_NONE = 0, NFS4_FH_PSEUDO, NFS4_FH_EXPORT };

struct nfs4_fh {
    enum nfs4_fh_kind kind;
    struct pseudo_node *node;        /* PSEUDO */
    struct export *ex;               /* EXPORT */
    const struct export_rule *rule;  /* EXPORT: the caller's rule */
    struct fs_cred cred;             /* EXPORT: squashed credential */
    struct fs_fh fh;                 /* EXPORT: backend handle */
    uint8_t wire[FH_WIRE_MAX];       /* the wire form (both kinds) */
    uint32_t wire_len;
};

/* Call a backend operation on the filehandle's export: NFS4_FS(fh, getattr, &fh->fh, &st). */
#define NFS4_FS(f, op, ...) ((f)->ex->ops->op((f)->ex->fs, __VA_ARGS__))

struct nfs4_compound {
    struct rpc_call *call;
    struct nfs4_server *srv;
    uint32_t minor;
    struct nfs4_fh cur, saved;
    /* 4.1 current stateid (RFC 8881 16.2.3.1.2) */
    bool have_cur_stateid;
    stateid4 cur_stateid;
    bool have_saved_stateid;
    stateid4 saved_stateid;
    /* 4.1: from SEQUENCE */
    struct state_session *session;
    struct state_client *client; /* borrowed from the session */
    struct state_slot *slot;
    bool cachethis;
    unsigned opindex;  /* 0-based index of the op running */
    unsigned nops;     /* ops in the request */
    struct state_principal principal;
    char principal_buf[4 + RPC_AUTHSYS_MAXNAME + 1]; /* "sys:UID", "gss:name@REALM", "none" */
    /* 4.0 seqid-mutating ops: set by the op so the engine caches its encoded result */
    struct state_owner *seqid_owner;
    uint32_t seqid;
    bool seqid_active;
    /* A replayed result (4.0 owner cache) or, with whole_replay, a whole replayed
     * COMPOUND reply (4.1 slot cache): malloc'd bytes the engine sends and frees. */
    void *replay;
    size_t replay_len;
    bool whole_replay;
    /* 4.1: the request bytes after SEQUENCE (its checksum tells false retries). */
    const uint8_t *after_sequence;
    /* 4.1: where the COMPOUND arguments start (ca_maxrequestsize) and the session's
     * ca_maxresponsesize (0: no session limit) */
    const uint8_t *args_start;
    uint32_t max_reply;
    uint8_t *reply_start;
    /* Direct encoders write here; they set direct_overflow when it filled up. */
    struct xdr_enc *enc;
    bool direct_overflow;
    /* The ops run so far changed nothing outside this request (SEQUENCE's slot aside),
     * so the request could run again from the start (nfs4_compound_requeue). */
    bool nothing_changed;
    /* Set by an op that wants the request run again on the blocking pool. */
    bool requeue;
};

/* An op that would have to wait for another host (e.g. a CB_GETATTR answer) asks for
 * the request to run again on the blocking pool, where waiting is allowed. True when it
 * may (on an event loop, 4.1+, nothing changed yet): the op then returns any error at
 * once and the engine drops the partial reply. */
bool nfs4_compound_requeue(struct nfs4_compound *c);

const char *nfs4_op_name(uint32_t opnum);
/* The COMPOUND procedure: the handler in nfs4_program (extern for the fuzz target). */
enum rpc_accept_status nfs4_proc_compound(struct rpc_call *call);

/* One op: its handler and what the engine checks before calling it. */
typedef nfsstat4 (*nfs4_op_fn)(struct nfs4_compound *c, nfs_argop4 *arg, nfs_resop4 *res);

enum nfs4_op_flags {
    NFS4_OP_NEED_FH = 1u << 0,        /* NOFILEHANDLE without a current filehandle */
    NFS4_OP_MIN_MINOR1 = 1u << 1,     /* new in 4.1: OP_ILLEGAL... no: NOTSUPP in 4.0 */
    NFS4_OP_MIN_MINOR2 = 1u << 2,     /* new in 4.2 */
    NFS4_OP_ONLY_MINOR0 = 1u << 3,    /* 4.0 only (NOTSUPP in 4.1+) */
    NFS4_OP_SESSION_FREE = 1u << 4,   /* 4.1: allowed as the only op without SEQUENCE */
    NFS4_OP_MODIFIES = 1u << 5,       /* refused on read-only exports / pseudo fs (ROFS) */
    NFS4_OP_BLOCKING = 1u << 6,       /* may wait on the disk (fsync): blocking pool */
    NFS4_OP_DIRECT = 1u << 7,         /* the handler encodes its own result on success */
};

struct nfs4_op_desc {
    const char *name;
    nfs4_op_fn fn;
    unsigned flags;
};

/* ---- nfs4_status.c ---- */
nfsstat4 nfs4_errno(int err);               /* 0 / -errno / errno -> nfsstat4 */
nfsstat4 nfs4_state_status(enum state_status st);

/* ---- nfs4_fh.c ---- */
/* Set fh from a wire handle (PUTFH): BADHANDLE, STALE, WRONGSEC/ACCESS per export rule. */
nfsstat4 nfs4_fh_from_wire(struct nfs4_compound *c, const uint8_t *wire, uint32_t len, struct nfs4_fh *out);
nfsstat4 nfs4_fh_set_root(struct nfs4_compound *c, struct nfs4_fh *out);
void nfs4_fh_set_pseudo(struct nfs4_compound *c, struct pseudo_node *n, struct nfs4_fh *out);
/* An object of the same export as `dir` by backend handle. */
void nfs4_fh_set_export(struct nfs4_compound *c, const struct nfs4_fh *dir, const struct fs_fh *fh,
                        struct nfs4_fh *out);
/* The export root of `ex` as seen by this caller (ACCESS when no rule). */
nfsstat4 nfs4_fh_set_export_root(struct nfs4_compound *c, struct export *ex, struct nfs4_fh *out);
nfsstat4 nfs4_fh_getattr(const struct nfs4_fh *f, struct stat *st);
bool nfs4_fh_is_export_root(const struct nfs4_fh *f);
bool nfs4_fh_read_only(const struct nfs4_fh *f);
/* Name checks of component4 arguments (RFC 8881 18.x: INVAL for empty, BADNAME for '/'
 * or NUL, NAMETOOLONG, INVAL for invalid UTF-8 (RFC 8881 14.3.1; 4.0 servers may say
 * BADCHAR, knfsd says INVAL), BADNAME for "." and "..". */
nfsstat4 nfs4_check_name(const component4 *name);
/* The file key of an object in state/ (its wire handle bytes). */
static inline const void *nfs4_file_key(const struct nfs4_fh *f, size_t *len)
{
    *len = f->wire_len;
    return f->wire;
}

/* ---- nfs4_attr_ops.c ---- */
struct nfs4_attr_src;
void nfs4_fh_attr_src(struct nfs4_compound *c, const struct nfs4_fh *f, const struct stat *st,
                        struct nfs4_attr_src *src);

/* ---- stateid helpers (nfs4_stateid.c) ---- */
static inline void nfs4_stateid_to_state(const stateid4 *in, struct state_stateid *out)
{
    out->seqid = in->seqid;
    memcpy(out->other, in->other, sizeof(out->other));
}
static inline void nfs4_stateid_from_state(const struct state_stateid *in, stateid4 *out)
{
    out->seqid = in->seqid;
    memcpy(out->other, in->other, sizeof(out->other));
}
/* Resolve a stateid argument: 4.1's "current stateid" replaced, special ones reported. */
nfsstat4 nfs4_stateid_resolve(struct nfs4_compound *c, const stateid4 *in, stateid4 *out);
void nfs4_set_current_stateid(struct nfs4_compound *c, const stateid4 *sid);
/* Look up a stateid argument: the 4.1 current stateid resolved, BAD_STATEID when it is
 * not for the current filehandle's file. *out referenced. */
nfsstat4 nfs4_stid_lookup(struct nfs4_compound *c, const stateid4 *in, unsigned types, unsigned flags,
                          struct state_stid **out);
/* 4.0: find the object, then start its owner's seqid (a replay sets c->replay: callers
 * check it), then compare the stateid's seqid. */
nfsstat4 nfs4_stid_lookup_seqid(struct nfs4_compound *c, const stateid4 *in, unsigned types, uint32_t seqid,
                                struct state_stid **out);
nfsstat4 nfs4_seqid_begin(struct nfs4_compound *c, struct state_owner *o, uint32_t seqid, bool is_open);
/* state_has_locks_fn callbacks (ctx = the nfs4_server) for CLOSE / RELEASE_LOCKOWNER. */
bool nfs4_lock_has_locks(void *ctx, struct lock_owner *lo, const void *file_key, size_t file_key_len);
bool nfs4_lock_free_locks(void *ctx, struct lock_owner *lo, const void *file_key, size_t file_key_len);

/* The client a state op acts for: the session's (4.1) or NULL (4.0, found by stateid). */
static inline struct state_client *nfs4_client(struct nfs4_compound *c)
{
    return c->client;
}

/* ---- nfs4_callback.c ---- */
/* The callback thread (CB_RECALL of delegations, CB_NULL probes of 4.0 callback paths,
 * through cb/). nfs4_cb_start initialises cb_lock/cb_cond and starts it (0 or -errno);
 * call it before serving requests. nfs4_cb_stop joins it after the callbacks in flight
 * completed or were cancelled (waits at most the callback timeout, 5 s, for a 4.1 call
 * on a still open connection); call it before state_server_destroy. nfs4_cb_kick wakes
 * it for new work (a no-op when it is not running). Wire the state layer with
 * state_params.work_ready = nfs4_cb_work_ready, work_ctx = srv, conn_hold / conn_release
 * = cb_conn_hold / cb_conn_release (cb/cb.h). */
int nfs4_cb_start(struct nfs4_server *srv);
void nfs4_cb_stop(struct nfs4_server *srv);
void nfs4_cb_kick(struct nfs4_server *srv);
void nfs4_cb_work_ready(void *srv);
/* Registers (once per connection; cheap to repeat) a close notification that calls
 * state_conn_dead(srv->state, conn), so state/ forgets a dead back channel. Call it for
 * every connection a SEQUENCE / CREATE_SESSION / BIND_CONN_TO_SESSION arrives on. The
 * notifications use srv->state: destroy the rpc server (which closes every connection)
 * before the state server. */
void nfs4_cb_conn_seen(struct nfs4_server *srv, struct rpc_conn *conn);
/* Where to call the client: 4.0 its SETCLIENTID address, 4.1+ its newest session with a
 * usable back channel (*session referenced: the caller puts it), called with the
 * credential the client chose (kept in *sec). False: no path. */
struct cb_target;
bool nfs4_cb_target(struct state_client *client, struct cb_target *t, struct state_session **session,
                    struct state_cb_sec *sec);

/* ---- the file as the lock space sees it (nfs4_lock.c) ---- */
/* Length of a 4.0/4.1 lock owner key prefix: the clientid. */
#define NFS4_LOCK_CLIENTID_LEN 8u
struct nfs4_lock_file {
    struct export *ex;
    struct fs_fh fh;
    uint8_t key[2 + FS_FH_MAX];
    struct lock_file_id id; /* key and ctx point into this struct */
};

/* ---- nfs4_lock_notify.c: CB_NOTIFY_LOCK for denied 4.1+ blocking locks ---- */
void nfs4_lock_notify_init(struct nfs4_server *srv);
/* LOCK was DENIED for a READW/WRITEW lock of owner lo on the current filehandle f. */
void nfs4_lock_notify_add(struct nfs4_compound *c, const struct nfs4_lock_file *f, enum lock_type type,
                          uint64_t start, uint64_t len, struct lock_owner *lo);
/* Callback thread: sends the notifications due and drops expired waiters. */
struct cb_service;
void nfs4_lock_notify_run(struct nfs4_server *srv, struct cb_service *cb);
/* After nfs4_cb_stop, before the lock space is destroyed. */
void nfs4_lock_notify_fini(struct nfs4_server *srv);

/* nfs4_dir.c: change_info4 from the attributes before a change and the object now. */
void nfs4_cinfo(const struct nfs4_fh *f, const struct stat *before, change_info4 *ci);

/* Op handlers (one file per area). */
#define NFS4_OP(name) nfsstat4 nfs4_op_##name(struct nfs4_compound *c, nfs_argop4 *arg, nfs_resop4 *res)
/* nfs4_fh.c */
NFS4_OP(putfh); NFS4_OP(putrootfh); NFS4_OP(putpubfh); NFS4_OP(getfh); NFS4_OP(savefh);
NFS4_OP(restorefh); NFS4_OP(lookup); NFS4_OP(lookupp); NFS4_OP(secinfo); NFS4_OP(secinfo_no_name);
/* nfs4_attr_ops.c */
NFS4_OP(getattr); NFS4_OP(setattr); NFS4_OP(verify); NFS4_OP(nverify); NFS4_OP(access);
/* nfs4_dir.c */
NFS4_OP(readdir); NFS4_OP(create); NFS4_OP(remove); NFS4_OP(rename); NFS4_OP(link); NFS4_OP(readlink);
/* nfs4_io.c */
NFS4_OP(read); NFS4_OP(write); NFS4_OP(commit); NFS4_OP(seek); NFS4_OP(allocate);
NFS4_OP(deallocate); NFS4_OP(read_plus);
/* nfs4_xattr.c (RFC 8276); nfs4_xattr_supported: the xattr_support attribute of f */
bool nfs4_xattr_supported(const struct nfs4_fh *f);
NFS4_OP(getxattr); NFS4_OP(setxattr); NFS4_OP(listxattrs); NFS4_OP(removexattr);
/* nfs4_open.c */
NFS4_OP(open); NFS4_OP(open_confirm); NFS4_OP(open_downgrade); NFS4_OP(close); NFS4_OP(openattr);
/* nfs4_lock.c */
NFS4_OP(lock); NFS4_OP(lockt); NFS4_OP(locku); NFS4_OP(release_lockowner);
/* nfs4_deleg_break.c: fs_watch_cb.held for the backends' open watchers */
bool nfs4_deleg_watch_held(void *ctx, const void *key, size_t keylen, bool recall);

/* nfs4_deleg.c */
NFS4_OP(delegreturn); NFS4_OP(delegpurge);
/* nfs4_client.c */
NFS4_OP(setclientid); NFS4_OP(setclientid_confirm); NFS4_OP(renew); NFS4_OP(exchange_id);
NFS4_OP(create_session); NFS4_OP(destroy_session); NFS4_OP(sequence); NFS4_OP(bind_conn_to_session);
NFS4_OP(destroy_clientid); NFS4_OP(reclaim_complete); NFS4_OP(backchannel_ctl); NFS4_OP(test_stateid); NFS4_OP(free_stateid);

#endif
