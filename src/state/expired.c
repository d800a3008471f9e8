/*
 * What is left of a discarded 4.0 client: its clientid and stateids, so that they
 * answer EXPIRED rather than STALE_CLIENTID / BAD_STATEID (RFC 7530 9.6.3: a client
 * whose lease expired learns that its state is gone; 16.29.5 RENEW; knfsd answers the
 * same for any id of this boot whose client is gone). A client's state is discarded by
 * lease expiry (courtesy period over, courtesy cap, a conflict) or by its reboot
 * (SETCLIENTID_CONFIRM of a new verifier replaces the old record).
 *
 * Bounded: a FIFO ring of max_expired_ids keys (allocated on first use), hashed for
 * lookup; the oldest are forgotten first and then answer as unknown ids do. 4.1 clients
 * are not recorded: with sessions a stateid of a client that is gone is BAD_STATEID
 * (RFC 8881 8.2.4) and its clientid STALE_CLIENTID.
 */
#include "state/state_internal.h"

#include <stdlib.h>
#include <string.h>

static uint64_t expired_hash(struct state_server *ss, const uint8_t key[EXPIRED_KEY_SIZE])
{
    return st_hash(key, EXPIRED_KEY_SIZE, ss->seed ^ 0x65787069726564ull);
}

static void clientid_key(uint64_t clientid, uint8_t key[EXPIRED_KEY_SIZE])
{
    memset(key, 0, EXPIRED_KEY_SIZE);
    st_put_be64(key, clientid);
}

static bool expired_has_locked(struct state_server *ss, const uint8_t key[EXPIRED_KEY_SIZE])
{
    for (struct hnode *e = htab_bucket(&ss->expired_tab, expired_hash(ss, key)); e; e = e->next) {
        struct expired_entry *x = container_of(e, struct expired_entry, h);
        if (memcmp(x->key, key, EXPIRED_KEY_SIZE) == 0)
            return true;
    }
    return false;
}

/* Best effort: without memory the id just answers as an unknown one. */
static void expired_add_locked(struct state_server *ss, const uint8_t key[EXPIRED_KEY_SIZE])
{
    if (!ss->expired) {
        ss->expired_cap = ss->p.max_expired_ids;
        if (!(ss->expired = calloc(ss->expired_cap, sizeof(*ss->expired))))
            return;
        ss->expired_next = 0;
    }
    struct expired_entry *x = &ss->expired[ss->expired_next];
    ss->expired_next = (ss->expired_next + 1) % ss->expired_cap;
    if (x->used)
        htab_remove(&ss->expired_tab, &x->h);
    memcpy(x->key, key, EXPIRED_KEY_SIZE);
    x->used = htab_insert(&ss->expired_tab, &x->h, expired_hash(ss, key));
}

/* Called as the client is destroyed, before its owners go (their stateids are listed). */
void expired_add_client_locked(struct state_server *ss, struct state_client *c)
{
    if (c->minorversion != 0 || !c->confirmed || ss->destroying)
        return;
    uint8_t key[EXPIRED_KEY_SIZE];
    clientid_key(c->clientid, key);
    expired_add_locked(ss, key);
    for (struct dlist *p = c->delegs.next; p != &c->delegs; p = p->next)
        expired_add_locked(ss, container_of(p, struct state_stid, owner_link)->other);
    for (struct dlist *p = c->owners.next; p != &c->owners; p = p->next) {
        struct state_owner *o = container_of(p, struct state_owner, link);
        for (struct dlist *q = o->stids.next; q != &o->stids; q = q->next)
            expired_add_locked(ss, container_of(q, struct state_stid, owner_link)->other);
        if (o->closed)
            expired_add_locked(ss, o->closed->other);
    }
}

bool expired_stateid_locked(struct state_server *ss, const uint8_t other[STATE_STATEID_OTHER_SIZE])
{
    return other[STATE_STATEID_OTHER_SIZE - 1] != 0 && expired_has_locked(ss, other);
}

bool expired_clientid_locked(struct state_server *ss, uint64_t clientid)
{
    uint8_t key[EXPIRED_KEY_SIZE];
    clientid_key(clientid, key);
    return expired_has_locked(ss, key);
}

void expired_free(struct state_server *ss)
{
    free(ss->expired);
    ss->expired = NULL;
    ss->expired_cap = ss->expired_next = 0;
    htab_free(&ss->expired_tab);
}
