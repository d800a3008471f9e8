/*
 * The COMPOUND engine (RFC 7530 section 15.2, RFC 8881 sections 2.10.6 and 15.2) and the
 * one op table of every NFSv4 minor version.
 *
 * A request is decoded one op at a time: decode, check the op's flags, run the handler,
 * encode its result, and stop at the first op that fails. Results go straight into the
 * reply buffer rpc/ gives us; the COMPOUND status and the result count are patched in at
 * the end. For 4.1+, SEQUENCE (always the first op) ties the request to a session slot:
 * the finished reply is stored in the slot so that a retransmission gets the same bytes.
 * For 4.0, the seqid-mutating ops (OPEN, CLOSE, LOCK, ...) cache their own result in
 * their owner for the same purpose, and a COMPOUND that changes anything keeps its reply
 * in rpc/'s duplicate request cache, which answers a retransmission (same xid) with it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/siphash.h"
#include "nfs4/nfs4_attr.h"
#include "nfs4/nfs4_internal.h"
#include "util/log.h"

#define OP(name, fn, flags) {name, nfs4_op_##fn, flags}
#define NOSUP(name, flags) {name, NULL, flags}
enum {
    FH = NFS4_OP_NEED_FH,
    M1 = NFS4_OP_MIN_MINOR1,
    M2 = NFS4_OP_MIN_MINOR2,
    V40 = NFS4_OP_ONLY_MINOR0,
    SF = NFS4_OP_SESSION_FREE,
    MOD = NFS4_OP_MODIFIES,
    BLK = NFS4_OP_BLOCKING,
    DIR_ = NFS4_OP_DIRECT,
};

/* Every op of 4.0, 4.1 and 4.2 (RFC 8276 extended attributes with 4.2). A NULL handler
 * answers NOTSUPP for an op the minor version defines but we do not offer. */
