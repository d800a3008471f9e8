/*
 * NFSv4 server state (design.md, "state/"): clients, sessions + slot tables, stateids,
 * open/lock owners and share reservations, delegations, leases, grace and the reclaim
 * records kept in SQLite. Pure C below the protocol layer: no XDR types; nfs4/ maps every
 * `enum state_status` to an NFS4ERR code in its one status table.
 *
 * ---------------------------------------------------------------------------------
 * Concurrency (the rule: never hold the state lock while calling the backend, the lock
 * space's kernel calls, or sending a callback):
 *  - One mutex per `struct state_server` guards every table below. Every function here
 *    takes it internally and returns with it released; none calls back into the caller
 *    with it held. There is no "locked" API for callers.
 *  - Objects handed out (client, session, stid, owner) are REFERENCED: the caller owns
 *    one reference and drops it with the matching *_put(). A referenced object stays
 *    readable after it is closed/expired/revoked (its state just says so), so the caller
 *    never touches freed memory; a later state call on it answers BAD_STATEID etc.
 *  - Work that must happen outside the lock is handed back as data: recalls to send
 *    (state_tick / state_work_take), lock owners to ask about (the has_locks callback
 *    of close/release, called by this layer only after it dropped its lock). Lock-space
 *    releases caused by expiry/close run inside this layer but after its lock is dropped.
 *  - A 4.0 owner's seqid-mutating ops are serialised by state_owner_seqid_begin/end
 *    (a concurrent retransmission gets STATE_ERR_DELAY); a 4.1 slot is serialised by
 *    its in-use flag (SEQUENCE on a busy slot gets STATE_ERR_DELAY).
 *
 * Time: every timer (lease, grace, recall, courtesy) reads the server's clock, a
 * settable function returning monotonic milliseconds (tests inject their own).
 *
 * Persistence: the SQLite reclaim database is written ONLY when a client first gets
 * confirmed state (4.0: first OPEN_CONFIRM / first open of a confirmed owner;
 * 4.1: first open or RECLAIM_COMPLETE) and when a client is destroyed/expired/replaced.
 * Never per op. A database that cannot be opened or read is logged, moved aside if
 * corrupt, and the server continues without reclaim (no grace period).
 * ---------------------------------------------------------------------------------
 */
#ifndef PEERNFS_STATE_H
#define PEERNFS_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct lock_space;
struct lock_owner;

struct state_server;
struct state_client;
struct state_session;
struct state_slot;
struct state_owner; /* open owner or lock owner */
struct state_stid;  /* a stateid's object: open, lock or delegation state */

/* ------------------------------------------------------------------------------ */
/* Status codes. nfs4/ maps each to the NFS4ERR of the same name.                  */
/* ------------------------------------------------------------------------------ */
enum state_status {
    STATE_OK = 0,
    STATE_ERR_STALE_CLIENTID,    /* clientid of a previous boot or unknown */
    STATE_ERR_EXPIRED,           /* the client's lease expired and its state is gone */
    STATE_ERR_BAD_STATEID,       /* unknown stateid of this boot, wrong type/client, seqid ahead */
    STATE_ERR_OLD_STATEID,       /* seqid lower than the current one */
    STATE_ERR_STALE_STATEID,     /* stateid of a previous boot */
    STATE_ERR_BAD_SEQID,         /* 4.0 owner seqid neither next nor replay */
    STATE_ERR_REPLAY,            /* retransmission: the cached reply is returned (see callers) */
    STATE_ERR_BADSESSION,        /* unknown session id */
    STATE_ERR_BADSLOT,           /* slot id beyond the session's highest slot */
    STATE_ERR_SEQ_MISORDERED,    /* slot/CREATE_SESSION seqid neither next nor replay */
    STATE_ERR_SEQ_FALSE_RETRY,   /* replay seqid but a different request (checksum differs) */
    STATE_ERR_RETRY_UNCACHED_REP,/* replay of a request whose reply was not cached */
    STATE_ERR_REP_TOO_BIG_TO_CACHE, /* state_slot_cache_reply: larger than ca_maxresponsesize_cached */
    STATE_ERR_DELAY,             /* busy slot/owner, recall in progress: try again */
    STATE_ERR_GRACE,             /* non-reclaim state creation during grace */
    STATE_ERR_NO_GRACE,          /* reclaim outside grace or by a client without a record */
    STATE_ERR_RECLAIM_BAD,       /* reclaim after this client's RECLAIM_COMPLETE */
    STATE_ERR_COMPLETE_ALREADY,  /* second RECLAIM_COMPLETE */
    STATE_ERR_CLID_INUSE,        /* owner id in use by another principal with live state */
    STATE_ERR_NOT_SAME,          /* EXCHANGE_ID update with a different verifier */
    STATE_ERR_PERM,              /* EXCHANGE_ID update by a different principal */
    STATE_ERR_NOENT,             /* EXCHANGE_ID update of no confirmed record */
    STATE_ERR_CLIENTID_BUSY,     /* DESTROY_CLIENTID while sessions exist */
    STATE_ERR_SHARE_DENIED,      /* share reservation conflict */
    STATE_ERR_LOCKED,            /* I/O conflicts with a byte-range lock (not produced here) */
    STATE_ERR_DENIED,            /* lock conflict (not produced here; listed for nfs4/) */
    STATE_ERR_ADMIN_REVOKED,     /* the state was revoked by the administrator/conflict */
    STATE_ERR_DELEG_REVOKED,     /* the delegation was revoked (recall not answered) */
    STATE_ERR_LOCKS_HELD,        /* CLOSE/RELEASE_LOCKOWNER/FREE_STATEID with locks held */
    STATE_ERR_OPENMODE,          /* I/O or downgrade not allowed by the open's modes */
    STATE_ERR_INVAL,             /* bad arguments (share bits 0, downgrade not a subset, ...) */
    STATE_ERR_TOOSMALL,          /* channel attributes below the server minimum */
    STATE_ERR_RESOURCE,          /* a cap is reached or out of memory */
    STATE_ERR_SERVERFAULT,       /* internal error */
    STATE_ERR_NOT_ONLY_OP,       /* (reserved for nfs4/) */
    STATE_ERR_CONN_NOT_BOUND_TO_SESSION, /* SEQUENCE on an unbound conn of a protected session */
    STATE_ERR_CB_PATH_DOWN,      /* 4.0 RENEW: the client holds delegations, callback down */
    STATE_ERR_BAD_SESSION_DIGEST,/* (reserved: SSV) */
    STATE_ERR_WRONG_CRED,        /* the principal differs from the one owning the state */
    STATE_ERR_SEQUENCE_POS,      /* (reserved for nfs4/) */
};

