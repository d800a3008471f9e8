/*
 * cb/ (the NFSv4 callback client) and nfs4/nfs4_callback.c (the callback thread), in one
 * process over loopback:
 *  (a) wire helpers: universal addresses (IPv4, IPv6, junk), CB_COMPOUND4res decoding
 *      (result/op mismatches, too many results, CB_ILLEGAL, status promotion);
 *  (b) 4.1: an rpc server plays the NFS server, an rpc client with the callback program
 *      plays the NFS client; the session's back channel carries CB_COMPOUND(CB_SEQUENCE,
 *      CB_RECALL / CB_NOTIFY_LOCK / CB_RECALL_ANY) and CB_NULL; the back slot's seqid
 *      advances; NFS4ERR_DELAY is retried; with one back slot concurrent calls queue;
 *  (c) failures mark the session's path down: BADSESSION, a call that times out, the
 *      connection closing (through nfs4_cb_conn_seen's close notification);
 *  (d) 4.0: CB_NULL and CB_RECALL to a listening callback address on a connection of our
 *      own, reused for the next call; an address nobody listens on fails;
 *  (e) the callback thread: a delegation conflict queues a recall that reaches the 4.1
 *      client with the delegation's stateid and the file's filehandle; SETCLIENTID_CONFIRM's
 *      probe reaches a 4.0 client's callback address.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cb/cb.h"
#include "check.h"
#include "nfs4/nfs4_internal.h"
#include "rpc/backchannel.h"
#include "rpc/clnt.h"
#include "rpc/server.h"

#define TEST_PROG 0x200001c0u
#define CB_PROG NFS4_CALLBACK

/* ---------------------------------------------------------------------------------- */
/* The fake NFS client's callback service                                              */
/* ---------------------------------------------------------------------------------- */

enum fake_mode { MODE_OK, MODE_DELAY_ONCE, MODE_BADSESSION, MODE_NO_REPLY, MODE_SLOW };

static struct {
    pthread_mutex_t mu;
    enum fake_mode mode;
    bool delay_pending;
    uint8_t sessionid[NFS4_SESSIONID_SIZE];
    uint32_t slot_seq[8];
    /* what the last calls carried */
    int nulls, compounds, recalls, notify_locks, recall_anys, in_flight, max_in_flight;
    uint32_t last_minor, last_ident, last_seqid, last_slot, last_highest;
    bool last_had_seq, last_cachethis;
    uint32_t last_flavor, last_uid;
    char last_machine[RPC_AUTHSYS_MAXNAME + 1];
    stateid4 last_stateid;
    uint8_t last_fh[128];
    uint32_t last_fh_len;
    uint64_t last_lock_clientid;
    char last_owner[64];
} fake = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void fake_set_mode(enum fake_mode m)
{
    pthread_mutex_lock(&fake.mu);
    fake.mode = m;
    fake.delay_pending = m == MODE_DELAY_ONCE;
    pthread_mutex_unlock(&fake.mu);
}

static enum rpc_accept_status fake_cb_null(struct rpc_call *c)
{
    (void)c;
    pthread_mutex_lock(&fake.mu);
    fake.nulls++;
    pthread_mutex_unlock(&fake.mu);
    return RPC_SUCCESS;
}

static nfsstat4 fake_sequence(const CB_SEQUENCE4args *a, CB_SEQUENCE4res *r)
{
    fake.last_had_seq = true;
    fake.last_seqid = a->csa_sequenceid;
    fake.last_slot = a->csa_slotid;
    fake.last_highest = a->csa_highest_slotid;
    fake.last_cachethis = a->csa_cachethis;
    if (fake.mode == MODE_BADSESSION || memcmp(a->csa_sessionid, fake.sessionid, NFS4_SESSIONID_SIZE))
        return r->csr_status = NFS4ERR_BADSESSION;
    if (a->csa_slotid >= 8)
        return r->csr_status = NFS4ERR_BADSLOT;
    uint32_t *seq = &fake.slot_seq[a->csa_slotid];
    if (a->csa_sequenceid == *seq + 1)
        (*seq)++;
    else if (a->csa_sequenceid != *seq)
        return r->csr_status = NFS4ERR_SEQ_MISORDERED;
    r->csr_status = NFS4_OK;
    CB_SEQUENCE4resok *ok = &r->csr_resok4;
    memcpy(ok->csr_sessionid, a->csa_sessionid, NFS4_SESSIONID_SIZE);
    ok->csr_sequenceid = a->csa_sequenceid;
    ok->csr_slotid = a->csa_slotid;
    ok->csr_highest_slotid = a->csa_highest_slotid;
    ok->csr_target_highest_slotid = a->csa_highest_slotid;
    return NFS4_OK;
}