static const struct nfs4_op_desc nfs4_ops[OP_REMOVEXATTR + 1] = {
    [OP_ACCESS] = OP("ACCESS", access, FH),
    [OP_CLOSE] = OP("CLOSE", close, FH),
    [OP_COMMIT] = OP("COMMIT", commit, FH | BLK),
    [OP_CREATE] = OP("CREATE", create, FH | MOD),
    [OP_DELEGPURGE] = OP("DELEGPURGE", delegpurge, 0),
    [OP_DELEGRETURN] = OP("DELEGRETURN", delegreturn, FH),
    [OP_GETATTR] = OP("GETATTR", getattr, FH | DIR_),
    [OP_GETFH] = OP("GETFH", getfh, FH),
    [OP_LINK] = OP("LINK", link, FH | MOD),
    [OP_LOCK] = OP("LOCK", lock, FH),
    [OP_LOCKT] = OP("LOCKT", lockt, FH),
    [OP_LOCKU] = OP("LOCKU", locku, FH),
    [OP_LOOKUP] = OP("LOOKUP", lookup, FH),
    [OP_LOOKUPP] = OP("LOOKUPP", lookupp, FH),
    [OP_NVERIFY] = OP("NVERIFY", nverify, FH),
    [OP_OPEN] = OP("OPEN", open, FH),
    [OP_OPENATTR] = OP("OPENATTR", openattr, FH),
    [OP_OPEN_CONFIRM] = OP("OPEN_CONFIRM", open_confirm, FH | V40),
    [OP_OPEN_DOWNGRADE] = OP("OPEN_DOWNGRADE", open_downgrade, FH),
    [OP_PUTFH] = OP("PUTFH", putfh, 0),
    [OP_PUTPUBFH] = OP("PUTPUBFH", putpubfh, 0),
    [OP_PUTROOTFH] = OP("PUTROOTFH", putrootfh, 0),
    [OP_READ] = OP("READ", read, FH | DIR_),
    [OP_READDIR] = OP("READDIR", readdir, FH | DIR_),
    [OP_READLINK] = OP("READLINK", readlink, FH | DIR_),
    [OP_REMOVE] = OP("REMOVE", remove, FH | MOD),
    [OP_RENAME] = OP("RENAME", rename, FH | MOD),
    [OP_RENEW] = OP("RENEW", renew, V40),
    [OP_RESTOREFH] = OP("RESTOREFH", restorefh, 0),
    [OP_SAVEFH] = OP("SAVEFH", savefh, FH),
    [OP_SECINFO] = OP("SECINFO", secinfo, FH),
    [OP_SETATTR] = OP("SETATTR", setattr, FH | MOD),
    [OP_SETCLIENTID] = OP("SETCLIENTID", setclientid, V40),
    [OP_SETCLIENTID_CONFIRM] = OP("SETCLIENTID_CONFIRM", setclientid_confirm, V40),
    [OP_VERIFY] = OP("VERIFY", verify, FH),
    [OP_WRITE] = OP("WRITE", write, FH | MOD | BLK),
    [OP_RELEASE_LOCKOWNER] = OP("RELEASE_LOCKOWNER", release_lockowner, V40),
    [OP_BACKCHANNEL_CTL] = OP("BACKCHANNEL_CTL", backchannel_ctl, M1),
    [OP_BIND_CONN_TO_SESSION] = OP("BIND_CONN_TO_SESSION", bind_conn_to_session, M1 | SF),
    [OP_EXCHANGE_ID] = OP("EXCHANGE_ID", exchange_id, M1 | SF),
    [OP_CREATE_SESSION] = OP("CREATE_SESSION", create_session, M1 | SF | DIR_),
    [OP_DESTROY_SESSION] = OP("DESTROY_SESSION", destroy_session, M1 | SF),
    [OP_FREE_STATEID] = OP("FREE_STATEID", free_stateid, M1),
    [OP_GET_DIR_DELEGATION] = NOSUP("GET_DIR_DELEGATION", M1 | FH),
    [OP_GETDEVICEINFO] = NOSUP("GETDEVICEINFO", M1),
    [OP_GETDEVICELIST] = NOSUP("GETDEVICELIST", M1 | FH),
    [OP_LAYOUTCOMMIT] = NOSUP("LAYOUTCOMMIT", M1 | FH),
    [OP_LAYOUTGET] = NOSUP("LAYOUTGET", M1 | FH),
    [OP_LAYOUTRETURN] = NOSUP("LAYOUTRETURN", M1 | FH),
    [OP_SECINFO_NO_NAME] = OP("SECINFO_NO_NAME", secinfo_no_name, M1 | FH),
    [OP_SEQUENCE] = OP("SEQUENCE", sequence, M1),
    [OP_SET_SSV] = NOSUP("SET_SSV", M1),
    [OP_TEST_STATEID] = OP("TEST_STATEID", test_stateid, M1),
    [OP_WANT_DELEGATION] = NOSUP("WANT_DELEGATION", M1 | FH),
    [OP_DESTROY_CLIENTID] = OP("DESTROY_CLIENTID", destroy_clientid, M1 | SF),
    [OP_RECLAIM_COMPLETE] = OP("RECLAIM_COMPLETE", reclaim_complete, M1),
    [OP_ALLOCATE] = OP("ALLOCATE", allocate, M2 | FH | MOD | BLK),
    [OP_COPY] = NOSUP("COPY", M2 | FH | MOD),
    [OP_COPY_NOTIFY] = NOSUP("COPY_NOTIFY", M2 | FH),
    [OP_DEALLOCATE] = OP("DEALLOCATE", deallocate, M2 | FH | MOD | BLK),
    [OP_IO_ADVISE] = NOSUP("IO_ADVISE", M2 | FH),
    [OP_LAYOUTERROR] = NOSUP("LAYOUTERROR", M2 | FH),
    [OP_LAYOUTSTATS] = NOSUP("LAYOUTSTATS", M2 | FH),
    [OP_OFFLOAD_CANCEL] = NOSUP("OFFLOAD_CANCEL", M2 | FH),
    [OP_OFFLOAD_STATUS] = NOSUP("OFFLOAD_STATUS", M2 | FH),
    [OP_READ_PLUS] = OP("READ_PLUS", read_plus, M2 | FH | DIR_),
    [OP_SEEK] = OP("SEEK", seek, M2 | FH),
    [OP_WRITE_SAME] = NOSUP("WRITE_SAME", M2 | FH | MOD),
    [OP_CLONE] = NOSUP("CLONE", M2 | FH | MOD),
    [OP_GETXATTR] = OP("GETXATTR", getxattr, M2 | FH | DIR_),
    [OP_SETXATTR] = OP("SETXATTR", setxattr, M2 | FH | MOD),
    [OP_LISTXATTRS] = OP("LISTXATTRS", listxattrs, M2 | FH | DIR_),
    [OP_REMOVEXATTR] = OP("REMOVEXATTR", removexattr, M2 | FH | MOD),
};

