/*
 * Inside the NFSv4.x client: the state one client instance keeps (connection,
 * session, client id, open / lock state per file) and what nfs4_client.c (COMPOUNDs,
 * requests, the ops vector) and nfs4_recover.c (the state manager thread: lease
 * renewal, delegation returns, and recovery after a lost connection or a server
 * restart) share.
 *
 * NFSv4.0 (minor 0) uses the same machinery without a session: no SEQUENCE (op[0] of
 * a v4_args stays unused and is not sent), SETCLIENTID instead of EXCHANGE_ID +
 * CREATE_SESSION, RENEW for the lease, and owner seqids (nfs4_v40.h) in OPEN / CLOSE /
 * LOCK / LOCKU, whose exchanges one thread at a time runs (owners_busy).
 *
 * Locking: nfs4_state.mu guards everything below it in the struct, the reference counts
 * of connections and sessions, and the v4_file list; it is never held across an RPC.
 *
 * Lifetimes: a connection (v4_conn) and a session (v4_session) are referenced by the
 * state (the current ones) and by each request using them; a replaced one lives on
 * until its last request let go. A connection is only ever destroyed by the state
 * manager (or unmount), never where a request lets go of it: that may be the
 * connection's own reader thread, which rpc_clnt_destroy joins.
 */
#ifndef PEERNFS_CLIENT_NFS4_STATE_H
#define PEERNFS_CLIENT_NFS4_STATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "client/nfs4_cb.h"
#include "client/nfs4_lockset.h"
#include "client/nfs4_slots.h"
#include "client/nfs4_v40.h"
#include "client/nfs_client_impl.h"
#include "xdr/nfs4_xdr.h"

#define V4_MAXOPS 20
#define V4_ARENA_DEFAULT (64u * 1024)
#define V4_FORE_SLOTS 64
#define V4_BACK_SLOTS 4
/* How long a request keeps trying through reconnects, recoveries and the grace period
 * before it fails (the Linux client retries forever on a hard mount; a library call
 * must come back some time). */
#define V4_RECOVERY_MS (120 * 1000)
#define V4_GRACE_RETRY_MS 1000 /* NFS4ERR_GRACE: ask again after this long */

/* What recovery has to redo (RFC 8881 2.10.13, 8.4.2): bits of nfs4_state.recov_need. */
enum {
    RECOV_CONN = 1,    /* the connection is gone: reconnect + BIND_CONN_TO_SESSION */
    RECOV_SESSION = 2, /* BADSESSION / DEADSESSION: CREATE_SESSION */
    RECOV_CLIENT = 4,  /* STALE_CLIENTID (server restart): EXCHANGE_ID, reclaim */
};

/* The state of one file handle this client opened or holds a delegation for. */
struct v4_file {
    struct v4_file *next;
    struct nfs_fh fh;
    unsigned refs; /* nfs_files open on it */
    bool have_open, have_lock;
    bool lost;              /* a reclaim failed: I/O with this file's state fails (-EIO) */
    uint32_t share_access;  /* OPEN4_SHARE_ACCESS_* of the open, for its reclaim */
    stateid4 open_sid, lock_sid;
    struct nfs4_lockset locks; /* what the lock owner holds here, for reclaims */
    uint32_t deleg_type;    /* OPEN_DELEGATE_NONE / READ / WRITE */
    stateid4 deleg_sid;
};

struct v4_recall {
    struct v4_recall *next;
    struct nfs_fh fh;
    stateid4 sid;
};

struct v4_user_cb {
    nfs_callback_fn fn;
    void *ctx;
};

struct v4_conn {
    struct v4_conn *next; /* on nfs4_state.dead_conns once unreferenced and replaced */
    struct rpc_clnt *rpc;
    unsigned refs;
    uint64_t gen; /* nfs4_state.conn_gen when it became the current one */
};

struct v4_session {
    sessionid4 id;
    struct nfs4_slot_table slots;
    unsigned refs;
    uint64_t gen;
};

struct v4_io; /* an asynchronous request (nfs4_client.c) */

