/*
 * Sessions (RFC 8881 2.10): CREATE_SESSION sequencing and confirmation, the fore channel
 * slot table with its reply cache (2.10.6), bound connections and the back channel,
 * the back channel slot table for CB_SEQUENCE.
 *
 * A session id = boot epoch (4) | counter (8) | random (4): ids of a previous boot or a
 * guessed counter both miss (BADSESSION).
 */
#include "state/state_internal.h"

#include <stdlib.h>
#include <string.h>

/* Smallest ca_maxrequestsize / ca_maxresponsesize accepted: room for the RPC header,
 * SEQUENCE and a small op (a client may ask for little and get REP_TOO_BIG per op,
 * RFC 8881 18.36.3). */
#define MIN_CHANNEL_REQUEST 256u
#define MIN_CHANNEL_RESPONSE 128u

static uint64_t sessionid_hash(struct state_server *ss, const uint8_t id[STATE_SESSIONID_SIZE])
{
    return st_hash(id, STATE_SESSIONID_SIZE, ss->seed ^ 0x73657373ull);
}

static struct state_session *session_find_locked(struct state_server *ss,
                                                 const uint8_t id[STATE_SESSIONID_SIZE])
{
    for (struct hnode *e = htab_bucket(&ss->sessions, sessionid_hash(ss, id)); e; e = e->next) {
        struct state_session *s = container_of(e, struct state_session, h);
        if (memcmp(s->id, id, STATE_SESSIONID_SIZE) == 0)
            return s;
    }
    return NULL;
}

void session_put_locked(struct state_session *s)
{
    if (--s->refs)
        return;
    for (uint32_t i = 0; i < s->fore.maxrequests; i++)
        free(s->slots[i].reply);
    free(s->slots);
    free(s->cb_slots);
    client_put_locked(s->client);
    free(s);
}

static void conn_remove_at(struct state_server *ss, struct state_session *s, unsigned i)
{
    if (ss->p.conn_release)
        st_defer(ss, DEF_CONN_RELEASE, 0, s->conns[i].conn, NULL, 0);
    s->conns[i] = s->conns[--s->nconns];
}

void session_destroy_locked(struct state_server *ss, struct state_session *s)
{
    if (s->dead)
        return;
    s->dead = true;
    while (s->nconns)
        conn_remove_at(ss, s, s->nconns - 1);
    htab_remove(&ss->sessions, &s->h);
    dlist_del(&s->link);
    s->client->nsessions--;
    ss->nsessions--;
    session_put_locked(s);
}

static int conn_index(const struct state_session *s, const void *conn)
{
    for (unsigned i = 0; i < s->nconns; i++)
        if (s->conns[i].conn == conn)
            return (int)i;
    return -1;
}

/* Binds (or re-binds with a new direction) a connection. A full table forgets its
 * least recently bound connection: a client rebinding endlessly cannot grow it. */
static void conn_bind_locked(struct state_server *ss, struct state_session *s, void *conn,
                             enum state_conn_dir dir)
{
    int i = conn_index(s, conn);
    if (i < 0) {
        if (s->nconns == SESSION_MAX_CONNS) {
            unsigned oldest = 0;
            for (unsigned j = 1; j < s->nconns; j++)
                if (s->conns[j].bound < s->conns[oldest].bound)
                    oldest = j;
            conn_remove_at(ss, s, oldest);
        }
        i = (int)s->nconns++;
        s->conns[i].conn = conn;
        if (ss->p.conn_hold)
            ss->p.conn_hold(conn);
    }
    s->conns[i].dir = dir;
    s->conns[i].bound = ++s->bind_counter;
    if (dir & STATE_CONN_BACK) {
        s->wants_back = true;
        s->cb_path_down = false;
    }
}

