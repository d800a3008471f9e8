#!/usr/bin/env python3
"""An NFSv4.1 back channel that breaks (RFC 8881 2.10.3.1, 18.46.3, 10.2, 10.4.6).

A raw NFSv4.1 client creates its session on connection A with CONN_BACK_CHAN and binds
a second connection B for the fore channel only (BIND_CONN_TO_SESSION CDFC4_FORE). Then
A is dropped:
  - SEQUENCE on B reports SEQ4_STATUS_CB_PATH_DOWN and SEQ4_STATUS_CB_PATH_DOWN_SESSION;
  - an OPEN for reading gets no delegation (the server could not recall it);
  - BIND_CONN_TO_SESSION CDFC4_BACK_OR_BOTH on B: the flags clear, an OPEN gets a
    delegation again, and a conflicting OPEN of a second client recalls it over B.
A delegation held while the back channel dies: a conflicting OPEN of another client gets
NFS4ERR_DELAY, the recall cannot be sent, the server revokes the delegation one lease
after the conflict (the holder keeps renewing), the holder's SEQUENCE then carries
RECALLABLE_STATE_REVOKED (until FREE_STATEID), the other client's OPEN succeeds.

    test_nfs4_backchannel.py --peernfsd build/bin/peernfsd [--lease 10]
"""
import argparse
import os
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rpcwire as w  # noqa: E402
from peernfsd_proc import Peernfsd  # noqa: E402
from test_deleg_v3 import (  # noqa: E402
    CB_PROG, NFS4_OK, OP_GETFH, OP_OPEN, OP_PUTFH, OPEN_DELEGATE_NONE, OPEN_DELEGATE_NONE_EXT,
    OPEN_DELEGATE_READ, OPEN_DELEGATE_WRITE, SHARE_ACCESS_READ, SHARE_ACCESS_WRITE, WANT_NO_DELEG, WANT_READ_DELEG,
    Nfs41Client, Xdr, u32, u64)

LEASE = 10
BINARY = None

OP_BACKCHANNEL_CTL, OP_BIND_CONN_TO_SESSION, OP_FREE_STATEID, OP_TEST_STATEID = 40, 41, 45, 55
NFS4ERR_ENCR_ALG_UNSUPP = 10079
AUTH_NONE, AUTH_SYS, RPCSEC_GSS = 0, 1, 6
CDFC4_FORE, CDFC4_BACK_OR_BOTH = 0x1, 0x3
CDFS4_FORE, CDFS4_BOTH = 0x1, 0x3
SEQ4_STATUS_CB_PATH_DOWN = 0x001
SEQ4_STATUS_RECALLABLE_STATE_REVOKED = 0x040
SEQ4_STATUS_CB_PATH_DOWN_SESSION = 0x200
PATH_DOWN = SEQ4_STATUS_CB_PATH_DOWN | SEQ4_STATUS_CB_PATH_DOWN_SESSION
NFS4ERR_DELAY, NFS4ERR_DENIED, NFS4ERR_DELEG_REVOKED = 10008, 10010, 10087
OP_LOCK, OP_LOCKU = 12, 14
READ_LT, WRITE_LT, READW_LT, WRITEW_LT = 1, 2, 3, 4
OPEN4_RESULT_MAY_NOTIFY_LOCK = 0x20
WND4_CONTENTION, WND4_RESOURCE = 1, 2
WND4_NAMES = {0: "NOT_WANTED", 1: "CONTENTION", 2: "RESOURCE", 3: "NOT_SUPP_FTYPE",
              4: "WRITE_DELEG_NOT_SUPP_FTYPE", 5: "NOT_SUPP_UPGRADE", 6: "NOT_SUPP_DOWNGRADE",
              7: "CANCELLED", 8: "IS_DIR"}


class Opened:
    """What OPEN returned."""

    def __init__(self, status, open_sid=None, dtype=None, deleg_sid=None, why=None, fh=None, rflags=0):
        self.status, self.open_sid, self.dtype, self.rflags = status, open_sid, dtype, rflags
        self.deleg_sid, self.why, self.fh = deleg_sid, why, fh