const char *state_status_name(enum state_status st);

/* ------------------------------------------------------------------------------ */
/* Server lifetime                                                                */
/* ------------------------------------------------------------------------------ */

/* Server maxima for one channel (CREATE_SESSION channel_attrs4, without RDMA). */
struct state_channel_attrs {
    uint32_t headerpadsize;
    uint32_t maxrequestsize;
    uint32_t maxresponsesize;
    uint32_t maxresponsesize_cached;
    uint32_t maxoperations;
    uint32_t maxrequests; /* slots */
};

struct state_params {
    const char *state_dir;      /* holds nfs4-clients.db; NULL = no reclaim records */
    unsigned lease_time_s;      /* 0 = 90 */
    unsigned grace_time_s;      /* 0 = lease_time_s; UINT32_MAX = no grace period */
    unsigned courtesy_max_s;    /* an expired client is reaped after this; 0 = 86400 */
    unsigned max_clients;       /* confirmed + unconfirmed + courtesy; 0 = 16384 */
    unsigned max_courtesy_clients; /* beyond it the oldest courtesy clients go; 0 = 4096 */
    unsigned max_sessions_per_client; /* 0 = 16 */
    unsigned max_owners_per_client;   /* open + lock owners; 0 = 16384 */
    unsigned max_opens_per_owner;     /* open stateids per open owner; 0 = 16384 */
    unsigned max_stids;               /* every stateid in the server; 0 = 1M */
    unsigned max_reply_cache;         /* 4.0 owner reply cache bytes per owner; 0 = 8192 */
    /* Stateids and clientids of discarded 4.0 clients remembered to answer EXPIRED
     * (oldest forgotten first); 0 = 65536. */
    unsigned max_expired_ids;
    bool delegations;                 /* grant delegations at all */
    struct state_channel_attrs fore_max; /* zeros = 1 MiB + 8 KiB sizes, 64 slots, 16 ops */
    struct state_channel_attrs back_max; /* zeros = 64 KiB sizes, 4 slots, 8 ops */
    /* Lock space of this daemon (optional): lock owners of NFSv4 lock stateids are
     * created in it, and expiry/destroy of a client releases its locks
     * (lock_release_host with host key = the 8-byte big-endian clientid). */
    struct lock_space *locks;
    /* Monotonic clock in milliseconds; NULL = CLOCK_MONOTONIC. */
    uint64_t (*clock_ms)(void *ctx);
    void *clock_ctx;
    /* Called (outside the state lock, from the thread that queued it) when new work
     * is queued, e.g. a delegation recall started by a conflicting request: wake the
     * callback thread, which calls state_work_take(). May be NULL. */
    void (*work_ready)(void *ctx);
    void *work_ctx;
    /* Connection references for back channels (may be NULL: then the conn pointers are
     * used without references and the caller must call state_conn_dead() before freeing
     * one). conn_hold runs under the state lock: it must be quick and not call state. */
    void (*conn_hold)(void *conn);
    void (*conn_release)(void *conn);
};

/* Creates the server state: picks the boot epoch (max(previous epoch + 1, time of day
 * in seconds)), opens state_dir/nfs4-clients.db, loads the previous boots' client
 * records as the "may reclaim" set and starts the grace period (none when there are
 * no records). Returns NULL only when out of memory; a database problem is logged. */
struct state_server *state_server_create(const struct state_params *params);
/* Frees everything, closes the database (records stay for the next boot: a client
 * with state still may reclaim). Referenced objects still held become invalid. */
void state_server_destroy(struct state_server *ss);

uint32_t state_boot_epoch(const struct state_server *ss);
unsigned state_lease_time(const struct state_server *ss); /* seconds */
uint64_t state_now_ms(const struct state_server *ss);

/* ------------------------------------------------------------------------------ */
/* Periodic work                                                                   */
/* ------------------------------------------------------------------------------ */

enum state_work_kind {
    STATE_WORK_CB_RECALL = 1, /* send CB_RECALL for `deleg` (stateid, file key) */
    STATE_WORK_CB_PROBE,      /* 4.0: probe the client's callback path (CB_NULL) */
    STATE_WORK_CB_GETATTR,    /* send CB_GETATTR for the write delegation `deleg` */
};

struct state_work {
    enum state_work_kind kind;
    struct state_client *client; /* referenced */
    struct state_stid *deleg;    /* CB_RECALL, CB_GETATTR: referenced; NULL otherwise */
};

/* Runs the timers at the current clock: clients whose lease ran out become courtesy
 * clients (or are destroyed when they hold no state; unconfirmed records after one
 * lease), courtesy clients older than courtesy_max_s or beyond the courtesy cap are
 * destroyed, delegations whose recall is unanswered for a lease are revoked (the
 * holder's sessions get STATE_SEQ_RECALLABLE_STATE_REVOKED), the grace period ends on
 * time. Then returns (like state_work_take) the queued work: *out = malloc'd array the
 * caller frees with state_work_free. Call it every second or so. Returns the count. */
size_t state_tick(struct state_server *ss, struct state_work **out);
/* Only takes the queued work (no timers). */
size_t state_work_take(struct state_server *ss, struct state_work **out);
void state_work_free(struct state_work *w, size_t n);

/* ------------------------------------------------------------------------------ */
/* Clients                                                                         */
/* ------------------------------------------------------------------------------ */

#define STATE_VERIFIER_SIZE 8
#define STATE_OWNER_MAX 1024   /* NFS4_OPAQUE_LIMIT: co_ownerid / id string / owners */
#define STATE_PRINCIPAL_MAX 256

/* Who sent the request, as the rpc layer authenticated it (AUTH_SYS: e.g. "sys:uid";
 * RPCSEC_GSS: the principal name). Compared bytewise. */
struct state_principal {
    const void *name;
    size_t len;
};

/* 4.0 SETCLIENTID callback information (cb_client4 + callback_ident), copied. */
struct state_cb_info {
    uint32_t program;
    uint32_t ident;
    char netid[16];
    char addr[64]; /* universal address */
};

/* SETCLIENTID (RFC 7530 16.33.5). id = the client's id string (1..STATE_OWNER_MAX).
 *  - no record, or only an unconfirmed one: a new unconfirmed record with a new
 *    clientid replaces any unconfirmed one;
 *  - a confirmed record with the same verifier and principal (callback update): an
 *    unconfirmed record with the SAME clientid and the new callback info;
 *  - a confirmed record with another verifier (client reboot): a new unconfirmed record
 *    with a new clientid; the old one goes at SETCLIENTID_CONFIRM;
 *  - a confirmed record of another principal that holds unexpired state: CLID_INUSE
 *    (a courtesy/expired one is destroyed instead).
 * Out: *clientid and the confirm verifier. Errors: CLID_INUSE, RESOURCE, INVAL. */