static bool negotiate(struct state_channel_attrs *out, const struct state_channel_attrs *req,
                      const struct state_channel_attrs *max)
{
    if (req->maxrequestsize < MIN_CHANNEL_REQUEST || req->maxresponsesize < MIN_CHANNEL_RESPONSE)
        return false;
#define CLAMP(f) out->f = req->f < max->f ? req->f : max->f
    CLAMP(maxrequestsize);
    CLAMP(maxresponsesize);
    CLAMP(maxresponsesize_cached);
    CLAMP(maxoperations);
    CLAMP(maxrequests);
#undef CLAMP
    out->headerpadsize = 0;
    if (out->maxrequests == 0)
        out->maxrequests = 1;
    if (out->maxoperations == 0)
        out->maxoperations = 1;
    return true;
}

enum state_status state_create_session(struct state_server *ss,
                                       const struct state_create_session_args *args,
                                       struct state_create_session_res *res)
{
    memset(res, 0, sizeof(*res));
    st_lock(ss);
    enum state_status st = STATE_OK;
    struct state_client *c = client_find_locked(ss, args->clientid);
    if (!c || c->minorversion == 0) {
        st = STATE_ERR_STALE_CLIENTID;
        goto out;
    }
    if (!c->confirmed) {
        size_t plen = args->principal ? args->principal->len : 0;
        if (plen > STATE_PRINCIPAL_MAX)
            plen = STATE_PRINCIPAL_MAX;
        if (plen != c->principal_len || (plen && memcmp(c->principal, args->principal->name, plen))) {
            st = STATE_ERR_CLID_INUSE;
            goto out;
        }
    } else if (c->cs_done && args->sequence == c->cs_seqid) {
        if (!c->cs_reply) {
            st = STATE_ERR_DELAY; /* the original is still being answered */
            goto out;
        }
        if (!(res->replay = malloc(c->cs_reply_len))) {
            st = STATE_ERR_RESOURCE;
            goto out;
        }
        memcpy(res->replay, c->cs_reply, c->cs_reply_len);
        res->replay_len = c->cs_reply_len;
        res->sequence = args->sequence;
        st = STATE_ERR_REPLAY;
        goto out;
    }
    if (args->sequence != c->cs_seqid + 1) {
        st = STATE_ERR_SEQ_MISORDERED;
        goto out;
    }
    struct state_channel_attrs fore, back;
    if (!negotiate(&fore, &args->fore, &ss->p.fore_max) || !negotiate(&back, &args->back, &ss->p.back_max)) {
        st = STATE_ERR_TOOSMALL;
        goto out;
    }
    if (c->nsessions >= ss->p.max_sessions_per_client) {
        st = STATE_ERR_RESOURCE;
        goto out;
    }
    struct state_session *s = calloc(1, sizeof(*s));
    if (s) {
        s->slots = calloc(fore.maxrequests, sizeof(*s->slots));
        s->cb_slots = calloc(back.maxrequests, sizeof(*s->cb_slots));
    }
    if (!s || !s->slots || !s->cb_slots) {
        if (s) {
            free(s->slots);
            free(s->cb_slots);
        }
        free(s);
        st = STATE_ERR_RESOURCE;
        goto out;
    }
    s->ss = ss;
    s->refs = 1;
    s->fore = fore;
    s->back = back;
    s->flags = args->flags & STATE_CREATE_SESSION_CONN_BACK_CHAN;
    s->cb_program = args->cb_program;
    s->cb_sec.flavor = 1; /* AUTH_SYS, uid 0, gid 0, until nfs4/ sets the client's */
    s->cb_sec.machinename_len = sizeof("peernfsd") - 1;
    memcpy(s->cb_sec.machinename, "peernfsd", sizeof("peernfsd"));
    s->conn_binding_required = args->conn_binding_required;
    for (uint32_t i = 0; i < fore.maxrequests; i++) {
        s->slots[i].sess = s;
        s->slots[i].id = i;
    }
    st_put_be32(s->id, ss->epoch);
    st_put_be64(s->id + 4, ss->next_session++);
    st_random(s->id + 12, 4);
    if (!htab_insert(&ss->sessions, &s->h, sessionid_hash(ss, s->id))) {
        free(s->slots);
        free(s->cb_slots);
        free(s);
        st = STATE_ERR_RESOURCE;
        goto out;
    }
    s->client = c;
    c->refs++;
    dlist_add_tail(&c->sessions, &s->link);
    c->nsessions++;
    ss->nsessions++;
    if (args->conn)
        conn_bind_locked(ss, s, args->conn,
                         (s->flags & STATE_CREATE_SESSION_CONN_BACK_CHAN) ? STATE_CONN_BOTH : STATE_CONN_FORE);
    if (s->flags & STATE_CREATE_SESSION_CONN_BACK_CHAN)
        s->wants_back = true;
    if (!c->confirmed) {
        struct state_client *old = NULL, *unconf = NULL;
        /* the confirmed record of the same owner (a client restart, 18.35.5 case 5) */
        struct dlist *pos, *tmp;
        dlist_for_each_safe(pos, tmp, &ss->clients) {
            struct state_client *o = container_of(pos, struct state_client, link);
            if (o != c && o->confirmed && o->owner_len == c->owner_len &&
                memcmp(o->owner, c->owner, c->owner_len) == 0)
                old = o;
        }
        (void)unconf;
        if (old) { /* its delegations await recovery by c (deleg_recovery.c) */
            deleg_awaiting_adopt_locked(ss, old, c);
            client_destroy_locked(ss, old, true);
        }
        c->confirmed = true;
    }
    c->cs_seqid = args->sequence;
    c->cs_done = true;
    free(c->cs_reply);
    c->cs_reply = NULL;
    c->cs_reply_len = 0;
    client_renew_locked(ss, c);
    memcpy(res->sessionid, s->id, STATE_SESSIONID_SIZE);
    res->sequence = args->sequence;
    res->flags = s->flags;
    res->fore = fore;
    res->back = back;
out:
    st_unlock(ss);
    return st;
}