static nfsstat4 fake_op(const nfs_cb_argop4 *a, nfs_cb_resop4 *r)
{
    r->resop = a->argop;
    switch (a->argop) {
    case OP_CB_SEQUENCE:
        return fake_sequence(&a->opcbsequence, &r->opcbsequence);
    case OP_CB_RECALL:
        fake.recalls++;
        fake.last_stateid = a->opcbrecall.stateid;
        fake.last_fh_len = a->opcbrecall.fh.len < sizeof(fake.last_fh) ? a->opcbrecall.fh.len : 0;
        memcpy(fake.last_fh, a->opcbrecall.fh.val, fake.last_fh_len);
        if (fake.delay_pending) {
            fake.delay_pending = false;
            return r->opcbrecall.status = NFS4ERR_DELAY;
        }
        return r->opcbrecall.status = NFS4_OK;
    case OP_CB_NOTIFY_LOCK: {
        const lock_owner4 *o = &a->opcbnotify_lock.cnla_lock_owner;
        fake.notify_locks++;
        fake.last_lock_clientid = o->clientid;
        size_t n = o->owner.len < sizeof(fake.last_owner) - 1 ? o->owner.len : 0;
        memcpy(fake.last_owner, o->owner.val, n);
        fake.last_owner[n] = '\0';
        return r->opcbnotify_lock.cnlr_status = NFS4_OK;
    }
    case OP_CB_RECALL_ANY:
        fake.recall_anys++;
        return r->opcbrecall_any.crar_status = NFS4_OK;
    default:
        r->resop = OP_CB_ILLEGAL;
        return r->opcbillegal.status = NFS4ERR_OP_ILLEGAL;
    }
}

static enum rpc_accept_status fake_cb_compound(struct rpc_call *c)
{
    CB_COMPOUND4args a;
    if (!xdr_decode_CB_COMPOUND4args(&c->args, &a))
        return RPC_GARBAGE_ARGS;
    pthread_mutex_lock(&fake.mu);
    enum fake_mode mode = fake.mode;
    fake.compounds++;
    fake.in_flight++;
    if (fake.in_flight > fake.max_in_flight)
        fake.max_in_flight = fake.in_flight;
    pthread_mutex_unlock(&fake.mu);
    if (mode == MODE_NO_REPLY) {
        pthread_mutex_lock(&fake.mu);
        fake.in_flight--;
        pthread_mutex_unlock(&fake.mu);
        return RPC_NO_REPLY;
    }
    if (mode == MODE_SLOW)
        usleep(60 * 1000);
    nfs_cb_resop4 res[8];
    CB_COMPOUND4res r = {.status = NFS4_OK, .tag = a.tag};
    pthread_mutex_lock(&fake.mu);
    fake.last_minor = a.minorversion;
    fake.last_flavor = c->cred.flavor;
    fake.last_uid = c->cred.uid;
    snprintf(fake.last_machine, sizeof(fake.last_machine), "%s", c->cred.machinename);
    fake.last_ident = a.callback_ident;
    fake.last_had_seq = false;
    for (uint32_t i = 0; i < a.argarray.len && i < 8; i++) {
        r.resarray.len = i + 1;
        if ((r.status = fake_op(&a.argarray.val[i], &res[i])) != NFS4_OK)
            break;
    }
    fake.in_flight--;
    pthread_mutex_unlock(&fake.mu);
    r.resarray.val = res;
    return xdr_encode_CB_COMPOUND4res(&c->res, &r) ? RPC_SUCCESS : RPC_SYSTEM_ERR;
}

static const struct rpc_proc_desc fake_procs[] = {
    {fake_cb_null, "CB_NULL", 0},
    {fake_cb_compound, "CB_COMPOUND", 0},
};
static const struct rpc_version_desc fake_versions[] = {{1, 2, fake_procs}};
static const struct rpc_program_desc fake_program = {CB_PROG, "nfs4_cb", 1, fake_versions};

/* ---------------------------------------------------------------------------------- */
/* The NFS server side: a program that hands out the caller's connection               */
/* ---------------------------------------------------------------------------------- */

static _Atomic(struct rpc_conn *) grabbed;

static enum rpc_accept_status proc_grab(struct rpc_call *c)
{
    atomic_store(&grabbed, rpc_conn_get(c->conn));
    return RPC_SUCCESS;
}

static const struct rpc_proc_desc procs[] = {{proc_grab, "GRAB", 0}};
static const struct rpc_version_desc versions[] = {{1, 1, procs}};
static const struct rpc_program_desc program = {TEST_PROG, "cbtest", 1, versions};

/* ---------------------------------------------------------------------------------- */
/* Helpers                                                                             */
/* ---------------------------------------------------------------------------------- */

struct outcome {
    atomic_int runs;
    struct cb_result r;
};

static void outcome_done(void *ctx, const struct cb_result *res)
{
    struct outcome *o = ctx;
    o->r = *res;
    atomic_fetch_add(&o->runs, 1);
}

static void wait_runs(atomic_int *v, int at_least, int max_ms)
{
    for (int i = 0; i < max_ms / 5 && atomic_load(v) < at_least; i++)
        usleep(5 * 1000);
}

static bool wait_u64(const uint64_t *v, uint64_t at_least, int max_ms)
{
    for (int i = 0; i < max_ms / 5; i++) {
        if (__atomic_load_n(v, __ATOMIC_RELAXED) >= at_least)
            return true;
        usleep(5 * 1000);
    }
    return false;
}

