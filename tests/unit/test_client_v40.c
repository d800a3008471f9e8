/*
 * client/: the NFSv4.0 pieces of nfs4_v40.c, without a server:
 *  - the seqid-advance rule of RFC 7530 9.1.7 (every status but the eight listed);
 *  - seqids filled into OPEN / OPEN_CONFIRM / OPEN_DOWNGRADE / CLOSE / LOCK (both kinds
 *    of locker) / LOCKU from the two owners' counters, a second op of one owner in a
 *    COMPOUND getting the next one, other ops untouched;
 *  - counters advanced by a reply: per result that consumes the seqid, LOCK with
 *    open_to_lock_owner4 advancing both owners, nothing for ops the COMPOUND stopped
 *    before, for non-consuming statuses, or for a reply whose results are not of these
 *    ops;
 *  - the SETCLIENTID callback address with port 0 (IPv4, IPv6, too small buffers).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "check.h"
#include "client/nfs4_v40.h"

static void test_advance_rule(void)
{
    static const nfsstat4 kept[] = { NFS4ERR_STALE_CLIENTID, NFS4ERR_STALE_STATEID,
                                     NFS4ERR_BAD_STATEID,    NFS4ERR_BAD_SEQID,
                                     NFS4ERR_BADXDR,         NFS4ERR_RESOURCE,
                                     NFS4ERR_NOFILEHANDLE,   NFS4ERR_MOVED };
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
        CHECK(!nfs4_seqid_advances(kept[i]));
    static const nfsstat4 used[] = { NFS4_OK,         NFS4ERR_DENIED,      NFS4ERR_GRACE,
                                     NFS4ERR_INVAL,   NFS4ERR_EXPIRED,     NFS4ERR_OLD_STATEID,
                                     NFS4ERR_NOENT,   NFS4ERR_LOCKS_HELD,  NFS4ERR_SHARE_DENIED,
                                     NFS4ERR_DELAY,   NFS4ERR_NO_GRACE,    NFS4ERR_ACCESS };
    for (size_t i = 0; i < sizeof(used) / sizeof(used[0]); i++)
        CHECK(nfs4_seqid_advances(used[i]));
}

static void test_fill(void)
{
    nfs_argop4 ops[8];
    memset(ops, 0, sizeof(ops));
    ops[0].argop = OP_PUTFH;
    ops[1].argop = OP_OPEN;
    ops[1].opopen.seqid = 999;
    ops[2].argop = OP_LOCK;
    ops[2].oplock.locker.new_lock_owner = true;
    ops[3].argop = OP_LOCK;
    ops[3].oplock.locker.new_lock_owner = false;
    ops[4].argop = OP_LOCKU;
    ops[5].argop = OP_CLOSE;
    ops[6].argop = OP_OPEN_CONFIRM;
    ops[7].argop = OP_OPEN_DOWNGRADE;
    const uint32_t next[NFS4_OWNERS] = { 10, 50 };
    CHECK(nfs4_seqid_ops(ops, 8));
    CHECK(!nfs4_seqid_ops(ops, 1));
    nfs4_seqid_fill(ops, 8, next);
    CHECK_EQ(ops[1].opopen.seqid, 10);
    CHECK_EQ(ops[2].oplock.locker.open_owner.open_seqid, 11);
    CHECK_EQ(ops[2].oplock.locker.open_owner.lock_seqid, 50);
    CHECK_EQ(ops[3].oplock.locker.lock_owner.lock_seqid, 51);
    CHECK_EQ(ops[4].oplocku.seqid, 52);
    CHECK_EQ(ops[5].opclose.seqid, 12);
    CHECK_EQ(ops[6].opopen_confirm.seqid, 13);
    CHECK_EQ(ops[7].opopen_downgrade.seqid, 14);
    /* the counters themselves only move with replies */
    CHECK_EQ(next[NFS4_OWNER_OPEN], 10);
    CHECK_EQ(next[NFS4_OWNER_LOCK], 50);
    /* a resend with the same counters carries the same seqids */
    nfs4_seqid_fill(ops, 8, next);
    CHECK_EQ(ops[1].opopen.seqid, 10);
    CHECK_EQ(ops[4].oplocku.seqid, 52);
}

/* A reply with n results: statuses st[i] for ops[i]. */
static COMPOUND4res reply(nfs_resop4 *res, const nfs_argop4 *ops, const nfsstat4 *st, uint32_t n)
{
    memset(res, 0, n * sizeof(*res));
    for (uint32_t i = 0; i < n; i++) {
        res[i].resop = ops[i].argop;
        switch (ops[i].argop) {
        case OP_PUTFH: res[i].opputfh.status = st[i]; break;
        case OP_OPEN: res[i].opopen.status = st[i]; break;
        case OP_OPEN_CONFIRM: res[i].opopen_confirm.status = st[i]; break;
        case OP_CLOSE: res[i].opclose.status = st[i]; break;
        case OP_LOCK: res[i].oplock.status = st[i]; break;
        case OP_LOCKU: res[i].oplocku.status = st[i]; break;
        default: break;
        }
    }
    COMPOUND4res r;
    memset(&r, 0, sizeof(r));
    r.status = n ? st[n - 1] : NFS4_OK;
    r.resarray.len = n;
    r.resarray.val = res;
    return r;
}

