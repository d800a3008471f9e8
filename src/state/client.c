/*
 * Client records: SETCLIENTID/SETCLIENTID_CONFIRM (4.0), EXCHANGE_ID (4.1),
 * DESTROY_CLIENTID, leases and courteous expiry.
 *
 * A client id = boot epoch << 32 | counter, so a clientid of a previous boot is told
 * apart (STALE_CLIENTID). By owner id there can be at most one confirmed and one
 * unconfirmed record; the 4.0 callback-update case keeps its pending callback inside the
 * confirmed record, because it shares that record's clientid.
 *
 * Leases: any use renews. When a lease runs out the client becomes a "courtesy" client:
 * it keeps everything until a conflict asks for its state (expire_if_courtesy), it has
 * been expired for courtesy_max_s, or there are too many courtesy clients.
 */
#include "state/state_internal.h"

#include "lock/lock.h"
#include "util/log.h"

#include <stdlib.h>
#include <string.h>

static uint64_t owner_hash(struct state_server *ss, const void *owner, size_t len)
{
    return st_hash(owner, len, ss->seed ^ 0x636c69656e74ull);
}

static uint64_t clientid_hash(struct state_server *ss, uint64_t id)
{
    uint8_t b[8];
    st_put_be64(b, id);
    return st_hash(b, sizeof(b), ss->seed);
}

struct state_client *client_find_locked(struct state_server *ss, uint64_t clientid)
{
    for (struct hnode *e = htab_bucket(&ss->clients_by_id, clientid_hash(ss, clientid)); e; e = e->next) {
        struct state_client *c = container_of(e, struct state_client, by_id);
        if (c->clientid == clientid)
            return c;
    }
    return NULL;
}

/* The confirmed and the unconfirmed record of an owner id (either may be NULL). */
static void client_find_owner_locked(struct state_server *ss, const void *owner, size_t len,
                                     struct state_client **confirmed, struct state_client **unconfirmed)
{
    *confirmed = *unconfirmed = NULL;
    for (struct hnode *e = htab_bucket(&ss->clients_by_owner, owner_hash(ss, owner, len)); e; e = e->next) {
        struct state_client *c = container_of(e, struct state_client, by_owner);
        if (c->owner_len == len && memcmp(c->owner, owner, len) == 0) {
            if (c->confirmed)
                *confirmed = c;
            else
                *unconfirmed = c;
        }
    }
}

static bool principal_eq(const struct state_client *c, const struct state_principal *p)
{
    size_t len = p ? p->len : 0;
    if (len > STATE_PRINCIPAL_MAX)
        len = STATE_PRINCIPAL_MAX;
    return c->principal_len == len && (len == 0 || memcmp(c->principal, p->name, len) == 0);
}

static struct state_client *client_new_locked(struct state_server *ss, const void *owner, size_t len,
                                              const uint8_t verifier[STATE_VERIFIER_SIZE],
                                              const struct state_principal *p, uint32_t minorversion)
{
    if (ss->nclients >= ss->p.max_clients)
        return NULL;
    struct state_client *c = calloc(1, sizeof(*c));
    if (!c || !(c->owner = malloc(len))) {
        free(c);
        return NULL;
    }
    memcpy(c->owner, owner, len);
    c->owner_len = len;
    c->ss = ss;
    c->refs = 1; /* the tables' */
    memcpy(c->verifier, verifier, STATE_VERIFIER_SIZE);
    if (p && p->len) {
        c->principal_len = p->len > STATE_PRINCIPAL_MAX ? STATE_PRINCIPAL_MAX : p->len;
        memcpy(c->principal, p->name, c->principal_len);
    }
    c->minorversion = minorversion;
    c->clientid = (uint64_t)ss->epoch << 32 | ss->next_client++;
    if (ss->next_client == 0)
        ss->next_client = 1;
    c->created_ms = c->renewed_ms = st_now(ss);
    dlist_init(&c->sessions);
    dlist_init(&c->owners);
    dlist_init(&c->delegs);
    dlist_init(&c->awaiting);
    if (!htab_insert(&ss->clients_by_id, &c->by_id, clientid_hash(ss, c->clientid))) {
        free(c->owner);
        free(c);
        return NULL;
    }
    if (!htab_insert(&ss->clients_by_owner, &c->by_owner, owner_hash(ss, owner, len))) {
        htab_remove(&ss->clients_by_id, &c->by_id);
        free(c->owner);
        free(c);
        return NULL;
    }
    dlist_add_tail(&ss->clients, &c->link);
    ss->nclients++;
    return c;
}

