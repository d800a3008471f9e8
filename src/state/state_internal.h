/*
 * Private structures of state/. Everything here is guarded by state_server.mu unless a
 * comment says otherwise; reference counts too (they change only under mu).
 *
 * Object lifetime: a table holds one reference on each object it lists. "Unhashing"
 * (close, destroy, expiry) removes the object from every table and list, marks it dead
 * and drops that reference; holders of other references still see a valid, dead object.
 * Children reference their parents (stid -> client, owner, file; session -> client), so
 * a parent is freed after its last child.
 */
#ifndef PEERNFS_STATE_INTERNAL_H
#define PEERNFS_STATE_INTERNAL_H

#include "state/state.h"

#include <pthread.h>

/* ---- intrusive doubly linked list ---- */
struct dlist {
    struct dlist *prev, *next;
};
static inline void dlist_init(struct dlist *l) { l->prev = l->next = l; }
static inline bool dlist_empty(const struct dlist *l) { return l->next == l; }
static inline void dlist_add_tail(struct dlist *head, struct dlist *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}
static inline void dlist_del(struct dlist *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}
#define container_of(p, T, m) ((T *)(void *)((char *)(p) - offsetof(T, m)))
#define dlist_for_each_safe(pos, tmp, head) \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); (pos) = (tmp), (tmp) = (pos)->next)

/* ---- intrusive hash table (chained, grows x2 past load 1) ---- */
struct hnode {
    struct hnode *next;
    uint64_t hash;
};
struct htab {
    struct hnode **b;
    size_t n, count;
};
void htab_init(struct htab *t);
void htab_free(struct htab *t);
bool htab_insert(struct htab *t, struct hnode *node, uint64_t hash); /* false: no memory */
void htab_remove(struct htab *t, struct hnode *node);
static inline struct hnode *htab_bucket(const struct htab *t, uint64_t hash)
{
    return t->n ? t->b[hash & (t->n - 1)] : NULL;
}
uint64_t st_hash(const void *p, size_t len, uint64_t seed);

/* ---- deferred work, run after mu is released ---- */
enum deferred_kind { DEF_RELEASE_HOST = 1, DEF_CONN_RELEASE, DEF_REC_ADD, DEF_REC_REMOVE, DEF_REC_PURGE };
struct deferred {
    enum deferred_kind kind;
    uint64_t clientid;
    void *conn;
    uint8_t *owner; /* record ops: malloc'd copy */
    size_t owner_len;
};

struct recovery;

/* one reclaim-set entry: an owner id with a record from a previous boot */
struct reclaim_entry {
    struct hnode h;
    bool completed;
    size_t len;
    uint8_t owner[];
};

struct state_server {
    pthread_mutex_t mu;
    pthread_cond_t cbga_answered; /* broadcast when a CB_GETATTR ends (CLOCK_MONOTONIC) */
    struct state_params p;
    char *state_dir;
    uint64_t lease_ms, grace_ms, courtesy_ms;
    uint32_t epoch;
    uint64_t seed;
    uint32_t next_client;
    uint64_t next_stid, next_session;

    struct htab clients_by_id, clients_by_owner, sessions, stids, files, owners;
    struct dlist clients;  /* every client, oldest first */
    struct dlist recalls;  /* delegations being recalled, oldest recall first */
    unsigned nclients, ncourtesy, nsessions, nowners, nstids, nfiles;
    /* Delegations in existence (revoked ones until freed), and delegations awaiting
     * recovery (deleg_recovery.c). Changed under mu; read without it by
     * state_deleg_count, the NFSv3/NLM fast path. */
    _Atomic unsigned ndelegs, nawaiting;

    struct state_work *work; /* queued, handed out by state_work_take */
    size_t nwork, work_cap;
    bool work_signal;        /* call work_ready after unlock */

    struct deferred *def;
    size_t ndef, def_cap;

    /* grace + reclaim (recovery.c) */
    pthread_mutex_t db_mu;   /* serialises database writes, taken before mu is dropped */
    struct recovery *rec;
    struct htab reclaim;     /* reclaim_entry by owner */
    unsigned reclaim_total, reclaim_pending;
    bool in_grace;
    uint64_t grace_end_ms;
    bool destroying;         /* server teardown: records are kept */

    /* ids of discarded 4.0 clients answering EXPIRED (expired.c): a FIFO ring of
     * expired_cap entries, hashed by key */
    struct expired_entry *expired;
    size_t expired_cap, expired_next;
    struct htab expired_tab;
};

