/*
 * state/: client records (SETCLIENTID/CONFIRM, EXCHANGE_ID cases), sessions and the slot
 * reply cache, stateids, opens/share reservations, 4.0 owner seqids, delegation recall
 * and revocation, grace and the SQLite reclaim records across "restarts". Time is a
 * fake clock the test advances.
 */
#include "state/state.h"

#include "lock/lock.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "state_check.h"


/* SETCLIENTID + CONFIRM: returns the confirmed clientid */
static uint64_t client40(struct state_server *ss, const char *id, const uint8_t *verf)
{
    uint64_t cid;
    uint8_t conf[8];
    struct state_cb_info cb = {.program = 0x40000000, .ident = 1, .netid = "tcp", .addr = "127.0.0.1.3.4"};
    CHECK_ST(state_setclientid(ss, id, strlen(id), verf, &P1, &cb, &cid, conf), STATE_OK);
    CHECK_ST(state_setclientid_confirm(ss, cid, conf, &P1), STATE_OK);
    return cid;
}

static void test_setclientid(void)
{
    struct state_server *ss = new_server(NULL, false);
    uint64_t cid, cid2;
    uint8_t conf[8], conf2[8], bad[8] = {0};
    struct state_cb_info cb = {.program = 7, .netid = "tcp", .addr = "a"};
    /* new record, unconfirmed: not usable yet */
    CHECK_ST(state_setclientid(ss, "c1", 2, V1, &P1, &cb, &cid, conf), STATE_OK);
    CHECK(cid >> 32 == state_boot_epoch(ss));
    struct state_client *c;
    CHECK_ST(state_client_lookup(ss, cid, &c), STATE_ERR_STALE_CLIENTID);
    CHECK_ST(state_setclientid_confirm(ss, cid, bad, &P1), STATE_ERR_STALE_CLIENTID);
    CHECK_ST(state_setclientid_confirm(ss, cid, conf, &P2), STATE_ERR_CLID_INUSE);
    CHECK_ST(state_setclientid_confirm(ss, cid, conf, &P1), STATE_OK);
    CHECK_ST(state_setclientid_confirm(ss, cid, conf, &P1), STATE_OK); /* retransmission */
    CHECK_ST(state_client_lookup(ss, cid, &c), STATE_OK);
    /* a probe of the callback path is queued */
    struct state_work *w;
    size_t n = state_work_take(ss, &w);
    CHECK(n == 1 && w[0].kind == STATE_WORK_CB_PROBE && w[0].client == c);
    state_work_free(w, n);
    /* callback update: same verifier -> same clientid, new cb at confirm */
    struct state_cb_info cb2 = {.program = 8, .netid = "tcp6", .addr = "b"};
    CHECK_ST(state_setclientid(ss, "c1", 2, V1, &P1, &cb2, &cid2, conf2), STATE_OK);
    CHECK(cid2 == cid);
    struct state_cb_info got;
    CHECK(state_client_cb_info(c, &got) && got.program == 7);
    CHECK_ST(state_setclientid_confirm(ss, cid, conf2, &P1), STATE_OK);
    CHECK(state_client_cb_info(c, &got) && got.program == 8 && strcmp(got.netid, "tcp6") == 0);
    n = state_work_take(ss, &w);
    state_work_free(w, n);
    /* another principal while the lease is live and state exists: CLID_INUSE */
    struct state_owner *o;
    bool created;
    CHECK_ST(state_open_owner_get(ss, c, "oo", 2, &o, &created), STATE_OK);
    CHECK_ST(state_setclientid(ss, "c1", 2, V2, &P2, &cb, &cid2, conf2), STATE_ERR_CLID_INUSE);
    /* client reboot: new verifier -> new clientid; old goes at confirm */
    CHECK_ST(state_setclientid(ss, "c1", 2, V2, &P1, &cb, &cid2, conf2), STATE_OK);
    CHECK(cid2 != cid);
    CHECK_ST(state_renew(ss, cid), STATE_OK); /* still there until the confirm */
    CHECK_ST(state_setclientid_confirm(ss, cid2, conf2, &P1), STATE_OK);
    /* the old record's state was discarded: EXPIRED, as knfsd (pynfs CID1) */
    CHECK_ST(state_renew(ss, cid), STATE_ERR_EXPIRED);
    CHECK_ST(state_renew(ss, cid2), STATE_OK);
    CHECK(state_owner_seqid_begin(o, 1, true, &(void *){0}, &(size_t){0}) == STATE_ERR_BAD_STATEID);
    state_owner_put(o);
    state_client_put(c);
    /* a clientid of a previous boot */
    CHECK_ST(state_renew(ss, (uint64_t)(state_boot_epoch(ss) - 1) << 32 | 1), STATE_ERR_STALE_CLIENTID);
    n = state_work_take(ss, &w);
    state_work_free(w, n);
    state_server_destroy(ss);
}

static struct state_create_session_args cs_args(uint64_t cid, uint32_t seq, void *conn)
{
    struct state_create_session_args a = {0};
    a.clientid = cid;
    a.sequence = seq;
    a.flags = STATE_CREATE_SESSION_CONN_BACK_CHAN | STATE_CREATE_SESSION_PERSIST;
    a.fore = (struct state_channel_attrs){0, 1 << 20, 1 << 20, 4096, 8, 4};
    a.back = (struct state_channel_attrs){0, 4096, 4096, 0, 2, 1};
    a.cb_program = 0x40000000;
    a.principal = &P1;
    a.conn = conn;
    return a;
}

static void test_exchange_id(void)
{
    struct state_server *ss = new_server(NULL, false);
    struct state_exchange_id_res r, r2;
    /* case 9 / update of nothing: NOENT */
    CHECK_ST(state_exchange_id(ss, "o1", 2, V1, STATE_EXCHGID_UPD_CONFIRMED_REC_A, &P1, 1, &r), STATE_ERR_NOENT);
    /* case 1 */
    CHECK_ST(state_exchange_id(ss, "o1", 2, V1, 0, &P1, 1, &r), STATE_OK);
    CHECK(!r.confirmed && r.sequenceid == 1);
    /* case 4: unconfirmed replaced */
    CHECK_ST(state_exchange_id(ss, "o1", 2, V1, 0, &P1, 1, &r2), STATE_OK);
    CHECK(r2.clientid != r.clientid && !r2.confirmed);
    struct state_create_session_res cr;
    struct state_create_session_args a = cs_args(r.clientid, 1, (void *)0x1);
    CHECK_ST(state_create_session(ss, &a, &cr), STATE_ERR_STALE_CLIENTID);
    a = cs_args(r2.clientid, 1, (void *)0x1);
    a.principal = &P2;
    CHECK_ST(state_create_session(ss, &a, &cr), STATE_ERR_CLID_INUSE);
    a = cs_args(r2.clientid, 2, (void *)0x1);
    CHECK_ST(state_create_session(ss, &a, &cr), STATE_ERR_SEQ_MISORDERED);
    a = cs_args(r2.clientid, 1, (void *)0x1);
    a.fore.maxrequestsize = 100;
    CHECK_ST(state_create_session(ss, &a, &cr), STATE_ERR_TOOSMALL);
    a = cs_args(r2.clientid, 1, (void *)0x1);
    CHECK_ST(state_create_session(ss, &a, &cr), STATE_OK);
    CHECK(cr.fore.maxrequests == 4 && cr.fore.maxoperations == 8 && cr.back.maxrequests == 1);
    CHECK(cr.flags == STATE_CREATE_SESSION_CONN_BACK_CHAN); /* no PERSIST */
    /* replay before the reply was cached: DELAY; after: the bytes */
    CHECK_ST(state_create_session(ss, &a, &cr), STATE_ERR_DELAY);
    state_create_session_cache_reply(ss, r2.clientid, "CSREPLY", 7);
    CHECK_ST(state_create_session(ss, &a, &cr), STATE_ERR_REPLAY);
    CHECK(cr.replay_len == 7 && memcmp(cr.replay, "CSREPLY", 7) == 0);
    free(cr.replay);
    a.sequence = 5;
    CHECK_ST(state_create_session(ss, &a, &cr), STATE_ERR_SEQ_MISORDERED);
    /* case 2: confirmed, same verifier + principal */
    CHECK_ST(state_exchange_id(ss, "o1", 2, V1, 0, &P1, 1, &r), STATE_OK);
    CHECK(r.clientid == r2.clientid && r.confirmed && r.sequenceid == 2);
    /* case 6, 7, 8 */
    CHECK_ST(state_exchange_id(ss, "o1", 2, V1, STATE_EXCHGID_UPD_CONFIRMED_REC_A, &P1, 1, &r), STATE_OK);
    CHECK(r.clientid == r2.clientid && r.confirmed);
    CHECK_ST(state_exchange_id(ss, "o1", 2, V2, STATE_EXCHGID_UPD_CONFIRMED_REC_A, &P1, 1, &r), STATE_ERR_NOT_SAME);
    CHECK_ST(state_exchange_id(ss, "o1", 2, V1, STATE_EXCHGID_UPD_CONFIRMED_REC_A, &P2, 1, &r), STATE_ERR_PERM);
    /* case 3: other principal, live lease + state (a session): CLID_INUSE */
    CHECK_ST(state_exchange_id(ss, "o1", 2, V1, 0, &P2, 1, &r), STATE_ERR_CLID_INUSE);
    /* DESTROY_CLIENTID with a session: busy */
    CHECK_ST(state_destroy_clientid(ss, r2.clientid), STATE_ERR_CLIENTID_BUSY);
    /* case 5: client restart; the old record goes at CREATE_SESSION */
    CHECK_ST(state_exchange_id(ss, "o1", 2, V2, 0, &P1, 1, &r), STATE_OK);
    CHECK(r.clientid != r2.clientid && !r.confirmed);
    struct state_client *c;
    CHECK_ST(state_client_lookup(ss, r2.clientid, &c), STATE_OK);
    state_client_put(c);
    struct state_create_session_res cr2;
    a = cs_args(r.clientid, r.sequenceid, (void *)0x2);
    CHECK_ST(state_create_session(ss, &a, &cr2), STATE_OK);
    CHECK_ST(state_client_lookup(ss, r2.clientid, &c), STATE_ERR_STALE_CLIENTID);
    struct state_sequence_args sq = {.sequenceid = 1, .slotid = 0};
    struct state_sequence_res sr;
    memcpy(sq.sessionid, cr.sessionid, STATE_SESSIONID_SIZE);
    CHECK_ST(state_sequence(ss, &sq, &sr), STATE_ERR_BADSESSION); /* went with the old client */
    /* destroy: session, then clientid */
    CHECK_ST(state_destroy_session(ss, cr2.sessionid, false), STATE_OK);
    CHECK_ST(state_destroy_session(ss, cr2.sessionid, false), STATE_ERR_BADSESSION);
    CHECK_ST(state_destroy_clientid(ss, r.clientid), STATE_OK);
    CHECK_ST(state_destroy_clientid(ss, r.clientid), STATE_ERR_STALE_CLIENTID);
    /* case 3 with an expired holder: the old record is replaced */
    CHECK_ST(state_exchange_id(ss, "o2", 2, V1, 0, &P1, 1, &r), STATE_OK);
    a = cs_args(r.clientid, 1, NULL);
    CHECK_ST(state_create_session(ss, &a, &cr), STATE_OK);
    fake_now += 11000;
    CHECK_ST(state_exchange_id(ss, "o2", 2, V1, 0, &P2, 1, &r2), STATE_OK);
    CHECK(r2.clientid != r.clientid && !r2.confirmed);
    struct state_stats stt;
    state_stats(ss, &stt);
    CHECK(stt.clients == 1 && stt.sessions == 0);
    state_server_destroy(ss);
}