/* The op exists in this minor version (else OP_ILLEGAL). */
static const struct nfs4_op_desc *nfs4_op_desc_of(uint32_t opnum, uint32_t minor)
{
    if (opnum < OP_ACCESS || opnum > OP_REMOVEXATTR || !nfs4_ops[opnum].name)
        return NULL;
    const struct nfs4_op_desc *d = &nfs4_ops[opnum];
    if ((d->flags & NFS4_OP_MIN_MINOR1) && minor < 1)
        return NULL;
    if ((d->flags & NFS4_OP_MIN_MINOR2) && minor < 2)
        return NULL;
    return d;
}

const char *nfs4_op_name(uint32_t opnum)
{
    if (opnum >= OP_ACCESS && opnum <= OP_REMOVEXATTR && nfs4_ops[opnum].name)
        return nfs4_ops[opnum].name;
    return "ILLEGAL";
}

/*
 * Security flavors (the export's sec= list) and NFS4ERR_WRONGSEC, after RFC 8881
 * 2.6.3.1.1, for every minor version: RFC 7530 (4.0) names the same ops as returning
 * WRONGSEC but not when, and a 4.0 client negotiates the same way (WRONGSEC, then
 * SECINFO), so one set of rules serves both, as in knfsd.
 *
 * - Pseudo-filesystem directories take any flavor; export objects the flavors of the
 *   client's rule (AUTH_NONE where sys is).
 * - A put-filehandle op (PUTFH, PUTROOTFH, PUTPUBFH, RESTOREFH) does not judge its
 *   handle when it is the last op (2.6.3.1.1.6) or when the next op is one that decides
 *   for itself (2.6.3.1.1.1 to .5): another put-filehandle op, SAVEFH, LOOKUP, LOOKUPP,
 *   OPEN, SECINFO, SECINFO_NO_NAME. Before anything else it returns WRONGSEC itself
 *   (2.6.3.1.1.7).
 * - LOOKUP and LOOKUPP answer WRONGSEC for the object they reach (crossing from the
 *   pseudo-filesystem into an export, or out of one). Inside an export a child has its
 *   directory's rule, so LOOKUP also judges the directory first, which keeps it from
 *   telling whether a name exists; LOOKUPP does not, as an export root's parent is a
 *   pseudo directory any flavor may use.
 * - SECINFO, SECINFO_NO_NAME and SAVEFH never do; any other op on a current filehandle
 *   the flavor may not use does (OPEN among them: its object is in the directory's
 *   export, so judging the directory judges the file, whether it exists or not).
 */
static bool nfs4_fh_flavor_ok(const struct nfs4_compound *c, const struct nfs4_fh *f)
{
    if (f->kind != NFS4_FH_EXPORT)
        return true;
    return export_sec_allowed(f->rule, rpc_cred_pseudoflavor(&c->call->cred));
}

static bool nfs4_op_is_putfh(uint32_t opnum)
{
    return opnum == OP_PUTFH || opnum == OP_PUTROOTFH || opnum == OP_PUTPUBFH || opnum == OP_RESTOREFH;
}

/* After a put-filehandle op: the next ops that judge the flavor themselves. */
static bool nfs4_op_defers_wrongsec(uint32_t opnum)
{
    return nfs4_op_is_putfh(opnum) || opnum == OP_SAVEFH || opnum == OP_LOOKUP || opnum == OP_LOOKUPP ||
           opnum == OP_OPEN || opnum == OP_SECINFO || opnum == OP_SECINFO_NO_NAME;
}