static int fake_get(const int *field)
{
    pthread_mutex_lock(&fake.mu);
    int v = *field;
    pthread_mutex_unlock(&fake.mu);
    return v;
}

static bool wait_fake(const int *field, int at_least, int max_ms)
{
    for (int i = 0; i < max_ms / 5; i++) {
        if (fake_get(field) >= at_least)
            return true;
        usleep(5 * 1000);
    }
    return false;
}

static struct rpc_clnt *connect_to(uint16_t port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int err = 0;
    struct rpc_clnt *c = rpc_clnt_connect((struct sockaddr *)&sin, sizeof(sin), 2000, &err);
    CHECK(c != NULL);
    return c;
}

static struct rpc_conn *grab(struct rpc_clnt *c)
{
    struct rpc_reply rep;
    atomic_store(&grabbed, NULL);
    CHECK_EQ(rpc_clnt_call(c, TEST_PROG, 1, 0, NULL, NULL, NULL, 5000, &rep), 0);
    rpc_reply_free(&rep);
    struct rpc_conn *conn = atomic_load(&grabbed);
    CHECK(conn != NULL);
    return conn;
}

static const struct state_principal PRINC = {"sys:0", 5};
static const uint8_t VERF[8] = {7, 7, 7, 7, 7, 7, 7, 7};

/* EXCHANGE_ID + CREATE_SESSION with conn as fore + back channel: the client. */
static struct state_client *client41(struct state_server *ss, const char *owner, struct rpc_conn *conn,
                                     uint32_t back_slots, uint8_t sessionid[NFS4_SESSIONID_SIZE])
{
    struct state_exchange_id_res er;
    CHECK_EQ(state_exchange_id(ss, owner, strlen(owner), VERF, 0, &PRINC, 1, &er), STATE_OK);
    struct state_create_session_args a = {
        .clientid = er.clientid,
        .sequence = er.sequenceid,
        .flags = STATE_CREATE_SESSION_CONN_BACK_CHAN,
        .fore = {0, 65536, 65536, 4096, 16, 8},
        .back = {0, 4096, 4096, 0, 4, back_slots},
        .cb_program = CB_PROG,
        .principal = &PRINC,
        .conn = conn,
    };
    struct state_create_session_res cr;
    CHECK_EQ(state_create_session(ss, &a, &cr), STATE_OK);
    memcpy(sessionid, cr.sessionid, NFS4_SESSIONID_SIZE);
    struct state_client *c = NULL;
    CHECK_EQ(state_client_lookup(ss, er.clientid, &c), STATE_OK);
    if (c) /* no new state before it (RFC 8881 18.51.3) */
        CHECK_EQ(state_reclaim_complete(ss, c), STATE_OK);
    return c;
}

/* ---------------------------------------------------------------------------------- */
/* (a) wire helpers                                                                    */
/* ---------------------------------------------------------------------------------- */

