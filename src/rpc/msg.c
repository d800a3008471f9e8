#include "rpc/msg.h"

#include <errno.h>
#include <string.h>

bool rpc_parse_authsys(const uint8_t *body, size_t len, struct rpc_cred *cred)
{
    struct xdr_dec x;
    uint32_t stamp, uid, gid, ngids;
    struct xdr_string name;

    xdr_dec_init(&x, body, len, NULL);
    if (!xdr_dec_u32(&x, &stamp) || !xdr_dec_string(&x, &name, RPC_AUTHSYS_MAXNAME) ||
        !xdr_dec_u32(&x, &uid) || !xdr_dec_u32(&x, &gid) ||
        !xdr_dec_count(&x, &ngids, RPC_AUTHSYS_MAXGIDS, 4))
        return false;
    for (uint32_t i = 0; i < ngids; i++)
        if (!xdr_dec_u32(&x, &cred->gids[i]))
            return false;
    if (xdr_dec_left(&x) != 0) /* the body length must match its contents */
        return false;
    cred->flavor = RPC_AUTH_SYS;
    cred->gss_service = 0;
    cred->has_ids = true;
    cred->uid = uid;
    cred->gid = gid;
    cred->ngids = ngids;
    memcpy(cred->machinename, name.val, name.len);
    cred->machinename[name.len] = '\0';
    cred->machinename_len = name.len;
    return true;
}

/* rpc_gss_cred_t: version 1 only (RFC 2203 5.1: another one is AUTH_REJECTEDCRED). */
static bool parse_gss_cred(const uint8_t *body, size_t len, struct rpc_call_hdr *hdr,
                           struct rpc_cred *cred, enum rpc_auth_stat *why)
{
    struct xdr_dec x;
    struct rpc_gss_cred *g = &hdr->gss;
    struct xdr_opaque handle;

    xdr_dec_init(&x, body, len, NULL);
    if (!xdr_dec_u32(&x, &g->version))
        return false;
    if (g->version != 1) {
        *why = RPC_AUTH_REJECTEDCRED;
        return false;
    }
    if (!xdr_dec_u32(&x, &g->proc) || !xdr_dec_u32(&x, &g->seq) || !xdr_dec_u32(&x, &g->service) ||
        !xdr_dec_opaque(&x, &handle, RPC_MAX_AUTH_BYTES) || xdr_dec_left(&x) != 0)
        return false;
    if (g->proc > 3 || g->service < RPC_GSS_SERVICE_NONE || g->service > RPC_GSS_SERVICE_PRIVACY)
        return false;
    g->handle = handle.val;
    g->handle_len = handle.len;
    memset(cred, 0, offsetof(struct rpc_cred, machinename) + 1);
    cred->flavor = RPC_AUTH_GSS;
    cred->gss_service = g->service;
    return true;
}

static bool parse_cred(struct xdr_dec *x, struct rpc_call_hdr *hdr, struct rpc_cred *cred,
                       enum rpc_auth_stat *why)
{
    uint32_t flavor;
    struct xdr_opaque body;

    *why = RPC_AUTH_BADCRED;
    if (!xdr_dec_u32(x, &flavor) || !xdr_dec_opaque(x, &body, RPC_MAX_AUTH_BYTES))
        return false;
    switch (flavor) {
    case RPC_AUTH_NONE:
        memset(cred, 0, offsetof(struct rpc_cred, machinename) + 1);
        cred->flavor = RPC_AUTH_NONE;
        return true;
    case RPC_AUTH_SYS:
        return rpc_parse_authsys(body.val, body.len, cred);
    case RPC_AUTH_GSS:
        return parse_gss_cred(body.val, body.len, hdr, cred, why);
    default:
        /* AUTH_DH, ...: not served. TOOWEAK tells the client to try another flavor it
         * knows the export accepts. */
        *why = RPC_AUTH_TOOWEAK_STAT;
        return false;
    }
}

static bool parse_verf(struct xdr_dec *x, struct rpc_call_hdr *hdr)
{
    struct xdr_opaque body;
    if (!xdr_dec_u32(x, &hdr->verf_flavor) || !xdr_dec_opaque(x, &body, RPC_MAX_AUTH_BYTES))
        return false;
    hdr->verf = body.val;
    hdr->verf_len = body.len;
    return true;
}

enum rpc_parse_result rpc_parse_call(const uint8_t *rec, size_t len, struct rpc_call_hdr *hdr,
                                     struct rpc_cred *cred)
{
    struct xdr_dec x;
    uint32_t mtype, rpcvers;

    xdr_dec_init(&x, rec, len, NULL);
    if (!xdr_dec_u32(&x, &hdr->xid) || !xdr_dec_u32(&x, &mtype))
        return RPC_PARSE_DROP;
    if (mtype == RPC_REPLY)
        return RPC_PARSE_REPLY;
    if (mtype != RPC_CALL || !xdr_dec_u32(&x, &rpcvers))
        return RPC_PARSE_DROP;
    if (rpcvers != RPC_VERSION)
        return RPC_PARSE_RPC_MISMATCH;
    if (!xdr_dec_u32(&x, &hdr->prog) || !xdr_dec_u32(&x, &hdr->vers) ||
        !xdr_dec_u32(&x, &hdr->proc))
        return RPC_PARSE_DROP;
    if (!parse_cred(&x, hdr, cred, &hdr->auth_stat))
        return RPC_PARSE_AUTH_ERROR;
    hdr->cred_end = (size_t)(x.p - rec);
    if (!parse_verf(&x, hdr)) {
        hdr->auth_stat = RPC_AUTH_BADVERF;
        return RPC_PARSE_AUTH_ERROR;
    }
    hdr->args_off = (size_t)(x.p - rec);
    return RPC_PARSE_CALL;
}

