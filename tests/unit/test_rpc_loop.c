/*
 * rpc/ server and client together, in one process over loopback TCP:
 *  - many threads share one client connection; every reply reaches its caller (xid demux);
 *  - a slow procedure on the blocking pool answers after fast ones sent later (replies
 *    out of order on one connection);
 *  - asynchronous calls complete through their callbacks;
 *  - a call the server never answers times out with -ETIMEDOUT; the client stays usable;
 *  - unknown program / version / procedure come back as the right accept status;
 *  - a deferred call is answered later from another thread, while other calls proceed;
 *  - a server shutdown fails outstanding calls with -ECONNRESET.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "rpc/clnt.h"
#include "rpc/server.h"

#define TEST_PROG 0x20000099u
#define THREADS 8
#define CALLS_PER_THREAD 500

enum { P_NULL, P_ECHO, P_SLOW, P_NEVER, P_DEFER, NPROCS };

static enum rpc_accept_status proc_null(struct rpc_call *c) { (void)c; return RPC_SUCCESS; }

/* Echo one u32 back, plus the value + 1 to show the handler ran. */
static enum rpc_accept_status proc_echo(struct rpc_call *c)
{
    uint32_t v;
    if (!xdr_dec_u32(&c->args, &v))
        return RPC_GARBAGE_ARGS;
    return xdr_enc_u32(&c->res, v) && xdr_enc_u32(&c->res, v + 1) ? RPC_SUCCESS : RPC_SYSTEM_ERR;
}

static enum rpc_accept_status proc_slow(struct rpc_call *c)
{
    usleep(300 * 1000);
    return proc_echo(c);
}

static enum rpc_accept_status proc_never(struct rpc_call *c) { (void)c; return RPC_NO_REPLY; }

/* Answer 100 ms later from a thread of our own: the handler returns at once. */
struct deferred_echo {
    struct rpc_deferred *d;
    uint32_t v[2];
};

static bool enc_pair(struct xdr_enc *x, const void *res)
{
    const uint32_t *v = res;
    return xdr_enc_u32(x, v[0]) && xdr_enc_u32(x, v[1]);
}

static void *deferred_answer(void *arg)
{
    struct deferred_echo *de = arg;
    usleep(100 * 1000);
    rpc_deferred_reply(de->d, RPC_SUCCESS, enc_pair, de->v);
    free(de);
    return NULL;
}

static enum rpc_accept_status proc_defer(struct rpc_call *c)
{
    uint32_t v;
    pthread_t t;
    if (!xdr_dec_u32(&c->args, &v))
        return RPC_GARBAGE_ARGS;
    struct deferred_echo *de = malloc(sizeof(*de));
    if (!de || !(de->d = rpc_call_defer(c)))
        return RPC_SYSTEM_ERR;
    de->v[0] = v; /* copied: the arguments are gone once we return */
    de->v[1] = v + 1;
    pthread_create(&t, NULL, deferred_answer, de);
    pthread_detach(t);
    return RPC_DEFERRED;
}

static const struct rpc_proc_desc procs[NPROCS] = {
    [P_NULL] = { proc_null, "NULL", 0 },
    [P_ECHO] = { proc_echo, "ECHO", 0 },
    [P_SLOW] = { proc_slow, "SLOW", RPC_PROC_BLOCKING },
    [P_NEVER] = { proc_never, "NEVER", 0 },
    [P_DEFER] = { proc_defer, "DEFER", 0 },
};
static const struct rpc_version_desc versions[] = { { 1, NPROCS, procs } };
static const struct rpc_program_desc program = { TEST_PROG, "test", 1, versions };

static bool enc_u32(struct xdr_enc *x, const void *v) { return xdr_enc_u32(x, *(const uint32_t *)v); }

static int echo(struct rpc_clnt *c, uint32_t proc, uint32_t v, int timeout_ms)
{
    struct rpc_reply rep;
    uint32_t a = 0, b = 0;
    int err = rpc_clnt_call(c, TEST_PROG, 1, proc, NULL, enc_u32, &v, timeout_ms, &rep);
    if (err == 0 && (!xdr_dec_u32(&rep.res, &a) || !xdr_dec_u32(&rep.res, &b) || a != v || b != v + 1))
        err = -EBADMSG;
    rpc_reply_free(&rep);
    return err;
}

static struct rpc_clnt *clnt;
static atomic_int mismatches;

static void *caller(void *arg)
{
    uint32_t base = (uint32_t)(uintptr_t)arg * 100000;
    for (uint32_t i = 0; i < CALLS_PER_THREAD; i++)
        if (echo(clnt, P_ECHO, base + i, 5000) != 0)
            atomic_fetch_add(&mismatches, 1);
    return NULL;
}

struct async_state {
    atomic_int done, ok;
};

static void async_done(void *arg, int status, struct rpc_reply *rep)
{
    struct async_state *st = arg;
    uint32_t a;
    if (status == 0 && xdr_dec_u32(&rep->res, &a))
        atomic_fetch_add(&st->ok, 1);
    rpc_reply_free(rep);
    atomic_fetch_add(&st->done, 1);
}