enum state_status state_setclientid(struct state_server *ss, const void *id, size_t id_len,
                                    const uint8_t verifier[STATE_VERIFIER_SIZE],
                                    const struct state_principal *principal,
                                    const struct state_cb_info *cb,
                                    uint64_t *clientid, uint8_t confirm[STATE_VERIFIER_SIZE]);

/* SETCLIENTID_CONFIRM (RFC 7530 16.34.5): confirms the unconfirmed record with this
 * clientid and confirm verifier (applying a callback update to the confirmed record, or
 * replacing the previous confirmed record of the id, whose state is destroyed). A
 * retransmission for an already confirmed record with the same verifier is OK. Queues a
 * STATE_WORK_CB_PROBE. Errors: STALE_CLIENTID (unknown clientid/verifier or previous
 * boot), CLID_INUSE (other principal). */
enum state_status state_setclientid_confirm(struct state_server *ss, uint64_t clientid,
                                            const uint8_t confirm[STATE_VERIFIER_SIZE],
                                            const struct state_principal *principal);

/* EXCHANGE_ID flags of ours (the RFC's EXCHGID4_FLAG_* values). */
#define STATE_EXCHGID_UPD_CONFIRMED_REC_A 0x40000000u
#define STATE_EXCHGID_CONFIRMED_R         0x80000000u

struct state_exchange_id_res {
    uint64_t clientid;
    uint32_t sequenceid; /* eir_sequenceid: the csa_sequence the next CREATE_SESSION uses */
    bool confirmed;      /* EXCHGID4_FLAG_CONFIRMED_R */
};

/* EXCHANGE_ID (RFC 8881 18.35.5), owner = co_ownerid:
 *  1 new owner id: new unconfirmed record (update flag: NOENT);
 *  2 confirmed, same verifier + principal, no update: same clientid, confirmed;
 *  3 confirmed, other principal: CLID_INUSE while it holds unexpired state, otherwise
 *    the old record is destroyed and case 1 applies;
 *  4 unconfirmed only: replaced by a new unconfirmed record (new clientid);
 *  5 confirmed, other verifier (client restart): a new unconfirmed record; the old
 *    confirmed one and its state go when CREATE_SESSION confirms the new one;
 *  6 update, confirmed, same verifier + principal: OK, same clientid;
 *  7 update, other verifier: NOT_SAME;  8 update, other principal: PERM;
 *  9 update of an unconfirmed or no record: NOENT.
 * minorversion: 1 or 2 (kept on the record). Errors as above, RESOURCE, INVAL. */
enum state_status state_exchange_id(struct state_server *ss, const void *owner, size_t owner_len,
                                    const uint8_t verifier[STATE_VERIFIER_SIZE], uint32_t flags,
                                    const struct state_principal *principal, uint32_t minorversion,
                                    struct state_exchange_id_res *res);

/* DESTROY_CLIENTID: CLIENTID_BUSY while the client has sessions; otherwise destroys it
 * with all its state and its reclaim record. STALE_CLIENTID when unknown. */
enum state_status state_destroy_clientid(struct state_server *ss, uint64_t clientid);

/* A confirmed client by clientid, lease renewed (also ends a courtesy period).
 * *out referenced. Errors: STALE_CLIENTID (previous boot, unknown or unconfirmed),
 * EXPIRED (a 4.0 client whose state was discarded: see state_stateid_lookup). */
enum state_status state_client_lookup(struct state_server *ss, uint64_t clientid,
                                      struct state_client **out);
/* 4.0 RENEW: renews; CB_PATH_DOWN when the client holds delegations and its callback
 * path is marked down; STALE_CLIENTID when unknown; EXPIRED as state_client_lookup. */
enum state_status state_renew(struct state_server *ss, uint64_t clientid);

struct state_client *state_client_ref(struct state_client *c);
void state_client_put(struct state_client *c);
uint64_t state_client_id(const struct state_client *c);
uint32_t state_client_minorversion(const struct state_client *c);
/* 4.0 callback info of the confirmed record (copied out); false for 4.1 clients. */
bool state_client_cb_info(struct state_client *c, struct state_cb_info *out);
/* 4.0: the callback path works / does not (set by cb/ after CB_NULL or a failed
 * callback). Delegations are only granted while it is up. */
void state_client_set_cb_up(struct state_client *c, bool up);
/* The principal that created the record matches? (ops that must use the same cred) */
bool state_client_principal_is(struct state_client *c, const struct state_principal *p);

/* Conflict hook for courteous expiry: if the client's lease has run out (it is kept
 * only as a courtesy), destroy it and its state now and return true: the caller retries
 * the conflicting operation. False for a live client. The clientid form is for the lock
 * path (a conflicting lock_owner's key starts with the 8-byte big-endian clientid). */
bool state_client_expire_if_courtesy(struct state_server *ss, struct state_client *c);
bool state_client_expire_if_courtesy_id(struct state_server *ss, uint64_t clientid);

/* ------------------------------------------------------------------------------ */
/* Sessions (4.1)                                                                  */
/* ------------------------------------------------------------------------------ */

#define STATE_SESSIONID_SIZE 16

/* CREATE_SESSION flags (the RFC's values). */
#define STATE_CREATE_SESSION_PERSIST        0x1u
#define STATE_CREATE_SESSION_CONN_BACK_CHAN 0x2u
#define STATE_CREATE_SESSION_CONN_RDMA      0x4u

enum state_conn_dir {
    STATE_CONN_FORE = 1,
    STATE_CONN_BACK = 2,
    STATE_CONN_BOTH = 3,
};

struct state_create_session_args {
    uint64_t clientid;
    uint32_t sequence;      /* csa_sequence */
    uint32_t flags;         /* STATE_CREATE_SESSION_* */
    struct state_channel_attrs fore, back; /* requested */
    uint32_t cb_program;
    bool conn_binding_required; /* SP4_MACH_CRED/SSV: SEQUENCE on an unbound conn is
                                   CONN_NOT_BOUND_TO_SESSION (SP4_NONE: auto-bound) */
    const struct state_principal *principal;
    void *conn;             /* the connection it arrived on */
};

struct state_create_session_res {
    uint8_t sessionid[STATE_SESSIONID_SIZE];
    uint32_t sequence;      /* csr_sequence (= csa_sequence) */
    uint32_t flags;         /* granted: PERSIST never, CONN_BACK_CHAN if asked, no RDMA */
    struct state_channel_attrs fore, back; /* negotiated: min(requested, server max) */
    /* REPLAY only: the cached reply bytes the caller stored with
     * state_create_session_cache_reply (malloc'd, caller frees), else NULL/0. */
    void *replay;
    size_t replay_len;
};