struct state_client {
    struct state_server *ss;
    unsigned refs;
    struct hnode by_id, by_owner;
    struct dlist link;
    uint64_t clientid;
    uint8_t *owner;
    size_t owner_len;
    uint8_t verifier[STATE_VERIFIER_SIZE];
    uint8_t principal[STATE_PRINCIPAL_MAX];
    size_t principal_len;
    uint32_t minorversion;
    bool confirmed, dead, courtesy, cb_up, has_record, reclaim_complete;
    uint64_t created_ms, renewed_ms, courtesy_ms;
    /* 4.0 */
    uint8_t confirm[STATE_VERIFIER_SIZE];
    struct state_cb_info cb;
    bool pending_update; /* SETCLIENTID callback update awaiting its confirm */
    uint8_t pending_confirm[STATE_VERIFIER_SIZE];
    struct state_cb_info pending_cb;
    /* 4.1 CREATE_SESSION sequencing */
    uint32_t cs_seqid;
    bool cs_done;        /* a CREATE_SESSION ran with cs_seqid */
    void *cs_reply;
    size_t cs_reply_len;
    struct dlist sessions, owners, delegs;
    unsigned nsessions, nowners;
    unsigned revoked_delegs, admin_revoked;
    /* delegations of the incarnation this one replaced, awaiting CLAIM_DELEGATE_PREV
     * (struct deleg_awaiting: client_link) until awaiting_until_ms */
    struct dlist awaiting;
    uint64_t awaiting_until_ms;
};

struct state_slot {
    struct state_session *sess;
    uint32_t id;
    uint32_t seqid;
    bool in_use, cached, used;
    uint64_t checksum;
    void *reply;
    size_t reply_len;
};

struct cb_slot {
    uint32_t seqid, sent;
    bool in_use;
};

struct session_conn {
    void *conn;
    enum state_conn_dir dir;
    uint64_t bound; /* order of binding: the newest back conn is the back channel */
};

#define SESSION_MAX_CONNS 16

struct state_session {
    struct state_server *ss;
    unsigned refs;
    struct hnode h;
    struct dlist link;
    struct state_client *client;
    uint8_t id[STATE_SESSIONID_SIZE];
    struct state_channel_attrs fore, back;
    uint32_t flags, cb_program;
    bool conn_binding_required, dead, wants_back, cb_path_down;
    struct state_slot *slots;
    struct cb_slot *cb_slots;
    struct session_conn conns[SESSION_MAX_CONNS];
    unsigned nconns;
    uint64_t bind_counter;
    struct state_cb_sec cb_sec; /* state_cb.c: the credential of our callbacks */
};

struct state_file {
    struct state_server *ss;
    unsigned refs;
    struct hnode h;
    struct dlist opens, locks, delegs;
    struct dlist awaiting; /* struct deleg_awaiting: file_link */
    size_t key_len;
    uint8_t key[STATE_FILE_KEY_MAX];
};

enum owner_kind { OWNER_OPEN = 1, OWNER_LOCK = 2 };

struct state_owner {
    struct state_server *ss;
    unsigned refs;
    struct hnode h;
    struct dlist link; /* in client->owners */
    enum owner_kind kind;
    struct state_client *client;
    struct dlist stids;
    unsigned nstids;
    bool dead, confirmed, has_seq, busy;
    uint32_t seqid;
    void *reply;
    size_t reply_len;
    bool reply_cached;
    struct lock_owner *lo; /* lock owners: the lock space's owner */
    /* 4.0 open owners: the last closed open, still in ss->stids (dead) with a reference
     * of this field, for a replay of its CLOSE (STATE_LOOKUP_ALLOW_CLOSED) */
    struct state_stid *closed;
    size_t key_len;
    uint8_t key[]; /* owner bytes */
};

struct state_stid {
    struct state_server *ss;
    unsigned refs;
    struct hnode h;
    enum state_stid_type type;
    uint8_t other[STATE_STATEID_OTHER_SIZE];
    uint32_t seqid;
    bool dead, revoked, admin_revoked;
    struct state_client *client;
    struct state_file *file;
    struct dlist file_link;  /* in file->opens / locks / delegs */
    struct dlist owner_link; /* open/lock: in owner->stids; deleg: in client->delegs */
    struct state_owner *owner; /* open/lock */
    /* open */
    uint32_t share_access, share_deny;
    uint32_t access_bmap, deny_bmap; /* values OPENed with (bit 1 << value) */
    struct dlist locks;              /* lock stids made through this open */
    /* lock */
    struct state_stid *open;
    struct dlist open_link;
    /* deleg */
    enum state_deleg_type dtype;
    bool recalling;
    uint64_t recall_ms;
    struct dlist recall_link;
    /* write deleg: CB_GETATTR for other clients' GETATTR (state_deleg_getattr) */
    enum { CBGA_NONE = 0, CBGA_SENT, CBGA_ANSWERED, CBGA_FAILED } cbga;
    uint64_t cbga_ms; /* sent, or answered, at */
    struct state_deleg_attrs cbga_attrs;
};

/* state.c */
void st_lock(struct state_server *ss);
void st_unlock(struct state_server *ss); /* runs deferred work after releasing mu */
uint64_t st_now(struct state_server *ss);
bool st_defer(struct state_server *ss, enum deferred_kind kind, uint64_t clientid, void *conn,
              const void *owner, size_t owner_len);
bool st_queue_work(struct state_server *ss, enum state_work_kind kind, struct state_client *c,
                   struct state_stid *deleg);
void st_random(void *buf, size_t len);
void st_put_be32(uint8_t *p, uint32_t v);
void st_put_be64(uint8_t *p, uint64_t v);