/* A 4.1 client with a session that has not sent RECLAIM_COMPLETE yet. */
static struct state_client *client41_new(struct state_server *ss, const char *owner, void *conn,
                                         uint8_t sessionid[STATE_SESSIONID_SIZE])
{
    struct state_exchange_id_res r;
    CHECK_ST(state_exchange_id(ss, owner, strlen(owner), V1, 0, &P1, 1, &r), STATE_OK);
    struct state_create_session_args a = cs_args(r.clientid, r.sequenceid, conn);
    struct state_create_session_res cr;
    CHECK_ST(state_create_session(ss, &a, &cr), STATE_OK);
    memcpy(sessionid, cr.sessionid, STATE_SESSIONID_SIZE);
    struct state_client *c = NULL;
    CHECK_ST(state_client_lookup(ss, r.clientid, &c), STATE_OK);
    return c;
}

/* ... and one that has (RFC 8881 18.51.3: no new state before it). */
static struct state_client *client41(struct state_server *ss, const char *owner, void *conn,
                                     uint8_t sessionid[STATE_SESSIONID_SIZE])
{
    struct state_client *c = client41_new(ss, owner, conn, sessionid);
    if (c)
        CHECK_ST(state_reclaim_complete(ss, c), STATE_OK);
    return c;
}

static void test_slots(void)
{
    struct state_server *ss = new_server(NULL, false);
    uint8_t sid[STATE_SESSIONID_SIZE];
    struct state_client *c = client41(ss, "slots", (void *)0x10, sid);
    struct state_sequence_args a = {.sequenceid = 1, .slotid = 0, .checksum = 42, .conn = (void *)0x10};
    memcpy(a.sessionid, sid, sizeof(sid));
    struct state_sequence_res r, r2;
    CHECK_ST(state_sequence(ss, &a, &r), STATE_OK);
    CHECK(r.highest_slotid == 3 && r.target_highest_slotid == 3 && r.client == c);
    CHECK(r.status_flags == 0);
    CHECK_ST(state_sequence(ss, &a, &r2), STATE_ERR_DELAY); /* slot busy */
    CHECK_ST(state_destroy_session(ss, sid, false), STATE_ERR_DELAY);
    CHECK_ST(state_slot_cache_reply(r.slot, "REPLY1", 6), STATE_OK);
    char big[5000] = {0};
    CHECK_ST(state_slot_cache_reply(r.slot, big, sizeof(big)), STATE_ERR_REP_TOO_BIG_TO_CACHE);
    state_slot_done(r.slot);
    state_session_put(r.session);
    /* replay */
    CHECK_ST(state_sequence(ss, &a, &r2), STATE_ERR_REPLAY);
    CHECK(r2.replay_len == 6 && memcmp(r2.replay, "REPLY1", 6) == 0);
    free(r2.replay);
    a.checksum = 43;
    CHECK_ST(state_sequence(ss, &a, &r2), STATE_ERR_SEQ_FALSE_RETRY);
    /* misordered */
    a.sequenceid = 3;
    CHECK_ST(state_sequence(ss, &a, &r2), STATE_ERR_SEQ_MISORDERED);
    a.sequenceid = 0;
    CHECK_ST(state_sequence(ss, &a, &r2), STATE_ERR_SEQ_MISORDERED);
    /* uncached */
    a.sequenceid = 2;
    CHECK_ST(state_sequence(ss, &a, &r), STATE_OK);
    state_slot_done(r.slot);
    state_session_put(r.session);
    CHECK_ST(state_sequence(ss, &a, &r2), STATE_ERR_RETRY_UNCACHED_REP);
    /* abandoned (the request runs again on the blocking pool): the same seqid is new */
    a.sequenceid = 3;
    CHECK_ST(state_sequence(ss, &a, &r), STATE_OK);
    state_slot_abandon(r.slot);
    state_session_put(r.session);
    CHECK_ST(state_sequence(ss, &a, &r), STATE_OK);
    state_slot_done(r.slot);
    state_session_put(r.session);
    /* other slot, bad slot, unknown session */
    a.slotid = 3;
    a.sequenceid = 1;
    CHECK_ST(state_sequence(ss, &a, &r), STATE_OK);
    state_slot_done(r.slot);
    state_session_put(r.session);
    a.slotid = 4;
    CHECK_ST(state_sequence(ss, &a, &r2), STATE_ERR_BADSLOT);
    a.sessionid[5] ^= 1;
    CHECK_ST(state_sequence(ss, &a, &r2), STATE_ERR_BADSESSION);
    a.sessionid[5] ^= 1;
    /* back channel: the creating conn; dead -> CB_PATH_DOWN flags */
    struct state_sequence_res r3;
    a.slotid = 1;
    CHECK_ST(state_sequence(ss, &a, &r3), STATE_OK);
    void *bc = state_session_back_conn(r3.session);
    CHECK(bc == (void *)0x10);
    uint32_t slot, seq, hi;
    CHECK(state_cb_slot_get(r3.session, &slot, &seq, &hi) == 0 && slot == 0 && seq == 1 && hi == 0);
    CHECK(state_cb_slot_get(r3.session, &slot, &seq, &hi) == -1);
    state_cb_slot_put(r3.session, 0, false);
    CHECK(state_cb_slot_get(r3.session, &slot, &seq, &hi) == 0 && seq == 1); /* resent */
    state_cb_slot_put(r3.session, 0, true);
    CHECK(state_cb_slot_get(r3.session, &slot, &seq, &hi) == 0 && seq == 2);
    state_cb_slot_put(r3.session, 0, true);
    state_slot_done(r3.slot);
    state_conn_dead(ss, (void *)0x10);
    CHECK(state_session_back_conn(r3.session) == NULL);
    a.sequenceid = 2;
    a.conn = (void *)0x11; /* SP4_NONE: auto-bound to the fore channel */
    CHECK_ST(state_sequence(ss, &a, &r), STATE_OK);
    CHECK(r.status_flags & STATE_SEQ_CB_PATH_DOWN_SESSION);
    CHECK(r.status_flags & STATE_SEQ_CB_PATH_DOWN);
    state_slot_done(r.slot);
    state_session_put(r.session);
    enum state_conn_dir dir = STATE_CONN_BACK;
    CHECK_ST(state_bind_conn_to_session(ss, sid, (void *)0x12, &dir), STATE_OK);
    CHECK(state_session_back_conn(r3.session) == (void *)0x12);
    state_session_cb_path_down(r3.session);
    CHECK(state_session_back_conn(r3.session) == NULL);
    state_session_put(r3.session);
    /* lease renewal by SEQUENCE keeps the client */
    fake_now += 8000;
    a.sequenceid = 3;
    CHECK_ST(state_sequence(ss, &a, &r), STATE_OK);
    state_slot_done(r.slot);
    state_session_put(r.session);
    fake_now += 8000;
    struct state_work *w;
    {
        size_t nw_ = state_tick(ss, &w);
        state_work_free(w, nw_);
    }
    struct state_stats st;
    state_stats(ss, &st);
    CHECK(st.clients == 1 && st.courtesy_clients == 0);
    /* expiry: session-only state -> courtesy (sessions count as state), then reaped */
    fake_now += 11000;
    {
        size_t nw_ = state_tick(ss, &w);
        state_work_free(w, nw_);
    }
    state_stats(ss, &st);
    CHECK(st.courtesy_clients == 1);
    a.sequenceid = 4; /* a courtesy client coming back is live again */
    CHECK_ST(state_sequence(ss, &a, &r), STATE_OK);
    state_slot_done(r.slot);
    state_session_put(r.session);
    state_stats(ss, &st);
    CHECK(st.courtesy_clients == 0);
    state_client_put(c);
    state_server_destroy(ss);
}