void state_create_session_cache_reply(struct state_server *ss, uint64_t clientid,
                                      const void *bytes, size_t len)
{
    st_lock(ss);
    struct state_client *c = client_find_locked(ss, clientid);
    if (c && c->cs_done) {
        void *copy = malloc(len ? len : 1);
        if (copy) {
            memcpy(copy, bytes, len);
            free(c->cs_reply);
            c->cs_reply = copy;
            c->cs_reply_len = len;
        }
    }
    st_unlock(ss);
}

enum state_status state_destroy_session(struct state_server *ss,
                                        const uint8_t sessionid[STATE_SESSIONID_SIZE],
                                        bool called_on_it)
{
    st_lock(ss);
    struct state_session *s = session_find_locked(ss, sessionid);
    enum state_status st = STATE_ERR_BADSESSION;
    if (s) {
        unsigned busy = 0;
        for (uint32_t i = 0; i < s->fore.maxrequests; i++)
            busy += s->slots[i].in_use;
        if (busy > (called_on_it ? 1u : 0u)) {
            st = STATE_ERR_DELAY;
        } else {
            session_destroy_locked(ss, s);
            st = STATE_OK;
        }
    }
    st_unlock(ss);
    return st;
}

enum state_status state_bind_conn_to_session(struct state_server *ss,
                                             const uint8_t sessionid[STATE_SESSIONID_SIZE],
                                             void *conn, enum state_conn_dir *dir)
{
    if (*dir < STATE_CONN_FORE || *dir > STATE_CONN_BOTH)
        return STATE_ERR_INVAL;
    st_lock(ss);
    struct state_session *s = session_find_locked(ss, sessionid);
    enum state_status st = STATE_ERR_BADSESSION;
    if (s && !s->client->dead) {
        conn_bind_locked(ss, s, conn, *dir);
        client_renew_locked(ss, s->client);
        st = STATE_OK;
    }
    st_unlock(ss);
    return st;
}

