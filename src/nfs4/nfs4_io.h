/*
 * What the NFSv4 data and directory operations (nfs4_io.c, nfs4_dir.c) need from the
 * rest of nfs4/, and what they offer it. Not for use outside src/nfs4/.
 *
 * The flags these ops need in the op table (nfs4_compound.c):
 *   READ       NEED_FH | DIRECT
 *   WRITE      NEED_FH | MODIFIES | BLOCKING
 *   COMMIT     NEED_FH | BLOCKING
 *   READDIR    NEED_FH | DIRECT
 *   READLINK   NEED_FH | DIRECT      (the target is read into a stack buffer)
 *   CREATE     NEED_FH | MODIFIES
 *   REMOVE     NEED_FH | MODIFIES
 *   RENAME     NEED_FH | MODIFIES      (the saved filehandle is checked by the handler)
 *   LINK       NEED_FH | MODIFIES      (the saved filehandle is checked by the handler)
 *   SEEK       NEED_FH | MIN_MINOR2
 *   ALLOCATE   NEED_FH | MIN_MINOR2 | MODIFIES | BLOCKING
 *   DEALLOCATE NEED_FH | MIN_MINOR2 | MODIFIES | BLOCKING
 *   READ_PLUS  NEED_FH | MIN_MINOR2 | DIRECT
 */
#ifndef PEERNFS_NFS4_IO_H
#define PEERNFS_NFS4_IO_H

#include <stdbool.h>
#include <sys/stat.h>

#include "nfs4/nfs4_internal.h"

/*
 * May the COMPOUND do I/O on the current filehandle under `sid`? Provided by the
 * open/lock code: resolves the 4.1 current stateid, accepts the anonymous and (for
 * reads) bypass stateids subject to share reservations, checks the open mode
 * (OPENMODE), and answers DELAY while a conflicting delegation is being recalled. POSIX
 * locks are advisory: conflicting byte-range locks never fail ordinary I/O.
 * Defined in nfs4_stateid.c.
 */
nfsstat4 nfs4_check_io_stateid(struct nfs4_compound *c, const stateid4 *sid, bool write);

/*
 * The error for an object of type `mode` where the op needs `want` (S_IFREG or S_IFDIR),
 * or NFS4_OK. 4.0 (RFC 7530) knows only ISDIR / NOTDIR / INVAL here; 4.1 (RFC 8881
 * 18.22.3 and 15.1.2) tells symlinks (SYMLINK) and other types (WRONG_TYPE) apart.
 */
static inline nfsstat4 nfs4_want_type(uint32_t minor, mode_t mode, mode_t want)
{
    mode_t fmt = mode & S_IFMT;
    if (fmt == want)
        return NFS4_OK;
    if (want == S_IFDIR)
        return minor >= 1 && fmt == S_IFLNK ? NFS4ERR_SYMLINK : NFS4ERR_NOTDIR;
    if (fmt == S_IFDIR)
        return NFS4ERR_ISDIR;
    if (minor == 0)
        return NFS4ERR_INVAL;
    return fmt == S_IFLNK ? NFS4ERR_SYMLINK : NFS4ERR_WRONG_TYPE;
}

/* The error for a reply that does not fit: RESOURCE in 4.0, REP_TOO_BIG in 4.1+. */
static inline nfsstat4 nfs4_reply_too_big(const struct nfs4_compound *c)
{
    return c->minor == 0 ? NFS4ERR_RESOURCE : NFS4ERR_REP_TOO_BIG;
}

#endif