static void test_stateids_and_opens(void)
{
    struct state_server *ss = new_server(NULL, false);
    uint64_t cid = client40(ss, "open-client", V1);
    uint64_t cid2 = client40(ss, "other-client", V1);
    struct state_client *c, *c2;
    CHECK_ST(state_client_lookup(ss, cid, &c), STATE_OK);
    CHECK_ST(state_client_lookup(ss, cid2, &c2), STATE_OK);
    struct state_owner *o, *o2;
    bool created;
    CHECK_ST(state_open_owner_get(ss, c, "owner1", 6, &o, &created), STATE_OK);
    CHECK(created && !state_owner_confirmed(o));
    CHECK_ST(state_open_owner_get(ss, c2, "owner2", 6, &o2, &created), STATE_OK);
    struct state_open_args oa = {.owner = o, .file_key = "FILE-A", .file_key_len = 6,
                                 .share_access = STATE_SHARE_ACCESS_READ, .share_deny = STATE_SHARE_DENY_WRITE};
    struct state_open_res res, res2;
    void *rep;
    size_t replen;
    CHECK_ST(state_owner_seqid_begin(o, 5, true, &rep, &replen), STATE_OK);
    CHECK_ST(state_open(ss, &oa, &res), STATE_OK);
    CHECK(res.confirm_needed && res.stateid.seqid == 1 && !res.deleg);
    state_owner_seqid_end(o, 5, true, "OPENREPLY", 9);
    /* replay of seqid 5 */
    CHECK_ST(state_owner_seqid_begin(o, 5, true, &rep, &replen), STATE_ERR_REPLAY);
    CHECK(replen == 9 && memcmp(rep, "OPENREPLY", 9) == 0);
    free(rep);
    CHECK_ST(state_owner_seqid_begin(o, 9, false, &rep, &replen), STATE_ERR_BAD_SEQID);
    /* OPEN_CONFIRM with seqid 6 */
    CHECK_ST(state_owner_seqid_begin(o, 6, false, &rep, &replen), STATE_OK);
    CHECK_ST(state_owner_seqid_begin(o, 6, false, &rep, &replen), STATE_ERR_DELAY); /* in progress */
    struct state_stateid sid;
    CHECK_ST(state_open_confirm(ss, res.open, &sid), STATE_OK);
    state_owner_seqid_end(o, 6, true, NULL, 0);
    CHECK(sid.seqid == 2 && state_owner_confirmed(o));
    /* stateid checks */
    struct state_stid *st;
    struct state_stateid q = sid;
    CHECK_ST(state_stateid_lookup(ss, NULL, &q, STATE_STID_OPEN, 0, &st), STATE_OK);
    state_stid_put(st);
    q.seqid = 1;
    CHECK_ST(state_stateid_lookup(ss, NULL, &q, STATE_STID_OPEN, 0, &st), STATE_ERR_OLD_STATEID);
    q.seqid = 3;
    CHECK_ST(state_stateid_lookup(ss, NULL, &q, STATE_STID_OPEN, 0, &st), STATE_ERR_BAD_STATEID);
    q.seqid = 0;
    CHECK_ST(state_stateid_lookup(ss, NULL, &q, STATE_STID_OPEN, 0, &st), STATE_ERR_OLD_STATEID);
    CHECK_ST(state_stateid_lookup(ss, NULL, &q, STATE_STID_OPEN, STATE_LOOKUP_V41, &st), STATE_OK);
    state_stid_put(st);
    q = sid;
    CHECK_ST(state_stateid_lookup(ss, NULL, &q, STATE_STID_LOCK, 0, &st), STATE_ERR_BAD_STATEID);
    CHECK_ST(state_stateid_lookup(ss, c2, &q, STATE_STID_OPEN, 0, &st), STATE_ERR_BAD_STATEID);
    q.other[0] ^= 0x80; /* another boot */
    CHECK_ST(state_stateid_lookup(ss, NULL, &q, STATE_STID_OPEN, 0, &st), STATE_ERR_STALE_STATEID);
    q = sid;
    q.other[9] ^= 0x55; /* this boot, unknown */
    CHECK_ST(state_stateid_lookup(ss, NULL, &q, STATE_STID_OPEN, 0, &st), STATE_ERR_BAD_STATEID);
    struct state_stateid sp = {0};
    CHECK(state_stateid_special(&sp) == STATE_SPECIAL_ANONYMOUS);
    sp.seqid = 1;
    CHECK(state_stateid_special(&sp) == STATE_SPECIAL_CURRENT);
    sp.seqid = UINT32_MAX;
    CHECK(state_stateid_special(&sp) == STATE_SPECIAL_INVALID);
    memset(sp.other, 0xff, sizeof(sp.other));
    CHECK(state_stateid_special(&sp) == STATE_SPECIAL_BYPASS);
    CHECK(state_stateid_special(&sid) == STATE_SPECIAL_NONE);
    CHECK_ST(state_stateid_lookup(ss, NULL, &sp, ~0u, 0, &st), STATE_ERR_BAD_STATEID);
    CHECK_ST(state_stid_check_io(res.open, false), STATE_OK);
    CHECK_ST(state_stid_check_io(res.open, true), STATE_ERR_OPENMODE);

    /* deny: another client's write open is refused (we deny write); read is fine */
    struct state_open_args ob = {.owner = o2, .file_key = "FILE-A", .file_key_len = 6,
                                 .share_access = STATE_SHARE_ACCESS_WRITE};
    CHECK_ST(state_open(ss, &ob, &res2), STATE_ERR_SHARE_DENIED);
    CHECK_ST(state_file_check_anon_io(ss, "FILE-A", 6, true, false), STATE_ERR_SHARE_DENIED);
    CHECK_ST(state_file_check_anon_io(ss, "FILE-A", 6, false, false), STATE_OK);
    ob.share_access = STATE_SHARE_ACCESS_READ;
    ob.share_deny = STATE_SHARE_DENY_READ; /* conflicts with our read access */
    CHECK_ST(state_open(ss, &ob, &res2), STATE_ERR_SHARE_DENIED);
    ob.share_deny = STATE_SHARE_DENY_NONE;
    CHECK_ST(state_open(ss, &ob, &res2), STATE_OK);
    state_stid_put(res2.open);
    /* upgrade by the same owner: same stateid, seqid + 1, union of modes. Our new deny
     * READ conflicts with the other client's read: denied */
    oa.share_access = STATE_SHARE_ACCESS_WRITE;
    oa.share_deny = STATE_SHARE_DENY_READ;
    CHECK_ST(state_open(ss, &oa, &res2), STATE_ERR_SHARE_DENIED);
    CHECK(res2.open == NULL);
    /* the owner's own deny WRITE refuses its own OPEN for WRITE (as knfsd; pynfs OPEN25) */
    oa.share_deny = STATE_SHARE_DENY_NONE;
    CHECK_ST(state_open(ss, &oa, &res2), STATE_ERR_SHARE_DENIED);
    CHECK(res2.open == NULL && state_stid_share_access(res.open) == STATE_SHARE_ACCESS_READ);
    /* a compatible upgrade: same stateid, seqid + 1, modes as the union */
    oa.share_access = STATE_SHARE_ACCESS_READ;
    struct state_open_res res3;
    CHECK_ST(state_open(ss, &oa, &res3), STATE_OK);
    CHECK(res3.open == res.open && res3.stateid.seqid == 3 && !res3.confirm_needed);
    CHECK(state_stid_share_deny(res.open) == STATE_SHARE_DENY_WRITE);
    state_stid_put(res3.open);
    /* without its deny WRITE (deny NONE was OPENed: a downgrade may go there) the owner
     * may upgrade to WRITE */
    CHECK_ST(state_open_downgrade(ss, res.open, STATE_SHARE_ACCESS_READ, STATE_SHARE_DENY_NONE, &sid), STATE_OK);
    CHECK(sid.seqid == 4);
    oa.share_access = STATE_SHARE_ACCESS_WRITE;
    CHECK_ST(state_open(ss, &oa, &res3), STATE_OK);
    CHECK(res3.open == res.open && res3.stateid.seqid == 5);
    CHECK(state_stid_share_access(res.open) == STATE_SHARE_ACCESS_BOTH);
    CHECK(state_stid_share_deny(res.open) == STATE_SHARE_DENY_NONE);
    state_stid_put(res3.open);
    /* downgrade: must be a subset AND a mode used before */
    CHECK_ST(state_open_downgrade(ss, res.open, STATE_SHARE_ACCESS_BOTH, STATE_SHARE_DENY_NONE, &sid),
             STATE_ERR_INVAL); /* BOTH never opened as such */
    CHECK_ST(state_open_downgrade(ss, res.open, STATE_SHARE_ACCESS_READ, STATE_SHARE_DENY_WRITE, &sid),
             STATE_ERR_INVAL); /* not a subset */
    CHECK_ST(state_open_downgrade(ss, res.open, STATE_SHARE_ACCESS_WRITE, STATE_SHARE_DENY_NONE, &sid), STATE_OK);
    CHECK(sid.seqid == 6);
    CHECK_ST(state_open_downgrade(ss, res.open, STATE_SHARE_ACCESS_READ, STATE_SHARE_DENY_NONE, &sid),
             STATE_ERR_INVAL); /* read is no longer held */
    CHECK_ST(state_stid_check_io(res.open, true), STATE_OK);
    /* a write-only open may READ too (knfsd; the Linux client fills partial pages) */
    CHECK_ST(state_stid_check_io(res.open, false), STATE_OK);

    /* 4.0 lock owner: open_to_lock_owner, seqid replay */
    struct state_stid *lst;
    CHECK_ST(state_lock_stateid_get(ss, res.open, "lk", 2, 10, &lst), STATE_OK);
    CHECK(state_stid_type(lst) == STATE_STID_LOCK && state_stid_lock_owner(lst) == NULL);
    struct state_stateid lsid;
    state_lock_stateid_bump(ss, lst, &lsid);
    CHECK(lsid.seqid == 1);
    struct state_owner *lo = state_stid_owner(lst);
    CHECK_ST(state_owner_seqid_begin(lo, 12, false, &rep, &replen), STATE_ERR_BAD_SEQID);
    CHECK_ST(state_owner_seqid_begin(lo, 11, false, &rep, &replen), STATE_OK);
    state_lock_stateid_bump(ss, lst, &lsid);
    state_owner_seqid_end(lo, 11, true, "LOCKOK", 6);
    CHECK_ST(state_owner_seqid_begin(lo, 11, false, &rep, &replen), STATE_ERR_REPLAY);
    CHECK(replen == 6 && memcmp(rep, "LOCKOK", 6) == 0);
    free(rep);
    /* a failing op that does not advance: the seqid stays */
    CHECK_ST(state_owner_seqid_begin(lo, 12, false, &rep, &replen), STATE_OK);
    state_owner_seqid_end(lo, 12, false, NULL, 0);
    CHECK_ST(state_owner_seqid_begin(lo, 12, false, &rep, &replen), STATE_OK);
    state_owner_seqid_end(lo, 12, true, NULL, 0);
    CHECK_ST(state_stid_check_io(lst, true), STATE_OK);
    /* same lock owner + file: same lock stateid */
    struct state_stid *lst2;
    CHECK_ST(state_lock_stateid_get(ss, res.open, "lk", 2, 99, &lst2), STATE_OK);
    CHECK(lst2 == lst);
    state_stid_put(lst2);
    /* CLOSE without a has_locks callback: the lock stateid goes with the open */
    CHECK_ST(state_close(ss, res.open, NULL, NULL, &sid), STATE_OK);
    CHECK(sid.seqid == 7);
    CHECK_ST(state_stid_check_io(lst, false), STATE_ERR_BAD_STATEID);
    CHECK_ST(state_release_lockowner(ss, cid, "lk", 2, NULL, NULL), STATE_OK);
    CHECK_ST(state_release_lockowner(ss, cid, "lk", 2, NULL, NULL), STATE_OK); /* unknown: OK */
    state_stid_put(lst);
    q = sid;
    CHECK_ST(state_stateid_lookup(ss, NULL, &q, STATE_STID_OPEN, 0, &st), STATE_ERR_BAD_STATEID);
    /* 4.0: the owner's last closed open stays findable for its CLOSE's replay ... */
    CHECK_ST(state_stateid_lookup(ss, NULL, &q, STATE_STID_OPEN, STATE_LOOKUP_ALLOW_CLOSED, &st), STATE_OK);
    CHECK(st == res.open && state_stid_closed(st));
    CHECK_ST(state_close(ss, st, NULL, NULL, &sid), STATE_ERR_BAD_STATEID);
    state_stid_put(st);
    CHECK_ST(state_stateid_lookup(ss, c2, &q, STATE_STID_OPEN, STATE_LOOKUP_ALLOW_CLOSED, &st),
             STATE_ERR_BAD_STATEID); /* another client's */
    /* ... until the owner's next seqid-mutating op starts */
    CHECK_ST(state_owner_seqid_begin(o, 7, false, &rep, &replen), STATE_OK);
    state_owner_seqid_end(o, 7, true, "CLOSED", 6);
    CHECK_ST(state_stateid_lookup(ss, NULL, &q, STATE_STID_OPEN, STATE_LOOKUP_ALLOW_CLOSED, &st),
             STATE_ERR_BAD_STATEID);
    state_stid_put(res.open);
    state_owner_put(o);
    state_owner_put(o2);
    state_client_put(c);
    state_client_put(c2);
    state_server_destroy(ss);
}