/* Before an op that needs a current filehandle. */
static nfsstat4 nfs4_wrongsec_before(const struct nfs4_compound *c, uint32_t opnum)
{
    switch (opnum) {
    case OP_SAVEFH:
    case OP_SECINFO:
    case OP_SECINFO_NO_NAME:
    case OP_LOOKUPP: /* judged by where it leads: nfs4_wrongsec_after */
        return NFS4_OK;
    default:
        return nfs4_fh_flavor_ok(c, &c->cur) ? NFS4_OK : NFS4ERR_WRONGSEC;
    }
}

/* After an op that succeeded; next_opnum is the following op, 0 when there is none (or
 * it could not be decoded: it fails on its own). */
static nfsstat4 nfs4_wrongsec_after(const struct nfs4_compound *c, uint32_t opnum, uint32_t next_opnum)
{
    bool judge = opnum == OP_LOOKUP || opnum == OP_LOOKUPP ||
                 (nfs4_op_is_putfh(opnum) && next_opnum != 0 && !nfs4_op_defers_wrongsec(next_opnum));
    return judge && !nfs4_fh_flavor_ok(c, &c->cur) ? NFS4ERR_WRONGSEC : NFS4_OK;
}

/* Checks that do not depend on the handler: sessions (4.1), filehandle, flavor, read-only. */
static nfsstat4 nfs4_op_precheck(struct nfs4_compound *c, uint32_t opnum, const struct nfs4_op_desc *d)
{
    if ((d->flags & NFS4_OP_ONLY_MINOR0) && c->minor >= 1)
        return NFS4ERR_NOTSUPP; /* RFC 8881 section 18: MUST NOT be used in 4.1 */
    if (c->minor >= 1) {
        if (opnum == OP_SEQUENCE && c->opindex > 0)
            return NFS4ERR_SEQUENCE_POS;
        if (!c->session && opnum != OP_SEQUENCE) {
            if (!(d->flags & NFS4_OP_SESSION_FREE))
                return NFS4ERR_OP_NOT_IN_SESSION;
            if (c->nops != 1)
                return NFS4ERR_NOT_ONLY_OP;
        }
    }
    if ((d->flags & NFS4_OP_NEED_FH) && c->cur.kind == NFS4_FH_NONE)
        return NFS4ERR_NOFILEHANDLE;
    if (d->flags & NFS4_OP_NEED_FH) {
        nfsstat4 st = nfs4_wrongsec_before(c, opnum);
        if (st != NFS4_OK)
            return st;
    }
    if ((d->flags & NFS4_OP_MODIFIES) && nfs4_fh_read_only(&c->cur))
        return NFS4ERR_ROFS;
    if (!d->fn)
        return NFS4ERR_NOTSUPP;
    return NFS4_OK;
}

/* The status word of an encoded result (right after its opnum). */
static nfsstat4 nfs4_encoded_status(const uint8_t *op_start)
{
    return (nfsstat4)xdr_get_be32(op_start + 4);
}

/* A result that is just {opnum, status}: errors of every op but those few with error
 * data (LOCK's DENIED, SETCLIENTID's CLID_INUSE), which handlers encode themselves. */
static bool nfs4_encode_status_only(struct xdr_enc *e, uint32_t opnum, nfsstat4 st)
{
    if (!xdr_enc_u32(e, opnum) || !xdr_enc_u32(e, (uint32_t)st))
        return false;
    /* SETATTR's result carries attrsset whatever the status (RFC 7530 16.32). */
    return opnum != OP_SETATTR || xdr_enc_u32(e, 0);
}

/* The few errors whose result carries data (RFC 7530 16.10, 16.11, 16.32, 16.33). */
static bool nfs4_error_has_data(uint32_t opnum, nfsstat4 st)
{
    return ((opnum == OP_LOCK || opnum == OP_LOCKT) && st == NFS4ERR_DENIED) ||
           (opnum == OP_SETCLIENTID && st == NFS4ERR_CLID_INUSE) ||
           opnum == OP_SETATTR; /* attrsset follows the status whatever it is */
}