struct nfs4_state {
    uint32_t minor;
    bool have_clientid;
    clientid4 clientid;
    uint32_t cs_seq; /* csa_sequence of the next CREATE_SESSION */
    uint32_t maxops;
    struct nfs4_cb_service cb;
    struct v4_user_cb user_cb[NFS4_CB_OP_MAX];
    char ownerid[300];
    verifier4 verifier; /* co_verifier: one per instance, so a restarted server knows us */
    char open_owner[48], lock_owner[48];

    pthread_mutex_t mu;
    pthread_cond_t cv;       /* wakes the state manager */
    pthread_cond_t recov_cv; /* a recovery attempt finished */
    struct v4_conn *conn;    /* the current connection (never NULL once mounted) */
    struct v4_conn *dead_conns;
    struct v4_session *sess; /* the current session (NULL until CREATE_SESSION) */
    /* Generations of the connection, session and state (stateids, client id): a request
     * reporting a failure names the generation it used, so a failure of something
     * already replaced (or reported: *_broken) asks for no second recovery. */
    uint64_t conn_gen, sess_gen, state_epoch;
    bool conn_broken, sess_broken, client_broken;
    unsigned recov_need;     /* RECOV_* bits still to do */
    bool recovering;         /* the state manager is at it */
    uint64_t recov_gen;      /* recovery attempts finished */
    int recov_status;        /* of the last one */
    struct v4_io *retries;   /* asynchronous requests waiting to go out again */
    struct v4_file *files;
    struct v4_recall *recalls;
    bool thread_started, stopping;
    pthread_t thread;
    uint32_t lease_s;
    struct timespec last_send; /* 4.0: of the last COMPOUND that renewed the lease */
    struct nfs_client_stats stats;
    /* 4.0: the next seqid of each owner, and whether a thread is in the middle of an
     * exchange using them (nfs4c_owners_begin); owners_cv wakes those waiting for it */
    uint32_t seqid_next[NFS4_OWNERS];
    bool seqid_uncertain[NFS4_OWNERS]; /* nfs4_seqid_assume: a request was given up on */
    bool owners_busy;
    pthread_cond_t owners_cv;
};

/* A COMPOUND being built: op[0] is SEQUENCE, filled when a slot is taken (4.1+; with
 * 4.0 it stays unused and the COMPOUND starts at op[1]). */
struct v4_args {
    uint32_t n;
    nfs_argop4 op[V4_MAXOPS];
    uint32_t bm[V4_MAXOPS][2]; /* bitmap words of GETATTR / READDIR ops */
};

struct v4_reply {
    struct rpc_reply rep;
    void *arena_mem;
    COMPOUND4res res;
    uint32_t next; /* index of the next result to take */
};

/* One request through its retries: the slot it holds (kept across a reconnect, so a
 * retransmission reaches the server's reply cache), the connection it went out on, and
 * the state epoch its stateids belong to. */
struct v4_req {
    struct v4_args *a;
    size_t arena;
    struct v4_conn *conn;
    struct v4_session *sess; /* held with the slot */
    uint64_t conn_gen, sess_gen; /* of the last transmission */
    uint32_t slot;
    bool have_slot;
    bool sm;        /* sent by the state manager (or unmount): never waits for recovery */
    uint64_t epoch; /* state_epoch of the stateids in a */
    int64_t start_ms;
    unsigned delay_ms, waited_ms, misordered, stale;
    unsigned wait_ms; /* V4_WAIT: how long */
    bool unanswered; /* 4.0: the last transmission got no reply the server surely sent */
};

/* ---- nfs4_client.c ---- */
int64_t nfs4c_now_ms(void);
nfs_argop4 *nfs4c_add_op(struct v4_args *a, nfs_opnum4 op);
void nfs4c_add_putfh(struct v4_args *a, const struct nfs_fh *fh);
void nfs4c_reply_free(struct v4_reply *r);
const nfs_resop4 *nfs4c_next(struct v4_reply *r, nfs_opnum4 op);
/* A COMPOUND with SEQUENCE, retried through DELAY / GRACE / recovery (see there). */
int nfs4c_call(struct nfs_client *c, struct v4_args *a, struct v4_reply *r);
int nfs4c_call_status(struct nfs_client *c, struct v4_args *a);
/* One COMPOUND without SEQUENCE on the current connection, no retries. */
int nfs4c_call_nosession(struct nfs_client *c, nfs_argop4 *ops, uint32_t n, struct v4_reply *r);
/* The COMPOUND that renews the lease when nothing else did: SEQUENCE alone (4.1+) or
 * RENEW (4.0). mu held. */
