/*
 * RPC client over a stream socket (TCP or AF_LOCAL): thread-safe, many callers on one
 * connection, replies matched to calls by xid, per-call timeouts, blocking and
 * asynchronous (completion callback) calls. A reader thread receives the replies.
 * Used to register with rpcbind, for callbacks and by the client library.
 *
 * The connection also carries calls the other way (RFC 5531 mtype CALL = 0 arriving at
 * the client): an NFSv4.1 server sends CB_COMPOUND over the session's back channel,
 * which is the connection the client opened (RFC 8881 section 2.10.3.1). The reader
 * tells them from replies by the message direction and hands them to the callback
 * service registered with rpc_clnt_set_callback_program().
 */
#ifndef PEERNFS_RPC_CLNT_H
#define PEERNFS_RPC_CLNT_H

#include <stdint.h>
#include <sys/socket.h>

#include "rpc/msg.h"
#include "rpc/svc.h"
#include "xdr/xdr.h"

struct rpc_clnt;
struct rbuf;

struct rpc_clnt *rpc_clnt_connect(const struct sockaddr *sa, socklen_t len, int timeout_ms,
                                  int *err);
struct rpc_clnt *rpc_clnt_connect_unix(const char *path, int *err);
/* Take over an already connected stream socket (e.g. one bound to a reserved port). */
struct rpc_clnt *rpc_clnt_connect_fd(int fd, int *err);
/* Fails outstanding calls with -ECANCELED (their callbacks run) and frees the client. */
void rpc_clnt_destroy(struct rpc_clnt *c);

typedef bool (*rpc_xdr_enc_fn)(struct xdr_enc *x, const void *args);

/* A received reply; `res` is positioned at the results of an accepted SUCCESS. buf
 * points into the receive buffer the reply arrived in (rb holds a reference to it), so
 * zero-copy decoded data stays valid until rpc_reply_free. Moving the struct moves the
 * ownership. */
struct rpc_reply {
    uint8_t *buf;
    size_t len;
    struct rbuf *rb; /* NULL: buf is malloc'd */
    struct rpc_reply_info info;
    struct xdr_dec res;
};
void rpc_reply_free(struct rpc_reply *rep);

/* Blocking call. Returns 0 (accepted, SUCCESS; decode rep->res, then rpc_reply_free),
 * -EPROTO (denied or not SUCCESS: see rep->info; rep still needs rpc_reply_free),
 * -ETIMEDOUT, -ECONNRESET, -ENOMEM, -EMSGSIZE. cred NULL = AUTH_NONE. */
int rpc_clnt_call(struct rpc_clnt *c, uint32_t prog, uint32_t vers, uint32_t proc,
                  const struct rpc_cred *cred, rpc_xdr_enc_fn enc, const void *args,
                  int timeout_ms, struct rpc_reply *rep);

/* Completion: status as for rpc_clnt_call; rep is valid for status 0/-EPROTO and the
 * callback owns it (rpc_reply_free). Runs on the client's reader thread: keep it short. */
typedef void (*rpc_clnt_done_fn)(void *arg, int status, struct rpc_reply *rep);
int rpc_clnt_call_async(struct rpc_clnt *c, uint32_t prog, uint32_t vers, uint32_t proc,
                        const struct rpc_cred *cred, rpc_xdr_enc_fn enc, const void *args,
                        int timeout_ms, rpc_clnt_done_fn done, void *arg);

/* As rpc_clnt_call_async, for arguments that end in a variable-length opaque (a WRITE's
 * data) whose bytes go out from `payload` instead of being copied into the encoded call:
 * enc encodes the arguments with that opaque empty, so its length word is the last
 * thing encoded, and the call carries payload_len bytes (and XDR padding) there.
 * payload is sent (the kernel has copied it) before the call returns. -EINVAL when the
 * encoding does not end in an empty opaque. */
int rpc_clnt_call_async_payload(struct rpc_clnt *c, uint32_t prog, uint32_t vers,
                                uint32_t proc, const struct rpc_cred *cred, rpc_xdr_enc_fn enc,
                                const void *args, const void *payload, uint32_t payload_len,
                                int timeout_ms, rpc_clnt_done_fn done, void *arg);

/*
 * Serve `prog` (all its versions) to calls the server makes on this connection. Its
 * handlers follow the server's contract (svc.h, struct rpc_call) except that call->conn
 * is NULL, call->peer is the server's address, call->prog_ctx is ctx, and calls cannot
 * be deferred (rpc_call_defer returns NULL; RPC_DEFERRED sends no reply). Results get
 * ~1 MiB, the argument arena 64 KiB. The reply goes back on this connection.
 *
 * Threads: handlers run on CLNT_CB_WORKERS (2) worker threads of this client, never on
 * the reader, so a handler may block, including in a forward rpc_clnt_call() on this
 * same client (the reader keeps delivering its reply); two handlers may run at once.
 * Calls wait in a bounded queue (256); beyond it they are dropped and the server times
 * them out. Calls for other programs, or any call before a program is registered, get
 * PROG_UNAVAIL. Register once, right after connecting; ctx must stay valid until
 * rpc_clnt_destroy(), which waits for running handlers (so a handler must not destroy
 * its own client; a handler blocked in a forward call is released with -ECONNRESET).
 * Returns 0, -EBUSY (already registered), -EINVAL, or -errno (no worker could start).
 */
int rpc_clnt_set_callback_program(struct rpc_clnt *c, const struct rpc_program_desc *prog,
                                  void *ctx);

#endif