static bool enc_reply_start(struct xdr_enc *x, uint32_t xid, uint32_t reply_stat)
{
    return xdr_enc_u32(x, xid) && xdr_enc_u32(x, RPC_REPLY) && xdr_enc_u32(x, reply_stat);
}

bool rpc_enc_accepted(struct xdr_enc *x, uint32_t xid, uint32_t stat)
{
    return enc_reply_start(x, xid, RPC_MSG_ACCEPTED) && xdr_enc_u32(x, RPC_AUTH_NONE) &&
           xdr_enc_u32(x, 0) && xdr_enc_u32(x, stat);
}

bool rpc_enc_prog_mismatch(struct xdr_enc *x, uint32_t xid, uint32_t low, uint32_t high)
{
    return rpc_enc_accepted(x, xid, RPC_PROG_MISMATCH) && xdr_enc_u32(x, low) &&
           xdr_enc_u32(x, high);
}

bool rpc_enc_rpc_mismatch(struct xdr_enc *x, uint32_t xid)
{
    return enc_reply_start(x, xid, RPC_MSG_DENIED) && xdr_enc_u32(x, RPC_MISMATCH) &&
           xdr_enc_u32(x, RPC_VERSION) && xdr_enc_u32(x, RPC_VERSION);
}

bool rpc_enc_auth_error(struct xdr_enc *x, uint32_t xid, enum rpc_auth_stat why)
{
    return enc_reply_start(x, xid, RPC_MSG_DENIED) && xdr_enc_u32(x, RPC_AUTH_ERROR) &&
           xdr_enc_u32(x, why);
}

static bool enc_authsys(struct xdr_enc *x, const struct rpc_cred *c)
{
    uint32_t body = 4 + 4 + (uint32_t)XDR_ROUNDUP(c->machinename_len) + 4 + 4 + 4 + 4 * c->ngids;
    if (!xdr_enc_u32(x, RPC_AUTH_SYS) || !xdr_enc_u32(x, body) || !xdr_enc_u32(x, 0) ||
        !xdr_enc_opaque(x, c->machinename, c->machinename_len, RPC_AUTHSYS_MAXNAME) ||
        !xdr_enc_u32(x, c->uid) || !xdr_enc_u32(x, c->gid) || !xdr_enc_u32(x, c->ngids))
        return false;
    for (uint32_t i = 0; i < c->ngids; i++)
        if (!xdr_enc_u32(x, c->gids[i]))
            return false;
    return true;
}

bool rpc_enc_call(struct xdr_enc *x, uint32_t xid, uint32_t prog, uint32_t vers, uint32_t proc,
                  const struct rpc_cred *cred)
{
    if (!xdr_enc_u32(x, xid) || !xdr_enc_u32(x, RPC_CALL) || !xdr_enc_u32(x, RPC_VERSION) ||
        !xdr_enc_u32(x, prog) || !xdr_enc_u32(x, vers) || !xdr_enc_u32(x, proc))
        return false;
    bool ok = (cred && cred->flavor == RPC_AUTH_SYS)
                  ? enc_authsys(x, cred)
                  : xdr_enc_u32(x, RPC_AUTH_NONE) && xdr_enc_u32(x, 0);
    return ok && xdr_enc_u32(x, RPC_AUTH_NONE) && xdr_enc_u32(x, 0);
}

bool rpc_parse_reply(const uint8_t *rec, size_t len, struct rpc_reply_info *info)
{
    struct xdr_dec x;
    uint32_t mtype;
    struct xdr_opaque verf;

    memset(info, 0, sizeof(*info));
    xdr_dec_init(&x, rec, len, NULL);
    if (!xdr_dec_u32(&x, &info->xid) || !xdr_dec_u32(&x, &mtype) || mtype != RPC_REPLY ||
        !xdr_dec_u32(&x, &info->reply_stat))
        return false;
    if (info->reply_stat == RPC_MSG_DENIED) {
        if (!xdr_dec_u32(&x, &info->reject_stat))
            return false;
        if (info->reject_stat == RPC_MISMATCH)
            return xdr_dec_u32(&x, &info->low) && xdr_dec_u32(&x, &info->high);
        return info->reject_stat == RPC_AUTH_ERROR && xdr_dec_u32(&x, &info->auth_stat);
    }
    if (info->reply_stat != RPC_MSG_ACCEPTED)
        return false;
    uint32_t vflavor;
    if (!xdr_dec_u32(&x, &vflavor) || !xdr_dec_opaque(&x, &verf, RPC_MAX_AUTH_BYTES) ||
        !xdr_dec_u32(&x, &info->accept_stat))
        return false;
    if (info->accept_stat == RPC_PROG_MISMATCH &&
        !(xdr_dec_u32(&x, &info->low) && xdr_dec_u32(&x, &info->high)))
        return false;
    info->results_off = (size_t)(x.p - rec);
    return true;
}

int rpc_reply_results(const uint8_t *rec, size_t len, uint32_t *xid, size_t *results_off)
{
    struct rpc_reply_info info;
    bool ok = rpc_parse_reply(rec, len, &info);
    *xid = info.xid;
    *results_off = info.results_off;
    if (ok && info.reply_stat == RPC_MSG_ACCEPTED && info.accept_stat == RPC_SUCCESS)
        return 0;
    *results_off = len;
    return -EPROTO;
}
