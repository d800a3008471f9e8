/*
 * RPC service interface: what a program's procedure handlers see (RFC 5531).
 *
 * rpc/ reads a record, decodes the call header and credential, finds the procedure in
 * the program's static table and calls its handler with a struct rpc_call whose `args`
 * cursor is positioned at the procedure arguments (zero-copy into the received record,
 * which stays valid until the handler returns) and whose `res` cursor is positioned
 * after the accepted-reply header. The handler decodes its arguments, does the work,
 * encodes its results into `res`, and returns an accept status. rpc/ then sends the reply.
 */
#ifndef PEERNFS_RPC_SVC_H
#define PEERNFS_RPC_SVC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "xdr/xdr.h"

/* RFC 5531 numbers used by the service layer and by handlers. */
enum rpc_auth_flavor { RPC_AUTH_NONE = 0, RPC_AUTH_SYS = 1, RPC_AUTH_GSS = 6 };
/* RPCSEC_GSS services (RFC 2203 5): what protects a call's arguments and results. */
enum rpc_gss_service {
    RPC_GSS_SERVICE_NONE = 1,
    RPC_GSS_SERVICE_INTEGRITY = 2,
    RPC_GSS_SERVICE_PRIVACY = 3,
};
/* Pseudo-flavors naming a security choice as exports (sec=), MOUNT replies and SECINFO
 * list them (RFC 2623 2.2): AUTH_SYS, or Kerberos 5 with each RPCSEC_GSS service. */
enum rpc_pseudoflavor {
    RPC_PSEUDO_NONE = 0,
    RPC_PSEUDO_SYS = 1,
    RPC_PSEUDO_KRB5 = 390003,
    RPC_PSEUDO_KRB5I = 390004,
    RPC_PSEUDO_KRB5P = 390005,
};
enum rpc_accept_status {
    RPC_SUCCESS = 0,
    RPC_PROG_UNAVAIL = 1,
    RPC_PROG_MISMATCH = 2,
    RPC_PROC_UNAVAIL = 3,
    RPC_GARBAGE_ARGS = 4,
    RPC_SYSTEM_ERR = 5,
    /* not on the wire: the handler kept the call to reply later (rpc_call_complete) */
    RPC_DEFERRED = 1000,
    /* not on the wire: send no reply at all (e.g. a one-way *_MSG procedure) */
    RPC_NO_REPLY = 1001,
    /* not on the wire: reject with AUTH_ERROR / AUTH_TOOWEAK */
    RPC_AUTH_TOOWEAK = 1002,
    /* not on the wire: run the call again, from the start, on the blocking pool. Only
     * from a handler with call->on_blocking_pool false, and only before it changed
     * anything: for procedures whose need to block shows in their arguments (an NFSv4
     * COMPOUND holding a stable WRITE or a COMMIT). */
    RPC_REQUEUE_BLOCKING = 1003,
    /* not on the wire: only from rpc_call_cache_reply, returned on by the handler: the
     * call is a retransmission and rpc/ sends the reply cached for it */
    RPC_DRC_REPLAY = 1004,
};

#define RPC_AUTHSYS_MAXGIDS 16
#define RPC_AUTHSYS_MAXNAME 255

struct rpc_cred {
    uint32_t flavor;      /* RPC_AUTH_NONE, RPC_AUTH_SYS or RPC_AUTH_GSS */
    uint32_t gss_service; /* RPC_AUTH_GSS: enum rpc_gss_service (0 otherwise) */
    /* uid/gid/gids name a user: AUTH_SYS, or an RPCSEC_GSS principal that maps to a local
     * user (name@REALM through the Kerberos auth_to_local rules and the passwd database).
     * Without ids the caller is the export's anonymous user. */
    bool has_ids;
    uint32_t uid, gid;
    uint32_t ngids;
    uint32_t gids[RPC_AUTHSYS_MAXGIDS];
    /* AUTH_SYS: the machine name; RPC_AUTH_GSS: the client's principal (name@REALM) */
    uint32_t machinename_len;
    char machinename[RPC_AUTHSYS_MAXNAME + 1]; /* NUL-terminated copy */
};

/* The pseudo-flavor a call came with (RPC_PSEUDO_*): what an export's sec= list names. */
static inline uint32_t rpc_cred_pseudoflavor(const struct rpc_cred *c)
{
    if (c->flavor == RPC_AUTH_GSS)
        return RPC_PSEUDO_KRB5 - 1 + c->gss_service;
    return c->flavor;
}

struct rpc_conn;
struct rpc_server;
struct rpc_drc_state;

/*
 * The same contract serves a client's callback service (rpc_clnt_set_callback_program,
 * clnt.h): there conn is NULL, peer is the server, and rpc_call_defer() returns NULL.
 */
