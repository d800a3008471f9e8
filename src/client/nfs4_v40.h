/*
 * What NFSv4.0 (RFC 7530) needs beyond the 4.1 client, as pure functions (no locks, no
 * network; tests/unit/test_client_v40.c):
 *  - owner seqids (RFC 7530 9.1.7): 4.0 has no sessions, so OPEN, OPEN_CONFIRM,
 *    OPEN_DOWNGRADE, CLOSE, LOCK and LOCKU carry the sequence number of their open or
 *    lock owner; the server answers a repeated seqid from its per-owner reply cache. The
 *    client keeps the next seqid per owner, puts it into each request when it is sent
 *    (so a retransmission after a lost reply carries the same one) and advances it by
 *    what the reply says;
 *  - the callback address SETCLIENTID gives the server.
 */
#ifndef PEERNFS_CLIENT_NFS4_V40_H
#define PEERNFS_CLIENT_NFS4_V40_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "xdr/nfs4_xdr.h"

/* The client instance's two owners (one of each, as in 4.1). */
enum nfs4_owner { NFS4_OWNER_OPEN, NFS4_OWNER_LOCK, NFS4_OWNERS };

/* Does a seqid-mutating op's result with this status consume the owner's seqid? Every
 * status does except STALE_CLIENTID, STALE_STATEID, BAD_STATEID, BAD_SEQID, BADXDR,
 * RESOURCE, NOFILEHANDLE and MOVED (RFC 7530 9.1.7): those leave the server's sequence
 * where it was. */
bool nfs4_seqid_advances(nfsstat4 status);

/* Does ops[0..n) hold a seqid-mutating op? */
bool nfs4_seqid_ops(const nfs_argop4 *ops, uint32_t n);

/* Put the owners' next seqids (next[NFS4_OWNER_*]) into the seqid-mutating ops of
 * ops[0..n): LOCK with open_to_lock_owner4 takes both (open_seqid, lock_seqid). A second
 * op of the same owner in one COMPOUND gets the seqid after the first's. */
void nfs4_seqid_fill(nfs_argop4 *ops, uint32_t n, const uint32_t next[NFS4_OWNERS]);

/* After the reply res to ops[0..n) (the COMPOUND as sent: res's results are in the same
 * order): advance next[] once per seqid-mutating op that has a result whose status
 * consumes the seqid. Ops without a result (the COMPOUND stopped before them) consume
 * nothing. Returns how many seqids were consumed. */
unsigned nfs4_seqid_update(const nfs_argop4 *ops, uint32_t n, const COMPOUND4res *res,
                           uint32_t next[NFS4_OWNERS]);

/*
 * A request given up on after it went out (no reply: timed out, connection lost for
 * good, or an undecodable reply): the server may or may not have consumed its seqids.
 * nfs4_seqid_assume advances next[] as if it had (once per seqid-mutating op, as a reply
 * would) and marks those owners uncertain. Were that wrong, the owner's next request gets
 * BAD_SEQID and nfs4_seqid_step_back takes the step back (once), so the request can go
 * out again. Assuming the other way would be worse: a server that did process the lost
 * request would take the same seqid again as a retransmission and answer the NEXT
 * request with the lost one's cached reply. nfs4_seqid_known clears the mark of owners
 * whose seqid a reply confirmed (a result other than BAD_SEQID).
 */
void nfs4_seqid_assume(const nfs_argop4 *ops, uint32_t n, uint32_t next[NFS4_OWNERS],
                       bool uncertain[NFS4_OWNERS]);
bool nfs4_seqid_step_back(const nfs_argop4 *ops, uint32_t n, uint32_t next[NFS4_OWNERS],
                          bool uncertain[NFS4_OWNERS]);
void nfs4_seqid_known(const nfs_argop4 *ops, uint32_t n, const COMPOUND4res *res,
                      bool uncertain[NFS4_OWNERS]);

/* SETCLIENTID's callback location for a client that runs no callback service: the
 * address sa (ours, as the server sees it) with port 0, as a universal address (RFC 5665:
 * "h1.h2.h3.h4.0.0", or IPv6 text + ".0.0") with netid "tcp" / "tcp6". The server's
 * CB_NULL probe of port 0 fails at connect, so it never grants a delegation (RFC 7530
 * 10.2.1: no delegations without a callback path). 0, -EAFNOSUPPORT or -ENOSPC. */
int nfs4_uaddr_port0(const struct sockaddr *sa, char *netid, size_t netid_len, char *uaddr,
                     size_t uaddr_len);

#endif