static void test_uaddr(void)
{
    struct sockaddr_storage ss;
    socklen_t len;
    CHECK(cb_uaddr_parse("tcp", "127.0.0.1.8.1", &ss, &len));
    const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)&ss;
    CHECK(len == sizeof(*sin) && sin->sin_family == AF_INET && ntohs(sin->sin_port) == 2049 &&
          ntohl(sin->sin_addr.s_addr) == INADDR_LOOPBACK);
    CHECK(cb_uaddr_parse("tcp6", "fe80::1:2.3.4", &ss, &len));
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)&ss;
    CHECK(len == sizeof(*sin6) && sin6->sin6_family == AF_INET6 && ntohs(sin6->sin6_port) == 0x304 &&
          sin6->sin6_addr.s6_addr[0] == 0xfe && sin6->sin6_addr.s6_addr[15] == 2);
    CHECK(cb_uaddr_parse("tcp6", "::ffff:10.0.0.1.0.111", &ss, &len));
    static const char *const bad[][2] = {
        {"tcp", "127.0.0.1"},       {"tcp", "127.0.0.1.8"},    {"tcp", "127.0.0.1.256.1"},
        {"tcp", "127.0.0.1.0.0"},   {"tcp", "127.0.0.1.8.x"},  {"tcp", "127.0.0.1.8.0001"},
        {"tcp", "::1.8.1"},         {"tcp6", "127.0.0.1.8.1"}, {"udp", "127.0.0.1.8.1"},
        {"tcp", ""},                {"tcp", ".8.1"},           {"tcp", "1.2.3.4..1"},
        {"rdma", "1.2.3.4.8.1"},    {"tcp", "1.2.3.4.-1.1"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (cb_uaddr_parse(bad[i][0], bad[i][1], &ss, &len)) {
            fprintf(stderr, "accepted %s %s\n", bad[i][0], bad[i][1]);
            CHECK(false);
        }
}

/* Encodes a CB_COMPOUND4res and decodes it against the ops "sent". */
static bool decode_res(const CB_COMPOUND4res *r, const uint32_t *ops, unsigned nops, struct cb_reply *out)
{
    uint8_t buf[1024];
    struct xdr_enc e;
    xdr_enc_init(&e, buf, sizeof(buf));
    CHECK(xdr_encode_CB_COMPOUND4res(&e, r));
    struct xdr_dec d;
    xdr_dec_init(&d, buf, xdr_enc_len(&e), NULL);
    return cb_reply_decode(&d, ops, nops, out);
}

static void test_reply_decode(void)
{
    const uint32_t sent[2] = {OP_CB_SEQUENCE, OP_CB_RECALL};
    nfs_cb_resop4 res[3];
    memset(res, 0, sizeof(res));
    res[0].resop = OP_CB_SEQUENCE;
    res[0].opcbsequence.csr_status = NFS4_OK;
    res[0].opcbsequence.csr_resok4.csr_sequenceid = 5;
    res[1].resop = OP_CB_RECALL;
    res[1].opcbrecall.status = NFS4_OK;
    CB_COMPOUND4res r = {.status = NFS4_OK, .resarray = {2, res}};
    struct cb_reply out;
    CHECK(decode_res(&r, sent, 2, &out));
    CHECK(out.nres == 2 && out.has_seq && out.seq_status == NFS4_OK && out.seq.csr_sequenceid == 5 &&
          out.status == NFS4_OK && out.last_op == OP_CB_RECALL);
    /* more results than ops sent */
    res[2] = res[1];
    r.resarray.len = 3;
    CHECK(!decode_res(&r, sent, 2, &out));
    /* a result for another op */
    r.resarray.len = 2;
    res[1].resop = OP_CB_NOTIFY_LOCK;
    res[1].opcbnotify_lock.cnlr_status = NFS4_OK;
    CHECK(!decode_res(&r, sent, 2, &out));
    /* CB_ILLEGAL stands for any op; an OK COMPOUND status with a failed last op reads as it */
    res[1].resop = OP_CB_ILLEGAL;
    res[1].opcbillegal.status = NFS4ERR_OP_ILLEGAL;
    CHECK(decode_res(&r, sent, 2, &out));
    CHECK(out.status == NFS4ERR_OP_ILLEGAL && out.last_op == OP_CB_ILLEGAL);
    /* a failure before the last result */
    res[0].opcbsequence.csr_status = NFS4ERR_BADSESSION;
    res[1].resop = OP_CB_RECALL;
    res[1].opcbrecall.status = NFS4_OK;
    r.status = NFS4ERR_BADSESSION;
    CHECK(!decode_res(&r, sent, 2, &out));
    r.resarray.len = 1;
    CHECK(decode_res(&r, sent, 2, &out));
    CHECK(out.has_seq && out.seq_status == NFS4ERR_BADSESSION && out.status == NFS4ERR_BADSESSION);
    /* none (e.g. MINOR_VERS_MISMATCH) */
    r.resarray.len = 0;
    r.status = NFS4ERR_MINOR_VERS_MISMATCH;
    CHECK(decode_res(&r, sent, 2, &out));
    CHECK(!out.has_seq && out.status == NFS4ERR_MINOR_VERS_MISMATCH);
    /* truncated */
    uint8_t buf[8] = {0, 0, 0, 0, 0, 0, 0, 9};
    struct xdr_dec d;
    xdr_dec_init(&d, buf, sizeof(buf), NULL);
    CHECK(!cb_reply_decode(&d, sent, 2, &out));
}

/* CB_GETATTR results: change and size when both came (attribute order), nothing else. */
static void test_getattr_reply_decode(void)
{
    const uint32_t sent[2] = {OP_CB_SEQUENCE, OP_CB_GETATTR};
    nfs_cb_resop4 res[2];
    memset(res, 0, sizeof(res));
    res[0].resop = OP_CB_SEQUENCE;
    res[0].opcbsequence.csr_status = NFS4_OK;
    res[1].resop = OP_CB_GETATTR;
    res[1].opcbgetattr.status = NFS4_OK;
    uint8_t vals[20] = {0, 0, 0, 0, 0, 0, 0x12, 0x34, 0, 0, 0, 0, 0, 0, 0x10, 0, 0xee, 0xee, 0xee, 0xee};
    uint32_t mask[2] = {1u << 3 | 1u << 4, 0};
    fattr4 *a = &res[1].opcbgetattr.resok4.obj_attributes;
    *a = (fattr4){.attrmask = {2, mask}, .attr_vals = {16, vals}};
    CB_COMPOUND4res r = {.status = NFS4_OK, .resarray = {2, res}};
    struct cb_reply out;
    CHECK(decode_res(&r, sent, 2, &out));
    CHECK(out.has_attrs && out.change == 0x1234 && out.size == 0x1000);
    a->attr_vals.len = 12; /* too short for both */
    CHECK(decode_res(&r, sent, 2, &out) && !out.has_attrs);
    a->attr_vals.len = 16;
    mask[0] = 1u << 4; /* size only */
    CHECK(decode_res(&r, sent, 2, &out) && !out.has_attrs);
    mask[0] = 1u << 1 | 1u << 3 | 1u << 4; /* type first: not what we asked */
    CHECK(decode_res(&r, sent, 2, &out) && !out.has_attrs);
    mask[0] = 1u << 3 | 1u << 4;
    res[1].opcbgetattr.status = NFS4ERR_BADHANDLE; /* no such delegation at the client */
    r.status = NFS4ERR_BADHANDLE;
    CHECK(decode_res(&r, sent, 2, &out) && !out.has_attrs && out.status == NFS4ERR_BADHANDLE);
}

/* ---------------------------------------------------------------------------------- */
/* (b) (c) 4.1 over the back channel                                                   */
/* ---------------------------------------------------------------------------------- */

static int recall_sync(struct cb_service *cb, const struct cb_target *t, struct cb_result *res)
{
    static const uint8_t fh[] = "FH-of-a-file";
    struct state_stateid sid = {.seqid = 1, .other = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}};
    struct outcome o = {0};
    int err = cb_recall(cb, t, &sid, false, fh, sizeof(fh) - 1, outcome_done, &o);
    if (err)
        return err;
    wait_runs(&o.runs, 1, 10000);
    CHECK_EQ(atomic_load(&o.runs), 1);
    *res = o.r;
    return 0;
}