void state_conn_dead(struct state_server *ss, void *conn)
{
    st_lock(ss);
    for (size_t b = 0; b < ss->sessions.n; b++)
        for (struct hnode *e = ss->sessions.b[b]; e; e = e->next) {
            struct state_session *s = container_of(e, struct state_session, h);
            int i = conn_index(s, conn);
            if (i >= 0)
                conn_remove_at(ss, s, (unsigned)i);
        }
    st_unlock(ss);
}

static int back_conn_index(const struct state_session *s)
{
    int best = -1;
    for (unsigned i = 0; i < s->nconns; i++)
        if ((s->conns[i].dir & STATE_CONN_BACK) && (best < 0 || s->conns[i].bound > s->conns[best].bound))
            best = (int)i;
    return best;
}

void *state_session_back_conn(struct state_session *s)
{
    struct state_server *ss = s->ss;
    st_lock(ss);
    void *conn = NULL;
    int i = back_conn_index(s);
    if (i >= 0 && !s->cb_path_down && !s->dead) {
        conn = s->conns[i].conn;
        if (ss->p.conn_hold)
            ss->p.conn_hold(conn);
    }
    st_unlock(ss);
    return conn;
}

void state_session_cb_path_down(struct state_session *s)
{
    st_lock(s->ss);
    s->cb_path_down = true;
    st_unlock(s->ss);
}

uint32_t state_session_cb_program(struct state_session *s)
{
    st_lock(s->ss); /* BACKCHANNEL_CTL may change it */
    uint32_t prog = s->cb_program;
    st_unlock(s->ss);
    return prog;
}

static uint32_t status_flags_locked(struct state_session *s)
{
    struct state_client *c = s->client;
    uint32_t flags = 0;
    if (s->wants_back && (s->cb_path_down || back_conn_index(s) < 0))
        flags |= STATE_SEQ_CB_PATH_DOWN_SESSION;
    if (s->wants_back && !client_cb_up_locked(c))
        flags |= STATE_SEQ_CB_PATH_DOWN;
    if (c->revoked_delegs)
        flags |= STATE_SEQ_RECALLABLE_STATE_REVOKED;
    if (c->admin_revoked)
        flags |= STATE_SEQ_ADMIN_STATE_REVOKED;
    return flags;
}

enum state_status state_sequence(struct state_server *ss, const struct state_sequence_args *args,
                                 struct state_sequence_res *res)
{
    memset(res, 0, sizeof(*res));
    st_lock(ss);
    enum state_status st;
    struct state_session *s = session_find_locked(ss, args->sessionid);
    if (!s || s->client->dead) {
        st = STATE_ERR_BADSESSION;
        goto out;
    }
    if (args->slotid >= s->fore.maxrequests) {
        st = STATE_ERR_BADSLOT;
        goto out;
    }
    if (args->conn && conn_index(s, args->conn) < 0) {
        if (s->conn_binding_required) {
            st = STATE_ERR_CONN_NOT_BOUND_TO_SESSION;
            goto out;
        }
        conn_bind_locked(ss, s, args->conn, STATE_CONN_FORE);
    }
    struct state_slot *slot = &s->slots[args->slotid];
    if (slot->in_use) {
        st = STATE_ERR_DELAY;
        goto out;
    }
    if (args->sequenceid == slot->seqid + 1) {
        free(slot->reply);
        slot->reply = NULL;
        slot->reply_len = 0;
        slot->cached = false;
        slot->used = true;
        slot->in_use = true;
        slot->seqid = args->sequenceid;
        slot->checksum = args->checksum;
        st = STATE_OK;
    } else if (args->sequenceid == slot->seqid && slot->used) {
        if (args->checksum && slot->checksum && args->checksum != slot->checksum) {
            st = STATE_ERR_SEQ_FALSE_RETRY;
        } else if (!slot->cached) {
            st = STATE_ERR_RETRY_UNCACHED_REP;
        } else if (!(res->replay = malloc(slot->reply_len ? slot->reply_len : 1))) {
            st = STATE_ERR_RESOURCE;
        } else {
            memcpy(res->replay, slot->reply, slot->reply_len);
            res->replay_len = slot->reply_len;
            st = STATE_ERR_REPLAY;
        }
        goto out;
    } else {
        st = STATE_ERR_SEQ_MISORDERED;
        goto out;
    }
    client_renew_locked(ss, s->client);
    s->refs++;
    res->session = s;
    res->client = s->client;
    res->slot = slot;
    res->highest_slotid = s->fore.maxrequests - 1;
    res->target_highest_slotid = s->fore.maxrequests - 1;
    res->status_flags = status_flags_locked(s);
    res->cachethis = args->cachethis;
out:
    st_unlock(ss);
    return st;
}