struct rpc_call {
    struct rpc_conn *conn; /* the connection it came on (backchannel.h: ids, callbacks) */
    const struct sockaddr *peer; /* the client's address (valid during the call) */
    socklen_t peer_len;
    uint32_t xid, prog, vers, proc;
    struct rpc_cred cred;
    struct xdr_dec args; /* its arena: scratch memory for decoded arrays (bounded) */
    struct xdr_enc res;  /* results go here; room for the largest reply (>= 1 MiB + 4 KiB) */
    void *prog_ctx;      /* the ctx given to rpc_server_add_program */
    int worker;          /* index of the thread running the handler (for per-thread caches) */
    bool on_blocking_pool; /* running on the blocking pool (see RPC_REQUEUE_BLOCKING) */
    struct rpc_drc_state *drc; /* rpc/'s own (rpc_call_cache_reply); NULL outside the server */
};

typedef enum rpc_accept_status (*rpc_proc_fn)(struct rpc_call *call);

enum rpc_proc_flags {
    /* May block on disk or on another host (COMMIT, stable WRITE, ...): run it on the
     * blocking pool so the connection's event loop keeps reading other requests. */
    RPC_PROC_BLOCKING = 1u << 0,
    /* Refuse AUTH_NONE callers with AUTH_TOOWEAK (all NFS procedures but NULL): AUTH_SYS
     * and RPCSEC_GSS pass. */
    RPC_PROC_NEED_AUTH_SYS = 1u << 1,
    /* Not idempotent (CREATE, REMOVE, ...): the reply goes to the duplicate request
     * cache, and a retransmission (same client address and port, xid, procedure and
     * arguments) gets it again instead of running twice; one that arrives while the
     * original still runs is dropped. Other procedures never touch the cache. */
    RPC_PROC_DRC = 1u << 2,
};

struct rpc_proc_desc {
    rpc_proc_fn fn; /* NULL: PROC_UNAVAIL */
    const char *name;
    unsigned flags;
};

struct rpc_version_desc {
    uint32_t vers;
    uint32_t nprocs;
    const struct rpc_proc_desc *procs; /* indexed by procedure number */
};

struct rpc_program_desc {
    uint32_t prog;
    const char *name;
    uint32_t nvers;
    const struct rpc_version_desc *versions;
};

/* Register a program on the server; ctx is handed to its handlers as call->prog_ctx.
 * One program number may be registered several times with disjoint version sets, each
 * with its own ctx (NFSv3 and NFSv4 are both program 100003 but separate modules);
 * PROG_MISMATCH then reports the lowest and highest version over all of them.
 * Returns 0, -EEXIST (a version already registered), -EINVAL (no versions, too many
 * programs, or the server started). Must be called before rpc_server_start. */
int rpc_server_add_program(struct rpc_server *srv, const struct rpc_program_desc *prog, void *ctx);

/*
 * Deferred replies: a handler that must wait (a blocked lock, a callback) keeps the call
 * with rpc_call_defer() and returns RPC_DEFERRED; later, from any thread,
 * rpc_deferred_reply() sends the answer (results encoded by `enc`, up to 64 KiB) on the
 * connection the call came in on, or rpc_deferred_drop() forgets it (the client will
 * retransmit or time out). Either frees the handle. Arguments decoded zero-copy are NOT
 * valid after the handler returns: copy what the later reply needs. Every deferred call
 * must be replied to or dropped before rpc_server_destroy().
 */
struct rpc_deferred;
struct rpc_deferred *rpc_call_defer(struct rpc_call *call);
int rpc_deferred_reply(struct rpc_deferred *d, enum rpc_accept_status st,
                       bool (*enc)(struct xdr_enc *x, const void *res), const void *res);
void rpc_deferred_drop(struct rpc_deferred *d);
/* The address the deferred call came from (to call the client back, for example). */
const struct sockaddr *rpc_deferred_peer(const struct rpc_deferred *d, socklen_t *len);

/*
 * The duplicate request cache for a procedure whose need shows only in its arguments (an
 * NFSv4.0 COMPOUND holding CREATE, OPEN, ...: RPC_PROC_DRC caches every call of a
 * procedure). Call it after decoding and before changing anything; at most once per
 * execution (a call run again on the blocking pool keeps what its first run got).
 * RPC_SUCCESS: go on, the reply will be cached. Anything else: the call is a
 * retransmission, answered from the cache (RPC_DRC_REPLAY) or still running elsewhere
 * (RPC_NO_REPLY); return that status at once, without encoding anything. Outside the
 * server (call->drc NULL, e.g. a client's callback service) it is always RPC_SUCCESS.
 */
enum rpc_accept_status rpc_call_cache_reply(struct rpc_call *call);

/* Address of the call's peer as text ("10.0.0.1" / "fe80::1"), for logs and exports. */
const char *rpc_call_peer_str(const struct rpc_call *call, char *buf, size_t len);

#endif
