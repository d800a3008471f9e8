/*
 * Internal to rpc/ (server.c and backchannel.c): a server connection and a thread's
 * reply scratch. Nothing outside rpc/ includes this; they see struct rpc_conn as a
 * handle (svc.h, backchannel.h).
 */
#ifndef PEERNFS_RPC_CONN_H
#define PEERNFS_RPC_CONN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "rpc/backchannel.h"
#include "rpc/record.h"

enum ev_kind { EV_LISTENER, EV_CONN, EV_WAKE };

struct ev_tag {
    enum ev_kind kind;
};

/* Per-thread scratch: reply buffer and decode arena. */
struct worker {
    int index;
    uint8_t *reply;
    size_t reply_cap;
    uint8_t *arena;
    bool recyclable; /* reply buffers are max_reply-sized and may move to a send queue */
    bool blocking_pool; /* a thread of the blocking pool (may wait on the disk) */
    /* Reply batching: while a loop runs the requests of one read inline, their small
     * replies collect here and leave in one send() (see dispatch_jobs). */
    struct rpc_conn *batch_conn;
    uint8_t *batch;
    size_t batch_len;
};

struct outbuf;
struct bc_call;
struct close_note;

/* The server's back-channel state (backchannel.c): the timer that times calls out, and
 * counters. One thread, asleep unless calls are outstanding. */
struct bc_server {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    pthread_t thread;
    bool running, stop;
    struct rpc_conn *armed; /* connections with calls, each holding a reference */
    int64_t next_wake_ms;
    atomic_ullong next_conn_id;
    uint32_t xid_seed;
    atomic_ullong calls, replies, dropped;
};

struct rpc_conn {
    struct ev_tag tag;
    int fd;
    struct loop *loop;
    struct rpc_server *srv;
    atomic_uint refs;
    atomic_uint inflight;
    struct sockaddr_storage peer;
    socklen_t peer_len;
    struct rec_reader rr;
    struct rpc_conn *prev, *next; /* all connections, under srv->conns_mu */
    pthread_mutex_t send_mu; /* guards everything below, up to `udp` */
    struct outbuf *out_head, *out_tail;
    size_t out_bytes;
    uint32_t events; /* current epoll mask */
    bool read_paused;
    bool closed;
    bool udp; /* a datagram socket: every datagram is a record from its own peer */
    /* Back channel (backchannel.c). Off the request path: ordinary calls never take
     * bc_mu. Nothing here reaches the server once bc_down is set, so a handle may
     * outlive rpc_server_destroy. */
    struct bc_server *bcs;
    uint64_t id;
    atomic_uint bc_next_xid;
    pthread_mutex_t bc_mu;    /* guards the fields up to notify_cv */
    struct bc_call *bc_calls; /* awaiting their REPLY */
    struct close_note *notes;
    bool bc_down;             /* closed: no new calls or notifications */
    bool notifying;           /* notes are running on notify_thread */
    pthread_t notify_thread;
    pthread_cond_t notify_cv; /* notifying became false */
    /* under bcs->mu: on the timer's list while it may have calls to time out */
    bool bc_armed;
    struct rpc_conn *bc_armed_next;
};

/* server.c */
static inline void conn_get(struct rpc_conn *c) { atomic_fetch_add(&c->refs, 1); }
void conn_put(struct rpc_conn *c);
/* Send the record in w->reply (its first 4 bytes reserved for the record mark), whole,
 * without blocking: what the socket does not take is queued for the loop. */
void conn_send_record(struct rpc_conn *c, struct worker *w, size_t len,
                      const struct sockaddr_storage *to, socklen_t tolen);

/* backchannel.c: the server's lifecycle ... */
void bc_server_init(struct bc_server *b);
int bc_server_start(struct bc_server *b);
void bc_server_stop(struct bc_server *b); /* joins the timer */
void bc_server_fini(struct bc_server *b); /* after every connection closed */
/* ... a connection's ... */
void bc_conn_init(struct rpc_conn *c, struct bc_server *b);
void bc_conn_down(struct rpc_conn *c); /* closed: fail its calls, run its notifications */
void bc_conn_fini(struct rpc_conn *c); /* last reference gone */
/* ... and a REPLY record read on it; arena backs the results cursor during `done`. */
void bc_on_reply(struct rpc_conn *c, const struct rec_slice *rec, uint8_t *arena, size_t arena_size);

#endif
