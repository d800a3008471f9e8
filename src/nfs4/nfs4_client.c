/*
 * Client and session ops: SETCLIENTID, SETCLIENTID_CONFIRM, RENEW (4.0); EXCHANGE_ID,
 * CREATE_SESSION, SEQUENCE, BIND_CONN_TO_SESSION, DESTROY_SESSION, DESTROY_CLIENTID,
 * RECLAIM_COMPLETE, TEST_STATEID, FREE_STATEID (4.1). The state machines live in state/;
 * these handlers translate arguments and results.
 */
#include <stdlib.h>
#include <string.h>

#include "fs/siphash.h"
#include "nfs4/nfs4_internal.h"
#include "rpc/backchannel.h"

static void nfs4_copy_str(char *dst, size_t cap, const struct xdr_string *s)
{
    size_t n = s->len < cap - 1 ? s->len : cap - 1;
    memcpy(dst, s->val, n);
    dst[n] = '\0';
}

NFS4_OP(setclientid)
{
    SETCLIENTID4args *a = &arg->opsetclientid;
    SETCLIENTID4res *r = &res->opsetclientid;
    struct state_cb_info cb = {.program = a->callback.cb_program, .ident = a->callback_ident};
    nfs4_copy_str(cb.netid, sizeof(cb.netid), &a->callback.cb_location.na_r_netid);
    nfs4_copy_str(cb.addr, sizeof(cb.addr), &a->callback.cb_location.na_r_addr);
    if (a->client.id.len == 0)
        return r->status = NFS4ERR_INVAL;
    enum state_status ss = state_setclientid(c->srv->state, a->client.id.val, a->client.id.len,
                                             a->client.verifier, &c->principal, &cb, &r->resok4.clientid,
                                             r->resok4.setclientid_confirm);
    r->status = nfs4_state_status(ss);
    if (r->status == NFS4ERR_CLID_INUSE) {
        /* We do not keep the other client's address: name none (the client only logs it). */
        static const char tcp[] = "tcp";
        r->client_using.na_r_netid = (struct xdr_string){sizeof(tcp) - 1, tcp};
        r->client_using.na_r_addr = (struct xdr_string){0, ""};
    }
    return r->status;
}

NFS4_OP(setclientid_confirm)
{
    SETCLIENTID_CONFIRM4args *a = &arg->opsetclientid_confirm;
    enum state_status ss = state_setclientid_confirm(c->srv->state, a->clientid, a->setclientid_confirm,
                                                     &c->principal);
    if (ss == STATE_OK)
        nfs4_cb_kick(c->srv);
    return res->opsetclientid_confirm.status = nfs4_state_status(ss);
}

NFS4_OP(renew)
{
    enum state_status ss = state_renew(c->srv->state, arg->oprenew.clientid);
    return res->oprenew.status = nfs4_state_status(ss);
}

/* ---- 4.1 ---- */

/* The flags a client may send (RFC 5661's set, as knfsd: SUPP_FENCE_OPS, added by RFC
 * 8881 for migration we do not do, is refused like any unknown bit). */
#define EXCHGID4_FLAGS_KNOWN                                                                     \
    (EXCHGID4_FLAG_SUPP_MOVED_REFER | EXCHGID4_FLAG_SUPP_MOVED_MIGR | EXCHGID4_FLAG_BIND_PRINC_STATEID | \
     EXCHGID4_FLAG_MASK_PNFS | EXCHGID4_FLAG_UPD_CONFIRMED_REC_A)

static nfs_impl_id4 nfs4_impl_id = {
    .nii_domain = {sizeof("peernfs.org") - 1, (const uint8_t *)"peernfs.org"},
    .nii_name = {sizeof("peernfsd") - 1, (const uint8_t *)"peernfsd"},
};