/* Encode one op's result; false when the reply buffer is full. */
static bool nfs4_encode_result(struct nfs4_compound *c, uint32_t opnum, const struct nfs4_op_desc *d,
                               nfsstat4 st, nfs_resop4 *res, uint8_t *op_start)
{
    struct xdr_enc *e = c->enc;
    if (c->replay) { /* 4.0 owner replay: the bytes cached the first time */
        bool ok = xdr_enc_fixed(e, c->replay, (uint32_t)c->replay_len);
        free(c->replay);
        c->replay = NULL;
        return ok;
    }
    if (d && (d->flags & NFS4_OP_DIRECT) && d->fn) {
        if (st == NFS4_OK)
            return !c->direct_overflow;
        e->p = op_start;
        return nfs4_encode_status_only(e, opnum, st);
    }
    res->resop = opnum;
    if (st != NFS4_OK && (!d || !nfs4_error_has_data(opnum, st))) {
        /* Refused before its handler ran, or an error without data. */
        return nfs4_encode_status_only(e, opnum, st);
    }
    /* Success (status 0 also when a handler left the zeroed field alone), or an error
     * whose arm the handler filled. */
    return xdr_encode_nfs_resop4(e, res);
}

/* 4.0: an op that began an owner's seqid sequence ends it with its encoded result. */
static void nfs4_seqid_finish(struct nfs4_compound *c, nfsstat4 st, const uint8_t *op_start)
{
    if (!c->seqid_active)
        return;
    bool advance = !(st == NFS4ERR_STALE_CLIENTID || st == NFS4ERR_STALE_STATEID ||
                     st == NFS4ERR_BAD_STATEID || st == NFS4ERR_BAD_SEQID || st == NFS4ERR_BADXDR ||
                     st == NFS4ERR_RESOURCE || st == NFS4ERR_NOFILEHANDLE || st == NFS4ERR_MOVED);
    state_owner_seqid_end(c->seqid_owner, c->seqid, advance, op_start, (size_t)(c->enc->p - op_start));
    state_owner_put(c->seqid_owner);
    c->seqid_owner = NULL;
    c->seqid_active = false;
}

static void nfs4_principal_init(struct nfs4_compound *c)
{
    if (c->call->cred.flavor == RPC_AUTH_SYS)
        snprintf(c->principal_buf, sizeof(c->principal_buf), "sys:%u", c->call->cred.uid);
    else if (c->call->cred.flavor == RPC_AUTH_GSS)
        snprintf(c->principal_buf, sizeof(c->principal_buf), "gss:%s", c->call->cred.machinename);
    else
        snprintf(c->principal_buf, sizeof(c->principal_buf), "none");
    c->principal.name = c->principal_buf;
    c->principal.len = strlen(c->principal_buf);
}

/*
 * The request's ops, decoded before any runs: a COMPOUND that may wait on the disk (a
 * stable WRITE, COMMIT, ...) is moved to the blocking pool before it changes anything,
 * and the event loop keeps serving other calls meanwhile. An op that cannot be decoded
 * ends the list: the ops before it run, then it answers OP_ILLEGAL or BADXDR.
 */
struct nfs4_decoded {
    nfs_argop4 *ops;
    uint32_t n;            /* ops decoded */
    uint32_t bad_opnum;    /* when n < nops: the undecodable op's number (or OP_ILLEGAL) */
    nfsstat4 bad_status;   /* ... and its error: OP_ILLEGAL or BADXDR */
    bool may_block;
};

static bool nfs4_op_may_block(const nfs_argop4 *a, const struct nfs4_op_desc *d)
{
    if (!(d->flags & NFS4_OP_BLOCKING))
        return false;
    /* an UNSTABLE write only reaches the page cache */
    return a->argop != OP_WRITE || a->opwrite.stable != UNSTABLE4;
}