struct slow_arg {
    int result;
};

static void *slow_caller(void *arg)
{
    struct slow_arg *s = arg;
    s->result = echo(clnt, P_SLOW, 7, 5000);
    return NULL;
}

static int accept_stat_of(uint32_t prog, uint32_t vers, uint32_t proc, uint32_t *low, uint32_t *high)
{
    struct rpc_reply rep;
    int err = rpc_clnt_call(clnt, prog, vers, proc, NULL, NULL, NULL, 2000, &rep);
    int stat = err == -EPROTO ? (int)rep.info.accept_stat : (err == 0 ? 0 : -1);
    *low = rep.info.low;
    *high = rep.info.high;
    rpc_reply_free(&rep);
    return stat;
}

int main(void)
{
    struct rpc_server_config cfg = { .nloops = 2, .npool = 2 };
    struct rpc_server *srv = rpc_server_new(&cfg);
    CHECK(srv != NULL);
    CHECK_EQ(rpc_server_add_program(srv, &program, NULL), 0);
    CHECK_EQ(rpc_server_listen_str(srv, "127.0.0.1", 0, SOCK_STREAM), 0);
    CHECK_EQ(rpc_server_start(srv), 0);

    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(rpc_server_port(srv)) };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int err = 0;
    clnt = rpc_clnt_connect((struct sockaddr *)&sin, sizeof(sin), 2000, &err);
    CHECK(clnt != NULL);
    if (!clnt)
        return check_report("test_rpc_loop");

    /* a slow call first; fast calls from other threads overtake it on the same connection */
    pthread_t slow, th[THREADS];
    struct slow_arg sa = { -1 };
    pthread_create(&slow, NULL, slow_caller, &sa);
    usleep(20 * 1000);
    for (uintptr_t i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, caller, (void *)i);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_join(slow, NULL);
    CHECK_EQ(atomic_load(&mismatches), 0);
    CHECK_EQ(sa.result, 0);

    /* asynchronous calls */
    struct async_state st = { 0 };
    for (uint32_t i = 0; i < 200; i++) {
        uint32_t v = i;
        CHECK_EQ(rpc_clnt_call_async(clnt, TEST_PROG, 1, P_ECHO, NULL, enc_u32, &v, 5000, async_done, &st), 0);
    }
    for (int i = 0; i < 500 && atomic_load(&st.done) < 200; i++)
        usleep(10 * 1000);
    CHECK_EQ(atomic_load(&st.ok), 200);

    /* deferred: answered later; calls made meanwhile are answered first */
    struct async_state dst = { 0 };
    uint32_t dv = 77;
    CHECK_EQ(rpc_clnt_call_async(clnt, TEST_PROG, 1, P_DEFER, NULL, enc_u32, &dv, 5000, async_done, &dst), 0);
    CHECK_EQ(echo(clnt, P_ECHO, 5, 2000), 0);
    CHECK_EQ(atomic_load(&dst.done), 0);
    CHECK_EQ(echo(clnt, P_DEFER, 9, 2000), 0);
    for (int i = 0; i < 300 && atomic_load(&dst.done) == 0; i++)
        usleep(10 * 1000);
    CHECK_EQ(atomic_load(&dst.ok), 1);

    /* no reply: times out, and the connection still works afterwards */
    CHECK_EQ(echo(clnt, P_NEVER, 1, 300), -ETIMEDOUT);
    CHECK_EQ(echo(clnt, P_ECHO, 42, 2000), 0);

    /* dispatch errors */
    uint32_t low = 0, high = 0;
    CHECK_EQ(accept_stat_of(TEST_PROG + 1, 1, 0, &low, &high), RPC_PROG_UNAVAIL);
    CHECK_EQ(accept_stat_of(TEST_PROG, 9, 0, &low, &high), RPC_PROG_MISMATCH);
    CHECK(low == 1 && high == 1);
    CHECK_EQ(accept_stat_of(TEST_PROG, 1, NPROCS, &low, &high), RPC_PROC_UNAVAIL);
    CHECK_EQ(accept_stat_of(TEST_PROG, 1, P_ECHO, &low, &high), RPC_GARBAGE_ARGS); /* no argument */

    /* shutdown with a call outstanding: it fails instead of hanging */
    struct async_state pending = { 0 };
    uint32_t v = 5;
    CHECK_EQ(rpc_clnt_call_async(clnt, TEST_PROG, 1, P_NEVER, NULL, enc_u32, &v, 60000, async_done, &pending), 0);
    usleep(50 * 1000);
    rpc_server_destroy(srv);
    for (int i = 0; i < 300 && atomic_load(&pending.done) == 0; i++)
        usleep(10 * 1000);
    CHECK_EQ(atomic_load(&pending.done), 1);
    CHECK_EQ(atomic_load(&pending.ok), 0);
    CHECK(echo(clnt, P_ECHO, 1, 1000) < 0);
    rpc_clnt_destroy(clnt);
    return check_report("test_rpc_loop");
}
