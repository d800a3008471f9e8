/*
 * Stateid arguments (RFC 7530 section 9.1.4, RFC 8881 section 8.2): the 4.1 current
 * stateid, the special stateids, lookups of open/lock/delegation stateids for the
 * current filehandle, the I/O check behind READ/WRITE/SETATTR(size), and the 4.0 owner
 * seqid start shared by the seqid-mutating ops (RFC 7530 section 9.1.7).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "nfs4/nfs4_internal.h"
#include "nfs4/nfs4_io.h"


nfsstat4 nfs4_stateid_resolve(struct nfs4_compound *c, const stateid4 *in, stateid4 *out)
{
    struct state_stateid s;
    nfs4_stateid_to_state(in, &s);
    if (c->minor >= 1 && state_stateid_special(&s) == STATE_SPECIAL_CURRENT) {
        /* RFC 8881 16.2.3.1.2: no current stateid yet is BAD_STATEID */
        if (!c->have_cur_stateid)
            return NFS4ERR_BAD_STATEID;
        *out = c->cur_stateid;
        return NFS4_OK;
    }
    *out = *in;
    return NFS4_OK;
}

void nfs4_set_current_stateid(struct nfs4_compound *c, const stateid4 *sid)
{
    if (c->minor < 1)
        return; /* 4.0 has no current stateid */
    c->cur_stateid = *sid;
    c->have_cur_stateid = true;
}

/* Is the state on the current filehandle's file? A stateid of another file is
 * BAD_STATEID (RFC 8881 8.2.4), never a silent use of the other file's modes. */
static bool nfs4_stid_on_current_file(struct nfs4_compound *c, struct state_stid *st)
{
    size_t klen, cur_len;
    const void *key = state_stid_file_key(st, &klen);
    const void *cur = nfs4_file_key(&c->cur, &cur_len);
    return key && klen == cur_len && memcmp(key, cur, klen) == 0;
}

nfsstat4 nfs4_stid_lookup(struct nfs4_compound *c, const stateid4 *in, unsigned types, unsigned flags,
                          struct state_stid **out)
{
    stateid4 sid;
    *out = NULL;
    nfsstat4 s = nfs4_stateid_resolve(c, in, &sid);
    if (s != NFS4_OK)
        return s;
    struct state_stateid ss;
    nfs4_stateid_to_state(&sid, &ss);
    if (c->minor >= 1)
        flags |= STATE_LOOKUP_V41;
    struct state_stid *st;
    enum state_status r = state_stateid_lookup(c->srv->state, c->client, &ss, types, flags, &st);
    if (r != STATE_OK)
        return nfs4_state_status(r);
    if (!nfs4_stid_on_current_file(c, st)) {
        state_stid_put(st);
        return NFS4ERR_BAD_STATEID;
    }
    *out = st;
    return NFS4_OK;
}

nfsstat4 nfs4_seqid_begin(struct nfs4_compound *c, struct state_owner *o, uint32_t seqid, bool is_open)
{
    if (c->minor >= 1)
        return NFS4_OK; /* sessions replace seqids (RFC 8881 8.13) */
    void *replay;
    size_t replay_len;
    enum state_status r = state_owner_seqid_begin(o, seqid, is_open, &replay, &replay_len);
    if (r == STATE_ERR_REPLAY) {
        if (replay_len < 8) { /* cannot happen: a cached result holds opnum + status */
            free(replay);
            return NFS4ERR_BAD_SEQID;
        }
        c->replay = replay;
        c->replay_len = replay_len;
        return (nfsstat4)xdr_get_be32((const uint8_t *)replay + 4);
    }
    if (r != STATE_OK)
        return nfs4_state_status(r);
    c->seqid_owner = state_owner_ref(o);
    c->seqid = seqid;
    c->seqid_active = true;
    return NFS4_OK;
}

/*
 * A seqid-mutating op naming a stateid (CLOSE, OPEN_CONFIRM, OPEN_DOWNGRADE, LOCKU,
 * LOCK): in 4.0 the owner's seqid decides first (RFC 7530 9.1.7), because a
 * retransmission carries the stateid as it was before the first execution bumped it:
 * find the object whatever the stateid's seqid, start the owner's seqid (a replay
 * answers from the owner's cache), and only then compare the stateid's seqid.
 * On a replay c->replay is set, *out is NULL and the replayed status is returned:
 * callers check c->replay before going on.
 * An open owner's last closed open is found too (STATE_LOOKUP_ALLOW_CLOSED): a
 * retransmitted CLOSE gets its cached reply (RFC 7530 9.10.1); anything else on it,
 * once its seqid is accepted, is BAD_STATEID.
 */
