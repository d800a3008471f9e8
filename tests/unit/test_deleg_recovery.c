/*
 * state/: delegations awaiting recovery after a CLIENT restart (deleg_recovery.c).
 * A client incarnation replaced by a new one (4.0 SETCLIENTID_CONFIRM, 4.1
 * CREATE_SESSION) leaves its delegations awaiting CLAIM_DELEGATE_PREV; the reclaim
 * converts one into an ordinary delegation; conflicts, the lease timer and DELEGPURGE
 * discard them without recalls or DELAY; grace answers GRACE. Fake clock.
 */
#include "state/state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "state_check.h"

#define LEASE_MS (STATE_CHECK_LEASE_S * 1000u)

static const uint8_t V3[8] = {3, 3, 3, 3, 3, 3, 3, 3};

/* 4.0 SETCLIENTID + CONFIRM with the callback path marked up: the client, referenced. */
static struct state_client *client40(struct state_server *ss, const char *id, const uint8_t *verf,
                                     const struct state_principal *p)
{
    uint64_t cid;
    uint8_t conf[8];
    struct state_cb_info cb = {.program = 0x40000000, .ident = 1, .netid = "tcp", .addr = "127.0.0.1.3.4"};
    CHECK_ST(state_setclientid(ss, id, strlen(id), verf, p, &cb, &cid, conf), STATE_OK);
    CHECK_ST(state_setclientid_confirm(ss, cid, conf, p), STATE_OK);
    struct state_client *c = NULL;
    CHECK_ST(state_client_lookup(ss, cid, &c), STATE_OK);
    if (c)
        state_client_set_cb_up(c, true);
    return c;
}

static int fake_conn; /* a 4.1 back channel connection: any distinct pointer */

/* 4.1 EXCHANGE_ID + CREATE_SESSION (back channel bound) + RECLAIM_COMPLETE. */
static struct state_client *client41(struct state_server *ss, const char *owner, const uint8_t *verf)
{
    struct state_exchange_id_res r;
    CHECK_ST(state_exchange_id(ss, owner, strlen(owner), verf, 0, &P1, 1, &r), STATE_OK);
    struct state_create_session_args a = {0};
    a.clientid = r.clientid;
    a.sequence = r.sequenceid;
    a.flags = STATE_CREATE_SESSION_CONN_BACK_CHAN;
    a.fore = (struct state_channel_attrs){0, 1 << 20, 1 << 20, 4096, 8, 4};
    a.back = (struct state_channel_attrs){0, 4096, 4096, 0, 2, 1};
    a.cb_program = 0x40000000;
    a.principal = &P1;
    a.conn = &fake_conn;
    struct state_create_session_res cr;
    CHECK_ST(state_create_session(ss, &a, &cr), STATE_OK);
    struct state_client *c = NULL;
    CHECK_ST(state_client_lookup(ss, r.clientid, &c), STATE_OK);
    if (c)
        CHECK_ST(state_reclaim_complete(ss, c), STATE_OK);
    return c;
}

static struct state_owner *owner_of(struct state_server *ss, struct state_client *c, const char *name)
{
    struct state_owner *o = NULL;
    bool created;
    CHECK_ST(state_open_owner_get(ss, c, name, strlen(name), &o, &created), STATE_OK);
    return o;
}

/* An OPEN of `key`; res->open (and res->deleg) are referenced on success. */
static enum state_status open_file(struct state_server *ss, struct state_owner *o, const char *key,
                                   uint32_t access, enum state_deleg_type want, enum state_open_claim claim,
                                   struct state_open_res *res)
{
    struct state_open_args oa = {.owner = o, .file_key = key, .file_key_len = strlen(key),
                                 .share_access = access, .claim = claim, .want_deleg = want};
    return state_open(ss, &oa, res);
}