void client_put_locked(struct state_client *c)
{
    if (--c->refs)
        return;
    free(c->owner);
    free(c->cs_reply);
    free(c);
}

/* Records the client for reclaim after a restart: once, when it first holds confirmed
 * state (a deferred database write, never on every op). */
void client_record_locked(struct state_server *ss, struct state_client *c)
{
    if (c->has_record || c->dead || !ss->rec)
        return;
    if (st_defer(ss, DEF_REC_ADD, 0, NULL, c->owner, c->owner_len))
        c->has_record = true;
}

/* Destroys the client and all its state. drop_record: its reclaim record goes too
 * (DESTROY_CLIENTID, expiry, replacement) — not at server teardown. */
void client_destroy_locked(struct state_server *ss, struct state_client *c, bool drop_record)
{
    if (c->dead)
        return;
    c->dead = true;
    expired_add_client_locked(ss, c); /* its ids answer EXPIRED from now on (4.0) */
    struct dlist *pos, *tmp;
    dlist_for_each_safe(pos, tmp, &c->sessions)
        session_destroy_locked(ss, container_of(pos, struct state_session, link));
    dlist_for_each_safe(pos, tmp, &c->delegs)
        stid_unhash_locked(ss, container_of(pos, struct state_stid, owner_link));
    deleg_awaiting_purge_locked(ss, c);
    bool had_owners = !dlist_empty(&c->owners);
    dlist_for_each_safe(pos, tmp, &c->owners)
        owner_destroy_locked(ss, container_of(pos, struct state_owner, link));
    if (had_owners && ss->p.locks)
        st_defer(ss, DEF_RELEASE_HOST, c->clientid, NULL, NULL, 0);
    if (drop_record && c->has_record)
        st_defer(ss, DEF_REC_REMOVE, 0, NULL, c->owner, c->owner_len);
    if (c->courtesy)
        ss->ncourtesy--;
    c->courtesy = false;
    htab_remove(&ss->clients_by_id, &c->by_id);
    htab_remove(&ss->clients_by_owner, &c->by_owner);
    dlist_del(&c->link);
    ss->nclients--;
    client_put_locked(c);
}

void client_renew_locked(struct state_server *ss, struct state_client *c)
{
    c->renewed_ms = st_now(ss);
    if (c->courtesy) {
        c->courtesy = false;
        ss->ncourtesy--;
    }
}

static bool client_lease_live(struct state_server *ss, const struct state_client *c)
{
    return !c->courtesy && st_now(ss) - c->renewed_ms <= ss->lease_ms;
}

static bool client_has_state(const struct state_client *c)
{
    return !dlist_empty(&c->owners) || !dlist_empty(&c->delegs) || !dlist_empty(&c->sessions);
}

bool client_expire_if_courtesy_locked(struct state_server *ss, struct state_client *c)
{
    if (c->dead)
        return true; /* already gone: the conflict is too */
    if (client_lease_live(ss, c))
        return false;
    log_info("state: expiring courtesy client %016llx on conflict", (unsigned long long)c->clientid);
    client_destroy_locked(ss, c, true);
    return true;
}