static void test_back_channel(struct cb_service *cb, struct state_server *ss, struct rpc_conn *conn,
                              struct state_session *s)
{
    struct cb_target t = {.minorversion = 1, .session = s};
    struct cb_result res;
    fake_set_mode(MODE_OK);

    /* CB_SEQUENCE + CB_RECALL: slot 0, seqid 1 then 2 */
    CHECK_EQ(recall_sync(cb, &t, &res), 0);
    CHECK(res.err == 0 && res.status == NFS4_OK && !res.path_failed);
    CHECK(fake.last_had_seq && fake.last_slot == 0 && fake.last_seqid == 1 && fake.last_highest == 0 &&
          !fake.last_cachethis && fake.last_minor == 1);
    CHECK(fake.last_stateid.seqid == 1 && fake.last_stateid.other[11] == 12);
    CHECK(fake.last_fh_len == 12 && memcmp(fake.last_fh, "FH-of-a-file", 12) == 0);
    CHECK(fake.last_flavor == RPC_AUTH_SYS && fake.last_uid == 0 && strcmp(fake.last_machine, "peernfsd") == 0);
    struct state_cb_sec none = {.flavor = RPC_AUTH_NONE};
    t.sec = &none; /* a back channel that only accepts AUTH_NONE */
    CHECK_EQ(recall_sync(cb, &t, &res), 0);
    CHECK(res.err == 0 && fake.last_seqid == 2 && fake.last_flavor == RPC_AUTH_NONE);
    struct state_cb_sec sys = {.flavor = RPC_AUTH_SYS, .uid = 17, .gid = 19, .machinename_len = 6,
                               .machinename = "client"}; /* the client's csa_sec_parms choice */
    t.sec = &sys;
    CHECK_EQ(recall_sync(cb, &t, &res), 0);
    CHECK(res.err == 0 && fake.last_seqid == 3 && fake.last_flavor == RPC_AUTH_SYS && fake.last_uid == 17 &&
          strcmp(fake.last_machine, "client") == 0);
    t.sec = NULL;

    /* NFS4ERR_DELAY from CB_RECALL: retried with the next seqid, then OK */
    struct cb_stats st0, st1;
    cb_service_stats(cb, &st0);
    fake_set_mode(MODE_DELAY_ONCE);
    int recalls0 = fake_get(&fake.recalls);
    CHECK_EQ(recall_sync(cb, &t, &res), 0);
    CHECK(res.err == 0 && res.status == NFS4_OK);
    CHECK_EQ(fake_get(&fake.recalls), recalls0 + 2);
    CHECK_EQ(fake.last_seqid, 5);
    cb_service_stats(cb, &st1);
    CHECK_EQ(st1.delay_retries, st0.delay_retries + 1);

    /* one back slot: three calls at once queue for it, the client sees one at a time */
    fake_set_mode(MODE_SLOW);
    struct outcome o[3] = {{0}};
    static const uint8_t fh[] = "FH2";
    struct state_stateid sid = {.seqid = 2};
    for (int i = 0; i < 3; i++)
        CHECK_EQ(cb_recall(cb, &t, &sid, true, fh, 3, outcome_done, &o[i]), 0);
    for (int i = 0; i < 3; i++) {
        wait_runs(&o[i].runs, 1, 10000);
        CHECK(o[i].r.err == 0 && o[i].r.status == NFS4_OK);
    }
    CHECK_EQ(fake.last_seqid, 8);
    CHECK_EQ(fake_get(&fake.max_in_flight), 1);
    cb_service_stats(cb, &st1);
    CHECK(st1.slot_waits > st0.slot_waits);
    fake_set_mode(MODE_OK);

