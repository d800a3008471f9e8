/*
 * rpc/ back channel: calls in both directions on one TCP connection (RFC 5531 mtype,
 * RFC 8881 section 2.10.3.1), server and clients in one process over loopback:
 *  (a) a forward call whose handler calls the client back on the same connection; the
 *      client's callback handler answers, the server's done gets the result and answers
 *      the (deferred) forward call with it; a callback handler that itself makes a
 *      forward call on the same client does not deadlock;
 *  (b) many threads of forward calls and callbacks interleaved on one connection, plus
 *      direct rpc_conn_call()s from another thread, some of 384 KiB (queued whole while
 *      replies go out): every call matched, no mixed records;
 *  (c) a callback the client never answers times out; unknown program / version come
 *      back as -EPROTO; a client without a callback service answers PROG_UNAVAIL;
 *  (d) the client goes away while a callback is outstanding: done(-ECONNRESET) once,
 *      the close notification fires (a cancelled one does not), later calls -ENOTCONN;
 *  (e) over a raw socket: REPLY records with unknown xids, garbage, denied and
 *      not-SUCCESS replies are dropped or fail only their own call; the connection
 *      keeps serving;
 *  (f) one program number registered twice (versions 3 and 4, separate ctx): each
 *      version reaches its ctx, PROG_MISMATCH reports 3..4, a duplicate version is refused;
 *  (g) rpc_server_destroy() with a callback outstanding: done(-ECONNRESET) once, and the
 *      connection handle outlives the server.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "rpc/backchannel.h"
#include "rpc/clnt.h"
#include "rpc/msg.h"
#include "rpc/record.h"
#include "rpc/server.h"

#define TEST_PROG 0x200001b0u
#define TWIN_PROG 0x200001b1u
#define CB_PROG 0x400001b0u
#define THREADS 6
#define ROUNDS 150

/* ---------- the client's callback service ---------- */

enum { CB_NULL, CB_DOUBLE, CB_NEVER, CB_NESTED, CB_SUM, CB_NPROCS };

static struct rpc_clnt *clnt; /* the client CB_NESTED calls forward on */
static atomic_int cb_handled;

static enum rpc_accept_status cb_null(struct rpc_call *c) { (void)c; return RPC_SUCCESS; }

static enum rpc_accept_status cb_double(struct rpc_call *c)
{
    uint32_t v;
    if (c->conn != NULL || c->prog_ctx != &cb_handled)
        return RPC_SYSTEM_ERR;
    if (!xdr_dec_u32(&c->args, &v))
        return RPC_GARBAGE_ARGS;
    atomic_fetch_add(&cb_handled, 1);
    return xdr_enc_u32(&c->res, 2 * v + 1) ? RPC_SUCCESS : RPC_SYSTEM_ERR;
}

static enum rpc_accept_status cb_never(struct rpc_call *c) { (void)c; return RPC_NO_REPLY; }

static bool enc_u32(struct xdr_enc *x, const void *v) { return xdr_enc_u32(x, *(const uint32_t *)v); }

/* Blocks in a forward call on the client whose reader delivered this callback. */
static enum rpc_accept_status cb_nested(struct rpc_call *c)
{
    uint32_t v, a = 0, b = 0;
    struct rpc_reply rep;
    if (!xdr_dec_u32(&c->args, &v))
        return RPC_GARBAGE_ARGS;
    int err = rpc_clnt_call(clnt, TEST_PROG, 1, 1 /* P_ECHO */, NULL, enc_u32, &v, 5000, &rep);
    bool ok = err == 0 && xdr_dec_u32(&rep.res, &a) && xdr_dec_u32(&rep.res, &b);
    rpc_reply_free(&rep);
    return ok && xdr_enc_u32(&c->res, a + b) ? RPC_SUCCESS : RPC_SYSTEM_ERR;
}

/* A big argument: the call does not fit the socket at once and is queued whole. */
static enum rpc_accept_status cb_sum(struct rpc_call *c)
{
    struct xdr_opaque data;
    uint32_t sum = 0;
    if (!xdr_dec_opaque(&c->args, &data, 1u << 20))
        return RPC_GARBAGE_ARGS;
    for (uint32_t i = 0; i < data.len; i++)
        sum += data.val[i];
    return xdr_enc_u32(&c->res, sum) ? RPC_SUCCESS : RPC_SYSTEM_ERR;
}