bool client_cb_up_locked(struct state_client *c)
{
    if (c->minorversion == 0)
        return c->cb_up;
    struct dlist *pos, *tmp;
    dlist_for_each_safe(pos, tmp, &c->sessions) {
        struct state_session *s = container_of(pos, struct state_session, link);
        if (s->cb_path_down)
            continue;
        for (unsigned i = 0; i < s->nconns; i++)
            if (s->conns[i].dir & STATE_CONN_BACK)
                return true;
    }
    return false;
}

/* Lease ends: courtesy or destroy; courtesy ends: destroy. */
void clients_tick_locked(struct state_server *ss, uint64_t now)
{
    struct dlist *pos, *tmp;
    dlist_for_each_safe(pos, tmp, &ss->clients) {
        struct state_client *c = container_of(pos, struct state_client, link);
        if (!c->confirmed) {
            if (now - c->created_ms > ss->lease_ms)
                client_destroy_locked(ss, c, true);
            continue;
        }
        if (c->courtesy) {
            if (now - c->courtesy_ms > ss->courtesy_ms)
                client_destroy_locked(ss, c, true);
            continue;
        }
        if (now - c->renewed_ms <= ss->lease_ms)
            continue;
        if (!client_has_state(c)) {
            client_destroy_locked(ss, c, true);
            continue;
        }
        c->courtesy = true;
        c->courtesy_ms = now;
        ss->ncourtesy++;
    }
    /* too many courtesy clients: the longest expired go first */
    while (ss->ncourtesy > ss->p.max_courtesy_clients) {
        struct state_client *oldest = NULL;
        dlist_for_each_safe(pos, tmp, &ss->clients) {
            struct state_client *c = container_of(pos, struct state_client, link);
            if (c->courtesy && (!oldest || c->courtesy_ms < oldest->courtesy_ms))
                oldest = c;
        }
        if (!oldest)
            break;
        client_destroy_locked(ss, oldest, true);
    }
}

/* ---- 4.0 ---- */

enum state_status state_setclientid(struct state_server *ss, const void *id, size_t id_len,
                                    const uint8_t verifier[STATE_VERIFIER_SIZE],
                                    const struct state_principal *principal,
                                    const struct state_cb_info *cb,
                                    uint64_t *clientid, uint8_t confirm[STATE_VERIFIER_SIZE])
{
    if (!id || id_len == 0 || id_len > STATE_OWNER_MAX)
        return STATE_ERR_INVAL;
    st_lock(ss);
    struct state_client *conf, *unconf;
    client_find_owner_locked(ss, id, id_len, &conf, &unconf);
    if (conf && !principal_eq(conf, principal)) {
        if (client_lease_live(ss, conf) && client_has_state(conf)) {
            st_unlock(ss);
            return STATE_ERR_CLID_INUSE;
        }
        client_destroy_locked(ss, conf, true);
        conf = NULL;
    }
    if (unconf)
        client_destroy_locked(ss, unconf, true);
    if (conf && memcmp(conf->verifier, verifier, STATE_VERIFIER_SIZE) == 0) {
        /* callback update: same clientid, applied at SETCLIENTID_CONFIRM */
        conf->pending_update = true;
        st_random(conf->pending_confirm, STATE_VERIFIER_SIZE);
        if (cb)
            conf->pending_cb = *cb;
        else
            memset(&conf->pending_cb, 0, sizeof(conf->pending_cb));
        client_renew_locked(ss, conf);
        *clientid = conf->clientid;
        memcpy(confirm, conf->pending_confirm, STATE_VERIFIER_SIZE);
        st_unlock(ss);
        return STATE_OK;
    }
    /* new client or client reboot: the old confirmed record stays until the confirm */
    struct state_client *c = client_new_locked(ss, id, id_len, verifier, principal, 0);
    if (!c) {
        st_unlock(ss);
        return STATE_ERR_RESOURCE;
    }
    st_random(c->confirm, STATE_VERIFIER_SIZE);
    if (cb)
        c->cb = *cb;
    *clientid = c->clientid;
    memcpy(confirm, c->confirm, STATE_VERIFIER_SIZE);
    st_unlock(ss);
    return STATE_OK;
}