class BackChanClient(Nfs41Client):
    """Nfs41Client (session + back channel on its first connection) that can bind more
    connections to its session and switch the connection it calls on. Callbacks are
    answered on whichever connection it is reading."""

    def __init__(self, port, owner, cb_sec=None):
        self.port = port
        super().__init__(port, owner, cb_sec)
        self.conn_a = self.c
        self.cb_nulls = 0

    def _answer_callback(self, msg):
        x = Xdr(msg)
        xid = x.u32()
        x.u32(), x.u32()
        prog, vers, proc = x.u32(), x.u32(), x.u32()
        if (prog, vers, proc) == (CB_PROG, 1, 0):  # CB_NULL: an empty success
            self.cb_nulls += 1
            self.c.send(w.record(u32(xid) + u32(w.REPLY) + u32(w.MSG_ACCEPTED) + w.auth_none() + u32(w.SUCCESS)))
            return
        super()._answer_callback(msg)

    def bind(self, conn, direction):
        """BIND_CONN_TO_SESSION on conn (alone in its COMPOUND) -> (status, dir granted)."""
        keep, self.c = self.c, conn
        try:
            status, x = self._raw_compound([u32(OP_BIND_CONN_TO_SESSION) + self.sid + u32(direction) + u32(0)])
        finally:
            self.c = keep
        if status != NFS4_OK:
            return status, None
        x.u32(), x.u32()
        if x.fixed(16) != self.sid:
            raise AssertionError("BIND_CONN_TO_SESSION answered for another session")
        return status, x.u32()

    def new_conn(self):
        return w.Conn("127.0.0.1", self.port, timeout=10.0)

    def sequence_flags(self):
        self.compound([])
        return self.seq_flags

    def open2(self, dir_fh, name, access, want):
        """OPEN (no create, deny none, CLAIM_NULL) + GETFH, whatever comes back."""
        owner = u64(self.clientid) + w.opaque(b"open-owner")
        args = (u32(OP_OPEN) + u32(0) + u32(access | want) + u32(0) + owner + u32(0) + u32(0) +
                w.opaque(name.encode()))
        status, x = self.compound([u32(OP_PUTFH) + w.opaque(dir_fh), args, u32(OP_GETFH)])
        if status != NFS4_OK:
            return Opened(status)
        x.u32(), x.u32()  # PUTFH
        x.u32(), x.u32()  # OPEN
        r = Opened(status, open_sid=x.fixed(16))
        x.u32(), x.u64(), x.u64()  # change_info4
        r.rflags = x.u32()
        x.bitmap()
        r.dtype = x.u32()
        if r.dtype in (OPEN_DELEGATE_READ, OPEN_DELEGATE_WRITE):
            r.deleg_sid = x.fixed(16)
            x.u32()  # recall
            if r.dtype == OPEN_DELEGATE_WRITE:
                if x.u32() == 1:
                    x.u64()
                else:
                    x.u32(), x.u32()
            x.u32(), x.u32(), x.u32(), x.opaque()  # nfsace4
        elif r.dtype == OPEN_DELEGATE_NONE_EXT:
            r.why = x.u32()
            if r.why in (WND4_CONTENTION, WND4_RESOURCE):
                x.u32()  # will push / will signal
        x.u32(), x.u32()  # GETFH
        r.fh = x.opaque()
        return r

    def lock(self, fh, open_sid, owner, locktype, offset=0, length=0xFFFFFFFFFFFFFFFF):
        """LOCK with a new lock owner -> (status, lock stateid or the LOCK4denied owner)."""
        locker = u32(1) + u32(0) + open_sid + u32(0) + u64(self.clientid) + w.opaque(owner)
        args = u32(OP_LOCK) + u32(locktype) + u32(0) + u64(offset) + u64(length) + locker
        status, x = self.compound([u32(OP_PUTFH) + w.opaque(fh), args])
        if status not in (NFS4_OK, NFS4ERR_DENIED):
            return status, None
        x.u32(), x.u32()  # PUTFH
        x.u32(), x.u32()  # LOCK
        if status == NFS4_OK:
            return status, x.fixed(16)
        x.u64(), x.u64(), x.u32()
        return status, (x.u64(), x.opaque())

    def unlock(self, fh, lock_sid, locktype=2, offset=0, length=0xFFFFFFFFFFFFFFFF):
        args = u32(OP_LOCKU) + u32(locktype) + u32(0) + lock_sid + u64(offset) + u64(length)
        status, _ = self.compound([u32(OP_PUTFH) + w.opaque(fh), args])
        return status

    def wait_lock_notify(self, timeout):
        """Read this connection until a CB_NOTIFY_LOCK came (answered) or timeout s passed."""
        self.read_callbacks(lambda: self.lock_notifies, timeout)
        return self.lock_notifies.pop(0) if self.lock_notifies else None

    def test_stateid(self, sid):
        status, x = self.compound([u32(OP_TEST_STATEID) + u32(1) + sid])
        if status != NFS4_OK:
            return status
        x.u32(), x.u32()
        if x.u32() != 1:
            raise AssertionError("TEST_STATEID: not one result")
        return x.u32()

    def free_stateid(self, sid):
        status, _ = self.compound([u32(OP_FREE_STATEID) + sid])
        return status


