/*
 * NLM versions 1 and 3 (XNFS chapter 10): the lock protocol of NFSv2-era clients.
 * The procedures are version 4's with 32-bit offsets and lengths and five statuses, so
 * each handler here only translates: decode the v1 arguments, widen them to v4 (l_len
 * 0 still means "to the end of the file"), run the shared logic of nlm_proc.c, and
 * narrow the answer (statuses to the nearest LCK_*, a holder's range clamped to 32
 * bits). A blocked lock remembers the version (nlm_proc.c), so its GRANTED callback
 * reaches a v1/v3 client in the version it speaks.
 */
#include <stdint.h>
#include <string.h>

#include "nlm/nlm_internal.h"

/* An nlm1_testres / nlm1_res: cookie and holder's oh at most 1 KiB each. */
#define NLM1_RES_MAX (2u * NLM1_MAXNETOBJ_SZ + 64u)

nlm1_stats nlm1_status(nlm4_stats st)
{
    switch (st) {
    case NLM4_GRANTED: return LCK_GRANTED;
    case NLM4_DENIED: return LCK_DENIED;
    case NLM4_DENIED_NOLOCKS: return LCK_DENIED_NOLOCKS;
    case NLM4_BLOCKED: return LCK_BLOCKED;
    case NLM4_DENIED_GRACE_PERIOD: return LCK_DENIED_GRACE_PERIOD;
    /* a deadlock is a conflict the client can resolve by giving something up */
    case NLM4_DEADLCK: return LCK_DENIED;
    /* ROFS, STALE_FH, FBIG, FAILED: the request cannot be served; NOLOCKS is the
     * v1 status that does not suggest that another owner holds the range */
    default: return LCK_DENIED_NOLOCKS;
    }
}

void nlm1_lock_widen(const nlm1_lock *in, nlm4_lock *out)
{
    out->caller_name = in->caller_name;
    out->fh = in->fh;
    out->oh = in->oh;
    out->svid = in->uppid;
    out->l_offset = in->l_offset;
    out->l_len = in->l_len;
}

