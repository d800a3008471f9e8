/*
 * RPC server: TCP and UDP listeners (IPv4 and IPv6), connections and request dispatch.
 *
 * Threads. `nloops` event-loop threads each own an epoll set; every connection belongs
 * to one loop, which reads it and reassembles records. A request is normally executed
 * right on that loop thread (no hand-off on the fast path); when one read yields several
 * requests and another loop is idle, the extra requests are handed to it, so one busy
 * connection keeps all cores working. Procedures flagged RPC_PROC_BLOCKING (fsync and
 * the like) run on a separate pool so they never stall a loop. Replies are written by
 * the thread that executed the request, under the connection's send lock, straight from
 * that thread's reply buffer; only what the socket does not take at once is copied and
 * queued for the loop to flush. Replies may go out in any order.
 *
 * The server also calls clients back on their own connections (backchannel.h): REPLY
 * records are matched to those calls on the loop thread that reads them, and one timer
 * thread, asleep unless such calls are outstanding, times them out.
 */
#ifndef PEERNFS_RPC_SERVER_H
#define PEERNFS_RPC_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "rpc/svc.h"

struct rpc_server_config {
    unsigned nloops;        /* event-loop threads (default: CPUs) */
    unsigned npool;         /* blocking-pool threads (default 8) */
    size_t max_record;      /* largest request record accepted */
    size_t max_reply;       /* size of each thread's reply buffer */
    unsigned max_inflight;  /* requests in progress per connection before reading pauses */
    /* duplicate request cache (RPC_PROC_DRC, rpc_call_cache_reply): bytes and entries
     * kept (defaults 16 MiB, 8192) */
    size_t drc_max_bytes;
    unsigned drc_max_entries;
};

struct rpc_server *rpc_server_new(const struct rpc_server_config *cfg);
/* Listen on addr; type SOCK_STREAM (TCP) or SOCK_DGRAM (UDP). Port 0 = ephemeral;
 * rpc_server_port() tells the last one bound. */
int rpc_server_listen(struct rpc_server *srv, const struct sockaddr *addr, socklen_t len, int type);
int rpc_server_listen_str(struct rpc_server *srv, const char *host, uint16_t port, int type);
uint16_t rpc_server_port(const struct rpc_server *srv);
int rpc_server_start(struct rpc_server *srv);
/* Ask every thread to finish; returns at once (signal-safe). */
void rpc_server_stop(struct rpc_server *srv);
/* Wait for the threads after rpc_server_stop, close everything, free the server. */
void rpc_server_destroy(struct rpc_server *srv);

/* Counters for tests and the log. */
struct rpc_server_stats {
    uint64_t calls, replies, handoffs, pooled, garbage, rejected, conns_accepted, conns_closed;
    /* back channel (backchannel.h): calls made, replies matched, replies dropped
     * (unknown xid, or on a UDP socket) */
    uint64_t backchannel_calls, backchannel_replies, backchannel_dropped;
    /* duplicate request cache: retransmissions answered from it, retransmissions of a
     * call still running (dropped), replies stored, entries evicted (room or age) */
    uint64_t drc_hits, drc_in_progress, drc_inserts, drc_evictions;
};
void rpc_server_get_stats(struct rpc_server *srv, struct rpc_server_stats *st);

/* RPCSEC_GSS (Kerberos) contexts are accepted with the keys of this keytab instead of
 * the default one (KRB5_KTNAME, else /etc/krb5.keytab). Process-wide; 0 or -EINVAL. */
int rpc_gss_set_keytab(const char *path);
/* Called before a context is accepted, on the thread that accepts it: puts back the
 * process's own identity where handlers switch the thread's file-system ids to the
 * caller's (fs_posix_thread_reset), so the keytab and replay cache, readable by the
 * server only, can be opened. Set once before rpc_server_start. */
void rpc_gss_set_thread_reset(void (*reset)(void));
/* Can a context be accepted at all (some key in the keytab)? false with a reason. */
bool rpc_gss_acceptor_ready(char *why, size_t len);

#endif