/* CREATE_SESSION (RFC 8881 18.36.4): csa_sequence == the client's last + 1: a new
 * session (confirms an unconfirmed record: replaces the previous confirmed record of the
 * same owner, destroying its state); == last on a confirmed record: REPLAY with the
 * cached reply in res->replay (DELAY when the first one has not stored its reply yet);
 * else SEQ_MISORDERED. Channel attrs are clamped to the server maxima; a request size
 * below the minimum the server needs gives TOOSMALL. The creating connection is bound
 * (fore, plus back with CONN_BACK_CHAN). Errors: STALE_CLIENTID, CLID_INUSE (an
 * unconfirmed record created by another principal), RESOURCE (session cap), INVAL. */
enum state_status state_create_session(struct state_server *ss,
                                       const struct state_create_session_args *args,
                                       struct state_create_session_res *res);
/* Stores the encoded CREATE_SESSION result for its replay (copied). */
void state_create_session_cache_reply(struct state_server *ss, uint64_t clientid,
                                      const void *bytes, size_t len);

/* DESTROY_SESSION: DELAY while a slot other than the caller's own is in use
 * (called_on_it: the COMPOUND's SEQUENCE is on this session); BADSESSION if unknown. */
enum state_status state_destroy_session(struct state_server *ss,
                                        const uint8_t sessionid[STATE_SESSIONID_SIZE],
                                        bool called_on_it);

/* BIND_CONN_TO_SESSION: dir in = the request (FORE, BACK, BOTH meaning *_OR_BOTH: we
 * grant both), out = granted (as asked). Binding a BACK connection makes it the
 * session's back channel and clears a reported path-down. A session keeps at most 16
 * connections: binding a 17th forgets the least recently bound one. Renews the lease.
 * Errors: BADSESSION, INVAL (dir out of range). */
enum state_status state_bind_conn_to_session(struct state_server *ss,
                                             const uint8_t sessionid[STATE_SESSIONID_SIZE],
                                             void *conn, enum state_conn_dir *dir);

/* The connection is gone: every session forgets it (a back channel falls back to the
 * newest other back connection; none left = CB path down). */
void state_conn_dead(struct state_server *ss, void *conn);

/* The session's back-channel connection (the newest bound back conn still up), held
 * with conn_hold (release with params.conn_release) — NULL when the path is down. */
void *state_session_back_conn(struct state_session *s);
/* cb/ reports the back channel unusable (call failed/timed out): path down until a new
 * back connection is bound. */
void state_session_cb_path_down(struct state_session *s);
uint32_t state_session_cb_program(struct state_session *s);

/* SEQ4_STATUS_* bits (the RFC's values). */
#define STATE_SEQ_CB_PATH_DOWN                0x001u
#define STATE_SEQ_CB_GSS_CONTEXTS_EXPIRING    0x002u
#define STATE_SEQ_CB_GSS_CONTEXTS_EXPIRED     0x004u
#define STATE_SEQ_EXPIRED_ALL_STATE_REVOKED   0x008u
#define STATE_SEQ_EXPIRED_SOME_STATE_REVOKED  0x010u
#define STATE_SEQ_ADMIN_STATE_REVOKED         0x020u
#define STATE_SEQ_RECALLABLE_STATE_REVOKED    0x040u
#define STATE_SEQ_LEASE_MOVED                 0x080u
#define STATE_SEQ_RESTART_RECLAIM_NEEDED      0x100u
#define STATE_SEQ_CB_PATH_DOWN_SESSION        0x200u
#define STATE_SEQ_BACKCHANNEL_FAULT           0x400u
#define STATE_SEQ_DEVID_CHANGED               0x800u
#define STATE_SEQ_DEVID_DELETED               0x1000u

struct state_sequence_args {
    uint8_t sessionid[STATE_SESSIONID_SIZE];
    uint32_t sequenceid;
    uint32_t slotid;
    uint32_t highest_slotid;
    bool cachethis;
    /* A digest of the request (e.g. a hash of the COMPOUND's argument bytes after
     * SEQUENCE): a replay with another checksum is SEQ_FALSE_RETRY. 0 = not checked. */
    uint64_t checksum;
    void *conn;
};

struct state_sequence_res {
    struct state_session *session; /* OK: referenced (state_session_put) */
    struct state_client *client;   /* OK: borrowed from the session, lease renewed */
    struct state_slot *slot;       /* OK: held until state_slot_done */
    uint32_t highest_slotid;       /* sr_highest_slotid */
    uint32_t target_highest_slotid;
    uint32_t status_flags;         /* STATE_SEQ_* */
    bool cachethis;                /* as asked */
    void *replay;                  /* REPLAY: malloc'd copy of the cached reply; caller frees */
    size_t replay_len;
};

/* SEQUENCE (RFC 8881 2.10.6, 18.46.3):
 *  - unknown session: BADSESSION; slotid > highest slot: BADSLOT;
 *  - slot in use: DELAY;
 *  - seqid == slot's + 1: a new request. OK, the slot is held (in use) until
 *    state_slot_done; the lease is renewed; status flags computed;
 *  - seqid == slot's: a retry: REPLAY with the cached reply bytes (res->replay), or
 *    SEQ_FALSE_RETRY when checksums differ, or RETRY_UNCACHED_REP when not cached;
 *  - anything else: SEQ_MISORDERED.
 * An unbound conn is bound to the fore channel (SP4_NONE) or refused with
 * CONN_NOT_BOUND_TO_SESSION. */
enum state_status state_sequence(struct state_server *ss, const struct state_sequence_args *args,
                                 struct state_sequence_res *res);
/* Stores the encoded COMPOUND reply of the slot's current request (copied), for replays.
 * REP_TOO_BIG_TO_CACHE when len exceeds the session's maxresponsesize_cached (the
 * caller then answers that error instead). Call at most once per request, before done. */
enum state_status state_slot_cache_reply(struct state_slot *slot, const void *bytes, size_t len);
/* The slot's request will run again from the start (a COMPOUND moved to the blocking
 * pool before it changed anything): the slot forgets it, back to the previous seqid
 * (its cached reply is gone: the client sent this seqid, so it has that reply). */
void state_slot_abandon(struct state_slot *slot);
/* Ends the slot's request: frees the slot for the next seqid. A request whose reply
 * was not cached is remembered as uncached (replay = RETRY_UNCACHED_REP). */
void state_slot_done(struct state_slot *slot);