class BackChannel(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Peernfsd(BINARY, exports_opts="rw,no_root_squash,insecure",
                           extra_args=("--grace", "0", "--no-statd", "--lease", str(LEASE))).start()

    @classmethod
    def tearDownClass(cls):
        log = cls.srv.stop_and_cleanup()
        if "Sanitizer" in log or "runtime error:" in log:
            raise AssertionError(f"sanitizer report in the server log:\n{log}")

    def client(self, name, cb_sec=None):
        c = BackChanClient(self.srv.port, f"bc-{self.id()}-{name}".encode(), cb_sec)
        self.addCleanup(lambda: [k.close() for k in (c.conn_a, c.c)])
        return c

    def make_file(self, name, data=b"back channel test\n"):
        with open(os.path.join(self.srv.export, name), "wb") as f:
            f.write(data)

    def log(self):
        return self.srv.read_log()

    def fore_only_conn(self, cl):
        """Binds a new connection B fore-only and makes it the one cl calls on."""
        b = cl.new_conn()
        status, got = cl.bind(b, CDFC4_FORE)
        self.assertEqual((status, got), (NFS4_OK, CDFS4_FORE), "BIND_CONN_TO_SESSION CDFC4_FORE")
        cl.c = b
        self.assertEqual(cl.sequence_flags() & PATH_DOWN, 0, "A still carries the back channel")
        return b

    def drop_back_channel(self, cl, reset=False, within=5):
        """Closes A (reset: with a TCP RST, as a crashed peer or a middlebox would);
        SEQUENCE on B must then report the callback path down."""
        if reset:
            cl.conn_a.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        cl.conn_a.close()
        return self.await_path_down(cl, within, "the back channel's connection closed")

    def await_path_down(self, cl, within, what):
        deadline, flags = time.time() + within, 0
        while time.time() < deadline:
            flags = cl.sequence_flags()
            if flags & PATH_DOWN == PATH_DOWN:
                return flags
            time.sleep(0.1)
        self.fail(f"SEQUENCE sr_status_flags {flags:#x} {within} s after {what}, "
                  f"want CB_PATH_DOWN|CB_PATH_DOWN_SESSION ({PATH_DOWN:#x})\n{self.log()}")

    def test_path_down_then_rebound(self):
        for f in ("d1", "d2", "d3"):
            self.make_file(f)
        cl = self.client("holder")
        root = cl.root_fh(self.srv.export)
        self.assertEqual(cl.sequence_flags(), 0)
        # back channel up: a read delegation
        r = cl.open2(root, "d1", SHARE_ACCESS_READ, WANT_READ_DELEG)
        self.assertEqual((r.status, r.dtype), (NFS4_OK, OPEN_DELEGATE_READ), self.log())
        self.assertEqual(cl.delegreturn(r.fh, r.deleg_sid), NFS4_OK)
        self.assertEqual(cl.close_file(r.fh, r.open_sid), NFS4_OK)

        self.fore_only_conn(cl)
        flags = self.drop_back_channel(cl)
        self.assertEqual(flags & SEQ4_STATUS_RECALLABLE_STATE_REVOKED, 0)

        # no back channel: no delegation (4.1: NONE_EXT, telling why)
        r = cl.open2(root, "d2", SHARE_ACCESS_READ, WANT_READ_DELEG)
        self.assertEqual(r.status, NFS4_OK)
        self.assertIn(r.dtype, (OPEN_DELEGATE_NONE, OPEN_DELEGATE_NONE_EXT),
                      "a delegation granted while the callback path is down")
        print(f"\n  OPEN with the back channel down: delegation type {r.dtype}, why "
              f"{WND4_NAMES.get(r.why, r.why)}", file=sys.stderr)
        self.assertEqual(cl.close_file(r.fh, r.open_sid), NFS4_OK)
        self.assertEqual(cl.sequence_flags() & PATH_DOWN, PATH_DOWN, "still down")

        # B takes the back channel too: flags clear, delegations again
        status, got = cl.bind(cl.c, CDFC4_BACK_OR_BOTH)
        self.assertEqual((status, got), (NFS4_OK, CDFS4_BOTH), "BIND_CONN_TO_SESSION CDFC4_BACK_OR_BOTH")
        self.assertEqual(cl.sequence_flags() & PATH_DOWN, 0, "flags after the rebind")
        r = cl.open2(root, "d3", SHARE_ACCESS_READ, WANT_READ_DELEG)
        self.assertEqual((r.status, r.dtype), (NFS4_OK, OPEN_DELEGATE_READ), self.log())

        # ... and it is recalled over B
        other = self.client("other")
        o = other.open2(other.root_fh(self.srv.export), "d3", SHARE_ACCESS_READ | SHARE_ACCESS_WRITE, 0)
        self.assertEqual(o.status, NFS4ERR_DELAY, "a conflicting OPEN while the delegation is out")
        stateid, fh = cl.wait_recall()
        self.assertEqual((stateid[4:], fh), (r.deleg_sid[4:], r.fh), "CB_RECALL names the delegation and file")
        self.assertEqual(cl.delegreturn(r.fh, r.deleg_sid), NFS4_OK)
        o = other.open2(other.root_fh(self.srv.export), "d3", SHARE_ACCESS_READ | SHARE_ACCESS_WRITE, 0)
        self.assertEqual(o.status, NFS4_OK, "the OPEN after DELEGRETURN")
        self.assertEqual(other.close_file(o.fh, o.open_sid), NFS4_OK)
        self.assertEqual(cl.close_file(r.fh, r.open_sid), NFS4_OK)
        self.assertEqual(cl.sequence_flags() & (PATH_DOWN | SEQ4_STATUS_RECALLABLE_STATE_REVOKED), 0)

    def recall_credential(self, cl, name):
        """cl gets a read delegation on name, another client's OPEN for writing has it
        recalled; returns the credential (flavor, uid, gid, machine name) of the CB_RECALL."""
        root = cl.root_fh(self.srv.export)
        r = cl.open2(root, name, SHARE_ACCESS_READ, WANT_READ_DELEG)
        self.assertEqual((r.status, r.dtype), (NFS4_OK, OPEN_DELEGATE_READ), self.log())
        other = self.client(f"writer-{len(cl.cb_creds)}")
        o = other.open2(other.root_fh(self.srv.export), name, SHARE_ACCESS_READ | SHARE_ACCESS_WRITE, 0)
        self.assertEqual(o.status, NFS4ERR_DELAY, "a conflicting OPEN while the delegation is out")
        cl.wait_recall()
        flavor, body = cl.cb_creds[-1]
        self.assertEqual(cl.delegreturn(r.fh, r.deleg_sid), NFS4_OK)
        self.assertEqual(cl.close_file(r.fh, r.open_sid), NFS4_OK)
        if flavor != AUTH_SYS:
            return flavor, None, None, None
        x = Xdr(body)
        x.u32()  # stamp
        machine = x.opaque()
        return flavor, x.u32(), x.u32(), machine

    def test_callback_credential_from_sec_parms_and_backchannel_ctl(self):
        """CB_RECALL carries the AUTH_SYS credential the client gave in csa_sec_parms, then
        the one BACKCHANNEL_CTL gave (RFC 8881 18.33, 18.36); a list with only RPCSEC_GSS
        is refused and changes nothing."""
        def sys_parms(uid, gid, machine):
            return u32(AUTH_SYS) + u32(7) + w.opaque(machine) + u32(uid) + u32(gid) + u32(1) + u32(gid)
        self.make_file("cred")
        # GSS first (unusable for us), then AUTH_SYS: the AUTH_SYS entry is used
        gss = u32(RPCSEC_GSS) + u32(1) + w.opaque(b"h1") + w.opaque(b"h2")
        cl = self.client("cred", cb_sec=u32(2) + gss + sys_parms(17, 19, b"cbhost"))
        self.assertEqual(self.recall_credential(cl, "cred"), (AUTH_SYS, 17, 19, b"cbhost"))
        status, _ = cl.compound([u32(OP_BACKCHANNEL_CTL) + u32(CB_PROG) + u32(1) + sys_parms(29, 31, b"other")])
        self.assertEqual(status, NFS4_OK, "BACKCHANNEL_CTL with AUTH_SYS")
        self.assertEqual(self.recall_credential(cl, "cred"), (AUTH_SYS, 29, 31, b"other"))
        status, _ = cl.compound([u32(OP_BACKCHANNEL_CTL) + u32(CB_PROG) + u32(1) + gss])
        self.assertEqual(status, NFS4ERR_ENCR_ALG_UNSUPP, "BACKCHANNEL_CTL with RPCSEC_GSS only")
        self.assertEqual(self.recall_credential(cl, "cred"), (AUTH_SYS, 29, 31, b"other"))
        status, _ = cl.compound([u32(OP_BACKCHANNEL_CTL) + u32(CB_PROG) + u32(1) + u32(AUTH_NONE)])
        self.assertEqual(status, NFS4_OK, "BACKCHANNEL_CTL with AUTH_NONE")
        self.assertEqual(self.recall_credential(cl, "cred")[0], AUTH_NONE)

    def test_notify_lock_when_the_conflict_goes(self):
        """A 4.1 client denied a blocking lock (WRITEW_LT) gets CB_NOTIFY_LOCK for its lock
        owner and file once the holder unlocks (another NFSv4 client, then a local process
        on the server), and not for a non-blocking one (WRITE_LT); OPEN said so in its
        rflags (OPEN4_RESULT_MAY_NOTIFY_LOCK)."""
        import fcntl
        self.make_file("nl")
        rw = SHARE_ACCESS_READ | SHARE_ACCESS_WRITE
        holder, waiter = self.client("holder"), self.client("waiter")
        # no write delegation for the holder: the waiter's OPEN would wait for its recall
        h = holder.open2(holder.root_fh(self.srv.export), "nl", rw, WANT_NO_DELEG)
        o = waiter.open2(waiter.root_fh(self.srv.export), "nl", rw, 0)
        self.assertEqual((h.status, o.status), (NFS4_OK, NFS4_OK))
        self.assertTrue(o.rflags & OPEN4_RESULT_MAY_NOTIFY_LOCK, f"OPEN rflags {o.rflags:#x}")
        st, hsid = holder.lock(h.fh, h.open_sid, b"holder-owner", WRITE_LT)
        self.assertEqual(st, NFS4_OK, "the holder's LOCK")
        st, _ = waiter.lock(o.fh, o.open_sid, b"plain-owner", WRITE_LT)
        self.assertEqual(st, NFS4ERR_DENIED, "a non-blocking LOCK in conflict")
        st, _ = waiter.lock(o.fh, o.open_sid, b"waiting-owner", WRITEW_LT)
        self.assertEqual(st, NFS4ERR_DENIED, "a blocking LOCK in conflict")
        self.assertIsNone(waiter.wait_lock_notify(1.0), "CB_NOTIFY_LOCK while the lock is still held")
        t0 = time.time()
        self.assertEqual(holder.unlock(h.fh, hsid), NFS4_OK)
        got = waiter.wait_lock_notify(5.0)
        self.assertIsNotNone(got, f"no CB_NOTIFY_LOCK within 5 s of the unlock\n{self.log()}")
        print(f"\n  CB_NOTIFY_LOCK {time.time() - t0:.3f} s after the LOCKU", file=sys.stderr)
        self.assertEqual(got, (o.fh, waiter.clientid, b"waiting-owner"), "CB_NOTIFY_LOCK names file and owner")
        self.assertIsNone(waiter.wait_lock_notify(0.5), "a second CB_NOTIFY_LOCK (the plain LOCK waits for none)")
        st, wsid = waiter.lock(o.fh, o.open_sid, b"waiting-owner", WRITEW_LT)
        self.assertEqual(st, NFS4_OK, "the waiter's LOCK after the notification")
        self.assertEqual(waiter.unlock(o.fh, wsid), NFS4_OK)

        # a local process on the server holds the lock: its unlock is seen by polling
        with open(os.path.join(self.srv.export, "nl"), "r+b") as f:
            fcntl.lockf(f, fcntl.LOCK_EX)
            st, _ = waiter.lock(o.fh, o.open_sid, b"local-waiter", WRITEW_LT)
            self.assertEqual(st, NFS4ERR_DENIED, "a blocking LOCK against a local process's lock")
            self.assertIsNone(waiter.wait_lock_notify(0.5), "CB_NOTIFY_LOCK while the local lock is held")
            t0 = time.time()
            fcntl.lockf(f, fcntl.LOCK_UN)
            got = waiter.wait_lock_notify(5.0)
        self.assertIsNotNone(got, "no CB_NOTIFY_LOCK within 5 s of the local unlock")
        print(f"  CB_NOTIFY_LOCK {time.time() - t0:.3f} s after the local process's unlock", file=sys.stderr)
        self.assertEqual(got[2], b"local-waiter")
        st, wsid = waiter.lock(o.fh, o.open_sid, b"local-waiter", WRITEW_LT)
        self.assertEqual(st, NFS4_OK, "the LOCK after the local unlock")
        self.assertEqual(waiter.unlock(o.fh, wsid), NFS4_OK)

    def test_recall_over_dead_back_channel_revokes(self):
        self.make_file("r1")
        cl = self.client("holder")
        root = cl.root_fh(self.srv.export)
        r = cl.open2(root, "r1", SHARE_ACCESS_READ, WANT_READ_DELEG)
        self.assertEqual((r.status, r.dtype), (NFS4_OK, OPEN_DELEGATE_READ), self.log())
        self.fore_only_conn(cl)
        self.drop_back_channel(cl, reset=True)
        self.await_revocation(cl, r, "r1")

    def test_unanswered_recall_marks_path_down(self):
        """A stays connected but never answers: the CB_RECALL times out, cb/ marks the
        path down, the server revokes after the lease as above."""
        self.make_file("u1")
        self.make_file("u2")
        cl = self.client("holder")
        root = cl.root_fh(self.srv.export)
        self.fore_only_conn(cl)  # calls go over B; nobody reads A any more
        r = cl.open2(root, "u1", SHARE_ACCESS_READ, WANT_READ_DELEG)
        self.assertEqual((r.status, r.dtype), (NFS4_OK, OPEN_DELEGATE_READ), self.log())
        self.await_revocation(cl, r, "u1", path_down_after_recall=True)
        # still down: no delegation
        d = cl.open2(root, "u2", SHARE_ACCESS_READ, WANT_READ_DELEG)
        self.assertEqual(d.status, NFS4_OK)
        self.assertIn(d.dtype, (OPEN_DELEGATE_NONE, OPEN_DELEGATE_NONE_EXT), "a delegation over a dead path")
        self.assertEqual(cl.close_file(d.fh, d.open_sid), NFS4_OK)

    def await_revocation(self, cl, r, name, path_down_after_recall=False):
        """Another client opens `name` for writing while cl's delegation r cannot be
        recalled: DELAY, then revocation after a lease."""
        other = self.client("other")
        oroot = other.root_fh(self.srv.export)
        t0 = time.time()
        o = other.open2(oroot, name, SHARE_ACCESS_READ | SHARE_ACCESS_WRITE, 0)
        self.assertEqual(o.status, NFS4ERR_DELAY, "the conflicting OPEN waits for the recall")
        if path_down_after_recall:  # the call times out (cb/: 5 s), the path is marked down
            flags = self.await_path_down(cl, LEASE, "a CB_RECALL nobody answered")
            print(f"\n  path down {time.time() - t0:.1f} s after the unanswered CB_RECALL (flags {flags:#x})",
                  file=sys.stderr)
        # the holder stays alive (SEQUENCE renews it) but cannot be called back: after a
        # lease the server revokes, and the other client's OPEN goes through
        revoked_at = opened_at = None
        deadline = t0 + 3 * LEASE + 10
        while time.time() < deadline and (revoked_at is None or opened_at is None):
            time.sleep(1)
            if revoked_at is None and cl.sequence_flags() & SEQ4_STATUS_RECALLABLE_STATE_REVOKED:
                revoked_at = time.time() - t0
            elif revoked_at is not None:
                cl.sequence_flags()  # keep renewing
            if opened_at is None:
                o = other.open2(oroot, name, SHARE_ACCESS_READ | SHARE_ACCESS_WRITE, 0)
                if o.status == NFS4_OK:
                    opened_at = time.time() - t0
                else:
                    self.assertEqual(o.status, NFS4ERR_DELAY, "OPEN while the recall is pending")
        print(f"\n  revoked (RECALLABLE_STATE_REVOKED) after {revoked_at} s, other client's OPEN "
              f"after {opened_at} s, lease {LEASE} s", file=sys.stderr)
        self.assertIsNotNone(revoked_at, f"no RECALLABLE_STATE_REVOKED within {3 * LEASE + 10} s\n{self.log()}")
        self.assertIsNotNone(opened_at, "the other client's OPEN never succeeded")
        self.assertGreaterEqual(opened_at, LEASE - 2, "revoked before a lease had passed")
        self.assertLessEqual(opened_at, 2 * LEASE + 5)
        self.assertEqual(cl.sequence_flags() & PATH_DOWN, PATH_DOWN, "the back channel is still down")
        # the revoked stateid: TEST_STATEID says so, FREE_STATEID clears the flag
        self.assertEqual(cl.test_stateid(r.deleg_sid), NFS4ERR_DELEG_REVOKED)
        self.assertEqual(cl.free_stateid(r.deleg_sid), NFS4_OK)
        self.assertEqual(cl.sequence_flags() & SEQ4_STATUS_RECALLABLE_STATE_REVOKED, 0,
                         "RECALLABLE_STATE_REVOKED after FREE_STATEID")
        self.assertEqual(other.close_file(o.fh, o.open_sid), NFS4_OK)
        self.assertEqual(cl.close_file(r.fh, r.open_sid), NFS4_OK)


def main():
    global BINARY, LEASE
    ap = argparse.ArgumentParser()
    ap.add_argument("--peernfsd", required=True)
    ap.add_argument("--lease", type=int, default=LEASE)
    args, rest = ap.parse_known_args()
    BINARY, LEASE = args.peernfsd, args.lease
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
