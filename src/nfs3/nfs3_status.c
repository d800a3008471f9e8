/*
 * errno -> nfsstat3: the one table that maps backend errors to NFSv3 statuses.
 *
 * Backend operations return negative errnos (fs/fs.h); everything an NFSv3 handler
 * reports to a client after calling the backend goes through nfs3_status(). Errors
 * without an NFSv3 equivalent become NFS3ERR_SERVERFAULT, except transient resource
 * shortages, which become NFS3ERR_JUKEBOX so that the client retries later.
 */
#include <errno.h>

#include "nfs3/nfs3_proc.h"

static const struct {
    int err;
    nfsstat3 status;
} nfs3_errno_table[] = {
    {EPERM, NFS3ERR_PERM},
    {ENOENT, NFS3ERR_NOENT},
    {EIO, NFS3ERR_IO},
    {ENXIO, NFS3ERR_NXIO},
    {EACCES, NFS3ERR_ACCES},
    {EEXIST, NFS3ERR_EXIST},
    {EXDEV, NFS3ERR_XDEV},
    {ENODEV, NFS3ERR_NODEV},
    {ENOTDIR, NFS3ERR_NOTDIR},
    {EISDIR, NFS3ERR_ISDIR},
    {EINVAL, NFS3ERR_INVAL},
    {EFBIG, NFS3ERR_FBIG},
    {ENOSPC, NFS3ERR_NOSPC},
    {EROFS, NFS3ERR_ROFS},
    {EMLINK, NFS3ERR_MLINK},
    {ENAMETOOLONG, NFS3ERR_NAMETOOLONG},
    {ENOTEMPTY, NFS3ERR_NOTEMPTY},
    {EDQUOT, NFS3ERR_DQUOT},
    {ESTALE, NFS3ERR_STALE},
    {EREMOTE, NFS3ERR_REMOTE},
    /* fs getattr: a malformed backend handle; fh_unwrap: a forged one */
    {EBADF, NFS3ERR_BADHANDLE},
    {EBADMSG, NFS3ERR_BADHANDLE},
    {EOPNOTSUPP, NFS3ERR_NOTSUPP},
    /* a symlink where the operation needs something else (the backend never follows) */
    {ELOOP, NFS3ERR_INVAL},
    {ETXTBSY, NFS3ERR_ACCES},
    {EOVERFLOW, NFS3ERR_FBIG},
    {E2BIG, NFS3ERR_FBIG},
    {EBUSY, NFS3ERR_ACCES},
    {EAGAIN, NFS3ERR_JUKEBOX},
    {ENOMEM, NFS3ERR_JUKEBOX},
    {EMFILE, NFS3ERR_JUKEBOX},
    {ENFILE, NFS3ERR_JUKEBOX},
};

nfsstat3 nfs3_status(int err)
{
    if (err == 0)
        return NFS3_OK;
    if (err < 0)
        err = -err;
    for (size_t i = 0; i < sizeof(nfs3_errno_table) / sizeof(nfs3_errno_table[0]); i++)
        if (nfs3_errno_table[i].err == err)
            return nfs3_errno_table[i].status;
    return NFS3ERR_SERVERFAULT;
}