static bool locks_held_answer;
static int has_locks_calls;
static bool fake_has_locks(void *ctx, struct lock_owner *lo, const void *key, size_t len)
{
    (void)ctx;
    (void)lo;
    CHECK(len == 6 && memcmp(key, "FILE-L", 6) == 0);
    has_locks_calls++;
    return locks_held_answer;
}

/* FREE_STATEID's lock-space question runs outside the state lock: a LOCK on the same
 * lock stateid may run meanwhile (the race cthon's lock tests showed over NFSv4.1). */
static struct state_stid *race_lock_stid;
static struct state_server *race_ss;
static bool lock_during_has_locks(void *ctx, struct lock_owner *lo, const void *key, size_t len)
{
    struct state_stateid bumped;
    if (race_lock_stid)
        state_lock_stateid_bump(race_ss, race_lock_stid, &bumped);
    return fake_has_locks(ctx, lo, key, len);
}

static void test_locks_held(void)
{
    struct state_server *ss = new_server(NULL, false);
    uint8_t sid[STATE_SESSIONID_SIZE];
    struct state_client *c = client41(ss, "locker", NULL, sid);
    struct state_owner *o;
    bool created;
    CHECK_ST(state_open_owner_get(ss, c, "o", 1, &o, &created), STATE_OK);
    CHECK(state_owner_confirmed(o)); /* 4.1: no OPEN_CONFIRM */
    struct state_open_args oa = {.owner = o, .file_key = "FILE-L", .file_key_len = 6,
                                 .share_access = STATE_SHARE_ACCESS_BOTH};
    struct state_open_res res;
    CHECK_ST(state_open(ss, &oa, &res), STATE_OK);
    CHECK(!res.confirm_needed);
    struct state_stid *lst;
    CHECK_ST(state_lock_stateid_get(ss, res.open, "lk", 2, 0, &lst), STATE_OK);
    struct state_stateid lsid, sid2;
    state_lock_stateid_bump(ss, lst, &lsid);
    locks_held_answer = true;
    CHECK_ST(state_close(ss, res.open, fake_has_locks, NULL, &sid2), STATE_ERR_LOCKS_HELD);
    CHECK_ST(state_free_stateid(ss, c, &lsid, fake_has_locks, NULL), STATE_ERR_LOCKS_HELD);
    CHECK_ST(state_release_lockowner(ss, state_client_id(c), "lk", 2, fake_has_locks, NULL), STATE_ERR_LOCKS_HELD);
    CHECK(has_locks_calls == 3);
    struct state_stateid osid;
    state_stid_stateid(res.open, &osid);
    CHECK_ST(state_free_stateid(ss, c, &osid, fake_has_locks, NULL), STATE_ERR_LOCKS_HELD);
    locks_held_answer = false;
    CHECK_ST(state_test_stateid(ss, c, &lsid), STATE_OK);
    /* a LOCK still running on the stateid (it holds a reference): not freed */
    CHECK_ST(state_free_stateid(ss, c, &lsid, fake_has_locks, NULL), STATE_ERR_LOCKS_HELD);
    /* a LOCK that ran while the lock space was asked (it moved the seqid): not freed */
    race_lock_stid = lst;
    race_ss = ss;
    state_stid_put(lst);
    CHECK_ST(state_free_stateid(ss, c, &lsid, lock_during_has_locks, NULL), STATE_ERR_LOCKS_HELD);
    race_lock_stid = NULL;
    struct state_stateid cur;
    state_stid_stateid(lst, &cur); /* the table's reference keeps it */
    CHECK_ST(state_test_stateid(ss, c, &cur), STATE_OK);
    CHECK_ST(state_free_stateid(ss, c, &cur, fake_has_locks, NULL), STATE_OK);
    CHECK_ST(state_test_stateid(ss, c, &lsid), STATE_ERR_BAD_STATEID);
    /* RELEASE_LOCKOWNER while a LOCK of the owner runs: not released */
    struct state_stid *lst2;
    CHECK_ST(state_lock_stateid_get(ss, res.open, "lk2", 3, 0, &lst2), STATE_OK);
    state_lock_stateid_bump(ss, lst2, &cur);
    CHECK_ST(state_release_lockowner(ss, state_client_id(c), "lk2", 3, fake_has_locks, NULL),
             STATE_ERR_LOCKS_HELD); /* the LOCK still holds lst2 */
    race_lock_stid = lst2;
    state_stid_put(lst2);
    CHECK_ST(state_release_lockowner(ss, state_client_id(c), "lk2", 3, lock_during_has_locks, NULL),
             STATE_ERR_LOCKS_HELD); /* one ran meanwhile */
    race_lock_stid = NULL;
    CHECK_ST(state_release_lockowner(ss, state_client_id(c), "lk2", 3, fake_has_locks, NULL), STATE_OK);
    CHECK_ST(state_close(ss, res.open, fake_has_locks, NULL, &sid2), STATE_OK);
    state_stid_put(res.open);
    state_owner_put(o);
    state_client_put(c);
    struct state_stats st;
    state_stats(ss, &st);
    CHECK(st.stids == 0 && st.files == 0);
    state_server_destroy(ss);
}

/* open_to_lock_owner4 whose LOCK fails: the unused lock stateid and the owner go, and
 * the next open_to_lock_owner4 starts the owner's sequence at its own lock_seqid; an
 * owner with another stateid stays and takes the lock_seqid it was sent. */
static void test_new_lock_owner_end(void)
{
    struct state_server *ss = new_server(NULL, false);
    uint64_t cid = client40(ss, "nlo-client", V1);
    struct state_client *c;
    CHECK_ST(state_client_lookup(ss, cid, &c), STATE_OK);
    struct state_owner *o;
    bool created;
    CHECK_ST(state_open_owner_get(ss, c, "oo", 2, &o, &created), STATE_OK);
    struct state_open_args oa = {.owner = o, .file_key = "FILE-N", .file_key_len = 6,
                                 .share_access = STATE_SHARE_ACCESS_BOTH};
    struct state_open_res ra, rb;
    CHECK_ST(state_open(ss, &oa, &ra), STATE_OK);
    oa.file_key = "FILE-M";
    CHECK_ST(state_open(ss, &oa, &rb), STATE_OK);
    struct state_stats st0, st1;
    state_stats(ss, &st0);
    void *rep;
    size_t replen;

    /* denied twice with lock_seqid 0, then 1: nothing stays */
    for (uint32_t seq = 0; seq < 3; seq++) {
        struct state_stid *lst;
        CHECK_ST(state_lock_stateid_get(ss, ra.open, "nl", 2, seq ? seq - 1 : 0, &lst), STATE_OK);
        state_lock_new_owner_end(ss, lst, seq ? seq - 1 : 0, false, true);
        CHECK(state_stid_closed(lst));
        state_stid_put(lst);
        state_stats(ss, &st1);
        CHECK(st1.owners == st0.owners && st1.stids == st0.stids);
    }
    /* granted with lock_seqid 2: the owner's next seqid is 3 */
    struct state_stid *lst;
    CHECK_ST(state_lock_stateid_get(ss, ra.open, "nl", 2, 2, &lst), STATE_OK);
    struct state_stateid lsid;
    state_lock_stateid_bump(ss, lst, &lsid);
    state_lock_new_owner_end(ss, lst, 2, true, true);
    struct state_owner *lo = state_stid_owner(lst);
    CHECK_ST(state_owner_seqid_begin(lo, 2, false, &rep, &replen), STATE_ERR_BAD_SEQID);
    CHECK_ST(state_owner_seqid_begin(lo, 3, false, &rep, &replen), STATE_OK);
    state_owner_seqid_end(lo, 3, true, "LOCKU", 5);

    /* the same owner, new to FILE-M (lock_seqid 4), denied: its FILE-N stateid keeps it,
     * and it took lock_seqid 4 (the cached reply of 3 is gone) */
    struct state_stid *lst2;
    CHECK_ST(state_lock_stateid_get(ss, rb.open, "nl", 2, 4, &lst2), STATE_OK);
    CHECK(lst2 != lst && state_stid_owner(lst2) == lo);
    state_lock_new_owner_end(ss, lst2, 4, false, true);
    CHECK(state_stid_closed(lst2) && !state_stid_closed(lst));
    state_stid_put(lst2);
    CHECK_ST(state_owner_seqid_begin(lo, 4, false, &rep, &replen), STATE_ERR_BAD_SEQID);
    CHECK_ST(state_owner_seqid_begin(lo, 5, false, &rep, &replen), STATE_OK);
    state_owner_seqid_end(lo, 5, true, NULL, 0);
    /* a result that consumes no seqid (e.g. BAD_STATEID) leaves the sequence alone */
    CHECK_ST(state_lock_stateid_get(ss, rb.open, "nl", 2, 9, &lst2), STATE_OK);
    state_lock_new_owner_end(ss, lst2, 9, false, false);
    state_stid_put(lst2);
    CHECK_ST(state_owner_seqid_begin(lo, 6, false, &rep, &replen), STATE_OK);
    state_owner_seqid_end(lo, 6, true, NULL, 0);
    /* a used stateid stays after a failed LOCK */
    CHECK_ST(state_lock_stateid_get(ss, ra.open, "nl", 2, 7, &lst2), STATE_OK);
    CHECK(lst2 == lst);
    state_lock_new_owner_end(ss, lst2, 7, false, true);
    CHECK(!state_stid_closed(lst));
    state_stid_put(lst2);

    struct state_stateid sid;
    CHECK_ST(state_close(ss, ra.open, NULL, NULL, &sid), STATE_OK);
    CHECK(state_stid_closed(lst));
    state_stid_put(lst);
    /* the owner, left without stateids, restarts at the next open_to_lock_owner4's seqid */
    CHECK_ST(state_lock_stateid_get(ss, rb.open, "nl", 2, 0, &lst), STATE_OK);
    CHECK(state_stid_owner(lst) == lo);
    CHECK_ST(state_owner_seqid_begin(lo, 1, false, &rep, &replen), STATE_OK);
    state_owner_seqid_end(lo, 1, true, NULL, 0);
    state_stid_put(lst);
    CHECK_ST(state_close(ss, rb.open, NULL, NULL, &sid), STATE_OK);
    state_stid_put(ra.open);
    state_stid_put(rb.open);
    state_owner_put(o);
    state_client_put(c);
    state_server_destroy(ss);
}