/* The fore channel's negotiated attributes (ca_maxoperations, ca_maxrequestsize, ...). */
void state_session_fore_attrs(const struct state_session *s, struct state_channel_attrs *out);
struct state_session *state_session_ref(struct state_session *s);
void state_session_put(struct state_session *s);
struct state_client *state_session_client(struct state_session *s); /* borrowed */
void state_session_id(const struct state_session *s, uint8_t out[STATE_SESSIONID_SIZE]);
/* The fore channel's negotiated attributes (ca_maxoperations, ca_maxrequestsize, ...). */
void state_session_fore_attrs(const struct state_session *s, struct state_channel_attrs *out);

/* Back channel slots for CB_SEQUENCE: takes a free back slot (-1 = none free: queue the
 * callback), giving its slot id and the next seqid to send. cb_slot_put ends it:
 * answered=false (no reply) keeps the seqid unused so the next call resends it. */
int state_cb_slot_get(struct state_session *s, uint32_t *slotid, uint32_t *seqid,
                      uint32_t *highest_slotid);
void state_cb_slot_put(struct state_session *s, uint32_t slotid, bool answered);

/* ------------------------------------------------------------------------------ */
/* Stateids                                                                        */
/* ------------------------------------------------------------------------------ */

#define STATE_STATEID_OTHER_SIZE 12

/* On the wire: seqid then other. other = boot epoch (4 bytes) | counter (7) | type (1). */
struct state_stateid {
    uint32_t seqid;
    uint8_t other[STATE_STATEID_OTHER_SIZE];
};

enum state_stid_type {
    STATE_STID_OPEN = 1,
    STATE_STID_LOCK = 2,
    STATE_STID_DELEG = 4,
    STATE_STID_LAYOUT = 8, /* later */
};

enum state_special {
    STATE_SPECIAL_NONE = 0,  /* an ordinary stateid */
    STATE_SPECIAL_ANONYMOUS, /* all zeros */
    STATE_SPECIAL_BYPASS,    /* all ones: READ may bypass locks/deny */
    STATE_SPECIAL_CURRENT,   /* 4.1: seqid 1, other 0: the COMPOUND's current stateid */
    STATE_SPECIAL_INVALID,   /* 4.1: seqid UINT32_MAX, other 0 */
};
/* Which special stateid this is. nfs4/ resolves CURRENT from its COMPOUND state,
 * treats ANONYMOUS/BYPASS as "no state" (check state_file_check_anon_io), and answers
 * BAD_STATEID for INVALID and for other zero/one-mixtures (classified NONE, then
 * state_stateid_lookup answers BAD_STATEID/STALE_STATEID). */
enum state_special state_stateid_special(const struct state_stateid *sid);

/* lookup flags */
#define STATE_LOOKUP_V41          0x1u /* seqid 0 means "the current seqid" */
#define STATE_LOOKUP_ALLOW_REVOKED 0x2u /* return revoked delegations (DELEGRETURN, FREE_STATEID) */
/* 4.0: also find an open owner's last closed open stateid (kept for a replay of its
 * CLOSE until the owner's next seqid-mutating op starts, RFC 7530 9.1.7/9.10.1); the
 * object returned is closed (ops on it answer BAD_STATEID) */
#define STATE_LOOKUP_ALLOW_CLOSED  0x4u

/* Find a stateid's object. types = mask of STATE_STID_*; client = the session's client
 * (4.1: the stateid must be that client's, else BAD_STATEID) or NULL (4.0). Renews the
 * owning client's lease. Order of checks: other of another boot: STALE_STATEID; unknown
 * / wrong type / wrong client: BAD_STATEID — but EXPIRED (4.0, client NULL) for a
 * stateid of a 4.0 client whose state was discarded (lease expiry, courtesy expiry,
 * replacement by its reboot; remembered for the last max_expired_ids stateids);
 * revoked deleg: DELEG_REVOKED; admin-revoked: ADMIN_REVOKED; seqid (unless 0 with
 * V41) lower than current: OLD_STATEID, higher: BAD_STATEID. *out referenced
 * (state_stid_put). */
enum state_status state_stateid_lookup(struct state_server *ss, struct state_client *client,
                                       const struct state_stateid *sid, unsigned types,
                                       unsigned flags, struct state_stid **out);

struct state_stid *state_stid_ref(struct state_stid *st);
void state_stid_put(struct state_stid *st);
enum state_stid_type state_stid_type(const struct state_stid *st);
/* The current wire stateid (seqid as of now). */
void state_stid_stateid(struct state_stid *st, struct state_stateid *out);
struct state_client *state_stid_client(struct state_stid *st); /* borrowed */
/* Closed, expired, freed or revoked-and-freed: the object is no longer in use (ops on
 * it answer BAD_STATEID). A lookup returns one only with STATE_LOOKUP_ALLOW_CLOSED. */
bool state_stid_closed(struct state_stid *st);
/* The file key the state is on (valid while st is referenced). */
const void *state_stid_file_key(const struct state_stid *st, size_t *len);
/* OPEN/LOCK: the open's current share_access / share_deny (a lock stateid: of its open). */
uint32_t state_stid_share_access(struct state_stid *st);
uint32_t state_stid_share_deny(struct state_stid *st);
/* May this stateid be used for READ (write=false) or WRITE? OK, OPENMODE (the open lacks
 * the access; a read delegation for WRITE), BAD_STATEID (closed meanwhile). A write-only
 * open may READ (as knfsd allows: the Linux client reads through it to fill a partial
 * page it writes). */
enum state_status state_stid_check_io(struct state_stid *st, bool write);

/* TEST_STATEID for one stateid: the lookup's status (OK or the error), no lease renewal
 * beyond that of lookup. */
enum state_status state_test_stateid(struct state_server *ss, struct state_client *client,
                                     const struct state_stateid *sid);

/* FREE_STATEID (4.1): a lock stateid without locks, or a revoked delegation, is freed.
 * LOCKS_HELD for open stateids and lock stateids whose owner has locks on the file
 * (asked through has_locks outside the state lock); BAD_STATEID etc. as lookup. */
typedef bool (*state_has_locks_fn)(void *ctx, struct lock_owner *lo, const void *file_key,
                                   size_t file_key_len);
enum state_status state_free_stateid(struct state_server *ss, struct state_client *client,
                                     const struct state_stateid *sid,
                                     state_has_locks_fn has_locks, void *ctx);

/* ------------------------------------------------------------------------------ */
/* Owners and 4.0 seqids                                                           */
/* ------------------------------------------------------------------------------ */

#define STATE_FILE_KEY_MAX 128