static const struct rpc_proc_desc cb_procs[CB_NPROCS] = {
    [CB_NULL] = { cb_null, "CB_NULL", 0 },
    [CB_DOUBLE] = { cb_double, "CB_DOUBLE", 0 },
    [CB_NEVER] = { cb_never, "CB_NEVER", 0 },
    [CB_NESTED] = { cb_nested, "CB_NESTED", 0 },
    [CB_SUM] = { cb_sum, "CB_SUM", 0 },
};
static const struct rpc_version_desc cb_versions[] = { { 1, CB_NPROCS, cb_procs } };
static const struct rpc_program_desc cb_program = { CB_PROG, "cbtest", 1, cb_versions };

/* ---------- the server's program ---------- */

enum { P_NULL, P_ECHO, P_VIA_CB, P_GRAB, P_NESTED, NPROCS };

static enum rpc_accept_status proc_null(struct rpc_call *c) { (void)c; return RPC_SUCCESS; }

static enum rpc_accept_status proc_echo(struct rpc_call *c)
{
    uint32_t v;
    if (!xdr_dec_u32(&c->args, &v))
        return RPC_GARBAGE_ARGS;
    return xdr_enc_u32(&c->res, v) && xdr_enc_u32(&c->res, v + 1) ? RPC_SUCCESS : RPC_SYSTEM_ERR;
}

/* A forward call answered with what the client's callback returned. */
struct relay {
    struct rpc_deferred *d;
};

static void relay_done(void *ctx, int err, struct xdr_dec *res)
{
    struct relay *r = ctx;
    uint32_t v;
    if (err == 0 && xdr_dec_u32(res, &v))
        rpc_deferred_reply(r->d, RPC_SUCCESS, enc_u32, &v);
    else
        rpc_deferred_reply(r->d, RPC_SYSTEM_ERR, NULL, NULL);
    free(r);
}

static enum rpc_accept_status relay_to_client(struct rpc_call *c, uint32_t cb_proc)
{
    uint32_t v;
    if (!xdr_dec_u32(&c->args, &v))
        return RPC_GARBAGE_ARGS;
    struct relay *r = malloc(sizeof(*r));
    if (!r || !(r->d = rpc_call_defer(c))) {
        free(r);
        return RPC_SYSTEM_ERR;
    }
    /* no reference kept: the conn is the caller's for the duration of this call */
    int err = rpc_conn_call(c->conn, CB_PROG, 1, cb_proc, NULL, enc_u32, &v, 5000, relay_done, r);
    if (err) {
        rpc_deferred_drop(r->d);
        free(r);
        return RPC_SYSTEM_ERR;
    }
    return RPC_DEFERRED;
}

static enum rpc_accept_status proc_via_cb(struct rpc_call *c) { return relay_to_client(c, CB_DOUBLE); }
static enum rpc_accept_status proc_nested(struct rpc_call *c) { return relay_to_client(c, CB_NESTED); }

/* Keeps the caller's connection (as a session's back channel would) and tells its id. */
static _Atomic(struct rpc_conn *) grabbed;

static enum rpc_accept_status proc_grab(struct rpc_call *c)
{
    atomic_store(&grabbed, rpc_conn_get(c->conn));
    uint64_t id = rpc_conn_id(c->conn);
    return xdr_enc_u64(&c->res, id) ? RPC_SUCCESS : RPC_SYSTEM_ERR;
}

static const struct rpc_proc_desc procs[NPROCS] = {
    [P_NULL] = { proc_null, "NULL", 0 },
    [P_ECHO] = { proc_echo, "ECHO", 0 },
    [P_VIA_CB] = { proc_via_cb, "VIA_CB", 0 },
    [P_GRAB] = { proc_grab, "GRAB", 0 },
    [P_NESTED] = { proc_nested, "NESTED", 0 },
};
static const struct rpc_version_desc versions[] = { { 1, NPROCS, procs } };
static const struct rpc_program_desc program = { TEST_PROG, "bctest", 1, versions };