static void res_put(struct state_open_res *res)
{
    if (res->open)
        state_stid_put(res->open);
    if (res->deleg)
        state_stid_put(res->deleg);
    memset(res, 0, sizeof(*res));
}

/* Opens `key` and expects a delegation of `type`; returns its stateid. */
static struct state_stateid delegated(struct state_server *ss, struct state_owner *o, const char *key,
                                      enum state_deleg_type type)
{
    uint32_t access = type == STATE_DELEG_WRITE ? STATE_SHARE_ACCESS_BOTH : STATE_SHARE_ACCESS_READ;
    struct state_open_res res;
    CHECK_ST(open_file(ss, o, key, access, type, STATE_CLAIM_NULL, &res), STATE_OK);
    CHECK(res.deleg && res.deleg_type == type);
    struct state_stateid sid = res.deleg_stateid;
    res_put(&res);
    return sid;
}

/* The queued work holds no CB_RECALL (probes are fine); returns how many recalls. */
static size_t recalls_queued(struct state_server *ss, bool tick)
{
    struct state_work *w;
    size_t n = tick ? state_tick(ss, &w) : state_work_take(ss, &w), recalls = 0;
    for (size_t i = 0; i < n; i++)
        recalls += w[i].kind == STATE_WORK_CB_RECALL;
    state_work_free(w, n);
    return recalls;
}

static unsigned real_delegs(struct state_server *ss)
{
    struct state_stats st;
    state_stats(ss, &st);
    return st.delegs;
}

static enum state_status awaiting(struct state_server *ss, struct state_client *c, const char *key,
                                  enum state_deleg_type *type)
{
    return state_deleg_awaiting(ss, c, key, strlen(key), type);
}

/* 4.0: the reboot keeps both delegations awaiting (no recall, old stateids EXPIRED);
 * CLAIM_DELEGATE_PREV converts one into a new, recallable delegation of the same type,
 * consuming the record; a second reclaim or one of another file is RECLAIM_BAD. */