/* The open owner (client, owner bytes), created on first use (*created = true). 4.0
 * owners start unconfirmed (OPEN_CONFIRM needed), 4.1 owners confirmed. Owners stay
 * until their client goes (bounded by max_owners_per_client). Errors: RESOURCE (cap),
 * INVAL, EXPIRED (the client was destroyed meanwhile). */
enum state_status state_open_owner_get(struct state_server *ss, struct state_client *c,
                                       const void *owner, size_t owner_len,
                                       struct state_owner **out, bool *created);
struct state_owner *state_owner_ref(struct state_owner *o);
void state_owner_put(struct state_owner *o);
bool state_owner_confirmed(struct state_owner *o);

/* 4.0 seqid of a seqid-mutating op by this owner (RFC 7530 9.1.7); BAD_STATEID when
 * the owner's client is gone:
 *  - an owner just created (or unconfirmed, when is_open): any seqid starts it: OK;
 *  - seqid == last + 1: OK (the op runs; then call state_owner_seqid_end); the owner's
 *    last closed open (kept for a CLOSE replay) is forgotten;
 *  - seqid == last and a reply is cached: REPLAY, *replay and *replay_len = a malloc'd copy
 *    of the cached reply (caller sends it and frees it; no _end call);
 *  - another op of this owner is between begin and end: DELAY;
 *  - else BAD_SEQID.
 * An unconfirmed 4.0 open owner re-used by an OPEN with another seqid is reset: its
 * unconfirmed opens are dropped and it starts over (RFC 7530 16.16.5). */
enum state_status state_owner_seqid_begin(struct state_owner *o, uint32_t seqid, bool is_open,
                                          void **replay, size_t *replay_len);
/* Ends the op started by _begin. advance = the op's result increments the seqid (every
 * result except STALE_CLIENTID, STALE_STATEID, BAD_STATEID, BAD_SEQID, BADXDR, RESOURCE,
 * NOFILEHANDLE, MOVED); then the reply bytes are cached (copied; replies larger than
 * max_reply_cache are not cached: a replay then answers BAD_SEQID). */
void state_owner_seqid_end(struct state_owner *o, uint32_t seqid, bool advance,
                           const void *reply, size_t reply_len);

/* ------------------------------------------------------------------------------ */
/* Opens and share reservations                                                    */
/* ------------------------------------------------------------------------------ */

#define STATE_SHARE_ACCESS_READ  1u
#define STATE_SHARE_ACCESS_WRITE 2u
#define STATE_SHARE_ACCESS_BOTH  3u
#define STATE_SHARE_DENY_NONE    0u
#define STATE_SHARE_DENY_READ    1u
#define STATE_SHARE_DENY_WRITE   2u
#define STATE_SHARE_DENY_BOTH    3u

enum state_open_claim {
    STATE_CLAIM_NULL = 0,       /* a new open (also CLAIM_FH) */
    STATE_CLAIM_PREVIOUS,       /* reclaim after a server restart (grace) */
    STATE_CLAIM_DELEGATE_CUR,   /* open under a delegation held by this client */
    STATE_CLAIM_DELEGATE_PREV,  /* reclaim of a delegation of the client's previous incarnation
                                   (also CLAIM_DELEG_PREV_FH): see "Delegation recovery" */
};

enum state_deleg_type {
    STATE_DELEG_NONE = 0,
    STATE_DELEG_READ = 1,
    STATE_DELEG_WRITE = 2,
};

struct state_open_args {
    struct state_owner *owner;
    const void *file_key;       /* backend file identity (e.g. filehandle bytes) */
    size_t file_key_len;        /* 1..STATE_FILE_KEY_MAX */
    uint32_t share_access;      /* STATE_SHARE_ACCESS_* (want/signal bits stripped) */
    uint32_t share_deny;        /* STATE_SHARE_DENY_* */
    enum state_open_claim claim;
    enum state_deleg_type reclaim_deleg; /* CLAIM_PREVIOUS: delegate_type to re-grant */
    const struct state_stateid *deleg_stateid; /* CLAIM_DELEGATE_CUR */
    /* Offer a delegation if policy allows: READ = read only, WRITE = read or write. */
    enum state_deleg_type want_deleg;
    bool file_created;          /* nfs4/ created the file in this OPEN (no conflicts) */
};

struct state_open_res {
    struct state_stid *open;    /* OK: referenced */
    struct state_stateid stateid;
    bool confirm_needed;        /* 4.0: OPEN4_RESULT_CONFIRM */
    struct state_stid *deleg;   /* a delegation granted (referenced) or NULL */
    struct state_stateid deleg_stateid;
    enum state_deleg_type deleg_type;
    bool deleg_recall_pending;  /* want_deleg refused because of a recall in progress */
};

/* OPEN's state part, after nfs4/ resolved/created the file (backend first, then this:
 * never the other way round, so no state lock is held across the backend).
 *  - grace: CLAIM_NULL/DELEGATE_CUR during grace: GRACE; CLAIM_PREVIOUS outside grace
 *    or from a client without a record: NO_GRACE; after its RECLAIM_COMPLETE:
 *    RECLAIM_BAD;
 *  - conflicting delegations of other clients: recalls are queued (work_ready called),
 *    DELAY (courtesy holders are expired instead);
 *  - share reservations: a conflict with an open of the file: SHARE_DENIED (a courtesy
 *    client's conflicting opens are expired instead). The owner's own open counts too
 *    (as knfsd: its deny READ refuses its own OPEN for READ, its READ access its own
 *    deny READ);
 *  - same owner + file: upgrade (union of modes, same stateid, seqid + 1);
 *  - else a new open stateid (seqid 1).
 * The first open of a client records it for reclaim (4.1: here; 4.0: at OPEN_CONFIRM or
 * here if the owner is already confirmed). Errors also RESOURCE, INVAL, BAD_STATEID
 * (DELEGATE_CUR with a stateid that is not this client's delegation on this file),
 * EXPIRED (owner/client destroyed meanwhile).
 * CLAIM_DELEGATE_PREV: GRACE during grace; RECLAIM_BAD when no delegation of this file
 * awaits recovery for the client; otherwise the open is made as CLAIM_NULL's would be
 * (the checks above) and, on success, the awaiting record is consumed: the reply gets a
 * delegation of its type with a new stateid, an ordinary recallable delegation (none
 * when the client already holds one of the file). */
enum state_status state_open(struct state_server *ss, const struct state_open_args *args,
                             struct state_open_res *res);

/* OPEN_CONFIRM (4.0): the open's seqid must be current (else OLD/BAD_STATEID as lookup
 * did); confirms the owner, bumps the stateid seqid (*out = new stateid). */
enum state_status state_open_confirm(struct state_server *ss, struct state_stid *open,
                                     struct state_stateid *out);

