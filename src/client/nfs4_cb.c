#include "client/nfs4_cb.h"

#include <errno.h>
#include <string.h>

void nfs4_cb_init(struct nfs4_cb_service *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
}

void nfs4_cb_destroy(struct nfs4_cb_service *s) { pthread_mutex_destroy(&s->mu); }

void nfs4_cb_set_session(struct nfs4_cb_service *s, const sessionid4 id, uint32_t nslots,
                         uint32_t minorversion)
{
    pthread_mutex_lock(&s->mu);
    memcpy(s->sessionid, id, sizeof(sessionid4));
    s->nslots = nslots > NFS4_CB_SLOTS_MAX ? NFS4_CB_SLOTS_MAX : nslots;
    memset(s->seqid, 0, sizeof(s->seqid)); /* the server's first call on a slot uses 1 */
    s->minorversion = minorversion;
    s->have_session = true;
    pthread_mutex_unlock(&s->mu);
}

int nfs4_cb_register(struct nfs4_cb_service *s, uint32_t op, nfs4_cb_op_fn fn, void *ctx)
{
    if (op < OP_CB_GETATTR || op >= NFS4_CB_OP_MAX || op == OP_CB_SEQUENCE)
        return -EINVAL;
    pthread_mutex_lock(&s->mu);
    s->handler[op].fn = fn;
    s->handler[op].ctx = ctx;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* CB_SEQUENCE (RFC 8881 20.9.3): session, slot, and the slot's sequence id. We keep no
 * reply cache (we never ask the server to cache ours either): a retransmission of the
 * last request gets NFS4ERR_RETRY_UNCACHED_REP. */
static nfsstat4 cb_sequence(struct nfs4_cb_service *s, const CB_SEQUENCE4args *a,
                            CB_SEQUENCE4res *r)
{
    pthread_mutex_lock(&s->mu);
    nfsstat4 st = NFS4_OK;
    if (!s->have_session || memcmp(a->csa_sessionid, s->sessionid, sizeof(sessionid4)))
        st = NFS4ERR_BADSESSION;
    else if (a->csa_slotid >= s->nslots)
        st = NFS4ERR_BADSLOT;
    else if (a->csa_sequenceid == s->seqid[a->csa_slotid])
        st = NFS4ERR_RETRY_UNCACHED_REP;
    else if (a->csa_sequenceid != s->seqid[a->csa_slotid] + 1)
        st = NFS4ERR_SEQ_MISORDERED;
    if (st == NFS4_OK) {
        s->seqid[a->csa_slotid] = a->csa_sequenceid;
        CB_SEQUENCE4resok *ok = &r->csr_resok4;
        memcpy(ok->csr_sessionid, a->csa_sessionid, sizeof(sessionid4));
        ok->csr_sequenceid = a->csa_sequenceid;
        ok->csr_slotid = a->csa_slotid;
        ok->csr_highest_slotid = s->nslots - 1;
        ok->csr_target_highest_slotid = s->nslots - 1;
    }
    pthread_mutex_unlock(&s->mu);
    r->csr_status = st;
    return st;
}

static bool known_cb_op(uint32_t op) { return op >= OP_CB_GETATTR && op < NFS4_CB_OP_MAX; }

void nfs4_cb_dispatch(struct nfs4_cb_service *s, const CB_COMPOUND4args *args,
                      CB_COMPOUND4res *res)
{
    res->tag = args->tag;
    res->resarray.len = 0;
    res->status = NFS4_OK;
    pthread_mutex_lock(&s->mu);
    s->compounds++;
    uint32_t minor = s->minorversion;
    bool have_session = s->have_session;
    pthread_mutex_unlock(&s->mu);
    /* a 4.1 session's callbacks carry its minor version (RFC 8881 20.9.3 / 16.2.3);
     * before CREATE_SESSION answered, CB_SEQUENCE says BADSESSION */
    if (args->minorversion == 0 || (have_session && args->minorversion != minor)) {
        res->status = NFS4ERR_MINOR_VERS_MISMATCH;
        return;
    }
    for (uint32_t i = 0; i < args->argarray.len; i++) {
        const nfs_cb_argop4 *a = &args->argarray.val[i];
        nfs_cb_resop4 *r = &res->resarray.val[i];
        memset(r, 0, sizeof(*r));
        r->resop = known_cb_op(a->argop) ? a->argop : OP_CB_ILLEGAL;
        res->resarray.len = i + 1;
        nfsstat4 st;
        if (!known_cb_op(a->argop)) {
            st = NFS4ERR_OP_ILLEGAL;
        } else if (a->argop == OP_CB_SEQUENCE) {
            st = i == 0 ? cb_sequence(s, &a->opcbsequence, &r->opcbsequence)
                        : NFS4ERR_SEQUENCE_POS;
        } else if (i == 0) {
            st = NFS4ERR_OP_NOT_IN_SESSION;
        } else {
            pthread_mutex_lock(&s->mu);
            nfs4_cb_op_fn fn = s->handler[a->argop].fn;
            void *ctx = s->handler[a->argop].ctx;
            if (!fn)
                s->ops_notsupp++;
            pthread_mutex_unlock(&s->mu);
            st = fn ? fn(ctx, a, r) : NFS4ERR_NOTSUPP;
        }
        /* every callback result begins with its nfsstat4 (CB_ILLEGAL4res's arm) */
        r->opcbillegal.status = st;
        if (st != NFS4_OK) {
            res->status = st;
            return;
        }
    }
}