static void test_replace_and_reclaim_40(void)
{
    struct state_server *ss = new_server(NULL, true);
    struct state_client *a = client40(ss, "client-a", V1, &P1);
    struct state_owner *o = owner_of(ss, a, "a-owner");
    struct state_stateid rd = delegated(ss, o, "FILE-R", STATE_DELEG_READ);
    struct state_stateid wd = delegated(ss, o, "FILE-W", STATE_DELEG_WRITE);
    state_owner_put(o);
    recalls_queued(ss, false);
    CHECK(real_delegs(ss) == 2 && state_deleg_awaiting_count(ss) == 0);

    /* the reboot: a new incarnation, confirmed */
    struct state_client *a2 = client40(ss, "client-a", V2, &P1);
    CHECK(a2 && state_client_id(a2) != state_client_id(a));
    CHECK(real_delegs(ss) == 0 && state_deleg_awaiting_count(ss) == 2 && state_deleg_count(ss) == 2);
    CHECK(recalls_queued(ss, false) == 0);
    struct state_stid *st;
    CHECK_ST(state_stateid_lookup(ss, NULL, &wd, STATE_STID_DELEG, 0, &st), STATE_ERR_EXPIRED);
    enum state_deleg_type type;
    CHECK_ST(awaiting(ss, a2, "FILE-R", &type), STATE_OK);
    CHECK(type == STATE_DELEG_READ);
    CHECK_ST(awaiting(ss, a2, "FILE-W", &type), STATE_OK);
    CHECK(type == STATE_DELEG_WRITE);
    CHECK_ST(awaiting(ss, a2, "FILE-X", &type), STATE_ERR_RECLAIM_BAD);
    CHECK_ST(awaiting(ss, a, "FILE-W", &type), STATE_ERR_RECLAIM_BAD); /* the old one has none */

    /* the reclaim: an ordinary open (4.0: OPEN_CONFIRM needed) plus a new delegation */
    struct state_owner *o2 = owner_of(ss, a2, "a2-owner");
    struct state_open_res res;
    CHECK_ST(open_file(ss, o2, "FILE-W", STATE_SHARE_ACCESS_BOTH, STATE_DELEG_NONE, STATE_CLAIM_DELEGATE_PREV, &res),
             STATE_OK);
    CHECK(res.open && res.confirm_needed);
    CHECK(res.deleg && res.deleg_type == STATE_DELEG_WRITE);
    CHECK(memcmp(res.deleg_stateid.other, wd.other, STATE_STATEID_OTHER_SIZE) != 0);
    CHECK(memcmp(res.deleg_stateid.other, rd.other, STATE_STATEID_OTHER_SIZE) != 0);
    CHECK(real_delegs(ss) == 1 && state_deleg_awaiting_count(ss) == 1);
    struct state_stid *d = res.deleg;
    res.deleg = NULL;
    res_put(&res);
    CHECK_ST(open_file(ss, o2, "FILE-W", STATE_SHARE_ACCESS_READ, STATE_DELEG_NONE, STATE_CLAIM_DELEGATE_PREV, &res),
             STATE_ERR_RECLAIM_BAD);
    CHECK_ST(open_file(ss, o2, "FILE-X", STATE_SHARE_ACCESS_READ, STATE_DELEG_NONE, STATE_CLAIM_DELEGATE_PREV, &res),
             STATE_ERR_RECLAIM_BAD);
    /* it is an ordinary delegation: an NFSv3 reader recalls it (DELAY, CB_RECALL) */
    CHECK(state_deleg_break_for_file(ss, "FILE-W", 6, false));
    CHECK(recalls_queued(ss, false) == 1);
    CHECK_ST(state_delegreturn(ss, d), STATE_OK);
    state_stid_put(d);

    /* a reclaim that fails a share check keeps its record: the client may retry (the
     * deny comes from another owner of the same client: another client's deny READ
     * would have discarded the record, as any access that needs a read recall does) */
    struct state_owner *od = owner_of(ss, a2, "a2-deny");
    struct state_open_args deny = {.owner = od, .file_key = "FILE-R", .file_key_len = 6,
                                   .share_access = STATE_SHARE_ACCESS_READ, .share_deny = STATE_SHARE_DENY_READ};
    CHECK_ST(state_open(ss, &deny, &res), STATE_OK);
    struct state_stid *dopen = res.open;
    CHECK(state_deleg_awaiting_count(ss) == 1);
    CHECK_ST(open_file(ss, o2, "FILE-R", STATE_SHARE_ACCESS_READ, STATE_DELEG_NONE, STATE_CLAIM_DELEGATE_PREV, &res),
             STATE_ERR_SHARE_DENIED);
    CHECK(state_deleg_awaiting_count(ss) == 1);
    struct state_stateid closed;
    CHECK_ST(state_close(ss, dopen, NULL, NULL, &closed), STATE_OK);
    state_stid_put(dopen);
    CHECK_ST(open_file(ss, o2, "FILE-R", STATE_SHARE_ACCESS_READ, STATE_DELEG_NONE, STATE_CLAIM_DELEGATE_PREV, &res),
             STATE_OK);
    CHECK(res.deleg && res.deleg_type == STATE_DELEG_READ && state_deleg_awaiting_count(ss) == 0);
    res_put(&res);

    state_owner_put(od);
    state_owner_put(o2);
    state_client_put(a2);
    state_client_put(a);
    state_server_destroy(ss);
}

/* 4.1: the reboot is EXCHANGE_ID with a new verifier + the CREATE_SESSION confirming it:
 * nothing awaits before the confirmation. Conflicts discard the records without DELAY
 * or recalls: another client's open, an NFSv3 write, a local process's open. */