/* (f) one program number, two modules: each version answers with its own ctx */
static enum rpc_accept_status twin_which(struct rpc_call *c)
{
    return xdr_enc_u32(&c->res, *(const uint32_t *)c->prog_ctx) ? RPC_SUCCESS : RPC_SYSTEM_ERR;
}
static const struct rpc_proc_desc twin_procs[] = { { proc_null, "NULL", 0 }, { twin_which, "WHICH", 0 } };
static const struct rpc_version_desc twin3_versions[] = { { 3, 2, twin_procs } };
static const struct rpc_version_desc twin4_versions[] = { { 4, 2, twin_procs } };
static const struct rpc_program_desc twin3 = { TWIN_PROG, "twin3", 1, twin3_versions };
static const struct rpc_program_desc twin4 = { TWIN_PROG, "twin4", 1, twin4_versions };
static uint32_t twin3_ctx = 33, twin4_ctx = 44;

/* ---------- helpers ---------- */

/* The completion of one rpc_conn_call: counts how often done ran. */
struct outcome {
    atomic_int runs;
    int err;
    uint32_t value;
    bool decoded;
};

static void outcome_done(void *ctx, int err, struct xdr_dec *res)
{
    struct outcome *o = ctx;
    o->err = err;
    o->decoded = err == 0 && xdr_dec_u32(res, &o->value);
    atomic_fetch_add(&o->runs, 1);
}

