/*
 * Server-side back channel: calls from the server to a client over the TCP connection the
 * client opened (RFC 8881 section 2.10.3.1: an NFSv4.1 session's back channel; CB_COMPOUND,
 * section 18.36 / 20). RFC 5531 messages carry their direction (mtype CALL = 0,
 * REPLY = 1), so one socket carries both: the server's reader hands CALL records to the
 * dispatch tables as always and matches REPLY records by xid to the calls made here.
 *
 * Handles. A struct rpc_conn is what a handler sees as call->conn. The NFSv4 layer keeps
 * one beyond the request (a session's back channel) with rpc_conn_get() and lets go with
 * rpc_conn_put(). The object stays valid as a handle for as long as a reference is held,
 * also after the socket closed and after rpc_server_destroy(): rpc_conn_call() then
 * fails with -ENOTCONN, rpc_conn_on_close() too, and the id and peer stay readable.
 *
 * Threads. Everything here may be called from any thread, including handlers, `done`
 * functions and close notifications. Nothing here blocks on the network: a call is
 * written with a non-blocking send under the connection's send lock (the same lock the
 * replies take, so a call and a reply never interleave inside one record) and what the
 * socket does not take is queued for the event loop. New calls must not be started
 * concurrently with rpc_server_destroy() (as for deferred replies); once it returned,
 * they fail with -ENOTCONN.
 */
#ifndef PEERNFS_RPC_BACKCHANNEL_H
#define PEERNFS_RPC_BACKCHANNEL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "rpc/svc.h"
#include "xdr/xdr.h"

/* Take / drop a reference to a connection (call->conn of a TCP call). */
struct rpc_conn *rpc_conn_get(struct rpc_conn *c);
void rpc_conn_put(struct rpc_conn *c);

/* A number naming the connection, unique for the server's lifetime (pointers may be
 * reused after a connection is freed; ids are not). Compare call->conn ids to know
 * whether two calls arrived on the same connection. */
uint64_t rpc_conn_id(const struct rpc_conn *c);
/* The client's address (len 0 for a UDP socket, which has no single peer). */
const struct sockaddr *rpc_conn_peer(const struct rpc_conn *c, socklen_t *len);
/* False once the connection closed (it never reopens). */
bool rpc_conn_connected(const struct rpc_conn *c);

/*
 * Completion of a back-channel call; runs exactly once per call rpc_conn_call()
 * accepted (returned 0), possibly before rpc_conn_call() returns and on another thread:
 *  - err 0: accepted with SUCCESS; `results` is positioned at the procedure results,
 *    zero-copy into the received record, with an arena (64 KiB) for decoded arrays.
 *    Both are valid only until `done` returns. Runs on an event-loop thread: keep it
 *    short and never block in it (hand slow work to another thread).
 *  - err -EPROTO: the client rejected the call (MSG_DENIED), did not accept it with
 *    SUCCESS (PROG_UNAVAIL, GARBAGE_ARGS, ...), or sent a malformed reply; results NULL.
 *  - err -ETIMEDOUT: no reply within timeout_ms (from the server's timer thread).
 *  - err -ECONNRESET: the connection closed first, or the server was destroyed (from the
 *    thread that saw the close).
 */
typedef void (*rpc_conn_done_fn)(void *ctx, int err, struct xdr_dec *results);

/*
 * Call prog/vers/proc on the client at the other end of c, with a fresh xid; the
 * arguments are encoded by enc(args) (enc may be NULL for none) before this returns, so
 * args need not outlive the call. cred: NULL or AUTH_NONE, or AUTH_SYS. The caller
 * needs a reference to c only until this returns; c stays valid while done runs.
 * Returns 0 (done will run), or without calling done: -ENOTCONN (closed), -EOPNOTSUPP
 * (a UDP socket), -EMSGSIZE (arguments over ~1 MiB), -ENOMEM, -EINVAL.
 */
int rpc_conn_call(struct rpc_conn *c, uint32_t prog, uint32_t vers, uint32_t proc,
                  const struct rpc_cred *cred, bool (*enc)(struct xdr_enc *x, const void *args),
                  const void *args, unsigned timeout_ms, rpc_conn_done_fn done, void *ctx);

/*
 * Close notification: fn(ctx, c) runs once when the connection closes (the peer went
 * away, a read error, or the server shut down), after the outstanding calls got their
 * -ECONNRESET, on the thread that closed it; c is valid during fn. Use it to mark a
 * session's back channel down. Several may be registered. Returns 0, -ENOTCONN when
 * already closed (fn will not run), -ENOMEM.
 */
typedef void (*rpc_conn_close_fn)(void *ctx, struct rpc_conn *c);
int rpc_conn_on_close(struct rpc_conn *c, rpc_conn_close_fn fn, void *ctx);
/* Undo a registration (the first with this fn and ctx) before ctx goes away. Returns 0
 * when it was still registered (fn will not run); -ENOENT when it has run or none matches.
 * When the notifications are running on another thread, waits until they finished, so
 * ctx may be freed after this returns (from inside a notification it does not wait). */
int rpc_conn_cancel_on_close(struct rpc_conn *c, rpc_conn_close_fn fn, void *ctx);

#endif