/* OPEN_DOWNGRADE: new access/deny must be a subset of the current ones AND each of them
 * one that an OPEN of this owner used (else INVAL); bumps seqid. */
enum state_status state_open_downgrade(struct state_server *ss, struct state_stid *open,
                                       uint32_t share_access, uint32_t share_deny,
                                       struct state_stateid *out);

/* CLOSE: LOCKS_HELD when one of the open's lock stateids' owners still holds locks on
 * the file (has_locks asked outside the state lock; NULL = assume none); otherwise the
 * open and its lock stateids are released (*out = the closed stateid with seqid + 1).
 * A 4.0 open stays findable with STATE_LOOKUP_ALLOW_CLOSED as its owner's last closed
 * one (for the CLOSE's replay) until the owner's next state_owner_seqid_begin. */
enum state_status state_close(struct state_server *ss, struct state_stid *open,
                              state_has_locks_fn has_locks, void *ctx,
                              struct state_stateid *out);

/* I/O with an anonymous/bypass stateid: SHARE_DENIED if an open denies the access,
 * DELAY when a conflicting delegation is being recalled (the recall is queued). */
enum state_status state_file_check_anon_io(struct state_server *ss, const void *file_key,
                                           size_t file_key_len, bool write, bool bypass);

/* ------------------------------------------------------------------------------ */
/* Lock owners and lock stateids                                                   */
/* ------------------------------------------------------------------------------ */

/* LOCK with open_to_lock_owner4 (new lock owner) — after the caller did the open
 * owner's seqid_begin: the lock owner (client, owner bytes) and its lock stateid for the
 * open's file, created as needed (a new lock owner, or one without stateids, starts its
 * seqid at lock_seqid). The lock
 * owner's lock-space owner (key: 8-byte BE clientid + owner bytes, host key: the
 * clientid) is created in params.locks. A new lock stateid has seqid 0 until the LOCK
 * that created it succeeds and calls state_lock_stateid_bump (-> 1, what the client
 * sees); after a failed first LOCK, state_lock_new_owner_end drops it. The same
 * (lock owner, file) always gives the same lock stateid. *lock_stid referenced.
 * Errors: RESOURCE, BAD_STATEID (open closed), INVAL. */
enum state_status state_lock_stateid_get(struct state_server *ss, struct state_stid *open,
                                         const void *lock_owner, size_t lock_owner_len,
                                         uint32_t lock_seqid, struct state_stid **lock_stid);
/* Ends a LOCK with open_to_lock_owner4 that got lock_stid from state_lock_stateid_get
 * (granted: the LOCK succeeded; seqid_used: 4.0 and its result consumes a seqid, RFC
 * 7530 9.1.7). A failed LOCK leaves nothing it made behind: an unused lock stateid
 * (never granted, nobody else holding it) goes, and its lock owner too once the owner
 * has no stateid left, so that the client's next open_to_lock_owner4 starts the owner's
 * sequence afresh at its lock_seqid (knfsd does the same; the Linux client retries a
 * DENIED new owner with a lock_seqid it did not advance). A lock owner that stays takes
 * lock_seqid as its last seqid when seqid_used: the open owner's seqid is the one the
 * op checked and advanced, and the next exist_lock_owner4 op sends lock_seqid + 1.
 * An existing lock owner without stateids also restarts at lock_seqid in
 * state_lock_stateid_get. lock_stid stays referenced (the caller puts it). */
void state_lock_new_owner_end(struct state_server *ss, struct state_stid *lock_stid, uint32_t lock_seqid,
                              bool granted, bool seqid_used);
/* The lock stateid's owner (for seqid_begin/end on LOCK/LOCKU with an existing owner). */
struct state_owner *state_stid_owner(struct state_stid *st); /* borrowed */
/* The lock space's owner for a lock stateid (borrowed; valid while st is referenced;
 * NULL when the server has no lock space). nfs4/ calls lock_lock/lock_unlock with it. */
struct lock_owner *state_stid_lock_owner(struct state_stid *st);
/* After a successful LOCK or LOCKU: seqid + 1, *out = the new stateid. */
void state_lock_stateid_bump(struct state_server *ss, struct state_stid *lock_stid,
                             struct state_stateid *out);

/* RELEASE_LOCKOWNER (4.0): LOCKS_HELD when has_locks says one of its files still has
 * locks (asked outside the state lock); else the owner and its stateids go. Unknown
 * owner: OK. STALE_CLIENTID for an unknown client. */
enum state_status state_release_lockowner(struct state_server *ss, uint64_t clientid,
                                          const void *owner, size_t owner_len,
                                          state_has_locks_fn has_locks, void *ctx);

/* ------------------------------------------------------------------------------ */
/* Delegations                                                                     */
/* ------------------------------------------------------------------------------ */

/* Do delegations of clients other than `asking` (NULL = a non-NFSv4 accessor) conflict
 * with an access (write: modification of data/attributes/names, else read)? A read
 * delegation conflicts with write; a write delegation with anything. Courtesy holders
 * are expired; live ones get a recall queued (once; work_ready called). Returns OK when
 * nothing conflicts (any more), DELAY while recalls are pending. */
enum state_status state_deleg_conflicts(struct state_server *ss, const void *file_key,
                                        size_t file_key_len, struct state_client *asking,
                                        bool want_write);
/* nfs3/ and nlm/ before access to a file: true = a recall is pending or was started
 * (answer NFS3ERR_JUKEBOX / NLM4_DENIED_GRACE_PERIOD and let the client retry). */
bool state_deleg_break_for_file(struct state_server *ss, const void *file_key,
                                size_t file_key_len, bool write);
/* The backend's open watcher (fs_watch_cb.held): is the file still delegated (revoked
 * delegations do not count)? With `recall`, a local process wants to open it: every
 * delegation of the file conflicts (its open mode is unknown), courtesy holders are
 * expired, live ones recalled. */
bool state_deleg_held(struct state_server *ss, const void *file_key, size_t file_key_len, bool recall);
/*
 * Another client's GETATTR of size or change (RFC 8881 10.4.3): the holder of a write
 * delegation may have written data the server has not seen, so it is asked with
 * CB_GETATTR first. OK with *have false: no other client holds a write delegation
 * (answer from the file). OK with *have: the holder's answer (at most
 * STATE_CB_GETATTR_FRESH_MS old). DELAY: asked now (STATE_WORK_CB_GETATTR queued) or
 * still waiting for the answer; a holder that fails to answer has its delegation
 * recalled instead.
 */