static int work_signals;
static void on_work(void *ctx)
{
    (void)ctx;
    work_signals++;
}

/* Delegations on, a 10 s lease, the fake clock, work signals counted. */
static struct state_server *deleg_server(void)
{
    struct state_params p = {0};
    p.lease_time_s = 10;
    p.delegations = true;
    p.clock_ms = fake_clock;
    p.work_ready = on_work;
    struct state_server *ss = state_server_create(&p);
    CHECK(ss != NULL);
    return ss;
}

static void test_delegations(void)
{
    struct state_server *ss = deleg_server();
    uint64_t cid = client40(ss, "deleg-holder", V1);
    struct state_client *c, *c2;
    CHECK_ST(state_client_lookup(ss, cid, &c), STATE_OK);
    struct state_work *w;
    {
        size_t nw_ = state_work_take(ss, &w);
        state_work_free(w, nw_);
    }
    struct state_owner *o, *o2;
    bool created;
    CHECK_ST(state_open_owner_get(ss, c, "o", 1, &o, &created), STATE_OK);
    struct state_open_args oa = {.owner = o, .file_key = "FILE-D", .file_key_len = 6,
                                 .share_access = STATE_SHARE_ACCESS_READ, .want_deleg = STATE_DELEG_READ};
    struct state_open_res res, res2;
    /* callback path not up yet: no delegation */
    CHECK_ST(state_open(ss, &oa, &res), STATE_OK);
    CHECK(!res.deleg);
    struct state_stateid sid;
    CHECK_ST(state_open_confirm(ss, res.open, &sid), STATE_OK);
    state_stid_put(res.open);
    state_client_set_cb_up(c, true);
    CHECK_ST(state_open(ss, &oa, &res), STATE_OK);
    CHECK(res.deleg && res.deleg_type == STATE_DELEG_READ);
    CHECK_ST(state_stid_check_io(res.deleg, false), STATE_OK);
    CHECK_ST(state_stid_check_io(res.deleg, true), STATE_ERR_OPENMODE);
    /* a reader elsewhere does not conflict; a writer (v3) does: recall queued once */
    CHECK(!state_deleg_break_for_file(ss, "FILE-D", 6, false));
    int sig0 = work_signals;
    CHECK(state_deleg_break_for_file(ss, "FILE-D", 6, true));
    CHECK(work_signals == sig0 + 1);
    CHECK(state_deleg_break_for_file(ss, "FILE-D", 6, true));
    size_t n = state_work_take(ss, &w);
    CHECK(n == 1 && w[0].kind == STATE_WORK_CB_RECALL && w[0].deleg == res.deleg);
    state_deleg_recall_sent(ss, w[0].deleg, true);
    state_work_free(w, n);
    /* another v4 client's write open: DELAY while recalling; no delegation handed out */
    uint64_t cid2 = client40(ss, "writer", V1);
    CHECK_ST(state_client_lookup(ss, cid2, &c2), STATE_OK);
    state_client_set_cb_up(c2, true);
    CHECK_ST(state_open_owner_get(ss, c2, "w", 1, &o2, &created), STATE_OK);
    struct state_open_args ob = {.owner = o2, .file_key = "FILE-D", .file_key_len = 6,
                                 .share_access = STATE_SHARE_ACCESS_WRITE};
    CHECK_ST(state_open(ss, &ob, &res2), STATE_ERR_DELAY);
    ob.share_access = STATE_SHARE_ACCESS_READ;
    ob.want_deleg = STATE_DELEG_READ;
    CHECK_ST(state_open(ss, &ob, &res2), STATE_OK);
    CHECK(!res2.deleg && res2.deleg_recall_pending);
    state_stid_put(res2.open);
    /* not returned within a lease: revoked at the tick */
    struct state_stateid dsid = res.deleg_stateid;
    fake_now += 5000;
    CHECK_ST(state_renew(ss, cid), STATE_OK);
    CHECK_ST(state_renew(ss, cid2), STATE_OK);
    {
        size_t nw_ = state_tick(ss, &w);
        state_work_free(w, nw_);
    }
    struct state_stid *st;
    CHECK_ST(state_stateid_lookup(ss, NULL, &dsid, STATE_STID_DELEG, 0, &st), STATE_OK);
    state_stid_put(st);
    fake_now += 5001;
    CHECK_ST(state_renew(ss, cid), STATE_OK);
    CHECK_ST(state_renew(ss, cid2), STATE_OK);
    {
        size_t nw_ = state_tick(ss, &w);
        state_work_free(w, nw_);
    }
    CHECK_ST(state_stateid_lookup(ss, NULL, &dsid, STATE_STID_DELEG, 0, &st), STATE_ERR_DELEG_REVOKED);
    CHECK_ST(state_stid_check_io(res.deleg, false), STATE_ERR_DELEG_REVOKED);
    ob.share_access = STATE_SHARE_ACCESS_WRITE;
    ob.want_deleg = STATE_DELEG_NONE;
    CHECK_ST(state_open(ss, &ob, &res2), STATE_OK); /* no conflict any more */
    state_stid_put(res2.open);
    CHECK(!state_deleg_break_for_file(ss, "FILE-D", 6, true));
    CHECK_ST(state_delegreturn(ss, res.deleg), STATE_ERR_DELEG_REVOKED);
    CHECK_ST(state_stateid_lookup(ss, NULL, &dsid, STATE_STID_DELEG, 0, &st), STATE_ERR_BAD_STATEID);
    state_stid_put(res.deleg);
    state_stid_put(res.open);

    /* courteous: a delegation of a client whose lease ran out is not recalled: the
     * client is expired on conflict */
    struct state_open_args oc = {.owner = o, .file_key = "FILE-E", .file_key_len = 6,
                                 .share_access = STATE_SHARE_ACCESS_READ, .want_deleg = STATE_DELEG_READ};
    CHECK_ST(state_open(ss, &oc, &res), STATE_OK);
    CHECK(res.deleg != NULL);
    state_stid_put(res.deleg);
    state_stid_put(res.open);
    fake_now += 11000;
    CHECK_ST(state_renew(ss, cid2), STATE_OK);
    {
        size_t nw_ = state_tick(ss, &w);
        state_work_free(w, nw_);
    }
    struct state_stats sst;
    state_stats(ss, &sst);
    CHECK(sst.courtesy_clients == 1);
    CHECK(!state_deleg_break_for_file(ss, "FILE-E", 6, true));
    state_stats(ss, &sst);
    CHECK(sst.clients == 1 && sst.courtesy_clients == 0 && sst.delegs == 0);
    /* the discarded 4.0 client's ids answer EXPIRED (pynfs CLOSE8/9, CID1, LKU10) */
    CHECK_ST(state_renew(ss, cid), STATE_ERR_EXPIRED);
    CHECK_ST(state_client_lookup(ss, cid, &c2), STATE_ERR_EXPIRED);
    CHECK_ST(state_stateid_lookup(ss, NULL, &res.stateid, STATE_STID_OPEN, 0, &st), STATE_ERR_EXPIRED);
    CHECK_ST(state_stateid_lookup(ss, NULL, &res.deleg_stateid, STATE_STID_DELEG, 0, &st), STATE_ERR_EXPIRED);
    CHECK_ST(state_stateid_lookup(ss, c2, &res.stateid, STATE_STID_OPEN, 0, &st), STATE_ERR_BAD_STATEID);
    CHECK_ST(state_renew(ss, cid + 1000), STATE_ERR_STALE_CLIENTID); /* never known */
    state_owner_put(o);
    state_owner_put(o2);
    state_client_put(c);
    state_client_put(c2);
    {
        size_t nw_ = state_work_take(ss, &w);
        state_work_free(w, nw_);
    }
    state_server_destroy(ss);
}

/* Open `key` for reading with a read delegation wanted; returns the delegation
 * (referenced) or NULL. The open stateid is dropped (the open stays). */
static struct state_stid *open_read_deleg(struct state_server *ss, struct state_owner *o, const char *key)
{
    struct state_open_args oa = {.owner = o, .file_key = key, .file_key_len = strlen(key),
                                 .share_access = STATE_SHARE_ACCESS_READ, .want_deleg = STATE_DELEG_READ};
    struct state_open_res res;
    CHECK_ST(state_open(ss, &oa, &res), STATE_OK);
    if (res.open)
        state_stid_put(res.open);
    return res.deleg;
}