static void nfs4_decode_ops(struct nfs4_compound *c, uint32_t nops, struct nfs4_decoded *dec)
{
    struct xdr_dec *x = &c->call->args;
    memset(dec, 0, sizeof(*dec));
    dec->ops = nops ? xdr_arena_alloc(x->arena, nops, sizeof(*dec->ops)) : NULL;
    if (nops && !dec->ops) {
        dec->bad_opnum = OP_ILLEGAL;
        dec->bad_status = NFS4ERR_RESOURCE;
        return;
    }
    for (; dec->n < nops; dec->n++) {
        if (xdr_dec_left(x) < 4) {
            dec->bad_opnum = OP_ILLEGAL;
            dec->bad_status = NFS4ERR_BADXDR;
            return;
        }
        uint32_t opnum = xdr_get_be32(x->p);
        const struct nfs4_op_desc *d = nfs4_op_desc_of(opnum, c->minor);
        if (!d) {
            dec->bad_opnum = OP_ILLEGAL;
            dec->bad_status = NFS4ERR_OP_ILLEGAL;
            return;
        }
        if (!xdr_decode_nfs_argop4(x, &dec->ops[dec->n])) {
            dec->bad_opnum = opnum;
            dec->bad_status = NFS4ERR_BADXDR;
            return;
        }
        if (dec->n == 0 && opnum == OP_SEQUENCE)
            c->after_sequence = x->p;
        dec->may_block |= nfs4_op_may_block(&dec->ops[dec->n], d);
    }
}

/* Ops that change nothing outside the request (current and saved filehandles, reply). */
static bool nfs4_op_changes_nothing(uint32_t opnum)
{
    switch (opnum) {
    case OP_SEQUENCE: /* its slot is handed back by nfs4_requeue_now */
    case OP_PUTFH:
    case OP_PUTROOTFH:
    case OP_PUTPUBFH:
    case OP_GETFH:
    case OP_LOOKUP:
    case OP_LOOKUPP:
    case OP_SAVEFH:
    case OP_RESTOREFH:
    case OP_GETATTR:
    case OP_ACCESS:
    case OP_VERIFY:
    case OP_NVERIFY:
        return true;
    default:
        return false;
    }
}

bool nfs4_compound_requeue(struct nfs4_compound *c)
{
    if (c->call->on_blocking_pool || !c->nothing_changed || !c->slot)
        return false;
    c->requeue = true;
    return true;
}

/* Undoes what the request's SEQUENCE took, so that its next run starts afresh. */
static enum rpc_accept_status nfs4_requeue_now(struct nfs4_compound *c)
{
    state_slot_abandon(c->slot);
    c->slot = NULL;
    state_session_put(c->session);
    c->session = NULL;
    return RPC_REQUEUE_BLOCKING;
}

/*
 * NFSv4.0 has no sessions: a COMPOUND that changes something and is retransmitted with
 * the same xid (after a reconnect) must get the reply of its first run from rpc/'s
 * duplicate request cache, not run again (a second CREATE would answer EXIST; pynfs
 * RPLY14). 4.1+ has the slot reply cache instead and never asks.
 */
static bool nfs4_v40_wants_drc(const struct nfs4_decoded *dec)
{
    for (uint32_t i = 0; i < dec->n; i++) {
        switch (dec->ops[i].argop) {
        case OP_CREATE:
        case OP_REMOVE:
        case OP_RENAME:
        case OP_LINK:
        case OP_SETATTR:
        case OP_WRITE:
        case OP_OPEN:
        case OP_CLOSE:
        case OP_LOCK:
        case OP_LOCKU:
        case OP_OPEN_CONFIRM:
        case OP_OPEN_DOWNGRADE:
        case OP_RELEASE_LOCKOWNER:
        case OP_SETCLIENTID:
        case OP_SETCLIENTID_CONFIRM:
        case OP_DELEGRETURN:
            return true;
        default:
            break;
        }
    }
    return false;
}

/* Run one decoded op (next_opnum: the op after it, 0 for none): returns its status;
 * *stop when the COMPOUND must end after it. */
