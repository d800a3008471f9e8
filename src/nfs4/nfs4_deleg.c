/*
 * Delegation ops: DELEGRETURN and DELEGPURGE (RFC 7530 16.6-16.7, RFC 8881 18.5-18.6).
 * Delegations are granted by OPEN (nfs4_open.c) and recalled by the callback thread;
 * the policy and the recall state machine live in state/deleg.c, the delegations kept
 * across a client's restart for CLAIM_DELEGATE_PREV in state/deleg_recovery.c.
 */
#include <stdatomic.h>

#include "nfs4/nfs4_internal.h"

/* DELEGRETURN: the stateid must be a delegation of the current filehandle's file
 * (BAD_STATEID otherwise). A revoked delegation may be returned too: it is freed and
 * the answer is DELEG_REVOKED (RFC 8881 18.6.3). */
NFS4_OP(delegreturn)
{
    const DELEGRETURN4args *a = &arg->opdelegreturn;
    DELEGRETURN4res *r = &res->opdelegreturn;
    struct state_stid *st;

    nfsstat4 s = nfs4_stid_lookup(c, &a->deleg_stateid, STATE_STID_DELEG, STATE_LOOKUP_ALLOW_REVOKED, &st);
    if (s != NFS4_OK)
        return r->status = s;
    s = nfs4_state_status(state_delegreturn(c->srv->state, st));
    state_stid_put(st);
    if (s == NFS4_OK)
        __atomic_fetch_add(&c->srv->counters.delegs_returned, 1, __ATOMIC_RELAXED);
    return r->status = s;
}

/*
 * DELEGPURGE: the client will reclaim no more delegations of its previous incarnation
 * (CLAIM_DELEGATE_PREV): every one still awaiting recovery is discarded. A server that
 * supports the claim must support this op (RFC 7530 16.8.4, RFC 8881 18.5.3). 4.0 names
 * the client by clientid (STALE_CLIENTID / EXPIRED as for RENEW); 4.1 MUST ignore the
 * argument and use the SEQUENCE's session's client (RFC 8881 18.5.3).
 */
NFS4_OP(delegpurge)
{
    const DELEGPURGE4args *a = &arg->opdelegpurge;
    DELEGPURGE4res *r = &res->opdelegpurge;
    struct state_client *cl;

    if (c->minor >= 1) {
        if (!c->client)
            return r->status = NFS4ERR_SERVERFAULT; /* SEQUENCE always sets it */
        cl = state_client_ref(c->client);
    } else {
        nfsstat4 s = nfs4_state_status(state_client_lookup(c->srv->state, a->clientid, &cl));
        if (s != NFS4_OK)
            return r->status = s;
    }
    nfsstat4 s = nfs4_state_status(state_delegpurge(c->srv->state, cl));
    state_client_put(cl);
    return r->status = s;
}