static void drain_work(struct state_server *ss, bool tick)
{
    struct state_work *w;
    size_t n = tick ? state_tick(ss, &w) : state_work_take(ss, &w);
    state_work_free(w, n);
}

static void check_deleg_count(struct state_server *ss, unsigned want, int line)
{
    struct state_stats st;
    state_stats(ss, &st);
    if (state_deleg_count(ss) != want || st.delegs != want) {
        fprintf(stderr, "%s:%d: state_deleg_count %u, stats %u, want %u\n", __FILE__, line,
                state_deleg_count(ss), st.delegs, want);
        check_failures++;
    }
}
#define CHECK_DELEGS(ss, want) check_deleg_count(ss, want, __LINE__)

/* The lock-free delegation count (NFSv3 and NLM skip the state lock while it is 0)
 * follows every way a delegation comes and goes: grant, DELEGRETURN, revocation
 * (counted until freed), expiry of a courtesy holder. */
static void test_deleg_count(void)
{
    struct state_server *ss = deleg_server();
    CHECK_DELEGS(ss, 0);
    uint64_t ca = client40(ss, "count-a", V1), cb = client40(ss, "count-b", V2);
    struct state_client *a, *b;
    CHECK_ST(state_client_lookup(ss, ca, &a), STATE_OK);
    CHECK_ST(state_client_lookup(ss, cb, &b), STATE_OK);
    struct state_owner *oa, *ob;
    bool created;
    CHECK_ST(state_open_owner_get(ss, a, "oa", 2, &oa, &created), STATE_OK);
    CHECK_ST(state_open_owner_get(ss, b, "ob", 2, &ob, &created), STATE_OK);

    /* no callback path: nothing granted, nothing counted */
    CHECK(open_read_deleg(ss, oa, "CNT-1") == NULL);
    CHECK_DELEGS(ss, 0);
    state_client_set_cb_up(a, true);
    state_client_set_cb_up(b, true);
    struct state_stid *a1 = open_read_deleg(ss, oa, "CNT-1");
    struct state_stid *b1 = open_read_deleg(ss, ob, "CNT-1"); /* read delegations share */
    struct state_stid *a2 = open_read_deleg(ss, oa, "CNT-2");
    CHECK(a1 && b1 && a2);
    CHECK_DELEGS(ss, 3);
    /* asking again for a file already delegated to the client counts nothing */
    CHECK(open_read_deleg(ss, oa, "CNT-2") == NULL);
    CHECK_DELEGS(ss, 3);
    /* a non-conflicting access changes nothing */
    CHECK(!state_deleg_break_for_file(ss, "CNT-1", 5, false));
    CHECK_DELEGS(ss, 3);

    /* DELEGRETURN: counted down once */
    CHECK_ST(state_delegreturn(ss, a1), STATE_OK);
    CHECK_DELEGS(ss, 2);
    CHECK_ST(state_delegreturn(ss, a1), STATE_ERR_BAD_STATEID);
    CHECK_DELEGS(ss, 2);
    state_stid_put(a1);

    /* recalled and never returned: revoked after a lease, still counted (its holder
     * must free it), then freed by DELEGRETURN */
    CHECK(state_deleg_break_for_file(ss, "CNT-2", 5, true));
    drain_work(ss, false);
    fake_now += 10001;
    CHECK_ST(state_renew(ss, ca), STATE_OK);
    CHECK_ST(state_renew(ss, cb), STATE_OK);
    drain_work(ss, true);
    CHECK(!state_deleg_break_for_file(ss, "CNT-2", 5, true)); /* revoked: no conflict */
    CHECK_DELEGS(ss, 2);
    CHECK_ST(state_delegreturn(ss, a2), STATE_ERR_DELEG_REVOKED);
    CHECK_DELEGS(ss, 1);
    state_stid_put(a2);

    /* b's lease runs out: a courtesy holder is expired on conflict, and its
     * delegation goes with it */
    fake_now += 11000;
    CHECK_ST(state_renew(ss, ca), STATE_OK);
    drain_work(ss, true);
    CHECK_DELEGS(ss, 1);
    CHECK(!state_deleg_break_for_file(ss, "CNT-1", 5, true));
    CHECK_DELEGS(ss, 0);
    state_stid_put(b1);

    state_owner_put(oa);
    state_owner_put(ob);
    state_client_put(a);
    state_client_put(b);
    drain_work(ss, false);
    state_server_destroy(ss);
}

struct getattr_answer {
    struct state_server *ss;
    struct state_stid *deleg;
};

static void *answer_getattr_later(void *arg)
{
    struct getattr_answer *g = arg;
    usleep(20000);
    struct state_deleg_attrs a = {.change = 7, .size = 4096};
    state_deleg_getattr_done(g->ss, g->deleg, true, &a);
    return NULL;
}

/* CB_GETATTR: another client's question waits (state_deleg_getattr_wait) until the
 * holder answers, or until its time is up; the holder's own questions never wait. */
static void test_deleg_getattr_wait(void)
{
    struct state_server *ss = deleg_server();
    uint64_t ch = client40(ss, "ga-holder", V1), ca = client40(ss, "ga-asker", V2);
    struct state_client *holder, *asker;
    CHECK_ST(state_client_lookup(ss, ch, &holder), STATE_OK);
    CHECK_ST(state_client_lookup(ss, ca, &asker), STATE_OK);
    state_client_set_cb_up(holder, true);
    struct state_owner *o;
    bool created;
    CHECK_ST(state_open_owner_get(ss, holder, "gw", 2, &o, &created), STATE_OK);
    struct state_open_args oa = {.owner = o, .file_key = "FILE-G", .file_key_len = 6,
                                 .share_access = STATE_SHARE_ACCESS_READ | STATE_SHARE_ACCESS_WRITE,
                                 .want_deleg = STATE_DELEG_WRITE};
    struct state_open_res res;
    CHECK_ST(state_open(ss, &oa, &res), STATE_OK);
    CHECK(res.deleg && res.deleg_type == STATE_DELEG_WRITE);
    state_stid_put(res.open);
    drain_work(ss, false);

    struct state_deleg_attrs got;
    bool have;
    /* nothing asked yet: nothing to wait for */
    CHECK(!state_deleg_getattr_wait(ss, "FILE-G", 6, asker, 1000));
    CHECK_ST(state_deleg_getattr(ss, "FILE-G", 6, holder, &got, &have), STATE_OK);
    CHECK(!have); /* the holder asks about its own file: from the file */
    CHECK_ST(state_deleg_getattr(ss, "FILE-G", 6, asker, &got, &have), STATE_ERR_DELAY);
    struct state_work *w;
    size_t n = state_work_take(ss, &w);
    CHECK(n == 1 && w[0].kind == STATE_WORK_CB_GETATTR && w[0].deleg == res.deleg);
    state_work_free(w, n);
    /* unanswered: the wait ends at its time limit */
    CHECK(state_deleg_getattr_wait(ss, "FILE-G", 6, asker, 30));
    CHECK_ST(state_deleg_getattr(ss, "FILE-G", 6, asker, &got, &have), STATE_ERR_DELAY);
    /* answered by another thread while waiting */
    struct getattr_answer g = {ss, res.deleg};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, answer_getattr_later, &g) == 0);
    CHECK(state_deleg_getattr_wait(ss, "FILE-G", 6, asker, 5000));
    pthread_join(t, NULL);
    CHECK_ST(state_deleg_getattr(ss, "FILE-G", 6, asker, &got, &have), STATE_OK);
    CHECK(have && got.change == 7 && got.size == 4096);
    CHECK(!state_deleg_getattr_wait(ss, "FILE-G", 6, asker, 1000)); /* answered: no wait */

    CHECK_ST(state_delegreturn(ss, res.deleg), STATE_OK);
    state_stid_put(res.deleg);
    state_owner_put(o);
    state_client_put(holder);
    state_client_put(asker);
    drain_work(ss, false);
    state_server_destroy(ss);
}

/* A 4.1 client gets confirmed state (a record) by opening a file. */
static void open_something(struct state_server *ss, struct state_client *c, enum state_status want)
{
    struct state_owner *o;
    bool created;
    CHECK_ST(state_open_owner_get(ss, c, "rec", 3, &o, &created), STATE_OK);
    struct state_open_args oa = {.owner = o, .file_key = "FILE-R", .file_key_len = 6,
                                 .share_access = STATE_SHARE_ACCESS_READ};
    struct state_open_res res;
    CHECK_ST(state_open(ss, &oa, &res), want);
    if (res.open)
        state_stid_put(res.open);
    state_owner_put(o);
}