NFS4_OP(exchange_id)
{
    EXCHANGE_ID4args *a = &arg->opexchange_id;
    EXCHANGE_ID4res *r = &res->opexchange_id;

    /* CONFIRMED_R is the server's to set; unknown bits are an error (RFC 8881 18.35.3). */
    if (a->eia_flags & ~EXCHGID4_FLAGS_KNOWN)
        return r->eir_status = NFS4ERR_INVAL;
    if (a->eia_clientowner.co_ownerid.len == 0)
        return r->eir_status = NFS4ERR_INVAL;
    if (a->eia_state_protect.spa_how == SP4_SSV)
        return r->eir_status = NFS4ERR_ENCR_ALG_UNSUPP; /* no SSV: RFC 8881 18.35.4 */
    struct state_exchange_id_res er;
    enum state_status ss = state_exchange_id(c->srv->state, a->eia_clientowner.co_ownerid.val,
                                             a->eia_clientowner.co_ownerid.len,
                                             a->eia_clientowner.co_verifier, a->eia_flags, &c->principal,
                                             c->minor, &er);
    if (ss != STATE_OK)
        return r->eir_status = nfs4_state_status(ss);
    EXCHANGE_ID4resok *ok = &r->eir_resok4;
    ok->eir_clientid = er.clientid;
    ok->eir_sequenceid = er.sequenceid;
    ok->eir_flags = EXCHGID4_FLAG_USE_NON_PNFS | (er.confirmed ? EXCHGID4_FLAG_CONFIRMED_R : 0);
    /* SP4_MACH_CRED with AUTH_SYS protects nothing; answer it with empty op sets. */
    ok->eir_state_protect.spr_how = a->eia_state_protect.spa_how;
    ok->eir_server_owner.so_minor_id = 0;
    ok->eir_server_owner.so_major_id.len = (uint32_t)c->srv->server_owner_len;
    ok->eir_server_owner.so_major_id.val = c->srv->server_owner;
    ok->eir_server_scope = ok->eir_server_owner.so_major_id;
    ok->eir_server_impl_id.len = 1;
    ok->eir_server_impl_id.val = &nfs4_impl_id;
    return r->eir_status = NFS4_OK;
}

static void nfs4_channel_from_wire(const channel_attrs4 *w, struct state_channel_attrs *s)
{
    s->headerpadsize = w->ca_headerpadsize;
    s->maxrequestsize = w->ca_maxrequestsize;
    s->maxresponsesize = w->ca_maxresponsesize;
    s->maxresponsesize_cached = w->ca_maxresponsesize_cached;
    s->maxoperations = w->ca_maxoperations;
    s->maxrequests = w->ca_maxrequests;
}

static void nfs4_channel_to_wire(const struct state_channel_attrs *s, channel_attrs4 *w)
{
    w->ca_headerpadsize = s->headerpadsize;
    w->ca_maxrequestsize = s->maxrequestsize;
    w->ca_maxresponsesize = s->maxresponsesize;
    w->ca_maxresponsesize_cached = s->maxresponsesize_cached;
    w->ca_maxoperations = s->maxoperations;
    w->ca_maxrequests = s->maxrequests;
    w->ca_rdma_ird.len = 0;
}

/* The callbacks are sent with AUTH_SYS or AUTH_NONE, as the first entry of the
 * client's list (csa_sec_parms / bca_sec_parms, in its order of preference) with one of
 * those flavors asks; false when it offers only RPCSEC_GSS (we keep no GSS context). */
static bool nfs4_cb_sec_choose(const callback_sec_parms4 *parms, uint32_t n, struct state_cb_sec *out)
{
    for (uint32_t i = 0; i < n; i++) {
        const callback_sec_parms4 *p = &parms[i];
        if (p->cb_secflavor == RPC_AUTH_NONE) {
            memset(out, 0, sizeof(*out));
            return true;
        }
        if (p->cb_secflavor != RPC_AUTH_SYS)
            continue;
        const authsys_parms4 *sys = &p->cbsp_sys_cred;
        memset(out, 0, sizeof(*out));
        out->flavor = RPC_AUTH_SYS;
        out->uid = sys->uid;
        out->gid = sys->gid;
        out->machinename_len = sys->machinename.len <= STATE_CB_MACHINE_MAX ? sys->machinename.len : 0;
        memcpy(out->machinename, sys->machinename.val, out->machinename_len);
        return true;
    }
    return false;
}