static uint32_t clamp32(uint64_t v)
{
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

void nlm1_holder_narrow(const nlm4_holder *in, nlm1_holder *out)
{
    out->exclusive = in->exclusive;
    out->uppid = in->svid;
    out->oh = in->oh;
    out->l_offset = clamp32(in->l_offset);
    out->l_len = clamp32(in->l_len); /* 0 (to the end) stays 0 */
}

static void nlm1_lock_narrow(const nlm4_lock *in, nlm1_lock *out)
{
    out->caller_name = in->caller_name;
    out->fh = in->fh;
    out->oh = in->oh;
    out->uppid = in->svid;
    out->l_offset = clamp32(in->l_offset);
    out->l_len = clamp32(in->l_len);
}

bool nlm1_encode_testargs(struct xdr_enc *x, const nlm4_testargs *a)
{
    nlm1_testargs g = { .cookie = a->cookie, .exclusive = a->exclusive };
    nlm1_lock_narrow(&a->alock, &g.alock);
    return xdr_encode_nlm1_testargs(x, &g);
}

static bool nlm1_is_msg(uint32_t proc)
{
    return proc >= NLM_TEST_MSG && proc <= NLM_GRANTED_MSG;
}

/* An nlm1_res as the reply, or for *_MSG as a call of the matching *_RES. */
static enum rpc_accept_status nlm1_reply_or_msg(struct rpc_call *call, const struct xdr_opaque *cookie,
                                                nlm4_stats st)
{
    if (st == NLM_DROP_REPLY)
        return RPC_NO_REPLY;
    nlm1_res res = { .cookie = *cookie, .stat = { nlm1_status(st) } };
    if (!nlm1_is_msg(call->proc))
        return xdr_encode_nlm1_res(&call->res, &res) ? RPC_SUCCESS : RPC_SYSTEM_ERR;
    uint8_t buf[NLM1_RES_MAX];
    struct xdr_enc x;
    xdr_enc_init(&x, buf, sizeof(buf));
    return xdr_encode_nlm1_res(&x, &res) ? nlm_send_res(call, &x) : RPC_SYSTEM_ERR;
}

/* ---- the procedures ---- */

static enum rpc_accept_status nlm1_proc_null(struct rpc_call *call)
{
    (void)call;
    return RPC_SUCCESS;
}

static enum rpc_accept_status nlm1_proc_test(struct rpc_call *call)
{
    nlm1_testargs a1;
    if (!xdr_decode_nlm1_testargs(&call->args, &a1))
        return RPC_GARBAGE_ARGS;
    nlm4_testargs a = { .cookie = a1.cookie, .exclusive = a1.exclusive };
    nlm1_lock_widen(&a1.alock, &a.alock);
    nlm4_holder h;
    nlm4_stats st = nlm_do_test(call, &a, &h);
    if (st == NLM_DROP_REPLY)
        return RPC_NO_REPLY;

    nlm1_testres res;
    memset(&res, 0, sizeof(res)); /* a DENIED without a holder (DEADLCK) names nobody */
    res.cookie = a.cookie;
    res.test_stat.stat = nlm1_status(st);
    if (st == NLM4_DENIED)
        nlm1_holder_narrow(&h, &res.test_stat.holder);
    if (call->proc == NLM_TEST)
        return xdr_encode_nlm1_testres(&call->res, &res) ? RPC_SUCCESS : RPC_SYSTEM_ERR;
    uint8_t buf[NLM1_RES_MAX];
    struct xdr_enc x;
    xdr_enc_init(&x, buf, sizeof(buf));
    return xdr_encode_nlm1_testres(&x, &res) ? nlm_send_res(call, &x) : RPC_SYSTEM_ERR;
}

static bool nlm1_decode_lockargs(struct rpc_call *call, nlm4_lockargs *a)
{
    nlm1_lockargs a1;
    if (!xdr_decode_nlm1_lockargs(&call->args, &a1))
        return false;
    *a = (nlm4_lockargs){ .cookie = a1.cookie, .block = a1.block, .exclusive = a1.exclusive,
                          .reclaim = a1.reclaim, .state = a1.state };
    nlm1_lock_widen(&a1.alock, &a->alock);
    return true;
}

static enum rpc_accept_status nlm1_proc_lock(struct rpc_call *call)
{
    nlm4_lockargs a;
    if (!nlm1_decode_lockargs(call, &a))
        return RPC_GARBAGE_ARGS;
    return nlm1_reply_or_msg(call, &a.cookie, nlm_do_lock(call, &a, true));
}

/* NM_LOCK (version 3): a host without statd; never blocks. */
static enum rpc_accept_status nlm1_proc_nm_lock(struct rpc_call *call)
{
    nlm4_lockargs a;
    if (!nlm1_decode_lockargs(call, &a))
        return RPC_GARBAGE_ARGS;
    a.block = false;
    return nlm1_reply_or_msg(call, &a.cookie, nlm_do_lock(call, &a, false));
}

static enum rpc_accept_status nlm1_proc_cancel(struct rpc_call *call)
{
    nlm1_cancargs a1;
    if (!xdr_decode_nlm1_cancargs(&call->args, &a1))
        return RPC_GARBAGE_ARGS;
    nlm4_cancargs a = { .cookie = a1.cookie, .block = a1.block, .exclusive = a1.exclusive };
    nlm1_lock_widen(&a1.alock, &a.alock);
    return nlm1_reply_or_msg(call, &a.cookie, nlm_do_cancel(call, &a));
}

static enum rpc_accept_status nlm1_proc_unlock(struct rpc_call *call)
{
    nlm1_unlockargs a1;
    if (!xdr_decode_nlm1_unlockargs(&call->args, &a1))
        return RPC_GARBAGE_ARGS;
    nlm4_unlockargs a = { .cookie = a1.cookie };
    nlm1_lock_widen(&a1.alock, &a.alock);
    return nlm1_reply_or_msg(call, &a.cookie, nlm_do_unlock(call, &a));
}

/* GRANTED is the server's callback to a client; as a server we have no waiting locks. */
static enum rpc_accept_status nlm1_proc_granted(struct rpc_call *call)
{
    nlm1_testargs a;
    if (!xdr_decode_nlm1_testargs(&call->args, &a))
        return RPC_GARBAGE_ARGS;
    return nlm1_reply_or_msg(call, &a.cookie, NLM4_DENIED);
}

/* *_RES: answers to *_MSG calls we never make. */
static enum rpc_accept_status nlm1_proc_res(struct rpc_call *call)
{
    nlm1_res r;
    nlm1_testres t;
    bool ok = call->proc == NLM_TEST_RES ? xdr_decode_nlm1_testres(&call->args, &t)
                                         : xdr_decode_nlm1_res(&call->args, &r);
    return ok ? RPC_SUCCESS : RPC_GARBAGE_ARGS;
}

/* SHARE / UNSHARE (version 3): the arguments are version 4's on the wire. */
static enum rpc_accept_status nlm1_proc_share(struct rpc_call *call)
{
    nlm1_shareargs a1;
    if (!xdr_decode_nlm1_shareargs(&call->args, &a1))
        return RPC_GARBAGE_ARGS;
    nlm4_shareargs a = {
        .cookie = a1.cookie,
        .share = { .caller_name = a1.share.caller_name, .fh = a1.share.fh, .oh = a1.share.oh,
                   .mode = (fsh4_mode)a1.share.mode, .access = (fsh4_access)a1.share.access },
        .reclaim = a1.reclaim,
    };
    nlm4_stats st = nlm_do_share(call, &a, call->proc == NLM_SHARE);
    if (st == NLM_DROP_REPLY)
        return RPC_NO_REPLY;
    nlm1_shareres res = { .cookie = a.cookie, .stat = nlm1_status(st), .sequence = 0 };
    return xdr_encode_nlm1_shareres(&call->res, &res) ? RPC_SUCCESS : RPC_SYSTEM_ERR;
}

static enum rpc_accept_status nlm1_proc_free_all(struct rpc_call *call)
{
    nlm1_notify a;
    if (!xdr_decode_nlm1_notify(&call->args, &a))
        return RPC_GARBAGE_ARGS;
    nlm_do_free_all(call, &a.name);
    return RPC_SUCCESS;
}

#define NLM1_P(fn, name) { fn, name, 0 }
/* Procedures 0-15: version 1, and the same in version 3. */
#define NLM1_COMMON_PROCS                                                   \
    [NLM_NULL] = NLM1_P(nlm1_proc_null, "NULL"),                            \
    [NLM_TEST] = NLM1_P(nlm1_proc_test, "TEST"),                            \
    [NLM_LOCK] = NLM1_P(nlm1_proc_lock, "LOCK"),                            \
    [NLM_CANCEL] = NLM1_P(nlm1_proc_cancel, "CANCEL"),                      \
    [NLM_UNLOCK] = NLM1_P(nlm1_proc_unlock, "UNLOCK"),                      \
    [NLM_GRANTED] = NLM1_P(nlm1_proc_granted, "GRANTED"),                   \
    [NLM_TEST_MSG] = NLM1_P(nlm1_proc_test, "TEST_MSG"),                    \
    [NLM_LOCK_MSG] = NLM1_P(nlm1_proc_lock, "LOCK_MSG"),                    \
    [NLM_CANCEL_MSG] = NLM1_P(nlm1_proc_cancel, "CANCEL_MSG"),              \
    [NLM_UNLOCK_MSG] = NLM1_P(nlm1_proc_unlock, "UNLOCK_MSG"),              \
    [NLM_GRANTED_MSG] = NLM1_P(nlm1_proc_granted, "GRANTED_MSG"),           \
    [NLM_TEST_RES] = NLM1_P(nlm1_proc_res, "TEST_RES"),                     \
    [NLM_LOCK_RES] = NLM1_P(nlm1_proc_res, "LOCK_RES"),                     \
    [NLM_CANCEL_RES] = NLM1_P(nlm1_proc_res, "CANCEL_RES"),                 \
    [NLM_UNLOCK_RES] = NLM1_P(nlm1_proc_res, "UNLOCK_RES"),                 \
    [NLM_GRANTED_RES] = NLM1_P(nlm1_proc_res, "GRANTED_RES")

const struct rpc_proc_desc nlm1_procs[NLM1_NPROCS] = { NLM1_COMMON_PROCS };

const struct rpc_proc_desc nlm3_procs[NLM3_NPROCS] = {
    NLM1_COMMON_PROCS,
    [NLM_SHARE] = NLM1_P(nlm1_proc_share, "SHARE"),
    [NLM_UNSHARE] = NLM1_P(nlm1_proc_share, "UNSHARE"),
    [NLM_NM_LOCK] = NLM1_P(nlm1_proc_nm_lock, "NM_LOCK"),
    [NLM_FREE_ALL] = NLM1_P(nlm1_proc_free_all, "FREE_ALL"),
};