static void test_grace(void)
{
    char dir[] = "/tmp/test_state.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    uint8_t sid[STATE_SESSIONID_SIZE];
    struct state_stats st;

    /* boot 1: no records, no grace; two clients get state, a third never does */
    struct state_server *ss = new_server(dir, false);
    state_stats(ss, &st);
    CHECK(st.db_ok && !state_in_grace(ss));
    uint32_t epoch1 = state_boot_epoch(ss);
    struct state_client *a = client41_new(ss, "client-a", NULL, sid);
    struct state_client *b = client41_new(ss, "client-b", NULL, sid);
    struct state_client *x = client41_new(ss, "client-x", NULL, sid);
    open_something(ss, a, STATE_ERR_GRACE); /* no new state before RECLAIM_COMPLETE */
    CHECK_ST(state_reclaim_complete(ss, a), STATE_OK);
    CHECK_ST(state_reclaim_complete(ss, a), STATE_ERR_COMPLETE_ALREADY);
    CHECK_ST(state_reclaim_complete(ss, b), STATE_OK);
    open_something(ss, a, STATE_OK);
    open_something(ss, b, STATE_OK);
    CHECK_ST(state_grace_check(ss, a, true), STATE_ERR_NO_GRACE);
    state_client_put(a);
    state_client_put(b);
    state_client_put(x);
    state_server_destroy(ss);

    /* boot 2: a and b may reclaim */
    ss = new_server(dir, false);
    CHECK(state_boot_epoch(ss) > epoch1);
    state_stats(ss, &st);
    CHECK(st.db_ok && st.reclaim_set == 2 && state_in_grace(ss));
    a = client41_new(ss, "client-a", NULL, sid);
    x = client41_new(ss, "client-x", NULL, sid);
    open_something(ss, a, STATE_ERR_GRACE);            /* non-reclaim during grace */
    CHECK_ST(state_grace_check(ss, a, false), STATE_ERR_GRACE);
    CHECK_ST(state_grace_check(ss, a, true), STATE_OK);
    CHECK_ST(state_grace_check(ss, x, true), STATE_ERR_NO_GRACE); /* no record */
    struct state_owner *o;
    bool created;
    CHECK_ST(state_open_owner_get(ss, a, "rec", 3, &o, &created), STATE_OK);
    struct state_open_args oa = {.owner = o, .file_key = "FILE-R", .file_key_len = 6,
                                 .share_access = STATE_SHARE_ACCESS_READ, .claim = STATE_CLAIM_PREVIOUS};
    struct state_open_res res;
    CHECK_ST(state_open(ss, &oa, &res), STATE_OK);
    state_stid_put(res.open);
    CHECK_ST(state_reclaim_complete(ss, a), STATE_OK);
    CHECK_ST(state_open(ss, &oa, &res), STATE_ERR_RECLAIM_BAD);
    state_owner_put(o);
    CHECK(state_in_grace(ss)); /* b has not come back */
    state_client_put(a);
    state_client_put(x);
    state_server_destroy(ss); /* "crash" during grace: records stay */

    /* boot 3: still a and b; both complete -> grace ends early */
    ss = new_server(dir, false);
    state_stats(ss, &st);
    CHECK(st.reclaim_set == 2 && state_in_grace(ss));
    a = client41_new(ss, "client-a", NULL, sid);
    uint8_t sid_b[STATE_SESSIONID_SIZE];
    b = client41_new(ss, "client-b", NULL, sid_b);
    CHECK_ST(state_reclaim_complete(ss, a), STATE_OK);
    CHECK(state_in_grace(ss));
    CHECK_ST(state_reclaim_complete(ss, b), STATE_OK);
    CHECK(!state_in_grace(ss));
    open_something(ss, a, STATE_OK);
    /* b destroys its client id: its record goes */
    CHECK_ST(state_destroy_clientid(ss, state_client_id(b)), STATE_ERR_CLIENTID_BUSY);
    CHECK_ST(state_destroy_session(ss, sid_b, false), STATE_OK);
    CHECK_ST(state_destroy_clientid(ss, state_client_id(b)), STATE_OK);
    state_client_put(b);
    state_client_put(a);
    state_server_destroy(ss);

    /* boot 4: only a may reclaim; it does not come back: grace ends on time */
    ss = new_server(dir, false);
    state_stats(ss, &st);
    CHECK(st.reclaim_set == 1 && state_in_grace(ss));
    fake_now += 21000;
    struct state_work *w;
    {
        size_t nw_ = state_tick(ss, &w);
        state_work_free(w, nw_);
    }
    CHECK(!state_in_grace(ss));
    x = client41_new(ss, "client-x", NULL, sid);
    CHECK_ST(state_grace_check(ss, x, true), STATE_ERR_NO_GRACE);
    state_client_put(x);
    state_server_destroy(ss);

    /* boot 5: a's record was purged at the end of boot 4's grace */
    ss = new_server(dir, false);
    state_stats(ss, &st);
    CHECK(st.reclaim_set == 0 && !state_in_grace(ss));
    state_server_destroy(ss);

    /* a corrupt database: logged, moved aside, a fresh one, no grace */
    char path[256];
    snprintf(path, sizeof(path), "%s/nfs4-clients.db", dir);
    unlink(path);
    char junk[8192];
    memset(junk, 'J', sizeof(junk));
    memcpy(junk, "SQLite format 3", 16); /* a header that lies */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0 && write(fd, junk, sizeof(junk)) == (ssize_t)sizeof(junk));
    close(fd);
    ss = new_server(dir, false);
    state_stats(ss, &st);
    CHECK(st.reclaim_set == 0 && !state_in_grace(ss));
    a = client41(ss, "client-a", NULL, sid);
    open_something(ss, a, STATE_OK); /* works without reclaim */
    state_client_put(a);
    state_server_destroy(ss);

    /* an unusable directory: no database, the server still runs */
    ss = new_server("/nonexistent/peernfs-state", false);
    state_stats(ss, &st);
    CHECK(!st.db_ok && !state_in_grace(ss));
    a = client41(ss, "client-a", NULL, sid);
    open_something(ss, a, STATE_OK);
    state_client_put(a);
    state_server_destroy(ss);

    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

static void test_caps(void)
{
    struct state_params p = {0};
    p.clock_ms = fake_clock;
    p.max_clients = 2;
    p.max_sessions_per_client = 1;
    struct state_server *ss = state_server_create(&p);
    struct state_exchange_id_res r;
    CHECK_ST(state_exchange_id(ss, "c1", 2, V1, 0, &P1, 1, &r), STATE_OK);
    struct state_create_session_args a = cs_args(r.clientid, 1, NULL);
    struct state_create_session_res cr;
    CHECK_ST(state_create_session(ss, &a, &cr), STATE_OK);
    a.sequence = 2;
    CHECK_ST(state_create_session(ss, &a, &cr), STATE_ERR_RESOURCE);
    CHECK_ST(state_exchange_id(ss, "c2", 2, V1, 0, &P1, 1, &r), STATE_OK);
    CHECK_ST(state_exchange_id(ss, "c3", 2, V1, 0, &P1, 1, &r), STATE_ERR_RESOURCE);
    CHECK_ST(state_exchange_id(ss, "", 0, V1, 0, &P1, 1, &r), STATE_ERR_INVAL);
    state_server_destroy(ss);
}

static int open_tmp(void *ctx, int flags)
{
    int fd = open((const char *)ctx, (flags & O_ACCMODE) | O_CLOEXEC);
    return fd < 0 ? -1 : fd;
}

/* With a real lock space: the lock owner's key is clientid + owner, and a client's
 * expiry releases its locks (after the state lock is dropped). */
static void test_lock_space(void)
{
    char path[] = "/tmp/test_state_lock.XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, "0123456789", 10) == 10);
    close(fd);
    struct lock_space *ls = lock_space_create(NULL);
    CHECK(ls != NULL);
    struct state_params p = {0};
    p.lease_time_s = 10;
    p.clock_ms = fake_clock;
    p.locks = ls;
    struct state_server *ss = state_server_create(&p);
    uint8_t sid[STATE_SESSIONID_SIZE];
    struct state_client *c = client41(ss, "lock-space-client", NULL, sid);
    struct state_owner *o;
    bool created;
    CHECK_ST(state_open_owner_get(ss, c, "o", 1, &o, &created), STATE_OK);
    struct state_open_args oa = {.owner = o, .file_key = "FILE-S", .file_key_len = 6,
                                 .share_access = STATE_SHARE_ACCESS_BOTH};
    struct state_open_res res;
    CHECK_ST(state_open(ss, &oa, &res), STATE_OK);
    struct state_stid *lst;
    CHECK_ST(state_lock_stateid_get(ss, res.open, "LK", 2, 0, &lst), STATE_OK);
    struct lock_owner *lo = state_stid_lock_owner(lst);
    CHECK(lo != NULL);
    size_t klen;
    const uint8_t *key = lock_owner_key(lo, &klen);
    uint64_t cid = state_client_id(c);
    CHECK(klen == 10 && key[0] == (uint8_t)(cid >> 56) && key[7] == (uint8_t)cid && memcmp(key + 8, "LK", 2) == 0);
    struct lock_file_id f = {.key = "FILE-S", .key_len = 6, .open_file = open_tmp, .ctx = path};
    struct lock_req req = {.type = LOCK_EXCLUSIVE, .start = 0, .len = 5};
    CHECK(lock_lock(ls, lo, &f, &req, NULL) == LOCK_OK);
    struct lock_space_stats lss;
    lock_space_stats(ls, &lss);
    CHECK(lss.fds == 1);
    state_stid_put(lst);
    state_stid_put(res.open);
    state_owner_put(o);
    /* the lease runs out (courtesy), a conflict expires it: locks released */
    fake_now += 11000;
    struct state_work *w;
    {
        size_t nw_ = state_tick(ss, &w);
        state_work_free(w, nw_);
    }
    CHECK(state_client_expire_if_courtesy_id(ss, cid));
    lock_space_stats(ls, &lss);
    CHECK(lss.fds == 0);
    CHECK(!state_client_expire_if_courtesy_id(ss, cid)); /* unknown: nothing to retry */
    state_client_put(c);
    state_server_destroy(ss);
    lock_space_destroy(ls);
    unlink(path);
}

/* An open owner's own opens count for share reservations (as knfsd; pynfs OPEN21,
 * OPEN25, OPEN30), in 4.0 and 4.1; compatible upgrades still merge. */
static void open_as(struct state_server *ss, struct state_owner *o, const char *key, uint32_t access,
                    uint32_t deny, enum state_status want, uint32_t want_seqid)
{
    struct state_open_args a = {.owner = o, .file_key = key, .file_key_len = strlen(key),
                                .share_access = access, .share_deny = deny};
    struct state_open_res r;
    CHECK_ST(state_open(ss, &a, &r), want);
    if (want == STATE_OK) {
        CHECK(r.stateid.seqid == want_seqid);
        state_stid_put(r.open);
    }
}