static void test_update(void)
{
    nfs_argop4 ops[3];
    nfs_resop4 res[3];
    memset(ops, 0, sizeof(ops));
    ops[0].argop = OP_PUTFH;
    ops[1].argop = OP_OPEN;
    ops[2].argop = OP_GETFH;
    uint32_t next[NFS4_OWNERS] = { 1, 7 };

    /* OPEN succeeded: the open owner's seqid moves */
    COMPOUND4res r = reply(res, ops, (nfsstat4[]){ NFS4_OK, NFS4_OK, NFS4_OK }, 3);
    CHECK_EQ(nfs4_seqid_update(ops, 3, &r, next), 1);
    CHECK_EQ(next[NFS4_OWNER_OPEN], 2);
    CHECK_EQ(next[NFS4_OWNER_LOCK], 7);
    /* refused with a consuming error (NOENT): moves too */
    r = reply(res, ops, (nfsstat4[]){ NFS4_OK, NFS4ERR_NOENT }, 2);
    CHECK_EQ(nfs4_seqid_update(ops, 3, &r, next), 1);
    CHECK_EQ(next[NFS4_OWNER_OPEN], 3);
    /* BAD_SEQID / STALE_CLIENTID: the server's sequence did not move, nor does ours */
    r = reply(res, ops, (nfsstat4[]){ NFS4_OK, NFS4ERR_BAD_SEQID }, 2);
    CHECK_EQ(nfs4_seqid_update(ops, 3, &r, next), 0);
    r = reply(res, ops, (nfsstat4[]){ NFS4_OK, NFS4ERR_STALE_CLIENTID }, 2);
    CHECK_EQ(nfs4_seqid_update(ops, 3, &r, next), 0);
    CHECK_EQ(next[NFS4_OWNER_OPEN], 3);
    /* PUTFH failed: OPEN never ran */
    r = reply(res, ops, (nfsstat4[]){ NFS4ERR_STALE }, 1);
    CHECK_EQ(nfs4_seqid_update(ops, 3, &r, next), 0);
    CHECK_EQ(next[NFS4_OWNER_OPEN], 3);
    /* a reply that is not to these ops (an empty one, or other results) tells nothing */
    r = reply(res, ops, NULL, 0);
    CHECK_EQ(nfs4_seqid_update(ops, 3, &r, next), 0);
    r = reply(res, ops, (nfsstat4[]){ NFS4_OK, NFS4_OK }, 2);
    res[0].resop = OP_PUTROOTFH;
    CHECK_EQ(nfs4_seqid_update(ops, 3, &r, next), 0);
    CHECK_EQ(next[NFS4_OWNER_OPEN], 3);

    /* LOCK with open_to_lock_owner4: DENIED consumes both owners' seqids */
    ops[1].argop = OP_LOCK;
    ops[1].oplock.locker.new_lock_owner = true;
    r = reply(res, ops, (nfsstat4[]){ NFS4_OK, NFS4ERR_DENIED }, 2);
    CHECK_EQ(nfs4_seqid_update(ops, 2, &r, next), 2);
    CHECK_EQ(next[NFS4_OWNER_OPEN], 4);
    CHECK_EQ(next[NFS4_OWNER_LOCK], 8);
    /* exist_lock_owner4: the lock owner's alone */
    ops[1].oplock.locker.new_lock_owner = false;
    r = reply(res, ops, (nfsstat4[]){ NFS4_OK, NFS4_OK }, 2);
    CHECK_EQ(nfs4_seqid_update(ops, 2, &r, next), 1);
    CHECK_EQ(next[NFS4_OWNER_OPEN], 4);
    CHECK_EQ(next[NFS4_OWNER_LOCK], 9);
    /* LOCKU then CLOSE in one COMPOUND, both done */
    ops[1].argop = OP_LOCKU;
    ops[2].argop = OP_CLOSE;
    r = reply(res, ops, (nfsstat4[]){ NFS4_OK, NFS4_OK, NFS4ERR_LOCKS_HELD }, 3);
    CHECK_EQ(nfs4_seqid_update(ops, 3, &r, next), 2);
    CHECK_EQ(next[NFS4_OWNER_OPEN], 5);
    CHECK_EQ(next[NFS4_OWNER_LOCK], 10);
    /* more results than ops (a malformed reply): only the ops' own count */
    r = reply(res, ops, (nfsstat4[]){ NFS4_OK, NFS4_OK, NFS4_OK }, 3);
    CHECK_EQ(nfs4_seqid_update(ops, 2, &r, next), 1);
    CHECK_EQ(next[NFS4_OWNER_LOCK], 11);
}

/* A request given up on: its seqids are assumed consumed; BAD_SEQID on the owner's
 * next request takes the step back once; a confirming reply clears the doubt. */
