/*
 * The NFSv4 callback client (design.md "cb/"): CB_NULL and CB_COMPOUND (RFC 7530
 * section 16 for 4.0, RFC 8881 sections 18.36 / 20 for 4.1 and later) from the server
 * to a client.
 *
 * Paths. A 4.1+ client is called over its session's back channel, the TCP connection
 * it opened (rpc_conn_call, RFC 8881 2.10.3.1); every CB_COMPOUND starts with
 * CB_SEQUENCE on a back-channel slot of that session (state_cb_slot_get/put). A 4.0
 * client is called on a connection of our own to the address it gave in SETCLIENTID
 * (netid "tcp"/"tcp6" + universal address, RFC 5665 / RFC 5531); one connection per
 * address is kept and reused, and dropped when a call on it fails.
 *
 * Threads. A cb_service owns one thread that runs every call's state machine: it waits
 * for back slots, connects (non-blocking, with a short timeout), retries NFS4ERR_DELAY
 * answers with a doubling backoff, marks broken paths down and runs the completions.
 * The rpc event-loop and reader threads only decode a reply and hand the call back to
 * it, so nothing here blocks them. cb_* submissions may come from any thread.
 *
 * Security: callbacks carry what the target says (cb_target.sec: the client's choice
 * from csa_sec_parms / BACKCHANNEL_CTL, AUTH_NONE or AUTH_SYS with its uid, gid and
 * machine name), else AUTH_SYS uid 0 / gid 0, machine name "peernfsd".
 */
#ifndef PEERNFS_CB_H
#define PEERNFS_CB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "rpc/backchannel.h"
#include "state/state.h"
#include "xdr/nfs4_xdr.h"

#define CB_MACHINE_NAME "peernfsd"
#define CB_PROG_VERS 1u      /* NFS_CB, both for 4.0 and 4.1+ */
#define CB_PROC_NULL 0u
#define CB_PROC_COMPOUND 1u
#define CB_MAX_OPS 8u        /* ops of one CB_COMPOUND we send, CB_SEQUENCE excluded */

struct cb_service;

struct cb_config {
    unsigned call_timeout_ms;    /* one CB_NULL / CB_COMPOUND round trip; 0 = 5000 */
    unsigned connect_timeout_ms; /* 4.0 connection set-up; 0 = 2000 */
    unsigned delay_retries;      /* NFS4ERR_DELAY answers retried; 0 = 3 */
    unsigned delay_backoff_ms;   /* first wait before such a retry, doubling; 0 = 100 */
    unsigned slot_wait_ms;       /* waiting for a free back slot; 0 = call_timeout_ms */
    unsigned max_conns;          /* cached 4.0 connections; 0 = 256 */
    unsigned idle_ms;            /* an unused 4.0 connection is closed after; 0 = 300000 */
};

/* Starts the service thread. NULL with *err = -errno on failure. */
struct cb_service *cb_service_new(const struct cb_config *cfg, int *err);
/* Stops taking calls, fails the ones not yet sent with -ECANCELED, closes the 4.0
 * connections (their calls fail with -ECONNRESET/-ECANCELED) and waits for back-channel
 * calls in flight to complete (at most call_timeout_ms; at once when the rpc server is
 * gone). Every completion has run when this returns. */
void cb_service_destroy(struct cb_service *svc);

/* Where a callback goes. */
struct cb_target {
    uint32_t minorversion;          /* 0: info below; 1, 2: session */
    const struct state_cb_sec *sec; /* NULL: AUTH_SYS as root of "peernfsd"; read by the
                                       submitting call only */
    struct state_session *session;  /* 4.1+: borrowed; a call takes its own reference */
    struct state_cb_info info;      /* 4.0: program, callback_ident, netid, universal address */
};

/* How a call ended. */
struct cb_result {
    /* 0: the client answered and the reply decoded (status says how it went);
     * -ENOTCONN: no back channel (4.1) / -ECONNREFUSED, -EHOSTUNREACH ...: no connection
     * (4.0); -ETIMEDOUT, -ECONNRESET: no answer; -EPROTO: the RPC was refused (no such
     * program, auth, garbage args); -EBADMSG: undecodable reply or a CB_SEQUENCE that
     * does not match ours; -EBUSY: no back slot came free in time; -EINVAL: an unusable
     * 4.0 address; -ECANCELED: the service stopped; -ENOMEM. */
    int err;
    nfsstat4 status;     /* err 0: the CB_COMPOUND status (NFS4_OK for CB_NULL) */
    bool path_failed;    /* the callback path is broken: 4.1: the session's back channel was
                            marked down (state_session_cb_path_down); 4.0: the connection
                            was dropped. The caller decides what that means for its state. */
    bool has_attrs;      /* CB_GETATTR answered NFS4_OK with both change and size: */
    uint64_t change, size;
};

/* Runs exactly once for every accepted call, on the service thread. It may submit new
 * calls; it must not destroy the service. */
typedef void (*cb_done_fn)(void *ctx, const struct cb_result *res);