enum state_status state_setclientid_confirm(struct state_server *ss, uint64_t clientid,
                                            const uint8_t confirm[STATE_VERIFIER_SIZE],
                                            const struct state_principal *principal)
{
    st_lock(ss);
    struct state_client *c = client_find_locked(ss, clientid);
    enum state_status st = STATE_ERR_STALE_CLIENTID;
    if (!c || c->minorversion != 0)
        goto out;
    if (!principal_eq(c, principal)) {
        st = STATE_ERR_CLID_INUSE;
        goto out;
    }
    if (c->confirmed) {
        if (c->pending_update && memcmp(c->pending_confirm, confirm, STATE_VERIFIER_SIZE) == 0) {
            c->cb = c->pending_cb;
            memcpy(c->confirm, c->pending_confirm, STATE_VERIFIER_SIZE);
            c->pending_update = false;
            c->cb_up = false; /* new callback path: probe it */
            st_queue_work(ss, STATE_WORK_CB_PROBE, c, NULL);
            st = STATE_OK;
        } else if (memcmp(c->confirm, confirm, STATE_VERIFIER_SIZE) == 0) {
            st = STATE_OK; /* retransmission */
        }
        if (st == STATE_OK)
            client_renew_locked(ss, c);
        goto out;
    }
    if (memcmp(c->confirm, confirm, STATE_VERIFIER_SIZE) != 0)
        goto out;
    struct state_client *old, *unconf;
    client_find_owner_locked(ss, c->owner, c->owner_len, &old, &unconf);
    if (old) { /* the client rebooted: its previous state goes, its delegations await recovery */
        deleg_awaiting_adopt_locked(ss, old, c);
        client_destroy_locked(ss, old, true);
    }
    c->confirmed = true;
    client_renew_locked(ss, c);
    st_queue_work(ss, STATE_WORK_CB_PROBE, c, NULL);
    st = STATE_OK;
out:
    st_unlock(ss);
    return st;
}

/* ---- 4.1 ---- */

enum state_status state_exchange_id(struct state_server *ss, const void *owner, size_t owner_len,
                                    const uint8_t verifier[STATE_VERIFIER_SIZE], uint32_t flags,
                                    const struct state_principal *principal, uint32_t minorversion,
                                    struct state_exchange_id_res *res)
{
    if (!owner || owner_len == 0 || owner_len > STATE_OWNER_MAX || minorversion == 0)
        return STATE_ERR_INVAL;
    st_lock(ss);
    struct state_client *conf, *unconf, *c;
    enum state_status st = STATE_OK;
    client_find_owner_locked(ss, owner, owner_len, &conf, &unconf);
    if (flags & STATE_EXCHGID_UPD_CONFIRMED_REC_A) {
        if (!conf)
            st = STATE_ERR_NOENT;                                      /* case 9 */
        else if (!principal_eq(conf, principal))
            st = STATE_ERR_PERM;                                       /* case 8 */
        else if (memcmp(conf->verifier, verifier, STATE_VERIFIER_SIZE) != 0)
            st = STATE_ERR_NOT_SAME;                                   /* case 7 */
        c = conf;                                                      /* case 6 */
        goto done;
    }
    if (conf && !principal_eq(conf, principal)) {                      /* case 3 */
        if (client_lease_live(ss, conf) && client_has_state(conf)) {
            st = STATE_ERR_CLID_INUSE;
            goto done;
        }
        client_destroy_locked(ss, conf, true);
        conf = NULL;
    }
    if (conf && memcmp(conf->verifier, verifier, STATE_VERIFIER_SIZE) == 0) {
        c = conf;                                                      /* case 2 */
        goto done;
    }
    if (unconf)                                                        /* case 4 */
        client_destroy_locked(ss, unconf, true);
    /* case 1, or case 5 (client restart: conf goes when CREATE_SESSION confirms) */
    c = client_new_locked(ss, owner, owner_len, verifier, principal, minorversion);
    if (!c)
        st = STATE_ERR_RESOURCE;
done:
    if (st == STATE_OK) {
        client_renew_locked(ss, c);
        res->clientid = c->clientid;
        res->sequenceid = c->cs_seqid + 1;
        res->confirmed = c->confirmed;
    }
    st_unlock(ss);
    return st;
}