    /* CB_NOTIFY_LOCK, CB_RECALL_ANY and CB_NULL over the back channel */
    struct outcome n = {0}, a = {0}, z = {0};
    CHECK_EQ(cb_notify_lock(cb, &t, "FH3", 3, 0x1122334455667788ull, "lockowner", 9, outcome_done, &n), 0);
    wait_runs(&n.runs, 1, 5000);
    CHECK(n.r.err == 0 && n.r.status == NFS4_OK && fake.last_lock_clientid == 0x1122334455667788ull &&
          strcmp(fake.last_owner, "lockowner") == 0);
    CHECK_EQ(cb_recall_any(cb, &t, 0, 1u << 0, outcome_done, &a), 0);
    wait_runs(&a.runs, 1, 5000);
    CHECK(a.r.err == 0 && a.r.status == NFS4_OK && fake_get(&fake.recall_anys) == 1);
    int nulls0 = fake_get(&fake.nulls);
    CHECK_EQ(cb_null(cb, &t, outcome_done, &z), 0);
    wait_runs(&z.runs, 1, 5000);
    CHECK(z.r.err == 0 && fake_get(&fake.nulls) == nulls0 + 1);
    CHECK_EQ(fake.last_seqid, 10);
    /* arguments refused up front */
    CHECK_EQ(cb_compound(cb, &t, NULL, 0, outcome_done, &z), -EINVAL);
    CHECK_EQ(cb_recall(cb, &t, &sid, false, fh, 0, outcome_done, &z), -EINVAL);
    struct cb_target t40 = {.minorversion = 0};
    CHECK_EQ(cb_recall_any(cb, &t40, 0, 1, outcome_done, &z), -EINVAL);
    struct cb_target t41_nosession = {.minorversion = 1};
    CHECK_EQ(cb_null(cb, &t41_nosession, outcome_done, &z), -EINVAL);

    /* BADSESSION from CB_SEQUENCE: the session's callback path goes down */
    uint8_t sessionid[NFS4_SESSIONID_SIZE];
    state_session_id(s, sessionid);
    fake_set_mode(MODE_BADSESSION);
    CHECK_EQ(recall_sync(cb, &t, &res), 0);
    CHECK(res.err == 0 && res.status == NFS4ERR_BADSESSION && res.path_failed);
    CHECK(state_session_back_conn(s) == NULL);
    CHECK_EQ(recall_sync(cb, &t, &res), 0);
    CHECK(res.err == -ENOTCONN && res.path_failed);
    /* binding the connection again brings it back; the slot's seqid was not used */
    enum state_conn_dir dir = STATE_CONN_BACK;
    CHECK_EQ(state_bind_conn_to_session(ss, sessionid, conn, &dir), STATE_OK);
    fake_set_mode(MODE_OK);
    CHECK_EQ(recall_sync(cb, &t, &res), 0);
    CHECK(res.err == 0 && res.status == NFS4_OK && fake.last_seqid == 11);

    /* no reply within the call timeout: path down */
    fake_set_mode(MODE_NO_REPLY);
    CHECK_EQ(recall_sync(cb, &t, &res), 0);
    CHECK(res.err == -ETIMEDOUT && res.path_failed);
    CHECK(state_session_back_conn(s) == NULL);
    CHECK_EQ(state_bind_conn_to_session(ss, sessionid, conn, &dir), STATE_OK);
    fake_set_mode(MODE_OK);
    /* the unanswered seqid 12 is sent again (the client never processed it) */
    CHECK_EQ(recall_sync(cb, &t, &res), 0);
    CHECK(res.err == 0 && fake.last_seqid == 12);
}

/* ---------------------------------------------------------------------------------- */
/* (d) 4.0: our own connection to the callback address                                 */
/* ---------------------------------------------------------------------------------- */

static void test_v40(struct cb_service *cb, uint16_t cb_port)
{
    struct cb_target t = {.minorversion = 0};
    t.info.program = CB_PROG;
    t.info.ident = 77;
    strcpy(t.info.netid, "tcp");
    snprintf(t.info.addr, sizeof(t.info.addr), "127.0.0.1.%u.%u", cb_port >> 8, cb_port & 0xff);
    struct cb_stats st0, st1;
    cb_service_stats(cb, &st0);
    int nulls0 = fake_get(&fake.nulls);
    struct outcome o = {0};
    CHECK_EQ(cb_null(cb, &t, outcome_done, &o), 0);
    wait_runs(&o.runs, 1, 5000);
    CHECK(o.r.err == 0 && !o.r.path_failed);
    CHECK_EQ(fake_get(&fake.nulls), nulls0 + 1);
    struct cb_result res;
    CHECK_EQ(recall_sync(cb, &t, &res), 0);
    CHECK(res.err == 0 && res.status == NFS4_OK);
    CHECK(!fake.last_had_seq && fake.last_minor == 0 && fake.last_ident == 77);
    cb_service_stats(cb, &st1);
    CHECK_EQ(st1.connects, st0.connects + 1); /* one connection for both */
    CHECK_EQ(st1.conns, 1);

    /* nobody listening there: the connection fails, the caller learns the path is broken */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sin);
    CHECK(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 && getsockname(fd, (struct sockaddr *)&sin, &sl) == 0);
    uint16_t dead_port = ntohs(sin.sin_port);
    close(fd); /* bound, never listened: refused */
    snprintf(t.info.addr, sizeof(t.info.addr), "127.0.0.1.%u.%u", dead_port >> 8, dead_port & 0xff);
    struct outcome f = {0};
    CHECK_EQ(cb_null(cb, &t, outcome_done, &f), 0);
    wait_runs(&f.runs, 1, 5000);
    CHECK(f.r.err == -ECONNREFUSED && f.r.path_failed);
    /* an address that does not parse */
    strcpy(t.info.addr, "localhost");
    struct outcome b = {0};
    CHECK_EQ(cb_null(cb, &t, outcome_done, &b), 0);
    wait_runs(&b.runs, 1, 5000);
    CHECK(b.r.err == -EINVAL && b.r.path_failed);
}