/*
 * Sends CB_COMPOUND(ops) (4.1+: CB_SEQUENCE first, added here) to the target. The ops'
 * arguments are encoded before this returns (nothing needs to outlive the call).
 * Returns 0 (done will run), or without calling done: -EINVAL (no ops, more than
 * CB_MAX_OPS, an op that does not encode, no session for 4.1), -ENOMEM, -ECANCELED
 * (the service is stopping).
 */
int cb_compound(struct cb_service *svc, const struct cb_target *t, const nfs_cb_argop4 *ops,
                unsigned nops, cb_done_fn done, void *ctx);

/* CB_NULL: a 4.0 probe of the callback address (also works over a 4.1 back channel). */
int cb_null(struct cb_service *svc, const struct cb_target *t, cb_done_fn done, void *ctx);

/* CB_RECALL (RFC 7530 16.2, RFC 8881 20.2): give back the delegation `stateid` on the
 * file with filehandle fh (1..NFS4_FHSIZE bytes); truncate: the file is being truncated
 * to zero. */
int cb_recall(struct cb_service *svc, const struct cb_target *t, const struct state_stateid *stateid,
              bool truncate, const void *fh, size_t fh_len, cb_done_fn done, void *ctx);

/* CB_GETATTR (RFC 8881 20.1, RFC 7530 16.2.3... for 4.0): the holder of a write delegation
 * on fh reports the file's change and size (cb_result.has_attrs, change, size). */
int cb_getattr(struct cb_service *svc, const struct cb_target *t, const void *fh, size_t fh_len,
               cb_done_fn done, void *ctx);
/* CB_RECALL_ANY (RFC 8881 20.6, 4.1+): keep at most objects_to_keep of the kinds in
 * type_mask (bit numbers RCA4_TYPE_MASK_*, below 32). */
int cb_recall_any(struct cb_service *svc, const struct cb_target *t, uint32_t objects_to_keep,
                  uint32_t type_mask, cb_done_fn done, void *ctx);

/* CB_NOTIFY_LOCK (RFC 8881 20.11, 4.1+): the lock a blocked locker (clientid + owner
 * bytes) waits for on file fh may now be available. */
int cb_notify_lock(struct cb_service *svc, const struct cb_target *t, const void *fh, size_t fh_len,
                   uint64_t clientid, const void *owner, size_t owner_len, cb_done_fn done, void *ctx);

/* Counters (tests, statistics). */
struct cb_stats {
    uint64_t calls, replies, failures, delay_retries, slot_waits, connects, connect_failures;
    unsigned conns; /* cached 4.0 connections */
};
void cb_service_stats(struct cb_service *svc, struct cb_stats *out);

/* ---- helpers, exported for nfs4/, tests and the fuzz target ---- */

/* state_params.conn_hold / conn_release for back-channel connections: the state layer
 * then keeps a reference on every struct rpc_conn it holds (rpc_conn_get / _put). */
void cb_conn_hold(void *conn);
void cb_conn_release(void *conn);

/* Universal address (RFC 5665 section 5.2.3.x): netid "tcp" with "h1.h2.h3.h4.p1.p2" or
 * "tcp6" with an IPv6 address followed by ".p1.p2". False for anything else (other
 * netids, port 0, junk). */
bool cb_uaddr_parse(const char *netid, const char *uaddr, struct sockaddr_storage *out,
                    socklen_t *out_len);

/* A CB_COMPOUND4res as we need it. */
struct cb_reply {
    nfsstat4 status;          /* the CB_COMPOUND status */
    uint32_t nres;            /* results returned */
    bool has_seq;             /* the first result is CB_SEQUENCE's */
    nfsstat4 seq_status;
    CB_SEQUENCE4resok seq;    /* when has_seq && seq_status == NFS4_OK */
    uint32_t last_op;         /* op number of the last result (0 when none) */
    nfsstat4 last_status;
    bool has_attrs;           /* a CB_GETATTR result with change and size */
    uint64_t change, size;
};

/* Decodes a CB_COMPOUND4res answering ops[0..nops) (their op numbers, CB_SEQUENCE
 * included when sent): at most nops results, each for the op sent at its position (or
 * CB_ILLEGAL). Lenient where clients differ harmlessly: a COMPOUND status of NFS4_OK
 * with a failed last result reads as that result's status. Bounded: nothing is
 * allocated beyond a small local arena. False = a malformed reply. */
bool cb_reply_decode(struct xdr_dec *x, const uint32_t *ops, unsigned nops, struct cb_reply *out);

/* Encodes CB_COMPOUND4args: tag "", minorversion, callback_ident, then (when seq is not
 * NULL) CB_SEQUENCE and the already-encoded ops (nops of them, ops_len bytes). */
bool cb_encode_compound(struct xdr_enc *x, uint32_t minorversion, uint32_t callback_ident,
                        const CB_SEQUENCE4args *seq, const uint8_t *ops, size_t ops_len, uint32_t nops);

#endif
