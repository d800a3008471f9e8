/*
 * The NFSv4 status tables: backend errno values and state/ results to nfsstat4, in one
 * place (design.md: protocol errors map in one table per protocol).
 */
#include <errno.h>

#include "nfs4/nfs4_internal.h"

nfsstat4 nfs4_errno(int err)
{
    if (err < 0)
        err = -err;
    switch (err) {
    case 0: return NFS4_OK;
    case EPERM: return NFS4ERR_PERM;
    case ENOENT: return NFS4ERR_NOENT;
    case EIO: return NFS4ERR_IO;
    case ENXIO: case ENODEV: return NFS4ERR_NXIO;
    case EACCES: return NFS4ERR_ACCESS;
    case EEXIST: return NFS4ERR_EXIST;
    case EXDEV: return NFS4ERR_XDEV;
    case ENOTDIR: return NFS4ERR_NOTDIR;
    case EISDIR: return NFS4ERR_ISDIR;
    case EINVAL: return NFS4ERR_INVAL;
    case EFBIG: return NFS4ERR_FBIG;
    case ENOSPC: return NFS4ERR_NOSPC;
    case EROFS: return NFS4ERR_ROFS;
    case EMLINK: return NFS4ERR_MLINK;
    case ENAMETOOLONG: return NFS4ERR_NAMETOOLONG;
    case ENOTEMPTY: return NFS4ERR_NOTEMPTY;
    case EDQUOT: return NFS4ERR_DQUOT;
    case ESTALE: return NFS4ERR_STALE;
    case EBADF: case EBADMSG: return NFS4ERR_BADHANDLE;
    case ELOOP: return NFS4ERR_SYMLINK;
    case EOPNOTSUPP: return NFS4ERR_NOTSUPP; /* = ENOTSUP on Linux: no xattrs there */
    case EAGAIN: case ETXTBSY: return NFS4ERR_DELAY;
    case ENOMEM: case EMFILE: case ENFILE: return NFS4ERR_RESOURCE;
    /* RFC 8276 extended attributes: a value or list larger than the room given or
     * than the filesystem takes (ERANGE / E2BIG), and a name that is not there */
    case ERANGE: case E2BIG: return NFS4ERR_XATTR2BIG;
    case ENODATA: return NFS4ERR_NOXATTR;
    case ESPIPE: return NFS4ERR_INVAL;
    default: return NFS4ERR_SERVERFAULT;
    }
}

nfsstat4 nfs4_state_status(enum state_status st)
{
    switch (st) {
    case STATE_OK: return NFS4_OK;
    case STATE_ERR_STALE_CLIENTID: return NFS4ERR_STALE_CLIENTID;
    case STATE_ERR_EXPIRED: return NFS4ERR_EXPIRED;
    case STATE_ERR_BAD_STATEID: return NFS4ERR_BAD_STATEID;
    case STATE_ERR_OLD_STATEID: return NFS4ERR_OLD_STATEID;
    case STATE_ERR_STALE_STATEID: return NFS4ERR_STALE_STATEID;
    case STATE_ERR_BAD_SEQID: return NFS4ERR_BAD_SEQID;
    case STATE_ERR_REPLAY: return NFS4_OK; /* the caller sends the cached reply */
    case STATE_ERR_BADSESSION: return NFS4ERR_BADSESSION;
    case STATE_ERR_BADSLOT: return NFS4ERR_BADSLOT;
    case STATE_ERR_SEQ_MISORDERED: return NFS4ERR_SEQ_MISORDERED;
    case STATE_ERR_SEQ_FALSE_RETRY: return NFS4ERR_SEQ_FALSE_RETRY;
    case STATE_ERR_RETRY_UNCACHED_REP: return NFS4ERR_RETRY_UNCACHED_REP;
    case STATE_ERR_REP_TOO_BIG_TO_CACHE: return NFS4ERR_REP_TOO_BIG_TO_CACHE;
    case STATE_ERR_DELAY: return NFS4ERR_DELAY;
    case STATE_ERR_GRACE: return NFS4ERR_GRACE;
    case STATE_ERR_NO_GRACE: return NFS4ERR_NO_GRACE;
    case STATE_ERR_RECLAIM_BAD: return NFS4ERR_RECLAIM_BAD;
    case STATE_ERR_COMPLETE_ALREADY: return NFS4ERR_COMPLETE_ALREADY;
    case STATE_ERR_CLID_INUSE: return NFS4ERR_CLID_INUSE;
    case STATE_ERR_NOT_SAME: return NFS4ERR_NOT_SAME;
    case STATE_ERR_PERM: return NFS4ERR_PERM;
    case STATE_ERR_NOENT: return NFS4ERR_NOENT;
    case STATE_ERR_CLIENTID_BUSY: return NFS4ERR_CLIENTID_BUSY;
    case STATE_ERR_SHARE_DENIED: return NFS4ERR_SHARE_DENIED;
    case STATE_ERR_LOCKED: return NFS4ERR_LOCKED;
    case STATE_ERR_DENIED: return NFS4ERR_DENIED;
    case STATE_ERR_ADMIN_REVOKED: return NFS4ERR_ADMIN_REVOKED;
    case STATE_ERR_DELEG_REVOKED: return NFS4ERR_DELEG_REVOKED;
    case STATE_ERR_LOCKS_HELD: return NFS4ERR_LOCKS_HELD;
    case STATE_ERR_OPENMODE: return NFS4ERR_OPENMODE;
    case STATE_ERR_INVAL: return NFS4ERR_INVAL;
    case STATE_ERR_TOOSMALL: return NFS4ERR_TOOSMALL;
    case STATE_ERR_RESOURCE: return NFS4ERR_RESOURCE;
    case STATE_ERR_SERVERFAULT: return NFS4ERR_SERVERFAULT;
    case STATE_ERR_NOT_ONLY_OP: return NFS4ERR_NOT_ONLY_OP;
    case STATE_ERR_CONN_NOT_BOUND_TO_SESSION: return NFS4ERR_CONN_NOT_BOUND_TO_SESSION;
    case STATE_ERR_CB_PATH_DOWN: return NFS4ERR_CB_PATH_DOWN;
    case STATE_ERR_BAD_SESSION_DIGEST: return NFS4ERR_BAD_SESSION_DIGEST;
    case STATE_ERR_WRONG_CRED: return NFS4ERR_WRONG_CRED;
    case STATE_ERR_SEQUENCE_POS: return NFS4ERR_SEQUENCE_POS;
    }
    return NFS4ERR_SERVERFAULT;
}