static void test_own_share_conflicts(void)
{
    struct state_server *ss = new_server(NULL, false);
    uint64_t cid = client40(ss, "own-share", V1);
    struct state_client *c;
    CHECK_ST(state_client_lookup(ss, cid, &c), STATE_OK);
    uint8_t sid[STATE_SESSIONID_SIZE];
    struct state_client *c41 = client41(ss, "own-share-41", NULL, sid);
    struct state_client *clients[] = {c, c41};
    for (int i = 0; i < 2; i++) {
        struct state_owner *o;
        bool created;
        CHECK_ST(state_open_owner_get(ss, clients[i], "ow", 2, &o, &created), STATE_OK);
        const char *f1 = i ? "F41-1" : "F40-1", *f2 = i ? "F41-2" : "F40-2";
        /* OPEN21: its deny READ refuses its own READ; OPEN25 likewise for WRITE */
        open_as(ss, o, f1, STATE_SHARE_ACCESS_BOTH, STATE_SHARE_DENY_READ, STATE_OK, 1);
        open_as(ss, o, f1, STATE_SHARE_ACCESS_READ, STATE_SHARE_DENY_NONE, STATE_ERR_SHARE_DENIED, 0);
        open_as(ss, o, f1, STATE_SHARE_ACCESS_WRITE, STATE_SHARE_DENY_NONE, STATE_OK, 2); /* fits: upgrade */
        open_as(ss, o, f1, STATE_SHARE_ACCESS_WRITE, STATE_SHARE_DENY_WRITE, STATE_ERR_SHARE_DENIED, 0);
        /* OPEN30: a second deny BOTH open is refused by the first one's READ access */
        open_as(ss, o, f2, STATE_SHARE_ACCESS_READ, STATE_SHARE_DENY_BOTH, STATE_OK, 1);
        open_as(ss, o, f2, STATE_SHARE_ACCESS_READ, STATE_SHARE_DENY_BOTH, STATE_ERR_SHARE_DENIED, 0);
        CHECK_ST(state_file_check_anon_io(ss, f2, strlen(f2), false, false), STATE_ERR_SHARE_DENIED);
        state_owner_put(o);
    }
    state_client_put(c);
    state_client_put(c41);
    state_server_destroy(ss);
}

static struct state_stateid open_stateid(struct state_server *ss, struct state_client *c, const char *owner,
                                         const char *key)
{
    struct state_owner *o;
    bool created;
    CHECK_ST(state_open_owner_get(ss, c, owner, strlen(owner), &o, &created), STATE_OK);
    struct state_open_args a = {.owner = o, .file_key = key, .file_key_len = strlen(key),
                                .share_access = STATE_SHARE_ACCESS_READ};
    struct state_open_res r;
    CHECK_ST(state_open(ss, &a, &r), STATE_OK);
    state_stid_put(r.open);
    state_owner_put(o);
    return r.stateid;
}

static void expire_all(struct state_server *ss)
{
    fake_now += 11000; /* lease over: courtesy */
    drain_work(ss, true);
    fake_now += 86400u * 1000u + 1000; /* courtesy over: discarded */
    drain_work(ss, true);
}

/* A discarded 4.0 client's clientid and stateids answer EXPIRED (pynfs CLOSE8, CLOSE9,
 * CID1, LKU10); the memory of them is a FIFO of max_expired_ids; 4.1 clients and
 * teardown leave nothing. */
static void test_expired_ids(void)
{
    struct state_params p = {0};
    p.lease_time_s = 10;
    p.clock_ms = fake_clock;
    p.max_expired_ids = 4;
    struct state_server *ss = state_server_create(&p);
    uint64_t cid = client40(ss, "exp-1", V1);
    struct state_client *c;
    CHECK_ST(state_client_lookup(ss, cid, &c), STATE_OK);
    struct state_stateid s1 = open_stateid(ss, c, "o1", "E-1"), s2 = open_stateid(ss, c, "o2", "E-2");
    state_client_put(c);
    uint8_t sessid[STATE_SESSIONID_SIZE];
    struct state_client *c41 = client41(ss, "exp-41", NULL, sessid);
    uint64_t cid41 = state_client_id(c41);
    struct state_stateid s41 = open_stateid(ss, c41, "o", "E-41");
    state_client_put(c41);
    struct state_stid *st;
    expire_all(ss);
    CHECK_ST(state_renew(ss, cid), STATE_ERR_EXPIRED);
    CHECK_ST(state_client_lookup(ss, cid, &c), STATE_ERR_EXPIRED);
    CHECK_ST(state_stateid_lookup(ss, NULL, &s1, STATE_STID_OPEN, 0, &st), STATE_ERR_EXPIRED);
    CHECK_ST(state_stateid_lookup(ss, NULL, &s2, STATE_STID_OPEN | STATE_STID_LOCK, STATE_LOOKUP_V41, &st),
             STATE_ERR_EXPIRED);
    /* 4.1: nothing remembered */
    CHECK_ST(state_stateid_lookup(ss, NULL, &s41, STATE_STID_OPEN, 0, &st), STATE_ERR_BAD_STATEID);
    CHECK_ST(state_client_lookup(ss, cid41, &c), STATE_ERR_STALE_CLIENTID);
    /* a rebooted 4.0 client (new verifier) discards its old record: EXPIRED too (CID1) */
    uint64_t cid2 = client40(ss, "exp-2", V1);
    CHECK_ST(state_client_lookup(ss, cid2, &c), STATE_OK);
    struct state_stateid s3 = open_stateid(ss, c, "o3", "E-3");
    state_client_put(c);
    uint64_t cid2b = client40(ss, "exp-2", V2);
    CHECK(cid2b != cid2);
    CHECK_ST(state_stateid_lookup(ss, NULL, &s3, STATE_STID_OPEN, 0, &st), STATE_ERR_EXPIRED);
    CHECK_ST(state_renew(ss, cid2), STATE_ERR_EXPIRED);
    /* 3 + 2 ids in a ring of 4: exp-1's clientid (the oldest) is forgotten */
    CHECK_ST(state_renew(ss, cid), STATE_ERR_STALE_CLIENTID);
    CHECK_ST(state_stateid_lookup(ss, NULL, &s1, STATE_STID_OPEN, 0, &st), STATE_ERR_EXPIRED);
    /* teardown of a server holding live 4.0 state records nothing and frees it all */
    CHECK_ST(state_client_lookup(ss, cid2b, &c), STATE_OK);
    open_stateid(ss, c, "o4", "E-4");
    state_client_put(c);
    state_server_destroy(ss);
}

/* Teardown with lock state held and a closed open kept for its CLOSE's replay: lock
 * owners are released while the lock space exists, every lock goes, nothing leaks
 * (ASan); the lock space is destroyed after (peernfsd's order). */
static void test_teardown_with_locks(void)
{
    char path[] = "/tmp/test_state_td.XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, "0123456789", 10) == 10);
    close(fd);
    struct lock_space *ls = lock_space_create(NULL);
    struct state_params p = {0};
    p.clock_ms = fake_clock;
    p.locks = ls;
    struct state_server *ss = state_server_create(&p);
    uint64_t cid = client40(ss, "teardown", V1);
    struct state_client *c;
    CHECK_ST(state_client_lookup(ss, cid, &c), STATE_OK);
    struct state_owner *o;
    bool created;
    CHECK_ST(state_open_owner_get(ss, c, "o", 1, &o, &created), STATE_OK);
    struct state_open_args oa = {.owner = o, .file_key = "FILE-T", .file_key_len = 6,
                                 .share_access = STATE_SHARE_ACCESS_BOTH};
    struct state_open_res res, res2;
    CHECK_ST(state_open(ss, &oa, &res), STATE_OK);
    oa.file_key = "FILE-U";
    CHECK_ST(state_open(ss, &oa, &res2), STATE_OK);
    struct state_stateid closed;
    CHECK_ST(state_close(ss, res2.open, NULL, NULL, &closed), STATE_OK);
    state_stid_put(res2.open);
    struct state_stid *lst;
    CHECK_ST(state_lock_stateid_get(ss, res.open, "LK", 2, 0, &lst), STATE_OK);
    struct lock_file_id f = {.key = "FILE-T", .key_len = 6, .open_file = open_tmp, .ctx = path};
    struct lock_req req = {.type = LOCK_EXCLUSIVE, .start = 0, .len = 5};
    CHECK(lock_lock(ls, state_stid_lock_owner(lst), &f, &req, NULL) == LOCK_OK);
    state_stid_put(lst);
    state_stid_put(res.open);
    state_owner_put(o);
    state_client_put(c);
    state_server_destroy(ss);
    struct lock_space_stats lss;
    lock_space_stats(ls, &lss);
    CHECK(lss.fds == 0 && lss.files == 0);
    lock_space_destroy(ls);
    unlink(path);
}

/* Threads on their own slots of one session, plus the reaper: no races (ASan), every
 * request sees its own slot's sequence. */
struct slot_thread {
    struct state_server *ss;
    uint8_t sid[STATE_SESSIONID_SIZE];
    uint32_t slot;
    int errors;
};

static void *slot_worker(void *arg)
{
    struct slot_thread *t = arg;
    for (uint32_t seq = 1; seq <= 300; seq++) {
        struct state_sequence_args a = {.sequenceid = seq, .slotid = t->slot, .checksum = seq};
        memcpy(a.sessionid, t->sid, sizeof(t->sid));
        struct state_sequence_res r;
        if (state_sequence(t->ss, &a, &r) != STATE_OK) {
            t->errors++;
            continue;
        }
        char reply[16];
        int n = snprintf(reply, sizeof(reply), "r%u", seq);
        state_slot_cache_reply(r.slot, reply, (size_t)n);
        state_slot_done(r.slot);
        state_session_put(r.session);
        if (state_sequence(t->ss, &a, &r) != STATE_ERR_REPLAY || r.replay_len != (size_t)n ||
            memcmp(r.replay, reply, (size_t)n) != 0)
            t->errors++;
        free(r.replay);
    }
    return NULL;
}

static void test_threads(void)
{
    struct state_server *ss = new_server(NULL, false);
    uint8_t sid[STATE_SESSIONID_SIZE];
    struct state_client *c = client41(ss, "threads", NULL, sid);
    struct slot_thread t[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (struct slot_thread){.ss = ss, .slot = (uint32_t)i};
        memcpy(t[i].sid, sid, sizeof(sid));
        CHECK(pthread_create(&th[i], NULL, slot_worker, &t[i]) == 0);
    }
    for (int i = 0; i < 50; i++) {
        struct state_work *w;
        {
        size_t nw_ = state_tick(ss, &w);
        state_work_free(w, nw_);
    }
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(t[i].errors == 0);
    }
    state_client_put(c);
    state_server_destroy(ss);
}

int main(void)
{
    test_threads();
    test_lock_space();
    test_setclientid();
    test_exchange_id();
    test_slots();
    test_stateids_and_opens();
    test_locks_held();
    test_new_lock_owner_end();
    test_delegations();
    test_deleg_count();
    test_deleg_getattr_wait();
    test_grace();
    test_caps();
    test_own_share_conflicts();
    test_expired_ids();
    test_teardown_with_locks();
    if (check_failures) {
        fprintf(stderr, "%d failure(s)\n", check_failures);
        return 1;
    }
    printf("state: all tests passed\n");
    return 0;
}