/* CREATE_SESSION encodes its own result so that the exact bytes can be kept for a
 * replay (RFC 8881 18.36.4: the reply to a retried CREATE_SESSION is the cached one). */
NFS4_OP(create_session)
{
    CREATE_SESSION4args *a = &arg->opcreate_session;
    (void)res;
    if (a->csa_flags & ~(CREATE_SESSION4_FLAG_PERSIST | CREATE_SESSION4_FLAG_CONN_BACK_CHAN |
                         CREATE_SESSION4_FLAG_CONN_RDMA))
        return NFS4ERR_INVAL;
    struct state_create_session_args sa = {
        .clientid = a->csa_clientid,
        .sequence = a->csa_sequence,
        .flags = a->csa_flags & ~CREATE_SESSION4_FLAG_CONN_RDMA,
        .cb_program = a->csa_cb_program,
        .principal = &c->principal,
        .conn = c->call->conn,
    };
    struct state_cb_sec sec;
    bool sec_ok = nfs4_cb_sec_choose(a->csa_sec_parms.val, a->csa_sec_parms.len, &sec);
    if ((sa.flags & CREATE_SESSION4_FLAG_CONN_BACK_CHAN) && !sec_ok)
        sa.flags &= ~CREATE_SESSION4_FLAG_CONN_BACK_CHAN;
    nfs4_channel_from_wire(&a->csa_fore_chan_attrs, &sa.fore);
    nfs4_channel_from_wire(&a->csa_back_chan_attrs, &sa.back);
    nfs4_cb_conn_seen(c->srv, c->call->conn);
    struct state_create_session_res sr;
    memset(&sr, 0, sizeof(sr));
    enum state_status ss = state_create_session(c->srv->state, &sa, &sr);
    if (ss == STATE_ERR_REPLAY) {
        bool ok = xdr_enc_fixed(c->enc, sr.replay, (uint32_t)sr.replay_len);
        nfsstat4 st = sr.replay_len >= 4 ? (nfsstat4)xdr_get_be32(sr.replay) : NFS4ERR_SERVERFAULT;
        free(sr.replay);
        c->direct_overflow = !ok;
        return ok ? st : NFS4ERR_RESOURCE;
    }
    if (ss != STATE_OK)
        return nfs4_state_status(ss);
    CREATE_SESSION4res r = {.csr_status = NFS4_OK};
    memcpy(r.csr_resok4.csr_sessionid, sr.sessionid, sizeof(r.csr_resok4.csr_sessionid));
    r.csr_resok4.csr_sequence = sr.sequence;
    r.csr_resok4.csr_flags = sr.flags;
    nfs4_channel_to_wire(&sr.fore, &r.csr_resok4.csr_fore_chan_attrs);
    nfs4_channel_to_wire(&sr.back, &r.csr_resok4.csr_back_chan_attrs);
    uint8_t *start = c->enc->p;
    if (!xdr_encode_CREATE_SESSION4res(c->enc, &r)) {
        c->direct_overflow = true;
        return NFS4_OK;
    }
    state_create_session_cache_reply(c->srv->state, a->csa_clientid, start, (size_t)(c->enc->p - start));
    if (sec_ok)
        state_session_set_cb_sec(c->srv->state, a->csa_clientid, sr.sessionid, NULL, &sec);
    if (sr.flags & CREATE_SESSION4_FLAG_CONN_BACK_CHAN)
        nfs4_cb_kick(c->srv);
    return NFS4_OK;
}

/* RFC 8881 18.33: a new callback program and credential for the session's back
 * channel; a list with no flavor we can call back with is refused as knfsd does. */