static void test_conflicts_discard_41(void)
{
    struct state_server *ss = new_server(NULL, true);
    struct state_client *a = client41(ss, "client-41", V1);
    struct state_owner *o = owner_of(ss, a, "a-owner");
    delegated(ss, o, "F-W", STATE_DELEG_WRITE);
    delegated(ss, o, "F-R", STATE_DELEG_READ);
    delegated(ss, o, "F-L", STATE_DELEG_WRITE);
    delegated(ss, o, "F-S", STATE_DELEG_READ);
    state_owner_put(o);
    recalls_queued(ss, false);

    struct state_exchange_id_res r;
    CHECK_ST(state_exchange_id(ss, "client-41", 9, V2, 0, &P1, 1, &r), STATE_OK);
    CHECK(real_delegs(ss) == 4 && state_deleg_awaiting_count(ss) == 0); /* not confirmed yet */
    state_client_put(a);
    a = client41(ss, "client-41", V2);
    CHECK(real_delegs(ss) == 0 && state_deleg_awaiting_count(ss) == 4);

    struct state_client *b = client41(ss, "client-b", V1);
    struct state_owner *ob = owner_of(ss, b, "b-owner");
    struct state_open_res res;
    /* another client's read of a file whose WRITE delegation awaits: no DELAY, discarded */
    CHECK_ST(open_file(ss, ob, "F-W", STATE_SHARE_ACCESS_READ, STATE_DELEG_NONE, STATE_CLAIM_NULL, &res), STATE_OK);
    res_put(&res);
    CHECK(state_deleg_awaiting_count(ss) == 3);
    /* its read of a READ one shares (the record stays, b may even get a read delegation) */
    CHECK_ST(open_file(ss, ob, "F-R", STATE_SHARE_ACCESS_READ, STATE_DELEG_READ, STATE_CLAIM_NULL, &res), STATE_OK);
    CHECK(res.deleg != NULL);
    res_put(&res);
    CHECK(state_deleg_awaiting_count(ss) == 3);
    /* an NFSv3 write: not delayed, the record goes */
    CHECK(!state_deleg_break_for_file(ss, "F-S", 3, false)); /* a v3 read: shares */
    CHECK(state_deleg_awaiting_count(ss) == 3);
    CHECK(!state_deleg_break_for_file(ss, "F-S", 3, true));
    CHECK(state_deleg_awaiting_count(ss) == 2);
    /* a local process: the watch stays while a record awaits; its open discards it */
    CHECK(state_deleg_held(ss, "F-L", 3, false));
    CHECK(!state_deleg_held(ss, "F-L", 3, true));
    CHECK(!state_deleg_held(ss, "F-L", 3, false));
    CHECK(state_deleg_awaiting_count(ss) == 1);
    CHECK(recalls_queued(ss, false) == 0);

    /* what is left is reclaimable (the read shares with b's read delegation) ... */
    struct state_owner *o2 = owner_of(ss, a, "a2-owner");
    enum state_deleg_type type;
    CHECK_ST(awaiting(ss, a, "F-W", &type), STATE_ERR_RECLAIM_BAD);
    CHECK_ST(awaiting(ss, a, "F-S", &type), STATE_ERR_RECLAIM_BAD);
    CHECK_ST(awaiting(ss, a, "F-L", &type), STATE_ERR_RECLAIM_BAD);
    CHECK_ST(open_file(ss, o2, "F-W", STATE_SHARE_ACCESS_READ, STATE_DELEG_NONE, STATE_CLAIM_DELEGATE_PREV, &res),
             STATE_ERR_RECLAIM_BAD);
    CHECK_ST(open_file(ss, o2, "F-R", STATE_SHARE_ACCESS_READ, STATE_DELEG_NONE, STATE_CLAIM_DELEGATE_PREV, &res),
             STATE_OK);
    CHECK(res.deleg && res.deleg_type == STATE_DELEG_READ && !res.confirm_needed);
    res_put(&res);
    /* ... and then an ordinary read delegation: b's write open recalls it (DELAY) */
    CHECK_ST(open_file(ss, ob, "F-R", STATE_SHARE_ACCESS_WRITE, STATE_DELEG_NONE, STATE_CLAIM_NULL, &res),
             STATE_ERR_DELAY);
    CHECK(recalls_queued(ss, false) == 1); /* a's (b's own is no conflict) */
    CHECK(state_deleg_awaiting_count(ss) == 0);

    state_owner_put(o2);
    state_owner_put(ob);
    state_client_put(b);
    state_client_put(a);
    state_server_destroy(ss);
}