enum state_status state_slot_cache_reply(struct state_slot *slot, const void *bytes, size_t len)
{
    struct state_session *s = slot->sess;
    st_lock(s->ss);
    enum state_status st = STATE_OK;
    if (len > s->fore.maxresponsesize_cached) {
        st = STATE_ERR_REP_TOO_BIG_TO_CACHE;
    } else {
        void *copy = malloc(len ? len : 1);
        if (!copy) {
            st = STATE_ERR_RESOURCE;
        } else {
            memcpy(copy, bytes, len);
            free(slot->reply);
            slot->reply = copy;
            slot->reply_len = len;
            slot->cached = true;
        }
    }
    st_unlock(s->ss);
    return st;
}

void state_slot_done(struct state_slot *slot)
{
    struct state_session *s = slot->sess;
    st_lock(s->ss);
    slot->in_use = false;
    st_unlock(s->ss);
}

void state_slot_abandon(struct state_slot *slot)
{
    struct state_session *s = slot->sess;
    st_lock(s->ss);
    slot->seqid--;
    slot->checksum = 0;
    slot->in_use = false;
    st_unlock(s->ss);
}

struct state_session *state_session_ref(struct state_session *s)
{
    st_lock(s->ss);
    s->refs++;
    st_unlock(s->ss);
    return s;
}

void state_session_put(struct state_session *s)
{
    if (!s)
        return;
    struct state_server *ss = s->ss;
    st_lock(ss);
    session_put_locked(s);
    st_unlock(ss);
}

struct state_client *state_session_client(struct state_session *s) { return s->client; }

void state_session_id(const struct state_session *s, uint8_t out[STATE_SESSIONID_SIZE])
{
    memcpy(out, s->id, STATE_SESSIONID_SIZE);
}

int state_cb_slot_get(struct state_session *s, uint32_t *slotid, uint32_t *seqid,
                      uint32_t *highest_slotid)
{
    st_lock(s->ss);
    int r = -1;
    for (uint32_t i = 0; i < s->back.maxrequests && !s->dead; i++)
        if (!s->cb_slots[i].in_use) {
            s->cb_slots[i].in_use = true;
            s->cb_slots[i].sent = s->cb_slots[i].seqid + 1;
            *slotid = i;
            *seqid = s->cb_slots[i].sent;
            *highest_slotid = s->back.maxrequests - 1;
            r = 0;
            break;
        }
    st_unlock(s->ss);
    return r;
}

void state_cb_slot_put(struct state_session *s, uint32_t slotid, bool answered)
{
    st_lock(s->ss);
    if (slotid < s->back.maxrequests) {
        struct cb_slot *cs = &s->cb_slots[slotid];
        if (answered)
            cs->seqid = cs->sent;
        cs->in_use = false;
    }
    st_unlock(s->ss);
}

void state_session_fore_attrs(const struct state_session *s, struct state_channel_attrs *out)
{
    *out = s->fore; /* fixed at CREATE_SESSION: no lock needed */
}