NFS4_OP(backchannel_ctl)
{
    BACKCHANNEL_CTL4args *a = &arg->opbackchannel_ctl;
    struct state_cb_sec sec;
    nfsstat4 st = NFS4ERR_ENCR_ALG_UNSUPP;
    if (nfs4_cb_sec_choose(a->bca_sec_parms.val, a->bca_sec_parms.len, &sec)) {
        uint8_t id[STATE_SESSIONID_SIZE];
        state_session_id(c->session, id);
        st = nfs4_state_status(state_session_set_cb_sec(c->srv->state, state_client_id(c->client), id,
                                                        &a->bca_cb_program, &sec));
        if (st == NFS4_OK)
            nfs4_cb_kick(c->srv); /* probe the back channel with the new program */
    }
    return res->opbackchannel_ctl.bcr_status = st;
}

NFS4_OP(destroy_session)
{
    DESTROY_SESSION4args *a = &arg->opdestroy_session;
    bool on_it = false;
    if (c->session) {
        uint8_t id[STATE_SESSIONID_SIZE];
        state_session_id(c->session, id);
        on_it = memcmp(id, a->dsa_sessionid, sizeof(id)) == 0;
    }
    enum state_status ss = state_destroy_session(c->srv->state, a->dsa_sessionid, on_it);
    return res->opdestroy_session.dsr_status = nfs4_state_status(ss);
}

/* A digest of the request after SEQUENCE, so that a retry with other ops is told
 * from a true retransmission (SEQ_FALSE_RETRY, RFC 8881 2.10.6.1.3.1). */
static uint64_t nfs4_request_checksum(struct nfs4_compound *c)
{
    static const uint8_t key[16] = "peernfs-seqsum!";
    const uint8_t *from = c->after_sequence, *to = c->call->args.end;
    return siphash24(key, from, (size_t)(to - from)) | 1; /* 0 means "not checked" */
}

NFS4_OP(sequence)
{
    SEQUENCE4args *a = &arg->opsequence;
    SEQUENCE4res *r = &res->opsequence;
    struct state_sequence_args sa = {
        .sequenceid = a->sa_sequenceid,
        .slotid = a->sa_slotid,
        .highest_slotid = a->sa_highest_slotid,
        .cachethis = a->sa_cachethis,
        .checksum = nfs4_request_checksum(c),
        .conn = c->call->conn,
    };
    memcpy(sa.sessionid, a->sa_sessionid, sizeof(sa.sessionid));
    nfs4_cb_conn_seen(c->srv, c->call->conn);
    struct state_sequence_res sr;
    memset(&sr, 0, sizeof(sr));
    enum state_status ss = state_sequence(c->srv->state, &sa, &sr);
    if (ss == STATE_ERR_REPLAY) {
        c->replay = sr.replay;
        c->replay_len = sr.replay_len;
        c->whole_replay = true;
        return r->sr_status = NFS4_OK;
    }
    if (ss != STATE_OK)
        return r->sr_status = nfs4_state_status(ss);
    /* The session's limits hold for the whole request (RFC 8881 2.10.6.4, 18.46.3). */
    struct state_channel_attrs fore;
    state_session_fore_attrs(sr.session, &fore);
    size_t request_len = (size_t)(c->call->args.end - c->args_start);
    if (c->nops > fore.maxoperations || request_len > fore.maxrequestsize) {
        state_slot_done(sr.slot);
        state_session_put(sr.session);
        return r->sr_status = c->nops > fore.maxoperations ? NFS4ERR_TOO_MANY_OPS : NFS4ERR_REQ_TOO_BIG;
    }
    c->max_reply = fore.maxresponsesize;
    c->session = sr.session;
    c->client = sr.client;
    c->slot = sr.slot;
    c->cachethis = sr.cachethis;
    SEQUENCE4resok *ok = &r->sr_resok4;
    memcpy(ok->sr_sessionid, a->sa_sessionid, sizeof(ok->sr_sessionid));
    ok->sr_sequenceid = a->sa_sequenceid;
    ok->sr_slotid = a->sa_slotid;
    ok->sr_highest_slotid = sr.highest_slotid;
    ok->sr_target_highest_slotid = sr.target_highest_slotid;
    ok->sr_status_flags = sr.status_flags;
    return r->sr_status = NFS4_OK;
}