/* expired.c: EXPIRED for the ids of discarded 4.0 clients (a stateid's other, or the
 * clientid as 8 bytes BE + 4 zero bytes: a stateid's last byte, its type, is never 0) */
#define EXPIRED_KEY_SIZE STATE_STATEID_OTHER_SIZE
struct expired_entry {
    struct hnode h;
    bool used;
    uint8_t key[EXPIRED_KEY_SIZE];
};
void expired_add_client_locked(struct state_server *ss, struct state_client *c);
bool expired_stateid_locked(struct state_server *ss, const uint8_t other[STATE_STATEID_OTHER_SIZE]);
bool expired_clientid_locked(struct state_server *ss, uint64_t clientid);
void expired_free(struct state_server *ss);

/* client.c */
void client_put_locked(struct state_client *c);
void client_destroy_locked(struct state_server *ss, struct state_client *c, bool drop_record);
void client_renew_locked(struct state_server *ss, struct state_client *c);
bool client_expire_if_courtesy_locked(struct state_server *ss, struct state_client *c);
struct state_client *client_find_locked(struct state_server *ss, uint64_t clientid);
void client_record_locked(struct state_server *ss, struct state_client *c);
bool client_cb_up_locked(struct state_client *c);
void clients_tick_locked(struct state_server *ss, uint64_t now);

/* session.c */
void session_destroy_locked(struct state_server *ss, struct state_session *s);
void session_put_locked(struct state_session *s);

/* stateid.c */
struct state_stid *stid_new_locked(struct state_server *ss, enum state_stid_type type,
                                   struct state_client *c, struct state_file *f);
void stid_unhash_locked(struct state_server *ss, struct state_stid *st);
void stid_put_locked(struct state_stid *st);
bool stid_keep_closed_locked(struct state_server *ss, struct state_stid *st);
void stid_forget_closed_locked(struct state_server *ss, struct state_stid *st);
struct state_file *file_get_locked(struct state_server *ss, const void *key, size_t len, bool create);
void file_put_locked(struct state_file *f);

/* open.c */
void owner_destroy_locked(struct state_server *ss, struct state_owner *o);
void owner_put_locked(struct state_owner *o);

/* deleg.c */
enum state_status deleg_conflicts_locked(struct state_server *ss, struct state_file *f,
                                         struct state_client *asking, bool want_write);
enum state_status deleg_conflicts_own_locked(struct state_server *ss, struct state_file *f,
                                             struct state_client *c, struct state_owner *o);
void deleg_tick_locked(struct state_server *ss, uint64_t now);
bool deleg_recall_pending_locked(struct state_file *f);
struct state_stid *deleg_try_grant_locked(struct state_server *ss, struct state_stid *open,
                                          enum state_deleg_type want, bool reclaim,
                                          bool *recall_pending);

/* deleg_recovery.c: a delegation of a replaced client incarnation, kept for its
 * successor's CLAIM_DELEGATE_PREV / CLAIM_DELEG_PREV_FH. It has no stateid (the new
 * incarnation never knew one) and is never recalled: see the policy there. */
struct deleg_awaiting {
    struct dlist client_link;    /* in client->awaiting */
    struct dlist file_link;      /* in file->awaiting */
    struct state_client *client; /* borrowed: the client frees its records first */
    struct state_file *file;     /* referenced */
    enum state_deleg_type dtype;
};
void deleg_awaiting_adopt_locked(struct state_server *ss, struct state_client *old, struct state_client *c);
void deleg_awaiting_purge_locked(struct state_server *ss, struct state_client *c);
void deleg_awaiting_conflicts_locked(struct state_server *ss, struct state_file *f,
                                     struct state_client *asking, bool want_write);
struct deleg_awaiting *deleg_awaiting_find_locked(struct state_file *f, struct state_client *c);
void deleg_awaiting_free_locked(struct state_server *ss, struct deleg_awaiting *a);
void deleg_awaiting_tick_locked(struct state_server *ss, uint64_t now);

/* recovery.c: the database (all calls under db_mu) and the grace logic (under mu) */
struct recovery *recovery_open(const char *dir, uint32_t *prev_epoch);
void recovery_close(struct recovery *r);
bool recovery_load(struct recovery *r, void (*fn)(void *ctx, const void *owner, size_t len), void *ctx);
bool recovery_set_epoch(struct recovery *r, uint32_t epoch);
bool recovery_add(struct recovery *r, const void *owner, size_t len, uint32_t epoch, int64_t wall);
bool recovery_remove(struct recovery *r, const void *owner, size_t len);
bool recovery_purge_before(struct recovery *r, uint32_t epoch);
void grace_start(struct state_server *ss);
void grace_update_locked(struct state_server *ss, uint64_t now);
void grace_end_locked(struct state_server *ss);
struct reclaim_entry *reclaim_find_locked(struct state_server *ss, const void *owner, size_t len);
enum state_status grace_check_locked(struct state_server *ss, struct state_client *c, bool reclaim);

#endif