static void wait_for(atomic_int *v, int at_least, int max_ms)
{
    for (int i = 0; i < max_ms / 5 && atomic_load(v) < at_least; i++)
        usleep(5 * 1000);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int call_u32(struct rpc_clnt *c, uint32_t prog, uint32_t vers, uint32_t proc, uint32_t v,
                    uint32_t *out)
{
    struct rpc_reply rep;
    int err = rpc_clnt_call(c, prog, vers, proc, NULL, enc_u32, &v, 5000, &rep);
    if (err == 0 && !xdr_dec_u32(&rep.res, out))
        err = -EBADMSG;
    rpc_reply_free(&rep);
    return err;
}

static struct rpc_conn *grab(struct rpc_clnt *c)
{
    struct rpc_reply rep;
    atomic_store(&grabbed, NULL);
    int err = rpc_clnt_call(c, TEST_PROG, 1, P_GRAB, NULL, NULL, NULL, 5000, &rep);
    uint64_t id = 0;
    CHECK_EQ(err, 0);
    CHECK(err == 0 && xdr_dec_u64(&rep.res, &id) && id != 0);
    rpc_reply_free(&rep);
    struct rpc_conn *conn = atomic_load(&grabbed);
    CHECK(conn != NULL && rpc_conn_id(conn) == id);
    return conn;
}

struct close_seen {
    atomic_int runs;
    struct rpc_conn *conn;
};

static void on_close(void *ctx, struct rpc_conn *c)
{
    struct close_seen *s = ctx;
    s->conn = c;
    atomic_fetch_add(&s->runs, 1);
}

/* ---------- (b) concurrency ---------- */

static atomic_int failures;

static void *forward_and_back(void *arg)
{
    uint32_t base = (uint32_t)(uintptr_t)arg * 100000;
    for (uint32_t i = 0; i < ROUNDS; i++) {
        uint32_t v = base + i, r = 0;
        if (call_u32(clnt, TEST_PROG, 1, P_VIA_CB, v, &r) != 0 || r != 2 * v + 1)
            atomic_fetch_add(&failures, 1);
        if (call_u32(clnt, TEST_PROG, 1, P_ECHO, v, &r) != 0 || r != v)
            atomic_fetch_add(&failures, 1);
    }
    return NULL;
}

#define DIRECT 300
#define BIG 10 /* DIRECT / BIG exact: one big call every 30 */
#define BIG_LEN (384 * 1024)

struct direct_calls {
    struct rpc_conn *conn;
    struct outcome o[DIRECT];
    struct outcome big[BIG];
    uint8_t *blob;
};

static bool enc_blob(struct xdr_enc *x, const void *blob)
{
    return xdr_enc_opaque(x, blob, BIG_LEN, 1u << 20);
}

static uint32_t blob_sum(const uint8_t *blob)
{
    uint32_t sum = 0;
    for (uint32_t i = 0; i < BIG_LEN; i++)
        sum += blob[i];
    return sum;
}

static void *direct_caller(void *arg)
{
    struct direct_calls *dc = arg;
    for (uint32_t i = 0; i < DIRECT; i++) {
        uint32_t v = 7000 + i;
        if (rpc_conn_call(dc->conn, CB_PROG, 1, CB_DOUBLE, NULL, enc_u32, &v, 10000,
                          outcome_done, &dc->o[i]) != 0)
            atomic_fetch_add(&failures, 1);
        if (i % (DIRECT / BIG) == 0 && /* big ones in between, queued while replies flow */
            rpc_conn_call(dc->conn, CB_PROG, 1, CB_SUM, NULL, enc_blob, dc->blob, 10000,
                          outcome_done, &dc->big[i / (DIRECT / BIG)]) != 0)
            atomic_fetch_add(&failures, 1);
    }
    return NULL;
}

/* ---------- (e) a raw client socket ---------- */

static int raw_connect(uint16_t port)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = { .tv_sec = 5 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool raw_send(int fd, const uint8_t *body, size_t len)
{
    uint8_t mark[4];
    xdr_put_be32(mark, REC_LAST_FRAG | (uint32_t)len);
    return send(fd, mark, 4, MSG_NOSIGNAL) == 4 && send(fd, body, len, MSG_NOSIGNAL) == (ssize_t)len;
}

static bool read_full(int fd, uint8_t *p, size_t len)
{
    while (len) {
        ssize_t n = recv(fd, p, len, 0);
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* One single-fragment record (the server writes nothing else). */
static ssize_t raw_recv(int fd, uint8_t *buf, size_t cap)
{
    uint8_t mark[4];
    if (!read_full(fd, mark, 4))
        return -1;
    uint32_t len = xdr_get_be32(mark) & ~REC_LAST_FRAG;
    if (!(xdr_get_be32(mark) & REC_LAST_FRAG) || len > cap || !read_full(fd, buf, len))
        return -1;
    return len;
}

static bool raw_call(int fd, uint32_t xid, uint32_t proc, const uint32_t *arg)
{
    uint8_t buf[256];
    struct xdr_enc x;
    xdr_enc_init(&x, buf, sizeof(buf));
    return rpc_enc_call(&x, xid, TEST_PROG, 1, proc, NULL) && (!arg || xdr_enc_u32(&x, *arg)) &&
           raw_send(fd, buf, xdr_enc_len(&x));
}

/* Start a callback on conn and read its CALL off the raw socket: the xid to answer. */
static uint32_t raw_expect_callback(int fd, struct rpc_conn *conn, struct outcome *o)
{
    uint32_t v = 5, xid = 0, mtype = 1, prog = 0;
    uint8_t buf[512];
    CHECK_EQ(rpc_conn_call(conn, CB_PROG, 1, CB_DOUBLE, NULL, enc_u32, &v, 5000, outcome_done, o), 0);
    ssize_t n = raw_recv(fd, buf, sizeof(buf));
    struct xdr_dec d;
    xdr_dec_init(&d, buf, n > 0 ? (size_t)n : 0, NULL);
    uint32_t rpcvers = 0;
    CHECK(xdr_dec_u32(&d, &xid) && xdr_dec_u32(&d, &mtype) && xdr_dec_u32(&d, &rpcvers) &&
          xdr_dec_u32(&d, &prog));
    CHECK_EQ(mtype, RPC_CALL);
    CHECK_EQ(prog, CB_PROG);
    return xid;
}

static void test_raw_replies(uint16_t port, struct rpc_server *srv)
{
    int fd = raw_connect(port);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    uint8_t buf[512];
    struct xdr_enc x;
    atomic_store(&grabbed, NULL);
    CHECK(raw_call(fd, 1, P_GRAB, NULL));
    CHECK(raw_recv(fd, buf, sizeof(buf)) > 0);
    struct rpc_conn *conn = atomic_load(&grabbed);
    CHECK(conn != NULL);
    if (!conn) {
        close(fd);
        return;
    }
    struct rpc_server_stats st0, st1;
    rpc_server_get_stats(srv, &st0);

    /* replies nobody asked for, and garbage; none has a matching xid */
    xdr_enc_init(&x, buf, sizeof(buf));
    rpc_enc_accepted(&x, 0xdead0001u, RPC_SUCCESS);
    xdr_enc_u32(&x, 99);
    CHECK(raw_send(fd, buf, xdr_enc_len(&x)));
    const uint8_t short_reply[] = { 0xde, 0xad, 0, 2, 0, 0, 0, 1 };      /* xid + REPLY only */
    const uint8_t bad_stat[] = { 0xde, 0xad, 0, 3, 0, 0, 0, 1, 0, 0, 0, 9 }; /* reply_stat 9 */
    const uint8_t bad_verf[] = { 0xde, 0xad, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff };
    const uint8_t bad_mtype[] = { 0xde, 0xad, 0, 5, 0, 0, 0, 7, 0, 0, 0, 0 };
    const uint8_t tiny[] = { 1, 2, 3 };
    CHECK(raw_send(fd, short_reply, sizeof(short_reply)));
    CHECK(raw_send(fd, bad_stat, sizeof(bad_stat)));
    CHECK(raw_send(fd, bad_verf, sizeof(bad_verf)));
    CHECK(raw_send(fd, bad_mtype, sizeof(bad_mtype)));
    CHECK(raw_send(fd, tiny, sizeof(tiny)));

    /* garbage with the xid of an outstanding call fails that call only */
    struct outcome o1 = { 0 }, o2 = { 0 }, o3 = { 0 }, o4 = { 0 };
    uint32_t xid = raw_expect_callback(fd, conn, &o1);
    uint8_t garbage[12];
    xdr_put_be32(garbage, xid);
    xdr_put_be32(garbage + 4, RPC_REPLY);
    xdr_put_be32(garbage + 8, RPC_MSG_ACCEPTED); /* then nothing: truncated */
    CHECK(raw_send(fd, garbage, sizeof(garbage)));
    wait_for(&o1.runs, 1, 3000);
    CHECK_EQ(atomic_load(&o1.runs), 1);
    CHECK_EQ(o1.err, -EPROTO);

    /* denied */
    xid = raw_expect_callback(fd, conn, &o2);
    xdr_enc_init(&x, buf, sizeof(buf));
    rpc_enc_auth_error(&x, xid, RPC_AUTH_BADCRED);
    CHECK(raw_send(fd, buf, xdr_enc_len(&x)));
    wait_for(&o2.runs, 1, 3000);
    CHECK_EQ(o2.err, -EPROTO);

    /* accepted but not SUCCESS */
    xid = raw_expect_callback(fd, conn, &o3);
    xdr_enc_init(&x, buf, sizeof(buf));
    rpc_enc_accepted(&x, xid, RPC_PROG_UNAVAIL);
    CHECK(raw_send(fd, buf, xdr_enc_len(&x)));
    wait_for(&o3.runs, 1, 3000);
    CHECK_EQ(o3.err, -EPROTO);

    /* a good one, then the same reply again (a duplicate: dropped) */
    xid = raw_expect_callback(fd, conn, &o4);
    xdr_enc_init(&x, buf, sizeof(buf));
    rpc_enc_accepted(&x, xid, RPC_SUCCESS);
    xdr_enc_u32(&x, 11);
    CHECK(raw_send(fd, buf, xdr_enc_len(&x)));
    CHECK(raw_send(fd, buf, xdr_enc_len(&x)));

    /* the connection still serves calls */
    uint32_t v = 3, r[2] = { 0, 0 };
    CHECK(raw_call(fd, 2, P_ECHO, &v));
    ssize_t n = raw_recv(fd, buf, sizeof(buf));
    uint32_t rxid = 0;
    struct xdr_dec d;
    xdr_dec_init(&d, buf, n > 0 ? (size_t)n : 0, NULL);
    CHECK(xdr_dec_u32(&d, &rxid) && rxid == 2);
    CHECK(n == 4 * 8 && (r[0] = xdr_get_be32(buf + 24)) == 3 && (r[1] = xdr_get_be32(buf + 28)) == 4);
    wait_for(&o4.runs, 1, 3000);
    CHECK_EQ(atomic_load(&o4.runs), 1);
    CHECK_EQ(o4.err, 0);
    CHECK(o4.decoded && o4.value == 11);

    rpc_server_get_stats(srv, &st1);
    /* unknown xid, short, bad reply_stat, bad verifier, duplicate; not the bad mtype or
     * the 3-byte record (not replies at all) */
    CHECK_EQ(st1.backchannel_dropped - st0.backchannel_dropped, 5);
    CHECK_EQ(st1.backchannel_replies - st0.backchannel_replies, 4);
    CHECK_EQ(atomic_load(&o1.runs) + atomic_load(&o2.runs) + atomic_load(&o3.runs), 3);
    close(fd);
    rpc_conn_put(conn);
}

/* ---------- main ---------- */

static struct rpc_clnt *connect_to(uint16_t port)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int err = 0;
    struct rpc_clnt *c = rpc_clnt_connect((struct sockaddr *)&sin, sizeof(sin), 2000, &err);
    CHECK(c != NULL);
    return c;
}

static void test_twin_program(struct rpc_clnt *c)
{
    uint32_t v = 0;
    CHECK_EQ(call_u32(c, TWIN_PROG, 3, 1, 0, &v), 0);
    CHECK_EQ(v, 33);
    CHECK_EQ(call_u32(c, TWIN_PROG, 4, 1, 0, &v), 0);
    CHECK_EQ(v, 44);
    for (uint32_t vers = 2; vers <= 5; vers += 3) {
        struct rpc_reply rep;
        CHECK_EQ(rpc_clnt_call(c, TWIN_PROG, vers, 0, NULL, NULL, NULL, 2000, &rep), -EPROTO);
        CHECK_EQ(rep.info.accept_stat, RPC_PROG_MISMATCH);
        CHECK(rep.info.low == 3 && rep.info.high == 4);
        rpc_reply_free(&rep);
    }
}

static void test_callbacks_basic(struct rpc_clnt *c)
{
    uint32_t r = 0;
    CHECK_EQ(call_u32(c, TEST_PROG, 1, P_VIA_CB, 20, &r), 0);
    CHECK_EQ(r, 41);
    CHECK(atomic_load(&cb_handled) >= 1);
    /* the callback handler makes its own forward call on this client: 21 + 22 */
    CHECK_EQ(call_u32(c, TEST_PROG, 1, P_NESTED, 21, &r), 0);
    CHECK_EQ(r, 43);
}

static void test_concurrent(struct rpc_clnt *c)
{
    struct direct_calls *dc = calloc(1, sizeof(*dc));
    dc->conn = grab(c);
    dc->blob = malloc(BIG_LEN);
    if (!dc->conn || !dc->blob) {
        free(dc->blob);
        free(dc);
        return;
    }
    for (uint32_t i = 0; i < BIG_LEN; i++)
        dc->blob[i] = (uint8_t)(i * 31 + 7);
    pthread_t th[THREADS], direct;
    for (uintptr_t i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, forward_and_back, (void *)i);
    pthread_create(&direct, NULL, direct_caller, dc);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_join(direct, NULL);
    CHECK_EQ(atomic_load(&failures), 0);
    int ok = 0;
    for (int i = 0; i < DIRECT; i++) {
        wait_for(&dc->o[i].runs, 1, 5000);
        ok += atomic_load(&dc->o[i].runs) == 1 && dc->o[i].err == 0 && dc->o[i].decoded &&
              dc->o[i].value == 2 * (7000u + (uint32_t)i) + 1;
    }
    CHECK_EQ(ok, DIRECT);
    uint32_t sum = blob_sum(dc->blob);
    ok = 0;
    for (int i = 0; i < BIG; i++) {
        wait_for(&dc->big[i].runs, 1, 5000);
        ok += atomic_load(&dc->big[i].runs) == 1 && dc->big[i].err == 0 && dc->big[i].value == sum;
    }
    CHECK_EQ(ok, BIG);
    rpc_conn_put(dc->conn);
    free(dc->blob);
    free(dc);
}

static void test_timeouts_and_errors(struct rpc_clnt *c)
{
    struct rpc_conn *conn = grab(c);
    if (!conn)
        return;
    struct outcome t = { 0 }, p = { 0 }, m = { 0 };
    int64_t t0 = now_ms();
    CHECK_EQ(rpc_conn_call(conn, CB_PROG, 1, CB_NEVER, NULL, NULL, NULL, 200, outcome_done, &t), 0);
    CHECK_EQ(rpc_conn_call(conn, CB_PROG + 1, 1, 0, NULL, NULL, NULL, 5000, outcome_done, &p), 0);
    CHECK_EQ(rpc_conn_call(conn, CB_PROG, 9, 0, NULL, NULL, NULL, 5000, outcome_done, &m), 0);
    wait_for(&t.runs, 1, 3000);
    int64_t took = now_ms() - t0;
    CHECK_EQ(atomic_load(&t.runs), 1);
    CHECK_EQ(t.err, -ETIMEDOUT);
    CHECK(took >= 190 && took < 2000);
    wait_for(&p.runs, 1, 3000);
    wait_for(&m.runs, 1, 3000);
    CHECK(p.err == -EPROTO && m.err == -EPROTO);
    /* still usable */
    struct outcome ok = { 0 };
    uint32_t v = 4;
    CHECK_EQ(rpc_conn_call(conn, CB_PROG, 1, CB_DOUBLE, NULL, enc_u32, &v, 5000, outcome_done, &ok), 0);
    wait_for(&ok.runs, 1, 3000);
    CHECK(ok.err == 0 && ok.value == 9);
    usleep(50 * 1000);
    CHECK_EQ(atomic_load(&t.runs), 1); /* exactly once, also later */
    rpc_conn_put(conn);
}

/* A client without a callback service: the server's callback gets PROG_UNAVAIL. */
static void test_no_callback_service(uint16_t port)
{
    struct rpc_clnt *c = connect_to(port);
    if (!c)
        return;
    struct rpc_reply rep;
    uint32_t v = 1;
    CHECK_EQ(rpc_clnt_call(c, TEST_PROG, 1, P_VIA_CB, NULL, enc_u32, &v, 5000, &rep), -EPROTO);
    CHECK_EQ(rep.info.accept_stat, RPC_SYSTEM_ERR);
    rpc_reply_free(&rep);
    rpc_clnt_destroy(c);
}

static void test_close_while_outstanding(uint16_t port)
{
    struct rpc_clnt *c = connect_to(port);
    if (!c)
        return;
    CHECK_EQ(rpc_clnt_set_callback_program(c, &cb_program, &cb_handled), 0);
    CHECK_EQ(rpc_clnt_set_callback_program(c, &cb_program, &cb_handled), -EBUSY);
    struct rpc_conn *conn = grab(c);
    if (!conn) {
        rpc_clnt_destroy(c);
        return;
    }
    socklen_t plen = 0;
    const struct sockaddr *peer = rpc_conn_peer(conn, &plen);
    CHECK(plen == sizeof(struct sockaddr_in) && peer->sa_family == AF_INET);
    struct close_seen seen = { 0 }, cancelled = { 0 };
    CHECK_EQ(rpc_conn_on_close(conn, on_close, &seen), 0);
    CHECK_EQ(rpc_conn_on_close(conn, on_close, &cancelled), 0);
    CHECK_EQ(rpc_conn_cancel_on_close(conn, on_close, &cancelled), 0);
    CHECK_EQ(rpc_conn_cancel_on_close(conn, on_close, &cancelled), -ENOENT);
    struct outcome o = { 0 };
    CHECK_EQ(rpc_conn_call(conn, CB_PROG, 1, CB_NEVER, NULL, NULL, NULL, 30000, outcome_done, &o), 0);
    usleep(50 * 1000);
    CHECK(rpc_conn_connected(conn));
    rpc_clnt_destroy(c); /* the socket closes; the server sees EOF */
    wait_for(&seen.runs, 1, 3000);
    wait_for(&o.runs, 1, 3000);
    CHECK_EQ(atomic_load(&o.runs), 1);
    CHECK_EQ(o.err, -ECONNRESET);
    CHECK_EQ(atomic_load(&seen.runs), 1);
    CHECK(seen.conn == conn);
    CHECK_EQ(atomic_load(&cancelled.runs), 0);
    CHECK(!rpc_conn_connected(conn));
    struct outcome late = { 0 };
    CHECK_EQ(rpc_conn_call(conn, CB_PROG, 1, CB_NULL, NULL, NULL, NULL, 1000, outcome_done, &late), -ENOTCONN);
    CHECK_EQ(rpc_conn_on_close(conn, on_close, &seen), -ENOTCONN);
    CHECK_EQ(rpc_conn_cancel_on_close(conn, on_close, &seen), -ENOENT);
    usleep(50 * 1000);
    CHECK_EQ(atomic_load(&o.runs), 1);
    CHECK_EQ(atomic_load(&late.runs), 0);
    rpc_conn_put(conn);
}

int main(void)
{
    struct rpc_server_config cfg = { .nloops = 2, .npool = 2 };
    struct rpc_server *srv = rpc_server_new(&cfg);
    CHECK(srv != NULL);
    CHECK_EQ(rpc_server_add_program(srv, &program, NULL), 0);
    CHECK_EQ(rpc_server_add_program(srv, &twin4, &twin4_ctx), 0);
    CHECK_EQ(rpc_server_add_program(srv, &twin3, &twin3_ctx), 0);
    CHECK_EQ(rpc_server_add_program(srv, &twin4, &twin4_ctx), -EEXIST);
    CHECK_EQ(rpc_server_listen_str(srv, "127.0.0.1", 0, SOCK_STREAM), 0);
    CHECK_EQ(rpc_server_start(srv), 0);
    uint16_t port = rpc_server_port(srv);

    clnt = connect_to(port);
    if (!clnt)
        return check_report("test_rpc_backchannel");
    CHECK_EQ(rpc_clnt_set_callback_program(clnt, &cb_program, &cb_handled), 0);

    test_twin_program(clnt);            /* (f) */
    test_callbacks_basic(clnt);         /* (a) */
    test_concurrent(clnt);              /* (b) */
    test_timeouts_and_errors(clnt);     /* (c) */
    test_no_callback_service(port);     /* (c) */
    test_close_while_outstanding(port); /* (d) */
    test_raw_replies(port, srv);        /* (e) */

    /* (g) the server goes away with a callback outstanding */
    struct rpc_conn *conn = grab(clnt);
    struct outcome o = { 0 };
    struct close_seen seen = { 0 };
    if (conn) {
        CHECK_EQ(rpc_conn_on_close(conn, on_close, &seen), 0);
        CHECK_EQ(rpc_conn_call(conn, CB_PROG, 1, CB_NEVER, NULL, NULL, NULL, 60000, outcome_done, &o), 0);
    }
    usleep(50 * 1000);
    struct rpc_server_stats st;
    rpc_server_get_stats(srv, &st);
    CHECK(st.backchannel_calls >= THREADS * ROUNDS + DIRECT);
    rpc_server_destroy(srv);
    if (conn) {
        CHECK_EQ(atomic_load(&o.runs), 1);
        CHECK_EQ(o.err, -ECONNRESET);
        CHECK_EQ(atomic_load(&seen.runs), 1);
        CHECK_EQ(rpc_conn_call(conn, CB_PROG, 1, CB_NULL, NULL, NULL, NULL, 1000, outcome_done, &o), -ENOTCONN);
        rpc_conn_put(conn); /* the handle outlived the server */
    }
    rpc_clnt_destroy(clnt);
    return check_report("test_rpc_backchannel");
}