NFS4_OP(bind_conn_to_session)
{
    BIND_CONN_TO_SESSION4args *a = &arg->opbind_conn_to_session;
    BIND_CONN_TO_SESSION4res *r = &res->opbind_conn_to_session;
    enum state_conn_dir dir;
    switch (a->bctsa_dir) {
    case CDFC4_FORE: dir = STATE_CONN_FORE; break;
    case CDFC4_BACK: dir = STATE_CONN_BACK; break;
    case CDFC4_FORE_OR_BOTH:
    case CDFC4_BACK_OR_BOTH: dir = STATE_CONN_BOTH; break;
    default: return r->bctsr_status = NFS4ERR_INVAL;
    }
    if (!c->call->conn)
        return r->bctsr_status = NFS4ERR_INVAL; /* no connection to bind */
    nfs4_cb_conn_seen(c->srv, c->call->conn);
    enum state_status ss = state_bind_conn_to_session(c->srv->state, a->bctsa_sessid, c->call->conn, &dir);
    if (ss != STATE_OK)
        return r->bctsr_status = nfs4_state_status(ss);
    memcpy(r->bctsr_resok4.bctsr_sessid, a->bctsa_sessid, sizeof(r->bctsr_resok4.bctsr_sessid));
    r->bctsr_resok4.bctsr_dir = dir == STATE_CONN_FORE ? CDFS4_FORE : dir == STATE_CONN_BACK ? CDFS4_BACK : CDFS4_BOTH;
    r->bctsr_resok4.bctsr_use_conn_in_rdma_mode = false;
    if (dir != STATE_CONN_FORE)
        nfs4_cb_kick(c->srv);
    return r->bctsr_status = NFS4_OK;
}

NFS4_OP(destroy_clientid)
{
    enum state_status ss = state_destroy_clientid(c->srv->state, arg->opdestroy_clientid.dca_clientid);
    return res->opdestroy_clientid.dcr_status = nfs4_state_status(ss);
}

NFS4_OP(reclaim_complete)
{
    /* rca_one_fs: per-filesystem completion after a migration; we have none to track. */
    if (arg->opreclaim_complete.rca_one_fs)
        return res->opreclaim_complete.rcr_status = NFS4_OK;
    enum state_status ss = state_reclaim_complete(c->srv->state, c->client);
    return res->opreclaim_complete.rcr_status = nfs4_state_status(ss);
}

NFS4_OP(test_stateid)
{
    TEST_STATEID4args *a = &arg->optest_stateid;
    TEST_STATEID4res *r = &res->optest_stateid;
    uint32_t n = a->ts_stateids.len;
    nfsstat4 *codes = n ? xdr_arena_alloc(c->call->args.arena, n, sizeof(*codes)) : NULL;
    if (n && !codes)
        return r->tsr_status = NFS4ERR_RESOURCE;
    for (uint32_t i = 0; i < n; i++) {
        struct state_stateid sid;
        nfs4_stateid_to_state(&a->ts_stateids.val[i], &sid);
        codes[i] = nfs4_state_status(state_test_stateid(c->srv->state, c->client, &sid));
    }
    r->tsr_resok4.tsr_status_codes.len = n;
    r->tsr_resok4.tsr_status_codes.val = codes;
    return r->tsr_status = NFS4_OK;
}

NFS4_OP(free_stateid)
{
    stateid4 in;
    nfsstat4 st = nfs4_stateid_resolve(c, &arg->opfree_stateid.fsa_stateid, &in); /* may be "current" */
    if (st != NFS4_OK)
        return res->opfree_stateid.fsr_status = st;
    struct state_stateid sid;
    nfs4_stateid_to_state(&in, &sid);
    enum state_status ss = state_free_stateid(c->srv->state, c->client, &sid, nfs4_lock_has_locks, c->srv);
    return res->opfree_stateid.fsr_status = nfs4_state_status(ss);
}