/* ---------------------------------------------------------------------------------- */
/* (e) the callback thread                                                             */
/* ---------------------------------------------------------------------------------- */

static struct nfs4_server nfs4srv;

static void test_callback_thread(struct state_server *ss, uint16_t srv_port, uint16_t cb_port)
{
    CHECK_EQ(nfs4_cb_start(&nfs4srv), 0);
    /* 4.1 client with a delegation; a conflicting writer makes state/ queue a recall */
    struct rpc_clnt *clnt = connect_to(srv_port);
    CHECK_EQ(rpc_clnt_set_callback_program(clnt, &fake_program, NULL), 0);
    struct rpc_conn *conn = grab(clnt);
    nfs4_cb_conn_seen(&nfs4srv, conn);
    nfs4_cb_conn_seen(&nfs4srv, conn); /* idempotent */
    uint8_t sessionid[NFS4_SESSIONID_SIZE];
    struct state_client *c = client41(ss, "thread-client", conn, 2, sessionid);
    pthread_mutex_lock(&fake.mu);
    memcpy(fake.sessionid, sessionid, sizeof(sessionid));
    memset(fake.slot_seq, 0, sizeof(fake.slot_seq));
    pthread_mutex_unlock(&fake.mu);
    fake_set_mode(MODE_OK);
    struct state_owner *o;
    bool created;
    CHECK_EQ(state_open_owner_get(ss, c, "owner", 5, &o, &created), STATE_OK);
    static const char key[] = "\x01\x02wire-filehandle";
    struct state_open_args oa = {.owner = o, .file_key = key, .file_key_len = sizeof(key) - 1,
                                 .share_access = STATE_SHARE_ACCESS_READ, .want_deleg = STATE_DELEG_READ};
    struct state_open_res res;
    CHECK_EQ(state_open(ss, &oa, &res), STATE_OK);
    CHECK(res.deleg != NULL);
    int recalls0 = fake_get(&fake.recalls);
    CHECK(state_deleg_break_for_file(ss, key, sizeof(key) - 1, true));
    CHECK(wait_u64(&nfs4srv.counters.cb_recall_sent, 1, 5000));
    CHECK_EQ(fake_get(&fake.recalls), recalls0 + 1);
    pthread_mutex_lock(&fake.mu);
    CHECK(fake.last_fh_len == sizeof(key) - 1 && memcmp(fake.last_fh, key, sizeof(key) - 1) == 0);
    CHECK(fake.last_stateid.seqid == res.deleg_stateid.seqid &&
          memcmp(fake.last_stateid.other, res.deleg_stateid.other, 12) == 0);
    CHECK(fake.last_seqid == 1);
    pthread_mutex_unlock(&fake.mu);
    CHECK_EQ(state_delegreturn(ss, res.deleg), STATE_OK);
    state_stid_put(res.deleg);
    state_stid_put(res.open);
    state_owner_put(o);

    /* the client's connection closes: the close notification tells state/ */
    struct state_session *s = state_client_back_session(c);
    CHECK(s != NULL);
    rpc_clnt_destroy(clnt);
    for (int i = 0; i < 400 && s; i++) {
        void *bc = state_session_back_conn(s);
        if (!bc)
            break;
        cb_conn_release(bc);
        usleep(5 * 1000);
    }
    CHECK(s && state_session_back_conn(s) == NULL);
    state_session_put(s);
    CHECK(state_client_back_session(c) == NULL);
    rpc_conn_put(conn);
    state_client_put(c);

    /* 4.0: SETCLIENTID_CONFIRM queues a CB_NULL probe of the callback address */
    struct state_cb_info info = {.program = CB_PROG, .ident = 5};
    strcpy(info.netid, "tcp");
    snprintf(info.addr, sizeof(info.addr), "127.0.0.1.%u.%u", cb_port >> 8, cb_port & 0xff);
    uint64_t cid;
    uint8_t confirm[8];
    int nulls0 = fake_get(&fake.nulls);
    CHECK_EQ(state_setclientid(ss, "v40-client", 10, VERF, &PRINC, &info, &cid, confirm), STATE_OK);
    CHECK_EQ(state_setclientid_confirm(ss, cid, confirm, &PRINC), STATE_OK);
    nfs4_cb_kick(&nfs4srv);
    CHECK(wait_fake(&fake.nulls, nulls0 + 1, 5000));
    nfs4_cb_stop(&nfs4srv);
    nfs4_cb_kick(&nfs4srv); /* not running: harmless */
    CHECK_EQ(nfs4srv.counters.cb_recall_failed, 0);
}