/* The set goes one lease after the confirmation; DELEGPURGE takes it at once; another
 * principal's take-over of the owner id keeps nothing; a second reboot carries the
 * unreclaimed set over. */
static void test_timeout_purge(void)
{
    struct state_server *ss = new_server(NULL, true);
    struct state_client *a = client40(ss, "client-t", V1, &P1);
    struct state_owner *o = owner_of(ss, a, "t-owner");
    delegated(ss, o, "T-1", STATE_DELEG_READ);
    delegated(ss, o, "T-2", STATE_DELEG_READ);
    state_owner_put(o);
    state_client_put(a);
    a = client40(ss, "client-t", V2, &P1);
    CHECK(state_deleg_awaiting_count(ss) == 2);
    enum state_deleg_type type;
    fake_now += LEASE_MS - 1;
    CHECK_ST(state_renew(ss, state_client_id(a)), STATE_OK);
    recalls_queued(ss, true);
    CHECK(state_deleg_awaiting_count(ss) == 2);
    /* a second reboot before any reclaim: the set moves on, its timer restarts */
    state_client_put(a);
    a = client40(ss, "client-t", V3, &P1);
    CHECK(state_deleg_awaiting_count(ss) == 2);
    CHECK_ST(awaiting(ss, a, "T-2", &type), STATE_OK);
    fake_now += LEASE_MS - 1;
    CHECK_ST(state_renew(ss, state_client_id(a)), STATE_OK);
    recalls_queued(ss, true);
    CHECK(state_deleg_awaiting_count(ss) == 2);
    fake_now += 2;
    CHECK_ST(state_renew(ss, state_client_id(a)), STATE_OK);
    recalls_queued(ss, true);
    CHECK(state_deleg_awaiting_count(ss) == 0 && state_deleg_count(ss) == 0);
    CHECK_ST(awaiting(ss, a, "T-1", &type), STATE_ERR_RECLAIM_BAD);
    struct state_owner *o2 = owner_of(ss, a, "t2-owner");
    struct state_open_res res;
    CHECK_ST(open_file(ss, o2, "T-1", STATE_SHARE_ACCESS_READ, STATE_DELEG_NONE, STATE_CLAIM_DELEGATE_PREV, &res),
             STATE_ERR_RECLAIM_BAD);
    state_owner_put(o2);

    /* DELEGPURGE */
    o2 = owner_of(ss, a, "t3-owner");
    delegated(ss, o2, "T-3", STATE_DELEG_READ);
    state_owner_put(o2);
    state_client_put(a);
    a = client40(ss, "client-t", V1, &P1);
    CHECK(state_deleg_awaiting_count(ss) == 1);
    CHECK_ST(state_delegpurge(ss, a), STATE_OK);
    CHECK(state_deleg_awaiting_count(ss) == 0 && state_deleg_count(ss) == 0);
    CHECK_ST(state_delegpurge(ss, a), STATE_OK); /* nothing left: still OK */
    CHECK_ST(awaiting(ss, a, "T-3", &type), STATE_ERR_RECLAIM_BAD);

    /* another principal's record for the id (the old one expired) keeps nothing */
    o2 = owner_of(ss, a, "t4-owner");
    delegated(ss, o2, "T-4", STATE_DELEG_READ);
    state_owner_put(o2);
    fake_now += 2 * LEASE_MS;
    recalls_queued(ss, true); /* a becomes a courtesy client */
    struct state_client *p2 = client40(ss, "client-t", V2, &P2);
    CHECK(p2 != NULL && state_deleg_awaiting_count(ss) == 0 && state_deleg_count(ss) == 0);
    state_client_put(p2);
    state_client_put(a);
    state_server_destroy(ss);
}