static nfsstat4 nfs4_run_op(struct nfs4_compound *c, nfs_argop4 *arg, uint32_t next_opnum, bool *stop)
{
    struct xdr_enc *e = c->enc;
    uint8_t *op_start = e->p;
    uint32_t opnum = arg->argop;
    const struct nfs4_op_desc *d = nfs4_op_desc_of(opnum, c->minor);
    nfs_resop4 res;

    memset(&res, 0, sizeof(res));
    nfsstat4 st = nfs4_op_precheck(c, opnum, d);
    bool ran = false;
    if (st == NFS4_OK) {
        if (d->flags & NFS4_OP_DIRECT) {
            if (!xdr_enc_u32(e, opnum)) {
                *stop = true;
                return NFS4ERR_RESOURCE;
            }
        }
        c->direct_overflow = false;
        st = d->fn(c, arg, &res);
        ran = true;
        __atomic_fetch_add(&c->srv->counters.ops[opnum], 1, __ATOMIC_RELAXED);
        if (c->whole_replay)
            return st;
        if (st == NFS4_OK)
            st = nfs4_wrongsec_after(c, opnum, next_opnum);
    }
    if (!nfs4_encode_result(c, opnum, ran ? d : NULL, st, &res, op_start)) {
        /* The result does not fit in the reply: 4.0 RESOURCE, 4.1 REP_TOO_BIG. */
        e->p = op_start;
        st = c->minor >= 1 ? NFS4ERR_REP_TOO_BIG : NFS4ERR_RESOURCE;
        if (!nfs4_encode_status_only(e, opnum, st))
            e->p = op_start;
    }
    if (c->max_reply && (size_t)(e->p - c->reply_start) > c->max_reply) {
        /* over the session's ca_maxresponsesize (RFC 8881 2.10.6.4) */
        e->p = op_start;
        if (!nfs4_encode_status_only(e, opnum, NFS4ERR_REP_TOO_BIG))
            e->p = op_start;
    }
    if (ran)
        nfs4_seqid_finish(c, nfs4_encoded_status(op_start), op_start);
    st = e->p - op_start >= 8 ? nfs4_encoded_status(op_start) : st;
    *stop = st != NFS4_OK;
    return st;
}

/* 4.1: store the reply in the slot for retransmissions, then free the slot. A reply the
 * client asked to cache that is too big for its cache turns the last op's result into
 * REP_TOO_BIG_TO_CACHE (RFC 8881 2.10.6.1.3). */
static void nfs4_slot_finish(struct nfs4_compound *c, uint8_t *reply_start, uint8_t *last_op,
                             uint32_t last_opnum, uint32_t *status)
{
    if (!c->slot)
        return;
    size_t len = (size_t)(c->enc->p - reply_start);
    enum state_status ss = state_slot_cache_reply(c->slot, reply_start, len);
    if (ss == STATE_ERR_REP_TOO_BIG_TO_CACHE && c->cachethis && last_op) {
        c->enc->p = last_op;
        nfs4_encode_status_only(c->enc, last_opnum, NFS4ERR_REP_TOO_BIG_TO_CACHE);
        *status = NFS4ERR_REP_TOO_BIG_TO_CACHE;
        xdr_put_be32(reply_start, *status);
        len = (size_t)(c->enc->p - reply_start);
        state_slot_cache_reply(c->slot, reply_start, len);
    }
    state_slot_done(c->slot);
    c->slot = NULL;
}

enum rpc_accept_status nfs4_proc_compound(struct rpc_call *call)
{
    struct nfs4_server *srv = call->prog_ctx;
    struct xdr_dec *x = &call->args;
    struct xdr_enc *e = &call->res;
    utf8str_cs tag;
    uint32_t minor, nops;
    const uint8_t *args_start = x->p;

    if (!xdr_decode_utf8str_cs(x, &tag) || !xdr_dec_u32(x, &minor) || !xdr_dec_u32(x, &nops))
        return RPC_GARBAGE_ARGS;

    struct nfs4_compound c;
    memset(&c, 0, sizeof(c));
    c.call = call;
    c.srv = srv;
    c.minor = minor;
    c.nops = nops;
    c.enc = e;
    c.args_start = args_start;
    nfs4_principal_init(&c);

    uint8_t *reply_start = e->p;
    c.reply_start = reply_start;
    uint32_t status = NFS4_OK;
    if (!xdr_enc_u32(e, 0) || !xdr_encode_utf8str_cs(e, &tag))
        return RPC_SYSTEM_ERR;
    uint8_t *count_at = e->p;
    if (!xdr_enc_u32(e, 0))
        return RPC_SYSTEM_ERR;