void nfs4c_add_lease_renewal_locked(struct nfs4_state *v4, struct v4_args *a);
/* 4.0: wait (bounded) until no other thread runs a seqid-mutating exchange, and own
 * the seqids until nfs4c_owners_end: OPEN + its OPEN_CONFIRM, or LOCKU + CLOSE, go
 * out without another op of the owners in between. 0 (at once for 4.1+ and on the
 * state manager, whose reclaims run while every other request waits for the
 * recovery), -ETIMEDOUT or -ECANCELED (unmount). */
int nfs4c_owners_begin(struct nfs_client *c);
void nfs4c_owners_end(struct nfs_client *c);
/* 4.0: OPEN_CONFIRM of an OPEN whose result flags ask for it (RFC 7530 16.18), with
 * the open stateid in *sid, which becomes the confirmed one. 0 when none was needed. */
int nfs4c_open_confirm(struct nfs_client *c, const struct nfs_fh *fh, uint32_t rflags,
                       stateid4 *sid);
struct v4_file *nfs4c_file_find(struct nfs4_state *v4, const struct nfs_fh *fh);
void nfs4c_file_drop_if_idle(struct nfs4_state *v4, struct v4_file *f);
void nfs4c_lock_args(struct nfs4_state *v4, LOCK4args *l, bool write, uint64_t off, uint64_t len,
                     bool reclaim, bool have_lock, const stateid4 *open_sid,
                     const stateid4 *lock_sid);
/* The state manager's part of the asynchronous requests: send those that are due
 * (when no recovery is pending); *next_ms = when the next one is (INT64_MAX: none).
 * Called with mu held (dropped while sending). */
void nfs4c_retries_run_locked(struct nfs_client *c, int64_t *next_ms);
/* Fail every queued request (unmount), or those waiting for a recovery that failed. */
void nfs4c_retries_fail_locked(struct nfs_client *c, int st, bool only_recovery);

/* ---- nfs4_recover.c ---- */
struct v4_conn *nfs4c_conn_new(struct rpc_clnt *rpc);
struct v4_conn *nfs4c_conn_get_locked(struct nfs4_state *v4);
void nfs4c_conn_put_locked(struct nfs4_state *v4, struct v4_conn *k);
void nfs4c_conn_put(struct nfs4_state *v4, struct v4_conn *k);
struct v4_session *nfs4c_sess_get_locked(struct nfs4_state *v4);
void nfs4c_sess_put(struct nfs4_state *v4, struct v4_session *s);
/* EXCHANGE_ID (same owner and verifier every time); CREATE_SESSION on the current
 * connection with the back channel, making it the current session. */
int nfs4c_exchange_id(struct nfs_client *c, uint32_t *flags);
/* 4.0: SETCLIENTID (the same id and verifier every time; a callback address no server
 * can reach: nfs4_uaddr_port0) + SETCLIENTID_CONFIRM; sets the client id. */
int nfs4c_setclientid(struct nfs_client *c);
int nfs4c_create_session(struct nfs_client *c);
/* A request found `need` (RECOV_*) broken: ask the state manager to repair it, unless
 * the broken connection / session / epoch was already reported or replaced. */
void nfs4c_recovery_ask_locked(struct nfs4_state *v4, unsigned need, const struct v4_req *rq);
/* Wait (mu held) until no recovery is due or running; its failure is returned. */
int nfs4c_recovery_wait_locked(struct nfs4_state *v4, int64_t deadline_ms);
extern const struct rpc_program_desc nfs4c_cb_program;
extern _Thread_local const struct nfs4_state *nfs4c_tls_state_manager;
void *nfs4c_state_manager(void *arg);
void nfs4c_destroy_dead_conns(struct nfs4_state *v4);
/* COMMIT + DELEGRETURN of a recalled delegation. */
void nfs4c_do_recall(struct nfs_client *c, const struct v4_recall *rc);

#endif