nfsstat4 nfs4_stid_lookup_seqid(struct nfs4_compound *c, const stateid4 *in, unsigned types, uint32_t seqid,
                                struct state_stid **out)
{
    *out = NULL;
    if (c->minor >= 1)
        return nfs4_stid_lookup(c, in, types, 0, out);
    stateid4 any = *in;
    any.seqid = 0; /* with V41: "the current seqid", i.e. no seqid check */
    unsigned flags = STATE_LOOKUP_V41 | (types == STATE_STID_OPEN ? STATE_LOOKUP_ALLOW_CLOSED : 0);
    struct state_stid *st;
    nfsstat4 s = nfs4_stid_lookup(c, &any, types, flags, &st);
    if (s != NFS4_OK)
        return s;
    s = nfs4_seqid_begin(c, state_stid_owner(st), seqid, false);
    if (c->replay) { /* the cached result answers; the caller does nothing more */
        state_stid_put(st);
        return s;
    }
    if (s == NFS4_OK && state_stid_closed(st))
        s = NFS4ERR_BAD_STATEID; /* closed: only its CLOSE's replay was welcome */
    if (s == NFS4_OK) {
        struct state_stateid now;
        state_stid_stateid(st, &now);
        if (in->seqid < now.seqid)
            s = NFS4ERR_OLD_STATEID;
        else if (in->seqid > now.seqid)
            s = NFS4ERR_BAD_STATEID;
    }
    if (s != NFS4_OK) {
        state_stid_put(st);
        return s;
    }
    *out = st;
    return NFS4_OK;
}

/* Anonymous / bypass stateids: no state of the caller, but other owners' share
 * reservations and delegations still apply (RFC 7530 9.1.4.3). The bypass stateid
 * only means something to READ; for writes it is the anonymous one. */
static nfsstat4 nfs4_check_special_io(struct nfs4_compound *c, bool bypass, bool write)
{
    bypass = bypass && !write;
    /* During grace a reclaiming client may still re-establish a deny reservation: I/O
     * without state could break it (RFC 7530 9.6.3.4), as knfsd refuses it too. */
    if (!bypass && state_in_grace(c->srv->state))
        return NFS4ERR_GRACE;
    size_t klen;
    const void *key = nfs4_file_key(&c->cur, &klen);
    enum state_status r = state_file_check_anon_io(c->srv->state, key, klen, write, bypass);
    if (r == STATE_ERR_SHARE_DENIED)
        return NFS4ERR_LOCKED; /* I/O against a deny reservation (RFC 7530 16.23.5) */
    return nfs4_state_status(r);
}

nfsstat4 nfs4_check_io_stateid(struct nfs4_compound *c, const stateid4 *sid, bool write)
{
    stateid4 r;
    nfsstat4 s = nfs4_stateid_resolve(c, sid, &r);
    if (s != NFS4_OK)
        return s;
    struct state_stateid ss;
    nfs4_stateid_to_state(&r, &ss);
    switch (state_stateid_special(&ss)) {
    case STATE_SPECIAL_ANONYMOUS:
        return nfs4_check_special_io(c, false, write);
    case STATE_SPECIAL_BYPASS:
        return nfs4_check_special_io(c, true, write);
    case STATE_SPECIAL_CURRENT: /* 4.1 resolved it above; in 4.0 it is no stateid */
    case STATE_SPECIAL_INVALID:
        return NFS4ERR_BAD_STATEID;
    case STATE_SPECIAL_NONE:
        break;
    }
    struct state_stid *st;
    s = nfs4_stid_lookup(c, &r, STATE_STID_OPEN | STATE_STID_LOCK | STATE_STID_DELEG, 0, &st);
    if (s != NFS4_OK)
        return s;
    enum state_status io = state_stid_check_io(st, write);
    if (io == STATE_OK && write) {
        /* Another client's delegation (a read delegation, since our open excludes
         * write delegations of others) must be recalled before the data changes. */
        size_t klen;
        const void *key = nfs4_file_key(&c->cur, &klen);
        io = state_deleg_conflicts(c->srv->state, key, klen, state_stid_client(st), true);
    }
    state_stid_put(st);
    return nfs4_state_status(io);
}