    uint32_t done = 0;
    uint8_t *last_op = NULL;
    uint32_t last_opnum = 0;
    if (minor > srv->max_minor) {
        status = NFS4ERR_MINOR_VERS_MISMATCH;
    } else if (!nfs4_attr_utf8_valid(tag.val, tag.len)) {
        /* The tag is a utf8str_cs: invalid UTF-8 is INVAL (RFC 7530 12.7, RFC 8881
         * 14.4), echoed with no results, before any op (SEQUENCE included) runs. */
        status = NFS4ERR_INVAL;
    } else if (nops > NFS4_MAX_OPS_PER_COMPOUND) {
        /* Answer for the first op only, as knfsd does. */
        uint32_t first = OP_ILLEGAL;
        if (xdr_dec_u32(x, &first) && !nfs4_op_desc_of(first, minor))
            first = OP_ILLEGAL;
        status = minor >= 1 ? NFS4ERR_TOO_MANY_OPS : NFS4ERR_RESOURCE;
        if (nfs4_encode_status_only(e, first, status))
            done = 1;
    } else {
        struct nfs4_decoded dec;
        nfs4_decode_ops(&c, nops, &dec);
        if (dec.may_block && !call->on_blocking_pool)
            return RPC_REQUEUE_BLOCKING; /* nothing ran yet */
        if (minor == 0 && nfs4_v40_wants_drc(&dec)) {
            enum rpc_accept_status dup = rpc_call_cache_reply(call);
            if (dup != RPC_SUCCESS)
                return dup; /* a retransmission: answered from the cache, or dropped */
        }
        bool stop = false;
        c.nothing_changed = true;
        for (c.opindex = 0; c.opindex < dec.n && !stop; c.opindex++) {
            last_op = e->p;
            last_opnum = dec.ops[c.opindex].argop;
            uint32_t next_opnum = c.opindex + 1 < dec.n ? dec.ops[c.opindex + 1].argop : 0;
            status = nfs4_run_op(&c, &dec.ops[c.opindex], next_opnum, &stop);
            if (c.requeue)
                return nfs4_requeue_now(&c);
            c.nothing_changed &= nfs4_op_changes_nothing(last_opnum);
            if (c.whole_replay)
                break;
            if (e->p > last_op)
                done++;
        }
        if (!stop && !c.whole_replay && dec.n < nops) {
            last_op = e->p;
            last_opnum = dec.bad_opnum;
            status = dec.bad_status;
            if (nfs4_encode_status_only(e, dec.bad_opnum, dec.bad_status))
                done++;
        }
    }
    if (c.whole_replay) {
        /* SEQUENCE found a retransmission: the cached reply replaces everything. */
        e->p = reply_start;
        bool ok = xdr_enc_fixed(e, c.replay, (uint32_t)c.replay_len);
        free(c.replay);
        if (c.session)
            state_session_put(c.session);
        return ok ? RPC_SUCCESS : RPC_SYSTEM_ERR;
    }
    xdr_put_be32(reply_start, status);
    xdr_put_be32(count_at, done);
    if (c.seqid_owner)
        state_owner_put(c.seqid_owner);
    nfs4_slot_finish(&c, reply_start, last_op, last_opnum, &status);
    if (c.session)
        state_session_put(c.session);
    return RPC_SUCCESS;
}

static enum rpc_accept_status nfs4_proc_null(struct rpc_call *call)
{
    (void)call;
    return RPC_SUCCESS;
}

static const struct rpc_proc_desc nfs4_procs[] = {
    [NFSPROC4_NULL] = {nfs4_proc_null, "NULL", 0},
    [NFSPROC4_COMPOUND] = {nfs4_proc_compound, "COMPOUND", 0},
};

static const struct rpc_version_desc nfs4_versions[] = {
    {NFS_V4, sizeof(nfs4_procs) / sizeof(nfs4_procs[0]), nfs4_procs},
};

const struct rpc_program_desc nfs4_program = {
    NFS4_PROGRAM, "nfs4", sizeof(nfs4_versions) / sizeof(nfs4_versions[0]), nfs4_versions,
};
