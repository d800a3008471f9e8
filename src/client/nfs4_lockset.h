/*
 * The byte ranges one lock owner holds on one file, as the client must know them to
 * reclaim them after a server restart (RFC 8881 8.4.2.1: LOCK with reclaim = true for
 * every lock held). Pure bookkeeping, unit-tested on its own.
 *
 * POSIX semantics for a single owner: a new lock replaces whatever the owner held over
 * its range (upgrade, downgrade, merge are the server's business), an unlock removes
 * its range, splitting a lock it cuts through. So the ranges kept are disjoint, and
 * replaying them in any order re-creates exactly what the owner holds.
 */
#ifndef PEERNFS_CLIENT_NFS4_LOCKSET_H
#define PEERNFS_CLIENT_NFS4_LOCKSET_H

#include <stdbool.h>
#include <stdint.h>

#define NFS4_LOCKSET_MAX 4096 /* ranges per (owner, file); beyond: -ENOLCK */

struct nfs4_lock_range {
    uint64_t off, end; /* [off, end); end UINT64_MAX = to the end of the file */
    bool write;
};

struct nfs4_lockset {
    uint32_t n, cap;
    struct nfs4_lock_range *r;
};

/* len 0 = to the end of the file (as LOCK's length NFS4_UINT64_MAX). 0, -ENOMEM or
 * -ENOLCK; on failure the set is unchanged. */
int nfs4_lockset_add(struct nfs4_lockset *s, bool write, uint64_t off, uint64_t len);
int nfs4_lockset_remove(struct nfs4_lockset *s, uint64_t off, uint64_t len);
/* A deep copy (dst must be empty / zeroed); 0 or -ENOMEM. */
int nfs4_lockset_copy(struct nfs4_lockset *dst, const struct nfs4_lockset *src);
void nfs4_lockset_clear(struct nfs4_lockset *s);
/* The length to put on the wire for a range (NFS4_UINT64_MAX = to the end). */
uint64_t nfs4_lock_range_len(const struct nfs4_lock_range *r);

#endif
