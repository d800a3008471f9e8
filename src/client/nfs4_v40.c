#include "client/nfs4_v40.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>

bool nfs4_seqid_advances(nfsstat4 status)
{
    switch (status) {
    case NFS4ERR_STALE_CLIENTID:
    case NFS4ERR_STALE_STATEID:
    case NFS4ERR_BAD_STATEID:
    case NFS4ERR_BAD_SEQID:
    case NFS4ERR_BADXDR:
    case NFS4ERR_RESOURCE:
    case NFS4ERR_NOFILEHANDLE:
    case NFS4ERR_MOVED:
        return false;
    default:
        return true;
    }
}

/* The owners whose seqids op carries, in the order of op_seqid_fields. */
static unsigned op_owners(const nfs_argop4 *o, enum nfs4_owner owners[2])
{
    switch (o->argop) {
    case OP_OPEN:
    case OP_OPEN_CONFIRM:
    case OP_OPEN_DOWNGRADE:
    case OP_CLOSE:
        owners[0] = NFS4_OWNER_OPEN;
        return 1;
    case OP_LOCK:
        if (o->oplock.locker.new_lock_owner) {
            owners[0] = NFS4_OWNER_OPEN;
            owners[1] = NFS4_OWNER_LOCK;
            return 2;
        }
        owners[0] = NFS4_OWNER_LOCK;
        return 1;
    case OP_LOCKU:
        owners[0] = NFS4_OWNER_LOCK;
        return 1;
    default:
        return 0;
    }
}

/* Where op keeps those seqids. */
static void op_seqid_fields(nfs_argop4 *o, uint32_t *fields[2])
{
    switch (o->argop) {
    case OP_OPEN: fields[0] = &o->opopen.seqid; break;
    case OP_OPEN_CONFIRM: fields[0] = &o->opopen_confirm.seqid; break;
    case OP_OPEN_DOWNGRADE: fields[0] = &o->opopen_downgrade.seqid; break;
    case OP_CLOSE: fields[0] = &o->opclose.seqid; break;
    case OP_LOCKU: fields[0] = &o->oplocku.seqid; break;
    case OP_LOCK:
        if (o->oplock.locker.new_lock_owner) {
            fields[0] = &o->oplock.locker.open_owner.open_seqid;
            fields[1] = &o->oplock.locker.open_owner.lock_seqid;
        } else {
            fields[0] = &o->oplock.locker.lock_owner.lock_seqid;
        }
        break;
    default: break;
    }
}

bool nfs4_seqid_ops(const nfs_argop4 *ops, uint32_t n)
{
    enum nfs4_owner owners[2];
    for (uint32_t i = 0; i < n; i++)
        if (op_owners(&ops[i], owners))
            return true;
    return false;
}

void nfs4_seqid_fill(nfs_argop4 *ops, uint32_t n, const uint32_t next[NFS4_OWNERS])
{
    uint32_t seq[NFS4_OWNERS] = { next[NFS4_OWNER_OPEN], next[NFS4_OWNER_LOCK] };
    for (uint32_t i = 0; i < n; i++) {
        enum nfs4_owner owners[2];
        uint32_t *fields[2] = { NULL, NULL };
        unsigned k = op_owners(&ops[i], owners);
        op_seqid_fields(&ops[i], fields);
        for (unsigned j = 0; j < k; j++)
            *fields[j] = seq[owners[j]]++;
    }
}

/* The status of a result (every nfs_resop4 arm starts with it). */
static nfsstat4 result_status(const nfs_resop4 *r)
{
    switch (r->resop) {
    case OP_OPEN: return r->opopen.status;
    case OP_OPEN_CONFIRM: return r->opopen_confirm.status;
    case OP_OPEN_DOWNGRADE: return r->opopen_downgrade.status;
    case OP_CLOSE: return r->opclose.status;
    case OP_LOCK: return r->oplock.status;
    case OP_LOCKU: return r->oplocku.status;
    default: return NFS4ERR_SERVERFAULT;
    }
}

unsigned nfs4_seqid_update(const nfs_argop4 *ops, uint32_t n, const COMPOUND4res *res,
                           uint32_t next[NFS4_OWNERS])
{
    unsigned used = 0;
    for (uint32_t i = 0; i < n && i < res->resarray.len; i++) {
        const nfs_resop4 *r = &res->resarray.val[i];
        if (r->resop != ops[i].argop)
            break; /* not the reply to these ops: nothing can be told */
        enum nfs4_owner owners[2];
        unsigned k = op_owners(&ops[i], owners);
        if (k == 0 || !nfs4_seqid_advances(result_status(r)))
            continue;
        for (unsigned j = 0; j < k; j++)
            next[owners[j]]++;
        used += k;
    }
    return used;
}

void nfs4_seqid_assume(const nfs_argop4 *ops, uint32_t n, uint32_t next[NFS4_OWNERS],
                       bool uncertain[NFS4_OWNERS])
{
    for (uint32_t i = 0; i < n; i++) {
        enum nfs4_owner owners[2];
        unsigned k = op_owners(&ops[i], owners);
        for (unsigned j = 0; j < k; j++) {
            next[owners[j]]++;
            uncertain[owners[j]] = true;
        }
    }
}

bool nfs4_seqid_step_back(const nfs_argop4 *ops, uint32_t n, uint32_t next[NFS4_OWNERS],
                          bool uncertain[NFS4_OWNERS])
{
    bool stepped = false;
    for (uint32_t i = 0; i < n; i++) {
        enum nfs4_owner owners[2];
        unsigned k = op_owners(&ops[i], owners);
        for (unsigned j = 0; j < k; j++) {
            if (uncertain[owners[j]]) {
                next[owners[j]]--;
                uncertain[owners[j]] = false;
                stepped = true;
            }
        }
    }
    return stepped;
}

void nfs4_seqid_known(const nfs_argop4 *ops, uint32_t n, const COMPOUND4res *res,
                      bool uncertain[NFS4_OWNERS])
{
    for (uint32_t i = 0; i < n && i < res->resarray.len; i++) {
        const nfs_resop4 *r = &res->resarray.val[i];
        if (r->resop != ops[i].argop)
            break;
        enum nfs4_owner owners[2];
        unsigned k = op_owners(&ops[i], owners);
        if (k == 0 || result_status(r) == NFS4ERR_BAD_SEQID)
            continue;
        for (unsigned j = 0; j < k; j++)
            uncertain[owners[j]] = false;
    }
}

int nfs4_uaddr_port0(const struct sockaddr *sa, char *netid, size_t netid_len, char *uaddr,
                     size_t uaddr_len)
{
    char host[INET6_ADDRSTRLEN];
    const char *id;
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, host, sizeof(host));
        id = "tcp";
    } else if (sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, host, sizeof(host));
        id = "tcp6";
    } else {
        return -EAFNOSUPPORT;
    }
    int a = snprintf(netid, netid_len, "%s", id);
    int b = snprintf(uaddr, uaddr_len, "%s.0.0", host);
    if (a < 0 || (size_t)a >= netid_len || b < 0 || (size_t)b >= uaddr_len)
        return -ENOSPC;
    return 0;
}