int main(void)
{
    test_uaddr();
    test_reply_decode();
    test_getattr_reply_decode();

    /* the NFS server: an rpc server and the state */
    struct rpc_server_config cfg = {.nloops = 2, .npool = 2};
    struct rpc_server *srv = rpc_server_new(&cfg);
    CHECK(srv != NULL);
    CHECK_EQ(rpc_server_add_program(srv, &program, NULL), 0);
    CHECK_EQ(rpc_server_listen_str(srv, "127.0.0.1", 0, SOCK_STREAM), 0);
    CHECK_EQ(rpc_server_start(srv), 0);
    uint16_t port = rpc_server_port(srv);
    /* a 4.0 client's callback service: a listening address of its own */
    struct rpc_server *cbsrv = rpc_server_new(&cfg);
    CHECK(cbsrv != NULL);
    CHECK_EQ(rpc_server_add_program(cbsrv, &fake_program, NULL), 0);
    CHECK_EQ(rpc_server_listen_str(cbsrv, "127.0.0.1", 0, SOCK_STREAM), 0);
    CHECK_EQ(rpc_server_start(cbsrv), 0);
    uint16_t cb_port = rpc_server_port(cbsrv);

    struct state_params p = {0};
    p.delegations = true;
    p.conn_hold = cb_conn_hold;
    p.conn_release = cb_conn_release;
    p.work_ready = nfs4_cb_work_ready;
    p.work_ctx = &nfs4srv;
    struct state_server *ss = state_server_create(&p);
    CHECK(ss != NULL);
    nfs4srv.state = ss;

    /* the NFS client: its connection is the session's back channel (one back slot) */
    struct rpc_clnt *clnt = connect_to(port);
    if (!clnt || !ss)
        return check_report("test_cb");
    CHECK_EQ(rpc_clnt_set_callback_program(clnt, &fake_program, NULL), 0);
    struct rpc_conn *conn = grab(clnt);
    uint8_t sessionid[NFS4_SESSIONID_SIZE];
    struct state_client *c = client41(ss, "client-one", conn, 1, sessionid);
    memcpy(fake.sessionid, sessionid, sizeof(sessionid));
    struct state_session *s = c ? state_client_back_session(c) : NULL;
    CHECK(s != NULL);
    if (s) { /* the back channel's credential, as nfs4/ records it from csa_sec_parms */
        struct state_cb_sec got, none = {.flavor = RPC_AUTH_NONE};
        struct state_cb_sec sys = {.flavor = RPC_AUTH_SYS, .uid = 17, .gid = 19, .machinename_len = 4,
                                   .machinename = "host"};
        uint32_t prog = 0x40000123, prog0 = state_session_cb_program(s);
        state_session_cb_sec(s, &got);
        CHECK(got.flavor == RPC_AUTH_SYS && got.uid == 0 && got.gid == 0 && strcmp(got.machinename, "peernfsd") == 0);
        CHECK_EQ(state_session_set_cb_sec(ss, state_client_id(c), sessionid, NULL, &none), STATE_OK);
        state_session_cb_sec(s, &got);
        CHECK_EQ(got.flavor, RPC_AUTH_NONE);
        CHECK_EQ(state_session_cb_program(s), prog0);
        CHECK_EQ(state_session_set_cb_sec(ss, state_client_id(c), sessionid, &prog, &sys), STATE_OK);
        state_session_cb_sec(s, &got);
        CHECK(got.flavor == RPC_AUTH_SYS && got.uid == 17 && got.gid == 19 && strcmp(got.machinename, "host") == 0);
        CHECK_EQ(state_session_cb_program(s), prog);
        CHECK_EQ(state_session_set_cb_sec(ss, state_client_id(c), sessionid, &prog0, &sys), STATE_OK);
        CHECK_EQ(state_session_set_cb_sec(ss, state_client_id(c) + 1, sessionid, NULL, &none), STATE_ERR_BADSESSION);
    }

    struct cb_config ccfg = {.call_timeout_ms = 400, .delay_backoff_ms = 20, .slot_wait_ms = 5000};
    int err = 0;
    struct cb_service *cb = cb_service_new(&ccfg, &err);
    CHECK(cb != NULL);
    if (cb && s)
        test_back_channel(cb, ss, conn, s);
    if (cb)
        test_v40(cb, cb_port);
    cb_service_destroy(cb);
    state_session_put(s);
    state_client_put(c);
    rpc_conn_put(conn);
    rpc_clnt_destroy(clnt);

    test_callback_thread(ss, port, cb_port);

    rpc_server_destroy(srv);
    rpc_server_destroy(cbsrv);
    state_server_destroy(ss);
    return check_report("test_cb");
}