static void test_abandoned(void)
{
    nfs_argop4 ops[2];
    nfs_resop4 res[2];
    memset(ops, 0, sizeof(ops));
    ops[0].argop = OP_PUTFH;
    ops[1].argop = OP_LOCK;
    ops[1].oplock.locker.new_lock_owner = true;
    uint32_t next[NFS4_OWNERS] = { 5, 9 };
    bool uncertain[NFS4_OWNERS] = { false, false };

    /* open_to_lock_owner4 LOCK lost: both owners assumed advanced */
    nfs4_seqid_assume(ops, 2, next, uncertain);
    CHECK_EQ(next[NFS4_OWNER_OPEN], 6);
    CHECK_EQ(next[NFS4_OWNER_LOCK], 10);
    CHECK(uncertain[NFS4_OWNER_OPEN] && uncertain[NFS4_OWNER_LOCK]);
    /* the server had not run it: the next OPEN gets BAD_SEQID, the open owner steps
     * back, once (a second BAD_SEQID is a real error) */
    ops[1].argop = OP_OPEN;
    CHECK(nfs4_seqid_step_back(ops, 2, next, uncertain));
    CHECK_EQ(next[NFS4_OWNER_OPEN], 5);
    CHECK(!uncertain[NFS4_OWNER_OPEN]);
    CHECK(!nfs4_seqid_step_back(ops, 2, next, uncertain));
    CHECK_EQ(next[NFS4_OWNER_OPEN], 5);
    /* the lock owner is still in doubt until a reply confirms its seqid */
    CHECK(uncertain[NFS4_OWNER_LOCK]);
    ops[1].argop = OP_LOCKU;
    COMPOUND4res r = reply(res, ops, (nfsstat4[]){ NFS4_OK, NFS4ERR_BAD_SEQID }, 2);
    nfs4_seqid_known(ops, 2, &r, uncertain); /* BAD_SEQID confirms nothing */
    CHECK(uncertain[NFS4_OWNER_LOCK]);
    r = reply(res, ops, (nfsstat4[]){ NFS4ERR_STALE }, 1);
    nfs4_seqid_known(ops, 2, &r, uncertain); /* LOCKU never ran */
    CHECK(uncertain[NFS4_OWNER_LOCK]);
    r = reply(res, ops, (nfsstat4[]){ NFS4_OK, NFS4ERR_LOCK_RANGE }, 2);
    nfs4_seqid_known(ops, 2, &r, uncertain);
    CHECK(!uncertain[NFS4_OWNER_LOCK]);
    CHECK(!nfs4_seqid_step_back(ops, 2, next, uncertain));
    CHECK_EQ(next[NFS4_OWNER_LOCK], 10);
    /* ops without owners change nothing */
    ops[1].argop = OP_GETATTR;
    nfs4_seqid_assume(ops, 2, next, uncertain);
    CHECK_EQ(next[NFS4_OWNER_OPEN], 5);
    CHECK_EQ(next[NFS4_OWNER_LOCK], 10);
    CHECK(!uncertain[NFS4_OWNER_OPEN] && !uncertain[NFS4_OWNER_LOCK]);
}

static void test_uaddr(void)
{
    char netid[8], uaddr[64];
    struct sockaddr_in a4;
    memset(&a4, 0, sizeof(a4));
    a4.sin_family = AF_INET;
    a4.sin_port = htons(1234); /* ignored: the callback port is 0 */
    inet_pton(AF_INET, "192.0.2.7", &a4.sin_addr);
    CHECK_EQ(nfs4_uaddr_port0((struct sockaddr *)&a4, netid, sizeof(netid), uaddr, sizeof(uaddr)), 0);
    CHECK(strcmp(netid, "tcp") == 0);
    CHECK(strcmp(uaddr, "192.0.2.7.0.0") == 0);
    struct sockaddr_in6 a6;
    memset(&a6, 0, sizeof(a6));
    a6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::1", &a6.sin6_addr);
    CHECK_EQ(nfs4_uaddr_port0((struct sockaddr *)&a6, netid, sizeof(netid), uaddr, sizeof(uaddr)), 0);
    CHECK(strcmp(netid, "tcp6") == 0);
    CHECK(strcmp(uaddr, "::1.0.0") == 0);
    CHECK_EQ(nfs4_uaddr_port0((struct sockaddr *)&a4, netid, sizeof(netid), uaddr, 13), -ENOSPC);
    CHECK_EQ(nfs4_uaddr_port0((struct sockaddr *)&a4, netid, 3, uaddr, sizeof(uaddr)), -ENOSPC);
    struct sockaddr un = { .sa_family = AF_UNIX };
    CHECK_EQ(nfs4_uaddr_port0(&un, netid, sizeof(netid), uaddr, sizeof(uaddr)), -EAFNOSUPPORT);
}

int main(void)
{
    test_advance_rule();
    test_fill();
    test_update();
    test_abandoned();
    test_uaddr();
    return check_report("test_client_v40");
}