/* RFC 8881 18.16.3 / RFC 7530 16.16.5: the claim is no grace-period reclaim: GRACE
 * during grace. A delegation reclaimed with CLAIM_PREVIOUS in grace, then the client
 * restarts: its record awaits until a lease after grace ends. */
static void test_grace(void)
{
    char dir[] = "/tmp/test_deleg_recovery.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    /* boot 1: the client gets a record */
    struct state_server *ss = new_server(dir, true);
    struct state_client *a = client40(ss, "client-g", V1, &P1);
    struct state_owner *o = owner_of(ss, a, "g-owner");
    struct state_open_res res;
    CHECK_ST(open_file(ss, o, "G-1", STATE_SHARE_ACCESS_READ, STATE_DELEG_NONE, STATE_CLAIM_NULL, &res), STATE_OK);
    struct state_stateid sid;
    CHECK_ST(state_open_confirm(ss, res.open, &sid), STATE_OK);
    res_put(&res);
    state_owner_put(o);
    state_client_put(a);
    state_server_destroy(ss);

    /* boot 2: in grace, the delegation comes back with CLAIM_PREVIOUS */
    ss = new_server(dir, true);
    CHECK(state_in_grace(ss));
    a = client40(ss, "client-g", V1, &P1);
    o = owner_of(ss, a, "g-owner");
    struct state_open_args prev = {.owner = o, .file_key = "G-1", .file_key_len = 3,
                                   .share_access = STATE_SHARE_ACCESS_READ, .claim = STATE_CLAIM_PREVIOUS,
                                   .reclaim_deleg = STATE_DELEG_READ};
    CHECK_ST(state_open(ss, &prev, &res), STATE_OK);
    CHECK(res.deleg != NULL);
    res_put(&res);
    state_owner_put(o);
    state_client_put(a);
    /* the client restarts during grace */
    a = client40(ss, "client-g", V2, &P1);
    CHECK(state_deleg_awaiting_count(ss) == 1);
    enum state_deleg_type type;
    CHECK_ST(awaiting(ss, a, "G-1", &type), STATE_ERR_GRACE);
    o = owner_of(ss, a, "g2-owner");
    CHECK_ST(open_file(ss, o, "G-1", STATE_SHARE_ACCESS_READ, STATE_DELEG_NONE, STATE_CLAIM_DELEGATE_PREV, &res),
             STATE_ERR_GRACE);
    /* grace ends on time (20 s); the record is still there for a lease after that */
    fake_now += 20000 + LEASE_MS - 1;
    CHECK_ST(state_renew(ss, state_client_id(a)), STATE_OK);
    recalls_queued(ss, true);
    CHECK(!state_in_grace(ss) && state_deleg_awaiting_count(ss) == 1);
    CHECK_ST(open_file(ss, o, "G-1", STATE_SHARE_ACCESS_READ, STATE_DELEG_NONE, STATE_CLAIM_DELEGATE_PREV, &res),
             STATE_OK);
    CHECK(res.deleg && res.deleg_type == STATE_DELEG_READ);
    res_put(&res);
    state_owner_put(o);
    state_client_put(a);
    state_server_destroy(ss);
    char path[64];
    snprintf(path, sizeof(path), "%s/nfs4-clients.db", dir);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    test_replace_and_reclaim_40();
    test_conflicts_discard_41();
    test_timeout_purge();
    test_grace();
    if (check_failures) {
        fprintf(stderr, "%d failure(s)\n", check_failures);
        return 1;
    }
    printf("deleg_recovery: all tests passed\n");
    return 0;
}
