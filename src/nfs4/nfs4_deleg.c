/*
 * Delegation ops: DELEGRETURN and DELEGPURGE (RFC 7530 16.6-16.7, RFC 8881 18.5-18.6).
 * Delegations are granted by OPEN (nfs4_open.c) and recalled by the callback thread;
 * the policy and the recall state machine live in state/deleg.c.
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

/* DELEGPURGE only matters to servers that keep delegations for CLAIM_DELEGATE_PREV
 * across client restarts; we do not (OPEN answers NOTSUPP to that claim), which the
 * RFC answers with NOTSUPP here too (RFC 7530 16.6.4). */
NFS4_OP(delegpurge)
{
    (void)c;
    (void)arg;
    return res->opdelegpurge.status = NFS4ERR_NOTSUPP;
}