enum state_status state_destroy_clientid(struct state_server *ss, uint64_t clientid)
{
    st_lock(ss);
    struct state_client *c = client_find_locked(ss, clientid);
    enum state_status st = STATE_ERR_STALE_CLIENTID;
    if (c) {
        if (c->nsessions) {
            st = STATE_ERR_CLIENTID_BUSY;
        } else {
            client_destroy_locked(ss, c, true);
            st = STATE_OK;
        }
    }
    st_unlock(ss);
    return st;
}

/* A clientid with no confirmed record: EXPIRED when it was a 4.0 client whose state was
 * discarded (expired.c), else STALE_CLIENTID (unknown, unconfirmed, previous boot). */
static enum state_status client_unknown_status_locked(struct state_server *ss, uint64_t clientid)
{
    return expired_clientid_locked(ss, clientid) ? STATE_ERR_EXPIRED : STATE_ERR_STALE_CLIENTID;
}

enum state_status state_client_lookup(struct state_server *ss, uint64_t clientid,
                                      struct state_client **out)
{
    st_lock(ss);
    struct state_client *c = client_find_locked(ss, clientid);
    enum state_status st = client_unknown_status_locked(ss, clientid);
    if (c && c->confirmed) {
        client_renew_locked(ss, c);
        c->refs++;
        *out = c;
        st = STATE_OK;
    }
    st_unlock(ss);
    return st;
}

enum state_status state_renew(struct state_server *ss, uint64_t clientid)
{
    st_lock(ss);
    struct state_client *c = client_find_locked(ss, clientid);
    enum state_status st = client_unknown_status_locked(ss, clientid);
    if (c && c->confirmed) {
        client_renew_locked(ss, c);
        st = (!dlist_empty(&c->delegs) && !client_cb_up_locked(c)) ? STATE_ERR_CB_PATH_DOWN : STATE_OK;
    }
    st_unlock(ss);
    return st;
}

struct state_client *state_client_ref(struct state_client *c)
{
    st_lock(c->ss);
    c->refs++;
    st_unlock(c->ss);
    return c;
}

void state_client_put(struct state_client *c)
{
    if (!c)
        return;
    struct state_server *ss = c->ss;
    st_lock(ss);
    client_put_locked(c);
    st_unlock(ss);
}

uint64_t state_client_id(const struct state_client *c) { return c->clientid; }
uint32_t state_client_minorversion(const struct state_client *c) { return c->minorversion; }

bool state_client_cb_info(struct state_client *c, struct state_cb_info *out)
{
    st_lock(c->ss);
    bool ok = c->minorversion == 0;
    if (ok)
        *out = c->cb;
    st_unlock(c->ss);
    return ok;
}

void state_client_set_cb_up(struct state_client *c, bool up)
{
    st_lock(c->ss);
    c->cb_up = up;
    st_unlock(c->ss);
}

bool state_client_principal_is(struct state_client *c, const struct state_principal *p)
{
    st_lock(c->ss);
    bool eq = principal_eq(c, p);
    st_unlock(c->ss);
    return eq;
}

bool state_client_expire_if_courtesy(struct state_server *ss, struct state_client *c)
{
    st_lock(ss);
    bool r = client_expire_if_courtesy_locked(ss, c);
    st_unlock(ss);
    return r;
}

bool state_client_expire_if_courtesy_id(struct state_server *ss, uint64_t clientid)
{
    st_lock(ss);
    struct state_client *c = client_find_locked(ss, clientid);
    bool r = c ? client_expire_if_courtesy_locked(ss, c) : false; /* unknown: no retry loop */
    st_unlock(ss);
    return r;
}