#define STATE_CB_GETATTR_FRESH_MS 1000u
#define STATE_CB_GETATTR_WAIT_MS 5000u
struct state_deleg_attrs {
    uint64_t change, size;   /* as the holder reported them */
    struct timespec at;      /* when it answered (CLOCK_REALTIME) */
};
enum state_status state_deleg_getattr(struct state_server *ss, const void *file_key, size_t file_key_len,
                                      struct state_client *asking, struct state_deleg_attrs *out, bool *have);
/* Waits, at most timeout_ms, while the CB_GETATTR that state_deleg_getattr started for
 * another client's write delegation of the file is unanswered; false at once when no
 * question is pending (no such delegation, being recalled, answered or failed). Only from
 * a thread that may block (the blocking pool): the answer arrives through an event loop. */
bool state_deleg_getattr_wait(struct state_server *ss, const void *file_key, size_t file_key_len,
                              struct state_client *asking, unsigned timeout_ms);
/* The CB_GETATTR for `deleg` ended: answered with a (ok) or failed. */
void state_deleg_getattr_done(struct state_server *ss, struct state_stid *deleg, bool ok,
                              const struct state_deleg_attrs *a);
/* Could `c` be granted a delegation now (enabled, not in grace, callback path up)? A
 * hint for the caller's preparations (the grant decides again under the lock). */
bool state_deleg_offerable(struct state_server *ss, struct state_client *c);
/* How many delegations exist (granted and not yet freed; revoked ones count until
 * freed; those awaiting recovery count too: an NFSv3 access must discard them).
 * Relaxed atomic loads, no lock: non-NFSv4 accessors call it on every
 * READ/WRITE and skip state_deleg_break_for_file while it is 0. A grant racing with
 * the load is ordered as if it came after the access, as it would be under the lock. */
unsigned state_deleg_count(struct state_server *ss);

/* cb/ after sending CB_RECALL: ok=false (not delivered) marks the client's callback
 * path down; the revoke timer (one lease from the recall start) runs either way. */
void state_deleg_recall_sent(struct state_server *ss, struct state_stid *deleg, bool ok);

/* DELEGRETURN: the delegation goes (OK); a revoked one answers DELEG_REVOKED and is
 * freed too. */
enum state_status state_delegreturn(struct state_server *ss, struct state_stid *deleg);
enum state_deleg_type state_deleg_type(struct state_stid *deleg);

/* ------------------------------------------------------------------------------ */
/* Delegation recovery after a client restart (deleg_recovery.c has the policy)     */
/* ------------------------------------------------------------------------------ */

/* When a confirmed client is replaced by a new incarnation of the same client (same
 * owner id and principal, new verifier; at SETCLIENTID_CONFIRM / CREATE_SESSION), its
 * opens and locks go but its delegations are kept "awaiting recovery" for the new
 * incarnation, without a callback. They never delay anyone: a conflicting access of
 * another client (OPEN, I/O, state_deleg_conflicts), an NFSv3/NLM access or a local
 * open (state_deleg_held with recall) discards them instead of recalling; the set goes
 * one lease after the confirmation (after grace ends, if later), at DELEGPURGE and
 * with the client. */

/* May `c` reclaim a delegation of the file (CLAIM_DELEGATE_PREV, before nfs4/ touches
 * the file, e.g. truncates it)? OK with *type = the delegation's type; GRACE during
 * grace; RECLAIM_BAD when none awaits. state_open decides again. */
enum state_status state_deleg_awaiting(struct state_server *ss, struct state_client *c, const void *file_key,
                                       size_t file_key_len, enum state_deleg_type *type);
/* DELEGPURGE: every delegation awaiting recovery for `c` is discarded; renews. OK. */
enum state_status state_delegpurge(struct state_server *ss, struct state_client *c);
/* How many delegations await recovery (all clients). */
unsigned state_deleg_awaiting_count(struct state_server *ss);

/* ------------------------------------------------------------------------------ */
/* Grace and reclaim                                                               */
/* ------------------------------------------------------------------------------ */

bool state_in_grace(struct state_server *ss);
/* For state-creating ops other than OPEN (LOCK, ...): reclaim=false during grace:
 * GRACE; reclaim=true: NO_GRACE outside grace or without a record, RECLAIM_BAD after
 * the client's RECLAIM_COMPLETE; else OK. */
enum state_status state_grace_check(struct state_server *ss, struct state_client *c, bool reclaim);
/* RECLAIM_COMPLETE (4.1, rca_one_fs false): COMPLETE_ALREADY the second time; records
 * the client; ends grace early once every client of the reclaim set completed. */
enum state_status state_reclaim_complete(struct state_server *ss, struct state_client *c);
/* Ends the grace period now (administrator). */
void state_end_grace(struct state_server *ss);

/* ------------------------------------------------------------------------------ */
/* Introspection (tests, statistics)                                               */
/* ------------------------------------------------------------------------------ */
struct state_stats {
    unsigned clients, courtesy_clients, sessions, owners, stids, files, delegs;
    unsigned delegs_awaiting; /* delegations awaiting recovery after client restarts */
    unsigned reclaim_set;   /* previous-boot records still allowed to reclaim */
    bool db_ok;             /* the reclaim database is usable */
};
void state_stats(struct state_server *ss, struct state_stats *st);

/* ------------------------------------------------------------------------------ */
/* Callback path lookups for cb/ (state_cb.c)                                      */
/* ------------------------------------------------------------------------------ */

/* The session to call a 4.1 client back on: its most recently created live session
 * whose back channel is usable (a back connection bound and the path not reported
 * down), referenced (state_session_put); NULL when none (or a 4.0 client). */
struct state_session *state_client_back_session(struct state_client *c);
/* Who the callbacks on a session's back channel say they come from: what the client
 * asked for in csa_sec_parms or BACKCHANNEL_CTL (RFC 8881 18.33, 18.36), AUTH_NONE (0)
 * or AUTH_SYS (1) with its uid, gid and machine name (stamp not kept). A session starts
 * as AUTH_SYS uid 0, gid 0, machine name "peernfsd" until nfs4/ records the client's. */
#define STATE_CB_MACHINE_MAX 255
struct state_cb_sec {
    uint32_t flavor;
    uint32_t uid, gid;
    uint32_t machinename_len;
    char machinename[STATE_CB_MACHINE_MAX + 1]; /* NUL-terminated */
};
/* Sets the session's callback credential, and its callback program unless `program` is
 * NULL. Found by clientid + session id; BADSESSION when unknown. */
enum state_status state_session_set_cb_sec(struct state_server *ss, uint64_t clientid,
                                           const uint8_t sessionid[STATE_SESSIONID_SIZE],
                                           const uint32_t *program, const struct state_cb_sec *sec);
void state_session_cb_sec(struct state_session *s, struct state_cb_sec *out);

#endif
